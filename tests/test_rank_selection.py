"""The separable kernel's rank chosen per neuron by cross-validation (``rank="auto"`` or a grid)."""

import warnings

import numpy as np
import pytest

from skstrf import STRFRegressor

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


def test_a_rank_one_truth_gets_rank_one():
    X, y, _ = _separable_cells([1, 1, 1], seed=3)
    est = _fit(X, y, rank=[1, 2, 3])
    np.testing.assert_array_equal(est.rank_, [1, 1, 1])
    # the kernel holds rank 3, but the fitted model has rank-1 STRFs: bands + lags + intercept
    n_freqs, n_lags = est.strfs_.shape[1:]
    assert est.n_params_per_neuron_ == n_freqs + n_lags + 1


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
    assert STRFRegressor().rank == "auto"
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
