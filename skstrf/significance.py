"""How sure is a score: per-neuron permutation tests and paired comparisons of models."""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Mapping

import numpy as np
from joblib import Parallel, delayed
from numpy.typing import ArrayLike, NDArray
from sklearn.base import clone
from sklearn.model_selection import check_cv
from sklearn.utils import Bunch, check_random_state

from .metrics import scoring_layout, cc, cc_norm
from ._validation import check_responses, check_stimuli

__all__ = ["permutation_test_neurons", "paired_comparison", "pairwise_comparisons"]

_NULLS = ("circular", "stimuli")
_SCORINGS = ("cc", "cc_norm")


# --------------------------------------------------------------------------- permutations
def _circular_shift(y: NDArray[np.float64], lengths: NDArray[np.int64],
                    rng: np.random.Generator) -> NDArray[np.float64]:
    """Shift each neuron's responses in time, circularly within each stimulus's valid frames.

    Parameters
    ----------
    y : ndarray of shape (n_stimuli, n_times, n_neurons, n_repeats)
    lengths : ndarray of int of shape (n_stimuli,)

    Returns
    -------
    shifted : ndarray of the shape of ``y``
        Every repeat of a (stimulus, neuron) pair moves by the same random shift, drawn
        uniformly among the stimulus's lengths; padding frames stay where they are.
    """
    n_stimuli, n_times, n_neurons, _ = y.shape
    shift = rng.integers(0, lengths[:, None], size=(n_stimuli, n_neurons))
    t = np.arange(n_times)[None, :, None]
    length = lengths[:, None, None]
    source = np.where(t < length, (t + shift[:, None, :]) % length, t)
    return np.take_along_axis(y, source[..., None], axis=1)


def _stimulus_permutation(y: NDArray[np.float64], lengths: NDArray[np.int64],
                          rng: np.random.Generator) -> NDArray[np.float64]:
    """Give each neuron the responses of another stimulus of the same length.

    Parameters
    ----------
    y : ndarray of shape (n_stimuli, n_times, n_neurons, n_repeats)
    lengths : ndarray of int of shape (n_stimuli,)

    Returns
    -------
    permuted : ndarray of the shape of ``y``
        For each neuron independently, the stimuli of each length are shuffled among
        themselves.
    """
    n_stimuli, n_times, n_neurons, _ = y.shape
    source = np.empty((n_stimuli, n_neurons), dtype=np.intp)
    for length in np.unique(lengths):  # a handful of distinct lengths, not neurons
        members = np.flatnonzero(lengths == length)
        keys = rng.random((members.size, n_neurons))
        source[members] = members[np.argsort(keys, axis=0)]
    return y[source[:, None, :], np.arange(n_times)[None, :, None], np.arange(n_neurons)]


def _cv_scores(estimator, X, y, splits, scoring: str) -> NDArray[np.float64]:
    """Per-neuron test score of ``estimator`` averaged over the CV splits (NaN ignored)."""
    scores = []
    for train, test in splits:
        fitted = clone(estimator).fit(X[train], y[train])
        y_true, y_pred = scoring_layout(X[test], y[test], fitted.predict(X[test]))
        metric = cc if scoring == "cc" else cc_norm
        scores.append(metric(y_true, y_pred, multioutput="raw_values"))
    scores = np.asarray(scores)
    out = np.full(scores.shape[1], np.nan)
    seen = np.isfinite(scores).any(axis=0)
    out[seen] = np.nanmean(scores[:, seen], axis=0)
    return out


def _null_scores(estimator, X, y4, lengths, y_shape, splits, scoring, null, seed) -> NDArray[np.float64]:
    """Scores of one draw of the null: responses shifted or permuted, then cross-validated."""
    rng = np.random.default_rng(seed)
    resample = _circular_shift if null == "circular" else _stimulus_permutation
    return _cv_scores(estimator, X, resample(y4, lengths, rng).reshape(y_shape), splits, scoring)


def permutation_test_neurons(
    estimator,
    X: ArrayLike,
    y: ArrayLike,
    *,
    cv=5,
    null: str = "circular",
    n_permutations: int = 199,
    scoring: str = "cc",
    n_jobs: int | None = None,
    random_state: int | np.random.RandomState | None = None,
) -> Bunch:
    """Per-neuron permutation test of the cross-validated prediction score.

    The observed score of each neuron is its test score (:func:`~skstrf.metrics.cc` or
    :func:`~skstrf.metrics.cc_norm` on the held-out stimuli) averaged over the CV splits.
    The null distribution repeats the same cross-validation on responses whose link to
    the stimulus is broken while their own time structure is kept:

    - ``"circular"``: each neuron's responses to each stimulus are shifted circularly in
      time by a random number of frames (all repeats together). Autocorrelation, firing
      rate and repeat-to-repeat noise are kept. Right for any data, also few or ragged
      stimuli; slightly conservative where responses have onset transients at each
      stimulus start (they move with the shift).
    - ``"stimuli"``: each neuron's responses are reassigned whole to another stimulus of
      the same length. Exact when stimuli are exchangeable; needs several stimuli of each
      length (with ``S`` stimuli there are only ``S!`` distinct draws).

    Each neuron gets its own draws, so fits stay vectorised over neurons (one fit per
    permutation and split, all neurons at once). The p-value is
    ``(1 + #{null >= observed}) / (n_permutations + 1)`` (Phipson & Smyth 2010), never 0.

    :func:`sklearn.model_selection.permutation_test_score` also works with skstrf
    estimators: it permutes axis 0 of y, i.e. whole stimuli, one permutation for all
    neurons, and tests the mean score over neurons (one p-value for the population). Use
    it for equal-length, exchangeable stimuli and a population question; use this
    function for a p-value per neuron.

    Parameters
    ----------
    estimator : estimator
        An unfitted (or fitted: it is cloned) STRFRegressor or pipeline ending in one.
    X : array-like of shape (n_stimuli, n_times, n_freqs)
        Stimuli, NaN-padded at the end.
    y : array-like
        Responses in the layout ``fit`` accepts with X's stimulus axis: (n_stimuli,
        n_times), (n_stimuli, n_times, n_neurons) or (n_stimuli, n_times, n_neurons,
        n_repeats).
    cv : int, cross-validation generator or iterable, default=5
        Splits of the stimuli, as for :func:`sklearn.model_selection.cross_validate`; an
        int is a :class:`~sklearn.model_selection.KFold` over stimuli. A single
        ``[(train, test)]`` split is the cheapest.
    null : {"circular", "stimuli"}, default="circular"
        How the null responses are drawn (see above).
    n_permutations : int, default=199
        Draws of the null; the smallest p-value is ``1 / (n_permutations + 1)``.
    scoring : {"cc", "cc_norm"}, default="cc"
        Per-neuron test score. ``"cc_norm"`` needs repeats.
    n_jobs : int, default=None
        Permutations run in parallel through joblib.
    random_state : int, RandomState instance or None, default=None
        Seed of the draws; an int gives the same p-values on every call.

    Returns
    -------
    result : sklearn.utils.Bunch
        With the fields:

        score : ndarray of shape (n_neurons,)
            Observed cross-validated score of each neuron.
        null_scores : ndarray of shape (n_permutations, n_neurons)
            Scores of the null draws.
        pvalue : ndarray of shape (n_neurons,)
            One-sided p-value (a score at least as high by chance); NaN where the
            observed score is NaN. A NaN null score counts as at least as high.

    See Also
    --------
    paired_comparison : Is one model better than another across neurons?

    Examples
    --------
    >>> from skstrf import STRFRegressor
    >>> from skstrf.datasets import make_strf_dataset
    >>> from skstrf.significance import permutation_test_neurons
    >>> data = make_strf_dataset(n_stimuli=6, n_times=200, n_freqs=6, n_neurons=3,
    ...                          n_repeats=4, n_lags=4, snr=2.0, nonlinearity="identity",
    ...                          noise="gaussian", random_state=0)
    >>> result = permutation_test_neurons(STRFRegressor(n_lags=4, alpha=1.0,
    ...                                   validation_fraction=None), data.X, data.y,
    ...                                   cv=[(data.train, data.test)],
    ...                                   n_permutations=19, random_state=0)
    >>> result.pvalue
    array([0.05, 0.05, 0.05])
    """
    if not isinstance(null, str) or null not in _NULLS:
        raise ValueError(f"null must be one of {list(_NULLS)}; got {null!r}")
    if not isinstance(scoring, str) or scoring not in _SCORINGS:
        raise ValueError(f"scoring must be one of {list(_SCORINGS)}; got {scoring!r}")
    if (isinstance(n_permutations, bool) or not isinstance(n_permutations, numbers.Integral)
            or n_permutations < 1):
        raise ValueError(f"n_permutations must be a positive integer; got {n_permutations!r}")
    data = check_responses(y, check_stimuli(X))
    if data.x_ndim != 3:
        raise ValueError(
            "permutation_test_neurons needs stimuli of shape (n_stimuli, n_times, n_freqs) to "
            f"split them; got X with {data.x_ndim} dimensions. Cut a continuous recording into "
            "blocks of equal length: X.reshape(n_blocks, -1, n_freqs), y likewise."
        )
    if null == "stimuli" and np.unique(data.lengths).size == data.n_stimuli:
        raise ValueError(
            "null='stimuli' permutes stimuli of equal length, but all "
            f"{data.n_stimuli} stimuli have different lengths; use null='circular'."
        )
    X, y = np.asarray(X), np.asarray(y)
    splits = list(check_cv(cv).split(X))
    observed = _cv_scores(estimator, X, y, splits, scoring)
    seeds = check_random_state(random_state).randint(np.iinfo(np.int32).max, size=n_permutations)
    null_scores = np.asarray(Parallel(n_jobs=n_jobs)(
        delayed(_null_scores)(estimator, X, data.y, data.lengths, y.shape, splits, scoring, null, s)
        for s in seeds))
    exceed = (np.nan_to_num(null_scores, nan=np.inf) >= observed).sum(axis=0)
    pvalue = np.where(np.isnan(observed), np.nan, (1.0 + exceed) / (n_permutations + 1.0))
    return Bunch(score=observed, null_scores=null_scores, pvalue=pvalue)


# ----------------------------------------------------------------------- paired comparison
def _paired_scores(scores_a: ArrayLike, scores_b: ArrayLike) -> tuple[NDArray, NDArray]:
    """Two per-neuron score vectors as float arrays of one shape (n_neurons,)."""
    a = np.asarray(scores_a, dtype=np.float64)
    b = np.asarray(scores_b, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(
            "scores_a and scores_b must be 1-D arrays of one score per neuron, the same "
            f"neurons in the same order; got shapes {a.shape} and {b.shape}"
        )
    return a, b


def paired_comparison(scores_a: ArrayLike, scores_b: ArrayLike, *, names: tuple[str, str] = ("A", "B"),
                      alternative: str = "two-sided") -> Bunch:
    """Compare two models neuron by neuron: score differences and a signed-rank test.

    Neurons with a NaN score in either model are left out. The Wilcoxon signed-rank test
    (:func:`scipy.stats.wilcoxon`, exact for up to 50 neurons without ties, normal
    approximation beyond) asks whether the differences ``a - b`` are centred on 0; ties
    (equal scores) are dropped, as Wilcoxon proposed.

    Parameters
    ----------
    scores_a, scores_b : array-like of shape (n_neurons,)
        Per-neuron scores of the two models on the same neurons and test data, e.g.
        ``cc_norm(..., multioutput="raw_values")``.
    names : (str, str), default=("A", "B")
        Model names used in ``summary``.
    alternative : {"two-sided", "greater", "less"}, default="two-sided"
        ``"greater"``: A scores higher than B.

    Returns
    -------
    result : sklearn.utils.Bunch
        With the fields:

        difference : ndarray of shape (n_neurons,)
            ``a - b``; NaN where either is NaN.
        n_neurons : int
            Neurons compared (both scores finite).
        n_better, n_worse, n_tied : int
            Neurons where A scores higher than, lower than, or equal to B.
        median_difference, mean_difference : float
            Of the compared neurons.
        statistic : float
            Wilcoxon's statistic (the smaller of the rank sums for ``"two-sided"``).
        pvalue : float
            1.0 when every compared neuron is tied.
        summary : str
            One line, e.g. "A vs B: A higher for 80 of 119 neurons (median difference
            +0.041), Wilcoxon signed-rank p = 2.1e-06".

    Examples
    --------
    >>> from skstrf.significance import paired_comparison
    >>> result = paired_comparison([0.5, 0.6, 0.7, 0.4], [0.3, 0.5, 0.6, 0.1])
    >>> result.n_better, result.pvalue
    (4, 0.125)
    """
    from scipy import stats

    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError(f"alternative must be 'two-sided', 'greater' or 'less'; got {alternative!r}")
    if len(names) != 2 or not all(isinstance(n, str) for n in names):
        raise ValueError(f"names must be two strings; got {names!r}")
    a, b = _paired_scores(scores_a, scores_b)
    difference = a - b
    used = np.isfinite(difference)
    d = difference[used]
    if d.size == 0:
        raise ValueError(
            f"no neuron has a finite score in both models ({a.size} neurons); nothing to compare"
        )
    n_better, n_worse = int(np.sum(d > 0)), int(np.sum(d < 0))
    if n_better + n_worse == 0:
        statistic, pvalue = 0.0, 1.0
    else:
        test = stats.wilcoxon(d, zero_method="wilcox", alternative=alternative)
        statistic, pvalue = float(test.statistic), float(test.pvalue)
    median = float(np.median(d))
    summary = (f"{names[0]} vs {names[1]}: {names[0]} higher for {n_better} of {d.size} neurons, "
               f"lower for {n_worse} (median difference {median:+.3f}), "
               f"Wilcoxon signed-rank p = {pvalue:.2g}")
    return Bunch(difference=difference, n_neurons=int(d.size), n_better=n_better,
                 n_worse=n_worse, n_tied=int(d.size - n_better - n_worse),
                 median_difference=median, mean_difference=float(np.mean(d)),
                 statistic=statistic, pvalue=pvalue, summary=summary)


def pairwise_comparisons(scores: Mapping[str, ArrayLike], *, pairs=None,
                         correction: str | None = "holm") -> list[Bunch]:
    """:func:`paired_comparison` of pairs of models, p-values corrected for the pairs.

    Parameters
    ----------
    scores : mapping of str to array-like of shape (n_neurons,)
        Model name -> per-neuron scores, the same neurons for every model (at least two).
    pairs : sequence of (str, str), default=None
        The pairs to compare (names of ``scores``); by default every pair, in the mapping's
        order.
    correction : {"holm"} or None, default="holm"
        Holm's step-down correction over the pairs compared (the chance of any false
        "better" among them stays below the level), or none.

    Returns
    -------
    rows : list of sklearn.utils.Bunch
        One per pair ``(a, b)`` in the mapping's order (a before b): the fields of
        :func:`paired_comparison` plus ``model_a``, ``model_b`` and ``pvalue_corrected``;
        with several pairs and ``"holm"``, ``summary`` ends with the corrected p-value.

    Examples
    --------
    >>> from skstrf.significance import pairwise_comparisons
    >>> rows = pairwise_comparisons({"vanilla": [0.6, 0.5, 0.7], "separable": [0.2, 0.3, 0.1],
    ...                              "parametric": [0.4, 0.4, 0.5]})
    >>> [(r.model_a, r.model_b, r.n_better) for r in rows]
    [('vanilla', 'separable', 3), ('vanilla', 'parametric', 3), ('separable', 'parametric', 0)]
    """
    if correction not in ("holm", None):
        raise ValueError(f"correction must be 'holm' or None; got {correction!r}")
    names = list(scores)
    if len(names) < 2:
        raise ValueError(f"pairwise_comparisons needs the scores of at least two models; got {names}")
    pairs = list(itertools.combinations(names, 2)) if pairs is None else [tuple(p) for p in pairs]
    unknown = sorted({name for pair in pairs for name in pair} - set(names))
    if unknown or not pairs:
        raise ValueError(f"pairs must name models of scores {names}; got {pairs}")
    rows = []
    for first, second in pairs:
        row = paired_comparison(scores[first], scores[second], names=(first, second))
        row.model_a, row.model_b = first, second
        rows.append(row)
    p = np.array([r.pvalue for r in rows])
    if correction == "holm":
        order = np.argsort(p, kind="stable")
        stepped = np.maximum.accumulate(np.minimum(1.0, (len(p) - np.arange(len(p))) * p[order]))
        corrected = np.empty_like(p)
        corrected[order] = stepped
    else:
        corrected = p
    for row, value in zip(rows, corrected):
        row.pvalue_corrected = float(value)
        if correction == "holm" and len(rows) > 1:
            row.summary += f" (Holm-corrected over {len(rows)} pairs: {value:.2g})"
    return rows
