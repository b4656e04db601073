"""Tests of skstrf.significance: permutation p-values under the null and paired model tests."""

import itertools
import warnings

import numpy as np
import pytest
from joblib import parallel_backend
from scipy import stats
from sklearn.model_selection import KFold, permutation_test_score

from skstrf import STRFRegressor
from skstrf.datasets import make_strf_dataset
from skstrf.significance import (
    _circular_shift,
    _stimulus_permutation,
    paired_comparison,
    pairwise_comparisons,
    permutation_test_neurons,
)


def _fast_ridge(n_lags=4):
    return STRFRegressor(n_lags=n_lags, alpha=1.0, validation_fraction=None)


def _ar_noise(rng, shape, phi):
    """Stationary AR(1) noise along axis 1 (frames): autocorrelated like real responses."""
    e = rng.normal(size=shape)
    out = np.empty_like(e)
    out[:, 0] = e[:, 0] / np.sqrt(1 - phi**2)
    for t in range(1, shape[1]):
        out[:, t] = phi * out[:, t - 1] + e[:, t]
    return out


# ---------------------------------------------------------------------- null draws
def test_circular_shift_rotates_each_stimulus_and_keeps_padding():
    rng = np.random.default_rng(0)
    lengths = np.array([5, 3, 4])
    y = rng.normal(size=(3, 5, 2, 2))
    for s, length in enumerate(lengths):
        y[s, length:] = np.nan
    shifted = _circular_shift(y, lengths, np.random.default_rng(1))
    for s, n in itertools.product(range(3), range(2)):
        length = lengths[s]
        np.testing.assert_array_equal(np.isnan(shifted[s, :, n]), np.isnan(y[s, :, n]))
        # Some rotation k of the valid frames, the same k for every repeat.
        matches = [k for k in range(length)
                   if np.array_equal(shifted[s, :length, n], np.roll(y[s, :length, n], -k, axis=0))]
        assert len(matches) == 1


def test_stimulus_permutation_stays_within_equal_lengths():
    lengths = np.array([4, 4, 3, 4, 3])
    y = np.arange(5.0)[:, None, None, None] * np.ones((5, 4, 50, 1))  # value = stimulus index
    for s, length in enumerate(lengths):
        y[s, length:] = np.nan
    permuted = _stimulus_permutation(y, lengths, np.random.default_rng(0))
    source = permuted[:, 0, :, 0].astype(int)  # (S, N): which stimulus each neuron got
    for n in range(50):
        assert sorted(source[:, n]) == [0, 1, 2, 3, 4]
        np.testing.assert_array_equal(lengths[source[:, n]], lengths)
    assert len({tuple(source[:, n]) for n in range(50)}) > 5  # neurons get their own draws


# ------------------------------------------------------------------ permutation test
def test_permutation_pvalues_uniform_under_the_null_and_small_for_real_cells():
    """200 neurons with autocorrelated responses unrelated to the stimulus: p ~ U(0, 1) (KS).
    5 cells with a single-trial SNR of 0.2 and 10 repeats (NS1-like): p < 0.01."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = make_strf_dataset(n_stimuli=10, n_times=200, n_freqs=6, n_neurons=5,
                                 n_repeats=10, n_lags=4, snr=0.2, random_state=0)
    rng = np.random.default_rng(1)
    null = _ar_noise(rng, (10, 200, 200), 0.8) + 5.0
    psth = np.concatenate([data.y.mean(axis=-1), null], axis=2)
    result = permutation_test_neurons(_fast_ridge(), data.X, psth, cv=[(np.arange(7), np.arange(7, 10))],
                                      n_permutations=199, random_state=0)
    assert result.null_scores.shape == (199, 205)
    assert np.all(result.pvalue[:5] < 0.01)
    assert stats.kstest(result.pvalue[5:], "uniform").pvalue > 0.01
    # p-values take the values (1 + k) / 200 only.
    np.testing.assert_allclose(result.pvalue * 200, np.round(result.pvalue * 200))
    expected = (1 + (result.null_scores >= result.score).sum(axis=0)) / 200
    np.testing.assert_allclose(result.pvalue, expected)


def test_permutation_test_stimuli_null_cc_norm_and_reproducible(data):
    kwargs = dict(cv=KFold(2), null="stimuli", n_permutations=9, scoring="cc_norm", random_state=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = permutation_test_neurons(_fast_ridge(), data.X, data.y, **kwargs)
        with parallel_backend("threading"):  # the joblib path, without process start-up
            again = permutation_test_neurons(_fast_ridge(), data.X, data.y, n_jobs=2, **kwargs)
    np.testing.assert_array_equal(first.pvalue, again.pvalue)
    # The observed score is the mean over the folds of each fold's per-neuron cc_norm.
    from skstrf.metrics import cc_norm

    folds = []
    for train, test in KFold(2).split(data.X):
        est = _fast_ridge().fit(data.X[train], data.y[train])
        folds.append(cc_norm(data.y[test], est.predict(data.X[test]), multioutput="raw_values"))
    np.testing.assert_allclose(first.score, np.mean(folds, axis=0), rtol=1e-10)


@pytest.mark.parametrize("kwargs, message", [
    (dict(null="shuffle"), "null must be one of"),
    (dict(scoring="r2"), "scoring must be one of"),
    (dict(n_permutations=0), "n_permutations must be a positive integer"),
])
def test_permutation_test_errors(data, kwargs, message):
    with pytest.raises(ValueError, match=message):
        permutation_test_neurons(_fast_ridge(), data.X, data.y, **kwargs)


def test_permutation_test_needs_stimuli_and_equal_lengths():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="needs stimuli of shape"):
        permutation_test_neurons(_fast_ridge(), rng.normal(size=(50, 3)), rng.normal(size=(50, 2)))
    X = rng.normal(size=(3, 20, 3))
    X[0, 15:] = X[1, 18:] = np.nan
    y = rng.normal(size=(3, 20, 2))
    y[0, 15:] = y[1, 18:] = np.nan
    with pytest.raises(ValueError, match="all 3 stimuli have different lengths"):
        permutation_test_neurons(_fast_ridge(), X, y, null="stimuli")


def test_sklearn_permutation_test_score_works_on_the_stimulus_layout(data):
    """scikit-learn permutes whole stimuli (axis 0): a strong population signal beats it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score, null, pvalue = permutation_test_score(_fast_ridge(), data.X, data.y, cv=KFold(2),
                                                     n_permutations=9, random_state=0)
    assert score > 0.3 and np.all(null < score)
    assert pvalue == pytest.approx(0.1)


# -------------------------------------------------------------------- paired comparison
def _exact_signed_rank_pvalue(d):
    """Two-sided exact p-value by enumerating all 2**n sign flips of the ranks."""
    ranks = stats.rankdata(np.abs(d))
    observed = ranks[d > 0].sum()
    expected = ranks.sum() / 2
    sums = np.array([ranks[np.array(signs, bool)].sum()
                     for signs in itertools.product([0, 1], repeat=len(d))])
    return np.mean(np.abs(sums - expected) >= abs(observed - expected) - 1e-12)


def test_paired_comparison_counts_and_exact_pvalue():
    rng = np.random.default_rng(0)
    a = rng.uniform(0.2, 0.8, size=12)
    b = a - rng.normal(0.05, 0.1, size=12)
    a_nan = np.append(a, [np.nan, 0.5])
    b_nan = np.append(b, [0.4, np.nan])
    result = paired_comparison(a_nan, b_nan, names=("vanilla", "separable"))
    d = a - b
    assert result.n_neurons == 12
    assert (result.n_better, result.n_worse, result.n_tied) == (np.sum(d > 0), np.sum(d < 0), 0)
    assert result.median_difference == pytest.approx(np.median(d))
    assert result.pvalue == pytest.approx(_exact_signed_rank_pvalue(d))
    np.testing.assert_array_equal(np.isnan(result.difference), [False] * 12 + [True, True])
    assert result.summary.startswith(f"vanilla vs separable: vanilla higher for {np.sum(d > 0)} of 12")


def test_paired_comparison_ties_and_errors():
    tied = paired_comparison([0.5, 0.6], [0.5, 0.6])
    assert (tied.n_tied, tied.pvalue) == (2, 1.0)
    with pytest.raises(ValueError, match="same neurons"):
        paired_comparison([0.5, 0.6], [0.5, 0.6, 0.7])
    with pytest.raises(ValueError, match="no neuron has a finite score"):
        paired_comparison([np.nan], [0.3])
    with pytest.raises(ValueError, match="alternative must be"):
        paired_comparison([0.5], [0.3], alternative="bigger")


def test_pairwise_comparisons_holm_correction():
    rng = np.random.default_rng(1)
    base = rng.uniform(0.2, 0.8, size=30)
    scores = {"vanilla": base, "separable": base - rng.normal(0.1, 0.05, 30),
              "parametric": base + rng.normal(0.0, 0.05, 30)}
    rows = pairwise_comparisons(scores)
    assert [(r.model_a, r.model_b) for r in rows] == [("vanilla", "separable"), ("vanilla", "parametric"),
                                                      ("separable", "parametric")]
    raw = np.array([r.pvalue for r in rows])
    # Holm by hand: sorted p_(i) times (m - i), running maximum, capped at 1.
    order = np.argsort(raw)
    expected = np.empty(3)
    running = 0.0
    for i, k in enumerate(order):
        running = max(running, min(1.0, (3 - i) * raw[k]))
        expected[k] = running
    np.testing.assert_allclose([r.pvalue_corrected for r in rows], expected)
    assert rows[0].n_better > 25 and rows[0].pvalue_corrected < 1e-4
    with pytest.raises(ValueError, match="at least two models"):
        pairwise_comparisons({"vanilla": base})
