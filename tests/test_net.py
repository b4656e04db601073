"""Tests of the skorch-side pieces of :mod:`skstrf._net` against reference formulas.

The losses are compared with direct numpy formulas on data with NaN padding; the
validation scorer that drives early stopping with :func:`skstrf.metrics.cc_norm`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from skstrf.metrics import ScoreSums, cc_norm
from skstrf._net import MaskedMSELoss, MaskedPoissonLoss, ValidCCNorm

S, T, N, R = 3, 25, 4, 5


@pytest.fixture(scope="module")
def padded():
    """Responses with repeats, ragged (stimulus 1 ends at frame 17), and predictions."""
    rng = np.random.default_rng(7)
    rate = rng.gamma(2.0, 1.0, (S, T, N))
    y = rng.poisson(rate[..., None], (S, T, N, R)).astype(float)
    y[1, 17:] = np.nan
    pred = rate + rng.normal(0, 0.5, rate.shape)
    pred[1, 17:] = 0.0  # predictions on padding are ignored whatever they are
    psth = np.full((S, T, N), np.nan)
    valid = np.isfinite(y[..., 0])
    psth[valid] = y[valid].mean(-1)
    return y, psth, pred


def test_masked_mse_is_the_weighted_mean_over_valid_frames(padded):
    _, psth, pred = padded
    weight = 1.0 / np.nanvar(psth, axis=(0, 1))
    valid = np.isfinite(psth)
    expected = np.sum(((pred - np.nan_to_num(psth)) ** 2 * weight)[valid]) / valid.sum()
    got = MaskedMSELoss(torch.as_tensor(weight))(torch.as_tensor(pred), torch.as_tensor(psth))
    np.testing.assert_allclose(float(got), expected, rtol=1e-12)
    unweighted = MaskedMSELoss()(torch.as_tensor(pred), torch.as_tensor(psth))
    np.testing.assert_allclose(float(unweighted), np.mean((pred - psth)[valid] ** 2), rtol=1e-12)


def test_masked_poisson_loss_is_the_poisson_deviance(padded):
    _, psth, pred = padded
    rate = np.abs(pred) + 0.1
    weight = 1.0 / np.nanmean(psth, axis=(0, 1))
    valid = np.isfinite(psth)
    p = np.nan_to_num(psth)
    with np.errstate(divide="ignore", invalid="ignore"):
        ylogy = np.where(p > 0, p * np.log(p / rate), 0.0)  # 0 log 0 = 0
    deviance = 2.0 * (ylogy - p + rate) * weight
    expected = deviance[valid].sum() / valid.sum()
    loss = MaskedPoissonLoss(torch.as_tensor(weight))
    np.testing.assert_allclose(float(loss(torch.as_tensor(rate), torch.as_tensor(psth))), expected, rtol=1e-10)
    # A perfect prediction has zero deviance (where the rate is positive).
    positive = np.where(p > 0, p, 1.0)
    perfect = np.where(valid, positive, np.nan)
    assert float(loss(torch.as_tensor(positive), torch.as_tensor(perfect))) == pytest.approx(0.0, abs=1e-12)


def test_validation_scorer_equals_metrics_cc_norm(padded):
    y, psth, pred = padded
    scorer = ValidCCNorm(ScoreSums.of(y), psth).initialize()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = cc_norm(y, pred)
    np.testing.assert_allclose(scorer.score(torch.as_tensor(pred)), expected, rtol=0, atol=1e-10)
    # float32 predictions, as the net makes them: the same to float32 rounding.
    np.testing.assert_allclose(scorer.score(torch.as_tensor(pred, dtype=torch.float32)), expected,
                               rtol=0, atol=1e-5)


def test_validation_scorer_leaves_out_neurons_without_signal(padded):
    y, psth, pred = padded
    y = y.copy()
    # neuron 2's repeats cancel: its PSTH is flat, its signal power negative, cc_norm undefined
    valid = np.isfinite(y[..., 2, 0])
    y[..., 2, :] = np.where(valid[..., None], pred[..., 2, None] * np.array([1.0, -1.0, 1.0, -1.0, 0.0]), np.nan)
    scorer = ValidCCNorm.from_responses(_stimulus_set(y)).initialize()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        per_neuron = cc_norm(y, pred, multioutput="raw_values")
    assert np.isnan(per_neuron[2]) and np.isfinite(np.delete(per_neuron, 2)).all()
    np.testing.assert_allclose(scorer.score(torch.as_tensor(pred)), np.delete(per_neuron, 2).mean(), atol=1e-10)


def test_validation_scorer_is_the_score_of_a_single_repeat_too(padded):
    # one repeat: no noise estimate, so the score falls back to cc, exactly as score() does
    y, _, pred = padded
    one = y[..., :1]
    scorer = ValidCCNorm.from_responses(_stimulus_set(one)).initialize()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = cc_norm(one, pred)
    np.testing.assert_allclose(scorer.score(torch.as_tensor(pred)), expected, atol=1e-10)
    # a diverging model's prediction is no score
    bad = pred.copy()
    bad[0, 3, 1] = np.nan
    assert np.isnan(scorer.score(torch.as_tensor(bad)))


def _stimulus_set(y):
    from skstrf._validation import check_X_y

    X = np.where(np.isfinite(y[..., :1, 0]), 1.0, np.nan) * np.arange(y.shape[1])[None, :, None]
    return check_X_y(X, y)
