"""Tests of scorers, splitters, per-neuron cross-validation and parallel model selection."""


import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.model_selection import (
    GridSearchCV,
    GroupKFold,
    KFold,
    LeaveOneGroupOut,
    cross_validate,
)

from skstrf import STRFRegressor
from skstrf.metrics import cc, cc_norm, cc_norm_scorer, cc_scorer, make_neuron_scorer
from skstrf.model_selection import TrainValidTestSplit, cross_validate_neurons, neuron_scores

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def fitted(data):
    return STRFRegressor(n_lags=6).fit(data.X[:6], data.y[:6])


class CountingSTRF(STRFRegressor):
    """STRFRegressor counting its predict calls (in this process)."""

    n_predict = 0

    def predict(self, X):
        type(self).n_predict += 1
        return super().predict(X)


# ----------------------------------------------------------------------------- scorers
def test_cc_norm_scorer_is_the_estimator_score(data, fitted):
    X, y = data.X[6:], data.y[6:]
    assert_allclose(cc_norm_scorer(fitted, X, y), fitted.score(X, y))
    assert_allclose(cc_norm_scorer(fitted, X, y), cc_norm(y, fitted.predict(X)))
    assert_allclose(cc_scorer(fitted, X, y), cc(y, fitted.predict(X)))


def test_scorer_reads_the_layout_from_x(data):
    # One neuron over several stimuli: y (S, T), predictions (S, T). From the shapes alone
    # cc_norm would read them as 200 neurons of one recording; the scorer uses X's layout.
    y1 = data.y[:, :, 0].mean(axis=-1)  # (8, 200): a PSTH without a neuron axis
    est = STRFRegressor(n_lags=6).fit(data.X[:6], y1[:6])
    pred = est.predict(data.X[6:])
    assert pred.shape == (2, 200)
    expected = cc(y1[6:, :, None], pred[:, :, None])
    assert_allclose(cc_scorer(est, data.X[6:], y1[6:]), expected)
    # A continuous recording: X (T, F), y (T, N, R).
    est2 = STRFRegressor(n_lags=6, validation_fraction=None).fit(data.X[0], data.y[0])
    assert_allclose(cc_norm_scorer(est2, data.X[1], data.y[1]), est2.score(data.X[1], data.y[1]))


def test_neuron_scorer_returns_every_neuron(data, fitted):
    X, y = data.X[6:], data.y[6:]
    scores = make_neuron_scorer()(fitted, X, y)
    per_neuron = cc_norm(y, fitted.predict(X), multioutput="raw_values")
    assert list(scores) == ["cc_norm"] + [f"cc_norm_neuron_{i}" for i in range(4)]
    assert_allclose([scores[f"cc_norm_neuron_{i}"] for i in range(4)], per_neuron)
    assert_allclose(scores["cc_norm"], np.mean(per_neuron))
    with pytest.raises(ValueError, match="metric must be one of"):
        make_neuron_scorer("r2")


# --------------------------------------------------------------------------- splitters
def test_train_valid_test_split_is_the_seed_split():
    cv = TrainValidTestSplit(train=range(14), valid=range(14, 17), test=range(17, 20))
    (train, test), = list(cv.split(np.zeros((20, 3, 2))))
    assert_array_equal(train, np.arange(17))
    assert_array_equal(test, [17, 18, 19])
    assert cv.get_n_splits() == 1
    assert_allclose(cv.validation_fraction, 3 / 17)
    with pytest.raises(ValueError, match="disjoint"):
        list(TrainValidTestSplit([0, 1], [1], [2]).split())
    with pytest.raises(ValueError, match="refers to stimulus 19 but X has 10"):
        list(cv.split(np.zeros((10, 3, 2))))


def test_estimator_validates_on_exactly_the_valid_stimuli(data):
    # Non-contiguous validation stimuli are moved to the end of the training indices.
    cv = TrainValidTestSplit(train=[0, 1, 2, 4, 5], valid=[3, 6], test=[7])
    est = STRFRegressor(n_lags=6, validation_fraction=cv.validation_fraction, cv=None)
    res = cross_validate(est, data.X, data.y, cv=cv, return_estimator=True, return_indices=True)
    train = res["indices"]["train"][0]
    fitted = res["estimator"][0]
    assert_array_equal(train[fitted.valid_stimuli_], [3, 6])
    assert_array_equal(train[fitted.train_stimuli_], [0, 1, 2, 4, 5])
    bunch_cv = TrainValidTestSplit.from_bunch(data)
    assert_array_equal(next(bunch_cv.split(data.X))[1], data.test)


@pytest.mark.parametrize("splitter", [GroupKFold(n_splits=2), LeaveOneGroupOut()])
def test_group_splitters_keep_categories_together(data, splitter):
    groups = np.array([0, 0, 1, 1, 0, 1, 0, 1])  # e.g. speech vs. music stimuli
    res = cross_validate(STRFRegressor(n_lags=6), data.X, data.y, groups=groups, cv=splitter,
                         return_indices=True)
    for train, test, score in zip(res["indices"]["train"], res["indices"]["test"],
                                  res["test_score"]):
        assert np.unique(groups[test]).size == 1
        assert not set(groups[train]) & set(groups[test])
        manual = STRFRegressor(n_lags=6).fit(data.X[train], data.y[train])
        assert_allclose(score, manual.score(data.X[test], data.y[test]))


# ------------------------------------------------------------------ per-neuron results
def test_cross_validate_neurons_matches_manual_folds(data):
    CountingSTRF.n_predict = 0
    res = cross_validate_neurons(CountingSTRF(n_lags=6), data.X, data.y, cv=KFold(2),
                                 return_train_score=True)
    assert CountingSTRF.n_predict == 4  # once per fold for test, once for train
    assert res["test_cc_norm"].shape == (2, 4) and res["train_cc_norm"].shape == (2, 4)
    assert set(res) == {"fit_time", "score_time", "test_cc_norm", "train_cc_norm"}
    for k, (train, test) in enumerate(KFold(2).split(data.X)):
        est = STRFRegressor(n_lags=6).fit(data.X[train], data.y[train])
        expected = cc_norm(data.y[test], est.predict(data.X[test]), multioutput="raw_values")
        assert_allclose(res["test_cc_norm"][k], expected)


def test_neuron_scores_from_grid_search(data):
    search = GridSearchCV(STRFRegressor(n_lags=6), {"alpha": [1e-3, 10.0]}, cv=KFold(2),
                          scoring=make_neuron_scorer(), refit="cc_norm").fit(data.X, data.y)
    table = neuron_scores(search.cv_results_)
    assert table.shape == (2, 2, 4)  # candidates, splits, neurons
    assert_allclose(np.nanmean(table, axis=2), np.column_stack(
        [search.cv_results_[f"split{k}_test_cc_norm"] for k in range(2)]))
    assert_allclose(table[:, 1, 3], search.cv_results_["split1_test_cc_norm_neuron_3"])
    with pytest.raises(ValueError, match="make_neuron_scorer"):
        neuron_scores(search.cv_results_, metric="cc")


# ---------------------------------------------------------------------------- parallel
def test_loky_n_jobs_gives_the_serial_results(data):
    grid = {"kernel": ["vanilla", "separable"]}
    serial = GridSearchCV(STRFRegressor(n_lags=6), grid, cv=KFold(2)).fit(data.X, data.y)
    parallel = GridSearchCV(STRFRegressor(n_lags=6), grid, cv=KFold(2), n_jobs=2)
    parallel.fit(data.X, data.y)
    assert_allclose(parallel.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"])
    res = cross_validate(STRFRegressor(n_lags=6), data.X, data.y, cv=KFold(2), n_jobs=2,
                         return_estimator=True)
    for est, (train, _) in zip(res["estimator"], KFold(2).split(data.X)):
        # Fitted in a worker, which picked its own device; the parameter stays "auto".
        assert est.device == "auto" and est.device_ == ("cuda" if torch.cuda.is_available() else "cpu")
        local = STRFRegressor(n_lags=6).fit(data.X[train], data.y[train])
        assert_allclose(est.predict(data.X), local.predict(data.X), rtol=1e-6, atol=1e-9)


def test_dask_backend_gives_the_serial_results(data):
    pytest.importorskip("distributed", reason="the optional 'distributed' extra is not installed")
    import joblib
    from distributed import Client, LocalCluster, get_task_stream

    serial = cross_validate_neurons(STRFRegressor(n_lags=6), data.X, data.y, cv=KFold(2))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        with joblib.parallel_config(backend="dask"), get_task_stream(client) as stream:
            distributed = cross_validate_neurons(STRFRegressor(n_lags=6), data.X, data.y,
                                                 cv=KFold(2), n_jobs=2)
    assert len(stream.data) >= 2  # the folds ran as tasks on the cluster's workers
    assert_allclose(distributed["test_cc_norm"], serial["test_cc_norm"])


# ------------------------------------------------------------ one continuous recording
def _recording(n_times=240, n_freqs=3, n_neurons=2, n_lags=4, seed=0):
    """A continuous recording of a known linear STRF, responses with 4 noisy repeats."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_times, n_freqs))
    strfs = rng.normal(size=(n_neurons, n_freqs, n_lags))
    Z = np.stack([np.roll(X, k, axis=0) for k in range(n_lags)], axis=-1)
    for k in range(n_lags):
        Z[:k, :, k] = 0.0
    drive = np.einsum("tfk,nfk->tn", Z, strfs)
    y = drive[..., None] + 0.3 * rng.normal(size=(n_times, n_neurons, 4))
    return X, y


@pytest.mark.parametrize("n_samples, n_splits, gap", [(10, 3, 0), (10, 3, 1), (103, 5, 4),
                                                      (700, 5, 19)])
def test_contiguous_blocks_cover_in_order_with_gaps(n_samples, n_splits, gap):
    from skstrf.model_selection import ContiguousBlocks

    cv = ContiguousBlocks(n_splits=n_splits, gap=gap)
    X = np.zeros((n_samples, 2))
    folds = list(cv.split(X))
    assert len(folds) == cv.get_n_splits(X) == n_splits
    tests = [test for _, test in folds]
    # Test blocks are contiguous, in order, cover every frame once, sizes as KFold's.
    assert_array_equal(np.concatenate(tests), np.arange(n_samples))
    assert all(np.all(np.diff(t) == 1) for t in tests)
    assert [t.size for t in tests] == [t.size for _, t in KFold(n_splits).split(X)]
    for train, test in folds:
        # Training = everything at least `gap` frames away from the test block, in order.
        distance = np.minimum(np.abs(np.arange(n_samples) - test[0]),
                              np.abs(np.arange(n_samples) - test[-1]))
        outside = (np.arange(n_samples) < test[0]) | (np.arange(n_samples) > test[-1])
        assert_array_equal(train, np.flatnonzero(outside & (distance > gap)))
    if gap == 0:
        for (train, test), (k_train, k_test) in zip(folds, KFold(n_splits).split(X)):
            assert_array_equal(train, k_train)
            assert_array_equal(test, k_test)


def test_contiguous_blocks_errors():
    from skstrf.model_selection import ContiguousBlocks

    with pytest.raises(ValueError, match="n_splits must be an integer of at least 2"):
        ContiguousBlocks(n_splits=1)
    with pytest.raises(ValueError, match="gap must be a non-negative integer"):
        ContiguousBlocks(gap=-1)
    with pytest.raises(ValueError, match="cannot cut 3 frames into n_splits=5"):
        list(ContiguousBlocks(5).split(np.zeros((3, 2))))
    with pytest.raises(ValueError, match="gap=4 leaves no training frame"):
        list(ContiguousBlocks(3, gap=4).split(np.zeros((9, 2))))


def test_contiguous_blocks_in_grid_search_and_cross_val_predict():
    from sklearn.model_selection import cross_val_predict

    from skstrf.model_selection import ContiguousBlocks

    X, y = _recording()
    cv = ContiguousBlocks(n_splits=4, gap=3)
    est = STRFRegressor(n_lags=4, solver="ridge", validation_fraction=None)
    search = GridSearchCV(est, {"alpha": [1e-3, 1e3]}, cv=cv).fit(X, y)
    # A linear STRF with little noise: the small penalty wins and predicts well.
    assert search.best_params_ == {"alpha": 1e-3}
    assert search.cv_results_["mean_test_score"][0] > 0.9
    pred = cross_val_predict(est.set_params(alpha=1e-3), X, y, cv=ContiguousBlocks(4))
    assert pred.shape == (240, 2)
    # Each block's first n_lags - 1 frames lack their history (predicted from X[test]); the
    # rest are predicted as well as by the true model.
    inside = np.ones(240, bool)
    for start in (0, 60, 120, 180):
        inside[start:start + 3] = False
    assert np.min(cc(y[inside], pred[inside], multioutput="raw_values")) > 0.95


@pytest.mark.parametrize(
    "splitter",
    ["KFold(5, shuffle=True, random_state=0)", "ShuffleSplit(5, random_state=0)",
     "RepeatedKFold(n_splits=3, n_repeats=2, random_state=0)", "LeaveOneOut()",
     "[(np.arange(0, 100, 2), np.arange(1, 100, 2))]"],
)
def test_check_cv_layout_warns_on_scattered_frames(splitter):
    from sklearn.model_selection import LeaveOneOut, RepeatedKFold, ShuffleSplit  # noqa: F401

    from skstrf.model_selection import check_cv_layout

    cv = eval(splitter)
    with pytest.warns(UserWarning, match=r"ContiguousBlocks\(n_splits=5, gap=n_lags - 1\)"):
        checked = check_cv_layout(cv, np.zeros((100, 2)))
    assert hasattr(checked, "split")


@pytest.mark.parametrize(
    "splitter, X_shape",
    [("5", (100, 2)), ("None", (100, 2)), ("KFold(4)", (100, 2)),
     ("ContiguousBlocks(5, gap=3)", (100, 2)), ("TimeSeriesSplit(3)", (100, 2)),
     ("KFold(5, shuffle=True, random_state=0)", (10, 100, 2))],
)
def test_check_cv_layout_is_silent_on_blocks_and_stimuli(splitter, X_shape):
    import warnings

    from sklearn.model_selection import TimeSeriesSplit  # noqa: F401

    from skstrf.model_selection import ContiguousBlocks, check_cv_layout  # noqa: F401

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        checked = check_cv_layout(eval(splitter), np.zeros(X_shape))
    assert checked.get_n_splits(np.zeros(X_shape)) >= 3


def test_cross_validate_neurons_warns_on_shuffled_frames():
    X, y = _recording(n_times=120)
    est = STRFRegressor(n_lags=4, solver="ridge", alpha=1.0, validation_fraction=None)
    with pytest.warns(UserWarning, match="continuous recording"):
        res = cross_validate_neurons(est, X, y, cv=KFold(3, shuffle=True, random_state=0))
    assert res["test_cc_norm"].shape == (3, 2)


# ------------------------------------------------------------- one recording, one block rule (issues 23, 27)
@pytest.mark.parametrize("X_shape", [(40, 5), (1, 40, 5)], ids=["2-D", "one stimulus"])
def test_train_valid_test_split_refuses_one_recording(X_shape):
    """A fixed split of stimuli given one recording would split its frames (test = frame 3)."""
    cv = TrainValidTestSplit(train=[0, 1], valid=[2], test=[3])
    with pytest.raises(ValueError, match=r"one continuous recording.*splits stimuli.*stimulus layout "
                       r"\(n_blocks, n_times, n_freqs\).*ContiguousBlocks"):
        list(cv.split(np.zeros(X_shape)))
    # the stimulus layout is split as before
    train, test = next(cv.split(np.zeros((4,) + X_shape[-2:])))
    assert_array_equal(train, [0, 1, 2])
    assert_array_equal(test, [3])


def test_train_valid_test_split_refuses_one_recording_before_any_fit(monkeypatch):
    from sklearn.model_selection import cross_validate

    monkeypatch.setattr(STRFRegressor, "fit", lambda *a, **k: pytest.fail("fitted"))
    X, y = _recording(n_times=120)
    cv = TrainValidTestSplit(train=range(80), valid=range(80, 100), test=range(100, 120))
    with pytest.raises(ValueError, match="one continuous recording"):
        cross_validate(STRFRegressor(n_lags=4), X, y, cv=cv, error_score="raise")


def test_contiguous_blocks_follow_the_one_block_rule():
    """6 frames in 4 blocks: 2, 2, 1, 1 (KFold's sizes), the rule of skstrf._layout.block_edges."""
    from skstrf._layout import block_edges
    from skstrf.model_selection import ContiguousBlocks

    sizes = [test.size for _, test in ContiguousBlocks(n_splits=4).split(np.zeros((6, 2)))]
    assert sizes == [2, 2, 1, 1]
    for n_samples, n_splits in [(6, 4), (103, 5), (999, 7)]:
        tests = [t for _, t in ContiguousBlocks(n_splits).split(np.zeros((n_samples, 1)))]
        assert_array_equal([t[0] for t in tests] + [n_samples], block_edges(n_samples, n_splits))


def test_contiguous_blocks_name_a_recording_given_as_one_stimulus():
    from skstrf.model_selection import ContiguousBlocks

    with pytest.raises(ValueError, match=r"shape \(1, 40, 5\) holds one recording as a single stimulus.*X\[0\]"):
        list(ContiguousBlocks(4).split(np.zeros((1, 40, 5))))


def test_cross_validation_of_one_recording_given_as_one_stimulus_says_what_to_do():
    """One meaning of "one continuous recording": 3-D X with a single stimulus is one too;
    scikit-learn's own error ("n_splits=3 greater than the number of samples: n_samples=1")
    did not say what to do."""
    X, y = _recording(n_times=120)
    est = STRFRegressor(n_lags=4, solver="ridge", alpha=1.0, validation_fraction=None)
    with pytest.raises(ValueError, match=r"shape \(1, 120, 3\) holds one recording as a single stimulus"
                       r".*\(X\[0\], y\[0\]\) with skstrf.model_selection.ContiguousBlocks"):
        cross_validate_neurons(est, X[None], y[None], cv=KFold(3))
