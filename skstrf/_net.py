"""The skorch net that trains an STRF model, its loss and its training callbacks."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import torch
from skorch import NeuralNetRegressor
from skorch.callbacks import Callback, EarlyStopping
from skorch.dataset import Dataset
from skorch.helper import predefined_split

from .metrics import signal_power
from ._model import DesignStatistics, STRFModel, calibrate_nonlinearity, net_inputs, net_targets
from ._validation import StimulusSet, user_stacklevel

__all__ = ["MaskedMSELoss", "MaskedPoissonLoss", "STRFNet", "ValidCCNorm", "StopOnNonFinite",
           "LastEpochCheckpoint", "DivergenceError", "build_net", "train_net",
           "record_closed_form_epoch", "check_finite_model", "start_from_closed_form",
           "default_callbacks", "check_net_params", "listens_to_training_batches"]

# skorch's routing prefixes that STRFRegressor passes through to its net.
NET_PARAM_PREFIXES = ("optimizer__", "iterator_train__", "iterator_valid__", "callbacks__")


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
    (:meth:`skstrf._model.STRFModel.statistics_loss`), which is exact and costs nothing per
    frame. Otherwise the step runs the module forward on the batch's stimuli. Validation
    always runs the module forward, so validation predictions are real predictions.

    **Statistics epochs.** A step on statistics costs one product of a (D+1, D+1) Gram with
    the (n_neurons, D+1) kernels, little enough that skorch's per-batch machinery (loading
    and collating the batch's frames, notifying every callback of each batch) adds to it
    noticeably. So the training half of such an epoch runs a loop of its own
    (:meth:`run_statistics_epoch`):
    the same shuffled batches from skorch's training iterator (its sampler and generator,
    over stimulus indices instead of frames), the same optimizer steps, and the same batch
    records in ``history`` (``train_loss``, ``train_batch_size``, ``train_batch_count``),
    so every epoch-level callback sees what skorch's loop would give it. Callbacks get
    no training-batch events (``on_batch_begin``, ``on_batch_end``, ``on_grad_computed``)
    there: a fit whose callbacks listen to them (a skorch ``LRScheduler`` stepping per
    batch, ``GradientNormClipping``, ``ProgressBar``, a callback of your own; see
    :func:`listens_to_training_batches`) runs skorch's loop instead, with the same
    results, more slowly.

    Parameters
    ----------
    alpha : float or ndarray of shape (n_neurons,), default=0.0
        L2 penalty on the standardised kernel weights (mean over neurons of the squared
        norm), added to the training loss; an array gives each neuron its own penalty
        (forward training steps only).
    **kwargs
        Passed to :class:`skorch.NeuralNetRegressor`.
    """

    #: dtype of the statistics step's product. The statistics are float64; another dtype
    #: makes a copy of the Grams, once per fit. float32
    #: halves the step's cost and trains the same models over a typical run (NS1's size,
    #: 100 epochs of AdamW at lr 1e-3: STRFs equal to 1.5e-6, test cc_norm to 1e-9), but
    #: its rounding of ``gram @ theta`` becomes a floor for the gradient, which AdamW's
    #: normalisation turns into steps: trained to convergence, a model then stays about
    #: 1e-3 (relative) from the optimum that float64 reaches to 1e-6. Hence float64.
    statistics_dtype: torch.dtype = torch.float64

    def __init__(self, *args, alpha: float = 0.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.alpha = alpha
        self.statistics: DesignStatistics | None = None

    def penalty(self) -> torch.Tensor:
        weight = self.module_.standardized_weight()
        alpha = torch.as_tensor(self.alpha, dtype=weight.dtype, device=weight.device)
        return (alpha * (weight**2).sum(dim=1)).sum() / weight.shape[0]

    def statistics_step(self, index: torch.Tensor) -> torch.Tensor:
        """Loss of the training stimuli ``index`` from ``statistics``, its gradient accumulated."""
        loss = self.module_.statistics_loss(self.statistics, index, self.alpha)
        loss.backward()
        return loss

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        Xi, yi = batch
        if self.statistics is not None:
            return {"loss": self.statistics_step(Xi["index"]), "y_pred": None}
        y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        if np.any(self.alpha):
            loss = loss + self.penalty()
        loss.backward()
        return {"loss": loss, "y_pred": y_pred}

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if training and self.statistics is not None and not any(
                listens_to_training_batches(cb) for _, cb in self.callbacks_):
            return self.run_statistics_epoch(iterator, prefix)
        return super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)

    def run_statistics_epoch(self, iterator, prefix: str = "train") -> None:
        """The training half of an epoch on ``statistics``, without per-batch callbacks.

        Draws the batches as skorch's loop would (``iterator``'s sampler and generator, over
        stimulus indices: ``net_inputs`` numbers the training stimuli ``0 .. S - 1`` as the
        rows of ``statistics``), makes the same optimizer steps, and records each batch's
        loss and size in ``history`` as skorch does, in one pass at the end of the epoch
        (or of its completed batches, when it is interrupted) so that the losses stay on
        the device until then.

        Parameters
        ----------
        iterator : torch.utils.data.DataLoader
            skorch's training iterator of this epoch; only its length and its sampling
            parameters are used, not its frames.
        prefix : str, default="train"
            Prefix of the history keys.
        """
        self._set_training(True)
        indices = self.get_iterator(range(len(iterator.dataset)), training=True)
        losses, sizes = [], []
        try:
            for rows in indices:
                # skorch's train_step without its on_grad_computed notification
                accumulator = self.get_train_step_accumulator()

                def closure(rows=rows, accumulator=accumulator):
                    self._zero_grad_optimizer()
                    step = {"loss": self.statistics_step(rows), "y_pred": None}
                    accumulator.store_step(step)
                    return step["loss"]

                self._step_optimizer(closure)
                losses.append(accumulator.get_step()["loss"].detach())
                sizes.append(len(rows))
        finally:
            values = torch.stack(losses).tolist() if losses else []
            for value, size in zip(values, sizes):
                self.history.new_batch()
                self.history.record_batch(prefix + "_loss", value)
                self.history.record_batch(prefix + "_batch_size", size)
        self.history.record(prefix + "_batch_count", len(values))

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


#: Callback methods that skorch calls once per batch (or per gradient).
_BATCH_EVENTS = ("on_batch_begin", "on_batch_end", "on_grad_computed")


def listens_to_training_batches(callback: Callback) -> bool:
    """Whether ``callback`` may act on training-batch events (see :class:`STRFNet`).

    True when its class overrides one of skorch's per-batch methods (``on_batch_begin``,
    ``on_batch_end``, ``on_grad_computed``), except :class:`ValidCCNorm`, which uses only
    validation batches. Such a callback makes a statistics fit run skorch's own loop.
    """
    if isinstance(callback, ValidCCNorm):
        return False
    return any(getattr(type(callback), name) is not getattr(Callback, name) for name in _BATCH_EVENTS)


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

    @classmethod
    def from_responses(cls, valid: StimulusSet) -> "ValidCCNorm":
        """The scorer of the validation stimuli ``valid`` (with their repeats).

        Without repeats the noise correction is undefined: such neurons are scored by plain
        cc instead (their PSTH variance stands for the signal power).
        """
        psth = valid.psth()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sp = signal_power(valid.y) if valid.y.shape[3] > 1 else np.full(valid.y.shape[2], np.nan)
        return cls(psth, np.where(np.isfinite(sp), sp, np.nanvar(psth, axis=(0, 1))))

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
    """Stop training at a diverging epoch: a training loss that is not finite, or that
    exceeds ``max_growth`` times the loss of the run's first training batch (a learning
    rate so large that the loss explodes without overflowing).

    The fit then falls back to the best validated epoch before it when early stopping has
    one (with a warning raised by the estimator), and raises :class:`DivergenceError`
    otherwise.

    Parameters
    ----------
    max_growth : float, default=1e6
        Growth of the training loss, relative to the starting model's, taken as divergence.
    """

    def __init__(self, max_growth: float = 1e6) -> None:
        self.max_growth = max_growth

    def initialize(self):
        self.diverged_epoch_ = self.reason_ = self.start_loss_ = None
        return self

    def on_train_begin(self, net, **kwargs):
        # a warm-started fit is judged on its own epochs
        self.diverged_epoch_ = self.reason_ = self.start_loss_ = None

    def on_epoch_end(self, net, **kwargs):
        if self.start_loss_ is None:
            # read from the history, not from batch events, which statistics epochs do not send
            self.start_loss_ = next((batch["train_loss"] for batch in net.history[-1, "batches"]
                                     if "train_loss" in batch), None)
        loss = net.history[-1, "train_loss"]
        start = self.start_loss_
        exploded = start is not None and np.isfinite(start) and start > 0 and loss > self.max_growth * start
        if not np.isfinite(loss) or exploded:
            self.diverged_epoch_ = net.history[-1, "epoch"]
            self.reason_ = ("became non-finite" if not np.isfinite(loss) else
                            f"grew to {loss:.3g}, more than {self.max_growth:g} times its start "
                            f"({start:.3g}),")
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


def _silent(*args, **kwargs) -> None:
    """skorch sink that prints nothing (the epoch table already shows progress)."""


def default_callbacks(valid: StimulusSet | None, patience: int | None,
                      max_epochs: int) -> list[tuple[str, Callback]]:
    """The callbacks every STRF fit has, in order: validation score, divergence guard,
    early stopping with best-epoch restore (with validation stimuli), last-epoch copy."""
    callbacks: list[tuple[str, Callback]] = [("stop_on_non_finite", StopOnNonFinite())]
    if valid is not None:
        callbacks.insert(0, ("valid_cc_norm", ValidCCNorm.from_responses(valid)))
        callbacks.append(("early_stopping", EarlyStopping(
            monitor="valid_cc_norm", lower_is_better=False,
            patience=patience if patience is not None else max_epochs + 1,
            threshold=1e-4, threshold_mode="abs", load_best=True, sink=_silent)))
    callbacks.append(("last_epoch", LastEpochCheckpoint()))
    return callbacks


def check_callbacks(callbacks: list | None) -> None:
    """Raise a ValueError naming the first entry of ``callbacks`` that skorch cannot use.

    skorch takes callback instances, callback classes and ``(name, callback)`` pairs.
    """
    for i, entry in enumerate(callbacks or []):
        named = isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str)
        callback = entry[1] if named else entry
        if isinstance(callback, Callback) or (isinstance(callback, type) and issubclass(callback, Callback)):
            continue
        raise ValueError(
            f"callbacks[{i}] is {entry!r}, which is not a skorch callback: pass instances (or "
            "classes) of skorch.callbacks.Callback, or (name, callback) pairs."
        )


def _check_routed_callbacks(net: STRFNet, params: dict) -> None:
    """Raise if a ``callbacks__<name>__...`` parameter names no callback of ``net``."""
    known = [name for name, _ in net.callbacks_]
    for key in sorted(params):
        if key.startswith("callbacks__"):
            name = key[len("callbacks__"):].split("__")[0]
            if name not in known:
                raise ValueError(
                    f"parameter {key!r} addresses a callback named {name!r}, but this fit has "
                    f"no such callback; its callbacks are {known} (early_stopping and "
                    "valid_cc_norm exist only with validation stimuli)."
                )


def check_net_params(params: dict) -> dict:
    """Return ``params`` after checking every name is routed to the net by a skorch prefix."""
    unknown = sorted(key for key in params if not key.startswith(NET_PARAM_PREFIXES))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {unknown} for STRFRegressor: extra keyword parameters are "
            f"passed to the skorch net and must start with one of {list(NET_PARAM_PREFIXES)}."
        )
    return params


def build_net(module: STRFModel, train: StimulusSet, valid: StimulusSet | None, *, device: str,
              loss: str, lr: float, max_epochs: int, batch_size: int | None, patience: int | None,
              alpha: float, callbacks: list | None = None, verbose: int = 0,
              net_params: dict | None = None, previous: STRFNet | None = None,
              seed: int = 0) -> STRFNet:
    """An initialised :class:`STRFNet` that trains ``module`` on ``train``.

    The validation stimuli ``valid`` (if any) drive early stopping on cc_norm. The loss is
    the MSE in units of each neuron's PSTH variance, or the Poisson deviance scaled to the
    same curvature. With ``previous`` (a warm start) the optimizer's running state and the
    history carry over. The stimulus shuffling draws from a generator of the net's own,
    seeded with ``seed`` (as do the data loaders' worker seeds): never from torch's global
    generator, so that fits in parallel threads do not disturb each other.
    """
    y_mean, y_scale = module.y_mean.double().cpu().numpy(), module.y_scale.double().cpu().numpy()
    if loss == "poisson":
        # The deviance's curvature in the rate is about 2 / mean rate; scaling by
        # mean / variance gives it the curvature of the standardised MSE, so that every
        # neuron counts alike and alpha means the same for both losses.
        criterion = MaskedPoissonLoss
        weight = np.where(y_mean > 0, y_mean, y_scale) / y_scale**2
    else:
        criterion, weight = MaskedMSELoss, 1.0 / y_scale**2
    train_split = None if valid is None else predefined_split(
        Dataset(net_inputs(valid, device, module), net_targets(valid, device, module)))
    n_train = train.n_stimuli
    check_callbacks(callbacks)
    net = STRFNet(
        module,
        criterion=criterion,
        criterion__weight=torch.as_tensor(weight, dtype=torch.float32),
        optimizer=torch.optim.AdamW,
        lr=lr,
        max_epochs=max_epochs,
        batch_size=n_train if batch_size is None else min(batch_size, n_train),
        train_split=train_split,
        callbacks=default_callbacks(valid, patience, max_epochs) + list(callbacks or []),
        device=device,
        verbose=verbose,
        alpha=alpha,
        **{"optimizer__weight_decay": 0.0, "iterator_train__shuffle": True,
           "iterator_train__generator": torch.Generator().manual_seed(seed),
           "iterator_valid__generator": torch.Generator().manual_seed(seed),
           **(net_params or {})},
    )
    try:
        net.initialize()
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"the skorch net could not be set up with lr={lr!r} and the routed parameters "
            f"{net_params or {}}: {exc}"
        ) from exc
    _check_routed_callbacks(net, net_params or {})
    if previous is not None:
        # Only the per-parameter state (e.g. AdamW's moments) is carried: the hyperparameters
        # (lr, routed optimizer__ values) are this fit's. Deep copies, so that a fit that
        # fails leaves the previous net exactly as it was.
        state = net.optimizer_.state_dict()
        state["state"] = copy.deepcopy(previous.optimizer_.state_dict()["state"])
        net.optimizer_.load_state_dict(state)
        net.history_ = copy.deepcopy(previous.history_)
    return net


def start_from_closed_form(net: STRFNet, solution, train: StimulusSet, *, load: bool = True) -> None:
    """Take the penalty of a closed-form solution and (with ``load``) start from its model.

    Gradient training then keeps each neuron's closed-form penalty (chosen by
    cross-validation or on the validation stimuli), and a nonlinearity starts fitted to the
    closed-form linear stage.

    Parameters
    ----------
    solution : skstrf._solvers.ClosedFormSolution
    load : bool, default=True
        Set the model to the solution (the fit itself, or the start of gradient training);
        False only takes its penalties (gradient training from a random start).
    """
    net.alpha = solution.alpha.cpu().numpy().astype(np.float32)
    if not load:
        return
    module = net.module_
    module.load_closed_form_(solution.weight, solution.moments.z_mean, solution.moments.p_mean)
    loss = "poisson" if isinstance(net.criterion_, MaskedPoissonLoss) else "mse"
    calibrate_nonlinearity(module, train, str(net.device), loss)


def train_net(net: STRFNet, train: StimulusSet, statistics: DesignStatistics | None,
              valid: StimulusSet | None = None) -> None:
    """Train ``net`` on ``train`` by gradient, then settle it.

    With ``statistics`` (a linear least-squares model) every step is frame-free. With
    validation stimuli ``valid``, the fit never ends below where it started: when the
    starting model scores a higher validation cc_norm than every trained epoch, it is
    restored (``net.kept_start_`` is then True).
    """
    device = str(net.device)
    start_state, start_score = None, float("nan")
    if valid is not None:
        # the validation loader draws from its own generator, not the training shuffle's
        with torch.no_grad():
            pred = net.forward(net_inputs(valid, device, net.module_), training=False, device=device)
        start_score = dict(net.callbacks_)["valid_cc_norm"].score(pred)
        start_state = _copy_state(net.module_)
    first = len(net.history)
    net.statistics = _step_statistics(statistics, net.statistics_dtype)
    try:
        net.partial_fit(net_inputs(train, device, net.module_), net_targets(train, device, net.module_))
    finally:
        net.statistics = None
    _settle_training(net)
    run = np.array([epoch.get("valid_cc_norm", np.nan) for epoch in list(net.history)[first:]], dtype=float)
    best = np.nanmax(run) if np.isfinite(run).any() else -np.inf
    net.start_valid_cc_norm_ = start_score
    net.kept_start_ = bool(np.isfinite(start_score) and start_score > best)
    if net.kept_start_:
        net.module_.load_state_dict(start_state)


def _step_statistics(statistics: DesignStatistics | None, dtype: torch.dtype) -> DesignStatistics | None:
    """``statistics`` as the training step reads them fastest, made once per fit: the
    cross-products laid out neuron-major (a copy, ``n_neurons / (D + 1)`` of the Grams'
    size; same shape and values), the Gram in ``dtype`` (a copy unless it is theirs)."""
    if statistics is None:
        return None
    cross = statistics.cross.transpose(1, 2).to(dtype, memory_format=torch.contiguous_format).transpose(1, 2)
    return DesignStatistics(statistics.gram.to(dtype), cross, statistics.sq, statistics.count)


def _settle_training(net: STRFNet) -> None:
    """Settle the model after a divergence or an interruption of gradient training.

    skorch ends training on both as if it were complete; here the model is set to the
    best validated epoch of this run (early stopping has already restored it) or, after
    an interruption without one, to the last complete epoch, with a warning. When no
    such epoch exists, :class:`DivergenceError` or ``KeyboardInterrupt`` is raised
    before the estimator stores anything, so it keeps its previous state.
    """
    callbacks = dict(net.callbacks_)
    early = callbacks.get("early_stopping")
    # skorch's EarlyStopping reports best_epoch_ = 0 until an epoch improves.
    validated = early is not None and early.best_model_weights_ is not None
    best = early.best_epoch_ if validated else None
    guard = callbacks["stop_on_non_finite"]
    diverged = guard.diverged_epoch_
    interrupted = getattr(net, "interrupted_epoch_", None)
    if diverged is not None:
        if best is None:
            raise DivergenceError(
                f"training diverged: the training loss {guard.reason_} at epoch "
                f"{diverged} and no earlier epoch has a finite validation score to fall "
                f"back to (or no stimulus is held out); the estimator was not updated. "
                f"Lower lr (now {net.lr}) or rescale X and y."
            )
        warnings.warn(
            f"training diverged at epoch {diverged} ("
            f"{'non-finite' if guard.reason_ == 'became non-finite' else 'exploding'} loss); the model of the "
            f"best finite epoch ({best}) was restored. Consider a lower lr (now {net.lr}).",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
    elif interrupted is not None:
        last = callbacks["last_epoch"]
        if best is None and last.epoch_ is None:
            raise KeyboardInterrupt(
                f"fit interrupted during epoch {interrupted}, before any epoch completed; "
                "the estimator was left as it was before this fit."
            )
        if best is None:
            net.module_.load_state_dict(last.state_)
        kept = (f"best validated epoch ({best})" if best is not None
                else f"last complete epoch ({last.epoch_})")
        warnings.warn(
            f"fit interrupted (KeyboardInterrupt) during epoch {interrupted}; keeping the "
            f"model of the {kept}. history_ ends with the incomplete epoch.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    elif early is not None and best is None:
        warnings.warn(
            "the validation cc_norm was undefined (NaN) at every epoch (signal power not "
            "positive for any neuron on the validation stimuli, or constant predictions), "
            "so early stopping could not select an epoch: keeping the last one. Hold out "
            "more or longer stimuli, or pass validation_fraction=None.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )


def record_closed_form_epoch(net: STRFNet, train_stats: DesignStatistics, valid: StimulusSet | None) -> None:
    """Write a one-epoch history for a closed-form fit (losses and validation cc_norm)."""
    device = str(net.device)
    net.history.new_epoch()
    net.history.record("epoch", 1)
    with torch.no_grad():
        index = torch.arange(train_stats.gram.shape[0])
        # the penalised loss, as gradient training records it, so that both compare
        loss = net.module_.statistics_loss(train_stats, index, net.alpha)
        net.history.record("train_loss", float(loss))
        if valid is not None:
            pred = net.forward(net_inputs(valid, device, net.module_), training=False, device=device)
            net.history.record("valid_loss", float(net.get_loss(pred, net_targets(valid, device, net.module_))))
            scorer = dict(net.callbacks_)["valid_cc_norm"]
            net.history.record("valid_cc_norm", scorer.score(pred))


def check_finite_model(module: STRFModel, lr: float) -> None:
    """Raise DivergenceError if the fitted STRFs or intercepts are not finite."""
    with torch.no_grad():
        finite = bool(torch.isfinite(module.strf()).all() and torch.isfinite(module.intercept()).all())
    if not finite:
        raise DivergenceError(
            "the fitted model has non-finite STRF or intercept values; the estimator was "
            f"not updated. Lower lr (now {lr}), set alpha > 0, or rescale X and y."
        )
