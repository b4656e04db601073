"""Tests of STRFRegressor against ground truth: recovery, kernels, solvers, model selection."""


import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, KFold, cross_validate

from skstrf import STRFRegressor
from skstrf.datasets import make_strf_dataset
from skstrf.metrics import cc_norm


@pytest.fixture(scope="module")
def clean():
    """Linear-Gaussian data with a high SNR: the exact model of the vanilla kernel."""
    return make_strf_dataset(n_stimuli=12, n_times=300, n_freqs=12, n_neurons=6, n_repeats=10,
                             n_lags=8, nonlinearity="identity", noise="gaussian", snr=20.0,
                             random_state=0)


@pytest.fixture(scope="module")
def spiking():
    """Rectified Poisson data like NS1, smaller: one third of the cells separable."""
    return make_strf_dataset(n_stimuli=14, n_times=400, n_freqs=12, n_neurons=9, n_repeats=12,
                             n_lags=8, snr=(0.5, 1.0), random_state=1)


@pytest.mark.parametrize("solver", ["ridge", "gradient"])
def test_vanilla_recovers_the_true_strf(clean, solver, strf_corr):
    est = STRFRegressor(n_lags=8, solver=solver, lr=1e-2, max_epochs=150, patience=None,
                        random_state=0).fit(clean.X, clean.y)
    assert est.strfs_.shape == (6, 12, 8)
    corr = strf_corr(est.strfs_, clean.strfs)
    assert corr.min() > 0.95, corr
    np.testing.assert_allclose(est.intercept_, clean.intercepts, atol=0.1 * np.abs(clean.strfs).sum(axis=(1, 2)).max())


@pytest.mark.parametrize("kernel, solver", [("vanilla", "ridge"), ("vanilla", "gradient"),
                                            ("separable", "als"), ("separable", "gradient"),
                                            ("parametric", "gradient")])
def test_every_kernel_beats_chance_on_held_out_stimuli(spiking, kernel, solver):
    train, test = np.arange(11), np.arange(11, 14)
    est = STRFRegressor(kernel=kernel, solver=solver, n_lags=8, n_gaussians=4, max_epochs=40,
                        random_state=0)
    est.fit(spiking.X[train], spiking.y[train])
    scores = cc_norm(spiking.y[test], est.predict(spiking.X[test]), multioutput="raw_values")
    # chance: the same model scored against responses to other stimuli
    shuffled = cc_norm(spiking.y[test][::-1], est.predict(spiking.X[test]), multioutput="raw_values")
    assert np.nanmean(scores) > 0.5
    assert np.nanmean(scores) > np.nanmean(np.abs(shuffled)) + 0.3


@pytest.mark.parametrize("solver", ["als", "gradient"])
def test_separable_matches_vanilla_on_separable_cells(spiking, solver):
    train, test = np.arange(11), np.arange(11, 14)
    scores = {}
    for kernel, kernel_solver in (("vanilla", "ridge"), ("separable", solver)):
        est = STRFRegressor(kernel=kernel, solver=kernel_solver, init="random", n_lags=8,
                            max_epochs=60, random_state=0).fit(spiking.X[train], spiking.y[train])
        scores[kernel] = cc_norm(spiking.y[test], est.predict(spiking.X[test]), multioutput="raw_values")
    sep = spiking.separable
    assert sep.sum() >= 3
    gap = np.nanmean(scores["vanilla"][sep]) - np.nanmean(scores["separable"][sep])
    assert gap < 0.05, gap


def test_parameter_counts_match_the_seed():
    data = make_strf_dataset(n_stimuli=4, n_times=60, n_freqs=34, n_neurons=2, n_repeats=3,
                             random_state=0)
    expected = {"vanilla": 511, "separable": 50, "parametric": 41}  # the seed's 8 Gaussians
    for kernel, count in expected.items():
        est = STRFRegressor(kernel=kernel, solver="gradient", init="random", max_epochs=1, n_gaussians=8,
                            random_state=0).fit(data.X, data.y)
        assert est.n_params_per_neuron_ == count
    # the default of 24 Gaussians: 5 parameters each (two centres, two widths, an amplitude)
    est = STRFRegressor(kernel="parametric", solver="gradient", init="random", max_epochs=1,
                        random_state=0).fit(data.X, data.y)
    assert est.n_params_per_neuron_ == 24 * 5 + 1


def test_history_early_stopping_restores_the_best_epoch(spiking):
    est = STRFRegressor(solver="gradient", n_lags=8, lr=0.05, max_epochs=60, patience=3,
                        random_state=0).fit(spiking.X, spiking.y)
    history = est.history_
    scores = history[:, "valid_cc_norm"]
    assert len(history) < 60  # stopped early
    assert {"train_loss", "valid_loss", "valid_cc_norm", "dur"} <= set(history[-1])
    # the restored model is the best epoch's: its validation cc_norm equals the best recorded
    valid = est.valid_stimuli_
    pred = est.predict(spiking.X[valid])
    from skstrf.metrics import cc_norm
    got = np.mean(cc_norm(spiking.y[valid], pred, multioutput="raw_values"))
    assert got == pytest.approx(max(scores), abs=1e-4)


def test_validation_stimuli_are_the_last_ones(spiking):
    est = STRFRegressor(n_lags=8, validation_fraction=3 / 14, cv=None).fit(spiking.X, spiking.y)
    np.testing.assert_array_equal(est.valid_stimuli_, [11, 12, 13])
    np.testing.assert_array_equal(est.train_stimuli_, np.arange(11))
    assert est.alpha_.shape == (9,)
    assert est.solver_ == "ridge"


def test_changing_one_stimulus_leaves_predictions_on_others_unchanged(spiking):
    est = STRFRegressor(n_lags=8).fit(spiking.X, spiking.y)
    X = spiking.X[:3].copy()
    before = est.predict(X)
    X[1] = np.random.default_rng(0).standard_normal(X[1].shape)
    after = est.predict(X)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[2], after[2])
    assert not np.allclose(before[1], after[1])


def test_predict_layouts_and_padding():
    data = make_strf_dataset(n_stimuli=5, n_times=80, n_freqs=6, n_neurons=2, n_repeats=4,
                             n_lags=4, ragged=True, random_state=2)
    est = STRFRegressor(n_lags=4).fit(data.X, data.y)
    pred = est.predict(data.X)
    assert pred.shape == (5, 80, 2)
    mask = np.arange(80)[None] < data.lengths[:, None]
    assert np.isfinite(pred[mask]).all() and np.isnan(pred[~mask]).all()
    # a continuous recording predicts (n_times, n_neurons), one neuron without its axis
    assert est.predict(data.X[0, : data.lengths[0]]).shape == (data.lengths[0], 2)
    one = STRFRegressor(n_lags=4).fit(data.X, data.y[:, :, 0, 0])
    assert one.predict(data.X).shape == (5, 80)
    assert one.strfs_.shape == (1, 6, 4)


def test_ridge_predictions_match_the_formula(spiking):
    # the formula of the generator: zero before each stimulus (history="zero")
    est = STRFRegressor(n_lags=8, history="zero").fit(spiking.X, spiking.y)
    from skstrf.datasets._synthetic import _true_drive
    expected = _true_drive(spiking.X, est.strfs_, est.intercept_)
    np.testing.assert_allclose(est.predict(spiking.X), expected, rtol=1e-4, atol=1e-6)


def test_grid_search_over_kernels_ranks_sensibly(spiking):
    X, y = spiking.X[:12], spiking.y[:12]
    search = GridSearchCV(
        STRFRegressor(n_lags=8, max_epochs=15, random_state=0),
        {"kernel": ["vanilla", "separable", "parametric"], "n_lags": [1, 8]},
        cv=KFold(3),
    ).fit(X, y)
    results = search.cv_results_
    scores = dict(zip([(p["kernel"], p["n_lags"]) for p in results["params"]],
                      results["mean_test_score"]))
    # one frame of history cannot express the true 8-frame STRFs
    for kernel in ("vanilla", "separable", "parametric"):
        assert scores[(kernel, 8)] > scores[(kernel, 1)] + 0.1
    assert search.best_params_["n_lags"] == 8
    assert search.best_estimator_.strfs_.shape == (9, 12, 8)


def test_cross_validate_keeps_stimuli_whole(spiking):
    out = cross_validate(STRFRegressor(n_lags=8), spiking.X, spiking.y, cv=KFold(7),
                         return_estimator=True)
    assert out["test_score"].shape == (7,)
    assert np.all(out["test_score"] > 0.4)
    for est in out["estimator"]:
        assert est.n_features_in_ == 12 and est.strfs_.shape == (9, 12, 8)


def _blended_choice(scores: np.ndarray, grid: np.ndarray, pooling: float) -> np.ndarray:
    """Reference rule: each neuron maximises (1 - pooling) * own + pooling * mean score;
    ties go to the largest penalty."""
    blended = (1 - pooling) * scores + pooling * np.nanmean(scores, axis=1, keepdims=True)
    blended = np.where(np.isnan(blended), -np.inf, blended)
    flipped = blended[::-1]  # grid ascending: the last maximum is the largest penalty
    return grid[::-1][np.argmax(flipped, axis=0)]


@pytest.mark.parametrize("pooling", [0.0, 0.5, 1.0])
def test_alpha_pooling_blends_each_neurons_cv_curve_with_the_population(spiking, pooling):
    X, y = spiking.X[:10], spiking.y[:10]
    est = STRFRegressor(n_lags=8, alpha_pooling=pooling).fit(X, y)
    grid = np.logspace(-4, 2, 13)
    expected = _blended_choice(est.cv_scores_, grid, pooling)
    np.testing.assert_allclose(est.alpha_, expected)
    if pooling == 1.0:
        shared = STRFRegressor(n_lags=8, alpha_per_neuron=False).fit(X, y)
        np.testing.assert_allclose(est.alpha_, shared.alpha_)
        assert np.unique(est.alpha_).size == 1
    with pytest.raises(ValueError, match="alpha_pooling"):
        STRFRegressor(alpha_pooling=1.5).fit(X, y)


def test_cv_accepts_splitters_and_fold_lists_and_rejects_bad_folds(spiking):
    from sklearn.model_selection import KFold as _KFold

    X, y = spiking.X[:10], spiking.y[:10]
    by_int = STRFRegressor(n_lags=8, cv=5).fit(X, y)
    by_splitter = STRFRegressor(n_lags=8, cv=_KFold(5)).fit(X, y)
    by_list = STRFRegressor(n_lags=8, cv=list(_KFold(5).split(np.zeros((10, 1))))).fit(X, y)
    np.testing.assert_array_equal(by_splitter.alpha_, by_int.alpha_)
    np.testing.assert_array_equal(by_list.alpha_, by_int.alpha_)
    assert by_int.cv_scores_.shape == (13, y.shape[2]) and by_int.valid_stimuli_.size == 0
    with pytest.raises(ValueError, match=r"indices outside the 10 stimuli"):
        STRFRegressor(n_lags=8, cv=[(np.arange(8), np.array([8, 12]))]).fit(X, y)


def test_cv_leave_one_out_and_splitters_that_cannot_split_stimuli(spiking):
    from sklearn.model_selection import GroupKFold, LeaveOneOut

    X, y = spiking.X[:6], spiking.y[:6]
    # LeaveOneOut's number of folds needs the rows: one fold per stimulus, like KFold(6)
    loo = STRFRegressor(n_lags=8, cv=LeaveOneOut()).fit(X, y)
    np.testing.assert_allclose(loo.cv_scores_, STRFRegressor(n_lags=8, cv=6).fit(X, y).cv_scores_)
    # an int beyond the number of stimuli is cut down to it (documented): one stimulus per fold
    np.testing.assert_allclose(STRFRegressor(n_lags=8, cv=10).fit(X, y).cv_scores_, loo.cv_scores_)
    with pytest.raises(ValueError, match=r"cv=GroupKFold.* could not split the 6 stimuli .*'groups' "
                                         r"parameter should not be None.*needs fit\(X, y, groups=...\)"):
        STRFRegressor(n_lags=8, cv=GroupKFold(3)).fit(X, y)
    with pytest.raises(ValueError, match=r"could not split the 2 stimuli .*n_splits=5"):
        STRFRegressor(n_lags=8, cv=KFold(5)).fit(X[:2], y[:2])
    # one penalty: cv is not used, so a splitter that could not split is no error
    one = STRFRegressor(n_lags=8, alpha=0.3, cv=KFold(5)).fit(X[:2], y[:2])
    np.testing.assert_array_equal(one.strfs_, STRFRegressor(n_lags=8, alpha=0.3).fit(X[:2], y[:2]).strfs_)
    # a single recording is cut into as many blocks as cv has folds: LeaveOneOut cannot say
    with pytest.raises(ValueError, match=r"LeaveOneOut\(\) cannot tell its number of folds without the data.*"
                                         r"ContiguousBlocks"):
        STRFRegressor(n_lags=8, cv=LeaveOneOut()).fit(X[:1], y[:1])


def test_groups_reach_a_group_splitter_and_are_checked(spiking):
    import sklearn
    from sklearn.model_selection import GridSearchCV, GroupKFold, LeaveOneGroupOut

    X, y = spiking.X[:12], spiking.y[:12]
    groups = np.arange(12) % 4  # 4 sounds, 3 excerpts each, interleaved
    by_groups = STRFRegressor(n_lags=8, cv=GroupKFold(4)).fit(X, y, groups=groups)
    folds = list(GroupKFold(4).split(X, groups=groups))
    by_list = STRFRegressor(n_lags=8, cv=folds).fit(X, y)
    np.testing.assert_array_equal(by_groups.cv_scores_, by_list.cv_scores_)
    np.testing.assert_array_equal(by_groups.strfs_, by_list.strfs_)
    # every fold holds out whole (interleaved) groups, not contiguous stimuli as cv=4 does
    assert not np.allclose(by_groups.cv_scores_, STRFRegressor(n_lags=8, cv=4).fit(X, y).cv_scores_)
    # routed by scikit-learn's metadata routing through a search that splits by groups too
    with sklearn.config_context(enable_metadata_routing=True):
        est = STRFRegressor(n_lags=8, cv=LeaveOneGroupOut()).set_fit_request(groups=True)
        search = GridSearchCV(est, {"alpha_pooling": [0.0, 0.5]}, cv=GroupKFold(2)).fit(X, y, groups=groups)
    assert search.best_estimator_.cv_scores_.shape == (13, y.shape[2])
    with pytest.raises(ValueError, match=r"cv=5 cuts contiguous folds of stimuli; pass a group splitter"):
        STRFRegressor(n_lags=8, cv=5).fit(X, y, groups=groups)
    with pytest.raises(ValueError, match=r"cv=None chooses the penalty on validation stimuli"):
        STRFRegressor(n_lags=8, cv=None).fit(X, y, groups=groups)
    with pytest.raises(ValueError, match=r"groups has 5 labels, but X has 12 stimuli"):
        STRFRegressor(n_lags=8, cv=GroupKFold(2)).fit(X, y, groups=groups[:5])
    with pytest.raises(ValueError, match=r"groups must be 1-D"):
        STRFRegressor(n_lags=8, cv=GroupKFold(2)).fit(X, y, groups=groups[:, None])
    for X_one, y_one in ((X[0], y[0]), (X[:1], y[:1])):  # 2-D X, or a single stimulus
        with pytest.raises(ValueError, match=r"X is one continuous recording \(a single stimulus\)"):
            STRFRegressor(n_lags=8, cv=GroupKFold(2)).fit(X_one, y_one, groups=[0])
    with pytest.raises(ValueError, match=r"cv=\[.*is a list of folds, which takes no groups"):
        STRFRegressor(n_lags=8, cv=folds).fit(X, y, groups=groups)
    with pytest.raises(ValueError, match=r"labels must be comparable .*\['NoneType', 'int'\]"):
        STRFRegressor(n_lags=8, cv=GroupKFold(2)).fit(X, y, groups=[None, *range(11)])
    # stimuli held out for validation (gradient training) leave fewer groups: the message says so
    with pytest.raises(ValueError, match=r"could not split the 9 stimuli .*They hold 3 groups .*"
                                         r"validation_fraction"):
        STRFRegressor(n_lags=8, kernel="parametric", solver="gradient", validation_fraction=0.25,
                      cv=GroupKFold(4)).fit(X, y, groups=np.repeat(np.arange(4), 3))
    # with routing on, groups meant for an outer splitter only need no request (not routed)
    with sklearn.config_context(enable_metadata_routing=True):
        out = cross_validate(STRFRegressor(n_lags=8), X, y, cv=GroupKFold(2), params={"groups": groups})
    assert out["test_score"].shape == (2,)


@pytest.mark.parametrize("params", [{}, {"cv": None}, {"kernel": "separable"}, {"cv": 3, "alpha_per_neuron": False}])
def test_closed_form_fit_on_fold_groups_equals_per_stimulus_rows(monkeypatch, params):
    # a closed-form fit sums the statistics of the stimuli every fold treats alike as they
    # are computed; the per-stimulus rows give the same scores and STRFs
    from skstrf._plan import FitPlan

    data = make_strf_dataset(n_stimuli=7, n_times=80, n_freqs=5, n_neurons=3, n_repeats=3,
                             n_lags=4, random_state=0)
    grouped = STRFRegressor(n_lags=4, random_state=0, **params).fit(data.X, data.y)
    monkeypatch.setattr(FitPlan, "row_groups", lambda plan: (None, plan.folds))
    rows = STRFRegressor(n_lags=4, random_state=0, **params).fit(data.X, data.y)
    np.testing.assert_allclose(grouped.strfs_, rows.strfs_, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(grouped.alpha_, rows.alpha_)
    if hasattr(rows, "cv_scores_"):
        np.testing.assert_allclose(grouped.cv_scores_, rows.cv_scores_, rtol=0, atol=1e-10)
    assert grouped.history_[-1]["train_loss"] == pytest.approx(rows.history_[-1]["train_loss"], rel=1e-9)


def test_separable_kernel_takes_a_fraction_of_the_free_kernels_cross_validated_penalty(monkeypatch):
    # ALS refits at ALS_PENALTY_SCALE times the vanilla choice; alpha_ reports what ALS used
    # (rank 1, whose STRFs are checked below)
    from skstrf import _solvers as solvers

    data = make_strf_dataset(n_stimuli=8, n_times=90, n_freqs=5, n_neurons=3, n_repeats=3,
                             n_lags=4, random_state=1)
    vanilla = STRFRegressor(n_lags=4, random_state=0).fit(data.X, data.y)
    full = STRFRegressor(kernel="separable", n_lags=4, rank=1, random_state=0).fit(data.X, data.y)
    assert solvers.ALS_PENALTY_SCALE == 1.0
    np.testing.assert_array_equal(full.alpha_, vanilla.alpha_)
    monkeypatch.setattr(solvers, "ALS_PENALTY_SCALE", 0.5)
    half = STRFRegressor(kernel="separable", n_lags=4, rank=1, random_state=0).fit(data.X, data.y)
    np.testing.assert_allclose(half.alpha_, 0.5 * vanilla.alpha_, rtol=1e-12)
    np.testing.assert_array_equal(half.cv_scores_, vanilla.cv_scores_)
    assert np.abs(full.strfs_ - half.strfs_).max() > 1e-3 * np.abs(full.strfs_).max()
    for strf in half.strfs_:
        s = np.linalg.svd(strf, compute_uv=False)
        assert s[1] < 1e-6 * s[0]  # rank 1
    # a penalty given by the user (no choice) is used as it is
    given = STRFRegressor(kernel="separable", n_lags=4, alpha=0.3, cv=None).fit(data.X, data.y)
    np.testing.assert_array_equal(given.alpha_, 0.3)


def test_contributions_are_the_weights_times_each_bands_spread(spiking):
    est = STRFRegressor(n_lags=8).fit(spiking.X, spiking.y)
    sd = np.nanstd(spiking.X, axis=(0, 1))
    np.testing.assert_allclose(est.contributions_, est.strfs_ * sd[None, :, None], rtol=1e-12)
    # a band that hardly varies contributes nothing, whatever its weight
    X = spiking.X.copy()
    X[..., 0] = 5.0 + 1e-7 * np.random.default_rng(0).standard_normal(X.shape[:2])
    X[np.isnan(spiking.X)] = np.nan
    quiet = STRFRegressor(n_lags=8).fit(X, spiking.y)
    assert np.abs(quiet.contributions_[:, 0]).max() < 1e-3 * np.abs(quiet.contributions_).max()
