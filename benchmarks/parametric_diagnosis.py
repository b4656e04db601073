"""Why the parametric kernel loses to vanilla on the auditory nerve (issue 24 item 5):
under-optimisation, its start, its penalty, or its family.

On the outer folds of ``kernels_earn.py``'s cases (the same training and held-out stimuli),
each variant below is fitted with skstrf's defaults except what its name says, and scored
on the held-out stimuli with the same code (pooled out-of-fold predictions, cc_norm with
repeats); every variant is compared with the vanilla kernel neuron by neuron (mean paired
difference, 95 % bootstrap interval over neurons). The L-BFGS step of the parametric fit
(:func:`skstrf._solvers.fit_lbfgs`) is replaced by a wrapper that records, on the fold's
training statistics:

- ``excess``: the penalised training loss the fit reached minus that of the free kernel
  with the same penalty (the ridge solution: the lowest loss any kernel can reach, the
  parametric kernel being a subset of the free one), in units of the PSTH's variance,
  mean over neurons; ``start excess``: the same for the L-BFGS start (Gaussians fitted to
  the ridge STRF, :meth:`skstrf.kernels.ParametricKernel.set_weight`);
- ``iterations``: each neuron's L-BFGS iterations (mean, 90th percentile, most; cap 500 by
  default).

Variants (``--variants``):

- ``parametric``: the default (24 Gaussians, from the Gaussians fitted to the ridge STRF by
  100 Adam steps, each neuron's own L-BFGS run in scaled parameters until its loss falls by
  less than 3e-5 over 10 iterations, at most 500, the free kernel's cross-validated penalty);
- ``parametric, unscaled, to the cap (before)``: each neuron's run in the kernel's own
  parameters, 500 iterations (the default before December 2026's scaling and stop);
  ``parametric, unscaled, 100/200/1000/2000 iterations`` and ``..., history 30`` (30
  curvature pairs instead of 10; ``, 1000 iterations``): the same with other caps;
- ``parametric, scaled`` (to the cap, no stop), ``..., 200``/``1000 iterations``, and
  ``parametric, scaled, stop TOL over W``: the stop's candidates (the default: 3e-05 over 10);
- ``parametric, start only``: the start, no L-BFGS (what the family gives from the ridge
  STRF alone);
- ``parametric, joint L-BFGS (before)``: one L-BFGS over every neuron's parameters at once,
  500 iterations (the default before December 2026), and ``..., 5000 iterations``;
- ``parametric, 5000 iterations``: the default's runs to 5000 iterations (no stop);
- ``parametric, penalty x1/4`` and ``x0``: the L-BFGS penalty scaled;
- ``parametric, start 0/30/100/300 steps``: the start's Adam steps (:data:`skstrf.kernels.START_STEPS`,
  100 by default, 300 before December 2026; 0: the greedy peaks and troughs alone, the
  closest of their three widths);
- ``parametric 8`` (the default before December 2026) and ``parametric 16``: fewer
  Gaussians; ``parametric 24``: the default's number, named; ``parametric 48``: more;
- ``parametric, truth start (oracle)`` and ``parametric 8, truth start (oracle)``, generated
  (songs) cases only: L-BFGS from Gaussians fitted to the generator's true STRF (in
  standardised units, scaled by least squares onto the ridge STRF) instead of the ridge
  STRF: what a perfect start would give. Diagnosis only (no user has the truth).

The family table (``--family``): each fold's vanilla (ridge) STRF in standardised units
approximated by ``K`` Gaussians (``set_weight`` with 300 Adam steps per start, the default,
and with 3000) and by its best rank-1 and rank-2 approximations (truncated SVD): the
relative squared residual ``|w - approx|^2 / |w|^2``, median and 90th percentile over
neurons and folds. The ridge STRF holds noise, so this is an upper bound of how far the
truth lies from the family. On a generated (songs) case the table also has the generator's
true STRFs (standardised with the fold's band scales) approximated by 8, 16 and 24
Gaussians (3000 steps) and ranks 1-3, and ``ridge vs truth``: ``1 - cos^2`` of the ridge
and true STRFs (what the best gain of the ridge STRF leaves of the truth). Diagnosis only.

``--seeds`` pools the neurons of several seeds of a generated case (one row per case).

Run in the benchmark environment (the auditory nerve's cache, see ``benchmarks/README.md``)::

    OMP_NUM_THREADS=1 nice -n 19 /work/peers-venv/bin/python benchmarks/parametric_diagnosis.py \\
        --cases auditory-nerve-3 auditory-nerve --n-folds 1 --markdown /tmp/parametric_diagnosis.md
    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/parametric_diagnosis.py --cases songs-previous \
        --seeds 500 501 502 --family --variants "parametric 8" "parametric 8, truth start (oracle)"
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fit_quietly, format_machine, machine_info, markdown_table, test_scores, publish  # noqa: E402
from kernels_earn import SONGS, interval, load_case, verdict  # noqa: E402

from skstrf import STRFRegressor  # noqa: E402
from skstrf import _solvers, kernels  # noqa: E402
from skstrf.datasets import make_realistic_dataset  # noqa: E402
from skstrf.datasets._synthetic import _true_drive  # noqa: E402
from skstrf.kernels import ParametricKernel  # noqa: E402

#: L-BFGS's iterations in the converged variants.
CONVERGED = 5000

#: Each variant: estimator options, and the wrapper's (L-BFGS ``max_iter``, penalty scale,
#: whether L-BFGS runs at all).
VARIANTS = {
    "vanilla": ({}, None),
    "parametric": ({"kernel": "parametric"}, dict(max_iter=None, scale=1.0, polish=True, per_neuron=True)),
    "parametric, start only": ({"kernel": "parametric"}, dict(max_iter=None, scale=1.0, polish=False)),
    "parametric, joint L-BFGS (before)": ({"kernel": "parametric"},
                                          dict(max_iter=None, scale=1.0, polish=True, per_neuron=False)),
    "parametric, joint L-BFGS, 5000 iterations": ({"kernel": "parametric"},
                                                  dict(max_iter=CONVERGED, scale=1.0, polish=True, per_neuron=False)),
    "parametric, 5000 iterations": ({"kernel": "parametric"},
                                    dict(max_iter=CONVERGED, scale=1.0, polish=True, per_neuron=True, tol=0.0)),
    "parametric, penalty x1/4": ({"kernel": "parametric"}, dict(max_iter=None, scale=0.25, polish=True, per_neuron=True)),
    "parametric, penalty x0": ({"kernel": "parametric"}, dict(max_iter=None, scale=0.0, polish=True, per_neuron=True)),
    "parametric 8": ({"kernel": "parametric", "n_gaussians": 8},
                     dict(max_iter=None, scale=1.0, polish=True, per_neuron=True)),
    "parametric 16": ({"kernel": "parametric", "n_gaussians": 16},
                      dict(max_iter=None, scale=1.0, polish=True, per_neuron=True)),
    "parametric 24": ({"kernel": "parametric", "n_gaussians": 24},
                      dict(max_iter=None, scale=1.0, polish=True, per_neuron=True)),
    **{f"parametric, unscaled, {n} iterations": ({"kernel": "parametric"},
                                                 dict(max_iter=n, scale=1.0, polish=True, per_neuron=True,
                                                      scaled=False, tol=0.0))
       for n in (100, 200, 1000, 2000)},
    **{f"parametric, unscaled, history {h}{'' if n is None else f', {n} iterations'}": (
        {"kernel": "parametric"},
        dict(max_iter=n, scale=1.0, polish=True, per_neuron=True, history=h, scaled=False, tol=0.0))
       for h in (30,) for n in (None, 1000)},
    **{f"parametric, scaled{'' if n is None else f', {n} iterations'}": (
        {"kernel": "parametric"}, dict(max_iter=n, scale=1.0, polish=True, per_neuron=True, scaled=True, tol=0.0))
       for n in (None, 200, 1000)},
    **{f"parametric, scaled, stop {tol:g} over {w}": (
        {"kernel": "parametric"},
        dict(max_iter=None, scale=1.0, polish=True, per_neuron=True, scaled=True, tol=tol, window=w))
       for tol, w in ((3e-5, 10), (1e-5, 10), (1e-4, 20))},
    "parametric, unscaled, to the cap (before)": ({"kernel": "parametric"},
                                                   dict(max_iter=None, scale=1.0, polish=True, per_neuron=True,
                                                        scaled=False, tol=0.0)),
    **{f"parametric, start {n} steps": ({"kernel": "parametric"},
                                        dict(max_iter=None, scale=1.0, polish=True, per_neuron=True, start_steps=n))
       for n in (0, 30, 100, 300)},
    "parametric 48": ({"kernel": "parametric", "n_gaussians": 48},
                      dict(max_iter=None, scale=1.0, polish=True, per_neuron=True)),
    "parametric, truth start (oracle)": ({"kernel": "parametric"},
                                         dict(max_iter=None, scale=1.0, polish=True, per_neuron=True, truth=True)),
    "parametric 8, truth start (oracle)": ({"kernel": "parametric", "n_gaussians": 8},
                                           dict(max_iter=None, scale=1.0, polish=True, per_neuron=True, truth=True)),
}
DEFAULT_VARIANTS = ("vanilla", "parametric", "parametric, start only", "parametric, joint L-BFGS (before)",
                    "parametric, joint L-BFGS, 5000 iterations", "parametric 16")

_HOOK: dict = {"settings": None, "records": [], "truth": None}
_ORIGINAL = _solvers.SOLVERS["lbfgs"]


def _penalised_loss(weight: torch.Tensor, bias: torch.Tensor, summed, penalty) -> np.ndarray:
    """Per-neuron penalised training loss of standardised kernels ``weight`` (N, D)."""
    gram, cross, sq, count = (a.double() for a in summed)
    weight, bias = weight.double(), bias.double()
    theta = torch.cat([weight, bias[:, None]], dim=1)  # (N, D+1)
    quad = ((theta @ gram) * theta).sum(1) - 2 * (theta * cross.T).sum(1) + sq
    alpha = torch.as_tensor(penalty.per_neuron(weight.shape[0]), dtype=torch.float64)
    return (quad / count + alpha * penalty.form.quadratic(weight)).detach().cpu().numpy()


def _polish(module, stats, penalty) -> None:
    """fit_lbfgs as the variant says, recording the loss gaps and iterations."""
    settings = _HOOK["settings"]
    N = module.bias.shape[0]
    if settings["scale"] != 1.0:
        penalty = penalty.with_alpha(penalty.per_neuron(N) * settings["scale"])
    summed = stats.summed(None)
    free = _solvers.ridge_weights(stats, None, penalty)  # (D, N): the lowest penalised loss
    free_bias = _solvers.centred(stats).intercept(free)
    floor = _penalised_loss(free.T, free_bias, summed, penalty)
    if settings.get("truth"):
        _start_from_truth(module, stats, free)
    with torch.no_grad():
        start = _penalised_loss(module.standardized_weight().double(), module.bias.double(), summed, penalty)
    iterations = np.zeros(N, dtype=int)
    if settings["polish"]:
        iterations = _solvers.fit_lbfgs(module, stats, penalty, max_iter=settings["max_iter"],
                                        per_neuron=settings.get("per_neuron", True),
                                        history=settings.get("history"),
                                        **{k: settings[k] for k in ("scaled", "tol", "window") if k in settings}
                                        )["neuron_iterations"]
    with torch.no_grad():
        end = _penalised_loss(module.standardized_weight().double(), module.bias.double(), summed, penalty)
    _HOOK["records"].append({"start": start - floor, "end": end - floor, "iterations": iterations})


def _standardised_truth(module) -> torch.Tensor:
    """The generator's true STRFs (N, C, F, L) in the module's standardised units."""
    if _HOOK["truth"] is None:
        raise ValueError("the truth-start variants need a generated (songs) case")
    truth = torch.as_tensor(_HOOK["truth"], dtype=torch.float64)[:, None]
    return truth * module.x_scale.double().reshape(1, *truth.shape[1:3], 1)


def _start_from_truth(module, stats, free: torch.Tensor) -> None:
    """Oracle start: Gaussians fitted to the true STRF, scaled by least squares onto the
    ridge STRF ``free`` (D, N), and the intercept that goes with them."""
    truth = _standardised_truth(module)
    free = free.T.reshape(truth.shape).double()
    gain = (truth * free).sum(dim=(1, 2, 3)) / truth.pow(2).sum(dim=(1, 2, 3))
    module.kernel.set_weight((gain[:, None, None, None] * truth).float())
    with torch.no_grad():
        weight = module.standardized_weight().double()
        module.bias.copy_(_solvers.centred(stats).intercept(weight.T.to(free.dtype)).to(module.bias))


def song_truth(name: str, seed: int, quick: bool) -> np.ndarray | None:
    """The true STRFs (N, F, L) of a generated case as ``load_case`` makes it; None for others."""
    if name not in SONGS:
        return None
    return make_realistic_dataset("stimuli", n_neurons=8 if not quick else 2, random_state=seed, **SONGS[name]).strfs


def fold_fits(X, y, n_lags, folds, variants, family: bool, log):
    """Out-of-fold scores, fit times and L-BFGS records of every variant; family rows."""
    repeats = y.ndim == 4
    y4 = y if repeats else y[..., None]
    predictions = {v: np.full(y4.shape[:3], np.nan) for v in variants}
    times = {v: [] for v in variants}
    records = {v: [] for v in variants}
    residuals: dict[str, list] = {}
    _solvers.SOLVERS["lbfgs"] = dataclasses.replace(_ORIGINAL, polish=_polish)
    try:
        for test in folds:
            train = np.setdiff1d(np.arange(len(X)), test)
            for v in variants:
                options, settings = VARIANTS[v]
                _HOOK["settings"], _HOOK["records"] = settings, []
                est = STRFRegressor(n_lags=n_lags, random_state=0, **options)
                steps = kernels.START_STEPS
                kernels.START_STEPS = (settings or {}).get("start_steps", steps)
                try:
                    times[v].append(fit_quietly(est, X[train], y[train]))
                finally:
                    kernels.START_STEPS = steps
                predictions[v][test] = est.predict(X[test])
                records[v].extend(_HOOK["records"])
                log(f"    {v}: {times[v][-1]:.1f} s" + "".join(
                    f", {np.mean(r['iterations']):.0f} (max {np.max(r['iterations'])}) iterations, "
                    f"excess {np.mean(r['end']):.2e}" for r in _HOOK["records"]))
                if v == "vanilla" and family:
                    for key, value in family_residuals(est, _HOOK["truth"], X[train]).items():
                        residuals.setdefault(key, []).append(value)
            log(f"  fold {test.tolist()} done")
    finally:
        _solvers.SOLVERS["lbfgs"] = _ORIGINAL
    used = np.concatenate(list(folds))  # the held-out stimuli of the folds run
    scores = {v: test_scores(y4[used], predictions[v][used])[1 if repeats else 0] for v in variants}
    return scores, times, records, {k: np.concatenate(v) for k, v in residuals.items()}


def family_residuals(est: STRFRegressor, truth: np.ndarray | None = None, X=None) -> dict[str, np.ndarray]:
    """Relative squared residual of each neuron's standardised ridge STRF approximated by
    Gaussians (8 and 24; 300 and 3000 Adam steps per start) and by rank 1 and 2; with
    ``truth`` (N, F, L), also the true STRFs' (8, 16, 24 Gaussians, 3000 steps; ranks 1-3),
    ``1 - cos^2`` of the ridge and true STRFs, and ``1 - corr`` of the drives (zero
    history) that the true STRF and its Gaussian approximations give on the stimuli ``X``."""
    module = est.net_.module_
    with torch.no_grad():
        w = module.kernel().detach().double()
    out, _ = _approximations(w, ((8, 300), (8, 3000), (24, 300), (24, 3000)), (1, 2))
    if truth is not None:
        t = _standardised_truth(module)
        residuals, approximations = _approximations(t, ((8, 3000), (16, 3000), (24, 3000)), (1, 2, 3))
        out.update({f"truth: {k}": v for k, v in residuals.items()})
        cos = (w * t).sum(dim=(1, 2, 3)) ** 2 / (w.pow(2).sum(dim=(1, 2, 3)) * t.pow(2).sum(dim=(1, 2, 3)))
        out["ridge vs truth: 1 - cos^2"] = (1 - cos).numpy()
        scale = module.x_scale.double().reshape(1, *t.shape[1:3], 1)
        true_drive = _drive(X, truth)
        for key, approx in approximations.items():
            out[f"truth: {key}, drive 1 - corr"] = 1 - _correlation(true_drive, _drive(X, (approx / scale)[:, 0]))
    return out


def _drive(X, strfs) -> np.ndarray:
    """The drives (frames, N) of STRFs (N, F, L) in X's units on the stimuli X, valid frames."""
    drive = _true_drive(X, np.asarray(strfs, dtype=np.float64), np.zeros(len(strfs))).reshape(-1, len(strfs))
    return drive[np.isfinite(drive).all(1)]


def _correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of the columns of ``a`` and ``b`` (frames, N)."""
    a, b = a - a.mean(0), b - b.mean(0)
    return (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))


def _approximations(w: torch.Tensor, gaussians, ranks) -> tuple[dict[str, np.ndarray], dict[str, torch.Tensor]]:
    """Relative squared residual of kernels ``w`` (N, C, F, L) approximated by ``(K, n_iter)``
    Gaussians (:meth:`ParametricKernel.set_weight`) and by truncated SVDs of ``ranks``; and
    the Gaussian approximations themselves."""
    N, C, F, L = w.shape
    norm = w.pow(2).sum(dim=(1, 2, 3))
    out, approximations = {}, {}
    s = torch.linalg.svdvals(w[:, 0])  # (N, min(F, L))
    total = s.pow(2).sum(1)
    for r in ranks:
        out[f"rank {r}"] = (s[:, r:].pow(2).sum(1) / total).numpy()
    for k, n_iter in gaussians:
        key = f"{k} Gaussians, {n_iter} steps"
        approx = ParametricKernel(N, C, F, L, n_gaussians=k)
        approx.set_weight(w.float(), n_iter=n_iter)
        with torch.no_grad():
            approximations[key] = approx().double()
        out[key] = ((approximations[key] - w).pow(2).sum(dim=(1, 2, 3)) / norm).numpy()
    return out, approximations


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["auditory-nerve", "auditory-nerve-3"])
    parser.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[500],
                        help="seeds of a generated (songs) case, their neurons pooled")
    parser.add_argument("--n-folds", type=int, default=None, help="only the first outer folds (all by default)")
    parser.add_argument("--family", action="store_true", help="also the family table (from the vanilla fits)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    variants = list(dict.fromkeys(["vanilla", *args.variants]))
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    before = machine_info()
    rows, family_rows = [], []
    rng = np.random.default_rng(0)
    for name in args.cases:
        scores, times, records, residuals = {}, {}, {}, {}
        for seed in (args.seeds if name in SONGS else args.seeds[:1]):
            X, y, n_lags, folds, description = load_case(name, seed, args.quick)
            if name in SONGS:
                description = description.replace(f"seed {seed}", "seeds " + ", ".join(map(str, args.seeds)))
            folds = folds[:args.n_folds] if args.n_folds else folds
            log(f"{name} (seed {seed}): X {X.shape}, y {y.shape}, {len(folds)} outer folds")
            _HOOK["truth"] = song_truth(name, seed, args.quick)
            for pooled, new in zip((scores, times, records, residuals),
                                   fold_fits(X, y, n_lags, folds, variants, args.family, log)):
                for key, value in new.items():
                    pooled.setdefault(key, []).append(value)
        scores = {v: np.concatenate(s) for v, s in scores.items()}
        times, records = ({v: sum(lists, []) for v, lists in d.items()} for d in (times, records))
        residuals = {k: np.concatenate(v) for k, v in residuals.items()}
        for v in variants:
            row = {"case": description, "variant": v, "score": float(np.nanmean(scores[v])),
                   "fit_s": f"{np.median(times[v]):.1f}"}
            if v != "vanilla":
                mean, low, high, n = interval(scores[v] - scores["vanilla"], rng)
                row.update(diff=f"{mean:+.4f} [{low:+.4f}, {high:+.4f}]", verdict=verdict(low, high), neurons=n)
            if records[v]:
                start = np.concatenate([r["start"] for r in records[v]])
                end = np.concatenate([r["end"] for r in records[v]])
                counts = np.concatenate([r["iterations"] for r in records[v]])
                row.update(start_excess=f"{np.mean(start):.2e}", excess=f"{np.mean(end):.2e}",
                           iterations=f"{np.mean(counts):.0f} / {np.percentile(counts, 90):.0f} / {np.max(counts)}")
            rows.append(row)
        for key, value in residuals.items():
            family_rows.append({"case": description, "approximation": key, "median": float(np.median(value)),
                                "p90": float(np.percentile(value, 90)), "neurons": value.size})
    text = markdown_table(rows, [
        ("case", "case", ""), ("variant", "model", ""), ("score", "held-out score", ".4f"),
        ("diff", "minus vanilla [95 % CI]", ""), ("verdict", "vs vanilla", ""),
        ("start_excess", "start: loss above the free optimum", ""), ("excess", "fit: loss above the free optimum", ""),
        ("iterations", "L-BFGS iterations per neuron: mean / 90th percentile / max", ""), ("neurons", "neurons", ""), ("fit_s", "fit s (median)", "")])
    if family_rows:
        text += "\n\nThe vanilla (ridge) STRFs of every outer fold approximated (relative squared residual over neurons and folds):\n\n"
        text += markdown_table(family_rows, [("case", "case", ""), ("approximation", "approximation", ""),
                                             ("median", "median", ".4f"), ("p90", "90th percentile", ".4f"),
                                             ("neurons", "STRFs", "")])
    text += ("\n\nLoss above the free optimum: penalised training loss (MSE in units of each neuron's PSTH variance "
             "plus the penalty) minus the ridge solution's with the same penalty, mean over neurons and folds.\n\n"
             + format_machine(before, machine_info()))
    publish(text, args.markdown)


if __name__ == "__main__":
    main()
