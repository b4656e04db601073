"""Tests of skstrf.plotting: what each figure draws (panels, colour limits, labels, line data)."""

import warnings
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.container import ErrorbarContainer  # noqa: E402

from skstrf.plotting import (  # noqa: E402
    plot_cv_results,
    plot_history,
    plot_paired_scores,
    plot_prediction,
    plot_score_hist,
    plot_strfs,
    plot_variance_partition,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _line(ax, label):
    matches = [line for line in ax.lines if line.get_label() == label]
    assert len(matches) == 1, [line.get_label() for line in ax.lines]
    return matches[0]


# ------------------------------------------------------------------------ plot_strfs
def test_plot_strfs_grid_images_and_shared_limits():
    rng = np.random.default_rng(0)
    kernels = rng.normal(size=(5, 7, 4))
    kernels[2] *= 10  # the largest value of all sets the shared scale
    fig, axes = plot_strfs(kernels, titles=list("abcde"), dt_ms=5.0)
    assert len(axes) == 5
    # 2 x 4 grid with 3 empty cells removed, plus one shared colour bar.
    assert len(fig.axes) == 6
    m = np.abs(kernels).max()
    for ax, k, title in zip(axes, kernels, "abcde"):
        (image,) = ax.images
        np.testing.assert_array_equal(image.get_array(), k)
        assert image.get_clim() == pytest.approx((-m, m))
        assert image.get_cmap().name == "RdBu_r"
        # Pixel centres on the lags: lag 0 at 0 ms, lag 3 at 15 ms.
        assert image.get_extent() == pytest.approx([-2.5, 17.5, -0.5, 6.5])
        assert ax.get_title() == title
    # Lag labels only where no panel sits below; frequency labels on the first column.
    assert [ax.get_xlabel() for ax in axes] == ["", "lag (ms)", "lag (ms)", "lag (ms)", "lag (ms)"]
    assert [ax.get_ylabel() for ax in axes] == ["frequency band", "", "", "", "frequency band"]
    colorbar_ax = fig.axes[-1]
    assert colorbar_ax.get_ylabel() == "weight"


def test_plot_strfs_per_panel_limits_and_colorbars():
    kernels = np.zeros((3, 4, 5))
    kernels[0, 1, 2] = -2.0
    kernels[1, 0, 0] = 0.5
    # kernels[2] stays all zero: its scale falls back to [-1, 1] instead of an empty range.
    fig, axes = plot_strfs(kernels, shared_clim=False, dt_ms=None, ncols=3, clabel="spikes / unit")
    assert [ax.images[0].get_clim() for ax in axes] == [(-2.0, 2.0), (-0.5, 0.5), (-1.0, 1.0)]
    assert len(fig.axes) == 6  # one colour bar per panel
    assert {cb.get_ylabel() for cb in fig.axes[3:]} == {"spikes / unit"}
    assert axes[0].get_xlabel() == "lag (frames)"
    assert axes[0].images[0].get_extent() == pytest.approx([-0.5, 4.5, -0.5, 3.5])


def test_plot_strfs_octave_ticks_from_band_frequencies():
    freqs = 500 * 2 ** (np.arange(34) / 6)  # 1/6-octave bands from 500 Hz
    _, axes = plot_strfs(np.ones((1, 34, 15)), freqs=freqs)
    ax = axes[0]
    # One band in six is a whole octave: 0.5 kHz at band 0, 1 kHz at band 6, ... 16 kHz at 30.
    np.testing.assert_allclose(ax.get_yticks(), [0, 6, 12, 18, 24, 30])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0.5", "1", "2", "4", "8", "16"]
    assert ax.get_ylabel() == "frequency (kHz)"


def test_plot_strfs_narrow_frequency_axis_labels_bands():
    freqs = np.array([1000.0, 1100.0, 1250.0])  # fewer than 3 round frequencies inside
    _, axes = plot_strfs(np.ones((1, 3, 2)), freqs=freqs)
    np.testing.assert_allclose(axes[0].get_yticks(), [0, 1, 2])
    assert [t.get_text() for t in axes[0].get_yticklabels()] == ["1", "1.1", "1.25"]


def test_plot_strfs_bands_from_high_to_low_get_octave_ticks_mirrored():
    freqs = 500 * 2 ** (np.arange(34) / 6)
    _, axes = plot_strfs(np.ones((1, 34, 15)), freqs=freqs[::-1])
    ax = axes[0]
    # band 33 is 0.5 kHz, band 27 is 1 kHz, ... band 3 is 16 kHz: each label sits on its band
    np.testing.assert_allclose(ax.get_yticks(), [33, 27, 21, 15, 9, 3])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0.5", "1", "2", "4", "8", "16"]


@pytest.mark.parametrize("freqs", [[4000.0, 1000.0, 2000.0], [1000.0, -2000.0, 4000.0], [1000.0, np.nan, 4000.0]])
def test_plot_strfs_refuses_frequencies_that_mislabel_the_axis(freqs):
    # Before: scrambled, negative or NaN frequencies were drawn as tick labels of the band axis.
    with pytest.raises(ValueError, match=r"freqs must be (strictly increasing|positive, finite)"):
        plot_strfs(np.ones((1, 3, 2)), freqs=freqs)
    assert not plt.get_fignums()


@pytest.mark.parametrize("dt_ms", [0, -5.0])
def test_plot_strfs_refuses_a_lag_axis_that_collapses_or_runs_backwards(dt_ms):
    # Before: dt_ms=0 gave an empty lag axis, dt_ms<0 lags in negative ms.
    with pytest.raises(ValueError, match=f"dt_ms must be a positive, finite frame duration in ms; got {dt_ms}"):
        plot_strfs(np.ones((1, 3, 2)), dt_ms=dt_ms)


def test_plot_strfs_from_estimator_and_neuron_selection():
    strfs = np.arange(4 * 3 * 2, dtype=float).reshape(4, 3, 2)
    est = SimpleNamespace(strfs_=strfs)
    _, axes = plot_strfs(est, neurons=[3, 1])
    assert [ax.get_title() for ax in axes] == ["neuron 3", "neuron 1"]
    np.testing.assert_array_equal(axes[0].images[0].get_array(), strfs[3])
    np.testing.assert_array_equal(axes[1].images[0].get_array(), strfs[1])
    _, axes = plot_strfs(est)
    assert len(axes) == 4


def test_plot_strfs_neuron_selection_with_on_off_channels():
    strfs = np.arange(3 * 2 * 4 * 5, dtype=float).reshape(3, 2, 4, 5)  # AdapTrans: (N, ON/OFF, F, L)
    _, axes = plot_strfs(SimpleNamespace(strfs_=strfs), neurons=[2])
    assert [ax.get_title() for ax in axes] == ["neuron 2, ON", "neuron 2, OFF"]
    np.testing.assert_array_equal(axes[0].images[0].get_array(), strfs[2, 0])
    np.testing.assert_array_equal(axes[1].images[0].get_array(), strfs[2, 1])
    # One colour scale for the whole STRF: ON and OFF weights are comparable.
    assert axes[0].images[0].get_clim() == axes[1].images[0].get_clim() == (-strfs.max(), strfs.max())


# ------------------------------------------------ what the figure of a fitted estimator shows
def _realistic_fit(history, drop_silent=False, seed=1):
    """Defaults fitted on realistic songs (6 near-silent bands of 32), and the true STRFs.

    Returns the estimator, the true STRFs and true contributions on the bands fitted (the
    true STRF times each band's standard deviation over the training frames), and the
    indices of the near-silent bands among them.
    """
    import warnings

    from skstrf import STRFRegressor
    from skstrf.datasets import make_realistic_dataset

    data = make_realistic_dataset(n_neurons=4, n_lags=15, random_state=seed)
    keep = np.arange(data.X.shape[2])
    if drop_silent:
        keep = np.setdiff1d(keep, data.silent_bands)
    X = data.X[..., keep]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the near-silent bands' warning
        est = STRFRegressor(n_lags=15, history=history).fit(X, data.y)
    sd = np.nanstd(X.reshape(-1, X.shape[2]), axis=0)
    true = data.strfs[:, keep]
    return est, true, true * sd[:, None], np.flatnonzero(np.isin(keep, data.silent_bands))


def _correlation(a, b):
    return np.corrcoef(np.ravel(a), np.ravel(b))[0, 1]


@pytest.mark.parametrize("history", ["mean", "zero"])
def test_plot_strfs_default_figure_shows_the_bands_that_carry_signal(history):
    """Issue 24.6: near-silent bands must not dominate the default figure of a fit.

    Before, the figure drew ``strfs_``: with ``history="zero"`` (zero louder than any sound,
    a step at every onset that only the silent bands see, at millions of their SDs) the
    largest weight of 2 of these 4 cells sat on a silent band. The true STRFs reach into
    the silent bands, where no fit can see them (those bands do not vary), so the figure is
    compared with the truth on the bands that carry signal (the pixels the fit without the
    silent bands has) and, whole, with the true contributions.
    """
    est, true, true_contrib, silent = _realistic_fit(history)
    reference, ref_true, ref_contrib, _ = _realistic_fit(history, drop_silent=True)
    _, axes = plot_strfs(est)
    _, ref_axes = plot_strfs(reference)
    for n, (ax, ref_ax) in enumerate(zip(axes, ref_axes)):
        drawn = np.asarray(ax.images[0].get_array())
        band = np.unravel_index(np.abs(drawn).argmax(), drawn.shape)[0]
        assert band not in silent, (n, band)
        assert np.abs(drawn[silent]).max() < 1e-3 * np.abs(drawn).max()
        ref_drawn = np.asarray(ref_ax.images[0].get_array())
        # within 0.05 of the fit without the silent bands
        signal = np.setdiff1d(np.arange(drawn.shape[0]), silent)
        assert _correlation(drawn[signal], true[n, signal]) >= _correlation(ref_drawn, ref_true[n]) - 0.05, n
        assert _correlation(drawn, true_contrib[n]) >= _correlation(ref_drawn, ref_contrib[n]) - 0.05, n
    assert axes[0].figure.axes[-1].get_ylabel() == "contribution (weight × band SD)"


def test_plot_strfs_views_of_a_fitted_estimator():
    est, true, _, silent = _realistic_fit("zero")
    _, axes = plot_strfs(est, neurons=[1])
    np.testing.assert_array_equal(axes[0].images[0].get_array(), est.contributions_[1])
    _, axes = plot_strfs(est, neurons=[1], view="contributions", clabel="spikes per frame")
    np.testing.assert_array_equal(axes[0].images[0].get_array(), est.contributions_[1])
    assert axes[0].figure.axes[-1].get_ylabel() == "spikes per frame"
    fig, axes = plot_strfs(est, view="weights")
    assert fig.axes[-1].get_ylabel() == "weight"
    for n, ax in enumerate(axes):
        np.testing.assert_array_equal(ax.images[0].get_array(), est.strfs_[n])
    # what the weights view shows with zero history: the silent bands take a large part of
    # the colour scale (largest silent / largest signal weight 0.36 and 0.73 for cells 1 and
    # 3; with the band-scale floor at a tenth of the median band's it was 1.20 and 1.16, the
    # largest weight of the figure; with the default history it is 0.001)
    signal = np.setdiff1d(np.arange(est.strfs_.shape[1]), silent)
    for n in (1, 3):
        drawn = np.asarray(axes[n].images[0].get_array())
        assert np.abs(drawn[silent]).max() > 0.25 * np.abs(drawn[signal]).max()
    # arrays are drawn as given, labelled as weights unless told
    fig, axes = plot_strfs(est.contributions_[:1])
    np.testing.assert_array_equal(axes[0].images[0].get_array(), est.contributions_[0])
    assert fig.axes[-1].get_ylabel() == "weight"


def test_plot_strfs_view_without_contributions():
    strfs = np.arange(2 * 3 * 2, dtype=float).reshape(2, 3, 2)
    # A plain holder of strfs_ (no fit method) is drawn as its weights, quietly.
    _, axes = plot_strfs(SimpleNamespace(strfs_=strfs))
    np.testing.assert_array_equal(axes[1].images[0].get_array(), strfs[1])

    class Old:  # an estimator fitted before contributions_ existed
        strfs_ = strfs

        def fit(self, X, y):
            return self

    with pytest.warns(UserWarning, match="has no contributions_ .* drawing its weights"):
        _, axes = plot_strfs(Old())
    np.testing.assert_array_equal(axes[0].images[0].get_array(), strfs[0])
    with pytest.raises(ValueError, match="view='contributions' needs the estimator's contributions_"):
        plot_strfs(Old(), view="contributions")
    plot_strfs(Old(), view="weights")  # no warning: the weights were asked for
    with pytest.raises(ValueError, match="view='contributions' needs a fitted estimator .* got|is an array"):
        plot_strfs(strfs, view="contributions")
    with pytest.raises(ValueError, match="view must be 'contributions', 'weights' or None; got 'weight'"):
        plot_strfs(strfs, view="weight")
    with pytest.raises(TypeError, match="clabel must be a str or None"):
        plot_strfs(strfs, clabel=3)


@pytest.mark.parametrize(
    "strfs, kwargs, message",
    [
        ([], {}, "at least one STRF"),
        ([np.ones((3, 2)), np.ones((3, 3))], {}, "one common shape"),
        (np.ones((2, 3, 2)), {"titles": ["a"]}, "got 1 titles for 2 STRFs"),
        (np.ones((2, 3, 2)), {"freqs": [1.0, 2.0]}, r"one frequency per band \(3\); got 2"),
        (np.ones((2, 3, 2)), {"neurons": [2]}, "neuron index 2 is out of range for 2 STRFs"),
        (np.ones((3, 2)), {"neurons": [0]}, r"strfs has shape \(3, 2\), one 2-D kernel"),
        ([np.ones((3, 2)), np.ones((3, 3))], {"neurons": [0]}, r"neurons= needs strfs of shape \(n_neurons, n_freqs"),
        (np.ones((2, 3, 2)), {"neurons": [0.7]}, r"neurons must be integer indices; got \[0.7\]"),
        (np.ones((2, 3, 2)), {"neurons": [True, False]}, "np.flatnonzero"),
        (np.ones((2, 3, 2)), {"ncols": 0}, "ncols must be a positive integer"),
        (np.ones((2, 3, 2)), {"significance": np.ones((2, 3, 2))}, "significance must be a boolean array"),
        (np.ones((2, 3, 2)), {"significance": np.ones((1, 3, 2), bool)}, r"shape of the STRFs \(2, 3, 2\)"),
        (np.ones((2, 3, 2)), {"significance_style": "dots"}, "significance_style must be"),
    ],
)
def test_plot_strfs_errors(strfs, kwargs, message):
    with pytest.raises(ValueError, match=message):
        plot_strfs(strfs, **kwargs)


def test_plot_strfs_rejects_text_and_unfitted_estimators():
    from sklearn.exceptions import NotFittedError

    from skstrf import STRFRegressor

    with pytest.raises(TypeError, match="got a str: 'abc'"):
        plot_strfs("abc")
    with pytest.raises(NotFittedError, match="STRFRegressor instance is not fitted yet"):
        plot_strfs(STRFRegressor())
    with pytest.raises(NotFittedError, match="not fitted yet"):
        plot_history(STRFRegressor())
    with pytest.raises(NotFittedError, match="not fitted yet"):
        plot_history({"vanilla": STRFRegressor()})
    from sklearn.model_selection import GridSearchCV

    with pytest.raises(NotFittedError, match="GridSearchCV instance is not fitted yet"):
        plot_cv_results(GridSearchCV(STRFRegressor(), {"alpha": [1.0]}))


def test_plot_strfs_significance_contours_and_fade():
    strfs = np.zeros((3, 4, 5))
    mask = np.zeros((3, 4, 5), bool)
    mask[1, 1:3, 2:4] = True  # a 2 x 2 block: band 1-2, lag 2-3
    jack = SimpleNamespace(significant=mask)
    _, axes = plot_strfs(strfs, neurons=[1, 0], significance=jack, dt_ms=None)
    # The outline runs along the pixel borders of the block: bands 0.5..2.5, lags 1.5..3.5.
    paths = [p for c in axes[0].collections for p in c.get_paths()]
    vertices = np.concatenate([p.vertices for p in paths])
    np.testing.assert_allclose(vertices.min(axis=0), [1.5, 0.5], atol=0.07)
    np.testing.assert_allclose(vertices.max(axis=0), [3.5, 2.5], atol=0.07)
    assert not axes[1].collections  # neuron 0: nothing significant, no outline
    _, axes = plot_strfs(strfs, significance=mask, significance_style="fade")
    veil = axes[1].images[1].get_array()  # RGBA over the STRF image
    np.testing.assert_array_equal(veil[..., 3] == 0, mask[1])


# ---------------------------------------------------------------------- plot_history
def _records(train, valid, score):
    return [{"epoch": i + 1, "train_loss": t, "valid_loss": v, "valid_cc_norm": s}
            for i, (t, v, s) in enumerate(zip(train, valid, score))]


def test_plot_history_lines_best_epoch_and_closed_form():
    gradient = _records([1.0, 0.6, 0.5], [1.1, 0.8, 0.9], [0.2, 0.6, 0.55])
    closed = _records([0.4], [0.7], [0.65])
    fig, (loss_ax, score_ax) = plot_history({"grad": gradient, "ridge": closed})
    train = _line(loss_ax, "grad (train)")
    np.testing.assert_array_equal(train.get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(train.get_ydata(), [1.0, 0.6, 0.5])
    assert train.get_linestyle() == "--"
    valid = _line(loss_ax, "grad (valid)")
    np.testing.assert_array_equal(valid.get_ydata(), [1.1, 0.8, 0.9])
    assert valid.get_linestyle() == "-"
    np.testing.assert_array_equal(_line(score_ax, "grad").get_ydata(), [0.2, 0.6, 0.55])
    # The restored epoch is the best validation cc_norm: epoch 2.
    star = _line(score_ax, "_best epoch of grad")
    assert (list(star.get_xdata()), list(star.get_ydata())) == ([2], [0.6])
    # The one-epoch fit: a marker at epoch 1 and a horizontal reference line at its level.
    point = _line(score_ax, "ridge")
    assert (list(point.get_xdata()), list(point.get_ydata())) == ([1], [0.65])
    levels = [line.get_ydata()[0] for line in score_ax.lines if line.get_linestyle() == ":"]
    assert levels == [0.65]
    hollow = _line(loss_ax, "ridge (train)")
    assert hollow.get_markerfacecolor() == "none"
    assert loss_ax.get_ylabel() == "MSE (units of PSTH variance)"
    assert score_ax.get_ylabel() == "validation cc_norm"
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[:2] == ["grad", "ridge"]
    assert "training loss" in legend and "best epoch (restored)" in legend
    assert "closed form (one solve;\n\u25cb training, \u25cf validation)" in legend


def test_plot_history_single_history_without_validation():
    records = [{"epoch": 1, "train_loss": 2.0}, {"epoch": 2, "train_loss": 1.0}]
    _, (loss_ax, score_ax) = plot_history(records)
    np.testing.assert_array_equal(_line(loss_ax, "fit (train)").get_ydata(), [2.0, 1.0])
    assert not score_ax.lines
    # a cross-validated closed-form fit records no validation: the legend names no marker for it
    fig, (loss_ax, score_ax) = plot_history({"ridge": [{"epoch": 1, "train_loss": 0.4}]})
    assert not score_ax.lines
    assert "closed form (one solve;\n\u25cb training)" in [t.get_text() for t in fig.legends[0].get_texts()]


def test_plot_history_of_fitted_estimators():
    from skstrf import STRFRegressor
    from skstrf.datasets import make_strf_dataset

    data = make_strf_dataset(n_stimuli=6, n_times=150, n_freqs=8, n_neurons=3, n_repeats=4,
                             n_lags=4, random_state=0)
    est = STRFRegressor(kernel="separable", solver="gradient", n_lags=4, max_epochs=4,
                        patience=None, random_state=0).fit(data.X, data.y)
    _, (loss_ax, score_ax) = plot_history({"sep": est})
    np.testing.assert_allclose(_line(score_ax, "sep").get_ydata(), est.history_[:, "valid_cc_norm"])
    np.testing.assert_allclose(_line(loss_ax, "sep (valid)").get_ydata(), est.history_[:, "valid_loss"])
    np.testing.assert_array_equal(_line(loss_ax, "sep (train)").get_xdata(), [1, 2, 3, 4])


def test_plot_history_marks_the_final_fit_on_every_stimulus_and_the_stored_model():
    # 4 validated epochs, then a final fit on every stimulus for 2 of them (refit=True rows,
    # no validation entries): the stored model is the final fit's last epoch, not epoch 3
    # (the best validation cc_norm) nor epoch 2's weights
    records = _records([1.0, 0.6, 0.5, 0.45], [1.1, 0.8, 0.7, 0.75], [0.2, 0.6, 0.62, 0.61])
    records += [{"epoch": 5, "train_loss": 0.9, "refit": True}, {"epoch": 6, "train_loss": 0.55, "refit": True}]
    fig, (loss_ax, score_ax) = plot_history({"ln": records})
    # the validated run is drawn (it was not at all: the final fit's rows lack its keys)
    np.testing.assert_array_equal(_line(score_ax, "ln").get_xdata(), [1, 2, 3, 4])
    np.testing.assert_array_equal(_line(loss_ax, "ln (valid)").get_ydata(), [1.1, 0.8, 0.7, 0.75])
    np.testing.assert_array_equal(_line(loss_ax, "ln (train)").get_xdata(), [1, 2, 3, 4])
    final = _line(loss_ax, "ln (final fit)")
    assert (list(final.get_xdata()), list(final.get_ydata()), final.get_linestyle()) == ([5, 6], [0.9, 0.55], "-.")
    # the final fit repeated 2 epochs: the hollow star is on validated epoch 2, no "restored" star
    star = _line(score_ax, "_validated epoch of ln")
    assert (list(star.get_xdata()), list(star.get_ydata()), star.get_markerfacecolor()) == ([2], [0.6], "white")
    assert "_best epoch of ln" not in [line.get_label() for line in score_ax.lines]
    stored = _line(loss_ax, "_stored model of ln")
    assert (list(stored.get_xdata()), list(stored.get_ydata()), stored.get_marker()) == ([6], [0.55], "D")
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "best epoch (restored)" not in legend
    assert "best validated epoch\n(its number of epochs\nrepeated by the final fit)" in legend
    assert "final fit on every stimulus\n(training loss)" in legend
    assert "stored model\n(end of the final fit)" in legend


def test_plot_history_of_fitted_ln_estimators_marks_what_they_stored():
    from skstrf import STRFRegressor
    from softplus_cells import standardised_cells

    X, y = standardised_cells()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tuned = STRFRegressor(n_lags=4, nonlinearity="softplus", history="zero", alpha=0.1, batch_size=None,
                              lr=3e-2, max_epochs=6, patience=None, random_state=0).fit(X, y)
        # one epoch at a learning rate far too large: the start is kept (and refitted, 0 epochs)
        kept = STRFRegressor(n_lags=4, nonlinearity="softplus", history="zero", max_epochs=1, lr=1.0,
                             random_state=0).fit(X, y)
    assert 0 < tuned.n_refit_epochs_ < 6 and kept.net_.kept_start_
    fig, (loss_ax, score_ax) = plot_history({"tuned": tuned, "kept": kept})
    k = tuned.n_refit_epochs_
    star = _line(score_ax, "_validated epoch of tuned")
    assert (list(star.get_xdata()), list(star.get_ydata())) == ([k], [tuned.history_[k - 1, "valid_cc_norm"]])
    stored = _line(loss_ax, "_stored model of tuned")
    assert list(stored.get_xdata()) == [len(tuned.history_)]
    # the kept start: no star, a diamond at epoch 0 on its validation score
    labels = [line.get_label() for line in score_ax.lines]
    assert "_best epoch of kept" not in labels and "_validated epoch of kept" not in labels
    start = _line(score_ax, "_stored model of kept")
    assert (list(start.get_xdata()), list(start.get_ydata())) == ([0], [kept.net_.start_valid_cc_norm_])
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "stored model\n(end of the final fit; kept start, epoch 0)" in legend


# ------------------------------------------------------------------- plot_score_hist
def test_plot_score_hist_counts_means_and_nan_in_legend():
    scores = {"a": [0.01, 0.02, 0.51, np.nan], "b": np.array([0.31, 0.31, 0.31, 0.96])}
    _, ax = plot_score_hist(scores)
    # Default bins: width 0.025 from 0 to 1 -> 40 bins; polygons: fill then outline per model.
    fill_a, step_a, fill_b, step_b = ax.patches
    heights_a = step_a.get_xy()[1:80:2, 1]
    heights_b = step_b.get_xy()[1:80:2, 1]
    expected_a = np.zeros(40)
    expected_a[[0, 20]] = [2, 1]
    expected_b = np.zeros(40)
    expected_b[[12, 38]] = [3, 1]
    np.testing.assert_array_equal(heights_a, expected_a)
    np.testing.assert_array_equal(heights_b, expected_b)
    means = [line.get_xdata()[0] for line in ax.lines]
    assert means == pytest.approx([0.18, 0.4725])
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == ["a (mean 0.180, 1 NaN)", "b (mean 0.472)"]
    assert ax.get_xlabel() == "test cc_norm" and ax.get_ylabel() == "number of neurons"


def test_plot_score_hist_range_widens_for_negative_scores():
    _, ax = plot_score_hist({"m": [-0.31, 1.12]}, title=None)
    outline = ax.patches[1].get_xy()
    assert outline[:, 0].min() == pytest.approx(-0.325)
    assert outline[:, 0].max() == pytest.approx(1.125)
    assert ax.get_title() == ""


def test_plot_score_hist_needs_scores():
    with pytest.raises(ValueError, match="at least one model"):
        plot_score_hist({})
    with pytest.raises(TypeError, match="mapping of model name"):
        plot_score_hist("abc")


def test_plot_score_hist_of_a_score_far_above_one_uses_100_bins():
    # Before: bins of width 0.025 up to 1e9 asked for 4e10 bins (a MemoryError).
    _, ax = plot_score_hist({"unreliable": [0.2, 0.4, 1e9]})
    outline = ax.patches[1].get_xy()
    assert outline[:, 0].max() == pytest.approx(1e9)
    assert len(outline) < 410


def test_plot_strfs_all_nan_panel_is_blank_without_warnings():
    import warnings

    kernels = np.ones((2, 3, 2))
    kernels[1] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, axes = plot_strfs(kernels, shared_clim=False)
    assert axes[1].images[0].get_clim() == (-1.0, 1.0)


def test_plot_score_hist_of_a_plain_array():
    _, ax = plot_score_hist(np.array([0.1, 0.2, np.nan]))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["scores (mean 0.150, 1 NaN)"]


# ---------------------------------------------------------------- plot_paired_scores
def test_plot_paired_scores_grid_points_and_titles():
    rng = np.random.default_rng(0)
    a = rng.uniform(0.2, 0.8, size=20)
    b = a - 0.1
    c = a + rng.normal(0, 0.02, size=20)
    b[3] = np.nan
    fig, axes = plot_paired_scores({"vanilla": a, "separable": b, "parametric": c})
    assert len(axes) == 3 and len(fig.axes) == 3  # the empty upper-right cell is removed
    first = axes[0]  # vanilla (x) vs separable (y)
    np.testing.assert_allclose(first.collections[0].get_offsets(), np.c_[a, b][np.isfinite(b)])
    assert first.get_title().startswith("separable higher: 0/19")
    # the p-value shown is the Holm-corrected one over the 3 pairs, and says so
    from skstrf.significance import pairwise_comparisons

    holm = pairwise_comparisons({"vanilla": a, "separable": b, "parametric": c}, correction="holm")
    assert first.get_title().endswith(f"Holm p (3 pairs) = {holm[0].pvalue_corrected:.2g}")
    assert first.get_ylabel() == "separable (test cc_norm)"
    identity = first.lines[0].get_xydata()
    np.testing.assert_allclose(identity[:, 0], identity[:, 1])
    assert axes[2].get_xlabel() == "separable (test cc_norm)"
    assert axes[2].get_ylabel() == ""
    _, axes = plot_paired_scores({"a": a, "b": c})
    assert len(axes) == 1 and ", p = " in axes[0].get_title()
    with pytest.raises(TypeError, match="mapping"):
        plot_paired_scores(a)


# ------------------------------------------------------------------- plot_prediction
@pytest.fixture(scope="module")
def fitted():
    from skstrf import STRFRegressor
    from skstrf.datasets import make_strf_dataset

    data = make_strf_dataset(n_stimuli=5, n_times=120, n_freqs=8, n_neurons=3, n_repeats=4,
                             n_lags=4, random_state=1)
    est = STRFRegressor(n_lags=4, random_state=0).fit(data.X, data.y)
    return data, est


def test_plot_prediction_spike_counts_get_a_raster(fitted):
    data, est = fitted
    fig, axes = plot_prediction(est, data.X, data.y, neuron=2, stimulus=3, dt_ms=5.0)
    assert len(axes) == 3  # spectrogram, raster, responses
    spec, raster, resp = axes
    np.testing.assert_array_equal(spec.images[0].get_array(), data.X[3].T)
    times = np.arange(120) * 5.0
    events = raster.collections
    assert len(events) == 4
    for j, collection in enumerate(events):
        np.testing.assert_array_equal(np.sort(collection.get_positions()), times[data.y[3, :, 2, j] > 0])
    psth = _line(resp, "PSTH (mean of 4 repeats)")
    np.testing.assert_array_equal(psth.get_xdata(), times)
    np.testing.assert_allclose(psth.get_ydata(), data.y[3, :, 2].mean(axis=-1))
    expected = est.predict(data.X)[3, :, 2]
    r = np.corrcoef(expected, data.y[3, :, 2].mean(axis=-1))[0, 1]
    pred = _line(resp, f"prediction (cc = {r:.2f})")
    np.testing.assert_allclose(pred.get_ydata(), expected)
    assert resp.get_xlabel() == "time (ms)"
    assert resp.get_xlim() == pytest.approx((-2.5, 597.5))


def test_plot_prediction_lines_from_an_array_with_padding_and_missing_repeats(fitted):
    data, est = fitted
    rng = np.random.default_rng(0)
    X = data.X.copy()
    y = data.y + rng.uniform(0.1, 0.2, size=data.y.shape)  # not counts: lines by default
    X[1, 100:] = np.nan
    y[1, 100:] = np.nan
    y[1, :100, 0, 2] = np.nan  # repeat 2 of neuron 0 missing on stimulus 1
    pred = est.predict(X)
    fig, axes = plot_prediction(pred, X, y, neuron=0, stimulus=1, dt_ms=2.0, spectrogram=False,
                                ylabel="rate (Hz)", time_range=(10, 50))
    (resp,) = axes
    grey = [line for line in resp.lines if line.get_color() == "0.65"]
    assert len(grey) == 3  # the missing repeat is not drawn
    np.testing.assert_allclose(np.array([line.get_ydata() for line in grey]).T, y[1, :100, 0, [0, 1, 3]].T)
    assert grey[0].get_label() == "single repeats (3)"
    psth = _line(resp, "PSTH (mean of 3 repeats)")
    np.testing.assert_array_equal(psth.get_xdata(), np.arange(100) * 2.0)
    np.testing.assert_allclose(psth.get_ydata(), np.nanmean(y[1, :100, 0], axis=-1))
    assert resp.get_ylabel() == "rate (Hz)"
    assert resp.get_xlim() == (10, 50)


def test_plot_prediction_psth_only_and_continuous_recording(fitted):
    data, est = fitted
    X2, y2 = data.X[0], data.y[0].mean(axis=-1)  # one recording, PSTH layout
    _, axes = plot_prediction(est, X2, y2, neuron=1, repeats="raster")
    assert len(axes) == 2  # no repeats to draw
    resp = axes[-1]
    np.testing.assert_allclose(_line(resp, "response").get_ydata(), y2[:, 1])
    pred = [line for line in resp.lines if line.get_label().startswith("prediction")]
    np.testing.assert_allclose(pred[0].get_ydata(), est.predict(X2)[:, 1])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"neuron": 3}, r"neuron must be an integer in \[0, 3\); got 3"),
        ({"stimulus": -1}, r"stimulus must be an integer in \[0, 5\); got -1"),
        ({"repeats": "dots"}, "repeats must be 'auto', 'lines', 'raster' or 'none'; got 'dots'"),
        ({"freqs": [1.0]}, r"one frequency per band \(8\); got 1"),
    ],
)
def test_plot_prediction_errors(fitted, kwargs, message):
    data, est = fitted
    with pytest.raises(ValueError, match=message):
        plot_prediction(est, data.X, data.y, **kwargs)


def test_plot_prediction_rejects_a_misshapen_prediction(fitted):
    data, _ = fitted
    with pytest.raises(ValueError, match=r"prediction has shape \(5, 120\).*\(5, 120, 3\)"):
        plot_prediction(np.zeros((5, 120)), data.X, data.y)


def _ragged_recording(seed=3):
    """3 stimuli (the last one 60 of 80 frames long), 2 neurons, 4 repeats (one missing), and a prediction."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(3, 80, 5))
    y = rng.poisson(2.0, size=(3, 80, 2, 4)).astype(float)
    X[2, 60:] = np.nan
    y[2, 60:] = np.nan
    y[2, :60, 1, 3] = np.nan  # repeat 3 of neuron 1 missing on stimulus 2
    psth = np.nansum(y, axis=-1) / np.maximum(np.isfinite(y).sum(axis=-1), 1)
    pred = psth + rng.normal(size=(3, 80, 2))
    pred[2, 60:] = np.nan  # as predict() leaves the padding
    return X, y, pred


@pytest.mark.parametrize("scale", [1.0, 1e-170, 1e170])
def test_plot_prediction_cc_is_the_library_metric(monkeypatch, scale):
    import skstrf.metrics

    X, y, pred = _ragged_recording()
    # the metric itself on the stimulus drawn: pooled over its valid frames, PSTH of the present repeats
    expected = skstrf.metrics.cc(y[2:3, :60, 1:2], pred[2:3, :60, 1:2])
    assert np.isfinite(expected) and abs(expected) > 0.05
    drawn = []

    def spy(*args, **kwargs):
        drawn.append(skstrf.metrics.__dict__["_real_cc"](*args, **kwargs))
        return drawn[-1]

    monkeypatch.setitem(skstrf.metrics.__dict__, "_real_cc", skstrf.metrics.cc)
    monkeypatch.setattr(skstrf.metrics, "cc", spy)
    # Correlation does not depend on the prediction's scale; the former own Pearson overflowed at
    # 1e170 (cc = 0.00) and underflowed at 1e-170 (cc = nan).
    _, axes = plot_prediction(pred * scale, X, y, neuron=1, stimulus=2, spectrogram=False)
    assert drawn == [pytest.approx(expected, rel=1e-9)]
    _line(axes[-1], f"prediction (cc = {expected:.2f})")


def test_plot_prediction_of_a_constant_prediction_says_cc_is_undefined():
    import warnings

    X, y, pred = _ragged_recording()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, axes = plot_prediction(np.zeros_like(pred), X, y, stimulus=0, spectrogram=False)
    _line(axes[-1], "prediction (cc undefined: a constant prediction or response)")


# ------------------------------------------------------------------- plot_cv_results
def _cv_results():
    params = [{"alpha": a, "kernel": k} for k in ("vanilla", "separable") for a in (0.01, 0.1, 1.0)]
    splits = np.array([[0.50, 0.60, 0.70, 0.40, 0.45, 0.50],
                       [0.54, 0.66, 0.72, 0.44, 0.45, 0.58]])
    mean, std = splits.mean(0), splits.std(0)
    results = {"params": params, "mean_test_score": mean, "std_test_score": std,
               "rank_test_score": np.argsort(np.argsort(-mean)) + 1,
               "split0_test_score": splits[0], "split1_test_score": splits[1]}
    return results, mean, std


def test_plot_cv_results_numeric_param_lines_and_error_bars():
    results, mean, std = _cv_results()
    fig, ax = plot_cv_results(results, "alpha")
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert [b.get_label() for b in bars] == ["kernel=vanilla", "kernel=separable"]
    assert ax.get_xscale() == "log"  # 0.01 .. 1 spans two decades
    shifts = []
    for bar, index in zip(bars, ([0, 1, 2], [3, 4, 5])):
        line = bar.lines[0]
        np.testing.assert_allclose(line.get_ydata(), mean[index])
        ratio = line.get_xdata() / np.array([0.01, 0.1, 1.0])
        np.testing.assert_allclose(ratio, ratio[0])
        shifts.append(ratio[0])
        segments = bar.lines[2][0].get_segments()
        np.testing.assert_allclose([s[0, 1] for s in segments], mean[index] - std[index])
        np.testing.assert_allclose([s[1, 1] for s in segments], mean[index] + std[index])
    # Groups are shifted sideways by one constant factor each (left, right), never reordered.
    assert 1 / 1.3 < shifts[0] < 1 < shifts[1] < 1.3
    # The best candidate (alpha=1, vanilla) is ringed.
    ring = [line for line in ax.lines if line.get_markerfacecolor() == "none"]
    assert len(ring) == 1 and ring[0].get_ydata()[0] == pytest.approx(mean[2])
    assert ax.get_xlabel() == "alpha"
    assert ax.get_ylabel() == "test score (mean \u00b1 std over 2 folds)"


def test_plot_cv_results_one_bar_per_candidate():
    results, mean, std = _cv_results()
    _, ax = plot_cv_results(results, show_splits=False)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == "alpha=0.01, kernel=vanilla"
    assert labels[-1] == "alpha=1, kernel=separable"
    bold = [t.get_text() for t in ax.get_yticklabels() if t.get_fontweight() == "bold"]
    assert bold == ["alpha=1, kernel=vanilla"]
    (bar,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    np.testing.assert_allclose(bar.lines[0].get_xdata(), mean)
    np.testing.assert_allclose(bar.lines[0].get_ydata(), [5, 4, 3, 2, 1, 0])  # first on top
    segments = bar.lines[2][0].get_segments()
    np.testing.assert_allclose([s[1, 0] - s[0, 0] for s in segments], 2 * std)


def test_plot_cv_results_category_param_and_pipeline_names():
    results, mean, _ = _cv_results()
    results["params"] = [{f"strfregressor__{k}": v for k, v in p.items()} for p in results["params"]]
    _, ax = plot_cv_results(results, "kernel")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["vanilla", "separable"]
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert [b.get_label() for b in bars] == ["alpha=0.01", "alpha=0.1", "alpha=1"]
    np.testing.assert_allclose(bars[0].lines[0].get_ydata(), mean[[0, 3]])
    x = bars[0].lines[0].get_xdata()
    assert -0.5 < x[0] < 0 and 0.5 < x[1] < 1  # shifted left within each category
    assert bars[0].lines[0].get_linestyle() == "None"  # no line between categories
    assert ax.get_xlabel() == "kernel"


def test_plot_cv_results_candidates_without_the_param_are_levels():
    results, mean, std = _cv_results()
    results["params"][5] = {"kernel": "parametric"}  # a second grid without alpha
    _, ax = plot_cv_results(results, "alpha", show_splits=False)
    assert ax.get_xscale() == "log"
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    np.testing.assert_allclose(bars[1].lines[0].get_ydata(), mean[[3, 4]])
    level = _line(ax, "kernel=parametric (no alpha)")
    assert level.get_linestyle() == ":"
    np.testing.assert_allclose(level.get_ydata(), [mean[5], mean[5]])
    (band,) = ax.patches
    np.testing.assert_allclose([band.get_y(), band.get_y() + band.get_height()],
                               [mean[5] - std[5], mean[5] + std[5]])


def test_plot_cv_results_metric_choice_and_errors():
    results, mean, std = _cv_results()
    multi = {k.replace("_score", "_cc"): v for k, v in results.items()}
    multi.update({k.replace("_score", "_r2"): v for k, v in results.items() if k != "params"})
    with pytest.raises(ValueError, match=r"several metrics \['cc', 'r2'\]"):
        plot_cv_results(multi)
    _, ax = plot_cv_results(multi, metric="cc")
    assert ax.get_xlabel() == "cc (mean \u00b1 std over 2 folds)"
    # Per-neuron columns are never the default; a search's refit metric is.
    neurons = dict(results)
    neurons.update({k.replace("_score", "_cc_norm"): v for k, v in results.items() if k != "params"})
    neurons.update({k.replace("_score", "_cc_norm_neuron_0"): v[::-1] for k, v in results.items()
                    if k != "params"})
    del neurons["mean_test_score"]
    _, ax = plot_cv_results(neurons)
    assert ax.get_xlabel() == "cc_norm (mean \u00b1 std over 2 folds)"
    search = SimpleNamespace(cv_results_=multi, refit="r2")
    _, ax = plot_cv_results(search)
    assert ax.get_xlabel() == "r2 (mean \u00b1 std over 2 folds)"
    with pytest.raises(ValueError, match="metric 'loss' is not in cv_results"):
        plot_cv_results(results, metric="loss")
    with pytest.raises(ValueError, match=r"param 'lr' was not searched; searched parameters: \['alpha', 'kernel'\]"):
        plot_cv_results(results, "lr")
    with pytest.raises(ValueError, match="no 'mean_test_<metric>'"):
        plot_cv_results({"params": [{"alpha": 1.0}]})


def test_plot_cv_results_of_a_minimal_table_without_split_scores():
    # Before: a KeyError for std_test_score, and a reshape error without split<i>_test_score.
    results, mean, std = _cv_results()
    _, ax = plot_cv_results({"params": results["params"], "mean_test_score": mean, "std_test_score": std}, "alpha")
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    np.testing.assert_allclose(bars[0].lines[0].get_ydata(), mean[:3])
    assert not [line for line in ax.lines if line.get_marker() == "."]  # no fold to draw
    assert ax.get_ylabel() == "test score (mean \u00b1 std)"
    _, ax = plot_cv_results({"params": results["params"], "mean_test_score": mean})
    (bar,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    np.testing.assert_allclose(bar.lines[0].get_xdata(), mean)
    assert not bar.has_xerr
    assert ax.get_xlabel() == "test score (mean)"


def test_plot_cv_results_of_a_data_frame():
    pd = pytest.importorskip("pandas")
    results, mean, _ = _cv_results()
    _, ax = plot_cv_results(pd.DataFrame(results), "alpha")
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    np.testing.assert_allclose(bars[1].lines[0].get_ydata(), mean[3:])


def test_plot_cv_results_of_a_fitted_search():
    from sklearn.model_selection import GridSearchCV, KFold

    from skstrf import STRFRegressor
    from skstrf.datasets import make_strf_dataset

    data = make_strf_dataset(n_stimuli=6, n_times=150, n_freqs=8, n_neurons=3, n_repeats=4,
                             n_lags=4, random_state=0)
    search = GridSearchCV(STRFRegressor(n_lags=4), {"alpha": [1e-3, 1e2]}, cv=KFold(2)).fit(data.X, data.y)
    _, ax = plot_cv_results(search, "alpha")
    (bar,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    np.testing.assert_allclose(bar.lines[0].get_ydata(), search.cv_results_["mean_test_score"])
    assert bar.get_label() == "mean \u00b1 std"


# --------------------------------------------------------------- plot_variance_partition
def _partition(**changes):
    result = {"space_names": ["spectrogram", "onsets"],
              "unique": np.array([[0.30, 0.10, 0.22, np.nan], [0.05, 0.12, -0.02, np.nan]]),
              "shared": np.array([0.10, -0.03, 0.08, np.nan]), "total": np.array([0.45, 0.19, 0.28, np.nan]),
              "normalization": "signal_power"}
    return {**result, **changes}


def _bars(ax, label):
    (container,) = [c for c in ax.containers if c.get_label() == label]
    return container


def test_plot_variance_partition_stacks_the_parts_of_each_neuron():
    fig, ax = plot_variance_partition(_partition())
    # neurons by decreasing total, the NaN one left out; the mean bar last
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "2", "1", "mean"]
    spectrogram = _bars(ax, "spectrogram, unique (mean 0.207)")
    onsets = _bars(ax, "onsets, unique (mean 0.050)")
    shared = _bars(ax, "shared (mean 0.050)")
    np.testing.assert_allclose([b.get_height() for b in spectrogram], [0.30, 0.22, 0.10])
    # positive parts stack up from 0, negative ones down from 0
    np.testing.assert_allclose([b.get_y() for b in onsets], [0.30, 0.0, 0.10])
    np.testing.assert_allclose([b.get_height() for b in onsets], [0.05, -0.02, 0.12])
    np.testing.assert_allclose([b.get_y() for b in shared], [0.35, 0.22, 0.0])
    np.testing.assert_allclose([b.get_height() for b in shared], [0.10, 0.08, -0.03])
    total = _line(ax, "total (mean 0.307)")
    np.testing.assert_allclose(total.get_ydata(), [0.45, 0.28, 0.19])
    # the mean bar: each part's mean over the three neurons drawn
    mean_heights = sorted(round(p.get_height(), 6) for p in ax.patches if p.get_x() + p.get_width() / 2 > 3)
    np.testing.assert_allclose(mean_heights, sorted([0.62 / 3, 0.15 / 3, 0.15 / 3]), atol=1e-6)
    assert ax.get_ylabel() == "share of the explainable (signal) variance"
    assert ax.get_xlabel() == "neuron (sorted by total; 1 with a NaN total left out)"
    assert ax.get_title() == "Explained variance: unique and shared parts"


def test_plot_variance_partition_into_given_axes_unsorted_without_summary():
    fig, given = plt.subplots()
    result = _partition(normalization="psth_variance")
    out_fig, ax = plot_variance_partition(result, given, sort=False, summary=False, title=None)
    assert ax is given and out_fig is fig
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2"]
    assert ax.get_ylabel() == "share of the PSTH variance" and ax.get_title() == ""


def test_plot_variance_partition_of_partition_variance():
    import warnings

    from skstrf import STRFRegressor
    from skstrf.inspection import partition_variance

    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 100, 4))
    y = (X[..., 0] + 0.5 * X[..., 3])[..., None, None] + rng.standard_normal((6, 100, 2, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        part = partition_variance(STRFRegressor(n_lags=2, feature_spaces={"low": [0, 1], "high": [2, 3]}), X, y,
                                  cv=3)
    _, ax = plot_variance_partition(part)
    labels = [c.get_label() for c in ax.containers]
    assert labels[:2] == [f"low, unique (mean {np.mean(part.unique[0]):.3f})",
                          f"high, unique (mean {np.mean(part.unique[1]):.3f})"]


@pytest.mark.parametrize("call, error, message", [
    (lambda: plot_variance_partition(np.zeros((2, 3))), TypeError,
     r"result must be the output of skstrf.inspection.partition_variance .*; got an array"),
    (lambda: plot_variance_partition({"unique": np.zeros((2, 3))}), TypeError,
     r"\(it has no shared, space_names, total\)"),
    (lambda: plot_variance_partition(_partition(space_names="ab")), TypeError, r"result.space_names must be a list"),
    (lambda: plot_variance_partition(_partition(space_names=["a"])), ValueError,
     r"result.unique must have shape \(n_spaces, n_neurons\) = \(1, n_neurons\).*got shape \(2, 4\)"),
    (lambda: plot_variance_partition(_partition(shared=np.zeros(3))), ValueError,
     r"result.shared must have shape \(n_neurons,\) = \(4,\)"),
    (lambda: plot_variance_partition(_partition(total=np.array([0.1, np.inf, 0.2, 0.3]))), ValueError,
     r"result.total has infinite values"),
    (lambda: plot_variance_partition(_partition(unique=[["a"] * 4] * 2)), TypeError,
     r"result.unique must be .*got text"),
    (lambda: plot_variance_partition(_partition(total=np.full(4, np.nan))), ValueError,
     r"every neuron's total is NaN"),
    (lambda: plot_variance_partition(_partition(), "ax"), TypeError,
     r"ax must be a matplotlib Axes or None; got a str"),
    (lambda: plot_variance_partition(_partition(), sort="yes"), TypeError, r"sort must be True or False"),
    (lambda: plot_variance_partition(_partition(), summary=1), TypeError, r"summary must be True or False"),
    (lambda: plot_variance_partition(_partition(), title=3), TypeError, r"title must be a str or None"),
])
def test_plot_variance_partition_refuses_bad_arguments(call, error, message):
    with pytest.raises(error, match=message):
        call()
