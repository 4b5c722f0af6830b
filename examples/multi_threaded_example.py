"""Multi-threaded zuki: the work-stealing executor on CPU-bound work and on async tasks.

    python examples/multi_threaded_example.py [--workers N] [--short]

Three everyday shapes of parallel work:

1. ``executor.map``: count the primes below a limit, one chunk of the range per task,
   exactly as with ``concurrent.futures.ThreadPoolExecutor`` (a drop-in replacement);
2. ``zuki.run`` with ``zuki.spawn``: walk a (synthetic) web of pages, where each page task
   spawns tasks for the links it finds and awaits their results;
3. ``zuki.join``: a fork-join merge sort, where each call sorts one half itself and
   offers the other half to idle workers.

On a free-threaded build (python3.13t) the workers run truly in parallel; on a GIL build
the same code runs, concurrently but not in parallel.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time

import zuki


def count_primes(lo: int, hi: int) -> int:
    """Primes in ``[lo, hi)`` by trial division: deliberately plain CPU-bound Python."""
    count = 0
    for n in range(max(lo, 2), hi):
        if n % 2 == 0:
            count += n == 2
            continue
        for d in range(3, math.isqrt(n) + 1, 2):
            if n % d == 0:
                break
        else:
            count += 1
    return count


def primes_demo(workers: int, limit: int) -> None:
    chunk = 5_000
    starts = range(0, limit, chunk)
    t0 = time.perf_counter()
    sequential = sum(count_primes(lo, lo + chunk) for lo in starts)
    t_seq = time.perf_counter() - t0

    with zuki.WorkStealingExecutor(workers) as executor:
        t0 = time.perf_counter()
        parallel = sum(executor.map(count_primes, starts, [lo + chunk for lo in starts]))
        t_par = time.perf_counter() - t0
    assert parallel == sequential
    print(f"1. primes below {limit:,}: {parallel:,}")
    print(
        f"   one thread {t_seq:.2f} s, {workers} workers {t_par:.2f} s "
        f"(speedup {t_seq / t_par:.2f}x)"
    )


# A synthetic site of ``pages`` pages: page i links to pages 2i+1 and 2i+2 (so every page
# is reachable from page 0) and to one random page (so pages are often linked twice).
def links_of(page: int, pages: int) -> list[int]:
    links = {2 * page + 1, 2 * page + 2, random.Random(page).randrange(pages)}
    return sorted(link for link in links if link < pages and link != page)


async def fetch(page: int) -> str:
    """Stand-in for I/O: give other tasks a turn, then 'download' the page."""
    await zuki.yield_now()
    return f"<html>page {page}</html>"


async def crawl(page: int, pages: int, seen: set[int]) -> int:
    """Fetch ``page`` and, concurrently, every page it links to that nobody claimed yet.
    Returns how many pages this subtree fetched."""
    body = await fetch(page)
    children = []
    for link in links_of(page, pages):
        if link not in seen:
            seen.add(link)  # a rare double claim by two tasks only fetches a page twice
            children.append(zuki.spawn(crawl(link, pages, seen)))
    fetched = 1 if body else 0
    for child in children:
        fetched += await child
    return fetched


async def crawl_site(pages: int) -> tuple[int, int]:
    seen = {0}
    fetched = await crawl(0, pages, seen)
    return fetched, len(seen)


def crawl_demo(workers: int, pages: int) -> None:
    t0 = time.perf_counter()
    fetched, reachable = zuki.run(crawl_site(pages), workers=workers)
    dt = time.perf_counter() - t0
    print(f"2. crawled {fetched:,} pages ({reachable:,} reachable of {pages:,}) in {dt:.2f} s")


def merge(a: list[int], b: list[int]) -> list[int]:
    out: list[int] = []
    i = j = 0
    while i < len(a) and j < len(b):
        if a[i] <= b[j]:
            out.append(a[i])
            i += 1
        else:
            out.append(b[j])
            j += 1
    out.extend(a[i:])
    out.extend(b[j:])
    return out


def merge_sort(items: list[int]) -> list[int]:
    if len(items) <= 2_000:
        return sorted(items)
    mid = len(items) // 2
    left, right = zuki.join(lambda: merge_sort(items[:mid]), lambda: merge_sort(items[mid:]))
    return merge(left, right)


def sort_demo(workers: int, n: int) -> None:
    rng = random.Random(42)
    items = [rng.randrange(1_000_000) for _ in range(n)]
    with zuki.WorkStealingExecutor(workers) as executor:
        t0 = time.perf_counter()
        result = executor.submit(merge_sort, items).result()
        dt = time.perf_counter() - t0
        stolen = executor.metrics().stolen
    assert result == sorted(items)
    print(f"3. merge-sorted {n:,} numbers with zuki.join in {dt:.2f} s ({stolen} tasks stolen)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--short", action="store_true", help="small sizes, for a quick run")
    args = parser.parse_args()
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    print(f"Python {sys.version.split()[0]}, GIL {'enabled' if gil else 'disabled'}")
    primes_demo(args.workers, 40_000 if args.short else 400_000)
    crawl_demo(args.workers, 2_000 if args.short else 50_000)
    sort_demo(args.workers, 20_000 if args.short else 400_000)


if __name__ == "__main__":
    main()
