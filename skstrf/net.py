"""The skorch net that trains an STRF model, its loss and its training callbacks."""

from __future__ import annotations

import numpy as np
import torch
from skorch import NeuralNetRegressor
from skorch.callbacks import Callback

from .model import DesignStatistics

__all__ = ["MaskedMSELoss", "MaskedPoissonLoss", "STRFNet", "ValidCCNorm", "StopOnNonFinite",
           "LastEpochCheckpoint", "DivergenceError"]


class DivergenceError(FloatingPointError):
    """Raised when training produced a non-finite loss before any finite best epoch."""


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


class STRFNet(NeuralNetRegressor):
    """skorch ``NeuralNetRegressor`` with an L2 penalty and a frame-free training step.

    When ``statistics`` is set (a linear model trained with the MSE; the estimator decides,
    and leaves it None for a prefilter, an output nonlinearity or a Poisson loss), each training step
    computes the loss of its batch of stimuli from their sufficient statistics
    (:meth:`skstrf.model.STRFModel.statistics_loss`), which is exact and costs nothing per
    frame. Otherwise the step runs the module forward on the batch's stimuli. Validation
    always runs the module forward, so validation predictions are real predictions.

    Parameters
    ----------
    alpha : float or ndarray of shape (n_neurons,), default=0.0
        L2 penalty on the standardised kernel weights (mean over neurons of the squared
        norm), added to the training loss; an array gives each neuron its own penalty
        (forward training steps only).
    **kwargs
        Passed to :class:`skorch.NeuralNetRegressor`.
    """

    def __init__(self, *args, alpha: float = 0.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.alpha = alpha
        self.statistics: DesignStatistics | None = None

    def penalty(self) -> torch.Tensor:
        weight = self.module_.standardized_weight()
        alpha = torch.as_tensor(self.alpha, dtype=weight.dtype, device=weight.device)
        return (alpha * (weight**2).sum(dim=1)).sum() / weight.shape[0]

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        Xi, yi = batch
        if self.statistics is not None:
            loss = self.module_.statistics_loss(self.statistics, Xi["index"], self.alpha)
            loss.backward()
            return {"loss": loss, "y_pred": None}
        y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        if np.any(self.alpha):
            loss = loss + self.penalty()
        loss.backward()
        return {"loss": loss, "y_pred": y_pred}

    def __getstate__(self):
        state = super().__getstate__()
        state["statistics"] = None  # training data, not model state
        return state

    def notify(self, method_name, **cb_kwargs):
        try:
            super().notify(method_name, **cb_kwargs)
        except KeyboardInterrupt as exc:
            # skorch callbacks end training on purpose by raising KeyboardInterrupt once an
            # epoch is complete (early stopping, StopOnNonFinite): tell those apart from an
            # interruption (Ctrl-C) that cuts an epoch short.
            if method_name == "on_epoch_end" and not isinstance(exc, _StopTraining):
                raise _StopTraining from exc
            raise

    def fit_loop(self, *args, **kwargs):
        """skorch's training loop, recording an interruption in ``interrupted_epoch_``.

        ``interrupted_epoch_`` is the number of the epoch a KeyboardInterrupt cut short
        (``None`` when training ended normally or a callback stopped it after an epoch).
        skorch then ends training as if it were complete.
        """
        self.interrupted_epoch_ = None
        try:
            return super().fit_loop(*args, **kwargs)
        except _StopTraining:
            raise
        except KeyboardInterrupt:
            self.interrupted_epoch_ = len(self.history)
            raise


class _StopTraining(KeyboardInterrupt):
    """A callback ended training on purpose at the end of an epoch."""


class ValidCCNorm(Callback):
    """Record the validation cc_norm (mean over neurons) after each epoch as ``valid_cc_norm``.

    Uses the predictions that the validation step already made (no second forward pass)
    and the signal power of the validation repeats, computed once.

    Parameters
    ----------
    psth : ndarray of shape (n_stimuli, n_times, n_neurons)
        Validation PSTH, NaN on padding frames.
    signal_power : ndarray of shape (n_neurons,)
        Signal power of the validation repeats; where it is not positive or not finite the
        neuron's cc is used (single repeat) or the neuron is left out.
    """

    def __init__(self, psth: np.ndarray, signal_power: np.ndarray) -> None:
        self.psth = psth
        self.signal_power = signal_power

    def initialize(self):
        self._preds: list[torch.Tensor] = []
        self._target: torch.Tensor | None = None
        return self

    def on_epoch_begin(self, net, **kwargs):
        self._preds = []

    def on_batch_end(self, net, batch=None, training=None, y_pred=None, **kwargs):
        if not training:
            self._preds.append(y_pred.detach())

    def on_epoch_end(self, net, **kwargs):
        if self._preds:
            net.history.record("valid_cc_norm", self.score(torch.cat(self._preds)))

    def score(self, pred: torch.Tensor) -> float:
        """Mean validation cc_norm of predictions of shape (n_stimuli, n_times, n_neurons)."""
        if self._target is None or self._target[0].device != pred.device:
            psth = torch.as_tensor(self.psth, device=pred.device, dtype=torch.float64)
            sp = torch.as_tensor(self.signal_power, device=pred.device, dtype=torch.float64)
            self._target = (psth, sp)
        psth, sp = self._target
        return _pooled_cc_norm(pred.double(), psth, sp)


def _pooled_cc_norm(pred: torch.Tensor, psth: torch.Tensor, sp: torch.Tensor) -> float:
    """Mean over neurons of ``cov(pred, psth) / sqrt(var(pred) * sp)`` over finite frames."""
    mask = torch.isfinite(psth)
    n = mask.sum(dim=(0, 1)).clamp(min=1)
    p = torch.where(mask, psth, 0.0)
    q = torch.where(mask, pred, 0.0)
    p_c = torch.where(mask, p - p.sum((0, 1)) / n, 0.0)
    q_c = torch.where(mask, q - q.sum((0, 1)) / n, 0.0)
    cov = (p_c * q_c).sum((0, 1)) / n
    var_q = (q_c**2).sum((0, 1)) / n
    score = cov / torch.sqrt(var_q * sp)
    finite = torch.isfinite(score)
    if not finite.any():
        return float("nan")
    return float(score[finite].mean())


class StopOnNonFinite(Callback):
    """Stop training at the first non-finite training loss (a diverging fit).

    The fit then falls back to the best finite epoch when early stopping has one (with a
    warning raised by the estimator), and raises :class:`DivergenceError` otherwise.
    """

    def initialize(self):
        self.diverged_epoch_ = None
        return self

    def on_train_begin(self, net, **kwargs):
        self.diverged_epoch_ = None  # a warm-started fit is judged on its own epochs

    def on_epoch_end(self, net, **kwargs):
        loss = net.history[-1, "train_loss"]
        if not np.isfinite(loss):
            self.diverged_epoch_ = net.history[-1, "epoch"]
            raise KeyboardInterrupt


class LastEpochCheckpoint(Callback):
    """Keep a copy of the module's state after the last complete epoch of a training run.

    The estimator falls back to it when training is interrupted and no validated best
    epoch exists. Place it after :class:`StopOnNonFinite` so that a diverged epoch is never
    kept. The copy stays on the module's device.

    Attributes
    ----------
    state_ : dict or None
        ``state_dict`` after the last complete epoch of this run; None before the first.
    epoch_ : int or None
        Number of that epoch (as in ``net.history``).
    """

    def on_train_begin(self, net, **kwargs):
        self.state_, self.epoch_ = None, None

    def on_epoch_end(self, net, **kwargs):
        self.state_ = _copy_state(net.module_)
        self.epoch_ = net.history[-1, "epoch"]


def _copy_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in module.state_dict().items()}
