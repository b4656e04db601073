"""Model selection over stimuli: a fixed train/valid/test splitter and per-neuron CV scores."""

from __future__ import annotations

import re

import numpy as np
from sklearn.model_selection import BaseCrossValidator, cross_validate

from .metrics import make_neuron_scorer

__all__ = ["TrainValidTestSplit", "cross_validate_neurons", "neuron_scores"]


class TrainValidTestSplit(BaseCrossValidator):
    """One fixed split of the stimuli into training, validation and test sets.

    The seed workflow's split (NS1: stimuli 0-13 train, 14-16 validation, 17-19 test) as a
    scikit-learn splitter: it yields a single ``(train + valid, test)`` pair, with the
    validation stimuli placed *last* in the training indices. :class:`~skstrf.STRFRegressor`
    holds out the last ``round(validation_fraction * n_stimuli)`` stimuli it is given for
    early stopping, so with ``validation_fraction=split.validation_fraction`` it validates
    on exactly ``valid``, in GridSearchCV and cross_validate alike.

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
        X : array-like of shape (n_stimuli, ...) or None, default=None
            Checked to hold every index when given.
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
            n_stimuli = len(X)
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
