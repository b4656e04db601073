"""Command line entry point: ``skstrf compare`` runs the kernel comparison."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

__all__ = ["main", "load_comparison_data"]


def load_comparison_data(dataset: str, *, n_neurons: int = 119, n_times: int = 999,
                         random_state: int = 0) -> Bunch:
    """Load a dataset for the comparison: "synthetic", "ns1" or a path to an skstrf HDF5 file.

    Returns a Bunch with X, y, train, valid, test, dt_ms, freqs (or None) and a description.
    """
    from .compare import split_indices

    if dataset == "synthetic":
        from .datasets import make_strf_dataset

        data = make_strf_dataset(n_neurons=n_neurons, n_times=n_times, random_state=random_state)
        return Bunch(X=data.X, y=data.y, train=data.train, valid=data.valid, test=data.test,
                     dt_ms=data.dt_ms, freqs=data.freqs,
                     description=f"synthetic NS1-shaped data ({n_neurons} cells with known STRFs)")
    if dataset == "ns1":
        from .datasets import fetch_ns1

        data = fetch_ns1()
        return Bunch(X=data.X, y=data.y, train=data.train, valid=data.valid, test=data.test,
                     dt_ms=data.dt_ms, freqs=data.freqs,
                     description="NS1 (Harper et al. 2016; Rahman et al. 2019)")
    path = Path(dataset)
    if not path.exists():
        raise FileNotFoundError(
            f"--dataset {dataset!r} is neither 'synthetic', 'ns1' nor an existing HDF5 file"
        )
    from .datasets import load_dataset

    data = load_dataset(path)
    splits = data.get("splits") or {}
    if all(k in splits for k in ("train", "valid", "test")):
        train, valid, test = splits["train"], splits["valid"], splits["test"]
    else:
        train, valid, test = split_indices(data.X.shape[0])
    dt_ms = data.get("dt_ms")
    return Bunch(X=data.X, y=data.y, train=np.asarray(train), valid=np.asarray(valid),
                 test=np.asarray(test), dt_ms=5.0 if dt_ms is None else float(dt_ms),
                 freqs=data.get("freqs"), description=str(path))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="skstrf", description="Spectro-temporal receptive fields with scikit-learn.")
    sub = parser.add_subparsers(dest="command", required=True)
    cmp_ = sub.add_parser(
        "compare",
        help="fit vanilla, separable and parametric STRFs on one split and compare them",
        description="The seed notebook's kernel comparison: fit the same linear STRF model with "
        "three kernel parameterisations on a 14/3/3 stimulus split, print the table and write "
        "the figures.",
    )
    cmp_.add_argument("--dataset", default="synthetic",
                      help="'synthetic' (default, embedded), 'ns1' (downloads on first use) or a path "
                      "to an skstrf HDF5 file")
    cmp_.add_argument("--output", default="skstrf_output", help="folder for figures and results.json")
    cmp_.add_argument("--kernels", nargs="+", default=["vanilla", "separable", "parametric"],
                      choices=["vanilla", "separable", "parametric"])
    cmp_.add_argument("--max-epochs", type=int, default=100,
                      help="epochs of the seed-method (gradient) fits")
    cmp_.add_argument("--no-seed-method", action="store_true",
                      help="skip the seed's method (gradient from a random start) and run only "
                      "skstrf's default solvers")
    cmp_.add_argument("--variants", nargs="*", default=[],
                      choices=["ln", "ic_adaptation", "adaptrans", "ln_adaptrans"],
                      help="extra rows beyond the linear STRF: 'ln' (softplus output, Poisson "
                      "loss), 'ic_adaptation', 'adaptrans' (ON/OFF prefilter), 'ln_adaptrans' (both)")
    cmp_.add_argument("--n-lags", type=int, default=15, help="frames of history of the STRFs")
    cmp_.add_argument("--n-neurons", type=int, default=119, help="synthetic dataset only")
    cmp_.add_argument("--n-times", type=int, default=999, help="synthetic dataset only")
    cmp_.add_argument("--device", default="auto")
    cmp_.add_argument("--random-state", type=int, default=0)
    cmp_.add_argument("--verbose", type=int, default=0, help="1 prints skorch's epoch table")
    cmp_.add_argument("--no-figures", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line interface; returns the exit status."""
    args = _parser().parse_args(argv)
    from .compare import beyond_linear_variants, compare_kernels, default_variants, format_table, save_figures
    from .estimator import STRFRegressor

    start = time.perf_counter()
    print(f"loading dataset {args.dataset!r} ...", flush=True)
    try:
        data = load_comparison_data(args.dataset, n_neurons=args.n_neurons, n_times=args.n_times,
                                    random_state=args.random_state)
    except (OSError, ValueError) as exc:  # download failures, missing or foreign files
        print(f"error: could not load dataset {args.dataset!r}:\n{exc}", file=sys.stderr)
        return 1
    S, T, F = data.X.shape
    print(f"{data.description}: {S} stimuli x {T} frames x {F} bands, {data.y.shape[2]} neurons, "
          f"{data.y.shape[3]} repeats; split {len(data.train)}/{len(data.valid)}/{len(data.test)} "
          "(train/valid/test stimuli)", flush=True)
    template = STRFRegressor(n_lags=args.n_lags, max_epochs=args.max_epochs, device=args.device,
                             random_state=args.random_state, verbose=args.verbose)
    variants = default_variants(args.kernels, seed_method=not args.no_seed_method,
                                max_epochs=args.max_epochs)
    freqs = None if data.freqs is None else np.asarray(data.freqs, dtype=float)
    variants += beyond_linear_variants(
        args.variants, dt_ms=data.dt_ms,
        freq_range=None if freqs is None or freqs.size < 2 else (freqs.min(), freqs.max()))
    result = compare_kernels(data.X, data.y, train=data.train, valid=data.valid, test=data.test,
                             variants=variants, estimator=template,
                             progress=lambda line: print(line, flush=True))
    print()
    print(format_table(result.rows))
    print()
    cell = result.best_cell
    print(f"Best-fit cell across the parameterizations: idx={cell}")
    width = max(len(k) for k in result.labels)
    for k in result.labels:
        print(f"  {k:<{width}s} test cc_norm = {result.test_cc_norm[k][cell]:+.3f}")
    if not args.no_figures:
        paths = save_figures(result, args.output, dt_ms=data.dt_ms, freqs=data.freqs)
        print("\nwrote " + ", ".join(str(p) for p in paths))
    print(f"total time {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
