"""What precedes each stimulus: the history an STRF reads before a stimulus starts.

A causal STRF predicts frame ``t`` from frames ``t - n_lags + 1 .. t``; the first
``n_lags - 1`` frames of every stimulus reach back before it. What the model reads there is
decided here, once, for the model, its statistics and its predictions:

- ``"mean"`` (the default): each band's mean over the training frames. The history then
  moves with the data: ``fit(X + c)`` and ``predict(X + c)`` equal ``fit(X)`` and
  ``predict(X)`` for any constant ``c`` per band, as a fit whose result does not depend on
  where zero is in X's units must.
- ``"zero"``: zero in X's units (the usual rule of other toolboxes: an offset in X becomes a
  step at every onset, which the fit then models).
- a level per band, in X's units (e.g. the measured level of the silence before each
  stimulus).

Frames known before a stimulus (the recorded gap, or for a block of a recording its real
preceding frames) are given as a lead-in: part of X, read as history, with responses
neither fitted nor scored (the estimator's ``lead_in``).

With a front end (:mod:`skstrf.prefilters`) the STRF reads the front end's output: its
history is the front end's training-mean output (``"mean"``), zero (``"zero"``), or the
front end's steady response to the given level. The front end itself starts each
stimulus as if its first frame had always sounded (:func:`skstrf.prefilters.causal_filter`),
which moves with the data too; a rectifying front end (AdapTrans) does not (its output
depends on where zero is).
"""

from __future__ import annotations

import numbers

import numpy as np
import torch

from ._moments import stimulus_blocks
from ._warnings import warn_once_per_line

__all__ = ["HISTORIES", "check_history", "linear_history", "check_history_level"]

#: The history rules that ``history=`` names (a level per band is the third form).
HISTORIES = ("mean", "zero")


def check_history(history, n_freqs: int) -> str | np.ndarray:
    """The estimator's ``history`` checked against the number of bands.

    Returns
    -------
    str or ndarray of shape (n_freqs,)
        A rule of :data:`HISTORIES`, or a finite level per band (float64).
    """
    if isinstance(history, str):
        if history not in HISTORIES:
            raise ValueError(f"history must be one of {list(HISTORIES)} or a level per band; "
                             f"got {history!r}")
        return history
    if isinstance(history, (bool, np.bool_)):
        raise ValueError(f"history must be one of {list(HISTORIES)} or a level per band; got {history!r}")
    try:
        level = np.asarray(history, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"history must be one of {list(HISTORIES)} or a level per band (numbers); "
                         f"got {history!r}") from exc
    if isinstance(history, numbers.Real):
        level = np.full(n_freqs, float(history))
    if level.shape != (n_freqs,) or not np.isfinite(level).all():
        raise ValueError(f"history as a level must hold one finite number per band, shape ({n_freqs},); "
                         f"got shape {level.shape}" + ("" if np.isfinite(level).all() else " with non-finite values"))
    return level


def linear_history(history, input_mean: np.ndarray, prefilter: torch.nn.Module | None) -> np.ndarray:
    """What the linear stage reads before each stimulus, in its input's units.

    Parameters
    ----------
    history : str or ndarray of shape (n_freqs,)
        From :func:`check_history`.
    input_mean : ndarray of shape (n_channels * n_freqs,)
        The linear stage's input mean over the training frames (the bands' means, or the
        front end's output means).
    prefilter : nn.Module or None
        The front end, at its initial parameters.

    Returns
    -------
    ndarray of shape (n_channels * n_freqs,)
    """
    if isinstance(history, str):
        return np.asarray(input_mean, dtype=np.float64).copy() if history == "mean" else np.zeros_like(input_mean)
    if prefilter is None:
        return np.asarray(history, dtype=np.float64)
    # the front end's steady response to the level: a long constant input, its last frame
    steady = torch.as_tensor(np.broadcast_to(history, (1, prefilter.n_taps + 1, history.size)).copy(),
                             dtype=torch.float32)
    with torch.no_grad():
        return prefilter(steady)[0, -1].double().numpy()


#: Median over bands of |mean| / standard deviation beyond which X's level is reported.
LEVEL_RATIO = 100.0
#: Zero, the history before each stimulus, is reported as louder than the sound (a log
#: spectrogram whose silence is far below zero) when the mean of the median band lies more
#: than ZERO_ABOVE_MEAN standard deviations below zero and, where X's values are at hand,
#: more than BELOW_ZERO_SHARE of its frames are below zero (medians over bands). Centred or
#: sparse stimuli (mean at zero) and non-negative ones pass.
ZERO_ABOVE_MEAN = 1.0
BELOW_ZERO_SHARE = 0.8


def check_history_level(history, data, n_lags: int, moments, prefilter: torch.nn.Module | None) -> None:
    """Warn where the fit depends on where zero is in X's units.

    A rectifying front end (AdapTrans) always does: its output, and so the fit, moves
    when a constant is added to X. With ``history="zero"`` and no front end, the history
    before each stimulus is zero in X's units: with a level far from zero, each stimulus
    starts with a step from 0 to that level, which then dominates the first ``n_lags - 1``
    frames and the fit; otherwise it warns when zero is louder than nearly all of X (a log
    spectrogram with silence far below zero; :data:`ZERO_ABOVE_MEAN`,
    :data:`BELOW_ZERO_SHARE`, the latter checked only when ``data`` holds its values).

    Parameters
    ----------
    history : str or ndarray
        From :func:`check_history`.
    data : StimulusSet or None
        The training data, None for data that are not in memory.
    n_lags : int
    moments : FrameMoments
        X's moments over the training frames.
    prefilter : nn.Module or None
    """
    if prefilter is not None and not getattr(prefilter, "is_linear", False):
        warn_once_per_line(UserWarning(
            f"prefilter={type(prefilter).__name__!r} rectifies the output of its filters, so the "
            "fit depends on where zero is in X's units (adding a constant to X changes the "
            "model): give X in units whose zero means something for the cell (e.g. a log "
            "spectrogram relative to the level of silence, or a linear power spectrogram)."
        ))
        return
    if n_lags < 2 or prefilter is not None or not (isinstance(history, str) and history == "zero"):
        return
    in_memory = data is not None
    mean, std = moments.standardisation()
    ratio = float(np.median(np.abs(mean) / std))
    if ratio > LEVEL_RATIO:
        warn_once_per_line(UserWarning(
            f"X's level is far from zero: the mean of its bands is {ratio:.3g} times their "
            "standard deviation (median over bands). With history='zero' the STRF's history "
            "before each stimulus is zero in X's units, so every stimulus starts with a step "
            f"from 0 to that level, which dominates the first n_lags - 1 = {n_lags - 1} frames "
            "of each stimulus and the fit. Use history='mean' (the default: the training mean "
            "of each band, which moves with X), or give the level that precedes the stimuli."
        ))
        return
    depth = float(np.median(-mean / std))
    # The share of frames needs the values (not at hand for data that arrive in chunks).
    below = float(np.median(_share_below_zero(data))) if in_memory else None
    if depth > ZERO_ABOVE_MEAN and (below is None or below > BELOW_ZERO_SHARE):
        share = "" if below is None else f" and {below:.1%} of its frames are below zero"
        warn_once_per_line(UserWarning(
            f"Zero in X's units is louder than nearly all of X: in the median band (median "
            f"over bands) the mean is {depth:.3g} standard deviations below zero{share}. "
            "With history='zero' the STRF's history before each stimulus is zero in X's units, "
            "so every stimulus starts with a step down from a sound louder than nearly any in "
            f"the data, which shapes the first n_lags - 1 = {n_lags - 1} frames of each stimulus "
            "and the fit. Use history='mean' (the default: the training mean of each band), or "
            "give the level that precedes the stimuli (e.g. history=floor, the log of the power "
            "floor or of the background noise in each band)."
        ))


def _share_below_zero(data: StimulusSet) -> np.ndarray:
    """The share of each band's valid frames where X is below zero, one block of stimuli
    at a time (temporaries of a block's size)."""
    mask = data.frame_mask
    below = np.zeros(data.X.shape[2])
    for block in stimulus_blocks(data.X):
        below += np.sum(data.X[block] < 0, axis=(0, 1), where=mask[block][..., None])
    return below / max(int(mask.sum()), 1)
