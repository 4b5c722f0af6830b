"""Runtime benchmarks: zuki against what a user would use instead, and the machine's ceiling.

    python perf/bench_runtime.py --quick [--workers N]          # plain timing, a few minutes
    python perf/bench_runtime.py --fast [-o out.json]           # pyperf, 10 processes x 2
    python perf/bench_runtime.py [pyperf options]               # pyperf, full

Absolute times on a shared machine are noise; what this reports are ratios taken in one
run on the same interpreter: each zuki case next to the tool a user would otherwise pick
(``ThreadPoolExecutor``, ``asyncio``) and next to the ceiling (the same work in N
processes, which share nothing). The cases, with the targets of the runtime issue:

1. trivial callables through ``spawn_batch`` / ``map`` vs ``ThreadPoolExecutor.map``,
   same worker count: >= 10x;
2. trivial callables through ``submit`` + ``result()`` vs ``ThreadPoolExecutor``: >= 4x;
3. trivial coroutine tasks spawned and awaited inside ``zuki.run`` vs ``asyncio``
   ``create_task`` + ``gather``: >= 2x;
4. fork-join ``fib(27)`` (with a cutoff) on 2 workers vs 1 worker, against the speedup of
   2 processes over 1 on the same work: >= 90% of it;
5. coarse CPU-bound tasks (~10 ms loops): N workers vs N processes (>= 90%) and vs
   ``ThreadPoolExecutor`` (not below);
6. spawn-to-start latency on an idle pool, from an outside thread: median and p99
   (p99 < 1 ms);
7. ``WorkStealingExecutor`` with N workers vs ``SingleThreadedExecutor`` on the same
   CPU-bound batch, next to the N-process ceiling;
8. memory per spawned-but-not-yet-run task with many pending (tracemalloc), vs an
   ``asyncio.Task`` and a ``concurrent.futures`` future with its work item: <= asyncio.

Cases 6 and 8 are not timings of a repeated function, so they do not fit pyperf's model:
both modes measure them directly and print them; pyperf mode with ``-o NAME.json`` writes
them to ``NAME.direct.json`` beside it, where ``perf/report.py`` reads them, and
``--quick`` writes them with its table to ``perf/results/bench_runtime-quick-<ft|gil>.json``.
Both modes print the ``RATIOS`` table below, rendered by ``perf/report.py``.

pyperf traps handled here (see ../shared/research/ecosystem.md §2): one ``Runner`` per
process; the script is re-executed in every pyperf worker, so everything is under
``main()`` and the process pools use the ``spawn`` start method, which re-imports this
file without running it; ``gil_enabled`` is recorded in the metadata because pyperf does
not record it; zuki tuning variables need ``--inherit-environ``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import gc
import itertools
import json
import multiprocessing
import os
import statistics
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zuki

HERE = Path(__file__).resolve().parent
GIL_ENABLED = getattr(sys, "_is_gil_enabled", lambda: True)()

# Fixed work sizes, so that every pyperf worker process does exactly the same work.
SPIN_ITERATIONS = 400_000  # about 10 ms of pure-Python loop on the reference machine
FIB_N = 27
FIB_CUTOFF = 16  # below this, fib runs sequentially inside one task

# (zuki, reference, target, source, kind): see perf/report.py. Cases are pyperf benchmarks
# (seconds per item) or direct measurements (``direct_values``); a pair (a, b) is the
# speedup from a to b. The targets are the runtime issue's (issue 4).
_FIB_ZUKI = ("fib(27): zuki 1 worker", "fib(27): zuki 2 workers")
_FIB_PROCS = ("fib(27): 1 process", "fib(27): 2 processes x fib(27)")
_CPU_ZUKI = ("cpu 10ms: SingleThreadedExecutor", "cpu 10ms: zuki N workers")
_CPU_PROCS = ("cpu 10ms: 1 process", "cpu 10ms: N processes")
RATIOS: list[tuple[Any, Any, float | None, str, str]] = [
    ("trivial: zuki spawn_batch", "trivial: ThreadPoolExecutor.map", 10.0, "issue 4", "speedup"),
    ("trivial: zuki map", "trivial: ThreadPoolExecutor.map", None, "reported", "speedup"),
    ("submit+result: zuki", "submit+result: ThreadPoolExecutor", 4.0, "issue 4", "speedup"),
    ("coroutines: zuki.run", "coroutines: asyncio", 2.0, "issue 4", "speedup"),
    (_FIB_ZUKI, _FIB_PROCS, 0.9, "issue 4", "ceiling"),
    ("cpu 10ms: zuki N workers", "cpu 10ms: N processes", 0.9, "issue 4", "ceiling"),
    (
        "cpu 10ms: zuki N workers",
        "cpu 10ms: ThreadPoolExecutor N",
        0.95,
        "issue 4: not below (5% noise allowed)",
        "speedup",
    ),
    (_CPU_ZUKI, _CPU_PROCS, None, "reported", "ceiling"),
    ("spawn latency p99: zuki", "spawn latency p99: ThreadPoolExecutor", 1e-3, "issue 4", "max"),
    (
        "spawn latency median: zuki",
        "spawn latency median: ThreadPoolExecutor",
        None,
        "reported",
        "slowdown",
    ),
    (
        "bytes per pending task: zuki coroutine task",
        "bytes per pending task: asyncio.Task",
        1.0,
        "issue 4",
        "slowdown",
    ),
    (
        "bytes per pending task: zuki callable task",
        "bytes per pending task: concurrent.futures Future + work item",
        None,
        "reported",
        "slowdown",
    ),
]


# --------------------------------------------------------------------------------------
# work functions (module level: the process pools pickle them by name)
# --------------------------------------------------------------------------------------


def trivial(x: Any = None) -> Any:
    return x


async def trivial_coro() -> None:
    return None


def spin(n: int = SPIN_ITERATIONS) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


def fib_rec(n: int) -> int:
    return n if n < 2 else fib_rec(n - 1) + fib_rec(n - 2)


def fib_join(n: int) -> int:
    if n < FIB_CUTOFF:
        return fib_rec(n)
    a, b = zuki.join(lambda: fib_join(n - 1), lambda: fib_join(n - 2))
    return a + b


# --------------------------------------------------------------------------------------
# pools, made once per process and reused
# --------------------------------------------------------------------------------------

_process_pools: dict[int, cf.ProcessPoolExecutor] = {}


def process_pool(n: int) -> cf.ProcessPoolExecutor:
    pool = _process_pools.get(n)
    if pool is None:
        pool = cf.ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"))
        list(pool.map(trivial, range(4 * n)))  # start every process before timing
        _process_pools[n] = pool
    return pool


def close_process_pools() -> None:
    for pool in _process_pools.values():
        pool.shutdown()
    _process_pools.clear()


def ws_executor(workers: int) -> zuki.WorkStealingExecutor:
    return zuki.WorkStealingExecutor(workers)


# --------------------------------------------------------------------------------------
# timed cases: each returns the seconds its measured part took, for ``loops`` repetitions
# --------------------------------------------------------------------------------------


def t_zuki_spawn_batch(loops: int, n: int, workers: int) -> float:
    with ws_executor(workers) as ex:
        ex.submit(trivial).result()
        total = 0.0
        for _ in range(loops):
            t0 = time.perf_counter()
            handles = ex.spawn_batch(itertools.repeat(trivial, n))
            for h in handles:
                h.result()
            total += time.perf_counter() - t0
            del handles
    return total


def t_zuki_map(loops: int, n: int, workers: int) -> float:
    with ws_executor(workers) as ex:
        ex.submit(trivial).result()
        total = 0.0
        for _ in range(loops):
            t0 = time.perf_counter()
            for _ in ex.map(trivial, range(n)):
                pass
            total += time.perf_counter() - t0
    return total


def t_tpe_map(loops: int, n: int, workers: int) -> float:
    with cf.ThreadPoolExecutor(workers) as ex:
        list(ex.map(trivial, range(4 * workers)))
        total = 0.0
        for _ in range(loops):
            t0 = time.perf_counter()
            for _ in ex.map(trivial, range(n)):
                pass
            total += time.perf_counter() - t0
    return total


def _submit_result(ex: cf.Executor, loops: int, n: int) -> float:
    total = 0.0
    for _ in range(loops):
        t0 = time.perf_counter()
        futures = [ex.submit(trivial) for _ in range(n)]
        for f in futures:
            f.result()
        total += time.perf_counter() - t0
        del futures
    return total


def t_zuki_submit(loops: int, n: int, workers: int) -> float:
    with ws_executor(workers) as ex:
        ex.submit(trivial).result()
        return _submit_result(ex, loops, n)


def t_tpe_submit(loops: int, n: int, workers: int) -> float:
    with cf.ThreadPoolExecutor(workers) as ex:
        list(ex.map(trivial, range(4 * workers)))
        return _submit_result(ex, loops, n)


async def _zuki_main(n: int) -> None:
    spawn = zuki.spawn
    handles = [spawn(trivial_coro()) for _ in range(n)]
    for h in handles:
        await h


async def _asyncio_main(n: int) -> None:
    create_task = asyncio.get_running_loop().create_task
    await asyncio.gather(*[create_task(trivial_coro()) for _ in range(n)])


def t_zuki_coroutines(loops: int, n: int, workers: int) -> float:
    total = 0.0
    for _ in range(loops):
        t0 = time.perf_counter()
        zuki.run(_zuki_main(n), workers=workers)
        total += time.perf_counter() - t0
    return total


def t_asyncio_coroutines(loops: int, n: int, workers: int) -> float:
    total = 0.0
    for _ in range(loops):
        t0 = time.perf_counter()
        asyncio.run(_asyncio_main(n))
        total += time.perf_counter() - t0
    return total


def _t_fib_zuki(loops: int, workers: int) -> float:
    with ws_executor(workers) as ex:
        ex.submit(fib_join, FIB_CUTOFF + 2).result()
        total = 0.0
        for _ in range(loops):
            t0 = time.perf_counter()
            ex.submit(fib_join, FIB_N).result()
            total += time.perf_counter() - t0
    return total


def t_fib_zuki_1(loops: int, n: int, workers: int) -> float:
    return _t_fib_zuki(loops, 1)


def t_fib_zuki_2(loops: int, n: int, workers: int) -> float:
    return _t_fib_zuki(loops, 2)


def _t_processes(loops: int, procs: int, fn: Callable[..., Any], args: list[Any]) -> float:
    pool = process_pool(procs)
    total = 0.0
    for _ in range(loops):
        t0 = time.perf_counter()
        list(pool.map(fn, args))
        total += time.perf_counter() - t0
    return total


def t_fib_procs_1(loops: int, n: int, workers: int) -> float:
    return _t_processes(loops, 1, fib_rec, [FIB_N])


def t_fib_procs_2(loops: int, n: int, workers: int) -> float:
    # Two processes, each doing the whole fib(27): throughput ceiling for two threads.
    return _t_processes(loops, 2, fib_rec, [FIB_N, FIB_N])


def t_cpu_zuki(loops: int, n: int, workers: int) -> float:
    with ws_executor(workers) as ex:
        ex.submit(trivial).result()
        total = 0.0
        for _ in range(loops):
            t0 = time.perf_counter()
            list(ex.map(spin, [SPIN_ITERATIONS] * n))
            total += time.perf_counter() - t0
    return total


def t_cpu_single(loops: int, n: int, workers: int) -> float:
    with zuki.SingleThreadedExecutor() as ex:
        ex.submit(trivial).result()
        total = 0.0
        for _ in range(loops):
            t0 = time.perf_counter()
            list(ex.map(spin, [SPIN_ITERATIONS] * n))
            total += time.perf_counter() - t0
    return total


def t_cpu_tpe(loops: int, n: int, workers: int) -> float:
    with cf.ThreadPoolExecutor(workers) as ex:
        total = 0.0
        for _ in range(loops):
            t0 = time.perf_counter()
            list(ex.map(spin, [SPIN_ITERATIONS] * n))
            total += time.perf_counter() - t0
    return total


def t_cpu_procs_n(loops: int, n: int, workers: int) -> float:
    return _t_processes(loops, workers, spin, [SPIN_ITERATIONS] * n)


def t_cpu_procs_1(loops: int, n: int, workers: int) -> float:
    return _t_processes(loops, 1, spin, [SPIN_ITERATIONS] * n)


# --------------------------------------------------------------------------------------
# direct measurements: latency and memory
# --------------------------------------------------------------------------------------


def spawn_latency(make: Callable[[], Any], samples: int, idle: float = 0.002) -> list[float]:
    """Seconds from ``spawn``/``submit`` on an outside thread to the task starting, each
    sample on an idle pool (after ``idle`` seconds without work, workers are parked)."""
    started: list[int] = []

    def record() -> None:
        started.append(time.perf_counter_ns())

    out = []
    with make() as ex:
        submit = ex.spawn if hasattr(ex, "spawn") else ex.submit
        for _ in range(20):
            submit(record).result()
        started.clear()
        for _ in range(samples):
            time.sleep(idle)
            t0 = time.perf_counter_ns()
            submit(record).result()
            out.append((started.pop() - t0) / 1e9)
    return out


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _blocked(start: Callable[[Callable[[], None]], Any], workers: int) -> threading.Event:
    """Occupy ``workers`` threads with a callable that waits on the returned event."""
    release = threading.Event()
    running = threading.Semaphore(0)

    def block() -> None:
        running.release()
        release.wait()

    for _ in range(workers):
        start(block)
    for _ in range(workers):
        running.acquire()
    return release


def _traced_bytes(build: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = build()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return after - before, kept


def memory_per_task(n: int, workers: int) -> dict[str, float]:
    """Bytes per pending task: everything allocated between "before spawning" and "all
    spawned", handles included (a caller keeps them), over ``n`` tasks."""
    out: dict[str, float] = {}

    # zuki, coroutine tasks and callable tasks, queued behind blocked workers.
    for label, item in (("zuki coroutine task", None), ("zuki callable task", trivial)):
        with ws_executor(workers) as ex:
            release = _blocked(ex.spawn, workers)
            if item is None:
                size, kept = _traced_bytes(lambda: [ex.spawn(trivial_coro()) for _ in range(n)])
            else:
                size, kept = _traced_bytes(lambda: [ex.spawn(trivial) for _ in range(n)])
            out[label] = size / n
            release.set()
            del kept
    gc.collect()

    # asyncio: n tasks created inside a running loop and not yet run.
    async def asyncio_pending() -> float:
        loop = asyncio.get_running_loop()
        size, kept = _traced_bytes(lambda: [loop.create_task(trivial_coro()) for _ in range(n)])
        await asyncio.gather(*kept)
        return size / n

    out["asyncio.Task"] = asyncio.run(asyncio_pending())
    gc.collect()

    # concurrent.futures: Future + _WorkItem in the queue of a blocked ThreadPoolExecutor.
    with cf.ThreadPoolExecutor(workers) as tpe:
        release = _blocked(tpe.submit, workers)
        size, kept = _traced_bytes(lambda: [tpe.submit(trivial) for _ in range(n)])
        out["concurrent.futures Future + work item"] = size / n
        release.set()
        del kept
    gc.collect()
    return out


def direct_measurements(workers: int, latency_samples: int, memory_tasks: int) -> dict[str, Any]:
    zuki_lat = spawn_latency(lambda: ws_executor(workers), latency_samples)
    tpe_lat = spawn_latency(lambda: cf.ThreadPoolExecutor(workers), latency_samples)
    memory = memory_per_task(memory_tasks, workers)
    return {
        "latency_samples": latency_samples,
        "latency_s": {
            "zuki": {"median": statistics.median(zuki_lat), "p99": _percentile(zuki_lat, 99)},
            "ThreadPoolExecutor": {
                "median": statistics.median(tpe_lat),
                "p99": _percentile(tpe_lat, 99),
            },
        },
        "memory_tasks": memory_tasks,
        "memory_bytes_per_task": memory,
    }


# --------------------------------------------------------------------------------------
# the cases
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One timed function; ``items`` is how many work items one loop does."""

    name: str
    fn: Callable[[int, int, int], float]
    items: int


@dataclass
class Sizes:
    trivial: int
    submit: int
    coroutines: int
    coarse_per_worker: int
    latency_samples: int
    memory_tasks: int


QUICK = Sizes(
    trivial=200_000,
    submit=50_000,
    coroutines=100_000,
    coarse_per_worker=8,
    latency_samples=300,
    memory_tasks=100_000,
)
PYPERF = Sizes(
    trivial=20_000,
    submit=20_000,
    coroutines=50_000,
    coarse_per_worker=4,
    latency_samples=1000,
    memory_tasks=200_000,
)
FULL = Sizes(
    trivial=1_000_000,
    submit=200_000,
    coroutines=200_000,
    coarse_per_worker=16,
    latency_samples=2000,
    memory_tasks=1_000_000,
)


def make_cases(sizes: Sizes, workers: int) -> list[Case]:
    coarse = sizes.coarse_per_worker * workers
    return [
        Case("trivial: zuki spawn_batch", t_zuki_spawn_batch, sizes.trivial),
        Case("trivial: zuki map", t_zuki_map, sizes.trivial),
        Case("trivial: ThreadPoolExecutor.map", t_tpe_map, sizes.trivial),
        Case("submit+result: zuki", t_zuki_submit, sizes.submit),
        Case("submit+result: ThreadPoolExecutor", t_tpe_submit, sizes.submit),
        Case("coroutines: zuki.run", t_zuki_coroutines, sizes.coroutines),
        Case("coroutines: asyncio", t_asyncio_coroutines, sizes.coroutines),
        Case("fib(27): zuki 1 worker", t_fib_zuki_1, 1),
        Case("fib(27): zuki 2 workers", t_fib_zuki_2, 1),
        Case("fib(27): 1 process", t_fib_procs_1, 1),
        Case("fib(27): 2 processes x fib(27)", t_fib_procs_2, 2),
        Case("cpu 10ms: zuki N workers", t_cpu_zuki, coarse),
        Case("cpu 10ms: ThreadPoolExecutor N", t_cpu_tpe, coarse),
        Case("cpu 10ms: N processes", t_cpu_procs_n, coarse),
        Case("cpu 10ms: 1 process", t_cpu_procs_1, coarse),
        Case("cpu 10ms: SingleThreadedExecutor", t_cpu_single, coarse),
    ]


def direct_values(direct: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The direct measurements as named values, for perf/report.py's ``NAME.direct.json``."""
    out: dict[str, dict[str, Any]] = {}
    for who, lat in direct["latency_s"].items():
        out[f"spawn latency median: {who}"] = {"value": lat["median"], "unit": "s"}
        out[f"spawn latency p99: {who}"] = {"value": lat["p99"], "unit": "s"}
    for who, size in direct["memory_bytes_per_task"].items():
        out[f"bytes per pending task: {who}"] = {"value": size, "unit": "B"}
    return out


def header(workers: int, mode: str) -> str:
    build = "GIL build" if GIL_ENABLED else "free-threaded build"
    return (
        f"zuki runtime benchmarks, {mode}: Python {sys.version.split()[0]} ({build}), "
        f"{os.cpu_count()} CPUs, {workers} workers"
    )


def _per(seconds: float, items: int) -> str:
    per = seconds / items
    if per >= 1e-3:
        return f"{per * 1e3:.1f} ms"
    return f"{per * 1e6:.2f} us" if per >= 1e-6 else f"{per * 1e9:.0f} ns"


def ratio_table(per_item: dict[str, float], direct: dict[str, Any]) -> str:
    """The ``RATIOS`` table, rendered by perf/report.py, from seconds per item."""
    sys.path.insert(0, str(HERE))
    from report import Measure, render_table

    values = {name: Measure(v, "s") for name, v in per_item.items()}
    for name, entry in direct_values(direct).items():
        values[name] = Measure(entry["value"], entry["unit"])
    return render_table(RATIOS, values, "runtime")


def save(mode: str, payload: dict[str, Any]) -> Path:
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    build = "gil" if GIL_ENABLED else "ft"
    path = out_dir / f"bench_runtime-{mode}-{build}.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return path


# --------------------------------------------------------------------------------------
# --quick: plain perf_counter, no pyperf
# --------------------------------------------------------------------------------------


def quick(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="zuki runtime benchmarks, quick mode")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeat", type=int, default=3, help="best of K for each case")
    parser.add_argument("--full-size", action="store_true", help="the issue's full sizes")
    args = parser.parse_args(argv)
    sizes = FULL if args.full_size else QUICK
    cases = make_cases(sizes, args.workers)
    print(header(args.workers, "--quick"), flush=True)
    times: dict[str, float] = {}
    try:
        for case in cases:
            best = min(case.fn(1, case.items, args.workers) for _ in range(args.repeat))
            times[case.name] = best
            print(f"  {case.name:<36} {best:8.3f} s  ({_per(best, case.items)}/item)", flush=True)
    finally:
        close_process_pools()
    direct = direct_measurements(args.workers, sizes.latency_samples, sizes.memory_tasks)
    md = ratio_table({c.name: times[c.name] / c.items for c in cases}, direct)
    print()
    print(md)
    path = save(
        "quick",
        {
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "python": sys.version,
            "gil_enabled": GIL_ENABLED,
            "workers": args.workers,
            "seconds": times,
            "direct": direct,
            "table_markdown": md,
        },
    )
    print(f"\n(saved to {path.relative_to(HERE.parent)})")
    return 0


# --------------------------------------------------------------------------------------
# pyperf mode
# --------------------------------------------------------------------------------------


def pyperf_main() -> int:
    import pyperf

    def add_cmdline_args(cmd: list[str], args: Any) -> None:
        cmd.extend(["--workers", str(args.workers)])
        if args.full_size:
            cmd.append("--full-size")

    runner = pyperf.Runner(add_cmdline_args=add_cmdline_args)
    runner.argparser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    runner.argparser.add_argument("--full-size", action="store_true")
    runner.metadata["gil_enabled"] = str(GIL_ENABLED)
    runner.metadata["zuki_version"] = zuki.__version__
    args = runner.parse_args()
    runner.metadata["zuki_workers"] = str(args.workers)
    sizes = FULL if args.full_size else PYPERF
    cases = make_cases(sizes, args.workers)

    direct: dict[str, Any] | None = None
    if not args.worker:
        print(header(args.workers, "pyperf"), flush=True)
        direct = direct_measurements(args.workers, sizes.latency_samples, sizes.memory_tasks)
        print(json.dumps(direct, indent=2), flush=True)
        if args.output:
            # perf/report.py reads NAME.direct.json beside NAME.json
            out = Path(args.output)
            payload = {
                "command": " ".join([Path(sys.executable).name, *sys.argv]),
                "python": sys.version,
                "gil_enabled": GIL_ENABLED,
                "workers": args.workers,
                "details": direct,
                "values": direct_values(direct),
            }
            path = out.with_name(out.stem + ".direct.json")
            path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")

    results: dict[str, Any] = {}
    try:
        for case in cases:
            bench = runner.bench_time_func(
                case.name,
                case.fn,
                case.items,
                args.workers,
                inner_loops=case.items,
            )
            results[case.name] = bench
    finally:
        close_process_pools()

    if args.worker or direct is None or any(b is None for b in results.values()):
        return 0
    # bench.mean() is per inner loop: per item.
    print()
    print(ratio_table({name: bench.mean() for name, bench in results.items()}, direct))
    return 0


def main() -> int:
    if "--quick" in sys.argv[1:]:
        return quick(sys.argv[1:])
    return pyperf_main()


if __name__ == "__main__":
    sys.exit(main())
