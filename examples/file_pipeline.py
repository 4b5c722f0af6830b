"""A file pipeline: read log files, parse them on all cores, merge through a channel.

    python examples/file_pipeline.py [DIR] [--workers N] [--files N] [--short]

Summarizes a directory of web-server access logs (Common Log Format). Without ``DIR`` it
writes a synthetic, seeded set of logs to a temporary directory first (one file in it is
corrupt on purpose). Three stages, joined by bounded ``zuki.Channel``s:

1. a reader task lists and reads the files and sends their bytes on; when the parsers
   fall behind, ``send`` waits for room (back-pressure: memory stays bounded);
2. one parser task per worker decodes and parses files: plain CPU-bound Python, truly
   parallel on a free-threaded build (python3.13t);
3. a single aggregator task receives per-file statistics and merges them.

``close()`` marks the end of each stream. A file that cannot be read or parsed becomes a
"skipped" entry in the report instead of an exception. The totals are then checked
against a sequential pass over the same files ("verified"; exit status 1 if they differ).
``zuki.stream(paths, read_and_parse, workers=N)`` packages the same shape in one
call; it is spelled out here to show the channels. On a GIL build the same code runs,
concurrently but not in parallel.
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import re
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import zuki

# host ident user [time] "request" status bytes; we keep the hour, path, status and bytes.
LOG_LINE = re.compile(r'\S+ \S+ \S+ \[[^:\]]+:(\d\d):[^\]]+\] "\S+ (\S+)[^"]*" (\d{3}) (\d+|-)')


@dataclass
class LogStats:
    """What we know about some log files; a file's stats and the totals alike."""

    files: int = 0
    requests: int = 0
    bytes: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    paths: Counter[str] = field(default_factory=Counter)
    hours: Counter[int] = field(default_factory=Counter)
    skipped: dict[str, str] = field(default_factory=dict)  # file name -> why

    @classmethod
    def failure(cls, name: str, error: Exception) -> LogStats:
        return cls(skipped={name: f"{type(error).__name__}: {error}"})

    def merge(self, other: LogStats) -> None:
        self.files += other.files
        self.requests += other.requests
        self.bytes += other.bytes
        self.statuses.update(other.statuses)
        self.paths.update(other.paths)
        self.hours.update(other.hours)
        self.skipped.update(other.skipped)


def parse_log(name: str, data: bytes) -> LogStats:
    """Parse one file (CPU-bound). Raises ValueError for a malformed file (bad UTF-8 too)."""
    stats = LogStats(files=1)
    for lineno, line in enumerate(data.decode("utf-8").splitlines(), 1):
        match = LOG_LINE.fullmatch(line)
        if match is None:
            raise ValueError(f"line {lineno} is not a log line: {line[:40]!r}")
        hour, path, status, size = match.groups()
        stats.requests += 1
        stats.bytes += 0 if size == "-" else int(size)
        stats.statuses[int(status)] += 1
        stats.paths[path.partition("?")[0]] += 1
        stats.hours[int(hour)] += 1
    return stats


# -- the pipeline ----------------------------------------------------------------------


async def read_files(
    paths: list[Path], raw: zuki.Channel[tuple[str, bytes]], results: zuki.Channel[LogStats]
) -> int:
    """Stage 1: read each file, send its bytes on. Returns how often ``raw`` was full."""
    waits = 0
    try:
        for path in paths:
            try:
                item = (path.name, path.read_bytes())  # a blocking read: short, local files
            except OSError as exc:  # unreadable, or gone since the listing
                await results.send(LogStats.failure(path.name, exc))
                continue
            try:
                raw.try_send(item)
            except zuki.ChannelFull:  # the parsers are behind: wait for room
                waits += 1
                await raw.send(item)
    finally:
        raw.close()  # end of stream: the parsers' `async for` ends once raw is drained
    return waits


async def parse_files(
    raw: zuki.Channel[tuple[str, bytes]], results: zuki.Channel[LogStats]
) -> None:
    """Stage 2 (one task per worker): parse files as they arrive, send their stats."""
    async for name, data in raw:
        try:
            stats = parse_log(name, data)
        except ValueError as exc:  # a malformed file is a result, not a crash
            stats = LogStats.failure(name, exc)
        await results.send(stats)


async def aggregate(results: zuki.Channel[LogStats]) -> LogStats:
    """Stage 3 (a single task, so the totals need no lock): merge until the stream ends."""
    totals = LogStats()
    async for stats in results:
        totals.merge(stats)
    return totals


async def pipeline(paths: list[Path], parsers: int) -> tuple[LogStats, int]:
    # Bounded: at most `parsers` files are read ahead of the parsers.
    raw: zuki.Channel[tuple[str, bytes]] = zuki.Channel(capacity=parsers)
    results: zuki.Channel[LogStats] = zuki.Channel(capacity=2 * parsers)
    aggregator = zuki.spawn(aggregate(results))
    try:
        async with zuki.TaskGroup() as group:  # ends when the reader and parsers have
            reader = group.spawn(read_files, paths, raw, results)
            for _ in range(parsers):
                group.spawn(parse_files, raw, results)
    finally:
        results.close()  # no producer is left (even after an error): let the merge finish
    return await aggregator, reader.result()


def sequential(paths: list[Path]) -> LogStats:
    """The same work in one thread, no zuki: the reference the pipeline must match."""
    totals = LogStats()
    for path in paths:
        try:
            totals.merge(parse_log(path.name, path.read_bytes()))
        except (OSError, ValueError) as exc:
            totals.merge(LogStats.failure(path.name, exc))
    return totals


# -- input and report ------------------------------------------------------------------

PAGES = ["/"] * 9 + ["/api/items"] * 7 + ["/static/app.js"] * 5 + ["/login"] * 3
PAGES += ["/search?q=zuki", "/search?q=free+threading", "/favicon.ico"]
PAGES += [f"/api/items/{i}" for i in range(25)]
STATUSES = [200] * 16 + [304] * 2 + [301, 404, 404, 500]


def write_log(directory: Path, lines: int, seed: int, index: int) -> None:
    """Write ``access-NNNN.log``: a seeded day of requests, busier in the afternoon."""
    rng = random.Random(seed * 100_003 + index)
    hours = rng.choices(range(24), weights=[1 + 12 - abs(14 - h) for h in range(24)], k=lines)
    out = []
    for hour in sorted(hours):
        status = rng.choice(STATUSES)
        size = "-" if status == 304 else rng.randrange(200, 20_000)
        out.append(
            f"10.{index % 256}.{rng.randrange(256)}.{rng.randrange(1, 255)} - - "
            f"[24/Nov/2026:{hour:02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d} +0000] "
            f'"GET {rng.choice(PAGES)} HTTP/1.1" {status} {size}'
        )
    if index == 7:  # a line cut short, as if the server had crashed mid-write
        out[lines // 2] = out[lines // 2][:30]
    (directory / f"access-{index:04d}.log").write_text("\n".join(out) + "\n")


def print_report(totals: LogStats, listed: int) -> None:
    served = f"{totals.requests:,} requests, {totals.bytes / 1e6:,.1f} MB served"
    print(f"parsed {totals.files} of {listed} files: {served}")
    for name, why in sorted(totals.skipped.items()):
        print(f"  skipped {name}: {why}")
    if not totals.requests:
        return
    share = [f"{s} {n / totals.requests:.1%}" for s, n in sorted(totals.statuses.items())]
    print(f"  status codes:  {', '.join(share)}")
    top = [f"{p} {n:,}" for p, n in totals.paths.most_common(4)]
    print(f"  top paths:     {', '.join(top)}")
    busiest = [f"{h:02d}h {n:,}" for h, n in totals.hours.most_common(3)]
    print(f"  busiest hours: {', '.join(busiest)}")


def run(paths: list[Path], workers: int) -> int:
    t0 = time.perf_counter()
    totals, waits = zuki.run(pipeline(paths, workers), workers=workers)
    t_pipeline = time.perf_counter() - t0
    t0 = time.perf_counter()
    expected = sequential(paths)
    t_sequential = time.perf_counter() - t0

    print_report(totals, len(paths))
    backpressure = f"{waits} of {len(paths)} sends waited for room"
    print(f"pipeline {t_pipeline:.2f} s on {workers} workers ({backpressure})")
    print(f"sequential {t_sequential:.2f} s (pipeline speedup {t_sequential / t_pipeline:.2f}x)")
    if totals != expected:
        print("NOT verified: the pipeline's totals differ from a sequential pass")
        return 1
    print("verified: the pipeline's totals equal a sequential pass")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", nargs="?", type=Path, help="log files (default: generated)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--files", type=int, help="how many files to generate (no DIR)")
    parser.add_argument("--short", action="store_true", help="small sizes, for a quick run")
    args = parser.parse_args()
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.dir is not None and not args.dir.is_dir():
        parser.error(f"{args.dir} is not a directory")
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    print(f"Python {sys.version.split()[0]}, GIL {'enabled' if gil else 'disabled'}")

    if args.dir is not None:
        paths = sorted(p for p in args.dir.iterdir() if not p.is_dir())
        print(f"{len(paths)} files in {args.dir}")
        return run(paths, args.workers)

    files = max(1, args.files or (24 if args.short else 200))
    lines = 400 if args.short else 2_000
    with tempfile.TemporaryDirectory(prefix="zuki-logs-") as tmp:
        # Writing the data set is parallel work too: one call per file, spread by zuki.
        zuki.parallel_map(functools.partial(write_log, Path(tmp), lines, 42), range(files))
        paths = sorted(Path(tmp).iterdir())
        print(f"generated {files} files of {lines:,} lines in {tmp}")
        return run(paths, args.workers)


if __name__ == "__main__":
    sys.exit(main())
