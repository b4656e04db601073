"""The skstrf HDF5 dataset format: ragged stimuli, missing repeats and metadata, read eagerly or lazily."""

from __future__ import annotations

import hashlib
import itertools
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Literal

import h5py
import numpy as np
from sklearn.utils import Bunch

from ._download import atomic_writer, check_destination, check_not_locked

__all__ = ["DatasetFormatError", "FORMAT_NAME", "FORMAT_VERSION", "LazyDataset", "is_dataset_file", "load_dataset",
           "load_dataset_from", "save_dataset", "save_stimuli"]

FORMAT_NAME = "skstrf-dataset"
"""Value of the root attribute ``format`` of every file this module writes."""

FORMAT_VERSION = 2
"""Value of the root attribute ``format_version`` written; readers refuse newer versions.

Version 2 adds the integrity checksums (a ``sha256`` attribute on every dataset and a
``checksum`` root attribute); version 1 files (no checksums) are still read.
"""

_STR = h5py.string_dtype("utf-8")
_MAX_DEPTH = 32  # groups nested deeper than this are refused (no recursion blow-up)
_INT64 = np.iinfo(np.int64)
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


class DatasetFormatError(ValueError):
    """A file is not a readable skstrf dataset (not HDF5, foreign, newer, or damaged)."""


# --------------------------------------------------------------------------- validation


def _as_real_array(a: Any, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")
    return a


def _stimulus_view(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """Return X as (S, T, F), y with a leading stimulus axis, and the layout name."""
    if X.ndim not in (2, 3):
        raise ValueError(
            f"X has {X.ndim} dimensions with shape {X.shape}; expected 2 (n_times, n_freqs) "
            "or 3 (n_stimuli, n_times, n_freqs)"
        )
    if y.ndim - X.ndim not in (-1, 0, 1):
        raise ValueError(
            f"y has {y.ndim} dimensions but X has {X.ndim}; expected {X.ndim - 1}, {X.ndim} or "
            f"{X.ndim + 1} (X's {'stimuli, ' if X.ndim == 3 else ''}frames, then optionally "
            "neurons and repeats)"
        )
    layout = "stimuli" if X.ndim == 3 else "recording"
    if layout == "recording":
        X, y = X[None], y[None]
    if y.shape[:2] != X.shape[:2]:
        if layout == "recording":
            raise ValueError(f"y has {y.shape[1]} frames but X has {X.shape[1]}; expected the same n_times")
        raise ValueError(
            f"y's leading axes {y.shape[:2]} differ from X's {X.shape[:2]}; expected the same "
            "(n_stimuli, n_times)"
        )
    return X, y, layout


def _valid_lengths(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Return the number of valid frames of each stimulus, checking the NaN rules.

    Parameters
    ----------
    X : ndarray of shape (n_stimuli, n_times, n_freqs)
    y : ndarray of shape (n_stimuli, n_times) or (n_stimuli, n_times, n_neurons) or
        (n_stimuli, n_times, n_neurons, n_repeats)

    Returns
    -------
    lengths : ndarray of shape (n_stimuli,)
    """
    n_stimuli, n_times = X.shape[:2]
    x_nan = np.isnan(X) if X.dtype.kind == "f" else np.zeros(X.shape, bool)
    padded = x_nan.all(axis=2)
    lengths = n_times - padded.sum(axis=1)
    in_range = np.arange(n_times)[None, :] < lengths[:, None]
    bad = np.flatnonzero((padded == in_range).any(axis=1))
    if bad.size:
        raise ValueError(
            f"stimulus {bad[0]} of X has all-NaN frames before valid ones; padding must be "
            "whole frames at the end of each stimulus"
        )
    if (lengths == 0).any():
        raise ValueError(f"stimulus {np.flatnonzero(lengths == 0)[0]} of X has no valid frame")
    partial = x_nan.any(axis=2) & in_range
    if partial.any():
        s, t = np.argwhere(partial)[0]
        raise ValueError(f"X[{s}, {t}] has NaN in some but not all frequencies; NaN is only allowed as end padding")

    y_nan = np.isnan(y) if y.dtype.kind == "f" else np.zeros(y.shape, bool)
    tail = (slice(None), slice(None)) + (None,) * (y.ndim - 2)
    if not y_nan[~in_range].all():
        raise ValueError("y has values in frames where X is end padding; those frames of y must be NaN")
    if y.ndim < 4:
        if (y_nan & in_range[tail]).any():
            s, t = np.argwhere((y_nan & in_range[tail]).reshape(n_stimuli, n_times, -1).any(axis=2))[0]
            raise ValueError(f"y[{s}, {t}] is NaN inside a valid frame; without a repeats axis y may not hold NaN")
    else:
        # A missing repeat is NaN over all valid frames of its stimulus, never in part.
        nan_counts = (y_nan & in_range[tail]).sum(axis=1)
        partial = (nan_counts != 0) & (nan_counts != lengths[:, None, None])
        if partial.any():
            s, n, r = np.argwhere(partial)[0]
            raise ValueError(
                f"y[{s}, :, {n}, {r}] is NaN in some valid frames only; a missing repeat must be "
                "NaN over all valid frames of its stimulus"
            )
    return lengths


def _check_names(names: Any, expected: int, what: str) -> np.ndarray | None:
    if names is None:
        return None
    items = _as_objects(names)
    if items.shape != (expected,):
        raise ValueError(f"{what} must have shape ({expected},), got {items.shape}")
    _check_no_nul(items, what)
    return np.asarray(names).astype(str)


def _as_objects(values: Any) -> np.ndarray:
    """``values`` as an object array holding the caller's own items.

    ``np.asarray(["a\x00"])`` gives ``"a"``: NumPy's fixed-width strings drop trailing NUL
    characters, so a check made after that conversion cannot see them. (A NumPy string
    array the caller built has already lost them; its items are what it holds.)
    """
    if isinstance(values, np.ndarray):
        return values.astype(object)
    return np.asarray(values, dtype=object)


def _check_no_nul(strings: Any, what: str) -> None:
    # HDF5 strings end at the first NUL: such a string would come back cut short. Run on
    # the caller's items (see _as_objects), before any conversion to a NumPy string dtype.
    strings = _as_objects(strings)
    for i, text in enumerate(strings.ravel()):
        if isinstance(text, (str, bytes)) and ("\x00" in text if isinstance(text, str) else b"\x00" in text):
            where = f"{what}[{i}]" if strings.ndim else what
            raise ValueError(
                f"{where} = {text!r} contains a NUL character, which HDF5 strings cannot hold (the "
                "string would come back cut at it); remove it or replace it, e.g. with text.replace('\\x00', '')"
            )


def _check_splits(splits: Mapping[str, Any] | None, n_stimuli: int) -> dict[str, np.ndarray]:
    """Check named stimulus-index sets: 1-D, whole numbers, in range, no repeats.

    Used on the way in (``save_dataset``) and on the way out (``load_dataset``). Whole
    numbers stored as floats (MATLAB's default) are accepted; 0.5 is not.
    """
    out = {}
    for key, idx in (splits or {}).items():
        _check_key(key)
        idx = np.asarray(idx)
        if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iuf"):
            raise ValueError(f"split {key!r} must be a 1-D array of stimulus indices, got {idx.dtype} {idx.shape}")
        if idx.dtype.kind == "f":
            if not (np.isfinite(idx).all() and (idx == np.round(idx)).all()):
                raise ValueError(f"split {key!r} holds non-integer indices {idx[idx != np.round(idx)][:3]}")
        if idx.size and (idx.min() < 0 or idx.max() >= n_stimuli):
            bad = idx[(idx < 0) | (idx >= n_stimuli)]
            raise ValueError(f"split {key!r} holds indices {bad[:3].tolist()} outside [0, {n_stimuli})")
        idx = idx.astype(np.int64)
        if np.unique(idx).size != idx.size:
            raise ValueError(f"split {key!r} lists a stimulus more than once")
        out[key] = idx
    return out


def _check_key(key: Any) -> None:
    if not isinstance(key, str) or not key or "/" in key or "\x00" in key or key in (".", ".."):
        raise ValueError(f"metadata and split names must be non-empty strings without '/' or NUL, got {key!r}")


# --------------------------------------------------------------------------- metadata


def _encode(key: str, value: Any) -> dict | tuple[str, Any, Any]:
    """Turn one metadata value into ``(type tag, data, dtype)``, or a dict of those.

    Run over all metadata before the file is opened, so that a bad value fails early.
    """
    _check_key(key)
    if isinstance(value, Mapping):
        return {k: _encode(k, v) for k, v in value.items()}
    if value is None:
        return "none", h5py.Empty("f"), None
    if isinstance(value, (bool, np.bool_)):
        return "bool", np.bool_(value), None
    if isinstance(value, (int, np.integer)):
        if not _INT64.min <= int(value) <= _INT64.max:
            raise ValueError(
                f"metadata {key!r} = {value} does not fit in a 64-bit integer; store it as a float or a string"
            )
        return "int", np.int64(value), None
    if isinstance(value, (float, np.floating)):
        return "float", np.float64(value), None
    if isinstance(value, str):
        _check_no_nul(value, f"metadata {key!r}")
        return "str", value, _STR
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(
            f"metadata {key!r} is {type(value).__name__}; decode it to str, or store the bytes as "
            "a uint8 array (np.frombuffer(value, np.uint8))"
        )
    if isinstance(value, (np.ndarray, Sequence)):
        arr = value if isinstance(value, np.ndarray) else _list_to_array(key, value)
        if arr.dtype.kind in "US" or (arr.dtype.kind == "O" and all(isinstance(v, str) for v in arr.ravel())):
            _check_no_nul(value, f"metadata {key!r}")  # the caller's items, before NumPy trims them
            strings = arr.astype(str).astype(object)
            return "ndarray", strings, _STR
        if arr.dtype.kind in "biuf":
            return "ndarray", arr, None
        raise TypeError(f"metadata {key!r}: an array of dtype {arr.dtype} cannot be stored; use numbers or strings")
    raise TypeError(
        f"metadata {key!r} is a {type(value).__name__}; expected str, bool, int, float, None, "
        "a numeric or string array/list, or a dict of those"
    )


def _list_to_array(key: str, value: Sequence) -> np.ndarray:
    # np.asarray would silently turn ["a", 1] into strings: insist on one kind.
    flat = np.asarray(value, dtype=object).ravel()
    if flat.size and all(isinstance(v, str) for v in flat):
        return np.asarray(value, dtype=str)
    if all(isinstance(v, (bool, int, float, np.number, np.bool_)) for v in flat):
        return np.asarray(value)
    raise TypeError(f"metadata {key!r}: a list must hold only numbers or only strings, got {value!r}")


def _write_encoded(group: h5py.Group, key: str, encoded: dict | tuple[str, Any, Any]) -> None:
    """Store an encoded value, tagging its Python type so it reads back the same."""
    if isinstance(encoded, dict):
        sub = group.create_group(key, track_order=True)
        sub.attrs["type"] = "dict"
        for k, v in encoded.items():
            _write_encoded(sub, k, v)
        return
    kind, data, dtype = encoded
    ds = _put(group, key, data, dtype=dtype)
    ds.attrs["type"] = kind


# --------------------------------------------------------------------------- integrity


def _digest(value: Any) -> str:
    """SHA-256 of a dataset's or attribute's value in a canonical form.

    Covers the dtype (byte order normalised), the shape and the content; strings are
    hashed as their UTF-8 bytes, so a value written as ``str`` and read back as ``bytes``
    gives the same digest.
    """
    h = hashlib.sha256()
    if value is None or isinstance(value, h5py.Empty):
        h.update(b"empty")
        return h.hexdigest()
    if isinstance(value, (bytes, str)):
        value = np.array(value, dtype=object)
    a = np.asarray(value)
    if a.dtype.kind in "USO":
        h.update(f"str{a.shape}".encode())
        for v in a.ravel():
            b = bytes(v) if isinstance(v, bytes) else str(v).encode("utf-8", "surrogatepass")
            h.update(len(b).to_bytes(8, "little"))
            h.update(b)
    else:
        dtype = a.dtype.newbyteorder("<")
        h.update(f"{dtype.str}{a.shape}".encode())
        h.update(np.ascontiguousarray(a, dtype=dtype).tobytes())
    return h.hexdigest()


def _put(group: h5py.Group, key: str, data: Any, dtype: Any = None, **filters: Any) -> h5py.Dataset:
    """Create a dataset with its ``sha256`` attribute (format version 2)."""
    ds = group.create_dataset(key, data=data, dtype=dtype, **filters)
    ds.attrs["sha256"] = _digest(data)
    return ds


def _read_data(ds: h5py.Dataset, verify: bool) -> Any:
    """Read a whole dataset, checking it against its ``sha256`` attribute when ``verify``."""
    try:
        value = ds[()]
    except (OSError, ValueError, TypeError, RuntimeError) as exc:
        raise DatasetFormatError(f"dataset {ds.name} cannot be read: {exc}") from exc
    if verify:
        expected, actual = _attr(ds, "sha256", None), _digest(value)
        if actual != expected:
            raise DatasetFormatError(
                f"dataset {ds.name} fails its integrity check: its content has SHA-256 {actual}, "
                f"but {expected!r} was recorded when the file was written; the file was damaged "
                "or changed since"
            )
    return value


def _walk(f: h5py.File, source: Path | str) -> str:
    """Check every object of the file; return the digest of its structure and attributes.

    Refuses what could make reading the file touch anything but the file itself, or
    never end: external and soft links, datasets with external storage, virtual
    datasets, a group reached twice (a hard-link cycle), nesting deeper than
    ``_MAX_DEPTH``, and datasets that declare more data than they store (unwritten
    chunks or storage: reading them would allocate memory the file never held).

    The digest covers every object's path, kind, shape, dtype and attributes (the root's
    ``checksum`` excepted); each dataset's content is covered by its own ``sha256``
    attribute, checked when it is read.
    """
    lines: list[str] = []
    seen: set[tuple[int, int]] = set()

    def attrs_line(obj: h5py.HLObject, skip: str | None) -> str:
        parts = []
        for name in sorted(obj.attrs):
            if name != skip:
                parts.append(f"{name}={_digest(obj.attrs[name])}")
        return " ".join(parts)

    def visit(group: h5py.Group, path: str, depth: int) -> None:
        info = h5py.h5o.get_info(group.id)
        key = (info.fileno, info.addr)
        if key in seen:
            raise DatasetFormatError(
                f"{source}: the group {path} is linked from two places (a hard-link cycle or a "
                "shared group); skstrf datasets are trees"
            )
        seen.add(key)
        if depth > _MAX_DEPTH:
            raise DatasetFormatError(f"{source}: groups are nested deeper than {_MAX_DEPTH} levels at {path}")
        lines.append(f"G {path} {attrs_line(group, 'checksum' if path == '/' else None)}")
        for name in sorted(group):
            child = path.rstrip("/") + "/" + name
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise DatasetFormatError(
                    f"{source}: {child} is an external link (to {link.filename!r}); skstrf datasets "
                    "never read other files"
                )
            if not isinstance(link, h5py.HardLink):
                raise DatasetFormatError(
                    f"{source}: {child} is a {type(link).__name__}; skstrf datasets hold only plain (hard) links"
                )
            obj = group[name]
            if isinstance(obj, h5py.Group):
                visit(obj, child, depth + 1)
            elif isinstance(obj, h5py.Dataset):
                _check_dataset_storage(obj, child, source)
                lines.append(f"D {child} {obj.shape} {obj.dtype.str} {attrs_line(obj, None)}")
            else:
                raise DatasetFormatError(f"{source}: {child} is a {type(obj).__name__}, not a group or dataset")

    visit(f, "/", 0)
    return "sha256:" + hashlib.sha256("\n".join(lines).encode("utf-8", "surrogatepass")).hexdigest()


def _check_dataset_storage(ds: h5py.Dataset, path: str, source: Path | str) -> None:
    if ds.is_virtual:
        raise DatasetFormatError(f"{source}: {path} is a virtual dataset (it maps other files); refused")
    if ds.external:
        raise DatasetFormatError(
            f"{source}: {path} keeps its data in external file(s) {[e[0] for e in ds.external]}; "
            "skstrf datasets never read other files"
        )
    if ds.shape is None or ds.size == 0:
        return
    declared = ds.size * ds.dtype.itemsize
    if ds.chunks is None:
        stored = ds.id.get_storage_size()
        complete = stored >= declared
    else:
        n_chunks = math.prod(-(-n // c) for n, c in zip(ds.shape, ds.chunks, strict=True))
        stored = ds.id.get_num_chunks()
        complete = stored >= n_chunks
        stored = f"{stored} of its {n_chunks} chunks"
    if not complete:
        raise DatasetFormatError(
            f"{source}: {path} declares shape {ds.shape} ({declared} bytes) but stores {stored}"
            f"{' bytes' if ds.chunks is None else ''}: part of it was never written (damaged or hostile file)"
        )


# --------------------------------------------------------------------------- reading values


def _read_strings(ds: h5py.Dataset, verify: bool) -> np.ndarray:
    if h5py.check_string_dtype(ds.dtype) is None and ds.dtype.kind not in "SO":
        raise DatasetFormatError(f"dataset {ds.name} should hold strings, got dtype {ds.dtype}")
    values = np.asarray(_read_data(ds, verify), dtype=object)
    decoded = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values.ravel()]
    return np.array(decoded, dtype=str).reshape(values.shape)


def _read_value(node: h5py.Group | h5py.Dataset, verify: bool) -> Any:
    # Recursion is safe: _walk refused cycles and deep nesting before anything is read.
    if isinstance(node, h5py.Group):
        return {key: _read_value(node[key], verify) for key in node}
    kind = _attr(node, "type", None)
    is_str = h5py.check_string_dtype(node.dtype) is not None or node.dtype.kind == "S"
    if kind == "none" or node.shape is None:
        return None
    if kind == "str" or (is_str and node.shape == ()):
        return str(_read_strings(node, verify)[()])
    if is_str:
        return _read_strings(node, verify)
    value = _read_data(node, verify)
    if kind == "bool":
        return bool(value)
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    # Untagged values come from other tools: give scalars as Python numbers.
    return value.item() if kind is None and np.ndim(value) == 0 else value


# --------------------------------------------------------------------------- writing


def save_dataset(
    path: str | os.PathLike,
    X: Any,
    y: Any,
    *,
    dt_ms: float | None = None,
    freqs: Any = None,
    stimulus_names: Any = None,
    neuron_names: Any = None,
    splits: Mapping[str, Any] | None = None,
    compression: str | None = None,
    overwrite: bool | Literal["dataset"] = "dataset",
    **metadata: Any,
) -> Path:
    """Write stimuli and responses to an skstrf HDF5 dataset file, atomically.

    Each stimulus is stored at its own valid length (end padding is not written), so
    ragged stimuli cost no space, and can be read back one at a time with
    ``load_dataset(path, lazy=True)``. The layout is documented in the user guide
    ("The skstrf HDF5 format").

    Parameters
    ----------
    path : str or path-like
        File to write (``~`` is expanded), written to a temporary file in the same folder
        and renamed into place, with the permissions a new file gets under the umask.
        Its folder must exist; a symbolic link at ``path`` is refused (skstrf does not
        write through links). What may already be there is set by ``overwrite``.
    X : ndarray of shape (n_stimuli, n_times, n_freqs) or (n_times, n_freqs)
        Stimulus spectrograms; stimuli shorter than ``n_times`` are NaN-padded at the
        end with whole frames.
    y : ndarray of shape (n_stimuli, n_times, n_neurons, n_repeats), \
(n_stimuli, n_times, n_neurons) or (n_stimuli, n_times)
        Responses in the same layout as X (without the stimulus axis for a single
        recording). NaN in the padding frames of X; a missing repeat is NaN over all
        valid frames of its stimulus.
    dt_ms : float, default=None
        Frame duration in milliseconds.
    freqs : array-like of shape (n_freqs,), default=None
        Centre frequency of each band (e.g. in Hz).
    stimulus_names : array-like of str of shape (n_stimuli,), default=None
        One name per stimulus.
    neuron_names : array-like of str of shape (n_neurons,), default=None
        One name per neuron.
    splits : dict of str to array-like of int, default=None
        Named sets of stimulus indices, e.g. ``{"train": [...], "test": [...]}``.
    compression : {"gzip", "lzf"} or None, default=None
        HDF5 filter applied to X and y (with the byte-shuffle filter).
    overwrite : {"dataset", True, False}, default="dataset"
        What to do with a file already at ``path``. ``"dataset"``: replace it when it is
        an skstrf dataset (its root attribute ``format`` says so), refuse anything else
        (your other files are never replaced by mistake); True: replace any regular
        file; False: refuse any existing file. Replacing is an atomic rename: a program
        reading the old file keeps reading the old content. A file another program holds
        open for writing (HDF5's exclusive lock) is never replaced.
    **metadata
        Free metadata: str, bool, int, float, None, numeric or string arrays and
        lists (read back as arrays), and dicts of these (nested).

    Returns
    -------
    path : pathlib.Path
        The written file.

    Raises
    ------
    ValueError, TypeError
        If the data, names, splits or metadata break the format's rules (checked before
        anything is written). Strings may not contain NUL characters.
    FileNotFoundError, IsADirectoryError
        If the folder is missing, or ``path`` is a folder.
    FileExistsError
        If a file at ``path`` may not be replaced (see ``overwrite``).
    BlockingIOError
        If another program holds the file at ``path`` open for writing.
    PermissionError
        If the folder does not let you create files (the message names the folder).
    """
    path = _check_target(path, overwrite)
    X = _as_real_array(X, "X")
    y = _as_real_array(y, "y")
    X3, y3, layout = _stimulus_view(X, y)
    lengths = _valid_lengths(X3, y3)
    n_neurons = y3.shape[2] if y3.ndim > 2 else 1
    header = _header(X3.shape[0], X3.shape[2], n_neurons, dt_ms, freqs, stimulus_names, neuron_names,
                     splits, metadata)
    pieces = ((X3[i, :length], y3[i, :length]) for i, length in enumerate(lengths))
    return _write_file(path, layout, header, pieces, compression, overwrite)


def save_stimuli(
    path: str | os.PathLike,
    stimuli: Iterable[tuple[Any, Any]],
    *,
    n_stimuli: int,
    dt_ms: float | None = None,
    freqs: Any = None,
    stimulus_names: Any = None,
    neuron_names: Any = None,
    splits: Mapping[str, Any] | None = None,
    compression: str | None = None,
    overwrite: bool | Literal["dataset"] = "dataset",
    **metadata: Any,
) -> Path:
    """Write an skstrf HDF5 dataset one stimulus at a time, atomically.

    The file is the one :func:`save_dataset` writes for the same stimuli (layout
    ``"stimuli"``), but the data never need to be in memory at once: ``stimuli`` may be a
    generator that computes or reads each stimulus when it is asked for (data larger than
    memory; read them back with ``load_dataset(path, lazy=True)``).

    Parameters
    ----------
    path : str or path-like
        File to write, as in :func:`save_dataset` (written to a temporary file in the
        same folder, renamed into place only when every stimulus was written).
    stimuli : iterable of (X_i, y_i)
        ``X_i`` of shape (n_times_i, n_freqs) and ``y_i`` of shape (n_times_i,),
        (n_times_i, n_neurons) or (n_times_i, n_neurons, n_repeats): one stimulus each,
        with the rules of :func:`save_dataset` (end padding, if any, is NaN and is not
        stored; a missing repeat is NaN over all valid frames). All stimuli share
        ``n_freqs`` and y's trailing shape.
    n_stimuli : int
        Number of stimuli ``stimuli`` yields (names and splits are checked against it
        before anything is written).
    dt_ms, freqs, stimulus_names, neuron_names, splits, compression, overwrite, **metadata
        As in :func:`save_dataset`.

    Returns
    -------
    path : pathlib.Path
        The written file.

    Raises
    ------
    ValueError, TypeError
        If a stimulus breaks the format's rules or differs from the first in its number
        of bands or y's trailing shape, or ``stimuli`` yields other than ``n_stimuli``
        stimuli; the file is then not written.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from skstrf.datasets import save_stimuli, load_dataset
    >>> rng = np.random.default_rng(0)
    >>> pieces = ((rng.normal(size=(50, 4)), rng.normal(size=(50, 3))) for _ in range(5))
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = save_stimuli(os.path.join(folder, "data.h5"), pieces, n_stimuli=5)
    ...     with load_dataset(path, lazy=True) as ds:
    ...         print(len(ds), ds.n_freqs, ds.y_tail)
    5 4 (3,)
    """
    path = _check_target(path, overwrite)
    if isinstance(n_stimuli, (bool, np.bool_)) or not isinstance(n_stimuli, (int, np.integer)) or n_stimuli < 1:
        raise ValueError(f"n_stimuli must be a whole number >= 1, got {n_stimuli!r}")
    n_stimuli = int(n_stimuli)
    pieces = _checked_pieces(iter(stimuli), n_stimuli)
    first = next(pieces)
    n_neurons = first[1].shape[1] if first[1].ndim > 1 else 1
    header = _header(n_stimuli, first[0].shape[1], n_neurons, dt_ms, freqs, stimulus_names, neuron_names,
                     splits, metadata)
    return _write_file(path, "stimuli", header, itertools.chain([first], pieces), compression, overwrite)


def _checked_pieces(stimuli: Iterator[tuple[Any, Any]], n_stimuli: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The stimuli of :func:`save_stimuli`, each checked and cut to its valid frames."""
    shapes = None
    count = 0
    for count, item in enumerate(stimuli, start=1):
        if count > n_stimuli:
            raise ValueError(f"stimuli yields more than n_stimuli={n_stimuli} stimuli")
        try:
            X_i, y_i = item
        except (TypeError, ValueError) as exc:
            raise ValueError(f"stimulus {count - 1} is not a pair (X_i, y_i): {exc}") from exc
        X_i, y_i = _as_real_array(X_i, "X_i"), _as_real_array(y_i, "y_i")
        if X_i.ndim != 2 or y_i.ndim not in (1, 2, 3):
            raise ValueError(
                f"stimulus {count - 1} has X_i of shape {X_i.shape} and y_i of shape {y_i.shape}; expected "
                "X_i (n_times, n_freqs) and y_i (n_times[, n_neurons[, n_repeats]])"
            )
        if shapes is None:
            shapes = X_i.shape[1], y_i.shape[1:]
        if (X_i.shape[1], y_i.shape[1:]) != shapes:
            raise ValueError(
                f"stimulus {count - 1} has X_i of shape {X_i.shape} and y_i of shape {y_i.shape}; expected "
                f"{shapes[0]} bands and y_i's trailing shape {shapes[1]} like stimulus 0"
            )
        try:
            (length,) = _valid_lengths(*_stimulus_view(X_i[None], y_i[None])[:2])
        except ValueError as exc:
            raise ValueError(f"stimulus {count - 1}: {exc}") from exc
        yield X_i[:length], y_i[:length]
    if count != n_stimuli:
        raise ValueError(f"stimuli yielded {count} stimuli, but n_stimuli={n_stimuli}")


def _header(n_stimuli: int, n_freqs: int, n_neurons: int, dt_ms: Any, freqs: Any, stimulus_names: Any,
            neuron_names: Any, splits: Mapping[str, Any] | None, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Check the small items of a dataset (before anything is written) and return them."""
    if dt_ms is not None and not (np.isscalar(dt_ms) and np.isreal(dt_ms) and 0 < float(dt_ms) < np.inf):
        raise ValueError(f"dt_ms must be a positive number of milliseconds, got {dt_ms!r}")
    if freqs is not None:
        freqs = _as_real_array(freqs, "freqs")
        if freqs.shape != (n_freqs,):
            raise ValueError(f"freqs must have shape ({n_freqs},) like X's last axis, got {freqs.shape}")
    return dict(
        n_stimuli=n_stimuli,
        dt_ms=dt_ms,
        freqs=freqs,
        stimulus_names=_check_names(stimulus_names, n_stimuli, "stimulus_names"),
        neuron_names=_check_names(neuron_names, n_neurons, "neuron_names"),
        splits=_check_splits(splits, n_stimuli),
        encoded={key: _encode(key, value) for key, value in metadata.items()},
    )


def _check_target(path: str | os.PathLike, overwrite: Any) -> Path:
    """Check the destination of a save before any work: ``overwrite``, the folder, a link,
    a folder or a locked file at ``path``, and what an existing file is. Returns the path."""
    if not (isinstance(overwrite, (bool, np.bool_)) or (isinstance(overwrite, str) and overwrite == "dataset")):
        raise ValueError(f"overwrite must be True, False or 'dataset', got {overwrite!r}")
    path = Path(path).expanduser()
    check_destination(path)
    check_not_locked(path)
    _replace_rule(overwrite)(path)
    return path


def _replace_rule(overwrite: bool | str) -> Any:
    """The check :func:`atomic_writer` runs on what is at the destination (see ``overwrite``)."""

    def check(path: Path) -> None:
        if not os.path.lexists(path) or path.is_symlink() or path.is_dir():
            return  # nothing there, or what check_destination refuses in its own words
        if overwrite is True or overwrite is np.True_:
            return
        if overwrite is False or overwrite is np.False_:
            raise FileExistsError(
                f"{path} exists and overwrite=False; pass overwrite=True (or 'dataset') to replace it, "
                "or write to another name"
            )
        reason = is_dataset_file(path)
        if reason is not None:
            raise FileExistsError(
                f"{path} exists and is not an skstrf dataset ({reason}); skstrf replaces only its own "
                "dataset files unless told to. Write to another name, move the file away, or pass "
                "overwrite=True to replace it"
            )

    return check


def _write_file(path: Path, layout: str, header: dict[str, Any], pieces: Iterable[tuple[np.ndarray, np.ndarray]],
                compression: str | None, overwrite: bool | str) -> Path:
    """Write the dataset file atomically: ``header`` from :func:`_header`, then each
    stimulus's valid frames ``(X_i, y_i)`` from ``pieces`` as they come."""
    filters = {"compression": compression, "shuffle": True} if compression else {}
    with atomic_writer(path, check=_replace_rule(overwrite)) as fh, h5py.File(fh, "w") as f:
        f.attrs["format"] = FORMAT_NAME
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["layout"] = layout
        f.attrs["n_stimuli"] = header["n_stimuli"]
        if header["dt_ms"] is not None:
            f.attrs["dt_ms"] = float(header["dt_ms"])
        stimuli = f.create_group("stimuli")
        for i, (X_i, y_i) in enumerate(pieces):
            g = stimuli.create_group(str(i))
            _put(g, "X", X_i, **filters)
            _put(g, "y", y_i, **filters)
        if header["freqs"] is not None:
            _put(f, "freqs", header["freqs"])
        for key in ("stimulus_names", "neuron_names"):
            if header[key] is not None:
                _put(f, key, header[key].astype(object), dtype=_STR)
        split_group = f.create_group("splits", track_order=True)
        for key, idx in header["splits"].items():
            _put(split_group, key, idx)
        meta = f.create_group("metadata", track_order=True)
        for key, value in header["encoded"].items():
            _write_encoded(meta, key, value)
        f.attrs["checksum"] = _walk(f, path)
    return path


# --------------------------------------------------------------------------- reading


class LazyDataset:
    """An open skstrf dataset file whose stimuli are read one at a time.

    Returned by ``load_dataset(path, lazy=True)``. Small items (names, frequencies,
    splits, metadata) are read at once; X and y of a stimulus are read only when it is
    indexed. Use as a context manager, or call :meth:`close`.

    Attributes
    ----------
    path : pathlib.Path
        The file.
    layout : {"stimuli", "recording"}
        ``"recording"`` when the file was saved from a single 2-D X.
    lengths : ndarray of shape (n_stimuli,)
        Valid frames of each stimulus.
    n_freqs : int
        Frequency bands of X.
    y_tail : tuple of int
        Shape of y after the frame axis: ``()``, ``(n_neurons,)`` or
        ``(n_neurons, n_repeats)``.
    dt_ms : float or None
    freqs : ndarray of shape (n_freqs,) or None
    stimulus_names : ndarray of str of shape (n_stimuli,) or None
    neuron_names : ndarray of str of shape (n_neurons,) or None
    splits : dict of str to ndarray of int
    metadata : dict
    format_version : int
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).expanduser()
        self._attach(_open_checked(self.path))

    def _attach(self, file: h5py.File) -> None:
        """Take ``file`` (open, format attributes checked) and read its header, or close it."""
        self._file = file
        try:
            self._read_header()
        except DatasetFormatError:
            self._file.close()
            raise
        except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
            self._file.close()
            raise DatasetFormatError(f"{self.path} is a damaged skstrf dataset: {exc}") from exc

    def _read_header(self) -> None:
        """Check the whole file, then read its small items; nothing is sized from a header
        value before it is checked against what the file stores."""
        f, source = self._file, self.path
        self.format_version = int(_attr(f, "format_version"))
        checksum = _walk(f, source)  # refuses links, external/virtual data, cycles, unwritten data
        self.layout = str(_attr(f, "layout", "stimuli"))
        if self.layout not in ("stimuli", "recording"):
            raise DatasetFormatError(f"{source}: unknown layout {self.layout!r}")
        stimuli = _child(f, "stimuli", h5py.Group, source)
        if stimuli is None:
            raise DatasetFormatError(f"{source} has no 'stimuli' group")
        n_stimuli = _count_attr(f, "n_stimuli", source)
        if self.layout == "recording" and n_stimuli != 1:
            raise DatasetFormatError(f"{source}: layout 'recording' needs exactly 1 stimulus, got {n_stimuli}")
        self._stimuli = []
        for i in range(n_stimuli):
            g = _child(stimuli, str(i), h5py.Group, source)
            if g is None:
                raise DatasetFormatError(
                    f"{source}: stimulus {i} of {n_stimuli} is missing (the 'stimuli' group holds "
                    f"{len(stimuli)} entries; expected 0 to {n_stimuli - 1})"
                )
            x_ds, y_ds = _child(g, "X", h5py.Dataset, source), _child(g, "y", h5py.Dataset, source)
            if x_ds is None or y_ds is None:
                raise DatasetFormatError(f"{source}: stimulus {i} of {n_stimuli} is missing (or lacks X or y)")
            for name, ds, ndims in (("X", x_ds, (2,)), ("y", y_ds, (1, 2, 3))):
                if ds.shape is None or len(ds.shape) not in ndims or ds.dtype.kind not in "fiub":
                    raise DatasetFormatError(
                        f"{source}: stimulus {i} has {name} of shape {ds.shape} and dtype {ds.dtype}; "
                        f"expected real numbers with {' or '.join(map(str, ndims))} dimension(s)"
                    )
            self._stimuli.append((x_ds, y_ds))
        # The loop stops at the first missing stimulus, so a huge n_stimuli costs nothing.
        if len(stimuli) != n_stimuli:
            raise DatasetFormatError(
                f"{source}: the attribute n_stimuli is {n_stimuli} but the 'stimuli' group holds "
                f"{len(stimuli)} entries; they must agree"
            )
        x_shapes = [x.shape for x, _ in self._stimuli]
        y_shapes = [yy.shape for _, yy in self._stimuli]
        self.lengths = np.array([s[0] for s in x_shapes], dtype=np.int64)
        self.n_freqs = int(x_shapes[0][1])
        self.y_tail = tuple(int(d) for d in y_shapes[0][1:])
        for i, (xs, ys) in enumerate(zip(x_shapes, y_shapes, strict=True)):
            if xs[1] != self.n_freqs or ys[0] != xs[0] or ys[1:] != self.y_tail:
                raise DatasetFormatError(
                    f"{source}: stimulus {i} has X {xs} and y {ys}; expected X (n_times, {self.n_freqs}) "
                    f"and y (n_times, *{self.y_tail}) with the same n_times"
                )
        if (self.lengths == 0).any() or self.n_freqs == 0 or 0 in self.y_tail:
            raise DatasetFormatError(f"{source}: a stimulus has no frame, no band, or no neuron/repeat")
        # Structural damage is reported above in its own words; anything else changed is caught here.
        self._verify = verify = self.format_version >= 2
        if verify and _attr(f, "checksum", None) != checksum:
            raise DatasetFormatError(
                f"{source} fails its integrity check: its structure or attributes differ from "
                f"when it was written (checksum {checksum}, recorded {_attr(f, 'checksum', None)!r})"
            )
        self.dt_ms = None
        if "dt_ms" in f.attrs:
            dt_ms = _attr(f, "dt_ms")
            if isinstance(dt_ms, bool) or not isinstance(dt_ms, (int, float)) or not 0 < dt_ms < np.inf:
                raise DatasetFormatError(
                    f"{source}: the attribute dt_ms is {dt_ms!r}; expected a positive number of ms"
                )
            self.dt_ms = float(dt_ms)
        self.freqs = None
        if (ds := _child(f, "freqs", h5py.Dataset, source)) is not None:
            self.freqs = _read_data(ds, verify)
            if self.freqs.shape != (self.n_freqs,) or self.freqs.dtype.kind not in "fiu":
                raise DatasetFormatError(
                    f"{source}: freqs has shape {self.freqs.shape} and dtype {self.freqs.dtype}; "
                    f"expected ({self.n_freqs},) real numbers, one per band of X"
                )
        n_neurons = self.y_tail[0] if self.y_tail else 1
        for key, expected in (("stimulus_names", n_stimuli), ("neuron_names", n_neurons)):
            ds = _child(f, key, h5py.Dataset, source)
            setattr(self, key, None if ds is None else _check_names(_read_strings(ds, verify), expected, key))
        self.splits = {}
        if (group := _child(f, "splits", h5py.Group, source)) is not None:
            raw = {}
            for key in group:
                ds = _child(group, key, h5py.Dataset, source)
                raw[key] = _read_data(ds, verify)
            self.splits = _check_splits(raw, n_stimuli)
        meta = _child(f, "metadata", h5py.Group, source)
        self.metadata = {} if meta is None else _read_value(meta, verify)

    def __len__(self) -> int:
        return len(self._stimuli)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(X_i, y_i)`` of stimulus ``index`` at its valid length.

        Returns
        -------
        X_i : ndarray of shape (n_times_i, n_freqs)
        y_i : ndarray of shape (n_times_i, *y_tail)
        """
        if not isinstance(index, (int, np.integer)):
            raise TypeError(f"stimulus index must be an integer, got {type(index).__name__}")
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"stimulus index {index} out of range for {n} stimuli")
        x_ds, y_ds = self._stimuli[int(index) % n]
        try:
            return _read_data(x_ds, self._verify), _read_data(y_ds, self._verify)
        except DatasetFormatError as exc:
            raise DatasetFormatError(f"{self.path}: stimulus {index} cannot be read: {exc}") from exc

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for i in range(len(self)):
            yield self[i]

    @property
    def X_shape(self) -> tuple[int, ...]:
        """Shape of the NaN-padded X that :meth:`load` returns."""
        core = (int(self.lengths.max()), self.n_freqs)
        return core if self.layout == "recording" else (len(self),) + core

    @property
    def y_shape(self) -> tuple[int, ...]:
        """Shape of the NaN-padded y that :meth:`load` returns."""
        core = (int(self.lengths.max()),) + self.y_tail
        return core if self.layout == "recording" else (len(self),) + core

    def load(self, stimuli: Sequence[int] | None = None) -> Bunch:
        """Read stimuli into NaN-padded arrays (the data contract's layout).

        Parameters
        ----------
        stimuli : sequence of int, default=None
            Which stimuli to read, in this order (e.g. ``ds.splits["train"]``); all
            when None.

        Returns
        -------
        data : Bunch
            ``X`` of shape (n_selected, n_times, n_freqs), ``y`` of shape
            (n_selected, n_times, ``*y_tail``), padded to the longest selected stimulus;
            ``lengths``; and the file's ``dt_ms``, ``freqs``, ``stimulus_names``
            (selected), ``neuron_names``, ``splits``, ``metadata``, ``format_version``.
            A file saved from a single recording gives X (n_times, n_freqs) and y
            without the stimulus axis.
        """
        index = np.arange(len(self)) if stimuli is None else np.asarray(stimuli, dtype=np.int64)
        if index.ndim != 1 or index.size == 0:
            raise ValueError(f"stimuli must be a non-empty 1-D sequence of indices, got shape {index.shape}")
        lengths = self.lengths[index]
        n_times = int(lengths.max())
        x_dtype, y_dtype = self._padded_dtypes(index)
        X = np.full((index.size, n_times, self.n_freqs), np.nan if x_dtype.kind == "f" else 0, dtype=x_dtype)
        y = np.full((index.size, n_times) + self.y_tail, np.nan if y_dtype.kind == "f" else 0, dtype=y_dtype)
        for row, i in enumerate(index):
            X_i, y_i = self[int(i)]
            X[row, : X_i.shape[0]] = X_i
            y[row, : y_i.shape[0]] = y_i
        if self.layout == "recording":
            X, y = X[0], y[0]
        names = None if self.stimulus_names is None else self.stimulus_names[index]
        return Bunch(
            X=X,
            y=y,
            lengths=lengths,
            dt_ms=self.dt_ms,
            freqs=self.freqs,
            stimulus_names=names,
            neuron_names=self.neuron_names,
            splits=dict(self.splits),
            metadata=self.metadata,
            format_version=self.format_version,
        )

    def _padded_dtypes(self, index: np.ndarray) -> tuple[np.dtype, np.dtype]:
        """dtypes of X and y padded to the longest of the stimuli ``index``."""
        x_dtype = np.result_type(*{self._stimuli[i][0].dtype for i in index})
        y_dtype = np.result_type(*{self._stimuli[i][1].dtype for i in index})
        if (self.lengths[index] < self.lengths[index].max()).any():
            # Integer arrays cannot hold the NaN padding.
            x_dtype = x_dtype if x_dtype.kind == "f" else np.dtype(np.float64)
            y_dtype = y_dtype if y_dtype.kind == "f" else np.dtype(np.float64)
        return x_dtype, y_dtype

    @property
    def X(self) -> Any:
        """X as a dask array, one stimulus per chunk, read from the file only when computed.

        The shape, padding and dtype of :meth:`load`'s X: (n_stimuli, n_times, n_freqs), or
        (n_times, n_freqs) for a file saved from a single recording (one chunk). Each task
        opens the file itself and checks the stimulus's digest, so the array can be computed
        by the workers of a ``dask.distributed`` cluster that see the file at the same path.
        Pass it to :meth:`skstrf.STRFRegressor.fit` to fit out of core (user guide: "Data
        larger than memory"). Needs the optional dask dependency (``pip install
        "skstrf[dask]"``).
        """
        return self._dask_array("X")

    @property
    def y(self) -> Any:
        """y as a dask array, one stimulus per chunk: the shape, padding and dtype of
        :meth:`load`'s y, read like :attr:`X`."""
        return self._dask_array("y")

    def _dask_array(self, name: str) -> Any:
        from .._chunked import require_dask

        da = require_dask("LazyDataset.X and .y")
        index = np.arange(len(self))
        dtype = dict(zip("Xy", self._padded_dtypes(index)))[name]
        n_times = int(self.lengths.max())
        tail = (self.n_freqs,) if name == "X" else self.y_tail
        chunks = ((1,) * len(self), (n_times,)) + tuple((d,) for d in tail)
        if self.layout == "recording":
            chunks = chunks[1:]
        # The file's checksum covers every dataset's digest: a rewritten file gets new keys.
        identity = _attr(self._file, "checksum", None) or (str(self.path), os.stat(self.path).st_mtime_ns)
        token = hashlib.sha256(repr((str(self.path.resolve()), identity, name)).encode()).hexdigest()[:32]
        return da.map_blocks(_read_block, str(self.path.resolve()), name, n_times, tail, dtype.str, self._verify,
                             self.layout == "recording", chunks=chunks, dtype=dtype,
                             meta=np.empty((0,) * len(chunks), dtype), name=f"skstrf-{name}-{token}")

    def close(self) -> None:
        """Close the underlying HDF5 file."""
        self._file.close()

    def __enter__(self) -> LazyDataset:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"LazyDataset({str(self.path)!r}, n_stimuli={len(self)}, n_freqs={self.n_freqs}, "
            f"y_tail={self.y_tail}, lengths {int(self.lengths.min())}..{int(self.lengths.max())})"
        )


def _read_block(path: str, name: str, n_times: int, tail: tuple[int, ...], dtype: str, verify: bool,
                recording: bool, block_id: tuple[int, ...] = (0,)) -> np.ndarray:
    """One chunk of :attr:`LazyDataset.X` or ``.y``: stimulus ``block_id[0]`` read from the
    file (opened here, so that a dask worker can run it) and NaN-padded to ``n_times``."""
    index = 0 if recording else int(block_id[0])
    with _open_checked(Path(path)) as f:
        try:
            ds = f["stimuli"][str(index)][name]
            value = _read_data(ds, verify)
        except (KeyError, DatasetFormatError) as exc:
            raise DatasetFormatError(f"{path}: stimulus {index} cannot be read: {exc}") from exc
    if value.ndim != len(tail) + 1 or value.shape[1:] != tail or value.shape[0] > n_times:
        # the file changed since it was opened: its header no longer describes this stimulus
        raise DatasetFormatError(
            f"{path}: stimulus {index}'s {name} has shape {value.shape}; the file's header "
            f"gave at most {n_times} frames and trailing shape {tail} (was the file rewritten?)"
        )
    out = np.full((n_times,) + value.shape[1:], np.nan if np.dtype(dtype).kind == "f" else 0, dtype=dtype)
    out[: value.shape[0]] = value
    return out if recording else out[None]


def _attr(node: h5py.Group, key: str, default: Any = ...) -> Any:
    """An attribute as a Python scalar, whether written as a scalar or a 1-element array
    (MATLAB's ``h5writeatt`` does the latter) and as a variable- or fixed-length string."""
    if key not in node.attrs:
        if default is ...:
            raise KeyError(f"attribute {key!r} is missing")
        return default
    value = np.asarray(node.attrs[key])
    if value.size != 1:
        raise DatasetFormatError(f"attribute {key!r} should hold one value, got shape {value.shape}")
    value = value.ravel()[0]
    if isinstance(value, bytes):
        return value.decode("utf-8").rstrip("\x00")
    if isinstance(value, str):
        return value.rstrip("\x00")
    return value.item() if isinstance(value, np.generic) else value


def _child(group: h5py.Group, name: str, kind: type, source: Path) -> Any:
    """``group[name]`` when present (None otherwise), refusing the wrong kind of object."""
    if name not in group:
        return None
    obj = group[name]
    if not isinstance(obj, kind):
        expected = "a group" if kind is h5py.Group else "a dataset"
        raise DatasetFormatError(f"{source}: {obj.name} is a {type(obj).__name__.lower()}; expected {expected}")
    return obj


def _count_attr(f: h5py.File, key: str, source: Path) -> int:
    """A count attribute: a whole number (an integer or MATLAB's integer-valued double), >= 1."""
    value = _attr(f, key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer() or value < 1:
        raise DatasetFormatError(f"{source}: the attribute {key} is {value!r}; expected a whole number >= 1")
    return int(value)


def _check_format_attrs(f: h5py.File, path: Path) -> None:
    fmt = _attr(f, "format", None)
    if fmt != FORMAT_NAME:
        raise DatasetFormatError(
            f"{path} is an HDF5 file but not an skstrf dataset: its root attribute 'format' is "
            f"{fmt!r}, expected {FORMAT_NAME!r}"
        )
    version = _attr(f, "format_version", None)
    # MATLAB writes numbers as doubles unless told otherwise: accept 1.0 for 1.
    if (
        isinstance(version, bool)
        or not isinstance(version, (int, float))
        or not float(version).is_integer()
        or not 1 <= version <= FORMAT_VERSION
    ):
        raise DatasetFormatError(
            f"{path} has format_version {version!r}; this skstrf reads versions 1 to {FORMAT_VERSION} "
            "(a newer file needs a newer skstrf)"
        )


def _open_checked(path: Path) -> h5py.File:
    """Open ``path`` read-only, checking it is an skstrf dataset of a supported version."""
    if not path.exists():
        raise FileNotFoundError(f"no dataset file at {path}")
    if not path.is_file():
        raise DatasetFormatError(f"{path} is not a regular file (a folder or a device); expected an skstrf dataset")
    if not h5py.is_hdf5(path):
        raise DatasetFormatError(f"{path} is not an HDF5 file (no HDF5 signature); expected an skstrf dataset")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        if isinstance(exc, BlockingIOError) or "unable to lock" in str(exc).lower():
            raise BlockingIOError(
                f"{path} is locked by another process (HDF5 file locking: a program has it open for "
                "writing). Close it there and try again; on a file system without locking support, "
                "set the environment variable HDF5_USE_FILE_LOCKING=FALSE"
            ) from exc
        raise DatasetFormatError(f"{path} looks like HDF5 but cannot be opened (damaged?): {exc}") from exc
    try:
        _check_format_attrs(f, path)
    except BaseException:
        f.close()
        raise
    return f


def load_dataset_from(fh: IO[bytes], source: str | os.PathLike) -> Bunch:
    """Read a whole skstrf dataset from an open binary file, as :func:`load_dataset` does.

    For a caller that has checked the file's SHA-256 through this very file object
    (:func:`skstrf.datasets._download.open_hashed`): every byte parsed is then a byte that
    was checked, whatever happens at the path meanwhile.

    Parameters
    ----------
    fh : binary file object
        Open for reading, seekable.
    source : str or path-like
        Where the file came from, for messages.

    Returns
    -------
    data : Bunch
        As :func:`load_dataset`.
    """
    source = Path(source)
    try:
        f = h5py.File(fh, "r")
    except OSError as exc:
        raise DatasetFormatError(f"{source} is not a readable HDF5 file: {exc}") from exc
    try:
        _check_format_attrs(f, source)
    except BaseException:
        f.close()
        raise
    ds = LazyDataset.__new__(LazyDataset)
    ds.path = source
    ds._attach(f)
    with ds:
        return ds.load()


def is_dataset_file(path: str | os.PathLike) -> str | None:
    """Say why ``path`` is not an skstrf dataset file; None when it is one.

    Only the HDF5 signature and the root attribute ``format`` are looked at (a damaged
    skstrf dataset still counts as one). The file is read through its own open file, so
    HDF5's file locks play no part.

    Parameters
    ----------
    path : str or path-like
        An existing path.

    Returns
    -------
    reason : str or None
        E.g. ``"it is not an HDF5 file"``; None for an skstrf dataset.
    """
    path = Path(path)
    if path.is_symlink():
        return "it is a symbolic link"
    if not path.is_file():
        return "it is a folder" if path.is_dir() else "it is not a regular file"
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(_HDF5_SIGNATURE))
            fh.seek(0)
            try:
                with h5py.File(fh, "r") as f:
                    fmt = _attr(f, "format", None)
            except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
                if head != _HDF5_SIGNATURE:  # HDF5 may also sit behind a user block
                    return "it is not an HDF5 file" + (" (it is empty)" if not head else "")
                return f"it cannot be read as HDF5 ({exc})"
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"
    if fmt != FORMAT_NAME:
        return f"its root attribute 'format' is {fmt!r}, not {FORMAT_NAME!r}"
    return None


def load_dataset(path: str | os.PathLike, *, lazy: bool = False) -> Bunch | LazyDataset:
    """Read an skstrf HDF5 dataset file written by :func:`save_dataset` (or any tool).

    Parameters
    ----------
    path : str or path-like
        The file.
    lazy : bool, default=False
        Return a :class:`LazyDataset` that reads stimuli one at a time (for data larger
        than memory) instead of loading everything; its ``X`` and ``y`` are dask arrays
        with one stimulus per chunk, which :class:`~skstrf.STRFRegressor` fits out of core
        (user guide: "Data larger than memory").

    Returns
    -------
    data : Bunch or LazyDataset
        Eager: ``X`` of shape (n_stimuli, n_times, n_freqs) and ``y`` of shape
        (n_stimuli, n_times[, n_neurons[, n_repeats]]), NaN-padded at the end to the
        longest stimulus; ``lengths`` of shape (n_stimuli,); ``dt_ms``; ``freqs``;
        ``stimulus_names``; ``neuron_names``; ``splits`` (dict of index arrays);
        ``metadata`` (dict); ``format_version``. Absent items are None (``{}`` for
        splits and metadata).

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    DatasetFormatError
        If the file is not HDF5, is a foreign HDF5 file, has a newer format version, or
        is damaged.
    """
    ds = LazyDataset(path)
    if lazy:
        return ds
    with ds:
        return ds.load()
