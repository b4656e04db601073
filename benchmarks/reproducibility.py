"""How much each kernel's fit moves when X changes by rounding only.

Run from the repository root::

    OMP_NUM_THREADS=1 python benchmarks/reproducibility.py --markdown FILE
    python benchmarks/reproducibility.py --quick        # tiny sizes, to check that it runs

Every kernel is fitted with its defaults twice on the same data: once on X, once on a copy of
X changed by rounding-level amounts, either multiplied by ``1 + 1e-7`` (what another machine's
arithmetic, another BLAS or a float32 round trip can do) or shifted by a constant of 100 times
X's standard deviation (which the default ``history="mean"`` makes irrelevant up to
rounding). For each neuron the table gives the relative change of its STRF
(``|w_a - w_b| / |w_a|``, Frobenius norms) and of its held-out ``cc_norm``: a closed-form fit
(vanilla by ridge, separable by ALS) moves by rounding, a non-convex fit (the parametric
kernel's L-BFGS) can end in another of its local optima. Cases: ``make_strf_dataset`` on
fresh seeds (8 neurons, 10 stimuli of 500 frames, 12 lags; fitted on 8 stimuli, scored on 2)
and ``make_realistic_dataset(preceding="previous")`` songs on the first two seeds (20 songs,
fitted on 16, scored on 4, 20 lags).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import format_machine, machine_info, markdown_table, publish, set_threads  # noqa: E402

KERNELS = ("vanilla", "separable", "parametric")
CHANGES = {
    "X x (1 + 1e-7)": lambda X: X * (1.0 + 1e-7),
    "X + 100 SD": lambda X: X + 100.0 * np.nanstd(X, axis=(0, 1)),
}


def cases(quick: bool, seeds: list[int]) -> list[tuple[str, Any, int, slice, slice]]:
    """(name, data, n_lags, training stimuli, test stimuli) of every case."""
    from skstrf.datasets import make_realistic_dataset, make_strf_dataset

    out = []
    for seed in seeds:
        n = 4 if quick else 8
        d = make_strf_dataset(n_neurons=n, n_stimuli=10, n_times=200 if quick else 500, random_state=seed)
        out.append((f"make_strf_dataset (seed {seed})", d, 6 if quick else 12, slice(0, 8), slice(8, None)))
    if not quick:
        for seed in seeds[:2]:
            d = make_realistic_dataset(preceding="previous", random_state=seed)
            out.append((f"songs after the previous song (seed {seed})", d, 20, slice(0, 16), slice(16, None)))
    return out


def measure(quick: bool, seeds: list[int], kernels: tuple[str, ...] = KERNELS) -> list[dict[str, Any]]:
    """Per (kernel, change): every neuron's relative STRF change and |cc_norm change|."""
    from skstrf import STRFRegressor
    from skstrf.metrics import cc_norm

    found: dict[tuple[str, str], dict[str, list]] = {}
    for name, data, n_lags, train, test in cases(quick, seeds):
        X, y = data.X, data.y
        for kernel in kernels:
            params = dict(kernel=kernel, n_lags=n_lags, random_state=0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                start = time.perf_counter()
                base = STRFRegressor(**params).fit(X[train], y[train])
                seconds = time.perf_counter() - start
                base_score = cc_norm(y[test], base.predict(X[test]), multioutput="raw_values")
                for label, change in CHANGES.items():
                    Xc = change(X)
                    other = STRFRegressor(**params).fit(Xc[train], y[train])
                    score = cc_norm(y[test], other.predict(Xc[test]), multioutput="raw_values")
                    a = base.strfs_.reshape(len(base.strfs_), -1)
                    b = other.strfs_.reshape(len(other.strfs_), -1)
                    entry = found.setdefault((kernel, label), {"strf": [], "score": [], "seconds": []})
                    entry["strf"].append(np.linalg.norm(a - b, axis=1) / np.linalg.norm(a, axis=1))
                    entry["score"].append(np.abs(score - base_score))
                    entry["seconds"].append(seconds)
            print(f"{name}: {kernel} done", file=sys.stderr, flush=True)
    rows = []
    for (kernel, label), entry in found.items():
        strf, score = np.concatenate(entry["strf"]), np.concatenate(entry["score"])
        rows.append({"kernel": kernel, "change": label, "neurons": strf.size,
                     "strf_median": float(np.median(strf)), "strf_90": float(np.percentile(strf, 90)),
                     "strf_max": float(strf.max()), "score_median": float(np.nanmedian(score)),
                     "score_90": float(np.nanpercentile(score, 90)), "score_max": float(np.nanmax(score)),
                     "seconds": float(np.median(entry["seconds"]))})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[700, 701, 702, 703, 704, 705],
                        help="data seeds (default: 700-705, used by no default's tuning)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check that the script runs")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the report there")
    parser.add_argument("--kernels", nargs="+", choices=KERNELS, default=list(KERNELS))
    parser.add_argument("--lbfgs-tol", type=float, default=None,
                        help="the parametric kernel's L-BFGS stop (skstrf._solvers.LBFGS_TOL), to see whether "
                             "a tighter fit moves less (default: the library's)")
    parser.add_argument("--lbfgs-max-iter", type=int, default=None, help="its iteration cap (LBFGS_MAX_ITER)")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    import skstrf._solvers as solvers

    settings = []
    if args.lbfgs_tol is not None:
        solvers.LBFGS_TOL = args.lbfgs_tol
        settings.append(f"LBFGS_TOL={args.lbfgs_tol:g}")
    if args.lbfgs_max_iter is not None:
        solvers.LBFGS_MAX_ITER = args.lbfgs_max_iter
        settings.append(f"LBFGS_MAX_ITER={args.lbfgs_max_iter}")
    before = machine_info()
    rows = measure(args.quick, args.seeds[:1] if args.quick else args.seeds, tuple(args.kernels))
    after = machine_info()
    table = markdown_table(rows, [
        ("kernel", "kernel (defaults)", ""), ("change", "X changed by", ""), ("neurons", "neurons", "d"),
        ("strf_median", "STRF change, median", ".1e"), ("strf_90", "90th percentile", ".1e"),
        ("strf_max", "max", ".1e"), ("score_median", "|held-out cc_norm change|, median", ".1e"),
        ("score_90", "90th percentile", ".1e"), ("score_max", "max", ".1e"),
        ("seconds", "fit s (median)", ".2f"),
    ])
    text = (f"### Reproducibility: each kernel's fit after a rounding-level change of X\n\n"
            f"`OMP_NUM_THREADS={args.threads} python benchmarks/reproducibility.py"
            f"{' --quick' if args.quick else ''} --seeds {' '.join(map(str, args.seeds))}"
            f"{'' if list(args.kernels) == list(KERNELS) else ' --kernels ' + ' '.join(args.kernels)}"
            f"{'' if args.lbfgs_tol is None else f' --lbfgs-tol {args.lbfgs_tol:g}'}"
            f"{'' if args.lbfgs_max_iter is None else f' --lbfgs-max-iter {args.lbfgs_max_iter}'}`"
            f"{' (' + ', '.join(settings) + ')' if settings else ''}\n\n{table}\n\n"
            "STRF change: |w(X) - w(X changed)| / |w(X)| per neuron (Frobenius norms); "
            "cc_norm on the held-out stimuli.\n\n" + format_machine(before, after))
    if args.quick:
        text += " QUICK RUN: tiny sizes, numbers mean nothing."
    publish(text, args.markdown)


if __name__ == "__main__":
    main()
