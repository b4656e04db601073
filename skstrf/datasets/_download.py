"""Streamed, resumable, verified file downloads, safe file writing, and the checksum manifest."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import json
import os
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
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Literal

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "ChecksumError",
    "DownloadError",
    "MANIFEST_NAME",
    "atomic_writer",
    "check_recorded",
    "check_sha256",
    "download_file",
    "get_data_home",
    "open_hashed",
    "read_manifest",
    "record_sha256",
    "record_sha256s",
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
    except PermissionError as exc:
        where = Path(exc.filename).parent if exc.filename else path.parent
        raise PermissionError(
            exc.errno,
            f"{what} {path} cannot be created: you may not create folders in {where}. Give a folder you can "
            "write to (data_home=, or the environment variable SKSTRF_DATA)",
        ) from exc


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


def check_not_locked(path: Path) -> None:
    """Refuse to replace a file that another program holds under an exclusive lock.

    HDF5 (1.10 and later) takes an exclusive ``flock`` on a file opened for writing and a
    shared one on a file opened for reading. Replacing a file while a writer has it open
    would silently discard what that program writes afterwards (it writes to the old,
    unlinked file); a reader is not disturbed (it keeps reading the old file), so only
    the exclusive lock is refused. Locks are advisory: a program that takes none (or HDF5
    with ``HDF5_USE_FILE_LOCKING=FALSE``) cannot be detected; nor on systems without
    ``flock``.

    Raises
    ------
    BlockingIOError
        If ``path`` is a regular file under an exclusive lock.
    """
    if fcntl is None:
        return
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError:  # absent, a link (refused by check_destination), or unreadable: nothing to test
        return
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BlockingIOError(
                f"{path} is open for writing in another program (it holds an exclusive lock on it, as HDF5 "
                "does for a file opened for writing); replacing it now would discard what that program "
                "writes. Close the file there and try again, or write to another name"
            ) from None
        except OSError:  # a file system without flock support: nothing can be told
            return
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _cannot_write(path: Path, exc: OSError, doing: str) -> OSError:
    """The error of a failed write in ``path``'s folder, naming the folder, not a temporary file."""
    reasons = {
        errno.EACCES: "you may not create or replace files in it",
        errno.EPERM: "you may not create or replace files in it",
        errno.EROFS: "it is on a read-only file system",
        errno.ENOSPC: "its disk is full",
        getattr(errno, "EDQUOT", -1): "your disk quota there is used up",
    }
    reason = reasons.get(exc.errno, exc.strerror or str(exc))
    error = OSError(
        exc.errno,
        f"cannot {doing} {path.name} in the folder {path.parent}: {reason}. Write to a folder where you "
        "can create files, or change the folder's permissions",
    )
    return error


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, *, check: Callable[[Path], None] | None = None) -> Iterator[IO[bytes]]:
    """Write ``path`` atomically: yield a binary file object, then rename it into place.

    The data go to a new temporary file in the same folder, created exclusively
    (``O_EXCL``, so a planted link is never followed) and written only through its
    descriptor; its mode is set to ``0o666 & ~umask`` (what ``open`` would give, not
    ``mkstemp``'s 0600), it is flushed to disk and renamed over ``path``. On any error
    ``path`` is untouched and the temporary file removed.

    Replacing is a rename: a program that has the old file open keeps reading the old
    content, never a mix. A file another program holds open for writing (an exclusive
    lock, see :func:`check_not_locked`) is not replaced.

    Parameters
    ----------
    path : str or path-like
        The destination; see :func:`check_destination` for what is refused.
    check : callable, default=None
        Called with ``path`` before the temporary file is created and again just before
        the rename, to refuse what is at ``path`` (e.g. a file of another kind).

    Yields
    ------
    fh : binary file object
        Open for reading and writing (h5py can write through it).

    Raises
    ------
    OSError
        If the folder does not accept a new file (``PermissionError`` for a folder you
        may not write); the message names the folder and the destination, not the
        temporary file.
    BlockingIOError
        If another program holds ``path`` open for writing.
    """
    path = Path(path)
    check_destination(path)
    if check is not None:
        check(path)
    check_not_locked(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise _cannot_write(path, exc, "write") from exc
    try:
        with os.fdopen(fd, "w+b") as fh:
            yield fh
            fh.flush()
            os.fchmod(fh.fileno(), file_mode())
            os.fsync(fh.fileno())
            ours, now = os.fstat(fh.fileno()), os.lstat(tmp)
            if (ours.st_dev, ours.st_ino) != (now.st_dev, now.st_ino):
                raise OSError(f"the temporary file {tmp} was replaced by another process while it was written")
            check_destination(path)
            if check is not None:
                check(path)
            check_not_locked(path)
            try:
                os.replace(tmp, path)
            except OSError as exc:
                raise _cannot_write(path, exc, "replace") from exc
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
    record_sha256s(folder, {name: (sha256, path.stat().st_size)}, source=source)
    return sha256


def record_sha256s(
    folder: str | os.PathLike, entries: Mapping[str, tuple[str, int]], *, source: str | None = None
) -> None:
    """Record several files' digests in the folder's manifest with one write.

    Parameters
    ----------
    folder : str or path-like
        The dataset folder.
    entries : mapping of str to (str, int)
        File name relative to ``folder`` -> (SHA-256, size in bytes) of the content that
        was checked, so that what is recorded is what was read, not what is there now.
    source : str, default=None
        Where the files came from, as in :func:`record_sha256`.
    """
    if not entries:
        return
    folder = Path(folder)
    manifest = read_manifest(folder)
    for name, (sha256, size) in entries.items():
        manifest[name] = {"sha256": sha256, "size": int(size), "source": source or "local"}
    _write_manifest(folder, manifest)


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


def check_recorded(
    folder: str | os.PathLike, name: str, sha256: str, manifest: Mapping[str, dict] | None = None
) -> bool:
    """Compare a file's digest with the one its folder's manifest records.

    Parameters
    ----------
    folder : str or path-like
        The dataset folder.
    name : str
        File name relative to ``folder``.
    sha256 : str
        The digest of the content that was read.
    manifest : mapping, default=None
        The manifest, if already read (:func:`read_manifest`).

    Returns
    -------
    recorded : bool
        True when the manifest records ``sha256`` for ``name``, False when it has no
        entry for it.

    Raises
    ------
    ChecksumError
        If the manifest records another digest.
    """
    folder = Path(folder)
    entry = (read_manifest(folder) if manifest is None else manifest).get(name)
    if entry is None:
        return False
    if entry.get("sha256") != sha256:
        raise ChecksumError(
            f"{folder / name} has SHA-256 {sha256}, but {entry.get('sha256')} was recorded in "
            f"{folder / MANIFEST_NAME} when it was first obtained: the file changed on disk. "
            f"Delete {name} to obtain it again (download or rebuild), or delete its entry in "
            f"{MANIFEST_NAME} to accept the file as it is now."
        )
    return True


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
    if not check_recorded(folder, name, actual) and record_if_missing:
        record_sha256(folder, name, sha256=actual)
    return actual


def _stamp(st: os.stat_result) -> tuple[int, ...]:
    # Not the change time: renaming another file over the path changes the link count,
    # hence the ctime, of the open file, whose bytes stay those that were checked.
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


@contextlib.contextmanager
def open_hashed(path: str | os.PathLike) -> Iterator[tuple[IO[bytes], str]]:
    """Open a regular file, hash it through the open file, and yield it rewound with its digest.

    Whatever the caller then reads comes from the very open file that was hashed: a file
    renamed over ``path`` meanwhile is not seen, and a write into the open file while the
    block runs (its size or modification time moves) raises on leaving it. So a
    digest checked against a manifest vouches for every byte the caller parses. (A
    same-size write within one tick of the file-time clock, a few milliseconds, after the
    file's last change would go unseen: a deliberate race, not damage.)

    Parameters
    ----------
    path : str or path-like
        The file (links are followed; the target must be a regular file).

    Yields
    ------
    fh : binary file object
        Open for reading, at offset 0.
    sha256 : str
        The SHA-256 of its whole content.

    Raises
    ------
    ChecksumError
        On leaving the block, if the file was written to while it was open.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        before = os.fstat(fh.fileno())
        if not stat.S_ISREG(before.st_mode):
            raise OSError(errno.EINVAL, f"{path} is not a regular file")
        digest = hashlib.sha256()
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
        fh.seek(0)
        yield fh, digest.hexdigest()
        if _stamp(os.fstat(fh.fileno())) != _stamp(before):
            raise ChecksumError(
                f"{path} was written to while skstrf read it, so what was read is not what was checked; "
                "try again once nothing writes to it"
            )


# --------------------------------------------------------------------------- verification


def verify_file(path: str | os.PathLike | IO[bytes], kind: FileKind, *, name: str | None = None) -> None:
    """Check that a file's content is what its kind promises.

    Parameters
    ----------
    path : str, path-like or binary file object
        The file to check; an open file is read from its start and rewound afterwards.
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
    if kind not in ("mat", "zip", "hdf5", "any"):
        raise ValueError(f"unknown file kind {kind!r}; expected 'mat', 'zip', 'hdf5' or 'any'")
    if kind == "any":
        return
    if hasattr(path, "read"):
        fh = path
        name = name or str(getattr(fh, "name", "the file"))
        try:
            _verify_open(fh, kind, name)
        finally:
            fh.seek(0)
        return
    path = Path(path)
    with open(path, "rb") as fh:
        _verify_open(fh, kind, name or path.name)


def _verify_open(fh: IO[bytes], kind: FileKind, name: str) -> None:
    fh.seek(0)
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
    else:
        fh.seek(0)
        try:
            with zipfile.ZipFile(fh) as zf:
                bad = zf.testzip()
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise ValueError(f"{name} is not a valid zip archive ({exc})") from exc
        if bad is not None:
            raise ValueError(f"{name} is a damaged zip archive: member {bad!r} fails its CRC check")


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
    if dest.is_dir():
        raise IsADirectoryError(f"cannot download {url} to {dest}: a folder has that name; move or rename it")
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
    try:
        os.replace(part, dest)
    except OSError as exc:
        raise _cannot_write(dest, exc, "rename the download to") from exc
    _fsync_dir(dest.parent)
    return sha256


def _deadline_message(url: str, dest: Path, part: Path, deadline: float | None) -> str:
    kept = part.stat().st_size if part.is_file() and not part.is_symlink() else 0
    return (
        f"downloading {url} to {dest} did not finish within the deadline of {deadline:g} s "
        f"(the server is too slow or stalled); {kept} bytes are kept in {part.name} and will be "
        "resumed on the next try"
    )
