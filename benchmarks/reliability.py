"""How often the reliability flag of cc_norm fires, against the true signal power.

Run from the repository root::

    python benchmarks/reliability.py             # 1000 synthetic neurons per row (about 5 min on 1 core)
    python benchmarks/reliability.py --quick     # 100 per row, to check that it runs

Synthetic neurons whose true signal power is known exactly (the pooled variance over the
frames of their noise-free response) are generated in six designs, from NS1's size to the
probe cases (stimuli of two frames, two repeats, a continuous recording with correlated
noise), and :func:`skstrf.metrics.signal_power_reliability` says for each whether its signal
power is distinguishable from zero (the test :func:`skstrf.metrics.cc_norm` uses to flag it).
Each design is first run without signal (true signal power 0): the rate of flags there must be
at least 95 % (the test's level is 2.5 %), and the standard deviation of the estimated signal
power over those neurons is the design's null standard error ``SE0``. The signal is then set
to ``k0 * SE0`` for ``k0 = 1 .. 6`` and 8; the table gives the rate of flags, and also ``k``, the
true signal power over the standard deviation of its estimate at that level (which grows with
the signal), the mean reported standard error (the null one, ``se``) over ``SE0``, and the
bias of the signal power (:func:`skstrf.metrics.signal_power`) over ``SE0``, with in
parentheses that of the power the test uses (less the excess from the noise of the
stimuli's mean rates). Every row draws its neurons from its own fixed seed.

Designs (T frames, R repeats, rates per 5 ms frame):

* ``ns1``: 20 stimuli x 999 frames x 20 repeats; Poisson spikes around 0.05 per frame, each
  repeat smoothed by the 21 ms Hanning window (NS1's preprocessing: correlated frames).
* ``songs``: 20 stimuli of 240-500 frames (NaN-padded), 10 repeats of which 10 % are missing;
  Poisson spikes around 0.05 per frame, not smoothed.
* ``continuous``: one stimulus of 1400 frames x 20 repeats; Gaussian noise correlated over
  frames (AR(1), 0.7) plus a random offset per trial.
* ``few_repeats``: 10 stimuli x 200 frames x 3 repeats; Gaussian noise.
* ``two_repeats``: 20 stimuli x 200 frames x 2 repeats; Gaussian noise correlated over frames
  (AR(1), 0.5).
* ``short``: 40 stimuli x 2 frames x 10 repeats; Gaussian noise (the signal is then mostly the
  stimuli's mean rates).

The noise-free response of a neuron is a random smooth process (AR(1), 0.9, along the frames)
plus a random level per stimulus, scaled to the target signal power; for spiking designs it
is the rate (clipped at 0, smoothed like the spikes), whose exact pooled variance is reported.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from run_all import write_atomic

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from skstrf.metrics import RELIABILITY_ALPHA, signal_power_reliability  # noqa: E402

LEVELS = (0, 1, 2, 3, 4, 5, 6, 8)
HANNING = np.hanning(5)[1:-1]  # the 21 ms window at 5 ms: taps 0.5, 1, 0.5


@dataclass(frozen=True)
class Design:
    name: str
    n_stimuli: int
    n_times: int
    n_repeats: int
    noise: str  # "poisson", "poisson_smoothed", "ar0.7_offsets", "white", "ar0.5"
    ragged: bool = False
    missing: float = 0.0
    batch: int = 50


DESIGNS = (
    Design("ns1", 20, 999, 20, "poisson_smoothed", batch=10),
    Design("songs", 20, 500, 10, "poisson", ragged=True, missing=0.1, batch=25),
    Design("continuous", 1, 1400, 20, "ar0.7_offsets", batch=50),
    Design("few_repeats", 10, 200, 3, "white", batch=200),
    Design("two_repeats", 20, 200, 2, "ar0.5", batch=200),
    Design("short", 40, 2, 10, "white", batch=1000),
)
BASE_RATE = 0.05


def _ar1(rng: np.random.Generator, shape: tuple[int, ...], rho: float) -> np.ndarray:
    """Unit-variance AR(1) processes along axis 1."""
    e = rng.normal(size=shape)
    out = np.empty_like(e)
    out[:, 0] = e[:, 0]
    for t in range(1, shape[1]):
        out[:, t] = rho * out[:, t - 1] + np.sqrt(1.0 - rho**2) * e[:, t]
    return out


def _smooth(a: np.ndarray) -> np.ndarray:
    """The Hanning window along axis 1 (frames), zero-padded at the edges."""
    out = HANNING[1] * a
    out[:, 1:] += HANNING[0] * a[:, :-1]
    out[:, :-1] += HANNING[2] * a[:, 1:]
    return out


def _pooled_var(a: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Variance per neuron (axis 2) over the valid frames of all stimuli, ddof=0."""
    w = valid.astype(float)
    n = w.sum(axis=(0, 1))
    mean = np.where(valid, a, 0.0).sum(axis=(0, 1)) / n
    return (np.where(valid, a - mean, 0.0) ** 2).sum(axis=(0, 1)) / n


def _lengths(design: Design, rng: np.random.Generator) -> np.ndarray:
    if not design.ragged:
        return np.full(design.n_stimuli, design.n_times)
    return rng.integers(240, design.n_times + 1, size=design.n_stimuli)


def simulate(design: Design, amplitude: float, n_neurons: int, rng: np.random.Generator
             ) -> tuple[np.ndarray, np.ndarray]:
    """Responses (S, T, N, R) of ``n_neurons`` neurons and their true signal powers (N,)."""
    S, T, R = design.n_stimuli, design.n_times, design.n_repeats
    lengths = _lengths(design, rng)
    valid = np.arange(T)[None, :, None] < lengths[:, None, None]  # (S, T, 1)
    valid = np.broadcast_to(valid, (S, T, n_neurons))
    shape = _ar1(rng, (S, T, n_neurons), 0.9) + rng.normal(size=(S, 1, n_neurons))
    shape = (shape - np.where(valid, shape, 0).sum((0, 1)) / valid.sum((0, 1)))
    shape /= np.sqrt(_pooled_var(shape, valid))  # pooled mean 0, variance 1 over valid frames
    if design.noise.startswith("poisson"):
        smoothed = design.noise == "poisson_smoothed"
        # The rate is scaled so that its smoothed version has the target signal power.
        gain = HANNING.sum() if smoothed else 1.0  # about, for a slow rate; the truth is exact
        rate = np.clip(BASE_RATE + amplitude / gain * shape, 0.0, None)
        counts = rng.poisson(np.broadcast_to(rate[..., None], (S, T, n_neurons, R))).astype(float)
        if smoothed:
            rate = _smooth(rate)
            counts = _smooth(counts)
        truth = _pooled_var(rate, valid)
        y = counts
    else:
        signal = amplitude * shape
        truth = _pooled_var(signal, valid)
        if design.noise == "white":
            noise = rng.normal(size=(S, T, n_neurons, R))
        else:
            rho = 0.7 if design.noise.startswith("ar0.7") else 0.5
            noise = _ar1(rng, (S, T, n_neurons * R), rho).reshape(S, T, n_neurons, R)
            if design.noise.endswith("offsets"):
                noise += 0.3 * rng.normal(size=(1, 1, n_neurons, R))
        y = signal[..., None] + noise
    y[~valid] = np.nan
    if design.missing:
        drop = rng.random((S, 1, n_neurons, R)) < design.missing
        drop[..., :2] = False  # every stimulus keeps two repeats
        y = np.where(drop, np.nan, y)
    return y, truth


def run_level(design: Design, amplitude: float, n_neurons: int, seed: int) -> dict:
    """Flags, estimates and truths of ``n_neurons`` neurons at one signal amplitude."""
    rng = np.random.default_rng(seed)
    flags, estimates, errors, truths, raw = [], [], [], [], []
    for start in range(0, n_neurons, design.batch):
        y, truth = simulate(design, amplitude, min(design.batch, n_neurons - start), rng)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rel = signal_power_reliability(y)
        flags.append(~rel.reliable)
        estimates.append(rel.signal_power - rel.mean_noise)
        raw.append(rel.signal_power)
        errors.append(rel.standard_error)
        truths.append(truth)
    return {k: np.concatenate(v) for k, v in
            (("flag", flags), ("estimate", estimates), ("se", errors), ("truth", truths), ("raw", raw))}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--neurons", type=int, default=1000, help="synthetic neurons per row")
    parser.add_argument("--quick", action="store_true", help="100 neurons per row")
    parser.add_argument("--designs", nargs="*", default=[d.name for d in DESIGNS])
    parser.add_argument("--markdown", type=Path, default=None, help="also write the table to this file")
    args = parser.parse_args(argv)
    n = 100 if args.quick else args.neurons
    lines: list[str] = []

    def emit(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    emit(f"Command: `python benchmarks/reliability.py{' --quick' if args.quick else ''}`; "
         f"reliability flag of cc_norm: one-sided test at level {RELIABILITY_ALPHA}, "
         f"{n} synthetic neurons per row. Load average (1/5/15 min) before: "
         + ", ".join(f"{v:.2f}" for v in os.getloadavg()) + ".")
    emit()
    emit("| design | k0 = SP / SE0 | k = SP / sd(SP estimate) | flagged | mean reported SE / SE0 "
         "| bias of SP / SE0 (corrected) | seed |")
    emit("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    seconds = []
    for index, design in enumerate(DESIGNS):
        if design.name not in args.designs:
            continue
        start = time.perf_counter()
        seed = 1000 * index
        null = run_level(design, 0.0, n, seed)
        se0 = float(np.std(null["estimate"]))
        for level in LEVELS:
            res = null if level == 0 else run_level(design, np.sqrt(level * se0), n, seed + level)
            spread = float(np.std(res["estimate"]))
            k0 = float(np.mean(res["truth"])) / se0
            k = float(np.mean(res["truth"])) / spread
            ratio = float(np.sqrt(np.mean(res["se"] ** 2))) / se0
            bias = float(np.mean(res["raw"] - res["truth"])) / se0
            corrected = float(np.mean(res["estimate"] - res["truth"])) / se0
            emit(f"| {design.name} | {k0:.2f} | {k:.2f} | {np.mean(res['flag']):.1%} | {ratio:.2f} "
                 f"| {bias:+.2f} ({corrected:+.2f}) | {seed + level} |")
        seconds.append(f"{design.name} {time.perf_counter() - start:.0f} s")
    emit()
    emit("Seconds per design (shared machine, rough): " + ", ".join(seconds) + ". Load average after: "
         + ", ".join(f"{v:.2f}" for v in os.getloadavg()) + ".")
    if args.markdown is not None:
        write_atomic(args.markdown, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
