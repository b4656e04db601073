"""The LN model against its two-stage ceiling: the linear STRF followed by the static
nonlinearity fitted to it (issue 24 item 5)."""

import warnings

import numpy as np
import pytest
import torch

from skstrf import STRFRegressor
from skstrf.metrics import cc_norm
from skstrf.nonlinearities import Exponential, Softplus

F, L, N, S, T = 6, 4, 3, 10, 200


def _standardised_cells(seed=0):
    """Stimuli and responses standardised within every stimulus (mean 0, SD 1 per band and
    per neuron), so that statistics of any subset of stimuli equal those of all: a fit on
    the training stimuli and one on all stimuli then differ only by the frames they read."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((S, T, F))
    X = (X - X.mean(1, keepdims=True)) / X.std(1, keepdims=True)
    W = rng.standard_normal((N, F, L))
    padded = np.concatenate([np.zeros((S, L - 1, F)), X], axis=1)
    lagged = np.stack([padded[:, L - 1 - lag:L - 1 - lag + T] for lag in range(L)], axis=-1)
    z = np.einsum("stfl,nfl->stn", lagged, W)
    y = np.log1p(np.exp(z - 1.0)) + 0.5 * rng.standard_normal(z.shape)
    return X, (y - y.mean(1, keepdims=True)) / y.std(1, keepdims=True)


def test_a_kept_start_is_the_two_stage_model_of_all_stimuli():
    X, y = _standardised_cells()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # one epoch at a learning rate far too large: the epoch is worse than the start,
        # which is kept
        ln = STRFRegressor(n_lags=L, nonlinearity="softplus", history="zero", max_epochs=1, lr=1.0,
                           random_state=0).fit(X, y)
        assert np.all(ln.net_.kept_start_) and ln.valid_stimuli_.size > 0
        # the two-stage model of all stimuli: each neuron's ridge STRF at the LN's penalty...
        ridge = [STRFRegressor(n_lags=L, history="zero", alpha=a).fit(X, y[..., [n]]) for n, a in enumerate(ln.alpha_)]
    strfs = np.concatenate([r.strfs_ for r in ridge])
    np.testing.assert_allclose(ln.strfs_, strfs, rtol=1e-4, atol=1e-5 * np.abs(strfs).max())
    # ... then the least-squares softplus of its output, over every frame
    z = np.concatenate([r.predict(X) for r in ridge], axis=-1).reshape(-1, N)
    softplus = Softplus(torch.as_tensor(y.reshape(-1, N).std(0), dtype=torch.float32))
    softplus.calibrate_(torch.as_tensor(z), torch.as_tensor(y.reshape(-1, N)), "mse")
    with torch.no_grad():
        two_stage = softplus(torch.as_tensor(z, dtype=torch.float32)).double().numpy().reshape(y.shape)
    pred = ln.predict(X)
    np.testing.assert_allclose(pred, two_stage, atol=1e-4 * np.abs(two_stage).max())


def _loss(rate, y, loss):
    """Each neuron's summed squared error or Poisson negative log-likelihood."""
    rate = rate.double()
    return ((y - rate) ** 2 if loss == "mse" else rate - y * torch.log(rate)).sum(0)


@pytest.mark.parametrize("loss", ["mse", "poisson"])
def test_softplus_calibration_is_the_best_static_softplus(loss):
    rng = np.random.default_rng(1)
    generator = torch.Generator().manual_seed(1)
    z = torch.as_tensor(rng.standard_normal((50000, 3)))
    scale = torch.tensor([1.0, 2.0, 2.0])
    gain, slope, offset = torch.tensor([1.5, 0.7, 2.0]), torch.tensor([2.0, 1.5, 5.0]), torch.tensor([-1.0, -0.5, -2.5])
    rate = scale * gain * torch.nn.functional.softplus(slope * z / scale + offset)
    y = (torch.poisson(rate, generator=generator) if loss == "poisson"
         else rate + 0.05 * torch.randn(rate.shape, dtype=rate.dtype, generator=generator))
    fitted = Softplus(scale).calibrate_(z, y, loss)
    with torch.no_grad():
        # at least as good as the true parameters on the data it was fitted to (the
        # maximum-likelihood or least-squares fit), up to float32 storage of the parameters
        assert torch.all(_loss(fitted(z.float()), y, loss) <= _loss(rate, y, loss) + 1e-6 * _loss(rate, y, loss).abs())
    if loss == "mse":  # little noise: the parameters themselves are recovered
        np.testing.assert_allclose(fitted.log_gain.detach().exp(), gain, rtol=0.05)
        np.testing.assert_allclose(fitted.log_slope.detach().exp(), slope, rtol=0.05)
        np.testing.assert_allclose(fitted.offset.detach(), offset, atol=0.05)


def test_exponential_calibration_recovers_slope_and_offset():
    rng = np.random.default_rng(2)
    generator = torch.Generator().manual_seed(2)
    z = torch.as_tensor(rng.standard_normal((50000, 2)))
    exp = Exponential(torch.tensor([1.0, 3.0]))
    r0 = exp.reference.double()
    slope, offset = torch.tensor([0.8, 1.7]), torch.tensor([0.3, -0.6])
    y = torch.poisson(r0 * torch.exp(slope * (z - r0) / r0 + offset), generator=generator)
    exp.calibrate_(z, y, "poisson")
    np.testing.assert_allclose(exp.log_slope.detach().exp(), slope, rtol=0.05)
    np.testing.assert_allclose(exp.offset.detach(), offset, atol=0.05)


def _two_stage(ridge, X_train, y_train, X_test):
    """The two-stage model's predictions: ``ridge``'s STRF, then the least-squares softplus of
    its training output, per neuron."""
    psth = y_train.mean(-1).reshape(-1, y_train.shape[2])
    z = ridge.predict(X_train).reshape(psth.shape)
    softplus = Softplus(torch.as_tensor(psth.std(0), dtype=torch.float32))
    softplus.calibrate_(torch.as_tensor(z), torch.as_tensor(psth), "mse")
    with torch.no_grad():
        return softplus(torch.as_tensor(ridge.predict(X_test), dtype=torch.float32)).double().numpy()


def test_each_neuron_keeps_its_start_or_its_trained_model():
    """Two thresholded cells, which gradient training helps, and two linear ones, for which
    the two-stage start is already the right model and training only adds noise. A choice
    made once for the whole model (the mean validation score, which the first two carry)
    trains every neuron and leaves the linear ones below their two-stage model on new
    stimuli; each neuron's own choice keeps their start (made again from all stimuli)."""
    rng = np.random.default_rng(0)
    n_stimuli, n_times, n_freqs, n_lags = 16, 200, 8, 6
    X = rng.standard_normal((n_stimuli, n_times, n_freqs))
    W = rng.standard_normal((4, n_freqs, n_lags)) / np.sqrt(n_freqs * n_lags)
    padded = np.concatenate([np.zeros((n_stimuli, n_lags - 1, n_freqs)), X], axis=1)
    lagged = np.stack([padded[:, n_lags - 1 - lag:n_lags - 1 - lag + n_times] for lag in range(n_lags)], axis=-1)
    z = np.einsum("stfl,nfl->stn", lagged, W)
    rate = np.concatenate([np.log1p(np.exp(6 * (z[..., :2] - 1.5))), 5 + z[..., 2:]], axis=-1)
    y = rate[..., None] + np.array([0.3, 0.3, 0.6, 0.6])[:, None] * rng.standard_normal(rate.shape + (4,))
    train, test = np.arange(12), np.arange(12, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ln = STRFRegressor(n_lags=n_lags, nonlinearity="softplus", lr=0.05, max_epochs=20, patience=None,
                           validation_fraction=0.3, random_state=0).fit(X[train], y[train])
        ridge = STRFRegressor(n_lags=n_lags).fit(X[train], y[train])
        ln_scores = cc_norm(y[test], ln.predict(X[test]), multioutput="raw_values")
        two_scores = cc_norm(y[test], _two_stage(ridge, X[train], y[train], X[test]), multioutput="raw_values")
    # the trained epochs win on the mean validation score...
    assert np.nanmax(ln.history_[:, "valid_cc_norm"]) > ln.net_.start_valid_cc_norm_
    # ... but only the thresholded cells gain from them; the linear cells are their
    # two-stage model of all twelve stimuli (up to the units: the LN model standardises
    # with its eight training stimuli)
    assert np.all(ln_scores[:2] > two_scores[:2] + 0.02), (ln_scores, two_scores)
    np.testing.assert_allclose(ln_scores[2:], two_scores[2:], atol=5e-4)
    np.testing.assert_array_equal(ln.net_.kept_start_, [False, False, True, True])
