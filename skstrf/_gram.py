"""Sufficient statistics of the lagged design from band cross-correlations, without building it.

The Gram matrix of a causal lagged design is block-Toeplitz up to edge terms: entry
``((f, k), (g, l))`` is the cross-correlation of bands ``f`` and ``g`` at lag ``k - l``
minus the few products that the lags cut at a segment's start and end. This module computes
:class:`skstrf._model.DesignStatistics` that way, in float64, from ``L`` products of the
stimulus with itself (and with the PSTH) shifted by each lag, and also holds the training
loss of the statistics-based gradient step with a hand-written backward pass.
"""

from __future__ import annotations

import functools
import threading

import numpy as np
import torch

from ._model import DesignStatistics, design_statistics, lagged_design
from ._threads import side_by_side

__all__ = ["lagged_statistics", "summed_batch", "statistics_loss"]


def _block_bounds(lengths: torch.Tensor, n_times: int, n_blocks: int) -> tuple[torch.Tensor, torch.Tensor]:
    """First and one-past-last frame of every block, shape (n_stimuli, n_blocks) each.

    Blocks are assigned exactly as :func:`skstrf._model.design_statistics` does
    (``floor(t * n_blocks / length)``), so both functions cut at the same frames.
    """
    frames = torch.arange(n_times, dtype=torch.float64, device=lengths.device)
    block = torch.floor(frames[None] * n_blocks / lengths[:, None])  # (S, T)
    valid = frames[None] < lengths[:, None]
    ids = torch.arange(n_blocks, dtype=torch.float64, device=lengths.device)
    starts = ((block[:, None, :] < ids[None, :, None]) & valid[:, None, :]).sum(-1)
    ends = ((block[:, None, :] <= ids[None, :, None]) & valid[:, None, :]).sum(-1)
    return starts, ends


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
                      p_offset: torch.Tensor | None = None, workers: int = 1) -> DesignStatistics:
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
    p_offset : Tensor of shape (n_neurons,) or None, default=None
        With it, the PSTH is read as ``float32(P - p_offset)`` (in float64, block by
        block), the float32 targets a model with that ``y_offset`` trains on
        (:func:`skstrf._model.net_targets`), without a copy of ``P``.
    workers : int, default=1
        On the CPU, with at least two rows per worker, compute the chunks of rows side by
        side on this many threads, one torch thread each (:func:`skstrf._threads.side_by_side`:
        independent tasks keep their share of a busy machine); otherwise one after the other
        with torch's threads. The result is the same to the last bit for a given ``workers``
        (chunks are summed in order); it changes in the last bits with ``workers``, as the
        chunks do. Call it from one thread at a time with ``workers > 1`` (it sets torch's
        thread count).

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
    lengths = _prefix_lengths(mask)
    if lengths is None:
        if p_offset is not None:
            P = (P.double() - p_offset.to(device=dev, dtype=f64)).float()
        stats = design_statistics(X, P, mask, n_lags, x_mean, x_scale, y_mean, y_scale,
                                  n_blocks=n_blocks)
        return stats if groups is None else stats.sum_rows(groups, n_groups)
    L = int(n_lags)
    starts, ends = _block_bounds(lengths.to(f64), T, n_blocks)
    starts, ends = starts.reshape(-1), ends.reshape(-1)  # (R,), rows (stimulus, block)
    stim = torch.arange(S, device=dev).repeat_interleave(n_blocks)
    D, N = F * L, P.shape[2]
    n_out = R if groups is None else n_groups
    # side by side only where every worker gets two chunks at least and the products are
    # worth a thread's hand-over; else torch's threads
    work = 2.0 * L * float(ends.sum() - starts.sum()) * F * (F + N)
    side = workers > 1 and dev.type == "cpu" and R >= 2 * workers and work >= SIDE_BY_SIDE_FLOP
    if chunk is None:
        rows_in_budget = max(1, CHUNK_BYTES // max(1, 8 * (T + L) * (F + N)))
        if side:  # the budget is shared by the workers' chunks in flight
            chunk = min(16, max(1, rows_in_budget // workers), -(-R // (2 * workers)))
        else:
            chunk = int(min(16, rows_in_budget))
    # Outputs allocated once and filled (or, by groups, summed into) a chunk of rows at a
    # time: the intermediates (the segments, their lagged products) stay the size of one
    # chunk per worker.
    alloc = torch.empty if groups is None else torch.zeros
    out = DesignStatistics(alloc(n_out, D + 1, D + 1, dtype=f64, device=dev),
                           alloc(n_out, D + 1, N, dtype=f64, device=dev),
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
            if groups is None:  # each chunk fills its own rows
                _fill_statistics(pieces, F, L, *units[:2], tuple(a[rows] for a in totals))
                return
            present, pieces = _sum_pieces(pieces, groups[rows])
            part = tuple(torch.empty((present.numel(), *a.shape[1:]), dtype=f64, device=dev) for a in totals)
            _fill_statistics(pieces, F, L, *units[:2], part)
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


def summed_batch(stats: DesignStatistics, index: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Summed statistics of the stimuli ``index`` with no copy of per-stimulus Grams.

    A single stimulus gives views of its rows; consecutive indices give a sum over a slice
    view; any other batch is accumulated row by row into one new (D+1, D+1) array. Equal
    to :meth:`skstrf._model.DesignStatistics.batch`.

    Returns
    -------
    gram : Tensor of shape (D + 1, D + 1)
    cross : Tensor of shape (D + 1, n_neurons)
    sq : Tensor of shape (n_neurons,)
    count : Tensor of shape ()
    """
    rows = [int(i) for i in torch.as_tensor(index).reshape(-1).tolist()]
    arrays = (stats.gram, stats.cross, stats.sq, stats.count)
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


class StatisticsLoss(torch.autograd.Function):
    """Statistics training loss with a hand-written backward; see :func:`statistics_loss`.

    The only large product, ``theta @ gram`` with ``theta = [weight, bias]``, is made once,
    as the residual ``theta @ gram - cross.T``: the loss is two dot products (summed in
    float64), the gradient that residual scaled. Every other operation is one pass over
    (n_neurons, D+1) numbers, contiguous when ``cross.T`` is (neuron-major cross-products);
    the batch's statistics are read, never copied.
    """

    @staticmethod
    def forward(ctx, weight: torch.Tensor, bias: torch.Tensor, gram: torch.Tensor, cross: torch.Tensor,
                sq: torch.Tensor, count: torch.Tensor, alpha: torch.Tensor | None) -> torch.Tensor:
        n_neurons = weight.shape[0]
        theta = torch.empty(n_neurons, gram.shape[0], dtype=gram.dtype, device=gram.device)
        theta[:, :-1] = weight
        theta[:, -1] = bias
        resid = torch.addmm(cross.T, theta, gram, beta=-1.0)  # theta G - c' (G is symmetric)
        # sum over neurons of theta' G theta - 2 theta' c + sq = theta' (G theta - c) - theta' c + sq.
        # The terms nearly cancel for a good model: accumulated in float64 whatever gram's
        # dtype (with float32 statistics, float32 sums leave an error of ~5e-6 of the loss
        # of a zero model at NS1's size; these leave ~2e-9).
        flat = theta.reshape(-1).double()
        core = (torch.dot(flat, resid.reshape(-1).double()) - torch.dot(flat, cross.T.reshape(-1).double())
                + sq.double().sum())
        scale = 1.0 / (count.double() * n_neurons)
        loss = core * scale
        if alpha is not None:
            norms = torch.linalg.vecdot(theta[:, :-1], theta[:, :-1]).double()  # (N,)
            loss = loss + (alpha * norms).sum() / n_neurons
        ctx.save_for_backward(theta, resid, scale, alpha)
        ctx.dtypes = (weight.dtype, bias.dtype)
        return loss

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        theta, resid, scale, alpha = ctx.saved_tensors
        n_neurons = theta.shape[0]
        # d/dtheta of theta' G theta - 2 theta' c is 2 (G theta - c) for a symmetric G.
        factor = (2.0 * scale * grad_out).to(resid.dtype)
        grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            # scaled and cast to the weight's dtype in one pass, contiguous
            grad_weight = torch.empty(resid.shape[0], resid.shape[1] - 1, dtype=ctx.dtypes[0],
                                      device=resid.device)
            torch.mul(resid[:, :-1], factor, out=grad_weight)
            if alpha is not None:
                ridge = (alpha * (2.0 / n_neurons) * grad_out).to(theta.dtype).expand(n_neurons)
                grad_weight.addcmul_(theta[:, :-1], ridge[:, None])
        if ctx.needs_input_grad[1]:
            grad_bias = (resid[:, -1] * factor).to(ctx.dtypes[1])
        return grad_weight, grad_bias, None, None, None, None, None


def statistics_loss(weight: torch.Tensor, bias: torch.Tensor, gram: torch.Tensor, cross: torch.Tensor,
                    sq: torch.Tensor, count: torch.Tensor,
                    alpha: float | np.ndarray | torch.Tensor | None = None) -> torch.Tensor:
    """Training MSE of :meth:`skstrf._model.STRFModel.statistics_loss` with a cheap backward.

    One (n_neurons, D+1) by (D+1, D+1) product per call, in ``gram``'s dtype; everything
    else is a pass over (n_neurons, D+1) numbers. With float32 statistics the product costs
    half as much, the gradient is exact to float32 rounding of ``gram @ theta``, and the
    loss's terms are still summed in float64 (they nearly cancel for a good model).

    Parameters
    ----------
    weight : Tensor of shape (n_neurons, D)
        Standardised kernels, flattened.
    bias : Tensor of shape (n_neurons,)
        Standardised intercepts.
    gram : Tensor of shape (D + 1, D + 1)
        Summed (symmetric) Gram of the batch's stimuli; the product is computed in its dtype.
    cross : Tensor of shape (D + 1, n_neurons)
        Summed cross-products of the batch, of ``gram``'s dtype; read fastest laid out
        neuron-major (``cross.T`` contiguous).
    sq : Tensor of shape (n_neurons,)
        Summed squared standardised PSTH.
    count : Tensor of shape ()
        Number of frames of the batch.
    alpha : float, ndarray or Tensor of shape (n_neurons,), or None, default=None
        L2 penalty on the kernels (not the bias); None, 0 or an all-zero array is none.

    Returns
    -------
    loss : Tensor of shape ()
        Float64: the sum over neurons of ``theta_n G theta_n - 2 theta_n b_n + sq_n``
        (``theta_n = [weight_n, bias_n]``), divided by ``count * n_neurons``, plus the mean
        over neurons of ``alpha_n * sum(weight_n ** 2)``. Only ``weight`` and ``bias`` get a
        gradient, of their own dtype.
    """
    if isinstance(alpha, torch.Tensor):
        alpha = alpha.to(device=gram.device, dtype=torch.float64)
    elif alpha is None or (isinstance(alpha, (int, float)) and alpha == 0) or not np.any(alpha):
        alpha = None  # decided on the host: no penalty costs nothing, and needs no device sync
    else:
        alpha = torch.as_tensor(alpha, dtype=torch.float64, device=gram.device)
    count = torch.as_tensor(count, device=gram.device)
    return StatisticsLoss.apply(weight, bias, gram, cross, sq, count, alpha)
