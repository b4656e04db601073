"""Output nonlinearities of LN models: per-neuron static maps from the linear drive to a rate."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["Softplus", "Exponential", "NONLINEARITIES", "make_nonlinearity"]

# The softplus starts with a knee a quarter of the neuron's PSTH standard deviation wide: close
# to max(z, 0), hence to the identity wherever the closed-form linear prediction is positive.
_SOFTPLUS_SLOPE_INIT = 4.0


class Softplus(nn.Module):
    """Per-neuron learnable softplus ``rate = s * gain * softplus(slope * z / s + offset)``.

    Its rates are positive (:attr:`positive`): it cannot follow responses below zero.

    ``z`` is the linear stage's output and ``rate`` the prediction, both in the data's units;
    ``s`` is each neuron's PSTH standard deviation (a fixed buffer) so that the learnable
    ``gain > 0``, ``slope > 0`` (held as logarithms) and ``offset`` are unit-free. The rate is
    positive, which a Poisson loss needs.

    They start at ``slope = 4``, ``gain = 1 / slope``, ``offset = 0``:
    ``rate = (s / 4) softplus(4 z / s)``, which differs from ``max(z, 0)`` by at most
    ``0.17 s`` (at ``z = 0``), i.e. it is the identity on the positive part of the data's
    range, so a closed-form linear STRF is a good start. ``slope`` and ``offset`` overlap
    with the scale of the STRF and the intercept; the redundancy is harmless for gradient
    training but means the scale of ``strfs_`` of an LN model is defined only together with
    the nonlinearity.

    Parameters
    ----------
    scale : Tensor of shape (n_neurons,)
        Positive unit of each neuron's responses (its PSTH standard deviation).
    slope_init : float, default=4.0
        Initial slope; the initial gain is its inverse.
    """

    n_params_per_neuron = 3
    #: Bound of :meth:`calibrate_` on the knee: ``slope * SD(z) / s <= max_relative_slope``,
    #: a knee at least 1 % of the linear drive's standard deviation wide, within
    #: ``0.007 * gain * slope * s`` of a hard rectifier (which a sharper knee cannot beat by
    #: more), and an exponential tail up to ``exp(100 * z / SD(z))``.
    max_relative_slope = 100.0
    #: Bound of :meth:`calibrate_` on the gain: ``gain <= max_tail_gain * max(1, max(y) / s)``,
    #: so that the largest response is reached no deeper than ``softplus = 1e-3`` in the
    #: exponential tail, where the curve is within 0.05 % of an exponential (which a deeper
    #: tail cannot beat by more).
    max_tail_gain = 1e3
    _slope_grid = torch.logspace(-1.0, 1.5, 11, dtype=torch.float64)
    _offset_grid = torch.arange(-4.0, 5.0, dtype=torch.float64)  # exact integers: 0 among them

    #: The output is a positive rate.
    positive = True

    def __init__(self, scale: torch.Tensor, slope_init: float = _SOFTPLUS_SLOPE_INIT) -> None:
        super().__init__()
        scale = torch.as_tensor(scale, dtype=torch.float32)
        if scale.ndim != 1 or not bool(torch.all(scale > 0)):
            raise ValueError("scale must be a 1-D tensor of positive values, one per neuron")
        n = scale.shape[0]
        self.register_buffer("scale", scale)
        self.log_gain = nn.Parameter(torch.full((n,), -math.log(slope_init)))
        self.log_slope = nn.Parameter(torch.full((n,), math.log(slope_init)))
        self.offset = nn.Parameter(torch.zeros(n))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Rate of shape (..., n_neurons) from the linear output ``z`` of the same shape."""
        inner = self.log_slope.exp() * z / self.scale + self.offset
        return self.scale * self.log_gain.exp() * nn.functional.softplus(inner)

    @torch.no_grad()
    def calibrate_(self, z: torch.Tensor, y: torch.Tensor, loss: str = "mse") -> "Softplus":
        """Fit ``gain``, ``slope`` and ``offset`` to ``y`` given ``z``: the two-stage model.

        The best of a grid of slopes and offsets (each with its optimal gain in closed
        form) starts a damped Newton refinement of all three (:func:`_refine`), per neuron
        (all neurons at once): the result is the least-squares (or maximum-likelihood)
        static softplus of the linear stage, a start that gradient training of the LN model
        can only improve on.

        The refinement keeps ``slope`` and ``gain`` within bounds set by the data
        (:attr:`max_relative_slope`, :attr:`max_tail_gain`; smoothly, by a change of
        variables). Without them it may not end: the softplus family only approaches the
        best fit of two kinds of cells, a linear or rectified one (a hard knee: ``slope``
        to infinity and ``gain`` to zero, for a cell that is linear over the data's range
        with its knee at or below the lowest drive) and an exponential one (``offset`` to
        minus infinity and ``gain`` to infinity). Along those valleys the loss keeps
        falling by ever smaller amounts, and the refinement (then L-BFGS) followed them
        until the parameters overflowed float32 (a slope of ``inf``: a non-finite loss at
        the first training epoch whatever the learning rate). Within the bounds such a cell gets a finite
        curve as close to the limit as the bounds say.

        Parameters
        ----------
        z : Tensor of shape (n_frames, n_neurons)
            Linear-stage output on the training frames.
        y : Tensor of shape (n_frames, n_neurons)
            Targets (PSTH); NaN entries are ignored.
        loss : {"mse", "poisson"}
            Loss the parameters are optimal for.
        """
        scale = self.scale.double()
        u = z.double() / scale
        slopes = self._slope_grid.to(u.device)
        offsets = self._offset_grid.to(u.device)
        pairs = [(b, c) for b in slopes for c in offsets]
        shapes = (scale * nn.functional.softplus(b * u + c) for b, c in pairs)
        best, log_gain = _best_shape(shapes, y.double(), loss)
        limits = self._limits(u, y.double())
        start = torch.stack([log_gain, slopes[best // len(offsets)].log(), offsets[best % len(offsets)]])
        # the refinement runs on unbounded values that map below the limits
        start[:2] = _below_inverse(torch.minimum(start[:2], limits - _BOUND_MARGIN), limits)

        def rate(theta: torch.Tensor) -> torch.Tensor:
            log_g, log_b = _below(theta[:2], limits)
            return scale * log_g.exp() * nn.functional.softplus(log_b.exp() * u + theta[2])

        theta = _refine(rate, start, y.double(), loss)
        (log_g, log_b), c = _below(theta[:2], limits), theta[2]
        self.log_gain.copy_(log_g.float())
        self.log_slope.copy_(log_b.float())
        self.offset.copy_(c.float())
        return self

    def _limits(self, u: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Upper bounds of ``log(gain)`` and ``log(slope)`` of each neuron (2, n_neurons)
        for the drive ``u = z / s`` and the responses ``y`` (NaN ignored)."""
        mask = torch.isfinite(y)
        count = mask.sum(0).clamp(min=1)
        mean = torch.where(mask, u, 0.0).sum(0) / count
        spread = (torch.where(mask, (u - mean) ** 2, 0.0).sum(0) / count).sqrt()
        # a drive that hardly varies leaves the slope unidentified: 1e5 at most keeps it finite
        log_slope = math.log(self.max_relative_slope) - spread.clamp(min=1e-3).log()
        top = torch.where(mask, y, -torch.inf).amax(0) / self.scale.double()
        log_gain = math.log(self.max_tail_gain) + top.clamp(min=1.0).log()
        return torch.stack([log_gain, log_slope])


class Exponential(nn.Module):
    """Per-neuron exponential ``rate = r0 * exp(slope * (z - r0) / r0 + offset)``.

    Its rates are positive (:attr:`positive`): it cannot follow responses below zero.

    ``r0`` is each neuron's mean training response (a fixed buffer; its PSTH standard
    deviation where that mean is not positive), ``slope > 0`` (held as a logarithm) and
    ``offset`` are learnable. With ``slope = 1, offset = 0`` the curve is tangent to the
    identity at ``z = r0``; but an exponential tangent at the mean rate overshoots the peaks
    of a sparse cell by orders of magnitude, so :meth:`calibrate_` fits ``slope`` and
    ``offset`` to the closed-form linear stage before gradient training. Both overlap with the
    STRF's scale and intercept (harmless for gradient training).

    Parameters
    ----------
    reference : Tensor of shape (n_neurons,)
        ``r0``, positive.
    """

    n_params_per_neuron = 2
    _slope_grid = torch.logspace(-2.0, 0.5, 16, dtype=torch.float64)

    #: The output is a positive rate.
    positive = True

    def __init__(self, reference: torch.Tensor) -> None:
        super().__init__()
        reference = torch.as_tensor(reference, dtype=torch.float32)
        if reference.ndim != 1 or not bool(torch.all(reference > 0)):
            raise ValueError("reference must be a 1-D tensor of positive values, one per neuron")
        self.register_buffer("reference", reference)
        self.log_slope = nn.Parameter(torch.zeros_like(reference))
        self.offset = nn.Parameter(torch.zeros_like(reference))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Rate of shape (..., n_neurons) from the linear output ``z`` of the same shape."""
        r0 = self.reference
        return r0 * torch.exp(self.log_slope.exp() * (z - r0) / r0 + self.offset)

    @torch.no_grad()
    def calibrate_(self, z: torch.Tensor, y: torch.Tensor, loss: str = "mse") -> "Exponential":
        """Fit ``slope`` and ``offset`` to ``y`` given ``z``: the two-stage model.

        The best slope of a grid (with its optimal offset in closed form) starts a damped
        Newton refinement of both (:func:`_refine`), per neuron (all neurons at once).

        Parameters
        ----------
        z : Tensor of shape (n_frames, n_neurons)
            Linear-stage output on the training frames.
        y : Tensor of shape (n_frames, n_neurons)
            Targets (PSTH); NaN entries are ignored.
        loss : {"mse", "poisson"}
            Loss the parameters are optimal for.
        """
        r0 = self.reference.double()
        u = (z.double() - r0) / r0
        grid = self._slope_grid.to(u.device)
        # Each candidate is scaled by its largest value so exp cannot overflow.
        peaks = torch.stack([(b * u).amax(0) for b in grid])  # (n_slopes, n_neurons)
        best, log_gain = _best_shape((torch.exp(b * u - m) for b, m in zip(grid, peaks)), y.double(), loss)
        # rate = gain * exp(b u - m) = r0 * exp(b u + offset)
        offset = log_gain - peaks[best, torch.arange(u.shape[1], device=u.device)] - r0.log()
        start = torch.stack([grid[best].log(), offset])

        def rate(theta: torch.Tensor) -> torch.Tensor:
            log_b, c = theta
            return r0 * torch.exp(log_b.exp() * u + c)

        log_b, c = _refine(rate, start, y.double(), loss)
        self.log_slope.copy_(log_b.float())
        self.offset.copy_(c.float())
        return self


# how far below a bound the grid's start is placed (its inverse map is finite there)
_BOUND_MARGIN = 1e-3


def _below(t: torch.Tensor, limit: torch.Tensor) -> torch.Tensor:
    """``limit - softplus(limit - t)``: a smooth, increasing map of ``t`` below ``limit``,
    the identity well below it."""
    return limit - nn.functional.softplus(limit - t)


def _below_inverse(v: torch.Tensor, limit: torch.Tensor) -> torch.Tensor:
    """The ``t`` that :func:`_below` maps to ``v < limit``."""
    gap = limit - v
    # log(expm1(gap)), which is gap itself to double precision for a large gap
    return limit - torch.where(gap > 30.0, gap, torch.log(torch.expm1(gap.clamp(max=30.0))))


def _loss_per_neuron(rate: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, loss: str) -> torch.Tensor:
    """Squared error or Poisson negative log-likelihood of each neuron (masked sums)."""
    if loss == "poisson":
        tiny = torch.finfo(rate.dtype).tiny
        value = rate - torch.xlogy(y, rate.clamp(min=tiny))
    else:
        value = (y - rate) ** 2
    return torch.where(mask, value, 0.0).sum(0)


def _refine(rate, start: torch.Tensor, y: torch.Tensor, loss: str, max_iter: int = 100) -> torch.Tensor:
    """Refine per-neuron parameters ``start`` (n_params, n_neurons) of ``rate(theta)`` by a
    damped Newton method per neuron, all neurons at once, keeping for each neuron the better
    of its start and the refined values (so a refinement never loses).

    Neurons are independent terms of the loss, so its Hessian is block-diagonal: one
    (n_params, n_params) block per neuron, whose columns are the Hessian-vector products
    with each parameter's unit direction for every neuron at once (``n_params`` second
    backward passes). Each neuron steps by its own Newton step, the Hessian's eigenvalues
    taken in absolute value (a saddle or a concave region sends it downhill) and damped
    Levenberg-Marquardt style: a step that does not lower that neuron's loss is refused and
    its damping raised tenfold; one that does is taken and its damping lowered. Near its
    optimum every neuron converges quadratically, whatever the others' scales: a joint
    L-BFGS on the summed loss, its line search shared by all neurons, ended 100 iterations
    up to 0.4 % of the reducible loss (the constant rate's minus the optimum's) above the
    per-neuron optimum of softplus cells (``tests/calibration_reference.py``).

    Parameters
    ----------
    rate : callable
        Maps parameters of shape (n_params, n_neurons) to rates of ``y``'s shape.
    start : Tensor of shape (n_params, n_neurons)
    y : Tensor of shape (n_frames, n_neurons)
        Targets; NaN entries are ignored.
    loss : {"mse", "poisson"}
    max_iter : int, default=100
        Number of Newton trials (taken or refused steps).

    Returns
    -------
    theta : Tensor of shape (n_params, n_neurons)
    """
    mask = torch.isfinite(y)
    y = torch.where(mask, y, 0.0)

    def losses(theta: torch.Tensor) -> torch.Tensor:
        value = _loss_per_neuron(rate(theta), y, mask, loss)
        return torch.where(torch.isnan(value), torch.inf, value)

    with torch.no_grad():
        before = losses(start)
        # the loss of a constant rate: the scale of a neuron's loss (Newton steps do not
        # depend on it; the test of convergence does)
        mean = (y.sum(0) / mask.sum(0).clamp(min=1)).clamp(min=torch.finfo(y.dtype).tiny)
        null = _loss_per_neuron(mean.expand_as(y), y, mask, loss).abs()
    n_params, n_neurons = start.shape
    theta, current = start.clone(), before.clone()
    damping = torch.full((n_neurons,), 1e-3, dtype=start.dtype, device=start.device)
    tiny = torch.finfo(start.dtype).tiny
    for _ in range(max_iter):
        with torch.enable_grad():
            t = theta.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(losses(t).sum(), t, create_graph=True)
            hess = torch.stack([torch.autograd.grad(grad[k].sum(), t, retain_graph=k < n_params - 1)[0]
                                for k in range(n_params)])  # (k, j, neuron): d2 / d theta_k d theta_j
        g, h = grad.detach().T, hess.permute(2, 0, 1)  # (neuron, k), (neuron, k, j)
        # a neuron whose derivatives overflow makes no step
        finite = torch.isfinite(g).all(1) & torch.isfinite(h).flatten(1).all(1)
        g = torch.where(finite[:, None], g, 0.0)
        h = torch.where(finite[:, None, None], (h + h.transpose(1, 2)) / 2, torch.eye(n_params).to(h))
        values, vectors = torch.linalg.eigh(h)
        size = values.abs()
        size = size + damping[:, None] * size.amax(1, keepdim=True) + tiny
        step = -(vectors @ ((vectors.transpose(1, 2) @ g[..., None]) / size[..., None]))[..., 0]
        step = torch.nan_to_num(step, nan=0.0, posinf=0.0, neginf=0.0)
        with torch.no_grad():
            trial = losses(theta + step.T)
        better = torch.isfinite(trial) & (trial < current)
        theta = torch.where(better[None], theta + step.T, theta)
        current = torch.where(better, trial, current)
        damping = torch.where(better, damping / 3, damping * 10).clamp(1e-12, 1e12)
        # converged: the step's predicted decrease is at rounding level for every neuron
        decrease = -(g * step).sum(1)
        if bool(((decrease <= 1e-14 * (current.abs() + null)) | (damping >= 1e12)).all()):
            break
    with torch.no_grad():
        after = losses(theta)
        # a gain at the level of rounding (relative to the loss of a constant rate) is no
        # gain: a start at the optimum stays as it is
        better = torch.isfinite(after) & (after < before - 1e-10 * (before.abs() + null))
        return torch.where(better[None], theta, start)


def _best_shape(shapes, y: torch.Tensor, loss: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Best of candidate rate shapes per neuron, each with its optimal positive gain.

    Parameters
    ----------
    shapes : iterable of Tensor of shape (n_frames, n_neurons)
        Candidate rates up to a per-neuron gain, positive (made one at a time).
    y : Tensor of shape (n_frames, n_neurons)
        Targets; NaN entries are ignored.
    loss : {"mse", "poisson"}
        For "mse" the gain is ``sum(y q) / sum(q^2)``, for "poisson" ``sum(y) / sum(q)``
        (each the minimiser of its loss over the gain).

    Returns
    -------
    best : Tensor of int of shape (n_neurons,)
        Index of the best shape of each neuron.
    log_gain : Tensor of shape (n_neurons,)
        Logarithm of that shape's gain.
    """
    mask = torch.isfinite(y)
    y = torch.where(mask, y, 0.0)
    tiny = torch.finfo(y.dtype).tiny
    best_loss = torch.full(y.shape[1:], torch.inf, dtype=y.dtype, device=y.device)
    best = torch.zeros(y.shape[1:], dtype=torch.long, device=y.device)
    best_gain = torch.zeros(y.shape[1:], dtype=y.dtype, device=y.device)
    for k, q in enumerate(shapes):
        q = torch.where(mask, q, 0.0)
        if loss == "poisson":
            gain = (y.sum(0) / q.sum(0).clamp(min=tiny)).clamp(min=tiny)
        else:
            gain = ((y * q).sum(0) / (q**2).sum(0).clamp(min=tiny)).clamp(min=tiny)
        value = torch.nan_to_num(_loss_per_neuron(gain * q, y, mask, loss), nan=torch.inf)
        better = value < best_loss
        best_loss = torch.where(better, value, best_loss)
        best = torch.where(better, torch.full_like(best, k), best)
        best_gain = torch.where(better, gain, best_gain)
    return best, best_gain.log()


NONLINEARITIES = {"identity": None, "softplus": Softplus, "exp": Exponential}


def make_nonlinearity(name: str, y_mean: torch.Tensor, y_scale: torch.Tensor) -> nn.Module | None:
    """Build the output nonlinearity ``name`` for neurons with PSTH means and scales given.

    Parameters
    ----------
    name : {"identity", "softplus", "exp"}
        "identity" returns None (the linear model).
    y_mean, y_scale : Tensor of shape (n_neurons,)
        Mean and standard deviation (positive) of each neuron's training PSTH.

    Returns
    -------
    nn.Module or None
    """
    if name not in NONLINEARITIES:
        raise ValueError(f"unknown nonlinearity {name!r}; expected one of {sorted(NONLINEARITIES)}")
    y_mean = torch.as_tensor(y_mean, dtype=torch.float32)
    y_scale = torch.as_tensor(y_scale, dtype=torch.float32)
    if name == "softplus":
        return Softplus(y_scale)
    if name == "exp":
        return Exponential(torch.where(y_mean > 0, y_mean, y_scale))
    return None
