"""Today's defaults on the realistic data of issue 12: do they fail there as on real cells?

Run from the repository root::

    python benchmarks/realistic_failures.py                   # 3 seeds, 8 neurons per seed
    python benchmarks/realistic_failures.py --quick           # 1 seed, 2 neurons, few epochs

Data: :func:`skstrf.datasets.make_realistic_dataset`, songs (20 ragged songs, 32 log-mel bands
with 6 near-silent ones, 10 trials, 10 spikes/s) and the continuous recording (7 s, 2
channels, 5 units, 20 repeats). Every model has 20 lags.

Protocol. Songs: 5-fold ``KFold`` over the 20 songs (4 test songs per fold, no shuffling);
each fold fits on its 16 training songs and predicts its 4 test songs. Continuous: 5
contiguous time blocks of 140 frames (:class:`skstrf.model_selection.ContiguousBlocks`);
each fold fits on the other 560 frames (one recording with a junction) and its test block
is predicted from the whole stimulus, so that the first test frames have their true history.
Score: :func:`skstrf.metrics.cc_norm` of each neuron on the out-of-fold predictions of all
folds concatenated (pooled), averaged over neurons, then over seeds.

X: as the generator gives it, the log power (``log10``), whose zero is louder than nearly
every frame. Nothing is subtracted: the generator's level of silence (``data.silence``) is a
quantity no user has. History: every model keeps the estimator's default
``history="mean"``, i.e. before each song (and before the training part of the recording)
the STRF reads each band's mean over the training frames, so the scores do not depend on
where zero is in X. A held-out block of the recording is predicted from the whole recording,
so its first frames read their true preceding frames; the training frames of the recording
are the other blocks joined (one junction where the held-out block was).

Rows: ``STRFRegressor`` defaults for the vanilla, separable and parametric kernels, the LN
model (``nonlinearity="softplus", loss="poisson"``), and the vanilla ridge with one penalty
for all folds and neurons picked in hindsight, i.e. on the test scores themselves (an upper
bound for any way of choosing the penalty from the training data), and the same upper bound for
the rank-1 separable kernel (ALS), one penalty for all neurons and one per neuron, which
says how close to vanilla a rank-1 STRF can get on these cells whatever its penalty. The
separability index of the true STRFs (share of the energy in the best rank-1 approximation,
bands weighted by the standard deviation of X) says how far from rank 1 the cells are.
Gradient-trained rows run at most ``--max-epochs`` epochs (early stopping on, patience 10).
Only scores are reported: the machine these rows ran on was shared, so times would be
meaningless.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from _common import format_machine, machine_info, markdown_table, out_of_fold, pooled_score, set_threads, publish
from sklearn.model_selection import KFold

from skstrf.datasets import make_realistic_dataset
from skstrf.metrics import cc_norm
from skstrf.model_selection import ContiguousBlocks

N_LAGS = 20
HINDSIGHT_ALPHAS = np.logspace(-4, 3, 15)


def models(max_epochs: int) -> list[tuple[str, dict]]:
    """(label, STRFRegressor parameters) of the default rows."""
    return [
        ("vanilla, defaults", {"kernel": "vanilla"}),
        ("separable, defaults", {"kernel": "separable"}),
        (f"parametric, defaults (max_epochs={max_epochs})",
         {"kernel": "parametric", "max_epochs": max_epochs}),
        (f"LN softplus + Poisson, defaults (max_epochs={max_epochs})",
         {"nonlinearity": "softplus", "loss": "poisson", "max_epochs": max_epochs}),
    ]


def run(data, folds: list, max_epochs: int) -> dict[str, float]:
    """Score of every row on one dataset, X as generated (log power)."""
    X, y = data.X, data.y
    scores = {}
    for label, params in models(max_epochs):
        scores[label] = pooled_score(y, out_of_fold(params, X, y, folds, N_LAGS))
    by_alpha = [pooled_score(y, out_of_fold({"solver": "ridge", "alpha": a,
                                             "validation_fraction": None}, X, y, folds, N_LAGS))
                for a in HINDSIGHT_ALPHAS]
    best = int(np.nanargmax(by_alpha))
    scores["vanilla ridge, best single alpha in hindsight"] = by_alpha[best]
    scores["(hindsight alpha)"] = float(HINDSIGHT_ALPHAS[best])
    # The rank-1 kernel's own ceiling: no penalty choice can beat it on these folds.
    per_neuron = np.array([
        cc_norm(y, out_of_fold({"kernel": "separable", "solver": "als", "alpha": a, "cv": None,
                                "validation_fraction": None}, X, y, folds, N_LAGS),
                multioutput="raw_values")
        for a in HINDSIGHT_ALPHAS])  # (n_alphas, n_neurons)
    scores["separable (rank-1 ALS), best single alpha in hindsight"] = float(
        np.nanmax(np.nanmean(per_neuron, axis=1)))
    scores["separable (rank-1 ALS), best alpha per neuron in hindsight"] = float(
        np.nanmean(np.nanmax(per_neuron, axis=0)))
    scores["separability index of the true STRFs"] = float(np.mean(separability_index(data)))
    return scores


def separability_index(data) -> np.ndarray:
    """Each true STRF's share of energy in its best rank-1 approximation, ``s1^2 / sum s^2``
    (1 for a separable STRF), with every band weighted by the standard deviation of ``X`` in
    it, i.e. in units of the drive (the near-silent bands, which drive nothing, count for
    nothing)."""
    scale = np.nanstd(data.X.reshape(-1, data.X.shape[-1]), axis=0)
    s = np.linalg.svd(data.strfs * scale[:, None], compute_uv=False)  # (n_neurons, rank)
    return s[:, 0] ** 2 / (s**2).sum(axis=1)


def table(per_seed: list[dict[str, float]], seeds: list[int]) -> str:
    """Markdown table: one row per model, mean over seeds and each seed's score."""
    rows = []
    for label in per_seed[0]:
        values = [s[label] for s in per_seed]
        # The penalty row shows each seed's pick; a mean of penalties means nothing.
        row = {"model": label, "mean": None if label.startswith("(") else float(np.mean(values))}
        row.update({f"seed {seed}": v for seed, v in zip(seeds, values)})
        rows.append(row)
    spec = ".3g"
    columns = [("model", "model", ""), ("mean", "mean cc_norm", spec)]
    columns += [(f"seed {seed}", f"seed {seed}", spec) for seed in seeds]
    return markdown_table(rows, columns)


def checks(per_seed: list[dict[str, float]], mode: str) -> list[str]:
    """PASS/FAIL lines for issue 12's targets on the seed means of one mode."""
    mean = {label: float(np.mean([s[label] for s in per_seed])) for label in per_seed[0]}
    pick = {key: next(label for label in mean if label.startswith(key)) for key in
            ("vanilla, defaults", "separable, defaults", "parametric, defaults", "LN softplus",
             "vanilla ridge, best")}
    vanilla, hindsight = mean[pick["vanilla, defaults"]], mean[pick["vanilla ridge, best"]]
    lines = [(hindsight - vanilla <= 0.01,
              f"vanilla default {vanilla:.3f} within 0.01 of the hindsight alpha's {hindsight:.3f}")]
    if mode == "songs":
        for key, factor in (("separable, defaults", 0.95), ("parametric, defaults", 0.9), ("LN softplus", 1.0)):
            value = mean[pick[key]]
            lines.append((value >= factor * vanilla,
                          f"{key.split(',')[0]} {value:.3f} = {value / vanilla:.3f} x vanilla (target >= {factor})"))
    out = [f"- {'PASS' if ok else 'FAIL'} ({mode}): {text}" for ok, text in lines]
    if mode == "songs":
        single = mean["separable (rank-1 ALS), best single alpha in hindsight"]
        each = mean["separable (rank-1 ALS), best alpha per neuron in hindsight"]
        out.append(f"- (songs) the rank-1 kernel's ceiling on these cells, penalties picked on the test "
                   f"folds: one alpha {single:.3f} = {single / vanilla:.3f} x vanilla, an alpha per neuron "
                   f"{each:.3f} = {each / vanilla:.3f} x vanilla; separability index of the true STRFs "
                   f"{mean['separability index of the true STRFs']:.2f}")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[2, 3, 4],
                        help="data seeds; the defaults are fresh (the defaults were chosen on the tuning "
                        "seeds 0 and 1, benchmarks/defaults_cases.py)")
    parser.add_argument("--markdown", type=Path, help="write the tables to this file")
    parser.add_argument("--n-neurons", type=int, default=8, help="neurons of the song data")
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="1 seed, 2 neurons, 3 epochs")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.n_neurons, args.max_epochs = [0], 2, 3
    set_threads(args.threads)
    warnings.simplefilter("ignore")  # convergence and constant-band warnings: scores only
    before = machine_info()

    songs, continuous = [], []
    for seed in args.seeds:
        data = make_realistic_dataset(n_neurons=args.n_neurons, random_state=seed)
        folds = list(KFold(5).split(data.X))
        songs.append(run(data, folds, args.max_epochs))
        data = make_realistic_dataset("continuous", random_state=seed)
        folds = list(ContiguousBlocks(5).split(data.X))
        continuous.append(run(data, folds, args.max_epochs))
    command = "python benchmarks/realistic_failures.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = "\n\n".join([
        f"Command: `{command.strip()}`", format_machine(before, machine_info()),
        f"Seeds {', '.join(map(str, args.seeds))}; gradient-trained rows at most {args.max_epochs} epochs. "
        "X as generated (log10 power, nothing subtracted); history before each stimulus: each band's "
        "training mean (the default); a held-out block of the recording keeps its true history.",
        f"Songs: {args.n_neurons} neurons per seed, 5-fold KFold over 20 songs, pooled out-of-fold cc_norm.",
        table(songs, args.seeds),
        "Continuous: 5 units, 5 contiguous time blocks, pooled out-of-fold cc_norm.",
        table(continuous, args.seeds),
        "Issue 12's targets (means over the seeds):\n\n" + "\n".join(checks(songs, "songs") + checks(continuous, "continuous"))])
    publish(text, args.markdown)


if __name__ == "__main__":
    main()
