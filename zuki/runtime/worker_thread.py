"""WorkerThread: one thread of a work-stealing pool: its run loop, stealing, parking,
and helping while it waits.

Prior art: tokio's ``scheduler/multi_thread/worker.rs`` (``run``, ``next_task``,
``steal_work``, ``park``, the LIFO slot and its cap), Go's ``findRunnable`` (the tick-61
global check, the "delicate dance" before sleeping), Rayon's ``wait_until`` (a worker
that waits runs other jobs), Java ForkJoinPool (``tryUnpush``, compensation). The
numbers are scheduler.md §10's.

The run loop
============

Each turn (``_run_loop``):

0. every 8th tick, the timers that are due, fired here (``Reactor.fire_due_timers``;
   the reactor's docstring says why the driver thread alone is late when every core is
   busy); their tasks land in this worker's LIFO slot and queue;
1. every 61st tick, one task from the global queue first, so that two tasks respawning
   each other on one worker cannot starve the global queue (Go's ``schedtick % 61``);
2. the worker's own ``LocalQueue`` (its *newest* task: the local queue is LIFO, which
   keeps fork-join stacks and caches warm; thieves take the oldest);
3. a refill from the global queue: ``min(len // workers + 1, 128)`` tasks, one to run and
   the rest pushed locally, where idle workers can steal them;
4. ``_steal_work``: become a *searcher* (refused when half the workers already search:
   a racy throttle), then steal half of a victim's queue, trying every other worker from
   a random start (seedable RNG), two passes with a ``sched_yield`` between them, then
   the global queue once more;
5. nothing: park (below).

Running a task (``_run_task``) first leaves the searching state (the last searcher to
find work wakes one more worker, so parallelism grows one worker at a time while there
is work: tokio's and Go's chain), then steps the task, then drains the LIFO slot.

The LIFO slot
=============

A task *woken* by a task running on this worker goes into ``lifo`` (plain attribute,
owner only, never stolen): in message passing the woken task usually reads what the
waker just wrote, and running it next keeps that data hot. At most 3 LIFO tasks run in
a row; the next one is pushed to the back of the global queue (tokio pushes it to the
back of its FIFO local queue; ours is LIFO, so "the back" is the global queue), so a
ping-pong pair cannot starve the other tasks of its worker. Newly spawned tasks do not
use the slot: they go to the local queue, where other workers can steal them. A task
that yields (``yield_now``), that was woken while it ran, or that was woken because a
task it awaited finished (a joiner: ``PollableTask.wake_joiner``) is pushed to the back
of the global queue instead: a parent awaiting many children then resumes once most of
them are done, not once per child.

The local queue's ``overflow`` is the global queue seen through ``_CountingOverflow``,
which counts overflows in this worker's metrics, so that a push that fits (the hot
path) pays nothing for the count.

Parking without lost wake-ups
=============================

The protocol and its proof are scheduler.md §8.4 (tokio's ``idle.rs`` with a Lock in
place of the SeqCst RMWs); the pool side (``notify``) is in ``work_stealing_executor``.
A worker parks in three steps:

1. under the pool's ``idle_lock``: leave the unparked count (and the searching count, if
   it was searching; note if it was the *last* searcher), join the sleepers list, mark
   itself ``parked``; if the pool is draining and every worker is now parked, check for
   quiescence (shutdown, below);
2. if it was the last searcher, rescan every queue and notify (strongly) if anything is
   there: a producer may have skipped waking anybody because it saw this worker
   searching;
3. wait on its own ``Event`` (one token: a notify that comes before the wait is not
   lost); after any wake-up, under the lock: if a notifier took it off the sleepers list
   it is unparked (and, when woken for work, searching); otherwise the wake-up was stale
   and it waits again. On a park timeout (a backstop, off in tests) it unparks itself if
   any queue has work.

A worker other than the first that stays parked for ``keep_alive`` seconds retires: under
the lock it moves from the sleepers list to the pool's ``retired`` list and its thread
returns; a later notify that finds no sleeper restarts the slot on a new thread (the
pool's docstring has the argument for why no wake-up is lost).

Helping while waiting
=====================

``JoinHandle.result()`` on a worker thread calls ``help_until``: the worker keeps
running tasks (LIFO slot, own queue newest first, refill, steal) until the handle is
done. Newest first matters: helping with the oldest task picks the biggest sibling
subtree and nests deeper (scheduler.md §8.7 measured the pool reaching the depth cap
with FIFO helping). With nothing to run, the worker parks as above, but also registers
on the handle, whose completion takes it off the sleepers list and wakes it; it stays a
sleeper meanwhile, so new work still reaches it. A helper that reaches
``MAX_HELP_DEPTH`` (32) nested waits stops helping if it can start a spare thread
(``max_workers`` bounds them; ForkJoinPool's ``tryCompensate``): it moves its LIFO task
where others can steal it and blocks, while the spare keeps the pool's parallelism. If no
spare can be started it keeps helping, deeper: blocking with nobody left to run the
awaited task would be a certain deadlock, while deeper nesting at worst ends in a
``RecursionError`` raised in the task.

``join(fn_a, fn_b)`` pushes ``fn_b`` as a task on the local queue (where it can be
stolen), runs ``fn_a`` inline, then pops its own queue until it finds ``fn_b`` (running
whatever newer tasks ``fn_a`` left above it) and runs it inline, or, if it was stolen,
helps until it is done (Rayon's ``join_context``).

The remaining hazard, as in Rayon: a helped task that waits for the result of a task
below it on the same stack deadlocks. Tasks that block a worker thread on something
zuki cannot see (a ``threading.Event``, a socket) hold that worker and whatever sits in
its LIFO slot until they return.

Thread ownership: every attribute is written by the worker's own thread, except
``parked`` and ``searching`` of a parked worker (written under ``idle_lock`` by the
thread that unparks it) and ``cancelling`` (set once by ``shutdown``). Counters
(``WorkerCounters``) are owner-written; any thread may read them.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Iterable
from contextvars import copy_context
from typing import TYPE_CHECKING, Any, Final, TypeVar

from zuki.concurrent.errors import QueueClosed
from zuki.concurrent.event import Event
from zuki.concurrent.global_queue import GlobalQueue
from zuki.concurrent.local_queue import LocalQueue
from zuki.runtime import reactor as reactors
from zuki.runtime.metrics import WorkerCounters
from zuki.runtime.task import DONE_OK, CallTask, JoinHandle, tls

if TYPE_CHECKING:
    from zuki.runtime.work_stealing_executor import Pool, WorkStealingExecutor

__all__ = [
    "GLOBAL_QUEUE_INTERVAL",
    "MAX_HELP_DEPTH",
    "MAX_LIFO_POLLS",
    "TIMER_CHECK_INTERVAL",
    "WorkerThread",
]

A = TypeVar("A")
B = TypeVar("B")

#: Polls of LIFO-slot tasks in a row before the next one goes to the back of the line.
MAX_LIFO_POLLS: Final = 3
#: Every this many ticks a worker takes from the global queue before its own queue.
GLOBAL_QUEUE_INTERVAL: Final = 61
#: Every this many ticks (a power of two) a worker fires the timers that are due.
TIMER_CHECK_INTERVAL: Final = 8
#: The most tasks one refill takes from the global queue.
MAX_REFILL: Final = 128
#: Nested helping waits on one worker before it blocks (and compensates) instead.
MAX_HELP_DEPTH: Final = 32
#: Full steal passes over the other workers before parking.
STEAL_PASSES: Final = 2

# What ``Pool.quiescence_locked`` answers (shutdown, work_stealing_executor.py).
BUSY: Final = 0  # a worker runs, or work is queued, or a task may still be woken
QUIESCENT: Final = 1  # nothing left: terminate
STUCK: Final = 2  # interpreter exit, only never-woken suspended tasks left: cancel them

_monotonic: Final = time.monotonic
_sched_yield: Final[Callable[[], None]] = getattr(os, "sched_yield", lambda: time.sleep(0))


class _CountingOverflow(GlobalQueue[JoinHandle[Any]]):
    """The ``overflow`` of a worker's LocalQueue: the pool's global queue, counting each
    overflow push in the worker's ``overflows`` metric.

    Only the owner pushes to its local queue, so only the owner's thread calls ``push``
    and ``push_batch`` here: the counter stays single-writer, and the hot path (a push
    that fits) pays nothing for the count.
    """

    __slots__ = ("_target", "_worker")

    def __new__(cls, *args: Any, **kwargs: Any) -> _CountingOverflow:
        return object.__new__(cls)

    def __init__(self, target: GlobalQueue[JoinHandle[Any]], worker: WorkerCounters) -> None:
        self._target = target
        self._worker = worker

    @property
    def backend(self) -> str:  # type: ignore[override]
        return self._target.backend

    @property
    def capacity(self) -> int | None:
        return self._target.capacity

    @property
    def closed(self) -> bool:
        return self._target.closed

    def push(self, item: JoinHandle[Any]) -> None:
        self._worker.overflows += 1
        self._target.push(item)

    def push_batch(self, items: Iterable[JoinHandle[Any]]) -> None:
        self._worker.overflows += 1
        self._target.push_batch(items)

    def try_pop(self) -> JoinHandle[Any] | None:
        return self._target.try_pop()

    def try_pop_batch(self, n: int) -> list[JoinHandle[Any]]:
        return self._target.try_pop_batch(n)

    def __len__(self) -> int:
        return len(self._target)

    def close(self) -> None:
        self._target.close()


class WorkerThread(WorkerCounters):
    """One worker of a ``WorkStealingExecutor``; see the module docstring.

    Constructed by the pool, one per thread slot; ``main`` is the thread's target.
    """

    __slots__ = (
        "cancelling",
        "depth",
        "event",
        "gq",
        "index",
        "lifo",
        "parked",
        "pool",
        "queue",
        "rng",
        "scheduler",
        "searching",
        "thread",
    )

    def __init__(self, pool: Pool, index: int, rng: random.Random) -> None:
        super().__init__()
        self.pool = pool
        self.scheduler = pool
        self.index = index
        self.gq = pool.gq
        config = pool.config
        self.queue: LocalQueue[JoinHandle[Any]] = LocalQueue(
            config.local_queue_capacity,
            _CountingOverflow(pool.gq, self),
            backend=config.queue_backend,
        )
        self.event = Event()
        self.rng = rng
        self.lifo: JoinHandle[Any] | None = None
        self.searching = False
        self.parked = False
        self.depth = 0
        self.cancelling = False
        self.thread: threading.Thread | None = None

    @property
    def executor(self) -> WorkStealingExecutor:
        """The executor this worker belongs to."""
        return self.pool.executor

    def __repr__(self) -> str:
        return f"<WorkerThread {self.index} of {self.pool.name}>"

    # -- the thread -------------------------------------------------------------------

    def main(self) -> None:
        """The thread's body: run until the pool terminates."""
        tls.runner = self
        self.queue.bind_owner()
        pool = self.pool
        retired = False
        try:
            retired = self._run_loop()
        except BaseException as exc:
            pool.fail(exc)
        finally:
            tls.runner = None
            if not retired:
                pool.worker_exited(self)

    def _run_loop(self) -> bool:
        """The worker loop (module docstring), with the common path inlined: on 3.13t
        every Python-level call and attribute access costs tens of nanoseconds, and a
        trivial task costs about a microsecond in all.

        Returns ``True`` when the thread retires (idle for ``keep_alive``), ``False``
        when the pool terminated."""
        pool = self.pool
        gq = self.gq
        pop = self.queue.pop
        timer_mask = TIMER_CHECK_INTERVAL - 1
        tick = 0
        while not pool.terminate:
            task = self.lifo
            if task is not None:
                # Only a wake from outside a task step (a parking worker cancelling
                # suspended tasks at exit) leaves a task here between steps.
                self.lifo = None
                self.lifo_pops += 1
            else:
                tick += 1
                if not tick & timer_mask:
                    reactor = reactors._default
                    if (
                        reactor is not None
                        and reactor._wheel._reported <= _monotonic()
                        and reactor.fire_due_timers()
                    ):
                        continue  # what fired is in the LIFO slot and the local queue
                if tick % GLOBAL_QUEUE_INTERVAL == 0:
                    task = gq.try_pop()
                    if task is not None:
                        self.global_pops += 1
                if task is None:
                    task = pop()
                    if task is not None:
                        self.local_pops += 1
                    else:
                        task = self._refill()
                        if task is None:
                            task = self._steal_work()
                            if task is None:
                                if self._park():
                                    return True
                                continue
            if self.searching:
                self._leave_searching()
            self.tasks_polled += 1
            if self.cancelling:
                task.cancel()
            if task.run(self):
                self.push_back(task)
            if self.lifo is not None:
                self._drain_lifo()
        return False

    def _refill(self) -> JoinHandle[Any] | None:
        """Take a share of the global queue: one task to run, the rest pushed locally."""
        gq = self.gq
        available = len(gq)
        if available <= 0:
            return None
        n = min(available // self.pool.nworkers + 1, MAX_REFILL, self.pool.refill_cap)
        if n <= 1:
            task = gq.try_pop()
            if task is not None:
                self.global_pops += 1
            return task
        batch = gq.try_pop_batch(n)
        if not batch:
            return None
        self.global_pops += len(batch)
        if len(batch) > 1:
            push = self.queue.push
            for i in range(len(batch) - 1, 0, -1):
                push(batch[i])
            self.pool.notify(strong=False)
        return batch[0]

    def _steal_work(self) -> JoinHandle[Any] | None:
        """Search: steal from the other workers, then look at the global queue again."""
        pool = self.pool
        if not self.searching:
            if 2 * pool.num_searching >= pool.nworkers:
                return None  # racy throttle: enough workers are searching already
            with pool.idle_lock:
                pool.num_searching += 1
            self.searching = True
        for attempt in range(STEAL_PASSES):
            task = self._steal_pass()
            if task is not None:
                return task
            task = self._refill()
            if task is not None:
                return task
            if attempt + 1 < STEAL_PASSES:
                _sched_yield()
        return None

    def _steal_pass(self) -> JoinHandle[Any] | None:
        workers = self.pool.workers
        n = len(workers)
        if n <= 1:
            return None
        dest = self.queue
        start = self.rng.randrange(n)
        for i in range(n):
            victim = workers[(start + i) % n]
            if victim is self or not len(victim.queue):
                continue
            self.steal_attempts += 1
            task = victim.queue.steal_into(dest)
            if task is not None:
                moved = len(dest)
                self.steal_successes += 1
                self.stolen += moved + 1
                if moved:
                    self.pool.notify(strong=False)
                return task
        return None

    def has_stealable_work(self) -> bool:
        """Whether this worker's queue holds tasks (any thread; approximate)."""
        return len(self.queue) > 0

    # -- running ----------------------------------------------------------------------

    def _run_task(self, task: JoinHandle[Any]) -> None:
        """Step ``task``, then the tasks it woke into the LIFO slot (the loop's body)."""
        if self.searching:
            self._leave_searching()
        self._poll(task)
        if self.lifo is not None:
            self._drain_lifo()

    def _drain_lifo(self) -> None:
        """Run LIFO-slot tasks, at most ``MAX_LIFO_POLLS`` in a row; the next one goes to
        the back of the global queue (fairness against ping-pong pairs)."""
        lifo_polls = 0
        while True:
            task = self.lifo
            if task is None:
                return
            self.lifo = None
            if lifo_polls >= MAX_LIFO_POLLS:
                self.push_back(task)
                return
            lifo_polls += 1
            self.lifo_pops += 1
            self._poll(task)

    def _poll(self, task: JoinHandle[Any]) -> None:
        self.tasks_polled += 1
        if self.cancelling:
            task.cancel()
        if task.run(self):
            self.push_back(task)

    def push_back(self, task: JoinHandle[Any]) -> None:
        """Queue a yielded or re-woken task behind everything queued (global queue)."""
        try:
            self.gq.push(task)
        except QueueClosed:
            # Only after termination, when no worker runs tasks: the final drain of the
            # pool cancels suspended tasks; this one is in the suspended set.
            return
        self.pool.notify(strong=False)

    def _leave_searching(self) -> None:
        """Stop searching (work was found); the last searcher always wakes one more worker
        (tokio's ``transition_worker_from_searching``, Go's ``resetspinning``): the chain
        that grows parallelism one worker at a time. Making this wake conditional on
        seeing queued work (tried, to save a futex call per submit-and-wait round trip)
        lost wake-ups: the task-group timeout tests hung about one run in six with
        ``park_timeout=None``, because a push that skipped its own wake while this worker
        was searching is not always visible to a queue scan made here."""
        pool = self.pool
        self.searching = False
        with pool.idle_lock:
            pool.num_searching -= 1
            last = pool.num_searching == 0
        if last:
            pool.notify(strong=False)

    # -- scheduling from this thread --------------------------------------------------

    def spawn_local(self, task: JoinHandle[Any]) -> None:
        """Queue a new task from a task running on this worker (stealable)."""
        pool = self.pool
        if pool.terminate:
            pool.refuse(task)
        self.queue.push(task)
        # pool.notify(strong=False), with its racy throttle inlined.
        if not pool.num_searching and (
            pool.sleepers or pool.retired or pool.spawned < pool.spawn_limit
        ):
            pool.notify(strong=True)

    def schedule_woken(self, task: JoinHandle[Any]) -> None:
        """Queue a task woken by code running on this worker: the LIFO slot."""
        previous = self.lifo
        self.lifo = task
        if previous is not None:
            self.queue.push(previous)
            self.pool.notify(strong=False)

    # -- parking ----------------------------------------------------------------------

    def _enter_park(self, helping: bool) -> bool:
        """Steps 1-2 of parking (module docstring); ``False``: do not wait (the pool
        terminated, or this worker must run the cancellations of an exit)."""
        pool = self.pool
        self.parks += 1
        with pool.idle_lock:
            pool.num_unparked -= 1
            last = False
            if self.searching:
                pool.num_searching -= 1
                last = pool.num_searching == 0
                # Under the lock: once it is released, a notifier may pop this worker
                # and set ``searching`` (and count it) for its wake-up.
                self.searching = False
            self.parked = True
            pool.sleepers.append(self)
            if helping:
                pool.helpers_parked += 1
            state = pool.quiescence_locked() if pool.draining else BUSY
            if state == STUCK:
                # Exiting the interpreter with only never-woken tasks left: this worker
                # cancels them (they land in its own queues) instead of sleeping.
                pool.unpark_locked(self, searching=False)
                if helping:
                    pool.helpers_parked -= 1
        if state == QUIESCENT:
            pool.begin_termination()
            return False
        if state == STUCK:
            pool.cancel_stuck()
            return False
        if last and pool.work_pending():
            pool.notify(strong=True)
        return True

    def _park(self) -> bool:
        """Park until woken; ``True``: this thread retires instead (idle for
        ``keep_alive``; never the first worker)."""
        pool = self.pool
        if not self._enter_park(helping=False):
            return False
        timeout = pool.park_timeout
        keep_alive = pool.keep_alive if self.index else None
        retire_at = None if keep_alive is None else time.monotonic() + keep_alive
        event = self.event
        while not pool.terminate:
            wait = timeout
            if retire_at is not None:
                left = max(retire_at - time.monotonic(), 0.0)
                wait = left if wait is None else min(wait, left)
            notified = event.wait(wait)
            with pool.idle_lock:
                if not self.parked:
                    return False
                if not notified:
                    # The backstop only where park_timeout asks for one (tests turn it
                    # off so that a lost wake-up hangs); a keep-alive expiry does not
                    # rescue: retiring is safe, a later notify restarts this slot.
                    if timeout is not None and pool.work_pending():
                        pool.unpark_locked(self, searching=True)
                        return False
                    if retire_at is not None and time.monotonic() >= retire_at:
                        if pool.terminate:
                            return False
                        pool.retire_locked(self)
                        return True
        return False

    def unpark_from_handle(self) -> None:
        """Completion entry of a handle this worker helps on: wake it if it is parked."""
        pool = self.pool
        with pool.idle_lock:
            if not self.parked:
                return
            pool.unpark_locked(self, searching=False)
        self.event.notify()

    # -- helping while waiting --------------------------------------------------------

    def help_until(self, handle: JoinHandle[Any], timeout: float | None) -> bool:
        """Run other tasks until ``handle`` is done; ``False`` if ``timeout`` passed.

        The awaited task itself runs first when it is the newest task of this worker
        (the usual spawn-then-wait; ForkJoinPool's ``tryUnpush``), since helping pops
        the local queue newest first.
        """
        if handle._st >= DONE_OK:
            return True
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        if self.depth >= MAX_HELP_DEPTH and self.pool.compensate():
            return self._block_until(handle, deadline)
        self.depth += 1
        try:
            while handle._st < DONE_OK:
                task = self._help_next()
                if task is not None:
                    self._run_task(task)
                    continue
                if deadline is not None and time.monotonic() >= deadline:
                    return False
                self._park_helping(handle, deadline)
            return True
        finally:
            self.depth -= 1
            if self.searching:
                # Woken for work that someone else took: the task that waited goes on
                # running here, so this worker must not keep counting as a searcher
                # (a searcher suppresses the wake-ups of new work).
                self._leave_searching()

    def _help_next(self) -> JoinHandle[Any] | None:
        task = self.lifo
        if task is not None:
            self.lifo = None
            self.lifo_pops += 1
            return task
        task = self.queue.pop()
        if task is not None:
            self.local_pops += 1
            return task
        task = self._refill()
        if task is not None:
            return task
        return self._steal_work()

    def _park_helping(self, handle: JoinHandle[Any], deadline: float | None) -> None:
        entry = self.unpark_from_handle
        if not handle.register(entry):
            if self.searching:
                self._leave_searching()
            return
        pool = self.pool
        try:
            if not self._enter_park(helping=True):
                if pool.terminate:
                    # Only a handle of another executor can be pending now.
                    self._block_until(handle, deadline)
                return
            try:
                # The handle may have finished between register() and this worker's
                # registration as a sleeper: its entry then found the worker not parked
                # and left no token. It set the state before it ran the entry, and the
                # entry took idle_lock before we did, so the state is visible here.
                with pool.idle_lock:
                    if self.parked and handle._st >= DONE_OK:
                        pool.unpark_locked(self, searching=False)
                        return
                event = self.event
                while not pool.terminate:
                    remaining = None
                    if deadline is not None:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            break
                    if pool.park_timeout is not None:
                        remaining = (
                            pool.park_timeout
                            if remaining is None
                            else min(remaining, pool.park_timeout)
                        )
                    notified = event.wait(remaining)
                    with pool.idle_lock:
                        if not self.parked:
                            return
                        if handle._st >= DONE_OK or (not notified and pool.work_pending()):
                            pool.unpark_locked(self, searching=False)
                            return
                with pool.idle_lock:
                    if self.parked:
                        pool.unpark_locked(self, searching=False)
            finally:
                with pool.idle_lock:
                    pool.helpers_parked -= 1
            if pool.terminate:
                # A fatal error stopped the pool while this worker waited.
                self._block_until(handle, deadline)
        finally:
            handle.unregister(entry)

    def _block_until(self, handle: JoinHandle[Any], deadline: float | None) -> bool:
        """Wait without helping (depth cap, a spare thread started): let others take
        this worker's LIFO task, then block on the handle."""
        task = self.lifo
        if task is not None:
            self.lifo = None
            self.queue.push(task)
            self.pool.notify(strong=True)
        latch = threading.Lock()
        latch.acquire()
        release = latch.release
        if not handle.register(release):
            return True
        if deadline is None:
            latch.acquire()
            return True
        if latch.acquire(timeout=max(deadline - time.monotonic(), 0.0)):
            return True
        handle.unregister(release)
        return handle._st >= DONE_OK

    # -- fork-join --------------------------------------------------------------------

    def join(self, fn_a: Callable[[], A], fn_b: Callable[[], B]) -> tuple[A, B]:
        """``zuki.join`` on this worker; see the module docstring."""
        task_b: CallTask[B] = CallTask(fn_b, (), copy_context())
        self.spawn_local(task_b)
        try:
            a = fn_a()
        except BaseException:
            self._join_wait(task_b)
            raise
        self._join_wait(task_b)
        return a, task_b.result()

    def _join_wait(self, task_b: JoinHandle[Any]) -> None:
        """Run ``task_b`` here if nobody stole it, else help until it is done."""
        queue = self.queue
        while task_b._st < DONE_OK:
            task = queue.pop()
            if task is None:
                break
            self.local_pops += 1
            self._run_task(task)
            if task is task_b:
                return
        if task_b._st < DONE_OK:
            self.help_until(task_b, None)
