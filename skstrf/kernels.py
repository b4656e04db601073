"""STRF kernel parameterisations: torch modules that each build an (N, C, F, L) weight."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["VanillaKernel", "SeparableKernel", "ParametricKernel", "KERNELS", "make_kernel",
           "peaks_and_troughs"]


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


class SeparableKernel(_Kernel):
    """Frequency-time separable kernel of rank ``rank``: ``sum_r w_F^r(f) w_T^r(t)``.

    Rank 1 is the classic separable STRF. Parameters per neuron: ``rank * C * (F + L)``.
    Both factors start from small random values of equal scale: a zero start is a saddle
    point of the product, and unequal scales slow one factor down.
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

    def forward(self) -> torch.Tensor:
        return torch.einsum("ncrf,ncrl->ncfl", self.freq, self.time)

    @torch.no_grad()
    def set_weight(self, weight: torch.Tensor) -> None:
        """Best rank-``rank`` approximation of ``weight`` (truncated SVD), balanced factors."""
        u, s, vh = torch.linalg.svd(weight, full_matrices=False)
        root = s[..., : self.rank].sqrt()
        self.freq.copy_((u[..., :, : self.rank] * root[..., None, :]).transpose(-1, -2))
        self.time.copy_(vh[..., : self.rank, :] * root[..., :, None])


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
                 n_gaussians: int = 8, generator: torch.Generator | None = None) -> None:
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
        return low + (high - low) * torch.sigmoid(self.width_freq_raw)

    @property
    def width_lag(self) -> torch.Tensor:
        low, high = self.width_bounds[1]
        return low + (high - low) * torch.sigmoid(self.width_lag_raw)

    def set_weight(self, weight: torch.Tensor, n_iter: int = 300) -> None:
        """Fit the Gaussians to ``weight`` (N, C, F, L) by least squares.

        Several starts, each a greedy decomposition of the peaks and troughs of ``weight``
        (:func:`peaks_and_troughs`) with Gaussians of a different initial width, are refined
        by ``n_iter`` Adam steps on the squared error, all neurons at once; each neuron keeps
        the start whose refined fit is closest to its ``weight``.
        """
        N, C, F, L = weight.shape
        K = self.amplitude.shape[-1]
        target = weight.detach().to(self.amplitude)
        scale = target.pow(2).sum(dim=(1, 2, 3)).clamp(min=1e-30)  # per neuron
        params = [self.centre_freq, self.centre_lag, self.width_freq_raw, self.width_lag_raw,
                  self.amplitude]
        best_error, best = None, None
        for factor in (0.5, 1.0, 2.0):
            (lf, hf), (ll, hl) = self.width_bounds
            wf = min(max(factor * max(F / 10.0, 1.0), lf), hf)
            wl = min(max(factor * max(L / 8.0, 1.0), ll), hl)
            with torch.no_grad():
                self.width_freq_raw.fill_(_bounded_inverse(wf, lf, hf))
                self.width_lag_raw.fill_(_bounded_inverse(wl, ll, hl))
                cf, cl, amp = peaks_and_troughs(target.reshape(N * C, F, L), K, wf, wl)
                self.centre_freq.copy_(cf.reshape(N, C, K))
                self.centre_lag.copy_(cl.reshape(N, C, K))
                self.amplitude.copy_(amp.reshape(N, C, K))
            with torch.enable_grad():
                optimizer = torch.optim.Adam(params, lr=0.05)
                for _ in range(n_iter):
                    optimizer.zero_grad()
                    loss = ((self.forward() - target).pow(2).sum(dim=(1, 2, 3)) / scale).sum()
                    loss.backward()
                    optimizer.step()
            with torch.no_grad():
                error = (self.forward() - target).pow(2).sum(dim=(1, 2, 3)) / scale
                state = [p.detach().clone() for p in params]
                if best is None:
                    best_error, best = error, state
                else:
                    better = error < best_error
                    best_error = torch.where(better, error, best_error)
                    best = [torch.where(better[:, None, None], new, old) for new, old in zip(state, best)]
        with torch.no_grad():
            for p, value in zip(params, best):
                p.copy_(value)
                p.grad = None

    def forward(self) -> torch.Tensor:
        df = (self.freq_grid - self.centre_freq[..., None]) / self.width_freq[..., None]
        dl = (self.lag_grid - self.centre_lag[..., None]) / self.width_lag[..., None]
        gf = torch.exp(-0.5 * df**2)  # (N, C, K, F)
        gl = torch.exp(-0.5 * dl**2)  # (N, C, K, L)
        return torch.einsum("nck,nckf,nckl->ncfl", self.amplitude, gf, gl)


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


KERNELS = {
    "vanilla": VanillaKernel,
    "separable": SeparableKernel,
    "parametric": ParametricKernel,
}


def make_kernel(name: str, n_neurons: int, n_channels: int, n_freqs: int, n_lags: int, *,
                rank: int = 1, n_gaussians: int = 8,
                generator: torch.Generator | None = None) -> _Kernel:
    """Build the kernel module named ``name``, a key of :data:`KERNELS`."""
    if name not in KERNELS:
        raise ValueError(f"unknown kernel {name!r}; expected one of {sorted(KERNELS)}")
    options = {"separable": {"rank": rank}, "parametric": {"n_gaussians": n_gaussians}}
    return KERNELS[name](n_neurons, n_channels, n_freqs, n_lags, generator=generator,
                         **options.get(name, {}))
