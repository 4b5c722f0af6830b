"""Scheduler counters, and the snapshot ``executor.metrics()`` returns.

Prior art: tokio's ``RuntimeMetrics`` (per-worker ``poll_count``, ``steal_count``,
``steal_operations``, ``park_count``, ``overflow_count``, ``local_schedule_count``,
``remote_schedule_count``), collected in ``WorkerMetrics`` that only the owning worker
writes and that a reader samples without stopping anybody.

Design
======

Each worker owns one :class:`WorkerCounters`: plain ``int`` attributes that only that
worker's thread writes (``+= 1`` in the worker loop: no lock, no atomic). A ``+=`` on a
shared attribute loses updates on 3.13t, which is why nobody else ever writes them.
``executor.metrics()`` reads every worker's counters without synchronization: each
value is a value the counter really had at some moment, but the values of different
counters (or workers) are not taken at one instant. Totals are sums of such reads.

That is cheap enough to leave on: a counter bump is one attribute read and write on an
object the worker already holds (tens of ns), against a task that costs about a
microsecond. A count is bumped *before* the effect it counts becomes visible (a task is
counted as polled before its result is published), so that a thread which has seen the
effect and then takes a snapshot sees the count.

Counters
========

``tasks_polled``
    Task steps run (a callable task is polled once, a coroutine once per resumption).
``local_pops`` / ``lifo_pops``
    Tasks taken from the worker's own queue / its LIFO slot.
``global_pops``
    Tasks taken from the global queue (single pops and refill batches).
``stolen``
    Tasks moved from other workers' queues by this worker's steals.
``steal_attempts`` / ``steal_successes``
    ``steal_into`` calls / those that returned a task.
``parks``
    Times the worker went to sleep for lack of work.
``overflows``
    Pushes that found the local queue full (half of it went to the global queue).

Executor-wide fields of :class:`ExecutorMetrics`: ``threads_started`` (every start,
restarts after a keep-alive exit included), ``failed_thread_starts`` (thread starts that
raised; the pool went on without them), ``threads_retired`` (threads that exited after
``ExecutorConfig.keep_alive`` seconds idle), ``live_threads`` (worker threads running
now, parked ones included), ``global_queue_len``, ``suspended_tasks`` (started tasks
waiting for a wake-up).

Thread-safety: ``WorkerCounters`` fields are written by their owner only;
``snapshot()`` may be called from any thread. Snapshots are immutable.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Final

__all__ = ["COUNTERS", "ExecutorMetrics", "WorkerCounters", "WorkerMetrics"]

COUNTERS: Final = (
    "tasks_polled",
    "local_pops",
    "lifo_pops",
    "global_pops",
    "stolen",
    "steal_attempts",
    "steal_successes",
    "parks",
    "overflows",
)


class WorkerCounters:
    """The live counters of one worker; written by the owning thread only."""

    __slots__ = COUNTERS

    def __init__(self) -> None:
        self.tasks_polled = 0
        self.local_pops = 0
        self.lifo_pops = 0
        self.global_pops = 0
        self.stolen = 0
        self.steal_attempts = 0
        self.steal_successes = 0
        self.parks = 0
        self.overflows = 0

    def snapshot(self, index: int) -> WorkerMetrics:
        """An immutable copy of the counters (unsynchronized reads; see module doc)."""
        return WorkerMetrics(
            index,
            self.tasks_polled,
            self.local_pops,
            self.lifo_pops,
            self.global_pops,
            self.stolen,
            self.steal_attempts,
            self.steal_successes,
            self.parks,
            self.overflows,
        )


@dataclass(frozen=True)
class WorkerMetrics:
    """The counters of one worker at one (approximate) moment."""

    index: int
    tasks_polled: int = 0
    local_pops: int = 0
    lifo_pops: int = 0
    global_pops: int = 0
    stolen: int = 0
    steal_attempts: int = 0
    steal_successes: int = 0
    parks: int = 0
    overflows: int = 0

    def as_dict(self) -> dict[str, int]:
        """The fields as a dict."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class ExecutorMetrics:
    """A snapshot of an executor: per-worker rows, their totals, executor-wide fields.

    The counter fields (``tasks_polled`` ...) are the totals over ``workers``.
    """

    workers: tuple[WorkerMetrics, ...]
    tasks_polled: int
    local_pops: int
    lifo_pops: int
    global_pops: int
    stolen: int
    steal_attempts: int
    steal_successes: int
    parks: int
    overflows: int
    threads_started: int
    failed_thread_starts: int
    global_queue_len: int
    suspended_tasks: int
    threads_retired: int = 0
    live_threads: int = 0

    @classmethod
    def collect(
        cls,
        rows: tuple[WorkerMetrics, ...],
        *,
        threads_started: int,
        failed_thread_starts: int,
        global_queue_len: int,
        suspended_tasks: int,
        threads_retired: int = 0,
        live_threads: int = 0,
    ) -> ExecutorMetrics:
        """Build a snapshot from per-worker rows and the executor-wide values."""

        def total(name: str) -> int:
            return sum(getattr(row, name) for row in rows)

        return cls(
            rows,
            tasks_polled=total("tasks_polled"),
            local_pops=total("local_pops"),
            lifo_pops=total("lifo_pops"),
            global_pops=total("global_pops"),
            stolen=total("stolen"),
            steal_attempts=total("steal_attempts"),
            steal_successes=total("steal_successes"),
            parks=total("parks"),
            overflows=total("overflows"),
            threads_started=threads_started,
            failed_thread_starts=failed_thread_starts,
            global_queue_len=global_queue_len,
            suspended_tasks=suspended_tasks,
            threads_retired=threads_retired,
            live_threads=live_threads,
        )

    @property
    def totals(self) -> WorkerMetrics:
        """The counter totals as one ``WorkerMetrics`` row (``index`` -1)."""
        return WorkerMetrics(-1, *(getattr(self, name) for name in COUNTERS))

    def as_dict(self) -> dict[str, object]:
        """The snapshot as plain data (per-worker rows as dicts)."""
        out: dict[str, object] = {
            f.name: getattr(self, f.name) for f in fields(self) if f.name != "workers"
        }
        out["workers"] = [row.as_dict() for row in self.workers]
        return out
