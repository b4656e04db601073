"""An out-of-core fit: an HDF5 file far larger than the client's memory, fitted through dask.

Run from the repository root (needs the optional dask extra, ``pip install -e ".[dask]"``)::

    python benchmarks/out_of_core.py                       # 2000 stimuli: y about 8 GB (float32)
    python benchmarks/out_of_core.py --distributed 2       # the same through a 2-worker LocalCluster
    python benchmarks/out_of_core.py --quick               # 40 stimuli, to check that it runs
    python benchmarks/out_of_core.py --growth              # memory growth with y: 38 MiB vs 381 MiB

The script writes, stimulus by stimulus (never the whole data in memory), an skstrf dataset
of ``--n-stimuli`` stimuli x 999 frames x 34 bands with 1000 neurons, y float32 in the
PSTH layout (n_stimuli, n_times, n_neurons): 2000 x 999 x 1000 x 4 bytes = 8.0 GB. The
responses are a known linear STRF response plus noise, so the fit can be checked against the
truth. The file goes to ``--dir`` (default a temporary folder under ``--out``), removed at
the end unless ``--keep``.

The fit runs in a fresh child process that imports skstrf, opens the file with
``load_dataset(path, lazy=True)`` and fits the default ``STRFRegressor()`` (vanilla kernel,
15 lags, ridge with the penalty chosen per neuron by 5-fold cross-validation) on its dask
arrays, with dask's default threaded scheduler, or with ``--distributed N`` on a
``distributed.LocalCluster`` of N worker processes (one thread each) started in that child.
Reported: the file's size, the time to write it, the fit's wall time, the child's
**peak resident memory** (``resource.getrusage(RUSAGE_SELF).ru_maxrss``, the high-water mark
of the whole process: the imports of torch and skstrf, the dask scheduler, the fit), the
resident memory after the imports alone, and with ``--distributed`` each worker's peak
(``ru_maxrss`` of the worker processes, read through ``client.run``). The budget of issue 14
is 3 GB of client memory for the 8 GB file.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import HEADLINE_SEED, finish_section, machine_info, markdown_table, set_threads

HERE = Path(__file__).resolve().parent
N_BASES = 8  # the true STRFs are mixtures of this many base STRFs (cheap responses)


def _rss_mib(field: str = "VmRSS") -> float:
    """A memory line of /proc/self/status in MiB (NaN where absent)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def true_model(n_freqs: int, n_lags: int, n_neurons: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Base STRFs (N_BASES, n_freqs, n_lags) and each neuron's mixing weights (n_neurons, N_BASES)."""
    rng = np.random.default_rng(seed)
    f = np.arange(n_freqs)[None, :, None]
    k = np.arange(n_lags)[None, None, :]
    centre_f = rng.uniform(0, n_freqs, (N_BASES, 1, 1))
    centre_k = rng.uniform(1, n_lags / 2, (N_BASES, 1, 1))
    sign = rng.choice([-1.0, 1.0], (N_BASES, 1, 1))
    bases = sign * np.exp(-((f - centre_f) / 3.0) ** 2 - ((k - centre_k) / 2.0) ** 2)
    mixing = rng.normal(size=(n_neurons, N_BASES)) / np.sqrt(N_BASES)
    return bases, mixing


def stimuli(n_stimuli: int, n_times: int, n_freqs: int, n_lags: int, n_neurons: int, seed: int):
    """Yield ``(X_i, y_i)`` float32, one stimulus at a time: X_i a smoothed random spectrogram,
    y_i (n_times, n_neurons) its true linear response plus noise of equal variance."""
    bases, mixing = true_model(n_freqs, n_lags, n_neurons, seed)
    for i in range(n_stimuli):
        rng = np.random.default_rng([seed, i])
        white = rng.standard_normal((n_times + 2, n_freqs))
        X_i = (white[:-2] + white[1:-1] + white[2:]) / np.sqrt(3.0)  # a little temporal smoothing
        # drive of each base: sum over bands and lags of base[b, f, k] * X[t - k, f]
        padded = np.vstack([np.zeros((n_lags - 1, n_freqs)), X_i])
        drive = sum(padded[n_lags - 1 - k:n_lags - 1 - k + n_times] @ bases[:, :, k].T for k in range(n_lags))
        signal = drive @ mixing.T  # (n_times, n_neurons)
        noise = rng.standard_normal((n_times, n_neurons)) * signal.std(axis=0)
        yield X_i.astype(np.float32), (signal + noise).astype(np.float32)


def write(path: Path, args: argparse.Namespace) -> float:
    """Write the dataset stimulus by stimulus; return the seconds it took."""
    from skstrf.datasets import save_stimuli

    bases, mixing = true_model(args.n_freqs, args.n_lags, args.n_neurons, args.seed)
    start = time.perf_counter()
    save_stimuli(path, stimuli(args.n_stimuli, args.n_times, args.n_freqs, args.n_lags, args.n_neurons, args.seed),
                 n_stimuli=args.n_stimuli, dt_ms=5.0, true_strfs=np.einsum("nb,bfk->nfk", mixing, bases))
    return time.perf_counter() - start


def _worker_peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fit_child(path: str, n_workers: int, threads: int) -> dict:
    """The child process's job: fit the file out of core and measure itself."""
    set_threads(threads)
    from skstrf import STRFRegressor
    from skstrf.datasets import load_dataset

    result = {"rss_after_imports_mib": _rss_mib()}
    client = cluster = None
    if n_workers:
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
        result["rss_with_cluster_mib"] = _rss_mib()
    try:
        with load_dataset(path, lazy=True) as ds:
            truth = ds.metadata["true_strfs"]
            start = time.perf_counter()
            est = STRFRegressor().fit(ds.X, ds.y)
            result["fit_seconds"] = time.perf_counter() - start
        if client is not None:
            result["worker_peak_mib"] = sorted(client.run(_worker_peak_mib).values())
    finally:
        if client is not None:
            client.close()
            cluster.close()
    a = est.strfs_.reshape(len(truth), -1)
    b = truth.reshape(len(truth), -1)
    a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    corr = (a * b).sum(1) / np.sqrt((a**2).sum(1) * (b**2).sum(1))
    result.update(peak_rss_mib=_peak_rss_mib(), strf_corr_median=float(np.median(corr)),
                  alpha_median=float(np.median(est.alpha_)))
    return result


def growth_child(path: str, threads: int) -> dict:
    """The child of ``--growth``: a small in-memory warm-up fit, then a lazy fit of the file,
    then (memory no longer measured) the in-memory fit of the same data, to compare."""
    set_threads(threads)
    from skstrf import STRFRegressor
    from skstrf.datasets import load_dataset, make_strf_dataset

    warm = make_strf_dataset(n_stimuli=6, n_times=100, n_freqs=34, n_neurons=5, n_repeats=2, n_lags=15,
                             random_state=0)
    STRFRegressor().fit(warm.X, warm.y)
    rss_warm, peak_warm = _rss_mib(), _peak_rss_mib()
    with load_dataset(path, lazy=True) as ds:
        y_mib = ds.y.nbytes / 2**20
        start = time.perf_counter()
        lazy = STRFRegressor().fit(ds.X, ds.y)
        seconds = time.perf_counter() - start
    peak = _peak_rss_mib()
    data = load_dataset(path)
    memory = STRFRegressor().fit(data.X, data.y)
    scale = np.abs(memory.strfs_).max()
    return {"y_mib": y_mib, "rss_warm_mib": rss_warm, "peak_mib": peak, "growth_mib": peak - max(rss_warm, peak_warm),
            "fit_seconds": seconds, "max_strf_difference": float(np.abs(lazy.strfs_ - memory.strfs_).max() / scale)}


def growth(args: argparse.Namespace) -> None:
    """How the client's memory grows with y (issue 26): two files, 20 and 200 stimuli x 999
    frames x 500 neurons (y float32: 38 MiB and 381 MiB), each fitted lazily in a fresh
    process after a small warm-up fit; the growth of the peak over the warm process."""
    before = machine_info()
    folder = Path(tempfile.mkdtemp(prefix="out_of_core_growth_", dir=args.dir or args.out))
    rows = []
    try:
        for n_stimuli in (20, 200):
            sized = argparse.Namespace(**{**vars(args), "n_stimuli": n_stimuli, "n_neurons": 500})
            path = folder / f"growth_{n_stimuli}.h5"
            write(path, sized)
            cmd = [sys.executable, str(Path(__file__).resolve()), "--growth-child", str(path),
                   "--threads", str(args.threads)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"the fitting process failed:\n{done.stderr[-4000:]}")
            rows.append({"n_stimuli": n_stimuli, **json.loads(done.stdout.strip().splitlines()[-1])})
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    after = machine_info()
    slope = (rows[1]["growth_mib"] - rows[0]["growth_mib"]) / (rows[1]["y_mib"] - rows[0]["y_mib"])
    text = ("### Out of core: memory growth with y\n\n"
            "Two files of 999 frames x 34 bands x 500 neurons (y float32, PSTH layout), 20 and 200 "
            "stimuli; each fitted lazily (`load_dataset(path, lazy=True)`, default `STRFRegressor()`) in "
            "a fresh process after a small in-memory warm-up fit. Growth: the lazy fit's peak resident "
            "memory over the warm process's. The STRFs are compared with the in-memory fit of the same "
            "file (relative to the largest weight).\n\n")
    text += markdown_table(rows, [
        ("n_stimuli", "stimuli", "d"), ("y_mib", "y (MiB)", ".0f"), ("rss_warm_mib", "warm process (MiB)", ".0f"),
        ("peak_mib", "peak (MiB)", ".0f"), ("growth_mib", "growth (MiB)", ".0f"), ("fit_seconds", "fit (s)", ".1f"),
        ("max_strf_difference", "STRFs vs in memory", ".1e")])
    text += (f"\nGrowth per MiB of added y: {slope:.3f} (target below 0.1); the fixed overhead (the "
             f"smaller file's growth) is {rows[0]['growth_mib']:.0f} MiB.\n")
    finish_section(text, args, before, after)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-stimuli", type=int, default=2000)
    parser.add_argument("--n-times", type=int, default=999)
    parser.add_argument("--n-freqs", type=int, default=34)
    parser.add_argument("--n-neurons", type=int, default=1000)
    parser.add_argument("--n-lags", type=int, default=15, help="lags of the true STRFs (the fit uses 15)")
    parser.add_argument("--distributed", type=int, default=0, metavar="N",
                        help="also fit through a LocalCluster of N worker processes")
    parser.add_argument("--dir", type=Path, default=None, help="folder of the HDF5 file")
    parser.add_argument("--keep", action="store_true", help="keep the HDF5 file")
    parser.add_argument("--out", type=Path, default=HERE / "_out")
    parser.add_argument("--seed", type=int, default=HEADLINE_SEED)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="40 stimuli, to check that it runs")
    parser.add_argument("--markdown", help="write the section to this file")
    parser.add_argument("--growth", action="store_true",
                        help="measure how the client's memory grows with y (20 and 200 stimuli x 500 neurons)")
    parser.add_argument("--fit-child", help=argparse.SUPPRESS)  # internal: the fitting process
    parser.add_argument("--growth-child", help=argparse.SUPPRESS)  # internal: the growth process
    args = parser.parse_args(argv)
    if args.fit_child:
        print(json.dumps(fit_child(args.fit_child, args.distributed, args.threads)))
        return
    if args.growth_child:
        print(json.dumps(growth_child(args.growth_child, args.threads)))
        return
    if args.growth:
        args.out.mkdir(parents=True, exist_ok=True)
        growth(args)
        return
    if args.quick:
        args.n_stimuli = min(args.n_stimuli, 40)
    set_threads(args.threads)
    before = machine_info()
    args.out.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="out_of_core_", dir=args.dir or args.out))
    path = folder / "out_of_core.h5"
    try:
        write_seconds = write(path, args)
        size_gb = path.stat().st_size / 1e9
        rows = []
        for workers in [0] + ([args.distributed] if args.distributed else []):
            cmd = [sys.executable, str(Path(__file__).resolve()), "--fit-child", str(path),
                   "--distributed", str(workers), "--threads", str(args.threads)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"the fitting process failed:\n{done.stderr[-4000:]}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            peaks = result.get("worker_peak_mib")
            rows.append({
                "scheduler": f"LocalCluster, {workers} workers" if workers else "dask threads (default)",
                "fit_s": result["fit_seconds"],
                "peak_gib": result["peak_rss_mib"] / 1024,
                "imports_gib": result["rss_after_imports_mib"] / 1024,
                "workers": "—" if not peaks else ", ".join(f"{p / 1024:.2f}" for p in peaks),
                "corr": result["strf_corr_median"],
            })
    finally:
        if args.keep:
            print(f"kept {path}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    after = machine_info()
    y_gb = args.n_stimuli * args.n_times * args.n_neurons * 4 / 1e9
    text = (f"### Out of core: {args.n_stimuli} stimuli x {args.n_times} frames x {args.n_freqs} bands, "
            f"{args.n_neurons} neurons\n\n"
            f"y float32 (PSTH layout) {y_gb:.2f} GB, X {args.n_stimuli * args.n_times * args.n_freqs * 4 / 1e9:.2f} GB; "
            f"HDF5 file {size_gb:.2f} GB, written stimulus by stimulus (`save_stimuli`) in {write_seconds:.0f} s. "
            "Fit: `STRFRegressor()` (vanilla, 15 lags, ridge, penalty per neuron by 5-fold CV) on "
            "`load_dataset(path, lazy=True)`'s dask arrays, one stimulus per chunk, in a fresh process. "
            "Client peak: `ru_maxrss` of that process (imports, scheduler and fit); with a LocalCluster "
            "the scheduler runs in it too, and each worker's peak is its own `ru_maxrss`.\n\n")
    text += markdown_table(rows, [
        ("scheduler", "scheduler", ""), ("fit_s", "fit (s)", ".1f"), ("peak_gib", "client peak (GiB)", ".2f"),
        ("imports_gib", "after imports (GiB)", ".2f"), ("workers", "workers' peaks (GiB)", ""),
        ("corr", "median STRF corr. with truth", ".3f")])
    finish_section(text, args, before, after)


if __name__ == "__main__":
    main()
