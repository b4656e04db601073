"""Adaptation front ends applied to the spectrogram before the STRF: AdapTrans and IC adaptation."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

__all__ = [
    "AdapTrans",
    "ICAdaptation",
    "PREFILTERS",
    "make_prefilter",
    "mel_centre_frequencies",
    "willmore_tau_ms",
    "adaptation_taps",
    "causal_filter",
    "default_n_taps",
    "hz_to_mel",
    "mel_to_hz",
]

# Willmore et al. (2016): midbrain adaptation time constant tau(CF) = 500 - 105 log10(CF) ms.
_TAU_INTERCEPT_MS = 500.0
_TAU_SLOPE_MS = 105.0
# The taps cover about this many time constants of the slowest band.
_N_TIME_CONSTANTS = 3.0
_W_INIT = 0.75
# Bounds that keep a = exp(-dt / tau) and w strictly inside (0, 1) in float32 arithmetic,
# where exp and sigmoid otherwise round to exactly 0 or 1 at extreme parameter values.
_TAU_MIN_FRAMES = 0.02
_TAU_MAX_FRAMES = 1e5
_W_MARGIN = 1e-4
# At most this many taps per adaptation filter: 5 ms frames need ~130, 0.1 ms frames
# ~6500. More means a frame duration given in the wrong unit (seconds for ms).
_MAX_TAPS = 10_000


def hz_to_mel(f_hz: np.ndarray | float) -> np.ndarray:
    """Mel value of a frequency in Hz (O'Shaughnessy's formula ``2595 log10(1 + f / 700)``)."""
    return 2595.0 * np.log10(1.0 + np.asarray(f_hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    """Frequency in Hz of a mel value; the inverse of :func:`hz_to_mel`."""
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_centre_frequencies(n_freqs: int, freq_range: Sequence[float] = (500.0, 20000.0)) -> np.ndarray:
    """Band centre frequencies evenly spaced on the mel scale, both ends included.

    Parameters
    ----------
    n_freqs : int
        Number of bands.
    freq_range : (float, float), default=(500.0, 20000.0)
        Centre frequencies of the lowest and the highest band, in Hz.

    Returns
    -------
    cf : ndarray of shape (n_freqs,)
        Centre frequencies in Hz, increasing.
    """
    low, high = check_freq_range(freq_range)
    return mel_to_hz(np.linspace(hz_to_mel(low), hz_to_mel(high), n_freqs))


def willmore_tau_ms(cf_hz: np.ndarray, dt_ms: float = 5.0) -> np.ndarray:
    """Adaptation time constant of each band, ``500 - 105 log10(CF)`` ms (Willmore et al. 2016).

    The formula reaches zero near 57.6 kHz; values are floored at ``dt_ms`` so that every band
    keeps a time constant of at least one frame.

    Parameters
    ----------
    cf_hz : ndarray of shape (n_freqs,)
        Band centre frequencies in Hz.
    dt_ms : float, default=5.0
        Frame duration in ms (the floor).

    Returns
    -------
    tau_ms : ndarray of shape (n_freqs,)
    """
    tau = _TAU_INTERCEPT_MS - _TAU_SLOPE_MS * np.log10(np.asarray(cf_hz, dtype=np.float64))
    return np.maximum(tau, dt_ms)


def default_n_taps(tau_ms: np.ndarray, dt_ms: float) -> int:
    """Number of taps ``K`` covering three time constants of the slowest band: ``ceil(3 max(tau) / dt) + 1``."""
    return int(math.ceil(_N_TIME_CONSTANTS * float(np.max(tau_ms)) / dt_ms)) + 1


def adaptation_taps(a: torch.Tensor, w: torch.Tensor, n_taps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """ON and OFF filter taps of every band (Rançon, Masquelier & Cottereau 2024).

    With ``C = 1 / sum_{j=0}^{K-2} a^j``, lag ``k = 0`` the current frame:
    ON ``h[0] = 1``, ``h[k] = -w C a^(k-1)``; OFF ``h[0] = -w``, ``h[k] = C a^(k-1)`` for
    ``k >= 1``. The ON filter is the present minus ``w`` times an exponential average of the
    recent past, the OFF filter that average minus ``w`` times the present; the past taps of
    each sum to ``-w`` and ``1`` respectively, whatever ``a``.

    Parameters
    ----------
    a : Tensor of shape (n_bands,)
        Decay per frame of each band's exponential average, in (0, 1).
    w : Tensor of shape (n_bands,)
        Weight of the subtracted term, in (0, 1).
    n_taps : int
        Filter length ``K`` (at least 2).

    Returns
    -------
    on, off : Tensor of shape (n_bands, n_taps)
        Taps, lag 0 first.
    """
    powers = a[:, None] ** torch.arange(n_taps - 1, dtype=a.dtype, device=a.device)  # a^(k-1), k >= 1
    past = powers / powers.sum(dim=1, keepdim=True)
    one = torch.ones_like(a)[:, None]
    on = torch.cat([one, -w[:, None] * past], dim=1)
    off = torch.cat([-w[:, None], past], dim=1)
    return on, off


def causal_filter(X: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Filter each band of each stimulus causally, repeating the first frame into the past.

    Parameters
    ----------
    X : Tensor of shape (n_stimuli, n_times, n_bands)
        Stimuli.
    taps : Tensor of shape (n_bands, n_taps)
        One filter per band, lag 0 first.

    Returns
    -------
    Tensor of shape (n_stimuli, n_times, n_bands)
        ``out[s, t, f] = sum_k taps[f, k] * X[s, max(t - k, 0), f]``.
    """
    n_times = X.shape[1]
    n_taps = taps.shape[1]
    x = X.transpose(1, 2)  # (S, F, T): filter along the last axis
    # Repeating the first frame makes a stimulus look as if it had always sounded like its
    # onset: an adapting filter then starts adapted instead of seeing a step from silence.
    x = nn.functional.pad(x, (n_taps - 1, 0), mode="replicate")
    # FFT convolution: the taps are long (three time constants, ~130 frames at 5 ms), where
    # a grouped conv1d is slow on CPU, above all its backward pass. Outputs K-1.. of a
    # circular convolution of length >= T + K - 1 never wrap around.
    n = x.shape[-1]
    spectrum = torch.fft.rfft(x, n=n) * torch.fft.rfft(taps, n=n)
    out = torch.fft.irfft(spectrum, n=n)[..., n_taps - 1 : n_taps - 1 + n_times]
    return out.transpose(1, 2)


class _AdaptationFilter(nn.Module):
    """Per-band ON (and OFF) adaptation filters; see :class:`AdapTrans` and :class:`ICAdaptation`.

    Time constants are held as ``log(tau_ms)``, clamped to ``[0.02, 1e5]`` frames, so that
    ``a = exp(-dt / tau)`` lies in ``[exp(-50), exp(-1e-5)]``, and
    ``w = 1e-4 + (1 - 2e-4) sigmoid(w_logit)``: both strictly inside (0, 1) whatever the
    parameters' values, even in float32.
    """

    channel_names: tuple[str, ...] = ("ON",)
    rectify: bool = False

    def __init__(self, n_freqs: int, *, dt_ms: float = 5.0,
                 freq_range: Sequence[float] = (500.0, 20000.0), w_init: float = _W_INIT,
                 n_taps: int | None = None, learnable: bool = True) -> None:
        super().__init__()
        if n_taps is None:
            check_dt_ms(dt_ms, freq_range)
        elif not (isinstance(dt_ms, numbers.Real) and math.isfinite(dt_ms) and dt_ms > 0):
            raise ValueError(f"dt_ms must be a positive number of milliseconds; got {dt_ms!r}")
        if not _W_MARGIN < w_init < 1.0 - _W_MARGIN:
            raise ValueError(f"w_init must lie in ({_W_MARGIN:g}, {1 - _W_MARGIN:g}); got {w_init!r}")
        self.n_freqs = int(n_freqs)
        self.dt_ms = float(dt_ms)
        self.freq_range = check_freq_range(freq_range)
        centre = mel_centre_frequencies(n_freqs, self.freq_range)
        tau = willmore_tau_ms(centre, self.dt_ms)
        self.n_taps = default_n_taps(tau, self.dt_ms) if n_taps is None else int(n_taps)
        if self.n_taps < 2:
            raise ValueError(f"n_taps must be at least 2; got {n_taps!r}")
        n_channels = len(self.channel_names)
        log_tau = torch.log(torch.as_tensor(tau, dtype=torch.float32)).repeat(n_channels, 1)
        w_logit = torch.full((n_freqs,), float(_w_to_logit(w_init)))
        self.register_buffer("centre_freqs", torch.as_tensor(centre, dtype=torch.float32))
        if learnable:
            self.log_tau = nn.Parameter(log_tau)
            self.w_logit = nn.Parameter(w_logit)
        else:
            self.register_buffer("log_tau", log_tau)
            self.register_buffer("w_logit", w_logit)

    @property
    def n_channels(self) -> int:
        return len(self.channel_names)

    #: Whether the filter is a fixed, unrectified linear map of the stimulus, whose output
    #: then stands for the stimulus in a linear model (closed-form solvers included).
    linear_map = False

    @property
    def is_linear(self) -> bool:
        """True for a fixed, unrectified filter: a linear map of the stimulus that never changes."""
        return type(self).linear_map

    @property
    def tau_ms(self) -> torch.Tensor:
        """Adaptation time constants in ms, shape (n_channels, n_freqs)."""
        return self.log_tau.exp().clamp(_TAU_MIN_FRAMES * self.dt_ms, _TAU_MAX_FRAMES * self.dt_ms)

    @property
    def a(self) -> torch.Tensor:
        """Decay per frame ``exp(-dt / tau)``, shape (n_channels, n_freqs)."""
        return torch.exp(-self.dt_ms / self.tau_ms)

    @property
    def w(self) -> torch.Tensor:
        """Weight of the subtracted term, shape (n_freqs,)."""
        return _W_MARGIN + (1.0 - 2.0 * _W_MARGIN) * torch.sigmoid(self.w_logit)

    @torch.no_grad()
    def set_parameters_(self, tau_ms: np.ndarray, w: np.ndarray) -> "_AdaptationFilter":
        """Set the time constants (n_channels, n_freqs) in ms and ``w`` (n_freqs,)."""
        tau_ms = torch.as_tensor(np.asarray(tau_ms, dtype=np.float64)).reshape(self.log_tau.shape)
        w = torch.as_tensor(np.asarray(w, dtype=np.float64)).reshape(self.w_logit.shape)
        if not (bool(torch.all(tau_ms > 0)) and bool(torch.all((w > _W_MARGIN) & (w < 1 - _W_MARGIN)))):
            raise ValueError(
                f"time constants must be positive and w must lie in ({_W_MARGIN:g}, {1 - _W_MARGIN:g})"
            )
        self.log_tau.copy_(tau_ms.log())
        self.w_logit.copy_(torch.as_tensor(_w_to_logit(w.numpy())))
        return self

    def taps(self) -> torch.Tensor:
        """Filter taps, shape (n_channels, n_freqs, n_taps), lag 0 first."""
        a, w = self.a, self.w
        on, _ = adaptation_taps(a[0], w, self.n_taps)
        if self.n_channels == 1:
            return on[None]
        _, off = adaptation_taps(a[1], w, self.n_taps)
        return torch.stack([on, off])

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Filter the spectrogram.

        Parameters
        ----------
        X : Tensor of shape (n_stimuli, n_times, n_freqs)
            Stimuli, zero on end-padding frames (the filters are causal, so padding never
            reaches a valid frame).

        Returns
        -------
        Tensor of shape (n_stimuli, n_times, n_channels * n_freqs)
            Channel-major: all bands of channel 0 (ON), then all bands of channel 1 (OFF).
        """
        taps = self.taps().to(X.dtype)
        out = torch.cat([causal_filter(X, taps[c]) for c in range(self.n_channels)], dim=2)
        return torch.relu(out) if self.rectify else out

    def extra_repr(self) -> str:
        return (f"n_freqs={self.n_freqs}, channels={self.channel_names}, dt_ms={self.dt_ms}, "
                f"freq_range={self.freq_range}, n_taps={self.n_taps}")


class AdapTrans(_AdaptationFilter):
    """Learnable ON/OFF adaptation front end (Rançon, Masquelier & Cottereau 2024).

    Each band ``f`` of the spectrogram is filtered causally by an ON filter (the present
    minus ``w_f`` times an exponential average of the past, decay ``a_on,f``) and an OFF
    filter (the exponential average, decay ``a_off,f``, minus ``w_f`` times the present);
    both outputs are half-wave rectified. See :func:`adaptation_taps` for the taps.

    Learnable: the ON and OFF time constants of every band and one ``w`` per band shared by
    ON and OFF (``3 * n_freqs`` parameters, shared by all neurons). Initialisation: band
    centre frequencies evenly spaced on the mel scale over ``freq_range``,
    ``tau_f = 500 - 105 log10(CF_f)`` ms for both channels, ``w = 0.75``.

    Parameters
    ----------
    n_freqs : int
        Number of spectrogram bands.
    dt_ms : float, default=5.0
        Frame duration in ms.
    freq_range : (float, float), default=(500.0, 20000.0)
        Centre frequencies of the lowest and highest band, in Hz.
    w_init : float, default=0.75
        Initial ``w``.
    n_taps : int, default=None
        Filter length; by default three time constants of the slowest band.
    learnable : bool, default=True
        False freezes the time constants and ``w`` (they become buffers).
    """

    channel_names = ("ON", "OFF")
    rectify = True


class ICAdaptation(_AdaptationFilter):
    """Fixed midbrain ("IC") adaptation to the mean sound level (Willmore et al. 2016).

    The ON filter of :class:`AdapTrans` with its initial, frozen parameters and without
    rectification: each band minus ``0.75`` times an exponential average of its recent past
    with time constant ``500 - 105 log10(CF)`` ms. One output channel, no learnable
    parameters.

    Parameters
    ----------
    n_freqs : int
        Number of spectrogram bands.
    dt_ms : float, default=5.0
        Frame duration in ms.
    freq_range : (float, float), default=(500.0, 20000.0)
        Centre frequencies of the lowest and highest band, in Hz.
    w_init : float, default=0.75
        The fixed ``w``.
    n_taps : int, default=None
        Filter length; by default three time constants of the slowest band.
    """

    channel_names = ("ON",)
    rectify = False
    linear_map = True

    def __init__(self, n_freqs: int, *, dt_ms: float = 5.0,
                 freq_range: Sequence[float] = (500.0, 20000.0), w_init: float = _W_INIT,
                 n_taps: int | None = None) -> None:
        super().__init__(n_freqs, dt_ms=dt_ms, freq_range=freq_range, w_init=w_init,
                         n_taps=n_taps, learnable=False)


PREFILTERS = {"adaptrans": AdapTrans, "ic_adaptation": ICAdaptation}


def make_prefilter(name: str | None, n_freqs: int, *, dt_ms: float = 5.0,
                   freq_range: Sequence[float] = (500.0, 20000.0)) -> _AdaptationFilter | None:
    """Build the prefilter named ``name`` ("adaptrans", "ic_adaptation"), or None for None."""
    if name is None:
        return None
    if name not in PREFILTERS:
        raise ValueError(f"unknown prefilter {name!r}; expected None or one of {sorted(PREFILTERS)}")
    return PREFILTERS[name](n_freqs, dt_ms=dt_ms, freq_range=freq_range)


def check_dt_ms(dt_ms: float, freq_range: Sequence[float] = (500.0, 20000.0)) -> float:
    """Check that ``dt_ms`` is a plausible frame duration for the adaptation filters.

    The Willmore time constants of the bands (``500 - 105 log10(CF)`` ms, 217 ms at 500 Hz)
    must span at least one frame for the slowest band, and three of them must fit in
    at most 10 000 taps. Both fail only for a frame duration in the wrong unit (e.g.
    seconds typed as ms), which would otherwise clamp the time constants or allocate
    filters of millions of taps.

    Returns
    -------
    dt_ms : float
    """
    if isinstance(dt_ms, bool) or not (isinstance(dt_ms, numbers.Real) and math.isfinite(dt_ms) and dt_ms > 0):
        raise ValueError(f"dt_ms must be a positive number of milliseconds; got {dt_ms!r}")
    low, _ = check_freq_range(freq_range)
    slowest = float(_TAU_INTERCEPT_MS - _TAU_SLOPE_MS * math.log10(low))
    if slowest < dt_ms:
        raise ValueError(
            f"dt_ms={dt_ms!r}: the slowest adaptation time constant ({slowest:.4g} ms, the "
            f"band at {low:g} Hz) is shorter than one frame, so the prefilter cannot adapt. "
            "dt_ms is the frame duration in milliseconds (5.0 for 5 ms frames)."
        )
    n_taps = default_n_taps(np.array([slowest]), float(dt_ms))
    if n_taps > _MAX_TAPS:
        raise ValueError(
            f"dt_ms={dt_ms!r} gives adaptation filters of {n_taps} taps (three time constants of "
            f"up to {slowest:.4g} ms), more than {_MAX_TAPS}: dt_ms is the frame duration in "
            "milliseconds (5.0 for 5 ms frames; was it given in seconds?)."
        )
    return float(dt_ms)


def _w_to_logit(w):
    """Inverse of ``w = margin + (1 - 2 margin) sigmoid(logit)``."""
    p = (np.asarray(w, dtype=np.float64) - _W_MARGIN) / (1.0 - 2.0 * _W_MARGIN)
    return np.log(p / (1.0 - p))


def check_freq_range(freq_range: Sequence[float]) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in freq_range)
    except (TypeError, ValueError):
        raise ValueError(
            f"freq_range must be a pair (lowest, highest) of band centre frequencies in Hz; got {freq_range!r}"
        ) from None
    if not (0.0 < low < high < math.inf):
        raise ValueError(
            f"freq_range must satisfy 0 < lowest < highest < inf (Hz); got {freq_range!r}"
        )
    return low, high
