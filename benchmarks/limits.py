"""Issue 26's limits table: the default fit against a floor that counts everything, wide designs,
predict on a long recording and the out-of-core fit's memory.

Run from the repository root, on a quiet machine::

    python benchmarks/limits.py --markdown benchmarks/_out/limits.md   # the issue's sizes
    python benchmarks/limits.py --quick                               # tiny sizes, to check that it runs

Every timing is the median over ``--repeats`` runs (default 5) with its range [min, max];
a verdict is PASS or FAIL only when the whole range is on one side of the target, otherwise
"within spread". Threads: ``--threads`` (default 2) for torch and the BLAS pools.
The first table states each of issue 26's "Done when" checks, its target and its verdict;
the tables after it give the numbers the checks are made of.

**1. NS1 size** (``make_strf_dataset``: 20 stimuli x 999 frames x 34 bands, 119 neurons,
20 repeats; the 17 stimuli of its train and valid split are fitted; X float32, as
``load_ns1`` returns it). ``STRFRegressor()`` (vanilla, 15 lags, ridge, the penalty per
neuron chosen from 13 by 5-fold cross-validation, then refitted) is timed in steady state
(after one untimed warm-up fit in the same process) on three versions of the same y
(17 x 999 x 119 x 20): float32 C-contiguous (162 MB), float32 strided (every other repeat
of a 40-repeat float32 array: a view whose innermost stride is 8 bytes), float64
C-contiguous (323 MB). The first fit of a fresh process (float32 C-contiguous y loaded from
``.npy``; the imports timed apart) runs in ``--repeats`` separate subprocesses.

The **floor** of each version is the sum of

- one read of y: the fastest of ``np.add.reduce(y, axis=None)``, ``np.add.reduce(y, axis=-1)``
  (the PSTH's sum) and ``torch.from_numpy(y).sum()`` on that very array (same dtype, same
  layout), best of the repeats: the machine's read bandwidth for that layout;
- the statistics, timed directly: the library's own statistics function
  (``skstrf._design.lagged_statistics``) on the float32 X and the float64 PSTH, summed by
  fold group as the fit computes them (median);
- the penalty path's floor: each of the 5 folds (its reduction and its held-out products
  for the 13 penalties, ``skstrf._solvers.cross_validated_scores`` on one fold, in the
  precision the fit uses: float32 here, ``single_folds``; the float64 check of
  near ties, which not every fit makes, is not counted) and the
  refit's reduction (``skstrf._solvers.RidgePath``), each the faster of two ways (medians):
  timed on one thread and shared perfectly by the ``--threads`` cores (time / threads), or
  timed on all ``--threads`` threads (a tridiagonal reduction is bound by memory traffic:
  on two threads it can take less than half its one-thread time).

Nothing else is counted: no input checks, no set-up, no waiting, no read of X (about 1 % of y's bytes).
Target: fit <= 1.3 x floor for float32 strided and float64 contiguous y; float32
contiguous and the first fit are reported without a target. Reported beside it, without a
target: the same floor with the folds timed as this machine runs independent folds,
``--threads`` of them side by side, one thread each (``cross_validated_scores`` on that many
folds, time / threads per fold): folds side by side share the caches and the memory
bandwidth, which perfect sharing leaves out.

**Plain numpy ridge** on the same data (each y version): ``np.nanmean`` over repeats, the
lagged design materialised in float64 (zero history), z-scored, its Gram, one
``np.linalg.eigh`` and ONE penalty (alpha = 1): no penalty search. Target: its time over the
fit's >= 3. Shown beside it, not judged: the same numpy ridge with the fit's search (the 13
penalties, 5-fold cross-validation over stimuli by pooled held-out correlation, a penalty
per neuron, one eigendecomposition per fold and one for the refit).

**2. Wide design**: synthetic data of naplib's shape (naplib is not in the project's
environment): 8 stimuli x 6000 frames x 128 bands (white noise smoothed over 3 frames and
over bands with a Gaussian of 3 bands, float32), 10 neurons (PSTH layout, float32: a random
smooth 128 x 30 STRF each plus noise). ``STRFRegressor(n_lags=30, cv=5,
alpha=DEFAULT_ALPHAS)`` (the 13 penalties pinned) in steady state, against one
``numpy.linalg.eigh`` of its 3840 x 3840 centred, standardised Gram (float64). Target <= 4x.

**3. predict on a long recording**: one continuous recording of 1e6 frames x 34 bands
(float32, smoothed noise), a default model fitted on its first 50,000 frames with 4
neurons. In a fresh subprocess: the model is fitted and ``predict`` run once on 1,000
frames (its one-time set-up), then the resident high-water mark is reset
(``/proc/self/clear_refs``), and the growth is ``VmHWM`` after ``predict`` minus ``VmRSS``
before it (one run). Target: growth <= 4 x (output + X) bytes.

**4. Lazy (out-of-core) fit**: ``benchmarks/out_of_core.py``'s files (``save_stimuli``, 999
frames x 34 bands, 500 neurons, y float32 in the PSTH layout) of 20 and 200 stimuli (38 and
381 MiB of y). Each in a fresh process: a small in-memory warm-up fit, then
``STRFRegressor().fit`` on ``load_dataset(path, lazy=True)``'s dask arrays; growth = the
peak resident memory (``VmHWM``, reset after the warm-up; ``ru_maxrss`` only where the reset
is refused: it keeps the peak of the process that started the child) after the lazy fit minus the warm process's (its peak
and its current, the larger); then, no longer measured, the in-memory fit of the same file.
Three fresh processes per size (one child's growth varies by about +-12 MiB run to run);
the median growth is the size's. Reported: growth at both sizes, the fixed overhead (the smaller file's growth), the growth
per MiB of added y (target < 0.1) and the largest difference between the lazy and
in-memory STRFs (target: equal, relative difference <= 1e-6).

``--skip-memory`` leaves out 3 and 4; ``--small-memory`` runs them at a tenth of the size
(NOT the issue's sizes). ``--skip-wide`` leaves out 2. **Load** (``--skip-load`` leaves it
out): the default fit and the plain numpy ridge on the quiet machine and again while
``--load-procs`` busy-loop processes compete for the cores (target: the fit at most 3x
slower, and no worse than numpy).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import HEADLINE_SEED, finish_section, machine_info, markdown_table, set_threads, timed
from _memory import reset_peak, run_child, status_mib
from sklearn.model_selection import KFold

from skstrf import STRFRegressor
from skstrf._design import lagged_statistics
from skstrf._plan import fold_groups
from skstrf._selection import DEFAULT_ALPHAS
from skstrf._solvers import RidgePath, centred, cross_validated_scores, single_folds
from skstrf._threads import limit_threads, task_workers_set
from skstrf.datasets import make_strf_dataset

HERE = Path(__file__).resolve().parent
N_LAGS = 15
N_FOLDS = 5

#: Issue 26's targets.
FLOOR_TARGET = 1.3  # fit / floor, float32 strided and float64 contiguous y
NUMPY_TARGET = 3.0  # numpy ridge / fit
WIDE_TARGET = 4.0  # wide fit / one numpy eigh of its Gram
PREDICT_TARGET = 4.0  # predict's growth / (output + X)
LAZY_TARGET = 0.1  # lazy fit's growth per MiB of added y
EQUAL_TARGET = 1e-6  # lazy vs in-memory STRFs, relative to the largest weight
LAZY_CHILDREN = 3  # fresh processes per size of the lazy row; the median growth is the row's


# ------------------------------------------------------------------------------ helpers

def spread(row: dict, key: str = "seconds", fmt: str = ".3g") -> str:
    """``median [min, max]`` of a timing summary (:func:`_common.timed`)."""
    if row.get("runs", 1) <= 1:
        return f"{row[key]:{fmt}}"
    return f"{row[key]:{fmt}} [{row[key + '_min']:{fmt}}, {row[key + '_max']:{fmt}}]"


def ratio(num: dict, den: dict) -> dict:
    """``num / den`` as a median with its range: the range pairs the extremes
    (``num_min / den_max`` to ``num_max / den_min``); a plain float is its own range."""
    def parts(x):
        if isinstance(x, dict):
            return x["seconds"], x.get("seconds_min", x["seconds"]), x.get("seconds_max", x["seconds"]), x.get("runs", 1)
        return x, x, x, 1

    n, n_lo, n_hi, n_runs = parts(num)
    d, d_lo, d_hi, d_runs = parts(den)
    return {"seconds": n / d, "seconds_min": n_lo / d_hi, "seconds_max": n_hi / d_lo, "runs": max(n_runs, d_runs)}


def verdict(value: dict, target: float, at_most: bool = True) -> str:
    """PASS or FAIL when the whole range [min, max] is on one side of the target, else
    "within spread"."""
    lo, hi = value.get("seconds_min", value["seconds"]), value.get("seconds_max", value["seconds"])
    if at_most:
        return "PASS" if hi <= target else "FAIL" if lo > target else "within spread"
    return "PASS" if lo >= target else "FAIL" if hi < target else "within spread"


def best(func, repeats: int) -> float:
    """The shortest of ``repeats`` timed calls (after one untimed call)."""
    func()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


# ------------------------------------------------------------------------------ numpy references

def _lagged(X: np.ndarray, n_lags: int) -> np.ndarray:
    """Materialised lagged design (S, T, F * n_lags) in float64, zero history, NaN as zero."""
    X = np.nan_to_num(X)
    S, T, F = X.shape
    Z = np.zeros((S, T, F, n_lags))
    for lag in range(n_lags):
        Z[:, lag:, :, lag] = X[:, :T - lag]
    return Z.reshape(S, T, F * n_lags)


def numpy_ridge(X: np.ndarray, y: np.ndarray, n_lags: int, alpha: float = 1.0) -> np.ndarray:
    """A plain numpy ridge, the naive reference: materialised lagged design of every stimulus
    (zero history), z-scored, its Gram, one eigendecomposition, ONE penalty. Weights (D, N)."""
    P = np.nanmean(y, axis=-1) if y.ndim == 4 else y
    Z = _lagged(X, n_lags)
    Z = Z.reshape(-1, Z.shape[-1])
    Z = (Z - Z.mean(0)) / (Z.std(0) + 1e-12)
    p = P.reshape(len(Z), -1)
    p = p - p.mean(0)
    evals, evecs = np.linalg.eigh(Z.T @ Z / len(Z))
    return evecs @ ((evecs.T @ (Z.T @ p / len(Z))) / (evals + alpha)[:, None])


def numpy_ridge_cv(X: np.ndarray, y: np.ndarray, n_lags: int, alphas: np.ndarray = DEFAULT_ALPHAS,
                   n_folds: int = N_FOLDS) -> np.ndarray:
    """The numpy ridge with the fit's search: ``n_folds``-fold cross-validation over stimuli
    (KFold), every penalty of ``alphas`` scored by the pooled held-out correlation, a penalty
    per neuron, refitted on all stimuli. One eigendecomposition per fold and one for the
    refit. Weights (D, N)."""
    P = np.nanmean(y, axis=-1) if y.ndim == 4 else y
    Z = _lagged(X, n_lags)
    S, T, D = Z.shape
    flat = Z.reshape(-1, D)
    Z = ((flat - flat.mean(0)) / (flat.std(0) + 1e-12)).reshape(S, T, D)
    P = P - P.reshape(-1, P.shape[-1]).mean(0)
    grams = np.einsum("std,ste->sde", Z, Z, optimize=True)
    cross = np.einsum("std,stn->sdn", Z, P, optimize=True)
    pred = np.empty((len(alphas), S, T, P.shape[-1]))
    for train, test in KFold(n_folds).split(np.zeros((S, 1))):
        n = T * len(train)
        evals, evecs = np.linalg.eigh(grams[train].sum(0) / n)
        rotated = evecs.T @ (cross[train].sum(0) / n)
        weights = evecs @ (rotated[None] / (evals[None, :, None] + alphas[:, None, None]))  # (A, D, N)
        pred[:, test] = np.einsum("std,adn->astn", Z[test], weights, optimize=True)
    pred = pred.reshape(len(alphas), -1, P.shape[-1])
    p = P.reshape(-1, P.shape[-1])
    pc = pred - pred.mean(1, keepdims=True)
    corr = (pc * (p - p.mean(0))).sum(1) / np.sqrt((pc**2).sum(1) * ((p - p.mean(0)) ** 2).sum(0) + 1e-300)
    chosen = alphas[np.nanargmax(np.nan_to_num(corr, nan=-np.inf), axis=0)]  # (N,)
    evals, evecs = np.linalg.eigh(grams.sum(0) / (S * T))
    rotated = evecs.T @ (cross.sum(0) / (S * T))
    return evecs @ (rotated / (evals[:, None] + chosen[None]))


# ------------------------------------------------------------------------------ 1. NS1 size

def _read_y(y: np.ndarray, repeats: int) -> tuple[float, str]:
    """The fastest single read of ``y`` in its own dtype and layout, and how it was made."""
    ways = {"np.add.reduce(y, axis=None)": lambda: np.add.reduce(y, axis=None),
            "np.add.reduce(y, axis=-1)": lambda: np.add.reduce(y, axis=-1),
            "torch.from_numpy(y).sum()": lambda: torch.from_numpy(y).sum()}
    times = {name: best(func, repeats) for name, func in ways.items()}
    name = min(times, key=times.get)
    return times[name], name


def _stimulus_inputs(X: np.ndarray, P: np.ndarray) -> tuple:
    """The statistics' inputs as the fit holds them: X float32, the PSTH float64, the mask,
    and the standardisation of bands and neurons over the valid frames."""
    valid = np.isfinite(X).all(-1)
    Xt = torch.as_tensor(np.nan_to_num(X), dtype=torch.float32)
    Pt = torch.as_tensor(np.nan_to_num(P), dtype=torch.float64)
    mask = torch.as_tensor(valid, dtype=torch.float32)
    Xv, Pv = X[valid].astype(np.float64), P[valid].astype(np.float64)
    units = [torch.as_tensor(a) for a in (Xv.mean(0), Xv.std(0) + 1e-12, Pv.mean(0), Pv.std(0) + 1e-12)]
    return Xt, Pt, mask, units


def ns1(args, sizes: dict, repeats: int, tmp: Path) -> dict:
    """Row 1: the default fit on three versions of y, its floors, numpy, the first fit."""
    data = make_strf_dataset(**sizes, random_state=args.seed)
    train = np.concatenate([data.train, data.valid])
    X = np.ascontiguousarray(data.X[train], dtype=np.float32)
    y64 = np.ascontiguousarray(data.y[train], dtype=np.float64)
    del data
    y32 = y64.astype(np.float32)
    wide = np.empty((*y32.shape[:3], 2 * y32.shape[3]), dtype=np.float32)
    wide[..., ::2] = y32
    wide[..., 1::2] = y32[..., ::-1]
    y32s = wide[..., ::2]  # a view: every other repeat
    assert not y32s.flags.c_contiguous and not y32s.flags.f_contiguous and np.array_equal(y32s, y32, equal_nan=True)
    versions = [("float32, C-contiguous", y32), ("float32, strided view (every other repeat of 40)", y32s),
                ("float64, C-contiguous", y64)]
    S, T, F = X.shape
    N, R = y64.shape[2:]
    D = F * N_LAGS + 1

    # the statistics, as the fit computes them (summed by fold group)
    P = np.nanmean(y64, axis=-1)
    Xt, Pt, mask, units = _stimulus_inputs(X, P)
    groups, group_folds = fold_groups(list(KFold(N_FOLDS).split(np.zeros((S, 1)))), S)
    groups_t = torch.as_tensor(groups)
    t_stats, grouped = timed(lambda: lagged_statistics(Xt, Pt, mask, N_LAGS, *units, groups=groups_t), repeats)
    alphas = torch.as_tensor(DEFAULT_ALPHAS, dtype=torch.float64)
    refit = centred(grouped)
    single = single_folds(grouped.gram, alphas.numel() * N)  # the folds' precision, as the fit makes them
    with limit_threads(1):
        t_fold1, _ = timed(lambda: cross_validated_scores(grouped, group_folds[:1], alphas, single=single), repeats)
        t_refit1, _ = timed(lambda: RidgePath(refit), repeats)
    cores = args.threads
    with limit_threads(cores):
        t_fold_all, _ = timed(lambda: cross_validated_scores(grouped, group_folds[:1], alphas, single=single),
                              repeats)
        t_refit_all, _ = timed(lambda: RidgePath(refit), repeats)
    # each piece the faster way: on one thread shared perfectly by the cores, or on all of them
    fold_floor = min(t_fold1["seconds"] / cores, t_fold_all["seconds"])
    refit_floor = min(t_refit1["seconds"] / cores, t_refit_all["seconds"])
    path_floor = len(group_folds) * fold_floor + refit_floor
    # reported beside it: `cores` folds measured side by side, one thread each (what this
    # machine gives for independent folds: they share its caches and memory bandwidth)
    with limit_threads(cores), task_workers_set(cores):
        t_folds_side, _ = timed(lambda: cross_validated_scores(grouped, group_folds[:cores], alphas, single=single),
                                repeats)
    path_side = len(group_folds) * t_folds_side["seconds"] / cores + refit_floor

    def fit(y):
        return STRFRegressor(random_state=0).fit(X, y)

    fit(y32)  # untimed warm-up: the process's first-fit set-up
    rows = []
    for name, y in versions:
        read, how = _read_y(y, max(repeats, 3))
        floor = read + t_stats["seconds"] + path_floor
        floor_side = read + t_stats["seconds"] + path_side
        t_fit, _ = timed(lambda: fit(y), repeats)
        t_np, _ = timed(lambda: numpy_ridge(X, y, N_LAGS), repeats)
        t_np_cv, _ = timed(lambda: numpy_ridge_cv(X, y, N_LAGS), repeats)
        rows.append({"y": name, "mib": y.nbytes / 2**20, "read": read, "read_how": how,
                     "read_gbs": y.nbytes / read / 1e9, "floor": floor, "fit": t_fit,
                     "fit_floor": ratio(t_fit, floor), "floor_side": floor_side,
                     "fit_floor_side": ratio(t_fit, floor_side), "numpy": t_np, "numpy_fit": ratio(t_np, t_fit),
                     "numpy_cv": t_np_cv, "numpy_cv_fit": ratio(t_np_cv, t_fit)})

    # the first fit of a fresh process, float32 C-contiguous y from .npy files
    np.save(tmp / "X.npy", X)
    np.save(tmp / "y.npy", y32)
    child = [sys.executable, "-c", FIRST_FIT_CODE, str(tmp), str(args.threads), str(HERE)]
    firsts = [run_child(child) for _ in range(repeats)]
    first = {"seconds": float(np.median([r["fit"] for r in firsts])), "seconds_min": min(r["fit"] for r in firsts),
             "seconds_max": max(r["fit"] for r in firsts), "runs": len(firsts)}
    imports = float(np.median([r["imports"] for r in firsts]))
    return {"rows": rows, "sizes": (S, T, F, N, R, D), "stats": t_stats, "fold1": t_fold1, "refit1": t_refit1,
            "fold_all": t_fold_all, "refit_all": t_refit_all,
            "n_folds": len(group_folds), "cores": cores, "path_floor": path_floor, "first": first,
            "folds_side": t_folds_side, "path_side": path_side,
            "first_extra": first["seconds"] - rows[0]["fit"]["seconds"], "imports": imports,
            "fit_data": (X, y64)}


#: The first-fit process: a bare interpreter that times its imports, loads X and y from
#: ``.npy`` files and times its first fit (this script's own imports would load torch and
#: skstrf before anything could be timed).
FIRST_FIT_CODE = """
import json, sys, time
start = time.perf_counter()
sys.path.insert(0, sys.argv[3])
from _common import set_threads
set_threads(int(sys.argv[2]))
import numpy as np
from skstrf import STRFRegressor
imports = time.perf_counter() - start
X, y = np.load(sys.argv[1] + '/X.npy'), np.load(sys.argv[1] + '/y.npy')
start = time.perf_counter()
STRFRegressor(random_state=0).fit(X, y)
print(json.dumps({'imports': imports, 'fit': time.perf_counter() - start}))
"""


# ------------------------------------------------------------------------------ 2. wide design

def smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], band_sd: float) -> np.ndarray:
    """Float32 noise of ``shape`` (..., frames, bands) smoothed over 3 frames and over bands
    with a Gaussian of ``band_sd`` bands (rows normalised), unit variance."""
    white = rng.standard_normal((*shape[:-2], shape[-2] + 2, shape[-1]), dtype=np.float32)
    X = (white[..., :-2, :] + white[..., 1:-1, :] + white[..., 2:, :]) / np.float32(np.sqrt(3.0))
    bands = np.arange(shape[-1])
    mix = np.exp(-0.5 * ((bands[:, None] - bands[None]) / band_sd) ** 2).astype(np.float32)
    mix /= np.sqrt((mix**2).sum(0, keepdims=True))
    return X @ mix


def linear_response(rng: np.random.Generator, X: np.ndarray, n_lags: int, n_neurons: int) -> np.ndarray:
    """Responses (..., frames, n_neurons) float32 of random smooth STRFs to ``X`` (..., frames,
    bands) plus noise of equal variance."""
    F = X.shape[-1]
    f, k = np.arange(F)[:, None], np.arange(n_lags)[None]
    strfs = np.stack([np.exp(-((f - rng.uniform(0, F)) / (F / 10)) ** 2 - ((k - rng.uniform(1, n_lags / 2)) / 3) ** 2)
                      * rng.choice([-1, 1]) for _ in range(n_neurons)], axis=-1)  # (F, L, N)
    drive = np.zeros((*X.shape[:-1], n_neurons))
    T = X.shape[-2]
    for lag in range(n_lags):
        drive[..., lag:, :] += X[..., :T - lag, :] @ strfs[:, lag]
    drive /= drive.std() + 1e-12
    return (drive + rng.standard_normal(drive.shape)).astype(np.float32)


def wide(args, sizes: dict, repeats: int) -> dict:
    """Row 2: the default-grid cv=5 fit of a wide design against one numpy eigh of its Gram."""
    rng = np.random.default_rng(args.seed)
    S, T, F, L, N = sizes["n_stimuli"], sizes["n_times"], sizes["n_freqs"], sizes["n_lags"], sizes["n_neurons"]
    X = smooth_noise(rng, (S, T, F), band_sd=3.0)
    y = linear_response(rng, X, L, N)
    Xt, Pt, mask, units = _stimulus_inputs(X, y[..., :0])
    gram = centred(lagged_statistics(Xt, Pt, mask, L, *units))
    G = (gram.gram / gram.count).numpy()
    t_eigh, _ = timed(lambda: np.linalg.eigh(G), repeats)
    t_fit, _ = timed(lambda: STRFRegressor(n_lags=L, cv=N_FOLDS, alpha=DEFAULT_ALPHAS, random_state=0).fit(X, y),
                     repeats)
    return {"S": S, "T": T, "F": F, "L": L, "N": N, "D": G.shape[0], "eigh": t_eigh, "fit": t_fit,
            "ratio": ratio(t_fit, t_eigh)}


# ------------------------------------------------------------------------------ 3. predict

def predict_child(n_frames: int, n_fit: int, n_freqs: int, n_neurons: int, seed: int, threads: int) -> dict:
    """Child: fit on the recording's first ``n_fit`` frames, then measure ``predict``'s growth."""
    set_threads(threads)
    rng = np.random.default_rng(seed)
    X = smooth_noise(rng, (n_frames, n_freqs), band_sd=2.0)
    y = linear_response(rng, X[:n_fit], N_LAGS, n_neurons)
    est = STRFRegressor(random_state=0).fit(X[:n_fit], y)
    est.predict(X[:1000])  # one-time set-up of predict, not counted
    del y
    gc.collect()
    reset = reset_peak()
    before = status_mib("VmRSS")
    start = time.perf_counter()
    pred = est.predict(X)
    seconds = time.perf_counter() - start
    peak = status_mib("VmHWM")
    return {"reset": reset, "rss_before_mib": before, "peak_mib": peak, "growth_mib": peak - before,
            "x_mib": X.nbytes / 2**20, "out_mib": pred.nbytes / 2**20, "out_dtype": str(pred.dtype),
            "x_dtype": str(X.dtype), "seconds": seconds}


def predict_memory(args, sizes: dict) -> dict:
    child = [sys.executable, str(Path(__file__).resolve()), "--child", "predict", "--child-args",
             json.dumps({**sizes, "seed": args.seed, "threads": args.threads})]
    result = run_child(child)
    result.update(sizes)
    result["ratio"] = result["growth_mib"] / (result["x_mib"] + result["out_mib"])
    return result


# ------------------------------------------------------------------------------ 4. lazy fit

def lazy_child(path: str, threads: int) -> dict:
    """Child: a small in-memory warm-up fit, the lazy fit of ``path`` (its growth measured),
    then the in-memory fit of the same file to compare the STRFs."""
    set_threads(threads)
    from _common import peak_rss_mib

    from skstrf.datasets import load_dataset

    warm = make_strf_dataset(n_stimuli=6, n_times=100, n_freqs=34, n_neurons=5, n_repeats=2, n_lags=15,
                             random_state=0)
    STRFRegressor().fit(warm.X, warm.y)
    gc.collect()
    # VmHWM, reset here: getrusage's ru_maxrss survives exec on Linux, so a child started by
    # a parent that once held gigabytes reports the parent's peak (every growth read 0)
    reset = reset_peak()
    rss_warm = status_mib("VmRSS")
    peak_warm = status_mib("VmHWM") if reset else peak_rss_mib()
    with load_dataset(path, lazy=True) as ds:
        y_mib = ds.y.nbytes / 2**20
        start = time.perf_counter()
        lazy = STRFRegressor().fit(ds.X, ds.y)
        seconds = time.perf_counter() - start
    peak = status_mib("VmHWM") if reset else peak_rss_mib()
    data = load_dataset(path)
    memory = STRFRegressor().fit(data.X, data.y)
    diff = float(np.abs(lazy.strfs_ - memory.strfs_).max())
    return {"y_mib": y_mib, "rss_warm_mib": rss_warm, "peak_mib": peak, "peak_reset": reset,
            "growth_mib": peak - max(rss_warm, peak_warm), "fit_seconds": seconds, "max_abs_diff": diff,
            "rel_diff": diff / float(np.abs(memory.strfs_).max())}


def lazy_memory(args, sizes: dict, tmp: Path) -> dict:
    import out_of_core

    rows = []
    for n_stimuli in sizes["n_stimuli"]:
        sized = argparse.Namespace(n_stimuli=n_stimuli, n_times=sizes["n_times"], n_freqs=34, n_lags=N_LAGS,
                                   n_neurons=sizes["n_neurons"], seed=args.seed)
        path = tmp / f"lazy_{n_stimuli}.h5"
        out_of_core.write(path, sized)
        child = [sys.executable, str(Path(__file__).resolve()), "--child", "lazy", "--child-args",
                 json.dumps({"path": str(path), "threads": args.threads})]
        # one child's growth varies by about +-12 MiB run to run (the allocator, dask's
        # threads): the median of a few fresh processes per size makes the verdict stable
        runs = [run_child(child) for _ in range(LAZY_CHILDREN)]
        middle = sorted(runs, key=lambda r: r["growth_mib"])[len(runs) // 2]
        rows.append({"n_stimuli": n_stimuli, **middle,
                     "growths": ", ".join(f"{r['growth_mib']:.0f}" for r in runs),
                     "rel_diff": max(r["rel_diff"] for r in runs),
                     "max_abs_diff": max(r["max_abs_diff"] for r in runs)})
        path.unlink()
    slope = (rows[1]["growth_mib"] - rows[0]["growth_mib"]) / (rows[1]["y_mib"] - rows[0]["y_mib"])
    worst = max(rows, key=lambda r: r["rel_diff"])
    return {"rows": rows, "slope": slope, "fixed": rows[0]["growth_mib"], "max_abs_diff": worst["max_abs_diff"],
            "rel_diff": worst["rel_diff"], **sizes}


# ------------------------------------------------------------------------------ load

@contextlib.contextmanager
def busy(n_procs: int):
    """``n_procs`` processes spinning on a core each, for the duration of the block."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n_procs)]
    try:
        time.sleep(2.0)  # let them reach the run queue (and the load average follow)
        yield
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()


def under_load(fit_data: tuple, repeats: int, n_procs: int) -> list[dict]:
    """Quiet and loaded timings of the default fit and of :func:`numpy_ridge`."""
    jobs = [("STRFRegressor() fit, defaults (y float64 C-contiguous)",
             lambda: STRFRegressor(random_state=0).fit(*fit_data)),
            ("plain numpy ridge (materialised design, one eigh, one penalty)",
             lambda: numpy_ridge(*fit_data, N_LAGS))]
    quiet = [timed(job, repeats)[0] for _, job in jobs]
    with busy(n_procs):
        loaded = [timed(job, repeats)[0] for _, job in jobs]
    return [{"what": name, "quiet": spread(q), "loaded": spread(b), "slowdown": b["seconds"] / q["seconds"]}
            for (name, _), q, b in zip(jobs, quiet, loaded)]


# ------------------------------------------------------------------------------ report

def report(args, one: dict, two: dict | None, three: dict | None, four: dict | None, load_rows: list) -> str:
    S, T, F, N, R, D = one["sizes"]
    checks = []
    for row, target in zip(one["rows"], (None, FLOOR_TARGET, FLOOR_TARGET)):
        checks.append({"check": "NS1 default fit / floor (steady state)", "data": f"y {row['y']}",
                       "value": spread(row["fit_floor"], fmt=".2f"),
                       "target": f"≤ {target}" if target else "— (reported)",
                       "verdict": verdict(row["fit_floor"], target) if target else "—"})
    for row in one["rows"]:
        checks.append({"check": "plain numpy ridge (one penalty) / NS1 default fit", "data": f"y {row['y']}",
                       "value": spread(row["numpy_fit"], fmt=".2f"), "target": f"≥ {NUMPY_TARGET:g}",
                       "verdict": verdict(row["numpy_fit"], NUMPY_TARGET, at_most=False)})
    checks.append({"check": "NS1 first fit in a fresh process (s)", "data": "y float32, C-contiguous",
                   "value": spread(one["first"], fmt=".3g"),
                   "target": f"— (steady state {one['rows'][0]['fit']['seconds']:.3g} s)", "verdict": "—"})
    if two:
        checks.append({"check": f"wide fit ({two['F']} bands x {two['L']} lags, cv=5, 13 penalties) / one "
                                f"numpy eigh of its {two['D']}² Gram",
                       "data": f"X float32, {two['S']} x {two['T']} frames, {two['N']} neurons",
                       "value": spread(two["ratio"], fmt=".2f"), "target": f"≤ {WIDE_TARGET:g}",
                       "verdict": verdict(two["ratio"], WIDE_TARGET)})
    if three:
        ok = three["reset"]
        checks.append({"check": "predict's peak growth / (output + X)",
                       "data": f"{three['n_frames']:.0e} frames x {three['n_freqs']} bands (X {three['x_dtype']}), "
                               f"{three['n_neurons']} neurons (output {three['out_dtype']})",
                       "value": f"{three['ratio']:.2f}" if ok else "not measured (VmHWM could not be reset)",
                       "target": f"≤ {PREDICT_TARGET:g}",
                       "verdict": ("PASS" if three["ratio"] <= PREDICT_TARGET else "FAIL") if ok else "—"})
    if four:
        checks.append({"check": "lazy fit: growth per MiB of added y",
                       "data": f"{four['n_stimuli'][0]} vs {four['n_stimuli'][1]} stimuli x {four['n_times']} frames "
                               f"x {four['n_neurons']} neurons, y float32",
                       "value": f"{four['slope']:.3f} (fixed overhead {four['fixed']:.0f} MiB)",
                       "target": f"< {LAZY_TARGET:g}", "verdict": "PASS" if four["slope"] < LAZY_TARGET else "FAIL"})
        checks.append({"check": "lazy fit's STRFs vs the in-memory fit's", "data": "both files",
                       "value": f"max abs diff {four['max_abs_diff']:.2g} (relative {four['rel_diff']:.1e})",
                       "target": f"equal (relative ≤ {EQUAL_TARGET:g})",
                       "verdict": "PASS" if four["rel_diff"] <= EQUAL_TARGET else "FAIL"})
    text = ("### Issue 26: done when\n\nValues: median [min, max] over the repeats (ratios pair the "
            "extremes); PASS/FAIL only when the whole range is on one side of the target.\n\n")
    text += markdown_table(checks, [("check", "check", ""), ("data", "data (dtype, layout)", ""),
                                    ("value", "measured", ""), ("target", "target", ""),
                                    ("verdict", "verdict", "")])

    text += (f"\n\n### 1. NS1 size: {S} stimuli x {T} frames x {F} bands, {N_LAGS} lags ({D - 1} weights + "
             f"intercept), {N} neurons x {R} repeats; X float32\n\n"
             f"Floor = one read of y (fastest way, best of repeats) + the statistics summed by fold group "
             f"({spread(one['stats'])} s) + the path's floor ({one['n_folds']} folds and the refit's "
             f"reduction, each the faster of one thread shared by {one['cores']} cores and all "
             f"{one['cores']} threads: a fold {spread(one['fold1'])} s on one thread, "
             f"{spread(one['fold_all'])} s on {one['cores']}; the refit {spread(one['refit1'])} s and "
             f"{spread(one['refit_all'])} s: {one['path_floor']:.3g} s). Reported beside it, no target: "
             f"the floor with the folds as this machine runs them side by side ({one['cores']} folds at once, "
             f"one thread each: {spread(one['folds_side'])} s, i.e. "
             f"{one['folds_side']['seconds'] / one['cores']:.3g} s a fold; the path "
             f"{one['path_side']:.3g} s): independent folds share the caches and the memory bandwidth, "
             f"which the first floor's perfect sharing leaves out.\n\n")
    text += markdown_table(one["rows"], [
        ("y", "y", ""), ("mib", "MiB", ".0f"), ("read", "read of y (s)", ".3g"), ("read_gbs", "GB/s", ".3g"),
        ("read_how", "fastest read", ""), ("floor", "floor (s)", ".3g"),
        ("fit_s", "fit (s)", ""), ("fit_floor_s", "fit / floor", ""), ("floor_side", "floor, folds side by side (s)", ".3g"),
        ("fit_floor_side_s", "fit / that floor", ""), ("numpy_s", "numpy, one penalty (s)", ""),
        ("numpy_fit_s", "numpy / fit", ""), ("numpy_cv_s", "numpy, same search (s)", ""),
        ("numpy_cv_fit_s", "numpy search / fit", "")])
    text += (f"\n\nFirst fit in a fresh process (y float32 C-contiguous, {len(one['rows'])} versions above in "
             f"steady state after one warm-up fit): {spread(one['first'])} s over {one['first']['runs']} "
             f"processes, {one['first_extra']:+.3g} s over the steady state; the imports (torch, skstrf) "
             f"take {one['imports']:.2g} s more, not counted. numpy, one penalty: `np.nanmean` over repeats, "
             f"the lagged design materialised in float64, z-scored, its Gram, one `eigh`, alpha = 1, no "
             f"search (the issue's plain numpy ridge). numpy, same search: the 13 penalties by 5-fold "
             f"cross-validation over stimuli, a penalty per neuron, 6 `eigh` (not judged).")
    if two:
        text += (f"\n\n### 2. Wide design: {two['S']} stimuli x {two['T']} frames x {two['F']} bands x {two['L']} "
                 f"lags, {two['N']} neurons (synthetic, naplib's shape)\n\n")
        text += markdown_table([{"fit": spread(two["fit"]), "eigh": spread(two["eigh"]),
                                 "ratio": spread(two["ratio"], fmt=".2f")}],
                               [("fit", f"STRFRegressor(n_lags={two['L']}, cv=5, alpha=13 defaults) fit (s)", ""),
                                ("eigh", f"numpy.linalg.eigh of the {two['D']}² Gram (s)", ""),
                                ("ratio", "fit / eigh", "")])
    if three:
        text += "\n\n### 3. predict on one continuous recording (fresh process, one run)\n\n"
        text += markdown_table([three], [
            ("n_frames", "frames", ".0e"), ("n_freqs", "bands", "d"), ("n_neurons", "neurons", "d"),
            ("n_fit", "fitted on (frames)", "d"), ("x_mib", "X (MiB)", ".0f"), ("out_mib", "output (MiB)", ".0f"),
            ("rss_before_mib", "RSS before (MiB)", ".0f"), ("peak_mib", "peak (MiB)", ".0f"),
            ("growth_mib", "growth (MiB)", ".0f"), ("ratio", "growth / (X + output)", ".2f"),
            ("seconds", "predict (s)", ".2f")])
    if four:
        text += "\n\n### 4. Lazy fit: growth with y (fresh process each, after a small warm-up fit)\n\n"
        text += markdown_table(four["rows"], [
            ("n_stimuli", "stimuli", "d"), ("y_mib", "y (MiB)", ".0f"), ("rss_warm_mib", "warm process (MiB)", ".0f"),
            ("peak_mib", "peak (MiB)", ".0f"), ("growth_mib", "growth, median (MiB)", ".0f"),
            ("growths", f"growth of each of {LAZY_CHILDREN} processes (MiB)", ""),
            ("fit_seconds", "lazy fit (s)", ".1f"), ("max_abs_diff", "max |STRF diff| vs in memory", ".2g")])
        text += (f"\n\nGrowth per MiB of added y: {four['slope']:.3f} (from the median growths); fixed overhead "
                 f"(the smaller file's median growth): {four['fixed']:.0f} MiB.")
    if args.small_memory and (three or four):
        text += " SMALL MEMORY ROWS: a tenth of the issue's sizes, not the issue's measurement."
    if load_rows:
        text += (f"\n\n### On a busy machine: {args.load_procs} busy-loop processes and the timed one on "
                 f"{len(os.sched_getaffinity(0))} CPUs (target: the fit at most 3x its quiet time, "
                 "and no worse than numpy)\n\n" + markdown_table(load_rows, [
                     ("what", "what", ""), ("quiet", "quiet s", ""), ("loaded", "loaded s", ""),
                     ("slowdown", "slowdown", ".2f")]))
    return text


def _format_rows(one: dict) -> None:
    for row in one["rows"]:
        for key in ("fit", "numpy", "numpy_cv"):  # seconds
            row[key + "_s"] = spread(row[key], fmt=".3g")
        for key in ("fit_floor", "fit_floor_side", "numpy_fit", "numpy_cv_fit"):  # ratios
            row[key + "_s"] = spread(row[key], fmt=".2f")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=HEADLINE_SEED)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 2 repeats: checks that it runs")
    parser.add_argument("--markdown", help="write the section to this file")
    parser.add_argument("--skip-memory", action="store_true", help="leave out predict's and the lazy fit's memory")
    parser.add_argument("--small-memory", action="store_true",
                        help="the memory rows at a tenth of the issue's sizes (not the issue's measurement)")
    parser.add_argument("--skip-wide", action="store_true", help="leave out the 128-band x 30-lag design")
    parser.add_argument("--skip-load", action="store_true", help="leave out the busy-machine table")
    parser.add_argument("--load-procs", type=int, default=2 * len(os.sched_getaffinity(0)) - 1,
                        help="busy-loop processes for the loaded timings (default: twice the CPUs minus "
                        "one, so that with the fit itself the load is twice the CPUs)")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # internal: the measuring subprocesses
    parser.add_argument("--child-args", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        options = json.loads(args.child_args)
        if args.child == "predict":
            result = predict_child(**options)
        else:
            result = lazy_child(options["path"], options["threads"])
        print(json.dumps(result))
        return
    set_threads(args.threads)
    repeats = 2 if args.quick else args.repeats
    if args.quick:
        ns1_sizes = dict(n_stimuli=6, n_times=200, n_freqs=10, n_neurons=8)
        wide_sizes = dict(n_stimuli=6, n_times=300, n_freqs=16, n_lags=6, n_neurons=3)
        predict_sizes = dict(n_frames=20_000, n_fit=5_000, n_freqs=34, n_neurons=4)
        lazy_sizes = dict(n_stimuli=(4, 12), n_times=200, n_neurons=20)
    else:
        ns1_sizes = dict(n_stimuli=20, n_times=999, n_freqs=34, n_neurons=119, n_repeats=20)
        wide_sizes = dict(n_stimuli=8, n_times=6000, n_freqs=128, n_lags=30, n_neurons=10)
        scale = 10 if args.small_memory else 1
        predict_sizes = dict(n_frames=1_000_000 // scale, n_fit=50_000 // scale, n_freqs=34, n_neurons=4)
        lazy_sizes = dict(n_stimuli=(20 // scale, 200 // scale), n_times=999, n_neurons=500)
    before = machine_info()
    with tempfile.TemporaryDirectory(prefix="limits_") as folder:
        tmp = Path(folder)
        one = ns1(args, ns1_sizes, repeats, tmp)
        two = None if args.skip_wide else wide(args, wide_sizes, repeats)
        three = None if args.skip_memory else predict_memory(args, predict_sizes)
        four = None if args.skip_memory else lazy_memory(args, lazy_sizes, tmp)
        load_rows = [] if args.skip_load else under_load(one["fit_data"], repeats, args.load_procs)
    after = machine_info()
    _format_rows(one)
    finish_section(report(args, one, two, three, four, load_rows), args, before, after)


if __name__ == "__main__":
    main()
