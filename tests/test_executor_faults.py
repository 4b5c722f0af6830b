"""Faults and bad input, black-box: exceptions in tasks, KeyboardInterrupt and SystemExit,
failing thread starts, shutdown with queued and suspended work, wakes after shutdown,
interpreter exit, and executor create/destroy leaks.

Same executor variants as ``test_executor_api.py``; plain ``def`` tests only.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
import warnings
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    EXECUTOR_SPECS,
    FREE_THREADED,
    WAIT,
    WS_SPECS,
    Blockers,
    ExecutorSpec,
    Gate,
    cancelled_errors,
    guarded,
    hang_dump_fd,  # noqa: F401  (autouse fixture: hang dumps reach the real stderr)
    spec_params,
    wait_until,
)

import zuki

ZUKI_PARENT = Path(zuki.__file__).resolve().parent.parent


@pytest.fixture(params=spec_params(EXECUTOR_SPECS))
def spec(request: pytest.FixtureRequest) -> ExecutorSpec:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=spec_params(WS_SPECS))
def ws_spec(request: pytest.FixtureRequest) -> ExecutorSpec:
    return request.param  # type: ignore[no-any-return]


# --------------------------------------------------------------------------------------
# exceptions inside tasks
# --------------------------------------------------------------------------------------


@guarded()
def test_failing_tasks_leave_the_worker_running(spec: ExecutorSpec) -> None:
    def fail(i: int) -> None:
        raise ValueError(i)

    async def fail_later(i: int) -> None:
        await zuki.yield_now()
        raise ValueError(i)

    with spec.make() as ex:
        handles = []
        for i in range(200):
            handles.append(ex.spawn(lambda i=i: fail(i)))
            handles.append(ex.spawn(fail_later(i)))
            handles.append(ex.spawn(lambda i=i: i))
        for i in range(200):
            for h in handles[3 * i : 3 * i + 2]:
                error = h.exception(timeout=WAIT)
                assert isinstance(error, ValueError)
                assert error.args == (i,)
            assert handles[3 * i + 2].result(timeout=WAIT) == i
        # The pool is still whole afterwards.
        assert list(ex.map(abs, range(-50, 0))) == list(range(50, 0, -1))


class ExplodingFuture(zuki.Future):
    """A leaf future whose poll raises on its second call."""

    def __init__(self) -> None:
        self.polls = 0

    def poll(self, cx: Any) -> Any:
        self.polls += 1
        if self.polls == 2:
            raise OSError("poll failed")
        cx.waker.wake_by_ref()
        return zuki.Poll.PENDING


@guarded()
def test_exception_from_a_leaf_future_poll(spec: ExecutorSpec) -> None:
    async def awaiting() -> None:
        await ExplodingFuture()

    with spec.make() as ex:
        direct = ex.spawn(ExplodingFuture())
        nested = ex.spawn(awaiting())
        for handle in (direct, nested):
            with pytest.raises(OSError, match="poll failed"):
                handle.result(timeout=WAIT)
        assert ex.submit(int, "5").result(timeout=WAIT) == 5


@guarded()
def test_exception_in_done_callback_does_not_break_the_pool(spec: ExecutorSpec) -> None:
    def bad_callback(_: Any) -> None:
        raise RuntimeError("callback failed")

    with spec.make() as ex:
        gate = Gate()
        handle = ex.spawn(gate)
        handle.add_done_callback(bad_callback)
        gate.open("fine")
        # The task's own result is unaffected, and so is every later task.
        assert handle.result(timeout=WAIT) == "fine"
        assert [ex.submit(pow, 2, i).result(timeout=WAIT) for i in range(20)] == [
            2**i for i in range(20)
        ]


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
@guarded()
def test_base_exceptions_reraised_in_the_waiter(spec: ExecutorSpec, exc_type: type) -> None:
    def raise_it() -> None:
        raise exc_type("from a task")

    async def raise_later() -> None:
        await zuki.yield_now()
        raise exc_type("from a coroutine")

    with spec.make() as ex:
        with pytest.raises(exc_type):
            ex.spawn(raise_it).result(timeout=WAIT)
        with pytest.raises(exc_type):
            ex.submit(raise_it).result(timeout=WAIT)
        with pytest.raises(exc_type):
            ex.spawn(raise_later()).result(timeout=WAIT)
        with pytest.raises(exc_type):
            ex.block_on(raise_later())
        # Not swallowed, and not fatal to the worker either: the pool goes on.
        assert [ex.submit(abs, -i).result(timeout=WAIT) for i in range(10)] == list(range(10))


@guarded()
def test_base_exception_through_zuki_run() -> None:
    async def main() -> None:
        await zuki.spawn(_raise_keyboard_interrupt())

    with pytest.raises(KeyboardInterrupt):
        zuki.run(main(), workers=2)


async def _raise_keyboard_interrupt() -> None:
    raise KeyboardInterrupt


# --------------------------------------------------------------------------------------
# failing thread starts
# --------------------------------------------------------------------------------------


class FlakyThreadFactory:
    """A ``thread_factory`` that builds ``allowed`` threads and then fails."""

    def __init__(self, allowed: int) -> None:
        self.allowed = allowed
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> threading.Thread:
        with self.lock:
            self.calls += 1
            if self.calls > self.allowed:
                raise RuntimeError("can't start new thread (injected)")
        return threading.Thread(*args, **kwargs)


def _zuki_warnings(records: list[warnings.WarningMessage]) -> list[warnings.WarningMessage]:
    return [w for w in records if "zuki" in w.filename or "thread" in str(w.message).lower()]


@pytest.mark.thread_unsafe(reason="counts process-wide warnings")
@guarded()
@pytest.mark.parametrize("backend", ["lockfree", "builtin"])
def test_failed_thread_start_runs_on_the_threads_it_has(backend: str) -> None:
    factory = FlakyThreadFactory(allowed=1)
    config = zuki.ExecutorConfig(
        workers=4, queue_backend=backend, park_timeout=None, thread_factory=factory
    )
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        with zuki.WorkStealingExecutor(config=config) as ex:
            # Enough parallel work that a lazily growing pool tries to start every worker.
            results = list(ex.map(_spin_and_return, range(200)))
            assert results == list(range(200))
            barrier_done = [ex.submit(time.sleep, 0.01) for _ in range(8)]
            for f in barrier_done:
                f.result(timeout=WAIT)
            snapshot = ex.metrics()
    assert factory.calls >= 2, "the pool never tried to start a second worker"
    failures = _zuki_warnings(records)
    assert len(failures) == 1, [str(w.message) for w in records]
    assert _failed_thread_starts(snapshot) >= 1


def _spin_and_return(i: int) -> int:
    total = 0
    for k in range(2000):
        total += k
    return i


def _failed_thread_starts(snapshot: Any) -> int:
    for name in ("failed_thread_starts", "thread_start_failures", "thread_spawn_failures"):
        if hasattr(snapshot, name):
            return int(getattr(snapshot, name))
    raise AssertionError(f"metrics() snapshot has no failed-thread-start counter: {snapshot!r}")


@pytest.mark.thread_unsafe(reason="counts process-wide warnings")
@pytest.mark.parametrize("backend", ["lockfree", "builtin"])
def test_zero_threads_is_an_error_at_construction(backend: str) -> None:
    config = zuki.ExecutorConfig(
        workers=2, queue_backend=backend, park_timeout=None, thread_factory=FlakyThreadFactory(0)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(zuki.ExecutorError):
            zuki.WorkStealingExecutor(config=config)


# --------------------------------------------------------------------------------------
# shutdown with queued and suspended work
# --------------------------------------------------------------------------------------


@guarded()
def test_shutdown_cancel_futures(spec: ExecutorSpec) -> None:
    gate = Gate()
    thrown: list[BaseException] = []
    ran = threading.Event()

    async def suspended() -> None:
        try:
            await gate
        except BaseException as e:
            thrown.append(e)
            raise

    ex = spec.make()
    blockers = Blockers()
    waiting = ex.spawn(suspended())
    assert gate.polled.wait(WAIT)
    blockers.start(ex, spec.workers)
    queued = [ex.spawn(ran.set) for _ in range(50)]
    queued_coros = [ex.spawn(_set_later(ran)) for _ in range(50)]
    stopper = threading.Thread(target=ex.shutdown, kwargs={"wait": True, "cancel_futures": True})
    stopper.start()
    # Release the workers only once shutdown has started (spawn is refused) and has had a
    # moment to cancel the queue, so that no queued task can legitimately run first.
    wait_until(lambda: _refuses_spawn(ex), what="shutdown to close the executor")
    deadline = time.monotonic() + 2
    while not all(h.done() for h in queued + queued_coros) and time.monotonic() < deadline:
        time.sleep(0.005)
    blockers.release()
    stopper.join(WAIT)
    assert not stopper.is_alive(), "shutdown(cancel_futures=True) did not return"

    assert not ran.is_set(), "a queued task ran although shutdown cancelled it"
    for handle in queued + queued_coros:
        assert handle.done()
        assert handle.cancelled()
        with pytest.raises(cancelled_errors()):
            handle.result(timeout=0)
    assert waiting.done() and waiting.cancelled()
    assert len(thrown) == 1 and isinstance(thrown[0], zuki.Cancelled)
    for handle in blockers.handles:
        assert handle.result(timeout=0) is None
    # A wake after shutdown is harmless.
    gate.open("too late")
    assert waiting.cancelled()


def _refuses_spawn(ex: Any) -> bool:
    try:
        ex.spawn(int).cancel()
    except zuki.ExecutorShutdownError:
        return True
    return False


async def _set_later(event: threading.Event) -> None:
    await zuki.yield_now()
    event.set()


@guarded()
def test_shutdown_without_wait_returns_at_once(spec: ExecutorSpec) -> None:
    blockers = Blockers()
    ex = spec.make()
    blockers.start(ex, spec.workers)
    queued = [ex.spawn(lambda i=i: i) for i in range(20)]
    start = time.monotonic()
    ex.shutdown(wait=False)
    assert time.monotonic() - start < 5
    blockers.release()
    # Queued work still runs to completion (as with ThreadPoolExecutor).
    assert [h.result(timeout=WAIT) for h in queued] == list(range(20))
    ex.shutdown(wait=True)


@guarded()
def test_wake_after_shutdown_is_harmless(spec: ExecutorSpec) -> None:
    gate = Gate()
    ex = spec.make()
    handle = ex.spawn(gate)
    assert gate.polled.wait(WAIT)
    waker = gate.waker
    ex.shutdown(wait=True, cancel_futures=True)
    assert handle.done()
    waker.wake_by_ref()
    waker.clone().wake()
    waker.wake()
    gate.open("after")
    assert handle.done()
    with pytest.raises(zuki.ExecutorShutdownError):
        ex.spawn(lambda: None)


@guarded()
def test_wake_during_shutdown_completes_the_task(spec: ExecutorSpec) -> None:
    gates = [Gate() for _ in range(20)]
    ex = spec.make()
    handles = [ex.spawn(g) for g in gates]
    for g in gates:
        assert g.polled.wait(WAIT)
    stopper = threading.Thread(target=ex.shutdown, kwargs={"wait": True})
    stopper.start()
    for i, g in enumerate(gates):
        g.open(i)
    stopper.join(WAIT)
    assert not stopper.is_alive()
    for i, h in enumerate(handles):
        assert h.done()
        if not h.cancelled():
            assert h.result() == i


@guarded()
def test_shutdown_from_inside_a_task_does_not_deadlock(spec: ExecutorSpec) -> None:
    ex = spec.make()

    def stop_from_inside() -> str:
        try:
            ex.shutdown(wait=True)
        except Exception as e:
            return type(e).__name__
        return "returned"

    handle = ex.spawn(stop_from_inside)
    assert handle.result(timeout=WAIT) in {"returned", "ExecutorError", "RuntimeError"} or (
        isinstance(handle.exception(), Exception)
    )
    ex.shutdown(wait=True)


# --------------------------------------------------------------------------------------
# leaks
# --------------------------------------------------------------------------------------


def _settle_threads(baseline: int) -> int:
    deadline = time.monotonic() + WAIT
    while threading.active_count() > baseline and time.monotonic() < deadline:
        time.sleep(0.01)
    return threading.active_count()


@pytest.mark.thread_unsafe(reason="measures process-wide threads and memory")
@guarded(180)
@pytest.mark.parametrize("spec", spec_params([EXECUTOR_SPECS[0], *WS_SPECS[2::3]]))
def test_create_and_shutdown_1000_executors_leaks_nothing(spec: ExecutorSpec) -> None:
    """No thread and no memory survives an executor (tokio's drop_threadpool test)."""

    def cycle(n: int) -> None:
        for i in range(n):
            with spec.make() as ex:
                if i % 25 == 0:  # now and then, work that makes the pool start every thread
                    for h in ex.spawn_batch([lambda: _spin_and_return(0)] * 8):
                        h.result(timeout=WAIT)

    baseline_threads = threading.active_count()
    cycle(50)  # warm caches, interned strings, lazily built module state
    assert _settle_threads(baseline_threads) == baseline_threads
    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.take_snapshot()
        cycle(1000)
        threads_after = _settle_threads(baseline_threads)
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    assert threads_after == baseline_threads, threading.enumerate()
    stats = after.compare_to(before, "lineno")
    growth = sum(s.size_diff for s in stats)
    # One leaked object per executor would already be tens of KiB; allow some noise.
    assert growth < 200 * 1024, "\n".join(str(s) for s in stats[:10])


# --------------------------------------------------------------------------------------
# interpreter exit and the GIL
# --------------------------------------------------------------------------------------


def _run_script(source: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run ``source`` in a fresh interpreter that imports the same zuki as this one."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source)],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ZUKI_PARENT,
    )


@pytest.mark.parametrize("kind", ["single", "ws"])
def test_queued_work_runs_before_interpreter_exit(kind: str) -> None:
    make = "zuki.SingleThreadedExecutor()" if kind == "single" else "zuki.WorkStealingExecutor(2)"
    result = _run_script(
        f"""
        import os, time, zuki
        ex = {make}
        def work(i):
            time.sleep(0.001)
            os.write(1, f"done {{i}}\\n".encode())
        for i in range(50):
            ex.spawn(lambda i=i: work(i))
        """
    )
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.split("\n")[:-1]) == sorted(f"done {i}" for i in range(50))


@pytest.mark.parametrize("kind", ["single", "ws"])
def test_shutdown_without_wait_never_hangs_the_exit(kind: str) -> None:
    make = "zuki.SingleThreadedExecutor()" if kind == "single" else "zuki.WorkStealingExecutor(2)"
    result = _run_script(
        f"""
        import threading, zuki

        class Never(zuki.Future):
            def poll(self, cx):
                self.waker = cx.waker.clone()
                return zuki.Poll.PENDING

        ex = {make}
        ex.spawn(Never())
        async def forever():
            await Never()
        ex.spawn(forever())
        handles = [ex.spawn(lambda i=i: i) for i in range(100)]
        ex.shutdown(wait=False)
        print("exiting", flush=True)
        """,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "exiting\n"


@pytest.mark.skipif(not FREE_THREADED, reason="only meaningful on a free-threaded build")
def test_importing_zuki_keeps_the_gil_disabled() -> None:
    result = _run_script(
        """
        import sys, warnings
        warnings.simplefilter("error")
        import zuki
        with zuki.WorkStealingExecutor(2) as ex:
            ex.submit(int).result()
        print(sys._is_gil_enabled())
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_wait_until_helper_sanity() -> None:
    # Guard against a broken helper silently passing every test that relies on it.
    box = [0]
    threading.Timer(0.01, lambda: box.__setitem__(0, 1)).start()
    wait_until(lambda: box[0] == 1, timeout=5)
