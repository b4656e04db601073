"""Tests for the NS1 fetcher: OSF-layout parsing, binning, smoothing, cache and download failures."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import shutil
import warnings
import zipfile

import h5py
import ns1_fixture as fx
import numpy as np
import pytest

from skstrf.datasets import _ns1, fetch_ns1, load_ns1
from skstrf.datasets._download import MANIFEST_NAME, ChecksumError, DownloadError, read_manifest

RAW = ("MetadataSHEnCneurons.mat", "spikesandwav.zip", "ReadMe.rtf", "test_data_5ms.mat")


@pytest.fixture
def ns1_dir(tmp_path):
    return fx.write_ns1_fixture(tmp_path / "manual")


@pytest.fixture
def server(monkeypatch):
    """The miniature NS1 served on 127.0.0.1, with NS1_URLS pointing at it."""
    srv = fx.FileServer(fx.ns1_files())
    for name in RAW:
        monkeypatch.setitem(_ns1.NS1_URLS, name, srv.url(f"osf/{name}"))
    srv.files = {f"osf/{name}": content for name, content in srv.files.items()}
    yield srv
    srv.stop()


@pytest.fixture
def data_home(tmp_path, monkeypatch):
    home = tmp_path / "skstrf_data"
    monkeypatch.setenv("SKSTRF_DATA", str(home))
    return home


# --------------------------------------------------------------------------- pure functions


def test_hanning_taps_are_the_21ms_window_at_5ms():
    np.testing.assert_array_equal(_ns1._hanning_taps(21.0, 5.0, normalize=False), [0.0, 0.5, 1.0, 0.5, 0.0])
    np.testing.assert_array_equal(_ns1._hanning_taps(21.0, 5.0, normalize=True), [0.0, 0.25, 0.5, 0.25, 0.0])
    assert _ns1._hanning_taps(21.0, 1.0, normalize=False).size == 21


def test_smoothing_equals_same_length_convolution_per_repeat():
    rng = np.random.default_rng(3)
    counts = rng.poisson(1.0, size=(2, 30, 3)).astype(np.float32)
    counts[1, :, 2] = np.nan  # a missing repeat stays missing
    taps = _ns1._hanning_taps(21.0, 5.0, normalize=False)
    out = _ns1._smooth_time(counts, taps, axis=1)
    for s in range(2):
        for r in range(3):
            np.testing.assert_allclose(out[s, :, r], np.convolve(counts[s, :, r], taps, mode="same"), rtol=0, atol=0)
    assert np.isnan(out[1, :, 2]).all()


def test_binning_rule_on_hand_picked_spike_times():
    counts = _ns1._bin_spike_times(
        fx.HAND_TIMES, np.zeros(11, int), np.zeros(11, int), np.array([1]), n_frames=6, dt_ms=5.0
    )
    assert counts.shape == (1, 6, 1)
    np.testing.assert_array_equal(counts[0, :, 0], fx.HAND_COUNTS)


def test_seed_split_for_20_stimuli():
    split = _ns1._contiguous_split(20)
    np.testing.assert_array_equal(split["train"], np.arange(14))
    np.testing.assert_array_equal(split["valid"], [14, 15, 16])
    np.testing.assert_array_equal(split["test"], [17, 18, 19])


def test_clean_mask_rule():
    mask = _ns1._clean_mask(np.array(["Yes", "Maybe", "No", "Yes", "Maybe"]), np.array([0.0, 10, 10, -1, np.nan]))
    np.testing.assert_array_equal(mask, [True, True, False, False, False])


def test_spike_path_normalisation():
    assert _ns1._normalise_spike_path("SH.En.C\\u1.mat").as_posix() == "SH.En.C/u1.mat"
    assert _ns1._normalise_spike_path("/spikesandwav/SH.En.C/u1.mat").as_posix() == "SH.En.C/u1.mat"
    with pytest.raises(_ns1.NS1FormatError, match="leaves the spikesandwav folder"):
        _ns1._normalise_spike_path("../u1.mat")


# --------------------------------------------------------------------------- parsing the OSF layout


def test_load_ns1_parses_the_osf_layout(ns1_dir):
    data = load_ns1(ns1_dir, smooth=False)
    assert data.X.shape == (3, 6, 4) and data.y.shape == (3, 6, 4, 4) and data.y.dtype == np.float32
    s, t, f = np.meshgrid(np.arange(3), np.arange(6), np.arange(4), indexing="ij")
    np.testing.assert_array_equal(data.X, 100 * s + 10 * f + t)  # X_nfht transposed to (s, t, f)
    np.testing.assert_array_equal(data.y[0, :, 0, 0], fx.HAND_COUNTS)
    # Every other repeat against the one-spike-at-a-time rule; only the 3 natural sets count.
    trains = fx.spike_trains()
    for u in range(4):
        for s in range(3):
            for r, times in enumerate(trains[u][s]):
                np.testing.assert_array_equal(data.y[s, :, u, r], fx.reference_counts(times))
    assert np.isnan(data.y[1, :, 0, 1:]).all() and not np.isnan(data.y[1, :, 0, 0]).any()  # one repeat only
    np.testing.assert_array_equal(data.y[0, :, 1, 1], [1, 0, 0, 0, 0, 0])  # a lone spike at 3 ms
    np.testing.assert_array_equal(data.y[0, :, 1, 2], np.zeros(6))  # an empty repeat
    assert list(data.neuron_names) == ["unitA", "unitB", "unitC", "unitD"]
    assert list(data.units.spike_file) == [
        "SH.En.C/unitA.mat",
        "SH.En.C/unitB_1.mat",  # the _1 fallback
        "SH.En.C/unitC.mat",
        "SH.En.C/unitD.mat",
    ]
    np.testing.assert_array_equal(data.units.depth, [400, 650, -1, 300])
    np.testing.assert_allclose(data.units.noise_ratio, [0.1, 0.2, 0.3, 0.4])
    np.testing.assert_array_equal(data.units.single_n, [0, 1, 0, 1])
    assert list(data.units.single_t) == ["Yes", "Maybe", "Yes", "No"]
    np.testing.assert_array_equal(data.units.electrode, [3, 4, 5, 6])
    np.testing.assert_array_equal(data.units.n_electrodes, [16] * 4)
    np.testing.assert_array_equal(data.units.clean, fx.CLEAN)
    assert list(data.stimulus_names) == ["sound01", "sound02", "sound03"]
    assert data.dt_ms == 5.0 and "Harper" in data.DESCR and "osf.io/ayw2p" in data.DESCR
    assert {k: list(v) for k, v in data.splits.items()} == {"train": [0], "valid": [1], "test": [2]}


def test_smoothing_options_and_clean_subset(ns1_dir):
    raw = load_ns1(ns1_dir, smooth=False)
    smooth = load_ns1(ns1_dir, smooth=True)
    normalized = load_ns1(ns1_dir, smooth="normalized")
    np.testing.assert_array_equal(smooth.y[0, :, 0, 0], fx.HAND_SMOOTHED)
    np.testing.assert_array_equal(normalized.y[0, :, 0, 0], fx.HAND_SMOOTHED / 2)
    valid = ~np.isnan(raw.y)
    np.testing.assert_array_equal(np.isnan(smooth.y), ~valid)
    np.testing.assert_array_equal(smooth.y[valid], 2 * normalized.y[valid])
    assert sorted(p.name for p in ns1_dir.glob("ns1_*.h5")) == [
        "ns1_counts.h5",
        "ns1_hanning21-normalized.h5",
        "ns1_hanning21.h5",
    ]
    X, y = load_ns1(ns1_dir, subset="clean", return_X_y=True)
    np.testing.assert_array_equal(y, smooth.y[:, :, fx.CLEAN])
    clean = load_ns1(ns1_dir, subset="clean")
    assert list(clean.neuron_names) == ["unitA", "unitB"] and clean.units.clean.all()


def test_load_ns1_without_cache_writes_nothing(ns1_dir):
    shutil.unpack_archive(ns1_dir / "spikesandwav.zip", ns1_dir)  # hand-extracted folder
    shutil.rmtree(ns1_dir / "__MACOSX")
    (ns1_dir / "spikesandwav.zip").unlink()
    before = sorted(p.name for p in ns1_dir.iterdir())
    data = load_ns1(ns1_dir, cache=False, smooth=False)
    assert sorted(p.name for p in ns1_dir.iterdir()) == before
    np.testing.assert_array_equal(data.y[0, :, 0, 0], fx.HAND_COUNTS)
    assert data.cache_path is None


def test_missing_spike_file_and_v73_file_are_clear_errors(ns1_dir):
    shutil.unpack_archive(ns1_dir / "spikesandwav.zip", ns1_dir)
    (ns1_dir / "spikesandwav.zip").unlink()  # the folder is read only where there is no zip
    (ns1_dir / "spikesandwav" / "SH.En.C" / "unitC.mat").unlink()
    expected = r"1 spike file\(s\) named in MetadataSHEnCneurons.mat are missing.*unitC.mat \(nor unitC_1.mat\)"
    with pytest.raises(FileNotFoundError, match=expected + r".*There is no spikesandwav.zip"):
        load_ns1(ns1_dir, cache=False)
    # A MATLAB v7.3 file: HDF5 behind a 512-byte user block whose header says version 2.
    path = ns1_dir / "MetadataSHEnCneurons.mat"
    with h5py.File(path, "w", userblock_size=512) as f:
        f["neuron"] = np.zeros(3)
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(116) + b"\x00" * 8 + b"\x00\x02" + b"IM"
    with open(path, "r+b") as fh:
        fh.write(header)
    with pytest.raises(_ns1.NS1FormatError, match="MATLAB v7.3 .* re-save it"):
        load_ns1(ns1_dir, cache=False)


def test_invalid_options_fail_before_touching_files(tmp_path):
    with pytest.raises(ValueError, match="smooth must be True, False or 'normalized', got 'yes'"):
        fetch_ns1(tmp_path / "home", smooth="yes")
    with pytest.raises(ValueError, match="subset must be 'all' or 'clean', got 'good'"):
        fetch_ns1(tmp_path / "home", subset="good")
    assert not (tmp_path / "home").exists()


# --------------------------------------------------------------------------- fetch: download and cache


def test_fetch_downloads_records_checksums_and_reuses_the_cache(data_home, server):
    data = fetch_ns1(progress=False)
    folder = data_home / "ns1"
    assert data.data_dir == str(folder) and data.cache_path == str(folder / "ns1_hanning21.h5")
    assert data.y.shape == (3, 6, 4, 4)
    np.testing.assert_array_equal(data.y[0, :, 0, 0], fx.HAND_SMOOTHED)
    for name in RAW:
        assert (folder / name).read_bytes() == server.files[f"osf/{name}"]
    manifest = read_manifest(folder)
    assert set(manifest) == set(RAW) | {"ns1_hanning21.h5"}
    assert manifest["spikesandwav.zip"]["source"] == server.url("osf/spikesandwav.zip")
    assert not (folder / "spikesandwav").exists()  # read from the zip, nothing extracted
    assert not list(folder.glob("*.part"))

    server.stop()  # the second call must not need the network (nor the raw files)
    for name in ("MetadataSHEnCneurons.mat", "test_data_5ms.mat"):
        (folder / name).unlink()
    again = fetch_ns1(progress=False, subset="clean")
    np.testing.assert_array_equal(again.y, data.y[:, :, fx.CLEAN])


def test_corrupt_cache_is_detected_and_rebuilt(data_home, server):
    first = fetch_ns1(progress=False)
    cache = data_home / "ns1" / "ns1_hanning21.h5"

    cache.write_bytes(b"garbage, not HDF5")  # no longer recognisable as ours: refused, never deleted
    with pytest.raises(FileExistsError, match="not a cache skstrf wrote .*may be that cache, damaged"):
        fetch_ns1(progress=False)
    assert cache.read_bytes() == b"garbage, not HDF5"
    cache.unlink()  # as the message says
    rebuilt = fetch_ns1(progress=False)
    np.testing.assert_array_equal(rebuilt.y, first.y)

    with h5py.File(cache, "a") as f:  # still valid HDF5, but no longer what was recorded
        del f["stimuli/2"]
    with pytest.warns(RuntimeWarning, match="unusable .*SHA-256"):
        rebuilt = fetch_ns1(progress=False)
    np.testing.assert_array_equal(rebuilt.y, first.y)

    with h5py.File(cache, "a") as f:  # a damaged file whose new SHA the manifest accepts
        del f["stimuli/2"]
    record = read_manifest(data_home / "ns1")
    record.pop("ns1_hanning21.h5")
    (data_home / "ns1" / MANIFEST_NAME).write_text(json.dumps(record))
    with pytest.warns(RuntimeWarning, match="stimulus 2 of 3 is missing"):
        rebuilt = fetch_ns1(progress=False)
    np.testing.assert_array_equal(rebuilt.y, first.y)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a sound cache raises no warning
        fetch_ns1(progress=False)


def test_corrupt_cache_without_raw_files_is_a_clear_error(data_home, server):
    fetch_ns1(progress=False)
    folder = data_home / "ns1"
    for name in ("MetadataSHEnCneurons.mat", "spikesandwav.zip"):
        (folder / name).unlink()
    with h5py.File(folder / "ns1_hanning21.h5", "a") as f:  # damaged, but still recognisably ours
        del f["stimuli/1"]
    with pytest.warns(RuntimeWarning, match="unusable"):
        with pytest.raises(FileNotFoundError) as info:
            fetch_ns1(download_if_missing=False)
    message = str(info.value)
    assert "['MetadataSHEnCneurons.mat', 'spikesandwav.zip'] are not in" in message
    assert str(folder) in message and server.url("osf/spikesandwav.zip") in message
    assert not (folder / "ns1_hanning21.h5").exists()


def test_offline_error_names_every_url_file_and_the_folder(data_home, server):
    server.stop()
    with pytest.raises(DownloadError) as info:
        fetch_ns1(progress=False)
    message = str(info.value)
    assert "Could not download the NS1 dataset" in message and "Connection refused" in message
    assert str(data_home / "ns1") in message
    for name in RAW:
        assert name in message and _ns1.NS1_URLS[name] in message
    assert "load_ns1(" in message and "download_if_missing=False" in message
    assert sorted(p.name for p in (data_home / "ns1").iterdir()) == []

    # The files placed by hand as the message says are then used.
    fx.write_ns1_fixture(data_home / "ns1")
    data = fetch_ns1(download_if_missing=False, smooth=False)
    np.testing.assert_array_equal(data.y[0, :, 0, 0], fx.HAND_COUNTS)


def test_interrupted_zip_download_then_resume(data_home, server):
    server.mode["osf/spikesandwav.zip"] = "truncate"
    with pytest.raises(DownloadError, match="interrupted: received .* kept and will be resumed") as info:
        fetch_ns1(progress=False)
    assert "Download these files by hand" in str(info.value)
    folder = data_home / "ns1"
    assert not (folder / "spikesandwav.zip").exists() and (folder / "spikesandwav.zip.part").exists()
    assert "spikesandwav.zip" not in read_manifest(folder)
    server.mode["osf/spikesandwav.zip"] = "range"
    data = fetch_ns1(progress=False)
    assert server.requests[-1][1:] == (f"bytes={len(server.files['osf/spikesandwav.zip']) // 2}-", 206)
    assert (folder / "spikesandwav.zip").read_bytes() == server.files["osf/spikesandwav.zip"]
    np.testing.assert_array_equal(data.y[0, :, 0, 0], fx.HAND_SMOOTHED)


def test_readme_is_optional(data_home, server):
    del server.files["osf/ReadMe.rtf"]
    with pytest.warns(RuntimeWarning, match="HTTP Error 404.*continuing without ReadMe.rtf"):
        data = fetch_ns1(progress=False)
    assert data.y.shape == (3, 6, 4, 4) and not (data_home / "ns1" / "ReadMe.rtf").exists()


def test_corrupt_zip_download_leaves_nothing(data_home, server):
    good = server.files["osf/spikesandwav.zip"]
    server.files["osf/spikesandwav.zip"] = good[: len(good) // 2] + b"\x00" * (len(good) - len(good) // 2)
    with pytest.raises(DownloadError, match="spikesandwav.zip is not a valid zip archive"):
        fetch_ns1(progress=False)
    folder = data_home / "ns1"
    assert not list(folder.glob("spikesandwav*"))
    server.files["osf/spikesandwav.zip"] = good  # the next call starts over and succeeds
    assert fetch_ns1(progress=False).y.shape == (3, 6, 4, 4)


def test_changed_raw_file_fails_its_checksum(data_home, server):
    fetch_ns1(progress=False)
    folder = data_home / "ns1"
    (folder / "ns1_hanning21.h5").unlink()
    with open(folder / "test_data_5ms.mat", "ab") as fh:
        fh.write(b"\x00")
    with pytest.raises(ChecksumError, match="test_data_5ms.mat has SHA-256 .* the file changed on disk"):
        fetch_ns1(progress=False)


# --------------------------------------------------------------------------- untrusted and shared folders (issue 13)


def _other_zip() -> bytes:
    trains = fx.spike_trains()
    trains[0][0][0] = np.array([1.0, 6.0, 6.0])  # unit A, stimulus 0, repeat 0: counts 1, 2, 0...
    return fx.zip_bytes(trains)


def test_replacing_the_raw_zip_invalidates_the_cache(ns1_dir):
    first = load_ns1(ns1_dir, smooth=False)
    np.testing.assert_array_equal(first.y[0, :, 0, 0], fx.HAND_COUNTS)
    (ns1_dir / "spikesandwav.zip").write_bytes(_other_zip())
    # The old cache is not returned: it was built from another zip, which the manifest names.
    with pytest.warns(RuntimeWarning, match=r"built from other versions of \['spikesandwav.zip'\]"):
        with pytest.raises(ChecksumError, match="spikesandwav.zip has SHA-256 .* changed on disk"):
            load_ns1(ns1_dir, smooth=False)
    # Accepting the new zip (as the message says) re-extracts it and rebuilds the cache from it.
    manifest = read_manifest(ns1_dir)
    del manifest["spikesandwav.zip"]
    (ns1_dir / MANIFEST_NAME).write_text(json.dumps(manifest))
    again = load_ns1(ns1_dir, smooth=False)
    np.testing.assert_array_equal(again.y[0, :, 0, 0], [1, 2, 0, 0, 0, 0])
    np.testing.assert_array_equal(again.y[:, :, 1:], first.y[:, :, 1:])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(load_ns1(ns1_dir, smooth=False).y, again.y)


@pytest.mark.parametrize(
    "name, content, match",
    [
        ("spikesandwav.zip", b"<html>Service unavailable</html>", "spikesandwav.zip is not a valid zip archive"),
        ("spikesandwav.zip", "truncated", "spikesandwav.zip is not a valid zip archive"),
        ("spikesandwav.zip", "bad-member", "spikesandwav.zip is (a damaged|not a valid) zip archive"),
        ("test_data_5ms.mat", b"X_nfht = [1 2 3]\n", "test_data_5ms.mat is not a MATLAB file"),
    ],
)
def test_bad_file_placed_by_hand_is_clear_and_not_recorded(ns1_dir, name, content, match):
    good = (ns1_dir / name).read_bytes()
    if content == "truncated":
        content = good[: len(good) // 2]
    elif content == "bad-member":
        with zipfile.ZipFile(io.BytesIO(good)) as zf:
            info = zf.infolist()[0]
        content = bytearray(good)
        content[info.header_offset + 30 + len(info.filename) + 5] ^= 0xFF
        content = bytes(content)
    (ns1_dir / name).write_bytes(content)
    with pytest.raises(_ns1.NS1FormatError, match=match) as info:
        load_ns1(ns1_dir)
    assert "Replace it with the file from https://" in str(info.value)
    assert name not in read_manifest(ns1_dir)  # the bad file's checksum is not kept
    (ns1_dir / name).write_bytes(good)  # the good file placed afterwards is accepted
    assert load_ns1(ns1_dir, smooth=False).y[0, :, 0, 0].tolist() == fx.HAND_COUNTS.tolist()


def test_unreadable_spike_file_inside_a_valid_zip_is_a_clear_error(ns1_dir):
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO((ns1_dir / "spikesandwav.zip").read_bytes())) as src, \
            zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("unitA.mat") and not info.filename.startswith("__MACOSX"):
                data = data[:128] + b"\x78\x9c" + b"\x00" * 64  # MATLAB header, then a broken element
            dst.writestr(info.filename, data)
    (ns1_dir / "spikesandwav.zip").write_bytes(buf.getvalue())
    with pytest.raises(_ns1.NS1FormatError, match="unitA.mat could not be read as a MATLAB file"):
        load_ns1(ns1_dir)
    assert "spikesandwav.zip" not in read_manifest(ns1_dir)


def test_data_home_pointing_at_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        fetch_ns1(tmp_path / "file", download_if_missing=False)
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "ns1").write_text("x")
    with pytest.raises(NotADirectoryError, match="the NS1 folder .*ns1 is a file"):
        fetch_ns1(tmp_path / "home", download_if_missing=False)


def test_a_group_shared_folder_stays_readable_to_the_group(ns1_dir):
    old = os.umask(0o002)
    try:
        load_ns1(ns1_dir)
    finally:
        os.umask(old)
    for path in [ns1_dir / "ns1_hanning21.h5", ns1_dir / MANIFEST_NAME]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o060 == 0o060, f"{path.name} has mode {oct(mode)}"


# ------------------------------------------------------------------- every byte read is a byte checked (issue 27)


def _edited_unit_a() -> bytes:
    trains = fx.spike_trains()
    trains[0][0][0] = np.array([1.0, 6.0, 6.0])  # counts 1, 2, 0, 0, 0, 0 instead of HAND_COUNTS
    return fx._spike_file_bytes(trains[0])


def _hand_extract(folder):
    shutil.unpack_archive(folder / "spikesandwav.zip", folder)
    shutil.rmtree(folder / "__MACOSX")


def test_spike_files_are_read_from_the_checked_zip_not_from_a_folder_beside_it(ns1_dir):
    _hand_extract(ns1_dir)  # a folder beside the zip (extracted by hand, or by an older skstrf) ...
    (ns1_dir / "spikesandwav" / "SH.En.C" / "unitA.mat").write_bytes(_edited_unit_a())  # ... then edited
    data = load_ns1(ns1_dir, smooth=False)
    np.testing.assert_array_equal(data.y[0, :, 0, 0], fx.HAND_COUNTS)  # the zip's numbers
    assert not any(name.startswith("spikesandwav/") for name in read_manifest(ns1_dir))
    (ns1_dir / "ns1_counts.h5").unlink()
    np.testing.assert_array_equal(load_ns1(ns1_dir, smooth=False).y[0, :, 0, 0], fx.HAND_COUNTS)


def test_a_hand_placed_folder_is_checked_like_any_hand_placed_file(ns1_dir):
    _hand_extract(ns1_dir)
    (ns1_dir / "spikesandwav.zip").unlink()  # only the folder: its files are the source
    data = load_ns1(ns1_dir, smooth=False)
    np.testing.assert_array_equal(data.y[0, :, 0, 0], fx.HAND_COUNTS)
    manifest = read_manifest(ns1_dir)
    spike_entries = sorted(n for n in manifest if n.startswith("spikesandwav/"))
    assert spike_entries == [f"spikesandwav/{p}" for p in sorted(data.units.spike_file)]  # each file read
    (ns1_dir / "spikesandwav" / "SH.En.C" / "unitA.mat").write_bytes(_edited_unit_a())
    with pytest.raises(ChecksumError, match=r"spikesandwav/SH.En.C/unitA.mat has SHA-256 .* changed on disk"):
        load_ns1(ns1_dir, smooth=False, cache=False)
    # The cache stands for the folder it was built from: the edit makes it stale, then fails its checksum.
    with pytest.warns(RuntimeWarning, match=r"built from other versions of \['spikesandwav/'\]"):
        with pytest.raises(ChecksumError, match=r"unitA.mat has SHA-256"):
            load_ns1(ns1_dir, smooth=False)
    # Accepting the edit, as the message says, rebuilds from it.
    manifest = read_manifest(ns1_dir)
    del manifest["spikesandwav/SH.En.C/unitA.mat"]
    (ns1_dir / MANIFEST_NAME).write_text(json.dumps(manifest))
    np.testing.assert_array_equal(load_ns1(ns1_dir, smooth=False).y[0, :, 0, 0], [1, 2, 0, 0, 0, 0])


def test_a_zip_written_to_while_it_is_read_is_refused(ns1_dir, monkeypatch):
    real = _ns1._unit_counts

    def append_to_the_zip(*args, **kwargs):
        with open(ns1_dir / "spikesandwav.zip", "ab") as fh:
            fh.write(b"\x00")
        return real(*args, **kwargs)

    monkeypatch.setattr(_ns1, "_unit_counts", append_to_the_zip)
    with pytest.raises(ChecksumError, match=r"spikesandwav.zip was written to while skstrf read it"):
        load_ns1(ns1_dir)
    assert not (ns1_dir / "ns1_hanning21.h5").exists()
    assert "spikesandwav.zip" not in read_manifest(ns1_dir)  # nothing recorded from a failed read


def test_a_zip_renamed_over_after_its_check_is_not_what_is_read(ns1_dir, monkeypatch):
    checked = (ns1_dir / "spikesandwav.zip").read_bytes()
    real = _ns1._zip_members

    def swap_then_index(zf):
        (ns1_dir / "other.zip").write_bytes(_other_zip())
        os.replace(ns1_dir / "other.zip", ns1_dir / "spikesandwav.zip")  # after the hash, before the read
        return real(zf)

    monkeypatch.setattr(_ns1, "_zip_members", swap_then_index)
    data = load_ns1(ns1_dir, smooth=False)
    np.testing.assert_array_equal(data.y[0, :, 0, 0], fx.HAND_COUNTS)  # the checked zip's numbers
    assert read_manifest(ns1_dir)["spikesandwav.zip"]["sha256"] == hashlib.sha256(checked).hexdigest()
    monkeypatch.undo()
    with pytest.warns(RuntimeWarning, match=r"built from other versions of \['spikesandwav.zip'\]"):
        with pytest.raises(ChecksumError, match="spikesandwav.zip has SHA-256 .* changed on disk"):
            load_ns1(ns1_dir, smooth=False)


def test_the_cache_is_verified_before_it_is_trusted(ns1_dir):
    first = load_ns1(ns1_dir, smooth=False)
    cache = ns1_dir / "ns1_counts.h5"
    # Edited and turned into a version-1 file (no checksums), its manifest entry dropped:
    # before, the edit was recorded on first use and returned.
    with h5py.File(cache, "a") as f:
        f.attrs["format_version"] = 1
        del f.attrs["checksum"]
        y0 = f["stimuli/0/y"][()]
        del f["stimuli/0/y"]
        f["stimuli/0/y"] = y0 * 2
    manifest = read_manifest(ns1_dir)
    del manifest["ns1_counts.h5"]
    (ns1_dir / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.warns(RuntimeWarning, match="unusable .*format version 1, without checksums"):
        again = load_ns1(ns1_dir, smooth=False)
    np.testing.assert_array_equal(again.y, first.y)
    # A sound cache without a manifest entry is checked by its own checksums, then recorded.
    manifest = read_manifest(ns1_dir)
    recorded = manifest.pop("ns1_counts.h5")
    (ns1_dir / MANIFEST_NAME).write_text(json.dumps(manifest))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(load_ns1(ns1_dir, smooth=False).y, first.y)
    assert read_manifest(ns1_dir)["ns1_counts.h5"]["sha256"] == recorded["sha256"]


# ------------------------------------------------------ files that are not ours; misplaced folders (issue 27)


def _foreign_hdf5(path):
    with h5py.File(path, "w") as f:
        f["my_recording"] = np.arange(10)


def _own_dataset(path):
    from skstrf.datasets import save_dataset

    save_dataset(path, np.zeros((2, 3, 2)), np.zeros((2, 3)))


def _text(path):
    path.write_text("my notes")


@pytest.mark.parametrize("make, reason", [
    (_foreign_hdf5, r"its root attribute 'format' is None"),
    (_own_dataset, r"an skstrf dataset, but not an NS1 cache"),
    (_text, r"it is not an HDF5 file"),
])
def test_a_file_at_the_cache_name_that_skstrf_did_not_write_is_never_deleted(ns1_dir, make, reason):
    path = ns1_dir / "ns1_hanning21.h5"
    make(path)
    content = path.read_bytes()
    with pytest.raises(FileExistsError, match=rf"ns1_hanning21.h5 is in the way of the NS1 cache .*{reason}.*"
                                              r"never deletes or replaces a file it did not write"):
        load_ns1(ns1_dir)
    assert path.read_bytes() == content
    assert load_ns1(ns1_dir, cache=False).y.shape == (3, 6, 4, 4)  # the cache is not read nor written
    assert path.read_bytes() == content


def test_a_link_or_folder_at_the_cache_name_is_refused(ns1_dir):
    target = ns1_dir / "elsewhere.h5"
    _foreign_hdf5(target)
    (ns1_dir / "ns1_hanning21.h5").symlink_to(target)
    with pytest.raises(FileExistsError, match="it is a symbolic link"):
        load_ns1(ns1_dir)
    (ns1_dir / "ns1_hanning21.h5").unlink()
    (ns1_dir / "ns1_hanning21.h5").mkdir()
    with pytest.raises(FileExistsError, match="it is a folder"):
        load_ns1(ns1_dir)
    assert target.is_file() and (ns1_dir / "ns1_hanning21.h5").is_dir()


def test_a_folder_where_a_raw_file_should_be_is_refused_before_any_download(data_home, server):
    folder = data_home / "ns1"
    (folder / "MetadataSHEnCneurons.mat").mkdir(parents=True)
    expected = r"ns1/MetadataSHEnCneurons.mat is a folder, but MetadataSHEnCneurons.mat is the name of an NS1 file"
    with pytest.raises(IsADirectoryError, match=expected + ".*Move or rename"):
        fetch_ns1(progress=False)
    assert server.requests == []


def test_an_empty_folder_does_not_hide_the_zip(ns1_dir, data_home, server):
    (ns1_dir / "spikesandwav").mkdir()  # next to the zip: ignored
    np.testing.assert_array_equal(load_ns1(ns1_dir, smooth=False).y[0, :, 0, 0], fx.HAND_COUNTS)
    (data_home / "ns1" / "spikesandwav").mkdir(parents=True)  # instead of the zip: the zip is downloaded
    np.testing.assert_array_equal(fetch_ns1(smooth=False, progress=False).y[0, :, 0, 0], fx.HAND_COUNTS)
    assert ("osf/spikesandwav.zip", None, 200) in server.requests


def test_a_file_where_the_spike_folder_should_be(ns1_dir):
    (ns1_dir / "spikesandwav").write_text("not a folder")
    np.testing.assert_array_equal(load_ns1(ns1_dir, smooth=False).y[0, :, 0, 0], fx.HAND_COUNTS)  # the zip is read
    (ns1_dir / "ns1_counts.h5").unlink()
    (ns1_dir / "spikesandwav.zip").unlink()
    with pytest.raises(FileNotFoundError, match=r"\['spikesandwav.zip'\] are not in .*spikesandwav is a file, "
                                                r"not the extracted folder of spikesandwav.zip"):
        load_ns1(ns1_dir, smooth=False)


def _zip_with(extra: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(fx.zip_bytes())) as src, zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # zipfile warns of a duplicate name
            for name, content in extra.items():
                dst.writestr(name, content)
    return buf.getvalue()


def test_a_zip_where_a_file_and_a_folder_share_a_name_is_read(ns1_dir):
    # Extracting it failed with a raw FileExistsError naming a temporary folder; nothing is extracted now.
    (ns1_dir / "spikesandwav.zip").write_bytes(_zip_with({"spikesandwav/SH.En.C": b"a file named like the folder"}))
    np.testing.assert_array_equal(load_ns1(ns1_dir, smooth=False).y[0, :, 0, 0], fx.HAND_COUNTS)


def test_a_zip_holding_a_spike_file_twice_is_refused(ns1_dir):
    (ns1_dir / "spikesandwav.zip").write_bytes(_zip_with({"spikesandwav/SH.En.C/unitA.mat": _edited_unit_a()}))
    with pytest.raises(_ns1.NS1FormatError, match=r"holds 2 members named spikesandwav/SH.En.C/unitA.mat"):
        load_ns1(ns1_dir)
    assert "spikesandwav.zip" not in read_manifest(ns1_dir)
