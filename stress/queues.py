"""Stress the queues with real threads: exactly-once delivery and no hangs.

Usage::

    python stress/queues.py [--items 1000000] [--backend lockfree|builtin|both]
                            [--timeout 900] [--seed 0]

Two scenarios, each on both queue backends:

* **local**: workers that each own a ``LocalQueue`` (capacity 256, and 16 for heavy
  overflow) with a shared overflow ``GlobalQueue``. Worker 0 produces every item in
  bursts (so its queue fills and overflows) and pops some of them itself; every worker
  pops its own queue, then the global queue, then steals from a random victim, the way
  an executor's worker does.
* **global**: 1, 2, 4 and 8 producers and as many consumers on one ``GlobalQueue``,
  pushing one at a time and in batches of up to 300 (crossing segments), consuming one at
  a time and in batches; also (with a tenth of the items) with 4-slot segments, so
  that segments are created, retired and recycled all the time.

Each item is an int id recorded by whoever took it. A run checks that every id was taken
exactly once (the sorted union of what the workers took is ``range(items)``). A run that
does not finish within its deadline dumps every thread's stack and fails; the whole
script also has a watchdog (``faulthandler.dump_traceback_later(..., exit=True)``).

``tests/test_queue_stress.py`` imports this module and runs the same scenarios with
smaller counts. The exit status is non-zero if any run failed.
"""

from __future__ import annotations

import argparse
import faulthandler
import functools
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from zuki.concurrent.global_queue import GlobalQueue
from zuki.concurrent.local_queue import LocalQueue

BACKENDS = ("lockfree", "builtin")


class StressFailure(AssertionError):
    """A run lost, duplicated or invented an item, raised, or did not finish in time."""


@dataclass
class Tally:
    """What the workers of one run took, and when the run may stop."""

    items: int
    taken: list[list[int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    errors: list[BaseException] = field(default_factory=list)
    _count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def log(self) -> list[int]:
        """A list for one worker to append what it takes to (only it appends)."""
        mine: list[int] = []
        with self._lock:
            self.taken.append(mine)
        return mine

    def add(self, k: int) -> None:
        """Count ``k`` more items taken; the taker of the last one stops the run."""
        with self._lock:
            self._count += k
            if self._count >= self.items:
                self.stop.set()

    @property
    def count(self) -> int:
        return self._count

    def verify(self) -> None:
        """Every id in ``range(items)`` taken exactly once, and nothing else."""
        seen = bytearray(self.items)
        strays: list[int] = []
        duplicates: list[int] = []
        for log in self.taken:
            for x in log:
                if not 0 <= x < self.items:
                    strays.append(x)
                elif seen[x]:
                    duplicates.append(x)
                else:
                    seen[x] = 1
        missing = self.items - sum(seen)
        if strays or duplicates or missing:
            lost = [i for i, s in enumerate(seen) if not s][:10]
            raise StressFailure(
                f"exactly-once violated: {missing} missing (first: {lost}), "
                f"{len(duplicates)} duplicated (first: {duplicates[:10]}), "
                f"{len(strays)} strays (first: {strays[:10]})"
            )


@contextmanager
def shaken() -> Iterator[None]:
    """On a GIL build, switch threads often so that interleavings actually happen."""
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    old = sys.getswitchinterval()
    if gil:
        sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        if gil:
            sys.setswitchinterval(old)


def run_threads(tally: Tally, bodies: list[Callable[[], None]], timeout: float, name: str) -> None:
    """Run ``bodies`` on threads until ``tally.stop``; fail loudly on errors or a hang."""

    def guard(body: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                body()
            except BaseException as exc:
                tally.errors.append(exc)
                tally.stop.set()

        return run

    threads = [
        threading.Thread(target=guard(body), name=f"{name}-{i}", daemon=True)
        for i, body in enumerate(bodies)
    ]
    with shaken():
        for t in threads:
            t.start()
        deadline = time.monotonic() + timeout
        for t in threads:
            t.join(max(deadline - time.monotonic(), 0.0))
    if any(t.is_alive() for t in threads):
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        tally.stop.set()
        raise StressFailure(
            f"{name}: no progress after {timeout:.0f} s: {tally.count} of {tally.items} "
            f"items taken (stacks dumped to stderr)"
        )
    if tally.errors:
        raise StressFailure(f"{name}: a thread raised {tally.errors[0]!r}") from tally.errors[0]
    tally.verify()


# --- scenario 1: LocalQueues with stealing ---------------------------------------------


def run_local(
    items: int,
    *,
    workers: int = 3,
    backend: str = "lockfree",
    capacity: int = 256,
    seed: int = 0,
    timeout: float = 120.0,
) -> None:
    """One producer-owner, ``workers - 1`` other workers, all stealing from each other."""
    overflow: GlobalQueue[int] = GlobalQueue(backend=backend)
    queues: list[LocalQueue[int]] = [
        LocalQueue(capacity, overflow, backend=backend) for _ in range(workers)
    ]
    tally = Tally(items)

    def worker(index: int) -> Callable[[], None]:
        def body() -> None:
            rng = random.Random(seed * 1000 + index)
            own = queues[index]
            others = [q for q in queues if q is not own]
            log = tally.log()
            record = log.append
            if index == 0:
                produce(own, rng, record)
            consume(own, others, rng, record, log)

        return body

    def produce(own: LocalQueue[int], rng: random.Random, record: Callable[[int], None]) -> None:
        pushed = 0
        while pushed < items and not tally.stop.is_set():
            burst = min(rng.randrange(1, 3 * capacity), items - pushed)
            for i in range(pushed, pushed + burst):
                own.push(i)
            pushed += burst
            taken = 0
            for _ in range(rng.randrange(burst // 2 + 1)):
                item = own.pop()
                if item is None:
                    break
                record(item)
                taken += 1
            tally.add(taken)

    def consume(
        own: LocalQueue[int],
        others: list[LocalQueue[int]],
        rng: random.Random,
        record: Callable[[int], None],
        log: list[int],
    ) -> None:
        stop = tally.stop
        while not stop.is_set():
            item = own.pop()
            if item is None:
                item = overflow.try_pop()
            if item is None and others:
                item = rng.choice(others).steal_into(own)
            if item is None:
                time.sleep(0)
                continue
            record(item)
            tally.add(1)

    run_threads(tally, [worker(i) for i in range(workers)], timeout, f"local-{backend}")
    leftovers = sum(len(q) for q in queues) + len(overflow)
    if leftovers:
        raise StressFailure(f"local-{backend}: {leftovers} items left in the queues")


# --- scenario 2: the GlobalQueue, many producers and consumers ---------------------------


def run_global(
    items: int,
    *,
    producers: int = 2,
    consumers: int = 2,
    backend: str = "lockfree",
    segment_shift: int | None = None,
    seed: int = 0,
    timeout: float = 120.0,
) -> None:
    """``producers`` push disjoint id ranges, ``consumers`` take them, singly and batched."""
    queue: GlobalQueue[int] = GlobalQueue(backend=backend)
    if segment_shift is not None and backend == "lockfree":
        shrink_segments(queue, segment_shift)
    tally = Tally(items)
    bounds = [items * p // producers for p in range(producers + 1)]

    def producer(index: int) -> Callable[[], None]:
        def body() -> None:
            rng = random.Random(seed * 1000 + index)
            i, end = bounds[index], bounds[index + 1]
            while i < end and not tally.stop.is_set():
                if rng.random() < 0.5:
                    queue.push(i)
                    i += 1
                else:
                    k = min(rng.randrange(1, 300), end - i)
                    queue.push_batch(range(i, i + k))
                    i += k

        return body

    def consumer(index: int) -> Callable[[], None]:
        def body() -> None:
            rng = random.Random(seed * 1000 + 500 + index)
            log = tally.log()
            stop = tally.stop
            while not stop.is_set():
                if rng.random() < 0.5:
                    item = queue.try_pop()
                    if item is None:
                        time.sleep(0)
                        continue
                    log.append(item)
                    tally.add(1)
                else:
                    batch = queue.try_pop_batch(rng.randrange(1, 100))
                    if not batch:
                        time.sleep(0)
                        continue
                    log.extend(batch)
                    tally.add(len(batch))

        return body

    bodies = [producer(i) for i in range(producers)] + [consumer(i) for i in range(consumers)]
    name = f"global-{backend}-{producers}x{consumers}"
    run_threads(tally, bodies, timeout, name)
    if len(queue):
        raise StressFailure(f"{name}: {len(queue)} items left in the queue")


def shrink_segments(queue: GlobalQueue[Any], shift: int) -> None:
    """Give a fresh lock-free GlobalQueue segments of ``2**shift`` slots."""
    queue._set_segment_shift(shift)  # type: ignore[attr-defined]


# --- the script ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    parser.add_argument("--timeout", type=float, default=900.0, help="whole-run watchdog, s")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    backends = BACKENDS if args.backend == "both" else (args.backend,)
    per_run = max(args.timeout / 4, 60.0)
    faulthandler.dump_traceback_later(args.timeout, exit=True)

    common: dict[str, Any] = {"seed": args.seed, "timeout": per_run}
    runs: list[tuple[str, Callable[[], None]]] = []
    options: dict[str, Any]
    for backend in backends:
        for workers, capacity in ((3, 256), (4, 16)):
            label = f"local  {backend:8} workers={workers} capacity={capacity}"
            options = {"workers": workers, "backend": backend, "capacity": capacity}
            runs.append((label, functools.partial(run_local, args.items, **options, **common)))
        for n in (1, 2, 4, 8):
            label = f"global {backend:8} producers=consumers={n}"
            options = {"producers": n, "consumers": n, "backend": backend}
            runs.append((label, functools.partial(run_global, args.items, **options, **common)))
        if backend == "lockfree":
            # Every few items a segment is created, retired and recycled: slow, so a tenth.
            label = f"global {backend:8} producers=consumers=4, 4-slot segments, items/10"
            options = {"producers": 4, "consumers": 4, "backend": backend, "segment_shift": 2}
            tenth = max(args.items // 10, 1)
            runs.append((label, functools.partial(run_global, tenth, **options, **common)))

    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    print(
        f"python {sys.version.split()[0]}, GIL {'enabled' if gil else 'disabled'}, "
        f"{args.items:,} items per run"
    )
    failures = 0
    for label, run in runs:
        start = time.perf_counter()
        try:
            run()
        except StressFailure as exc:
            failures += 1
            print(f"FAIL {label}: {exc}", flush=True)
            continue
        elapsed = time.perf_counter() - start
        items = run.args[0] if isinstance(run, functools.partial) else args.items
        rate = items / elapsed / 1000
        print(f"ok   {label}: {elapsed:6.2f} s ({rate:,.0f}k items/s)", flush=True)
    faulthandler.cancel_dump_traceback_later()
    print(f"{len(runs) - failures} of {len(runs)} runs passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
