"""Tests for the download utilities, against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from ns1_fixture import FileServer, spectrogram_bytes, zip_bytes

from skstrf.datasets._download import (
    MANIFEST_NAME,
    ChecksumError,
    DownloadError,
    atomic_writer,
    check_not_locked,
    check_sha256,
    download_file,
    get_data_home,
    open_hashed,
    read_manifest,
    record_sha256,
    record_sha256s,
    verify_file,
)

BLOB = bytes(range(256)) * 40  # 10 kB, every byte value


@pytest.fixture
def server():
    files = {"blob.bin": BLOB, "data.mat": spectrogram_bytes(), "archive.zip": zip_bytes()}
    srv = FileServer({**files, "page.mat": b"<html>Not found</html>"})
    yield srv
    srv.stop()


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


def _sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def test_download_writes_file_and_returns_its_sha256(tmp_path, server):
    sha = download_file(server.url("data.mat"), tmp_path / "data.mat", kind="mat", progress=False)
    assert (tmp_path / "data.mat").read_bytes() == server.files["data.mat"]
    assert sha == _sha(server.files["data.mat"])
    assert not (tmp_path / "data.mat.part").exists()
    record_sha256(tmp_path, "data.mat", sha256=sha, source=server.url("data.mat"))
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    size = len(server.files["data.mat"])
    assert manifest["data.mat"] == {"sha256": sha, "size": size, "source": server.url("data.mat")}
    assert check_sha256(tmp_path, "data.mat") == sha


def test_progress_bar_goes_to_stderr_only_when_asked(tmp_path, server, capsys):
    download_file(server.url("blob.bin"), tmp_path / "a.bin", progress=True)
    err = capsys.readouterr().err
    assert "a.bin" in err and "10.0k" in err  # the file name and its size, 10240 B
    download_file(server.url("blob.bin"), tmp_path / "b.bin")  # stderr is not a terminal here
    assert capsys.readouterr().err == ""


def test_redirects_are_followed(tmp_path, server):
    download_file(server.url("redirect/blob.bin"), tmp_path / "blob.bin", progress=False)
    assert (tmp_path / "blob.bin").read_bytes() == BLOB
    assert [r[2] for r in server.requests] == [302, 200]


def test_partial_file_is_resumed_with_a_range_request(tmp_path, server):
    (tmp_path / "blob.bin.part").write_bytes(BLOB[:3000])
    download_file(server.url("blob.bin"), tmp_path / "blob.bin", progress=False)
    assert (tmp_path / "blob.bin").read_bytes() == BLOB
    assert server.requests == [("blob.bin", "bytes=3000-", 206)]


def test_server_ignoring_range_restarts_the_file(tmp_path, server):
    server.mode["blob.bin"] = "no-range"
    (tmp_path / "blob.bin.part").write_bytes(b"\xff" * 3000)  # must not be kept
    download_file(server.url("blob.bin"), tmp_path / "blob.bin", progress=False)
    assert (tmp_path / "blob.bin").read_bytes() == BLOB
    assert server.requests == [("blob.bin", "bytes=3000-", 200)]


def test_unsatisfiable_range_restarts_the_file(tmp_path, server):
    (tmp_path / "blob.bin.part").write_bytes(b"\x00" * (len(BLOB) + 10))  # longer than the file
    download_file(server.url("blob.bin"), tmp_path / "blob.bin", progress=False)
    assert (tmp_path / "blob.bin").read_bytes() == BLOB
    assert [r[1:] for r in server.requests] == [(f"bytes={len(BLOB) + 10}-", 416), (None, 200)]


def test_206_for_the_wrong_range_is_refused(tmp_path, server):
    server.mode["blob.bin"] = "wrong-range"
    (tmp_path / "blob.bin.part").write_bytes(BLOB[:3000])
    with pytest.raises(DownloadError, match="answered a request for bytes 3000- with the range 'bytes 0-10239/10240'"):
        download_file(server.url("blob.bin"), tmp_path / "blob.bin", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_transfer_leaves_no_final_file_then_resumes(tmp_path, server):
    server.mode["blob.bin"] = "truncate"
    with pytest.raises(DownloadError, match="received 5120 of 10240 bytes") as info:
        download_file(server.url("blob.bin"), tmp_path / "blob.bin", progress=False)
    assert server.url("blob.bin") in str(info.value)
    assert not (tmp_path / "blob.bin").exists()
    assert (tmp_path / "blob.bin.part").read_bytes() == BLOB[:5120]
    server.mode["blob.bin"] = "range"
    download_file(server.url("blob.bin"), tmp_path / "blob.bin", progress=False)
    assert (tmp_path / "blob.bin").read_bytes() == BLOB
    assert server.requests[-1] == ("blob.bin", "bytes=5120-", 206)


def test_corrupt_zip_is_rejected_and_deleted(tmp_path, server):
    good = server.files["archive.zip"]
    bad = bytearray(good)
    with zipfile.ZipFile(io.BytesIO(good)) as zf:
        info = zf.infolist()[0]
    bad[info.header_offset + 30 + len(info.filename) + 5] ^= 0xFF  # inside the first member's data
    server.files["archive.zip"] = bytes(bad)
    with pytest.raises(DownloadError, match="failed verification: archive.zip is .*(damaged|not a valid zip)"):
        download_file(server.url("archive.zip"), tmp_path / "archive.zip", kind="zip", progress=False)
    assert list(tmp_path.iterdir()) == []  # neither the final name nor a .part

    server.files["archive.zip"] = b"PK\x03\x04 truncated nonsense"
    with pytest.raises(DownloadError, match="not a valid zip archive"):
        download_file(server.url("archive.zip"), tmp_path / "archive.zip", kind="zip", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_html_page_instead_of_mat_file_is_rejected(tmp_path, server):
    with pytest.raises(DownloadError, match=r"page.mat is not a MATLAB file.*b'<html>Not found"):
        download_file(server.url("page.mat"), tmp_path / "page.mat", kind="mat", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_http_error_and_refused_connection(tmp_path, server):
    with pytest.raises(DownloadError, match="HTTPError: HTTP Error 404"):
        download_file(server.url("absent.bin"), tmp_path / "absent.bin", progress=False)
    url = server.url("blob.bin")
    server.stop()
    with pytest.raises(DownloadError, match="Connection refused") as info:
        download_file(url, tmp_path / "blob.bin", progress=False)
    assert url in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_checksum_mismatch_names_both_digests(tmp_path):
    (tmp_path / "f.bin").write_bytes(b"first")
    assert check_sha256(tmp_path, "f.bin") == _sha(b"first")  # recorded on first use
    assert read_manifest(tmp_path)["f.bin"]["sha256"] == _sha(b"first")
    (tmp_path / "f.bin").write_bytes(b"changed")
    with pytest.raises(ChecksumError) as info:
        check_sha256(tmp_path, "f.bin")
    assert _sha(b"first") in str(info.value) and _sha(b"changed") in str(info.value)
    (tmp_path / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(ChecksumError, match="manifest .* is unreadable"):
        read_manifest(tmp_path)


def test_verify_file_kinds(tmp_path):
    (tmp_path / "v5.mat").write_bytes(spectrogram_bytes())
    verify_file(tmp_path / "v5.mat", "mat")
    with h5py.File(tmp_path / "v73.mat", "w") as f:
        f["x"] = np.zeros(2)
    verify_file(tmp_path / "v73.mat", "mat")  # the HDF5 signature is accepted
    verify_file(tmp_path / "v73.mat", "hdf5")
    with pytest.raises(ValueError, match="is not an HDF5 file"):
        verify_file(tmp_path / "v5.mat", "hdf5")
    (tmp_path / "a.zip").write_bytes(zip_bytes())
    verify_file(tmp_path / "a.zip", "zip")
    with pytest.raises(ValueError, match="not a valid zip"):
        verify_file(tmp_path / "v5.mat", "zip")


def _zip(tmp_path: Path, members: dict[str, bytes]) -> Path:
    path = tmp_path / "in.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return path


def test_get_data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SKSTRF_DATA", str(tmp_path / "env"))
    assert get_data_home() == tmp_path / "env" and (tmp_path / "env").is_dir()
    assert get_data_home(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("SKSTRF_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert get_data_home() == tmp_path / "home" / "skstrf_data"


# --------------------------------------------------------------------------- untrusted folders, slow servers (issue 13)


def test_planted_part_symlink_is_never_written_through(tmp_path, server):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    (tmp_path / "blob.bin.part").symlink_to(victim)
    with pytest.raises(DownloadError, match=r"blob.bin.part is a symbolic link .*never writes through"):
        download_file(server.url("blob.bin"), tmp_path / "blob.bin", progress=False)
    assert victim.read_bytes() == b"precious" and not (tmp_path / "blob.bin").exists()
    assert server.requests == []  # refused before any network traffic


def test_part_replaced_by_a_symlink_mid_way_is_not_followed(tmp_path, server, monkeypatch):
    from skstrf.datasets import _download

    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    (tmp_path / "blob.bin.part").write_bytes(BLOB[:3000])
    real_part_size = _download._part_size

    def swap_after_check(part):  # the race: checked as a file, then swapped for a link
        size = real_part_size(part)
        part.unlink()
        part.symlink_to(victim)
        return size

    monkeypatch.setattr(_download, "_part_size", swap_after_check)
    with pytest.raises(DownloadError):
        download_file(server.url("blob.bin"), tmp_path / "blob.bin", progress=False)
    assert victim.read_bytes() == b"precious"


@pytest.mark.parametrize("mode", ["trickle", "trickle-headers"])
def test_deadline_bounds_a_trickling_server(tmp_path, server, mode):
    import time

    server.mode["blob.bin"] = mode
    start = time.monotonic()
    with pytest.raises(DownloadError, match="did not finish within the deadline of 0.6 s"):
        download_file(server.url("blob.bin"), tmp_path / "blob.bin", progress=False, timeout=30, deadline=0.6)
    assert time.monotonic() - start < 2.5  # far below the 30 s per-read timeout and the 5 s trickle
    assert not (tmp_path / "blob.bin").exists()
    if mode == "trickle":  # what arrived is kept for the next call to resume
        assert 0 < (tmp_path / "blob.bin.part").stat().st_size < len(BLOB)


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_downloads_and_manifest_get_the_umask_permissions(tmp_path, server, umask):
    import os
    import stat

    old = os.umask(umask)
    try:
        download_file(server.url("blob.bin"), tmp_path / "blob.bin", progress=False)
        record_sha256(tmp_path, "blob.bin")
        record_sha256(tmp_path, "blob.bin")  # rewriting the manifest keeps the mode
        for name in ("blob.bin", MANIFEST_NAME):
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask
    finally:
        os.umask(old)


def test_manifest_symlink_is_not_written_through(tmp_path):
    victim = tmp_path / "victim.json"
    victim.write_bytes(b"{}")
    (tmp_path / MANIFEST_NAME).symlink_to(victim)
    (tmp_path / "f.bin").write_bytes(b"x")
    with pytest.raises(ValueError, match="symbolic link"):
        record_sha256(tmp_path, "f.bin", sha256="0" * 64)
    assert victim.read_bytes() == b"{}"


def test_data_home_pointing_at_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="data_home .*file is a file, not a folder"):
        get_data_home(tmp_path / "file")
    with pytest.raises(NotADirectoryError, match="cannot be created"):
        get_data_home(tmp_path / "file" / "below")


# ------------------------------------------------------------------ what is read is what was checked (issue 27)


def test_open_hashed_reads_the_file_it_hashed_even_when_another_is_renamed_over_it(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"checked content")
    with open_hashed(path) as (fh, sha):
        (tmp_path / "other").write_bytes(b"swapped in")
        os.replace(tmp_path / "other", path)  # how editors and downloads replace files
        assert fh.read() == b"checked content"
    assert sha == _sha(b"checked content")


def test_open_hashed_detects_a_write_into_the_open_file(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"checked content")
    os.utime(path, ns=(0, 0))  # file times tick coarsely: make the write's new mtime certain to differ
    with pytest.raises(ChecksumError, match=r"f.bin was written to while skstrf read it"):
        with open_hashed(path) as (fh, _):
            fh.read()
            with open(path, "r+b") as out:  # same inode, same size: only the times move
                out.write(b"C")


def test_verify_file_checks_an_open_file_and_rewinds_it(tmp_path):
    path = _zip(tmp_path, {"a.mat": b"a" * 100})
    with open(path, "rb") as fh:
        verify_file(fh, "zip", name="in.zip")
        assert fh.tell() == 0
        with pytest.raises(ValueError, match="in.zip is not a MATLAB file"):
            verify_file(fh, "mat", name="in.zip")
        assert fh.tell() == 0


def test_record_sha256s_records_what_was_read_in_one_write(tmp_path):
    record_sha256s(tmp_path, {"a.bin": ("0" * 64, 3), "sub/b.bin": ("1" * 64, 4)}, source="local")
    assert read_manifest(tmp_path) == {
        "a.bin": {"sha256": "0" * 64, "size": 3, "source": "local"},
        "sub/b.bin": {"sha256": "1" * 64, "size": 4, "source": "local"},
    }


def test_download_onto_a_folder_name_is_refused_before_any_traffic(tmp_path, server):
    (tmp_path / "blob.bin").mkdir()
    with pytest.raises(IsADirectoryError, match=r"blob.bin: a folder has that name; move or rename it"):
        download_file(server.url("blob.bin"), tmp_path / "blob.bin", progress=False)
    assert server.requests == []


# ------------------------------------------------------------------- unwritable folders, locked files (issue 27)


def test_unwritable_folder_is_named_not_the_temporary_file(tmp_path, monkeypatch):
    def denied(*args, dir=None, prefix="", suffix="", **kwargs):
        raise PermissionError(13, "Permission denied", os.path.join(dir, prefix + "k3j2x" + suffix))

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(PermissionError) as info:
        record_sha256s(tmp_path, {"a.bin": ("0" * 64, 1)})
    message = str(info.value)
    assert f"cannot write {MANIFEST_NAME} in the folder {tmp_path}: you may not create or replace files" in message
    assert ".tmp" not in message and "k3j2x" not in message


@pytest.mark.skipif(_writes_into_read_only_folders(), reason="this process (root) writes into read-only folders")
def test_read_only_folder_for_real(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(PermissionError, match=r"cannot write x.bin in the folder .*ro: you may not create"):
            with atomic_writer(folder / "x.bin") as fh:
                fh.write(b"x")
    finally:
        folder.chmod(0o755)
    assert list(folder.iterdir()) == []


def test_a_file_locked_for_writing_is_not_replaced_but_a_read_one_is(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what HDF5 holds for a writer
        with pytest.raises(BlockingIOError, match=r"f.bin is open for writing in another program"):
            check_not_locked(path)
        with pytest.raises(BlockingIOError):
            with atomic_writer(path) as fh:
                fh.write(b"new")
        assert path.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]
        fcntl.flock(fd, fcntl.LOCK_SH)  # what HDF5 holds for a reader: replacing is fine
        with atomic_writer(path) as fh:
            fh.write(b"new")
        assert path.read_bytes() == b"new" and os.pread(fd, 3, 0) == b"old"  # the reader keeps the old file
    finally:
        os.close(fd)
