"""Float32 cross-validation folds against float64 folds on cases no one here designed.

The default fit scores its cross-validation folds in float32 from 256 weights where its
products are wide enough (``skstrf._solvers.single_folds``), checks its near ties and two
canary neurons in float64 (``_checked_ties``) and refits in float64. For every case of ``kernels_earn.py`` (naplib's
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
    OMP_NUM_THREADS=2 python benchmarks/float32_folds.py --stress --markdown FILE
    OMP_NUM_THREADS=2 python benchmarks/float32_folds.py --paired --markdown FILE
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
        self.flagged = self.fallbacks = self.checks = 0
        self._inside = False
        self._check, self._scores = _solvers._checked_ties, _solvers.cross_validated_scores

    def __enter__(self) -> "CheckCounter":
        def check(stats, folds, alphas, scores, *rest):
            self.checks += 1
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
    needs it below 1, with float32 folds however narrow the design (``SINGLE_FOLDS_COLUMNS``
    set to 0). None when the fit scores no float32 folds (fewer than 256 weights)."""
    captured = []
    original = _solvers._checked_ties

    def spy(*args):
        captured.append(args)
        return original(*args)

    _solvers._checked_ties = spy
    columns, _solvers.SINGLE_FOLDS_COLUMNS = _solvers.SINGLE_FOLDS_COLUMNS, 0  # float32 folds however narrow
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            STRFRegressor(n_lags=n_lags, random_state=0).fit(X, y)
    finally:
        _solvers._checked_ties, _solvers.SINGLE_FOLDS_COLUMNS = original, columns
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


#: ``--stress``: generated designs of few frames per weight (ill-conditioned folds), each
#: (n_stimuli, n_times, n_freqs, n_lags, n_neurons, n_repeats), ``make_strf_dataset`` seeds
#: 40, 41, ... in order.
STRESS_DESIGNS = ((4, 300, 16, 16, 6, 2), (6, 200, 20, 20, 20, 3), (8, 400, 32, 12, 30, 5), (5, 600, 24, 24, 15, 2),
                  (10, 500, 40, 10, 40, 10), (6, 1000, 64, 8, 25, 4), (12, 300, 18, 30, 50, 3), (4, 800, 30, 20, 10, 2))


def stress_rows(quick: bool) -> list[dict]:
    """The check's safety margin (:func:`error_ratio`) on :data:`STRESS_DESIGNS`, each fitted
    on all its stimuli."""
    from skstrf.datasets import make_strf_dataset

    rows = []
    for k, (S, T, F, L, N, R) in enumerate(STRESS_DESIGNS[:2] if quick else STRESS_DESIGNS):
        data = make_strf_dataset(n_stimuli=S, n_times=T, n_freqs=F, n_neurons=N, n_repeats=R, random_state=40 + k)
        ratio = error_ratio(data.X, data.y, L)
        rows.append({"design": f"{S} x {T} frames, {F} bands x {L} lags, {N} neurons, {R} repeats (seed {40 + k})",
                     "weights": F * L, "per_weight": f"{S * T * 0.8 / (F * L):.1f}",
                     "ratio": "—" if ratio is None else f"{ratio:.2f}"})
        print(rows[-1], flush=True)
    return rows


#: ``--paired``: designs around the float32 folds' break-even (``SINGLE_FOLDS_COLUMNS``), each
#: (name, make_strf_dataset sizes, n_lags), seed 2, 3, ... in order; the songs after the
#: previous song (seed 300, 20 lags) are added.
PAIRED_DESIGNS = (("NS1's size", dict(n_stimuli=20, n_times=999, n_freqs=34, n_neurons=119, n_repeats=20), 15),
                  ("512 weights x 20 neurons", dict(n_stimuli=20, n_times=999, n_freqs=32, n_neurons=20, n_repeats=5), 16),
                  ("768 weights x 40 neurons", dict(n_stimuli=20, n_times=999, n_freqs=32, n_neurons=40, n_repeats=5), 24))


def paired_rows(quick: bool, repeats: int = 7) -> list[dict]:
    """Whole default fits on every stimulus of each of :data:`PAIRED_DESIGNS` (and the songs),
    float32 folds and float64 folds alternating in one process (``SINGLE_FOLDS_COLUMNS`` set to
    0 or out of reach): median times and the median of the paired ratios."""
    from skstrf.datasets import make_strf_dataset

    designs = [(name, lambda sizes=sizes, k=k: make_strf_dataset(**sizes, random_state=2 + k), lags)
               for k, (name, sizes, lags) in enumerate(PAIRED_DESIGNS)]
    designs.append(("songs after the previous song (seed 300)", lambda: load_case("songs-previous", 300, False), 20))
    if quick:
        designs = [("tiny", lambda: make_strf_dataset(n_stimuli=4, n_times=200, n_freqs=16, n_neurons=100,
                                                      n_repeats=2, random_state=2), 16)]
        repeats = 2
    rows = []
    columns, minimum = _solvers.SINGLE_FOLDS_COLUMNS, _solvers.SINGLE_FOLDS_MIN
    for name, make, n_lags in designs:
        data = make()
        X, y = (data[0], data[1]) if isinstance(data, tuple) else (data.X, data.y)
        times = {True: [], False: []}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                STRFRegressor(n_lags=n_lags, random_state=0).fit(X, y)  # warm-up
                for _ in range(repeats):
                    for single in (True, False):
                        _solvers.SINGLE_FOLDS_COLUMNS, _solvers.SINGLE_FOLDS_MIN = (0, minimum) if single else (0, 10**9)
                        start = time.perf_counter()
                        STRFRegressor(n_lags=n_lags, random_state=0).fit(X, y)
                        times[single].append(time.perf_counter() - start)
        finally:
            _solvers.SINGLE_FOLDS_COLUMNS, _solvers.SINGLE_FOLDS_MIN = columns, minimum
        n_neurons = y.shape[2] if y.ndim == 4 else y.shape[-1]
        width = X.shape[-1] * n_lags + 13 * n_neurons
        rows.append({"design": name, "weights": X.shape[-1] * n_lags, "columns": width,
                     "default": "float32" if width >= columns else "float64",
                     "t32": f"{np.median(times[True]):.3f}", "t64": f"{np.median(times[False]):.3f}",
                     "ratio": f"{np.median(np.array(times[True]) / np.array(times[False])):.2f}"})
        print(rows[-1], flush=True)
    return rows


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
    return {"case": description, "weights": weights, "float32": "yes" if counter.checks else "no",
            "same": f"{same}/{total}", "strf": f"{worst:.1e}", "t32": f"{seconds['single']:.1f}",
            "t64": f"{seconds['double']:.1f}", "flagged": counter.flagged, "fallbacks": counter.fallbacks,
            "ratio": "—" if ratio is None else f"{ratio:.2f}"}


def main(argv: list[str] | None = None) -> None:
    parser = case_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--wide", action="store_true", help="also a wide design with 100 neurons (wide_case)")
    parser.add_argument("--paired", action="store_true",
                        help="only whole fits around the break-even, float32 and float64 folds alternating")
    parser.add_argument("--stress", action="store_true",
                        help="only the check's safety margin on STRESS_DESIGNS (few frames per weight)")
    args, before, rows = parser.parse_args(argv), machine_info(), []
    if args.paired:
        columns = [("design", "design", ""), ("weights", "weights", ""),
                   ("columns", "weights + 13 x neurons", ""), ("default", "the default's folds", ""),
                   ("t32", "fit, float32 folds (s)", ""), ("t64", "fit, float64 folds (s)", ""),
                   ("ratio", "float32 / float64, paired", "")]
        publish_table("Whole default fits, float32 and float64 folds alternating in one process (medians of "
                      f"7 pairs); float32 folds are the default from {_solvers.SINGLE_FOLDS_COLUMNS} columns.",
                      paired_rows(args.quick), columns, before, args.quick, args.markdown)
        return
    if args.stress:
        columns = [("design", "design", ""), ("weights", "weights", ""),
                   ("per_weight", "training frames per weight in a fold", ""),
                   ("ratio", "largest float32 error / half its tolerance", "")]
        publish_table("The float32 check's safety margin on designs of few frames per weight (default fits on "
                      "every stimulus; below 1 is what the check needs).", stress_rows(args.quick), columns, before,
                      args.quick, args.markdown)
        return
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
