"""Property-based tests: any input is either fitted to finite STRFs or rejected clearly.

Hypothesis draws small problems over shapes, ragged lengths, missing repeats, layouts and
estimator settings. Legal data must give finite ``strfs_``, ``intercept_`` and
predictions, unless one of the documented data-dependent reasons applies (checked against
an independent oracle); corrupted data must be rejected by validation with a
``ValueError`` or ``TypeError`` naming X or y, before any training, never by a crash inside
torch.
"""

from __future__ import annotations

import traceback
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from skstrf import STRFRegressor
from skstrf._net import STRFNet
from skstrf._validation import check_X_y

# derandomize: the same examples on every run, so the suite never flakes
SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


@dataclass
class Problem:
    X: np.ndarray
    y: np.ndarray
    lengths: np.ndarray  # valid frames per stimulus
    present: np.ndarray  # (S, N, R) recorded repeats
    layout: str  # "repeats", "psth" or "neuron"
    continuous: bool  # X passed as (n_times, n_freqs)


@st.composite
def problems(draw) -> Problem:
    """Legal data: NaN only as shared end-padding and as whole missing repeats."""
    S = draw(st.integers(1, 4))
    T = draw(st.integers(1, 12))
    F = draw(st.integers(1, 3))
    N = draw(st.integers(1, 3))
    R = draw(st.integers(1, 3))
    lengths = np.array(draw(st.lists(st.integers(1, T), min_size=S, max_size=S)))
    present = np.array(draw(st.lists(st.booleans(), min_size=S * N * R, max_size=S * N * R)))
    present = present.reshape(S, N, R)
    present[..., 0] |= ~present.any(axis=-1)  # every neuron keeps a repeat of every stimulus
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    counts = draw(st.booleans())
    X = rng.standard_normal((S, T, F))
    y = rng.poisson(2.0, (S, T, N, R)).astype(float) if counts else rng.standard_normal((S, T, N, R))
    padding = np.arange(T)[None, :] >= lengths[:, None]
    X[padding] = np.nan
    y[padding] = np.nan
    y = np.where(present[:, None], y, np.nan)
    layout = "repeats"
    if R == 1 and draw(st.booleans()):
        layout, y = "psth", y[..., 0]
        if N == 1 and draw(st.booleans()):
            layout, y = "neuron", y[..., 0]
    continuous = S == 1 and lengths[0] == T and draw(st.booleans())
    if continuous:
        X, y = X[0], y[0]
    return Problem(X, y, lengths, present, layout, continuous)


@st.composite
def estimators(draw) -> STRFRegressor:
    kernel = draw(st.sampled_from(["vanilla", "separable", "parametric"]))
    nonlinearity = draw(st.sampled_from(["identity", "identity", "softplus"]))
    loss = "mse" if nonlinearity == "identity" else draw(st.sampled_from(["mse", "poisson"]))
    return STRFRegressor(
        kernel=kernel,
        nonlinearity=nonlinearity,
        loss=loss,
        n_lags=draw(st.integers(1, 4)),
        rank=draw(st.integers(1, 2)),
        n_gaussians=draw(st.integers(1, 2)),
        solver=draw(st.sampled_from(["auto", "gradient"])),
        validation_fraction=draw(st.sampled_from([0.15, None])),
        batch_size=draw(st.sampled_from([1, None])),
        max_epochs=3,
        random_state=0,
        device="cpu",
    )


def _training_frames(lengths: np.ndarray, n_times: int, est: STRFRegressor) -> np.ndarray:
    """The estimator's documented split, as a mask (n_stimuli, n_times) of training frames.

    Closed-form solvers with ``cv`` hold nothing out; otherwise the last round(fraction * S)
    stimuli validate, and a single recording is cut in time (when both parts keep 2 frames).
    """
    frames = np.arange(n_times)[None, :] < lengths[:, None]
    closed_form = (est.solver == "auto" and est.kernel in ("vanilla", "separable")
                   and est.nonlinearity == "identity" and est.loss == "mse")
    fraction = est.validation_fraction
    if fraction is None or (closed_form and est.cv is not None):
        return frames
    n_stimuli = len(lengths)
    if n_stimuli == 1:
        n_valid = round(fraction * lengths[0])
        if n_valid >= 2 and lengths[0] - n_valid >= 2:
            frames[0, lengths[0] - n_valid:] = False
        return frames
    n_valid = min(max(1, round(fraction * n_stimuli)), n_stimuli - 1)
    frames[n_stimuli - n_valid:] = False
    return frames


def _expected_rejection(problem: Problem, est: STRFRegressor) -> str | None:
    """Oracle: the message a legal problem must be rejected with, or None if it must fit."""
    X = problem.X[None] if problem.continuous else problem.X
    if est.loss == "poisson" and np.nanmin(problem.y) < 0:
        return "needs non-negative responses"
    if est.n_lags > problem.lengths.max():
        return "longer than every stimulus"
    if est.kernel == "separable" and est.rank > min(X.shape[2], est.n_lags):
        return "exceeds min(n_freqs, n_lags)"
    train = _training_frames(problem.lengths, X.shape[1], est)
    x_values = X[train]
    psth = _psth(problem)[train]
    if np.ptp(x_values, axis=0).max() == 0:
        return "X is constant over the"
    if np.ptp(psth, axis=0).max() == 0:
        return "y is constant over the training frames for every"
    return None


def _psth(problem: Problem) -> np.ndarray:
    y = problem.y[None] if problem.continuous else problem.y
    y = {"repeats": y, "psth": y[..., None], "neuron": y[..., None, None]}[problem.layout]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN padding frames
        return np.nanmean(y, axis=-1)


def _raised_by_skstrf_or_sklearn_validation(exc: BaseException) -> bool:
    """True when the exception comes from skstrf's own checks or sklearn's parameter checks."""
    where = traceback.extract_tb(exc.__traceback__)[-1].filename.replace("\\", "/")
    return "/skstrf/" in where or where.endswith("sklearn/utils/_param_validation.py")


@settings(SETTINGS, max_examples=50)  # the fits are tiny: about 2 s in all
@given(problem=problems(), est=estimators())
def test_legal_data_is_fitted_to_finite_strfs_or_rejected_for_a_documented_reason(problem, est):
    expected = _expected_rejection(problem, est)
    event(f"rejected: {expected}" if expected else f"fitted ({est.kernel}, {est.loss})")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # single stimulus, constant neurons, cc fallbacks
        if expected is not None:
            with pytest.raises(ValueError, match=expected.replace("(", r"\(").replace(")", r"\)")):
                est.fit(problem.X, problem.y)
            return
        est.fit(problem.X, problem.y)
        prediction = est.predict(problem.X)
    n_freqs = problem.X.shape[-1]
    n_neurons = problem.present.shape[1]
    assert est.strfs_.shape == (n_neurons, n_freqs, est.n_lags)
    assert np.isfinite(est.strfs_).all() and np.isfinite(est.intercept_).all()
    prediction = prediction[None] if problem.continuous else prediction
    if problem.layout == "neuron":
        prediction = prediction[..., None]
    valid = np.arange(prediction.shape[1])[None, :] < problem.lengths[:, None]
    assert np.isfinite(prediction[valid]).all()
    assert np.isnan(prediction[~valid]).all()


CORRUPTIONS = [
    "nan frame inside X", "nan band in X", "inf in X", "inf in y", "value on X's padding",
    "nan inside a repeat", "neuron without a repeat", "fewer stimuli in y", "fewer frames in y",
    "extra axes in y", "text in X", "complex y", "scalar X",
]


def _corrupt(problem: Problem, how: str, rng: np.random.Generator):
    """Return (X, y) with one violation of the data contract, or None if it does not apply."""
    X = problem.X[None] if problem.continuous else problem.X.copy()
    y = problem.y[None] if problem.continuous else problem.y.copy()
    y4 = {"repeats": y, "psth": y[..., None], "neuron": y[..., None, None]}[problem.layout]
    s = int(rng.integers(len(problem.lengths)))
    length = int(problem.lengths[s])
    if how == "nan frame inside X":
        if length < 2:
            return None
        X[s, int(rng.integers(length - 1))] = np.nan
    elif how == "nan band in X":
        if X.shape[2] < 2:
            return None
        X[s, int(rng.integers(length)), int(rng.integers(X.shape[2]))] = np.nan
    elif how == "inf in X":
        X[s, int(rng.integers(length)), 0] = np.inf
    elif how == "inf in y":
        t = int(rng.integers(length))
        n, r = np.argwhere(problem.present[s])[0]
        y4[s, t, n, r] = -np.inf
    elif how == "value on X's padding":
        if length == X.shape[1]:
            return None
        y4[s, length:] = 1.0
    elif how == "nan inside a repeat":
        if length < 2:
            return None
        n, r = np.argwhere(problem.present[s])[0]
        y4[s, int(rng.integers(length)), n, r] = np.nan
    elif how == "neuron without a repeat":
        y4[s, :, int(rng.integers(y4.shape[2]))] = np.nan
    elif how == "fewer stimuli in y":
        if X.shape[0] < 2:
            return None
        y = y[:-1]
    elif how == "fewer frames in y":
        y = y[:, :-1]
    elif how == "extra axes in y":
        y = y[..., None, None, None]  # three more axes than any layout allows
    elif how == "text in X":
        X = X.astype(str)
    elif how == "complex y":
        y = y + 1j
    elif how == "scalar X":
        X = np.float64(1.0)
    if problem.continuous and how not in ("scalar X", "fewer stimuli in y"):
        X, y = X[0], y[0]
    return X, y


@SETTINGS
@given(problem=problems(), how=st.sampled_from(CORRUPTIONS), seed=st.integers(0, 2**16))
def test_corrupted_data_is_rejected_before_training(problem, how, seed):
    corrupted = _corrupt(problem, how, np.random.default_rng(seed))
    assume(corrupted is not None)
    event(how)
    X, y = corrupted

    def reached(*args, **kwargs):
        raise AssertionError(f"training started on corrupted data ({how})")

    est = STRFRegressor(n_lags=1, max_epochs=2, random_state=0, device="cpu")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("skstrf._model.lagged_statistics", reached)
        mp.setattr(STRFNet, "initialize", reached)
        mp.setattr(STRFNet, "partial_fit", reached)
        with pytest.raises((ValueError, TypeError)) as info:
            est.fit(X, y)
    assert _raised_by_skstrf_or_sklearn_validation(info.value), info.value
    message = str(info.value)
    assert ("X" in message or "y" in message) and len(message) > 30, message
    assert not hasattr(est, "strfs_")


@SETTINGS
@given(problem=problems())
def test_validation_recovers_lengths_and_the_psth(problem):
    data = check_X_y(problem.X, problem.y)
    np.testing.assert_array_equal(data.lengths, problem.lengths)
    psth = data.psth()
    valid = data.frame_mask
    np.testing.assert_allclose(psth[valid], _psth(problem)[valid])
    assert np.isnan(psth[~valid]).all()
    counts = np.isfinite(data.y[valid]).sum(axis=-1)  # recorded repeats per valid frame
    np.testing.assert_array_equal(counts, np.broadcast_to(
        problem.present.sum(-1)[:, None], valid.shape + problem.present.shape[1:2])[valid])
