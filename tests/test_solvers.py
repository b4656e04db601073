"""Tests of the closed-form solvers against direct numpy computations."""

import threading
import warnings

import numpy as np
import pytest
import torch

from skstrf import _solvers as solvers
from skstrf.kernels import separable_factors
from skstrf._penalty import QuadraticForm
from skstrf._design import DesignStatistics, design_statistics, standardized_design
from skstrf._threads import limit_threads, task_workers_set


def _problem(seed=0, S=5, T=40, F=4, L=3, N=3, separable=False, noise=0.3):
    rng = np.random.default_rng(seed)
    X = torch.tensor(rng.standard_normal((S, T, F)))
    if separable:
        W = np.einsum("nf,nl->nfl", rng.standard_normal((N, F)), rng.standard_normal((N, L)))
    else:
        W = rng.standard_normal((N, F, L))
    from skstrf._design import lagged_design
    Z = lagged_design(X, L).numpy()
    P = np.einsum("stfl,nfl->stn", Z, W) + 0.5 + noise * rng.standard_normal((S, T, N))
    mask = torch.ones(S, T, dtype=torch.float64)
    zeros, ones = torch.zeros(F, dtype=torch.float64), torch.ones(F, dtype=torch.float64)
    stats = design_statistics(X, torch.tensor(P), mask, L, zeros, ones,
                              torch.zeros(N, dtype=torch.float64), torch.ones(N, dtype=torch.float64))
    Zd = standardized_design(X, L, zeros, ones, mask).numpy()  # (S, T, D+1) with a ones column
    return stats, Zd, P, W


def _numpy_ridge(Z, P, alpha):
    """argmin ||P - Z w - b||^2 / n + alpha ||w||^2 with an unpenalised intercept."""
    Z = Z[..., :-1].reshape(-1, Z.shape[-1] - 1)
    P = P.reshape(-1, P.shape[-1])
    n = len(Z)
    Zc, Pc = Z - Z.mean(0), P - P.mean(0)
    w = np.linalg.solve(Zc.T @ Zc / n + alpha * np.eye(Z.shape[1]), Zc.T @ Pc / n)
    return w, P.mean(0) - Z.mean(0) @ w


@pytest.mark.parametrize("alpha", [0.0, 0.01, 1.0])
def test_ridge_path_matches_direct_solve(alpha):
    stats, Z, P, _ = _problem()
    m = solvers.centred(stats)
    w = solvers.ridge_path(m, torch.tensor([alpha]))[0].numpy()
    w_ref, b_ref = _numpy_ridge(Z, P, alpha)
    np.testing.assert_allclose(w, w_ref, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(m.intercept(torch.tensor(w)).numpy(), b_ref, rtol=1e-6, atol=1e-9)


def test_per_neuron_penalties_match_separate_solves():
    stats, Z, P, _ = _problem(N=3)
    alphas = torch.tensor([[0.0, 0.5, 3.0]])
    w = solvers.ridge_path(solvers.centred(stats), alphas)[0].numpy()
    for n, a in enumerate([0.0, 0.5, 3.0]):
        np.testing.assert_allclose(w[:, n], _numpy_ridge(Z, P, a)[0][:, n], rtol=1e-6, atol=1e-9)


def test_held_out_correlation_from_statistics_equals_pearson():
    stats, Z, P, _ = _problem(seed=1)
    rng = np.random.default_rng(2)
    w = rng.standard_normal((2, Z.shape[-1] - 1, P.shape[-1]))
    b = rng.standard_normal((2, P.shape[-1]))
    got = solvers.held_out_correlation(solvers.prediction_sums(torch.tensor(w), torch.tensor(b), stats))
    Zf = Z[..., :-1].reshape(-1, Z.shape[-1] - 1)
    Pf = P.reshape(-1, P.shape[-1])
    for a in range(2):
        pred = Zf @ w[a] + b[a]
        for n in range(P.shape[-1]):
            assert got[a, n] == pytest.approx(np.corrcoef(pred[:, n], Pf[:, n])[0, 1], rel=1e-8)


def test_solve_ridge_chooses_the_best_validation_penalty():
    stats, _, _, _ = _problem(seed=3, S=6, T=30, F=6, L=4, noise=3.0)
    train = DesignStatistics(stats.gram[:4], stats.cross[:4], stats.sq[:4], stats.count[:4])
    valid = DesignStatistics(stats.gram[4:], stats.cross[4:], stats.sq[4:], stats.count[4:])
    grid = torch.logspace(-3, 2, 6, dtype=torch.float64)
    solution = solvers.solve_ridge(train, valid, grid, form=QuadraticForm((1, 6, 4)))
    best = grid.numpy()[np.argmax(solution.scores, axis=0)]
    np.testing.assert_array_equal(solution.penalty.alpha, best)
    # each penalty's validation score is the correlation of its fit to train on valid
    m = solvers.centred(train)
    path = solvers.ridge_path(m, grid)
    expected = solvers.held_out_correlation(solvers.prediction_sums(path, m.intercept(path), valid))
    np.testing.assert_allclose(solution.scores, expected, rtol=1e-12)
    # and the weights are refitted on both with the chosen penalties
    both = solvers.centred(train.concat(valid))
    refit = solvers.ridge_path(both, torch.as_tensor(best)[None])[0]
    torch.testing.assert_close(solution.weight, refit)


def test_als_recovers_a_separable_weight_and_never_increases_the_loss():
    stats, Z, P, W = _problem(seed=4, F=6, L=5, N=3, separable=True, noise=0.01)
    m = solvers.centred(stats)
    rng = np.random.default_rng(5)
    init = torch.tensor(rng.standard_normal((3, 6, 5)))
    fitted = solvers.fit_als(m, init, torch.zeros(3, dtype=torch.float64), 6, 5, n_iter=50).numpy()
    np.testing.assert_allclose(fitted, W, rtol=1e-2, atol=1e-2)
    # ALS equals the best rank-1 fit: no worse than the rank-1 SVD of the ridge solution
    ridge = solvers.ridge_path(m, torch.zeros(1, dtype=torch.float64))[0].T.reshape(3, 6, 5)
    u, s, vh = torch.linalg.svd(ridge)
    svd1 = (u[..., :1] * s[..., None, :1]) @ vh[..., :1, :]

    def loss(w):
        w = torch.as_tensor(w).reshape(3, -1).T
        return ((w * (m.gram @ w)).sum(0) - 2 * (w * m.cross).sum(0)).sum().item()

    assert loss(fitted) <= loss(svd1) + 1e-9


def test_als_rank_two():
    stats, _, _, _ = _problem(seed=6, F=5, L=4, N=2, noise=0.01)
    m = solvers.centred(stats)
    init = solvers.ridge_path(m, torch.zeros(1, dtype=torch.float64))[0].T.reshape(2, 5, 4)
    w2 = solvers.fit_als(m, init, torch.zeros(2, dtype=torch.float64), 5, 4, rank=2)
    s = torch.linalg.svdvals(w2)
    assert torch.all(s[:, 2:] < 1e-8 * s[:, :1])


def _penalised_loss(m, w, alphas):
    """``w' G w / n - 2 w' c / n + alpha |w|^2`` of weights (B, F, L), problem b fitting neuron b."""
    flat = w.reshape(w.shape[0], -1)
    gram, cross = m.gram / m.count, (m.cross / m.count).T[:w.shape[0]]
    return ((flat @ gram) * flat).sum(1) - 2 * (flat * cross).sum(1) + alphas * (flat * flat).sum(1)


def test_an_als_problem_stops_on_its_own():
    # Each problem stops at its own convergence: batched with a slower one it gives the
    # weights it gives alone (the whole batch used to sweep until its slowest problem had
    # converged, 1e-6 away), and those are within the tolerance of running it to the end.
    stats, _, _, _ = _problem(seed=7, F=6, L=5, N=2, noise=0.5)
    m = solvers.centred(stats)
    alphas = torch.full((2,), 1e-3, dtype=torch.float64)
    init = solvers.ridge_path(m, alphas[:1])[0].T.reshape(2, 6, 5)
    both = solvers.fit_als(m, init, alphas, 6, 5, rank=2)
    alone = solvers.fit_als(m, init[:1], alphas[:1], 6, 5, rank=2, neurons=[0])
    torch.testing.assert_close(both[:1], alone, rtol=1e-12, atol=0)
    torch.testing.assert_close(solvers.fit_als(m, init, alphas, 6, 5, rank=2, chunk=1), both, rtol=1e-12, atol=0)
    for rank, fitted in ((1, solvers.fit_als(m, init, alphas, 6, 5)), (2, both)):
        converged = solvers.fit_als(m, init, alphas, 6, 5, rank=rank, n_iter=5000, tol=1e-13)
        # 1e-6 per sweep: 8e-5 and 3e-4 from the end where ALS contracts slowly
        distance = (fitted - converged).flatten(1).norm(dim=1) / converged.flatten(1).norm(dim=1)
        assert bool((distance < 1e-3).all())


@pytest.mark.parametrize("cache_bytes", [1, 2**30])  # a row of the free factor per block; one block
def test_projected_gram_equals_the_direct_product(cache_bytes, monkeypatch):
    monkeypatch.setattr(solvers, "ALS_CACHE_BYTES", cache_bytes)
    rng = np.random.default_rng(8)
    F, L, B, rank = 5, 4, 3, 2
    A = torch.tensor(rng.standard_normal((50, F * L)))
    gram = (A.T @ A).reshape(F, L, F, L)
    time, freq = torch.tensor(rng.standard_normal((B, rank, L))), torch.tensor(rng.standard_normal((B, rank, F)))
    k = torch.arange(F * rank)
    upper = k[:, None] <= k[None, :]
    expected = torch.einsum("brl,flgk,bsk->bfrgs", time, gram, time).reshape(B, F * rank, F * rank)
    actual = solvers._project_gram(gram, time)
    torch.testing.assert_close(actual[:, upper], expected[:, upper], rtol=1e-12, atol=1e-12)
    # the lag factors' half-step reads the Gram in the order (lag, band, lag, band)
    grams = solvers._als_grams(solvers.CentredStatistics(gram.reshape(F * L, F * L), None, None, None, 1), F, L)
    k = torch.arange(L * rank)
    upper = k[:, None] <= k[None, :]
    expected = torch.einsum("brf,flgk,bsg->blrks", freq, gram, freq).reshape(B, L * rank, L * rank)
    torch.testing.assert_close(solvers._project_gram(grams[1], freq)[:, upper], expected[:, upper],
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("identity", [True, False])
def test_half_step_returns_its_penalised_loss(identity):
    # The loss that the loss criterion reads costs nothing: -b'x at the half-step's solution
    stats, _, _, _ = _problem(seed=9, F=4, L=3, N=3)
    m = solvers.centred(stats)
    form = (QuadraticForm((1, 4, 3)) if identity
            else QuadraticForm((1, 4, 3), diagonal=np.linspace(0.5, 2.0, 12)))
    rng = np.random.default_rng(9)
    time = torch.tensor(rng.standard_normal((3, 2, 3)))
    alphas = torch.tensor([1e-3, 1e-1, 1.0], dtype=torch.float64)
    freq, loss = solvers._separable_half_step(m, form, time, alphas, 4, 3, True, torch.arange(3))
    w = torch.einsum("brf,brl->bfl", freq, time).reshape(3, -1)
    penalty = (w * (w * form.diagonal if not identity else w)).sum(1)
    direct = ((w @ m.gram) * w).sum(1) / m.count - 2 * (w * m.cross.T).sum(1) / m.count + alphas * penalty
    torch.testing.assert_close(loss, direct, rtol=1e-9, atol=1e-12)


def test_a_higher_rank_starts_where_the_lower_rank_ended():
    # Rank r + 1 starts from rank r's factors and the next component of what they leave of
    # the start: after one sweep its penalised loss is already no higher than rank r's
    # (the first half-step can keep rank r's fit), so the candidates are nested.
    stats, _, _, _ = _problem(seed=10, F=6, L=5, N=3, noise=1.0)
    m = solvers.centred(stats)
    alphas = torch.full((3,), 1e-2, dtype=torch.float64)
    init = solvers.ridge_path(m, alphas[:1])[0].T.reshape(3, 6, 5)
    one = solvers.als_factors(m, separable_factors(init, 1), alphas, 6, 5)
    start = solvers._next_rank_start(*one, init, 2)
    torch.testing.assert_close(start[0][:, :1], one[0])
    two = solvers.als_factors(m, start, alphas, 6, 5, n_iter=1)
    loss_one = _penalised_loss(m, torch.einsum("brf,brl->bfl", *one), alphas)
    loss_two = _penalised_loss(m, torch.einsum("brf,brl->bfl", *two), alphas)
    assert bool((loss_two <= loss_one + 1e-12).all())


def test_als_candidates_side_by_side_and_with_the_loss_criterion(monkeypatch):
    # the folds' fits side by side give the folds' fits one after the other, and the loss
    # criterion of the candidates (ALS_SCORE_LOSS_TOL) moves no score by more than 1e-4
    monkeypatch.setattr(solvers, "THREADED_EIGH_MIN", 0)
    stats, _, _, _ = _problem(seed=11, S=6, F=5, L=4, N=4, noise=1.0)
    folds = [(np.array([0, 1, 2, 3]), np.array([4, 5])), (np.array([2, 3, 4, 5]), np.array([0, 1])),
             (np.array([0, 1, 4, 5]), np.array([2, 3]))]
    evaluations = [(solvers.centred(stats, torch.as_tensor(a)), stats, torch.as_tensor(b)) for a, b in folds]
    alphas = torch.tensor([[1e-3] * 4, [1e-1] * 4], dtype=torch.float64)
    form, neurons = QuadraticForm((1, 5, 4)), np.arange(4)
    with limit_threads(1), task_workers_set(1):
        scores, fold_scores = solvers._als_candidates(evaluations, form, alphas, (1, 2, 3), 5, 4, neurons)
    with limit_threads(2), task_workers_set(2):
        both = solvers._als_candidates(evaluations, form, alphas, (1, 2, 3), 5, 4, neurons)
    np.testing.assert_allclose(both[0], scores, rtol=1e-12)
    np.testing.assert_allclose(both[1], fold_scores, rtol=1e-12)
    monkeypatch.setattr(solvers, "ALS_SCORE_LOSS_TOL", None)
    weights_only, _ = solvers._als_candidates(evaluations, form, alphas, (1, 2, 3), 5, 4, neurons)
    assert scores.shape == (3, 2, 4) and np.isfinite(scores).all()
    np.testing.assert_allclose(scores, weights_only, rtol=0, atol=1e-4)


def test_als_grid_with_a_singular_penalty_chooses_among_the_others():
    # A duplicated band makes the design singular: alpha = 0 has no unique solution, so it
    # is left out of the ALS choice instead of failing the whole grid.
    import warnings

    from skstrf import STRFRegressor
    from skstrf.datasets import make_strf_dataset

    d = make_strf_dataset(n_stimuli=8, n_times=100, n_freqs=5, n_neurons=3, n_repeats=4, n_lags=4,
                          random_state=0)
    X = np.concatenate([d.X, d.X[..., :1]], axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = STRFRegressor(kernel="separable", n_lags=4, alpha=[0.0, 1.0], cv=None).fit(X, d.y)
    np.testing.assert_array_equal(est.alpha_, [1.0, 1.0, 1.0])
    assert np.isfinite(est.strfs_).all()
    with pytest.raises(ValueError, match=r"alpha=\[0.0\] is not finite.*lagged design is singular"):
        STRFRegressor(kernel="separable", n_lags=4, alpha=[0.0], cv=None).fit(X, d.y)


def _reference_cross_validated_path(stats, folds, alphas):
    """The direct path: every fold's weights formed, then their held-out prediction sums."""
    total = None
    for train, test in folds:
        m = solvers.centred(stats, torch.as_tensor(np.asarray(train)))
        path = solvers.ridge_path(m, alphas)
        sums = solvers.prediction_sums(path, m.intercept(path), stats,
                                       torch.as_tensor(np.asarray(test)))
        total = sums if total is None else total + sums
    return solvers.held_out_correlation(total)


@pytest.mark.parametrize("threaded_min", [0, solvers.THREADED_EIGH_MIN])  # threads / one by one
@pytest.mark.parametrize("T", [40, 6])  # 6 frames: every held-out Gram is singular
# 7 penalties x 4 neurons >= 12 weights: held-out sums in the reduction's basis; 2 x 4 < 12:
# from the weights
@pytest.mark.parametrize("n_alphas", [7, 2])
def test_cross_validated_scores_equal_the_direct_path(T, threaded_min, n_alphas, monkeypatch):
    # (the direct path below forms every fold's weights; the tridiagonal and the
    # eigendecomposition paths are compared in test_ridge_path_by_both_reductions)
    monkeypatch.setattr(solvers, "THREADED_EIGH_MIN", threaded_min)
    stats, _, _, _ = _problem(S=6, T=T, N=4)
    folds = [(np.array([0, 1, 2, 3]), np.array([4, 5])), (np.array([2, 3, 4, 5]), np.array([0, 1])),
             (np.array([0, 1, 4, 5]), np.array([2])), (np.array([0, 5]), np.array([1, 3]))]
    alphas = torch.logspace(-4, 2, n_alphas, dtype=torch.float64)
    expected = _reference_cross_validated_path(stats, folds, alphas)
    basis_made = []  # the held-out statistics rotated into the path's basis
    original = solvers.RidgePath.rotate
    monkeypatch.setattr(solvers.RidgePath, "rotate", lambda self, C: basis_made.append(1) or original(self, C))
    with limit_threads(2), task_workers_set(2):  # the folds' decompositions side by side
        actual, _, per_fold = solvers.cross_validated_scores(stats, folds, alphas)
    assert bool(basis_made) == (n_alphas * 4 >= 12)
    assert per_fold.shape == (4, n_alphas, 4)
    assert actual.shape == (n_alphas, 4) and np.isfinite(expected).all()
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-10)
    # the refit's decomposition alongside the folds' gives the same scores and ridge_path
    m = solvers.centred(stats)
    with limit_threads(2), task_workers_set(2):
        scores, (path,), _ = solvers.cross_validated_scores(stats, folds, alphas, also=(m,))
    np.testing.assert_array_equal(scores, actual)
    torch.testing.assert_close(solvers.ridge_path(m, alphas, path), solvers.ridge_path(m, alphas),
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("one_by_one_min", [0, 10**9])
def test_reductions_one_by_one_give_the_side_by_side_scores(one_by_one_min, monkeypatch):
    """With the reductions made one after the other on all threads (large matrices on a
    fit with several threads), a group of folds at a time, the scores, fold scores and the
    refit's path are those of the folds wholly side by side; with one thread the
    reductions are never taken out of the tasks."""
    monkeypatch.setattr(solvers, "THREADED_EIGH_MIN", 0)
    monkeypatch.setattr(solvers, "ONE_BY_ONE_MIN", one_by_one_min)
    stats, _, _, _ = _problem(S=7, T=60, N=4)
    folds = [(np.setdiff1d(np.arange(7), [k]), np.array([k])) for k in range(5)]  # odd: a partial group
    alphas = torch.logspace(-4, 2, 5, dtype=torch.float64)
    expected = _reference_cross_validated_path(stats, folds, alphas)
    m = solvers.centred(stats)
    made_here = []
    original = solvers.RidgePath.__init__

    def spy(self, *args, **kwargs):
        made_here.append(threading.current_thread() is threading.main_thread())
        original(self, *args, **kwargs)

    monkeypatch.setattr(solvers.RidgePath, "__init__", spy)
    with limit_threads(2), task_workers_set(2):
        scores, (path,), per_fold = solvers.cross_validated_scores(stats, folds, alphas, also=(m,))
    assert made_here == [one_by_one_min == 0] * 6  # five folds and the refit
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-10)
    assert per_fold.shape == (5, 5, 4)
    torch.testing.assert_close(solvers.ridge_path(m, alphas, path), solvers.ridge_path(m, alphas),
                               rtol=0, atol=1e-12)
    made_here.clear()
    with limit_threads(1), task_workers_set(2):  # a busy machine: one thread for the fit
        again, _, _ = solvers.cross_validated_scores(stats, folds, alphas)
    assert not any(made_here)
    np.testing.assert_allclose(again, expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("threaded_min", [0, solvers.THREADED_EIGH_MIN])
def test_eigh_many_equals_eigh_in_threads(threaded_min, monkeypatch):
    monkeypatch.setattr(solvers, "THREADED_EIGH_MIN", threaded_min)
    g = torch.Generator().manual_seed(0)
    mats = [(lambda a: a @ a.T)(torch.randn(30, 30, generator=g, dtype=torch.float64)) for _ in range(5)]
    with limit_threads(2):
        before = torch.get_num_threads()
        results = solvers.eigh_many(mats)
        assert torch.get_num_threads() == before  # restored after the single-threaded pool
    for a, (evals, evecs) in zip(mats, results):
        torch.testing.assert_close(evals, torch.linalg.eigh(a)[0])
        torch.testing.assert_close(evecs @ torch.diag(evals) @ evecs.T, a)


@pytest.mark.parametrize("alphas", [[1e-4, 0.1, 10.0], [[0.1, 1.0, 0.1, 10.0]]])
def test_ridge_path_by_both_reductions_equals_the_direct_solve(alphas):
    """The tridiagonal reduction (CPU, float64) and the eigendecomposition (elsewhere, or a
    singular solve) both give the solution of (G / n + alpha I) w = B / n."""
    stats, _, _, _ = _problem(S=5, T=40, N=4)
    m = solvers.centred(stats)
    alphas = torch.tensor(alphas, dtype=torch.float64)
    tridiagonal = solvers.RidgePath(m)
    assert tridiagonal.tridiagonal is not None and tridiagonal.eigen is None
    eigen = solvers.RidgePath(solvers.CentredStatistics(m.gram.float(), m.cross.float(), m.z_mean.float(),
                                                        m.p_mean.float(), m.count.float()))
    assert eigen.eigen is not None  # float32: the eigendecomposition path
    D = m.gram.shape[0]
    full = alphas if alphas.ndim == 2 else alphas[:, None].expand(-1, 4)
    direct = torch.stack([torch.stack([torch.linalg.solve(m.gram / m.count + a[n] * torch.eye(D, dtype=torch.float64),
                                                          m.cross[:, n] / m.count) for n in range(4)], dim=1)
                          for a in full])
    torch.testing.assert_close(tridiagonal.weights(alphas), direct, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(eigen.weights(alphas).double(), direct, rtol=1e-3, atol=1e-5)


def test_a_singular_tridiagonal_solve_falls_back_to_the_eigendecomposition():
    # fewer frames than weights and alpha = 0: the tridiagonal system is singular
    stats, _, _, _ = _problem(S=1, T=6, N=2)
    path = solvers.RidgePath(solvers.centred(stats))
    weights = path.weights(torch.zeros(1, dtype=torch.float64))
    assert path.eigen is not None  # fell back
    assert weights.shape[0] == 1
    # coefficients in the basis: None on the singular solve, then the eigenbasis's
    path = solvers.RidgePath(solvers.centred(stats))
    assert path.coefficients(torch.zeros(1, dtype=torch.float64)) is None
    assert path.eigen is not None and path.tridiagonal is None
    alphas = torch.tensor([0.1, 1.0], dtype=torch.float64)
    in_basis = torch.einsum("de,ean->adn", path.basis(), path.coefficients(alphas))
    torch.testing.assert_close(in_basis, solvers.RidgePath(solvers.centred(stats)).weights(alphas),
                               rtol=1e-8, atol=1e-10)


def test_coefficients_in_the_tridiagonal_basis_are_the_weights():
    stats, _, _, _ = _problem(S=5, T=40, N=4)
    path = solvers.RidgePath(solvers.centred(stats))
    alphas = torch.tensor([1e-3, 0.1, 10.0], dtype=torch.float64)
    basis = path.basis()
    torch.testing.assert_close(basis.T @ basis, torch.eye(basis.shape[0], dtype=torch.float64), rtol=0, atol=1e-12)
    C = torch.as_tensor(np.random.default_rng(1).standard_normal((basis.shape[0], 3)))
    torch.testing.assert_close(path.rotate(C), basis.T @ C, rtol=0, atol=1e-12)  # the basis never formed
    torch.testing.assert_close(torch.einsum("de,ean->adn", basis, path.coefficients(alphas)), path.weights(alphas),
                               rtol=1e-10, atol=1e-12)


def _centred_case(n_weights, n_frames, n_neurons=5, seed=0):
    """Centred statistics of a design with strongly correlated columns."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n_frames + 2, n_weights))
    Z = Z[2:] + 0.9 * Z[1:-1] + 0.8 * Z[:-2]  # correlated frames
    Z = Z + 0.7 * np.roll(Z, 1, axis=1)  # and correlated columns
    Z -= Z.mean(0)
    P = Z[:, :3] @ rng.standard_normal((3, n_neurons)) + rng.standard_normal((n_frames, n_neurons))
    P -= P.mean(0)
    f64 = lambda a: torch.as_tensor(a, dtype=torch.float64)  # noqa: E731
    return solvers.CentredStatistics(f64(Z.T @ Z), f64(Z.T @ P), f64(np.zeros(n_weights)),
                                     f64(np.zeros(n_neurons)), f64(float(n_frames)))


@pytest.mark.parametrize("n_frames", [2000, 60])  # well determined; fewer frames than weights (singular)
def test_mixed_precision_path_gives_float64_weights(n_frames):
    """Float32 reduction + float64 refinement: the float64 path's weights, to 1e-8 relative,
    for every penalty of a grid down to 1e-6 of the mean eigenvalue (on a singular Gram)."""
    m = _centred_case(120, n_frames)
    alphas = torch.as_tensor(np.logspace(-6, 2, 9) * float(torch.trace(m.gram / m.count)) / 120)
    reference = solvers.RidgePath(m).weights(alphas)
    path = solvers.RidgePath(m, mixed=True)
    assert path.mixed is not None and path.mixed[0].dtype == np.float32
    got = path.weights(alphas)
    assert got.dtype == torch.float64
    scale = reference.abs().amax(dim=1, keepdim=True)
    assert float(((got - reference).abs() / scale).max()) < 1e-8
    # per-neuron penalties (a different alpha per column) too
    per_neuron = alphas[[2, 5]][:, None].expand(2, 5).clone()
    per_neuron[:, 0] *= 10.0
    torch.testing.assert_close(path.weights(per_neuron), solvers.RidgePath(m).weights(per_neuron),
                               rtol=1e-8, atol=1e-8 * float(scale.max()))


def test_mixed_precision_falls_back_to_float64_when_refinement_does_not_converge(monkeypatch):
    """A column refinement cannot finish is solved from a float64 reduction, made then."""
    m = _centred_case(80, 1000)
    alphas = torch.as_tensor([1e-3, 1.0])
    reference = solvers.RidgePath(m).weights(alphas)
    monkeypatch.setattr(solvers, "MAX_REFINEMENTS", 0)  # the float32 solve alone: not converged
    path = solvers.RidgePath(m, mixed=True)
    got = path.weights(alphas)
    assert path.tridiagonal is not None  # the float64 reduction was made
    torch.testing.assert_close(got, reference, rtol=1e-10, atol=1e-12)


def test_mixed_precision_gives_up_a_slowly_contracting_column(monkeypatch):
    """A column whose corrections shrink by less than MAX_CONTRACTION per step is handed to
    the float64 reduction at once (after two steps, not MAX_REFINEMENTS), and the weights
    are float64's."""
    m = _centred_case(120, 60)  # fewer frames than weights: a singular Gram, slow contraction
    alphas = torch.as_tensor([1e-5 * float(torch.trace(m.gram / m.count)) / 120])  # about 0.16 per step
    reference = solvers.RidgePath(m).weights(alphas)
    monkeypatch.setattr(solvers, "MAX_CONTRACTION", 1e-30)  # every column contracts too slowly
    steps = []
    original = solvers._tridiagonal_weights
    monkeypatch.setattr(solvers, "_tridiagonal_weights", lambda *a: steps.append(1) or original(*a))
    path = solvers.RidgePath(m, mixed=True)
    got = path.weights(alphas)
    assert path.tridiagonal is not None  # the float64 reduction was made
    assert len(steps) == 1 + 2 + 1  # the float32 solve, two refinement steps, the float64 solve
    torch.testing.assert_close(got, reference, rtol=1e-10, atol=1e-12)


def test_mixed_precision_stops_at_the_estimated_error(monkeypatch):
    """Refinement stops when the error estimated from the contraction, not the last
    correction itself, is below the tolerance: here after fewer steps than a rule on the
    correction alone needs, with the float64 path's weights to the tolerance."""
    m = _centred_case(120, 60)  # fewer frames than weights: a singular Gram, slow contraction
    alphas = torch.as_tensor([1e-5 * float(torch.trace(m.gram / m.count)) / 120])  # about 0.16 per step
    reference = solvers.RidgePath(m).weights(alphas)
    sizes = []
    original = solvers._tridiagonal_weights

    def spy(reduction, rhs, a):
        out = original(reduction, rhs, a)
        if rhs.ndim == 3:  # a refinement step: its correction's size
            sizes.append(float(np.abs(out).max()))
        return out

    monkeypatch.setattr(solvers, "_tridiagonal_weights", spy)
    path = solvers.RidgePath(m, mixed=True)
    got = path.weights(alphas)
    assert path.tridiagonal is None  # no float64 reduction
    assert len(sizes) > 6  # more steps than the six a fixed budget allowed before
    scale = reference.abs().amax(dim=1)
    assert float(((got - reference).abs().amax(dim=1) / scale).max()) < 2 * solvers.REFINEMENT_TOLERANCE
    # the last correction was above the tolerance: the estimate, not the correction, stopped it
    assert sizes[-1] / float(scale.max()) > solvers.REFINEMENT_TOLERANCE


def test_cross_validation_of_a_wide_design_uses_mixed_precision(monkeypatch):
    """Folds and the refit of MIXED_PRECISION_MIN weights or more reduce in float32; the
    scores equal the float64 folds' scores and the refit's weights float64's."""
    stats = _problem(seed=1, S=6, T=300, F=12, L=10, N=3)[0]  # 120 weights
    folds = [(np.setdiff1d(np.arange(6), [k]), np.array([k])) for k in range(3)]
    alphas = torch.as_tensor(np.logspace(-3, 2, 6))
    refit = solvers.centred(stats)
    exact, (exact_path,), _ = solvers.cross_validated_scores(stats, folds, alphas, also=(refit,))
    assert exact_path.mixed is None
    made = []
    original = solvers.RidgePath.__init__

    def spy(self, m, mixed=None, single=False):
        original(self, m, mixed, single)
        made.append(self.mixed is not None)

    monkeypatch.setattr(solvers.RidgePath, "__init__", spy)
    monkeypatch.setattr(solvers, "MIXED_PRECISION_MIN", 100)
    mixed, (path,), _ = solvers.cross_validated_scores(stats, folds, alphas, also=(refit,))
    assert made == [True] * 4  # three folds and the refit
    np.testing.assert_allclose(mixed, exact, rtol=1e-9, atol=1e-12)
    reference = exact_path.weights(alphas)
    scale = float(reference.abs().max())
    torch.testing.assert_close(path.weights(alphas), reference, rtol=1e-8, atol=1e-8 * scale)


def _smooth_problem(seed=0, S=6, T=300, F=16, L=16, N=6):
    """A design of F * L >= SINGLE_FOLDS_MIN weights from noise smoothed over frames and
    bands (correlated columns: an ill-conditioned Gram, as spectrograms give), responses
    of random STRFs plus noise."""
    from scipy.ndimage import uniform_filter

    from skstrf._design import lagged_design

    rng = np.random.default_rng(seed)
    X = torch.tensor(uniform_filter(rng.standard_normal((S, T, F)), size=(1, 7, 3)))
    W = rng.standard_normal((N, F, L))
    signal = np.einsum("stfl,nfl->stn", lagged_design(X, L).numpy(), W)
    P = signal + signal.std() * rng.standard_normal((S, T, N))
    zeros, ones = torch.zeros(F, dtype=torch.float64), torch.ones(F, dtype=torch.float64)
    return design_statistics(X, torch.tensor(P), torch.ones(S, T, dtype=torch.float64), L, zeros, ones,
                             torch.zeros(N, dtype=torch.float64), torch.ones(N, dtype=torch.float64))


def _three_folds(S=6):
    return [(np.setdiff1d(np.arange(S), held), held) for held in np.array_split(np.arange(S), 3)]


def test_float32_folds_score_within_a_fraction_of_their_tie_tolerance():
    """Folds reduced and scored in float32 (single=True) give pooled held-out correlations
    within a quarter of SINGLE_FOLDS_TOLERANCE of the float64 folds' (so that a choice
    treating differences below the tolerance as ties is float64's), and are float32's:
    not identical."""
    stats = _smooth_problem()
    alphas = torch.as_tensor(np.logspace(-4, 2, 13))
    assert solvers.single_folds(stats.gram, 13 * 100) and not solvers.single_folds(stats.gram, 13 * 6)
    exact, _, _ = solvers.cross_validated_scores(stats, _three_folds(), alphas)
    reductions = []
    single, _, _ = solvers.cross_validated_scores(stats, _three_folds(), alphas, single=True, reductions=reductions)
    error = np.abs(single - exact).max()
    assert 0 < error < solvers.SINGLE_FOLDS_TOLERANCE / 4
    assert len(reductions) == 3 and all(r[0][0].dtype == np.float32 and m is not None for r, m in reductions)


def test_near_ties_of_float32_folds_are_scored_in_float64(monkeypatch):
    """The check of float32 scores: the canaries (best two penalties closest; scores that
    vary most) are scored in float64 at every penalty; a flagged neuron's tied penalties get float64's scores
    (refined from the folds' float32 reductions, or from a float64 reduction where a fold
    has none, with kept or remade fold statistics), pooled and per fold; a float32 error
    beyond half the tolerance on a flagged neuron makes every score float64's."""
    stats = _smooth_problem(seed=1)
    folds = _three_folds()
    alphas = torch.as_tensor(np.logspace(-4, 2, 13))
    exact, _, exact_folds = solvers.cross_validated_scores(stats, folds, alphas)
    reductions = []
    single, _, single_folds = solvers.cross_validated_scores(stats, folds, alphas, single=True, reductions=reductions)
    assert np.abs(single - exact).max() > 1e-9  # what the check corrects is there
    top = np.sort(single, axis=0)[-2:]
    gap = top[1] - top[0]
    assert gap.min() > solvers.SINGLE_FOLDS_ERROR_MARGIN * np.abs(single - exact).max()  # no tie
    canaries = solvers._canaries(single)
    spread = single.max(axis=0) - single.min(axis=0)
    np.testing.assert_array_equal(canaries, np.unique([np.argmin(gap), np.argmax(spread)]))
    checked, checked_folds = solvers._checked_ties(stats, folds, alphas, single, single_folds, reductions, True, 0.0)
    np.testing.assert_allclose(checked[:, canaries], exact[:, canaries], rtol=0, atol=1e-9)
    np.testing.assert_allclose(checked_folds[..., canaries], exact_folds[..., canaries], rtol=0, atol=1e-8)
    np.testing.assert_array_equal(np.delete(checked, canaries, axis=1), np.delete(single, canaries, axis=1))
    monkeypatch.setattr(solvers, "SINGLE_FOLDS_TOLERANCE", 10.0)  # every neuron, every penalty a tie
    for kept in (reductions, [(None, None)] * len(folds), [(r, None) for r, _ in reductions]):
        checked, checked_folds = solvers._checked_ties(stats, folds, alphas, single, single_folds, kept, True, 0.5)
        np.testing.assert_allclose(checked, exact, rtol=0, atol=1e-9)
        np.testing.assert_allclose(checked_folds, exact_folds, rtol=0, atol=1e-8)
    np.testing.assert_array_equal(single, solvers.cross_validated_scores(stats, folds, alphas, single=True)[0])
    # a flagged neuron whose float32 scores are 0.9 off (a shift: its ties unchanged), more
    # than half the tolerance: every neuron in float64
    monkeypatch.setattr(solvers, "SINGLE_FOLDS_TOLERANCE", 1.0)
    other = np.setdiff1d(np.arange(single.shape[1]), canaries)[0]
    off = single.copy()
    off[:, other] += 0.9
    redone, redone_folds = solvers._checked_ties(stats, folds, alphas, off, single_folds, reductions, True, 0.0)
    np.testing.assert_array_equal(redone, exact)
    np.testing.assert_array_equal(redone_folds, exact_folds)


def test_near_ties_flags_neurons_as_choose_weighs_their_scores():
    """near_ties: two penalties within the tolerance of each other at a neuron's top, in
    the scores choose maximises (own, pooled, or the mean for a shared penalty)."""
    from skstrf._selection import near_ties, tied_penalties

    alphas = np.array([0.1, 1.0, 10.0])
    scores = np.array([[0.50, 0.30, np.nan],
                       [0.50 + 4e-6, 0.10, np.nan],
                       [0.20, 0.35, np.nan]])
    np.testing.assert_array_equal(near_ties(scores, alphas, tolerance=1e-5), [True, False, False])
    np.testing.assert_array_equal(near_ties(scores, alphas, tolerance=1e-7), [False, False, False])
    np.testing.assert_array_equal(near_ties(scores, alphas, tolerance=0.06), [True, True, False])
    # pooled halfway with the population's mean: neuron 0's own curve (0.50, 0.49) and
    # the mean (0.30, 0.31) blend to 0.40 and 0.40, a tie that its own scores do not have
    pool = np.array([[0.50, 0.10], [0.49, 0.13], [0.0, 0.0]])
    np.testing.assert_array_equal(near_ties(pool, alphas, tolerance=1e-5), [False, False])
    np.testing.assert_array_equal(near_ties(pool, alphas, pooling=0.5, tolerance=1e-5), [True, False])
    # one penalty for all: the mean over neurons, one flag for all
    shared = near_ties(scores[:, :2], alphas, per_neuron=False, tolerance=1e-5)
    np.testing.assert_array_equal(shared, [False, False])  # means 0.4, 0.300002, 0.275
    close = np.array([[0.4, 0.4], [0.4 + 1e-6, 0.4], [0.1, 0.1]])
    np.testing.assert_array_equal(near_ties(close, alphas, per_neuron=False, tolerance=1e-5), [True, True])
    assert not near_ties(scores[:1], alphas[:1], tolerance=1.0).any()  # one penalty: nothing to tie
    # a tolerance per penalty: neuron 1's 0.05 gap to 0.35 at 10.0 ties when that penalty's
    # tolerance is 0.2 and its best's 1e-5 (their mean 0.1), not with 1e-5 for both
    per_penalty = np.array([1e-5, 1e-5, 0.2])
    np.testing.assert_array_equal(near_ties(scores, alphas, tolerance=per_penalty), [True, True, False])
    tied = tied_penalties(scores, alphas, tolerance=per_penalty)
    np.testing.assert_array_equal(tied, [[True, True, False], [True, False, False], [False, True, False]])


@pytest.mark.parametrize("options", [{}, {"alpha_pooling": 0.0}, {"alpha_pooling": 1.0},
                                     {"alpha_per_neuron": False}])
def test_float32_folds_choose_what_float64_folds_choose(monkeypatch, options):
    """A fit of a design wide enough for float32 folds (single_folds) chooses each neuron's
    penalty from float32 folds (checked in float64) and refits in float64: the same
    penalties and the same STRFs as float64 folds, whatever the choice's pooling, with a
    silent neuron (its scores undefined) among the others."""
    from skstrf import STRFRegressor
    from skstrf.datasets import make_strf_dataset

    data = make_strf_dataset(n_stimuli=10, n_times=300, n_freqs=20, n_neurons=100, n_repeats=4, random_state=0)
    y = data.y.copy()
    y[:, :, 3] = 2.0  # a neuron that never varies
    made = []
    original = solvers.cross_validated_scores

    def spy(*args, **kwargs):
        made.append(kwargs.get("single", False))
        return original(*args, **kwargs)

    monkeypatch.setattr(solvers, "cross_validated_scores", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the silent neuron's warning
        single = STRFRegressor(n_lags=15, random_state=0, **options).fit(data.X, y)  # 300 + 13 x 100 columns
        assert made[0] is True
        monkeypatch.setattr(solvers, "SINGLE_FOLDS_MIN", 10**9)
        made.clear()
        double = STRFRegressor(n_lags=15, random_state=0, **options).fit(data.X, y)
    assert made == [False]
    np.testing.assert_array_equal(single.alpha_, double.alpha_)
    np.testing.assert_array_equal(single.strfs_, double.strfs_)
