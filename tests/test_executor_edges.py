"""Edges of the SingleThreadedExecutor: priorities given as ints, submitting from its own
thread after shutdown, helping while the awaited task waits on another thread, the exit
path that cancels (then closes) tasks nobody can wake, and a scheduler error.

Every test bounds its waits (``guarded`` and ``WAIT``) and uses ``park_timeout=None``
unless it is about the timed park, so a lost wake-up hangs loudly instead of hiding.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from helpers import (
    WAIT,
    Gate,
    guarded,
    hang_dump_fd,  # noqa: F401  (autouse fixture: hang dumps reach the real stderr)
    wait_until,
)

import zuki
from zuki.runtime.single_threaded_executor import EXIT_CANCEL_ROUNDS, Priority


def single(park_timeout: float | None = None) -> zuki.SingleThreadedExecutor:
    return zuki.SingleThreadedExecutor(
        config=zuki.ExecutorConfig(workers=1, park_timeout=park_timeout)
    )


# --------------------------------------------------------------------------------------
# priorities
# --------------------------------------------------------------------------------------


@guarded()
def test_priorities_may_be_given_as_ints() -> None:
    order: list[str] = []
    gate = threading.Event()
    with single() as ex:
        blocker = ex.spawn(lambda: gate.wait(WAIT))
        ex.spawn(lambda: order.append("low"), priority=2)  # type: ignore[arg-type]
        ex.spawn(lambda: order.append("high"), priority=0)  # type: ignore[arg-type]
        ex.spawn(lambda: order.append("normal"), priority=Priority.NORMAL)
        gate.set()
        blocker.result(timeout=WAIT)
        with pytest.raises(ValueError, match="got 7"):
            ex.spawn(int, priority=7)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="got 'urgent'"):
            ex.spawn_batch([int], priority="urgent")
    assert order == ["high", "normal", "low"]


# --------------------------------------------------------------------------------------
# shutdown seen from the executor's own thread
# --------------------------------------------------------------------------------------


@guarded()
def test_inside_a_draining_executor_submit_is_refused_but_zuki_spawn_works() -> None:
    ex = single()

    async def main() -> tuple[str, int]:
        ex.shutdown(wait=False)
        try:
            ex.submit(int)
        except zuki.ExecutorShutdownError as exc:
            refused = str(exc)
        else:
            refused = "accepted"
        child = zuki.spawn(lambda: 21 * 2)  # work spawned by a running task still runs
        return refused, await child

    handle = ex.spawn(main())
    assert handle.result(timeout=WAIT) == ("cannot schedule new futures after shutdown", 42)
    ex.shutdown(wait=True)
    assert repr(ex) == "<SingleThreadedExecutor terminated>"


@guarded()
def test_repr_follows_the_lifecycle_and_run_waits_for_termination() -> None:
    ex = single()
    assert repr(ex) == "<SingleThreadedExecutor running>"
    gate = Gate()
    pending = ex.spawn(gate)
    assert gate.polled.wait(WAIT)
    returned = threading.Event()

    def runner() -> None:
        ex.run()
        returned.set()

    t = threading.Thread(target=runner, daemon=True)
    t.start()
    ex.shutdown(wait=False)
    assert repr(ex) == "<SingleThreadedExecutor shut down>"  # draining: a task is suspended
    assert not returned.wait(0.05)
    gate.open("done")
    assert pending.result(timeout=WAIT) == "done"
    assert returned.wait(WAIT)
    t.join(WAIT)
    assert repr(ex) == "<SingleThreadedExecutor terminated>"
    assert ex.metrics().live_threads == 0


# --------------------------------------------------------------------------------------
# helping: waiting inside a task with nothing else to run
# --------------------------------------------------------------------------------------


@guarded()
@pytest.mark.parametrize("park_timeout", [None, 0.5])
def test_waiting_inside_a_task_parks_until_the_awaited_task_is_woken(
    park_timeout: float | None,
) -> None:
    with single(park_timeout) as ex:
        gate = Gate()
        awaited = ex.spawn(gate)
        assert gate.polled.wait(WAIT)
        opener = threading.Timer(0.05, gate.open, args=("opened",))

        def waits() -> str:
            opener.start()
            return str(awaited.result())  # helping: nothing queued, so the thread parks

        assert ex.submit(waits).result(timeout=WAIT) == "opened"
        opener.join(WAIT)
        assert ex.metrics().parks >= 1


@guarded()
def test_waiting_inside_a_task_with_a_timeout_parks_at_most_that_long() -> None:
    with single(park_timeout=5.0) as ex:
        gate = Gate()
        awaited = ex.spawn(gate)
        assert gate.polled.wait(WAIT)

        def waits() -> str:
            try:
                awaited.result(timeout=0.05)
            except TimeoutError:
                return "timed out"
            return "done?"

        assert ex.submit(waits).result(timeout=WAIT) == "timed out"
        gate.open()
        awaited.result(timeout=WAIT)


# --------------------------------------------------------------------------------------
# interpreter exit: tasks nobody can wake
# --------------------------------------------------------------------------------------


@guarded()
def test_exit_cancels_stuck_tasks_then_closes_the_stubborn_ones() -> None:
    ex = single()
    never = Gate()
    polite_saw: list[str] = []
    stubborn_saw: list[str] = []

    async def polite() -> None:
        try:
            await never
        except zuki.Cancelled:
            polite_saw.append("cancelled")
            raise

    async def stubborn() -> None:
        while True:
            try:
                await never
            except zuki.Cancelled:
                stubborn_saw.append("cancelled")
            except GeneratorExit:
                stubborn_saw.append("closed")
                raise

    ran = threading.Event()
    a = ex.spawn(polite())
    b = ex.spawn(stubborn())
    wait_until(lambda: ex.metrics().suspended_tasks == 2, what="both tasks to suspend")
    ex.spawn(ran.set)  # queued work still runs at exit
    ex.shutdown_at_exit()
    assert ran.is_set()
    assert a.cancelled() and polite_saw == ["cancelled"]
    assert b.cancelled()
    assert stubborn_saw == ["cancelled"] * EXIT_CANCEL_ROUNDS + ["closed"]
    assert ex.metrics().suspended_tasks == 0
    assert repr(ex) == "<SingleThreadedExecutor terminated>"


# --------------------------------------------------------------------------------------
# a scheduler error
# --------------------------------------------------------------------------------------


class _ExplodingTask:
    """Stands in for a task whose ``run`` fails: a bug in the runtime, not in user code
    (user exceptions are caught by the task itself)."""

    def run(self, runner: Any) -> bool:
        raise RuntimeError("scheduler bug (injected)")


@guarded()
def test_a_scheduler_error_stops_the_executor_and_shutdown_reports_it() -> None:
    ex = single()
    gate = Gate()
    cleanup: list[str] = []

    async def suspended() -> None:
        try:
            await gate
        finally:
            cleanup.append("finally ran")

    victim = ex.spawn(suspended())
    assert gate.polled.wait(WAIT)
    runner = ex._runner
    runner.push(runner.scheduler.queue, _ExplodingTask(), woken=False)  # type: ignore[arg-type]
    assert runner.terminated.wait(WAIT)
    with pytest.raises(zuki.ExecutorShutdownError):
        ex.spawn(int)
    # The suspended task can never run again: waking it closes it (its finally runs)
    # instead of queueing it on a dead thread.
    gate.open()
    assert victim.cancelled() and cleanup == ["finally ran"]
    with pytest.raises(zuki.ExecutorError, match="stopped after a scheduler error") as info:
        ex.shutdown(wait=True)
    assert isinstance(info.value.__cause__, RuntimeError)
    assert "scheduler bug" in str(info.value.__cause__)
    assert repr(ex) == "<SingleThreadedExecutor terminated>"


# --------------------------------------------------------------------------------------
# spawn_batch and cancel_futures
# --------------------------------------------------------------------------------------


@guarded()
def test_spawn_batch_with_a_bad_item_spawns_nothing() -> None:
    config = zuki.ExecutorConfig(workers=1, park_timeout=None)
    with zuki.SingleThreadedExecutor(config=config) as ex:
        assert ex.config is config
        ran: list[int] = []
        with pytest.raises(TypeError, match="not 42"):
            ex.spawn_batch([lambda: ran.append(1), 42], priority="high")
        assert ex.spawn_batch([], priority="low") == []
        assert ex.submit(len, "abc").result(timeout=WAIT) == 3
    assert ran == []


@guarded()
def test_cancel_futures_requeues_a_woken_coroutine_to_throw_cancelled_into_it() -> None:
    ex = single()
    gate = Gate()
    seen: list[str] = []

    async def woken_then_cancelled() -> str:
        try:
            value = await gate
        except zuki.Cancelled:
            seen.append("cancelled at the await")
            raise
        return str(value)

    coro_handle = ex.spawn(woken_then_cancelled())
    assert gate.polled.wait(WAIT)
    release = threading.Event()
    started = threading.Event()

    def blocker() -> None:
        started.set()
        release.wait(WAIT)

    blocking = ex.spawn(blocker)
    assert started.wait(WAIT)
    gate.open("value")  # the coroutine is queued (scheduled) behind the blocker
    queued = ex.spawn(lambda: seen.append("queued callable ran"))
    ex.shutdown(wait=False, cancel_futures=True)
    assert queued.cancelled()  # never started: cancelled at once
    assert not coro_handle.done()  # started: it must run once more to be cancelled
    release.set()
    ex.shutdown(wait=True)
    assert blocking.done() and not blocking.cancelled()
    assert coro_handle.cancelled()
    assert seen == ["cancelled at the await"]
