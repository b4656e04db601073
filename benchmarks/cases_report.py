"""What each benchmark case holds: sizes, frames, repeats, noise ceiling, build time.

Builds (or loads from the cache) every case: the third-party ones of ``third_party.py``
(naplib's sample speech, the Bruce-Zilany-Carney auditory nerve) and the variants of
``make_realistic_dataset`` that differ from the LN model's assumptions (what the cells heard
before each stimulus, outputs that are not softplus + Poisson); prints one row per case.
Run it in the benchmark environment (see ``benchmarks/README.md``)::

    nice -n 19 /work/peers-venv/bin/python benchmarks/cases_report.py
    /work/peers-venv/bin/python benchmarks/cases_report.py --quick   # tiny auditory nerve

Columns: stimuli; frames per stimulus (valid frames, min-max) and in total (seconds of
sound); bands of X; frame step; neurons (fibres); repeats; mean rate (spikes/s, for spike
counts); the noise ceiling ``skstrf.metrics.noise_ceiling`` (Schoppe et al. 2016: the
highest cc a perfect model can reach) and the explainable variance (signal power over the
single-trial variance, Sahani & Linden 2003), each as the mean [min, max] over neurons,
where the case has repeats (with one repeat neither exists, and the score is cc); the
seconds it took to build or load; and where it came from.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _common import HEADLINE_SEED, machine_info, markdown_table, format_machine, publish

from skstrf.datasets import make_realistic_dataset, make_strf_dataset
from skstrf.metrics import noise_ceiling, noise_power, signal_power

sys.path.insert(0, str(Path(__file__).resolve().parent))
import third_party  # noqa: E402  (benchmarks/ is not a package)


def _realistic(layout: str, preceding: str, nonlinearity: str) -> Callable:
    def build(args):
        n_neurons = None if layout == "continuous" else 8
        return make_realistic_dataset(layout, n_neurons=n_neurons, preceding=preceding,
                                      nonlinearity=nonlinearity, random_state=args.seed)
    return build


def _auditory_nerve(args):
    return third_party.make_auditory_nerve_case(cache=args.cache, **(third_party.QUICK_AN if args.quick else {}))


CASES: dict[str, Callable] = {
    "naplib sample speech (third party)": lambda args: third_party.load_naplib_speech(),
    "auditory nerve, Bruce-Zilany-Carney (third party)": _auditory_nerve,
    "NS1-like (make_strf_dataset)": lambda args: make_strf_dataset(n_neurons=119, random_state=args.seed),
}
for _layout, _name in (("stimuli", "songs"), ("continuous", "continuous")):
    for _preceding, _nl in (("silence", "softplus"), ("previous", "softplus"), ("background", "softplus"),
                            ("silence", "threshold-power"), ("silence", "adaptation"),
                            ("background", "adaptation")):
        CASES[f"{_name}: preceding={_preceding}, {_nl}"] = _realistic(_layout, _preceding, _nl)


def _spread(values: np.ndarray) -> str:
    values = np.asarray(values, dtype=float)
    ok = values[np.isfinite(values)]
    if ok.size == 0:
        return "undefined"
    text = f"{ok.mean():.2f} [{ok.min():.2f}, {ok.max():.2f}]"
    if ok.size < values.size:
        text += f" ({values.size - ok.size} undefined)"
    return text


def describe(name: str, data, seconds: float, source: str) -> dict:
    """One row of the report from a case's Bunch."""
    X, y = data.X, data.y
    stimulus_layout = y.ndim == 4 or (X is not None and X.ndim == 3) or (X is None and y.ndim == 4)
    if not stimulus_layout:  # one continuous recording: one "stimulus"
        y = y[None]
        X = None if X is None else X[None]
    has_repeats = y.ndim == 4
    frames_valid = ~np.isnan(y.reshape(*y.shape[:2], -1)).all(axis=2)
    lengths = frames_valid.sum(axis=1)
    row = {"case": name, "stimuli": len(lengths), "frames": f"{lengths.min()}-{lengths.max()}",
           "total": f"{lengths.sum()} ({lengths.sum() * data.dt_ms / 1000:.0f} s)",
           "bands": "no X (front end missing)" if X is None else X.shape[2], "dt": data.dt_ms,
           "neurons": y.shape[2], "repeats": y.shape[3] if has_repeats else 1,
           "seconds": seconds, "source": source}
    if has_repeats:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sp, npow = signal_power(y), noise_power(y)
            row["ceiling"] = _spread(noise_ceiling(y))
            row["explainable"] = _spread(sp / (sp + npow))
        row["rate"] = f"{np.nanmean(y) * 1000.0 / data.dt_ms:.1f}"
    else:
        row["ceiling"] = row["explainable"] = "one repeat (score cc)"
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=HEADLINE_SEED, help="seed of the generated cases")
    parser.add_argument("--cache", help="cache folder of the auditory-nerve case (see third_party.py)")
    parser.add_argument("--quick", action="store_true", help="the tiny auditory-nerve case")
    parser.add_argument("--only", nargs="+", help="case names containing any of these words")
    parser.add_argument("--markdown", help="write the table to this file")
    args = parser.parse_args(argv)
    before = machine_info()
    rows = []
    for name, build in CASES.items():
        if args.only and not any(word in name for word in args.only):
            continue
        start = time.perf_counter()
        data = build(args)
        seconds = time.perf_counter() - start
        if "auditory" in name:
            gen = data.generation
            cpu = f"{gen['cpu_seconds']} s CPU" if "cpu_seconds" in gen else "CPU time not recorded"
            load = ", ".join(f"{v:.1f}" for v in gen.get("machine_load", []))
            source = (f"{'cache' if data.from_cache else 'simulated now'}: simulation took "
                      f"{gen.get('seconds')} s wall, {cpu}, load average at its end {load}")
        elif "naplib" in name:
            source = f"file {data.source}"
        else:
            source = f"generated, seed {args.seed}"
        rows.append(describe(name, data, seconds, source))
        print(f"{name}: {seconds:.1f} s", file=sys.stderr, flush=True)
    text = markdown_table(rows, [
        ("case", "case", ""), ("stimuli", "stimuli", ""), ("frames", "frames per stimulus", ""),
        ("total", "frames in all", ""), ("bands", "bands", ""), ("dt", "frame ms", "g"),
        ("neurons", "neurons", ""), ("repeats", "repeats", ""), ("rate", "spikes/s", ""),
        ("ceiling", "noise ceiling", ""), ("explainable", "explainable variance", ""),
        ("seconds", "build/load s", ".1f"), ("source", "source", "")])
    text += "\n\n" + format_machine(before, machine_info())
    publish(text, args.markdown)


if __name__ == "__main__":
    main()
