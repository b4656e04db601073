"""Tests of the frame-wise preprocessing transformers and their use in pipelines."""


import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

import skstrf._penalty
from skstrf import STRFRegressor
from skstrf.preprocessing import (
    BandPooling,
    Compression,
    FeatureSpaces,
    FrameTransformer,
    TimeRebinner,
    rebin_time,
)


@pytest.fixture
def padded():
    """Three stimuli of 7, 5 and 4 valid frames, 4 bands, NaN-padded at the end."""
    rng = np.random.default_rng(0)
    X = rng.random((3, 7, 4)) * 10
    X[1, 5:] = np.nan
    X[2, 4:] = np.nan
    return X


def test_frame_transformer_standardises_with_valid_frames_only(padded):
    Xt = FrameTransformer(StandardScaler()).fit_transform(padded)
    valid = np.concatenate([padded[0, :7], padded[1, :5], padded[2, :4]])  # 16 frames
    expected = (valid - valid.mean(axis=0)) / valid.std(axis=0)
    assert_allclose(np.concatenate([Xt[0, :7], Xt[1, :5], Xt[2, :4]]), expected)
    assert np.isnan(Xt[1, 5:]).all() and np.isnan(Xt[2, 4:]).all()


def test_frame_transformer_fits_on_the_stimuli_it_is_given(padded):
    # Fitted on stimulus 0 only, it applies stimulus 0's statistics to every stimulus.
    ft = FrameTransformer(StandardScaler()).fit(padded[:1])
    mean, std = padded[0].mean(axis=0), padded[0].std(axis=0)
    assert_allclose(ft.transform(padded)[2, :4], (padded[2, :4] - mean) / std)
    assert_allclose(ft.transformer_.mean_, mean)
    assert ft.transformer is not ft.transformer_  # the parameter is left untouched


def test_frame_transformer_pca_over_bands(padded):
    ft = FrameTransformer(PCA(n_components=2)).fit(padded)
    Xt = ft.transform(padded)
    valid = np.concatenate([padded[0, :7], padded[1, :5], padded[2, :4]])
    centred = valid - valid.mean(axis=0)
    # Components are the top right-singular vectors of the centred valid frames.
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    projected = np.concatenate([Xt[0, :7], Xt[1, :5], Xt[2, :4]])
    assert_allclose(np.abs(projected), np.abs(centred @ vt[:2].T), atol=1e-10)
    assert Xt.shape == (3, 7, 2) and np.isnan(Xt[2, 4:]).all()
    assert_array_equal(ft.get_feature_names_out(), ["pca0", "pca1"])


def test_frame_transformer_continuous_recording_and_names(padded):
    X2 = padded[0]  # (n_times, n_freqs): one continuous recording
    ft = FrameTransformer(StandardScaler()).fit(X2)
    assert ft.transform(X2).shape == (7, 4)
    assert_array_equal(ft.get_feature_names_out(["a", "b", "c", "d"]), ["a", "b", "c", "d"])
    assert_array_equal(ft.get_feature_names_out(), ["x0", "x1", "x2", "x3"])
    with pytest.raises(ValueError, match="X has 3 features, but FrameTransformer is expecting 4"):
        ft.transform(X2[:, :3])


def test_frame_transformer_rejects_misplaced_nan(padded):
    X = padded.copy()
    X[0, 2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN in some but not all frequency bands"):
        FrameTransformer(StandardScaler()).fit(X)


@pytest.mark.parametrize("method, expected", [
    ("log", lambda x: np.log(x + 0.5)),
    ("power", lambda x: x ** 0.25),
])
def test_compression_values(padded, method, expected):
    Xt = Compression(method=method, offset=0.5, exponent=0.25).fit_transform(padded)
    assert_allclose(Xt[0], expected(padded[0]))
    assert_allclose(Xt[1, :5], expected(padded[1, :5]))
    assert np.isnan(Xt[1, 5:]).all()
    assert_array_equal(Compression().fit(padded).get_feature_names_out(), ["x0", "x1", "x2", "x3"])


def test_compression_rejects_negative_values(padded):
    X = padded.copy()
    X[0, 0, 0] = -1.0
    with pytest.raises(ValueError, match="Negative values in data passed to Compression"):
        Compression().fit(X)


def test_band_pooling_values_and_names():
    X = np.arange(2 * 3 * 5, dtype=float).reshape(2, 3, 5)
    X[1, 2:] = np.nan
    bp = BandPooling(pool_size=2).fit(X)
    Xt = bp.transform(X)
    # Groups (0, 1), (2, 3) and the remainder (4,).
    assert_allclose(Xt[0, 0], [0.5, 2.5, 4.0])
    assert_allclose(Xt[1, 1], [(20 + 21) / 2, (22 + 23) / 2, 24.0])
    assert np.isnan(Xt[1, 2]).all()
    assert bp.n_features_out_ == 3
    assert_array_equal(bp.get_feature_names_out(), ["x0..x1", "x2..x3", "x4"])
    assert_allclose(BandPooling(pool_size=3, reduce="sum").fit_transform(X)[0, 0], [3.0, 7.0])
    assert_allclose(BandPooling(pool_size=3, reduce="max").fit_transform(X)[0, 2], [12.0, 14.0])


def test_time_rebinner_drops_incomplete_bins(padded):
    Xt = TimeRebinner(factor=2).fit_transform(padded)  # 7, 5, 4 valid frames -> 3, 2, 2 bins
    assert Xt.shape == (3, 3, 4)
    assert_allclose(Xt[0], padded[0, :6].reshape(3, 2, 4).mean(axis=1))
    assert_allclose(Xt[1, :2], padded[1, :4].reshape(2, 2, 4).mean(axis=1))
    assert np.isnan(Xt[1, 2]).all() and np.isnan(Xt[2, 2]).all()
    with pytest.raises(ValueError, match="fewer than factor=5"):
        TimeRebinner(factor=5).fit(padded).transform(padded)


def test_rebin_time_rebins_x_and_y_together():
    rng = np.random.default_rng(1)
    X = rng.random((2, 6, 3))
    y = rng.poisson(2.0, size=(2, 6, 2, 4)).astype(float)
    X[1, 5:] = np.nan
    y[1, 5:] = np.nan
    y[0, :, 1, 3] = np.nan  # a missing repeat
    Xr, yr = rebin_time(X, y, factor=2)
    assert Xr.shape == (2, 3, 3) and yr.shape == (2, 3, 2, 4)
    assert_allclose(yr[0, 1, 0], y[0, 2:4, 0].sum(axis=0))  # spike counts add up
    assert_allclose(Xr[1, 1], X[1, 2:4].mean(axis=0))
    assert np.isnan(Xr[1, 2]).all() and np.isnan(yr[1, 2]).all()  # 5 frames -> 2 bins
    assert np.isnan(yr[0, :, 1, 3]).all() and np.isfinite(yr[0, :, 1, :3]).all()
    # Every layout of the data contract keeps its shape: one neuron, a continuous recording.
    Xc, yc = rebin_time(X[0], y[0, :, 0, 0], factor=3)
    assert Xc.shape == (2, 3)
    assert_allclose(yc, y[0, :, 0, 0].reshape(2, 3).sum(axis=1))
    with pytest.raises(ValueError, match="factor must be a positive integer"):
        rebin_time(X, y, factor=0)


def test_time_rebinner_in_a_pipeline_matches_rebinning_first(data):
    # A spectrogram at a finer time step than the responses: X has twice y's frames.
    X_fine = np.repeat(data.X, 2, axis=1)
    pipe = make_pipeline(TimeRebinner(factor=2), STRFRegressor(n_lags=6)).fit(X_fine, data.y)
    direct = STRFRegressor(n_lags=6).fit(data.X, data.y)
    assert_allclose(pipe[-1].strfs_, direct.strfs_, rtol=1e-6, atol=1e-9)
    assert_allclose(pipe.predict(X_fine), direct.predict(data.X), rtol=1e-6, atol=1e-9)


def test_pipeline_grid_search_over_both_steps(data):
    pipe = make_pipeline(FrameTransformer(StandardScaler()), STRFRegressor(n_lags=6))
    grid = {"frametransformer__transformer__with_mean": [True, False],
            "strfregressor__alpha": [1e-3, 10.0]}
    search = GridSearchCV(pipe, grid, cv=KFold(2)).fit(data.X, data.y)
    assert len(search.cv_results_["params"]) == 4
    best = search.best_estimator_
    assert best.named_steps["strfregressor"].strfs_.shape == (4, 12, 6)
    assert best[-1] is best.named_steps["strfregressor"]
    # Each candidate's score is the pipeline's own score on the held-out stimuli.
    params = search.cv_results_["params"][0]
    train, test = np.arange(4, 8), np.arange(4)  # KFold(2): the first half is fold 0's test
    pipe.set_params(**params).fit(data.X[train], data.y[train])
    manual = pipe.score(data.X[test], data.y[test])
    assert_allclose(search.cv_results_["split0_test_score"][0], manual)


def test_pca_strfs_map_back_to_bands(data):
    # The documented map back: the STRF over bands is components_.T @ strf. With it (and
    # the intercept shifted by the PCA mean) the pipeline's predictions are reproduced from
    # the raw bands wherever the full history lies inside the stimulus.
    pipe = make_pipeline(FrameTransformer(PCA(n_components=5)), STRFRegressor(n_lags=6))
    pipe.fit(data.X, data.y)
    pca, strfs = pipe[0].transformer_, pipe[-1].strfs_
    strfs_bands = np.einsum("cf,ncl->nfl", pca.components_, strfs)
    intercept = pipe[-1].intercept_ - np.einsum("ncl,c->n", strfs, pca.components_ @ pca.mean_)
    T, L = data.X.shape[1], 6
    lagged = np.stack([data.X[:, L - 1 - k:T - k] for k in range(L)], axis=-1)  # (S, T-L+1, F, L)
    expected = np.einsum("stfl,nfl->stn", lagged, strfs_bands) + intercept
    assert_allclose(pipe.predict(data.X)[:, L - 1:], expected, rtol=1e-5, atol=1e-5)


def test_scaling_and_centring_bands_change_only_the_floor_and_zero_history(data, monkeypatch):
    """As the user guide says: a StandardScaler gives every band the same standard
    deviation, so no band is below the median band's and none is floored: the fit is the
    one without the band-scale floor (the STRF in other units), with or without the mean,
    since the history before each stimulus is each band's training mean; with
    history="zero", centring moves zero (the history) to the mean spectrum, which changes
    the predictions of each stimulus's first frames."""
    n_lags = 6
    est = STRFRegressor(n_lags=n_lags, alpha=1.0)
    floored = est.fit(data.X, data.y).predict(data.X)
    with monkeypatch.context() as patch:
        patch.setattr(skstrf._penalty, "X_SCALE_FLOOR", 0.0)
        direct = est.fit(data.X, data.y).predict(data.X)
        direct_strfs = est.strfs_
    # the default floor lifts the bands below the median band's: here it moves the predictions
    assert np.abs(floored - direct).max() > 1e-3 * np.abs(direct).max()
    for with_mean in (False, True):
        scaled = make_pipeline(FrameTransformer(StandardScaler(with_mean=with_mean)), est).fit(data.X, data.y)
        assert_allclose(scaled.predict(data.X), direct, rtol=1e-5, atol=1e-6)
        sd = scaled[0].transformer_.scale_
        assert_allclose(scaled[-1].strfs_, direct_strfs * sd[None, :, None], rtol=1e-4, atol=1e-9)
    # one factor for every band (one feature space) changes nothing but the units
    same = make_pipeline(FrameTransformer(FunctionTransformer(lambda x: 1e3 * x)), est).fit(data.X, data.y)
    assert_allclose(same.predict(data.X), floored, rtol=1e-5, atol=1e-6)
    zero = STRFRegressor(n_lags=n_lags, alpha=1.0, history="zero")
    plain = zero.fit(data.X, data.y).predict(data.X)
    centred = make_pipeline(FrameTransformer(StandardScaler()), zero).fit(data.X, data.y).predict(data.X)
    first = np.abs(centred[:, : n_lags - 1] - plain[:, : n_lags - 1]).max()
    assert first > 1e-2 * np.abs(plain).max()


# ------------------------------------------------------------- NaN made inside a pipeline (issue 27)
def _ending_at_or_below_zero(X):
    """``X`` (positive) whose stimulus 1 ends with 2 valid frames of zeros and negative values."""
    X = np.array(X, copy=True)
    X[1, 3] = 0.0
    X[1, 4] = -1.0
    return X


def test_frame_transformer_refuses_nan_it_makes_on_valid_frames(padded):
    """A logarithm of frames <= 0 at the end of a stimulus made whole NaN frames there, which
    the estimator took for end padding: those frames silently got no prediction."""
    from sklearn.preprocessing import FunctionTransformer

    log = FrameTransformer(FunctionTransformer(np.log))
    bad = _ending_at_or_below_zero(padded)
    with np.errstate(divide="ignore", invalid="ignore"):
        with pytest.raises(ValueError, match=r"^FrameTransformer\(transformer=FunctionTransformer\(func=<ufunc "
                           r"'log'>\)\) produced an infinite value at stimulus 1, frame 3, a valid frame: "
                           r"the wrapped FunctionTransformer was given that frame"):
            log.fit_transform(bad)
        bad[1, 3] = 1.0
        with pytest.raises(ValueError, match=r"produced NaN at stimulus 1, frame 4, a valid frame.*"
                           r"values from -1 to -1.*take NaN frames at the end of a stimulus for padding"):
            log.fit_transform(bad)
        with pytest.raises(ValueError, match=r"produced NaN at frame 4, a valid frame"):
            log.fit_transform(bad[1, :5])  # one recording: no stimulus to name
    # valid input: the padding, and only the padding, is NaN
    out = log.fit_transform(padded)
    assert_array_equal(np.isnan(out).all(axis=-1), np.isnan(padded).all(axis=-1))


def test_pipeline_never_drops_frames_a_transformer_made_nan(padded, monkeypatch):
    from sklearn.preprocessing import FunctionTransformer

    rng = np.random.default_rng(1)
    y = rng.random((3, 7, 2, 3))
    y[np.isnan(padded).all(axis=-1)] = np.nan
    pipe = make_pipeline(FrameTransformer(FunctionTransformer(np.log)), STRFRegressor(n_lags=2, cv=None))
    pipe.fit(padded, y)
    monkeypatch.setattr(STRFRegressor, "predict", lambda *a, **k: pytest.fail("predicted"))
    monkeypatch.setattr(STRFRegressor, "fit", lambda *a, **k: pytest.fail("fitted"))
    bad = _ending_at_or_below_zero(padded)
    bad[1, 3] = 1.0
    with np.errstate(invalid="ignore"):
        with pytest.raises(ValueError, match="FrameTransformer.*produced NaN at stimulus 1, frame 4"):
            pipe.predict(bad)
        with pytest.raises(ValueError, match="FrameTransformer.*produced NaN at stimulus 1, frame 4"):
            pipe.fit(bad, y)


@pytest.mark.parametrize("name, make, function", [
    ("Compression", lambda: Compression(), "_compress"),
    ("BandPooling", lambda: BandPooling(pool_size=2), "_pool_bands"),
    ("TimeRebinner", lambda: TimeRebinner(factor=2), "_rebin_frames"),
    ("FeatureSpaces", lambda: FeatureSpaces(spaces=("spectrogram", "offsets", "envelope")), "_stack_spaces"),
])
def test_every_transformer_checks_that_its_nan_frames_are_the_padding(padded, monkeypatch, name, make,
                                                                     function):
    """The check is shared: whatever a transformer's array function returns, a NaN on a valid
    frame (or a value on a padding frame) is an error naming the transformer and the frame."""
    from skstrf import preprocessing

    original = getattr(preprocessing, function)
    transformer = make().fit(padded)
    expected = transformer.transform(padded)

    def nan_on_last_valid_frame(*args, **kwargs):
        out = original(*args, **kwargs).copy()
        out[2, 1 if name == "TimeRebinner" else 3, 0] = np.nan  # the last valid frame of stimulus 2
        return out

    monkeypatch.setattr(preprocessing, function, nan_on_last_valid_frame)
    frame = 1 if name == "TimeRebinner" else 3
    with pytest.raises(ValueError, match=rf"^{name}\(.*\) produced NaN at stimulus 2, frame {frame}, a valid frame"):
        transformer.transform(padded)

    def values_on_padding(*args, **kwargs):
        out = original(*args, **kwargs).copy()
        out[1, -1] = 0.0
        return out

    monkeypatch.setattr(preprocessing, function, values_on_padding)
    with pytest.raises(ValueError, match=rf"^{name}\(.*\) returned values at stimulus 1, frame {expected.shape[1] - 1}, "
                       "a padding frame"):
        transformer.transform(padded)


def test_compression_names_the_log_of_values_below_minus_offset(padded):
    """Parameters are validated in fit: an offset set afterwards reaches transform, and its
    NaN is named instead of being taken for padding."""
    comp = Compression(offset=0.5).fit(padded).set_params(offset=-5.0)
    s, t = np.argwhere(padded < 5.0)[0][:2]
    with np.errstate(invalid="ignore"), pytest.raises(
            ValueError, match=rf"Compression\(offset=-5.0\) produced NaN at stimulus {s}, frame {t}, a "
            r"valid frame: log of values <= -offset = 5"):
        comp.transform(padded)


# ------------------------------------------------------------- feature spaces (issue 25.5)
def _spaces_by_hand(x, lag):
    """The spaces of one stimulus's valid frames ``x`` (n_valid, n_freqs), in numpy: frame t
    is compared with frame t - lag, or with the stimulus's first frame where t < lag."""
    previous = x[np.maximum(np.arange(len(x)) - lag, 0)]
    d = x - previous
    return {"spectrogram": x, "onsets": np.maximum(d, 0), "offsets": np.maximum(-d, 0),
            "derivative": d, "envelope": x.mean(axis=1, keepdims=True)}


@pytest.mark.parametrize("lag", [1, 2, 6])
def test_feature_spaces_equal_their_closed_forms_per_stimulus(padded, lag):
    spaces = ("spectrogram", "onsets", "offsets", "derivative", "envelope")
    fs = FeatureSpaces(spaces=spaces, derivative_lag=lag).fit(padded)
    Xt = fs.transform(padded)
    assert fs.space_names_ == list(spaces)
    assert fs.feature_spaces_ == [4, 4, 4, 4, 1]
    assert sum(fs.feature_spaces_) == fs.n_features_out_ == Xt.shape[-1] == 17
    edges = np.cumsum([0] + fs.feature_spaces_)
    for s, length in enumerate([7, 5, 4]):
        expected = _spaces_by_hand(padded[s, :length], lag)
        for name, a, b in zip(spaces, edges[:-1], edges[1:]):
            assert_allclose(Xt[s, :length, a:b], expected[name], atol=1e-12, err_msg=name)
        assert np.isnan(Xt[s, length:]).all()  # padding stays padding
    # the first frame of every stimulus has no frame before it in the stimulus: 0
    assert_array_equal(Xt[:, 0, 4:16], 0.0)


def test_onsets_equal_the_rectified_frame_difference():
    X = np.array([[[1.0, 4.0], [3.0, 2.0], [2.0, 5.0], [np.nan, np.nan]],
                  [[9.0, 0.0], [8.0, 1.0], [8.5, 1.0], [7.0, 3.0]]])
    Xt = FeatureSpaces(spaces=("onsets", "envelope")).fit_transform(X)
    # stimulus 1 starts at 0: stimulus 0's last frame is not its previous frame
    assert_allclose(Xt[:, :, :2], [[[0, 0], [2, 0], [0, 3], [np.nan, np.nan]],
                                   [[0, 0], [0, 1], [0.5, 0], [0, 2]]])
    assert_allclose(Xt[:, :, 2], [[2.5, 2.5, 3.5, np.nan], [4.5, 4.5, 4.75, 5.0]])


def test_feature_spaces_are_causal_and_need_no_zero(padded):
    spaces = ("spectrogram", "onsets", "offsets", "derivative", "envelope")
    fs = FeatureSpaces(spaces=spaces, derivative_lag=2).fit(padded)
    Xt = fs.transform(padded)
    # changing frames 3 and later changes no output frame before 3 (never the future)
    later = padded.copy()
    later[:, 3:] += np.random.default_rng(2).random(later[:, 3:].shape)
    changed = fs.transform(later)
    assert_array_equal(changed[:, :3], Xt[:, :3])
    assert not np.allclose(changed[0, 3:], Xt[0, 3:])
    # an offset in X moves the spectrogram and the envelope, and no difference space
    shifted = fs.transform(padded + 10.0)
    assert_allclose(shifted[..., 4:16], Xt[..., 4:16], atol=1e-12)
    assert_allclose(shifted[..., :4], Xt[..., :4] + 10.0)
    assert_allclose(shifted[..., 16], Xt[..., 16] + 10.0)


def test_feature_spaces_continuous_recording_and_names(padded):
    X2 = padded[0]  # (n_times, n_freqs): one recording, one first frame
    fs = FeatureSpaces(spaces=("envelope", "onsets")).fit(X2)
    assert_allclose(fs.transform(X2), fs.transform(padded[:1])[0])
    assert fs.transform(X2).shape == (7, 5)
    assert fs.feature_spaces_ == [1, 4]
    assert_array_equal(fs.get_feature_names_out(),
                       ["envelope", "onsets_0", "onsets_1", "onsets_2", "onsets_3"])
    assert_array_equal(fs.get_feature_names_out(["a", "b", "c", "d"])[1:],
                       ["onsets_a", "onsets_b", "onsets_c", "onsets_d"])
    with pytest.raises(ValueError, match="X has 3 features, but FeatureSpaces is expecting 4"):
        fs.transform(X2[:, :3])


def test_feature_spaces_take_band_names_from_a_dataframe(padded):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(padded[0], columns=["1k", "2k", "4k", "8k"])
    fs = FeatureSpaces().fit(df)
    assert_array_equal(fs.feature_names_in_, ["1k", "2k", "4k", "8k"])
    names = fs.get_feature_names_out()
    assert names[0] == "spectrogram_1k" and names[5] == "onsets_2k" and names[-1] == "envelope"
    assert len(names) == fs.n_features_out_ == 9
    assert_allclose(fs.transform(df), FeatureSpaces().fit_transform(padded[0]))
    with pytest.raises(ValueError, match="input_features is not equal to feature_names_in_"):
        fs.get_feature_names_out(["a", "b", "c", "d"])
    with pytest.raises(ValueError, match="feature names"):
        fs.transform(df[["2k", "1k", "4k", "8k"]])
    assert not hasattr(FeatureSpaces().fit(padded), "feature_names_in_")


@pytest.mark.parametrize("params, message", [
    ({"spaces": "onsets"}, r"spaces must be a list or tuple of space names.*got the string "
                           r"'onsets' \(for that space alone write \('onsets',\)\)"),
    ({"spaces": None}, "spaces must be a list or tuple of space names"),
    ({"spaces": ()}, "spaces is empty: name at least one feature space"),
    ({"spaces": ("spectrogram", "onset")}, r"spaces\[1\] is 'onset', which is not a feature space; "
                                           r"expected names among \['spectrogram', 'onsets', 'offsets'"),
    ({"spaces": ["envelope", 3]}, r"spaces\[1\] is 3, which is not a feature space"),
    ({"spaces": ("onsets", "envelope", "onsets")}, "spaces has 'onsets' more than once"),
    ({"derivative_lag": 0},
     r"'derivative_lag' parameter of FeatureSpaces must be an int in the range \[1, inf\)"),
    ({"derivative_lag": 1.5}, "'derivative_lag' parameter of FeatureSpaces must be an int"),
    ({"derivative_lag": True}, "derivative_lag must be a number of frames, an int >= 1; got True"),
])
def test_feature_spaces_refuse_bad_parameters_before_reading_x(params, message):
    # X is not even an array: the parameters are checked first
    with pytest.raises(ValueError, match=message):
        FeatureSpaces(**params).fit("not stimuli")


def test_feature_spaces_learn_nothing_but_the_band_count(padded):
    fs = FeatureSpaces(spaces=["spectrogram", "offsets"], derivative_lag=2)
    assert clone(fs).get_params() == {"spaces": ["spectrogram", "offsets"], "derivative_lag": 2}
    fs.fit(padded[:1])
    learned = {k for k in vars(fs) if k.endswith("_") and not k.startswith("_")}
    assert learned == {"n_features_in_", "space_names_", "feature_spaces_", "n_features_out_"}
    # fitted on one stimulus, it transforms others exactly as if fitted on them
    assert_array_equal(fs.transform(padded), clone(fs).fit(padded * 3.0).transform(padded))
    # parameters changed after fit: the spaces must be refitted, the lag is checked again
    with pytest.raises(ValueError, match=r"spaces is \['offsets'\] but FeatureSpaces was fitted with "
                       r"\['spectrogram', 'offsets'\]: fit it again"):
        fs.set_params(spaces=["offsets"]).transform(padded)
    with pytest.raises(ValueError, match="derivative_lag"):
        fs.set_params(spaces=["spectrogram", "offsets"], derivative_lag=-1).transform(padded)


@pytest.mark.parametrize("banded", [False, True])
def test_feature_spaces_in_a_pipeline_with_the_estimator(data, banded):
    X = data.X.copy()
    y = data.y.copy()
    X[2, 150:] = np.nan  # a shorter stimulus
    y[2, 150:] = np.nan
    fs = FeatureSpaces(spaces=("spectrogram", "onsets", "envelope"))
    sizes = clone(fs).fit(X).feature_spaces_
    assert sizes == [12, 12, 1]
    # banded: each space its own penalty; else one penalty shared by all bands
    est = STRFRegressor(n_lags=4, feature_spaces=sizes if banded else None)
    pipe = make_pipeline(fs, est).fit(X, y)
    assert pipe[-1].strfs_.shape == (4, 25, 4)
    if banded:
        assert np.shape(pipe[-1].alpha_) == (4, 3)  # one penalty per neuron and space
    pred = pipe.predict(X)
    valid = ~np.isnan(X).all(axis=-1)
    assert np.isfinite(pred[valid]).all() and np.isnan(pred[~valid]).all()
    assert np.isfinite(pipe.score(X, y))
    # the difference spaces need no zero: with the estimator's default history (each band's
    # training mean) an offset in X changes no prediction, first frames included
    shifted = clone(pipe).fit(X + 5.0, y).predict(X + 5.0)
    assert_allclose(shifted, pred, rtol=1e-5, atol=1e-6)


def test_grid_search_over_space_definitions(data):
    # each definition with its own sizes, as the user guide shows: pairs in a list of grids
    pipe = make_pipeline(FeatureSpaces(), STRFRegressor(n_lags=3))
    grid = [{"featurespaces__spaces": [("spectrogram",)], "strfregressor__feature_spaces": [None]},
            {"featurespaces__spaces": [("spectrogram", "onsets")],
             "strfregressor__feature_spaces": [[12, 12]]}]
    search = GridSearchCV(pipe, grid, cv=KFold(2)).fit(data.X, data.y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert len(search.cv_results_["params"]) == 2
    best = search.best_estimator_
    assert best[-1].strfs_.shape[1] == best[0].n_features_out_ == sum(best[0].feature_spaces_)
