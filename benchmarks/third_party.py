"""Benchmark cases no one on the skstrf team designed, with a verified, atomic on-disk cache.

Two cases, both in the skstrf data contract (``X`` of shape (n_stimuli, n_times, n_freqs),
NaN-padded at the end; ``y`` of shape (n_stimuli, n_times, n_neurons[, n_repeats])):

- :func:`load_naplib_speech`: naplib's sample data (``naplib/io/sample_data/demo_data.mat``,
  read with h5py): 10 real speech excerpts as naplib's 128-band auditory spectrograms at
  100 Hz, with 10 channels that naplib's authors simulated from their own linear STRFs
  plus noise; one repeat, so it is scored with ``cc``.
- :func:`make_auditory_nerve_case`: spike counts of the Bruce-Zilany-Carney auditory-nerve
  model (``brucezilany``; Bruce, Erfani & Zilany 2018, Hear Res 360:40-54) driven by real
  speech (naplib's waveforms), harmonic stacks and noise bursts with silent gaps between
  them, fibres over characteristic frequencies and the three spontaneous-rate classes,
  many repeats, 5 ms bins. The spikes and the waveforms the fibres heard are cached; the
  spectrogram ``X`` is computed at load time by a front end (by default
  :class:`skstrf.audio.LogSpectrogram`), never stored.

Neither naplib nor brucezilany is a dependency of skstrf: run this module with the
benchmark environment (see ``benchmarks/README.md``). The cache folder is
``~/.cache/skstrf-benchmarks`` unless ``$SKSTRF_BENCHMARK_CACHE`` or an argument says
otherwise. Every file is written atomically (a temporary file in the same folder, fsync,
``os.replace``) with the permissions the umask allows, and verified on read against the
SHA-256 of its arrays and the parameters that made it; a file that fails the check is
regenerated, with a message.

Run ``python benchmarks/third_party.py`` to build (or check) the cached cases; ``--help``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.utils import Bunch

CACHE_ENV = "SKSTRF_BENCHMARK_CACHE"
DEFAULT_CACHE = Path("~/.cache/skstrf-benchmarks")
# Bump when the generator changes what it computes from the same parameters: a cached file
# of another version is regenerated.
AN_GENERATOR_VERSION = 1
_META_KEY = "__meta__"


# --------------------------------------------------------------------------------------
# Cache: atomic writes, verified reads
# --------------------------------------------------------------------------------------
def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``path``, else ``$SKSTRF_BENCHMARK_CACHE``, else the default.

    Parameters
    ----------
    path : str, path-like or None, default=None

    Returns
    -------
    folder : pathlib.Path
        Expanded (``~``) but not created.
    """
    if path is None:
        path = os.environ.get(CACHE_ENV) or DEFAULT_CACHE
    return Path(path).expanduser()


def _umask() -> int:
    """The process umask, read without changing it where Linux reports it."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # the portable way: set, then restore at once
    os.umask(mask)
    return mask


def _array_digest(arrays: Mapping[str, np.ndarray]) -> dict[str, str]:
    """SHA-256 of each array's dtype, shape and bytes (C order)."""
    out = {}
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h = hashlib.sha256()
        h.update(f"{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
        out[name] = h.hexdigest()
    return out


def _params_digest(params: Mapping[str, Any]) -> str:
    """SHA-256 of the parameters as canonical JSON (sorted keys)."""
    text = json.dumps(params, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def save_case(path: str | os.PathLike, arrays: Mapping[str, np.ndarray],
              params: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> Path:
    """Write arrays and their provenance to ``path`` atomically.

    The arrays go into an uncompressed ``.npz`` with a JSON entry holding ``params`` (the
    generator's parameters), ``extra`` (facts about the run: time, versions) and the
    SHA-256 of every array. The file is first written to a new temporary file in the same
    folder (created exclusively, so a symlink planted at that name is never followed),
    flushed and fsynced, given the permissions ``0o666`` minus the umask, then moved over
    ``path`` with :func:`os.replace`; the folder is fsynced too. A reader sees the old file
    or the new one, never half of one.

    Parameters
    ----------
    path : str or path-like
        Destination; its folder is created if missing.
    arrays : mapping of str to ndarray
        No object arrays (they would need pickle to read back).
    params : mapping
        JSON-serialisable parameters that determine the arrays.
    extra : mapping or None
        JSON-serialisable facts stored alongside (not verified).

    Returns
    -------
    path : pathlib.Path
    """
    path = Path(path)
    for name, a in arrays.items():
        if name == _META_KEY:
            raise ValueError(f"array name {_META_KEY!r} is reserved for the provenance entry")
        if np.asarray(a).dtype == object:
            raise TypeError(f"array {name!r} has dtype object, which cannot be read back without pickle")
    meta = {"params": dict(params), "sha256": _array_digest(arrays), "extra": dict(extra or {})}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            buffer = {**{k: np.asarray(v) for k, v in arrays.items()}, _META_KEY: np.array(json.dumps(meta))}
            np.savez(fh, **buffer)
            fh.flush()
            os.fsync(fh.fileno())
            os.fchmod(fh.fileno(), 0o666 & ~_umask())  # mkstemp's 0o600 ignores the umask
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return path


class CacheMismatch(Exception):
    """A cached file that cannot be trusted: unreadable, other parameters, or altered arrays."""


def load_case(path: str | os.PathLike, params: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict]:
    """Read a file written by :func:`save_case` and check it before use.

    Nothing in the file is trusted: it is read without pickle, its provenance entry must be
    valid JSON naming the same parameters as ``params``, and every array must match its
    stored SHA-256 (and no array may be missing or added).

    Parameters
    ----------
    path : str or path-like
    params : mapping
        The parameters the caller would generate the case with.

    Returns
    -------
    arrays : dict of str to ndarray
    extra : dict
        The facts stored with the arrays.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    CacheMismatch
        With the reason, for any other failed check.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except FileNotFoundError:
        raise
    except Exception as exc:  # a truncated or foreign file: any reader error means "untrusted"
        raise CacheMismatch(f"{path} cannot be read as a cache file ({type(exc).__name__}: {exc})") from exc
    raw = arrays.pop(_META_KEY, None)
    if raw is None or raw.shape != () or raw.dtype.kind != "U":
        raise CacheMismatch(f"{path} has no provenance entry")
    try:
        meta = json.loads(str(raw))
        stored_params, digests = meta["params"], meta["sha256"]
    except (ValueError, KeyError, TypeError) as exc:
        raise CacheMismatch(f"{path} has an unreadable provenance entry ({exc})") from exc
    wanted = json.loads(json.dumps(dict(params)))  # the same JSON round trip as when stored
    if stored_params != wanted:
        changed = sorted(k for k in set(stored_params) | set(wanted)
                         if stored_params.get(k) != wanted.get(k))
        raise CacheMismatch(f"{path} was made with other parameters (differ: {', '.join(changed)})")
    if not isinstance(digests, dict) or set(digests) != set(arrays):
        raise CacheMismatch(f"{path}: its arrays are not the ones its provenance lists")
    actual = _array_digest(arrays)
    bad = sorted(name for name in arrays if actual[name] != digests[name])
    if bad:
        raise CacheMismatch(f"{path}: SHA-256 mismatch of {', '.join(bad)} (altered or corrupted)")
    return arrays, dict(meta.get("extra") or {})


def cached(name: str, params: Mapping[str, Any], generate: Callable[[], tuple[dict, dict]],
           folder: str | os.PathLike | None = None, *, refresh: bool = False,
           log: Callable[[str], None] | None = print) -> tuple[dict[str, np.ndarray], dict, bool]:
    """Arrays of a case from the cache, or generated and cached.

    The file is ``<folder>/<name>-<first 16 hex digits of the parameters' SHA-256>.npz``.
    A file that fails :func:`load_case`'s checks is regenerated (the reason is logged).

    Parameters
    ----------
    name : str
        Case name (file name prefix).
    params : mapping
        JSON-serialisable parameters of ``generate``.
    generate : callable
        Returns ``(arrays, extra)`` as :func:`save_case` takes them.
    folder : str, path-like or None
        See :func:`cache_dir`.
    refresh : bool, default=False
        Regenerate even when a valid file exists.
    log : callable or None, default=print

    Returns
    -------
    arrays : dict of str to ndarray
    extra : dict
    hit : bool
        Whether the arrays came from the cache.
    """
    say = log or (lambda message: None)
    path = cache_dir(folder) / f"{name}-{_params_digest(params)[:16]}.npz"
    if not refresh:
        try:
            arrays, extra = load_case(path, params)
            return arrays, extra, True
        except FileNotFoundError:
            pass
        except CacheMismatch as exc:
            say(f"cache: {exc}; regenerating")
    arrays, extra = generate()
    save_case(path, arrays, params, extra)
    say(f"cache: wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    # What the caller gets is what a later read gets: verified from the file just written.
    arrays, extra = load_case(path, params)
    return arrays, extra, False


# --------------------------------------------------------------------------------------
# naplib's sample data
# --------------------------------------------------------------------------------------
def naplib_sample_path() -> Path:
    """Path of naplib's ``io/sample_data/demo_data.mat``, found without importing naplib.

    Raises
    ------
    ModuleNotFoundError
        naplib is not installed in this environment.
    FileNotFoundError
        naplib is installed without its sample data.
    """
    spec = importlib.util.find_spec("naplib")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "naplib is not installed here; it is a benchmark package, not a dependency of "
            "skstrf: use the benchmark environment (benchmarks/README.md) or pass path=")
    for root in spec.submodule_search_locations:
        path = Path(root) / "io" / "sample_data" / "demo_data.mat"
        if path.is_file():
            return path
    raise FileNotFoundError(f"naplib at {list(spec.submodule_search_locations)} has no io/sample_data/demo_data.mat")


def _matlab_string(f, ref) -> str:
    """A MATLAB char array (stored as uint16 codes) behind an HDF5 reference."""
    codes = np.asarray(f[ref][()]).ravel()
    return "".join(map(chr, codes.astype(int)))


def _read_naplib_file(path: Path) -> dict[str, list]:
    """The per-trial fields of naplib's MATLAB v7.3 ``out`` struct array, checked.

    Shapes are checked against each other and against the stored rates and durations, not
    assumed: ``aud`` and ``resp`` must have one row per frame (``duration * dataf``), the
    sound one sample per ``1 / soundf``.
    """
    import h5py

    fields = ("name", "sound", "soundf", "dataf", "duration", "befaft", "resp", "aud")
    out: dict[str, list] = {k: [] for k in fields}
    with h5py.File(path, "r") as f:
        if "out" not in f:
            raise ValueError(f"{path} has no 'out' struct (keys: {list(f.keys())})")
        struct = f["out"]
        missing = [k for k in fields if k not in struct]
        if missing:
            raise ValueError(f"{path}: the 'out' struct lacks the fields {missing}")
        n_trials = struct["name"].shape[0] * struct["name"].shape[1]
        for k in fields:
            refs = np.asarray(struct[k][()]).ravel()
            if refs.size != n_trials:
                raise ValueError(f"{path}: field {k!r} has {refs.size} entries, 'name' has {n_trials}")
            for ref in refs:
                if k == "name":
                    out[k].append(_matlab_string(f, ref))
                else:
                    out[k].append(np.asarray(f[ref][()], dtype=np.float64))
    for i in range(n_trials):
        rate = float(out["dataf"][i].item())
        sound_rate = float(out["soundf"][i].item())
        duration = float(out["duration"][i].item())
        aud, resp, sound = out["aud"][i], out["resp"][i], out["sound"][i]
        if aud.ndim != 2 or resp.ndim != 2 or aud.shape[0] != resp.shape[0]:
            raise ValueError(f"trial {i}: aud {aud.shape} and resp {resp.shape} are not (frames, ...) of equal length")
        if abs(aud.shape[0] - duration * rate) > 1:
            raise ValueError(f"trial {i}: {aud.shape[0]} frames but duration * dataf = {duration * rate:.1f}")
        if sound.ndim != 2 or 1 not in sound.shape or abs(sound.size - duration * sound_rate) > 1:
            raise ValueError(f"trial {i}: sound of shape {sound.shape} is not one channel of duration * soundf samples")
    return out


def load_naplib_speech(path: str | os.PathLike | None = None) -> Bunch:
    """naplib's sample speech data in the skstrf data contract.

    Ten excerpts of an audiobook (52-85 s each, including 1 s of digital silence before
    and after the speech), as the 128-band auditory spectrograms at 100 Hz that naplib ships
    (non-negative, silence at 0; the file does not say how they were made, naplib's own
    ``auditory_spectrogram`` is the NSL toolbox's ``wav2aud`` model: constant-Q cochlear
    filters, hair-cell compression, lateral inhibition), and 10 response channels that naplib's
    authors SIMULATED by adding noise to the predictions of 10 linear STRF models. One
    repeat per stimulus (score with ``cc``, not ``cc_norm``). It cannot judge the history
    before stimuli, nonlinearities or kernels (the responses are linear by construction);
    it judges the ridge on real sound statistics and a wide design.

    Parameters
    ----------
    path : str, path-like or None, default=None
        The ``demo_data.mat`` file; None finds it in the installed naplib package.

    Returns
    -------
    data : sklearn.utils.Bunch
        X : ndarray of shape (10, n_times, 128)
            Auditory spectrograms, NaN-padded at the end (n_times = the longest, 8540).
        y : ndarray of shape (10, n_times, 10)
            Simulated responses, NaN on padded frames.
        lengths : ndarray of int of shape (10,)
            Valid frames per stimulus.
        waveforms : ndarray of shape (10, n_samples)
            The sounds, NaN-padded at the end, full scale 1.
        sample_rate : float
            Of the waveforms, Hz (11025).
        dt_ms : float
            10.0.
        names, channels : ndarray of str
            Stimulus names and the channel labels naplib gives them.
        silence_s : ndarray of shape (10, 2)
            Digital silence before and after each excerpt, in seconds (naplib's ``befaft``).
        source : str
            The file read.
        DESCR : str
    """
    path = Path(path) if path is not None else naplib_sample_path()
    raw = _read_naplib_file(path)
    n = len(raw["name"])
    rates = np.array([float(r.item()) for r in raw["dataf"]])
    if not np.allclose(rates, 100.0, rtol=1e-9):
        raise ValueError(f"{path}: frame rates {rates} differ from the 100 Hz this loader documents")
    sound_rates = np.array([float(r.item()) for r in raw["soundf"]])
    if not np.all(sound_rates == sound_rates[0]):
        raise ValueError(f"{path}: waveforms at several sample rates {np.unique(sound_rates)}")
    n_freqs = {a.shape[1] for a in raw["aud"]}
    n_channels = {r.shape[1] for r in raw["resp"]}
    if len(n_freqs) != 1 or len(n_channels) != 1:
        raise ValueError(f"{path}: trials disagree on bands {n_freqs} or channels {n_channels}")
    lengths = np.array([a.shape[0] for a in raw["aud"]])
    n_times = int(lengths.max())
    X = np.full((n, n_times, n_freqs.pop()), np.nan)
    y = np.full((n, n_times, n_channels.pop()), np.nan)
    for i, (a, r) in enumerate(zip(raw["aud"], raw["resp"])):
        X[i, : len(a)] = a
        y[i, : len(r)] = r
    if np.isnan(X[np.arange(n_times)[None, :] < lengths[:, None]]).any():
        raise ValueError(f"{path}: NaN inside a spectrogram")
    sounds = [s.ravel() for s in raw["sound"]]
    waveforms = np.full((n, max(map(len, sounds))), np.nan)
    for i, s in enumerate(sounds):
        waveforms[i, : len(s)] = s
    channels = _naplib_channel_names(path, n)
    silence_s = np.array([b.ravel() for b in raw["befaft"]])
    # naplib's befaft says how much silence pads each excerpt: check it rather than trust it.
    pads = [(int(round(a * sound_rates[0])), int(round(b * sound_rates[0]))) for a, b in silence_s]
    digital = all(np.all(s[:a] == 0) and np.all(s[len(s) - b:] == 0) for s, (a, b) in zip(sounds, pads))
    span = (f"{silence_s.min():g}" if silence_s.min() == silence_s.max()
            else f"{silence_s.min():g}-{silence_s.max():g}")
    padding = (f"{span} s of digital silence before and after each"
               if digital else "naplib's befaft padding is not digital silence")
    descr = (
        f"naplib sample data ({path.name}): {n} speech excerpts of "
        f"{lengths.min() / 100:.1f}-{lengths.max() / 100:.1f} s ({padding}) "
        f"as naplib's {X.shape[2]}-band auditory spectrograms (non-negative, silence at 0) at "
        f"100 Hz; {y.shape[2]} channels SIMULATED by naplib's authors from linear STRFs plus noise; "
        "one repeat (score with cc). Responses are linear in X by construction."
    )
    return Bunch(X=X, y=y, lengths=lengths, waveforms=waveforms, sample_rate=float(sound_rates[0]),
                 dt_ms=10.0, names=np.array(raw["name"]), channels=channels,
                 silence_s=silence_s, source=str(path), DESCR=descr)


def _naplib_channel_names(path: Path, n_trials: int) -> np.ndarray:
    """The first trial's ``chname`` cell (labels only; not needed for fitting)."""
    import h5py

    with h5py.File(path, "r") as f:
        try:
            cell = f[np.asarray(f["out"]["chname"][()]).ravel()[0]][()]
            return np.array([_matlab_string(f, ref) for ref in np.asarray(cell).ravel()])
        except (KeyError, TypeError, ValueError):
            return np.array([], dtype=str)


# --------------------------------------------------------------------------------------
# The auditory-nerve case
# --------------------------------------------------------------------------------------
AN_SAMPLE_RATE = 100_000  # the model's rate (it accepts 100-500 kHz)
# Spontaneous rates of the three classes (spikes/s) and refractory periods (s), the
# values of the BEZ2018 example scripts; cat cochlea with normal hair cells.
AN_SPONT = {"low": 0.1, "medium": 4.0, "high": 100.0}
AN_TABS, AN_TREL = 0.6e-3, 0.6e-3

AN_DEFAULTS: dict[str, Any] = {
    "n_cfs": 40,                  # log-spaced characteristic frequencies
    "cf_range_hz": (125.0, 8000.0),
    "sr_classes": ("low", "medium", "high"),
    "n_repeats": 10,
    "dt_ms": 5.0,
    "n_speech": 8,                # 3 s excerpts of naplib's speech, one per sentence
    "speech_s": 3.0,
    "n_harmonic": 4,              # harmonic stacks of 0.6-1.2 s
    "n_noise": 4,                 # noise bursts of 0.3-0.8 s
    "level_db_spl": (55.0, 75.0),  # each sound's RMS level, drawn uniformly
    "gap_s": (0.15, 0.6),         # silence between sounds, drawn uniformly
    "lead_in_s": 0.3,             # waveform kept before each stimulus's onset
    "first_silence_s": 0.5,       # before the first sound
    "seed": 0,
}


def _round_to(seconds: float, step_s: float) -> float:
    return round(seconds / step_s) * step_s


def _ramp(n: int, n_ramp: int) -> np.ndarray:
    """Raised-cosine onset and offset ramps of ``n_ramp`` samples over ``n`` samples."""
    env = np.ones(n)
    r = 0.5 - 0.5 * np.cos(np.pi * (np.arange(n_ramp) + 0.5) / n_ramp)
    env[:n_ramp] = r
    env[n - n_ramp:] = np.minimum(env[n - n_ramp:], r[::-1])
    return env


def _at_level(x: np.ndarray, db_spl: float) -> np.ndarray:
    """``x`` scaled to an RMS of ``db_spl`` dB re 20 uPa (pascals)."""
    return x * (20e-6 * 10.0 ** (db_spl / 20.0) / np.sqrt(np.mean(x**2)))


def _an_sounds(params: Mapping[str, Any], speech: Bunch | None) -> tuple[list[np.ndarray], list[str]]:
    """The case's sounds at the model's rate, in pascals, each a whole number of frames.

    Speech: ``n_speech`` excerpts of ``speech_s`` from distinct naplib sentences, starting
    at a random point of the speech (after naplib's 1 s of leading silence), resampled to
    100 kHz. Harmonic stacks: f0 100-400 Hz (log-uniform) gliding by up to +-20%,
    harmonics up to 8 kHz in random phase with a -6 dB/octave slope. Noise bursts:
    Gaussian noise band-passed to 1-3 octaves somewhere in 200 Hz-8 kHz. All get 10 ms
    raised-cosine ramps (5 ms for noise) and a level drawn in ``level_db_spl``.
    """
    from scipy.signal import butter, resample_poly, sosfiltfilt

    rng = np.random.default_rng([params["seed"], 1])
    fs = AN_SAMPLE_RATE
    frame = int(round(fs * params["dt_ms"] / 1000.0))
    lo_db, hi_db = params["level_db_spl"]
    sounds, kinds = [], []
    if params["n_speech"]:
        if speech is None:
            speech = load_naplib_speech()
        if params["n_speech"] > len(speech.X):
            raise ValueError(f"n_speech={params['n_speech']} but naplib has {len(speech.X)} sentences")
        sr = speech.sample_rate
        g = np.gcd(int(fs), int(sr))
        for i in range(params["n_speech"]):
            wave = speech.waveforms[i][~np.isnan(speech.waveforms[i])]
            lead, tail = (speech.silence_s[i] * sr).astype(int)
            usable = wave[lead: len(wave) - tail]
            n_src = int(round(params["speech_s"] * sr))
            start = int(rng.integers(0, len(usable) - n_src))
            x = resample_poly(usable[start: start + n_src], int(fs) // g, int(sr) // g)
            n = (len(x) // frame) * frame
            x = x[:n] * _ramp(n, int(0.01 * fs))
            sounds.append(_at_level(x, rng.uniform(lo_db, hi_db)))
            kinds.append(f"speech:{speech.names[i]}@{start / sr:.2f}s")
    for _ in range(params["n_harmonic"]):
        n = int(round(_round_to(rng.uniform(0.6, 1.2), params["dt_ms"] / 1000.0) * fs))
        t = np.arange(n) / fs
        f0 = np.exp(rng.uniform(np.log(100.0), np.log(400.0)))
        glide = f0 * (1.0 + rng.uniform(-0.2, 0.2) * t / t[-1])
        phase0 = 2 * np.pi * np.cumsum(glide) / fs
        x = np.zeros(n)
        for h in range(1, int(8000.0 // (1.2 * f0)) + 1):
            x += h ** -1.0 * np.sin(h * phase0 + rng.uniform(0, 2 * np.pi))  # -6 dB/octave
        x *= _ramp(n, int(0.01 * fs))
        sounds.append(_at_level(x, rng.uniform(lo_db, hi_db)))
        kinds.append(f"harmonic:f0={f0:.0f}Hz")
    for _ in range(params["n_noise"]):
        n = int(round(_round_to(rng.uniform(0.3, 0.8), params["dt_ms"] / 1000.0) * fs))
        width = rng.uniform(1.0, 3.0)
        low = np.exp(rng.uniform(np.log(200.0), np.log(8000.0 / 2**width)))
        sos = butter(4, [low, low * 2**width], btype="bandpass", fs=fs, output="sos")
        x = sosfiltfilt(sos, rng.standard_normal(n)) * _ramp(n, int(0.005 * fs))
        sounds.append(_at_level(x, rng.uniform(lo_db, hi_db)))
        kinds.append(f"noise:{low:.0f}-{low * 2**width:.0f}Hz")
    order = rng.permutation(len(sounds))
    return [sounds[i] for i in order], [kinds[i] for i in order]


def _an_sequence(params: Mapping[str, Any], sounds: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All sounds in one sequence with silent gaps; the onset of each and the gap before it.

    Returns
    -------
    sequence : ndarray of shape (n_samples,)
    onsets : ndarray of int of shape (n_stimuli,)
        First sample of each sound, a whole number of frames from the start.
    gaps_s : ndarray of shape (n_stimuli,)
        The silence just before each sound.
    """
    rng = np.random.default_rng([params["seed"], 2])
    fs = AN_SAMPLE_RATE
    step = params["dt_ms"] / 1000.0
    gaps = np.array([_round_to(rng.uniform(*params["gap_s"]), step) for _ in sounds])
    gaps[0] = _round_to(params["first_silence_s"], step)
    gap_samples = np.round(gaps * fs).astype(int)
    onsets = np.cumsum(gap_samples + np.r_[0, [len(s) for s in sounds[:-1]]])
    n_total = onsets[-1] + len(sounds[-1]) + int(round(0.05 * fs))  # 50 ms after the last sound
    sequence = np.zeros(n_total)
    for onset, s in zip(onsets, sounds):
        sequence[onset: onset + len(s)] = s
    return sequence, onsets, gaps


def _an_fibre_counts(sequence: np.ndarray, cf: float, sponts: list[float], n_repeats: int,
                     frame: int, seed: int) -> np.ndarray:
    """Spike counts per frame of every repeat of the fibres of one CF (one per spont rate).

    The inner ear (middle ear, cochlear filters, inner hair cell) is simulated once for the
    CF; the synapse (power-law adaptation with its fractional Gaussian noise, vesicle
    release, refractoriness) once per fibre and repeat, each repeat an independent
    presentation of the whole sequence, seeded with ``seed``.

    Returns
    -------
    counts : ndarray of uint16 of shape (n_sponts, n_repeats, n_frames)
    """
    import brucezilany as bz

    fs = AN_SAMPLE_RATE
    stim = bz.stimulus.Stimulus(sequence, fs, (len(sequence) + 1) / fs)
    ihc = bz.inner_hair_cell(stim, cf=cf, n_rep=1, cohc=1.0, cihc=1.0, species=bz.Species.CAT)
    n_frames = len(sequence) // frame
    counts = np.zeros((len(sponts), n_repeats, n_frames), dtype=np.uint16)
    for k, spont in enumerate(sponts):
        mapped = bz.map_to_synapse(ihc, spont, cf, stim.time_resolution)
        for r in range(n_repeats):
            # brucezilany's synapse is deterministic unless seeded; one seed per
            # (CF, class, repeat), drawn from the case's seed, keeps repeats independent.
            bz.set_seed(int(np.random.default_rng([seed, int(round(cf * 1000)), k, r]).integers(2**31 - 1)))
            out = bz.synapse(mapped, cf, 1, stim.n_simulation_timesteps, stim.time_resolution,
                             noise=bz.NoiseType.RANDOM, pla_impl=bz.PowerLaw.APPROXIMATED,
                             spontaneous_firing_rate=spont, abs_refractory_period=AN_TABS,
                             rel_refractory_period=AN_TREL, calculate_stats=False)
            idx = (np.asarray(out.spike_times) * fs + 1e-6).astype(np.int64) // frame
            idx = idx[(idx >= 0) & (idx < n_frames)]
            counts[k, r] = np.bincount(idx, minlength=n_frames)
    return counts


def _generate_an(params: Mapping[str, Any], log: Callable[[str], None]) -> tuple[dict, dict]:
    """Simulate the case (see :func:`make_auditory_nerve_case`); arrays and run facts."""
    import brucezilany

    start, start_cpu = time.perf_counter(), time.process_time()
    fs = AN_SAMPLE_RATE
    frame = int(round(fs * params["dt_ms"] / 1000.0))
    sounds, kinds = _an_sounds(params, None)
    sequence, onsets, gaps = _an_sequence(params, sounds)
    cfs = np.geomspace(*params["cf_range_hz"], params["n_cfs"])
    sponts = [AN_SPONT[c] for c in params["sr_classes"]]
    per_cf = []
    for i, cf in enumerate(cfs):
        per_cf.append(_an_fibre_counts(sequence, float(cf), sponts, params["n_repeats"], frame, params["seed"]))
        if log and (i + 1) % max(1, len(cfs) // 8) == 0:
            log(f"  auditory nerve: {i + 1}/{len(cfs)} CFs, {time.perf_counter() - start:.0f} s")
    # (CF, class, repeat, frame) -> (frame, fibre = CF-major, repeat)
    counts = np.stack(per_cf).reshape(len(cfs) * len(sponts), params["n_repeats"], -1).transpose(2, 0, 1)
    lead = int(round(params["lead_in_s"] * fs))
    if onsets[0] < lead:
        raise ValueError("first_silence_s must be at least lead_in_s")
    arrays = {
        "sequence": sequence.astype(np.float64),
        "onsets": onsets.astype(np.int64),
        "lengths": np.array([len(s) // frame for s in sounds], dtype=np.int64),
        "gaps_s": gaps,
        "counts": np.ascontiguousarray(counts),
        "cfs": cfs,
        "spont": np.tile(np.asarray(sponts, dtype=float), len(cfs)),
        "kinds": np.array(kinds),
    }
    extra = {"seconds": round(time.perf_counter() - start, 1),
             "cpu_seconds": round(time.process_time() - start_cpu, 1), "brucezilany": _version("brucezilany"),
             "numpy": np.__version__, "python": sys.version.split()[0],
             "machine_load": os.getloadavg()}
    del brucezilany
    return arrays, extra


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def default_front_end(sample_rate: float, dt_ms: float):
    """The front end of the auditory-nerve case: :class:`skstrf.audio.LogSpectrogram`.

    32 mel bands from 100 Hz to 10 kHz, 20 ms Hann windows ending at each 5 ms bin, in dB
    SPL (``ref=20e-6``: the waveforms are in pascals) with a floor of 0 dB SPL (about the
    threshold of hearing). None when skstrf.audio is not available (X is then not made).
    """
    try:
        from skstrf.audio import LogSpectrogram
    except ImportError:
        return None
    return LogSpectrogram(sr=sample_rate, dt_ms=dt_ms, n_bands=32, fmin=100.0, fmax=10000.0,
                          ref=20e-6, floor_db=0.0)


def make_auditory_nerve_case(front_end: Any = "default", *, cache: str | os.PathLike | None = None,
                             refresh: bool = False, log: Callable[[str], None] | None = print,
                             **overrides: Any) -> Bunch:
    """Auditory-nerve fibres of the Bruce-Zilany-Carney model hearing speech and synthetic sounds.

    One sequence of sounds is played to every fibre: ``n_speech`` excerpts of naplib's
    audiobook speech (real sounds), ``n_harmonic`` harmonic stacks and ``n_noise`` noise
    bursts, in random order, at random levels, separated by silent gaps (the first sound
    after ``first_silence_s``). The fibres (cat, normal hair cells, BEZ2018a synapse with
    approximate power-law adaptation) sit at ``n_cfs`` characteristic frequencies
    log-spaced over ``cf_range_hz``, one per spontaneous-rate class at each CF. Each repeat
    is an independent presentation of the whole sequence. Spikes are counted in ``dt_ms``
    bins; each stimulus's frames start at its sound's onset and end with the sound, so what
    a fibre heard before a stimulus (the gap's silence and, when the gap is shorter than
    the lead-in, the end of the previous sound) is the lead-in, kept in the waveforms.

    The spikes and waveforms are cached (see :func:`cached`); the spectrogram ``X`` is made
    at every load by ``front_end``.

    Parameters
    ----------
    front_end : "default", transformer or None, default="default"
        Turns waveforms of shape (n_stimuli, n_samples), NaN-padded, at 100 kHz into
        spectrograms of shape (n_stimuli, n_frames, n_bands) with frame ``t`` the bin
        ``[t dt, (t + 1) dt)`` from each waveform's first sample (``fit_transform``);
        "default": :func:`default_front_end`; None: no ``X``.
    cache : str, path-like or None
        Cache folder (see :func:`cache_dir`).
    refresh : bool, default=False
        Regenerate even when the cache holds a valid file.
    log : callable or None, default=print
    **overrides
        Any key of ``AN_DEFAULTS`` (sizes, seed, levels, gaps).

    Returns
    -------
    data : sklearn.utils.Bunch
        y : ndarray of shape (n_stimuli, n_times, n_fibres, n_repeats)
            Spike counts per bin (float64), NaN-padded at the end.
        X : ndarray of shape (n_stimuli, n_times, n_bands) or None
            The front end's spectrogram of each stimulus's frames (lead-in cut off).
        X_lead_in : ndarray of shape (n_stimuli, n_lead_in_frames, n_bands) or None
            The front end's frames of the lead-in before each stimulus.
        waveforms : ndarray of shape (n_stimuli, n_samples)
            What the fibres heard, in pascals: the lead-in then the sound, NaN-padded.
        sample_rate : float
            100000.0.
        lead_in_s : ndarray of shape (n_stimuli,)
            Duration of each waveform's lead-in (the same for all stimuli).
        lead_in_frames : int
        gap_s : ndarray of shape (n_stimuli,)
            Silence just before each sound (the rest of the lead-in is the previous sound).
        lengths : ndarray of int of shape (n_stimuli,)
            Valid frames per stimulus.
        cfs, spont : ndarray of shape (n_fibres,)
            Each fibre's characteristic frequency (Hz) and spontaneous rate (spikes/s).
        sr_class : ndarray of str of shape (n_fibres,)
        kinds : ndarray of str of shape (n_stimuli,)
            What each sound is.
        dt_ms : float
        params : dict
            The generator's parameters (the cache key), seed included.
        generation : dict
            Seconds the simulation took, versions, machine load when it ran.
        front_end : str
            The front end that made X (its repr), or "none".
        from_cache : bool
        DESCR : str
    """
    unknown = sorted(set(overrides) - set(AN_DEFAULTS))
    if unknown:
        raise TypeError(f"unknown parameters {unknown}; known: {sorted(AN_DEFAULTS)}")
    params = {**AN_DEFAULTS, **overrides, "version": AN_GENERATOR_VERSION}
    params = json.loads(json.dumps(params))  # tuples -> lists, as stored
    say = log or (lambda message: None)
    arrays, extra, hit = cached("auditory_nerve", params, lambda: _generate_an(params, say), cache,
                                refresh=refresh, log=log)
    fs = AN_SAMPLE_RATE
    frame = int(round(fs * params["dt_ms"] / 1000.0))
    lead = int(round(params["lead_in_s"] * fs))
    onsets, lengths, counts = arrays["onsets"], arrays["lengths"], arrays["counts"]
    n_stim, n_times = len(onsets), int(lengths.max())
    n_frames_total, n_fibres, n_repeats = counts.shape
    y = np.full((n_stim, n_times, n_fibres, n_repeats), np.nan)
    waveforms = np.full((n_stim, lead + n_times * frame), np.nan)
    for s, (onset, length) in enumerate(zip(onsets, lengths)):
        first = onset // frame
        y[s, :length] = counts[first: first + length]
        waveforms[s, : lead + length * frame] = arrays["sequence"][onset - lead: onset + length * frame]
    n_lead_frames = lead // frame
    if front_end == "default":
        front_end = default_front_end(float(fs), params["dt_ms"])
    X = X_lead = None
    front_name = "none"
    if front_end is not None:
        full = np.asarray(front_end.fit_transform(waveforms), dtype=np.float64)
        if full.ndim != 3 or full.shape[0] != n_stim or full.shape[1] < n_lead_frames + n_times:
            raise ValueError(f"the front end returned shape {full.shape}; expected ({n_stim}, "
                             f">= {n_lead_frames + n_times}, n_bands) frames of {params['dt_ms']} ms")
        X_lead = full[:, :n_lead_frames]
        X = full[:, n_lead_frames: n_lead_frames + n_times]
        front_name = repr(front_end)
    sr_class = np.tile(np.array(params["sr_classes"]), params["n_cfs"])
    secs = extra.get("seconds")
    descr = (
        f"Bruce-Zilany-Carney auditory-nerve model (brucezilany {extra.get('brucezilany')}, BEZ2018a, "
        f"cat): {n_fibres} fibres = {params['n_cfs']} CFs log-spaced over {params['cf_range_hz'][0]:g}-"
        f"{params['cf_range_hz'][1]:g} Hz x {len(params['sr_classes'])} spontaneous-rate classes; "
        f"{n_stim} stimuli ({params['n_speech']} naplib speech excerpts of {params['speech_s']:g} s, "
        f"{params['n_harmonic']} harmonic stacks, {params['n_noise']} noise bursts; "
        f"{params['level_db_spl'][0]:g}-{params['level_db_spl'][1]:g} dB SPL) played in one sequence with "
        f"silent gaps of {params['gap_s'][0]:g}-{params['gap_s'][1]:g} s; {n_repeats} repeats; "
        f"{params['dt_ms']:g} ms bins; lead-in {params['lead_in_s']:g} s; seed {params['seed']}; "
        f"simulated in {secs} s. X from {front_name}."
    )
    return Bunch(y=y, X=X, X_lead_in=X_lead, waveforms=waveforms, sample_rate=float(fs),
                 lead_in_s=np.full(n_stim, params["lead_in_s"]), lead_in_frames=n_lead_frames,
                 gap_s=arrays["gaps_s"], lengths=lengths, cfs=np.repeat(arrays["cfs"], len(params["sr_classes"])),
                 spont=arrays["spont"], sr_class=sr_class, kinds=arrays["kinds"], dt_ms=float(params["dt_ms"]),
                 front_end=front_name, params=params, generation=extra, from_cache=hit, DESCR=descr)


def self_test() -> None:
    """Check the cache's promises on a throw-away folder; raises AssertionError on a failure.

    Atomic write with the umask's permissions; a symlink planted at the temporary name is
    not followed; a file with other parameters, altered arrays, an added array or a
    truncated body is refused (and ``cached`` regenerates it, saying why); a valid file is
    read back unchanged without regenerating.
    """
    import stat
    from unittest import mock

    arrays = {"a": np.arange(12.0).reshape(3, 4), "k": np.array(["x", "yz"])}
    params = {"n": 3, "range": (1.0, 2.0)}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        old = os.umask(0o027)
        try:
            path = save_case(folder / "case.npz", arrays, params)
        finally:
            os.umask(old)
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, oct(path.stat().st_mode)
        got, _ = load_case(path, params)
        assert set(got) == set(arrays) and all(np.array_equal(got[k], arrays[k]) for k in arrays)
        assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")], "temporary file left behind"

        # A symlink at the temporary name: mkstemp opens with O_EXCL, never through a link.
        target = folder / "victim"
        target.write_text("untouched")
        names = iter(["planted", "fresh"])
        (folder / ".case2.npz.planted.tmp").symlink_to(target)
        with mock.patch("tempfile._get_candidate_names", return_value=names):
            save_case(folder / "case2.npz", arrays, params)
        assert target.read_text() == "untouched"
        assert (folder / ".case2.npz.planted.tmp").is_symlink()
        load_case(folder / "case2.npz", params)

        def refused(p, prm, why):
            try:
                load_case(p, prm)
            except CacheMismatch as exc:
                assert why in str(exc), (why, str(exc))
                return
            raise AssertionError(f"{p} was trusted, expected: {why}")

        refused(path, {**params, "n": 4}, "other parameters")
        for name, change in (("altered", {"a": arrays["a"] + 1}), ("added", {"extra": np.zeros(2)})):
            raw = dict(np.load(path, allow_pickle=False))
            raw.update(change)
            with open(folder / f"{name}.npz", "wb") as fh:
                np.savez(fh, **raw)
            refused(folder / f"{name}.npz", params, "SHA-256 mismatch" if name == "altered" else "not the ones")
        (folder / "cut.npz").write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        refused(folder / "cut.npz", params, "cannot be read")

        calls, messages = [], []

        def generate():
            calls.append(1)
            return arrays, {"run": len(calls)}

        got, extra, hit = cached("c", params, generate, folder, log=messages.append)
        assert not hit and len(calls) == 1
        got, extra, hit = cached("c", params, generate, folder, log=messages.append)
        assert hit and len(calls) == 1 and extra == {"run": 1}
        cache_file = next(folder.glob("c-*.npz"))
        cache_file.write_bytes(cache_file.read_bytes()[:-100])
        got, extra, hit = cached("c", params, generate, folder, log=messages.append)
        assert not hit and len(calls) == 2 and any("regenerating" in m for m in messages), messages
    print("third_party cache self-test: OK")
    try:  # the h5py reader against naplib's own loader, when naplib imports
        from naplib.io import load_speech_task_data
    except Exception as exc:  # noqa: BLE001 (naplib's imports can fail in many ways)
        print(f"naplib check skipped: naplib does not import ({type(exc).__name__}: {exc})")
        return
    ours, theirs = load_naplib_speech(), load_speech_task_data()
    assert len(theirs) == len(ours.X)
    for i, trial in enumerate(theirs):
        n = ours.lengths[i]
        assert np.array_equal(ours.X[i, :n], trial["aud"]) and np.isnan(ours.X[i, n:]).all()
        assert np.array_equal(ours.y[i, :n], trial["resp"])
        wave = ours.waveforms[i][~np.isnan(ours.waveforms[i])]
        assert np.array_equal(wave, np.ravel(trial["sound"])) and float(trial["soundf"]) == ours.sample_rate
    print(f"naplib check: the h5py reader equals naplib.io.load_speech_task_data on all {len(theirs)} trials")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", help=f"cache folder (default: ${CACHE_ENV} or {DEFAULT_CACHE})")
    parser.add_argument("--refresh", action="store_true", help="regenerate even if cached")
    parser.add_argument("--quick", action="store_true", help="a tiny auditory-nerve case (seconds)")
    parser.add_argument("--self-test", action="store_true", help="check the cache's atomic writes and verified reads")
    args = parser.parse_args(argv)
    if args.self_test:
        self_test()
        return
    speech = load_naplib_speech()
    print(speech.DESCR)
    sizes = QUICK_AN if args.quick else {}
    an = make_auditory_nerve_case(cache=args.cache, refresh=args.refresh, **sizes)
    print(an.DESCR)
    print("y", an.y.shape, "X", None if an.X is None else an.X.shape, "from cache:", an.from_cache)


# A tiny auditory-nerve case for smoke checks (seconds).
QUICK_AN = {"n_cfs": 3, "n_repeats": 3, "n_speech": 1, "speech_s": 0.5, "n_harmonic": 1, "n_noise": 1,
            "gap_s": (0.1, 0.2)}


if __name__ == "__main__":
    main()
