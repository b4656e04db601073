"""Tests of the synthetic STRF dataset generator against formulas and ground truth."""

import numpy as np
import pytest
from scipy.special import ndtri

from skstrf.datasets._synthetic import (
    _ADAPT_STRENGTH,
    _ADAPT_TAU_MS,
    _adapt,
    _apply_nonlinearity,
    _calibrate,
    _drive_nodes,
    _fm_sweep_strfs,
    _gamma_bump,
    _level_to_spectrogram,
    _poisson_repeats,
    _repeat_mask,
    _split_indices,
    _true_drive,
    make_realistic_dataset,
    make_strf_dataset,
)

SMALL = dict(n_stimuli=4, n_times=120, n_freqs=10, n_neurons=6, n_repeats=5, n_lags=6)


def _explicit_drive(X, strfs, intercepts):
    """The defining formula, one term at a time."""
    n_stimuli, n_times, _ = X.shape
    n_neurons, n_freqs, n_lags = strfs.shape
    drive = np.empty((n_stimuli, n_times, n_neurons))
    for s in range(n_stimuli):
        for t in range(n_times):
            for n in range(n_neurons):
                total = intercepts[n]
                for f in range(n_freqs):
                    for k in range(n_lags):
                        if t - k >= 0:
                            total += strfs[n, f, k] * X[s, t - k, f]
                drive[s, t, n] = total
    return drive


# --------------------------------------------------------------------------------------
# Shapes, fields, determinism
# --------------------------------------------------------------------------------------
def test_shapes_dtypes_and_fields():
    d = make_strf_dataset(**SMALL, random_state=0)
    S, T, F, N, R, L = 4, 120, 10, 6, 5, 6
    assert d.X.shape == (S, T, F) and d.X.dtype == np.float64
    assert d.y.shape == (S, T, N, R) and d.y.dtype == np.float64
    assert d.rates.shape == (S, T, N)
    assert d.strfs.shape == (N, F, L) and d.intercepts.shape == (N,)
    assert d.kind.tolist() == ["separable", "excitation_inhibition", "fm_sweep"] * 2
    np.testing.assert_array_equal(d.separable, [True, False, False, True, False, False])
    np.testing.assert_array_equal(d.lengths, [T] * S)
    np.testing.assert_allclose(d.freqs, 500.0 * 2.0 ** (np.arange(F) / 6))
    assert d.dt_ms == 5.0 and isinstance(d.DESCR, str) and "4 stimuli" in d.DESCR
    assert not np.isnan(d.X).any() and not np.isnan(d.y).any()
    # Poisson counts: non-negative integers.
    assert (d.y >= 0).all() and np.array_equal(d.y, np.round(d.y))
    assert (d.X >= 0).all()


def test_ns1_sized_default_split_and_axis():
    train, valid, test = _split_indices(20)
    np.testing.assert_array_equal(train, np.arange(14))
    np.testing.assert_array_equal(valid, [14, 15, 16])
    np.testing.assert_array_equal(test, [17, 18, 19])
    d = make_strf_dataset(n_stimuli=1, n_times=20, n_neurons=1, n_repeats=1, random_state=0)
    freqs = d.freqs
    assert freqs.shape == (34,)
    np.testing.assert_allclose(freqs[[0, 6, 33]], [500.0, 1000.0, 500.0 * 2**5.5])


@pytest.mark.parametrize(
    "n_stimuli, sizes",
    [(1, (1, 0, 0)), (2, (2, 0, 0)), (3, (1, 1, 1)), (10, (6, 2, 2)), (40, (28, 6, 6))],
)
def test_split_scales_and_partitions(n_stimuli, sizes):
    parts = _split_indices(n_stimuli)
    assert tuple(p.size for p in parts) == sizes
    np.testing.assert_array_equal(np.concatenate(parts), np.arange(n_stimuli))


def test_deterministic_for_int_generator_and_randomstate():
    a = make_strf_dataset(**SMALL, random_state=3)
    b = make_strf_dataset(**SMALL, random_state=3)
    for key in ("X", "y", "strfs", "intercepts", "rate_hz", "snr"):
        np.testing.assert_array_equal(a[key], b[key])
    c = make_strf_dataset(**SMALL, random_state=4)
    assert not np.allclose(a.X, c.X) and not np.allclose(a.strfs, c.strfs)
    g1 = make_strf_dataset(**SMALL, random_state=np.random.default_rng(7))
    g2 = make_strf_dataset(**SMALL, random_state=np.random.default_rng(7))
    np.testing.assert_array_equal(g1.y, g2.y)
    r1 = make_strf_dataset(**SMALL, random_state=np.random.RandomState(7))
    r2 = make_strf_dataset(**SMALL, random_state=np.random.RandomState(7))
    np.testing.assert_array_equal(r1.y, r2.y)


def test_independent_streams_keep_stimuli_and_strfs():
    a = make_strf_dataset(**{**SMALL, "n_repeats": 3}, random_state=1)
    b = make_strf_dataset(**{**SMALL, "n_repeats": 8}, missing_repeats=0.2, random_state=1)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.strfs, b.strfs)


# --------------------------------------------------------------------------------------
# The linear model
# --------------------------------------------------------------------------------------
def test_true_drive_matches_explicit_causal_loop():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 9, 4))
    X[1, 7:] = np.nan  # stimulus 1 is 7 frames long
    strfs = rng.normal(size=(2, 4, 3))
    intercepts = np.array([0.5, -1.0])
    drive = _true_drive(X, strfs, intercepts)
    expected = _explicit_drive(X, strfs, intercepts)
    np.testing.assert_allclose(drive, expected, rtol=1e-12, atol=1e-12)
    # NaN exactly on the padded frames, for every neuron.
    np.testing.assert_array_equal(np.isnan(drive).any(axis=2), np.isnan(X).any(axis=2))
    # A single recording (n_times, n_freqs) is the one-stimulus case.
    np.testing.assert_allclose(_true_drive(X[0], strfs, intercepts), expected[0])
    # History does not cross stimuli: the first frame sees lag 0 only.
    np.testing.assert_allclose(drive[2, 0], intercepts + strfs[:, :, 0] @ X[2, 0])


def test_true_drive_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="n_freqs=4"):
        _true_drive(np.zeros((2, 5, 4)), np.zeros((3, 5, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="intercepts"):
        _true_drive(np.zeros((2, 5, 4)), np.zeros((3, 4, 2)), np.zeros(2))


@pytest.mark.parametrize(
    "nonlinearity, noise",
    [("relu", "poisson"), ("exp", "poisson"), ("softplus", "poisson"), ("identity", "gaussian")],
)
def test_rates_are_nonlinearity_of_true_drive(nonlinearity, noise):
    d = make_strf_dataset(
        **SMALL, nonlinearity=nonlinearity, noise=noise, ragged=True, random_state=2
    )
    drive = _true_drive(d.X, d.strfs, d.intercepts)
    reference = {"relu": np.maximum(drive, 0), "exp": np.exp(drive),
                 "softplus": np.log1p(np.exp(drive)), "identity": drive}[nonlinearity]
    np.testing.assert_allclose(d.rates, reference, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "nonlinearity, noise",
    [("relu", "poisson"), ("exp", "poisson"), ("softplus", "poisson"), ("identity", "gaussian")],
)
def test_rate_and_snr_hit_their_targets(nonlinearity, noise):
    d = make_strf_dataset(n_stimuli=5, n_times=400, n_freqs=12, n_neurons=9, n_repeats=2, n_lags=8,
                          nonlinearity=nonlinearity, noise=noise, ragged=True,
                          rate_hz=(1.0, 60.0), snr=(0.02, 2.0), random_state=5)
    mean = np.nanmean(d.rates, axis=(0, 1))
    var = np.nanvar(d.rates, axis=(0, 1))
    np.testing.assert_allclose(mean * 1000.0 / d.dt_ms, d.rate_hz, rtol=0.02)
    np.testing.assert_allclose(var / mean, d.snr, rtol=0.02)


def test_calibrate_matches_lognormal_closed_form():
    # Exact Gaussian quantiles as the drive: exp(b + s u) is log-normal, with
    # s^2 = log(1 + var / mean^2) and b = log(mean) - s^2 / 2.
    u = ndtri((np.arange(20000) + 0.5) / 20000)[:, None]
    nodes, weights = _drive_nodes(np.repeat(u, 3, axis=1))
    mean = np.array([0.01, 0.1, 0.3])
    var = np.array([0.25, 1.0, 3.0]) * mean**2  # squared coefficients of variation
    offset, gain = _calibrate("exp", nodes, weights, mean, var)
    s2 = np.log1p(var / mean**2)
    np.testing.assert_allclose(gain, np.sqrt(s2), rtol=0.02)
    np.testing.assert_allclose(offset, np.log(mean) - s2 / 2, atol=0.02)


def test_drive_nodes_keep_mean_and_top_tail():
    rng = np.random.default_rng(1)
    u = rng.standard_t(4, size=(3000, 2))
    nodes, weights = _drive_nodes(u)
    assert weights.shape == (nodes.shape[0],) and np.isclose(weights.sum(), 1.0)
    np.testing.assert_allclose(weights @ nodes, u.mean(axis=0), atol=1e-12)
    np.testing.assert_array_equal(nodes[-128:], np.sort(u, axis=0)[-128:])
    small = rng.normal(size=(50, 2))
    nodes, weights = _drive_nodes(small)
    np.testing.assert_array_equal(nodes, np.sort(small, axis=0))
    np.testing.assert_allclose(weights, 1 / 50)


def test_nonlinearities():
    z = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_allclose(_apply_nonlinearity(z, "relu"), [0, 0, 3])
    np.testing.assert_allclose(_apply_nonlinearity(z, "exp"), np.exp(z))
    np.testing.assert_allclose(_apply_nonlinearity(z, "softplus"), np.log1p(np.exp(z)))
    np.testing.assert_allclose(_apply_nonlinearity(z, "identity"), z)


# --------------------------------------------------------------------------------------
# Cell types
# --------------------------------------------------------------------------------------
def test_separable_cells_are_rank_one_and_others_are_not():
    d = make_strf_dataset(n_stimuli=2, n_times=40, n_neurons=60, n_repeats=1, random_state=0)
    sv = np.linalg.svd(d.strfs, compute_uv=False)
    ratio = sv[:, 1] / sv[:, 0]
    assert d.separable.sum() == 20
    assert (ratio[d.separable] < 1e-10).all()
    assert (ratio[~d.separable] > 0.05).all()
    # Excitation and inhibition both present where the type says so.
    ei = d.kind == "excitation_inhibition"
    assert (d.strfs[ei].max(axis=(1, 2)) > 0).all() and (d.strfs[ei].min(axis=(1, 2)) < 0).all()
    fm = d.kind == "fm_sweep"
    assert (d.strfs[fm].min(axis=(1, 2)) >= 0).all()


def test_kinds_fraction_by_repetition():
    d = make_strf_dataset(n_stimuli=2, n_times=30, n_neurons=9, n_repeats=1,
                          kinds=("separable", "separable", "fm_sweep"), random_state=0)
    assert d.separable.sum() == 6 and (d.kind == "fm_sweep").sum() == 3


def test_gamma_bump_peaks_at_its_latency():
    bump = _gamma_bump(15, np.array([2.0, 5.0]), np.array([4.0, 4.0]))
    np.testing.assert_array_equal(bump.argmax(axis=1), [2, 5])
    np.testing.assert_allclose(bump.max(axis=1), 1.0)


def test_fm_ridge_follows_its_velocity():
    # Ridge f = bf + v (k - peak): with v = 2 bands/frame the best band moves 2 per lag.
    w = _fm_sweep_strfs(30, 9, bf=np.array([15.0]), bw=np.array([1.0]), peak=np.array([4.0]),
                        duration=np.array([2.0]), velocity=np.array([2.0]))[0]
    np.testing.assert_array_equal(w.argmax(axis=0), 15 + 2 * (np.arange(9) - 4))


# --------------------------------------------------------------------------------------
# Ragged stimuli and missing repeats
# --------------------------------------------------------------------------------------
def test_ragged_padding_is_whole_frames_at_the_end():
    d = make_strf_dataset(**{**SMALL, "n_stimuli": 8}, ragged=True, random_state=4)
    T = SMALL["n_times"]
    assert ((d.lengths >= np.ceil(0.6 * T)) & (d.lengths <= T)).all() and len(set(d.lengths)) > 1
    padded = np.arange(T)[None, :] >= d.lengths[:, None]  # (n_stimuli, n_times)
    for array in (d.X, d.rates, d.y):
        expected = padded.reshape(padded.shape + (1,) * (array.ndim - 2))
        np.testing.assert_array_equal(np.isnan(array), np.broadcast_to(expected, array.shape))


def test_missing_repeats_are_whole_trials_and_two_remain():
    d = make_strf_dataset(
        **{**SMALL, "n_repeats": 6}, ragged=True, missing_repeats=0.6, random_state=6
    )
    # (n_stimuli, n_neurons, n_repeats); the first frame is always a valid frame
    first = np.isnan(d.y[:, 0])
    for s, length in enumerate(d.lengths):
        trial_nan = np.isnan(d.y[s, :length])
        assert (trial_nan == first[s][None]).all()  # a trial is missing over the whole stimulus
    assert ((~first).sum(axis=-1) >= 2).all()
    assert first.any()


def test_repeat_mask_drop_rate_and_minimum():
    rng = np.random.default_rng(0)
    keep = _repeat_mask(rng, (400, 50, 10), 0.3)
    assert abs(1 - keep.mean() - 0.3) < 0.005
    keep = _repeat_mask(rng, (400, 50, 4), 0.95)
    assert (keep.sum(axis=-1) >= 2).all()
    # P(kept = 2) = 1 - P(3 or 4 of 4 survive a 5% chance) is close to 1.
    assert (keep.sum(axis=-1) == 2).mean() > 0.95


# --------------------------------------------------------------------------------------
# Noise: the PSTH approaches the rate
# --------------------------------------------------------------------------------------
def test_psth_over_many_repeats_approaches_the_rate():
    R = 2000
    d = make_strf_dataset(n_stimuli=2, n_times=60, n_freqs=6, n_neurons=3, n_repeats=R, n_lags=4,
                          rate_hz=50.0, snr=0.1, random_state=8)
    total = d.y.sum(axis=-1)
    expected = R * d.rates
    z = (total - expected) / np.sqrt(np.maximum(expected, 1e-300))
    busy = expected >= 5
    assert busy.mean() > 0.5
    assert np.abs(z[busy]).max() < 5
    assert (total[~busy] <= 20).all()
    # Poisson: variance over repeats equals the rate, pooled over frames.
    var = d.y.var(axis=-1, ddof=1)
    np.testing.assert_allclose(var.sum(), d.rates.sum(), rtol=0.03)


def test_poisson_repeats_are_independent_poisson():
    rng = np.random.default_rng(0)
    rates = np.full((50, 200, 2), 0.4)
    counts = _poisson_repeats(rng, rates, 10)
    assert counts.shape == (50, 200, 2, 10)
    np.testing.assert_allclose(counts.mean(), 0.4, rtol=0.02)
    np.testing.assert_allclose(counts.var(), 0.4, rtol=0.03)
    np.testing.assert_allclose((counts == 0).mean(), np.exp(-0.4), rtol=0.02)
    flat = counts.reshape(-1, 10)
    assert abs(np.corrcoef(flat[:, 0], flat[:, 1])[0, 1]) < 0.03


def test_gaussian_noise_around_the_rate():
    R = 2000
    d = make_strf_dataset(n_stimuli=2, n_times=60, n_freqs=6, n_neurons=3, n_repeats=R, n_lags=4,
                          nonlinearity="identity", noise="gaussian", random_state=9)
    noise_var = d.rate_hz * d.dt_ms / 1000.0  # the mean rate, per neuron
    z = (d.y.mean(axis=-1) - d.rates) / np.sqrt(noise_var / R)
    assert np.abs(z).max() < 5
    residual = d.y - d.rates[..., None]
    np.testing.assert_allclose(np.mean(residual**2, axis=(0, 1, 3)), noise_var, rtol=0.03)
    assert (d.rates < 0).any()  # identity: no rectification


# --------------------------------------------------------------------------------------
# Stimulus statistics
# --------------------------------------------------------------------------------------
def test_level_to_spectrogram_unit_variance_and_silence_at_zero():
    g = np.random.default_rng(0).standard_normal(400_000)
    X = _level_to_spectrogram(g)
    assert X.min() >= 0
    np.testing.assert_allclose(X.var(), 1.0, rtol=0.01)
    assert _level_to_spectrogram(np.array([-40.0]))[0] < 1e-12


def test_modulation_spectrum_falls_like_one_over_f():
    d = make_strf_dataset(
        n_stimuli=6, n_times=999, n_freqs=34, n_neurons=1, n_repeats=1, random_state=0
    )
    X = d.X
    np.testing.assert_allclose(X.std(), 1.0, atol=0.1)

    def power(axis, other):
        centred = X - X.mean(axis=axis, keepdims=True)
        return np.mean(np.abs(np.fft.rfft(centred, axis=axis)) ** 2, axis=(0, other))

    temporal = power(1, 2)
    # Octaves of modulation frequency from 0.4 Hz (one lone bin at 0.2 Hz is too noisy).
    edges = [2, 4, 8, 16, 32, 64, 128, 256, 500]
    bands = np.array([temporal[a:b].mean() for a, b in zip(edges[:-1], edges[1:])])
    assert (np.diff(bands) < 0).all()
    # Above the 3 Hz corner the power falls about as 1/f^2 (a 1/f amplitude).
    freqs = np.fft.rfftfreq(999, d=d.dt_ms / 1000.0)
    above = freqs > 6.0
    slope = np.polyfit(np.log(freqs[above]), np.log(temporal[above]), 1)[0]
    assert -2.5 < slope < -1.2
    spectral = power(2, 1)
    assert (np.diff(spectral[1:]) < 0).all()


# --------------------------------------------------------------------------------------
# Argument errors
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_stimuli=0), "'n_stimuli' parameter of make_strf_dataset must be an int"),
        (dict(n_times=2.5), "'n_times' parameter"),
        (dict(n_neurons=True), "n_neurons must be a positive integer, not a bool"),
        (dict(n_times=10, n_lags=20), "n_lags must be at most n_times=10"),
        (dict(dt_ms=0.0), "'dt_ms' parameter"),
        (dict(dt_ms=np.inf), "'dt_ms' parameter"),
        (dict(kinds=("separable", "gabor")), "excitation_inhibition"),
        (dict(kinds=()), "non-empty"),
        (dict(nonlinearity="tanh"), "'nonlinearity' parameter"),
        (dict(noise="binomial"), "'noise' parameter"),
        (dict(prefilter="on"), "'prefilter' parameter"),
        (dict(ragged="yes"), "'ragged' parameter"),
        (dict(nonlinearity="identity"), "noise='gaussian'"),
        (dict(missing_repeats=1.0), "'missing_repeats' parameter"),
        (dict(n_repeats=2, missing_repeats=0.1), "n_repeats >= 3"),
        (dict(snr=-1.0), "'snr' parameter"),
        (dict(snr=(-1.0, 1.0)), "snr must satisfy"),
        (dict(rate_hz=(5.0, 2.0)), "rate_hz must satisfy"),
        (dict(rate_hz="fast"), "'rate_hz' parameter"),
        (dict(rate_hz=(1.0, 2.0, 3.0)), "rate_hz must be a positive number or a"),
        (dict(random_state="abc"), "'random_state' parameter"),
    ],
)
def test_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_strf_dataset(**{**SMALL, **kwargs})


# --------------------------------------------------------------------------------------
# Split rule, ON/OFF adaptation away from the estimator's start, deprecated name
# --------------------------------------------------------------------------------------
def test_split_is_the_package_rule():
    from skstrf.model_selection import train_valid_test_indices

    for n_stimuli in range(3, 41):
        for ours, rule in zip(_split_indices(n_stimuli), train_valid_test_indices(n_stimuli)):
            np.testing.assert_array_equal(ours, rule)
    d = make_strf_dataset(**{**SMALL, "n_stimuli": 30}, random_state=0)
    assert (d.train.size, d.valid.size, d.test.size) == (20, 5, 5)


def test_adaptrans_data_differ_from_the_model_start():
    from skstrf.prefilters import willmore_tau_ms

    d = make_strf_dataset(**SMALL, prefilter="adaptrans", random_state=0)
    assert d.prefilter == "adaptrans" and d.strfs.shape == (6, 2, 10, 6)
    np.testing.assert_allclose(d.adaptation_weight, 0.5)
    tau = willmore_tau_ms(d.freqs, d.dt_ms)
    np.testing.assert_allclose(d.adaptation_tau_ms, np.vstack([0.5 * tau, 1.5 * tau]))
    with pytest.warns(FutureWarning, match="renamed 'adaptrans'"):
        old = make_strf_dataset(**SMALL, prefilter="onoff", random_state=0)
    np.testing.assert_array_equal(old.y, d.y)
    assert old.prefilter == "adaptrans"


# --------------------------------------------------------------------------------------
# Realistic data (issue 12)
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def songs():
    return make_realistic_dataset(n_neurons=8, random_state=0)


def test_realistic_songs_shapes_lengths_and_padding(songs):
    d = songs
    S, T, F = d.X.shape
    assert (S, F) == (20, 32) and d.y.shape == (S, T, 8, 10) and d.strfs.shape == (8, 32, 20)
    assert d.rates.shape == (S, T, 8) and d.intercepts.shape == (8,) and d.dt_ms == 5.0
    # Ragged songs of 1.2-2.5 s at 5 ms, padded to the longest, whole frames at the end.
    assert d.lengths.min() >= 240 and d.lengths.max() <= 500 and T == d.lengths.max()
    assert np.unique(d.lengths).size > 10
    valid = np.arange(T)[None, :] < d.lengths[:, None]
    np.testing.assert_array_equal(~np.isnan(d.X).any(axis=2), valid)
    assert np.isnan(d.X[~valid]).all() and np.isnan(d.y[~valid]).all()
    assert not np.isnan(d.y[valid]).any()
    assert (d.train.size, d.valid.size, d.test.size) == (14, 3, 3)
    assert d.freqs.shape == (32,) and np.all(np.diff(d.freqs) > 0)
    np.testing.assert_array_equal(d.silent_bands, np.arange(6))
    assert "20 songs" in d.DESCR


def test_realistic_silent_bands_are_a_log_floor(songs):
    std = np.nanstd(songs.X.reshape(-1, 32), axis=0)
    silent, loud = std[songs.silent_bands], np.delete(std, songs.silent_bands)
    # The measured real cell: 3e-7 to 3e-3 against about 1.
    assert 3e-8 < silent.min() < 3e-7 and 3e-4 < silent.max() < 3e-3
    assert np.all(np.diff(silent) > 0)  # the floor rises towards the song's range
    assert 0.5 < loud.min() and loud.max() < 2.0
    assert silent.max() / np.median(loud) < 1e-2
    # They pass an exact-constant check: no band is constant.
    assert np.all(std > 0)


def test_realistic_rate_and_rates_formula(songs):
    d = songs
    # ~10 spikes/s = 0.05 spikes per 5 ms frame, over all valid frames and trials.
    assert 0.045 < np.nanmean(d.y) < 0.055
    np.testing.assert_allclose(np.nanmean(d.rates.reshape(-1, 8), axis=0), 0.05, rtol=0.02)
    # The cells heard background (the history) before each song, not zero.
    n_history = d.strfs.shape[2] - 1
    assert d.history.shape == (20, n_history, 32)
    drive = _true_drive(np.concatenate([d.history, d.X], axis=1), d.strfs, d.intercepts)[:, n_history:]
    valid = ~np.isnan(drive)
    np.testing.assert_allclose(d.rates[valid], np.logaddexp(0.0, drive[valid]), rtol=1e-10)
    assert np.isnan(d.rates[~valid]).all()
    # After the first n_lags - 1 frames the history is out of reach.
    late = _true_drive(d.X, d.strfs, d.intercepts)
    np.testing.assert_allclose(drive[:, n_history:][valid[:, n_history:]],
                               late[:, n_history:][valid[:, n_history:]], rtol=1e-12)
    np.testing.assert_array_equal(d.y[~np.isnan(d.y)], np.round(d.y[~np.isnan(d.y)]))


def test_realistic_strfs_are_not_low_rank_gaussians(songs):
    s = np.linalg.svd(songs.strfs, compute_uv=False)
    rank1 = s[:, 0] ** 2 / (s**2).sum(axis=1)
    assert rank1.max() < 0.9 and rank1.mean() < 0.8  # a separable Gaussian STRF has 1.0
    # Several lobes of each sign: more than one local extremum above 20% of the peak.
    for strf in songs.strfs:
        peak = np.abs(strf).max()
        assert (strf > 0.2 * peak).sum() > 5 and (strf < -0.2 * peak).sum() > 5
    # Onset-dominated: the strongest excitation comes early (within 25 ms), followed by
    # suppression.
    lag_of_max = np.argmax(songs.strfs.max(axis=1), axis=1)
    assert np.all(lag_of_max <= 5)
    assert np.all(songs.strfs.sum(axis=(1, 2)) < 0)


def test_realistic_is_deterministic_and_streams_are_independent():
    a = make_realistic_dataset(n_stimuli=4, random_state=5)
    b = make_realistic_dataset(n_stimuli=4, random_state=5)
    for key in ("X", "y", "strfs", "intercepts", "lengths"):
        np.testing.assert_array_equal(a[key], b[key])
    c = make_realistic_dataset(n_stimuli=4, n_repeats=3, random_state=5)
    np.testing.assert_array_equal(a.X, c.X)
    np.testing.assert_array_equal(a.strfs, c.strfs)
    assert not np.array_equal(a.X, make_realistic_dataset(n_stimuli=4, random_state=6).X)


def test_realistic_continuous_recording():
    d = make_realistic_dataset("continuous", random_state=0)
    assert d.X.shape == (700, 2) and d.y.shape == (700, 5, 20) and d.strfs.shape == (5, 2, 20)
    assert d.rates.shape == (700, 5) and d.dt_ms == 10.0 and d.freqs is None
    assert d.channels.tolist() == ["contra", "ipsi"] and not np.isnan(d.X).any()
    # Contiguous frame blocks for the split: 490 / 105 / 105.
    np.testing.assert_array_equal(np.concatenate([d.train, d.valid, d.test]), np.arange(700))
    assert (d.train.size, d.valid.size) == (490, 105)
    # Contra excites early (onset), ipsi inhibits (EI units).
    assert np.all(np.argmax(d.strfs[:, 0], axis=1) <= 4) and np.all(d.strfs[:, 0].max(axis=1) > 0)
    assert np.all(d.strfs[:, 1].sum(axis=1) < 0)
    drive = _true_drive(np.concatenate([d.history, d.X]), d.strfs, d.intercepts)[d.history.shape[0]:]
    np.testing.assert_allclose(d.rates, np.logaddexp(0.0, drive), rtol=1e-10)
    rates_hz = d.rates.mean(axis=0) * 100.0
    assert np.all((rates_hz > 1.9) & (rates_hz < 15.5))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(layout="songs"), "'layout' parameter"),
        (dict(layout="continuous", n_stimuli=3), "n_stimuli applies to layout='stimuli'"),
        (dict(n_lags=0), "'n_lags' parameter"),
        (dict(nonlinearity="identity"), "'nonlinearity' parameter"),
        (dict(snr=(2.0, 1.0)), "snr must satisfy"),
        (dict(preceding="zero"), "'preceding' parameter"),
    ],
)
def test_realistic_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_realistic_dataset(**kwargs)


def test_realistic_history_is_silence_not_zero(songs):
    """Before each stimulus the cells hear background noise at ``silence``, far below zero."""
    d = songs
    loud = np.setdiff1d(np.arange(32), d.silent_bands)
    # Closed form for the loud bands (the log floor is negligible there): the mean of
    # log10(b g), g ~ Exp(1), is log10(b) - Euler's gamma / ln 10.
    np.testing.assert_allclose(d.silence[loud], -3.5 - np.euler_gamma / np.log(10.0), atol=1e-5)
    np.testing.assert_allclose(d.silence[d.silent_bands], -10.0, atol=2e-3)
    # The history is that background: its mean level per band is the silence level, and it
    # is quieter than the songs' loud frames; the songs start with silence, at that level.
    np.testing.assert_allclose(d.history.mean(axis=(0, 1))[loud], d.silence[loud], atol=0.1)
    assert np.all(d.history[..., loud].mean(axis=(0, 1)) < np.nanpercentile(d.X[..., loud], 90, axis=(0, 1)))
    np.testing.assert_allclose(np.nanmean(d.X[:, :5, loud]), d.silence[loud].mean(), atol=0.15)
    # Zero (the history of a model that zero-pads) is louder than nearly every frame.
    assert np.mean(d.X[..., loud][~np.isnan(d.X[..., loud])] < 0) > 0.99
    cont = make_realistic_dataset("continuous", random_state=0)
    np.testing.assert_allclose(cont.silence, -3.5 - np.euler_gamma / np.log(10.0), atol=1e-5)
    assert cont.history.shape == (19, 2)
    # X is drawn before the history: it does not depend on n_lags
    np.testing.assert_array_equal(make_realistic_dataset(n_stimuli=3, n_lags=10, random_state=1).X,
                                  make_realistic_dataset(n_stimuli=3, n_lags=25, random_state=1).X)


def test_realistic_defaults_are_the_documented_ones():
    """The docstring's defaults are the generator's (rates and SNRs per layout)."""
    doc = make_realistic_dataset.__doc__
    assert 'None: 10 ("stimuli") or (2, 15) ("continuous")' in doc
    assert 'None: 0.6 ("stimuli") or (0.2, 2) ("continuous")' in doc
    songs = make_realistic_dataset(random_state=0)
    np.testing.assert_allclose([songs.rate_hz[0], songs.snr[0]], [10.0, 0.6])
    cont = make_realistic_dataset("continuous", random_state=0)
    assert np.all((cont.rate_hz >= 2) & (cont.rate_hz <= 15)) and np.all((cont.snr >= 0.2) & (cont.snr <= 2))


# --------------------------------------------------------------------------------------
# What the cells heard before each stimulus, and outputs that are not the LN model's
# (issue 24)
# --------------------------------------------------------------------------------------
def _full_drive(d):
    """Drive of the true STRFs over the history followed by each stimulus (no intercept)."""
    return _true_drive(np.concatenate([d.history, d.X], axis=1), d.strfs, np.zeros(d.strfs.shape[0]))


def test_realistic_default_is_silence_and_unchanged_by_the_new_options():
    default = make_realistic_dataset(n_stimuli=4, n_neurons=2, random_state=3)
    assert default.preceding == "silence"
    explicit = make_realistic_dataset(n_stimuli=4, n_neurons=2, preceding="silence", random_state=3)
    for key in ("X", "y", "rates", "history", "strfs", "intercepts"):
        np.testing.assert_array_equal(default[key], explicit[key])
    # The new options draw from their own streams: the songs and the cells stay the same.
    for preceding in ("previous", "background"):
        other = make_realistic_dataset(n_stimuli=4, n_neurons=2, preceding=preceding, random_state=3)
        np.testing.assert_array_equal(other.lengths, default.lengths)
        s = np.linalg.svd(other.strfs.reshape(2, -1), compute_uv=False)
        assert other.strfs.shape == default.strfs.shape and np.all(s > 0)
        if preceding == "previous":
            np.testing.assert_array_equal(other.X, default.X)


def test_realistic_threshold_power_closed_form():
    d = make_realistic_dataset(n_stimuli=4, n_neurons=3, nonlinearity="threshold-power", random_state=0)
    n_history = d.strfs.shape[2] - 1
    drive = d.intercepts + _full_drive(d)[:, n_history:]
    valid = ~np.isnan(drive)
    # (atol: near threshold, z**2 doubles the relative rounding of z)
    np.testing.assert_allclose(d.rates[valid], np.maximum(drive[valid], 0.0) ** 2, rtol=1e-9, atol=1e-14)
    # Below threshold the rate is exactly zero, so are the spike counts; above it, it grows
    # faster than linearly.
    silent = valid & (drive <= 0)
    assert silent.mean() > 0.2
    assert np.all(d.y[silent] == 0)
    np.testing.assert_allclose(np.nanmean(d.rates.reshape(-1, 3), axis=0), 0.05, rtol=0.02)
    snr = np.nanvar(d.rates.reshape(-1, 3), axis=0) / np.nanmean(d.rates.reshape(-1, 3), axis=0)
    np.testing.assert_allclose(snr, 0.6, rtol=0.05)
    assert "threshold-power output" in d.DESCR


def test_adapt_step_response_closed_form():
    """A step of the static output from 1 to 3, from steady state."""
    dt_ms, m, n0 = 5.0, 2.0, 40
    f = np.ones((1, 200, 1))
    f[:, n0:] = 3.0
    r = _adapt(f, dt_ms, np.array([m]))[0, :, 0]
    k, a = _ADAPT_STRENGTH, np.exp(-dt_ms / _ADAPT_TAU_MS)
    np.testing.assert_allclose(r[:n0], 1.0 / (1.0 + k * 1.0 / m), rtol=1e-12)
    j = np.arange(200 - n0)
    state = 3.0 - 2.0 * a**j  # A at the step frame is still 1: it averages the past only
    np.testing.assert_allclose(r[n0:], 3.0 / (1.0 + k * state / m), rtol=1e-12)
    # An onset transient that settles: the peak at the step, then a decay to steady state.
    assert r[n0] == r.max() and np.all(np.diff(r[n0:]) < 0)


def test_realistic_adaptation_follows_its_recursion():
    d = make_realistic_dataset(n_stimuli=3, n_neurons=2, nonlinearity="adaptation", random_state=1)
    n_lags = d.strfs.shape[2]
    n_warmup = 90  # 3 time constants of 150 ms at 5 ms
    assert d.history.shape == (3, n_lags - 1 + n_warmup, 32)
    with np.errstate(invalid="ignore"):  # NaN padding stays NaN
        static = np.logaddexp(0.0, d.intercepts + _full_drive(d)[:, n_lags - 1:])
    a = np.exp(-d.dt_ms / _ADAPT_TAU_MS)
    expected = np.full_like(d.rates, np.nan)
    for s in range(3):  # the defining recursion, one frame at a time
        state = static[s, 0].copy()
        for t in range(static.shape[1]):
            if t > 0:
                state = a * state + (1 - a) * static[s, t - 1]
            if t >= n_warmup and not np.isnan(static[s, t, 0]):
                expected[s, t - n_warmup] = static[s, t] / (1 + _ADAPT_STRENGTH * state / d.mean_static)
    valid = ~np.isnan(d.rates)
    np.testing.assert_array_equal(valid, ~np.isnan(expected))
    np.testing.assert_allclose(d.rates[valid], expected[valid], rtol=1e-9)
    # The calibration reaches the targets through the adaptation.
    rates = d.rates.reshape(-1, 2)
    np.testing.assert_allclose(np.nanmean(rates, axis=0), 0.05, rtol=0.01)
    np.testing.assert_allclose(np.nanvar(rates, axis=0) / np.nanmean(rates, axis=0), 0.6, rtol=0.01)
    # Not a static nonlinearity of the drive: the same static output gives other rates
    # at other times.
    assert np.corrcoef(static[:, n_warmup:][valid], d.rates[valid])[0, 1] < 0.99


def test_realistic_previous_stimulus_is_heard_back_to_back():
    d = make_realistic_dataset(n_stimuli=5, n_neurons=2, preceding="previous", random_state=2)
    silence = make_realistic_dataset(n_stimuli=5, n_neurons=2, random_state=2)
    n_history = d.history.shape[1]
    assert sorted(d.order) == list(range(5)) and "end of the previous stimulus" in d.DESCR
    for before, after in zip(d.order[:-1], d.order[1:]):
        length = d.lengths[before]
        np.testing.assert_array_equal(d.history[after], d.X[before, length - n_history: length])
    # The first stimulus presented heard silence: the default mode's first draw of it.
    np.testing.assert_array_equal(d.history[d.order[0]], silence.history[0])
    drive = d.intercepts + _full_drive(d)[:, n_history:]
    valid = ~np.isnan(drive)
    np.testing.assert_allclose(d.rates[valid], np.logaddexp(0.0, drive[valid]), rtol=1e-10)
    # Songs end with at least 50 ms of quiet, but the last syllable can still be in reach:
    # some of what the cells heard first is far louder than silence ever is.
    assert d.history[d.order[1:]][..., 6:].max() > silence.history[..., 6:].max() + 1.0
    cont = make_realistic_dataset("continuous", preceding="previous", random_state=0)
    np.testing.assert_array_equal(cont.history, cont.X[-cont.history.shape[0]:])


def test_realistic_background_goes_on_during_the_stimuli():
    quiet = make_realistic_dataset(n_stimuli=6, n_neurons=2, random_state=4)
    d = make_realistic_dataset(n_stimuli=6, n_neurons=2, preceding="background", random_state=4)
    valid = ~np.isnan(quiet.X)
    np.testing.assert_array_equal(np.isnan(d.X), ~valid)
    # Power adds before the log: the same songs, never quieter, louder where they are quiet;
    # the bands without song stay at the floor.
    assert np.all(d.X[valid] >= quiet.X[valid])
    np.testing.assert_array_equal(d.X[..., :6], quiet.X[..., :6])
    loud = np.arange(6, 32)
    assert np.nanmean(d.X[..., loud]) > np.nanmean(quiet.X[..., loud]) + 0.5
    # At rest the cells hear the background, near X's median level, not far below all of X.
    np.testing.assert_allclose(d.silence, d.history.reshape(-1, 32).mean(axis=0))
    gap_bg = np.abs(d.silence[loud] - np.nanmedian(d.X[..., loud], axis=(0, 1)))
    gap_quiet = np.abs(quiet.silence[loud] - np.nanmedian(quiet.X[..., loud], axis=(0, 1)))
    assert gap_bg.mean() < 0.5 and gap_quiet.mean() > 0.5
    drive = d.intercepts + _full_drive(d)[:, d.history.shape[1]:]
    ok = ~np.isnan(drive)
    np.testing.assert_allclose(d.rates[ok], np.logaddexp(0.0, drive[ok]), rtol=1e-10)
    cont = make_realistic_dataset("continuous", preceding="background", random_state=0)
    base = make_realistic_dataset("continuous", random_state=0)
    assert np.all(cont.X >= base.X) and cont.X.mean() > base.X.mean()
