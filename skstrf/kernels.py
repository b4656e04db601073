"""STRF kernel parameterisations: torch modules that each build an (N, C, F, L) weight."""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
from torch import nn

__all__ = ["VanillaKernel", "SeparableKernel", "ParametricKernel", "LagBasis", "KERNELS", "N_GAUSSIANS",
           "keep_ranks", "make_kernel", "raised_cosine_basis", "lag_basis", "orthonormal_lag_basis",
           "peaks_and_troughs", "separable_factors"]


#: The parametric kernel's number of Gaussians by default (``STRFRegressor(n_gaussians=...)``).
#: 24, chosen on the generated songs' tuning seeds of ``benchmarks/kernels_earn.py``
#: (500-502): with 8 (the default before December 2026) the kernel fell 0.0055 below vanilla
#: on the songs whose cells heard the previous song, with 24 it is within 0.001 of vanilla
#: on every songs case and above it with a background. Not for want of expressive power
#: (8 Gaussians fitted to the songs' true STRFs give nearly their drive): with 24 the
#: per-neuron L-BFGS reaches a lower training loss in its iterations (``benchmarks/RESULTS.md``).
N_GAUSSIANS = 24

#: Adam steps of the parametric kernel's start (:meth:`ParametricKernel.set_weight`: its
#: Gaussians fitted to the ridge STRF, before L-BFGS fits them to the training loss). 100
#: since December 2026 (300 before): once L-BFGS worked in scaled parameters, a closer
#: start no longer paid (``benchmarks/kernels_earn.py``, 100 against 300 steps, every case
#: within 0.001 of the other but naplib's +0.003, n.s.) and the start was a third of a fit
#: on the auditory nerve (5.3 of 15.3 s).
START_STEPS = 100


class _Kernel(nn.Module):
    """Base class: a kernel maps its parameters to a weight of shape (N, C, F, L).

    The weight lives in standardised units (stimulus bands and responses scaled to unit
    variance by the model), so the initial scales below do not depend on the data's units.
    """

    def __init__(self, n_neurons: int, n_channels: int, n_freqs: int, n_lags: int) -> None:
        super().__init__()
        self.shape = (n_neurons, n_channels, n_freqs, n_lags)

    def forward(self) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def set_weight(self, weight: torch.Tensor) -> None:  # pragma: no cover - abstract
        """Set the parameters so that ``forward()`` approximates ``weight`` (N, C, F, L)."""
        raise NotImplementedError

    @property
    def lag_frame(self) -> torch.Tensor | None:
        """The orthonormal lag basis (n_lags, n_basis), float64, whose coefficients the
        closed forms solve for (:class:`LagBasis`); None: the lags themselves."""
        return None

    @property
    def coefficient_shape(self) -> tuple[int, int, int]:
        """(C, F, n_lags), or (C, F, n_basis) over a lag basis: the shape of one neuron's
        weights in the design statistics' columns."""
        return tuple(self.shape[1:])

    def coefficients(self) -> torch.Tensor:
        """The weight in the design statistics' columns, (N,) + :attr:`coefficient_shape`."""
        return self()

    def jacobian_norms(self, curvature: torch.Tensor) -> list[torch.Tensor] | None:
        """For each parameter (in :meth:`parameters` order), ``sum_d curvature[n, d] (d
        coefficients_nd / d theta)^2``: the squared norm of the coefficients' derivative with
        respect to each of a neuron's parameters, weighted by ``curvature`` (N, size of
        :attr:`coefficient_shape`), shaped like the parameter; None: not given (the
        per-neuron L-BFGS then runs unscaled, :func:`skstrf._solvers._parameter_scales`)."""
        return None

    def set_coefficients(self, coefficients: torch.Tensor) -> None:
        """Set the parameters from weights in the design statistics' columns (see
        :meth:`coefficients`)."""
        self.set_weight(coefficients)


class VanillaKernel(_Kernel):
    """Unconstrained kernel: every (channel, frequency, lag) cell is a free parameter.

    Parameters per neuron: ``C * F * L``.
    """

    def __init__(self, n_neurons: int, n_channels: int, n_freqs: int, n_lags: int,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(n_neurons, n_channels, n_freqs, n_lags)
        # The MSE objective is convex in this weight, so a zero start loses nothing.
        self.weight = nn.Parameter(torch.zeros(self.shape))

    def forward(self) -> torch.Tensor:
        return self.weight

    @torch.no_grad()
    def set_weight(self, weight: torch.Tensor) -> None:
        self.weight.copy_(weight)

    def jacobian_norms(self, curvature: torch.Tensor) -> list[torch.Tensor]:
        return [curvature.reshape(self.weight.shape).to(self.weight)]


class SeparableKernel(_Kernel):
    """Frequency-time separable kernel of rank ``rank``: ``sum_r w_F^r(f) w_T^r(t)``.

    Rank 1 is the classic separable STRF. Parameters per neuron: ``rank * C * (F + L)``.
    Both factors start from small random values of equal scale: a zero start is a saddle
    point of the product, and unequal scales slow one factor down.

    A neuron may use fewer components than ``rank`` (:meth:`keep_components`: the rank
    chosen for it from a grid): the others are left out of its kernel, so that training
    cannot give it components beyond its rank.
    """

    def __init__(self, n_neurons: int, n_channels: int, n_freqs: int, n_lags: int,
                 rank: int = 1, generator: torch.Generator | None = None) -> None:
        super().__init__(n_neurons, n_channels, n_freqs, n_lags)
        self.rank = rank
        scale = 0.1 / math.sqrt(math.sqrt(n_freqs * n_lags))
        self.freq = nn.Parameter(
            scale * torch.randn(n_neurons, n_channels, rank, n_freqs, generator=generator))
        self.time = nn.Parameter(
            scale * torch.randn(n_neurons, n_channels, rank, n_lags, generator=generator))
        # 1.0 for the components each neuron uses, 0.0 for those beyond its rank
        self.register_buffer("components", torch.ones(n_neurons, rank))

    def forward(self) -> torch.Tensor:
        used = self._buffers.get("components")  # absent from a model pickled before December 2026
        if used is None:
            return torch.einsum("ncrf,ncrl->ncfl", self.freq, self.time)
        return torch.einsum("ncrf,ncrl,nr->ncfl", self.freq, self.time, used.to(self.freq))

    @torch.no_grad()
    def keep_components(self, ranks) -> None:
        """Give neuron ``n`` its first ``ranks[n]`` components only.

        The components beyond a neuron's rank are set to zero and left out of its kernel
        (and so out of its gradient): a neuron given rank 1 from a grid keeps a rank-1 STRF
        however long it is trained.

        Parameters
        ----------
        ranks : array-like of int of shape (n_neurons,)
            From 1 to ``rank``.
        """
        ranks = torch.as_tensor(np.asarray(ranks), device=self.freq.device)
        if ranks.shape != (self.freq.shape[0],) or bool((ranks < 1).any()) or bool((ranks > self.rank).any()):
            raise ValueError(f"ranks must hold one rank from 1 to {self.rank} per neuron "
                             f"({self.freq.shape[0]}); got {ranks.tolist()}")
        used = (torch.arange(self.rank, device=ranks.device)[None, :] < ranks[:, None]).to(self.freq)
        self._buffers["components"] = used
        self.freq.mul_(used[:, None, :, None])
        self.time.mul_(used[:, None, :, None])

    @torch.no_grad()
    def set_weight(self, weight: torch.Tensor) -> None:
        """Best rank-``rank`` approximation of ``weight`` (:func:`separable_factors`), in
        the components each neuron uses (:meth:`keep_components`)."""
        freq, time = separable_factors(weight, self.rank)
        self.freq.copy_(freq)
        self.time.copy_(time)
        used = self._buffers.get("components")
        if used is not None:
            self.freq.mul_(used[:, None, :, None].to(self.freq))
            self.time.mul_(used[:, None, :, None].to(self.time))


def separable_factors(weight: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The best rank-``rank`` approximation of each (n_freqs, n_lags) matrix as factors.

    The truncated SVD ``sum_r s_r u_r v_r'``, each singular value split evenly between the
    two factors (``sqrt(s_r) u_r`` and ``sqrt(s_r) v_r``), so that neither starts larger
    than the other (unequal scales slow one factor's training down).

    Parameters
    ----------
    weight : Tensor of shape (..., n_freqs, n_lags)
    rank : int

    Returns
    -------
    freq : Tensor of shape (..., rank, n_freqs)
    time : Tensor of shape (..., rank, n_lags)
    """
    u, s, vh = torch.linalg.svd(weight, full_matrices=False)
    root = s[..., :rank].sqrt()
    return (u[..., :, :rank] * root[..., None, :]).transpose(-1, -2), vh[..., :rank, :] * root[..., :, None]


class ParametricKernel(_Kernel):
    """Sum of ``n_gaussians`` 2-D Gaussians on the (frequency, lag) grid.

    Each Gaussian has a centre in absolute grid coordinates (band index, lag index), a
    width along each axis and a signed amplitude: 5 parameters, so ``5 * K * C`` per
    neuron. The widths are bounded, between half a bin and half the grid's extent along
    their axis (through a sigmoid), so that a Gaussian can neither collapse onto one bin
    nor flatten into a constant. Centres start spread over the grid, widths at a few bins,
    amplitudes small and random.
    """

    def __init__(self, n_neurons: int, n_channels: int, n_freqs: int, n_lags: int,
                 n_gaussians: int = N_GAUSSIANS, generator: torch.Generator | None = None) -> None:
        super().__init__(n_neurons, n_channels, n_freqs, n_lags)
        shape = (n_neurons, n_channels, n_gaussians)
        self.width_bounds = ((0.5, max(n_freqs / 2.0, 1.0)), (0.5, max(n_lags / 2.0, 1.0)))
        self.centre_freq = nn.Parameter(torch.rand(shape, generator=generator) * (n_freqs - 1))
        self.centre_lag = nn.Parameter(torch.rand(shape, generator=generator) * (n_lags - 1))
        self.width_freq_raw = nn.Parameter(
            torch.full(shape, _bounded_inverse(max(n_freqs / 10.0, 1.0), *self.width_bounds[0])))
        self.width_lag_raw = nn.Parameter(
            torch.full(shape, _bounded_inverse(max(n_lags / 8.0, 1.0), *self.width_bounds[1])))
        self.amplitude = nn.Parameter(0.02 * torch.randn(shape, generator=generator))
        self.register_buffer("freq_grid", torch.arange(n_freqs, dtype=torch.float32), persistent=False)
        self.register_buffer("lag_grid", torch.arange(n_lags, dtype=torch.float32), persistent=False)

    @property
    def width_freq(self) -> torch.Tensor:
        low, high = self.width_bounds[0]
        return _bounded(self.width_freq_raw, low, high)

    @property
    def width_lag(self) -> torch.Tensor:
        low, high = self.width_bounds[1]
        return _bounded(self.width_lag_raw, low, high)

    def set_weight(self, weight: torch.Tensor, n_iter: int | None = None) -> None:
        """Fit the Gaussians to ``weight`` (N, C, F, L) by least squares.

        Several starts, each a greedy decomposition of the peaks and troughs of ``weight``
        (:func:`peaks_and_troughs`) with Gaussians of a different initial width, are refined
        by ``n_iter`` Adam steps on the squared error (None: :data:`START_STEPS`), every
        start of every neuron in one batch; each neuron keeps the start whose refined fit is
        closest to its ``weight``.
        """
        n_iter = START_STEPS if n_iter is None else int(n_iter)
        N, C, F, L = weight.shape
        K = self.amplitude.shape[-1]
        factors = (0.5, 1.0, 2.0)
        target = weight.detach().to(self.amplitude)
        scale = target.pow(2).sum(dim=(1, 2, 3)).clamp(min=1e-30)  # per neuron
        (lf, hf), (ll, hl) = self.width_bounds
        starts = [], [], [], [], []  # centre_freq, centre_lag, width_freq_raw, width_lag_raw, amplitude
        for factor in factors:
            wf = min(max(factor * max(F / 10.0, 1.0), lf), hf)
            wl = min(max(factor * max(L / 8.0, 1.0), ll), hl)
            cf, cl, amp = peaks_and_troughs(target.reshape(N * C, F, L), K, wf, wl)
            for values, value in zip(starts, (cf, cl, torch.full_like(cf, _bounded_inverse(wf, lf, hf)),
                                               torch.full_like(cf, _bounded_inverse(wl, ll, hl)), amp)):
                values.append(value.reshape(N, C, K))
        params = [torch.stack(values).requires_grad_(True) for values in starts]  # (n_starts, N, C, K)
        moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]
        with torch.enable_grad():
            for step in range(1, n_iter + 1):
                loss = ((self._gaussians(*params) - target).pow(2).sum(dim=(2, 3, 4)) / scale).sum()
                grads = torch.autograd.grad(loss, params)
                with torch.no_grad():
                    adam_step(params, grads, moments, step, lr=0.05)
        with torch.no_grad():
            error = (self._gaussians(*params) - target).pow(2).sum(dim=(2, 3, 4))  # (n_starts, N)
            best = error.argmin(dim=0)  # ties to the earlier start
            neurons = torch.arange(N, device=best.device)
            for p, value in zip((self.centre_freq, self.centre_lag, self.width_freq_raw, self.width_lag_raw,
                                 self.amplitude), params):
                p.copy_(value[best, neurons])
                p.grad = None

    def _gaussians(self, centre_freq: torch.Tensor, centre_lag: torch.Tensor, width_freq_raw: torch.Tensor,
                   width_lag_raw: torch.Tensor, amplitude: torch.Tensor) -> torch.Tensor:
        """The kernel's weight (..., F, L) for parameters of shape (..., K)."""
        (lf, hf), (ll, hl) = self.width_bounds
        width_freq = _bounded(width_freq_raw, lf, hf)
        width_lag = _bounded(width_lag_raw, ll, hl)
        gf = torch.exp(-0.5 * ((self.freq_grid - centre_freq[..., None]) / width_freq[..., None]) ** 2)  # (..., K, F)
        gl = torch.exp(-0.5 * ((self.lag_grid - centre_lag[..., None]) / width_lag[..., None]) ** 2)  # (..., K, L)
        return torch.einsum("...k,...kf,...kl->...fl", amplitude, gf, gl)

    def forward(self) -> torch.Tensor:
        return self._gaussians(self.centre_freq, self.centre_lag, self.width_freq_raw, self.width_lag_raw,
                               self.amplitude)

    @torch.no_grad()
    def jacobian_norms(self, curvature: torch.Tensor) -> list[torch.Tensor]:
        """The weighted squared norms of the weight's derivatives (see
        :meth:`_Kernel.jacobian_norms`), in closed form. Gaussian ``k`` is ``a_k u_k(f)
        v_k(l)``; each derivative is an outer product ``p(f) q(l)``, whose weighted squared
        norm is ``sum_fl c_fl p(f)^2 q(l)^2``: ``(u, v)`` for the amplitude, ``a u (f - c) /
        w^2`` for a centre, ``a u (f - c)^2 / w^3 dw/draw`` for a width's raw value."""
        (lf, hf), (ll, hl) = self.width_bounds
        c = curvature.reshape(self.shape).to(self.amplitude)
        amp = self.amplitude[..., None]

        def axis(centre, raw, grid, low, high):
            width = _bounded(raw, low, high)
            offset = (grid - centre[..., None]) / width[..., None]  # (N, C, K, n)
            g = torch.exp(-0.5 * offset**2)
            slope = (high - low) * torch.sigmoid(raw) * torch.sigmoid(-raw)
            return g, amp * g * offset / width[..., None], amp * g * offset**2 / width[..., None] * slope[..., None]

        u, du_centre, du_width = axis(self.centre_freq, self.width_freq_raw, self.freq_grid, lf, hf)
        v, dv_centre, dv_width = axis(self.centre_lag, self.width_lag_raw, self.lag_grid, ll, hl)

        def norm(p, q):
            return torch.einsum("nckf,ncfl,nckl->nck", p * p, c, q * q)

        return [norm(du_centre, v), norm(u, dv_centre), norm(du_width, v), norm(u, dv_width), norm(u, v)]


def adam_step(params: list[torch.Tensor], grads: tuple[torch.Tensor, ...],
              moments: list[tuple[torch.Tensor, torch.Tensor]], step: int, lr: float,
              betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
    """One Adam step (Kingma & Ba 2015) on each of ``params``, in place.

    The update of ``torch.optim.Adam`` without weight decay, written out so that fitting the
    parametric kernel's start makes no torch optimizer: the first one a process makes imports
    ``torch._dynamo`` (1.3-1.5 s on 2 cores), longer than the fit.

    Parameters
    ----------
    params : list of Tensor
        Updated in place (call under ``torch.no_grad()``).
    grads : tuple of Tensor
        Their gradients.
    moments : list of (Tensor, Tensor)
        Each parameter's running first and second moments (zeros at the start), updated.
    step : int
        The step's number, from 1 (the bias corrections).
    lr : float
    betas : (float, float), default=(0.9, 0.999)
    eps : float, default=1e-8
    """
    beta1, beta2 = betas
    step_size = lr / (1.0 - beta1**step)
    correction2 = math.sqrt(1.0 - beta2**step)
    for p, g, (first, second) in zip(params, grads, moments):
        first.lerp_(g, 1.0 - beta1)
        second.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
        p.addcdiv_(first, (second.sqrt() / correction2).add_(eps), value=-step_size)


def _bounded(raw: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """``low + (high - low) * sigmoid(raw)``: a Gaussian's width from its raw parameter."""
    return low + (high - low) * torch.sigmoid(raw)


def _bounded_inverse(x: float, low: float, high: float) -> float:
    """The raw value whose ``low + (high - low) * sigmoid`` is ``x`` (clipped into the bounds)."""
    u = min(max((x - low) / (high - low), 1e-3), 1 - 1e-3)
    return math.log(u / (1 - u))


def peaks_and_troughs(weight: torch.Tensor, n_gaussians: int, width_freq: float,
                      width_lag: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Greedy Gaussian decomposition of kernels, for the parametric kernel's start.

    Repeatedly takes the largest absolute value of the residual, places a Gaussian of the
    given widths there with that value as amplitude, and subtracts it; vectorised over
    neurons.

    Parameters
    ----------
    weight : Tensor of shape (N, n_freqs, n_lags)

    Returns
    -------
    centre_freq, centre_lag, amplitude : Tensor of shape (N, n_gaussians)
    """
    N, F, L = weight.shape
    residual = weight.clone()
    f = torch.arange(F, dtype=weight.dtype, device=weight.device)
    l = torch.arange(L, dtype=weight.dtype, device=weight.device)
    out = [], [], []
    for _ in range(n_gaussians):
        flat = residual.reshape(N, -1).abs().argmax(dim=1)
        cf, cl = (flat // L).to(weight.dtype), (flat % L).to(weight.dtype)
        amp = residual.reshape(N, -1).gather(1, flat[:, None])[:, 0]
        bump = (torch.exp(-0.5 * ((f[None] - cf[:, None]) / width_freq) ** 2)[:, :, None]
                * torch.exp(-0.5 * ((l[None] - cl[:, None]) / width_lag) ** 2)[:, None, :])
        residual = residual - amp[:, None, None] * bump
        for lst, v in zip(out, (cf, cl, amp)):
            lst.append(v)
    return tuple(torch.stack(v, dim=1) for v in out)


def raised_cosine_basis(n_lags: int, n_basis: int, stretch: float | None = None) -> np.ndarray:
    """Raised-cosine functions over lags, narrow at short lags and wide at long ones.

    Bumps ``0.5 (1 + cos(x))`` evenly spaced on a log-stretched time axis
    ``log(lag + stretch)`` (Pillow, Paninski, Uzzell, Simoncelli & Chichilnisky 2005,
    J Neurosci 25:11003), the first centred on lag 0 and the last on lag ``n_lags - 1``:
    each spans four spacings, so that their sum is flat (2) but within one spacing of the
    ends (1.5 at the ends). An STRF in their span is smooth in time with fine detail where
    responses are fast.

    Parameters
    ----------
    n_lags : int
    n_basis : int
        Number of functions, 1 to ``n_lags``.
    stretch : float or None, default=None
        Offset of the log axis, in lags: larger is closer to evenly spaced. None: the
        smallest offset of at least 1 at which the first two functions peak one lag apart
        or more. Closer peaks are finer than the lags can tell apart: sampled on the lags,
        such functions are (nearly) linearly dependent, a basis of fewer functions than
        it has.

    Returns
    -------
    ndarray of shape (n_lags, n_basis)

    Examples
    --------
    >>> from skstrf.kernels import raised_cosine_basis
    >>> raised_cosine_basis(15, 5).shape
    (15, 5)
    """
    if isinstance(n_basis, bool) or not isinstance(n_basis, numbers.Integral) or not 1 <= n_basis <= n_lags:
        raise ValueError(f"the lag basis needs 1 to n_lags = {n_lags} functions; got {n_basis!r}")
    if stretch is not None and not stretch > 0:
        raise ValueError(f"stretch must be positive; got {stretch!r}")
    if n_basis == 1:
        return np.ones((n_lags, 1))
    lags = np.arange(n_lags, dtype=np.float64)
    if stretch is None:
        stretch = _stretch_for_spacing(n_lags, n_basis)
    axis = lags if np.isinf(stretch) else np.log(lags + float(stretch))
    centres = np.linspace(axis[0], axis[-1], n_basis)
    spacing = centres[1] - centres[0]
    arg = np.clip((axis[:, None] - centres[None, :]) * np.pi / (2 * spacing), -np.pi, np.pi)
    return 0.5 * (1.0 + np.cos(arg))


def _stretch_for_spacing(n_lags: int, n_basis: int) -> float:
    """The smallest log offset ``c >= 1`` at which the first two of ``n_basis`` raised
    cosines over ``n_lags`` lags peak at least one lag apart; inf (evenly spaced in lags)
    when no finite offset does (``n_basis == n_lags``)."""
    def first_gap(c: float) -> float:  # lag of the second centre; grows with c
        return c * ((n_lags - 1 + c) / c) ** (1.0 / (n_basis - 1)) - c

    if first_gap(1.0) >= 1.0:
        return 1.0
    high = 2.0
    while first_gap(high) < 1.0:
        high *= 2.0
        if high > 1e8:  # only evenly spaced functions are a lag apart
            return np.inf
    low = high / 2.0 if high > 2.0 else 1.0
    for _ in range(60):  # bisection to the offset where the gap reaches one lag
        middle = 0.5 * (low + high)
        low, high = (middle, high) if first_gap(middle) < 1.0 else (low, middle)
    return high


def lag_basis(spec, n_lags: int) -> np.ndarray | None:
    """The lag basis that an estimator's ``lag_basis`` names, checked.

    Parameters
    ----------
    spec : None, int or array-like of shape (n_lags, n_basis)
        None: no basis (every lag free); a number of raised cosines
        (:func:`raised_cosine_basis`); or the functions themselves, linearly independent.
    n_lags : int

    Returns
    -------
    ndarray of shape (n_lags, n_basis), float64, or None
    """
    if spec is None:
        return None
    if isinstance(spec, numbers.Integral) and not isinstance(spec, bool):
        return raised_cosine_basis(n_lags, int(spec))
    try:
        basis = np.asarray(spec, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"lag_basis must be None, a number of functions or a matrix of shape "
                         f"(n_lags, n_basis); got {type(spec).__name__}") from exc
    if basis.ndim != 2 or basis.shape[0] != n_lags or not 1 <= basis.shape[1] <= n_lags:
        raise ValueError(f"lag_basis as a matrix must have shape (n_lags, n_basis) with n_lags = "
                         f"{n_lags} and 1 <= n_basis <= {n_lags}; got shape {basis.shape}")
    if not np.isfinite(basis).all():
        raise ValueError("lag_basis holds NaN or infinite values")
    if np.linalg.matrix_rank(basis) < basis.shape[1]:
        raise ValueError("lag_basis's functions (columns) must be linearly independent")
    return basis


def orthonormal_lag_basis(basis) -> np.ndarray:
    """The orthonormal basis of the same span closest to ``basis`` (n_lags, n_basis):
    ``basis (basis' basis)^(-1/2)`` (symmetric orthogonalisation, the polar factor), so that
    each function stays near its place in time and the squared norm of the coefficients is
    that of the lag profile they make."""
    basis = np.asarray(basis, dtype=np.float64)
    u, _, vh = np.linalg.svd(basis, full_matrices=False)
    return u @ vh


class LagBasis(_Kernel):
    """A kernel whose lag profiles lie in the span of a few functions of the lag.

    Wraps a kernel built over ``n_basis`` coefficients in place of lags: the STRF is its
    weight ``U`` (N, C, F, n_basis) times the basis, ``U @ basis'`` (N, C, F, n_lags). The
    basis is orthonormalised first (:func:`orthonormal_lag_basis`; same span), so that the
    coefficients' squared norm is the STRF's. The vanilla kernel then has
    ``C * F * n_basis`` parameters per neuron, the separable kernel's time profiles are
    combinations of the functions, the parametric kernel's Gaussians lie over the
    coefficients.

    Parameters
    ----------
    inner : _Kernel
        The kernel over the coefficients.
    basis : array-like of shape (n_lags, n_basis)
        Linearly independent functions of the lag.
    """

    def __init__(self, inner: _Kernel, basis) -> None:
        n_neurons, n_channels, n_freqs, n_basis = inner.shape
        frame = torch.as_tensor(orthonormal_lag_basis(basis))
        super().__init__(n_neurons, n_channels, n_freqs, frame.shape[0])
        if frame.shape[1] != n_basis:
            raise ValueError(f"the inner kernel has {n_basis} coefficients per profile, the basis {frame.shape[1]}")
        self.inner = inner
        # float64 (the statistics are projected with it); a model option, not a state to load
        self.register_buffer("frame", frame, persistent=False)

    @property
    def lag_frame(self) -> torch.Tensor:
        return self.frame

    @property
    def coefficient_shape(self) -> tuple[int, int, int]:
        return tuple(self.inner.shape[1:])

    def forward(self) -> torch.Tensor:
        coefficients = self.inner()
        return coefficients @ self.lag_frame.T.to(coefficients)

    def coefficients(self) -> torch.Tensor:
        return self.inner()

    def jacobian_norms(self, curvature: torch.Tensor) -> list[torch.Tensor] | None:
        return self.inner.jacobian_norms(curvature)

    def set_coefficients(self, coefficients: torch.Tensor) -> None:
        self.inner.set_weight(coefficients)

    @torch.no_grad()
    def set_weight(self, weight: torch.Tensor) -> None:
        """The inner kernel's best approximation of ``weight``'s projection onto the basis
        (the coefficients of its least-squares approximation)."""
        self.inner.set_weight((weight.double() @ self.lag_frame.to(weight.device)).to(weight.dtype))


def keep_ranks(kernel: nn.Module, ranks) -> None:
    """Give each neuron of a separable ``kernel`` (bare, or over a lag basis) its own rank
    (:meth:`SeparableKernel.keep_components`).

    Parameters
    ----------
    kernel : SeparableKernel or a kernel over a lag basis whose inner kernel is one
    ranks : array-like of int of shape (n_neurons,)
    """
    inner = getattr(kernel, "inner", kernel)
    if not isinstance(inner, SeparableKernel):
        raise TypeError(f"ranks are given per neuron to a separable kernel, not to {type(inner).__name__}")
    inner.keep_components(ranks)


KERNELS = {
    "vanilla": VanillaKernel,
    "separable": SeparableKernel,
    "parametric": ParametricKernel,
}


def make_kernel(name: str, n_neurons: int, n_channels: int, n_freqs: int, n_lags: int, *,
                rank: int = 1, n_gaussians: int = N_GAUSSIANS,
                generator: torch.Generator | None = None, basis=None) -> _Kernel:
    """Build the kernel module named ``name``, a key of :data:`KERNELS`; with ``basis``
    (n_lags, n_basis), over its coefficients (:class:`LagBasis`)."""
    if name not in KERNELS:
        raise ValueError(f"unknown kernel {name!r}; expected one of {sorted(KERNELS)}")
    options = {"separable": {"rank": rank}, "parametric": {"n_gaussians": n_gaussians}}
    size = n_lags if basis is None else np.asarray(basis).shape[1]
    kernel = KERNELS[name](n_neurons, n_channels, n_freqs, size, generator=generator, **options.get(name, {}))
    return kernel if basis is None else LagBasis(kernel, basis)
