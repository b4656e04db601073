"""Closed-form solvers on the design statistics: ridge paths, ALS for separable kernels.

Everything here takes and returns torch tensors in standardised units (see
:class:`skstrf._model.DesignStatistics`), so it runs on whichever device holds the
statistics. Weights are ``(D, N)`` with ``D = C * F * L`` in the design's column order.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from ._gram import summed_batch
from ._model import DesignStatistics
from ._threads import side_by_side

__all__ = ["Moments", "moments", "ridge_path", "validation_correlation", "fit_ridge", "fit_als",
           "ClosedFormSolution", "solve_closed_form", "prediction_sums", "correlation_from_sums",
           "cross_validated_path", "eigh_many"]


@dataclass
class Moments:
    """Centred totals of a set of stimuli: ``gram`` (D, D), ``cross`` (D, N), the frame
    means of the design ``z_mean`` (D,) and of the PSTH ``p_mean`` (N,), ``count`` frames."""

    gram: torch.Tensor
    cross: torch.Tensor
    z_mean: torch.Tensor
    p_mean: torch.Tensor
    count: torch.Tensor


def moments(stats: DesignStatistics, index: torch.Tensor | None = None) -> Moments:
    """Centre the summed statistics of the stimuli ``index`` (all by default).

    Centring removes the intercept from the problem, so penalties never shrink it.
    """
    if index is None:
        index = torch.arange(stats.gram.shape[0])
    gram, cross, _, count = summed_batch(stats, index)
    sums = gram[-1, :-1]  # the intercept column holds the design's column sums
    z_mean = sums / count
    p_mean = cross[-1] / count
    gram_c = gram[:-1, :-1] - torch.outer(sums, z_mean)
    cross_c = cross[:-1] - torch.outer(sums, p_mean)
    return Moments(gram_c, cross_c, z_mean, p_mean, count)


def intercept(m: Moments, weight: torch.Tensor) -> torch.Tensor:
    """Standardised intercept that centres the predictions: ``p_mean - z_mean . w``."""
    return m.p_mean - m.z_mean @ weight


def ridge_path(m: Moments, alphas: torch.Tensor,
               decomposition: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Ridge weights for every penalty and neuron from one eigendecomposition.

    Minimises ``||P - Z w||^2 / n + alpha ||w||^2`` per neuron, i.e. solves
    ``(G / n + alpha I) w = B / n``.

    Parameters
    ----------
    m : Moments
        Centred statistics of the fitting stimuli.
    alphas : Tensor of shape (n_alphas,) or (n_alphas, n_neurons)
        Penalties, shared by all neurons or one per neuron.
    decomposition : (eigenvalues, eigenvectors) or None, default=None
        ``torch.linalg.eigh(m.gram / m.count)`` when already computed (e.g. alongside the
        folds' by :func:`cross_validated_path`); computed here by default.

    Returns
    -------
    weights : Tensor of shape (n_alphas, D, n_neurons)
    """
    evals, evecs = torch.linalg.eigh(m.gram / m.count) if decomposition is None else decomposition
    evals = evals.clamp(min=0.0)
    rotated = evecs.T @ (m.cross / m.count)  # (D, N)
    alphas = alphas.to(rotated)
    if alphas.ndim == 1:
        alphas = alphas[:, None].expand(-1, rotated.shape[1])
    shrunk = rotated[None] / (evals[None, :, None] + alphas[:, None, :])
    return evecs[None] @ shrunk


def prediction_sums(weights: torch.Tensor, bias: torch.Tensor, stats: DesignStatistics,
                    index: torch.Tensor | None = None) -> torch.Tensor:
    """Sums over the frames of stimuli ``index`` of the prediction ``q`` and the PSTH ``p``.

    Parameters
    ----------
    weights : Tensor of shape (..., D, N)
    bias : Tensor of shape (..., N)
    stats : DesignStatistics
    index : Tensor of int, default=None
        Stimuli (rows of ``stats``) to sum over; all by default.

    Returns
    -------
    sums : Tensor of shape (6, ..., N)
        ``n, sum q, sum q^2, sum q p, sum p, sum p^2``: additive over sets of stimuli, so
        that the correlation of predictions pooled over several folds follows from them
        (:func:`correlation_from_sums`).
    """
    if index is None:
        index = torch.arange(stats.gram.shape[0])
    gram, cross, sq, n = summed_batch(stats, index)
    theta = torch.cat([weights, bias[..., None, :]], dim=-2)  # (..., D+1, N)
    sum_q = torch.einsum("d,...dn->...n", gram[-1], theta)
    sum_qq = (theta * (gram @ theta)).sum(-2)
    sum_qp = (theta * cross).sum(-2)
    shape = sum_q.shape
    return torch.stack([n.expand(shape), sum_q, sum_qq, sum_qp, cross[-1].expand(shape),
                        sq.expand(shape)])


def correlation_from_sums(sums: torch.Tensor) -> torch.Tensor:
    """Pearson correlation from :func:`prediction_sums`; NaN where either side is constant."""
    n, sum_q, sum_qq, sum_qp, sum_p, sum_pp = sums
    cov = sum_qp / n - sum_q * sum_p / n**2
    var_q = sum_qq / n - (sum_q / n) ** 2
    var_p = sum_pp / n - (sum_p / n) ** 2
    return cov / torch.sqrt(var_q.clamp(min=0) * var_p.clamp(min=0))


def validation_correlation(weights: torch.Tensor, bias: torch.Tensor,
                           stats: DesignStatistics) -> torch.Tensor:
    """Correlation between prediction and PSTH on the stimuli of ``stats``, from statistics.

    Parameters
    ----------
    weights : Tensor of shape (..., D, N)
    bias : Tensor of shape (..., N)
    stats : DesignStatistics
        Statistics of the validation stimuli.

    Returns
    -------
    corr : Tensor of shape (..., N)
        NaN where a prediction or the PSTH is constant.
    """
    return correlation_from_sums(prediction_sums(weights, bias, stats))


def cross_validated_path(stats: DesignStatistics, folds, alphas: torch.Tensor, *,
                         also: tuple[torch.Tensor, ...] = (), workers: int | None = None
                         ) -> torch.Tensor | tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
    """Ridge penalty path scored by cross-validation over stimuli, from statistics alone.

    For each fold, the statistics of its training stimuli (a sum over them) give the whole
    penalty path from one eigendecomposition; the held-out stimuli's statistics give the
    sums of their predictions without predicting. The score of a (penalty, neuron) pair
    is the correlation of the out-of-fold predictions pooled over all folds with the PSTH,
    as :func:`skstrf.metrics.cc` pools frames over stimuli.

    On the CPU the folds run side by side, one thread each (each fold's eigendecomposition
    and held-out products: :func:`skstrf._threads.side_by_side`), and the held-out sums are
    computed in each fold's eigenbasis (:func:`_held_out_sums`): the path's weights are
    never formed.

    Parameters
    ----------
    stats : DesignStatistics
        Per-stimulus (or per-block, or per-group of them) statistics.
    folds : iterable of (train_index, test_index)
        Rows of ``stats`` fitted and held out in each fold.
    alphas : Tensor of shape (n_alphas,)
    also : tuple of Tensor of shape (D, D), default=()
        Further symmetric matrices to decompose side by side with the folds' (e.g. the
        refit's ``gram / count``, for :func:`ridge_path`'s ``decomposition``): with K folds
        on 2 threads, an odd K leaves a thread idle that one more decomposition fills.
    workers : int or None, default=None
        Threads for the folds' independent work (one BLAS thread each); None: torch's
        current number of threads. A fit passes :func:`skstrf._threads.allowed_threads`,
        which a busy machine does not lower (see :mod:`skstrf._threads`).

    Returns
    -------
    scores : Tensor of shape (n_alphas, n_neurons)
        Pooled out-of-fold correlation.
    decompositions : list of (eigenvalues, eigenvectors)
        Only when ``also`` is given: ``torch.linalg.eigh`` of each of its matrices, so
        that the result is ``(scores, decompositions)``.
    """
    folds = [(torch.as_tensor(np.asarray(train)), torch.as_tensor(np.asarray(test))) for train, test in folds]

    def fold_sums(train: torch.Tensor, test: torch.Tensor) -> torch.Tensor:
        m = moments(stats, train)
        evals, evecs = torch.linalg.eigh(m.gram / m.count)
        return _held_out_sums(m, evals.clamp(min=0.0), evecs, alphas, summed_batch(stats, test))

    results = side_by_side([functools.partial(fold_sums, *fold) for fold in folds]
                          + [functools.partial(torch.linalg.eigh, a) for a in also],
                          _threaded(stats.gram, workers))
    scores = correlation_from_sums(torch.stack(results[:len(folds)]).sum(0))
    return (scores, results[len(folds):]) if also else scores


#: Smallest matrix (rows) that :func:`eigh_many` decomposes in threads: below it the
#: decompositions take microseconds, less than handing them to another thread.
THREADED_EIGH_MIN = 128


def eigh_many(matrices: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``torch.linalg.eigh`` of each symmetric matrix; on the CPU side by side, one thread each.

    LAPACK's symmetric eigensolver synchronises its threads at every step of the
    tridiagonal reduction: when the machine has more runnable threads than cores, a thread
    that lost its core stalls the others, and a 2-thread decomposition measured 6 to 30
    times slower than a 1-thread one at a load of twice the cores. Independent
    decompositions, one thread each, never wait for each other, and on a quiet machine they
    keep the cores as busy (:mod:`skstrf._threads` documents the rule;
    :func:`skstrf._threads.side_by_side` runs them). Matrices smaller than
    :data:`THREADED_EIGH_MIN` are decomposed one after the other.

    Parameters
    ----------
    matrices : list of Tensor of shape (D, D)

    Returns
    -------
    list of (eigenvalues (D,), eigenvectors (D, D))
        In the order of ``matrices``.
    """
    workers = _threaded(matrices[0], None) if matrices else 1
    return side_by_side([functools.partial(torch.linalg.eigh, a) for a in matrices], workers)


def _threaded(matrix: torch.Tensor, workers: int | None) -> int:
    """Workers for tasks on matrices like ``matrix`` (its last axis, its device): 1 off the
    CPU or below :data:`THREADED_EIGH_MIN` rows, else ``workers`` (None: torch's current
    number of threads)."""
    if matrix.device.type != "cpu" or matrix.shape[-1] < THREADED_EIGH_MIN:
        return 1
    return torch.get_num_threads() if workers is None else int(workers)


def _held_out_sums(m: Moments, evals: torch.Tensor, evecs: torch.Tensor, alphas: torch.Tensor,
                   test: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """:func:`prediction_sums` over held-out statistics ``test`` (summed gram, cross, sq,
    count) of the ridge path of ``m`` (eigendecomposition ``evals``, ``evecs`` of
    ``m.gram / m.count``), computed in the eigenbasis.

    With ``w_a = V s_a``, ``s_a = V' b / (e + a)``, the held-out sums need ``V' G V``
    once (G the held-out Gram), then one (D, D) by (D, n_neurons) product per penalty:
    ``w' G w = s' (V' G V) s``. Returns a Tensor of shape (6, n_alphas, n_neurons).
    """
    gram, cross, sq, n = test
    rotated = evecs.T @ (m.cross / m.count)  # (D, N)
    # s[:, a] = V' w_a, laid out (D, A, N) so that one product serves every penalty
    s = rotated[:, None, :] / (evals[:, None, None] + alphas.to(rotated)[None, :, None])
    flat = s.reshape(s.shape[0], -1)  # (D, A * N), a view
    bias = m.p_mean - ((evecs.T @ m.z_mean) @ flat).view(s.shape[1:])  # (A, N)
    rot_col = evecs.T @ gram[-1, :-1]  # held-out column sums, rotated (D,)
    rot_cross = evecs.T @ cross[:-1]  # (D, N)
    sum_qz = (rot_col @ flat).view_as(bias)  # sum over frames of z . w
    sum_q = sum_qz + n * bias
    factor, info = torch.linalg.cholesky_ex(gram[:-1, :-1])
    if int(info) == 0:
        # G = L L': w' G w = |L' V s|^2, and L' V costs half of V' G V
        product = (factor.T @ evecs) @ flat
        sum_ww = product.square_().sum(0).view_as(bias)
    else:  # a singular held-out Gram (fewer held-out frames than weights)
        product = (evecs.T @ (gram[:-1, :-1] @ evecs)) @ flat
        sum_ww = (product.mul_(flat)).sum(0).view_as(bias)
    sum_qq = sum_ww + 2.0 * bias * sum_qz + n * bias**2
    sum_qp = (rot_cross[:, None, :] * s).sum(0) + cross[-1] * bias
    shape = sum_q.shape
    return torch.stack([n.expand(shape), sum_q, sum_qq, sum_qp, cross[-1].expand(shape), sq.expand(shape)])


def _best_per_neuron(scores: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
    """Index of the best score per neuron (ties and all-NaN go to the largest penalty)."""
    scores = torch.nan_to_num(scores, nan=-torch.inf)
    # flip so that argmax's first-maximum rule prefers the strongest penalty on ties
    order = torch.argsort(alphas, descending=True)
    best = scores[order].argmax(dim=0)
    return order[best]


def fit_ridge(train: Moments, valid: DesignStatistics | None, alphas: torch.Tensor,
              refit: Moments | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Closed-form ridge with the penalty chosen per neuron on validation stimuli.

    Parameters
    ----------
    train : Moments
        Statistics the penalties are evaluated from.
    valid : DesignStatistics or None
        Validation stimuli; with ``None`` the single penalty in ``alphas`` is used.
    alphas : Tensor of shape (n_alphas,)
        Penalty grid.
    refit : Moments, default=None
        Statistics to refit on with the chosen penalties (e.g. training plus validation
        stimuli); by default the ``train`` solution is returned.

    Returns
    -------
    weight : Tensor of shape (D, N)
    bias : Tensor of shape (N,)
    alpha : Tensor of shape (N,)
        Chosen penalty per neuron.
    scores : Tensor of shape (n_alphas, N)
        Validation correlation per penalty and neuron (NaN without validation).
    """
    n_neurons = train.cross.shape[1]
    if valid is None:
        if alphas.numel() != 1:
            raise ValueError("choosing among several penalties needs validation stimuli")
        chosen = alphas.expand(n_neurons).clone()
        scores = torch.full((1, n_neurons), float("nan"), dtype=train.gram.dtype)
    else:
        path = ridge_path(train, alphas)
        scores = validation_correlation(path, intercept(train, path), valid)
        chosen = alphas.to(path)[_best_per_neuron(scores, alphas)]
    final = train if refit is None else refit
    weight = ridge_path(final, chosen[None])[0]
    return weight, intercept(final, weight), chosen, scores


def _separable_half_step(m: Moments, fixed: torch.Tensor, alpha: torch.Tensor,
                         n_freqs: int, n_lags: int, solve_freq: bool, offset: int = 0) -> torch.Tensor:
    """Solve for one factor of ``W = sum_r freq_r time_r'`` with the other fixed.

    Parameters
    ----------
    fixed : Tensor of shape (B, rank, n_lags) when solving frequency profiles, else
        (B, rank, n_freqs); problem ``b`` fits neuron ``(offset + b) % n_neurons``.
    alpha : Tensor of shape (B,)
        Penalty on ``||W||^2`` for each problem.

    Returns
    -------
    Tensor of shape (B, rank, n_freqs) or (B, rank, n_lags)
    """
    C = m.gram.shape[0] // (n_freqs * n_lags)
    if C != 1:
        raise NotImplementedError("ALS supports a single input channel")
    G = m.gram.reshape(C, n_freqs, n_lags, C, n_freqs, n_lags)
    B = m.cross.reshape(C, n_freqs, n_lags, -1)
    batch, rank = fixed.shape[:2]
    neuron = (offset + torch.arange(batch, device=B.device)) % B.shape[-1]
    if solve_freq:  # unknowns (c, f, r); project lags
        Gp = torch.einsum("brl,cflgek,bsk->bcfrges", fixed, G, fixed)
        Bp = torch.einsum("brl,cflb->bcfr", fixed, B[..., neuron])
        size = C * n_freqs
    else:  # unknowns (c, l, r); project frequencies
        Gp = torch.einsum("brf,cflgek,bse->bclrgks", fixed, G, fixed)
        Bp = torch.einsum("brf,cflb->bclr", fixed, B[..., neuron])
        size = C * n_lags
    k = size * rank
    Gp = Gp.reshape(batch, k, k) / m.count
    Bp = Bp.reshape(batch, k) / m.count
    # ||sum_r a_r b_r'||^2 = sum_{r,s} (a_r . a_s)(b_r . b_s): penalty matrix kron(I, fixed fixed')
    gram_fixed = fixed @ fixed.transpose(1, 2)  # (B, rank, rank)
    eye = torch.eye(size, dtype=Gp.dtype, device=Gp.device)
    penalty = alpha[:, None, None] * torch.einsum("ij,brs->birjs", eye, gram_fixed).reshape(batch, k, k)
    jitter = 1e-10 * torch.eye(k, dtype=Gp.dtype, device=Gp.device)
    sol = torch.linalg.solve(Gp + penalty + jitter, Bp)
    return sol.reshape(batch, size, rank).transpose(1, 2)


def fit_als(m: Moments, init: torch.Tensor, alphas: torch.Tensor, n_freqs: int, n_lags: int,
            rank: int = 1, n_iter: int = 30, tol: float = 1e-6, chunk: int = 256) -> torch.Tensor:
    """Alternating least squares for rank-``rank`` separable weights, many problems at once.

    Each half-step is an exact ridge solve for one factor with the other fixed, so the
    penalised loss never increases.

    Parameters
    ----------
    m : Moments
        Centred statistics to fit.
    init : Tensor of shape (B, n_freqs, n_lags)
        Starting weights, one per problem (problem b fits neuron ``b % n_neurons``).
    alphas : Tensor of shape (B,)
        Penalty of each problem.

    Returns
    -------
    weights : Tensor of shape (B, n_freqs, n_lags)
    """
    # chunks of problems bound the memory of the projected Gram matrices
    return torch.cat([
        _als_chunk(m, init[i:i + chunk], alphas[i:i + chunk], n_freqs, n_lags, rank, n_iter, tol,
                   offset=i)
        for i in range(0, init.shape[0], chunk)
    ])


def _als_chunk(m: Moments, init: torch.Tensor, alphas: torch.Tensor, n_freqs: int, n_lags: int,
               rank: int, n_iter: int, tol: float, offset: int) -> torch.Tensor:
    u, s, vh = torch.linalg.svd(init, full_matrices=False)
    time = vh[:, :rank, :] * s[:, :rank, None].sqrt()
    previous = None
    for _ in range(n_iter):
        freq = _separable_half_step(m, time, alphas, n_freqs, n_lags, True, offset)
        time = _separable_half_step(m, freq, alphas, n_freqs, n_lags, False, offset)
        weights = torch.einsum("brf,brl->bfl", freq, time)
        if previous is not None:
            change = (weights - previous).norm() / previous.norm().clamp(min=1e-30)
            if change < tol:
                break
        previous = weights
    return weights


#: ALS's penalty as a fraction of the one cross-validation chose for the free kernel. The
#: rank constraint regularises too, so a separable kernel might need less shrinkage; on the
#: tuning seeds of ``benchmarks/defaults_realistic.py`` a half or a quarter gained at most
#: 0.002 on songs and 0.001 on NS1-like data and lost 0.003 on the continuous recording
#: (means over the seeds), so the default keeps the free kernel's penalty.
ALS_PENALTY_SCALE = 1.0


@dataclass(frozen=True)
class ClosedFormSolution:
    """A closed-form fit in standardised units.

    Attributes
    ----------
    weight : Tensor of shape (D, n_neurons)
        Kernel weights in the design's column order.
    intercept : Tensor of shape (n_neurons,)
    alpha : Tensor of shape (n_neurons,)
        The penalty of each neuron.
    moments : Moments
        Centred statistics of the stimuli the weights were fitted on; the intercept of any
        other weight (e.g. a kernel's approximation of ``weight``) follows from them.
    scores : Tensor of shape (n_alphas, n_neurons) or None
        The score of every penalty and neuron the choice was made on (pooled out-of-fold
        or validation correlation); None when there was no choice.
    """

    weight: torch.Tensor
    intercept: torch.Tensor
    alpha: torch.Tensor
    moments: Moments
    scores: torch.Tensor | None = None


def solve_closed_form(train: DesignStatistics, valid: DesignStatistics | None, alphas: torch.Tensor,
                      *, folds=None, per_neuron: bool = True, pooling: float = 0.0,
                      separable_shape: tuple[int, int, int] | None = None,
                      workers: int | None = None) -> ClosedFormSolution:
    """Ridge (or ALS for a separable kernel) with the penalty chosen from a grid.

    With ``folds``, the penalty is chosen by cross-validation over the rows of ``train``
    (:func:`cross_validated_path`) and the weights are refitted on all of ``train``.
    Otherwise, with validation stimuli ``valid``, each penalty's fit to ``train`` is scored
    on ``valid`` and the weights are refitted on both. With neither, ``alphas`` must hold
    one penalty. ALS (a separable kernel) uses :data:`ALS_PENALTY_SCALE` times the penalty
    chosen for the free kernel when cross-validating, and chooses among its own fits on
    ``valid`` otherwise.

    Parameters
    ----------
    train, valid : DesignStatistics
        Per-stimulus statistics of the training and the validation stimuli.
    alphas : Tensor of shape (n_alphas,)
        Penalty grid.
    folds : iterable of (train_index, test_index), default=None
        Cross-validation folds over the rows of ``train``.
    per_neuron : bool, default=True
        Choose a penalty per neuron; otherwise the one best on average over neurons.
    pooling : float in [0, 1], default=0.0
        With ``per_neuron``, each neuron's penalty maximises ``(1 - pooling)`` times its own
        score plus ``pooling`` times the mean score over neurons (partial pooling: a noisy
        neuron's curve leans on the population's); 0 uses each neuron's own curve, 1 gives
        every neuron the shared penalty.
    separable_shape : (n_freqs, n_lags, rank) or None, default=None
        Fit a rank-``rank`` separable kernel by ALS instead of a free one.
    workers : int or None, default=None
        Threads for the cross-validation folds' independent work; see
        :func:`cross_validated_path`.

    Returns
    -------
    ClosedFormSolution
    """
    train_m = moments(train)
    scores = None
    if folds is not None:
        refit_m, scores, decomposition = train_m, None, None
        if alphas.numel() > 1:  # the refit's decomposition alongside the folds'
            scores, (decomposition,) = cross_validated_path(train, folds, alphas, workers=workers,
                                                            also=(train_m.gram / train_m.count,))
        chosen = _choose(scores, alphas, per_neuron, train_m.cross.shape[1], pooling)
        weight = ridge_path(refit_m, chosen[None], decomposition)[0]
    else:
        refit_m = train_m if valid is None else moments(train.concat(valid))
        weight, _, chosen, scores = fit_ridge(train_m, valid, alphas, refit=refit_m)
        if (not per_neuron or pooling > 0) and valid is not None:
            chosen = _choose(scores, alphas, per_neuron, chosen.numel(), pooling)
            weight = ridge_path(refit_m, chosen[None])[0]
    _check_finite_solution(weight, alphas)
    if separable_shape is not None:
        F, L, rank = separable_shape
        N = weight.shape[1]
        if folds is None and valid is not None and alphas.numel() > 1:
            path = ridge_path(train_m, alphas)  # (A, D, N)
            # ALS's SVD would fail on a non-finite start (a singular design at alpha = 0):
            # such penalties are left out of the choice
            finite = torch.isfinite(path).flatten(1).all(dim=1)
            _check_finite_solution(path[finite], alphas)
            grid = alphas[finite]
            start = path[finite].transpose(1, 2).reshape(-1, F, L)
            fitted = fit_als(train_m, start, grid.repeat_interleave(N), F, L, rank)
            fitted = fitted.reshape(grid.numel(), N, F * L).transpose(1, 2)
            scores = torch.full((alphas.numel(), N), float("nan"), dtype=fitted.dtype, device=fitted.device)
            scores[finite] = validation_correlation(fitted, intercept(train_m, fitted), valid)
            chosen = _choose(scores, alphas, per_neuron, N, pooling)
            weight = ridge_path(refit_m, chosen[None])[0]
        if folds is not None and scores is not None:  # chosen on the free kernel's curve
            chosen = chosen * ALS_PENALTY_SCALE
        weight = fit_als(refit_m, weight.T.reshape(N, F, L), chosen, F, L, rank).reshape(N, F * L).T
        _check_finite_solution(weight, alphas)
    return ClosedFormSolution(weight, intercept(refit_m, weight), chosen, refit_m, scores)


def _choose(scores: torch.Tensor | None, alphas: torch.Tensor, per_neuron: bool,
            n_neurons: int, pooling: float = 0.0) -> torch.Tensor:
    """The penalty of each neuron from ``scores`` (n_alphas, n_neurons); one shared if not
    ``per_neuron`` (best mean score); the single penalty when there is no choice. With
    ``pooling`` > 0 each neuron's curve is blended with the mean over neurons first (see
    :func:`solve_closed_form`)."""
    if scores is None:
        if alphas.numel() != 1:
            raise ValueError("choosing among several penalties needs validation stimuli or folds")
        return alphas.expand(n_neurons).clone()
    if not per_neuron or pooling >= 1:
        mean = torch.nan_to_num(scores, nan=-torch.inf).mean(dim=1, keepdim=True)
        return alphas[_best_per_neuron(mean, alphas)].expand(n_neurons).clone()
    if pooling > 0:
        # NaN (a constant prediction) stays NaN in the neuron's own term and is left out of
        # the population's mean, so that one silent neuron does not move the others' choice
        scores = (1 - pooling) * scores + pooling * torch.nanmean(scores, dim=1, keepdim=True)
    return alphas[_best_per_neuron(scores, alphas)]


def _check_finite_solution(weight: torch.Tensor, alphas: torch.Tensor) -> None:
    """Raise a clear error when a closed-form solve produced non-finite (or no) weights."""
    if weight.numel() == 0 or not bool(torch.isfinite(weight).all()):
        raise ValueError(
            f"the closed-form solution with alpha={alphas.tolist()} is not finite: with "
            "alpha=0 least squares has no unique solution when the lagged design is singular "
            "(constant or duplicated bands, or fewer valid training frames than "
            "n_freqs * n_lags + 1 parameters). Use alpha > 0 (or the default grid)."
        )
