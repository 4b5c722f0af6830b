"""Shared helpers for the runtime tests.

Everything above the "white-box helpers" section is written against zuki's public API
only (``import zuki``), so that the same helpers serve the API, fault, stress and other
runtime tests (``stress/runtime.py`` is standalone: it must run without pytest). The
white-box section reaches into ``zuki.runtime`` and ``zuki.concurrent`` for the tests
that drive tasks, reactors and queues by hand.

- ``hang_guard(seconds)``: a watchdog that dumps every thread's stack and exits the process
  when a test hangs. It is safe to nest and to use from several threads at once (as
  pytest-run-parallel does): the earliest deadline of all active guards is the one armed.
- ``EXECUTOR_SPECS`` and ``ExecutorSpec``: the executor variants every suite runs against
  (``SingleThreadedExecutor``; ``WorkStealingExecutor`` with 1, 2 and 4 workers on both queue
  backends), always with ``park_timeout=None`` so that a lost wake-up hangs instead of being
  hidden by a timed park.
- ``Gate``: a leaf ``zuki.Future`` that stays pending until some thread opens it; the
  simplest way to suspend a coroutine on something that a foreign thread wakes.
- ``run(main, workers)`` and ``until(predicate)``: ``block_on`` on a fresh work-stealing
  executor without a park timeout, and a coroutine that yields until a condition holds.
- ``start(target)``: run a callable on a daemon thread, collecting its result or error.

White-box helpers:

- ``isolated_reactor(backend, name)``: a fresh reactor installed as the default for a
  block, which fails the test if a registration or a waiting waker outlives it.
- ``FakeScheduler``, ``Slot``, ``ctx`` and ``coroutine_task``: drive tasks by hand, one
  step at a time, with a scheduler that only records what it is asked to queue;
  ``WakeCounter``: waker data that only counts its wakes.
- the ``backend`` fixture (each queue backend in turn) and ``drain`` for the queue tests;
  ``INT64_MIN``, ``INT64_MAX`` and ``HAVE_LIBATOMIC`` for the atomics tests.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import faulthandler
import functools
import gc
import itertools
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import zuki
from zuki.concurrent import atomics
from zuki.concurrent.local_queue import LocalQueue
from zuki.runtime.future import PENDING, Context, Future, Poll, Ready
from zuki.runtime.reactor import Reactor, using_reactor
from zuki.runtime.task import CoroutineTask, PollableTask, make_task
from zuki.runtime.waker import TaskWakerData, Waker, WakerData

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


def run(main: Coroutine[Any, Any, Any], workers: int = 4) -> Any:
    """``zuki.run`` with the park timeout off, so that a lost wake-up hangs."""
    config = zuki.ExecutorConfig(workers=workers, park_timeout=None)
    with zuki.WorkStealingExecutor(config=config) as executor:
        return executor.block_on(main)


async def until(predicate: Callable[[], bool], what: str = "condition") -> None:
    """Yield until ``predicate()`` holds; fail after ``WAIT`` seconds."""
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await zuki.yield_now()


def start(target: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Start ``target`` on a daemon thread; its result (or exception) lands in the list."""
    out: list[Any] = []

    def body() -> None:
        try:
            out.append(target())
        except BaseException as exc:
            out.append(exc)

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread, out


# --------------------------------------------------------------------------------------
# white-box helpers: zuki internals
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def isolated_reactor(backend: str, name: str) -> Iterator[Reactor]:
    """A fresh reactor on ``backend``, the default reactor for the block.

    When the block ends without an error, the reactor must hold no registration and no
    waiting waker (a leaked registration fails the test that leaked it); it is closed
    in any case.
    """
    r = Reactor(backend=backend, name=name)
    try:
        with using_reactor(r):
            yield r
        gc.collect()
        deadline = time.monotonic() + 5.0
        while (r.registrations() or r.waiting()) and time.monotonic() < deadline:
            time.sleep(0.01)  # a selectors close is applied by the driver, shortly
        assert r.registrations() == 0, f"leaked registrations: {r.registrations()}"
        assert r.waiting() == 0
    finally:
        r.close()


class WakeCounter:
    """Waker data that counts its wakes: ``Waker(WakeCounter())`` stands for a task."""

    def __init__(self) -> None:
        self.wakes = 0

    def wake(self) -> None:
        self.wakes += 1


class FakeScheduler:
    """Records the tasks it is asked to queue (what an executor's wake path does).

    ``queued`` is every task queued, in order (``pop`` takes the oldest); ``joiners``
    the ones queued through ``schedule_back``. Tasks hand out waker data of
    ``waker_data_type``.
    """

    waker_data_type: type[TaskWakerData] = TaskWakerData

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.queued: list[PollableTask[Any]] = []
        self.joiners: list[PollableTask[Any]] = []
        self.suspended: set[PollableTask[Any]] = set()

    def schedule(self, task: PollableTask[Any]) -> None:
        with self.lock:
            self.queued.append(task)

    def schedule_back(self, task: PollableTask[Any]) -> None:
        with self.lock:
            self.queued.append(task)
            self.joiners.append(task)

    def waker_data(self, task: PollableTask[Any]) -> WakerData:
        return self.waker_data_type(None, task)

    def pop(self) -> PollableTask[Any]:
        with self.lock:
            return self.queued.pop(0)


class Slot(Future[Any]):
    """A leaf future: pending until ``set(value)``; keeps the last waker it saw and
    counts its polls."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done = False
        self.value: Any = None
        self.waker: Waker | None = None
        self.polls = 0

    def poll(self, cx: Context) -> Poll[Any]:
        with self.lock:
            self.polls += 1
            if self.done:
                return Ready(self.value)
            self.waker = cx.waker.clone()
            return PENDING

    def set(self, value: Any) -> None:
        with self.lock:
            self.done = True
            self.value = value
            waker = self.waker
        if waker is not None:
            waker.wake()


def ctx() -> contextvars.Context:
    return contextvars.copy_context()


def coroutine_task(coro: Any, sched: FakeScheduler) -> CoroutineTask[Any]:
    """A task for ``coro`` on ``sched``, not yet run."""
    task = make_task(coro, sched, ctx())  # type: ignore[arg-type]
    assert isinstance(task, CoroutineTask)
    return task


@pytest.fixture(params=BACKENDS, name="backend")
def queue_backend(request: pytest.FixtureRequest) -> str:
    """The fixture ``backend``: each queue backend in turn (import ``queue_backend``)."""
    return str(request.param)


def drain(q: LocalQueue[Any]) -> list[Any]:
    """Pop until empty, in pop (newest-first) order."""
    out = []
    while (item := q.pop()) is not None:
        out.append(item)
    return out


#: The range of a 64-bit atomic cell.
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
HAVE_LIBATOMIC = atomics._lib is not None
