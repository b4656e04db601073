"""The skstrf HDF5 dataset format: ragged stimuli, missing repeats and metadata, read eagerly or lazily."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from sklearn.utils import Bunch

__all__ = ["DatasetFormatError", "FORMAT_NAME", "FORMAT_VERSION", "LazyDataset", "load_dataset", "save_dataset"]

FORMAT_NAME = "skstrf-dataset"
"""Value of the root attribute ``format`` of every file this module writes."""

FORMAT_VERSION = 1
"""Value of the root attribute ``format_version``; readers refuse newer versions."""

_STR = h5py.string_dtype("utf-8")


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
    names = np.asarray(names)
    if names.shape != (expected,):
        raise ValueError(f"{what} must have shape ({expected},), got {names.shape}")
    return names.astype(str)


def _check_splits(splits: Mapping[str, Any] | None, n_stimuli: int) -> dict[str, np.ndarray]:
    out = {}
    for key, idx in (splits or {}).items():
        idx = np.asarray(idx)
        if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
            raise ValueError(f"split {key!r} must be a 1-D array of stimulus indices, got {idx.dtype} {idx.shape}")
        if idx.size and (idx.min() < 0 or idx.max() >= n_stimuli):
            raise ValueError(f"split {key!r} holds indices outside [0, {n_stimuli})")
        _check_key(key)
        out[key] = idx.astype(np.int64)
    return out


def _check_key(key: Any) -> None:
    if not isinstance(key, str) or not key or "/" in key or key in (".", ".."):
        raise ValueError(f"metadata and split names must be non-empty strings without '/', got {key!r}")


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
        return "int", np.int64(value), None
    if isinstance(value, (float, np.floating)):
        return "float", np.float64(value), None
    if isinstance(value, str):
        return "str", value, _STR
    if isinstance(value, (np.ndarray, Sequence)):
        arr = value if isinstance(value, np.ndarray) else _list_to_array(key, value)
        if arr.dtype.kind in "US" or (arr.dtype.kind == "O" and all(isinstance(v, str) for v in arr.ravel())):
            return "ndarray", arr.astype(str).astype(object), _STR
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
    ds = group.create_dataset(key, data=data, dtype=dtype)
    ds.attrs["type"] = kind


def _read_strings(ds: h5py.Dataset) -> np.ndarray:
    if h5py.check_string_dtype(ds.dtype) is not None:
        values = ds.asstr()[()]
    else:
        values = ds[()]
    values = np.asarray(values, dtype=object)
    decoded = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values.ravel()]
    return np.array(decoded, dtype=str).reshape(values.shape)


def _read_value(node: h5py.Group | h5py.Dataset) -> Any:
    if isinstance(node, h5py.Group):
        return {key: _read_value(node[key]) for key in node}
    kind = node.attrs.get("type")
    is_str = h5py.check_string_dtype(node.dtype) is not None or node.dtype.kind == "S"
    if kind == "none" or node.shape is None:
        return None
    if kind == "str" or (is_str and node.shape == ()):
        return str(_read_strings(node)[()])
    if is_str:
        return _read_strings(node)
    value = node[()]
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
        File to write; replaced atomically if it exists (written to a temporary file
        in the same folder, then renamed).
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
    **metadata
        Free metadata: str, bool, int, float, None, numeric or string arrays and
        lists (read back as arrays), and dicts of these (nested).

    Returns
    -------
    path : pathlib.Path
        The written file.
    """
    path = Path(path)
    X = _as_real_array(X, "X")
    y = _as_real_array(y, "y")
    X3, y3, layout = _stimulus_view(X, y)
    lengths = _valid_lengths(X3, y3)
    n_stimuli, _, n_freqs = X3.shape
    n_neurons = y3.shape[2] if y3.ndim > 2 else 1
    if dt_ms is not None and not (np.isscalar(dt_ms) and float(dt_ms) > 0):
        raise ValueError(f"dt_ms must be a positive number of milliseconds, got {dt_ms!r}")
    if freqs is not None:
        freqs = _as_real_array(freqs, "freqs")
        if freqs.shape != (n_freqs,):
            raise ValueError(f"freqs must have shape ({n_freqs},) like X's last axis, got {freqs.shape}")
    stimulus_names = _check_names(stimulus_names, n_stimuli, "stimulus_names")
    neuron_names = _check_names(neuron_names, n_neurons, "neuron_names")
    splits = _check_splits(splits, n_stimuli)
    encoded = {key: _encode(key, value) for key, value in metadata.items()}
    filters = {"compression": compression, "shuffle": True} if compression else {}

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT_NAME
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["layout"] = layout
            f.attrs["n_stimuli"] = n_stimuli
            if dt_ms is not None:
                f.attrs["dt_ms"] = float(dt_ms)
            stimuli = f.create_group("stimuli")
            for i, length in enumerate(lengths):
                g = stimuli.create_group(str(i))
                g.create_dataset("X", data=X3[i, :length], **filters)
                g.create_dataset("y", data=y3[i, :length], **filters)
            if freqs is not None:
                f.create_dataset("freqs", data=freqs)
            for key, names in (("stimulus_names", stimulus_names), ("neuron_names", neuron_names)):
                if names is not None:
                    f.create_dataset(key, data=names.astype(object), dtype=_STR)
            split_group = f.create_group("splits", track_order=True)
            for key, idx in splits.items():
                split_group.create_dataset(key, data=idx)
            meta = f.create_group("metadata", track_order=True)
            for key, value in encoded.items():
                _write_encoded(meta, key, value)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
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
        self.path = Path(path)
        self._file = _open_checked(self.path)
        try:
            self._read_header()
        except DatasetFormatError:
            self._file.close()
            raise
        except (OSError, KeyError, ValueError, TypeError) as exc:
            self._file.close()
            raise DatasetFormatError(f"{self.path} is a damaged skstrf dataset: {exc}") from exc

    def _read_header(self) -> None:
        f = self._file
        self.format_version = int(_attr(f, "format_version"))
        self.layout = str(_attr(f, "layout", "stimuli"))
        if self.layout not in ("stimuli", "recording"):
            raise DatasetFormatError(f"{self.path}: unknown layout {self.layout!r}")
        n_stimuli = int(_attr(f, "n_stimuli"))
        if "stimuli" not in f:
            raise DatasetFormatError(f"{self.path} has no 'stimuli' group")
        self._stimuli = []
        for i in range(n_stimuli):
            g = f["stimuli"].get(str(i))
            if g is None or "X" not in g or "y" not in g:
                raise DatasetFormatError(f"{self.path}: stimulus {i} of {n_stimuli} is missing (or lacks X or y)")
            self._stimuli.append((g["X"], g["y"]))
        if not self._stimuli:
            raise DatasetFormatError(f"{self.path} holds no stimulus")
        x_shapes = [x.shape for x, _ in self._stimuli]
        y_shapes = [yy.shape for _, yy in self._stimuli]
        self.lengths = np.array([s[0] for s in x_shapes], dtype=np.int64)
        self.n_freqs = int(x_shapes[0][1])
        self.y_tail = tuple(int(d) for d in y_shapes[0][1:])
        for i, (xs, ys) in enumerate(zip(x_shapes, y_shapes, strict=True)):
            if len(xs) != 2 or xs[1] != self.n_freqs or ys[0] != xs[0] or ys[1:] != self.y_tail:
                raise DatasetFormatError(
                    f"{self.path}: stimulus {i} has X {xs} and y {ys}; expected X (n_times, {self.n_freqs}) "
                    f"and y (n_times, *{self.y_tail}) with the same n_times"
                )
        self.dt_ms = float(_attr(f, "dt_ms")) if "dt_ms" in f.attrs else None
        self.freqs = f["freqs"][()] if "freqs" in f else None
        self.stimulus_names = _read_strings(f["stimulus_names"]) if "stimulus_names" in f else None
        self.neuron_names = _read_strings(f["neuron_names"]) if "neuron_names" in f else None
        self.splits = {k: np.asarray(v[()], dtype=np.int64) for k, v in f["splits"].items()} if "splits" in f else {}
        self.metadata = _read_value(f["metadata"]) if "metadata" in f else {}

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
            return x_ds[()], y_ds[()]
        except (OSError, ValueError) as exc:
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
        x_dtypes = {self._stimuli[i][0].dtype for i in index}
        y_dtypes = {self._stimuli[i][1].dtype for i in index}
        x_dtype, y_dtype = np.result_type(*x_dtypes), np.result_type(*y_dtypes)
        if (lengths < n_times).any():
            # Integer arrays cannot hold the NaN padding.
            x_dtype = x_dtype if x_dtype.kind == "f" else np.dtype(np.float64)
            y_dtype = y_dtype if y_dtype.kind == "f" else np.dtype(np.float64)
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


def _check_format_attrs(f: h5py.File, path: Path) -> None:
    fmt = _attr(f, "format", None)
    if fmt != FORMAT_NAME:
        raise DatasetFormatError(
            f"{path} is an HDF5 file but not an skstrf dataset: its root attribute 'format' is "
            f"{fmt!r}, expected {FORMAT_NAME!r}"
        )
    version = _attr(f, "format_version", None)
    # MATLAB writes numbers as doubles unless told otherwise: accept 1.0 for 1.
    if not isinstance(version, (int, float)) or not float(version).is_integer() or not 1 <= version <= FORMAT_VERSION:
        raise DatasetFormatError(
            f"{path} has format_version {version!r}; this skstrf reads versions 1 to {FORMAT_VERSION} "
            "(a newer file needs a newer skstrf)"
        )


def _open_checked(path: Path) -> h5py.File:
    """Open ``path`` read-only, checking it is an skstrf dataset of a supported version."""
    if not path.exists():
        raise FileNotFoundError(f"no dataset file at {path}")
    if not h5py.is_hdf5(path):
        raise DatasetFormatError(f"{path} is not an HDF5 file (no HDF5 signature); expected an skstrf dataset")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DatasetFormatError(f"{path} looks like HDF5 but cannot be opened (damaged?): {exc}") from exc
    try:
        _check_format_attrs(f, path)
    except BaseException:
        f.close()
        raise
    return f


def load_dataset(path: str | os.PathLike, *, lazy: bool = False) -> Bunch | LazyDataset:
    """Read an skstrf HDF5 dataset file written by :func:`save_dataset` (or any tool).

    Parameters
    ----------
    path : str or path-like
        The file.
    lazy : bool, default=False
        Return a :class:`LazyDataset` that reads stimuli one at a time (for data larger
        than memory) instead of loading everything.

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
