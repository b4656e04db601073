"""What precedes each stimulus (skstrf._history): a fit that does not depend on where zero is.

With ``history="mean"`` (the default) the history before each stimulus is each band's
training mean, so adding a constant per band to X changes neither the fitted STRFs nor the
predictions (up to rounding, which grows with the constant): checked by hypothesis for
every kernel, solver and nonlinearity, closed forms tightly, gradient-trained models at a
fixed number of epochs.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skstrf import STRFRegressor
from skstrf._history import check_history, linear_history
from skstrf.datasets import make_strf_dataset
from skstrf.prefilters import ICAdaptation

SETTINGS = settings(max_examples=4, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

GRADIENT = dict(max_epochs=4, random_state=0, validation_fraction=None, cv=None, alpha=0.01)

#: (name, estimator parameters, float precision of the model's arithmetic on shifted X,
#: tolerance factor): the closed forms compute in float64 relative to float64 offsets;
#: gradient training in float32; a linear prefilter reads X in its own units (float32).
MODELS = [
    ("ridge", dict(), np.finfo(np.float64).eps, 1e3),
    ("ridge cv=None", dict(cv=None), np.finfo(np.float64).eps, 1e3),
    ("als", dict(kernel="separable"), np.finfo(np.float64).eps, 1e4),
    ("gradient vanilla", dict(solver="gradient", **GRADIENT), np.finfo(np.float32).eps, 1e2),
    ("gradient separable", dict(kernel="separable", solver="gradient", **GRADIENT), np.finfo(np.float32).eps, 1e2),
    ("parametric", dict(kernel="parametric", **GRADIENT), np.finfo(np.float32).eps, 1e2),
    ("LN softplus", dict(nonlinearity="softplus", **GRADIENT), np.finfo(np.float32).eps, 1e2),
    ("LN exp poisson", dict(nonlinearity="exp", loss="poisson", **GRADIENT), np.finfo(np.float32).eps, 1e2),
    ("ic adaptation", dict(prefilter="ic_adaptation"), np.finfo(np.float32).eps, 1e3),
]


@pytest.fixture(scope="module")
def data():
    d = make_strf_dataset(n_stimuli=8, n_times=60, n_freqs=5, n_neurons=2, n_repeats=3, n_lags=4,
                          random_state=0)
    X, y = d.X.copy(), d.y.copy()
    X[2, 45:] = np.nan  # ragged
    y[2, 45:] = np.nan
    return X, y


def _fit(params, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return STRFRegressor(n_lags=4, **params).fit(X, y)


@pytest.mark.parametrize("name, params, eps, factor", MODELS, ids=[m[0] for m in MODELS])
@SETTINGS
@given(scale=st.floats(-4.0, 4.0), seed=st.integers(0, 2**16))
def test_fit_and_predict_do_not_depend_on_where_zero_is(data, name, params, eps, factor, scale, seed):
    X, y = data
    sd = np.nanstd(X, axis=(0, 1))
    c = sd * 10.0**scale * np.random.default_rng(seed).choice([-1.0, 1.0], size=sd.shape)
    a, b = _fit(params, X, y), _fit(params, X + c, y)
    # rounding grows with the shift: float precision x c / SD, times a margin for the
    # operations in between (gradient training amplifies rounding over its epochs)
    tol = factor * eps * max(1.0, float(np.max(np.abs(c) / sd)))
    strf_scale = np.abs(a.strfs_).max()
    np.testing.assert_allclose(b.strfs_, a.strfs_, rtol=0, atol=tol * strf_scale)
    pred_a, pred_b = a.predict(X), b.predict(X + c)
    valid = ~np.isnan(pred_a)
    assert np.array_equal(valid, ~np.isnan(pred_b))
    spread = np.nanstd(pred_a)
    np.testing.assert_allclose(pred_b[valid], pred_a[valid], rtol=0, atol=tol * max(spread, 1e-12) * 10)


def test_zero_history_depends_on_where_zero_is(data):
    # the rule of other toolboxes: an offset in X is a step at every onset, which the fit models
    X, y = data
    c = 10.0 * np.nanstd(X)
    a, b = _fit(dict(history="zero"), X, y), _fit(dict(history="zero"), X + c, y)
    assert np.abs(b.strfs_ - a.strfs_).max() > 1e-3 * np.abs(a.strfs_).max()
    # and the default does not
    m, n = _fit(dict(), X, y), _fit(dict(), X + c, y)
    np.testing.assert_allclose(n.strfs_, m.strfs_, rtol=0, atol=1e-9 * np.abs(m.strfs_).max())


def test_a_level_per_band_is_the_history(data):
    X, y = data
    mean = np.nanmean(X, axis=(0, 1))
    # the training mean given as a level is the "mean" rule
    given_level = _fit(dict(history=mean), X, y)
    rule = _fit(dict(history="mean"), X, y)
    np.testing.assert_allclose(given_level.strfs_, rule.strfs_, rtol=1e-9, atol=1e-12)
    # a level that moves with X keeps the fit too; zero given as a level is the "zero" rule
    c = 3.0 * np.nanstd(X, axis=(0, 1))
    moved = _fit(dict(history=mean + c), X + c, y)
    np.testing.assert_allclose(moved.strfs_, rule.strfs_, rtol=0, atol=1e-8 * np.abs(rule.strfs_).max())
    zero_level = _fit(dict(history=np.zeros(X.shape[2])), X, y)
    np.testing.assert_array_equal(zero_level.strfs_, _fit(dict(history="zero"), X, y).strfs_)
    # a scalar level is the same level in every band
    np.testing.assert_array_equal(_fit(dict(history=0.0), X, y).strfs_, zero_level.strfs_)


def test_the_history_is_what_the_model_reads_before_each_stimulus(data):
    # a model predicts frame 0 of a stimulus from history only (but lag 0): with a known
    # level, the prediction there is the STRF applied to the level at lags >= 1
    X, y = data
    level = np.nanmean(X, axis=(0, 1)) - 2.0
    est = _fit(dict(history=level), X, y)
    pred = est.predict(X[:1])[0, 0]
    expected = est.intercept_ + est.strfs_[:, :, 0] @ X[0, 0] + est.strfs_[:, :, 1:].sum(-1) @ level
    np.testing.assert_allclose(pred, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())  # float32 model


@pytest.mark.parametrize("history, message", [
    ("silence", r"'history' parameter of STRFRegressor must be a str among"),
    (np.zeros(3), r"one finite number per band, shape \(5,\); got shape \(3,\)"),
    (np.array([0, 0, np.nan, 0, 0]), r"non-finite"),
    (True, r"history must be one of"),
])
def test_bad_history_is_named(data, history, message):
    X, y = data
    with pytest.raises(ValueError, match=message):
        STRFRegressor(n_lags=4, history=history).fit(X, y)


def test_check_history_and_the_front_ends_steady_level():
    assert check_history("mean", 3) == "mean"
    np.testing.assert_array_equal(check_history(2.0, 3), [2.0, 2.0, 2.0])
    # IC adaptation is linear: its steady response to a constant level c is c (1 - w)
    front = ICAdaptation(4, dt_ms=5.0)
    level = np.array([1.0, -2.0, 0.5, 3.0])
    steady = linear_history(level, np.zeros(4), front)
    np.testing.assert_allclose(steady, level * (1 - front.w.numpy()), rtol=1e-5)
    np.testing.assert_array_equal(linear_history("mean", np.arange(4.0), front), np.arange(4.0))
    np.testing.assert_array_equal(linear_history("zero", np.arange(4.0), front), np.zeros(4))


def test_adaptrans_says_its_fit_depends_on_where_zero_is(data):
    X, y = data
    with pytest.warns(UserWarning, match=r"AdapTrans.*depends on where zero is"):
        STRFRegressor(n_lags=4, prefilter="adaptrans", max_epochs=1, random_state=0).fit(np.abs(X), y)


# --- lead-in: frames read as history, neither fitted nor scored ---------------------------

def _with_lead_in(X, y, k, rng):
    """Each stimulus preceded by ``k`` frames of what the cells heard (other stimulus frames)."""
    pre_X = X[rng.permutation(len(X))][:, :k]
    pre_y = np.where(np.isnan(pre_X[..., :1, None]), np.nan, 0.0) + rng.poisson(1.0, y[:, :k].shape)
    return np.concatenate([pre_X, X], axis=1), np.concatenate([pre_y, y], axis=1)


def test_lead_in_frames_are_history_not_fitted_nor_scored(data):
    X, y = data
    X, y = X[:, :45], y[:, :45]  # equal lengths: the lead-in is the first k frames of each
    rng = np.random.default_rng(0)
    k = 5
    Xl, yl = _with_lead_in(X, y, k, rng)
    est = _fit(dict(lead_in=k), Xl, yl)
    pred = est.predict(Xl)
    assert np.isnan(pred[:, :k]).all() and np.isfinite(pred[:, k:]).all()
    # the responses of the lead-in frames do not matter: changing them changes nothing
    other = yl.copy()
    other[:, :k] = rng.poisson(5.0, other[:, :k].shape)
    np.testing.assert_array_equal(_fit(dict(lead_in=k), Xl, other).strfs_, est.strfs_)
    # score, the scorers and cross-validation leave them out alike
    from sklearn.model_selection import cross_val_score

    from skstrf.metrics import cc_norm, cc_norm_scorer

    expected = cc_norm(yl[:, k:], pred[:, k:])
    assert est.score(Xl, yl) == pytest.approx(expected, rel=1e-12)
    assert cc_norm_scorer(est, Xl, yl) == pytest.approx(expected, rel=1e-12)
    scores = cross_val_score(STRFRegressor(n_lags=4, lead_in=k), Xl, yl, cv=2)
    assert np.isfinite(scores).all()
    # with n_lags - 1 frames of lead-in, every scored frame reads real frames only: the
    # history rule does not matter any more
    a = _fit(dict(lead_in=3, history="zero"), Xl, yl)
    b = _fit(dict(lead_in=3, history="mean"), Xl, yl)
    np.testing.assert_allclose(a.strfs_, b.strfs_, rtol=1e-9, atol=1e-12)


def test_lead_in_equals_the_fit_on_the_frames_after_it_with_their_real_history(data):
    # a lead-in of n_lags - 1 frames: the statistics of the scored frames are those of the
    # whole stimuli with the first frames' responses left out; the same from the reference
    # (direct) computation of the design
    import torch

    from skstrf._design import design_statistics, lagged_statistics

    rng = np.random.default_rng(1)
    X = torch.as_tensor(rng.standard_normal((3, 20, 2)))
    P = torch.as_tensor(rng.standard_normal((3, 20, 2)))
    mask = torch.ones(3, 20)
    mask[1, 15:] = 0
    units = (torch.zeros(2), torch.ones(2), torch.zeros(2), torch.ones(2))
    starts = torch.tensor([3, 3, 3])
    scored = mask * (torch.arange(20)[None] >= 3)
    direct = design_statistics(X, P, scored, 4, *units)
    fast = lagged_statistics(X, P, mask, 4, *units, starts=starts)
    for name in ("gram", "cross", "sq", "count"):
        torch.testing.assert_close(getattr(fast, name), getattr(direct, name))


def test_lead_in_must_leave_frames_to_fit(data):
    X, y = data
    with pytest.raises(ValueError, match=r"lead_in=45 leaves stimulus 2 no frame to fit: it has 45 valid frames"):
        STRFRegressor(n_lags=4, lead_in=45).fit(X, y)


def test_a_held_out_block_of_a_recording_reads_its_real_preceding_frames():
    # validation_fraction on one recording: the validation block starts with n_lags - 1 of
    # the recording's frames before it as a lead-in, so its first frames are predicted from
    # their real history, as in the whole recording
    from skstrf._validation import check_X_y

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((50, 2)), rng.standard_normal((50, 3))
    data = check_X_y(X, y).cut(40, context=3)
    np.testing.assert_array_equal(data.lengths, [40, 13])
    np.testing.assert_array_equal(data.first_scored, [0, 3])
    np.testing.assert_array_equal(data.X[1, :13], X[37:])
    assert data.scored_mask[1].sum() == 10
