"""Tests of gradient maps and the LN inspection helpers against strfs_ and finite differences."""

import numpy as np
import pytest
import torch
from scipy.stats import t as stats_t
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skstrf import STRFRegressor
from skstrf.datasets import make_strf_dataset
from skstrf.inspection import (
    gradient_maps,
    jackknife_strfs,
    linear_drive,
    output_nonlinearity,
    significance_mask,
)

F, L, N = 10, 5, 4


@pytest.fixture(scope="module")
def data():
    return make_strf_dataset(n_stimuli=6, n_times=150, n_freqs=F, n_neurons=N, n_repeats=5,
                             n_lags=L, ragged=True, random_state=0)


@pytest.mark.parametrize("options", [dict(), dict(kernel="separable"),
                                     dict(kernel="parametric", n_gaussians=2, max_epochs=2)])
def test_gradient_maps_of_linear_models_equal_their_strfs(data, options):
    est = STRFRegressor(n_lags=L, random_state=0, **options).fit(data.X, data.y)
    tol = 1e-6 * np.abs(est.strfs_).max()
    np.testing.assert_allclose(gradient_maps(est), est.strfs_, rtol=1e-5, atol=tol)
    # A linear model's gradient is the same wherever it is taken.
    np.testing.assert_allclose(gradient_maps(est, data.X), est.strfs_, rtol=1e-5, atol=tol)
    np.testing.assert_allclose(gradient_maps(est, baseline=np.arange(F) / F), est.strfs_, rtol=1e-5, atol=tol)
    # A longer window: lags beyond n_lags do not matter.
    longer = gradient_maps(est, n_frames=L + 3)
    np.testing.assert_allclose(longer[..., :L], est.strfs_, rtol=1e-5, atol=tol)
    np.testing.assert_array_equal(longer[..., L:], 0.0)


def test_gradient_maps_of_an_ln_model_are_the_scaled_strf(data):
    est = STRFRegressor(n_lags=L, nonlinearity="exp", loss="poisson", max_epochs=2,
                        random_state=0).fit(data.X, data.y)
    nl = est.net_.module_.nonlinearity
    slope = nl.log_slope.exp().detach().cpu().numpy()
    r0 = nl.reference.cpu().numpy()

    def derivative(z):  # of r0 exp(slope (z - r0) / r0 + offset)
        return slope / r0 * output_nonlinearity(est, z)

    # Silence: the linear stage sits at its intercept.
    expected = derivative(est.intercept_)[:, None, None] * est.strfs_
    np.testing.assert_allclose(gradient_maps(est), expected, rtol=1e-4, atol=1e-9)
    # Data-dependent: the mean of f'(z_t) over the frames with a full window of history.
    z = linear_drive(est, data.X)
    full = np.concatenate([z[s, L - 1:length] for s, length in enumerate(data.lengths)])
    expected = derivative(full).mean(0)[:, None, None] * est.strfs_
    np.testing.assert_allclose(gradient_maps(est, data.X, max_windows=None), expected, rtol=1e-4, atol=1e-9)


def _finite_difference_maps(est, level, eps=1e-2):
    """Central differences of predict at the last frame of a constant window, every (f, k).

    The window is long enough for the prefilter's taps, as in gradient_maps.
    """
    context = L + est.net_.module_.prefilter.n_taps - 1
    window = np.tile(level, (context, 1))
    bumps = np.zeros((F * L, context, F))
    f, k = np.divmod(np.arange(F * L), L)
    bumps[np.arange(F * L), context - 1 - k, f] = eps
    up = est.predict(window + bumps)[:, -1]      # (F * L, N)
    down = est.predict(window - bumps)[:, -1]
    return ((up - down) / (2 * eps)).T.reshape(N, F, L)


@pytest.mark.parametrize("options", [dict(prefilter="adaptrans", nonlinearity="softplus"),
                                     dict(prefilter="ic_adaptation")])
def test_gradient_maps_match_finite_differences_through_a_prefilter(data, options):
    est = STRFRegressor(n_lags=L, max_epochs=2, random_state=0, **options).fit(data.X, data.y)
    level = np.nanmean(data.X, axis=(0, 1))
    maps = gradient_maps(est, baseline=level)
    np.testing.assert_allclose(maps, _finite_difference_maps(est, level), rtol=2e-2,
                               atol=2e-3 * np.abs(maps).max())
    assert np.abs(maps).max() > 0


def test_rectified_prefilter_has_no_gradient_at_silence(data):
    est = STRFRegressor(n_lags=L, prefilter="adaptrans", max_epochs=1, random_state=0).fit(data.X, data.y)
    np.testing.assert_array_equal(gradient_maps(est), 0.0)


def test_gradient_maps_through_a_pipeline_and_a_search(data):
    pipe = make_pipeline(FunctionTransformer(lambda X: 2.0 * X), STRFRegressor(n_lags=L, random_state=0))
    pipe.fit(data.X, data.y)
    est = pipe[-1]
    # With respect to the final estimator's input, the transformed stimulus.
    np.testing.assert_allclose(gradient_maps(pipe), est.strfs_, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(gradient_maps(pipe, data.X), est.strfs_, rtol=1e-5, atol=1e-8)
    # two float32 paths (the prediction and the linear stage alone): rounding of ~0.4-sized values
    np.testing.assert_allclose(linear_drive(pipe, data.X), pipe.predict(data.X), rtol=1e-5, atol=1e-6)

    class Search:  # what GridSearchCV exposes after refit
        best_estimator_ = est

    np.testing.assert_allclose(gradient_maps(Search()), est.strfs_, rtol=1e-5, atol=1e-8)


def test_errors():
    with pytest.raises(NotFittedError):
        gradient_maps(STRFRegressor())
    d = make_strf_dataset(n_stimuli=3, n_times=40, n_freqs=F, n_neurons=N, n_repeats=3, n_lags=L,
                          random_state=1)
    est = STRFRegressor(n_lags=L).fit(d.X, d.y)
    with pytest.raises(ValueError, match=r"baseline must be .* shape \(n_freqs,\) = \(10,\)"):
        gradient_maps(est, baseline=np.ones(3))
    with pytest.raises(ValueError, match="n_frames must be a positive integer"):
        gradient_maps(est, n_frames=0)
    with pytest.raises(ValueError, match="no stimulus has 50 valid frames"):
        gradient_maps(est, d.X, n_frames=50)
    with pytest.raises(ValueError, match=r"neurons last, shape \(\.\.\., 4\)"):
        output_nonlinearity(est, np.zeros((5, 3)))
    # identity output: z itself
    z = np.random.default_rng(0).normal(size=(7, N))
    np.testing.assert_array_equal(output_nonlinearity(est, z), z)
    assert torch.is_grad_enabled()


# ----------------------------------------------------------------------------- jackknife
def _linear_gaussian(n_neurons, strfs=None, n_stimuli=16, n_times=200, n_freqs=6, n_lags=4,
                     noise=1.0, seed=0):
    """Stimuli of make_strf_dataset and responses ``STRF * X + Gaussian noise`` (4 repeats).

    The drive is computed here with an explicit loop over lags (zero history at each
    stimulus start), independently of skstrf's lagged design.
    """
    base = make_strf_dataset(n_stimuli=n_stimuli, n_times=n_times, n_freqs=n_freqs, n_neurons=n_neurons,
                             n_repeats=1, n_lags=n_lags, random_state=seed)
    strfs = base.strfs if strfs is None else strfs
    drive = np.zeros((n_stimuli, n_times, n_neurons))
    for k in range(n_lags):
        drive[:, k:] += np.einsum("stf,nf->stn", base.X[:, : n_times - k], strfs[:, :, k])
    rng = np.random.default_rng(seed + 1)
    y = drive[..., None] + noise * rng.normal(size=drive.shape + (4,))
    return base.X, y, strfs


def _ridge(alpha=1e-4, n_lags=4, **params):
    return STRFRegressor(n_lags=n_lags, alpha=alpha, validation_fraction=None, **params)


def test_jackknife_closed_form_folds_equal_refits_without_each_stimulus():
    X, y, _ = _linear_gaussian(3, n_stimuli=5, n_times=120)
    # the folds keep the fit's units and history level; with a fixed level (zero) a refit has
    # the same, and with a near-zero penalty the standardisation does not matter
    est = _ridge(alpha=1e-6, history="zero").fit(X, y)
    jack = jackknife_strfs(est, X, y)
    assert jack.method == "closed_form" and jack.estimates.shape == (5,) + est.strfs_.shape
    for s in range(5):
        keep = np.arange(5) != s
        # Near-zero penalty: the standardisation of the refit does not matter (least squares).
        refit = _ridge(alpha=1e-6, history="zero").fit(X[keep], y[keep]).strfs_
        np.testing.assert_allclose(jack.estimates[s], refit, rtol=0, atol=1e-4 * np.abs(refit).max())
    # Jackknife formulas by hand.
    mean = jack.estimates.mean(axis=0)
    se = np.sqrt(4 / 5 * ((jack.estimates - mean) ** 2).sum(axis=0))
    np.testing.assert_allclose(jack.strfs, mean)
    np.testing.assert_allclose(jack.se, se)
    np.testing.assert_allclose(jack.z, mean / se)


def test_jackknife_refits_other_models_through_clones():
    X, y, _ = _linear_gaussian(2, n_stimuli=4, n_times=100)
    est = STRFRegressor(n_lags=4, kernel="separable", alpha=1e-3, validation_fraction=None).fit(X, y)
    jack = jackknife_strfs(est, X, y, n_jobs=1)
    assert jack.method == "refit"
    refit = STRFRegressor(n_lags=4, kernel="separable", alpha=1e-3,
                          validation_fraction=None).fit(X[1:], y[1:]).strfs_
    np.testing.assert_allclose(jack.estimates[0], refit, rtol=1e-6, atol=1e-12)


def test_jackknife_intervals_cover_the_true_strfs():
    """95% intervals over 60 linear-Gaussian neurons (1440 pixels) cover 90-98% of the truth."""
    X, y, truth = _linear_gaussian(60)
    jack = jackknife_strfs(_ridge().fit(X, y), X, y)
    half_width = stats_t.ppf(0.975, df=15) * jack.se
    coverage = np.mean(np.abs(jack.strfs - truth) <= half_width)
    assert 0.90 <= coverage <= 0.98, coverage


def test_jackknife_significance_few_false_positives_and_true_peaks_found():
    """Sparse true STRFs: <= 5% of the truly-zero pixels significant, every true peak found."""
    n_neurons, n_freqs, n_lags = 40, 6, 4
    truth = np.zeros((n_neurons, n_freqs, n_lags))
    rng = np.random.default_rng(3)
    for n in range(n_neurons):  # one excitatory and one inhibitory pixel per neuron
        flat = rng.choice(n_freqs * n_lags, size=2, replace=False)
        truth[n].flat[flat[0]] = 0.5
        truth[n].flat[flat[1]] = -0.4
    X, y, _ = _linear_gaussian(n_neurons, strfs=truth, noise=1.0, seed=4)
    est = _ridge().fit(X, y)
    for correction, limit in (("fdr", 0.05), ("bonferroni", 0.01), (None, 0.07)):
        jack = jackknife_strfs(est, X, y, correction=correction)
        false_rate = jack.significant[truth == 0].mean()
        assert false_rate <= limit, (correction, false_rate)
        if correction is not None:
            assert jack.significant[truth != 0].all(), correction


def test_significance_mask_benjamini_hochberg_by_hand():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=(3, 4, 5)) ** 3
    mask = significance_mask(p, level=0.1, correction="fdr")
    for n in range(3):
        flat = np.sort(p[n].ravel())
        passing = [k for k in range(1, 21) if flat[k - 1] <= 0.1 * k / 20]
        cutoff = flat[max(passing) - 1] if passing else -1.0
        np.testing.assert_array_equal(mask[n], p[n] <= cutoff)
    np.testing.assert_array_equal(significance_mask(p, correction="bonferroni"), p < 0.05 / 20)
    np.testing.assert_array_equal(significance_mask(p, correction=None), p < 0.05)


def test_jackknife_errors(data):
    est = _ridge(n_lags=6).fit(data.X, data.y)
    with pytest.raises(ValueError, match="at least 3 stimuli; got 2"):
        jackknife_strfs(est, data.X[:2], data.y[:2])
    with pytest.raises(ValueError, match=r"level must be a number in \(0, 1\); got 1.5"):
        jackknife_strfs(est, data.X, data.y, level=1.5)
    with pytest.raises(ValueError, match="correction must be one of"):
        jackknife_strfs(est, data.X, data.y, correction="holm")
    with pytest.raises(NotFittedError):
        jackknife_strfs(STRFRegressor(), data.X, data.y)


def test_significance_level_is_level_and_alpha_is_a_deprecated_alias(data):
    """``alpha`` means the penalty in skstrf; the significance level is ``level`` (issue 23)."""
    p = np.random.default_rng(1).uniform(size=(3, 4, 5)) ** 3
    with pytest.warns(FutureWarning, match="'alpha' was renamed to 'level'.*use level=0.1"):
        old = significance_mask(p, alpha=0.1, correction=None)
    np.testing.assert_array_equal(old, significance_mask(p, level=0.1, correction=None))
    np.testing.assert_array_equal(old, p < 0.1)
    with pytest.raises(ValueError, match="level only; got level=0.2 and the deprecated alpha=0.1"):
        significance_mask(p, level=0.2, alpha=0.1)
    est = _ridge(n_lags=6).fit(data.X, data.y)
    with pytest.warns(FutureWarning, match="renamed to 'level'") as caught:
        old = jackknife_strfs(est, data.X, data.y, alpha=0.2, correction=None)
    assert caught[0].filename == __file__  # the warning names the caller's line
    new = jackknife_strfs(est, data.X, data.y, level=0.2, correction=None)
    np.testing.assert_array_equal(old.significant, new.significant)
    np.testing.assert_array_equal(new.significant, new.pvalue < 0.2)


def test_gradient_maps_name_a_nan_baseline(data):
    est = STRFRegressor(n_lags=L).fit(data.X, data.y)
    baseline = data.X.mean(axis=(0, 1))  # NaN: the ragged stimuli are NaN-padded
    assert np.isnan(baseline).all()
    with pytest.raises(ValueError, match=r"baseline is NaN at band 0 \(10 of 10 bands.*np\.nanmean"):
        gradient_maps(est, baseline=baseline)
    with pytest.raises(ValueError, match=r"baseline is an infinite value at band 3 \(1 of 10"):
        gradient_maps(est, baseline=np.where(np.arange(F) == 3, np.inf, 0.0))
    with pytest.raises(TypeError, match="baseline must be a number .* got 'loud'"):
        gradient_maps(est, baseline="loud")
    np.testing.assert_allclose(gradient_maps(est, baseline=np.nanmean(data.X, axis=(0, 1))),
                               est.strfs_, rtol=1e-5, atol=1e-8)


# ------------------------------------------------------ significance for pixels that matter
def _silent_copies(n_neurons=6, n_silent=2, leak=1e-5, seed=5):
    """Linear-Gaussian cells on 6 loud bands, plus ``n_silent`` near-silent bands that carry
    ``leak`` times loud band 0 (a log spectrogram's floor picking up a little of the sound).

    The responses depend on the loud bands only (the true STRF is zero on the silent ones),
    but each silent band is a tiny copy of a band that drives the cells: the ridge gives it
    a small weight exactly as consistent across stimuli as band 0's, so its z-score is as
    large, while it moves the prediction by ~1e-8 of band 0's contribution.
    """
    X, y, truth = _linear_gaussian(n_neurons, noise=0.5, seed=seed)
    rng = np.random.default_rng(seed + 2)
    silent = leak * X[..., :1] + 1e-9 * rng.normal(size=X.shape[:2] + (n_silent,))
    X = np.concatenate([silent, X], axis=2)
    truth = np.concatenate([np.zeros((n_neurons, n_silent, truth.shape[2])), truth], axis=1)
    return X, y, truth, n_silent


@pytest.mark.filterwarnings("ignore:X's frequency band")
def test_jackknife_never_calls_a_near_silent_band_significant():
    """Before: the tiny copies of band 0 were significant wherever band 0 was (their z-score
    is band 0's); a pixel that cannot move the prediction is not a finding."""
    X, y, truth, n_silent = _silent_copies()
    est = _ridge().fit(X, y)
    every = jackknife_strfs(est, X, y, min_contribution=0.0)
    assert every.significant[:, :n_silent].sum() >= 6  # the artefact, with every pixel tested
    jack = jackknife_strfs(est, X, y)
    assert not jack.significant[:, :n_silent].any()
    assert jack.negligible[:, :n_silent].all()
    # On the bands that carry sound nothing changes, and every strong true pixel is found.
    np.testing.assert_array_equal(jack.significant[:, n_silent:], every.significant[:, n_silent:])
    strong = np.abs(truth) >= 0.15
    assert strong.sum() >= 8 and jack.significant[strong].all()
    # The p-values are the weights' (a band's scale changes no z-score).
    np.testing.assert_array_equal(jack.pvalue, every.pvalue)


@pytest.mark.filterwarnings("ignore:X's frequency band")
def test_jackknife_contributions_are_weights_times_band_sd():
    X, y, _, n_silent = _silent_copies(n_neurons=2)
    est = _ridge().fit(X, y)
    jack = jackknife_strfs(est, X, y)
    sd = np.nanstd(X.reshape(-1, X.shape[2]), axis=0)  # over the training frames
    np.testing.assert_allclose(jack.contributions, jack.strfs * sd[None, :, None], rtol=1e-9)
    # A pixel is negligible exactly when its contribution is below 1% of its STRF's largest.
    largest = np.abs(jack.contributions).max(axis=(1, 2), keepdims=True)
    np.testing.assert_array_equal(jack.negligible, np.abs(jack.contributions) < 0.01 * largest)
    loose = jackknife_strfs(est, X, y, min_contribution=0.5)
    assert loose.significant.sum() < jack.significant.sum()
    assert not (loose.significant & (np.abs(jack.contributions) < 0.5 * largest)).any()


@pytest.mark.filterwarnings("ignore:X's frequency band")
def test_jackknife_min_contribution_errors():
    X, y, _, _ = _silent_copies(n_neurons=1)
    est = _ridge().fit(X, y)
    for bad in (1.0, -0.1, True, "1%", None):
        with pytest.raises(ValueError, match=r"min_contribution must be a number in \[0, 1\)"):
            jackknife_strfs(est, X, y, min_contribution=bad)
    del est.contributions_  # as if fitted by an older version
    with pytest.raises(ValueError, match="has no contributions_ .* refit it"):
        jackknife_strfs(est, X, y)
