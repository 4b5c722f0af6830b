"""Async synchronization primitives: one parking lot, and everything built on it.

Prior art
=========

trio's ``_core/_parking_lot.py`` (https://github.com/python-trio/trio): one blocking
primitive, a FIFO of parked tasks with ``park``/``unpark``/``unpark_all``, and every lock,
event, semaphore and channel written as a few lines of state on top of it. tokio's
``sync/batch_semaphore.rs`` and ``sync/mpsc`` for the two properties trio gets for free
from being single-threaded and that a work-stealing runtime has to earn: a waiter on one
worker thread and its releaser on another, and cancellation that can arrive after the
hand-off. asyncio's ``Lock``/``Queue`` are what users compare against.

The parking lot
===============

A :class:`_ParkingLot` is a ``deque`` of :class:`_Waiter` objects guarded by a
``threading.Lock`` that also guards the state of the primitive that owns the lot (a
``Channel``'s two lots share one lock). A waiter is a leaf :class:`~zuki.Future`:

* ``park()`` (lock held): the primitive found it cannot proceed, so it appends a fresh
  waiter, in the same critical section as the check; nothing can slip in between.
* ``poll(cx)``: if the waiter has been handed something, ``Ready(it)``; otherwise store
  ``cx.waker`` under the lock and answer ``PENDING``. A hand-off that happens before the
  first poll is seen by that poll, so no wake-up is lost.
* ``unpark(value)`` (lock held): pop the *first* waiter and hand ``value`` to it
  directly: the permit, the lock ownership, the slot or the claim on an item is the
  waiter's from that moment, whether or not its task has run yet. The waker is called
  after the lock is released.

Hand-off is what makes the primitives fair: a releaser never puts a permit "back on the
table" while someone is queued, so a task that arrives later cannot barge past a waiter
that was woken but not yet scheduled (the classic starvation of ``threading.Lock``-style
wake-and-retry). The price is a convoy under heavy contention: the next owner must be
scheduled before the resource is used again; we accept it (trio and tokio do too).

Cancellation
============

A task is cancelled by throwing ``zuki.Cancelled`` into its coroutine at the ``await``
where it is parked. The waiter's ``__await__`` catches anything thrown there, calls
``_ParkingLot.abandon`` and re-raises. Under the lot's lock, abandon either

* removes a waiter that is still queued (no stale waiter stays behind), or
* gives back what was handed to it before the cancellation arrived (the task was woken
  but had not run yet): the lot's ``give_back`` hook passes it to the next waiter or
  returns it to the primitive. So a cancelled ``lock()`` never leaves the mutex locked, a
  cancelled ``acquire()`` loses no permit, a cancelled ``recv()`` loses no message and a
  cancelled ``send()`` does not send: *an operation that raised did not happen*.

Plain threads
=============

The ``*_blocking`` methods let threads zuki does not own use the same primitives: they
park a waiter exactly as a task does and poll it with a waker that sets a
``threading.Event``; a timeout abandons the waiter like a cancellation. Calling them on a
zuki worker thread raises ``RuntimeError`` (tokio's rule for ``blocking_recv``): the
worker would stop running the very tasks that could release it.

Costs
=====

An uncontended operation is one ``threading.Lock`` critical section (``Mutex.lock`` not
even that: its fast path is one non-blocking ``Lock.acquire``). A parked operation costs
two more (the first poll, the resumption) plus one wake. Removing a cancelled waiter is
``deque.remove``, linear in the queue; cancellation is rare next to hand-off, and trio's
``OrderedDict`` was measured slower on the common path.

Rejected: a lock-free waiter queue on the atomics shim (each ctypes atomic costs several
times a ``Lock`` round trip on 3.13t, see ``TOOLCHAIN.md``); wake-all-and-retry (unfair,
and a thundering herd across worker threads).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Generator
from types import TracebackType
from typing import Any, Final, Generic, Literal, TypeVar

from zuki.runtime.future import PENDING, Context, Future, Poll, Ready
from zuki.runtime.task import current_runner
from zuki.runtime.waker import Waker

__all__ = [
    "Barrier",
    "Channel",
    "ChannelClosed",
    "ChannelEmpty",
    "ChannelFull",
    "Event",
    "Mutex",
    "Oneshot",
    "Semaphore",
]

T = TypeVar("T")


class ChannelClosed(Exception):
    """The channel was closed: ``send`` after ``close()``, or ``recv`` once it is drained.

    ``async for`` over a channel ends on it instead of raising.
    """


class ChannelFull(Exception):
    """``try_send`` on a channel whose buffer is full (or whose free slots are reserved)."""


class ChannelEmpty(Exception):
    """``try_recv`` on an open channel with nothing to take."""


class _Marker:
    """A private sentinel with a readable repr."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return f"<{self._name}>"


# A waiter's outcome before and after its life in the queue; anything else is what was
# handed to it.
_PARKED: Final = _Marker("parked")
_ABANDONED: Final = _Marker("abandoned")
# What the channels hand to their waiters.
_CLOSED: Final = _Marker("closed")
_CLAIM: Final = _Marker("claim")
_SLOT: Final = _Marker("slot")
_EMPTY: Final = _Marker("empty")

#: ``give_back(outcome)`` runs under the lot's lock for a waiter that was handed
#: ``outcome`` and then cancelled; it returns the waker of whoever gets it instead.
GiveBack = Callable[[Any], Waker | None]


class _Waiter(Future[Any]):
    """One parked operation; see the module docstring.

    Fields: ``_outcome`` is ``_PARKED`` while queued, then what was handed over, or
    ``_ABANDONED``; written under the lot's lock, read without it only as a fast check
    (a stale ``_PARKED`` costs one lock round trip). ``_waker`` is written by the polling
    task and read by the releaser, both under the lock.
    """

    __slots__ = ("_lot", "_outcome", "_waker")

    def __init__(self, lot: _ParkingLot) -> None:
        self._lot = lot
        self._outcome: Any = _PARKED
        self._waker: Waker | None = None

    def poll(self, cx: Context) -> Poll[Any]:
        outcome = self._outcome
        if outcome is _PARKED:
            with self._lot.lock:
                outcome = self._outcome
                if outcome is _PARKED:
                    self._waker = cx.waker.clone()
                    return PENDING
        return Ready(outcome)

    def __await__(self) -> Generator[Any, Any, Any]:
        try:
            return (yield self)
        except BaseException:
            # Cancelled, GeneratorExit, or anything else thrown at the await.
            self._lot.abandon(self)
            raise

    def wait_blocking(self, timeout: float | None) -> Any:
        """What is handed to this waiter, waiting in a plain thread.

        Raises:
            TimeoutError: nothing was handed over within ``timeout`` seconds; the waiter
                left the queue, and anything handed over at the last moment went on.
        """
        flag = threading.Event()
        cx = Context(Waker(_SetFlag(flag)))
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                answer = self.poll(cx)
                if isinstance(answer, Ready):
                    return answer.value
                if deadline is None:
                    flag.wait()
                elif not flag.wait(max(deadline - time.monotonic(), 0.0)):
                    answer = self.poll(cx)
                    if isinstance(answer, Ready):
                        return answer.value
                    raise TimeoutError(f"timed out after {timeout} s")
                flag.clear()
        except BaseException:
            self._lot.abandon(self)
            raise


class _SetFlag:
    """Waker data for a plain thread: waking sets its ``threading.Event``."""

    __slots__ = ("_flag",)

    def __init__(self, flag: threading.Event) -> None:
        self._flag = flag

    def wake(self) -> None:
        self._flag.set()


class _ParkingLot:
    """A FIFO of parked waiters with direct hand-off (module docstring).

    Thread-safety: ``park``, ``unpark``, ``unpark_all``, ``len`` and ``waiters`` (the
    deque, which hot paths test for emptiness directly) must be used with ``lock`` held
    (the owning primitive's lock); ``abandon`` takes it itself.
    """

    __slots__ = ("_give_back", "lock", "waiters")

    def __init__(self, lock: threading.Lock, give_back: GiveBack | None = None) -> None:
        self.lock = lock
        self._give_back = give_back
        self.waiters: deque[_Waiter] = deque()

    def __len__(self) -> int:
        return len(self.waiters)

    def park(self) -> _Waiter:
        """Queue a new waiter at the back."""
        waiter = _Waiter(self)
        self.waiters.append(waiter)
        return waiter

    def unpark(self, value: Any) -> Waker | None:
        """Hand ``value`` to the first waiter; return its waker for the caller to wake
        after releasing the lock. The lot must not be empty."""
        waiter = self.waiters.popleft()
        waiter._outcome = value
        waker = waiter._waker
        waiter._waker = None
        return waker

    def unpark_all(self, value: Callable[[int], Any]) -> list[Waker]:
        """Hand ``value(i)`` to the ``i``-th waiter, for all; return their wakers."""
        wakers = []
        waiters = self.waiters
        for i in range(len(waiters)):
            waker = self.unpark(value(i))
            if waker is not None:
                wakers.append(waker)
        return wakers

    def abandon(self, waiter: _Waiter) -> None:
        """Take ``waiter`` out of the game: dequeue it, or give back what it was handed."""
        with self.lock:
            outcome = waiter._outcome
            waiter._outcome = _ABANDONED
            waiter._waker = None
            if outcome is _PARKED:
                self.waiters.remove(waiter)
                return
            if outcome is _ABANDONED or self._give_back is None:
                return
            waker = self._give_back(outcome)
        if waker is not None:
            waker.wake()


def _wake(waker: Waker | None) -> None:
    if waker is not None:
        waker.wake()


def _wake_all(wakers: list[Waker]) -> None:
    for waker in wakers:
        waker.wake()


def _always(value: Any) -> Callable[[int], Any]:
    return lambda _i: value


def _index(i: int) -> int:
    return i


def _check_plain_thread(method: str) -> None:
    if current_runner() is not None:
        raise RuntimeError(
            f"{method}() would block a zuki worker thread; await the async form in a task"
        )


# --------------------------------------------------------------------------------------
# Mutex
# --------------------------------------------------------------------------------------


class Mutex:
    """An async mutual-exclusion lock (not reentrant): ``async with mutex: ...``.

    Fairness: FIFO. ``unlock()`` with tasks waiting hands the lock to the first of them
    without ever releasing it, so a task that arrives later cannot take it first.

    Thread-safety: every method may be called from any thread, by tasks on any worker
    and (``lock_blocking``) by plain threads. ``unlock()`` need not come from the task
    that locked it (as with ``asyncio.Lock``). A task cancelled while waiting leaves the
    queue; if the lock had already been handed to it, it passes on to the next waiter.

    The held state is a ``threading.Lock`` that is acquired while the mutex is locked and
    passed from owner to owner while waiters queue; it is released only when the queue
    is empty (both decided under the lot's lock), so the uncontended fast path is one
    non-blocking ``acquire``.
    """

    __slots__ = ("_held", "_lot")

    def __init__(self) -> None:
        self._held = threading.Lock()
        self._lot = _ParkingLot(threading.Lock(), self._give_back)

    def locked(self) -> bool:
        """Whether some task holds the mutex (a snapshot)."""
        return self._held.locked()

    def try_lock(self) -> bool:
        """Lock the mutex if it is free right now; never waits, never barges."""
        return self._held.acquire(False)

    async def lock(self) -> None:
        """Wait until the mutex is free and take it.

        Raises:
            Cancelled: the task was cancelled while waiting; it does not hold the mutex.
        """
        if self._held.acquire(False):
            return
        lot = self._lot
        with lot.lock:
            if self._held.acquire(False):
                return
            waiter = lot.park()
        await waiter

    def lock_blocking(self, timeout: float | None = None) -> bool:
        """``lock()`` for a plain thread; ``False`` if ``timeout`` seconds passed.

        Raises:
            RuntimeError: called on a zuki worker thread.
        """
        _check_plain_thread("Mutex.lock_blocking")
        lot = self._lot
        with lot.lock:
            if self._held.acquire(False):
                return True
            waiter = lot.park()
        try:
            waiter.wait_blocking(timeout)
        except TimeoutError:
            return False
        return True

    def unlock(self) -> None:
        """Release the mutex, handing it to the first waiter if there is one.

        Raises:
            RuntimeError: the mutex is not locked.
        """
        lot = self._lot
        with lot.lock:
            if not lot.waiters:
                try:
                    self._held.release()
                except RuntimeError:
                    raise RuntimeError("unlock() of an unlocked Mutex") from None
                return
            waker = lot.unpark(None)
        if waker is not None:
            waker.wake()

    def _give_back(self, _ownership: object) -> Waker | None:
        if self._lot.waiters:
            return self._lot.unpark(None)
        self._held.release()
        return None

    async def __aenter__(self) -> None:
        # lock(), inlined: one coroutine per ``async with`` instead of two.
        if self._held.acquire(False):
            return
        lot = self._lot
        with lot.lock:
            if self._held.acquire(False):
                return
            waiter = lot.park()
        await waiter

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.unlock()

    def __repr__(self) -> str:
        state = "locked" if self.locked() else "unlocked"
        return f"<{type(self).__name__} {state}, {len(self._lot)} waiting>"


# --------------------------------------------------------------------------------------
# Semaphore
# --------------------------------------------------------------------------------------


class Semaphore:
    """A counting semaphore: ``async with sem:`` holds one of ``value`` permits.

    Fairness: FIFO. A ``release()`` with tasks waiting hands its permit to the first of
    them; a free permit exists only while nobody waits.

    Thread-safety: every method may be called from any thread. A task cancelled while
    waiting leaves the queue; a permit already handed to it goes to the next waiter or
    back to the count, so permits are conserved. Like ``asyncio.Semaphore`` it is not
    bounded: ``release()`` without ``acquire()`` adds a permit.
    """

    __slots__ = ("_lot", "_value")

    def __init__(self, value: int = 1) -> None:
        if value < 0:
            raise ValueError(f"Semaphore value must be >= 0, not {value}")
        self._value = value
        self._lot = _ParkingLot(threading.Lock(), self._give_back)

    @property
    def value(self) -> int:
        """The number of free permits (a snapshot)."""
        return self._value

    def locked(self) -> bool:
        """Whether ``acquire()`` would wait right now."""
        return self._value == 0

    def try_acquire(self) -> bool:
        """Take a permit if one is free; never waits."""
        with self._lot.lock:
            if self._value:
                self._value -= 1
                return True
            return False

    async def acquire(self) -> None:
        """Wait for a permit and take it.

        Raises:
            Cancelled: the task was cancelled while waiting; it holds no permit.
        """
        lot = self._lot
        with lot.lock:
            if self._value:
                self._value -= 1
                return
            waiter = lot.park()
        await waiter

    def acquire_blocking(self, timeout: float | None = None) -> bool:
        """``acquire()`` for a plain thread; ``False`` if ``timeout`` seconds passed.

        Raises:
            RuntimeError: called on a zuki worker thread.
        """
        _check_plain_thread("Semaphore.acquire_blocking")
        lot = self._lot
        with lot.lock:
            if self._value:
                self._value -= 1
                return True
            waiter = lot.park()
        try:
            waiter.wait_blocking(timeout)
        except TimeoutError:
            return False
        return True

    def release(self) -> None:
        """Return a permit: to the first waiter if there is one, else to the count."""
        with self._lot.lock:
            waker = self._give_back(None)
        _wake(waker)

    def _give_back(self, _permit: object) -> Waker | None:
        if self._lot.waiters:
            return self._lot.unpark(None)
        self._value += 1
        return None

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} value={self._value}, {len(self._lot)} waiting>"


# --------------------------------------------------------------------------------------
# Event
# --------------------------------------------------------------------------------------


class Event:
    """A flag tasks can wait for: ``await event.wait()`` until ``event.set()``.

    ``set()`` wakes every waiter at once; ``clear()`` resets the flag for later waits
    (a waiter already released by ``set()`` stays released).

    Thread-safety: every method may be called from any thread, ``wait_blocking`` from
    plain threads. A cancelled waiter leaves the queue; there is nothing to give back.
    """

    __slots__ = ("_flag", "_lot")

    def __init__(self) -> None:
        self._flag = False
        self._lot = _ParkingLot(threading.Lock())

    def is_set(self) -> bool:
        """Whether the flag is set (a snapshot)."""
        return self._flag

    def set(self) -> None:
        """Set the flag and release every waiter."""
        with self._lot.lock:
            if self._flag:
                return
            self._flag = True
            wakers = self._lot.unpark_all(_always(True))
        _wake_all(wakers)

    def clear(self) -> None:
        """Reset the flag."""
        with self._lot.lock:
            self._flag = False

    async def wait(self) -> Literal[True]:
        """Wait until the flag is set; returns ``True`` (as ``asyncio.Event.wait``)."""
        if self._flag:
            return True
        lot = self._lot
        with lot.lock:
            if self._flag:
                return True
            waiter = lot.park()
        await waiter
        return True

    def wait_blocking(self, timeout: float | None = None) -> bool:
        """``wait()`` for a plain thread; ``False`` if ``timeout`` seconds passed.

        Raises:
            RuntimeError: called on a zuki worker thread.
        """
        _check_plain_thread("Event.wait_blocking")
        lot = self._lot
        with lot.lock:
            if self._flag:
                return True
            waiter = lot.park()
        try:
            waiter.wait_blocking(timeout)
        except TimeoutError:
            return False
        return True

    def __repr__(self) -> str:
        state = "set" if self._flag else "unset"
        return f"<{type(self).__name__} {state}, {len(self._lot)} waiting>"


# --------------------------------------------------------------------------------------
# Barrier
# --------------------------------------------------------------------------------------


class Barrier:
    """A cyclic barrier for ``parties`` tasks: ``index = await barrier.wait()``.

    Each ``wait`` blocks until ``parties`` callers have arrived, then all of them go on
    and the barrier is ready for the next round. ``wait`` returns the caller's arrival
    index in its round, ``0`` to ``parties - 1`` (the last to arrive gets
    ``parties - 1``), so exactly one caller of each round can be picked to do the
    round's bookkeeping.

    Thread-safety: every method may be called from any thread. A task cancelled while
    waiting withdraws its arrival (the round then needs another caller); once the round
    has been released, a cancellation changes nothing.
    """

    __slots__ = ("_lot", "_parties")

    def __init__(self, parties: int) -> None:
        if parties < 1:
            raise ValueError(f"Barrier parties must be >= 1, not {parties}")
        self._parties = parties
        self._lot = _ParkingLot(threading.Lock())

    @property
    def parties(self) -> int:
        """How many callers release a round."""
        return self._parties

    @property
    def n_waiting(self) -> int:
        """How many callers are waiting in the current round (a snapshot)."""
        return len(self._lot)

    def _arrive(self) -> tuple[int, list[Waker]] | _Waiter:
        """Arrive (lock held): release the round, or park."""
        lot = self._lot
        if len(lot) + 1 == self._parties:
            return self._parties - 1, lot.unpark_all(_index)
        return lot.park()

    async def wait(self) -> int:
        """Wait for the round to fill; returns this caller's arrival index.

        Raises:
            Cancelled: the task was cancelled while waiting; its arrival is withdrawn.
        """
        with self._lot.lock:
            arrived = self._arrive()
        if isinstance(arrived, _Waiter):
            index: int = await arrived
            return index
        _wake_all(arrived[1])
        return arrived[0]

    def wait_blocking(self, timeout: float | None = None) -> int:
        """``wait()`` for a plain thread.

        Raises:
            TimeoutError: the round did not fill within ``timeout`` seconds; the
                arrival is withdrawn.
            RuntimeError: called on a zuki worker thread.
        """
        _check_plain_thread("Barrier.wait_blocking")
        with self._lot.lock:
            arrived = self._arrive()
        if isinstance(arrived, _Waiter):
            index: int = arrived.wait_blocking(timeout)
            return index
        _wake_all(arrived[1])
        return arrived[0]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {len(self._lot)}/{self._parties} waiting>"


# --------------------------------------------------------------------------------------
# Channel
# --------------------------------------------------------------------------------------


class Channel(Generic[T]):
    """A bounded multi-producer multi-consumer FIFO channel.

    ``await ch.send(x)`` waits while ``capacity`` items are buffered; ``await ch.recv()``
    waits while none is. ``try_send`` raises :class:`ChannelFull` and ``try_recv``
    raises :class:`ChannelEmpty` instead of waiting. ``close()`` ends the stream:
    later sends raise :class:`ChannelClosed`, receivers first drain what is buffered and
    then get :class:`ChannelClosed` (``async for x in ch`` simply ends). Plain threads
    use ``send_blocking``/``recv_blocking``, so threads and tasks can talk both ways.

    Fairness: FIFO on both sides. A receiver that has to wait is handed a *claim* on the
    next item sent, a sender that has to wait is handed a *slot* freed by a receiver,
    first come first served; items come out in the order their sends completed.

    Thread-safety: every method may be called from any thread. Cancellation-safe: a
    ``recv`` that raised took no item, a ``send`` that raised sent nothing. A receiver
    cancelled after being handed a claim passes the claim on (the item stays first in
    line); a sender cancelled after being handed a slot passes the slot on. A send still
    waiting, or woken but not yet resumed, when ``close()`` is called raises
    ``ChannelClosed``. The buffer never holds more than ``capacity`` items.

    State, all under ``_lock``: ``_buffer``; ``_claimed``, how many items at its head
    belong to receivers that were woken and have not yet taken them; ``_reserved``, how
    many free slots belong to woken senders. Invariants: ``len(_buffer) + _reserved <=
    capacity``; receivers wait only if every buffered item is claimed; senders wait only
    if every slot is full or reserved. Those are what make the fast paths barging-free.
    """

    __slots__ = (
        "_buffer",
        "_capacity",
        "_claimed",
        "_closed",
        "_lock",
        "_receivers",
        "_recv_queue",
        "_reserved",
        "_send_queue",
        "_senders",
    )

    def __init__(self, capacity: int = 1) -> None:
        if capacity < 1:
            raise ValueError(f"Channel capacity must be >= 1, not {capacity}")
        self._capacity = capacity
        self._buffer: deque[T] = deque()
        self._claimed = 0
        self._reserved = 0
        self._closed = False
        self._lock = threading.Lock()
        self._receivers = _ParkingLot(self._lock, self._receiver_gives_back)
        self._senders = _ParkingLot(self._lock, self._sender_gives_back)
        # The lots' deques, for the hot paths' "is anybody waiting?" test.
        self._recv_queue = self._receivers.waiters
        self._send_queue = self._senders.waiters

    @property
    def capacity(self) -> int:
        """The most items the buffer holds."""
        return self._capacity

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._closed

    def __len__(self) -> int:
        """How many items are buffered (a snapshot)."""
        return len(self._buffer)

    # -- hand-off helpers, all called with the lock held --------------------------------

    def _claim_for_receiver(self) -> Waker | None:
        """An item was buffered: give a claim on it to the first waiting receiver."""
        if self._recv_queue:
            self._claimed += 1
            return self._receivers.unpark(_CLAIM)
        return None

    def _slot_for_sender(self) -> Waker | None:
        """A slot came free: give it to the first waiting sender."""
        if self._send_queue:
            self._reserved += 1
            return self._senders.unpark(_SLOT)
        return None

    def _receiver_gives_back(self, outcome: object) -> Waker | None:
        if outcome is _CLAIM:
            self._claimed -= 1
            return self._claim_for_receiver()
        return None

    def _sender_gives_back(self, outcome: object) -> Waker | None:
        if outcome is _SLOT:
            self._reserved -= 1
            return self._slot_for_sender()
        return None

    # -- sending ------------------------------------------------------------------------

    def _send_or_park(self, item: T) -> Waker | _Waiter | None:
        """Buffer ``item`` (lock held) and return whom to wake, or park the sender."""
        if self._closed:
            raise ChannelClosed("send on a closed channel")
        if len(self._buffer) + self._reserved < self._capacity:
            self._buffer.append(item)
            return self._claim_for_receiver()
        return self._senders.park()

    def _send_into_slot(self, item: T, grant: object) -> None:
        """Fill the slot a woken sender was handed (or report the close that woke it)."""
        if grant is _CLOSED:
            raise ChannelClosed("channel closed while sending")
        with self._lock:
            self._reserved -= 1
            if self._closed:
                raise ChannelClosed("channel closed while sending")
            self._buffer.append(item)
            waker = self._claim_for_receiver()
        _wake(waker)

    def try_send(self, item: T) -> None:
        """Send ``item`` if there is room now.

        Raises:
            ChannelFull: no free slot (and nothing was sent).
            ChannelClosed: the channel is closed.
        """
        with self._lock:
            if self._closed:
                raise ChannelClosed("send on a closed channel")
            if len(self._buffer) + self._reserved >= self._capacity:
                raise ChannelFull(f"channel is full ({self._capacity} items)")
            self._buffer.append(item)
            waker = self._claim_for_receiver()
        _wake(waker)

    async def send(self, item: T) -> None:
        """Send ``item``, waiting for room.

        Raises:
            ChannelClosed: the channel is or was closed before the item went in.
            Cancelled: the task was cancelled while waiting; nothing was sent.
        """
        # _send_or_park inlined: this is the channel's hot path.
        lock = self._lock
        lock.acquire()
        try:
            if self._closed:
                raise ChannelClosed("send on a closed channel")
            buffer = self._buffer
            if len(buffer) + self._reserved < self._capacity:
                buffer.append(item)
                waker = self._claim_for_receiver() if self._recv_queue else None
                waiter = None
            else:
                waiter = self._senders.park()
        finally:
            lock.release()
        if waiter is None:
            if waker is not None:
                waker.wake()
            return
        self._send_into_slot(item, await waiter)

    def send_blocking(self, item: T, timeout: float | None = None) -> None:
        """``send`` for a plain thread.

        Raises:
            TimeoutError: no room within ``timeout`` seconds; nothing was sent.
            ChannelClosed: the channel is or was closed before the item went in.
            RuntimeError: called on a zuki worker thread.
        """
        _check_plain_thread("Channel.send_blocking")
        with self._lock:
            sent = self._send_or_park(item)
        if isinstance(sent, _Waiter):
            self._send_into_slot(item, sent.wait_blocking(timeout))
        else:
            _wake(sent)

    # -- receiving ----------------------------------------------------------------------

    def _take(self) -> tuple[T, Waker | None]:
        """Pop the head item (lock held) and give the freed slot to a waiting sender."""
        item = self._buffer.popleft()
        return item, self._slot_for_sender()

    def _recv_or_park(self) -> tuple[T, Waker | None] | _Waiter:
        if len(self._buffer) > self._claimed:
            return self._take()
        if self._closed:
            raise ChannelClosed("channel is closed and drained")
        return self._receivers.park()

    def _take_claimed(self, grant: object) -> T:
        """Take the item a woken receiver holds a claim on."""
        if grant is _CLOSED:
            raise ChannelClosed("channel is closed and drained")
        with self._lock:
            self._claimed -= 1
            item, waker = self._take()
        _wake(waker)
        return item

    def try_recv(self) -> T:
        """Take the next item if one is buffered and unclaimed.

        Raises:
            ChannelEmpty: nothing to take now.
            ChannelClosed: the channel is closed and drained.
        """
        with self._lock:
            if len(self._buffer) > self._claimed:
                item, waker = self._take()
            elif self._closed:
                raise ChannelClosed("channel is closed and drained")
            else:
                raise ChannelEmpty("channel is empty")
        _wake(waker)
        return item

    async def recv(self) -> T:
        """Take the next item, waiting for one.

        Raises:
            ChannelClosed: the channel is closed and drained.
            Cancelled: the task was cancelled while waiting; it took nothing.
        """
        # _recv_or_park inlined: this is the channel's hot path (and __anext__'s).
        lock = self._lock
        lock.acquire()
        try:
            buffer = self._buffer
            if len(buffer) > self._claimed:
                item = buffer.popleft()
                waker = self._slot_for_sender() if self._send_queue else None
                waiter = None
            elif self._closed:
                raise ChannelClosed("channel is closed and drained")
            else:
                waiter = self._receivers.park()
        finally:
            lock.release()
        if waiter is None:
            if waker is not None:
                waker.wake()
            return item
        return self._take_claimed(await waiter)

    def recv_blocking(self, timeout: float | None = None) -> T:
        """``recv`` for a plain thread.

        Raises:
            TimeoutError: nothing arrived within ``timeout`` seconds; nothing was taken.
            ChannelClosed: the channel is closed and drained.
            RuntimeError: called on a zuki worker thread.
        """
        _check_plain_thread("Channel.recv_blocking")
        with self._lock:
            got = self._recv_or_park()
        if isinstance(got, _Waiter):
            return self._take_claimed(got.wait_blocking(timeout))
        _wake(got[1])
        return got[0]

    def __aiter__(self) -> Channel[T]:
        return self

    async def __anext__(self) -> T:
        # recv(), inlined (one coroutine per item), ending the loop instead of raising.
        lock = self._lock
        lock.acquire()
        try:
            buffer = self._buffer
            if len(buffer) > self._claimed:
                item = buffer.popleft()
                waker = self._slot_for_sender() if self._send_queue else None
                waiter = None
            elif self._closed:
                raise StopAsyncIteration
            else:
                waiter = self._receivers.park()
        finally:
            lock.release()
        if waiter is None:
            if waker is not None:
                waker.wake()
            return item
        grant = await waiter
        if grant is _CLOSED:
            raise StopAsyncIteration
        return self._take_claimed(grant)

    # -- closing ------------------------------------------------------------------------

    def close(self) -> None:
        """End the stream; idempotent. Waiting senders get ``ChannelClosed``; waiting
        receivers too (nothing is left for them: they wait only if every buffered item
        is claimed); buffered items stay to be received."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            wakers = self._receivers.unpark_all(_always(_CLOSED))
            wakers += self._senders.unpark_all(_always(_CLOSED))
        _wake_all(wakers)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"<{type(self).__name__} {state} {len(self._buffer)}/{self._capacity}, "
            f"{len(self._senders)} senders and {len(self._receivers)} receivers waiting>"
        )


# --------------------------------------------------------------------------------------
# Oneshot
# --------------------------------------------------------------------------------------


class Oneshot(Generic[T]):
    """A single-value channel: one ``send(value)``, then ``await recv()`` returns it.

    ``send`` never waits and may be called from any thread or task; ``recv`` waits until
    the value is there and may be called more than once (it keeps returning the value).
    ``close()`` without a value makes receivers raise :class:`ChannelClosed`.

    Thread-safety: every method may be called from any thread. A receiver cancelled while
    waiting leaves the queue; the value is never consumed, so nothing can be lost.
    """

    __slots__ = ("_lot", "_value")

    def __init__(self) -> None:
        self._value: Any = _EMPTY
        self._lot = _ParkingLot(threading.Lock())

    def done(self) -> bool:
        """Whether a value was sent or the oneshot was closed."""
        return self._value is not _EMPTY

    def send(self, value: T) -> None:
        """Deliver ``value`` to every receiver, present and future.

        Raises:
            RuntimeError: a value was already sent.
            ChannelClosed: the oneshot was closed.
        """
        with self._lot.lock:
            if self._value is not _EMPTY:
                if self._value is _CLOSED:
                    raise ChannelClosed("send on a closed Oneshot")
                raise RuntimeError("Oneshot.send(): a value was already sent")
            self._value = value
            wakers = self._lot.unpark_all(_always(value))
        _wake_all(wakers)

    def close(self) -> None:
        """Close without a value; receivers raise ``ChannelClosed``. No-op once done."""
        with self._lot.lock:
            if self._value is not _EMPTY:
                return
            self._value = _CLOSED
            wakers = self._lot.unpark_all(_always(_CLOSED))
        _wake_all(wakers)

    @staticmethod
    def _result(value: Any) -> T:
        if value is _CLOSED:
            raise ChannelClosed("Oneshot closed without a value")
        result: T = value
        return result

    def try_recv(self) -> T:
        """The value, if it was sent.

        Raises:
            ChannelEmpty: nothing sent yet.
            ChannelClosed: closed without a value.
        """
        value = self._value
        if value is _EMPTY:
            raise ChannelEmpty("nothing sent yet")
        return self._result(value)

    async def recv(self) -> T:
        """Wait for the value.

        Raises:
            ChannelClosed: closed without a value.
            Cancelled: the task was cancelled while waiting.
        """
        value = self._value
        if value is _EMPTY:
            lot = self._lot
            with lot.lock:
                value = self._value
                waiter = lot.park() if value is _EMPTY else None
            if waiter is not None:
                value = await waiter
        return self._result(value)

    def recv_blocking(self, timeout: float | None = None) -> T:
        """``recv`` for a plain thread.

        Raises:
            TimeoutError: nothing arrived within ``timeout`` seconds.
            ChannelClosed: closed without a value.
            RuntimeError: called on a zuki worker thread.
        """
        _check_plain_thread("Oneshot.recv_blocking")
        lot = self._lot
        with lot.lock:
            value = self._value
            waiter = lot.park() if value is _EMPTY else None
        if waiter is not None:
            value = waiter.wait_blocking(timeout)
        return self._result(value)

    def __repr__(self) -> str:
        value = self._value
        state = "empty" if value is _EMPTY else "closed" if value is _CLOSED else "sent"
        return f"<{type(self).__name__} {state}>"
