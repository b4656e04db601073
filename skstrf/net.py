"""The skorch net that trains an STRF model, its loss and its training callbacks."""

from __future__ import annotations

import numpy as np
import torch
from skorch import NeuralNetRegressor
from skorch.callbacks import Callback

from .model import DesignStatistics

__all__ = ["MaskedMSELoss", "STRFNet", "ValidCCNorm", "StopOnNonFinite", "DivergenceError"]


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


class STRFNet(NeuralNetRegressor):
    """skorch ``NeuralNetRegressor`` with an L2 penalty and a frame-free training step.

    When ``statistics`` is set (a linear model trained with the MSE), each training step
    computes the loss of its batch of stimuli from their sufficient statistics
    (:meth:`skstrf.model.STRFModel.statistics_loss`), which is exact and costs nothing per
    frame. Otherwise the step runs the module forward on the batch's stimuli. Validation
    always runs the module forward, so validation predictions are real predictions.

    Parameters
    ----------
    alpha : float, default=0.0
        L2 penalty on the standardised kernel weights (mean over neurons of the squared
        norm), added to the training loss.
    **kwargs
        Passed to :class:`skorch.NeuralNetRegressor`.
    """

    def __init__(self, *args, alpha: float = 0.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.alpha = alpha
        self.statistics: DesignStatistics | None = None

    def penalty(self) -> torch.Tensor:
        weight = self.module_.standardized_weight()
        return self.alpha * (weight**2).sum() / weight.shape[0]

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        Xi, yi = batch
        if self.statistics is not None:
            loss = self.module_.statistics_loss(self.statistics, Xi["index"], self.alpha)
            loss.backward()
            return {"loss": loss, "y_pred": None}
        y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        if self.alpha:
            loss = loss + self.penalty()
        loss.backward()
        return {"loss": loss, "y_pred": y_pred}

    def __getstate__(self):
        state = super().__getstate__()
        state["statistics"] = None  # training data, not model state
        return state


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

    def on_epoch_end(self, net, **kwargs):
        loss = net.history[-1, "train_loss"]
        if not np.isfinite(loss):
            self.diverged_epoch_ = net.history[-1, "epoch"]
            raise KeyboardInterrupt
