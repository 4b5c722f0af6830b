"""Idle workers exit after ``ExecutorConfig.keep_alive`` and come back lazily.

A worker other than the first that stays parked for ``keep_alive`` seconds retires (its
thread ends); a notify that finds no parked worker restarts the slot on a new thread;
``metrics()`` counts the exits (``threads_retired``) and the live threads
(``live_threads``). The invariants: every task runs exactly once through any number of
retire/restart cycles, no wake-up is lost to a retiring thread (``park_timeout=None``,
so a lost one hangs instead of hiding), and the threads really end.
"""

from __future__ import annotations

import functools
import threading
import warnings
from typing import Any

import pytest

from tests.helpers import WAIT, Counter, guarded, wait_until
from zuki.runtime.errors import ExecutorConfigError, ThreadStartWarning
from zuki.runtime.executor import ExecutorConfig
from zuki.runtime.work_stealing_executor import WorkStealingExecutor

BACKENDS = ["builtin", "lockfree"]


def make(workers: int, keep_alive: float | None, **options: Any) -> WorkStealingExecutor:
    config = ExecutorConfig(workers=workers, keep_alive=keep_alive, park_timeout=None, **options)
    return WorkStealingExecutor(config=config)


def pool_threads(ex: WorkStealingExecutor) -> list[threading.Thread]:
    prefix = ex._pool.name + "-"
    return [t for t in threading.enumerate() if t.name.startswith(prefix)]


def occupy_all(ex: WorkStealingExecutor, n: int) -> None:
    """Run ``n`` tasks that each wait for all the others: only ``n`` live threads at once
    can finish it, so it forces every slot to have a running thread."""
    barrier = threading.Barrier(n)
    handles = [ex.spawn(functools.partial(barrier.wait, WAIT)) for _ in range(n)]
    for h in handles:
        h.result(timeout=WAIT)


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), float("nan"), "10", True], ids=repr)
def test_invalid_keep_alive_is_refused_by_name(bad: Any) -> None:
    with pytest.raises(ExecutorConfigError, match="keep_alive"):
        ExecutorConfig(keep_alive=bad)


def test_default_keep_alive_is_ten_seconds() -> None:
    assert ExecutorConfig().keep_alive == 10.0
    assert ExecutorConfig(keep_alive=None).keep_alive is None


@guarded()
@pytest.mark.parametrize("backend", BACKENDS)
def test_idle_workers_exit_and_restart_lazily(backend: str) -> None:
    with make(3, 0.05, queue_backend=backend) as ex:
        occupy_all(ex, 3)
        assert ex.metrics().live_threads == 3
        # The two workers beyond the first retire; the first stays.
        wait_until(lambda: ex.metrics().threads_retired == 2, what="two retirements")
        m = ex.metrics()
        assert m.live_threads == 1
        assert sorted(w.index for w in ex._pool.retired) == [1, 2]
        wait_until(lambda: len(pool_threads(ex)) == 1, what="retired threads to end")
        assert pool_threads(ex)[0].name.endswith("-0")
        # Work that needs three threads at once brings both slots back.
        occupy_all(ex, 3)
        m = ex.metrics()
        assert m.threads_started == 5 and m.live_threads == 3
        assert ex._pool.spawned == 3, "restarts reuse slots, they do not open new ones"
        wait_until(lambda: ex.metrics().threads_retired == 4, what="second retirements")
    assert pool_threads(ex) == []
    assert ex.metrics().live_threads == 0


@guarded()
def test_keep_alive_none_keeps_every_thread() -> None:
    with make(2, None) as ex:
        occupy_all(ex, 2)
        done = threading.Event()
        assert not done.wait(0.3)
        assert ex.metrics().threads_retired == 0
        assert len(pool_threads(ex)) == 2


@guarded()
def test_a_busy_worker_does_not_retire() -> None:
    """keep_alive counts idle time only: a task longer than it does not end its thread."""
    with make(2, 0.02) as ex:
        release = threading.Event()
        started = threading.Semaphore(0)

        def hold() -> None:
            started.release()
            release.wait(WAIT)

        handles = [ex.spawn(hold) for _ in range(2)]
        assert started.acquire(timeout=WAIT) and started.acquire(timeout=WAIT)
        assert not release.wait(0.2)
        assert ex.metrics().threads_retired == 0
        release.set()
        for h in handles:
            h.result(timeout=WAIT)


@guarded()
@pytest.mark.parametrize("backend", BACKENDS)
def test_every_task_runs_once_through_retire_restart_churn(backend: str) -> None:
    """Bursts of work separated by pauses longer than a tiny keep-alive: each burst
    races restarts (from outside and from inside tasks) against retirements."""
    counter = Counter()
    seen: set[int] = set()
    seen_lock = threading.Lock()

    def record(i: int) -> None:
        with seen_lock:
            assert i not in seen, f"task {i} ran twice"
            seen.add(i)
        counter.add()

    def fan_out(base: int) -> None:
        # spawned from a worker: the weak (local) path must restart slots too
        from zuki import spawn

        for j in range(8):
            spawn(functools.partial(record, base + j))

    total = 0
    with make(4, 0.001, queue_backend=backend) as ex:
        for burst in range(60):
            base = burst * 1000
            handles = [ex.spawn(functools.partial(record, base + i)) for i in range(20)]
            handles += [ex.spawn(functools.partial(fan_out, base + 100 + 10 * k)) for k in range(4)]
            total += 20 + 4 * 8
            for h in handles:
                h.result(timeout=WAIT)
            if burst % 3 == 0:
                threading.Event().wait(0.005)  # let workers retire
        wait_until(lambda: counter.value == total, what=f"{total} tasks")
        m = ex.metrics()
    assert len(seen) == total
    assert m.threads_retired > 0, "the churn never retired a thread: the test tests nothing"


@guarded()
@pytest.mark.thread_unsafe(reason="records process-wide warnings")
def test_failed_restart_falls_back_to_the_live_workers() -> None:
    calls = [0]

    def factory(**kwargs: Any) -> threading.Thread:
        calls[0] += 1
        if calls[0] > 2:
            raise RuntimeError("can't start new thread (test)")
        return threading.Thread(**kwargs)

    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        with make(2, 0.02, thread_factory=factory) as ex:
            occupy_all(ex, 2)
            wait_until(lambda: ex.metrics().threads_retired == 1, what="a retirement")
            # The restart fails; the first worker runs everything.
            results = [ex.submit(pow, i, 2) for i in range(50)]
            assert [f.result(timeout=WAIT) for f in results] == [i * i for i in range(50)]
            m = ex.metrics()
    assert m.failed_thread_starts == 1 and m.live_threads == 1
    assert len([r for r in records if issubclass(r.category, ThreadStartWarning)]) == 1


@guarded()
def test_shutdown_of_a_pool_whose_workers_retired() -> None:
    ex = make(3, 0.01)
    occupy_all(ex, 3)
    wait_until(lambda: ex.metrics().threads_retired == 2, what="retirements")
    ex.shutdown(wait=True)
    assert pool_threads(ex) == []
    m = ex.metrics()
    assert m.live_threads == 0 and m.threads_started == 3


@guarded()
@pytest.mark.parametrize("backend", BACKENDS)
def test_spawn_from_a_task_restarts_retired_workers(backend: str) -> None:
    """The local spawn path's throttle must see retired slots: here the spawning task
    then blocks its own thread, so only restarted threads can run the children."""
    import zuki

    with make(3, 0.02, queue_backend=backend) as ex:
        occupy_all(ex, 3)
        wait_until(lambda: ex.metrics().threads_retired == 2, what="two retirements")
        barrier = threading.Barrier(3)

        def parent() -> None:
            # The wake that brought this task here may chain-start the other slots;
            # wait until they have retired again, so only the spawns below can.
            wait_until(lambda: ex.metrics().live_threads == 1, what="re-retirement")
            for _ in range(2):
                zuki.spawn(functools.partial(barrier.wait, 10.0))
            barrier.wait(10.0)  # holds this worker: the children need two more threads

        ex.submit(parent).result(timeout=WAIT)
        assert ex.metrics().threads_started >= 5
