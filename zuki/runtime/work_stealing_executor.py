"""WorkStealingExecutor: a pool of worker threads with local queues, a global queue,
work stealing, parking without lost wake-ups, and a shutdown that loses nothing.

Prior art: tokio's multi-thread scheduler (``worker.rs``, ``idle.rs``, ``inject``),
kprotty's zap thread pool (lazy thread spawning, spawn failure tolerated, ``notify``),
Go's scheduler (wake one only if nobody spins), ``concurrent.futures.ThreadPoolExecutor``
(the API contract, ``threading._register_atexit``). The plan is scheduler.md §8.

The pieces
==========

:class:`WorkStealingExecutor` is the public shell (``concurrent.futures.Executor``
contract plus ``spawn``/``spawn_batch``/``block_on``/``metrics``). :class:`Pool` is the
state the workers share: the ``GlobalQueue``, the list of ``WorkerThread`` slots, and
the *idle* bookkeeping, all under one ``threading.Lock``, ``idle_lock``:

* ``sleepers``: parked workers (a stack); ``num_unparked``: started workers not parked;
  ``num_searching``: workers looking for work (a woken worker starts as a searcher);
* ``spawned``/``spawn_limit``: thread slots started (lazily, on demand) and the most
  that may be; ``retired``: slots whose thread exited after ``keep_alive`` idle (a
  stack; restarted first); ``helpers_parked``: parked workers with a task on their stack (waiting in
  ``result()``);
* ``closed`` (no more external tasks), ``draining`` (shutdown called), ``terminate``
  (the workers stop).

Why a Lock and not the ``SyncState`` CAS word: one uncontended ``Lock`` round trip is
about a tenth of one ctypes compare-and-swap on 3.13t, and the lock also orders the
decisions that liveness depends on, which is what the no-lost-wake-up argument needs.
Racy reads of these counters are used only as throttles on the *weak* path.

Submission and notify
=====================

* From a task on one of this pool's workers: the worker's own ``LocalQueue`` (no
  synchronization), then a *weak* notify: skip when someone is searching or nobody is
  parked and no thread can be started (racy reads: a missed wake here costs parallelism
  only, since the pushing worker is alive and drains its own queue).
* From any other thread: under ``idle_lock``, check ``closed``, push to the global queue
  and decide whom to wake (a *strong* notify: pop a sleeper and make it a searcher, or
  reserve a new thread, unless a searcher exists); then, outside the lock, unpark it or
  start the thread. The decision and a parker's registration are ordered by the same
  lock, which is the no-lost-wake-up argument of scheduler.md §8.4.
* A batch (``spawn_batch``, ``map``) from outside: one ``push_batch`` under the lock
  and ``min(len(batch), idle)`` workers woken at once (Rayon's ``new_jobs``); from a
  worker, pushed locally when it fits, else the same global path.
* A wake: from a worker of this pool, that worker's LIFO slot; from anywhere else, the
  global queue plus a strong notify. A joiner's wake (an awaited task finished) goes to
  the back of the global queue (``schedule_back``; see ``PollableTask.wake_joiner``).

Threads start lazily, one per notify that finds no sleeper, up to ``workers`` (plus
spare threads for workers blocked at the helping depth cap, up to ``max_workers``). The
first thread starts in the constructor: if it cannot, the constructor raises
``ThreadSpawnError``. A later failure (the thread factory or ``Thread.start`` raises, a
restart included) is counted in ``metrics().failed_thread_starts``, warned about once
(``ThreadStartWarning``), stops further thread starts, and re-runs the notify so the
work that asked for the thread reaches a live worker.

Idle threads exit (``ExecutorConfig.keep_alive``; the JDK's ``keepAliveTime``, tokio's
blocking-pool ``keep_alive``): a parked worker other than the first that sees no work for
``keep_alive`` seconds leaves the sleepers list for ``retired`` under ``idle_lock``, in
the same step, and its thread returns. A notify that finds no sleeper restarts a retired
slot before it opens a new one (same ``WorkerThread``, same queue, a new thread, which
first joins the old one so two threads never share the slot). Because the move from
``sleepers`` to ``retired`` is one step under the lock, a notifier always finds the
worker on one of the two lists: no wake-up is lost to a retiring thread. The first
worker never retires, so a pool whose restarts fail still has a live thread.

Shutdown
========

``shutdown(wait=True, *, cancel_futures=False)``, per scheduler.md §8.8:

1. under the lock: ``closed`` (external ``spawn``/``submit`` now raise
   ``ExecutorShutdownError``) and ``draining``. Tasks spawned from inside running tasks
   (``zuki.spawn``) are still accepted while the pool drains.
2. ``cancel_futures=True``: every worker's ``cancelling`` flag makes it cancel each
   task it takes instead of running it (a started coroutine gets ``Cancelled`` thrown
   in); the global queue is drained here and its new tasks cancelled at once; suspended
   tasks are cancelled (woken to have ``Cancelled`` thrown into them).
3. The pool terminates when it is *quiescent*: every worker parked, no worker parked
   inside ``result()``, every queue empty, and no suspended task left (a suspended task
   may still be woken by another thread: ``shutdown(wait=True)`` waits for it, like
   ``ThreadPoolExecutor`` waits for a running call). The worker whose park makes the
   pool quiescent (or ``shutdown`` itself, if the pool is idle already) decides, under
   the lock, so no task can slip in between.
4. Termination closes the global queue, releases every worker's ``Event`` for good, and
   the workers exit. ``wait=True`` joins them.

``shutdown`` is idempotent. Called with ``wait=True`` from one of the pool's own
workers it starts the shutdown and raises ``RuntimeError`` (waiting would wait for the
calling task itself). At interpreter exit (``threading._register_atexit``, as
``concurrent.futures`` does) every live executor is shut down with ``wait=True``, so
queued work runs; suspended tasks that nobody can wake any more are then cancelled
(``Cancelled`` thrown in; closed if they ignore it), so the exit never hangs on them.

Errors in the scheduler itself (not in tasks) are never swallowed: the worker records
the exception, the pool terminates, and ``shutdown()`` raises ``ExecutorError`` from it.

Thread-safety: every public method may be called from any thread.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import threading
import warnings
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final

from zuki.concurrent.global_queue import GlobalQueue
from zuki.runtime.errors import (
    SHUTDOWN_MESSAGE,
    ExecutorConfigError,
    ExecutorError,
    ExecutorShutdownError,
    ThreadSpawnError,
    ThreadStartWarning,
)
from zuki.runtime.executor import Executor, ExecutorConfig, register_live, start_thread
from zuki.runtime.executor import unregister_live as _unregister_live
from zuki.runtime.metrics import ExecutorMetrics
from zuki.runtime.task import JoinHandle, PollableTask, tls
from zuki.runtime.waker import WakerData, WorkStealingWakerData
from zuki.runtime.worker_thread import BUSY, QUIESCENT, STUCK, WorkerThread

if TYPE_CHECKING:
    from zuki.runtime.task import Runner

__all__ = ["Pool", "WorkStealingExecutor"]

_pool_ids = itertools.count(1)

#: Rounds of throwing ``Cancelled`` into never-woken tasks at exit before closing them.
EXIT_CANCEL_ROUNDS: Final = 2


class Pool:
    """The state a work-stealing executor's workers share (module docstring).

    Thread ownership: fields under "idle" are written under ``idle_lock`` only; ``gq``,
    ``workers`` (append-only) and ``suspended`` are thread-safe containers; the rest is
    set in the constructor.
    """

    __slots__ = (
        "admission_cap",
        "closed",
        "config",
        "draining",
        "executor",
        "exit_mode",
        "exit_rounds",
        "failed_thread_starts",
        "fatal",
        "gq",
        "helpers_parked",
        "idle_lock",
        "keep_alive",
        "local_capacity",
        "name",
        "num_searching",
        "num_unparked",
        "nworkers",
        "park_timeout",
        "refill_cap",
        "restarts_failed",
        "retired",
        "seed",
        "sleepers",
        "spawn_limit",
        "spawned",
        "suspended",
        "terminate",
        "terminated",
        "thread_limit",
        "threads_exited",
        "threads_retired",
        "threads_started",
        "warned",
        "workers",
    )

    def __init__(self, executor: WorkStealingExecutor, config: ExecutorConfig) -> None:
        self.executor = executor
        self.config = config
        self.name = f"{config.thread_name_prefix}-{next(_pool_ids)}"
        self.nworkers = config.worker_count
        self.local_capacity = config.local_queue_capacity
        self.refill_cap = max(1, config.local_queue_capacity // 2)
        self.park_timeout = config.park_timeout
        self.keep_alive = config.keep_alive
        self.admission_cap = config.global_queue_capacity
        self.gq: GlobalQueue[JoinHandle[Any]] = GlobalQueue(backend=config.queue_backend)
        self.workers: list[WorkerThread] = []
        self.suspended: set[PollableTask[Any]] = set()
        self.seed = config.rng_seed
        # idle
        self.idle_lock = threading.Lock()
        self.sleepers: list[WorkerThread] = []
        self.retired: list[WorkerThread] = []
        self.restarts_failed = False
        self.num_searching = 0
        self.num_unparked = 0
        self.spawned = 0
        self.spawn_limit = config.worker_count
        self.thread_limit = config.thread_limit
        self.helpers_parked = 0
        self.closed = False
        self.draining = False
        self.terminate = False
        self.exit_mode = False
        self.exit_rounds = 0
        self.threads_started = 0
        self.threads_exited = 0
        self.threads_retired = 0
        self.failed_thread_starts = 0
        self.warned = False
        self.fatal: BaseException | None = None
        self.terminated = threading.Event()

    # -- the Scheduler protocol (task.py) ---------------------------------------------

    def schedule(self, task: PollableTask[Any]) -> None:
        """Queue a woken task: this worker's LIFO slot, or the global queue."""
        runner = tls.runner
        if runner is not None:
            if runner.scheduler is self:
                runner.schedule_woken(task)  # type: ignore[attr-defined]
                return
        else:
            batch = tls.batch
            if batch is not None:
                # The reactor's thread, dispatching a turn: schedule_many at its end.
                tasks = batch.get(self)
                if tasks is None:
                    batch[self] = [task]
                else:
                    tasks.append(task)
                return
        with self.idle_lock:
            if self.terminate:
                refused = True
            else:
                refused = False
                self.gq.push(task)
                action = self._notify_locked()
        if refused:
            # The pool stopped: nobody would ever run it.
            task.close_unfinished()
            return
        self._act(action)

    def schedule_many(self, tasks: list[PollableTask[Any]]) -> None:
        """Queue woken tasks from a thread that is not one of this pool's workers (the
        reactor's, after a turn): one push and one wake decision for all of them."""
        actions: list[WorkerThread | int] = []
        with self.idle_lock:
            refused = self.terminate
            if not refused:
                self.gq.push_batch(tasks)
                if not self.num_searching:
                    actions = self._wake_many_locked(len(tasks))
        if refused:
            for task in tasks:
                task.close_unfinished()
            return
        for action in actions:
            self._act(action)

    def schedule_back(self, task: PollableTask[Any]) -> None:
        """Queue a woken joiner behind the queued work (the global queue)."""
        runner = tls.runner
        if runner is not None and runner.scheduler is self:
            runner.push_back(task)  # type: ignore[attr-defined]
            return
        self.schedule(task)

    def waker_data(self, task: PollableTask[Any]) -> WakerData:
        return WorkStealingWakerData(self.executor, task)

    # -- notify -----------------------------------------------------------------------

    def notify(self, strong: bool) -> None:
        """Wake one parked worker (or start a thread) unless a searcher exists.

        ``strong=False`` first consults racy reads and may skip the wake (module doc).
        """
        if not strong and (
            self.num_searching
            or (not self.sleepers and not self.retired and self.spawned >= self.spawn_limit)
        ):
            return
        with self.idle_lock:
            action = self._notify_locked()
        self._act(action)

    def _notify_locked(self) -> WorkerThread | int | None:
        """Decide whom to wake; with ``idle_lock`` held. Returns a worker to unpark, a
        thread slot index to start, or ``None``."""
        if self.num_searching or self.terminate:
            return None
        return self._wake_one_locked()

    def _wake_one_locked(self) -> WorkerThread | int | None:
        if self.sleepers:
            worker = self.sleepers.pop()
            worker.parked = False
            worker.searching = True
            self.num_unparked += 1
            self.num_searching += 1
            return worker
        if self.retired and not self.restarts_failed and not self.terminate:
            # Restart the slot of a thread that exited idle (module docstring).
            index = self.retired.pop().index
            self.num_unparked += 1
            self.num_searching += 1
            return index
        if self.spawned < self.spawn_limit and not self.terminate:
            index = self.spawned
            self.spawned += 1
            self.num_unparked += 1
            self.num_searching += 1
            return index
        return None

    def _act(self, action: WorkerThread | int | None) -> None:
        if action is None:
            return
        if isinstance(action, WorkerThread):
            action.event.notify()
        else:
            self._start_worker(action)

    def notify_many(self, n: int) -> None:
        """Wake up to ``n`` workers at once (parked ones first, then new threads)."""
        with self.idle_lock:
            if self.terminate:
                return
            actions = self._wake_many_locked(n)
        for action in actions:
            self._act(action)

    def _wake_many_locked(self, n: int) -> list[WorkerThread | int]:
        """Decide up to ``n`` wakes (``_wake_one_locked`` each); with ``idle_lock`` held."""
        actions: list[WorkerThread | int] = []
        while len(actions) < n:
            action = self._wake_one_locked()
            if action is None:
                break
            actions.append(action)
        return actions

    def retire_locked(self, worker: WorkerThread) -> None:
        """Move an idle parked ``worker`` from the sleepers to ``retired``; with
        ``idle_lock`` held. Its thread then returns (``WorkerThread._park``)."""
        self.sleepers.remove(worker)
        worker.parked = False
        self.retired.append(worker)
        self.threads_retired += 1

    def unpark_locked(self, worker: WorkerThread, *, searching: bool) -> None:
        """Take a parked ``worker`` off the sleepers list; with ``idle_lock`` held."""
        self.sleepers.remove(worker)
        worker.parked = False
        self.num_unparked += 1
        if searching:
            worker.searching = True
            self.num_searching += 1

    def work_pending(self) -> bool:
        """Whether any queue holds a task (any thread; a snapshot)."""
        if len(self.gq):
            return True
        return any(len(w.queue) for w in self.workers)

    # -- threads ----------------------------------------------------------------------

    def _start_worker(self, index: int) -> bool:
        """Start the thread of slot ``index`` (reserved under the lock by the caller):
        a new slot, or a retired one (whose old thread is joined first)."""
        restart = index < len(self.workers)
        try:
            if restart:
                worker = self.workers[index]
                old = worker.thread
                if old is not None:
                    # It left the sleepers list under the lock and is returning.
                    old.join()
            else:
                seed = None if self.seed is None else self.seed * 1_000_003 + index
                worker = WorkerThread(self, index, random.Random(seed))
                self.workers.append(worker)
            # A new thread starts as a searcher: the notify that reserved it counted it.
            worker.searching = True
            worker.thread = start_thread(self.config, worker.main, f"{self.name}-{index}")
        except BaseException as exc:
            self._thread_start_failed(exc, worker if restart else None)
            return False
        with self.idle_lock:
            self.threads_started += 1
        return True

    def _thread_start_failed(
        self, exc: BaseException, restarted: WorkerThread | None = None
    ) -> None:
        with self.idle_lock:
            if restarted is not None:
                self.retired.append(restarted)
                self.restarts_failed = True
            else:
                self.spawned -= 1
            self.num_unparked -= 1
            self.num_searching -= 1
            self.spawn_limit = self.thread_limit = self.spawned
            self.failed_thread_starts += 1
            first = not self.warned
            self.warned = True
            running = self.spawned - len(self.retired)
        if running == 0:
            return  # the constructor raises ThreadSpawnError
        if first:
            # With -W error the warning becomes an exception: the failure is still counted
            # in the metrics, and a warning filter must not break the spawn that asked.
            with contextlib.suppress(Exception):
                warnings.warn(
                    f"zuki: could not start a worker thread ({exc!r}); {self.name} goes on "
                    f"with the {running} thread(s) it has",
                    ThreadStartWarning,
                    stacklevel=4,
                )
        # The notify that asked for this thread reserved a searcher for the work it
        # announced; give that work to a live worker instead.
        self.notify(strong=True)

    def compensate(self) -> bool:
        """Start a spare thread for a worker that wants to block at the helping depth
        cap; ``False`` if none could be started (the worker keeps helping instead)."""
        with self.idle_lock:
            if self.terminate:
                return False
            if self.retired and not self.restarts_failed:
                index = self.retired.pop().index
            elif self.spawned < self.thread_limit:
                self.spawn_limit = max(self.spawn_limit, self.spawned + 1)
                index = self.spawned
                self.spawned += 1
            else:
                return False
            self.num_unparked += 1
            self.num_searching += 1
        return self._start_worker(index)

    def worker_exited(self, worker: WorkerThread) -> None:
        """Called by each worker thread as it ends; the last one drains what is left."""
        with self.idle_lock:
            self.threads_exited += 1
            # ``spawned`` counts reserved threads too (not started yet): they exit later.
            # Retired slots have no thread (none restarts once ``terminate`` is set).
            last = self.threads_exited >= self.spawned - len(self.retired)
        if last:
            self._final_drain()

    def _final_drain(self) -> None:
        """Cancel every task still queued or suspended once no worker runs any more
        (tokio's ``shutdown_core``). After a quiescent termination there is none; after
        a scheduler error this completes the handles that threads may be blocked on.
        The owners of the local queues have exited, so this thread may pop them."""
        leftovers: list[JoinHandle[Any]] = []
        for worker in list(self.workers):
            if worker.lifo is not None:
                leftovers.append(worker.lifo)
                worker.lifo = None
            worker.queue.bind_owner()
            while (task := worker.queue.pop()) is not None:
                leftovers.append(task)
        while (task := self.gq.try_pop()) is not None:
            leftovers.append(task)
        leftovers.extend(self.suspended.copy())
        for task in leftovers:
            task.cancel()
            if isinstance(task, PollableTask):
                task.close_unfinished()

    # -- lifecycle --------------------------------------------------------------------

    def refuse(self, task: JoinHandle[Any]) -> None:
        """Refuse a task spawned after the pool stopped (cancel it and raise)."""
        task.cancel()
        raise ExecutorShutdownError(SHUTDOWN_MESSAGE)

    def quiescence_locked(self) -> int:
        """``BUSY``, ``QUIESCENT`` or ``STUCK`` (see worker_thread.py); under the lock."""
        if self.num_unparked or self.helpers_parked or self.terminate:
            return BUSY
        if self.work_pending():
            return BUSY
        if self.suspended:
            return STUCK if self.exit_mode else BUSY
        return QUIESCENT

    def cancel_stuck(self) -> None:
        """Interpreter exit: cancel suspended tasks nobody will wake any more."""
        self.exit_rounds += 1
        tasks = self.suspended.copy()
        for task in tasks:
            if self.exit_rounds <= EXIT_CANCEL_ROUNDS:
                task.cancel()
            else:
                self.suspended.discard(task)
                task.close_unfinished()
        if self.exit_rounds > EXIT_CANCEL_ROUNDS:
            self._check_quiescent()

    def _check_quiescent(self) -> None:
        with self.idle_lock:
            state = self.quiescence_locked() if self.draining else BUSY
        if state == QUIESCENT:
            self.begin_termination()
        elif state == STUCK:
            self.cancel_stuck()

    def begin_termination(self) -> None:
        """Stop the workers (quiescent pool, or a fatal error); idempotent."""
        with self.idle_lock:
            if self.terminate:
                return
            self.terminate = True
        self.gq.close()
        for worker in list(self.workers):
            worker.event.shutdown()
        while (task := self.gq.try_pop()) is not None:
            task.cancel()
            if isinstance(task, PollableTask):
                task.close_unfinished()
        _unregister_live(self.executor)
        self.terminated.set()

    def fail(self, exc: BaseException) -> None:
        """A worker's scheduler code raised: record it and stop the pool."""
        with self.idle_lock:
            if self.fatal is None:
                self.fatal = exc
            self.closed = True
            self.draining = True
        self.begin_termination()


class WorkStealingExecutor(Executor):
    """A work-stealing pool of worker threads; see the module docstring.

    ``WorkStealingExecutor(max_workers=None, *, config=None)``: ``max_workers`` is the
    number of worker threads, positional as in ``ThreadPoolExecutor`` (so this is a
    drop-in replacement); it overrides ``config.workers``. With neither,
    ``ExecutorConfig()``'s defaults apply (``os.cpu_count()`` workers).

    Raises:
        ValueError: ``max_workers <= 0`` ("max_workers must be greater than 0").
        ExecutorConfigError: an invalid config.
        ThreadSpawnError: not even one worker thread could be started.
    """

    def __init__(self, max_workers: int | None = None, *, config: ExecutorConfig | None = None):
        if max_workers is not None:
            if not isinstance(max_workers, int) or isinstance(max_workers, bool):
                raise ExecutorConfigError(f"max_workers must be an int, got {max_workers!r}")
            if max_workers <= 0:
                raise ExecutorConfigError("max_workers must be greater than 0")
            if config is None:
                config = ExecutorConfig(workers=max_workers)
            else:
                config = replace(
                    config, workers=max_workers, max_workers=max(config.thread_limit, max_workers)
                )
        elif config is None:
            config = ExecutorConfig()
        self._config = config
        self._pool = pool = Pool(self, config)
        self._scheduler = pool
        with pool.idle_lock:
            index = pool._wake_one_locked()
        assert index == 0
        if not pool._start_worker(0):
            pool.terminate = True
            raise ThreadSpawnError(
                f"could not start any worker thread for {pool.name} "
                "(see the ThreadStartWarning or the thread factory's error)"
            )
        register_live(self)

    @property
    def config(self) -> ExecutorConfig:
        return self._config

    def __repr__(self) -> str:
        pool = self._pool
        state = "terminated" if pool.terminate else "shut down" if pool.closed else "running"
        return (
            f"<WorkStealingExecutor {pool.name} {state} workers={pool.nworkers} "
            f"threads={pool.spawned - len(pool.retired)}>"
        )

    # -- scheduling -------------------------------------------------------------------

    def _own_runner(self) -> Runner | None:
        runner = tls.runner
        if runner is not None and runner.scheduler is self._pool:
            return runner
        return None

    def _check_open(self) -> None:
        if self._pool.closed:
            raise ExecutorShutdownError(SHUTDOWN_MESSAGE)

    def _schedule_new(self, task: JoinHandle[Any]) -> None:
        pool = self._pool
        runner = tls.runner
        if runner is not None and runner.scheduler is pool:
            if pool.closed:
                # ThreadPoolExecutor's contract holds inside the pool too; zuki.spawn
                # (runner.spawn_local directly) keeps working while the pool drains.
                raise ExecutorShutdownError(SHUTDOWN_MESSAGE)
            runner.spawn_local(task)
            return
        if pool.admission_cap is not None:
            self._wait_for_room(1)
        # The strong path (module docstring), with Pool._notify_locked inlined.
        lock = pool.idle_lock
        lock.acquire()
        try:
            if pool.closed:
                raise ExecutorShutdownError(SHUTDOWN_MESSAGE)
            pool.gq.push(task)
            action = None if pool.num_searching else pool._wake_one_locked()
        finally:
            lock.release()
        if action is not None:
            pool._act(action)

    def _schedule_batch(self, tasks: list[JoinHandle[Any]]) -> None:
        pool = self._pool
        runner = self._own_runner()
        if runner is not None:
            worker: WorkerThread = runner  # type: ignore[assignment]
            if len(worker.queue) + len(tasks) <= pool.local_capacity:
                push = worker.queue.push
                for task in tasks:
                    push(task)
                pool.notify_many(len(tasks))
                return
            with pool.idle_lock:
                pool.gq.push_batch(tasks)
            pool.notify_many(len(tasks))
            return
        if pool.admission_cap is not None:
            self._wait_for_room(len(tasks))
        with pool.idle_lock:
            if pool.closed:
                raise ExecutorShutdownError(SHUTDOWN_MESSAGE)
            pool.gq.push_batch(tasks)
        pool.notify_many(len(tasks))

    def _wait_for_room(self, n: int) -> None:
        """Back-pressure for ``global_queue_capacity``: wait until ``n`` tasks fit."""
        pool = self._pool
        cap = pool.admission_cap
        assert cap is not None
        delay = 0.0001
        while len(pool.gq) + n > cap and len(pool.gq) > 0 and not pool.closed:
            pool.terminated.wait(delay)
            delay = min(delay * 2, 0.01)

    # -- lifecycle --------------------------------------------------------------------

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting tasks; see the module docstring.

        Raises:
            RuntimeError: ``wait=True`` from one of this executor's worker threads
                (the shutdown is started, but cannot be waited for from there).
            ExecutorError: a scheduler error stopped the pool (chained).
        """
        pool = self._pool
        with pool.idle_lock:
            pool.closed = True
            pool.draining = True
            if cancel_futures:
                for worker in pool.workers:
                    worker.cancelling = True
        if cancel_futures:
            self._cancel_queued()
        pool._check_quiescent()
        if not wait:
            return
        if self._own_runner() is not None:
            raise RuntimeError(
                "shutdown(wait=True) called from a worker thread of the same executor: "
                "the shutdown has started, but this thread cannot wait for it"
            )
        pool.terminated.wait()
        current = threading.current_thread()
        for worker in list(pool.workers):
            thread = worker.thread
            if thread is not None and thread is not current:
                thread.join()
        if pool.fatal is not None:
            raise ExecutorError(f"{pool.name} stopped after a scheduler error") from pool.fatal

    def _cancel_queued(self) -> None:
        pool = self._pool
        restart: list[JoinHandle[Any]] = []
        while (task := pool.gq.try_pop()) is not None:
            task.cancel()
            if not task.done():
                restart.append(task)  # a started task: it must run to take the Cancelled
        if restart:
            with pool.idle_lock:
                if not pool.terminate:
                    pool.gq.push_batch(restart)
            pool.notify_many(len(restart))
        for task in pool.suspended.copy():
            task.cancel()

    def shutdown_at_exit(self) -> None:
        """Interpreter exit: run queued work, then cancel what can never be woken."""
        pool = self._pool
        with pool.idle_lock:
            pool.exit_mode = True
        self.shutdown(wait=True)

    def run(self) -> None:
        self._pool.terminated.wait()

    def metrics(self) -> ExecutorMetrics:
        pool = self._pool
        rows = tuple(w.snapshot(w.index) for w in list(pool.workers))
        return ExecutorMetrics.collect(
            rows,
            threads_started=pool.threads_started,
            failed_thread_starts=pool.failed_thread_starts,
            global_queue_len=len(pool.gq),
            suspended_tasks=len(pool.suspended),
            threads_retired=pool.threads_retired,
            live_threads=pool.threads_started - pool.threads_retired - pool.threads_exited,
        )
