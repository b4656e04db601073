"""Tests for skstrf.metrics against loop-based reference implementations and closed forms."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.exceptions import UndefinedMetricWarning

from skstrf.metrics import (
    _as_stimulus_layout,
    _hsu_split_masks,
    cc,
    cc_norm,
    noise_ceiling,
    noise_power,
    signal_power,
)

# ---------------------------------------------------------------------------
# Data: ragged stimuli, missing repeats per stimulus and per neuron
# ---------------------------------------------------------------------------


def make_ragged(seed=0, n_stimuli=4, n_times=30, n_neurons=5, n_repeats=6, noise=0.8):
    """Random responses with NaN end padding and NaN (missing) repeats.

    Returns y (S, T, N, R), y_pred (S, T, N) with NaN at padding frames, and the signal.
    """
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=(n_stimuli, n_times, n_neurons)) + rng.normal(size=(n_stimuli, 1, 1))
    y = signal[..., None] + noise * rng.normal(size=(n_stimuli, n_times, n_neurons, n_repeats))
    lengths = rng.integers(n_times // 2, n_times + 1, size=n_stimuli)
    lengths[0] = n_times
    for s, length in enumerate(lengths):
        y[s, length:] = np.nan
        for n in range(n_neurons):
            # 1..R repeats kept, at random positions (not only the last ones dropped)
            n_keep = rng.integers(1, n_repeats + 1)
            drop = rng.permutation(n_repeats)[n_keep:]
            y[s, :, n, drop] = np.nan
    # guarantee every neuron has at least one stimulus with >= 2 repeats
    y[0, :, :, :2] = signal[0, :, :, None] + noise * rng.normal(size=(n_times, n_neurons, 2))
    y_pred = 0.7 * signal + rng.normal(size=signal.shape)
    y_pred[np.isnan(y).all(axis=3)] = np.nan
    return y, y_pred, signal


def _valid_frames(y, s, n):
    """Indices of frames of stimulus s with at least one finite repeat for neuron n."""
    return [t for t in range(y.shape[1]) if np.isfinite(y[s, t, n]).any()]


def _present_repeats(y, s, n):
    return [r for r in range(y.shape[3]) if np.isfinite(y[s, :, n, r]).any()]


def ref_pooled(y, y_pred, n):
    """Concatenated (pred, psth) over the valid frames of all stimuli, for neuron n."""
    preds, psth = [], []
    for s in range(y.shape[0]):
        for t in _valid_frames(y, s, n):
            reps = y[s, t, n][np.isfinite(y[s, t, n])]
            psth.append(reps.mean())
            preds.append(y_pred[s, t, n])
    return np.array(preds), np.array(psth)


def ref_cc(y, y_pred):
    out = []
    for n in range(y.shape[2]):
        a, b = ref_pooled(y, y_pred, n)
        out.append(np.corrcoef(a, b)[0, 1])
    return np.array(out)


def ref_powers(y):
    """Per-neuron (signal power, noise power) with loops.

    Signal power: variance of the PSTH pooled over the valid frames of all stimuli, minus
    the trial noise left in the PSTH, ``(TP_s - var(psth_s)) / (R_s - 1)`` averaged over
    stimuli with at least two repeats (weighted by frames). Noise power: the noise of a
    single repeat, ``R_s (TP_s - var(psth_s)) / (R_s - 1)`` averaged the same way.
    """
    sp, npow = [], []
    for n in range(y.shape[2]):
        psth_noise, repeat_noise, w = [], [], []
        for s in range(y.shape[0]):
            reps = _present_repeats(y, s, n)
            if len(reps) < 2:
                continue
            sub = y[s][np.ix_(_valid_frames(y, s, n), [n], reps)][:, 0, :]  # (T_v, R_v)
            r_count = len(reps)
            psth = sub.mean(axis=1)
            mean_var = np.mean([np.var(sub[:, j]) for j in range(r_count)])
            psth_noise.append((mean_var - np.var(psth)) / (r_count - 1))
            repeat_noise.append(r_count * psth_noise[-1])
            w.append(sub.shape[0])
        if not w:
            sp.append(np.nan)
            npow.append(np.nan)
            continue
        _, pooled_psth = ref_pooled(y, np.zeros(y.shape[:3]), n)
        sp.append(np.var(pooled_psth) - np.average(psth_noise, weights=w))
        npow.append(np.average(repeat_noise, weights=w))
    return np.array(sp), np.array(npow)


def ref_cc_norm_schoppe(y, y_pred):
    sp, _ = ref_powers(y)
    out = []
    for n in range(y.shape[2]):
        a, b = ref_pooled(y, y_pred, n)
        cov = np.mean((a - a.mean()) * (b - b.mean()))
        out.append(cov / np.sqrt(np.var(a) * sp[n]) if sp[n] > 0 else np.nan)
    return np.array(out)


def ref_ceiling_schoppe(y):
    sp, _ = ref_powers(y)
    out = []
    for n in range(y.shape[2]):
        _, b = ref_pooled(y, np.zeros(y.shape[:3]), n)
        out.append(np.sqrt(sp[n] / np.var(b)) if sp[n] > 0 else np.nan)
    return np.array(out)


def ref_ceiling_hsu(y, n_splits, seed):
    """Split-half ceiling with loops, using the module's halvings for the same seed."""
    present = np.isfinite(y).any(axis=1)
    in_a, in_b = _hsu_split_masks(present, n_splits, np.random.RandomState(seed))
    out = []
    for n in range(y.shape[2]):
        rhos = []
        for k in range(n_splits):
            half_a, half_b = [], []
            for s in range(y.shape[0]):
                if len(_present_repeats(y, s, n)) < 2:
                    continue
                frames = _valid_frames(y, s, n)
                half_a.extend(y[s, frames, n][:, in_a[k, s, n]].mean(axis=1))
                half_b.extend(y[s, frames, n][:, in_b[k, s, n]].mean(axis=1))
            rhos.append(np.corrcoef(half_a, half_b)[0, 1])
        rho = np.mean(rhos)
        out.append(np.sqrt(2 * rho / (1 + rho)) if rho > 0 else np.nan)
    return np.array(out)


def nan_psth(y):
    """PSTH over the repeats axis, NaN at padding frames."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # mean of an all-NaN slice
        return np.nanmean(y, axis=-1)


def to_layout(y, y_pred, layout, repeats):
    """Cut canonical (S, T, N, R) data down to one of the accepted layouts.

    Returns the inputs in that layout and their canonical (S, T, N, R) / (S, T, N) form.
    """
    stimuli = slice(0, 1) if layout.startswith("continuous") else slice(None)
    neurons = slice(0, 1) if layout.endswith("one_neuron") else slice(None)
    y4, p3 = y[stimuli, :, neurons], y_pred[stimuli, :, neurons]
    if not repeats:
        y4 = nan_psth(y4)[..., None]
    yt, yp = y4, p3
    if layout.startswith("continuous"):
        yt, yp = yt[0], yp[0]
    if layout == "continuous_one_neuron":
        yt, yp = yt[:, 0], yp[:, 0]
    if not repeats:
        yt = yt[..., 0]
    return yt, yp, y4, p3


LAYOUTS = ["continuous_one_neuron", "continuous", "stimuli_one_neuron", "stimuli"]


def test_test_data_is_ragged():
    y, y_pred, _ = make_ragged(seed=1)
    n_frames = np.isfinite(y).any(axis=3).sum(axis=1)  # (S, N)
    n_repeats = np.isfinite(y).any(axis=1).sum(axis=2)  # (S, N)
    assert len(np.unique(n_frames)) > 1  # stimuli of different lengths
    assert (n_repeats.min(axis=1) < n_repeats.max(axis=1)).all()  # varies across neurons
    assert (n_repeats.min(axis=0) < n_repeats.max(axis=0)).any()  # and across stimuli
    assert (n_repeats == 1).any() and (n_repeats == y.shape[3]).any()
    assert np.array_equal(np.isnan(y_pred), ~np.isfinite(y).any(axis=3))


# ---------------------------------------------------------------------------
# Layout handling
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "true_shape, pred_shape, expected_true, expected_pred, has_repeats",
    [
        ((7,), (7,), (1, 7, 1, 1), (1, 7, 1), False),
        ((7, 3), (7,), (1, 7, 1, 3), (1, 7, 1), True),
        ((7, 2), (7, 2), (1, 7, 2, 1), (1, 7, 2), False),
        ((7, 2, 4), (7, 2), (1, 7, 2, 4), (1, 7, 2), True),
        ((3, 7, 2), (3, 7, 2), (3, 7, 2, 1), (3, 7, 2), False),
        ((3, 7, 2, 4), (3, 7, 2), (3, 7, 2, 4), (3, 7, 2), True),
    ],
)
def test_as_stimulus_layout_shapes(
    true_shape, pred_shape, expected_true, expected_pred, has_repeats
):
    yt = np.arange(np.prod(true_shape), dtype=float).reshape(true_shape)
    yt4, yp3, rep = _as_stimulus_layout(yt, np.zeros(pred_shape))
    assert yt4.shape == expected_true and yp3.shape == expected_pred and rep is has_repeats
    # the values keep their order: frames along axis 1, repeats last
    assert_allclose(yt4.ravel(), yt.ravel())


# ---------------------------------------------------------------------------
# Against the loop references, every layout, both multioutput modes
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("repeats", [True, False])
def test_cc_matches_reference(layout, repeats):
    y, y_pred, _ = make_ragged(seed=1)
    yt, yp, y4, p3 = to_layout(y, y_pred, layout, repeats)
    expected = ref_cc(y4, p3)
    assert_allclose(cc(yt, yp, multioutput="raw_values"), expected, rtol=1e-10)
    assert cc(yt, yp) == pytest.approx(np.mean(expected), rel=1e-10)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_cc_norm_schoppe_matches_reference(layout):
    y, y_pred, _ = make_ragged(seed=2)
    yt, yp, y4, p3 = to_layout(y, y_pred, layout, True)
    expected = ref_cc_norm_schoppe(y4, p3)
    got = cc_norm(yt, yp, multioutput="raw_values")
    assert got.shape == (y4.shape[2],)
    assert_allclose(got, expected, rtol=1e-10)
    assert cc_norm(yt, yp) == pytest.approx(np.nanmean(expected), rel=1e-10)


@pytest.mark.parametrize("layout", ["continuous", "stimuli"])
def test_signal_and_noise_power_match_reference(layout):
    y, y_pred, _ = make_ragged(seed=3)
    yt, _, y4, _ = to_layout(y, y_pred, layout, True)
    sp, npow = ref_powers(y4)
    assert_allclose(signal_power(yt), sp, rtol=1e-10)
    assert_allclose(noise_power(yt), npow, rtol=1e-10)


def test_noise_ceiling_schoppe_matches_reference():
    y, _, _ = make_ragged(seed=4)
    assert_allclose(noise_ceiling(y), ref_ceiling_schoppe(y), rtol=1e-10)


@pytest.mark.parametrize("layout", ["continuous", "stimuli"])
def test_noise_ceiling_hsu_matches_reference(layout):
    y, y_pred, _ = make_ragged(seed=5, noise=0.5)
    yt, _, y4, _ = to_layout(y, y_pred, layout, True)
    expected = ref_ceiling_hsu(y4, n_splits=7, seed=11)
    got = noise_ceiling(yt, method="hsu", n_splits=7, random_state=11)
    assert np.isfinite(expected).all()
    assert_allclose(got, expected, rtol=1e-9)


def test_cc_norm_is_cc_over_ceiling_for_both_methods():
    y, y_pred, _ = make_ragged(seed=6, noise=0.5)
    raw_cc = cc(y, y_pred, multioutput="raw_values")
    for method in ("schoppe", "hsu"):
        ceiling = noise_ceiling(y, method=method, n_splits=100, random_state=0)
        got = cc_norm(y, y_pred, method=method, multioutput="raw_values")
        assert_allclose(got, raw_cc / ceiling, rtol=1e-9)


def test_hsu_split_masks_are_random_halves_of_present_repeats():
    rng = np.random.default_rng(0)
    present = rng.random((3, 4, 7)) < 0.6
    in_a, in_b = _hsu_split_masks(present, 50, np.random.RandomState(0))
    n_rep = present.sum(-1)
    assert not (in_a & in_b).any()
    assert np.array_equal(in_a | in_b, np.broadcast_to(present, in_a.shape))
    assert np.array_equal(in_a.sum(-1), np.broadcast_to(n_rep // 2, in_a.shape[:-1]))
    # halves differ between splits wherever there is a choice to make
    choice = n_rep >= 2
    assert (in_a[:, choice] != in_a[:1, choice]).any(axis=-1).mean() > 0.5
    # each present repeat lands in half A about half the time
    assert (in_a.mean(axis=0)[present & (n_rep[..., None] >= 4)] > 0.2).all()


def test_hsu_is_deterministic_for_a_seed():
    y, _, _ = make_ragged(seed=7, noise=1.5)
    a = noise_ceiling(y, method="hsu", n_splits=5, random_state=3)
    b = noise_ceiling(y, method="hsu", n_splits=5, random_state=3)
    c = noise_ceiling(y, method="hsu", n_splits=5, random_state=4)
    assert_allclose(a, b, rtol=0, atol=0)
    assert not np.allclose(a, c, equal_nan=True)


# ---------------------------------------------------------------------------
# Closed forms
# ---------------------------------------------------------------------------


def test_noiseless_repeats():
    y, y_pred, signal = make_ragged(seed=8, noise=0.0)
    # all repeats identical: SP is the variance of the PSTH over all valid frames pooled
    # across stimuli (differences in mean rate between stimuli included), so the noise
    # ceiling is exactly 1 and a perfect prediction scores cc_norm == 1
    sp_expected = [np.var(ref_pooled(y, np.zeros(y.shape[:3]), n)[1]) for n in range(y.shape[2])]
    assert_allclose(signal_power(y), sp_expected, rtol=1e-10)
    assert_allclose(noise_ceiling(y), 1.0, rtol=1e-10)
    perfect = np.where(np.isnan(y).all(axis=3), np.nan, signal)
    assert_allclose(cc_norm(y, perfect, multioutput="raw_values"), 1.0, rtol=1e-10)
    assert_allclose(noise_power(y), 0.0, atol=1e-12)
    # one recording: SP == var(PSTH), so the ceiling is 1 and cc_norm == cc
    one = y[0]
    psth = signal[0]
    assert_allclose(signal_power(one), psth.var(axis=0), rtol=1e-10)
    assert_allclose(noise_ceiling(one), 1.0, rtol=1e-10)
    assert_allclose(noise_ceiling(one, method="hsu", n_splits=5), 1.0, rtol=1e-10)
    for method in ("schoppe", "hsu"):
        assert_allclose(
            cc_norm(one, y_pred[0], method=method, multioutput="raw_values"),
            cc(one, y_pred[0], multioutput="raw_values"),
            rtol=1e-10,
        )


def test_known_signal_and_gaussian_noise():
    rng = np.random.default_rng(9)
    n_times, n_repeats = 20000, 8
    sigma = np.array([0.5, 1.0, 2.0])
    signal = rng.normal(size=(n_times, 3))  # variance 1
    y = signal[..., None] + sigma[:, None] * rng.normal(size=(n_times, 3, n_repeats))
    assert_allclose(signal_power(y), 1.0, atol=0.06)
    assert_allclose(noise_power(y), sigma**2, rtol=0.03)
    # the PSTH of R repeats has noise variance sigma^2 / R
    ceiling = np.sqrt(1.0 / (1.0 + sigma**2 / n_repeats))
    assert_allclose(noise_ceiling(y), ceiling, atol=0.02)
    assert_allclose(noise_ceiling(y, method="hsu", n_splits=20), ceiling, atol=0.02)
    # the noise-free signal is the perfect model
    for method in ("schoppe", "hsu"):
        got = cc_norm(y, signal, method=method, multioutput="raw_values")
        assert_allclose(got, 1.0, atol=0.03)


def test_pred_equal_to_psth_gives_cc_one_and_cc_norm_above_one():
    y, _, _ = make_ragged(seed=10, noise=1.0)
    psth = nan_psth(y)
    assert_allclose(cc(y, psth, multioutput="raw_values"), 1.0, rtol=1e-12)
    assert_allclose(cc(y, -2.0 * psth + 5.0, multioutput="raw_values"), -1.0, rtol=1e-12)
    # the PSTH carries noise, so it beats the ceiling: cc_norm = 1 / CCmax > 1, unclipped
    scores = cc_norm(y, psth, multioutput="raw_values")
    assert (scores > 1).all()
    assert_allclose(scores, 1.0 / noise_ceiling(y), rtol=1e-10)


@pytest.mark.parametrize("has_axis", [False, True])
def test_single_repeat_falls_back_to_cc(has_axis):
    y, y_pred, _ = make_ragged(seed=11)
    if has_axis:
        # one recorded repeat per stimulus and neuron, not always the same one
        psth = nan_psth(y)
        keep = np.random.default_rng(0).integers(0, y.shape[3], size=(y.shape[0], y.shape[2]))
        single = np.full_like(y, np.nan)
        s_idx, n_idx = np.indices(keep.shape)
        single[s_idx, :, n_idx, keep] = psth.transpose(0, 2, 1)
        y_true = single
    else:
        y_true = nan_psth(y)
    expected = cc(y_true, y_pred, multioutput="raw_values")
    for method in ("schoppe", "hsu"):
        with pytest.warns(UndefinedMetricWarning, match="falls back to the uncorrected cc"):
            got = cc_norm(y_true, y_pred, method=method, multioutput="raw_values")
        assert_allclose(got, expected, rtol=1e-12)


# ---------------------------------------------------------------------------
# Undefined scores
# ---------------------------------------------------------------------------


def test_constant_prediction_gives_nan_and_one_warning():
    y, y_pred, _ = make_ragged(seed=12)
    y_pred[:, :, [1, 3]] = 2.5
    y_pred[np.isnan(y).all(axis=3)] = np.nan
    with pytest.warns(UndefinedMetricWarning, match="2 of 5 neurons") as record:
        raw = cc(y, y_pred, multioutput="raw_values")
    assert len(record) == 1
    assert np.isnan(raw[[1, 3]]).all() and np.isfinite(raw[[0, 2, 4]]).all()
    with pytest.warns(UndefinedMetricWarning):
        assert cc(y, y_pred) == pytest.approx(np.mean(raw[[0, 2, 4]]))
    with pytest.warns(UndefinedMetricWarning, match="2 of 5 neurons"):
        assert np.isnan(cc_norm(y, y_pred, multioutput="raw_values")[[1, 3]]).all()


def test_non_positive_signal_power_gives_nan():
    rng = np.random.default_rng(13)
    x = rng.normal(size=(50, 2))
    # neuron 0: two repeats that cancel (PSTH constant, SP = -var < 0); neuron 1: normal
    cancelling = np.stack([x[:, 0], -x[:, 0]], axis=-1)
    reliable = x[:, 1:2] + 0.1 * rng.normal(size=(50, 2))
    y = np.stack([cancelling, reliable], axis=1)  # (50, 2, 2)
    assert signal_power(y)[0] < 0
    assert np.isnan(noise_ceiling(y)[0]) and np.isfinite(noise_ceiling(y)[1])
    pred = rng.normal(size=(50, 2))
    with pytest.warns(UndefinedMetricWarning, match="1 of 2 neurons.*signal power"):
        scores = cc_norm(y, pred, multioutput="raw_values")
    assert np.isnan(scores[0]) and np.isfinite(scores[1])


def test_neuron_without_repeated_stimulus_has_nan_signal_power():
    y, y_pred, _ = make_ragged(seed=14)
    y[:, :, 2, 1:] = np.nan  # neuron 2 keeps a single repeat everywhere
    y[:, :, 2, 0] = np.where(np.isnan(y[:, :, 0, 0]), np.nan, 1.0 + np.arange(y.shape[1]))
    y_pred[np.isnan(y).all(axis=3)] = np.nan
    assert np.isnan(signal_power(y)[2]) and np.isfinite(np.delete(signal_power(y), 2)).all()
    with pytest.warns(UndefinedMetricWarning, match="1 of 5 neurons"):
        assert np.isnan(cc_norm(y, y_pred, multioutput="raw_values")[2])


def test_all_nan_average_is_nan_without_runtime_warning():
    y = np.random.default_rng(15).normal(size=(20, 3, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.warns(UndefinedMetricWarning):
            assert np.isnan(cc(y, np.ones((20, 3))))


def test_prediction_at_padding_frames_is_ignored():
    y, y_pred, _ = make_ragged(seed=16)
    padding = np.isnan(y).all(axis=3)
    assert padding.any()
    other = y_pred.copy()
    other[padding] = np.inf
    assert cc_norm(y, other) == cc_norm(y, y_pred)


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "true_shape, pred_shape",
    [((10, 3), (10, 4)), ((10, 3, 2, 1), (10, 3)), ((2, 10, 3, 4), (2, 10, 4)), ((10,), (10, 1))],
)
def test_shape_mismatch_names_both_shapes(true_shape, pred_shape):
    with pytest.raises(ValueError, match=r"y_true has shape .* but y_pred has shape .*expected"):
        cc(np.zeros(true_shape), np.zeros(pred_shape))


def test_y_pred_with_too_many_dimensions():
    with pytest.raises(ValueError, match=r"y_pred must have shape"):
        cc(np.zeros((2, 3, 4, 5)), np.zeros((2, 3, 4, 5)))


def test_non_finite_prediction_at_valid_frame():
    y, y_pred, _ = make_ragged(seed=17)
    y_pred[0, 0, 0] = np.nan
    y_pred[0, 1, 1] = np.inf
    match = "y_pred has 2 non-finite values at frames where y_true is valid"
    with pytest.raises(ValueError, match=match):
        cc_norm(y, y_pred)


def test_inf_and_inner_nan_in_y_true():
    y, y_pred, _ = make_ragged(seed=18)
    bad = y.copy()
    bad[0, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        cc(bad, y_pred)
    bad = y.copy()
    bad[0, 3, 0, 0] = np.nan  # a hole inside a recorded repeat
    with pytest.raises(ValueError, match="NaN values inside recorded repeats"):
        signal_power(bad)


@pytest.mark.parametrize("func", [signal_power, noise_power, noise_ceiling])
@pytest.mark.parametrize("shape", [(30,), (30, 4), (2, 3, 30, 4, 2)])
def test_repeat_functions_need_a_repeats_axis(func, shape):
    with pytest.raises(ValueError, match=r"\(n_times, n_neurons, n_repeats\) or \(n_stimuli"):
        func(np.zeros(shape))


def test_unknown_options():
    y, y_pred, _ = make_ragged(seed=19)
    allowed = r"multioutput must be one of \['raw_values', 'uniform_average'\]"
    with pytest.raises(ValueError, match=allowed):
        cc(y, y_pred, multioutput="variance_weighted")
    with pytest.raises(ValueError, match=r"method must be one of \['schoppe', 'hsu'\]"):
        cc_norm(y, y_pred, method="pearson")
    with pytest.raises(ValueError, match="multioutput must be one of"):
        cc_norm(y, y_pred, multioutput=None)
    with pytest.raises(ValueError, match="method must be one of"):
        noise_ceiling(y, method="spearman")
    with pytest.raises(ValueError, match="n_splits must be a positive integer"):
        noise_ceiling(y, method="hsu", n_splits=0)


@pytest.mark.parametrize(
    "bad, error",
    [
        (np.ones((10, 2, 3), dtype=complex), TypeError),
        (np.ones((10, 2, 3)).astype(object), TypeError),
        (np.full((10, 2, 3), "a"), TypeError),
        ([[1.0, 2.0], [3.0]], ValueError),
        (np.zeros((0, 2, 3)), ValueError),
    ],
)
def test_non_numeric_input(bad, error):
    with pytest.raises(error, match="y_true"):
        signal_power(bad)


def test_accepts_lists_and_integers():
    y = [[[1, 2], [0, 1]], [[3, 3], [1, 0]], [[0, 1], [2, 2]], [[5, 4], [0, 0]]]  # (4, 2, 2)
    pred = [[1.0, 0.0], [3.0, 1.0], [0.5, 2.0], [4.0, 0.0]]
    y_arr = np.asarray(y, dtype=float)
    assert cc(y, pred) == pytest.approx(np.mean(ref_cc(y_arr[None], np.asarray(pred)[None])))
    assert_allclose(signal_power(y), ref_powers(y_arr[None])[0])


# ---------------------------------------------------------------------------
# Extreme magnitudes and layout warnings (issue 13)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1e150, 1e-150, 1e300, 1e-300])
def test_correlations_do_not_depend_on_the_magnitude(scale):
    y, y_pred, _ = make_ragged(seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow / invalid-value warnings either
        for metric in (cc, cc_norm):
            expected = metric(y, y_pred, multioutput="raw_values")
            assert_allclose(metric(y * scale, y_pred, multioutput="raw_values"), expected, rtol=1e-12)
            assert_allclose(metric(y, y_pred * scale, multioutput="raw_values"), expected, rtol=1e-12)
            assert_allclose(metric(y * scale, y_pred * scale, multioutput="raw_values"), expected, rtol=1e-12)
        assert_allclose(cc_norm(y * scale, y_pred * scale, method="hsu", multioutput="raw_values"),
                        cc_norm(y, y_pred, method="hsu", multioutput="raw_values"), rtol=1e-12)
        assert_allclose(noise_ceiling(y * scale), noise_ceiling(y), rtol=1e-12)


@pytest.mark.parametrize("scale", [1e150, 1e-150])
def test_signal_and_noise_power_scale_with_the_square(scale):
    y, _, _ = make_ragged(seed=4)
    assert_allclose(signal_power(y * scale), signal_power(y) * scale**2, rtol=1e-12)
    assert_allclose(noise_power(y * scale), noise_power(y) * scale**2, rtol=1e-12)


def test_three_dimensional_psth_given_to_signal_power_warns():
    rng = np.random.default_rng(0)
    psth = rng.normal(size=(20, 300, 7))  # (n_stimuli, n_times, n_neurons), no repeats
    with pytest.warns(UserWarning, match=r"n_times=20, n_neurons=300, n_repeats=7"):
        signal_power(psth)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        signal_power(rng.normal(size=(300, 7, 20)))  # a real (n_times, n_neurons, n_repeats)


# ---------------------------------------------------------------------------
# Noise ceiling interval
# ---------------------------------------------------------------------------


def test_noise_ceiling_interval_without_resampling_is_the_ceiling():
    """Drawing every recorded repeat once reproduces noise_ceiling exactly (ragged, missing)."""
    from skstrf.metrics import _ceiling_from_counts, _repeat_moments, _repeat_stats

    y, _, _ = make_ragged(seed=5)
    stats = _repeat_stats(y)
    mean, cov = _repeat_moments(y, stats)
    once = _ceiling_from_counts(stats.present[np.newaxis].astype(float), mean, cov, stats)[0]
    expected = noise_ceiling(y)
    assert_allclose(once[np.isfinite(expected)], expected[np.isfinite(expected)], rtol=1e-10)


def test_noise_ceiling_interval_covers_the_true_ceiling():
    """300 neurons, fixed signal + Gaussian trial noise: the 95% interval covers the
    population ceiling sqrt(var(s) / (var(s) + sigma^2 / R)) for 90-99% of them."""
    from skstrf.metrics import noise_ceiling_interval

    rng = np.random.default_rng(0)
    S, T, N, R = 4, 100, 300, 6
    signal = rng.normal(size=(S, T, N, 1)) * np.sqrt(0.3)
    y = signal + rng.normal(size=(S, T, N, R))
    var_signal = signal[..., 0].reshape(-1, N).var(axis=0)
    truth = np.sqrt(var_signal / (var_signal + 1.0 / R))
    result = noise_ceiling_interval(y, n_bootstraps=300, random_state=0)
    assert_allclose(result.ceiling, noise_ceiling(y))
    assert np.all(result.low <= result.ceiling) and np.all(result.ceiling <= result.high)
    coverage = np.mean((result.low <= truth) & (truth <= result.high))
    assert 0.90 <= coverage <= 0.99, coverage
    again = noise_ceiling_interval(y, n_bootstraps=300, random_state=0)
    assert_allclose(again.low, result.low)
    with pytest.raises(ValueError, match="confidence must be"):
        noise_ceiling_interval(y, confidence=95)
    with pytest.raises(ValueError, match="n_bootstraps must be"):
        noise_ceiling_interval(y, n_bootstraps=0)


def test_score_sums_merged_over_parts_equal_cc_norm_of_the_whole():
    from skstrf.metrics import ScoreSums, cc_norm_from_sums

    rng = np.random.default_rng(11)
    S, T, N, R = 7, 40, 3, 5
    drive = rng.standard_normal((S, T, N))
    y = drive[..., None] + 0.8 * rng.standard_normal((S, T, N, R))
    y[2, 30:] = np.nan  # a shorter stimulus
    y[4, :, :, 3:] = np.nan  # fewer repeats of one stimulus
    pred = drive + 0.5 * rng.standard_normal((S, T, N)) + 3.0  # an offset changes nothing
    parts = [slice(0, 2), slice(2, 5), slice(5, 7)]
    sums = [ScoreSums.of(y[p], pred[p]) for p in parts]
    merged = sums[2].merge(sums[0].merge(sums[1]))  # any order
    np.testing.assert_allclose(cc_norm_from_sums(merged, "raw_values"),
                               cc_norm(y, pred, multioutput="raw_values"), rtol=1e-12)
    assert cc_norm_from_sums(merged) == pytest.approx(cc_norm(y, pred), rel=1e-12)
    # one repeat: no noise estimate, the correlation with a warning, as cc_norm does
    single = [ScoreSums.of(y[p][..., :1], pred[p]) for p in parts]
    with pytest.warns(UserWarning):
        got = cc_norm_from_sums(single[0].merge(single[1]).merge(single[2]), "raw_values")
    np.testing.assert_allclose(got, cc(y[..., 0], pred, multioutput="raw_values"), rtol=1e-12)
