"""Cross-checks between independent routes to the same number (public API only).

- The validation cc_norm that drives early stopping (``history_[..., "valid_cc_norm"]``,
  computed in torch during training) equals :func:`skstrf.metrics.cc_norm` on the same
  validation stimuli and the fitted model's predictions.
- Gradient training with penalty ``alpha`` converges to the closed-form solution with the
  same ``alpha`` (ridge for the vanilla kernel, ALS for the separable one): ``alpha`` means
  the same thing whichever solver fits it.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from skstrf import STRFRegressor
from skstrf.datasets import make_strf_dataset
from skstrf.metrics import cc_norm

F, L = 6, 4


@pytest.fixture(scope="module")
def ragged():
    """Ragged stimuli with missing repeats: the padding and masking paths of both scorers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make_strf_dataset(n_stimuli=8, n_times=120, n_freqs=F, n_neurons=4, n_repeats=5,
                                 n_lags=L, ragged=True, missing_repeats=0.2, random_state=3)


@pytest.fixture(scope="module")
def linear():
    """Linear-Gaussian cells: a least-squares problem whose optimum both solvers can reach."""
    return make_strf_dataset(n_stimuli=6, n_times=150, n_freqs=F, n_neurons=3, n_repeats=4,
                             n_lags=L, nonlinearity="identity", noise="gaussian", snr=2.0,
                             random_state=1)


def _valid_score(est, data) -> float:
    valid = est.valid_stimuli_
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(cc_norm(data.y[valid], est.predict(data.X[valid])))


@pytest.mark.parametrize("params", [
    dict(kernel="vanilla", cv=None),  # closed-form ridge, penalty on the validation stimuli
    dict(kernel="separable", cv=None),  # ALS
    dict(kernel="vanilla", solver="gradient", init="random", max_epochs=5, patience=None),
    dict(kernel="parametric", solver="gradient", n_gaussians=2, max_epochs=4, patience=None),
])
def test_recorded_validation_cc_norm_equals_metrics_cc_norm(ragged, params):
    est = STRFRegressor(n_lags=L, validation_fraction=0.3, random_state=0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        est.fit(ragged.X, ragged.y)
    assert len(est.valid_stimuli_) == 2
    recorded = np.asarray(est.history_[:, "valid_cc_norm"], dtype=float)
    # The model kept is the one of the best validated epoch (the only one for closed forms):
    # early stopping's best, which counts an epoch as better only by more than its
    # threshold (1e-4), so it need not be the argmax of the recorded scores.
    early = dict(est.net_.callbacks_).get("early_stopping")
    best = early.best_epoch_ if getattr(early, "best_model_weights_", None) is not None else None
    kept = recorded[np.nanargmax(recorded)] if best is None else recorded[best - 1]
    assert np.isfinite(kept)
    np.testing.assert_allclose(kept, _valid_score(est, ragged), rtol=0, atol=1e-5)


def test_validation_cc_norm_equals_metrics_cc_norm_along_training(ragged):
    # warm_start continues one epoch per fit; after each, the model kept is the best
    # validated one so far, whose recorded score must be what cc_norm gives its predictions.
    est = STRFRegressor(n_lags=L, solver="gradient", init="random", max_epochs=1, lr=1e-2,
                        validation_fraction=0.3, warm_start=True, random_state=0)
    kept = []
    for _ in range(4):
        est.fit(ragged.X, ragged.y)
        recorded = np.asarray(est.history_[:, "valid_cc_norm"], dtype=float)
        kept.append(np.nanmax(recorded))
        np.testing.assert_allclose(kept[-1], _valid_score(est, ragged), rtol=0, atol=1e-5)
    assert len(set(np.round(kept, 6))) >= 3  # several different models were checked


def _fit_pair(data, closed: dict, alpha: float, epochs: int, lr: float):
    """A closed-form fit and a gradient-trained one of the same model and penalty; the
    learning rate falls tenfold at each third of the epochs (skorch's LRScheduler, a user's
    callback): at a fixed rate AdamW's steps do not shrink near the optimum, and where the
    last epoch falls in that jitter depends on the CPU's rounding (a neuron 1e-3 away after
    3000 epochs at 1e-2 on one machine, 1e-6 on another)."""
    from skorch.callbacks import LRScheduler
    from torch.optim.lr_scheduler import StepLR

    common = dict(n_lags=L, alpha=alpha, validation_fraction=None, random_state=0)
    ref = STRFRegressor(**common, **{"rank": 1, **closed}).fit(data.X, data.y)  # the rank of both
    decay = LRScheduler(policy=StepLR, step_size=max(1, epochs // 3), gamma=0.1)
    grad = STRFRegressor(**common, kernel=closed["kernel"], rank=closed.get("rank", 1), solver="gradient",
                         init="random", batch_size=None, max_epochs=epochs, lr=lr,
                         callbacks=[("decay", decay)]).fit(data.X, data.y)
    return ref, grad


def _relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


# Full-batch AdamW, lr 1e-2 falling to 1e-4, 3000 epochs reaches the closed-form optimum to
# about 1e-6 (relative) on this problem; a penalty that meant something else in one solver (a factor of
# the number of frames, neurons or stimuli, raw instead of standardised units) would leave
# the two at least a few per cent apart: the penalties below move the solution by more.
@pytest.mark.parametrize("kernel, solver", [("vanilla", "ridge"), ("separable", "als")])
@pytest.mark.parametrize("alpha", [0.05, 3.0])
def test_gradient_training_converges_to_the_closed_form_with_the_same_alpha(linear, kernel, solver, alpha):
    ref, grad = _fit_pair(linear, {"kernel": kernel, "solver": solver}, alpha, epochs=3000, lr=1e-2)
    assert ref.solver_ == solver and grad.solver_ == "gradient"
    assert _relative_error(grad.strfs_, ref.strfs_) < 1e-4
    # the intercepts agree to ~1e-4 (relative)
    np.testing.assert_allclose(grad.intercept_, ref.intercept_, rtol=1e-3,
                               atol=1e-4 * np.abs(ref.intercept_).max())
    # The penalty is not a no-op at this size: doubling it moves the solution.
    stronger = STRFRegressor(n_lags=L, kernel=kernel, rank=1, solver=solver, alpha=2 * alpha,
                             validation_fraction=None).fit(linear.X, linear.y)
    assert _relative_error(stronger.strfs_, ref.strfs_) > 1e-2


def test_strf_corr_fixture_is_pearsons_correlation(strf_corr):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, F, L)), rng.standard_normal((3, F, L))
    expected = [np.corrcoef(a[n].ravel(), b[n].ravel())[0, 1] for n in range(3)]
    np.testing.assert_allclose(strf_corr(a, b), expected, rtol=1e-12)
    np.testing.assert_allclose(strf_corr(a, 2 * a + 1), 1.0)
