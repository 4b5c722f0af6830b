"""pyperf benchmarks of zuki.concurrent: the queues and the atomics shim (issue 3).

Every zuki case runs in the same pyperf run as the builtin it is measured against, so the
ratios in ``RATIOS`` come from one run on one machine. Single-thread cases time ``loops``
operations; two-thread cases time ``loops`` items crossing from one thread to another
(or ``loops`` increments split over two threads).

    .venv/bin/python perf/bench_concurrent.py --fast -o perf/results/concurrent.json
    .venv/bin/python perf/report.py perf/results/concurrent.json

``perf/run_all.py`` (``make bench``) does both for every benchmark module.
"""

from __future__ import annotations

import collections
import itertools
import queue
import sys
import threading
import time
from collections.abc import Callable

from zuki.concurrent.atomics import BACKEND, AtomicInt
from zuki.concurrent.global_queue import GlobalQueue
from zuki.concurrent.local_queue import LocalQueue

BATCH = 256

# (zuki case, reference case, target ratio zuki/reference or None, where the target comes from)
RATIOS: list[tuple[str, str, float | None, str]] = [
    ("localqueue-lockfree push+pop", "localqueue-builtin push+pop", 1.5, "issue 3"),
    ("localqueue-lockfree push+pop", "deque append+pop", 6.0, "issue 3"),
    ("localqueue-builtin push+pop", "deque append+pop", None, ""),
    ("globalqueue-lockfree push+try_pop", "SimpleQueue put+get_nowait", 12.0, "issue 3"),
    ("globalqueue-builtin push+try_pop", "SimpleQueue put+get_nowait", None, ""),
    ("globalqueue-lockfree batch256 per item", "SimpleQueue put+get_nowait", 1.0, "issue 3"),
    ("globalqueue-builtin batch256 per item", "SimpleQueue put+get_nowait", None, ""),
    ("AtomicInt fetch_add", "Lock acquire+release", None, "reported"),
    ("AtomicInt fetch_add", "next(itertools.count())", None, "reported"),
    ("AtomicInt compare_exchange", "Lock acquire+release", None, "reported"),
    ("globalqueue-lockfree 2 threads", "SimpleQueue 2 threads", None, "reported"),
    ("globalqueue-builtin 2 threads", "SimpleQueue 2 threads", None, "reported"),
    ("localqueue-lockfree owner+thief", "deque owner+thief", None, "reported"),
    ("localqueue-builtin owner+thief", "deque owner+thief", None, "reported"),
    ("AtomicInt fetch_add 2 threads", "Lock increment 2 threads", None, "reported"),
]


# --- single thread ------------------------------------------------------------------------


def bench_deque(loops: int) -> float:
    dq: collections.deque[int] = collections.deque()
    append, pop = dq.append, dq.pop
    t0 = time.perf_counter()
    for i in range(loops):
        append(i)
        pop()
    return time.perf_counter() - t0


def bench_simplequeue(loops: int) -> float:
    q: queue.SimpleQueue[int] = queue.SimpleQueue()
    put, get = q.put, q.get_nowait
    t0 = time.perf_counter()
    for i in range(loops):
        put(i)
        get()
    return time.perf_counter() - t0


def bench_local(loops: int, backend: str) -> float:
    q = LocalQueue(256, GlobalQueue(backend=backend), backend=backend)
    push, pop = q.push, q.pop
    t0 = time.perf_counter()
    for i in range(loops):
        push(i)
        pop()
    return time.perf_counter() - t0


def bench_global(loops: int, backend: str) -> float:
    q = GlobalQueue(backend=backend)
    push, pop = q.push, q.try_pop
    t0 = time.perf_counter()
    for i in range(loops):
        push(i)
        pop()
    return time.perf_counter() - t0


def bench_global_batch(loops: int, backend: str) -> float:
    """Per item: push_batch of 256 items, drained with try_pop_batch."""
    q = GlobalQueue(backend=backend)
    items = list(range(1, BATCH + 1))
    rounds = max(1, loops // BATCH)
    t0 = time.perf_counter()
    for _ in range(rounds):
        q.push_batch(items)
        got = 0
        while got < BATCH:
            got += len(q.try_pop_batch(BATCH - got))
    return (time.perf_counter() - t0) * loops / (rounds * BATCH)


def bench_lock(loops: int) -> float:
    lock = threading.Lock()
    acquire, release = lock.acquire, lock.release
    t0 = time.perf_counter()
    for _ in range(loops):
        acquire()
        release()
    return time.perf_counter() - t0


def bench_count(loops: int) -> float:
    counter = itertools.count()
    t0 = time.perf_counter()
    for _ in range(loops):
        next(counter)
    return time.perf_counter() - t0


def bench_fetch_add(loops: int) -> float:
    cell = AtomicInt()
    fetch_add = cell.fetch_add
    t0 = time.perf_counter()
    for _ in range(loops):
        fetch_add(1)
    return time.perf_counter() - t0


def bench_cas(loops: int) -> float:
    cell = AtomicInt()
    cas = cell.compare_exchange
    t0 = time.perf_counter()
    for i in range(loops):
        cas(i, i + 1)
    return time.perf_counter() - t0


# --- two threads -------------------------------------------------------------------------


def _two_threads(first: Callable[[], None], second: Callable[[], None]) -> float:
    start = threading.Barrier(3)

    def run(fn: Callable[[], None]) -> None:
        start.wait()
        fn()

    threads = [threading.Thread(target=run, args=(fn,)) for fn in (first, second)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def bench_handoff(loops: int, put: Callable[[int], object], get: Callable[[], object]) -> float:
    """``loops`` items from a producer thread to a consumer thread that polls."""

    def produce() -> None:
        for i in range(1, loops + 1):
            put(i)

    def consume() -> None:
        got = 0
        while got < loops:
            if get() is not None:
                got += 1

    return _two_threads(produce, consume)


def bench_simplequeue_2t(loops: int) -> float:
    q: queue.SimpleQueue[int] = queue.SimpleQueue()

    def get() -> int | None:
        try:
            return q.get_nowait()
        except queue.Empty:
            return None

    return bench_handoff(loops, q.put, get)


def bench_global_2t(loops: int, backend: str) -> float:
    q = GlobalQueue(backend=backend)
    return bench_handoff(loops, q.push, q.try_pop)


def bench_deque_owner_thief(loops: int) -> float:
    """Owner pushes and pops in pairs, a thief takes from the other end under a lock."""
    dq: collections.deque[int] = collections.deque()
    lock = threading.Lock()
    done = threading.Event()

    def owner() -> None:
        for i in range(loops):
            dq.append(i)
            dq.append(i)
            try:  # noqa: SIM105 (a timed loop: no context manager)
                dq.pop()
            except IndexError:
                pass
        done.set()

    def thief() -> None:
        while not done.is_set():
            if lock.acquire(False):
                try:
                    n = len(dq)
                    for _ in range(n - n // 2):
                        dq.popleft()
                except IndexError:
                    pass
                finally:
                    lock.release()

    return _two_threads(owner, thief)


def bench_local_owner_thief(loops: int, backend: str) -> float:
    overflow = GlobalQueue(backend=backend)
    victim = LocalQueue(256, overflow, backend=backend)
    done = threading.Event()

    def owner() -> None:
        push, pop = victim.push, victim.pop
        for i in range(1, loops + 1):
            push(i)
            push(i)
            pop()
        done.set()

    def thief() -> None:
        mine = LocalQueue(256, overflow, backend=backend)
        while not done.is_set():
            if victim.steal_into(mine) is not None:
                while mine.pop() is not None:
                    pass

    return _two_threads(owner, thief)


def bench_fetch_add_2t(loops: int) -> float:
    cell = AtomicInt()
    half = loops // 2

    def work() -> None:
        fetch_add = cell.fetch_add
        for _ in range(half):
            fetch_add(1)

    return _two_threads(work, work)


def bench_lock_increment_2t(loops: int) -> float:
    lock = threading.Lock()
    box = [0]
    half = loops // 2

    def work() -> None:
        for _ in range(half):
            with lock:
                box[0] += 1

    return _two_threads(work, work)


def main() -> None:
    import pyperf

    runner = pyperf.Runner()
    is_enabled = getattr(sys, "_is_gil_enabled", None)
    runner.metadata["gil_enabled"] = str(True if is_enabled is None else is_enabled())
    runner.metadata["zuki_atomics_backend"] = BACKEND
    tf = runner.bench_time_func
    tf("deque append+pop", bench_deque)
    tf("SimpleQueue put+get_nowait", bench_simplequeue)
    tf("Lock acquire+release", bench_lock)
    tf("next(itertools.count())", bench_count)
    tf("AtomicInt fetch_add", bench_fetch_add)
    tf("AtomicInt compare_exchange", bench_cas)
    for backend in ("lockfree", "builtin"):
        tf(f"localqueue-{backend} push+pop", bench_local, backend)
        tf(f"globalqueue-{backend} push+try_pop", bench_global, backend)
        tf(f"globalqueue-{backend} batch256 per item", bench_global_batch, backend)
        tf(f"globalqueue-{backend} 2 threads", bench_global_2t, backend)
        tf(f"localqueue-{backend} owner+thief", bench_local_owner_thief, backend)
    tf("SimpleQueue 2 threads", bench_simplequeue_2t)
    tf("deque owner+thief", bench_deque_owner_thief)
    tf("AtomicInt fetch_add 2 threads", bench_fetch_add_2t)
    tf("Lock increment 2 threads", bench_lock_increment_2t)


if __name__ == "__main__":
    main()
