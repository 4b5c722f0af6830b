"""The I/O and timer driver: one thread per process that waits in epoll and wakes tasks.

Prior art
=========

tokio's I/O driver (``runtime/io/{driver,scheduled_io,registration}.rs``: edge-triggered
epoll, a per-resource readiness word with a tick, wakers per direction) and its time
driver (``runtime/time``, see ``timer_wheel.py``); mio's ``Waker`` (an eventfd); trio's
``_io_epoll.py`` (one registration per fd, errors become readiness); asyncio's selector
event loop (``selectors``, a self-pipe for ``call_soon_threadsafe``).

The shape chosen: one designated driver thread per process
==========================================================

A daemon thread, ``zuki-reactor``, started on first use, loops: fire the due timers of
the :class:`~zuki.runtime.timer_wheel.TimerWheel`, then block in the poller until the
next deadline, an I/O event, or a wake-up. Everything it does to a task is
``waker.wake()``, which is thread-safe and routes the task to its own executor (a wake
from a thread that is not a worker goes to the global queue and unparks a worker). The
wakes of one turn (the timers it fires, then the events it dispatches) are collected per
work-stealing pool in ``tls.batch`` and handed over at the end of each half of the turn,
before the driver blocks again: one ``push_batch`` and one wake decision per pool
(``Pool.schedule_many``) instead of a lock round trip and a notify per task.

Why this shape, and what was rejected:

* *A parked worker drives I/O* (tokio: the worker that parks takes the driver, if free,
  and waits in ``epoll_wait`` instead of its condvar). It saves one thread hop per event
  (the driver thread's wake, then the worker's unpark), which is the biggest cost on the
  echo path (see ``perf/bench_io.py``). It needs the worker's park to call into the
  reactor, and the worker loop is ``worker_thread.py``'s; :meth:`Reactor.turn` is the
  entry point such a worker would call, so the change is local to the park when it
  comes. Until then a dedicated thread keeps the two decoupled.
* *One driver per executor*. Wakers do not care which executor a task belongs to, so a
  per-executor driver buys no correctness, and it costs a lifecycle: it must stop when
  its executor ends (the executor has no shutdown hook for that), and a socket or timer
  made under one executor would hang if used from a task of another after the first one
  ended. One driver per process is what asyncio has per loop and tokio per runtime (one
  runtime per process is the common case); creating and dropping 1,000 executors starts
  no driver threads at all. When idle the driver blocks with no timeout: it costs no CPU.
* *Polling I/O from the workers every N ticks* (tokio's ``event_interval`` maintenance
  with a zero-timeout ``epoll_wait``): also a change to the worker loop, and a syscall
  per 61 tasks even when no I/O is registered.

Busy workers fire due timers themselves
---------------------------------------

With every core busy, the driver thread is one more runnable thread than there are
cores: the kernel runs it late, and a timer fired by it waits for a time slice (measured:
10,000 sleepers over a second, 2 workers both running tasks that yield every 0.1 ms, p50
lateness 10-20 ms, p99 over 100 ms, all of it before the waker was even called). So a
worker also fires due timers, every ``TIMER_CHECK_INTERVAL`` (8) tasks, from its own loop
(:meth:`Reactor.fire_due_timers`: one float compare against the wheel's next deadline when
nothing is due, a ``TimerWheel.poll`` when something is). The wheel's poll is safe from
several threads at once (each takes the due timers out under its lock), the wakes then
land in the firing worker's own queues, and the driver thread, which may wake up for a
deadline a worker already served, finds nothing due and sleeps again. I/O readiness still
comes from the driver thread only.

Waking the driver
-----------------

An ``eventfd`` (a pipe where there is none) in the poller. It is written when a timer is
inserted before the deadline the driver sleeps until (``TimerWheel``'s ``on_earlier``,
decided under the wheel's lock, so no insert can slip between the driver's look at the
wheel and its sleep) and, on the ``selectors`` backend, when a task changes its interest.
With epoll, registering a file descriptor needs no wake-up: ``epoll_ctl`` from another
thread while one waits in ``epoll_wait`` is supported by the kernel.

Timer precision
---------------

``epoll_wait`` takes whole milliseconds (CPython rounds the timeout up), so a timer would
fire up to 1 ms late. Where ``os.timerfd_create`` exists (Linux, Python 3.13+) the driver
arms a ``timerfd`` at the exact next deadline (``TFD_TIMER_ABSTIME`` on
``CLOCK_MONOTONIC``, the clock of ``time.monotonic``) and waits with no timeout. Measured
on the 2-core development VM: one timer, the driver wakes a median 10-50 us after the
deadline with the timerfd, 0.1-0.9 ms without; 10,000 timers spread over a second,
median 57-100 us (``perf/bench_io.py --quick``, "reactor thread wake-up"). The tail is
the machine's: with other processes on both cores, p99 was 3-7 ms.

What the driver thread cannot do is run the task: a woken task waits for a worker, and
when every worker is busy the wait is the worker's (see ``perf/bench_io.py``, lateness).

Readiness: edge-triggered, optimistic, with a tick (tokio's ``ScheduledIo``)
-----------------------------------------------------------------------------

On Linux each socket is registered once, for its whole life, with ``EPOLLIN | EPOLLOUT |
EPOLLRDHUP | EPOLLET``: no ``epoll_ctl`` per operation. A :class:`Registration` keeps a
readiness mask (``READABLE``, ``WRITABLE``), a ``tick`` counting events, and at most one
waiting waker per direction. The protocol of an operation (``net.py``):

1. read ``tick``; if the direction is marked ready, try the syscall (a new registration
   starts as ready in both directions, so the first attempt costs no wait);
2. on ``EAGAIN`` (or a short read or write, which means the kernel buffer ran dry or
   full), ``clear(direction, tick)``: clear the bit only if no event arrived since step
   1, so an edge that raced the syscall is never lost;
3. if not ready, await :meth:`Registration.ready`: under the registration's lock,
   either the bit is set (an event came) or the task's waker is stored; the driver sets
   bits and takes wakers under the same lock, so the wake-up cannot be lost.

``EPOLLRDHUP`` (the peer's FIN) sets a sticky ``READ_CLOSED`` bit and ``EPOLLERR``/
``EPOLLHUP`` sticky bits for both directions, which ``clear`` leaves alone (tokio's
``READ_CLOSED``): a FIN that arrives with the last data produces one edge, consumed
before the short read that returned the data, and a cleared bit would then wait for an
edge that never comes. The next syscall reports the end or the error, in the task that
makes it. Spurious readiness only costs an ``EAGAIN``, so a stale event for a reused
fd number is harmless.

Elsewhere (``selectors.DefaultSelector``: kqueue on BSD/macOS, then poll, then select)
the same protocol runs level-triggered: a direction is in the selector only while a
waker waits on it, and since selector objects are not thread-safe, every change is made
by the driver thread (tasks queue it and wake the driver). Closing a registration on
that backend hands the socket to the driver, which unregisters it before closing it, so
the fd number cannot be reused while the selector still holds it. The backend can be
forced with ``ZUKI_REACTOR_BACKEND=selectors`` (the tests run both).

Thread-safety
=============

Every public method may be called from any thread. A registration's fields are guarded
by its own lock; the table of registrations is a ``dict`` (atomic per operation on
3.13t) written by the tasks that register and close; the poller is touched by the driver
thread only, except ``epoll_ctl`` on the epoll backend.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any, Final

from zuki.runtime.future import PENDING, Future, Poll, Ready
from zuki.runtime.task import tls
from zuki.runtime.timer_wheel import TimerHandle, TimerWheel, Wakeable

if TYPE_CHECKING:
    from zuki.runtime.future import Context
    from zuki.runtime.waker import Waker

__all__ = [
    "BOTH",
    "READABLE",
    "READ_CLOSED",
    "WRITABLE",
    "WRITE_CLOSED",
    "Reactor",
    "Registration",
    "default_reactor",
]

LOGGER = logging.getLogger("zuki")

READABLE: Final = 1
"""Readiness bit: a read (recv, accept) may make progress."""
WRITABLE: Final = 2
"""Readiness bit: a write (send, a finished connect) may make progress."""
BOTH: Final = READABLE | WRITABLE
"""Both readiness bits."""
READ_CLOSED: Final = 4
"""Sticky: the peer ended its sending side (``EPOLLRDHUP``), or the socket failed."""
WRITE_CLOSED: Final = 8
"""Sticky: the connection failed or hung up (``EPOLLHUP``/``EPOLLERR``)."""
_CLOSED_SHIFT: Final = 2  # READABLE << 2 == READ_CLOSED, WRITABLE << 2 == WRITE_CLOSED

BACKEND_ENV: Final = "ZUKI_REACTOR_BACKEND"
_HAS_EPOLL: Final = hasattr(select, "epoll")
# os.timerfd_* are Python 3.13+ (Linux); looked up dynamically so 3.11 type-checks.
_timerfd_create: Callable[..., int] | None = getattr(os, "timerfd_create", None)
_timerfd_settime: Callable[..., object] | None = getattr(os, "timerfd_settime", None)
_TFD_FLAGS: Final[int] = getattr(os, "TFD_NONBLOCK", 0) | getattr(os, "TFD_CLOEXEC", 0)
_TFD_TIMER_ABSTIME: Final[int] = getattr(os, "TFD_TIMER_ABSTIME", 1)


class Registration:
    """One file descriptor in a :class:`Reactor`: readiness bits and waiting wakers.

    Used by one reading task and one writing task at a time (a second task waiting in
    the same direction is a ``RuntimeError``). ``close`` may come from any thread: it
    wakes the waiters, whose next :meth:`ready` raises.

    Thread-safety: ``_ready``, ``_tick``, ``_wakers`` and ``_closed`` are written under
    ``_lock``; ``tick`` and ``is_ready`` read them without it, as hints (see the module
    docstring for why a stale hint is safe).
    """

    __slots__ = ("_closed", "_lock", "_reactor", "_ready", "_tick", "_wakers", "fd", "what")

    def __init__(self, reactor: Reactor, fd: int, what: str, initial: int = BOTH) -> None:
        self.fd: Final = fd
        self.what = what  # for error messages: "TcpStream 127.0.0.1:5000 -> ..."
        self._reactor: Final = reactor
        self._lock: Final = threading.Lock()
        self._ready = initial
        self._tick = 0
        self._wakers: list[Waker | None] = [None, None, None]  # indexed by direction bit
        self._closed = False

    @property
    def tick(self) -> int:
        """The event count: read it before a syscall, pass it to :meth:`clear` after."""
        return self._tick

    def is_ready(self, direction: int) -> bool:
        """A hint: whether ``direction`` is marked ready (the syscall may still fail)."""
        return bool(self._ready & (direction | direction << _CLOSED_SHIFT))

    @property
    def closed(self) -> bool:
        """Whether :meth:`Reactor.close_registration` was called."""
        return self._closed

    def clear(self, direction: int, tick: int) -> None:
        """Mark ``direction`` not ready, unless an event arrived since ``tick`` was read.

        The sticky ``READ_CLOSED``/``WRITE_CLOSED`` bits stay: an end of stream that
        arrived together with the data a short read returned has no later edge.
        """
        with self._lock:
            if self._tick == tick:
                self._ready &= ~direction

    def ready(self, direction: int) -> ReadyFuture:
        """An awaitable that completes when ``direction`` is marked ready.

        Cancelling the awaiting task (or dropping the coroutine) removes its waker.

        Raises (at the ``await``):
            OSError: the registration was closed (``EBADF``, naming ``what``).
            RuntimeError: another task is already waiting in this direction.
        """
        return ReadyFuture(self, direction)

    def _poll_ready(self, direction: int, waker: Waker, mine: Waker | None) -> Waker | None:
        """Ready: ``None``. Not ready: the waker now stored for ``direction`` (``mine``,
        the one this waiter stored before, if it still wakes the right task)."""
        wakers = self._wakers
        with self._lock:
            if self._closed:
                raise OSError(9, f"{self.what} is closed")  # EBADF
            current = wakers[direction]
            if self._ready & (direction | direction << _CLOSED_SHIFT):
                if current is mine:
                    wakers[direction] = None
                return None
            if current is None:
                mine = wakers[direction] = waker.clone()
            elif current is mine or current.will_wake(waker):
                if not current.will_wake(waker):  # the future moved to another task
                    wakers[direction] = waker.clone()
                return wakers[direction]
            else:
                raise RuntimeError(
                    f"two tasks wait to {'read from' if direction == READABLE else 'write to'}"
                    f" {self.what} at once; use one task per direction"
                )
        self._reactor._interest_changed(self)
        return mine

    def _forget(self, direction: int, mine: Waker | None) -> None:
        """Drop the waker ``mine`` if it still waits here (its task went away)."""
        if mine is None:
            return
        wakers = self._wakers
        with self._lock:
            had = wakers[direction] is mine
            if had:
                wakers[direction] = None
        if had:
            self._reactor._interest_changed(self)

    def _interest(self) -> int:
        """The directions a task waits on (level-triggered backend). Lock not needed:
        called by the driver, which re-reads after every change it is told about."""
        wakers = self._wakers
        return (READABLE if wakers[READABLE] is not None else 0) | (
            WRITABLE if wakers[WRITABLE] is not None else 0
        )

    def _on_event(self, readiness: int) -> None:
        """Driver thread: an event arrived; set bits and wake who waits for them."""
        wakers = self._wakers
        with self._lock:
            self._ready |= readiness
            self._tick += 1
            reader = wakers[READABLE] if readiness & (READABLE | READ_CLOSED) else None
            writer = wakers[WRITABLE] if readiness & (WRITABLE | WRITE_CLOSED) else None
            if reader is not None:
                wakers[READABLE] = None
            if writer is not None:
                wakers[WRITABLE] = None
        if reader is not None:
            reader.wake()
        if writer is not None:
            writer.wake()

    def _close(self) -> list[Waker]:
        wakers = self._wakers
        with self._lock:
            self._closed = True
            woken = [w for w in wakers if w is not None]
            wakers[READABLE] = wakers[WRITABLE] = None
        return woken

    def waiting(self) -> int:
        """How many directions have a waiting waker (0, 1 or 2): for leak checks."""
        return sum(w is not None for w in self._wakers)

    def __repr__(self) -> str:
        return f"<Registration fd={self.fd} {self.what} ready={self._ready} tick={self._tick}>"


class ReadyFuture(Future[None]):
    """The leaf future of :meth:`Registration.ready`."""

    __slots__ = ("_direction", "_mine", "_reg")

    def __init__(self, reg: Registration, direction: int) -> None:
        self._reg = reg
        self._direction = direction
        self._mine: Waker | None = None  # the waker this waiter stored, if any

    def poll(self, cx: Context) -> Poll[None]:
        self._mine = self._reg._poll_ready(self._direction, cx.waker, self._mine)
        return PENDING if self._mine is not None else Ready(None)

    def __await__(self) -> Generator[Any, Any, None]:
        try:
            yield self
        except BaseException:
            # Cancelled (or the coroutine closed) while waiting: leave no waker behind.
            self._reg._forget(self._direction, self._mine)
            raise


# --------------------------------------------------------------------------------------
# pollers
# --------------------------------------------------------------------------------------


class _EpollPoller:
    """Edge-triggered epoll: one ``epoll_ctl`` per socket lifetime, from any thread."""

    edge_triggered: Final = True

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._in = select.EPOLLIN | select.EPOLLPRI
        self._out = select.EPOLLOUT
        self._rdhup = select.EPOLLRDHUP
        self._err = select.EPOLLERR | select.EPOLLHUP

    def add_internal(self, fd: int) -> None:
        self._epoll.register(fd, select.EPOLLIN)

    def add(self, fd: int) -> None:
        self._epoll.register(
            fd, select.EPOLLIN | select.EPOLLOUT | select.EPOLLRDHUP | select.EPOLLET
        )

    def remove(self, fd: int) -> None:
        with contextlib.suppress(OSError):
            self._epoll.unregister(fd)

    def wait(self, timeout: float | None) -> list[tuple[int, int]]:
        try:
            events = self._epoll.poll(-1 if timeout is None else timeout)
        except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for safety
            return []
        out = []
        for fd, mask in events:
            readiness = 0
            if mask & self._in:
                readiness |= READABLE
            if mask & self._out:
                readiness |= WRITABLE
            if mask & self._rdhup:
                readiness |= READABLE | READ_CLOSED
            if mask & self._err:
                readiness = BOTH | READ_CLOSED | WRITE_CLOSED
            out.append((fd, readiness))
        return out

    def close(self) -> None:
        self._epoll.close()


class _SelectorPoller:
    """Level-triggered ``selectors.DefaultSelector``; touched by the driver thread only."""

    edge_triggered: Final = False

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._masks: dict[int, int] = {}

    def add_internal(self, fd: int) -> None:
        self._selector.register(fd, selectors.EVENT_READ)

    def add(self, fd: int) -> None:
        """Nothing to do: a direction enters the selector when a task waits on it."""

    def set_interest(self, fd: int, interest: int) -> None:
        events = (selectors.EVENT_READ if interest & READABLE else 0) | (
            selectors.EVENT_WRITE if interest & WRITABLE else 0
        )
        old = self._masks.get(fd, 0)
        if events == old:
            return
        if not events:
            self.remove(fd)
        elif not old:
            self._selector.register(fd, events)
        else:
            self._selector.modify(fd, events)
        if events:
            self._masks[fd] = events

    def remove(self, fd: int) -> None:
        if self._masks.pop(fd, 0):
            self._selector.unregister(fd)

    def wait(self, timeout: float | None) -> list[tuple[int, int]]:
        out = []
        for key, mask in self._selector.select(timeout):
            readiness = (READABLE if mask & selectors.EVENT_READ else 0) | (
                WRITABLE if mask & selectors.EVENT_WRITE else 0
            )
            out.append((key.fd, readiness))
        return out

    def close(self) -> None:
        self._selector.close()


class _WakeupFd:
    """An eventfd (or a non-blocking pipe) that makes the poller return."""

    def __init__(self) -> None:
        if hasattr(os, "eventfd"):
            self.read_fd = self._write_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        else:  # pragma: no cover - non-Linux
            self.read_fd, self._write_fd = os.pipe()
            os.set_blocking(self.read_fd, False)
            os.set_blocking(self._write_fd, False)

    def notify(self) -> None:
        # Not contextlib.suppress: finalizers may call this (discard_timer), and a context
        # manager's methods are entered from C, which a finalizer may have no room for.
        try:  # noqa: SIM105
            os.write(self._write_fd, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:  # full (already pending) or closed
            pass

    def drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self.read_fd, 4096)

    def close(self) -> None:
        os.close(self.read_fd)
        if self._write_fd != self.read_fd:  # pragma: no cover - non-Linux (a pipe pair)
            os.close(self._write_fd)


# --------------------------------------------------------------------------------------
# the reactor
# --------------------------------------------------------------------------------------


class Reactor:
    """Timers and I/O readiness, driven by one thread (see the module docstring).

    ``backend`` is ``"epoll"``, ``"selectors"`` or ``None`` (epoll where the platform has
    it, unless ``ZUKI_REACTOR_BACKEND`` says otherwise). The driver thread starts at the
    first timer or registration. Use :func:`default_reactor` (what ``zuki.sleep`` and
    ``zuki.net`` use); separate reactors are for tests.

    Thread-safety: every method may be called from any thread.
    """

    def __init__(self, *, backend: str | None = None, name: str = "zuki-reactor") -> None:
        if backend is None:
            backend = os.environ.get(BACKEND_ENV) or ("epoll" if _HAS_EPOLL else "selectors")
        if backend == "epoll" and _HAS_EPOLL:
            self._poller: _EpollPoller | _SelectorPoller = _EpollPoller()
        elif backend == "selectors":
            self._poller = _SelectorPoller()
        else:
            raise ValueError(f"reactor backend must be 'epoll' or 'selectors', not {backend!r}")
        self.backend: Final = backend
        self._name = name
        self._wakeup = _WakeupFd()
        self._poller.add_internal(self._wakeup.read_fd)
        self._timer_fd = -1
        if _timerfd_create is not None and _timerfd_settime is not None:
            self._timer_fd = _timerfd_create(time.CLOCK_MONOTONIC, flags=_TFD_FLAGS)
            self._poller.add_internal(self._timer_fd)
        self._wheel: Final = TimerWheel(time.monotonic, on_earlier=self._wakeup.notify)
        self._registrations: dict[int, Registration] = {}
        # Level-triggered backend only: registrations whose interest changed, and
        # sockets to unregister and close, both applied by the driver thread.
        self._changes_lock: Final = threading.Lock()
        self._changed: set[Registration] = set()
        # appended without a lock: close_registration may run in a finalizer
        self._to_close: deque[tuple[int, socket.socket | None]] = deque()
        self._start_lock: Final = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closing = False

    # -- timers -----------------------------------------------------------------------

    @property
    def clock(self) -> Callable[[], float]:
        """The timers' clock: ``time.monotonic``."""
        return time.monotonic

    def add_timer(self, deadline: float, waker: Wakeable) -> TimerHandle:
        """Wake ``waker`` once ``time.monotonic()`` reaches ``deadline``. O(1)."""
        if self._thread is None:
            self._start()
        return self._wheel.insert(deadline, waker)

    def cancel_timer(self, handle: TimerHandle) -> bool:
        """Cancel a timer; a no-op (``False``) if it fired or was cancelled already."""
        return self._wheel.cancel(handle)

    def discard_timer(self, handle: TimerHandle) -> None:
        """Cancel a timer from a finalizer: never blocks, applied by the driver shortly
        (see ``TimerWheel.discard``)."""
        self._wheel.discard(handle)
        self._wakeup.notify()

    def fire_due_timers(self) -> bool:
        """Fire the timers that are due, from the calling thread (a worker between tasks;
        see "Busy workers fire due timers themselves"). Returns whether any was due.

        A waker that raises is logged, as on the driver thread; the caller goes on.
        """
        wheel = self._wheel
        now = time.monotonic()
        if now < wheel._reported:  # racy read: at worst one check late or one poll early
            return False
        try:
            wheel.poll(now)
        except Exception:
            LOGGER.exception(
                "error in a timer waker (fired by %s)", threading.current_thread().name
            )
        return True

    def pending_timers(self) -> int:
        """How many timers are pending."""
        return len(self._wheel)

    # -- I/O ---------------------------------------------------------------------------

    def register(self, fd: int, what: str, initial: int = BOTH) -> Registration:
        """Start watching ``fd`` (a non-blocking socket's); ``what`` names it in errors.

        ``initial`` is the readiness assumed before the first event: both directions
        (try the syscall first), or ``READABLE`` only for a socket still connecting.

        Raises:
            OSError: the poller refused the descriptor.
        """
        if self._thread is None:
            self._start()
        reg = Registration(self, fd, what, initial)
        self._registrations[fd] = reg
        try:
            self._poller.add(fd)
        except BaseException:
            self._registrations.pop(fd, None)
            raise
        return reg

    def close_registration(self, reg: Registration, sock: socket.socket | None = None) -> None:
        """Stop watching ``reg.fd``, wake its waiters (their await raises ``OSError``), and
        close ``sock`` (the socket behind it) once it is out of the poller. Idempotent.

        Takes no lock shared with other registrations, so a finalizer may call it (the
        registration's own lock cannot be held by anyone once its owner is garbage).
        """
        if reg._closed:
            if sock is not None:
                sock.close()
            return
        woken = reg._close()
        if self._registrations.get(reg.fd) is reg:
            self._registrations.pop(reg.fd, None)
        if isinstance(self._poller, _EpollPoller) or self._thread is None:
            self._poller.remove(reg.fd)
            if sock is not None:
                sock.close()
        else:
            self._to_close.append((reg.fd, sock))
            self._wakeup.notify()
        for waker in woken:
            waker.wake()

    def _interest_changed(self, reg: Registration) -> None:
        if self._poller.edge_triggered:
            return
        with self._changes_lock:
            self._changed.add(reg)
        self._wakeup.notify()

    def registrations(self) -> int:
        """How many descriptors are registered (for leak checks)."""
        return len(self._registrations)

    def waiting(self) -> int:
        """How many (registration, direction) pairs have a task waiting (for leak checks)."""
        return sum(reg.waiting() for reg in list(self._registrations.values()))

    # -- the driver ---------------------------------------------------------------------

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is not None:
                return
            if self._closing:
                raise RuntimeError(f"{self._name} is closed")
            thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            thread.start()
            self._thread = thread

    def wakeup(self) -> None:
        """Make the driver return from its wait now (thread-safe, cheap)."""
        self._wakeup.notify()

    def _run(self) -> None:
        armed: float | None = None
        while not self._closing:
            try:
                armed = self.turn(armed)
            except Exception:  # a waker failed: report it, the driver goes on
                LOGGER.exception("error in %s", self._name)
        self._release()

    def _flush(self, batch: dict[Any, list[Any]]) -> None:
        """Hand the wakes collected in ``batch`` to their pools, one step per pool."""
        tls.batch = None
        if not batch:
            return
        items = list(batch.items())
        batch.clear()
        for scheduler, tasks in items:
            try:
                scheduler.schedule_many(tasks)
            except Exception:
                LOGGER.exception("error in %s", self._name)

    def turn(self, armed: float | None = None) -> float | None:
        """Fire due timers, wait once for events (up to the next deadline), dispatch them.

        ``armed`` is the deadline the timerfd is armed for (returned by the previous
        turn). Called by the driver thread only.
        """
        now = time.monotonic()
        batch: dict[Any, list[Any]] = {}
        tls.batch = batch
        try:
            wait = self._wheel.poll(now)
        finally:
            self._flush(batch)
        if not self._poller.edge_triggered:
            self._apply_changes()
        timeout = wait
        if wait and self._timer_fd >= 0:
            deadline = now + wait
            if deadline != armed:
                assert _timerfd_settime is not None
                _timerfd_settime(self._timer_fd, flags=_TFD_TIMER_ABSTIME, initial=deadline)
                armed = deadline
            timeout = None
        events = self._poller.wait(timeout)
        tls.batch = batch
        try:
            if self._dispatch(events):
                armed = None  # the timerfd fired: it is disarmed
        finally:
            self._flush(batch)
        return armed

    def _dispatch(self, events: list[tuple[int, int]]) -> bool:
        """Deliver ``events``; ``True`` if the timerfd was among them."""
        timer_fired = False
        registrations = self._registrations
        for fd, readiness in events:
            reg = registrations.get(fd)
            if reg is not None:
                reg._on_event(readiness)
                if not self._poller.edge_triggered:
                    with self._changes_lock:
                        self._changed.add(reg)
            elif fd == self._wakeup.read_fd:
                self._wakeup.drain()
            elif fd == self._timer_fd:
                with contextlib.suppress(BlockingIOError):
                    os.read(self._timer_fd, 8)
                timer_fired = True
        return timer_fired

    def _apply_changes(self) -> None:
        poller = self._poller
        assert isinstance(poller, _SelectorPoller)
        with self._changes_lock:
            changed, self._changed = self._changed, set()
        for reg in changed:
            if not reg._closed:
                poller.set_interest(reg.fd, reg._interest())
        to_close = self._to_close
        while to_close:
            fd, sock = to_close.popleft()
            poller.remove(fd)
            if sock is not None:
                sock.close()

    # -- lifecycle ----------------------------------------------------------------------

    def close(self, timeout: float | None = 10.0) -> None:
        """Stop the driver and release its descriptors (not for the default reactor)."""
        with self._start_lock:
            self._closing = True
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            self._wakeup.notify()
            thread.join(timeout)
        elif thread is None:
            self._release()

    def _release(self) -> None:
        for reg in list(self._registrations.values()):
            for waker in reg._close():
                waker.wake()
        self._registrations.clear()
        while self._to_close:
            _fd, sock = self._to_close.popleft()
            if sock is not None:
                sock.close()
        self._poller.close()
        self._wakeup.close()
        if self._timer_fd >= 0:
            os.close(self._timer_fd)
            self._timer_fd = -1

    def __repr__(self) -> str:
        return (
            f"<Reactor {self._name} backend={self.backend} timers={len(self._wheel)} "
            f"registrations={len(self._registrations)}>"
        )


# --------------------------------------------------------------------------------------
# the process-wide reactor
# --------------------------------------------------------------------------------------

_default: Reactor | None = None
_default_lock = threading.Lock()


def default_reactor() -> Reactor:
    """The process's reactor, made on first use (what ``zuki.sleep`` and ``zuki.net`` use)."""
    reactor = _default
    if reactor is not None:
        return reactor
    return _make_default()


def _make_default() -> Reactor:
    global _default
    with _default_lock:
        if _default is None:
            _default = Reactor()
        return _default


@contextlib.contextmanager
def using_reactor(reactor: Reactor) -> Iterator[Reactor]:
    """Make ``reactor`` the default inside the block (tests: run on another backend).

    Not thread-safe against other users of the default reactor: a test helper.
    """
    global _default
    with _default_lock:
        previous, _default = _default, reactor
    try:
        yield reactor
    finally:
        with _default_lock:
            _default = previous


def _after_fork_in_child() -> None:
    # The driver thread does not exist in the child, and the epoll instance is shared
    # with the parent: forget the parent's reactor (its descriptors leak in the child,
    # which is what asyncio does with its loop too) and make a new one on first use.
    global _default
    _default = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
