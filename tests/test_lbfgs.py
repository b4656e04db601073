"""The parametric kernel fitted by L-BFGS on the training statistics (``solver="lbfgs"``)."""

import warnings

import numpy as np
import pytest

from skstrf import STRFRegressor

F, L, N, S, T = 16, 12, 3, 10, 300


@pytest.fixture(scope="module")
def bumps():
    """Cells whose STRFs are an excitatory and a later inhibitory Gaussian bump (the
    parametric kernel's family), white-noise stimuli, Gaussian noise; one repeat."""
    rng = np.random.default_rng(0)
    f, lag = np.arange(F)[:, None], np.arange(L)[None]
    strfs = []
    for _ in range(N):
        f0, l0 = rng.uniform(4, 12), rng.uniform(1, 4)
        bump = lambda c, d, a, sf, sl: a * np.exp(-(f - c) ** 2 / (2 * sf**2) - (lag - d) ** 2 / (2 * sl**2))  # noqa: E731
        strfs.append(bump(f0, l0, 1.0, 1.5, 1.0) + bump(f0 + rng.uniform(-2, 2), l0 + 3, -0.6, 2.0, 1.5))
    strfs = np.stack(strfs)
    X = rng.standard_normal((S, T, F))
    padded = np.concatenate([np.zeros((S, L - 1, F)), X], axis=1)
    lagged = np.stack([padded[:, L - 1 - k:L - 1 - k + T] for k in range(L)], axis=-1)
    y = np.einsum("stfl,nfl->stn", lagged, strfs)
    y += 1.0 * y.std() * rng.standard_normal(y.shape)
    return X, y, strfs


def _correlation(a, b):
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    return (a * b).sum(1) / np.sqrt((a**2).sum(1) * (b**2).sum(1))


def _held_out(est, X, y):
    p, t = est.predict(X).reshape(-1, N), y.reshape(-1, N)
    return _correlation(p.T, t.T)


def test_lbfgs_is_the_parametric_default_and_at_least_matches_gradient_training(bumps):
    X, y, strfs = bumps
    train, test = slice(0, 8), slice(8, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = {solver: STRFRegressor(kernel="parametric", n_lags=L, n_gaussians=2, history="zero", solver=solver,
                                      random_state=0).fit(X[train], y[train])
                for solver in ("auto", "gradient")}
    assert fits["auto"].solver_ == "lbfgs"
    assert len(fits["auto"].history_) == 1  # one record, like a closed form
    assert np.all(_correlation(fits["auto"].strfs_, strfs) > 0.95)
    lbfgs, gradient = _held_out(fits["auto"], X[test], y[test]), _held_out(fits["gradient"], X[test], y[test])
    assert np.all(lbfgs >= gradient - 0.005), (lbfgs, gradient)


def test_lbfgs_does_not_depend_on_the_random_state(bumps):
    X, y, _ = bumps
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, b = (STRFRegressor(kernel="parametric", n_lags=L, n_gaussians=2, random_state=seed).fit(X, y)
                for seed in (0, 1))
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-5, atol=1e-6 * np.abs(a.predict(X)).max())


@pytest.mark.parametrize("options, message", [
    ({"kernel": "vanilla"}, r"solver='lbfgs' fits the 'parametric' kernel only, but kernel='vanilla'"),
    ({"kernel": "parametric", "nonlinearity": "softplus"}, r"solver='lbfgs' fits linear least-squares models only"),
])
def test_lbfgs_refuses_what_it_cannot_fit(bumps, options, message):
    X, y, _ = bumps
    with pytest.raises(ValueError, match=message):
        STRFRegressor(n_lags=L, solver="lbfgs", **options).fit(X, np.abs(y))
