"""Shared helpers for the black-box runtime tests.

Everything here is written against zuki's public API only (``import zuki``), so that the
same helpers serve the API, fault, stress and other runtime tests (``stress/runtime.py`` is
standalone: it must run without pytest).

- ``hang_guard(seconds)``: a watchdog that dumps every thread's stack and exits the process
  when a test hangs. It is safe to nest and to use from several threads at once (as
  pytest-run-parallel does): the earliest deadline of all active guards is the one armed.
- ``EXECUTOR_SPECS`` and ``ExecutorSpec``: the executor variants every suite runs against
  (``SingleThreadedExecutor``; ``WorkStealingExecutor`` with 1, 2 and 4 workers on both queue
  backends), always with ``park_timeout=None`` so that a lost wake-up hangs instead of being
  hidden by a timed park.
- ``Gate``: a leaf ``zuki.Future`` that stays pending until some thread opens it; the
  simplest way to suspend a coroutine on something that a foreign thread wakes.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import faulthandler
import functools
import itertools
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import zuki

#: Seconds a single blocking wait in a test may take before it is a failure.
WAIT = 30.0
#: Seconds before a hung test is killed with every stack dumped.
HANG = 60.0

FREE_THREADED = not getattr(sys, "_is_gil_enabled", lambda: True)()

# --------------------------------------------------------------------------------------
# hang guard
# --------------------------------------------------------------------------------------

_guard_lock = threading.Lock()
_deadlines: dict[int, float] = {}
_tokens = itertools.count()
# Where the dump goes. pytest captures fd 2 into a temporary file that is lost when the
# watchdog kills the process, so under pytest the dump goes to the copy of the real stderr
# that pytest's faulthandler plugin keeps (see ``hang_dump_fd`` below).
_dump_file: Any = None


def _rearm() -> None:
    """Arm faulthandler for the earliest active deadline. Called with ``_guard_lock`` held."""
    if not _deadlines:
        faulthandler.cancel_dump_traceback_later()
        return
    remaining = max(min(_deadlines.values()) - time.monotonic(), 0.001)
    file = _dump_file if _dump_file is not None else sys.stderr
    faulthandler.dump_traceback_later(remaining, exit=True, file=file)


@contextlib.contextmanager
def hang_guard(seconds: float = HANG) -> Iterator[None]:
    """Kill the process with every thread's stack dumped if the block runs past ``seconds``.

    A lost wake-up in the runtime shows up as a hang; this turns it into a loud failure
    with the stacks that explain it, instead of a CI job that times out silently.
    """
    token = next(_tokens)
    with _guard_lock:
        _deadlines[token] = time.monotonic() + seconds
        _rearm()
    try:
        yield
    finally:
        with _guard_lock:
            del _deadlines[token]
            _rearm()


@pytest.fixture(autouse=True, scope="session")
def hang_dump_fd(request: pytest.FixtureRequest) -> Iterator[None]:
    """Send hang dumps to the uncaptured stderr that pytest's faulthandler plugin keeps.

    Import this fixture into every test module that uses ``hang_guard`` (it is autouse).
    """
    global _dump_file
    try:
        from _pytest.faulthandler import fault_handler_stderr_fd_key

        _dump_file = request.config.stash[fault_handler_stderr_fd_key]
    except (ImportError, KeyError):
        _dump_file = None
    yield


def guarded(seconds: float = HANG) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator form of ``hang_guard`` for a whole test function."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with hang_guard(seconds):
                return fn(*args, **kwargs)

        return wrapper

    return decorate


# --------------------------------------------------------------------------------------
# executor variants
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecutorSpec:
    """One executor variant of the suite. ``make()`` builds a fresh executor each call,
    so that every copy of a test under pytest-run-parallel owns its own executor."""

    kind: str  # "single" or "ws"
    workers: int
    backend: str | None = None

    @property
    def id(self) -> str:
        if self.kind == "single":
            return "single"
        return f"ws{self.workers}-{self.backend}"

    @property
    def parallel(self) -> bool:
        """True when tasks of this executor can run on more than one thread at once."""
        return self.kind == "ws" and self.workers > 1

    def config(self, **overrides: Any) -> zuki.ExecutorConfig:
        options: dict[str, Any] = {"workers": self.workers, "park_timeout": None}
        if self.backend is not None:
            options["queue_backend"] = self.backend
        options.update(overrides)
        return zuki.ExecutorConfig(**options)

    def make(self, **overrides: Any) -> Any:
        if self.kind == "single":
            return zuki.SingleThreadedExecutor(config=self.config(**overrides))
        return zuki.WorkStealingExecutor(config=self.config(**overrides))


BACKENDS = ("lockfree", "builtin")

EXECUTOR_SPECS = [
    ExecutorSpec("single", 1),
    *(ExecutorSpec("ws", n, backend) for backend in BACKENDS for n in (1, 2, 4)),
]
WS_SPECS = [spec for spec in EXECUTOR_SPECS if spec.kind == "ws"]


def spec_params(specs: list[ExecutorSpec]) -> list[Any]:
    return [pytest.param(spec, id=spec.id) for spec in specs]


# --------------------------------------------------------------------------------------
# small building blocks
# --------------------------------------------------------------------------------------


def wait_until(predicate: Callable[[], bool], timeout: float = WAIT, what: str = "") -> None:
    """Poll ``predicate`` until it is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(0.001)


class Counter:
    """A thread-safe counter (``+=`` on an int attribute is not atomic on 3.13t)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self, n: int = 1) -> None:
        with self._lock:
            self.value += n


class Gate(zuki.Future):
    """A leaf future that is pending until ``open(value)`` is called from any thread.

    ``polled`` is set the first time a task polls it (the task is then suspended on it);
    ``waker`` keeps the last waker it was given, so tests can wake it again later.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: Any = None
        self._open = False
        self.waker: Any = None
        self.polled = threading.Event()

    def poll(self, cx: Any) -> Any:
        with self._lock:
            if self._open:
                return zuki.Poll.ready(self._value)
            self.waker = cx.waker.clone()
        self.polled.set()
        return zuki.Poll.PENDING

    def open(self, value: Any = None) -> None:
        with self._lock:
            self._value = value
            self._open = True
            waker = self.waker
        if waker is not None:
            waker.wake()


class Blockers:
    """Occupy every worker of an executor with a callable that waits on an event.

    ``start(ex, n)`` spawns ``n`` blockers and waits until all of them are running, so
    whatever is spawned next stays queued until ``release()``.
    """

    def __init__(self) -> None:
        self.release_event = threading.Event()
        self.running = Counter()
        self.handles: list[Any] = []

    def _block(self) -> None:
        self.running.add()
        self.release_event.wait(WAIT)

    def start(self, ex: Any, n: int) -> None:
        self.handles = [ex.spawn(self._block) for _ in range(n)]
        wait_until(lambda: self.running.value >= n, what=f"{n} blockers to start")

    def release(self) -> None:
        self.release_event.set()


def cancelled_errors() -> tuple[type[BaseException], ...]:
    """What ``result()`` of a cancelled handle may raise: ``zuki.Cancelled`` (which is a
    ``concurrent.futures.CancelledError``), or the base class itself."""
    return (zuki.Cancelled, concurrent.futures.CancelledError)
