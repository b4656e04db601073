"""How far skstrf's statistics gradient step is from the machine's limit at NS1 size.

Run from the repository root::

    python benchmarks/gradient_step.py                 # NS1 size: 17 training stimuli, 34 bands x 15 lags, 119 neurons
    python benchmarks/gradient_step.py --quick         # tiny sizes, to check that it runs
    python benchmarks/gradient_step.py --deepstrf-epoch-s 0.125   # also the speed-up over deepSTRF's epoch

A linear least-squares model trained by gradient (vanilla kernel, random start, no penalty,
no validation, one stimulus per step: the "random start" rows of ``bench_vs_deepstrf.py``)
makes one step per training stimulus, whose essential work is one product of the stimulus's
(D+1) x (D+1) Gram with the (D+1) x n_neurons kernels: ``2 (D+1)^2 n_neurons`` FLOP. The
table gives the time per step of

* skorch's per-batch loop, which a fit uses when one of its callbacks listens to training
  batches (and which every statistics fit used before ``STRFNet.run_statistics_epoch``);
* ``STRFNet``'s statistics loop, the default;
* the same loop with float32 statistics (``STRFNet.statistics_dtype``; not the default, see
  its documentation for why),

against the step's product alone (the same shapes, timed alone) and the FLOP limit: the
FLOP count at the dense matmul throughput of a 2048 x 2048 product in the same dtype, both
measured in the same run. The time per step is the median epoch's time over its n_train
steps (each fit's first epoch and its set-up left out; the fits of the three loops
alternate, ``--repeats`` rounds), CPU time of the process over all its threads beside the
wall time.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _common import (HEADLINE_SEED, finish_section, machine_info, markdown_table, matmul_gflops, ns1_like,
                     set_threads, timed)
from skorch.callbacks import Callback

from skstrf import STRFRegressor
from skstrf._net import STRFNet

N_LAGS = 15


class _BatchListener(Callback):
    """Listens to training batches, which makes a statistics fit run skorch's loop."""

    def on_batch_end(self, net, **kwargs):
        pass


def product_ms(n_stimuli: int, d: int, n_neurons: int, dtype: torch.dtype, repeats: int) -> dict[str, float]:
    """Time of the step's product alone (``addmm(cross, gram, theta)``), one per stimulus in
    turn as training takes them, ms per product (wall and CPU)."""
    gen = torch.Generator().manual_seed(0)
    gram = torch.randn(n_stimuli, d, d, dtype=dtype, generator=gen)
    cross = torch.randn(n_stimuli, d, n_neurons, dtype=dtype, generator=gen)
    theta = torch.randn(d, n_neurons, dtype=dtype, generator=gen)

    def epoch():
        for s in range(n_stimuli):
            torch.addmm(cross[s], gram[s], theta, beta=-1.0)

    epoch()
    timing, _ = timed(lambda: [epoch() for _ in range(5)], repeats)
    steps = 5 * n_stimuli
    return {"ms": 1e3 * timing["seconds"] / steps, "cpu_ms": 1e3 * timing["cpu_seconds"] / steps}


class _EpochClock(Callback):
    """Wall and CPU time of each epoch (epoch events only: the fit's loop is not changed)."""

    def initialize(self):
        self.wall_, self.cpu_ = [], []
        return self

    def on_epoch_begin(self, net, **kwargs):
        self._start = (time.perf_counter(), time.process_time())

    def on_epoch_end(self, net, **kwargs):
        self.wall_.append(time.perf_counter() - self._start[0])
        self.cpu_.append(time.process_time() - self._start[1])


def step_ms(X: np.ndarray, y: np.ndarray, epochs: int, repeats: int,
            configs: dict[str, tuple[bool, torch.dtype]]) -> dict[str, dict[str, float]]:
    """ms per training step of gradient fits (see the module docstring), wall and CPU.

    ``configs`` maps a name to (skorch's loop?, statistics dtype). The fits of all configs
    alternate, ``repeats`` rounds, so that a change of the machine's load touches them alike;
    each config's time per step is the median over all its epochs but each fit's first.
    """
    clocks: dict[str, list[_EpochClock]] = {name: [] for name in configs}
    losses = {}
    default = STRFNet.statistics_dtype
    try:
        for _ in range(repeats):
            for name, (skorch_loop, dtype) in configs.items():
                STRFNet.statistics_dtype = dtype
                clock = _EpochClock()
                est = STRFRegressor(solver="gradient", init="random", n_lags=N_LAGS, lr=1e-3, batch_size=1,
                                    max_epochs=epochs + 1, patience=None, validation_fraction=None, cv=None,
                                    alpha=0.0, random_state=0,
                                    callbacks=[clock, _BatchListener()] if skorch_loop else [clock]).fit(X, y)
                clocks[name].append(clock)
                losses[name] = float(est.history_[-1, "train_loss"])
    finally:
        STRFNet.statistics_dtype = default
    steps = len(est.train_stimuli_)
    return {name: {"ms": 1e3 * float(np.median([w for c in cs for w in c.wall_[1:]])) / steps,
                   "cpu_ms": 1e3 * float(np.median([w for c in cs for w in c.cpu_[1:]])) / steps,
                   "train_loss": losses[name]}
            for name, cs in clocks.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=HEADLINE_SEED)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20, help="timed epochs per fit (beyond the first)")
    parser.add_argument("--deepstrf-epoch-s", type=float, default=None,
                        help="deepSTRF's training s/epoch at this size (the vs-deepSTRF table), for the speed-up")
    parser.add_argument("--quick", action="store_true", help="tiny data, 1 repeat, 2 epochs")
    parser.add_argument("--markdown", help="write the section to this file")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    sizes = (dict(n_stimuli=6, n_times=200, n_freqs=10, n_neurons=8) if args.quick else {})
    repeats, epochs = (1, 2) if args.quick else (args.repeats, args.epochs)
    before = machine_info()

    data = ns1_like(random_state=args.seed, **sizes)
    fit_idx = np.concatenate([data.train, data.valid])  # the 17 stimuli deepSTRF trains on
    X, y = data.X[fit_idx], data.y[fit_idx]
    n_train, F, N = len(fit_idx), X.shape[2], y.shape[2]
    d = F * N_LAGS + 1
    flop = 2.0 * d * d * N

    default = str(STRFNet.statistics_dtype).removeprefix("torch.")
    configs = {("skorch's per-batch loop", "float64"): (True, torch.float64),
               ("STRFNet statistics loop", "float64"): (False, torch.float64),
               ("STRFNet statistics loop", "float32"): (False, torch.float32)}
    steps = step_ms(X, y, epochs, repeats, configs)
    rows = []
    for dtype in (torch.float64, torch.float32):
        name = str(dtype).removeprefix("torch.")
        rate = matmul_gflops(dtype, repeats=1 if args.quick else 3)
        rows += [{"what": what + (" (default)" if name == default and "STRFNet" in what else ""),
                  "dtype": name, **timing} for (what, dt), timing in steps.items() if dt == name]
        rows.append({"what": "the step's product alone", "dtype": name, **product_ms(n_train, d, N, dtype, repeats)})
        rows.append({"what": f"FLOP limit ({rate:.0f} GFLOP/s)", "dtype": name, "ms": 1e3 * flop / (rate * 1e9)})
    limit64 = next(r["ms"] for r in rows if r["dtype"] == "float64" and r["what"].startswith("FLOP"))
    for row in rows:
        row["epoch_s"] = row["ms"] * n_train / 1e3
        row["gflops"] = flop / (row["ms"] * 1e6)
        row["over_limit"] = row["ms"] / limit64
        if args.deepstrf_epoch_s:
            row["speedup"] = args.deepstrf_epoch_s / row["epoch_s"]
    after = machine_info()

    columns = [("what", "step", ""), ("dtype", "dtype", ""), ("ms", "ms/step (wall)", ".3f"),
               ("cpu_ms", "ms/step (CPU)", ".3f"), ("epoch_s", f"s/epoch ({n_train} steps)", ".4f"),
               ("gflops", "achieved GFLOP/s", ".1f"), ("over_limit", "x float64 FLOP limit", ".2f")]
    if args.deepstrf_epoch_s:
        columns.append(("speedup", f"speed-up vs deepSTRF's {args.deepstrf_epoch_s:g} s/epoch", ".1f"))
    title = (f"{n_train} training stimuli, {F} bands x {N_LAGS} lags = {d - 1} weights + intercept, {N} "
             f"neurons, batch 1 stimulus: {flop / 1e6:.1f} MFLOP per step")
    text = f"### Gradient step: {title}\n\n" + markdown_table(rows, columns)
    losses = [r["train_loss"] for r in rows if "train_loss" in r]
    text += (f"\n\nTraining rows: the median epoch of {repeats} fits of {epochs + 1} epochs each (their "
             f"first epochs left out), divided by its {n_train} steps. Final train_loss of the fits: "
             + ", ".join(f"{v:.6f}" for v in losses) + " (float64 rows equal to the last bit; "
             "float32 within float32 rounding).")
    if args.deepstrf_epoch_s:
        target = args.deepstrf_epoch_s / 50 / n_train * 1e3
        text += (f" 50x deepSTRF's epoch needs {target:.3f} ms/step, i.e. "
                 f"{flop / (target * 1e6):.0f} GFLOP/s on the step's product.")
    finish_section(text, args, before, after)


if __name__ == "__main__":
    main()
