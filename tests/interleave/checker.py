"""The engine of the interleaving checker: one simulated thread at a time, every schedule.

Prior art: loom (tokio's model checker: instrumented atomics, exhaustive exploration
under a preemption bound), CHESS (Musuvathi and Qadeer, PLDI 2007: iterative preemption
bounding; most concurrency bugs need at most two preemptions) and PCT (Burckhardt et al.,
ASPLOS 2010: random priorities with ``d - 1`` priority change points find a bug of depth
``d`` with probability at least ``1 / (n * k**(d - 1))``).

How a run works
===============

A *model* is a ``setup()`` that builds the shared state, a list of thread bodies (each
called with that state) and a ``check(state)`` run after every schedule. Every simulated
thread is a real Python thread, but only one of them runs at a time. The instrumented
shim (``shim.py``) calls ``Run.point`` before every shared-memory operation; there the
running thread asks the scheduler which thread performs the *next* operation. If it is
itself, it goes on with no hand-off at all; otherwise it signals the chosen thread's
baton (an ``eventfd``, or a held ``threading.Lock`` where there is none) and parks on
its own. So a
schedule is exactly a sequence of choices, and everything between two operations
(Python code, list reads and writes) runs as one indivisible step: the simulation is
sequentially consistent, and the ordering of plain Python objects is given by the shim
operations around them.

A thread can block in a simulated wait (``Run.block``, used by the simulated futex and
lock): it is not runnable until ``Run.wake`` names its key. A thread blocked with a
timeout becomes runnable (timed out) only when no thread is runnable at all. When every
live thread is blocked the run fails with a deadlock: that is how a lost wake-up shows.

Spinning: a thread that repeats a read-only operation (a load, a failed CAS, a futex
wait that returned at once) with the same arguments for the third time without any
thread having written anything since is *spinning*. It gets no turn while another thread
is runnable and switching away from it costs no preemption (loom's ``yield_now``), so a
retry loop neither blows up the search nor hides the thread it waits for.

Exploration
===========

``explore`` first enumerates schedules depth-first, exhaustively up to a preemption
bound (a *preemption* is a switch away from a thread that could have continued;
switches at a block, an exit or a spin are free). The first schedule runs each thread as
far as it goes; each later one replays a prefix of choices and takes the next
alternative at the deepest open choice point. The prefix replay also checks that the
model is deterministic (the same choices must offer the same options). Then it runs
seeded random schedules with no preemption bound: PCT priorities, with the number of
change points cycling through 1..3. Each run is capped at ``max_steps`` operations (a
livelock fails).

A failure (an exception in a thread, a failed ``check``, a deadlock, the step cap)
raises ``InterleavingFailure`` whose message holds the schedule (the thread chosen at
every choice point, as ``"0*5 1*3 0*2"``) and the trace of operations with their
results; ``replay(model, schedule)`` runs exactly that schedule again.

Cost: a step on which the running thread continues costs a few microseconds of Python;
a switch costs two lock operations and an OS thread wake-up. The worker threads are
reused from run to run.
"""

from __future__ import annotations

import linecache
import os
import random
import re
import reprlib
import select
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

__all__ = [
    "InterleavingFailure",
    "Model",
    "Report",
    "RunResult",
    "current",
    "explore",
    "note",
    "replay",
]

S = TypeVar("S")

_READY, _BLOCKED, _DONE = 0, 1, 2
#: Read-only repetitions (with no write anywhere in between) that make a thread spinning.
_SPIN_REPEATS = 2
#: Seconds a run may take before the checker gives up on it (a real blocking call).
_RUN_TIMEOUT = 60.0
_NO_RESULT = object()


class InterleavingFailure(AssertionError):
    """A schedule broke the model; the message says how to replay it."""

    def __init__(self, message: str, result: RunResult) -> None:
        super().__init__(message)
        self.result = result


class NondeterministicModel(RuntimeError):
    """Replaying a prefix of choices offered different options than the first time."""


class _Abort(BaseException):
    """Unwinds a simulated thread whose run is being abandoned; never leaves the checker."""


@dataclass
class Model(Generic[S]):
    """What to check: ``setup()`` builds the state, each of ``threads`` runs on it.

    ``setup`` and ``check`` run on the controlling thread, where shim operations are
    not scheduling points. ``check(state)`` asserts the invariants after all threads
    have finished.
    """

    name: str
    setup: Callable[[], S]
    threads: Sequence[Callable[[S], object]]
    check: Callable[[S], object] | None = None


@dataclass
class Report:
    """What ``explore`` did: schedules run in each phase and how long it took."""

    model: str
    exhaustive: int = 0
    complete: bool = False
    random: int = 0
    max_steps_seen: int = 0
    seconds: float = 0.0

    @property
    def schedules(self) -> int:
        return self.exhaustive + self.random

    def __str__(self) -> str:
        done = "complete" if self.complete else "cut off"
        return (
            f"{self.model}: {self.exhaustive} exhaustive schedules ({done}) + "
            f"{self.random} random, longest {self.max_steps_seen} steps, {self.seconds:.2f}s"
        )


@dataclass
class RunResult:
    """One schedule: the choices made, the operations performed, and the failure if any."""

    schedule: list[int] = field(default_factory=list)
    trace: list[list[Any]] = field(default_factory=list)
    failure: str | None = None
    steps: int = 0
    thread_states: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def schedule_text(self) -> str:
        return format_schedule(self.schedule)


# --------------------------------------------------------------------------------------
# the current run, as seen from a simulated thread
# --------------------------------------------------------------------------------------


class _Local(threading.local):
    run: Run | None = None


_tls = _Local()


def current() -> Run | None:
    """The run the calling thread is a simulated thread of, or ``None`` (not simulated)."""
    return _tls.run


def note(text: str) -> None:
    """Add ``text`` to the trace of the calling simulated thread (a model's own events,
    such as "push 3"); not a scheduling point. Does nothing outside a run."""
    run = _tls.run
    if run is not None and run.cur is not None:
        run.result.trace.append([run.cur.tid, "thread", f"# {text}", (), _NO_RESULT])


#: Called before every run's ``setup`` (the shim resets its virtual clock there).
RUN_START_HOOKS: list[Callable[[], object]] = []


class _Naming:
    """Serial numbers for shim objects, restarted for every run (traces are stable)."""

    serial = 0


def register(obj: object) -> tuple[int, str, int]:
    """A serial number and creation site for a shim object (names it in traces)."""
    _Naming.serial += 1
    frame = sys._getframe(1)
    shim_file = frame.f_code.co_filename
    while frame.f_back is not None and frame.f_code.co_filename == shim_file:
        frame = frame.f_back
    return _Naming.serial, frame.f_code.co_filename, frame.f_lineno


_TARGET = re.compile(r"^\s*(?:self\.)?([A-Za-z_]\w*)\s*(?::[^=]*)?=[^=]")


def site_label(kind: str, serial: int, filename: str, lineno: int) -> str:
    """``_head#3`` when the creating line assigns to a name, else ``AtomicInt#3``."""
    match = _TARGET.match(linecache.getline(filename, lineno))
    return f"{match.group(1) if match else kind}#{serial}"


# --------------------------------------------------------------------------------------
# simulated threads and their real carriers
# --------------------------------------------------------------------------------------


class _SimThread:
    __slots__ = (
        "blocked_on",
        "epoch",
        "fn",
        "pending",
        "reads",
        "repeats",
        "state",
        "tid",
        "timed",
        "woken",
        "worker",
    )

    def __init__(self, tid: int, fn: Callable[[Any], object], worker: _Worker) -> None:
        self.tid = tid
        self.fn = fn
        self.worker = worker
        self.state = _READY
        self.pending: tuple[Any, str, tuple[Any, ...]] = ("thread", "start", ())
        self.blocked_on: object = None
        self.timed = False
        self.woken = False
        self.epoch = -1  # the run's write count when `reads` was started
        self.reads: set[tuple[Any, ...]] = set()
        self.repeats = 0

    def describe(self) -> str:
        if self.state == _DONE:
            return f"t{self.tid}: finished"
        if self.state == _BLOCKED:
            timed = " (with a timeout)" if self.timed else ""
            return f"t{self.tid}: blocked on {_name(self.blocked_on)}{timed}"
        obj, op, args = self.pending
        return f"t{self.tid}: about to {_format_op(obj, op, args)}"


class _Baton:
    """What a parked thread waits on: an ``eventfd`` on Linux, else a held ``Lock``.

    Each ``signal`` is matched by exactly one ``wait``. On 3.13t a ``Lock`` hand-off
    between two threads was measured at ~190 us (its ``PyMutex`` spins, yielding, before
    it sleeps), an ``eventfd`` read/write pair at ~12 us; under the GIL 26 us and 10 us.
    """

    __slots__ = ("_fd", "_lock")

    def __init__(self) -> None:
        self._fd = -1
        self._lock: threading.Lock | None = None
        if _HAS_EVENTFD:
            self._fd = os.eventfd(0, os.EFD_CLOEXEC)
        else:
            self._lock = threading.Lock()
            self._lock.acquire()

    def wait(self, timeout: float | None = None) -> bool:
        if self._lock is not None:
            return self._lock.acquire(timeout=-1 if timeout is None else timeout)
        if timeout is not None and not select.select([self._fd], [], [], timeout)[0]:
            return False
        os.eventfd_read(self._fd)
        return True

    def signal(self) -> None:
        if self._lock is not None:
            self._lock.release()
        else:
            os.eventfd_write(self._fd, 1)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


_HAS_EVENTFD = hasattr(os, "eventfd")


class _Worker:
    """A real thread that carries one simulated thread per run, reused across runs."""

    def __init__(self, index: int) -> None:
        self.baton = _Baton()
        self.job: tuple[Run, _SimThread] | None = None
        self.thread = threading.Thread(target=self._loop, name=f"interleave-{index}", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            self.baton.wait()
            job = self.job
            if job is None:
                return
            run, sim = job
            run.execute(sim)

    def stop(self) -> None:
        self.job = None
        self.baton.signal()
        self.thread.join(5.0)
        if not self.thread.is_alive():  # a thread stuck outside the shim keeps its baton
            self.baton.close()


# --------------------------------------------------------------------------------------
# one run
# --------------------------------------------------------------------------------------

Chooser = Callable[["Run", list[_SimThread]], int]


class Run:
    """One schedule of a model. Only the thread holding the baton touches it."""

    def __init__(
        self,
        threads: list[_SimThread],
        state: object,
        chooser: Chooser,
        *,
        bound: int | None,
        max_steps: int,
        finished: _Baton,
    ) -> None:
        self.threads = threads
        self.state = state
        self.chooser = chooser
        self.bound = bound
        self.max_steps = max_steps
        self.cur: _SimThread | None = None
        self.preemptions = 0
        self.writes = 0
        self.result = RunResult()
        self.aborting = False
        self.unstarted = list(threads)
        self.free_choice = False
        self.must_continue = False
        self.finished = finished

    # --- called by the shim, on the running simulated thread ---------------------------

    def point(self, obj: object, op: str, args: tuple[Any, ...] = ()) -> None:
        """A scheduling point before ``obj.op(*args)``; returns when it is this thread's turn."""
        if self.aborting:
            raise _Abort
        t = self.cur
        assert t is not None
        result = self.result
        result.steps += 1
        if result.steps > self.max_steps:
            self._fail(f"step limit of {self.max_steps} exceeded (a livelock?)")
            raise _Abort
        t.pending = (obj, op, args)
        if self.must_continue and (t.repeats < _SPIN_REPEATS or t.epoch != self.writes):
            result.schedule.append(t.tid)  # the fast path of _choose
        else:
            nxt = self._choose(t)
            if nxt is not t:
                self._hand_off(t, nxt)
        result.trace.append([t.tid, obj, op, args, _NO_RESULT])

    def observe(self, value: object, wrote: bool) -> object:
        """Record the result of the operation announced by the running thread's last
        ``point`` (on a line of its own if the operation blocked in between)."""
        t = self.cur
        assert t is not None
        trace = self.result.trace
        entry = trace[-1]
        if entry[0] != t.tid or entry[2] in ("blocks", "resumes"):
            obj, op, args = t.pending
            trace.append([t.tid, obj, op, args, value])
        else:
            entry[4] = value
        if wrote:
            self.writes += 1
            return value
        if t.epoch != self.writes:
            t.epoch = self.writes
            t.reads.clear()
            t.repeats = 0
        obj, op, args = t.pending
        key = (id(obj), op, args)
        try:
            if key in t.reads:
                t.repeats += 1
            else:
                t.reads.add(key)
        except TypeError:  # unhashable arguments: not tracked as a spin
            pass
        return value

    def block(self, key: object, *, timed: bool = False) -> bool:
        """Park the running thread on ``key`` until ``wake(key)``; False if it timed out."""
        t = self.cur
        assert t is not None
        pending = t.pending
        t.state = _BLOCKED
        t.blocked_on = key
        t.timed = timed
        t.woken = False
        self.result.trace.append([t.tid, key, "blocks", (), _NO_RESULT])
        nxt = self._choose(t)
        if nxt is None:
            self._fail_deadlock()
            raise _Abort
        if nxt is not t:
            self._hand_off(t, nxt)
        t.pending = pending
        self.result.trace.append([t.tid, key, "resumes", (), t.woken])
        return t.woken

    def wake(self, key: object, n: int | None = None) -> int:
        """Make up to ``n`` (all if None) threads blocked on ``key`` runnable, oldest first."""
        woken = 0
        for t in self.threads:
            if n is not None and woken >= n:
                break
            if t.state == _BLOCKED and t.blocked_on is key:
                t.state = _READY
                t.blocked_on = None
                t.woken = True
                t.pending = (key, "wake-up", ())
                woken += 1
        return woken

    # --- scheduling --------------------------------------------------------------------

    def _spinning(self, t: _SimThread) -> bool:
        return t.repeats >= _SPIN_REPEATS and t.epoch == self.writes

    def _choose(self, cur: _SimThread | None) -> _SimThread | None:
        if self.unstarted:
            # Every thread first runs up to its first operation, in order, with no choice:
            # that stretch touches nothing shared, so choosing there would only repeat
            # schedules. The first real choice (after the last start) is free.
            nxt = self.unstarted.pop(0)
            self.free_choice = not self.unstarted
            self.result.schedule.append(nxt.tid)
            return nxt
        if self.free_choice:
            self.free_choice = False
            cur = None
        ready = [t for t in self.threads if t.state == _READY]
        if not ready:
            timed = [t for t in self.threads if t.state == _BLOCKED and t.timed]
            if not timed:
                return None
            for t in timed:  # their timeouts may fire now: nothing else can run
                t.state = _READY
                t.pending = (t.blocked_on, "timeout", ())
                t.blocked_on = None
            ready = timed
        busy = [t for t in ready if not self._spinning(t)] or ready
        preemptible = cur is not None and cur.state == _READY and cur in busy
        if preemptible:
            assert cur is not None
            if self.bound is None or self.preemptions < self.bound:
                options = [cur, *(t for t in busy if t is not cur)]
            else:
                options = [cur]
        else:
            options = busy
        k = self.chooser(self, options) if len(options) > 1 else 0
        nxt = options[k]
        if preemptible and k:
            self.preemptions += 1
        # Out of preemptions: from now on a thread that can go on must (see point).
        self.must_continue = self.bound is not None and self.preemptions >= self.bound
        self.result.schedule.append(nxt.tid)
        return nxt

    def _hand_off(self, t: _SimThread, nxt: _SimThread) -> None:
        self.cur = nxt
        nxt.worker.baton.signal()
        t.worker.baton.wait()
        if self.aborting:
            raise _Abort

    # --- lifecycle ---------------------------------------------------------------------

    def execute(self, t: _SimThread) -> None:
        """Run ``t``'s body on its worker (the worker holds the baton)."""
        _tls.run = self
        try:
            if not self.aborting:
                t.fn(self.state)
        except _Abort:
            pass
        except BaseException as exc:
            self._fail(f"t{t.tid} raised {type(exc).__name__}: {exc}", exc)
        finally:
            _tls.run = None
        self._exit(t)

    def _exit(self, t: _SimThread) -> None:
        t.state = _DONE
        how = "unwound (run abandoned)" if self.aborting else "exits"
        self.result.trace.append([t.tid, "thread", how, (), _NO_RESULT])
        if not self.aborting:
            nxt = self._choose(None)
            if nxt is not None:
                self.cur = nxt
                nxt.worker.baton.signal()
                return
            if any(x.state == _BLOCKED for x in self.threads):
                self._fail_deadlock()
        if self.aborting:
            self._abort_next()
        else:
            self.finished.signal()

    def _abort_next(self) -> None:
        for t in self.threads:
            if t.state != _DONE:
                self.cur = t
                t.worker.baton.signal()
                return
        self.finished.signal()

    def _fail(self, message: str, exc: BaseException | None = None) -> None:
        if self.result.failure is None:
            self.result.failure = message
            self.result.thread_states = [t.describe() for t in self.threads]
            if exc is not None:
                self.result.error = "".join(traceback.format_exception(exc))
        self.aborting = True

    def _fail_deadlock(self) -> None:
        self._fail("deadlock: every live thread is blocked (a lost wake-up?)")

    def start(self) -> None:
        first = self._choose(None)
        assert first is not None
        self.cur = first
        first.worker.baton.signal()

    def wait(self, timeout: float) -> bool:
        return self.finished.wait(timeout)


# --------------------------------------------------------------------------------------
# choosers
# --------------------------------------------------------------------------------------


class _DepthFirst:
    """Replays a prefix of choices, then takes the first option; ``advance`` backtracks."""

    def __init__(self) -> None:
        self.stack: list[list[Any]] = []  # [option tids, index taken]
        self.pos = 0

    def __call__(self, run: Run, options: list[_SimThread]) -> int:
        tids = tuple(t.tid for t in options)
        if self.pos < len(self.stack):
            entry = self.stack[self.pos]
            if entry[0] != tids:
                raise NondeterministicModel(
                    f"choice {self.pos}: replay offers threads {tids}, first run offered "
                    f"{entry[0]}; the model must behave the same under the same schedule"
                )
        else:
            entry = [tids, 0]
            self.stack.append(entry)
        self.pos += 1
        return int(entry[1])

    def advance(self) -> bool:
        """Move to the next schedule; False when every schedule was run."""
        del self.stack[self.pos :]
        self.pos = 0
        while self.stack:
            entry = self.stack[-1]
            if entry[1] + 1 < len(entry[0]):
                entry[1] += 1
                return True
            self.stack.pop()
        return False


class _Pct:
    """PCT: random thread priorities, lowered at ``depth - 1`` random steps."""

    def __init__(self, rng: random.Random, nthreads: int, depth: int, length: int) -> None:
        order = list(range(nthreads))
        rng.shuffle(order)
        self.priority = {tid: depth + rank for rank, tid in enumerate(order)}
        self.change_at = {rng.randrange(1, max(length, 2)): depth - 1 - i for i in range(depth - 1)}

    def __call__(self, run: Run, options: list[_SimThread]) -> int:
        low = self.change_at.get(run.result.steps)
        if low is not None and run.cur is not None:
            self.priority[run.cur.tid] = low
        prio = self.priority
        return max(range(len(options)), key=lambda i: prio[options[i].tid])


# --------------------------------------------------------------------------------------
# driving runs
# --------------------------------------------------------------------------------------


class _Pool:
    """Worker threads, grown on demand, reused by every run of one ``explore``."""

    def __init__(self) -> None:
        self.workers: list[_Worker] = []
        self.finished = _Baton()  # the controlling thread's: signalled when a run ends

    def get(self, n: int) -> list[_Worker]:
        while len(self.workers) < n:
            self.workers.append(_Worker(len(self.workers)))
        return self.workers[:n]

    def close(self) -> None:
        for w in self.workers:
            w.stop()
        if not any(w.thread.is_alive() for w in self.workers):
            self.finished.close()


def _run_once(
    pool: _Pool,
    model: Model[Any],
    chooser: Chooser,
    *,
    bound: int | None,
    max_steps: int,
) -> RunResult:
    _Naming.serial = 0
    for hook in RUN_START_HOOKS:
        hook()
    state = model.setup()
    workers = pool.get(len(model.threads))
    threads = [
        _SimThread(i, fn, w) for i, (fn, w) in enumerate(zip(model.threads, workers, strict=True))
    ]
    run = Run(threads, state, chooser, bound=bound, max_steps=max_steps, finished=pool.finished)
    for t in threads:
        t.worker.job = (run, t)
    run.start()
    if not run.wait(_RUN_TIMEOUT):
        run.aborting = True  # whatever wakes up later unwinds instead of running on
        frames = sys._current_frames()
        stacks = "\n".join(
            "".join(traceback.format_stack(frames[w.thread.ident]))
            for w in workers
            if w.thread.ident in frames
        )
        raise RuntimeError(
            f"{model.name}: a run did not finish in {_RUN_TIMEOUT}s: a simulated thread "
            f"is blocked outside the shim (a real lock or sleep?)\n{stacks}"
        )
    result = run.result
    if result.failure is None and model.check is not None:
        try:
            model.check(state)
        except Exception as exc:
            result.failure = f"check failed: {type(exc).__name__}: {exc}"
            result.thread_states = [t.describe() for t in threads]
            if not isinstance(exc, AssertionError):
                result.error = "".join(traceback.format_exception(exc))
    return result


def _forced_chooser(schedule: Sequence[int]) -> Chooser:
    def choose(run: Run, options: list[_SimThread]) -> int:
        # run.result.schedule holds the choices made so far, single-option ones included.
        pos = len(run.result.schedule)
        if pos < len(schedule):
            for i, t in enumerate(options):
                if t.tid == schedule[pos]:
                    return i
            raise NondeterministicModel(
                f"choice {pos}: the schedule names t{schedule[pos]}, but only "
                f"{[t.tid for t in options]} can run"
            )
        return 0

    return choose


def explore(
    model: Model[Any],
    *,
    preemption_bound: int | None = 2,
    random_schedules: int = 200,
    seed: int = 0,
    max_steps: int = 5_000,
    max_exhaustive: int = 100_000,
) -> Report:
    """Run ``model`` under every schedule with at most ``preemption_bound`` preemptions
    (``None``: no bound; up to ``max_exhaustive`` schedules), then ``random_schedules``
    seeded PCT schedules with no bound.

    Raises:
        InterleavingFailure: a schedule failed; the message has the schedule and trace.
    """
    report = Report(model.name)
    started = time.perf_counter()
    pool = _Pool()
    try:
        dfs = _DepthFirst()
        while True:
            result = _run_once(pool, model, dfs, bound=preemption_bound, max_steps=max_steps)
            report.exhaustive += 1
            report.max_steps_seen = max(report.max_steps_seen, result.steps)
            if result.failure is not None:
                _raise(model, result, f"exhaustive schedule #{report.exhaustive}")
            if not dfs.advance():
                report.complete = True
                break
            if report.exhaustive >= max_exhaustive:
                break
        rng = random.Random(seed)
        length = max(report.max_steps_seen, 2)
        for i in range(random_schedules):
            pct = _Pct(rng, len(model.threads), 2 + i % 3, length)
            result = _run_once(pool, model, pct, bound=None, max_steps=max_steps)
            report.random += 1
            report.max_steps_seen = max(report.max_steps_seen, result.steps)
            if result.failure is not None:
                _raise(model, result, f"random schedule #{i} (seed {seed})")
    finally:
        pool.close()
        report.seconds = time.perf_counter() - started
    return report


def replay(
    model: Model[Any], schedule: Sequence[int] | str, *, max_steps: int = 5_000
) -> RunResult:
    """Run ``model`` once under ``schedule`` (a list of thread ids or ``"0*5 1*3"``).

    Returns the run (its ``trace`` and ``failure``); raises ``InterleavingFailure`` if the
    schedule fails, with the same message ``explore`` would give.
    """
    choices = parse_schedule(schedule) if isinstance(schedule, str) else list(schedule)
    pool = _Pool()
    try:
        result = _run_once(pool, model, _forced_chooser(choices), bound=None, max_steps=max_steps)
    finally:
        pool.close()
    if result.failure is not None:
        _raise(model, result, "replayed schedule")
    return result


# --------------------------------------------------------------------------------------
# reporting
# --------------------------------------------------------------------------------------


def format_schedule(schedule: Sequence[int]) -> str:
    """Run-length form of a schedule: ``[0, 0, 0, 1, 0]`` is ``"0*3 1 0"``."""
    parts: list[str] = []
    i = 0
    while i < len(schedule):
        j = i
        while j < len(schedule) and schedule[j] == schedule[i]:
            j += 1
        parts.append(f"{schedule[i]}*{j - i}" if j - i > 1 else str(schedule[i]))
        i = j
    return " ".join(parts)


def parse_schedule(text: str) -> list[int]:
    """The inverse of ``format_schedule``."""
    out: list[int] = []
    for part in text.split():
        tid, _, count = part.partition("*")
        out.extend([int(tid)] * int(count or 1))
    return out


def _name(obj: object) -> str:
    label = getattr(obj, "label", None)
    return label() if callable(label) else str(obj)


def _format_op(obj: object, op: str, args: tuple[Any, ...]) -> str:
    describe = getattr(obj, "describe", None)
    if callable(describe):
        return str(describe(op, args))
    if obj == "thread":
        return op
    inner = ", ".join(map(_repr.repr, args))
    return f"{_name(obj)}.{op}({inner})"


_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 60
_repr.maxlist = _repr.maxtuple = 6
_repr.maxlevel = 2


def format_trace(trace: list[list[Any]], limit: int = 400) -> str:
    lines = []
    shown = trace[-limit:]
    if len(shown) < len(trace):
        lines.append(f"    ... {len(trace) - len(shown)} earlier steps")
    for tid, obj, op, args, value in shown:
        text = f"    t{tid}  {_format_op(obj, op, args)}"
        if value is not _NO_RESULT:
            text += f" -> {_repr.repr(value)}"
        lines.append(text)
    return "\n".join(lines)


def _indent(text: str) -> str:
    return "".join(f"    {line}\n" for line in text.splitlines())


def _raise(model: Model[Any], result: RunResult, where: str) -> None:
    states = "\n".join(f"    {s}" for s in result.thread_states)
    message = (
        f"interleaving checker: model {model.name!r} failed in {where} "
        f"after {result.steps} steps\n"
        f"  failure: {result.failure}\n"
        f"  replay: replay(model, {result.schedule_text!r})\n"
        f"  threads at the failure:\n{states}\n"
        f"{_indent(result.error)}"
        f"  trace:\n{format_trace(result.trace)}"
    )
    raise InterleavingFailure(message, result)
