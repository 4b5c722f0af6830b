"""Edges of zuki.runtime.blocks: tasks a stopped block refuses, reading an unfinished
task, a block whose executor refuses new tasks, a body that ends with ``SystemExit`` or
a stray ``Cancelled``, a deadline that passes after the block stopped for an error, a
block whose coroutine is closed at executor exit, and streams that end or are left.
"""

from __future__ import annotations

import gc
from typing import Any

import pytest
from helpers import (
    WAIT,
    Gate,
    guarded,
    hang_dump_fd,  # noqa: F401  (autouse fixture: hang dumps reach the real stderr)
    run,
    until,
    wait_until,
)

import zuki
from zuki.runtime.blocks import TaskGroup, stream
from zuki.runtime.single_threaded_executor import EXIT_CANCEL_ROUNDS
from zuki.runtime.sync import Event


async def forever(ev: Event) -> str:
    await ev.wait()
    return "released"


async def fail(x: int) -> int:
    raise ValueError(f"bad {x}")


async def double(x: int) -> int:
    return 2 * x


# --------------------------------------------------------------------------------------
# GroupTask: refused and unfinished
# --------------------------------------------------------------------------------------


@guarded()
def test_a_stopped_block_refuses_new_tasks_and_says_so() -> None:
    async def main() -> None:
        never = Event()
        g = TaskGroup()
        with pytest.raises(ExceptionGroup):
            async with g:
                waiting = g.spawn(forever, never)
                failing = g.spawn(fail, 1)
                await until(failing.done, "the failure")
                await until(waiting.done, "the cancellation")
                refused = g.spawn(double, 2)  # the block is stopping: refused
                coro = double(3)
                refused_coro = g.spawn(coro)  # a coroutine object is closed, not leaked
                assert coro.cr_frame is None
        for t in (refused, refused_coro):
            assert t.done() and t.cancelled() and not t.failed() and not t.succeeded()
            assert "refused" in repr(t)
            with pytest.raises(zuki.Cancelled, match="was not run: its block had stopped"):
                t.result()
            with pytest.raises(zuki.Cancelled, match="was not run"):
                t.exception()
            with pytest.raises(zuki.Cancelled, match="was not run"):
                await t
        assert [t.index for t in g.tasks] == [0, 1, 2, 3]
        assert g.results() == []
        assert [t.index for t, _ in g.errors()] == [1]

    run(main(), workers=2)


@guarded()
def test_reading_an_unfinished_group_task_is_an_error() -> None:
    async def main() -> None:
        gate = Event()
        async with TaskGroup() as g:
            t = g.spawn(forever, gate)
            assert not t.done() and not t.failed() and not t.succeeded()
            with pytest.raises(RuntimeError, match="has not finished"):
                t.result()
            with pytest.raises(RuntimeError, match="has not finished"):
                t.exception()
            gate.set()
        assert t.result() == "released" and t.exception() is None

    run(main(), workers=2)


# Regression: the block's own coroutine for the refused task was left unawaited, so a
# "coroutine 'TaskGroup._run' was never awaited" RuntimeWarning was raised at collection.
@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
@guarded()
def test_spawn_into_a_block_whose_executor_shut_down() -> None:
    ex = zuki.SingleThreadedExecutor(config=zuki.ExecutorConfig(workers=1, park_timeout=None))

    async def main() -> str:
        g = TaskGroup()
        try:
            async with g:
                first = g.spawn(double, 1)
                ex.shutdown(wait=False)
                g.spawn(double, 2)  # the executor refuses it: so does the block
        except ExceptionGroup as eg:
            (exc,) = eg.exceptions
            assert isinstance(exc, zuki.ExecutorShutdownError)
        assert g.tasks == [first]  # the refused spawn left nothing behind
        assert first.cancelled()  # the body's error cancelled the block's tasks
        return "ok"

    assert ex.spawn(main()).result(timeout=WAIT) == "ok"
    ex.shutdown(wait=True)
    gc.collect()  # an unawaited coroutine would be reported here, inside the test


# --------------------------------------------------------------------------------------
# how the body ends
# --------------------------------------------------------------------------------------


@guarded()
def test_system_exit_in_the_body_cancels_the_tasks_and_is_reraised_bare() -> None:
    never = Event()
    tasks: list[Any] = []

    async def main() -> None:
        async with TaskGroup() as g:
            tasks.append(g.spawn(forever, never))
            raise SystemExit(5)

    with pytest.raises(SystemExit) as info:
        run(main(), workers=2)
    assert info.value.code == 5
    assert tasks[0].cancelled()


@guarded()
def test_a_cancelled_child_awaited_in_the_body_propagates_cancelled() -> None:
    async def main() -> str:
        never = Event()
        g = TaskGroup()
        try:
            async with g:
                member = g.spawn(forever, never)
                child = zuki.spawn(forever(never))  # not a task of the block
                child.cancel()
                await child  # raises Cancelled in the body; the block's task is not cancelled
        except zuki.Cancelled:
            pass
        else:
            return "no Cancelled"
        assert member.cancelled()
        return "propagated"

    assert run(main(), workers=2) == "propagated"


@guarded()
def test_a_deadline_after_the_block_stopped_for_an_error_is_not_a_timeout() -> None:
    async def main() -> None:
        release = Event()
        started = Event()
        cancelled_once: list[bool] = []

        async def lingers() -> str:
            started.set()
            try:
                await release.wait()
            except zuki.Cancelled:
                cancelled_once.append(True)
                await release.wait()  # cleanup that outlives the deadline
            return "done"

        g = TaskGroup(timeout=0.05)
        with pytest.raises(ExceptionGroup) as info:
            async with g:
                g.spawn(lingers)
                await started.wait()  # cancelled while running, not before it started
                g.spawn(fail, 9)
                await until(lambda: bool(cancelled_once), "the failure to stop the block")
                await zuki.sleep(0.15)  # the deadline passes while the block is stopping
                release.set()
        assert [str(e) for e in info.value.exceptions] == ["bad 9"]
        assert not g.timed_out

    run(main(), workers=2)


@guarded()
def test_a_block_closed_at_executor_exit_cancels_its_tasks() -> None:
    ex = zuki.SingleThreadedExecutor(config=zuki.ExecutorConfig(workers=1, park_timeout=None))
    never = Gate()
    seen: list[str] = []
    members: list[Any] = []

    async def member() -> None:
        try:
            await never
        except zuki.Cancelled:
            seen.append("member cancelled")
            raise

    async def stubborn_body() -> None:
        async with TaskGroup() as g:
            members.append(g.spawn(member))
            while True:
                try:
                    await never
                except zuki.Cancelled:
                    seen.append("body cancelled")
        seen.append("unreachable")

    outer = ex.spawn(stubborn_body())
    wait_until(lambda: ex.metrics().suspended_tasks == 2, what="body and member to suspend")
    ex.shutdown_at_exit()  # cancels twice, then closes the body: GeneratorExit in the block
    assert outer.cancelled()
    assert members[0].cancelled()
    assert seen.count("body cancelled") == EXIT_CANCEL_ROUNDS
    assert "member cancelled" in seen and "unreachable" not in seen


# --------------------------------------------------------------------------------------
# streams
# --------------------------------------------------------------------------------------


@guarded()
def test_a_finished_stream_stays_finished() -> None:
    async def main() -> None:
        s = stream(range(5), double, workers=2, ordered=True)
        assert [x async for x in s] == [0, 2, 4, 6, 8]
        with pytest.raises(StopAsyncIteration):
            await s.__anext__()
        await s.aclose()  # idempotent
        with pytest.raises(StopAsyncIteration):
            await s.__anext__()
        never_started = stream(range(3), double)
        await never_started.aclose()  # nothing to stop
        with pytest.raises(StopAsyncIteration):
            await never_started.__anext__()

    run(main(), workers=2)


@guarded()
def test_leaving_a_stream_cancels_workers_in_the_middle_of_an_item() -> None:
    async def main() -> None:
        never = Event()
        busy: list[int] = []
        cancelled: list[int] = []

        async def work(x: int) -> int:
            if x == 0:
                return 0
            busy.append(x)
            try:
                await never.wait()
            except zuki.Cancelled:
                cancelled.append(x)
                raise
            return x

        async with stream(range(10), work, workers=3) as s:
            assert await s.__anext__() == 0
            await until(lambda: len(busy) == 3, "every worker to be busy with an item")
        assert s._core.group.tasks and all(t.done() for t in s._core.group.tasks)
        assert sorted(cancelled) == sorted(busy)  # each was cancelled mid-item
        assert s.errors == []

    run(main(), workers=2)
