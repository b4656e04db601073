"""The training losses: masked MSE and Poisson deviance of predictions, and the MSE of a
linear model from its sufficient statistics. The penalty is not here: every loss adds
:meth:`skstrf._penalty.Penalty.value`."""

from __future__ import annotations

import torch

__all__ = ["MaskedMSELoss", "MaskedPoissonLoss", "statistics_loss"]


class MaskedMSELoss(torch.nn.Module):
    """Mean squared error over finite targets, each neuron weighted by ``weight``.

    NaN targets (padding frames) are ignored. With ``weight = 1 / var(PSTH)`` this is the
    MSE in standardised units that the statistics-based training step also minimises.
    """

    def __init__(self, weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("weight", weight)

    def forward(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
        mask = torch.isfinite(y_true)
        diff = torch.where(mask, y_pred - torch.nan_to_num(y_true), 0.0)
        sq = diff**2
        if self.weight is not None:
            sq = sq * self.weight
        return sq.sum() / mask.sum().clamp(min=1)


class MaskedPoissonLoss(torch.nn.Module):
    """Poisson deviance over finite targets, each neuron weighted by ``weight``.

    Per frame and neuron ``2 (y log(y / rate) - y + rate)`` with ``0 log 0 = 0``: the
    negative log-likelihood of ``y`` under a Poisson rate ``rate``, doubled and shifted by a
    term that does not depend on the rate, so that it is 0 for a perfect prediction. It is
    defined for any non-negative ``y`` (a PSTH need not be an integer count). NaN targets
    (padding frames) are ignored. With ``weight = 1 / mean(PSTH)`` each neuron counts alike
    whatever its firing rate.

    Parameters
    ----------
    weight : Tensor of shape (n_neurons,) or None, default=None
        Per-neuron weight.
    floor : float, default=1e-8
        Rates below it are raised to it, so that an underflowing positive rate (a softplus
        or exponential far below its range) gives a finite loss.
    """

    def __init__(self, weight: torch.Tensor | None = None, floor: float = 1e-8) -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.floor = floor

    def forward(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
        mask = torch.isfinite(y_true)
        y = torch.nan_to_num(y_true)
        rate = y_pred.clamp(min=self.floor)
        deviance = 2.0 * (torch.xlogy(y, y) - torch.xlogy(y, rate) + rate - y)
        deviance = torch.where(mask, deviance, 0.0)
        if self.weight is not None:
            deviance = deviance * self.weight
        return deviance.sum() / mask.sum().clamp(min=1)


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
                sq: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
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
        ctx.save_for_backward(resid, scale)
        ctx.dtypes = (weight.dtype, bias.dtype)
        return loss

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        resid, scale = ctx.saved_tensors
        # d/dtheta of theta' G theta - 2 theta' c is 2 (G theta - c) for a symmetric G.
        factor = (2.0 * scale * grad_out).to(resid.dtype)
        grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            # scaled and cast to the weight's dtype in one pass, contiguous
            grad_weight = torch.empty(resid.shape[0], resid.shape[1] - 1, dtype=ctx.dtypes[0],
                                      device=resid.device)
            torch.mul(resid[:, :-1], factor, out=grad_weight)
        if ctx.needs_input_grad[1]:
            grad_bias = (resid[:, -1] * factor).to(ctx.dtypes[1])
        return grad_weight, grad_bias, None, None, None, None


def statistics_loss(weight: torch.Tensor, bias: torch.Tensor, gram: torch.Tensor, cross: torch.Tensor,
                    sq: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """Training MSE of a linear model from the summed statistics of a batch, with a cheap backward.

    Equal to the masked mean squared error of the model's predictions over the batch's
    valid frames, each neuron in units of its PSTH variance, averaged over neurons. One
    (n_neurons, D+1) by (D+1, D+1) product per call, in ``gram``'s dtype; everything else
    is a pass over (n_neurons, D+1) numbers. With float32 statistics the product costs half
    as much, the gradient is exact to float32 rounding of ``gram @ theta``, and the loss's
    terms are still summed in float64 (they nearly cancel for a good model).

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

    Returns
    -------
    loss : Tensor of shape ()
        Float64: the sum over neurons of ``theta_n G theta_n - 2 theta_n b_n + sq_n``
        (``theta_n = [weight_n, bias_n]``), divided by ``count * n_neurons``. Only
        ``weight`` and ``bias`` get a gradient, of their own dtype.
    """
    count = torch.as_tensor(count, device=gram.device)
    return StatisticsLoss.apply(weight, bias, gram, cross, sq, count)
