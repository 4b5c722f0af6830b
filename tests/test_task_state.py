"""White-box tests of the task state machine (zuki/runtime/task.py), wakers and futures.

The tasks here are driven by hand with a fake scheduler that records what it is asked to
queue, so every transition can be checked: a task is queued at most once, a wake while
running re-queues it through its runner (not the waker), cancellation wins only where
``concurrent.futures`` says it may, and completion entries fire exactly once.
Plain ``def`` tests; the ones with threads bound their waits.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextvars
import threading
import time
from typing import Any

import pytest
from helpers import FakeScheduler as RecordingScheduler
from helpers import Slot, ctx

import zuki
from zuki.runtime import task as task_mod
from zuki.runtime.future import PENDING, Context, CoroutineFuture, Future, Poll, Ready
from zuki.runtime.task import (
    CANCELLED,
    DONE_ERR,
    DONE_OK,
    IDLE,
    NEW,
    NOTIFIED,
    RUNNING,
    SCHEDULED,
    CallTask,
    CoroutineTask,
    FutureTask,
    JoinHandle,
    make_task,
)
from zuki.runtime.waker import TaskWakerData, Waker, WorkStealingWakerData

WAIT = 30.0


class FakeScheduler(RecordingScheduler):
    """The recording scheduler, handing out a work-stealing executor's waker data."""

    waker_data_type = WorkStealingWakerData


# --------------------------------------------------------------------------------------
# callable tasks
# --------------------------------------------------------------------------------------


def test_callable_task_runs_once() -> None:
    calls: list[int] = []
    t: CallTask[int] = CallTask(lambda: calls.append(1) or 7, (), ctx())
    assert t._st == NEW and t.state == "new" and not t.done()
    assert t.run(None) is False
    assert t._st == DONE_OK and t.done() and not t.running()
    assert t.result() == 7 and t.exception() is None
    assert t.run(None) is False  # a second (illegal) run does nothing
    assert calls == [1]


def test_callable_task_error_and_base_exception_are_kept() -> None:
    t: CallTask[None] = CallTask(lambda: 1 / 0, (), ctx())
    t.run(None)
    assert t._st == DONE_ERR
    assert isinstance(t.exception(), ZeroDivisionError)
    with pytest.raises(ZeroDivisionError):
        t.result()

    def interrupt() -> None:
        raise KeyboardInterrupt

    k: CallTask[None] = CallTask(interrupt, (), ctx())
    k.run(None)  # the runner survives it
    with pytest.raises(KeyboardInterrupt):
        k.result()


def test_cancel_new_callable_wins_and_it_never_runs() -> None:
    ran: list[int] = []
    t: CallTask[None] = CallTask(lambda: ran.append(1), (), ctx())
    assert t.cancel() is True
    assert t._st == CANCELLED and t.cancelled() and t.done()
    assert t.cancel() is True  # concurrent.futures: cancelling twice says True
    assert t.run(None) is False
    assert ran == []
    with pytest.raises(zuki.Cancelled):
        t.result()
    with pytest.raises(cf.CancelledError):
        t.exception()
    assert t._state == cf._base.CANCELLED_AND_NOTIFIED


def test_cancel_running_or_finished_callable_is_false() -> None:
    box: list[bool] = []
    holder: list[CallTask[None]] = []
    t: CallTask[None] = CallTask(lambda: box.append(holder[0].cancel()), (), ctx())
    holder.append(t)
    t.run(None)
    assert box == [False]  # cancel() from inside its own run
    assert t._st == DONE_OK
    assert t.cancel() is False and not t.cancelled()


def test_callable_raising_cancelled_ends_cancelled() -> None:
    def give_up() -> None:
        raise zuki.Cancelled

    t: CallTask[None] = CallTask(give_up, (), ctx())
    t.run(None)
    assert t.cancelled()


def test_task_runs_in_its_own_context_copy() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="outer")
    token = var.set("spawner")
    try:
        t: CallTask[str] = CallTask(lambda: (var.set("task"), var.get())[1], (), ctx())
    finally:
        var.reset(token)
    t.run(None)
    assert t.result() == "task"
    assert var.get() == "outer"


# --------------------------------------------------------------------------------------
# pollable tasks: wake, requeue, suspend
# --------------------------------------------------------------------------------------


def test_pending_future_goes_idle_and_one_wake_queues_it_once() -> None:
    sched = FakeScheduler()
    slot = Slot()
    t = FutureTask(slot, ctx(), sched)
    assert t.run(None) is False
    assert t._st == IDLE
    assert t in sched.suspended  # registered before it went idle
    assert slot.waker is not None
    slot.waker.wake()
    slot.waker.wake_by_ref()
    slot.waker.clone().wake()
    assert t._st == SCHEDULED
    assert sched.queued == [t]  # three wakes, one queueing
    slot.set("v")  # a fourth wake while scheduled: still once
    assert sched.queued == [t]
    assert sched.pop().run(None) is False
    assert t.result() == "v"
    assert t not in sched.suspended
    slot.waker.wake()  # after completion: harmless
    assert sched.queued == [] and t._st == DONE_OK


def test_wake_while_running_marks_notified_and_the_runner_requeues() -> None:
    sched = FakeScheduler()
    seen: list[int] = []

    class WakesItself(Future[str]):
        polls = 0

        def poll(self, cx: Context) -> Poll[str]:
            self.polls += 1
            if self.polls == 3:
                return Ready("third")
            cx.waker.wake_by_ref()
            seen.append(task._st)
            return PENDING

    task = FutureTask(WakesItself(), ctx(), sched)
    assert task.run(None) is True  # re-queue: the runner does it, not the waker
    assert task._st == SCHEDULED
    assert sched.queued == []
    assert task.run(None) is True
    assert task.run(None) is False
    assert task.result() == "third"
    assert seen == [NOTIFIED, NOTIFIED]


def test_concurrent_wakes_from_foreign_threads_queue_once() -> None:
    for _ in range(20):
        sched = FakeScheduler()
        slot = Slot()
        t = FutureTask(slot, ctx(), sched)
        t.run(None)
        assert slot.waker is not None
        waker = slot.waker
        barrier = threading.Barrier(8)

        def wake(w: Waker = waker, b: threading.Barrier = barrier) -> None:
            b.wait(WAIT)
            for _ in range(50):
                w.clone().wake_by_ref()

        threads = [threading.Thread(target=wake) for _ in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(WAIT)
        assert sched.queued == [t]
        assert t._st == SCHEDULED


def test_wakes_racing_a_step_never_run_the_task_twice() -> None:
    """A foreign thread wakes while the owner steps: each step sees the task RUNNING or
    queued, never both, and every wake leads to a later poll."""
    sched = FakeScheduler()
    polls = [0]
    stop = threading.Event()
    holder: list[FutureTask[None]] = []

    class Racy(Future[None]):
        def poll(self, cx: Context) -> Poll[None]:
            assert holder[0]._st in (RUNNING, NOTIFIED)
            polls[0] += 1
            if polls[0] >= 300:
                return Ready(None)
            self.waker = cx.waker
            return PENDING

    fut = Racy()
    t = FutureTask(fut, ctx(), sched)
    holder.append(t)

    def waker_thread() -> None:
        while not stop.is_set():
            w = getattr(fut, "waker", None)
            if w is not None:
                w.wake()

    th = threading.Thread(target=waker_thread)
    th.start()
    try:
        requeue = t.run(None)
        while not t.done():
            if requeue:
                requeue = t.run(None)
                continue
            with sched.lock:
                queued = list(sched.queued)
                sched.queued.clear()
            assert len(queued) <= 1
            if queued:
                requeue = queued[0].run(None)
            else:
                time.sleep(0)
    finally:
        stop.set()
        th.join(WAIT)
    assert t.result() is None


def test_coroutine_task_awaits_future_then_handle() -> None:
    sched = FakeScheduler()
    slot = Slot()
    child: CallTask[int] = CallTask(lambda: 40, (), ctx())

    async def body() -> int:
        a = await slot
        b = await child
        return a + b

    t = CoroutineTask(body(), ctx(), sched)
    assert t.run(None) is False and t._st == IDLE
    slot.set(2)
    assert sched.pop().run(None) is False  # now waiting on the child handle
    assert t._st == IDLE
    child.run(None)  # completing the child wakes the parent, at the back of the queue
    assert sched.joiners == [t]
    assert sched.pop().run(None) is False
    assert t.result() == 42
    assert t not in sched.suspended


def test_yield_now_requeues_behind() -> None:
    sched = FakeScheduler()

    async def body() -> str:
        await zuki.yield_now()
        await zuki.yield_now()
        return "done"

    t = CoroutineTask(body(), ctx(), sched)
    assert t.run(None) is True and t._st == SCHEDULED
    assert t.run(None) is True
    assert t.run(None) is False
    assert t.result() == "done"
    assert sched.queued == []


def test_cancel_suspended_coroutine_throws_cancelled_once() -> None:
    sched = FakeScheduler()
    slot = Slot()
    thrown: list[BaseException] = []

    async def body() -> None:
        try:
            await slot
        except BaseException as e:
            thrown.append(e)
            raise

    t = CoroutineTask(body(), ctx(), sched)
    t.run(None)
    assert t.cancel() is True
    assert t._st == SCHEDULED and sched.queued == [t]
    assert t.cancel() is True  # requested again: still queued once
    assert sched.queued == [t]
    sched.pop().run(None)
    assert t.cancelled()
    assert len(thrown) == 1 and isinstance(thrown[0], zuki.Cancelled)


def test_cancelled_coroutine_may_catch_and_finish() -> None:
    sched = FakeScheduler()
    slot = Slot()

    async def stubborn() -> str:
        try:
            await slot
        except zuki.Cancelled:
            return "caught"
        return "not cancelled"

    t = CoroutineTask(stubborn(), ctx(), sched)
    t.run(None)
    t.cancel()
    sched.pop().run(None)
    assert t.result() == "caught" and not t.cancelled()


def test_cancel_new_coroutine_closes_it_without_warning() -> None:
    async def never() -> None:
        raise AssertionError("must not run")

    coro = never()
    t = CoroutineTask(coro, ctx(), FakeScheduler())
    assert t.cancel() is True
    assert coro.cr_frame is None  # closed: no "never awaited" warning later
    assert t.run(None) is False


def test_not_awaitable_is_thrown_into_the_coroutine() -> None:
    import types

    @types.coroutine
    def bare_yield() -> Any:
        yield "not a zuki awaitable"

    async def body() -> None:
        await bare_yield()

    t = CoroutineTask(body(), ctx(), FakeScheduler())
    t.run(None)
    with pytest.raises(TypeError, match="not a zuki awaitable"):
        t.result()


def test_future_poll_returning_garbage_fails_the_task() -> None:
    class Bad(Future[int]):
        def poll(self, cx: Context) -> Any:
            return 5

    t = FutureTask(Bad(), ctx(), FakeScheduler())
    t.run(None)
    with pytest.raises(TypeError, match=r"Poll\.ready"):
        t.result()


# --------------------------------------------------------------------------------------
# completion entries, concurrent.futures compatibility
# --------------------------------------------------------------------------------------


def test_done_callbacks_fire_once_in_order_and_errors_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    t: CallTask[int] = CallTask(lambda: 1, (), ctx())
    order: list[str] = []

    def bad(_: Any) -> None:
        raise RuntimeError("callback failed")

    t.add_done_callback(lambda h: order.append("a"))
    t.add_done_callback(bad)
    t.add_done_callback(lambda h: order.append("b"))
    with caplog.at_level("ERROR", logger="zuki"):
        t.run(None)
    assert order == ["a", "b"]
    assert "exception calling callback" in caplog.text
    t.add_done_callback(lambda h: order.append("late"))
    assert order == ["a", "b", "late"]


def test_result_timeout_and_unregister() -> None:
    t: CallTask[int] = CallTask(lambda: 3, (), ctx())
    with pytest.raises(TimeoutError):
        t.result(timeout=0.01)
    assert t._entries == []  # the timed-out latch was removed
    threading.Timer(0.05, t.run, args=(None,)).start()
    assert t.result(timeout=WAIT) == 3


def test_handles_work_with_concurrent_futures_wait_and_as_completed() -> None:
    handles: list[JoinHandle[int]] = [CallTask(lambda i=i: i, (), ctx()) for i in range(20)]
    for h in handles[:10]:
        h.run(None)
    handles[10].cancel()

    def finish_rest() -> None:
        for h in handles[11:]:
            h.run(None)

    threading.Timer(0.05, finish_rest).start()
    done, not_done = cf.wait(handles, timeout=WAIT)
    assert not not_done and len(done) == 20
    seen = list(cf.as_completed(handles, timeout=WAIT))
    assert len(seen) == 20 and set(seen) == set(handles)


def test_as_completed_never_yields_a_handle_twice() -> None:
    for _ in range(50):
        handles: list[JoinHandle[int]] = [CallTask(lambda: 1, (), ctx()) for _ in range(8)]
        runner = threading.Thread(target=lambda hs=handles: [h.run(None) for h in hs])
        runner.start()
        seen = list(cf.as_completed(handles, timeout=WAIT))
        runner.join(WAIT)
        assert len(seen) == 8 and len(set(seen)) == 8


def test_first_exception_wait_does_not_deadlock_on_the_handle_lock() -> None:
    bad: CallTask[None] = CallTask(lambda: 1 / 0, (), ctx())
    bad.run(None)
    slow: CallTask[None] = CallTask(lambda: None, (), ctx())
    done, _ = cf.wait([bad, slow], timeout=WAIT, return_when=cf.FIRST_EXCEPTION)
    assert bad in done


def test_set_result_from_outside_is_refused() -> None:
    t: CallTask[int] = CallTask(lambda: 1, (), ctx())
    with pytest.raises(RuntimeError):
        t.set_result(2)
    with pytest.raises(RuntimeError):
        t.set_exception(ValueError())
    with pytest.raises(RuntimeError):
        t.set_running_or_notify_cancel()


def test_make_task_dispatch_and_type_error() -> None:
    sched = FakeScheduler()

    async def coro() -> None:
        return None

    c = coro()
    assert isinstance(make_task(c, sched), CoroutineTask)
    c.close()
    assert isinstance(make_task(Slot(), sched), FutureTask)
    assert isinstance(make_task(len, sched), CallTask)
    with pytest.raises(TypeError, match="spawn\\(\\) takes a coroutine"):
        make_task(42, sched)


# --------------------------------------------------------------------------------------
# wakers and the poll protocol
# --------------------------------------------------------------------------------------


def test_waker_data_and_clone() -> None:
    sched = FakeScheduler()
    t = FutureTask(Slot(), ctx(), sched)
    data = WorkStealingWakerData("executor", t)
    assert data.task is t and data.executor == "executor" and data.task_id == id(t)
    assert data.affinity is None
    w = Waker(data)
    c = w.clone()
    assert c is not w and c.will_wake(w) and c.data is data
    assert isinstance(TaskWakerData(None, t), TaskWakerData)
    assert "task_id" in repr(data)


def test_waker_wakes_from_many_threads_after_completion_harmlessly() -> None:
    sched = FakeScheduler()
    slot = Slot()
    t = FutureTask(slot, ctx(), sched)
    t.run(None)
    slot.set(1)
    sched.pop().run(None)
    assert slot.waker is not None
    threads = [threading.Thread(target=slot.waker.wake) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(WAIT)
    assert sched.queued == [] and t.result() == 1


def test_poll_values() -> None:
    assert Poll.PENDING is PENDING is zuki.PENDING
    assert not PENDING.is_ready()
    r = Poll.ready(5)
    assert isinstance(r, Ready) and r.is_ready() and r.value == 5
    assert repr(r) == "Ready(5)" and repr(PENDING) == "PENDING"
    assert type(PENDING)() is PENDING


def test_coroutine_future_drives_a_coroutine_through_poll() -> None:
    sched = FakeScheduler()
    slot = Slot()

    async def body() -> int:
        await zuki.yield_now()
        return (await slot) * 2

    fut = Future.from_coroutine(body())
    assert isinstance(fut, CoroutineFuture)
    t = FutureTask(fut, ctx(), sched)
    assert t.run(None) is True  # yield_now: woke itself while running
    assert t.run(None) is False and t._st == IDLE
    slot.set(21)
    sched.pop().run(None)
    assert t.result() == 42


def test_base_future_poll_is_abstract() -> None:
    with pytest.raises(NotImplementedError):
        Future().poll(Context(Waker(WorkStealingWakerData(None, None))))  # type: ignore[arg-type]


def test_states_are_ordered() -> None:
    assert NEW < IDLE < SCHEDULED < RUNNING < NOTIFIED < DONE_OK < DONE_ERR < CANCELLED
    assert len(task_mod.STATE_NAMES) == CANCELLED + 1
