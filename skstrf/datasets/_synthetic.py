"""Synthetic STRF datasets: 1/f spectrogram-like stimuli and Poisson responses of known STRFs."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Callable

import numpy as np
import scipy.fft
from numpy.polynomial.hermite_e import hermegauss
from sklearn.utils import Bunch, check_random_state

__all__ = ["make_strf_dataset"]

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
# Fractions of the seed's 14 / 3 / 3 NS1 split given to validation and test.
_HELD_OUT_FRACTION = 0.15


# --------------------------------------------------------------------------------------
# The linear model that defines the ground truth
# --------------------------------------------------------------------------------------
def _lagged_design(X: np.ndarray, n_lags: int) -> np.ndarray:
    """Causal lagged copies of each stimulus (the package's one lag function, in numpy).

    ``Z[s, t, f, k] = X[s, t - k, f]`` for ``t >= k`` and 0 otherwise; see
    :func:`skstrf.model.lagged_design`.
    """
    import torch

    from ..model import lagged_design

    return lagged_design(torch.from_numpy(np.ascontiguousarray(X)), n_lags).numpy()


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
    Z = _lagged_design(X, n_lags)
    # One matrix product over all frames of all stimuli: (S*T, F*L) @ (F*L, N).
    drive = Z.reshape(-1, n_freqs * n_lags) @ strfs.reshape(n_neurons, -1).T
    drive = drive.reshape(X.shape[0], X.shape[1], n_neurons) + intercepts
    return drive[0] if single else drive


def _softplus(z: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):  # NaN on padded frames stays NaN, silently
        return np.logaddexp(0.0, z)


def _relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0.0)


_NONLINEARITY_FUNCS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": _relu,
    "exp": np.exp,
    "softplus": _softplus,
    "identity": lambda z: z,
}


def _apply_nonlinearity(drive: np.ndarray, nonlinearity: str) -> np.ndarray:
    """Expected response (spikes per frame) from the drive: ``nonlinearity(drive)``.

    Parameters
    ----------
    drive : ndarray of any shape
        Linear drive.
    nonlinearity : {"relu", "exp", "softplus", "identity"}
        ``max(z, 0)``, ``exp(z)``, ``log(1 + exp(z))`` or ``z``.

    Returns
    -------
    rates : ndarray of the same shape as ``drive``
    """
    return _NONLINEARITY_FUNCS[nonlinearity](drive)


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

    Validation and test each get ``round(0.15 * n_stimuli)`` stimuli (at least one when
    ``n_stimuli >= 3``); training gets the rest, first.

    Returns
    -------
    train, valid, test : ndarray of int
    """
    n_held = int(np.floor(_HELD_OUT_FRACTION * n_stimuli + 0.5))
    if n_stimuli >= 3:
        n_held = max(n_held, 1)
    n_train = n_stimuli - 2 * n_held
    idx = np.arange(n_stimuli)
    return idx[:n_train], idx[n_train : n_train + n_held], idx[n_train + n_held :]


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------
def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


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
    prefilter : {None, "onoff"}, default=None
        ``"onoff"``: the STRFs see the stimulus through ON and OFF adaptation channels
        (:class:`skstrf.prefilters.AdapTrans`, rectified, each band's time constant
        ``500 - 105 log10(CF)`` ms for both channels and ``w = 0.75``), so every true STRF
        has two channels and ``strfs`` has shape (n_neurons, 2, n_freqs, n_lags), channel 0
        ON. Uses torch.
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
            ``prefilter="onoff"``: (n_neurons, 2, n_freqs, n_lags), weighing the ON
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
            Only with ``prefilter="onoff"``: the true adaptation time constants (ON, OFF) in
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
    n_stimuli = _check_positive_int("n_stimuli", n_stimuli)
    n_times = _check_positive_int("n_times", n_times)
    n_freqs = _check_positive_int("n_freqs", n_freqs)
    n_neurons = _check_positive_int("n_neurons", n_neurons)
    n_repeats = _check_positive_int("n_repeats", n_repeats)
    n_lags = _check_positive_int("n_lags", n_lags)
    if n_lags > n_times:
        raise ValueError(f"n_lags must be at most n_times={n_times}; got n_lags={n_lags}")
    if not isinstance(dt_ms, numbers.Real) or isinstance(dt_ms, bool) or not 0 < dt_ms < np.inf:
        raise ValueError(f"dt_ms must be a positive number of milliseconds; got {dt_ms!r}")
    if isinstance(kinds, str):
        kinds = (kinds,)
    kinds = tuple(kinds)
    unknown = [k for k in kinds if k not in KINDS]
    if not kinds or unknown:
        raise ValueError(f"kinds must be a non-empty sequence of {KINDS}; got {kinds!r}")
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"nonlinearity must be one of {NONLINEARITIES}; got {nonlinearity!r}")
    if noise not in NOISES:
        raise ValueError(f"noise must be one of {NOISES}; got {noise!r}")
    if nonlinearity == "identity" and noise == "poisson":
        raise ValueError(
            "nonlinearity='identity' gives negative rates, which Poisson noise cannot have; "
            "use noise='gaussian' (the linear-Gaussian model) or a rectifying nonlinearity"
        )
    if prefilter not in (None, "onoff"):
        raise ValueError(f"prefilter must be None or 'onoff'; got {prefilter!r}")
    if not isinstance(missing_repeats, numbers.Real) or not 0.0 <= missing_repeats < 1.0:
        raise ValueError(
            f"missing_repeats must be a probability in [0, 1); got {missing_repeats!r}"
        )
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
    if prefilter == "onoff":
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
    """ON and OFF adaptation channels of the stimuli (AdapTrans with its initial parameters).

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
    import torch

    from ..prefilters import AdapTrans, default_n_taps, willmore_tau_ms

    tau = np.vstack([willmore_tau_ms(freqs, dt_ms)] * 2)
    weight = np.full(freqs.shape, 0.75)
    module = AdapTrans(freqs.size, dt_ms=dt_ms, n_taps=default_n_taps(tau, dt_ms), learnable=False)
    module.set_parameters_(tau, weight)
    padded = np.isnan(X[..., 0])
    with torch.no_grad():
        # Padding is at the end and the filters are causal: zeros there reach no valid frame.
        out = module(torch.as_tensor(np.nan_to_num(X), dtype=torch.float64)).numpy()
    out[padded] = np.nan
    return out, {"adaptation_tau_ms": tau, "adaptation_weight": weight}
