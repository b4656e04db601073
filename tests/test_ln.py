"""Tests of the LN output, the Poisson loss and the prefilters inside STRFRegressor."""


import warnings

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from skstrf import STRFRegressor
from skstrf.datasets import make_strf_dataset
from skstrf.inspection import linear_drive, output_nonlinearity
from skstrf.metrics import cc_norm
from skstrf._net import MaskedPoissonLoss
from skstrf.prefilters import ICAdaptation, mel_centre_frequencies, willmore_tau_ms

F, L, N = 12, 6, 6


@pytest.fixture(scope="module")
def rectified():
    """Sparse rectified-Poisson cells: the default of the generator, small."""
    return make_strf_dataset(n_stimuli=10, n_times=300, n_freqs=F, n_neurons=N, n_repeats=8,
                             n_lags=L, random_state=0)


@pytest.fixture(scope="module")
def onoff():
    """The same kind of cells seeing the stimulus through ON/OFF adaptation."""
    return make_strf_dataset(n_stimuli=10, n_times=300, n_freqs=F, n_neurons=N, n_repeats=8,
                             n_lags=L, prefilter="adaptrans", random_state=0)


def _fit_split(data):
    """Fit on train + valid (valid for early stopping), score on test."""
    fit = np.concatenate([data.train, data.valid])
    return fit, len(data.valid) / len(fit)


# --------------------------------------------------------------------------------------
# The Poisson loss
# --------------------------------------------------------------------------------------
def test_poisson_deviance_matches_hand_computation():
    y = torch.tensor([[0.0, 2.0], [1.0, float("nan")]])
    rate = torch.tensor([[0.5, 1.0], [1.0, 7.0]])
    # 2 (y log(y / rate) - y + rate): 2 * 0.5; 2 (2 log 2 - 1); 0; NaN target ignored
    by_hand = [1.0, 2.0 * (2.0 * np.log(2.0) - 1.0), 0.0]
    assert MaskedPoissonLoss()(rate, y).item() == pytest.approx(np.mean(by_hand), rel=1e-6)
    weighted = MaskedPoissonLoss(torch.tensor([2.0, 10.0]))(rate, y).item()
    assert weighted == pytest.approx((2.0 * by_hand[0] + 10.0 * by_hand[1] + 0.0) / 3, rel=1e-6)


def test_poisson_deviance_gradient_is_the_likelihood_gradient():
    y = torch.tensor([0.0, 1.0, 3.0, 0.5])
    rate = torch.tensor([0.2, 1.5, 2.0, 0.1], requires_grad=True)
    MaskedPoissonLoss()(rate, y).backward()
    # d/d rate of the negative log-likelihood (rate - y log rate), doubled, per target
    torch.testing.assert_close(rate.grad, 2.0 * (1.0 - y / rate.detach()) / 4)


# --------------------------------------------------------------------------------------
# Options and their validation
# --------------------------------------------------------------------------------------
def test_inconsistent_options_are_rejected_before_fitting(rectified):
    X, y = rectified.X, rectified.y
    with pytest.raises(ValueError, match="needs a positive predicted rate"):
        STRFRegressor(loss="poisson").fit(X, y)
    with pytest.raises(ValueError, match="solver='ridge' fits linear least-squares models only"):
        STRFRegressor(nonlinearity="softplus", solver="ridge").fit(X, y)
    with pytest.raises(ValueError, match="solver='als'"):
        STRFRegressor(kernel="separable", prefilter="adaptrans", solver="als").fit(X, y)
    with pytest.raises(ValueError, match="freq_range"):
        STRFRegressor(prefilter="adaptrans", freq_range=(5000.0, 500.0)).fit(X, y)
    signed = y.copy()
    signed[1, 3, 0, 2] = -0.5
    with pytest.raises(ValueError, match=r"-0.5 at stimulus 1, frame 3, neuron 0, repeat 2"):
        STRFRegressor(nonlinearity="exp", loss="poisson").fit(X, signed)


class _RecordStatistics(Callback):
    """Records, at each training batch, whether the frame-free statistics step is on."""

    def initialize(self):
        self.used = []
        return self

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        if training:
            self.used.append(net.statistics is not None)


@pytest.mark.parametrize("options, fast", [
    (dict(), True),
    (dict(nonlinearity="softplus"), False),
    (dict(nonlinearity="exp", loss="poisson"), False),
    (dict(prefilter="ic_adaptation"), True),  # a fixed linear map of the stimulus
    (dict(prefilter="adaptrans"), False),
])
def test_only_the_linear_least_squares_model_trains_on_statistics(rectified, options, fast):
    record = _RecordStatistics()
    est = STRFRegressor(n_lags=L, solver="gradient", max_epochs=1, callbacks=[record],
                        random_state=0, **options).fit(rectified.X, rectified.y)
    assert record.used and set(record.used) == {fast}
    assert est.solver_ == "gradient"


def test_auto_solver_and_init_for_ln_models(rectified):
    from skstrf._plan import fit_options, make_plan
    from skstrf._validation import check_X_y

    def plan(**params):
        est = STRFRegressor(n_lags=L, **params)
        return make_plan(est, fit_options(est, rectified.y, {}), check_X_y(rectified.X, rectified.y).shape, {})

    ln = plan(nonlinearity="softplus")
    assert ln.solver == "gradient" and ln.closed_form and not ln.linear
    assert plan(prefilter="adaptrans").closed_form
    assert plan().solver == "ridge"


# --------------------------------------------------------------------------------------
# LN models
# --------------------------------------------------------------------------------------
def test_ln_starts_from_the_closed_form_linear_strf(rectified):
    # A vanishing learning rate leaves the start: the ridge STRF of the stimuli it trains on
    # (penalty cross-validated on them), with the nonlinearity calibrated on top of it.
    # Without validation stimuli those are all of them (with validation stimuli the final
    # training starts from the same, made again from every stimulus: test_ln_refit.py).
    ln = STRFRegressor(n_lags=L, nonlinearity="softplus", lr=1e-12, max_epochs=1, validation_fraction=None,
                       random_state=0).fit(rectified.X, rectified.y)
    linear = STRFRegressor(n_lags=L, random_state=0).fit(rectified.X, rectified.y)
    np.testing.assert_allclose(ln.strfs_, linear.strfs_, rtol=1e-4, atol=1e-6 * np.abs(linear.strfs_).max())
    np.testing.assert_allclose(ln.alpha_, linear.alpha_)


def _linear_cells(seed, base=0.0, n_stimuli=6, n_times=120, n_freqs=8, n_neurons=2):
    """Exactly linear cells around ``base`` (some responses below zero) plus noise."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_stimuli, n_times, n_freqs))
    w = rng.standard_normal((n_neurons, n_freqs, 4))
    psth = np.full((n_stimuli, n_times, n_neurons), base)
    for k in range(4):
        psth[:, k:] += np.einsum("stf,nf->stn", X[:, :n_times - k], w[:, :, k])
    return X, psth + rng.standard_normal(psth.shape)


@pytest.mark.parametrize("kernel, seed, base, validation_fraction", [
    ({"kernel": "separable", "rank": 1}, 2, 0.0, 0.15),  # rank 1: the fit that raised
    ({"kernel": "vanilla"}, 3, 3.0, None),
])
def test_a_tiny_ln_fit_of_linear_cells_starts_finite(kernel, seed, base, validation_fraction):
    # The best softplus of a linear cell is a limit (a hard knee); the calibration followed it
    # until the slope overflowed float32 and the first epoch's loss was NaN even at lr=1e-12
    # (DivergenceError on these data before the bounds of Softplus.calibrate_).
    X, y = _linear_cells(seed, base)
    est = STRFRegressor(**kernel, nonlinearity="softplus", n_lags=4, max_epochs=2, lr=1e-12,
                        validation_fraction=validation_fraction, random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X, y)
    assert not [w for w in caught if "diverged" in str(w.message)]
    assert np.isfinite(est.history_[:, "train_loss"]).all()
    pred = est.predict(X)
    assert np.isfinite(pred).all()
    nonlinearity = est.net_.module_.nonlinearity
    for parameter in (nonlinearity.log_gain, nonlinearity.log_slope, nonlinearity.offset):
        assert torch.isfinite(parameter.exp() if parameter is not nonlinearity.offset else parameter).all()
    # lr=1e-12 leaves the start: the calibrated softplus of the linear stage, a straight line
    # above its knee, so where the linear model predicts well above zero the LN model's
    # prediction is a linear function of it
    linear = STRFRegressor(**kernel, n_lags=4, validation_fraction=validation_fraction,
                           random_state=0).fit(X, y).predict(X)
    for n in range(y.shape[-1]):
        above = linear[..., n] > 0.5 * linear[..., n].std()
        assert np.corrcoef(pred[..., n][above], linear[..., n][above])[0, 1] > 0.9999


def test_ln_beats_linear_on_rectified_data_and_recovers_the_strf(rectified, strf_corr):
    d = rectified
    fit, vf = _fit_split(d)
    scores, recovery = {}, {}
    # patience=None: from its start (the two-stage model: the ridge STRF and the
    # likelihood's softplus of it) the LN model's validation score on these two stimuli
    # first dips for a few epochs (AdamW's first steps), then climbs past the start; early
    # stopping at the default patience would end in the dip and keep the start
    for name, options in {"linear": dict(), "ln": dict(nonlinearity="softplus", loss="poisson",
                                                       patience=None)}.items():
        est = STRFRegressor(n_lags=L, validation_fraction=vf, max_epochs=40, random_state=0, **options)
        est.fit(d.X[fit], d.y[fit])
        scores[name] = cc_norm(d.y[d.test], est.predict(d.X[d.test]))
        recovery[name] = strf_corr(est.strfs_, d.strfs).mean()
    assert scores["ln"] > scores["linear"] + 0.1, scores
    assert recovery["ln"] >= recovery["linear"], recovery


@pytest.mark.parametrize("kernel, per_neuron", [("vanilla", F * L + 1), ("separable", F + L + 1),
                                                ("parametric", 5 * 3 + 1)])
@pytest.mark.parametrize("nonlinearity, extra", [("softplus", 3), ("exp", 2)])
def test_every_kernel_works_with_every_nonlinearity(rectified, kernel, per_neuron, nonlinearity, extra):
    est = STRFRegressor(kernel=kernel, n_lags=L, n_gaussians=3, rank=1, nonlinearity=nonlinearity,
                        loss="poisson", max_epochs=2, random_state=0).fit(rectified.X, rectified.y)
    pred = est.predict(rectified.X)
    assert pred.shape == (10, 300, N) and np.all(np.isfinite(pred)) and np.all(pred >= 0)
    assert est.strfs_.shape == (N, F, L)
    assert est.n_params_per_neuron_ == per_neuron + extra
    # predict is the nonlinearity applied to the linear stage
    # float32 on the fit's device: values far below the largest (e.g. 1e-30) only to its rounding
    np.testing.assert_allclose(output_nonlinearity(est, linear_drive(est, rectified.X)), pred, rtol=1e-5,
                               atol=1e-6 * float(np.abs(pred).max()))


def test_warm_start_continues_an_ln_model_with_its_penalties(rectified):
    est = STRFRegressor(n_lags=L, nonlinearity="softplus", max_epochs=2, warm_start=True,
                        random_state=0).fit(rectified.X, rectified.y)
    alpha, epochs = est.alpha_.copy(), len(est.history_)
    assert np.unique(alpha).size > 1  # per-neuron penalties from the closed-form start
    est.fit(rectified.X, rectified.y)
    assert len(est.history_) == epochs + 2
    np.testing.assert_array_equal(est.alpha_, alpha)


# --------------------------------------------------------------------------------------
# Prefilters
# --------------------------------------------------------------------------------------
def test_adaptrans_attributes(onoff):
    est = STRFRegressor(n_lags=L, prefilter="adaptrans", lr=1e-12, max_epochs=1, random_state=0)
    est.fit(onoff.X, onoff.y)
    assert est.strfs_.shape == (N, 2, F, L)
    assert est.n_params_per_neuron_ == 2 * F * L + 1  # the 3 F prefilter parameters are shared
    tau = willmore_tau_ms(mel_centre_frequencies(F, (500.0, 20000.0)))
    np.testing.assert_allclose(est.adaptation_tau_ms_, np.vstack([tau, tau]), rtol=1e-4)
    np.testing.assert_allclose(est.adaptation_weight_, 0.75, rtol=1e-4)
    # Refitting without a prefilter removes the prefilter's attributes.
    est.set_params(prefilter=None).fit(onoff.X, onoff.y)
    assert est.strfs_.shape == (N, F, L)
    assert not hasattr(est, "adaptation_tau_ms_") and not hasattr(est, "adaptation_weight_")


def test_ic_adaptation_is_a_linear_model_of_the_adapted_spectrogram(onoff):
    est = STRFRegressor(n_lags=L, prefilter="ic_adaptation", random_state=0)
    est.fit(onoff.X, onoff.y)
    assert est.solver_ == "ridge"  # closed form on the prefilter's output
    assert est.strfs_.shape == (N, F, L) and est.adaptation_tau_ms_.shape == (1, F)
    # Exactly the linear model fitted to the adapted spectrogram.
    with torch.no_grad():
        adapted = ICAdaptation(F)(torch.as_tensor(onoff.X, dtype=torch.float32)).numpy()
    plain = STRFRegressor(n_lags=L, random_state=0).fit(adapted, onoff.y)
    np.testing.assert_allclose(est.strfs_, plain.strfs_, rtol=1e-4, atol=1e-6 * np.abs(plain.strfs_).max())
    np.testing.assert_allclose(est.predict(onoff.X), plain.predict(adapted), rtol=1e-4, atol=1e-6)
    assert est.n_params_per_neuron_ == F * L + 1
    # frozen: the time constants are still the initial ones after training
    tau = willmore_tau_ms(mel_centre_frequencies(F, (500.0, 20000.0)))
    np.testing.assert_allclose(est.adaptation_tau_ms_[0], tau, rtol=1e-5)


def test_adaptrans_beats_no_prefilter_on_onoff_data(onoff):
    d = onoff
    fit, vf = _fit_split(d)
    scores = {}
    for name, options in {"none": dict(), "adaptrans": dict(prefilter="adaptrans")}.items():
        est = STRFRegressor(n_lags=L, validation_fraction=vf, max_epochs=40, random_state=0,
                            freq_range=(d.freqs[0], d.freqs[-1]), **options)
        est.fit(d.X[fit], d.y[fit])
        scores[name] = cc_norm(d.y[d.test], est.predict(d.X[d.test]))
        if name == "adaptrans":
            assert np.all((est.adaptation_weight_ > 0) & (est.adaptation_weight_ < 1))
            assert np.all(est.adaptation_tau_ms_ > 0)
    # The data's adaptation (w = 0.5, time constants x0.5 ON and x1.5 OFF) is away from
    # AdapTrans's start, so the margin is smaller than on data generated at that start.
    assert scores["adaptrans"] > scores["none"] + 0.02, scores


# --------------------------------------------------------------------------------------
# The main job's optional rows
# --------------------------------------------------------------------------------------
def test_beyond_linear_variants_carry_the_data_timing_and_band_range():
    from skstrf.compare import beyond_linear_variants

    variants = dict(beyond_linear_variants(["ln", "adaptrans"], dt_ms=10.0, freq_range=(200.0, 8000.0)))
    ln = variants["vanilla + LN (softplus, Poisson)"]
    assert ln["nonlinearity"] == "softplus" and ln["loss"] == "poisson" and "dt_ms" not in ln
    adapt = variants["vanilla + AdapTrans"]
    assert adapt["prefilter"] == "adaptrans" and adapt["dt_ms"] == 10.0
    assert adapt["freq_range"] == (200.0, 8000.0)
    with pytest.raises(ValueError, match="unknown variant"):
        beyond_linear_variants(["lnp"])


def test_compare_runs_the_optional_rows_and_draws_on_off_panels(tmp_path, capsys):
    from skstrf.cli import main

    code = main(["compare", "--n-neurons", "3", "--n-times", "80", "--max-epochs", "1", "--n-lags", "4",
                 "--kernels", "vanilla", "--no-seed-method", "--variants", "ln", "adaptrans",
                 "--output", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "vanilla + LN (softplus, Poisson) gradient" in out and "vanilla + AdapTrans" in out
    summary = (tmp_path / "results.json").read_text()
    # params/neuron: 34 bands x 4 lags + 1, +3 for the softplus, twice the kernel for ON/OFF
    assert '"params_per_neuron": 137' in summary and '"params_per_neuron": 140' in summary
    assert '"params_per_neuron": 273' in summary
    assert (tmp_path / "best_cell_strfs.png").stat().st_size > 0


def test_plot_strfs_draws_on_and_off_channels_side_by_side():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skstrf.plotting import plot_strfs

    strfs = np.random.default_rng(0).normal(size=(3, 2, F, L))
    fig, axes = plot_strfs(strfs, neurons=[2, 0])
    assert [ax.get_title() for ax in axes] == ["neuron 2, ON", "neuron 2, OFF", "neuron 0, ON", "neuron 0, OFF"]
    for ax, kernel in zip(axes, [strfs[2, 0], strfs[2, 1], strfs[0, 0], strfs[0, 1]]):
        np.testing.assert_array_equal(ax.images[0].get_array(), kernel)
    # one row: a STRF's two channels next to each other
    assert len({round(ax.get_position().y0, 3) for ax in axes}) == 1
    plt.close(fig)
    fig, axes = plot_strfs(strfs[:1], titles=["cell"], channels=["on", "off"])
    assert [ax.get_title() for ax in axes] == ["cell, on", "cell, off"]
    plt.close(fig)
    with pytest.raises(ValueError, match="3 channel names for STRFs with 2 channels"):
        plot_strfs(strfs, channels=["a", "b", "c"])


@pytest.mark.parametrize("options", [dict(solver="gradient"), dict(nonlinearity="softplus")],
                         ids=["linear statistics step", "LN forward step"])
def test_every_training_frame_counts_alike_in_batches_of_one_stimulus(options):
    # Stimuli of very different lengths (as sounds of a few hundred ms among 3 s excerpts):
    # batches of one stimulus must weigh each stimulus by its frames, so that an epoch's
    # batches sum to the loss over all training frames, the closed form's and the score's
    # objective, not to a mean over stimuli that counts a short stimulus's frames more.
    rng = np.random.default_rng(3)
    lengths = [40, 300, 80, 250, 60, 200]
    X = np.full((len(lengths), max(lengths), 5), np.nan)
    y = np.full((len(lengths), max(lengths), 2), np.nan)
    for s, length in enumerate(lengths):
        X[s, :length] = rng.standard_normal((length, 5))
        # short stimuli respond more loudly: their losses differ from the long ones'
        y[s, :length] = (1 + 4 * (length < 100)) * rng.gamma(2.0, 1.0, (length, 2))
    losses = {}
    for batch_size in (1, None):
        # a vanishing learning rate: every batch is scored at the starting model
        est = STRFRegressor(n_lags=4, lr=1e-12, max_epochs=1, batch_size=batch_size, validation_fraction=None,
                            random_state=0, **options).fit(X, y)
        losses[batch_size] = est.history_[-1, "train_loss"]
    np.testing.assert_allclose(losses[1], losses[None], rtol=1e-5)
