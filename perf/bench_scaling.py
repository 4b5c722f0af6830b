"""Scaling with worker count: one CPU-bound batch on 1, 2, 4, ... ``os.cpu_count()`` workers.

The same batch of pure-Python loops runs through zuki's ``WorkStealingExecutor``, a
``ThreadPoolExecutor`` and a ``ProcessPoolExecutor`` (``spawn`` start method) with 1, 2,
4, ... workers up to the machine's CPU count (which is always included: 1, 2, 4, 8, 12 on
12 CPUs). The batch does not change with the worker count, so a case's time at 1 worker
over its time at N workers is its speedup; perf/chart.py draws those next to the ideal
line, and the N processes are the machine's ceiling.

- *coarse*: ``4 x cpu_count`` tasks of ~10 ms each (the issue's "coarse CPU-bound"
  tasks), ``map`` with chunksize 1: zuki, threads and processes;
- *fine*: ``100 x cpu_count`` tasks of ~0.1 ms each, ``map`` with chunksize 1: zuki and
  threads only (processes would measure pickling and pipes).

Only the batch is timed: executors and process pools are made, and every worker started,
first. Times are per task (pyperf's ``inner_loops``).

    .venv/bin/python perf/bench_scaling.py --quick               # plain best-of-3 timing
    .venv/bin/python perf/bench_scaling.py --fast -o perf/results/scaling.json
    .venv/bin/python perf/report.py perf/results/scaling.json

pyperf re-executes this file in worker processes: everything runs under ``main()``, and
the process pools use the ``spawn`` start method, which re-imports this file without
running it.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import sys
import time
from typing import Any

import zuki

GIL_ENABLED = getattr(sys, "_is_gil_enabled", lambda: True)()
SPIN_ITERATIONS = 400_000  # about 10 ms of pure-Python loop on the reference machine
FINE_ITERATIONS = 4_000  # about 0.1 ms
COARSE_TASKS_PER_CPU = 4
FINE_TASKS_PER_CPU = 100
EXECUTORS = ("zuki", "ThreadPoolExecutor", "processes")
GRAINS = {
    # grain: (iterations per task, tasks per CPU, executors, title for the chart)
    "coarse": (SPIN_ITERATIONS, COARSE_TASKS_PER_CPU, EXECUTORS, "loop of 400,000 iterations"),
    "fine": (FINE_ITERATIONS, FINE_TASKS_PER_CPU, EXECUTORS[:2], "loop of 4,000 iterations"),
}


def worker_counts(cpus: int) -> list[int]:
    """1, 2, 4, ... below ``cpus``, then ``cpus`` itself."""
    counts = []
    n = 1
    while n < cpus:
        counts.append(n)
        n *= 2
    return [*counts, cpus]


CPUS = os.cpu_count() or 1
WORKERS = worker_counts(CPUS)


def case_name(grain: str, executor: str, workers: int) -> str:
    return f"{grain}: {executor}, {workers} worker{'s' if workers > 1 else ''}"


def _ratios() -> list[tuple[Any, Any, float | None, str, str]]:
    rows: list[tuple[Any, Any, float | None, str, str]] = []
    top = WORKERS[-1]
    for n in WORKERS:
        zuki_n = case_name("coarse", "zuki", n)
        at_top = n == top
        rows.append(
            (
                zuki_n,
                case_name("coarse", "processes", n),
                0.9 if at_top else None,
                "issue 4 (case 5)" if at_top else "reported",
                "ceiling",
            )
        )
        rows.append(
            (
                zuki_n,
                case_name("coarse", "ThreadPoolExecutor", n),
                0.95 if at_top else None,
                "issue 4 (case 5): not below, 5% noise" if at_top else "reported",
                "speedup",
            )
        )
        if n > 1:
            rows.append(
                (
                    (case_name("coarse", "zuki", 1), zuki_n),
                    (case_name("coarse", "processes", 1), case_name("coarse", "processes", n)),
                    None,
                    "reported",
                    "ceiling",
                )
            )
    for n in WORKERS:
        rows.append(
            (
                case_name("fine", "zuki", n),
                case_name("fine", "ThreadPoolExecutor", n),
                None,
                "reported",
                "speedup",
            )
        )
    return rows


# (zuki, reference, target, source, kind): see perf/report.py. The targets (at N = the CPU
# count) are those of the runtime issue's case 5; the other worker counts are reported.
RATIOS = _ratios()


def chart_series(values: dict[str, float]) -> dict[str, Any]:
    """Speedup over 1 worker for each executor, per grain (perf/chart.py draws them)."""
    panels = []
    for grain, (_iterations, per_cpu, executors, title) in GRAINS.items():
        series: dict[str, Any] = {}
        for executor in executors:
            one = values.get(case_name(grain, executor, 1))
            times = [values.get(case_name(grain, executor, n)) for n in WORKERS]
            series[executor] = {
                "per_task_1_worker_s": one,
                "speedup": [None if one is None or t is None else one / t for t in times],
            }
        panels.append({"grain": grain, "title": title, "tasks": per_cpu * CPUS, "series": series})
    return {"kind": "scaling", "workers": WORKERS, "cpus": CPUS, "panels": panels}


# --------------------------------------------------------------------------------------
# work and pools
# --------------------------------------------------------------------------------------


def spin(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


_process_pools: dict[int, cf.ProcessPoolExecutor] = {}


def _process_pool(n: int) -> cf.ProcessPoolExecutor:
    pool = _process_pools.get(n)
    if pool is None:
        pool = cf.ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"))
        list(pool.map(spin, [1] * (4 * n)))  # start every process before timing
        _process_pools[n] = pool
    return pool


def _close_pools() -> None:
    for pool in _process_pools.values():
        pool.shutdown()
    _process_pools.clear()


def _timed(loops: int, ex: Any, items: list[int], expect: int) -> float:
    total = 0.0
    for _ in range(loops):
        t0 = time.perf_counter()
        out = list(ex.map(spin, items))
        total += time.perf_counter() - t0
        assert len(out) == len(items) and out[-1] == expect
    return total


def run_case(loops: int, grain: str, executor: str, workers: int) -> float:
    """Seconds for ``loops`` runs of the grain's batch on ``workers`` workers."""
    iterations, per_cpu, _executors, _title = GRAINS[grain]
    items = [iterations] * (per_cpu * CPUS)
    expect = spin(iterations)
    if executor == "processes":
        return _timed(loops, _process_pool(workers), items, expect)
    ex: Any
    if executor == "zuki":
        ex = zuki.WorkStealingExecutor(workers)
    else:
        ex = cf.ThreadPoolExecutor(workers)
    with ex:
        list(ex.map(spin, [1] * (4 * workers)))  # every worker started
        return _timed(loops, ex, items, expect)


def cases() -> list[tuple[str, str, str, int, int]]:
    """(name, grain, executor, workers, tasks per batch)."""
    out = []
    for grain, (_iterations, per_cpu, executors, _title) in GRAINS.items():
        for executor in executors:
            for n in WORKERS:
                out.append((case_name(grain, executor, n), grain, executor, n, per_cpu * CPUS))
    return out


# --------------------------------------------------------------------------------------
# drivers
# --------------------------------------------------------------------------------------


def quick(argv: list[str]) -> int:
    """Best of ``--repeat`` plain timings and the ratio table, without pyperf."""
    import argparse

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from report import Measure, render_table

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    build = "GIL build" if GIL_ENABLED else "free-threaded build"
    print(f"python {sys.version.split()[0]} ({build}), {CPUS} CPUs, workers {WORKERS}")
    per_task: dict[str, float] = {}
    try:
        for name, grain, executor, n, tasks in cases():
            seconds = min(run_case(1, grain, executor, n) for _ in range(args.repeat))
            per_task[name] = seconds / tasks
            print(f"  {name:<40} {seconds * 1e3:9.1f} ms  {per_task[name] * 1e6:9.1f} us/task")
    finally:
        _close_pools()
    print()
    print(render_table(RATIOS, {k: Measure(v, "s") for k, v in per_task.items()}, "scaling"))
    for panel in chart_series(per_task)["panels"]:
        for executor, s in panel["series"].items():
            shown = ", ".join(
                f"{n}: {x:.2f}x" for n, x in zip(WORKERS, s["speedup"], strict=True) if x
            )
            print(f"speedup over 1 worker, {panel['grain']}, {executor}: {shown}")
    return 0


def pyperf_main() -> int:
    import pyperf

    runner = pyperf.Runner()
    runner.metadata["gil_enabled"] = str(GIL_ENABLED)
    runner.metadata["zuki_version"] = zuki.__version__
    runner.metadata["scaling_workers"] = ",".join(map(str, WORKERS))
    try:
        for name, grain, executor, n, tasks in cases():
            runner.bench_time_func(name, run_case, grain, executor, n, inner_loops=tasks)
    finally:
        _close_pools()
    return 0


def main() -> int:
    if "--quick" in sys.argv[1:]:
        return quick(sys.argv[1:])
    return pyperf_main()


if __name__ == "__main__":
    sys.exit(main())
