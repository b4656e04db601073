"""The penalty and scaling defaults on both synthetic modes: cv, alpha per neuron and its pooling, band-scale floor, ALS's penalty.

Run from the repository root::

    python benchmarks/defaults_realistic.py            # tuning seeds 0 and 1
    python benchmarks/defaults_realistic.py --quick    # one seed, small data

A default must not win on the NS1-like mode and collapse on the realistic one, so every
setting of the closed-form vanilla fit (``STRFRegressor()`` with one option changed) is scored
on three datasets per tuning seed:

- songs: :func:`skstrf.datasets.make_realistic_dataset` (20 ragged songs, 32 bands with 6
  near-silent ones, 10 trials, 8 cells), 5-fold ``KFold`` over the songs, pooled out-of-fold
  cc_norm (each fold fits its 16 training songs, predicts its 4 test songs);
- continuous: the 7 s two-channel recording of 5 units, 5 contiguous blocks
  (:class:`skstrf.model_selection.ContiguousBlocks`), each fold fitted on the other 4 blocks and
  its block predicted from the whole recording (true history), pooled out-of-fold cc_norm;
- NS1-like: ``make_strf_dataset(n_neurons=119)``, fitted on its 17 train+valid stimuli, test
  cc_norm on its 3 test stimuli.

The realistic X is the generator's log power minus each band's level of silence
(``data.X - data.silence``), so that the history before each stimulus is silence; the
band-scale floor is scored on the raw log power too, as users who do not subtract it fit.

Only the TUNING seeds of ``_common.py`` are allowed: the headline tables (``realistic_failures.py``,
``bench_vs_deepstrf.py``) report other seeds. The band-scale floor is the module constant
:data:`skstrf._model.X_SCALE_FLOOR`, set here for each row.

A second table scores the separable kernel (rank-1 ALS, ``kernel="separable"``) with the
fraction of the free kernel's cross-validated penalty that ALS takes, the module constant
:data:`skstrf._solvers.ALS_PENALTY_SCALE`, set here for each row.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from _common import (TUNING_SEEDS, format_machine, machine_info, markdown_table, ns1_like, out_of_fold,
                     pooled_score, set_threads, test_scores)
from sklearn.model_selection import KFold
from sklearn.utils import Bunch

import skstrf._model
import skstrf._solvers
from skstrf import STRFRegressor
from skstrf.datasets import make_realistic_dataset
from skstrf.model_selection import ContiguousBlocks

DEFAULT_FLOOR = skstrf._model.X_SCALE_FLOOR
DEFAULT_ALS_SCALE = skstrf._solvers.ALS_PENALTY_SCALE

# (label, STRFRegressor overrides, band-scale floor)
SETTINGS: list[tuple[str, dict[str, Any], float]] = [
    ("defaults (cv=5, alpha per neuron with pooling 0.5, floor 0.1)", {}, DEFAULT_FLOOR),
    ("cv=3", {"cv": 3}, DEFAULT_FLOOR),
    ("cv=10", {"cv": 10}, DEFAULT_FLOOR),
    ("cv=None (penalty on the last 15% of the stimuli)", {"cv": None}, DEFAULT_FLOOR),
    ("alpha per neuron, own curve only (alpha_pooling=0)", {"alpha_pooling": 0.0}, DEFAULT_FLOOR),
    ("alpha_pooling=2/3", {"alpha_pooling": 2 / 3}, DEFAULT_FLOOR),
    ("one alpha for all neurons (alpha_per_neuron=False)", {"alpha_per_neuron": False}, DEFAULT_FLOOR),
    ("floor 0 (plain per-band z-score)", {}, 0.0),
    ("floor 0.01", {}, 0.01),
    ("floor 1 (every band at least the median band's scale)", {}, 1.0),
]

# (label, fraction of the free kernel's penalty that ALS takes)
ALS_SETTINGS: list[tuple[str, float]] = [
    ("1 (the free kernel's penalty)", 1.0),
    ("1/2", 0.5),
    ("1/4", 0.25),
]


def ns1_score(params: dict, data) -> float:
    """Test cc_norm of a fit on the 17 train+valid stimuli of the NS1-like data."""
    fit = np.r_[data.train, data.valid]
    est = STRFRegressor(random_state=0, validation_fraction=len(data.valid) / len(fit), **params)
    est.fit(data.X[fit], data.y[fit])
    return float(np.nanmean(test_scores(data.y[data.test], est.predict(data.X[data.test]))[1]))


def score_row(label: str, params: dict, data: dict) -> dict[str, Any]:
    """Scores of one setting on every dataset of every seed, and their means per mode."""
    row: dict[str, Any] = {"setting": label}
    for seed, (songs, song_folds, cont, cont_folds, ns1) in data.items():
        row[f"songs_{seed}"] = pooled_score(songs.y, out_of_fold(params, songs.X, songs.y, song_folds, 20))
        row[f"cont_{seed}"] = pooled_score(cont.y, out_of_fold(params, cont.X, cont.y, cont_folds, 20))
        row[f"ns1_{seed}"] = ns1_score(params, ns1)
    for mode in ("songs", "cont", "ns1"):
        row[mode] = float(np.mean([row[f"{mode}_{s}"] for s in data]))
    print(row, file=sys.stderr, flush=True)
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(TUNING_SEEDS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="one seed, small data")
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    fresh = [s for s in args.seeds if s not in TUNING_SEEDS]
    if fresh:
        sys.exit(f"defaults are chosen on the tuning seeds {list(TUNING_SEEDS)} only; got {fresh}")
    if args.quick:
        args.seeds = args.seeds[:1]
    set_threads(args.threads)
    warnings.simplefilter("ignore")  # near-constant bands, cc fallbacks: scores only
    before = machine_info()
    n_songs_cells = 2 if args.quick else 8
    ns1_sizes = {"n_stimuli": 8, "n_times": 200, "n_neurons": 6} if args.quick else {}
    data, raw = {}, {}
    for seed in args.seeds:
        songs = make_realistic_dataset(n_neurons=n_songs_cells, random_state=seed)
        cont = make_realistic_dataset("continuous", random_state=seed)
        folds = list(KFold(5).split(songs.X)), list(ContiguousBlocks(5).split(cont.X))
        ns1 = ns1_like(random_state=seed, **ns1_sizes)
        raw[seed] = (songs, folds[0], cont, folds[1], ns1)
        # silence at zero, as the user guide asks (realistic_failures.py)
        prepared = [Bunch(**{**d, "X": d.X - d.silence}) for d in (songs, cont)]
        data[seed] = (prepared[0], folds[0], prepared[1], folds[1], ns1)
    rows = []
    for label, params, floor in SETTINGS:
        skstrf._model.X_SCALE_FLOOR = floor
        rows.append(score_row(label, params, data))
    skstrf._model.X_SCALE_FLOOR = DEFAULT_FLOOR
    # The floor on the raw log power too: users who do not subtract the silence level.
    raw_rows = []
    for label, params, floor in SETTINGS:
        if label.startswith(("floor", "defaults")):
            skstrf._model.X_SCALE_FLOOR = floor
            raw_rows.append(score_row(label, params, raw))
    skstrf._model.X_SCALE_FLOOR = DEFAULT_FLOOR
    als_rows = []
    for label, scale in ALS_SETTINGS:
        skstrf._solvers.ALS_PENALTY_SCALE = scale
        default = " (default)" if scale == DEFAULT_ALS_SCALE else ""
        als_rows.append(score_row(f"{label}{default}", {"kernel": "separable"}, data))
    skstrf._solvers.ALS_PENALTY_SCALE = DEFAULT_ALS_SCALE
    columns = [("songs", "songs (mean)", ".3f"), ("cont", "continuous (mean)", ".3f"),
               ("ns1", "NS1-like (mean)", ".3f")]
    for seed in data:
        columns += [(f"songs_{seed}", f"songs s{seed}", ".3f"), (f"cont_{seed}", f"cont. s{seed}", ".3f"),
                    (f"ns1_{seed}", f"NS1 s{seed}", ".3f")]
    command = "python benchmarks/defaults_realistic.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = "\n\n".join([
        f"Command: `{command.strip()}`", format_machine(before, machine_info()),
        f"Tuning seeds {', '.join(map(str, data))}; pooled out-of-fold cc_norm (songs: 5-fold over songs, "
        "8 cells; continuous: 5 contiguous blocks, 5 units; NS1-like: test cc_norm of 119 cells). "
        "Scores only: no time is reported.",
        markdown_table(rows, [("setting", "vanilla ridge setting", ""), *columns]),
        "The band-scale floor on the raw log power X (silence not subtracted; zero, the history "
        "before each stimulus, is louder than nearly every frame, and the near-silent bands step "
        "from it to their floor at every stimulus start; the NS1-like columns repeat the above):",
        markdown_table(raw_rows, [("setting", "vanilla ridge setting, raw X", ""), *columns]),
        "Separable kernel (rank-1 ALS, otherwise defaults): ALS's penalty as a fraction of the "
        "free kernel's cross-validated choice (`skstrf._solvers.ALS_PENALTY_SCALE`).",
        markdown_table(als_rows, [("setting", "ALS penalty / free kernel's", ""), *columns])])
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
