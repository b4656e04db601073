"""Catalogue of bad inputs to the dataset functions: each is refused with a clear error before any heavy work.

Every case asserts the exception type and a message that names the file or folder, the problem
and what to do. Save cases run with the writing of data booby-trapped and NS1 cases with the
reading of spike data and the downloads booby-trapped, so an error raised too late fails the
test; afterwards every file the user had is unchanged and no temporary file is left.
``docs/user_guide/bad_inputs.rst`` documents the same catalogue (section "Files, folders and
the command line").
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import warnings
import zipfile
from pathlib import Path

import h5py
import ns1_fixture as fx
import numpy as np
import pytest

from skstrf.datasets import ChecksumError, NS1FormatError, _hdf5, _ns1, fetch_ns1, load_ns1, save_dataset

X = np.arange(24, dtype=float).reshape(2, 6, 2)
Y = np.ones((2, 6, 3))


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


def _snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every entry under ``folder``: a file's bytes, a link's target, or "folder"."""
    out: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        key = path.relative_to(folder).as_posix()
        if path.is_symlink():
            out[key] = "-> " + os.readlink(path)
        elif path.is_dir():
            out[key] = "folder"
        else:
            out[key] = path.read_bytes()
    return out


def _deny_temporary_files(monkeypatch, folder: Path) -> None:
    """The folder refuses new files, as a read-only folder does for a user who is not root."""
    real = tempfile.mkstemp

    def mkstemp(*args, dir=None, prefix="", suffix="", **kwargs):
        if dir is not None and Path(dir) == folder:
            raise PermissionError(13, "Permission denied", os.path.join(dir, prefix + "k3j2x" + suffix))
        return real(*args, dir=dir, prefix=prefix, suffix=suffix, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


# --------------------------------------------------------------------------- saving


def _foreign_text(tmp_path, monkeypatch, stack):
    (tmp_path / "d.h5").write_text("my notes")
    return tmp_path / "d.h5", {}


def _foreign_hdf5(tmp_path, monkeypatch, stack):
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["recording"] = np.arange(4)
    return tmp_path / "d.h5", {}


def _existing_dataset(tmp_path, monkeypatch, stack):
    return save_dataset(tmp_path / "d.h5", X, Y), {"overwrite": False}


def _held_by_a_writer(tmp_path, monkeypatch, stack):
    path = save_dataset(tmp_path / "d.h5", X, Y)
    stack.enter_context(h5py.File(path, "a"))  # another program has it open for writing
    return path, {}


def _unwritable_folder(tmp_path, monkeypatch, stack):
    _deny_temporary_files(monkeypatch, tmp_path)
    return tmp_path / "d.h5", {}


def _new(**kwargs):
    def prepare(tmp_path, monkeypatch, stack):
        return tmp_path / "d.h5", kwargs

    return prepare


# (id, prepare(tmp_path, monkeypatch, stack) -> (path, save_dataset kwargs), exception, message regex)
SAVE_CASES = [
    ("stimulus name ending in NUL", _new(stimulus_names=["a", "b\x00"]), ValueError,
     r"stimulus_names\[1\] = 'b\\x00' contains a NUL character, which HDF5 strings cannot hold \(the string "
     r"would come back cut at it\); remove it"),
    ("neuron name ending in NUL", _new(neuron_names=["n0", "n1", "n2\x00"]), ValueError,
     r"neuron_names\[2\] = 'n2\\x00' contains a NUL character"),
    ("band names (metadata list) ending in NUL", _new(band_names=["low", "high\x00"]), ValueError,
     r"metadata 'band_names'\[1\] = 'high\\x00' contains a NUL character"),
    ("notes (object array) ending in NUL", _new(notes=np.array(["ok", "cut\x00"], dtype=object)), ValueError,
     r"metadata 'notes'\[1\] = 'cut\\x00' contains a NUL character"),
    ("overwrite not True, False or 'dataset'", _new(overwrite="yes"), ValueError,
     r"overwrite must be True, False or 'dataset', got 'yes'"),
    ("a text file at the destination", _foreign_text, FileExistsError,
     r"d.h5 exists and is not an skstrf dataset \(it is not an HDF5 file\); skstrf replaces only its own dataset "
     r"files unless told to. Write to another name, move the file away, or pass overwrite=True"),
    ("another program's HDF5 file at the destination", _foreign_hdf5, FileExistsError,
     r"d.h5 exists and is not an skstrf dataset \(its root attribute 'format' is None, not 'skstrf-dataset'\)"),
    ("an skstrf dataset at the destination with overwrite=False", _existing_dataset, FileExistsError,
     r"d.h5 exists and overwrite=False; pass overwrite=True \(or 'dataset'\) to replace it"),
    ("a file another program holds open for writing", _held_by_a_writer, BlockingIOError,
     r"d.h5 is open for writing in another program .*replacing it now would discard what that program writes. "
     r"Close the file there"),
    ("a folder that refuses new files (read-only)", _unwritable_folder, PermissionError,
     r"cannot write d.h5 in the folder .*: you may not create or replace files in it. Write to a folder where you "
     r"can create files"),
]


@pytest.mark.parametrize("case", SAVE_CASES, ids=[c[0] for c in SAVE_CASES])
def test_save_refuses_before_writing_anything(case, tmp_path, monkeypatch):
    _, prepare, error, match = case
    with contextlib.ExitStack() as stack:
        path, kwargs = prepare(tmp_path, monkeypatch, stack)
        before = _snapshot(tmp_path)

        def reached(*args, **kwargs):
            raise AssertionError("data were written before the bad input was refused")

        monkeypatch.setattr(_hdf5, "_put", reached)
        with pytest.raises(error, match=match) as info:
            save_dataset(path, X, Y, **kwargs)
        with pytest.raises(error, match=match):
            _hdf5.save_stimuli(path, zip(X, Y), n_stimuli=2, **kwargs)
        assert "k3j2x" not in str(info.value)  # the message names the user's file, never a temporary one
        assert _snapshot(tmp_path) == before


# --------------------------------------------------------------------------- NS1 folders


def _folder_at(name):
    def prepare(folder, monkeypatch):
        path = folder / name
        if path.exists():
            path.unlink()
        path.mkdir()

    return prepare


def _spike_folder_is_a_file(folder, monkeypatch):
    (folder / "spikesandwav.zip").unlink()
    (folder / "spikesandwav").write_text("not the extracted folder")


def _at_cache_name(make):
    def prepare(folder, monkeypatch):
        make(folder / "ns1_hanning21.h5", folder)

    return prepare


def _hdf5_of_the_user(path, folder):
    with h5py.File(path, "w") as f:
        f["my_analysis"] = np.arange(10)


def _dataset_of_the_user(path, folder):
    save_dataset(path, X, Y)


def _link_to_a_file_of_the_user(path, folder):
    (folder / "elsewhere.h5").write_bytes(b"precious")
    path.symlink_to(folder / "elsewhere.h5")


def _read_only(folder, monkeypatch):
    real = os.access

    def access(path, mode, *args, **kwargs):
        if Path(path) == folder and mode & os.W_OK:
            return False
        return real(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)


def _twin_spike_file(folder, monkeypatch):
    path = folder / "spikesandwav.zip"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns of the duplicate name
        with zipfile.ZipFile(path, "a") as zf:
            zf.writestr("spikesandwav/SH.En.C/unitA.mat", b"MATLAB 5.0 MAT-file, another unit A")


# (id, prepare(folder, monkeypatch), call, exception, message regex): ``folder`` holds the
# miniature NS1 as the OSF serves it; call "load" is load_ns1(folder), "fetch" is
# fetch_ns1 with data_home above it (downloads allowed, but trapped).
NS1_CASES = [
    ("a folder named like the metadata file", _folder_at("MetadataSHEnCneurons.mat"), "fetch", IsADirectoryError,
     r"ns1/MetadataSHEnCneurons.mat is a folder, but MetadataSHEnCneurons.mat is the name of an NS1 file: skstrf "
     r"can neither read nor download the file there. Move or rename it \(skstrf does not delete"),
    ("a folder named like the zip", _folder_at("spikesandwav.zip"), "load", IsADirectoryError,
     r"spikesandwav.zip is a folder, but spikesandwav.zip is the name of an NS1 file"),
    ("a file where the spike folder should be (no zip)", _spike_folder_is_a_file, "load", FileNotFoundError,
     r"(?s)The NS1 files \['spikesandwav.zip'\] are not in .*spikesandwav is a file, not the extracted folder of "
     r"spikesandwav.zip.*Download these files by hand"),
    ("another program's HDF5 file at the cache's name", _at_cache_name(_hdf5_of_the_user), "load", FileExistsError,
     r"ns1_hanning21.h5 is in the way of the NS1 cache and is not a cache skstrf wrote \(its root attribute "
     r"'format' is None.*never deletes or replaces a file it did not write: move or rename it \(or pass "
     r"cache=False"),
    ("the user's skstrf dataset at the cache's name", _at_cache_name(_dataset_of_the_user), "load", FileExistsError,
     r"is not a cache skstrf wrote \(it is an skstrf dataset, but not an NS1 cache"),
    ("a symbolic link at the cache's name", _at_cache_name(_link_to_a_file_of_the_user), "load", FileExistsError,
     r"is not a cache skstrf wrote \(it is a symbolic link\)"),
    ("a folder where the cache cannot be written", _read_only, "load", PermissionError,
     r"cannot write in the NS1 folder .*: you may not create files in it. Pass cache=False to read the files "
     r"without writing anything"),
    ("a zip holding a unit's spike file twice", _twin_spike_file, "load", NS1FormatError,
     r"spikesandwav.zip holds 2 members named spikesandwav/SH.En.C/unitA.mat; which one is the unit's spike "
     r"file is not defined. Replace it with the file from https://"),
]


@pytest.fixture
def ns1_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("SKSTRF_DATA", str(tmp_path / "home"))
    return fx.write_ns1_fixture(tmp_path / "home" / "ns1")


def _trap_ns1(monkeypatch):
    def reached(*args, **kwargs):
        raise AssertionError("spike data were read or a download started before the bad input was refused")

    monkeypatch.setattr(_ns1, "_unit_counts", reached)
    monkeypatch.setattr(_ns1, "download_file", reached)


@pytest.mark.parametrize("case", NS1_CASES, ids=[c[0] for c in NS1_CASES])
def test_ns1_refuses_before_reading_or_downloading(case, ns1_folder, monkeypatch):
    _, prepare, call, error, match = case
    prepare(ns1_folder, monkeypatch)
    before = _snapshot(ns1_folder.parent)
    _trap_ns1(monkeypatch)
    with pytest.raises(error, match=match) as info:
        if call == "load":
            load_ns1(ns1_folder)
        else:
            fetch_ns1(progress=False)
    assert ".tmp" not in str(info.value) and ".part" not in str(info.value)
    assert _snapshot(ns1_folder.parent) == before  # nothing of the user's deleted, replaced or added


def test_ns1_edited_hand_placed_spike_file(ns1_folder):
    # Raised while the files are read (the edit is found when that file is hashed), so not trapped.
    shutil.unpack_archive(ns1_folder / "spikesandwav.zip", ns1_folder)
    (ns1_folder / "spikesandwav.zip").unlink()
    load_ns1(ns1_folder, cache=True, smooth=False)  # first use records every spike file's SHA-256
    path = ns1_folder / "spikesandwav" / "SH.En.C" / "unitD.mat"
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(ChecksumError, match=r"spikesandwav/SH.En.C/unitD.mat has SHA-256 .* the file changed on "
                                            r"disk. Delete spikesandwav/SH.En.C/unitD.mat to obtain it again"):
        load_ns1(ns1_folder, cache=False)


@pytest.mark.skipif(_writes_into_read_only_folders(), reason="this process (root) writes into read-only folders")
def test_ns1_read_only_folders_for_real(ns1_folder, tmp_path):
    ns1_folder.chmod(0o555)
    locked = tmp_path / "locked"
    locked.mkdir(0o555)
    try:
        with pytest.raises(PermissionError, match=r"cannot write in the NS1 folder .*ns1: .*Pass cache=False"):
            load_ns1(ns1_folder)
        assert load_ns1(ns1_folder, cache=False, smooth=False).y[0, :, 0, 0].tolist() == fx.HAND_COUNTS.tolist()
        with pytest.raises(PermissionError, match=r"data_home .*locked/home cannot be created: you may not create "
                                                  r"folders in"):
            fetch_ns1(locked / "home", download_if_missing=False)
    finally:
        ns1_folder.chmod(0o755)
        locked.chmod(0o755)
