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
    return (*_linear_responses(rng, strfs, S, T, noise=1.0), strfs)


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


@pytest.fixture(scope="module")
def many_lobes():
    """Cells whose STRFs have 16 small lobes of either sign (more features than the 8
    Gaussians of the default before December 2026, fewer than today's 24), white noise,
    Gaussian noise of half the signal's standard deviation; one repeat."""
    rng = np.random.default_rng(0)
    f, lag = np.arange(F)[:, None], np.arange(L)[None]
    strfs = np.zeros((N, F, L))
    for n in range(N):
        for _ in range(16):
            cf, cl = rng.uniform(1, F - 2), rng.uniform(0, L - 2)
            strfs[n] += (rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.0)
                         * np.exp(-(f - cf) ** 2 / (2 * 0.8**2) - (lag - cl) ** 2 / (2 * 0.8**2)))
    return (*_linear_responses(rng, strfs, S, T, noise=0.5), strfs)


def test_the_default_gaussians_follow_an_strf_of_many_lobes(many_lobes):
    """The default number of Gaussians (24) recovers a 16-lobe STRF (correlation with the
    truth above 0.98) and predicts held-out stimuli as well as the free kernel; 8 Gaussians
    (the default before) cannot follow every lobe (below 0.97) and predict worse."""
    X, y, strfs = many_lobes
    train, test = slice(0, 8), slice(8, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = {name: STRFRegressor(n_lags=L, random_state=0, **options).fit(X[train], y[train])
                for name, options in (("default", {"kernel": "parametric"}), ("vanilla", {}),
                                      ("8 Gaussians", {"kernel": "parametric", "n_gaussians": 8}))}
    assert fits["default"].n_gaussians == 24
    recovered = {name: _correlation(est.strfs_, strfs) for name, est in fits.items()}
    held_out = {name: _held_out(est, X[test], y[test]) for name, est in fits.items()}
    assert np.all(recovered["default"] > 0.98), recovered
    assert np.all(held_out["default"] >= held_out["vanilla"] - 0.002), held_out
    assert np.all(recovered["8 Gaussians"] < 0.97), recovered
    assert np.all(held_out["8 Gaussians"] < held_out["default"] - 0.01), held_out


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


def test_lbfgs_reaches_each_neurons_optimum_on_a_quadratic():
    """On a convex problem with a closed-form optimum (a free kernel: ridge with a penalty
    per neuron, from 1e-5 to 10, on an ill-conditioned design), 500 iterations reach the
    ridge solution of every neuron whose penalty is not tiny. One L-BFGS over all neurons at
    once (the fit before December 2026) shared one step and one curvature model between
    problems of different conditioning and stopped 1e-5 to 1e-7 (relative squared error)
    away from the optima that per-neuron runs reach to 1e-8 or better."""
    import torch
    from torch import nn

    from skstrf._design import DesignStatistics
    from skstrf._penalty import Penalty, QuadraticForm
    from skstrf._solvers import fit_lbfgs, ridge_weights
    from skstrf.kernels import VanillaKernel

    D, n, frames = 40, 12, 2000
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((frames, D)) @ np.diag(np.logspace(0, -2, D)) @ rng.standard_normal((D, D)) / np.sqrt(D)
    Z = (Z - Z.mean(0)) / Z.std(0)
    P = Z @ rng.standard_normal((D, n)) + rng.standard_normal((frames, n))
    P = (P - P.mean(0)) / P.std(0)
    Zt = np.concatenate([Z, np.ones((frames, 1))], 1)
    stats = DesignStatistics(torch.tensor(Zt.T @ Zt)[None], torch.tensor(Zt.T @ P)[None],
                             torch.tensor((P**2).sum(0))[None], torch.tensor([float(frames)]))
    penalty = Penalty(QuadraticForm((1, D, 1)), np.logspace(-5, 1, n))

    class Linear(nn.Module):  # what fit_lbfgs reads of a model
        def __init__(self):
            super().__init__()
            self.kernel = VanillaKernel(n, 1, D, 1)
            self.bias = nn.Parameter(torch.zeros(n))

        def standardized_weight(self):
            return self.kernel().reshape(n, -1)

    model = Linear()
    info = fit_lbfgs(model, stats, penalty)
    truth = ridge_weights(stats, None, penalty).T
    error = ((model.standardized_weight().detach().double() - truth) ** 2).sum(1) / (truth**2).sum(1)
    assert info["loss"] < info["start_loss"]
    assert np.all(error[4:].numpy() < 1e-7), error  # penalties from 3e-3 up


def _linear_responses(rng: np.random.Generator, strfs: np.ndarray, S: int, T: int, noise: float):
    """White-noise stimuli (S, T, F) and the responses (S, T, N) of linear cells with ``strfs``
    (N, F, L), zero before each stimulus, plus Gaussian noise of ``noise`` times their SD."""
    F, L = strfs.shape[1:]
    X = rng.standard_normal((S, T, F))
    padded = np.concatenate([np.zeros((S, L - 1, F)), X], axis=1)
    lagged = np.stack([padded[:, L - 1 - k:L - 1 - k + T] for k in range(L)], axis=-1)
    y = np.einsum("stfl,nfl->stn", lagged, strfs)
    return X, y + noise * y.std() * rng.standard_normal(y.shape)
