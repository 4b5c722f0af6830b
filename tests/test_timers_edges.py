"""Edges of timers: a timer wheel's discard queue and its small API, and a ``Sleep``
future that is polled by a second task while its timer is pending.
"""

from __future__ import annotations

import time

from helpers import WAIT, WakeCounter, guarded, wait_until

from zuki.runtime.future import PENDING, Context, Ready
from zuki.runtime.reactor import Reactor
from zuki.runtime.timer_wheel import TimerWheel
from zuki.runtime.timers import Sleep
from zuki.runtime.waker import Waker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_wheel_clock_and_repr() -> None:
    clock = Clock()
    wheel = TimerWheel(clock)
    assert wheel.clock is clock
    assert repr(wheel) == "<TimerWheel pending=0 elapsed_ticks=0>"
    wheel.insert(clock.now + 1.0, WakeCounter())
    assert repr(wheel).startswith("<TimerWheel pending=1 ")


def test_discarding_a_timer_that_was_cancelled_meanwhile_is_a_no_op() -> None:
    clock = Clock()
    wheel = TimerWheel(clock)
    waker = WakeCounter()
    handle = wheel.insert(clock.now + 1.0, waker)
    keep = wheel.insert(clock.now + 1.0, WakeCounter())
    wheel.discard(handle)  # queued, applied at the next poll
    assert wheel.cancel(handle) is True  # ... but cancelled directly first
    wheel.poll(clock.now)
    assert len(wheel) == 1 and keep.pending
    clock.now += 2.0
    wheel.poll(clock.now)
    assert waker.wakes == 0 and not keep.pending


def test_discarding_another_wheels_timer_leaves_it_alone() -> None:
    clock = Clock()
    mine, other = TimerWheel(clock), TimerWheel(clock)
    waker = WakeCounter()
    foreign = other.insert(clock.now + 0.5, waker)
    mine.insert(clock.now + 0.5, WakeCounter())  # the same slot index in this wheel
    mine.discard(foreign)
    mine.poll(clock.now)
    assert foreign.pending and len(other) == 1 and len(mine) == 1
    clock.now += 1.0
    other.poll(clock.now)
    assert waker.wakes == 1  # it still fired, in its own wheel


@guarded()
def test_a_sleep_polled_by_another_task_wakes_that_task() -> None:
    reactor = Reactor(name="test-timers-edges")
    try:
        first, second = WakeCounter(), WakeCounter()
        nap = Sleep(time.monotonic() + 0.05, reactor)
        assert repr(nap).startswith("<zuki.sleep until ")
        assert nap.poll(Context(Waker(first))) is PENDING
        assert nap.poll(Context(Waker(second))) is PENDING  # the future moved tasks
        assert reactor.pending_timers() == 1  # one timer, re-pointed
        wait_until(lambda: second.wakes == 1, timeout=WAIT, what="the timer to fire")
        assert first.wakes == 0
        answer = nap.poll(Context(Waker(second)))
        assert isinstance(answer, Ready) and answer.value is None
    finally:
        reactor.close()
