"""Tests of gradient maps and the LN inspection helpers against strfs_ and finite differences."""

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skstrf import STRFRegressor
from skstrf.datasets import make_strf_dataset
from skstrf.inspection import gradient_maps, linear_drive, output_nonlinearity

F, L, N = 10, 5, 4


@pytest.fixture(scope="module")
def data():
    return make_strf_dataset(n_stimuli=6, n_times=150, n_freqs=F, n_neurons=N, n_repeats=5,
                             n_lags=L, ragged=True, random_state=0)


@pytest.mark.parametrize("options", [dict(), dict(kernel="separable"),
                                     dict(kernel="parametric", n_gaussians=2, max_epochs=2)])
def test_gradient_maps_of_linear_models_equal_their_strfs(data, options):
    est = STRFRegressor(n_lags=L, random_state=0, **options).fit(data.X, data.y)
    tol = 1e-6 * np.abs(est.strfs_).max()
    np.testing.assert_allclose(gradient_maps(est), est.strfs_, rtol=1e-5, atol=tol)
    # A linear model's gradient is the same wherever it is taken.
    np.testing.assert_allclose(gradient_maps(est, data.X), est.strfs_, rtol=1e-5, atol=tol)
    np.testing.assert_allclose(gradient_maps(est, baseline=np.arange(F) / F), est.strfs_, rtol=1e-5, atol=tol)
    # A longer window: lags beyond n_lags do not matter.
    longer = gradient_maps(est, n_frames=L + 3)
    np.testing.assert_allclose(longer[..., :L], est.strfs_, rtol=1e-5, atol=tol)
    np.testing.assert_array_equal(longer[..., L:], 0.0)


def test_gradient_maps_of_an_ln_model_are_the_scaled_strf(data):
    est = STRFRegressor(n_lags=L, nonlinearity="exp", loss="poisson", max_epochs=2,
                        random_state=0).fit(data.X, data.y)
    nl = est.net_.module_.nonlinearity
    slope = nl.log_slope.exp().detach().numpy()
    r0 = nl.reference.numpy()

    def derivative(z):  # of r0 exp(slope (z - r0) / r0 + offset)
        return slope / r0 * output_nonlinearity(est, z)

    # Silence: the linear stage sits at its intercept.
    expected = derivative(est.intercept_)[:, None, None] * est.strfs_
    np.testing.assert_allclose(gradient_maps(est), expected, rtol=1e-4, atol=1e-9)
    # Data-dependent: the mean of f'(z_t) over the frames with a full window of history.
    z = linear_drive(est, data.X)
    full = np.concatenate([z[s, L - 1:length] for s, length in enumerate(data.lengths)])
    expected = derivative(full).mean(0)[:, None, None] * est.strfs_
    np.testing.assert_allclose(gradient_maps(est, data.X, max_windows=None), expected, rtol=1e-4, atol=1e-9)


def _finite_difference_maps(est, level, eps=1e-2):
    """Central differences of predict at the last frame of a constant window, every (f, k).

    The window is long enough for the prefilter's taps, as in gradient_maps.
    """
    context = L + est.net_.module_.prefilter.n_taps - 1
    window = np.tile(level, (context, 1))
    bumps = np.zeros((F * L, context, F))
    f, k = np.divmod(np.arange(F * L), L)
    bumps[np.arange(F * L), context - 1 - k, f] = eps
    up = est.predict(window + bumps)[:, -1]      # (F * L, N)
    down = est.predict(window - bumps)[:, -1]
    return ((up - down) / (2 * eps)).T.reshape(N, F, L)


@pytest.mark.parametrize("options", [dict(prefilter="adaptrans", nonlinearity="softplus"),
                                     dict(prefilter="ic_adaptation")])
def test_gradient_maps_match_finite_differences_through_a_prefilter(data, options):
    est = STRFRegressor(n_lags=L, max_epochs=2, random_state=0, **options).fit(data.X, data.y)
    level = np.nanmean(data.X, axis=(0, 1))
    maps = gradient_maps(est, baseline=level)
    np.testing.assert_allclose(maps, _finite_difference_maps(est, level), rtol=2e-2,
                               atol=2e-3 * np.abs(maps).max())
    assert np.abs(maps).max() > 0


def test_rectified_prefilter_has_no_gradient_at_silence(data):
    est = STRFRegressor(n_lags=L, prefilter="adaptrans", max_epochs=1, random_state=0).fit(data.X, data.y)
    np.testing.assert_array_equal(gradient_maps(est), 0.0)


def test_gradient_maps_through_a_pipeline_and_a_search(data):
    pipe = make_pipeline(FunctionTransformer(lambda X: 2.0 * X), STRFRegressor(n_lags=L, random_state=0))
    pipe.fit(data.X, data.y)
    est = pipe[-1]
    # With respect to the final estimator's input, the transformed stimulus.
    np.testing.assert_allclose(gradient_maps(pipe), est.strfs_, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(gradient_maps(pipe, data.X), est.strfs_, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(linear_drive(pipe, data.X), pipe.predict(data.X), rtol=1e-5, atol=1e-8)

    class Search:  # what GridSearchCV exposes after refit
        best_estimator_ = est

    np.testing.assert_allclose(gradient_maps(Search()), est.strfs_, rtol=1e-5, atol=1e-8)


def test_errors():
    with pytest.raises(NotFittedError):
        gradient_maps(STRFRegressor())
    d = make_strf_dataset(n_stimuli=3, n_times=40, n_freqs=F, n_neurons=N, n_repeats=3, n_lags=L,
                          random_state=1)
    est = STRFRegressor(n_lags=L).fit(d.X, d.y)
    with pytest.raises(ValueError, match=r"baseline must be .* shape \(n_freqs,\) = \(10,\)"):
        gradient_maps(est, baseline=np.ones(3))
    with pytest.raises(ValueError, match="n_frames must be a positive integer"):
        gradient_maps(est, n_frames=0)
    with pytest.raises(ValueError, match="no stimulus has 50 valid frames"):
        gradient_maps(est, d.X, n_frames=50)
    with pytest.raises(ValueError, match=r"neurons last, shape \(\.\.\., 4\)"):
        output_nonlinearity(est, np.zeros((5, 3)))
    # identity output: z itself
    z = np.random.default_rng(0).normal(size=(7, N))
    np.testing.assert_array_equal(output_nonlinearity(est, z), z)
    assert torch.is_grad_enabled()
