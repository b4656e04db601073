"""The numbers of the comparison table (``skstrf compare``) equal an independent fit and score.

:func:`skstrf.compare.compare_kernels` fits each variant on the train+valid stimuli and
scores it on the test stimuli; here the same fits are made directly with
:class:`~skstrf.STRFRegressor` and scored with :mod:`skstrf.metrics`, and every value of the
table (per-neuron arrays and the means the CLI prints) must agree.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from skstrf import STRFRegressor
from skstrf.compare import compare_kernels, split_indices
from skstrf.datasets import make_strf_dataset
from skstrf.metrics import cc, cc_norm

F, L = 6, 4
VARIANTS = [
    ("vanilla", {"kernel": "vanilla"}),
    ("separable", {"kernel": "separable"}),
    ("parametric, 3 epochs", {"kernel": "parametric", "n_gaussians": 2, "max_epochs": 3}),
]


@pytest.fixture(scope="module")
def data():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make_strf_dataset(n_stimuli=10, n_times=120, n_freqs=F, n_neurons=4, n_repeats=5,
                                 n_lags=L, random_state=4)


@pytest.fixture(scope="module")
def result(data):
    train, valid, test = split_indices(len(data.X))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return compare_kernels(data.X, data.y, train=train, valid=valid, test=test, variants=VARIANTS,
                               estimator=STRFRegressor(n_lags=L, random_state=0), progress=None)


@pytest.mark.parametrize("label, params", VARIANTS)
def test_table_values_equal_an_independent_fit_and_score(data, result, label, params):
    train, valid, test = split_indices(len(data.X))
    fit_idx = np.r_[train, valid]
    est = STRFRegressor(n_lags=L, random_state=0, validation_fraction=len(valid) / len(fit_idx), **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        est.fit(data.X[fit_idx], data.y[fit_idx])
        pred = est.predict(data.X[test])
        expected_cc = cc(data.y[test], pred, multioutput="raw_values")
        expected_ccn = cc_norm(data.y[test], pred, multioutput="raw_values")
    # gradient training validates on exactly ``valid``; the closed-form solvers hold none out
    expected_valid = valid if est.solver_ == "gradient" else []
    np.testing.assert_array_equal(fit_idx[est.valid_stimuli_], expected_valid)
    np.testing.assert_allclose(result.test_cc[label], expected_cc, rtol=1e-10)
    np.testing.assert_allclose(result.test_cc_norm[label], expected_ccn, rtol=1e-10)
    row = next(r for r in result.rows if r["name"] == label)
    assert row["test_cc"] == pytest.approx(np.nanmean(expected_cc), rel=1e-10)
    assert row["test_cc_norm"] == pytest.approx(np.nanmean(expected_ccn), rel=1e-10)
    assert row["params_per_neuron"] == est.n_params_per_neuron_
    assert row["epochs"] == len(est.history_)
    np.testing.assert_array_equal(result.estimators[label].strfs_, est.strfs_)


def test_best_cell_has_the_highest_mean_test_cc_norm(result):
    per_cell = np.nanmean(np.vstack([result.test_cc_norm[k] for k in result.labels]), axis=0)
    assert result.best_cell == int(np.nanargmax(per_cell))


@pytest.mark.parametrize("n_stimuli", [3, 5, 8, 10, 20, 30, 40])
def test_split_indices_partition_the_stimuli_as_the_generator_splits_them(n_stimuli):
    train, valid, test = split_indices(n_stimuli)
    np.testing.assert_array_equal(np.r_[train, valid, test], np.arange(n_stimuli))
    assert min(len(train), len(valid), len(test)) >= 1
    data = make_strf_dataset(n_stimuli=n_stimuli, n_times=20, n_freqs=3, n_neurons=1, n_repeats=2,
                             n_lags=2, random_state=0)
    for ours, generator in ((train, data.train), (valid, data.valid), (test, data.test)):
        np.testing.assert_array_equal(ours, generator)


def test_split_indices_of_the_seed():
    train, valid, test = split_indices(20)  # NS1: stimuli 0-13 train, 14-16 valid, 17-19 test
    np.testing.assert_array_equal(train, np.arange(14))
    np.testing.assert_array_equal(valid, [14, 15, 16])
    np.testing.assert_array_equal(test, [17, 18, 19])


def test_pairs_compare_own_rows_and_each_with_its_seed_method_counterpart(result):
    from skstrf.compare import default_variants, format_pairs
    from skstrf.significance import paired_comparison

    assert [(r.model_a, r.model_b) for r in result.pairs] == [
        ("vanilla", "separable"), ("vanilla", "parametric, 3 epochs"), ("separable", "parametric, 3 epochs")]
    # each line is the paired test of the two per-cell score arrays, Holm-corrected over 3 pairs
    first = paired_comparison(result.test_cc_norm["vanilla"], result.test_cc_norm["separable"])
    assert result.pairs[0].pvalue == pytest.approx(first.pvalue)
    assert result.pairs[0].pvalue_corrected >= result.pairs[0].pvalue
    assert len(format_pairs(result.pairs).splitlines()) == 3
    labels = [label for label, _ in default_variants()]
    from skstrf.compare import _pairs
    assert _pairs(labels) == [("vanilla", "separable"), ("vanilla", "parametric"), ("separable", "parametric"),
                              ("vanilla", "vanilla (seed method)"), ("separable", "separable (seed method)"),
                              ("parametric", "parametric (seed method)")]
