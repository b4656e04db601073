"""Out-of-core fits, predictions and scores of dask arrays (skstrf._chunked) against in-memory ones."""

import subprocess
import sys
import warnings

import h5py
import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.model_selection import KFold

from skstrf import STRFRegressor
from skstrf._chunked import check_chunked, grouped_statistics, require_dask
from skstrf.datasets import load_dataset, save_dataset, save_stimuli
from skstrf._model import build_model, input_moments, module_statistics
from skstrf._plan import fold_groups
from skstrf._validation import check_X_y

da = pytest.importorskip("dask.array", reason="the optional dask extra is not installed")

RTOL = 1e-6  # the bar; predictions and scores are float32 model outputs, so they
# may differ at that level between processes (another BLAS blocking on a worker)


@pytest.fixture(scope="module")
def ragged(data):
    """The shared small dataset with two stimuli cut short (NaN end padding)."""
    X, y = data.X.copy(), data.y.copy()
    for s, length in ((2, 150), (5, 120)):
        X[s, length:] = np.nan
        y[s, length:] = np.nan
    return X, y


def _dask(a, per_chunk=1):
    return da.from_array(a, chunks=(per_chunk,) + (-1,) * (a.ndim - 1))


def assert_same_fit(dask_fit, memory_fit):
    """The fitted attributes of both fits agree (numbers to RTOL relative)."""
    for name in ("strfs_", "intercept_", "alpha_"):
        expected = getattr(memory_fit, name)
        assert_allclose(getattr(dask_fit, name), expected, rtol=RTOL, atol=RTOL * np.abs(expected).max())
    assert hasattr(dask_fit, "cv_scores_") == hasattr(memory_fit, "cv_scores_")
    if hasattr(memory_fit, "cv_scores_"):
        assert_allclose(dask_fit.cv_scores_, memory_fit.cv_scores_, rtol=RTOL)
        assert_array_equal(dask_fit.cv_alphas_, memory_fit.cv_alphas_)
    for name in ("n_features_in_", "n_neurons_", "y_layout_", "solver_", "n_params_per_neuron_"):
        assert getattr(dask_fit, name) == getattr(memory_fit, name), name
    assert_array_equal(dask_fit.train_stimuli_, memory_fit.train_stimuli_)
    assert_array_equal(dask_fit.valid_stimuli_, memory_fit.valid_stimuli_)
    assert_allclose(dask_fit.history_[:, "train_loss"], memory_fit.history_[:, "train_loss"], rtol=RTOL)


@pytest.mark.parametrize("params", [
    {},                                                    # ridge, penalty by 5-fold CV
    {"cv": KFold(4, shuffle=True, random_state=0)},        # a splitter
    {"alpha": 0.3},                                        # one penalty, no CV
    {"cv": None, "validation_fraction": None, "alpha": 0.3},
    {"alpha_per_neuron": False},
    {"kernel": "separable"},                               # ALS
    {"prefilter": "ic_adaptation"},                        # a fixed linear prefilter
], ids=["cv5", "kfold-splitter", "alpha", "no-cv", "shared-alpha", "als", "ic-adaptation"])
def test_dask_fit_equals_in_memory_fit(ragged, params):
    X, y = ragged
    memory = STRFRegressor(n_lags=6, **params).fit(X, y)
    # chunks of 1 and of 3 stimuli (the last chunk shorter)
    assert_same_fit(STRFRegressor(n_lags=6, **params).fit(_dask(X), _dask(y)), memory)
    assert_same_fit(STRFRegressor(n_lags=6, **params).fit(_dask(X, 3), _dask(y, 3)), memory)


def test_groups_reach_the_splitter_out_of_core(ragged):
    from sklearn.model_selection import GroupKFold

    X, y = ragged
    groups = np.arange(X.shape[0]) % 3
    memory = STRFRegressor(n_lags=6, cv=GroupKFold(3)).fit(X, y, groups=groups)
    assert_same_fit(STRFRegressor(n_lags=6, cv=GroupKFold(3)).fit(_dask(X, 3), _dask(y, 3), groups=groups),
                    memory)
    with pytest.raises(ValueError, match=r"groups has 2 labels, but X has"):
        STRFRegressor(n_lags=6, cv=GroupKFold(2)).fit(_dask(X), _dask(y), groups=groups[:2])


@pytest.mark.parametrize("min_tasks", [1, 2, 3])
def test_several_chunks_per_statistics_task_give_the_same_fit(ragged, monkeypatch, min_tasks):
    # few tasks for many chunks: each task sums up to SPLIT_EVERY chunks' statistics itself
    import skstrf._chunked

    X, y = ragged
    monkeypatch.setattr(skstrf._chunked, "MIN_TASKS", min_tasks)
    monkeypatch.setattr(skstrf._chunked, "_runs_in_process", lambda: False)  # as on a cluster
    memory = STRFRegressor(n_lags=6, cv=KFold(4, shuffle=True, random_state=0)).fit(X, y)
    fitted = STRFRegressor(n_lags=6, cv=KFold(4, shuffle=True, random_state=0)).fit(_dask(X), _dask(y))
    assert_same_fit(fitted, memory)


def test_predict_and_score_equal_in_memory(ragged):
    X, y = ragged
    est = STRFRegressor(n_lags=6, alpha=0.1).fit(X, y)
    pred = est.predict(_dask(X, 3))
    assert isinstance(pred, da.Array)
    assert pred.chunks == ((3, 3, 2), (X.shape[1],), (y.shape[2],))
    expected = est.predict(X)
    assert_allclose(pred.compute(), expected, rtol=RTOL, atol=RTOL * np.nanmax(np.abs(expected)))  # NaN as well
    assert_allclose(est.score(_dask(X, 3), _dask(y, 3)), est.score(X, y), rtol=RTOL)
    # in-memory y with dask X (and the reverse) are dask fits too
    assert_allclose(est.score(_dask(X), y), est.score(X, y), rtol=RTOL)


def test_layouts_one_neuron_psth_and_single_recording(ragged):
    X, y = ragged
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # padding frames: mean of nothing
        psth = np.nanmean(y, axis=3)
    for Xa, ya in ((X, psth[..., 0]),                    # one neuron: y (n_stimuli, n_times)
                   (X, psth),                            # PSTH: y (n_stimuli, n_times, n_neurons)
                   (X[0], y[0])):                        # one continuous recording (CV in time blocks)
        Xd = da.from_array(Xa, chunks=(50,) + (-1,) * (Xa.ndim - 1))  # frames chunked: rechunked
        yd = da.from_array(ya, chunks=(50,) + (-1,) * (ya.ndim - 1))
        memory = STRFRegressor(n_lags=6).fit(Xa, ya)
        dask_fit = STRFRegressor(n_lags=6).fit(Xd, yd)
        assert_same_fit(dask_fit, memory)
        pred = dask_fit.predict(Xd)
        assert pred.shape == memory.predict(Xa).shape
        assert_allclose(pred.compute(), memory.predict(Xa), rtol=RTOL, atol=RTOL * np.nanmax(np.abs(ya)))
        with warnings.catch_warnings(record=True) as expected_warnings:
            warnings.simplefilter("always")
            expected = memory.score(Xa, ya)
        with warnings.catch_warnings(record=True) as got_warnings:
            warnings.simplefilter("always")
            got = dask_fit.score(Xd, yd)
        assert_allclose(got, expected, rtol=RTOL)
        # without repeats the score falls back to cc with the same warning
        assert [str(w.message) for w in got_warnings] == [str(w.message) for w in expected_warnings]


def test_lazy_hdf5_to_dask_fit(ragged, tmp_path):
    X, y = ragged
    path = save_dataset(tmp_path / "data.h5", X, y)
    with load_dataset(path, lazy=True) as ds:
        assert ds.X.chunks[0] == (1,) * X.shape[0]
        assert_array_equal(ds.X.compute(), ds.load().X)  # NaN padding included
        assert_array_equal(ds.y.compute(), ds.load().y)
        assert_same_fit(STRFRegressor(n_lags=6).fit(ds.X, ds.y), STRFRegressor(n_lags=6).fit(X, y))


def test_lazy_arrays_of_a_rewritten_file_fail_clearly(ragged, tmp_path):
    # the dask graph is built from the header read at opening; a file rewritten meanwhile
    # with other shapes must give a clear error, not a broadcasting one or wrong data
    from skstrf.datasets import DatasetFormatError

    X, y = ragged
    path = save_dataset(tmp_path / "data.h5", X, y)
    with load_dataset(path, lazy=True) as ds:
        lazy_X, lazy_y = ds.X, ds.y
    longer = [np.nan_to_num(np.concatenate([a, a], axis=1)) for a in (X, y)]  # 400 valid frames
    save_dataset(path, *longer)
    with pytest.raises(DatasetFormatError, match=r"stimulus 0's X has shape \(400, 12\).*rewritten"):
        lazy_X[:1].compute()
    save_dataset(path, X, y[:, :, :2])  # fewer neurons
    with pytest.raises(DatasetFormatError, match=r"stimulus 0's y has shape .*trailing shape"):
        lazy_y[:1].compute()


def test_save_stimuli_writes_the_file_save_dataset_writes(ragged, tmp_path):
    X, y = ragged
    whole = save_dataset(tmp_path / "whole.h5", X, y, dt_ms=5.0, neuron_names=list("abcd"), note="x")
    lengths = (~np.isnan(X[..., 0])).sum(1)
    # at their valid lengths, or NaN-padded (trimmed when written)
    pieces = ((X[s], y[s]) if s % 2 else (X[s, :n], y[s, :n]) for s, n in enumerate(lengths))
    streamed = save_stimuli(tmp_path / "streamed.h5", pieces, n_stimuli=len(X), dt_ms=5.0,
                            neuron_names=list("abcd"), note="x")
    with h5py.File(whole) as a, h5py.File(streamed) as b:
        assert a.attrs["checksum"] == b.attrs["checksum"]  # structure and every digest
    assert_array_equal(load_dataset(streamed).y, load_dataset(whole).y)
    with pytest.raises(ValueError, match="yielded 3 stimuli, but n_stimuli=4"):
        save_stimuli(tmp_path / "short.h5", ((X[s], y[s]) for s in range(3)), n_stimuli=4)
    with pytest.raises(ValueError, match="stimulus 1 has X_i of shape"):
        save_stimuli(tmp_path / "bands.h5", [(X[0], y[0]), (X[1, :, :5], y[1])], n_stimuli=2)
    assert not (tmp_path / "short.h5").exists() and not (tmp_path / "bands.h5").exists()


def test_client_holds_one_row_per_fold_group(ragged):
    X, y = ragged
    chunked = check_chunked(_dask(X), _dask(y))
    data = check_X_y(X, y)
    module = build_model(X.shape[2], y.shape[2], input_moments(data), kernel="vanilla", n_lags=6)
    folds = [(np.asarray(a), np.asarray(b)) for a, b in KFold(4).split(np.zeros((len(X), 1)))]
    groups, group_folds = fold_groups(folds, len(X))
    stats = grouped_statistics(module, chunked, groups, int(groups.max()) + 1)
    assert stats.gram.shape == (4, 12 * 6 + 1, 12 * 6 + 1)  # 4 folds, not 8 stimuli
    assert stats.cross.shape == (4, 12 * 6 + 1, y.shape[2])
    assert_array_equal(stats.count, [(~np.isnan(X[g, :, 0])).sum() for g in np.split(np.arange(8), 4)])


def test_chunk_statistics_are_never_held_per_stimulus(ragged, monkeypatch):
    # a chunk of several stimuli of one fold group gives one row of statistics, summed as
    # computed; a task reading several chunks holds its running sum and one chunk's
    import weakref

    import skstrf._chunked

    X, y = ragged
    rows, alive = [], []
    chunk_statistics = skstrf._chunked._chunk_statistics

    def recording_module_statistics(*args, **kwargs):
        stats = module_statistics(*args, **kwargs)
        rows.append(stats.n_rows)
        return stats

    def recording_chunk_statistics(*args, **kwargs):
        alive.append(sum(ref() is not None for ref in held))
        part = chunk_statistics(*args, **kwargs)
        held.append(weakref.ref(part[1].gram))
        return part

    held = []
    monkeypatch.setattr(skstrf._chunked, "module_statistics", recording_module_statistics)
    monkeypatch.setattr(skstrf._chunked, "_chunk_statistics", recording_chunk_statistics)
    monkeypatch.setattr(skstrf._chunked, "MIN_TASKS", 1)  # one task reads all 8 chunks,
    monkeypatch.setattr(skstrf._chunked, "_runs_in_process", lambda: False)  # as on a cluster
    chunked = check_chunked(_dask(X, 4), _dask(y, 4))
    data = check_X_y(X, y)
    module = build_model(X.shape[2], y.shape[2], input_moments(data), kernel="vanilla", n_lags=6)
    folds = [(np.asarray(a), np.asarray(b)) for a, b in KFold(2).split(np.zeros((len(X), 1)))]
    groups, _ = fold_groups(folds, len(X))
    stats = grouped_statistics(module, chunked, groups, 2)
    assert rows == [1, 1]  # chunks of 4 stimuli, each in one fold group
    expected = module_statistics(module, data, "cpu", groups=groups, n_groups=2)
    assert_allclose(stats.gram, expected.gram, rtol=1e-12, atol=1e-9)
    assert_allclose(stats.cross, expected.cross, rtol=1e-12, atol=1e-9)
    rows.clear()
    chunked = check_chunked(_dask(X), _dask(y))  # 8 chunks of one stimulus in one task
    shuffled, _ = fold_groups([(np.asarray(a), np.asarray(b)) for a, b in
                               KFold(4, shuffle=True, random_state=0).split(np.zeros((len(X), 1)))], len(X))
    held.clear()
    alive.clear()
    stats = grouped_statistics(module, chunked, shuffled, 4)
    assert len(alive) == 8 and max(alive) <= 2  # the running sum and the chunk before
    expected = module_statistics(module, data, "cpu", groups=shuffled, n_groups=4)
    assert_allclose(stats.gram, expected.gram, rtol=1e-12, atol=1e-9)
    assert_array_equal(stats.count, expected.count)


def test_tasks_in_this_process_read_one_chunk_each(ragged, monkeypatch):
    # on dask's threads nothing travels between workers: a task holding several chunks at
    # once would only make a wave's memory grow with the number of stimuli
    import dask

    import skstrf._chunked

    X, y = ragged
    chunks_per_task = []
    statistics_task = skstrf._chunked._chunks_statistics

    def recording_task(module, n_blocks, lead_in, *chunks):
        chunks_per_task.append(len(chunks) // 4)
        return statistics_task(module, n_blocks, lead_in, *chunks)

    monkeypatch.setattr(skstrf._chunked, "_chunks_statistics", recording_task)
    monkeypatch.setattr(skstrf._chunked, "MIN_TASKS", 1)
    for scheduler in ("threads", "sync"):
        chunks_per_task.clear()
        with dask.config.set(scheduler=scheduler):
            STRFRegressor(n_lags=6).fit(_dask(X), _dask(y))
        assert chunks_per_task == [1] * len(X), scheduler
    with dask.config.set(scheduler="processes"):
        assert skstrf._chunked._chunks_per_task(len(X)) == len(X)  # up to SPLIT_EVERY where results travel


def test_freed_memory_is_handed_back_after_each_pass(ragged, monkeypatch):
    # glibc's per-thread arenas keep what dask's worker threads free: handed back once per
    # pass over the chunks (moments, statistics), before the solve allocates
    import platform

    import skstrf._chunked

    X, y = ragged
    calls = []
    monkeypatch.setattr(skstrf._chunked, "_release_freed_memory", lambda: calls.append(1))
    STRFRegressor(n_lags=6).fit(_dask(X), _dask(y))
    assert len(calls) == 2
    if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc":
        assert skstrf._chunked._malloc_trim() is not None


def test_merging_grouped_statistics_leaves_the_parts_unchanged():
    from skstrf._chunked import _merge_grouped
    from skstrf._design import DesignStatistics

    rng = np.random.default_rng(0)

    def part(groups):
        n = len(groups)
        return np.asarray(groups), DesignStatistics(*(torch.as_tensor(rng.normal(size=s)) for s in
                                                     ((n, 3, 3), (n, 3, 2), (n, 2), (n,))))

    parts = [part([0, 2]), part([1]), part([2, 3])]
    before = [[a.clone() for a in (p[1].gram, p[1].cross, p[1].sq, p[1].count)] for p in parts]
    present, merged = _merge_grouped(*parts)
    assert_array_equal(present, [0, 1, 2, 3])
    for p, saved in zip(parts, before):
        for a, b in zip((p[1].gram, p[1].cross, p[1].sq, p[1].count), saved):
            assert torch.equal(a, b)
    assert_allclose(merged.gram[2], parts[0][1].gram[1] + parts[2][1].gram[0])
    assert_allclose(merged.cross[1], parts[1][1].cross[0])
    assert_allclose(merged.count[3], parts[2][1].count[1])


@pytest.mark.parametrize("params, match", [
    ({"kernel": "parametric"}, r"closed-form solver.*kernel='parametric'"),
    ({"nonlinearity": "softplus"}, r"trained by gradient \(nonlinearity='softplus'\)"),
    ({"solver": "gradient"}, r"solver='gradient'"),
    ({"prefilter": "adaptrans"}, r"prefilter='adaptrans'"),
    ({"cv": None}, r"cv=None with validation_fraction=0.15"),
])
def test_unsupported_models_fail_before_reading_data(ragged, params, match):
    X, y = ragged
    never = da.map_blocks(_never_read, _dask(X), dtype=float, meta=np.empty((0, 0, 0)))  # reading X fails
    with pytest.raises(ValueError, match=match) as info:
        STRFRegressor(n_lags=6, **params).fit(never, _dask(y))
    assert "X.compute()" in str(info.value)


def _never_read(block):
    raise AssertionError("the data were read before the unsupported model was reported")


def test_bad_chunks_and_values_give_clear_errors(ragged):
    X, y = ragged
    est = STRFRegressor(n_lags=6)
    bad = X.copy()
    bad[5, 10, 3] = np.nan  # NaN in one band inside stimulus 5
    with pytest.raises(ValueError, match=r"dask chunk holding stimulus 5 .*NaN in some but not all"):
        est.fit(_dask(bad), _dask(y))
    with pytest.raises(ValueError, match="X and y disagree on the number of stimuli: X has 8 and y has 7"):
        est.fit(_dask(X), _dask(y[:7]))
    selected = _dask(X)[_dask(X)[:, 0, 0] > -np.inf]  # boolean indexing: unknown chunk sizes
    with pytest.raises(ValueError, match="unknown chunk sizes.*compute_chunk_sizes"):
        est.fit(selected, _dask(y))
    with pytest.raises(TypeError, match="dask arrays only"):
        est.fit(_dask(X).to_delayed().ravel()[0], y)
    # y chunked unlike X is rechunked to X's chunks: the same fit
    assert_same_fit(STRFRegressor(n_lags=6).fit(_dask(X, 2), _dask(y, 3)), STRFRegressor(n_lags=6).fit(X, y))
    fitted = STRFRegressor(n_lags=6, alpha=0.1).fit(X, y)
    with pytest.raises(ValueError, match="X has 5 features, but STRFRegressor is expecting 12"):
        fitted.predict(_dask(X[..., :5]))
    with pytest.raises(ValueError, match="y has 3 neuron"):
        fitted.score(_dask(X), _dask(y[:, :, :3]))


def test_without_dask_import_works_and_dask_paths_say_how_to_install(monkeypatch):
    code = ("import sys; sys.modules['dask'] = sys.modules['dask.array'] = None\n"
            "import numpy as np, skstrf\n"
            "from skstrf import STRFRegressor\n"
            "X = np.random.default_rng(0).normal(size=(4, 40, 3)); y = X[..., :1] + 0.1\n"
            "STRFRegressor(n_lags=2, alpha=1.0).fit(X, y)\n"
            "from skstrf._chunked import require_dask\n"
            "try:\n    require_dask('this')\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert 'pip install "skstrf[dask]"' in out.stdout
    monkeypatch.setitem(sys.modules, "dask.array", None)
    with pytest.raises(ImportError, match=r"skstrf\[dask\]"):
        require_dask("Fitting dask arrays")


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed", reason="the optional distributed package is not installed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        yield client


def test_local_cluster_fit_equals_in_memory_fit(client, ragged, tmp_path):
    from distributed import get_task_stream

    X, y = ragged
    path = save_dataset(tmp_path / "data.h5", X, y)
    memory = STRFRegressor(n_lags=6).fit(X, y)
    with load_dataset(path, lazy=True) as ds, get_task_stream(client) as stream:
        fitted = STRFRegressor(n_lags=6).fit(ds.X, ds.y)  # the workers open the file themselves
        assert_same_fit(fitted, memory)
        assert_allclose(fitted.score(ds.X, ds.y), memory.score(X, y), rtol=RTOL)
    workers = {task["worker"] for task in stream.data if str(task["key"]).startswith("_chunks_statistics")}
    assert len(workers) == 2  # the statistics were computed on both workers
