"""partition_variance: held-out explained variance of every subset of the feature spaces, as a
share of the signal power, and each space's unique and shared parts, against a generator whose
truth is known in closed form."""

from __future__ import annotations

import itertools
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.model_selection import GridSearchCV, GroupKFold, KFold, ShuffleSplit
from sklearn.pipeline import make_pipeline

import skstrf.inspection as inspection
from skstrf import STRFRegressor
from skstrf.inspection import MAX_PARTITION_SPACES, partition_variance
from skstrf.metrics import UnreliableNeuronWarning, signal_power
from skstrf.preprocessing import FeatureSpaces

L = 3


def _three_spaces(seed=0, n_stimuli=16, n_times=300, n_bands=4, n_neurons=3, n_repeats=4, rho=0.6,
                  scales=(1.0, 10.0, 100.0), weak=0.5):
    """Three spaces of ``n_bands`` each: informative, weak (correlated with the first band by
    band, correlation ``rho``) and pure noise, on the ``scales`` given; frames independent in
    time, ``L - 1`` lead-in frames of real sound before each stimulus's scored frames.

    Returns X, y, the lead-in, and the truth: for every subset of the spaces (a tuple), the
    share of each neuron's noise-free variance that the best linear causal predictor from
    that subset's bands (L lags) explains. Frames are independent, so the lags are
    independent and ``R2(U) = sum_k w_k' C[:, U] C[U, U]^-1 C[U, :] w_k / sum_k w_k' C w_k``
    with ``C`` the bands' covariance within a frame.
    """
    rng = np.random.default_rng(seed)
    lead = L - 1
    T = n_times + lead
    a = rng.standard_normal((n_stimuli, T, n_bands))
    b = rho * a + np.sqrt(1 - rho**2) * rng.standard_normal(a.shape)
    c = rng.standard_normal(a.shape)
    X = np.concatenate([scales[0] * a, scales[1] * b, scales[2] * c], axis=2)
    F = 3 * n_bands
    w = np.zeros((n_neurons, F, L))  # weights on X in its units
    w[:, :n_bands] = rng.standard_normal((n_neurons, n_bands, L)) / scales[0]
    w[:, n_bands:2 * n_bands] = weak * rng.standard_normal((n_neurons, n_bands, L)) / scales[1]
    s = np.zeros((n_stimuli, T, n_neurons))
    for k in range(L):
        s[:, k:] += np.einsum("stf,nf->stn", X[:, :T - k], w[:, :, k])
    y = s[..., None] + s[:, lead:].std() * rng.standard_normal(s.shape + (n_repeats,))
    eye = np.eye(n_bands)
    cov = np.zeros((F, F))
    for i in range(3):
        cov[i * n_bands:(i + 1) * n_bands, i * n_bands:(i + 1) * n_bands] = scales[i] ** 2 * eye
    cov[:n_bands, n_bands:2 * n_bands] = cov[n_bands:2 * n_bands, :n_bands] = scales[0] * scales[1] * rho * eye
    space = np.repeat(np.arange(3), n_bands)
    total = np.einsum("nfk,fg,ngk->n", w, cov, w)
    truth = {}
    for size in (1, 2, 3):
        for subset in itertools.combinations(range(3), size):
            u = np.isin(space, subset)
            explained = cov[:, u] @ np.linalg.solve(cov[np.ix_(u, u)], cov[u, :])
            truth[subset] = np.einsum("nfk,fg,ngk->n", w, explained, w) / total
    return X, y, lead, truth


def _quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func(*args, **kwargs)


@pytest.fixture(scope="module")
def three():
    X, y, lead, truth = _three_spaces()
    est = STRFRegressor(n_lags=L, lead_in=lead, feature_spaces=[4, 4, 4])
    return X, y, truth, _quiet(partition_variance, est, X, y)


def test_the_parts_match_the_generators_truth(three):
    _, _, truth, part = three
    assert part.subsets == [(0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2)]
    assert part.scores.shape == (7, 3) and part.unique.shape == (3, 3) and part.shared.shape == (3,)
    assert part.normalization == "signal_power" and part.reliable.all()
    assert part.n_folds == 5 and part.n_fits == 35
    everything = truth[(0, 1, 2)]
    true_unique = np.stack([everything - truth[(1, 2)], everything - truth[(0, 2)], everything - truth[(0, 1)]])
    # Tolerance: the seeds 0-3 of this generator give errors of standard deviation 0.013 over
    # neurons and spaces (the signal power's and the folds' sampling noise), at most 0.04.
    np.testing.assert_allclose(part.unique, true_unique, atol=0.05)
    np.testing.assert_allclose(part.shared, everything - true_unique.sum(axis=0), atol=0.05)
    np.testing.assert_allclose(part.total, 1.0, atol=0.05)  # the generator is linear: all of it
    for j, subset in enumerate(part.subsets):
        np.testing.assert_allclose(part.scores[j], truth[subset], atol=0.05, err_msg=str(subset))
    # the pure-noise space explains nothing: its unique part is zero (the banded penalty
    # all but drops it), its own score is at most zero
    assert np.abs(part.unique[2]).max() < 0.01
    assert (part.scores[2] < 0.01).all()


def test_the_parts_do_not_depend_on_the_units_of_each_space(three):
    # The same sound and cells with every space in one unit (the generator draws the same
    # numbers; the weights follow the units): each band's scale is floored within its own
    # space, so every fit, and the partition, is the same up to rounding. (With one floor
    # for all spaces, the bands of the space at scale 1 were floored against the others'.)
    _, _, _, part = three
    X, y, lead, _ = _three_spaces(scales=(1.0, 1.0, 1.0))
    same = _quiet(partition_variance, STRFRegressor(n_lags=L, lead_in=lead, feature_spaces=[4, 4, 4]), X, y)
    np.testing.assert_allclose(same.scores, part.scores, rtol=0, atol=1e-6)
    np.testing.assert_allclose(same.unique, part.unique, rtol=0, atol=1e-6)


def test_the_parts_add_up(three):
    _, _, _, part = three
    np.testing.assert_allclose(part.total, part.scores[-1])
    np.testing.assert_allclose(part.unique.sum(axis=0) + part.shared, part.total)
    # the regions (exactly these spaces, no other) add up to the total; singletons are the
    # unique parts, the others the shared part
    np.testing.assert_allclose(part.regions.sum(axis=0), part.total)
    np.testing.assert_allclose(part.regions[:3], part.unique)
    np.testing.assert_allclose(part.regions[3:].sum(axis=0), part.shared)
    f = dict(zip(part.subsets, part.scores))
    # inclusion-exclusion by hand: the part of spaces 0 and 1 only, and of all three
    np.testing.assert_allclose(part.regions[3], f[(0, 2)] + f[(1, 2)] - f[(2,)] - f[(0, 1, 2)])
    np.testing.assert_allclose(part.regions[6], f[(0,)] + f[(1,)] + f[(2,)] - f[(0, 1)] - f[(0, 2)] - f[(1, 2)]
                               + f[(0, 1, 2)])


def test_each_score_is_the_held_out_explained_variance_over_the_signal_power():
    # Two spaces given as index lists (interleaved bands): the score of each subset is the one
    # computed by hand from refits of a clone on that subset's bands, with its feature_spaces
    # restricted, pooled over the held-out stimuli.
    X, y, lead, _ = _three_spaces(seed=5, n_stimuli=8, n_times=150, n_neurons=2)
    X = X[..., :8]
    spaces = [[0, 2, 4, 6], [1, 3, 5, 7]]
    est = STRFRegressor(n_lags=L, lead_in=lead, feature_spaces=spaces, history=np.arange(8.0) / 10)
    folds = list(KFold(4).split(X))
    part = _quiet(partition_variance, est, X, y, cv=4)
    psth = y[:, lead:].mean(axis=-1)
    sp = signal_power(y[:, lead:])
    for j, bands in enumerate([spaces[0], spaces[1], list(range(8))]):
        pred = np.zeros_like(y[..., 0])
        for train, test in folds:
            options = dict(feature_spaces=None, history=np.arange(8.0)[bands] / 10) if j < 2 else {}
            model = _quiet(clone(est).set_params(**options).fit, X[train][..., bands], y[train])
            pred[test] = model.predict(X[test][..., bands])
        q = pred[:, lead:]
        ev = psth.reshape(-1, 2).var(axis=0) - ((psth - q) ** 2).reshape(-1, 2).mean(axis=0)
        np.testing.assert_allclose(part.scores[j], ev / sp, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(part.signal_power, sp, rtol=1e-10)


def test_subset_options_restrict_spaces_grids_and_per_band_history():
    est = STRFRegressor(feature_spaces=[2, 1, 2], history=np.arange(5.0),
                        space_penalties=[[1, 1, 1], [1, 10, 10], [2, 20, 20], [1, 100, 1]])
    space_of_band = np.array([0, 0, 1, 2, 2])
    bands, options = inspection._subset_options(est, space_of_band, (1, 2))
    np.testing.assert_array_equal(bands, [2, 3, 4])
    assert options["feature_spaces"] == [[0], [1, 2]]
    np.testing.assert_array_equal(options["history"], [2.0, 3.0, 4.0])
    # columns 1 and 2, relative to the first; duplicates (1:1 twice) kept once, in order
    np.testing.assert_allclose(options["space_penalties"], [[1, 1], [1, 0.01]])
    bands, options = inspection._subset_options(est, space_of_band, (0,))
    assert options["feature_spaces"] is None and options["space_penalties"] is None


def test_a_pipeline_fits_its_earlier_steps_per_fold_and_names_the_spaces():
    rng = np.random.default_rng(3)
    X = np.repeat(rng.gamma(1.0, size=(8, 12, 3)), 10, axis=1)  # held notes: rises and falls
    onsets = np.maximum(np.diff(X, axis=1, prepend=X[:, :1]), 0)
    drive = X[..., 0] + 2.0 * onsets[..., 1]
    y = drive[..., None, None] + 0.5 * rng.standard_normal((8, 120, 1, 5))
    pipe = make_pipeline(FeatureSpaces(spaces=("spectrogram", "onsets")),
                         STRFRegressor(n_lags=2, feature_spaces=[3, 3]))
    part = _quiet(partition_variance, pipe, X, y, cv=4)
    assert part.space_names == ["spectrogram", "onsets"]
    assert part.subset_names == ["spectrogram", "onsets", "spectrogram + onsets"]
    # both carry something the other cannot (a linear STRF cannot respond to rises only)
    assert part.unique[0, 0] > 0.5 and part.unique[1, 0] > 0.05
    # the whole set is the pipeline's own out-of-fold prediction
    pred = np.zeros_like(y[..., 0])
    for train, test in KFold(4).split(X):
        pred[test] = _quiet(clone(pipe).fit, X[train], y[train]).predict(X[test])
    psth = y.mean(axis=-1)
    ev = psth.var() - ((psth - pred) ** 2).mean()
    np.testing.assert_allclose(part.total, ev / signal_power(y), rtol=1e-6)


def test_groups_reach_the_outer_and_the_inner_splitter(monkeypatch):
    X, y, lead, _ = _three_spaces(seed=1, n_stimuli=8, n_times=80, n_neurons=1)
    X = X[..., :8]
    groups = np.repeat(np.arange(4), 2)
    seen = []
    original = inspection._subset_fit_predict

    def spy(final, options, z_train, y_train, z_test, bands, inner_groups):
        seen.append(inner_groups)
        return original(final, options, z_train, y_train, z_test, bands, inner_groups)

    monkeypatch.setattr(inspection, "_subset_fit_predict", spy)
    est = STRFRegressor(n_lags=L, lead_in=lead, feature_spaces=[4, 4], cv=GroupKFold(2))
    part = _quiet(partition_variance, est, X, y, cv=GroupKFold(4), groups=groups)
    assert part.n_folds == 4 and len(seen) == 12
    assert all(g is not None and len(g) == 6 and np.bincount(g).max() == 2 for g in seen)
    # with an int cv of its own, the estimator's fit gets no groups
    seen.clear()
    _quiet(partition_variance, clone(est).set_params(cv=3), X, y, cv=GroupKFold(4), groups=groups)
    assert seen and all(g is None for g in seen)


def test_one_repeat_falls_back_to_the_psth_variance_with_a_warning():
    X, y, lead, _ = _three_spaces(seed=2, n_stimuli=6, n_times=100, n_neurons=2)
    X, y = X[..., :8], y[..., 0]  # a PSTH per neuron, no repeats
    with pytest.warns(UndefinedMetricWarning, match="single repeat: the shares are of the PSTH's variance"):
        part = partition_variance(STRFRegressor(n_lags=L, lead_in=lead, feature_spaces=[4, 4]), X, y, cv=3)
    assert part.normalization == "psth_variance" and part.reliable is None
    np.testing.assert_allclose(part.signal_power, y[:, lead:].reshape(-1, 2).var(axis=0))
    assert ((part.total > 0) & (part.total < 1)).all()  # noise included: below 1


def test_unreliable_neurons_are_flagged_or_excluded_like_cc_norm_does():
    X, y, lead, _ = _three_spaces(seed=4, n_stimuli=6, n_times=100, n_neurons=2)
    X = X[..., :8]
    rng = np.random.default_rng(0)
    y[:, :, 1] = rng.standard_normal(y[:, :, 1].shape)  # neuron 1: noise only
    est = STRFRegressor(n_lags=L, lead_in=lead, feature_spaces=[4, 4])
    with pytest.warns(UnreliableNeuronWarning, match="their shares are NaN") as caught:
        part = partition_variance(est, X, y, cv=3, unreliable="exclude")
    assert [w.message.neurons.tolist() for w in caught if w.category is UnreliableNeuronWarning] == [[1]]
    assert np.isnan(part.scores[:, 1]).all() and np.isfinite(part.scores[:, 0]).all()
    assert part.reliable.tolist() == [True, False]
    with pytest.warns(UnreliableNeuronWarning, match="their shares are kept"):
        kept = partition_variance(est, X, y, cv=3)  # the default, as cc_norm's
    assert np.isfinite(kept.scores).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnreliableNeuronWarning)
        silent = partition_variance(est, X, y, cv=3, unreliable="ignore")
    np.testing.assert_allclose(silent.scores, kept.scores)


def test_a_neuron_without_positive_signal_power_gets_nan():
    X, y, lead, _ = _three_spaces(seed=4, n_stimuli=6, n_times=100, n_neurons=2, n_repeats=2)
    X = X[..., :8]
    noise = np.random.default_rng(1).standard_normal(y[:, :, 1, 0].shape)
    y[:, :, 1, 0], y[:, :, 1, 1] = noise, -noise  # a constant PSTH: negative signal power
    with pytest.warns(UndefinedMetricWarning, match="1 of 2 neurons have no positive signal power"):
        part = partition_variance(STRFRegressor(n_lags=L, lead_in=lead, feature_spaces=[4, 4]), X, y, cv=3,
                                  unreliable="ignore")
    assert np.isnan(part.scores[:, 1]).all() and np.isfinite(part.scores[:, 0]).all()
    assert part.signal_power[1] < 0  # reported as estimated


def _no_refit(*args, **kwargs):
    raise AssertionError("a refit started before the inputs were checked")


@pytest.mark.parametrize("make_call, error, message", [
    (lambda X, y: (STRFRegressor(), X, y), ValueError, r"feature_spaces=None names 0; give at least 2"),
    (lambda X, y: (STRFRegressor(feature_spaces=[8]), X, y), ValueError, r"names 1; give at least 2"),
    (lambda X, y: (STRFRegressor(feature_spaces=[2] * (MAX_PARTITION_SPACES + 1)), X[..., :10], y), ValueError,
     rf"at most {MAX_PARTITION_SPACES} feature spaces"),
    (lambda X, y: (STRFRegressor(feature_spaces=[4, 4], prefilter="ic_adaptation"), X, y), ValueError,
     r"does not take prefilter='ic_adaptation'"),
    (lambda X, y: (GridSearchCV(STRFRegressor(feature_spaces=[4, 4]), {"n_lags": [2, 3]}), X, y), TypeError,
     r"search.best_estimator_"),
    (lambda X, y: (make_pipeline(FeatureSpaces()), X, y), TypeError, r"needs a STRFRegressor"),
    (lambda X, y: (STRFRegressor(feature_spaces=[4, 4]), X[0], y[0]), ValueError,
     r"needs X of shape \(n_stimuli, n_times, n_freqs\); got shape \(62, 8\)"),
    (lambda X, y: (STRFRegressor(feature_spaces=[4, 4]), X, y[:5]), ValueError, r"y has 5 stimuli .* X has 6"),
    (lambda X, y: (STRFRegressor(feature_spaces=[4, 3]), X, y), ValueError, r"sum to the 8 bands of X"),
    (lambda X, y: (STRFRegressor(feature_spaces=[4, 4]), X, y[:, :1]), ValueError,
     r"X has 62 and y has 1 \(X shape \(6, 62, 8\), y shape \(6, 1, 2, 4\)\)"),
])
def test_bad_inputs_are_refused_before_any_refit(monkeypatch, make_call, error, message):
    monkeypatch.setattr(inspection, "_subset_fit_predict", _no_refit)
    X, y, _, _ = _three_spaces(n_stimuli=6, n_times=60, n_neurons=2)
    X = X[..., :8]
    est, X, y = make_call(X, y)
    with pytest.raises(error, match=message):
        partition_variance(est, X, y)


@pytest.mark.parametrize("kwargs, message", [
    (dict(cv=1), r"cv must be a number of folds from 2 to the 6 stimuli"),
    (dict(cv=7), r"from 2 to the 6 stimuli"),
    (dict(cv=True), r"cv must be a number of folds"),
    (dict(cv=None), r"cv must be a number of folds"),
    (dict(cv=ShuffleSplit(3, random_state=0)), r"hold out every stimulus exactly once"),
    (dict(cv=[(np.arange(3), np.arange(3, 6))]), r"hold out every stimulus exactly once"),
    (dict(cv=[(np.arange(4), np.arange(3)), (np.arange(3, 6), np.arange(3, 6))]), r"fold 0 .* both"),
    (dict(groups=np.arange(6)), r"cv=5 cuts contiguous folds of stimuli; pass a group splitter"),
    (dict(cv=GroupKFold(2), groups=np.arange(5)), r"one label per stimulus, shape \(6,\)"),
    (dict(unreliable="drop"), r"unreliable must be one of \['exclude', 'warn', 'ignore'\]"),
])
def test_bad_folds_and_options_are_refused_before_any_refit(monkeypatch, kwargs, message):
    monkeypatch.setattr(inspection, "_subset_fit_predict", _no_refit)
    X, y, _, _ = _three_spaces(n_stimuli=6, n_times=60, n_neurons=2)
    with pytest.raises(ValueError, match=message):
        partition_variance(STRFRegressor(feature_spaces=[4, 4, 4]), X, y, **kwargs)


# --------------------------------------------------------------------------------------
# The user guide's page runs, and its worked examples find what their generators put in
# --------------------------------------------------------------------------------------
def _code_blocks(page: Path) -> str:
    """Every python code block of a user guide page, in order, as one script."""
    lines = page.read_text().splitlines()
    blocks = []
    for i, line in enumerate(lines):
        if line.startswith(".. code-block:: python"):
            block = []
            for body in lines[i + 1:]:
                if body and not body.startswith("   "):
                    break
                block.append(body)
            blocks.append(textwrap.dedent("\n".join(block)))
    return "\n".join(blocks)


def test_user_guide_worked_example(capsys):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    page = Path(__file__).resolve().parent.parent / "docs" / "user_guide" / "feature_spaces.rst"
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        exec(compile(_code_blocks(page), "feature_spaces.rst", "exec"), namespace)
    plt.close("all")
    part, ears = namespace["part"], namespace["ear_parts"]
    assert part.space_names == ["spectrogram", "onsets", "envelope"]
    # the generator's cells hear the spectrogram and its onsets, not the envelope
    assert (part.unique[0] > 0.05).all() and (part.unique[1, [0, 2, 3]] > 0.1).all()
    assert part.unique[1, 3] > part.unique[1, 1] + 0.2  # neuron 3 leans most on the onsets
    np.testing.assert_allclose(part.total, 1.0, atol=0.05)
    assert np.abs(part.unique[2]).max() < 0.05
    assert "unique" in capsys.readouterr().out
    # the two ears: neuron 1 hears the contralateral ear only, 0 and 3 both ears
    assert ears.space_names == ["contra", "ipsi"]
    assert np.abs(ears.unique[1, 1]) < 0.03 and (ears.unique[1, [0, 3]] > 0.08).all()
    assert (ears.unique[0] > 0.2).all()
    assert namespace["search"].best_params_["feature_spaces"] is not None
