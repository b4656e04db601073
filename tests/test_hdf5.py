"""Tests for the skstrf HDF5 dataset format (save_dataset / load_dataset)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from skstrf.datasets import _hdf5, load_dataset, save_dataset
from skstrf.datasets._hdf5 import FORMAT_NAME, FORMAT_VERSION, DatasetFormatError, LazyDataset


def _ragged(dtype=np.float64, seed=0):
    """X (3, 7, 2) and y (3, 7, 2, 3) with lengths 7, 4, 5 and two missing repeats."""
    rng = np.random.default_rng(seed)
    lengths = np.array([7, 4, 5])
    X = rng.normal(size=(3, 7, 2)).astype(dtype)
    y = rng.poisson(2.0, size=(3, 7, 2, 3)).astype(dtype)
    for s, n in enumerate(lengths):
        X[s, n:] = np.nan
        y[s, n:] = np.nan
    y[1, :, 0, 2] = np.nan  # neuron 0 lacks repeat 2 on stimulus 1
    y[2, :, 1, 1] = np.nan
    return X, y, lengths


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_round_trip_is_bit_for_bit(tmp_path, dtype):
    X, y, lengths = _ragged(dtype)
    meta = {
        "species": "ferret",
        "n_sessions": 3,
        "gain": 0.25,
        "anaesthetised": True,
        "notes": None,
        "depths": [100.5, 200.0],
        "labels": np.array(["Yes", "No"]),
        "nested": {"window": np.hanning(5), "deeper": {"k": 1}},
    }
    path = save_dataset(
        tmp_path / "d.h5",
        X,
        y,
        dt_ms=5.0,
        freqs=np.array([500.0, 1000.0]),
        stimulus_names=["a", "bé", "c"],
        neuron_names=["n0", "n1"],
        splits={"train": [0, 1], "test": [2]},
        **meta,
    )
    data = load_dataset(path)
    assert data.X.dtype == dtype and data.y.dtype == dtype
    assert data.X.tobytes() == X.tobytes()  # NaN padding and values, bit for bit
    assert data.y.tobytes() == y.tobytes()
    np.testing.assert_array_equal(data.lengths, lengths)
    assert data.dt_ms == 5.0
    np.testing.assert_array_equal(data.freqs, [500.0, 1000.0])
    assert list(data.stimulus_names) == ["a", "bé", "c"]
    assert list(data.neuron_names) == ["n0", "n1"]
    assert list(data.splits) == ["train", "test"]
    np.testing.assert_array_equal(data.splits["train"], [0, 1])
    m = data.metadata
    assert m["species"] == "ferret" and isinstance(m["species"], str)
    assert m["n_sessions"] == 3 and isinstance(m["n_sessions"], int)
    assert m["gain"] == 0.25 and isinstance(m["gain"], float)
    assert m["anaesthetised"] is True
    assert m["notes"] is None
    np.testing.assert_array_equal(m["depths"], [100.5, 200.0])
    assert list(m["labels"]) == ["Yes", "No"]
    np.testing.assert_array_equal(m["nested"]["window"], np.hanning(5))
    assert m["nested"]["deeper"] == {"k": 1}


def test_ragged_stimuli_are_stored_without_padding(tmp_path):
    X, y, lengths = _ragged()
    save_dataset(tmp_path / "d.h5", X, y)
    with h5py.File(tmp_path / "d.h5", "r") as f:
        assert f.attrs["format"] == FORMAT_NAME
        assert f.attrs["format_version"] == FORMAT_VERSION
        assert [f[f"stimuli/{i}/X"].shape for i in range(3)] == [(7, 2), (4, 2), (5, 2)]
        assert [f[f"stimuli/{i}/y"].shape for i in range(3)] == [(7, 2, 3), (4, 2, 3), (5, 2, 3)]


@pytest.mark.parametrize(
    "y_shape, X_shape",
    [((2, 5, 3), (2, 5, 4)), ((2, 5), (2, 5, 4)), ((5, 3, 2), (5, 4)), ((5,), (5, 4))],
    ids=["psth", "one-neuron", "recording-repeats", "recording-one-neuron"],
)
def test_other_layouts_round_trip(tmp_path, y_shape, X_shape):
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=X_shape), rng.normal(size=y_shape).astype(np.float32)
    data = load_dataset(save_dataset(tmp_path / "d.h5", X, y))
    assert data.X.shape == X.shape and data.y.shape == y.shape
    assert data.X.tobytes() == X.tobytes() and data.y.tobytes() == y.tobytes()


def test_integer_counts_keep_their_dtype_when_not_ragged(tmp_path):
    X = np.ones((2, 3, 1))
    y = np.arange(12, dtype=np.int16).reshape(2, 3, 2)
    data = load_dataset(save_dataset(tmp_path / "d.h5", X, y))
    assert data.y.dtype == np.int16
    np.testing.assert_array_equal(data.y, y)


def test_lazy_reads_one_stimulus_at_a_time(tmp_path):
    X, y, lengths = _ragged()
    save_dataset(tmp_path / "d.h5", X, y, stimulus_names=["a", "b", "c"], splits={"test": [2, 0]})
    with load_dataset(tmp_path / "d.h5", lazy=True) as ds:
        assert isinstance(ds, LazyDataset)
        assert len(ds) == 3
        np.testing.assert_array_equal(ds.lengths, lengths)
        assert ds.X_shape == (3, 7, 2) and ds.y_shape == (3, 7, 2, 3)
        X1, y1 = ds[1]
        assert X1.shape == (4, 2) and y1.shape == (4, 2, 3)
        assert X1.tobytes() == X[1, :4].tobytes() and y1.tobytes() == y[1, :4].tobytes()
        X_last, _ = ds[-1]
        assert X_last.tobytes() == X[2, :5].tobytes()
        assert [x.shape[0] for x, _ in ds] == [7, 4, 5]
        part = ds.load(ds.splits["test"])  # stimuli 2 then 0, padded to 7
        assert part.X.shape == (2, 7, 2)
        assert part.X.tobytes() == X[[2, 0]].tobytes() and part.y.tobytes() == y[[2, 0]].tobytes()
        assert list(part.stimulus_names) == ["c", "a"]
        with pytest.raises(IndexError, match="out of range for 3"):
            ds[3]
    assert not ds._file  # closed by the context manager


def _expect_error(tmp_path, X, y, match, exc=ValueError, **kwargs):
    with pytest.raises(exc, match=match):
        save_dataset(tmp_path / "bad.h5", X, y, **kwargs)
    assert not (tmp_path / "bad.h5").exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file left either


def test_validation_errors(tmp_path):
    X, y, _ = _ragged()
    _expect_error(tmp_path, X[0, 0], y, "X has 1 dimensions")
    _expect_error(tmp_path, X, y[..., None], "y has 5 dimensions but X has 3; expected 2, 3 or 4")
    _expect_error(tmp_path, X, y[:2], r"y's leading axes \(2, 7\) differ from X's \(3, 7\)")
    bad = X.copy()
    bad[0, 2] = np.nan
    _expect_error(tmp_path, bad, y, "stimulus 0 of X has all-NaN frames before valid ones")
    bad = X.copy()
    bad[0, 2, 1] = np.nan
    _expect_error(tmp_path, bad, y, r"X\[0, 2\] has NaN in some but not all")
    bad = y.copy()
    bad[1, 5, 0, 0] = 1.0
    _expect_error(tmp_path, X, bad, "y has values in frames where X is end padding")
    bad = y.copy()
    bad[0, 3, 1, 0] = np.nan
    _expect_error(tmp_path, X, bad, r"y\[0, :, 1, 0\] is NaN in some valid frames only")
    psth = y[..., 0].copy()
    psth[2, 1, 0] = np.nan
    _expect_error(tmp_path, X, psth, r"y\[2, 1\] is NaN inside a valid frame; without a repeats axis")
    _expect_error(tmp_path, X, y, r"neuron_names must have shape \(2,\), got \(3,\)", neuron_names=["a", "b", "c"])
    _expect_error(tmp_path, X, y, r"freqs must have shape \(2,\)", freqs=[1.0])
    _expect_error(tmp_path, X, y, r"outside \[0, 3\)", splits={"test": [3]})
    _expect_error(tmp_path, X, y, "dt_ms must be a positive", dt_ms=-5)
    _expect_error(tmp_path, X.astype(complex), y, "X must hold real numbers", exc=TypeError)
    _expect_error(tmp_path, X, y, "metadata 'fn' is a builtin_function_or_method", exc=TypeError, fn=print)
    only = "metadata 'mixed': a list must hold only numbers or only strings"
    _expect_error(tmp_path, X, y, only, exc=TypeError, mixed=["a", 1])
    _expect_error(tmp_path, X, y, "names must be non-empty strings without '/'", **{"a/b": 1})


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    X, y, _ = _ragged()
    path = save_dataset(tmp_path / "d.h5", X, y, version="old")

    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(_hdf5, "_write_encoded", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save_dataset(path, X, y, version="new")  # fails mid-write
    monkeypatch.undo()
    assert load_dataset(path).metadata["version"] == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.h5"]


def test_load_rejects_foreign_or_damaged_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no dataset file"):
        load_dataset(tmp_path / "absent.h5")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(DatasetFormatError, match="not an HDF5 file"):
        load_dataset(tmp_path / "text.h5")
    with h5py.File(tmp_path / "foreign.h5", "w") as f:
        f["data"] = np.zeros(3)
    with pytest.raises(DatasetFormatError, match="not an skstrf dataset: its root attribute 'format' is None"):
        load_dataset(tmp_path / "foreign.h5")

    X, y, _ = _ragged()
    path = save_dataset(tmp_path / "d.h5", X, y)
    with h5py.File(path, "a") as f:
        f.attrs["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(DatasetFormatError, match="needs a newer skstrf"):
        load_dataset(path)
    path = save_dataset(tmp_path / "d.h5", X, y)
    with h5py.File(path, "a") as f:
        del f["stimuli/1"]
    with pytest.raises(DatasetFormatError, match="stimulus 1 of 3 is missing"):
        load_dataset(path)
    path = save_dataset(tmp_path / "d.h5", X, y)
    with h5py.File(path, "a") as f:
        del f["stimuli/2/X"]
        f["stimuli/2/X"] = np.zeros((5, 3))  # wrong number of bands
    with pytest.raises(DatasetFormatError, match="stimulus 2 has X"):
        load_dataset(path)
    content = save_dataset(tmp_path / "d.h5", X, y).read_bytes()
    (tmp_path / "cut.h5").write_bytes(content[: len(content) // 2])
    with pytest.raises(DatasetFormatError):
        load_dataset(tmp_path / "cut.h5")


def test_file_written_by_another_tool_following_the_documented_layout(tmp_path):
    """The user guide's recipe, done with bare h5py as MATLAB or another tool would."""
    path = tmp_path / "other.h5"
    X0, X1 = np.arange(8.0).reshape(4, 2), np.arange(6.0).reshape(3, 2)
    y0, y1 = np.ones((4, 1, 2)), np.zeros((3, 1, 2))
    with h5py.File(path, "w") as f:
        # As MATLAB's h5writeatt writes them: fixed-length text, numbers as 1-element doubles.
        f.attrs["format"] = np.bytes_(b"skstrf-dataset")
        f.attrs["format_version"] = np.array([1.0])
        f.attrs["n_stimuli"] = np.array([2.0])
        f.attrs["dt_ms"] = np.array([10.0])
        f["stimuli/0/X"], f["stimuli/0/y"] = X0, y0
        f["stimuli/1/X"], f["stimuli/1/y"] = X1, y1
        f["stimulus_names"] = np.array([b"first", b"second"])  # fixed-length ASCII
        f["metadata/animal"] = b"F1703"
        f["metadata/depth_um"] = 350
    data = load_dataset(path)
    assert data.X.shape == (2, 4, 2) and data.y.shape == (2, 4, 1, 2)
    np.testing.assert_array_equal(data.X[1, :3], X1)
    assert np.isnan(data.X[1, 3]).all() and np.isnan(data.y[1, 3]).all()
    assert data.dt_ms == 10.0 and list(data.stimulus_names) == ["first", "second"]
    assert data.metadata == {"animal": "F1703", "depth_um": 350}
    assert data.splits == {} and data.freqs is None and data.neuron_names is None
