"""How far skstrf's closed form is from the machine's limit at NS1 size.

Run from the repository root::

    python benchmarks/limits.py                 # NS1 size: 17 training stimuli x 999 frames, 34 bands, 15 lags, 119 neurons
    python benchmarks/limits.py --quick         # tiny sizes, to check that it runs

Two tables. **Statistics**: the per-stimulus Gram and cross-products of the standardised
lagged design, computed directly from the materialised design
(:func:`skstrf._model.design_statistics`) and from band cross-correlations
(:func:`skstrf._gram.lagged_statistics`), each against its floating-point operation count
and the time that count takes at the dense float64 matmul throughput measured in the same
run (a 2048 x 2048 product): the limit of each method. **Fit**: ``STRFRegressor()`` with its
defaults (vanilla, penalty by cross-validation) on the same data, against its
cross-validated penalty path alone (:func:`skstrf._solvers.cross_validated_path` on the
statistics summed by fold group, 5 folds, the default 13 penalties, every neuron), the path
with the refit (the refit's decomposition alongside the folds', then
:func:`skstrf._solvers.ridge_path` at each neuron's penalty), and one eigendecomposition of a
(D+1) x (D+1) symmetric matrix alone (torch and numpy), the floor of any ridge path; then
``STRFRegressor(cv=3)``, and the **floor of the fit's design**: the statistics summed by fold
group, plus one fold (its eigendecomposition and held-out products) and one eigendecomposition
timed on one thread, the folds and the refit's decomposition shared perfectly by the cores
with nothing else counted (no input check, no set-up, no waiting), and the same floor if the
held-out products cost nothing. Times are medians over
``--repeats`` runs, with their range.
**Memory**: the default fit's extra peak resident memory over its data at 1000 neurons x 200
stimuli x 999 frames (y as a PSTH), in fresh processes (``benchmarks/scaling.py``'s
machinery; ``--skip-memory`` leaves it out, it generates 1.6 GB of data); target 1.5 GB.
**Load**: the default fit and a plain numpy ridge (materialised lagged design, its Gram, one
eigendecomposition, one penalty) timed on the quiet machine and again while ``--load-procs``
busy-loop processes compete for the cores (default: twice the CPUs this process may use, minus
one: with the timed process itself, a load of twice the cores):
the slowdown of each (target: the fit at most 3x, and no worse than numpy's).
``--skip-load`` leaves it out.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import (HEADLINE_SEED, finish_section, format_range, machine_info, markdown_table, matmul_gflops,
                     set_threads, timed)
from sklearn.model_selection import KFold

from skstrf import STRFRegressor
from skstrf.datasets import make_strf_dataset
from skstrf._gram import lagged_statistics
from skstrf._model import design_statistics
from skstrf._plan import DEFAULT_ALPHAS, fold_groups
from skstrf._solvers import cross_validated_path, moments, ridge_path
from skstrf._threads import limit_threads


def flops(n_frames: int, n_freqs: int, n_lags: int, n_neurons: int, n_stimuli: int) -> dict[str, float]:
    """Multiply-add count x 2 of each way to the statistics (the leading terms)."""
    d = n_freqs * n_lags + 1
    return {
        "direct": 2.0 * n_frames * d * (d + n_neurons),
        # one (F x frames) by (frames x (F + N)) product per lag, plus the (D+1)^2 fill and
        # low-rank edge update per stimulus
        "lagged": 2.0 * n_lags * n_frames * n_freqs * (n_freqs + n_neurons)
        + n_stimuli * d * d * (2 * 2 * n_lags + 2),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=HEADLINE_SEED)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny data, 1 repeat")
    parser.add_argument("--markdown", help="write the section to this file")
    parser.add_argument("--skip-memory", action="store_true",
                        help="leave out the 1000-neuron x 200-stimulus memory row")
    parser.add_argument("--skip-load", action="store_true", help="leave out the busy-machine table")
    parser.add_argument("--load-procs", type=int, default=2 * len(os.sched_getaffinity(0)) - 1,
                        help="busy-loop processes for the loaded timings (default: twice the CPUs minus "
                        "one, so that with the fit itself the load is twice the CPUs)")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    sizes = (dict(n_stimuli=6, n_times=200, n_freqs=10, n_neurons=8) if args.quick else
             dict(n_stimuli=20, n_times=999, n_freqs=34, n_neurons=119))
    repeats = 1 if args.quick else args.repeats
    n_lags = 15
    before = machine_info()

    data = make_strf_dataset(**sizes, random_state=args.seed)
    train = np.concatenate([data.train, data.valid])
    X = torch.as_tensor(np.nan_to_num(data.X[train]), dtype=torch.float32)
    P = torch.as_tensor(np.nanmean(data.y[train], axis=-1), dtype=torch.float32)
    mask = torch.ones(X.shape[:2])
    units = (X.double().mean((0, 1)), X.double().std((0, 1)), P.double().mean((0, 1)), P.double().std((0, 1)))
    # float64 inputs: both methods then compute the same numbers, and the check below is exact
    inputs = (X.double(), P.double(), mask.double(), n_lags, *units)
    n_frames, (S, _, F), N = int(mask.sum()), X.shape, P.shape[2]
    D = F * n_lags + 1

    peak = matmul_gflops(repeats=1 if args.quick else 3)
    counts = flops(n_frames, F, n_lags, N, S)
    t_direct, direct = timed(lambda: design_statistics(*inputs), repeats)
    t_lagged, lagged = timed(lambda: lagged_statistics(*inputs), repeats)
    # the Gram alone (no neurons): the part that the Toeplitz structure makes cheap
    gram_only = (*inputs[:1], inputs[1][..., :0], *inputs[2:6], units[2][:0], units[3][:0])
    t_gram, _ = timed(lambda: lagged_statistics(*gram_only), repeats)
    counts["gram"] = flops(n_frames, F, n_lags, 0, S)["lagged"]
    error = max(float((getattr(direct, k) - getattr(lagged, k)).abs().max() / getattr(direct, k).abs().max())
                for k in ("gram", "cross", "sq", "count"))
    stat_rows = []
    for name, key, timing in (("direct (materialised design)", "direct", t_direct),
                              ("cross-correlations (skstrf._gram)", "lagged", t_lagged),
                              ("cross-correlations, Gram only (no neurons)", "gram", t_gram)):
        stat_rows.append({"method": name, "gflop": counts[key] / 1e9, "seconds": timing["seconds"],
                          "range": format_range(timing), "rate": counts[key] / timing["seconds"] / 1e9,
                          "limit": counts[key] / peak / 1e9})

    sym = torch.randn(D, D, dtype=torch.float64)
    sym = sym @ sym.T
    t_eigh, _ = timed(lambda: torch.linalg.eigh(sym), repeats)
    sym_np = sym.numpy()
    t_eigh_np, _ = timed(lambda: np.linalg.eigh(sym_np), repeats)
    # the fit's penalty search alone, on the statistics it uses (summed by fold group)
    groups, group_folds = fold_groups(list(KFold(5).split(np.zeros((S, 1)))), S)
    grouped = lagged_statistics(*inputs, groups=torch.as_tensor(groups))
    alphas = torch.as_tensor(DEFAULT_ALPHAS, dtype=torch.float64)
    t_path, _ = timed(lambda: cross_validated_path(grouped, group_folds, alphas), repeats)

    def path_and_refit():
        m = moments(grouped)
        scores, (decomposition,) = cross_validated_path(grouped, group_folds, alphas, also=(m.gram / m.count,))
        return ridge_path(m, alphas[scores.argmax(0)][None], decomposition)

    t_refit, _ = timed(path_and_refit, repeats)
    # The floor of this design: the fit's statistics (summed by fold group), then each fold
    # (its eigendecomposition and held-out products) and the refit's eigendecomposition as
    # independent one-thread tasks, shared perfectly by the cores, nothing else counted.
    t_grouped, _ = timed(lambda: lagged_statistics(*inputs, groups=torch.as_tensor(groups)), repeats)
    with limit_threads(1):
        t_fold1, _ = timed(lambda: cross_validated_path(grouped, group_folds[:1], alphas, workers=1), repeats)
        t_eigh1, _ = timed(lambda: torch.linalg.eigh(sym), repeats)
    cores = torch.get_num_threads()
    floor = t_grouped["seconds"] + (len(group_folds) * t_fold1["seconds"] + t_eigh1["seconds"]) / cores
    eigh_floor = t_grouped["seconds"] + (len(group_folds) + 1) * t_eigh1["seconds"] / cores
    fit_data = (data.X[train], data.y[train])
    STRFRegressor(n_lags=n_lags, random_state=0).fit(*fit_data)  # untimed: first-call set-up
    t_fit, _ = timed(lambda: STRFRegressor(n_lags=n_lags, random_state=0).fit(*fit_data), repeats)
    t_fit3, _ = timed(lambda: STRFRegressor(n_lags=n_lags, random_state=0, cv=3).fit(*fit_data), repeats)
    fit_rows = [
        {"what": "STRFRegressor() fit, defaults (vanilla, penalty by CV)", **t_fit, "range": format_range(t_fit)},
        {"what": f"cross-validated penalty path alone (5 folds, {alphas.numel()} penalties, {N} neurons)",
         **t_path, "range": format_range(t_path)},
        {"what": "the path and the refit at each neuron's penalty", **t_refit, "range": format_range(t_refit)},
        {"what": "STRFRegressor(cv=3) fit (3 folds; their scores: the defaults table)",
         **t_fit3, "range": format_range(t_fit3)},
        {"what": "statistics summed by fold group, as the fit computes them", **t_grouped,
         "range": format_range(t_grouped)},
        {"what": f"one fold on one thread: eigendecomposition and held-out products ({alphas.numel()} "
                 f"penalties, {N} neurons)", **t_fold1, "range": format_range(t_fold1)},
        {"what": f"torch.linalg.eigh of one {D} x {D} matrix on one thread", **t_eigh1,
         "range": format_range(t_eigh1)},
        {"what": f"floor of the default fit's design on {cores} threads: statistics + ({len(group_folds)} folds "
                 f"+ the refit's eigendecomposition) / {cores}, nothing else", "seconds": floor},
        {"what": f"the same with free held-out products: statistics + {len(group_folds) + 1} one-thread "
                 f"eigendecompositions / {cores}", "seconds": eigh_floor},
        {"what": f"torch.linalg.eigh of one {D} x {D} matrix", **t_eigh, "range": format_range(t_eigh)},
        {"what": f"numpy.linalg.eigh of one {D} x {D} matrix", **t_eigh_np, "range": format_range(t_eigh_np)},
    ]
    load_rows = [] if args.skip_load else under_load(fit_data, n_lags, repeats, args.load_procs)
    memory_rows = [] if args.skip_memory else memory(args.quick, args.seed, args.threads)
    after = machine_info()

    title = (f"{S} training stimuli x {X.shape[1]} frames, {F} bands x {n_lags} lags = {D - 1} weights + "
             f"intercept, {N} neurons; dense float64 matmul throughput {peak:.1f} GFLOP/s")
    text = f"### Statistics: {title}\n\n" + markdown_table(stat_rows, [
        ("method", "method", ""), ("gflop", "GFLOP", ".3g"), ("seconds", "seconds (median)", ".3g"),
        ("range", "range", ""), ("rate", "achieved GFLOP/s", ".3g"), ("limit", "limit s (GFLOP / matmul rate)", ".2g")])
    text += f"\n\nLargest difference between the two, relative to each array's largest entry: {error:.1e}.\n\n"
    text += "### Fit, its penalty path, and one eigendecomposition\n\n" + markdown_table(fit_rows, [
        ("what", "what", ""), ("seconds", "seconds (median)", ".3g"), ("range", "range", ""),
        ("cpu_seconds", "CPU s", ".3g")])
    if load_rows:
        text += (f"\n\n### On a busy machine: {args.load_procs} busy-loop processes and the timed one on "
                 f"{len(os.sched_getaffinity(0))} CPUs (target: the fit at most 3x its quiet time, "
                 "and no worse than numpy)\n\n" + markdown_table(load_rows, [
                     ("what", "what", ""), ("quiet", "quiet s (median)", ".3g"),
                     ("quiet_range", "range", ""), ("loaded", "loaded s (median)", ".3g"),
                     ("loaded_range", "range", ""), ("slowdown", "slowdown", ".2f")]))
    if memory_rows:
        text += ("\n\n### Memory of the default fit over its data (target: at most "
                 f"{MEMORY_TARGET_MIB / 1024:.1f} GiB extra)\n\n" + markdown_table(memory_rows, [
                     ("n_neurons", "neurons", "d"), ("n_stimuli", "stimuli", "d"),
                     ("data_mib", "X + y (MiB)", ".0f"), ("overhead_mib", "fit's extra peak RSS (MiB)", ".0f"),
                     ("seconds", "fit (s), one run", ".1f"), ("meets", "meets", "")]))
    finish_section(text, args, before, after)


def numpy_ridge(X: np.ndarray, y: np.ndarray, n_lags: int, alpha: float = 1.0) -> np.ndarray:
    """A plain numpy ridge, the naive reference: materialised lagged design of every stimulus
    (zero history), z-scored, its Gram, one eigendecomposition, one penalty. Weights (D, N)."""
    X = np.nan_to_num(X)
    P = np.nanmean(y, axis=-1) if y.ndim == 4 else y
    S, T, F = X.shape
    Z = np.zeros((S, T, F, n_lags))
    for lag in range(n_lags):
        Z[:, lag:, :, lag] = X[:, :T - lag]
    Z = Z.reshape(S * T, F * n_lags)
    Z = (Z - Z.mean(0)) / (Z.std(0) + 1e-12)
    p = P.reshape(S * T, -1)
    p = p - p.mean(0)
    evals, evecs = np.linalg.eigh(Z.T @ Z / len(Z))
    return evecs @ ((evecs.T @ (Z.T @ p / len(Z))) / (evals + alpha)[:, None])


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


def under_load(fit_data: tuple, n_lags: int, repeats: int, n_procs: int) -> list[dict]:
    """Quiet and loaded timings of the default fit and of :func:`numpy_ridge`."""
    jobs = [("STRFRegressor() fit, defaults (vanilla, penalty by CV)",
             lambda: STRFRegressor(n_lags=n_lags, random_state=0).fit(*fit_data)),
            ("plain numpy ridge (materialised design, one eigh, one penalty)",
             lambda: numpy_ridge(*fit_data, n_lags))]
    quiet = [timed(job, repeats)[0] for _, job in jobs]
    with busy(n_procs):
        loaded = [timed(job, repeats)[0] for _, job in jobs]
    return [{"what": name, "quiet": q["seconds"], "quiet_range": format_range(q), "loaded": b["seconds"],
             "loaded_range": format_range(b), "slowdown": b["seconds"] / q["seconds"]}
            for (name, _), q, b in zip(jobs, quiet, loaded)]


#: The extra peak memory a 1000-neuron x 200-stimulus fit may add over its data (issue 14).
MEMORY_TARGET_MIB = 1.5 * 1024


def memory(quick: bool, seed: int, threads: int) -> list[dict]:
    """The default fit's extra peak RSS over its data, each fit in a fresh process.

    Uses ``benchmarks/scaling.py``: the data are generated and saved by one subprocess,
    loaded and fitted by another, whose ``ru_maxrss`` after the fit minus that after
    loading is the fit's extra peak.
    """
    import scaling

    n_stimuli, n_neurons, n_times = (6, 5, 50) if quick else (200, 1000, 999)
    with tempfile.TemporaryDirectory() as tmp:
        rows = scaling.run([("memory", n_stimuli, n_neurons, 15, "vanilla")], n_times, 1, seed,
                           threads, "cpu", Path(tmp))
    for row in rows:
        row["meets"] = "yes" if row["overhead_mib"] <= MEMORY_TARGET_MIB else "NO"
    return rows


if __name__ == "__main__":
    main()
