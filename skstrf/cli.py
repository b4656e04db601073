"""Command line entry point: ``skstrf compare`` runs the kernel comparison."""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ._layout import block_edges
from ._threads import n_threads
from .model_selection import train_valid_test_indices

__all__ = ["main", "load_comparison_data"]

SYNTHETIC_N_NEURONS = 119
"""Cells of ``--dataset synthetic``: NS1's 119 units, so the default run is NS1-sized
(:func:`~skstrf.datasets.make_strf_dataset` itself defaults to 32 cells)."""

SYNTHETIC_N_LAGS = 15
"""Lags of the synthetic cells' true STRFs (the generator's default), capped at ``n_times``."""

REALISTIC_N_NEURONS = 8
"""Cells of ``--dataset realistic`` (song-like stimuli with near-silent bands)."""

RECORDING_BLOCKS = 20
"""Blocks a single continuous recording is cut into (as many as NS1 has stimuli)."""

USER_ERRORS = (ValueError, OSError, FloatingPointError, MemoryError)
"""What the input or the machine can cause (a missing or malformed file, inconsistent
splits, a dataset too short, a bad option value, a diverging fit, too little memory,
torch's ``OutOfMemoryError`` included): reported on one line, with exit status 1. Any
other exception is a bug and shows its traceback. skstrf's own errors about data and files
(``DatasetFormatError``, ``NS1FormatError``, scikit-learn's ``InvalidParameterError``) are
ValueErrors."""

EXIT_USAGE, EXIT_INPUT, EXIT_BUG, EXIT_INTERRUPTED = 2, 1, 70, 130


def load_comparison_data(dataset: str, *, n_neurons: int = SYNTHETIC_N_NEURONS, n_times: int = 999,
                         random_state: int = 0, n_lags: int = 15) -> Bunch:
    """Load a dataset for the comparison: "synthetic", "realistic", "continuous", "ns1" or a path
    to an skstrf HDF5 file.

    Every layout the HDF5 format allows is accepted. y is brought to
    (n_stimuli, n_times, n_neurons, n_repeats): one neuron gets a neuron axis, a PSTH a
    repeat axis of length 1 (cc_norm then falls back to cc). A single continuous
    recording (2-D X) is cut into up to 20 contiguous blocks of at least ``2 * n_lags``
    frames, used as stimuli (the STRF's history restarts at each block); the blocks are
    sized by the library's one rule for blocks of a recording (KFold sizes, the longer
    blocks first: 1010 frames in 20 blocks give 10 blocks of 51 frames, then 10 of 50).

    The file's ``train``, ``valid`` and ``test`` splits are used when it has all three;
    they must be non-empty and disjoint. A file with none of them gets the seed-style
    split of :func:`skstrf.model_selection.train_valid_test_indices`; a file with only
    some of them is refused.

    Parameters
    ----------
    dataset : str
        "synthetic" (NS1-shaped), "realistic" (songs with a log floor, 8 cells),
        "continuous" (one 7 s recording of 5 units, cut into blocks), "ns1" or a path.
    n_neurons, n_times : int
        Size of the synthetic dataset (119 cells by default, NS1's count).
    random_state : int
        Seed of the synthetic dataset.
    n_lags : int
        The models' history in frames (sizes the blocks of a recording).

    Returns
    -------
    data : Bunch
        X of shape (n_stimuli, n_times, n_freqs), y of shape (n_stimuli, n_times,
        n_neurons, n_repeats), train, valid, test, dt_ms, freqs (or None), description
        and notes (list of str).
    """
    if dataset == "synthetic":
        from .datasets import make_strf_dataset

        data = make_strf_dataset(n_neurons=n_neurons, n_times=n_times, n_lags=min(SYNTHETIC_N_LAGS, n_times),
                                 random_state=random_state)
        return Bunch(X=data.X, y=data.y, train=data.train, valid=data.valid, test=data.test,
                     dt_ms=data.dt_ms, freqs=data.freqs, notes=[],
                     description=f"synthetic NS1-shaped data ({n_neurons} cells with known STRFs)")
    if dataset in ("realistic", "continuous"):
        from .datasets import make_realistic_dataset

        # X as it is (log power): the default history (each band's training mean) makes the
        # fit independent of where zero is in X's units
        level_note = "X: log power, as generated (the fit does not depend on where zero is)"
        if dataset == "realistic":
            data = make_realistic_dataset(n_neurons=REALISTIC_N_NEURONS, random_state=random_state)
            return Bunch(X=data.X, y=data.y, train=data.train, valid=data.valid,
                         test=data.test, dt_ms=data.dt_ms, freqs=data.freqs, notes=[level_note],
                         description=f"realistic synthetic songs ({REALISTIC_N_NEURONS} cells, "
                         "near-silent bands, 10 trials, about 10 spikes/s)")
        data = make_realistic_dataset("continuous", random_state=random_state)
        X, y = _recording_as_blocks(data.X, data.y, n_lags, Path("continuous"))
        train, valid, test = train_valid_test_indices(X.shape[0])
        return Bunch(X=X, y=y, train=train, valid=valid, test=test, dt_ms=data.dt_ms, freqs=None,
                     description="realistic synthetic continuous recording (7 s, 2 channels, 5 units, "
                     "20 repeats)",
                     notes=[level_note,
                            f"one continuous recording cut into {X.shape[0]} contiguous blocks used as "
                            "stimuli (the STRF's history restarts at each block)"])
    if dataset == "ns1":
        from .datasets import fetch_ns1

        data = fetch_ns1()
        return Bunch(X=data.X, y=data.y, train=data.train, valid=data.valid, test=data.test,
                     dt_ms=data.dt_ms, freqs=data.freqs, notes=[],
                     description="NS1 (Harper et al. 2016; Rahman et al. 2019)")
    path = Path(dataset).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"--dataset {dataset!r} is neither 'synthetic', 'realistic', 'continuous', 'ns1' nor an "
            "existing HDF5 file; give one of these names or the path of a file written by "
            "skstrf.datasets.save_dataset"
        )
    from .datasets import load_dataset

    data = load_dataset(path)
    X, y, notes = np.asarray(data.X), np.asarray(data.y), []
    y = y.reshape(y.shape + (1,) * (X.ndim + 1 - y.ndim))  # one neuron, one repeat
    if y.shape[-1] == 1:
        notes.append("y has no repeats: cc_norm cannot be noise-corrected and falls back to cc")
    splits = data.get("splits") or {}
    if X.ndim == 2:
        X, y = _recording_as_blocks(X, y, n_lags, path)
        notes.append(f"one continuous recording cut into {X.shape[0]} contiguous blocks used as stimuli "
                     "(the STRF's history restarts at each block)")
        if splits:
            notes.append(f"the file's splits {sorted(splits)} refer to the whole recording and are not used")
        splits = {}
    train, valid, test = _split_from_file(splits, X.shape[0], path)
    if train is None:
        train, valid, test = train_valid_test_indices(X.shape[0])
        notes.append("the file has no train/valid/test splits: using the default seed-style split")
    dt_ms = data.get("dt_ms")
    return Bunch(X=X, y=y, train=train, valid=valid, test=test,
                 dt_ms=5.0 if dt_ms is None else float(dt_ms),
                 freqs=data.get("freqs"), description=str(path), notes=notes)


def _recording_as_blocks(X: np.ndarray, y: np.ndarray, n_lags: int, source: Path) -> tuple[np.ndarray, np.ndarray]:
    """Cut one recording (X of shape (n_times, n_freqs), y of shape (n_times, n_neurons,
    n_repeats)) into contiguous blocks, NaN-padded at the end to the longest one.

    The blocks follow :func:`skstrf._layout.block_edges`, the library's one rule (the
    first ``n_times % n_blocks`` blocks are one frame longer).
    """
    n_times = X.shape[0]
    n_blocks = min(RECORDING_BLOCKS, n_times // max(2 * n_lags, 1))
    if n_blocks < 3:
        raise ValueError(
            f"{source} holds one recording of {n_times} frames: too short to cut into 3 blocks "
            f"(train, valid, test) of at least 2 x --n-lags = {2 * n_lags} frames; "
            + (f"use --n-lags {n_times // 6} or less, or a longer recording" if n_times >= 6
               else "a recording needs at least 6 frames")
        )
    edges = block_edges(n_times, n_blocks)
    longest = int(np.diff(edges).max())
    X_blocks = np.full((n_blocks, longest) + X.shape[1:], np.nan)
    y_blocks = np.full((n_blocks, longest) + y.shape[1:], np.nan)
    for b, (start, stop) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        X_blocks[b, : stop - start] = X[start:stop]
        y_blocks[b, : stop - start] = y[start:stop]
    return X_blocks, y_blocks


def _split_from_file(splits: dict, n_stimuli: int, source: Path):
    """The file's train/valid/test split, checked; (None, None, None) when it has none."""
    names = ("train", "valid", "test")
    present = [k for k in names if k in splits]
    if not present:
        return None, None, None
    missing = [k for k in names if k not in splits]
    if missing:
        raise ValueError(
            f"{source} has the split(s) {present} but not {missing}; skstrf compare needs all of "
            "'train', 'valid' and 'test' (disjoint, non-empty), or none of them (then the default "
            "seed-style split is used)"
        )
    parts = [np.asarray(splits[k], dtype=np.int64) for k in names]
    for name, idx in zip(names, parts, strict=True):
        if idx.size == 0:
            raise ValueError(f"the split {name!r} of {source} is empty; each of train, valid and test needs a stimulus")
        if idx.min() < 0 or idx.max() >= n_stimuli:
            raise ValueError(f"the split {name!r} of {source} holds indices outside [0, {n_stimuli})")
    for i in range(3):
        for j in range(i + 1, 3):
            shared = np.intersect1d(parts[i], parts[j])
            if shared.size:
                raise ValueError(
                    f"the splits {names[i]!r} and {names[j]!r} of {source} share stimuli {shared[:5].tolist()}; "
                    "they must be disjoint (test scores on training stimuli would be meaningless)"
                )
    return tuple(parts)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {value}")
    return value


def _seed(text: str) -> int:
    value = _non_negative_int(text)
    if value >= 2**32:  # numpy's and scikit-learn's seeds are 32-bit
        raise argparse.ArgumentTypeError(f"expected a seed from 0 to 2**32 - 1, got {value}")
    return value


_EPILOG = """errors: a problem with the input (a missing or malformed dataset file, unusable splits,
a dataset too short for --n-lags, a diverging fit, too little memory) is printed as one
line, "error: <what went wrong and what to do>", with exit status 1; a bad option value
exits with status 2 before any work. Any other exception is a bug in skstrf: its Python
traceback is printed, then a line asking to report it, with exit status 70. --debug
shows the traceback of every error instead. Ctrl-C exits with status 130."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="skstrf", description="Spectro-temporal receptive fields with scikit-learn.")
    sub = parser.add_subparsers(dest="command", required=True)
    cmp_ = sub.add_parser(
        "compare",
        help="fit vanilla, separable and parametric STRFs on one split and compare them",
        description="The seed notebook's kernel comparison: fit the same linear STRF model with "
        "three kernel parameterisations on a 14/3/3 stimulus split, print the table and write "
        "the figures.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmp_.add_argument("--dataset", default="synthetic",
                      help="'synthetic' (default, embedded, NS1-shaped), 'realistic' (song-like "
                      "stimuli with near-silent bands), 'continuous' (one recording cut into blocks), "
                      "'ns1' (downloads on first use) or a path to an skstrf HDF5 file")
    cmp_.add_argument("--output", default="skstrf_output", help="folder for figures and results.json")
    cmp_.add_argument("--kernels", nargs="+", default=["vanilla", "separable", "parametric"],
                      choices=["vanilla", "separable", "parametric"])
    cmp_.add_argument("--max-epochs", type=_positive_int, default=100,
                      help="epochs of the seed-method (gradient) fits")
    cmp_.add_argument("--no-seed-method", action="store_true",
                      help="skip the seed's method (gradient from a random start) and run only "
                      "skstrf's default solvers")
    cmp_.add_argument("--variants", nargs="*", default=[],
                      choices=["ln", "ic_adaptation", "adaptrans", "ln_adaptrans"],
                      help="extra rows beyond the linear STRF: 'ln' (softplus output, Poisson "
                      "loss), 'ic_adaptation', 'adaptrans' (ON/OFF prefilter), 'ln_adaptrans' (both)")
    cmp_.add_argument("--n-lags", type=_positive_int, default=15, help="frames of history of the STRFs")
    cmp_.add_argument("--n-neurons", type=_positive_int, default=SYNTHETIC_N_NEURONS,
                      help=f"synthetic dataset only: cells (default {SYNTHETIC_N_NEURONS}, NS1's unit count; "
                      "make_strf_dataset's own default is 32)")
    cmp_.add_argument("--n-times", type=_positive_int, default=999,
                      help="synthetic dataset only: frames per stimulus (default 999, as NS1)")
    cmp_.add_argument("--n-threads", type=_positive_int, default=None,
                      help="CPU threads for torch; default: OMP_NUM_THREADS if set, else the CPUs "
                      "this process may use (its affinity and CPU quota)")
    cmp_.add_argument("--device", default="auto",
                      help="torch device: 'auto' (CUDA when available, the default), 'cpu' or 'cuda[:i]'")
    cmp_.add_argument("--random-state", type=_seed, default=0, help="seed of the data and the fits (0 to 2**32 - 1)")
    cmp_.add_argument("--verbose", type=_non_negative_int, default=0, help="1 prints skorch's epoch table")
    cmp_.add_argument("--no-figures", action="store_true")
    cmp_.add_argument("--debug", action="store_true",
                      help="show the Python traceback of every error (by default an error in the "
                      "input is one line)")
    return parser


def _error(message: str, code: int = EXIT_INPUT) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _out_of_memory(exc: BaseException) -> bool:
    # torch.OutOfMemoryError is a RuntimeError; named, so that this module imports no torch
    return isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError"


def _is_user_error(exc: BaseException) -> bool:
    return isinstance(exc, USER_ERRORS) or _out_of_memory(exc)


def _one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (what went wrong; skstrf's messages add what to do)."""
    text = " ".join(str(exc).split())
    if _out_of_memory(exc):
        return (f"out of memory{' (' + text + ')' if text else ''}; use a smaller dataset, or "
                "--device cpu when the GPU's memory is the limit")
    return text or type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    """Run the command line interface; returns the exit status.

    Errors in the input are printed on one line (exit status 1, or 2 for a bad option);
    any other exception is a bug and shows its traceback (exit status 70); ``--debug``
    raises every error with its traceback.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return _compare(parser, args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        return _error("interrupted", EXIT_INTERRUPTED)
    except Exception as exc:
        if args.debug:
            raise
        if _is_user_error(exc):
            return _error(f"{_one_line(exc)} (--debug shows the traceback)")
        traceback.print_exc()
        return _error(f"internal error {type(exc).__name__}: this is a bug in skstrf, not a problem "
                      "with your input; please report it with the traceback above", EXIT_BUG)


def _compare(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """``skstrf compare`` with parsed arguments; returns the exit status."""
    if args.dataset == "synthetic" and args.n_lags > args.n_times:
        parser.error(f"--n-lags {args.n_lags} is more than --n-times {args.n_times}: each stimulus "
                     "needs at least as many frames as the STRF has lags")
    from ._plan import resolve_device

    try:  # the estimator's own check, before any work (it imports torch)
        resolve_device(args.device)
    except ValueError as exc:
        parser.error(f"--device: {exc}")
    output = Path(args.output).expanduser()
    if not args.no_figures:  # checked before any fit, so a bad --output loses no work
        if output.exists() and not output.is_dir():
            return _error(f"--output {str(output)!r} exists and is not a folder; give a folder "
                          "(created if missing) for the figures and results.json", EXIT_USAGE)
        try:
            output.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return _error(f"--output {str(output)!r} cannot be created: {_one_line(exc)}; give "
                          "a folder you may write in", EXIT_USAGE)
        if not os.access(output, os.W_OK | os.X_OK):
            return _error(f"--output {str(output)!r} is not writable; give a folder you may "
                          "write in", EXIT_USAGE)
    import torch

    # torch's own default is the machine's core count, which on a shared or containerised
    # machine oversubscribes the CPUs this process actually has (measured up to 10x slower)
    torch.set_num_threads(n_threads(args.n_threads))
    from .compare import (beyond_linear_variants, compare_kernels, default_variants, format_pairs,
                          format_table, save_figures)
    from .estimator import STRFRegressor

    start = time.perf_counter()
    print(f"loading dataset {args.dataset!r} ...", flush=True)
    try:
        data = load_comparison_data(args.dataset, n_neurons=args.n_neurons, n_times=args.n_times,
                                    random_state=args.random_state, n_lags=args.n_lags)
    except (OSError, ValueError) as exc:  # download failures, missing, foreign or inconsistent files
        if args.debug:
            raise
        return _error(f"could not load dataset {args.dataset!r}: {_one_line(exc)}")
    S, T, F = data.X.shape
    print(f"{data.description}: {S} stimuli x {T} frames x {F} bands, {data.y.shape[2]} neurons, "
          f"{data.y.shape[3]} repeats; split {len(data.train)}/{len(data.valid)}/{len(data.test)} "
          "(train/valid/test stimuli)", flush=True)
    for note in data.notes:
        print(f"note: {note}", flush=True)
    from_env = args.n_threads is None and bool(os.environ.get("OMP_NUM_THREADS", "").strip())
    print(f"torch threads: {torch.get_num_threads()}{' (from OMP_NUM_THREADS)' if from_env else ''}",
          flush=True)
    template = STRFRegressor(n_lags=args.n_lags, max_epochs=args.max_epochs, device=args.device,
                             random_state=args.random_state, verbose=args.verbose)
    variants = default_variants(args.kernels, seed_method=not args.no_seed_method,
                                max_epochs=args.max_epochs)
    freqs = None if data.freqs is None else np.asarray(data.freqs, dtype=float)
    variants += beyond_linear_variants(
        args.variants, dt_ms=data.dt_ms,
        freq_range=None if freqs is None or freqs.size < 2 else (freqs.min(), freqs.max()))
    result = compare_kernels(data.X, data.y, train=data.train, valid=data.valid, test=data.test,
                             variants=variants, estimator=template,
                             progress=lambda line: print(line, flush=True))
    print()
    print(format_table(result.rows))
    if result.pairs:
        print("\nPaired comparison across cells (test cc_norm; Wilcoxon signed-rank, Holm-corrected):")
        print(format_pairs(result.pairs))
    print()
    cell = result.best_cell
    print(f"Best-fit cell across the parameterizations: idx={cell}")
    width = max(len(k) for k in result.labels)
    for k in result.labels:
        print(f"  {k:<{width}s} test cc_norm = {result.test_cc_norm[k][cell]:+.3f}")
    if not args.no_figures:
        paths = save_figures(result, output, dt_ms=data.dt_ms, freqs=data.freqs)
        print("\nwrote " + ", ".join(str(p) for p in paths))
    print(f"total time {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
