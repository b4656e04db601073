"""The causal lagged design and its sufficient statistics, computed without building it.

One function, :func:`lagged_design`, builds the causal lags (the torch model and the direct
statistics use it). :func:`lagged_statistics` computes the per-stimulus (or per-block, or
per-group) :class:`DesignStatistics` of the standardised design from band
cross-correlations: the Gram matrix of a causal lagged design is block-Toeplitz up to edge
terms, entry ``((f, k), (g, l))`` being the cross-correlation of bands ``f`` and ``g`` at
lag ``k - l`` minus the few products that the lags cut at a segment's start and end; it is
computed in float64 from ``L`` products of the stimulus with itself (and with the PSTH)
shifted by each lag. :func:`design_statistics` is the direct computation, the reference.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ._layout import block_edges
from ._threads import side_by_side, task_workers

__all__ = ["lagged_design", "DesignStatistics", "standardized_design", "design_statistics",
           "lagged_statistics"]


def lagged_design(X: torch.Tensor, n_lags: int, fill: torch.Tensor | None = None) -> torch.Tensor:
    """Causal time-lagged copies of each stimulus.

    This is the one place where lags are built: the torch model, the sufficient statistics
    and the closed-form solvers all use it.

    Parameters
    ----------
    X : Tensor of shape (n_stimuli, n_times, n_features)
        Stimuli with padding frames already set to zero.
    n_lags : int
        Number of lags ``L``.
    fill : Tensor of shape (n_features,) or None, default=None
        The history before the start of each stimulus; None is zero. A model whose input
        is centred (see :class:`STRFModel`) passes minus its offset here, which is zero in
        the data's units.

    Returns
    -------
    Z : Tensor of shape (n_stimuli, n_times, n_features, n_lags)
        ``Z[s, t, j, k] = X[s, t - k, j]`` and ``fill[j]`` (zero) when ``t - k < 0``: lag 0
        is the current frame and history never crosses the start of a stimulus.
    """
    padded = nn.functional.pad(X, (0, 0, n_lags - 1, 0))
    if fill is not None and n_lags > 1:
        padded[:, : n_lags - 1] = fill.to(padded)
    # unfold's window index j reads frame t + j - (L - 1), i.e. lag L - 1 - j.
    return padded.unfold(1, n_lags, 1).flip(-1)


@dataclass
class DesignStatistics:
    """Per-stimulus sufficient statistics of the standardised lagged design.

    With ``Zt = [Z_std, 1]`` (valid frames only) and ``P`` the standardised PSTH:
    ``gram = Zt' Zt`` (S, D+1, D+1), ``cross = Zt' P`` (S, D+1, N), ``sq = sum P**2``
    (S, N) and ``count`` the number of valid frames (S,). Any set of stimuli is a sum.
    """

    gram: torch.Tensor
    cross: torch.Tensor
    sq: torch.Tensor
    count: torch.Tensor

    @property
    def n_rows(self) -> int:
        """Number of rows (stimuli, blocks or groups)."""
        return self.gram.shape[0]

    def summed(self, index=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Statistics summed over the rows ``index`` (all by default), with no copy of
        per-row Grams.

        A single row gives views of it; consecutive rows give a sum over a slice view; any
        other set is accumulated row by row into one new (D+1, D+1) array.

        Returns
        -------
        gram : Tensor of shape (D + 1, D + 1)
        cross : Tensor of shape (D + 1, n_neurons)
        sq : Tensor of shape (n_neurons,)
        count : Tensor of shape ()
        """
        arrays = (self.gram, self.cross, self.sq, self.count)
        if index is None:
            return tuple(a.sum(0) for a in arrays)
        rows = [int(i) for i in torch.as_tensor(index).reshape(-1).tolist()]
        if len(rows) == 1:
            return tuple(a[rows[0]] for a in arrays)
        if rows == list(range(rows[0], rows[0] + len(rows))):
            sl = slice(rows[0], rows[0] + len(rows))
            return tuple(a[sl].sum(0) for a in arrays)
        sums = [a[rows[0]].clone() for a in arrays]
        for r in rows[1:]:
            for total, a in zip(sums, arrays):
                total.add_(a[r])
        return tuple(sums)

    def to(self, device=None, dtype=None) -> "DesignStatistics":
        """These statistics on ``device`` (and, for the Gram and cross-products, in ``dtype``)."""
        return DesignStatistics(self.gram.to(device=device, dtype=dtype), self.cross.to(device=device, dtype=dtype),
                                self.sq.to(device=device), self.count.to(device=device))

    def merge_blocks(self, n_blocks: int) -> "DesignStatistics":
        """Per-stimulus statistics from per-block ones (rows in (stimulus, block) order)."""
        if n_blocks == 1:
            return self
        return DesignStatistics(*(a.reshape(-1, n_blocks, *a.shape[1:]).sum(1) for a in
                                  (self.gram, self.cross, self.sq, self.count)))

    def sum_rows(self, groups: torch.Tensor, n_groups: int) -> "DesignStatistics":
        """Statistics summed over the rows of each group: row ``g`` of the result is the sum
        of the rows ``r`` with ``groups[r] == g`` (``0 <= groups < n_groups``)."""
        groups = torch.as_tensor(groups, device=self.gram.device)
        return DesignStatistics(*(
            torch.zeros((n_groups, *a.shape[1:]), dtype=a.dtype, device=a.device).index_add_(0, groups, a)
            for a in (self.gram, self.cross, self.sq, self.count)))

    def in_basis(self, frame: torch.Tensor | None) -> "DesignStatistics":
        """The statistics of the design projected onto a lag basis.

        The design's columns are (feature, lag) pairs; ``frame`` (n_lags, n_basis) has
        orthonormal columns. Column ``(f, b)`` of the projected design is
        ``sum_l Z[:, (f, l)] frame[l, b]`` (the intercept column stays), so its Gram is
        ``J' gram J`` and its cross-products ``J' cross``, ``J = blockdiag(frame, ..., 1)``.
        None returns these statistics.
        """
        if frame is None:
            return self
        frame = frame.to(device=self.gram.device, dtype=self.gram.dtype)
        L, B = frame.shape
        R, D = self.gram.shape[0], self.gram.shape[1] - 1
        F = D // L
        gram = self.gram.new_empty((R, F * B + 1, F * B + 1))
        blocks = self.gram[:, :D, :D].reshape(R, F, L, F, L)
        half = torch.einsum("rflgk,kb->rflgb", blocks, frame)
        gram[:, :F * B, :F * B] = torch.einsum("rflgb,la->rfagb", half, frame).reshape(R, F * B, F * B)
        edge = (self.gram[:, :D, D].reshape(R, F, L) @ frame).reshape(R, F * B)
        gram[:, :F * B, F * B] = edge
        gram[:, F * B, :F * B] = edge
        gram[:, F * B, F * B] = self.gram[:, D, D]
        cross = self.cross.new_empty((R, F * B + 1, self.cross.shape[2]))
        cross[:, :F * B] = torch.einsum("rfln,lb->rfbn", self.cross[:, :D].reshape(R, F, L, -1),
                                        frame).reshape(R, F * B, -1)
        cross[:, F * B] = self.cross[:, D]
        return DesignStatistics(gram, cross, self.sq, self.count)

    def concat(self, other: "DesignStatistics") -> "DesignStatistics":
        """Statistics of this set's stimuli followed by those of ``other``."""
        return DesignStatistics(*(torch.cat([a, b]) for a, b in zip(
            (self.gram, self.cross, self.sq, self.count),
            (other.gram, other.cross, other.sq, other.count))))


def standardized_design(X: torch.Tensor, n_lags: int, x_mean: torch.Tensor,
                        x_scale: torch.Tensor, mask: torch.Tensor,
                        fill: torch.Tensor | None = None) -> torch.Tensor:
    """Standardised lagged design with an intercept column, zero on padding frames.

    ``fill`` is the history before each stimulus (see :func:`lagged_design`).
    Returns a Tensor of shape (n_stimuli, n_times, n_features * n_lags + 1).
    """
    Z = (lagged_design(X, n_lags, fill) - x_mean[:, None]) / x_scale[:, None]
    Z = torch.cat([Z.flatten(2), torch.ones_like(Z[..., :1, 0])], dim=2)
    return Z * mask[..., None]


def design_statistics(X: torch.Tensor, P: torch.Tensor, mask: torch.Tensor, n_lags: int,
                      x_mean: torch.Tensor, x_scale: torch.Tensor, y_mean: torch.Tensor,
                      y_scale: torch.Tensor, chunk: int = 16, n_blocks: int = 1,
                      fill: torch.Tensor | None = None, basis: torch.Tensor | None = None) -> DesignStatistics:
    """Compute :class:`DesignStatistics` stimulus by stimulus chunk (bounded memory).

    Parameters
    ----------
    X : Tensor of shape (n_stimuli, n_times, n_features)
        Stimuli as the linear stage reads them, any finite value on padding frames.
    P : Tensor of shape (n_stimuli, n_times, n_neurons)
        PSTH in the model's output units, any value on padding frames.
    mask : Tensor of shape (n_stimuli, n_times)
        1.0 on valid frames, 0.0 on padding.
    n_blocks : int, default=1
        Split each stimulus's valid frames into this many contiguous blocks (the one rule of
        :func:`skstrf._layout.block_edges`), each with its own statistics (row
        ``s * n_blocks + b``): the units of cross-validation within one continuous
        recording. Every frame keeps its real lag
        history, which may reach into the previous block (stimulus frames only, never
        responses).
    fill : Tensor of shape (n_features,) or None, default=None
        The history before each stimulus (see :func:`lagged_design`).
    basis : Tensor of shape (n_lags, n_basis) or None, default=None
        With orthonormal columns: the statistics of the design projected onto this lag
        basis (:meth:`DesignStatistics.in_basis`).
    """
    grams, crosses, sqs, counts = [], [], [], []
    for start in range(0, X.shape[0], chunk):
        sl = slice(start, start + chunk)
        Z = standardized_design(X[sl], n_lags, x_mean, x_scale, mask[sl], fill).double()
        Ps = (torch.nan_to_num((P[sl] - y_mean) / y_scale) * mask[sl][..., None]).double()
        if basis is not None:  # the projected design: (f, b) columns and the intercept
            basis = basis.to(Z)
            Z = torch.cat([(Z[..., :-1].unflatten(2, (-1, n_lags)) @ basis).flatten(2), Z[..., -1:]], dim=2)
        if n_blocks == 1:
            grams.append(Z.transpose(1, 2) @ Z)
            crosses.append(Z.transpose(1, 2) @ Ps)
            sqs.append((Ps**2).sum(1))
            counts.append(mask[sl].sum(1).double())
            continue
        valid = mask[sl] > 0
        rank = valid.long().cumsum(1) - 1  # each valid frame's place among its stimulus's
        edges = torch.as_tensor(block_edges(valid.sum(1).cpu().numpy(), n_blocks), device=X.device)
        block = (rank[..., None] >= edges[:, None, 1:]).sum(-1)  # (s, T)
        block = torch.where(valid, block, n_blocks)  # padding is in no block
        parts = [], [], [], []
        for b in range(n_blocks):
            m = (block == b).to(Z.dtype) * mask[sl]
            Zb = Z * m[..., None]
            for out, value in zip(parts, (Zb.transpose(1, 2) @ Z, Zb.transpose(1, 2) @ Ps,
                                          (Ps**2 * m[..., None]).sum(1), m.sum(1))):
                out.append(value)
        # rows in (stimulus, block) order
        for out, values in zip((grams, crosses, sqs, counts), parts):
            stacked = torch.stack(values, dim=1)
            out.append(stacked.reshape(-1, *stacked.shape[2:]))
    return DesignStatistics(torch.cat(grams), torch.cat(crosses), torch.cat(sqs), torch.cat(counts))


def _block_bounds(lengths: torch.Tensor, n_blocks: int, first: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """First and one-past-last frame of every block, shape (n_stimuli, n_blocks) each: each
    stimulus's frames from ``first`` on, cut by the library's one rule for blocks
    (:func:`skstrf._layout.block_edges`)."""
    first = first.to(lengths)
    edges = torch.as_tensor(block_edges((lengths - first).cpu().numpy(), n_blocks), device=lengths.device)
    edges = edges + first[:, None]
    return edges[:, :-1], edges[:, 1:]


def _prefix_lengths(mask: torch.Tensor) -> torch.Tensor | None:
    """Number of valid frames per stimulus if every mask is a prefix of ones, else None."""
    lengths = mask.sum(1).round().long()
    prefix = torch.arange(mask.shape[1], device=mask.device)[None] < lengths[:, None]
    return lengths if bool((mask == prefix.to(mask.dtype)).all()) else None


def _edge_rows(seg: torch.Tensor, first: torch.Tensor, n_rows: int, n_lags: int) -> torch.Tensor:
    """Lagged-design rows of ``n_rows`` consecutive frames of each segment.

    Row ``i`` of segment ``r`` is the lagged vector at frame ``first[r] + i`` of the
    segment, reading zero at frames outside ``[0, seg.shape[1])``. Returns a Tensor of
    shape (n_rows_total, n_rows, n_features * n_lags).
    """
    R, T, F = seg.shape
    window = first[:, None] - (n_lags - 1) + torch.arange(n_rows + n_lags - 1, device=seg.device)[None]
    inside = (window >= 0) & (window < T)
    values = torch.gather(seg, 1, window.clamp(0, max(T - 1, 0))[..., None].expand(-1, -1, F))
    values = values * inside[..., None]
    rows = lagged_design(values, n_lags)[:, n_lags - 1:]  # (R, n_rows, F, L)
    return rows.reshape(R, n_rows, F * n_lags)


def lagged_statistics(X: torch.Tensor, P: torch.Tensor, mask: torch.Tensor, n_lags: int,
                      x_mean: torch.Tensor, x_scale: torch.Tensor, y_mean: torch.Tensor,
                      y_scale: torch.Tensor, n_blocks: int = 1, chunk: int | None = None,
                      groups: torch.Tensor | None = None, n_groups: int | None = None,
                      p_offset: torch.Tensor | None = None, starts: torch.Tensor | None = None,
                      basis: torch.Tensor | None = None) -> DesignStatistics:
    """:class:`~skstrf._model.DesignStatistics` from cross-correlations, never building the lagged design.

    Same inputs and outputs as :func:`skstrf._model.design_statistics` (its ``chunk`` aside),
    computed in float64. Each block (a stimulus's valid frames, or one of its ``n_blocks``
    contiguous parts) is taken with its real lag history as a segment; the Gram of the raw
    lagged design over the block is the block-Toeplitz matrix of the segment's band
    cross-correlations at lags ``0 .. n_lags - 1`` minus the products of the at most
    ``n_lags - 1`` lagged rows before the block (history frames) and after its end (frames
    that only the lags reach). Standardisation ``(z - x_mean) / x_scale`` and the intercept
    column then follow from that Gram, the column sums and the frame count. The cost is
    ``n_lags`` products of (n_features x frames) by (frames x (n_features + n_neurons)),
    against ``(n_features * n_lags)**2`` per frame for the direct Gram.

    With ``groups``, the rows are summed into groups as they are computed (equal to
    :meth:`~skstrf._model.DesignStatistics.sum_rows` of the per-row result): the
    cross-correlations of a group's rows are added before they are spread over the
    (D + 1, D + 1) Gram, and no per-row statistics are ever held, only the groups'.

    Parameters
    ----------
    X : Tensor of shape (n_stimuli, n_times, n_features)
        Stimuli (values on padding frames are ignored).
    P : Tensor of shape (n_stimuli, n_times, n_neurons)
        PSTH in the data's units, any value on padding frames.
    mask : Tensor of shape (n_stimuli, n_times)
        1.0 on valid frames, 0.0 on padding. Each stimulus's valid frames must come first
        (as :attr:`skstrf._validation.StimulusSet.frame_mask` makes them); any other mask
        falls back to :func:`skstrf._model.design_statistics`.
    n_lags : int
        Number of lags ``L``.
    x_mean, x_scale : Tensor of shape (n_features,)
        Standardisation of each input band.
    y_mean, y_scale : Tensor of shape (n_neurons,)
        Standardisation of each neuron's PSTH.
    n_blocks : int, default=1
        Statistics per block of each stimulus (rows in (stimulus, block) order), as in
        :func:`skstrf._model.design_statistics`.
    chunk : int or None, default=None
        Most rows (blocks) computed together: bounds the memory of the intermediates; the
        rows are cut into chunks of nearly equal sizes. None: as many as keep a chunk's
        segments (frames x (n_features + n_neurons) float64 numbers per row) within
        :data:`CHUNK_BYTES`, at most 16; side by side (``workers``), the workers' chunks
        share that budget and every worker gets two chunks at least.
    groups : Tensor of int of shape (n_stimuli * n_blocks,) or None, default=None
        The group of each row, ``0 .. n_groups - 1`` (e.g. from
        :func:`skstrf._plan.fold_groups`); None: one row per block.
    n_groups : int or None, default=None
        Number of groups (rows of the result); None: ``groups.max() + 1``.
    starts : Tensor of int of shape (n_stimuli,) or None, default=None
        The first counted frame of each stimulus: the frames before it are a lead-in, read
        as lags only (their responses are not counted). None: 0.
    p_offset : Tensor of shape (n_neurons,) or None, default=None
        With it, the PSTH is read as ``float32(P - p_offset)`` (in float64, block by
        block), the float32 targets a model with that ``y_offset`` trains on
        (:func:`skstrf._model.net_targets`), without a copy of ``P``.
    basis : Tensor of shape (n_lags, n_basis) or None, default=None
        With orthonormal columns: the statistics of the design projected onto this lag
        basis (:meth:`DesignStatistics.in_basis`), a chunk of rows at a time, so that the
        full (D + 1, D + 1) Grams are only ever held for one chunk.

    On the CPU, with at least two rows per worker, the chunks of rows are computed side by
    side on :func:`skstrf._threads.task_workers` threads, one torch thread each
    (:func:`skstrf._threads.side_by_side`: independent tasks keep their share of a busy
    machine); otherwise one after the other with torch's threads. The result is the same to
    the last bit for a given number of workers (chunks are summed in order); it changes in
    the last bits with it, as the chunks do.

    Returns
    -------
    DesignStatistics
        ``gram`` (n_rows, D + 1, D + 1), ``cross`` (n_rows, D + 1, n_neurons), ``sq``
        (n_rows, n_neurons) and ``count`` (n_rows,), float64, with D = n_features * n_lags
        and ``n_rows`` = ``n_groups``, or n_stimuli * n_blocks without ``groups``.
    """
    S, T, F = X.shape
    dev, f64 = X.device, torch.float64
    R = S * n_blocks
    if groups is not None:
        groups = torch.as_tensor(groups, device=dev).long().reshape(-1)
        if groups.numel() != R:
            raise ValueError(f"groups has {groups.numel()} entries; expected one per row ({R}).")
        n_groups = int(groups.max()) + 1 if n_groups is None else int(n_groups)
        if R and (int(groups.min()) < 0 or int(groups.max()) >= n_groups):
            raise ValueError(f"groups must lie in 0 .. {n_groups - 1}.")
    first = torch.zeros(S, dtype=torch.long, device=dev) if starts is None else torch.as_tensor(starts, device=dev).long()
    lengths = _prefix_lengths(mask)
    if lengths is None:
        if p_offset is not None:
            P = (P.double() - p_offset.to(device=dev, dtype=f64)).float()
        scored = mask * (torch.arange(T, device=dev)[None] >= first[:, None]).to(mask.dtype)
        stats = design_statistics(X, P, scored, n_lags, x_mean, x_scale, y_mean, y_scale,
                                  n_blocks=n_blocks, basis=basis)
        return stats if groups is None else stats.sum_rows(groups, n_groups)
    L = int(n_lags)
    starts, ends = _block_bounds(lengths, n_blocks, first)
    starts, ends = starts.reshape(-1), ends.reshape(-1)  # (R,), rows (stimulus, block)
    stim = torch.arange(S, device=dev).repeat_interleave(n_blocks)
    D, N = F * L, P.shape[2]
    n_out = R if groups is None else n_groups
    if basis is not None:
        basis = torch.as_tensor(basis, device=dev, dtype=f64)
    D_out = D if basis is None else F * basis.shape[1]
    # side by side only where every worker gets two chunks at least and the products are
    # worth a thread's hand-over; else torch's threads
    work = 2.0 * L * float(ends.sum() - starts.sum()) * F * (F + N)
    workers = task_workers()
    side = workers > 1 and dev.type == "cpu" and R >= 2 * workers and work >= SIDE_BY_SIDE_FLOP
    if chunk is None:
        rows_in_budget = max(1, CHUNK_BYTES // max(1, 8 * (T + L) * (F + N)))
        if side:  # the budget is shared by the workers' chunks in flight
            chunk = min(16, max(1, rows_in_budget // workers), -(-R // (2 * workers)))
        else:
            chunk = int(min(16, rows_in_budget))
        if basis is not None:  # a chunk's full Grams, before their projection
            chunk = max(1, min(chunk, BASIS_CHUNK_BYTES // (8 * (D + 1) ** 2)))
    # Outputs allocated once and filled (or, by groups, summed into) a chunk of rows at a
    # time: the intermediates (the segments, their lagged products) stay the size of one
    # chunk per worker.
    alloc = torch.empty if groups is None else torch.zeros
    out = DesignStatistics(alloc(n_out, D_out + 1, D_out + 1, dtype=f64, device=dev),
                           alloc(n_out, D_out + 1, N, dtype=f64, device=dev),
                           alloc(n_out, N, dtype=f64, device=dev), alloc(n_out, dtype=f64, device=dev))
    units = tuple(a.to(device=dev, dtype=f64) for a in (x_mean, x_scale, y_mean, y_scale))
    totals = (out.gram, out.cross, out.sq, out.count)
    # The groups' totals are summed into in chunk order, whichever chunk finishes first, so
    # that a fit gives the same sums (to the last bit) on every run.
    turn = threading.Condition()
    state = {"next": 0, "failed": False}

    def fill(k: int, rows: slice) -> None:
        try:
            pieces = _row_pieces(X, P, stim[rows], starts[rows], ends[rows], L, *units[2:], p_offset)
            if groups is None and basis is None:  # each chunk fills its own rows
                _fill_statistics(pieces, F, L, *units[:2], tuple(a[rows] for a in totals))
                return
            present, pieces = ((torch.arange(rows.start, rows.stop, device=dev), pieces) if groups is None
                               else _sum_pieces(pieces, groups[rows]))
            n = present.numel()
            part = (torch.empty(n, D + 1, D + 1, dtype=f64, device=dev), torch.empty(n, D + 1, N, dtype=f64, device=dev),
                    torch.empty(n, N, dtype=f64, device=dev), torch.empty(n, dtype=f64, device=dev))
            _fill_statistics(pieces, F, L, *units[:2], part)
            projected = DesignStatistics(*part).in_basis(basis)
            part = (projected.gram, projected.cross, projected.sq, projected.count)
            if groups is None:
                for total, value in zip(totals, part):
                    total[rows] = value
                return
        except BaseException:
            with turn:  # the chunks waiting for this one give up
                state["failed"] = True
                turn.notify_all()
            raise
        with turn:
            turn.wait_for(lambda: state["next"] == k or state["failed"])
            if state["failed"]:
                return
            for total, value in zip(totals, part):
                total.index_add_(0, present, value)
            state["next"] += 1
            turn.notify_all()

    # chunks of nearly equal sizes (at most ``chunk`` rows), so that the workers finish together
    bounds = np.linspace(0, R, -(-R // chunk) + 1).round().astype(int) if R else np.zeros(1, dtype=int)
    chunks = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    side_by_side([functools.partial(fill, k, rows) for k, rows in enumerate(chunks)], workers if side else 1)
    return out


#: Floating-point operations of the lagged products below which :func:`lagged_statistics`
#: computes its chunks one after the other (a few milliseconds of work: less than handing
#: chunks to other threads costs).
SIDE_BY_SIDE_FLOP = 5e7

#: Memory of a chunk's segments (bytes) that :func:`lagged_statistics` chooses its chunk by:
#: the transient intermediates are a few times this.
CHUNK_BYTES = 64 * 2**20

#: Memory of a chunk's full Grams (bytes) before their projection onto a lag basis
#: (:func:`lagged_statistics`): at least one row is computed at a time.
BASIS_CHUNK_BYTES = 256 * 2**20


def _row_pieces(X: torch.Tensor, P: torch.Tensor, stim: torch.Tensor, starts: torch.Tensor,
                ends: torch.Tensor, L: int, y_mean: torch.Tensor, y_scale: torch.Tensor,
                p_offset: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """What the statistics of rows (blocks) are made of, additive over rows but ``edges``.

    Rows are the blocks of stimuli ``stim`` covering frames ``starts .. ends - 1``. Returns
    ``prods`` (R, L, F, F + N): the segment's band products with itself and with the
    standardised PSTH at each lag; ``edges`` (R, m, F * L): the raw lagged rows outside the
    block that the Toeplitz sum counts (the Gram subtracts ``edges' edges``); ``col``
    (R, F * L): raw column sums over the block; ``count`` (R,); ``p_sum`` and ``sq`` (R, N):
    sums of the standardised PSTH and of its square. See :func:`lagged_statistics`.
    """
    T, F = X.shape[1], X.shape[2]
    dev, f64 = X.device, torch.float64
    history = (starts - (L - 1)).clamp(min=0)
    R = stim.numel()
    T_seg = max(int((ends - history).max()) if R else 0, 1)

    # Segment r covers frames history[r] .. ends[r] - 1 (zero beyond); its PSTH is zero
    # outside the block itself, so that only the block's frames count in the cross-products.
    frames = history[:, None] + torch.arange(T_seg, device=dev)[None]  # (R, T_seg)
    in_seg = frames < ends[:, None]
    in_block = in_seg & (frames >= starts[:, None])
    take = frames.clamp(max=T - 1)
    # x and the standardised PSTH side by side in one (R, T_seg, F + N) float64 array,
    # written in place: each lag's product then reads both at once.
    N = P.shape[2]
    both = torch.empty(R, T_seg, F + N, dtype=f64, device=dev)
    x_seg = both[..., :F]
    p_seg = both[..., F:]
    x_seg.copy_(X[stim[:, None], take])
    x_seg.mul_(in_seg[..., None])
    p_seg.copy_(P[stim[:, None], take])
    if p_offset is not None:  # the float32 targets of the model (see lagged_statistics)
        p_seg.copy_(p_seg.sub_(p_offset.to(device=dev, dtype=f64)).float())
    p_seg.sub_(y_mean).div_(y_scale)
    torch.nan_to_num_(p_seg)
    p_seg.mul_(in_block[..., None])

    # One product per lag gives the band correlations and the band-PSTH cross-products.
    x_t = x_seg.transpose(1, 2).contiguous()  # (R, F, T_seg)
    # lags beyond the segments' length pair no frames: their products stay zero
    prods = (torch.empty if T_seg >= L else torch.zeros)(R, L, F, F + N, dtype=f64, device=dev)
    for d in range(min(L, T_seg)):
        torch.matmul(x_t[:, :, :T_seg - d], both[:, d:], out=prods[:, d])

    # Rows outside the block: the history frames before it and the L - 1 frames after its
    # end, which the Toeplitz sum over every frame the lags reach counts too.
    n_edge = max(L - 1, 1)
    head = _edge_rows(x_seg, torch.zeros_like(starts), n_edge, L)
    head = head * ((torch.arange(n_edge, device=dev)[None] < (starts - history)[:, None])[..., None])
    tail = _edge_rows(x_seg, ends - history, n_edge, L) if L > 1 else torch.zeros_like(head)
    edges = torch.cat([head, tail], dim=1)  # (R, 2 n_edge, FL)
    col = x_seg.sum(1).repeat_interleave(L, dim=1) - edges.sum(1)  # (R, FL) raw column sums
    return {"prods": prods, "edges": edges, "col": col, "count": (ends - starts).to(f64),
            "p_sum": p_seg.sum(1), "sq": torch.linalg.vecdot(p_seg, p_seg, dim=1)}


def _sum_pieces(pieces: dict[str, torch.Tensor], groups: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """The pieces of :func:`_row_pieces` summed over the rows of each group present.

    Returns the groups present (sorted) and their pieces; the ``edges`` of a group are its
    rows' edges stacked (zero rows pad the smaller groups), so that ``edges' edges`` is
    still the sum over its rows.
    """
    present, inv = torch.unique(groups, return_inverse=True)
    n = present.numel()
    summed = {key: value.new_zeros((n, *value.shape[1:])).index_add_(0, inv, value)
              for key, value in pieces.items() if key != "edges"}
    member = inv[:, None] == torch.arange(n, device=inv.device)[None]  # (R, n)
    slot = (member.cumsum(0) - 1)[torch.arange(inv.numel(), device=inv.device), inv]
    edges = pieces["edges"]
    stacked = edges.new_zeros((n, int(slot.max()) + 1, *edges.shape[1:]))
    stacked[inv, slot] = edges
    summed["edges"] = stacked.flatten(1, 2)
    return present, summed


def _fill_statistics(pieces: dict[str, torch.Tensor], F: int, L: int, x_mean: torch.Tensor,
                     x_scale: torch.Tensor, out: tuple[torch.Tensor, ...]) -> None:
    """Fill ``out`` (gram, cross, sq, count, one row per row of ``pieces``) with the
    standardised statistics; see :func:`lagged_statistics`."""
    prods, edges, col, count = pieces["prods"], pieces["edges"], pieces["col"], pieces["count"]
    R = prods.shape[0]
    scale = x_scale
    mu = x_mean.repeat_interleave(L)
    sd = scale.repeat_interleave(L)
    D = F * L
    # The band scale is the same at every lag, so it applies to the correlations before
    # they are spread over the (D, D) Toeplitz blocks.
    corr = prods[..., :F] / torch.outer(scale, scale)
    # rev[..., L-1-d] holds lag d (negative d: the transposed correlation at -d), so
    # that row k of every Toeplitz block, lags k - l for l = 0 .. L-1, is one slice.
    rev = torch.cat([corr.flip(1), corr[:, 1:].transpose(2, 3)], dim=1).permute(0, 2, 3, 1).contiguous()
    gram, cross_out, sq_out, count_out = out
    blocks = gram[:, :D, :D].unflatten(1, (F, L)).unflatten(3, (F, L))  # view [r, f, k, g, l]
    for k in range(L):
        blocks[:, :, k].copy_(rev[..., L - 1 - k:2 * L - 1 - k])
    # sum over block frames of (z - mu)(z - mu)' / (s s') = Toeplitz - edges' edges
    #   - (mu c' + c mu' - n mu mu') / (s s'), all low-rank terms in one batched product.
    low = torch.cat([edges, mu.expand(R, 1, D), col[:, None]], dim=1) / sd  # (R, m, D)
    weighted = low.clone()
    weighted[:, -2] = low[:, -1] - count[:, None] * low[:, -2]
    weighted[:, -1] = low[:, -2]
    gram[:, :D, :D].baddbmm_(low.transpose(1, 2), weighted, alpha=-1.0)
    col_std = (col - count[:, None] * mu[None]) / sd[None]
    gram[:, :D, D] = col_std
    gram[:, D, :D] = col_std
    gram[:, D, D] = count
    p_sum = pieces["p_sum"]  # (R, N)
    cross_raw = prods[..., F:].permute(0, 2, 1, 3).reshape(R, D, -1)  # (R, FL, N)
    cross_out[:, :D] = (cross_raw - mu[None, :, None] * p_sum[:, None, :]) / sd[None, :, None]
    cross_out[:, D] = p_sum
    sq_out.copy_(pieces["sq"])
    count_out.copy_(count)
