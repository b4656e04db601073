"""Which bands the reported STRF shows: weights and contributions on near-silent bands (issue 24.6).

Run from the repository root::

    python benchmarks/silent_bands.py                  # seeds 0-4 (decision) and 100-109 (report)
    python benchmarks/silent_bands.py --seeds 100 101  # any seeds
    python benchmarks/silent_bands.py --quick          # two seeds, to check the script runs

On a log spectrogram some bands hold no sound, only the floor: their standard deviation is
1e-7 to 1e-3 of the loud bands'. A weight there moves the prediction by almost nothing, yet
``strfs_`` may put its largest values on them, and a figure of ``strfs_`` then shows the
floor instead of the cell. This script measures, for cells whose true STRFs are known:

- where the largest ``|strfs_|`` (the weights) and the largest ``|contributions_|``
  (weights times each band's standard deviation over the training frames) fall: on a band
  that carries signal, or on a near-silent band; and the largest silent-band weight over
  the largest signal-band weight;
- how well the figure matches the truth, next to a fit of the same cells without the
  silent bands (paired per neuron: mean difference with a 95 % interval from a bootstrap
  over data seeds, and the share of cells within 0.05): the weights against the true STRF
  and the contributions against the true STRF on the bands that carry signal (the pixels
  both fits have; the true STRFs reach into the silent bands, where no fit can see them),
  and the whole figure of contributions against the true contributions (the true STRF times
  the same band standard deviations);
- the test cc_norm (fitted on the 17 train + valid songs, scored on the 3 test songs);
- the jackknife (:func:`skstrf.inspection.jackknife_strfs`, FDR 0.05, the default floor): the
  significant pixels on silent and on signal bands, and the share of the true STRF's strong
  pixels (true contribution at least half its largest) found, with every pixel tested
  (``min_contribution=0``) and with pixels whose contribution is below 0.001, 0.01 (the
  default) or 0.05 of the STRF's largest left out.

Cases (all from :func:`skstrf.datasets.make_realistic_dataset`, 20 songs, 32 bands, the 6
lowest near-silent, 10 trials, 4 cells per seed, 15 lags):

- ``songs``: the generator as it is (the silent bands hold independent floor noise);
- ``onset leak``: each silent band also carries 1.4e-5 (the team's real cell's silent-band
  SD) times the onsets of the loud bands (the frame-to-frame rise of their mean level,
  half-wave rectified, in units of its SD): its tiny variation predicts the onset-driven cell;
- ``level leak``: the same with the loud bands' mean level itself (sustained sound).

Each case is fitted with ``history="mean"`` (the default) and ``history="zero"`` (the rule
that put 0.17 on the real cell's silent bands), with all bands and without the silent bands,
and with the penalty's band-scale floor (:data:`skstrf._penalty.X_SCALE_FLOOR`, a module
constant set here per row, times the median band's of each band's feature space: these cases
have one) at 0 (plain z-scoring), 0.01, 0.1 (the default before issue 24.4) and 1 (the default).
"""

from __future__ import annotations

import argparse
import inspect
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from _common import format_machine, machine_info, markdown_table, set_threads, strf_correlation, publish

import skstrf._penalty
from skstrf import STRFRegressor
from skstrf.datasets import make_realistic_dataset
from skstrf.inspection import jackknife_strfs
from skstrf.metrics import cc_norm

DEFAULT_FLOOR = skstrf._penalty.X_SCALE_FLOOR
MIN_CONTRIBUTION = inspect.signature(jackknife_strfs).parameters["min_contribution"].default
DECISION_SEEDS = (0, 1, 2, 3, 4)
REPORT_SEEDS = tuple(range(100, 110))
N_LAGS = 15
N_NEURONS = 4
#: The team's real cell: standard deviation of its near-silent bands (issue 24).
LEAK_SD = 1.4e-5
CASES = ("songs", "onset leak", "level leak")
HISTORIES = ("mean", "zero")
FLOORS = tuple(sorted({0.0, 0.01, 0.1, 1.0, DEFAULT_FLOOR}))
#: Thresholds of jackknife_strfs(min_contribution=...) compared (0 tests every pixel).
MIN_CONTRIBUTIONS = (0.0, 0.001, MIN_CONTRIBUTION, 0.05)


def make_case(case: str, seed: int, quick: bool):
    """The realistic songs of ``seed``, with the silent bands changed as ``case`` says."""
    data = make_realistic_dataset(n_neurons=N_NEURONS, n_lags=N_LAGS, random_state=seed,
                                  n_stimuli=8 if quick else None)
    if case == "songs":
        return data
    X = data.X.copy()
    loud = np.setdiff1d(np.arange(X.shape[2]), data.silent_bands)
    level = X[..., loud].mean(axis=2)  # (n_stimuli, n_times), NaN on padding
    if case == "onset leak":
        rise = np.diff(level, axis=1, prepend=level[:, :1])
        signal = np.maximum(rise, 0.0)
    elif case == "level leak":
        signal = level
    else:
        raise ValueError(case)
    signal = (signal - np.nanmean(signal)) / np.nanstd(signal)
    X[..., data.silent_bands] += LEAK_SD * signal[..., None]
    data.X = X
    return data


def fit_rows(data, case: str, seed: int, history: str, floor: float, drop: bool,
             jackknife: bool) -> list[dict[str, Any]]:
    """Per-neuron measurements of one fit (all bands, or without the silent bands)."""
    fit_stimuli = np.concatenate([data.train, data.valid])
    keep = (np.setdiff1d(np.arange(data.X.shape[2]), data.silent_bands) if drop
            else np.arange(data.X.shape[2]))
    silent = np.isin(keep, data.silent_bands)
    signal = ~silent
    X = data.X[..., keep]
    skstrf._penalty.X_SCALE_FLOOR = floor
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the near-silent band warning, expected here
            est = STRFRegressor(n_lags=N_LAGS, history=history).fit(X[fit_stimuli], data.y[fit_stimuli])
            jack = None
            if jackknife:
                jack = jackknife_strfs(est, X[fit_stimuli], data.y[fit_stimuli], min_contribution=0.0)
    finally:
        skstrf._penalty.X_SCALE_FLOOR = DEFAULT_FLOOR
    frames = X[fit_stimuli].reshape(-1, X.shape[2])
    sd = np.nanstd(frames, axis=0)
    true = data.strfs[:, keep]
    true_contrib = true * sd[None, :, None]
    test = cc_norm(data.y[data.test], est.predict(X[data.test]), multioutput="raw_values")
    w, c = est.strfs_, est.contributions_
    rows = []
    for n in range(w.shape[0]):
        wf = np.unravel_index(np.abs(w[n]).argmax(), w[n].shape)[0]
        cf = np.unravel_index(np.abs(c[n]).argmax(), c[n].shape)[0]
        row = {
            "case": case, "seed": seed, "neuron": n, "history": history, "floor": floor, "drop": drop,
            "top_w_signal": not silent[wf], "top_c_signal": not silent[cf],
            "silent_ratio": (np.abs(w[n][silent]).max() / np.abs(w[n][signal]).max()
                             if silent.any() else 0.0),
            # the pixels a fit without the silent bands has: comparable with it
            "r_w": float(strf_correlation(w[n:n + 1, signal], true[n:n + 1, signal])[0]),
            "r_cw": float(strf_correlation(c[n:n + 1, signal], true[n:n + 1, signal])[0]),
            # the whole figure of the contributions (silent bands included)
            "r_c": float(strf_correlation(c[n:n + 1], true_contrib[n:n + 1])[0]),
            "cc_norm": float(test[n]),
        }
        if jackknife:
            strong = np.abs(true_contrib[n]) >= 0.5 * np.abs(true_contrib[n]).max()
            size = np.abs(jack.contributions[n])
            for t in MIN_CONTRIBUTIONS:
                mask = jack.significant[n] & ~(size < t * size.max())
                row[f"jack_silent_{t:g}"] = int(mask[silent].sum())
                row[f"jack_signal_{t:g}"] = int(mask[signal].sum())
                row[f"jack_found_{t:g}"] = float(mask[strong].mean())
        rows.append(row)
    return rows


def bootstrap_mean(values: np.ndarray, groups: np.ndarray, rng: np.random.Generator,
                   n_boot: int = 2000) -> tuple[float, float, float]:
    """Mean of ``values`` and a 95 % percentile interval from resampling whole ``groups``."""
    labels = np.unique(groups)
    per_group = np.array([values[groups == g].mean() for g in labels])
    counts = np.array([(groups == g).sum() for g in labels])
    draws = rng.integers(0, len(labels), (n_boot, len(labels)))
    boot = (per_group[draws] * counts[draws]).sum(1) / counts[draws].sum(1)
    return float(values.mean()), float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


def fmt(interval: tuple[float, float, float], spec: str = "+.3f") -> str:
    mean, low, high = interval
    return f"{mean:{spec}} [{low:{spec}}, {high:{spec}}]"


def summarise(rows: list[dict[str, Any]]) -> str:
    """The evidence tables, as markdown."""
    rng = np.random.default_rng(0)

    def values(key: str, rs: list[dict[str, Any]]) -> np.ndarray:
        return np.array([r[key] for r in rs], dtype=float)

    table = []
    for case in CASES:
        for history in HISTORIES:
            reference = {(r["seed"], r["neuron"]): r for r in rows
                         if r["case"] == case and r["history"] == history and r["drop"]}
            for floor in FLOORS:
                sel = [r for r in rows if r["case"] == case and r["history"] == history
                       and r["floor"] == floor and not r["drop"]]
                if not sel:
                    continue
                groups = np.array([r["seed"] for r in sel])
                ref = [reference[(r["seed"], r["neuron"])] for r in sel]
                row = {"case": case, "history": history,
                       "floor": f"{floor:g}" + (" (default)" if floor == DEFAULT_FLOOR else ""),
                       "top_w": f"{values('top_w_signal', sel).mean():.2f}",
                       "top_c": f"{values('top_c_signal', sel).mean():.2f}",
                       "ratio": f"{np.median(values('silent_ratio', sel)):.2g}"}
                for key in ("r_w", "r_c", "r_cw"):
                    row[key] = fmt(bootstrap_mean(values(key, sel), groups, rng), ".3f")
                    diff = values(key, sel) - values(key, ref)
                    row["d" + key] = fmt(bootstrap_mean(diff, groups, rng))
                    row["w" + key] = f"{(diff >= -0.05).mean():.2f}"
                row["dcc"] = fmt(bootstrap_mean(values("cc_norm", sel) - values("cc_norm", ref), groups, rng))
                table.append(row)
            sel = list(reference.values())
            if sel:
                groups = np.array([r["seed"] for r in sel])
                row = {"case": case, "history": history, "floor": "without silent bands"}
                for key in ("r_w", "r_c", "r_cw"):
                    row[key] = fmt(bootstrap_mean(values(key, sel), groups, rng), ".3f")
                row["dcc"] = "test cc_norm " + fmt(bootstrap_mean(values("cc_norm", sel), groups, rng), ".3f")
                table.append(row)
    out = [markdown_table(table, [
        ("case", "case", ""), ("history", "history", ""), ("floor", "band-scale floor", ""),
        ("top_w", "largest weight on a signal band (share of cells)", ""),
        ("top_c", "largest contribution on a signal band", ""),
        ("ratio", "largest silent / largest signal weight (median)", ""),
        ("r_w", "r(weights, true STRF), signal bands", ""), ("dr_w", "minus without silent bands", ""),
        ("r_c", "r(contributions, true contributions), all bands", ""), ("dr_c", "minus without", ""),
        ("wr_c", "cells within 0.05", ""),
        ("r_cw", "r(contributions, true STRF), signal bands", ""), ("dr_cw", "minus without", ""),
        ("wr_cw", "cells within 0.05", ""),
        ("dcc", "test cc_norm minus without", ""),
    ])]
    jack = [r for r in rows if "jack_silent_0" in r]
    if jack:
        table = []
        for case in CASES:
            for history in HISTORIES:
                sel = [r for r in jack if r["case"] == case and r["history"] == history]
                if not sel:
                    continue
                groups = np.array([r["seed"] for r in sel])
                for t in MIN_CONTRIBUTIONS:
                    silent = values(f"jack_silent_{t:g}", sel)
                    table.append({
                        "case": case, "history": history,
                        "rule": f"{t:g}" + (" (default)" if t == MIN_CONTRIBUTION else
                                            " (every pixel tested)" if t == 0 else ""),
                        "silent": f"{silent.mean():.2f} ({(silent > 0).mean():.0%})",
                        "signal": fmt(bootstrap_mean(values(f"jack_signal_{t:g}", sel), groups, rng), ".2f"),
                        "found": fmt(bootstrap_mean(values(f"jack_found_{t:g}", sel), groups, rng), ".3f"),
                    })
        out.append(markdown_table(table, [
            ("case", "case", ""), ("history", "history", ""), ("rule", "min_contribution", ""),
            ("silent", "significant pixels on silent bands per cell (share of cells with any)", ""),
            ("signal", "significant pixels on signal bands per cell", ""),
            ("found", "share of the strong true pixels found", ""),
        ]))
    return "\n\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="data seeds (default: the decision seeds 0-4, then the report seeds 100-109)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="two seeds, 8 songs: checks the script runs")
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    before = machine_info()
    groups = ({"quick": [0, 1]} if args.quick else {"seeds": args.seeds} if args.seeds
              else {"decision seeds": list(DECISION_SEEDS), "report seeds": list(REPORT_SEEDS)})
    command = "python benchmarks/silent_bands.py " + " ".join(sys.argv[1:] if argv is None else argv)
    sections = []
    for title, seeds in groups.items():
        start = time.perf_counter()
        rows: list[dict[str, Any]] = []
        for seed in seeds:
            for case in CASES:
                data = make_case(case, seed, args.quick)
                for history in HISTORIES:
                    rows += fit_rows(data, case, seed, history, DEFAULT_FLOOR, drop=True, jackknife=False)
                    for floor in FLOORS:
                        rows += fit_rows(data, case, seed, history, floor, drop=False,
                                         jackknife=floor == DEFAULT_FLOOR)
        sections.append(f"### {title}: {', '.join(map(str, seeds))} "
                        f"({time.perf_counter() - start:.0f} s)\n\n{summarise(rows)}")
    text = "\n\n".join([f"Command: `{command.strip()}`", *sections, format_machine(before, machine_info())])
    if args.quick:
        text += "\n\nQUICK RUN: two seeds, 8 songs; numbers mean little."
    publish(text, args.markdown)


if __name__ == "__main__":
    main()
