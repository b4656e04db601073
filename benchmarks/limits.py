"""How far skstrf's closed form is from the machine's limit at NS1 size.

Run from the repository root::

    python benchmarks/limits.py                 # NS1 size: 17 training stimuli x 999 frames, 34 bands, 15 lags, 119 neurons
    python benchmarks/limits.py --quick         # tiny sizes, to check that it runs

Two tables. **Statistics**: the per-stimulus Gram and cross-products of the standardised
lagged design, computed directly from the materialised design
(:func:`skstrf.model.design_statistics`) and from band cross-correlations
(:func:`skstrf.gram.lagged_statistics`), each against its floating-point operation count
and the time that count takes at the dense float64 matmul throughput measured in the same
run (a 2048 x 2048 product): the limit of each method. **Fit**: ``STRFRegressor()`` with its
defaults (vanilla, penalty by cross-validation) on the same data, against one
eigendecomposition of a (D+1) x (D+1) symmetric matrix alone (torch and numpy), the
floor of any ridge path. Times are medians over ``--repeats`` runs, with their range.
**Memory**: the default fit's extra peak resident memory over its data at 1000 neurons x 200
stimuli x 999 frames (y as a PSTH), in fresh processes (``benchmarks/scaling.py``'s
machinery; ``--skip-memory`` leaves it out, it generates 1.6 GB of data); target 1.5 GB.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from _common import (HEADLINE_SEED, finish_section, format_range, machine_info, markdown_table,
                     set_threads, timed)

from skstrf import STRFRegressor
from skstrf.datasets import make_strf_dataset
from skstrf.gram import lagged_statistics
from skstrf.model import design_statistics


def matmul_gflops(n: int = 2048, repeats: int = 3) -> float:
    """Dense float64 matmul throughput of this process, GFLOP/s (best of ``repeats``)."""
    a = torch.randn(n, n, dtype=torch.float64)
    b = torch.randn(n, n, dtype=torch.float64)
    a @ b
    timing, _ = timed(lambda: a @ b, repeats)
    return 2 * n**3 / timing["seconds_min"] / 1e9


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
                              ("cross-correlations (skstrf.gram)", "lagged", t_lagged),
                              ("cross-correlations, Gram only (no neurons)", "gram", t_gram)):
        stat_rows.append({"method": name, "gflop": counts[key] / 1e9, "seconds": timing["seconds"],
                          "range": format_range(timing), "rate": counts[key] / timing["seconds"] / 1e9,
                          "limit": counts[key] / peak / 1e9})

    sym = torch.randn(D, D, dtype=torch.float64)
    sym = sym @ sym.T
    t_eigh, _ = timed(lambda: torch.linalg.eigh(sym), repeats)
    sym_np = sym.numpy()
    t_eigh_np, _ = timed(lambda: np.linalg.eigh(sym_np), repeats)
    fit_data = (data.X[train], data.y[train])
    STRFRegressor(n_lags=n_lags, random_state=0).fit(*fit_data)  # untimed: first-call set-up
    t_fit, _ = timed(lambda: STRFRegressor(n_lags=n_lags, random_state=0).fit(*fit_data), repeats)
    fit_rows = [
        {"what": "STRFRegressor() fit, defaults (vanilla, penalty by CV)", **t_fit, "range": format_range(t_fit)},
        {"what": f"torch.linalg.eigh of one {D} x {D} matrix", **t_eigh, "range": format_range(t_eigh)},
        {"what": f"numpy.linalg.eigh of one {D} x {D} matrix", **t_eigh_np, "range": format_range(t_eigh_np)},
    ]
    memory_rows = [] if args.skip_memory else memory(args.quick, args.seed, args.threads)
    after = machine_info()

    title = (f"{S} training stimuli x {X.shape[1]} frames, {F} bands x {n_lags} lags = {D - 1} weights + "
             f"intercept, {N} neurons; dense float64 matmul throughput {peak:.1f} GFLOP/s")
    text = f"### Statistics: {title}\n\n" + markdown_table(stat_rows, [
        ("method", "method", ""), ("gflop", "GFLOP", ".3g"), ("seconds", "seconds (median)", ".3g"),
        ("range", "range", ""), ("rate", "achieved GFLOP/s", ".3g"), ("limit", "limit s (GFLOP / matmul rate)", ".2g")])
    text += f"\n\nLargest difference between the two, relative to each array's largest entry: {error:.1e}.\n\n"
    text += "### Fit against one eigendecomposition\n\n" + markdown_table(fit_rows, [
        ("what", "what", ""), ("seconds", "seconds (median)", ".3g"), ("range", "range", ""),
        ("cpu_seconds", "CPU s", ".3g")])
    if memory_rows:
        text += ("\n\n### Memory of the default fit over its data (target: at most "
                 f"{MEMORY_TARGET_MIB / 1024:.1f} GiB extra)\n\n" + markdown_table(memory_rows, [
                     ("n_neurons", "neurons", "d"), ("n_stimuli", "stimuli", "d"),
                     ("data_mib", "X + y (MiB)", ".0f"), ("overhead_mib", "fit's extra peak RSS (MiB)", ".0f"),
                     ("seconds", "fit (s), one run", ".1f"), ("meets", "meets", "")]))
    finish_section(text, args, before, after)


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
