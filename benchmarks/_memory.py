"""Memory of a benchmark's own process, and measurements taken in a fresh child process.

Linux only (``/proc/self/status``): elsewhere the readings are NaN and :func:`reset_peak`
returns False, so a benchmark can say that it could not measure instead of reporting a wrong
number.

- :func:`status_mib`: the current resident memory (``VmRSS``) or its high-water mark
  (``VmHWM``) of this process, MiB.
- :func:`reset_peak`: set the high-water mark back to the current resident memory (writing
  ``5`` to ``/proc/self/clear_refs``, Linux 4.0 and later), so that the peak of one step can
  be read on its own even after earlier steps peaked higher.
- :func:`run_child`: run a command (a fresh Python process) and return the JSON object that
  it printed on its last line of output.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["status_mib", "reset_peak", "run_child"]

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def status_mib(field: str = "VmRSS") -> float:
    """A memory line of ``/proc/self/status`` (``VmRSS``, ``VmHWM``, ...) in MiB; NaN where
    the file or the line is absent."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # the kernel reports kB
    except (OSError, ValueError, IndexError):
        pass
    return float("nan")


def reset_peak() -> bool:
    """Reset this process's resident high-water mark (``VmHWM``) to its current resident
    memory; False where the kernel does not allow it (then ``VmHWM`` keeps older peaks)."""
    try:
        with open(_CLEAR_REFS, "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return status_mib("VmHWM") <= status_mib("VmRSS") + 1.0  # within a page or so


def run_child(cmd: list[str], timeout: float | None = None) -> dict[str, Any]:
    """Run ``cmd`` and return the JSON object printed on the last line of its standard output.

    Parameters
    ----------
    cmd : list of str
        The command, e.g. ``[sys.executable, script, "--child", ...]``.
    timeout : float or None, default=None
        Seconds before the child is killed (``subprocess.TimeoutExpired``).

    Raises
    ------
    RuntimeError
        When the child fails or prints no JSON object, with the end of its error output.
    """
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=timeout)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the child process {cmd[1:3]} failed (exit status {done.returncode}):\n"
                           f"{done.stderr[-4000:]}")
    try:
        result = json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        raise RuntimeError(f"the child process {cmd[1:3]} printed no JSON object on its last line: "
                           f"{lines[-1][:200]!r}") from exc
    if not isinstance(result, dict):
        raise RuntimeError(f"the child process {cmd[1:3]} printed {type(result).__name__}, not an object")
    return result
