"""Runtime stress tests with a count invariant (exactly once) and a hang guard.

Designed to run both alone and under pytest-run-parallel (``--parallel-threads=2``), where
several copies of each test body run at once: every copy builds its own executor, keeps its
own counters, and shares nothing with the others. All executors use ``park_timeout=None``,
so a lost wake-up hangs, and ``hang_guard`` then dumps every stack and fails the run.

The sizes here are the suite's; ``stress/runtime.py`` runs the big versions.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

import pytest
from helpers import (
    EXECUTOR_SPECS,
    WAIT,
    WS_SPECS,
    Counter,
    ExecutorSpec,
    Gate,
    guarded,
    hang_dump_fd,  # noqa: F401  (autouse fixture: hang dumps reach the real stderr)
    spec_params,
    wait_until,
)

import zuki

pytestmark = pytest.mark.stress

HANG = 90


@pytest.fixture(params=spec_params(EXECUTOR_SPECS))
def spec(request: pytest.FixtureRequest) -> ExecutorSpec:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=spec_params(WS_SPECS))
def ws_spec(request: pytest.FixtureRequest) -> ExecutorSpec:
    return request.param  # type: ignore[no-any-return]


class Tally:
    """Records which task ids ran; ``check(n)`` asserts ids 0..n-1 each ran exactly once.

    ``list.append`` is atomic on both builds (a per-object lock on 3.13t), so recording
    costs no lock of our own and cannot serialize the workers more than the runtime does.
    """

    def __init__(self) -> None:
        self.ran: list[int] = []

    def hit(self, task_id: int) -> None:
        self.ran.append(task_id)

    def check(self, n: int) -> None:
        ran = sorted(self.ran)
        if ran != list(range(n)):
            counts = collections.Counter(ran)
            missing = [i for i in range(n) if i not in counts][:10]
            dupes = sorted(i for i, c in counts.items() if c > 1)[:10]
            pytest.fail(
                f"{len(ran)} runs for {n} tasks; missing (first 10): {missing}; "
                f"run twice (first 10): {dupes}"
            )


# --------------------------------------------------------------------------------------
# exactly once, from inside and outside
# --------------------------------------------------------------------------------------

TOTAL = 20_000
PRODUCERS = 4


@guarded(HANG)
def test_tiny_tasks_from_inside_and_outside_run_exactly_once(spec: ExecutorSpec) -> None:
    """4 outside threads spawn parents; each parent spawns one child from inside its task.
    Every parent and every child runs exactly once."""
    tally = Tally()
    per_producer = TOTAL // PRODUCERS // 2  # parents per producer; children double it
    n_parents = per_producer * PRODUCERS

    def child(task_id: int) -> None:
        tally.hit(task_id)

    def parent(task_id: int) -> None:
        tally.hit(task_id)
        zuki.spawn(lambda: child(task_id + n_parents))

    with spec.make() as ex:
        start = threading.Barrier(PRODUCERS)

        def producer(p: int) -> None:
            start.wait()
            base = p * per_producer
            for i in range(base, base + per_producer):
                ex.spawn(lambda i=i: parent(i))

        threads = [threading.Thread(target=producer, args=(p,)) for p in range(PRODUCERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    # Leaving the block waited for every task, including children spawned while draining.
    tally.check(2 * n_parents)


@guarded(HANG)
def test_batches_from_outside_threads_run_exactly_once(spec: ExecutorSpec) -> None:
    tally = Tally()
    per_batch = 500
    batches_per_producer = TOTAL // PRODUCERS // per_batch

    with spec.make() as ex:
        handles: list[list[Any]] = [[] for _ in range(PRODUCERS)]

        def producer(p: int) -> None:
            for b in range(batches_per_producer):
                base = (p * batches_per_producer + b) * per_batch
                batch = zuki.TaskBatch()
                batch.extend(lambda i=i: tally.hit(i) for i in range(base, base + per_batch))
                handles[p].extend(ex.spawn_batch(batch))

        threads = [threading.Thread(target=producer, args=(p,)) for p in range(PRODUCERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for hs in handles:
            for h in hs:
                h.result(timeout=WAIT)
    tally.check(PRODUCERS * batches_per_producer * per_batch)


# --------------------------------------------------------------------------------------
# chains: every step needs a wake-up
# --------------------------------------------------------------------------------------

CHAIN = 3_000


@guarded(HANG)
def test_spawn_chain_inside_the_pool(spec: ExecutorSpec) -> None:
    """Each step spawns the next from inside; only one task is ever runnable."""
    tally = Tally()
    finished = threading.Event()

    def step(i: int) -> None:
        tally.hit(i)
        if i + 1 < CHAIN:
            zuki.spawn(lambda: step(i + 1))
        else:
            finished.set()

    with spec.make() as ex:
        ex.spawn(lambda: step(0))
        assert finished.wait(WAIT)
    tally.check(CHAIN)


@guarded(HANG)
def test_spawn_chain_through_an_outside_thread(spec: ExecutorSpec) -> None:
    """An outside thread spawns each step only after the previous one finished, so the
    pool goes idle between steps and every spawn has to wake a parked worker."""
    tally = Tally()
    with spec.make() as ex:
        for i in range(CHAIN):
            ex.spawn(lambda i=i: tally.hit(i)).result(timeout=WAIT)
    tally.check(CHAIN)


@guarded(HANG)
def test_wake_chain_from_a_foreign_thread(spec: ExecutorSpec) -> None:
    """A coroutine suspends on a fresh gate each step; a thread zuki does not own wakes it."""
    steps = CHAIN // 3
    gates = [Gate() for _ in range(steps)]

    async def walker() -> int:
        total = 0
        for g in gates:
            total += await g
        return total

    with spec.make() as ex:
        handle = ex.spawn(walker())
        for i, g in enumerate(gates):
            assert g.polled.wait(WAIT), f"step {i} never suspended"
            g.open(1)
        assert handle.result(timeout=WAIT) == steps


# --------------------------------------------------------------------------------------
# overflow and stealing
# --------------------------------------------------------------------------------------

CHILDREN = 10_000


@guarded(HANG)
def test_one_task_spawning_10000_children(spec: ExecutorSpec) -> None:
    tally = Tally()

    def work(i: int) -> None:
        x = 0
        for k in range(50):
            x += k
        tally.hit(i)

    async def parent() -> int:
        handles = [zuki.spawn(lambda i=i: work(i)) for i in range(CHILDREN)]
        for h in handles:
            await h
        return len(handles)

    with spec.make() as ex:
        assert ex.block_on(parent()) == CHILDREN
        snapshot = ex.metrics()
    tally.check(CHILDREN)
    assert snapshot.tasks_polled >= CHILDREN


# --------------------------------------------------------------------------------------
# LIFO ping-pong must not starve a third task
# --------------------------------------------------------------------------------------


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


MAX_ROUNDS = 200_000


# LIFO fairness is a per-worker property: with more workers, another one would simply run
# the third task. So these run on the one-thread variants only.
ONE_THREAD = spec_params([s for s in EXECUTOR_SPECS if not s.parallel])


@guarded(HANG)
@pytest.mark.parametrize("spec", ONE_THREAD)
def test_lifo_ping_pong_does_not_starve_a_third_task(spec: ExecutorSpec) -> None:
    stop = threading.Event()
    rounds = [0]

    async def player(mine: Signal, other: Signal) -> None:
        while not stop.is_set() and rounds[0] < MAX_ROUNDS:
            await mine
            rounds[0] += 1
            other.notify()
        other.notify()  # let the partner see the stop flag too

    def third() -> None:
        stop.set()

    with spec.make() as ex:
        a, b = Signal(), Signal()
        pa = ex.spawn(player(a, b))
        pb = ex.spawn(player(b, a))
        a.notify()
        time.sleep(0.01)  # the ping-pong is running
        ex.spawn(third).result(timeout=WAIT)
        pa.result(timeout=WAIT)
        pb.result(timeout=WAIT)
    assert rounds[0] < MAX_ROUNDS, "the third task starved behind the ping-pong"


@guarded(HANG)
@pytest.mark.parametrize("spec", ONE_THREAD)
def test_lifo_ping_pong_spawned_from_inside(spec: ExecutorSpec) -> None:
    """Same, with the third task spawned locally (LIFO slot contention) by a player."""
    stop = threading.Event()
    rounds = [0]

    async def player(mine: Signal, other: Signal, spawn_third: bool) -> None:
        turns = 0
        while not stop.is_set() and rounds[0] < MAX_ROUNDS:
            await mine
            rounds[0] += 1
            turns += 1
            if spawn_third and turns == 10:
                zuki.spawn(stop.set)
            other.notify()
        other.notify()

    with spec.make() as ex:
        a, b = Signal(), Signal()
        handles = [ex.spawn(player(a, b, True)), ex.spawn(player(b, a, False))]
        a.notify()
        for h in handles:
            h.result(timeout=WAIT)
    assert rounds[0] < MAX_ROUNDS, "the spawned task starved behind the ping-pong"


# --------------------------------------------------------------------------------------
# fork-join with helping
# --------------------------------------------------------------------------------------


def fib_seq(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


@guarded(HANG)
@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("backend", ["lockfree", "builtin"])
def test_nested_submit_and_wait_never_deadlocks(workers: int, backend: str) -> None:
    spec = ExecutorSpec("ws", workers, backend)

    with spec.make() as ex:

        def fib(n: int) -> int:
            if n < 8:
                return fib_seq(n)
            left = ex.submit(fib, n - 1)
            right = ex.submit(fib, n - 2)
            return left.result() + right.result()  # waits inside a worker: must help

        assert ex.submit(fib, 16).result(timeout=WAIT) == fib_seq(16)


@guarded(HANG)
@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("backend", ["lockfree", "builtin"])
def test_fork_join_fib_with_join(workers: int, backend: str) -> None:
    spec = ExecutorSpec("ws", workers, backend)

    def fib(n: int) -> int:
        if n < 10:
            return fib_seq(n)
        a, b = zuki.join(lambda: fib(n - 1), lambda: fib(n - 2))
        return a + b

    with spec.make() as ex:
        assert ex.submit(fib, 20).result(timeout=WAIT) == fib_seq(20)


@guarded(HANG)
def test_coroutines_awaiting_spawned_children_recursively(spec: ExecutorSpec) -> None:
    async def fib(n: int) -> int:
        if n < 2:
            return n
        left = zuki.spawn(fib(n - 1))
        right = await fib(n - 2)
        return await left + right

    with spec.make() as ex:
        assert ex.block_on(fib(14)) == fib_seq(14)


# --------------------------------------------------------------------------------------
# shutdown during a spawn storm; wake during shutdown
# --------------------------------------------------------------------------------------


@guarded(HANG)
@pytest.mark.parametrize("cancel", [False, True], ids=["wait", "cancel_futures"])
def test_shutdown_during_a_spawn_storm(spec: ExecutorSpec, cancel: bool) -> None:
    accepted: list[list[Any]] = [[] for _ in range(PRODUCERS)]
    children: list[Any] = []
    tally = Tally()
    ids = Counter()
    inner_refused = Counter()
    running = threading.Barrier(PRODUCERS + 1)

    def leaf(task_id: int) -> None:
        tally.hit(task_id)

    def parent(task_id: int, child_id: int) -> None:
        tally.hit(task_id)
        try:
            children.append(zuki.spawn(lambda: leaf(child_id)))
        except zuki.ExecutorShutdownError:
            tally.hit(child_id)  # never accepted: account for it here
            inner_refused.add()

    ex = spec.make()

    def producer(p: int) -> None:
        running.wait()
        while True:
            with ids._lock:
                base = ids.value
                ids.value += 2
            try:
                handle = ex.spawn(lambda b=base: parent(b, b + 1))
            except zuki.ExecutorShutdownError:
                tally.hit(base)  # refused: neither id will run
                tally.hit(base + 1)
                return
            accepted[p].append(handle)

    threads = [threading.Thread(target=producer, args=(p,)) for p in range(PRODUCERS)]
    for t in threads:
        t.start()
    running.wait()
    wait_until(lambda: sum(map(len, accepted)) >= 500, what="the storm to start")
    ex.shutdown(wait=True, cancel_futures=cancel)
    for t in threads:
        t.join(WAIT)
        assert not t.is_alive()

    parents = [h for hs in accepted for h in hs]
    assert parents, "nothing was spawned before shutdown"
    for h in parents + children:
        assert h.done(), "shutdown returned with a task still pending"
    if not cancel:
        assert not any(h.cancelled() for h in parents + children)
        tally.check(ids.value)
    else:
        # A cancelled task never ran; every other id was accounted for exactly once. A
        # cancelled parent also never created its child's id.
        ran = tally.ran
        assert len(ran) == len(set(ran)), "a task ran twice"
        cancelled_parents = sum(h.cancelled() for h in parents)
        cancelled_children = sum(h.cancelled() for h in children)
        assert len(ran) + 2 * cancelled_parents + cancelled_children == ids.value


@guarded(HANG)
@pytest.mark.parametrize("cancel", [False, True], ids=["wait", "cancel_futures"])
def test_wake_during_shutdown(spec: ExecutorSpec, cancel: bool) -> None:
    gates = [Gate() for _ in range(300)]
    ex = spec.make()
    handles = [ex.spawn(g) for g in gates]
    for g in gates:
        assert g.polled.wait(WAIT)
    wakers_done = threading.Event()

    def waker_thread() -> None:
        for i, g in enumerate(gates):
            g.open(i)
            # Wake the same task again through a stale clone: must be a no-op.
            g.waker.clone().wake()
        wakers_done.set()

    t = threading.Thread(target=waker_thread)
    t.start()
    ex.shutdown(wait=True, cancel_futures=cancel)
    t.join(WAIT)
    assert wakers_done.is_set()
    for i, h in enumerate(handles):
        assert h.done()
        if not h.cancelled():
            assert h.result() == i
    if not cancel:
        # Without cancel_futures the opened gates complete their tasks (a wake that lands
        # after the pool stopped may leave a task cancelled, never pending).
        assert sum(not h.cancelled() for h in handles) >= 1
