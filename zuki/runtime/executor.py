"""The executor interface both executors share, their configuration, and the entry points.

Prior art: ``concurrent.futures.Executor`` (``submit``/``map``/``shutdown``/context
manager, the contract users already know), tokio's ``Runtime``/``Handle``
(``spawn``/``block_on``/``Handle::current``), asyncio's ``run``, Rayon's ``join``.

One interface, two executors
============================

:class:`Executor` is a ``concurrent.futures.Executor`` and adds ``spawn``,
``spawn_batch``, ``block_on``, ``run`` and ``metrics``. Everything that is the same for
both executors lives here (turning what the user passed into a task, ``submit``,
``map``, ``block_on``); an executor supplies three hooks: ``_scheduler`` (what pollable
tasks wake through), ``_schedule_new(task)`` and ``_schedule_batch(tasks)``. So
switching between :class:`~zuki.WorkStealingExecutor` and
:class:`~zuki.SingleThreadedExecutor` is a one-line change, and ``make_executor`` picks
one from a config.

``map`` hands all its tasks over in one ``spawn_batch`` (one synchronization step), in
chunks of ``chunksize`` items per task: with trivial functions the per-task overhead
(about a microsecond) dominates, and ``chunksize=64`` or more amortizes it. Results come
back in order, lazily, as with ``concurrent.futures``; the first exception is raised
when the iterator reaches it; closing the iterator early cancels what has not started.

Entry points (module functions, exported as ``zuki.run`` and friends)
=====================================================================

* ``run(coro, *, workers=None)``: like ``asyncio.run``: make a work-stealing executor,
  ``block_on`` the coroutine, shut the executor down. Tasks the coroutine spawned and did
  not await still run to completion before ``run`` returns (the executor's
  ``shutdown(wait=True)``); if the coroutine fails, they are cancelled instead.
* ``spawn(x)``, ``current_executor()``: inside a task, the executor running it. Outside
  a task they raise ``RuntimeError``, since there is no implicit global executor.
* ``join(fn_a, fn_b)``: fork-join inside a task: ``fn_b`` is offered to other workers
  while ``fn_a`` runs on this thread; returns ``(a, b)``. Both always run; if ``fn_a``
  raises, ``join`` waits for ``fn_b`` and then re-raises ``fn_a``'s exception (Rayon's
  rule: ``fn_b`` may borrow what ``fn_a``'s caller owns).

Thread-safety: every method of an executor may be called from any thread, including its
own workers (see each executor for what waiting from a worker does).
"""

from __future__ import annotations

import concurrent.futures
import functools
import itertools
import math
import os
import threading
import time
import types
from collections.abc import Callable, Coroutine, Iterable, Iterator
from contextvars import copy_context
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

from zuki.runtime.errors import ExecutorConfigError
from zuki.runtime.task import CallTask, JoinHandle, Scheduler, make_task, tls

if TYPE_CHECKING:
    from zuki.runtime.future import Future
    from zuki.runtime.metrics import ExecutorMetrics

__all__ = [
    "Executor",
    "ExecutorConfig",
    "current_executor",
    "join",
    "make_executor",
    "run",
    "spawn",
]

T = TypeVar("T")
A = TypeVar("A")
B = TypeVar("B")

QUEUE_BACKENDS: Final = ("lockfree", "builtin")
DEFAULT_QUEUE_BACKEND: Final = "builtin"
DEFAULT_PARK_TIMEOUT: Final = 0.5
#: Seconds an idle work-stealing worker (other than the first) waits before its thread
#: exits; tokio's blocking pool uses the same 10 s.
DEFAULT_KEEP_ALIVE: Final = 10.0
#: Spare threads a work-stealing pool may add beyond ``workers`` to compensate for
#: workers blocked at the helping depth cap (``max_workers`` default).
DEFAULT_SPARE_THREADS: Final = 16
_MIN_STACK_SIZE: Final = 32 * 1024


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class ExecutorConfig:
    """How an executor is built. Every field is validated at construction.

    Fields:
        workers: worker threads (the parallelism); default ``os.cpu_count()``. A
            work-stealing pool starts them lazily, as work arrives.
        max_workers: the most threads a work-stealing pool may run, counting the spares
            it starts for workers blocked deep in nested waits; default
            ``workers + 16``; at least ``workers``.
        thread_stack_size: stack size in bytes for the executor's threads (``None``:
            the platform default); at least 32 KiB.
        local_queue_capacity: slots in each worker's local queue (a power of two,
            at least 2; default 256); a full queue moves half to the global queue.
        global_queue_capacity: the most tasks submitted from outside the pool that may
            wait in the global queue (``None``: unbounded); a submitter that finds it
            full waits for room (back-pressure). Internal pushes are never refused.
        queue_backend: ``"builtin"`` (deque and lock) or ``"lockfree"`` (the atomics
            shim): the implementation of the queues (``zuki.concurrent``).
        park_timeout: seconds an idle worker sleeps before it rechecks the queues on
            its own, a backstop against lost wake-ups; ``None`` sleeps until woken
            (what the tests use, so that a lost wake-up hangs instead of hiding).
        keep_alive: seconds a work-stealing worker may sit idle (parked, with nothing
            to run) before its thread exits; the slot is started again, lazily, when
            work arrives and no parked worker is left to take it. The first worker
            never exits, so an idle pool still needs no thread start to make progress.
            ``None``: threads stay until shutdown. Default 10 s. ``metrics()`` counts
            the exits (``threads_retired``) and the threads alive (``live_threads``).
        rng_seed: seed of the workers' victim-choice RNG (``None``: random).
        thread_factory: called like ``threading.Thread(target=..., name=...,
            daemon=...)`` to make each thread; tests inject failures through it.
        thread_name_prefix: names of the threads (``prefix-N``).

    Raises:
        ExecutorConfigError: a field is invalid (a ``ValueError``; the message names
            the field and the value).
    """

    workers: int | None = None
    max_workers: int | None = None
    thread_stack_size: int | None = None
    local_queue_capacity: int = 256
    global_queue_capacity: int | None = None
    queue_backend: str = DEFAULT_QUEUE_BACKEND
    park_timeout: float | None = DEFAULT_PARK_TIMEOUT
    keep_alive: float | None = DEFAULT_KEEP_ALIVE
    rng_seed: int | None = None
    thread_factory: Callable[..., threading.Thread] | None = None
    thread_name_prefix: str = "zuki-worker"

    def __post_init__(self) -> None:
        workers = self.workers
        if workers is None:
            workers = os.cpu_count() or 1
            object.__setattr__(self, "workers", workers)
        elif not _is_int(workers) or workers < 1:
            raise ExecutorConfigError(f"workers must be an int >= 1 (or None), got {workers!r}")
        max_workers = self.max_workers
        if max_workers is None:
            object.__setattr__(self, "max_workers", workers + DEFAULT_SPARE_THREADS)
        elif not _is_int(max_workers) or max_workers < workers:
            raise ExecutorConfigError(
                f"max_workers must be an int >= workers ({workers}), got {max_workers!r}"
            )
        size = self.thread_stack_size
        if size is not None and (not _is_int(size) or size < _MIN_STACK_SIZE):
            raise ExecutorConfigError(
                f"thread_stack_size must be None or an int >= {_MIN_STACK_SIZE}, got {size!r}"
            )
        cap = self.local_queue_capacity
        if not _is_int(cap) or cap < 2 or cap & (cap - 1):
            raise ExecutorConfigError(
                f"local_queue_capacity must be a power of two >= 2, got {cap!r}"
            )
        gcap = self.global_queue_capacity
        if gcap is not None and (not _is_int(gcap) or gcap < 1):
            raise ExecutorConfigError(
                f"global_queue_capacity must be None or an int >= 1, got {gcap!r}"
            )
        if self.queue_backend not in QUEUE_BACKENDS:
            raise ExecutorConfigError(
                f"queue_backend must be one of {QUEUE_BACKENDS}, got {self.queue_backend!r}"
            )
        for name in ("park_timeout", "keep_alive"):
            seconds = getattr(self, name)
            if seconds is not None and (
                not isinstance(seconds, (int, float))
                or isinstance(seconds, bool)
                or not math.isfinite(seconds)
                or seconds <= 0
            ):
                raise ExecutorConfigError(
                    f"{name} must be None or a finite number of seconds > 0, got {seconds!r}"
                )
        if self.rng_seed is not None and not _is_int(self.rng_seed):
            raise ExecutorConfigError(f"rng_seed must be None or an int, got {self.rng_seed!r}")
        if self.thread_factory is not None and not callable(self.thread_factory):
            raise ExecutorConfigError(
                f"thread_factory must be callable, got {self.thread_factory!r}"
            )
        if not isinstance(self.thread_name_prefix, str):
            raise ExecutorConfigError(
                f"thread_name_prefix must be a str, got {self.thread_name_prefix!r}"
            )

    @property
    def worker_count(self) -> int:
        """``workers``, resolved (never ``None`` after construction)."""
        assert self.workers is not None
        return self.workers

    @property
    def thread_limit(self) -> int:
        """``max_workers``, resolved."""
        assert self.max_workers is not None
        return self.max_workers


_stack_size_lock = threading.Lock()


def start_thread(config: ExecutorConfig, target: Callable[[], None], name: str) -> threading.Thread:
    """Make and start one executor thread with the config's factory and stack size.

    ``threading.stack_size`` is process-wide, so it is set and restored under a lock.

    Raises:
        BaseException: whatever the factory or ``Thread.start`` raised.
    """
    factory = config.thread_factory or threading.Thread
    size = config.thread_stack_size
    if size is None:
        thread = factory(target=target, name=name, daemon=True)
        thread.start()
        return thread
    with _stack_size_lock:
        previous = threading.stack_size(size)
        try:
            thread = factory(target=target, name=name, daemon=True)
            thread.start()
        finally:
            threading.stack_size(previous)
    return thread


# -- live executors, for interpreter exit (concurrent.futures.thread's _python_exit) ------

_live_lock = threading.Lock()
_live: dict[int, Executor] = {}


def register_live(executor: Executor) -> None:
    """Remember ``executor`` until it terminates, so that interpreter exit shuts it down."""
    with _live_lock:
        _live[id(executor)] = executor


def unregister_live(executor: Executor) -> None:
    """Forget a terminated executor (idempotent)."""
    with _live_lock:
        _live.pop(id(executor), None)


def _shutdown_live_executors() -> None:
    """At interpreter exit: run every live executor's queued work, then stop it."""
    while True:
        with _live_lock:
            executors = list(_live.values())
        if not executors:
            return
        for executor in executors:
            try:
                executor.shutdown_at_exit()
            finally:
                unregister_live(executor)


def _register_exit_hook() -> None:
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        # Runs before the interpreter joins non-daemon threads, like concurrent.futures.
        register(_shutdown_live_executors)
    else:  # pragma: no cover - other Python implementations
        import atexit

        atexit.register(_shutdown_live_executors)


_register_exit_hook()


#: Callables that are certainly neither coroutines nor ``zuki.Future``s.
_PLAIN_CALLABLES: Final = frozenset(
    {types.FunctionType, types.BuiltinFunctionType, types.MethodType, functools.partial}
)


def _run_chunk(fn: Callable[..., T], chunk: list[tuple[Any, ...]]) -> list[T]:
    return [fn(*args) for args in chunk]


def _result_or_cancel(handle: JoinHandle[T], timeout: float | None) -> T:
    try:
        return handle.result(timeout)
    finally:
        handle.cancel()


class Executor(concurrent.futures.Executor):
    """The interface of zuki's executors (see the module docstring).

    Subclasses implement ``_schedule_new``, ``_schedule_batch``, ``_scheduler``,
    ``shutdown``, ``run``, ``metrics`` and ``_check_open``.
    """

    _scheduler: Scheduler

    # -- hooks ----------------------------------------------------------------------------

    def _check_open(self) -> None:
        """Raise ``ExecutorShutdownError`` if ``shutdown()`` was called."""
        raise NotImplementedError

    def _schedule_new(self, task: JoinHandle[Any]) -> None:
        """Queue a task created by the calling thread (raises after shutdown)."""
        raise NotImplementedError

    def _schedule_batch(self, tasks: list[JoinHandle[Any]]) -> None:
        """Queue many new tasks in one synchronization step (raises after shutdown)."""
        raise NotImplementedError

    @property
    def config(self) -> ExecutorConfig:
        """The configuration this executor was built with."""
        raise NotImplementedError

    def metrics(self) -> ExecutorMetrics:
        """A snapshot of the scheduler counters (see ``zuki.runtime.metrics``)."""
        raise NotImplementedError

    def run(self) -> None:
        """Block the calling thread until the executor has shut down and stopped."""
        raise NotImplementedError

    def shutdown_at_exit(self) -> None:
        """Interpreter exit: run the queued work, cancel what can never be woken, stop."""
        self.shutdown(wait=True)

    # -- spawning -------------------------------------------------------------------------

    def spawn(self, task: Coroutine[Any, Any, T] | Future[T] | Callable[[], T]) -> JoinHandle[T]:
        """Run a coroutine, a ``zuki.Future`` or a callable as a task; from any thread.

        Raises:
            TypeError: ``task`` is none of the three (the message names it).
            ExecutorShutdownError: after ``shutdown()``.
        """
        self._check_open()
        handle = make_task(task, self._scheduler)
        try:
            self._schedule_new(handle)
        except BaseException:
            handle.cancel()
            raise
        return handle

    def spawn_batch(self, tasks: Iterable[Any]) -> list[JoinHandle[Any]]:
        """Spawn every item of ``tasks`` (a ``TaskBatch`` or any iterable) at once.

        The whole batch is handed over with one synchronization step and wakes as many
        idle workers as it can use. Returns the handles in order.

        Raises:
            TypeError: an item is not a coroutine, ``zuki.Future`` or callable (nothing
                is spawned then).
            ExecutorShutdownError: after ``shutdown()``.
        """
        self._check_open()
        sched = self._scheduler
        handles: list[JoinHandle[Any]] = []
        append = handles.append
        try:
            for item in tasks:
                if type(item) in _PLAIN_CALLABLES:  # make_task's answer, one call cheaper
                    append(CallTask(item, (), copy_context()))
                else:
                    append(make_task(item, sched))
        except BaseException:
            for h in handles:
                h.cancel()
            raise
        if handles:
            try:
                self._schedule_batch(handles)
            except BaseException:
                for h in handles:
                    h.cancel()
                raise
        return handles

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> JoinHandle[T]:
        """Schedule ``fn(*args, **kwargs)``; the ``concurrent.futures`` contract.

        Raises:
            ExecutorShutdownError: after ``shutdown()`` (a ``RuntimeError``).
        """
        if kwargs:
            fn = functools.partial(fn, **kwargs)
        handle: JoinHandle[T] = CallTask(fn, args, copy_context())
        self._schedule_new(handle)  # checks for shutdown
        return handle

    def map(
        self,
        fn: Callable[..., T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[T]:
        """``map(fn, *iterables)`` on the executor; results in order, lazily.

        All calls are submitted at once (in one batch), ``chunksize`` calls per task.

        Raises:
            ValueError: ``chunksize < 1``.
            TimeoutError: from the iterator, if a result is not ready ``timeout``
                seconds after ``map`` was called.
            BaseException: from the iterator, the first exception of a call, in order.
        """
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        end_time = None if timeout is None else timeout + time.monotonic()
        self._check_open()
        if chunksize == 1:
            handles: list[JoinHandle[Any]] = [
                CallTask(fn, args, copy_context()) for args in zip(*iterables, strict=False)
            ]
        else:
            it = zip(*iterables, strict=False)
            handles = []
            while chunk := list(itertools.islice(it, chunksize)):
                handles.append(CallTask(_run_chunk, (fn, chunk), copy_context()))
        if handles:
            self._schedule_batch(handles)
        return self._results(handles, end_time, chunksize > 1)

    @staticmethod
    def _results(
        handles: list[JoinHandle[Any]], end_time: float | None, chunked: bool
    ) -> Iterator[Any]:
        try:
            handles.reverse()
            while handles:
                handle = handles.pop()
                remaining = None if end_time is None else end_time - time.monotonic()
                value = _result_or_cancel(handle, remaining)
                del handle
                if chunked:
                    yield from value
                else:
                    yield value
        finally:
            for handle in handles:
                handle.cancel()

    def block_on(self, task: Coroutine[Any, Any, T] | Future[T] | Callable[[], T]) -> T:
        """Spawn ``task`` and wait for its result (helping, on a worker thread).

        Raises:
            BaseException: whatever the task raised.
            ExecutorShutdownError: after ``shutdown()``.
        """
        return self.spawn(task).result()


def _outside_a_task(what: str) -> RuntimeError:
    return RuntimeError(
        f"zuki.{what}() must be called from inside a task running on a zuki executor; "
        "outside one, use an executor's methods (or zuki.run(main()))"
    )


def _current_runner(what: str) -> Any:
    runner = tls.runner
    if runner is None:
        raise _outside_a_task(what)
    return runner


def current_executor() -> Executor:
    """The executor running the current task.

    Raises:
        RuntimeError: not called from inside a zuki task.
    """
    return _current_runner("current_executor").executor  # type: ignore[no-any-return]


def spawn(task: Coroutine[Any, Any, T] | Future[T] | Callable[[], T]) -> JoinHandle[T]:
    """Spawn ``task`` on the executor running the current task.

    Raises:
        RuntimeError: not called from inside a zuki task.
        TypeError: ``task`` is not a coroutine, ``zuki.Future`` or callable.
        ExecutorShutdownError: the executor is shutting down and refuses new tasks.
    """
    runner = tls.runner
    if runner is None:
        raise _outside_a_task("spawn")
    handle = make_task(task, runner.scheduler)
    runner.spawn_local(handle)
    return handle


def join(fn_a: Callable[[], A], fn_b: Callable[[], B]) -> tuple[A, B]:
    """Run ``fn_a`` and ``fn_b``, potentially in parallel; return ``(a, b)``.

    Must be called from inside a task. ``fn_b`` is offered to other workers while
    ``fn_a`` runs here; if nobody took it, it runs here too. Waiting for a stolen
    ``fn_b`` runs other tasks meanwhile, so nested joins never deadlock.

    Raises:
        RuntimeError: not called from inside a zuki task.
        BaseException: what ``fn_a`` raised (after ``fn_b`` finished), else what
            ``fn_b`` raised.
    """
    runner = _current_runner("join")
    return runner.join(fn_a, fn_b)  # type: ignore[no-any-return]


def make_executor(
    config: ExecutorConfig | None = None,
    kind: Literal["work_stealing", "single_threaded"] = "work_stealing",
) -> Executor:
    """An executor of ``kind`` built from ``config`` (default ``ExecutorConfig()``).

    Raises:
        ExecutorConfigError: ``kind`` is unknown.
    """
    if kind == "work_stealing":
        from zuki.runtime.work_stealing_executor import WorkStealingExecutor

        return WorkStealingExecutor(config=config)
    if kind == "single_threaded":
        from zuki.runtime.single_threaded_executor import SingleThreadedExecutor

        return SingleThreadedExecutor(config=config)
    raise ExecutorConfigError(f"kind must be 'work_stealing' or 'single_threaded', got {kind!r}")


def run(main: Coroutine[Any, Any, T] | Future[T], *, workers: int | None = None) -> T:
    """Run ``main`` on a fresh work-stealing executor and return its result.

    Like ``asyncio.run``: the executor is created, ``main`` runs to completion, the
    executor shuts down. Tasks ``main`` spawned and left running are waited for if
    ``main`` returned, cancelled if it raised.

    Raises:
        BaseException: whatever ``main`` raised.
    """
    from zuki.runtime.work_stealing_executor import WorkStealingExecutor

    executor = WorkStealingExecutor(workers)
    try:
        result = executor.block_on(main)
    except BaseException:
        executor.shutdown(wait=True, cancel_futures=True)
        raise
    executor.shutdown(wait=True)
    return result
