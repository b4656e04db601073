"""The closed-form defaults and the history rule on every case: third-party sound and our own generators.

Run from the repository root in the benchmark environment (naplib's sample file and the
auditory-nerve case need it; see ``benchmarks/README.md``), on a shared machine with one
thread and low priority (scores only: no time is reported)::

    OMP_NUM_THREADS=1 nice -n 19 /work/peers-venv/bin/python benchmarks/defaults_cases.py --markdown /tmp/defaults_cases.md
    /work/peers-venv/bin/python benchmarks/defaults_cases.py --quick      # tiny versions, minutes
    /work/peers-venv/bin/python benchmarks/defaults_cases.py --cases naplib auditory-nerve --als

Each candidate is ``STRFRegressor(n_lags=...)`` (the closed-form vanilla ridge) with ONE
option changed; the first candidate, today's defaults, is the reference:

- the history before each stimulus: ``history="mean"`` (default: each band's training mean),
  ``"zero"`` (zero in X's units, other toolboxes' rule), and "drop": the first
  ``n_lags - 1`` frames of every stimulus (of the training recording) are left out of the
  loss (``lead_in=n_lags - 1`` at fit) and every frame is then predicted with the mean
  history (``lead_in=0`` at predict), so that it is scored on the same frames as the rest;
- the penalty's choice: ``cv`` 3 or 10 (default 5), ``alpha_per_neuron=False`` (one
  penalty for all neurons; ``alpha_pooling=1`` is the same choice, the same code path of
  ``skstrf._selection.choose``, so it is scored once), ``alpha_pooling=0`` (default 0.5),
  a wider penalty grid at the same density (``logspace(-6, 4, 21)`` against the default 13
  values ``logspace(-4, 2, 13)``; the tables also give the share of penalty choices at
  either end of the grid);
- the band-scale floor ``skstrf._penalty.X_SCALE_FLOOR`` 0.01 or 0.1 (the default before
  issue 24.4; default 1, times the median band's of each band's feature space: every case here
  has one space), set for the candidate's fits and restored after them;
- a reference that is not a default candidate (a default cannot use data the user does not
  give): the real lead-in, i.e. what the cells heard just before each stimulus (the
  auditory nerve's ``X_lead_in``, the generator's ``history``; before a held-out block of the
  recording its real preceding frames) given as the first ``n_lags - 1`` frames of each
  stimulus with ``lead_in=n_lags - 1``, predictions kept on the stimulus's own frames.

``--als`` adds a second table for the separable kernel (rank-1 ALS, otherwise defaults):
ALS's penalty as a fraction of the free kernel's cross-validated one
(``skstrf._solvers.ALS_PENALTY_SCALE``: 1, the default, against 1/2 and 1/4).

Cases (X as each case gives it: nothing is subtracted, no generator-only quantity is used):

- ``naplib``: naplib's sample speech (``third_party.load_naplib_speech``): 10 excerpts, 128
  auditory-spectrogram bands (non-negative, silence at 0) at 10 ms, 10 channels simulated by
  naplib's authors from linear STRFs, one repeat (score: cc); 30 lags; 5 outer folds of 2
  excerpts.
- ``auditory-nerve``: 120 Bruce-Zilany-Carney fibres (``third_party.make_auditory_nerve_case``)
  hearing 16 sounds, 10 repeats, 32 bands of dB SPL (floor 0 dB SPL) at 5 ms (cc_norm); 20
  lags; 4 outer folds of 4 stimuli.
- ``songs: ...`` and ``continuous: ...``: ``make_realistic_dataset`` for each
  (preceding, nonlinearity) of ``_common.REALISTIC_VARIANTS`` (X: log10 power as
  generated); songs: 16 cells, 20 ragged songs, 5 outer folds of 4 songs; continuous: 10
  units, one 7 s recording of 2 envelopes, 5 contiguous blocks (each block predicted from
  the whole recording, so that it has its true history; the training frames are the other
  blocks joined); 20 lags; cc_norm.
- ``ns1-like``: ``make_strf_dataset`` at NS1's size (20 stimuli x 999 frames x 34 bands, 119
  cells, 20 repeats), 5 outer folds of 4 stimuli, 15 lags, cc_norm.

Every outer fold fits the candidate on the training stimuli only (its penalty chosen there by
its own inner search) and predicts the held-out stimuli alone; each neuron is scored once on
the out-of-fold predictions of all folds pooled (``_common.test_scores``). Each candidate is
compared with the reference neuron by neuron: the mean paired difference and its 95 %
bootstrap interval over neurons (``_common.mean_interval``).

Seeds. The generated cases are built on the TUNING seeds (``_common.TUNING_SEEDS``: the
defaults are chosen there) and, separately, on fresh REPORT seeds (default 2, 3, 4: no
default was chosen on them); the neurons of the seeds of each group are pooled. The
third-party cases have no seed: they are one dataset each, used both to choose and to
report, so a choice they support must also hold on the generated report seeds.

The rule (issue 24): a default may not win on one case and lose more than 0.01 on another.
"Wins": the interval of the paired difference lies above 0. "Loses more than 0.01": the
mean paired difference is below -0.01. The summary lists, per candidate, where it wins and
where it loses, on the tuning cases (generated tuning seeds + third party) and on the report
cases (generated report seeds + third party).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from _common import (REALISTIC_VARIANTS, TUNING_SEEDS, format_machine, machine_info, markdown_table,
                     mean_interval, ns1_like, set_threads, test_scores, publish)
from sklearn.model_selection import KFold

import skstrf._penalty
import skstrf._selection
import skstrf._solvers
from skstrf import STRFRegressor
from skstrf.datasets import make_realistic_dataset
from skstrf.model_selection import ContiguousBlocks

sys.path.insert(0, str(Path(__file__).resolve().parent))
import third_party  # noqa: E402  (benchmarks/ is not a package)

REPORT_SEEDS = (2, 3, 4)
LOSS_MARGIN = 0.01
WIDE_GRID = np.logspace(-6, 4, 21)


@dataclass(frozen=True)
class Candidate:
    """One setting of the closed-form fit: options of STRFRegressor and module constants."""

    label: str
    params: dict[str, Any] = field(default_factory=dict)
    floor: float | None = None  # skstrf._penalty.X_SCALE_FLOOR for its fits (None: as it is)
    als_scale: float | None = None  # skstrf._solvers.ALS_PENALTY_SCALE for its fits
    frames: str = "all"  # "all", "drop" (lead_in at fit only) or "lead-in" (the real lead-in)
    reference_only: bool = False  # reported, but not a candidate default (needs extra data)


VANILLA = [
    Candidate("defaults (history='mean', cv=5, alpha per neuron, pooling 0.5, floor 1 (median band of "
              "its space), 13 alphas 1e-4..1e2)"),
    Candidate("history='zero'", {"history": "zero"}),
    Candidate("drop: first n_lags-1 frames of each stimulus out of the loss", frames="drop"),
    Candidate("cv=3", {"cv": 3}),
    Candidate("cv=10", {"cv": 10}),
    Candidate("alpha_per_neuron=False (= alpha_pooling=1)", {"alpha_per_neuron": False}),
    Candidate("alpha_pooling=0", {"alpha_pooling": 0.0}),
    Candidate("floor 0.01", floor=0.01),
    Candidate("floor 0.1", floor=0.1),
    Candidate("alpha grid logspace(-6, 4, 21)", {"alpha": WIDE_GRID}),
    Candidate("real lead-in (reference: what the cells heard before; not a default)", frames="lead-in",
              reference_only=True),
]

ALS = [
    Candidate("separable, defaults (ALS penalty = the free kernel's)", {"kernel": "separable"}, als_scale=1.0),
    Candidate("separable, ALS penalty x 1/2", {"kernel": "separable"}, als_scale=0.5),
    Candidate("separable, ALS penalty x 1/4", {"kernel": "separable"}, als_scale=0.25),
]


@dataclass
class Dataset:
    """One dataset of a case: X and y as given, outer folds, lags and what preceded it."""

    X: np.ndarray
    y: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]
    n_lags: int
    lead: np.ndarray | None  # frames heard just before each stimulus (or the recording)
    metric: str  # "cc" (one repeat) or "cc_norm"


@dataclass
class Case:
    """A case: a name, a description and its datasets per seed group."""

    name: str
    description: str
    third_party: bool
    build: Callable[[int | None], Dataset]  # seed (None for a third-party case) -> Dataset


# --- the cases -----------------------------------------------------------------------------

def stimulus_folds(n_stimuli: int, n_splits: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Outer folds of whole stimuli, contiguous and in order (KFold without shuffling)."""
    return list(KFold(min(n_splits, n_stimuli)).split(np.arange(n_stimuli)))


def cases(quick: bool, cache: str | None) -> list[Case]:
    """Every case, tiny with ``quick``."""

    def naplib(seed):
        d = third_party.load_naplib_speech()
        X, y, n_lags = d.X, d.y, 30
        if quick:  # 4 excerpts, their first 8 s, every 8th band
            X, y, n_lags = X[:4, :800, ::8], y[:4, :800], 5
        return Dataset(X, y, stimulus_folds(len(X), 2 if quick else 5), n_lags, None, "cc")

    def auditory_nerve(seed):
        d = third_party.make_auditory_nerve_case(log=None, cache=cache, **(third_party.QUICK_AN if quick else {}))
        if d.X is None:
            raise RuntimeError("the auditory-nerve case has no X: its front end (skstrf.audio) is missing")
        return Dataset(d.X, d.y, stimulus_folds(len(d.X), len(d.X) if quick else 4), 8 if quick else 20,
                       d.X_lead_in, "cc_norm")

    def realistic(layout, preceding, nonlinearity):
        def build(seed):
            n_neurons = (2 if quick else 16) if layout == "stimuli" else (2 if quick else 10)
            d = make_realistic_dataset(layout, n_neurons=n_neurons, preceding=preceding,
                                       nonlinearity=nonlinearity, random_state=seed)
            if layout == "continuous":
                return Dataset(d.X, d.y, list(ContiguousBlocks(2 if quick else 5).split(d.X)), 20, d.history,
                               "cc_norm")
            X, y, lead = (d.X[:6], d.y[:6], d.history[:6]) if quick else (d.X, d.y, d.history)
            return Dataset(X, y, stimulus_folds(len(X), 2 if quick else 5), 20, lead, "cc_norm")
        return build

    def ns1(seed):
        sizes = {"n_stimuli": 8, "n_times": 200, "n_neurons": 6} if quick else {}
        d = ns1_like(random_state=seed, **sizes)
        return Dataset(d.X, d.y, stimulus_folds(len(d.X), 2 if quick else 5), 15, None, "cc_norm")

    out = [
        Case("naplib", "naplib sample speech: 10 excerpts x 128 bands at 10 ms, X as given (non-negative, "
             "silence at 0), 10 simulated channels, one repeat (cc); 30 lags; 5 outer folds of 2 excerpts; "
             "no lead-in", True, naplib),
        Case("auditory-nerve", "Bruce-Zilany-Carney auditory nerve: 120 fibres, 16 sounds, 10 repeats; X: 32 "
             "bands, dB SPL (floor 0), 5 ms; 20 lags; 4 outer folds of 4 stimuli; lead-in: X_lead_in", True,
             auditory_nerve),
    ]
    for preceding, nonlinearity in REALISTIC_VARIANTS:
        out.append(Case(f"songs: {preceding}, {nonlinearity}",
                        f"make_realistic_dataset songs, preceding={preceding!r}, nonlinearity={nonlinearity!r}: "
                        "16 cells, 20 songs x 32 bands (log10 power as generated), 10 trials; 20 lags; 5 outer "
                        "folds of 4 songs; lead-in: the generator's history", False,
                        realistic("stimuli", preceding, nonlinearity)))
    for preceding, nonlinearity in REALISTIC_VARIANTS:
        out.append(Case(f"continuous: {preceding}, {nonlinearity}",
                        f"make_realistic_dataset continuous, preceding={preceding!r}, "
                        f"nonlinearity={nonlinearity!r}: 10 units, 700 frames x 2 envelopes (log10 power), 20 "
                        "repeats; 20 lags; 5 contiguous blocks; lead-in: the generator's history before the "
                        "recording, the real preceding frames before a training part", False,
                        realistic("continuous", preceding, nonlinearity)))
    out.append(Case("ns1-like", "make_strf_dataset at NS1's size: 20 stimuli x 999 frames x 34 bands, 119 "
                    "cells, 20 repeats; 15 lags; 5 outer folds of 4 stimuli; no lead-in", False, ns1))
    if quick:
        for case in out:
            case.description = "QUICK: a tiny version of " + case.description
    return out


# --- one candidate on one dataset --------------------------------------------------------

class _Constants:
    """Set the candidate's module constants for its fits, and restore them after."""

    def __init__(self, cand: Candidate) -> None:
        self.cand = cand

    def __enter__(self) -> None:
        self.saved = (skstrf._penalty.X_SCALE_FLOOR, skstrf._solvers.ALS_PENALTY_SCALE)
        if self.cand.floor is not None:
            skstrf._penalty.X_SCALE_FLOOR = self.cand.floor
        if self.cand.als_scale is not None:
            skstrf._solvers.ALS_PENALTY_SCALE = self.cand.als_scale

    def __exit__(self, *exc: object) -> None:
        skstrf._penalty.X_SCALE_FLOOR, skstrf._solvers.ALS_PENALTY_SCALE = self.saved


def _with_lead(lead: np.ndarray, X: np.ndarray, y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """X with the last ``k`` lead frames before each stimulus (axis 1), y with ``k`` frames of
    zeros there (the estimator neither fits nor scores a lead-in's responses)."""
    pad = np.zeros((y.shape[0], k, *y.shape[2:]))
    return np.concatenate([lead[:, lead.shape[1] - k:], X], axis=1), np.concatenate([pad, y], axis=1)


def fold_predictions(data: Dataset, cand: Candidate) -> tuple[np.ndarray | None, np.ndarray]:
    """Out-of-fold predictions of one candidate, and the chosen penalties of every fold.

    Returns
    -------
    pred : ndarray of shape y's without its repeat axis, or None
        None when the candidate needs a lead-in the dataset does not have.
    alphas : ndarray of shape (n_folds, n_neurons)
    """
    X, y, L = data.X, data.y, data.n_lags
    k = 0
    if cand.frames == "lead-in":
        if data.lead is None:
            return None, np.empty((0, 0))
        k = min(L - 1, data.lead.shape[-2])
        if not np.isfinite(data.lead[..., data.lead.shape[-2] - k:, :]).all():
            raise ValueError("the lead-in frames are not all finite")
    recording = X.ndim == 2
    shape = y.shape[:-1] if y.ndim == X.ndim + 1 else y.shape
    pred = np.full(shape, np.nan)
    alphas = []
    lead_in = {"drop": L - 1, "lead-in": k}.get(cand.frames, 0)
    if recording and cand.frames == "lead-in":
        # frames -k..-1 come from the generator's history before the recording
        X_full = np.concatenate([data.lead[data.lead.shape[0] - k:], X])
        y_full = np.concatenate([np.zeros((k, *y.shape[1:])), y])
    elif cand.frames == "lead-in":
        X_full, y_full = _with_lead(data.lead, X, y, k)
    for train, test in data.folds:
        est = STRFRegressor(n_lags=L, random_state=0, lead_in=lead_in, **cand.params)
        with warnings.catch_warnings(), _Constants(cand):
            warnings.simplefilter("ignore")  # near-constant bands, cc fallbacks: scores only
            if cand.frames == "lead-in" and recording:
                # the training part's own k preceding frames are its lead-in (before the
                # recording: the generator's history; after a held-out block: its last frames)
                idx = np.r_[np.arange(train[0], train[0] + k), train + k]
                est.fit(X_full[idx], y_full[idx])
                pred[test] = est.predict(X_full)[k:][test]
            elif cand.frames == "lead-in":
                est.fit(X_full[train], y_full[train])
                pred[test] = est.predict(X_full[test])[:, k:]
            else:
                est.fit(X[train], y[train])
                if cand.frames == "drop":  # the rule drops frames from the loss, not from predict
                    est.set_params(lead_in=0)
                pred[test] = est.predict(X)[test] if recording else est.predict(X[test])
        alphas.append(np.broadcast_to(est.alpha_, (shape[-1],)))
    return pred, np.array(alphas)


def neuron_scores(data: Dataset, pred: np.ndarray) -> np.ndarray:
    """Each neuron's score on the pooled out-of-fold predictions (cc with one repeat)."""
    y = data.y if data.y.ndim == data.X.ndim + 1 else data.y[..., None]
    cc, ccn = test_scores(y, pred)
    return cc if data.metric == "cc" else ccn


def grid_edges(cand: Candidate, alphas: np.ndarray) -> tuple[float, float]:
    """Shares of the (fold, neuron) penalty choices at the lowest and the highest grid value."""
    grid = np.atleast_1d(cand.params.get("alpha", skstrf._selection.DEFAULT_ALPHAS))
    if alphas.size == 0 or grid.size < 2:
        return float("nan"), float("nan")
    return float(np.mean(alphas <= grid.min() * (1 + 1e-9))), float(np.mean(alphas >= grid.max() * (1 - 1e-9)))


# --- running and reporting ----------------------------------------------------------------

def groups(case: Case, tuning: list[int], report: list[int]) -> Iterator[tuple[str, list]]:
    """The seed groups of a case: one ("both", [None]) for a third-party case."""
    if case.third_party:
        yield "both", [None]
    else:
        yield "tuning", tuning
        yield "report", report


def run_case(case: Case, candidates: list[Candidate], tuning: list[int], report: list[int]) -> dict:
    """Per-neuron scores (neurons of a group's seeds pooled) and grid edges, per group and candidate."""
    out: dict[str, dict[str, Any]] = {}
    for group, seeds in groups(case, tuning, report):
        scores: dict[str, list] = {c.label: [] for c in candidates}
        edges: dict[str, list] = {c.label: [] for c in candidates}
        for seed in seeds:
            data = case.build(seed)
            for cand in candidates:
                start = time.perf_counter()
                pred, alphas = fold_predictions(data, cand)
                if pred is None:
                    scores[cand.label] = None
                    continue
                scores[cand.label].append(neuron_scores(data, pred))
                edges[cand.label].append(alphas.ravel())
                print(f"[{case.name} | {group} seed {seed}] {cand.label}: {np.nanmean(scores[cand.label][-1]):.4f} "
                      f"({time.perf_counter() - start:.0f} s, load {machine_info()['loadavg'][0]})",
                      file=sys.stderr, flush=True)
        out[group] = {
            "scores": {c: (None if s is None else np.concatenate(s)) for c, s in scores.items()},
            "edges": {c.label: grid_edges(c, np.concatenate(edges[c.label]) if edges[c.label] else np.empty(0))
                      for c in candidates},
        }
    return out


def compare(result: dict, candidates: list[Candidate]) -> dict[str, dict[str, tuple]]:
    """Per group and candidate: (mean score, (mean, low, high, n) of the paired difference)."""
    reference = candidates[0].label
    out: dict[str, dict[str, tuple]] = {}
    for group, res in result.items():
        ref = res["scores"][reference]
        out[group] = {}
        for cand in candidates:
            s = res["scores"][cand.label]
            if s is None:
                out[group][cand.label] = None
                continue
            out[group][cand.label] = (float(np.nanmean(s)), mean_interval(s - ref))
    return out


def case_table(case: Case, result: dict, comparison: dict, candidates: list[Candidate]) -> str:
    """One markdown table: a row per candidate, the groups side by side."""
    rows = []
    for i, cand in enumerate(candidates):
        row = {"candidate": cand.label}
        for group in comparison:
            entry = comparison[group][cand.label]
            if entry is None:
                row[f"{group}_score"] = "n/a (no lead-in)"
                continue
            score, (d, lo, hi, n) = entry
            row[f"{group}_score"] = f"{score:.4f}"
            row[f"{group}_diff"] = "reference" if i == 0 else f"{d:+.4f} [{lo:+.4f}, {hi:+.4f}]"
            row[f"{group}_n"] = n
            low, high = result[group]["edges"][cand.label]
            if np.isfinite(low):
                row[f"{group}_edges"] = f"{100 * low:.0f} / {100 * high:.0f}"
        rows.append(row)
    columns = [("candidate", "candidate", "")]
    for group in comparison:
        name = {"both": "tuning = report", "tuning": "tuning seeds", "report": "report seeds"}[group]
        columns += [(f"{group}_score", f"{name}: mean score", ""),
                    (f"{group}_diff", f"{name}: minus defaults [95% CI over neurons]", ""),
                    (f"{group}_n", "neurons", ""), (f"{group}_edges", "% alphas at grid low / high", "")]
    return f"**{case.name}** — {case.description}.\n\n" + markdown_table(rows, columns)


def summary(all_comparisons: dict[str, dict], candidates: list[Candidate], third_party: set[str]) -> str:
    """Per candidate: where it wins and where it loses more than the margin, tuning and report."""
    rows = []
    for cand in candidates[1:]:
        row = {"candidate": cand.label + (" [reference only]" if cand.reference_only else "")}
        verdict = {}
        for side in ("tuning", "report"):
            wins, losses, small = [], [], []
            for case, comparison in all_comparisons.items():
                group = "both" if case in third_party else side
                entry = comparison[group][cand.label]
                if entry is None:
                    continue
                d, lo, hi, _ = entry[1]
                tag = f"{case} ({d:+.3f})"
                if lo > 0:
                    wins.append(tag)
                elif d < -LOSS_MARGIN:
                    losses.append(tag)
                elif hi < 0:
                    small.append(tag)
            row[f"{side}_wins"] = "; ".join(wins) or "none"
            row[f"{side}_losses"] = "; ".join(losses) or "none"
            row[f"{side}_small"] = "; ".join(small) or "none"
            verdict[side] = ("no win" if not wins else "fails the rule" if losses else "passes the rule")
        row["verdict"] = f"tuning: {verdict['tuning']}; report: {verdict['report']}"
        rows.append(row)
    return markdown_table(rows, [
        ("candidate", "candidate", ""),
        ("tuning_wins", "tuning: wins on (CI > 0)", ""),
        ("tuning_losses", f"tuning: loses more than {LOSS_MARGIN} on", ""),
        ("tuning_small", f"tuning: loses less than {LOSS_MARGIN}, CI < 0, on", ""),
        ("report_wins", "report: wins on", ""),
        ("report_losses", f"report: loses more than {LOSS_MARGIN} on", ""),
        ("report_small", f"report: loses less than {LOSS_MARGIN}, CI < 0, on", ""),
        ("verdict", "verdict", "")])


def main(argv: list[str] | None = None) -> None:
    names = [c.name for c in cases(False, None)]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", metavar="CASE",
                        help=f"cases whose names start with any of these (default: all; names: "
                        f"{', '.join(names)})")
    parser.add_argument("--tuning-seeds", type=int, nargs="+", default=list(TUNING_SEEDS))
    parser.add_argument("--report-seeds", type=int, nargs="+", default=list(REPORT_SEEDS))
    parser.add_argument("--als", action="store_true", help="also the separable kernel's ALS penalty scale")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache", help="cache folder of the auditory-nerve case (see third_party.py)")
    parser.add_argument("--quick", action="store_true", help="tiny versions, one seed per group")
    parser.add_argument("--candidates", nargs="+", metavar="LABEL",
                        help="only the candidates whose labels start with any of these (the defaults, the "
                        "reference of every difference, are always run), e.g. \"history='zero'\" \"floor 0.1\"")
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    if sorted(args.tuning_seeds) != sorted(TUNING_SEEDS):
        parser.error(f"--tuning-seeds must be _common.TUNING_SEEDS {list(TUNING_SEEDS)}: defaults are chosen there")
    reused = sorted(set(args.report_seeds) & set(TUNING_SEEDS))
    if reused:
        parser.error(f"report seeds {reused} are tuning seeds; report seeds must be fresh")
    if args.quick:
        args.tuning_seeds, args.report_seeds = args.tuning_seeds[:1], args.report_seeds[:1]
    set_threads(args.threads)
    chosen = [c for c in cases(args.quick, args.cache)
              if not args.cases or any(c.name.startswith(prefix) for prefix in args.cases)]
    if not chosen:
        parser.error(f"no case matches {args.cases}")
    sets = [("Vanilla (closed-form ridge)", VANILLA)] + ([("Separable (rank-1 ALS)", ALS)] if args.als else [])
    if args.candidates:  # the first candidate of a set is its reference: always kept
        sets = [(title, [c for k, c in enumerate(group)
                         if k == 0 or any(c.label.startswith(prefix) for prefix in args.candidates)])
                for title, group in sets]
    before = machine_info()
    command = "python benchmarks/defaults_cases.py " + " ".join(argv if argv is not None else sys.argv[1:])
    parts = [f"Command: `{command.strip()}`",
             f"Tuning seeds {', '.join(map(str, args.tuning_seeds))}; report seeds "
             f"{', '.join(map(str, args.report_seeds))} (generated cases, neurons of a group's seeds pooled); "
             "the third-party cases (naplib, auditory-nerve) have no seed and are both tuning and report "
             "cases, so a choice they support must also hold on the report seeds. Scores: held-out cc_norm "
             "(cc for naplib), each neuron on the out-of-fold predictions of all outer folds pooled. "
             "Scores only: the machine was shared, no time is reported."]
    third = {c.name for c in chosen if c.third_party}
    for title, candidates in sets:
        comparisons = {}
        parts.append(f"### {title}")
        for case in chosen:
            result = run_case(case, candidates, args.tuning_seeds, args.report_seeds)
            comparisons[case.name] = compare(result, candidates)
            parts.append(case_table(case, result, comparisons[case.name], candidates)
                         + f"\n\nLoad average at the case's end: {', '.join(map(str, machine_info()['loadavg']))}.")
            print(parts[-1] + "\n", file=sys.stderr, flush=True)
        parts.append(f"Summary ({title}): a candidate wins on a case where the 95% interval of its paired "
                     f"difference lies above 0, loses more than {LOSS_MARGIN} where the mean difference is "
                     f"below -{LOSS_MARGIN}. The rule: no default may win on one case and lose more than "
                     f"{LOSS_MARGIN} on another. Differences in parentheses.\n\n"
                     + summary(comparisons, candidates, third))
    parts.append(format_machine(before, machine_info()) + f" Threads: {args.threads}."
                 + (" QUICK RUN: tiny sizes, the numbers mean nothing." if args.quick else ""))
    text = "\n\n".join(parts)
    publish(text, args.markdown)


if __name__ == "__main__":
    main()
