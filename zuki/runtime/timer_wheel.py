"""A hierarchical timer wheel: O(1) insert and cancel, firing in deadline order.

Prior art
=========

tokio's time driver (``tokio/src/runtime/time/wheel/{mod,level}.rs``), itself after
Varghese and Lauck, "Hashed and Hierarchical Timing Wheels" (SOSP 1987), and the Linux
kernel's ``kernel/time/timer.c``. asyncio keeps its timers in a binary heap
(``heapq`` of ``TimerHandle``) and cancels lazily by marking; that costs O(log n) per
insert and keeps cancelled timers in memory until they reach the top or a clean-up pass.

The wheel
=========

Time is counted in *ticks* of 1 ms since the wheel's origin (the injected clock's value
when the wheel was made). There are :data:`LEVELS` = 6 levels of :data:`SLOTS` = 64 slots;
a slot of level ``L`` covers ``64**L`` ticks, so level 0 has 1 ms slots over 64 ms, level 1
has 64 ms slots over 4.1 s, ..., level 5 has 12.4 day slots over 2.2 years. A timer lives
in exactly one slot: the level is the highest 6-bit group in which its tick differs from
the wheel's current tick (``elapsed``), so the nearer a timer, the finer its slot. Each
level keeps a 64-bit ``occupied`` mask, so the next non-empty slot of a level is a
rotate and a count of trailing zeros, and the earliest expiration of the wheel is the
first occupied slot of the lowest non-empty level (a slot of level ``L`` starts after
every slot of the levels below it, by construction).

``poll(now)`` walks expirations in order up to ``now``: a slot of level 0 fires its
timers, a slot of a higher level *cascades*: its timers move to the finer slots they now
belong to (each timer cascades at most ``LEVELS - 1`` times over its life). Deadlines
further away than one turn of the top level (``MAX_TICKS``, about 2.2 years) go round the
top level and cascade back into it until they are within reach, as in tokio.

Precision: ticks place timers, deadlines fire them
--------------------------------------------------

A timer keeps its exact deadline (a float of the injected clock) next to its tick, the
tick being the deadline rounded *down* to the millisecond. When the slot of the current
tick is processed, only timers whose exact deadline is ``<= now`` fire; the others wait in
that slot, and ``poll`` answers the exact time until the earliest of them. So a timer never
fires early, and the wheel adds no lateness of its own: how late a timer fires is up to
whoever calls ``poll`` (the reactor arms a nanosecond ``timerfd`` where the platform has one;
tokio, which rounds deadlines up to the tick, is up to 1 ms late by design).

Costs
=====

``insert`` and ``cancel`` are O(1): a few integer operations, one ``dict`` store or
delete (each slot is a ``dict`` used as an ordered set, which is also what makes cancel
O(1) and firing within a slot FIFO), and one lock round-trip. ``poll`` is O(fired +
cascaded + LEVELS). A cancelled timer is gone at once: nothing stays behind to be swept.

Thread-safety
=============

One ``threading.Lock`` guards the whole wheel: ``insert``, ``cancel`` and ``poll`` may be
called from any thread. Timers are inserted by whichever worker polls a ``sleep``, and
polled by the reactor's driver thread; the lock is held for O(1) work except for the
cascade and collection part of ``poll``. Wakers are called *after* the lock is released,
so a waker may insert or cancel timers itself. A finalizer must not take the lock (the
garbage collector may run it in a thread that holds it): it calls ``discard``, which only
appends to a queue that ``poll`` drains. Rejected: per-level locks (a cascade moves
timers between levels, so it would take all of them anyway) and a lock-free insert queue
drained by ``poll`` (it makes ``cancel`` O(n) or lazy, which is the heap's problem again).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Final, Protocol

__all__ = [
    "LEVELS",
    "MAX_TICKS",
    "SLOTS",
    "TICK",
    "TimerHandle",
    "TimerWheel",
    "Wakeable",
]

LEVELS: Final = 6
"""Number of levels of the wheel."""
SLOTS: Final = 64
"""Slots per level (a power of two; 6 bits of the tick per level)."""
TICK: Final = 0.001
"""Seconds per tick: the resolution of the finest level."""
MAX_TICKS: Final = (1 << (6 * LEVELS)) - 1
"""Ticks in one turn of the top level; farther deadlines go round it (module docstring)."""

_BITS: Final = 6
_SLOT_MASK: Final = SLOTS - 1
_MASK64: Final = (1 << 64) - 1
# Ticks are clamped here so that ``inf`` and absurd deadlines stay integers.
_TICK_CAP: Final = 1 << 62
_NOT_IN_WHEEL: Final = -1


class Wakeable(Protocol):
    """What a timer wakes: anything with a thread-safe ``wake()`` (a ``zuki.Waker``)."""

    def wake(self) -> None:
        """Called once, from the thread that polls the wheel, when the timer is due."""


class TimerHandle:
    """One timer in a :class:`TimerWheel`; pass it to :meth:`TimerWheel.cancel`.

    ``deadline`` is the instant (of the wheel's clock) the timer was set for. ``waker`` is
    what it wakes; the owner may replace it while the timer is pending (a future polled
    again with another waker), and a stale waker already taken by a concurrent ``poll``
    still wakes the task that set the timer.

    Thread-safety: ``_where`` and ``_tick`` are written only under the wheel's lock;
    :attr:`pending` reads ``_where`` without it and may be stale by the time it returns.
    """

    __slots__ = ("_tick", "_where", "deadline", "waker")

    def __init__(self, deadline: float, tick: int, waker: Wakeable) -> None:
        self.deadline: Final = deadline
        self.waker: Wakeable = waker
        self._tick = tick
        # level * SLOTS + slot while in the wheel, _NOT_IN_WHEEL once fired or cancelled
        self._where = _NOT_IN_WHEEL

    @property
    def pending(self) -> bool:
        """Whether the timer is still in its wheel (neither fired nor cancelled)."""
        return self._where != _NOT_IN_WHEEL

    def __repr__(self) -> str:
        state = "pending" if self.pending else "done"
        return f"<TimerHandle deadline={self.deadline:.6f} {state}>"


class TimerWheel:
    """A hierarchical timer wheel (see the module docstring).

    ``clock`` returns the current time in seconds (default ``time.monotonic``); tests pass
    a virtual clock. Deadlines given to :meth:`insert` are instants of that clock.
    ``on_earlier``, if given, is called (outside the lock, in the inserting thread) when an
    insert lands before the next deadline that the last :meth:`poll` reported: the reactor
    uses it to interrupt a driver that sleeps until that later deadline.

    Thread-safety: every method may be called from any thread (one internal lock).
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        on_earlier: Callable[[], None] | None = None,
    ) -> None:
        self._clock: Final = clock
        self._origin: Final = clock()
        self._on_earlier: Final = on_earlier
        self._lock: Final = threading.Lock()
        # All fields below are guarded by _lock.
        self._elapsed = 0  # the wheel's current tick: every timer's tick is >= it
        self._slots: list[dict[TimerHandle, None]] = [{} for _ in range(LEVELS * SLOTS)]
        self._occupied = [0] * LEVELS  # bit s of level L: slot s of level L is non-empty
        self._len = 0
        # Handles to cancel at the next poll (discard()); appended without the lock.
        self._discarded: deque[TimerHandle] = deque()
        # The absolute deadline the last poll() reported (inf: none); inserts before it
        # call on_earlier once and lower it, so a burst of inserts interrupts once.
        self._reported = math.inf

    @property
    def clock(self) -> Callable[[], float]:
        """The clock the wheel's deadlines refer to."""
        return self._clock

    def __len__(self) -> int:
        """The number of pending timers (racy without external synchronization)."""
        return self._len

    def _tick_of(self, instant: float) -> int:
        ms = (instant - self._origin) * 1000.0
        if ms < _TICK_CAP:
            return int(ms) if ms > 0.0 else 0
        if math.isnan(ms):
            raise ValueError("a timer deadline must be a number, not NaN")
        return _TICK_CAP

    def insert(self, deadline: float, waker: Wakeable) -> TimerHandle:
        """Add a timer that wakes ``waker`` once the clock reaches ``deadline``.

        A deadline in the past is due at the next :meth:`poll`. O(1).

        Raises:
            ValueError: ``deadline`` is NaN.
        """
        # _tick_of and _place, inlined: this is the path every sleep takes
        ms = (deadline - self._origin) * 1000.0
        tick = int(ms) if 0.0 < ms < _TICK_CAP else self._tick_of(deadline)
        handle = TimerHandle(deadline, tick, waker)
        with self._lock:
            elapsed = self._elapsed
            if tick < elapsed:
                tick = handle._tick = elapsed
            masked = (elapsed ^ tick) | _SLOT_MASK
            if masked >= MAX_TICKS:
                masked = MAX_TICKS - 1
            level = (masked.bit_length() - 1) // _BITS
            index = (tick >> (level * _BITS)) & _SLOT_MASK
            where = level * SLOTS + index
            self._slots[where][handle] = None
            self._occupied[level] |= 1 << index
            handle._where = where
            self._len += 1
            earlier = deadline < self._reported
            if earlier:
                self._reported = deadline
        if earlier and self._on_earlier is not None:
            self._on_earlier()
        return handle

    def _place(self, handle: TimerHandle, tick: int, elapsed: int) -> None:
        """Put ``handle`` in its slot relative to ``elapsed``. Called with the lock held."""
        masked = (elapsed ^ tick) | _SLOT_MASK
        if masked >= MAX_TICKS:
            masked = MAX_TICKS - 1  # beyond one turn: the top level, which wraps
        level = (masked.bit_length() - 1) // _BITS
        index = (tick >> (level * _BITS)) & _SLOT_MASK
        where = level * SLOTS + index
        self._slots[where][handle] = None
        self._occupied[level] |= 1 << index
        handle._where = where

    def cancel(self, handle: TimerHandle) -> bool:
        """Remove a pending timer; O(1). Returns whether it was still pending.

        Cancelling a timer that already fired or was already cancelled does nothing and
        returns ``False``.

        Raises:
            ValueError: ``handle`` belongs to another wheel.
        """
        with self._lock:
            where = handle._where
            if where == _NOT_IN_WHEEL:
                return False
            slot = self._slots[where]
            if slot.pop(handle, _NOT_IN_WHEEL) is _NOT_IN_WHEEL:
                raise ValueError(f"{handle!r} belongs to another TimerWheel")
            handle._where = _NOT_IN_WHEEL
            self._len -= 1
            if not slot:
                self._occupied[where >> _BITS] &= ~(1 << (where & _SLOT_MASK))
        return True

    def discard(self, handle: TimerHandle) -> None:
        """Cancel ``handle`` at the next :meth:`poll`, without taking the lock now.

        For finalizers (``__del__``): the garbage collector may run one while this very
        thread holds the wheel's lock (it runs wherever an allocation happens), so a
        finalizer must never wait for it. The handle goes on a queue whose ``append`` is
        atomic, and ``poll`` cancels what it finds there; until then the timer counts in
        ``len()``, and if it fires first it wakes its waker as usual.
        """
        self._discarded.append(handle)

    def _drain_discarded(self) -> None:
        """Cancel the handles of :meth:`discard`. Lock held."""
        discarded = self._discarded
        while discarded:
            handle = discarded.popleft()
            where = handle._where
            if where == _NOT_IN_WHEEL:
                continue
            slot = self._slots[where]
            if slot.pop(handle, _NOT_IN_WHEEL) is _NOT_IN_WHEEL:
                continue  # another wheel's handle: not ours to cancel
            handle._where = _NOT_IN_WHEEL
            self._len -= 1
            if not slot:
                self._occupied[where >> _BITS] &= ~(1 << (where & _SLOT_MASK))

    def _next_expiration(self) -> tuple[int, int, int] | None:
        """``(level, slot, tick)`` of the earliest non-empty slot, or ``None``. Lock held.

        ``tick`` is when the slot must be processed: the start of the slot's range.

        The search of a level starts at the slot after the one that holds ``elapsed``,
        except on level 0, whose current slot holds the timers due later within the
        current tick. On levels 1 to 4 the current slot is always empty (a timer that
        shares it with ``elapsed`` belongs to a finer level). On the top level it holds
        only timers of the *next* turn, and so do the slots before it: searching from
        the slot after the current one visits this turn's slots first and then wraps,
        and a slot that would start at or before ``elapsed`` is moved to the next turn.
        """
        elapsed = self._elapsed
        for level, occupied in enumerate(self._occupied):
            if not occupied:
                continue
            shift = level * _BITS
            first = ((elapsed >> shift) + (1 if level else 0)) & _SLOT_MASK
            rotated = ((occupied >> first) | (occupied << (SLOTS - first))) & _MASK64
            index = ((rotated & -rotated).bit_length() - 1 + first) & _SLOT_MASK
            level_range = 1 << (shift + _BITS)
            tick = (elapsed & ~(level_range - 1)) + (index << shift)
            if tick < elapsed or (tick == elapsed and level):
                tick += level_range
            return level, index, tick
        return None

    def poll(self, now: float | None = None) -> float | None:
        """Fire every timer whose deadline is ``<= now``; return seconds until the next.

        ``now`` defaults to the wheel's clock. Due timers are woken in deadline order
        (insertion order among equal deadlines), after the wheel's lock is released. The
        answer is ``None`` when no timer is pending; otherwise the time until the earliest
        deadline, or until the next cascade (an earlier instant when the next timer sits
        in a coarse slot); ``0.0`` if something is due already (a timer inserted meanwhile).

        Raises:
            BaseException: the first exception a waker raised, after every due timer was
                woken.
        """
        if now is None:
            now = self._clock()
        now_tick = self._tick_of(now)
        fired: list[TimerHandle] = []
        with self._lock:
            if self._discarded:
                self._drain_discarded()
            self._advance(now, now_tick, fired)
            wait = self._time_to_next(now)
            self._reported = math.inf if wait is None else now + wait
        if fired:
            self._wake(fired)
        return wait

    def _advance(self, now: float, now_tick: int, fired: list[TimerHandle]) -> None:
        """Process expirations up to ``now_tick``, collecting due timers. Lock held.

        Timers of ``now_tick`` that are not due yet go back into its level-0 slot, and are
        put back only after the loop, which would otherwise take that slot again.
        """
        waiting: list[TimerHandle] = []
        while True:
            expiration = self._next_expiration()
            if expiration is None or expiration[2] > now_tick:
                break
            level, index, tick = expiration
            where = level * SLOTS + index
            slot = self._slots[where]
            self._slots[where] = {}
            self._occupied[level] &= ~(1 << index)
            self._elapsed = tick
            for handle in slot:
                if handle._tick > tick:
                    self._place(handle, handle._tick, tick)  # cascade to a finer slot
                elif handle.deadline <= now:
                    handle._where = _NOT_IN_WHEEL
                    fired.append(handle)
                else:  # due later within this very tick (so tick == now_tick)
                    waiting.append(handle)
        self._elapsed = max(self._elapsed, now_tick)
        for handle in waiting:
            self._place(handle, handle._tick, self._elapsed)
        self._len -= len(fired)

    def _time_to_next(self, now: float) -> float | None:
        """Seconds from ``now`` until the next poll has work. Lock held."""
        expiration = self._next_expiration()
        if expiration is None:
            return None
        level, index, tick = expiration
        if level == 0:
            # A level-0 slot holds one tick's timers: answer the exact earliest deadline.
            deadline = min(handle.deadline for handle in self._slots[index])
        else:
            deadline = self._origin + tick * TICK
        return deadline - now if deadline > now else 0.0

    @staticmethod
    def _wake(fired: list[TimerHandle]) -> None:
        if len(fired) > 1:
            fired.sort(key=_deadline_of)
        error: BaseException | None = None
        for handle in fired:
            try:
                handle.waker.wake()
            except BaseException as exc:  # wake the rest, then report the first
                if error is None:
                    error = exc
        if error is not None:
            raise error

    def __repr__(self) -> str:
        return f"<TimerWheel pending={self._len} elapsed_ticks={self._elapsed}>"


def _deadline_of(handle: TimerHandle) -> float:
    return handle.deadline
