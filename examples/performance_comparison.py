"""zuki against ThreadPoolExecutor, asyncio and processes on this machine (``make demo``).

Three workloads, each timed once per contender in this one run (the ratios matter, not the
absolute times: machines are shared and noisy):

* fine-grained: many trivial tasks (callables for the pools, coroutines for asyncio);
* fork-join: recursive ``fib`` split with ``zuki.join`` down to a cutoff;
* coarse CPU-bound: pure-Python loops of about 10 ms each.

"processes" is the machine's ceiling for CPU-bound work: the same work in N processes.
``--short`` shrinks every workload (the test suite runs it that way).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import zuki


def interpreter_line() -> str:
    is_enabled = getattr(sys, "_is_gil_enabled", None)
    gil_disabled = is_enabled is not None and not is_enabled()
    return (
        f"{platform.python_implementation()} {platform.python_version()} "
        f"({sys.executable}) | GIL disabled: {gil_disabled} | cores: {os.cpu_count()}"
    )


def trivial(i: int) -> int:
    return i + 1


async def trivial_coro(i: int) -> int:
    return i + 1


def spin(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def fib_seq(n: int) -> int:
    return n if n < 2 else fib_seq(n - 1) + fib_seq(n - 2)


def fib_join(n: int, cutoff: int) -> int:
    if n <= cutoff:
        return fib_seq(n)
    a, b = zuki.join(lambda: fib_join(n - 1, cutoff), lambda: fib_join(n - 2, cutoff))
    return a + b


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def spin_size_for(seconds: float) -> int:
    """Loop count for a ``spin`` call of about ``seconds`` on this interpreter."""
    n = 20_000
    while True:
        t = timed(lambda n=n: spin(n))
        if t > 0.02:
            return max(1, int(n * seconds / t))
        n *= 2


def fine_grained(n: int, workers: int) -> dict[str, float]:
    items = range(n)
    out: dict[str, float] = {}
    with zuki.WorkStealingExecutor(workers) as ex:
        # map's default chunksize is 1, as in ThreadPoolExecutor; batching is the point here.
        out["zuki"] = timed(lambda: list(ex.map(trivial, items, chunksize=256)))
    with ThreadPoolExecutor(workers) as tpe:
        out["ThreadPoolExecutor"] = timed(lambda: list(tpe.map(trivial, items)))

    async def gather_asyncio() -> None:
        await asyncio.gather(*(asyncio.create_task(trivial_coro(i)) for i in items))

    async def gather_zuki() -> None:
        for h in [zuki.spawn(trivial_coro(i)) for i in items]:
            await h

    out["asyncio"] = timed(lambda: asyncio.run(gather_asyncio()))
    out["zuki coroutines"] = timed(lambda: zuki.run(gather_zuki(), workers=workers))
    with ProcessPoolExecutor(workers) as ppe:
        list(ppe.map(trivial, range(workers)))
        out["processes"] = timed(lambda: list(ppe.map(trivial, items, chunksize=256)))
    return out


def fork_join(n: int, cutoff: int, workers: int) -> dict[str, float]:
    out: dict[str, float] = {}
    out["one thread"] = timed(lambda: fib_seq(n))
    with zuki.WorkStealingExecutor(1) as ex:
        out["zuki 1 worker"] = timed(lambda: ex.submit(fib_join, n, cutoff).result())
    with zuki.WorkStealingExecutor(workers) as ex:
        out["zuki"] = timed(lambda: ex.submit(fib_join, n, cutoff).result())
    out["ThreadPoolExecutor"] = float("nan")  # nested submit-and-wait deadlocks a bounded pool
    # The ceiling: the two halves of the top split, one per process (already started).
    with ProcessPoolExecutor(2) as ppe:
        list(ppe.map(fib_seq, [1, 1]))
        out["processes"] = timed(lambda: list(ppe.map(fib_seq, [n - 1, n - 2])))
    return out


def coarse(tasks: int, size: int, workers: int) -> dict[str, float]:
    sizes = [size] * tasks
    out: dict[str, float] = {}
    out["one thread"] = timed(lambda: [spin(s) for s in sizes])
    with zuki.WorkStealingExecutor(workers) as ex:
        out["zuki"] = timed(lambda: list(ex.map(spin, sizes)))
    with ThreadPoolExecutor(workers) as tpe:
        out["ThreadPoolExecutor"] = timed(lambda: list(tpe.map(spin, sizes)))
    with ProcessPoolExecutor(workers) as ppe:
        list(ppe.map(spin, [1] * workers))  # start the processes outside the timing
        out["processes"] = timed(lambda: list(ppe.map(spin, sizes)))
    return out


def fmt(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1e3:9.1f} ms"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--short", action="store_true", help="small sizes (seconds, not tens)")
    args = parser.parse_args(argv)
    workers = os.cpu_count() or 2
    print(interpreter_line(), flush=True)
    n_fine = 2_000 if args.short else 100_000
    fib_n, cutoff = (18, 12) if args.short else (27, 17)
    n_coarse = 2 * workers if args.short else 8 * workers
    size = spin_size_for(0.002 if args.short else 0.010)

    rows: list[tuple[str, dict[str, float]]] = []
    print(f"[1/3] fine-grained: {n_fine} trivial tasks ...", flush=True)
    rows.append((f"fine-grained ({n_fine} tasks)", fine_grained(n_fine, workers)))
    print(f"[2/3] fork-join: fib({fib_n}) with cutoff {cutoff} ...", flush=True)
    rows.append((f"fork-join fib({fib_n})", fork_join(fib_n, cutoff, workers)))
    print(f"[3/3] coarse: {n_coarse} CPU-bound tasks of ~10 ms ...", flush=True)
    rows.append((f"coarse ({n_coarse} x ~10 ms)", coarse(n_coarse, size, workers)))

    print()
    print(f"{workers} workers/threads/processes each; lower is better.")
    print("zuki and processes map with chunksize=256; ThreadPoolExecutor.map ignores chunksize.")
    print(f"| {'workload':28s} | {'contender':20s} | {'time':>12s} | vs zuki |")
    print(f"|{'-' * 30}|{'-' * 22}|{'-' * 14}|---------|")
    for workload, times in rows:
        base = times["zuki"]
        for name, t in times.items():
            ratio = "" if math.isnan(t) else f"{t / base:6.2f}x"
            print(f"| {workload:28s} | {name:20s} | {fmt(t):>12s} | {ratio:>7s} |")


if __name__ == "__main__":
    main()
