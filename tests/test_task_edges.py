"""Edges of tasks (zuki/runtime/task.py), futures (future.py), wakers and TaskBatch.

Tasks are driven by hand with a fake scheduler (as in test_task_state.py): closing tasks
that no worker will run again, stray wakes, a wake while running, futures that answer
``poll`` with something that is not a ``Poll``, custom ``Coroutine`` objects,
``concurrent.futures.wait`` on a task that is cancelled, reprs and error messages.
"""

from __future__ import annotations

import collections.abc
import concurrent.futures as cf
import contextlib
import contextvars
import logging
import threading
import time
from collections.abc import Generator
from typing import Any

import pytest
from helpers import (
    WAIT,
    FakeScheduler,
    Gate,
    Slot,
    WakeCounter,
    coroutine_task,
    ctx,
    guarded,
    wait_until,
)

import zuki
from zuki.runtime.future import (
    PENDING,
    YIELD,
    Context,
    CoroutineFuture,
    Future,
    Poll,
    Ready,
    YieldNow,
)
from zuki.runtime.task import (
    CANCELLED,
    DONE_OK,
    IDLE,
    NOTIFIED,
    RUNNING,
    CallTask,
    CoroutineTask,
    FutureTask,
    JoinHandle,
    make_task,
)
from zuki.runtime.task_batch import TaskBatch
from zuki.runtime.waker import TaskWakerData, Waker

# --------------------------------------------------------------------------------------
# handles
# --------------------------------------------------------------------------------------


def test_join_handles_cannot_be_made_directly() -> None:
    with pytest.raises(TypeError, match=r"made by spawn\(\), submit\(\) and spawn_batch\(\)"):
        JoinHandle()


def test_handle_repr_names_the_state_and_outcome() -> None:
    ok: CallTask[int] = CallTask(lambda: 3, (), ctx())
    assert "state=new" in repr(ok) and "fn=" in repr(ok)
    ok.run(None)
    assert "state=finished returned int" in repr(ok)
    bad: CallTask[None] = CallTask(lambda: 1 / 0, (), ctx())
    bad.run(None)
    assert "state=failed raised ZeroDivisionError" in repr(bad)
    sched = FakeScheduler()

    async def body() -> None:
        await Slot()

    t = coroutine_task(body(), sched)
    assert "state=new" in repr(t) and "coro=<coroutine object" in repr(t)
    t.run(None)
    assert "state=idle" in repr(t)
    t.cancel()
    sched.pop().run(None)
    assert "state=cancelled" in repr(t) and "raised" not in repr(t)
    assert "coro=None" in repr(t)


def test_a_handle_polled_as_a_future() -> None:
    target: CallTask[str] = CallTask(lambda: "value", (), ctx())
    flag = WakeCounter()
    cx = Context(Waker(flag))
    assert target.poll(cx) is PENDING  # registered: woken at completion
    target.run(None)
    assert flag.wakes == 1
    answer = target.poll(cx)
    assert isinstance(answer, Ready) and answer.value == "value"

    failing: CallTask[None] = CallTask(lambda: {}["k"], (), ctx())
    failing.run(None)
    with pytest.raises(KeyError):
        failing.poll(cx)


@guarded()
def test_spawning_a_handle_awaits_it() -> None:
    # A JoinHandle is a zuki.Future: spawn() of one is a task that finishes with it.
    with zuki.WorkStealingExecutor(config=zuki.ExecutorConfig(workers=2)) as ex:
        gate = Gate()
        first = ex.spawn(gate)
        second = ex.spawn(first)
        assert gate.polled.wait(WAIT)
        assert not second.done()
        gate.open("through")
        assert second.result(timeout=WAIT) == "through"


@guarded()
@pytest.mark.parametrize("kind", ["single", "ws"])
def test_result_with_a_timeout_inside_a_task_times_out(kind: str) -> None:
    config = zuki.ExecutorConfig(workers=1, park_timeout=None)
    make = zuki.SingleThreadedExecutor if kind == "single" else zuki.WorkStealingExecutor
    with make(config=config) as ex:
        gate = Gate()
        never = ex.spawn(gate)

        def impatient() -> str:
            started = time.monotonic()
            try:
                never.result(timeout=0.05)
            except TimeoutError:
                elapsed = time.monotonic() - started
                return f"timed out after {elapsed >= 0.04}"
            return "finished?"

        assert ex.submit(impatient).result(timeout=WAIT) == "timed out after True"
        assert not never.done()
        gate.open(1)
        assert never.result(timeout=WAIT) == 1


@guarded()
def test_concurrent_futures_wait_sees_a_cancellation() -> None:
    sched = FakeScheduler()
    slot = Slot()

    async def body() -> None:
        await slot

    task = coroutine_task(body(), sched)
    task.run(None)
    assert task._st == IDLE
    outcome: list[Any] = []

    def waiter() -> None:
        outcome.append(cf.wait([task], timeout=WAIT, return_when=cf.FIRST_COMPLETED))

    t = threading.Thread(target=waiter, daemon=True)
    t.start()
    wait_until(lambda: bool(task._entries), what="cf.wait to register")
    assert task.cancel() is True
    sched.pop().run(None)
    t.join(WAIT)
    assert not t.is_alive()
    done, not_done = outcome[0]
    assert done == {task} and not not_done
    assert task.cancelled()


# --------------------------------------------------------------------------------------
# coroutine tasks driven by hand
# --------------------------------------------------------------------------------------


def test_a_stray_wake_while_awaiting_a_handle_keeps_waiting() -> None:
    sched = FakeScheduler()
    child: CallTask[int] = CallTask(lambda: 41, (), ctx())

    async def parent() -> int:
        return await child + 1

    task = coroutine_task(parent(), sched)
    assert task.run(None) is False
    assert task._st == IDLE
    task.wake()  # a stray wake: the child has not finished
    assert sched.pop() is task
    assert task.run(None) is False
    assert task._st == IDLE and not task.done()
    child.run(None)  # completing the child wakes the parent as a joiner
    assert sched.pop() is task
    task.run(None)
    assert task.result() == 42


def test_a_wake_while_running_requeues_through_the_runner() -> None:
    sched = FakeScheduler()
    slot = Slot()
    me: list[CoroutineTask[Any]] = []

    async def body() -> str:
        me[0].wake_joiner()  # while RUNNING: marks the task NOTIFIED
        assert me[0]._st == NOTIFIED
        return str(await slot)

    task = coroutine_task(body(), sched)
    me.append(task)
    assert task.run(None) is True  # notified while running: the runner re-queues it
    assert sched.queued == []  # ... not the waker
    slot.set("x")
    task.run(None)
    assert task.result() == "x"
    task.wake_joiner()  # finished: ignored
    assert task._st == DONE_OK


class RawYield:
    """An awaitable that yields a handle to the driver itself (no readiness check)."""

    def __init__(self, handle: JoinHandle[Any]) -> None:
        self.handle = handle

    def __await__(self) -> Generator[Any, Any, Any]:
        return (yield self.handle)


def test_a_yielded_handle_that_already_finished_resumes_at_once() -> None:
    sched = FakeScheduler()
    ok: CallTask[str] = CallTask(lambda: "ok", (), ctx())
    bad: CallTask[None] = CallTask(lambda: {}["missing"], (), ctx())
    ok.run(None)
    bad.run(None)

    async def body() -> tuple[str, str]:
        value = await RawYield(ok)
        try:
            await RawYield(bad)
        except KeyError as exc:
            return value, repr(exc)
        return value, "no error"

    task = coroutine_task(body(), sched)
    assert task.run(None) is False  # finished in one step: nothing to wait for
    assert task.result() == ("ok", "KeyError('missing')")


class NotAPoll(Future[Any]):
    def poll(self, cx: Context) -> Any:
        return 42


async def type_error_of(fut: Future[Any]) -> str:
    """Await ``fut``; return the message of the ``TypeError`` raised at the await."""
    try:
        await fut
    except TypeError as exc:
        return str(exc)
    return "no error"


def test_a_future_answering_a_non_poll_is_a_type_error_at_the_await() -> None:
    sched = FakeScheduler()
    task = coroutine_task(type_error_of(NotAPoll()), sched)
    task.run(None)
    assert task.result() == "NotAPoll.poll() must return Poll.ready(value) or Poll.PENDING, not 42"


class ManualCoroutine(collections.abc.Coroutine[Any, Any, Any]):
    """A ``Coroutine`` that is not a native coroutine: it returns at its first send."""

    def __init__(self, value: Any) -> None:
        self.value = value
        self.sends = 0

    def send(self, value: Any) -> Any:
        self.sends += 1
        raise StopIteration(self.value)

    def throw(self, *args: Any) -> Any:
        raise args[0]

    def __await__(self) -> Generator[Any, Any, Any]:
        return (yield from ())


def test_a_custom_coroutine_object_is_driven_like_a_coroutine() -> None:
    sched = FakeScheduler()
    coro = ManualCoroutine("custom")
    task = make_task(coro, sched, ctx())
    assert isinstance(task, CoroutineTask)
    task.run(None)
    assert task.result() == "custom" and coro.sends == 1


class Unprintable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_make_task_names_what_it_refused() -> None:
    sched = FakeScheduler()
    with pytest.raises(TypeError, match=r"not 42 \(of type int\)"):
        make_task(42, sched)
    with pytest.raises(TypeError, match=r"<unprintable Unprintable object> \(of type Unprintable"):
        make_task(Unprintable(), sched)
    with pytest.raises(TypeError) as info:
        make_task("x" * 500, sched)
    message = str(info.value)
    assert "..." in message and "(of type str)" in message
    assert len(message) < 400  # the long repr is cut at 200 characters


# --------------------------------------------------------------------------------------
# close_unfinished: tasks no worker will run again
# --------------------------------------------------------------------------------------


def test_close_unfinished_closes_a_suspended_coroutine_in_its_context() -> None:
    sched = FakeScheduler()
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="outside")
    cleanup: list[str] = []

    async def body() -> None:
        var.set("inside")
        try:
            await Slot()
        finally:
            cleanup.append(var.get())

    task = coroutine_task(body(), sched)
    task.run(None)
    assert task._st == IDLE and task in sched.suspended
    task.close_unfinished()
    assert cleanup == ["inside"]  # finally ran, in the task's own context
    assert task.cancelled() and task not in sched.suspended
    with pytest.raises(zuki.Cancelled):
        task.result()


def test_close_unfinished_of_a_new_coroutine_closes_it_unstarted() -> None:
    sched = FakeScheduler()
    started: list[bool] = []

    async def body() -> None:
        started.append(True)

    coro = body()
    task = coroutine_task(coro, sched)
    task.close_unfinished()  # no "never awaited" RuntimeWarning (an error in this suite)
    assert task.cancelled() and started == []
    assert coro.cr_frame is None  # closed


def test_close_unfinished_leaves_finished_and_running_tasks_alone() -> None:
    sched = FakeScheduler()

    async def done() -> int:
        return 5

    finished = coroutine_task(done(), sched)
    finished.run(None)
    finished.close_unfinished()
    assert finished.result() == 5

    me: list[CoroutineTask[Any]] = []

    async def closes_itself() -> str:
        me[0].close_unfinished()  # RUNNING: not ours to close
        return "ran to the end"

    running = coroutine_task(closes_itself(), sched)
    me.append(running)
    running.run(None)
    assert running.result() == "ran to the end"


def test_close_unfinished_logs_a_coroutine_that_fails_to_close(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sched = FakeScheduler()

    async def stubborn() -> None:
        try:
            await Slot()
        finally:
            raise ValueError("cleanup failed")

    task = coroutine_task(stubborn(), sched)
    task.run(None)
    with caplog.at_level(logging.ERROR, logger="zuki"):
        task.close_unfinished()
    assert task.cancelled()
    assert "error closing" in caplog.text and "cleanup failed" in caplog.text


def test_future_task_close_unfinished() -> None:
    sched = FakeScheduler()
    slot = Slot()
    task = make_task(slot, sched, ctx())
    assert isinstance(task, FutureTask)
    assert "future=" in repr(task)
    task.run(None)
    assert task._st == IDLE
    task.close_unfinished()
    assert task.cancelled() and task not in sched.suspended
    task.close_unfinished()  # already finished: no-op
    assert task.cancelled()
    slot.set(1)  # a late wake of a closed task changes nothing
    assert sched.queued == [] and task._st == CANCELLED


def test_closing_a_future_task_while_it_runs_is_a_no_op() -> None:
    sched = FakeScheduler()
    me: list[FutureTask[Any]] = []

    class ClosesItsTask(Future[str]):
        def poll(self, cx: Context) -> Poll[str]:
            assert me[0]._st == RUNNING
            me[0].close_unfinished()
            return Ready("polled")

    task = make_task(ClosesItsTask(), sched, ctx())
    assert isinstance(task, FutureTask)
    me.append(task)
    task.run(None)
    assert task.result() == "polled"


# --------------------------------------------------------------------------------------
# CoroutineFuture driven by hand
# --------------------------------------------------------------------------------------


class Raising(Future[Any]):
    def __init__(self, pending_polls: int = 0) -> None:
        self.pending_polls = pending_polls

    def poll(self, cx: Context) -> Poll[Any]:
        if self.pending_polls:
            self.pending_polls -= 1
            return PENDING
        raise KeyError("from poll")


def test_coroutine_future_throws_a_poll_error_into_the_coroutine() -> None:
    async def body() -> str:
        with contextlib.suppress(KeyError):
            await Raising()  # raises at the first poll
        try:
            await Raising(pending_polls=2)  # pending twice, then raises
        except KeyError as exc:
            return f"caught {exc}"
        return "no error"

    fut = CoroutineFuture(body())
    cx = Context(Waker(WakeCounter()))
    assert fut.poll(cx) is PENDING
    assert fut.poll(cx) is PENDING  # still pending on the re-poll
    answer = fut.poll(cx)
    assert isinstance(answer, Ready) and answer.value == "caught 'from poll'"


def test_coroutine_future_sends_ready_values_and_rejects_foreign_awaitables() -> None:
    class Bad:
        def __await__(self) -> Generator[Any, Any, Any]:
            return (yield "an asyncio-style object")

    async def body() -> tuple[Any, str]:
        value = await ReadyAtOnce()
        try:
            await Bad()
        except TypeError as exc:
            return value, str(exc)
        return value, "no error"

    class ReadyAtOnce(Future[int]):
        def poll(self, cx: Context) -> Poll[int]:
            return Poll.ready(7)

    fut = CoroutineFuture(body())
    assert repr(fut).startswith("<CoroutineFuture <coroutine object")
    answer = fut.poll(Context(Waker(WakeCounter())))
    assert isinstance(answer, Ready)
    value, message = answer.value
    assert value == 7
    assert "'an asyncio-style object', which is not a zuki awaitable" in message


def test_coroutine_future_rejects_a_non_poll_answer() -> None:
    async def body() -> None:
        await NotAPoll()

    fut = CoroutineFuture(body())
    with pytest.raises(TypeError, match=r"must return Poll\.ready"):
        fut.poll(Context(Waker(WakeCounter())))


def test_coroutine_future_yield_now_wakes_and_returns_pending() -> None:
    async def body() -> str:
        await zuki.yield_now()
        return "after yield"

    flag = WakeCounter()
    fut = Future.from_coroutine(body())
    cx = Context(Waker(flag))
    assert fut.poll(cx) is PENDING
    assert flag.wakes == 1  # yield_now: "poll me again at once"
    answer = fut.poll(cx)
    assert isinstance(answer, Ready) and answer.value == "after yield"


class PendingThenBad(Future[Any]):
    """Answers ``PENDING`` (waking at once), then something that is not a ``Poll``."""

    def __init__(self) -> None:
        self.polls = 0

    def poll(self, cx: Context) -> Any:
        self.polls += 1
        if self.polls == 1:
            cx.waker.wake()
            return PENDING
        return "ready?"


def test_coroutine_future_rejects_a_non_poll_answer_after_pending() -> None:
    async def body() -> None:
        await PendingThenBad()

    fut = CoroutineFuture(body())
    cx = Context(Waker(WakeCounter()))
    assert fut.poll(cx) is PENDING
    with pytest.raises(TypeError, match="not 'ready\\?'"):
        fut.poll(cx)


def test_a_non_poll_answer_after_pending_is_thrown_into_the_task() -> None:
    # Regression: the answer of a re-poll was read as ``answer.value`` unchecked, so a
    # bad answer raised AttributeError out of the task's step (a scheduler error).
    sched = FakeScheduler()
    task = coroutine_task(type_error_of(PendingThenBad()), sched)
    assert task.run(None) is True  # woken during its own poll: the runner re-queues it
    task.run(None)
    assert task.result() == (
        "PendingThenBad.poll() must return Poll.ready(value) or Poll.PENDING, not 'ready?'"
    )


@guarded()
@pytest.mark.parametrize("kind", ["single", "ws"])
def test_a_non_poll_answer_after_pending_leaves_the_executor_running(kind: str) -> None:
    make = zuki.SingleThreadedExecutor if kind == "single" else zuki.WorkStealingExecutor
    with make(config=zuki.ExecutorConfig(workers=1, park_timeout=None)) as ex:
        handle = ex.spawn(type_error_of(PendingThenBad()))
        assert "not 'ready?'" in handle.result(timeout=WAIT)
        assert ex.submit(int, "7").result(timeout=WAIT) == 7


# --------------------------------------------------------------------------------------
# reprs and small containers
# --------------------------------------------------------------------------------------


def test_reprs_of_futures_and_wakers() -> None:
    flag = WakeCounter()
    waker = Waker(flag)
    assert repr(waker) == f"Waker({flag!r})"
    assert repr(Context(waker)) == f"Context(Waker({flag!r}))"
    assert repr(YIELD) == "<zuki yield_now marker>"
    assert repr(zuki.yield_now()) == "zuki.yield_now()"
    assert isinstance(zuki.yield_now(), YieldNow)
    assert repr(Ready([1])) == "Ready([1])" and repr(PENDING) == "PENDING"


def test_task_waker_data_equality_and_hash_follow_the_task() -> None:
    sched = FakeScheduler()

    async def body() -> None:
        await Slot()

    task = coroutine_task(body(), sched)
    other = coroutine_task(body(), sched)
    a, b = TaskWakerData("ex", task), TaskWakerData("ex", task)
    assert a == b and hash(a) == hash(b) == a.task_id == id(task)
    assert a != TaskWakerData("ex", other) and a != "not waker data"
    assert len({a, b, TaskWakerData("ex", other)}) == 2
    assert a.executor == "ex" and a.task is task
    assert Waker(a).will_wake(Waker(b))
    assert f"task_id={id(task):#x}" in repr(a)
    for t in (task, other):
        t.close_unfinished()


def test_task_batch_truthiness_and_repr() -> None:
    batch = TaskBatch()
    assert not batch and len(batch) == 0
    assert repr(batch) == "<TaskBatch of 0 task(s)>"
    batch.add(int)
    batch.extend([str, float])
    assert batch and list(batch) == [int, str, float]
    assert repr(batch) == "<TaskBatch of 3 task(s)>"
    batch.clear()
    assert not batch
