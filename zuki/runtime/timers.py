"""``zuki.sleep``, ``zuki.sleep_until``, ``zuki.timeout`` and ``zuki.timeout_at``.

Prior art: tokio's ``time::sleep``/``timeout`` (a leaf future on the timer wheel),
asyncio's ``asyncio.sleep`` and ``asyncio.timeout`` (3.11: cancel the task at the
deadline, turn the cancellation into ``TimeoutError`` at the boundary), trio's cancel
scopes (``move_on_after``/``fail_after``).

Sleeping
========

``sleep(seconds)`` is a leaf :class:`~zuki.Future` on the process's reactor
(``reactor.py``): its first poll inserts a timer with the task's waker, later polls
compare the clock with the deadline (so a spurious wake-up never ends a sleep early). A
sleep whose deadline has passed at creation (``sleep(0)``, a negative delay, a past
``sleep_until``) is ``zuki.yield_now()``: it lets every other ready task run, and never
touches the wheel. A sleeping task that is cancelled removes its timer at once (the
``await`` sees ``Cancelled`` go through it), so ``timeout(1): await sleep(3600)`` leaves
nothing behind for an hour; a sleep spawned as a task of its own removes it when the
cancelled task gives it up (``Future.drop``). There is no ``__del__``: on 3.13t the
finalizers of objects released by another thread run nested, and 20,000 cancelled sleeps
freed at once overflowed the recursion limit. A ``Sleep`` polled by hand and then
abandoned keeps its timer until the deadline, which then wakes its last waker once.

Timeouts: how the body is cancelled
===================================

The runtime cancels a started coroutine task by a request (``JoinHandle.cancel()``):
the task is woken and its next step throws ``zuki.Cancelled`` into the coroutine at the
``await`` where it is suspended, whatever it waits for (a sleep, a socket, a
``JoinHandle``, a lock). A coroutine that catches it goes on running; the request is
consumed by that one throw. That is exactly what a timeout needs, so ``timeout`` uses it:

* ``__aenter__`` finds the task it runs in (a one-shot leaf future reads it from the
  waker the task polls it with: ``cx.waker.data.task``) and inserts a timer;
* the timer's wake runs in the driver thread: under the scope's lock, if the body is
  still inside, the scope becomes *fired* and ``task.cancel()`` is requested;
* ``__aexit__``, under the same lock, marks the scope *exited* (a later timer wake does
  nothing) and cancels the timer. If the scope had fired and ``Cancelled`` came out of
  the body, it raises ``TimeoutError`` from it. If the scope fired but the body ended
  without that ``Cancelled`` (it finished between the timer and its next ``await``, or
  swallowed the exception, or raised something else), the request may still be pending,
  and would hit the first ``await`` after the block: ``__aexit__`` then yields once and
  absorbs the ``Cancelled`` if it comes.

The rejected alternative was a per-task deadline checked by the leaf futures themselves
(every sleep, socket wait and lock wait would look up the innermost scope): it cannot
interrupt waits that zuki's own leaf futures do not implement (a ``JoinHandle``, a
user's ``Future``) and it costs a lookup on every poll of every leaf.

Limits: a cancellation from elsewhere (``handle.cancel()``) that arrives while the
deadline fires is one request, so it surfaces as ``TimeoutError`` from the innermost
fired scope (asyncio before 3.11 had the same merge). The body must be a coroutine task's
(``spawn(coro)``, ``zuki.run``): a coroutine wrapped by ``Future.from_coroutine`` and
spawned as a future task would be cancelled as a whole, without the throw.

Thread-safety: a scope belongs to the task that enters it; its timer wake comes from the
reactor's thread, and the two meet only under the scope's lock.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Awaitable, Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from zuki.runtime.errors import Cancelled
from zuki.runtime.future import PENDING, Future, Poll, Ready, yield_now
from zuki.runtime.reactor import Reactor, default_reactor

if TYPE_CHECKING:
    from zuki.runtime.future import Context
    from zuki.runtime.timer_wheel import TimerHandle
    from zuki.runtime.waker import Waker

__all__ = ["Sleep", "Timeout", "sleep", "sleep_until", "timeout", "timeout_at"]


def _check(value: float, what: str) -> float:
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{what} must be a number, not NaN")
    return value


class Sleep(Future[None]):
    """The leaf future of :func:`sleep` and :func:`sleep_until`.

    Polled by one task at a time; awaiting it again after it completed returns at once.
    """

    __slots__ = ("_handle", "_reactor", "_waker", "deadline")

    def __init__(self, deadline: float, reactor: Reactor) -> None:
        self.deadline: Final = deadline
        self._reactor = reactor
        self._handle: TimerHandle | None = None
        self._waker: Waker | None = None

    def poll(self, cx: Context) -> Poll[None]:
        reactor = self._reactor
        if reactor.clock() >= self.deadline:
            return Ready(None)
        handle = self._handle
        if handle is None or not handle.pending:
            # First poll. (A timer that fired has a deadline <= now: the driver's clock is
            # this clock. Re-arming a fired one is only a guard against a broken clock.)
            self._waker = waker = cx.waker.clone()
            self._handle = reactor.add_timer(self.deadline, waker)
        elif self._waker is not None and not self._waker.will_wake(cx.waker):
            # polled by another waker (a future moved between tasks): wake that one
            self._waker = handle.waker = cx.waker.clone()
        return PENDING

    def __await__(self) -> Generator[Any, Any, None]:
        try:
            yield self
        finally:
            handle = self._handle
            if handle is not None and handle.pending:
                self._reactor.cancel_timer(handle)

    def drop(self) -> None:
        """The task polling this sleep was cancelled: remove its timer now."""
        handle = self._handle
        if handle is not None and handle.pending:
            self._reactor.cancel_timer(handle)
        self._waker = None

    def __repr__(self) -> str:
        return f"<zuki.sleep until {self.deadline:.6f}>"


def sleep_until(deadline: float) -> Awaitable[None]:
    """``await zuki.sleep_until(deadline)``: suspend until ``time.monotonic() >= deadline``.

    A deadline already passed yields once (``zuki.yield_now()``). ``math.inf`` sleeps
    until cancelled.

    Raises:
        ValueError: ``deadline`` is NaN.
    """
    deadline = _check(deadline, "deadline")
    reactor = default_reactor()
    if reactor.clock() >= deadline:
        return yield_now()
    return Sleep(deadline, reactor)


def sleep(seconds: float) -> Awaitable[None]:
    """``await zuki.sleep(seconds)``: suspend the task for at least ``seconds``.

    The task is woken by the reactor's thread shortly after the deadline (tens of
    microseconds on Linux, plus the time to get a worker). ``sleep(0)`` (or less) yields
    once, like ``zuki.yield_now()``.

    Raises:
        ValueError: ``seconds`` is NaN.
    """
    seconds = _check(seconds, "seconds")
    if seconds <= 0.0:
        return yield_now()
    reactor = default_reactor()
    return Sleep(reactor.clock() + seconds, reactor)


class _CurrentTask(Future[Any]):
    """Ready at once with the task that polls it (read from the waker's data)."""

    __slots__ = ()

    def poll(self, cx: Context) -> Poll[Any]:
        task = getattr(cx.waker.data, "task", None)
        if task is None or not hasattr(task, "cancel"):
            raise RuntimeError(
                "zuki.timeout() must be used inside a task running on a zuki executor"
            )
        return Ready(task)


_CURRENT_TASK: Final = _CurrentTask()

_ARMED: Final = 0
_FIRED: Final = 1
_EXITED: Final = 2


class Timeout:
    """The async context manager of :func:`timeout` and :func:`timeout_at`.

    ``deadline`` is the ``time.monotonic()`` instant; ``expired`` tells, after the block,
    whether the deadline cancelled it. A scope is entered once.
    """

    __slots__ = ("_expired", "_handle", "_lock", "_reactor", "_state", "_task", "deadline")

    def __init__(self, deadline: float) -> None:
        self.deadline: Final = deadline
        self._reactor = default_reactor()
        self._lock = threading.Lock()
        self._state = _ARMED  # guarded by _lock
        self._expired = False  # written under _lock, with _state = _FIRED
        self._task: Any = None
        self._handle: TimerHandle | None = None

    @property
    def expired(self) -> bool:
        """Whether the deadline passed while the body ran (and so cancelled it)."""
        return self._expired

    async def __aenter__(self) -> Timeout:
        if self._task is not None:
            raise RuntimeError("a zuki.timeout() scope can be entered only once")
        self._task = await _CURRENT_TASK
        if math.isinf(self.deadline) and self.deadline > 0:
            return self  # no deadline: nothing to arm
        self._handle = self._reactor.add_timer(self.deadline, self)
        return self

    def wake(self) -> None:
        """The timer fired (reactor thread): cancel the body if it is still running."""
        with self._lock:
            if self._state != _ARMED:
                return
            self._state = _FIRED
            self._expired = True
            self._task.cancel()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        with self._lock:
            state = self._state
            self._state = _EXITED
        if state == _ARMED:
            if self._handle is not None:
                self._reactor.cancel_timer(self._handle)
            return False
        if isinstance(exc, Cancelled):
            raise TimeoutError(f"the deadline of {self!r} passed") from exc
        # Fired, but the body did not end with our Cancelled: the request may be pending.
        with contextlib.suppress(Cancelled):
            await yield_now()
        return False

    def __repr__(self) -> str:
        return f"<zuki.timeout deadline={self.deadline:.6f}>"


def timeout_at(deadline: float) -> Timeout:
    """``async with zuki.timeout_at(deadline):`` cancel the body at ``deadline``.

    ``deadline`` is a ``time.monotonic()`` instant. If the body is still running then,
    ``zuki.Cancelled`` is thrown into it where it waits, and the ``async with`` raises
    ``TimeoutError`` (chained from the ``Cancelled``). See the module docstring for how,
    and for the limits.

    Raises:
        ValueError: ``deadline`` is NaN.
        TimeoutError: (at the end of the block) the deadline cancelled the body.
        RuntimeError: (on entry) not inside a zuki task.
    """
    return Timeout(_check(deadline, "deadline"))


def timeout(seconds: float) -> Timeout:
    """``async with zuki.timeout(seconds):`` cancel the body after ``seconds``.

    The deadline is fixed when ``timeout()`` is called. See :func:`timeout_at`.

    Raises:
        ValueError: ``seconds`` is NaN.
    """
    seconds = _check(seconds, "seconds")
    return Timeout(default_reactor().clock() + seconds)
