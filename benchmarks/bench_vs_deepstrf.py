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
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from _common import format_machine, machine_info, markdown_table, set_threads, timed

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


def deepstrf_worker(data_path: str, out_path: str, kernels: list[str], epochs: int, seed: int,
                    device: str, threads: int) -> None:
    """Fit deepSTRF's Linear model with each kernel as the seed notebook does; save results.

    Writes ``out_path`` (npz) with, per kernel ``k``: ``k/seconds`` (the ``Fitter.fit``
    wall time, as the seed measures it), ``k/epochs``, ``k/n_params``, ``k/pred`` (test
    predictions of shape (n_test, n_times, n_neurons)), ``k/own_cc`` and ``k/own_cc_norm``
    (deepSTRF's own per-neuron test metrics), plus ``version``.
    """
    set_threads(threads)
    import torch
    from torch.utils.data import DataLoader

    _stub_torchaudio_if_broken()
    import deepSTRF
    from deepSTRF.models.audio import Linear
    from deepSTRF.training import Fitter, set_random_seed
    from deepSTRF.utils import neural_collate

    data = np.load(data_path)
    X, y = data["X"], data["y"]
    n_freqs, n_neurons = X.shape[2], y.shape[2]
    loaders = {
        part: DataLoader(_deepstrf_items(X, y, data[part]), batch_size=1, shuffle=part == "train",
                         collate_fn=neural_collate)
        for part in ("train", "valid", "test")
    }
    results: dict[str, np.ndarray] = {"version": np.array(deepSTRF.__version__)}
    for name in kernels:
        set_random_seed(seed)
        model = Linear(n_frequency_bands=n_freqs, temporal_window_size=N_LAGS, out_neurons=n_neurons,
                       kernel=_deepstrf_kernel(name, n_freqs, n_neurons))
        optimizer = torch.optim.AdamW(model.parameters(), lr=DEEPSTRF_LR, weight_decay=0.0)
        fitter = Fitter(model, loaders["train"], loaders["valid"], optimizer=optimizer, device=device,
                        max_epochs=epochs, patience=epochs, monitor="val_cc_norm", mode="max",
                        log_fn=_progress(name, epochs))
        start, start_cpu = time.perf_counter(), time.process_time()
        history = fitter.fit()
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
        own = fitter.evaluate(loaders["test"])
        model.eval()
        with torch.no_grad():
            pred = np.stack([
                model(item["stims"][None].to(device))[0, :, 0, :].T.cpu().numpy()
                for item in loaders["test"].dataset
            ])
        results.update({
            f"{name}/seconds": np.array(seconds),
            f"{name}/cpu_seconds": np.array(cpu_seconds),
            f"{name}/epochs": np.array(len(history)),
            f"{name}/n_params": np.array(model.count_trainable_params()),
            f"{name}/pred": pred,
            f"{name}/own_cc": own["cc"].cpu().numpy(),
            f"{name}/own_cc_norm": own["cc_norm"].cpu().numpy(),
        })
        print(f"deepSTRF {name}: {seconds:.1f} s for {len(history)} epochs", file=sys.stderr, flush=True)
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
                 threads: int, workdir: Path) -> dict[str, dict[str, Any]]:
    """Run the deepSTRF worker in a subprocess on ``data``; return its results per kernel."""
    data_path, out_path = workdir / "data.npz", workdir / "deepstrf.npz"
    np.savez(data_path, X=np.nan_to_num(data.X).astype(np.float32), y=data.y.astype(np.float32),
             train=data.train, valid=data.valid, test=data.test)
    cmd = [python, str(Path(__file__).resolve()), "--worker", "--data", str(data_path),
           "--out", str(out_path), "--epochs", str(epochs), "--seed", str(seed), "--device", device,
           "--threads", str(threads), "--kernels", *kernels]
    subprocess.run(cmd, check=True)
    raw = np.load(out_path)
    version = str(raw["version"])
    return {
        name: {
            "version": version,
            "seconds": float(raw[f"{name}/seconds"]),
            "cpu_seconds": float(raw[f"{name}/cpu_seconds"]),
            "epochs": int(raw[f"{name}/epochs"]),
            "n_params": int(raw[f"{name}/n_params"]) // data.y.shape[2],
            "pred": raw[f"{name}/pred"],
            "own_cc_norm": float(np.nanmean(raw[f"{name}/own_cc_norm"])),
        }
        for name in kernels
    }


def _warm_up(device: str) -> None:
    """Pay one-time import and initialisation costs before timing.

    deepSTRF's timer (like the seed's) starts after the model and optimizer exist; fitting
    a tiny problem once gives skstrf the same footing (torch's optimizer module imports
    torch._dynamo on first use, about a second).
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


def skstrf_estimator(kernel: str, mode: str, n_valid: int, n_fit: int, epochs: int, device: str,
                     seed: int, **overrides: Any):
    """The STRFRegressor of one benchmark row.

    ``mode="default"`` keeps the estimator's defaults (closed form for vanilla and
    separable, gradient for parametric); ``mode="gradient"`` trains ``epochs`` epochs of
    AdamW without early stopping. The validation stimuli are the last ``n_valid`` of the
    ``n_fit`` fitted ones, as in deepSTRF's split.
    """
    from skstrf import STRFRegressor

    params: dict[str, Any] = {
        "kernel": kernel, "n_lags": N_LAGS, "n_gaussians": N_GAUSSIANS, "device": device,
        "random_state": seed, "validation_fraction": n_valid / n_fit,
    }
    if mode == "gradient":
        params.update(solver="gradient", max_epochs=epochs, patience=None)
    params.update(overrides)
    return STRFRegressor(**params)


def run_skstrf(data, kernel: str, mode: str, epochs: int, device: str, seed: int,
               repeats: int, **overrides: Any) -> dict[str, Any]:
    """Fit skstrf on the training and validation stimuli of ``data``; time it; predict test.

    Returns
    -------
    row : dict
        ``seconds`` (median over ``repeats`` fits), ``epochs``, ``solver``, ``lr``,
        ``n_params``, ``pred`` (test predictions) and the fitted ``estimator``.
    """
    from sklearn.base import clone

    fit_idx = np.r_[data.train, data.valid]
    est = skstrf_estimator(kernel, mode, len(data.valid), len(fit_idx), epochs, device, seed, **overrides)
    X, y = data.X[fit_idx], data.y[fit_idx]
    seconds, cpu_seconds, fitted = timed(lambda: clone(est).fit(X, y), repeats)
    if not np.array_equal(fitted.valid_stimuli_, np.arange(len(data.train), len(fit_idx))):
        raise RuntimeError(f"validation stimuli {fitted.valid_stimuli_} differ from deepSTRF's split")
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "epochs": len(fitted.history_),
        "solver": fitted.solver_,
        "lr": fitted.lr,
        "n_params": fitted.n_params_per_neuron_,
        "pred": fitted.predict(data.X[data.test]),
        "estimator": fitted,
    }


def build_rows(data, ours: dict[tuple[str, str], dict[str, Any]],
               theirs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Table rows with test scores (skstrf's metrics for both libraries) and speed-ups."""
    from _common import test_scores

    y_test = data.y[data.test]
    rows = []
    for kernel in KERNELS:
        ref = theirs.get(kernel)
        entries = []
        if ref is not None:
            entries.append(("deepSTRF " + ref["version"], f"AdamW lr {DEEPSTRF_LR:g}, batch 1", ref))
        for mode in ("default", "gradient"):
            if (kernel, mode) in ours:
                r = ours[(kernel, mode)]
                how = (f"default ({r['solver']})" if mode == "default"
                       else f"gradient, lr {r['lr']:g}, batch 1")
                entries.append(("skstrf", how, r))
        for library, how, r in entries:
            cc, ccn = test_scores(y_test, r["pred"])
            row = {
                "library": library, "kernel": kernel, "how": how, "epochs": r["epochs"],
                "seconds": r["seconds"], "cpu_seconds": r["cpu_seconds"],
                "s_per_epoch": r["seconds"] / r["epochs"],
                "cc": float(np.nanmean(cc)), "cc_norm": float(np.nanmean(ccn)),
                "cc_norm_separable": float(np.nanmean(ccn[data.separable])),
                "own_cc_norm": r.get("own_cc_norm"), "n_params": r["n_params"],
            }
            if ref is not None and library == "skstrf":
                # A closed-form or early-stopped fit is compared on its whole fit time;
                # fixed-epoch gradient training on seconds per epoch.
                if "gradient" in how and r["epochs"] == ref["epochs"]:
                    row["speedup"] = (ref["seconds"] / ref["epochs"]) / row["s_per_epoch"]
                else:
                    row["speedup"] = ref["seconds"] / r["seconds"]
            rows.append(row)
    return rows


COLUMNS = [
    ("library", "library", ""), ("kernel", "kernel", ""), ("how", "fit", ""),
    ("n_params", "params/neuron", "d"), ("epochs", "epochs", "d"), ("seconds", "fit (s)", ".2f"),
    ("cpu_seconds", "CPU (s)", ".2f"),
    ("s_per_epoch", "s/epoch", ".3f"), ("cc", "test cc", ".3f"), ("cc_norm", "test cc_norm", ".3f"),
    ("cc_norm_separable", "cc_norm, separable cells", ".3f"),
    ("own_cc_norm", "deepSTRF's own cc_norm", ".3f"), ("speedup", "speed-up vs deepSTRF", ".1f"),
]


def check_targets(rows: list[dict[str, Any]]) -> list[str]:
    """The issue's targets, each as a line "PASS/FAIL: what (measured)"."""
    def find(kernel: str, library: str, how: str) -> dict[str, Any] | None:
        return next((r for r in rows if r["kernel"] == kernel and r["library"].startswith(library)
                     and r["how"].startswith(how)), None)

    lines = []

    def report(ok: bool, text: str) -> None:
        lines.append(f"- {'PASS' if ok else 'FAIL'}: {text}")

    for kernel in KERNELS:
        grad = find(kernel, "skstrf", "gradient")
        if grad is not None and grad.get("speedup") is not None:
            report(grad["speedup"] >= TARGETS["gradient_epoch_speedup"],
                   f"{kernel} gradient training {grad['speedup']:.1f}x fewer s/epoch than deepSTRF "
                   f"(target >= {TARGETS['gradient_epoch_speedup']:g}x)")
    van, ref = find("vanilla", "skstrf", "default"), find("vanilla", "deepSTRF", "")
    if van is not None and ref is not None:
        report(van["speedup"] >= TARGETS["ridge_speedup"] and van["cc_norm"] >= ref["cc_norm"],
               f"closed-form vanilla {van['speedup']:.0f}x faster than deepSTRF's {ref['epochs']}-epoch "
               f"fit (target >= {TARGETS['ridge_speedup']:g}x), test cc_norm {van['cc_norm']:.3f} vs "
               f"{ref['cc_norm']:.3f}")
    sep, ref = find("separable", "skstrf", "default"), find("separable", "deepSTRF", "")
    if sep is not None and ref is not None:
        report(sep["cc_norm"] >= ref["cc_norm"],
               f"separable test cc_norm {sep['cc_norm']:.3f} vs deepSTRF's {ref['cc_norm']:.3f}")
    if sep is not None and van is not None:
        gap = van["cc_norm_separable"] - sep["cc_norm_separable"]
        report(gap <= TARGETS["separable_gap"],
               f"separable on separable cells {sep['cc_norm_separable']:.3f} vs vanilla "
               f"{van['cc_norm_separable']:.3f} (gap {gap:+.3f}, target <= {TARGETS['separable_gap']})")
    par, ref = find("parametric", "skstrf", "default"), find("parametric", "deepSTRF", "")
    if par is not None and ref is not None:
        report(par["cc_norm"] >= ref["cc_norm"] and par["speedup"] >= TARGETS["parametric_speedup"],
               f"parametric test cc_norm {par['cc_norm']:.3f} vs deepSTRF's {ref['cc_norm']:.3f}, "
               f"{par['speedup']:.1f}x faster (target >= {TARGETS['parametric_speedup']:g}x)")
    return lines


def compare(data, kernels: list[str], epochs: int, seed: int, device: str, threads: int,
            repeats: int, deepstrf_python: str | None, deepstrf_device: str | None = None) -> dict[str, Any]:
    """Run both libraries on ``data`` and return rows, target checks and machine info."""
    before = machine_info()
    theirs: dict[str, dict[str, Any]] = {}
    if deepstrf_python is not None:
        with tempfile.TemporaryDirectory() as tmp:
            theirs = run_deepstrf(deepstrf_python, data, kernels, epochs, seed,
                                  deepstrf_device or device, threads, Path(tmp))
    _warm_up(device)
    ours = {}
    for kernel in kernels:
        for mode in ("default", "gradient"):
            ours[(kernel, mode)] = run_skstrf(data, kernel, mode, epochs, device, seed, repeats)
            print(f"skstrf {kernel} {mode}: {ours[(kernel, mode)]['seconds']:.2f} s", file=sys.stderr,
                  flush=True)
    after = machine_info()
    rows = build_rows(data, ours, theirs)
    return {"rows": rows, "targets": check_targets(rows), "before": before, "after": after}


def report_markdown(result: dict[str, Any], data, epochs: int, repeats: int, command: str) -> str:
    """The "vs deepSTRF" section body: machine, data, table and target checks."""
    lines = [
        f"Command: `{command}`",
        "",
        format_machine(result["before"], result["after"]),
        "",
        f"Data: `make_strf_dataset` NS1-shaped, {data.X.shape[0]} stimuli x {data.X.shape[1]} frames x "
        f"{data.X.shape[2]} bands, {data.y.shape[2]} neurons ({int(data.separable.sum())} with separable "
        f"ground truth), {data.y.shape[3]} repeats; split {len(data.train)} train / {len(data.valid)} "
        f"valid / {len(data.test)} test stimuli for both libraries. deepSTRF: the seed's settings "
        f"(AdamW lr {DEEPSTRF_LR:g}, weight decay 0, batch 1 stimulus, {epochs} epochs, no early "
        f"stopping, last epoch kept). skstrf: fit on train+valid with the last {len(data.valid)} "
        f"stimuli as validation; skstrf times are the median of {repeats} fits after a warm-up fit. "
        "fit (s) is wall time; CPU (s) the process's CPU time over all its threads. "
        "Test scores of both libraries are computed with `skstrf.metrics` on the same test stimuli. "
        "Speed-up: deepSTRF's whole fit time over skstrf's for the default rows, deepSTRF's s/epoch "
        "over skstrf's for the fixed-epoch gradient rows.",
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
    p.add_argument("--seed", type=int, default=0, help="seed of the data and of both libraries")
    p.add_argument("--threads", type=int, default=2, help="torch/OpenMP threads of both libraries")
    p.add_argument("--repeats", type=int, default=3, help="skstrf fits per row (the median is reported)")
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
        deepstrf_worker(args.data, args.out, args.kernels, args.epochs, args.seed, args.device, args.threads)
        return
    set_threads(args.threads)
    python = None if args.skip_deepstrf else find_deepstrf_python(args.deepstrf_python)
    if python is None and not args.skip_deepstrf:
        sys.exit("deepSTRF is not importable here: set DEEPSTRF_PYTHON to the python of an environment "
                 "with deepstrf==0.1.0 (see benchmarks/README.md), or pass --skip-deepstrf.")
    from _common import ns1_like

    data = ns1_like(args.n_neurons, args.seed, n_stimuli=args.n_stimuli, n_times=args.n_times)
    result = compare(data, args.kernels, args.epochs, args.seed, args.device, args.threads,
                     args.repeats, python)
    command = "python benchmarks/bench_vs_deepstrf.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = report_markdown(result, data, args.epochs, args.repeats, command.strip())
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    if args.json:
        args.json.write_text(json.dumps(
            {k: v for k, v in result.items()}, indent=1, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


if __name__ == "__main__":
    main()
