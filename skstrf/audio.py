"""Sound in: a causal log-mel spectrogram of waveforms, as the first step of a pipeline."""

from __future__ import annotations

import importlib
import numbers
import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

__all__ = ["LogSpectrogram"]

# Relative tolerance of the frame arithmetic: a product such as 3 * (16000 * 0.1 / 1000)
# comes out as 4.800000000000001 in floating point, and must count as 4.8 samples, not be
# rounded up a whole sample (or a duration of 0.015 s as 3 frames of 5 ms, not 2).
_REL_TOL = 1e-9
# Samples gathered per block of frames (float64: 32 MB), so long recordings are framed in
# pieces instead of all at once.
_BLOCK_SAMPLES = 1 << 22
_EXTRA_HINT = 'pip install "skstrf[audio]"'


def _require_librosa(what: str) -> Any:
    """Import and return librosa, or raise an ImportError naming the optional extra."""
    try:
        return importlib.import_module("librosa")
    except ImportError as exc:
        raise ImportError(
            f"{what} needs librosa, an optional dependency of skstrf: install it with "
            f"{_EXTRA_HINT}"
        ) from exc


# --------------------------------------------------------------------------------------
# Frame arithmetic: which samples each frame reads.
# --------------------------------------------------------------------------------------
def _whole(x: np.ndarray | float) -> np.ndarray:
    """``floor(x)``, where x within rounding of an integer counts as that integer."""
    x = np.asarray(x, dtype=np.float64)
    return np.floor(x + _REL_TOL * np.maximum(1.0, np.abs(x))).astype(np.int64)


def _frame_ends(n_frames: int, hop: float) -> np.ndarray:
    """End (exclusive) of each frame's time bin, in samples.

    Frame ``t`` is the time bin ``[t * dt, (t + 1) * dt)``; the samples in it are those at
    times ``n / sr`` inside the bin, so it ends before the first sample at or after
    ``(t + 1) * dt``: ``ceil((t + 1) * hop)`` with ``hop = sr * dt`` samples (not an integer
    in general, e.g. 220.5 at 44.1 kHz and 5 ms, and the bins never drift).

    Parameters
    ----------
    n_frames : int
    hop : float
        Samples per frame, ``sr * dt_ms / 1000``.

    Returns
    -------
    ends : ndarray of int of shape (n_frames,)
    """
    x = np.arange(1, n_frames + 1, dtype=np.float64) * hop
    return np.ceil(x - _REL_TOL * np.maximum(1.0, x)).astype(np.int64)


def _window_starts(ends: np.ndarray, n_window: int) -> np.ndarray:
    """First sample of each frame's window: it ends with the frame's bin, or starts at 0.

    A window that would begin before sample 0 is the waveform's first ``n_window`` samples
    instead: nothing before the waveform is assumed (no silence, no reflection).
    """
    return np.maximum(ends - n_window, 0)


def _power_scale(n_fft: int, window: np.ndarray) -> np.ndarray:
    """Factors turning ``|rfft|**2`` of a windowed frame into its one-sided power per bin.

    With them the bins sum to the window-weighted mean square of the frame,
    ``sum(w**2 * x**2) / sum(w**2)`` (Parseval), so a sine of amplitude A sums to A**2 / 2.
    """
    scale = np.full(n_fft // 2 + 1, 2.0)
    scale[0] = 1.0
    if n_fft % 2 == 0:
        scale[-1] = 1.0  # the Nyquist bin has no negative-frequency twin
    return scale / (n_fft * np.sum(window**2))


def _band_power(waves: np.ndarray, n_valid_frames: np.ndarray, starts: np.ndarray, window: np.ndarray,
                n_fft: int, filterbank: np.ndarray) -> np.ndarray:
    """Band power of every valid frame of every waveform; NaN on padding frames.

    Parameters
    ----------
    waves : ndarray of shape (n_stimuli, n_samples)
        Waveforms, NaN-padded at the end (padding is never read).
    n_valid_frames : ndarray of int of shape (n_stimuli,)
        Whole frames of each waveform.
    starts : ndarray of int of shape (n_frames,)
        First sample of each frame's window.
    window : ndarray of shape (n_window,)
    n_fft : int
        FFT length (``>= n_window``; the frame is zero-padded to it).
    filterbank : ndarray of shape (n_bands, n_fft // 2 + 1)

    Returns
    -------
    power : ndarray of shape (n_stimuli, n_frames, n_bands)
        Power in each band, in the waveform's units squared.
    """
    n_frames = starts.size
    mask = np.arange(n_frames) < n_valid_frames[:, None]
    s_idx, t_idx = np.nonzero(mask)
    scale = _power_scale(n_fft, window)
    offsets = np.arange(window.size)
    power = np.full(mask.shape + (filterbank.shape[0],), np.nan)
    block = max(1, _BLOCK_SAMPLES // window.size)
    for lo in range(0, s_idx.size, block):
        s, t = s_idx[lo:lo + block], t_idx[lo:lo + block]
        frames = waves[s[:, None], starts[t][:, None] + offsets] * window
        spectrum = np.fft.rfft(frames, n=n_fft, axis=1)
        bins = (spectrum.real**2 + spectrum.imag**2) * scale
        power[s, t] = bins @ filterbank.T
    return power


# --------------------------------------------------------------------------------------
# Waveform validation
# --------------------------------------------------------------------------------------
def _check_waveforms(X) -> tuple[np.ndarray, np.ndarray, int]:
    """Waveforms as float64 (n_stimuli, n_samples), each one's valid length, and X's ndim.

    NaN is padding at the end of shorter waveforms and nowhere else.
    """
    pad_hint = ("pad shorter waveforms with NaN at the end into one array of shape "
                "(n_stimuli, n_samples), e.g. np.full((len(waves), max(map(len, waves))), "
                "np.nan) filled row by row")
    try:
        X = np.asarray(X)
    except ValueError as exc:  # numpy >= 1.24 refuses ragged nested sequences
        raise ValueError(f"waveforms of different lengths cannot form one array: {pad_hint}.") from exc
    if X.dtype == object:
        raise ValueError(f"X is an array of Python objects (waveforms of different lengths?): {pad_hint}.")
    if X.dtype.kind in "iu":
        raise TypeError(
            f"X has integer dtype {X.dtype}: convert the waveforms to floats in the units the "
            "level reference `ref` is in, e.g. X / 32768 for 16-bit PCM so that full scale "
            "is 1.0 (ref=1.0 then gives dB re full scale), or X times the microphone's "
            "sensitivity for pascals (ref=20e-6 gives dB SPL)."
        )
    if X.dtype.kind != "f":
        raise TypeError(f"X must hold real floating-point waveform samples; got dtype {X.dtype}.")
    x_ndim = X.ndim
    if x_ndim == 1:
        X = X[None, :]
    elif x_ndim != 2:
        raise ValueError(
            f"X has {x_ndim} dimensions with shape {X.shape}; expected waveforms of shape "
            "(n_stimuli, n_samples), or (n_samples,) for one continuous recording (one "
            "channel: average or pick the channels of a multi-channel recording first)."
        )
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"X of shape {X.shape} holds no waveform samples.")
    X = np.asarray(X, dtype=np.float64)
    nan = np.isnan(X)
    bad = np.isinf(X)
    if bad.any():
        s, n = np.argwhere(bad)[0]
        raise ValueError(f"waveform {s} has an infinite value at sample {n}; waveforms must be finite "
                         "(NaN only as padding at the end).")
    lengths = np.where(nan.any(axis=1), nan.argmax(axis=1), X.shape[1])
    inside = ~nan & (np.arange(X.shape[1]) >= lengths[:, None])
    if inside.any():
        s, n = np.argwhere(inside)[0]
        raise ValueError(
            f"waveform {s} has NaN at sample {lengths[s]} but a finite value at sample {n}: "
            "NaN marks padding at the end of shorter waveforms only. Fill gaps inside a "
            "waveform (e.g. by interpolation) before computing its spectrogram."
        )
    return X, lengths, x_ndim


# --------------------------------------------------------------------------------------
# The transformer
# --------------------------------------------------------------------------------------
class LogSpectrogram(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """Causal log-mel spectrogram of waveforms, in dB re a declared level, with a floor.

    The first step of a pipeline from sound to STRF:
    ``make_pipeline(LogSpectrogram(sr=...), STRFRegressor())``. Waveforms of shape
    (n_stimuli, n_samples), NaN-padded at the end when their lengths differ, become
    spectrograms of shape (n_stimuli, n_frames, n_bands), NaN-padded at the end by whole
    frames: the layout of :class:`~skstrf.STRFRegressor`'s ``X``. One continuous recording
    (n_samples,) becomes (n_frames, n_bands).

    **Frames and time alignment.** Frame ``t`` is the time bin ``[t * dt, (t + 1) * dt)``
    from the first sample of the waveform (``dt = dt_ms``), the same bins as responses
    binned at ``dt`` from the same start (spike time ``s`` goes to bin ``floor(s / dt)``).
    Its window holds the ``n_window_`` samples that end with the bin's last sample:
    samples ``[e_t - n_window_, e_t)`` with ``e_t = ceil((t + 1) * dt * sr)``, the first
    sample at or after the bin's end. So frame ``t`` summarises sound up to the end of
    bin ``t`` and none after it: with an STRF (the response in bin ``t`` predicted from
    frames ``t, t-1, ...``), no future sound leaks into a prediction, as it would with a
    centred STFT window. ``e_t`` is computed per frame, so the bins do not drift when
    ``dt * sr`` is not a whole number of samples (220.5 at 44.1 kHz and 5 ms).

    **The start of a waveform.** The first ``n_startup_frames_`` frames end less than one
    window after sample 0. Nothing before sample 0 is assumed (neither silence nor a
    reflection): their window is the waveform's first ``n_window_`` samples, the window
    of the first frame that fits, so these frames read up to ``n_window_`` samples ahead of
    their bin. Every later frame is causal. Give each waveform with the sound recorded
    before the stimulus (the silence or background of the gap between stimuli) and let the
    estimator treat those frames as lead-in (context only); :meth:`n_frames` converts the
    gap's duration to frames. A lead-in of at least ``n_startup_frames_`` frames (e.g.
    ``n_frames(win_ms / 1000)``) keeps every scored frame causal.

    **The end of a waveform.** A waveform of ``n`` valid samples has
    ``n_frames(n / sr)`` whole frames; a last, incomplete bin is dropped, so frames are
    never computed from padding. The output has ``n_frames(n_samples / sr)`` frames for
    X of width ``n_samples`` (padding included), and frames past a waveform's own whole
    frames are NaN: bin the responses of every stimulus to that many frames, NaN-padded
    likewise, and any subset of stimuli (a cross-validation fold) still matches.

    **Levels.** Each band's value is the power of the frame in that band (the window-
    weighted mean square, from the one-sided power spectrum through librosa's triangular
    mel filterbank with peak weight 1), in dB re ``ref``: ``10 log10(power / ref**2)``.
    ``ref`` is the RMS level, in the waveform's units, that reads 0 dB: with ``ref=1.0``
    and waveforms scaled to full scale 1, dB re full scale (a full-scale sine, RMS
    ``1/sqrt(2)``, has a power of -3.01 dB re 1, shared by the bands around its
    frequency); with waveforms in pascals, ``ref=20e-6`` gives dB SPL. A sine of amplitude ``A`` at a band's centre frequency reads
    ``10 log10(A**2 / 2 / ref**2)`` in that band, and the neighbouring triangles share
    power between them so that the bands add up to the total power between the first and
    the last centre frequency. Values below ``floor_db`` are raised to it: digital
    silence and bands without energy sit at a declared floor, the same for every stimulus,
    instead of ``-inf`` or a level that depends on the loudest frame. The dB conversion is
    ``librosa.power_to_db`` (with ``amin`` below the floor, so that the floor alone
    decides where values stop).

    Parameters
    ----------
    sr : float
        Sample rate of the waveforms, in Hz.
    dt_ms : float, default=5.0
        Frame step in milliseconds: the bin width of the responses.
    n_bands : int, default=32
        Number of frequency bands.
    fmin : float, default=250.0
        Lower edge of the lowest band's triangle, in Hz.
    fmax : float or None, default=None
        Upper edge of the highest band's triangle, in Hz, at most ``sr / 2``; ``None``
        is ``sr / 2``.
    scale : {"mel", "mel_slaney"}, default="mel"
        Spacing of the bands: evenly on the mel scale ``2595 log10(1 + f / 700)`` (HTK,
        O'Shaughnessy; the formula of :func:`skstrf.prefilters.hz_to_mel`), or on Slaney's
        mel scale (linear below 1 kHz, logarithmic above; librosa's default).
    win_ms : float, default=20.0
        Window length in milliseconds (rounded up to whole samples), at least ``dt_ms``.
        Longer windows resolve frequency finer and time coarser; every band needs at least
        one FFT bin (frequency spacing ``sr / n_fft_``) inside its triangle.
    window : str or tuple, default="hann"
        Window function, any name ``librosa.filters.get_window`` accepts (e.g.
        ``"hamming"``, ``("kaiser", 8.0)``).
    ref : float, default=1.0
        RMS level, in the waveform's units, that reads 0 dB (see "Levels" above):
        ``1.0`` for dB re full scale of waveforms scaled to [-1, 1], ``20e-6`` for dB SPL
        of waveforms in pascals.
    floor_db : float, default=-80.0
        Lowest output value, in dB re ``ref``: lower values are raised to it. The default
        is 80 dB below the reference, librosa's usual dynamic range (``top_db=80``) but
        fixed, not relative to each sound's loudest frame, so that all stimuli share one
        scale. Set it near your recordings' noise floor.

    Attributes
    ----------
    hop_ : float
        Samples per frame, ``sr * dt_ms / 1000`` (not necessarily whole).
    n_window_ : int
        Window length in samples.
    n_fft_ : int
        FFT length: the smallest power of two at least ``n_window_`` (frames are
        zero-padded to it).
    n_startup_frames_ : int
        Number of frames at the start of each waveform whose window would begin before
        sample 0; they summarise the waveform's first ``n_window_`` samples.
    window_ : ndarray of shape (``n_window_``,)
        The analysis window (periodic, as for spectral analysis).
    filterbank_ : ndarray of shape (n_bands, ``n_fft_ // 2 + 1``)
        librosa's mel filterbank (triangles of peak 1) over the FFT bins.
    centre_frequencies_ : ndarray of shape (n_bands,)
        Frequency of each band's triangle peak, in Hz, increasing.
    band_edges_ : ndarray of shape (n_bands + 2,)
        Band ``b``'s triangle rises from ``band_edges_[b]`` to its peak at
        ``band_edges_[b + 1]`` and falls to zero at ``band_edges_[b + 2]`` (Hz).

    See Also
    --------
    skstrf.STRFRegressor : The estimator the spectrogram feeds.
    skstrf.preprocessing : Transformers of spectrograms (band pooling, rebinning).

    Notes
    -----
    The filterbank (``librosa.filters.mel``), the window (``librosa.filters.get_window``)
    and the dB conversion (``librosa.power_to_db``) are librosa's. The framing is done here
    rather than by ``librosa.stft``: its frames are centred (or start at a sample) and its
    hop is a whole number of samples, while an STRF needs windows that end at each
    response bin's end, also when a bin is not a whole number of samples.

    The choice of spectrogram (band spacing, window, level compression) can change a
    model's prediction scores more than the choice of model (Gill, Zhang, Woolley,
    Fremouw & Theunissen 2006, J Comput Neurosci 21:5-20): state it with the results.

    Examples
    --------
    >>> import numpy as np
    >>> from skstrf.audio import LogSpectrogram
    >>> sr = 16000
    >>> t = np.arange(sr // 2) / sr
    >>> waves = np.full((2, sr // 2), np.nan)
    >>> waves[0] = 0.1 * np.sin(2 * np.pi * 1000 * t)  # 0.5 s
    >>> waves[1, : sr // 4] = 0.0                       # 0.25 s of silence, NaN-padded
    >>> spec = LogSpectrogram(sr=sr, n_bands=16, fmin=100.0)
    >>> X = spec.fit_transform(waves)
    >>> X.shape, spec.n_frames(0.25)
    ((2, 100, 16), 50)
    >>> bool(np.isnan(X[1, 50:]).all()), float(X[1, :50].max())
    (True, -80.0)
    """

    _parameter_constraints: dict = {
        "sr": [Interval(numbers.Real, 0, None, closed="neither")],
        "dt_ms": [Interval(numbers.Real, 0, None, closed="neither")],
        "n_bands": [Interval(numbers.Integral, 1, None, closed="left")],
        "fmin": [Interval(numbers.Real, 0, None, closed="left")],
        "fmax": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "scale": [StrOptions({"mel", "mel_slaney"})],
        "win_ms": [Interval(numbers.Real, 0, None, closed="neither")],
        "window": [str, tuple],
        "ref": [Interval(numbers.Real, 0, None, closed="neither")],
        "floor_db": [Interval(numbers.Real, None, None, closed="neither")],
    }

    def __init__(self, sr: float, *, dt_ms: float = 5.0, n_bands: int = 32, fmin: float = 250.0,
                 fmax: float | None = None, scale: str = "mel", win_ms: float = 20.0,
                 window: str | tuple = "hann", ref: float = 1.0, floor_db: float = -80.0) -> None:
        self.sr = sr
        self.dt_ms = dt_ms
        self.n_bands = n_bands
        self.fmin = fmin
        self.fmax = fmax
        self.scale = scale
        self.win_ms = win_ms
        self.window = window
        self.ref = ref
        self.floor_db = floor_db

    # -- parameters ----------------------------------------------------------------------
    def _check_params(self) -> None:
        """Everything about the parameters that single-parameter constraints cannot say."""
        self._validate_params()  # also refuses NaN and infinite values
        nyquist = self.sr / 2
        fmax = nyquist if self.fmax is None else self.fmax
        if fmax > nyquist:
            raise ValueError(
                f"fmax={self.fmax:g} Hz is above the Nyquist frequency sr / 2 = {nyquist:g} Hz "
                "of the waveforms: lower fmax or pass the waveforms' true sample rate."
            )
        if self.fmin >= fmax:
            raise ValueError(f"fmin={self.fmin:g} Hz must be below fmax={fmax:g} Hz.")
        hop = self.sr * self.dt_ms / 1000.0
        if hop < 1.0 - _REL_TOL:
            raise ValueError(
                f"dt_ms={self.dt_ms:g} is shorter than one sample at sr={self.sr:g} Hz "
                f"({1000.0 / self.sr:.4g} ms): use a longer frame step."
            )
        if self.win_ms < self.dt_ms:
            raise ValueError(
                f"win_ms={self.win_ms:g} is shorter than the frame step dt_ms={self.dt_ms:g}: "
                "the samples between two windows would be read by no frame. Use "
                "win_ms >= dt_ms."
            )
        if not np.isfinite(self._amin()) or self._amin() <= 0:
            raise ValueError(
                f"floor_db={self.floor_db:g} with ref={self.ref:g} is below the smallest "
                "power float64 can hold: raise floor_db."
            )

    def _amin(self) -> float:
        # 10 dB under both the floor and the reference: librosa.power_to_db clamps at amin
        # (and clamps ref too), so neither decides a value; the floor does.
        return float(self.ref) ** 2 * 10.0 ** ((min(self.floor_db, 0.0) - 10.0) / 10.0)

    def n_frames(self, seconds):
        """Number of whole frames in a duration: frames ``0..n-1`` end at or before it.

        Use it to give the estimator the lead-in of waveforms that start with the sound
        recorded before each stimulus (``lead_in=spec.n_frames(gap_s)``), or to bin
        responses to the spectrogram's frames (a waveform of ``n`` samples has
        ``n_frames(n / sr)`` frames). Needs no fit.

        Parameters
        ----------
        seconds : float or array-like of float
            Non-negative durations in seconds.

        Returns
        -------
        n : int or ndarray of int
            ``floor(seconds / dt)`` (a duration within rounding of a whole number of
            frames counts as that number).
        """
        if not (isinstance(self.dt_ms, numbers.Real) and np.isfinite(self.dt_ms) and self.dt_ms > 0):
            raise ValueError(f"dt_ms must be a positive finite number, got {self.dt_ms!r}.")
        s = np.asarray(seconds, dtype=np.float64)
        if not np.all(np.isfinite(s)) or np.any(s < 0):
            raise ValueError(f"seconds must be finite and non-negative, got {seconds!r}.")
        n = _whole(s * 1000.0 / self.dt_ms)
        return int(n) if n.ndim == 0 else n

    # -- fit / transform -----------------------------------------------------------------
    def fit(self, X, y=None) -> "LogSpectrogram":
        """Check the parameters and the waveforms, and build the filterbank.

        Nothing is learned from the waveforms: the spectrogram of a stimulus does not
        depend on the others (under cross-validation, test stimuli are transformed exactly
        as training stimuli are).

        Parameters
        ----------
        X : array-like of shape (n_stimuli, n_samples) or (n_samples,)
            Waveforms, NaN-padded at the end.
        y : None
            Ignored.

        Returns
        -------
        self : LogSpectrogram
        """
        self._check_params()
        hop = self.sr * self.dt_ms / 1000.0
        n_window = int(np.ceil(self.win_ms * self.sr / 1000.0 * (1.0 - _REL_TOL)))
        self._check_waveforms(X, n_window)
        librosa = _require_librosa("LogSpectrogram")
        n_fft = 1 << max(1, int(n_window - 1).bit_length())
        try:
            window = np.asarray(librosa.filters.get_window(self.window, n_window, fftbins=True),
                                dtype=np.float64)
        except Exception as exc:  # librosa and scipy raise several types for unknown windows
            raise ValueError(
                f"window={self.window!r} is not a window librosa.filters.get_window knows "
                f"({exc}); use e.g. 'hann', 'hamming' or ('kaiser', 8.0)."
            ) from exc
        if window.shape != (n_window,) or not np.all(np.isfinite(window)) or np.sum(window**2) <= 0:
            raise ValueError(f"window={self.window!r} gave no usable window of {n_window} samples.")
        fmax = self.sr / 2 if self.fmax is None else float(self.fmax)
        htk = self.scale == "mel"
        with warnings.catch_warnings():
            # librosa warns about empty bands; they are an error here, with its own message.
            warnings.simplefilter("ignore", UserWarning)
            filterbank = librosa.filters.mel(sr=float(self.sr), n_fft=n_fft, n_mels=int(self.n_bands),
                                             fmin=float(self.fmin), fmax=fmax, htk=htk, norm=None,
                                             dtype=np.float64)
        edges = librosa.mel_frequencies(n_mels=int(self.n_bands) + 2, fmin=float(self.fmin),
                                        fmax=fmax, htk=htk)
        empty = np.flatnonzero(filterbank.max(axis=1) <= 0)
        if empty.size:
            b = empty[0]
            raise ValueError(
                f"{empty.size} of the {self.n_bands} bands contain no FFT bin (the first, band {b}, "
                f"spans {edges[b]:.1f}-{edges[b + 2]:.1f} Hz, the bins are "
                f"{self.sr / n_fft:.1f} Hz apart with win_ms={self.win_ms:g}): lengthen "
                "win_ms, raise fmin, or use fewer bands."
            )
        ends = _frame_ends(int(np.ceil(n_window / hop)) + 1, hop)
        self.hop_ = float(hop)
        self.n_window_ = n_window
        self.n_fft_ = n_fft
        self.n_startup_frames_ = int(np.searchsorted(ends, n_window, side="left"))
        self.window_ = window
        self.filterbank_ = filterbank
        self.band_edges_ = np.asarray(edges, dtype=np.float64)
        self.centre_frequencies_ = self.band_edges_[1:-1].copy()
        return self

    def _check_waveforms(self, X, n_window: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Validated waveforms (n_stimuli, n_samples), each one's valid samples, X's ndim."""
        waves, lengths, x_ndim = _check_waveforms(X)
        short = np.flatnonzero(lengths < n_window)
        if short.size:
            s = short[0]
            hint = ""
            if x_ndim == 2 and waves.shape[1] < n_window <= waves.shape[0]:
                hint = (" X looks like (n_samples, n_channels): give (n_stimuli, n_samples), or "
                        "one channel of shape (n_samples,).")
            raise ValueError(
                f"waveform {s} has {lengths[s]} valid samples, fewer than one window (win_ms="
                f"{self.win_ms:g} ms, {n_window} samples at sr={self.sr:g} Hz): it "
                "would have no complete frame. Give the waveform with the sound recorded "
                f"before and after it, or use a shorter win_ms.{hint}"
            )
        return waves, lengths, x_ndim

    def transform(self, X) -> np.ndarray:
        """Log-mel spectrogram of each waveform, in dB re ``ref``, floored at ``floor_db``.

        Parameters
        ----------
        X : array-like of shape (n_stimuli, n_samples) or (n_samples,)
            Waveforms at sample rate ``sr``, NaN-padded at the end.

        Returns
        -------
        Xt : ndarray of shape (n_stimuli, n_frames, n_bands) or (n_frames, n_bands)
            ``n_frames`` is the whole frames in X's width, ``n_frames(n_samples / sr)``
            (NaN padding included, so that responses padded to the same width match any
            subset of the stimuli); frames past a waveform's own whole frames are NaN.
        """
        check_is_fitted(self, "filterbank_")
        librosa = _require_librosa("LogSpectrogram")
        waves, lengths, x_ndim = self._check_waveforms(X, self.n_window_)
        ends = _frame_ends(int(_whole(waves.shape[1] / self.hop_)) + 1, self.hop_)
        # Frame counts from the same ends that place the windows: a frame is valid when
        # its bin ends within the waveform, so no window ever reads a padding sample. The
        # output's length follows X's width (padding included), so that any subset of
        # stimuli keeps the frames of responses padded to the same width.
        n_valid = np.searchsorted(ends, lengths, side="right")
        ends = ends[: np.searchsorted(ends, waves.shape[1], side="right")]
        starts = _window_starts(ends, self.n_window_)
        power = _band_power(waves, n_valid, starts, self.window_, self.n_fft_, self.filterbank_)
        valid = ~np.isnan(power)
        db = np.full(power.shape, np.nan)
        db[valid] = librosa.power_to_db(power[valid], ref=float(self.ref) ** 2, amin=self._amin(),
                                        top_db=None)
        db[valid] = np.maximum(db[valid], float(self.floor_db))
        return db[0] if x_ndim == 1 else db

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Band names from their centre frequencies, ``"band<b>_<Hz>Hz"``.

        Parameters
        ----------
        input_features : None
            Ignored (the input is samples, not named features).

        Returns
        -------
        feature_names_out : ndarray of str objects of shape (n_bands,)
        """
        check_is_fitted(self, "centre_frequencies_")
        return np.asarray([f"band{b}_{f:.0f}Hz" for b, f in enumerate(self.centre_frequencies_)],
                          dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # NaN is accepted as end-padding of shorter waveforms only.
        tags.input_tags.allow_nan = False
        tags.transformer_tags.preserves_dtype = ["float64"]
        return tags
