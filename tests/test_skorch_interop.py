"""Tests of the skorch side: callbacks, history, routed parameters and warm starts."""


import numpy as np
import torch
import pytest
from numpy.testing import assert_allclose
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback, LRScheduler
from skorch.history import History

from skstrf import STRFRegressor
from skstrf.preprocessing import FrameTransformer

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _gradient(**params):
    base = dict(n_lags=6, solver="gradient", max_epochs=5, patience=None, random_state=0)
    return STRFRegressor(**{**base, **params})


class EpochRecorder(Callback):
    """Records the epoch number and the validation cc_norm seen at each epoch end."""

    def __init__(self, tag="a"):
        self.tag = tag

    def initialize(self):
        self.seen_ = []
        return self

    def on_epoch_end(self, net, **kwargs):
        self.seen_.append((net.history[-1, "epoch"], net.history[-1, "valid_cc_norm"]))


def test_user_callbacks_are_called_and_tunable(data):
    recorder = EpochRecorder()
    est = _gradient(callbacks=[("recorder", recorder)],
                    callbacks__recorder__tag="b").fit(data.X, data.y)
    assert [epoch for epoch, _ in recorder.seen_] == [1, 2, 3, 4, 5]
    assert [score for _, score in recorder.seen_] == est.history_[:, "valid_cc_norm"]
    assert recorder.tag == "b"  # set through the routed callbacks__<name>__<param>


def test_lr_scheduler_callback_changes_the_learning_rate(data):
    sched = LRScheduler(policy="StepLR", step_size=1, gamma=0.5)
    est = _gradient(lr=0.04, max_epochs=3, callbacks=[sched]).fit(data.X, data.y)
    # StepLR halves the rate after each epoch: 0.04 -> 0.02 -> 0.01 -> 0.005.
    assert_allclose(est.net_.optimizer_.param_groups[0]["lr"], 0.005)


def test_history_is_a_skorch_history(data):
    est = _gradient().fit(data.X, data.y)
    assert isinstance(est.history_, History)
    assert est.history_[:, "epoch"] == [1, 2, 3, 4, 5]
    assert est.history_[-1]["epoch"] == 5
    losses = est.history_[:, ("train_loss", "valid_loss")]
    assert len(losses) == 5 and all(np.isfinite(pair).all() for pair in losses)
    assert np.all(np.diff(est.history_[:, "train_loss"]) < 0)  # full-data Adam steps descend
    assert set(est.history_[0]) >= {"train_loss", "valid_loss", "valid_cc_norm", "dur"}


def test_routed_optimizer_params_reach_the_optimizer(data):
    est = _gradient(max_epochs=1, optimizer__betas=(0.5, 0.6), optimizer__weight_decay=0.01)
    params = est.get_params(deep=True)
    assert params["optimizer__betas"] == (0.5, 0.6)
    assert clone(est).get_params() == est.get_params()
    assert "optimizer__betas" in repr(est)
    group = est.fit(data.X, data.y).net_.optimizer_.param_groups[0]
    assert group["betas"] == (0.5, 0.6) and group["weight_decay"] == 0.01
    est.set_params(optimizer__betas=(0.7, 0.8), lr=0.1)
    assert est.get_params()["optimizer__betas"] == (0.7, 0.8) and est.lr == 0.1
    assert est.fit(data.X, data.y).net_.optimizer_.param_groups[0]["betas"] == (0.7, 0.8)


def test_routed_params_in_a_pipeline_grid(data):
    pipe = make_pipeline(FrameTransformer(StandardScaler()),
                         _gradient(max_epochs=2, optimizer__betas=(0.9, 0.999)))
    grid = {"strfregressor__optimizer__betas": [(0.5, 0.6), (0.9, 0.999)],
            "frametransformer__transformer__with_std": [True]}
    search = GridSearchCV(pipe, grid, cv=KFold(2)).fit(data.X, data.y)
    best_betas = search.best_params_["strfregressor__optimizer__betas"]
    fitted = search.best_estimator_[-1]
    assert fitted.net_.optimizer_.param_groups[0]["betas"] == best_betas
    assert "strfregressor__optimizer__betas" in pipe.get_params(deep=True)


def test_unknown_routed_param_raises_at_fit(data):
    est = STRFRegressor(n_lags=6, optimiser__lr=0.1)  # misspelt prefix
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['optimiser__lr'\]"):
        est.fit(data.X, data.y)
    with pytest.raises(ValueError, match="Invalid parameter 'not_a_param'"):
        STRFRegressor().set_params(not_a_param=1)


def test_warm_start_continues_training(data):
    est = _gradient(warm_start=True).fit(data.X, data.y)
    first = est.history_[:, "train_loss"]
    est.set_params(max_epochs=3)  # as in scikit-learn: the next fit trains this much more
    est.fit(data.X, data.y)
    losses = est.history_[:, "train_loss"]
    assert est.history_[:, "epoch"] == list(range(1, 9))
    assert losses[:5] == first
    assert losses[-1] < first[-1]  # the loss keeps falling from where it was
    cold = _gradient(max_epochs=3).fit(data.X, data.y)
    assert losses[-1] < cold.history_[-1, "train_loss"]  # better than 3 epochs from scratch


class _Seen(Callback):
    """Records the history length at every epoch end; ``initialize`` resets the records, as
    skorch's own callbacks reset their state, and counts itself."""

    def initialize(self):
        self.epochs, self.n_initialized = [], getattr(self, "n_initialized", 0) + 1
        return self

    def on_epoch_end(self, net, **kwargs):
        self.epochs.append(len(net.history))


def test_warm_start_continues_the_users_callbacks_as_skorch_does(data):
    # skorch's warm_start: a second fit continues the same callbacks (no initialize()), so a
    # callback keeps what it recorded. skstrf's warm start initialised them again, and its
    # records of the first fit were lost without a word.
    from skorch import NeuralNetRegressor

    X = np.random.default_rng(0).standard_normal((32, 3)).astype(np.float32)
    reference = _Seen()
    net = NeuralNetRegressor(torch.nn.Linear, module__in_features=3, module__out_features=1, max_epochs=2,
                             warm_start=True, callbacks=[reference], train_split=None, verbose=0)
    net.fit(X, X[:, :1]).fit(X, X[:, :1])
    assert reference.epochs == [1, 2, 3, 4] and reference.n_initialized == 1

    seen = _Seen()
    est = _gradient(warm_start=True, max_epochs=2, callbacks=[("seen", seen)])
    est.fit(data.X, data.y).fit(data.X, data.y)
    assert seen.epochs == reference.epochs and seen.n_initialized == reference.n_initialized
    assert dict(est.net_.callbacks_)["seen"] is seen
    # a fit without warm start starts anew, as skorch's fit does
    _gradient(max_epochs=2, callbacks=[seen]).fit(data.X, data.y)
    assert seen.epochs == [1, 2] and seen.n_initialized == 2


def test_warm_start_false_starts_anew(data):
    est = _gradient(max_epochs=3)
    est.fit(data.X, data.y)
    first = est.predict(data.X)
    est.fit(data.X, data.y)
    assert len(est.history_) == 3
    assert_allclose(est.predict(data.X), first)


def test_warm_start_with_a_closed_form_solver_refits(data):
    est = STRFRegressor(n_lags=6, warm_start=True).fit(data.X[:4], data.y[:4])
    est.fit(data.X[4:], data.y[4:])
    cold = STRFRegressor(n_lags=6).fit(data.X[4:], data.y[4:])
    assert_allclose(est.strfs_, cold.strfs_)


def test_warm_start_refuses_a_changed_model(data):
    est = _gradient(warm_start=True, max_epochs=1).fit(data.X, data.y)
    est.set_params(kernel="parametric", n_gaussians=2)
    with pytest.raises(ValueError, match="warm_start=True continues the previous model"):
        est.fit(data.X, data.y)


def test_warm_start_refuses_new_lags_of_a_gaussian_kernel(data):
    # Gaussian parameters do not depend on the lags: their state would load into a model of
    # other lags, so the kernel's shape is compared, not only the state's
    est = STRFRegressor(n_lags=6, kernel="parametric", solver="gradient", max_epochs=1, warm_start=True,
                        random_state=0).fit(data.X, data.y)
    before, n_epochs = est.strfs_.copy(), len(est.history_)
    est.set_params(n_lags=9)
    with pytest.raises(ValueError, match="warm_start=True continues the previous model"):
        est.fit(data.X, data.y)
    assert len(est.history_) == n_epochs
    assert_allclose(est.strfs_, before)


def test_failed_warm_start_leaves_the_previous_fit_untouched(data):
    est = _gradient(warm_start=True, max_epochs=2).fit(data.X, data.y)
    history = [dict(row) for row in est.history_]
    moments = [s["exp_avg"].clone() for s in est.net_.optimizer_.state.values()]

    class Interrupt(Callback):
        def on_epoch_end(self, net, **kwargs):
            if len(net.history) == 3:  # one more epoch has run on the new state
                raise ValueError("stop")

    est.set_params(callbacks=[Interrupt()])
    with pytest.raises(ValueError, match="stop"):
        est.fit(data.X, data.y)
    assert [dict(row) for row in est.history_] == history
    for state, before in zip(est.net_.optimizer_.state.values(), moments):
        assert torch.equal(state["exp_avg"], before)
