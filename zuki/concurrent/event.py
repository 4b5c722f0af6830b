"""Event: park a thread until another thread notifies it (zap's one-token futex event).

Prior art: kprotty's zap thread pool, ``Event`` in ``src/thread_pool.zig`` (lines 398-483;
see ``research/scheduler.md`` §2.6 and the end of §8.4); tokio's ``park_condvar``, whose
token semantics are the same.

The protocol
============

The state is one atomic word. Its low two bits are the zap state:

* ``EMPTY`` (0): no token, nobody asleep;
* ``WAITING`` (1): some thread is, or may be, asleep on the futex;
* ``NOTIFIED`` (2): one token is waiting to be taken;
* ``SHUTDOWN`` (3): sticky; every ``wait`` returns at once.

Bits 2-30 count ``notify_all`` broadcasts (an epoch, mod 2**29), so the word stays a
positive 32-bit value, the futex word (the low half of the 64-bit cell, little-endian).

* ``wait``: if ``SHUTDOWN``, return. If ``NOTIFIED``, take the token with a CAS to
  ``acquire_with`` and return. Otherwise CAS ``EMPTY`` to ``WAITING`` and sleep in
  ``futex(FUTEX_WAIT_PRIVATE, word)``: the kernel compares the word atomically with the
  value the waiter last saw, so a notify between the check and the sleep is not lost (the
  sleep returns at once with ``EAGAIN``). After any return from the futex, set
  ``acquire_with = WAITING``: other sleepers may still be on the futex, so the word must
  keep saying so and the next ``notify`` must still issue a wake. ``EINTR`` and spurious
  wake-ups loop; a timeout recomputes the remaining time from a ``time.monotonic``
  deadline and passes a relative ``timespec`` (``FUTEX_WAIT`` measures it on
  ``CLOCK_MONOTONIC``). A waiter that sees the epoch move past the one it started with
  returns ``True`` (it was waiting when ``notify_all`` happened).
* ``notify``: set the low bits to ``NOTIFIED`` with a CAS (a release RMW even when the
  token is already there, so the waiter that takes it synchronizes with every
  notifier); ``futex_wake(1)`` only if the old state was ``WAITING``. There is one token:
  notifies before a wait are not lost, but do not accumulate.
* ``notify_all``: bump the epoch, leave the token, and wake every sleeper.
* ``shutdown``: ``fetch_or(SHUTDOWN)`` and wake every sleeper.

``notify_all`` and ``shutdown`` wake unconditionally (one syscall), unlike zap's
``wake(SHUTDOWN, maxInt)`` which wakes only from ``WAITING``: the word can read
``EMPTY`` or ``NOTIFIED`` while a thread still sleeps (a woken waiter has not yet put
``WAITING`` back), and a broadcast must reach that thread too; a single ``notify`` needs
no such care, because the awake thread will take its token.

Blocking detaches: the futex call goes through ``ctypes.CDLL`` (not ``PyDLL``), which
releases the GIL or, on 3.13t, detaches the thread state, so a parked thread does not stall
the stop-the-world pauses of the garbage collector.

The portable backend (non-Linux, an unknown ``SYS_futex`` number, libatomic missing, or
``ZUKI_EVENT=portable``) keeps the same semantics with a ``threading.Condition``.
``Event(backend="futex" | "portable")`` picks one; ``EVENT_BACKEND`` is the default.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import sys
import threading
import time
from collections.abc import Callable
from typing import Final

from zuki.concurrent import atomics

__all__ = ["EMPTY", "EVENT_BACKEND", "NOTIFIED", "SHUTDOWN", "WAITING", "Event"]

EMPTY: Final = 0
WAITING: Final = 1
NOTIFIED: Final = 2
SHUTDOWN: Final = 3

_STATE_MASK: Final = 3
_EPOCH_ONE: Final = 4
_EPOCH_MASK: Final = 0x7FFFFFFC  # bits 2-30: the word stays a positive 32-bit int

_SYS_FUTEX: Final[dict[str, int]] = {
    "x86_64": 202,
    "amd64": 202,
    "aarch64": 98,
    "arm64": 98,
    "riscv64": 98,
    "loongarch64": 98,
    "ppc64le": 221,
    "ppc64": 221,
    "s390x": 238,
    "i386": 240,
    "i686": 240,
    "armv7l": 240,
}
_FUTEX_WAIT_PRIVATE: Final = 0 | 128
_FUTEX_WAKE_PRIVATE: Final = 1 | 128
_INT_MAX: Final = 0x7FFFFFFF


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _load_futex() -> Callable[..., int] | None:
    """``syscall`` from libc, prototyped once at import; None where futex is unavailable."""
    if not sys.platform.startswith("linux") or atomics.BACKEND != "libatomic":
        return None
    number = _SYS_FUTEX.get(platform.machine().lower())
    if number is None:
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # CDLL: the call detaches while blocked
        fn = libc.syscall
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_long
    fn.argtypes = [
        ctypes.c_long,  # SYS_futex
        ctypes.c_void_p,  # uaddr
        ctypes.c_int,  # futex_op
        ctypes.c_int,  # val
        ctypes.c_void_p,  # timeout (relative, CLOCK_MONOTONIC) or NULL
        ctypes.c_void_p,  # uaddr2 (unused)
        ctypes.c_int,  # val3 (unused)
    ]
    return fn


_syscall = _load_futex()
_SYS_FUTEX_NR: Final = _SYS_FUTEX.get(platform.machine().lower(), -1)


def _default_backend() -> str:
    wanted = os.environ.get("ZUKI_EVENT", "").strip().lower()
    if wanted not in {"", "futex", "portable"}:
        raise ImportError(f"ZUKI_EVENT={wanted!r}: expected 'futex' or 'portable'")
    if wanted == "futex" and _syscall is None:
        raise ImportError("ZUKI_EVENT=futex but the futex system call is not available here")
    if wanted == "portable" or _syscall is None:
        return "portable"
    return "futex"


EVENT_BACKEND: Final[str] = _default_backend()
"""The backend ``Event()`` uses by default: ``"futex"`` or ``"portable"``."""


class Event:
    """A one-token event: ``wait`` blocks until a ``notify`` (zap's protocol).

    Thread-safety: any thread may call any method at any time; any number of threads may
    wait. ``notify`` leaves one token that exactly one ``wait`` takes (a notify before
    the wait is not lost; several notifies with nobody waiting leave one token).
    ``notify_all`` releases every thread waiting at the time and leaves the token.
    ``shutdown`` is sticky: every ``wait``, now or later, returns ``True`` at once.
    A successful ``wait`` happens after the ``notify`` (or ``notify_all``/``shutdown``)
    that released it: writes before the notify are visible after the wait.
    """

    __slots__ = ()

    backend: str

    def __new__(cls, *, backend: str | None = None) -> Event:
        if cls is not Event:
            return object.__new__(cls)
        chosen = EVENT_BACKEND if backend is None else backend
        if chosen == "futex":
            if _syscall is None:
                raise ValueError("Event backend 'futex' is not available on this platform")
            return object.__new__(_FutexEvent)
        if chosen == "portable":
            return object.__new__(_PortableEvent)
        raise ValueError(f"unknown Event backend {chosen!r}: expected 'futex' or 'portable'")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until notified; take the token.

        Returns ``True`` when released by ``notify`` (taking its token), ``notify_all``
        or ``shutdown``, and ``False`` if ``timeout`` seconds passed first (a token that
        arrives by then is still taken). ``timeout=None`` waits forever; ``0`` polls.
        """
        raise NotImplementedError

    def notify(self) -> None:
        """Leave the token and wake one waiter, if any (at most one token is kept)."""
        raise NotImplementedError

    def notify_all(self) -> None:
        """Release every thread waiting now; leave the token for the next ``wait``."""
        raise NotImplementedError

    def shutdown(self) -> None:
        """Release every waiter, now and forever after (sticky)."""
        raise NotImplementedError

    @property
    def state(self) -> int:
        """The current state (``EMPTY``/``WAITING``/``NOTIFIED``/``SHUTDOWN``); racy."""
        raise NotImplementedError

    def __repr__(self) -> str:
        names = ("EMPTY", "WAITING", "NOTIFIED", "SHUTDOWN")
        return f"<Event {names[self.state]} backend={self.backend!r}>"


class _FutexEvent(Event):
    """zap's Event on a libatomic cell and the Linux futex system call."""

    __slots__ = ("_cell", "_uaddr")
    backend = "futex"

    def __init__(self, *, backend: str | None = None) -> None:
        self._cell = atomics.AtomicInt(0, backend="libatomic")
        # The futex word is the low 32 bits of the 64-bit cell.
        offset = 4 if sys.byteorder == "big" else 0
        self._uaddr = ctypes.c_void_p(self._cell.address + offset)

    @property
    def state(self) -> int:
        return self._cell.load() & _STATE_MASK

    def _futex_wait(self, expected: int, timeout: float | None) -> None:
        assert _syscall is not None
        if timeout is None:
            ts = None
        else:
            seconds = int(timeout)
            ts = ctypes.byref(_Timespec(seconds, int((timeout - seconds) * 1e9)))
        result = _syscall(_SYS_FUTEX_NR, self._uaddr, _FUTEX_WAIT_PRIVATE, expected, ts, None, 0)
        if result == -1:
            err = ctypes.get_errno()
            # EAGAIN: the word changed before we slept; EINTR: a signal; ETIMEDOUT: the
            # caller's loop rechecks the deadline. Anything else is a bug.
            if err not in (errno.EAGAIN, errno.EINTR, errno.ETIMEDOUT):
                raise OSError(err, f"futex wait: {os.strerror(err)}")

    def _futex_wake(self, count: int) -> None:
        assert _syscall is not None
        result = _syscall(_SYS_FUTEX_NR, self._uaddr, _FUTEX_WAKE_PRIVATE, count, None, None, 0)
        if result == -1:
            err = ctypes.get_errno()
            raise OSError(err, f"futex wake: {os.strerror(err)}")

    def wait(self, timeout: float | None = None) -> bool:
        cell = self._cell
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        s = cell.load()
        epoch = s & _EPOCH_MASK
        acquire_with = EMPTY
        while True:
            state = s & _STATE_MASK
            if state == SHUTDOWN or s & _EPOCH_MASK != epoch:
                return True  # the seq_cst load that saw it is an acquire
            if state == NOTIFIED:
                ok, s = cell.compare_exchange(s, (s & _EPOCH_MASK) | acquire_with)
                if ok:
                    return True
                continue
            if state == EMPTY:
                ok, s = cell.compare_exchange(s, s | WAITING)
                if not ok:
                    continue
                s |= WAITING
            remaining = None
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
            self._futex_wait(s, remaining)
            acquire_with = WAITING
            s = cell.load()

    def notify(self) -> None:
        cell = self._cell
        s = cell.load()
        while True:
            if s & _STATE_MASK == SHUTDOWN:
                return
            ok, s_seen = cell.compare_exchange(s, (s & _EPOCH_MASK) | NOTIFIED)
            if ok:
                if s & _STATE_MASK == WAITING:
                    self._futex_wake(1)
                return
            s = s_seen

    def notify_all(self) -> None:
        cell = self._cell
        s = cell.load()
        while s & _STATE_MASK != SHUTDOWN:
            bumped = ((s & _EPOCH_MASK) + _EPOCH_ONE) & _EPOCH_MASK
            ok, s = cell.compare_exchange(s, bumped | NOTIFIED)
            if ok:
                break
        self._futex_wake(_INT_MAX)

    def shutdown(self) -> None:
        self._cell.fetch_or(SHUTDOWN)
        self._futex_wake(_INT_MAX)


class _PortableEvent(Event):
    """The same semantics under a ``threading.Condition`` (any platform)."""

    __slots__ = ("_cond", "_epoch", "_state")
    backend = "portable"

    def __init__(self, *, backend: str | None = None) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._state = EMPTY  # guarded by _cond
        self._epoch = 0  # guarded by _cond

    @property
    def state(self) -> int:
        return self._state

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        with self._cond:
            epoch = self._epoch
            while True:
                if self._state == SHUTDOWN or self._epoch != epoch:
                    return True
                if self._state == NOTIFIED:
                    self._state = EMPTY
                    return True
                if deadline is None:
                    self._cond.wait()
                else:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._cond.wait(remaining)

    def notify(self) -> None:
        with self._cond:
            if self._state != SHUTDOWN:
                self._state = NOTIFIED
                self._cond.notify()

    def notify_all(self) -> None:
        with self._cond:
            if self._state != SHUTDOWN:
                self._state = NOTIFIED
                self._epoch += 1
            self._cond.notify_all()

    def shutdown(self) -> None:
        with self._cond:
            self._state = SHUTDOWN
            self._cond.notify_all()
