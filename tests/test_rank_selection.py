"""The separable kernel's rank chosen per neuron by cross-validation (``rank="auto"`` or a grid)."""

import warnings

import numpy as np
import pytest

from skstrf import STRFRegressor
from skstrf._solvers import _choose_rank

F, L = 8, 6


def _separable_cells(ranks, seed=0, n_stimuli=12, n_times=400, noise=0.3):
    """White-noise stimuli and cells whose STRFs are sums of ``ranks[n]`` orthogonal
    band x lag products of comparable energy, plus Gaussian noise (one repeat)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_stimuli, n_times, F))
    strfs = []
    for r in ranks:
        u = np.linalg.qr(rng.standard_normal((F, r)))[0]
        v = np.linalg.qr(rng.standard_normal((L, r)))[0]
        strfs.append(u @ np.diag(np.linspace(1.0, 0.7, r)) @ v.T)
    strfs = np.stack(strfs)  # (N, F, L)
    # y[s, t, n] = sum_{f, l} strfs[n, f, l] X[s, t - l, f] (zero before each stimulus)
    padded = np.concatenate([np.zeros((n_stimuli, L - 1, F)), X], axis=1)
    lagged = np.stack([padded[:, L - 1 - lag:L - 1 - lag + n_times] for lag in range(L)], axis=-1)
    y = np.einsum("stfl,nfl->stn", lagged, strfs)
    y += noise * y.std() * rng.standard_normal(y.shape)
    return X, y, strfs


@pytest.fixture(scope="module")
def mixed():
    return _separable_cells([1, 2, 1, 2, 3])


def _fit(X, y, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return STRFRegressor(kernel="separable", n_lags=L, history="zero", **options).fit(X, y)


def test_auto_rank_recovers_each_neurons_true_rank(mixed):
    X, y, strfs = mixed
    est = _fit(X, y, rank="auto")
    np.testing.assert_array_equal(est.rank_, [1, 2, 1, 2, 3])
    assert est.rank_.dtype.kind == "i"
    # each neuron's STRF has the rank chosen for it
    s = np.linalg.svd(est.strfs_, compute_uv=False)
    for n, r in enumerate(est.rank_):
        assert np.all(s[n, r:] < 1e-6 * s[n, 0]), (n, s[n])
        assert s[n, r - 1] > 0.3 * s[n, 0], (n, s[n])


def test_auto_rank_predicts_as_well_as_the_best_fixed_rank(mixed):
    X, y, _ = mixed
    train, test = slice(0, 9), slice(9, None)
    auto = _fit(X[train], y[train], rank="auto")
    fixed = {r: _fit(X[train], y[train], rank=r) for r in (1, 3)}

    def score(est):  # Pearson correlation per neuron over the test frames
        p, t = est.predict(X[test]).reshape(-1, y.shape[-1]), y[test].reshape(-1, y.shape[-1])
        p, t = p - p.mean(0), t - t.mean(0)
        return (p * t).sum(0) / np.sqrt((p**2).sum(0) * (t**2).sum(0))

    best = np.maximum(score(fixed[1]), score(fixed[3]))
    assert np.all(score(auto) >= best - 0.01), (score(auto), best)
    # rank 1 alone loses on the rank-2 and rank-3 cells, the choice does not
    assert np.all(score(auto)[[1, 3, 4]] > score(fixed[1])[[1, 3, 4]] + 0.05)


def test_the_one_se_rule_keeps_a_rank_one_truth_at_rank_one():
    X, y, _ = _separable_cells([1, 1, 1], seed=3)
    est = _fit(X, y, rank=[1, 2, 3], rank_rule="one_se")
    np.testing.assert_array_equal(est.rank_, [1, 1, 1])
    # the kernel holds rank 3, but the fitted model has rank-1 STRFs: bands + lags + intercept
    n_freqs, n_lags = est.strfs_.shape[1:]
    assert est.n_params_per_neuron_ == n_freqs + n_lags + 1


def test_a_rank_too_many_costs_a_rank_one_truth_little():
    # the best score may give an exactly separable cell a second component fitted to noise
    # (here one cell of three); its STRF stays as close to the truth as rank 1's
    X, y, strfs = _separable_cells([1, 1, 1], seed=3)
    best = _fit(X, y, rank=[1, 2, 3])
    rank_one = _fit(X, y, rank=1)

    def match(est):  # correlation of each fitted STRF with the true one
        return np.array([np.corrcoef(est.strfs_[n].ravel(), strfs[n].ravel())[0, 1] for n in range(len(strfs))])

    assert np.all(best.rank_ <= 2), best.rank_
    assert np.all(match(best) >= match(rank_one) - 1e-3), (match(best), match(rank_one))


def test_auto_recovers_rank_four():
    # STRFs of 4 orthogonal products with singular values 1, 0.9, 0.8, 0.7: every component
    # carries at least a fifth of the energy, at a good SNR; "auto" reached rank 3 at most
    # before December 2026
    X, y, strfs = _separable_cells([4, 4], seed=1)
    assert np.all(np.linalg.matrix_rank(strfs, tol=1e-9) == 4)
    for rule in ("best", "one_se"):
        est = _fit(X, y, rank="auto", rank_rule=rule)
        np.testing.assert_array_equal(est.rank_, [4, 4])
        s = np.linalg.svd(est.strfs_, compute_uv=False)
        assert np.all(s[:, 3] > 0.5 * s[:, 0]), s


def _scores_of(gains, spread, n_folds=5, base=0.5):
    """Held-out scores of ranks 1 and 2 (one candidate penalty): per fold, rank 2 scores
    ``base + gains[n] + spread[n] * d[k]`` with deviations ``d`` of mean 0 and standard
    deviation 1, rank 1 ``base``; the pooled score is the mean over folds."""
    d = np.linspace(-1.0, 1.0, n_folds)
    d /= d.std(ddof=1)
    gains, spread = np.asarray(gains, dtype=float), np.asarray(spread, dtype=float)
    folds = np.empty((n_folds, 2, 1, gains.size))
    folds[:, 0, 0] = base
    folds[:, 1, 0] = base + gains + spread * d[:, None]
    return folds.mean(0), folds


def test_the_rules_on_known_scores():
    # neuron 0: rank 2 better by 0.01 with a fold-to-fold spread of 0.1 (standard error 0.045);
    # neuron 1: better by 0.01, spread 0.001 (standard error 0.0004); neuron 2: worse by 0.01
    scores, folds = _scores_of([0.01, 0.01, -0.01], [0.1, 0.001, 0.001])
    candidates = np.ones((1, 3))
    options = dict(per_neuron=True, pooling=0.0, fold_scores=folds)
    best, _ = _choose_rank(scores, candidates, (1, 2), rule="best", **options)
    one_se, _ = _choose_rank(scores, candidates, (1, 2), rule="one_se", **options)
    np.testing.assert_array_equal(best, [2, 2, 1])
    np.testing.assert_array_equal(one_se, [1, 2, 1])
    # without folds (validation stimuli) both rules take the better score
    alone, _ = _choose_rank(scores, candidates, (1, 2), per_neuron=True, pooling=0.0, rule="one_se")
    np.testing.assert_array_equal(alone, [2, 2, 1])
    with pytest.raises(ValueError, match=r"rank_rule must be one of \('best', 'one_se'\); got 'smallest'"):
        _choose_rank(scores, candidates, (1, 2), rule="smallest", **options)


@pytest.mark.parametrize("seed", range(5))
def test_the_best_rule_takes_the_best_held_out_score(seed):
    # what "best" promises: no candidate rank scores better than the chosen one (at each
    # rank's chosen penalty), ties to the lower rank; "one_se" never above it
    rng = np.random.default_rng(seed)
    R, A, N, K = 4, 3, 50, 5
    folds = rng.uniform(0.3, 0.6, (K, R, A, N)).round(2)  # rounded: ties happen
    scores = folds.mean(0)
    candidates = np.geomspace(0.1, 10.0, A)[:, None].repeat(N, axis=1)
    options = dict(per_neuron=True, pooling=0.0, fold_scores=folds)
    ranks = (1, 2, 3, 4)
    best, which = _choose_rank(scores, candidates, ranks, rule="best", **options)
    one_se, _ = _choose_rank(scores, candidates, ranks, rule="one_se", **options)
    # each rank's penalty is chosen alone (its best score, with pooling 0)
    own = scores.max(axis=1)  # (R, N)
    chosen = own[best - 1, np.arange(N)]
    np.testing.assert_array_equal(chosen, own.max(0))
    np.testing.assert_array_equal(best - 1, own.argmax(0))  # the first maximum: ties to the lower rank
    np.testing.assert_array_equal(scores[best - 1, which, np.arange(N)], chosen)
    assert np.all(own[one_se - 1, np.arange(N)] <= chosen)


def test_a_fixed_rank_is_every_neurons_rank(mixed):
    X, y, _ = mixed
    est = _fit(X, y, rank=2)
    np.testing.assert_array_equal(est.rank_, [2] * 5)


def test_rank_is_chosen_on_validation_stimuli_without_cv(mixed):
    X, y, _ = mixed
    est = _fit(X, y, rank=(1, 2, 3), cv=None)
    np.testing.assert_array_equal(est.rank_, [1, 2, 1, 2, 3])


def test_gradient_training_starts_from_the_chosen_ranks(mixed):
    X, y, _ = mixed
    est = _fit(X, y, rank="auto", solver="gradient", init="closed_form", max_epochs=1)
    np.testing.assert_array_equal(est.rank_, [1, 2, 1, 2, 3])


def test_a_bad_rank_rule_is_named():
    X, y, _ = _separable_cells([1], n_stimuli=4, n_times=50)
    with pytest.raises(ValueError, match=r"The 'rank_rule' parameter of STRFRegressor must be a str among "
                                         r"\{.*'one_se'.*\}. Got 'smallest'"):
        STRFRegressor(kernel="separable", n_lags=L, rank_rule="smallest").fit(X, y)


@pytest.mark.parametrize("rank, message", [
    ("high", r"The 'rank' parameter of STRFRegressor must be .* Got 'high'"),
    ([], r"rank must be a positive int, 'auto' or a non-empty 1-D sequence of positive ints; got \[\]"),
    ([1, 0], r"rank must be a positive int, 'auto' or a non-empty 1-D sequence of positive ints; got \[1, 0\]"),
    ([1.5, 2], r"rank must be .*; got \[1.5, 2\]"),
    ([[1, 2]], r"rank must be .*; got \[\[1, 2\]\]"),
    ([1, 7], r"rank=\[1, 7\] exceeds min\(n_freqs, n_lags\) = 6"),
])
def test_bad_ranks_are_named(rank, message):
    X, y, _ = _separable_cells([1], n_stimuli=4, n_times=50)
    with pytest.raises(ValueError, match=message):
        STRFRegressor(kernel="separable", n_lags=L, rank=rank).fit(X, y)


def test_a_shared_penalty_shares_the_rank(mixed):
    X, y, _ = mixed
    est = _fit(X, y, rank="auto", alpha_per_neuron=False)
    assert np.unique(est.rank_).size == 1 and np.unique(est.alpha_).size == 1


def test_the_separable_kernel_chooses_each_neurons_rank_by_default(mixed):
    X, y, _ = mixed
    assert STRFRegressor().rank == "auto" and STRFRegressor().rank_rule == "best"
    est = _fit(X, y)
    np.testing.assert_array_equal(est.rank_, [1, 2, 1, 2, 3])


def test_auto_with_nothing_to_choose_on_is_rank_one():
    # with cv=None and no validation stimuli there are neither folds nor held-out stimuli,
    # so "auto" (the default) is rank 1, where a grid is an error the user asked for (the
    # final fit of a fine-tuned model with cv=None chooses on the validated run's validation
    # stimuli: test_ln_refit)
    X, y, _ = _separable_cells([1, 2], n_stimuli=6, n_times=200)
    est = _fit(X, y, rank="auto", cv=None, alpha=1.0, nonlinearity="softplus", max_epochs=2,
               validation_fraction=None)
    np.testing.assert_array_equal(est.rank_, [1, 1])
    with pytest.raises(ValueError, match=r"choosing the separable kernel's rank among \[1, 2\] needs"):
        _fit(X, y, rank=[1, 2], cv=None, alpha=1.0, nonlinearity="softplus", max_epochs=2,
             validation_fraction=None)


@pytest.mark.parametrize("options", [
    dict(nonlinearity="softplus"),
    dict(solver="gradient", init="closed_form"),
    dict(lag_basis=4, nonlinearity="softplus"),
], ids=["LN", "gradient", "lag basis, LN"])
def test_training_keeps_each_neurons_chosen_rank(mixed, options):
    """Gradient training from the ALS start cannot give a neuron components beyond the rank
    chosen for it: each STRF keeps exactly ``rank_`` singular values (before, 30 LN epochs
    grew a rank-1 neuron's second singular value to 24 % of its first here)."""
    X, y, _ = mixed
    est = _fit(np.abs(X), np.abs(y), rank="auto", random_state=0, max_epochs=30, validation_fraction=None,
               **options)
    assert est.rank_.min() < est.rank_.max()  # the kernel holds components some neurons do not use
    s = np.linalg.svd(est.strfs_, compute_uv=False)
    for n, r in enumerate(est.rank_):
        assert s[n, r - 1] > 1e-3 * s[n, 0], (n, r, s[n])
        assert np.all(s[n, r:] <= 1e-6 * s[n, 0]), (n, r, s[n])
