"""Float32 cross-validation folds against float64 folds on cases no one here designed.

The default fit scores its cross-validation folds in float32 from 256 weights
(``skstrf._solvers.single_folds``), checks its near ties and two canary neurons in float64
(``_checked_ties``) and refits in float64. For every case of ``kernels_earn.py`` (naplib's
speech, the Bruce-Zilany-Carney auditory nerve with 10 and 3 repeats, the generated songs),
on each of its outer folds' training stimuli, this fits the default vanilla model twice, with
float32 folds and with float64 folds (``SINGLE_FOLDS_MIN`` raised; from 2,048 weights these
are float32 reductions refined to float64's solutions), and reports how many
neurons got the same penalty, the largest STRF difference, the fit times, and how often the
check scored neurons again in float64 or fell back to float64 for every neuron, and (on the
first outer fold) the largest float32 error of any neuron over half its penalty's calibrated
tolerance, which the check needs below 1.

Run in the benchmark environment (naplib's case and the auditory nerve need naplib and
brucezilany; benchmarks/README.md), on a quiet machine for the times::

    OMP_NUM_THREADS=2 python benchmarks/float32_folds.py --wide --markdown FILE
    python benchmarks/float32_folds.py --quick
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import machine_info, publish_table  # noqa: E402
from kernels_earn import case_parser, each_case, load_case  # noqa: E402

from skstrf import STRFRegressor  # noqa: E402
from skstrf import _solvers  # noqa: E402


class CheckCounter:
    """Counts what the float32 checks of fits did: the neurons scored again in float64
    besides the canaries, and the fallbacks to float64 folds for every neuron (a float64
    ``cross_validated_scores`` inside the check)."""

    def __init__(self) -> None:
        self.flagged = self.fallbacks = 0
        self._inside = False
        self._check, self._scores = _solvers._checked_ties, _solvers.cross_validated_scores

    def __enter__(self) -> "CheckCounter":
        def check(stats, folds, alphas, scores, *rest):
            self._inside = True
            fallbacks = self.fallbacks
            try:
                checked = self._check(stats, folds, alphas, scores, *rest)
            finally:
                self._inside = False
            if self.fallbacks == fallbacks:  # the neurons whose scores the check replaced, but the canaries
                changed = ~np.all((checked[0] == scores) | (np.isnan(checked[0]) & np.isnan(scores)), axis=0)
                changed[_solvers._canaries(scores, per_neuron=rest[-2], pooling=rest[-1])] = False
                self.flagged += int(changed.sum())
            return checked

        def scores(stats, *args, **kwargs):
            if self._inside and not kwargs.get("single", False) and stats.cross.shape[-1] > 0:
                self.fallbacks += 1
            return self._scores(stats, *args, **kwargs)

        _solvers._checked_ties, _solvers.cross_validated_scores = check, scores
        return self

    def __exit__(self, *exc) -> None:
        _solvers._checked_ties, _solvers.cross_validated_scores = self._check, self._scores


def error_ratio(X, y, n_lags: int) -> float | None:
    """The largest float32 error of any neuron's score over half its penalty's calibrated
    tolerance (the canaries' largest error times ``SINGLE_FOLDS_ERROR_MARGIN``, at least
    ``SINGLE_FOLDS_TOLERANCE``), the largest over penalties, for one default fit: the check
    needs it below 1. None when the fit scores no float32 folds."""
    captured = []
    original = _solvers._checked_ties

    def spy(*args):
        captured.append(args)
        return original(*args)

    _solvers._checked_ties = spy
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            STRFRegressor(n_lags=n_lags, random_state=0).fit(X, y)
    finally:
        _solvers._checked_ties = original
    if not captured:
        return None
    stats, folds, alphas, scores = captured[0][:4]
    exact = _solvers.cross_validated_scores(stats, folds, alphas)[0]
    error = np.nan_to_num(np.abs(scores - exact), nan=0.0)
    canaries = _solvers._canaries(scores, pooling=STRFRegressor().alpha_pooling)
    tolerance = np.maximum(_solvers.SINGLE_FOLDS_TOLERANCE,
                           _solvers.SINGLE_FOLDS_ERROR_MARGIN * error[:, canaries].max(axis=1))
    return float((error.max(axis=1) / (tolerance / 2)).max())


def wide_case(quick: bool):
    """A wide design with many neurons (``make_strf_dataset``: 10 stimuli x 2,000 frames x 64
    bands, 40 lags: 2,560 weights, 100 neurons, 2 repeats; seed 0), in ``load_case``'s form
    with two outer folds: where float32 folds replace float32 reductions refined to float64
    for every penalty and neuron."""
    from skstrf.datasets import make_strf_dataset

    sizes = dict(n_stimuli=4, n_times=300, n_freqs=16, n_neurons=6) if quick else \
        dict(n_stimuli=10, n_times=2000, n_freqs=64, n_neurons=100)
    data = make_strf_dataset(**sizes, n_repeats=2, random_state=0)
    n_lags = 16 if quick else 40
    return (data.X, data.y, n_lags, np.array_split(np.arange(len(data.X)), 2),
            f"wide design (make_strf_dataset), {sizes['n_freqs']} bands x {n_lags} lags, {sizes['n_neurons']} neurons")


def compare_case(case: str, seed: int, quick: bool) -> dict:
    """One case: both fits on each outer fold's training stimuli."""
    X, y, n_lags, folds, description = wide_case(quick) if case == "wide" else load_case(case, seed, quick)
    first = np.setdiff1d(np.arange(len(X)), folds[0])
    ratio = error_ratio(X[first], y[first], n_lags)
    same = total = 0
    worst = 0.0
    seconds = {"single": 0.0, "double": 0.0}
    minimum = _solvers.SINGLE_FOLDS_MIN
    with CheckCounter() as counter:
        for test in folds:
            train = np.setdiff1d(np.arange(len(X)), test)
            fitted = {}
            for kind, smallest in (("single", minimum), ("double", 10**9)):
                _solvers.SINGLE_FOLDS_MIN = smallest
                try:
                    start = time.perf_counter()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        fitted[kind] = STRFRegressor(n_lags=n_lags, random_state=0).fit(X[train], y[train])
                    seconds[kind] += time.perf_counter() - start
                finally:
                    _solvers.SINGLE_FOLDS_MIN = minimum
            a, b = fitted["single"], fitted["double"]
            same += int(np.sum(a.alpha_ == b.alpha_))
            total += a.alpha_.size
            worst = max(worst, float(np.abs(a.strfs_ - b.strfs_).max() / np.abs(b.strfs_).max()))
    weights = X.shape[2] * n_lags
    in_range = weights >= minimum
    return {"case": description, "weights": weights, "float32": "yes" if in_range else "no",
            "same": f"{same}/{total}", "strf": f"{worst:.1e}", "t32": f"{seconds['single']:.1f}",
            "t64": f"{seconds['double']:.1f}", "flagged": counter.flagged, "fallbacks": counter.fallbacks,
            "ratio": "—" if ratio is None else f"{ratio:.2f}"}


def main(argv: list[str] | None = None) -> None:
    parser = case_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--wide", action="store_true", help="also a wide design with 100 neurons (wide_case)")
    args, before, rows = parser.parse_args(argv), machine_info(), []
    for case, seed in [*each_case(args), *([("wide", 0)] if args.wide else [])]:
        rows.append(compare_case(case, seed, args.quick))
        print(rows[-1], flush=True)
    columns = [("case", "case", ""), ("weights", "weights", ""), ("float32", "float32 folds", ""),
               ("same", "same penalty (neuron-folds)", ""), ("strf", "max STRF difference (relative)", ""),
               ("t32", "fits, float32 folds (s)", ""), ("t64", "fits, float64 folds (s)", ""),
               ("flagged", "neurons checked besides the canaries", ""), ("fallbacks", "fallbacks to float64", ""),
               ("ratio", "largest float32 error / half its tolerance (first outer fold)", "")]
    publish_table("Default vanilla fits on each outer fold's training stimuli, float32 folds against float64 folds "
                  "(times summed over the outer folds).", rows, columns, before, args.quick, args.markdown)


if __name__ == "__main__":
    main()
