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
    from skstrf._solvers import centred, fit_lbfgs, ridge_weights
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
    info = fit_lbfgs(model, stats, penalty, tol=0.0)  # no stop before the cap
    truth = ridge_weights(stats, None, penalty).T
    error = ((model.standardized_weight().detach().double() - truth) ** 2).sum(1) / (truth**2).sum(1)
    assert info["loss"] < info["start_loss"]
    assert np.all(error[4:].numpy() < 1e-7), error  # penalties from 3e-3 up
    # the default stop (the loss's fall over 10 iterations below 3e-5) ends every run before
    # the cap (13-75 iterations here), at a mean loss within 1e-4 of the optimum's (in units of
    # each neuron's variance; 5e-5 here: the fall still to come is a few times the last window's)
    optimum = Linear()
    with torch.no_grad():
        optimum.kernel.weight.copy_(truth.reshape(optimum.kernel.weight.shape))
        optimum.bias.copy_(centred(stats).intercept(truth.T))
    best = fit_lbfgs(optimum, stats, penalty, max_iter=0)["start_loss"]
    stopped = fit_lbfgs(Linear(), stats, penalty)
    assert stopped["iterations"] < 500 and 0 <= stopped["loss"] - best < 1e-4, (stopped, best)


def _linear_responses(rng: np.random.Generator, strfs: np.ndarray, S: int, T: int, noise: float):
    """White-noise stimuli (S, T, F) and the responses (S, T, N) of linear cells with ``strfs``
    (N, F, L), zero before each stimulus, plus Gaussian noise of ``noise`` times their SD."""
    F, L = strfs.shape[1:]
    X = rng.standard_normal((S, T, F))
    padded = np.concatenate([np.zeros((S, L - 1, F)), X], axis=1)
    lagged = np.stack([padded[:, L - 1 - k:L - 1 - k + T] for k in range(L)], axis=-1)
    y = np.einsum("stfl,nfl->stn", lagged, strfs)
    return X, y + noise * y.std() * rng.standard_normal(y.shape)


def _planted_gaussians(n: int = 4, K: int = 4, F: int = 10, L: int = 8, frames: int = 3000):
    """Noise-free statistics of cells whose standardised STRFs are ``K`` Gaussians of small
    amplitude (0.015-0.03, the scale of standardised STRFs), on a design with correlated
    neighbouring columns; the true parametric kernel; and a model started near it (centres
    one bin and 0.7 lag off, wider in frequency, amplitudes halved)."""
    import torch
    from torch import nn

    from skstrf._design import DesignStatistics
    from skstrf.kernels import ParametricKernel

    rng = np.random.default_rng(0)
    g = torch.Generator().manual_seed(0)
    truth = ParametricKernel(n, 1, F, L, n_gaussians=K, generator=g).double()
    with torch.no_grad():
        for p, values in zip(truth.parameters(), (rng.uniform(2, 7, (n, 1, K)), rng.uniform(1, 5, (n, 1, K)),
                                                  rng.uniform(-2, -1, (n, 1, K)), rng.uniform(-2, -1, (n, 1, K)),
                                                  rng.choice([-1.0, 1.0], (n, 1, K)) * rng.uniform(0.015, 0.03, (n, 1, K)))):
            p.copy_(torch.tensor(values))
        w = truth().reshape(n, -1)
    Z = torch.tensor(rng.standard_normal((frames, F * L)) @ (np.eye(F * L) + 0.5 * np.eye(F * L, k=1)))
    Zt = torch.cat([Z, torch.ones(frames, 1, dtype=Z.dtype)], 1)
    P = Z @ w.T
    stats = DesignStatistics((Zt.T @ Zt)[None], (Zt.T @ P)[None], (P**2).sum(0)[None],
                             torch.tensor([float(frames)]))

    class Model(nn.Module):  # what fit_lbfgs reads of a model
        def __init__(self):
            super().__init__()
            self.kernel = ParametricKernel(n, 1, F, L, n_gaussians=K, generator=g)
            self.bias = nn.Parameter(torch.zeros(n))
            with torch.no_grad():
                for p, q in zip(self.kernel.parameters(), truth.parameters()):
                    p.copy_(q)
                self.kernel.centre_freq.add_(1.0)
                self.kernel.centre_lag.sub_(0.7)
                self.kernel.width_freq_raw.add_(0.5)
                self.kernel.amplitude.mul_(0.5)

        def standardized_weight(self):
            return self.kernel.coefficients().reshape(n, -1)

    return stats, w, Model


@pytest.mark.parametrize("window", [1, 10])
def test_scaled_lbfgs_reaches_planted_gaussians_where_unscaled_crawls(window):
    """Cells that are exactly a few Gaussians, no noise: the optimum is the truth (loss 0 up
    to a 1e-10 penalty). Each neuron's L-BFGS in its parameters scaled by the Gauss-Newton
    diagonal (the default) recovers every neuron's STRF to a relative squared error below
    1e-5 within 200 iterations, and its stop on the loss's relative change ends every run
    before the 2000-iteration cap at an STRF as close; unscaled, the centres' curvature (the
    amplitude squared) is ~1e-3 of the amplitudes' and 500 iterations leave errors above 1e-4."""
    from skstrf._penalty import Penalty, QuadraticForm
    from skstrf._solvers import fit_lbfgs

    stats, w, Model = _planted_gaussians()
    penalty = Penalty(QuadraticForm((1, 10, 8)), 1e-10)

    def error(model):
        return (((model.standardized_weight().detach().double() - w) ** 2).sum(1) / (w**2).sum(1)).numpy()

    scaled, unscaled, stopped = Model(), Model(), Model()
    fit_lbfgs(scaled, stats, penalty, max_iter=200, tol=0.0, window=window)
    fit_lbfgs(unscaled, stats, penalty, max_iter=500, tol=0.0, window=window, scaled=False)
    info = fit_lbfgs(stopped, stats, penalty, max_iter=2000, tol=1e-10, window=window)
    assert np.all(error(scaled) < 1e-5), error(scaled)
    assert np.all(error(unscaled) > 1e-4), error(unscaled)
    assert info["iterations"] < 2000 and np.all(error(stopped) < 1e-5), (info, error(stopped))
