"""Several feature spaces (issue 25, "done when"): banded ridge against one shared penalty,
variance partitioning against the generator's truth, and optionally himalaya's banded ridge.

Run from the repository root::

    nice -n 19 python benchmarks/feature_spaces.py                   # fresh seeds 2-11
    python benchmarks/feature_spaces.py --quick                      # tiny, to check it runs
    nice -n 19 /work/peers-venv/bin/python benchmarks/feature_spaces.py --himalaya

**The data** (synthetic, the truth known in closed form): three feature spaces of
``n_bands`` bands each, side by side in X: *informative* (scale 1), *weak* (scale 10,
correlated band by band with the informative one, correlation 0.6; the cells' weights on it
are 0.3 times as large in standardised units) and *pure noise* (scale 100, no weight).
Frames are Gaussian and correlated in time (a moving average of two white frames: lag-1
correlation 0.5). Each cell's noise-free response is a causal linear STRF of ``n_lags`` lags
(decaying over the lags); its trials add Gaussian noise of ``--noise`` (default 1.5) times
its standard deviation (5 trials). The per-cell error of (c) grows with the noise (the signal
power is estimated from the trials: one seed at the full size gave an RMS error of the
informative space's unique part of 0.013 at noise 1.5 and 0.03 at noise 3). Each stimulus
starts with ``n_lags - 1`` frames of the same sound, given as ``lead_in``, so every scored
frame has its real history and the truth below is exact.

**The truth** (a generator quantity, used only to verify (a) and (c)): the noise space's
weights are zero; for every subset ``U`` of the spaces, the share of a cell's noise-free
variance that the best linear predictor from the lags of ``U``'s bands explains is
``w' C[:, U] C[U, U]^-1 C[U, :] w / w' C w``, with ``C`` the covariance of the lagged
design (the bands' covariance within a frame times the lag correlation), so the unique part
of space ``i`` is ``R2(all) - R2(all but i)``.

**The checks**, each over several fresh data seeds (95 % t intervals over seeds; a verdict
is PASS or FAIL only when the whole interval is on one side of the threshold, "undecided"
otherwise):

- (a) the noise space's weights (their contributions, weights times band standard
  deviations, L2 norm per cell) with one shared penalty over those of banded ridge
  (``feature_spaces=[n, n, n]``), both fitted on all stimuli: the geometric mean over
  cells; PASS at 10 or more;
- (b) held-out cc_norm (out-of-fold predictions of 5 contiguous outer folds over stimuli,
  pooled; ``skstrf.metrics.cc_norm``), banded minus shared, paired per seed: PASS above 0;
- (c) :func:`skstrf.inspection.partition_variance` (the banded estimator, the same outer
  folds): each space's unique part minus the truth, mean over cells (the bias, PASS within
  +-0.02) and root mean square over cells (PASS below 0.02).

``--himalaya`` (run with the benchmark environment's Python, see ``benchmarks/README.md``)
adds himalaya's ``BandedRidgeCV`` (random-search solver) on the same X, folds and metric:
the causal lagged design of every stimulus with skstrf's history rule (``history="mean"``:
each band's training-frame mean before the stimulus; with the lead-in, no scored frame reads
it), in skstrf's column order (band, then lag), the lead-in frames' rows left out of
training and scoring as skstrf leaves them out; inner folds: 5 contiguous folds over the
training stimuli, as skstrf's ``cv=5``; the same candidates, 13 penalties x 25 relative
penalties of the spaces (skstrf's default grid, as himalaya's simplex weights ``1/r`` over
their sum); ``fit_intercept=True``. Two rows: X as given, penalties ``logspace(-4, 2, 13)``
x training frames x the mean column variance (``peers.py``'s rule); and every column
standardised on the training frames first (himalaya's tutorials do this), penalties
``logspace(-4, 2, 13)`` x training frames. Seconds: one fit with its search, mean over outer
folds. Only the ``--quick`` run was made by the script's author (a shared machine); run the
full one on a quiet machine before quoting times.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from _common import format_machine, machine_info, markdown_table, set_threads, publish
from scipy import stats
from sklearn.base import clone
from sklearn.model_selection import KFold

from skstrf import STRFRegressor
from skstrf.inspection import partition_variance
from skstrf.metrics import cc_norm, signal_power

FRESH_SEEDS = tuple(range(2, 12))  # 0 and 1 are the tuning seeds of benchmarks/_common.py
SCALES = (1.0, 10.0, 100.0)
NAMES = ("informative", "weak", "noise")
PER_FRAME_ALPHAS = np.logspace(-4, 2, 13)  # skstrf's default grid


# ----------------------------------------------------------------------------- data
def make_case(seed: int, n_stimuli: int, n_times: int, n_bands: int, n_lags: int, n_neurons: int,
              n_repeats: int = 5, noise: float = 1.5, rho: float = 0.6, weak: float = 0.3):
    """X (S, lead + T, 3 n_bands), y (S, lead + T, N, R), the lead-in, the generator's weights
    (N, 3 n_bands, L) on X and the truth: {subset: R2 per cell}."""
    rng = np.random.default_rng(seed)
    lead = n_lags - 1
    T = n_times + lead

    def frames():  # MA(1) in time: lag-1 correlation 0.5
        z = rng.standard_normal((n_stimuli, T + 1, n_bands))
        return (z[:, 1:] + z[:, :-1]) / np.sqrt(2.0)

    a = frames()
    b = rho * a + np.sqrt(1 - rho**2) * frames()
    c = frames()
    X = np.concatenate([SCALES[0] * a, SCALES[1] * b, SCALES[2] * c], axis=2)
    F = 3 * n_bands
    decay = np.exp(-np.arange(n_lags) / 2.0)
    w = np.zeros((n_neurons, F, n_lags))
    w[:, :n_bands] = rng.standard_normal((n_neurons, n_bands, n_lags)) * decay / SCALES[0]
    w[:, n_bands:2 * n_bands] = weak * rng.standard_normal((n_neurons, n_bands, n_lags)) * decay / SCALES[1]
    s = np.zeros((n_stimuli, T, n_neurons))
    for k in range(n_lags):
        s[:, k:] += np.einsum("stf,nf->stn", X[:, :T - k], w[:, :, k])
    sd = s[:, lead:].std(axis=(0, 1))
    y = s[..., None] + noise * sd[:, None] * rng.standard_normal(s.shape + (n_repeats,))
    # covariance of the lagged design, columns (band, lag): bands within a frame x lags
    band_cov = np.zeros((F, F))
    eye = np.eye(n_bands)
    for i, scale in enumerate(SCALES):
        band_cov[i * n_bands:(i + 1) * n_bands, i * n_bands:(i + 1) * n_bands] = scale**2 * eye
    cross = SCALES[0] * SCALES[1] * rho * eye
    band_cov[:n_bands, n_bands:2 * n_bands] = band_cov[n_bands:2 * n_bands, :n_bands] = cross
    lag = np.abs(np.subtract.outer(np.arange(n_lags), np.arange(n_lags)))
    lagged = np.kron(band_cov, np.where(lag == 0, 1.0, np.where(lag == 1, 0.5, 0.0)))
    space = np.repeat(np.repeat(np.arange(3), n_bands), n_lags)
    flat = w.reshape(n_neurons, -1)
    total = np.einsum("nd,de,ne->n", flat, lagged, flat)
    truth = {}
    for size in (1, 2, 3):
        for subset in itertools.combinations(range(3), size):
            u = np.isin(space, subset)
            explained = lagged[:, u] @ np.linalg.solve(lagged[np.ix_(u, u)], lagged[u, :])
            truth[subset] = np.einsum("nd,de,ne->n", flat, explained, flat) / total
    return X, y, lead, w, truth


# ----------------------------------------------------------------------- statistics
def interval(values) -> tuple[float, float, float]:
    """Mean and 95 % t interval over seeds."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if values.size < 2:
        return mean, np.nan, np.nan
    half = stats.t.ppf(0.975, values.size - 1) * values.std(ddof=1) / np.sqrt(values.size)
    return mean, mean - half, mean + half


def verdict(low: float, high: float, *, above: float | None = None, below: float | None = None,
            within: float | None = None) -> str:
    """PASS or FAIL when the whole interval is on one side of the threshold."""
    if np.isnan(low):
        return "undecided (one seed)"
    if above is not None:
        return "PASS" if low > above else "FAIL" if high <= above else "undecided"
    if below is not None:
        return "PASS" if high < below else "FAIL" if low >= below else "undecided"
    if low >= -within and high <= within:
        return "PASS"
    return "FAIL" if high < -within or low > within else "undecided"


def scored(y: np.ndarray, lead: int) -> np.ndarray:
    """y with NaN on the lead-in frames (neither fitted nor scored)."""
    out = y.astype(float, copy=True)
    out[:, :lead] = np.nan
    return out


def held_out_scores(y_scored: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """Mean over cells of cc_norm and of the explained share of the signal power."""
    cc = cc_norm(y_scored, pred, multioutput="raw_values", unreliable="ignore")
    psth = np.nanmean(y_scored, axis=-1)
    valid = ~np.isnan(psth)
    p = np.where(valid, psth, 0.0)
    q = np.where(valid, pred, 0.0)
    n = valid.sum(axis=(0, 1))
    mean_p = p.sum(axis=(0, 1)) / n
    var_p = (np.where(valid, p - mean_p, 0.0) ** 2).sum(axis=(0, 1)) / n
    mse = ((p - q) ** 2).sum(axis=(0, 1)) / n
    return float(np.mean(cc)), float(np.mean((var_p - mse) / signal_power(y_scored)))


def out_of_fold(est, X, y, folds) -> tuple[np.ndarray, list[float]]:
    pred = np.full(y.shape[:3], np.nan)
    seconds = []
    for train, test in folds:
        start = time.perf_counter()
        fitted = clone(est).fit(X[train], y[train])
        seconds.append(time.perf_counter() - start)
        pred[test] = fitted.predict(X[test])
    return pred, seconds


# ------------------------------------------------------------------------- himalaya
def lagged_design(X: np.ndarray, level: np.ndarray, n_lags: int) -> np.ndarray:
    """(S, T, F * L) causal lagged design, columns (band, lag), ``level`` before each stimulus
    (skstrf's history rule: the training frames' mean of each band)."""
    S, T, F = X.shape
    padded = np.concatenate([np.broadcast_to(level, (S, n_lags - 1, F)), X], axis=1)
    out = np.empty((S, T, F, n_lags))
    for k in range(n_lags):
        out[..., k] = padded[:, n_lags - 1 - k:n_lags - 1 - k + T]
    return out.reshape(S, T, F * n_lags)


def himalaya_banded(X, y, lead, n_lags, n_bands, folds, standardise: bool):
    """Out-of-fold predictions and seconds per fit of himalaya's BandedRidgeCV."""
    from himalaya.ridge import BandedRidgeCV
    from sklearn.preprocessing import StandardScaler

    from skstrf._penalty import space_candidates  # skstrf's default relative penalties

    relative = space_candidates(3)
    gammas = (1.0 / relative) / (1.0 / relative).sum(axis=1, keepdims=True)
    groups = np.repeat(np.arange(3), n_bands * n_lags)
    psth = y.mean(axis=-1)
    pred = np.full(psth.shape, np.nan)
    seconds = []
    # one small fit first, so that the first timed fit does not pay for himalaya's start-up
    warm = np.random.default_rng(0).standard_normal((40, groups.size))
    BandedRidgeCV(groups=groups, cv=2, solver_params={"n_iter": gammas[:2], "progress_bar": False,
                                                      "warn": False}).fit(warm, warm[:, :2])
    for train, test in folds:
        start = time.perf_counter()
        level = X[train].reshape(-1, X.shape[-1]).mean(axis=0)
        design_train = lagged_design(X[train], level, n_lags)[:, lead:]
        n_stim, n_frames = design_train.shape[:2]
        Z = design_train.reshape(n_stim * n_frames, -1)
        P = psth[train][:, lead:].reshape(n_stim * n_frames, -1)
        scaler = StandardScaler().fit(Z) if standardise else None
        if scaler is not None:
            Z = scaler.transform(Z)
        scale = Z.shape[0] * (1.0 if standardise else float(Z.var(axis=0).mean()))
        frame = np.repeat(np.arange(n_stim), n_frames)
        inner = [(np.flatnonzero(np.isin(frame, tr)), np.flatnonzero(np.isin(frame, te)))
                 for tr, te in KFold(min(5, n_stim)).split(np.arange(n_stim))]
        model = BandedRidgeCV(groups=groups, solver="random_search", fit_intercept=True, cv=inner,
                              solver_params={"n_iter": gammas, "alphas": PER_FRAME_ALPHAS * scale,
                                             "progress_bar": False, "warn": False})
        model.fit(Z, P)
        seconds.append(time.perf_counter() - start)
        design_test = lagged_design(X[test], level, n_lags)[:, lead:]
        Zt = design_test.reshape(-1, design_test.shape[-1])
        if scaler is not None:
            Zt = scaler.transform(Zt)
        pred[test, lead:] = np.asarray(model.predict(Zt)).reshape(len(test), -1, psth.shape[-1])
    return pred, seconds


# ----------------------------------------------------------------------------- main
def run_seed(seed: int, sizes: dict, use_himalaya: bool, noise: float = 1.5) -> dict:
    X, y, lead, w, truth = make_case(seed, noise=noise, **sizes)
    n_bands, n_lags = sizes["n_bands"], sizes["n_lags"]
    folds = list(KFold(5).split(X))
    shared = STRFRegressor(n_lags=n_lags, lead_in=lead)
    banded = STRFRegressor(n_lags=n_lags, lead_in=lead, feature_spaces=[n_bands] * 3)
    out: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # (a) the noise space's weights, fitted on all stimuli
        norms = [np.sqrt((est.fit(X, y).contributions_[:, 2 * n_bands:] ** 2).sum(axis=(1, 2)))
                 for est in (clone(shared), clone(banded))]
        out["log_shrink"] = float(np.mean(np.log(norms[0] / norms[1])))
        # (b) held-out scores, the same outer folds
        y_scored = scored(y, lead)
        for name, est in (("shared", shared), ("banded", banded)):
            pred, seconds = out_of_fold(est, X, y, folds)
            out[f"cc_{name}"], out[f"ev_{name}"] = held_out_scores(y_scored, pred)
            out[f"s_{name}"] = float(np.mean(seconds))
        # (c) variance partitioning against the truth
        start = time.perf_counter()
        part = partition_variance(banded, X, y, cv=KFold(5))
        out["s_partition"] = time.perf_counter() - start
        everything = truth[(0, 1, 2)]
        true_unique = np.stack([everything - truth[tuple(j for j in range(3) if j != i)] for i in range(3)])
        error = part.unique - true_unique
        out["bias"] = error.mean(axis=1)
        out["rms"] = np.sqrt((error ** 2).mean(axis=1))
        out["true_unique"] = true_unique.mean(axis=1)
        shared_error = part.shared - (everything - true_unique.sum(axis=0))
        out["bias_shared"], out["rms_shared"] = float(shared_error.mean()), float(np.sqrt((shared_error ** 2).mean()))
        out["total"] = float(part.total.mean())
        if use_himalaya:
            for key, standardise in (("hx", False), ("hz", True)):
                pred, seconds = himalaya_banded(X, y, lead, n_lags, n_bands, folds, standardise)
                out[f"cc_{key}"], out[f"ev_{key}"] = held_out_scores(y_scored, pred)
                out[f"s_{key}"] = float(np.mean(seconds))
    return out


def table(results: list[dict], use_himalaya: bool) -> str:
    rows = []

    def row(what, values, criterion="", **rule):
        mean, low, high = interval(values)
        rows.append({"what": what, "mean": mean, "ci": f"[{low:.3f}, {high:.3f}]" if np.isfinite(low) else "—",
                     "criterion": criterion, "verdict": verdict(low, high, **rule) if rule else ""})

    get = lambda key: [r[key] for r in results]  # noqa: E731
    mean, low, high = interval(get("log_shrink"))
    rows.append({"what": "(a) noise-space weights (contributions' L2 norm), shared penalty / banded: "
                         "geometric mean over cells (truth: 0, a generator quantity)",
                 "mean": float(np.exp(mean)),
                 "ci": f"[{np.exp(low):.1f}, {np.exp(high):.1f}]" if np.isfinite(low) else "—",
                 "criterion": ">= 10x", "verdict": verdict(low, high, above=np.log(10) - 1e-12)})
    row("held-out cc_norm, one shared penalty", get("cc_shared"))
    row("held-out cc_norm, banded (feature_spaces)", get("cc_banded"))
    row("(b) held-out cc_norm, banded - shared (paired)", np.subtract(get("cc_banded"), get("cc_shared")),
        "> 0", above=0.0)
    row("held-out explained share of the signal power, shared", get("ev_shared"))
    row("held-out explained share of the signal power, banded", get("ev_banded"))
    for i, name in enumerate(NAMES):
        row(f"truth: unique part of the {name} space (generator quantity)", [r["true_unique"][i] for r in results])
        row(f"(c) unique part of the {name} space - truth, mean over cells", [r["bias"][i] for r in results],
            "within +-0.02", within=0.02)
        row(f"(c) unique part of the {name} space - truth, RMS over cells", [r["rms"][i] for r in results],
            "< 0.02", below=0.02)
    row("shared part - truth, mean over cells", get("bias_shared"))
    row("shared part - truth, RMS over cells", get("rms_shared"))
    row("total (every space), mean over cells (truth: 1)", get("total"))
    if use_himalaya:
        with_h = [r for r in results if "cc_hx" in r]  # the seeds himalaya ran on
        seeds = ", ".join(str(r["seed"]) for r in with_h)
        geth = lambda key: [r[key] for r in with_h]  # noqa: E731
        for key, what in (("hx", "himalaya BandedRidgeCV, X as given"),
                          ("hz", "himalaya BandedRidgeCV, columns standardised")):
            row(f"held-out cc_norm, {what} (seeds {seeds})", geth(f"cc_{key}"))
            row(f"held-out cc_norm, {what} - skstrf banded (paired, seeds {seeds})",
                np.subtract(geth(f"cc_{key}"), geth("cc_banded")), "within 0.005 or above", above=-0.005)
            row(f"held-out explained share, {what}", geth(f"ev_{key}"))
            row(f"seconds per fit, {what}", geth(f"s_{key}"))
            row(f"seconds per fit, {what} / skstrf banded (paired)", np.divide(geth(f"s_{key}"), geth("s_banded")),
                ">= 5x", above=5.0)
    row("seconds per fit, skstrf shared", get("s_shared"))
    row("seconds per fit, skstrf banded", get("s_banded"))
    row("seconds per partition_variance call (35 fits)", get("s_partition"))
    return markdown_table(rows, [("what", "quantity", ""), ("mean", "mean", ".3f"), ("ci", "95% interval (seeds)", ""),
                                 ("criterion", "criterion", ""), ("verdict", "verdict", "")])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes and two seeds: checks that it runs")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="data seeds (default: fresh seeds 2-11)")
    parser.add_argument("--himalaya", action="store_true", help="add himalaya's BandedRidgeCV (benchmark venv)")
    parser.add_argument("--himalaya-seeds", type=int, default=None,
                        help="himalaya on the first K seeds only (about 13 min per seed on 2 cores; default: all)")
    parser.add_argument("--noise", type=float, default=1.5,
                        help="trial noise SD over the noise-free response's SD (default 1.5)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--markdown", type=Path, default=None, help="also write the section to this file")
    args = parser.parse_args()
    set_threads(args.threads)
    if args.quick:
        sizes = dict(n_stimuli=10, n_times=120, n_bands=3, n_lags=3, n_neurons=3)
        seeds = args.seeds or [2, 3]
    else:
        sizes = dict(n_stimuli=20, n_times=400, n_bands=8, n_lags=5, n_neurons=10)
        seeds = args.seeds or list(FRESH_SEEDS)
    before = machine_info()
    results = []
    for seed in seeds:  # one line per seed on stderr: a long run shows where it is
        start = time.perf_counter()
        with_himalaya = args.himalaya and (args.himalaya_seeds is None or len(results) < args.himalaya_seeds)
        results.append({"seed": seed, **run_seed(seed, sizes, with_himalaya, args.noise)})
        print(f"seed {seed}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    text = (f"### Several feature spaces (`benchmarks/feature_spaces.py{' --quick' if args.quick else ''}"
            f"{' --himalaya' if args.himalaya else ''}`)\n\n"
            f"Three spaces of {sizes['n_bands']} bands (informative, weak and correlated with it, pure "
            f"noise; scales 1, 10, 100), {sizes['n_stimuli']} stimuli x {sizes['n_times']} scored frames, "
            f"{sizes['n_lags']} lags, {sizes['n_neurons']} cells, 5 trials with noise {args.noise:g} x the "
            f"response's SD; data seeds {seeds}; 5 outer "
            "folds over stimuli. Intervals: 95 % t intervals over seeds.\n\n" + table(results, args.himalaya))
    text += f"\n\n{format_machine(before, machine_info())} Threads: {args.threads}."
    if args.quick:
        text += " QUICK RUN: tiny sizes, numbers mean nothing."
    publish(text, args.markdown)


if __name__ == "__main__":
    main()
