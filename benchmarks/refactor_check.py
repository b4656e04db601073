"""Fit every model kind on fixed small data and save or compare what it learned.

A refactoring must leave the fitted models as they were, but for the changes it lists. Run
this script on the code before the change with ``--save before.npz``, and on the code after
it with ``--compare before.npz``: it prints, per model kind, the largest difference of the
STRFs, intercepts and predictions (relative to their largest magnitude), of the penalties
and of the held-out score::

    python benchmarks/refactor_check.py --save /tmp/before.npz      # on the old code
    python benchmarks/refactor_check.py --compare /tmp/before.npz   # on the new code

Models: closed-form ridge (cross-validated, validation-chosen, one shared penalty), ALS
(cross-validated, validation-chosen), gradient training of the free, separable and
parametric kernels, LN (softplus with the MSE, exponential with the Poisson loss), the
AdapTrans and IC-adaptation prefilters, the out-of-core (dask) ridge, and one continuous
recording (cross-validation over time blocks).
"""

from __future__ import annotations

import argparse
import sys
import warnings

import numpy as np

from skstrf import STRFRegressor
from skstrf.datasets import make_strf_dataset

GRADIENT = dict(max_epochs=15, random_state=0)

MODELS = {
    "ridge cv=5": dict(),
    "ridge cv=None": dict(cv=None),
    "ridge shared alpha": dict(alpha_per_neuron=False),
    "ridge alpha=0.1": dict(alpha=0.1),
    "als cv=5": dict(kernel="separable"),
    "als cv=None": dict(kernel="separable", cv=None),
    "gradient vanilla": dict(solver="gradient", **GRADIENT),
    "gradient separable": dict(kernel="separable", solver="gradient", **GRADIENT),
    "parametric": dict(kernel="parametric", **GRADIENT),
    "LN softplus": dict(nonlinearity="softplus", **GRADIENT),
    "LN exp poisson": dict(nonlinearity="exp", loss="poisson", **GRADIENT),
    "adaptrans": dict(prefilter="adaptrans", max_epochs=8, random_state=0),
    "ic adaptation": dict(prefilter="ic_adaptation"),
}


def _data():
    data = make_strf_dataset(n_stimuli=14, n_times=160, n_freqs=10, n_neurons=5, n_repeats=4,
                             n_lags=6, random_state=0)
    X, y = data.X.copy(), data.y.copy()
    X[3, 130:] = np.nan  # ragged: stimulus 3 is shorter
    y[3, 130:] = np.nan
    return X, y


def _record(est, X_test, y_test) -> dict:
    out = {"strfs": est.strfs_, "intercept": est.intercept_, "alpha": est.alpha_,
           "pred": est.predict(X_test), "score": np.array(est.score(X_test, y_test))}
    if hasattr(est, "cv_scores_"):
        out["cv_scores"] = est.cv_scores_
    return out


def run() -> dict[str, dict]:
    X, y = _data()
    train, test = np.arange(11), np.arange(11, 14)
    results = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, params in MODELS.items():
            est = STRFRegressor(n_lags=6, **params).fit(X[train], y[train])
            results[name] = _record(est, X[test], y[test])
        try:
            import dask.array as da
        except ImportError:
            da = None
        if da is not None:
            est = STRFRegressor(n_lags=6).fit(da.from_array(X[train], chunks=(3, -1, -1)),
                                             da.from_array(y[train], chunks=(3, -1, -1, -1, -1)[:y.ndim]))
            results["chunked ridge"] = _record(est, X[test], y[test])
        # one continuous recording: the training stimuli end to end, cross-validated over blocks
        Xr = np.concatenate([X[s][~np.isnan(X[s, :, 0])] for s in train])
        yr = np.concatenate([y[s][~np.isnan(X[s, :, 0])] for s in train])
        est = STRFRegressor(n_lags=6).fit(Xr, yr)
        results["recording ridge"] = _record(est, X[test], y[test])
    return results


def _flat(results: dict) -> dict[str, np.ndarray]:
    return {f"{model}|{key}": np.asarray(value) for model, values in results.items()
            for key, value in values.items()}


def compare(before: dict[str, np.ndarray], after: dict[str, np.ndarray]) -> None:
    print(f"{'model':<22s} {'STRFs':>9s} {'intercept':>9s} {'pred':>9s} {'alpha':>9s} "
          f"{'score before':>12s} {'after':>7s}  (differences relative to the largest magnitude)")
    for model in dict.fromkeys(key.split("|")[0] for key in before):
        row = []
        for key in ("strfs", "intercept", "pred", "alpha"):
            a, b = before.get(f"{model}|{key}"), after.get(f"{model}|{key}")
            if a is None or b is None or a.shape != b.shape:
                row.append("   shape!" if a is not None and b is not None else "      n/a")
                continue
            scale = np.nanmax(np.abs(a)) or 1.0
            row.append(f"{np.nanmax(np.abs(a - b)) / scale:9.1e}")
        s0 = float(before[f"{model}|score"])
        s1 = float(after.get(f"{model}|score", np.nan))
        print(f"{model:<22s} {' '.join(row)} {s0:12.6f} {s1:7.4f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--save", help="write what every model learned to this .npz file")
    group.add_argument("--compare", help="compare with a file written by --save")
    args = parser.parse_args(argv)
    results = _flat(run())
    if args.save:
        np.savez(args.save, **results)
        print(f"saved {len(results)} arrays to {args.save}")
    else:
        with np.load(args.compare) as before:
            compare(dict(before), results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
