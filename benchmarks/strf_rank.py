"""How low-rank are the STRFs of each case? (issue 24 item 5: a separable kernel must match
vanilla "where the truth is smooth or low-rank").

For every case of ``kernels_earn.py``, the share of each neuron's STRF energy (sum of squared
weights) in its first 1..5 singular components (frequency x lag), mean and smallest over
neurons, from:

- the default vanilla fit on every stimulus (``contributions_``: weights x band standard
  deviation, the STRF in units of the prediction), which a user has; it holds estimation
  noise, which spreads energy over every component, so its shares are lower bounds of the
  fitted cell's;
- for the generated songs, also the generator's true STRFs (a quantity no user has: a
  diagnosis, not a headline).

Run in the benchmark environment (naplib's case and the auditory nerve need naplib and
brucezilany; benchmarks/README.md)::

    OMP_NUM_THREADS=1 python benchmarks/strf_rank.py --markdown FILE
    python benchmarks/strf_rank.py --quick
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import machine_info, publish_table  # noqa: E402
from kernels_earn import SONGS, case_parser, each_case, load_case  # noqa: E402

from skstrf import STRFRegressor  # noqa: E402
from skstrf.datasets import make_realistic_dataset  # noqa: E402

RANKS = (1, 2, 3, 4, 5)


def energy_shares(strfs: np.ndarray) -> np.ndarray:
    """(n_neurons, len(RANKS)): share of each STRF's squared weights in its first r singular components."""
    values = np.linalg.svd(np.asarray(strfs, dtype=np.float64), compute_uv=False) ** 2  # (N, min(F, L))
    total = values.sum(axis=1, keepdims=True)
    cumulative = np.cumsum(values, axis=1) / np.where(total > 0, total, 1.0)
    return cumulative[:, [min(r, values.shape[1]) - 1 for r in RANKS]]


def row(case: str, source: str, shares: np.ndarray) -> dict:
    cells = {f"r{r}": f"{m:.3f} [{lo:.3f}]" for r, m, lo in zip(RANKS, shares.mean(0), shares.min(0))}
    return {"case": case, "source": source, "neurons": len(shares), **cells}


def main(argv: list[str] | None = None) -> None:
    args, before, rows = case_parser(__doc__.split("\n\n")[0]).parse_args(argv), machine_info(), []
    for case, seed in each_case(args):
        X, y, n_lags, _, description = load_case(case, seed, args.quick)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = STRFRegressor(n_lags=n_lags, random_state=0).fit(X, y)
        rows.append(row(description, "vanilla fit, every stimulus", energy_shares(est.contributions_)))
        if case in SONGS:
            truth = make_realistic_dataset("stimuli", n_neurons=8 if not args.quick else 2, random_state=seed,
                                           **SONGS[case]).strfs
            rows.append(row(description, "generator's truth", energy_shares(truth)))
        print(rows[-1], flush=True)
    columns = [("case", "case", ""), ("source", "STRFs", ""), ("neurons", "neurons", "")] + [
        (f"r{r}", f"rank {r}: mean [min]", "") for r in RANKS]
    publish_table("Share of each STRF's energy in its first r singular components (frequency x lag), mean and "
                  "smallest over neurons.", rows, columns, before, args.quick, args.markdown)


if __name__ == "__main__":
    main()
