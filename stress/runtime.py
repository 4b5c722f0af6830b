"""Long-running stress scenarios for zuki's runtime, with exactly-once checks and a watchdog.

    python stress/runtime.py [--tasks 1000000] [--workers N] [--backend lockfree|builtin|both]
                             [--only NAME[,NAME...]] [--watchdog SECONDS] [--repeat K]

Every scenario runs on a ``WorkStealingExecutor`` with ``park_timeout=None``, so a lost
wake-up hangs instead of being papered over by a timed park; the watchdog then dumps
every thread's stack and exits with status 1 (faulthandler's exit). A violated invariant
(a task run twice, a task lost, a handle left pending) prints FAILED and exits with
status 2. On success the last line is a
summary such as::

    stress/runtime.py: OK  7 scenarios x 2 backends, 4 workers, 1,000,000 tasks, 41.2 s

The same scenarios, smaller, are in ``tests/test_runtime_stress.py``.
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import zuki

PRODUCERS = 4


class Failure(AssertionError):
    """An invariant of a scenario does not hold."""


def check_exactly_once(ran: list[int], n: int, what: str) -> None:
    """Every id in ``range(n)`` appears in ``ran`` exactly once."""
    if len(ran) == n and sorted(ran) == list(range(n)):
        return
    counts = bytearray(n)
    extra = 0
    for i in ran:
        if 0 <= i < n and counts[i] < 255:
            counts[i] += 1
        else:
            extra += 1
    missing = [i for i in range(n) if counts[i] == 0]
    twice = [i for i in range(n) if counts[i] > 1]
    raise Failure(
        f"{what}: {len(ran)} runs for {n} tasks; {len(missing)} lost (first: {missing[:5]}), "
        f"{len(twice)} run more than once (first: {twice[:5]}), {extra} unknown ids"
    )


def make(args: argparse.Namespace, backend: str) -> Any:
    config = zuki.ExecutorConfig(workers=args.workers, queue_backend=backend, park_timeout=None)
    return zuki.WorkStealingExecutor(config=config)


# --------------------------------------------------------------------------------------
# scenarios: each returns the number of tasks it ran
# --------------------------------------------------------------------------------------


def exactly_once(args: argparse.Namespace, backend: str) -> int:
    """``--tasks`` tiny tasks: half spawned by 4 outside threads, half by those tasks."""
    ran: list[int] = []
    hit = ran.append
    parents = args.tasks // 2
    per_producer = parents // PRODUCERS
    parents = per_producer * PRODUCERS

    def parent(i: int) -> None:
        hit(i)
        zuki.spawn(lambda: hit(i + parents))

    with make(args, backend) as ex:
        start = threading.Barrier(PRODUCERS)

        def producer(p: int) -> None:
            start.wait()
            spawn = ex.spawn
            for i in range(p * per_producer, (p + 1) * per_producer):
                spawn(lambda i=i: parent(i))

        run_threads(producer, PRODUCERS)
    check_exactly_once(ran, 2 * parents, "exactly_once")
    return 2 * parents


def batches(args: argparse.Namespace, backend: str) -> int:
    """``--tasks`` tiny tasks in batches of 1,000 from 4 outside threads."""
    ran: list[int] = []
    hit = ran.append
    size = 1000
    per_producer = max(args.tasks // PRODUCERS // size, 1)
    with make(args, backend) as ex:

        def producer(p: int) -> None:
            for b in range(per_producer):
                base = (p * per_producer + b) * size
                batch = zuki.TaskBatch()
                batch.extend(lambda i=i: hit(i) for i in range(base, base + size))
                ex.spawn_batch(batch)

        run_threads(producer, PRODUCERS)
    n = PRODUCERS * per_producer * size
    check_exactly_once(ran, n, "batches")
    return n


def chains(args: argparse.Namespace, backend: str) -> int:
    """Spawn chains of 3,000 (each step spawns the next), 4 at once, then a chain driven
    by an outside thread that waits for each step, so every step needs a wake-up."""
    length = 3000
    ran: list[int] = []
    hit = ran.append
    with make(args, backend) as ex:
        done = threading.Semaphore(0)

        def step(chain: int, i: int) -> None:
            hit(chain * length + i)
            if i + 1 < length:
                zuki.spawn(lambda: step(chain, i + 1))
            else:
                done.release()

        for c in range(4):
            ex.spawn(lambda c=c: step(c, 0))
        for _ in range(4):
            if not done.acquire(timeout=args.watchdog):
                raise Failure("chains: a chain stopped")
        for i in range(length):
            ex.spawn(lambda i=i: hit(4 * length + i)).result()
    check_exactly_once(ran, 5 * length, "chains")
    return 5 * length


def fan_out(args: argparse.Namespace, backend: str) -> int:
    """One task spawns 100,000 children (overflow to the global queue, stealing)."""
    n = min(100_000, args.tasks)
    ran: list[int] = []
    hit = ran.append

    async def parent() -> int:
        handles = [zuki.spawn(lambda i=i: hit(i)) for i in range(n)]
        for h in handles:
            await h
        return len(handles)

    with make(args, backend) as ex:
        if ex.block_on(parent()) != n:
            raise Failure("fan_out: wrong number of handles")
        snapshot = ex.metrics()
    check_exactly_once(ran, n, "fan_out")
    if args.workers > 1 and snapshot.overflows == 0 and snapshot.stolen == 0:
        raise Failure("fan_out: 100,000 local spawns neither overflowed nor were stolen")
    return n


class Signal(zuki.Future):
    """A one-token signal: ``notify()`` from any thread, ``await`` consumes the token."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._token = False
        self._waker: Any = None

    def poll(self, cx: Any) -> Any:
        with self._lock:
            if self._token:
                self._token = False
                return zuki.Poll.ready(None)
            self._waker = cx.waker.clone()
            return zuki.Poll.PENDING

    def notify(self) -> None:
        with self._lock:
            self._token = True
            waker, self._waker = self._waker, None
        if waker is not None:
            waker.wake()


def ping_pong(args: argparse.Namespace, backend: str) -> int:
    """Two tasks wake each other through the LIFO slot; a third task must still run.
    One worker, so nobody else can pick the third task up. Twenty rounds."""
    limit = 1_000_000
    total = 0
    one = argparse.Namespace(**{**vars(args), "workers": 1})
    with make(one, backend) as ex:
        for _ in range(20):
            rounds = [0]
            stop = threading.Event()

            async def player(mine: Signal, other: Signal, rounds: Any, stop: Any) -> None:
                while not stop.is_set() and rounds[0] < limit:
                    await mine
                    rounds[0] += 1
                    other.notify()
                other.notify()

            a, b = Signal(), Signal()
            players = [ex.spawn(player(a, b, rounds, stop)), ex.spawn(player(b, a, rounds, stop))]
            a.notify()
            time.sleep(0.005)
            ex.spawn(stop.set).result()
            for p in players:
                p.result()
            if rounds[0] >= limit:
                raise Failure("ping_pong: the third task starved")
            total += rounds[0]
    return total


def fib_seq(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def fork_join(args: argparse.Namespace, backend: str) -> int:
    """fib(24) by nested submit-and-wait and by zuki.join, with 1 worker and with N."""
    tasks = [0]

    for workers in sorted({1, args.workers}):
        cfg = argparse.Namespace(**{**vars(args), "workers": workers})
        with make(cfg, backend) as ex:

            def fib_submit(n: int, ex: Any = ex) -> int:
                if n < 12:
                    return fib_seq(n)
                left = ex.submit(fib_submit, n - 1)
                right = ex.submit(fib_submit, n - 2)
                return left.result() + right.result()

            def fib_join(n: int) -> int:
                if n < 12:
                    return fib_seq(n)
                a, b = zuki.join(lambda: fib_join(n - 1), lambda: fib_join(n - 2))
                return a + b

            for fn in (fib_submit, fib_join):
                got = ex.submit(fn, 24).result()
                if got != fib_seq(24):
                    raise Failure(f"fork_join: {fn.__name__}(24) = {got}")
            tasks[0] += ex.metrics().tasks_polled
    return tasks[0]


def shutdown_storm(args: argparse.Namespace, backend: str) -> int:
    """Shut down while 4 threads spawn as fast as they can and tasks spawn children;
    ten rounds, alternating ``cancel_futures``. No handle may be left pending, no task
    may run twice, and without ``cancel_futures`` every accepted task must run."""
    return sum(storm_round(args, backend, cancel=bool(r % 2)) for r in range(10))


def storm_round(args: argparse.Namespace, backend: str, *, cancel: bool) -> int:
    ran: list[int] = []
    hit = ran.append
    parents: list[Any] = []
    children: list[Any] = []
    ids = iter(range(0, 1 << 62, 2))  # parent i, child i + 1
    id_lock = threading.Lock()
    ex = make(args, backend)

    def parent(i: int) -> None:
        hit(i)
        try:
            children.append(zuki.spawn(lambda: hit(i + 1)))
        except zuki.ExecutorShutdownError:
            hit(i + 1)  # refused: account for the child here

    def producer(_: int) -> None:
        while True:
            with id_lock:
                i = next(ids)
            try:
                parents.append(ex.spawn(lambda i=i: parent(i)))
            except zuki.ExecutorShutdownError:
                hit(i)  # refused: neither id will run
                hit(i + 1)
                return

    threads = [threading.Thread(target=producer, args=(p,)) for p in range(PRODUCERS)]
    for t in threads:
        t.start()
    while len(parents) < 2000:
        time.sleep(0.001)
    ex.shutdown(wait=True, cancel_futures=cancel)
    for t in threads:
        t.join()
    with id_lock:
        n = next(ids)
    if not all(h.done() for h in parents + children):
        raise Failure("shutdown_storm: a handle is still pending after shutdown")
    if len(ran) != len(set(ran)):
        raise Failure("shutdown_storm: a task ran twice")
    if cancel:
        # A cancelled parent never created its child's id; a cancelled child never ran.
        lost = 2 * sum(h.cancelled() for h in parents) + sum(h.cancelled() for h in children)
        if len(ran) + lost != n:
            raise Failure(f"shutdown_storm: {len(ran)} ran + {lost} cancelled != {n}")
    else:
        check_exactly_once(ran, n, "shutdown_storm")
    return len(ran)


class Gate(zuki.Future):
    """Pending until ``open(value)``; remembers its waker."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open = False
        self._value: Any = None
        self.waker: Any = None
        self.polled = threading.Event()

    def poll(self, cx: Any) -> Any:
        with self._lock:
            if self._open:
                return zuki.Poll.ready(self._value)
            self.waker = cx.waker.clone()
        self.polled.set()
        return zuki.Poll.PENDING

    def open(self, value: Any) -> None:
        with self._lock:
            self._open = True
            self._value = value
            waker = self.waker
        if waker is not None:
            waker.wake()


def wake_during_shutdown(args: argparse.Namespace, backend: str) -> int:
    """Thousands of suspended tasks woken from a foreign thread while the pool shuts
    down, and woken again after it stopped. Ten rounds, alternating ``cancel_futures``."""
    return sum(wake_round(args, backend, cancel=bool(r % 2)) for r in range(10))


def wake_round(args: argparse.Namespace, backend: str, *, cancel: bool) -> int:
    gates = [Gate() for _ in range(2000)]
    ex = make(args, backend)
    handles = [ex.spawn(g) for g in gates]
    for g in gates:
        if not g.polled.wait(args.watchdog):
            raise Failure("wake_during_shutdown: a task never suspended")

    def opener() -> None:
        for i, g in enumerate(gates):
            g.open(i)
            g.waker.clone().wake()  # a second, stale wake: must be a no-op

    t = threading.Thread(target=opener)
    t.start()
    ex.shutdown(wait=True, cancel_futures=cancel)
    t.join()
    for g in gates:
        g.waker.wake()  # after shutdown: harmless
    for i, h in enumerate(handles):
        if not h.done():
            raise Failure("wake_during_shutdown: a handle is still pending")
        if not h.cancelled() and h.result() != i:
            raise Failure("wake_during_shutdown: wrong result")
    return len(handles)


SCENARIOS: dict[str, Callable[[argparse.Namespace, str], int]] = {
    "exactly_once": exactly_once,
    "batches": batches,
    "chains": chains,
    "fan_out": fan_out,
    "ping_pong": ping_pong,
    "fork_join": fork_join,
    "shutdown_storm": shutdown_storm,
    "wake_during_shutdown": wake_during_shutdown,
}


def run_threads(target: Callable[[int], None], n: int) -> None:
    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000, help="tiny tasks per scenario")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 2, help="workers (default: CPUs)"
    )
    parser.add_argument("--backend", choices=["lockfree", "builtin", "both"], default="both")
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--repeat", type=int, default=1, help="run everything K times")
    parser.add_argument(
        "--watchdog",
        type=float,
        default=900.0,
        help="seconds before the run is declared hung (stacks dumped, exit 1)",
    )
    args = parser.parse_args(argv)
    if args.workers <= 0 or args.tasks <= 0:
        parser.error("--workers and --tasks must be positive")
    names = [n for n in args.only.split(",") if n]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; choose from {list(SCENARIOS)}")
    args.names = names or list(SCENARIOS)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    backends = ["lockfree", "builtin"] if args.backend == "both" else [args.backend]
    build = "free-threaded" if not getattr(sys, "_is_gil_enabled", lambda: True)() else "GIL"
    print(
        f"zuki stress: {sys.version.split()[0]} ({build}), {args.workers} workers, "
        f"{args.tasks:,} tasks, backends {backends}, watchdog {args.watchdog:.0f} s",
        flush=True,
    )
    # The watchdog: one C thread that dumps every stack and exits if we run too long.
    # A stuck stop-the-world pause or a deadlocked Python thread cannot stop it.
    faulthandler.dump_traceback_later(args.watchdog, exit=True)
    start = time.perf_counter()
    tasks = 0
    try:
        for _ in range(args.repeat):
            for backend in backends:
                for name in args.names:
                    t0 = time.perf_counter()
                    n = SCENARIOS[name](args, backend)
                    dt = time.perf_counter() - t0
                    tasks += n
                    print(f"  {name:<22} {backend:<9} {n:>10,} tasks  {dt:7.2f} s", flush=True)
    except Failure as e:
        faulthandler.cancel_dump_traceback_later()
        print(f"stress/runtime.py: FAILED  {e}", flush=True)
        return 2
    faulthandler.cancel_dump_traceback_later()
    elapsed = time.perf_counter() - start
    print(
        f"stress/runtime.py: OK  {len(args.names)} scenarios x {len(backends)} backends"
        f" x {args.repeat}, {args.workers} workers, {tasks:,} tasks, {elapsed:.1f} s",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
