"""Batch submission: hand many small tasks to the pool in one step with ``TaskBatch``.

    python examples/batch_submission_example.py [--workers N] [--short]

Spawning tasks one by one pays a synchronization step (and possibly a worker wake-up)
per task. A ``zuki.TaskBatch`` collects the tasks first; ``executor.spawn_batch(batch)``
then hands the whole batch over at once and wakes only as many idle workers as the
batch can use. The example:

1. parses a day of (synthetic) access-log lines, one task per line, spawned one by one
   and then as a single batch, and compares the two;
2. mixes callables and coroutines in one batch (a batch takes anything ``spawn`` takes);
3. shows the scheduler counters of the batch run: how the work spread over the workers.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import time

import zuki

METHODS = ("GET", "GET", "GET", "POST", "PUT", "DELETE")
PATHS = ("/", "/login", "/api/items", "/api/items/42", "/static/app.js", "/health")
STATUSES = (200, 200, 200, 200, 301, 404, 500)


def make_log(n: int) -> list[str]:
    rng = random.Random(7)
    return [
        f"10.0.{rng.randrange(256)}.{rng.randrange(256)} - - [24/Nov/2026:{i % 24:02d}:"
        f'{i % 60:02d}:{(i * 7) % 60:02d}] "{rng.choice(METHODS)} {rng.choice(PATHS)} '
        f'HTTP/1.1" {rng.choice(STATUSES)} {rng.randrange(100, 50_000)}'
        for i in range(n)
    ]


def parse(line: str) -> tuple[str, str, int, int]:
    """One log line -> (hour, path, status, bytes)."""
    head, _, rest = line.partition('"')
    request, _, tail = rest.partition('"')
    _, path, _ = request.split(" ")
    status, size = tail.split()
    hour = head.split(":", 2)[1]
    return hour, path, int(status), int(size)


def summarize(records: list[tuple[str, str, int, int]]) -> tuple[collections.Counter[int], int]:
    statuses = collections.Counter(status for _, _, status, _ in records)
    return statuses, sum(size for *_, size in records)


def one_by_one(executor: zuki.WorkStealingExecutor, lines: list[str]) -> list[object]:
    handles = [executor.spawn(lambda line=line: parse(line)) for line in lines]
    return [h.result() for h in handles]


def as_one_batch(executor: zuki.WorkStealingExecutor, lines: list[str]) -> list[object]:
    batch = zuki.TaskBatch()
    batch.extend(lambda line=line: parse(line) for line in lines)
    handles = executor.spawn_batch(batch)
    return [h.result() for h in handles]


async def enrich(path: str) -> str:
    """A coroutine task: pretend to look the path up somewhere, then label it."""
    await zuki.yield_now()
    return "api" if path.startswith("/api") else "static" if "." in path else "page"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--short", action="store_true", help="small sizes, for a quick run")
    args = parser.parse_args()
    lines = make_log(5_000 if args.short else 200_000)

    with zuki.WorkStealingExecutor(args.workers) as executor:
        t0 = time.perf_counter()
        single = one_by_one(executor, lines)
        t_single = time.perf_counter() - t0

        before = executor.metrics()
        t0 = time.perf_counter()
        batched = as_one_batch(executor, lines)
        t_batch = time.perf_counter() - t0
        after = executor.metrics()
        assert batched == single

        statuses, total_bytes = summarize(batched)  # type: ignore[arg-type]
        print(f"1. parsed {len(lines):,} log lines on {args.workers} workers")
        print(f"   spawn one by one: {t_single:.3f} s   spawn_batch: {t_batch:.3f} s")
        print(f"   statuses: {dict(sorted(statuses.items()))}, {total_bytes:,} bytes served")

        # 2. A batch may mix callables, coroutines and zuki.Futures.
        batch = zuki.TaskBatch()
        for path in PATHS:
            batch.add(enrich(path))
        batch.add(lambda: "a plain callable")
        kinds = [h.result() for h in executor.spawn_batch(batch)]
        print(f"2. mixed batch of {len(kinds)}: {kinds}")

    # 3. Where the batch's tasks ran (counter deltas over the batch run).
    print("3. the batch run, per worker (tasks polled, taken from the global queue, stolen):")
    rows_before = {w.index: w for w in before.workers}
    for row in after.workers:
        prev = rows_before.get(row.index)
        polled = row.tasks_polled - (prev.tasks_polled if prev else 0)
        global_pops = row.global_pops - (prev.global_pops if prev else 0)
        stolen = row.stolen - (prev.stolen if prev else 0)
        counts = f"{polled:>7,} polled {global_pops:>7,} global {stolen:>7,} stolen"
        print(f"   worker {row.index}: {counts}")


if __name__ == "__main__":
    main()
