"""Shared helpers of the skstrf benchmarks: machine description, threads, memory, scores, tables.

This module imports only the standard library and numpy at the top, so the deepSTRF worker
of ``bench_vs_deepstrf.py`` can use it from a separate environment without skstrf.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import subprocess
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from run_all import write_atomic

__all__ = [
    "NS1_SHAPE",
    "TUNING_SEEDS",
    "HEADLINE_SEED",
    "seed_note",
    "machine_info",
    "format_machine",
    "publish",
    "set_threads",
    "peak_rss_mib",
    "timed",
    "summarize_times",
    "format_range",
    "ns1_like",
    "test_scores",
    "strf_correlation",
    "penalty_choice",
    "markdown_table",
    "REALISTIC_VARIANTS",
    "mean_interval",
]

# NS1's size (Harper et al. 2016): 20 clips of 999 frames at 5 ms, 34 bands, 119 units,
# 20 repeats; the seed's split is 14 train / 3 valid / 3 test stimuli.
NS1_SHAPE = {"n_stimuli": 20, "n_times": 999, "n_freqs": 34, "n_neurons": 119, "n_repeats": 20}

# Data seeds of ``make_strf_dataset``. The estimator's defaults (learning rate, penalty grid,
# batch size) are chosen by ``defaults.py`` on the TUNING seeds only; every table that reports
# skstrf's accuracy (vs deepSTRF, the docs' kernel and synthetic tables, beyond the linear
# STRF, GPU) is measured on the HEADLINE seed, which no choice of a default has seen.
TUNING_SEEDS = (0, 1)
HEADLINE_SEED = 2

# The cases of ``skstrf.datasets.make_realistic_dataset`` whose cells break our models'
# assumptions, as (preceding, nonlinearity): what the cells heard before each stimulus, and
# outputs other than the LN model's softplus. Every benchmark that scores "the realistic
# cases" takes them from here, for the songs and for the continuous recording alike.
REALISTIC_VARIANTS = (("silence", "softplus"), ("previous", "softplus"), ("background", "softplus"),
                      ("silence", "threshold-power"), ("silence", "adaptation"),
                      ("background", "adaptation"))


def seed_note(seed: int) -> str:
    """A sentence saying whether ``seed`` is the fresh headline seed or a tuning seed."""
    if seed in TUNING_SEEDS:
        return (f"Data seed {seed} is a TUNING seed (the defaults were chosen on it): these scores "
                f"are not a fair headline; use the fresh seed {HEADLINE_SEED}.")
    if seed == HEADLINE_SEED:
        return (f"Data seed {seed}: the fresh headline seed (the defaults were chosen on seeds "
                f"{', '.join(map(str, TUNING_SEEDS))} only).")
    return f"Data seed {seed} (neither the headline seed {HEADLINE_SEED} nor a tuning seed)."


def _cpu_model() -> str:
    """CPU model name as lscpu (or /proc/cpuinfo) reports it."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    """Total physical memory in GiB (NaN where /proc/meminfo is absent)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("nan")


def machine_info() -> dict[str, Any]:
    """Describe the machine and its current load.

    Returns
    -------
    info : dict
        ``nproc`` (CPUs this process may use), ``cpu`` (model name), ``memory_gib``,
        ``loadavg`` (1, 5 and 15 minute load averages), ``python``, ``numpy``, ``torch``
        (when importable), ``torch_threads`` and ``omp_num_threads``, and ``time``.
    """
    info: dict[str, Any] = {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gib": round(_memory_gib(), 1),
        "loadavg": tuple(round(v, 2) for v in os.getloadavg()),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        info["torch"] = None
    return info


def format_machine(before: dict[str, Any], after: dict[str, Any] | None = None) -> str:
    """One-paragraph markdown description of the machine, with the load before and after."""
    text = (
        f"Machine: {before['nproc']} CPU cores ({before['cpu']}), {before['memory_gib']} GiB RAM; "
        f"Python {before['python']}, numpy {before['numpy']}, torch {before.get('torch')} "
        f"with {before.get('torch_threads')} threads (OMP_NUM_THREADS={before['omp_num_threads']}). "
        f"Load average (1/5/15 min) before: {', '.join(map(str, before['loadavg']))}"
    )
    if after is not None:
        text += f"; after: {', '.join(map(str, after['loadavg']))}"
    return text + f". Started {before['time']}."


def set_threads(n_threads: int) -> None:
    """Use ``n_threads`` threads in torch and in the BLAS/OpenMP pools of this process.

    The environment variables are also inherited by subprocesses, which read them at start.
    """
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(n_threads)
    try:
        import torch

        torch.set_num_threads(n_threads)
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n_threads)
    except ImportError:
        pass


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(func: Callable[[], Any], repeats: int = 1) -> tuple[dict[str, float], Any]:
    """Time ``repeats`` calls of ``func``; return the timing summary and the last result.

    Returns
    -------
    timing : dict
        ``seconds`` (median wall-clock time), ``seconds_min`` and ``seconds_max`` (its
        range over the calls), ``cpu_seconds`` (median CPU time of this process over all
        its threads) and ``runs``.
    result : object
        What the last call returned.

    Notes
    -----
    The median rather than the minimum keeps the number honest on a shared machine whose
    load changes during the run, and the range shows how much it changed; the CPU time shows
    how much of the wall time was spent waiting for a core.
    """
    wall, cpu, result = [], [], None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = func()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return summarize_times(wall, cpu), result


def matmul_gflops(dtype: Any = None, n: int = 2048, repeats: int = 3) -> float:
    """Dense matmul throughput of this process in ``dtype`` (float64 by default), GFLOP/s
    (best of ``repeats`` products of two n x n matrices): the rate the limits are taken at."""
    import torch

    dtype = torch.float64 if dtype is None else dtype
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    timing, _ = timed(lambda: a @ b, repeats)
    return 2 * n**3 / timing["seconds_min"] / 1e9


def fit_quietly(est: Any, X: np.ndarray, y: np.ndarray) -> float:
    """Fit ``est`` on ``X, y`` with its warnings silenced (a benchmark's fits of many cases
    would repeat them); return the fit's wall-clock seconds."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    return time.perf_counter() - start


def summarize_times(wall: Sequence[float], cpu: Sequence[float]) -> dict[str, float]:
    """Median, minimum and maximum of wall times and the median CPU time (see :func:`timed`)."""
    return {"seconds": statistics.median(wall), "seconds_min": min(wall), "seconds_max": max(wall),
            "cpu_seconds": statistics.median(cpu), "runs": len(wall)}


def format_range(row: dict[str, Any], key: str = "seconds") -> str | None:
    """``"min–max"`` of a timing summary, or None for a single run."""
    if row.get("runs", 1) <= 1 or row.get(f"{key}_min") is None:
        return None
    return f"{row[key + '_min']:.2f}–{row[key + '_max']:.2f}"


def ns1_like(n_neurons: int = 119, random_state: int = HEADLINE_SEED, **kwargs: Any):
    """Synthetic data of NS1's shape from :func:`skstrf.datasets.make_strf_dataset`.

    Parameters
    ----------
    n_neurons : int, default=119
        Number of simulated neurons.
    random_state : int, default=HEADLINE_SEED
        Seed of the dataset (see :data:`TUNING_SEEDS` and :data:`HEADLINE_SEED`).
    **kwargs
        Overrides of NS1's sizes (``n_stimuli``, ``n_times``, ``n_freqs``, ``n_repeats``)
        or other options of ``make_strf_dataset``.

    Returns
    -------
    data : sklearn.utils.Bunch
        The dataset, with its ``train``, ``valid`` and ``test`` stimulus indices (14 / 3 / 3
        for 20 stimuli).
    """
    from skstrf.datasets import make_strf_dataset

    sizes = {**NS1_SHAPE, "n_neurons": n_neurons, **kwargs}
    return make_strf_dataset(random_state=random_state, **sizes)


def test_scores(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-neuron test cc and cc_norm with skstrf's metrics (the same code for every library).

    Parameters
    ----------
    y_true : ndarray of shape (n_stimuli, n_times, n_neurons, n_repeats)
        Recorded responses of the test stimuli.
    y_pred : ndarray of shape (n_stimuli, n_times, n_neurons)
        Predictions for the test stimuli.

    Returns
    -------
    cc, cc_norm : ndarray of shape (n_neurons,)
    """
    from skstrf.metrics import cc, cc_norm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return (
            np.asarray(cc(y_true, y_pred, multioutput="raw_values")),
            np.asarray(cc_norm(y_true, y_pred, multioutput="raw_values")),
        )


def mean_interval(values: np.ndarray, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float, int]:
    """Mean of the finite ``values`` and its 95 % percentile bootstrap interval.

    Parameters
    ----------
    values : ndarray of shape (n_units,)
        One value per unit resampled (e.g. a paired difference per neuron); NaN is left out.
    n_boot : int, default=2000
        Resamples with replacement.
    seed : int, default=0

    Returns
    -------
    mean, low, high : float
        NaN when no value is finite.
    n : int
        Finite values.
    """
    values = np.asarray(values, dtype=float)
    ok = values[np.isfinite(values)]
    if ok.size == 0:
        return float("nan"), float("nan"), float("nan"), 0
    rng = np.random.default_rng(seed)
    boot = ok[rng.integers(0, ok.size, (n_boot, ok.size))].mean(axis=1)
    low, high = np.percentile(boot, [2.5, 97.5])
    return float(ok.mean()), float(low), float(high), int(ok.size)


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str, str]]) -> str:
    """Format rows as a markdown table.

    Parameters
    ----------
    rows : sequence of dict
        One dict per row; a missing or None value prints as an em dash.
    columns : sequence of (key, header, format spec)
        E.g. ``("seconds", "fit (s)", ".2f")``; an empty spec prints ``str(value)``.

    Returns
    -------
    table : str
    """

    def cell(value: Any, spec: str) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return "—"
        return format(value, spec) if spec else str(value)

    lines = [
        "| " + " | ".join(header for _, header, _ in columns) + " |",
        "| " + " | ".join("---" for _ in columns) + " |",
    ]
    for row in rows:
        lines.append("| " + " | ".join(cell(row.get(key), spec) for key, _, spec in columns) + " |")
    return "\n".join(lines)


def strf_correlation(fitted: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Per-neuron Pearson correlation between fitted and true STRFs of the same shape.

    Parameters
    ----------
    fitted, true : ndarray of shape (n_neurons, ...)

    Returns
    -------
    corr : ndarray of shape (n_neurons,)
    """
    a = fitted.reshape(len(fitted), -1)
    b = true.reshape(len(true), -1)
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    return (a * b).sum(1) / np.sqrt((a**2).sum(1) * (b**2).sum(1))


def penalty_choice(est) -> str:
    """How a fitted closed-form estimator chose its penalty, in words (for table labels)."""
    cv = getattr(est, "cv", None)
    n_fit = len(est.train_stimuli_) + len(est.valid_stimuli_)
    if len(est.valid_stimuli_) == 0 and cv is not None:
        folds = cv if isinstance(cv, int) else type(cv).__name__
        return f"penalty per neuron chosen by {folds}-fold cross-validation over the {n_fit} stimuli"
    if len(est.valid_stimuli_):
        return (f"penalty per neuron chosen on the last {len(est.valid_stimuli_)} stimuli after fitting "
                f"the other {len(est.train_stimuli_)}")
    return f"single penalty {est.alpha!r}"


def out_of_fold(params: dict[str, Any], X: np.ndarray, y: np.ndarray, folds: Sequence, n_lags: int) -> np.ndarray:
    """Out-of-fold predictions of ``STRFRegressor(n_lags=n_lags, random_state=0, **params)``.

    Each fold's test part is predicted once. With the stimulus layout (3-D X) the test
    stimuli are predicted alone; with one continuous recording (2-D X) the whole recording
    is predicted and the test block kept, so that its first frames have their true history.
    """
    from skstrf import STRFRegressor

    pred = None
    for train, test in folds:
        est = STRFRegressor(n_lags=n_lags, random_state=0, **params).fit(X[train], y[train])
        fold = est.predict(X[test]) if X.ndim == 3 else est.predict(X)[test]
        if pred is None:
            pred = np.full((*X.shape[:-1], fold.shape[-1]), np.nan)
        pred[test] = fold
    return pred


def pooled_score(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean over neurons of the cc_norm of predictions pooled over all folds."""
    from skstrf.metrics import cc_norm

    return float(np.nanmean(cc_norm(y, pred, multioutput="raw_values")))


def finish_section(text: str, args: Any, before: dict[str, Any], after: dict[str, Any]) -> None:
    """Close a section with the machine, threads and seed (and a QUICK flag), print it and
    write it to ``args.markdown`` when given."""
    text += f"\n\n{format_machine(before, after)} Threads: {args.threads}. Data seed {args.seed}."
    if args.quick:
        text += " QUICK RUN: tiny sizes, numbers mean nothing."
    publish(text, args.markdown)


def publish_table(intro: str, rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str, str]],
                  before: dict[str, Any], quick: bool, markdown: Path | str | None) -> None:
    """Publish a report that is one table: ``intro``, the table, the machine (and a QUICK
    flag) (:func:`publish`)."""
    machine = format_machine(before, machine_info()) + (" QUICK RUN: tiny sizes, numbers mean nothing." if quick else "")
    publish("\n".join([intro, "", markdown_table(rows, columns), "", machine]), markdown)


def publish(text: str, markdown: Path | str | None) -> None:
    """Print a benchmark's report and, when ``markdown`` (a path) is given, write it there:
    atomically, never through a file or link planted at that name (``run_all.write_atomic``)."""
    print(text)
    if markdown:
        write_atomic(Path(markdown), text + "\n")
