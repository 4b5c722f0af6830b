"""The stress runner: ``python -m stress [--minutes N] [--scenario NAME ...] [--workers N]``.

Each scenario (``stress/scenarios.py``) runs in rounds until its share of the time budget is
spent. Around every scenario the runner checks what a long-running service cares about:

* the scenario's own invariant (every task run exactly once, every message delivered once),
  checked by the scenario itself each round (it raises ``AssertionError``);
* nothing hangs: a watchdog (``faulthandler.dump_traceback_later``) dumps every thread's
  stack and exits non-zero if one round takes longer than ``--hang-seconds``;
* memory stops growing after warm-up: RSS and ``tracemalloc``'s current size after the last
  round must be within ``--memory-slack-mb`` of their values after the warm-up round;
* no threads and no file descriptors leak: both counts are back to their starting values
  (threads get a short grace period to finish exiting; the one process-wide timer and
  I/O driver thread, started on first use, is not a leak).

A progress line is printed per round, a summary table at the end, and the exit status is
non-zero if any scenario failed. ``make stress`` runs the short version CI uses (about two
minutes); ``python -m stress --minutes 30`` is a long one.
"""

from __future__ import annotations

import argparse
import faulthandler
import gc
import os
import sys
import threading
import time
import traceback
import tracemalloc
from dataclasses import dataclass, field

import zuki
from stress.scenarios import SCENARIOS, Scenario


@dataclass
class Outcome:
    name: str
    rounds: int = 0
    units: int = 0
    seconds: float = 0.0
    failure: str = ""
    notes: list[str] = field(default_factory=list)


def rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return 0.0


def open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return -1


#: Threads that live for the whole process by design: the timer and I/O driver.
PROCESS_THREADS = {"zuki-reactor"}


def thread_count() -> int:
    return sum(1 for t in threading.enumerate() if t.name not in PROCESS_THREADS)


def settle_threads(baseline: int, grace: float = 5.0) -> int:
    deadline = time.monotonic() + grace
    while thread_count() > baseline and time.monotonic() < deadline:
        time.sleep(0.02)
    return thread_count()


def run_scenario(scenario: Scenario, budget: float, args: argparse.Namespace) -> Outcome:
    outcome = Outcome(scenario.name)
    threads0, fds0 = thread_count(), open_fds()
    warm_rss = warm_traced = 0.0
    start = time.monotonic()
    try:
        while True:
            faulthandler.dump_traceback_later(args.hang_seconds, exit=True)
            t0 = time.monotonic()
            units = scenario.run(workers=args.workers, scale=args.scale)
            faulthandler.cancel_dump_traceback_later()
            outcome.rounds += 1
            outcome.units += units
            gc.collect()
            traced = tracemalloc.get_traced_memory()[0] / 2**20
            if outcome.rounds == 1:
                warm_rss, warm_traced = rss_mb(), traced
            print(
                f"  [{scenario.name}] round {outcome.rounds}: {units} {scenario.unit} "
                f"in {time.monotonic() - t0:.2f}s, rss {rss_mb():.0f} MB, "
                f"traced {traced:.1f} MB, threads {threading.active_count()}",
                flush=True,
            )
            if time.monotonic() - start >= budget or outcome.rounds >= args.max_rounds:
                break
        outcome.seconds = time.monotonic() - start
        if outcome.rounds > 1:
            grew_rss = rss_mb() - warm_rss
            grew_traced = tracemalloc.get_traced_memory()[0] / 2**20 - warm_traced
            if grew_traced > args.memory_slack_mb or grew_rss > 4 * args.memory_slack_mb:
                outcome.failure = (
                    f"memory kept growing after warm-up: traced +{grew_traced:.1f} MB, "
                    f"rss +{grew_rss:.1f} MB"
                )
        threads = settle_threads(threads0)
        if threads > threads0:
            names = sorted(t.name for t in threading.enumerate())
            outcome.failure = outcome.failure or f"threads leaked: {threads0} -> {threads} {names}"
        fds = open_fds()
        if fds > fds0:
            outcome.failure = outcome.failure or f"file descriptors leaked: {fds0} -> {fds}"
    except Exception:
        faulthandler.cancel_dump_traceback_later()
        outcome.seconds = time.monotonic() - start
        outcome.failure = traceback.format_exc(limit=8).strip().splitlines()[-1]
        traceback.print_exc()
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stress", description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0, help="total time budget")
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS), default=None)
    parser.add_argument("--workers", type=int, default=None, help="workers per executor")
    parser.add_argument("--scale", type=float, default=1.0, help="size multiplier per round")
    parser.add_argument("--hang-seconds", type=float, default=120.0)
    parser.add_argument("--memory-slack-mb", type=float, default=16.0)
    parser.add_argument("--max-rounds", type=int, default=1000)
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, scenario in sorted(SCENARIOS.items()):
            print(f"{name:24s} {scenario.doc}")
        return 0
    names = args.scenario or list(SCENARIOS)
    budget = args.minutes * 60 / len(names)
    is_enabled = getattr(sys, "_is_gil_enabled", None)
    gil = True if is_enabled is None else is_enabled()
    print(
        f"stress: {len(names)} scenarios, {budget:.0f}s each, python {sys.version.split()[0]}, "
        f"GIL enabled: {gil}, workers: {args.workers or os.cpu_count()}",
        flush=True,
    )
    # Start the process-wide timer/I-O driver first, so its thread and descriptors are part
    # of every scenario's baseline rather than counted as a leak by the first one to use it.
    zuki.run(zuki.sleep(0.001), workers=1)
    tracemalloc.start()
    outcomes = [run_scenario(SCENARIOS[name], budget, args) for name in names]
    tracemalloc.stop()
    print()
    print(f"| {'scenario':24s} | rounds | {'units':>10s} | seconds | result |")
    print(f"|{'-' * 26}|--------|{'-' * 12}|---------|--------|")
    for o in outcomes:
        result = "ok" if not o.failure else f"FAILED: {o.failure}"
        print(f"| {o.name:24s} | {o.rounds:6d} | {o.units:10d} | {o.seconds:7.1f} | {result} |")
    failed = [o.name for o in outcomes if o.failure]
    print()
    print(f"{len(outcomes) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
