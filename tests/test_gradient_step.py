"""Tests of the statistics training epochs: STRFNet's own loop against skorch's."""

import warnings

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback, EarlyStopping, EpochScoring, GradientNormClipping, LRScheduler

from skstrf import STRFRegressor
from skstrf._net import (DivergenceError, LastEpochCheckpoint, STRFNet, StopOnNonFinite, ValidCCNorm,
                        listens_to_training_batches)

@pytest.fixture(scope="module")
def xy(data):
    """The shared small dataset's stimuli and responses (8 stimuli: 6 train, 1 valid, 1 test)."""
    return data.X, data.y


BASE = dict(n_lags=5, solver="gradient", init="random", batch_size=1, max_epochs=4, lr=0.05,
            patience=None, random_state=0)


class BatchCounter(Callback):
    """Counts the training-batch events skorch sends (listening to them selects skorch's loop)."""

    def initialize(self):
        self.begin_ = self.end_ = self.grad_ = 0
        return self

    def on_batch_begin(self, net, training=False, **kwargs):
        self.begin_ += bool(training)

    def on_batch_end(self, net, training=False, **kwargs):
        self.end_ += bool(training)

    def on_grad_computed(self, net, named_parameters, training=False, **kwargs):
        self.grad_ += bool(training)


class EpochCounter(Callback):
    """Counts epoch events only: a statistics fit keeps its own loop."""

    def initialize(self):
        self.epochs_ = 0
        return self

    def on_epoch_end(self, net, **kwargs):
        self.epochs_ += 1


def _batches(history) -> list[list[tuple]]:
    """Each epoch's batch records, as sorted (key, value) tuples."""
    return [[tuple(sorted(batch.items())) for batch in epoch["batches"]] for epoch in history]


def _epoch_rows(history) -> list[dict]:
    """Each epoch's records without the timing (dur) and the batches."""
    return [{k: v for k, v in epoch.items() if k not in ("dur", "batches")} for epoch in history]


def _pair(xy, **params):
    """The same fit by STRFNet's statistics loop and by skorch's loop (forced by a callback
    listening to batch events)."""
    X, y = xy
    fast = STRFRegressor(**{**BASE, **params}).fit(X, y)
    counter = BatchCounter()
    slow = STRFRegressor(**{**BASE, **params}, callbacks=[counter]).fit(X, y)
    return fast, slow, counter


def _assert_same_fit(fast, slow):
    # the same steps in the same order: the same numbers, to the last bit
    np.testing.assert_array_equal(fast.strfs_, slow.strfs_)
    np.testing.assert_array_equal(fast.intercept_, slow.intercept_)
    assert _epoch_rows(fast.history_) == _epoch_rows(slow.history_)
    assert _batches(fast.history_) == _batches(slow.history_)


@pytest.mark.parametrize("kernel, batch_size, validation_fraction", [
    ("vanilla", 1, None), ("separable", 1, 0.25), ("vanilla", 3, 0.25), ("vanilla", None, None)])
def test_statistics_loop_trains_as_skorch_loop(xy, kernel, batch_size, validation_fraction):
    fast, slow, counter = _pair(xy, kernel=kernel, batch_size=batch_size,
                                validation_fraction=validation_fraction)
    _assert_same_fit(fast, slow)
    n_train = len(fast.train_stimuli_)
    per_epoch = 1 if batch_size is None else -(-n_train // batch_size)
    assert len(fast.history_) == BASE["max_epochs"]
    assert fast.history_[:, "train_batch_count"] == [per_epoch] * BASE["max_epochs"]
    # the listening callback got every training batch, so that fit did run skorch's loop
    assert counter.begin_ == counter.end_ == counter.grad_ == per_epoch * BASE["max_epochs"]
    # the epoch's train_loss is the batch-size-weighted mean of its batches, as in skorch
    last = fast.history_[-1]
    losses = [b["train_loss"] for b in last["batches"] if "train_loss" in b]
    sizes = [b["train_batch_size"] for b in last["batches"] if "train_loss" in b]
    assert last["train_loss"] == pytest.approx(np.average(losses, weights=sizes), rel=1e-12)


def test_statistics_loop_is_used_without_batch_listeners(xy, monkeypatch):
    calls = []
    run = STRFNet.run_statistics_epoch
    monkeypatch.setattr(STRFNet, "run_statistics_epoch",
                        lambda self, *a, **k: calls.append(1) or run(self, *a, **k))
    counter = EpochCounter()
    STRFRegressor(**BASE, validation_fraction=0.25, callbacks=[counter]).fit(*xy)
    assert len(calls) == counter.epochs_ == BASE["max_epochs"]
    calls.clear()
    STRFRegressor(**BASE, callbacks=[BatchCounter()]).fit(*xy)
    assert calls == []
    # forward training (a nonlinearity: no statistics) never uses it
    STRFRegressor(**BASE, nonlinearity="softplus").fit(*xy)
    assert calls == []


def test_early_stopping_and_validation_scores_match(xy):
    fast, slow, _ = _pair(xy, validation_fraction=0.25, patience=2, max_epochs=40, lr=0.3)
    _assert_same_fit(fast, slow)
    assert len(fast.history_) < 40  # early stopping ended it
    assert np.isfinite(fast.history_[:, "valid_cc_norm"]).all()


def test_warm_start_continues_alike(xy):
    X, y = xy
    fits = []
    for callbacks in (None, [BatchCounter()]):
        est = STRFRegressor(**BASE, warm_start=True, callbacks=callbacks).fit(X, y)
        est.fit(X, y)
        fits.append(est)
    assert len(fits[0].history_) == 2 * BASE["max_epochs"]
    _assert_same_fit(*fits)


def test_divergence_detection_reads_the_first_batch_from_the_history(xy):
    X, y = xy
    est = STRFRegressor(**{**BASE, "lr": 1e10})
    with pytest.raises(DivergenceError, match=r"(became non-finite|grew to .*,) at epoch 1"):
        est.fit(X, y)
    fast = STRFRegressor(**BASE).fit(X, y)
    guard = dict(fast.net_.callbacks_)["stop_on_non_finite"]
    assert guard.start_loss_ == fast.history_[0, "batches", 0, "train_loss"]
    assert guard.diverged_epoch_ is None


def test_divergence_with_validation_restores_the_best_epoch(xy):
    X, y = xy

    class Explode(Callback):  # epoch events only: the statistics loop stays in use
        def on_epoch_end(self, net, **kwargs):
            if len(net.history) == 2:
                with torch.no_grad():
                    net.module_.kernel.weight.mul_(1e6)

    with pytest.warns(RuntimeWarning, match=r"training diverged at epoch 3 \(exploding loss\)"):
        est = STRFRegressor(**{**BASE, "max_epochs": 5}, validation_fraction=0.25,
                            callbacks=[Explode()]).fit(X, y)
    assert len(est.history_) == 3
    assert np.isfinite(est.strfs_).all()


@pytest.mark.parametrize("validation_fraction, kept", [
    (None, r"last complete epoch \(2\)"), (0.25, r"best validated epoch \(\d\)")])
def test_interruption_inside_a_statistics_epoch(xy, monkeypatch, validation_fraction, kept):
    X, y = xy
    params = {**BASE, "validation_fraction": validation_fraction}
    reference = STRFRegressor(**{**params, "max_epochs": 2}).fit(X, y)
    n_train = len(reference.train_stimuli_)
    step = STRFNet.statistics_step
    calls = []

    def interrupted(self, index):
        calls.append(1)
        if len(calls) == 2 * n_train + 3:  # the third step of epoch 3
            raise KeyboardInterrupt
        return step(self, index)

    monkeypatch.setattr(STRFNet, "statistics_step", interrupted)
    with pytest.warns(UserWarning, match=r"fit interrupted \(KeyboardInterrupt\) during epoch 3; "
                                         r"keeping the model of the " + kept):
        est = STRFRegressor(**params).fit(X, y)
    assert len(est.history_) == 3
    # the interrupted epoch keeps the records of its two completed batches
    assert [b["train_loss"] for b in est.history_[-1, "batches"]] == pytest.approx(
        [b["train_loss"] for b in STRFRegressor(**{**params, "max_epochs": 3}).fit(X, y).history_[-1, "batches"]
         if "train_loss" in b][:2], rel=0, abs=0)
    if validation_fraction is None:
        np.testing.assert_array_equal(est.strfs_, reference.strfs_)


def test_which_callbacks_listen_to_training_batches(xy):
    net = STRFRegressor(**BASE, validation_fraction=0.25).fit(*xy).net_
    defaults = dict(net.callbacks_)
    assert set(defaults) >= {"epoch_timer", "train_loss", "valid_loss", "print_log", "valid_cc_norm",
                             "stop_on_non_finite", "early_stopping", "last_epoch"}
    assert not any(listens_to_training_batches(cb) for cb in defaults.values())
    assert not listens_to_training_batches(ValidCCNorm(np.zeros((1, 2, 1)), np.ones(1)))
    for quiet in (StopOnNonFinite(), LastEpochCheckpoint(), EarlyStopping(), EpochCounter()):
        assert not listens_to_training_batches(quiet)
    for listener in (BatchCounter(), GradientNormClipping(1.0), EpochScoring("r2", on_train=True),
                     LRScheduler(step_every="batch")):
        assert listens_to_training_batches(listener)


def test_statistics_step_in_float32_trains_the_same_model(xy, monkeypatch):
    """The documented float32 option: the same model over a short run, one copy per fit."""
    X, y = xy
    reference = STRFRegressor(**BASE).fit(X, y)
    monkeypatch.setattr(STRFNet, "statistics_dtype", torch.float32)
    single = STRFRegressor(**BASE).fit(X, y)
    scale = np.abs(reference.strfs_).max()
    np.testing.assert_allclose(single.strfs_, reference.strfs_, rtol=0, atol=1e-4 * scale)
    np.testing.assert_allclose(single.history_[:, "train_loss"], reference.history_[:, "train_loss"], rtol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isfinite(single.predict(X)).all()
