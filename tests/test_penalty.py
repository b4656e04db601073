"""The penalty object (skstrf._penalty): one quadratic penalty for every loss and solver.

A penalty ``alpha_n w_n' Q w_n`` with any symmetric positive definite ``Q`` must give the
same model through every path: the closed-form ridge (by a change of variables), ALS's
half-steps, and gradient training (statistics step and forward passes), checked against a
direct numpy solution of the penalised least-squares problem.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from skstrf import STRFRegressor
from skstrf._design import lagged_design
from skstrf._penalty import Penalty, QuadraticForm, second_difference_gram, smoothness_form
from skstrf.datasets import make_strf_dataset

F, L = 6, 4


@pytest.fixture(scope="module")
def linear():
    return make_strf_dataset(n_stimuli=6, n_times=120, n_freqs=F, n_neurons=3, n_repeats=4, n_lags=L,
                             nonlinearity="identity", noise="gaussian", snr=1.0, random_state=2)


def _direct_ridge(est, X, y, Q, alpha):
    """Penalised least squares by numpy on the standardised design the estimator uses."""
    module = est.net_.module_
    mean = np.nanmean(X, axis=(0, 1))
    Xc = np.nan_to_num(X - mean)  # the history (the training mean) is zero once centred
    Z = lagged_design(torch.as_tensor(Xc), L).numpy().reshape(len(X), X.shape[1], F * L)
    mask = ~np.isnan(X[..., 0])
    scale = module.x_scale.double().numpy().repeat(L)
    P = np.nanmean(y, axis=-1)
    Zs = (Z[mask] / scale)
    Zs = Zs - Zs.mean(0)
    Ps = P[mask]
    Ps = (Ps - Ps.mean(0)) / module.y_scale.double().numpy()
    n = Zs.shape[0]
    w = np.stack([np.linalg.solve(Zs.T @ Zs / n + a * Q, Zs.T @ Ps[:, k] / n) for k, a in enumerate(alpha)])
    return (w.reshape(-1, F, L) * module.y_scale.double().numpy()[:, None, None]
            / module.x_scale.double().numpy()[None, :, None])


def test_second_difference_gram_is_the_curvature():
    profile = np.array([1.0, 3.0, 2.0, 5.0])
    curvature = np.diff(profile, 2)
    assert profile @ second_difference_gram(4) @ profile == pytest.approx((curvature**2).sum())
    # constant and linear profiles have no curvature
    for flat in (np.ones(5), np.arange(5.0)):
        assert flat @ second_difference_gram(5) @ flat == pytest.approx(0.0, abs=1e-12)
    assert not second_difference_gram(2).any()


def test_smoothness_form_is_positive_definite_with_mean_eigenvalue_one():
    form = smoothness_form((1, F, L), 0.5, 0.3)
    evals = torch.linalg.eigvalsh(form.matrix)
    assert float(evals.min()) > 0 and float(evals.mean()) == pytest.approx(1.0)
    # the whitening T satisfies T' Q T = I
    T = form.whitening()
    torch.testing.assert_close(T.T @ form.matrix @ T, torch.eye(F * L, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"smooth_freq=0.6 and smooth_lag=0.5.*sum < 1"):
        smoothness_form((1, F, L), 0.6, 0.5)


def test_penalty_value_is_the_mean_quadratic_form_and_autograd_gives_its_gradient():
    form = smoothness_form((1, F, L), 0.4, 0.2)
    w = torch.randn(3, F * L, dtype=torch.float64, requires_grad=True)
    alpha = np.array([0.5, 0.0, 2.0])
    value = Penalty(form, alpha).value(w)
    Q = form.matrix
    expected = sum(alpha[n] * w[n] @ Q @ w[n] for n in range(3)) / 3
    torch.testing.assert_close(value, expected)
    value.backward()
    torch.testing.assert_close(w.grad, (2 * torch.as_tensor(alpha)[:, None] * (w @ Q) / 3).detach())
    assert float(Penalty(QuadraticForm((1, F, L)), 0.0).value(w)) == 0.0


@pytest.mark.parametrize("smooth", [(0.0, 0.0), (0.7, 0.0), (0.3, 0.5)])
def test_closed_form_ridge_solves_the_penalised_problem(linear, smooth):
    alpha = 0.3
    est = STRFRegressor(n_lags=L, alpha=alpha, validation_fraction=None, smooth_freq=smooth[0],
                        smooth_lag=smooth[1]).fit(linear.X, linear.y)
    form = smoothness_form((1, F, L), *smooth) if any(smooth) else QuadraticForm((1, F, L))
    Q = np.eye(F * L) if form.matrix is None else form.matrix.numpy()
    expected = _direct_ridge(est, linear.X, linear.y, Q, [alpha] * 3)
    # strfs_ come from the float32 model: equal to float32 rounding
    np.testing.assert_allclose(est.strfs_, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())


def test_smoothness_makes_profiles_smoother_and_the_choice_of_alpha_still_works(linear):
    plain = STRFRegressor(n_lags=L).fit(linear.X, linear.y)
    smooth = STRFRegressor(n_lags=L, smooth_freq=0.9).fit(linear.X, linear.y)

    def curvature(strfs):
        return float((np.diff(strfs, 2, axis=1) ** 2).sum() / (strfs**2).sum())

    assert curvature(smooth.strfs_) < curvature(plain.strfs_)
    assert smooth.alpha_.shape == (3,) and hasattr(smooth, "cv_scores_")


def test_gradient_training_reaches_the_closed_form_with_the_same_smoothness(linear):
    params = dict(n_lags=L, alpha=0.5, validation_fraction=None, smooth_freq=0.6, smooth_lag=0.2, random_state=0)
    ref = STRFRegressor(**params).fit(linear.X, linear.y)
    grad = STRFRegressor(**params, solver="gradient", init="random", batch_size=None, max_epochs=3000,
                         lr=1e-2).fit(linear.X, linear.y)
    assert np.linalg.norm(grad.strfs_ - ref.strfs_) / np.linalg.norm(ref.strfs_) < 1e-4


def test_forward_training_uses_the_same_penalty_as_the_statistics_step(linear):
    # a model trained on forward passes (an LN output) and its statistics counterpart share
    # the penalty term: the loss recorded for a closed-form fit is the statistics loss plus it
    params = dict(n_lags=L, alpha=0.5, validation_fraction=None, smooth_freq=0.6)
    est = STRFRegressor(**params).fit(linear.X, linear.y)
    net = est.net_
    w = net.module_.standardized_weight().detach()
    with torch.no_grad():
        penalty = float(net.penalty.value(w))
    Q = smoothness_form((1, F, L), 0.6, 0.0).matrix.float()
    expected = float((torch.as_tensor(est.alpha_, dtype=torch.float32) * ((w @ Q) * w).sum(1)).mean())
    assert penalty == pytest.approx(expected, rel=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ln = STRFRegressor(**params, nonlinearity="softplus", max_epochs=2, random_state=0).fit(linear.X, linear.y)
    assert ln.net_.penalty.form.name == net.penalty.form.name


def test_als_uses_the_penalty_form(linear):
    # rank = min(F, L): the separable kernel is unconstrained, ALS reaches the ridge optimum
    params = dict(n_lags=L, alpha=0.3, validation_fraction=None, smooth_freq=0.5)
    ridge = STRFRegressor(**params).fit(linear.X, linear.y)
    als = STRFRegressor(**params, kernel="separable", rank=L).fit(linear.X, linear.y)
    np.testing.assert_allclose(als.strfs_, ridge.strfs_, rtol=0, atol=1e-4 * np.abs(ridge.strfs_).max())


def test_smoothness_grids_skip_the_combinations_that_leave_the_identity_nothing():
    from skstrf._penalty import smoothness_grid

    grid = [0.0, 0.3, 0.6, 0.9]
    pairs = smoothness_grid(grid, grid)
    assert (0.0, 0.0) in pairs and (0.3, 0.6) in pairs and (0.9, 0.0) in pairs
    assert all(a + b < 1 for a, b in pairs) and len(pairs) == 10
    assert smoothness_grid(0.5, 0.0) == [(0.5, 0.0)]
    with pytest.raises(ValueError, match=r"smooth_freq=0.6 and smooth_lag=0.5.*sum < 1"):
        smoothness_grid(0.6, 0.5)


@pytest.mark.parametrize("value", [[0.0, np.nan], [], [[0.1, 0.2]], [0.2, 1.0], [-0.1], "smooth"])
def test_bad_smoothness_grids_are_refused_before_the_data_are_read(value):
    est = STRFRegressor(smooth_freq=value)
    # all-zero data would be refused (constant bands) if the options were checked after them
    with pytest.raises(ValueError, match=r"'?smooth_freq'? (must be a share in \[0, 1\)|parameter)"):
        est.fit(np.zeros((2, 10, F)), np.zeros((2, 10, 1)))


def test_a_grid_over_both_axes_fits(linear):
    grid = [0.0, 0.3, 0.6, 0.9]
    est = STRFRegressor(n_lags=L, smooth_freq=grid, smooth_lag=grid).fit(linear.X, linear.y)
    assert est.cv_scores_.shape[0] == 10
    assert ((est.smooth_freq_ + est.smooth_lag_) < 1).all()
