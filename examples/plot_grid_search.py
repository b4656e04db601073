"""
Searching kernels and penalties with stimulus-wise cross-validation
===================================================================

:class:`~sklearn.model_selection.GridSearchCV` tunes an :class:`~skstrf.STRFRegressor`
like any scikit-learn regressor. Because the stimulus is the first axis of ``X`` and
``y``, a plain :class:`~sklearn.model_selection.KFold` splits *stimuli*: every fold holds
out whole stimuli, with all their frames and repeats, and the score (the estimator's own
``score``, the mean ``cc_norm`` over neurons) measures how well each candidate predicts the
responses to sounds it has not heard.

Here the search covers the kernel and a single L2 penalty shared by all neurons; the
last test stimuli stay untouched until the best candidate is chosen.

Run it with ``python plot_grid_search.py [--quick] [--output FOLDER]``.
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

from skstrf import STRFRegressor
from skstrf.datasets import make_strf_dataset
from skstrf.plotting import plot_cv_results, plot_strfs

parser = argparse.ArgumentParser(description="Grid search over STRF kernels and penalties.")
parser.add_argument("--quick", action="store_true", default=os.environ.get("SKSTRF_QUICK") == "1",
                    help="a small dataset and grid (seconds instead of a minute)")
parser.add_argument("--output", type=Path, default=Path("skstrf_output") / "grid_search",
                    help="folder for the figures")
args = parser.parse_args()
args.output.mkdir(parents=True, exist_ok=True)

if args.quick:
    data = make_strf_dataset(n_stimuli=10, n_times=150, n_freqs=16, n_neurons=4, n_lags=8, random_state=0)
    n_lags, n_folds, alphas, n_gaussians = 8, 2, [1e-2, 1.0], [4]
else:
    data = make_strf_dataset(n_neurons=32, random_state=0)
    n_lags, n_folds, alphas, n_gaussians = 15, 4, [1e-3, 1e-2, 1e-1, 1.0, 10.0], [4, 8]
# Stimuli 0-16 are searched over; stimuli 17-19 are the final test set.
search_stimuli = np.concatenate([data.train, data.valid])
X, y = data.X[search_stimuli], data.y[search_stimuli]
X_test, y_test = data.X[data.test], data.y[data.test]
print(f"search on {len(search_stimuli)} stimuli, {n_folds} folds; test on {len(data.test)} stimuli")

# %%
# The search
# ----------
# A list of grids: the closed-form kernels with five penalties each, and the Gaussian
# kernel (gradient-trained) with two numbers of Gaussians. ``alpha`` is a single number
# here, so each fit applies it to every neuron; with ``alpha=None`` (the default) the
# closed-form solvers would pick a penalty per neuron by their own 5-fold cross-validation
# over the training stimuli (``cv=5``).
param_grid = [
    {"kernel": ["vanilla", "separable"], "alpha": alphas},
    {"kernel": ["parametric"], "n_gaussians": n_gaussians},
]
search = GridSearchCV(
    STRFRegressor(n_lags=n_lags, rank=1, max_epochs=5 if args.quick else 100, random_state=0),
    param_grid,
    cv=KFold(n_folds),  # folds of whole stimuli: KFold splits axis 0
)
search.fit(X, y)
print("best:", search.best_params_, f"mean validation cc_norm {search.best_score_:.3f}")

# %%
# The penalty curves, and every candidate
# ---------------------------------------
# Mean +- standard deviation of the validation ``cc_norm`` over the folds, with the score
# of each fold as a dot. Penalties compare within a kernel only (the same ``alpha``
# shrinks 511 free weights and 50 separable ones differently).
fig, ax = plot_cv_results(search, "alpha")
ax.set_ylabel("validation cc_norm (mean \u00b1 std over folds)")
fig.savefig(args.output / "cv_alpha.png", dpi=110)
plt.close(fig)

fig, ax = plot_cv_results(search)
ax.set_xlabel("validation cc_norm (mean \u00b1 std over folds)")
fig.savefig(args.output / "cv_candidates.png", dpi=110)
plt.close(fig)

# %%
# The chosen model on the test stimuli
# ------------------------------------
# ``GridSearchCV`` refits the best candidate on all search stimuli; its STRFs are drawn next
# to the true ones of the same cells.
best = search.best_estimator_
print(f"test cc_norm of the best model: {best.score(X_test, y_test):.3f}")
cells = np.arange(min(4, data.y.shape[2]))
panels = [k for cell in cells for k in (data.strfs[cell], best.strfs_[cell])]
titles = [t for cell in cells for t in (f"cell {cell}: true", f"cell {cell}: {best.kernel}")]
fig, _ = plot_strfs(panels, titles=titles, dt_ms=data.dt_ms, freqs=data.freqs, ncols=4, shared_clim=False,
                    colorbar=False, suptitle="True STRFs and those of the selected model (each on its own scale)")
fig.savefig(args.output / "best_strfs.png", dpi=110)
plt.close(fig)
print("figures in", args.output)
