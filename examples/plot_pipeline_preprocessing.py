"""
A pipeline with spectrogram preprocessing
=========================================

An STRF is linear in its input, so *how* the spectrogram is scaled matters: a model fed
power values responds to loud moments far more than one fed log-compressed values, and a
fine frequency axis costs parameters. :mod:`skstrf.preprocessing` provides scikit-learn
transformers for the stimulus side, which go in front of :class:`~skstrf.STRFRegressor` in
a :class:`~sklearn.pipeline.Pipeline`. Under cross-validation they are fitted on the
training stimuli of each fold only, and their options can be searched like any other
parameter.

Here the input is a *power* spectrogram. A grid search compares no compression, a
logarithm and a cube root, together with pooling 1, 2 or 4 adjacent bands.

Run it with ``python plot_pipeline_preprocessing.py [--quick] [--output FOLDER]``.
"""

# %%
# Options and data
# ----------------
import argparse
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # the figures are written to files
import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline

from skstrf import STRFRegressor
from skstrf.datasets import make_strf_dataset
from skstrf.plotting import plot_cv_results, plot_strfs
from skstrf.preprocessing import BandPooling, Compression

parser = argparse.ArgumentParser(description="Search spectrogram preprocessing in a pipeline.")
parser.add_argument("--quick", action="store_true", default=os.environ.get("SKSTRF_QUICK") == "1",
                    help="a small dataset and grid (seconds instead of a minute)")
parser.add_argument("--output", type=Path, default=Path("skstrf_output") / "pipeline_preprocessing",
                    help="folder for the figures")
args = parser.parse_args()
args.output.mkdir(parents=True, exist_ok=True)

if args.quick:
    data = make_strf_dataset(n_stimuli=10, n_times=150, n_freqs=16, n_neurons=4, n_lags=8, random_state=0)
    n_lags, n_folds, pool_sizes = 8, 2, [1, 2]
else:
    data = make_strf_dataset(n_neurons=32, random_state=0)
    n_lags, n_folds, pool_sizes = 15, 4, [1, 2, 4]

# The synthetic stimuli are log-level-like: 0 is silence and one unit is about a factor of
# e^2 in power. Undo that compression to get what a power spectrogram would hold.
power = np.expm1(2.0 * data.X)
search_stimuli = np.concatenate([data.train, data.valid])
X, y = power[search_stimuli], data.y[search_stimuli]
X_test, y_test = power[data.test], data.y[data.test]

# %%
# The pipeline and the search
# ---------------------------
# Each step is named, and its parameters are searched as ``<step>__<param>``. A step
# can also be replaced as a whole: ``"passthrough"`` skips it. A list of two grids
# searches the pipeline without compression and with each compression method.
pipe = Pipeline([
    ("compression", Compression()),
    ("pooling", BandPooling()),
    ("strf", STRFRegressor(n_lags=n_lags, random_state=0)),
])
param_grid = [
    {"compression": ["passthrough"], "pooling__pool_size": pool_sizes},
    # log(X + 1), and X ** (1/3)
    {"compression__method": ["log", "power"], "pooling__pool_size": pool_sizes},
]
search = GridSearchCV(pipe, param_grid, cv=KFold(n_folds)).fit(X, y)
print("best:", search.best_params_, f"mean validation cc_norm {search.best_score_:.3f}")
print(f"test cc_norm of the best pipeline: {search.score(X_test, y_test):.3f}")

# %%
# What the search found
# ---------------------
# Compression matters most. On the raw power spectrogram a few loud frames dominate the
# fit and the score collapses; the logarithm and the cube root both restore it. The log
# undoes our expansion exactly, yet the cube root can score as well or a little better:
# the neurons' own output nonlinearity is not linear either, and the search, not the
# reasoning, decides. Pooling bands halves or quarters the number of weights per neuron;
# whether that costs accuracy depends on how sharp the neurons' frequency tuning is.
fig, ax = plot_cv_results(search, "pool_size")
ax.set_ylabel("validation cc_norm (mean \u00b1 std over folds)")
fig.savefig(args.output / "cv_preprocessing.png", dpi=110)
plt.close(fig)

# %%
# The STRFs of the best pipeline live on its pooled frequency axis: each pooled band is
# labelled with the geometric mean of the frequencies it combines.
best = search.best_estimator_
pool = best.named_steps["pooling"].pool_size
starts = np.arange(0, len(data.freqs), pool)
pooled_freqs = np.exp(np.add.reduceat(np.log(data.freqs), starts) / np.diff(np.append(starts, len(data.freqs))))
strf = best.named_steps["strf"]
cells = np.arange(min(4, strf.n_neurons_))
fig, _ = plot_strfs(strf, neurons=cells, dt_ms=data.dt_ms, freqs=pooled_freqs, shared_clim=False,
                    suptitle="Best pipeline: " + ", ".join(f"{k.split('__')[-1]} = {v}"
                                                           for k, v in search.best_params_.items()))
fig.savefig(args.output / "best_pipeline_strfs.png", dpi=110)
plt.close(fig)
print("figures in", args.output)
