"""Sufficient statistics of the lagged design from band cross-correlations, without building it.

The Gram matrix of a causal lagged design is block-Toeplitz up to edge terms: entry
``((f, k), (g, l))`` is the cross-correlation of bands ``f`` and ``g`` at lag ``k - l``
minus the few products that the lags cut at a segment's start and end. This module computes
:class:`skstrf.model.DesignStatistics` that way, in float64, from ``L`` products of the
stimulus with itself (and with the PSTH) shifted by each lag, and also holds the training
loss of the statistics-based gradient step with a hand-written backward pass.
"""

from __future__ import annotations

import torch

from .model import DesignStatistics, design_statistics, lagged_design

__all__ = ["lagged_statistics", "summed_batch", "statistics_loss"]


def _block_bounds(lengths: torch.Tensor, n_times: int, n_blocks: int) -> tuple[torch.Tensor, torch.Tensor]:
    """First and one-past-last frame of every block, shape (n_stimuli, n_blocks) each.

    Blocks are assigned exactly as :func:`skstrf.model.design_statistics` does
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
                      y_scale: torch.Tensor, n_blocks: int = 1, chunk: int = 16) -> DesignStatistics:
    """:class:`~skstrf.model.DesignStatistics` from cross-correlations, never building the lagged design.

    Same inputs and outputs as :func:`skstrf.model.design_statistics` (its ``chunk`` aside),
    computed in float64. Each block (a stimulus's valid frames, or one of its ``n_blocks``
    contiguous parts) is taken with its real lag history as a segment; the Gram of the raw
    lagged design over the block is the block-Toeplitz matrix of the segment's band
    cross-correlations at lags ``0 .. n_lags - 1`` minus the products of the at most
    ``n_lags - 1`` lagged rows before the block (history frames) and after its end (frames
    that only the lags reach). Standardisation ``(z - x_mean) / x_scale`` and the intercept
    column then follow from that Gram, the column sums and the frame count. The cost is
    ``n_lags`` products of (n_features x frames) by (frames x (n_features + n_neurons)),
    against ``(n_features * n_lags)**2`` per frame for the direct Gram.

    Parameters
    ----------
    X : Tensor of shape (n_stimuli, n_times, n_features)
        Stimuli (values on padding frames are ignored).
    P : Tensor of shape (n_stimuli, n_times, n_neurons)
        PSTH in the data's units, any value on padding frames.
    mask : Tensor of shape (n_stimuli, n_times)
        1.0 on valid frames, 0.0 on padding. Each stimulus's valid frames must come first
        (as :attr:`skstrf.validation.StimulusSet.frame_mask` makes them); any other mask
        falls back to :func:`skstrf.model.design_statistics`.
    n_lags : int
        Number of lags ``L``.
    x_mean, x_scale : Tensor of shape (n_features,)
        Standardisation of each input band.
    y_mean, y_scale : Tensor of shape (n_neurons,)
        Standardisation of each neuron's PSTH.
    n_blocks : int, default=1
        Statistics per block of each stimulus (rows in (stimulus, block) order), as in
        :func:`skstrf.model.design_statistics`.
    chunk : int, default=16
        Rows (blocks) computed together: bounds the memory of the intermediates.

    Returns
    -------
    DesignStatistics
        ``gram`` (n_stimuli * n_blocks, D + 1, D + 1), ``cross`` (n_stimuli * n_blocks,
        D + 1, n_neurons), ``sq`` (n_stimuli * n_blocks, n_neurons) and ``count``
        (n_stimuli * n_blocks,), float64, with D = n_features * n_lags.
    """
    lengths = _prefix_lengths(mask)
    if lengths is None:
        return design_statistics(X, P, mask, n_lags, x_mean, x_scale, y_mean, y_scale,
                                 n_blocks=n_blocks)
    S, T, F = X.shape
    L = int(n_lags)
    dev, f64 = X.device, torch.float64
    starts, ends = _block_bounds(lengths.to(f64), T, n_blocks)
    starts, ends = starts.reshape(-1), ends.reshape(-1)  # (R,), rows (stimulus, block)
    stim = torch.arange(S, device=dev).repeat_interleave(n_blocks)
    R, D, N = stim.numel(), F * L, P.shape[2]
    # Outputs allocated once and filled a chunk of rows at a time: the intermediates (the
    # segments, their lagged products) then stay the size of one chunk.
    out = DesignStatistics(torch.empty(R, D + 1, D + 1, dtype=f64, device=dev),
                           torch.empty(R, D + 1, N, dtype=f64, device=dev),
                           torch.empty(R, N, dtype=f64, device=dev), torch.empty(R, dtype=f64, device=dev))
    units = tuple(a.to(device=dev, dtype=f64) for a in (x_mean, x_scale, y_mean, y_scale))
    for first in range(0, R, chunk):
        rows = slice(first, first + chunk)
        _rows_statistics(X, P, stim[rows], starts[rows], ends[rows], L, *units,
                         tuple(a[rows] for a in (out.gram, out.cross, out.sq, out.count)))
    return out


def _rows_statistics(X: torch.Tensor, P: torch.Tensor, stim: torch.Tensor, starts: torch.Tensor,
                     ends: torch.Tensor, L: int, x_mean: torch.Tensor, x_scale: torch.Tensor,
                     y_mean: torch.Tensor, y_scale: torch.Tensor, out: tuple[torch.Tensor, ...]) -> None:
    """Fill ``out`` (gram, cross, sq, count views) with the statistics of the rows (blocks)
    of stimuli ``stim`` covering frames ``starts .. ends - 1``; see :func:`lagged_statistics`."""
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
    x_seg = X[stim[:, None], take].to(f64) * in_seg[..., None]
    p_seg = torch.nan_to_num((P[stim[:, None], take].to(f64) - y_mean) / y_scale) * in_block[..., None]

    # One product per lag gives the band correlations and the band-PSTH cross-products.
    x_t = x_seg.transpose(1, 2).contiguous()  # (R, F, T_seg)
    both = torch.cat([x_seg, p_seg], dim=2)  # (R, T_seg, F + N)
    prods = torch.stack([x_t[:, :, :T_seg - d] @ both[:, d:] for d in range(L)], dim=1)  # (R, L, F, F+N)

    # Rows outside the block: the history frames before it and the L - 1 frames after its
    # end, which the Toeplitz sum over every frame the lags reach counts too.
    n_edge = max(L - 1, 1)
    head = _edge_rows(x_seg, torch.zeros_like(starts), n_edge, L)
    head = head * ((torch.arange(n_edge, device=dev)[None] < (starts - history)[:, None])[..., None])
    tail = _edge_rows(x_seg, ends - history, n_edge, L) if L > 1 else torch.zeros_like(head)
    edges = torch.cat([head, tail], dim=1)  # (R, 2 n_edge, FL)
    col = x_seg.sum(1).repeat_interleave(L, dim=1) - edges.sum(1)  # (R, FL) raw column sums

    count = (ends - starts).to(f64)
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
    p_sum = p_seg.sum(1)  # (R, N)
    cross_raw = prods[..., F:].permute(0, 2, 1, 3).reshape(R, D, -1)  # (R, FL, N)
    cross_out[:, :D] = (cross_raw - mu[None, :, None] * p_sum[:, None, :]) / sd[None, :, None]
    cross_out[:, D] = p_sum
    sq_out.copy_(torch.einsum('rtn,rtn->rn', p_seg, p_seg))
    count_out.copy_(count)


def summed_batch(stats: DesignStatistics, index: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Summed statistics of the stimuli ``index`` with no copy of per-stimulus Grams.

    A single stimulus gives views of its rows; consecutive indices give a sum over a slice
    view; any other batch is accumulated row by row into one new (D+1, D+1) array. Equal
    to :meth:`skstrf.model.DesignStatistics.batch`.

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
    """Statistics training loss whose backward reuses the forward's ``theta @ gram``."""

    @staticmethod
    def forward(ctx, theta: torch.Tensor, gram: torch.Tensor, cross: torch.Tensor, sq: torch.Tensor,
                count: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        n_neurons = theta.shape[0]
        scale = 1.0 / (count * n_neurons)
        tg = theta @ gram  # (N, D+1)
        mse = ((tg - 2.0 * cross.T) * theta).sum() * scale + sq.sum() * scale
        ridge = (alpha * (theta[:, :-1] ** 2).sum(dim=1)).sum() / n_neurons
        ctx.save_for_backward(theta, tg, cross, alpha, scale)
        return mse + ridge

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        theta, tg, cross, alpha, scale = ctx.saved_tensors
        # d/dtheta of theta G theta' - 2 theta . b' is 2 (theta G - b') for a symmetric G.
        grad = (tg - cross.T) * (2.0 * scale)
        weight = alpha.expand(theta.shape[0]) if alpha.ndim == 0 else alpha
        grad[:, :-1] += (2.0 / theta.shape[0]) * weight[:, None] * theta[:, :-1]
        return grad * grad_out, None, None, None, None, None


def statistics_loss(theta: torch.Tensor, gram: torch.Tensor, cross: torch.Tensor, sq: torch.Tensor,
                    count: torch.Tensor, alpha: float | torch.Tensor = 0.0) -> torch.Tensor:
    """Training MSE of :meth:`skstrf.model.STRFModel.statistics_loss` with a cheap backward.

    Parameters
    ----------
    theta : Tensor of shape (n_neurons, D + 1)
        Standardised kernels with the bias as last column, float64.
    gram : Tensor of shape (D + 1, D + 1)
        Summed (symmetric) Gram of the batch's stimuli.
    cross : Tensor of shape (D + 1, n_neurons)
        Summed cross-products of the batch.
    sq : Tensor of shape (n_neurons,)
        Summed squared standardised PSTH.
    count : Tensor of shape ()
        Number of frames of the batch.
    alpha : float or Tensor of shape (n_neurons,), default=0.0
        L2 penalty on the kernels (not the bias).

    Returns
    -------
    loss : Tensor of shape ()
        Float64: the sum over neurons of ``theta_n G theta_n - 2 theta_n b_n + sq_n``,
        divided by ``count * n_neurons``, plus the mean over neurons of
        ``alpha_n * sum(w_n ** 2)``. Only ``theta`` gets a gradient.
    """
    alpha = torch.as_tensor(alpha, dtype=theta.dtype, device=theta.device)
    count = torch.as_tensor(count, dtype=theta.dtype, device=theta.device)
    return StatisticsLoss.apply(theta, gram, cross, sq, count, alpha)
