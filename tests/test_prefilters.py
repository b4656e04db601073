"""Tests of the AdapTrans and IC-adaptation prefilters against the formulas of DESIGN.md §8."""

import math

import numpy as np
import pytest
import torch

from skstrf.prefilters import (
    AdapTrans,
    ICAdaptation,
    adaptation_taps,
    causal_filter,
    default_n_taps,
    hz_to_mel,
    make_prefilter,
    mel_centre_frequencies,
    willmore_tau_ms,
)


def _reference_taps(a: float, w: float, K: int) -> tuple[np.ndarray, np.ndarray]:
    """ON and OFF taps written out term by term."""
    C = 1.0 / sum(a**j for j in range(K - 1))
    on = [1.0] + [-w * C * a ** (k - 1) for k in range(1, K)]
    off = [-w] + [C * a ** (k - 1) for k in range(1, K)]
    return np.array(on), np.array(off)


def _reference_filter(x: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """out[t] = sum_k taps[k] x[max(t - k, 0)]: the first frame repeated into the past."""
    return np.array([sum(taps[k] * x[max(t - k, 0)] for k in range(len(taps))) for t in range(len(x))])


# --------------------------------------------------------------------------------------
# Initialisation formulas
# --------------------------------------------------------------------------------------
def test_mel_centre_frequencies_are_evenly_spaced_in_mel_with_the_given_ends():
    assert hz_to_mel(700.0) == pytest.approx(2595.0 * math.log10(2.0))
    cf = mel_centre_frequencies(34, (500.0, 20000.0))
    assert cf[0] == pytest.approx(500.0) and cf[-1] == pytest.approx(20000.0)
    steps = np.diff(hz_to_mel(cf))
    np.testing.assert_allclose(steps, steps[0], rtol=1e-10)
    assert np.all(np.diff(cf) > 0)


def test_willmore_time_constants_and_tap_count():
    np.testing.assert_allclose(willmore_tau_ms(np.array([1000.0, 10000.0])), [185.0, 80.0])
    # The formula crosses zero near 57.6 kHz: floored at one frame.
    assert willmore_tau_ms(np.array([100000.0]), dt_ms=5.0)[0] == 5.0
    tau_500 = 500.0 - 105.0 * math.log10(500.0)  # 216.6 ms, the slowest band
    assert default_n_taps(np.array([tau_500, 50.0]), 5.0) == math.ceil(3 * tau_500 / 5.0) + 1 == 131


def test_adaptrans_initial_parameters():
    pre = AdapTrans(20, dt_ms=5.0, freq_range=(500.0, 20000.0))
    tau = willmore_tau_ms(mel_centre_frequencies(20, (500.0, 20000.0)))
    np.testing.assert_allclose(pre.tau_ms.detach().numpy(), np.vstack([tau, tau]), rtol=1e-5)
    np.testing.assert_allclose(pre.a.detach().numpy(), np.exp(-5.0 / np.vstack([tau, tau])), rtol=1e-5)
    np.testing.assert_allclose(pre.w.detach().numpy(), 0.75, rtol=1e-6)
    assert pre.n_taps == default_n_taps(tau, 5.0)
    # Learnable: ON and OFF time constants per band and one w per band.
    assert sum(p.numel() for p in pre.parameters()) == 3 * 20


# --------------------------------------------------------------------------------------
# Taps and filtering
# --------------------------------------------------------------------------------------
def test_taps_match_the_formulas_and_their_sums():
    a = torch.tensor([0.3, 0.9, 0.977], dtype=torch.float64)
    w = torch.tensor([0.75, 0.2, 0.5], dtype=torch.float64)
    K = 12
    on, off = adaptation_taps(a, w, K)
    for f in range(3):
        ref_on, ref_off = _reference_taps(a[f].item(), w[f].item(), K)
        np.testing.assert_allclose(on[f].numpy(), ref_on, rtol=1e-12)
        np.testing.assert_allclose(off[f].numpy(), ref_off, rtol=1e-12)
    # C normalises the past: ON's negative taps sum to -w, OFF's past taps to +1.
    np.testing.assert_allclose(on[:, 1:].sum(1).numpy(), -w.numpy(), rtol=1e-12)
    np.testing.assert_allclose(off[:, 1:].sum(1).numpy(), 1.0, rtol=1e-12)
    np.testing.assert_allclose(on[:, 0].numpy(), 1.0)
    np.testing.assert_allclose(off[:, 0].numpy(), -w.numpy())


def test_causal_filter_repeats_the_first_frame():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2, 30, 3))
    taps = rng.standard_normal((3, 9))
    out = causal_filter(torch.tensor(X), torch.tensor(taps)).numpy()
    for s in range(2):
        for f in range(3):
            np.testing.assert_allclose(out[s, :, f], _reference_filter(X[s, :, f], taps[f]), atol=1e-12)


def test_adaptrans_output_is_rectified_on_then_off():
    pre = AdapTrans(3, n_taps=10)
    # distinct ON and OFF time constants and weights per band
    pre.set_parameters_(np.array([[5.0, 20.0, 80.0], [40.0, 10.0, 15.0]]), np.array([0.3, 0.6, 0.9]))
    rng = np.random.default_rng(1)
    X = torch.tensor(rng.random((2, 25, 3)), dtype=torch.float32)
    out = pre(X).detach().numpy()
    assert out.shape == (2, 25, 6)
    # ON and OFF have their own time constants: the ON taps from a[0], the OFF taps from a[1].
    on = adaptation_taps(pre.a[0], pre.w, 10)[0].detach().numpy()
    off = adaptation_taps(pre.a[1], pre.w, 10)[1].detach().numpy()
    for f in range(3):
        ref_on = np.maximum(_reference_filter(X[0, :, f].numpy(), on[f]), 0)
        ref_off = np.maximum(_reference_filter(X[0, :, f].numpy(), off[f]), 0)
        np.testing.assert_allclose(out[0, :, f], ref_on, atol=1e-6)
        np.testing.assert_allclose(out[0, :, 3 + f], ref_off, atol=1e-6)


def test_hand_computed_responses_to_constant_and_step_inputs():
    pre = AdapTrans(1, n_taps=8)
    w = pre.w.item()
    # Constant from the start: with first-frame padding the filter starts adapted, so both
    # channels read c (1 - w) at once (zero padding would give ON = c at t = 0).
    const = pre(torch.full((1, 6, 1), 2.0)).detach().numpy()[0]
    np.testing.assert_allclose(const, 2.0 * (1 - w), rtol=1e-6)
    # A step from silence to 1 at t = 3: ON jumps to 1, OFF would be -w and is rectified to 0.
    step = torch.zeros(1, 6, 1)
    step[0, 3:] = 1.0
    out = pre(step).detach().numpy()[0]
    np.testing.assert_allclose(out[:3], 0.0, atol=1e-6)
    assert out[3, 0] == pytest.approx(1.0, rel=1e-5) and out[3, 1] == 0.0
    # A step down from 1 to 0 at t = 3: ON would be -w and is rectified to 0; OFF reports
    # the remembered level, all its past taps (sum 1) on ones, then loses the first past
    # tap C a^0 = C at t = 4.
    down = 1.0 - step
    out = pre(down).detach().numpy()[0]
    C = 1.0 / sum(pre.a[1].item() ** j for j in range(7))
    assert out[3, 0] == 0.0 and out[3, 1] == pytest.approx(1.0, rel=1e-5)
    assert out[4, 0] == 0.0 and out[4, 1] == pytest.approx(1.0 - C, rel=1e-5)


def test_ic_adaptation_is_frozen_on_only_and_unrectified():
    pre = ICAdaptation(4, n_taps=12)
    assert sum(p.numel() for p in pre.parameters()) == 0
    rng = np.random.default_rng(2)
    X = torch.tensor(rng.random((1, 40, 4)), dtype=torch.float32)
    out = pre(X).numpy()
    assert out.shape == (1, 40, 4)
    on, _ = adaptation_taps(pre.a[0], pre.w, 12)
    for f in range(4):
        np.testing.assert_allclose(out[0, :, f], _reference_filter(X[0, :, f].numpy(), on[f].numpy()), atol=1e-6)
    assert (out < 0).any()  # no rectification


# --------------------------------------------------------------------------------------
# Constraints and gradients
# --------------------------------------------------------------------------------------
def test_parameters_stay_in_the_unit_interval_under_aggressive_training():
    torch.manual_seed(0)
    pre = AdapTrans(5, n_taps=20)
    optimizer = torch.optim.SGD(pre.parameters(), lr=5.0)
    X = torch.rand(2, 60, 5)
    for sign in (1.0, -1.0):  # push the parameters one way, then the other
        for _ in range(15):
            optimizer.zero_grad()
            (sign * pre(X).sum()).backward()
            optimizer.step()
            a, w = pre.a.detach(), pre.w.detach()
            assert torch.all((a > 0) & (a < 1)) and torch.all((w > 0) & (w < 1))
            assert torch.isfinite(pre(X)).all()


def test_gradients_reach_every_parameter():
    pre = AdapTrans(3, n_taps=15)
    X = torch.rand(2, 40, 3)
    pre(X).pow(2).sum().backward()
    for p in (pre.log_tau, pre.w_logit):
        assert torch.isfinite(p.grad).all() and (p.grad != 0).all()


def test_set_parameters_and_errors():
    pre = AdapTrans(2, n_taps=5)
    pre.set_parameters_(np.array([[10.0, 20.0], [30.0, 40.0]]), np.array([0.5, 0.25]))
    np.testing.assert_allclose(pre.tau_ms.detach().numpy(), [[10, 20], [30, 40]], rtol=1e-5)
    np.testing.assert_allclose(pre.w.detach().numpy(), [0.5, 0.25], rtol=1e-5)
    with pytest.raises(ValueError, match="w must lie in"):
        pre.set_parameters_(np.ones((2, 2)), np.array([0.5, 1.0]))
    assert make_prefilter(None, 3) is None
    assert isinstance(make_prefilter("ic_adaptation", 3), ICAdaptation)
    with pytest.raises(ValueError, match="unknown prefilter 'onoff'"):
        make_prefilter("onoff", 3)
    with pytest.raises(ValueError, match="0 < lowest < highest"):
        AdapTrans(3, freq_range=(2000.0, 500.0))
    with pytest.raises(ValueError, match="pair"):
        AdapTrans(3, freq_range=500.0)
    with pytest.raises(ValueError, match="dt_ms"):
        AdapTrans(3, dt_ms=0.0)


def test_onoff_synthetic_data_follow_the_formulas():
    from skstrf.datasets import make_strf_dataset

    d = make_strf_dataset(n_stimuli=2, n_times=40, n_freqs=3, n_neurons=2, n_repeats=3, n_lags=3,
                          prefilter="adaptrans", ragged=True, random_state=0)
    assert d.strfs.shape == (2, 2, 3, 3) and d.adaptation_tau_ms.shape == (2, 3)
    # the data's adaptation differs from the model's start (Willmore's constants, w = 0.75)
    tau = willmore_tau_ms(d.freqs)
    assert not np.allclose(d.adaptation_tau_ms[0], tau) and not np.allclose(d.adaptation_weight, 0.75)
    K = default_n_taps(d.adaptation_tau_ms, d.dt_ms)
    for s, length in enumerate(d.lengths):
        x = d.X[s, :length]
        channels = np.zeros((2, length, 3))
        for f in range(3):
            w = d.adaptation_weight[f]
            on, _ = _reference_taps(np.exp(-d.dt_ms / d.adaptation_tau_ms[0, f]), w, K)
            _, off = _reference_taps(np.exp(-d.dt_ms / d.adaptation_tau_ms[1, f]), w, K)
            channels[0, :, f] = np.maximum(_reference_filter(x[:, f], on), 0)
            channels[1, :, f] = np.maximum(_reference_filter(x[:, f], off), 0)
        for n in range(2):
            drive = np.full(length, d.intercepts[n])
            for t in range(length):
                for k in range(min(3, t + 1)):
                    drive[t] += (d.strfs[n, :, :, k] * channels[:, t - k, :]).sum()
            # the generator's filter runs with float32 parameters
            np.testing.assert_allclose(d.rates[s, :length, n], np.maximum(drive, 0), rtol=1e-4,
                                       atol=1e-5 * np.nanmax(d.rates))
        assert np.isnan(d.rates[s, length:]).all()
