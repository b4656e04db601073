"""The NS1 dataset (ferret A1, natural sounds): download, parse the OSF layout, cache in HDF5."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import sys
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Any, Literal

import h5py
import numpy as np
import scipy.io
from scipy.io.matlab import MatReadError
from scipy.ndimage import convolve1d
from sklearn.utils import Bunch

from ._download import (
    MANIFEST_NAME,
    ChecksumError,
    DownloadError,
    check_recorded,
    download_file,
    ensure_folder,
    forget_sha256,
    get_data_home,
    open_hashed,
    read_manifest,
    record_sha256,
    record_sha256s,
    sha256sum,
    verify_file,
)
from ._hdf5 import DatasetFormatError, is_dataset_file, load_dataset_from, save_dataset

__all__ = ["NS1_URLS", "fetch_ns1", "load_ns1"]

METADATA_FILE = "MetadataSHEnCneurons.mat"
SPIKES_ZIP = "spikesandwav.zip"
SPIKES_DIR = "spikesandwav"
README_FILE = "ReadMe.rtf"
SPECTROGRAM_FILE = "test_data_5ms.mat"

NS1_URLS: dict[str, str] = {
    METADATA_FILE: "https://osf.io/download/gdwyd/",
    SPIKES_ZIP: "https://osf.io/download/5nxga/",
    README_FILE: "https://osf.io/download/f3rtm/",
    SPECTROGRAM_FILE: "https://raw.githubusercontent.com/monzilur/DNet/master/test_data_5ms.mat",
}
"""Where each NS1 file is downloaded from (the OSF project ``ayw2p`` and the DNet repository)."""

_KINDS = {METADATA_FILE: "mat", SPIKES_ZIP: "zip", README_FILE: "any", SPECTROGRAM_FILE: "mat"}
# Small files first, so that an unreachable host fails before the long transfer.
_DOWNLOAD_ORDER = (METADATA_FILE, SPECTROGRAM_FILE, README_FILE, SPIKES_ZIP)

DT_MS = 5.0
SMOOTH_WINDOW_MS = 21.0
_CACHE_VERSION = 2  # 2: the spike files are read from the checked zip, the sources recorded as such
_CLEAN_LABELS = ("Yes", "Maybe")
_UNIT_FIELDS = ("path", "depth", "NoiseRatio", "singleN", "singleT", "NrOfElectrodes", "ElectrodeNumber")

Smooth = bool | Literal["normalized"]

DESCR = """\
NS1: responses of ferret primary auditory cortex to natural sounds
==================================================================

119 units recorded in A1 of anaesthetised ferrets, each presented with 20 natural
sound clips of 4995 ms, 20 repeats per clip (Harper et al. 2016; Rahman et al. 2019,
2020). Responses are binned at 5 ms (999 frames per clip); the stimulus is the 34-band
5 ms spectrogram ``X_nfht`` distributed with DNet (Rahman et al. 2019).

Shapes: X (n_stimuli=20, n_times=999, n_freqs=34); y (20, 999, n_neurons, 20) with
n_neurons = 119 (subset="all") or 73 (subset="clean": singleT in {Yes, Maybe} and
depth >= 0).

Preprocessing (skstrf): spike times (ms) of repeat r of stimulus s of each unit are
rounded to the nearest ms (numpy's round-half-to-even), kept when 0 <= t < 4995, and
counted in 5 ms bins (bin = floor(t / 5); every spike counts, also two in the same ms).
With smooth=True each repeat is convolved with np.hanning(5) = [0, .5, 1, .5, 0] (the
21 ms Hanning window at 5 ms), zero-padded at both ends, as in deepSTRF; this window
sums to 2, so smoothed values are twice the count scale. smooth="normalized" divides
the window by its sum (keeps the count scale); smooth=False keeps raw counts.

Split (as in the seed notebook): stimuli 0-13 train, 14-16 valid, 17-19 test.

Sources: https://osf.io/ayw2p/ (MetadataSHEnCneurons.mat, spikesandwav.zip,
ReadMe.rtf) and https://github.com/monzilur/DNet (test_data_5ms.mat).

References
----------
Harper NS, Schoppe O, Willmore BDB, Cui Z, Schnupp JWH, King AJ (2016). Network
receptive field modeling reveals extensive integration and multi-feature selectivity
in auditory cortical neurons. PLoS Comput Biol 12(11): e1005113.
doi:10.1371/journal.pcbi.1005113

Rahman M, Willmore BDB, King AJ, Harper NS (2019). A dynamic network model of temporal
receptive fields in primary auditory cortex. PLoS Comput Biol 15(5): e1006618.
doi:10.1371/journal.pcbi.1006618

Rahman M, Willmore BDB, King AJ, Harper NS (2020). Simple transformations capture
auditory input to cortex. Proc Natl Acad Sci USA 117(45): 28442-28451.
"""


class NS1FormatError(ValueError):
    """An NS1 file does not have the layout this loader expects."""


# --------------------------------------------------------------------------- options


def _smoothing_tag(smooth: Any) -> str:
    if smooth is True:
        return "hanning21"
    if smooth is False:
        return "counts"
    if smooth == "normalized":
        return "hanning21-normalized"
    raise ValueError(f"smooth must be True, False or 'normalized', got {smooth!r}")


def _check_subset(subset: Any) -> None:
    if subset not in ("all", "clean"):
        raise ValueError(f"subset must be 'all' or 'clean', got {subset!r}")


# --------------------------------------------------------------------------- pure array functions


def _hanning_taps(window_ms: float, dt_ms: float, *, normalize: bool) -> np.ndarray:
    """Return the Hanning taps of a ``window_ms`` window sampled every ``dt_ms``.

    The tap count is ``floor(window_ms / dt_ms)`` rounded up to an odd number (21 ms at
    5 ms gives ``np.hanning(5) = [0, .5, 1, .5, 0]``), so the window is centred.

    Returns
    -------
    taps : ndarray of shape (n_taps,)
    """
    n_taps = int(window_ms // dt_ms)
    n_taps += 1 - n_taps % 2
    taps = np.hanning(n_taps)
    return taps / taps.sum() if normalize else taps


def _smooth_time(y: np.ndarray, taps: np.ndarray, axis: int = 1) -> np.ndarray:
    """Convolve ``y`` with ``taps`` along ``axis``, same length, zeros beyond the edges.

    Equals ``np.convolve(y_r, taps, mode="same")`` for every 1-D slice ``y_r``; a repeat
    that is all NaN (missing) stays all NaN.
    """
    return convolve1d(y, taps, axis=axis, mode="constant", cval=0.0)


def _bin_spike_times(
    times: np.ndarray,
    stimulus: np.ndarray,
    repeat: np.ndarray,
    n_repeats: np.ndarray,
    n_frames: int,
    dt_ms: float,
) -> np.ndarray:
    """Count spikes in frames of ``dt_ms`` for every stimulus and repeat of one unit.

    Parameters
    ----------
    times : ndarray of shape (n_spikes,)
        Spike times in ms from stimulus onset.
    stimulus, repeat : ndarray of int of shape (n_spikes,)
        Stimulus and repeat index of each spike.
    n_repeats : ndarray of int of shape (n_stimuli,)
        Repeats recorded for each stimulus; later repeats are NaN (missing).
    n_frames : int
        Frames per stimulus; spikes at or after ``n_frames * dt_ms`` are dropped.
    dt_ms : float
        Frame duration.

    Returns
    -------
    counts : ndarray of float32 of shape (n_stimuli, n_frames, max(n_repeats))
    """
    n_stimuli, max_repeats = n_repeats.size, int(n_repeats.max(initial=0))
    rounded = np.round(times)
    keep = (rounded >= 0) & (rounded < n_frames * dt_ms)
    frame = np.floor(rounded[keep] / dt_ms).astype(np.int64)
    flat = (stimulus[keep] * max_repeats + repeat[keep]) * n_frames + frame
    counts = np.bincount(flat, minlength=n_stimuli * max_repeats * n_frames).astype(np.float32)
    counts = counts.reshape(n_stimuli, max_repeats, n_frames)
    counts[np.arange(max_repeats)[None, :] >= n_repeats[:, None]] = np.nan
    return counts.transpose(0, 2, 1)


def _contiguous_split(n_stimuli: int) -> dict[str, np.ndarray]:
    """The seed's split (:func:`skstrf.model_selection.train_valid_test_indices`) as a dict.

    For NS1's 20 stimuli this is 0-13 train, 14-16 valid, 17-19 test.
    """
    from ..model_selection import train_valid_test_indices

    return dict(zip(("train", "valid", "test"), train_valid_test_indices(n_stimuli), strict=True))


# --------------------------------------------------------------------------- MATLAB parsing


def _loadmat(source: IO[bytes], where: str | Path, **kwargs: Any) -> dict[str, Any]:
    """``scipy.io.loadmat`` of an open file; ``where`` names it in messages."""
    try:
        return scipy.io.loadmat(source, **kwargs)
    except NotImplementedError as exc:
        raise NS1FormatError(
            f"{where} is a MATLAB v7.3 (HDF5-based) file, which scipy cannot read; re-save it "
            "in MATLAB with save(filename, '-struct', ..., '-v7') or load the original OSF file"
        ) from exc
    except (ValueError, TypeError, OSError, MatReadError, zlib.error, EOFError, KeyError, IndexError) as exc:
        # Damaged or foreign content surfaces as any of these from scipy's reader.
        raise NS1FormatError(f"{where} could not be read as a MATLAB file: {type(exc).__name__}: {exc}") from exc


def _as_records(value: Any) -> list:
    """A MATLAB struct array as a list of dicts (scipy squeezes 1-element arrays to a dict)."""
    if isinstance(value, dict):
        return [value]
    if isinstance(value, np.ndarray):
        return list(value.ravel())
    if isinstance(value, (list, tuple)):
        return list(value)
    raise NS1FormatError(f"expected a MATLAB struct array, got {type(value).__name__}")


def _spike_times(value: Any) -> np.ndarray:
    """Spike times of one repeat as a 1-D float array (a lone spike arrives as a scalar)."""
    return np.atleast_1d(np.asarray(value, dtype=np.float64)).ravel()


def _scalar(value: Any, field: str, unit: str) -> float:
    arr = np.asarray(value, dtype=np.float64).ravel()
    if arr.size > 1:
        raise NS1FormatError(f"unit {unit}: field {field!r} should be a scalar, got {arr.size} values")
    return float(arr[0]) if arr.size else np.nan


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    arr = np.asarray(value).ravel()
    return str(arr[0]) if arr.size else ""


def _read_spectrogram(source: IO[bytes], where: str | Path) -> np.ndarray:
    """Return the NS1 spectrogram as (n_stimuli, n_times, n_freqs) from ``X_nfht``.

    ``X_nfht`` is stored as (n_stimuli, n_freqs, 1, n_times).
    """
    mat = _loadmat(source, where, variable_names=["X_nfht"])
    if "X_nfht" not in mat:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise NS1FormatError(f"{where} has no variable 'X_nfht' (found {found})")
    X = np.asarray(mat["X_nfht"])
    if X.ndim == 4 and X.shape[2] == 1:
        X = X[:, :, 0, :]
    if X.ndim != 3 or X.dtype.kind not in "fiu":
        raise NS1FormatError(
            f"X_nfht in {where} has shape {X.shape} and dtype {X.dtype}; expected real numbers of "
            "shape (n_stimuli, n_freqs, 1, n_times)"
        )
    return np.ascontiguousarray(X.transpose(0, 2, 1))


def _read_units(source: IO[bytes], where: str | Path) -> dict[str, np.ndarray]:
    """Return the per-unit metadata of ``MetadataSHEnCneurons.mat`` as (n_units,) arrays."""
    mat = _loadmat(source, where, simplify_cells=True)
    if "neuron" not in mat:
        raise NS1FormatError(f"{where} has no struct array 'neuron'")
    records = _as_records(mat["neuron"])
    if not records:
        raise NS1FormatError(f"{where}: the struct array 'neuron' is empty")
    missing = [f for f in _UNIT_FIELDS if f not in records[0]]
    if missing:
        raise NS1FormatError(f"{where}: 'neuron' lacks fields {missing}; it has {list(records[0])}")
    ids = []
    for rec in records:
        # The first field holds the unit's file name, '<id>.mat': the only unit id there is.
        name = _text(next(iter(rec.values()))).replace("\\", "/").rsplit("/", 1)[-1]
        ids.append(name[:-4] if name.lower().endswith(".mat") else name)

    def numbers(field: str) -> np.ndarray:
        return np.array([_scalar(r[field], field, i) for r, i in zip(records, ids, strict=True)])

    return {
        "id": np.array(ids, dtype=str),
        "path": np.array([_text(r["path"]) for r in records], dtype=str),
        "depth": numbers("depth"),
        "noise_ratio": numbers("NoiseRatio"),
        "single_n": numbers("singleN"),
        "single_t": np.array([_text(r["singleT"]) for r in records], dtype=str),
        "n_electrodes": numbers("NrOfElectrodes"),
        "electrode": numbers("ElectrodeNumber"),
    }


def _clean_mask(single_t: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Units labelled single ('Yes' or 'Maybe') at a known depth (>= 0)."""
    with np.errstate(invalid="ignore"):
        return np.isin(single_t, _CLEAN_LABELS) & (depth >= 0)


def _normalise_spike_path(path: str) -> PurePosixPath:
    """The unit's spike file relative to ``spikesandwav/`` (accepts Windows separators)."""
    rel = PurePosixPath(path.replace("\\", "/").lstrip("/"))
    if rel.parts and rel.parts[0] == SPIKES_DIR:
        rel = PurePosixPath(*rel.parts[1:])
    if ".." in rel.parts or not rel.parts:
        raise NS1FormatError(f"spike file path {path!r} is empty or leaves the {SPIKES_DIR} folder")
    return rel


def _resolve_spike_files(paths: np.ndarray, exists: Callable[[PurePosixPath], bool], where: str,
                         hint: str = "") -> list[PurePosixPath]:
    """Find each unit's spike file (relative to ``spikesandwav/``), falling back to the
    ``_1``-suffixed name; ``exists`` says whether a relative path is there."""
    found, missing = [], []
    for path in paths:
        rel = _normalise_spike_path(str(path))
        fallback = rel.with_name(rel.stem + "_1" + rel.suffix)
        if exists(rel):
            found.append(rel)
        elif exists(fallback):
            found.append(fallback)
        else:
            missing.append(f"{where}/{rel.as_posix()} (nor {fallback.name})")
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} spike file(s) named in {METADATA_FILE} are missing: " + "; ".join(missing) + hint
        )
    return found


def _unit_counts(source: IO[bytes], where: str, n_stimuli: int, n_frames: int, dt_ms: float) -> np.ndarray:
    """Binned spike counts of one unit's file: float32 of shape (n_stimuli, n_frames, n_repeats)."""
    mat = _loadmat(source, where, simplify_cells=True)
    if "data" not in mat:
        raise NS1FormatError(f"{where} has no struct 'data'")
    data = _as_records(mat["data"])
    if len(data) != 1 or "set" not in data[0]:
        raise NS1FormatError(f"{where}: expected a scalar struct 'data' with a field 'set'")
    sets = _as_records(data[0]["set"])
    if len(sets) < n_stimuli:
        raise NS1FormatError(f"{where}: data.set has {len(sets)} entries, fewer than the {n_stimuli} stimuli")
    # Only the first n_stimuli sets are the natural sounds of the spectrogram file.
    repeats = [_as_records(sets[s].get("repeats", [])) for s in range(n_stimuli)]
    try:
        trains = [_spike_times(rep["t"]) for reps in repeats for rep in reps]
    except (KeyError, TypeError, ValueError) as exc:
        raise NS1FormatError(f"{where}: each data.set(s).repeats(r) needs a numeric field 't' ({exc})") from exc
    n_repeats = np.array([len(reps) for reps in repeats], dtype=np.int64)
    n_spikes = np.array([t.size for t in trains], dtype=np.int64)
    stim_of_train = np.repeat(np.arange(n_stimuli), n_repeats)
    rep_of_train = np.concatenate([np.arange(n) for n in n_repeats]) if n_repeats.sum() else np.zeros(0, np.int64)
    times = np.concatenate(trains) if trains else np.zeros(0)
    return _bin_spike_times(
        times, np.repeat(stim_of_train, n_spikes), np.repeat(rep_of_train, n_spikes), n_repeats, n_frames, dt_ms
    )


# --------------------------------------------------------------------------- reading what was checked


class _RawReader:
    """Opens the raw files of an NS1 folder so that every byte parsed is a byte checked.

    Each file is hashed through the open file that is then parsed (``open_hashed``) and
    its digest compared with the manifest: a recorded file that changed is a
    ``ChecksumError``; a file without an entry (placed by hand) has its content checked
    (a MATLAB header, a zip whose members pass their CRC) and is listed in ``fresh``, to
    be recorded once the whole dataset was read without error. ``sums`` holds the digest
    of every file read.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.manifest = read_manifest(folder)
        self.sums: dict[str, str] = {}
        self.fresh: dict[str, tuple[str, int]] = {}

    @contextlib.contextmanager
    def open(self, name: str, kind: str, source_hint: str) -> Iterator[IO[bytes]]:
        path = self.folder / name
        with open_hashed(path) as (fh, sha):
            if not check_recorded(self.folder, name, sha, self.manifest):
                try:
                    verify_file(fh, kind, name=name)
                except ValueError as exc:
                    raise NS1FormatError(f"{path} is not the NS1 file it should be: {exc}. {source_hint}") from exc
                self.fresh[name] = (sha, os.fstat(fh.fileno()).st_size)
            self.sums[name] = sha
            yield fh


def _replace_hint(name: str) -> str:
    return f"Replace it with the file from {NS1_URLS[name]} (or delete it to have it downloaded)"


def _zip_members(zf: zipfile.ZipFile) -> dict[str, list[zipfile.ZipInfo]]:
    """The zip's files by their path relative to ``spikesandwav/`` (the archive's top
    folder, when every member is under it); Mac resource forks and folders are left out.
    A zip may hold two members of the same name: both are listed."""
    infos = [i for i in zf.infolist() if not i.is_dir()]
    names = [PurePosixPath(i.filename.replace("\\", "/")) for i in infos]
    keep = [(i, n) for i, n in zip(infos, names, strict=True) if n.parts and n.parts[0] != "__MACOSX"]
    strip = bool(keep) and all(len(n.parts) > 1 and n.parts[0] == SPIKES_DIR for _, n in keep)
    members: dict[str, list[zipfile.ZipInfo]] = {}
    for info, name in keep:
        members.setdefault(PurePosixPath(*name.parts[1:]).as_posix() if strip else name.as_posix(), []).append(info)
    return members


def _read_member(zf: zipfile.ZipFile, members: dict[str, list[zipfile.ZipInfo]], rel: PurePosixPath,
                 where: Path) -> bytes:
    infos = members[rel.as_posix()]
    if len(infos) > 1:
        raise NS1FormatError(
            f"{where} holds {len(infos)} members named {SPIKES_DIR}/{rel.as_posix()}; which one is the unit's "
            f"spike file is not defined. {_replace_hint(SPIKES_ZIP)}"
        )
    try:
        return zf.read(infos[0])  # checks the member's CRC-32, which the zip's SHA-256 covers
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise NS1FormatError(
            f"{where}: member {infos[0].filename!r} cannot be read ({exc}). {_replace_hint(SPIKES_ZIP)}"
        ) from exc


def _folder_digest(sums: dict[str, str]) -> str:
    """One digest for the spike files read from a ``spikesandwav/`` folder (name -> SHA-256)."""
    lines = "".join(f"{name}\t{sums[name]}\n" for name in sorted(sums))
    return hashlib.sha256(lines.encode("utf-8", "surrogatepass")).hexdigest()


def _parse(folder: Path, smooth: Smooth, progress: bool) -> tuple[dict[str, Any], _RawReader]:
    """Read the raw NS1 files in ``folder`` into X, y and unit metadata.

    The spike files are read from ``spikesandwav.zip`` itself when it is there (a
    ``spikesandwav/`` folder beside it is ignored), else from the ``spikesandwav/``
    folder, each of whose files is then checked like any file placed by hand.
    """
    reader = _RawReader(folder)
    with reader.open(SPECTROGRAM_FILE, "mat", _replace_hint(SPECTROGRAM_FILE)) as fh:
        X = _read_spectrogram(fh, folder / SPECTROGRAM_FILE)
    n_stimuli, n_frames, _ = X.shape
    with reader.open(METADATA_FILE, "mat", _replace_hint(METADATA_FILE)) as fh:
        units = _read_units(fh, folder / METADATA_FILE)
    taps = None if smooth is False else _hanning_taps(SMOOTH_WINDOW_MS, DT_MS, normalize=smooth == "normalized")

    from tqdm.auto import tqdm

    def bar(items: list) -> Any:
        return tqdm(items, desc="NS1 units", file=sys.stderr, disable=not progress, leave=False)

    y: np.ndarray | None = None

    def put(n: int, n_units: int, counts: np.ndarray) -> None:
        nonlocal y
        if y is None:
            y = np.full((n_stimuli, n_frames, n_units, counts.shape[2]), np.nan, dtype=np.float32)
        elif counts.shape[2] > y.shape[3]:
            # Grown in place of a first pass over the files, which would read each twice.
            extra = np.full(y.shape[:3] + (counts.shape[2] - y.shape[3],), np.nan, dtype=np.float32)
            y = np.concatenate([y, extra], axis=3)
        y[:, :, n, : counts.shape[2]] = counts if taps is None else _smooth_time(counts, taps, axis=1)

    zip_path = folder / SPIKES_ZIP
    if zip_path.is_file():
        with reader.open(SPIKES_ZIP, "zip", _replace_hint(SPIKES_ZIP)) as zfh:
            try:
                zf = zipfile.ZipFile(zfh)
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                raise NS1FormatError(
                    f"{zip_path} is not a valid zip archive ({exc}). {_replace_hint(SPIKES_ZIP)}"
                ) from exc
            with zf:
                members = _zip_members(zf)
                files = _resolve_spike_files(
                    units["path"], lambda rel: rel.as_posix() in members, f"{zip_path}:{SPIKES_DIR}"
                )
                for n, rel in enumerate(bar(files)):
                    data = _read_member(zf, members, rel, zip_path)
                    where = f"{zip_path}:{SPIKES_DIR}/{rel.as_posix()}"
                    put(n, len(files), _unit_counts(io.BytesIO(data), where, n_stimuli, n_frames, DT_MS))
    else:
        spikes = folder / SPIKES_DIR
        hint = (
            f". There is no {SPIKES_ZIP} in {folder}, so the spike files are read from the folder {SPIKES_DIR}/; "
            f"place {SPIKES_ZIP} (from {NS1_URLS[SPIKES_ZIP]}) there to read them from it instead"
        )
        files = _resolve_spike_files(
            units["path"], lambda rel: spikes.joinpath(*rel.parts).is_file(), str(spikes), hint
        )
        folder_hint = (
            f"Replace the folder {SPIKES_DIR}/ by the file {SPIKES_ZIP} from {NS1_URLS[SPIKES_ZIP]} (or delete it "
            "to have the zip downloaded)"
        )
        for n, rel in enumerate(bar(files)):
            name = f"{SPIKES_DIR}/{rel.as_posix()}"
            with reader.open(name, "mat", folder_hint) as fh:
                put(n, len(files), _unit_counts(fh, str(folder / name), n_stimuli, n_frames, DT_MS))
    units["spike_file"] = np.array([rel.as_posix() for rel in files], dtype=str)
    return {"X": X, "y": y, "units": units}, reader


def _source_sums(reader: _RawReader) -> dict[str, str]:
    """What the cache records of the raw files it is built from (see :func:`_stale_sources`)."""
    sums = {name: sha for name, sha in reader.sums.items() if "/" not in name}
    spike_files = {name: sha for name, sha in reader.sums.items() if "/" in name}
    if spike_files:
        sums[SPIKES_DIR] = _folder_digest(spike_files)
    return sums


def _stale_sources(folder: Path, built_from: dict[str, Any], spike_files: np.ndarray) -> list[str]:
    """The raw sources in ``folder`` that differ from those the cache was built from.

    Only sources present now are compared (the raw files may be deleted once the cache
    exists). A zip present now where the cache was built from the folder counts as
    different: a fresh build would read the zip.
    """
    changed = [
        name
        for name in (METADATA_FILE, SPECTROGRAM_FILE)
        if (folder / name).is_file() and built_from.get(name) != sha256sum(folder / name)
    ]
    if (folder / SPIKES_ZIP).is_file():
        if built_from.get(SPIKES_ZIP) != sha256sum(folder / SPIKES_ZIP):
            changed.append(SPIKES_ZIP)
    elif SPIKES_DIR in built_from and (folder / SPIKES_DIR).is_dir():
        names = [f"{SPIKES_DIR}/{rel}" for rel in spike_files]
        if all((folder / name).is_file() for name in names):
            if _folder_digest({name: sha256sum(folder / name) for name in names}) != built_from[SPIKES_DIR]:
                changed.append(f"{SPIKES_DIR}/")
        else:
            changed.append(f"{SPIKES_DIR}/")
    return changed


# --------------------------------------------------------------------------- files, cache


def _manual_message(folder: Path, reason: str) -> str:
    width = max(len(name) for name in NS1_URLS)
    lines = [
        f"{reason}",
        "",
        "Download these files by hand and place them, with these exact names, in the folder",
        f"    {folder}",
    ]
    for name in _DOWNLOAD_ORDER:
        note = {SPIKES_ZIP: f"  (or its extracted folder {SPIKES_DIR}/)", README_FILE: "  (optional)"}.get(name, "")
        lines.append(f"  {name:<{width}}  from {NS1_URLS[name]}{note}")
    lines += [
        "",
        "then call skstrf.datasets.fetch_ns1(data_home=..., download_if_missing=False) with the "
        f"folder above it, or skstrf.datasets.load_ns1({str(folder)!r}).",
    ]
    return "\n".join(lines)


def _check_raw_kinds(folder: Path, names: tuple[str, ...]) -> None:
    """Refuse a folder (or anything but a file) sitting at the name of an NS1 file."""
    for name in names:
        path = folder / name
        if path.exists() and not path.is_file():
            what = "a folder" if path.is_dir() else "not a regular file"
            raise IsADirectoryError(
                f"{path} is {what}, but {name} is the name of an NS1 file: skstrf can neither read nor "
                "download the file there. Move or rename it (skstrf does not delete what it did not "
                "write), then call again"
            )


def _missing_raw(folder: Path) -> list[str]:
    missing = [name for name in (METADATA_FILE, SPECTROGRAM_FILE) if not (folder / name).is_file()]
    if not (folder / SPIKES_DIR).is_dir() and not (folder / SPIKES_ZIP).is_file():
        missing.append(SPIKES_ZIP)
    return missing


def _missing_reason(folder: Path, missing: list[str]) -> str:
    reason = f"The NS1 files {missing} are not in {folder} (and downloading is off)."
    spikes = folder / SPIKES_DIR
    if SPIKES_ZIP in missing and spikes.exists() and not spikes.is_dir():
        reason += f" ({spikes} is a file, not the extracted folder of {SPIKES_ZIP}.)"
    return reason


def _folder_lacks_spike_files(folder: Path) -> bool:
    """True when there is no zip and the ``spikesandwav/`` folder lacks a spike file the
    metadata names (an empty folder made by hand, say): the zip is then needed."""
    spikes = folder / SPIKES_DIR
    if (folder / SPIKES_ZIP).is_file() or not spikes.is_dir():
        return False
    try:
        with open(folder / METADATA_FILE, "rb") as fh:
            paths = _read_units(fh, folder / METADATA_FILE)["path"]
        _resolve_spike_files(paths, lambda rel: spikes.joinpath(*rel.parts).is_file(), str(spikes))
    except FileNotFoundError:
        return True
    except (NS1FormatError, OSError):
        return False  # the metadata itself is at fault: reading it again reports that
    return False


def _download_missing(folder: Path, names: tuple[str, ...], progress: bool) -> None:
    for name in names:
        url = NS1_URLS[name]
        try:
            sha256 = download_file(url, folder / name, kind=_KINDS[name], progress=progress)
        except DownloadError as exc:
            if name == README_FILE:  # documentation only: the data do not need it
                warnings.warn(f"{exc}; continuing without {README_FILE}", RuntimeWarning, stacklevel=4)
                continue
            raise DownloadError(_manual_message(folder, f"Could not download the NS1 dataset: {exc}")) from exc
        record_sha256(folder, name, sha256=sha256, source=url)


def _check_writable(folder: Path, advice: str) -> None:
    """Refuse, before any work, a folder in which the cache or a download cannot be written."""
    effective = os.access in os.supports_effective_ids
    if not os.access(folder, os.W_OK | os.X_OK, effective_ids=effective):
        raise PermissionError(
            errno.EACCES, f"cannot write in the NS1 folder {folder}: you may not create files in it. {advice}"
        )


_CACHE_SOURCE = "built by skstrf from the raw NS1 files"


def _not_our_cache(path: Path) -> str | None:
    """Why the file at the cache's name is not an NS1 cache skstrf wrote; None when it is.

    Recognised by its markers: an skstrf dataset (root attribute ``format``) whose
    metadata holds ``ns1_cache_version``. A damaged cache that still has them counts as
    ours (it is rebuilt); anything else is the user's (never deleted).
    """
    reason = is_dataset_file(path)
    if reason is not None:
        return reason
    try:
        with open(path, "rb") as fh, h5py.File(fh, "r") as f:
            meta = f.get("metadata")
            if not isinstance(meta, h5py.Group) or "ns1_cache_version" not in meta:
                return "it is an skstrf dataset, but not an NS1 cache (no metadata 'ns1_cache_version')"
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
        return f"it cannot be read as HDF5 ({exc})"
    return None


def _verified_cache(folder: Path, name: str) -> tuple[Bunch, str, int, bool]:
    """Read the cache through the open file whose SHA-256 is compared with the manifest.

    Returns the data, the digest and size of what was read, and whether the manifest
    records that digest (False: no entry).
    """
    path = folder / name
    with open_hashed(path) as (fh, sha):
        recorded = check_recorded(folder, name, sha)
        data = load_dataset_from(fh, path)
        size = os.fstat(fh.fileno()).st_size
    return data, sha, size, recorded


def _record_quietly(folder: Path, entries: dict[str, tuple[str, int]], source: str) -> None:
    # A read-only folder with a sound cache still loads; its digest is recorded next time.
    try:
        record_sha256s(folder, entries, source=source)
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise


def _read_cache(folder: Path, name: str, tag: str) -> Bunch | None:
    """Load a valid cache; delete an unusable cache of ours (with a warning) and return None.

    A file at the cache's name that skstrf did not write is never deleted: it is refused
    with ``FileExistsError``.
    """
    path = folder / name
    if not os.path.lexists(path):
        return None
    problem = _not_our_cache(path)
    if problem is not None:
        ours = name in read_manifest(folder)
        raise FileExistsError(
            f"{path} is in the way of the NS1 cache and is not a cache skstrf wrote ({problem}). skstrf "
            "never deletes or replaces a file it did not write: move or rename it (or pass cache=False "
            "to load_ns1), then call again."
            + (
                f" ({MANIFEST_NAME} records that skstrf once wrote a cache under this name, so this may be "
                "that cache, damaged beyond recognition: if so, delete it to have it rebuilt.)"
                if ours
                else ""
            )
        )
    try:
        data, sha, size, recorded = _verified_cache(folder, name)
        meta = data.metadata
        if data.format_version < 2:
            raise DatasetFormatError(f"it has format version {data.format_version}, without checksums")
        if meta.get("ns1_cache_version") != _CACHE_VERSION or meta.get("smoothing") != tag:
            raise DatasetFormatError(
                f"it was written for cache version {meta.get('ns1_cache_version')!r} and smoothing "
                f"{meta.get('smoothing')!r}, expected {_CACHE_VERSION} and {tag!r}"
            )
        units = meta["units"]
        missing = [k for k in ("id", "depth", "single_t", "spike_file") if k not in units]
        if missing or data.y.ndim != 4 or data.neuron_names is None:
            raise DatasetFormatError(f"it lacks unit fields {missing} or has y of shape {data.y.shape}")
        built_from = meta.get("source_sha256")
        if not isinstance(built_from, dict):
            raise DatasetFormatError("it does not record the raw files it was built from")
        # The cache stands for the raw files it was built from: any that is here must be the same.
        changed = _stale_sources(folder, built_from, np.asarray(units["spike_file"]))
        if changed:
            raise DatasetFormatError(f"it was built from other versions of {changed} than the ones now in {folder}")
    except (ChecksumError, DatasetFormatError, KeyError, TypeError) as exc:
        warnings.warn(
            f"the NS1 cache {path} is unusable ({exc}); deleting it and rebuilding it from the raw files",
            RuntimeWarning,
            stacklevel=4,  # the user's fetch_ns1 / load_ns1 call
        )
        path.unlink(missing_ok=True)
        forget_sha256(folder, name)
        return None
    if not recorded:
        _record_quietly(folder, {name: (sha, size)}, _CACHE_SOURCE)
    return data


def _write_cache(folder: Path, name: str, tag: str, parsed: dict[str, Any], sums: dict[str, str]) -> Bunch:
    """Write the cache, read it back through the checked open file and record what was read."""
    n_stimuli = parsed["X"].shape[0]
    save_dataset(
        folder / name,
        parsed["X"],
        parsed["y"],
        dt_ms=DT_MS,
        stimulus_names=[f"sound{s + 1:02d}" for s in range(n_stimuli)],
        neuron_names=parsed["units"]["id"],
        splits=_contiguous_split(n_stimuli),
        compression="gzip",
        ns1_cache_version=_CACHE_VERSION,
        smoothing=tag,
        units={k: v for k, v in parsed["units"].items()},
        source_sha256=sums,
    )
    forget_sha256(folder, name)  # an entry of an older cache would refuse the new one
    data, sha, size, _ = _verified_cache(folder, name)
    record_sha256s(folder, {name: (sha, size)}, source=_CACHE_SOURCE)
    return data


def _load(folder: Path, *, smooth: Smooth, subset: str, download: bool, cache: bool, progress: bool | None,
          advice: str):
    tag = _smoothing_tag(smooth)
    _check_subset(subset)
    if progress is None:
        progress = sys.stderr.isatty()
    name = f"ns1_{tag}.h5"
    data = _read_cache(folder, name, tag) if cache else None
    if data is not None:
        return data, folder / name
    _check_raw_kinds(folder, (METADATA_FILE, SPECTROGRAM_FILE, SPIKES_ZIP) + ((README_FILE,) if download else ()))
    missing = _missing_raw(folder)
    if missing and not download:
        raise FileNotFoundError(_manual_message(folder, _missing_reason(folder, missing)))
    if cache or missing:
        _check_writable(folder, advice)
    if missing:
        absent = tuple(n for n in _DOWNLOAD_ORDER if not (folder / n).is_file() and n != SPIKES_ZIP)
        _download_missing(folder, absent + ((SPIKES_ZIP,) if SPIKES_ZIP in missing else ()), progress)
    if download and _folder_lacks_spike_files(folder):
        # A spikesandwav/ folder (an empty one made by hand, say) must not hide the zip.
        _check_writable(folder, advice)
        _download_missing(folder, (SPIKES_ZIP,), progress)
    parsed, reader = _parse(folder, smooth, progress)
    if cache:
        # Recorded only now that every file read without error: a bad file keeps no checksum.
        record_sha256s(folder, reader.fresh, source="local")
        data = _write_cache(folder, name, tag, parsed, _source_sums(reader))
        del parsed
    else:
        n_stimuli = parsed["X"].shape[0]
        data = Bunch(
            X=parsed["X"],
            y=parsed["y"],
            neuron_names=parsed["units"]["id"],
            stimulus_names=np.array([f"sound{s + 1:02d}" for s in range(n_stimuli)]),
            splits=_contiguous_split(n_stimuli),
            metadata={"units": parsed["units"]},
        )
    return data, folder / name


def _to_bunch(data: Bunch, cache_path: Path | None, *, subset: str, smooth: Smooth, folder: Path) -> Bunch:
    units = Bunch(**{k: np.asarray(v) for k, v in data.metadata["units"].items()})
    units.clean = _clean_mask(units.single_t, units.depth)
    keep = units.clean if subset == "clean" else np.ones(units.id.shape, bool)
    units = Bunch(**{k: v[keep] for k, v in units.items()})
    y = data.y[:, :, keep] if subset == "clean" else data.y
    return Bunch(
        X=data.X,
        y=y,
        neuron_names=units.id,
        units=units,
        stimulus_names=data.stimulus_names,
        dt_ms=DT_MS,
        freqs=None,
        splits=data.splits,
        train=np.asarray(data.splits["train"]),
        valid=np.asarray(data.splits["valid"]),
        test=np.asarray(data.splits["test"]),
        subset=subset,
        smooth=smooth,
        data_dir=str(folder),
        cache_path=None if cache_path is None else str(cache_path),
        DESCR=DESCR,
    )


# --------------------------------------------------------------------------- public API


def fetch_ns1(
    data_home: str | os.PathLike | None = None,
    *,
    download_if_missing: bool = True,
    smooth: Smooth = True,
    subset: Literal["all", "clean"] = "all",
    return_X_y: bool = False,
    progress: bool | None = None,
) -> Bunch | tuple[np.ndarray, np.ndarray]:
    """Load the NS1 dataset (ferret A1, 20 natural sounds), downloading it if needed.

    The raw files are kept in ``<data_home>/ns1/`` with their SHA-256 sums recorded in
    ``skstrf_checksums.json`` after the first good download; the spike files are read
    from ``spikesandwav.zip`` itself (nothing is extracted), through the open file whose
    SHA-256 was checked, so every byte that becomes ``y`` is a checked byte. The
    processed arrays are cached there in the skstrf HDF5 format (one file per ``smooth``
    setting), checked the same way before each reuse. A damaged cache is reported with a
    warning, deleted and rebuilt from the raw files; a file at the cache's name that
    skstrf did not write is never deleted (``FileExistsError``).

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder for skstrf datasets; defaults to ``$SKSTRF_DATA`` or ``~/skstrf_data``.
    download_if_missing : bool, default=True
        Download missing raw files (the three OSF files and the DNet spectrogram). When
        False, missing files raise FileNotFoundError explaining where to put them.
    smooth : {True, False, "normalized"}, default=True
        True: convolve every repeat with the 21 ms Hanning window ``np.hanning(5)``
        (peak 1, sum 2, as in deepSTRF and the seed); "normalized": the same window
        divided by its sum (keeps the spike-count scale); False: raw spike counts.
    subset : {"all", "clean"}, default="all"
        "all": the 119 units; "clean": the 73 units with ``singleT`` in {"Yes",
        "Maybe"} and ``depth >= 0``.
    return_X_y : bool, default=False
        Return ``(X, y)`` instead of the Bunch.
    progress : bool, default=None
        Show progress bars on stderr; None shows them when stderr is a terminal.

    Returns
    -------
    data : Bunch
        X : ndarray of shape (n_stimuli, n_times, n_freqs)
            The spectrograms, (20, 999, 34).
        y : ndarray of float32 of shape (n_stimuli, n_times, n_neurons, n_repeats)
            Spike counts per 5 ms frame (smoothed when asked), (20, 999, 119, 20);
            a repeat a unit lacks is NaN.
        neuron_names : ndarray of str of shape (n_neurons,)
            Unit ids (the spike file names without ``.mat``).
        units : Bunch of ndarrays of shape (n_neurons,)
            ``id``, ``depth`` (µm), ``noise_ratio``, ``single_n``, ``single_t``
            ('Yes'/'Maybe'/'No'), ``n_electrodes``, ``electrode``, ``spike_file``
            (relative to ``spikesandwav/``, after the ``_1`` fallback), ``clean``.
        stimulus_names : ndarray of str of shape (n_stimuli,)
            ``"sound01"`` ... ``"sound20"``.
        dt_ms : float
            5.0.
        freqs : None
            Band frequencies are not distributed with the spectrogram.
        splits : dict
            ``"train"`` (0-13), ``"valid"`` (14-16), ``"test"`` (17-19) stimulus indices.
        train, valid, test : ndarray of int
            The same indices as fields, as :func:`make_strf_dataset` returns them.
        subset, smooth, data_dir, cache_path, DESCR
            The options used, where the files are, and a description with citations.
    (X, y) : tuple
        When ``return_X_y`` is True.

    Raises
    ------
    DownloadError
        When a download fails (offline, HTTP error, interrupted or corrupt transfer);
        the message lists every URL, the exact file names and the folder to place them
        in by hand.
    FileNotFoundError
        When raw files are missing and ``download_if_missing`` is False.
    ChecksumError
        When a raw file differs from the SHA-256 recorded at its first download, or is
        written to while it is read.
    NS1FormatError
        When a raw file is not the NS1 file it should be (an HTML page, a damaged zip).
    FileExistsError
        When a file skstrf did not write sits at the cache's name (it is left alone).
    IsADirectoryError
        When a folder sits at the name of an NS1 file.
    PermissionError
        When the folder does not let you create files (before anything is downloaded).
    """
    _smoothing_tag(smooth)  # options are checked before any file is touched
    _check_subset(subset)
    folder = get_data_home(data_home) / "ns1"
    ensure_folder(folder, "the NS1 folder")
    data, cache_path = _load(
        folder, smooth=smooth, subset=subset, download=download_if_missing, cache=True, progress=progress,
        advice="Give a data_home you can write to (or the SKSTRF_DATA environment variable), or load the files "
        "with load_ns1(folder, cache=False), which writes nothing",
    )
    bunch = _to_bunch(data, cache_path, subset=subset, smooth=smooth, folder=folder)
    return (bunch.X, bunch.y) if return_X_y else bunch


def load_ns1(
    path: str | os.PathLike,
    *,
    smooth: Smooth = True,
    subset: Literal["all", "clean"] = "all",
    return_X_y: bool = False,
    cache: bool = True,
    progress: bool | None = None,
) -> Bunch | tuple[np.ndarray, np.ndarray]:
    """Load NS1 from files placed by hand in a folder (nothing is downloaded).

    The folder must hold ``MetadataSHEnCneurons.mat``, ``test_data_5ms.mat`` and either
    ``spikesandwav.zip`` or its extracted ``spikesandwav/`` folder. The zip, when there,
    is read directly (a ``spikesandwav/`` folder beside it is ignored). Without the zip,
    the folder is read file by file, each file treated as any file placed by hand: its
    SHA-256 is recorded on first use (with ``cache=True``) and checked on every later use.

    Parameters
    ----------
    path : str or path-like
        The folder.
    smooth : {True, False, "normalized"}, default=True
        See :func:`fetch_ns1`.
    subset : {"all", "clean"}, default="all"
        See :func:`fetch_ns1`.
    return_X_y : bool, default=False
        Return ``(X, y)`` instead of the Bunch.
    cache : bool, default=True
        Write the HDF5 cache and the checksum manifest in the folder and reuse them.
        False writes nothing: files with a recorded SHA-256 are still checked against it,
        files without one are used as they are (after the check of their content kind).
    progress : bool, default=None
        Show progress bars on stderr; None shows them when stderr is a terminal.

    Returns
    -------
    data : Bunch or tuple
        As :func:`fetch_ns1`.

    Raises
    ------
    FileNotFoundError
        When ``path`` is not a folder, or files are missing (the message lists them).
    ChecksumError, NS1FormatError, FileExistsError, IsADirectoryError
        As :func:`fetch_ns1`.
    PermissionError
        With ``cache=True``, when the folder does not let you create files (before any
        file is read); ``cache=False`` reads a read-only folder.
    """
    _smoothing_tag(smooth)
    _check_subset(subset)
    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder; expected the folder holding the NS1 files")
    data, cache_path = _load(
        folder, smooth=smooth, subset=subset, download=False, cache=cache, progress=progress,
        advice="Pass cache=False to read the files without writing anything, or copy them to a folder you can "
        "write to",
    )
    bunch = _to_bunch(data, cache_path if cache else None, subset=subset, smooth=smooth, folder=folder)
    return (bunch.X, bunch.y) if return_X_y else bunch
