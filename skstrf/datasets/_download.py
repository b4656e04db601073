"""Streamed, resumable, verified file downloads, safe file writing, and the checksum manifest."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import json
import os
import shutil
import socket
import stat
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Iterator
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
_DEFAULT_DEADLINE_S = 3600.0
_UMASK_LOCK = threading.Lock()


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
    ensure_folder(path, "data_home")
    return path


def ensure_folder(path: Path, what: str) -> None:
    """Create the folder ``path`` (and its parents) unless it exists; refuse a file there."""
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{what} {path} is a file, not a folder; give a folder for skstrf's datasets")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:  # a file somewhere above it
        raise NotADirectoryError(f"{what} {path} cannot be created: {exc}") from exc


# --------------------------------------------------------------------------- safe writing


def _umask() -> int:
    """The process umask, read without changing it where the system allows.

    ``os.umask`` can only be read by setting it, which races with other threads creating
    files; Linux shows it in ``/proc/self/status``. The fallback sets a restrictive mask
    for that instant, so a concurrent file is at worst created too private, never too open.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def file_mode() -> int:
    """Permission bits of a new file under the current umask (``0o666 & ~umask``)."""
    return 0o666 & ~_umask()


def check_destination(path: Path) -> None:
    """Refuse to write ``path`` when its folder is missing, or it is a folder or a symbolic link.

    skstrf never writes through a symbolic link: in a shared folder a link planted under
    the expected name could redirect the write to any file the user can write.
    """
    parent = path.parent
    if not parent.is_dir():
        what = "is not a folder" if parent.exists() else "does not exist"
        raise FileNotFoundError(f"cannot write {path}: the folder {parent} {what}")
    if path.is_symlink():
        raise ValueError(
            f"{path} is a symbolic link (to {os.readlink(path)}); skstrf does not write through links. "
            "Write to the link's target, or remove the link first"
        )
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is a folder")


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """Write ``path`` atomically: yield a binary file object, then rename it into place.

    The data go to a new temporary file in the same folder, created exclusively
    (``O_EXCL``, so a planted link is never followed) and written only through its
    descriptor; its mode is set to ``0o666 & ~umask`` (what ``open`` would give, not
    ``mkstemp``'s 0600), it is flushed to disk and renamed over ``path``. On any error
    ``path`` is untouched and the temporary file removed.

    Parameters
    ----------
    path : str or path-like
        The destination; see :func:`check_destination` for what is refused.

    Yields
    ------
    fh : binary file object
        Open for reading and writing (h5py can write through it).
    """
    path = Path(path)
    check_destination(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w+b") as fh:
            yield fh
            fh.flush()
            os.fchmod(fh.fileno(), file_mode())
            os.fsync(fh.fileno())
            ours, now = os.fstat(fh.fileno()), os.lstat(tmp)
            if (ours.st_dev, ours.st_ino) != (now.st_dev, now.st_ino):
                raise OSError(f"the temporary file {tmp} was replaced by another process while it was written")
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


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
    with atomic_writer(path) as fh:
        fh.write(data)


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


class _Deadline:
    """Wall-clock limit of one download: shuts the connection's sockets when it passes.

    A socket timeout bounds each read, not the transfer: a server sending a byte now and
    then (in the body or in the headers) keeps a plain urllib call alive indefinitely.
    A timer thread closes every socket the transfer opened once ``seconds`` have passed,
    which wakes any read blocked in them.
    """

    def __init__(self, seconds: float | None):
        self.seconds = seconds
        self.end = None if seconds is None else time.monotonic() + seconds
        self.expired = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = None if seconds is None else threading.Timer(seconds, self._fire)
        if self._timer is not None:
            self._timer.daemon = True
            self._timer.start()

    def remaining(self, cap: float) -> float:
        if self.end is None:
            return cap
        left = self.end - time.monotonic()
        if left <= 0:
            self._fire()
            raise TimeoutError(f"the deadline of {self.seconds:g} s passed")
        return min(cap, left)

    def register(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
        if self.expired.is_set():
            self._shut(sock)

    def _fire(self) -> None:
        self.expired.set()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


def _opener(deadline: _Deadline) -> urllib.request.OpenerDirector:
    """A urllib opener whose HTTP(S) connections register their socket with ``deadline``."""

    def watched(http_class):
        class Watched(http_class):
            def connect(self) -> None:
                super().connect()
                deadline.register(self.sock)

        return Watched

    class HTTPHandler(urllib.request.HTTPHandler):
        def do_open(self, http_class, req, **kwargs):
            return super().do_open(watched(http_class), req, **kwargs)

    class HTTPSHandler(urllib.request.HTTPSHandler):
        def do_open(self, http_class, req, **kwargs):
            return super().do_open(watched(http_class), req, **kwargs)

    return urllib.request.build_opener(HTTPHandler, HTTPSHandler)


def _open(url: str, offset: int, timeout: float, deadline: _Deadline):
    request = urllib.request.Request(url, headers={"User-Agent": "skstrf (python urllib)"})
    if offset > 0:
        request.add_header("Range", f"bytes={offset}-")
    return _opener(deadline).open(request, timeout=deadline.remaining(timeout))


def _part_size(part: Path) -> int:
    """Size of a ``.part`` left by an earlier call (0 when none); refuse anything but a plain file."""
    try:
        st = os.lstat(part)
    except FileNotFoundError:
        return 0
    if stat.S_ISLNK(st.st_mode):
        raise DownloadError(
            f"{part} is a symbolic link (to {os.readlink(part)}); skstrf never writes through a link "
            "there (it could append the download to another file). Delete it and try again"
        )
    if not stat.S_ISREG(st.st_mode):
        raise DownloadError(f"{part} exists but is not a regular file; delete it and try again")
    return st.st_size


def _open_part(part: Path, append: bool) -> IO[bytes]:
    """Open the ``.part`` file for the body, never following a link planted at its name.

    A fresh start removes whatever is there (``unlink`` removes a link, not its target)
    and creates the file exclusively; a resume appends with ``O_NOFOLLOW``.
    """
    flags = os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    if append:
        flags |= os.O_APPEND
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(part)
        flags |= os.O_CREAT | os.O_EXCL
    try:
        fd = os.open(part, flags, 0o666)  # the umask applies, as for any new file
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EEXIST):
            raise DownloadError(f"{part} was replaced by a link or another file during the download") from exc
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise DownloadError(f"{part} is not a regular file; delete it and try again")
    return os.fdopen(fd, "ab" if append else "wb")


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


def _stream(response, out: IO[bytes], bar, chunk_size: int, deadline: _Deadline) -> int:
    written = 0
    while True:
        # read1 returns what has arrived; read(n) would wait for n bytes of a trickle.
        block = response.read1(chunk_size)
        if not block:
            return written
        out.write(block)
        written += len(block)
        bar.update(len(block))
        deadline.remaining(0.0)  # raises once the deadline has passed


def download_file(
    url: str,
    dest: str | os.PathLike,
    *,
    kind: FileKind = "any",
    progress: bool | None = None,
    timeout: float = 60.0,
    deadline: float | None = _DEFAULT_DEADLINE_S,
    chunk_size: int = _CHUNK_SIZE,
) -> str:
    """Download ``url`` to ``dest`` without ever leaving a partial file under ``dest``.

    The body is streamed to ``dest`` + ``".part"``, flushed to disk, checked (size
    against ``Content-Length``/``Content-Range``, then content against ``kind``), and
    only then renamed to ``dest``. A ``.part`` left by an interrupted transfer is
    resumed with an HTTP ``Range`` request; a server that answers 200 instead of 206
    restarts the file from scratch. A symbolic link (or anything but a plain file) at
    the ``.part`` name is refused, never written through.

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
    deadline : float or None, default=3600.0
        Seconds the whole call may take (connection, headers, redirects and body). When
        it passes, the connection is closed and :class:`DownloadError` raised; what
        arrived is kept in the ``.part`` and resumed by the next call. None: no limit
        beyond ``timeout`` per read.
    chunk_size : int, default=65536
        Bytes read per chunk.

    Returns
    -------
    sha256 : str
        Hexadecimal SHA-256 of the downloaded file.

    Raises
    ------
    DownloadError
        On a network or HTTP error, an incomplete body or a passed deadline (the
        ``.part`` is kept so the next call resumes it), content that fails verification
        (the ``.part`` is deleted), or a link at the ``.part`` name. ``dest`` is never
        created in these cases.
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    if deadline is not None and not deadline > 0:
        raise ValueError(f"deadline must be a positive number of seconds or None, got {deadline!r}")
    if progress is None:
        progress = sys.stderr.isatty()
    offset = _part_size(part)
    limit = _Deadline(deadline)
    expected = None
    try:
        try:
            response = _open(url, offset, timeout, limit)
        except urllib.error.HTTPError as exc:
            if exc.code != 416 or offset == 0:
                raise
            # The server cannot serve our range (stale or already-complete .part):
            # the only safe move is to start over.
            exc.close()
            part.unlink(missing_ok=True)
            offset = 0
            response = _open(url, offset, timeout, limit)
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
                append, expected = True, content_range[1]
                if expected is None and length is not None:
                    expected = offset + length
            else:
                append, offset = False, 0
                expected = length
            with _open_part(part, append) as out, _progress_bar(expected, offset, dest.name, progress) as bar:
                try:
                    _stream(response, out, bar, chunk_size, limit)
                finally:
                    out.flush()
                    os.fsync(out.fileno())
    except DownloadError:
        raise
    except (OSError, http.client.HTTPException, ValueError) as exc:
        # OSError covers URLError/HTTPError, refused connections and timeouts;
        # HTTPException covers IncompleteRead on chunked bodies; ValueError a bad URL.
        if limit.expired.is_set():
            raise DownloadError(_deadline_message(url, dest, part, deadline)) from exc
        raise DownloadError(f"downloading {url} to {dest} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        limit.cancel()
    if limit.expired.is_set():  # the socket was closed under a read that then saw a clean end
        raise DownloadError(_deadline_message(url, dest, part, deadline))

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


def _deadline_message(url: str, dest: Path, part: Path, deadline: float | None) -> str:
    kept = part.stat().st_size if part.is_file() and not part.is_symlink() else 0
    return (
        f"downloading {url} to {dest} did not finish within the deadline of {deadline:g} s "
        f"(the server is too slow or stalled); {kept} bytes are kept in {part.name} and will be "
        "resumed on the next try"
    )


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
        If a member name is absolute or climbs out with ``..``, or the archive or a
        member is damaged (nothing is extracted).
    FileExistsError
        If ``dest_dir`` already exists.
    """
    dest_dir = Path(dest_dir)
    if dest_dir.exists() or dest_dir.is_symlink():
        raise FileExistsError(f"{dest_dir} already exists; remove it to extract {Path(zip_path).name} again")
    try:
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
                # Private (mkdtemp's 0700) while filled; then what mkdir would have made.
                os.chmod(root, 0o777 & ~_umask())
                os.replace(root, dest_dir)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise ValueError(
            f"{Path(zip_path).name} is a damaged zip archive ({type(exc).__name__}: {exc}); nothing was extracted"
        ) from exc
    _fsync_dir(dest_dir.parent)
    return dest_dir
