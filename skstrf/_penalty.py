"""The penalty on the STRF weights: its units, its quadratic form, and every form of it the
losses and the closed-form solvers need.

Every model of :class:`~skstrf.STRFRegressor` penalises each neuron's standardised kernel
``w_n`` (its ``C * F * L`` weights in the design's column order: channel, band, lag, the lag
fastest) by ``alpha_n * w_n' Q w_n``. This module owns that term:

- **its units** (:func:`band_scales`): which scale each band's weights are penalised in;
- **its shape** ``Q`` (:class:`QuadraticForm`): the identity (ridge), or any symmetric
  positive definite matrix (e.g. a smoothness prior) built by :func:`penalty_form` from
  the estimator's options;
- **its value** for the training losses (:meth:`Penalty.value`, differentiable by autograd:
  the gradient-trained models and the statistics step use it);
- **a change of variables** for the closed forms (:meth:`QuadraticForm.whiten`,
  :meth:`QuadraticForm.unwhiten`): with ``w = T v`` and ``T' Q T = I`` the penalty becomes
  ``alpha_n |v_n|^2``, so the ridge path of any ``Q`` is the identity's path on whitened
  statistics;
- **its restriction to one factor** of a separable kernel, for the half-steps of ALS
  (:meth:`QuadraticForm.separable_half_step`).

A new quadratic penalty is a new :class:`QuadraticForm` made by :func:`penalty_form` (this
file) and the estimator parameter that asks for it (``estimator.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ._design import DesignStatistics

__all__ = ["X_SCALE_FLOOR", "band_scales", "QuadraticForm", "Penalty", "penalty_form",
           "project_separable", "second_difference_gram", "smoothness_form", "ALS_PENALTY_SCALE"]

#: Each input band is standardised by its own standard deviation, but by no less than this
#: fraction of the median band's: nearly silent bands (a log spectrogram's floor) are not
#: amplified to the level of the informative ones, so their weights are penalised in units
#: that do not make them cheap (see the user guide, "Solvers").
X_SCALE_FLOOR = 0.1

#: ALS's penalty as a fraction of the one cross-validation chose for the free kernel. The
#: rank constraint regularises too, so a separable kernel might need less shrinkage; the
#: tuning seeds of ``benchmarks/defaults_realistic.py`` gave no reason to change it
#: (``benchmarks/RESULTS.md``), so the default keeps the free kernel's penalty.
ALS_PENALTY_SCALE = 1.0


def band_scales(moments) -> tuple[np.ndarray, np.ndarray]:
    """The mean and scale of each input band: the units its weights are penalised in.

    Parameters
    ----------
    moments : skstrf._validation.FrameMoments
        Of the linear stage's input over the training frames.

    Returns
    -------
    mean, scale : ndarray of shape (n_channels * n_freqs,)
        Each band's standard deviation, floored at :data:`X_SCALE_FLOOR` times the median
        band's (a constant band gets 1).
    """
    return moments.standardisation(relative_floor=X_SCALE_FLOOR)


class QuadraticForm:
    """The matrix ``Q`` of the penalty ``w' Q w`` on one neuron's standardised kernel.

    Parameters
    ----------
    shape : (n_channels, n_freqs, n_lags)
        The kernel's shape; ``Q`` is over its ``C * F * L`` weights in that order.
    matrix : Tensor of shape (C * F * L, C * F * L) or None, default=None
        Symmetric positive definite; None is the identity (plain ridge), for which every
        operation below is free.
    name : str, default="identity"
        What the form is, for messages.
    """

    def __init__(self, shape: tuple[int, int, int], matrix: torch.Tensor | None = None,
                 name: str = "identity") -> None:
        self.shape = tuple(int(n) for n in shape)
        size = int(np.prod(self.shape))
        if matrix is not None:
            matrix = torch.as_tensor(matrix, dtype=torch.float64)
            if matrix.shape != (size, size):
                raise ValueError(f"a penalty matrix for kernels of shape {self.shape} must be "
                                 f"({size}, {size}); got {tuple(matrix.shape)}")
        self.matrix = matrix
        self.name = name
        self._whitening: torch.Tensor | None = None

    @property
    def is_identity(self) -> bool:
        return self.matrix is None

    def __repr__(self) -> str:
        return f"QuadraticForm({self.name}, shape={self.shape})"

    # ------------------------------------------------------------------ losses
    def quadratic(self, weight: torch.Tensor) -> torch.Tensor:
        """``w_n' Q w_n`` for each row of ``weight`` (N, D), differentiable by autograd."""
        if self.matrix is None:
            return (weight * weight).sum(dim=-1)
        q = self.matrix.to(device=weight.device, dtype=weight.dtype)
        return ((weight @ q) * weight).sum(dim=-1)

    # ------------------------------------------------------------ closed forms
    def whitening(self, device=None) -> torch.Tensor | None:
        """``T`` (D, D) with ``T' Q T = I``, so that ``w = T v`` has penalty ``|v|^2``;
        None for the identity. ``T = U diag(lambda)^(-1/2)`` from ``Q``'s eigendecomposition,
        made once per form."""
        if self.matrix is None:
            return None
        if self._whitening is None:
            evals, evecs = torch.linalg.eigh(self.matrix)
            if not bool(evals.min() > 1e-12 * evals.max().clamp(min=1e-300)):
                raise ValueError(f"the penalty {self.name} is not positive definite: a closed "
                                 "form needs every weight penalised")
            self._whitening = evecs * evals.rsqrt()
        return self._whitening.to(device=device)

    def whiten(self, stats):
        """:class:`~skstrf._design.DesignStatistics` of the whitened design ``Z T``.

        The intercept column (the last) is left as it is. The identity returns ``stats``
        itself (no copy); None stays None.
        """
        if stats is None or self.matrix is None:
            return stats
        T = self.whitening(stats.gram.device).to(stats.gram.dtype)
        D = T.shape[0]
        gram = stats.gram.clone()
        gram[:, :D, :] = T.T @ stats.gram[:, :D, :]
        gram[:, :, :D] = gram[:, :, :D] @ T
        cross = stats.cross.clone()
        cross[:, :D] = T.T @ stats.cross[:, :D]
        return DesignStatistics(gram, cross, stats.sq, stats.count)

    def unwhiten(self, weights: torch.Tensor) -> torch.Tensor:
        """Weights ``w = T v`` from whitened ones ``v`` of shape (..., D, N)."""
        if self.matrix is None:
            return weights
        return self.whitening(weights.device).to(weights.dtype) @ weights

    # --------------------------------------------------------------------- ALS
    def separable_half_step(self, fixed: torch.Tensor, solve_freq: bool) -> torch.Tensor:
        """The penalty's matrix over one factor of a separable kernel, the other fixed.

        With ``W = sum_r a_r b_r'`` (a over bands, b over lags; one channel) and the factor
        ``fixed`` held, ``vec(W)`` is linear in the free factor, ``vec(W) = M x``, and the
        penalty is ``x' (M' Q M) x``.

        Parameters
        ----------
        fixed : Tensor of shape (B, rank, n_lags) when solving the band factors, else
            (B, rank, n_freqs)
        solve_freq : bool

        Returns
        -------
        Tensor of shape (B, k, k)
            ``k = rank * n_freqs`` (or ``rank * n_lags``), unknowns ordered (band, rank)
            (or (lag, rank)), as :func:`skstrf._solvers.fit_als` orders them.
        """
        C, F, L = self.shape
        size = C * (F if solve_freq else L)
        batch, rank = fixed.shape[:2]
        if self.matrix is None:
            # ||sum_r a_r b_r'||^2 = sum_{r,s} (a_r . a_s)(b_r . b_s): kron(I, fixed fixed')
            gram_fixed = fixed @ fixed.transpose(1, 2)  # (B, rank, rank)
            eye = torch.eye(size, dtype=fixed.dtype, device=fixed.device)
            return torch.einsum("ij,brs->birjs", eye, gram_fixed).reshape(batch, size * rank, size * rank)
        Q = self.matrix.to(device=fixed.device, dtype=fixed.dtype).reshape(C, F, L, C, F, L)
        return project_separable(Q, fixed, solve_freq).reshape(batch, size * rank, size * rank)


def project_separable(G: torch.Tensor, fixed: torch.Tensor, solve_freq: bool) -> torch.Tensor:
    """``M' G M`` for a (C, F, L, C, F, L) matrix ``G`` and the map ``M`` from one factor of a
    separable kernel to its weights, the other factor ``fixed`` (see
    :meth:`QuadraticForm.separable_half_step`). Returns (B, C, size, rank, C, size, rank)."""
    if solve_freq:  # unknowns (c, f, r); project lags
        return torch.einsum("brl,cflgek,bsk->bcfrges", fixed, G, fixed)
    return torch.einsum("brf,cflgek,bse->bclrgks", fixed, G, fixed)


@dataclass(frozen=True)
class Penalty:
    """The penalty of a fit: ``alpha_n * w_n' Q w_n`` on each neuron's standardised kernel.

    Attributes
    ----------
    form : QuadraticForm
        ``Q``, shared by the neurons.
    alpha : ndarray of shape (n_neurons,) or float
        Each neuron's multiplier (a float: the same for all).
    """

    form: QuadraticForm
    alpha: np.ndarray | float = 0.0

    def __post_init__(self) -> None:
        alpha = self.alpha
        if isinstance(alpha, torch.Tensor):
            alpha = alpha.detach().cpu().numpy()
        alpha = np.asarray(alpha, dtype=np.float64)
        object.__setattr__(self, "alpha", float(alpha) if alpha.ndim == 0 else alpha)

    def value(self, weight: torch.Tensor) -> torch.Tensor:
        """Mean over neurons of ``alpha_n w_n' Q w_n`` for standardised kernels ``weight``
        (N, D): the penalty term of every training loss (differentiable by autograd; 0 when
        every ``alpha_n`` is 0)."""
        if not np.any(self.alpha):
            return weight.new_zeros(())
        alpha = torch.as_tensor(self.alpha, dtype=weight.dtype, device=weight.device)
        return (alpha * self.form.quadratic(weight)).sum() / weight.shape[0]

    def with_alpha(self, alpha) -> "Penalty":
        """This penalty with other multipliers."""
        return Penalty(self.form, alpha)

    def per_neuron(self, n_neurons: int) -> np.ndarray:
        """The multiplier of each of ``n_neurons`` neurons, float64."""
        return np.broadcast_to(np.asarray(self.alpha, dtype=np.float64), (n_neurons,)).copy()


def second_difference_gram(n: int) -> np.ndarray:
    """``D' D`` for the second-difference operator ``D`` over ``n`` points (rows
    ``[1, -2, 1]``): the curvature penalty of a profile. Zero for fewer than 3 points."""
    if n < 3:
        return np.zeros((n, n))
    D = np.zeros((n - 2, n))
    for i in range(n - 2):
        D[i, i:i + 3] = (1.0, -2.0, 1.0)
    return D.T @ D


def smoothness_form(shape: tuple[int, int, int], along_freq: float = 0.0, along_lag: float = 0.0) -> QuadraticForm:
    """The identity mixed with second-difference (curvature) penalties along bands and lags.

    ``Q = (1 - a - b) I + a S_freq + b S_lag``, with ``S_freq`` the curvature of each
    kernel's profile along the bands at every lag and channel (``S_lag`` along the lags),
    each scaled to a mean eigenvalue of 1 so that ``Q``'s is 1 too and ``alpha`` keeps its
    meaning. A second difference ignores constant and linear profiles, so the identity part
    (``a + b < 1``) keeps every weight penalised.

    Parameters
    ----------
    shape : (n_channels, n_freqs, n_lags)
    along_freq, along_lag : float in [0, 1)
        The shares ``a`` and ``b``, with ``a + b < 1``.
    """
    if along_freq < 0 or along_lag < 0 or along_freq + along_lag >= 1:
        raise ValueError(
            f"smooth_freq={along_freq!r} and smooth_lag={along_lag!r} are the shares of the "
            "penalty given to curvature along bands and lags: each must be >= 0 and their sum "
            "< 1 (the identity keeps the rest, so that every weight is penalised)."
        )
    C, F, L = shape
    Q = (1.0 - along_freq - along_lag) * np.eye(C * F * L)
    for share, size, place in ((along_freq, F, lambda g: np.kron(np.eye(C), np.kron(g, np.eye(L)))),
                               (along_lag, L, lambda g: np.kron(np.eye(C * F), g))):
        gram = second_difference_gram(size)
        if share > 0 and gram.any():
            term = place(gram)
            Q += share * term / (np.trace(term) / term.shape[0])
        elif share > 0:  # fewer than 3 bands (or lags): nothing to smooth, the identity's share
            Q += share * np.eye(C * F * L)
    name = f"smoothness(freq={along_freq:g}, lag={along_lag:g})"
    return QuadraticForm(shape, torch.as_tensor(Q), name=name)


def penalty_form(params, shape: tuple[int, int, int]) -> QuadraticForm:
    """The penalty's quadratic form that the estimator's options ask for.

    Parameters
    ----------
    params : STRFRegressor
        The estimator (its options are read, not changed).
    shape : (n_channels, n_freqs, n_lags)
        The kernel's shape.

    Returns
    -------
    QuadraticForm
        The identity (the standardised weights' squared norm: ridge), mixed with curvature
        penalties along bands and lags when ``smooth_freq`` or ``smooth_lag`` is positive
        (:func:`smoothness_form`).
    """
    along_freq, along_lag = float(params.smooth_freq), float(params.smooth_lag)
    if along_freq == 0 and along_lag == 0:
        return QuadraticForm(shape)
    return smoothness_form(shape, along_freq, along_lag)
