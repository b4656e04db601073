"""
Fitting your own recordings from an HDF5 file
=============================================

Recordings rarely come as one tidy array: stimuli have different lengths, and some
neurons miss some trials. This example starts from per-stimulus arrays like those an
experiment produces, stacks them into skstrf's data layout (NaN end-padding for shorter
stimuli, NaN for missing trials), stores them with their metadata in one file with
:func:`skstrf.datasets.save_dataset`, reads the file back with
:func:`skstrf.datasets.load_dataset`, and fits and scores STRFs on it. Finally it runs the
main job, ``skstrf compare --dataset <file>``, on the same file.

The "recordings" here are synthetic (so that the script runs anywhere), but from the
stacking step on, nothing depends on where the arrays came from.

Run it with ``python plot_own_data_hdf5.py [--quick] [--output FOLDER]``.
"""

# %%
# Options
# -------
import argparse
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # the figures are written to files
import matplotlib.pyplot as plt
import numpy as np

from skstrf import STRFRegressor
from skstrf.cli import main as skstrf_command
from skstrf.datasets import load_dataset, make_strf_dataset, save_dataset
from skstrf.plotting import plot_prediction, plot_strfs

parser = argparse.ArgumentParser(description="Save recordings to an skstrf HDF5 file, load them and fit STRFs.")
parser.add_argument("--quick", action="store_true", default=os.environ.get("SKSTRF_QUICK") == "1",
                    help="a small dataset (seconds instead of a minute)")
parser.add_argument("--output", type=Path, default=Path("skstrf_output") / "own_data_hdf5",
                    help="folder for the HDF5 file and the figures")
args = parser.parse_args()
args.output.mkdir(parents=True, exist_ok=True)

# %%
# Recordings as they come
# -----------------------
# One spectrogram of shape (n_times_s, n_freqs) per stimulus, and one response array of
# shape (n_times_s, n_neurons, n_repeats) per stimulus, in the same 5 ms bins. Stimulus
# lengths differ, and 5 % of the (stimulus, neuron, trial) recordings are missing (all
# NaN). We simulate them from the synthetic generator.
shape = dict(n_stimuli=10, n_times=150, n_freqs=16, n_neurons=4, n_lags=8) if args.quick else dict(n_neurons=32)
n_lags = shape.get("n_lags", 15)
sim = make_strf_dataset(**shape, ragged=True, missing_repeats=0.05, random_state=1)
spectrograms = [sim.X[s, :n] for s, n in enumerate(sim.lengths)]
responses = [sim.y[s, :n] for s, n in enumerate(sim.lengths)]
print("stimulus lengths (frames):", [len(x) for x in spectrograms])

# %%
# Stack them into the data layout
# -------------------------------
# One array per side, padded at the end with NaN frames to the longest stimulus. Missing
# trials are already NaN over their whole stimulus, which is what skstrf expects.
def stack(stimuli, responses):
    """Pad lists of (n_times_s, n_freqs) and (n_times_s, n_neurons, n_repeats) arrays."""
    n_times = max(len(x) for x in stimuli)
    X = np.full((len(stimuli), n_times, stimuli[0].shape[1]), np.nan)
    y = np.full((len(stimuli), n_times) + responses[0].shape[1:], np.nan)
    for s, (x, r) in enumerate(zip(stimuli, responses)):
        X[s, : len(x)] = x
        y[s, : len(r)] = r
    return X, y


X, y = stack(spectrograms, responses)
print(f"X {X.shape}, y {y.shape}")

# %%
# Save, with the metadata
# -----------------------
# The file stores each stimulus at its own length (padding costs no space), the frame
# duration, the band frequencies, names, the train/validation/test split and any free
# metadata. Keep it with the data: it is what ``skstrf compare --dataset`` reads.
n = len(X)
n_test = n_valid = max(1, round(0.15 * n))
path = save_dataset(
    args.output / "my_recordings.h5", X, y,
    dt_ms=5.0,
    freqs=sim.freqs,
    stimulus_names=[f"sound{s:02d}" for s in range(n)],
    neuron_names=[f"unit{i:03d}" for i in range(y.shape[2])],
    splits={"train": np.arange(n - n_valid - n_test), "valid": np.arange(n - n_valid - n_test, n - n_test),
            "test": np.arange(n - n_test, n)},
    compression="gzip",
    animal="ferret F1", area="A1", spike_sorting="kilosort 2.5",
)
print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")

# %%
# Load and fit
# ------------
# ``load_dataset`` gives back the padded arrays and everything stored with them.
data = load_dataset(path)
print("metadata:", data.metadata)
train = np.concatenate([data.splits["train"], data.splits["valid"]])  # validation stimuli last
test = data.splits["test"]
est = STRFRegressor(n_lags=n_lags, random_state=0).fit(data.X[train], data.y[train])
print(f"test cc_norm: {est.score(data.X[test], data.y[test]):.3f}")

# %%
# The fitted STRFs of the first four units, with their names and frequencies from the
# file; and the prediction of the shortest test stimulus (its padding is left out).
units = np.arange(min(4, est.n_neurons_))
fig, _ = plot_strfs(est, neurons=units, titles=[str(data.neuron_names[i]) for i in units],
                    dt_ms=data.dt_ms, freqs=data.freqs, shared_clim=False)
fig.savefig(args.output / "strfs.png", dpi=110)
plt.close(fig)

shortest = int(test[np.argmin(data.lengths[test])])
fig, axes = plot_prediction(est, data.X, data.y, neuron=0, stimulus=shortest, dt_ms=data.dt_ms,
                            freqs=data.freqs, ylabel="spikes per 5 ms")
axes[-1].set_title(f"{data.neuron_names[0]}, {data.stimulus_names[shortest]} "
                   f"({data.lengths[shortest]} of {data.X.shape[1]} frames)", fontsize=10, loc="left")
fig.savefig(args.output / "prediction.png", dpi=110)
plt.close(fig)

# %%
# The main job on your file
# -------------------------
# ``skstrf compare`` reads the same file and uses its stored split; this is the command
# line ``skstrf compare --dataset my_recordings.h5 --no-seed-method --output ...``
# (quick mode compares two kernels only).
kernels = ["vanilla", "separable"] if args.quick else ["vanilla", "separable", "parametric"]
skstrf_command(["compare", "--dataset", str(path), "--no-seed-method", "--n-lags", str(n_lags),
                "--kernels", *kernels, "--output", str(args.output / "compare")])
print("figures in", args.output)
