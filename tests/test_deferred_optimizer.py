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
        for kernel in ("vanilla", "separable"):
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
