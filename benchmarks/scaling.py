"""Fit time and peak memory of skstrf's closed-form solvers as stimuli, neurons and lags grow.

Run from the repository root::

    python benchmarks/scaling.py                 # the sweeps and the 1000 x 200 target point
    python benchmarks/scaling.py --quick         # tiny sizes, to check the script runs

Every point runs in a fresh subprocess (``ru_maxrss`` only grows over a process's life): the
data are generated once per size by ``make_strf_dataset`` in their own subprocess and saved
as ``.npy``; the fitting subprocess loads them, notes its peak memory, fits, and reports the
fit's wall time and the new peak.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from _common import HEADLINE_SEED, format_machine, machine_info, markdown_table, peak_rss_mib, set_threads, publish

# (sweep, n_stimuli, n_neurons, n_lags, kernel); NS1's size is 20 stimuli x 119 neurons x 15 lags.
POINTS = [
    ("NS1 size", 20, 119, 15, "vanilla"),
    ("NS1 size", 20, 119, 15, "separable"),
    ("stimuli", 50, 119, 15, "vanilla"),
    ("stimuli", 100, 119, 15, "vanilla"),
    ("stimuli", 200, 119, 15, "vanilla"),
    ("neurons", 20, 300, 15, "vanilla"),
    ("neurons", 20, 1000, 15, "vanilla"),
    ("lags", 20, 119, 5, "vanilla"),
    ("lags", 20, 119, 30, "vanilla"),
    ("lags", 20, 119, 50, "vanilla"),
    ("target", 200, 1000, 15, "vanilla"),
    ("target", 200, 1000, 15, "separable"),
]
QUICK_POINTS = [
    ("quick", 6, 5, 5, "vanilla"),
    ("quick", 6, 5, 5, "separable"),
    ("quick", 10, 5, 8, "vanilla"),
]
TARGET_SECONDS = 300.0
TARGET_GIB = 8.0


def generate(n_stimuli: int, n_neurons: int, n_times: int, n_repeats: int, seed: int,
             folder: Path) -> None:
    """Simulate one dataset and save ``X.npy`` and ``y.npy`` (float64) in ``folder``.

    With ``n_repeats == 1`` y is saved as a PSTH of shape (n_stimuli, n_times, n_neurons),
    the smallest layout the estimator accepts.
    """
    from skstrf.datasets import make_strf_dataset

    data = make_strf_dataset(n_stimuli=n_stimuli, n_times=n_times, n_neurons=n_neurons,
                             n_repeats=n_repeats, random_state=seed)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "X.npy", data.X)
    np.save(folder / "y.npy", data.y[..., 0] if n_repeats == 1 else data.y)


def fit_point(folder: Path, n_lags: int, kernel: str, device: str) -> dict[str, Any]:
    """Load a saved dataset, fit the default closed-form solver, and measure it.

    Returns
    -------
    result : dict
        ``seconds`` (wall time of ``fit``), ``data_mib`` (X and y as loaded),
        ``rss_loaded_mib`` (peak resident memory after imports and loading, before the
        fit), ``rss_peak_mib`` (peak after the fit), ``solver`` and ``valid_cc_norm``.
    """
    import torch

    from skstrf import STRFRegressor

    # Pay torch's one-time lazy imports outside the measured fit.
    torch.optim.AdamW([torch.zeros(1, requires_grad=True)])
    X, y = np.load(folder / "X.npy"), np.load(folder / "y.npy")
    rss_loaded = peak_rss_mib()
    est = STRFRegressor(kernel=kernel, n_lags=n_lags, device=device)
    start = time.perf_counter()
    est.fit(X, y)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "data_mib": (X.nbytes + y.nbytes) / 2**20,
        "rss_loaded_mib": rss_loaded,
        "rss_peak_mib": peak_rss_mib(),
        "solver": est.solver_,
        # No validation stimuli (e.g. a penalty chosen by cross-validation): no score.
        "valid_cc_norm": float(est.history_[-1].get("valid_cc_norm", float("nan"))),
    }


def _child(args: list[str]) -> str:
    """Run this script in a fresh interpreter and return its last stdout line."""
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), *args], check=True,
                         capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def run(points: list[tuple], n_times: int, n_repeats: int, seed: int, threads: int, device: str,
        workdir: Path) -> list[dict[str, Any]]:
    """Measure every point, each fit in its own subprocess; return one row per point."""
    rows = []
    for sweep, n_stimuli, n_neurons, n_lags, kernel in points:
        folder = workdir / f"s{n_stimuli}_n{n_neurons}"
        if not (folder / "y.npy").exists():
            _child(["--generate", str(n_stimuli), str(n_neurons), str(n_times), str(n_repeats),
                    str(seed), str(folder), "--threads", str(threads)])
        result = json.loads(_child(["--fit", str(folder), str(n_lags), kernel, "--device", device,
                                    "--threads", str(threads)]))
        row = {"sweep": sweep, "n_stimuli": n_stimuli, "n_neurons": n_neurons, "n_lags": n_lags,
               "kernel": kernel, **result}
        row["overhead_mib"] = row["rss_peak_mib"] - row["rss_loaded_mib"]
        row["meets"] = (row["seconds"] < TARGET_SECONDS and row["rss_peak_mib"] < TARGET_GIB * 1024)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


COLUMNS = [
    ("sweep", "sweep", ""), ("kernel", "kernel", ""), ("solver", "solver", ""),
    ("n_stimuli", "stimuli", "d"), ("n_neurons", "neurons", "d"), ("n_lags", "lags", "d"),
    ("seconds", "fit (s), one run", ".2f"), ("data_mib", "X + y (MiB)", ".0f"),
    ("rss_loaded_mib", "peak RSS before fit (MiB)", ".0f"), ("rss_peak_mib", "peak RSS (MiB)", ".0f"),
    ("overhead_mib", "fit's extra peak (MiB)", ".0f"), ("valid_cc_norm", "valid cc", ".3f"),
]


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes, to check the script")
    p.add_argument("--n-times", type=int, default=999)
    p.add_argument("--n-repeats", type=int, default=1,
                   help="repeats of the simulated responses; 1 saves a PSTH (the default)")
    p.add_argument("--seed", type=int, default=HEADLINE_SEED)
    p.add_argument("--skip-target", action="store_true",
                   help="leave out the 1000-neuron x 200-stimulus target points (the slow part: "
                        "about 8 GiB of data to generate)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--workdir", type=Path, help="keep the generated data here (default: a temp dir)")
    p.add_argument("--markdown", type=Path, help="write the results section to this file")
    p.add_argument("--generate", nargs=6, help=argparse.SUPPRESS)
    p.add_argument("--fit", nargs=3, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    set_threads(args.threads)
    if args.generate:
        s, n, t, r, seed, folder = args.generate
        generate(int(s), int(n), int(t), int(r), int(seed), Path(folder))
        print("ok")
        return
    if args.fit:
        folder, n_lags, kernel = args.fit
        print(json.dumps(fit_point(Path(folder), int(n_lags), kernel, args.device)))
        return
    points = QUICK_POINTS if args.quick else POINTS
    if args.skip_target:
        points = [p for p in points if p[0] != "target"]
    n_times = 50 if args.quick else args.n_times
    before = machine_info()
    with tempfile.TemporaryDirectory() as tmp:
        rows = run(points, n_times, args.n_repeats, args.seed, args.threads, args.device,
                   args.workdir or Path(tmp))
    after = machine_info()
    target = [r for r in rows if r["sweep"] == "target"]
    layout = "a PSTH (no repeats axis)" if args.n_repeats == 1 else f"{args.n_repeats} repeats"
    lines = [
        "Command: `python benchmarks/scaling.py " + " ".join(argv if argv is not None else sys.argv[1:]) + "`",
        "",
        format_machine(before, after),
        "",
        f"Data: `make_strf_dataset`, {n_times} frames x 34 bands per stimulus, y as {layout}, "
        "float64; default `STRFRegressor(kernel=..., n_lags=...)` (closed form: ridge for vanilla, "
        "ALS for separable, penalty chosen per neuron by 5-fold cross-validation over the stimuli, "
        "then refit on all). Each fit runs in a fresh process; peak RSS is that process's `ru_maxrss`, which "
        "includes the loaded data and the imports. Fit times are from ONE run per point (no "
        "repeats): on a loaded machine they are upper bounds; the memory does not depend on the load.",
        "",
        markdown_table(rows, COLUMNS),
    ]
    for r in target:
        lines.append("")
        lines.append(
            f"- {'PASS' if r['meets'] else 'FAIL'}: {r['kernel']} at {r['n_neurons']} neurons x "
            f"{r['n_stimuli']} stimuli x {n_times} frames: {r['seconds']:.1f} s (target < "
            f"{TARGET_SECONDS:.0f} s), peak {r['rss_peak_mib'] / 1024:.2f} GiB (target < {TARGET_GIB:g} GiB)"
        )
    text = "\n".join(lines)
    publish(text, args.markdown)


if __name__ == "__main__":
    main()
