"""Test configuration shared by all test modules."""

import warnings

import numpy as np
import pytest
import torch

from skstrf.datasets import make_strf_dataset

# The suite's problems are small: one torch thread is as fast as two on a quiet 2-core
# machine, and avoids oversubscription when pytest-xdist's workers (one per core, see
# pyproject.toml), loky/dask workers or other jobs share the cores.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _forget_shown_warnings(monkeypatch):
    """Each test starts with no warning shown: skstrf remembers the warnings it showed once
    per line of the user's code for as long as the process lives (skstrf._warnings)."""
    import skstrf._warnings

    monkeypatch.setattr(skstrf._warnings, "_SHOWN", set())


@pytest.fixture(scope="module")
def data():
    """A small synthetic dataset (8 stimuli x 200 frames x 12 bands, 4 neurons, 6 repeats)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make_strf_dataset(n_stimuli=8, n_times=200, n_freqs=12, n_neurons=4, n_repeats=6,
                                 n_lags=6, random_state=0)


def _strf_correlation(fitted, true):
    """Per-neuron Pearson correlation of fitted and true STRFs (any shape after the neuron axis)."""
    a = np.reshape(fitted, (len(fitted), -1))
    b = np.reshape(true, (len(true), -1))
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    return (a * b).sum(1) / np.sqrt((a**2).sum(1) * (b**2).sum(1))


@pytest.fixture(scope="session")
def strf_corr():
    """The function ``strf_corr(fitted, true) -> (n_neurons,)`` correlations, one copy for all tests."""
    return _strf_correlation
