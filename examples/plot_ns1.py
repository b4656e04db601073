"""
NS1: STRFs of ferret auditory cortex
====================================

NS1 (Harper et al. 2016) holds the responses of 119 units of ferret primary auditory cortex
to 20 natural sounds of 5 s, each presented 20 times, as 5 ms spectrograms of 34 bands.
This example fits the three kernels with skstrf's default solvers on the seed notebook's
split (stimuli 0-13 train, 14-16 validation, 17-19 test), sets the results next to the
seed's, and draws the STRFs and a prediction of the best units.

The data is not shipped with skstrf. If it is not on disk yet, the script says how to get
it and stops: run it with ``--download`` to fetch the files (about 160 MB, once; they are
kept in ``$SKSTRF_DATA/ns1`` or ``~/skstrf_data/ns1``), or place them there by hand.
``skstrf compare --dataset ns1`` runs the complete comparison on NS1, the seed's gradient
fits included.

Run it with ``python plot_ns1.py [--download] [--quick] [--output FOLDER]``.
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

from skstrf import STRFRegressor
from skstrf.compare import compare_kernels, default_variants, format_table, save_figures
from skstrf.datasets import fetch_ns1
from skstrf.plotting import plot_prediction, plot_strfs

parser = argparse.ArgumentParser(description="Fit STRFs to NS1 (ferret A1, natural sounds).")
parser.add_argument("--download", action="store_true", help="download NS1 if it is not on disk (about 160 MB)")
parser.add_argument("--quick", action="store_true", default=os.environ.get("SKSTRF_QUICK") == "1",
                    help="fit the first 10 units only")
parser.add_argument("--output", type=Path, default=Path("skstrf_output") / "ns1", help="folder for the figures")
args = parser.parse_args()

try:
    ns1 = fetch_ns1(download_if_missing=args.download)
except OSError as exc:  # files missing (FileNotFoundError) or a failed download
    print(f"NS1 is not available here, so this example stops.\n\n{exc}\n\n"
          "To download it, run this script with --download, or call "
          "skstrf.datasets.fetch_ns1() once (it needs internet access).")
    raise SystemExit(0)

args.output.mkdir(parents=True, exist_ok=True)
X, y = ns1.X, ns1.y[:, :, :10] if args.quick else ns1.y
print(f"NS1: X {X.shape}, y {y.shape} (stimuli, frames, units, repeats); "
      f"split {len(ns1.train)}/{len(ns1.valid)}/{len(ns1.test)}")

# %%
# Three kernels on the seed's split
# ---------------------------------
# The same function as ``skstrf compare``, with skstrf's default solvers only: closed-form
# ridge (vanilla), alternating least squares (separable), and gradient descent from the
# ridge STRF (parametric). 15 lags of 5 ms, as in the seed.
n_lags = min(15, X.shape[1])  # the tests run this script on a miniature NS1 of 6 frames
result = compare_kernels(X, y, train=ns1.train, valid=ns1.valid, test=ns1.test,
                         variants=default_variants(seed_method=False),
                         estimator=STRFRegressor(n_lags=n_lags, random_state=0))
print()
print(format_table(result.rows))

# The seed notebook's reported results on NS1 (deepSTRF, 100 epochs of AdamW on a GPU):
seed = {"vanilla": 0.609, "separable": 0.184, "parametric": 0.445}
print("\nmean test cc_norm    skstrf    seed notebook")
for row in result.rows:
    print(f"  {row['name']:<17s} {row['test_cc_norm']:>7.3f}    {seed[row['kernel']]:>7.3f}")
for path in save_figures(result, args.output, dt_ms=ns1.dt_ms, freqs=ns1.freqs):
    print("wrote", path)

# %%
# The best units
# --------------
# The vanilla STRFs of the eight units with the highest test ``cc_norm``, each on its own
# colour scale, and the prediction of the best one on the first test stimulus. NS1's
# responses are smoothed spike counts (a 21 ms Hanning window), so the single repeats are
# drawn as lines.
vanilla = result.estimators["vanilla"]
scores = result.test_cc_norm["vanilla"]
best = np.argsort(np.where(np.isfinite(scores), scores, -np.inf))[::-1][:8]
fig, _ = plot_strfs(vanilla, neurons=best, dt_ms=ns1.dt_ms, freqs=ns1.freqs, shared_clim=False,
                    titles=[f"{ns1.neuron_names[i]}: cc_norm {scores[i]:.2f}" for i in best])
fig.savefig(args.output / "best_units_strfs.png", dpi=110)
plt.close(fig)

fig, _ = plot_prediction(vanilla, X, y, neuron=int(best[0]), stimulus=int(ns1.test[0]), dt_ms=ns1.dt_ms,
                         freqs=ns1.freqs, ylabel="smoothed spike count per 5 ms",
                         time_range=(0, min(2000, X.shape[1] * ns1.dt_ms)))
fig.savefig(args.output / "best_unit_prediction.png", dpi=110)
plt.close(fig)
print("figures in", args.output)
