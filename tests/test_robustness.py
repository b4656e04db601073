"""Faults and degenerate data: divergence, interruption, tiny problems and determinism."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback
from sklearn.exceptions import UndefinedMetricWarning

from skstrf import STRFRegressor
from skstrf.datasets import make_strf_dataset
from skstrf.metrics import cc
from skstrf._net import DivergenceError

GRADIENT = dict(n_lags=4, max_epochs=6, patience=None, solver="gradient", random_state=0, cv=None)


@pytest.fixture(scope="module")
def data():
    d = make_strf_dataset(n_stimuli=8, n_times=100, n_freqs=5, n_neurons=3, n_repeats=6,
                          n_lags=4, rate_hz=(20.0, 60.0), snr=(0.5, 1.0), random_state=0)
    return d.X, d.y


def _fitted_attributes(est) -> list[str]:
    return [key for key in vars(est) if key.endswith("_") and not key.startswith("_")]


def _noise_free(n_stimuli=4, n_times=80, n_freqs=3, n_lags=4, n_neurons=2, n_repeats=2, seed=0):
    """Stimuli, identical repeats of an exactly linear causal response, and its STRFs."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_stimuli, n_times, n_freqs))
    strfs = rng.standard_normal((n_neurons, n_freqs, n_lags))
    intercepts = rng.standard_normal(n_neurons)
    psth = np.broadcast_to(intercepts, (n_stimuli, n_times, n_neurons)).copy()
    for k in range(n_lags):  # lag k reads frame t - k of the same stimulus (zero before 0)
        psth[:, k:] += X[:, : n_times - k] @ strfs[:, :, k].T
    y = np.repeat(psth[..., None], n_repeats, axis=-1)
    return X, y, strfs, intercepts


class _AtEpoch(Callback):
    """Do ``action(net)`` at the first training batch of epoch ``epoch``."""

    def __init__(self, epoch: int, action) -> None:
        self.epoch, self.action = epoch, action

    def on_batch_begin(self, net, training=False, **kwargs):
        if training and len(net.history) == self.epoch:
            self.action(net)


class _RecordSTRF(Callback):
    """Keep the STRFs at the end of every epoch."""

    def initialize(self):
        self.strfs = []
        return self

    def on_epoch_end(self, net, **kwargs):
        with torch.no_grad():
            self.strfs.append(net.module_.strf()[:, 0].double().cpu().numpy())


def _interrupt(net):
    raise KeyboardInterrupt


def _poison(net):
    with torch.no_grad():
        next(net.module_.kernel.parameters()).fill_(float("nan"))


# --- divergence ---------------------------------------------------------------------------

def test_learning_rate_blow_up_raises_and_stores_nothing(data):
    est = STRFRegressor(**{**GRADIENT, "lr": 1e20})
    with pytest.raises(DivergenceError, match=r"training loss became non-finite at epoch 1 .*"
                                              r"Lower lr \(now 1e\+20\)"):
        est.fit(*data)
    assert _fitted_attributes(est) == []
    assert issubclass(DivergenceError, FloatingPointError)


@pytest.mark.parametrize("validation_fraction", [0.15, None])
def test_blow_up_from_a_fitted_start_keeps_the_start(data, validation_fraction):
    # A model that starts fitted (the closed-form STRF with its cross-validated penalty and
    # the nonlinearity calibrated to it: the two-stage model) and diverges before any
    # validated epoch keeps that start with a warning, as a later divergence keeps the best
    # validated epoch; it raised DivergenceError before, discarding a good model.
    X, y = data
    options = dict(n_lags=4, max_epochs=4, nonlinearity="softplus", loss="poisson", random_state=0,
                   validation_fraction=validation_fraction)
    est = STRFRegressor(**options, lr=1e10)
    with pytest.warns(RuntimeWarning, match=r"training diverged: the training loss (became non-finite|grew to "
                                            r".*,) at epoch 1, before any validated epoch; the fitted start \(the "
                                            r"closed-form model with its cross-validated penalty and its calibrated "
                                            r"nonlinearity\) was kept. Consider a lower lr \(now 10000000000\.0\)"):
        est.fit(X, y)
    assert est.net_.kept_start_
    assert getattr(est, "n_refit_epochs_", 0) == 0  # with validation: the start, made again from every stimulus
    assert not np.isfinite(est.history_[0, "train_loss"]) or est.history_[0, "train_loss"] > 1e6
    # the start is what a vanishing learning rate leaves
    start = STRFRegressor(**options, lr=1e-12).fit(X, y)
    pred = est.predict(X)
    assert np.isfinite(pred).all()
    np.testing.assert_allclose(pred, start.predict(X), rtol=1e-4, atol=1e-6 * np.abs(pred).max())


def test_blow_up_from_a_random_or_warm_start_still_raises(data):
    # no fitted start to fall back to: a random start, and a warm start (its previous fit is
    # kept by raising, as for the linear model)
    X, y = data
    est = STRFRegressor(n_lags=4, max_epochs=2, nonlinearity="softplus", init="random", lr=1e10, random_state=0)
    with pytest.raises(DivergenceError, match=r"(became non-finite|grew to .*,) at epoch 1"):
        est.fit(X, y)
    assert _fitted_attributes(est) == []
    est = STRFRegressor(n_lags=4, max_epochs=2, nonlinearity="softplus", warm_start=True, random_state=0).fit(X, y)
    before = est.predict(X)
    est.set_params(lr=1e10)
    with pytest.raises(DivergenceError, match=r"(became non-finite|grew to .*,) at epoch \d+ and no earlier"):
        est.fit(X, y)
    np.testing.assert_array_equal(est.predict(X), before)


def test_divergence_after_a_validated_epoch_falls_back_to_it(data):
    X, y = data
    reference = STRFRegressor(**{**GRADIENT, "max_epochs": 3}).fit(X, y)
    est = STRFRegressor(**GRADIENT, callbacks=[_AtEpoch(4, _poison)])
    with pytest.warns(RuntimeWarning, match=r"training diverged at epoch 4 \(non-finite loss\); "
                                            r"the model of the best finite epoch \(\d\) was restored"):
        est.fit(X, y)
    assert np.isnan(est.history_[-1, "train_loss"])
    assert np.isfinite(est.strfs_).all() and np.isfinite(est.intercept_).all()
    # the best of epochs 1-3 is what a fit stopped after epoch 3 keeps too
    np.testing.assert_array_equal(est.strfs_, reference.strfs_)
    np.testing.assert_array_equal(est.predict(X), reference.predict(X))


def test_divergence_without_validation_raises(data):
    est = STRFRegressor(**GRADIENT, validation_fraction=None, callbacks=[_AtEpoch(3, _poison)])
    with pytest.raises(DivergenceError, match=r"non-finite at epoch 3"):
        est.fit(*data)
    assert _fitted_attributes(est) == []


def test_diverging_refit_keeps_the_previous_fit(data):
    X, y = data
    est = STRFRegressor(**GRADIENT).fit(X, y)
    before, prediction = est.strfs_.copy(), est.predict(X)
    est.set_params(lr=1e20)
    with pytest.raises(DivergenceError):
        est.fit(X, y)
    np.testing.assert_array_equal(est.strfs_, before)
    np.testing.assert_array_equal(est.predict(X), prediction)


def test_validation_score_undefined_at_every_epoch_warns():
    # sparse firing, one short validation stimulus: its signal power is negative for every
    # neuron, so the validation cc_norm is NaN and cannot pick an epoch
    d = make_strf_dataset(n_stimuli=8, n_times=60, n_freqs=5, n_neurons=3, n_repeats=4,
                          n_lags=4, random_state=0)
    record = _RecordSTRF()
    with pytest.warns(UserWarning, match=r"validation cc_norm was undefined \(NaN\) at every "
                                         r"epoch .*keeping the last one"):
        est = STRFRegressor(**{**GRADIENT, "max_epochs": 3}, callbacks=[record]).fit(d.X, d.y)
    assert np.isnan(est.history_[:, "valid_cc_norm"]).all()
    assert len(record.strfs) == 3
    np.testing.assert_array_equal(est.strfs_, record.strfs[-1])


def test_singular_least_squares_without_penalty_is_a_clear_error(data):
    X, y = data
    doubled = np.concatenate([X, X], axis=2)  # duplicated bands: a singular design
    for kernel in ("vanilla", "separable"):
        est = STRFRegressor(kernel=kernel, n_lags=4, alpha=0.0)
        with pytest.raises(ValueError, match=r"closed-form solution with alpha=\[0.0\] is not "
                                             r"finite.*Use alpha > 0"):
            est.fit(doubled, y)
        assert _fitted_attributes(est) == []
    # any penalty makes the same problem well posed
    assert np.isfinite(STRFRegressor(n_lags=4, alpha=1e-3).fit(doubled, y).strfs_).all()


# --- interruption -----------------------------------------------------------------------

@pytest.mark.parametrize("validation_fraction, kept, index", [
    (0.15, r"best validated epoch \(\d\)", None),  # the best of epochs 1-3
    (None, r"last complete epoch \(3\)", 2),
])
def test_interrupt_keeps_the_best_epoch_so_far(data, validation_fraction, kept, index):
    X, y = data
    params = {**GRADIENT, "validation_fraction": validation_fraction, "lr": 0.1}
    reference = STRFRegressor(**{**params, "max_epochs": 3}).fit(X, y)
    record = _RecordSTRF()
    est = STRFRegressor(**params, callbacks=[record, _AtEpoch(4, _interrupt)])
    with pytest.warns(UserWarning, match=r"fit interrupted \(KeyboardInterrupt\) during epoch 4; "
                                         r"keeping the model of the " + kept):
        est.fit(X, y)
    assert len(est.history_) == 4  # the interrupted epoch is the last, incomplete row
    assert len(record.strfs) == 3
    if index is None:
        index = int(np.nanargmax(est.history_[:3, "valid_cc_norm"]))
    np.testing.assert_array_equal(est.strfs_, record.strfs[index])
    np.testing.assert_array_equal(est.strfs_, reference.strfs_)
    np.testing.assert_array_equal(est.intercept_, reference.intercept_)
    np.testing.assert_array_equal(est.predict(X), reference.predict(X))


@pytest.mark.parametrize("validation_fraction", [0.25, None])
def test_interrupt_in_the_first_epoch_leaves_the_estimator_unfitted(data, validation_fraction):
    est = STRFRegressor(**GRADIENT, validation_fraction=validation_fraction,
                        callbacks=[_AtEpoch(1, _interrupt)])
    with pytest.raises(KeyboardInterrupt, match=r"before any epoch completed"):
        est.fit(*data)
    assert _fitted_attributes(est) == []


def test_interrupt_outside_training_keeps_the_previous_fit(data, monkeypatch):
    X, y = data
    est = STRFRegressor(n_lags=4).fit(X, y)  # closed-form ridge
    before, prediction = pickle.dumps(est), est.predict(X)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("skstrf._solvers.ridge_path", interrupted)
    with pytest.raises(KeyboardInterrupt):
        est.fit(X[:, :50], y[:, :50])
    np.testing.assert_array_equal(est.strfs_, pickle.loads(before).strfs_)
    np.testing.assert_array_equal(est.predict(X), prediction)


def test_interrupted_warm_start_keeps_the_previous_fit(data):
    X, y = data
    est = STRFRegressor(**GRADIENT, warm_start=True).fit(X, y)
    before, prediction = est.strfs_.copy(), est.predict(X)
    est.set_params(callbacks=[_AtEpoch(len(est.history_) + 1, _interrupt)])
    with pytest.raises(KeyboardInterrupt):
        est.fit(X, y)
    np.testing.assert_array_equal(est.strfs_, before)
    np.testing.assert_array_equal(est.predict(X), prediction)


def test_callback_stopping_at_an_epoch_end_is_not_an_interruption(data):
    X, y = data

    class StopAfter(Callback):
        def on_epoch_end(self, net, **kwargs):
            if len(net.history) == 2:
                raise KeyboardInterrupt  # skorch's way for a callback to end training

    reference = STRFRegressor(**{**GRADIENT, "max_epochs": 2}).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = STRFRegressor(**GRADIENT, callbacks=[StopAfter()]).fit(X, y)
    assert len(est.history_) == 2
    np.testing.assert_array_equal(est.strfs_, reference.strfs_)


# --- degenerate but legal data ----------------------------------------------------------

def test_single_stimulus_fits_without_validation_and_recovers_the_strf():
    X, y, strfs, intercepts = _noise_free(n_stimuli=1, n_times=200)
    est = STRFRegressor(n_lags=4, alpha=1e-10).fit(X, y)  # ridge: nothing held out
    assert est.valid_stimuli_.size == 0
    np.testing.assert_allclose(est.strfs_, strfs, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(est.intercept_, intercepts, rtol=1e-3, atol=1e-3)


def test_continuous_recording_recovers_the_strf():
    X, y, strfs, _ = _noise_free(n_stimuli=1, n_times=200)
    est = STRFRegressor(n_lags=4, alpha=1e-10).fit(X[0], y[0])
    np.testing.assert_allclose(est.strfs_, strfs, rtol=1e-3, atol=1e-3)
    assert est.predict(X[0]).shape == (200, 2)


def test_single_repeat_fits_and_scores_by_cc_with_a_warning():
    X, y, strfs, _ = _noise_free(n_repeats=1)
    y = y + np.random.default_rng(1).standard_normal(y.shape)  # one noisy trial
    est = STRFRegressor(n_lags=4).fit(X, y)
    assert np.isfinite(est.strfs_).all()
    with pytest.warns(UndefinedMetricWarning, match=r"falls back to the uncorrected cc"):
        score = est.score(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = cc(y, est.predict(X))
    assert score == pytest.approx(expected, rel=1e-12)


def test_one_neuron_without_a_neuron_axis():
    X, y, strfs, intercepts = _noise_free(n_neurons=1)
    # the cells heard zero before each stimulus: the model reads that history too
    est = STRFRegressor(n_lags=4, alpha=1e-10, history="zero").fit(X, y[:, :, 0, 0])
    assert est.strfs_.shape == (1, 3, 4)
    np.testing.assert_allclose(est.strfs_, strfs, rtol=1e-3, atol=1e-3)
    prediction = est.predict(X)
    assert prediction.shape == (4, 80)
    np.testing.assert_allclose(prediction, y[:, :, 0, 0], atol=1e-3)


@pytest.mark.parametrize("kernel", ["vanilla", "separable", "parametric"])
def test_one_frequency_band(kernel):
    X, y, strfs, _ = _noise_free(n_freqs=1)
    est = STRFRegressor(kernel=kernel, n_lags=4, max_epochs=3, random_state=0).fit(X, y)
    assert est.strfs_.shape == (2, 1, 4)
    assert np.isfinite(est.strfs_).all() and np.isfinite(est.intercept_).all()
    if kernel != "parametric":  # with one band, any (1, L) kernel is rank 1: exact recovery
        np.testing.assert_allclose(est.strfs_, strfs, rtol=1e-2, atol=1e-2)


def test_stimuli_shorter_than_n_lags_are_fitted_with_zero_history():
    X, y, strfs, _ = _noise_free(n_stimuli=5, n_times=60)
    X[1, 2:], y[1, 2:] = np.nan, np.nan  # two frames, fewer than n_lags = 4
    est = STRFRegressor(n_lags=4, alpha=1e-10, history="zero").fit(X, y)  # the cells heard zero first
    np.testing.assert_allclose(est.strfs_, strfs, rtol=1e-3, atol=1e-3)
    prediction = est.predict(X)
    assert np.isnan(prediction[1, 2:]).all()
    np.testing.assert_allclose(prediction[1, :2], y[1, :2, :, 0], atol=1e-3)


# --- determinism --------------------------------------------------------------------------

_FIT_SCRIPT = r"""
import hashlib, json, warnings
import numpy as np
from skstrf import STRFRegressor
from skstrf.datasets import make_strf_dataset

warnings.simplefilter("ignore")
d = make_strf_dataset(n_stimuli=6, n_times=60, n_freqs=5, n_neurons=3, n_repeats=3,
                      n_lags=4, random_state=0)
out = {}
for name, params in {
    "gradient": dict(solver="gradient", max_epochs=4),
    "ridge": dict(solver="ridge"),
    "parametric": dict(kernel="parametric", n_gaussians=2, max_epochs=3),
}.items():
    est = STRFRegressor(n_lags=4, random_state=7, device="cpu", **params).fit(d.X, d.y)
    out[name] = hashlib.sha256(est.strfs_.tobytes() + est.intercept_.tobytes()).hexdigest()
print(json.dumps(out))
"""


def test_same_random_state_gives_identical_strfs_across_processes():
    procs = [subprocess.Popen([sys.executable, "-c", _FIT_SCRIPT], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        outputs.append(json.loads(stdout.strip().splitlines()[-1]))
    assert outputs[0] == outputs[1]
    assert set(outputs[0]) == {"gradient", "ridge", "parametric"}


def test_random_state_drives_gradient_training(data):
    X, y = data
    a = STRFRegressor(**GRADIENT).fit(X, y).strfs_
    b = STRFRegressor(**GRADIENT).fit(X, y).strfs_
    c = STRFRegressor(**{**GRADIENT, "random_state": 1}).fit(X, y).strfs_
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


# --- large offsets, threads, exploding losses (issue 13) ---------------------------------

def _close_strfs(a, b, rtol):
    assert np.abs(a - b).max() <= rtol * np.abs(b).max()


@pytest.mark.parametrize("params", [dict(n_lags=4), dict(GRADIENT, max_epochs=3)],
                         ids=["ridge", "gradient"])
def test_large_offsets_on_y_change_nothing(data, params):
    # the model works in float32 on data centred in float64: a level of 1e7 on y leaves
    # the STRFs, the intercept's offset and the score as they are
    X, y = data
    reference = STRFRegressor(**params).fit(X, y)
    score = reference.score(X, y)
    for offset in (1e6, 1e7):
        est = STRFRegressor(**params).fit(X, y + offset)
        _close_strfs(est.strfs_, reference.strfs_, 1e-5)
        np.testing.assert_allclose(est.intercept_ - offset, reference.intercept_, atol=1e-5)
        assert abs(est.score(X, y + offset) - score) < 1e-6
        np.testing.assert_allclose(est.predict(X) - offset, reference.predict(X), atol=1e-4)


def test_large_offset_on_X_changes_nothing_without_history(data):
    # with one lag a constant on X is absorbed by the intercept exactly (with more lags the
    # zero history before each stimulus makes it a step at every onset: another model)
    X, y = data
    reference = STRFRegressor(n_lags=1).fit(X, y)
    est = STRFRegressor(n_lags=1).fit(X + 1e8, y)
    _close_strfs(est.strfs_, reference.strfs_, 1e-5)
    assert abs(est.score(X + 1e8, y) - reference.score(X, y)) < 1e-6
    np.testing.assert_allclose(est.predict(X + 1e8), reference.predict(X), atol=1e-5)


def test_large_offset_on_X_with_zero_history_warns(data):
    import warnings

    X, y = data
    with pytest.warns(UserWarning, match=r"X's level is far from zero: the mean of its bands is "
                                         r"[0-9.e+]+ times their standard deviation.*history='mean'") as caught:
        STRFRegressor(n_lags=4, history="zero").fit(X + 1e8, y)
    assert [w.filename for w in caught if "far from zero" in str(w.message)] == [__file__]
    # the default history moves with X: the offset changes nothing, and nothing is said
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        shifted = STRFRegressor(n_lags=4).fit(X + 1e8, y)
    assert not [w for w in caught if "far from zero" in str(w.message)]
    np.testing.assert_allclose(shifted.strfs_, STRFRegressor(n_lags=4).fit(X, y).strfs_, rtol=0, atol=1e-6)


def test_zero_louder_than_the_sound_warns_and_silence_at_zero_does_not():
    """With history="zero": raw log power (silence at -3.75 and -10, zero louder than nearly
    every frame) and dB relative to the loudest frame warn, at the user's line; the same X
    with silence at zero, centred sparse stimuli (zero at their mean), a model without
    history and the default history do not."""
    import warnings

    from skstrf.datasets import make_realistic_dataset

    d = make_realistic_dataset(n_stimuli=6, random_state=0)
    est = STRFRegressor(n_lags=4, alpha=1.0, history="zero")
    with pytest.warns(UserWarning, match=r"Zero in X's units is louder than nearly all of X: in the median "
                                         r"band \(median over bands\) the mean is [0-9.]+ standard deviations "
                                         r"below zero and [0-9.]+% of its frames.*n_lags - 1 = 3 frames") as caught:
        est.fit(d.X, d.y)
    assert [w.filename for w in caught if "louder" in str(w.message)] == [__file__]
    rng = np.random.default_rng(0)
    padding = np.isnan(d.X[..., :1])  # the songs' NaN end-padding, shared with y
    db = np.where(padding, np.nan, 10 * np.log10(rng.exponential(1.0, d.X.shape[:2] + (8,))))
    with pytest.warns(UserWarning, match="louder than nearly all of X"):
        est.fit(db - np.nanmax(db), d.y)  # dB relative to the loudest frame: 0 dB is the loudest
    sparse = np.where(padding, np.nan, (rng.random(d.X.shape[:2] + (8,)) < 0.03).astype(float))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(d.X - d.silence, d.y)
        est.fit((sparse - np.nanmean(sparse)) / np.nanstd(sparse), d.y)  # 97% of the frames below zero
        STRFRegressor(n_lags=1, alpha=1.0, history="zero").fit(d.X, d.y)  # no history: nothing to warn about
        STRFRegressor(n_lags=4, alpha=1.0).fit(d.X, d.y)  # the default history is not zero
    assert not [w for w in caught if "louder" in str(w.message)]


def test_warnings_of_fit_and_predict_name_the_users_line(data):
    """However deep in fit a check sits (plan, validation split, training), its warning
    names the caller's line, not skstrf's or scikit-learn's."""
    import warnings

    X, y = data
    rng = np.random.default_rng(0)
    recording_X, recording_y = rng.normal(size=(12, 3)), rng.poisson(1.0, size=(12, 2, 3)).astype(float)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # too short a recording to hold out a validation block (make_plan -> validation_split)
        STRFRegressor(n_lags=2, solver="gradient", max_epochs=2, validation_fraction=0.05).fit(
            recording_X, recording_y)
        # divergence after a validated epoch (train_net -> _settle_training)
        STRFRegressor(**GRADIENT, callbacks=[_AtEpoch(4, _poison)]).fit(X, y)
        # a band that barely varies (check_variation)
        quiet = X.copy()
        quiet[..., 0] = 1.0 + 1e-9 * rng.normal(size=quiet.shape[:2])
        STRFRegressor(n_lags=4, alpha=1.0).fit(quiet, y)
    messages = {str(w.message)[:30]: w.filename for w in caught}
    assert any(m.startswith("the recording has 12 frames") for m in messages)
    assert any(m.startswith("training diverged at epoch 4") for m in messages)
    assert any("nearly constant" in m or "frequency band" in m for m in messages)
    assert set(messages.values()) == {__file__}


def test_fits_in_threads_equal_serial_fits(data):
    from concurrent.futures import ThreadPoolExecutor

    X, y = data
    params = dict(GRADIENT, max_epochs=8, batch_size=1)

    def fit(seed):
        return STRFRegressor(**{**params, "random_state": seed}).fit(X, y).strfs_

    serial = [fit(seed) for seed in (0, 1)]
    for _ in range(3):
        with ThreadPoolExecutor(2) as pool:
            threaded = list(pool.map(fit, (0, 1)))
        for a, b in zip(threaded, serial):
            np.testing.assert_array_equal(a, b)


def test_fit_leaves_the_global_torch_generator_alone(data):
    state = torch.random.get_rng_state()
    STRFRegressor(**GRADIENT).fit(*data).predict(data[0])
    assert torch.equal(torch.random.get_rng_state(), state)


def test_exploding_finite_loss_is_divergence(data):
    est = STRFRegressor(**{**GRADIENT, "lr": 1e10})
    with pytest.raises(DivergenceError, match=r"training loss grew to [0-9.e+]+, more than 1e\+06 "
                                              r"times its start \([0-9.]+\), at epoch 1"):
        est.fit(*data)
    assert _fitted_attributes(est) == []


def test_failed_warm_start_refit_leaves_history_as_it_was(data):
    X, y = data
    est = STRFRegressor(**GRADIENT, warm_start=True).fit(X, y)
    before = [dict(epoch) for epoch in est.history_]
    est.set_params(lr=1e10)
    with pytest.raises(DivergenceError):
        est.fit(X, y)
    assert [dict(epoch) for epoch in est.history_] == before


def test_exponential_output_overflow_warns(data):
    X, y = data
    est = STRFRegressor(n_lags=4, nonlinearity="exp", max_epochs=2, random_state=0).fit(X, y)
    with pytest.warns(RuntimeWarning, match=r"\d+ predicted value\(s\) are not finite .*exponential"):
        assert np.isinf(est.predict(X * 100)).any()


def test_gradient_maps_use_the_fitted_number_of_lags(data):
    from skstrf.inspection import gradient_maps

    X, y = data
    est = STRFRegressor(n_lags=4).fit(X, y)
    est.set_params(n_lags=7)  # not refitted
    maps = gradient_maps(est)
    assert maps.shape == est.strfs_.shape
    np.testing.assert_allclose(maps, est.strfs_, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match=r"max_windows must be a positive integer or None; got 0"):
        gradient_maps(est, X, max_windows=0)
