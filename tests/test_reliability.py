"""Tests of the reliability flag of cc_norm (issue 27, item 4): neurons whose signal power is
not distinguishable from zero are flagged, warned about once per search, and left out."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.model_selection import GridSearchCV, KFold, cross_validate

import skstrf.metrics as metrics
from skstrf import STRFRegressor
from skstrf.metrics import (
    RELIABILITY_ALPHA,
    ScoreSums,
    StimulusScorer,
    UnreliableNeuronWarning,
    cc_norm,
    cc_norm_from_sums,
    make_neuron_scorer,
    signal_power,
    signal_power_reliability,
)


def _ar1(rng, shape, rho):
    """Unit-variance AR(1) processes along axis 1."""
    e = rng.normal(size=shape)
    out = np.empty_like(e)
    out[:, 0] = e[:, 0]
    for t in range(1, shape[1]):
        out[:, t] = rho * out[:, t - 1] + np.sqrt(1 - rho**2) * e[:, t]
    return out


def _neurons(rng, signal_power_, n_stimuli, n_times, n_neurons, n_repeats, rho=0.0):
    """Responses (S, T, N, R) whose noise-free response has exactly ``signal_power_`` as its
    pooled variance (a smooth process plus a level per stimulus), in noise of unit variance
    correlated over frames by ``rho``."""
    shape = _ar1(rng, (n_stimuli, n_times, n_neurons), 0.9) + rng.normal(size=(n_stimuli, 1, n_neurons))
    shape -= shape.mean(axis=(0, 1))
    shape /= shape.std(axis=(0, 1))
    noise = (_ar1(rng, (n_stimuli, n_times, n_neurons * n_repeats), rho) if rho
             else rng.normal(size=(n_stimuli, n_times, n_neurons * n_repeats)))
    return np.sqrt(signal_power_) * shape[..., None] + noise.reshape(n_stimuli, n_times, n_neurons, n_repeats)


def _two_spikes(n_stimuli=10, n_times=100, n_repeats=10):
    """Neuron 0 reliable, neuron 1 silent but for two spikes in two repeats of one stimulus."""
    rng = np.random.default_rng(0)
    signal = rng.normal(size=(n_stimuli, n_times))
    y = np.zeros((n_stimuli, n_times, 2, n_repeats))
    y[:, :, 0] = signal[..., None] + rng.normal(size=(n_stimuli, n_times, n_repeats))
    y[1, 40, 1, 2] = y[1, 7, 1, 7] = 1.0
    pred = np.stack([signal + 0.5 * rng.normal(size=signal.shape), y[:, :, 1].mean(axis=-1)], axis=-1)
    return y, pred


# ---------------------------------------------------------------------------
# The three cases of the issue
# ---------------------------------------------------------------------------


def test_a_neuron_with_two_spikes_is_flagged_and_left_out():
    y, pred = _two_spikes()
    assert signal_power(y)[1] > 0  # the spikes' stimulus has a higher mean rate: "signal"
    unflagged = cc_norm(y, pred, multioutput="raw_values", unreliable="ignore")
    assert unflagged[1] > 10  # what the score averaged before the flag (the 5.66)
    assert cc_norm(y, pred, unreliable="ignore") > 5  # the mean over neurons lifted (2.59)
    # by default the scores are kept and the warning says which neuron is flagged
    with pytest.warns(UnreliableNeuronWarning) as record:
        scores = cc_norm(y, pred, multioutput="raw_values")
    np.testing.assert_array_equal(scores, unflagged)
    assert record[0].message.n_unreliable == 1 and record[0].message.n_neurons == 2
    assert record[0].message.neurons.tolist() == [1]
    with pytest.warns(UnreliableNeuronWarning):
        scores = cc_norm(y, pred, multioutput="raw_values", unreliable="exclude")
    assert np.isnan(scores[1]) and scores[0] == pytest.approx(unflagged[0])
    with pytest.warns(UnreliableNeuronWarning):
        assert cc_norm(y, pred, unreliable="exclude") == pytest.approx(unflagged[0])
    result = signal_power_reliability(y)
    assert result.reliable.tolist() == [True, False]
    assert result.statistic[1] <= 0  # the excess from the mean rates' noise explains it all


def test_two_spikes_in_the_same_frame_are_flagged():
    y, _ = _two_spikes()
    y[:, :, 1] = 0.0
    y[3, 40, 1, [2, 7]] = 1.0  # the two spikes coincide: a within-stimulus "signal"
    result = signal_power_reliability(y)
    assert result.signal_power[1] > 0 and not result.reliable[1] and result.reliable[0]


def test_stimuli_of_two_frames_are_flagged():
    rng = np.random.default_rng(1)
    y = rng.poisson(0.5, size=(40, 2, 50, 10)).astype(float)  # noise only
    pred = rng.normal(size=(40, 2, 50))
    # The pooled signal power counts the noise of each stimulus's mean rate as signal: on
    # stimuli of two frames, that is half the PSTH's noise.
    assert np.mean(signal_power(y) > 0) > 0.9
    result = signal_power_reliability(y)
    assert np.mean(result.reliable) < 0.1
    assert abs(np.mean(result.signal_power - result.mean_noise)) < 0.5 * np.std(result.signal_power)
    with pytest.warns(UnreliableNeuronWarning) as record:
        cc_norm(y, pred)
    assert record[0].message.n_unreliable >= 45


def test_noise_only_data_scored_by_the_estimator():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(12, 150, 6))
    y = rng.poisson(0.2, size=(12, 150, 16, 8)).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = STRFRegressor(n_lags=4, alpha=1.0).fit(X[:8], y[:8])
        before = cc_norm(y[8:], est.predict(X[8:]), multioutput="raw_values", unreliable="ignore")
    assert np.sum(np.isfinite(before)) >= 5  # noise, normalised by a signal power of noise
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        score = est.score(X[8:], y[8:])
    flagged = [w.message for w in record if issubclass(w.category, UnreliableNeuronWarning)]
    assert len(flagged) == 1
    n_scored = 16 - flagged[0].n_unreliable - np.isnan(before).sum()
    assert n_scored <= 1  # at the test's level, about 1 in 40 neurons without signal passes
    assert np.isnan(score) or abs(score) < 2


# ---------------------------------------------------------------------------
# The criterion: its standard error and its rates on synthetic neurons
# ---------------------------------------------------------------------------


def test_standard_error_is_the_null_scaled_delete_one_repeat_jackknife():
    rng = np.random.default_rng(3)
    S, T, N, R = 3, 300, 2, 4
    y = rng.normal(size=(S, T, N))[..., None] + rng.normal(size=(S, 1, N, 1)) + rng.normal(size=(S, T, N, R))
    y[1, 250:] = np.nan  # a shorter stimulus
    y[2, :, 0, 3] = np.nan  # a missing repeat
    expected = np.zeros(N)
    for s in range(S):
        for n in range(N):
            present = [j for j in range(R) if not np.isnan(y[s, :, n, j]).all()]
            loo = []
            for j in present:
                y_loo = y[:, :, n:n + 1].copy()
                y_loo[s, :, 0, j] = np.nan
                loo.append(signal_power(y_loo)[0])
            loo, r = np.array(loo), len(present)
            expected[n] += (r - 1) / r * np.sum((loo - loo.mean()) ** 2) * (r - 2) / (2 * (r - 1))
    # first order in the change of one repeat, against the exact jackknife
    assert_allclose(signal_power_reliability(y).standard_error ** 2, expected, rtol=0.03)


@pytest.mark.parametrize("n_stimuli, n_times, n_repeats, rho", [
    (8, 60, 4, 0.0),  # a few repeats of several stimuli
    (1, 400, 12, 0.7),  # one continuous recording, correlated noise
    (10, 60, 3, 0.0),  # three repeats (the jackknife's fewest)
    (12, 80, 2, 0.5),  # two repeats: the variance from their difference, correlated noise
])
def test_flag_rates_on_synthetic_neurons(n_stimuli, n_times, n_repeats, rho):
    rng = np.random.default_rng(4)
    shape = (n_stimuli, n_times, 600, n_repeats)
    null = signal_power_reliability(_neurons(rng, 0.0, *shape, rho=rho))
    assert np.mean(~null.reliable) >= 0.95  # no signal: flagged (the test's level is 2.5 %)
    estimates = null.signal_power - null.mean_noise
    se0 = np.std(estimates)
    assert np.sqrt(np.mean(null.standard_error**2)) == pytest.approx(se0, rel=0.15)
    signal = signal_power_reliability(_neurons(rng, 6 * se0, *shape, rho=rho))
    assert np.mean(~signal.reliable) <= 0.05  # 6 standard errors (the benchmark: 5)


def test_noiseless_neurons_are_reliable():
    rng = np.random.default_rng(5)
    signal = rng.normal(size=(4, 30, 3))
    for n_repeats in (2, 3, 6):
        result = signal_power_reliability(np.repeat(signal[..., None], n_repeats, axis=3))
        assert result.reliable.all() and np.all(result.statistic > 1e6)


def test_strong_neuron_with_two_repeats_of_one_stimulus_is_reliable():
    rng = np.random.default_rng(6)
    y = rng.normal(size=(200, 1, 1)) + 0.3 * rng.normal(size=(200, 1, 2))
    assert signal_power_reliability(y).reliable[0]


def test_neuron_without_two_repeats_is_not_reliable():
    rng = np.random.default_rng(7)
    y = rng.normal(size=(3, 50, 2, 4))
    y[:, :, 1, 1:] = np.nan
    result = signal_power_reliability(y)
    assert np.isnan(result.statistic[1]) and np.isnan(result.p_value[1]) and not result.reliable[1]


@pytest.mark.parametrize("scale", [1e150, 1e-150])
def test_reliability_does_not_depend_on_the_units(scale):
    rng = np.random.default_rng(8)
    y = _neurons(rng, 0.05, 5, 40, 4, 5)
    a, b = signal_power_reliability(y), signal_power_reliability(y * scale)
    assert_allclose(b.statistic, a.statistic, rtol=1e-10)
    assert_allclose(b.standard_error, a.standard_error * scale**2, rtol=1e-10)
    assert_allclose(b.mean_noise, a.mean_noise * scale**2, rtol=1e-10)


def test_alpha_is_checked_and_sets_the_level():
    rng = np.random.default_rng(9)
    y = _neurons(rng, 0.0, 6, 50, 300, 4)
    strict, loose = signal_power_reliability(y, alpha=0.001), signal_power_reliability(y, alpha=0.2)
    assert strict.reliable.sum() < loose.reliable.sum()
    assert_allclose(loose.p_value, strict.p_value)
    assert RELIABILITY_ALPHA == 0.025
    for bad in (0, 1, -0.1, "0.05", True):
        with pytest.raises(ValueError, match="alpha must be a number in"):
            signal_power_reliability(y, alpha=bad)


# ---------------------------------------------------------------------------
# Additive sums: data scored a chunk at a time get the flags of the whole
# ---------------------------------------------------------------------------


def test_reliability_of_merged_parts_is_that_of_the_whole():
    rng = np.random.default_rng(10)
    y = _neurons(rng, 0.02, 9, 40, 5, 4)
    y[1, 30:] = np.nan
    y[4, :, 2, 2:] = np.nan  # two repeats of one stimulus for neuron 2
    y[6:] *= 1024.0  # parts in other units (other per-neuron exponents)
    pred = rng.normal(size=y.shape[:3])
    whole = ScoreSums.of(y, pred)
    parts = [ScoreSums.of(y[p], pred[p]) for p in (slice(0, 3), slice(3, 6), slice(6, 9))]
    merged = parts[2].merge(parts[0].merge(parts[1]))
    a, b = whole.reliability(), merged.reliability()
    for field in ("signal_power", "mean_noise", "standard_error", "statistic", "dof", "p_value"):
        assert_allclose(b[field], a[field], rtol=1e-9, err_msg=field)
    assert_allclose(a.standard_error, signal_power_reliability(y).standard_error, rtol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_allclose(cc_norm_from_sums(merged, "raw_values"), cc_norm(y, pred, multioutput="raw_values"),
                        rtol=1e-9)


def test_sums_without_repeats_have_no_reliability():
    sums = ScoreSums.from_sums(10.0, 1.0, 2.0, 0.5, 1.0, 2.0)
    result = sums.reliability()
    assert np.isnan(result.statistic) and not result.reliable


# ---------------------------------------------------------------------------
# Options: exclude, warn, ignore; weights
# ---------------------------------------------------------------------------


def test_unreliable_options():
    y, pred = _two_spikes()
    ignored = cc_norm(y, pred, multioutput="raw_values", unreliable="ignore")
    with pytest.warns(UnreliableNeuronWarning, match="their scores are kept"):
        kept = cc_norm(y, pred, multioutput="raw_values", unreliable="warn")
    assert_allclose(kept, ignored)
    with pytest.warns(UnreliableNeuronWarning, match="they are left out"):
        cc_norm(y, pred, unreliable="exclude")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnreliableNeuronWarning)
        cc_norm(y, pred, unreliable="ignore")
    # the split-half ceiling too: noise-only neurons it would score are left out
    rng = np.random.default_rng(14)
    noise = rng.normal(size=(4, 50, 40, 6))
    noise_pred = noise.mean(axis=3) + rng.normal(size=noise.shape[:3])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        hsu = cc_norm(noise, noise_pred, method="hsu", multioutput="raw_values", unreliable="ignore")
        with pytest.warns(UnreliableNeuronWarning) as record:
            hsu_excluded = cc_norm(noise, noise_pred, method="hsu", multioutput="raw_values", unreliable="exclude")
    flagged = _unreliable(record)[0].message.neurons
    assert np.isfinite(hsu[flagged]).all() and np.isnan(hsu_excluded[flagged]).all()
    assert np.sum(np.isfinite(hsu_excluded)) <= 3 < np.sum(np.isfinite(hsu))
    for func in (lambda: cc_norm(y, pred, unreliable="drop"),
                 lambda: cc_norm_from_sums(ScoreSums.of(y, pred), unreliable=None),
                 lambda: StimulusScorer(unreliable="keep")):
        with pytest.raises(ValueError, match=r"unreliable must be one of \['exclude', 'warn', 'ignore'\]"):
            func()


def test_warning_text_does_not_change_with_the_counts():
    rng = np.random.default_rng(11)
    texts, counts = set(), set()
    for n_silent in (2, 6):
        y = _neurons(rng, 1.0, 6, 50, 8, 6)
        y[:, :, :n_silent] = rng.normal(size=y[:, :, :n_silent].shape)  # noise only
        y[0, :, :n_silent] += 0.3  # a positive signal power from the mean rates' noise alone
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            cc_norm(y, rng.normal(size=y.shape[:3]), unreliable="warn")
        message = [w.message for w in record if issubclass(w.category, UnreliableNeuronWarning)][0]
        assert set(message.neurons) <= set(range(n_silent))
        texts.add(str(message))
        counts.add(message.n_unreliable)
    assert len(texts) == 1 and len(counts) == 2


def test_the_warning_pickles_with_its_numbers():
    warning = UnreliableNeuronWarning("text", n_unreliable=2, n_neurons=5, neurons=np.array([1, 3]))
    back = pickle.loads(pickle.dumps(warning))
    assert str(back) == "text" and back.n_unreliable == 2 and back.neurons.tolist() == [1, 3]


def test_weighted_average_over_neurons():
    rng = np.random.default_rng(12)
    y = _neurons(rng, 1.0, 5, 60, 4, 6)
    pred = y.mean(axis=3) + rng.normal(size=y.shape[:3])
    scores = cc_norm(y, pred, multioutput="raw_values")
    weights = np.array([0.0, 1.0, 2.0, 3.0])
    assert cc_norm(y, pred, multioutput=weights) == pytest.approx(np.sum(weights * scores) / weights.sum())
    assert cc_norm(y, pred, multioutput=[1, 1, 1, 1]) == pytest.approx(scores.mean())
    with pytest.raises(ValueError, match="multioutput has 3 weights but there are 4 neurons"):
        cc_norm(y, pred, multioutput=[1, 1, 1])
    with pytest.raises(ValueError, match="finite and non-negative"):
        cc_norm(y, pred, multioutput=[1, -1, 1, 1])
    with pytest.raises(ValueError, match="multioutput must be one of"):
        cc_norm(y, pred, multioutput=2.0)


def test_weights_leave_out_nan_scores():
    y, pred = _two_spikes()
    with pytest.warns(UnreliableNeuronWarning):
        scores = cc_norm(y, pred, multioutput="raw_values", unreliable="exclude")
    with pytest.warns(UnreliableNeuronWarning):
        assert cc_norm(y, pred, multioutput=[1.0, 5.0], unreliable="exclude") == pytest.approx(scores[0])


def test_scorers_take_the_option():
    assert repr(StimulusScorer("cc_norm", unreliable="exclude")) == "StimulusScorer('cc_norm', unreliable='exclude')"
    assert repr(StimulusScorer("cc_norm")) == "StimulusScorer('cc_norm')"
    assert make_neuron_scorer(unreliable="ignore").unreliable == "ignore"


# ---------------------------------------------------------------------------
# Once per search, not once per fold and candidate
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def noise_only():
    rng = np.random.default_rng(13)
    X = rng.normal(size=(12, 80, 4))
    y = rng.poisson(0.3, size=(12, 80, 6, 6)).astype(float)
    return X, y


def _unreliable(record):
    return [w for w in record if issubclass(w.category, UnreliableNeuronWarning)]


@pytest.mark.parametrize("scoring", [None, metrics.cc_norm_scorer])
def test_grid_search_warns_once(noise_only, scoring):
    X, y = noise_only
    search = GridSearchCV(STRFRegressor(n_lags=3), {"alpha": [1.0, 10.0, 100.0]}, cv=KFold(4), scoring=scoring)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("default")
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        search.fit(X, y)  # 12 scoring calls
    shown = _unreliable(record)
    line = _line_of("search.fit(X, y)  # 12 scoring calls")
    assert len(shown) == 1
    assert shown[0].filename == __file__ and shown[0].lineno == line  # the user's line, not joblib's


def _line_of(text):
    """The line number of ``text`` in this file."""
    with open(__file__) as f:
        return next(i for i, line in enumerate(f, 1) if text in line and "_line_of" not in line)


def test_cross_validate_warns_once_per_call_site(noise_only):
    X, y = noise_only
    est = STRFRegressor(n_lags=3, alpha=10.0)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("default")
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        cross_validate(est, X, y, cv=KFold(4))
        assert len(_unreliable(record)) == 1
        cross_validate(est, X, y, cv=KFold(4))  # another line: told again
        assert len(_unreliable(record)) == 2
        for _ in range(2):  # the same line again: as Python's default filter, not repeated
            cross_validate(est, X, y, cv=KFold(4))
        assert len(_unreliable(record)) == 3


def test_always_filter_shows_every_call(noise_only):
    X, y = noise_only
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always", UnreliableNeuronWarning)
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        result = cross_validate(STRFRegressor(n_lags=3, alpha=10.0), X, y, cv=KFold(4))
    assert len(_unreliable(record)) == 4
    assert len(result["test_score"]) == 4


def test_ignored_warnings_are_not_remembered(noise_only):
    X, y = noise_only
    est = STRFRegressor(n_lags=3, alpha=10.0).fit(X, y)
    for action in ("ignore", "default"):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter(action)
            est.score(X, y)  # one line for both: the ignored call must not hide the next
        assert len(_unreliable(record)) == (action == "default")
