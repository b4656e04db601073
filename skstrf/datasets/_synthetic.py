"""Synthetic STRF datasets: 1/f spectrogram-like stimuli and Poisson responses of known STRFs."""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from typing import Callable

import numpy as np
import scipy.fft
import torch
from numpy.polynomial.hermite_e import hermegauss
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from .._design import lagged_design
from ..model_selection import train_valid_test_indices
from ..prefilters import AdapTrans, default_n_taps, mel_centre_frequencies, willmore_tau_ms

__all__ = ["make_strf_dataset", "make_realistic_dataset"]

KINDS = ("separable", "excitation_inhibition", "fm_sweep")
NONLINEARITIES = ("relu", "exp", "softplus", "identity")
NOISES = ("poisson", "gaussian")

# Frequency axis: 1/6-octave bands from 500 Hz (34 bands reach 22.6 kHz, a cochleagram-like
# axis of the size of NS1's).
_F_MIN_HZ = 500.0
_BANDS_PER_OCTAVE = 6
# Corners of the modulation amplitude spectrum 1 / ((1 + |w_t| / c_t) (1 + |w_f| / c_f)):
# flat below them, falling as 1/f above. They give adjacent 5 ms frames a correlation of about
# 0.9 and adjacent 1/6-octave bands about 0.75, smooth like a natural-sound spectrogram.
_TEMPORAL_CORNER_HZ = 3.0
_SPECTRAL_CORNER_CYC_PER_OCT = 0.3
# Log-level to spectrogram: a soft threshold (the noise floor) of sharpness _KAPPA at
# _LEVEL_OFFSET standard deviations below the mean level.
_KAPPA = 2.0
_LEVEL_OFFSET = 0.5
# Each neuron's drive distribution, for calibrating rate and SNR, is summarised by the means
# of equal-count bins of its bulk plus its largest frames kept one by one: the rate of a sparse
# or exponential cell is made in the top tail, which quantiles of the bulk would miss.
_N_BULK_NODES = 384
_N_TAIL_NODES = 128
# True ON/OFF adaptation: w and the (ON, OFF) factors on Willmore's time constants, away from
# the estimator's start (w = 0.75, factors 1), so that the data do not favour that start.
_ONOFF_WEIGHT = 0.5
_ONOFF_TAU_SCALE = (0.5, 1.5)


# --------------------------------------------------------------------------------------
# The linear model that defines the ground truth
# --------------------------------------------------------------------------------------
def _true_drive(X: np.ndarray, strfs: np.ndarray, intercepts: np.ndarray) -> np.ndarray:
    """Noiseless linear drive of each neuron: the causal STRF convolution plus the intercept.

    ``drive[s, t, n] = intercepts[n] + sum_{f, k} strfs[n, f, k] * X[s, t - k, f]`` with
    zero history before the start of each stimulus (lag ``k = 0`` is the current frame).

    Parameters
    ----------
    X : ndarray of shape (n_stimuli, n_times, n_freqs) or (n_times, n_freqs)
        Stimuli, NaN-padded at the end (whole frames) when their lengths differ.
    strfs : ndarray of shape (n_neurons, n_freqs, n_lags)
        STRFs, lag 0 first.
    intercepts : ndarray of shape (n_neurons,)
        Constant added to each neuron's drive.

    Returns
    -------
    drive : ndarray of shape (n_stimuli, n_times, n_neurons) or (n_times, n_neurons)
        NaN on padded frames (the formula propagates the NaN of ``X[s, t]`` at lag 0).
    """
    X = np.asarray(X, dtype=np.float64)
    strfs = np.asarray(strfs, dtype=np.float64)
    intercepts = np.asarray(intercepts, dtype=np.float64)
    single = X.ndim == 2
    if single:
        X = X[np.newaxis]
    if X.ndim != 3:
        raise ValueError(
            f"X must have shape (n_stimuli, n_times, n_freqs) or (n_times, n_freqs); got {X.shape}"
        )
    if strfs.ndim != 3 or strfs.shape[1] != X.shape[2]:
        raise ValueError(
            f"strfs must have shape (n_neurons, n_freqs={X.shape[2]}, n_lags); got {strfs.shape}"
        )
    if intercepts.shape != (strfs.shape[0],):
        raise ValueError(
            f"intercepts must have shape (n_neurons,) = ({strfs.shape[0]},); "
            f"got {intercepts.shape}"
        )
    n_neurons, n_freqs, n_lags = strfs.shape
    # The package's one causal lag function (torch); float64 in, float64 out.
    Z = lagged_design(torch.from_numpy(np.ascontiguousarray(X)), n_lags).numpy()
    # One matrix product over all frames of all stimuli: (S*T, F*L) @ (F*L, N).
    drive = Z.reshape(-1, n_freqs * n_lags) @ strfs.reshape(n_neurons, -1).T
    drive = drive.reshape(X.shape[0], X.shape[1], n_neurons) + intercepts
    return drive[0] if single else drive


def _softplus(z: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):  # NaN on padded frames stays NaN, silently
        return np.logaddexp(0.0, z)


def _relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0.0)


# Exponent of the threshold-power output ``max(z, 0) ** p``: the expansive power law of
# cortical spike output (Miller & Troyer 2002; Priebe, Mechler, Carandini & Ferster 2004
# measured exponents of 2-4).
_THRESHOLD_POWER = 2.0


def _threshold_power(z: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):  # NaN on padded frames stays NaN
        return np.maximum(z, 0.0) ** _THRESHOLD_POWER


_NONLINEARITY_FUNCS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": _relu,
    "exp": np.exp,
    "softplus": _softplus,
    "identity": lambda z: z,
    "threshold-power": _threshold_power,
}


def _apply_nonlinearity(drive: np.ndarray, nonlinearity: str) -> np.ndarray:
    """Expected response (spikes per frame) from the drive: ``nonlinearity(drive)``.

    Parameters
    ----------
    drive : ndarray of any shape
        Linear drive.
    nonlinearity : {"relu", "exp", "softplus", "identity", "threshold-power"}
        ``max(z, 0)``, ``exp(z)``, ``log(1 + exp(z))``, ``z`` or ``max(z, 0) ** 2``.

    Returns
    -------
    rates : ndarray of the same shape as ``drive``
    """
    return _NONLINEARITY_FUNCS[nonlinearity](drive)


# Spike-rate adaptation of ``nonlinearity="adaptation"``: the rate is divided by one plus
# ``_ADAPT_STRENGTH`` times the recent static output (an exponential average with time
# constant ``_ADAPT_TAU_MS``) relative to its mean, so that a sustained sound settles at
# about a third of its onset rate within a few hundred ms, as in auditory cortex.
_ADAPT_TAU_MS = 150.0
_ADAPT_STRENGTH = 2.0
# Adaptation state is built over this many time constants of sound before each stimulus.
_ADAPT_WARMUP_TAUS = 3.0


def _adaptation_frames(dt_ms: float) -> int:
    """Frames of sound heard before each stimulus to settle the adaptation state."""
    return int(np.ceil(_ADAPT_WARMUP_TAUS * _ADAPT_TAU_MS / dt_ms))


def _adapt(static: np.ndarray, dt_ms: float, mean_static: np.ndarray) -> np.ndarray:
    """Divisive spike-rate adaptation of a static output, causal along time.

    ``r_t = f_t / (1 + k A_t / m)`` with ``A_t = a A_{t-1} + (1 - a) f_{t-1}``: ``A`` is
    the exponential average of the past static output ``f`` (``a = exp(-dt / tau)``),
    ``k = _ADAPT_STRENGTH``, ``tau = _ADAPT_TAU_MS`` and ``m`` each neuron's mean static
    output (a constant of the cell, so that ``r`` scales with ``f``). The state starts at
    steady state for the first frame, ``A_0 = f_0``; a constant ``f`` gives
    ``r = f / (1 + k f / m)``.

    Parameters
    ----------
    static : ndarray of shape (n_stimuli, n_times, n_neurons)
        Static output ``f`` over the frames heard, oldest first; NaN only at the end.
    dt_ms : float
    mean_static : ndarray of shape (n_neurons,)

    Returns
    -------
    rates : ndarray of shape (n_stimuli, n_times, n_neurons)
    """
    from scipy.signal import lfilter

    a = np.exp(-dt_ms / _ADAPT_TAU_MS)
    state = lfilter([0.0, 1.0 - a], [1.0, -a], static, axis=1, zi=static[:, :1] * 1.0)[0]
    return static / (1.0 + _ADAPT_STRENGTH * state / mean_static)


# --------------------------------------------------------------------------------------
# Stimuli
# --------------------------------------------------------------------------------------
def _modulation_filter(n_times: int, n_freqs: int, dt_ms: float) -> np.ndarray:
    """Amplitude of the 2-D modulation spectrum on the ``rfftn`` grid, normalised to unit power.

    ``H = 1 / ((1 + |w_t| / 3 Hz) (1 + |w_f| / 0.3 cyc/oct))``, ``w_t`` the temporal and
    ``w_f`` the spectral modulation frequency: flat below the corners and 1/f above them along
    each axis. The product (rather than a radial) form puts the power along the two axes, the
    cross-shaped modulation spectrum of natural sounds: fast temporal modulations come with
    broad spectra and fine spectral structure with slow changes.

    Parameters
    ----------
    n_times, n_freqs : int
        Size of the (padded) grid the filter is applied on.
    dt_ms : float
        Frame duration in ms.

    Returns
    -------
    H : ndarray of shape (n_times, n_freqs // 2 + 1)
        Real, with ``mean(|H_full|^2) = 1`` over the full FFT grid so that filtering white
        unit-variance noise (orthonormal FFT) gives a unit-variance field.
    """
    w_t = np.fft.fftfreq(n_times, d=dt_ms / 1000.0)[:, np.newaxis]
    w_f = np.fft.fftfreq(n_freqs, d=1.0 / _BANDS_PER_OCTAVE)[np.newaxis, :]
    temporal = 1.0 + np.abs(w_t) / _TEMPORAL_CORNER_HZ
    spectral = 1.0 + np.abs(w_f) / _SPECTRAL_CORNER_CYC_PER_OCT
    H_full = 1.0 / (temporal * spectral)
    H_full /= np.sqrt(np.mean(H_full**2))
    return H_full[:, : n_freqs // 2 + 1]


def _level_to_spectrogram(g: np.ndarray) -> np.ndarray:
    """Soft-threshold a unit-variance Gaussian log-level field into a spectrogram-like value.

    ``X = softplus(kappa * (g + m)) / kappa / c``: a log-level with a soft noise floor at
    ``-m`` standard deviations, so that 0 means silence, divided by the constant ``c`` that
    gives ``X`` unit variance when ``g ~ N(0, 1)`` (computed by Gauss-Hermite quadrature).

    Parameters
    ----------
    g : ndarray of any shape
        Standard-normal log-level field.

    Returns
    -------
    X : ndarray of the same shape as ``g``
        Non-negative values of unit variance.
    """
    nodes, weights = hermegauss(80)
    weights = weights / weights.sum()
    v = _softplus(_KAPPA * (nodes + _LEVEL_OFFSET)) / _KAPPA
    mean = weights @ v
    scale = np.sqrt(weights @ (v - mean) ** 2)
    return _softplus(_KAPPA * (g + _LEVEL_OFFSET)) / (_KAPPA * scale)


def _make_stimuli(
    rng: np.random.Generator, n_stimuli: int, n_times: int, n_freqs: int, dt_ms: float
) -> np.ndarray:
    """Independent spectrogram-like stimuli with a 1/f modulation spectrum.

    White Gaussian noise is shaped in the 2-D (temporal x spectral) Fourier domain by
    :func:`_modulation_filter` on a grid padded to about twice the size (so the periodic FFT
    does not tie the last frame to the first or the top band to the bottom), cropped, and
    passed through :func:`_level_to_spectrogram`.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of the white noise; stimulus ``s`` uses only the ``s``-th block of draws.
    n_stimuli, n_times, n_freqs : int
        Output size.
    dt_ms : float
        Frame duration in ms (sets the temporal modulation frequency axis).

    Returns
    -------
    X : ndarray of shape (n_stimuli, n_times, n_freqs)
    """
    n_times_pad = scipy.fft.next_fast_len(2 * n_times, real=True)
    n_freqs_pad = scipy.fft.next_fast_len(2 * n_freqs, real=True)
    H = _modulation_filter(n_times_pad, n_freqs_pad, dt_ms)
    white = rng.standard_normal((n_stimuli, n_times_pad, n_freqs_pad))
    spectrum = scipy.fft.rfftn(white, axes=(1, 2), norm="ortho") * H
    g = scipy.fft.irfftn(spectrum, s=(n_times_pad, n_freqs_pad), axes=(1, 2), norm="ortho")
    return _level_to_spectrogram(g[:, :n_times, :n_freqs])


# --------------------------------------------------------------------------------------
# Ground-truth STRFs
# --------------------------------------------------------------------------------------
def _gaussian(x: np.ndarray, centre: np.ndarray, width: np.ndarray) -> np.ndarray:
    """``exp(-(x - centre)^2 / (2 width^2))`` for each row of parameters.

    Parameters
    ----------
    x : ndarray of shape (n_points,)
    centre, width : ndarray of shape (n_cells,)

    Returns
    -------
    profile : ndarray of shape (n_cells, n_points)
    """
    return np.exp(-0.5 * ((x[np.newaxis, :] - centre[:, np.newaxis]) / width[:, np.newaxis]) ** 2)


def _gamma_bump(n_lags: int, peak: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """Gamma-like temporal bump ``x^a exp(a (1 - x))``, ``x = (k + 1) / (peak + 1)``.

    It rises from near 0 before lag 0, peaks with value 1 at lag ``peak`` and decays; a larger
    ``a`` makes it narrower.

    Parameters
    ----------
    n_lags : int
        Number of lags ``k = 0 .. n_lags - 1``.
    peak : ndarray of shape (n_cells,)
        Lag of the maximum, in frames.
    shape : ndarray of shape (n_cells,)
        Exponent ``a``.

    Returns
    -------
    bump : ndarray of shape (n_cells, n_lags)
    """
    x = (np.arange(n_lags)[np.newaxis, :] + 1.0) / (peak[:, np.newaxis] + 1.0)
    a = shape[:, np.newaxis]
    return x**a * np.exp(a * (1.0 - x))


def _separable_strfs(
    n_freqs: int, n_lags: int, bf: np.ndarray, bw: np.ndarray, peak: np.ndarray,
    shape: np.ndarray, delay: np.ndarray, ratio: np.ndarray,
) -> np.ndarray:
    """Rank-1 STRFs: Gaussian tuning times a biphasic (difference of gamma-like) time course.

    ``w[f, k] = G(f; bf, bw) * (phi(k; peak, a) - ratio * phi(k; peak + delay, a))``.

    Parameters
    ----------
    n_freqs, n_lags : int
        Grid size.
    bf, bw : ndarray of shape (n_cells,)
        Best frequency and tuning width (standard deviation), in bands.
    peak, delay : ndarray of shape (n_cells,)
        Lag of the excitatory peak and delay of the suppressive rebound, in frames.
    shape : ndarray of shape (n_cells,)
        Gamma exponent of both bumps.
    ratio : ndarray of shape (n_cells,)
        Amplitude of the rebound relative to the peak.

    Returns
    -------
    strfs : ndarray of shape (n_cells, n_freqs, n_lags)
    """
    spectral = _gaussian(np.arange(n_freqs, dtype=float), bf, bw)
    rebound = _gamma_bump(n_lags, peak + delay, shape)
    temporal = _gamma_bump(n_lags, peak, shape) - ratio[:, None] * rebound
    return spectral[:, :, np.newaxis] * temporal[:, np.newaxis, :]


def _excitation_inhibition_strfs(
    n_freqs: int, n_lags: int, bf: np.ndarray, bw: np.ndarray, peak: np.ndarray,
    shape: np.ndarray, inh_bf: np.ndarray, inh_bw: np.ndarray, delay: np.ndarray,
    ratio: np.ndarray,
) -> np.ndarray:
    """Rank-2 STRFs: an early excitatory band and a delayed inhibitory band elsewhere.

    ``w[f, k] = G(f; bf, bw) phi(k; peak, a)
    - ratio * G(f; inh_bf, inh_bw) phi(k; peak + delay, a)``.

    Parameters
    ----------
    n_freqs, n_lags : int
        Grid size.
    bf, bw : ndarray of shape (n_cells,)
        Centre and width of the excitatory band, in bands.
    peak, shape : ndarray of shape (n_cells,)
        Peak lag (frames) and gamma exponent of the excitation.
    inh_bf, inh_bw : ndarray of shape (n_cells,)
        Centre and width of the inhibitory band, in bands.
    delay : ndarray of shape (n_cells,)
        Delay of the inhibition after the excitation, in frames.
    ratio : ndarray of shape (n_cells,)
        Inhibitory amplitude relative to the excitatory one.

    Returns
    -------
    strfs : ndarray of shape (n_cells, n_freqs, n_lags)
    """
    f = np.arange(n_freqs, dtype=float)
    excitation = _gaussian(f, bf, bw)[:, :, None] * _gamma_bump(n_lags, peak, shape)[:, None, :]
    late = _gamma_bump(n_lags, peak + delay, shape)
    inhibition = _gaussian(f, inh_bf, inh_bw)[:, :, None] * late[:, None, :]
    return excitation - ratio[:, None, None] * inhibition


def _fm_sweep_strfs(
    n_freqs: int, n_lags: int, bf: np.ndarray, bw: np.ndarray, peak: np.ndarray,
    duration: np.ndarray, velocity: np.ndarray,
) -> np.ndarray:
    """Oblique excitatory ridge: selectivity to a frequency sweep.

    ``w[f, k] = exp(-(f - bf - v (k - peak))^2 / (2 bw^2)) * exp(-(k - peak)^2 / (2 d^2))``.
    ``v > 0`` puts higher frequencies at longer lags, i.e. prefers downward sweeps.

    Parameters
    ----------
    n_freqs, n_lags : int
        Grid size.
    bf, bw : ndarray of shape (n_cells,)
        Frequency of the ridge at the peak lag and its width, in bands.
    peak, duration : ndarray of shape (n_cells,)
        Lag of the ridge's centre and its temporal extent (standard deviation), in frames.
    velocity : ndarray of shape (n_cells,)
        Sweep rate ``v`` in bands per frame.

    Returns
    -------
    strfs : ndarray of shape (n_cells, n_freqs, n_lags)
    """
    f = np.arange(n_freqs, dtype=float)[None, :, None]
    k = np.arange(n_lags, dtype=float)[None, None, :]
    bf, bw, peak, duration, velocity = (
        p[:, None, None] for p in (bf, bw, peak, duration, velocity)
    )
    ridge = np.exp(-0.5 * ((f - bf - velocity * (k - peak)) / bw) ** 2)
    return ridge * np.exp(-0.5 * ((k - peak) / duration) ** 2)


def _draw_strfs(
    rng: np.random.Generator, kind: str, n_cells: int, n_freqs: int, n_lags: int
) -> np.ndarray:
    """Draw random STRF parameters of one kind, scaled to the grid, and build the STRFs.

    Parameters
    ----------
    rng : numpy.random.Generator
    kind : {"separable", "excitation_inhibition", "fm_sweep"}
    n_cells, n_freqs, n_lags : int

    Returns
    -------
    strfs : ndarray of shape (n_cells, n_freqs, n_lags)
        Each of unit Frobenius norm.
    """
    F, L = float(n_freqs - 1), float(n_lags - 1)

    def uniform(low: float, high: float) -> np.ndarray:
        return rng.uniform(low, high, n_cells)

    bf = uniform(0.15 * F, 0.85 * F)
    bw = np.maximum(uniform(0.04 * F, 0.08 * F), 0.7)
    if kind == "separable":
        strfs = _separable_strfs(
            n_freqs, n_lags, bf, bw,
            peak=np.maximum(uniform(0.1 * L, 0.3 * L), 0.5), shape=uniform(3.0, 6.0),
            delay=np.maximum(uniform(0.15 * L, 0.3 * L), 1.0), ratio=uniform(0.3, 0.7),
        )
    elif kind == "excitation_inhibition":
        # Inhibitory band 2-3.5 widths away, on whichever side keeps it inside the grid.
        offset = uniform(2.0, 3.5) * bw * rng.choice([-1.0, 1.0], n_cells)
        offset = np.where((bf + offset < 0) | (bf + offset > F), -offset, offset)
        strfs = _excitation_inhibition_strfs(
            n_freqs, n_lags, bf, bw,
            peak=np.maximum(uniform(0.1 * L, 0.3 * L), 0.5), shape=uniform(3.0, 6.0),
            inh_bf=bf + offset, inh_bw=bw * uniform(0.8, 1.5),
            delay=np.maximum(uniform(0.15 * L, 0.3 * L), 1.0), ratio=uniform(0.5, 1.0),
        )
    elif kind == "fm_sweep":
        strfs = _fm_sweep_strfs(
            n_freqs, n_lags, bf, bw,
            peak=np.maximum(uniform(0.2 * L, 0.35 * L), 0.5),
            duration=np.maximum(uniform(0.1 * L, 0.2 * L), 0.7),
            velocity=uniform(0.02 * F, 0.05 * F) * rng.choice([-1.0, 1.0], n_cells),
        )
    else:  # pragma: no cover - kinds are validated by the caller
        raise ValueError(f"unknown kind {kind!r}")
    return strfs / np.linalg.norm(strfs.reshape(n_cells, -1), axis=1)[:, None, None]


# --------------------------------------------------------------------------------------
# Calibration of firing rate and SNR
# --------------------------------------------------------------------------------------
def _drive_nodes(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted nodes summarising each column's empirical distribution.

    The largest ``_N_TAIL_NODES`` values of each column are kept as they are; the others are
    sorted into ``_N_BULK_NODES`` equal-count bins represented by their means, weighted by
    their share of samples. With few samples, every sample is a node.

    Parameters
    ----------
    u : ndarray of shape (n_samples, n_neurons)
        Samples of each neuron's standardised drive.

    Returns
    -------
    nodes : ndarray of shape (n_nodes, n_neurons)
        Sorted along axis 0.
    weights : ndarray of shape (n_nodes,)
        Sum to 1; the same for all neurons.
    """
    n_samples = u.shape[0]
    u = np.sort(u, axis=0)
    if n_samples <= _N_BULK_NODES + _N_TAIL_NODES:
        return u, np.full(n_samples, 1.0 / n_samples)
    n_bulk = n_samples - _N_TAIL_NODES
    starts = np.round(np.linspace(0, n_bulk, _N_BULK_NODES + 1)).astype(int)
    counts = np.diff(starts)
    bulk = np.add.reduceat(u[:n_bulk], starts[:-1], axis=0) / counts[:, None]
    nodes = np.concatenate([bulk, u[n_bulk:]])
    weights = np.concatenate([counts, np.ones(_N_TAIL_NODES)]) / n_samples
    return nodes, weights


def _node_moments(
    nonlinearity: str, offset: np.ndarray, gain: np.ndarray, nodes: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of ``nonlinearity(offset + gain * u)`` over weighted nodes ``u``.

    Parameters
    ----------
    nonlinearity : str
    offset, gain : ndarray of shape (n_neurons,)
    nodes : ndarray of shape (n_nodes, n_neurons)
    weights : ndarray of shape (n_nodes,)

    Returns
    -------
    mean, var : ndarray of shape (n_neurons,)
    """
    r = _apply_nonlinearity(offset + gain * nodes, nonlinearity)
    mean = weights @ r
    return mean, weights @ (r - mean) ** 2


def _calibrate(
    nonlinearity: str, nodes: np.ndarray, weights: np.ndarray, mean: np.ndarray, var: np.ndarray,
    n_iter: int = 30,
) -> tuple[np.ndarray, np.ndarray]:
    """Offset and gain per neuron so that the rate has a given mean and variance.

    Solves ``E[nl(b + s u)] = mean`` and ``Var[nl(b + s u)] = var`` for ``(b, s)``, the
    expectation taken over the weighted nodes of the standardised drive ``u`` (zero mean,
    unit variance). Nested bisection, vectorised over neurons: for a monotone nonlinearity
    the mean increases with ``b``, and at a fixed mean the variance increases with ``s``.

    Parameters
    ----------
    nonlinearity : str
    nodes : ndarray of shape (n_nodes, n_neurons)
        Summary of each neuron's standardised drive (see :func:`_drive_nodes`).
    weights : ndarray of shape (n_nodes,)
    mean, var : ndarray of shape (n_neurons,)
        Targets, in spikes per frame and (spikes per frame)^2.
    n_iter : int
        Bisection steps of each loop.

    Returns
    -------
    offset, gain : ndarray of shape (n_neurons,)
        ``b`` and ``s``.
    """
    if nonlinearity == "identity":
        return mean.copy(), np.sqrt(var)
    u_max = np.abs(nodes).max(axis=0)

    def offset_for(gain: np.ndarray) -> np.ndarray:
        # At lo every rate is below exp(log(mean) - 1) < mean; at hi every rate is above
        # mean + 1: a bracket for relu, softplus and exp alike.
        lo = np.log(mean) - gain * u_max - 1.0
        hi = mean + gain * u_max + 1.0
        for _ in range(n_iter):
            mid = 0.5 * (lo + hi)
            too_high = _node_moments(nonlinearity, mid, gain, nodes, weights)[0] > mean
            hi = np.where(too_high, mid, hi)
            lo = np.where(too_high, lo, mid)
        return 0.5 * (lo + hi)

    # The gain is near the rate's standard deviation (relu) or its coefficient of variation
    # (exp); bracket both generously.
    sd, cv = np.sqrt(var), np.sqrt(var) / mean
    log_lo = np.log(np.minimum(sd, cv)) - 8.0
    log_hi = np.log(np.maximum(sd, cv)) + 8.0
    # Overflow of exp at trial offsets only means "too high", which the bisection handles.
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(n_iter):
            log_mid = 0.5 * (log_lo + log_hi)
            gain = np.exp(log_mid)
            moments = _node_moments(nonlinearity, offset_for(gain), gain, nodes, weights)
            too_high = moments[1] > var
            log_hi = np.where(too_high, log_mid, log_hi)
            log_lo = np.where(too_high, log_lo, log_mid)
        gain = np.exp(0.5 * (log_lo + log_hi))
        return offset_for(gain), gain


def _scale_to_targets(
    unit_drive: np.ndarray, nonlinearity: str, mean: np.ndarray, var: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Gain and intercept per neuron so that ``nl(intercept + gain * unit_drive)`` hits targets.

    Parameters
    ----------
    unit_drive : ndarray of shape (n_stimuli, n_times, n_neurons)
        Drive of the unit-norm STRFs without intercept; NaN on padded frames (ignored).
    nonlinearity : str
    mean, var : ndarray of shape (n_neurons,)
        Target mean and variance of the rate over all valid frames, per frame.

    Returns
    -------
    gain : ndarray of shape (n_neurons,)
        Factor to multiply the unit-norm STRFs by.
    intercepts : ndarray of shape (n_neurons,)
    """
    drive = unit_drive[~np.isnan(unit_drive[..., 0])]  # (n_valid_frames, n_neurons)
    centre, spread = drive.mean(axis=0), drive.std(axis=0)
    nodes, weights = _drive_nodes((drive - centre) / spread)
    offset, gain = _calibrate(nonlinearity, nodes, weights, mean, var)
    # offset + gain * (unit_drive - centre) / spread, rewritten as intercept + factor * unit_drive
    return gain / spread, offset - gain * centre / spread


def _scale_adapted_to_targets(
    unit_drive: np.ndarray, n_warmup: int, dt_ms: float, mean: np.ndarray, var: np.ndarray,
    n_iter: int = 12, rtol: float = 2e-3,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gain and intercept of the static softplus stage so that the adapted rate hits targets.

    Adaptation (:func:`_adapt`) lowers the mean and changes the variance of the static
    output in a way that depends on the whole time course, so the static stage is
    calibrated (:func:`_calibrate`) to targets that are corrected, by the ratio of the
    wanted to the obtained moment, until the adapted rate's mean and variance over the
    stimulus frames are within ``rtol`` of the wanted ones (or ``n_iter`` rounds).

    Parameters
    ----------
    unit_drive : ndarray of shape (n_stimuli, n_warmup + n_times, n_neurons)
        Drive of the unit-norm STRFs over the warm-up frames then the stimulus frames;
        NaN on padded frames at the end.
    n_warmup : int
        Frames before the stimulus (the adaptation state's warm-up).
    dt_ms : float
    mean, var : ndarray of shape (n_neurons,)
        Wanted mean and variance of the adapted rate per frame.

    Returns
    -------
    gain, intercepts : ndarray of shape (n_neurons,)
    mean_static : ndarray of shape (n_neurons,)
        Mean static output over the stimulus frames (the adaptation's normaliser).
    rates : ndarray of shape (n_stimuli, n_times, n_neurons)
        Adapted rates over the stimulus frames.
    """
    stim = unit_drive[:, n_warmup:]
    drive = stim[~np.isnan(stim[..., 0])]
    centre, spread = drive.mean(axis=0), drive.std(axis=0)
    nodes, weights = _drive_nodes((drive - centre) / spread)
    # At steady state the rate is about the static output over 1 + k.
    target_mean, target_var = mean * (1.0 + _ADAPT_STRENGTH), var * (1.0 + _ADAPT_STRENGTH) ** 2
    for _ in range(n_iter):
        offset, gain = _calibrate("softplus", nodes, weights, target_mean, target_var)
        gain, intercepts = gain / spread, offset - gain * centre / spread
        static = _softplus(intercepts + gain * unit_drive)
        valid = ~np.isnan(static[:, n_warmup:, 0])
        mean_static = static[:, n_warmup:][valid].mean(axis=0)
        rates = _adapt(static, dt_ms, mean_static)[:, n_warmup:]
        got_mean, got_var = rates[valid].mean(axis=0), rates[valid].var(axis=0)
        if np.all(np.abs(got_mean / mean - 1) < rtol) and np.all(np.abs(got_var / var - 1) < rtol):
            break
        target_mean = target_mean * mean / got_mean
        target_var = target_var * var / got_var
    return gain, intercepts, mean_static, rates


# --------------------------------------------------------------------------------------
# Responses, padding and missing repeats
# --------------------------------------------------------------------------------------
def _poisson_repeats(rng: np.random.Generator, rates: np.ndarray, n_repeats: int) -> np.ndarray:
    """Independent Poisson counts for each repeat, as float64.

    Draws the total over repeats, ``Poisson(n_repeats * rate)``, then gives each spike a
    uniformly random repeat: the same distribution as independent ``Poisson(rate)`` draws per
    repeat, at the cost of one draw per spike rather than per bin.

    Parameters
    ----------
    rng : numpy.random.Generator
    rates : ndarray of shape (n_stimuli, n_times, n_neurons)
        Non-negative expected counts per frame (NaN is treated as 0).
    n_repeats : int

    Returns
    -------
    counts : ndarray of shape (n_stimuli, n_times, n_neurons, n_repeats)
    """
    lam = np.nan_to_num(rates, nan=0.0).ravel() * n_repeats
    totals = rng.poisson(lam)
    bins = np.repeat(np.arange(lam.size, dtype=np.int64), totals)
    slots = bins * n_repeats + rng.integers(0, n_repeats, bins.size)
    counts = np.bincount(slots, weights=np.ones(slots.size), minlength=lam.size * n_repeats)
    # bincount answers int64 when there is no spike at all
    return counts.astype(np.float64, copy=False).reshape(*rates.shape, n_repeats)


def _gaussian_repeats(
    rng: np.random.Generator, rates: np.ndarray, noise_sd: np.ndarray, n_repeats: int
) -> np.ndarray:
    """Rates plus independent Gaussian noise of a fixed standard deviation per neuron.

    Parameters
    ----------
    rng : numpy.random.Generator
    rates : ndarray of shape (n_stimuli, n_times, n_neurons)
    noise_sd : ndarray of shape (n_neurons,)
    n_repeats : int

    Returns
    -------
    responses : ndarray of shape (n_stimuli, n_times, n_neurons, n_repeats)
    """
    y = np.empty((*rates.shape, n_repeats))
    rng.standard_normal(out=y)
    y *= noise_sd[:, None]
    y += rates[..., None]
    return y


def _draw_lengths(
    rng: np.random.Generator, n_stimuli: int, n_times: int, n_lags: int
) -> np.ndarray:
    """Stimulus lengths uniform on ``[ceil(0.6 n_times), n_times]`` (and at least ``n_lags``).

    Returns
    -------
    lengths : ndarray of shape (n_stimuli,), int
    """
    low = min(max(int(np.ceil(0.6 * n_times)), n_lags), n_times)
    return rng.integers(low, n_times + 1, n_stimuli)


def _repeat_mask(
    rng: np.random.Generator, shape: tuple[int, int, int], p_missing: float, min_kept: int = 2
) -> np.ndarray:
    """Which repeats are kept: each dropped with probability ``p_missing``, ``min_kept`` kept.

    Each (stimulus, neuron, repeat) gets a uniform key and is kept when its key is at least
    ``p_missing``; the ``min_kept`` largest keys of each (stimulus, neuron) are always kept,
    which changes only the rows that would otherwise keep fewer.

    Parameters
    ----------
    rng : numpy.random.Generator
    shape : tuple (n_stimuli, n_neurons, n_repeats)
    p_missing : float in [0, 1)
    min_kept : int

    Returns
    -------
    keep : ndarray of bool, of shape (n_stimuli, n_neurons, n_repeats)
    """
    keys = rng.random(shape)
    rank = keys.argsort(axis=-1).argsort(axis=-1)
    return (keys >= p_missing) | (rank >= shape[-1] - min_kept)


def _split_indices(n_stimuli: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The seed's 14 / 3 / 3 split of NS1, scaled: contiguous train, valid, test blocks.

    :func:`skstrf.model_selection.train_valid_test_indices` (the package's one split rule)
    from 3 stimuli on; below that, every stimulus trains.

    Returns
    -------
    train, valid, test : ndarray of int
    """
    if n_stimuli < 3:
        empty = np.array([], dtype=int)
        return np.arange(n_stimuli), empty, empty
    return train_valid_test_indices(n_stimuli)


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------
def _per_neuron_values(
    name: str, value: object, n_neurons: int, rng: np.random.Generator
) -> np.ndarray:
    """One positive value for every neuron, or per-neuron draws log-uniform on ``(low, high)``.

    Returns
    -------
    values : ndarray of shape (n_neurons,)
    """
    try:
        bounds = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        bounds = np.empty(0)
    if isinstance(value, (bool, np.bool_)) or bounds.shape not in ((), (2,)):
        raise ValueError(f"{name} must be a positive number or a (low, high) pair; got {value!r}")
    low, high = (bounds, bounds) if bounds.ndim == 0 else bounds
    if not 0 < low <= high < np.inf:
        raise ValueError(f"{name} must satisfy 0 < low <= high < inf; got {value!r}")
    return np.exp(rng.uniform(np.log(low), np.log(high), n_neurons))


def _as_generator(random_state: object) -> np.random.Generator:
    """A numpy Generator from None, a non-negative int, a RandomState or a Generator.

    A Generator is used as is (and advanced); None and a RandomState seed a new Generator
    from the RandomState (None: numpy's global one, as in scikit-learn).
    """
    if isinstance(random_state, np.random.Generator):
        return random_state
    is_bool = isinstance(random_state, (bool, np.bool_))
    if isinstance(random_state, numbers.Integral) and not is_bool:
        if random_state < 0:
            raise ValueError(f"random_state must be a non-negative integer; got {random_state!r}")
        return np.random.default_rng(int(random_state))
    if random_state is None or isinstance(random_state, np.random.RandomState):
        seed = check_random_state(random_state).randint(0, 2**31 - 1, size=4)
        return np.random.default_rng(seed)
    raise ValueError(
        "random_state must be None, a non-negative int, a numpy RandomState or a numpy Generator; "
        f"got {random_state!r}"
    )


# --------------------------------------------------------------------------------------
# Public generator
# --------------------------------------------------------------------------------------
@validate_params(
    {
        "n_stimuli": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_times": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_freqs": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_neurons": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_repeats": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_lags": [Interval(numbers.Integral, 1, None, closed="left")],
        "dt_ms": [Interval(numbers.Real, 0, None, closed="neither")],
        "kinds": ["array-like", StrOptions(set(KINDS))],
        "snr": [Interval(numbers.Real, 0, None, closed="neither"), "array-like"],
        "rate_hz": [Interval(numbers.Real, 0, None, closed="neither"), "array-like"],
        "nonlinearity": [StrOptions(set(NONLINEARITIES))],
        "noise": [StrOptions(set(NOISES))],
        "prefilter": [StrOptions({"adaptrans", "onoff"}, deprecated={"onoff"}), None],
        "ragged": ["boolean"],
        "missing_repeats": [Interval(numbers.Real, 0, 1, closed="left")],
        "random_state": ["random_state", np.random.Generator],
    },
    prefer_skip_nested_validation=True,
)
def make_strf_dataset(
    n_stimuli: int = 20,
    n_times: int = 999,
    n_freqs: int = 34,
    n_neurons: int = 32,
    n_repeats: int = 20,
    *,
    n_lags: int = 15,
    dt_ms: float = 5.0,
    kinds: Sequence[str] = KINDS,
    snr: float | tuple[float, float] = (0.05, 1.0),
    rate_hz: float | tuple[float, float] = (2.0, 40.0),
    nonlinearity: str = "relu",
    noise: str = "poisson",
    prefilter: str | None = None,
    ragged: bool = False,
    missing_repeats: float = 0.0,
    random_state: None | int | np.random.RandomState | np.random.Generator = None,
) -> Bunch:
    """Simulate spectrogram-like stimuli and repeated responses of neurons with known STRFs.

    Stimuli are Gaussian noise shaped to a 1/f modulation spectrum and soft-thresholded like a
    log spectrogram. Each neuron's rate is ``nonlinearity(drive)``, the drive being its STRF
    causally convolved with the stimulus plus an intercept; responses are Poisson spike counts
    (or the rate plus Gaussian noise) drawn independently for every repeat. See the user guide
    section "Synthetic data" for the formulas.

    Parameters
    ----------
    n_stimuli : int, default=20
        Number of independent stimuli.
    n_times : int, default=999
        Frames per stimulus (the longest one when ``ragged``).
    n_freqs : int, default=34
        Frequency bands, 1/6 octave apart from 500 Hz.
    n_neurons : int, default=32
        Number of simulated neurons.
    n_repeats : int, default=20
        Trials per stimulus and neuron.
    n_lags : int, default=15
        Temporal extent of the true STRFs, in frames (lag 0 is the current frame).
    dt_ms : float, default=5.0
        Frame duration in ms; sets the temporal modulation spectrum and converts ``rate_hz``.
    kinds : sequence of str, default=("separable", "excitation_inhibition", "fm_sweep")
        Cell types, assigned round-robin: neuron ``n`` is of type ``kinds[n % len(kinds)]``.
        Repeating a name raises its share, e.g. ``("separable", "separable", "fm_sweep")``.
    snr : float or (float, float), default=(0.05, 1.0)
        Single-trial signal-to-noise ratio ``var(rate) / mean(rate)``: the variance of the
        expected response over frames divided by the mean Poisson noise variance (the
        inverse of Sahani and Linden's noise ratio). A pair draws each neuron's value
        log-uniformly in that range.
    rate_hz : float or (float, float), default=(2.0, 40.0)
        Mean firing rate over all valid frames, in spikes/s; a pair draws it per neuron,
        log-uniformly.
    nonlinearity : {"relu", "exp", "softplus", "identity"}, default="relu"
        Output nonlinearity from drive to rate (expected count per frame): ``max(z, 0)``,
        ``exp(z)``, ``log(1 + exp(z))`` or ``z`` (no rectification at all).
    noise : {"poisson", "gaussian"}, default="poisson"
        ``"poisson"``: counts ``~ Poisson(rate)``. ``"gaussian"``: ``rate + e`` with
        ``e ~ N(0, mean rate)`` per neuron, so ``snr`` keeps its meaning; responses are then
        continuous and may be negative. ``nonlinearity="identity"`` gives negative rates and
        therefore requires ``noise="gaussian"``: the exact linear-Gaussian model.
    prefilter : {None, "adaptrans"}, default=None
        ``"adaptrans"``: the STRFs see the stimulus through ON and OFF adaptation channels
        (:class:`skstrf.prefilters.AdapTrans`, rectified), so every true STRF has two
        channels and ``strfs`` has shape (n_neurons, 2, n_freqs, n_lags), channel 0 ON. The
        true adaptation differs from the estimator's initial one (``w = 0.75`` and
        ``500 - 105 log10(CF)`` ms in both channels), so that fitting it is a real test:
        ``w = 0.5`` in every band, and each band's time constant is that formula times 0.5
        for ON and 1.5 for OFF (``adaptation_tau_ms``, ``adaptation_weight``). Uses torch.
        The former name ``"onoff"`` is deprecated (FutureWarning).
    ragged : bool, default=False
        If True, stimulus lengths are drawn uniformly between ``ceil(0.6 * n_times)`` and
        ``n_times`` frames, and ``X`` and ``y`` are NaN-padded at the end (whole frames).
    missing_repeats : float in [0, 1), default=0.0
        Probability that a (stimulus, neuron, repeat) trial is missing (NaN over the whole
        stimulus); at least 2 repeats are always kept per stimulus and neuron.
    random_state : None, int, numpy.random.RandomState or numpy.random.Generator, default=None
        Seed. Stimuli, STRFs, lengths, response noise and missing trials use independent
        streams, so e.g. changing ``n_repeats`` does not change ``X`` or ``strfs``.

    Returns
    -------
    data : sklearn.utils.Bunch
        With the fields:

        X : ndarray of shape (n_stimuli, n_times, n_freqs)
            Stimuli: non-negative, unit variance, 0 is silence; NaN on padded frames.
        y : ndarray of shape (n_stimuli, n_times, n_neurons, n_repeats)
            Responses (spike counts per frame with Poisson noise); NaN on padded frames and
            missing trials.
        rates : ndarray of shape (n_stimuli, n_times, n_neurons)
            Expected responses ``nonlinearity(drive)``; NaN on padded frames.
        strfs : ndarray of shape (n_neurons, n_freqs, n_lags)
            True STRFs, lag 0 first (``strfs[n, f, k]`` weighs ``X[s, t - k, f]``). With
            ``prefilter="adaptrans"``: (n_neurons, 2, n_freqs, n_lags), weighing the ON
            (channel 0) and OFF (channel 1) adaptation channels.
        intercepts : ndarray of shape (n_neurons,)
            Constant term of each drive.
        kind : ndarray of str of shape (n_neurons,)
            Cell type of each neuron.
        separable : ndarray of bool of shape (n_neurons,)
            True for the "separable" cells, whose true STRF has rank 1 (the other kinds have
            rank 2 or more).
        rate_hz, snr : ndarray of shape (n_neurons,)
            Each neuron's targets (met on the generated stimuli up to sampling of the nodes).
        lengths : ndarray of int of shape (n_stimuli,)
            Valid frames of each stimulus.
        train, valid, test : ndarray of int
            The seed's NS1 split (14 / 3 / 3 of 20 stimuli) scaled to ``n_stimuli``.
        freqs : ndarray of shape (n_freqs,)
            Band centre frequencies in Hz (``500 * 2 ** (f / 6)``).
        dt_ms : float
            Frame duration.
        nonlinearity, noise : str
            The options used.
        prefilter : str or None
            The option used.
        adaptation_tau_ms, adaptation_weight : ndarray of shape (2, n_freqs) and (n_freqs,)
            Only with ``prefilter="adaptrans"``: the true adaptation time constants (ON, OFF) in
            ms and the weight ``w`` of each band.
        DESCR : str
            A description of the dataset.

    Raises
    ------
    ValueError
        If a size is not a positive integer, ``n_lags > n_times``, ``dt_ms <= 0``, a kind,
        nonlinearity or noise is unknown, ``missing_repeats`` is outside [0, 1) or positive
        with fewer than 3 repeats, or ``identity`` is combined with Poisson noise.

    Examples
    --------
    >>> from skstrf.datasets import make_strf_dataset
    >>> data = make_strf_dataset(n_stimuli=5, n_times=200, n_neurons=6, n_repeats=4,
    ...                          random_state=0)
    >>> data.X.shape, data.y.shape, data.strfs.shape
    ((5, 200, 34), (5, 200, 6, 4), (6, 34, 15))
    >>> data.kind[:3].tolist()
    ['separable', 'excitation_inhibition', 'fm_sweep']
    >>> data.train, data.valid, data.test
    (array([0, 1, 2]), array([3]), array([4]))
    """
    sizes = {"n_stimuli": n_stimuli, "n_times": n_times, "n_freqs": n_freqs,
             "n_neurons": n_neurons, "n_repeats": n_repeats, "n_lags": n_lags}
    for name, value in sizes.items():  # validate_params takes a bool for an int
        if isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{name} must be a positive integer, not a bool; got {value!r}")
    if n_lags > n_times:
        raise ValueError(f"n_lags must be at most n_times={n_times}; got n_lags={n_lags}")
    if isinstance(kinds, str):
        kinds = (kinds,)
    kinds = tuple(kinds)
    unknown = [k for k in kinds if k not in KINDS]
    if not kinds or unknown:
        raise ValueError(f"kinds must be a non-empty sequence of {KINDS}; got {kinds!r}")
    if nonlinearity == "identity" and noise == "poisson":
        raise ValueError(
            "nonlinearity='identity' gives negative rates, which Poisson noise cannot have; "
            "use noise='gaussian' (the linear-Gaussian model) or a rectifying nonlinearity"
        )
    if prefilter == "onoff":
        warnings.warn(
            "prefilter='onoff' was renamed 'adaptrans' (the estimator's name for the same "
            "front end) and will be removed in a future version; use prefilter='adaptrans'.",
            FutureWarning, stacklevel=3,  # the caller of validate_params' wrapper
        )
        prefilter = "adaptrans"
    if missing_repeats > 0 and n_repeats < 3:
        raise ValueError(
            "missing_repeats > 0 needs n_repeats >= 3 (2 repeats are always kept); "
            f"got n_repeats={n_repeats}"
        )
    rng = _as_generator(random_state)
    stim_rng, cell_rng, length_rng, noise_rng, missing_rng = (
        np.random.default_rng(seed) for seed in rng.integers(0, 2**63 - 1, size=5)
    )
    target_rate_hz = _per_neuron_values("rate_hz", rate_hz, n_neurons, cell_rng)
    target_snr = _per_neuron_values("snr", snr, n_neurons, cell_rng)

    X = _make_stimuli(stim_rng, n_stimuli, n_times, n_freqs, float(dt_ms))
    if ragged:
        lengths = _draw_lengths(length_rng, n_stimuli, n_times, n_lags)
    else:
        lengths = np.full(n_stimuli, n_times)
    X[np.arange(n_times)[None, :] >= lengths[:, None]] = np.nan

    kind = np.array([kinds[n % len(kinds)] for n in range(n_neurons)])
    freqs = _F_MIN_HZ * 2.0 ** (np.arange(n_freqs) / _BANDS_PER_OCTAVE)
    n_channels = 1 if prefilter is None else 2
    unit_strfs = np.empty((n_neurons, n_channels, n_freqs, n_lags))
    for name in KINDS:  # a loop over the (three) kinds, each vectorised over its cells
        cells = np.flatnonzero(kind == name)
        if cells.size:
            drawn = _draw_strfs(cell_rng, name, cells.size * n_channels, n_freqs, n_lags)
            unit_strfs[cells] = drawn.reshape(cells.size, n_channels, n_freqs, n_lags)
    # Unit norm over all channels together.
    unit_strfs /= np.sqrt(n_channels)
    adaptation = {}
    drive_input = X
    if prefilter == "adaptrans":
        drive_input, adaptation = _onoff_channels(X, freqs, float(dt_ms))
    unit_strfs_2d = unit_strfs.reshape(n_neurons, n_channels * n_freqs, n_lags)
    mean_rate = target_rate_hz * dt_ms / 1000.0
    unit_drive = _true_drive(drive_input, unit_strfs_2d, np.zeros(n_neurons))
    target_var = target_snr * mean_rate
    gain, intercepts = _scale_to_targets(unit_drive, nonlinearity, mean_rate, target_var)
    strfs = unit_strfs * gain[:, None, None, None]
    if prefilter is None:
        strfs = strfs[:, 0]
    # Equal to _true_drive(X, strfs, intercepts) by linearity, without a second convolution.
    rates = _apply_nonlinearity(intercepts + gain * unit_drive, nonlinearity)

    if noise == "poisson":
        y = _poisson_repeats(noise_rng, rates, n_repeats)
    else:
        y = _gaussian_repeats(noise_rng, rates, np.sqrt(mean_rate), n_repeats)
    y[np.isnan(rates)] = np.nan
    if missing_repeats > 0:
        keep = _repeat_mask(missing_rng, (n_stimuli, n_neurons, n_repeats), float(missing_repeats))
        y[np.broadcast_to(~keep[:, None], y.shape)] = np.nan

    train, valid, test = _split_indices(n_stimuli)
    descr = (
        f"Synthetic STRF dataset: {n_stimuli} stimuli x {n_times} frames of {dt_ms:g} ms x "
        f"{n_freqs} bands (1/6 octave from 500 Hz), 1/f modulation spectrum; {n_neurons} "
        f"neurons ({', '.join(dict.fromkeys(kinds))}; round-robin), {n_lags}-lag causal STRFs, "
        f"{'ON/OFF-adapted input, ' if prefilter else ''}{nonlinearity} output, {noise} noise, "
        f"{n_repeats} repeats; rate "
        f"{target_rate_hz.min():.1f}-{target_rate_hz.max():.1f} spikes/s, single-trial SNR "
        f"{target_snr.min():.3f}-{target_snr.max():.3f}; ragged={bool(ragged)}, "
        f"missing_repeats={float(missing_repeats):g}. Split: {train.size} train / "
        f"{valid.size} valid / {test.size} test stimuli."
    )
    return Bunch(
        X=X, y=y, rates=rates, strfs=strfs, intercepts=intercepts, kind=kind,
        separable=kind == "separable", rate_hz=target_rate_hz, snr=target_snr,
        lengths=lengths, train=train, valid=valid, test=test,
        freqs=freqs, dt_ms=float(dt_ms), nonlinearity=nonlinearity, noise=noise,
        prefilter=prefilter, DESCR=descr, **adaptation,
    )


def _onoff_channels(X: np.ndarray, freqs: np.ndarray, dt_ms: float) -> tuple[np.ndarray, dict]:
    """ON and OFF adaptation channels of the stimuli (AdapTrans away from its initialisation).

    Parameters
    ----------
    X : ndarray of shape (n_stimuli, n_times, n_freqs)
        Stimuli, NaN on padded frames.
    freqs : ndarray of shape (n_freqs,)
        Band centre frequencies in Hz (set each band's time constant).
    dt_ms : float
        Frame duration.

    Returns
    -------
    channels : ndarray of shape (n_stimuli, n_times, 2 * n_freqs)
        All ON bands then all OFF bands; NaN on padded frames.
    adaptation : dict
        ``adaptation_tau_ms`` of shape (2, n_freqs) and ``adaptation_weight`` of shape
        (n_freqs,): the true parameters.
    """
    tau = np.outer(_ONOFF_TAU_SCALE, willmore_tau_ms(freqs, dt_ms))
    weight = np.full(freqs.shape, _ONOFF_WEIGHT)
    module = AdapTrans(freqs.size, dt_ms=dt_ms, n_taps=default_n_taps(tau, dt_ms), learnable=False)
    module.set_parameters_(tau, weight)
    padded = np.isnan(X[..., 0])
    with torch.no_grad():
        # Padding is at the end and the filters are causal: zeros there reach no valid frame.
        out = module(torch.as_tensor(np.nan_to_num(X), dtype=torch.float64)).numpy()
    out[padded] = np.nan
    return out, {"adaptation_tau_ms": tau, "adaptation_weight": weight}


# --------------------------------------------------------------------------------------
# Realistic recordings (issue 12): songs with a log floor, and one continuous recording
# --------------------------------------------------------------------------------------
# Songs: 32 log-mel bands from 100 Hz to 10 kHz (zebra finch field L recordings). Song energy
# starts above the 6 lowest bands (below about 620 Hz), which then hold only the recording's
# high-passed background noise, far below the log's floor: nearly constant after the log.
_SONG_FREQ_RANGE_HZ = (100.0, 10000.0)
_SONG_DURATION_S = (1.2, 2.5)
_N_SILENT_BANDS = 6
# Standard deviation of X over time in the silent bands, lowest band first (log-spaced), as
# measured on a real cell: 3e-7 to 3e-3 against about 1 in the loud bands.
_SILENT_BAND_STD = (1e-7, 1e-3)
# Power floor added before the log (as in power_to_db's ``amin``) and the background noise
# power of the loud bands, both relative to a loud syllable's peak band power of about 1.
_LOG_FLOOR = 1e-10
_BACKGROUND_POWER = 10.0 ** -3.5
# Continuous recording: 7 s of binaural sound events, contra and ipsi log envelopes, 10 ms.
_CONTINUOUS_DURATION_S = 7.0
_CONTINUOUS_DT_MS = 10.0
# Defaults of the two layouts: (n_neurons, n_repeats, rate_hz, snr).
_REALISTIC_DEFAULTS = {
    "stimuli": (1, 10, 10.0, 0.6),
    "continuous": (5, 20, (2.0, 15.0), (0.2, 2.0)),
}


def _band_position(freq_hz: np.ndarray, centres_hz: np.ndarray) -> np.ndarray:
    """Fractional band index of each frequency: linear between neighbouring band centres.

    Extrapolated with the outermost spacing beyond the first and the last band, so that a
    triangular filter ``max(0, 1 - |position - f|)`` is the mel filterbank's band ``f``.
    """
    lo = centres_hz[0] - (centres_hz[1] - centres_hz[0])
    hi = centres_hz[-1] + (centres_hz[-1] - centres_hz[-2])
    grid = np.concatenate([[lo], centres_hz, [hi]])
    return np.interp(freq_hz, grid, np.arange(-1.0, centres_hz.size + 1.0), left=-2.0,
                     right=centres_hz.size + 1.0)


def _syllable_power(rng: np.random.Generator, n_frames: int, centres_hz: np.ndarray,
                    n_silent: int) -> np.ndarray:
    """Band power of one syllable: a harmonic stack, a noisy burst or a whistle.

    Harmonic stacks (half the syllables) have a fundamental between the first loud band's
    centre and 1.6 times it, gliding by up to 25% over the syllable, and a spectral envelope
    peaking between 1.5 and 5 kHz; each harmonic reaches the two mel bands whose triangles
    contain it. Noisy bursts cover a few loud bands with exponential frame-to-frame
    fluctuations; whistles are one tone sweeping between 1.5 and 7 kHz. Onsets and offsets
    ramp over 1-3 frames. Nothing reaches the ``n_silent`` lowest bands.

    Returns
    -------
    power : ndarray of shape (n_frames, n_freqs)
    """
    n_freqs = centres_hz.size
    tt = np.arange(n_frames) / max(n_frames - 1, 1)
    bands = np.arange(n_freqs)
    kind = rng.choice(3, p=[0.5, 0.25, 0.25])
    if kind == 0:
        f0 = centres_hz[n_silent] * rng.uniform(1.0, 1.6) * rng.uniform(0.8, 1.25) ** tt
        harmonics = np.arange(1, int(centres_hz[-1] // centres_hz[n_silent]) + 1)
        freq = f0[:, None] * harmonics[None, :]  # (frames, harmonics)
        centre, width = np.log2(rng.uniform(1500.0, 5000.0)), rng.uniform(0.6, 1.2)
        amp = np.exp(-0.5 * ((np.log2(freq) - centre) / width) ** 2)
        pos = _band_position(freq, centres_hz)
        tri = np.maximum(0.0, 1.0 - np.abs(pos[..., None] - bands))  # (frames, harm, bands)
        power = np.einsum("th,thf->tf", amp, tri)
    elif kind == 1:
        centre = rng.uniform(n_silent + 4, n_freqs - 2)
        profile = np.exp(-0.5 * ((bands - centre) / rng.uniform(2.0, 6.0)) ** 2)
        power = profile * rng.exponential(1.0, (n_frames, n_freqs))
    else:
        freq = np.exp(np.log(rng.uniform(1500.0, 7000.0, 2)) @ np.vstack([1 - tt, tt]))
        pos = _band_position(freq, centres_hz)
        power = np.maximum(0.0, 1.0 - np.abs(pos[:, None] - bands))
    ramp_on, ramp_off = rng.integers(1, 4, 2)
    frames = np.arange(n_frames)
    envelope = np.minimum(1.0, (frames + 1) / ramp_on) * np.minimum(1.0, (n_frames - frames) / ramp_off)
    power = power * (envelope**2 * 10.0 ** rng.uniform(-1.0, 0.0))[:, None]
    power[:, :n_silent] = 0.0
    return power


def _song_spectrograms(rng: np.random.Generator, lengths: np.ndarray, centres_hz: np.ndarray,
                       dt_ms: float, ongoing: np.ndarray | None = None) -> np.ndarray:
    """Log-mel spectrograms of song-like sounds with a noise floor, NaN-padded at the end.

    Each song has its own repertoire of 3-6 syllables (drawn by :func:`_syllable_power`,
    40-180 ms long), sung in order as a motif with 10-60 ms gaps, repeated (durations
    jittered by 10%) from 50-150 ms after the start until 50 ms before the end. Background
    noise has power ``_BACKGROUND_POWER`` in the loud bands and, in the silent bands, a power
    that makes their standard deviation after the log log-spaced over ``_SILENT_BAND_STD``;
    its frame-to-frame fluctuations are exponential (one STFT bin's). ``ongoing``, when
    given, is the power of an ongoing background added to every frame (it does not change
    the random draws of the songs). The spectrogram is ``log10(power + _LOG_FLOOR)``.

    Returns
    -------
    X : ndarray of shape (n_stimuli, max(lengths), n_freqs)
    """
    n_freqs = centres_hz.size
    per_ms = 1.0 / dt_ms
    n_times = int(lengths.max())
    power = np.zeros((lengths.size, n_times, n_freqs))
    for s, length in enumerate(lengths):  # a loop over songs and syllables, not over neurons
        n_syllables = rng.integers(3, 7)
        durations = rng.uniform(40.0, 180.0, n_syllables) * per_ms
        gaps = rng.uniform(10.0, 60.0, n_syllables) * per_ms
        motif = [_syllable_power(rng, int(round(d)), centres_hz, _N_SILENT_BANDS)
                 for d in durations]
        t = int(rng.uniform(50.0, 150.0) * per_ms)
        end = length - int(50.0 * per_ms)
        i = 0
        while True:
            syllable = motif[i % n_syllables]
            n = int(round(syllable.shape[0] * rng.uniform(0.9, 1.1)))
            if t + n > end:
                break
            # Stretch or squeeze the syllable in time by nearest-frame resampling.
            idx = np.minimum((np.arange(n) * syllable.shape[0]) // n, syllable.shape[0] - 1)
            power[s, t : t + n] += syllable[idx]
            t += n + int(round(gaps[i % n_syllables] * rng.uniform(0.9, 1.1)))
            i += 1
    power += _song_background(n_freqs) * rng.exponential(1.0, power.shape)
    if ongoing is not None:
        power += ongoing
    X = np.log10(power + _LOG_FLOOR)
    X[np.arange(n_times)[None, :] >= lengths[:, None]] = np.nan
    return X


def _song_background(n_freqs: int) -> np.ndarray:
    """Mean background noise power of each band of the songs' spectrograms, shape (n_freqs,).

    ``_BACKGROUND_POWER`` in the loud bands; in the silent bands, a power that makes their
    standard deviation after the log log-spaced over ``_SILENT_BAND_STD``.
    """
    silent_std = np.geomspace(*_SILENT_BAND_STD, _N_SILENT_BANDS)
    # std(log10(floor + b g)) = b std(g) / (floor ln 10) for b << floor, g ~ Exp(1): std(g) = 1.
    background = np.full(n_freqs, _BACKGROUND_POWER)
    background[:_N_SILENT_BANDS] = silent_std * _LOG_FLOOR * np.log(10.0)
    return background


def _mean_log_background(power: np.ndarray, floor: float) -> np.ndarray:
    """``E[log10(floor + power g)]`` for ``g ~ Exp(1)``: the mean level, after the log, of
    background noise of mean power ``power`` (one value per band), by quadrature over
    ``u = log g``, whose density is ``exp(u - e^u)``."""
    u = np.linspace(-40.0, 5.0, 9001)
    density = np.exp(u - np.exp(u))
    level = np.log10(floor + np.asarray(power, dtype=float)[:, None] * np.exp(u)[None, :])
    return np.trapezoid(density * level, u, axis=1)


# Ongoing background of ``preceding="background"`` (e.g. a colony's chatter or a room's
# noise), heard before and during every stimulus: mean power 15 dB below a loud syllable's
# peak band power (songs are 0-10 dB below it), a log-normal level that wanders slowly
# (standard deviation _ONGOING_LEVEL_SD in natural-log units, smoothed over
# _ONGOING_SMOOTH_MS and 2 bands) and one STFT bin's exponential fluctuations.
_ONGOING_POWER = 10.0 ** -1.5
_ONGOING_LEVEL_SD = 0.5
_ONGOING_SMOOTH_MS = 100.0


def _ongoing_power(rng: np.random.Generator, shape: tuple[int, int, int], dt_ms: float,
                   loud: np.ndarray) -> np.ndarray:
    """Power of an ongoing background over (n_stimuli, n_frames, n_freqs), in the loud bands.

    ``_ONGOING_POWER * exp(s z - s**2 / 2) * g``: ``z`` smoothed unit-variance Gaussian
    noise (so the level's mean power is ``_ONGOING_POWER``), ``s = _ONGOING_LEVEL_SD``,
    ``g ~ Exp(1)`` per frame and band; zero outside ``loud`` (a boolean mask of bands).
    """
    z = _smooth_noise(rng, shape, (0, _ONGOING_SMOOTH_MS / dt_ms, 2.0 if shape[2] > 2 else 0.0))
    level = np.exp(_ONGOING_LEVEL_SD * z - 0.5 * _ONGOING_LEVEL_SD**2)
    return _ONGOING_POWER * level * rng.exponential(1.0, shape) * loud


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: tuple[float, ...]
                  ) -> np.ndarray:
    """White Gaussian noise smoothed by a Gaussian of ``sigma`` samples along each axis, unit RMS."""
    from scipy.ndimage import gaussian_filter

    field = gaussian_filter(rng.standard_normal(shape), sigma, mode="constant")
    return field / np.sqrt(np.mean(field**2, axis=tuple(range(1, len(shape))), keepdims=True))


def _song_strfs(rng: np.random.Generator, n_cells: int, n_freqs: int, n_lags: int,
                n_silent: int) -> np.ndarray:
    """Onset-dominated STRFs with irregular lobes, as measured in field L: not Gaussian sums.

    Each STRF is the sum of three parts, with unit total norm:

    - an onset unit: an irregular excitatory band (a Gaussian window around the best
      frequency times a smoothed random positive profile) with a biphasic time course,
      excitation at 5-15 ms latency then suppression (a difference of gamma-like bumps whose
      areas nearly cancel, so the cell answers energy onsets rather than sustained sound);
    - an offset or sideband part: a delayed band of opposite sign 2-6 bands away;
    - a smoothed random field (about 1.2 bands by 1 frame) inside a broad spectro-temporal
      window, 0.5-0.9 times the norm of the rest: the many small lobes of a real STRF.

    Returns
    -------
    strfs : ndarray of shape (n_cells, n_freqs, n_lags)
    """
    f = np.arange(n_freqs, dtype=float)
    bf = rng.uniform(n_silent + 3, n_freqs - 3, n_cells)
    bw = rng.uniform(1.5, 4.0, n_cells)
    latency = rng.uniform(1.0, 3.0, n_cells)
    shape = rng.uniform(2.0, 4.0, n_cells)
    delay = rng.uniform(2.0, 5.0, n_cells)
    ratio = rng.uniform(0.6, 0.95, n_cells)
    window = _gaussian(f, bf, bw)
    profile = window * np.maximum(0.0, 1.0 + 0.6 * _smooth_noise(rng, (n_cells, n_freqs), (0, 1.0)))
    onset = _gamma_bump(n_lags, latency, shape) - ratio[:, None] * _gamma_bump(
        n_lags, latency + delay, shape)
    side_bf = bf + rng.choice([-1.0, 1.0], n_cells) * rng.uniform(2.0, 6.0, n_cells)
    side = -rng.uniform(0.3, 0.8, n_cells)[:, None, None] * (
        _gaussian(f, side_bf, bw * rng.uniform(0.7, 1.3, n_cells))[:, :, None]
        * _gamma_bump(n_lags, latency + rng.uniform(1.0, 4.0, n_cells), shape)[:, None, :])
    strfs = profile[:, :, None] * onset[:, None, :] + side
    strfs /= np.linalg.norm(strfs.reshape(n_cells, -1), axis=1)[:, None, None]
    broad = (_gaussian(f, bf, 2.5 * bw)[:, :, None]
             * np.exp(-np.arange(n_lags) / (0.4 * n_lags))[None, None, :])
    field = broad * _smooth_noise(rng, (n_cells, n_freqs, n_lags), (0, 1.2, 1.0))
    field /= np.linalg.norm(field.reshape(n_cells, -1), axis=1)[:, None, None]
    strfs += rng.uniform(0.5, 0.9, n_cells)[:, None, None] * field
    return strfs / np.linalg.norm(strfs.reshape(n_cells, -1), axis=1)[:, None, None]


def _binaural_envelopes(rng: np.random.Generator, n_times: int, dt_ms: float,
                        ongoing: np.ndarray | None = None) -> np.ndarray:
    """Contra and ipsi log power envelopes of a sequence of sound events with varying ILD.

    Events of 50-400 ms separated by 20-300 ms of silence, each with a level drawn over
    30 dB, an interaural level difference of -20 to 20 dB (contra minus ipsi), 1-3 frame
    onset and offset ramps and a slow amplitude fluctuation; background noise 35 dB below
    the loudest events, fluctuating like one STFT bin's power; ``ongoing``, when given,
    the power of an ongoing background added to every frame. The envelope is
    ``log10(power)``, one column per ear.

    Returns
    -------
    X : ndarray of shape (n_times, 2)
        Column 0 contra, column 1 ipsi.
    """
    per_ms = 1.0 / dt_ms
    power = np.zeros((n_times, 2))
    t = int(rng.uniform(0.0, 200.0) * per_ms)
    while t < n_times:
        n = max(int(rng.uniform(50.0, 400.0) * per_ms), 2)
        frames = np.arange(n)
        ramp_on, ramp_off = rng.integers(1, 4, 2)
        env = np.minimum(1.0, (frames + 1) / ramp_on) * np.minimum(1.0, (n - frames) / ramp_off)
        wobble = 1.0 + 0.3 * _smooth_noise(rng, (1, n), (0, 3.0))[0]
        level_db = rng.uniform(-30.0, 0.0)
        ild_db = rng.uniform(-20.0, 20.0)
        ears = 10.0 ** ((level_db + np.array([ild_db, -ild_db]) / 2.0) / 10.0)
        stop = min(t + n, n_times)
        power[t:stop] += (env**2 * np.maximum(wobble, 0.0))[: stop - t, None] * ears
        t = stop + int(rng.uniform(20.0, 300.0) * per_ms)
    power += _BACKGROUND_POWER * rng.exponential(1.0, power.shape)
    if ongoing is not None:
        power += ongoing
    return np.log10(power)


def _binaural_strfs(rng: np.random.Generator, n_cells: int, n_lags: int) -> np.ndarray:
    """Contra-excitatory, ipsi-inhibitory (EI) onset STRFs of A1 units, with irregular lobes.

    Contra: a biphasic onset time course (10-30 ms latency); ipsi: a delayed inhibition of
    0.3-1 times the contra amplitude; plus a smoothed random part (1 frame) of 0.3-0.6 times
    the norm of the rest in each channel.

    Returns
    -------
    strfs : ndarray of shape (n_cells, 2, n_lags)
    """
    latency = rng.uniform(1.0, 3.0, n_cells)
    shape = rng.uniform(2.0, 4.0, n_cells)
    delay = rng.uniform(1.5, 4.0, n_cells)
    contra = _gamma_bump(n_lags, latency, shape) - rng.uniform(0.5, 0.9, n_cells)[:, None] * (
        _gamma_bump(n_lags, latency + delay, shape))
    ipsi = -rng.uniform(0.3, 1.0, n_cells)[:, None] * _gamma_bump(
        n_lags, latency + rng.uniform(0.5, 2.0, n_cells), shape)
    strfs = np.stack([contra, ipsi], axis=1)
    strfs /= np.linalg.norm(strfs.reshape(n_cells, -1), axis=1)[:, None, None]
    decay = np.exp(-np.arange(n_lags) / (0.3 * n_lags))
    field = decay * _smooth_noise(rng, (n_cells, 2, n_lags), (0, 0, 1.0))
    field /= np.linalg.norm(field.reshape(n_cells, -1), axis=1)[:, None, None]
    strfs += rng.uniform(0.3, 0.6, n_cells)[:, None, None] * field
    return strfs / np.linalg.norm(strfs.reshape(n_cells, -1), axis=1)[:, None, None]


@validate_params(
    {
        "layout": [StrOptions({"stimuli", "continuous"})],
        "n_neurons": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "n_repeats": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "n_stimuli": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "n_lags": [Interval(numbers.Integral, 1, 120, closed="both")],
        "rate_hz": [Interval(numbers.Real, 0, None, closed="neither"), "array-like", None],
        "snr": [Interval(numbers.Real, 0, None, closed="neither"), "array-like", None],
        "nonlinearity": [StrOptions({"relu", "exp", "softplus", "threshold-power", "adaptation"})],
        "preceding": [StrOptions({"silence", "previous", "background"})],
        "random_state": ["random_state", np.random.Generator],
    },
    prefer_skip_nested_validation=True,
)
def make_realistic_dataset(
    layout: str = "stimuli",
    n_neurons: int | None = None,
    n_repeats: int | None = None,
    *,
    n_stimuli: int | None = None,
    n_lags: int = 20,
    rate_hz: float | tuple[float, float] | None = None,
    snr: float | tuple[float, float] | None = None,
    nonlinearity: str = "softplus",
    preceding: str = "silence",
    random_state: None | int | np.random.RandomState | np.random.Generator = None,
) -> Bunch:
    """Simulate recordings like real ones: songs with a log floor, or one continuous recording.

    Where :func:`make_strf_dataset` makes clean data of the size of NS1 (Gaussian-sum STRFs,
    every band informative, high signal-to-noise ratio), this generator reproduces what real
    cells look like (DESIGN notes, section 9; issue 12), so that estimators are tested where
    they fail.

    ``layout="stimuli"``: a zebra finch field L cell. 20 song-like sounds of 1.2-2.5 s
    (harmonic stacks, noisy syllables and whistles, sung as repeated motifs with gaps) as
    32 log-mel bands from 100 Hz to 10 kHz at 5 ms, NaN-padded at the end. The 6 lowest bands
    hold no song, only background noise far below the log's floor: their standard deviation
    over time is 1e-7 to 1e-3 against about 1 in the loud bands. 10 trials; about 10
    spikes/s (0.05 spikes per frame); onset-dominated STRFs with irregular excitatory and
    inhibitory lobes (not sums of Gaussians); a signal-to-noise ratio at which a ridge STRF
    with its penalty picked in hindsight reaches a test cc_norm of about 0.5, at the top of
    the 0.35-0.5 the best linear models reach on real cells.

    ``layout="continuous"``: five A1 units recorded together during one 7 s stimulus
    presented 20 times: contra and ipsi log envelopes of binaural sound events at 10 ms,
    ``X`` of shape (700, 2) and ``y`` of shape (700, 5, 20); contra-excitatory,
    ipsi-inhibitory onset STRFs; rates 2-15 spikes/s and signal-to-noise ratios that differ
    tenfold between units.

    See the user guide section "Realistic data" for the construction.

    Parameters
    ----------
    layout : {"stimuli", "continuous"}, default="stimuli"
        A set of songs, or one continuous recording (the two layouts of the data contract).
    n_neurons : int or None, default=None
        Number of neurons: 1 for "stimuli", 5 for "continuous" when None.
    n_repeats : int or None, default=None
        Trials per stimulus: 10 for "stimuli", 20 for "continuous" when None.
    n_stimuli : int or None, default=None
        Number of songs ("stimuli" only; 20 when None).
    n_lags : int, default=20
        Temporal extent of the true STRFs in frames (100 ms of songs, 200 ms of the
        continuous recording); at most 120.
    rate_hz : float, (float, float) or None, default=None
        Mean firing rate in spikes/s, one value or a (low, high) range drawn log-uniformly per
        neuron; None: 10 ("stimuli") or (2, 15) ("continuous").
    snr : float, (float, float) or None, default=None
        Single-trial signal-to-noise ratio ``var(rate) / mean(rate)`` over frames (see
        :func:`make_strf_dataset`), one value or a (low, high) range drawn log-uniformly per
        neuron; None: 0.6 ("stimuli") or (0.2, 2) ("continuous").
    nonlinearity : {"softplus", "relu", "exp", "threshold-power", "adaptation"}, \
default="softplus"
        Output from drive ``z`` (intercept plus STRF drive) to rate; responses are Poisson
        spike counts. ``"softplus"`` ``log(1 + exp(z))`` is exactly the LN model of
        :class:`~skstrf.STRFRegressor` (``nonlinearity="softplus"``, ``loss="poisson"``),
        so it favours that model by construction; the last two are not in any
        estimator's family. ``"threshold-power"``: ``max(z, 0) ** 2``, no spikes at all
        below threshold and an expansive power law above it (Miller & Troyer 2002;
        Priebe et al. 2004). ``"adaptation"``: spike-rate adaptation after a softplus,
        ``r_t = f_t / (1 + 2 A_t / m)`` with ``f = softplus(z)``, ``A_t`` the exponential
        average (time constant 150 ms) of ``f`` before frame ``t`` and ``m`` the mean of
        ``f``: a sustained sound settles at about a third of its onset rate, and the
        response depends on what was heard hundreds of ms earlier (the adaptation state
        builds up over 450 ms of sound heard before each stimulus, which ``history``
        holds).
    preceding : {"silence", "previous", "background"}, default="silence"
        What the cells heard before each stimulus (``history``). ``"silence"``: the
        recording's background noise alone (a model whose history is silence is then
        right). ``"previous"``: the end of another stimulus, presented back to back (songs
        in a random order, ``order``; the first heard silence; songs end with 50 ms of
        quiet, so their last syllable reaches only the longer lags); a continuous recording
        is presented in a loop, so its own end comes first. ``"background"``: an ongoing
        background noise 15 dB below the loud syllables (songs) or events, with a slowly
        wandering level, heard before AND during every stimulus (it is in ``X``): the
        level at rest is then that of the background, near the average level of ``X``.
    random_state : None, int, numpy.random.RandomState or numpy.random.Generator, default=None
        Seed. Stimuli, cells (rates, SNRs, STRFs), stimulus lengths and spikes use
        independent streams.

    Returns
    -------
    data : sklearn.utils.Bunch
        With the fields of :func:`make_strf_dataset`:

        X : ndarray of shape (n_stimuli, n_times, 32) or (700, 2)
            Log power (``log10``): songs' log-mel spectrograms, NaN on padded frames; or the
            contra (column 0) and ipsi (column 1) envelopes.
        y : ndarray of shape (n_stimuli, n_times, n_neurons, n_repeats) or \
(700, n_neurons, n_repeats)
            Spike counts per frame; NaN on padded frames.
        rates : ndarray of shape (n_stimuli, n_times, n_neurons) or (700, n_neurons)
            Expected counts: ``nonlinearity(drive)``, or with adaptation its adapted rate.
        strfs : ndarray of shape (n_neurons, 32, n_lags) or (n_neurons, 2, n_lags)
            True STRFs, lag 0 first, weighing ``X`` as in :func:`make_strf_dataset`.
        intercepts : ndarray of shape (n_neurons,)
            Intercepts of the drive.
        rate_hz, snr : ndarray of shape (n_neurons,)
            Each neuron's targets.
        lengths : ndarray of int of shape (n_stimuli,) or (1,)
            Valid frames of each stimulus.
        train, valid, test : ndarray of int
            Stimuli (or, for "continuous", frames: three contiguous blocks) of the seed's
            70 / 15 / 15 split.
        freqs : ndarray of shape (32,) or None
            Band centre frequencies in Hz, evenly spaced on the mel scale; None for
            "continuous".
        channels : ndarray of str of shape (2,)
            Only for "continuous": ``["contra", "ipsi"]``.
        silent_bands : ndarray of int
            Bands that carry no sound, only the noise floor (empty for "continuous").
        history : ndarray of shape (n_stimuli, n_history, n_freqs) or (n_history, 2)
            What the cells heard before each stimulus (before the recording), in X's
            units (see ``preceding``); ``n_history = n_lags - 1``, plus 90 frames (songs)
            or 45 (continuous) of adaptation warm-up with ``nonlinearity="adaptation"``.
            The rates are computed from the drive of the STRFs over ``history`` followed
            by the stimulus.
        silence : ndarray of shape (n_freqs,) or (2,)
            The mean level of the background at rest in each band (column), in X's units:
            the recording's noise floor; with ``preceding="background"`` the floor plus
            the ongoing background, estimated from ``history``. A quantity only the
            generator knows: a benchmark that subtracts it uses information no user has.
            Zero in X's units is louder than nearly every frame (log power of a loud
            syllable's peak), so a model whose history before each stimulus is zero sees
            a step down at every stimulus start.
        preceding : str
            The option used.
        order : ndarray of int of shape (n_stimuli,)
            Only with ``preceding="previous"`` and songs: the presentation order.
        mean_static : ndarray of shape (n_neurons,)
            Only with ``nonlinearity="adaptation"``: ``m``, the mean static output.
        dt_ms : float
            5.0 or 10.0.
        layout, nonlinearity, noise : str
            The options used (``noise`` is "poisson").
        DESCR : str
            A description of the dataset.

    See Also
    --------
    make_strf_dataset : Clean NS1-sized data with Gaussian-sum STRFs.

    Examples
    --------
    >>> from skstrf.datasets import make_realistic_dataset
    >>> data = make_realistic_dataset(random_state=0)
    >>> data.X.shape[0], data.X.shape[2], data.y.shape[2:], data.strfs.shape
    (20, 32, (1, 10), (1, 32, 20))
    >>> cont = make_realistic_dataset("continuous", random_state=0)
    >>> cont.X.shape, cont.y.shape
    ((700, 2), (700, 5, 20))
    """
    continuous = layout == "continuous"
    if continuous and n_stimuli is not None:
        raise ValueError("n_stimuli applies to layout='stimuli' only; one continuous "
                         f"recording has no stimuli to count (got n_stimuli={n_stimuli})")
    default_neurons, default_repeats, default_rate, default_snr = _REALISTIC_DEFAULTS[layout]
    n_neurons = default_neurons if n_neurons is None else int(n_neurons)
    n_repeats = default_repeats if n_repeats is None else int(n_repeats)
    rng = _as_generator(random_state)
    stim_rng, cell_rng, length_rng, noise_rng = (
        np.random.default_rng(seed) for seed in rng.integers(0, 2**63 - 1, size=4)
    )
    # The ongoing background has its own stream, drawn only when used, so that the other
    # options' data (and a Generator passed in) are as they were without it.
    ongoing_rng = (np.random.default_rng(rng.integers(0, 2**63 - 1))
                   if preceding == "background" else None)
    target_rate_hz = _per_neuron_values(
        "rate_hz", default_rate if rate_hz is None else rate_hz, n_neurons, cell_rng)
    target_snr = _per_neuron_values("snr", default_snr if snr is None else snr, n_neurons,
                                    cell_rng)
    adapting = nonlinearity == "adaptation"
    dt_ms = _CONTINUOUS_DT_MS if continuous else 5.0
    # Frames heard before each stimulus: the STRF's reach, plus the adaptation's warm-up.
    n_warmup = _adaptation_frames(dt_ms) if adapting else 0
    n_history = n_lags - 1 + n_warmup
    if continuous:
        n_times = int(round(_CONTINUOUS_DURATION_S * 1000.0 / dt_ms))
        lengths = np.array([n_times])
        ongoing = (None if ongoing_rng is None else
                   _ongoing_power(ongoing_rng, (1, n_history + n_times, 2), dt_ms, np.ones(2, bool)))
        X = _binaural_envelopes(stim_rng, n_times, dt_ms,
                                None if ongoing is None else ongoing[0, n_history:])[np.newaxis]
        unit_strfs = _binaural_strfs(cell_rng, n_neurons, n_lags)
        freqs, silent = None, np.array([], dtype=int)
        background, floor = np.full(2, _BACKGROUND_POWER), 0.0
    else:
        n_stimuli = 20 if n_stimuli is None else int(n_stimuli)
        low, high = (round(s * 1000.0 / dt_ms) for s in _SONG_DURATION_S)
        lengths = length_rng.integers(low, high + 1, n_stimuli)
        freqs = mel_centre_frequencies(32, _SONG_FREQ_RANGE_HZ)
        loud = np.arange(freqs.size) >= _N_SILENT_BANDS
        ongoing = (None if ongoing_rng is None else
                   _ongoing_power(ongoing_rng, (n_stimuli, n_history + int(lengths.max()), freqs.size),
                                  dt_ms, loud))
        X = _song_spectrograms(stim_rng, lengths, freqs, dt_ms,
                               None if ongoing is None else ongoing[:, n_history:])
        unit_strfs = _song_strfs(cell_rng, n_neurons, freqs.size, n_lags, _N_SILENT_BANDS)
        silent = np.arange(_N_SILENT_BANDS)
        background, floor = _song_background(freqs.size), _LOG_FLOOR

    # What the cells heard before each stimulus, drawn after X (so X does not depend on
    # n_lags). "silence": background noise only; zero in X's units would be a sound louder
    # than any in the data (log power), and every stimulus would start with a step down.
    # "background": that noise plus the ongoing background, which goes on into the
    # stimulus. "previous": the end of the stimulus presented just before, back to back.
    quiet_power = background * stim_rng.exponential(1.0, (X.shape[0], n_history, X.shape[2]))
    extra = {}
    if preceding == "previous":
        if continuous:  # the recording presented in a loop: its own end comes before it
            history = X[:, X.shape[1] - n_history:].copy()
        else:
            order = stim_rng.permutation(X.shape[0])
            sequence = np.concatenate([np.log10(floor + quiet_power[0])]
                                      + [X[s, : lengths[s]] for s in order])
            onsets = n_history + np.concatenate([[0], np.cumsum(lengths[order])[:-1]])
            history = np.empty((X.shape[0], n_history, X.shape[2]))
            for s, onset in zip(order, onsets):
                history[s] = sequence[onset - n_history: onset]
            extra["order"] = order
    elif preceding == "background":
        history = np.log10(floor + quiet_power + ongoing[:, :n_history])
    else:
        history = np.log10(floor + quiet_power)
    if preceding == "background":
        # The mean level at rest now includes the ongoing background: estimated from the
        # frames heard before the stimuli (no closed form for the sum of both noises).
        silence = history.reshape(-1, X.shape[2]).mean(axis=0)
    else:
        silence = _mean_log_background(background, floor)
    mean_rate = target_rate_hz * dt_ms / 1000.0
    full_drive = _true_drive(np.concatenate([history, X], axis=1), unit_strfs, np.zeros(n_neurons))
    if adapting:
        # The adaptation state builds up over the warm-up frames, whose drive is complete
        # (they come after the first n_lags - 1 frames of the history).
        gain, intercepts, mean_static, rates = _scale_adapted_to_targets(
            full_drive[:, n_lags - 1:], n_warmup, dt_ms, mean_rate, target_snr * mean_rate)
        extra["mean_static"] = mean_static
    else:
        unit_drive = full_drive[:, n_history:]
        gain, intercepts = _scale_to_targets(unit_drive, nonlinearity, mean_rate, target_snr * mean_rate)
        rates = _apply_nonlinearity(intercepts + gain * unit_drive, nonlinearity)
    strfs = unit_strfs * gain[:, None, None]
    y = _poisson_repeats(noise_rng, rates, n_repeats)
    y[np.isnan(rates)] = np.nan
    train, valid, test = _split_indices(X.shape[1] if continuous else X.shape[0])
    if continuous:
        X, y, rates, history = X[0], y[0], rates[0], history[0]
        extra["channels"] = np.array(["contra", "ipsi"])
        what = (f"one continuous recording of {X.shape[0]} frames of {dt_ms:g} ms (7 s), "
                "contra and ipsi log envelopes of binaural sound events, EI onset STRFs")
        unit = "frames"
    else:
        what = (f"{X.shape[0]} songs of {lengths.min() * dt_ms / 1000:.2f}-"
                f"{lengths.max() * dt_ms / 1000:.2f} s (NaN-padded) x 32 log-mel bands "
                f"(100 Hz-10 kHz; bands 0-{_N_SILENT_BANDS - 1} at the noise floor), "
                "onset-dominated STRFs with irregular lobes")
        unit = "stimuli"
    heard = {"silence": "background noise (silence)",
             "previous": "the end of the previous stimulus",
             "background": "an ongoing background that continues into the stimulus"}[preceding]
    output = ("softplus output with spike-rate adaptation" if adapting
              else f"{nonlinearity} output")
    descr = (
        f"Realistic STRF dataset ({layout}): {what}; {n_neurons} neurons, {n_lags} lags, "
        f"{output}, Poisson spikes, {n_repeats} repeats; before each stimulus the cells heard "
        f"{heard}; rate "
        f"{target_rate_hz.min():.1f}-{target_rate_hz.max():.1f} spikes/s, single-trial SNR "
        f"{target_snr.min():.3f}-{target_snr.max():.3f}. Split: {train.size} train / "
        f"{valid.size} valid / {test.size} test {unit}."
    )
    return Bunch(
        X=X, y=y, rates=rates, strfs=strfs, intercepts=intercepts, rate_hz=target_rate_hz,
        snr=target_snr, lengths=lengths, train=train, valid=valid, test=test, freqs=freqs,
        silent_bands=silent, silence=silence, history=history, dt_ms=float(dt_ms), layout=layout,
        nonlinearity=nonlinearity, noise="poisson", preceding=preceding, DESCR=descr, **extra,
    )
