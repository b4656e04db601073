"""How many threads torch and the BLAS may use: the user's setting, else the CPUs this process owns.

Four rules keep a fit fast on a busy machine (more runnable threads than cores); the
measurements behind them are in the user guide ("Solvers", threads) and
``benchmarks/RESULTS.md`` ("On a busy machine"):

- never more threads than the CPUs this process may use (:func:`capped_threads`: its
  affinity mask and cgroup quota; a user's setting wins when it is lower);
- never more threads than the CPUs that other processes leave free right now
  (:func:`runnable_elsewhere`, read from Linux's ``/proc/loadavg``): OpenMP threads wait
  for each other at every parallel step, so a thread that shares its core with a busy
  process makes the whole team wait;
- no fine-grained parallelism in LAPACK's symmetric eigensolver: it synchronises its
  threads at every step of the tridiagonal reduction, and a thread that lost its core
  stalls the others. The independent work of the cross-validation folds (each fold's
  decomposition and its held-out products) and the refit's decomposition therefore run
  side by side, one thread each (:func:`skstrf._solvers.cross_validated_scores`,
  :func:`skstrf._solvers.eigh_many`); the other large matrix products, which synchronise
  rarely, keep the thread count. Large tridiagonal reductions are the exception on a
  machine that leaves the fit several threads: bound by memory traffic, two side by side
  take as long as one after the other on one thread each, so they run one after the other
  on all threads (:func:`skstrf._solvers.reduce_one_by_one`);
- numpy's and scipy's BLAS (OpenBLAS) run on one thread in a fit, except for the work on
  matrices of 1,280 rows or more (the large reductions above, their products:
  :func:`skstrf._solvers._blas_for`): after each call on several threads OpenBLAS's idle threads spin for
  about 2^28 cycles (0.1 s) before they sleep, taking a core from torch's threads (2 cores,
  NS1-size default fit: median 0.34-0.38 s with two BLAS threads, 0.30 s with one; the
  response pass right after a fit 0.095 s instead of 0.045 s); its calls in a fit are the
  LAPACK steps of the ridge path, which gain nothing from a second thread at those sizes
  (:func:`fit_threads`, :func:`blas_threads`);
- independent tasks (threads that never wait for each other, such as those folds or the
  chunks of stimuli of :func:`skstrf._design.lagged_statistics`) run side by side
  (:func:`side_by_side`) on every CPU this process may use (:func:`allowed_threads`, the
  workers of :func:`fit_threads`), even when other processes keep some busy: a task whose
  core is taken delays only itself, and the scheduler then shares the busy machine's cores
  among more of this fit's threads.

Torch's thread count is one setting for the whole process: the functions here set and
restore it, so fits are not meant to run in several threads of one process at once (run
them in processes, e.g. joblib's default backend).
"""

from __future__ import annotations

import functools
import math
import os
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path

__all__ = ["n_threads", "cpu_quota", "runnable_elsewhere", "allowed_threads", "capped_threads",
           "limit_threads", "blas_threads", "fit_threads", "task_workers", "task_workers_set", "side_by_side"]

#: cgroup v2, then v1 files holding the CPU quota of this process's group.
CGROUP_V2 = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1 = (Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us"))


def cpu_quota(v2: Path = CGROUP_V2, v1: tuple[Path, Path] = CGROUP_V1) -> int | None:
    """CPUs allowed by the cgroup's CPU quota (rounded up), or None where none is set.

    Reads ``cpu.max`` ("QUOTA PERIOD" or "max PERIOD", cgroup v2), else
    ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (cgroup v1, quota -1 when unlimited).
    """
    try:
        quota, period = v2.read_text().split()[:2]
        if quota == "max":
            return None
        return max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    try:
        quota, period = (int(p.read_text().strip()) for p in v1)
        return None if quota <= 0 or period <= 0 else max(1, math.ceil(quota / period))
    except (OSError, ValueError):
        return None


#: Linux's load file: its fourth field ``R/T`` counts the threads running or waiting for a
#: CPU right now (R) machine-wide; and this process's threads, whose states it includes.
LOADAVG = Path("/proc/loadavg")
OWN_TASKS = Path("/proc/self/task")


def runnable_elsewhere(loadavg: Path = LOADAVG, tasks: Path = OWN_TASKS, samples: int = 3) -> int | None:
    """Threads of other processes running or waiting for a CPU now; None where unknown.

    The runnable count of ``/proc/loadavg`` minus this process's own running threads (state
    ``R`` in ``/proc/self/task/*/stat``, e.g. OpenMP workers still spinning after a parallel
    region), the smallest of ``samples`` reads so that a process that only passes through
    does not count. Unlike the load averages it says what the machine does now, and it
    does not count this process's own work. None off Linux (no such files).

    Parameters
    ----------
    loadavg, tasks : Path
        The files to read (for tests).
    samples : int, default=3
        Reads to take the minimum of.

    Returns
    -------
    int or None
    """
    counts = []
    try:
        for _ in range(samples):
            running = int(loadavg.read_text().split()[3].split("/")[0])
            own = 0
            for task in tasks.iterdir():
                try:
                    stat = (task / "stat").read_text()
                except OSError:  # a thread that ended meanwhile
                    continue
                # the state follows the command name, which is in parentheses and may hold spaces
                own += stat[stat.rindex(")") + 2:].startswith("R")
            counts.append(max(0, running - own))
    except (OSError, ValueError, IndexError):
        return None
    return min(counts)


def _affinity() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def n_threads(user: int | None = None) -> int:
    """Number of threads torch and numpy's BLAS should use in this process.

    A busy or shared machine (a cluster node, a container with a CPU quota) gives a process
    fewer CPUs than ``os.cpu_count()`` reports, and OpenMP threads beyond them stall each
    other. So: the user's setting wins (``user``, then the ``OMP_NUM_THREADS`` environment
    variable); otherwise the CPUs in this process's affinity mask, capped by the cgroup's
    CPU quota; at least 1.

    Parameters
    ----------
    user : int or None, default=None
        The user's choice, e.g. an estimator's ``n_jobs``; None or a value < 1 defers to
        the environment.

    Returns
    -------
    int
    """
    if user is not None and int(user) >= 1:
        return int(user)
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if env.isdigit() and int(env) >= 1:
        return int(env)
    available = _affinity()
    quota = cpu_quota()
    if quota is not None:
        available = min(available, quota)
    return max(1, available)


def allowed_threads() -> int:
    """Torch's current number of threads, capped at the CPUs this process may use.

    The threads for independent tasks, which never wait for each other (see the module's
    rules): a user's ``torch.set_num_threads`` (or ``OMP_NUM_THREADS``) is kept when it is
    lower, torch's default is cut to the affinity mask and CPU quota (:func:`n_threads`);
    unlike :func:`capped_threads`, what other processes run now does not count.

    Returns
    -------
    int
    """
    import torch

    return max(1, min(torch.get_num_threads(), n_threads()))


def capped_threads() -> int:
    """Torch's current number of threads, capped at the CPUs this process may use and at
    those other processes leave free now.

    What a fit runs with: a user's ``torch.set_num_threads`` (or ``OMP_NUM_THREADS``) is
    kept when it is lower, but torch's default, the machine's core count, is cut to the
    process's affinity and CPU quota (:func:`n_threads`), so that a container or a shared
    cluster node is not oversubscribed; and to the CPUs of the affinity mask that are not
    running other processes' threads (:func:`runnable_elsewhere`), at least 1, so that no
    thread of the team waits for a core that a busy neighbour holds.

    Returns
    -------
    int
    """
    # imported here so that reading a thread count (the command line's start) stays fast
    import torch

    n = allowed_threads()
    if n > 1:
        others = runnable_elsewhere()
        if others is not None:
            n = max(1, min(n, _affinity() - others))
    return n


@contextmanager
def limit_threads(n: int | None = None, *, blas: int | None = None) -> Iterator[int]:
    """Run a block with ``n`` threads in torch (intra-op) and in the BLAS, then restore them.

    The BLAS limit is applied through threadpoolctl when it is importable (numpy's and
    scipy's BLAS); torch's own pool is set with :func:`torch.set_num_threads`.

    Parameters
    ----------
    n : int or None, default=None
        Threads to use; None means :func:`n_threads`'s choice.
    blas : int or None, default=None
        Threads for numpy's and scipy's BLAS when not ``n`` (a fit's: 1, see the module's
        rules).

    Yields
    ------
    int
        The number of threads in effect.

    Examples
    --------
    >>> from skstrf._threads import limit_threads
    >>> with limit_threads(1) as n:
    ...     n
    1
    """
    n = n_threads(n)
    # imported here so that reading a thread count (the command line's start) stays fast
    import torch

    before = torch.get_num_threads()
    controller = _blas_controller()
    torch.set_num_threads(n)
    try:
        if controller is None:
            yield n
        else:
            with controller.limit(limits=n if blas is None else max(1, int(blas)), user_api="blas"):
                yield n
    finally:
        torch.set_num_threads(before)


@contextmanager
def blas_threads() -> Iterator[int]:
    """Run a block with numpy's and scipy's BLAS on as many threads as torch has now.

    For the LAPACK work inside a :func:`fit_threads` block that gains from several threads
    (large tridiagonal reductions and their products, :func:`skstrf._solvers._blas_for`);
    elsewhere in a fit the BLAS keeps one thread (see the module's rules).

    Yields
    ------
    int
        The number of threads in effect.
    """
    import torch

    with limit_threads(torch.get_num_threads()) as n:
        yield n


#: Threads for independent tasks in the enclosing :func:`fit_threads` (None outside one).
_TASK_WORKERS: ContextVar[int | None] = ContextVar("skstrf_task_workers", default=None)


@contextmanager
def fit_threads() -> Iterator[int]:
    """The thread settings of a fit, a prediction or a score, for the block it encloses.

    Torch runs with :func:`capped_threads` (never more than the CPUs this process may use,
    nor than other processes leave free) and numpy's and scipy's BLAS with one thread
    (:func:`blas_threads` gives it torch's where that pays), restored afterwards; independent
    tasks (:func:`side_by_side`) run on :func:`allowed_threads` workers, read by
    :func:`task_workers` anywhere inside the block, so that no signature carries them.

    Yields
    ------
    int
        The number of threads torch uses.
    """
    with task_workers_set(allowed_threads()), limit_threads(capped_threads(), blas=1) as n:
        yield n


@contextmanager
def task_workers_set(n: int) -> Iterator[int]:
    """Run a block with ``n`` threads for independent tasks (:func:`task_workers`)."""
    token = _TASK_WORKERS.set(int(n))
    try:
        yield int(n)
    finally:
        _TASK_WORKERS.reset(token)


def task_workers() -> int:
    """Threads for independent tasks: those of the enclosing :func:`fit_threads`, else
    torch's current number of threads."""
    workers = _TASK_WORKERS.get()
    if workers is not None:
        return workers
    import torch

    return torch.get_num_threads()


@functools.lru_cache(maxsize=1)
def _blas_controller():
    """threadpoolctl's view of the BLAS libraries loaded in this process (None without
    threadpoolctl), made once: finding them scans the process's loaded libraries, which
    cost more than a small fit (3 ms a call), and a fit loads no new BLAS."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()


def side_by_side(tasks: list[Callable[[], object]], workers: int) -> list:
    """Call each of ``tasks`` (callables without arguments) and return their results in order.

    With several tasks and ``workers`` of at least 2, the tasks run on ``workers`` threads
    kept between calls, torch and the BLAS limited to one thread each meanwhile: for
    independent tasks (see the module's rules), which then never wait for each other.
    Otherwise they run one after the other in this thread, with its thread settings.
    Torch's gradient mode of the calling thread holds in the workers too.

    Parameters
    ----------
    tasks : list of callable
        Functions of no argument (e.g. :func:`functools.partial` objects); their results
        are returned.
    workers : int
        Threads to run them on, e.g. :func:`allowed_threads`.

    Returns
    -------
    list
        The tasks' results, in the order of ``tasks``. When tasks raise, every task has
        ended (or, interrupted, been cancelled) before the first exception, in the order
        of ``tasks``, is raised here; the thread settings are then restored.

    Examples
    --------
    >>> from skstrf._threads import side_by_side
    >>> side_by_side([lambda: 1, lambda: 2], workers=2)
    [1, 2]
    """
    if len(tasks) < 2 or workers < 2:
        return [task() for task in tasks]
    import torch

    grad = torch.is_grad_enabled()

    def run(task: Callable[[], object]) -> object:
        with torch.set_grad_enabled(grad):
            return task()

    pool = _worker_pool(int(workers))  # its threads start as tasks need them
    with limit_threads(1):
        futures = [pool.submit(run, task) for task in tasks]
        try:
            wait(futures)
        except BaseException:  # e.g. Ctrl-C: drop the tasks not started, let the others end
            for future in futures:
                future.cancel()
            wait(futures)
            raise
        return [future.result() for future in futures]


_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def _worker_pool(n: int) -> ThreadPoolExecutor:
    """A pool of at most ``n`` threads, made once per process and ``n`` (starting threads
    costs milliseconds on a busy machine); a forked child makes its own, since a fork copies
    no threads."""
    with _POOLS_LOCK:
        pool = _POOLS.get(n)
        if pool is None:
            pool = _POOLS[n] = ThreadPoolExecutor(n, thread_name_prefix="skstrf-worker")
        return pool


def _forget_pools() -> None:
    """In a forked child: the parent's pools have no threads here, and the lock may be held."""
    global _POOLS_LOCK
    _POOLS.clear()
    _POOLS_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools)
