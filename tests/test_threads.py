"""The thread count follows the user, then OMP_NUM_THREADS, then the CPUs this process owns."""

import os

import pytest
import torch

from skstrf import _threads as threads
from skstrf._threads import cpu_quota, limit_threads, n_threads, side_by_side


@pytest.fixture
def six_cpus(monkeypatch):
    """A process allowed on 6 CPUs, without OMP_NUM_THREADS and without a cgroup quota."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(6)), raising=False)
    monkeypatch.setattr(threads, "cpu_quota", lambda: None)


def test_affinity_when_nothing_is_set(six_cpus):
    assert n_threads() == 6


def test_user_then_environment_win(six_cpus, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert n_threads() == 3
    assert n_threads(2) == 2
    assert n_threads(0) == 3  # not a choice: defer to the environment
    monkeypatch.setenv("OMP_NUM_THREADS", "junk")
    assert n_threads() == 6


def test_quota_caps_affinity(six_cpus, monkeypatch):
    monkeypatch.setattr(threads, "cpu_quota", lambda: 2)
    assert n_threads() == 2
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert n_threads() == 1


@pytest.mark.parametrize("text, expected", [("max 100000", None), ("150000 100000", 2),
                                            ("50000 100000", 1), ("400000 100000", 4)])
def test_cgroup_v2_quota(tmp_path, text, expected):
    path = tmp_path / "cpu.max"
    path.write_text(text + "\n")
    assert cpu_quota(path, (tmp_path / "none", tmp_path / "none")) == expected


def test_cgroup_v1_quota(tmp_path):
    quota, period = tmp_path / "q", tmp_path / "p"
    quota.write_text("300000\n")
    period.write_text("100000\n")
    assert cpu_quota(tmp_path / "missing", (quota, period)) == 3
    quota.write_text("-1\n")
    assert cpu_quota(tmp_path / "missing", (quota, period)) is None
    assert cpu_quota(tmp_path / "missing", (tmp_path / "a", tmp_path / "b")) is None


def test_limit_threads_sets_and_restores():
    before = torch.get_num_threads()
    target = 1 if before != 1 else 2
    with limit_threads(target) as n:
        assert n == target
        assert torch.get_num_threads() == target
        threadpoolctl = pytest.importorskip("threadpoolctl")
        for pool in threadpoolctl.threadpool_info():
            if pool["user_api"] == "blas":
                assert pool["num_threads"] == target
    assert torch.get_num_threads() == before


def _blas_threads_now() -> list[int]:
    threadpoolctl = pytest.importorskip("threadpoolctl")
    counts = [pool["num_threads"] for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"]
    if not counts:
        pytest.skip("no BLAS library seen by threadpoolctl")
    return counts


def test_a_fit_runs_the_blas_on_one_thread_and_large_reductions_on_torch_s(monkeypatch):
    """Inside fit_threads numpy's and scipy's BLAS keep one thread (OpenBLAS's idle threads
    spin after a threaded call, taking a core from torch's); blas_threads gives them
    torch's count for the large reductions; both are restored."""
    monkeypatch.setattr(threads, "capped_threads", lambda: 2)
    before_torch, before_blas = torch.get_num_threads(), _blas_threads_now()
    with threads.fit_threads() as n:
        assert n == 2 and torch.get_num_threads() == 2
        assert _blas_threads_now() == [1] * len(before_blas)
        with threads.blas_threads() as m:
            assert m == 2 and _blas_threads_now() == [2] * len(before_blas)
        assert _blas_threads_now() == [1] * len(before_blas)
    assert torch.get_num_threads() == before_torch and _blas_threads_now() == before_blas


def test_large_reductions_run_with_the_fit_s_threads_in_the_blas(monkeypatch):
    """The tridiagonal reductions of large matrices (those cross_validated_scores makes one
    after the other, and any other) run with torch's threads in the BLAS; small ones with
    the fit's one BLAS thread."""
    import numpy as np

    from skstrf import _solvers as solvers
    from skstrf._design import DesignStatistics

    monkeypatch.setattr(threads, "capped_threads", lambda: 2)
    monkeypatch.setattr(solvers, "THREADED_EIGH_MIN", 0)
    monkeypatch.setattr(solvers, "ONE_BY_ONE_MIN", 0)
    seen = []
    original = solvers.lapack.dsytrd

    def spy(*args, **kwargs):
        seen.append(_blas_threads_now()[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(solvers.lapack, "dsytrd", spy)
    rng = np.random.default_rng(0)
    Z = torch.as_tensor(rng.standard_normal((4, 30, 6)))
    P = torch.as_tensor(rng.standard_normal((4, 30, 2)))
    ones = torch.ones(4, 30, 1, dtype=torch.float64)
    Zc = torch.cat([Z, ones], dim=-1)
    stats = DesignStatistics(torch.einsum("std,ste->sde", Zc, Zc), torch.einsum("std,stn->sdn", Zc, P),
                             (P**2).sum(1), torch.full((4,), 30.0, dtype=torch.float64))
    folds = [(np.array([0, 1, 2]), np.array([3])), (np.array([1, 2, 3]), np.array([0]))]
    with threads.fit_threads(), threads.task_workers_set(2):
        solvers.cross_validated_scores(stats, folds, torch.tensor([0.1, 1.0], dtype=torch.float64))
        assert seen == [2, 2]  # the reductions one by one, on the fit's threads
        seen.clear()
        solvers.RidgePath(solvers.centred(stats))  # e.g. the jackknife's refits
        assert seen == [2]
        monkeypatch.setattr(solvers, "ONE_BY_ONE_MIN", 10**9)  # a small matrix: one thread
        seen.clear()
        solvers.RidgePath(solvers.centred(stats))
        assert seen == [1]


def test_limit_threads_restores_after_an_error():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError), limit_threads(1):
        raise RuntimeError("inside")
    assert torch.get_num_threads() == before


def test_fit_and_predict_run_with_at_most_the_cpus_of_the_process(monkeypatch):
    # torch's default is the machine's core count; a fit is capped at the CPUs this process
    # may use (affinity, quota, OMP_NUM_THREADS), and torch's setting is restored after it.
    import numpy as np
    from skorch.callbacks import Callback

    from skstrf import STRFRegressor
    from skstrf.datasets import make_strf_dataset

    seen = []

    class Threads(Callback):
        def on_epoch_end(self, net, **kwargs):
            seen.append(torch.get_num_threads())

    d = make_strf_dataset(n_stimuli=4, n_times=60, n_freqs=3, n_neurons=2, n_repeats=3, n_lags=3,
                          random_state=0)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setattr("skstrf._threads.cpu_quota", lambda *a, **k: None)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        est = STRFRegressor(n_lags=3, solver="gradient", max_epochs=2, callbacks=[Threads()],
                            random_state=0).fit(d.X, d.y)
        assert seen == [1, 1] and torch.get_num_threads() == 2
        assert np.isfinite(est.predict(d.X)).all() and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def _proc_files(tmp_path, running: int, own_states: list[str]):
    """A fake /proc/loadavg with ``running`` runnable threads and /proc/self/task with one
    thread per state (the command name holds a space and a parenthesis, as real ones may)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    loadavg = tmp_path / "loadavg"
    loadavg.write_text(f"3.10 2.50 2.00 {running}/312 4242\n")
    tasks = tmp_path / "task"
    for i, state in enumerate(own_states):
        (tasks / str(100 + i)).mkdir(parents=True)
        (tasks / str(100 + i) / "stat").write_text(f"{100 + i} (py (worker) 1) {state} 1 2 3 4\n")
    return loadavg, tasks


def test_runnable_elsewhere_leaves_out_this_process_s_running_threads(tmp_path):
    loadavg, tasks = _proc_files(tmp_path, running=6, own_states=["R", "S", "R"])
    assert threads.runnable_elsewhere(loadavg, tasks) == 4
    loadavg, tasks = _proc_files(tmp_path / "b", running=1, own_states=["R", "R"])
    assert threads.runnable_elsewhere(loadavg, tasks) == 0  # never negative
    assert threads.runnable_elsewhere(tmp_path / "missing", tasks) is None
    (tmp_path / "bad").write_text("garbage\n")
    assert threads.runnable_elsewhere(tmp_path / "bad", tasks) is None


@pytest.mark.parametrize("others, expected", [(None, 6), (0, 6), (2, 4), (5, 1), (40, 1)])
def test_capped_threads_leaves_the_cores_of_busy_neighbours(six_cpus, monkeypatch, others, expected):
    monkeypatch.setattr(threads, "runnable_elsewhere", lambda: others)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(8)
        assert threads.capped_threads() == expected
        torch.set_num_threads(3)  # a lower user setting stays the upper bound
        assert threads.capped_threads() == min(3, expected)
    finally:
        torch.set_num_threads(before)


def test_side_by_side_keeps_order_threads_and_errors():
    import threading
    import time

    import torch

    seen = []

    def task(k):
        seen.append((threading.current_thread().name, torch.get_num_threads()))
        return k * k

    def workers_now():
        return {t.ident for t in threading.enumerate() if t.name.startswith("skstrf-worker")}

    with limit_threads(2):
        assert side_by_side([lambda k=k: task(k) for k in range(5)], workers=2) == [0, 1, 4, 9, 16]
        before = workers_now()
        side_by_side([lambda k=k: task(k) for k in range(3)], workers=2)
        assert workers_now() == before  # the pool's threads, kept between calls
        assert torch.get_num_threads() == 2  # restored after the tasks
    assert {name.startswith("skstrf-worker") for name, _ in seen} == {True}
    assert {n for _, n in seen} == {1}  # one torch thread per task meanwhile
    seen.clear()
    assert side_by_side([lambda: task(3), lambda: task(4)], workers=1) == [9, 16]
    assert [name for name, _ in seen] == [threading.current_thread().name] * 2  # here, in order

    ended = []

    def fail():
        raise ValueError("task failed")

    def slow():
        time.sleep(0.2)
        ended.append(True)

    with limit_threads(2):
        with pytest.raises(ValueError, match="task failed"):
            side_by_side([fail, slow], workers=2)
        assert ended == [True]  # raised once every task had ended
        assert torch.get_num_threads() == 2
    with torch.no_grad():  # the caller's gradient mode holds in the workers
        assert side_by_side([torch.is_grad_enabled] * 2, workers=2) == [False, False]


def test_side_by_side_works_in_a_forked_child():
    import multiprocessing

    side_by_side([lambda: 1, lambda: 2], workers=2)
    assert threads._POOLS
    # a fork copies no threads: the child must make its own pool, not wait on the parent's
    child = multiprocessing.get_context("fork").Process(target=_side_by_side_in_child)
    child.start()
    child.join(timeout=60)
    if child.is_alive():
        child.kill()
    assert child.exitcode == 0


def _side_by_side_in_child():
    # no torch work here: GNU OpenMP is not usable in a child forked after the parent ran
    # parallel regions, whatever skstrf does
    if threads._POOLS:
        raise SystemExit(2)
    if threads._worker_pool(2).submit(len, [1, 2]).result() != 2:
        raise SystemExit(3)
