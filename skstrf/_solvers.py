"""The solvers, behind one registry: closed-form ridge and ALS on the design statistics
(penalty chosen by cross-validation or on validation stimuli), and gradient training.

Everything numeric here takes and returns torch tensors in standardised units (see
:class:`skstrf._design.DesignStatistics`), so it runs on whichever device holds the
statistics. Weights are ``(D, N)`` with ``D = C * F * L`` in the design's column order.
A penalty other than the identity (:class:`skstrf._penalty.QuadraticForm`) is handled by a
change of variables: the ridge algebra below runs on whitened statistics, and the weights
are mapped back.

Adding a solver: write its ``solve`` function here and register it in :data:`SOLVERS`; the
estimator's ``solver`` option, the plan, the out-of-core path, inspection and the command
line read the registry.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from scipy.linalg import lapack

from ._design import DesignStatistics
from ._penalty import ALS_PENALTY_SCALE, Penalty, QuadraticForm, project_separable
from ._selection import choose, choose_form
from ._threads import side_by_side, task_workers
from .metrics import ScoreSums

__all__ = ["Solver", "SOLVERS", "AUTO_SOLVERS", "resolve_solver", "CentredStatistics", "centred",
           "RidgePath", "ridge_path", "ridge_weights", "prediction_sums", "held_out_correlation",
           "cross_validated_scores", "fit_als", "ClosedFormSolution", "solve_ridge", "solve_als",
           "eigh_many"]


# ------------------------------------------------------------------------------ registry

@dataclass(frozen=True)
class Solver:
    """A way to fit the kernel, as the estimator's ``solver`` names it.

    Attributes
    ----------
    name : str
        The value of ``solver``.
    label : str
        How tables name it.
    kernels : frozenset of str or None
        The kernels it fits; None: any.
    solve : callable or None
        For a closed-form solver, ``solve(train, valid, alphas, **options)`` returning a
        :class:`ClosedFormSolution` from statistics alone (so it also fits data larger than
        memory); None for gradient training.
    refit : callable or None
        ``refit(stats, rows, penalty)`` giving the weights (D, N) of a fit on the rows
        ``rows`` of ``stats`` with a fixed ``penalty``, exactly and cheaply (the
        jackknife's refits); None when a refit needs the whole solver.
    """

    name: str
    label: str
    kernels: frozenset | None
    solve: Callable | None = None
    refit: Callable | None = None

    @property
    def closed_form(self) -> bool:
        return self.solve is not None


def resolve_solver(solver: str, kernel: str, linear: bool) -> str:
    """The solver a fit uses (``"auto"`` resolved); a ValueError when ``solver`` cannot
    fit the model.

    Parameters
    ----------
    solver : str
        The estimator's ``solver``: ``"auto"`` or a key of :data:`SOLVERS`.
    kernel : str
        The estimator's ``kernel``.
    linear : bool
        Whether the model is linear and fitted by least squares
        (:func:`skstrf._plan.is_linear`): only such a model has closed forms.
    """
    if not linear:
        if solver != "auto" and SOLVERS[solver].closed_form:
            return solver  # the caller's message names the model's options
        return "gradient"
    if solver == "auto":
        return AUTO_SOLVERS.get(kernel, "gradient")
    fits = SOLVERS[solver].kernels
    if fits is not None and kernel not in fits:
        raise ValueError(
            f"solver={solver!r} fits the {', '.join(repr(k) for k in sorted(fits))} kernel only, but "
            f"kernel={kernel!r}; use solver='gradient' or 'auto'."
        )
    return solver


# ------------------------------------------------------------------------------ algebra

@dataclass
class CentredStatistics:
    """Centred totals of a set of stimuli: ``gram`` (D, D), ``cross`` (D, N), the frame
    means of the design ``z_mean`` (D,) and of the PSTH ``p_mean`` (N,), ``count`` frames."""

    gram: torch.Tensor
    cross: torch.Tensor
    z_mean: torch.Tensor
    p_mean: torch.Tensor
    count: torch.Tensor

    def intercept(self, weight: torch.Tensor) -> torch.Tensor:
        """Standardised intercept that centres the predictions: ``p_mean - z_mean . w``."""
        return self.p_mean - self.z_mean @ weight


def centred(stats: DesignStatistics, index=None) -> CentredStatistics:
    """Centre the summed statistics of the rows ``index`` (all by default).

    Centring removes the intercept from the problem, so penalties never shrink it.
    """
    gram, cross, _, count = stats.summed(index)
    sums = gram[-1, :-1]  # the intercept column holds the design's column sums
    z_mean = sums / count
    p_mean = cross[-1] / count
    return CentredStatistics(gram[:-1, :-1] - torch.outer(sums, z_mean), cross[:-1] - torch.outer(sums, p_mean),
                             z_mean, p_mean, count)


class RidgePath:
    """The ridge solutions of one set of statistics for any penalties, from one reduction.

    Minimises ``||P - Z w||^2 / n + alpha ||w||^2`` per neuron, i.e. solves
    ``(G / n + alpha I) w = B / n`` (the identity penalty: other penalties reach it by a
    change of variables, :meth:`skstrf._penalty.QuadraticForm.whiten`), for a whole grid of
    penalties at the cost of one reduction of ``G / n``:

    - on the CPU in float64, a tridiagonal reduction ``G / n = Q T Q'`` (LAPACK's
      ``sytrd``: about half the work of an eigendecomposition), then for each penalty a
      tridiagonal solve of ``(T + alpha I) x = Q' B / n`` (``ptsv``, linear in ``D``) and
      ``w = Q x`` for all penalties at once;
    - elsewhere (a GPU), or when a tridiagonal solve fails (``alpha = 0`` on a singular
      design), an eigendecomposition ``G / n = V diag(e) V'``, ``w = V (V' B / n) / (e + alpha)``.

    With ``mixed=True`` (the folds of a wide design, :data:`MIXED_PRECISION_MIN` weights or
    more) the tridiagonal reduction is made in float32, about twice as fast as in float64
    (it is bound by memory traffic), and the float64 solutions are reached by iterative
    refinement: the residual ``B / n - (G / n + alpha I) w`` in float64, its correction
    from the float32 reduction, until the correction is below
    :data:`REFINEMENT_TOLERANCE` of the weights (each step shrinks the error by about
    ``eps32 * cond(G / n + alpha I)``). A penalty so small that this does not converge in
    :data:`MAX_REFINEMENTS` steps is solved from a float64 reduction, made then: the weights
    are float64's, only faster.

    Parameters
    ----------
    m : CentredStatistics
        Centred statistics of the fitting stimuli.
    mixed : bool, default=False
        Reduce in float32 and refine (on the CPU in float64 only; ignored elsewhere).
    """

    def __init__(self, m: CentredStatistics, mixed: bool = False) -> None:
        self.m = m
        matrix = m.gram / m.count
        self.tridiagonal = None
        self.eigen = None
        self.mixed = None
        self._q = None
        if matrix.device.type == "cpu" and matrix.dtype == torch.float64 and matrix.shape[0] > 1:
            if mixed:
                self.mixed = _tridiagonal(matrix.numpy().astype(np.float32))
            else:
                self.tridiagonal = _tridiagonal(matrix.numpy())
        else:
            self.eigen = torch.linalg.eigh(matrix)

    def basis(self) -> torch.Tensor:
        """The orthogonal basis the solutions are found in (D, D): the eigenvectors, or the
        ``Q`` of the float64 tridiagonal reduction (formed on the first call)."""
        if self.eigen is not None:
            return self.eigen[1]
        if self._q is None:
            size = self.tridiagonal[2].shape[0]
            self._q = torch.from_numpy(np.ascontiguousarray(_apply_q(self.tridiagonal, np.eye(size), transpose=False)))
        return self._q

    def coefficients(self, alphas: torch.Tensor) -> torch.Tensor | None:
        """The ridge weights in :meth:`basis`, ``basis' w``, for every penalty and neuron:
        (D, n_alphas, n_neurons). None when a tridiagonal solve is singular (``alpha = 0``
        on a singular design): the path then switches to an eigendecomposition, whose
        :meth:`basis` is another. Not for the float32 reduction (``mixed``): its basis is
        float32's."""
        if self.mixed is not None:
            raise ValueError("coefficients() needs a float64 reduction; this path was made with mixed=True")
        rhs = self.m.cross / self.m.count
        alphas = torch.as_tensor(alphas).to(rhs)
        if alphas.ndim == 1:
            alphas = alphas[:, None].expand(-1, rhs.shape[1])
        if self.eigen is not None:
            evals, evecs = self.eigen
            rotated = evecs.T @ rhs
            return rotated[:, None, :] / (evals.clamp(min=0.0)[:, None, None] + alphas[None])
        solved = _tridiagonal_solve(self.tridiagonal, (self.basis().T @ rhs).numpy()[:, None, :], alphas.numpy())
        if solved is None:
            self.eigen = torch.linalg.eigh(self.m.gram / self.m.count)
            self.tridiagonal = self._q = None
            return None
        return torch.from_numpy(solved)

    def weights(self, alphas) -> torch.Tensor:
        """Ridge weights for every penalty and neuron.

        Parameters
        ----------
        alphas : Tensor or ndarray of shape (n_alphas,) or (n_alphas, n_neurons)
            Penalties, shared by all neurons or one per neuron.

        Returns
        -------
        weights : Tensor of shape (n_alphas, D, n_neurons)
        """
        rhs = self.m.cross / self.m.count  # (D, N)
        alphas = torch.as_tensor(alphas).to(rhs)
        if alphas.ndim == 1:
            alphas = alphas[:, None].expand(-1, rhs.shape[1])
        if self.mixed is not None:
            matrix = (self.m.gram / self.m.count).numpy()
            weights, done = _refined_weights(self.mixed, matrix, rhs.numpy(), alphas.numpy())
            if done.all():
                return torch.from_numpy(weights)
            # a penalty too small for float32's reduction: float64's, made now
            if self.tridiagonal is None:
                self.tridiagonal = _tridiagonal(matrix)
            redo = np.flatnonzero(~done.all(axis=1))
            exact = _tridiagonal_weights(self.tridiagonal, rhs.numpy(), alphas.numpy()[redo])
            if exact is not None:
                weights[redo] = exact
                return torch.from_numpy(weights)
            self.eigen = torch.linalg.eigh(self.m.gram / self.m.count)  # a singular solve: exact fallback
        elif self.tridiagonal is not None:
            weights = _tridiagonal_weights(self.tridiagonal, rhs.numpy(), alphas.numpy())
            if weights is not None:
                return torch.from_numpy(weights)
            self.eigen = torch.linalg.eigh(self.m.gram / self.m.count)  # a singular solve: exact fallback
        evals, evecs = self.eigen
        rotated = evecs.T @ rhs
        shrunk = rotated[None] / (evals.clamp(min=0.0)[None, :, None] + alphas[:, None, :])
        return evecs[None] @ shrunk


#: Weights (columns of the design) from which the folds of cross-validation reduce their
#: Gram matrices in float32 and refine the solutions in float64 (:class:`RidgePath`): below
#: it the refinement's products cost about what the float32 reduction saves (measured on one
#: thread: break-even near 2,000 weights, 1.5x faster at 3,840).
MIXED_PRECISION_MIN = 2048

#: Refinement stops when the largest correction of a (penalty, neuron) column is below this
#: fraction of the column's largest weight; the error left is about that correction times
#: the step's contraction (``eps32 * cond``, below 1e-2 wherever refinement converges), so
#: about 1e-9 or less: far below what a cross-validation score can tell apart.
REFINEMENT_TOLERANCE = 1e-7

#: Refinement steps before a column is handed to a float64 reduction.
MAX_REFINEMENTS = 6


def _refined_weights(reduction: tuple, matrix: np.ndarray, rhs: np.ndarray,
                     alphas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ridge weights from a float32 tridiagonal reduction of ``matrix``, refined in float64.

    Parameters
    ----------
    reduction : tuple
        :func:`_tridiagonal` of ``matrix`` in float32.
    matrix : ndarray of shape (D, D)
        ``G / n`` in float64.
    rhs : ndarray of shape (D, N)
        ``B / n`` in float64.
    alphas : ndarray of shape (A, N)

    Returns
    -------
    weights : ndarray of shape (A, D, N)
        float64; exact to :data:`REFINEMENT_TOLERANCE` where ``done``.
    done : ndarray of bool of shape (A, N)
        Columns whose refinement converged.
    """
    n_alphas, n_neurons = alphas.shape
    size = rhs.shape[0]
    weights = _tridiagonal_weights(reduction, rhs, alphas)
    if weights is None:  # a singular float32 solve: every column to float64
        return np.zeros((n_alphas, size, n_neurons)), np.zeros((n_alphas, n_neurons), dtype=bool)
    weights = weights.astype(np.float64)
    done = np.zeros((n_alphas, n_neurons), dtype=bool)
    active = np.arange(n_alphas)  # penalties with a column still refined (large ones finish first)
    for _ in range(MAX_REFINEMENTS):
        w = weights[active]
        # residuals of the active penalties' columns: one (D, D) x (D, a * N) product
        flat = np.ascontiguousarray(w.transpose(1, 0, 2)).reshape(size, -1)
        product = (matrix @ flat).reshape(size, active.size, n_neurons).transpose(1, 0, 2)
        residual = rhs[None] - product - alphas[active, None, :] * w
        correction = _tridiagonal_weights(reduction, residual, alphas[active])
        if correction is None or not np.isfinite(correction).all():
            break
        w += correction
        weights[active] = w
        scale = np.abs(w).max(axis=1)
        done[active] = np.abs(correction).max(axis=1) <= REFINEMENT_TOLERANCE * np.where(scale > 0, scale, 1.0)
        active = np.flatnonzero(~done.all(axis=1))
        if active.size == 0:
            break
    return weights, done


def ridge_path(m: CentredStatistics, alphas, path: RidgePath | None = None) -> torch.Tensor:
    """Ridge weights (n_alphas, D, n_neurons) for every penalty and neuron
    (:meth:`RidgePath.weights`); ``path``: the :class:`RidgePath` of ``m`` when already made."""
    return (RidgePath(m) if path is None else path).weights(alphas)


def _tridiagonal(matrix: np.ndarray) -> tuple:
    """LAPACK's tridiagonal reduction of a symmetric matrix, in its dtype (float32 or
    float64): (reflectors, tau, diagonal, off-diagonal)."""
    size = matrix.shape[0]
    single = matrix.dtype == np.float32
    sytrd, sytrd_lwork = (lapack.ssytrd, lapack.ssytrd_lwork) if single else (lapack.dsytrd, lapack.dsytrd_lwork)
    lwork = int(sytrd_lwork(size, lower=1)[0])
    reflectors, diagonal, off, tau, info = sytrd(matrix, lower=1, lwork=max(lwork, 1))
    if info != 0:
        raise np.linalg.LinAlgError(f"tridiagonal reduction failed (LAPACK {'s' if single else 'd'}sytrd info={info})")
    return reflectors, tau, diagonal, off


def _apply_q(reduction: tuple, C: np.ndarray, transpose: bool) -> np.ndarray:
    """``Q C`` (or ``Q' C``) for the orthogonal ``Q`` of a tridiagonal reduction, from its
    reflectors (``sytrd``'s lower form: a QR factorisation of the trailing block), in the
    reduction's dtype."""
    reflectors, tau = reduction[:2]
    size = reflectors.shape[0]
    out = np.array(C, dtype=reflectors.dtype, order="F", copy=True)
    if size < 2:
        return out
    lwork = max(1, 64 * out.shape[1])
    ormqr = lapack.sormqr if reflectors.dtype == np.float32 else lapack.dormqr
    applied, _, info = ormqr("L", "T" if transpose else "N", np.asfortranarray(reflectors[1:, :-1]),
                             tau[: size - 1], out[1:], lwork=lwork)
    if info != 0:
        raise np.linalg.LinAlgError(f"applying the reduction failed (LAPACK ormqr info={info})")
    out[1:] = applied
    return out


def _tridiagonal_weights(reduction: tuple, rhs: np.ndarray, alphas: np.ndarray) -> np.ndarray | None:
    """Ridge weights (A, D, N) from a tridiagonal reduction, in its dtype; None when a solve
    is singular. ``rhs``: (D, N), shared by the penalties, or (A, D, N), one per penalty."""
    n_alphas, n_neurons = alphas.shape
    size = reduction[2].shape[0]
    if rhs.ndim == 2:
        projected = _apply_q(reduction, rhs, transpose=True)[:, None, :]  # (D, 1, N)
    else:  # (A, D, N) -> (D, A, N), all penalties in one application
        flat = np.ascontiguousarray(rhs.transpose(1, 0, 2)).reshape(size, -1)
        projected = _apply_q(reduction, flat, transpose=True).reshape(size, n_alphas, n_neurons)
    solved = _tridiagonal_solve(reduction, projected, alphas)
    if solved is None:
        return None
    weights = _apply_q(reduction, solved.reshape(size, -1), transpose=False)
    return np.ascontiguousarray(weights.reshape(-1, n_alphas, n_neurons).transpose(1, 0, 2))


def _tridiagonal_solve(reduction: tuple, projected: np.ndarray, alphas: np.ndarray) -> np.ndarray | None:
    """``(T + alpha I) x = Q' b`` for every penalty and neuron: x of shape (D, A, N) in the
    reduction's dtype (the ridge weights in the basis ``Q``); None when a solve is singular.
    ``projected``: ``Q' b`` of shape (D, 1, N) (shared) or (D, A, N)."""
    diagonal, off = reduction[2:]
    n_alphas, n_neurons = alphas.shape
    ptsv = lapack.sptsv if diagonal.dtype == np.float32 else lapack.dptsv
    solved = np.empty((diagonal.shape[0], n_alphas, n_neurons), dtype=diagonal.dtype)
    for a in range(n_alphas):
        columns_rhs = projected[:, 0 if projected.shape[1] == 1 else a]
        # neurons that share a penalty share one factorisation
        values, groups = np.unique(alphas[a], return_inverse=True)
        for k, value in enumerate(values):
            columns = np.flatnonzero(groups == k)
            *_, x, info = ptsv(diagonal + diagonal.dtype.type(value), off, columns_rhs[:, columns])
            if info != 0:
                return None
            solved[:, a, columns] = x
    return solved


def ridge_weights(stats: DesignStatistics, rows, penalty: Penalty) -> torch.Tensor:
    """Ridge weights (D, N) of a fit on the rows ``rows`` of ``stats`` with a fixed
    ``penalty`` (any quadratic form): the exact refit the jackknife needs."""
    form = penalty.form
    m = centred(form.whiten(stats), rows)
    alpha = torch.as_tensor(penalty.per_neuron(m.cross.shape[1]), dtype=m.gram.dtype, device=m.gram.device)
    return form.unwhiten(ridge_path(m, alpha[None])[0])


def prediction_sums(weights: torch.Tensor, bias: torch.Tensor, stats: DesignStatistics,
                    index=None) -> torch.Tensor:
    """Sums over the frames of rows ``index`` of the prediction ``q`` and the PSTH ``p``.

    Parameters
    ----------
    weights : Tensor of shape (..., D, N)
    bias : Tensor of shape (..., N)
    stats : DesignStatistics
    index : Tensor of int, default=None
        Rows of ``stats`` to sum over; all by default.

    Returns
    -------
    sums : Tensor of shape (6, ..., N)
        ``n, sum q, sum q^2, sum q p, sum p, sum p^2``: additive over sets of stimuli, the
        arguments of :meth:`skstrf.metrics.ScoreSums.from_sums`.
    """
    gram, cross, sq, n = stats.summed(index)
    theta = torch.cat([weights, bias[..., None, :]], dim=-2)  # (..., D+1, N)
    sum_q = torch.einsum("d,...dn->...n", gram[-1], theta)
    sum_qq = (theta * (gram @ theta)).sum(-2)
    sum_qp = (theta * cross).sum(-2)
    shape = sum_q.shape
    return torch.stack([n.expand(shape), sum_q, sum_qq, sum_qp, cross[-1].expand(shape), sq.expand(shape)])


def held_out_correlation(sums: torch.Tensor) -> np.ndarray:
    """The correlation of predictions from their :func:`prediction_sums` (the library's one
    score, :class:`skstrf.metrics.ScoreSums`); NaN where undefined."""
    return ScoreSums.from_sums(*sums.double().cpu().numpy()).correlation()[0]


def cross_validated_scores(stats: DesignStatistics, folds, alphas: torch.Tensor, *,
                           also: tuple[CentredStatistics, ...] = ()):
    """Ridge penalty path scored by cross-validation over rows, from statistics alone.

    For each fold, the statistics of its training rows (a sum over them) give the whole
    penalty path from one reduction (:class:`RidgePath`; in float32, refined to float64's
    solutions, from :data:`MIXED_PRECISION_MIN` weights); the held-out rows' statistics give
    the sums of their predictions without predicting. The score of a (penalty, neuron) pair
    is the correlation of the out-of-fold predictions pooled over all folds with the PSTH,
    as :func:`skstrf.metrics.cc` pools frames over stimuli.

    On the CPU the folds run side by side, one thread each (each fold's reduction and its
    held-out products: :func:`skstrf._threads.side_by_side`).

    Parameters
    ----------
    stats : DesignStatistics
        Per-stimulus (or per-block, or per-group of them) statistics.
    folds : iterable of (train_index, test_index)
        Rows of ``stats`` fitted and held out in each fold.
    alphas : Tensor of shape (n_alphas,)
    also : tuple of CentredStatistics, default=()
        Further statistics whose :class:`RidgePath` to make side by side with the folds'
        (e.g. the refit's): with K folds on 2 threads, an odd K leaves a thread idle that one
        more reduction fills.

    Returns
    -------
    scores : ndarray of shape (n_alphas, n_neurons)
        Pooled out-of-fold correlation.
    paths : list of RidgePath
        One for each entry of ``also``.
    fold_scores : ndarray of shape (n_folds, n_alphas, n_neurons)
        Each fold's held-out correlation (for the noise of the choice).
    """
    folds = [(torch.as_tensor(np.asarray(train)), torch.as_tensor(np.asarray(test))) for train, test in folds]

    def fold_sums(train: torch.Tensor, test: torch.Tensor) -> torch.Tensor:
        m = centred(stats, train)
        D, N = m.cross.shape
        path = RidgePath(m, mixed=D >= MIXED_PRECISION_MIN)
        # penalties a few at a time: the weights of a group stay within PATH_BLOCK_BYTES
        blocks = [alphas[start:start + max(1, PATH_BLOCK_BYTES // (8 * D * N))]
                  for start in range(0, alphas.numel(), max(1, PATH_BLOCK_BYTES // (8 * D * N)))]
        held_out = stats.summed(test)
        if path.mixed is None and (path.eigen is not None or alphas.numel() * N >= D):
            # in an orthogonal basis the weights are never formed: with more (penalty,
            # neuron) columns than weights, forming Q once costs less than applying it to
            # every column (and the eigenbasis comes for free)
            for _ in range(2):  # a singular tridiagonal solve switches the path to eigh once
                in_basis = _HeldOutSums(m, path.basis(), held_out)
                sums = []
                for block in blocks:
                    coefficients = path.coefficients(block)
                    if coefficients is None:
                        break
                    sums.append(in_basis.sums(coefficients))
                else:
                    return torch.cat(sums, dim=1)
        sums = []
        for block in blocks:
            weights = path.weights(block)
            sums.append(prediction_sums(weights, m.intercept(weights), stats, test))
        return torch.cat(sums, dim=1)

    results = side_by_side([functools.partial(fold_sums, *fold) for fold in folds]
                           + [functools.partial(RidgePath, m) for m in also],
                           _threaded(stats.gram))
    sums = torch.stack(results[:len(folds)])
    fold_scores = np.stack([held_out_correlation(fold) for fold in sums])
    return held_out_correlation(sums.sum(0)), results[len(folds):], fold_scores


#: Memory of the weights of the penalties a fold's held-out sums are computed for at once
#: (bytes): the transient memory of cross-validation does not grow with the grid.
PATH_BLOCK_BYTES = 8 * 2**20

#: Smallest matrix (rows) that :func:`eigh_many` decomposes in threads: below it the
#: decompositions take microseconds, less than handing them to another thread.
THREADED_EIGH_MIN = 128


def eigh_many(matrices: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``torch.linalg.eigh`` of each symmetric matrix; on the CPU side by side, one thread each.

    LAPACK's symmetric eigensolver synchronises its threads at every step of the
    tridiagonal reduction: independent decompositions, one thread each, never wait for
    each other (:mod:`skstrf._threads` documents the rule). Matrices smaller than
    :data:`THREADED_EIGH_MIN` are decomposed one after the other.

    Parameters
    ----------
    matrices : list of Tensor of shape (D, D)

    Returns
    -------
    list of (eigenvalues (D,), eigenvectors (D, D))
        In the order of ``matrices``.
    """
    workers = _threaded(matrices[0]) if matrices else 1
    return side_by_side([functools.partial(torch.linalg.eigh, a) for a in matrices], workers)


def _threaded(matrix: torch.Tensor) -> int:
    """Workers for tasks on matrices like ``matrix``: 1 off the CPU or below
    :data:`THREADED_EIGH_MIN` rows, else :func:`skstrf._threads.task_workers`."""
    if matrix.device.type != "cpu" or matrix.shape[-1] < THREADED_EIGH_MIN:
        return 1
    return task_workers()


class _HeldOutSums:
    """:func:`prediction_sums` over held-out statistics of ridge solutions given by their
    coefficients ``s`` in an orthogonal basis ``V`` (``w = V s``): the weights are never
    formed.

    With ``G`` the held-out Gram, ``w' G w = |L' V s|^2`` (``G = L L'``; ``V' G V`` when
    ``G`` is singular, fewer held-out frames than weights): ``L' V`` once, then one
    (D, D) by (D, n_penalties * n_neurons) product per block of penalties.

    Parameters
    ----------
    m : CentredStatistics
        Of the fitting rows.
    basis : Tensor of shape (D, D)
        Orthogonal.
    test : tuple of Tensor
        Summed held-out statistics (gram, cross, sq, count).
    """

    def __init__(self, m: CentredStatistics, basis: torch.Tensor, test: tuple[torch.Tensor, ...]) -> None:
        gram, cross, self.sq, self.n = test
        self.p_mean, self.p_sum = m.p_mean, cross[-1]
        self.rot_z = basis.T @ m.z_mean  # (D,)
        self.rot_col = basis.T @ gram[-1, :-1]  # held-out column sums, rotated (D,)
        self.rot_cross = basis.T @ cross[:-1]  # (D, N)
        factor, info = torch.linalg.cholesky_ex(gram[:-1, :-1])
        self.cholesky = int(info) == 0
        # L' V costs half of V' G V
        self.left = factor.T @ basis if self.cholesky else basis.T @ (gram[:-1, :-1] @ basis)

    def sums(self, s: torch.Tensor) -> torch.Tensor:
        """Sums (6, n_penalties, n_neurons) for coefficients ``s`` of shape (D, n_penalties, n_neurons)."""
        s = s.contiguous()
        flat = s.view(s.shape[0], -1)  # (D, A * N)
        bias = self.p_mean - (self.rot_z @ flat).view(s.shape[1:])  # (A, N)
        sum_qz = (self.rot_col @ flat).view_as(bias)  # sum over frames of z . w
        sum_q = sum_qz + self.n * bias
        product = self.left @ flat
        sum_ww = (product.square_() if self.cholesky else product.mul_(flat)).sum(0).view_as(bias)
        sum_qq = sum_ww + 2.0 * bias * sum_qz + self.n * bias**2
        sum_qp = (self.rot_cross[:, None, :] * s).sum(0) + self.p_sum * bias
        shape = sum_q.shape
        return torch.stack([self.n.expand(shape), sum_q, sum_qq, sum_qp, self.p_sum.expand(shape), self.sq.expand(shape)])


# ------------------------------------------------------------------------------ ALS

def _separable_half_step(m: CentredStatistics, form: QuadraticForm, fixed: torch.Tensor, alpha: torch.Tensor,
                         n_freqs: int, n_lags: int, solve_freq: bool, neuron: torch.Tensor) -> torch.Tensor:
    """Solve for one factor of ``W = sum_r freq_r time_r'`` with the other fixed.

    Parameters
    ----------
    form : QuadraticForm
        The penalty's shape (its restriction to the free factor is
        :meth:`~skstrf._penalty.QuadraticForm.separable_half_step`).
    fixed : Tensor of shape (B, rank, n_lags) when solving frequency profiles, else
        (B, rank, n_freqs); problem ``b`` fits neuron ``neuron[b]``.
    alpha : Tensor of shape (B,)
        Penalty of each problem.
    neuron : Tensor of int of shape (B,)

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
    Gp = project_separable(G, fixed, solve_freq)
    if solve_freq:  # unknowns (c, f, r); project lags
        Bp = torch.einsum("brl,cflb->bcfr", fixed, B[..., neuron])
        size = C * n_freqs
    else:  # unknowns (c, l, r); project frequencies
        Bp = torch.einsum("brf,cflb->bclr", fixed, B[..., neuron])
        size = C * n_lags
    k = size * rank
    Gp = Gp.reshape(batch, k, k) / m.count
    Bp = Bp.reshape(batch, k) / m.count
    penalty = alpha[:, None, None] * form.separable_half_step(fixed, solve_freq)
    jitter = 1e-10 * torch.eye(k, dtype=Gp.dtype, device=Gp.device)
    sol = torch.linalg.solve(Gp + penalty + jitter, Bp)
    return sol.reshape(batch, size, rank).transpose(1, 2)


def fit_als(m: CentredStatistics, init: torch.Tensor, alphas: torch.Tensor, n_freqs: int, n_lags: int,
            rank: int = 1, n_iter: int = 30, tol: float = 1e-6, chunk: int = 256,
            form: QuadraticForm | None = None, neurons=None) -> torch.Tensor:
    """Alternating least squares for rank-``rank`` separable weights, many problems at once.

    Each half-step is an exact penalised least-squares solve for one factor with the other
    fixed, so the penalised loss never increases.

    Parameters
    ----------
    m : CentredStatistics
        Centred statistics to fit (not whitened: separability is a property of the weights).
    init : Tensor of shape (B, n_freqs, n_lags)
        Starting weights, one per problem.
    alphas : Tensor of shape (B,)
        Penalty of each problem.
    form : QuadraticForm or None, default=None
        The penalty's shape; None: the identity.
    neurons : array-like of int of shape (B,) or None, default=None
        The neuron each problem fits; None: problem ``b`` fits neuron ``b % n_neurons``.

    Returns
    -------
    weights : Tensor of shape (B, n_freqs, n_lags)
    """
    form = QuadraticForm((1, n_freqs, n_lags)) if form is None else form
    n_neurons = m.cross.shape[1]
    neurons = (torch.arange(init.shape[0]) % n_neurons if neurons is None
               else torch.as_tensor(np.asarray(neurons), dtype=torch.long))
    neurons = neurons.to(m.cross.device)
    # chunks of problems bound the memory of the projected Gram matrices
    return torch.cat([
        _als_chunk(m, form, init[i:i + chunk], alphas[i:i + chunk], n_freqs, n_lags, rank, n_iter, tol,
                   neurons[i:i + chunk])
        for i in range(0, init.shape[0], chunk)
    ])


def _als_chunk(m: CentredStatistics, form: QuadraticForm, init: torch.Tensor, alphas: torch.Tensor,
               n_freqs: int, n_lags: int, rank: int, n_iter: int, tol: float, neurons: torch.Tensor) -> torch.Tensor:
    u, s, vh = torch.linalg.svd(init, full_matrices=False)
    time = vh[:, :rank, :] * s[:, :rank, None].sqrt()
    previous = None
    for _ in range(n_iter):
        freq = _separable_half_step(m, form, time, alphas, n_freqs, n_lags, True, neurons)
        time = _separable_half_step(m, form, freq, alphas, n_freqs, n_lags, False, neurons)
        weights = torch.einsum("brf,brl->bfl", freq, time)
        if previous is not None:
            change = (weights - previous).norm() / previous.norm().clamp(min=1e-30)
            if change < tol:
                break
        previous = weights
    return weights


# ------------------------------------------------------------------------------ solutions

@dataclass(frozen=True)
class ClosedFormSolution:
    """A closed-form fit in standardised units.

    Attributes
    ----------
    weight : Tensor of shape (D, n_neurons)
        Kernel weights in the design's column order.
    penalty : Penalty
        The penalty of each neuron (its form and the chosen multipliers).
    moments : CentredStatistics
        Centred statistics of the stimuli the weights were fitted on; the intercept of any
        other weight (e.g. a kernel's approximation of ``weight``) follows from them.
    scores : ndarray of shape (n_alphas, n_neurons) or None
        The score of every penalty and neuron the choice was made on (pooled out-of-fold
        or validation correlation); None when there was no choice.
    """

    weight: torch.Tensor
    penalty: Penalty
    moments: CentredStatistics
    scores: np.ndarray | None = None

    @property
    def intercept(self) -> torch.Tensor:
        return self.moments.intercept(self.weight)


def _penalty_scores(train: DesignStatistics, valid: DesignStatistics | None, alphas: torch.Tensor,
                    folds, refit: CentredStatistics):
    """The held-out score of every penalty of the free kernel's ridge path, each fold's, and
    the refit's :class:`RidgePath` when made alongside: (scores, fold scores or None, path
    or None)."""
    if folds is not None:
        scores, (path,), fold_scores = cross_validated_scores(train, folds, alphas, also=(refit,))
        return scores, fold_scores, path
    m = centred(train)
    weights = ridge_path(m, alphas)
    return held_out_correlation(prediction_sums(weights, m.intercept(weights), valid)), None, None


def _check_finite_solution(weight: torch.Tensor, alphas) -> None:
    """Raise a clear error when a closed-form solve produced non-finite (or no) weights."""
    if weight.numel() == 0 or not bool(torch.isfinite(weight).all()):
        raise ValueError(
            f"the closed-form solution with alpha={np.asarray(alphas).tolist()} is not finite: with "
            "alpha=0 least squares has no unique solution when the lagged design is singular "
            "(constant or duplicated bands, or fewer valid training frames than "
            "n_freqs * n_lags + 1 parameters). Use alpha > 0 (or the default grid)."
        )


def solve_ridge(train: DesignStatistics, valid: DesignStatistics | None, alphas: torch.Tensor, *,
                form, folds=None, per_neuron: bool = True, pooling: float = 0.0, plain: int | None = None,
                **_) -> ClosedFormSolution:
    """Ridge with the penalty (and its form) chosen from a grid, then refitted.

    With ``folds``, the penalty is chosen by cross-validation over the rows of ``train``
    (:func:`cross_validated_scores`) and the weights are refitted on all of ``train``.
    Otherwise, with validation stimuli ``valid``, each penalty's fit to ``train`` is scored
    on ``valid`` and the weights are refitted on both. With neither, there must be one
    penalty and one form. Each candidate form is a change of variables of the same ridge
    (one reduction per form and fold); the choice is
    :func:`skstrf._selection.choose_form`'s (or :func:`~skstrf._selection.choose`'s for one
    form).

    Parameters
    ----------
    train, valid : DesignStatistics
        Statistics of the training (per row: stimulus, block or group) and the validation
        stimuli.
    alphas : Tensor of shape (n_alphas,)
        The penalty grid.
    form : QuadraticForm or tuple of QuadraticForm
        The penalty's shape, or the candidate shapes; each solve runs on statistics whitened
        by its form.
    folds : iterable of (train_index, test_index), default=None
        Cross-validation folds over the rows of ``train``.
    per_neuron, pooling :
        See :func:`skstrf._selection.choose`.
    plain : int or None, default=None
        With several forms, the plain one the choice falls back to
        (:func:`skstrf._selection.choose_form`).

    Returns
    -------
    ClosedFormSolution
        ``scores`` of shape (n_alphas, n_neurons), or (n_forms, n_alphas, n_neurons) with
        several forms.
    """
    forms = tuple(form) if isinstance(form, (tuple, list)) else (form,)
    folds = None if folds is None else list(folds)
    grid = alphas.cpu().numpy()
    choosing = alphas.numel() > 1 or len(forms) > 1
    refits, paths, scores, fold_scores = [], [], [], []
    for candidate in forms:
        white, white_valid = candidate.whiten(train), candidate.whiten(valid)
        refit = centred(white if folds is not None or valid is None else white.concat(white_valid))
        refits.append(refit)
        score, fold_score, path = (_penalty_scores(white, white_valid, alphas, folds, refit) if choosing
                                   else (None, None, None))
        scores.append(score)
        fold_scores.append(fold_score)
        paths.append(path)
    n_neurons = refits[0].cross.shape[1]
    if len(forms) == 1:
        index = np.zeros(n_neurons, dtype=np.int64)
        chosen = choose(scores[0], grid, n_neurons, per_neuron=per_neuron, pooling=pooling)
        kept_scores = scores[0]
    else:
        kept_scores = np.stack(scores)
        folds_stacked = None if fold_scores[0] is None else np.stack(fold_scores, axis=1)
        index, chosen = choose_form(kept_scores, folds_stacked, grid, plain, per_neuron=per_neuron, pooling=pooling)
    weight = torch.zeros(refits[0].gram.shape[0], n_neurons, dtype=refits[0].gram.dtype, device=refits[0].gram.device)
    for k in np.unique(index):
        neurons = np.flatnonzero(index == k)
        refit = refits[k]
        alpha = torch.as_tensor(chosen, dtype=refit.gram.dtype, device=refit.gram.device)[None]
        solved = ridge_path(refit, alpha, paths[k])[0]
        weight[:, neurons] = forms[k].unwhiten(solved)[:, neurons]
    _check_finite_solution(weight, grid)
    if not all(f.is_identity for f in forms):  # the kernel's weights' statistics' means
        moments = centred(train if folds is not None or valid is None else train.concat(valid))
    else:
        moments = refits[0]
    penalty = Penalty(forms[0], chosen) if len(forms) == 1 else Penalty(forms, chosen, index)
    return ClosedFormSolution(weight, penalty, moments, kept_scores)


def solve_als(train: DesignStatistics, valid: DesignStatistics | None, alphas: torch.Tensor, *,
              form, shape: tuple[int, int, int], folds=None, per_neuron: bool = True,
              pooling: float = 0.0, plain: int | None = None, **_) -> ClosedFormSolution:
    """A rank-``rank`` separable kernel by ALS, started from the ridge solution.

    With ``folds`` (or several candidate forms), the penalty and its form are those
    cross-validation chose for the free kernel (times
    :data:`skstrf._penalty.ALS_PENALTY_SCALE`); with validation stimuli and one form, ALS's
    own fits on the grid are scored on them. See :func:`solve_ridge` for the other
    parameters.

    Parameters
    ----------
    shape : (n_freqs, n_lags, rank)
        The separable kernel's shape.
    """
    F, L, rank = shape
    free = solve_ridge(train, valid, alphas, form=form, folds=folds, per_neuron=per_neuron, pooling=pooling,
                       plain=plain)
    penalty, scores, refit = free.penalty, free.scores, free.moments
    chosen, weight = penalty.per_neuron(free.weight.shape[1]), free.weight
    N = weight.shape[1]
    single = len(penalty.forms) == 1
    if single and folds is None and valid is not None and alphas.numel() > 1:
        form = penalty.forms[0]
        m = centred(train)
        white = centred(form.whiten(train))
        path = form.unwhiten(ridge_path(white, alphas))  # (A, D, N)
        # ALS's SVD would fail on a non-finite start (a singular design at alpha = 0):
        # such penalties are left out of the choice
        finite = torch.isfinite(path).flatten(1).all(dim=1)
        _check_finite_solution(path[finite], alphas.cpu().numpy())
        grid = alphas[finite]
        start = path[finite].transpose(1, 2).reshape(-1, F, L)
        fitted = fit_als(m, start, grid.repeat_interleave(N), F, L, rank, form=form)
        fitted = fitted.reshape(grid.numel(), N, F * L).transpose(1, 2)
        scores = np.full((alphas.numel(), N), np.nan)
        scores[finite.cpu().numpy()] = held_out_correlation(prediction_sums(fitted, m.intercept(fitted), valid))
        chosen = choose(scores, alphas.cpu().numpy(), N, per_neuron=per_neuron, pooling=pooling)
        white_refit = centred(form.whiten(train.concat(valid)))
        weight = form.unwhiten(ridge_path(white_refit, torch.as_tensor(chosen).to(white_refit.gram)[None])[0])
        penalty = Penalty(form, chosen)
    elif scores is not None and (folds is not None or not single):  # chosen on the free kernel's curve
        chosen = chosen * ALS_PENALTY_SCALE
        penalty = penalty.with_alpha(chosen)
    alpha = torch.as_tensor(chosen).to(refit.gram)
    start = weight.T.reshape(N, F, L)
    separable = torch.empty_like(start)
    for group_form, neurons in penalty.groups(N):
        rows = torch.as_tensor(neurons, device=start.device)
        separable[rows] = fit_als(refit, start[rows], alpha[rows], F, L, rank, form=group_form, neurons=neurons)
    weight = separable.reshape(N, F * L).T
    _check_finite_solution(weight, alphas.cpu().numpy())
    return ClosedFormSolution(weight, penalty, refit, scores)


#: Every solver, by the name the estimator's ``solver`` option gives it.
SOLVERS: dict[str, Solver] = {
    "ridge": Solver("ridge", "ridge", frozenset({"vanilla"}), solve=solve_ridge, refit=ridge_weights),
    "als": Solver("als", "ALS", frozenset({"separable"}), solve=solve_als),
    "gradient": Solver("gradient", "gradient", None),
}

#: The solver ``solver="auto"`` picks for a linear model of each kernel (gradient otherwise).
AUTO_SOLVERS = {"vanilla": "ridge", "separable": "als"}
