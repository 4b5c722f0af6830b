"""The stress scenarios: each round builds its own executor, runs, checks its invariant.

A scenario's ``run(workers, scale)`` returns how many units it pushed through and raises
``AssertionError`` when its invariant does not hold. Scenarios use only zuki's public API.
Later subsystems (timers, sockets, channels) add their scenarios here when they land;
a scenario whose subsystem is not importable is left out of ``SCENARIOS`` with a note.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass

import zuki


@dataclass(frozen=True)
class Scenario:
    name: str
    unit: str
    doc: str
    body: Callable[[int | None, float], int]

    def run(self, workers: int | None, scale: float) -> int:
        return self.body(workers, scale)


SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str, unit: str) -> Callable[[Callable[[int | None, float], int]], None]:
    def register(body: Callable[[int | None, float], int]) -> None:
        doc = (body.__doc__ or "").strip().splitlines()[0]
        SCENARIOS[name] = Scenario(name, unit, doc, body)

    return register


def _config(workers: int | None) -> zuki.ExecutorConfig:
    return zuki.ExecutorConfig(workers=workers, park_timeout=None)


class Tally:
    """Counts runs per task id; ``check`` asserts each id in ``range(n)`` ran exactly once."""

    def __init__(self, n: int) -> None:
        self.runs = [0] * n
        self._lock = threading.Lock()

    def hit(self, i: int) -> None:
        with self._lock:
            self.runs[i] += 1

    def check(self, what: str) -> None:
        lost = [i for i, r in enumerate(self.runs) if r == 0]
        twice = [i for i, r in enumerate(self.runs) if r > 1]
        assert not lost and not twice, (
            f"{what}: {len(lost)} never ran (first {lost[:5]}), "
            f"{len(twice)} ran more than once (first {twice[:5]})"
        )


@scenario("million_tiny_tasks", "tasks")
def million_tiny_tasks(workers: int | None, scale: float) -> int:
    """1,000,000 tiny callables (scaled) through spawn_batch, each run exactly once."""
    n = int(1_000_000 * scale)
    tally = Tally(n)
    with zuki.WorkStealingExecutor(config=_config(workers)) as ex:
        handles = ex.spawn_batch([_bind(tally.hit, i) for i in range(n)])
        for h in handles[-100:]:
            h.result(timeout=120)
    tally.check("million_tiny_tasks")
    return n


def _bind(fn: Callable[[int], None], i: int) -> Callable[[], None]:
    return lambda: fn(i)


@scenario("spawn_storm", "tasks")
def spawn_storm(workers: int | None, scale: float) -> int:
    """4 outside threads and the tasks themselves spawn 200,000 tasks at once."""
    n_outside = int(25_000 * scale)
    tally = Tally(8 * n_outside)
    ids = itertools.count()
    with zuki.WorkStealingExecutor(config=_config(workers)) as ex:

        def child_spawner() -> None:
            tally.hit(next(ids))
            zuki.spawn(lambda: tally.hit(next(ids)))

        def outside() -> None:
            for _ in range(n_outside):
                ex.spawn(child_spawner)

        threads = [threading.Thread(target=outside) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    tally.check("spawn_storm")
    return 8 * n_outside


@scenario("fork_join", "joins")
def fork_join(workers: int | None, scale: float) -> int:
    """Recursive fib with zuki.join and submit-and-wait from inside tasks (helping)."""

    def fib(n: int) -> int:
        if n < 12:
            return _fib_seq(n)
        a, b = zuki.join(lambda: fib(n - 1), lambda: fib(n - 2))
        return a + b

    n = 20 + round(2 * min(scale, 2.0))
    with zuki.WorkStealingExecutor(config=_config(workers)) as ex:
        got = ex.submit(fib, n).result(timeout=120)
    assert got == _fib_seq(n), f"fib({n}) = {got}"
    return 1


def _fib_seq(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


@scenario("chains", "steps")
def chains(workers: int | None, scale: float) -> int:
    """Spawn chains of 3,000 coroutine steps, each step needing a cross-task wake-up."""
    length = int(3000 * scale)

    async def step(i: int) -> int:
        if i == 0:
            return 0
        return 1 + await zuki.spawn(step(i - 1))

    got = zuki.run(step(length), workers=workers)
    assert got == length, f"chain of {length} returned {got}"
    return length


@scenario("executor_churn", "executors")
def executor_churn(workers: int | None, scale: float) -> int:
    """Create, use and shut down 200 executors; no thread may outlive its executor."""
    n = int(200 * scale)
    for i in range(n):
        with zuki.WorkStealingExecutor(config=_config(workers)) as ex:
            assert ex.submit(pow, i, 2).result(timeout=30) == i * i
    return n


@scenario("idle_exit_churn", "tasks")
def idle_exit_churn(workers: int | None, scale: float) -> int:
    """Bursts of tasks between pauses longer than a 1 ms keep-alive: idle threads exit
    and restart all the time, and every task still runs exactly once."""
    bursts = max(1, int(300 * scale))
    per_burst = 64
    tally = Tally(bursts * per_burst)
    config = zuki.ExecutorConfig(workers=workers, park_timeout=None, keep_alive=0.001)
    with zuki.WorkStealingExecutor(config=config) as ex:

        def fan_out(base: int) -> None:
            # half the burst spawned from a worker: the local path restarts slots too
            for j in range(per_burst // 2):
                zuki.spawn(_bind(tally.hit, base + j))

        pause = threading.Event()
        for b in range(bursts):
            base = b * per_burst
            handles = [
                ex.spawn(_bind(tally.hit, base + per_burst // 2 + i)) for i in range(per_burst // 2)
            ]
            handles.append(ex.spawn(lambda base=base: fan_out(base)))
            for h in handles:
                h.result(timeout=60)
            if b % 4 == 0:
                pause.wait(0.003)
    # shutdown(wait=True) ran the fan-out children too
    retired = ex.metrics().threads_retired
    tally.check("idle_exit_churn")
    assert retired > 0 or config.worker_count == 1, "no thread ever retired: nothing was tested"
    return len(tally.runs)


@scenario("shutdown_midway", "tasks")
def shutdown_midway(workers: int | None, scale: float) -> int:
    """Shut down during a spawn storm: every accepted task runs once or reports cancelled."""
    n = int(50_000 * scale)
    tally = Tally(n)
    ex = zuki.WorkStealingExecutor(config=_config(workers))
    accepted: list[zuki.JoinHandle[None]] = []
    stop = threading.Event()

    def storm() -> None:
        for i in range(n):
            if stop.is_set():
                return
            try:
                accepted.append(ex.spawn(_bind(tally.hit, i)))
            except zuki.ExecutorShutdownError:
                return

    t = threading.Thread(target=storm)
    t.start()
    while len(accepted) < n // 4 and t.is_alive():
        threading.Event().wait(0.001)
    cancel = bool(len(accepted) % 2)
    ex.shutdown(wait=True, cancel_futures=cancel)
    stop.set()
    t.join()
    for h in accepted:
        assert h.done(), "a handle accepted before shutdown is still pending after it"
    ran = sum(tally.runs)
    cancelled = sum(1 for h in accepted if h.cancelled())
    assert max(tally.runs, default=0) <= 1, "a task ran twice"
    assert ran + cancelled == len(accepted), (
        f"{len(accepted)} accepted, {ran} ran, {cancelled} cancelled: some were lost"
    )
    return len(accepted)


@scenario("timer_churn", "timers")
def timer_churn(workers: int | None, scale: float) -> int:
    """100,000 timers (scaled) created and cancelled from tasks; 1,000 left to fire in order."""
    n = int(100_000 * scale)
    fired: list[int] = []
    lock = threading.Lock()

    async def sleeper(i: int) -> None:
        await zuki.sleep(0.001 * (i % 20))
        with lock:
            fired.append(i)

    async def main() -> int:
        cancelled = 0
        handles = [zuki.spawn(zuki.sleep(30)) for _ in range(n)]
        for h in handles:
            cancelled += h.cancel()
        for h in handles:
            with contextlib.suppress(zuki.Cancelled):
                await h
        keep = [zuki.spawn(sleeper(i)) for i in range(1000)]
        for h in keep:
            await h
        return cancelled

    cancelled = zuki.run(main(), workers=workers)
    assert sorted(fired) == list(range(1000)), f"{1000 - len(set(fired))} timers never fired"
    assert cancelled <= n
    return n


@scenario("mixed", "messages")
def mixed(workers: int | None, scale: float) -> int:
    """Tasks, a bounded channel, timers and an outside thread at once; every message once."""
    n = int(20_000 * scale)
    seen = Tally(2 * n)

    async def producer(ch: zuki.Channel[int], base: int) -> None:
        for i in range(base, base + n // 2):
            await ch.send(i)
            if i % 500 == 0:
                await zuki.sleep(0.0005)

    async def consumer(ch: zuki.Channel[int]) -> None:
        async for i in ch:
            seen.hit(i)

    async def main() -> None:
        ch: zuki.Channel[int] = zuki.Channel(64)

        def outside() -> None:
            for i in range(n, 2 * n):
                ch.send_blocking(i, timeout=60)

        t = threading.Thread(target=outside)
        t.start()
        producers = [zuki.spawn(producer(ch, k * (n // 2))) for k in range(2)]
        consumers = [zuki.spawn(consumer(ch)) for _ in range(3)]
        for p in producers:
            await p
        while t.is_alive():
            await zuki.sleep(0.005)
        ch.close()
        for c in consumers:
            await c

    zuki.run(main(), workers=workers)
    seen.check("mixed")
    return 2 * n


@scenario("net_echo", "connections")
def net_echo(workers: int | None, scale: float) -> int:
    """10,000 concurrent TCP connections + 10,000 connect/disconnect cycles (scaled)."""
    from stress.net import run_scenario
    from zuki.runtime.reactor import default_reactor

    n, total = max(100, int(10_000 * scale)), 0
    backend = default_reactor().backend
    for mode in ("concurrent", "churn"):
        result = run_scenario(mode, n, messages=3, workers=workers or 2, backend=backend, limit=600)
        total += int(result.get("connections", 0))
    return total
