"""Benchmarks of zuki.runtime.sync and zuki.runtime.blocks (issue 6).

Each zuki case runs in the same run as what a user would pick instead, and the ratios in
``RATIOS`` come from that one run (``perf/report.py`` turns them into the table):

1. ``Channel``, 2 producer and 2 consumer tasks, 1,000,000 messages (``--fast``:
   200,000) through a bounded channel, against ``asyncio.Queue`` (same bound) with 2+2
   tasks on one loop: target >= 1.0x; and, reported, against ``queue.Queue`` between
   2+2 plain threads;
2. uncontended ``Mutex``: ``async with`` in one task, against ``asyncio.Lock``: within
   2x;
3. ``parallel_map`` of coarse CPU-bound work (pure-Python loops of ~10 ms) over N
   workers, against ``multiprocessing.Pool.map`` on the same work (the machine's
   ceiling): >= 90%; and against ``ThreadPoolExecutor.map``: ahead.

Only the exchange itself is timed: executors, loops, pools and threads are started
first (``parallel_map`` is timed whole, temporary executor included, as a user calls it;
the process pool is started and warmed before timing, which favours it).

    .venv/bin/python perf/bench_sync.py --quick                # plain best-of-3 timing
    .venv/bin/python perf/bench_sync.py --fast -o perf/results/sync.json
    .venv/bin/python perf/report.py perf/results/sync.json

pyperf re-executes this file in worker processes: everything runs under ``main()``, and
the process pool uses the ``spawn`` start method.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import multiprocessing
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import zuki
from zuki.runtime.blocks import parallel_map
from zuki.runtime.sync import Channel, Mutex

GIL_ENABLED = getattr(sys, "_is_gil_enabled", lambda: True)()
CAPACITY = 256  # every channel and queue has this bound
MUTEX_OPS = 200_000
SPIN_ITERATIONS = 400_000  # about 10 ms of pure-Python loop on the reference machine
CPU_ITEMS_PER_WORKER = 8

# (zuki case, reference case, target, source, kind)
RATIOS: list[tuple[str, str, float | None, str, str]] = [
    ("Channel 2p+2c tasks", "asyncio.Queue 2p+2c tasks", 1.0, "issue 6", "speedup"),
    ("Channel 2p+2c tasks", "queue.Queue 2p+2c threads", None, "reported", "speedup"),
    ("Mutex async with (uncontended)", "asyncio.Lock async with", 2.0, "issue 6", "slowdown"),
    ("parallel_map coarse CPU", "multiprocessing.Pool.map", 0.9, "issue 6", "ceiling"),
    ("parallel_map coarse CPU", "ThreadPoolExecutor.map", 1.0, "issue 6", "speedup"),
]


def spin(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


# --------------------------------------------------------------------------------------
# 1. channels: 2 producers, 2 consumers; each case returns the seconds for `loops` runs
# --------------------------------------------------------------------------------------


def t_zuki_channel(loops: int, messages: int, workers: int) -> float:
    async def once() -> float:
        ch: Channel[int] = Channel(CAPACITY)
        per_producer = messages // 2

        async def produce() -> None:
            send = ch.send
            for i in range(per_producer):
                await send(i)

        async def consume() -> int:
            n = 0
            async for _ in ch:
                n += 1
            return n

        t0 = time.perf_counter()
        consumers = [zuki.spawn(consume()) for _ in range(2)]
        producers = [zuki.spawn(produce()) for _ in range(2)]
        for p in producers:
            await p
        ch.close()
        received = [await c for c in consumers]
        elapsed = time.perf_counter() - t0
        assert sum(received) == 2 * per_producer, received
        return elapsed

    config = zuki.ExecutorConfig(workers=workers)
    with zuki.WorkStealingExecutor(config=config) as ex:
        return sum(ex.block_on(once()) for _ in range(loops))


def t_asyncio_queue(loops: int, messages: int, _workers: int) -> float:
    async def once() -> float:
        q: asyncio.Queue[int | None] = asyncio.Queue(CAPACITY)
        per_producer = messages // 2

        async def produce() -> None:
            put = q.put
            for i in range(per_producer):
                await put(i)

        async def consume() -> int:
            n = 0
            get = q.get
            while await get() is not None:
                n += 1
            return n

        t0 = time.perf_counter()
        consumers = [asyncio.create_task(consume()) for _ in range(2)]
        await asyncio.gather(*(produce() for _ in range(2)))
        for _ in consumers:
            await q.put(None)
        received = await asyncio.gather(*consumers)
        elapsed = time.perf_counter() - t0
        assert sum(received) == 2 * per_producer, received
        return elapsed

    return sum(asyncio.run(once()) for _ in range(loops))


def _queue_threads_once(messages: int) -> float:
    q: queue.Queue[int | None] = queue.Queue(CAPACITY)
    per_producer = messages // 2
    received: list[int] = []
    start = threading.Barrier(5)

    def produce() -> None:
        start.wait()
        put = q.put
        for i in range(per_producer):
            put(i)

    def consume() -> None:
        start.wait()
        n = 0
        get = q.get
        while get() is not None:
            n += 1
        received.append(n)

    producers = [threading.Thread(target=produce) for _ in range(2)]
    consumers = [threading.Thread(target=consume) for _ in range(2)]
    for t in producers + consumers:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in producers:
        t.join()
    for _ in consumers:
        q.put(None)
    for t in consumers:
        t.join()
    elapsed = time.perf_counter() - t0
    assert sum(received) == 2 * per_producer, received
    return elapsed


def t_queue_threads(loops: int, messages: int, _workers: int) -> float:
    return sum(_queue_threads_once(messages) for _ in range(loops))


# --------------------------------------------------------------------------------------
# 2. uncontended mutex
# --------------------------------------------------------------------------------------


def t_zuki_mutex(loops: int, ops: int, _workers: int) -> float:
    async def once() -> float:
        m = Mutex()
        t0 = time.perf_counter()
        for _ in range(ops):
            async with m:
                pass
        return time.perf_counter() - t0

    with zuki.WorkStealingExecutor(1) as ex:
        return sum(ex.block_on(once()) for _ in range(loops))


def t_asyncio_lock(loops: int, ops: int, _workers: int) -> float:
    async def once() -> float:
        lock = asyncio.Lock()
        t0 = time.perf_counter()
        for _ in range(ops):
            async with lock:
                pass
        return time.perf_counter() - t0

    return sum(asyncio.run(once()) for _ in range(loops))


# --------------------------------------------------------------------------------------
# 3. parallel_map of coarse CPU-bound work
# --------------------------------------------------------------------------------------

_pools: dict[int, Any] = {}


def _process_pool(workers: int) -> Any:
    pool = _pools.get(workers)
    if pool is None:
        pool = multiprocessing.get_context("spawn").Pool(workers)
        pool.map(spin, [1] * (4 * workers))  # every process started before timing
        _pools[workers] = pool
    return pool


def _timed(loops: int, run: Callable[[], list[int]], expect: list[int]) -> float:
    total = 0.0
    for _ in range(loops):
        t0 = time.perf_counter()
        out = run()
        total += time.perf_counter() - t0
        assert out == expect
    return total


def _cpu_work(workers: int) -> tuple[list[int], list[int]]:
    items = [SPIN_ITERATIONS] * (CPU_ITEMS_PER_WORKER * workers)
    return items, [spin(SPIN_ITERATIONS)] * len(items)


def t_parallel_map(loops: int, workers: int, _unused: int) -> float:
    items, expect = _cpu_work(workers)
    return _timed(loops, lambda: parallel_map(spin, items, workers=workers), expect)


def t_pool_map(loops: int, workers: int, _unused: int) -> float:
    items, expect = _cpu_work(workers)
    pool = _process_pool(workers)
    return _timed(loops, lambda: pool.map(spin, items), expect)


def t_tpe_map(loops: int, workers: int, _unused: int) -> float:
    items, expect = _cpu_work(workers)
    with cf.ThreadPoolExecutor(workers) as ex:
        list(ex.map(spin, [1] * (4 * workers)))
        return _timed(loops, lambda: list(ex.map(spin, items)), expect)


# --------------------------------------------------------------------------------------
# drivers
# --------------------------------------------------------------------------------------


def cases(messages: int, workers: int) -> list[tuple[str, Callable[..., float], int, int]]:
    """(name, fn, first argument, inner loops): fn(loops, first, workers)."""
    cpu_items = CPU_ITEMS_PER_WORKER * workers
    return [
        ("Channel 2p+2c tasks", t_zuki_channel, messages, messages),
        ("asyncio.Queue 2p+2c tasks", t_asyncio_queue, messages, messages),
        ("queue.Queue 2p+2c threads", t_queue_threads, messages, messages),
        ("Mutex async with (uncontended)", t_zuki_mutex, MUTEX_OPS, MUTEX_OPS),
        ("asyncio.Lock async with", t_asyncio_lock, MUTEX_OPS, MUTEX_OPS),
        ("parallel_map coarse CPU", t_parallel_map, workers, cpu_items),
        ("multiprocessing.Pool.map", t_pool_map, workers, cpu_items),
        ("ThreadPoolExecutor.map", t_tpe_map, workers, cpu_items),
    ]


def quick(argv: list[str]) -> int:
    """Best of ``--repeat`` plain timings and the ratio table, without pyperf."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"python {sys.version.split()[0]} gil_enabled={GIL_ENABLED} workers={args.workers}")
    best: dict[str, float] = {}
    try:
        for name, fn, first, inner in cases(args.messages, args.workers):
            seconds = min(fn(1, first, args.workers) for _ in range(args.repeat))
            best[name] = seconds / inner
            print(f"{name:34} {seconds * 1e3:9.1f} ms  {best[name] * 1e9:10.0f} ns/item")
    finally:
        for pool in _pools.values():
            pool.terminate()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from report import Measure, render_table

    print()
    print(render_table(RATIOS, {k: Measure(v, "s") for k, v in best.items()}, "sync"))
    return 0


def pyperf_main() -> int:
    import pyperf

    def add_cmdline_args(cmd: list[str], args: Any) -> None:
        cmd.extend(["--workers", str(args.workers), "--messages", str(args.messages)])

    runner = pyperf.Runner(add_cmdline_args=add_cmdline_args)
    runner.argparser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    runner.argparser.add_argument("--messages", type=int, default=0)
    args = runner.parse_args()
    if not args.messages:
        args.messages = 200_000 if args.fast else 1_000_000
    runner.metadata["gil_enabled"] = str(GIL_ENABLED)
    runner.metadata["zuki_workers"] = str(args.workers)
    runner.metadata["channel_messages"] = str(args.messages)
    try:
        for name, fn, first, inner in cases(args.messages, args.workers):
            runner.bench_time_func(name, fn, first, args.workers, inner_loops=inner)
    finally:
        for pool in _pools.values():
            pool.terminate()
    return 0


def main() -> int:
    if "--quick" in sys.argv[1:]:
        return quick(sys.argv[1:])
    return pyperf_main()


if __name__ == "__main__":
    sys.exit(main())
