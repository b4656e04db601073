"""Lag bases (issue 25.3): lag profiles as combinations of a few functions of the lag.

Every kernel and solver works over the basis's coefficients; the penalty is the STRF's;
``strfs_`` stays in lags. Checked against direct numpy solutions of the same penalised
least-squares problem on the projected design, and against the fit without a basis.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV

from skstrf import STRFRegressor
from skstrf._design import design_statistics, lagged_design, lagged_statistics
from skstrf._penalty import QuadraticForm, smoothness_form
from skstrf.kernels import LagBasis, VanillaKernel, lag_basis, orthonormal_lag_basis, raised_cosine_basis
from skstrf.datasets import make_strf_dataset

F, L, B = 5, 12, 5


@pytest.fixture(scope="module")
def data():
    return make_strf_dataset(n_stimuli=6, n_times=150, n_freqs=F, n_neurons=3, n_repeats=3, n_lags=L,
                             nonlinearity="identity", noise="gaussian", snr=1.0, random_state=4)


def _direct_ridge(est, X, y, frame, Q, alpha):
    """Penalised least squares by numpy over the coefficients of ``frame`` (orthonormal),
    on the standardised design the estimator uses: minimise
    ``|P - Z J v|^2 / n + alpha v' J' Q J v``, STRF ``J v`` in the data's units."""
    module = est.net_.module_
    mean = np.nanmean(X, axis=(0, 1))
    Xc = np.nan_to_num(X - mean)  # the default history (the training mean) is zero once centred
    Z = lagged_design(torch.as_tensor(Xc), L).numpy()  # (S, T, F, L)
    mask = ~np.isnan(X[..., 0])
    Z = Z[mask] / module.x_scale.double().numpy()[None, :, None]
    J = np.kron(np.eye(F), frame)  # (F L, F B)
    Zs = Z.reshape(len(Z), F * L) @ J
    Zs = Zs - Zs.mean(0)
    P = np.nanmean(y, axis=-1)[mask]
    Ps = (P - P.mean(0)) / module.y_scale.double().numpy()
    n = len(Zs)
    Qv = J.T @ Q @ J
    v = np.stack([np.linalg.solve(Zs.T @ Zs / n + alpha * Qv, Zs.T @ Ps[:, k] / n) for k in range(Ps.shape[1])])
    w = v @ J.T  # (N, F L)
    return (w.reshape(-1, F, L) * module.y_scale.double().numpy()[:, None, None]
            / module.x_scale.double().numpy()[None, :, None])


# ------------------------------------------------------------------------ the functions
def test_raised_cosines_tile_the_lags_and_narrow_at_short_lags():
    basis = raised_cosine_basis(30, 8)
    assert basis.shape == (30, 8) and (basis >= 0).all() and basis.max() <= 1.0
    peaks = basis.argmax(axis=0)
    assert peaks[0] == 0 and peaks[-1] == 29 and (np.diff(peaks) > 0).all()
    widths = (basis > 0.5).sum(axis=0)
    assert widths[0] < widths[-1]  # fine detail at short lags
    # neighbours overlap so that every lag is covered: the sum is 2 but near the ends (1.5)
    total = basis.sum(axis=1)
    assert total.min() == pytest.approx(1.5) and total.max() == pytest.approx(2.0)
    centres = np.log(np.arange(30) + 1.0)
    inner = (centres >= np.linspace(centres[0], centres[-1], 8)[1]) & (centres <= np.linspace(centres[0], centres[-1], 8)[-2])
    np.testing.assert_allclose(total[inner], 2.0)
    assert np.linalg.matrix_rank(basis) == 8
    np.testing.assert_array_equal(raised_cosine_basis(5, 1), np.ones((5, 1)))


def test_every_count_of_raised_cosines_is_a_basis_of_that_many_functions():
    # with the log axis starting at lag + 1, up to three functions peaked between lags 0 and
    # 1 for 30 lags and 12 functions: sampled on the lags, they were linearly dependent
    for n_lags in range(1, 61):
        for n_basis in range(1, n_lags + 1):
            singular = np.linalg.svd(raised_cosine_basis(n_lags, n_basis), compute_uv=False)
            assert singular[-1] > 1e-4 * singular[0], (n_lags, n_basis)
    peaks = raised_cosine_basis(30, 12).argmax(axis=0)
    assert np.diff(peaks).min() >= 1 and peaks[0] == 0 and peaks[-1] == 29
    np.testing.assert_allclose(raised_cosine_basis(10, 10).argmax(axis=0), np.arange(10))  # evenly spaced
    with pytest.raises(ValueError, match="stretch must be positive"):
        raised_cosine_basis(10, 3, stretch=0.0)


def test_orthonormal_basis_keeps_the_span_and_the_place_of_each_function():
    basis = raised_cosine_basis(20, 6)
    frame = orthonormal_lag_basis(basis)
    np.testing.assert_allclose(frame.T @ frame, np.eye(6), atol=1e-12)
    # same span: projecting the original functions onto the frame gives them back
    np.testing.assert_allclose(frame @ (frame.T @ basis), basis, atol=1e-12)
    # the closest orthonormal matrix (polar factor): each function stays where it was
    assert np.abs(frame.argmax(axis=0) - basis.argmax(axis=0)).max() <= 1
    q = np.linalg.qr(basis)[0]
    q = q * np.sign(np.sum(q * basis, axis=0))
    assert np.linalg.norm(frame - basis) < np.linalg.norm(q - basis)


@pytest.mark.parametrize("spec, match", [
    (0, "1 to n_lags = 12"), (13, "1 to n_lags = 12"),
    (np.ones((11, 3)), r"shape \(n_lags, n_basis\).*n_lags = 12.*\(11, 3\)"),
    (np.ones((12, 13)), r"n_basis <= 12"),
    (np.full((12, 2), np.nan), "NaN"),
    (np.ones((12, 2)), "linearly independent"),
    ("cosines", "lag_basis must be None, a number"),
])
def test_bad_lag_bases_are_refused_with_the_problem_named(spec, match):
    with pytest.raises(ValueError, match=match):
        lag_basis(spec, 12)


def test_a_bad_lag_basis_fails_before_the_data_are_read(data):
    est = STRFRegressor(n_lags=L, lag_basis=L + 1)
    with pytest.raises(ValueError, match="1 to n_lags"):
        est.fit(np.full((2, 10, F), np.nan), None if False else np.zeros((2, 10, 1)))
    with pytest.raises(ValueError, match="lag_basis"):
        STRFRegressor(lag_basis=2.5).fit(data.X, data.y)  # a float is neither a count nor a matrix


# ------------------------------------------------------------------------ statistics
@pytest.mark.parametrize("n_blocks, grouped", [(1, False), (2, False), (2, True)])
def test_projected_statistics_are_those_of_the_projected_design(n_blocks, grouped):
    rng = np.random.default_rng(0)
    S, T, N = 4, 40, 2
    X = torch.as_tensor(rng.standard_normal((S, T, F)) + 1.0)
    P = torch.as_tensor(rng.standard_normal((S, T, N)))
    lengths = torch.tensor([40, 33, 25, 38])
    mask = (torch.arange(T)[None] < lengths[:, None]).double()
    units = (X.mean((0, 1)), X.std((0, 1)), P.mean((0, 1)), P.std((0, 1)))
    frame = torch.as_tensor(orthonormal_lag_basis(raised_cosine_basis(L, B)))
    groups = torch.tensor([0, 1, 1, 0, 2, 2, 0, 1]) if grouped else None
    fast = lagged_statistics(X, P, mask, L, *units, n_blocks=n_blocks, basis=frame, groups=groups, chunk=3)
    direct = design_statistics(X, P, mask, L, *units, n_blocks=n_blocks, basis=frame)
    full = lagged_statistics(X, P, mask, L, *units, n_blocks=n_blocks)
    if grouped:
        direct, full = direct.sum_rows(groups, 3), full.sum_rows(groups, 3)
    assert fast.gram.shape[1:] == (F * B + 1, F * B + 1)
    for a, b, c in zip((fast.gram, fast.cross, fast.sq, fast.count),
                       (direct.gram, direct.cross, direct.sq, direct.count),
                       (full.in_basis(frame).gram, full.in_basis(frame).cross, full.sq, full.count)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-9)
        torch.testing.assert_close(a, c, rtol=1e-10, atol=1e-9)


def test_forms_on_the_coefficients_give_the_strf_penalty():
    frame = orthonormal_lag_basis(raised_cosine_basis(L, B))
    J = np.kron(np.eye(2 * F), frame)
    v = np.random.default_rng(1).standard_normal(2 * F * B)
    w = J @ v
    diagonal = np.repeat(np.repeat([1.0, 4.0], F), L)  # a penalty per channel, the same at every lag
    for form in (QuadraticForm((2, F, L)), QuadraticForm((2, F, L), diagonal=diagonal),
                 smoothness_form((2, F, L), 0.3, 0.5)):
        projected = form.in_basis(frame)
        assert projected.shape == (2, F, B)
        wt, vt = torch.as_tensor(w)[None], torch.as_tensor(v)[None]
        torch.testing.assert_close(projected.quadratic(vt), form.quadratic(wt), rtol=1e-10, atol=0)
    assert QuadraticForm((2, F, L)).in_basis(frame).is_identity
    assert QuadraticForm((2, F, L), diagonal=diagonal).in_basis(frame).diagonal is not None


# ------------------------------------------------------------------------ fits
def test_the_identity_basis_is_the_fit_without_a_basis(data):
    params = dict(n_lags=L, alpha=0.5, validation_fraction=None)
    free = STRFRegressor(**params).fit(data.X, data.y)
    identity = STRFRegressor(**params, lag_basis=np.eye(L)).fit(data.X, data.y)
    np.testing.assert_allclose(identity.strfs_, free.strfs_, rtol=1e-5, atol=1e-6 * np.abs(free.strfs_).max())


@pytest.mark.parametrize("smooth", [(0.0, 0.0), (0.4, 0.3)])
def test_closed_form_over_a_basis_solves_the_penalised_problem(data, smooth):
    alpha = 0.3
    basis = raised_cosine_basis(L, B)
    est = STRFRegressor(n_lags=L, alpha=alpha, validation_fraction=None, lag_basis=basis,
                        smooth_freq=smooth[0], smooth_lag=smooth[1]).fit(data.X, data.y)
    form = smoothness_form((1, F, L), *smooth) if any(smooth) else QuadraticForm((1, F, L))
    Q = form.dense().numpy()
    expected = _direct_ridge(est, data.X, data.y, orthonormal_lag_basis(basis), Q, alpha)
    np.testing.assert_allclose(est.strfs_, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())
    assert est.strfs_.shape == (3, F, L)
    assert est.n_params_per_neuron_ == F * B + 1


def test_the_penalty_is_the_strfs_whatever_functions_span_the_basis(data):
    # two bases of the same span give the same fit: the penalty does not depend on the
    # coefficients' scale (the basis is orthonormalised)
    basis = raised_cosine_basis(L, B)
    mix = np.random.default_rng(3).standard_normal((B, B)) + 3 * np.eye(B)
    one = STRFRegressor(n_lags=L, lag_basis=basis).fit(data.X, data.y)
    other = STRFRegressor(n_lags=L, lag_basis=10.0 * basis @ mix).fit(data.X, data.y)
    np.testing.assert_allclose(other.alpha_, one.alpha_)
    np.testing.assert_allclose(other.strfs_, one.strfs_, rtol=1e-4, atol=1e-5 * np.abs(one.strfs_).max())


@pytest.mark.parametrize("kernel", ["vanilla", "separable", "parametric"])
def test_every_kernel_fits_strfs_in_the_span_of_the_basis(data, kernel):
    basis = raised_cosine_basis(L, 4)
    frame = orthonormal_lag_basis(basis)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few epochs
        est = STRFRegressor(kernel=kernel, n_lags=L, lag_basis=basis, max_epochs=5, random_state=0).fit(data.X, data.y)
    assert est.strfs_.shape == (3, F, L)
    outside = est.strfs_ - est.strfs_ @ frame @ frame.T
    assert np.abs(outside).max() < 1e-5 * np.abs(est.strfs_).max()
    assert np.isfinite(est.score(data.X, data.y))
    if kernel == "separable":  # ALS over the coefficients: each neuron's rank in lags too
        s = np.linalg.svd(est.strfs_, compute_uv=False)
        for n, r in enumerate(est.rank_):
            assert (s[n, r:] < 1e-5 * s[n, 0]).all() and s[n, r - 1] > 1e-3 * s[n, 0], (r, s[n])


def test_a_basis_smooths_a_noisy_fit_with_many_lags():
    # smooth true STRFs, little data, many lags: the basis's fit is closer to the truth
    d = make_strf_dataset(n_stimuli=5, n_times=120, n_freqs=F, n_neurons=4, n_repeats=2, n_lags=20,
                          nonlinearity="identity", noise="gaussian", snr=0.3, random_state=7)
    errors = {}
    for spec in (None, 6):
        est = STRFRegressor(n_lags=20, lag_basis=spec).fit(d.X, d.y)
        errors[spec] = np.linalg.norm(est.strfs_ - d.strfs) / np.linalg.norm(d.strfs)
    assert errors[6] < errors[None]


def test_feature_spaces_and_smoothness_grids_work_over_a_basis(data):
    est = STRFRegressor(n_lags=L, lag_basis=4, feature_spaces=[2, 3], smooth_lag=[0.0, 0.5]).fit(data.X, data.y)
    assert est.alpha_.shape == (3, 2) and est.smooth_lag_.shape == (3,)
    assert est.cv_scores_.shape[0] == 2 * 11


def test_warm_start_refuses_another_basis(data):
    est = STRFRegressor(n_lags=L, lag_basis=4, solver="gradient", max_epochs=2, warm_start=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(data.X, data.y)
        est.set_params(lag_basis=5)
        with pytest.raises(ValueError, match="lag_basis"):
            est.fit(data.X, data.y)
        est.set_params(lag_basis=2 * raised_cosine_basis(L, 4))  # same span, other functions
        est.fit(data.X, data.y)  # the orthonormalised basis is the same: it continues


def test_jackknife_over_a_basis_refits_in_the_basis(data):
    from skstrf.inspection import jackknife_strfs

    # near-zero penalty and a fixed history level: the refit's standardisation does not matter
    params = dict(n_lags=L, alpha=1e-6, validation_fraction=None, lag_basis=4, history="zero")
    est = STRFRegressor(**params).fit(data.X, data.y)
    fast = jackknife_strfs(est, data.X, data.y)
    assert fast.method == "closed_form" and fast.estimates.shape[1:] == est.strfs_.shape
    keep = np.arange(1, len(data.X))  # the first leave-one-out estimate, refitted from scratch
    refit = STRFRegressor(**params).fit(data.X[keep], data.y[keep])
    np.testing.assert_allclose(fast.estimates[0], refit.strfs_, rtol=0, atol=1e-4 * np.abs(refit.strfs_).max())


def test_grid_search_chooses_the_number_of_functions(data):
    search = GridSearchCV(STRFRegressor(n_lags=L, alpha=1.0, validation_fraction=None),
                          {"lag_basis": [None, 3, 6]}, cv=3).fit(data.X, data.y)
    assert search.best_params_["lag_basis"] in (None, 3, 6)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_lag_basis_kernel_maps_coefficients_to_lags():
    inner = VanillaKernel(2, 1, 3, 4)
    kernel = LagBasis(inner, raised_cosine_basis(10, 4))
    coefficients = torch.randn(2, 1, 3, 4)
    kernel.set_coefficients(coefficients)
    frame = kernel.lag_frame
    torch.testing.assert_close(kernel(), (coefficients.double() @ frame.T).float())
    kernel.set_weight(kernel().detach())  # a weight in the span: the same coefficients back
    torch.testing.assert_close(kernel.coefficients(), coefficients, rtol=1e-5, atol=1e-6)
    assert kernel.coefficient_shape == (1, 3, 4) and kernel.shape == (2, 1, 3, 10)
