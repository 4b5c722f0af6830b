"""SingleThreadedExecutor: every task on one dedicated thread, with three priorities.

Prior art: tokio's ``current_thread`` scheduler (one run queue, a thread that parks when
it is empty), asyncio's event loop (one thread runs everything, so tasks never race one
another), ``ThreadPoolExecutor(max_workers=1)`` for the submit-from-anywhere contract,
and the seeds' single-threaded executor with priority queues.

Design
======

The executor owns one thread, started in the constructor. It has the same interface as
:class:`~zuki.WorkStealingExecutor` (both implement ``zuki.runtime.executor.Executor``),
so code switches between them by changing one line, plus a ``priority`` argument on
``spawn`` and ``spawn_batch``: :class:`Priority` ``HIGH``, ``NORMAL`` (the default) or
``LOW``, or the strings ``"high"``, ``"normal"``, ``"low"``.

Three FIFO deques, one per priority. The thread always takes the oldest task of the
highest non-empty priority: strict priority, so a steady stream of high-priority tasks
starves lower ones (that is what priorities are for; use ``NORMAL`` for everything else).
A task keeps its priority for life: a coroutine woken or yielding goes back to the end
of its own priority's deque, behind the tasks already waiting there, so ``yield_now``
lets every other ready task of its priority run first.

Queues and parking: only the executor's thread pops. Its own pushes (tasks spawned or
woken by a running task) are plain ``deque.append``s. Pushes from other threads take
``lock``, append, and read ``sleeping``; the thread sets ``sleeping`` under the same lock
only after finding every deque empty under it, and then waits on its ``Event`` (one
token, so a notify that lands before the wait is not lost). Hence a foreign push either
happens before the thread's check (the check sees it) or after it (the push sees
``sleeping`` and notifies): no lost wake-up.

Waiting on a handle from inside a task (``result()``, ``block_on``, ``zuki.join``) runs
other tasks meanwhile, like a work-stealing worker's helping: with one thread, blocking
would deadlock as soon as the awaited task is queued behind the waiter. ``zuki.join``
runs both callables here, one after the other (each in its own context copy).

Shutdown, exit, cancellation and errors follow ``work_stealing_executor.py``: closed for
outside submissions, drain until quiescent (no queued task, no suspended task, the
thread not waiting inside a task), ``cancel_futures`` cancels what is queued and throws
``Cancelled`` into suspended coroutines, ``shutdown(wait=True)`` from the executor's own
thread raises ``RuntimeError``, interpreter exit runs queued work and then cancels tasks
nobody can wake any more.

Thread-safety: every public method may be called from any thread.
"""

from __future__ import annotations

import contextlib
import enum
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from contextvars import copy_context
from typing import TYPE_CHECKING, Any, Final, TypeVar

from zuki.concurrent.event import Event
from zuki.runtime.errors import (
    SHUTDOWN_MESSAGE,
    ExecutorError,
    ExecutorShutdownError,
    ThreadSpawnError,
)
from zuki.runtime.executor import Executor, ExecutorConfig, register_live, start_thread
from zuki.runtime.executor import unregister_live as _unregister_live
from zuki.runtime.metrics import ExecutorMetrics, WorkerCounters
from zuki.runtime.task import (
    DONE_OK,
    JoinHandle,
    PollableTask,
    make_task,
    tls,
)
from zuki.runtime.waker import TaskWakerData, WakerData

if TYPE_CHECKING:
    from zuki.runtime.future import Future

__all__ = ["Priority", "SingleThreadedExecutor"]

T = TypeVar("T")
A = TypeVar("A")
B = TypeVar("B")

#: Rounds of throwing ``Cancelled`` into never-woken tasks at exit before closing them.
EXIT_CANCEL_ROUNDS: Final = 2


class Priority(enum.IntEnum):
    """Task priorities of a :class:`SingleThreadedExecutor` (lower value runs first)."""

    HIGH = 0
    NORMAL = 1
    LOW = 2


def _priority(value: Priority | str | int) -> Priority:
    if isinstance(value, str):
        try:
            return Priority[value.upper()]
        except KeyError:
            pass
    else:
        try:
            return Priority(value)
        except ValueError:
            pass
    raise ValueError(f"priority must be 'high', 'normal', 'low' or a Priority, got {value!r}")


class _PriorityScheduler:
    """The ``Scheduler`` (task.py) of one priority: wakes go to that priority's deque."""

    __slots__ = ("queue", "runner", "suspended")

    def __init__(self, runner: _Runner, queue: deque[JoinHandle[Any]]) -> None:
        self.runner = runner
        self.queue = queue
        self.suspended = runner.suspended

    def schedule(self, task: PollableTask[Any]) -> None:
        self.runner.push(self.queue, task, woken=True)

    def schedule_back(self, task: PollableTask[Any]) -> None:
        self.runner.push(self.queue, task, woken=True)  # the deques are FIFO already

    def waker_data(self, task: PollableTask[Any]) -> WakerData:
        return TaskWakerData(self.runner.executor, task)


class _Runner(WorkerCounters):
    """The executor's thread: its queues, parking, helping and lifecycle state.

    Thread ownership: ``queues`` are popped by the runner's thread only; foreign pushes,
    ``sleeping``, ``closed``, ``draining``, ``terminate`` and ``helpers_parked`` are
    written under ``lock``; counters and ``depth`` by the runner's thread only.
    """

    __slots__ = (
        "cancelling",
        "closed",
        "config",
        "depth",
        "draining",
        "event",
        "executor",
        "exit_mode",
        "exit_rounds",
        "fatal",
        "helpers_parked",
        "index",
        "lock",
        "park_timeout",
        "queues",
        "scheduler",
        "schedulers",
        "sleeping",
        "suspended",
        "terminate",
        "terminated",
        "thread",
    )

    def __init__(self, executor: SingleThreadedExecutor, config: ExecutorConfig) -> None:
        super().__init__()
        self.executor = executor
        self.config = config
        self.index = 0
        self.queues: tuple[deque[JoinHandle[Any]], ...] = (deque(), deque(), deque())
        self.suspended: set[PollableTask[Any]] = set()
        self.schedulers = tuple(_PriorityScheduler(self, q) for q in self.queues)
        self.scheduler = self.schedulers[Priority.NORMAL]
        self.lock = threading.Lock()
        self.event = Event()
        self.park_timeout = config.park_timeout
        self.sleeping = False
        self.closed = False
        self.draining = False
        self.terminate = False
        self.cancelling = False
        self.exit_mode = False
        self.exit_rounds = 0
        self.helpers_parked = 0
        self.depth = 0
        self.fatal: BaseException | None = None
        self.terminated = threading.Event()
        self.thread: threading.Thread | None = None

    # -- queueing ---------------------------------------------------------------------

    def push(self, queue: deque[JoinHandle[Any]], task: JoinHandle[Any], *, woken: bool) -> None:
        """Queue ``task`` on ``queue`` from any thread (module docstring)."""
        if tls.runner is self:
            if self.closed and not woken:
                raise ExecutorShutdownError(SHUTDOWN_MESSAGE)
            queue.append(task)
            return
        with self.lock:
            refused = self.terminate or (self.closed and not woken)
            if not refused:
                queue.append(task)
                wake = self.sleeping
                self.sleeping = False
        if refused:
            if woken:
                task.close_unfinished()  # type: ignore[attr-defined]
                return
            raise ExecutorShutdownError(SHUTDOWN_MESSAGE)
        if wake:
            self.event.notify()

    def push_batch(self, queue: deque[JoinHandle[Any]], tasks: list[JoinHandle[Any]]) -> None:
        """Queue new tasks in one step (raises after shutdown, from outside)."""
        if tls.runner is self:
            queue.extend(tasks)
            return
        with self.lock:
            if self.closed:
                raise ExecutorShutdownError(SHUTDOWN_MESSAGE)
            queue.extend(tasks)
            wake = self.sleeping
            self.sleeping = False
        if wake:
            self.event.notify()

    def spawn_local(self, task: JoinHandle[Any]) -> None:
        """``zuki.spawn`` from a running task: normal priority, or the task's own."""
        if self.terminate:
            task.cancel()
            raise ExecutorShutdownError(SHUTDOWN_MESSAGE)
        sched = getattr(task, "_sched", None)
        queue = sched.queue if isinstance(sched, _PriorityScheduler) else self.scheduler.queue
        queue.append(task)

    def _next(self) -> JoinHandle[Any] | None:
        for queue in self.queues:
            if queue:
                try:
                    task = queue.popleft()
                except IndexError:  # shutdown(cancel_futures=True) drained it meanwhile
                    continue
                self.local_pops += 1
                return task
        return None

    def _poll(self, task: JoinHandle[Any]) -> None:
        self.tasks_polled += 1
        if self.cancelling:
            task.cancel()
        if task.run(self):
            sched = task._sched  # type: ignore[attr-defined]
            sched.queue.append(task)

    # -- the thread -------------------------------------------------------------------

    def main(self) -> None:
        tls.runner = self
        try:
            while True:
                task = self._next()
                if task is not None:
                    self._poll(task)
                elif not self._park():
                    return
        except BaseException as exc:
            self.fail(exc)
        finally:
            tls.runner = None

    def _park(self) -> bool:
        """Sleep until there is work; ``False`` when the executor terminated."""
        with self.lock:
            if any(self.queues):
                return True
            state = self._quiescence_locked()
            if state == _QUIESCENT:
                self.terminate = True
            else:
                self.sleeping = True
        if state == _QUIESCENT:
            self._finish_termination()
            return False
        if state == _STUCK:
            with self.lock:
                self.sleeping = False
            self._cancel_stuck()
            return True
        self.parks += 1
        self.event.wait(self.park_timeout)
        with self.lock:
            self.sleeping = False
        return not self.terminate

    def _quiescence_locked(self) -> int:
        if not self.draining or self.terminate or self.helpers_parked or any(self.queues):
            return _BUSY
        if self.suspended:
            return _STUCK if self.exit_mode else _BUSY
        return _QUIESCENT

    def _cancel_stuck(self) -> None:
        self.exit_rounds += 1
        for task in self.suspended.copy():
            if self.exit_rounds <= EXIT_CANCEL_ROUNDS:
                task.cancel()
            else:
                self.suspended.discard(task)
                task.close_unfinished()

    def _finish_termination(self) -> None:
        self.event.shutdown()
        _unregister_live(self.executor)
        self.terminated.set()

    def fail(self, exc: BaseException) -> None:
        with self.lock:
            if self.fatal is None:
                self.fatal = exc
            self.closed = self.draining = self.terminate = True
        self._finish_termination()

    def check_quiescent(self) -> None:
        """Called by ``shutdown``: terminate now if the executor is idle already."""
        with self.lock:
            state = self._quiescence_locked()
            sleeping = self.sleeping
        if state in (_QUIESCENT, _STUCK) and sleeping:
            # The thread sleeps: wake it to make the decision (it owns termination).
            self.event.notify()

    # -- helping ----------------------------------------------------------------------

    def _next_newest(self) -> JoinHandle[Any] | None:
        """Helping takes the *newest* task of the highest priority (scheduler.md §8.7:
        helping with the oldest nests deepest)."""
        for queue in self.queues:
            if queue:
                try:
                    task = queue.pop()
                except IndexError:
                    continue
                self.local_pops += 1
                return task
        return None

    def help_until(self, handle: JoinHandle[Any], timeout: float | None) -> bool:
        """Run other tasks until ``handle`` is done; ``False`` if ``timeout`` passed.

        No depth cap: with one thread, blocking instead of helping deadlocks for sure,
        while unbounded nesting ends in a ``RecursionError`` raised in the task.
        """
        if handle._st >= DONE_OK:
            return True
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        self.depth += 1
        try:
            while handle._st < DONE_OK:
                task = self._next_newest()
                if task is not None:
                    self._poll(task)
                    continue
                if deadline is not None and time.monotonic() >= deadline:
                    return False
                self._park_helping(handle, deadline)
            return True
        finally:
            self.depth -= 1

    def _park_helping(self, handle: JoinHandle[Any], deadline: float | None) -> None:
        entry = self.event.notify
        if not handle.register(entry):
            return
        try:
            with self.lock:
                if any(self.queues):
                    return
                self.sleeping = True
                self.helpers_parked += 1
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            if self.park_timeout is not None:
                remaining = (
                    self.park_timeout if remaining is None else min(remaining, self.park_timeout)
                )
            self.parks += 1
            self.event.wait(remaining)
            with self.lock:
                self.sleeping = False
                self.helpers_parked -= 1
        finally:
            handle.unregister(entry)

    def join(self, fn_a: Callable[[], A], fn_b: Callable[[], B]) -> tuple[A, B]:
        """``zuki.join``: both callables, one after the other, each in a context copy."""
        try:
            a = copy_context().run(fn_a)
        except BaseException:
            with contextlib.suppress(BaseException):  # fn_a's exception wins (Rayon's rule)
                copy_context().run(fn_b)
            raise
        return a, copy_context().run(fn_b)


_BUSY: Final = 0
_QUIESCENT: Final = 1
_STUCK: Final = 2


class SingleThreadedExecutor(Executor):
    """Runs every task on one dedicated thread, by priority; see the module docstring.

    ``SingleThreadedExecutor(*, config=None)``: of the config, the thread factory,
    stack size, name prefix and park timeout apply.

    Raises:
        ThreadSpawnError: the executor's thread could not be started.
    """

    def __init__(self, *, config: ExecutorConfig | None = None) -> None:
        if config is None:
            config = ExecutorConfig(workers=1)
        self._config = config
        self._runner = runner = _Runner(self, config)
        self._scheduler = runner.scheduler
        try:
            runner.thread = start_thread(
                config, runner.main, f"{config.thread_name_prefix}-single-{id(self):x}"
            )
        except BaseException as exc:
            raise ThreadSpawnError(f"could not start the executor thread: {exc!r}") from exc
        register_live(self)

    @property
    def config(self) -> ExecutorConfig:
        return self._config

    def __repr__(self) -> str:
        r = self._runner
        state = "terminated" if r.terminate else "shut down" if r.closed else "running"
        return f"<SingleThreadedExecutor {state}>"

    # -- spawning with priorities -----------------------------------------------------

    def _check_open(self) -> None:
        if self._runner.closed:
            raise ExecutorShutdownError(SHUTDOWN_MESSAGE)

    def spawn(
        self,
        task: Coroutine[Any, Any, T] | Future[T] | Callable[[], T],
        *,
        priority: Priority | str = Priority.NORMAL,
    ) -> JoinHandle[T]:
        """Spawn ``task`` at ``priority`` (``Priority`` or "high"/"normal"/"low").

        Raises:
            TypeError: ``task`` is not a coroutine, ``zuki.Future`` or callable.
            ValueError: unknown priority.
            ExecutorShutdownError: after ``shutdown()``.
        """
        prio = _priority(priority)
        self._check_open()
        sched = self._runner.schedulers[prio]
        handle = make_task(task, sched)
        try:
            self._runner.push(sched.queue, handle, woken=False)
        except BaseException:
            handle.cancel()
            raise
        return handle

    def spawn_batch(
        self, tasks: Iterable[Any], *, priority: Priority | str = Priority.NORMAL
    ) -> list[JoinHandle[Any]]:
        """``spawn_batch`` at ``priority``; one synchronization step for the batch."""
        prio = _priority(priority)
        self._check_open()
        sched = self._runner.schedulers[prio]
        handles: list[JoinHandle[Any]] = []
        try:
            for item in tasks:
                handles.append(make_task(item, sched))
            if handles:
                self._runner.push_batch(sched.queue, handles)
        except BaseException:
            for h in handles:
                h.cancel()
            raise
        return handles

    def _schedule_new(self, task: JoinHandle[Any]) -> None:
        self._runner.push(self._runner.scheduler.queue, task, woken=False)

    def _schedule_batch(self, tasks: list[JoinHandle[Any]]) -> None:
        self._runner.push_batch(self._runner.scheduler.queue, tasks)

    # -- lifecycle --------------------------------------------------------------------

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting tasks; see the module docstring.

        Raises:
            RuntimeError: ``wait=True`` from the executor's own thread.
            ExecutorError: a scheduler error stopped the executor (chained).
        """
        runner = self._runner
        with runner.lock:
            runner.closed = True
            runner.draining = True
            if cancel_futures:
                runner.cancelling = True
        if cancel_futures:
            self._cancel_queued()
        runner.check_quiescent()
        if not wait:
            return
        if tls.runner is runner:
            raise RuntimeError(
                "shutdown(wait=True) called from the executor's own thread: the shutdown "
                "has started, but this thread cannot wait for it"
            )
        runner.terminated.wait()
        thread = runner.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        if runner.fatal is not None:
            raise ExecutorError("the executor thread stopped after a scheduler error") from (
                runner.fatal
            )

    def _cancel_queued(self) -> None:
        runner = self._runner
        for queue in runner.queues:
            restart: list[JoinHandle[Any]] = []
            while True:
                try:
                    task = queue.popleft()
                except IndexError:
                    break
                task.cancel()
                if not task.done():
                    restart.append(task)
            for task in restart:
                runner.push(queue, task, woken=True)
        for task in runner.suspended.copy():
            task.cancel()

    def shutdown_at_exit(self) -> None:
        runner = self._runner
        with runner.lock:
            runner.exit_mode = True
        self.shutdown(wait=True)

    def run(self) -> None:
        self._runner.terminated.wait()

    def metrics(self) -> ExecutorMetrics:
        runner = self._runner
        return ExecutorMetrics.collect(
            (runner.snapshot(0),),
            threads_started=1,
            failed_thread_starts=0,
            global_queue_len=sum(len(q) for q in runner.queues),
            suspended_tasks=len(runner.suspended),
            live_threads=0 if runner.terminated.is_set() else 1,
        )
