"""Catalogue of bad inputs around the estimator: splitters, preprocessing pipelines, inspection.

The part of the bad-input catalogue (``tests/test_bad_inputs.py``) for the modules that wrap
or feed :class:`~skstrf.STRFRegressor`. Every case asserts the exception type and a message
that names the offending argument (or pipeline step) and the problem, and runs with the
estimator's ``fit`` and ``predict`` and the gradient maps' backward pass booby-trapped, so an
error raised too late fails the test. ``docs/user_guide/bad_inputs.rst`` documents the same
catalogue; the command line's errors are tested in ``tests/test_cli.py``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.model_selection import cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skstrf import STRFRegressor, inspection
from skstrf.datasets import make_strf_dataset
from skstrf.inspection import gradient_maps, jackknife_strfs, significance_mask
from skstrf.model_selection import ContiguousBlocks, TrainValidTestSplit
from skstrf.preprocessing import Compression, FrameTransformer

S, T, F, N, R, L = 6, 40, 5, 3, 4, 4


def _data():
    d = make_strf_dataset(n_stimuli=S, n_times=T, n_freqs=F, n_neurons=N, n_repeats=R,
                          n_lags=L, random_state=0)
    X, y = np.abs(d.X) + 0.1, d.y.copy()  # positive, as a power spectrogram
    X[1, 30:] = np.nan  # a ragged set: stimulus 1 is 30 frames long
    y[1, 30:] = np.nan
    return X, y


@pytest.fixture(scope="module")
def fitted():
    """A pipeline with a frame-wise logarithm, and a plain estimator, fitted on valid data."""
    X, y = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = make_pipeline(FrameTransformer(FunctionTransformer(np.log)),
                             STRFRegressor(n_lags=L, cv=None)).fit(X, y)
        est = STRFRegressor(n_lags=L, cv=None).fit(X, y)
    return pipe, est


@pytest.fixture
def no_work(monkeypatch):
    """Training, prediction and the gradient maps' backward pass fail the test if reached."""
    def trap(what):
        def reached(*args, **kwargs):
            pytest.fail(f"{what} was reached before the bad input was refused")
        return reached

    monkeypatch.setattr(STRFRegressor, "fit", trap("STRFRegressor.fit"))
    monkeypatch.setattr(STRFRegressor, "predict", trap("STRFRegressor.predict"))
    monkeypatch.setattr(inspection, "_last_frame_gradient", trap("the gradient's backward pass"))


def _log_of_zero_at_the_end(X):
    """Stimulus 0 ends with a silent frame of zeros: log(0) there."""
    X = X.copy()
    X[0, -1] = 0.0
    return X


def _log_of_negative_at_the_end(X):
    """Stimulus 1's last valid frame is negative (e.g. baseline-subtracted power): NaN there."""
    X = X.copy()
    X[1, 29] = -0.5
    return X


# (id, call(X, y, fitted) -> anything, exception, message regex)
CASES = [
    # --- splitters: one continuous recording is not a set of stimuli
    ("TrainValidTestSplit on one recording (2-D X)",
     lambda X, y, f: cross_validate(STRFRegressor(n_lags=L), X[0], y[0], error_score="raise",
                                    cv=TrainValidTestSplit(range(30), range(30, 35), range(35, 40))),
     ValueError, r"X of shape \(40, 5\) is one continuous recording, but TrainValidTestSplit splits "
                 r"stimuli.*Cut the recording into blocks in the stimulus layout.*ContiguousBlocks"),
    ("TrainValidTestSplit on one stimulus (3-D X)",
     lambda X, y, f: list(TrainValidTestSplit([0], [1], [2]).split(X[:1])),
     ValueError, r"X of shape \(1, 40, 5\) is one continuous recording"),
    ("ContiguousBlocks on one stimulus (3-D X)",
     lambda X, y, f: list(ContiguousBlocks(4).split(X[:1])),
     ValueError, r"X of shape \(1, 40, 5\) holds one recording as a single stimulus.*pass X\[0\]"),
    # --- NaN made inside a pipeline, on frames that were valid
    ("log of 0 at the end of a stimulus, predict",
     lambda X, y, f: f[0].predict(_log_of_zero_at_the_end(X)),
     ValueError, r"^FrameTransformer\(transformer=FunctionTransformer\(func=<ufunc 'log'>\)\) produced "
                 r"an infinite value at stimulus 0, frame 39, a valid frame"),
    ("log of a negative frame at the end of a stimulus, predict",
     lambda X, y, f: f[0].predict(_log_of_negative_at_the_end(X)),
     ValueError, r"^FrameTransformer\(.*\) produced NaN at stimulus 1, frame 29, a valid frame: the "
                 r"wrapped FunctionTransformer was given that frame.*for padding and silently drop them"),
    ("log of a negative frame at the end of a stimulus, fit",
     lambda X, y, f: make_pipeline(FrameTransformer(FunctionTransformer(np.log)),
                                   STRFRegressor(n_lags=L)).fit(_log_of_negative_at_the_end(X), y),
     ValueError, r"^FrameTransformer\(.*\) produced NaN at stimulus 1, frame 29, a valid frame"),
    ("log of a negative frame, cross-validated",
     lambda X, y, f: cross_validate(make_pipeline(FrameTransformer(FunctionTransformer(np.log)),
                                                  STRFRegressor(n_lags=L)),
                                    _log_of_negative_at_the_end(X), y, error_score="raise",
                                    cv=[(np.arange(4), np.arange(4, 6))]),
     ValueError, r"^FrameTransformer\(.*\) produced NaN at stimulus 1, frame 29"),
    ("Compression given an offset below zero after fit",
     lambda X, y, f: Compression().fit(X).set_params(offset=-1.0).transform(X),
     ValueError, r"^Compression\(offset=-1.0\) produced NaN at stimulus \d+, frame \d+, a valid frame: "
                 r"log of values <= -offset = 1"),
    # --- inspection
    ("gradient_maps baseline from the mean of NaN-padded X",
     lambda X, y, f: gradient_maps(f[1], baseline=X.mean(axis=(0, 1))),
     ValueError, r"baseline is NaN at band 0 \(5 of 5 bands are not finite\).*np\.nanmean\(X, axis=\(0, 1\)\)"),
    ("gradient_maps baseline of the wrong length",
     lambda X, y, f: gradient_maps(f[1], baseline=np.zeros(3)),
     ValueError, r"baseline must be a number or an array of shape \(n_freqs,\) = \(5,\); got shape \(3,\)"),
    ("gradient_maps baseline not a number",
     lambda X, y, f: gradient_maps(f[1], baseline="silence"),
     TypeError, r"baseline must be a number or an array of numbers.*got 'silence'"),
    ("significance level out of (0, 1)",
     lambda X, y, f: significance_mask(np.full((2, 3), 0.5), level=5),
     ValueError, r"level must be a number in \(0, 1\); got 5"),
    ("significance level given twice (level and the deprecated alpha)",
     lambda X, y, f: jackknife_strfs(f[1], X, y, level=0.01, alpha=0.05),
     ValueError, r"give the significance level as level only; got level=0.01 and the deprecated alpha=0.05"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_before_any_work(case, fitted, no_work):
    _, call, exception, message = case
    X, y = _data()
    with np.errstate(divide="ignore", invalid="ignore"), pytest.raises(exception, match=message):
        call(X, y, fitted)


def test_transformer_nan_on_valid_frames_never_reaches_the_predictions(fitted):
    """Without the check, the NaN frame at the end of stimulus 1 was taken for padding and
    ``predict`` returned NaN there without a word; with it, every frame is predicted or the
    pipeline raises."""
    pipe, _ = fitted
    X, _ = _data()
    pred = pipe.predict(X)
    assert np.array_equal(np.isnan(pred).all(axis=-1), np.isnan(X).all(axis=-1))
    with np.errstate(invalid="ignore"), pytest.raises(ValueError, match="a valid frame"):
        pipe.predict(_log_of_negative_at_the_end(X))


def test_deprecated_alpha_still_works_with_a_future_warning():
    p = np.linspace(0.001, 0.2, 12).reshape(2, 6)
    with pytest.warns(FutureWarning, match=r"'alpha' was renamed to 'level' in version 0.1 and will be "
                      r"removed in 0.2.*use level=0.1"):
        mask = significance_mask(p, alpha=0.1, correction=None)
    np.testing.assert_array_equal(mask, p < 0.1)
