"""Model selection: the fixed split, contiguous blocks of one recording, per-neuron CV scores."""

from __future__ import annotations

import numbers
import re
import warnings

import numpy as np
from sklearn.model_selection import BaseCrossValidator, BaseShuffleSplit, check_cv, cross_validate

from ._layout import block_edges, is_one_recording
from .metrics import make_neuron_scorer

__all__ = ["TrainValidTestSplit", "cross_validate_neurons", "neuron_scores", "ContiguousBlocks",
           "check_cv_layout", "train_valid_test_indices"]


class TrainValidTestSplit(BaseCrossValidator):
    """One fixed split of the stimuli into training, validation and test sets.

    The seed workflow's split (NS1: stimuli 0-13 train, 14-16 validation, 17-19 test) as a
    scikit-learn splitter: it yields a single ``(train + valid, test)`` pair, with the
    validation stimuli placed *last* in the training indices. :class:`~skstrf.STRFRegressor`
    holds out the last ``round(validation_fraction * n_stimuli)`` stimuli it is given for
    early stopping, so with ``validation_fraction=split.validation_fraction`` it validates
    on exactly ``valid``, in GridSearchCV and cross_validate alike.

    It splits stimuli, so it refuses one continuous recording (2-D X, or 3-D X with a
    single stimulus), whose axis 0 would be frames: cut the recording into blocks in the
    stimulus layout and split the blocks, or use :class:`ContiguousBlocks`.

    Parameters
    ----------
    train : array-like of int
        Indices (axis 0 of X and y) of the training stimuli.
    valid : array-like of int
        Indices of the validation stimuli; may be empty.
    test : array-like of int
        Indices of the test stimuli.

    Attributes
    ----------
    validation_fraction : float or None
        ``len(valid) / (len(train) + len(valid))``, the value to give
        ``STRFRegressor(validation_fraction=...)``; None when ``valid`` is empty.

    Examples
    --------
    >>> import numpy as np
    >>> from skstrf.model_selection import TrainValidTestSplit
    >>> cv = TrainValidTestSplit(train=range(14), valid=range(14, 17), test=range(17, 20))
    >>> train, test = next(cv.split(np.zeros((20, 5, 2))))
    >>> train[-3:], test, round(cv.validation_fraction, 4)
    (array([14, 15, 16]), array([17, 18, 19]), 0.1765)
    """

    def __init__(self, train, valid, test) -> None:
        self.train = train
        self.valid = valid
        self.test = test

    @classmethod
    def from_bunch(cls, data) -> "TrainValidTestSplit":
        """The split stored in a dataset (``data.train``, ``data.valid``, ``data.test``).

        Parameters
        ----------
        data : Bunch
            E.g. the output of :func:`skstrf.datasets.make_strf_dataset`.

        Returns
        -------
        cv : TrainValidTestSplit
        """
        return cls(data.train, data.valid, data.test)

    def _indices(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        parts = {}
        for name in ("train", "valid", "test"):
            idx = np.asarray(getattr(self, name))
            if idx.ndim != 1 or (idx.size and (idx.dtype.kind not in "iu" or idx.min() < 0)):
                raise ValueError(
                    f"{name} must be a 1-D sequence of non-negative stimulus indices; got "
                    f"{getattr(self, name)!r}"
                )
            parts[name] = idx.astype(np.intp)
        for name in ("train", "test"):
            if parts[name].size == 0:
                raise ValueError(f"{name} is empty; expected at least one stimulus index")
        all_idx = np.concatenate(list(parts.values()))
        if np.unique(all_idx).size != all_idx.size:
            raise ValueError("train, valid and test must be disjoint and without repeats")
        return parts["train"], parts["valid"], parts["test"]

    @property
    def validation_fraction(self) -> float | None:
        train, valid, _ = self._indices()
        return valid.size / (train.size + valid.size) if valid.size else None

    def split(self, X=None, y=None, groups=None):
        """Yield the one ``(train + valid, test)`` split.

        Parameters
        ----------
        X : array-like of shape (n_stimuli, n_times, n_freqs) or None, default=None
            Checked to hold every index when given; one continuous recording (2-D, or a
            single stimulus) is refused.
        y, groups : ignored

        Yields
        ------
        train : ndarray of int
            The training stimuli followed by the validation stimuli.
        test : ndarray of int
            The test stimuli.
        """
        train, valid, test = self._indices()
        if X is not None:
            shape = _shape(X)
            if is_one_recording(shape):
                raise ValueError(
                    f"X of shape {shape} is one continuous recording, but TrainValidTestSplit "
                    "splits stimuli: its indices would pick single frames (or refer to "
                    "stimuli that do not exist). Cut the recording into blocks in the stimulus "
                    "layout (n_blocks, n_times, n_freqs), NaN-padding the last block, and give "
                    "block indices; or cross-validate over contiguous blocks of frames with "
                    "skstrf.model_selection.ContiguousBlocks(n_splits=5, gap=n_lags - 1)."
                )
            n_stimuli = shape[0]
            largest = max(train.max(), test.max(), valid.max() if valid.size else 0)
            if largest >= n_stimuli:
                raise ValueError(
                    f"the split refers to stimulus {largest} but X has {n_stimuli} stimuli "
                    "(axis 0); a fixed split needs X in the stimulus layout "
                    "(n_stimuli, n_times, n_freqs)."
                )
        yield np.concatenate([train, valid]), test

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        """Number of splits: 1.

        Returns
        -------
        n_splits : int
        """
        return 1

    def _iter_test_indices(self, X=None, y=None, groups=None):
        yield self._indices()[2]


def train_valid_test_indices(n_stimuli: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The seed's contiguous train / validation / test split of ``n_stimuli`` stimuli.

    NS1's split (stimuli 0-13 train, 14-16 validation, 17-19 test) as a rule for any
    number of stimuli: validation and test each get 15% of the stimuli, rounded to the
    nearest whole stimulus with halves rounded up (``(3 * n_stimuli + 10) // 20``, in
    integers), and at least one each; training gets the rest. The three sets are
    contiguous, in that order. The synthetic generator, the NS1 loader and
    ``skstrf compare`` all use this rule.

    Parameters
    ----------
    n_stimuli : int
        Number of stimuli, at least 3.

    Returns
    -------
    train : ndarray of int of shape (n_stimuli - 2 * n_held,)
        The first stimuli.
    valid : ndarray of int of shape (n_held,)
        The next ones.
    test : ndarray of int of shape (n_held,)
        The last ones.

    Examples
    --------
    >>> from skstrf.model_selection import train_valid_test_indices
    >>> [len(part) for part in train_valid_test_indices(20)]
    [14, 3, 3]
    >>> [len(part) for part in train_valid_test_indices(30)]
    [20, 5, 5]
    """
    if isinstance(n_stimuli, (bool, np.bool_)) or not isinstance(n_stimuli, numbers.Integral):
        raise TypeError(f"n_stimuli must be an integer, got {n_stimuli!r}")
    if n_stimuli < 3:
        raise ValueError(f"a train/validation/test split needs at least 3 stimuli; got {n_stimuli}")
    n_held = max(1, (3 * int(n_stimuli) + 10) // 20)
    n_train = int(n_stimuli) - 2 * n_held
    idx = np.arange(int(n_stimuli))
    return idx[:n_train], idx[n_train:n_train + n_held], idx[n_train + n_held:]


def cross_validate_neurons(estimator, X, y, *, groups=None, cv=None, metric: str = "cc_norm",
                           method: str = "schoppe", n_jobs: int | None = None,
                           return_train_score: bool = False, return_estimator: bool = False,
                           return_indices: bool = False, verbose: int = 0, params=None,
                           error_score=np.nan) -> dict:
    """Cross-validate and return every neuron's score on every fold.

    :func:`sklearn.model_selection.cross_validate` with a scorer that predicts each test
    fold once and scores all neurons at once (:func:`skstrf.metrics.make_neuron_scorer`);
    the per-neuron scores are gathered into arrays.

    Parameters
    ----------
    estimator : estimator
        A :class:`~skstrf.STRFRegressor` or a pipeline ending with one.
    X : array-like of shape (n_stimuli, n_times, n_freqs)
        Stimuli; folds split axis 0, so all frames and repeats of a stimulus stay together.
    y : array-like of shape (n_stimuli, n_times, n_neurons, n_repeats)
        Responses (any layout of the data contract with a stimulus axis).
    groups : array-like of shape (n_stimuli,), default=None
        Group of each stimulus (e.g. its sound category) for group splitters such as
        ``GroupKFold`` or ``LeaveOneGroupOut``.
    cv : int, cross-validation generator or iterable, default=None
        As in scikit-learn (5-fold ``KFold`` for None).
    metric : {"cc_norm", "cc"}, default="cc_norm"
        The per-neuron metric.
    method : {"schoppe", "hsu"}, default="schoppe"
        The noise correction of cc_norm.
    n_jobs : int, default=None
        Folds fitted in parallel (joblib; see the user guide for dask clusters).
    return_train_score, return_estimator, return_indices : bool, default=False
        As in scikit-learn.
    verbose : int, default=0
        As in scikit-learn.
    params : dict, default=None
        Parameters passed to the estimator's ``fit`` (and to the splitter).
    error_score : "raise" or float, default=np.nan
        As in scikit-learn.

    Returns
    -------
    results : dict
        ``f"test_{metric}"``: ndarray of shape (n_folds, n_neurons), each neuron's score on
        each test fold; ``f"train_{metric}"`` likewise with ``return_train_score``;
        ``"fit_time"``, ``"score_time"``: ndarray of shape (n_folds,); and
        ``"estimator"``, ``"indices"`` when asked. ``np.nanmean(results["test_cc_norm"],
        axis=0)`` is each neuron's mean over folds.

    Examples
    --------
    >>> from sklearn.model_selection import KFold
    >>> from skstrf import STRFRegressor
    >>> from skstrf.datasets import make_strf_dataset
    >>> from skstrf.model_selection import cross_validate_neurons
    >>> data = make_strf_dataset(n_stimuli=6, n_times=100, n_freqs=8, n_neurons=3,
    ...                          n_lags=4, random_state=0)
    >>> res = cross_validate_neurons(STRFRegressor(n_lags=4), data.X, data.y, cv=KFold(3))
    >>> res["test_cc_norm"].shape
    (3, 3)
    """
    cv = check_cv_layout(cv, X, y, groups=groups)
    results = cross_validate(
        estimator, X, y, groups=groups, cv=cv, scoring=make_neuron_scorer(metric, method=method),
        n_jobs=n_jobs, return_train_score=return_train_score,
        return_estimator=return_estimator, return_indices=return_indices, verbose=verbose,
        params=params, error_score=error_score,
    )
    out = {key: value for key, value in results.items()
           if not key.startswith(("test_", "train_"))}
    for split in ("test", "train") if return_train_score else ("test",):
        out[f"{split}_{metric}"] = neuron_scores(results, metric=metric, split=split)
    return out


def neuron_scores(results: dict, *, metric: str = "cc_norm", split: str = "test") -> np.ndarray:
    """Gather per-neuron score columns into an array.

    Works on the ``cv_results_`` of a search (``GridSearchCV(..., scoring=
    make_neuron_scorer(), refit="cc_norm")``) and on the dict returned by
    ``cross_validate(..., scoring=make_neuron_scorer())``.

    Parameters
    ----------
    results : dict
        ``cv_results_`` (columns ``split{k}_{split}_{metric}_neuron_{i}``) or
        ``cross_validate``'s output (keys ``{split}_{metric}_neuron_{i}``).
    metric : str, default="cc_norm"
        The metric name the scorer used.
    split : {"test", "train"}, default="test"
        Test or training scores.

    Returns
    -------
    scores : ndarray
        Of shape (n_candidates, n_splits, n_neurons) from ``cv_results_``, and of shape
        (n_folds, n_neurons) from ``cross_validate``.
    """
    if split not in ("test", "train"):
        raise ValueError(f"split must be 'test' or 'train'; got {split!r}")
    pattern = re.compile(rf"^(?:split(\d+)_)?{split}_{re.escape(metric)}_neuron_(\d+)$")
    found = [(m, key) for key in results if (m := pattern.match(key))]
    if not found:
        raise ValueError(
            f"no per-neuron '{split}_{metric}_neuron_<i>' scores in these results; score with "
            f"scoring=skstrf.metrics.make_neuron_scorer({metric!r})"
            + (" and return_train_score=True" if split == "train" else "") + "."
        )
    n_neurons = 1 + max(int(m.group(2)) for m, _ in found)
    if found[0][0].group(1) is None:  # cross_validate: one value per fold
        return np.stack([np.asarray(results[f"{split}_{metric}_neuron_{i}"], dtype=float)
                         for i in range(n_neurons)], axis=-1)
    n_splits = 1 + max(int(m.group(1)) for m, _ in found)
    return np.stack([
        np.stack([np.asarray(results[f"split{k}_{split}_{metric}_neuron_{i}"], dtype=float)
                  for i in range(n_neurons)], axis=-1)
        for k in range(n_splits)
    ], axis=1)


class ContiguousBlocks(BaseCrossValidator):
    """K-fold cross-validation over contiguous blocks of one continuous recording.

    Cuts axis 0 (the frames of a continuous recording ``X`` of shape (n_times, n_freqs))
    into ``n_splits`` consecutive blocks of nearly equal length; each block is the test set
    once, and the training set is every other frame except ``gap`` frames on each side of
    the test block. Never shuffles: neighbouring frames share stimulus history (the STRF's
    lags) and slow response fluctuations, so a test set scattered among training frames
    would be partly trained on.

    **Lag history at block edges.** A model predicts frame ``t`` from frames
    ``t - n_lags + 1 .. t``. The ``n_lags - 1`` training frames just after a test block
    respond partly to the test block's sound; ``gap=n_lags - 1`` drops them (and as many
    before the block) from training, so that no training response depends on the test
    block's stimulus, and buffers slow correlations of the responses. When the test block is
    inside the recording, the estimator receives the training frames before and after it as
    one recording: the first ``n_lags - 1`` frames after the junction see the frames
    before the block as their history (at most one junction per fold, a small error for long
    blocks). For exact history at every edge, cut the recording into blocks in the stimulus
    layout instead (``X.reshape(n_blocks, -1, n_freqs)`` when the length divides, NaN-padding
    the last block otherwise) and use :class:`~sklearn.model_selection.KFold` on the blocks.

    Parameters
    ----------
    n_splits : int, default=5
        Number of blocks (and folds), at least 2.
    gap : int, default=0
        Frames dropped from the training set on each side of the test block; ``n_lags - 1``
        removes every training frame whose lag window reaches into the test block.

    See Also
    --------
    check_cv_layout : Warns when a splitter would scatter the frames of a recording.
    sklearn.model_selection.TimeSeriesSplit : Forward-only blocks (training before test).

    Examples
    --------
    >>> import numpy as np
    >>> from skstrf.model_selection import ContiguousBlocks
    >>> X = np.zeros((10, 2))
    >>> for train, test in ContiguousBlocks(n_splits=3, gap=1).split(X):
    ...     print(train, test)
    [5 6 7 8 9] [0 1 2 3]
    [0 1 2 8 9] [4 5 6]
    [0 1 2 3 4 5] [7 8 9]
    """

    def __init__(self, n_splits: int = 5, gap: int = 0) -> None:
        if isinstance(n_splits, (bool, np.bool_)) or not isinstance(n_splits, numbers.Integral) \
                or n_splits < 2:
            raise ValueError(f"n_splits must be an integer of at least 2; got {n_splits!r}")
        if isinstance(gap, (bool, np.bool_)) or not isinstance(gap, numbers.Integral) or gap < 0:
            raise ValueError(f"gap must be a non-negative integer of frames; got {gap!r}")
        self.n_splits = int(n_splits)
        self.gap = int(gap)

    def _blocks(self, n_samples: int) -> np.ndarray:
        """Block boundaries: block ``k`` is ``[edges[k], edges[k + 1])``, by the library's one
        rule for blocks of a recording (KFold sizes)."""
        if n_samples < self.n_splits:
            raise ValueError(
                f"cannot cut {n_samples} frames into n_splits={self.n_splits} blocks")
        edges = block_edges(n_samples, self.n_splits)
        sizes = np.diff(edges)
        # The smallest training set is the one of a middle block with a gap on both sides.
        smallest = n_samples - sizes.max() - 2 * self.gap
        if smallest < 1:
            raise ValueError(
                f"gap={self.gap} leaves no training frame around a block of {sizes.max()} of "
                f"{n_samples} frames; use fewer splits or a smaller gap")
        return edges

    def split(self, X, y=None, groups=None):
        """Yield the training and test frames of each block in turn.

        Parameters
        ----------
        X : array-like of shape (n_times, n_freqs)
            The recording (any array with frames on axis 0).
        y, groups : ignored
            Present for scikit-learn compatibility.

        Yields
        ------
        train : ndarray of int
            Frames before the test block (minus ``gap``) followed by those after it.
        test : ndarray of int
            The test block's frames, contiguous and in order.
        """
        shape = _shape(X)
        if len(shape) == 3 and shape[0] == 1:
            raise ValueError(
                f"X of shape {shape} holds one recording as a single stimulus; ContiguousBlocks "
                "cuts axis 0, the frames of a recording given as 2-D X: pass X[0] of shape "
                "(n_times, n_freqs) and y[0]."
            )
        n_samples = shape[0]
        edges = self._blocks(n_samples)
        frames = np.arange(n_samples)
        for start, stop in zip(edges[:-1], edges[1:]):
            train = np.concatenate([frames[: max(start - self.gap, 0)], frames[stop + self.gap :]])
            yield train, frames[start:stop]

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        """Number of folds: ``n_splits``.

        Returns
        -------
        n_splits : int
        """
        return self.n_splits

    def _iter_test_indices(self, X=None, y=None, groups=None):
        for _, test in self.split(X):
            yield test


def _shape(X) -> tuple[int, ...]:
    """Shape of an array-like (numpy, dask, pandas or nested lists) without copying arrays."""
    shape = getattr(X, "shape", None)
    return tuple(int(n) for n in (np.shape(X) if shape is None else shape))


def _is_random_splitter(cv) -> bool:
    """Whether ``cv`` draws its folds at random (KFold(shuffle=True), ShuffleSplit, ...)."""
    return bool(getattr(cv, "shuffle", False)) or isinstance(cv, BaseShuffleSplit) or (
        type(cv).__name__.startswith("Repeated"))


def check_cv_layout(cv, X, y=None, *, groups=None):
    """Check a cross-validation strategy against the layout of X; warn if it scatters frames.

    With the stimulus layout (3-D X) every scikit-learn splitter keeps whole stimuli
    together and nothing is checked. With one continuous recording (2-D X: frames on axis
    0) a splitter that shuffles frames (``KFold(shuffle=True)``, ``ShuffleSplit``,
    ``RepeatedKFold``, ...) or whose test sets are not contiguous blocks of two frames or
    more (``LeaveOneOut``, ``LeavePOut``, an iterable of scattered folds) tests on frames
    whose neighbours were trained on: they share the STRF's stimulus history and slow
    response fluctuations, so the scores are inflated. It then emits a ``UserWarning`` that
    names :class:`ContiguousBlocks` (or ``KFold`` without shuffling) as the remedy.

    Parameters
    ----------
    cv : int, cross-validation generator, iterable or None
        As in scikit-learn (None and an int mean ``KFold``, unshuffled).
    X : array-like of shape (n_times, n_freqs) or (n_stimuli, n_times, n_freqs)
        The stimuli.
    y : array-like, default=None
        The responses, passed to the splitter.
    groups : array-like of shape (n_samples,), default=None
        Groups, passed to the splitter.

    Returns
    -------
    cv : cross-validation generator
        ``sklearn.model_selection.check_cv(cv)``, ready to pass on.

    Raises
    ------
    ValueError
        When X holds one recording as a single stimulus, shape (1, n_times, n_freqs): a
        splitter over stimuli has nothing to split.

    Warns
    -----
    UserWarning
        When X is 2-D and the splitter shuffles frames or its test sets are not contiguous
        blocks.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from sklearn.model_selection import KFold
    >>> from skstrf.model_selection import check_cv_layout
    >>> X = np.zeros((100, 2))
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = check_cv_layout(KFold(5, shuffle=True, random_state=0), X)
    >>> "ContiguousBlocks" in str(caught[0].message)
    True
    """
    checked = check_cv(cv)
    shape = _shape(X)
    if len(shape) == 3 and is_one_recording(shape):
        raise ValueError(
            f"X of shape {shape} holds one recording as a single stimulus, and splitters split "
            "axis 0 (the stimuli): there is nothing to split. Pass the recording as 2-D X "
            "(X[0], y[0]) with skstrf.model_selection.ContiguousBlocks(n_splits=5, "
            "gap=n_lags - 1), or cut it into blocks in the stimulus layout "
            "(n_blocks, n_times, n_freqs)."
        )
    if len(shape) != 2:
        return checked
    problem = None
    if _is_random_splitter(checked):
        problem = f"{checked!r} draws frames at random"
    else:
        for _, test in checked.split(X, y, groups):
            test = np.sort(np.asarray(test))
            if test.size < 2 or np.any(np.diff(test) != 1):
                problem = (f"{checked!r} gives test sets that are not contiguous blocks "
                           f"(e.g. {test.size} frame(s) starting at frame {test[:1].tolist()})")
                break
    if problem is not None:
        warnings.warn(
            f"X is one continuous recording (n_times, n_freqs) and {problem}: test frames "
            "would sit among training frames that share their stimulus history and slow "
            "response fluctuations, which inflates the scores. Use "
            "skstrf.model_selection.ContiguousBlocks(n_splits=5, gap=n_lags - 1), or KFold "
            "without shuffling; or cut the recording into blocks in the stimulus layout "
            "(n_blocks, n_times, n_freqs).",
            UserWarning, stacklevel=2,
        )
    return checked
