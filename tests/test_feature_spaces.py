"""Several feature spaces, each with its own penalty, and grids of smoothness: the penalty's
form chosen per neuron by cross-validation, falling back to plain ridge when it does not pay."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import skstrf._penalty
from skstrf import STRFRegressor
from skstrf._penalty import check_feature_spaces, space_candidates

L = 4


def _lagged(X, strf):
    """Causal response of stimuli X (S, T, F) to kernels strf (N, F, L), history the mean."""
    S, T, F = X.shape
    mean = X.reshape(-1, F).mean(0)
    padded = np.concatenate([np.broadcast_to(mean, (S, L - 1, F)), X], axis=1)
    return sum(np.einsum("stf,nf->stn", padded[:, L - 1 - k:L - 1 - k + T], strf[:, :, k]) for k in range(L))


def _three_spaces(seed=0, n_stimuli=12, n_times=200, n_neurons=4):
    """Spaces of 6 bands each: informative, weak (correlated with the first), pure noise on a
    100 times larger scale; 4 noisy repeats."""
    rng = np.random.default_rng(seed)
    spec = rng.standard_normal((n_stimuli, n_times, 6))
    spec = (spec + np.roll(spec, 1, axis=1)) / np.sqrt(2)  # some temporal correlation
    weak = 0.7 * spec + 0.7 * rng.standard_normal(spec.shape)
    noise = 100.0 * rng.standard_normal(spec.shape)
    X = np.concatenate([spec, weak, noise], axis=2)
    strf = np.zeros((n_neurons, 18, L))
    strf[:, :6] = rng.standard_normal((n_neurons, 6, L))
    strf[:, 6:12] = 0.15 * rng.standard_normal((n_neurons, 6, L))
    drive = _lagged(X, strf)
    y = drive[..., None] + 2.0 * drive.std() * rng.standard_normal(drive.shape + (4,))
    return X, y, strf


def test_feature_spaces_are_read_as_sizes_index_lists_or_names():
    np.testing.assert_array_equal(check_feature_spaces([2, 3], 5), [0, 0, 1, 1, 1])
    np.testing.assert_array_equal(check_feature_spaces([[0, 4], [1, 2, 3]], 5), [0, 1, 1, 1, 0])
    names = np.array(["a", "b", "c"])
    np.testing.assert_array_equal(check_feature_spaces({"x": ["c"], "y": ["a", "b"]}, 3, names), [1, 1, 0])
    assert check_feature_spaces(None, 5) is None
    for bad, message in [([2, 2], r"sum to the 5 bands of X; got \[2, 2\] \(sum 4\)"),
                         ([[0, 1], [1, 2, 3, 4]], r"band 1 is in spaces 0 and 1"),
                         ([[0, 1], [2, 3]], r"leaves bands \[4\] in no space"),
                         ([[0, 7]], r"band 7 of space 0 is not a band index of X \(0 to 4\)"),
                         ({"x": ["z"]}, r"names band 'z', but X's bands have no names"),
                         ("abc", r"feature_spaces must be the sizes")]:
        with pytest.raises(ValueError, match=message):
            check_feature_spaces(bad, 5)


def test_default_space_candidates_and_their_budget():
    two = space_candidates(2)
    assert two.shape == (11, 2) and np.allclose(two[:, 0], 1) and np.isclose(two[:, 1], 1).sum() == 1
    assert space_candidates(3).shape == (25, 3) and space_candidates(4).shape == (125, 4)
    many = space_candidates(5)
    assert many.shape == (125, 5) and np.allclose(many[0], 1)  # drawn, the shared one first
    np.testing.assert_array_equal(space_candidates(2, [0.5, 2.0]), [[1, 0.5], [1, 2.0]])
    with pytest.raises(ValueError, match=r"one column per feature space \(3\)"):
        space_candidates(3, [[1, 2]])


def test_a_noise_space_is_shrunk_and_the_fit_beats_one_shared_penalty():
    X, y, strf = _three_spaces()
    train, test = np.arange(9), np.arange(9, 12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        shared = STRFRegressor(n_lags=L).fit(X[train], y[train])
        banded = STRFRegressor(n_lags=L, feature_spaces=[6, 6, 6]).fit(X[train], y[train])
    assert banded.alpha_.shape == (4, 3)
    # the noise space's penalty is raised, its weights (in X's units times its spread) shrink
    assert (banded.alpha_[:, 2] > banded.alpha_[:, 0]).all()
    def noise_norm(est):
        return np.sqrt((est.contributions_[:, 12:] ** 2).sum(axis=(1, 2)))

    assert (noise_norm(banded) < noise_norm(shared) / 10).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gain = banded.score(X[test], y[test]) - shared.score(X[test], y[test])
    assert gain > 0


def test_banding_falls_back_to_one_penalty_when_it_does_not_pay(monkeypatch):
    # two spaces alike (both informative, same scale): no candidate beats the shared penalty
    # by more than its standard error, so the shared one is kept
    rng = np.random.default_rng(1)
    X = rng.standard_normal((12, 150, 8))
    strf = rng.standard_normal((3, 8, L))
    drive = _lagged(X, strf)
    y = drive[..., None] + drive.std() * rng.standard_normal(drive.shape + (4,))
    est = STRFRegressor(n_lags=L, feature_spaces=[4, 4]).fit(X, y)
    np.testing.assert_allclose(est.alpha_[:, 0], est.alpha_[:, 1])  # one penalty for both spaces
    plain = STRFRegressor(n_lags=L).fit(X, y)
    # The shared penalty is plain ridge in each space's units: each band's scale is floored at
    # the median band's of its space (4 bands), not of all 8, so the bands between the two
    # medians are standardised a little differently (the weights move by 5e-4 here) ...
    np.testing.assert_allclose(est.strfs_, plain.strfs_, rtol=2e-3, atol=1e-9)
    # ... and without the floor (each band's own standard deviation in both) it is the same fit
    monkeypatch.setattr(skstrf._penalty, "X_SCALE_FLOOR", 0.0)
    banded = STRFRegressor(n_lags=L, feature_spaces=[4, 4]).fit(X, y)
    np.testing.assert_allclose(banded.strfs_, STRFRegressor(n_lags=L).fit(X, y).strfs_, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("params", [dict(kernel="separable"), dict(kernel="parametric", max_epochs=3, random_state=0),
                                    dict(solver="gradient", max_epochs=3, random_state=0)])
def test_every_kernel_and_solver_takes_the_spaces_penalties(params):
    X, y, _ = _three_spaces(n_stimuli=8, n_times=120)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = STRFRegressor(n_lags=L, feature_spaces=[6, 6, 6], **params).fit(X, y)
    assert est.alpha_.shape == (4, 3) and np.isfinite(est.strfs_).all()
    # the gradient-trained models are penalised with each neuron's chosen form
    assert len(est.net_.penalty.forms) >= 1


def test_a_smoothness_grid_is_chosen_per_neuron():
    # smooth truth along the bands at low SNR: some smoothness is chosen; every choice is a
    # grid value, and the chosen shares are reported
    rng = np.random.default_rng(2)
    X = rng.standard_normal((10, 150, 10))
    f = np.arange(10)
    strf = np.exp(-0.5 * ((f[None, :, None] - 4.5) / 2.5) ** 2) * np.array([1.0, 0.6, 0.2, 0.0])[None, None, :]
    strf = np.repeat(strf, 3, axis=0)
    drive = _lagged(X, strf)
    y = drive[..., None] + 4.0 * drive.std() * rng.standard_normal(drive.shape + (4,))
    est = STRFRegressor(n_lags=L, smooth_freq=[0.0, 0.5, 0.9]).fit(X, y)
    assert set(np.unique(est.smooth_freq_)) <= {0.0, 0.5, 0.9}
    assert (est.smooth_freq_ > 0).any()
    assert est.cv_scores_.shape == (3, 13, 3)  # forms x penalties x neurons
    assert np.all(est.smooth_lag_ == 0.0)


def test_several_forms_need_a_way_to_choose():
    X, y, _ = _three_spaces(n_stimuli=6, n_times=80)
    with pytest.raises(ValueError, match=r"choosing among 25 penalty forms .* needs cross-validation folds"):
        STRFRegressor(n_lags=L, feature_spaces=[6, 6, 6], cv=None, validation_fraction=None).fit(X, y)
