"""Where the NS1-size default fit's time goes: wall-clock timers around its phases.

Wraps the library's phase functions (response check, input moments, statistics, the penalty
path's cross-validation, the refit's weights, bookkeeping) with timers, fits ``--fits`` times
in steady state (after one untimed warm-up fit) and prints each phase's median time and
total per fit. Nested phases are counted inside their parents (``_read_responses`` inside
``check_X_y``). The data are ``limits.py``'s NS1 size (17 stimuli x 999 frames x 34 bands,
119 neurons x 20 repeats). Run on a quiet machine::

    OMP_NUM_THREADS=2 python benchmarks/fit_phases.py --fits 15 --dtype float64
"""

from __future__ import annotations

import argparse
import collections
import functools
import sys
import time

import numpy as np
from _common import machine_info

import skstrf._data  # noqa: F401  (the modules whose functions are wrapped)
import skstrf._model  # noqa: F401
import skstrf._net  # noqa: F401
import skstrf._solvers  # noqa: F401
import skstrf._validation  # noqa: F401
from skstrf import STRFRegressor
from skstrf.datasets import make_strf_dataset

PHASES = ("check_X_y", "_read_responses", "check_stimuli", "input_moments", "module_statistics",
          "lagged_statistics", "cross_validated_scores", "_checked_ties", "solve_ridge", "ridge_path", "record_closed_form_epoch",
          "check_finite_model", "make_plan", "start_from_closed_form")


def wrap_phases(times: dict) -> None:
    """Replace each of :data:`PHASES` in every skstrf module that holds it by a timed copy."""
    for name in PHASES:
        original = None
        for module in list(sys.modules.values()):
            if getattr(module, "__name__", "").startswith("skstrf") and callable(getattr(module, name, None)):
                original = original or getattr(module, name)

                @functools.wraps(original)
                def timed(*args, _f=original, _name=name, **kwargs):
                    start = time.perf_counter()
                    try:
                        return _f(*args, **kwargs)
                    finally:
                        times[_name].append(time.perf_counter() - start)

                setattr(module, name, timed)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fits", type=int, default=15)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    args = parser.parse_args(argv)
    data = make_strf_dataset(n_stimuli=20, n_times=999, n_freqs=34, n_neurons=119, n_repeats=20, random_state=2)
    train = np.concatenate([data.train, data.valid])
    X = np.ascontiguousarray(data.X[train], dtype=np.float32)
    y = np.ascontiguousarray(data.y[train], dtype=args.dtype)
    times: dict = collections.defaultdict(list)
    wrap_phases(times)
    STRFRegressor(random_state=0).fit(X, y)  # warm-up
    times.clear()
    fits = []
    for _ in range(args.fits):
        start = time.perf_counter()
        STRFRegressor(random_state=0).fit(X, y)
        fits.append(time.perf_counter() - start)
    print(f"NS1-size default fit, y {args.dtype}: median {np.median(fits):.4f} s over {args.fits} fits\n")
    print(f"{'phase':<28} {'calls/fit':>9} {'median s':>9} {'s per fit':>9}")
    for name, values in sorted(times.items(), key=lambda item: -sum(item[1])):
        print(f"{name:<28} {len(values) / args.fits:>9.1f} {np.median(values):>9.4f} {sum(values) / args.fits:>9.4f}")
    print("\n" + ", ".join(f"{key}: {value}" for key, value in machine_info().items()))


if __name__ == "__main__":
    main()
