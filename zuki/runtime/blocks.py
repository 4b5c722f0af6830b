"""Structured concurrent blocks: ``TaskGroup``, ``parallel_map``, ``stream``, ``AtomicInt``.

Prior art
=========

asyncio's ``TaskGroup`` (3.11) and trio's nursery: tasks are opened inside an
``async with`` block and the block does not end before they do; the first failure
cancels the rest and the block raises an ``ExceptionGroup``. The seeds' "concurrent
blocks" of a language runtime add what a nursery lacks: an error *strategy* per block
(stop, auto, retry), a timeout with a grace period and a choice between an error and
partial results, parallel blocks for CPU-bound work (Rayon's ``par_iter().map()``,
``multiprocessing.Pool.map``) and stream workers over a channel.

The block
=========

``TaskGroup.spawn(fn, *args)`` spawns one zuki task per call, on the executor that runs
the block, wrapped in :meth:`TaskGroup._run`, which applies the strategy: it retries
failures in ``"retry"`` mode and, for a failure that counts, cancels the other tasks in
``"stop"``/``"retry"`` mode. The block's bookkeeping is a ``threading.Lock`` over a list
of :class:`GroupTask` (spawn order) and a count of live tasks. A task's *done callback*
(``JoinHandle.add_done_callback``, which also fires for a task cancelled before it ever
ran, when the wrapper never executes) decrements the count; ``__aexit__`` waits on an
:class:`~zuki.runtime.sync.Event` that is set when the body has ended and the count is
zero. So no task outlives its block, on success, error, timeout or cancellation of the
task that runs the block, and tasks may spawn into their own block until it ends.

Once the block stops (a failure that counts, the deadline, an exception in the body), it
accepts no new work: ``spawn`` still returns a :class:`GroupTask`, already cancelled,
whose function never runs (a task racing a sibling's failure on another worker should
not get an error of its own for it). After the block has ended, ``spawn`` raises.

Timeouts run on a watchdog task that sleeps until the deadline (``zuki.sleep``, or the
``sleep`` the block was given: tests pass a virtual one), then stops the block, waits
``grace`` seconds for the tasks to finish on their own, and cancels the rest. The body
of the block itself is not interrupted; keep it to spawning and light work.

Cancellation is ``zuki.Cancelled``, an ``Exception`` (see ``errors.py``): a task that
catches it with ``except Exception`` and goes on delays the end of its block.

Atomic variables
================

``zuki.AtomicInt`` is the atomics shim's 64-bit cell, re-exported as the user-level
atomic variable for counters and flags shared between tasks on different workers::

    hits = zuki.AtomicInt(0)
    async with zuki.TaskGroup() as g:
        for url in urls:
            g.spawn(fetch_and_count, url, hits)   # calls hits.add(1); never `+=`
    print(hits.load())

``add``/``sub`` return the new value, ``compare_exchange(expected, desired)`` returns
``(ok, current)`` for lock-free update loops, ``load``/``store`` read and write; every
operation is atomic across threads, with sequentially consistent ordering by default.
A plain ``int`` attribute updated with ``+=`` from several tasks loses updates on 3.13t.
"""

from __future__ import annotations

import contextlib
import functools
import math
import random
import threading
from collections.abc import AsyncIterable, Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Generic, Literal, TypeVar, overload

from zuki.concurrent.atomics import AtomicInt
from zuki.runtime.errors import Cancelled
from zuki.runtime.executor import current_executor
from zuki.runtime.future import Future
from zuki.runtime.sync import Channel, ChannelClosed, Event, Semaphore
from zuki.runtime.task import JoinHandle, current_runner
from zuki.runtime.timers import sleep as _zuki_sleep

__all__ = [
    "AtomicInt",
    "Backoff",
    "GroupTask",
    "Stream",
    "TaskGroup",
    "parallel_map",
    "stream",
]

T = TypeVar("T")
R = TypeVar("R")

OnError = Literal["stop", "auto", "retry"]
OnTimeout = Literal["error", "partial"]
SleepFn = Callable[[float], Awaitable[None]]

_ON_ERROR: Final = ("stop", "auto", "retry")
_ON_TIMEOUT: Final = ("error", "partial")

# Phases of a block, guarded by its lock.
_OPEN: Final = 0  # accepting tasks
_STOPPING: Final = 1  # failed, timed out or body raised: tasks are refused
_CLOSED: Final = 2  # __aexit__ finished: spawn raises


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter for ``on_error="retry"``.

    The delay before retry ``k`` (1, 2, ...) is ``min(cap, base * factor ** (k - 1))``
    times a uniform random factor in ``[1 - jitter, 1]`` ("equal jitter" for
    ``jitter=0.5``): retries of tasks that failed together spread out instead of
    hitting a struggling service at the same instant, and never wait longer than the
    un-jittered schedule.

    Raises:
        ValueError: a negative ``base`` or ``cap``, ``factor < 1``, or ``jitter``
            outside ``[0, 1]``.
    """

    base: float = 0.1
    factor: float = 2.0
    cap: float = 30.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if not (self.base >= 0 and self.cap >= 0):
            raise ValueError(f"Backoff base and cap must be >= 0, got {self}")
        if not self.factor >= 1:
            raise ValueError(f"Backoff factor must be >= 1, got {self.factor}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"Backoff jitter must be within [0, 1], got {self.jitter}")

    def delay(self, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        full = min(self.cap, self.base * self.factor ** (retry - 1))
        return full * (1.0 - self.jitter * rng.random())


class _RetryPolicy:
    """What the retry loop of a block needs: how often, how long, and how to sleep."""

    __slots__ = ("_lock", "_rng", "backoff", "retries", "sleep")

    def __init__(self, retries: int, backoff: Backoff, sleep: SleepFn, rng: random.Random) -> None:
        self.retries = retries
        self.backoff = backoff
        self.sleep = sleep
        self._rng = rng
        self._lock = threading.Lock()

    def delay(self, retry: int) -> float:
        with self._lock:  # one RNG shared by tasks on several workers
            return self.backoff.delay(retry, self._rng)


def _make_policy(
    retries: int,
    backoff: float | Backoff,
    sleep: SleepFn | None,
    rng: random.Random | None,
) -> _RetryPolicy:
    if retries < 0:
        raise ValueError(f"retries must be >= 0, not {retries}")
    if not isinstance(backoff, Backoff):
        backoff = Backoff(base=float(backoff))
    return _RetryPolicy(
        retries, backoff, sleep or _zuki_sleep, rng if rng is not None else random.Random()
    )


def _name_of(fn: object) -> str:
    name = getattr(fn, "__qualname__", None)
    return name if isinstance(name, str) else type(fn).__name__


async def _call(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """Call ``fn(*args)``; await what it returns if that is a coroutine or zuki Future."""
    result = fn(*args)
    if isinstance(result, (Coroutine, Future)):
        return await result
    return result


def _check_strategy(on_error: str) -> None:
    if on_error not in _ON_ERROR:
        raise ValueError(f"on_error must be one of {_ON_ERROR}, not {on_error!r}")


# --------------------------------------------------------------------------------------
# TaskGroup
# --------------------------------------------------------------------------------------


class GroupTask(Generic[T]):
    """One task of a :class:`TaskGroup`: its place in spawn order and its outcome.

    ``index`` is the spawn order, ``name`` the function's qualified name, ``attempts``
    how many times it ran (more than 1 only in a retry group). Await it from another
    task of the block to wait for its value. A task the block refused (spawned after
    the block stopped) reports ``cancelled()`` and never ran.

    Thread-safety: read it from any thread; it is written by the block.
    """

    __slots__ = ("_args", "_coro", "_fn", "_handle", "attempts", "index", "name")

    def __init__(
        self,
        index: int,
        fn: Callable[..., Any] | None,
        args: tuple[Any, ...],
        coro: Coroutine[Any, Any, T] | None,
    ) -> None:
        self.index = index
        self.name = _name_of(coro if coro is not None else fn)
        self.attempts = 0
        self._fn = fn
        self._args = args
        self._coro = coro
        self._handle: JoinHandle[T] | None = None

    def done(self) -> bool:
        """Whether the task finished (or was refused)."""
        handle = self._handle
        return handle is None or handle.done()

    def cancelled(self) -> bool:
        """Whether the task was cancelled (or refused)."""
        handle = self._handle
        return handle is None or handle.cancelled()

    def failed(self) -> bool:
        """Whether the task finished with an exception other than cancellation."""
        handle = self._handle
        return (
            handle is not None
            and handle.done()
            and not handle.cancelled()
            and (handle.exception() is not None)
        )

    def succeeded(self) -> bool:
        """Whether the task finished with a value."""
        handle = self._handle
        return (
            handle is not None
            and handle.done()
            and not handle.cancelled()
            and handle.exception() is None
        )

    def result(self) -> T:
        """The task's value.

        Raises:
            RuntimeError: the task has not finished.
            Cancelled: it was cancelled or refused.
            BaseException: what the task raised.
        """
        handle = self._handle
        if handle is None:
            raise Cancelled(f"{self!r} was not run: its block had stopped")
        if not handle.done():
            raise RuntimeError(f"{self!r} has not finished")
        return handle.result()

    def exception(self) -> BaseException | None:
        """The task's exception, or ``None`` if it returned a value.

        Raises:
            RuntimeError: the task has not finished.
            Cancelled: it was cancelled or refused.
        """
        handle = self._handle
        if handle is None:
            raise Cancelled(f"{self!r} was not run: its block had stopped")
        if not handle.done():
            raise RuntimeError(f"{self!r} has not finished")
        return handle.exception()

    def __await__(self) -> Any:
        handle = self._handle
        if handle is None:
            raise Cancelled(f"{self!r} was not run: its block had stopped")
        return handle.__await__()

    async def _invoke(self) -> T:
        """Run the work once: call the function, or await the coroutine object."""
        coro = self._coro
        if coro is not None:
            self._coro = None
            return await coro
        assert self._fn is not None
        value: T = await _call(self._fn, self._args)
        return value

    def _discard(self) -> None:
        """Close a coroutine object that will never run (no "never awaited" warning)."""
        coro = self._coro
        self._coro = None
        if coro is not None:
            coro.close()

    def __repr__(self) -> str:
        handle = self._handle
        state = "refused" if handle is None else handle.state
        return f"<GroupTask #{self.index} {self.name} {state}>"


class TaskGroup:
    """A block of concurrent tasks that ends only when all of them have ended.

    ::

        async with zuki.TaskGroup(on_error="retry", retries=2, timeout=5) as g:
            for url in urls:
                g.spawn(fetch, url)
        pages = g.results()

    ``g.spawn(fn, *args)`` runs ``fn(*args)`` as a task on the executor running the block
    (an async function's coroutine is awaited; a plain callable runs on a worker
    thread); ``g.spawn(coro)`` runs a coroutine object. Any task of the block, or any
    thread, may spawn into it until it ends. It returns a :class:`GroupTask`.

    ``on_error``:

    * ``"stop"`` (default): the first failure cancels every other task; the block raises
      an ``ExceptionGroup`` of the failures (``except*`` works).
    * ``"auto"``: the other tasks run on; the block does not raise for task failures:
      read them in ``g.errors()`` next to ``g.results()``.
    * ``"retry"``: a failed task is run again, up to ``retries`` more times, after an
      exponential backoff with jitter (``backoff``: a :class:`Backoff`, or a float, the
      first delay in seconds); a task that still fails counts as failed as in
      ``"stop"``. A retry needs to call the function again, so a bare coroutine
      object is a ``TypeError`` in a retry group.

    ``timeout`` (seconds from entering the block): at the deadline the block stops
    accepting tasks; it gives them ``grace`` more seconds (``None``: none) to finish,
    then cancels the rest. Then, with ``on_timeout="error"``, the block raises
    ``TimeoutError``; with ``"partial"`` it ends normally and ``g.results()`` holds what
    completed. ``g.timed_out`` tells which happened.

    Results: ``g.results()`` lists the values of the tasks that succeeded, in spawn
    order; ``g.errors()`` the failed ``(GroupTask, exception)`` pairs, in spawn order;
    ``g.tasks`` every :class:`GroupTask`. A failure is also annotated (``add_note``)
    with the task it came from. An exception in the body cancels the tasks and is
    raised in an ``ExceptionGroup`` with theirs; ``KeyboardInterrupt`` and
    ``SystemExit`` (from the body or a task) cancel the tasks and are re-raised bare.
    If the task running the block is cancelled while the block waits, the tasks are
    cancelled, waited for, and ``Cancelled`` propagates. (A block whose coroutine is
    closed, ``GeneratorExit`` at executor shutdown, cannot wait: it cancels its tasks
    and leaves them to the shutdown.) ``g.channel(capacity)`` makes
    a :class:`~zuki.Channel` that is closed when the block ends.

    ``sleep`` (default ``zuki.sleep``) and ``rng`` drive the backoff and the timeout;
    tests pass a virtual-time sleep and a seeded ``random.Random``.

    Thread-safety: ``spawn``, ``results``, ``errors``, ``tasks`` and ``channel`` may be
    called from any thread or task; ``async with`` belongs to one task.

    Raises:
        ValueError: an unknown ``on_error``/``on_timeout``, a negative ``retries``,
            ``timeout`` or ``grace``.
    """

    def __init__(
        self,
        on_error: OnError = "stop",
        *,
        retries: int = 3,
        backoff: float | Backoff = 0.1,
        timeout: float | None = None,
        grace: float | None = None,
        on_timeout: OnTimeout = "error",
        sleep: SleepFn | None = None,
        rng: random.Random | None = None,
    ) -> None:
        _check_strategy(on_error)
        if on_timeout not in _ON_TIMEOUT:
            raise ValueError(f"on_timeout must be one of {_ON_TIMEOUT}, not {on_timeout!r}")
        for what, value in (("timeout", timeout), ("grace", grace)):
            if value is not None and not value >= 0:
                raise ValueError(f"{what} must be None or >= 0, not {value!r}")
        self._on_error = on_error
        self._policy = _make_policy(retries, backoff, sleep, rng)
        self._timeout = timeout
        self._grace = grace
        self._on_timeout = on_timeout
        self._lock = threading.Lock()
        self._tasks: list[GroupTask[Any]] = []  # spawn order; guarded by _lock
        self._live = 0  # tasks spawned and not finished; guarded by _lock
        self._phase = _OPEN  # guarded by _lock
        self._entered = False
        self._body_done = False  # guarded by _lock
        self._timed_out = False  # guarded by _lock
        self._fatal: BaseException | None = None  # KeyboardInterrupt/SystemExit of a task
        self._all_done = Event()
        self._executor: Any = None
        self._watchdog: JoinHandle[None] | None = None
        self._channels: list[Channel[Any]] = []

    # -- inspection ---------------------------------------------------------------------

    @property
    def tasks(self) -> list[GroupTask[Any]]:
        """Every task spawned into the block, in spawn order (a snapshot)."""
        with self._lock:
            return list(self._tasks)

    @property
    def timed_out(self) -> bool:
        """Whether the deadline passed before the block's tasks had finished."""
        return self._timed_out

    def results(self) -> list[Any]:
        """The values of the tasks that succeeded, in spawn order."""
        return [t.result() for t in self.tasks if t.succeeded()]

    def errors(self) -> list[tuple[GroupTask[Any], BaseException]]:
        """``(task, exception)`` for every task that failed, in spawn order."""
        failed = []
        for t in self.tasks:
            if t.failed():
                exc = t.exception()
                assert exc is not None
                failed.append((t, exc))
        return failed

    def channel(self, capacity: int = 1) -> Channel[Any]:
        """A new :class:`~zuki.Channel` that the block closes when it ends."""
        ch: Channel[Any] = Channel(capacity)
        with self._lock:
            self._channels.append(ch)
        return ch

    # -- spawning -----------------------------------------------------------------------

    @overload
    def spawn(self, fn: Callable[..., Coroutine[Any, Any, T]], /, *args: Any) -> GroupTask[T]: ...

    @overload
    def spawn(self, fn: Coroutine[Any, Any, T], /) -> GroupTask[T]: ...

    @overload
    def spawn(self, fn: Callable[..., T], /, *args: Any) -> GroupTask[T]: ...

    def spawn(self, fn: Any, /, *args: Any) -> GroupTask[Any]:
        """Run ``fn(*args)`` (or the coroutine object ``fn``) as a task of the block.

        Raises:
            TypeError: ``fn`` is neither callable nor a coroutine; a coroutine object
                with arguments; a coroutine object in a retry group.
            RuntimeError: the block has not been entered, or has ended.
        """
        task = self._new_task(fn, args)
        with self._lock:
            if not self._entered or self._phase == _CLOSED:
                task._discard()
                state = "has ended" if self._phase == _CLOSED else "was not entered"
                raise RuntimeError(f"cannot spawn into a TaskGroup that {state}")
            task.index = len(self._tasks)
            self._tasks.append(task)
            if self._phase != _OPEN:
                task._discard()
                return task
            self._live += 1
        run = self._run(task)
        try:
            handle = self._executor.spawn(run)
        except BaseException:
            run.close()  # refused before it became a task: no "never awaited" warning
            with self._lock:
                self._tasks.remove(task)
                self._live -= 1
            task._discard()
            raise
        with self._lock:
            task._handle = handle
            stopping = self._phase != _OPEN
        handle.add_done_callback(self._task_done)
        if stopping:
            handle.cancel()  # the block stopped while we spawned: it missed this one
        return task

    def _new_task(self, fn: Any, args: tuple[Any, ...]) -> GroupTask[Any]:
        if isinstance(fn, Coroutine):
            if args:
                fn.close()
                raise TypeError("spawn(coro, *args): arguments go with a function, not a coroutine")
            if self._on_error == "retry":
                fn.close()
                raise TypeError(
                    "a TaskGroup with on_error='retry' must be able to call the work again: "
                    f"pass the async function and its arguments, g.spawn(fn, *args), "
                    f"not the coroutine object {_name_of(fn)}()"
                )
            return GroupTask(0, None, (), fn)
        if not callable(fn):
            raise TypeError(
                f"TaskGroup.spawn() takes an async function, a callable or a coroutine, "
                f"not {fn!r} (of type {type(fn).__name__})"
            )
        return GroupTask(0, fn, args, None)

    async def _run(self, task: GroupTask[T]) -> T:
        """The body of every task of the block: the work, under the error strategy."""
        retries = self._policy.retries if self._on_error == "retry" else 0
        attempt = 0
        while True:
            attempt += 1
            task.attempts = attempt
            try:
                return await task._invoke()
            except (Cancelled, GeneratorExit):
                raise
            except Exception as exc:
                if attempt <= retries and self._phase == _OPEN:
                    await self._policy.sleep(self._policy.delay(attempt))
                    continue
                note = f"in {task!r} of a zuki.TaskGroup"
                if attempt > 1:
                    note += f", after {attempt} attempts"
                exc.add_note(note)
                if self._on_error != "auto":
                    self._stop(skip=task)
                raise
            except BaseException as exc:
                # KeyboardInterrupt, SystemExit: stop everything and re-raise bare.
                with self._lock:
                    if self._fatal is None:
                        self._fatal = exc
                self._stop(skip=task)
                raise

    def _task_done(self, _handle: Any) -> None:
        with self._lock:
            self._live -= 1
            finished = self._live == 0 and self._body_done
        if finished:
            self._all_done.set()

    def _stop(self, skip: GroupTask[Any] | None = None) -> None:
        """Stop accepting tasks and cancel the others (any thread; idempotent)."""
        with self._lock:
            if self._phase == _OPEN:
                self._phase = _STOPPING
            handles = [t._handle for t in self._tasks if t._handle is not None and t is not skip]
        for handle in handles:
            if not handle.done():
                handle.cancel()

    # -- the block ----------------------------------------------------------------------

    async def __aenter__(self) -> TaskGroup:
        if self._entered:
            raise RuntimeError("a TaskGroup can be entered only once")
        self._executor = current_executor()
        with self._lock:
            self._entered = True
        if self._timeout is not None:
            self._watchdog = self._executor.spawn(self._watch(self._timeout))
        return self

    async def _watch(self, timeout: float) -> None:
        """Sleep until the deadline; stop the block, give it ``grace``, cancel the rest."""
        sleep = self._policy.sleep
        await sleep(timeout)
        with self._lock:
            if self._phase != _OPEN or (self._body_done and self._live == 0):
                return
            self._phase = _STOPPING
            self._timed_out = True
        if self._grace:
            await sleep(self._grace)
        self._stop()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc is not None:
            self._stop()  # the body failed or was cancelled: so do the tasks
        with self._lock:
            self._body_done = True
            finished = self._live == 0
        if finished:
            self._all_done.set()
        cancelled = isinstance(exc, GeneratorExit) or await self._wait_all()
        await self._close_watchdog()
        with self._lock:
            self._phase = _CLOSED
            channels = self._channels
            self._channels = []
        for ch in channels:
            ch.close()
        if isinstance(exc, GeneratorExit):
            return False
        return self._outcome(exc, cancelled)

    async def _wait_all(self) -> bool:
        """Wait for every task; ``True`` if this task was cancelled meanwhile."""
        cancelled = False
        while True:
            try:
                await self._all_done.wait()
                return cancelled
            except Cancelled:
                cancelled = True
                self._stop()

    async def _close_watchdog(self) -> None:
        watchdog = self._watchdog
        if watchdog is None:
            return
        watchdog.cancel()
        with contextlib.suppress(Cancelled):
            await watchdog

    def _outcome(self, body_exc: BaseException | None, cancelled: bool) -> bool:
        """Raise what the block ends with (see the class docstring); ``False`` lets the
        body's own exception propagate."""
        fatal = self._fatal
        if isinstance(body_exc, (KeyboardInterrupt, SystemExit)):
            return False
        if fatal is not None:
            raise fatal
        task_errors = [exc for _t, exc in self.errors()] if self._on_error != "auto" else []
        errors: list[Exception] = [e for e in task_errors if isinstance(e, Exception)]
        body_error = isinstance(body_exc, Exception) and not isinstance(body_exc, Cancelled)
        if body_error:
            assert isinstance(body_exc, Exception)
            errors.insert(0, body_exc)
        if errors:
            n = len(errors) - body_error
            raise ExceptionGroup(f"TaskGroup: {n} task(s) failed" if n else "TaskGroup", errors)
        if cancelled:
            raise Cancelled("the task running this TaskGroup was cancelled")
        if body_exc is not None:
            return False
        if self._timed_out and self._on_timeout == "error":
            raise TimeoutError(
                f"TaskGroup timed out after {self._timeout} s "
                f"({len(self.results())} of {len(self.tasks)} task(s) completed)"
            )
        return False

    def __repr__(self) -> str:
        phase = ("open", "stopping", "closed")[self._phase]
        return f"<TaskGroup {self._on_error} {phase}, {self._live} live task(s)>"


# --------------------------------------------------------------------------------------
# parallel_map
# --------------------------------------------------------------------------------------


def _map_chunk(fn: Callable[[T], R], chunk: list[T], sink: list[list[R]] | None) -> list[R]:
    out = [fn(item) for item in chunk]
    if sink is not None:
        sink.append(out)  # list.append is atomic: the completion order
    return out


def parallel_map(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    workers: int | None = None,
    chunksize: int | None = None,
    ordered: bool = True,
) -> list[R]:
    """``[fn(x) for x in items]`` computed in parallel on worker threads: a parallel block.

    For CPU-bound callables on the free-threaded build (on a GIL build it runs
    correctly but not faster). Inside a task it runs on the current executor, and the
    calling worker helps with the chunks while it waits (so it never deadlocks, even on
    one worker); elsewhere on a temporary ``WorkStealingExecutor(workers)`` that is shut
    down before it returns. Items go out in chunks of ``chunksize`` (default: about four
    chunks per worker, as ``multiprocessing.Pool.map`` does), one task per chunk, in one
    batch. ``ordered=False`` returns the results in the order chunks completed.

    Raises:
        ValueError: ``chunksize`` or ``workers`` < 1.
        BaseException: the first exception of ``fn`` (in item order if ``ordered``);
            the chunks not yet started are cancelled.
    """
    if chunksize is not None and chunksize < 1:
        raise ValueError(f"chunksize must be >= 1, not {chunksize}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, not {workers}")
    work = list(items)
    if not work:
        return []
    runner = current_runner()
    if runner is not None:
        return _map_on(
            runner.executor, fn, work, workers=workers, chunksize=chunksize, ordered=ordered
        )
    from zuki.runtime.work_stealing_executor import WorkStealingExecutor

    with WorkStealingExecutor(workers) as executor:
        return _map_on(executor, fn, work, workers=workers, chunksize=chunksize, ordered=ordered)


def _map_on(
    executor: Any,
    fn: Callable[[T], R],
    work: list[T],
    *,
    workers: int | None,
    chunksize: int | None,
    ordered: bool,
) -> list[R]:
    nworkers = workers or executor.config.worker_count
    size = chunksize or max(1, math.ceil(len(work) / (4 * nworkers)))
    chunks = [work[i : i + size] for i in range(0, len(work), size)]
    sink: list[list[R]] | None = None if ordered else []
    handles: list[JoinHandle[list[R]]] = executor.spawn_batch(
        functools.partial(_map_chunk, fn, chunk, sink) for chunk in chunks
    )
    try:
        results = [h.result() for h in handles]  # waits, helping when on a worker
        if sink is not None:
            results = sink  # every chunk appended before its handle completed
        return [value for chunk in results for value in chunk]
    finally:
        for h in handles:
            h.cancel()


# --------------------------------------------------------------------------------------
# stream
# --------------------------------------------------------------------------------------


class _Failed:
    """What a worker sends for an item that failed in ``on_error="auto"`` mode."""

    __slots__ = ()


_FAILED: Final = _Failed()


class _StreamCore(Generic[T]):
    """What a stream's tasks share: the source, the worker, the channels, the window.

    The tasks reference this core and never the :class:`Stream` the consumer holds, so
    dropping the ``Stream`` (an ``async for`` left by ``break``) can stop them.
    """

    def __init__(
        self,
        source: Iterable[T] | AsyncIterable[T],
        worker: Callable[[T], Any],
        *,
        workers: int,
        on_error: OnError,
        in_flight: int,
        policy: _RetryPolicy,
    ) -> None:
        self.source = source
        self.worker = worker
        self.workers = workers
        self.on_error = on_error
        self.policy = policy
        self.group = TaskGroup()  # the stream's tasks; item errors are handled here
        self.window = Semaphore(in_flight)  # items admitted and not yet handed out
        self.inputs: Channel[tuple[int, T]] = Channel(workers)
        self.outputs: Channel[tuple[int, Any]] = Channel(workers)
        self.errors: list[tuple[int, Any, BaseException]] = []
        self._active = workers
        self._active_lock = threading.Lock()

    async def start(self) -> None:
        await self.group.__aenter__()
        self.group.spawn(self._feed)
        for _ in range(self.workers):
            self.group.spawn(self._work)

    def abort(self) -> None:
        """Cancel the tasks and close the channels (any thread; never waits)."""
        self.group._stop()
        self.inputs.close()
        self.outputs.close()

    async def _feed(self) -> None:
        inputs = self.inputs
        window = self.window
        try:
            index = 0
            source = self.source
            if isinstance(source, AsyncIterable):
                async for item in source:
                    await window.acquire()
                    await inputs.send((index, item))
                    index += 1
            else:
                for item in source:
                    await window.acquire()
                    await inputs.send((index, item))
                    index += 1
        except ChannelClosed:
            return  # the workers stopped: the stream is ending
        finally:
            inputs.close()

    async def _work(self) -> None:
        try:
            async for index, item in self.inputs:
                value = await self._process(index, item)
                await self.outputs.send((index, value))
        except ChannelClosed:
            return  # another worker failed and closed the outputs: the stream is ending
        except BaseException:
            self.outputs.close()  # wake the consumer: the stream is stopping
            self.inputs.close()
            raise
        with self._active_lock:
            self._active -= 1
            last = self._active == 0
        if last:
            self.outputs.close()

    async def _process(self, index: int, item: T) -> Any:
        retries = self.policy.retries if self.on_error == "retry" else 0
        attempt = 0
        while True:
            attempt += 1
            try:
                return await _call(self.worker, (item,))
            except (Cancelled, GeneratorExit):
                raise
            except Exception as exc:
                if attempt <= retries:
                    await self.policy.sleep(self.policy.delay(attempt))
                    continue
                if self.on_error == "auto":
                    self.errors.append((index, item, exc))
                    return _FAILED
                exc.add_note(f"in zuki.stream() worker, item #{index}: {item!r}")
                raise


class Stream(Generic[R]):
    """The async iterator that :func:`stream` returns; see there.

    Also an async context manager: ``async with zuki.stream(...) as s: async for r in s``
    stops the workers when the block is left, and waits for them. A ``Stream`` left
    without that (``break`` out of a bare ``async for``) stops its workers when it is
    dropped, from a short-lived helper thread (a finalizer must not take the stream's
    locks: it may run inside one of their critical sections), without waiting.
    ``errors`` lists, in ``on_error="auto"`` mode, ``(index, item, exception)`` for
    each item that failed.

    Thread-safety: iterate it from one task at a time.
    """

    def __init__(self, core: _StreamCore[Any], *, ordered: bool) -> None:
        self._core = core
        self._ordered = ordered
        self._pending: dict[int, Any] = {}  # ordered mode: results that came early
        self._next = 0
        self._started = False
        self._finished = False

    @property
    def errors(self) -> list[tuple[int, Any, BaseException]]:
        """``(index, item, exception)`` of each item that failed (``on_error="auto"``)."""
        return self._core.errors

    def __aiter__(self) -> Stream[R]:
        return self

    async def __anext__(self) -> R:
        if self._finished:
            raise StopAsyncIteration
        core = self._core
        if not self._started:
            self._started = True
            await core.start()
        while True:
            if self._ordered and self._next in self._pending:
                value = self._pending.pop(self._next)
                self._next += 1
            else:
                try:
                    index, value = await core.outputs.recv()
                except ChannelClosed:
                    await self._finish()
                    raise StopAsyncIteration from None
                if self._ordered:
                    self._pending[index] = value
                    continue
            core.window.release()
            if value is not _FAILED:
                result: R = value
                return result

    async def _finish(self) -> None:
        """End the stream: wait for its tasks; raise the group's errors if any."""
        self._finished = True
        await self._core.group.__aexit__(None, None, None)

    async def aclose(self) -> None:
        """Stop the workers and wait for them (idempotent)."""
        if self._started and not self._finished:
            self._core.abort()
            await self._finish()
        self._finished = True

    async def __aenter__(self) -> Stream[R]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __del__(self) -> None:
        if getattr(self, "_started", False) and not self._finished:
            with contextlib.suppress(RuntimeError):  # interpreter shutting down
                threading.Thread(
                    target=self._core.abort, name="zuki-stream-abort", daemon=True
                ).start()


@overload
def stream(
    source: Iterable[T] | AsyncIterable[T],
    worker: Callable[[T], Awaitable[R]],
    *,
    workers: int = 4,
    ordered: bool = False,
    on_error: OnError = "stop",
    retries: int = 3,
    backoff: float | Backoff = 0.1,
    in_flight: int | None = None,
    sleep: SleepFn | None = None,
    rng: random.Random | None = None,
) -> Stream[R]: ...


@overload
def stream(
    source: Iterable[T] | AsyncIterable[T],
    worker: Callable[[T], R],
    *,
    workers: int = 4,
    ordered: bool = False,
    on_error: OnError = "stop",
    retries: int = 3,
    backoff: float | Backoff = 0.1,
    in_flight: int | None = None,
    sleep: SleepFn | None = None,
    rng: random.Random | None = None,
) -> Stream[R]: ...


def stream(
    source: Iterable[T] | AsyncIterable[T],
    worker: Callable[[T], Any],
    *,
    workers: int = 4,
    ordered: bool = False,
    on_error: OnError = "stop",
    retries: int = 3,
    backoff: float | Backoff = 0.1,
    in_flight: int | None = None,
    sleep: SleepFn | None = None,
    rng: random.Random | None = None,
) -> Stream[Any]:
    """``async for r in zuki.stream(source, worker, workers=4): ...``: stream workers.

    ``workers`` tasks take items from ``source`` (a sync or async iterable, read by a
    feeder task) and apply ``worker`` (an async function or a plain callable) to them;
    the results come out of the returned :class:`Stream` as they complete, or in
    source order with ``ordered=True``. At most ``in_flight`` items (default
    ``2 * workers``) are between the source and the consumer at once, so a slow
    consumer slows the source down (back-pressure) and memory stays bounded.

    ``on_error`` is a block's strategy applied per item: ``"stop"`` ends the stream
    with an ``ExceptionGroup`` of the failure at the next ``__anext__``; ``"auto"`` skips
    failed items and records them in ``Stream.errors``; ``"retry"`` retries an item
    (``retries``, ``backoff``, as in :class:`TaskGroup`) before it counts as failed as
    in ``"stop"``. An exception from ``source`` ends the stream the same way.

    Must be iterated inside a task. To leave early, use ``async with zuki.stream(...)
    as s`` (or ``await s.aclose()``), which stops the workers and waits for them; a
    dropped stream stops them without waiting.

    Raises:
        ValueError: ``workers`` or ``in_flight`` < 1, or a bad strategy.
    """
    _check_strategy(on_error)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, not {workers}")
    window = 2 * workers if in_flight is None else in_flight
    if window < 1:
        raise ValueError(f"in_flight must be >= 1, not {in_flight}")
    core = _StreamCore(
        source,
        worker,
        workers=workers,
        on_error=on_error,
        in_flight=window,
        policy=_make_policy(retries, backoff, sleep, rng),
    )
    return Stream(core, ordered=ordered)
