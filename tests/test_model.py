"""Tests of the lagged design, the STRF module and the sufficient-statistics loss."""

import numpy as np
import pytest
import torch

from skstrf.kernels import VanillaKernel
from skstrf._design import design_statistics, lagged_design
from skstrf._losses import MaskedMSELoss, statistics_loss
from skstrf._model import STRFModel
from skstrf._penalty import Penalty, QuadraticForm


def _statistics_loss(model, stats, index, alpha=0.0):
    """The penalised training loss of a linear model from its statistics, as the net computes it."""
    weight = model.standardized_weight()
    penalty = Penalty(QuadraticForm(tuple(model.kernel.shape[1:])), alpha)
    return (statistics_loss(weight, model.bias, *stats.summed(index)) + penalty.value(weight)).float()


def test_lagged_design_matches_definition():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 7, 2))
    L = 4
    Z = lagged_design(torch.tensor(X), L).numpy()
    assert Z.shape == (3, 7, 2, L)
    for s in range(3):
        for t in range(7):
            for j in range(2):
                for k in range(L):
                    expected = X[s, t - k, j] if t - k >= 0 else 0.0
                    assert Z[s, t, j, k] == expected


def test_history_never_crosses_stimuli():
    X = torch.zeros(2, 5, 1)
    X[0, -1, 0] = 1.0  # last frame of stimulus 0
    Z = lagged_design(X, 3)
    assert torch.count_nonzero(Z[1]) == 0


def _random_model(N=3, F=4, L=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    kernel = VanillaKernel(N, 1, F, L)
    with torch.no_grad():
        kernel.weight.copy_(torch.randn(kernel.weight.shape, generator=g))
    x_mean, x_scale = torch.randn(F, generator=g), torch.rand(F, generator=g) + 0.5
    y_mean, y_scale = torch.randn(N, generator=g), torch.rand(N, generator=g) + 0.5
    model = STRFModel(kernel, x_mean, x_scale, y_mean, y_scale)
    with torch.no_grad():
        model.bias.copy_(torch.randn(N, generator=g))
    return model


def test_forward_equals_strf_formula_and_standardised_form():
    model = _random_model()
    rng = np.random.default_rng(1)
    X = torch.tensor(rng.standard_normal((2, 9, 4)), dtype=torch.float32)
    with torch.no_grad():
        pred = model(X).numpy()
        strf = model.strf()[:, 0].numpy()
        b = model.intercept().numpy()
        Z = lagged_design(X, 5).numpy()
        expected = np.einsum("stfk,nfk->stn", Z, strf) + b
        np.testing.assert_allclose(pred, expected, rtol=1e-5, atol=1e-5)
        # standardised form: y = y_scale * (Z_std . w_std + bias) + y_mean
        Zs = (Z - model.x_mean.numpy()[:, None]) / model.x_scale.numpy()[:, None]
        w = model.kernel.weight[:, 0].numpy()
        std = np.einsum("stfk,nfk->stn", Zs, w) + model.bias.numpy()
        np.testing.assert_allclose(pred, std * model.y_scale.numpy() + model.y_mean.numpy(),
                                   rtol=1e-4, atol=1e-4)


def test_statistics_loss_equals_masked_mse():
    model = _random_model(N=3, F=4, L=5)
    rng = np.random.default_rng(2)
    S, T = 4, 11
    X = rng.standard_normal((S, T, 4))
    lengths = np.array([11, 8, 11, 6])
    mask = np.arange(T)[None, :] < lengths[:, None]
    X[~mask] = 0.0
    P = rng.standard_normal((S, T, 3))
    P[~mask] = np.nan
    Xt, Pt = torch.tensor(X, dtype=torch.float32), torch.tensor(P, dtype=torch.float32)
    stats = design_statistics(Xt, Pt, torch.tensor(mask, dtype=torch.float32), 5,
                              model.x_mean, model.x_scale, model.y_mean, model.y_scale, chunk=3)
    criterion = MaskedMSELoss(1.0 / model.y_scale**2)
    for index in ([0, 1, 2, 3], [1, 3], [2]):
        idx = torch.tensor(index)
        with torch.no_grad():
            direct = criterion(model(Xt[idx]), Pt[idx]).item()
            from_stats = _statistics_loss(model, stats, idx).item()
        assert from_stats == pytest.approx(direct, rel=1e-4)
    # the penalty adds alpha * mean squared norm of the standardised kernels
    with torch.no_grad():
        idx = torch.arange(S)
        pen = 0.3 * (model.kernel.weight**2).sum().item() / 3
        assert _statistics_loss(model, stats, idx, alpha=0.3).item() == pytest.approx(
            _statistics_loss(model, stats, idx).item() + pen, rel=1e-4)


def test_statistics_loss_gradient_matches_direct_gradient():
    rng = np.random.default_rng(3)
    X = torch.tensor(rng.standard_normal((3, 10, 4)), dtype=torch.float32)
    P = torch.tensor(rng.standard_normal((3, 10, 3)), dtype=torch.float32)
    mask = torch.ones(3, 10)
    grads = []
    for use_stats in (False, True):
        model = _random_model(N=3, F=4, L=5, seed=4)
        if use_stats:
            stats = design_statistics(X, P, mask, 5, model.x_mean, model.x_scale, model.y_mean,
                                      model.y_scale)
            loss = _statistics_loss(model, stats, torch.arange(3))
        else:
            loss = MaskedMSELoss(1.0 / model.y_scale**2)(model(X), P)
        loss.backward()
        grads.append(model.kernel.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("params", [dict(), dict(history="zero"), dict(prefilter="ic_adaptation"),
                                    dict(prefilter="adaptrans", max_epochs=2, random_state=0),
                                    dict(nonlinearity="softplus", max_epochs=2, random_state=0)])
def test_predictions_in_blocks_of_frames_equal_the_whole_prediction(params):
    """Long recordings and many stimuli are predicted a block of frames at a time, each
    block starting with its real history: the result is the whole prediction's."""
    import warnings

    from skstrf import STRFRegressor
    from skstrf._model import predict_in_blocks, receptive_frames
    from skstrf.datasets import make_strf_dataset

    d = make_strf_dataset(n_stimuli=5, n_times=300, n_freqs=4, n_neurons=2, n_repeats=2, n_lags=5,
                          random_state=0)
    X = np.abs(d.X)
    X[2, 250:] = np.nan
    y = np.where(np.isnan(X[..., :1, None]), np.nan, d.y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = STRFRegressor(n_lags=5, **params).fit(X, y)
    module = est.net_.module_
    whole = predict_in_blocks(module, X, "cpu", block_bytes=2**40)  # one block
    per_frame = 4 * module.kernel.shape[1] * 4 * 5
    assert receptive_frames(module) >= 4
    for frames in (7, 64, 301, 900):  # blocks within a stimulus, and several stimuli per block
        blocks = predict_in_blocks(module, X, "cpu", block_bytes=frames * per_frame)
        valid = ~np.isnan(X[..., 0])
        np.testing.assert_allclose(blocks[valid], whole[valid], rtol=1e-5, atol=1e-6 * np.abs(whole[valid]).max())
    # and the estimator predicts exactly that
    np.testing.assert_allclose(est.predict(X)[valid], whole[valid] + module.y_offset.numpy(), rtol=1e-12)
