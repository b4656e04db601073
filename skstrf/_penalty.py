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

import numbers
from dataclasses import dataclass

import numpy as np
import torch

from ._design import DesignStatistics

__all__ = ["smoothness_grid", "X_SCALE_FLOOR", "band_scales", "QuadraticForm", "Penalty", "penalty_form",
           "project_separable", "second_difference_gram", "smoothness_form", "ALS_PENALTY_SCALE",
           "check_feature_spaces", "space_candidates", "PenaltyFamily", "penalty_family"]

#: Each input band is standardised by its own standard deviation, but by no less than this
#: fraction of the median band's of its feature space (:func:`band_scales`): nearly silent
#: bands (a log spectrogram's floor) are not amplified above the typical band of their space,
#: so their weights are penalised in units that do not make them cheap (see the user guide,
#: "Solvers"). 1: no band is scaled below its space's median band; on every case of
#: ``benchmarks/defaults_cases.py`` it did at least as well as the former 0.1, and better on
#: the auditory nerve (``benchmarks/RESULTS.md``, "Defaults on every case").
X_SCALE_FLOOR = 1.0

#: ALS's penalty as a fraction of the one cross-validation chose for the free kernel. The
#: rank constraint regularises too, so a separable kernel might need less shrinkage. On
#: every case of ``benchmarks/defaults_cases.py --als`` (rank 1 and rank "auto") half the
#: penalty won on the auditory nerve (+0.005) but lost up to 0.004 on continuous recordings
#: (``benchmarks/RESULTS.md``, "The remaining candidates"), so the default keeps the free
#: kernel's penalty.
ALS_PENALTY_SCALE = 1.0


def band_scales(moments, n_freqs: int, space_of_band: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """The mean and scale of each input band: the units its weights are penalised in.

    Each band's scale is its standard deviation, floored at :data:`X_SCALE_FLOOR` times the
    median standard deviation of the bands of its **feature space, in its channel**. The
    bands of one space share units (a spectrogram's bands) while spaces may not (a
    spectrogram in dB next to an envelope in pascals), so the floor is taken within each
    space: multiplying one whole space by a constant multiplies its scales by that constant
    and leaves every standardised band, and the fit, as they were. Each channel of a
    prefilter (AdapTrans' ON and OFF) is its own transformation of the space, whose typical
    size may differ from the other's, so its bands are compared with the same channel's: a
    weaker channel is not floored as a whole to the other's median (a relative penalty
    between channels that nothing chose), while a band silent in X is silent, and floored,
    in every channel. The prefilters are positively homogeneous per band (linear filters,
    rectified or not), so pooling the channels would keep the invariance too; without a
    prefilter the two rules are the same.

    Parameters
    ----------
    moments : skstrf._moments.FrameMoments
        Of the linear stage's input over the training frames: ``n_channels * n_freqs``
        entries, channel-major (all bands of channel 0, then of channel 1).
    n_freqs : int
        Bands of X (per channel).
    space_of_band : ndarray of int of shape (n_freqs,) or None, default=None
        The feature space of each band (:func:`check_feature_spaces`); None: one space.

    Returns
    -------
    mean, scale : ndarray of shape (n_channels * n_freqs,)
        Each band's mean and floored standard deviation (a constant band gets scale 1).
    """
    n_entries = np.size(moments.mean)
    if n_freqs < 1 or n_entries % n_freqs:
        raise ValueError(f"band_scales: {n_entries} entries are not whole channels of {n_freqs} bands")
    space = np.zeros(n_freqs, dtype=np.int64) if space_of_band is None else np.asarray(space_of_band, dtype=np.int64)
    if space.shape != (n_freqs,):
        raise ValueError(f"space_of_band must give the space of each of the {n_freqs} bands; got shape {space.shape}")
    n_spaces = int(space.max()) + 1
    channel = np.arange(n_entries // n_freqs)[:, None]
    groups = (channel * n_spaces + space[None, :]).ravel()  # one group per (channel, space)
    return moments.standardisation(relative_floor=X_SCALE_FLOOR, groups=groups)


class QuadraticForm:
    """The matrix ``Q`` of the penalty ``w' Q w`` on one neuron's standardised kernel.

    Parameters
    ----------
    shape : (n_channels, n_freqs, n_lags)
        The kernel's shape; ``Q`` is over its ``C * F * L`` weights in that order.
    matrix : Tensor of shape (C * F * L, C * F * L) or None, default=None
        Symmetric positive definite; None is the identity (plain ridge), for which every
        operation below is free.
    diagonal : array-like of shape (C * F * L,) or None, default=None
        A positive diagonal instead of ``matrix`` (e.g. a penalty per feature space): its
        operations are scalings.
    name : str, default="identity"
        What the form is, for messages.
    """

    def __init__(self, shape: tuple[int, int, int], matrix: torch.Tensor | None = None,
                 name: str = "identity", diagonal=None) -> None:
        self.shape = tuple(int(n) for n in shape)
        size = int(np.prod(self.shape))
        if matrix is not None:
            matrix = torch.as_tensor(matrix, dtype=torch.float64)
            if matrix.shape != (size, size):
                raise ValueError(f"a penalty matrix for kernels of shape {self.shape} must be "
                                 f"({size}, {size}); got {tuple(matrix.shape)}")
        if diagonal is not None:
            diagonal = torch.as_tensor(diagonal, dtype=torch.float64)
            if diagonal.shape != (size,) or not bool((diagonal > 0).all()):
                raise ValueError(f"a penalty diagonal for kernels of shape {self.shape} must hold "
                                 f"{size} positive numbers")
            if matrix is not None:
                raise ValueError("give a penalty's matrix or its diagonal, not both")
        self.matrix = matrix
        self.diagonal = diagonal
        self.name = name
        self._whitening: torch.Tensor | None = None

    @property
    def is_identity(self) -> bool:
        return self.matrix is None and self.diagonal is None

    def dense(self) -> torch.Tensor:
        """``Q`` as a (D, D) matrix, float64."""
        if self.matrix is not None:
            return self.matrix
        size = int(np.prod(self.shape))
        return torch.diag(self.diagonal) if self.diagonal is not None else torch.eye(size, dtype=torch.float64)

    def main_diagonal(self) -> torch.Tensor:
        """The diagonal of ``Q`` (D,), float64, without forming ``Q``."""
        if self.matrix is not None:
            return torch.diagonal(self.matrix)
        if self.diagonal is not None:
            return self.diagonal
        return torch.ones(int(np.prod(self.shape)), dtype=torch.float64)

    def __repr__(self) -> str:
        return f"QuadraticForm({self.name}, shape={self.shape})"

    # ------------------------------------------------------------------ losses
    def quadratic(self, weight: torch.Tensor) -> torch.Tensor:
        """``w_n' Q w_n`` for each row of ``weight`` (N, D), differentiable by autograd."""
        if self.diagonal is not None:
            return (weight * weight * self.diagonal.to(device=weight.device, dtype=weight.dtype)).sum(dim=-1)
        if self.matrix is None:
            return (weight * weight).sum(dim=-1)
        q = self.matrix.to(device=weight.device, dtype=weight.dtype)
        return ((weight @ q) * weight).sum(dim=-1)

    # ------------------------------------------------------------ closed forms
    def whitening(self, device=None) -> torch.Tensor | None:
        """``T`` (D, D) with ``T' Q T = I``, so that ``w = T v`` has penalty ``|v|^2``;
        None for the identity. ``T = U diag(lambda)^(-1/2)`` from ``Q``'s eigendecomposition,
        made once per form (for a diagonal ``Q``, the diagonal of ``T``: a vector)."""
        if self.diagonal is not None:
            return self.diagonal.rsqrt().to(device=device)
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
        if stats is None or self.is_identity:
            return stats
        T = self.whitening(stats.gram.device).to(stats.gram.dtype)
        if self.diagonal is not None:  # a scaling of the design's columns
            D = T.shape[0]
            scale = torch.cat([T, T.new_ones(1)])
            return DesignStatistics(stats.gram * scale[:, None] * scale[None, :], stats.cross * scale[:, None],
                                    stats.sq, stats.count)
        D = T.shape[0]
        gram = stats.gram.clone()
        gram[:, :D, :] = T.T @ stats.gram[:, :D, :]
        gram[:, :, :D] = gram[:, :, :D] @ T
        cross = stats.cross.clone()
        cross[:, :D] = T.T @ stats.cross[:, :D]
        return DesignStatistics(gram, cross, stats.sq, stats.count)

    def unwhiten(self, weights: torch.Tensor) -> torch.Tensor:
        """Weights ``w = T v`` from whitened ones ``v`` of shape (..., D, N)."""
        if self.diagonal is not None:
            return self.whitening(weights.device).to(weights.dtype)[:, None] * weights
        if self.matrix is None:
            return weights
        return self.whitening(weights.device).to(weights.dtype) @ weights

    def in_basis(self, frame) -> "QuadraticForm":
        """The form on the coefficients of a lag basis ``frame`` (n_lags, n_basis, orthonormal
        columns): with ``w = J v``, ``J = I (x) frame``, the penalty ``w' Q w`` is
        ``v' (J' Q J) v``. The identity stays the identity and a diagonal that is the same
        at every lag stays diagonal; None returns this form."""
        if frame is None:
            return self
        frame = torch.as_tensor(frame, dtype=torch.float64)
        C, F, L = self.shape
        shape = (C, F, frame.shape[1])
        if self.is_identity:
            return QuadraticForm(shape, name=self.name)
        if self.diagonal is not None:
            per_lag = self.diagonal.reshape(C * F, L)
            if bool((per_lag == per_lag[:, :1]).all()):
                return QuadraticForm(shape, diagonal=per_lag[:, :1].expand(-1, shape[2]).reshape(-1), name=self.name)
        Q = self.dense().reshape(C * F, L, C * F, L)
        projected = torch.einsum("akbl,ki,lj->aibj", Q, frame, frame).reshape(C * F * shape[2], -1)
        return QuadraticForm(shape, 0.5 * (projected + projected.T), name=f"{self.name} in a lag basis")

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
        if self.is_identity:
            # ||sum_r a_r b_r'||^2 = sum_{r,s} (a_r . a_s)(b_r . b_s): kron(I, fixed fixed')
            gram_fixed = fixed @ fixed.transpose(1, 2)  # (B, rank, rank)
            eye = torch.eye(size, dtype=fixed.dtype, device=fixed.device)
            return torch.einsum("ij,brs->birjs", eye, gram_fixed).reshape(batch, size * rank, size * rank)
        Q = self.dense().to(device=fixed.device, dtype=fixed.dtype).reshape(C, F, L, C, F, L)
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
    """The penalty of a fit: ``alpha_n * w_n' Q_n w_n`` on each neuron's standardised kernel.

    Attributes
    ----------
    form : QuadraticForm or tuple of QuadraticForm
        ``Q``, shared by the neurons; or the candidate forms, each neuron's given by ``index``.
    alpha : ndarray of shape (n_neurons,) or float
        Each neuron's multiplier (a float: the same for all).
    index : ndarray of int of shape (n_neurons,) or None
        With several forms, the form of each neuron.
    """

    form: QuadraticForm | tuple
    alpha: np.ndarray | float = 0.0
    index: np.ndarray | None = None

    def __post_init__(self) -> None:
        alpha = self.alpha
        if isinstance(alpha, torch.Tensor):
            alpha = alpha.detach().cpu().numpy()
        alpha = np.asarray(alpha, dtype=np.float64)
        object.__setattr__(self, "alpha", float(alpha) if alpha.ndim == 0 else alpha)
        if isinstance(self.form, (tuple, list)):
            forms = tuple(self.form)
            index = np.zeros(0, dtype=np.int64) if self.index is None else np.asarray(self.index, dtype=np.int64)
            if len(forms) == 1 and self.index is None:
                object.__setattr__(self, "form", forms[0])
            else:
                object.__setattr__(self, "form", forms)
                object.__setattr__(self, "index", index)

    @property
    def forms(self) -> tuple:
        """The candidate forms (one for a shared form)."""
        return self.form if isinstance(self.form, tuple) else (self.form,)

    def groups(self, n_neurons: int):
        """``(form, neurons)`` for each form that some neuron uses."""
        if not isinstance(self.form, tuple):
            yield self.form, np.arange(n_neurons)
            return
        for k, form in enumerate(self.form):
            neurons = np.flatnonzero(self.index == k)
            if neurons.size:
                yield form, neurons

    def value(self, weight: torch.Tensor) -> torch.Tensor:
        """Mean over neurons of ``alpha_n w_n' Q_n w_n`` for standardised kernels ``weight``
        (N, D): the penalty term of every training loss (differentiable by autograd; 0 when
        every ``alpha_n`` is 0)."""
        if not np.any(self.alpha):
            return weight.new_zeros(())
        alpha = torch.as_tensor(self.per_neuron(weight.shape[0]), dtype=weight.dtype, device=weight.device)
        if not isinstance(self.form, tuple):
            return (alpha * self.form.quadratic(weight)).sum() / weight.shape[0]
        total = weight.new_zeros(())
        for form, neurons in self.groups(weight.shape[0]):
            rows = torch.as_tensor(neurons, device=weight.device)
            total = total + (alpha[rows] * form.quadratic(weight[rows])).sum()
        return total / weight.shape[0]

    def with_alpha(self, alpha) -> "Penalty":
        """This penalty with other multipliers."""
        return Penalty(self.form, alpha, self.index)

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


def check_feature_spaces(spaces, n_freqs: int, names=None) -> np.ndarray | None:
    """The feature space of each band, from the estimator's ``feature_spaces``.

    Parameters
    ----------
    spaces : None, sequence of int, sequence of sequences of int, or dict
        Sizes of consecutive groups of bands (summing to ``n_freqs``); or the band indices
        of each space (a partition of the bands); or a dict of space name to band indices
        or, after a fit on a DataFrame, band names.
    n_freqs : int
    names : ndarray of str or None
        The band names (a DataFrame's columns), when known.

    Returns
    -------
    ndarray of int of shape (n_freqs,) or None
        The space of each band; None without spaces.
    """
    if spaces is None:
        return None
    what = ("feature_spaces must be the sizes of consecutive groups of bands (e.g. [34, 1]), "
            "a list of each space's band indices, or a dict of space name to band indices or names")
    if isinstance(spaces, dict):
        groups = list(spaces.values())
    elif isinstance(spaces, (str, bytes)) or not hasattr(spaces, "__len__"):
        raise ValueError(f"{what}; got {spaces!r}")
    else:
        groups = list(spaces)
    if len(groups) == 0:
        raise ValueError(f"{what}; got no space")
    if all(isinstance(g, (numbers.Integral, np.integer)) and not isinstance(g, bool) for g in groups):
        sizes = np.asarray(groups, dtype=np.int64)
        if (sizes < 1).any() or sizes.sum() != n_freqs:
            raise ValueError(f"feature_spaces as sizes must be positive and sum to the {n_freqs} bands of X; "
                             f"got {list(map(int, sizes))} (sum {int(sizes.sum())})")
        return np.repeat(np.arange(sizes.size), sizes)
    space = np.full(n_freqs, -1, dtype=np.int64)
    for k, group in enumerate(groups):
        if isinstance(group, (str, bytes)) or not hasattr(group, "__len__") or len(group) == 0:
            raise ValueError(f"{what}; space {k} is {group!r}")
        for band in group:
            if isinstance(band, str):
                if names is None or band not in list(names):
                    raise ValueError(f"feature_spaces names band {band!r}, but X's bands have "
                                     f"{'no names' if names is None else 'no band of that name'}")
                band = list(names).index(band)
            if isinstance(band, bool) or not isinstance(band, (numbers.Integral, np.integer)) \
                    or not 0 <= band < n_freqs:
                raise ValueError(f"feature_spaces: band {band!r} of space {k} is not a band index of X "
                                 f"(0 to {n_freqs - 1})")
            if space[band] != -1:
                raise ValueError(f"feature_spaces: band {band} is in spaces {space[band]} and {k}; "
                                 "each band belongs to one space")
            space[band] = k
    if (space == -1).any():
        raise ValueError(f"feature_spaces leaves bands {np.flatnonzero(space == -1)[:10].tolist()} in no "
                         "space; every band belongs to one")
    return space


#: Relative penalties of the second space searched by default with two feature spaces: half
#: decades from 1/100 to 100 (1: the shared penalty), and 1e-4 and 1e4, which all but drop a
#: space that carries nothing.
TWO_SPACE_RATIOS = np.concatenate([[1e-4], 10.0 ** np.arange(-2.0, 2.5, 0.5), [1e4]])
#: Relative penalties of each further space with three spaces or more (decades of two, and the
#: ends that all but drop a space): the grid of every combination grows as 5 ** (n_spaces - 1) (25 candidates for 3 spaces, 125 for 4); beyond
#: MAX_SPACE_CANDIDATES, that many combinations are drawn at random (a fixed seed), the shared
#: penalty always among them.
SPACE_FACTORS = (1e-4, 0.01, 1.0, 100.0, 1e4)
MAX_SPACE_CANDIDATES = 125


def space_candidates(n_spaces: int, grid=None) -> np.ndarray:
    """The candidate relative penalties of the feature spaces, shape (n_candidates, n_spaces).

    Parameters
    ----------
    n_spaces : int
    grid : array-like of shape (n_candidates, n_spaces) or None
        The estimator's ``space_penalties``; None: :data:`TWO_SPACE_RATIOS` for two spaces,
        every combination of :data:`SPACE_FACTORS` for more (the first space's factor 1), or
        :data:`MAX_SPACE_CANDIDATES` of them drawn at random (seed 0) with the shared one.
    """
    if grid is not None:
        grid = np.asarray(grid, dtype=np.float64)
        if grid.ndim == 1 and n_spaces == 2:
            grid = np.stack([np.ones_like(grid), grid], axis=1)
        if grid.ndim != 2 or grid.shape[1] != n_spaces or grid.shape[0] == 0 \
                or not np.isfinite(grid).all() or (grid <= 0).any():
            raise ValueError(f"space_penalties must hold positive relative penalties, one row per candidate "
                             f"and one column per feature space ({n_spaces}); got shape {grid.shape}")
        return grid
    if n_spaces == 1:
        return np.ones((1, 1))
    if n_spaces == 2:
        return np.stack([np.ones_like(TWO_SPACE_RATIOS), TWO_SPACE_RATIOS], axis=1)
    n_all = len(SPACE_FACTORS) ** (n_spaces - 1)
    if n_all <= MAX_SPACE_CANDIDATES:
        mesh = np.meshgrid(*([SPACE_FACTORS] * (n_spaces - 1)), indexing="ij")
        return np.column_stack([np.ones(mesh[0].size)] + [m.ravel() for m in mesh])
    rng = np.random.default_rng(0)
    drawn = rng.choice(SPACE_FACTORS, size=(MAX_SPACE_CANDIDATES - 1, n_spaces - 1))
    others = np.vstack([np.ones((1, n_spaces - 1)), drawn])
    return np.column_stack([np.ones(MAX_SPACE_CANDIDATES), others])


@dataclass(frozen=True)
class PenaltyFamily:
    """The candidate penalty forms a fit chooses among by cross-validation.

    Attributes
    ----------
    forms : tuple of QuadraticForm
    spaces : ndarray of shape (n_forms, n_spaces)
        Each form's penalty multiplier per feature space (normalised so that the mean over
        the weights is 1: ``alpha`` keeps its meaning).
    smoothness : ndarray of shape (n_forms, 2)
        Each form's shares of curvature along bands and lags.
    plain : int or None
        The form of plain ridge (one penalty for every space, no smoothness), when it is a
        candidate: the choice falls back to it unless another form scores better by more
        than the noise of the cross-validation (:func:`skstrf._selection.choose_form`).
    space_of_band : ndarray of int of shape (n_freqs,) or None
        The feature space of each band.
    """

    forms: tuple
    spaces: np.ndarray
    smoothness: np.ndarray
    plain: int | None
    space_of_band: np.ndarray | None


def penalty_family(params, shape: tuple[int, int, int], names=None, frame=None) -> PenaltyFamily:
    """The candidate penalty forms that the estimator's options ask for.

    The identity (ridge); with ``feature_spaces``, a diagonal penalty per space for every
    candidate of relative penalties (:func:`space_candidates`); with ``smooth_freq`` or
    ``smooth_lag``, curvature penalties along bands and lags mixed with it
    (:func:`smoothness_form`), a sequence of shares being a grid; every combination is a
    candidate.

    Parameters
    ----------
    params : STRFRegressor
        The estimator (its options are read, not changed).
    shape : (n_channels, n_freqs, n_lags)
        The kernel's shape.
    names : ndarray of str or None, default=None
        X's band names, when X was a DataFrame.
    frame : ndarray of shape (n_lags, n_basis) or None, default=None
        An orthonormal lag basis: the forms are then on its coefficients
        (:meth:`QuadraticForm.in_basis`), the penalty on the STRF being the same.

    Returns
    -------
    PenaltyFamily
    """
    C, F, L = shape
    space_of_band = check_feature_spaces(params.feature_spaces, F, names)
    n_spaces = 1 if space_of_band is None else int(space_of_band.max()) + 1
    candidates = space_candidates(n_spaces, params.space_penalties if n_spaces > 1 else None)
    shares = smoothness_grid(params.smooth_freq, params.smooth_lag)
    per_weight = np.repeat(np.tile(np.zeros(F, dtype=np.int64) if space_of_band is None else space_of_band, C), L)
    forms, spaces, smoothness, plain = [], [], [], None
    for relative in candidates:
        multipliers = relative / relative[per_weight].mean()  # the mean over the weights is 1
        diagonal = multipliers[per_weight]
        for sf, sl in shares:
            if sf == 0 and sl == 0:
                form = (QuadraticForm(shape) if np.allclose(diagonal, 1.0)
                        else QuadraticForm(shape, diagonal=diagonal, name=f"spaces{tuple(np.round(multipliers, 4))}"))
            else:
                smooth = smoothness_form(shape, float(sf), float(sl))
                root = torch.as_tensor(np.sqrt(diagonal))
                form = QuadraticForm(shape, root[:, None] * smooth.matrix * root[None, :],
                                     name=f"{smooth.name} x spaces{tuple(np.round(multipliers, 4))}")
            if sf == 0 and sl == 0 and np.allclose(multipliers, 1.0):
                plain = len(forms)
            forms.append(form.in_basis(frame))
            spaces.append(multipliers)
            smoothness.append((float(sf), float(sl)))
    return PenaltyFamily(tuple(forms), np.array(spaces), np.array(smoothness), plain, space_of_band)


def smoothness_grid(smooth_freq, smooth_lag) -> list[tuple[float, float]]:
    """The (smooth_freq, smooth_lag) pairs an estimator's options ask for, checked.

    Each option is a share in [0, 1) or a non-empty 1-D sequence of them (a grid). Every
    combination whose sum is below 1 is a candidate; a combination of two grids whose sum
    reaches 1 is skipped (the identity must keep a share); none left (two single shares
    whose sum reaches 1) is an error.

    Returns
    -------
    list of (float, float)
    """
    grids = []
    for name, value in (("smooth_freq", smooth_freq), ("smooth_lag", smooth_lag)):
        try:
            grid = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be a share in [0, 1) or a sequence of them; got {value!r}") from exc
        if grid.ndim > 1 or grid.size == 0 or not np.isfinite(grid).all() or (grid < 0).any() or (grid >= 1).any():
            raise ValueError(f"{name} must be a share in [0, 1) or a non-empty 1-D sequence of them; got {value!r}")
        grids.append(np.atleast_1d(grid))
    freq, lag = grids
    pairs = [(float(a), float(b)) for a in freq for b in lag if a + b < 1]
    if not pairs:
        raise ValueError(
            f"smooth_freq={smooth_freq!r} and smooth_lag={smooth_lag!r} are the shares of the "
            "penalty given to curvature along bands and lags: each must be >= 0 and their sum "
            "< 1 (the identity keeps the rest, so that every weight is penalised).")
    return pairs


def penalty_form(params, shape: tuple[int, int, int]) -> QuadraticForm:
    """The one penalty form the estimator's options ask for (the first candidate of
    :func:`penalty_family`)."""
    return penalty_family(params, shape).forms[0]
