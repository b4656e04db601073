"""Streamed, resumable, verified file downloads and the checksum manifest used by the fetchers."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import IO, Literal

__all__ = [
    "ChecksumError",
    "DownloadError",
    "MANIFEST_NAME",
    "check_sha256",
    "download_file",
    "extract_zip",
    "get_data_home",
    "read_manifest",
    "record_sha256",
    "sha256sum",
    "verify_file",
]

MANIFEST_NAME = "skstrf_checksums.json"
"""File name of the JSON manifest of SHA-256 sums kept in each dataset folder."""

FileKind = Literal["mat", "zip", "hdf5", "any"]

_MAT_SIGNATURES = (b"MATLAB 5.0 MAT-file", b"MATLAB 7.3 MAT-file")
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_CHUNK_SIZE = 1 << 16


class DownloadError(OSError):
    """A file could not be downloaded, or what arrived failed verification."""


class ChecksumError(OSError):
    """A file's SHA-256 differs from the one recorded when it was first obtained."""


def get_data_home(data_home: str | os.PathLike | None = None) -> Path:
    """Return the folder where skstrf keeps downloaded datasets, creating it.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder to use. When None, the environment variable ``SKSTRF_DATA`` is used if
        set, otherwise ``~/skstrf_data``.

    Returns
    -------
    path : pathlib.Path
        The absolute, existing folder.
    """
    if data_home is None:
        data_home = os.environ.get("SKSTRF_DATA") or Path("~") / "skstrf_data"
    path = Path(data_home).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


# --------------------------------------------------------------------------- checksums


def sha256sum(path: str | os.PathLike) -> str:
    """Return the hexadecimal SHA-256 of a file, read in chunks.

    Parameters
    ----------
    path : str or path-like
        The file to hash.

    Returns
    -------
    digest : str
        64 lowercase hexadecimal characters.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(folder: str | os.PathLike) -> dict[str, dict]:
    """Return the checksum manifest of a dataset folder (empty when there is none).

    Parameters
    ----------
    folder : str or path-like
        The dataset folder holding ``skstrf_checksums.json``.

    Returns
    -------
    manifest : dict
        Maps a file name (relative to ``folder``) to ``{"sha256": ..., "size": ...,
        "source": ...}``.
    """
    path = Path(folder) / MANIFEST_NAME
    if not path.exists():
        return {}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ChecksumError(
            f"the checksum manifest {path} is unreadable ({exc}); delete it so that "
            "checksums are recorded again on the next load"
        ) from exc
    if not isinstance(manifest, dict):
        raise ChecksumError(f"the checksum manifest {path} should hold a JSON object, got {type(manifest).__name__}")
    return manifest


def _write_manifest(folder: Path, manifest: dict[str, dict]) -> None:
    text = json.dumps(manifest, indent=2, sort_keys=True)
    _atomic_write_bytes(folder / MANIFEST_NAME, text.encode("utf-8"))


def record_sha256(
    folder: str | os.PathLike, name: str, *, sha256: str | None = None, source: str | None = None
) -> str:
    """Record (or overwrite) the SHA-256 of ``folder/name`` in the folder's manifest.

    Parameters
    ----------
    folder : str or path-like
        The dataset folder.
    name : str
        File name relative to ``folder``.
    sha256 : str, default=None
        The digest if already known; computed from the file otherwise.
    source : str, default=None
        Where the file came from (a URL, or ``"local"``), kept for the user's information.

    Returns
    -------
    sha256 : str
        The recorded digest.
    """
    folder = Path(folder)
    path = folder / name
    if sha256 is None:
        sha256 = sha256sum(path)
    manifest = read_manifest(folder)
    manifest[name] = {"sha256": sha256, "size": path.stat().st_size, "source": source or "local"}
    _write_manifest(folder, manifest)
    return sha256


def forget_sha256(folder: str | os.PathLike, name: str) -> None:
    """Remove a file's entry from the folder's manifest (no-op when absent).

    Parameters
    ----------
    folder : str or path-like
        The dataset folder.
    name : str
        File name relative to ``folder``.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest.pop(name, None) is not None:
        _write_manifest(folder, manifest)


def check_sha256(folder: str | os.PathLike, name: str, *, record_if_missing: bool = True) -> str:
    """Check ``folder/name`` against the SHA-256 recorded in the manifest.

    A file without an entry is trusted on first use: its digest is recorded (when
    ``record_if_missing``) so that any later change is detected.

    Parameters
    ----------
    folder : str or path-like
        The dataset folder.
    name : str
        File name relative to ``folder``.
    record_if_missing : bool, default=True
        Record the digest of a file that has no entry yet.

    Returns
    -------
    sha256 : str
        The file's digest.

    Raises
    ------
    ChecksumError
        If the file's digest differs from the recorded one.
    """
    folder = Path(folder)
    actual = sha256sum(folder / name)
    entry = read_manifest(folder).get(name)
    if entry is None:
        if record_if_missing:
            record_sha256(folder, name, sha256=actual)
        return actual
    if entry.get("sha256") != actual:
        raise ChecksumError(
            f"{folder / name} has SHA-256 {actual}, but {entry.get('sha256')} was recorded in "
            f"{folder / MANIFEST_NAME} when it was first obtained: the file changed on disk. "
            f"Delete {name} to obtain it again (download or rebuild), or delete its entry in "
            f"{MANIFEST_NAME} to accept the file as it is now."
        )
    return actual


# --------------------------------------------------------------------------- verification


def verify_file(path: str | os.PathLike, kind: FileKind, *, name: str | None = None) -> None:
    """Check that a file's content is what its kind promises.

    Parameters
    ----------
    path : str or path-like
        The file to check.
    kind : {"mat", "zip", "hdf5", "any"}
        ``"mat"``: starts with a MATLAB 5.0/7.3 header or the HDF5 signature;
        ``"zip"``: a readable zip archive whose members all pass their CRC check;
        ``"hdf5"``: starts with the HDF5 signature; ``"any"``: not checked.
    name : str, default=None
        File name used in error messages (defaults to the path's name).

    Raises
    ------
    ValueError
        If the content does not match ``kind`` (the message says what was found).
    """
    path = Path(path)
    name = name or path.name
    if kind == "any":
        return
    with open(path, "rb") as fh:
        head = fh.read(len(_MAT_SIGNATURES[0]))
    if kind == "mat":
        if not (head.startswith(_MAT_SIGNATURES) or head.startswith(_HDF5_SIGNATURE)):
            raise ValueError(
                f"{name} is not a MATLAB file: expected it to start with "
                f"'MATLAB 5.0 MAT-file' or the HDF5 signature, got {head!r}"
            )
    elif kind == "hdf5":
        if not head.startswith(_HDF5_SIGNATURE):
            raise ValueError(f"{name} is not an HDF5 file: it starts with {head!r}")
    elif kind == "zip":
        try:
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise ValueError(f"{name} is not a valid zip archive ({exc})") from exc
        if bad is not None:
            raise ValueError(f"{name} is a damaged zip archive: member {bad!r} fails its CRC check")
    else:
        raise ValueError(f"unknown file kind {kind!r}; expected 'mat', 'zip', 'hdf5' or 'any'")


# --------------------------------------------------------------------------- download


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not possible on every platform, hence best effort.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _parse_content_range(value: str | None) -> tuple[int, int | None] | None:
    """Return (first byte, total size or None) from a ``Content-Range`` header."""
    if not value or not value.startswith("bytes "):
        return None
    try:
        span, total = value[len("bytes ") :].split("/")
        first = int(span.split("-")[0])
    except ValueError:
        return None
    return first, (None if total.strip() == "*" else int(total))


def _open(url: str, offset: int, timeout: float):
    request = urllib.request.Request(url, headers={"User-Agent": "skstrf (python urllib)"})
    if offset > 0:
        request.add_header("Range", f"bytes={offset}-")
    return urllib.request.urlopen(request, timeout=timeout)


def _progress_bar(total: int | None, initial: int, name: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=name,
        file=sys.stderr,
        disable=not enabled,
        leave=False,
    )


def _stream(response, out: IO[bytes], bar, chunk_size: int) -> int:
    written = 0
    while True:
        block = response.read(chunk_size)
        if not block:
            return written
        out.write(block)
        written += len(block)
        bar.update(len(block))


def download_file(
    url: str,
    dest: str | os.PathLike,
    *,
    kind: FileKind = "any",
    progress: bool | None = None,
    timeout: float = 60.0,
    chunk_size: int = _CHUNK_SIZE,
) -> str:
    """Download ``url`` to ``dest`` without ever leaving a partial file under ``dest``.

    The body is streamed to ``dest`` + ``".part"``, flushed to disk, checked (size
    against ``Content-Length``/``Content-Range``, then content against ``kind``), and
    only then renamed to ``dest``. A ``.part`` left by an interrupted transfer is
    resumed with an HTTP ``Range`` request; a server that answers 200 instead of 206
    restarts the file from scratch.

    Parameters
    ----------
    url : str
        The address to fetch (redirects are followed).
    dest : str or path-like
        Final file path; its folder must exist.
    kind : {"mat", "zip", "hdf5", "any"}, default="any"
        Content check applied before the rename, see :func:`verify_file`.
    progress : bool, default=None
        Show a tqdm progress bar on stderr. None shows it when stderr is a terminal.
    timeout : float, default=60.0
        Seconds to wait for the connection and for each read.
    chunk_size : int, default=65536
        Bytes read per chunk.

    Returns
    -------
    sha256 : str
        Hexadecimal SHA-256 of the downloaded file.

    Raises
    ------
    DownloadError
        On a network or HTTP error, an incomplete body (the ``.part`` is kept so the
        next call resumes it), or content that fails verification (the ``.part`` is
        deleted). ``dest`` is never created in these cases.
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    if progress is None:
        progress = sys.stderr.isatty()
    offset = part.stat().st_size if part.exists() else 0
    try:
        try:
            response = _open(url, offset, timeout)
        except urllib.error.HTTPError as exc:
            if exc.code != 416 or offset == 0:
                raise
            # The server cannot serve our range (stale or already-complete .part):
            # the only safe move is to start over.
            exc.close()
            part.unlink(missing_ok=True)
            offset = 0
            response = _open(url, offset, timeout)
        with response:
            content_range = _parse_content_range(response.headers.get("Content-Range"))
            length = response.headers.get("Content-Length")
            length = int(length) if length is not None and length.isdigit() else None
            if response.status == 206 and (content_range is None or content_range[0] != offset):
                part.unlink(missing_ok=True)
                raise DownloadError(
                    f"{url} answered a request for bytes {offset}- with the range "
                    f"{response.headers.get('Content-Range')!r}; the partial file was deleted, try again"
                )
            if response.status == 206:
                mode, expected = "ab", content_range[1]
                if expected is None and length is not None:
                    expected = offset + length
            else:
                mode, offset = "wb", 0
                expected = length
            with open(part, mode) as out, _progress_bar(expected, offset, dest.name, progress) as bar:
                _stream(response, out, bar, chunk_size)
                out.flush()
                os.fsync(out.fileno())
    except DownloadError:
        raise
    except (OSError, http.client.HTTPException, ValueError) as exc:
        # OSError covers URLError/HTTPError, refused connections and timeouts;
        # HTTPException covers IncompleteRead on chunked bodies; ValueError a bad URL.
        raise DownloadError(f"downloading {url} to {dest} failed: {type(exc).__name__}: {exc}") from exc

    size = part.stat().st_size
    if expected is not None and size > expected:
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"downloading {url} to {dest} gave {size} bytes, more than the {expected} announced; "
            "the partial file was deleted, try again"
        )
    if expected is not None and size != expected:
        # Keep the .part: the next call resumes it with a Range request.
        raise DownloadError(
            f"downloading {url} to {dest} was interrupted: received {size} of {expected} bytes; "
            f"the partial file {part.name} was kept and will be resumed on the next try"
        )
    try:
        verify_file(part, kind, name=dest.name)
    except ValueError as exc:
        part.unlink(missing_ok=True)
        raise DownloadError(f"the file downloaded from {url} failed verification: {exc}; it was deleted") from exc
    sha256 = sha256sum(part)
    os.replace(part, dest)
    _fsync_dir(dest.parent)
    return sha256


# --------------------------------------------------------------------------- unzip


def _safe_member_path(name: str) -> PurePosixPath | None:
    """Return a member's relative path, None for entries to skip; raise on traversal."""
    normalised = name.replace("\\", "/")
    path = PurePosixPath(normalised)
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise ValueError(f"zip member {name!r} points outside the extraction folder; refusing to extract")
    if not path.parts or path.parts[0] == "__MACOSX":
        return None
    return path


def extract_zip(zip_path: str | os.PathLike, dest_dir: str | os.PathLike) -> Path:
    """Extract a zip archive to ``dest_dir`` atomically.

    Members are written to a temporary folder next to ``dest_dir``, which is renamed
    to ``dest_dir`` only when every member is out, so ``dest_dir`` either does not
    exist or is complete. When the archive holds a single top-level folder named like
    ``dest_dir`` (``spikesandwav.zip`` holding ``spikesandwav/...``), that folder
    becomes ``dest_dir`` rather than being nested inside it. ``__MACOSX`` entries are
    skipped.

    Parameters
    ----------
    zip_path : str or path-like
        The archive.
    dest_dir : str or path-like
        The folder to create; must not exist yet.

    Returns
    -------
    dest_dir : pathlib.Path
        The extracted folder.

    Raises
    ------
    ValueError
        If a member name is absolute or climbs out with ``..`` (nothing is extracted).
    FileExistsError
        If ``dest_dir`` already exists.
    """
    dest_dir = Path(dest_dir)
    if dest_dir.exists():
        raise FileExistsError(f"{dest_dir} already exists; remove it to extract {Path(zip_path).name} again")
    with zipfile.ZipFile(zip_path) as zf:
        members = [(info, _safe_member_path(info.filename)) for info in zf.infolist()]
        members = [(info, rel) for info, rel in members if rel is not None]
        tmp = Path(tempfile.mkdtemp(dir=dest_dir.parent, prefix=f".{dest_dir.name}-", suffix=".tmp"))
        try:
            for info, rel in members:
                target = tmp.joinpath(*rel.parts)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
            entries = list(tmp.iterdir())
            root = tmp
            if len(entries) == 1 and entries[0].is_dir() and entries[0].name == dest_dir.name:
                root = entries[0]
            os.replace(root, dest_dir)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    _fsync_dir(dest_dir.parent)
    return dest_dir
