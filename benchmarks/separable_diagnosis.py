"""Why the separable kernel (``rank="auto"``) trails vanilla on some songs cases (issue 24
item 5): too few candidate ranks, a noisy rank choice, or a family that cannot hold the cells.

On the outer folds of ``kernels_earn.py``'s cases (the same training and held-out stimuli,
the same scoring), each variant is a separable kernel fitted with skstrf's defaults except
the candidate ranks and the rule that picks each neuron's rank from the inner
cross-validation's scores (:func:`skstrf._solvers._choose_rank`: the estimator's
``rank_rule``, and for ``pooled`` the function replaced for the fit; the penalty is the free
kernel's cross-validated one throughout):

- ``one-SE`` (``rank_rule="one_se"``; on ranks 1-3 the default before December 2026): per
  neuron, a higher rank only when its pooled held-out score is better and its gain over the
  lower rank exceeds its standard error over the inner folds;
- ``best`` (``rank_rule="best"``; on ranks 1-4 the default, ``rank="auto"``): per neuron,
  the rank with the best pooled held-out score (no standard-error test);
- ``pooled``: one rank for every neuron of the fit, the best mean score over neurons,
  with the one-standard-error test on the mean per-fold gain;
- ``fixed r``: rank ``r`` for every neuron (no choice).

Every variant is compared with vanilla neuron by neuron (mean paired difference, 95 %
bootstrap interval over the neurons of every seed), and the table counts the ranks each
rule chose over neurons and outer folds, and how often one neuron's rank changed between
the outer folds (a rank choice that moves with the training stimuli is noisy).

The columns "minus the one-SE rule" pair each variant with the rule this script diagnosed
(ranks 1-3, one-SE: the default before December 2026), neuron by neuron. ``--worst JSON N``
reads a ``--json`` run and lists, per case, the ``N`` neurons that lose most to vanilla under
that rule, their rank in each outer fold, every other variant's
difference for them, and (songs only, a diagnosis: no user has it) the share of the
generator's true STRF's energy in its first 2-5 singular components
(``strf_rank.energy_shares``).

Settings are diagnosed on the tuning seeds 500-502 of the songs; the third-party cases do
not depend on the seed (run them in the benchmark environment)::

    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/separable_diagnosis.py \\
        --cases songs-previous songs-background songs-low-snr --seeds 500 501 502 --json /tmp/tune.json
    OMP_NUM_THREADS=1 nice -n 19 /work/peers-venv/bin/python benchmarks/separable_diagnosis.py \\
        --cases auditory-nerve auditory-nerve-3 naplib --json /tmp/peers.json
    python benchmarks/separable_diagnosis.py --worst /tmp/tune.json 4
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fit_quietly, format_machine, machine_info, markdown_table, publish  # noqa: E402
import kernels_earn  # noqa: E402
from kernels_earn import CASES, SONGS, interval, verdict  # noqa: E402
from run_all import write_atomic  # noqa: E402
from strf_rank import energy_shares  # noqa: E402

from skstrf import STRFRegressor, _solvers  # noqa: E402
from skstrf.datasets import make_realistic_dataset  # noqa: E402

_ORIGINAL = _solvers._choose_rank

#: Each variant: (options of the separable kernel, rank rule); None: vanilla. Before the
#: default changed (December 2026), "ranks 1-3, one-SE" was named "ranks 1-3, one-SE (default)".
VARIANTS: dict[str, tuple[dict, str] | None] = {
    "vanilla": None,
    "ranks 1-3, one-SE": ({"rank": (1, 2, 3)}, "one-SE"),
    "ranks 1-3, best": ({"rank": (1, 2, 3)}, "best"),
    "ranks 1-3, pooled": ({"rank": (1, 2, 3)}, "pooled"),
    "ranks 1-4, one-SE": ({"rank": (1, 2, 3, 4)}, "one-SE"),
    "ranks 1-4, best": ({"rank": (1, 2, 3, 4)}, "best"),
    "ranks 1-4, pooled": ({"rank": (1, 2, 3, 4)}, "pooled"),
    "ranks 2-4, one-SE": ({"rank": (2, 3, 4)}, "one-SE"),
    "ranks 1-6, pooled": ({"rank": (1, 2, 3, 4, 5, 6)}, "pooled"),
    "fixed 2": ({"rank": 2}, "fixed"),
    "fixed 3": ({"rank": 3}, "fixed"),
    "fixed 4": ({"rank": 4}, "fixed"),
}


#: The estimator's ``rank_rule`` of each rule (``pooled``: the one-SE rule on the mean score).
RANK_RULE = {"one-SE": "one_se", "best": "best", "pooled": "one_se", "fixed": "best"}


def _pooled(scores, candidates, ranks, *, per_neuron, pooling, fold_scores=None, rule="one_se"):
    """:func:`skstrf._solvers._choose_rank` with one rank for every neuron (the penalty
    still per neuron)."""
    return _ORIGINAL(scores, candidates, ranks, per_neuron=False, pooling=pooling,
                     fold_scores=fold_scores, rule=rule)


@contextlib.contextmanager
def pooled_ranks(pooled: bool):
    """Fits inside choose one rank for all neurons when ``pooled``."""
    _solvers._choose_rank = _pooled if pooled else _ORIGINAL
    try:
        yield
    finally:
        _solvers._choose_rank = _ORIGINAL


def fit_with_rule(variant: str, n_lags: int, X, y) -> tuple[STRFRegressor, float]:
    """``variant`` (:data:`VARIANTS`) fitted under its rank rule, and its fit's seconds."""
    spec = VARIANTS[variant]
    options, rule = ({}, "fixed") if spec is None else ({"kernel": "separable", **spec[0]}, spec[1])
    est = STRFRegressor(n_lags=n_lags, random_state=0, rank_rule=RANK_RULE[rule], **options)
    with pooled_ranks(rule == "pooled"):
        return est, fit_quietly(est, X, y)


def run_case(name: str, seeds, variants, log) -> dict:
    """Per-neuron scores, per-fold ranks (neurons x outer folds, seeds pooled) and fit times of
    every variant: ``kernels_earn.run_case`` with the variants fitted under their rules."""
    result = kernels_earn.run_case(name, seeds, False, variants, log, fit=fit_with_rule)
    ranks = {v: np.concatenate([np.asarray(folds).T for folds in per_seed])
             for v, per_seed in result["ranks"].items() if all(per_seed)}
    return {"description": result["description"],
            "scores": {v: np.asarray(s, dtype=float) for v, s in result["scores"].items()},
            "ranks": ranks, "times": result["times"]}


#: The rule the other variants are paired with: the default before December 2026.
DEFAULT = "ranks 1-3, one-SE"


def rows_of(result: dict, variants) -> list[dict]:
    """Table rows of one case: each variant against vanilla and against the one-SE rule on ranks 1-3."""
    rng = np.random.default_rng(0)
    vanilla = result["scores"].get("vanilla")
    default = result["scores"].get(DEFAULT)
    rows = []
    for v in variants:
        score = result["scores"][v]
        row = {"case": result["description"], "variant": v, "score": float(np.nanmean(score)),
               "fit_s": f"{np.median(result['times'][v]):.1f}"}
        if vanilla is not None and v != "vanilla":
            mean, low, high, n = interval(score - vanilla, rng)
            row.update(diff=f"{mean:+.4f} [{low:+.4f}, {high:+.4f}]", vs=verdict(low, high), neurons=n)
        if default is not None and v not in ("vanilla", DEFAULT):
            mean, low, high, _ = interval(score - default, rng)
            row.update(gain=f"{mean:+.4f} [{low:+.4f}, {high:+.4f}]", vs_default=verdict(low, high))
        if v in result["ranks"]:
            r = result["ranks"][v]
            counts = np.bincount(r.ravel(), minlength=r.max() + 1)[1:]
            row["ranks"] = " / ".join(str(c) for c in counts)
            row["moved"] = f"{np.mean(r.min(axis=1) != r.max(axis=1)):.2f}"
        rows.append(row)
    return rows


COLUMNS = [("case", "case", ""), ("variant", "separable: ranks, rule", ""),
           ("score", "held-out score", ".4f"), ("diff", "minus vanilla [95 % CI over neurons]", ""),
           ("vs", "vs vanilla", ""), ("gain", "minus ranks 1-3, one-SE [95 % CI]", ""),
           ("vs_default", "vs ranks 1-3, one-SE", ""), ("ranks", "ranks chosen (count of rank 1 / 2 / ...)", ""),
           ("moved", "neurons whose rank differs between outer folds", ""), ("neurons", "neurons", ""),
           ("fit_s", "fit s (median, rough)", "")]


def _true_shares(name: str, description: str) -> np.ndarray | None:
    """The generator's true STRFs' energy shares in their first components (songs cases; a
    quantity no user has, for diagnosis), neurons of every seed of ``description`` in order."""
    if name not in SONGS:
        return None
    seeds = [int(s) for s in re.search(r"seeds? ([\d, ]+)\)", description).group(1).split(",")]
    strfs = np.concatenate([make_realistic_dataset("stimuli", n_neurons=8, random_state=seed, **SONGS[name]).strfs
                            for seed in seeds])
    return energy_shares(strfs)


def worst_neurons(path: Path, n_worst: int) -> str:
    """From a ``--json`` run: for each case, the share of the one-SE rule's (ranks 1-3) mean gap to
    vanilla that its ``n_worst`` worst neurons make, their ranks per outer fold and the other
    variants' differences for them, and the mean gap of the neurons given rank 1 in some
    outer fold against the others."""
    rows = []
    for name, result in json.loads(Path(path).read_text())["cases"].items():
        truth = _true_shares(name, result["description"])
        scores = {v: np.asarray(s, dtype=float) for v, s in result["scores"].items()}
        gap = scores[DEFAULT] - scores["vanilla"]
        ranks = np.asarray(result["ranks"][DEFAULT])
        once = (ranks == 1).any(axis=1)
        worst = np.argsort(gap)[:n_worst]
        rows.append({"case": result["description"], "neuron": "mean of all",
                     "gap": f"{gap.mean():+.4f} (worst {n_worst}: {gap[worst].sum() / gap.size:+.4f})",
                     "ranks": f"rank 1 in some fold: {once.sum()} neurons, {gap[once].mean():+.4f}; "
                              f"others {gap[~once].mean():+.4f}"})
        for i in worst:
            rows.append({"case": result["description"], "neuron": int(i), "gap": f"{gap[i]:+.4f}",
                         "ranks": " ".join(map(str, ranks[i])),
                         "truth": None if truth is None else " / ".join(f"{x:.3f}" for x in truth[i, 1:5]),
                         **{v: f"{scores[v][i] - scores['vanilla'][i]:+.4f}" for v in scores
                            if v not in ("vanilla", DEFAULT)}})
    others = [v for v in rows[1] if v not in ("case", "neuron", "gap", "ranks", "truth")]
    return markdown_table(rows, [("case", "case", ""), ("neuron", "neuron", ""),
                                 ("gap", "ranks 1-3, one-SE minus vanilla", ""), ("ranks", "its ranks per outer fold", ""),
                                 ("truth", "generator's truth: energy in ranks 2 / 3 / 4 / 5 (diagnosis only)", "")]
                          + [(v, f"{v} minus vanilla", "") for v in others])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["songs-previous", "songs-low-snr"], choices=CASES)
    parser.add_argument("--seeds", type=int, nargs="+", default=[500, 501, 502])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--json", type=Path, help="per-neuron scores and per-fold ranks")
    parser.add_argument("--worst", nargs=2, metavar=("JSON", "N"),
                        help="print the N neurons of each case of a --json run that lose most under ranks 1-3, one-SE")
    args = parser.parse_args(argv)
    if args.worst:
        print(worst_neurons(Path(args.worst[0]), int(args.worst[1])))
        return
    variants = list(dict.fromkeys(["vanilla", *args.variants]))
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    before = machine_info()
    rows, results = [], {}
    for name in args.cases:
        result = run_case(name, args.seeds, variants, log)
        rows.extend(rows_of(result, variants))
        results[name] = {"description": result["description"], "times": result["times"],
                         "scores": {v: s.tolist() for v, s in result["scores"].items()},
                         "ranks": {v: r.tolist() for v, r in result["ranks"].items()}}
        if args.json:  # after every case: a long run keeps what it has
            write_atomic(args.json, json.dumps({"machine": before, "cases": results}))
    text = (markdown_table(rows, COLUMNS) + f"\n\nSeeds of the songs: {', '.join(map(str, args.seeds))}.\n\n"
            + format_machine(before, machine_info()))
    publish(text, args.markdown)


if __name__ == "__main__":
    main()
