"""The executor API, black-box: one suite run on every executor variant.

Every test is a plain ``def`` (pytest-run-parallel reports ``async def`` tests as passed
without running them) and builds its own executor from the ``spec`` fixture, so the suite
can also run under ``--parallel-threads``. Variants: ``SingleThreadedExecutor``, and
``WorkStealingExecutor`` with 1, 2 and 4 workers on the lock-free and builtin queue
backends, all with ``park_timeout=None``.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextvars
import operator
import threading
import time
from typing import Any

import pytest
from helpers import (
    EXECUTOR_SPECS,
    WAIT,
    ExecutorSpec,
    Gate,
    cancelled_errors,
    guarded,
    hang_dump_fd,  # noqa: F401  (autouse fixture: hang dumps reach the real stderr)
    spec_params,
)

import zuki


@pytest.fixture(params=spec_params(EXECUTOR_SPECS))
def spec(request: pytest.FixtureRequest) -> ExecutorSpec:
    return request.param  # type: ignore[no-any-return]


async def add_async(a: int, b: int) -> int:
    await zuki.yield_now()
    return a + b


class Weird:
    def __repr__(self) -> str:
        return "<Weird object for the TypeError test>"


# --------------------------------------------------------------------------------------
# spawn
# --------------------------------------------------------------------------------------


@guarded()
def test_spawn_coroutine(spec: ExecutorSpec) -> None:
    with spec.make() as ex:
        handle = ex.spawn(add_async(2, 3))
        assert isinstance(handle, zuki.JoinHandle)
        assert handle.result(timeout=WAIT) == 5
        assert handle.done()
        assert handle.exception() is None


@guarded()
def test_spawn_callable(spec: ExecutorSpec) -> None:
    with spec.make() as ex:
        handle = ex.spawn(lambda: "called")
        assert isinstance(handle, zuki.JoinHandle)
        assert handle.result(timeout=WAIT) == "called"


class ReadyAfter(zuki.Future):
    """Pending ``n`` times (waking itself each time), then ready with ``value``."""

    def __init__(self, n: int, value: Any) -> None:
        self.n = n
        self.value = value
        self.polls = 0

    def poll(self, cx: Any) -> Any:
        self.polls += 1
        if self.polls > self.n:
            return zuki.Poll.ready(self.value)
        cx.waker.wake_by_ref()
        return zuki.Poll.PENDING


@guarded()
def test_spawn_zuki_future(spec: ExecutorSpec) -> None:
    with spec.make() as ex:
        future = ReadyAfter(3, "polled")
        handle = ex.spawn(future)
        assert handle.result(timeout=WAIT) == "polled"
        assert future.polls == 4


@guarded()
def test_spawn_future_woken_from_foreign_thread(spec: ExecutorSpec) -> None:
    gate = Gate()
    with spec.make() as ex:
        handle = ex.spawn(gate)
        assert gate.polled.wait(WAIT)
        assert not handle.done()
        opener = threading.Thread(target=gate.open, args=("opened",))
        opener.start()
        opener.join()
        assert handle.result(timeout=WAIT) == "opened"


@guarded()
def test_coroutine_awaits_zuki_future(spec: ExecutorSpec) -> None:
    gate = Gate()

    async def waiter() -> Any:
        return await gate

    with spec.make() as ex:
        handle = ex.spawn(waiter())
        assert gate.polled.wait(WAIT)
        gate.open(41)
        assert handle.result(timeout=WAIT) == 41


@guarded()
def test_future_wrapping_a_coroutine(spec: ExecutorSpec) -> None:
    async def awaits_wrapped() -> int:
        return await zuki.Future.from_coroutine(add_async(10, 5))  # type: ignore[no-any-return]

    with spec.make() as ex:
        wrapped = zuki.Future.from_coroutine(add_async(1, 2))
        assert isinstance(wrapped, zuki.Future)
        assert ex.spawn(wrapped).result(timeout=WAIT) == 3
        assert ex.block_on(awaits_wrapped()) == 15


@pytest.mark.parametrize("bad", [42, "not a task", None, Weird()], ids=repr)
def test_spawn_rejects_non_task_naming_it(spec: ExecutorSpec, bad: Any) -> None:
    with spec.make() as ex, pytest.raises(TypeError) as info:
        ex.spawn(bad)
    message = str(info.value)
    assert repr(bad) in message or type(bad).__name__ in message, message


@guarded()
def test_spawn_from_many_outside_threads(spec: ExecutorSpec) -> None:
    per_thread = 200
    with spec.make() as ex:
        handles: list[list[Any]] = [[] for _ in range(4)]

        def producer(i: int) -> None:
            handles[i] = [ex.spawn(lambda i=i, j=j: (i, j)) for j in range(per_thread)]

        threads = [threading.Thread(target=producer, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i, hs in enumerate(handles):
            assert [h.result(timeout=WAIT) for h in hs] == [(i, j) for j in range(per_thread)]


# --------------------------------------------------------------------------------------
# concurrent.futures.Executor contract: submit, map, wait, as_completed
# --------------------------------------------------------------------------------------


def test_is_a_concurrent_futures_executor(spec: ExecutorSpec) -> None:
    with spec.make() as ex:
        assert isinstance(ex, cf.Executor)


@guarded()
def test_submit_with_args_and_kwargs(spec: ExecutorSpec) -> None:
    with spec.make() as ex:
        future = ex.submit(int, "ff", base=16)
        assert future.result(timeout=WAIT) == 255
        assert ex.submit(pow, 3, 4).result(timeout=WAIT) == 81


@guarded()
def test_submit_works_with_wait_and_as_completed(spec: ExecutorSpec) -> None:
    with spec.make() as ex:
        futures = [ex.submit(operator.mul, i, i) for i in range(100)]
        done, not_done = cf.wait(futures, timeout=WAIT)
        assert not not_done
        assert done == set(futures)
        assert sorted(f.result() for f in cf.as_completed(futures, timeout=WAIT)) == [
            i * i for i in range(100)
        ]


@guarded()
def test_wait_first_completed_and_first_exception(spec: ExecutorSpec) -> None:
    release = threading.Event()
    with spec.make() as ex:
        slow = ex.submit(release.wait, WAIT)
        quick = ex.submit(int, "7") if spec.parallel else None
        if quick is not None:
            done, _ = cf.wait([slow, quick], timeout=WAIT, return_when=cf.FIRST_COMPLETED)
            assert quick in done
        release.set()
        failing = ex.submit(operator.truediv, 1, 0)
        done, _ = cf.wait([slow, failing], timeout=WAIT, return_when=cf.FIRST_EXCEPTION)
        assert failing in done
        assert isinstance(failing.exception(), ZeroDivisionError)


@guarded()
@pytest.mark.parametrize("chunksize", [1, 7, 1000])
def test_map_preserves_order(spec: ExecutorSpec, chunksize: int) -> None:
    with spec.make() as ex:
        assert list(ex.map(operator.neg, range(500), chunksize=chunksize)) == [
            -i for i in range(500)
        ]


@guarded()
def test_map_several_iterables_stops_at_shortest(spec: ExecutorSpec) -> None:
    with spec.make() as ex:
        assert list(ex.map(operator.add, range(10), range(100, 105))) == [
            100,
            102,
            104,
            106,
            108,
        ]


@guarded()
def test_map_raises_the_first_exception_in_order(spec: ExecutorSpec) -> None:
    def invert(x: int) -> float:
        return 1 / x

    with spec.make() as ex:
        results = ex.map(invert, [1, 2, 0, 4])
        assert next(results) == 1.0
        assert next(results) == 0.5
        with pytest.raises(ZeroDivisionError):
            next(results)


@guarded()
def test_map_timeout(spec: ExecutorSpec) -> None:
    release = threading.Event()
    with spec.make() as ex:
        results = ex.map(release.wait, [WAIT], timeout=0.05)
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            next(results)
        assert time.monotonic() - start < WAIT / 2
        release.set()


@guarded()
def test_map_empty(spec: ExecutorSpec) -> None:
    with spec.make() as ex:
        assert list(ex.map(operator.neg, [])) == []


# --------------------------------------------------------------------------------------
# block_on, zuki.run, zuki.spawn / current_executor, yield_now, join
# --------------------------------------------------------------------------------------


@guarded()
def test_block_on(spec: ExecutorSpec) -> None:
    with spec.make() as ex:
        assert ex.block_on(add_async(20, 22)) == 42


@guarded()
def test_block_on_propagates_exception(spec: ExecutorSpec) -> None:
    async def boom() -> None:
        await zuki.yield_now()
        raise LookupError("from block_on")

    with spec.make() as ex, pytest.raises(LookupError, match="from block_on"):
        ex.block_on(boom())


@guarded()
@pytest.mark.parametrize("workers", [None, 1, 2, 4])
def test_zuki_run(workers: int | None) -> None:
    async def main() -> list[int]:
        handles = [zuki.spawn(add_async(i, 1)) for i in range(50)]
        return [await h for h in handles]

    assert zuki.run(main(), workers=workers) == list(range(1, 51))


@guarded()
def test_zuki_run_propagates_exception() -> None:
    async def main() -> None:
        raise KeyError("inside run")

    with pytest.raises(KeyError, match="inside run"):
        zuki.run(main(), workers=2)


@guarded()
def test_spawn_and_current_executor_inside_a_task(spec: ExecutorSpec) -> None:
    with spec.make() as ex:

        async def parent() -> tuple[bool, int]:
            same = zuki.current_executor() is ex
            child = zuki.spawn(add_async(1, 2))
            return same, await child

        assert ex.spawn(parent()).result(timeout=WAIT) == (True, 3)


@guarded()
def test_spawn_and_current_executor_inside_a_callable_task(spec: ExecutorSpec) -> None:
    with spec.make() as ex:

        def parent() -> tuple[bool, int]:
            child = zuki.spawn(lambda: 7)
            return zuki.current_executor() is ex, child.result(timeout=WAIT)

        assert ex.submit(parent).result(timeout=WAIT) == (True, 7)


def test_spawn_and_current_executor_outside_a_task_raise() -> None:
    with pytest.raises(RuntimeError):
        zuki.current_executor()
    coro = add_async(1, 1)
    try:
        with pytest.raises(RuntimeError):
            zuki.spawn(coro)
    finally:
        coro.close()


@guarded()
def test_yield_now_lets_other_tasks_run(spec: ExecutorSpec) -> None:
    flag = threading.Event()

    async def spinner() -> int:
        spins = 0
        while not flag.is_set():
            spins += 1
            await zuki.yield_now()
        return spins

    async def setter() -> None:
        await zuki.yield_now()
        flag.set()

    with spec.make() as ex:
        spin = ex.spawn(spinner())
        ex.spawn(setter()).result(timeout=WAIT)
        spins = spin.result(timeout=WAIT)
        # With one thread the spinner starts first and must yield to let the setter run.
        assert spins >= (0 if spec.parallel else 1)


@guarded()
def test_yield_now_interleaves_on_one_thread(spec: ExecutorSpec) -> None:
    if spec.parallel:
        pytest.skip("interleaving order is only defined with one worker")
    trace: list[str] = []

    async def step(name: str) -> None:
        for _ in range(3):
            trace.append(name)
            await zuki.yield_now()

    async def main() -> None:
        a = zuki.spawn(step("a"))
        b = zuki.spawn(step("b"))
        await a
        await b

    with spec.make() as ex:
        ex.block_on(main())
    assert sorted(trace) == ["a"] * 3 + ["b"] * 3
    # Each yield gives the other task a turn: no task runs all its steps back to back.
    assert "".join(trace) not in ("aaabbb", "bbbaaa"), trace


def fib_join(n: int) -> int:
    if n < 12:
        return fib_seq(n)
    a, b = zuki.join(lambda: fib_join(n - 1), lambda: fib_join(n - 2))
    return a + b


def fib_seq(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


@guarded()
def test_join_two_callables(spec: ExecutorSpec) -> None:
    with spec.make() as ex:
        assert ex.submit(zuki.join, lambda: "a", lambda: "b").result(timeout=WAIT) == ("a", "b")

        async def inside_coroutine() -> tuple[int, int]:
            return zuki.join(lambda: 1, lambda: 2)  # type: ignore[no-any-return]

        assert ex.block_on(inside_coroutine()) == (1, 2)


@guarded()
def test_join_fork_join_fib(spec: ExecutorSpec) -> None:
    with spec.make() as ex:
        assert ex.submit(fib_join, 18).result(timeout=WAIT) == fib_seq(18)


@guarded()
def test_join_propagates_exception(spec: ExecutorSpec) -> None:
    def bad() -> None:
        raise ArithmeticError("left side")

    with spec.make() as ex:
        future = ex.submit(zuki.join, bad, lambda: 2)
        with pytest.raises(ArithmeticError, match="left side"):
            future.result(timeout=WAIT)
        future = ex.submit(zuki.join, lambda: 1, bad)
        with pytest.raises(ArithmeticError, match="left side"):
            future.result(timeout=WAIT)


# --------------------------------------------------------------------------------------
# TaskBatch and spawn_batch
# --------------------------------------------------------------------------------------


def test_task_batch_container() -> None:
    batch = zuki.TaskBatch()
    assert len(batch) == 0

    def f() -> int:
        return 1

    def g() -> int:
        return 2

    batch.add(f)
    batch.extend([g, f])
    assert len(batch) == 3
    assert list(batch) == [f, g, f]
    batch.clear()
    assert len(batch) == 0
    assert list(batch) == []


@guarded()
def test_spawn_batch_of_mixed_tasks(spec: ExecutorSpec) -> None:
    batch = zuki.TaskBatch()
    batch.add(lambda: "callable")
    batch.add(add_async(1, 2))
    batch.add(ReadyAfter(1, "future"))
    batch.extend(lambda i=i: i for i in range(100))
    with spec.make() as ex:
        handles = ex.spawn_batch(batch)
        assert len(handles) == 103
        assert all(isinstance(h, zuki.JoinHandle) for h in handles)
        results = [h.result(timeout=WAIT) for h in handles]
    assert results == ["callable", 3, "future", *range(100)]


@guarded()
def test_spawn_batch_accepts_any_iterable(spec: ExecutorSpec) -> None:
    with spec.make() as ex:
        handles = ex.spawn_batch(add_async(i, i) for i in range(64))
        assert [h.result(timeout=WAIT) for h in handles] == [2 * i for i in range(64)]
        assert ex.spawn_batch([]) == []


@guarded()
def test_spawn_batch_from_inside_a_task(spec: ExecutorSpec) -> None:
    async def parent() -> int:
        handles = zuki.current_executor().spawn_batch(add_async(i, 0) for i in range(1000))
        total = 0
        for h in handles:
            total += await h
        return total

    with spec.make() as ex:
        assert ex.block_on(parent()) == sum(range(1000))


def test_spawn_batch_rejects_non_task(spec: ExecutorSpec) -> None:
    with spec.make() as ex, pytest.raises(TypeError, match="Weird"):
        ex.spawn_batch([lambda: 1, Weird()])


# --------------------------------------------------------------------------------------
# JoinHandle
# --------------------------------------------------------------------------------------


@guarded()
def test_join_handle_result_timeout(spec: ExecutorSpec) -> None:
    gate = Gate()
    with spec.make() as ex:
        handle = ex.spawn(gate)
        assert not handle.done()
        with pytest.raises(TimeoutError):
            handle.result(timeout=0.01)
        with pytest.raises(TimeoutError):
            handle.exception(timeout=0.01)
        gate.open("late")
        assert handle.result(timeout=WAIT) == "late"


@guarded()
def test_join_handle_exception(spec: ExecutorSpec) -> None:
    def fail() -> None:
        raise ValueError("kept in the handle")

    with spec.make() as ex:
        handle = ex.spawn(fail)
        error = handle.exception(timeout=WAIT)
        assert isinstance(error, ValueError)
        assert handle.done()
        with pytest.raises(ValueError, match="kept in the handle"):
            handle.result()


@guarded()
def test_join_handle_add_done_callback(spec: ExecutorSpec) -> None:
    gate = Gate()
    calls: list[Any] = []
    called = threading.Event()

    def callback(h: Any) -> None:
        calls.append(h)
        called.set()

    with spec.make() as ex:
        handle = ex.spawn(gate)
        handle.add_done_callback(callback)
        gate.open(1)
        assert called.wait(WAIT)
        assert calls == [handle]
        # Added after completion: called at once, in the calling thread.
        late: list[Any] = []
        handle.add_done_callback(late.append)
        assert late == [handle]


@guarded()
def test_join_handle_is_awaitable(spec: ExecutorSpec) -> None:
    with spec.make() as ex:
        inner = ex.spawn(lambda: "from callable")

        async def waiter() -> str:
            return await inner  # type: ignore[no-any-return]

        assert ex.block_on(waiter()) == "from callable"


@guarded()
def test_await_handle_reraises(spec: ExecutorSpec) -> None:
    async def fail() -> None:
        raise IndexError("child failed")

    async def parent() -> str:
        try:
            await zuki.spawn(fail())
        except IndexError as e:
            return str(e)
        return "no error"

    with spec.make() as ex:
        assert ex.block_on(parent()) == "child failed"


@guarded()
def test_cancel_queued_task(spec: ExecutorSpec) -> None:
    from helpers import Blockers

    ran = threading.Event()
    blockers = Blockers()
    with spec.make() as ex:
        blockers.start(ex, spec.workers)
        try:
            handle = ex.spawn(ran.set)
            assert handle.cancel() is True
            assert handle.done()
            assert handle.cancelled()
            with pytest.raises(cancelled_errors()):
                handle.result(timeout=WAIT)
        finally:
            blockers.release()
        # A cancelled task never runs, even once its worker is free again.
        ex.submit(int).result(timeout=WAIT)
    assert not ran.is_set()


@guarded()
def test_cancel_finished_task_is_false(spec: ExecutorSpec) -> None:
    with spec.make() as ex:
        handle = ex.spawn(lambda: 1)
        assert handle.result(timeout=WAIT) == 1
        assert handle.cancel() is False
        assert not handle.cancelled()
        assert handle.result() == 1


@guarded()
def test_cancel_suspended_coroutine_throws_cancelled(spec: ExecutorSpec) -> None:
    gate = Gate()
    seen: list[BaseException] = []

    async def victim() -> None:
        try:
            await gate
        except BaseException as e:
            seen.append(e)
            raise

    with spec.make() as ex:
        handle = ex.spawn(victim())
        assert gate.polled.wait(WAIT)
        handle.cancel()
        with pytest.raises(cancelled_errors()):
            handle.result(timeout=WAIT)
        assert handle.cancelled()
    assert len(seen) == 1
    assert isinstance(seen[0], zuki.Cancelled)


# --------------------------------------------------------------------------------------
# contextvars
# --------------------------------------------------------------------------------------

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


@guarded()
def test_each_task_runs_in_its_own_context_copy(spec: ExecutorSpec) -> None:
    async def task(name: str) -> list[str]:
        seen = [request_id.get()]
        request_id.set(name)
        for _ in range(5):
            await zuki.yield_now()
            seen.append(request_id.get())
        return seen

    token = request_id.set("spawner")
    try:
        with spec.make() as ex:
            handles = [ex.spawn(task(f"t{i}")) for i in range(20)]
            for i, h in enumerate(handles):
                assert h.result(timeout=WAIT) == ["spawner"] + [f"t{i}"] * 5
            # What a task sets never leaks to its worker's next task or to the spawner.
            assert ex.submit(request_id.get).result(timeout=WAIT) == "spawner"
        assert request_id.get() == "spawner"
    finally:
        request_id.reset(token)


@guarded()
def test_child_task_copies_parent_context(spec: ExecutorSpec) -> None:
    async def child() -> str:
        value = request_id.get()
        request_id.set("child changed it")
        return value

    async def parent() -> tuple[str, str]:
        request_id.set("parent")
        seen = await zuki.spawn(child())
        return seen, request_id.get()

    with spec.make() as ex:
        assert ex.block_on(parent()) == ("parent", "parent")


# --------------------------------------------------------------------------------------
# shutdown and errors at the API boundary
# --------------------------------------------------------------------------------------


def test_error_hierarchy() -> None:
    assert issubclass(zuki.ExecutorShutdownError, zuki.ExecutorError)
    assert issubclass(zuki.ExecutorShutdownError, RuntimeError)
    assert issubclass(zuki.Cancelled, BaseException)


@pytest.mark.parametrize("kind", ["work_stealing", "single_threaded"])
def test_make_executor_picks_from_a_config(kind: str) -> None:
    config = zuki.ExecutorConfig(workers=2, park_timeout=None)
    with zuki.make_executor(config, kind=kind) as ex:
        expected = (
            zuki.WorkStealingExecutor if kind == "work_stealing" else zuki.SingleThreadedExecutor
        )
        assert isinstance(ex, expected)
        assert ex.submit(operator.add, 2, 2).result(timeout=WAIT) == 4


@pytest.mark.parametrize("bad", [0, -1])
def test_max_workers_must_be_positive(bad: int) -> None:
    with pytest.raises(ValueError, match="max_workers must be greater than 0"):
        zuki.WorkStealingExecutor(bad)


def test_max_workers_is_positional_like_thread_pool_executor() -> None:
    with zuki.WorkStealingExecutor(2) as ex:
        assert ex.submit(operator.add, 1, 1).result(timeout=WAIT) == 2


@pytest.mark.parametrize(
    "options",
    [{"workers": 0}, {"workers": -3}, {"queue_backend": "no such backend"}],
    ids=["workers=0", "workers=-3", "bad-backend"],
)
def test_invalid_config_is_rejected(options: dict[str, Any]) -> None:
    with pytest.raises((ValueError, zuki.ExecutorError)):
        zuki.ExecutorConfig(**options)


@guarded()
def test_spawn_and_submit_after_shutdown_raise(spec: ExecutorSpec) -> None:
    ex = spec.make()
    ex.shutdown()
    coro = add_async(1, 2)
    try:
        with pytest.raises(zuki.ExecutorShutdownError, match="after shutdown"):
            ex.spawn(coro)
    finally:
        coro.close()
    with pytest.raises(zuki.ExecutorShutdownError):
        ex.spawn(lambda: None)
    with pytest.raises(zuki.ExecutorShutdownError):
        ex.submit(int)
    with pytest.raises(zuki.ExecutorShutdownError):
        ex.spawn_batch([lambda: None])
    # What ThreadPoolExecutor users catch.
    with pytest.raises(RuntimeError):
        ex.submit(int)


@guarded()
def test_shutdown_is_idempotent(spec: ExecutorSpec) -> None:
    ex = spec.make()
    handle = ex.spawn(lambda: 1)
    ex.shutdown(wait=False)
    ex.shutdown(wait=True)
    ex.shutdown()
    ex.shutdown(wait=True, cancel_futures=True)
    assert handle.done()
    with ex:
        pass  # leaving the block shuts down again: still fine


@guarded()
def test_context_manager_shuts_down(spec: ExecutorSpec) -> None:
    with spec.make() as ex:
        handles = [ex.spawn(add_async(i, 0)) for i in range(100)]
    assert all(h.done() for h in handles)
    with pytest.raises(zuki.ExecutorShutdownError):
        ex.spawn(lambda: None)


@guarded()
def test_shutdown_wait_runs_every_queued_task(spec: ExecutorSpec) -> None:
    ran = threading.Lock()
    count = [0]

    def tick() -> None:
        with ran:
            count[0] += 1

    async def slow_tick() -> None:
        for _ in range(3):
            await zuki.yield_now()
        tick()

    ex = spec.make()
    handles = [ex.spawn(tick) for _ in range(500)]
    handles += [ex.spawn(slow_tick()) for _ in range(500)]
    ex.shutdown(wait=True)
    assert count[0] == 1000
    assert all(h.done() and not h.cancelled() for h in handles)


@guarded()
def test_metrics_count_what_ran(spec: ExecutorSpec) -> None:
    n = 300
    with spec.make() as ex:
        for h in [ex.spawn(lambda: None) for _ in range(n)]:
            h.result(timeout=WAIT)
        snapshot = ex.metrics()
    assert snapshot.tasks_polled == n
    if hasattr(snapshot, "workers"):
        assert sum(w.tasks_polled for w in snapshot.workers) == n


# --------------------------------------------------------------------------------------
# SingleThreadedExecutor extras
# --------------------------------------------------------------------------------------


@guarded()
def test_single_threaded_priorities() -> None:
    from helpers import Blockers

    order: list[str] = []
    blockers = Blockers()
    with zuki.SingleThreadedExecutor(config=zuki.ExecutorConfig(park_timeout=None)) as ex:
        blockers.start(ex, 1)
        handles = []
        for name in ("low", "normal", "high", "low", "high", "normal"):
            handles.append(ex.spawn(lambda name=name: order.append(name), priority=name))
        handles.append(ex.spawn(lambda: order.append("default")))
        blockers.release()
        for h in handles:
            h.result(timeout=WAIT)
    assert order == ["high", "high", "normal", "normal", "default", "low", "low"]


@guarded()
def test_single_threaded_runs_every_task_on_one_thread() -> None:
    with zuki.SingleThreadedExecutor() as ex:
        idents = {ex.submit(threading.get_ident).result(timeout=WAIT) for _ in range(50)}
        idents |= set(ex.map(lambda _: threading.get_ident(), range(50)))
    assert len(idents) == 1
    assert threading.get_ident() not in idents
