"""Tests for the skstrf HDF5 dataset format (save_dataset / load_dataset)."""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
import tempfile

import h5py
import numpy as np
import pytest

from skstrf.datasets import _hdf5, load_dataset, save_dataset
from skstrf.datasets._hdf5 import FORMAT_NAME, FORMAT_VERSION, DatasetFormatError, LazyDataset


def _writes_into_read_only_folders() -> bool:
    """True where permissions do not bind this process (root with CAP_DAC_OVERRIDE)."""
    folder = tempfile.mkdtemp()
    os.chmod(folder, 0o555)
    try:
        with open(os.path.join(folder, "probe"), "w"):
            return True
    except PermissionError:
        return False
    finally:
        os.chmod(folder, 0o755)
        shutil.rmtree(folder)


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


# --------------------------------------------------------------------------- untrusted files (issue 13)


def _small(tmp_path, name="d.h5", **kwargs):
    X, y, _ = _ragged()
    return save_dataset(tmp_path / name, X, y, **kwargs)


def _as_version_1(path):
    """Turn a file into a version-1 file (no checksums), as another tool would write it,
    so that a later edit is judged by the header checks alone."""
    with h5py.File(path, "a") as f:
        f.attrs["format_version"] = 1
        del f.attrs["checksum"]
    return path


@pytest.fixture
def secret(tmp_path):
    path = tmp_path / "secret.txt"
    path.write_bytes(b"root:x:0:0:secret\n" * 4)
    return path


def _refused(path, match):
    with pytest.raises(DatasetFormatError, match=match):
        load_dataset(path)
    with pytest.raises(DatasetFormatError, match=match):
        load_dataset(path, lazy=True)


def test_external_storage_is_refused(tmp_path, secret):
    path = _small(tmp_path)
    with h5py.File(path, "a") as f:
        f["metadata"].create_dataset("leak", shape=(secret.stat().st_size,), dtype="u1",
                                     external=[(str(secret), 0, secret.stat().st_size)])
    _refused(path, r"keeps its data in external file\(s\)")


def test_external_link_and_soft_link_are_refused(tmp_path, secret):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.frombuffer(secret.read_bytes(), np.uint8)
    path = _small(tmp_path)
    with h5py.File(path, "a") as f:
        f["metadata/leak"] = h5py.ExternalLink(str(other), "/x")
    _refused(path, "is an external link")
    path = _small(tmp_path)
    with h5py.File(path, "a") as f:
        f["metadata/alias"] = h5py.SoftLink("/stimuli/0/X")
    _refused(path, "is a SoftLink; skstrf datasets hold only plain")


def test_virtual_dataset_is_refused(tmp_path, secret):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.frombuffer(secret.read_bytes(), np.uint8)
    path = _small(tmp_path)
    layout = h5py.VirtualLayout(shape=(secret.stat().st_size,), dtype="u1")
    layout[:] = h5py.VirtualSource(str(other), "x", shape=(secret.stat().st_size,))
    with h5py.File(path, "a") as f:
        f["metadata"].create_virtual_dataset("leak", layout)
    _refused(path, "is a virtual dataset")


def test_hard_link_cycle_is_refused(tmp_path):
    path = _small(tmp_path, nested={"a": 1})
    with h5py.File(path, "a") as f:
        f["metadata/nested/loop"] = f["metadata"]
    _refused(path, "is linked from two places")


@pytest.mark.parametrize("n_frames", [2_000_000, 2**40])
def test_declared_but_unwritten_frames_are_refused_before_allocating(tmp_path, n_frames):
    path = _as_version_1(_small(tmp_path))
    with h5py.File(path, "a") as f:
        for key, tail in (("X", (2,)), ("y", (2, 3))):
            del f[f"stimuli/0/{key}"]
            chunks = (1024,) + tail if n_frames > 2**31 else None
            f.create_dataset(f"stimuli/0/{key}", shape=(n_frames,) + tail, dtype="f4", chunks=chunks)
    assert path.stat().st_size < 100_000
    _refused(path, r"declares shape \(\d+, 2.*but stores .* never written")


def test_header_is_checked_against_what_is_stored(tmp_path):
    def edited(edit):
        path = _as_version_1(_small(tmp_path, neuron_names=["a", "b"], splits={"train": [0, 1]}))
        with h5py.File(path, "a") as f:
            edit(f)
        return path

    _refused(edited(lambda f: f.attrs.__setitem__("n_stimuli", 2)), "n_stimuli is 2 but the 'stimuli' group holds 3")
    _refused(edited(lambda f: f.attrs.__setitem__("n_stimuli", 2.7)), "n_stimuli is 2.7; expected a whole number")
    _refused(edited(lambda f: f.attrs.__setitem__("dt_ms", -5.0)), "dt_ms is -5.0; expected a positive")

    def float_split(f):
        del f["splits/train"]
        f["splits/train"] = [0.5, 1.7]

    _refused(edited(float_split), "split 'train' holds non-integer indices")

    def far_split(f):
        del f["splits/train"]
        f["splits/train"] = [0, 7]

    _refused(edited(far_split), r"split 'train' holds indices \[7\] outside \[0, 3\)")

    def many_names(f):
        del f["neuron_names"]
        f["neuron_names"] = np.array([b"n"] * 7)

    _refused(edited(many_names), r"neuron_names must have shape \(2,\), got \(7,\)")

    # MATLAB writes indices as doubles: whole numbers are accepted.
    def matlab_split(f):
        del f["splits/train"]
        f["splits/train"] = [0.0, 2.0]

    data = load_dataset(edited(matlab_split))
    np.testing.assert_array_equal(data.splits["train"], [0, 2])
    assert data.splits["train"].dtype == np.int64


def test_wrong_kinds_of_object_are_clear_errors(tmp_path):
    def edited(edit):
        path = _as_version_1(_small(tmp_path))
        with h5py.File(path, "a") as f:
            edit(f)
        return path

    def replace(key, value):
        def edit(f):
            del f[key]
            f[key] = value
        return edit

    _refused(edited(replace("stimuli", np.zeros(3))), "/stimuli is a dataset; expected a group")
    _refused(edited(replace("splits", np.zeros(3))), "/splits is a dataset; expected a group")
    _refused(edited(replace("stimuli/1/X", np.zeros(4))), r"stimulus 1 has X of shape \(4,\).*2 dimension")
    _refused(edited(replace("stimuli/1/y", 3.0)), r"stimulus 1 has y of shape \(\)")
    _refused(edited(replace("stimuli/1/X", np.array([b"ab"] * 8).reshape(4, 2))), "expected real numbers")


def test_checksum_detects_flipped_bytes(tmp_path):
    X, y, _ = _ragged()
    path = save_dataset(tmp_path / "d.h5", X, y, dt_ms=5.0)
    with h5py.File(path, "r") as f:
        assert f.attrs["format_version"] == 2 and str(f.attrs["checksum"]).startswith("sha256:")
        offset, size = f["stimuli/1/y"].id.get_offset(), f["stimuli/1/y"].id.get_storage_size()
    content = bytearray(path.read_bytes())
    content[offset : offset + size] = bytes(b ^ 0x5A for b in content[offset : offset + size])
    path.write_bytes(bytes(content))
    with pytest.raises(DatasetFormatError, match="stimuli/1/y fails its integrity check"):
        load_dataset(path)
    with load_dataset(path, lazy=True) as ds:  # data are checked when read: other stimuli still read
        assert ds[0][0].tobytes() == X[0].tobytes()
        with pytest.raises(DatasetFormatError, match="stimulus 1 cannot be read.*integrity"):
            ds[1]

    path = save_dataset(tmp_path / "d.h5", X, y, dt_ms=5.0)
    with h5py.File(path, "a") as f:  # an attribute changed after writing
        f.attrs["dt_ms"] = 10.0
    _refused(path, "fails its integrity check: its structure or attributes differ")


def test_version_1_files_are_still_read(tmp_path):
    X, y, _ = _ragged()
    path = _as_version_1(save_dataset(tmp_path / "d.h5", X, y, stimulus_names=["a", "b", "c"], k={"x": 1}))
    data = load_dataset(path)
    assert data.format_version == 1 and data.X.tobytes() == X.tobytes() and data.metadata == {"k": {"x": 1}}


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_files_get_the_umask_permissions_also_when_overwriting(tmp_path, umask):
    old = os.umask(umask)
    try:
        path = _small(tmp_path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
        path.chmod(0o600)
        _small(tmp_path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    finally:
        os.umask(old)


def test_saving_over_a_symlink_is_refused(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    (tmp_path / "d.h5").symlink_to(target)
    with pytest.raises(ValueError, match="is a symbolic link .*does not write through links"):
        _small(tmp_path)
    assert target.read_text() == "keep me" and (tmp_path / "d.h5").is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.h5", "precious.txt"]


def test_save_destination_errors_and_home_expansion(tmp_path, monkeypatch):
    X, y, _ = _ragged()
    with pytest.raises(FileNotFoundError, match=r"cannot write .*missing/d.h5: the folder .*missing does not exist"):
        save_dataset(tmp_path / "missing" / "d.h5", X, y)
    with pytest.raises(IsADirectoryError, match="it is a folder"):
        save_dataset(tmp_path, X, y)
    monkeypatch.setenv("HOME", str(tmp_path))
    path = save_dataset("~/x.h5", X, y)
    assert path == tmp_path / "x.h5" and load_dataset("~/x.h5").X.tobytes() == X.tobytes()


def test_save_refuses_unstorable_values(tmp_path):
    X, y, _ = _ragged()
    nul = r"stimulus_names\[1\] = 'b\\x00c' contains a NUL"
    _expect_error(tmp_path, X, y, nul, stimulus_names=["a", "b\x00c", "d"])
    _expect_error(tmp_path, X, y, "metadata 'note' = .* contains a NUL", note="a\x00b")
    _expect_error(tmp_path, X, y, "metadata 'big' = 1180591620717411303424 does not fit in a 64-bit", big=2**70)
    _expect_error(tmp_path, X, y, "metadata 'raw' is bytes; decode it to str", exc=TypeError, raw=b"\x00\x01")
    _expect_error(tmp_path, X, y, "split 'test' lists a stimulus more than once", splits={"test": [1, 1]})


def test_locked_file_is_a_clear_error(tmp_path):
    path = _small(tmp_path)
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as HDF5 does for a writer
        with pytest.raises(BlockingIOError, match="is locked by another process"):
            load_dataset(path)
    finally:
        os.close(fd)
    assert load_dataset(path).X.shape == (3, 7, 2)


# --------------------------------------------------------------------------- NUL, replacing files (issue 27)


@pytest.mark.parametrize("kwargs, match", [
    ({"stimulus_names": ["a", "b\x00", "c"]}, r"stimulus_names\[1\] = 'b\\x00' contains a NUL"),
    ({"neuron_names": ["n0\x00", "n1"]}, r"neuron_names\[0\] = 'n0\\x00' contains a NUL"),
    ({"band_names": ["low", "high\x00"]}, r"metadata 'band_names'\[1\] = 'high\\x00' contains a NUL"),
    ({"notes": np.array(["ok", "cut\x00"], dtype=object)}, r"metadata 'notes'\[1\] = 'cut\\x00' contains a NUL"),
    ({"session": {"notes": ["x\x00"]}}, r"metadata 'notes'\[0\] = 'x\\x00' contains a NUL"),
    ({"note": "trailing\x00"}, r"metadata 'note' = 'trailing\\x00' contains a NUL"),
])
def test_trailing_nul_is_refused_before_writing(tmp_path, kwargs, match):
    # NumPy's string arrays drop trailing NULs: a check made after np.asarray saw "b", and
    # the name came back from the file cut short.
    X, y, _ = _ragged()
    _expect_error(tmp_path, X, y, match, **kwargs)
    with pytest.raises(ValueError, match=match):
        _hdf5.save_stimuli(tmp_path / "bad.h5", zip(X, y), n_stimuli=3, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_names_of_other_types_are_still_stored_as_text(tmp_path):
    path = _small(tmp_path, stimulus_names=[b"a", 2, "c"], neuron_names=np.array(["n0", "n1"]))
    data = load_dataset(path)
    assert list(data.stimulus_names) == ["a", "2", "c"] and list(data.neuron_names) == ["n0", "n1"]


def test_only_skstrf_datasets_are_replaced_unless_told(tmp_path):
    X, y, _ = _ragged()
    text = tmp_path / "notes.h5"
    text.write_text("my notes")
    foreign = tmp_path / "recording.h5"
    with h5py.File(foreign, "w") as f:
        f["raw"] = np.arange(5)
    raw = foreign.read_bytes()
    reasons = ((text, "it is not an HDF5 file"),
               (foreign, "its root attribute 'format' is None, not 'skstrf-dataset'"))
    for path, reason in reasons:
        with pytest.raises(FileExistsError, match=rf"{path.name} exists and is not an skstrf dataset "
                                                  rf"\({reason}\).*overwrite=True"):
            save_dataset(path, X, y)
    assert text.read_text() == "my notes" and foreign.read_bytes() == raw
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.h5", "recording.h5"]  # no temporary left
    save_dataset(foreign, X, y, overwrite=True)
    assert load_dataset(foreign).X.tobytes() == X.tobytes()
    save_dataset(foreign, X[:2], y[:2])  # an skstrf dataset is replaced by default
    assert load_dataset(foreign).X.shape[0] == 2
    with pytest.raises(FileExistsError, match=r"recording.h5 exists and overwrite=False"):
        save_dataset(foreign, X, y, overwrite=False)
    with pytest.raises(ValueError, match=r"overwrite must be True, False or 'dataset', got 'yes'"):
        save_dataset(tmp_path / "new.h5", X, y, overwrite="yes")
    with pytest.raises(FileExistsError, match="is not an skstrf dataset"):
        _hdf5.save_stimuli(text, zip(X, y), n_stimuli=3)
    assert load_dataset(foreign).X.shape[0] == 2 and not (tmp_path / "new.h5").exists()


@pytest.mark.skipif(os.environ.get("HDF5_USE_FILE_LOCKING", "").upper() == "FALSE", reason="HDF5 locking is off")
def test_a_file_open_for_writing_is_not_replaced_and_a_reader_keeps_the_old_file(tmp_path):
    X, y, _ = _ragged()
    path = save_dataset(tmp_path / "d.h5", X, y, version="old")
    writer = h5py.File(path, "a")  # another program appending to the file
    try:
        with pytest.raises(BlockingIOError, match=r"d.h5 is open for writing in another program"):
            save_dataset(path, X, y, version="new")
    finally:
        writer.close()
    assert load_dataset(path).metadata["version"] == "old"
    with h5py.File(path, "r") as reader:  # a reader: replacing is a rename, it keeps the old file
        save_dataset(path, X, y, version="new")
        assert reader["metadata/version"][()] == b"old"
    assert load_dataset(path).metadata["version"] == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.h5"]


def test_unwritable_folder_is_named_not_the_temporary_file(tmp_path, monkeypatch):
    def denied(*args, dir=None, prefix="", suffix="", **kwargs):
        raise PermissionError(13, "Permission denied", os.path.join(dir, prefix + "k3j2x" + suffix))

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    X, y, _ = _ragged()
    with pytest.raises(PermissionError) as info:
        save_dataset(tmp_path / "d.h5", X, y)
    assert f"cannot write d.h5 in the folder {tmp_path}: you may not create or replace files in it" in str(info.value)
    assert "k3j2x" not in str(info.value) and ".tmp" not in str(info.value)


@pytest.mark.skipif(_writes_into_read_only_folders(), reason="this process (root) writes into read-only folders")
def test_read_only_folder_for_real(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(PermissionError, match=r"cannot write d.h5 in the folder .*ro: you may not create"):
            _small(folder)
    finally:
        folder.chmod(0o755)
