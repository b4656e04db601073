"""
Comparing three STRF parameterisations
======================================

The analysis of the seed notebook: the same linear STRF model, fitted on the same stimuli
with three kernel parameterisations (a free "vanilla" kernel, a separable kernel whose
rank each neuron chooses by cross-validation, and a sum of 24 Gaussians), each with
skstrf's defaults and with the seed's method
(AdamW from a random start for 100 epochs), scored on the same held-out stimuli.

The fits, the table and the first three figures come from the functions behind the
``skstrf compare`` command (:func:`skstrf.compare.compare_kernels`,
:func:`skstrf.compare.format_table` and :func:`skstrf.compare.save_figures`), so this
script and the command give the same numbers. On the synthetic dataset the true STRFs
are known, and the last figures put them next to the fitted ones.

Run it with ``python plot_compare_kernels.py [--quick] [--output FOLDER]``.
"""

# %%
# Options and data
# ----------------
# ``--quick`` (or ``SKSTRF_QUICK=1``) shrinks everything so that the script runs in
# seconds; the full run takes about a minute on two CPU cores.
import argparse
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # the figures are written to files
import matplotlib.pyplot as plt
import numpy as np

from skstrf import STRFRegressor
from skstrf.compare import compare_kernels, default_variants, format_pairs, format_table, save_figures
from skstrf.datasets import make_strf_dataset
from skstrf.plotting import plot_prediction, plot_strfs

parser = argparse.ArgumentParser(description="Compare the vanilla, separable and parametric kernels.")
parser.add_argument("--quick", action="store_true", default=os.environ.get("SKSTRF_QUICK") == "1",
                    help="a small dataset and few epochs (seconds instead of a minute)")
parser.add_argument("--output", type=Path, default=Path("skstrf_output") / "compare_kernels",
                    help="folder for the figures")
args = parser.parse_args()
args.output.mkdir(parents=True, exist_ok=True)

# 20 stimuli of 999 frames (5 ms) x 34 bands, 32 neurons with 20 repeats each: NS1's shape.
if args.quick:
    shape, n_lags, max_epochs = dict(n_stimuli=10, n_times=150, n_freqs=16, n_neurons=4, n_lags=8), 8, 3
else:
    shape, n_lags, max_epochs = dict(n_neurons=32), 15, 100
data = make_strf_dataset(**shape, random_state=0)
n_times = data.X.shape[1]
print(f"X {data.X.shape}, y {data.y.shape}; split {len(data.train)}/{len(data.valid)}/{len(data.test)} "
      "stimuli (train/validation/test)")

# %%
# Six fits on the seed's split
# ----------------------------
# Stimuli 0-16 fit, 17-19 test. The "seed method" rows reproduce the notebook's training
# (stimuli 0-13, best epoch on 14-16, no penalty); the others use skstrf's defaults:
# closed-form ridge (vanilla) and alternating least squares (separable) with the penalty
# cross-validated over stimuli 0-16, and gradient descent from the cross-validated ridge
# STRF of stimuli 0-13 with early stopping on 14-16 (parametric).
result = compare_kernels(
    data.X, data.y, train=data.train, valid=data.valid, test=data.test,
    variants=default_variants(max_epochs=max_epochs),
    estimator=STRFRegressor(n_lags=n_lags, rank=1, random_state=0),  # rank=1: the classic separable STRF
)
print()
print(format_table(result.rows))
print()
print(format_pairs(result.pairs))

# %%
# The comparison's figures
# ------------------------
# The same three files as ``skstrf compare``: training curves, the per-cell test
# ``cc_norm`` of every pair of models against each other, and the STRFs of the cell that
# all models fit best.
for path in save_figures(result, args.output, dt_ms=data.dt_ms, freqs=data.freqs):
    print("wrote", path)

# %%
# Fitted STRFs against the truth
# ------------------------------
# The synthetic cells are of three kinds: separable, excitation with delayed inhibition,
# and frequency sweeps. For one cell of each kind, the true STRF is drawn next to the
# three kernels fitted with skstrf's default solvers, each panel on its own colour scale
# (the kernels are in the data's units, the truth in the simulation's).
kernels = ["vanilla", "separable", "parametric"]
cells = [int(np.flatnonzero(data.kind == kind)[0]) for kind in np.unique(data.kind)]
panels, titles = [], []
for cell in cells:
    panels.append(data.strfs[cell])
    titles.append(f"cell {cell} ({data.kind[cell].replace('_', ' ')})\ntrue STRF")
    for k in kernels:
        panels.append(result.estimators[k].strfs_[cell])
        titles.append(f"{k}\ntest cc_norm {result.test_cc_norm[k][cell]:.2f}")
fig, _ = plot_strfs(panels, titles=titles, dt_ms=data.dt_ms, freqs=data.freqs, ncols=4,
                    shared_clim=False, colorbar=False,
                    suptitle="True and fitted STRFs, each panel on its own scale (red excitatory, "
                             "blue inhibitory, white 0)")
fig.savefig(args.output / "true_vs_fitted.png", dpi=110)
plt.close(fig)

# %%
# A prediction
# ------------
# The best cell's response to the first test stimulus: the 20 single trials as a raster,
# their mean (the PSTH the model fits) and the vanilla model's prediction.
cell, stimulus = result.best_cell, int(data.test[0])
fig, _ = plot_prediction(result.estimators["vanilla"], data.X, data.y, neuron=cell, stimulus=stimulus,
                         dt_ms=data.dt_ms, freqs=data.freqs, ylabel="spikes per 5 ms",
                         time_range=(0, min(2000, n_times * data.dt_ms)))
fig.savefig(args.output / "prediction.png", dpi=110)
plt.close(fig)
print("figures in", args.output)
