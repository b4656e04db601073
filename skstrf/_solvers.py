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

import contextlib
import functools
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from scipy.linalg import lapack

from ._design import DesignStatistics
from ._penalty import ALS_PENALTY_SCALE, Penalty, QuadraticForm
from ._selection import blended_scores, choose, choose_form, near_ties, tied_penalties
from ._threads import blas_threads, side_by_side, task_workers
from .kernels import separable_factors
from .metrics import ScoreSums

__all__ = ["Solver", "SOLVERS", "AUTO_SOLVERS", "resolve_solver", "CentredStatistics", "centred",
           "RidgePath", "ridge_path", "ridge_weights", "prediction_sums", "held_out_correlation",
           "cross_validated_scores", "fit_als", "ClosedFormSolution", "solve_ridge", "solve_als",
           "eigh_many", "fit_lbfgs", "AUTO_RANKS", "RANK_RULES", "penalty_refit", "als_factors"]


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
        memory); None otherwise.
    refit : callable or None
        ``refit(stats, rows, penalty)`` giving the weights (D, N) of a fit on the rows
        ``rows`` of ``stats`` with a fixed ``penalty``, exactly and cheaply (the
        jackknife's refits); None when a refit needs the whole solver.
    polish : callable or None
        For a solver that fits a linear model's parameters iteratively on the statistics of
        all training stimuli (no stimulus held out): ``polish(module, stats, penalty)``
        minimises the penalised training loss from the module's start (the closed-form
        ridge start, or a random one) in place. None for closed forms and gradient training.
    """

    name: str
    label: str
    kernels: frozenset | None
    solve: Callable | None = None
    refit: Callable | None = None
    polish: Callable | None = None

    @property
    def closed_form(self) -> bool:
        return self.solve is not None

    @property
    def from_statistics(self) -> bool:
        """Whether the solver fits from the training stimuli's statistics alone (a closed
        form, or an iterative fit on them), holding no stimulus out; else gradient training."""
        return self.solve is not None or self.polish is not None


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
        if solver != "auto" and SOLVERS[solver].from_statistics:
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

    For a wide design (:data:`MIXED_PRECISION_MIN` weights or more: the folds of
    cross-validation and the refit) the tridiagonal reduction is made in float32, about twice as fast as in float64
    (it is bound by memory traffic), and the float64 solutions are reached by iterative
    refinement: the residual ``B / n - (G / n + alpha I) w`` in float64, its correction
    from the float32 reduction, until the correction is below
    :data:`REFINEMENT_TOLERANCE` of the weights (each step shrinks the error by about
    ``eps32 * cond(G / n + alpha I)``). A penalty so small that this does not converge in
    :data:`MAX_REFINEMENTS` steps is solved from a float64 reduction, made then: the weights
    are float64's, only faster.

    For scoring alone (the folds of cross-validation, :func:`cross_validated_scores`),
    ``single=True`` makes the tridiagonal reduction in float32 and keeps it: :meth:`rotate`
    and :meth:`coefficients` then work in float32 (about 1.6 times faster on a fold of 510
    weights; held-out correlations within 3e-7 of float64's on NS1's size, 1.4e-4 at the
    smallest penalty of the auditory nerve's ill-conditioned design), and :meth:`weights`
    returns float64 tensors of float32-accurate values. A choice made from such scores is
    checked in float64 (:func:`_checked_ties`).

    Parameters
    ----------
    m : CentredStatistics
        Centred statistics of the fitting stimuli.
    mixed : bool or None, default=None
        Reduce in float32 and refine (on the CPU in float64 only; ignored elsewhere); None:
        from :data:`MIXED_PRECISION_MIN` weights, unless ``single``.
    single : bool, default=False
        Reduce in float32 and do not refine (on the CPU in float64 only; ignored elsewhere
        and where ``mixed=True`` is given): solutions accurate to float32, for scores.
    """

    def __init__(self, m: CentredStatistics, mixed: bool | None = None, single: bool = False) -> None:
        self.m = m
        matrix = m.gram / m.count
        if mixed is None:
            mixed = matrix.shape[0] >= MIXED_PRECISION_MIN and not single
        self.tridiagonal = None
        self.eigen = None
        self.mixed = None
        if matrix.device.type == "cpu" and matrix.dtype == torch.float64 and matrix.shape[0] > 1:
            if mixed:
                self.mixed = _tridiagonal(matrix.numpy().astype(np.float32))
            else:
                self.tridiagonal = _tridiagonal(matrix.numpy().astype(np.float32) if single else matrix.numpy())
        else:
            self.eigen = torch.linalg.eigh(matrix)

    def basis(self) -> torch.Tensor:
        """The orthogonal basis the solutions are found in (D, D): the eigenvectors, or the
        ``Q`` of the float64 tridiagonal reduction, formed (the fit never forms it: it
        works through :meth:`rotate`)."""
        if self.eigen is not None:
            return self.eigen[1]
        size = self.tridiagonal[2].shape[0]
        return torch.from_numpy(np.ascontiguousarray(_apply_q(self.tridiagonal, np.eye(size), transpose=False)))

    def rotate(self, C: torch.Tensor) -> torch.Tensor:
        """``basis' C`` for C of shape (D, k), without forming the basis of a tridiagonal
        reduction (its reflectors applied in one LAPACK call: about the work of one
        (D, D) by (D, k) product, against two for forming ``Q`` and multiplying by it)."""
        if self.eigen is not None:
            return self.eigen[1].T @ C
        if self.mixed is not None:
            raise ValueError("rotate() needs a reduction without refinement; this path was made with mixed=True")
        return torch.from_numpy(_apply_q(self.tridiagonal, C.numpy(), transpose=True))

    def coefficients(self, alphas: torch.Tensor) -> torch.Tensor | None:
        """The ridge weights in :meth:`basis`, ``basis' w``, for every penalty and neuron:
        (D, n_alphas, n_neurons). None when a tridiagonal solve is singular (``alpha = 0``
        on a singular design): the path then switches to an eigendecomposition, whose
        :meth:`basis` is another. Not for the float32 reduction (``mixed``): its basis is
        float32's."""
        if self.mixed is not None:
            raise ValueError("coefficients() needs a reduction without refinement; this path was made with mixed=True")
        rhs = self.m.cross / self.m.count
        alphas = torch.as_tensor(alphas).to(rhs)
        if alphas.ndim == 1:
            alphas = alphas[:, None].expand(-1, rhs.shape[1])
        if self.eigen is not None:
            evals, evecs = self.eigen
            rotated = evecs.T @ rhs
            return rotated[:, None, :] / (evals.clamp(min=0.0)[:, None, None] + alphas[None])
        solved = _tridiagonal_solve(self.tridiagonal, self.rotate(rhs).numpy()[:, None, :], alphas.numpy())
        if solved is None:
            self.eigen = torch.linalg.eigh(self.m.gram / self.m.count)
            self.tridiagonal = None
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
                return torch.from_numpy(weights).to(rhs.dtype)  # float32's values (single) in float64
            self.eigen = torch.linalg.eigh(self.m.gram / self.m.count)  # a singular solve: exact fallback
        evals, evecs = self.eigen
        rotated = evecs.T @ rhs
        shrunk = rotated[None] / (evals.clamp(min=0.0)[None, :, None] + alphas[:, None, :])
        return evecs[None] @ shrunk


#: Weights (columns of the design) from which :class:`RidgePath` (the folds of
#: cross-validation and the refit) reduces its Gram matrix in float32 and refines the
#: solutions in float64: below
#: it the refinement's products cost about what the float32 reduction saves (measured on one
#: thread: break-even near 2,000 weights, 1.5x faster at 3,840).
MIXED_PRECISION_MIN = 2048

#: Refinement stops when the error left in a (penalty, neuron) column is below this fraction
#: of the column's largest weight: far below what a cross-validation score can tell apart.
#: The error is estimated from the last correction ``c`` and the contraction ``rho`` between
#: the last two corrections (each step multiplies the error by about
#: ``rho ~ eps32 * cond(G / n + alpha I)``): ``|c| rho / (1 - rho)``; after the first step,
#: whose contraction is not known yet, ``|c|`` itself.
REFINEMENT_TOLERANCE = 1e-7

#: Refinement steps before a column is handed to a float64 reduction.
MAX_REFINEMENTS = 12

#: A column whose corrections shrink by less than this factor per step is handed to a
#: float64 reduction at once: its refinement would take more steps than the reduction costs
#: (a step costs about a tenth of a float32 reduction, a float64 reduction about two).
MAX_CONTRACTION = 0.5


def _refined_weights(reduction: tuple, matrix: np.ndarray, rhs: np.ndarray,
                     alphas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ridge weights from a float32 tridiagonal reduction of ``matrix``, refined in float64.

    Each step adds the correction of the float64 residual ``B / n - (G / n + alpha I) w``
    solved with the float32 reduction; a column stops when its estimated error is below
    :data:`REFINEMENT_TOLERANCE`, and is given up (left not ``done``) when its corrections
    shrink by less than :data:`MAX_CONTRACTION` per step or after
    :data:`MAX_REFINEMENTS` steps.

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
    given_up = np.zeros((n_alphas, n_neurons), dtype=bool)
    previous = np.full((n_alphas, n_neurons), np.inf)  # relative size of the last correction
    active = np.arange(n_alphas)  # penalties with a column still refined (large ones finish first)
    for _ in range(MAX_REFINEMENTS):
        w = weights[active]
        # residuals of the active penalties' columns: one (D, D) x (D, a * N) product
        flat = np.ascontiguousarray(w.transpose(1, 0, 2)).reshape(size, -1)
        with _blas_for(size):
            product = (matrix @ flat).reshape(size, active.size, n_neurons).transpose(1, 0, 2)
        residual = rhs[None] - product - alphas[active, None, :] * w
        correction = _tridiagonal_weights(reduction, residual, alphas[active])
        if correction is None or not np.isfinite(correction).all():
            break
        w += correction
        weights[active] = w
        scale = np.abs(w).max(axis=1)
        size_now = np.abs(correction).max(axis=1) / np.where(scale > 0, scale, 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            rho = np.where(previous[active] > 0, size_now / previous[active], 0.0)
        error = np.where(rho < 1.0, size_now * rho / np.maximum(1.0 - rho, 1e-300), np.inf)
        error = np.where(np.isinf(previous[active]), size_now, error)  # first step: rho unknown
        done[active] |= (error <= REFINEMENT_TOLERANCE) | (size_now == 0)
        given_up[active] |= ~done[active] & np.isfinite(previous[active]) & (rho > MAX_CONTRACTION)
        previous[active] = size_now
        active = np.flatnonzero((~done & ~given_up).any(axis=1))
        if active.size == 0:
            break
    return weights, done


def ridge_path(m: CentredStatistics, alphas, path: RidgePath | None = None) -> torch.Tensor:
    """Ridge weights (n_alphas, D, n_neurons) for every penalty and neuron
    (:meth:`RidgePath.weights`); ``path``: the :class:`RidgePath` of ``m`` when already made."""
    return (RidgePath(m) if path is None else path).weights(alphas)


def _blas_for(size: int):
    """A context in which numpy's and scipy's BLAS run on torch's threads for the work on a
    matrix of ``size`` rows from :data:`ONE_BY_ONE_MIN` (where a second thread pays: a
    tridiagonal reduction of 3840 rows 2.2 s on 2 threads, 4.5 s on one), else as they are
    (one thread in a fit: :mod:`skstrf._threads`). Inside side-by-side tasks torch has one
    thread, and so has the BLAS."""
    return blas_threads() if size >= ONE_BY_ONE_MIN else contextlib.nullcontext()


def _tridiagonal(matrix: np.ndarray) -> tuple:
    """LAPACK's tridiagonal reduction of a symmetric matrix, in its dtype (float32 or
    float64): (reflectors, tau, diagonal, off-diagonal). ``reflectors``: the Householder
    vectors of ``sytrd``'s lower form, the trailing (D - 1, D - 1) block that
    :func:`_apply_q` hands to ``ormqr`` (copied once, Fortran-ordered, rather than at every
    application)."""
    size = matrix.shape[0]
    single = matrix.dtype == np.float32
    sytrd, sytrd_lwork = (lapack.ssytrd, lapack.ssytrd_lwork) if single else (lapack.dsytrd, lapack.dsytrd_lwork)
    lwork = int(sytrd_lwork(size, lower=1)[0])
    with _blas_for(size):
        reflectors, diagonal, off, tau, info = sytrd(matrix, lower=1, lwork=max(lwork, 1))
    if info != 0:
        raise np.linalg.LinAlgError(f"tridiagonal reduction failed (LAPACK {'s' if single else 'd'}sytrd info={info})")
    return np.asfortranarray(reflectors[1:, :-1]), tau, diagonal, off


def _apply_q(reduction: tuple, C: np.ndarray, transpose: bool) -> np.ndarray:
    """``Q C`` (or ``Q' C``) for the orthogonal ``Q`` of a tridiagonal reduction, from its
    reflectors (``sytrd``'s lower form: a QR factorisation of the trailing block), in the
    reduction's dtype."""
    reflectors, tau, diagonal = reduction[:3]
    size = diagonal.shape[0]
    out = np.array(C, dtype=reflectors.dtype, order="F", copy=True)
    if size < 2:
        return out
    # LAPACK's blocked application (block reflectors of 64, their T factors in the workspace)
    # from 16 columns; below, forming the T factors costs more than the unblocked one (one
    # NS1-size float32 reduction on one thread: 39 columns 0.83 -> 0.48 ms, 4 columns 0.15 ms
    # unblocked against 0.36 ms blocked)
    lwork = 64 * out.shape[1] + 65 * 64 if out.shape[1] >= 16 else max(1, 64 * out.shape[1])
    ormqr = lapack.sormqr if reflectors.dtype == np.float32 else lapack.dormqr
    with _blas_for(size):
        applied, _, info = ormqr("L", "T" if transpose else "N", reflectors, tau[: size - 1], out[1:], lwork=lwork)
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
        if (alphas[a] == alphas[a, 0]).all():  # one penalty for every neuron: one solve, no copies
            *_, x, info = ptsv(diagonal + diagonal.dtype.type(alphas[a, 0]), off, columns_rhs)
            if info != 0:
                return None
            solved[:, a] = x
            continue
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


def penalty_refit(stats: DesignStatistics, penalty: Penalty) -> tuple[torch.Tensor, CentredStatistics]:
    """Ridge weights (D, N) of a fit on every row of ``stats`` with a fixed ``penalty`` (a
    form per neuron, or one for all), and the centred statistics they were fitted on."""
    m = centred(stats)
    N = m.cross.shape[1]
    alpha = torch.as_tensor(penalty.per_neuron(N), dtype=m.gram.dtype, device=m.gram.device)
    weight = torch.empty_like(m.cross)
    for form, neurons in penalty.groups(N):
        columns = torch.as_tensor(neurons, device=m.gram.device)
        weight[:, columns] = _ridge_start(m, form, alpha[None, columns], np.asarray(neurons))[0]
    return weight, m


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
                           also: tuple[CentredStatistics, ...] = (), single: bool = False,
                           reductions: list | None = None):
    """Ridge penalty path scored by cross-validation over rows, from statistics alone.

    For each fold, the statistics of its training rows (a sum over them) give the whole
    penalty path from one reduction (:class:`RidgePath`; in float32, refined to float64's
    solutions, from :data:`MIXED_PRECISION_MIN` weights); the held-out rows' statistics give
    the sums of their predictions without predicting. The score of a (penalty, neuron) pair
    is the correlation of the out-of-fold predictions pooled over all folds with the PSTH,
    as :func:`skstrf.metrics.cc` pools frames over stimuli.

    On the CPU the folds run side by side, one thread each (their held-out products and the
    refinement of float32 solutions: :func:`skstrf._threads.side_by_side`). Their
    reductions are made first, one after the other on all the fit's threads, when the fit
    has several (:func:`reduce_one_by_one`).

    Parameters
    ----------
    stats : DesignStatistics
        Per-stimulus (or per-block, or per-group of them) statistics.
    folds : iterable of (train_index, test_index)
        Rows of ``stats`` fitted and held out in each fold.
    alphas : Tensor of shape (n_alphas,)
    also : tuple of CentredStatistics, default=()
        Further statistics whose :class:`RidgePath` to make with the folds' (e.g. the
        refit's): with K folds on 2 threads, an odd K leaves a thread idle that one more
        reduction fills. Their paths are float64's whatever ``single``.
    single : bool, default=False
        The folds' reductions and products in float32 (``RidgePath(single=True)``), about
        1.5 times faster: scores accurate to float32's conditioning (:class:`RidgePath`),
        for a choice that :func:`_checked_ties` checks in float64.
    reductions : list or None, default=None
        With ``single``, a list that receives for each fold, in the order of ``folds``, its
        float32 tridiagonal reduction (None for a fold that switched to an
        eigendecomposition) and its centred statistics (None above
        :data:`KEPT_STATISTICS_MAX` weights: remade when needed), for a float64 check of
        some neurons (:func:`_checked_ties`).

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

    kept = [(None, None)] * len(folds)  # for reductions

    def fold_sums(train: torch.Tensor, test: torch.Tensor, path: RidgePath | None = None,
                  index: int = 0) -> torch.Tensor:
        path = RidgePath(centred(stats, train), single=single) if path is None else path
        m = path.m
        D, N = m.cross.shape
        # penalties a few at a time: the weights of a group stay within PATH_BLOCK_BYTES
        blocks = [alphas[start:start + max(1, PATH_BLOCK_BYTES // (8 * D * N))]
                  for start in range(0, alphas.numel(), max(1, PATH_BLOCK_BYTES // (8 * D * N)))]
        held_out = stats.summed(test)
        if path.mixed is None and (path.eigen is not None or alphas.numel() * N >= D):
            # in an orthogonal basis the weights are never formed: with more (penalty,
            # neuron) columns than weights, rotating the held-out statistics once costs
            # less than applying the basis to every column
            for _ in range(2):  # a singular tridiagonal solve switches the path to eigh once
                in_basis = _HeldOutSums(m, path, held_out)
                sums = []
                for block in blocks:
                    coefficients = path.coefficients(block)
                    if coefficients is None:
                        break
                    sums.append(in_basis.sums(coefficients))
                else:
                    kept[index] = _kept(path, single)
                    return torch.cat(sums, dim=1)
        sums = []
        for block in blocks:
            weights = path.weights(block)
            sums.append(prediction_sums(weights, m.intercept(weights), stats, test))
        kept[index] = _kept(path, single)
        return torch.cat(sums, dim=1)

    workers = _threaded(stats.gram)
    tasks = [(train, test) for train, test in folds] + [(m, None) for m in also]
    if not reduce_one_by_one(stats.gram, workers):
        results = side_by_side([functools.partial(fold_sums, *task, index=k) if task[1] is not None
                                else functools.partial(RidgePath, task[0]) for k, task in enumerate(tasks)], workers)
    else:
        # a group of `workers` tasks at a time, so that no more statistics are held at once
        # than side by side: its reductions one by one on all threads, then the rest side by side
        results = []
        for start in range(0, len(tasks), workers):
            group = tasks[start:start + workers]
            paths = [RidgePath(centred(stats, first), single=single) if test is not None else RidgePath(first)
                     for first, test in group]
            results += side_by_side([functools.partial(fold_sums, first, test, path, start + k) if test is not None
                                     else functools.partial(lambda p: p, path)
                                     for k, ((first, test), path) in enumerate(zip(group, paths))], workers)
    if reductions is not None:
        reductions.extend(kept)
    sums = torch.stack(results[:len(folds)])
    fold_scores = np.stack([held_out_correlation(fold) for fold in sums])
    return held_out_correlation(sums.sum(0)), results[len(folds):], fold_scores


#: Weights up to which :func:`cross_validated_scores` keeps each fold's centred statistics
#: for the float64 check of float32 scores (5 folds of 1,024 weights: 40 MB); above, the
#: check sums them again (about a millisecond a fold at 510 weights).
KEPT_STATISTICS_MAX = 1024


def _kept(path: RidgePath, single: bool) -> tuple:
    """What a fold of float32 scores keeps for their check: (its float32 reduction or None,
    its centred statistics or None)."""
    if not single:
        return None, None
    reduction = path.tridiagonal if path.eigen is None and path.mixed is None else None
    return reduction, (path.m if path.m.gram.shape[0] <= KEPT_STATISTICS_MAX else None)


def reduce_one_by_one(matrix: torch.Tensor, workers: int) -> bool:
    """Whether :func:`cross_validated_scores` makes the reductions of matrices like
    ``matrix`` one after the other on all the fit's threads rather than side by side, one
    thread each: on the CPU, from :data:`ONE_BY_ONE_MIN` rows, with several task
    ``workers`` and several threads for the fit (which
    :func:`skstrf._threads.capped_threads` leaves at one on a busy machine).

    A large tridiagonal reduction is bound by memory traffic (each step reads the trailing
    matrix): two side by side share the memory bandwidth and take about as long as one
    after the other on one thread each, while one reduction on two threads takes half as
    long or less (2 cores, quiet machine: two float32 reductions of 3840 x 3840 side by
    side 4.5 s, one after the other on 2 threads 2.2 s). On a busy machine a thread that
    loses its core stalls its team at every step, so the fit has one thread and the
    reductions stay side by side.
    """
    return (matrix.device.type == "cpu" and matrix.shape[-1] >= ONE_BY_ONE_MIN and workers > 1
            and torch.get_num_threads() > 1)


#: Rows from which :func:`reduce_one_by_one` holds: below it a fold's other work (its
#: held-out products, the basis) dominates and the folds run faster wholly side by side
#: (default fits on 2 quiet cores, 8 stimuli x 4000 frames, 20 neurons, 30 lags: 960
#: weights 0.56 s side by side vs 0.73 s; 1500 weights 1.62 vs 1.46 s; 1920: 3.0 vs 2.4 s).
ONE_BY_ONE_MIN = 1280


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
    ``G`` is singular, fewer held-out frames than weights): ``V' L`` once (with the other
    held-out statistics in the basis, in one :meth:`RidgePath.rotate`: a tridiagonal
    reduction's ``V`` is never formed), then one (D, D) by (D, n_penalties * n_neurons)
    product per block of penalties.

    Parameters
    ----------
    m : CentredStatistics
        Of the fitting rows.
    path : RidgePath
        The fitting rows' path, whose basis the coefficients are in (float64).
    test : tuple of Tensor
        Summed held-out statistics (gram, cross, sq, count).
    """

    def __init__(self, m: CentredStatistics, path: RidgePath, test: tuple[torch.Tensor, ...]) -> None:
        gram, cross, self.sq, self.n = test
        self.p_mean, self.p_sum = m.p_mean, cross[-1]
        held = gram[:-1, :-1]
        D = held.shape[0]
        factor, info = torch.linalg.cholesky_ex(held)
        self.cholesky = int(info) == 0
        stacked = torch.cat([factor if self.cholesky else held, m.z_mean[:, None], gram[-1, :-1, None], cross[:-1]],
                            dim=1)
        rotated = path.rotate(stacked)  # V' [L or G, z mean, held-out column sums, cross-products]
        self.rot_z, self.rot_col, self.rot_cross = rotated[:, D], rotated[:, D + 1], rotated[:, D + 2:]
        # L' V = (V' L)'; V' G V = V' (V' G)' as G is symmetric
        self.left = (rotated[:, :D].T.contiguous() if self.cholesky
                     else path.rotate(rotated[:, :D].T.contiguous()))

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

#: Memory of the projected Grams of the ALS problems solved at once (bytes): each half-step
#: reads the design's Gram once for all of them.
ALS_BLOCK_BYTES = 64 * 2**20

#: Memory of the partial products of :func:`_project_gram` made at once (bytes): a block of
#: the free factor's rows at a time, so that its partial products are still in the cache
#: when they are contracted again. Measured on one thread of 2 busy cores (AMD EPYC, 1 MiB
#: L2 per core, 32 MiB L3), 120 problems of 32 bands x 30 lags, best of 3: the whole product
#: at once (B * rank * F * F * L values, 88 MB at rank 3) took 0.37, 1.3 and 2.0 ms per
#: problem and sweep at ranks 1, 2 and 3; blocks of 2 MiB with the upper triangle only
#: 0.09, 0.16 and 0.26 ms.
ALS_CACHE_BYTES = 2 * 2**20


def _project_gram(gram: torch.Tensor, fixed: torch.Tensor) -> torch.Tensor:
    """The upper triangle of ``M' G M`` of a half-step for many problems sharing the Gram
    ``G`` (one channel).

    ``M`` maps the free factor of ``W = sum_r free_r fixed_r'`` to ``vec(W)`` with the
    other factor ``fixed``. The Gram is given in the order (free, fixed, free, fixed), so
    that one code serves both half-steps. Each block of the free factor's rows is one
    product with the block of ``G`` for every problem at once (``G`` read once for the
    whole batch), whose result is contracted with ``fixed`` again while it is in the
    cache (:data:`ALS_CACHE_BYTES`). The matrix is symmetric: only the columns of rows
    from the block's first row on are made (half of the work); the rest is zero.

    Parameters
    ----------
    gram : Tensor of shape (S, K, S, K)
        ``S`` the free factor's size, ``K`` the fixed one's.
    fixed : Tensor of shape (B, rank, K)

    Returns
    -------
    Tensor of shape (B, S * rank, S * rank)
        Unknowns ordered (row, rank); exact on and above the diagonal (what
        :func:`torch.linalg.cholesky_ex` with ``upper=True`` reads), zero or exact below.
    """
    S, K = gram.shape[:2]
    B, rank = fixed.shape[:2]
    out = fixed.new_zeros(B, S, rank, S, rank)
    flat = fixed.reshape(B * rank, K)
    right = fixed.transpose(1, 2)  # (B, K, rank)
    rows = max(1, ALS_CACHE_BYTES // (fixed.element_size() * B * rank * S * K))
    for i in range(0, S, rows):
        n, cols = min(S, i + rows) - i, S - i
        # H[s, (b, r), (g, k)] = sum_l fixed[b, r, l] G[s, l, g, k] for g >= i: n products of
        # (B r, K) by (K, cols K), G's rows read in place (strided)
        H = torch.matmul(flat, gram[i:i + n, :, i:, :].reshape(n, K, cols * K))
        H = H.reshape(n, B, rank * cols, K).transpose(0, 1).reshape(B, n * rank * cols, K)
        out[:, i:i + n, :, i:] = (H @ right).reshape(B, n, rank, cols, rank)  # sum over k with fixed[b, s, k]
    return out.reshape(B, S * rank, S * rank)


def _als_grams(m: CentredStatistics, n_freqs: int, n_lags: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The Gram of ``m`` in the orders :func:`_project_gram` reads for each half-step:
    (F, L, F, L) for the band factors, (L, F, L, F) for the lag factors."""
    gram = m.gram.reshape(n_freqs, n_lags, n_freqs, n_lags)
    return gram, gram.permute(1, 0, 3, 2).contiguous()


def _separable_half_step(m: CentredStatistics, form: QuadraticForm, fixed: torch.Tensor, alpha: torch.Tensor,
                         n_freqs: int, n_lags: int, solve_freq: bool, neuron: torch.Tensor,
                         grams: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
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
    grams : (Tensor, Tensor) or None, default=None
        :func:`_als_grams` of ``m`` when already made.

    Returns
    -------
    factor : Tensor of shape (B, rank, n_freqs) or (B, rank, n_lags)
    loss : Tensor of shape (B,)
        Each problem's penalised loss at the solution, less the constant ``sum p^2 / count``
        of its PSTH: the minimum of ``x' A x - 2 b' x`` is ``-b' x``, so it costs nothing.
    """
    C = m.gram.shape[0] // (n_freqs * n_lags)
    if C != 1:
        raise NotImplementedError("ALS supports a single input channel")
    grams = _als_grams(m, n_freqs, n_lags) if grams is None else grams
    B = m.cross.reshape(n_freqs, n_lags, -1)
    batch, rank = fixed.shape[:2]
    A = _project_gram(grams[0] if solve_freq else grams[1], fixed).div_(m.count)  # (batch, k, k), in place
    if solve_freq:  # unknowns (f, r); project lags
        Bp = torch.einsum("brl,flb->bfr", fixed, B[..., neuron])
        size = n_freqs
    else:  # unknowns (l, r); project frequencies
        Bp = torch.einsum("brf,flb->blr", fixed, B[..., neuron])
        size = n_lags
    k = size * rank
    Bp = Bp.reshape(batch, k) / m.count
    if form.is_identity:  # alpha kron(I, fixed fixed'): on the (row, row) blocks only
        blocks = A.view(batch, size, rank, size, rank).diagonal(dim1=1, dim2=3)  # (batch, rank, rank, size)
        blocks.add_((alpha[:, None, None] * (fixed @ fixed.transpose(1, 2)))[..., None])
    else:
        A.add_(alpha[:, None, None] * form.separable_half_step(fixed, solve_freq))
    A.diagonal(dim1=1, dim2=2).add_(1e-10)
    # symmetric positive definite but for rounding (alpha = 0 on a singular design): Cholesky
    # from the upper triangle, else LU for the problems where it fails
    factor, info = torch.linalg.cholesky_ex(A, upper=True)
    sol = torch.cholesky_solve(Bp[..., None], factor, upper=True)[..., 0]
    failed = info != 0
    if bool(failed.any()):
        upper = A[failed].triu()
        sol[failed] = torch.linalg.solve(upper + upper.triu(1).transpose(1, 2), Bp[failed])
    return sol.reshape(batch, size, rank).transpose(1, 2), -(Bp * sol).sum(1)


def fit_als(m: CentredStatistics, init: torch.Tensor, alphas: torch.Tensor, n_freqs: int, n_lags: int,
            rank: int = 1, n_iter: int = 30, tol: float = 1e-6, chunk: int | None = None,
            form: QuadraticForm | None = None, neurons=None) -> torch.Tensor:
    """Alternating least squares for rank-``rank`` separable weights, many problems at once.

    Each problem starts from the rank-``rank`` truncated SVD of its ``init``; each
    half-step is an exact penalised least-squares solve for one factor with the other
    fixed, so the penalised loss never increases. Each problem stops on its own
    (:func:`als_factors`).

    Parameters
    ----------
    m : CentredStatistics
        Centred statistics to fit (not whitened: separability is a property of the weights).
    init : Tensor of shape (B, n_freqs, n_lags)
        Starting weights, one per problem.
    alphas : Tensor of shape (B,)
        Penalty of each problem.
    rank : int, default=1
    n_iter : int, default=30
        Most sweeps (both factors) per problem.
    tol : float, default=1e-6
        A problem stops when its weights change by less than this, relatively.
    chunk : int or None, default=None
        Problems solved at once; None: as many as :data:`ALS_BLOCK_BYTES` allows.
    form : QuadraticForm or None, default=None
        The penalty's shape; None: the identity.
    neurons : array-like of int of shape (B,) or None, default=None
        The neuron each problem fits; None: problem ``b`` fits neuron ``b % n_neurons``.

    Returns
    -------
    weights : Tensor of shape (B, n_freqs, n_lags)
    """
    freq, time = als_factors(m, separable_factors(init, rank), alphas, n_freqs, n_lags, n_iter=n_iter, tol=tol,
                             chunk=chunk, form=form, neurons=neurons)
    return torch.einsum("brf,brl->bfl", freq, time)


def _next_rank_start(freq: torch.Tensor, time: torch.Tensor, init: torch.Tensor,
                     rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Factors of rank ``rank`` that start from a lower rank's fit: its factors, then the
    leading components of what it leaves of ``init`` (the residual's truncated SVD)."""
    extra = rank - freq.shape[1]
    residual = init - torch.einsum("brf,brl->bfl", freq, time)
    more_freq, more_time = separable_factors(residual, extra)
    return torch.cat([freq, more_freq], 1), torch.cat([time, more_time], 1)


def als_factors(m: CentredStatistics, start: tuple[torch.Tensor, torch.Tensor], alphas: torch.Tensor,
                n_freqs: int, n_lags: int, n_iter: int = 30, tol: float = 1e-6, loss_tol: float | None = None,
                chunk: int | None = None, form: QuadraticForm | None = None,
                neurons=None) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`fit_als` from given factors; returns the fitted factors.

    A problem leaves the batch as soon as it has converged (its weights changed by less
    than ``tol`` over a sweep, relatively, or its penalised loss fell by less than
    ``loss_tol``, relatively), so that the batch does not sweep every problem until the
    slowest one converges.

    Parameters
    ----------
    start : (Tensor of shape (B, rank, n_freqs), Tensor of shape (B, rank, n_lags))
        Starting factors (the lag factors are the first held fixed).
    loss_tol : float or None, default=None
        A problem also stops when a sweep lowers its penalised loss (less the PSTH's
        constant) by less than this fraction of it; None: only ``tol``. The loss converges
        long before the weights in directions that barely change the fit (two weak
        components of a rank-2 or 3 fit exchanging weight): held-out scores need the
        former (:data:`ALS_SCORE_LOSS_TOL`).

    Returns
    -------
    freq : Tensor of shape (B, rank, n_freqs)
    time : Tensor of shape (B, rank, n_lags)

    See :func:`fit_als` for the other parameters.
    """
    freq, time = start
    form = QuadraticForm((1, n_freqs, n_lags)) if form is None else form
    n_neurons = m.cross.shape[1]
    neurons = (torch.arange(time.shape[0]) % n_neurons if neurons is None
               else torch.as_tensor(np.asarray(neurons), dtype=torch.long))
    neurons = neurons.to(m.cross.device)
    rank = time.shape[1]
    if chunk is None:  # the projected Grams of a chunk stay within ALS_BLOCK_BYTES
        per_problem = time.element_size() * (rank * max(n_freqs, n_lags))**2
        chunk = max(1, ALS_BLOCK_BYTES // per_problem)
    if time.shape[0] == 0:
        return freq.clone(), time.clone()
    grams = _als_grams(m, n_freqs, n_lags)
    parts = [_als_chunk(m, form, grams, time[i:i + chunk], alphas[i:i + chunk], n_freqs, n_lags, n_iter, tol,
                        loss_tol, neurons[i:i + chunk])
             for i in range(0, time.shape[0], chunk)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def _als_chunk(m: CentredStatistics, form: QuadraticForm, grams: tuple[torch.Tensor, torch.Tensor],
               time: torch.Tensor, alphas: torch.Tensor, n_freqs: int, n_lags: int, n_iter: int, tol: float,
               loss_tol: float | None, neurons: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    time = time.clone()
    batch, rank = time.shape[:2]
    freq = time.new_zeros(batch, rank, n_freqs)
    weights = time.new_zeros(batch, n_freqs, n_lags)
    losses = time.new_full((batch,), float("inf"))
    active = torch.arange(batch, device=time.device)
    for sweep in range(n_iter):
        f, _ = _separable_half_step(m, form, time[active], alphas[active], n_freqs, n_lags, True, neurons[active],
                                    grams)
        t, loss = _separable_half_step(m, form, f, alphas[active], n_freqs, n_lags, False, neurons[active], grams)
        new = torch.einsum("brf,brl->bfl", f, t)
        freq[active], time[active] = f, t
        old, weights[active] = weights[active], new
        drop, losses[active] = losses[active] - loss, loss
        if sweep:
            change = (new - old).flatten(1).norm(dim=1) / old.flatten(1).norm(dim=1).clamp(min=1e-30)
            done = change < tol  # NaN keeps sweeping until n_iter, as before
            if loss_tol is not None:
                done |= drop <= loss_tol * loss.abs()
            active = active[~done]
            if active.numel() == 0:
                break
    return freq, time


#: The ranks ``rank="auto"`` chooses among, per neuron, by cross-validation (1, 2 and 3
#: before December 2026: some nearly-but-not-exactly separable cells want rank 4,
#: benchmarks/RESULTS.md "Why the separable kernel trails vanilla on some songs").
AUTO_RANKS = (1, 2, 3, 4)

#: The rules that choose a neuron's rank from held-out scores (:func:`_choose_rank`), by the
#: estimator's ``rank_rule``.
RANK_RULES = ("best", "one_se")


def _als_candidates(evaluations, form: QuadraticForm, alphas: torch.Tensor, ranks: tuple[int, ...],
                    n_freqs: int, n_lags: int, neurons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Held-out scores of ALS fits for every candidate rank and penalty.

    Parameters
    ----------
    evaluations : list of (CentredStatistics, DesignStatistics, index)
        For each fold (or the validation split): the centred statistics fitted, and the
        statistics (with the rows ``index`` of them, None for all) the fits are scored on.
    form : QuadraticForm
        The penalty's shape of these neurons.
    alphas : Tensor of shape (n_alphas, n_neurons)
        Candidate penalties of every neuron of the fit (the columns ``neurons`` are used).
    ranks : tuple of int
    neurons : ndarray of int
        The neurons scored (those with ``form``).

    Returns
    -------
    scores : ndarray of shape (n_ranks, n_alphas, len(neurons))
        Correlation of the predictions pooled over the evaluations (NaN where a ridge start
        was not finite: a singular design at ``alpha = 0``).
    fold_scores : ndarray of shape (n_evaluations, n_ranks, n_alphas, len(neurons))
    """
    grid = alphas[:, torch.as_tensor(neurons, device=alphas.device)]  # (A, n)
    # the evaluations are independent tasks: side by side, one thread each (skstrf._threads)
    results = side_by_side([functools.partial(_als_fold, fitted, held_out, index, form, grid, ranks, n_freqs,
                                              n_lags, neurons)
                            for fitted, held_out, index in evaluations],
                           _threaded(evaluations[0][0].gram) if len(evaluations) > 1 else 1)
    finite = torch.stack([ok for _, ok in results]).all(0)
    totals = sum(fold for fold, _ in results)
    per_fold = [held_out_correlation(fold) for fold, _ in results]
    scores = held_out_correlation(totals)
    mask = ~finite.numpy()[None]
    scores[np.broadcast_to(mask, scores.shape)] = np.nan
    fold_scores = np.stack(per_fold)
    fold_scores[np.broadcast_to(mask[None], fold_scores.shape)] = np.nan
    return scores, fold_scores


#: The relative decrease of the penalised loss over a sweep below which an ALS fit made
#: only to be scored (:func:`_als_candidates`) stops (``loss_tol`` of :func:`als_factors`).
#: On the auditory-nerve case of ``benchmarks/kernels_earn.py`` (120 fibres, 32 bands x 30
#: lags, 5 folds, ranks 1-3) it changed no rank and no held-out score by more than 1e-4
#: against the weights' own criterion alone (``tol=1e-6``), in half of the sweeps.
ALS_SCORE_LOSS_TOL = 1e-7


def _als_fold(fitted: CentredStatistics, held_out: DesignStatistics, index, form: QuadraticForm,
              grid: torch.Tensor, ranks: tuple[int, ...], n_freqs: int, n_lags: int,
              neurons: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`_als_candidates` on one evaluation: its prediction sums (6, n_ranks, A, n) and
    which ridge starts were finite (A, n)."""
    A, n = grid.shape
    columns = torch.as_tensor(neurons, device=grid.device)
    start = _ridge_start(fitted, form, grid, neurons)  # (A, D, n)
    ok = torch.isfinite(start).all(dim=1)
    start = torch.where(ok[:, None, :], start, torch.zeros_like(start))
    problems = start.permute(0, 2, 1).reshape(A * n, n_freqs, n_lags)
    sub = CentredStatistics(fitted.gram, fitted.cross[:, columns], fitted.z_mean, fitted.p_mean[columns],
                            fitted.count)
    sums, factors = [], None
    for rank in ranks:
        # each rank from the previous rank's fit and the next components of the ridge start
        # that it leaves (the first from the start's truncated SVD): the higher rank starts
        # where the lower one ended, so its fit is never worse on the fitted stimuli
        factors = als_factors(fitted, separable_factors(problems, rank) if factors is None
                              else _next_rank_start(*factors, problems, rank),
                              grid.reshape(-1), n_freqs, n_lags, loss_tol=ALS_SCORE_LOSS_TOL, form=form,
                              neurons=np.tile(neurons, A))
        weights = torch.einsum("brf,brl->bfl", *factors)
        weights = weights.reshape(A, n, n_freqs * n_lags).transpose(1, 2)  # (A, D, n)
        sums.append(prediction_sums(weights, sub.intercept(weights), _columns(held_out, columns), index))
    return torch.stack(sums, dim=1), ok.cpu()


def _columns(stats: DesignStatistics, columns: torch.Tensor) -> DesignStatistics:
    """``stats`` of the neurons ``columns`` only."""
    return DesignStatistics(stats.gram, stats.cross[..., columns], stats.sq[..., columns], stats.count)


def _ridge_start(m: CentredStatistics, form: QuadraticForm, alphas: torch.Tensor, neurons: np.ndarray) -> torch.Tensor:
    """Ridge weights (A, D, n) of the neurons ``neurons`` of ``m`` at penalties ``alphas``
    (A, n) with the penalty's shape ``form`` (through its change of variables)."""
    columns = torch.as_tensor(neurons, device=m.cross.device)
    sub = CentredStatistics(m.gram, m.cross[:, columns], m.z_mean, m.p_mean[columns], m.count)
    if form.is_identity:
        return ridge_path(sub, alphas)
    T = form.whitening(m.gram.device)
    T = T.to(m.gram.dtype)
    if form.diagonal is not None:
        white = CentredStatistics(m.gram * T[:, None] * T[None, :], sub.cross * T[:, None], sub.z_mean * T,
                                  sub.p_mean, sub.count)
    else:
        white = CentredStatistics(T.T @ m.gram @ T, T.T @ sub.cross, T.T @ sub.z_mean, sub.p_mean, sub.count)
    return form.unwhiten(ridge_path(white, alphas))


# ------------------------------------------------------------------------------ L-BFGS

#: Most iterations of :func:`fit_lbfgs` (each one or a few evaluations of the loss and its
#: gradient from the statistics); with ``per_neuron`` (the default), of each neuron's own run.
LBFGS_MAX_ITER = 500

#: Each neuron's L-BFGS run (:func:`_lbfgs_per_neuron`) stops when its loss fell by less
#: than this over its last :data:`LBFGS_WINDOW` iterations. The loss is a mean squared error
#: in units of the neuron's PSTH variance (a constant prediction's is 1), so this is relative
#: to the response's variance (to the loss itself where the loss is above 1). Chosen on the
#: generated songs' tuning seeds of ``benchmarks/kernels_earn.py`` (500-502) with
#: ``benchmarks/parametric_diagnosis.py``: the same held-out score as running every neuron
#: to the cap (within 0.0004), in less time (rough: 1.6-2.0 s per fold against 2.2-4.2 s);
#: 1e-12 before December 2026 (every neuron ran to the cap: its loss was still falling there).
LBFGS_TOL = 3e-5

#: The iterations over which :data:`LBFGS_TOL` measures a run's progress (L-BFGS's loss
#: falls unevenly, some iterations by almost nothing).
LBFGS_WINDOW = 10

#: Curvature pairs each neuron's L-BFGS run keeps (:func:`_lbfgs_per_neuron`).
LBFGS_HISTORY = 10

#: The stop of the joint run over every neuron (``fit_lbfgs(per_neuron=False)``, the
#: default before December 2026): the loss changes by less than this between iterations.
JOINT_LBFGS_TOL = 1e-12


def fit_lbfgs(module, stats: DesignStatistics, penalty: Penalty, *, max_iter: int | None = None,
              tol: float | None = None, per_neuron: bool = True, history: int | None = None,
              scaled: bool = True, window: int | None = None) -> dict:
    """Minimise a linear model's penalised training loss from its statistics by L-BFGS.

    The loss is the one gradient training minimises (the mean squared error of the
    standardised PSTH over the training frames, averaged over neurons, plus the penalty
    :meth:`skstrf._penalty.Penalty.value`), from the summed statistics of every row of
    ``stats``: exact, with no frame read. The kernel's parameters and the intercept are
    optimised in float64 from where the module holds them, until the loss stops falling
    (:data:`LBFGS_TOL` over :data:`LBFGS_WINDOW` iterations) or :data:`LBFGS_MAX_ITER`
    iterations.

    Neurons are independent terms of one sum. By default (``per_neuron``) each neuron is
    its own L-BFGS problem, all of them in one batch (:func:`_lbfgs_per_neuron`: its own
    curvature pairs, step and stop), in its parameters scaled by its loss's curvature
    (``scaled``, :func:`_parameter_scales`). With ``per_neuron=False`` one L-BFGS (torch's, strong
    Wolfe line search) runs over every neuron's parameters at once, and the module keeps the
    best parameters seen: its one step length and one curvature model serve neurons of
    different scales, and on the auditory-nerve case of ``benchmarks/kernels_earn.py`` it
    stopped at 500 iterations far from their optima (``benchmarks/parametric_diagnosis.py``:
    the penalised loss 0.025 above the free kernel's where per-neuron runs reached 0.018,
    held-out cc_norm 0.006 to 0.007 lower); it was the default before December 2026, and
    keeps its stop of then (:data:`JOINT_LBFGS_TOL`) unless ``tol`` is given.

    Parameters
    ----------
    module : STRFModel
        A linear model (its ``kernel`` module and ``bias``; its ``standardized_weight``
        in the statistics' columns). Every parameter's first dimension is the neurons'.
    stats : DesignStatistics
        Statistics of the training stimuli (all rows are summed).
    penalty : Penalty
    max_iter, tol : int and float or None
        None: :data:`LBFGS_MAX_ITER` and :data:`LBFGS_TOL`.
    per_neuron : bool, default=True
        One L-BFGS run per neuron (batched), or one over all neurons.
    history : int or None
        Curvature pairs of each neuron's run; None: :data:`LBFGS_HISTORY`.
    scaled : bool, default=True
        Each neuron's run in its parameters divided by the square roots of its loss's
        Gauss-Newton diagonal (:func:`_parameter_scales`; where the kernel gives its
        Jacobian's norms). Unscaled, the parametric kernel's centres and widths, whose
        curvature is the amplitudes' times their Gaussian's amplitude squared (1e-4 to 1e-2
        in standardised units), crawl: on one fold of the generated songs 500 unscaled
        iterations left the loss 0.029 above the free kernel's, 50 scaled ones 0.024 and
        500 scaled ones 0.019 (``benchmarks/RESULTS.md``).
    window : int or None
        The iterations over which ``tol`` measures progress; None: :data:`LBFGS_WINDOW`.

    Returns
    -------
    info : dict
        ``start_loss``, ``loss`` (penalised, mean over neurons, the kept parameters'),
        ``iterations`` (per neuron: the most any neuron took) and, per neuron,
        ``neuron_iterations`` (ndarray of int; the joint run's count for every neuron).
    """
    from ._losses import statistics_loss  # the training loss itself, not a copy

    max_iter = LBFGS_MAX_ITER if max_iter is None else int(max_iter)
    summed = stats.summed(None)
    params = [p for p in module.kernel.parameters() if p.requires_grad] + [module.bias]
    originals = [p.data for p in params]
    for p in params:  # optimised in float64; the module reads them in place
        p.data = p.data.double()
    state = {"calls": 0, "best": np.inf, "best_params": None}

    def loss_now() -> torch.Tensor:
        weight = module.standardized_weight()
        return statistics_loss(weight, module.bias, *summed) + penalty.value(weight)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = loss_now()
        loss.backward()
        state["calls"] += 1
        value = float(loss.detach())
        if np.isfinite(value) and value < state["best"]:
            state["best"], state["best_params"] = value, [p.detach().clone() for p in params]
        return loss

    if per_neuron:
        try:
            start, loss, iterations = _lbfgs_per_neuron(
                module, params, stats, penalty, max_iter, LBFGS_TOL if tol is None else float(tol),
                LBFGS_HISTORY if history is None else int(history), scaled=scaled,
                window=LBFGS_WINDOW if window is None else int(window))
        finally:
            for p, original in zip(params, originals):
                p.data = p.data.to(original.dtype)
                p.grad = None
        return {"start_loss": start, "loss": loss, "iterations": int(iterations.max()) if iterations.size else 0,
                "neuron_iterations": iterations}
    try:
        with torch.enable_grad():
            start = float(loss_now().detach())
            state["best"], state["best_params"] = start, [p.detach().clone() for p in params]
            optimizer = torch.optim.LBFGS(params, lr=1.0, max_iter=max_iter, max_eval=2 * max_iter,
                                          history_size=20, tolerance_grad=0.0,
                                          tolerance_change=JOINT_LBFGS_TOL if tol is None else float(tol),
                                          line_search_fn="strong_wolfe")
            optimizer.step(closure)
            iterations = int(optimizer.state[params[0]].get("n_iter", 0))
    finally:
        best = state["best_params"]
        for p, original, value in zip(params, originals, best if best is not None else [None] * len(params)):
            p.data = original if value is None else value.to(original.dtype)
            p.grad = None
    return {"start_loss": start, "loss": state["best"], "iterations": iterations,
            "neuron_iterations": np.full(module.bias.shape[0], iterations)}


def _neuron_objective(module, params: list, stats_t: tuple, penalty: Penalty,
                      rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each neuron's penalised training loss (N,) and its gradient with respect to its own
    parameters (N, P), at the parameters the module holds; only the neurons ``rows`` are
    evaluated (the others' loss is NaN, their gradient 0).

    The loss of neuron ``n`` is ``(theta_n G theta_n - 2 theta_n c_n + sq_n) / count +
    alpha_n w_n' Q_n w_n`` (``theta_n = [w_n, b_n]``): ``N`` times its term of
    :func:`skstrf._losses.statistics_loss` plus :meth:`Penalty.value`. The one large
    product, the residual ``theta G - c'`` of the neurons ``rows``, also gives the data
    term's gradient ``2 (theta G - c') / count``; autograd carries it (and the penalty's) to
    the kernel's parameters.
    """
    gram, cross_t, sq, count = stats_t
    weight = module.standardized_weight()
    N = weight.shape[0]
    theta = torch.cat([weight, module.bias[:, None]], dim=1)[rows]
    with torch.no_grad():
        resid = torch.addmm(cross_t[rows], theta.to(gram.dtype), gram, beta=-1.0).double()
        flat = theta.detach().double()
        data = ((flat * resid).sum(1) - (flat * cross_t[rows].double()).sum(1) + sq[rows]) / count
    quad = torch.zeros(N, dtype=weight.dtype, device=weight.device)
    alpha = torch.as_tensor(penalty.per_neuron(N), dtype=weight.dtype, device=weight.device)
    for form, neurons in penalty.groups(N):
        index = torch.as_tensor(neurons, device=weight.device)
        quad = quad.index_put((index,), alpha[index] * form.quadratic(weight[index]))
    surrogate = (theta * (2.0 * resid / count).to(theta.dtype)).sum() + quad[rows].sum()
    grads = torch.autograd.grad(surrogate, params, allow_unused=True)
    grad = torch.cat([(torch.zeros_like(p) if g is None else g).reshape(N, -1) for p, g in zip(params, grads)], 1)
    loss = torch.full((N,), float("nan"), dtype=torch.float64, device=weight.device)
    loss[rows] = data + quad[rows].detach().double()
    return loss, grad.double()


def _parameter_scales(module, params: list, gram: torch.Tensor, count: torch.Tensor,
                      penalty: Penalty) -> torch.Tensor | None:
    """Each neuron's parameter scales (N, P) for :func:`_lbfgs_per_neuron`: the square roots
    of the diagonal of its loss's Gauss-Newton matrix, the Gram replaced by its diagonal;
    None where the kernel does not give its Jacobian's weighted norms
    (:meth:`skstrf.kernels.ParametricKernel.jacobian_norms`).

    Parameter ``j`` of neuron ``n`` moves the neuron's weights along the column ``J_nj`` of
    their Jacobian; the loss's curvature along it is about ``2 sum_d J_njd^2 (G_dd / count +
    alpha_n Q_dd)`` (exact where the Gram and ``Q`` are diagonal), and the intercept's is
    ``2 G_bb / count``. A parameter that moves nothing (e.g. the centre of a Gaussian of
    zero amplitude) gets a millionth of its neuron's largest scale.
    """
    N = module.bias.shape[0]
    diag = torch.diagonal(gram).double()
    curvature = (2.0 * diag[:-1] / count.double()).expand(N, -1).clone()
    alpha = torch.as_tensor(penalty.per_neuron(N), dtype=torch.float64, device=gram.device)
    for form, neurons in penalty.groups(N):
        index = torch.as_tensor(neurons, device=gram.device)
        q = 1.0 if form.is_identity else form.main_diagonal().to(curvature)
        curvature[index] += 2.0 * alpha[index, None] * q
    norms = getattr(module.kernel, "jacobian_norms", lambda _: None)(curvature)
    if norms is None:
        return None
    bias = (2.0 * diag[-1] / count.double()).expand(N, 1)
    scales = torch.cat([n.reshape(N, -1).double() for n in norms] + [bias], 1).sqrt()
    return scales.clamp(min=1e-6 * scales.amax(1, keepdim=True))


def _lbfgs_per_neuron(module, params: list, stats: DesignStatistics, penalty: Penalty, max_iter: int,
                      tol: float, history: int = LBFGS_HISTORY, trace: list | None = None,
                      scaled: bool = True, window: int = LBFGS_WINDOW) -> tuple[float, float, np.ndarray]:
    """L-BFGS run for every neuron on its own problem, all neurons in one batch.

    Neurons are independent problems: each keeps its own curvature pairs, its own step
    (Armijo's condition; after a failed trial, the minimum of the quadratic through the
    loss, its slope and that trial, within 0.1 to 0.5 of the failed step: halving alone
    took 6.7 evaluations per iteration on the auditory nerve, as each iteration some neuron
    needed a step near 1/64) and its own stop (its loss fell by less than ``tol`` times
    ``max(1, loss)`` over its last ``window`` iterations, or its line search fails), so that
    a slow neuron neither holds the others back nor sets their step; every evaluation is one
    product of the active neurons' parameters with the Gram. Every accepted step lowers its
    neuron's loss, so the parameters left in the module are the best seen.

    With ``scaled`` (and a kernel that gives its Jacobian's norms), each neuron's run works
    in its parameters times their scales (:func:`_parameter_scales`, fixed at the start): a
    diagonal preconditioner, so that parameters of very different curvature (a Gaussian's
    amplitude and its centre) take steps of their own size. ``trace``, a list: each
    iteration appends the losses (N,), gradient norms (N,) and which neurons still run.

    Returns the mean start and end losses and each neuron's number of iterations (N,).
    """
    gram, cross, sq, count = stats.summed(None)
    stats_t = (gram, cross.T.contiguous(), sq.double(), count.double())
    N = module.bias.shape[0]
    sizes = [p[0].numel() for p in params]
    scale = _parameter_scales(module, params, gram, count, penalty) if scaled else None
    if scale is not None and len(params) != len(list(module.kernel.parameters())) + 1:
        scale = None  # a kernel with frozen parameters: its norms are not the parameters'

    def get() -> torch.Tensor:
        x = torch.cat([p.detach().reshape(N, -1) for p in params], 1).double()
        return x if scale is None else x * scale

    def put(x: torch.Tensor) -> None:
        x = x if scale is None else x / scale
        with torch.no_grad():
            for p, part in zip(params, torch.split(x, sizes, dim=1)):
                p.copy_(part.reshape(p.shape))

    def objective(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            f, g = _neuron_objective(module, params, stats_t, penalty, rows)
        return f, (g if scale is None else g / scale)

    everyone = torch.arange(N, device=module.bias.device)
    x = get()
    f, g = objective(everyone)
    start = float(torch.nanmean(f))
    S, Y, rho = [], [], []
    gamma = 1.0 / g.abs().sum(1).clamp(min=1.0)  # the first step's scale, as torch's L-BFGS
    active = torch.isfinite(f)
    device = x.device
    iterations = torch.zeros(N, dtype=torch.int64, device=device)
    recent = [f]  # the losses of the last ``window`` iterations and the one before
    for _ in range(max_iter):
        if not bool(active.any()):
            break
        # two-loop recursion, every neuron with its own pairs (rho 0: a pair not kept)
        q = -g
        coefs = []
        for s_i, y_i, r_i in zip(reversed(S), reversed(Y), reversed(rho)):
            a = r_i * (s_i * q).sum(1)
            q = q - a[:, None] * y_i
            coefs.append(a)
        d = gamma[:, None] * q
        for (s_i, y_i, r_i), a in zip(zip(S, Y, rho), reversed(coefs)):
            b = r_i * (y_i * d).sum(1)
            d = d + s_i * (a - b)[:, None]
        slope = (g * d).sum(1)
        uphill = slope >= 0  # not a descent direction: the scaled gradient
        d = torch.where(uphill[:, None], -gamma[:, None] * g, d)
        slope = torch.where(uphill, -gamma * (g * g).sum(1), slope)
        step = torch.ones(N, dtype=torch.float64, device=device)
        pending = active.clone()
        x_new, f_new, g_new = x.clone(), f.clone(), g.clone()
        for _ in range(30):  # backtracking, each neuron on its own step
            rows = torch.nonzero(pending).flatten()
            if rows.numel() == 0:
                break
            trial = x.clone()
            trial[rows] = x[rows] + step[rows, None] * d[rows]
            put(trial)
            f_try, g_try = objective(rows)
            ok = torch.zeros(N, dtype=torch.bool, device=device)
            ok[rows] = torch.isfinite(f_try[rows]) & (f_try[rows] <= f[rows] + 1e-4 * step[rows] * slope[rows])
            x_new[ok], f_new[ok], g_new[ok] = trial[ok], f_try[ok], g_try[ok]
            pending &= ~ok
            # the next trial: the minimum of the quadratic through f, its slope and the
            # failed trial, kept within [0.1, 0.5] of the failed step (a halving would need
            # several rounds where the quadratic's minimum is far below half)
            tried = torch.full((N,), float("nan"), dtype=torch.float64, device=device)
            tried[rows] = f_try[rows]
            excess = tried - f - slope * step
            quadratic = torch.where(torch.isfinite(excess) & (excess > 0),
                                    -slope * step / (2.0 * excess.clamp(min=1e-300)) * step, 0.1 * step)
            step = torch.where(pending, torch.minimum(torch.maximum(quadratic, 0.1 * step), 0.5 * step), step)
        failed = active & pending  # no decrease found: this neuron is done
        moved = active & ~pending
        s_new, y_new = x_new - x, g_new - g
        sy = (s_new * y_new).sum(1)
        keep = moved & (sy > 1e-10 * (s_new * s_new).sum(1).sqrt() * (y_new * y_new).sum(1).sqrt())
        S.append(torch.where(keep[:, None], s_new, 0.0))
        Y.append(torch.where(keep[:, None], y_new, 0.0))
        rho.append(torch.where(keep, 1.0 / torch.where(keep, sy, 1.0), 0.0))
        if len(S) > history:
            S.pop(0), Y.pop(0), rho.pop(0)
        gamma = torch.where(keep, sy / (y_new * y_new).sum(1).clamp(min=1e-300), gamma)
        iterations += moved.to(torch.int64)
        x, f, g = x_new, f_new, g_new
        recent = (recent + [f])[-(window + 1):]
        small = moved & (len(recent) > window) & ((recent[0] - f).abs() <= tol * f.abs().clamp(min=1.0))
        active &= ~(failed | small)
        if trace is not None:
            trace.append((f.clone(), g.norm(dim=1), active.clone()))
    put(x)
    return start, float(torch.nanmean(f)), iterations.cpu().numpy()


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
    rank : ndarray of int of shape (n_neurons,) or None
        A separable kernel's rank per neuron (ALS); None for other kernels.
    """

    weight: torch.Tensor
    penalty: Penalty
    moments: CentredStatistics
    scores: np.ndarray | None = None
    rank: np.ndarray | None = None

    @property
    def intercept(self) -> torch.Tensor:
        return self.moments.intercept(self.weight)


def _penalty_scores(train: DesignStatistics, valid: DesignStatistics | None, alphas: torch.Tensor,
                    folds, refit: CentredStatistics, reductions: list | None = None):
    """The held-out score of every penalty of the free kernel's ridge path, each fold's, and
    the refit's :class:`RidgePath` when made alongside: (scores, fold scores or None, path
    or None). With a list ``reductions``, the folds in float32, their reductions appended to
    it (:func:`cross_validated_scores`)."""
    if folds is not None:
        scores, (path,), fold_scores = cross_validated_scores(train, folds, alphas, also=(refit,),
                                                              single=reductions is not None, reductions=reductions)
        return scores, fold_scores, path
    m = centred(train)
    weights = ridge_path(m, alphas)
    return held_out_correlation(prediction_sums(weights, m.intercept(weights), valid)), None, None


#: Weights from which :func:`solve_ridge` scores the folds of cross-validation in float32
#: (:func:`cross_validated_scores` with ``single=True``; from :data:`MIXED_PRECISION_MIN`
#: the folds' float32 reductions were refined to float64's solutions before, for every
#: penalty and neuron: 2,560 weights and 100 neurons 20.8 -> 12.6 s over two outer folds,
#: ``benchmarks/float32_folds.py --wide``). Below it a fold's float64 work is small and
#: float32 saves little.
SINGLE_FOLDS_MIN = 256

#: Two penalties whose float32 cross-validation objectives (the scores as
#: :func:`skstrf._selection.choose` weighs them) differ by less than this are a near tie
#: at least: the neuron is scored again in float64 (:func:`_checked_ties`). The float32
#: scores' largest error, measured against float64 on generated data of 320 to 1,600
#: weights, was 4e-7 to 4e-6 (up to 1e-4 at the smallest penalties of an ill-conditioned
#: design: the auditory nerve's, which :data:`SINGLE_FOLDS_ERROR_MARGIN` covers).
SINGLE_FOLDS_TOLERANCE = 1e-5

#: A penalty's tolerance is this many times the canaries' largest float32 error there
#: (:func:`_checked_ties`). On the auditory nerve's design (``benchmarks/float32_folds.py``)
#: the largest error over neurons was 5-9 times the median, penalty by penalty, and with a
#: margin of 20 reached 0.9 of half the tolerance: 40 leaves a factor of two.
SINGLE_FOLDS_ERROR_MARGIN = 40.0


#: Columns (weights plus penalties x neurons: the width of a fold's products) from which
#: float32 folds pay for their float64 check (:func:`_checked_ties`, about 0.02-0.03 s at
#: 500-700 weights). Whole fits, float32 over float64 folds, paired in one process on 2
#: quiet cores (``benchmarks/float32_folds.py --paired``, two runs): 510 weights x 119
#: neurons (2,057 columns) 0.90-0.93; 768 x 40 (1,288) 0.92; 512 x 20 (772) 1.04-1.05; the
#: songs' 640 x 8 (744) 1.07-1.16; the auditory nerve's 960 x 120 (summed over outer folds,
#: ``--wide`` run) 0.74; 2,560 x 100 0.61.
SINGLE_FOLDS_COLUMNS = 1000


def single_folds(gram: torch.Tensor, n_columns: int) -> bool:
    """Whether a penalty search over statistics with this Gram (rows, D + 1, D + 1) and
    ``n_columns`` (penalty, neuron) pairs scores its folds in float32: on the CPU, float64
    statistics of :data:`SINGLE_FOLDS_MIN` weights or more, with D + ``n_columns`` at least
    :data:`SINGLE_FOLDS_COLUMNS`."""
    size = gram.shape[-1] - 1
    return (gram.device.type == "cpu" and gram.dtype == torch.float64 and size >= SINGLE_FOLDS_MIN
            and size + n_columns >= SINGLE_FOLDS_COLUMNS)


def _checked_ties(stats: DesignStatistics, folds, alphas: torch.Tensor, scores: np.ndarray,
                  fold_scores: np.ndarray, reductions: list, per_neuron: bool,
                  pooling: float) -> tuple[np.ndarray, np.ndarray]:
    """Float32 cross-validation scores checked in float64 where a choice could depend on
    their error.

    1. **Calibration.** Two canaries, the neuron whose best two penalties are closest (the
       most fragile choice) and the neuron whose scores vary most over the penalties (the
       largest errors: a flat, unpredictable neuron's are small), are scored in float64 at
       every penalty: their float32 errors measure this design's, penalty by penalty (a
       small penalty on an ill-conditioned design errs most: on the auditory nerve's 960
       weights 1e-4 at 1e-4, against 1e-6 from 1e-2). Each penalty's tolerance is
       :data:`SINGLE_FOLDS_ERROR_MARGIN` times the canaries' largest error there, and at
       least :data:`SINGLE_FOLDS_TOLERANCE`.
    2. **Near ties.** A neuron with another penalty whose objective (its scores as
       :func:`skstrf._selection.choose` weighs them) is below its best by less than the
       two penalties' mean tolerance (:func:`skstrf._selection.tied_penalties`) could be
       given another penalty than float64 scores would give it: its scores at those
       penalties are replaced by float64's. With one penalty for all neurons, a near tie of
       their mean scores every neuron in float64.
    3. **Verification.** Where a checked neuron's float32 score is further from float64's
       than half its penalty's tolerance (the canaries under-estimated the error), no float32
       score is trusted and every neuron is scored in float64 (the folds' float64
       reductions).

    Each fold's weights for the checked neurons are its float32 reduction's solutions refined
    in float64 (:func:`_refined_weights`, to :data:`REFINEMENT_TOLERANCE`; a penalty whose
    refinement does not converge, or a fold without a float32 reduction, is solved by a
    float64 Cholesky factorisation, :func:`_cholesky_weights`, or where that fails by a
    float64 reduction), scored on the held-out statistics in float64: a few neurons cost a
    few (D, D) by (D, n_penalties * n_checked) products per fold, not the folds' reductions.

    Parameters
    ----------
    stats : DesignStatistics
        The statistics the scores were computed from.
    folds : list of (train_index, test_index)
    alphas : Tensor of shape (n_alphas,)
    scores : ndarray of shape (n_alphas, n_neurons)
        Pooled float32 scores.
    fold_scores : ndarray of shape (n_folds, n_alphas, n_neurons)
    reductions : list of (tuple or None, CentredStatistics or None)
        Each fold's float32 reduction and centred statistics (:func:`cross_validated_scores`'s
        ``reductions``).
    per_neuron, pooling :
        As for :func:`skstrf._selection.choose`.

    Returns
    -------
    scores, fold_scores : ndarray
        Copies with the checked (penalty, neuron) entries replaced by float64's, or every
        entry float64's.
    """
    grid = alphas.cpu().numpy()
    shared = not per_neuron or pooling >= 1
    canaries = _canaries(scores, per_neuron=per_neuron, pooling=pooling)
    if canaries.size == 0:  # no neuron with two defined scores: nothing to choose
        return scores, fold_scores

    def exact_scores() -> tuple[np.ndarray, np.ndarray]:
        exact, _, exact_folds = cross_validated_scores(stats, folds, alphas)
        return exact, exact_folds

    def float64_sums(neurons: np.ndarray, penalties: np.ndarray) -> torch.Tensor:
        """Held-out sums (n_folds, 6, n_penalties, n_neurons) of those neurons in float64."""
        columns = torch.as_tensor(neurons, device=stats.cross.device)
        sub = _columns(stats, columns)

        def fold(train, test, kept) -> torch.Tensor:
            reduction, m = kept
            m = (centred(sub, torch.as_tensor(np.asarray(train))) if m is None
                 else CentredStatistics(m.gram, m.cross[:, columns], m.z_mean, m.p_mean[columns], m.count))
            matrix, rhs = (m.gram / m.count).numpy(), (m.cross / m.count).numpy()
            shape = (penalties.size, rhs.shape[1])
            weights, done = (_refined_weights(reduction, matrix, rhs, np.broadcast_to(penalties[:, None], shape).copy())
                             if reduction is not None else (None, np.zeros(shape, dtype=bool)))
            if not done.all():  # refinement too slow (a penalty too small for float32): float64's own
                weights = _cholesky_weights(matrix, rhs, penalties, weights, ~done.all(axis=1))
                if weights is None:  # singular: a float64 reduction
                    weights = RidgePath(m).weights(torch.as_tensor(penalties)).numpy()
            weights = torch.from_numpy(np.ascontiguousarray(weights))
            return prediction_sums(weights, m.intercept(weights), sub, torch.as_tensor(np.asarray(test)))

        return torch.stack(side_by_side([functools.partial(fold, train, test, kept)
                                         for (train, test), kept in zip(folds, reductions)], _threaded(stats.gram)))

    scores, fold_scores = scores.copy(), fold_scores.copy()

    def replace(sums: torch.Tensor, rows: np.ndarray, neurons: np.ndarray) -> np.ndarray:
        """Put float64's scores in; return their float32 errors."""
        where = np.ix_(rows, neurons)
        exact = held_out_correlation(sums.sum(0))
        with np.errstate(invalid="ignore"):
            error = np.nan_to_num(np.abs(exact - scores[where]), nan=0.0)
        scores[where] = exact
        for k, one in enumerate(sums):
            fold_scores[k][where] = held_out_correlation(one)
        return error

    # 1. the canaries at every penalty: this design's float32 error, penalty by penalty; with
    # them, at every penalty too, the neurons already tied at the smallest tolerance (the
    # calibrated tolerances are no smaller: one pass over the folds for all, usually)
    first = np.zeros(scores.shape[1], dtype=bool)
    if not shared:
        first = near_ties(scores, grid, pooling=pooling, tolerance=SINGLE_FOLDS_TOLERANCE)
    first[canaries] = True
    done = np.flatnonzero(first)
    every = np.arange(grid.size)
    first_error = replace(float64_sums(done, grid), every, done)
    error = first_error[:, np.searchsorted(done, canaries)].max(axis=1)
    tolerance = np.maximum(SINGLE_FOLDS_TOLERANCE, SINGLE_FOLDS_ERROR_MARGIN * error)
    # 2. near ties at the calibrated tolerances, with the float64 scores in
    tied = tied_penalties(scores, grid, per_neuron=per_neuron, pooling=pooling, tolerance=tolerance)
    if shared:
        return exact_scores() if tied.sum() > 1 else (scores, fold_scores)
    flagged = (tied.sum(0) > 1) & ~first
    # 3. the neurons checked verify the calibration (the canaries' own errors are within it)
    if (first_error > tolerance[:, None] / 2).any():
        return exact_scores()
    if not flagged.any():
        return scores, fold_scores
    neurons = np.flatnonzero(flagged)
    rows = np.flatnonzero(tied[:, neurons].any(axis=1))
    error = replace(float64_sums(neurons, grid[rows]), rows, neurons)
    if (error > tolerance[rows, None] / 2).any():
        return exact_scores()
    return scores, fold_scores


def _canaries(scores: np.ndarray, *, per_neuron: bool = True, pooling: float = 0.0) -> np.ndarray:
    """The neurons :func:`_checked_ties` calibrates the float32 error on: the one whose best
    two penalties are closest and the one whose scores vary most over the penalties, in each
    neuron's curve as its choice weighs it (:func:`skstrf._selection.blended_scores`; the
    neuron's own with one penalty for all); none without a neuron of two defined scores."""
    if scores.shape[0] < 2:
        return np.zeros(0, dtype=np.int64)
    shared = not per_neuron or pooling >= 1
    own = np.nan_to_num(blended_scores(scores, pooling=0.0 if shared else pooling), nan=-np.inf)
    finite = np.isfinite(own)
    usable = finite.sum(axis=0) >= 2
    if not usable.any():
        return np.zeros(0, dtype=np.int64)
    top = np.sort(own, axis=0)[-2:]
    gap = np.where(usable, top[1] - np.where(usable, top[0], 0.0), np.inf)
    spread = np.where(finite, own, -np.inf).max(axis=0) - np.where(finite, own, np.inf).min(axis=0)
    spread = np.where(usable, spread, -np.inf)
    return np.unique([int(np.argmin(gap)), int(np.argmax(spread))])


def _cholesky_weights(matrix: np.ndarray, rhs: np.ndarray, penalties: np.ndarray, weights: np.ndarray | None,
                      redo: np.ndarray) -> np.ndarray | None:
    """``weights`` (A, D, N) with the penalties ``redo`` (bool, (A,)) solved in float64 by a
    Cholesky factorisation of ``matrix + alpha I`` each (a third of a tridiagonal reduction's
    work: a few penalties of a few neurons); None when one is not positive definite."""
    weights = np.zeros((penalties.size, *rhs.shape)) if weights is None else weights
    for a in np.flatnonzero(redo):
        shifted = matrix + penalties[a] * np.eye(matrix.shape[0])
        with _blas_for(matrix.shape[0]):
            factor, info = lapack.dpotrf(shifted, lower=1, clean=0, overwrite_a=1)
            if info != 0:
                return None
            solved, info = lapack.dpotrs(factor, rhs, lower=1)
        if info != 0:
            return None
        weights[a] = solved
    return weights


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
    single = (folds is not None and len(forms) == 1 and alphas.numel() > 1
              and single_folds(train.gram, alphas.numel() * train.cross.shape[-1]))
    refits, paths, scores, fold_scores = [], [], [], []
    for candidate in forms:
        white, white_valid = candidate.whiten(train), candidate.whiten(valid)
        refit = centred(white if folds is not None or valid is None else white.concat(white_valid))
        refits.append(refit)
        reductions = [] if single else None
        score, fold_score, path = (_penalty_scores(white, white_valid, alphas, folds, refit, reductions)
                                   if choosing else (None, None, None))
        if single:
            score, fold_score = _checked_ties(white, folds, alphas, score, fold_score, reductions, per_neuron,
                                              pooling)
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
              form, shape: tuple, folds=None, per_neuron: bool = True,
              pooling: float = 0.0, plain: int | None = None, rank_rule: str = "best",
              **_) -> ClosedFormSolution:
    """A separable kernel by ALS, its rank and penalty chosen per neuron by held-out scores.

    The free kernel's ridge (:func:`solve_ridge`) gives each neuron's penalty and its form,
    and the start of every ALS fit (the truncated SVD of the ridge solution at the same
    penalty). With several candidate ranks, each candidate's ALS fit is scored by cross-validation
    over the same folds (the pooled out-of-fold correlation), or on the validation stimuli,
    and each neuron keeps its best candidate (:func:`_choose_rank`: the penalty with
    partial pooling, the rank on the neuron's own score by ``rank_rule``, ties to the lower
    rank and the larger penalty), then ALS refits it on
    all stimuli. With validation stimuli and one form, ALS's own fits on the whole penalty
    grid are scored (its own curve); with folds, the penalty is the free kernel's choice
    times :data:`skstrf._penalty.ALS_PENALTY_SCALE`. See
    :func:`solve_ridge` for the other parameters.

    Parameters
    ----------
    shape : (n_freqs, n_lags, rank)
        The separable kernel's shape; ``rank`` an int, or a tuple of candidate ranks.
    rank_rule : {"best", "one_se"}, default="best"
        How a neuron's rank is chosen among the candidates (:func:`_choose_rank`).

    Returns
    -------
    ClosedFormSolution
        ``rank`` holds each neuron's rank.
    """
    F, L, ranks = shape
    ranks = (int(ranks),) if np.ndim(ranks) == 0 else tuple(int(r) for r in ranks)
    folds = None if folds is None else list(folds)
    free = solve_ridge(train, valid, alphas, form=form, folds=folds, per_neuron=per_neuron, pooling=pooling,
                       plain=plain)
    penalty, scores, refit = free.penalty, free.scores, free.moments
    N = free.weight.shape[1]
    chosen = penalty.per_neuron(N)
    single = len(penalty.forms) == 1
    if folds is not None:  # the free kernel's choice, scaled: a rank constraint regularises too
        chosen = chosen * ALS_PENALTY_SCALE
        candidates = chosen[None]
        evaluations = ([(centred(train, torch.as_tensor(np.asarray(a))), train, torch.as_tensor(np.asarray(b)))
                        for a, b in folds] if len(ranks) > 1 else None)
    elif valid is not None and (alphas.numel() > 1 or len(ranks) > 1):
        # ALS's own fits on the training stimuli, scored on the validation stimuli
        own_curve = single and alphas.numel() > 1
        candidates = (alphas.cpu().numpy()[:, None].repeat(N, axis=1) if own_curve else chosen[None])
        evaluations = [(centred(train), valid, None)]
    else:
        candidates, evaluations = chosen[None], None
    if evaluations is None:
        rank, alpha = np.full(N, ranks[0]), candidates[0]
    else:
        grid = torch.as_tensor(candidates).to(refit.gram)
        candidate_scores = np.full((len(ranks), grid.shape[0], N), np.nan)
        fold_scores = np.full((len(evaluations),) + candidate_scores.shape, np.nan)
        for group_form, neurons in penalty.groups(N):
            candidate_scores[:, :, neurons], fold_scores[..., neurons] = _als_candidates(
                evaluations, group_form, grid, ranks, F, L, np.asarray(neurons))
        rank, which = _choose_rank(candidate_scores, candidates, ranks, per_neuron=per_neuron, pooling=pooling,
                                   fold_scores=fold_scores if folds is not None else None, rule=rank_rule)
        alpha = candidates[which, np.arange(N)]
    penalty = penalty.with_alpha(alpha)
    alpha_t = torch.as_tensor(alpha).to(refit.gram)
    weight = torch.empty_like(free.weight)
    for group_form, neurons in penalty.groups(N):
        neurons = np.asarray(neurons)
        start = (free.weight[:, neurons][None] if np.array_equal(alpha[neurons], free.penalty.per_neuron(N)[neurons])
                 else _ridge_start(refit, group_form, alpha_t[None, neurons], neurons))[0]  # (D, n)
        for r in np.unique(rank[neurons]):
            subset = neurons[rank[neurons] == r]
            rows = torch.as_tensor(np.searchsorted(neurons, subset), device=start.device)
            init = start[:, rows].T.reshape(-1, F, L)
            fitted = fit_als(refit, init, alpha_t[subset], F, L, int(r), form=group_form, neurons=subset)
            weight[:, torch.as_tensor(subset, device=weight.device)] = fitted.reshape(-1, F * L).T
    _check_finite_solution(weight, alphas.cpu().numpy())
    return ClosedFormSolution(weight, penalty, refit, scores, rank=rank)


def _choose_rank(scores: np.ndarray, candidates: np.ndarray, ranks: tuple[int, ...], *, per_neuron: bool,
                 pooling: float, fold_scores: np.ndarray | None = None,
                 rule: str = "best") -> tuple[np.ndarray, np.ndarray]:
    """Each neuron's rank and candidate penalty from held-out scores.

    Within each rank the penalty is chosen by the penalties' rule
    (:func:`skstrf._selection.choose`: partial pooling, ties to the larger penalty). The rank
    is then chosen on each neuron's own score at its penalty, not pooled: a rank is the
    shape of one cell's STRF, and pooling would lend every cell the rank that the most
    complex cells of the population need. ``rule``:

    - ``"best"``: the rank with the best score (scikit-learn's ``GridSearchCV`` convention).
      Too low a rank costs a nearly-but-not-exactly separable cell far more than a
      component too many costs an exactly separable one (benchmarks/RESULTS.md, "Why the
      separable kernel trails vanilla on some songs").
    - ``"one_se"``: the parsimonious rule of :func:`skstrf._selection.choose_form`: a neuron
      moves to a higher rank only when it scores better there and, with ``fold_scores`` of
      several folds, when its gain over the lower rank exceeds the gain's standard error over
      the folds (a second component fitted to noise then rarely wins; without folds it is
      ``"best"``).

    Ties (and neurons with no finite score) go to the lower rank. Without ``per_neuron``, the
    rank is chosen on the mean score over neurons, the same for every neuron.

    Parameters
    ----------
    scores : ndarray of shape (n_ranks, n_candidates, n_neurons)
    candidates : ndarray of shape (n_candidates, n_neurons)
        Each neuron's candidate penalties, in the same order for every neuron.
    ranks : tuple of int
        Increasing.
    fold_scores : ndarray of shape (n_folds, n_ranks, n_candidates, n_neurons) or None
        The same scores per cross-validation fold (used by ``"one_se"`` only); None
        (validation stimuli): the better score alone decides.
    rule : {"best", "one_se"}, default="best"

    Returns
    -------
    rank : ndarray of int of shape (n_neurons,)
    which : ndarray of int of shape (n_neurons,)
        Index of each neuron's penalty among its candidates.
    """
    if rule not in RANK_RULES:
        raise ValueError(f"rank_rule must be one of {RANK_RULES}; got {rule!r}")
    R, A, N = scores.shape
    # the candidates' order (the same for every neuron) stands for their values
    keys = np.argsort(np.argsort(candidates[:, 0], kind="stable"), kind="stable").astype(np.float64)
    which = np.stack([np.searchsorted(np.sort(keys), choose(scores[r], keys, N, per_neuron=per_neuron,
                                                            pooling=pooling)) for r in range(R)])
    which = np.argsort(keys, kind="stable")[which]  # (R, N) indices into the candidates
    neurons = np.arange(N)
    own = scores[np.arange(R)[:, None], which, neurons[None]]  # (R, N)
    folds = (None if rule == "best" or fold_scores is None or fold_scores.shape[0] < 2
             else np.asarray(fold_scores, dtype=np.float64)[:, np.arange(R)[:, None], which, neurons[None]])
    with warnings.catch_warnings():  # a rank with no finite score: NaN, then -inf
        warnings.simplefilter("ignore", RuntimeWarning)
        if not per_neuron:
            own = np.broadcast_to(np.nanmean(own, axis=1, keepdims=True), own.shape)
            if folds is not None:
                folds = np.broadcast_to(np.nanmean(folds, axis=2, keepdims=True), folds.shape)
        own = np.nan_to_num(own, nan=-np.inf)
        best = np.zeros(N, dtype=np.int64)
        for r in range(1, R):  # increasing ranks: up only for a better score ("one_se": a sure one)
            better = own[r] > own[best, neurons]
            if folds is not None:
                gain = folds[:, r] - folds[:, best, neurons]  # (n_folds, N)
                error = np.nanstd(gain, axis=0, ddof=1) / np.sqrt(np.sum(np.isfinite(gain), axis=0))
                better &= np.nanmean(gain, axis=0) > np.nan_to_num(error, nan=np.inf)
            best = np.where(better, r, best)
    return np.asarray(ranks, dtype=np.int64)[best], which[best, neurons]


#: Every solver, by the name the estimator's ``solver`` option gives it.
SOLVERS: dict[str, Solver] = {
    "ridge": Solver("ridge", "ridge", frozenset({"vanilla"}), solve=solve_ridge, refit=ridge_weights),
    "als": Solver("als", "ALS", frozenset({"separable"}), solve=solve_als),
    "lbfgs": Solver("lbfgs", "L-BFGS", frozenset({"parametric"}), polish=fit_lbfgs),
    "gradient": Solver("gradient", "gradient", None),
}

#: The solver ``solver="auto"`` picks for a linear model of each kernel (gradient otherwise).
AUTO_SOLVERS = {"vanilla": "ridge", "separable": "als", "parametric": "lbfgs"}
