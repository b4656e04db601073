"""Run the skstrf vs deepSTRF comparison on a CUDA GPU (deepSTRF too when it is importable).

Run from the repository root on a machine with a GPU::

    python benchmarks/gpu.py                          # NS1 size, 100 epochs, on cuda
    python benchmarks/gpu.py --large                  # plus a 1000-neuron x 200-stimulus ridge fit
    python benchmarks/gpu.py --device cpu --quick     # check the script on a CPU-only machine

It prints the same table as ``bench_vs_deepstrf.py``. deepSTRF runs under
``$DEEPSTRF_PYTHON`` (or this interpreter when it can import deepSTRF) and is skipped
otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from _common import HEADLINE_SEED, format_machine, machine_info, markdown_table, ns1_like, peak_rss_mib, set_threads, publish
from bench_vs_deepstrf import KERNELS, compare, find_deepstrf_python, report_markdown


def _device_name(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return "CPU"


def large_fit(device: str, n_stimuli: int, n_neurons: int, n_times: int, seed: int) -> dict:
    """Time one default vanilla (ridge) fit of a large PSTH dataset on ``device``."""
    import torch

    from skstrf import STRFRegressor

    data = ns1_like(n_neurons, seed, n_stimuli=n_stimuli, n_times=n_times, n_repeats=1)
    X, y = data.X, data.y[..., 0]
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    est = STRFRegressor(kernel="vanilla", device=device).fit(X, y)
    seconds = time.perf_counter() - start
    gpu_peak = (torch.cuda.max_memory_allocated(device) / 2**20 if device.startswith("cuda")
                else float("nan"))
    return {"n_stimuli": n_stimuli, "n_neurons": n_neurons, "n_times": n_times, "solver": est.solver_,
            "seconds": seconds, "gpu_peak_mib": gpu_peak, "rss_peak_mib": peak_rss_mib()}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda", help="torch device of both libraries (default cuda)")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--kernels", nargs="+", default=list(KERNELS), choices=KERNELS)
    p.add_argument("--n-neurons", type=int, default=119)
    p.add_argument("--seed", type=int, default=HEADLINE_SEED)
    p.add_argument("--threads", type=int, default=2, help="CPU threads of both libraries")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true",
                   help="tiny data (8 stimuli x 200 frames x 6 neurons, 3 epochs) to check the script")
    p.add_argument("--large", action="store_true", help="also time a 1000 x 200 ridge fit")
    p.add_argument("--deepstrf-python", default=None)
    p.add_argument("--skip-deepstrf", action="store_true")
    p.add_argument("--markdown", type=Path, help="write the results section to this file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("CUDA is not available on this machine (torch.cuda.is_available() is False), so "
                 "there is no GPU to benchmark. Run this on a machine with an NVIDIA GPU and a CUDA "
                 "build of torch, or pass --device cpu to check the script.")
    set_threads(args.threads)
    python = None if args.skip_deepstrf else find_deepstrf_python(args.deepstrf_python)
    if python is None and not args.skip_deepstrf:
        print("deepSTRF not found (set DEEPSTRF_PYTHON): running skstrf only.", file=sys.stderr)
    sizes = ({"n_stimuli": 8, "n_times": 200} if args.quick else {})
    n_neurons = 6 if args.quick else args.n_neurons
    epochs = 3 if args.quick else args.epochs
    data = ns1_like(n_neurons, args.seed, **sizes)
    result = compare(data, args.kernels, epochs, args.seed, args.device, args.threads,
                     1 if args.quick else args.repeats, python)
    command = "python benchmarks/gpu.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = f"Device: {_device_name(args.device)} (`{args.device}`).\n\n" + report_markdown(
        result, data, epochs, 1 if args.quick else args.repeats, command.strip(), args.seed)
    if args.large:
        before = machine_info()
        big = (large_fit(args.device, 10, 20, 200, args.seed) if args.quick
               else large_fit(args.device, 200, 1000, 999, args.seed))
        text += "\n\nLarge closed-form fit (y as a PSTH):\n\n" + markdown_table([big], [
            ("n_neurons", "neurons", "d"), ("n_stimuli", "stimuli", "d"), ("n_times", "frames", "d"),
            ("solver", "solver", ""), ("seconds", "fit (s)", ".2f"),
            ("gpu_peak_mib", "peak GPU memory (MiB)", ".0f"), ("rss_peak_mib", "peak RSS (MiB)", ".0f"),
        ]) + "\n\nOne run (no repeats). " + format_machine(before, machine_info())
    publish(text, args.markdown)


if __name__ == "__main__":
    main()
