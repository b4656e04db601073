"""The skorch net that trains an STRF model, its loss and its training callbacks."""

from __future__ import annotations

import contextlib
import copy
import functools
import warnings

import numpy as np
import torch
from skorch import NeuralNetRegressor
from skorch.callbacks import Callback, EarlyStopping
from skorch.dataset import Dataset
from skorch.helper import predefined_split

from ._design import DesignStatistics
from .kernels import keep_ranks
from ._losses import MaskedMSELoss, MaskedPoissonLoss, statistics_loss
from ._model import STRFModel, calibrate_nonlinearity, net_inputs, net_targets, stimulus_tensors
from ._penalty import Penalty
from ._plan import SWITCHABLE_CALLBACKS
from ._solvers import penalty_refit
from ._validation import StimulusSet
from ._warnings import user_stacklevel
from .metrics import ScoreSums, cc_norm_from_sums

__all__ = ["STRFNet", "ValidCCNorm", "StopOnNonFinite",
           "LastEpochCheckpoint", "DivergenceError", "build_net", "train_net",
           "record_closed_form_epoch", "check_finite_model", "start_from_closed_form",
           "default_callbacks", "listens_to_training_batches", "refit_kept_start", "MarkRefit",
           "user_callbacks", "reserved_callback_names", "callback_name", "check_callback_names"]

class DivergenceError(FloatingPointError):
    """Raised when training produced a non-finite loss before any finite best epoch."""


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
    penalty : skstrf._penalty.Penalty or None, default=None
        The penalty on the standardised kernel weights, added to every training loss
        (:meth:`skstrf._penalty.Penalty.value`); None: no penalty.
    **kwargs
        Passed to :class:`skorch.NeuralNetRegressor`.
    """

    #: dtype of the statistics step's product. The statistics are float64; another dtype
    #: makes a copy of the Grams, once per fit. float32 would halve the step's cost, but its
    #: rounding of ``gram @ theta`` becomes a floor for the gradient, which AdamW's
    #: normalisation turns into steps: trained to convergence, a model then stays off the
    #: optimum that float64 reaches (``benchmarks/gradient_step.py`` measures both).
    statistics_dtype: torch.dtype = torch.float64

    def __init__(self, *args, penalty: Penalty | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.penalty = penalty
        self.statistics: DesignStatistics | None = None
        # the mean number of scored targets (frames times neurons) and of frames of a
        # training stimulus, while train_net trains (None otherwise)
        self.values_per_stimulus: float | None = None
        self.frames_per_stimulus: float | None = None

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """The batch's loss; in training, a sum over its frames in units of a mean stimulus.

        The criterion averages over the batch's frames, so that with batches of one
        stimulus every stimulus would weigh the same in an epoch whatever its length: the
        frames of a short stimulus would count several times more than those of a long one,
        unlike in the closed form, the nonlinearity's calibration and the score, which
        count every frame alike. Scaled by the batch's frames over those of as many
        average training stimuli, an epoch's batches sum to the mean loss over every
        training frame: every frame counts alike (nothing changes when all stimuli have
        the same length).
        """
        loss = super().get_loss(y_pred, y_true, X=X, training=training)
        if training and self.values_per_stimulus is not None:
            counted = torch.isfinite(torch.as_tensor(y_true)).sum()
            loss = loss * (counted / (self.values_per_stimulus * y_true.shape[0]))
        return loss

    def penalty_value(self) -> torch.Tensor:
        """The penalty of the module's current kernels (0 without a penalty)."""
        weight = self.module_.standardized_weight()
        return weight.new_zeros(()) if self.penalty is None else self.penalty.value(weight)

    def statistics_loss(self, stats: DesignStatistics, index=None) -> torch.Tensor:
        """The penalised training loss of the rows ``index`` of ``stats`` (all by default),
        from the statistics: exact for a linear model (:func:`skstrf._losses.statistics_loss`)."""
        module = self.module_
        gram, cross, sq, count = stats.summed(index)
        data = statistics_loss(module.standardized_weight(), module.bias, gram, cross, sq, count)
        if index is not None and self.frames_per_stimulus is not None:
            # a sum over the batch's frames in units of a mean stimulus, as get_loss
            data = data * (count / (self.frames_per_stimulus * torch.as_tensor(index).numel()))
        return (data + self.penalty_value()).float()

    def statistics_step(self, index: torch.Tensor) -> torch.Tensor:
        """Loss of the training stimuli ``index`` from ``statistics``, its gradient accumulated."""
        loss = self.statistics_loss(self.statistics, index)
        loss.backward()
        return loss

    def _train_mode(self) -> None:
        """Module and criterion in training mode (what skorch's training step does first)."""
        self.module_.train(True)
        self.criterion_.train(True)

    def train_step_single(self, batch, **fit_params):
        self._train_mode()
        Xi, yi = batch
        if self.statistics is not None:
            return {"loss": self.statistics_step(Xi["index"]), "y_pred": None}
        y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True) + self.penalty_value()
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
        self._train_mode()
        indices = self.get_iterator(range(len(iterator.dataset)), training=True)
        losses, sizes = [], []
        try:
            for rows in indices:
                # skorch's train_step without its on_grad_computed notification
                accumulator = self.get_train_step_accumulator()

                def closure(rows=rows, accumulator=accumulator):
                    self.optimizer_.zero_grad()
                    step = {"loss": self.statistics_step(rows), "y_pred": None}
                    accumulator.store_step(step)
                    return step["loss"]

                self.optimizer_.step(closure)
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

    def initialize_optimizer(self, triggered_directly=None):
        """skorch's optimizer, unless this net was made for a fit that takes no step
        (``defer_optimizer_``, set by :func:`build_net`): then it is made on first use
        (:meth:`ensure_optimizer`: training, ``optimizer_``, a warm start).

        The first optimizer a process makes imports ``torch._dynamo`` (torch's optimizers
        are wrapped to be skipped by ``torch.compile``): 1.3-1.5 s on 2 cores, three times a
        default closed-form fit of NS1's size, which never steps.
        """
        if self._optimizer_deferred():
            if "optimizer" not in self.prefixes_:
                # registered as skorch registers a made one (routed parameters, virtual
                # ``lr``, the optimizers its loops step), so that every use of
                # ``optimizer_`` makes it (:meth:`__getattr__`)
                self._register_attribute("optimizer_", None)
            return self
        return super().initialize_optimizer(triggered_directly)

    def _optimizer_deferred(self) -> bool:
        """Whether the optimizer's making is deferred and it is not made yet (read from the
        instance's dict: :meth:`__getattr__` must not recurse)."""
        return bool(self.__dict__.get("defer_optimizer_")) and "optimizer_" not in self.__dict__

    def ensure_optimizer(self) -> None:
        """Make the optimizer now if its making was deferred (see :meth:`initialize_optimizer`),
        as skorch's ``initialize`` would have made it, its virtual parameters (``lr``)
        registered."""
        if self._optimizer_deferred():
            self.defer_optimizer_ = False
            self._initialize_optimizer()

    def __getattr__(self, name):
        # only reached when normal lookup fails: a deferred optimizer is made when asked for
        if name == "optimizer_" and self.__dict__.get("initialized_") and self._optimizer_deferred():
            self.ensure_optimizer()
            return self.__dict__["optimizer_"]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

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
        self.ensure_optimizer()  # skorch steps the optimizers it has registered
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
    """Record the validation score (mean cc_norm over neurons) after each epoch as ``valid_cc_norm``.

    The score is the one of :meth:`skstrf.STRFRegressor.score` on the validation stimuli
    (:func:`skstrf.metrics.cc_norm_from_sums`, with its rules: cc when no stimulus has two
    repeats, neurons without a positive signal power left out of the mean), computed from
    the predictions that the validation step already made (no second forward pass) and the
    responses' part of the sums, made once.

    Parameters
    ----------
    responses : skstrf.metrics.ScoreSums
        The validation responses' sums (:meth:`skstrf.metrics.ScoreSums.of` without
        predictions).
    psth : ndarray of shape (n_stimuli, n_times, n_neurons)
        Validation PSTH, NaN on padding frames.
    """

    def __init__(self, responses: ScoreSums, psth: np.ndarray) -> None:
        self.responses = responses
        self.psth = psth

    @classmethod
    def from_responses(cls, valid: StimulusSet) -> "ValidCCNorm":
        """The scorer of the validation stimuli ``valid`` (with their repeats; a lead-in is
        not scored)."""
        return cls(ScoreSums.of(valid.scored(valid.y)), valid.scored(valid.psth()))

    def initialize(self):
        self._preds: list[torch.Tensor] = []
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
        """Mean validation cc_norm of predictions of shape (n_stimuli, n_times, n_neurons);
        NaN when a prediction is not finite (a diverging model) or no neuron has a score."""
        pred = pred.detach().double().cpu().numpy()
        if not np.isfinite(pred[~np.isnan(self.psth)]).all():
            return float("nan")
        with warnings.catch_warnings():  # its caveats are score()'s, said when the user scores
            warnings.simplefilter("ignore")
            return float(cc_norm_from_sums(self.responses.with_predictions(pred, self.psth)))


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


class MarkRefit(Callback):
    """Record ``refit=True`` in every epoch of a final training on every stimulus, as the
    epoch begins, so that the other callbacks can tell its epochs from the validated run's."""

    def on_epoch_begin(self, net, **kwargs):
        net.history.record("refit", True)


#: Names of the callbacks that :func:`default_callbacks` may add.
_OWN_CALLBACKS = ("refit", "valid_cc_norm", "stop_on_non_finite", "early_stopping", "last_epoch")
#: ... of those that exist only with validation stimuli.
_VALIDATION_CALLBACKS = ("valid_cc_norm", "early_stopping")


@functools.cache
def reserved_callback_names() -> tuple[str, ...]:
    """The names a user's callback may not take: skorch's default callbacks of the net
    (``epoch_timer``, ``train_loss``, ``valid_loss``, ``print_log``) and those of
    :func:`default_callbacks`. skorch refuses a user callback named like one of its defaults
    (a duplicate name); the final training on every stimulus tells the user's callbacks from
    the estimator's by these names (:func:`user_callbacks`), so none may be taken."""
    return tuple(name for name, _ in STRFNet(torch.nn.Identity).get_default_callbacks()) + _OWN_CALLBACKS


def callback_name(entry) -> str:
    """The name skorch gives a ``callbacks`` entry: the name of a ``(name, callback)`` pair,
    else the class name of the callback (or of the class given)."""
    if isinstance(entry, (tuple, list)):
        return entry[0]
    return entry.__name__ if isinstance(entry, type) else type(entry).__name__


def check_callback_names(callbacks: list | None) -> None:
    """Raise a ValueError when an entry of the user's ``callbacks`` (checked by
    :func:`skstrf._plan.check_callbacks`) is named like one of the net's own callbacks
    (:func:`reserved_callback_names`)."""
    reserved = reserved_callback_names()
    for i, entry in enumerate(callbacks or []):
        if callback_name(entry) in reserved:
            raise ValueError(
                f"callbacks[{i}] is named {callback_name(entry)!r}, a name of the net's own callbacks "
                f"{list(reserved)}; give yours another name. To change one of the net's own, route "
                "its settings (e.g. callbacks__early_stopping__patience=20)."
            )


def user_callbacks(net: STRFNet) -> list[tuple[str, Callback]]:
    """The callbacks of ``net`` that the user gave, as ``(name, instance)`` pairs in order:
    all but skorch's defaults and :func:`default_callbacks`'. Exact because a user's
    callback never bears one of their names (:func:`reserved_callback_names`, which the
    estimator checks before any work)."""
    own = set(reserved_callback_names())
    return [(name, cb) for name, cb in net.callbacks_ if name not in own]


def _addresses(key: str, names) -> bool:
    """Whether the routed parameter ``key`` sets (or replaces) one of the callbacks ``names``."""
    return any(key == f"callbacks__{name}" or key.startswith(f"callbacks__{name}__") for name in names)


@contextlib.contextmanager
def _initialised(callbacks):
    """Within the block, ``initialize()`` of each of ``callbacks`` leaves it as it is (an
    instance attribute shadows the method; removed on exit)."""
    shadowed = []
    try:
        for cb in callbacks:
            if "initialize" not in vars(cb):
                cb.initialize = (lambda cb=cb: cb)
                shadowed.append(cb)
        yield
    finally:
        for cb in shadowed:
            del cb.initialize


def _copy_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in module.state_dict().items()}


def _silent(*args, **kwargs) -> None:
    """skorch sink that prints nothing (the epoch table already shows progress)."""


def default_callbacks(valid: StimulusSet | None, patience: int | None,
                      max_epochs: int, final: bool = False) -> list[tuple[str, Callback]]:
    """The callbacks every STRF fit has, in order: validation score, divergence guard,
    early stopping with best-epoch restore (with validation stimuli), last-epoch copy;
    with ``final`` (the final training of a fine-tuned model on every stimulus), first the
    marker of its epochs (:class:`MarkRefit`)."""
    callbacks: list[tuple[str, Callback]] = [("stop_on_non_finite", StopOnNonFinite())]
    if final:
        callbacks.insert(0, ("refit", MarkRefit()))
    if valid is not None:
        callbacks.insert(0, ("valid_cc_norm", ValidCCNorm.from_responses(valid)))
        callbacks.append(("early_stopping", EarlyStopping(
            monitor="valid_cc_norm", lower_is_better=False,
            patience=patience if patience is not None else max_epochs + 1,
            threshold=1e-4, threshold_mode="abs", load_best=True, sink=_silent)))
    callbacks.append(("last_epoch", LastEpochCheckpoint()))
    return callbacks


def _check_routed_callbacks(net: STRFNet, params: dict) -> None:
    """Raise if a ``callbacks__<name>__...`` parameter names no callback of ``net``; a
    callback switched off (``callbacks__<name>=None``: skorch's way, for the user's own
    and :data:`skstrf._plan.SWITCHABLE_CALLBACKS`) is known too."""
    known = [name for name, _ in net.callbacks_]
    switchable = set(SWITCHABLE_CALLBACKS) | {callback_name(entry) for entry in net.callbacks or []}
    for key in sorted(params):
        if key.startswith("callbacks__"):
            name = key[len("callbacks__"):].split("__")[0]
            if key == f"callbacks__{name}" and params[key] is None and name in switchable:
                continue
            if name not in known:
                raise ValueError(
                    f"parameter {key!r} addresses a callback named {name!r}, but this fit has "
                    f"no such callback; its callbacks are {known} (early_stopping and "
                    "valid_cc_norm exist only with validation stimuli)."
                )


def build_net(module: STRFModel, n_train: int, valid: StimulusSet | None, *, device: str,
              loss: str, lr: float, max_epochs: int, batch_size: int | None, patience: int | None,
              penalty: Penalty, callbacks: list | None = None, verbose: int = 0,
              net_params: dict | None = None, previous: STRFNet | None = None,
              seed: int = 0, continues: STRFNet | None = None, steps: bool = True) -> STRFNet:
    """An initialised :class:`STRFNet` that trains ``module`` on ``n_train`` stimuli.

    The validation stimuli ``valid`` (if any) drive early stopping on cc_norm. The loss is
    the MSE in units of each neuron's PSTH variance, or the Poisson deviance scaled to the
    same curvature. With ``previous`` (a warm start) the optimizer's running state and the
    history carry over. The stimulus shuffling draws from a generator of the net's own,
    seeded with ``seed`` (as do the data loaders' worker seeds): never from torch's global
    generator, so that fits in parallel threads do not disturb each other.

    With ``continues`` (the validated net of the same ``fit``, for its final training on
    every stimulus) the user's ``callbacks`` are that net's instances, under the same
    names, and are not initialised again: one ``fit`` of the estimator initialises them
    once, as skorch's ``fit`` does, and the final training continues them as skorch's
    ``partial_fit`` would (``on_train_begin`` and ``on_train_end`` again, no
    ``initialize``). Its epochs record ``refit=True`` as they begin. The routed settings
    of early stopping (``callbacks__early_stopping__...``) are not passed to it: they chose
    the validated run's epochs, and it has no validation stimuli. Likewise, with
    ``previous``, the instances among ``callbacks`` that the previous net held continue
    without a new ``initialize()``, as with skorch's ``warm_start``.

    ``steps=False`` (a closed-form fit: no gradient step) defers the optimizer's making to
    its first use (:meth:`STRFNet.initialize_optimizer`), unless optimizer parameters were
    routed (``optimizer__...``): those are checked by making it, as for a fit that steps.
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
    user = list(callbacks or []) if continues is None else user_callbacks(continues)
    # instances that a run of this fit (continues) or the previous fit (a warm start, as
    # skorch's warm_start) already initialised continue: not initialised again
    given = [entry[1] if isinstance(entry, (tuple, list)) else entry for entry in user]
    held = [] if (continues or previous) is None else [cb for _, cb in (continues or previous).callbacks_]
    kept = [cb for cb in given if any(cb is other for other in held)]
    if continues is not None and valid is None:
        # routed settings of early stopping chose the validated run's epochs; this run has none
        net_params = {k: v for k, v in (net_params or {}).items() if not _addresses(k, _VALIDATION_CALLBACKS)}
    net = STRFNet(
        module,
        criterion=criterion,
        criterion__weight=torch.as_tensor(weight, dtype=torch.float32),
        optimizer=torch.optim.AdamW,
        lr=lr,
        max_epochs=max_epochs,
        batch_size=n_train if batch_size is None else min(batch_size, n_train),
        train_split=train_split,
        callbacks=default_callbacks(valid, patience, max_epochs, final=continues is not None) + user,
        device=device,
        verbose=verbose,
        penalty=penalty,
        **{"optimizer__weight_decay": 0.0, "iterator_train__shuffle": True,
           "iterator_train__generator": torch.Generator().manual_seed(seed),
           "iterator_valid__generator": torch.Generator().manual_seed(seed),
           **(net_params or {})},
    )
    routed = any(key.startswith("optimizer__") for key in (net_params or {}))
    net.defer_optimizer_ = not steps and not routed
    try:
        with _initialised(kept):
            net.initialize()
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"the skorch net could not be set up with lr={lr!r} and the routed parameters "
            f"{net_params or {}}: {exc}"
        ) from exc
    _check_routed_callbacks(net, net_params or {})
    if previous is not None:
        if "optimizer_" in vars(previous):  # an optimizer never made has no state to carry
            # Only the per-parameter state (e.g. AdamW's moments) is carried: the
            # hyperparameters (lr, routed optimizer__ values) are this fit's. Deep copies, so
            # that a fit that fails leaves the previous net exactly as it was.
            state = net.optimizer_.state_dict()
            state["state"] = copy.deepcopy(previous.optimizer_.state_dict()["state"])
            net.optimizer_.load_state_dict(state)
        net.history_ = copy.deepcopy(previous.history_)
    return net


def start_from_closed_form(net: STRFNet, solution, train: StimulusSet | None, *, load: bool = True) -> None:
    """Take the penalty of a closed-form solution and (with ``load``) start from its model.

    Gradient training then keeps each neuron's closed-form penalty (chosen by
    cross-validation or on the validation stimuli), and a nonlinearity starts fitted to the
    closed-form linear stage.

    Parameters
    ----------
    solution : skstrf._solvers.ClosedFormSolution
    train : StimulusSet or None
        The training stimuli, which a nonlinearity is calibrated on (None: data not in
        memory, whose models have none).
    load : bool, default=True
        Set the model to the solution (the fit itself, or the start of gradient training);
        False only takes its penalties (gradient training from a random start).
    """
    net.penalty = solution.penalty
    if not load:
        return
    module = net.module_
    if solution.rank is not None:  # each neuron keeps the rank chosen for it, trained or not
        keep_ranks(module.kernel, solution.rank)
    module.load_closed_form_(solution.weight, solution.moments.z_mean, solution.moments.p_mean)
    if module.nonlinearity is not None:
        loss = "poisson" if isinstance(net.criterion_, MaskedPoissonLoss) else "mse"
        calibrate_nonlinearity(module, train, str(net.device), loss)


def train_net(net: STRFNet, train: StimulusSet, statistics: DesignStatistics | None,
              valid: StimulusSet | None = None, *, fitted_start: bool = False) -> None:
    """Train ``net`` on ``train`` by gradient, then settle it.

    With ``statistics`` (a linear least-squares model) every step is frame-free. With
    validation stimuli ``valid``, the fit never ends below where it started: when the
    starting model scores a higher validation cc_norm than every trained epoch, it is
    restored (``net.kept_start_`` is then True). ``net.validated_epochs_`` is the number of
    epochs of this run the kept model was trained for: early stopping's best epoch, 0 for a
    kept start, the last epoch when no epoch had a validation score (None without
    validation stimuli, or after an interruption).

    ``fitted_start``: the model starts as a fit of its own (the closed-form start, its
    penalty cross-validated), which training that diverges before any validated epoch falls
    back to, with a warning, instead of raising :class:`DivergenceError` (see
    :func:`_settle_training`).
    """
    device = str(net.device)
    start_state, start_score = None, float("nan")
    if valid is not None:
        # the validation loader draws from its own generator, not the training shuffle's
        with torch.no_grad():
            pred = net.forward(net_inputs(valid, device, net.module_), training=False, device=device)
        start_score = dict(net.callbacks_)["valid_cc_norm"].score(pred)
    if valid is not None or fitted_start:
        start_state = _copy_state(net.module_)
    first = len(net.history)
    targets = net_targets(train, device, net.module_)
    net.statistics = _step_statistics(statistics, net.statistics_dtype)
    net.values_per_stimulus = float(torch.isfinite(targets).sum()) / train.n_stimuli
    net.frames_per_stimulus = None if statistics is None else float(statistics.count.sum()) / len(statistics.count)
    try:
        net.partial_fit(net_inputs(train, device, net.module_), targets)
    finally:
        net.statistics = net.values_per_stimulus = net.frames_per_stimulus = None
    fell_back = _settle_training(net, start_state if fitted_start else None)
    run = np.array([epoch.get("valid_cc_norm", np.nan) for epoch in list(net.history)[first:]], dtype=float)
    best = np.nanmax(run) if np.isfinite(run).any() else -np.inf
    net.start_valid_cc_norm_ = start_score
    net.kept_start_ = fell_back or bool(np.isfinite(start_score) and start_score > best)
    if net.kept_start_:
        net.module_.load_state_dict(start_state)
    early = dict(net.callbacks_).get("early_stopping")
    net.validated_epochs_ = (
        None if valid is None or getattr(net, "interrupted_epoch_", None) is not None
        else 0 if net.kept_start_
        else early.best_epoch_ - first if early is not None and early.best_model_weights_ is not None
        else len(net.history) - first)


def refit_kept_start(net: STRFNet, penalty: Penalty, train_stats: DesignStatistics,
                     valid_stats: DesignStatistics, train: StimulusSet, valid: StimulusSet) -> None:
    """When gradient training kept its closed-form start (no epoch beat it on the validation
    stimuli), make that start again from every stimulus, the validation ones included.

    The start is the ridge solution with its chosen penalty, then (for an LN model) the
    output nonlinearity fitted to it: the two-stage model. Validation only chose it over
    the trained epochs; refitted on all the stimuli, it is the two-stage model that a fit
    without held-out stimuli would give, so the LN model never ends below it for lack of
    the held-out data.

    Parameters
    ----------
    penalty : Penalty
        The closed form's penalty (chosen by cross-validation on the training stimuli).
    train_stats, valid_stats : DesignStatistics
        Statistics of the training and validation stimuli in the module's units (at the
        start's prefilter, if any).
    train, valid : StimulusSet
    """
    if not getattr(net, "kept_start_", False):
        return
    weight, moments = penalty_refit(train_stats.concat(valid_stats), penalty)
    module = net.module_
    module.load_closed_form_(weight, moments.z_mean, moments.p_mean)
    if module.nonlinearity is None or getattr(module.nonlinearity, "calibrate_", None) is None:
        return
    device = str(net.device)
    z, P = [], []
    with torch.no_grad():
        for data in (train, valid):
            X, targets, mask = stimulus_tensors(data, device, module)
            keep = mask.bool()
            z.append(module.linear(X)[keep])
            P.append(targets[keep])
    loss = "poisson" if isinstance(net.criterion_, MaskedPoissonLoss) else "mse"
    module.nonlinearity.calibrate_(torch.cat(z), torch.cat(P), loss)


def _step_statistics(statistics: DesignStatistics | None, dtype: torch.dtype) -> DesignStatistics | None:
    """``statistics`` as the training step reads them fastest, made once per fit: the
    cross-products laid out neuron-major (a copy, ``n_neurons / (D + 1)`` of the Grams'
    size; same shape and values), the Gram in ``dtype`` (a copy unless it is theirs)."""
    if statistics is None:
        return None
    cross = statistics.cross.transpose(1, 2).to(dtype, memory_format=torch.contiguous_format).transpose(1, 2)
    return DesignStatistics(statistics.gram.to(dtype), cross, statistics.sq, statistics.count)


def _settle_training(net: STRFNet, start_state: dict | None = None) -> bool:
    """Settle the model after a divergence or an interruption of gradient training.

    skorch ends training on both as if it were complete; here the model is set to the
    best validated epoch of this run (early stopping has already restored it) or, after
    an interruption without one, to the last complete epoch, with a warning. A divergence
    without a validated epoch falls back to ``start_state`` (a fitted start: the
    closed-form model, whose penalty was chosen by cross-validation) when it is given and
    its loss was finite, with a warning. When no such model exists,
    :class:`DivergenceError` or ``KeyboardInterrupt`` is raised before the estimator
    stores anything, so it keeps its previous state.

    Returns
    -------
    fell_back : bool
        Whether the model was set to ``start_state``.
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
        start_finite = guard.start_loss_ is not None and bool(np.isfinite(guard.start_loss_))
        if best is None and start_state is not None and start_finite:
            net.module_.load_state_dict(start_state)
            calibrated = " and its calibrated nonlinearity" if net.module_.nonlinearity is not None else ""
            warnings.warn(
                f"training diverged: the training loss {guard.reason_} at epoch {diverged}, before "
                f"any validated epoch; the fitted start (the closed-form model with its "
                f"cross-validated penalty{calibrated}) was kept. Consider a lower lr (now {net.lr}).",
                RuntimeWarning,
                stacklevel=user_stacklevel(),
            )
            return True
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
    return False


def record_closed_form_epoch(net: STRFNet, train_stats: DesignStatistics, valid: StimulusSet | None) -> None:
    """Write a one-epoch history for a closed-form fit (losses and validation cc_norm)."""
    device = str(net.device)
    net.history.new_epoch()
    net.history.record("epoch", 1)
    with torch.no_grad():
        # the penalised loss, as gradient training records it, so that both compare
        loss = net.statistics_loss(train_stats)
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
