"""Fitting, predicting and scoring data that arrive as dask arrays chunked along stimuli (out of core).

:class:`~skstrf.STRFRegressor` hands ``fit``, ``predict`` and ``score`` to this module when
X or y is a dask array. A closed-form fit needs the data only through sums over stimuli:

1. one pass over the chunks gives each stimulus's valid length and the moments the model
   standardises with (:class:`~skstrf._validation.FrameMoments`, merged over chunks);
2. the cross-validation folds follow from the lengths alone, exactly as in memory, and
   :func:`skstrf._plan.fold_groups` merges the stimuli every fold treats alike;
3. a second pass computes each chunk's :class:`~skstrf._model.DesignStatistics` where the
   chunk lives, summed by fold group as they are computed, and reduces them in a tree
   (:func:`grouped_statistics`), so that the client receives ``n_groups`` rows of
   ``(F·L + 1)²`` numbers, never the data;
4. the penalty is chosen and the model solved from those sums, as in memory.

Both passes run in waves of :data:`WAVE_TASKS` tasks (:func:`_in_waves`), each reduced
before the next starts: the memory of a fit is set by the chunk size and the statistics,
not by the number of stimuli (nothing is held per stimulus but its length).

The tasks run on whichever dask scheduler is active (the default threads, or a
``dask.distributed`` client); nothing here starts one. dask is an optional dependency:
``pip install "skstrf[dask]"``.
"""

from __future__ import annotations

import copy
import functools
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ._design import DesignStatistics
from ._layout import DataShape, responses_layout, to_user_layout
from ._model import input_moments, module_statistics
from ._moments import FrameMoments
from ._solvers import SOLVERS
from ._validation import (StimulusSet, check_dtype, check_responses, check_responses_shape, check_stimuli,
                          check_stimuli_shape)
from .metrics import ScoreSums, cc_norm_from_sums
from .prefilters import make_prefilter

__all__ = ["is_dask_collection", "require_dask", "ChunkedData", "check_chunked", "grouped_statistics",
           "ChunkedFitData", "chunked_data", "predict_chunked", "score_chunked"]

#: Partial results merged by one task of a tree reduction.
SPLIT_EVERY = 8
#: Statistics tasks of a fit, at least (when there are as many chunks): work for every worker.
MIN_TASKS = 64
#: Statistics tasks computed at a time (a wave), their results summed before the next wave:
#: enough to keep a cluster's workers busy, few enough that the partial sums held at once
#: do not grow with the data.
WAVE_TASKS = 16

_IN_MEMORY_HINT = ("fit in-memory arrays instead (X.compute(), y.compute(), or load_dataset(path) "
                   "without lazy=True)")


def is_dask_collection(obj: Any) -> bool:
    """Whether ``obj`` is a dask collection (array, dataframe, delayed), without importing dask."""
    graph = getattr(obj, "__dask_graph__", None)
    return callable(graph) and graph() is not None


def require_dask(what: str) -> Any:
    """Import and return ``dask.array``, or raise an ImportError naming the optional extra.

    Parameters
    ----------
    what : str
        What needs dask, for the message.

    Returns
    -------
    module
        ``dask.array``.
    """
    try:
        import dask.array as da
    except ImportError as exc:
        raise ImportError(
            f"{what} needs dask, an optional dependency of skstrf: install it with "
            "pip install \"skstrf[dask]\""
        ) from exc
    return da


@dataclass(frozen=True)
class ChunkedData:
    """Stimuli (and responses) as dask arrays in the stimulus layout, chunked along stimuli only.

    Attributes
    ----------
    X : dask array of shape (n_stimuli, n_times, n_freqs)
        One chunk holds whole stimuli (all frames, all bands).
    y : dask array of shape (n_stimuli, n_times, n_neurons, n_repeats) or None
        Chunked like X along stimuli, whole along the other axes.
    x_ndim : int
        Dimensions of the X given (2: one continuous recording, a single chunk).
    y_layout : {"neuron", "psth", "repeats"} or None
        The layout of the y given.
    """

    X: Any
    y: Any = None
    x_ndim: int = 3
    y_layout: str | None = None

    @property
    def starts(self) -> np.ndarray:
        """Index of the first stimulus of each chunk, shape (n_chunks,)."""
        return np.concatenate([[0], np.cumsum(self.X.chunks[0])[:-1]]).astype(np.int64)

    @property
    def n_stimuli(self) -> int:
        return int(self.X.shape[0])

    def blocks(self) -> list:
        """One ``(X_block, y_block or None, first stimulus, n_stimuli)`` per chunk, the blocks
        as dask delayed objects."""
        xs = self.X.to_delayed().ravel()
        ys = [None] * len(xs) if self.y is None else self.y.to_delayed().ravel()
        return list(zip(xs, ys, self.starts.tolist(), self.X.chunks[0]))


def _as_dask_array(da, a: Any, name: str, like: Any = None) -> Any:
    """``a`` as a dask array: a dask array as is; anything else in memory, chunked along
    axis 0 like ``like`` (the other argument, which is a dask array)."""
    if is_dask_collection(a):
        if not isinstance(a, da.Array):
            raise TypeError(
                f"{name} is a dask {type(a).__name__}, but skstrf reads dask arrays only "
                f"(e.g. {name}.to_dask_array(lengths=True) for a dask dataframe)."
            )
        return a
    a = np.asarray(a)
    aligned = like is not None and a.ndim > 0 and like.ndim > 0 and a.shape[0] == like.shape[0]
    # a mismatch of lengths is reported later, in the words of the in-memory checks
    return da.from_array(a, chunks=(like.chunks[0],) + a.shape[1:] if aligned else a.shape)


def check_chunked(X: Any, y: Any = None, *, n_freqs: int | None = None,
                  owner: str = "this estimator") -> ChunkedData:
    """Check dask X (and y) from their metadata and bring them to the stimulus layout.

    Reads no data: the shapes, dimensions and dtypes are checked here with the messages of
    the in-memory checks; the values (NaN end padding, finiteness, magnitude) are checked
    chunk by chunk when the chunks are computed, with the in-memory checks.

    X is rechunked so that each chunk holds whole stimuli (all frames, all bands); y is
    rechunked to X's chunks along stimuli. A 2-D X (one continuous recording) becomes a
    single chunk: one task then holds the whole recording.

    Parameters
    ----------
    X : dask array of shape (n_stimuli, n_times, n_freqs) or (n_times, n_freqs)
        In-memory X is accepted when y is a dask array.
    y : dask array or None, default=None
        Responses in a layout of the data contract; in memory is accepted when X is dask.
    n_freqs : int, default=None
        Expected number of bands (a fitted estimator's).
    owner : str, default="this estimator"
        The fitted estimator's name, for the error when the number of bands differs.

    Returns
    -------
    ChunkedData
    """
    da = require_dask("Fitting dask arrays")
    if not is_dask_collection(X) and not is_dask_collection(y):
        raise TypeError("check_chunked expects X or y to be a dask array")
    if is_dask_collection(X):
        X = _as_dask_array(da, X, "X")
    if y is not None:
        y = _as_dask_array(da, y, "y", like=X if is_dask_collection(X) else None)
    if not is_dask_collection(X):
        X = _as_dask_array(da, X, "X", like=y if y.ndim > 0 else None)
    check_dtype(X._meta, "X")
    check_stimuli_shape(X.shape, n_freqs=n_freqs, owner=owner)
    for name, a in (("X", X), ("y", y)):
        if a is not None and np.isnan(a.shape).any():
            raise ValueError(
                f"{name} has unknown chunk sizes (e.g. after boolean indexing); call "
                f"{name}.compute_chunk_sizes() first."
            )
    x_ndim = X.ndim
    X3 = X[None] if x_ndim == 2 else X
    X3 = X3.rechunk({0: X3.chunks[0], 1: -1, 2: -1})
    if y is None:
        return ChunkedData(X3, None, x_ndim)
    check_dtype(y._meta, "y")
    y4, layout = responses_layout(y, x_ndim)
    check_responses_shape(y.shape, y4.shape, X3.shape, x_ndim)
    y4 = y4.rechunk((X3.chunks[0],) + tuple((n,) for n in y4.shape[1:]))
    return ChunkedData(X3, y4, x_ndim, layout)


# ----------------------------------------------------------------------------- chunk tasks
# Top-level functions of plain arguments, so that a distributed scheduler can pickle them.


def _checked_chunk(X_block: np.ndarray, y_block: np.ndarray | None, start: int,
                   n_freqs: int | None = None, lead_in: int = 0) -> StimulusSet:
    """One chunk validated by the in-memory checks, its first ``lead_in`` frames a lead-in;
    an error names the chunk's stimuli."""
    try:
        data = check_stimuli(X_block, n_freqs=n_freqs).with_lead_in(lead_in)
        return data if y_block is None else check_responses(y_block, data)
    except (ValueError, TypeError) as exc:
        stop = start + len(X_block) - 1
        where = f"stimulus {start}" if stop == start else f"stimuli {start} to {stop}"
        raise type(exc)(
            f"in the dask chunk holding {where} (stimulus numbers in what follows count from "
            f"the chunk's first, {start}): {exc}"
        ) from exc


def _chunk_moments(X_block: np.ndarray, y_block: np.ndarray, start: int,
                   prefilter: torch.nn.Module | None, lead_in: int = 0) -> tuple:
    """Pass 1 on one chunk: its stimuli's valid lengths and mergeable moments of X, of the
    linear stage's input (the prefilter's output, if any) and of the PSTH."""
    data = _checked_chunk(X_block, y_block, start, lead_in=lead_in)
    inputs, psth = input_moments(data, prefilter)
    raw = inputs if prefilter is None else FrameMoments.of(data.X, data.frame_mask)
    return data.lengths, raw, inputs, psth


def _chunks_moments(prefilter: torch.nn.Module | None, lead_in: int, *chunks: Any) -> tuple:
    """Pass 1 on several chunks in one task (``chunks``: X block, y block and first stimulus
    of each, flattened), merged here (:func:`_merge_moments`)."""
    return _merge_moments(*(_chunk_moments(*chunks[i:i + 3], prefilter, lead_in) for i in range(0, len(chunks), 3)))


def _merge_moments(*parts: tuple) -> tuple:
    """Pass 1's results of consecutive chunks (in order) merged: the lengths one after the
    other, the moments merged."""
    if len(parts) == 1:
        return parts[0]
    return (np.concatenate([p[0] for p in parts]), *(_merged(*[p[k] for p in parts]) for k in (1, 2, 3)))


def _fold_moments(total: tuple | None, wave: tuple) -> tuple:
    """A wave's pass-1 results after the running ones."""
    return wave if total is None else _merge_moments(total, wave)


def _chunk_statistics(X_block: np.ndarray, y_block: np.ndarray, start: int, module: torch.nn.Module,
                      groups: np.ndarray, n_blocks: int, lead_in: int = 0) -> tuple[np.ndarray, DesignStatistics]:
    """Pass 2 on one chunk: its statistics summed by fold group (``groups`` of its rows) as
    they are computed, never held per row.

    Returns the groups present (sorted) and their summed statistics (one row each).
    """
    data = _checked_chunk(X_block, y_block, start, lead_in=lead_in)
    present, local = np.unique(groups, return_inverse=True)
    with torch.no_grad():
        stats = module_statistics(module, data, "cpu", n_blocks=n_blocks, groups=local.reshape(-1),
                                  n_groups=present.size)
    return present, stats


def _chunks_statistics(module: torch.nn.Module, n_blocks: int, lead_in: int, *chunks: Any
                       ) -> tuple[np.ndarray, DesignStatistics]:
    """Pass 2 on several chunks in one task (``chunks``: X block, y block, first stimulus
    and row groups of each, flattened): their grouped statistics, added up here chunk after
    chunk, so that one result per task leaves the worker and a task holds its running sum
    and one chunk's statistics, however many chunks it reads."""
    total = None
    for i in range(0, len(chunks), 4):
        part = _chunk_statistics(*chunks[i:i + 3], module, chunks[i + 3], n_blocks, lead_in)
        if total is None:
            total = part
        elif np.isin(part[0], total[0]).all():
            _add_into(total, part)  # the running sum is this task's own
        else:
            total = _merge_grouped(total, part)
        del part
    return total


def _rows(stats: DesignStatistics) -> tuple[torch.Tensor, ...]:
    return stats.gram, stats.cross, stats.sq, stats.count


def _zero_rows(like: DesignStatistics, n_rows: int) -> DesignStatistics:
    """Statistics of ``n_rows`` zero rows, shaped like ``like``'s rows."""
    return DesignStatistics(*(torch.zeros((n_rows, *a.shape[1:]), dtype=a.dtype, device=a.device) for a in _rows(like)))


def _add_into(total: tuple[np.ndarray, DesignStatistics], part: tuple[np.ndarray, DesignStatistics]) -> None:
    """Add the grouped statistics ``part`` into ``total``'s rows, in place; ``part``'s groups
    must be among ``total``'s (both sorted)."""
    index = torch.as_tensor(np.searchsorted(total[0], part[0]))
    for into, value in zip(_rows(total[1]), _rows(part[1])):
        into.index_add_(0, index, value)


def _merge_grouped(*parts: tuple[np.ndarray, DesignStatistics]) -> tuple[np.ndarray, DesignStatistics]:
    """Sum partial grouped statistics (one tree-reduction step) into one new array of the
    groups present: the parts are read, never modified, and never copied side by side."""
    present = np.unique(np.concatenate([p[0] for p in parts]))
    total = (present, _zero_rows(parts[0][1], present.size))
    for part in parts:
        _add_into(total, part)
    return total


def _tree(parts: list, merge) -> Any:
    """Reduce dask delayed ``parts`` with ``merge`` in a tree of fan-in :data:`SPLIT_EVERY`."""
    import dask

    while len(parts) > 1:
        parts = [dask.delayed(merge)(*parts[i:i + SPLIT_EVERY]) for i in range(0, len(parts), SPLIT_EVERY)]
    return parts[0]


def _release_freed_memory() -> None:
    """Hand the memory that the C allocator holds free back to the system (glibc's
    ``malloc_trim``; nothing where the C library has none).

    dask's threaded scheduler runs the chunk tasks on its worker threads, and glibc gives
    each thread an arena of its own, which keeps what is freed in it: after a pass over the
    chunks the process held 80 to 130 MiB more than its live memory (200 stimuli x 999
    frames x 500 neurons), and the penalty's solve, run on the main thread, added its own
    peak on top. Called once per pass: after every wave it bounded the pass's own peak a
    little better, but faulted in some 400,000 fresh pages more per fit (about a tenth of
    the fit's time).
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    """glibc's ``malloc_trim`` (through ctypes), or None where it is not available."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # another C library (musl) or no symbol table
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def _compute(*delayed_objects) -> tuple:
    """Compute on the active dask scheduler (called inside :func:`skstrf._threads.fit_threads`,
    so that torch and the BLAS are capped as in a fit)."""
    import dask

    return dask.compute(*delayed_objects)


def _runs_in_process() -> bool:
    """Whether ``dask.compute`` of delayed objects runs in this process: on dask's default
    threads, or synchronously (not on a ``dask.distributed`` cluster or in processes)."""
    import dask.local
    import dask.threaded
    from dask.base import get_scheduler
    from dask.delayed import Delayed

    return get_scheduler(cls=Delayed) in (dask.threaded.get, dask.local.get_sync)


def _chunks_per_task(n_chunks: int) -> int:
    """Chunks that one task reads, and holds at once (they are its inputs).

    Where the results travel between processes (a ``dask.distributed`` cluster, the
    processes scheduler): up to :data:`SPLIT_EVERY`, their statistics summed where they are
    read, so that the statistics (megabytes) leave a worker once per task rather than once
    per chunk; but at least :data:`MIN_TASKS` tasks, to spread over the workers. Where the
    tasks run in this process nothing travels, and one chunk per task keeps a wave at
    :data:`WAVE_TASKS` chunks, whatever the number of stimuli (with up to eight, the peak of
    a fit grew with the stimuli until 512).
    """
    if _runs_in_process():
        return 1
    return int(np.clip(n_chunks // MIN_TASKS, 1, SPLIT_EVERY))


def _in_waves(task, leaves: list, merge, fold, *args: Any) -> Any:
    """``task(*args, *leaves' arguments)`` over the chunks ``leaves`` (one tuple of task
    arguments each), in waves, folded into one result.

    A task reads :func:`_chunks_per_task` chunks. The tasks run :data:`WAVE_TASKS` at a
    time (a wave), reduced by ``merge`` in a tree; each wave's result is folded into the
    running result with ``fold(total, wave)`` (``total`` None for the first wave) before the
    next wave starts: the client holds the running result and one wave's, and the workers
    one wave's chunks and partial results, however many chunks there are. At the end, the
    memory freed in the waves is handed back to the system (:func:`_release_freed_memory`).
    """
    import dask

    per_task = _chunks_per_task(len(leaves))
    tasks = [[a for leaf in leaves[i:i + per_task] for a in leaf] for i in range(0, len(leaves), per_task)]
    args = [dask.delayed(a, traverse=False) if isinstance(a, torch.nn.Module) else a for a in args]
    total = None
    for w in range(0, len(tasks), WAVE_TASKS):
        parts = [dask.delayed(task)(*args, *leaf) for leaf in tasks[w:w + WAVE_TASKS]]
        (wave,) = _compute(_tree(parts, merge))
        total = fold(total, wave)
        parts = wave = None  # freed before the trim
    _release_freed_memory()  # before the next pass, or the solve, allocates
    return total


def _fold_into(n_groups: int, total: tuple | None, wave: tuple[np.ndarray, DesignStatistics]) -> tuple:
    """Add a wave's grouped statistics into the client's running sum of all ``n_groups``
    rows (allocated at the first wave), in place."""
    if total is None:
        total = (np.arange(n_groups), _zero_rows(wave[1], n_groups))
    _add_into(total, wave)
    return total


def grouped_statistics(module: torch.nn.Module, chunked: ChunkedData, groups: np.ndarray, n_groups: int,
                       n_blocks: int = 1, lead_in: int = 0) -> DesignStatistics:
    """:class:`~skstrf._model.DesignStatistics` of dask data summed by group, chunk by chunk.

    Each chunk's statistics are computed where it lives (:func:`skstrf._model.module_statistics`),
    summed over its rows by group as they are computed, added up over the chunks of a task,
    reduced over a wave's tasks in a tree and added into the client's ``n_groups`` rows
    (:func:`_in_waves`): only summed rows reach the caller, and the memory held at any time
    is a wave's, not the data's.

    Parameters
    ----------
    module : STRFModel
        The model whose standardisation the statistics are in (on the CPU).
    chunked : ChunkedData
        From :func:`check_chunked`, with y.
    groups : ndarray of int of shape (n_stimuli * n_blocks,)
        The group of each row (stimulus, or block of a stimulus), ``0 .. n_groups - 1``,
        e.g. from :func:`skstrf._plan.fold_groups`.
    n_groups : int
    n_blocks : int, default=1
        Rows per stimulus (see :func:`skstrf._design.design_statistics`).
    lead_in : int, default=0
        Frames at the start of each stimulus read as history only (not counted).

    Returns
    -------
    DesignStatistics
        ``n_groups`` rows, float64, on the CPU.
    """
    groups = np.asarray(groups).reshape(-1)
    missing = np.setdiff1d(np.arange(n_groups), groups)
    if missing.size:  # before any chunk is read
        raise RuntimeError(f"groups {missing.tolist()} have no statistics")
    leaves = [(X_block, y_block, start, groups[start * n_blocks:(start + size) * n_blocks])
              for X_block, y_block, start, size in chunked.blocks()]
    _, stats = _in_waves(_chunks_statistics, leaves, _merge_grouped, functools.partial(_fold_into, n_groups),
                         module, n_blocks, lead_in)
    return stats


# ----------------------------------------------------------------------------- fit

def _check_supported(est, options) -> None:
    """Reject, before reading any data, what an out-of-core fit cannot do."""
    if not SOLVERS[options.solver].closed_form:
        why = ["solver='gradient'" if est.solver == "gradient" else f"kernel={est.kernel!r}"]
        why += [f"{name}={getattr(est, name)!r}" for name, linear_value in
                (("nonlinearity", "identity"), ("loss", "mse")) if getattr(est, name) != linear_value]
        if not options.linear and est.prefilter is not None:
            why.append(f"prefilter={est.prefilter!r}")
        if not options.linear:
            why = why[1:]  # a model that is not linear trains by gradient whatever the kernel
        closed = " or ".join(f"{name!r} (kernel={sorted(solver.kernels)[0]!r})" for name, solver in SOLVERS.items()
                             if solver.closed_form and solver.kernels)
        raise ValueError(
            f"fitting dask arrays (out of core) needs a closed-form solver, but this model is "
            f"trained by gradient ({', '.join(why)}): gradient training "
            "passes over the data epoch after epoch and needs them in memory. Use a linear "
            f"least-squares model with solver {closed}, or {_IN_MEMORY_HINT}."
        )
    if est.cv is None and est.validation_fraction is not None:
        raise ValueError(
            "fitting dask arrays (out of core) chooses the penalty by cross-validation over the "
            f"stimuli, but cv=None with validation_fraction={est.validation_fraction!r} asks for "
            "validation stimuli held out of the data; pass cv (e.g. the default 5), or "
            f"validation_fraction=None with a single alpha, or {_IN_MEMORY_HINT}."
        )


class ChunkedFitData:
    """A fit's data in dask chunks: the data source of :mod:`skstrf._data` for data larger
    than memory (closed-form fits only). See the module's description for its passes.

    Parameters
    ----------
    chunked : ChunkedData
        From :func:`check_chunked`, with y.
    prefilter : nn.Module or None
        The fit's (fixed, linear) front end, whose output the first pass standardises.
    """

    stimuli = None  # gradient training, the only user of the stimuli themselves, is refused

    def __init__(self, chunked: ChunkedData, prefilter: torch.nn.Module | None, lead_in: int = 0) -> None:
        self.chunked = chunked
        self.prefilter = prefilter
        self.lead_in = int(lead_in)
        self._first = None

    @property
    def n_stimuli(self) -> int:
        return self.chunked.n_stimuli

    def _first_pass(self) -> tuple:
        """Pass 1 (once): each stimulus's valid length and the moments, merged over chunks."""
        if self._first is None:
            leaves = [(xb, yb, start) for xb, yb, start, _ in self.chunked.blocks()]
            self._first = _in_waves(_chunks_moments, leaves, _merge_moments, _fold_moments,
                                    self.prefilter, self.lead_in)
        return self._first

    @property
    def shape(self) -> DataShape:
        X, y = self.chunked.X, self.chunked.y
        return DataShape(self._first_pass()[0], int(X.shape[1]), int(X.shape[2]), int(y.shape[2]),
                         int(y.shape[3]), self.chunked.x_ndim, self.chunked.y_layout)

    def split(self, plan) -> tuple["ChunkedFitData", None]:
        """All stimuli train: nothing is held out (:func:`chunked_data` refused that)."""
        return self, None

    def moments(self, prefilter=None) -> tuple:
        """Moments of X, of the linear stage's input and of the PSTH (from pass 1)."""
        return self._first_pass()[1:]

    def statistics(self, module, device: str, n_blocks: int = 1, groups: np.ndarray | None = None
                   ) -> DesignStatistics:
        """Pass 2: the statistics summed by ``groups`` (:func:`grouped_statistics`)."""
        on_cpu = copy.deepcopy(module).cpu()  # the tasks' copy, sent to wherever the chunks are
        return grouped_statistics(on_cpu, self.chunked, groups, int(groups.max()) + 1, n_blocks,
                                  self.lead_in).to(device)


def chunked_data(X: Any, y: Any, est, options) -> ChunkedFitData:
    """The data source of a fit of dask arrays, checked from the options and the arrays'
    metadata before any chunk is read.

    Parameters
    ----------
    X, y : dask arrays (one of them may be in memory)
        As for :meth:`skstrf.STRFRegressor.fit`.
    est : STRFRegressor
    options : skstrf._plan.FitOptions
    """
    _check_supported(est, options)
    chunked = check_chunked(X, y)
    prefilter = make_prefilter(est.prefilter, chunked.X.shape[2], dt_ms=float(est.dt_ms),
                               freq_range=est.freq_range)
    return ChunkedFitData(chunked, prefilter, est.lead_in)


def _merged(*parts: Any) -> Any:
    """Parts that know how to ``merge`` (:class:`~skstrf._validation.FrameMoments`,
    :class:`~skstrf.metrics.ScoreSums`), merged into one."""
    return functools.reduce(lambda total, part: total.merge(part), parts)


# ----------------------------------------------------------------------------- predict, score

def _predict_block(X_block: np.ndarray, est, block_info: dict | None = None) -> np.ndarray:
    """Predictions (n_stimuli, n_times, n_neurons) of one chunk of X."""
    start = 0 if block_info is None else int(block_info[0]["array-location"][0][0])
    return est.predict_stimuli(_checked_chunk(X_block, None, start, n_freqs=est.n_features_in_, lead_in=est.lead_in))


def predict_chunked(est, X: Any) -> Any:
    """Predictions of a fitted STRFRegressor for dask stimuli, as a dask array.

    Parameters
    ----------
    est : STRFRegressor
        Fitted.
    X : dask array of shape (n_stimuli, n_times, n_freqs) or (n_times, n_freqs)

    Returns
    -------
    y_pred : dask array
        The layout of :meth:`skstrf.STRFRegressor.predict` (float64, NaN on padding frames),
        chunked like X along stimuli; nothing is computed until asked.
    """
    import dask

    chunked = check_chunked(X, n_freqs=est.n_features_in_, owner=type(est).__name__)
    X3 = chunked.X
    pred = X3.map_blocks(_predict_block, dask.delayed(est, traverse=False), dtype=np.float64,
                         chunks=(X3.chunks[0], X3.chunks[1], (est.n_neurons_,)),
                         meta=np.empty((0, 0, 0), dtype=np.float64))
    return to_user_layout(pred, chunked.x_ndim, est.y_layout_)


def _chunk_score(X_block: np.ndarray, y_block: np.ndarray, start: int, est) -> ScoreSums:
    """The :class:`~skstrf.metrics.ScoreSums` of one chunk: predicted here, reduced to sums."""
    data = _checked_chunk(X_block, y_block, start, n_freqs=est.n_features_in_, lead_in=est.lead_in)
    return ScoreSums.of(data.scored(data.y), est.predict_stimuli(data))


def score_chunked(est, X: Any, y: Any) -> float:
    """:meth:`skstrf.STRFRegressor.score` (mean cc_norm over neurons) for dask data.

    Each chunk is predicted and reduced to per-neuron sums where it lives; the score is
    then the one of the in-memory ``score`` on the whole data (pooled over stimuli), up to
    the order of floating-point sums.

    Parameters
    ----------
    est : STRFRegressor
        Fitted.
    X, y : dask arrays (one of them may be in memory)
        As for :meth:`skstrf.STRFRegressor.score`.

    Returns
    -------
    score : float
    """
    import dask

    chunked = check_chunked(X, y, n_freqs=est.n_features_in_, owner=type(est).__name__)
    n_neurons = chunked.y.shape[2]
    if n_neurons != est.n_neurons_:
        raise ValueError(
            f"y has {n_neurons} neuron(s), but this estimator was fitted with "
            f"{est.n_neurons_} (n_neurons_ = {est.n_neurons_}); score the neurons it was "
            "fitted on, in the same order."
        )
    est_key = dask.delayed(est, traverse=False)
    parts = [dask.delayed(_chunk_score)(xb, yb, start, est_key) for xb, yb, start, _ in chunked.blocks()]
    (sums,) = _compute(_tree(parts, _merged))
    return float(cc_norm_from_sums(sums))
