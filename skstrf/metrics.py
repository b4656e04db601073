"""Correlation metrics for predicted neural responses, corrected for trial-to-trial noise."""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.utils import Bunch, check_random_state

from ._layout import responses_layout
from ._moments import merge_means
from ._warnings import user_stacklevel, warn_once_per_line

__all__ = [
    "cc", "cc_norm", "noise_ceiling", "noise_ceiling_interval", "noise_power", "signal_power",
    "StimulusScorer", "cc_norm_scorer", "cc_scorer", "make_neuron_scorer", "scoring_layout",
    "ScoreSums", "cc_norm_from_sums", "signal_power_reliability", "UnreliableNeuronWarning",
    "RELIABILITY_ALPHA",
]

_MULTIOUTPUT = ("raw_values", "uniform_average")
_CC_NORM_METHODS = ("schoppe", "hsu")
_DEFAULT_N_SPLITS = 100
_REPEATS_SHAPES = "(n_times, n_neurons, n_repeats) or (n_stimuli, n_times, n_neurons, n_repeats)"
_UNRELIABLE = ("exclude", "warn", "ignore")
#: Level of the one-sided test by which a neuron's signal power counts as distinguishable
#: from zero (:func:`signal_power_reliability`): about 2 standard errors with many repeats.
RELIABILITY_ALPHA = 0.025


# ---------------------------------------------------------------------------
# Input validation and canonical layout
# ---------------------------------------------------------------------------


def _check_option(value: object, name: str, allowed: tuple[str, ...]) -> None:
    """Raise a ValueError unless ``value`` is one of ``allowed``."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}; got {value!r}")


def _check_n_splits(n_splits: object) -> int:
    """Return ``n_splits`` as an int after checking it is a positive integer."""
    if isinstance(n_splits, bool) or not isinstance(n_splits, numbers.Integral) or n_splits < 1:
        raise ValueError(f"n_splits must be a positive integer; got {n_splits!r}")
    return int(n_splits)


def _as_float(a: ArrayLike, name: str) -> NDArray[np.float64]:
    """Convert an array-like of real numbers to a float64 ndarray.

    Parameters
    ----------
    a : array-like
        Values to convert.
    name : str
        Argument name used in error messages.

    Returns
    -------
    arr : ndarray of the same shape as ``a``, dtype float64
    """
    try:
        arr = np.asarray(a)
    except ValueError as exc:  # ragged nested sequences
        raise ValueError(f"{name} could not be converted to a numeric array: {exc}") from exc
    # bool, signed/unsigned integers and real floats only: object arrays, strings and
    # complex numbers have no meaningful correlation.
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be an array of real numbers; got dtype {arr.dtype}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); expected at least one frame")
    return arr.astype(np.float64, copy=False)


def _as_stimulus_layout(
    y_true: ArrayLike, y_pred: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64], bool]:
    """Bring recorded and predicted responses to the full stimulus layout.

    Parameters
    ----------
    y_true : array-like of shape ``y_pred.shape`` or ``y_pred.shape + (n_repeats,)``
        Recorded responses: a PSTH or single trials with the repeats last.
    y_pred : array-like of shape (n_times,), (n_times, n_neurons) or \
            (n_stimuli, n_times, n_neurons)
        Predicted responses, neurons last.

    Returns
    -------
    y_true : ndarray of shape (n_stimuli, n_times, n_neurons, n_repeats)
        ``n_repeats`` is 1 when the input had no repeats axis.
    y_pred : ndarray of shape (n_stimuli, n_times, n_neurons)
    has_repeats : bool
        Whether ``y_true`` was given with a repeats axis.
    """
    y_true = _as_float(y_true, "y_true")
    y_pred = _as_float(y_pred, "y_pred")
    if y_pred.ndim not in (1, 2, 3):
        raise ValueError(
            f"y_pred must have shape (n_times,), (n_times, n_neurons) or "
            f"(n_stimuli, n_times, n_neurons); got shape {y_pred.shape}"
        )
    if y_true.shape == y_pred.shape:
        has_repeats = False
        y_true = y_true[..., np.newaxis]
    elif y_true.ndim == y_pred.ndim + 1 and y_true.shape[:-1] == y_pred.shape:
        has_repeats = True
    else:
        raise ValueError(
            f"y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}; expected "
            f"y_true to have y_pred's shape {y_pred.shape} (a PSTH) or y_pred's shape "
            f"followed by a repeats axis {y_pred.shape + ('n_repeats',)}"
        )
    # Missing leading axes: one stimulus (continuous recording) and/or one neuron.
    if y_pred.ndim == 1:
        y_pred = y_pred[:, np.newaxis]
        y_true = y_true[:, np.newaxis, :]
    if y_pred.ndim == 2:
        y_pred = y_pred[np.newaxis]
        y_true = y_true[np.newaxis]
    _check_some_response(y_true)
    return y_true, y_pred, has_repeats


def _check_some_response(y_true: NDArray[np.float64]) -> None:
    """Refuse responses with no recorded value at all, naming what was passed (an all-NaN
    array is padding or missing repeats everywhere: nothing can be scored, and the
    undefined-score warnings would blame constant predictions or single repeats)."""
    if y_true.size and not np.isfinite(y_true).any():
        raise ValueError(
            f"y_true of shape {y_true.shape} holds no recorded response: every value is NaN "
            "(padding frames and missing repeats are NaN); pass the responses of the scored "
            "stimuli, with their recorded frames finite")


def _as_repeats_layout(y_true: ArrayLike, func_name: str) -> NDArray[np.float64]:
    """Bring single-trial responses to shape (n_stimuli, n_times, n_neurons, n_repeats).

    Parameters
    ----------
    y_true : array-like of shape (n_times, n_neurons, n_repeats) or \
            (n_stimuli, n_times, n_neurons, n_repeats)
        Recorded responses with the repeats last.
    func_name : str
        Public function name used in the error message.

    Returns
    -------
    y_true : ndarray of shape (n_stimuli, n_times, n_neurons, n_repeats)
    """
    y_true = _as_float(y_true, "y_true")
    if y_true.ndim == 3:
        n_times, n_neurons, n_repeats = y_true.shape
        if n_times < max(n_neurons, n_repeats):
            # (n_stimuli, n_times, n_neurons) PSTHs are the usual mix-up: few "frames".
            warnings.warn(
                f"{func_name} reads y_true of shape {y_true.shape} as one stimulus of "
                f"(n_times={n_times}, n_neurons={n_neurons}, n_repeats={n_repeats}): fewer "
                "frames than neurons or repeats. If it holds several stimuli, pass single "
                "trials of shape (n_stimuli, n_times, n_neurons, n_repeats); a PSTH has no "
                "repeats to estimate the noise from.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        _check_some_response(y_true)
        return y_true[np.newaxis]
    if y_true.ndim == 4:
        _check_some_response(y_true)
        return y_true
    raise ValueError(
        f"{func_name} needs single-trial responses with a repeats axis: y_true must have shape "
        f"{_REPEATS_SHAPES}; got shape {y_true.shape} ({y_true.ndim} dimensions). "
        f"For one neuron pass shape (n_times, 1, n_repeats)."
    )


# ---------------------------------------------------------------------------
# Array math: per-stimulus repeat statistics and pooled moments
# ---------------------------------------------------------------------------


def _neuron_exponents(a: NDArray[np.float64]) -> NDArray[np.int64]:
    """Binary exponent ``e`` per neuron (axis 2) with every finite ``|a| < 2**e``.

    Parameters
    ----------
    a : ndarray of shape (n_stimuli, n_times, n_neurons) or (n_stimuli, n_times, n_neurons, n_repeats)

    Returns
    -------
    e : ndarray of int of shape (n_neurons,)
        0 for a neuron without a non-zero finite value.
    """
    axes = tuple(i for i in range(a.ndim) if i != 2)
    magnitude = np.max(np.abs(a), axis=axes, where=np.isfinite(a), initial=0.0)
    return np.frexp(magnitude)[1]


def _unit_scaled(a: NDArray[np.float64], exponent: NDArray[np.int64]) -> NDArray[np.float64]:
    """``a * 2**-exponent`` per neuron (axis 2): exact, and squares of the result cannot
    overflow or underflow, so moments of values near 1e+-150 stay finite and exact."""
    return np.ldexp(a, -exponent.reshape((-1,) + (1,) * (a.ndim - 3)))




class _RepeatStats(NamedTuple):
    """Per-stimulus summaries of single-trial responses (all padding excluded)."""

    valid: NDArray[np.bool_]  # (S, T, N): at least one repeat is finite
    present: NDArray[np.bool_]  # (S, N, R): the repeat was recorded for that stimulus
    psth: NDArray[np.float64]  # (S, T, N): mean over present repeats, 0 at invalid frames
    n_frames: NDArray[np.int64]  # (S, N): valid frames per stimulus
    n_repeats: NDArray[np.int64]  # (S, N): present repeats per stimulus
    psth_var: NDArray[np.float64]  # (S, N): var over valid frames of the PSTH (ddof=0)
    repeat_var: NDArray[np.float64]  # (S, N): mean over present repeats of their var (ddof=0)
    # Per repeat (S, N, R), over the valid frames, 0 for a missing repeat: what the
    # leave-one-repeat-out signal power needs (:class:`_SpreadSums`).
    trial_mean: NDArray[np.float64]  # mean of the repeat
    trial_var: NDArray[np.float64]  # its variance (ddof=0)
    trial_cov: NDArray[np.float64]  # its covariance with the PSTH (ddof=0)


def _repeat_stats(y_true: NDArray[np.float64]) -> _RepeatStats:
    """Validate single-trial responses and summarise them per stimulus and neuron.

    Parameters
    ----------
    y_true : ndarray of shape (n_stimuli, n_times, n_neurons, n_repeats)
        NaN marks padding frames (all repeats NaN) and missing repeats (NaN over the
        whole stimulus).

    Returns
    -------
    stats : _RepeatStats
        Masks, PSTH and per-stimulus variances; see the class for shapes.
    """
    if np.isinf(y_true).any():
        raise ValueError(
            f"y_true has {np.count_nonzero(np.isinf(y_true))} infinite values; "
            "expected finite values, with NaN only for padding frames and missing repeats"
        )
    missing = np.isnan(y_true)
    valid = ~missing.all(axis=3)
    present = ~missing.all(axis=1)
    n_holes = np.count_nonzero(missing & valid[..., np.newaxis] & present[:, np.newaxis])
    if n_holes:
        raise ValueError(
            f"y_true has {n_holes} NaN values inside recorded repeats; expected each repeat "
            "to be either NaN for the whole stimulus (a missing repeat) or finite at every "
            "frame where another repeat is finite (NaN only for end padding)"
        )
    n_frames = valid.sum(axis=1)
    n_repeats = present.sum(axis=2)
    work = np.where(missing, 0.0, y_true)
    with np.errstate(divide="ignore", invalid="ignore"):
        psth = np.where(valid, work.sum(axis=3) / n_repeats[:, np.newaxis, :], 0.0)
        psth_mean = psth.sum(axis=1) / n_frames
        dev = np.where(valid, psth - psth_mean[:, np.newaxis, :], 0.0)
        psth_var = np.einsum("stn,stn->sn", dev, dev) / n_frames
        # Two-pass variance of each repeat, reusing ``work`` to keep one 4-D temporary.
        trial_mean = work.sum(axis=1) / n_frames[..., np.newaxis]
        work -= trial_mean[:, np.newaxis]
        np.copyto(work, 0.0, where=missing)
        trial_var = np.einsum("stnr,stnr->snr", work, work) / n_frames[..., np.newaxis]
        trial_cov = np.einsum("stnr,stn->snr", work, dev) / n_frames[..., np.newaxis]
        trial_mean, trial_var, trial_cov = (np.nan_to_num(a, nan=0.0) for a in (trial_mean, trial_var, trial_cov))
        repeat_var = trial_var.sum(axis=2) / n_repeats
    return _RepeatStats(valid, present, psth, n_frames, n_repeats, psth_var, repeat_var,
                        trial_mean, trial_var, trial_cov)


def _check_pred(y_pred: NDArray[np.float64], valid: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Check predictions are finite at valid frames and zero them elsewhere.

    Parameters
    ----------
    y_pred : ndarray of shape (n_stimuli, n_times, n_neurons)
    valid : ndarray of shape (n_stimuli, n_times, n_neurons), dtype bool

    Returns
    -------
    y_pred : ndarray of shape (n_stimuli, n_times, n_neurons)
        A copy with 0 at invalid frames.
    """
    n_bad = np.count_nonzero(valid & ~np.isfinite(y_pred))
    if n_bad:
        raise ValueError(
            f"y_pred has {n_bad} non-finite values at frames where y_true is valid; "
            "expected finite predictions wherever at least one repeat is recorded"
        )
    return np.where(valid, y_pred, 0.0)


def _noise_sums(stats: _RepeatStats) -> NDArray[np.float64]:
    """Sums over stimuli of the noise terms of the signal power (:meth:`ScoreSums.powers`), shape (3, n_neurons):
    the frame weights, the weighted PSTH noise and the weighted repeat noise. Additive over
    sets of stimuli (data that arrive in chunks, :mod:`skstrf._chunked`)."""
    r = stats.n_repeats
    usable = r >= 2
    weight = np.where(usable, stats.n_frames, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        psth_noise_s = np.where(usable, (stats.repeat_var - stats.psth_var) / (r - 1), 0.0)
    return np.stack([weight.sum(axis=0), (weight * psth_noise_s).sum(axis=0),
                     (weight * psth_noise_s * r).sum(axis=0)])


def _signal_from_noise_sums(
    pooled_var: NDArray[np.float64], sums: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Signal and total power from the pooled PSTH variance and :func:`_noise_sums`."""
    w_sum, psth_noise_sum, repeat_noise_sum = sums
    with np.errstate(divide="ignore", invalid="ignore"):
        psth_noise = psth_noise_sum / w_sum
        repeat_noise = repeat_noise_sum / w_sum
        signal = pooled_var - psth_noise
    return signal, signal + repeat_noise


@dataclass(frozen=True)
class _SpreadSums:
    """Sums over stimuli from which the null standard error of the signal power follows (in
    the units of :class:`ScoreSums`), additive over sets of stimuli once centred on the same
    mean (:meth:`recentred`), like the rest of :class:`ScoreSums`.

    Stimuli with three or more repeats: the trials are the independent units (the premise of
    the noise correction itself). Leaving out repeat ``j`` of stimulus ``s`` changes the
    pooled signal power by ``D_sj = T_s / N * (e_sj + 2 (m_s - mu) d_sj) - T_s / N_u * f_sj``
    to first order (``e``, ``d``, ``f``: the changes of the stimulus's PSTH variance, PSTH
    mean ``m_s`` and PSTH noise; ``N``, ``N_u`` the frames and the noise weights, ``mu`` the
    pooled mean). The delete-one-repeat jackknife sums ``(R_s - 1) / R_s * sum_j (D_sj -
    mean_j D_sj)**2``. Without a signal, the signal power is a degenerate U-statistic of the
    repeats, for which that sum is ``2 (R_s - 1) / (R_s - 2)`` times its variance: the sums
    use ``k_s = (R_s - 2) / (2 R_s)`` and give the variance under the null of the reliability
    test, unbiased there, with no model of the frames (correlated frames, sparse spikes).

    Stimuli with two repeats have no jackknife: their signal power is the covariance of the
    two repeats, whose null variance is ``sum_k gamma(k)**2 / T_s`` for a noise of
    autocovariance ``gamma``; that is estimated from the difference of the two repeats (the
    signal cancels in it), over lags up to :data:`_MAX_LAG` frames.

    Fields (shape (..., n_neurons)): ``ee``, ``ef``, ``ff``: ``sum_s k_s T_s**2 sum_j`` of
    the products of the centred ``e`` and ``f``; ``dd[i]``, ``ed[i]``, ``fd[i]``: the same
    for ``d d``, ``e d``, ``f d``, times ``(m_s - ref)**i`` with ``ref`` the sums' pooled
    mean; ``pair``: ``sum_s T_s**2`` times the null variance, over stimuli with two repeats;
    ``dof``: ``sum_s c_s**2 / nu_s`` of each stimulus's share ``c_s`` of the variance and its
    degrees of freedom ``nu_s`` (``R_s - 1``; the independent frames for two repeats), for
    Satterthwaite's degrees of freedom; ``bias``: ``sum_s T_s**i v_s`` (i = 1, 2) of the
    variance ``v_s`` of each stimulus's mean rate, which the pooled signal power counts as
    signal.
    """

    ee: NDArray[np.float64]
    ef: NDArray[np.float64]
    ff: NDArray[np.float64]
    dd: NDArray[np.float64]
    ed: NDArray[np.float64]
    fd: NDArray[np.float64]
    pair: NDArray[np.float64]
    dof: NDArray[np.float64]
    bias: NDArray[np.float64]

    #: Power of the responses' unit in each field (for a change of units by 2**k).
    _POWERS = {"ee": 4, "ef": 4, "ff": 4, "dd": (2, 3, 4), "ed": (3, 4), "fd": (3, 4),
               "pair": 4, "dof": 8, "bias": (2, 2)}

    @classmethod
    def of(cls, y_true: NDArray[np.float64], stats: _RepeatStats, ref: NDArray[np.float64]) -> "_SpreadSums":
        """The sums of one set of stimuli.

        Parameters
        ----------
        y_true : ndarray of shape (n_stimuli, n_times, n_neurons, n_repeats)
            The responses summarised by ``stats``.
        stats : _RepeatStats
        ref : ndarray of shape (n_neurons,)
            The mean the sums are centred on.
        """
        r = stats.n_repeats.astype(np.float64)  # (S, N)
        t = stats.n_frames.astype(np.float64)
        present = stats.present
        mean, var_p, tp = stats.trial_mean, stats.psth_var, stats.repeat_var
        jackknife = (r >= 3)[..., np.newaxis] & present
        with np.errstate(divide="ignore", invalid="ignore"):
            m = np.where(present, mean, 0.0).sum(axis=2) / r  # the PSTH's mean per stimulus
            rr = r[..., np.newaxis]
            var_loo = (rr**2 * var_p[..., np.newaxis] - 2.0 * rr * stats.trial_cov + stats.trial_var) / (rr - 1) ** 2
            tp_loo = (rr * tp[..., np.newaxis] - stats.trial_var) / (rr - 1)
            e = np.where(jackknife, var_loo - var_p[..., np.newaxis], 0.0)
            f = np.where(jackknife, (tp_loo - var_loo) / (rr - 2) - ((tp - var_p) / (r - 1))[..., np.newaxis], 0.0)
            d = np.where(jackknife, (m[..., np.newaxis] - mean) / (rr - 1), 0.0)  # sums to 0 over j
            e = np.where(jackknife, e - (e.sum(axis=2) / r)[..., np.newaxis], 0.0)
            f = np.where(jackknife, f - (f.sum(axis=2) / r)[..., np.newaxis], 0.0)
            k = np.where(r >= 3, (r - 2) / (2.0 * r) * t**2, 0.0)
            dm = np.where(r >= 3, m - ref, 0.0)
            mean_var = np.where(r >= 2, np.where(present, (mean - m[..., np.newaxis]) ** 2, 0.0).sum(axis=2)
                                / (r * (r - 1)), 0.0)
        share = k * np.einsum("snr,snr->sn", e - f, e - f)
        pair, frames = _two_repeat_null_variance(y_true, stats)
        pair = t**2 * pair
        with np.errstate(divide="ignore", invalid="ignore"):
            dof = np.where(r >= 3, share**2 / (r - 1), 0.0) + np.where(pair > 0, pair**2 / frames, 0.0)
        dd_s = k * np.einsum("snr,snr->sn", d, d)
        ed_s = k * np.einsum("snr,snr->sn", e, d)
        fd_s = k * np.einsum("snr,snr->sn", f, d)
        return cls(*(a.sum(axis=0) for a in (
            k * np.einsum("snr,snr->sn", e, e), k * np.einsum("snr,snr->sn", e, f), k * np.einsum("snr,snr->sn", f, f),
            np.stack([dd_s, dd_s * dm, dd_s * dm**2], axis=1), np.stack([ed_s, ed_s * dm], axis=1),
            np.stack([fd_s, fd_s * dm], axis=1), pair, dof, np.stack([t * mean_var, t**2 * mean_var], axis=1))))

    def recentred(self, shift: NDArray[np.float64]) -> "_SpreadSums":
        """These sums centred on ``ref - shift`` instead of ``ref``: ``m - (ref - shift) = (m - ref) + shift``."""
        dd, ed, fd = self.dd, self.ed, self.fd
        return _SpreadSums(self.ee, self.ef, self.ff,
                           np.stack([dd[0], dd[1] + shift * dd[0], dd[2] + 2.0 * shift * dd[1] + shift**2 * dd[0]]),
                           np.stack([ed[0], ed[1] + shift * ed[0]]), np.stack([fd[0], fd[1] + shift * fd[0]]),
                           self.pair, self.dof, self.bias)

    def __add__(self, other: "_SpreadSums") -> "_SpreadSums":
        return _SpreadSums(*(getattr(self, f) + getattr(other, f) for f in self._POWERS))

    def scaled(self, shift: NDArray[np.int64] | int) -> "_SpreadSums":
        """These sums with every response multiplied by ``2**shift`` (per neuron; exact)."""
        def one(name):
            power = np.asarray(self._POWERS[name])
            return np.ldexp(getattr(self, name), (power[..., np.newaxis] if power.ndim else power) * shift)
        return _SpreadSums(*(one(f) for f in self._POWERS))

    def null_variance(self, count: NDArray[np.float64], noise_weight: NDArray[np.float64]) -> NDArray[np.float64]:
        """Variance of the signal power under the null (no signal), given the frames ``count``
        and the noise weights ``noise_weight`` (:func:`_noise_sums`); the sums must be centred
        on the pooled mean."""
        n, nu = count, noise_weight
        with np.errstate(divide="ignore", invalid="ignore"):
            jackknife = ((self.ee + 4.0 * self.ed[1] + 4.0 * self.dd[2]) / n**2
                         - 2.0 * (self.ef + 2.0 * self.fd[1]) / (n * nu) + self.ff / nu**2)
            return np.maximum(jackknife, 0.0) + self.pair / nu**2

    def degrees_of_freedom(self) -> NDArray[np.float64]:
        """Satterthwaite's degrees of freedom of :meth:`null_variance`, at least 1 (also where
        no stimulus varies within itself)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            dof = (self.ee - 2.0 * self.ef + self.ff + self.pair) ** 2 / self.dof
        return np.where(dof >= 1, dof, 1.0)

    def mean_noise(self, count: NDArray[np.float64]) -> NDArray[np.float64]:
        """Expected excess of the pooled signal power from the noise of the stimuli's mean
        rates: ``sum_s w_s (1 - w_s) var(m_s)`` with ``w_s = T_s / N``."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.bias[0] / count - self.bias[1] / count**2


#: Longest lag (frames) of the noise correlation for stimuli with two repeats (80 ms at 5 ms).
_MAX_LAG = 16


def _two_repeat_null_variance(
    y_true: NDArray[np.float64], stats: _RepeatStats
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Null variance of the signal power of each stimulus with exactly two repeats.

    That signal power is the covariance ``c`` over the frames of the two repeats; for two
    independent noise trials of autocovariance ``gamma``, ``var(c) = sum_k (1 - |k| / T)
    gamma(k)**2 / T``. Their difference holds no signal and has autocovariance ``2 gamma``;
    its sample autocorrelations, less their ``1 / T`` chance level, estimate the correlation
    of the noise over up to :data:`_MAX_LAG` frames.

    Returns
    -------
    variance : ndarray of shape (n_stimuli, n_neurons)
        0 for the other stimuli.
    frames : ndarray of shape (n_stimuli, n_neurons)
        Effective number of independent frames (degrees of freedom of the estimate), at least 1.
    """
    two = stats.n_repeats == 2
    shape = stats.n_repeats.shape
    if not two.any():
        return np.zeros(shape), np.ones(shape)
    # +1 for the first recorded repeat, -1 for the second, 0 elsewhere (and for other stimuli).
    rank = np.cumsum(stats.present, axis=2)
    sign = np.where(stats.present & two[..., np.newaxis], np.where(rank == 1, 1.0, -1.0), 0.0)
    diff = np.einsum("stnr,snr->stn", np.where(np.isnan(y_true), 0.0, y_true), sign)
    valid = stats.valid & two[:, np.newaxis]
    t = stats.n_frames.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = np.where(valid, diff - (diff.sum(axis=1) / t)[:, np.newaxis], 0.0)
        gamma0 = np.einsum("stn,stn->sn", diff, diff) / t
        factor = np.ones(shape)
        for lag in range(1, min(_MAX_LAG, y_true.shape[1] - 1) + 1):
            rho = np.einsum("stn,stn->sn", diff[:, lag:], diff[:, :-lag]) / t / gamma0
            factor += 2.0 * np.clip(1.0 - lag / t, 0.0, None) * np.maximum(rho**2 - 1.0 / t, 0.0)
        variance = np.where(two, np.nan_to_num((gamma0 / 2.0) ** 2 * factor / t), 0.0)
    return variance, np.maximum(np.nan_to_num(t / factor, nan=1.0), 1.0)


def _hsu_split_masks(
    present: NDArray[np.bool_], n_splits: int, rng: np.random.RandomState
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Draw random halvings of the present repeats of every stimulus and neuron.

    Parameters
    ----------
    present : ndarray of shape (n_stimuli, n_neurons, n_repeats), dtype bool
    n_splits : int
    rng : numpy.random.RandomState

    Returns
    -------
    in_a, in_b : ndarray of shape (n_splits, n_stimuli, n_neurons, n_repeats), dtype bool
        Disjoint halves of the present repeats: ``floor(R / 2)`` repeats in ``in_a`` and the
        other ``R - floor(R / 2)`` in ``in_b``.
    """
    keys = rng.random_sample((n_splits,) + present.shape)
    # Missing repeats sort last, so the first R ranks are a random order of the present ones.
    keys[:, ~present] = np.inf
    rank = np.argsort(np.argsort(keys, axis=-1), axis=-1)
    half = (present.sum(axis=-1) // 2)[..., np.newaxis]
    return rank < half, (rank >= half) & present


def _split_half_correlation(
    y_true: NDArray[np.float64],
    stats: _RepeatStats,
    n_splits: int,
    random_state: int | np.random.RandomState | None,
) -> NDArray[np.float64]:
    """Mean correlation between the PSTHs of two random halves of the repeats.

    Parameters
    ----------
    y_true : ndarray of shape (n_stimuli, n_times, n_neurons, n_repeats)
    stats : _RepeatStats
        Summaries of ``y_true``.
    n_splits : int
    random_state : int, RandomState instance or None

    Returns
    -------
    rho : ndarray of shape (n_neurons,)
        Average over splits of the Pearson correlation between the half PSTHs, pooled over
        the valid frames of the stimuli with at least two repeats; NaN where undefined.
    """
    in_a, in_b = _hsu_split_masks(stats.present, n_splits, check_random_state(random_state))
    usable = stats.n_repeats >= 2
    frames = stats.valid & usable[:, np.newaxis, :]
    entries = frames[..., np.newaxis] & stats.present[:, np.newaxis]
    count = frames.sum(axis=(0, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        center = np.where(frames, stats.psth, 0.0).sum(axis=(0, 1)) / count
    # A half PSTH is a weighted sum of repeats with weights summing to 1, so its sums and
    # cross-products over frames follow from each stimulus' repeat Gram matrix: every split
    # then costs O(R^2) per stimulus and neuron instead of a pass over the frames. Centring
    # on the neuron's mean keeps the moment formulas free of cancellation.
    centred = np.subtract(
        y_true, center[:, np.newaxis], out=np.zeros_like(y_true), where=entries
    )
    # Exact test: with constant repeats every half PSTH is constant and rho is undefined.
    hi = np.max(y_true, axis=(0, 1, 3), where=entries, initial=-np.inf)
    lo = np.min(y_true, axis=(0, 1, 3), where=entries, initial=np.inf)
    constant = ~(hi > lo)
    by_repeat = centred.transpose(0, 2, 3, 1)  # (S, N, R, T): a batched matmul is BLAS
    gram = by_repeat @ by_repeat.transpose(0, 1, 3, 2)
    col_sum = centred.sum(axis=1)  # (S, N, R)
    n_rep = stats.n_repeats
    half = n_rep // 2
    with np.errstate(divide="ignore", invalid="ignore"):
        size_a = np.where(usable, 1.0 / half, 0.0)[..., np.newaxis, np.newaxis]
        size_b = np.where(usable, 1.0 / (n_rep - half), 0.0)[..., np.newaxis, np.newaxis]
    # Weights of each repeat in each half PSTH, splits last: (S, N, R, K).
    w_a = np.moveaxis(in_a, 0, -1) * size_a
    w_b = np.moveaxis(in_b, 0, -1) * size_b
    gram_w = gram @ np.concatenate([w_a, w_b], axis=-1)  # (S, N, R, 2K)
    gram_wa, gram_wb = gram_w[..., :n_splits], gram_w[..., n_splits:]
    # Pool over stimuli: frame sums and cross-products of the two half PSTHs, (N, K) each.
    sum_a = np.einsum("snr,snrk->nk", col_sum, w_a)
    sum_b = np.einsum("snr,snrk->nk", col_sum, w_b)
    sum_aa = np.einsum("snrk,snrk->nk", w_a, gram_wa)
    sum_bb = np.einsum("snrk,snrk->nk", w_b, gram_wb)
    sum_ab = np.einsum("snrk,snrk->nk", w_a, gram_wb)
    with np.errstate(divide="ignore", invalid="ignore"):
        n = count[:, np.newaxis]
        var_a = sum_aa / n - (sum_a / n) ** 2
        var_b = sum_bb / n - (sum_b / n) ** 2
        cov = sum_ab / n - (sum_a / n) * (sum_b / n)
        rho_k = np.where((var_a > 0) & (var_b > 0), cov / np.sqrt(var_a * var_b), np.nan)
    n_defined = np.count_nonzero(~np.isnan(rho_k), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.nan_to_num(rho_k, nan=0.0).sum(axis=1) / n_defined
    rho[constant | (n_defined == 0)] = np.nan
    return rho


def _ceiling_from_rho(rho: NDArray[np.float64]) -> NDArray[np.float64]:
    """Spearman-Brown corrected ceiling ``sqrt(2 rho / (1 + rho))``; NaN where rho <= 0."""
    out = np.full_like(rho, np.nan)
    ok = rho > 0
    out[ok] = np.sqrt(2.0 * rho[ok] / (1.0 + rho[ok]))
    return out


def _check_multioutput(multioutput: object) -> None:
    """Check ``multioutput`` is one of the names or an array-like of weights (its length is
    checked by :func:`_aggregate`, once the number of neurons is known)."""
    if isinstance(multioutput, str) or np.ndim(multioutput) != 1:
        if not (isinstance(multioutput, str) and multioutput in _MULTIOUTPUT):
            raise ValueError(f"multioutput must be one of {list(_MULTIOUTPUT)} or an array of non-negative "
                             f"weights, one per neuron; got {multioutput!r}")


def _aggregate(scores: NDArray[np.float64], multioutput: str | ArrayLike) -> float | NDArray[np.float64]:
    """Return per-neuron scores, their NaN-ignoring mean (NaN when all are NaN), or their
    mean weighted by ``multioutput`` (weights of the NaN scores left out)."""
    if isinstance(multioutput, str):
        if multioutput == "raw_values":
            return scores
        defined = ~np.isnan(scores)
        if not defined.any():
            return float("nan")
        return float(scores[defined].mean())
    try:
        weights = np.asarray(multioutput, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"multioutput weights must be real numbers, one per neuron: {exc}") from exc
    if weights.shape != scores.shape:
        raise ValueError(f"multioutput has {weights.size} weights but there are {scores.size} neurons; "
                         "pass one weight per neuron")
    if not np.isfinite(weights).all() or (weights < 0).any():
        raise ValueError("multioutput weights must be finite and non-negative; got "
                         f"{weights[~(np.isfinite(weights) & (weights >= 0))][:5]}")
    used = ~np.isnan(scores) & (weights > 0)
    if not used.any():
        return float("nan")
    return float(np.sum(weights[used] * scores[used]) / np.sum(weights[used]))


class UnreliableNeuronWarning(UserWarning):
    """Some neurons' cc_norm rests on a signal power not distinguishable from zero.

    Emitted by :func:`cc_norm`, :func:`cc_norm_from_sums` and the scorers (hence by
    :meth:`skstrf.STRFRegressor.score`). The text does not change from call to call, and the
    warning is shown once per line of the user's code, as Python shows warnings by default,
    also inside :class:`~sklearn.model_selection.GridSearchCV` and
    :func:`~sklearn.model_selection.cross_validate` (which reset Python's record of the
    warnings shown for every fit). ``warnings.simplefilter("always",
    UnreliableNeuronWarning)`` shows every call's.

    Attributes
    ----------
    n_unreliable : int
        Number of neurons flagged in the call that emitted it.
    n_neurons : int
        Number of neurons scored in that call.
    neurons : ndarray of int
        Their indices.
    """

    def __init__(self, message: str, *, n_unreliable: int = 0, n_neurons: int = 0,
                 neurons: NDArray[np.int64] | None = None) -> None:
        super().__init__(message)
        self.n_unreliable = n_unreliable
        self.n_neurons = n_neurons
        self.neurons = np.zeros(0, dtype=np.int64) if neurons is None else neurons


def _warn_unreliable(flagged: NDArray[np.bool_], option: str) -> None:
    """The :class:`UnreliableNeuronWarning` of one call (``flagged``: the neurons, (n_neurons,))."""
    if option == "ignore" or not flagged.any():
        return
    what = ("they are left out (NaN); pass unreliable='warn' to keep their scores"
            if option == "exclude" else "their scores are kept; pass unreliable='exclude' to leave them out")
    warn_once_per_line(UnreliableNeuronWarning(
        "cc_norm: the signal power of some neurons is not distinguishable from zero (one-sided "
        f"test at level {RELIABILITY_ALPHA}, about 2 standard errors; see "
        "skstrf.metrics.signal_power_reliability), so their cc_norm is unreliable and can be far "
        f"above 1: {what}, or 'ignore'. The warning's n_unreliable and neurons attributes say "
        "which; it is shown once per line of code.",
        n_unreliable=int(flagged.sum()), n_neurons=int(flagged.size), neurons=np.flatnonzero(flagged)))


def _warn_undefined(n_undefined: int, n_neurons: int, what: str, reason: str) -> None:
    """Emit one UndefinedMetricWarning for the neurons whose score is NaN."""
    if n_undefined:
        warnings.warn(
            f"{what} is undefined for {n_undefined} of {n_neurons} neurons ({reason}); "
            "their score is NaN",
            UndefinedMetricWarning,
            stacklevel=user_stacklevel(),
        )


# ---------------------------------------------------------------------------
# Public metrics
# ---------------------------------------------------------------------------


def cc(
    y_true: ArrayLike, y_pred: ArrayLike, *, multioutput: str = "uniform_average"
) -> float | NDArray[np.float64]:
    """Pearson correlation between predicted responses and the PSTH, per neuron.

    The PSTH is the mean over the recorded repeats. The correlation pools all valid frames
    of all stimuli (a frame is valid for a neuron when at least one repeat is finite there),
    so NaN end padding of shorter stimuli and missing repeats are ignored.

    Parameters
    ----------
    y_true : array-like of shape ``y_pred.shape`` or ``y_pred.shape + (n_repeats,)``
        Recorded responses: the PSTH itself, or single trials with the repeats last, e.g.
        (n_stimuli, n_times, n_neurons, n_repeats).
    y_pred : array-like of shape (n_times,), (n_times, n_neurons) or \
            (n_stimuli, n_times, n_neurons)
        Predicted responses, neurons last. One neuron recorded over several stimuli must be
        passed as (n_stimuli, n_times, 1). Values at invalid (padding) frames are ignored.
    multioutput : {"uniform_average", "raw_values"} or array-like of shape (n_neurons,), \
            default="uniform_average"
        ``"raw_values"`` returns one score per neuron; ``"uniform_average"`` their mean,
        ignoring NaN scores; an array of non-negative weights, their weighted mean.

    Returns
    -------
    score : float or ndarray of shape (n_neurons,)
        NaN for a neuron whose prediction or PSTH is constant over its valid frames (with an
        :class:`~sklearn.exceptions.UndefinedMetricWarning`).

    See Also
    --------
    cc_norm : The correlation corrected for trial-to-trial noise.

    Examples
    --------
    >>> import numpy as np
    >>> from skstrf.metrics import cc
    >>> y_pred = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> y_true = np.array([[[0.0, 0.0]], [[1.0, 2.0]], [[1.0, 3.0]], [[4.0, 2.0]]])
    >>> round(cc(y_true, y_pred), 4)
    0.9812
    """
    _check_multioutput(multioutput)
    y_true, y_pred, _ = _as_stimulus_layout(y_true, y_pred)
    return _report_cc(ScoreSums.of(y_true, y_pred), multioutput)


def signal_power(y_true: ArrayLike) -> NDArray[np.float64]:
    """Signal power per neuron, the stimulus-locked variance (Sahani & Linden 2003).

    For stimulus ``s`` with ``R`` recorded repeats, PSTH ``p_s`` and repeats ``r_{s,j}``::

        SP_s = (R * var(p_s) - mean_j var(r_{s,j})) / (R - 1)

    with population variances (ddof=0) over the valid frames of the stimulus. ``SP_s`` is an
    unbiased estimate of the variance of the underlying noise-free response. The result is
    the average of ``SP_s`` over stimuli weighted by their number of valid frames, leaving
    out stimuli with fewer than two repeats for that neuron.

    Parameters
    ----------
    y_true : array-like of shape (n_stimuli, n_times, n_neurons, n_repeats) or \
            (n_times, n_neurons, n_repeats)
        Single-trial responses. NaN marks end padding (all repeats NaN) and missing repeats
        (NaN over a whole stimulus). One neuron is passed as (n_times, 1, n_repeats).

    Returns
    -------
    signal_power : ndarray of shape (n_neurons,)
        NaN for a neuron with no stimulus having two or more repeats. Can be negative for a
        very noisy neuron (the estimate is unbiased, not constrained).

    See Also
    --------
    noise_power : The trial-to-trial variance.
    noise_ceiling : The best correlation a model can reach.
    """
    return ScoreSums.of(_as_repeats_layout(y_true, "signal_power")).powers()[0]


def noise_power(y_true: ArrayLike) -> NDArray[np.float64]:
    """Noise power per neuron: the total power minus the signal power.

    The total power is the average over stimuli (weighted by valid frames, stimuli with
    fewer than two repeats left out, as in :func:`signal_power`) of ``mean_j var(r_{s,j})``,
    the mean variance of a single repeat.

    Parameters
    ----------
    y_true : array-like of shape (n_stimuli, n_times, n_neurons, n_repeats) or \
            (n_times, n_neurons, n_repeats)
        Single-trial responses; NaN marks end padding and missing repeats.

    Returns
    -------
    noise_power : ndarray of shape (n_neurons,)
        NaN for a neuron with no stimulus having two or more repeats.

    See Also
    --------
    signal_power : The stimulus-locked variance.
    """
    signal, total = ScoreSums.of(_as_repeats_layout(y_true, "noise_power")).powers()
    return total - signal


def noise_ceiling(
    y_true: ArrayLike,
    *,
    method: str = "schoppe",
    n_splits: int = _DEFAULT_N_SPLITS,
    random_state: int | np.random.RandomState | None = 0,
) -> NDArray[np.float64]:
    """Maximum correlation a perfect model could reach given the trial-to-trial noise.

    ``"schoppe"``: ``CCmax = sqrt(SP / var(p))``, the signal power over the variance of the
    PSTH pooled over all valid frames (Schoppe et al. 2016).

    ``"hsu"``: ``CCmax = sqrt(2 rho / (1 + rho))`` where ``rho`` is the correlation between
    the PSTHs of two random halves of the repeats, averaged over ``n_splits`` halvings
    (Hsu, Borst & Theunissen 2004). For each stimulus and neuron the recorded repeats are
    shuffled and split into ``floor(R / 2)`` and the rest; the correlation pools the valid
    frames of the stimuli that have at least two repeats for that neuron.

    Parameters
    ----------
    y_true : array-like of shape (n_stimuli, n_times, n_neurons, n_repeats) or \
            (n_times, n_neurons, n_repeats)
        Single-trial responses; NaN marks end padding and missing repeats.
    method : {"schoppe", "hsu"}, default="schoppe"
        Estimator of the ceiling: from the signal power, or from split halves of the repeats.
    n_splits : int, default=100
        Number of random halvings (``"hsu"`` only).
    random_state : int, RandomState instance or None, default=0
        Seed of the halvings (``"hsu"`` only); an int gives the same result on every call.

    Returns
    -------
    ccmax : ndarray of shape (n_neurons,)
        NaN where the signal power (``"schoppe"``) or ``rho`` (``"hsu"``) is not positive,
        or where the neuron has no stimulus with two or more repeats.

    See Also
    --------
    cc_norm : ``cc`` divided by this ceiling.
    """
    _check_option(method, "method", _CC_NORM_METHODS)
    n_splits = _check_n_splits(n_splits)
    y_true = _as_repeats_layout(y_true, "noise_ceiling")
    y_true = _unit_scaled(y_true, _neuron_exponents(y_true))  # the ceiling has no units
    stats = _repeat_stats(y_true)
    if method == "hsu":
        return _ceiling_from_rho(_split_half_correlation(y_true, stats, n_splits, random_state))
    sums = ScoreSums.of(y_true)
    signal = np.ldexp(sums.powers()[0], -2 * sums.exponent_p)  # in the sums' units
    ok = (signal > 0) & ~sums._constant()[1]
    out = np.full_like(signal, np.nan)
    out[ok] = np.sqrt(signal[ok] / (sums.m2_p[ok] / sums.count[ok]))
    return out


def _repeat_moments(y_true: NDArray[np.float64], stats: _RepeatStats) -> tuple[NDArray, NDArray]:
    """Frame means and covariances of the repeats of each stimulus and neuron.

    Parameters
    ----------
    y_true : ndarray of shape (n_stimuli, n_times, n_neurons, n_repeats)
    stats : _RepeatStats
        Summaries of ``y_true``.

    Returns
    -------
    mean : ndarray of shape (n_stimuli, n_neurons, n_repeats)
        Mean of each recorded repeat over the valid frames (0 for a missing repeat).
    cov : ndarray of shape (n_stimuli, n_neurons, n_repeats, n_repeats)
        Population covariance over the valid frames between repeats (0 for missing ones).
    """
    entries = stats.valid[..., np.newaxis] & stats.present[:, np.newaxis]
    n_frames = stats.n_frames[..., np.newaxis]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(stats.present, np.where(entries, y_true, 0.0).sum(axis=1) / n_frames, 0.0)
    centred = np.where(entries, y_true - mean[:, np.newaxis], 0.0)
    by_repeat = centred.transpose(0, 2, 3, 1)  # (S, N, R, T): a batched matmul is BLAS
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = np.nan_to_num((by_repeat @ by_repeat.transpose(0, 1, 3, 2)) / n_frames[..., np.newaxis])
    return mean, cov


def _ceiling_from_counts(counts: NDArray[np.float64], mean: NDArray[np.float64],
                         cov: NDArray[np.float64], stats: _RepeatStats) -> NDArray[np.float64]:
    """Schoppe ceiling of resampled data given how often each repeat is drawn.

    Parameters
    ----------
    counts : ndarray of shape (n_boot, n_stimuli, n_neurons, n_repeats)
        Draws of each repeat; they sum to the stimulus's number of present repeats.
    mean, cov : ndarrays
        From :func:`_repeat_moments`.
    stats : _RepeatStats

    Returns
    -------
    ceiling : ndarray of shape (n_boot, n_neurons)
        0 where the resampled signal power is not positive; NaN where the PSTH variance is 0.
    """
    r = stats.n_repeats.astype(np.float64)
    n_frames = stats.n_frames.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = counts / r[..., np.newaxis]  # weight of each repeat in the resampled PSTH
        psth_mean = np.nan_to_num(np.einsum("bsnr,snr->bsn", w, mean))
        psth_var = np.nan_to_num(np.einsum("bsnr,snrq,bsnq->bsn", w, cov, w))
        repeat_var = np.nan_to_num(np.einsum("bsnr,snrr->bsn", w, cov))
        total = n_frames.sum(axis=0)
        grand = (n_frames * psth_mean).sum(axis=1) / total
        pooled = (n_frames * (psth_var + (psth_mean - grand[:, np.newaxis]) ** 2)).sum(axis=1) / total
        usable = r >= 2
        weight = np.where(usable, n_frames, 0.0)
        noise = np.where(usable, (repeat_var - psth_var) / (r - 1), 0.0)
        signal = pooled - (weight * noise).sum(axis=1) / weight.sum(axis=0)
        ceiling = np.sqrt(np.clip(signal, 0.0, None) / pooled)
    return np.where(pooled > 0, ceiling, np.nan)


def noise_ceiling_interval(
    y_true: ArrayLike,
    *,
    confidence: float = 0.95,
    n_bootstraps: int = 1000,
    random_state: int | np.random.RandomState | None = 0,
) -> Bunch:
    """Noise ceiling with a bootstrap confidence interval over the repeats.

    The ceiling is that of :func:`noise_ceiling` (``method="schoppe"``). Each bootstrap
    draws, for every stimulus and neuron, as many repeats as were recorded, with
    replacement among the recorded ones, and recomputes the ceiling; the interval holds
    the central ``confidence`` share of those values (percentile bootstrap, Efron &
    Tibshirani 1993), shifted so that their mean is the estimate: a resample that repeats
    a trial counts that trial's noise twice, as if it were signal, so resampled ceilings
    run high by about the noise share while their spread is right. Frames are not
    resampled: the interval is about the trial noise on these stimuli. All neurons and bootstraps are computed from each stimulus's
    repeat-by-repeat covariance, without a pass over the frames per draw.

    Parameters
    ----------
    y_true : array-like of shape (n_stimuli, n_times, n_neurons, n_repeats) or \
            (n_times, n_neurons, n_repeats)
        Single-trial responses; NaN marks end padding and missing repeats.
    confidence : float, default=0.95
        Coverage of the interval, in (0, 1).
    n_bootstraps : int, default=1000
        Number of resamplings.
    random_state : int, RandomState instance or None, default=0
        Seed; an int gives the same interval on every call.

    Returns
    -------
    result : sklearn.utils.Bunch
        With the fields:

        ceiling : ndarray of shape (n_neurons,)
            :func:`noise_ceiling` of the data.
        low, high : ndarray of shape (n_neurons,)
            Interval bounds. A resampling whose signal power is not positive counts as a
            ceiling of 0. NaN for a neuron with a constant PSTH or no stimulus with two
            repeats.
        bootstraps : ndarray of shape (n_bootstraps, n_neurons)
            The resampled ceilings (before the shift).

    See Also
    --------
    noise_ceiling : The point estimate.

    Examples
    --------
    >>> import numpy as np
    >>> from skstrf.metrics import noise_ceiling_interval
    >>> rng = np.random.default_rng(0)
    >>> signal = rng.normal(size=(500, 1, 1))
    >>> result = noise_ceiling_interval(signal + rng.normal(size=(500, 1, 8)))
    >>> bool(result.low[0] < result.ceiling[0] < result.high[0])
    True
    """
    if (isinstance(confidence, bool) or not isinstance(confidence, numbers.Real)
            or not 0 < confidence < 1):
        raise ValueError(f"confidence must be a number in (0, 1); got {confidence!r}")
    if (isinstance(n_bootstraps, bool) or not isinstance(n_bootstraps, numbers.Integral)
            or n_bootstraps < 1):
        raise ValueError(f"n_bootstraps must be a positive integer; got {n_bootstraps!r}")
    y_true = _as_repeats_layout(y_true, "noise_ceiling_interval")
    y_true = _unit_scaled(y_true, _neuron_exponents(y_true))
    stats = _repeat_stats(y_true)
    ceiling = noise_ceiling(y_true)
    mean, cov = _repeat_moments(y_true, stats)
    rng = np.random.default_rng(check_random_state(random_state).randint(np.iinfo(np.int32).max))
    r = stats.n_repeats
    # Draw uniformly among the present repeats; where none is present nothing is drawn,
    # but the multinomial still needs valid probabilities.
    prob = np.where(r[..., np.newaxis] > 0, stats.present / np.maximum(r, 1)[..., np.newaxis],
                    1.0 / stats.present.shape[-1])
    # Bootstraps in chunks bound the (chunk, S, N, R) counts and their einsum temporaries.
    chunk = max(1, int(2e7 // max(1, stats.present.size * stats.present.shape[-1])))
    boots = []
    for start in range(0, n_bootstraps, chunk):
        size = min(chunk, n_bootstraps - start)
        counts = rng.multinomial(r, prob, size=(size,) + r.shape).astype(np.float64)
        boots.append(_ceiling_from_counts(counts, mean, cov, stats))
    boots = np.concatenate(boots)
    tail = 50.0 * (1.0 - confidence)
    defined = ~np.isnan(ceiling)
    low = np.full_like(ceiling, np.nan)
    high = np.full_like(ceiling, np.nan)
    if defined.any():
        kept = boots[:, defined]
        # A resample with duplicated repeats counts their shared noise as signal, which
        # raises every resampled ceiling by about the noise share: keep the spread of the
        # resamples but centre it on the (unbiased) estimate.
        shift = np.nanmean(kept, axis=0) - ceiling[defined]
        lo, hi = np.nanpercentile(kept, [tail, 100.0 - tail], axis=0)
        low[defined], high[defined] = np.maximum(lo - shift, 0.0), hi - shift
    return Bunch(ceiling=ceiling, low=low, high=high, bootstraps=boots)


def signal_power_reliability(y_true: ArrayLike, *, alpha: float = RELIABILITY_ALPHA) -> Bunch:
    """Whether each neuron's signal power is distinguishable from zero, from its repeats.

    cc_norm divides by the square root of the signal power: where that is an estimate of
    zero, the quotient means nothing (noise-only data score far above 1). The test is
    one-sided, of the null "the neuron has no stimulus-locked response": the statistic is::

        t = (SP - b) / se

    with ``SP`` the :func:`signal_power`, ``b`` its expected excess from the noise of each
    stimulus's mean rate (the pooled signal power counts the spread of the stimuli's mean
    rates as signal, noise included; ``b`` matters only for short stimuli) and ``se`` the
    standard error ``SP`` has under the null, estimated from the neuron's own trials: the
    delete-one-repeat jackknife within each stimulus (the trials are the independent units,
    as the noise correction itself assumes; correlated frames, sparse spikes and ragged
    stimuli need no model), scaled by ``(R - 2) / (2 (R - 1))``, which makes it unbiased
    under the null, where the signal power is a degenerate U-statistic of the repeats. A
    stimulus with two repeats contributes its own squared signal power instead. The
    reference is Student's t with Satterthwaite's degrees of freedom (each stimulus's share
    has ``R - 1``). A neuron is reliable when ``p_value < alpha``: with many repeats, when
    ``t`` is above about 2. On synthetic neurons (``benchmarks/reliability.py``: spiking
    and Gaussian, correlated frames, 1 to 40 stimuli of 2 to 1400 frames, 2 to 20 repeats)
    the flag fires on 96.9-97.9 % of neurons without signal and on at most 3.7 % of those
    whose signal power is 5 null standard errors above zero (``se`` estimates that
    standard error).

    Parameters
    ----------
    y_true : array-like of shape (n_stimuli, n_times, n_neurons, n_repeats) or \
            (n_times, n_neurons, n_repeats)
        Single-trial responses; NaN marks end padding and missing repeats.
    alpha : float, default=0.025
        Level of the test.

    Returns
    -------
    result : sklearn.utils.Bunch
        With the fields, each an ndarray of shape (n_neurons,):

        signal_power
            :func:`signal_power`.
        mean_noise
            ``b``, in the same units.
        standard_error
            ``se``, in the same units.
        statistic
            ``t``; +inf for a noiseless neuron with a signal, NaN without a stimulus with
            two repeats.
        dof
            Degrees of freedom of the reference distribution.
        p_value
            One-sided p-value.
        reliable
            ``p_value < alpha`` (False where the p-value is NaN).

    See Also
    --------
    cc_norm : Leaves out (or warns about) the neurons that are not reliable.
    noise_ceiling_interval : A bootstrap interval of the ceiling.

    Examples
    --------
    >>> import numpy as np
    >>> from skstrf.metrics import signal_power_reliability
    >>> rng = np.random.default_rng(0)
    >>> signal = np.stack([rng.normal(size=500), np.zeros(500)], axis=1)  # 2 neurons, 1 silent
    >>> y = signal[..., np.newaxis] + rng.normal(size=(500, 2, 10))
    >>> signal_power_reliability(y).reliable
    array([ True, False])
    """
    y_true = _as_repeats_layout(y_true, "signal_power_reliability")
    return ScoreSums.of(y_true).reliability(alpha)


def cc_norm(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    method: str = "schoppe",
    multioutput: str | ArrayLike = "uniform_average",
    unreliable: str = "warn",
) -> float | NDArray[np.float64]:
    """Noise-corrected correlation between predicted responses and the PSTH, per neuron.

    ``"schoppe"`` (Schoppe et al. 2016)::

        cc_norm = cov(pred, p) / sqrt(var(pred) * SP)

    with the covariance and variance pooled over all valid frames and ``SP`` the
    :func:`signal_power`. ``"hsu"``: ``cc / CCmax`` with the split-half ceiling of
    :func:`noise_ceiling` (100 halvings, ``random_state=0``).

    A perfect model of the noise-free response scores about 1. The estimate is unbiased,
    not bounded: on noisy data or few repeats it can exceed 1, and it is not clipped. Where
    the signal power is not distinguishable from zero (:func:`signal_power_reliability`),
    dividing by it gives values that mean nothing (a neuron with two spikes can score 5):
    such neurons are flagged, and left out by default.

    Parameters
    ----------
    y_true : array-like of shape ``y_pred.shape`` or ``y_pred.shape + (n_repeats,)``
        Recorded responses, single trials with the repeats last, e.g.
        (n_stimuli, n_times, n_neurons, n_repeats). NaN marks end padding and missing
        repeats. Without a repeats axis, or with a single repeat everywhere, the noise
        cannot be estimated: the result is :func:`cc`, with an
        :class:`~sklearn.exceptions.UndefinedMetricWarning`.
    y_pred : array-like of shape (n_times,), (n_times, n_neurons) or \
            (n_stimuli, n_times, n_neurons)
        Predicted responses, neurons last. One neuron recorded over several stimuli must be
        passed as (n_stimuli, n_times, 1). Values at padding frames are ignored.
    method : {"schoppe", "hsu"}, default="schoppe"
        Noise correction: by the signal power (Schoppe et al. 2016) or by the split-half
        ceiling (Hsu et al. 2004).
    multioutput : {"uniform_average", "raw_values"} or array-like of shape (n_neurons,), \
            default="uniform_average"
        ``"raw_values"`` returns one score per neuron; ``"uniform_average"`` their mean,
        ignoring NaN scores; an array of non-negative weights, their weighted mean (the
        weights of NaN scores left out), e.g. to weight neurons by the reliability of their
        signal power.
    unreliable : {"exclude", "warn", "ignore"}, default="warn"
        What to do with a neuron whose signal power is not distinguishable from zero (a
        one-sided test at level :data:`RELIABILITY_ALPHA`, about 2 standard errors; see
        :func:`signal_power_reliability`): ``"warn"`` keeps its score, with an
        :class:`UnreliableNeuronWarning` that names how many; ``"exclude"`` gives it NaN,
        left out of the mean, with the warning; ``"ignore"`` keeps it silently (the
        behaviour before the flag existed).
        Not used when the noise cannot be estimated (the :func:`cc` fallback).

    Returns
    -------
    score : float or ndarray of shape (n_neurons,)
        NaN (with an :class:`~sklearn.exceptions.UndefinedMetricWarning`) for a neuron whose
        signal power or split-half correlation is not positive, that has no stimulus with
        two or more repeats, or whose prediction is constant; NaN too for a neuron flagged
        unreliable, with ``unreliable="exclude"``.

    See Also
    --------
    cc : The uncorrected correlation.
    noise_ceiling : The ceiling ``cc / cc_norm``.
    signal_power_reliability : Which neurons' signal power is distinguishable from zero.

    Examples
    --------
    >>> import numpy as np
    >>> from skstrf.metrics import cc_norm
    >>> rng = np.random.default_rng(0)
    >>> signal = rng.normal(size=(2000, 1))
    >>> y_true = signal[..., np.newaxis] + rng.normal(size=(2000, 1, 10))
    >>> round(cc_norm(y_true, signal), 1)
    1.0
    """
    _check_option(method, "method", _CC_NORM_METHODS)
    _check_multioutput(multioutput)
    _check_option(unreliable, "unreliable", _UNRELIABLE)
    y_true, y_pred, has_repeats = _as_stimulus_layout(y_true, y_pred)
    if method == "schoppe" or not has_repeats:
        if not has_repeats:
            _warn_no_noise_estimate("y_true has no repeats axis")
            return _report_cc(ScoreSums.of(y_true, y_pred), multioutput)
        return cc_norm_from_sums(ScoreSums.of(y_true, y_pred), multioutput, unreliable=unreliable)
    sums = ScoreSums.of(y_true, y_pred)
    if sums.max_repeats < 2:
        _warn_no_noise_estimate("y_true has a single recorded repeat of every stimulus for every neuron")
        return _report_cc(sums, multioutput)
    r, pred_undefined = sums.correlation()
    y_true = _unit_scaled(y_true, _neuron_exponents(y_true))  # the ceiling has no units
    ccmax = _ceiling_from_rho(
        _split_half_correlation(y_true, _repeat_stats(y_true), _DEFAULT_N_SPLITS, random_state=0)
    )
    scores = r / ccmax
    noise_undefined = np.isnan(ccmax) & ~pred_undefined
    return _report_cc_norm(scores, noise_undefined, pred_undefined, method, multioutput,
                           sums._reliable(), unreliable)


def _warn_no_noise_estimate(found: str) -> None:
    """The warning of :func:`cc_norm` when it falls back to :func:`cc` (``found`` says why)."""
    warnings.warn(
        f"cc_norm needs at least two repeats of a stimulus to estimate the noise, but "
        f"{found}; cc_norm falls back to the uncorrected cc",
        UndefinedMetricWarning,
        stacklevel=user_stacklevel(),
    )


def _schoppe_scores(
    var_pred: NDArray[np.float64], cov: NDArray[np.float64], signal: NDArray[np.float64],
    pred_undefined: NDArray[np.bool_],
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """cc_norm (Schoppe et al. 2016) from the pooled moments and the signal power; and
    which neurons have no usable signal power."""
    noise_undefined = ~(signal > 0) & ~pred_undefined
    ok = ~(pred_undefined | noise_undefined)
    scores = np.full(signal.shape, np.nan)
    scores[ok] = cov[ok] / np.sqrt(var_pred[ok] * signal[ok])
    return scores, noise_undefined


_UNDEFINED_REASONS = {
    "hsu": ("split-half correlation of the repeats not positive or undefined", "a constant y_pred or PSTH"),
    "schoppe": ("signal power not positive, or no stimulus with two or more repeats", "a constant y_pred"),
}


def _report_cc_norm(
    scores: NDArray[np.float64], noise_undefined: NDArray[np.bool_], pred_undefined: NDArray[np.bool_],
    method: str, multioutput: str | ArrayLike, reliable: NDArray[np.bool_] | None, unreliable: str,
) -> float | NDArray[np.float64]:
    """Warn about the neurons whose cc_norm is undefined and those whose signal power is not
    ``reliable`` (None: not known), leave the latter out if asked, then aggregate as asked."""
    reason, pred_reason = _UNDEFINED_REASONS[method]
    reasons = []
    if noise_undefined.any():
        reasons.append(f"{int(noise_undefined.sum())} with {reason}")
    if pred_undefined.any():
        reasons.append(f"{int(pred_undefined.sum())} with {pred_reason}")
    _warn_undefined(
        int(np.isnan(scores).sum()), scores.size, f"cc_norm (method={method!r})", "; ".join(reasons),
    )
    if reliable is not None:
        flagged = ~reliable & ~np.isnan(scores)
        _warn_unreliable(flagged, unreliable)
        if unreliable == "exclude" and flagged.any():
            scores = np.where(flagged, np.nan, scores)
    return _aggregate(scores, multioutput)


# ---------------------------------------------------------------------------
# Scorers for model selection (GridSearchCV, cross_validate)
# ---------------------------------------------------------------------------


def scoring_layout(
    X: ArrayLike, y: ArrayLike, y_pred: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Bring responses and predictions to the stimulus layout, reading it from X.

    ``y.ndim - X.ndim`` says whether y has a neuron axis and a repeats axis (the data
    contract), which the shapes of y and y_pred alone cannot tell apart: one neuron over
    several stimuli, (n_stimuli, n_times), looks like several neurons over one recording.
    Only X's number of dimensions is used, not its frames, so a pipeline that rebins X in
    time (responses given at the coarser step) is scored too.

    Parameters
    ----------
    X : array-like of shape (n_stimuli, n_times, n_freqs) or (n_times, n_freqs)
        The stimuli given to the estimator.
    y : array-like
        Responses: X's leading axes, then optionally neurons, then optionally repeats.
    y_pred : array-like
        The estimator's predictions: y's layout without the repeats axis.

    Returns
    -------
    y_true : ndarray of shape (n_stimuli, n_times, n_neurons, n_repeats)
    y_pred : ndarray of shape (n_stimuli, n_times, n_neurons)
    """
    x_ndim = len(X.shape) if hasattr(X, "shape") else np.asarray(X).ndim
    y_true = _as_float(y, "y")
    y_pred = _as_float(y_pred, "y_pred")
    y_true, layout = responses_layout(y_true, x_ndim)
    if x_ndim == 2:
        y_pred = y_pred[np.newaxis]
    if layout == "neuron":
        y_pred = y_pred[..., np.newaxis]
    if y_pred.shape != y_true.shape[:3]:
        raise ValueError(
            f"the predictions have shape {y_pred.shape} in the stimulus layout but the "
            f"responses {y_true.shape[:3]}; the estimator must predict y's layout without its "
            "repeats axis."
        )
    return y_true, y_pred


class StimulusScorer:
    """Scorer ``(estimator, X, y)`` for ``scoring=`` in GridSearchCV and cross_validate.

    Predicts once, brings y and the predictions to the stimulus layout using X's layout,
    and scores them per neuron with :func:`cc_norm` or :func:`cc`. The frames of the
    estimator's lead-in (``lead_in`` of a STRFRegressor, or of a pipeline's last step) are
    not scored, as :meth:`skstrf.STRFRegressor.score` does not score them.

    Parameters
    ----------
    metric : {"cc_norm", "cc"}, default="cc_norm"
        The metric.
    method : {"schoppe", "hsu"}, default="schoppe"
        The noise correction of ``cc_norm``.
    per_neuron : bool, default=False
        False: return the mean over neurons (NaN scores ignored), a float. True: return a
        dict with that mean under ``metric`` and each neuron's score under
        ``f"{metric}_neuron_{i}"``, which scikit-learn turns into one column per neuron
        (``split0_test_cc_norm_neuron_3``, ...); ``refit`` then names ``metric``.
    unreliable : {"exclude", "warn", "ignore"}, default="warn"
        The neurons whose signal power, on the scored stimuli, is not distinguishable from
        zero: see :func:`cc_norm` (``metric="cc_norm"`` only). The warning is shown once per
        search, not once per fold and candidate.

    See Also
    --------
    cc_norm_scorer : ``StimulusScorer("cc_norm")``.
    skstrf.model_selection.cross_validate_neurons : Per-neuron scores as arrays.
    """

    def __init__(self, metric: str = "cc_norm", *, method: str = "schoppe",
                 per_neuron: bool = False, unreliable: str = "warn") -> None:
        _check_option(metric, "metric", ("cc_norm", "cc"))
        _check_option(method, "method", _CC_NORM_METHODS)
        _check_option(unreliable, "unreliable", _UNRELIABLE)
        self.metric = metric
        self.method = method
        self.per_neuron = per_neuron
        self.unreliable = unreliable

    def __call__(self, estimator, X: ArrayLike, y: ArrayLike) -> float | dict[str, float]:
        """Score ``estimator`` on stimuli ``X`` and responses ``y``.

        Parameters
        ----------
        estimator : estimator with ``predict``
            A fitted STRFRegressor, or a pipeline ending with one.
        X : array-like of shape (n_stimuli, n_times, n_freqs) or (n_times, n_freqs)
            Stimuli.
        y : array-like
            Responses in the layout used for ``fit``.

        Returns
        -------
        score : float or dict of str to float
        """
        y_true, y_pred = scoring_layout(X, y, estimator.predict(X))
        lead_in = _lead_in(estimator)
        if lead_in:  # the estimator's lead-in frames are neither fitted nor scored
            y_true = y_true.copy()
            y_true[:, :lead_in] = np.nan
        if self.metric == "cc":
            scores = cc(y_true, y_pred, multioutput="raw_values")
        else:
            scores = cc_norm(y_true, y_pred, method=self.method, multioutput="raw_values",
                             unreliable=self.unreliable)
        mean = _aggregate(scores, "uniform_average")
        if not self.per_neuron:
            return mean
        out = {self.metric: mean}
        out.update({f"{self.metric}_neuron_{i}": float(s) for i, s in enumerate(scores)})
        return out

    def __repr__(self) -> str:
        extra = "" if self.method == "schoppe" else f", method={self.method!r}"
        extra += ", per_neuron=True" if self.per_neuron else ""
        extra += "" if getattr(self, "unreliable", "warn") == "warn" else f", unreliable={self.unreliable!r}"
        return f"StimulusScorer({self.metric!r}{extra})"


def _lead_in(estimator) -> int:
    """The lead-in frames (``lead_in``) of ``estimator``, or of the last step of a pipeline."""
    while hasattr(estimator, "steps"):
        estimator = estimator.steps[-1][1]
    lead_in = getattr(estimator, "lead_in", 0)
    return int(lead_in) if isinstance(lead_in, numbers.Integral) else 0


#: Mean cc_norm over neurons: ``scoring=cc_norm_scorer`` (the number ``STRFRegressor.score``
#: gives, which ``scoring=None`` uses).
cc_norm_scorer = StimulusScorer("cc_norm")
#: Mean cc (uncorrected Pearson correlation) over neurons.
cc_scorer = StimulusScorer("cc")


def make_neuron_scorer(metric: str = "cc_norm", *, method: str = "schoppe",
                       unreliable: str = "warn") -> StimulusScorer:
    """A scorer returning the mean and every neuron's score, predicting once per call.

    Parameters
    ----------
    metric : {"cc_norm", "cc"}, default="cc_norm"
        The metric.
    method : {"schoppe", "hsu"}, default="schoppe"
        The noise correction of ``cc_norm``.
    unreliable : {"exclude", "warn", "ignore"}, default="warn"
        The neurons whose signal power is not distinguishable from zero (:func:`cc_norm`).

    Returns
    -------
    scorer : StimulusScorer
        Returns ``{metric: mean, f"{metric}_neuron_{i}": score_i, ...}``.

    Examples
    --------
    >>> from skstrf.metrics import make_neuron_scorer
    >>> make_neuron_scorer("cc")
    StimulusScorer('cc', per_neuron=True)
    """
    return StimulusScorer(metric, method=method, per_neuron=True, unreliable=unreliable)


@dataclass(frozen=True)
class ScoreSums:
    """What :func:`cc` and :func:`cc_norm` need from a set of stimuli, additive over sets.

    The one implementation of the library's correlation scores: :func:`cc`,
    :func:`cc_norm` (method "schoppe"), :meth:`skstrf.STRFRegressor.score`, the validation
    score of early stopping, the out-of-core score and the penalty's cross-validation all
    finalise these sums. Each part of the data gives its sums (:meth:`of` from responses and
    predictions; :meth:`from_sums` from sums of predictions made without predicting, as the
    closed-form solvers have them); :meth:`merge` pools two parts in any order, exactly
    (Chan, Golub & LeVeque's update of centred sums); :meth:`correlation` and
    :meth:`normalized_correlation` finalise them, and :func:`cc_norm_from_sums` reports them
    as :func:`cc_norm` does.

    Fields hold one value per neuron (shape ``(..., n_neurons)``; leading axes, e.g. one per
    penalty, are allowed) in units of ``2**exponent_q`` (predictions) and ``2**exponent_p``
    (responses), powers of two per neuron that keep products of values near 1e+-150
    finite and exact: ``count`` valid frames; ``mean_q``, ``mean_p`` the means of the
    prediction and the PSTH and ``m2_q``, ``m2_p``, ``c_qp`` their centred sums of squares
    and products; ``noise`` the signal-power noise sums (3, n_neurons) of the repeats (None
    without responses' repeats); ``q_range``, ``p_range`` the extremes (2, ...) of both, for
    an exact test of constancy (None: constancy is a zero centred sum); ``max_repeats`` the
    most repeats of a stimulus; ``spread`` what the standard error of the signal power needs
    (:meth:`reliability`; None without responses' repeats).
    """

    count: np.ndarray
    mean_q: np.ndarray
    mean_p: np.ndarray
    m2_q: np.ndarray
    m2_p: np.ndarray
    c_qp: np.ndarray
    noise: np.ndarray | None
    q_range: np.ndarray | None
    p_range: np.ndarray | None
    max_repeats: int
    exponent_q: np.ndarray | int = 0
    exponent_p: np.ndarray | int = 0
    spread: _SpreadSums | None = None

    @classmethod
    def of(cls, y_true: NDArray[np.float64], y_pred: NDArray[np.float64] | None = None) -> "ScoreSums":
        """The sums of one set of stimuli.

        Parameters
        ----------
        y_true : ndarray of shape (n_stimuli, n_times, n_neurons, n_repeats)
            Responses, NaN on padding frames and missing repeats.
        y_pred : ndarray of shape (n_stimuli, n_times, n_neurons) or None, default=None
            Predictions (values on padding frames are ignored); None: the responses' part
            alone, to which :meth:`with_predictions` adds predictions.
        """
        exponent_p = _neuron_exponents(y_true)
        y_scaled = _unit_scaled(y_true, exponent_p)
        stats = _repeat_stats(y_scaled)
        valid = stats.valid
        count = valid.sum(axis=(0, 1))
        with np.errstate(divide="ignore", invalid="ignore"):
            mean_p = np.where(count > 0, np.where(valid, stats.psth, 0.0).sum(axis=(0, 1)) / count, 0.0)
        dp = np.where(valid, stats.psth - mean_p, 0.0)
        nothing = np.zeros_like(mean_p)
        responses = cls(count, nothing, mean_p, nothing, np.einsum("stn,stn->n", dp, dp), nothing,
                        _noise_sums(stats), np.stack([np.full_like(mean_p, np.inf), np.full_like(mean_p, -np.inf)]),
                        _extremes(stats.psth, valid), int(stats.n_repeats.max()), 0, exponent_p,
                        _SpreadSums.of(y_scaled, stats, mean_p))
        if y_pred is None:
            return responses
        return responses.with_predictions(y_pred, np.where(valid, stats.psth, np.nan), scaled=True)

    def with_predictions(self, y_pred: NDArray[np.float64], psth: NDArray[np.float64], *,
                         scaled: bool = False) -> "ScoreSums":
        """These responses' sums (from :meth:`of` without predictions) with predictions.

        Parameters
        ----------
        y_pred : ndarray of shape (n_stimuli, n_times, n_neurons)
            Predictions of the same stimuli.
        psth : ndarray of shape (n_stimuli, n_times, n_neurons)
            Their PSTH in the responses' units, NaN on the frames that are not scored.
        scaled : bool, default=False
            Whether ``psth`` is already in units of ``2**exponent_p``.

        Returns
        -------
        ScoreSums
        """
        psth = np.asarray(psth, dtype=np.float64)
        valid = ~np.isnan(psth)
        if not scaled:
            psth = _unit_scaled(psth, np.broadcast_to(self.exponent_p, psth.shape[2:]))
        exponent_q = _neuron_exponents(y_pred)
        pred = _check_pred(_unit_scaled(y_pred, exponent_q), valid)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean_q = np.where(self.count > 0, pred.sum(axis=(0, 1)) / self.count, 0.0)
        dq = np.where(valid, pred - mean_q, 0.0)
        dp = np.where(valid, psth - self.mean_p, 0.0)
        return ScoreSums(self.count, mean_q, self.mean_p, np.einsum("stn,stn->n", dq, dq), self.m2_p,
                         np.einsum("stn,stn->n", dq, dp), self.noise, _extremes(pred, valid), self.p_range,
                         self.max_repeats, exponent_q, self.exponent_p, self.spread)

    @classmethod
    def from_sums(cls, n, sum_q, sum_qq, sum_qp, sum_p, sum_pp) -> "ScoreSums":
        """The sums of predictions ``q`` of a PSTH ``p`` from their raw sums over the frames.

        For predictions known only through sums (the closed-form solvers' held-out sums).
        Raw sums lose precision when the mean dwarfs the spread: give them in units where
        the data are centred (the solvers' standardised units). No repeats: the result
        gives :meth:`correlation`, not cc_norm.

        Parameters
        ----------
        n, sum_q, sum_qq, sum_qp, sum_p, sum_pp : array-like of shape (..., n_neurons)
            Frame counts and sums of ``q``, ``q**2``, ``q p``, ``p`` and ``p**2``.
        """
        n, sum_q, sum_qq, sum_qp, sum_p, sum_pp = np.broadcast_arrays(
            *(np.asarray(a, dtype=np.float64) for a in (n, sum_q, sum_qq, sum_qp, sum_p, sum_pp)))
        with np.errstate(divide="ignore", invalid="ignore"):
            mean_q, mean_p = sum_q / n, sum_p / n
        return cls(n, mean_q, mean_p, sum_qq - sum_q * mean_q, sum_pp - sum_p * mean_p,
                   sum_qp - sum_q * mean_p, None, None, None, 1)

    def merge(self, other: "ScoreSums") -> "ScoreSums":
        """The sums of both sets of stimuli."""
        a, b = self, other
        eq, ep = np.maximum(a.exponent_q, b.exponent_q), np.maximum(a.exponent_p, b.exponent_p)
        a, b = a._in_units(eq, ep), b._in_units(eq, ep)
        count, mean_q, dq, cross = merge_means(a.count, a.mean_q, b.count, b.mean_q)
        _, mean_p, dp, _ = merge_means(a.count, a.mean_p, b.count, b.mean_p)

        def both(x, y, combine):
            return None if x is None or y is None else combine(x, y)

        def ranges(x, y):
            return np.stack([np.minimum(x[0], y[0]), np.maximum(x[1], y[1])])

        def spreads(x, y):  # both centred on the union's mean before they are added
            return x.recentred(a.mean_p - mean_p) + y.recentred(b.mean_p - mean_p)

        return ScoreSums(count, mean_q, mean_p, a.m2_q + b.m2_q + dq * dq * cross,
                         a.m2_p + b.m2_p + dp * dp * cross, a.c_qp + b.c_qp + dq * dp * cross,
                         both(a.noise, b.noise, np.add), both(a.q_range, b.q_range, ranges),
                         both(a.p_range, b.p_range, ranges), max(a.max_repeats, b.max_repeats), eq, ep,
                         both(a.spread, b.spread, spreads))

    def _in_units(self, exponent_q, exponent_p) -> "ScoreSums":
        """These sums in units of ``2**exponent_q`` and ``2**exponent_p`` (exact)."""
        sq = np.asarray(self.exponent_q) - exponent_q  # <= 0: scaling down by powers of two
        sp = np.asarray(self.exponent_p) - exponent_p
        if not (np.any(sq) or np.any(sp)):
            return self

        def ranged(r, shift):
            return None if r is None else np.ldexp(r, shift)

        return ScoreSums(self.count, np.ldexp(self.mean_q, sq), np.ldexp(self.mean_p, sp),
                         np.ldexp(self.m2_q, 2 * sq), np.ldexp(self.m2_p, 2 * sp), np.ldexp(self.c_qp, sq + sp),
                         None if self.noise is None else np.ldexp(self.noise, np.array([0, 2, 2])[:, None] * sp),
                         ranged(self.q_range, sq), ranged(self.p_range, sp), self.max_repeats,
                         exponent_q, exponent_p, None if self.spread is None else self.spread.scaled(sp))

    def _constant(self) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        """Which neurons have a constant prediction, and a constant PSTH, over their frames."""
        def constant(r, m2):
            return ~(r[1] > r[0]) if r is not None else ~(m2 > 0)
        return constant(self.q_range, self.m2_q), constant(self.p_range, self.m2_p)

    def correlation(self) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """Pearson correlation of prediction and PSTH, pooled over the frames (:func:`cc`).

        Returns
        -------
        r : ndarray of shape (..., n_neurons)
            NaN where undefined.
        undefined : ndarray of bool
            Where the prediction or the PSTH is constant (or there is no frame).
        """
        q_const, p_const = self._constant()
        undefined = q_const | p_const
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(undefined, np.nan, self.c_qp / np.sqrt(self.m2_q * self.m2_p))
        return r, undefined

    def powers(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Signal and total power per neuron in the data's units.

        The signal power (Sahani & Linden 2003) is the variance of the PSTH over all valid
        frames pooled across stimuli (the frames and pooling of :func:`cc`) minus the
        variance that trial noise adds to the PSTH, ``(TP_s - var(psth_s)) / (R_s - 1)``
        averaged over stimuli weighted by their valid frames. For one stimulus this is
        Sahani & Linden's ``(R * var(psth) - mean_r var(r)) / (R - 1)``; pooling keeps
        differences in mean rate between stimuli in both the numerator and the ceiling, so
        a noiseless neuron has a noise ceiling of exactly 1. The total power adds the noise
        power of a single repeat. Noise terms use only stimuli with at least two repeats;
        NaN where there are none.

        Returns
        -------
        signal, total : ndarray of shape (n_neurons,)
        """
        with np.errstate(divide="ignore", invalid="ignore"):
            signal, total = _signal_from_noise_sums(self.m2_p / self.count, self.noise)
        scale = 2 * np.asarray(self.exponent_p)
        return np.ldexp(signal, scale), np.ldexp(total, scale)

    def normalized_correlation(self) -> tuple[NDArray[np.float64], NDArray[np.bool_], NDArray[np.bool_]]:
        """cc_norm (Schoppe et al. 2016) per neuron, without the fallback of :func:`cc_norm`.

        Returns
        -------
        scores : ndarray of shape (n_neurons,)
        noise_undefined : ndarray of bool
            Neurons without a positive signal power (or without a stimulus with two repeats).
        pred_undefined : ndarray of bool
            Neurons with a constant prediction.
        """
        pred_undefined, _ = self._constant()
        with np.errstate(divide="ignore", invalid="ignore"):
            var_pred, var_psth, cov = self.m2_q / self.count, self.m2_p / self.count, self.c_qp / self.count
            signal, _ = _signal_from_noise_sums(var_psth, self.noise)
        scores, noise_undefined = _schoppe_scores(var_pred, cov, signal, pred_undefined)
        return scores, noise_undefined, pred_undefined

    def reliability(self, alpha: float = RELIABILITY_ALPHA) -> Bunch:
        """Whether each neuron's signal power is distinguishable from zero (see
        :func:`signal_power_reliability`, which this computes from the sums).

        Parameters
        ----------
        alpha : float, default=0.025
            Level of the one-sided test.

        Returns
        -------
        result : sklearn.utils.Bunch
            Fields of :func:`signal_power_reliability`.
        """
        if (isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 < alpha < 1):
            raise ValueError(f"alpha must be a number in (0, 1); got {alpha!r}")
        signal, excess, se, statistic, dof, p_value = self._signal_test()
        scale = 2 * np.asarray(self.exponent_p)
        with np.errstate(over="ignore"):  # a power of values near 1e300 is inf in their units
            return Bunch(signal_power=np.ldexp(signal, scale), mean_noise=np.ldexp(excess, scale),
                         standard_error=np.ldexp(se, scale), statistic=statistic, dof=dof,
                         p_value=p_value, reliable=p_value < alpha)

    def _signal_test(self) -> tuple[NDArray[np.float64], ...]:
        """Signal power, its excess from the mean rates' noise and its null standard error (in
        the sums' units), the statistic, its degrees of freedom and the one-sided p-value."""
        shape = np.shape(self.count)
        if self.noise is None or self.spread is None:
            return tuple(np.full(shape, np.nan) for _ in range(6))
        with np.errstate(divide="ignore", invalid="ignore"):
            signal, _ = _signal_from_noise_sums(self.m2_p / self.count, self.noise)
            excess = self.spread.mean_noise(self.count)
            se = np.sqrt(self.spread.null_variance(self.count, self.noise[0]))
            corrected = signal - excess
            # A noiseless neuron has no spread at all: its signal is certain.
            statistic = np.where(se > 0, corrected / se, np.where(corrected > 0, np.inf, -np.inf))
            statistic = np.where(np.isnan(signal), np.nan, statistic)
            dof = self.spread.degrees_of_freedom()
            p_value = np.where(np.isinf(statistic), np.where(statistic > 0, 0.0, 1.0),
                               special.stdtr(dof, -statistic))
        return signal, excess, se, statistic, dof, p_value

    def _reliable(self) -> NDArray[np.bool_] | None:
        """Which neurons pass the test at :data:`RELIABILITY_ALPHA` (None: no repeats' sums)."""
        if self.noise is None or self.spread is None:
            return None
        return self._signal_test()[-1] < RELIABILITY_ALPHA


def _extremes(a: NDArray[np.float64], valid: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Smallest and largest value per neuron (axis 2) over the valid frames, shape (2, n_neurons)."""
    return np.stack([np.min(a, axis=(0, 1), where=valid, initial=np.inf),
                     np.max(a, axis=(0, 1), where=valid, initial=-np.inf)])


def cc_norm_from_sums(sums: ScoreSums, multioutput: str | ArrayLike = "uniform_average", *,
                      unreliable: str = "warn") -> float | NDArray[np.float64]:
    """:func:`cc_norm` (method "schoppe") of the stimuli summed in ``sums``.

    With a single repeat of every stimulus there is no noise estimate: like :func:`cc_norm`,
    it warns and returns the correlation :func:`cc` instead. Neurons whose signal power is
    not distinguishable from zero are flagged from the sums (:meth:`ScoreSums.reliability`),
    so that data scored a chunk at a time get the flags of the whole.

    Parameters
    ----------
    sums : ScoreSums
    multioutput : {"uniform_average", "raw_values"} or array-like of shape (n_neurons,), \
            default="uniform_average"
        As in :func:`cc_norm`.
    unreliable : {"exclude", "warn", "ignore"}, default="warn"
        As in :func:`cc_norm`.

    Returns
    -------
    float or ndarray of shape (n_neurons,)
    """
    _check_multioutput(multioutput)
    _check_option(unreliable, "unreliable", _UNRELIABLE)
    if sums.noise is None or sums.max_repeats < 2:
        _warn_no_noise_estimate("y_true has a single recorded repeat of every stimulus for every neuron")
        return _report_cc(sums, multioutput)
    scores, noise_undefined, pred_undefined = sums.normalized_correlation()
    reliable = sums._reliable()
    return _report_cc_norm(scores, noise_undefined, pred_undefined, "schoppe", multioutput, reliable, unreliable)


def _report_cc(sums: ScoreSums, multioutput: str) -> float | NDArray[np.float64]:
    """:func:`cc` of ``sums``, warning about the neurons where it is undefined."""
    r, undefined = sums.correlation()
    _warn_undefined(int(undefined.sum()), r.size, "cc", "constant y_pred or PSTH over the valid frames")
    return _aggregate(r, multioutput)
