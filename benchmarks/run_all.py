"""Regenerate every benchmark table: run each script, splice its section into RESULTS.md.

Run from the repository root (deepSTRF in its own environment, see ``README.md``)::

    DEEPSTRF_PYTHON=../bench-venv/bin/python python benchmarks/run_all.py            # everything
    python benchmarks/run_all.py --skip-slow         # leave out the tuning grids, the 1000 x 200 point and the 8 GB fit
    python benchmarks/run_all.py --only docs-tables vs-deepstrf
    python benchmarks/run_all.py --quick             # tiny sizes, to check every script (no splicing)

Each section's script writes its markdown with ``--markdown`` into ``--out`` (default
``benchmarks/_out``); the text between ``<!-- BEGIN run_all: NAME -->`` and
``<!-- END run_all: NAME -->`` in ``RESULTS.md`` is then replaced by it. ``docs-tables``
also rewrites the include files of the user guide's tables. A section whose script fails
is reported and left as it was, and so is a section that ``RESULTS.md`` has no markers for
(its markdown stays in ``--out``).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "RESULTS.md"


@dataclass
class Section:
    """One regenerated section: its script, arguments, and expected minutes on 2 quiet cores."""

    name: str
    script: str
    args: list[str] = field(default_factory=list)
    minutes: float = 1.0
    slow: bool = False
    slow_args: list[str] | None = None  # replaces ``args`` under --skip-slow (None: skip it)
    python_env: str | None = None  # environment variable naming another interpreter for it


def sections(threads: int, repeats: int) -> list[Section]:
    """The sections in the order of RESULTS.md."""
    t = ["--threads", str(threads)]
    return [
        Section("vs-deepstrf", "bench_vs_deepstrf.py", [*t, "--repeats", str(repeats)], minutes=6.5 * repeats + 2),
        Section("docs-tables", "docs_tables.py", t, minutes=3),
        Section("scaling", "scaling.py", t, minutes=10, slow=True, slow_args=[*t, "--skip-target"]),
        Section("beyond-linear", "beyond_linear.py", t, minutes=4),
        Section("realistic-failures", "realistic_failures.py", t, minutes=10),
        # every case, third-party ones included: the benchmark environment's interpreter
        Section("defaults-cases", "defaults_cases.py", [*t, "--als"], minutes=150, slow=True,
                python_env="PEERS_PYTHON"),
        Section("peers", "peers.py", t, minutes=40, python_env="PEERS_PYTHON"),
        # issue 25's priors and feature spaces; naplib's file and himalaya: the benchmark environment
        Section("priors", "priors.py", [], minutes=120, slow=True, python_env="PEERS_PYTHON"),
        Section("feature-spaces", "feature_spaces.py", [*t, "--himalaya", "--himalaya-seeds", "3"], minutes=50, slow=True,
                python_env="PEERS_PYTHON"),
        Section("silent-bands", "silent_bands.py", [], minutes=10),
        Section("reliability", "reliability.py", [], minutes=5),
        Section("limits", "limits.py", t, minutes=10),
        Section("gradient-step", "gradient_step.py", t, minutes=2),
        Section("defaults", "defaults.py", t, minutes=15, slow=True),
        # writes an 8 GB file (about 9 GB free disk needed) and fits it through dask
        Section("out-of-core", "out_of_core.py", [*t, "--distributed", "2"], minutes=25, slow=True),
    ]


def splice(text: str, name: str, body: str) -> str:
    """Replace the body between the markers of section ``name`` in ``text``."""
    begin, end = f"<!-- BEGIN run_all: {name} -->", f"<!-- END run_all: {name} -->"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), flags=re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"RESULTS.md has no markers for section {name!r} ({begin} ... {end})")
    return pattern.sub(lambda _: f"{begin}\n{body.rstrip()}\n{end}", text, count=1)


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` at once: a new file beside it (created exclusively, so a
    planted file or link at that name is never followed), then ``os.replace``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "x", encoding="utf-8") as fh:  # raises if anything is there: not ours to remove
        try:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _shown(path: Path) -> str:
    """``path`` relative to the repository root when it lies inside it, else absolute."""
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def run_section(section: Section, args: argparse.Namespace, out: Path) -> Path | str:
    """Run one section's script; return its markdown file, or "skipped" or "failed"."""
    script = HERE / section.script
    if not script.exists():
        print(f"[{section.name}] {section.script} does not exist: skipped", flush=True)
        return "skipped"
    extra = section.args
    if args.skip_slow and section.slow:
        if section.slow_args is None:
            print(f"[{section.name}] slow: skipped (--skip-slow)", flush=True)
            return "skipped"
        extra = section.slow_args
    markdown = out / f"{section.name}.md"
    python = sys.executable
    if section.python_env:
        python = os.environ.get(section.python_env, "")
        if not python:
            print(f"[{section.name}] needs ${section.python_env} (the interpreter of its own "
                  "environment, see benchmarks/README.md): skipped", flush=True)
            return "skipped"
    # Paths inside the repository are passed relative to it (the scripts run there): the
    # commands they print into RESULTS.md and the docs then name no local folder.
    cmd = [python, str(script), *extra, "--markdown", _shown(markdown)]
    if args.quick:
        cmd.append("--quick")
        if section.name == "docs-tables":
            cmd += ["--out", _shown(out / "docs_tables")]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    if args.deepstrf_python:
        env["DEEPSTRF_PYTHON"] = args.deepstrf_python
    print(f"[{section.name}] {' '.join(cmd[1:])}  (about {section.minutes:g} min on 2 quiet cores)", flush=True)
    start = time.perf_counter()
    with open(out / f"{section.name}.log", "w") as log:
        result = subprocess.run(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    minutes = (time.perf_counter() - start) / 60
    if result.returncode != 0 or not markdown.exists():
        print(f"[{section.name}] FAILED (exit {result.returncode}) after {minutes:.1f} min; see "
              f"{out / (section.name + '.log')}", flush=True)
        return "failed"
    print(f"[{section.name}] done in {minutes:.1f} min", flush=True)
    return markdown


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", metavar="SECTION", help="run only these sections")
    p.add_argument("--skip-slow", action="store_true",
                   help="leave out the defaults grids, the scaling target point and the out-of-core fit")
    p.add_argument("--quick", action="store_true", help="tiny sizes to check the scripts; RESULTS.md untouched")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3, help="timed fits per row of vs-deepstrf, both libraries")
    p.add_argument("--deepstrf-python", default=None, help="default: $DEEPSTRF_PYTHON")
    p.add_argument("--out", type=Path, default=HERE / "_out", help="folder of the sections' markdown and logs")
    p.add_argument("--no-splice", action="store_true", help="write the sections but leave RESULTS.md alone")
    p.add_argument("--list", action="store_true", help="list the sections and their expected minutes")
    args = p.parse_args(argv)
    chosen = sections(args.threads, args.repeats)
    names = [s.name for s in chosen]
    if args.list:
        for s in chosen:
            print(f"{s.name:20s} {s.script:24s} ~{s.minutes:g} min{' (slow)' if s.slow else ''}")
        return 0
    if args.only:
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            p.error(f"unknown section(s) {unknown}; expected some of {names}")
        chosen = [s for s in chosen if s.name in args.only]
    args.out.mkdir(parents=True, exist_ok=True)
    done, failed = {}, []
    for section in chosen:
        markdown = run_section(section, args, args.out)
        if markdown == "failed":
            failed.append(section.name)
        elif isinstance(markdown, Path):
            done[section.name] = markdown
    if done and not (args.quick or args.no_splice):
        text = RESULTS.read_text()
        spliced = []
        for name, markdown in done.items():
            try:
                text = splice(text, name, markdown.read_text())
                spliced.append(name)
            except ValueError as exc:  # a new section: its markdown stays in --out
                print(f"[{name}] not spliced: {exc}; its section is {markdown}", flush=True)
                failed.append(name)
        if spliced:
            write_atomic(RESULTS, text)
            print(f"spliced {sorted(spliced)} into {RESULTS}")
    if failed:
        print(f"not regenerated: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
