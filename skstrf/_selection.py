"""Choosing the penalty: the default grid, the grid a fit searches, and the choice per neuron
from held-out scores (own, shared, or partly pooled over the neurons)."""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["DEFAULT_ALPHAS", "MAX_GRADIENT_ALPHA", "alpha_grid", "choose", "choose_form", "near_ties",
           "tied_penalties", "blended_scores"]

#: The penalty grid searched when ``alpha=None``.
DEFAULT_ALPHAS = np.logspace(-4, 2, 13)

#: The largest penalty gradient training takes: its loss is computed in float32, where a
#: penalty beyond this overflows with any non-zero kernel (and any penalty near it already
#: makes every STRF zero).
MAX_GRADIENT_ALPHA = 1e30


def alpha_grid(alpha, *, gradient: bool, closed_start: bool, has_valid: bool, has_folds: bool) -> np.ndarray:
    """The penalty grid (1-D, non-empty) a fit searches, or its single penalty.

    Parameters
    ----------
    alpha : float, array-like or None
        The estimator's ``alpha``.
    gradient : bool
        Whether the model is trained by gradient.
    closed_start : bool
        Whether gradient training starts from the closed-form solution.
    has_valid, has_folds : bool
        Whether validation stimuli, or cross-validation folds, are there to choose on.

    Returns
    -------
    alphas : ndarray of shape (n_alphas,)
        One value: no choice to make.
    """
    if alpha is None:
        if has_folds:
            return DEFAULT_ALPHAS.copy()
        if gradient and not closed_start:
            return np.zeros(1)
        return DEFAULT_ALPHAS.copy() if has_valid else np.array([1e-3])
    try:
        alphas = np.atleast_1d(np.asarray(alpha, dtype=np.float64))
    except (TypeError, ValueError):
        alphas = np.array([np.nan])
    if alphas.ndim != 1 or alphas.size == 0 or not np.all(np.isfinite(alphas)) or np.any(alphas < 0):
        raise ValueError(
            f"alpha must be a non-negative float or a non-empty 1-D sequence of them; got {alpha!r}"
        )
    if gradient and alphas.max() > MAX_GRADIENT_ALPHA:
        raise ValueError(
            f"alpha={alpha!r} is too large for gradient training, whose loss is computed in float32: "
            f"use alpha <= {MAX_GRADIENT_ALPHA:g} (a penalty that strong already makes every STRF "
            "zero), or a closed-form solver (solver='ridge' or 'als')."
        )
    if alphas.size > 1 and gradient and not has_folds:
        raise ValueError(
            f"solver='gradient' trains with a single penalty, but alpha has {alphas.size} values "
            "and cv=None; pass cv (the penalty is then chosen by cross-validating the linear "
            "model), search a grid with GridSearchCV, or use solver='ridge'/'als'."
        )
    if alphas.size > 1 and not (has_valid or has_folds):
        raise ValueError(
            "choosing alpha from a grid needs validation stimuli or cross-validation folds, but "
            "cv=None and none is held out (validation_fraction=None or a single stimulus); "
            "pass cv or a single alpha."
        )
    return alphas


def choose(scores: np.ndarray | None, alphas: np.ndarray, n_neurons: int, *, per_neuron: bool = True,
           pooling: float = 0.0) -> np.ndarray:
    """The penalty of each neuron, from the held-out score of every penalty.

    Parameters
    ----------
    scores : ndarray of shape (n_alphas, n_neurons) or None
        Held-out scores (higher is better; NaN: undefined, e.g. a constant prediction).
        None when there is nothing to choose (one penalty).
    alphas : ndarray of shape (n_alphas,)
    n_neurons : int
    per_neuron : bool, default=True
        A penalty per neuron; False: the one with the best mean score over neurons.
    pooling : float in [0, 1], default=0.0
        With ``per_neuron``, each neuron's penalty maximises ``(1 - pooling)`` times its own
        score plus ``pooling`` times the mean score over neurons (partial pooling: a noisy
        neuron's curve leans on the population's); 0 uses each neuron's own curve, 1 gives
        every neuron the shared penalty.

    Returns
    -------
    alpha : ndarray of shape (n_neurons,)
        Ties, and neurons whose scores are all undefined, go to the largest penalty.
    """
    alphas = np.asarray(alphas, dtype=np.float64)
    if scores is None:
        if alphas.size != 1:
            raise ValueError("choosing among several penalties needs validation stimuli or folds")
        return np.full(n_neurons, alphas[0])
    best = _best(blended_scores(scores, per_neuron=per_neuron, pooling=pooling), alphas)
    return np.full(n_neurons, alphas[best[0]]) if not per_neuron or pooling >= 1 else alphas[best]


def _blended(scores: np.ndarray, pooling: float) -> np.ndarray:
    """The scores a neuron's penalty maximises with partial ``pooling`` (:func:`choose`)."""
    if pooling <= 0:
        return scores
    # NaN (a constant prediction) stays NaN in the neuron's own term and is left out of
    # the population's mean, so that one silent neuron does not move the others' choice
    with warnings.catch_warnings():  # a neuron-less row: NaN, said by the scores themselves
        warnings.simplefilter("ignore", RuntimeWarning)
        population = np.nanmean(scores, axis=1, keepdims=True)
    return (1 - pooling) * scores + pooling * population


def blended_scores(scores: np.ndarray, *, per_neuron: bool = True, pooling: float = 0.0) -> np.ndarray:
    """What :func:`choose` maximises for each neuron: (n_alphas, n_neurons), or
    (n_alphas, 1) with one penalty for all neurons (the mean over neurons, NaN as -inf)."""
    scores = np.asarray(scores, dtype=np.float64)
    if not per_neuron or pooling >= 1:
        return np.nan_to_num(scores, nan=-np.inf).mean(axis=1, keepdims=True)
    return _blended(scores, pooling)


def tied_penalties(scores: np.ndarray, alphas: np.ndarray, *, per_neuron: bool = True, pooling: float = 0.0,
                   tolerance: float | np.ndarray) -> np.ndarray:
    """The penalties that could be :func:`choose`'s with errors of the scores within half
    their tolerance: each column's best, and every penalty whose objective (the scores as
    :func:`choose` weighs them) is below the best by less than the mean of the two
    penalties' tolerances.

    Parameters
    ----------
    scores : ndarray of shape (n_alphas, n_neurons)
    alphas : ndarray of shape (n_alphas,)
    per_neuron, pooling :
        As for :func:`choose`.
    tolerance : float or ndarray of shape (n_alphas,)
        One for every penalty, or one per penalty.

    Returns
    -------
    ndarray of bool of shape (n_alphas, n_neurons), or (n_alphas, 1) with one penalty for
    all neurons (``per_neuron=False`` or ``pooling >= 1``)
        False everywhere in a column whose scores are all undefined.
    """
    objective = np.nan_to_num(blended_scores(scores, per_neuron=per_neuron, pooling=pooling), nan=-np.inf)
    tolerance = np.broadcast_to(np.asarray(tolerance, dtype=np.float64), (objective.shape[0],))
    best = _best(objective, np.asarray(alphas, dtype=np.float64))
    columns = np.arange(objective.shape[1])
    margin = (tolerance[best][None, :] + tolerance[:, None]) / 2
    with np.errstate(invalid="ignore"):  # -inf - -inf: an undefined column ties nothing
        tied = objective[best, columns][None, :] - objective < margin
    return tied & np.isfinite(objective[best, columns])[None, :]


def near_ties(scores: np.ndarray, alphas: np.ndarray, *, per_neuron: bool = True, pooling: float = 0.0,
              tolerance: float | np.ndarray) -> np.ndarray:
    """The neurons whose :func:`choose` could change with errors of the scores within half
    their tolerance: where another penalty than the best is a :func:`tied_penalties` (same
    parameters). Returns a bool per neuron; with one penalty for all neurons, all True when
    the mean scores are near a tie, else all False."""
    scores = np.asarray(scores, dtype=np.float64)
    n_neurons = scores.shape[1]
    if scores.shape[0] < 2:
        return np.zeros(n_neurons, dtype=bool)
    tied = tied_penalties(scores, alphas, per_neuron=per_neuron, pooling=pooling, tolerance=tolerance).sum(0) > 1
    return np.broadcast_to(tied, (n_neurons,)).copy()


def choose_form(scores: np.ndarray, fold_scores: np.ndarray | None, alphas: np.ndarray, plain: int | None,
                *, per_neuron: bool = True, pooling: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The penalty form and multiplier of each neuron, from the held-out scores of every
    candidate form and penalty.

    For each form the multiplier is chosen as :func:`choose` does; then the form with the
    best (blended) score. Offering more forms adds selection noise, so a neuron keeps the
    ``plain`` form (one penalty for every space, no smoothness) unless another form's gain
    over it is larger than its standard error over the cross-validation folds (the
    one-standard-error rule: the mean of the per-fold differences must exceed their
    standard deviation over the square root of the number of folds).

    Parameters
    ----------
    scores : ndarray of shape (n_forms, n_alphas, n_neurons)
        Pooled held-out scores.
    fold_scores : ndarray of shape (n_folds, n_forms, n_alphas, n_neurons) or None
        The same per fold; None (validation stimuli): no fallback, the best form is kept.
    alphas : ndarray of shape (n_alphas,)
    plain : int or None
        The plain form's index, None when it is not a candidate.
    per_neuron, pooling :
        As for :func:`choose`.

    Returns
    -------
    index : ndarray of int of shape (n_neurons,)
        The form of each neuron.
    alpha : ndarray of shape (n_neurons,)
    """
    scores = np.asarray(scores, dtype=np.float64)
    n_forms, _, n_neurons = scores.shape
    chosen = np.stack([choose(scores[k], alphas, n_neurons, per_neuron=per_neuron, pooling=pooling)
                       for k in range(n_forms)])  # (K, N)
    at = np.stack([np.searchsorted(np.sort(alphas), chosen[k]) for k in range(n_forms)])
    order = np.argsort(alphas, kind="stable")
    position = order[at]  # (K, N): the index into alphas of each form's choice
    neurons = np.arange(n_neurons)
    if not per_neuron or pooling >= 1:
        value = np.stack([np.nanmean(scores[k][position[k], neurons]) for k in range(n_forms)])[:, None]
        value = np.broadcast_to(value, (n_forms, n_neurons))
    else:
        value = np.stack([_blended(scores[k], pooling)[position[k], neurons] for k in range(n_forms)])
    index = np.nan_to_num(value, nan=-np.inf).argmax(axis=0)
    if plain is not None and fold_scores is not None and fold_scores.shape[0] > 1:
        folds = np.asarray(fold_scores, dtype=np.float64)
        best = folds[:, index, position[index, neurons], neurons]  # (F, N)
        base = folds[:, plain, position[plain, neurons], neurons]
        if not per_neuron or pooling >= 1:
            best, base = np.nanmean(best, axis=1, keepdims=True), np.nanmean(base, axis=1, keepdims=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            gain = best - base
            mean = np.nanmean(gain, axis=0)
            error = np.nanstd(gain, axis=0, ddof=1) / np.sqrt(np.sum(np.isfinite(gain), axis=0))
        keep_plain = ~(mean > np.nan_to_num(error, nan=np.inf))
        index = np.where(np.broadcast_to(keep_plain, index.shape), plain, index)
    return index, chosen[index, neurons]


def _best(scores: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """Index of the best score per column (ties and all-NaN go to the largest penalty)."""
    scores = np.nan_to_num(scores, nan=-np.inf)
    # scanned from the strongest penalty down, so that argmax's first maximum prefers it
    order = np.argsort(-alphas, kind="stable")
    return order[scores[order].argmax(axis=0)]
