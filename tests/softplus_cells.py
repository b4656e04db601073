"""Softplus cells standardised within every stimulus, shared by the LN tests."""

import numpy as np


def standardised_cells(seed: int = 0, S: int = 10, T: int = 200, F: int = 6, N: int = 3, L: int = 4):
    """Stimuli (S, T, F) and responses (S, T, N) of softplus cells with random (F, L) STRFs,
    both standardised within every stimulus (mean 0, SD 1 per band and per neuron), so that
    the statistics of any subset of stimuli (means and scales) equal those of all: a fit on
    some stimuli and one on all then share their units and differ only by the frames they read."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((S, T, F))
    X = (X - X.mean(1, keepdims=True)) / X.std(1, keepdims=True)
    W = rng.standard_normal((N, F, L))
    padded = np.concatenate([np.zeros((S, L - 1, F)), X], axis=1)
    lagged = np.stack([padded[:, L - 1 - lag:L - 1 - lag + T] for lag in range(L)], axis=-1)
    z = np.einsum("stfl,nfl->stn", lagged, W)
    y = np.log1p(np.exp(z - 1.0)) + 0.5 * rng.standard_normal(z.shape)
    return X, (y - y.mean(1, keepdims=True)) / y.std(1, keepdims=True)
