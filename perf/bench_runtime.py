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
both modes measure them directly, print them, and write them (with the ratio table) to
``perf/results/bench_runtime-<mode>-<ft|gil>.json``.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zuki

HERE = Path(__file__).resolve().parent
GIL_ENABLED = getattr(sys, "_is_gil_enabled", lambda: True)()

# Fixed work sizes, so that every pyperf worker process does exactly the same work.
SPIN_ITERATIONS = 400_000  # about 10 ms of pure-Python loop on the reference machine
FIB_N = 27
FIB_CUTOFF = 16  # below this, fib runs sequentially inside one task


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
# the cases and the table
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
    memory_tasks=1_000_000,
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


@dataclass
class Row:
    num: str
    case: str
    zuki: str
    against: str
    ratio: float | None
    target: str
    met: bool | None
    note: str = ""


@dataclass
class Table:
    rows: list[Row] = field(default_factory=list)

    def add(self, *args: Any, **kwargs: Any) -> None:
        self.rows.append(Row(*args, **kwargs))

    def markdown(self) -> str:
        lines = [
            "| # | case | zuki | compared with | ratio | target | met? |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in self.rows:
            ratio = "" if r.ratio is None else f"{r.ratio:.2f}x"
            met = "n/a" if r.met is None else ("met" if r.met else "**missed**")
            note = f" ({r.note})" if r.note else ""
            cells = [r.num, r.case + note, r.zuki, r.against, ratio, r.target, met]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


def _per(seconds: float, items: int) -> str:
    per = seconds / items
    if per >= 1e-3:
        return f"{per * 1e3:.1f} ms"
    return f"{per * 1e6:.2f} us" if per >= 1e-6 else f"{per * 1e9:.0f} ns"


def build_table(
    t: dict[str, float], cases: list[Case], direct: dict[str, Any], workers: int
) -> Table:
    """``t``: seconds per loop for each case name."""
    items = {c.name: c.items for c in cases}

    def per_item(name: str) -> float:
        return t[name] / items[name]

    def each(name: str) -> str:
        return _per(t[name], items[name])

    table = Table()
    best = min(per_item("trivial: zuki spawn_batch"), per_item("trivial: zuki map"))
    ratio = per_item("trivial: ThreadPoolExecutor.map") / best
    which = (
        "spawn_batch"
        if per_item("trivial: zuki spawn_batch") <= per_item("trivial: zuki map")
        else "map"
    )
    table.add(
        "1",
        f"{items['trivial: zuki map']:,} trivial callables, {workers} workers",
        f"{which} {_per(best, 1)}/task",
        f"ThreadPoolExecutor.map {each('trivial: ThreadPoolExecutor.map')}/task",
        ratio,
        ">= 10x",
        ratio >= 10,
        f"spawn_batch {each('trivial: zuki spawn_batch')}, map {each('trivial: zuki map')}",
    )
    ratio = per_item("submit+result: ThreadPoolExecutor") / per_item("submit+result: zuki")
    table.add(
        "2",
        f"submit + result, {items['submit+result: zuki']:,} trivial callables",
        f"{each('submit+result: zuki')}/task",
        f"ThreadPoolExecutor {each('submit+result: ThreadPoolExecutor')}/task",
        ratio,
        ">= 4x",
        ratio >= 4,
    )
    ratio = per_item("coroutines: asyncio") / per_item("coroutines: zuki.run")
    table.add(
        "3",
        f"{items['coroutines: zuki.run']:,} coroutine tasks spawned + awaited",
        f"zuki.run {each('coroutines: zuki.run')}/task",
        f"asyncio {each('coroutines: asyncio')}/task",
        ratio,
        ">= 2x",
        ratio >= 2,
    )
    zuki_speedup = t["fib(27): zuki 1 worker"] / t["fib(27): zuki 2 workers"]
    proc_speedup = 2 * t["fib(27): 1 process"] / t["fib(27): 2 processes x fib(27)"]
    ratio = zuki_speedup / proc_speedup
    table.add(
        "4",
        f"fork-join fib({FIB_N}), cutoff {FIB_CUTOFF}: 2 workers vs 1",
        f"speedup {zuki_speedup:.2f}x",
        f"2 processes: {proc_speedup:.2f}x",
        ratio,
        ">= 0.90 of processes",
        ratio >= 0.9,
    )
    coarse = items["cpu 10ms: zuki N workers"]
    ratio = t["cpu 10ms: N processes"] / t["cpu 10ms: zuki N workers"]
    table.add(
        "5a",
        f"{coarse} CPU-bound ~10 ms tasks, {workers} workers",
        f"{t['cpu 10ms: zuki N workers']:.3f} s",
        f"{workers} processes {t['cpu 10ms: N processes']:.3f} s",
        ratio,
        ">= 0.90",
        ratio >= 0.9,
    )
    ratio = t["cpu 10ms: ThreadPoolExecutor N"] / t["cpu 10ms: zuki N workers"]
    table.add(
        "5b",
        f"same, vs ThreadPoolExecutor({workers})",
        f"{t['cpu 10ms: zuki N workers']:.3f} s",
        f"ThreadPoolExecutor {t['cpu 10ms: ThreadPoolExecutor N']:.3f} s",
        ratio,
        "not below (>= ~1x)",
        ratio >= 0.95,
        "5% noise allowed",
    )
    lat = direct["latency_s"]
    p99 = lat["zuki"]["p99"]
    table.add(
        "6",
        f"spawn-to-start latency, idle pool, outside thread ({direct['latency_samples']} samples)",
        f"median {lat['zuki']['median'] * 1e6:.0f} us, p99 {p99 * 1e6:.0f} us",
        f"ThreadPoolExecutor median {lat['ThreadPoolExecutor']['median'] * 1e6:.0f} us, "
        f"p99 {lat['ThreadPoolExecutor']['p99'] * 1e6:.0f} us",
        None,
        "p99 < 1 ms",
        p99 < 1e-3,
    )
    ws_speedup = t["cpu 10ms: SingleThreadedExecutor"] / t["cpu 10ms: zuki N workers"]
    proc_ceiling = t["cpu 10ms: 1 process"] / t["cpu 10ms: N processes"]
    table.add(
        "7",
        f"WorkStealingExecutor({workers}) vs SingleThreadedExecutor, same CPU batch",
        f"speedup {ws_speedup:.2f}x",
        f"{workers} processes vs 1: {proc_ceiling:.2f}x",
        ws_speedup / proc_ceiling,
        "report (vs ceiling)",
        None,
    )
    mem = direct["memory_bytes_per_task"]
    ratio = mem["asyncio.Task"] / mem["zuki coroutine task"]
    table.add(
        "8",
        f"bytes per pending task, {direct['memory_tasks']:,} pending",
        f"coroutine {mem['zuki coroutine task']:.0f} B, callable {mem['zuki callable task']:.0f} B",
        f"asyncio.Task {mem['asyncio.Task']:.0f} B, cf Future+item "
        f"{mem['concurrent.futures Future + work item']:.0f} B",
        ratio,
        "<= asyncio (ratio >= 1x)",
        ratio >= 1,
    )
    return table


def header(workers: int, mode: str) -> str:
    build = "GIL build" if GIL_ENABLED else "free-threaded build"
    return (
        f"zuki runtime benchmarks, {mode}: Python {sys.version.split()[0]} ({build}), "
        f"{os.cpu_count()} CPUs, {workers} workers"
    )


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
    table = build_table(times, cases, direct, args.workers)
    md = table.markdown()
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
    # bench.mean() is per inner loop (per item): back to seconds per loop for the table.
    times = {
        name: bench.mean() * case.items
        for case in cases
        for name, bench in [(case.name, results[case.name])]
    }
    table = build_table(times, cases, direct, args.workers)
    md = table.markdown()
    print()
    print(md)
    path = save(
        "pyperf",
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


def main() -> int:
    if "--quick" in sys.argv[1:]:
        return quick(sys.argv[1:])
    return pyperf_main()


if __name__ == "__main__":
    sys.exit(main())
