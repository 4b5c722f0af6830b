"""zuki.sleep / sleep_until / timeout / timeout_at and the reactor's timers, in real time.

The wheel's logic is tested on virtual time in test_timer_wheel.py; here the clock is
real, so bounds are one-sided where they can be (never early) and generous where the
machine decides (how late). Every test bounds its own waits and has a hang guard.
"""

from __future__ import annotations

import gc
import math
import sys
import threading
import time
import tracemalloc
from typing import Any

import pytest
from helpers import (
    EXECUTOR_SPECS,
    ExecutorSpec,
    Gate,
    guarded,
    hang_dump_fd,  # noqa: F401  (autouse fixture: hang dumps reach the real stderr)
    spec_params,
    wait_until,
)

import zuki
from zuki.runtime.reactor import Reactor, default_reactor
from zuki.runtime.timers import Sleep, Timeout, sleep, sleep_until, timeout, timeout_at

# A subset of the executor variants: timing tests are slow, and the variants differ in
# queues, not in how a timer wakes a task.
SPECS = [
    s for s in EXECUTOR_SPECS if s.id in ("single", "ws1-builtin", "ws2-lockfree", "ws4-builtin")
]


@pytest.fixture(params=spec_params(SPECS))
def spec(request: pytest.FixtureRequest) -> ExecutorSpec:
    return request.param  # type: ignore[no-any-return]


def run_on(spec: ExecutorSpec, coro: Any) -> Any:
    ex = spec.make()
    try:
        return ex.block_on(coro)
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


# --------------------------------------------------------------------------------------
# sleep
# --------------------------------------------------------------------------------------


@guarded()
def test_sleep_never_wakes_early(spec: ExecutorSpec) -> None:
    async def main() -> list[float]:
        slept = []
        for delay in (0.001, 0.004, 0.012, 0.03):
            start = time.monotonic()
            await sleep(delay)
            slept.append(time.monotonic() - start - delay)
        return slept

    overshoot = run_on(spec, main())
    assert min(overshoot) >= 0.0, overshoot
    assert max(overshoot) < 5.0, overshoot


@guarded()
def test_sleep_until_wakes_at_the_deadline_or_after() -> None:
    async def main() -> float:
        deadline = time.monotonic() + 0.02
        await sleep_until(deadline)
        return time.monotonic() - deadline

    late = zuki.run(main(), workers=2)
    assert 0.0 <= late < 5.0


@guarded()
def test_timers_fire_in_deadline_order() -> None:
    order: list[int] = []
    lock = threading.Lock()

    async def sleeper(i: int, deadline: float) -> None:
        await sleep_until(deadline)
        assert time.monotonic() >= deadline
        with lock:
            order.append(i)

    async def main() -> None:
        base = time.monotonic() + 0.05
        # spawned in shuffled order, 3 ms apart
        indices = [7, 2, 9, 0, 4, 1, 8, 3, 6, 5]
        handles = [zuki.spawn(sleeper(i, base + 0.003 * i)) for i in indices]
        for h in handles:
            await h

    zuki.run(main(), workers=1)
    assert order == sorted(order)


@guarded()
def test_sleep_zero_yields_to_other_tasks() -> None:
    assert not isinstance(sleep(0), Sleep)  # no timer: it is zuki.yield_now()
    trace: list[str] = []

    async def ping(name: str) -> None:
        for _ in range(3):
            trace.append(name)
            await sleep(0)

    async def main() -> None:
        a = zuki.spawn(ping("a"))
        b = zuki.spawn(ping("b"))
        await a
        await b

    ex = zuki.SingleThreadedExecutor()
    try:
        ex.block_on(main())
    finally:
        ex.shutdown()
    assert trace == ["a", "b", "a", "b", "a", "b"]


def test_sleep_rejects_nan_and_a_past_deadline_only_yields() -> None:
    with pytest.raises(ValueError, match="NaN"):
        sleep(math.nan)
    with pytest.raises(ValueError, match="NaN"):
        sleep_until(math.nan)
    with pytest.raises(ValueError, match="NaN"):
        timeout(math.nan)
    assert not isinstance(sleep_until(time.monotonic() - 1.0), Sleep)
    assert not isinstance(sleep(-5), Sleep)


@guarded()
def test_cancelling_a_sleeping_task_removes_its_timer(spec: ExecutorSpec) -> None:
    reactor = default_reactor()

    async def main() -> None:
        before = reactor.pending_timers()
        sleepers = [zuki.spawn(_sleep_forever()) for _ in range(50)]
        bare = [zuki.spawn(sleep(3600)) for _ in range(10)]  # Sleep futures as tasks
        limit = time.monotonic() + 10.0
        while reactor.pending_timers() < before + 60 and time.monotonic() < limit:
            await sleep(0.005)
        assert reactor.pending_timers() >= before + 60
        for h in [*sleepers, *bare]:
            h.cancel()
        for h in [*sleepers, *bare]:
            with pytest.raises(zuki.Cancelled):
                await h
        del h
        assert reactor.pending_timers() <= before + len(bare)  # coroutines: at once
        bare.clear()
        gc.collect()

    run_on(spec, main())
    wait_until(lambda: default_reactor().pending_timers() == 0, 10.0, "timers to go")


async def _sleep_forever() -> None:
    await sleep(math.inf)


# --------------------------------------------------------------------------------------
# timeout
# --------------------------------------------------------------------------------------


@guarded()
def test_timeout_cancels_the_body_and_raises_timeout_error(spec: ExecutorSpec) -> None:
    reached: list[str] = []

    async def main() -> tuple[float, Timeout]:
        start = time.monotonic()
        scope = timeout(0.05)
        with pytest.raises(TimeoutError) as info:
            async with scope:
                try:
                    await sleep(30)
                except zuki.Cancelled:
                    reached.append("cancelled")
                    raise
                reached.append("not reached")
        assert isinstance(info.value.__cause__, zuki.Cancelled)
        return time.monotonic() - start, scope

    elapsed, scope = run_on(spec, main())
    assert reached == ["cancelled"]
    assert scope.expired
    assert 0.05 <= elapsed < 10.0


@guarded()
def test_timeout_that_does_not_expire_leaves_nothing_behind(spec: ExecutorSpec) -> None:
    reactor = default_reactor()

    async def main() -> tuple[int, int, bool]:
        before = reactor.pending_timers()
        async with timeout(30) as scope:
            await sleep(0.001)
        after = reactor.pending_timers()
        await sleep(0.005)  # no stray cancellation lands on the next await
        return before, after, scope.expired

    before, after, expired = run_on(spec, main())
    assert not expired
    assert after <= before


@guarded()
def test_timeout_interrupts_a_wait_on_a_join_handle_and_a_foreign_future() -> None:
    gate = Gate()

    async def main() -> None:
        child = zuki.spawn(sleep(30))
        with pytest.raises(TimeoutError):
            async with timeout(0.02):
                await child
        assert not child.done()  # only the waiting task was cancelled
        child.cancel()
        with pytest.raises(TimeoutError):
            async with timeout_at(time.monotonic() + 0.02):
                await gate

    zuki.run(main(), workers=2)


@guarded()
def test_a_body_that_swallows_the_cancellation_ends_normally() -> None:
    async def main() -> list[str]:
        trace = []
        async with timeout(0.02) as scope:
            try:
                await sleep(30)
            except zuki.Cancelled:
                trace.append("swallowed")
        trace.append(f"expired={scope.expired}")
        await sleep(0.005)  # must not be cancelled
        trace.append("after")
        return trace

    assert zuki.run(main(), workers=2) == ["swallowed", "expired=True", "after"]


@guarded()
def test_a_deadline_that_fires_as_the_body_ends_never_leaks_a_cancellation() -> None:
    async def main() -> tuple[int, int]:
        fired = 0
        for _ in range(200):
            async with timeout(0.0005) as scope:
                spin_until = time.monotonic() + 0.0005
                while time.monotonic() < spin_until:
                    pass  # no await: the deadline lands while the body runs
            fired += scope.expired
            await sleep(0.0002)  # a leaked request would raise Cancelled here
        return fired, 200

    fired, total = zuki.run(main(), workers=2)
    assert fired <= total


@guarded()
def test_nested_timeouts_inner_fires_first_outer_later() -> None:
    async def main() -> list[str]:
        trace = []
        with pytest.raises(TimeoutError):
            async with timeout(0.15) as outer:
                try:
                    async with timeout(0.02) as inner:
                        await sleep(30)
                except TimeoutError:
                    trace.append(f"inner expired={inner.expired}")
                trace.append(f"outer expired={outer.expired}")
                await sleep(30)
        trace.append(f"outer expired={outer.expired}")
        return trace

    assert zuki.run(main(), workers=2) == [
        "inner expired=True",
        "outer expired=False",
        "outer expired=True",
    ]


@guarded()
def test_timeout_with_a_past_deadline_cancels_at_the_first_await() -> None:
    async def main() -> None:
        with pytest.raises(TimeoutError):
            async with timeout(-1):
                await sleep(30)
        async with timeout(math.inf) as scope:
            await sleep(0.001)
        assert not scope.expired

    zuki.run(main(), workers=1)


def test_timeout_outside_a_zuki_task_is_refused() -> None:
    class NoTask:
        def wake(self) -> None:
            pass

    coro = timeout(1).__aenter__()
    future = zuki.Future.from_coroutine(coro)
    with pytest.raises(RuntimeError, match="inside a task"):
        future.poll(zuki.Context(zuki.Waker(NoTask())))


@guarded()
def test_a_scope_is_entered_once() -> None:
    async def main() -> None:
        scope = timeout(1)
        async with scope:
            pass
        with pytest.raises(RuntimeError, match="only once"):
            async with scope:
                pass

    zuki.run(main(), workers=1)


# --------------------------------------------------------------------------------------
# many timers, no leak
# --------------------------------------------------------------------------------------


@guarded(120)
def test_100k_timers_created_and_cancelled_at_high_frequency_leak_nothing() -> None:
    reactor = default_reactor()

    async def scopes(n: int) -> None:
        for _ in range(n):
            async with timeout(10):
                pass

    async def sleepers(rounds: int, per_round: int) -> None:
        for _ in range(rounds):
            handles = [zuki.spawn(sleep(60)) for _ in range(per_round)]
            await sleep(0)
            for h in handles:
                h.cancel()
            for h in handles:
                with pytest.raises(zuki.Cancelled):
                    await h

    async def settle(base: int) -> None:
        # timers of sleeps spawned as bare tasks are discarded by the driver, shortly
        limit = time.monotonic() + 10.0
        while reactor.pending_timers() > base and time.monotonic() < limit:
            await sleep(0.001)
        gc.collect()

    async def workload() -> None:
        # 40,000 timeout scopes in 4 tasks at once, and 10,000 sleeping tasks cancelled
        scope_tasks = [zuki.spawn(scopes(10_000)) for _ in range(4)]
        await sleepers(10, 1000)
        for t in scope_tasks:
            await t

    async def main() -> tuple[int, int, int]:
        base = reactor.pending_timers()
        await workload()  # warm-up: tables and free lists reach their working size
        await settle(base)
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(2):  # 100,000 more timers
                await workload()
            await settle(base)
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        return base, reactor.pending_timers(), grown

    base, after, grown = zuki.run(main(), workers=2)
    assert after <= base
    # A timer that stayed behind would hold its handle, waker and task: several hundred
    # bytes, 30+ MB for 100,000. The bound leaves room for what 3.13t frees late: an
    # object released by a thread other than its creator's waits in the creator's
    # biased-refcount queue until that thread runs again (a parked worker does not).
    assert grown < 2_000_000, f"{grown} bytes retained after 100,000 timers"


# --------------------------------------------------------------------------------------
# the reactor's timers, without an executor
# --------------------------------------------------------------------------------------


class EventWaker:
    def __init__(self) -> None:
        self.event = threading.Event()
        self.at = 0.0

    def wake(self) -> None:
        self.at = time.monotonic()
        self.event.set()


@pytest.mark.parametrize("backend", ["epoll", "selectors"])
@guarded()
def test_an_earlier_timer_interrupts_a_driver_sleeping_on_a_later_one(backend: str) -> None:
    reactor = Reactor(backend=backend, name=f"test-reactor-{backend}")
    try:
        late, early = EventWaker(), EventWaker()
        reactor.add_timer(time.monotonic() + 30.0, late)
        time.sleep(0.01)  # the driver now sleeps until +30 s
        deadline = time.monotonic() + 0.02
        reactor.add_timer(deadline, early)
        assert early.event.wait(10.0)
        assert early.at >= deadline
        assert not late.event.is_set()
        assert reactor.pending_timers() == 1
    finally:
        reactor.close()


@guarded()
def test_a_waker_that_raises_does_not_stop_the_driver(caplog: pytest.LogCaptureFixture) -> None:
    class Boom:
        def wake(self) -> None:
            raise RuntimeError("waker failed")

    reactor = Reactor(name="test-reactor-boom")
    try:
        reactor.add_timer(time.monotonic() + 0.001, Boom())
        ok = EventWaker()
        reactor.add_timer(time.monotonic() + 0.01, ok)
        assert ok.event.wait(10.0)
    finally:
        reactor.close()
    assert "waker failed" in caplog.text


def test_sleep_has_no_finalizer() -> None:
    """On 3.13t the finalizers of objects released by another thread run nested (one
    frame each): 20,000 cancelled ``spawn(sleep(30))`` tasks overflowed the recursion
    limit in ``Sleep.__del__``. Timers are released through ``Future.drop`` instead."""
    assert "__del__" not in vars(Sleep)


@guarded()
def test_many_cancelled_sleep_tasks_release_their_timers_at_once_and_quietly() -> None:
    """The shape that overflowed: sleeps spawned as tasks of their own, cancelled and
    awaited. ``drop()`` takes each timer out synchronously; nothing is reported as
    unraisable (a finalizer failing)."""
    reactor = default_reactor()
    unraisable: list[Any] = []
    previous_hook = sys.unraisablehook
    sys.unraisablehook = unraisable.append

    async def main() -> tuple[int, int]:
        before = reactor.pending_timers()
        handles = [zuki.spawn(sleep(30)) for _ in range(20_000)]
        limit = time.monotonic() + 20.0
        while reactor.pending_timers() - before < 19_900 and time.monotonic() < limit:
            await sleep(0.005)  # until (nearly) every sleep was polled once and armed
        armed = reactor.pending_timers() - before
        for h in handles:
            h.cancel()
        for h in handles:
            with pytest.raises(zuki.Cancelled):
                await h
        return armed, reactor.pending_timers() - before

    try:
        armed, left = zuki.run(main(), workers=2)
        gc.collect()
    finally:
        sys.unraisablehook = previous_hook
    # (timers of earlier tests may fire meanwhile: the counts are relative)
    assert armed >= 19_900, f"only {armed} of the 20,000 sleeps were armed: nothing tested"
    assert left <= 0, f"{left} timers left behind by cancelled sleep tasks"
    assert not unraisable, unraisable[:3]


def test_drop_of_a_polled_sleep_cancels_its_timer_and_is_idempotent() -> None:
    class Waker:
        woken = 0

        def wake(self) -> None:
            Waker.woken += 1

    reactor = Reactor(name="test-reactor-drop")
    try:
        future = Sleep(reactor.clock() + 0.02, reactor)
        future.drop()  # never polled: nothing to release
        future._handle = handle = reactor.add_timer(future.deadline, Waker())
        assert handle.pending
        future.drop()
        assert not handle.pending
        future.drop()
        time.sleep(0.05)
        assert Waker.woken == 0
    finally:
        reactor.close()


class DriverlessReactor(Reactor):
    """A reactor whose driver thread never starts: only workers can fire its timers."""

    def _start(self) -> None:
        pass


@guarded()
@pytest.mark.thread_unsafe(reason="swaps the process-wide default reactor")
@pytest.mark.parametrize("workers", [1, 2])
def test_busy_workers_fire_due_timers_themselves(workers: int) -> None:
    """Every worker runs a task that never parks (it yields between slices): the timers
    must still fire, from the workers' own loops, on time give or take a few slices."""
    from zuki.runtime.reactor import using_reactor

    reactor = DriverlessReactor(name="test-reactor-driverless")
    done = threading.Event()
    late: list[float] = []
    fired_on: set[str] = set()

    async def spin() -> None:
        while not done.is_set():
            end = time.perf_counter() + 0.0001
            while time.perf_counter() < end:
                pass
            await zuki.yield_now()

    async def sleeper(deadline: float) -> None:
        await sleep_until(deadline)
        late.append(time.monotonic() - deadline)
        fired_on.add(threading.current_thread().name)

    async def main() -> None:
        spinners = [zuki.spawn(spin()) for _ in range(workers)]
        base = time.monotonic() + 0.05
        sleepers = [zuki.spawn(sleeper(base + i * 0.01)) for i in range(20)]
        try:
            for s in sleepers:
                await s
        finally:
            done.set()
        for s in spinners:
            await s

    try:
        with using_reactor(reactor):
            config = zuki.ExecutorConfig(workers=workers, park_timeout=None)
            with zuki.WorkStealingExecutor(config=config) as ex:
                ex.block_on(main())
    finally:
        reactor.close()
    assert len(late) == 20, "a timer never fired: nothing but the workers could fire it"
    assert all(name.startswith("zuki-worker") for name in fired_on), fired_on
    assert max(late) < 1.0, f"timers fired up to {max(late) * 1e3:.0f} ms late"


@guarded()
@pytest.mark.thread_unsafe(reason="swaps the process-wide default reactor")
def test_a_raising_waker_fired_by_a_worker_is_logged_and_the_worker_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from zuki.runtime.reactor import using_reactor

    class Boom:
        def wake(self) -> None:
            raise RuntimeError("waker failed on a worker")

    reactor = DriverlessReactor(name="test-reactor-driverless-boom")

    async def main() -> int:
        reactor.add_timer(time.monotonic(), Boom())
        await zuki.sleep(0.02)  # fired by this worker after Boom's timer
        return 7

    try:
        with using_reactor(reactor):
            config = zuki.ExecutorConfig(workers=1, park_timeout=None)
            with zuki.WorkStealingExecutor(config=config) as ex:
                handle = ex.spawn(main())
                # keep the worker busy so that it runs its loop (it parks when idle)
                while not handle.done():
                    ex.submit(time.sleep, 0.001).result(timeout=30.0)
                assert handle.result(timeout=30.0) == 7
    finally:
        reactor.close()
    assert "waker failed on a worker" in caplog.text
