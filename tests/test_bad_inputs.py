"""Catalogue of bad inputs: each is rejected with a clear error before any training starts.

Every case asserts the exception type and a message that names the offending argument and
the problem. Fit cases run with the training machinery booby-trapped (statistics, net
initialisation, skorch training, prediction), so an error raised too late fails the test;
afterwards the estimator must hold no fitted state. ``docs/user_guide/bad_inputs.rst``
documents the same catalogue.
"""

from __future__ import annotations

import pickle
import warnings

import h5py
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.exceptions import NotFittedError, UndefinedMetricWarning

from skstrf import STRFRegressor
from skstrf.datasets import load_dataset, make_strf_dataset, save_dataset
from skstrf.metrics import cc_norm
from skstrf._net import STRFNet
from skorch.callbacks import EarlyStopping, EpochScoring

S, T, F, N, R, L = 6, 40, 5, 3, 4, 4
BASE = dict(n_lags=L, max_epochs=3, random_state=0)


def _data():
    d = make_strf_dataset(n_stimuli=S, n_times=T, n_freqs=F, n_neurons=N, n_repeats=R,
                          n_lags=L, random_state=0)
    X, y = d.X.copy(), d.y.copy()
    # a ragged set: stimulus 1 is 30 frames long, NaN-padded at the end in X and y alike
    X[1, 30:] = np.nan
    y[1, 30:] = np.nan
    return X, y


def _set(a, index, value):
    a = np.array(a, dtype=float, copy=True)
    a[index] = value
    return a


def _ragged_object(X):
    out = np.empty(2, dtype=object)
    out[0], out[1] = X[0], X[1, :30]
    return out


def _dict_object(X):
    out = X.astype(object)
    out[0, 0, 0] = {"power": 1.0}
    return out


def _text_object(X):
    out = X.astype(object)
    out[0, 3, 2] = "n/a"
    return out


def _pandas_na(X):
    import pandas as pd

    out = X.astype(object)
    out[np.isnan(X)] = pd.NA
    return out


def _all_zero_neuron_but_varying(y):
    return _set(y, (slice(None), slice(None), 1), 0.0) * 1.0


# (id, where, estimator params, mutate(X, y) -> (X, y), exception, message regex)
# where: "fit" (a fresh estimator), "predict"/"score" (a fitted one).
FIT_CASES = [
    # --- shapes and layouts
    ("X 1-D", "fit", {}, lambda X, y: (X[0, :, 0], y[0, :, 0]), ValueError,
     r"X has 1 dimension\(s\) with shape \(40,\); expected 2"),
    ("X 4-D", "fit", {}, lambda X, y: (X[..., None], y), ValueError,
     r"X has 4 dimension\(s\)"),
    ("X scalar", "fit", {}, lambda X, y: (3.0, y), ValueError, r"X is a scalar"),
    ("X None", "fit", {}, lambda X, y: (None, y), ValueError, r"X is None"),
    ("y None", "fit", {}, lambda X, y: (X, None), ValueError, r"requires y to be passed"),
    ("y too many axes", "fit", {}, lambda X, y: (X, y[..., None, None]), ValueError,
     r"y has 6 dimension\(s\) but X has 3; expected 2, 3, 4"),
    ("y too few axes", "fit", {}, lambda X, y: (X, y[:, 0, 0, 0]), ValueError,
     r"y has 1 dimension\(s\) but X has 3"),
    ("X/y disagree on stimuli", "fit", {}, lambda X, y: (X, y[:-1]), ValueError,
     r"X and y disagree on the number of stimuli: X has 6 and y has 5"),
    ("X/y disagree on frames", "fit", {}, lambda X, y: (X, y[:, :-2]), ValueError,
     r"X and y disagree on the number of frames: X has 40 and y has 38"),
    ("no stimulus", "fit", {}, lambda X, y: (X[:0], y[:0]), ValueError,
     r"X has shape \(0, 40, 5\) with an empty axis"),
    ("no frame", "fit", {}, lambda X, y: (X[:, :0], y[:, :0]), ValueError,
     r"X has shape \(6, 0, 5\) with an empty axis"),
    ("no frequency band", "fit", {}, lambda X, y: (X[..., :0], y), ValueError,
     r"X has shape \(6, 40, 0\) with an empty axis"),
    ("no neuron", "fit", {}, lambda X, y: (X, y[:, :, :0]), ValueError,
     r"y has shape \(6, 40, 0, 4\) with an empty neuron or repeat axis"),
    ("no repeat", "fit", {}, lambda X, y: (X, y[..., :0]), ValueError,
     r"y has shape \(6, 40, 3, 0\) with an empty neuron or repeat axis"),
    # --- NaN, inf, padding
    ("NaN frame inside a stimulus of X", "fit", {}, lambda X, y: (_set(X, (2, 10), np.nan), y),
     ValueError, r"X has NaN frames inside stimulus 2 \(frame 10 is NaN but frame 11 is not\)"),
    ("NaN in some bands of X", "fit", {}, lambda X, y: (_set(X, (2, 10, 3), np.nan), y),
     ValueError, r"X has NaN in some but not all frequency bands of stimulus 2, frame 10"),
    ("inf in X", "fit", {}, lambda X, y: (_set(X, (0, 5, 1), np.inf), y), ValueError,
     r"X contains infinite values \(first at stimulus 0, frame 5, band 1\)"),
    ("inf in y", "fit", {}, lambda X, y: (X, _set(y, (0, 5, 1, 0), -np.inf)), ValueError,
     r"y contains infinite values"),
    ("NaN inside a repeat of y", "fit", {}, lambda X, y: (X, _set(y, (3, 7, 2, 1), np.nan)),
     ValueError, r"y has NaN inside stimulus 3 \(repeat 1 of neuron 2 is NaN on some"),
    ("y has values on X's padding", "fit", {}, lambda X, y: (X, _set(y, (1, 35), 1.0)),
     ValueError, r"y has values at stimulus 1, frame 35, but X is NaN-padded there"),
    ("y padded earlier than X", "fit", {}, lambda X, y: (X, _set(y, (4, 33), np.nan)),
     ValueError, r"y has NaN inside stimulus 4 .*end-padding shared with X"),
    ("empty stimulus (all NaN)", "fit", {},
     lambda X, y: (_set(X, (2,), np.nan), _set(y, (2,), np.nan)), ValueError,
     r"stimulus 2 of X has no valid frames \(all NaN\)"),
    ("neuron with no response at all", "fit", {},
     lambda X, y: (X, _set(y, (slice(None), slice(None), 1), np.nan)), ValueError,
     r"neuron 1 has no valid response at all \(y is all NaN for it\)"),
    ("neuron without a repeat of one stimulus", "fit", {},
     lambda X, y: (X, _set(y, (3, slice(None), 0), np.nan)), ValueError,
     r"neuron 0 has no valid repeat for stimulus 3 .*Neuron 0 misses 1 stimulus \(\[3\]\), as a unit lost "
     r"partway through a session does; 1 neuron misses some \(\[0\]\): fit each apart"),
    ("neurons lost partway", "fit", {},
     lambda X, y: (X, _set(_set(y, (slice(2, None), slice(None), 2), np.nan), (5, slice(None), 1), np.nan)),
     ValueError, r"neuron 2 has no valid repeat for stimulus 2 .*misses 4 stimuli \(\[2, 3, 4, 5\]\).*"
                 r"2 neurons miss some \(\[1, 2\]\)"),
    ("X beyond float32 range", "fit", {}, lambda X, y: (X * 1e25, y), ValueError,
     r"X has values up to [0-9.e+]+ in magnitude; expected at most 1.84e\+19"),
    ("y beyond float32 range", "fit", {}, lambda X, y: (X, _set(y, (0, 0, 0, 0), -1e30)),
     ValueError, r"y has values up to 1e\+30 in magnitude"),
    # --- no variation to fit
    ("constant stimulus", "fit", {}, lambda X, y: (np.where(np.isnan(X), np.nan, 2.5), y),
     ValueError, r"X is constant over the \d+ training frames in every one of its 5"),
    ("all-zero responses", "fit", {}, lambda X, y: (X, np.where(np.isnan(y), np.nan, 0.0)),
     ValueError, r"y is constant over the training frames for every one of its 3 neuron"),
    # --- dtypes
    ("complex X", "fit", {}, lambda X, y: (X.astype(complex), y), ValueError,
     r"Complex data not supported: X has dtype complex128"),
    ("complex y", "fit", {}, lambda X, y: (X, y + 0j), ValueError,
     r"Complex data not supported: y has dtype complex128"),
    ("text X", "fit", {}, lambda X, y: (X.astype(str), y), ValueError,
     r"X holds text \(dtype <U\d+\); expected numbers"),
    ("bytes y", "fit", {}, lambda X, y: (X, y.astype("S8")), ValueError,
     r"y holds text \(dtype \|S8\)"),
    ("datetime X", "fit", {}, lambda X, y: (np.zeros(X.shape, "datetime64[ms]"), y), TypeError,
     r"X has dtype datetime64\[ms\], which is not numeric"),
    ("object X holding a dict", "fit", {}, lambda X, y: (_dict_object(X), y), TypeError,
     r"X holds a dict at X\[0, 0, 0\], which is not a number"),
    ("object X holding text", "fit", {}, lambda X, y: (_text_object(X), y), ValueError,
     r"X holds text \(X\[0, 3, 2\] = 'n/a'\)"),
    ("ragged list of stimuli", "fit", {}, lambda X, y: ([X[0], X[1, :30]], y[:2]), ValueError,
     r"X is a ragged sequence that is not one array.*NaN-padded at the end"),
    ("object array of ragged stimuli", "fit", {}, lambda X, y: (_ragged_object(X), y[:2]),
     ValueError, r"X is an object array holding sequences \(e.g. X\[0\]\).*NaN-padded"),
    ("sparse X", "fit", {}, lambda X, y: (sp.csr_matrix(X[0, :30]), y[0, :30]), TypeError,
     r"Sparse data was passed for X, but dense data is required"),
    # --- parameters
    ("n_lags < 1", "fit", {"n_lags": 0}, None, ValueError,
     r"The 'n_lags' parameter of STRFRegressor must be an int in the range \[1, inf\)"),
    ("n_lags not an integer", "fit", {"n_lags": 2.5}, None, ValueError,
     r"The 'n_lags' parameter .* Got 2.5"),
    ("n_lags longer than every stimulus", "fit", {"n_lags": 41}, None, ValueError,
     r"n_lags=41 is longer than every stimulus: the longest has 40 valid frames"),
    ("one fold", "fit", {"cv": 1}, None, ValueError,  # each option named once, not twice
     r"The 'cv' parameter of STRFRegressor must be an int in the range \[2, inf\), an object "
     r"implementing 'split' and 'get_n_splits', an iterable or None\. Got 1 instead"),
    ("unknown kernel", "fit", {"kernel": "gabor"}, None, ValueError,
     r"The 'kernel' parameter of STRFRegressor must be a str among .* Got 'gabor'"),
    ("unknown solver", "fit", {"solver": "newton"}, None, ValueError,
     r"The 'solver' parameter of STRFRegressor .* Got 'newton'"),
    ("solver for another kernel", "fit", {"kernel": "parametric", "solver": "als"}, None,
     ValueError, r"solver='als' fits the 'separable' kernel only, but kernel='parametric'"),
    ("lbfgs for another kernel", "fit", {"kernel": "vanilla", "solver": "lbfgs"}, None,
     ValueError, r"solver='lbfgs' fits the 'parametric' kernel only, but kernel='vanilla'"),
    ("lbfgs with a nonlinearity", "fit", {"kernel": "parametric", "solver": "lbfgs", "nonlinearity": "softplus"},
     None, ValueError, r"solver='lbfgs' fits linear least-squares models only, but nonlinearity='softplus'"),
    ("unknown device", "fit", {"device": "gpu0"}, None, ValueError,
     r"unknown device 'gpu0'; expected 'auto', 'cpu' or 'cuda\[:i\]'"),
    ("unsupported device", "fit", {"device": "meta"}, None, ValueError,
     r"unsupported device 'meta'"),
    ("n_gaussians < 1", "fit", {"kernel": "parametric", "n_gaussians": 0}, None, ValueError,
     r"The 'n_gaussians' parameter .* Got 0"),
    ("rank < 1", "fit", {"kernel": "separable", "rank": 0}, None, ValueError,
     r"The 'rank' parameter .* Got 0"),
    ("rank above min(n_freqs, n_lags)", "fit", {"kernel": "separable", "rank": 5}, None,
     ValueError, r"rank=5 exceeds min\(n_freqs, n_lags\) = 4"),
    ("rank grid with a zero", "fit", {"kernel": "separable", "rank": [1, 0]}, None, ValueError,
     r"rank must be a positive int, 'auto' or a non-empty 1-D sequence of positive ints; got \[1, 0\]"),
    ("rank grid above min(n_freqs, n_lags)", "fit", {"kernel": "separable", "rank": [1, 5]}, None,
     ValueError, r"rank=\[1, 5\] exceeds min\(n_freqs, n_lags\) = 4"),
    ("rank grid without validation", "fit",
     {"kernel": "separable", "rank": [1, 2, 3], "validation_fraction": None, "cv": None}, None, ValueError,
     r"choosing the separable kernel's rank among \[1, 2, 3\] needs cross-validation folds or validation stimuli"),
    ("negative alpha", "fit", {"alpha": -1.0}, None, ValueError,
     r"The 'alpha' parameter .* Got -1.0"),
    ("alpha grid with a negative value", "fit", {"alpha": [1.0, -1.0]}, None, ValueError,
     r"alpha must be a non-negative float or a non-empty 1-D sequence of them; got \[1.0, -1.0\]"),
    ("alpha grid with gradient training", "fit", {"alpha": [0.1, 1.0], "solver": "gradient", "cv": None},
     None, ValueError, r"solver='gradient' trains with a single penalty, but alpha has 2 values"),
    ("alpha grid without validation", "fit", {"alpha": [0.1, 1.0], "validation_fraction": None, "cv": None},
     None, ValueError, r"choosing alpha from a grid needs validation stimuli"),
    ("lr not positive", "fit", {"lr": 0.0}, None, ValueError, r"The 'lr' parameter .* Got 0.0"),
    ("lr NaN", "fit", {"lr": float("nan")}, None, ValueError, r"The 'lr' parameter .* Got nan"),
    ("max_epochs < 1", "fit", {"max_epochs": 0}, None, ValueError, r"The 'max_epochs' parameter"),
    ("batch_size < 1", "fit", {"batch_size": 0}, None, ValueError, r"The 'batch_size' parameter"),
    ("validation_fraction 1", "fit", {"validation_fraction": 1.0}, None, ValueError,
     r"The 'validation_fraction' parameter .* range \(0.0, 1.0\)"),
    ("patience < 1", "fit", {"patience": 0}, None, ValueError, r"The 'patience' parameter"),
    ("callbacks not a list", "fit", {"callbacks": "print"}, None, ValueError,
     r"The 'callbacks' parameter"),
    ("unknown keyword parameter", "fit", {"optimiser__lr": 0.1}, None, ValueError,
     r"unknown parameter\(s\) \['optimiser__lr'\] for STRFRegressor"),
    ("n_lags a bool", "fit", {"n_lags": True}, None, ValueError,
     r"n_lags=True is a bool; expected an int"),
    ("lr beyond float32", "fit", {"lr": 1e300}, None, ValueError,
     r"The 'lr' parameter of STRFRegressor must be a float in the range \(0.0, 3.4"),
    ("callbacks holding a non-callback", "fit", {"callbacks": [object()]}, None, ValueError,
     r"callbacks\[0\] is <object object at .*>, which is not a skorch callback"),
    ("dt_ms in seconds with a prefilter", "fit", {"prefilter": "ic_adaptation", "dt_ms": 0.0005},
     None, ValueError, r"dt_ms=0.0005 gives adaptation filters of 1299650 taps .*more than 10000"),
    ("dt_ms tiny with a prefilter", "fit", {"prefilter": "adaptrans", "dt_ms": 1e-9}, None,
     ValueError, r"dt_ms=1e-09 gives adaptation filters of \d+ taps"),
    ("dt_ms longer than every time constant", "fit", {"prefilter": "adaptrans", "dt_ms": 5000.0},
     None, ValueError, r"dt_ms=5000.0: the slowest adaptation time constant \(216.6 ms"),
    ("masked X", "fit", {}, lambda X, y: (np.ma.masked_invalid(X), y), ValueError,
     r"X is a numpy masked array with 50 masked value\(s\), and skstrf does not read masks"),
    ("masked y", "fit", {}, lambda X, y: (X, np.ma.masked_greater(y, 0)), ValueError,
     r"y is a numpy masked array with \d+ masked value\(s\)"),
    ("alpha too large for gradient training", "fit", {"alpha": 1e300, "solver": "gradient"}, None,
     ValueError, r"alpha=1e\+300 is too large for gradient training, whose loss is computed in float32"),
    ("history of the wrong length", "fit", {"history": np.zeros(3)}, None, ValueError,
     r"history as a level must hold one finite number per band, shape \(5,\); got shape \(3,\)"),
    ("lead_in leaving no frame", "fit", {"lead_in": 30}, None, ValueError,
     r"lead_in=30 leaves stimulus 1 no frame to fit: it has 30 valid frames"),
    ("smoothness shares summing to 1", "fit", {"smooth_freq": 0.6, "smooth_lag": 0.4}, None, ValueError,
     r"smooth_freq=0.6 and smooth_lag=0.4 are the shares .* their sum < 1"),
    # --- routed parameters: the net's own parts are checked like the estimator's options
    ("routed early-stopping patience < 1", "fit", {"solver": "gradient", "callbacks__early_stopping__patience": -5},
     None, ValueError, r"parameter callbacks__early_stopping__patience=-5 is not allowed: it must be an int "
                       r"in the range \[1, inf\)"),
    ("routed batch size 0", "fit", {"solver": "gradient", "iterator_train__batch_size": 0}, None, ValueError,
     r"parameter iterator_train__batch_size=0 is not allowed"),
    ("routed threshold mode unknown", "fit", {"solver": "gradient", "callbacks__early_stopping__threshold_mode": "pct"},
     None, ValueError, r"callbacks__early_stopping__threshold_mode='pct' is not allowed: it must be a str among"),
    ("routed setting of the validation scorer", "fit", {"callbacks__valid_cc_norm__psth": None}, None, ValueError,
     r"parameter 'callbacks__valid_cc_norm__psth' would change a callback whose settings skstrf makes itself"),
    ("EpochScoring by a scorer's name", "fit", {"solver": "gradient", "callbacks": [EpochScoring("r2")]}, None,
     ValueError, r"callbacks\[0\] is EpochScoring\(scoring='r2'\): skorch calls the scikit-learn scorer"),
    ("callback named like one of the net's own", "fit",
     {"nonlinearity": "softplus", "callbacks": [("early_stopping", EarlyStopping(patience=20))]}, None, ValueError,
     r"callbacks\[0\] is named 'early_stopping', a name of the net's own callbacks \['epoch_timer', .*, "
     r"'last_epoch'\]; give yours another name. To change one of the net's own, route its settings"),
    ("callback the fit relies on switched off", "fit", {"solver": "gradient", "callbacks__stop_on_non_finite": None},
     None, ValueError, r"parameter callbacks__stop_on_non_finite=None would switch off the net's callback "
                       r"'stop_on_non_finite', which stops a training whose loss is no longer finite; skstrf "
                       r"relies on it. Only \['print_log', 'epoch_timer'\] may be switched off"),
    ("callback the fit relies on replaced", "fit", {"callbacks__early_stopping": EarlyStopping(patience=3)},
     None, ValueError, r"would replace the net's callback 'early_stopping', which stops the training and "
                       r"restores its best epoch; set patience instead"),
    ("switchable callback replaced", "fit", {"callbacks__print_log": EarlyStopping()}, None, ValueError,
     r"would replace the net's callback 'print_log'; it can only be switched off \(callbacks__print_log=None\)"),
    ("pandas NA as padding", "fit", {}, lambda X, y: (_pandas_na(X), y), ValueError,
     r"X holds pandas' missing value <NA> at X\[1, 30, 0\]; skstrf marks padding .* with NaN \(np.nan\)"),
    # --- Poisson loss: spike counts are expected
    ("poisson with an identity output", "fit", {"loss": "poisson"}, None, ValueError,
     r"loss='poisson' needs a positive predicted rate, which nonlinearity='identity'"),
    ("negative counts for a poisson loss", "fit", {"loss": "poisson", "nonlinearity": "softplus"},
     lambda X, y: (X, _set(y, (2, 4, 1, 3), -1.0)), ValueError,
     r"loss='poisson' needs non-negative responses .* the first -1 at stimulus 2, frame 4, "
     r"neuron 1, repeat 3"),
]

PREDICT_CASES = [
    ("predict before fit", "unfitted", {}, lambda X, y: (X, y), NotFittedError,
     r"This STRFRegressor instance is not fitted yet"),
    ("predict with other frequency bands", "predict", {}, lambda X, y: (X[..., :3], y),
     ValueError, r"X has 3 features, but STRFRegressor is expecting 5 features"),
    ("predict with NaN inside a stimulus", "predict", {},
     lambda X, y: (_set(X, (0, 12), np.nan), y), ValueError, r"X has NaN frames inside stimulus 0"),
    ("predict beyond float32 range", "predict", {}, lambda X, y: (X * 1e30, y), ValueError,
     r"X has values up to"),
    ("score with other neurons", "score", {}, lambda X, y: (X, y[:, :, :2]), ValueError,
     r"y has 2 neuron\(s\), but this estimator was fitted with 3 \(n_neurons_ = 3\)"),
    ("score with other frames", "score", {}, lambda X, y: (X, y[:, :-1]), ValueError,
     r"X and y disagree on the number of frames"),
    ("score with sample_weight", "score-weight", {}, lambda X, y: (X, y), ValueError,
     r"sample_weight is not supported by STRFRegressor.score"),
]


def _arm_trap(monkeypatch):
    """Make any training or prediction step fail the test from now on."""

    def reached(*args, **kwargs):
        raise AssertionError("training or prediction started before the bad input was rejected")

    monkeypatch.setattr("skstrf._model.lagged_statistics", reached)  # the statistics a fit computes
    for name in ("initialize", "partial_fit", "fit", "predict", "forward"):
        monkeypatch.setattr(STRFNet, name, reached)


@pytest.fixture
def no_training(monkeypatch):
    _arm_trap(monkeypatch)


@pytest.fixture(scope="module")
def fitted():
    X, y = _data()
    return STRFRegressor(**BASE).fit(X, y)


def _ids(cases):
    return [case[0] for case in cases]


@pytest.mark.parametrize("case", FIT_CASES, ids=_ids(FIT_CASES))
def test_fit_rejects_bad_input_before_training(case, no_training):
    _, _, params, mutate, error, match = case
    X, y = _data()
    if mutate is not None:
        X, y = mutate(X, y)
    est = STRFRegressor(**{**BASE, **params})
    with pytest.raises(error, match=match):
        est.fit(X, y)
    assert not [key for key in vars(est) if key.endswith("_") and not key.startswith("_")]


@pytest.mark.parametrize("case", PREDICT_CASES, ids=_ids(PREDICT_CASES))
def test_predict_and_score_reject_bad_input(case, fitted, request):
    _, where, _, mutate, error, match = case
    X, y = mutate(*_data())
    request.getfixturevalue("no_training")
    with pytest.raises(error, match=match):
        if where == "unfitted":
            STRFRegressor(**BASE).predict(X)
        elif where == "predict":
            fitted.predict(X)
        elif where == "score":
            fitted.score(X, y)
        else:
            fitted.score(X, y, sample_weight=np.ones(S))


def test_cuda_requested_without_cuda(monkeypatch, no_training):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    X, y = _data()
    with pytest.raises(ValueError, match=r"device='cuda' was requested but CUDA is not available"):
        STRFRegressor(**BASE, device="cuda").fit(X, y)


def test_failed_refit_keeps_the_previous_fit(fitted):
    est = pickle.loads(pickle.dumps(fitted))
    before = est.strfs_.copy()
    X, y = _data()
    with pytest.raises(ValueError, match=r"X has NaN frames inside stimulus 0"):
        est.fit(_set(X, (0, 3), np.nan), y)
    np.testing.assert_array_equal(est.strfs_, before)
    np.testing.assert_array_equal(est.predict(X), fitted.predict(X))


def test_warm_start_with_other_bands_keeps_the_previous_fit(monkeypatch):
    X, y = _data()
    est = STRFRegressor(**BASE, solver="gradient", warm_start=True).fit(X, y)
    before = est.strfs_.copy()
    _arm_trap(monkeypatch)
    with pytest.raises(ValueError, match=r"warm_start=True needs the same number of frequency "
                                         r"bands and neurons as the previous fit \(5 and 3\); "
                                         r"got 4 and 3"):
        est.fit(X[..., :4], y)
    np.testing.assert_array_equal(est.strfs_, before)


# --- degenerate-but-legal inputs that warn instead of raising ---------------------------

def test_tiny_units_are_not_mistaken_for_constant_data():
    # data in SI units (amperes, linear power) vary at 1e-12: the constant test is relative
    # to each entry's mean, so that the fit does not depend on the data's units
    X, y = _data()
    reference = STRFRegressor(**BASE).fit(X, y)
    scale = np.array([1.0, 1e-12, 1.0])[:, None]  # neuron 1 in tiny units
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "constant" warning
        tiny_y = STRFRegressor(**BASE).fit(X, y * scale)
        tiny_x = STRFRegressor(**BASE).fit(X * 1e-12, y)
    ref = reference.strfs_
    tol = {"rtol": 1e-4, "atol": 1e-5 * float(np.abs(ref).max())}  # float32 model, other rounding
    np.testing.assert_allclose(tiny_y.strfs_[1] * 1e12, ref[1], **tol)
    np.testing.assert_allclose(tiny_y.strfs_[[0, 2]], ref[[0, 2]], **tol)
    np.testing.assert_allclose(tiny_x.strfs_ * 1e-12, ref, **tol)
    assert tiny_y.score(X, y * scale) == pytest.approx(reference.score(X, y), abs=1e-5)
    assert tiny_x.score(X * 1e-12, y) == pytest.approx(reference.score(X, y), abs=1e-5)
    # and all-zero data still is constant
    with pytest.raises(ValueError, match=r"y is constant over the training frames for every one"):
        STRFRegressor(**BASE).fit(X, np.where(np.isnan(y), np.nan, 0.0))


def test_positive_output_on_signed_responses_warns():
    X, y = _data()
    centred = y - np.nanmean(y)
    with pytest.warns(UserWarning, match=r"nonlinearity='softplus' predicts positive rates only, but the PSTH "
                                         r"goes below zero \([0-9.]+% of its values, down to -[0-9.]+\)") as caught:
        STRFRegressor(**{**BASE, "max_epochs": 1}, nonlinearity="softplus").fit(X, centred)
    assert [w.filename for w in caught if "positive rates" in str(w.message)] == [__file__]
    with warnings.catch_warnings(record=True) as caught:  # counts: nothing to say
        warnings.simplefilter("always")
        STRFRegressor(**{**BASE, "max_epochs": 1}, nonlinearity="exp").fit(X, y)
    assert not [w for w in caught if "positive rates" in str(w.message)]


def test_zero_variance_neuron_warns_and_is_fitted_as_flat():
    X, y = _data()
    y = np.where(np.isnan(y), np.nan, y)
    y[:, :, 1] = np.where(np.isnan(y[:, :, 1]), np.nan, 3.0)  # neuron 1 always fires 3
    with pytest.warns(UserWarning, match=r"y is constant over the training frames for neuron\(s\) "
                                         r"\[1\] \(zero variance\)"):
        est = STRFRegressor(**BASE).fit(X, y)
    # nothing to explain: the least-squares STRF is exactly zero and the intercept the level
    np.testing.assert_array_equal(est.strfs_[1], 0.0)
    np.testing.assert_allclose(est.intercept_[1], 3.0, rtol=1e-6)
    assert np.abs(est.strfs_[[0, 2]]).max() > 0
    with pytest.warns(UndefinedMetricWarning, match=r"undefined for 1 of 3 neurons"):
        scores = cc_norm(y, est.predict(X), multioutput="raw_values")
    assert np.isnan(scores[1]) and np.isfinite(scores[[0, 2]]).all()


def test_constant_band_warns_and_the_other_bands_are_fitted():
    X, y = _data()
    X[:, :, 2] = np.where(np.isnan(X[:, :, 2]), np.nan, 1.0)
    with pytest.warns(UserWarning, match=r"X is constant over the training frames in frequency "
                                         r"band\(s\) \[2\]"):
        est = STRFRegressor(**BASE).fit(X, y)
    assert np.isfinite(est.strfs_).all()
    # the band's lag-0 column is constant like the intercept's: ridge gives it no weight
    assert np.abs(est.strfs_[:, 2, 0]).max() < 1e-12 * np.abs(est.strfs_).max()


# --- other public entry points ---------------------------------------------------------

# The generator validates its counts with scikit-learn's parameter constraints.
@pytest.mark.parametrize("kwargs, match", [
    ({"n_repeats": 0}, r"The 'n_repeats' parameter of make_strf_dataset must be an int in the range \[1, inf\)\. Got 0"),
    ({"n_repeats": -2}, r"The 'n_repeats' parameter of make_strf_dataset .* Got -2"),
    ({"n_repeats": 2.5}, r"The 'n_repeats' parameter of make_strf_dataset .* Got 2.5"),
    ({"n_stimuli": 0}, r"The 'n_stimuli' parameter of make_strf_dataset .* Got 0"),
])
def test_make_strf_dataset_rejects_bad_counts(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_strf_dataset(**kwargs)


def test_cc_norm_rejects_mismatched_shapes():
    y = np.random.default_rng(0).random((3, 20, 2, 4))
    with pytest.raises(ValueError, match=r"y_true has shape \(3, 20, 2, 4\) but y_pred has shape "
                                         r"\(3, 20, 1\)"):
        cc_norm(y, y.mean(-1)[..., :1])
    with pytest.raises(ValueError, match=r"method must be one of \['schoppe', 'hsu'\]; got 'x'"):
        cc_norm(y, y.mean(-1), method="x")


def test_scores_of_responses_that_are_all_nan_name_the_problem():
    # before: warnings about single repeats and constant predictions, and a NaN score
    from skstrf.metrics import cc, noise_ceiling, signal_power

    y = np.full((2, 10, 3, 4), np.nan)
    pred = np.zeros((2, 10, 3))
    message = r"y_true of shape \(2, 10, 3, 4\) holds no recorded response: every value is NaN"
    for call in (lambda: cc_norm(y, pred), lambda: cc(y, pred), lambda: signal_power(y),
                 lambda: noise_ceiling(y), lambda: cc_norm(y[0], pred[0])):
        with pytest.raises(ValueError, match=message.replace(r"\(2, 10, 3, 4\)", r"\([0-9, ]+\)")):
            call()
    y[0, 0, 0, 0] = 1.0  # one recorded value: scored (NaN where undefined), not refused
    with pytest.warns(UserWarning):
        cc_norm(y, pred)


def test_load_dataset_rejects_corrupt_and_foreign_files(tmp_path):
    from skstrf.datasets._hdf5 import DatasetFormatError

    text = tmp_path / "notes.h5"
    text.write_text("not an HDF5 file")
    with pytest.raises(DatasetFormatError, match=r"notes.h5 is not an HDF5 file"):
        load_dataset(text)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["data"] = np.ones(3)
    with pytest.raises(DatasetFormatError, match=r"foreign.h5 is an HDF5 file but not an skstrf "
                                                 r"dataset"):
        load_dataset(foreign)
    good = save_dataset(tmp_path / "good.h5", *_data())
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DatasetFormatError, match=r"truncated.h5 .*cannot be opened"):
        load_dataset(truncated)
    with pytest.raises(FileNotFoundError, match=r"no dataset file at .*missing.h5"):
        load_dataset(tmp_path / "missing.h5")
    assert issubclass(DatasetFormatError, ValueError)


def test_routed_parameter_for_an_unknown_callback_is_an_error():
    X, y = _data()
    with pytest.raises(ValueError, match=r"parameter 'callbacks__early_stoping__patience' addresses "
                                         r"a callback named 'early_stoping'.*'early_stopping'"):
        STRFRegressor(**BASE, solver="gradient", callbacks__early_stoping__patience=2).fit(X, y)
    # the right name is routed (and validated) as before
    est = STRFRegressor(**BASE, solver="gradient", callbacks__early_stopping__patience=1).fit(X, y)
    assert dict(est.net_.callbacks_)["early_stopping"].patience == 1


@pytest.mark.parametrize("solver", ["gradient", "ridge"])
def test_print_log_epoch_timer_and_own_callbacks_can_be_switched_off(solver):
    """skorch's way of switching a callback off (``callbacks__<name>=None``) works for the
    net's printing and timing callbacks and for the user's own; the others are refused
    (FIT_CASES), and every one of the net's own callbacks is in one of the two lists."""
    from skorch.callbacks import Callback

    from skstrf._net import reserved_callback_names
    from skstrf._plan import _KEPT_CALLBACKS, SWITCHABLE_CALLBACKS

    assert set(_KEPT_CALLBACKS) | set(SWITCHABLE_CALLBACKS) == set(reserved_callback_names())
    assert not set(_KEPT_CALLBACKS) & set(SWITCHABLE_CALLBACKS)

    class Mine(Callback):
        pass

    X, y = _data()
    est = STRFRegressor(**BASE, solver=solver, callbacks=[("mine", Mine())], callbacks__print_log=None,
                        callbacks__epoch_timer=None, callbacks__mine=None).fit(X, y)
    names = [name for name, _ in est.net_.callbacks_]
    assert "print_log" not in names and "epoch_timer" not in names and "mine" not in names
    assert "stop_on_non_finite" in names and "train_loss" in names
    assert np.isfinite(est.strfs_).all()
    with pytest.raises(ValueError, match=r"addresses a callback named 'prin_log'"):  # a typo is still an error
        STRFRegressor(**BASE, solver=solver, callbacks__prin_log=None).fit(X, y)


def test_routed_optimizer_parameter_of_the_wrong_type_is_a_clear_error():
    X, y = _data()
    est = STRFRegressor(**BASE, solver="gradient", optimizer__lr="abc")
    with pytest.raises(ValueError, match=r"could not be set up with lr=0.001 and the routed "
                                         r"parameters \{'optimizer__lr': 'abc'\}"):
        est.fit(X, y)
    assert not [key for key in vars(est) if key.endswith("_") and not key.startswith("_")]


def test_tensor_requiring_grad_is_read_as_its_data():
    X, y = _data()
    reference = STRFRegressor(**BASE).fit(X, y)
    est = STRFRegressor(**BASE).fit(torch.tensor(X, requires_grad=True), torch.tensor(y))
    np.testing.assert_array_equal(est.strfs_, reference.strfs_)
    np.testing.assert_array_equal(est.predict(torch.tensor(X, requires_grad=True)), reference.predict(X))


def test_masked_array_without_masked_values_is_its_data():
    X, y = _data()
    reference = STRFRegressor(**BASE).fit(X, y)
    est = STRFRegressor(**BASE).fit(np.ma.masked_array(X), y)
    np.testing.assert_array_equal(est.strfs_, reference.strfs_)
