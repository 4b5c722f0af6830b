"""Tasks: the state machine that runs each task exactly once at a time, and JoinHandle.

Prior art: tokio's task state word (``runtime/task/state.rs``: RUNNING, COMPLETE,
NOTIFIED, CANCELLED bits, ``transition_to_notified_by_val``, ``harness.rs`` re-queueing a
task notified while it ran); asyncio's ``Task.__step`` for driving a coroutine; CPython's
``concurrent.futures.Future`` for the handle's contract.

Why a state machine
===================

Resuming one coroutine from two threads at once can crash 3.13t (the "generator already
executing" guard is not atomic there), and queueing a task twice would run it twice. So
every task carries a small state, changed only under the task's own lock:

======================  ==============================================================
``NEW``                 queued, never run (cancel() still wins outright)
``IDLE``                started, suspended on a future, in no queue
``SCHEDULED``           started, woken or yielded, in exactly one queue
``RUNNING``             being stepped by one thread
``NOTIFIED``            being stepped, and woken meanwhile: the runner re-queues it
``DONE_OK``             finished with a value
``DONE_ERR``            finished with an exception (``BaseException`` included)
``CANCELLED``           finished by cancellation
======================  ==============================================================

Transitions, and who makes them:

* spawn: creates the task ``NEW`` and queues it (the only queueing of a new task);
* runner (the thread that popped the task): ``NEW``/``SCHEDULED`` -> ``RUNNING``; after
  a step ``RUNNING`` -> ``IDLE`` (suspended), ``-> SCHEDULED`` (yielded; the runner
  re-queues it), ``NOTIFIED -> SCHEDULED`` (woken while running; re-queued), or
  ``-> DONE_*``/``CANCELLED``;
* wake (any thread): ``IDLE -> SCHEDULED`` and queue it; ``RUNNING -> NOTIFIED``;
  nothing in any other state. This is the only place a started task is queued, and it
  happens only from ``IDLE``, so a task is in at most one queue at a time. A wake from a
  leaf future's waker queues the task at the front of its worker (message passing); a
  wake because an awaited ``JoinHandle`` finished (``wake_joiner``) queues it at the back,
  so a parent awaiting many children resumes once, not once per child;
* cancel (any thread): ``NEW -> CANCELLED`` at once; for a started coroutine or future
  task, set the cancel request and wake it: its next step throws ``Cancelled`` into the
  coroutine (or drops the future) instead of resuming it. A running callable cannot be
  cancelled (``cancel()`` returns ``False``, as ``concurrent.futures`` does).

The lock is a ``threading.Lock`` per task (``_thread.allocate_lock``), not a ctypes
compare-and-swap: an uncontended acquire/release pair costs about 50-100 ns, a ctypes
CAS about ten times that. A callable task takes it twice (start, finish); a coroutine
step three times. Lock striping was rejected: ``concurrent.futures.wait`` acquires every
future's ``_condition`` in ``id`` order, and two futures sharing a stripe would deadlock
a non-reentrant lock, or two waiters lock-order-invert on reentrant ones.

JoinHandle
==========

The task object *is* its ``JoinHandle``: one allocation per spawn instead of two. A
``JoinHandle`` is a ``concurrent.futures.Future`` (``isinstance`` holds, and
``concurrent.futures.wait``/``as_completed`` work), but it never runs the base class's
``__init__`` (whose ``Condition`` costs more than the whole task). Instead it provides
the three attributes those functions use: ``_condition`` (the task lock, which is what
guards the state), ``_state`` (the ``concurrent.futures`` state names, computed), and
``_waiters`` (the list of completion entries, created on demand under the lock).

Completion entries are called once, outside the lock, by the thread that completes the
task: ``concurrent.futures`` waiter objects get ``add_result``/``add_exception``/
``add_cancelled``; everything else is a plain callable (a blocked thread's latch
release, a waiting task's wake, a helping worker's unpark, a done-callback wrapper). The
list itself stays in place after completion, because ``as_completed`` removes its waiter
later; the completer iterates a copy taken under the lock, so a waiter installed after
completion is never notified twice.

``result()`` reads the outcome without the lock once the state says finished:
``concurrent.futures.wait`` calls ``exception()`` while it holds ``_condition`` (our
non-reentrant lock), and a finished task's value never changes. The completer stores
``_value`` before ``_st``; on 3.13t a slot store is a release store and a slot load an
atomic (seq_cst) load (``Python/structmember.c``), and with a GIL they are serialized
anyway, so a reader that sees the final state sees the value.

``result()`` from a thread zuki does not own blocks on a private latch (a locked
``Lock`` the completer releases). From a worker thread it *helps* instead: the worker
runs other tasks until the handle completes (``worker_thread.py``), so nested
submit-and-wait never deadlocks the pool.

Contexts
========

Each task runs in its own ``contextvars.Context``, copied from the spawner's context at
spawn (asyncio's rule), so a task never sees what another task set, and a child sees
what its parent had set when it spawned it. Coroutine steps all run in the task's one
context, so ``ContextVar.set`` in one step is visible in the next.
"""

from __future__ import annotations

import concurrent.futures
import concurrent.futures._base as _cf_base
import contextlib
import logging
import threading
import types
from _thread import allocate_lock
from collections.abc import Callable, Coroutine
from contextvars import Context as _CvContext
from contextvars import copy_context
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar

from zuki.runtime.errors import Cancelled
from zuki.runtime.future import (
    PENDING,
    YIELD,
    Context,
    Future,
    Poll,
    Ready,
    not_awaitable_error,
)
from zuki.runtime.waker import Waker, WakerData

if TYPE_CHECKING:
    from collections.abc import Generator

__all__ = ["JoinHandle"]

T = TypeVar("T")

LOGGER = logging.getLogger("zuki")

# Task states (module docstring). Ordered: every finished state is >= DONE_OK.
NEW: Final = 0
IDLE: Final = 1
SCHEDULED: Final = 2
RUNNING: Final = 3
NOTIFIED: Final = 4
DONE_OK: Final = 5
DONE_ERR: Final = 6
CANCELLED: Final = 7

STATE_NAMES: Final = (
    "new",
    "idle",
    "scheduled",
    "running",
    "notified",
    "finished",
    "failed",
    "cancelled",
)

_CF_STATES: Final = (
    _cf_base.PENDING,
    _cf_base.PENDING,
    _cf_base.PENDING,
    _cf_base.RUNNING,
    _cf_base.RUNNING,
    _cf_base.FINISHED,
    _cf_base.FINISHED,
    _cf_base.CANCELLED_AND_NOTIFIED,
)

_CfWaiter: Final = _cf_base._Waiter

# What a step returns to ``run``.
_STEP_DONE: Final = 0
_STEP_PENDING: Final = 1
_STEP_YIELDED: Final = 2


class Runner(Protocol):
    """A thread that runs tasks (a work-stealing worker, a single-threaded executor).

    ``JoinHandle.result()`` called on a runner's thread asks the runner to help.
    """

    @property
    def executor(self) -> Any:
        """The public executor this runner belongs to."""

    @property
    def scheduler(self) -> Any:
        """The scheduler new tasks spawned on this runner's thread belong to."""

    def help_until(self, handle: JoinHandle[Any], timeout: float | None) -> bool:
        """Run other tasks until ``handle`` is done; ``False`` on timeout."""

    def spawn_local(self, task: JoinHandle[Any]) -> None:
        """Queue a new task of this runner's executor from inside one of its tasks."""


class Scheduler(Protocol):
    """What a started (pollable) task needs from its executor."""

    suspended: set[PollableTask[Any]]

    def schedule(self, task: PollableTask[Any]) -> None:
        """Queue a woken task (it is ``SCHEDULED`` already)."""

    def schedule_back(self, task: PollableTask[Any]) -> None:
        """Queue a woken task behind the tasks already queued (a joiner; see
        ``PollableTask.wake_joiner``)."""

    def waker_data(self, task: PollableTask[Any]) -> WakerData:
        """The waker data for ``task``'s wakers."""


class _Local(threading.local):
    runner: Runner | None = None
    # The reactor's driver thread while it dispatches one turn: wakes of work-stealing
    # tasks are collected here and handed over per pool in one step (Pool.schedule).
    batch: dict[Any, list[Any]] | None = None


#: Per-thread: the runner whose thread this is (``None`` on threads zuki does not own).
tls: Final = _Local()


def current_runner() -> Runner | None:
    """The runner of the calling thread, or ``None``."""
    return tls.runner


class _DoneCallback:
    """A completion entry that calls ``fn(handle)`` and logs what it raises."""

    __slots__ = ("fn", "handle")

    def __init__(self, fn: Callable[[Any], object], handle: JoinHandle[Any]) -> None:
        self.fn = fn
        self.handle = handle

    def __call__(self) -> None:
        try:
            self.fn(self.handle)
        except BaseException:
            # concurrent.futures logs and goes on; so do we. A callback must never take
            # down the worker that completed the task.
            LOGGER.exception("exception calling callback for %r", self.handle)


class JoinHandle(concurrent.futures.Future[T], Future[T]):
    """The handle of a spawned task: a ``concurrent.futures.Future`` and a ``zuki.Future``.

    ``await handle`` (in a task), ``handle.result(timeout)``, ``exception(timeout)``,
    ``done()``, ``cancelled()``, ``running()``, ``cancel()``, ``add_done_callback(fn)``.
    A handle is created by ``spawn``/``submit``/``spawn_batch``, never directly.

    Thread-safety: every method may be called from any thread. ``result()`` from a
    worker thread of a zuki executor runs other tasks while it waits.
    """

    __slots__ = ("_entries", "_lock", "_st", "_value")

    _st: int
    _lock: Any
    _value: Any
    _entries: list[Any] | None

    def __init__(self) -> None:
        raise TypeError("JoinHandle objects are made by spawn(), submit() and spawn_batch()")

    # -- inspection ---------------------------------------------------------------------

    def done(self) -> bool:
        """Whether the task finished (with a value, an exception, or cancelled)."""
        return self._st >= DONE_OK

    def cancelled(self) -> bool:
        """Whether the task finished by cancellation."""
        return self._st == CANCELLED

    def running(self) -> bool:
        """Whether a thread is stepping the task right now."""
        st = self._st
        return st in (RUNNING, NOTIFIED)

    @property
    def state(self) -> str:
        """The task state, for debugging: new, idle, scheduled, running, ..."""
        return STATE_NAMES[self._st]

    # -- results ------------------------------------------------------------------------

    def result(self, timeout: float | None = None) -> T:
        """The task's value; waits up to ``timeout`` seconds (``None``: forever).

        Raises:
            TimeoutError: the task did not finish in time.
            Cancelled: the task was cancelled.
            BaseException: whatever the task raised (``KeyboardInterrupt`` and
                ``SystemExit`` included: they are re-raised here, in the waiting thread).
        """
        if self._st < DONE_OK:
            self._wait(timeout)
        # No lock: concurrent.futures.wait calls exception() with _condition (our lock)
        # held. A finished task's _value never changes, and it was stored before _st
        # (release store of an object slot; our load of _st is an acquire on 3.13t).
        st = self._st
        value = self._value
        if st == DONE_OK:
            return value  # type: ignore[no-any-return]
        try:
            raise value
        finally:
            value = None  # no reference cycle through the traceback

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The task's exception, or ``None`` if it returned a value.

        Raises:
            TimeoutError: the task did not finish in time.
            Cancelled: the task was cancelled.
        """
        if self._st < DONE_OK:
            self._wait(timeout)
        st = self._st  # no lock: see result()
        value = self._value
        if st == DONE_OK:
            return None
        if st == CANCELLED:
            raise value
        return value  # type: ignore[no-any-return]

    def outcome(self) -> tuple[int, Any]:
        """``(state, value-or-exception)`` of a finished task (no lock: see result())."""
        return self._st, self._value

    def __await__(self) -> Generator[Any, Any, T]:
        st = self._st
        if st < DONE_OK:
            # The driver registers the awaiting task and sends the value back in.
            value: T = yield self
            return value
        if st == DONE_OK:
            return self._value  # type: ignore[no-any-return]
        return self.result()  # raises

    def poll(self, cx: Context) -> Poll[T]:
        """``Poll.ready(value)`` once the task finished (raises its error); else
        registers ``cx.waker`` to be woken at completion."""
        if self.register(cx.waker.wake_by_ref):
            return PENDING
        return Ready(self.result())

    def _wait(self, timeout: float | None) -> None:
        """Return once the task is done; ``TimeoutError`` after ``timeout`` seconds."""
        runner = tls.runner
        if runner is not None:
            if not runner.help_until(self, timeout):
                raise TimeoutError
            return
        latch = allocate_lock()
        latch.acquire()
        release = latch.release
        if not self.register(release):
            return
        if timeout is None:
            latch.acquire()
            return
        if latch.acquire(timeout=max(timeout, 0.0)):
            return
        self.unregister(release)
        if self._st < DONE_OK:
            raise TimeoutError

    # -- completion entries -------------------------------------------------------------

    def register(self, entry: Callable[[], object]) -> bool:
        """Add ``entry`` to be called at completion; ``False`` (not added) if done."""
        lock = self._lock
        lock.acquire()
        if self._st >= DONE_OK:
            lock.release()
            return False
        entries = self._entries
        if entries is None:
            self._entries = [entry]
        else:
            entries.append(entry)
        lock.release()
        return True

    def unregister(self, entry: Callable[[], object]) -> None:
        """Remove ``entry`` if it is still registered (e.g. after a timed-out wait)."""
        lock = self._lock
        lock.acquire()
        entries = self._entries
        if entries is not None:
            with contextlib.suppress(ValueError):
                entries.remove(entry)
        lock.release()

    def add_done_callback(self, fn: Callable[[concurrent.futures.Future[T]], object]) -> None:
        """Call ``fn(handle)`` when the task finishes, in the thread that finishes it;
        at once, in the calling thread, if it already has. Exceptions are logged."""
        entry = _DoneCallback(fn, self)
        if not self.register(entry):
            entry()

    def _finish(self, st: int, value: Any) -> None:
        """Publish the outcome and fire the completion entries (once)."""
        lock = self._lock
        lock.acquire()
        self._value = value
        self._st = st
        entries = self._entries
        snapshot = entries[:] if entries else None
        lock.release()
        if snapshot is not None:
            self._fire(st, snapshot)

    def _fire(self, st: int, entries: list[Any]) -> None:
        for entry in entries:
            if isinstance(entry, _CfWaiter):
                if st == DONE_OK:
                    entry.add_result(self)
                elif st == DONE_ERR:
                    entry.add_exception(self)
                else:
                    entry.add_cancelled(self)
            else:
                entry()

    def _finish_exc(self, exc: BaseException) -> None:
        self._finish(CANCELLED if isinstance(exc, Cancelled) else DONE_ERR, exc)

    # -- cancellation -------------------------------------------------------------------

    def cancel(self) -> bool:
        """Cancel the task if it can be; see the module docstring.

        Returns ``True`` if the task was cancelled (or already had been), or, for a
        started coroutine or future task, if the cancellation request was delivered;
        ``False`` if it finished already or is a callable already running.
        """
        lock = self._lock
        lock.acquire()
        st = self._st
        if st == NEW:
            self._value = Cancelled()
            self._st = CANCELLED
            entries = self._entries
            snapshot = entries[:] if entries else None
            lock.release()
            self._release_work()
            if snapshot is not None:
                self._fire(CANCELLED, snapshot)
            return True
        if st >= DONE_OK:
            lock.release()
            return st == CANCELLED
        return self._cancel_started(st)

    def _cancel_started(self, st: int) -> bool:
        """``cancel()`` of a started task, called with the lock held (must release it)."""
        self._lock.release()
        return False

    def _release_work(self) -> None:
        """Drop the references to the work (callable, coroutine) of a finished task."""

    # -- the runner's side --------------------------------------------------------------

    def run(self, runner: Any) -> bool:
        """Step the task once on the calling thread; ``True`` if it must be re-queued.

        Called only by the thread that took the task out of a queue.
        """
        raise NotImplementedError

    # -- concurrent.futures compatibility ----------------------------------------------

    @property
    def _condition(self) -> Any:  # type: ignore[override]
        return self._lock

    @property
    def _state(self) -> str:  # type: ignore[override]
        return _CF_STATES[self._st]

    @property
    def _waiters(self) -> list[Any]:  # type: ignore[override]
        # Called by concurrent.futures with _condition (our lock) held.
        entries = self._entries
        if entries is None:
            entries = self._entries = []
        return entries

    def set_running_or_notify_cancel(self) -> bool:
        raise RuntimeError("a JoinHandle is run by its executor, not by the caller")

    def set_result(self, result: T) -> None:
        raise RuntimeError("a JoinHandle is completed by its task, not by the caller")

    def set_exception(self, exception: BaseException | None) -> None:
        raise RuntimeError("a JoinHandle is completed by its task, not by the caller")

    def __repr__(self) -> str:
        st = self._st
        if st == DONE_OK:
            detail = f" returned {type(self._value).__name__}"
        elif st == DONE_ERR:
            detail = f" raised {type(self._value).__name__}"
        else:
            detail = ""
        return f"<{type(self).__name__} at {id(self):#x} state={STATE_NAMES[st]}{detail}>"


class CallTask(JoinHandle[T]):
    """A task that calls ``fn(*args)`` once, in its own context."""

    __slots__ = ("_args", "_ctx", "_fn")

    def __init__(self, fn: Callable[..., T], args: tuple[Any, ...], ctx: _CvContext) -> None:
        self._fn: Callable[..., T] | None = fn
        self._args = args
        self._ctx = ctx
        self._st = NEW
        self._lock = allocate_lock()
        self._entries = None

    def run(self, runner: Any) -> bool:
        lock = self._lock
        lock.acquire()
        if self._st != NEW:
            lock.release()
            return False
        self._st = RUNNING
        lock.release()
        fn = self._fn
        self._fn = None
        try:
            value = self._ctx.run(fn, *self._args)  # type: ignore[arg-type]
        except BaseException as exc:
            self._finish(CANCELLED if isinstance(exc, Cancelled) else DONE_ERR, exc)
            return False
        # _finish(DONE_OK, value), inlined: this is the hot path of every callable task.
        lock.acquire()
        self._value = value
        self._st = DONE_OK
        entries = self._entries
        snapshot = entries[:] if entries else None
        lock.release()
        if snapshot is not None:
            self._fire(DONE_OK, snapshot)
        return False

    def _release_work(self) -> None:
        self._fn = None

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]} fn={self._fn!r}>"


class PollableTask(JoinHandle[T]):
    """A task stepped many times: a coroutine or a ``zuki.Future``.

    Extra state, beyond ``JoinHandle``: ``_sched`` (the executor side), ``_cancel`` (a
    cancellation request; written under the lock), ``_susp`` (whether the task is in
    ``_sched.suspended``; written by the runner only), ``_cx`` (the ``Context`` with
    the task's waker, made at the first poll that needs it), ``_affinity`` (the index
    of the worker that last ran it; a hint).
    """

    __slots__ = ("_affinity", "_cancel", "_ctx", "_cx", "_sched", "_susp")

    _sched: Scheduler
    _ctx: _CvContext
    _cx: Context
    _cancel: bool
    _susp: bool
    _affinity: int

    @property
    def affinity(self) -> int | None:
        """The index of the worker that last ran this task, or ``None``."""
        return getattr(self, "_affinity", None)

    def wake(self) -> None:
        """Wake the task (any thread, any time); see the module docstring."""
        lock = self._lock
        lock.acquire()
        st = self._st
        if st == IDLE:
            self._st = SCHEDULED
            lock.release()
            self._sched.schedule(self)
            return
        if st == RUNNING:
            self._st = NOTIFIED
        lock.release()

    def wake_joiner(self) -> None:
        """Wake the task because a task it awaits finished: queue it at the back.

        A task woken by a message (a leaf future's waker) goes to the front, where it
        reads what the waker just wrote while it is still in cache (the LIFO slot). A
        task woken because a child finished is usually a parent that spawned many
        children and awaits them in turn; resuming it at once would only see it suspend
        again on the next unfinished child, one suspension per child. Queued behind the
        other children (asyncio's FIFO order), it resumes when most of them are done.
        """
        lock = self._lock
        lock.acquire()
        st = self._st
        if st == IDLE:
            self._st = SCHEDULED
            lock.release()
            self._sched.schedule_back(self)
            return
        if st == RUNNING:
            self._st = NOTIFIED
        lock.release()

    def context(self) -> Context:
        """The ``Context`` (with this task's waker) to poll futures with."""
        try:
            return self._cx
        except AttributeError:
            cx = self._cx = Context(Waker(self._sched.waker_data(self)))
            return cx

    def _cancel_started(self, st: int) -> bool:
        self._cancel = True
        if st == IDLE:
            self._st = SCHEDULED
            self._lock.release()
            self._sched.schedule(self)
            return True
        if st == RUNNING:
            self._st = NOTIFIED
        self._lock.release()
        return True

    def run(self, runner: Any) -> bool:
        cancel = self._claim(runner)
        if cancel is None:
            return False
        return self._after_step(self._ctx.run(self._step, cancel))

    def _claim(self, runner: Any) -> bool | None:
        """``NEW``/``SCHEDULED`` -> ``RUNNING``; the pending cancel request, or ``None``
        if the task is not runnable (cancelled while queued)."""
        lock = self._lock
        lock.acquire()
        st = self._st
        if st not in (NEW, SCHEDULED):
            lock.release()
            return None
        cancel = self._cancel
        if cancel:
            self._cancel = False
        self._st = RUNNING
        lock.release()
        if runner is not None:
            self._affinity = runner.index
        return cancel

    def _after_step(self, step: int) -> bool:
        """The transition after a step; ``True`` if the runner must re-queue the task."""
        if step == _STEP_DONE:
            return False
        lock = self._lock
        if step == _STEP_YIELDED:
            lock.acquire()
            self._st = SCHEDULED
            lock.release()
            return True
        if not self._susp:
            # Register before going IDLE: once IDLE, another thread may wake, run and
            # finish the task, and its unregister must find the entry.
            self._susp = True
            self._sched.suspended.add(self)
        lock.acquire()
        if self._st == NOTIFIED:
            self._st = SCHEDULED
            lock.release()
            return True
        self._st = IDLE
        lock.release()
        return False

    def _step(self, cancel: bool) -> int:
        raise NotImplementedError

    def close_unfinished(self) -> None:
        """Cancel a task that no worker will run again (after the pool stopped)."""
        raise NotImplementedError

    def _finish(self, st: int, value: Any) -> None:
        if self._susp:
            self._sched.suspended.discard(self)
        self._release_work()
        super()._finish(st, value)


class CoroutineTask(PollableTask[T]):
    """A task that drives a coroutine (asyncio's ``Task.__step``, with zuki awaitables)."""

    __slots__ = ("_awaiting", "_coro")

    def __init__(self, coro: Coroutine[Any, Any, T], ctx: _CvContext, sched: Scheduler) -> None:
        self._coro: Coroutine[Any, Any, T] | None = coro
        self._ctx = ctx
        self._sched = sched
        self._st = NEW
        self._lock = allocate_lock()
        self._entries = None
        self._awaiting: Future[Any] | None = None
        self._cancel = False
        self._susp = False

    def run(self, runner: Any) -> bool:
        cancel = self._claim(runner)
        if cancel is None:
            return False
        ctx = self._ctx
        if cancel or self._awaiting is not None:
            return self._after_step(ctx.run(self._step, cancel))
        # The common case: resumed with nothing to deliver (the first step, or after
        # yield_now). One send straight from here, no extra Python frame.
        try:
            yielded = ctx.run(self._coro.send, None)  # type: ignore[union-attr]
        except StopIteration as stop:
            self._finish_ok(stop.value)
            return False
        except BaseException as e:
            self._finish_exc(e)
            return False
        return self._after_step(ctx.run(self._continue, yielded))

    def _step(self, cancel: bool) -> int:
        """Resume with what the task was woken for: the awaited value, its error, or
        ``Cancelled``. Runs in the task's context."""
        send: Any = None
        exc: BaseException | None = None
        if cancel:
            self._awaiting = None
            exc = Cancelled()
        else:
            awaiting = self._awaiting
            if awaiting is not None:
                if isinstance(awaiting, JoinHandle):
                    if awaiting._st < DONE_OK:
                        return _STEP_PENDING  # a stray wake: still registered there
                    st, value = awaiting.outcome()
                    if st == DONE_OK:
                        send = value
                    else:
                        exc = value
                else:
                    try:
                        answer = awaiting.poll(self.context())
                    except BaseException as e:
                        exc = e
                    else:
                        if answer is PENDING:
                            return _STEP_PENDING
                        if isinstance(answer, Ready):
                            send = answer.value
                        else:  # as in _continue: thrown in, not a scheduler error
                            exc = _bad_poll_answer(awaiting, answer)
                self._awaiting = None
        coro = self._coro
        assert coro is not None
        try:
            yielded = coro.send(send) if exc is None else coro.throw(exc)
        except StopIteration as stop:
            self._finish_ok(stop.value)
            return _STEP_DONE
        except BaseException as e:
            self._finish_exc(e)
            return _STEP_DONE
        return self._continue(yielded)

    def _continue(self, yielded: Any) -> int:
        """Act on what the coroutine yielded, resuming it for as long as the answer is
        immediate (a finished handle, a ready future). Runs in the task's context."""
        coro = self._coro
        assert coro is not None
        while True:
            send: Any = None
            exc: BaseException | None = None
            if yielded is YIELD:
                return _STEP_YIELDED
            if isinstance(yielded, JoinHandle):
                if yielded.register(self.wake_joiner):
                    self._awaiting = yielded
                    return _STEP_PENDING
                st, value = yielded.outcome()
                if st == DONE_OK:
                    send = value
                else:
                    exc = value
            elif isinstance(yielded, Future):
                try:
                    answer = yielded.poll(self.context())
                except BaseException as e:
                    exc = e
                else:
                    if answer is PENDING:
                        self._awaiting = yielded
                        return _STEP_PENDING
                    if isinstance(answer, Ready):
                        send = answer.value
                    else:
                        exc = _bad_poll_answer(yielded, answer)
            else:
                exc = not_awaitable_error(yielded)
            try:
                yielded = coro.send(send) if exc is None else coro.throw(exc)
            except StopIteration as stop:
                self._finish_ok(stop.value)
                return _STEP_DONE
            except BaseException as e:
                self._finish_exc(e)
                return _STEP_DONE

    def _finish_ok(self, value: Any) -> None:
        """``_finish(DONE_OK, value)``, inlined for the hot path of every coroutine task
        (a finished coroutine needs no ``close()``)."""
        if self._susp:
            self._sched.suspended.discard(self)
        self._coro = None
        lock = self._lock
        lock.acquire()
        self._value = value
        self._st = DONE_OK
        entries = self._entries
        snapshot = entries[:] if entries else None
        lock.release()
        if snapshot is not None:
            self._fire(DONE_OK, snapshot)

    def _release_work(self) -> None:
        # A finished coroutine ignores close(); a never-started one (cancelled while
        # NEW) is closed so that it is not reported as "never awaited".
        coro = self._coro
        self._coro = None
        self._awaiting = None
        if coro is not None:
            coro.close()

    def close_unfinished(self) -> None:
        """Cancel a task that no worker will run again (after the pool stopped).

        Claims the task if it is idle or queued, closes its coroutine (``GeneratorExit``
        runs its ``finally`` blocks) in its own context, and finishes it ``CANCELLED``.
        """
        lock = self._lock
        lock.acquire()
        st = self._st
        if st >= RUNNING:
            lock.release()
            return
        self._st = RUNNING
        lock.release()
        coro = self._coro
        if coro is not None and st != NEW:
            try:
                self._ctx.run(coro.close)
            except BaseException:
                LOGGER.exception("error closing %r at executor shutdown", self)
        elif coro is not None:
            coro.close()
        self._finish(CANCELLED, Cancelled())

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]} coro={self._coro!r}>"


class FutureTask(PollableTask[T]):
    """A task that polls one ``zuki.Future`` until it is ready."""

    __slots__ = ("_future",)

    def __init__(self, future: Future[T], ctx: _CvContext, sched: Scheduler) -> None:
        self._future: Future[T] | None = future
        self._ctx = ctx
        self._sched = sched
        self._st = NEW
        self._lock = allocate_lock()
        self._entries = None
        self._cancel = False
        self._susp = False

    def _step(self, cancel: bool) -> int:
        future = self._future
        assert future is not None
        if cancel:
            try:
                future.drop()
            except Exception:
                LOGGER.exception("%r: drop() of a cancelled task's future failed", future)
            self._finish(CANCELLED, Cancelled())
            return _STEP_DONE
        try:
            answer = future.poll(self.context())
        except BaseException as e:
            self._finish_exc(e)
            return _STEP_DONE
        if answer is PENDING:
            return _STEP_PENDING
        if isinstance(answer, Ready):
            self._finish(DONE_OK, answer.value)
        else:
            self._finish(DONE_ERR, _bad_poll_answer(future, answer))
        return _STEP_DONE

    def _release_work(self) -> None:
        self._future = None

    def close_unfinished(self) -> None:
        """Cancel a task that no worker will run again (see ``CoroutineTask``)."""
        lock = self._lock
        lock.acquire()
        st = self._st
        if st >= RUNNING:
            lock.release()
            return
        self._st = RUNNING
        lock.release()
        future = self._future
        if future is not None:
            try:
                future.drop()
            except Exception:
                LOGGER.exception("%r: drop() of a closed task's future failed", future)
        self._finish(CANCELLED, Cancelled())

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]} future={self._future!r}>"


def _bad_poll_answer(future: object, answer: object) -> TypeError:
    return TypeError(
        f"{type(future).__name__}.poll() must return Poll.ready(value) or Poll.PENDING, "
        f"not {answer!r}"
    )


_CoroutineType: Final = types.CoroutineType


def make_task(obj: Any, sched: Scheduler, ctx: _CvContext | None = None) -> JoinHandle[Any]:
    """The task for ``obj``: a coroutine, a ``zuki.Future`` or a callable.

    ``ctx`` defaults to a copy of the calling thread's current context.

    Raises:
        TypeError: ``obj`` is none of the three; the message names it.
    """
    if ctx is None:
        ctx = copy_context()
    if type(obj) is _CoroutineType:
        return CoroutineTask(obj, ctx, sched)
    if isinstance(obj, Future):
        return FutureTask(obj, ctx, sched)
    if callable(obj):
        return CallTask(obj, (), ctx)
    if isinstance(obj, Coroutine):
        return CoroutineTask(obj, ctx, sched)
    raise TypeError(f"spawn() takes a coroutine, a zuki.Future or a callable, not {_describe(obj)}")


def _describe(obj: object) -> str:
    try:
        text = repr(obj)
    except Exception:
        text = f"<unprintable {type(obj).__name__} object>"
    if len(text) > 200:
        text = text[:200] + "..."
    return f"{text} (of type {type(obj).__name__})"
