"""Catalogue of bad inputs to skstrf.plotting: each is rejected with a clear error before anything is drawn.

Every case asserts the exception type and a message that names the offending argument and
what was expected. No figure may be left behind by a rejected call (the checks run before
the figure is created), and no prediction may start: ``plot_prediction`` gets an estimator
whose ``predict`` fails the test, so a check made too late is caught.
``docs/user_guide/bad_inputs.rst`` documents the same catalogue (section "Figures").
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from skstrf.plotting import (  # noqa: E402
    plot_cv_results,
    plot_history,
    plot_paired_scores,
    plot_prediction,
    plot_score_hist,
    plot_strfs,
)

S, T, F, N, R = 4, 30, 6, 2, 3
RNG = np.random.default_rng(0)
X = RNG.normal(size=(S, T, F))
Y = RNG.poisson(1.0, size=(S, T, N, R)).astype(float)
PRED = RNG.normal(size=(S, T, N))
STRFS = RNG.normal(size=(2, F, 4))
FREQS = 500.0 * 2.0 ** np.arange(F)
RECORDS = [{"epoch": 1, "train_loss": 1.0, "valid_loss": 1.1, "valid_cc_norm": 0.3},
           {"epoch": 2, "train_loss": 0.8, "valid_loss": 1.0, "valid_cc_norm": 0.4}]
CV = {"params": [{"alpha": 1.0}, {"alpha": 10.0}], "mean_test_score": np.array([0.3, 0.4]),
      "std_test_score": np.array([0.05, 0.04]), "split0_test_score": np.array([0.25, 0.36]),
      "split1_test_score": np.array([0.35, 0.44])}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


class _Trapped:
    """An estimator whose prediction fails the test: checks must come before it."""

    def predict(self, X):
        raise AssertionError("the prediction started before the bad input was rejected")


class _FittedOther:
    """A fitted estimator of another kind: it has learned something, but not what is plotted."""

    def __init__(self, **attributes):
        self.coef_ = np.ones(3)
        vars(self).update(attributes)

    def fit(self, X, y):
        return self


def _strfs(**kwargs):
    return lambda: plot_strfs(STRFS, **kwargs)


def _prediction(**kwargs):
    return lambda: plot_prediction(_Trapped(), X, Y, **kwargs)


def _cv(**changes):
    return lambda: plot_cv_results({**CV, **changes})


_STRFS = r"strfs must be an array of shape \(n_strfs, n_freqs, n_lags\) or \(n_strfs, n_channels, n_freqs, n_lags\)"
_FREQ_RANGE = r"freqs must be positive, finite frequencies in Hz"
_HIST = r"expected a dict per epoch \(keys 'epoch', 'train_loss', 'valid_loss', 'valid_cc_norm'\)"

# (id, call, exception, message regex)
CASES = [
    # --- frequency and time axes (item 8 of the probe issue), one helper for every figure
    ("freqs negative (STRFs)", _strfs(freqs=-FREQS), ValueError, _FREQ_RANGE + r"; freqs\[0\] is -500 \(6 such"),
    ("freqs zero (STRFs)", _strfs(freqs=FREQS - 500.0), ValueError, _FREQ_RANGE + r"; freqs\[0\] is 0 \(1 such"),
    ("freqs NaN (STRFs)", _strfs(freqs=np.where(np.arange(F) == 2, np.nan, FREQS)), ValueError,
     _FREQ_RANGE + r"; freqs\[2\] is nan"),
    ("freqs infinite (STRFs)", _strfs(freqs=np.where(np.arange(F) == 5, np.inf, FREQS)), ValueError,
     _FREQ_RANGE + r"; freqs\[5\] is inf"),
    ("freqs wrong length (STRFs)", _strfs(freqs=FREQS[:4]), ValueError,
     r"freqs must hold one frequency per band \(6\); got 4 values"),
    ("freqs not monotonic (STRFs)", _strfs(freqs=FREQS[[0, 1, 3, 2, 4, 5]]), ValueError,
     r"freqs must be strictly increasing or strictly decreasing .*; freqs\[2\] = 4000 is followed by 2000"),
    ("freqs repeated (STRFs)", _strfs(freqs=np.full(F, 1000.0)), ValueError,
     r"freqs must be strictly increasing or strictly decreasing .*freqs\[0\] = 1000 is followed by 1000"),
    ("freqs text (STRFs)", _strfs(freqs=[f"{f:g} Hz" for f in FREQS]), TypeError,
     r"freqs must be the centre frequency in Hz of each of the 6 bands, of shape \(6,\); got text"),
    ("freqs a str (STRFs)", _strfs(freqs="log"), TypeError, r"freqs must be the centre frequency .*; got a str"),
    ("freqs a dict (STRFs)", _strfs(freqs={"low": 500.0}), TypeError, r"freqs must be .*; got a dict"),
    ("freqs 2-D (STRFs)", _strfs(freqs=FREQS.reshape(2, 3)), ValueError,
     r"freqs must be .*; got an array of shape \(2, 3\)"),
    ("freqs booleans (STRFs)", _strfs(freqs=np.ones(F, bool)), TypeError, r"freqs must be .*; got booleans"),
    ("dt_ms zero (STRFs)", _strfs(dt_ms=0), ValueError,
     r"dt_ms must be a positive, finite frame duration in ms; got 0"),
    ("dt_ms negative (STRFs)", _strfs(dt_ms=-5.0), ValueError, r"dt_ms must be a positive, finite .*; got -5.0"),
    ("dt_ms NaN (STRFs)", _strfs(dt_ms=float("nan")), ValueError, r"dt_ms must be a positive, finite .*; got nan"),
    ("dt_ms text (STRFs)", _strfs(dt_ms="5"), TypeError,
     r"dt_ms must be a positive number of milliseconds \(the frame duration\) or None \(lags in frames\); got '5'"),
    ("dt_ms a bool (STRFs)", _strfs(dt_ms=True), TypeError, r"dt_ms must be a positive number .*; got True \(bool\)"),
    ("freqs negative (prediction)", _prediction(freqs=-FREQS), ValueError, _FREQ_RANGE),
    ("freqs NaN (prediction)", _prediction(freqs=np.full(F, np.nan)), ValueError, _FREQ_RANGE + r"; freqs\[0\] is nan"),
    ("freqs text (prediction)", _prediction(freqs="abcdef"), TypeError, r"freqs must be the centre frequency"),
    ("freqs wrong length (prediction)", _prediction(freqs=FREQS[:1], spectrogram=False), ValueError,
     r"freqs must hold one frequency per band \(6\); got 1 values"),
    ("dt_ms zero (prediction)", _prediction(dt_ms=0), ValueError, r"dt_ms must be a positive, finite frame duration"),
    ("dt_ms negative (prediction)", _prediction(dt_ms=-5), ValueError, r"dt_ms must be a positive, finite .*got -5"),
    ("dt_ms None (prediction)", _prediction(dt_ms=None), TypeError,
     r"dt_ms must be a positive number of milliseconds \(the frame duration\); got None"),
    # --- plot_strfs: what is drawn
    ("strfs a dict", lambda: plot_strfs({"a": STRFS[0]}), TypeError,
     _STRFS + r".*; got a dict \(for panel titles pass titles=list\(d\)"),
    ("strfs None", lambda: plot_strfs(None), TypeError, _STRFS + r".*; got None"),
    ("strfs a number", lambda: plot_strfs(3), TypeError, _STRFS + r".*; got an int"),
    ("strfs text", lambda: plot_strfs(STRFS.astype(str)), TypeError, _STRFS + r".*; got text"),
    ("strfs holding text", lambda: plot_strfs([["a"]]), TypeError, _STRFS + r".*; got text"),
    ("strfs complex", lambda: plot_strfs(STRFS + 1j), TypeError, _STRFS + r".*; got complex numbers"),
    ("strfs one 2-D kernel", lambda: plot_strfs(STRFS[0]), ValueError,
     r"strfs has shape \(6, 4\), one 2-D kernel; .*For a single STRF pass strfs\[None\] or \[strfs\]"),
    ("strfs 1-D", lambda: plot_strfs(np.ones(5)), ValueError, _STRFS + r".*; got an array of shape \(5,\)"),
    ("strfs infinite", lambda: plot_strfs(np.where(STRFS > 1, np.inf, STRFS)), ValueError,
     r"strfs has infinite values; expected finite weights \(NaN draws a blank pixel\)"),
    ("strfs without bands", lambda: plot_strfs(np.ones((2, 0, 4))), ValueError,
     r"strfs has shape \(2, 0, 4\) with an empty axis"),
    ("strfs list holding text", lambda: plot_strfs([STRFS[0], "abc"]), TypeError,
     r"strfs\[1\] must be a \(n_freqs, n_lags\) array of weights; got a str"),
    ("titles a str", _strfs(titles="vanilla"), TypeError,
     r"titles must be a list of str \(one title per panel\) or None; got a str: 'vanilla'"),
    ("channels a str", lambda: plot_strfs(np.ones((1, 2, F, 4)), channels="ON/OFF"), TypeError,
     r"channels must be a list of str \(one name per input channel\) or None; got a str"),
    ("channels for STRFs without channels", _strfs(channels=["ON"]), ValueError,
     r"channels names the input channels of STRFs of shape \(n_strfs, n_channels, n_freqs, n_lags\); "
     r"these STRFs are 2-D"),
    ("shared_clim not a bool", _strfs(shared_clim="no"), TypeError, r"shared_clim must be True or False; got 'no'"),
    ("colorbar not a bool", _strfs(colorbar="none"), TypeError, r"colorbar must be True or False; got 'none'"),
    ("strfs of a fitted search", lambda: plot_strfs(_FittedOther(best_estimator_=None)), TypeError,
     r"strfs is a fitted _FittedOther, which has no strfs_; expected STRFs or an estimator that has it "
     r"\(for a search's best model pass search.best_estimator_\)"),
    # --- plot_history
    ("history of a fitted pipeline", lambda: plot_history(_FittedOther(steps=[])), TypeError,
     r"histories is a fitted _FittedOther, which has no history_; .*\(for a pipeline pass its last step, "
     r"pipeline\[-1\]\)"),
    ("history a str", lambda: plot_history("abc"), TypeError,
     r"histories must be a training history or a fitted estimator; got a str: 'abc'"),
    ("history None", lambda: plot_history(None), TypeError,
     r"histories must be a fitted estimator, its history_ or a list of per-epoch dicts; got None"),
    ("history a number", lambda: plot_history(3), TypeError, r"histories must be a fitted estimator.*; got an int"),
    ("history of numbers", lambda: plot_history([1.0, 0.5]), TypeError, r"histories\[0\] is a float; " + _HIST),
    ("history of str", lambda: plot_history(["a", "b"]), TypeError, r"histories\[0\] is a str; " + _HIST),
    ("several histories in a list", lambda: plot_history([RECORDS, RECORDS]), TypeError,
     r"histories\[0\] is a list; " + _HIST + r"; to overlay several fits pass a dict of label -> history"),
    ("one epoch's record", lambda: plot_history(RECORDS[0]), TypeError,
     r"histories looks like one epoch's record \(numbers under the keys \['epoch', 'train_loss', 'valid_loss', "
     r"'valid_cc_norm'\]\); .*\(all epochs, not one\)"),
    ("history without epochs", lambda: plot_history([]), ValueError,
     r"histories has no epochs; expected a fitted estimator, its history_ or a list of per-epoch dicts"),
    ("histories empty", lambda: plot_history({}), ValueError, r"histories is empty; expected one history"),
    ("history holding text", lambda: plot_history({"ridge": [{"epoch": 1, "train_loss": "0.4"}]}), TypeError,
     r"histories\['ridge'\]\[0\]\['train_loss'\] is '0.4'; expected a number"),
    ("history of a dict of text", lambda: plot_history({"ridge": "history.json"}), TypeError,
     r"histories\['ridge'\] must be a training history or a fitted estimator; got a str"),
    # --- plot_score_hist
    ("scores None", lambda: plot_score_hist(None), TypeError,
     r"scores must be per-neuron scores, an array-like of shape \(n_neurons,\); got None"),
    ("scores a single number", lambda: plot_score_hist({"vanilla": 0.42}), ValueError,
     r"scores\['vanilla'\] is a single number \(0.42\); expected one score per neuron \(e.g. "
     r"cc_norm\(..., multioutput='raw_values'\)\)"),
    ("scores per fold", lambda: plot_score_hist({"vanilla": np.full((5, 3), 0.4)}), ValueError,
     r"scores\['vanilla'\] has shape \(5, 3\); expected one score per neuron.*np.nanmean\(scores, axis=0\)"),
    ("scores text", lambda: plot_score_hist({"vanilla": ["0.4", "0.5"]}), TypeError,
     r"scores\['vanilla'\] must be per-neuron scores, .*; got text"),
    ("scores holding dicts", lambda: plot_score_hist([{"cc": 0.4}]), TypeError,
     r"scores must be per-neuron scores, .*; it holds a dict"),
    ("scores empty", lambda: plot_score_hist({"vanilla": []}), ValueError, r"scores\['vanilla'\] is empty"),
    ("scores infinite", lambda: plot_score_hist({"vanilla": [0.3, np.inf]}), ValueError,
     r"scores\['vanilla'\] has infinite values \(first at neuron 1\)"),
    ("bins zero", lambda: plot_score_hist({"vanilla": [0.3, 0.4]}, bins=0), ValueError,
     r"bins must be a positive number of bins; got 0"),
    ("bins not increasing", lambda: plot_score_hist({"vanilla": [0.3, 0.4]}, bins=[0.5, 0.0]), ValueError,
     r"bins must be at least 2 finite, strictly increasing edges"),
    # --- plot_paired_scores
    ("paired scores of one model", lambda: plot_paired_scores({"a": [0.1, 0.2]}), ValueError,
     r"plot_paired_scores needs the scores of at least two models; got \['a'\]"),
    ("paired scores of other neurons", lambda: plot_paired_scores({"a": [0.1, 0.2, 0.3], "b": [0.1, 0.2]}),
     ValueError, r"scores must hold one score per neuron, the same neurons for every model; got \{'a': 3, 'b': 2\}"),
    ("paired scores keyed by numbers", lambda: plot_paired_scores({1: [0.1, 0.2], 2: [0.2, 0.3]}), TypeError,
     r"scores must be keyed by model name \(str\); got the key 1"),
    ("paired scores text", lambda: plot_paired_scores({"a": "0.1 0.2", "b": [0.2, 0.3]}), TypeError,
     r"scores\['a'\] must be per-neuron scores"),
    ("paired scores infinite", lambda: plot_paired_scores({"a": [0.1, np.inf], "b": [0.2, 0.3]}), ValueError,
     r"scores\['a'\] has infinite values"),
    # --- plot_prediction
    ("stimulus a bool", _prediction(stimulus=True), TypeError,
     r"stimulus must be an integer in \[0, 4\); got True \(bool\)"),
    ("neuron a bool", _prediction(neuron=True), TypeError, r"neuron must be an integer in \[0, 2\); got True \(bool\)"),
    ("stimulus a float", _prediction(stimulus=1.0), TypeError, r"stimulus must be an integer .*; got 1.0 \(float\)"),
    ("stimulus out of range", _prediction(stimulus=4), ValueError, r"stimulus must be an integer in \[0, 4\); got 4"),
    ("time_range reversed", _prediction(time_range=(50, 10)), ValueError,
     r"time_range must be two finite times in ms with start < stop; got \(50, 10\)"),
    ("time_range text", _prediction(time_range="all"), TypeError,
     r"time_range must be \(start, stop\) in ms from the stimulus onset, or None; got a str"),
    ("time_range of 3 values", _prediction(time_range=(0, 10, 20)), ValueError, r"time_range must be \(start, stop\)"),
    ("spectrogram not a bool", _prediction(spectrogram="no"), TypeError, r"spectrogram must be True or False"),
    ("repeats not a str", _prediction(repeats=["lines"]), ValueError,
     r"repeats must be 'auto', 'lines', 'raster' or 'none'"),
    ("y None", lambda: plot_prediction(_Trapped(), X, None), ValueError,
     r"y is None; plot_prediction needs the recorded responses to X"),
    ("prediction text", lambda: plot_prediction("est", X, Y), TypeError,
     r"est_or_pred must be a fitted estimator or its predictions for X, of shape \(4, 30, 2\); got a str"),
    ("prediction a dict", lambda: plot_prediction({"pred": PRED}, X, Y), TypeError,
     r"est_or_pred must be .*; got a dict"),
    ("prediction None", lambda: plot_prediction(None, X, Y), TypeError, r"est_or_pred must be .*; got None"),
    ("prediction NaN at valid frames",
     lambda: plot_prediction(np.where(np.arange(T)[:, None] == 7, np.nan, PRED), X, Y),
     ValueError, r"the prediction of neuron 0 for stimulus 0 is not finite at 1 valid frame\(s\) \(first at frame 7: "
                 r"nan\); expected finite predictions wherever X is not padding"),
    # --- plot_cv_results
    ("cv_results a list", lambda: plot_cv_results([CV]), TypeError,
     r"cv_results must be a search's cv_results_ \(a dict of columns\) or the fitted search; got a list"),
    ("cv_results of a fitted estimator", lambda: plot_cv_results(_FittedOther()), TypeError,
     r"cv_results is a fitted _FittedOther, which has no cv_results_; expected cross-validation results"),
    ("cv_results None", lambda: plot_cv_results(None), TypeError, r"cv_results must be .*; got None"),
    ("cv_results without params", lambda: plot_cv_results({"mean_test_score": [0.3]}), ValueError,
     r"cv_results has no 'params' entry \(the list of each candidate's parameters\)"),
    ("cv_results params not dicts", _cv(params=["alpha=1", "alpha=10"]), TypeError,
     r"cv_results\['params'\]\[0\] is a str; expected a dict of parameter values"),
    ("cv_results without candidates", lambda: plot_cv_results({"params": [], "mean_test_score": []}), ValueError,
     r"cv_results\['params'\] is empty"),
    ("cv_results scores of other candidates", _cv(mean_test_score=np.array([0.3, 0.4, 0.5])), ValueError,
     r"cv_results\['mean_test_score'\] has shape \(3,\); expected one value per candidate \(2, like"),
    ("cv_results split of other candidates", _cv(split1_test_score=np.array([0.3])), ValueError,
     r"cv_results\['split1_test_score'\] has shape \(1,\); expected one value per candidate"),
    ("cv_results text scores", _cv(mean_test_score=np.array(["0.3", "0.4"])), TypeError,
     r"cv_results\['mean_test_score'\] must be one number per candidate; got text"),
    ("cv_results all NaN", _cv(mean_test_score=np.array([np.nan, np.nan])), ValueError,
     r"every candidate's mean_test_score is NaN \(did every fit fail\?"),
    ("cv_results param not a str", lambda: plot_cv_results(CV, ["alpha"]), TypeError,
     r"param must be the name of a searched parameter \(str\) or None; got \['alpha'\]"),
    ("cv_results show_splits not a bool", lambda: plot_cv_results(CV, show_splits="no"), TypeError,
     r"show_splits must be True or False; got 'no'"),
]


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_plotting_rejects_bad_input_before_drawing(case):
    _, call, error, match = case
    with pytest.raises(error, match=match):
        call()
    assert not plt.get_fignums(), "a figure was created before the bad input was rejected"


def test_the_catalogue_cases_are_drawn_once_corrected():
    """The good inputs the catalogue starts from are drawn: the errors come from the bad parts."""
    plot_strfs(STRFS, freqs=FREQS, dt_ms=5.0)
    plot_strfs(STRFS, freqs=FREQS[::-1], dt_ms=None)  # bands listed from high to low
    plot_history({"fit": RECORDS})
    plot_score_hist({"vanilla": [0.3, 0.4]}, bins=[0.0, 0.5, 1.0])
    plot_paired_scores({"a": [0.1, 0.2, 0.4], "b": [0.2, 0.3, 0.1]})
    plot_prediction(PRED, X, Y, stimulus=1, freqs=FREQS, time_range=(10, 50))
    plot_cv_results(CV, "alpha")
    assert len(plt.get_fignums()) == 7
