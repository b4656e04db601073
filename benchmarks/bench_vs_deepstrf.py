"""Benchmark skstrf against deepSTRF 0.1.0 on the same synthetic NS1-shaped data, split and epochs.

Run from the repository root with the project's environment::

    DEEPSTRF_PYTHON=/path/to/bench-venv/bin/python python benchmarks/bench_vs_deepstrf.py

deepSTRF runs in a subprocess under ``DEEPSTRF_PYTHON`` (a separate environment with
``deepstrf==0.1.0``; see ``benchmarks/README.md``), fed the very arrays skstrf fits; both
libraries' test predictions are scored with :mod:`skstrf.metrics`. The same file is the
deepSTRF worker (``--worker``), which imports neither skstrf nor scikit-learn.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from run_all import write_atomic
from _common import (HEADLINE_SEED, format_machine, format_range, machine_info, markdown_table, penalty_choice,
                     seed_note, set_threads, summarize_times, timed, publish)

KERNELS = ("vanilla", "separable", "parametric")
# The seed notebook's settings for deepSTRF: AdamW lr 1e-3 without weight decay, one stimulus
# per step, no early stopping, 8 Gaussians, 15 lags.
DEEPSTRF_LR = 1e-3
N_LAGS = 15
N_GAUSSIANS = 8

TARGETS = {
    "gradient_epoch_speedup": 15.0,
    "ridge_speedup": 80.0,
    "parametric_speedup": 10.0,
    "separable_gap": 0.02,
}


# --------------------------------------------------------------------------------------
# deepSTRF side (runs in deepSTRF's environment)
# --------------------------------------------------------------------------------------
def _deepstrf_items(X: np.ndarray, y: np.ndarray, index: np.ndarray) -> list[dict[str, Any]]:
    """deepSTRF's dataset item format for the stimuli ``index``.

    Parameters
    ----------
    X : ndarray of shape (n_stimuli, n_times, n_freqs)
    y : ndarray of shape (n_stimuli, n_times, n_neurons, n_repeats)
    index : ndarray of int

    Returns
    -------
    items : list of dict
        Per stimulus: ``stims`` (1, n_freqs, n_times), ``responses`` a list of n_neurons
        tensors (n_repeats, n_times), ``valid_mask`` (n_neurons,) and ``stim_meta``, as
        deepSTRF's ``NeuralDataset.__getitem__`` yields them for ``neural_collate``.
    """
    import torch

    items = []
    for s in index:
        stims = torch.as_tensor(np.ascontiguousarray(X[s].T[None]), dtype=torch.float32)
        per_neuron = torch.as_tensor(np.ascontiguousarray(y[s].transpose(1, 2, 0)), dtype=torch.float32)
        items.append({
            "stims": stims,
            "responses": list(per_neuron.unbind(0)),
            "valid_mask": torch.ones(y.shape[2], dtype=torch.bool),
            "stim_meta": {"stimulus": int(s)},
        })
    return items


def _deepstrf_kernel(name: str, n_freqs: int, n_neurons: int):
    """The seed notebook's kernel modules (None is deepSTRF's vanilla Conv2d)."""
    from deepSTRF.models.layers import ParametricSTRF, SeparableSTRF

    if name == "vanilla":
        return None
    if name == "separable":
        return SeparableSTRF(n_freqs, N_LAGS, C_in=1, C_out=n_neurons)
    return ParametricSTRF(n_freqs, N_LAGS, C_in=1, C_out=n_neurons, num_gaussians=N_GAUSSIANS)


def _stub_torchaudio_if_broken() -> None:
    """Let deepSTRF import when torchaudio cannot load.

    deepSTRF imports torchaudio at import time only for its waveform front ends. PyPI has
    no torchaudio built for the CPU torch 2.13 that both libraries run on here, so a
    placeholder module stands in; the Linear model never touches it.
    """
    import types

    try:
        import torchaudio  # noqa: F401
    except (ImportError, OSError) as exc:
        stub = types.ModuleType("torchaudio")
        reason = f"torchaudio could not be loaded ({exc}); the benchmark does not use it"

        def _missing(name: str):
            raise AttributeError(f"torchaudio.{name}: {reason}")

        stub.__getattr__ = _missing
        sys.modules["torchaudio"] = stub


def _progress(name: str, epochs: int):
    """deepSTRF ``log_fn`` printing the elapsed time every tenth of the epochs (to stderr)."""
    start = time.perf_counter()
    step = max(1, epochs // 10)

    def log(epoch: dict[str, Any]) -> None:
        done = int(epoch["epoch"]) + 1
        if done % step == 0 or done == epochs:
            elapsed = time.perf_counter() - start
            print(f"deepSTRF {name}: epoch {done}/{epochs}, {elapsed:.1f} s ({elapsed / done:.2f} s/epoch)",
                  file=sys.stderr, flush=True)

    return log


def _deepstrf_fit(name: str, loaders: dict, n_freqs: int, n_neurons: int, epochs: int, seed: int,
                  device: str, log: bool = True) -> tuple[Any, Any, list, float, float, float]:
    """One seeded deepSTRF fit of the seed notebook's Linear model with kernel ``name``.

    Returns the Fitter, the model, deepSTRF's history, the wall and CPU seconds of ``Fitter.fit``, and the
    wall seconds of that spent in its per-epoch validation pass (``Fitter._evaluate`` on the
    validation loader), which is not training: deepSTRF's Fitter always runs it.
    """
    import torch
    from deepSTRF.models.audio import Linear
    from deepSTRF.training import Fitter, set_random_seed

    set_random_seed(seed)
    model = Linear(n_frequency_bands=n_freqs, temporal_window_size=N_LAGS, out_neurons=n_neurons,
                   kernel=_deepstrf_kernel(name, n_freqs, n_neurons))
    optimizer = torch.optim.AdamW(model.parameters(), lr=DEEPSTRF_LR, weight_decay=0.0)
    # track_train_metrics=False: deepSTRF otherwise recomputes cc and cc_norm over the training
    # predictions every epoch, work that is not training. No ckpt_path: the last epoch is kept.
    fitter = Fitter(model, loaders["train"], loaders["valid"], optimizer=optimizer, device=device,
                    max_epochs=epochs, patience=epochs, monitor="val_cc_norm", mode="max",
                    track_train_metrics=False,
                    log_fn=_progress(name, epochs) if log else (lambda epoch: None))
    validation = []
    evaluate = fitter._evaluate

    def timed_evaluate(loader):
        begin = time.perf_counter()
        out = evaluate(loader)
        validation.append(time.perf_counter() - begin)
        return out

    fitter._evaluate = timed_evaluate  # shadows the method on this instance only
    start, start_cpu = time.perf_counter(), time.process_time()
    history = fitter.fit()
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
    fitter._evaluate = evaluate
    return fitter, model, history, seconds, cpu_seconds, float(sum(validation))


def deepstrf_worker(data_path: str, out_path: str, kernels: list[str], epochs: int, seed: int,
                    device: str, threads: int, repeats: int) -> None:
    """Fit deepSTRF's Linear model with each kernel as the seed notebook does; save results.

    Each kernel is first fitted once on a tiny problem (the warm-up skstrf gets too), then
    ``repeats`` times on the full training stimuli with the same seed. Writes ``out_path``
    (npz) with, per kernel ``k``: ``k/seconds``, ``k/cpu_seconds`` and ``k/valid_seconds``
    (one value per timed fit: ``Fitter.fit`` wall and CPU time, and the part of the wall time
    spent in its per-epoch validation pass), ``k/epochs``, ``k/n_params``, ``k/pred`` (test
    predictions of shape (n_test, n_times, n_neurons), last fit) and ``k/own_cc``,
    ``k/own_cc_norm`` (deepSTRF's own per-neuron test metrics), plus ``version``.
    """
    set_threads(threads)
    import torch
    from torch.utils.data import DataLoader

    _stub_torchaudio_if_broken()
    import deepSTRF
    from deepSTRF.utils import neural_collate

    data = np.load(data_path)
    X, y = data["X"], data["y"]
    n_freqs, n_neurons = X.shape[2], y.shape[2]
    loaders = {
        part: DataLoader(_deepstrf_items(X, y, data[part]), batch_size=1, shuffle=part == "train",
                         collate_fn=neural_collate)
        for part in ("train", "valid", "test")
    }
    tiny = {part: DataLoader(_deepstrf_items(X[:, :60], y[:, :60], data[part][:2]), batch_size=1,
                             collate_fn=neural_collate) for part in ("train", "valid")}
    results: dict[str, np.ndarray] = {"version": np.array(deepSTRF.__version__)}
    for name in kernels:
        _deepstrf_fit(name, tiny, n_freqs, n_neurons, 2, seed, device, log=False)  # warm-up
        runs = [_deepstrf_fit(name, loaders, n_freqs, n_neurons, epochs, seed, device)
                for _ in range(repeats)]
        fitter, model, history = runs[-1][:3]
        own = fitter.evaluate(loaders["test"])
        model.eval()
        with torch.no_grad():
            pred = np.stack([
                model(item["stims"][None].to(device))[0, :, 0, :].T.cpu().numpy()
                for item in loaders["test"].dataset
            ])
        results.update({
            f"{name}/seconds": np.array([r[3] for r in runs]),
            f"{name}/cpu_seconds": np.array([r[4] for r in runs]),
            f"{name}/valid_seconds": np.array([r[5] for r in runs]),
            f"{name}/epochs": np.array(len(history)),
            f"{name}/n_params": np.array(model.count_trainable_params()),
            f"{name}/pred": pred,
            f"{name}/own_cc": own["cc"].cpu().numpy(),
            f"{name}/own_cc_norm": own["cc_norm"].cpu().numpy(),
        })
        print(f"deepSTRF {name}: {[round(r[3], 1) for r in runs]} s for {len(history)} epochs",
              file=sys.stderr, flush=True)
    np.savez(out_path, **results)


# --------------------------------------------------------------------------------------
# Driver (runs in skstrf's environment)
# --------------------------------------------------------------------------------------
def find_deepstrf_python(explicit: str | None) -> str | None:
    """The interpreter that has deepSTRF: ``--deepstrf-python``, ``$DEEPSTRF_PYTHON``, or this one."""
    for candidate in (explicit, os.environ.get("DEEPSTRF_PYTHON")):
        if candidate:
            return candidate
    if importlib.util.find_spec("deepSTRF") is not None:
        return sys.executable
    return None


def run_deepstrf(python: str, data, kernels: list[str], epochs: int, seed: int, device: str,
                 threads: int, repeats: int, workdir: Path) -> dict[str, dict[str, Any]]:
    """Run the deepSTRF worker in a subprocess on ``data``; return its results per kernel.

    deepSTRF trains on the same training stimuli as skstrf (``fit_stimuli``: train and
    validation); its Fitter's per-epoch validation pass runs on the validation stimuli and
    is timed apart (it selects nothing: no checkpoint, the last epoch is kept).
    """
    data_path, out_path = workdir / "data.npz", workdir / "deepstrf.npz"
    np.savez(data_path, X=np.nan_to_num(data.X).astype(np.float32), y=data.y.astype(np.float32),
             train=fit_stimuli(data), valid=data.valid, test=data.test)
    cmd = [python, str(Path(__file__).resolve()), "--worker", "--data", str(data_path),
           "--out", str(out_path), "--epochs", str(epochs), "--seed", str(seed), "--device", device,
           "--threads", str(threads), "--repeats", str(repeats), "--kernels", *kernels]
    subprocess.run(cmd, check=True)
    raw = np.load(out_path)
    version = str(raw["version"])
    out = {}
    for name in kernels:
        wall, cpu = raw[f"{name}/seconds"].tolist(), raw[f"{name}/cpu_seconds"].tolist()
        valid = raw[f"{name}/valid_seconds"].tolist()
        out[name] = {
            "version": version,
            **summarize_times(wall, cpu),
            "valid_seconds": statistics.median(valid),
            # Training only: each run's wall time less its validation passes.
            "train_seconds": statistics.median(w - v for w, v in zip(wall, valid)),
            "epochs": int(raw[f"{name}/epochs"]),
            "n_params": int(raw[f"{name}/n_params"]) // data.y.shape[2],
            "pred": raw[f"{name}/pred"],
            "own_cc_norm": float(np.nanmean(raw[f"{name}/own_cc_norm"])),
        }
    return out


def fit_stimuli(data) -> np.ndarray:
    """The stimuli both libraries train on: the training and the validation stimuli (17 of 20)."""
    return np.r_[data.train, data.valid]


def _warm_up(device: str) -> None:
    """Pay one-time import and initialisation costs before timing.

    The deepSTRF worker fits each kernel once on a tiny problem before its timed fits;
    this gives skstrf the same footing (torch's optimizer module imports torch._dynamo on
    first use, about a second).
    """
    from skstrf import STRFRegressor
    from skstrf.datasets import make_strf_dataset

    tiny = make_strf_dataset(n_stimuli=4, n_times=60, n_freqs=6, n_neurons=3, n_repeats=3,
                             n_lags=4, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tiny fit's validation scores are not the point
        for kernel in KERNELS:
            for solver in ("auto", "gradient"):
                STRFRegressor(kernel=kernel, solver=solver, n_lags=4, n_gaussians=2, max_epochs=2,
                              device=device, random_state=0).fit(tiny.X, tiny.y)


# The skstrf rows: (start, what the label says, STRFRegressor parameters). Every row trains
# on the same 17 stimuli as deepSTRF. "closed-form" rows of vanilla and separable are the
# estimator's defaults: the penalty of each neuron is chosen by cross-validation over the 17
# stimuli, then the model is refitted on all 17. The parametric kernel has no closed form:
# its "closed-form start" row starts from Gaussians fitted to the cross-validated ridge STRF
# of the 17, is penalised by that penalty (the estimator's default) and trains like deepSTRF.
# "random start" rows are the seed's method, as deepSTRF runs it: AdamW lr 1e-3, one stimulus
# per step, a fixed number of epochs, the last one kept, no validation and no penalty.
def skstrf_rows(kernel: str, epochs: int, n_valid: int = 3, n_fit: int = 17
                ) -> list[tuple[str, str, dict[str, Any]]]:
    """The skstrf variants of one kernel, as (start, label, overrides)."""
    seed_method = {"solver": "gradient", "lr": DEEPSTRF_LR, "batch_size": 1, "max_epochs": epochs,
                   "patience": None, "validation_fraction": None}
    no_penalty = {"cv": None, "alpha": 0.0}
    rows = []
    if kernel in ("vanilla", "separable"):
        solver = {"vanilla": "ridge", "separable": "ALS"}[kernel]
        rows.append(("closed-form", f"{solver} (default), PENALTY, refit on all {n_fit}",
                     {"validation": True}))
    else:
        rows.append(("closed-form start", f"gradient from Gaussians fitted to the ridge STRF, PENALTY, "
                     f"AdamW lr {DEEPSTRF_LR:g}, batch 1, {epochs} epochs, last kept",
                     {**seed_method, "init": "closed_form"}))
    rows.append(("random", f"gradient, no penalty, AdamW lr {DEEPSTRF_LR:g}, batch 1, {epochs} epochs, "
                 "last kept", {**seed_method, **no_penalty, "init": "random"}))
    return rows


def skstrf_estimator(kernel: str, overrides: dict[str, Any], n_valid: int, n_fit: int, device: str,
                     seed: int):
    """The STRFRegressor of one benchmark row (see :func:`skstrf_rows`)."""
    from skstrf import STRFRegressor

    overrides = dict(overrides)
    params: dict[str, Any] = {"kernel": kernel, "n_lags": N_LAGS, "n_gaussians": N_GAUSSIANS,
                              "device": device, "random_state": seed}
    if overrides.pop("validation", False):
        params["validation_fraction"] = n_valid / n_fit  # the last n_valid of the fitted stimuli
    params.update(overrides)
    return STRFRegressor(**params)


def run_skstrf(data, kernel: str, overrides: dict[str, Any], device: str, seed: int,
               repeats: int) -> dict[str, Any]:
    """Fit skstrf on the 17 training stimuli of ``data`` ``repeats`` times; predict the test ones.

    Returns
    -------
    row : dict
        The timing summary of :func:`_common.timed`, ``epochs``, ``solver``, ``lr``,
        ``n_params``, ``pred`` (test predictions) and the fitted ``estimator``.
    """
    from sklearn.base import clone

    fit_idx = fit_stimuli(data)
    est = skstrf_estimator(kernel, overrides, len(data.valid), len(fit_idx), device, seed)
    X, y = data.X[fit_idx], data.y[fit_idx]
    timing, fitted = timed(lambda: clone(est).fit(X, y), repeats)
    if len(fitted.valid_stimuli_) and not np.array_equal(fit_idx[fitted.valid_stimuli_], data.valid):
        raise RuntimeError(f"validation stimuli {fit_idx[fitted.valid_stimuli_]} are not {data.valid}")
    return {
        **timing,
        "train_seconds": timing["seconds"],
        "valid_seconds": 0.0,
        "epochs": len(fitted.history_),
        "solver": fitted.solver_,
        "lr": fitted.lr,
        "n_params": fitted.n_params_per_neuron_,
        "pred": fitted.predict(data.X[data.test]),
        "estimator": fitted,
    }


def build_rows(data, ours: dict[tuple[str, str], dict[str, Any]],
               theirs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Table rows with test scores (skstrf's metrics for both libraries) and speed-ups.

    Speed-ups divide deepSTRF's training time (its per-epoch validation pass excluded) by
    skstrf's whole fit time: per epoch for rows that train the same number of epochs, per
    fit otherwise.
    """
    from _common import test_scores

    y_test = data.y[data.test]
    n_fit = len(fit_stimuli(data))
    rows = []
    for kernel in KERNELS:
        ref = theirs.get(kernel)
        entries = []
        if ref is not None:
            entries.append(("deepSTRF " + ref["version"], "random",
                            f"AdamW lr {DEEPSTRF_LR:g}, batch 1, {ref['epochs']} epochs, last kept", ref))
        for start, _, _ in skstrf_rows(kernel, 0):
            if (kernel, start) in ours:
                r = ours[(kernel, start)]
                entries.append(("skstrf", start, r["label"], r))
        for library, start, how, r in entries:
            cc, ccn = test_scores(y_test, r["pred"])
            row = {
                "library": library, "kernel": kernel, "start": start, "how": how, "n_fit": n_fit,
                "epochs": r["epochs"], "seconds": r["seconds"], "range": format_range(r),
                "cpu_seconds": r["cpu_seconds"], "valid_seconds": r["valid_seconds"],
                "s_per_epoch": r["train_seconds"] / r["epochs"],
                "cc": float(np.nanmean(cc)), "cc_norm": float(np.nanmean(ccn)),
                "cc_norm_separable": float(np.nanmean(ccn[data.separable])),
                "own_cc_norm": r.get("own_cc_norm"), "n_params": r["n_params"], "runs": r["runs"],
            }
            if ref is not None and library == "skstrf":
                if r["epochs"] == ref["epochs"]:
                    row["speedup"] = (ref["train_seconds"] / ref["epochs"]) / row["s_per_epoch"]
                else:
                    row["speedup"] = ref["train_seconds"] / r["seconds"]
            rows.append(row)
    return rows


COLUMNS = [
    ("library", "library", ""), ("kernel", "kernel", ""), ("start", "start", ""), ("how", "fit", ""),
    ("n_fit", "training stimuli", "d"), ("n_params", "params/neuron", "d"), ("epochs", "epochs", "d"),
    ("runs", "timed runs", "d"), ("seconds", "fit (s), median", ".2f"), ("range", "fit (s), range", ""),
    ("cpu_seconds", "CPU (s)", ".2f"), ("valid_seconds", "of which validation (s)", ".2f"),
    ("s_per_epoch", "training s/epoch", ".3f"), ("cc", "test cc", ".3f"),
    ("cc_norm", "test cc_norm", ".3f"), ("cc_norm_separable", "cc_norm, separable cells", ".3f"),
    ("own_cc_norm", "deepSTRF's own cc_norm", ".3f"), ("speedup", "speed-up vs deepSTRF", ".1f"),
]


def check_targets(rows: list[dict[str, Any]]) -> list[str]:
    """The issue's targets, each as a line "PASS/FAIL: what (measured)"."""
    def find(kernel: str, library: str, start: str) -> dict[str, Any] | None:
        return next((r for r in rows if r["kernel"] == kernel and r["library"].startswith(library)
                     and r["start"] == start), None)

    lines = []

    def report(ok: bool, text: str) -> None:
        lines.append(f"- {'PASS' if ok else 'FAIL'}: {text}")

    for kernel in KERNELS:
        grad = find(kernel, "skstrf", "random")
        if grad is not None and grad.get("speedup") is not None:
            report(grad["speedup"] >= TARGETS["gradient_epoch_speedup"],
                   f"{kernel}, random start: {grad['speedup']:.1f}x fewer training s/epoch than deepSTRF "
                   f"(target >= {TARGETS['gradient_epoch_speedup']:g}x)")
    van, ref = find("vanilla", "skstrf", "closed-form"), find("vanilla", "deepSTRF", "random")
    if van is not None and ref is not None:
        report(van["speedup"] >= TARGETS["ridge_speedup"] and van["cc_norm"] >= ref["cc_norm"],
               f"closed-form vanilla {van['speedup']:.0f}x faster than deepSTRF's {ref['epochs']}-epoch "
               f"training (target >= {TARGETS['ridge_speedup']:g}x), test cc_norm {van['cc_norm']:.3f} vs "
               f"{ref['cc_norm']:.3f}")
    sep, ref = find("separable", "skstrf", "closed-form"), find("separable", "deepSTRF", "random")
    if sep is not None and ref is not None:
        report(sep["cc_norm"] >= ref["cc_norm"],
               f"closed-form separable test cc_norm {sep['cc_norm']:.3f} vs deepSTRF's {ref['cc_norm']:.3f}")
    if sep is not None and van is not None:
        gap = van["cc_norm_separable"] - sep["cc_norm_separable"]
        report(gap <= TARGETS["separable_gap"],
               f"separable on separable cells {sep['cc_norm_separable']:.3f} vs vanilla "
               f"{van['cc_norm_separable']:.3f} (gap {gap:+.3f}, target <= {TARGETS['separable_gap']})")
    par, ref = find("parametric", "skstrf", "closed-form start"), find("parametric", "deepSTRF", "random")
    if par is not None and ref is not None:
        report(par["cc_norm"] >= ref["cc_norm"] and par["speedup"] >= TARGETS["parametric_speedup"],
               f"parametric (closed-form start) test cc_norm {par['cc_norm']:.3f} vs deepSTRF's "
               f"{ref['cc_norm']:.3f}, {par['speedup']:.1f}x (target >= {TARGETS['parametric_speedup']:g}x)")
    return lines


def compare(data, kernels: list[str], epochs: int, seed: int, device: str, threads: int,
            repeats: int, deepstrf_python: str | None, deepstrf_device: str | None = None) -> dict[str, Any]:
    """Run both libraries on ``data`` and return rows, target checks and machine info."""
    before = machine_info()
    theirs: dict[str, dict[str, Any]] = {}
    if deepstrf_python is not None:
        with tempfile.TemporaryDirectory() as tmp:
            theirs = run_deepstrf(deepstrf_python, data, kernels, epochs, seed,
                                  deepstrf_device or device, threads, repeats, Path(tmp))
    _warm_up(device)
    ours = {}
    for kernel in kernels:
        for start, label, overrides in skstrf_rows(kernel, epochs, len(data.valid), len(fit_stimuli(data))):
            r = run_skstrf(data, kernel, overrides, device, seed, repeats)
            if start == "closed-form":  # the solver and penalty choice the estimator actually made
                label = r["solver"] + label[label.index(" "):]
            label = label.replace("PENALTY", penalty_choice(r["estimator"]))
            ours[(kernel, start)] = {**r, "label": label}
            print(f"skstrf {kernel} {start}: {r['seconds']:.2f} s", file=sys.stderr, flush=True)
    after = machine_info()
    rows = build_rows(data, ours, theirs)
    return {"rows": rows, "targets": check_targets(rows), "before": before, "after": after}


def report_markdown(result: dict[str, Any], data, epochs: int, repeats: int, command: str,
                    seed: int) -> str:
    """The "vs deepSTRF" section body: machine, data, protocol, table and target checks."""
    n_fit = len(fit_stimuli(data))
    lines = [
        f"Command: `{command}`",
        "",
        format_machine(result["before"], result["after"]),
        "",
        f"Data: `make_strf_dataset(random_state={seed})` NS1-shaped, {data.X.shape[0]} stimuli x "
        f"{data.X.shape[1]} frames x {data.X.shape[2]} bands, {data.y.shape[2]} neurons "
        f"({int(data.separable.sum())} with separable ground truth), {data.y.shape[3]} repeats. "
        + seed_note(seed),
        "",
        f"Equal training stimuli: both libraries train on the same {n_fit} stimuli (the "
        f"{len(data.train)} training and {len(data.valid)} validation stimuli of the "
        f"{len(data.train)} / {len(data.valid)} / {len(data.test)} split) and are scored on the same "
        f"{len(data.test)} test stimuli with `skstrf.metrics`; the closed-form rows choose their penalty "
        "among those stimuli as their labels say. deepSTRF 0.1.0 runs "
        f"the seed notebook's settings (AdamW lr {DEEPSTRF_LR:g}, weight decay 0, batch 1 stimulus, "
        f"{epochs} epochs, last epoch kept, `track_train_metrics=False`); its Fitter also runs a "
        "validation pass every epoch, which selects nothing here: it is timed apart ('of which "
        "validation') and left out of its training s/epoch and of the speed-ups. 'start' says "
        "where each fit starts: random (the seed's method, same optimiser settings in both "
        "libraries), closed-form (skstrf's ridge or ALS default) or closed-form start (gradient "
        "training from the Gaussian decomposition of a ridge STRF).",
        "",
        f"Timing, the same for both libraries: one warm-up fit of a tiny problem per kernel, then "
        f"{repeats} timed fits per row; 'fit (s)' is the median wall time and 'range' its minimum "
        "and maximum over those fits; CPU (s) is the median CPU time of the process over all its "
        "threads. Speed-up: deepSTRF's training time over skstrf's whole fit time, per epoch for "
        "rows with as many epochs as deepSTRF, per fit otherwise.",
        "",
        markdown_table(result["rows"], COLUMNS),
        "",
        "Targets:",
        "",
        *result["targets"],
    ]
    return "\n".join(lines)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=100, help="epochs of deepSTRF and of skstrf's gradient rows")
    p.add_argument("--kernels", nargs="+", default=list(KERNELS), choices=KERNELS)
    p.add_argument("--n-neurons", type=int, default=119)
    p.add_argument("--n-stimuli", type=int, default=20)
    p.add_argument("--n-times", type=int, default=999)
    p.add_argument("--seed", type=int, default=HEADLINE_SEED,
                   help=f"seed of the data and of both libraries (default: the headline seed {HEADLINE_SEED})")
    p.add_argument("--threads", type=int, default=2, help="torch/OpenMP threads of both libraries")
    p.add_argument("--repeats", type=int, default=3,
                   help="timed fits per row, for both libraries (median and range reported)")
    p.add_argument("--quick", action="store_true",
                   help="tiny data (8 stimuli x 200 frames x 6 neurons, 3 epochs, 1 repeat) to check the script")
    p.add_argument("--device", default="cpu")
    p.add_argument("--deepstrf-python", default=None,
                   help="interpreter with deepstrf==0.1.0 (default: $DEEPSTRF_PYTHON, else this one)")
    p.add_argument("--skip-deepstrf", action="store_true")
    p.add_argument("--markdown", type=Path, help="write the results section to this file")
    p.add_argument("--json", type=Path, help="write the rows and machine info to this file")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    if args.worker:
        deepstrf_worker(args.data, args.out, args.kernels, args.epochs, args.seed, args.device,
                        args.threads, args.repeats)
        return
    set_threads(args.threads)
    python = None if args.skip_deepstrf else find_deepstrf_python(args.deepstrf_python)
    if python is None and not args.skip_deepstrf:
        sys.exit("deepSTRF is not importable here: set DEEPSTRF_PYTHON to the python of an environment "
                 "with deepstrf==0.1.0 (see benchmarks/README.md), or pass --skip-deepstrf.")
    from _common import ns1_like

    if args.quick:
        args.n_neurons, args.n_stimuli, args.n_times, args.epochs, args.repeats = 6, 8, 200, 3, 1
    data = ns1_like(args.n_neurons, args.seed, n_stimuli=args.n_stimuli, n_times=args.n_times)
    result = compare(data, args.kernels, args.epochs, args.seed, args.device, args.threads,
                     args.repeats, python)
    command = "python benchmarks/bench_vs_deepstrf.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = report_markdown(result, data, args.epochs, args.repeats, command.strip(), args.seed)
    publish(text, args.markdown)
    if args.json:
        rows = [{k: v for k, v in r.items()} for r in result["rows"]]
        write_atomic(args.json, json.dumps(
            {**result, "rows": rows}, indent=1, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


if __name__ == "__main__":
    main()
