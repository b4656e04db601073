"""A fit that takes no gradient step makes no optimizer until one is used.

The first torch optimizer of a process imports ``torch._dynamo`` (1.3-1.5 s on 2 cores):
three times a default closed-form fit of NS1's size, paid by every script's first fit.
"""

import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from skstrf import STRFRegressor
from skstrf.datasets import make_strf_dataset

BASE = dict(n_lags=4, random_state=0)


@pytest.fixture(scope="module")
def data():
    return make_strf_dataset(n_stimuli=6, n_times=80, n_freqs=5, n_neurons=3, n_repeats=3, n_lags=4,
                             random_state=0)


def test_a_closed_form_fit_in_a_fresh_process_does_not_import_dynamo():
    code = textwrap.dedent("""
        import sys
        from skstrf import STRFRegressor
        from skstrf.datasets import make_strf_dataset
        d = make_strf_dataset(n_stimuli=6, n_times=80, n_freqs=5, n_neurons=3, n_repeats=3, n_lags=4,
                              random_state=0)
        for kernel in ("vanilla", "separable", "parametric"):  # parametric: L-BFGS from a fitted start
            STRFRegressor(kernel=kernel, n_lags=4).fit(d.X, d.y)
        print("torch._dynamo" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr


def test_the_deferred_optimizer_is_made_as_skorch_makes_it(data):
    est = STRFRegressor(**BASE).fit(data.X, data.y)
    net = est.net_
    assert "optimizer_" not in vars(net)
    optimizer = net.optimizer_  # made on first use
    assert isinstance(optimizer, torch.optim.AdamW)
    assert net._optimizers == ["optimizer"]
    group = optimizer.param_groups[0]
    assert group["lr"] == net.lr and group["weight_decay"] == 0.0
    assert {id(p) for p in group["params"]} == {id(p) for p in net.module_.parameters() if p.requires_grad}
    net.set_params(lr=0.0123)  # skorch's virtual parameter reaches it
    assert net.optimizer_.param_groups[0]["lr"] == 0.0123


def test_routed_optimizer_parameters_are_still_checked_by_a_closed_form_fit(data):
    with pytest.raises(ValueError, match=r"routed parameters \{'optimizer__betas': 'abc'\}"):
        STRFRegressor(**BASE, optimizer__betas="abc").fit(data.X, data.y)


def test_a_warm_start_from_a_closed_form_fit_trains(data):
    est = STRFRegressor(**BASE).fit(data.X, data.y)
    before = est.strfs_.copy()
    est.set_params(warm_start=True, solver="gradient", max_epochs=3, lr=1e-2, validation_fraction=None)
    est.fit(data.X, data.y)
    assert len(est.history_) == 1 + 3
    assert est.net_.optimizer_.state  # AdamW's moments exist: it stepped
    assert not np.allclose(est.strfs_, before)


def test_a_pickled_closed_form_fit_makes_its_optimizer_after_loading(data):
    est = STRFRegressor(**BASE).fit(data.X, data.y)
    loaded = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(loaded.predict(data.X), est.predict(data.X))
    assert isinstance(loaded.net_.optimizer_, torch.optim.AdamW)
    assert {id(p) for p in loaded.net_.optimizer_.param_groups[0]["params"]} == {
        id(p) for p in loaded.net_.module_.parameters() if p.requires_grad}


def test_the_parametric_start_s_adam_steps_are_torch_s_adam():
    """kernels.adam_step (the parametric kernel's start, fitted without a torch optimizer)
    takes the steps of torch.optim.Adam: the same parameters after 50 steps on a
    least-squares problem."""
    from skstrf.kernels import adam_step

    g = torch.Generator().manual_seed(0)
    A, b = torch.randn(12, 5, generator=g), torch.randn(12, generator=g)
    ours = [torch.randn(5, generator=g).requires_grad_(True), torch.randn(3, generator=g).requires_grad_(True)]
    theirs = [p.detach().clone().requires_grad_(True) for p in ours]

    def loss(params):
        return (A @ params[0] - b).pow(2).sum() + params[1].pow(4).sum()

    start = float(loss(ours))
    optimizer = torch.optim.Adam(theirs, lr=0.05)
    moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in ours]
    for step in range(1, 51):
        optimizer.zero_grad()
        loss(theirs).backward()
        optimizer.step()
        grads = torch.autograd.grad(loss(ours), ours)
        with torch.no_grad():
            adam_step(ours, grads, moments, step, lr=0.05)
    for mine, reference in zip(ours, theirs):
        torch.testing.assert_close(mine, reference, rtol=1e-6, atol=1e-7)
    assert float(loss(ours)) < 0.5 * start  # and they descend
