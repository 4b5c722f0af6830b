"""Tests of zuki.runtime.blocks: TaskGroup strategies, timeouts, parallel_map, stream.

Retry backoff and the block timeouts run on virtual time: the block is given the
``sleep`` of a :class:`VirtualClock`, whose time moves only when the test says so (or,
for the "instant" clock, by exactly the requested delay at every sleep). One small test
uses real time to check the default ``zuki.sleep`` wiring.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest
from helpers import (
    guarded,
    hang_dump_fd,  # noqa: F401  (autouse fixture: hang dumps reach the real stderr)
    run,
    until,
)

import zuki
from zuki.runtime.blocks import (
    AtomicInt,
    Backoff,
    TaskGroup,
    parallel_map,
    stream,
)
from zuki.runtime.sync import ChannelClosed, Event, Oneshot

HANG = 60.0


class VirtualClock:
    """Virtual time for a block's ``sleep``.

    ``instant=True``: every sleep advances the clock by its delay and returns at once
    (one sleeper at a time makes the timeline exact). Otherwise sleepers park until
    ``advance`` moves the clock past their deadline.
    """

    def __init__(self, instant: bool = False) -> None:
        self.now = 0.0
        self.instant = instant
        self.delays: list[float] = []
        self._lock = threading.Lock()
        self._sleepers: list[tuple[float, Oneshot[None]]] = []

    async def sleep(self, delay: float) -> None:
        with self._lock:
            self.delays.append(delay)
            if self.instant:
                self.now += delay
                wake = None
            else:
                wake = Oneshot[None]()
                self._sleepers.append((self.now + delay, wake))
        if wake is None:
            await zuki.yield_now()
            return
        try:
            await wake.recv()
        finally:  # cancelled: leave no sleeper behind
            with self._lock:
                self._sleepers = [(d, w) for d, w in self._sleepers if w is not wake]

    @property
    def sleeping(self) -> int:
        with self._lock:
            return len(self._sleepers)

    def advance(self, dt: float) -> None:
        with self._lock:
            self.now += dt
            due = [w for d, w in self._sleepers if d <= self.now]
            self._sleepers = [(d, w) for d, w in self._sleepers if d > self.now]
        for w in due:
            w.send(None)


async def forever(ev: Event) -> str:
    await ev.wait()
    return "released"


async def double(x: int) -> int:
    await zuki.yield_now()
    return 2 * x


async def fail(x: int) -> int:
    await zuki.yield_now()
    raise ValueError(f"bad {x}")


# --------------------------------------------------------------------------------------
# error strategies
# --------------------------------------------------------------------------------------


@guarded(HANG)
def test_stop_first_failure_cancels_the_others_and_raises_a_group() -> None:
    async def main() -> None:
        never = Event()
        with pytest.raises(ExceptionGroup) as info:
            async with TaskGroup() as g:
                waiting = [g.spawn(forever, never) for _ in range(5)]
                g.spawn(fail, 7)
        assert [type(e) for e in info.value.exceptions] == [ValueError]
        assert "1 task(s) failed" in str(info.value)
        (err,) = info.value.exceptions
        assert any("GroupTask #5 fail" in note for note in err.__notes__)
        assert all(t.cancelled() for t in waiting)
        [(task, exc)] = g.errors()
        assert task.index == 5 and exc is err
        assert g.results() == []
        # The block is over: spawning into it is an error.
        with pytest.raises(RuntimeError, match="has ended"):
            g.spawn(double, 1)

    run(main())


@guarded(HANG)
def test_auto_runs_everything_and_collects_results_and_errors() -> None:
    async def main() -> None:
        async with TaskGroup(on_error="auto") as g:
            for i in range(8):
                g.spawn(fail if i % 3 == 0 else double, i)
        assert g.results() == [2 * i for i in range(8) if i % 3]
        errors = g.errors()
        assert [t.index for t, _ in errors] == [0, 3, 6]
        assert [str(e) for _, e in errors] == ["bad 0", "bad 3", "bad 6"]
        assert all(t.done() for t in g.tasks)

    run(main())


@guarded(HANG)
def test_results_are_in_spawn_order_not_completion_order() -> None:
    async def main() -> list[int]:
        gates = [Event() for _ in range(6)]

        async def item(i: int) -> int:
            await gates[i].wait()
            return i

        async with TaskGroup() as g:
            for i in range(6):
                g.spawn(item, i)
            for gate in reversed(gates):  # finish in reverse order
                gate.set()
                await zuki.yield_now()
        return g.results()

    assert run(main()) == list(range(6))


@guarded(HANG)
def test_retry_until_success_and_until_exhausted() -> None:
    clock = VirtualClock(instant=True)
    calls: dict[str, int] = {}
    lock = threading.Lock()

    def flaky(name: str, failures: int) -> str:  # a plain callable, run on a worker
        with lock:
            calls[name] = calls.get(name, 0) + 1
            n = calls[name]
        if n <= failures:
            raise ConnectionError(f"{name} attempt {n}")
        return name

    async def main() -> None:
        async with TaskGroup(on_error="retry", retries=3, sleep=clock.sleep) as g:
            a = g.spawn(flaky, "a", 2)
            b = g.spawn(flaky, "b", 0)
        assert g.results() == ["a", "b"]
        assert (a.attempts, b.attempts) == (3, 1)

        with pytest.raises(ExceptionGroup) as info:
            async with TaskGroup(on_error="retry", retries=2, sleep=clock.sleep) as g:
                c = g.spawn(flaky, "c", 99)
        (err,) = info.value.exceptions
        assert isinstance(err, ConnectionError) and str(err) == "c attempt 3"
        assert c.attempts == 3
        assert any("after 3 attempts" in note for note in err.__notes__)

    run(main())


def test_retry_refuses_a_coroutine_object_and_says_why() -> None:
    async def main() -> None:
        async with TaskGroup(on_error="retry") as g:
            coro = double(1)
            with pytest.raises(TypeError, match=r"g\.spawn\(fn, \*args\)"):
                g.spawn(coro)
            # The coroutine was closed: no "never awaited" RuntimeWarning (an error here).
            assert coro.cr_frame is None  # type: ignore[attr-defined]

    run(main(), workers=1)


@guarded(HANG)
def test_retry_backoff_timing_on_virtual_time() -> None:
    clock = VirtualClock(instant=True)
    backoff = Backoff(base=1.0, factor=2.0, cap=5.0, jitter=0.5)
    attempts_at: list[float] = []

    async def flaky() -> str:
        attempts_at.append(clock.now)
        if len(attempts_at) <= 4:
            raise OSError("try again")
        return "done"

    async def main() -> None:
        async with TaskGroup(
            on_error="retry",
            retries=4,
            backoff=backoff,
            sleep=clock.sleep,
            rng=random.Random(1234),
        ) as g:
            g.spawn(flaky)
        assert g.results() == ["done"]

    run(main())
    expected_rng = random.Random(1234)
    expected = [backoff.delay(k, expected_rng) for k in (1, 2, 3, 4)]
    assert clock.delays == expected
    # Exponential with equal jitter, capped: each delay in [full / 2, full].
    for k, delay in enumerate(clock.delays, start=1):
        full = min(5.0, 2.0 ** (k - 1))
        assert full / 2 <= delay <= full
    # Attempt k+1 happens exactly when the k-th delay has elapsed (virtual time).
    elapsed = [0.0]
    for d in expected:
        elapsed.append(elapsed[-1] + d)
    assert attempts_at == pytest.approx(elapsed)


def test_backoff_validation_and_no_jitter() -> None:
    for bad in ({"base": -1}, {"factor": 0.5}, {"jitter": 1.5}, {"cap": -1}):
        with pytest.raises(ValueError):
            Backoff(**bad)
    fixed = Backoff(base=0.5, factor=3, cap=10, jitter=0)
    rng = random.Random(0)
    assert [fixed.delay(k, rng) for k in (1, 2, 3, 4)] == [0.5, 1.5, 4.5, 10]
    for bad_kwargs in (
        {"on_error": "nope"},
        {"on_timeout": "nope"},
        {"retries": -1},
        {"timeout": -1},
        {"grace": -0.5},
    ):
        with pytest.raises(ValueError):
            TaskGroup(**bad_kwargs)


# --------------------------------------------------------------------------------------
# timeouts
# --------------------------------------------------------------------------------------


async def _timeout_scenario(
    clock: VirtualClock, *, grace: float | None, on_timeout: str, late_finishes: bool
) -> TaskGroup:
    never = Event()
    late = Event()

    async def slow() -> str:
        await late.wait()
        return "late"

    g = TaskGroup(timeout=10, grace=grace, on_timeout=on_timeout, sleep=clock.sleep)  # type: ignore[arg-type]

    async def ticker() -> None:
        await until(lambda: clock.sleeping == 1 and quick.done(), "watchdog to sleep")
        clock.advance(10)  # the deadline
        if grace:
            await until(lambda: clock.sleeping == 1, "grace period")
            refused = g.spawn(double, 99)  # past the deadline the block refuses work
            assert refused.cancelled() and g.timed_out
            if late_finishes:
                late.set()  # finishes within the grace period
                await until(slow_task.done, "slow task")
            clock.advance(grace)

    tick = zuki.spawn(ticker())
    try:
        async with g:
            quick = g.spawn(double, 1)
            slow_task = g.spawn(slow)
            g.spawn(forever, never)
    finally:
        await tick
    return g


@guarded(HANG)
def test_timeout_without_grace_raises_timeout_error() -> None:
    async def main() -> None:
        clock = VirtualClock()
        with pytest.raises(TimeoutError, match="1 of 3"):
            await _timeout_scenario(clock, grace=None, on_timeout="error", late_finishes=False)

    run(main())


@guarded(HANG)
def test_timeout_partial_returns_what_completed() -> None:
    async def main() -> None:
        clock = VirtualClock()
        g = await _timeout_scenario(clock, grace=None, on_timeout="partial", late_finishes=False)
        assert g.timed_out
        assert g.results() == [2]
        assert [t.cancelled() for t in g.tasks] == [False, True, True]

    run(main())


@guarded(HANG)
def test_timeout_grace_lets_tasks_finish_then_cancels_the_rest() -> None:
    async def main() -> None:
        clock = VirtualClock()
        g = await _timeout_scenario(clock, grace=2, on_timeout="partial", late_finishes=True)
        assert g.results() == [2, "late"]
        assert g.tasks[2].cancelled()  # `forever` outlived the grace period
        clock2 = VirtualClock()
        with pytest.raises(TimeoutError, match="2 of 4"):
            await _timeout_scenario(clock2, grace=2, on_timeout="error", late_finishes=True)

    run(main())


@guarded(HANG)
def test_timeout_not_reached_changes_nothing() -> None:
    async def main() -> None:
        clock = VirtualClock()
        async with TaskGroup(timeout=5, sleep=clock.sleep) as g:
            g.spawn(double, 3)
        assert g.results() == [6] and not g.timed_out
        assert clock.sleeping == 0  # the watchdog was cancelled and left no sleeper

    run(main())


@guarded(HANG)
def test_timeout_with_real_zuki_sleep() -> None:
    from zuki.runtime.timers import sleep

    async def main() -> float:
        t0 = time.monotonic()
        async with TaskGroup(timeout=0.05, on_timeout="partial") as g:
            g.spawn(sleep, 30)
            g.spawn(double, 4)
        assert g.results() == [8] and g.timed_out
        return time.monotonic() - t0

    assert run(main()) < 10


# --------------------------------------------------------------------------------------
# structure: nesting, spawning into the same block, the body, cancellation
# --------------------------------------------------------------------------------------


@pytest.mark.stress
@guarded(HANG)
def test_tasks_spawn_into_their_own_block() -> None:
    depth, fanout = 5, 3  # a tree of 1 + 3 + ... + 3**5 = 364 tasks
    counter = AtomicInt(0)

    async def node(g: TaskGroup, level: int) -> None:
        counter.add(1)
        if level < depth:
            for _ in range(fanout):
                g.spawn(node, g, level + 1)

    async def main() -> int:
        async with TaskGroup() as g:
            g.spawn(node, g, 0)
        assert all(t.done() for t in g.tasks)
        return len(g.tasks)

    n = run(main())
    assert n == sum(fanout**k for k in range(depth + 1))
    assert counter.load() == n


@guarded(HANG)
def test_nested_blocks_propagate_and_cancel_inward() -> None:
    async def main() -> None:
        never = Event()
        inner_tasks: list[Any] = []

        async def inner_ok() -> int:
            async with TaskGroup() as inner:
                inner.spawn(double, 5)
            return sum(inner.results())

        async def inner_waits() -> None:
            async with TaskGroup() as inner:
                inner_tasks.extend(inner.spawn(forever, never) for _ in range(3))

        async def inner_fails() -> None:
            await until(lambda: len(inner_tasks) == 3 and ok.done(), "inner tasks")
            async with TaskGroup() as inner:
                inner.spawn(fail, 1)

        with pytest.raises(ExceptionGroup) as info:
            async with TaskGroup() as outer:
                ok = outer.spawn(inner_ok)
                waits = outer.spawn(inner_waits)
                outer.spawn(inner_fails)
        # The inner failure arrives as a group inside the outer group.
        (nested,) = info.value.exceptions
        assert isinstance(nested, ExceptionGroup)
        assert [str(e) for e in nested.exceptions] == ["bad 1"]
        assert ok.result() == 10
        # Cancelling the outer task cancelled the inner block's tasks: none outlived it.
        assert waits.cancelled()
        assert all(t.cancelled() for t in inner_tasks)

    run(main())


@guarded(HANG)
def test_body_exception_cancels_tasks_and_is_grouped() -> None:
    async def main() -> None:
        never = Event()
        with pytest.raises(ExceptionGroup) as info:
            async with TaskGroup(on_error="auto") as g:
                t = g.spawn(forever, never)
                raise KeyError("body")
        assert [type(e) for e in info.value.exceptions] == [KeyError]
        assert t.cancelled()

    run(main())


@guarded(HANG)
def test_cancelling_the_task_running_the_block_cancels_its_tasks() -> None:
    async def main() -> None:
        never = Event()
        tasks: list[Any] = []

        async def owner() -> None:
            async with TaskGroup() as g:
                tasks.extend(g.spawn(forever, never) for _ in range(4))

        h = zuki.spawn(owner())
        await until(lambda: len(tasks) == 4 and all(t._handle.state == "idle" for t in tasks))
        h.cancel()
        with pytest.raises(zuki.Cancelled):
            await h
        assert all(t.cancelled() for t in tasks)

    run(main())


@guarded(HANG)
def test_system_exit_in_a_task_is_reraised_bare() -> None:
    async def main() -> None:
        never = Event()

        def exits() -> None:
            raise SystemExit(3)

        async with TaskGroup(on_error="auto") as g:
            g.spawn(forever, never)
            g.spawn(exits)

    with pytest.raises(SystemExit) as info:
        run(main())
    assert info.value.code == 3


@guarded(HANG)
def test_spawn_forms_and_misuse() -> None:
    async def main() -> None:
        g = TaskGroup()
        with pytest.raises(RuntimeError, match="not entered"):
            g.spawn(double, 1)
        async with g:
            a = g.spawn(double, 1)  # async function + args
            b = g.spawn(double(2))  # coroutine object
            c = g.spawn(pow, 3, 2)  # plain callable, runs on a worker
            with pytest.raises(TypeError, match="not 42"):
                g.spawn(42)  # type: ignore[call-overload]
            coro = double(3)
            with pytest.raises(TypeError, match="arguments"):
                g.spawn(coro, 1)  # type: ignore[call-overload]
            assert await a == 2  # a GroupTask is awaitable from the block's tasks
        assert [a.result(), b.result(), c.result()] == [2, 4, 9]
        with pytest.raises(RuntimeError, match="entered only once"):
            async with g:
                pass
        assert "closed" in repr(g)

    run(main())


@guarded(HANG)
def test_block_channels_are_closed_at_exit() -> None:
    async def main() -> list[int]:
        async with TaskGroup() as g:
            ch = g.channel(4)

            async def produce() -> None:
                for i in range(3):
                    await ch.send(i)

            g.spawn(produce)
        with pytest.raises(ChannelClosed):
            await ch.send(9)
        return [x async for x in ch]

    assert run(main()) == [0, 1, 2]


def test_taskgroup_outside_a_task_is_an_error() -> None:
    import asyncio

    async def main() -> None:
        async with TaskGroup():
            pass

    with pytest.raises(RuntimeError, match="inside a task"):
        asyncio.run(main())


# --------------------------------------------------------------------------------------
# AtomicInt across tasks
# --------------------------------------------------------------------------------------


@pytest.mark.stress
@guarded(HANG)
def test_atomic_int_across_tasks_on_several_workers() -> None:
    tasks, rounds = 8, 500
    added = AtomicInt(0)
    cas = AtomicInt(0)

    def bump() -> None:
        for _ in range(rounds):
            added.add(1)
            while True:  # a compare-exchange update loop
                current = cas.load()
                ok, _ = cas.compare_exchange(current, current + 2)
                if ok:
                    break

    async def main() -> None:
        async with TaskGroup() as g:
            for _ in range(tasks):
                g.spawn(bump)

    run(main())
    assert added.load() == tasks * rounds
    assert cas.load() == 2 * tasks * rounds
    added.sub(tasks * rounds)
    added.store(7)
    assert added.load() == 7


# --------------------------------------------------------------------------------------
# parallel_map
# --------------------------------------------------------------------------------------


def square(x: int) -> int:
    return x * x


@guarded(HANG)
def test_parallel_map_outside_and_inside_an_executor() -> None:
    items = list(range(1000))
    assert parallel_map(square, items, workers=2) == [x * x for x in items]
    assert parallel_map(square, iter(items), workers=2, chunksize=7) == [x * x for x in items]
    assert sorted(parallel_map(square, items, workers=3, ordered=False)) == [x * x for x in items]
    assert parallel_map(square, [], workers=2) == []

    async def main() -> tuple[list[int], list[int]]:
        # On a one-worker executor: the caller helps with the chunks, no deadlock.
        return (
            parallel_map(square, items, chunksize=50),
            parallel_map(square, items, chunksize=50, ordered=False),
        )

    ordered, unordered = run(main(), workers=1)
    assert ordered == [x * x for x in items]
    assert sorted(unordered) == ordered


def test_parallel_map_errors() -> None:
    def boom(x: int) -> int:
        if x == 17:
            raise ArithmeticError("17")
        return x

    with pytest.raises(ArithmeticError, match="17"):
        parallel_map(boom, range(100), workers=2, chunksize=5)
    with pytest.raises(ValueError, match="chunksize"):
        parallel_map(boom, range(3), chunksize=0)
    with pytest.raises(ValueError, match="workers"):
        parallel_map(boom, range(3), workers=0)


# --------------------------------------------------------------------------------------
# stream
# --------------------------------------------------------------------------------------


@guarded(HANG)
def test_stream_ordered_and_unordered_from_sync_and_async_sources() -> None:
    async def agen(n: int) -> Any:
        for i in range(n):
            await zuki.yield_now()
            yield i

    async def main() -> None:
        assert [r async for r in stream(range(50), double, workers=4, ordered=True)] == [
            2 * i for i in range(50)
        ]
        got = [r async for r in stream(agen(50), square, workers=3)]
        assert sorted(got) == [i * i for i in range(50)]
        assert [r async for r in stream([], double)] == []

    run(main())


@pytest.mark.stress
@guarded(HANG)
def test_stream_back_pressure_bounds_items_in_flight() -> None:
    taken = AtomicInt(0)
    peak = [0]

    def source() -> Any:
        for i in range(300):
            taken.add(1)
            yield i

    async def work(x: int) -> int:
        await zuki.yield_now()
        return x

    async def main() -> list[int]:
        out = []
        async for r in stream(source(), work, workers=3, in_flight=5, ordered=True):
            out.append(r)
            peak[0] = max(peak[0], taken.load() - len(out))
            if len(out) % 7 == 0:
                for _ in range(10):  # a slow consumer
                    await zuki.yield_now()
        return out

    assert run(main()) == list(range(300))
    # in flight = taken from the source and not yet handed out; +1: the item the feeder
    # has pulled from the source while it waits for a permit
    assert peak[0] <= 5 + 1


@guarded(HANG)
def test_stream_error_strategies() -> None:
    clock = VirtualClock(instant=True)
    seen: dict[int, int] = {}
    lock = threading.Lock()

    def flaky(x: int) -> int:
        with lock:
            seen[x] = seen.get(x, 0) + 1
            n = seen[x]
        if x % 5 == 0 and n < 3:
            raise TimeoutError(f"item {x}")
        return x

    async def picky(x: int) -> int:
        if x == 13:
            raise ValueError("13")
        return x

    async def main() -> None:
        # stop: the failure ends the stream with a group
        with pytest.raises(ExceptionGroup) as info:
            async for _ in stream(range(100), picky, workers=3):
                pass
        assert [str(e) for e in info.value.exceptions] == ["13"]
        # auto: the failed item is skipped and recorded
        s = stream(range(30), picky, workers=3, on_error="auto", ordered=True)
        assert [r async for r in s] == [x for x in range(30) if x != 13]
        assert [(i, item, str(e)) for i, item, e in s.errors] == [(13, 13, "13")]
        # retry: flaky items succeed on their third attempt
        r = stream(range(20), flaky, workers=4, on_error="retry", retries=2, sleep=clock.sleep)
        assert sorted([x async for x in r]) == list(range(20))
        assert all(seen[x] == (3 if x % 5 == 0 else 1) for x in range(20))

    run(main())


@guarded(HANG)
def test_stream_left_early_cancels_its_workers() -> None:
    async def main() -> None:
        started = AtomicInt(0)

        async def work(x: int) -> int:
            started.add(1)
            await zuki.yield_now()
            return x

        def endless() -> Any:
            i = 0
            while True:
                yield i
                i += 1

        async with stream(endless(), work, workers=2) as s:
            async for r in s:
                if r >= 10:
                    break
        assert s._core.group.tasks and all(t.done() for t in s._core.group.tasks)
        assert started.load() < 100  # back-pressure stopped the endless source

        # A bare `async for` left by `break`: dropping the stream stops its workers
        # (else zuki.run would wait for them forever at the end).
        dropped = stream(endless(), work, workers=2)
        core = dropped._core
        async for r in dropped:
            if r >= 10:
                break
        del dropped
        await until(lambda: all(t.done() for t in core.group.tasks), "dropped stream")

    run(main())


def test_stream_argument_errors() -> None:
    with pytest.raises(ValueError, match="workers"):
        stream([1], double, workers=0)
    with pytest.raises(ValueError, match="in_flight"):
        stream([1], double, in_flight=0)
    with pytest.raises(ValueError, match="on_error"):
        stream([1], double, on_error="sometimes")  # type: ignore[call-overload]


@guarded(HANG)
def test_zuki_timeout_around_a_block_cancels_its_tasks() -> None:
    from zuki.runtime.timers import sleep, timeout

    async def main() -> None:
        g = TaskGroup()
        with pytest.raises(TimeoutError):
            async with timeout(0.05), g:
                g.spawn(sleep, 30)
                g.spawn(sleep, 30)
        assert [t.cancelled() for t in g.tasks] == [True, True]

    run(main())


@guarded(HANG)
def test_blocks_and_channels_on_the_single_threaded_executor() -> None:
    async def main() -> tuple[list[int], list[int], list[int]]:
        async with TaskGroup() as g:
            ch = g.channel(2)

            async def produce() -> None:
                for i in range(50):
                    await ch.send(i)
                ch.close()

            g.spawn(produce)
            got = [x async for x in ch]
        mapped = parallel_map(square, range(10))
        streamed = [r async for r in stream(range(10), double, workers=3, ordered=True)]
        return got, mapped, streamed

    with zuki.SingleThreadedExecutor() as ex:
        got, mapped, streamed = ex.block_on(main())
    assert got == list(range(50))
    assert mapped == [x * x for x in range(10)]
    assert streamed == [2 * x for x in range(10)]
