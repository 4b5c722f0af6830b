"""Edges of zuki.runtime.sync: hand-offs that meet a cancellation or a close, blocking
waits without a timeout, idempotent ``set``, and the debugging reprs.

The hand-off races are made deterministic by driving the tasks by hand with a fake
scheduler: a task that was handed something is queued, and the test decides what
happens (cancel, close) before it runs again.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers import WAIT, FakeScheduler, coroutine_task, start, wait_until

import zuki
from zuki.runtime import sync as sync_mod
from zuki.runtime.sync import (
    Barrier,
    Channel,
    ChannelClosed,
    Event,
    Oneshot,
)
from zuki.runtime.task import CoroutineTask


async def waits(ev: Event) -> bool:
    return await ev.wait()


def waiter(ev: Event, sched: FakeScheduler) -> CoroutineTask[Any]:
    """A task awaiting ``ev.wait()``, run once: parked on ``ev``, or done if it is set."""
    task = coroutine_task(waits(ev), sched)
    task.run(None)
    return task


# --------------------------------------------------------------------------------------
# hand-offs meeting a cancellation or a close
# --------------------------------------------------------------------------------------


def test_a_task_released_by_an_event_and_then_cancelled_leaves_the_event_set() -> None:
    sched = FakeScheduler()
    ev = Event()
    task = waiter(ev, sched)
    assert "1 waiting" in repr(ev)
    ev.set()  # hands True to the waiter and queues the task
    assert sched.queued == [task]
    task.cancel()  # ... which is cancelled before it runs again
    sched.queued.pop().run(None)
    assert task.cancelled()
    # an Event has nothing to give back: it stays set, and later waiters pass at once
    assert ev.is_set() and repr(ev) == "<Event set, 0 waiting>"
    later = waiter(ev, sched)
    assert later.result() is True


def test_a_sender_granted_a_slot_meets_a_close_before_filling_it() -> None:
    sched = FakeScheduler()
    ch: Channel[int] = Channel(1)
    ch.try_send(0)

    async def sender() -> None:
        await ch.send(1)

    task = coroutine_task(sender(), sched)
    task.run(None)
    assert "1 senders" in repr(ch)
    assert ch.try_recv() == 0  # frees the slot: granted to the waiting sender
    assert sched.queued == [task]
    ch.close()  # closed before the sender could fill its slot
    sched.queued.pop().run(None)
    with pytest.raises(ChannelClosed, match="channel closed while sending"):
        task.result()
    with pytest.raises(ChannelClosed):
        ch.try_recv()  # the item never went in
    assert len(ch) == 0


def test_send_blocking_on_a_closed_channel() -> None:
    ch: Channel[int] = Channel(2)
    ch.close()
    with pytest.raises(ChannelClosed, match="send on a closed channel"):
        ch.send_blocking(1)
    with pytest.raises(ChannelClosed, match="send on a closed channel"):
        ch.send_blocking(1, timeout=0.01)


# --------------------------------------------------------------------------------------
# blocking waits without a timeout
# --------------------------------------------------------------------------------------


def test_blocking_waits_without_a_timeout_are_released_by_other_threads() -> None:
    ev = Event()
    ch: Channel[str] = Channel(1)
    one: Oneshot[int] = Oneshot()
    waiters = [start(ev.wait_blocking), start(ch.recv_blocking), start(one.recv_blocking)]
    # each is parked (not polling) until released
    deadline_reached = [t.join(0.02) or t.is_alive() for t, _ in waiters]
    assert deadline_reached == [True, True, True]
    ev.set()
    ch.send_blocking("item", timeout=WAIT)
    one.send(7)
    for t, _ in waiters:
        t.join(WAIT)
        assert not t.is_alive()
    assert [out for _, out in waiters] == [[True], ["item"], [7]]


def test_barrier_blocking_round_without_a_timeout() -> None:
    barrier = Barrier(2)
    assert repr(barrier) == "<Barrier 0/2 waiting>"
    t, out = start(barrier.wait_blocking)
    wait_until(lambda: barrier.n_waiting == 1, what="the first party to arrive")
    assert repr(barrier) == "<Barrier 1/2 waiting>"
    mine = barrier.wait_blocking(timeout=WAIT)
    t.join(WAIT)
    assert not t.is_alive()
    assert sorted([mine, *out]) == [0, 1]


# --------------------------------------------------------------------------------------
# idempotence and reprs
# --------------------------------------------------------------------------------------


def test_setting_an_event_twice_hands_over_once() -> None:
    sched = FakeScheduler()
    ev = Event()
    task = waiter(ev, sched)
    ev.set()
    ev.set()  # already set: nothing more to hand over
    assert sched.queued == [task]
    sched.queued.pop().run(None)
    assert task.result() is True
    ev.clear()
    assert repr(ev) == "<Event unset, 0 waiting>"


def test_oneshot_repr_follows_its_state() -> None:
    sent: Oneshot[int] = Oneshot()
    assert repr(sent) == "<Oneshot empty>"
    sent.send(1)
    assert repr(sent) == "<Oneshot sent>"
    closed: Oneshot[int] = Oneshot()
    closed.close()
    assert repr(closed) == "<Oneshot closed>"


def test_private_markers_have_readable_reprs() -> None:
    # They show up in debugger views of waiters and oneshots.
    assert repr(sync_mod._PARKED) == "<parked>"
    assert repr(sync_mod._CLOSED) == "<closed>"


def test_blocking_forms_are_refused_on_a_worker_thread() -> None:
    ev = Event()

    def on_worker() -> str:
        try:
            ev.wait_blocking(0)
        except RuntimeError as exc:
            return str(exc)
        return "allowed"

    with zuki.SingleThreadedExecutor() as ex:
        message = ex.submit(on_worker).result(timeout=WAIT)
    assert "Event.wait_blocking() would block a zuki worker thread" in message
