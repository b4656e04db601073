"""Tests of skstrf.audio.LogSpectrogram: levels against closed forms, floor, padding, causality."""

import importlib.util
import pickle
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import scipy.signal
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.pipeline import make_pipeline

from skstrf.audio import LogSpectrogram

needs_librosa = pytest.mark.skipif(importlib.util.find_spec("librosa") is None,
                                   reason="the optional audio extra (librosa) is not installed")


def _tone(sr, seconds, f0, amplitude, phase=0.3):
    t = np.arange(int(round(sr * seconds))) / sr
    return amplitude * np.sin(2 * np.pi * f0 * t + phase)


# --------------------------------------------------------------------------------------
# Levels: a sine of amplitude A has power A**2 / 2
# --------------------------------------------------------------------------------------
# The bands add up to the window-weighted mean square of the frame (Parseval, and the
# triangles of neighbouring bands sum to 1 between the first and last centre frequency),
# so for a sine inside that range they sum to A**2 / 2, up to the leak of its mirror image
# at -f0: for f0 >= 10 / T_win a Hann window's sidelobes there are below 1e-6 of the power
# (< 1e-5 dB). Hence a tolerance of 1e-3 dB.
SUM_TOL_DB = 1e-3


@needs_librosa
@pytest.mark.parametrize("sr, scale, win_ms", [(16000, "mel", 20.0), (44100, "mel_slaney", 20.0),
                                               (22050, "mel", 10.0)])
@pytest.mark.parametrize("band", [2, 7, 12])
def test_a_tone_puts_its_power_in_its_band_at_the_reference_level(sr, scale, win_ms, band):
    spec = LogSpectrogram(sr=sr, n_bands=16, fmin=100.0, scale=scale, win_ms=win_ms).fit(np.zeros(sr))
    f0 = spec.centre_frequencies_[band]
    A = 0.3
    X = spec.transform(_tone(sr, 1.0, f0, A))[spec.n_startup_frames_:]
    expected = 10 * np.log10(A**2 / 2)  # dB re ref = 1.0

    total = 10 * np.log10(np.sum(10 ** (X / 10), axis=1))
    assert_allclose(total, expected, atol=SUM_TOL_DB)
    assert (X.argmax(axis=1) == band).all()
    # In its own band, the tone at the triangle's peak loses what the window's main lobe
    # spreads onto the triangle's slopes. A Hann window of duration T has a power spectrum
    # whose mean |frequency offset| is 0.466 / T (computed below from scipy's window); a
    # triangle of weight >= 1 - |offset| / h (h its narrower half-width) keeps at least
    # 1 - 0.466 / (T h) of the power, and never more than all of it. 0.05 dB of margin
    # for the spectrum being sampled at the FFT bins.
    T = spec.n_window_ / sr
    h = np.min(np.diff(spec.band_edges_[band:band + 3]))
    loss = _hann_mean_abs_offset() / (T * h)
    assert loss < 0.3, "the bound must say something"
    assert (X[:, band] <= expected + SUM_TOL_DB).all()
    assert (X[:, band] >= expected + 10 * np.log10(1 - loss) - 0.05).all()


def _hann_mean_abs_offset() -> float:
    """Mean |frequency offset| of a Hann window's power spectrum, in units of 1 / duration."""
    n = 1000
    power = np.abs(np.fft.fft(scipy.signal.get_window("hann", n), 64 * n)) ** 2
    offset = np.fft.fftfreq(64 * n) * n
    return float(np.sum(np.abs(offset) * power) / np.sum(power))


@needs_librosa
def test_a_wide_band_reads_the_tone_level_within_a_fifth_of_a_db():
    # A 200 ms window under wide bands: the main lobe (+-10 Hz) sits on the flat top.
    sr = 16000
    spec = LogSpectrogram(sr=sr, n_bands=8, fmin=500.0, win_ms=200.0).fit(np.zeros(sr))
    A = 0.05
    X = spec.transform(_tone(sr, 1.0, spec.centre_frequencies_[4], A))[spec.n_startup_frames_:]
    assert_allclose(X[:, 4], 10 * np.log10(A**2 / 2), atol=0.02)


@needs_librosa
def test_ref_gives_db_spl_for_pascals():
    sr = 16000
    spec = LogSpectrogram(sr=sr, n_bands=16, fmin=100.0, ref=20e-6, floor_db=0.0).fit(np.zeros(sr))
    # 60 dB SPL: RMS 20 uPa * 1000, amplitude sqrt(2) times that.
    A = 20e-6 * 10 ** (60 / 20) * np.sqrt(2)
    X = spec.transform(_tone(sr, 0.5, spec.centre_frequencies_[9], A))[spec.n_startup_frames_:]
    assert_allclose(10 * np.log10(np.sum(10 ** (X / 10), axis=1)), 60.0, atol=SUM_TOL_DB)
    assert_allclose(X[:, 9], 60.0, atol=0.5)


@needs_librosa
def test_full_scale_sine_reads_minus_3_db_re_1():
    sr = 16000
    spec = LogSpectrogram(sr=sr, n_bands=16, fmin=100.0).fit(np.zeros(sr))
    X = spec.transform(_tone(sr, 0.5, 2000.0, 1.0))[spec.n_startup_frames_:]
    assert_allclose(10 * np.log10(np.sum(10 ** (X / 10), axis=1)), -3.0103, atol=SUM_TOL_DB)


# --------------------------------------------------------------------------------------
# Floor
# --------------------------------------------------------------------------------------
@needs_librosa
@pytest.mark.parametrize("ref, floor_db", [(1.0, -80.0), (1.0, -120.0), (20e-6, 20.0), (20e-6, 0.0)])
def test_silence_is_exactly_the_floor(ref, floor_db):
    sr = 16000
    X = LogSpectrogram(sr=sr, n_bands=12, ref=ref, floor_db=floor_db).fit_transform(np.zeros((2, sr // 4)))
    assert X.shape == (2, 50, 12)
    assert (X == floor_db).all()


@needs_librosa
def test_values_below_the_floor_are_raised_to_it_and_above_it_are_kept():
    sr = 16000
    A = 1e-5  # -103 dB re 1 in its band
    wave = _tone(sr, 0.5, 2000.0, A)
    low = LogSpectrogram(sr=sr, n_bands=16, fmin=100.0, floor_db=-80.0).fit_transform(wave)
    assert (low == -80.0).all()
    deep = LogSpectrogram(sr=sr, n_bands=16, fmin=100.0, floor_db=-200.0).fit_transform(wave)
    assert_allclose(10 * np.log10(np.sum(10 ** (deep[10:] / 10), axis=1)), 10 * np.log10(A**2 / 2),
                    atol=SUM_TOL_DB)
    assert (deep[:, 7:10] > -200.0).all()  # the floor hides nothing near the tone
    # A floor above the reference (dB SPL floor of 20 dB) does not move the reference: a
    # 60 dB SPL tone still reads 60 dB in total.
    A = 20e-6 * 1000 * np.sqrt(2)
    X = LogSpectrogram(sr=sr, n_bands=16, fmin=100.0, ref=20e-6, floor_db=20.0).fit_transform(
        _tone(sr, 0.5, 2000.0, A))[10:]
    above = X[X > 20.0]
    assert X.max() > 55.0 and above.size
    assert_allclose(10 * np.log10(np.sum(10 ** (X / 10) * (X > 20.0), axis=1)), 60.0, atol=0.05)


# --------------------------------------------------------------------------------------
# Frames: padding, counts, start, causality
# --------------------------------------------------------------------------------------
@needs_librosa
def test_nan_padding_gives_whole_nan_end_frames_and_unchanged_valid_frames():
    sr = 16000
    rng = np.random.default_rng(0)
    long, short = rng.normal(size=8000), rng.normal(size=5123)  # 0.5 s and 0.3202 s
    waves = np.full((2, 8000), np.nan)
    waves[0], waves[1, :5123] = long, short
    spec = LogSpectrogram(sr=sr, n_bands=10).fit(waves)
    X = spec.transform(waves)
    n_short = spec.n_frames(5123 / sr)
    assert n_short == 64  # 5123 samples = 64 bins of 80 samples and 3 samples
    assert X.shape == (2, 100, 10)
    assert np.isfinite(X[0]).all()
    assert np.isfinite(X[1, :n_short]).all() and np.isnan(X[1, n_short:]).all()
    # Each waveform's frames do not depend on the others or on the padding.
    assert_allclose(X[1, :n_short], spec.transform(short), rtol=1e-12)
    assert_allclose(X[0], spec.transform(long), rtol=1e-12)
    # The number of frames follows X's width, padding included: a fold without the
    # longest stimulus still matches responses padded to that width.
    alone = spec.transform(waves[1:])
    assert alone.shape == (1, 100, 10) and np.isnan(alone[0, n_short:]).all()


@needs_librosa
@pytest.mark.parametrize("sr", [8000, 16000, 22050, 44100, 24414.0625, 96000])
@pytest.mark.parametrize("win_ms", [5.0, 7.3, 20.0, 32.0])
def test_a_window_long_lead_in_covers_the_startup_frames(sr, win_ms):
    spec = LogSpectrogram(sr=sr, n_bands=2, fmin=1000.0, fmax=2000.0, win_ms=win_ms).fit(np.zeros(int(sr)))
    assert spec.n_startup_frames_ <= spec.n_frames(win_ms / 1000)
    assert spec.n_startup_frames_ >= spec.n_frames(win_ms / 1000) - 1


@needs_librosa
@pytest.mark.parametrize("sr", [16000, 22050, 44100, 24414.0625])
def test_frame_count_is_n_frames_of_the_duration(sr):
    spec = LogSpectrogram(sr=sr, n_bands=8).fit(np.zeros(int(sr)))
    hop = sr * 0.005
    for n in np.unique(np.r_[np.arange(spec.n_window_, spec.n_window_ + 700, 7),
                             np.round(np.arange(5, 40) * hop).astype(int)]):
        X = spec.transform(np.zeros(n))
        assert X.shape[0] == spec.n_frames(n / sr) == int(np.floor(n / hop + 1e-9)), n


def test_n_frames_counts_whole_frames_robustly():
    spec = LogSpectrogram(sr=16000)  # needs no fit, no librosa
    assert spec.n_frames(0.015) == 3  # 0.015 / 0.005 is 2.9999999999999996 in floating point
    assert spec.n_frames(0.0149) == 2
    assert spec.n_frames(0.0) == 0
    assert_array_equal(spec.n_frames([0.1, 0.2, 0.0051]), [20, 40, 1])
    assert LogSpectrogram(sr=16000, dt_ms=0.1).n_frames(0.0003) == 3
    with pytest.raises(ValueError, match="seconds must be finite and non-negative"):
        spec.n_frames(-0.1)


@needs_librosa
@pytest.mark.parametrize("sr", [16000, 22050])  # 80 and 110.25 samples per 5 ms frame
def test_a_click_changes_no_frame_whose_window_ends_before_it(sr):
    spec = LogSpectrogram(sr=sr, n_bands=8, fmin=100.0).fit(np.zeros(sr))
    rng = np.random.default_rng(1)
    base = 1e-3 * rng.normal(size=int(sr) // 2)
    ref = spec.transform(base)
    hop, k = spec.hop_, spec.n_startup_frames_
    ends = np.ceil(np.arange(1, ref.shape[0] + 1) * hop - 1e-6).astype(int)
    window_ends = np.maximum(ends, spec.n_window_)
    for click in [spec.n_window_ + 3, 2017, 4000, int(7.5 * hop) + spec.n_window_]:
        wave = base.copy()
        wave[click] += 1.0
        X = spec.transform(wave)
        unchanged = window_ends <= click
        changed = np.any(X != ref, axis=1)
        assert not changed[unchanged].any(), click
        # The first frame whose bin holds the click is the first to change: its bin is
        # [t dt, (t+1) dt), in samples floor(click / hop).
        first = int(np.floor(click / hop))
        assert first >= k and changed[first] and not changed[:first].any(), click


@needs_librosa
def test_the_first_frames_read_the_waveforms_first_window_not_silence():
    sr = 16000
    spec = LogSpectrogram(sr=sr, n_bands=16, fmin=100.0, win_ms=30.0).fit(np.zeros(sr))
    k = spec.n_startup_frames_
    assert k == 5  # a 480-sample window ends with bin 5 (samples 400..480) at the earliest
    wave = _tone(sr, 0.5, 1000.0, 0.2)
    X = spec.transform(wave)
    # A stationary tone from sample 0 reads its level from the first frame on: nothing
    # before sample 0 (silence, or zero padding) dilutes the first frames.
    assert_allclose(X[:k], X[k:k + 1].repeat(k, axis=0), atol=0.01)
    # The startup frames read the first n_window_ samples and nothing later.
    later = wave.copy()
    later[spec.n_window_:] = 0.0
    assert_array_equal(spec.transform(later)[:k + 1], X[:k + 1])
    later[spec.n_window_ - 1] += 0.5
    assert np.any(spec.transform(later)[:k] != X[:k], axis=1).all()


# --------------------------------------------------------------------------------------
# scikit-learn conventions and pipelines
# --------------------------------------------------------------------------------------
@needs_librosa
def test_clone_get_params_pickle_and_attributes():
    spec = LogSpectrogram(sr=22050, n_bands=20, fmin=300.0, fmax=8000.0, ref=20e-6, floor_db=10.0)
    copy = clone(spec)
    assert copy.get_params() == spec.get_params()
    assert copy.get_params()["sr"] == 22050
    copy.set_params(n_bands=10)
    assert spec.n_bands == 20
    copy.fit(np.zeros(22050))
    assert copy.filterbank_.shape == (10, copy.n_fft_ // 2 + 1)
    assert copy.n_fft_ == 512 and copy.n_window_ == 441
    assert copy.centre_frequencies_[0] > 300.0 and copy.band_edges_[-1] == pytest.approx(8000.0)
    assert copy.get_feature_names_out()[0].startswith("band0_")
    restored = pickle.loads(pickle.dumps(copy))
    wave = np.random.default_rng(0).normal(size=4000)
    assert_array_equal(restored.transform(wave), copy.transform(wave))


@needs_librosa
def test_pipeline_with_strf_regressor_recovers_a_known_strf():
    from skstrf import STRFRegressor

    sr, n_stim, n_samples = 8000, 6, 4000  # 0.5 s stimuli, 100 frames
    rng = np.random.default_rng(0)
    # White noise: each band's level fluctuates from frame to frame, a random design.
    waves = rng.normal(scale=0.1, size=(n_stim, n_samples))
    waves[-1, 3000:] = np.nan  # a shorter stimulus: 75 frames
    spec = LogSpectrogram(sr=sr, n_bands=8, fmin=100.0)
    X = spec.fit_transform(waves)
    assert X.shape == (n_stim, 100, 8)
    # Two neurons driven by the spectrogram itself (band 2 at lag 1, band 5 at lag 0
    # against band 6 at lag 2), ten noisy repeats.
    Z = np.nan_to_num(X - np.nanmean(X, axis=(0, 1)))
    drive = np.zeros((n_stim, 100, 2))
    drive[:, 1:, 0] = Z[:, :-1, 2]
    drive[:, :, 1] = Z[:, :, 5]
    drive[:, 2:, 1] -= Z[:, :-2, 6]
    y = drive[..., None] + rng.normal(scale=0.5, size=(n_stim, 100, 2, 10))
    y[-1, 75:] = np.nan

    pipe = make_pipeline(LogSpectrogram(sr=sr, n_bands=8, fmin=100.0), STRFRegressor(n_lags=3))
    pipe.fit(waves, y)
    pred = pipe.predict(waves)
    assert pred.shape == (n_stim, 100, 2)
    assert np.isnan(pred[-1, 75:]).all() and np.isfinite(pred[-1, :75]).all()
    strfs = pipe[-1].strfs_
    assert strfs.shape == (2, 8, 3)
    assert np.unravel_index(np.abs(strfs[0]).argmax(), (8, 3)) == (2, 1)
    assert pipe.score(waves, y) > 0.9


# --------------------------------------------------------------------------------------
# Bad inputs: clear errors before any work
# --------------------------------------------------------------------------------------
@needs_librosa
@pytest.mark.parametrize("params, match", [
    ({"sr": 0}, "sr"),
    ({"sr": 16000, "fmax": 9000.0}, "above the Nyquist frequency"),
    ({"sr": 16000, "fmin": 5000.0, "fmax": 4000.0}, "fmin=5000 Hz must be below fmax"),
    ({"sr": 16000, "win_ms": 4.0}, "shorter than the frame step"),
    ({"sr": 100, "dt_ms": 5.0, "fmin": 0.0, "n_bands": 2}, "shorter than one sample"),
    ({"sr": 16000, "n_bands": 128, "fmin": 0.0, "win_ms": 5.0}, "contain no FFT bin"),
    ({"sr": 16000, "window": "no-such-window"}, "not a window"),
    ({"sr": 16000, "ref": 0.0}, "ref"),
    ({"sr": 16000, "ref": np.inf}, "'ref' parameter"),
    ({"sr": 16000, "floor_db": -np.inf}, "'floor_db' parameter"),
    ({"sr": 16000, "floor_db": np.nan}, "'floor_db' parameter"),
    ({"sr": 16000, "floor_db": -5000.0}, "below the smallest power"),
    ({"sr": 16000, "scale": "bark"}, "scale"),
])
def test_bad_parameters_are_named(params, match):
    with pytest.raises(ValueError, match=match):
        LogSpectrogram(**params).fit(np.zeros(16000))


@needs_librosa
def test_bad_waveforms_are_named():
    spec = LogSpectrogram(sr=16000, n_bands=8)
    wave = np.zeros((2, 1000))
    inside = wave.copy()
    inside[1, 500] = np.nan
    with pytest.raises(ValueError, match="waveform 1 has NaN at sample 500 but a finite value at sample 501"):
        spec.fit(inside)
    infinite = wave.copy()
    infinite[0, 7] = np.inf
    with pytest.raises(ValueError, match="waveform 0 has an infinite value at sample 7"):
        spec.fit(infinite)
    with pytest.raises(TypeError, match="integer dtype int16.*32768"):
        spec.fit(np.zeros(1000, dtype=np.int16))
    with pytest.raises(TypeError, match="real floating-point"):
        spec.fit(np.zeros(1000, dtype=complex))
    with pytest.raises(ValueError, match="3 dimensions"):
        spec.fit(np.zeros((2, 3, 1000)))
    with pytest.raises(ValueError, match="different lengths"):
        spec.fit([np.zeros(1000), np.zeros(900)])
    short = np.full((2, 1000), np.nan)
    short[0], short[1, :300] = 0.0, 0.0
    with pytest.raises(ValueError, match="waveform 1 has 300 valid samples, fewer than one window"):
        spec.fit(short)
    with pytest.raises(ValueError, match=r"looks like \(n_samples, n_channels\)"):
        spec.fit(np.zeros((16000, 2)))
    # transform checks as fit does
    spec.fit(wave)
    with pytest.raises(ValueError, match="waveform 1 has NaN at sample 500"):
        spec.transform(inside)


def test_missing_librosa_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "librosa", None)  # import librosa now raises ImportError
    with pytest.raises(ImportError, match=r'pip install "skstrf\[audio\]"'):
        LogSpectrogram(sr=16000).fit(np.zeros(16000))


# --------------------------------------------------------------------------------------
# The user guide's worked example runs, and finds the model neuron's band
# --------------------------------------------------------------------------------------
def _tested_example(page: Path) -> str:
    """The code block that follows the ``.. tested-example`` comment of a user guide page."""
    lines = page.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(".. tested-example"))
    start = next(i for i in range(start, len(lines)) if lines[i].startswith(".. code-block:: python")) + 1
    block = []
    for line in lines[start:]:
        if line and not line.startswith("   "):
            break
        block.append(line)
    return textwrap.dedent("\n".join(block))


@needs_librosa
def test_user_guide_worked_example(capsys):
    code = _tested_example(Path(__file__).resolve().parent.parent / "docs" / "user_guide" / "audio.rst")
    namespace: dict = {}
    exec(compile(code, "audio.rst", "exec"), namespace)
    printed = capsys.readouterr().out
    assert "held-out cc_norm:" in printed
    model, strf = namespace["model"], namespace["strf"]
    assert model.score(namespace["waves"][6:], namespace["y"][6:]) > 0.6
    # The neuron hears 2-4 kHz: the STRF's largest weight lies on a band whose triangle
    # overlaps that range, at one of the first lags.
    edges = model[0].band_edges_
    b = namespace["peak_band"]
    assert edges[b + 2] > 2000.0 and edges[b] < 4000.0
    assert namespace["peak_lag"] <= 2
