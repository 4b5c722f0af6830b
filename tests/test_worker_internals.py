"""White-box tests of the worker pool: config validation, idle bookkeeping and parking,
lazy thread starts and failures, the LIFO slot, the global-queue interval, overflow and
stealing, helping and its depth cap, metrics, and the single-threaded executor's
priorities.

These look at ``executor._pool`` / ``executor._runner`` internals on purpose; the
black-box suite (``test_executor_*.py``) checks the same behaviour through the public API
only. Every executor here runs with ``park_timeout=None``, so a lost wake-up hangs (and
pytest-timeout dumps the stacks) instead of hiding behind a timed park.
"""

from __future__ import annotations

import contextvars
import dataclasses
import random
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import pytest

import zuki
from zuki.runtime.errors import ExecutorConfigError, ThreadSpawnError, ThreadStartWarning
from zuki.runtime.executor import ExecutorConfig, make_executor
from zuki.runtime.metrics import COUNTERS, ExecutorMetrics, WorkerMetrics
from zuki.runtime.single_threaded_executor import Priority, SingleThreadedExecutor
from zuki.runtime.task import CallTask
from zuki.runtime.work_stealing_executor import WorkStealingExecutor
from zuki.runtime.worker_thread import GLOBAL_QUEUE_INTERVAL, MAX_HELP_DEPTH

WAIT = 30.0
BACKENDS = ["builtin", "lockfree"]


def make(workers: int = 2, backend: str = "builtin", **options: Any) -> WorkStealingExecutor:
    config = ExecutorConfig(workers=workers, park_timeout=None, queue_backend=backend, **options)
    return WorkStealingExecutor(config=config)


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.001)


def all_parked(ex: WorkStealingExecutor) -> bool:
    pool = ex._pool
    with pool.idle_lock:
        return (
            pool.num_unparked == 0
            and pool.num_searching == 0
            and len(pool.sleepers) + len(pool.retired) == pool.spawned
        )


# --------------------------------------------------------------------------------------
# ExecutorConfig
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("workers", 0),
        ("workers", -1),
        ("workers", 1.5),
        ("workers", True),
        ("max_workers", 1),
        ("thread_stack_size", 1024),
        ("local_queue_capacity", 0),
        ("local_queue_capacity", 100),
        ("global_queue_capacity", 0),
        ("queue_backend", "nope"),
        ("park_timeout", 0),
        ("park_timeout", -1.0),
        ("park_timeout", float("nan")),
        ("rng_seed", "seed"),
        ("thread_factory", 42),
        ("thread_name_prefix", None),
    ],
)
def test_config_rejects_each_bad_field_naming_it(field: str, value: Any) -> None:
    options: dict[str, Any] = {"workers": 4}
    options[field] = value
    with pytest.raises(ExecutorConfigError, match=field) as info:
        ExecutorConfig(**options)
    assert isinstance(info.value, ValueError) and isinstance(info.value, zuki.ExecutorError)


def test_config_defaults_are_resolved_and_frozen() -> None:
    config = ExecutorConfig()
    assert config.workers is not None and config.workers >= 1
    assert config.max_workers is not None and config.max_workers >= config.workers
    assert config.local_queue_capacity == 256 and config.queue_backend in BACKENDS
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.workers = 3  # type: ignore[misc]
    assert dataclasses.replace(config, workers=3).workers == 3


def test_max_workers_argument_overrides_config() -> None:
    with WorkStealingExecutor(3, config=ExecutorConfig(workers=1, park_timeout=None)) as ex:
        assert ex.config.workers == 3 and ex.config.park_timeout is None
    with pytest.raises(ValueError, match="max_workers must be greater than 0"):
        WorkStealingExecutor(0)


def test_make_executor_kinds() -> None:
    config = ExecutorConfig(workers=1, park_timeout=None)
    with make_executor(config) as ws:
        assert isinstance(ws, WorkStealingExecutor)
    with make_executor(config, "single_threaded") as st:
        assert isinstance(st, SingleThreadedExecutor)
    with pytest.raises(ExecutorConfigError, match="kind"):
        make_executor(config, "bogus")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# idle bookkeeping, lazy threads, thread start failures
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_threads_start_lazily_and_park_when_idle(backend: str) -> None:
    with make(4, backend) as ex:
        wait_until(lambda: all_parked(ex), "the first worker to park")
        assert ex._pool.spawned == 1
        release = threading.Event()
        started = threading.Semaphore(0)

        def block() -> None:
            started.release()
            release.wait(WAIT)

        handles = [ex.spawn(block) for _ in range(4)]
        for _ in range(4):
            assert started.acquire(timeout=WAIT)
        assert ex._pool.spawned == 4
        release.set()
        for h in handles:
            h.result(timeout=WAIT)
        wait_until(lambda: all_parked(ex), "all four workers to park")
        assert ex.metrics().threads_started == 4


@pytest.mark.parametrize("backend", BACKENDS)
def test_blocking_tasks_each_get_a_worker(backend: str) -> None:
    """N tasks that block their thread, spawned from outside a lazily growing pool of N,
    all start: work queued behind a blocked worker is found by a woken one (the chain
    wake of the last searcher must look at every queue, not only its own)."""
    for _ in range(30):
        with make(4, backend) as ex:
            release = threading.Event()
            started = threading.Semaphore(0)

            def block(release: threading.Event = release, s: threading.Semaphore = started) -> None:
                s.release()
                release.wait(WAIT)

            handles = [ex.spawn(block) for _ in range(4)]
            try:
                for _ in range(4):
                    assert started.acquire(timeout=WAIT), "a blocking task never started"
            finally:
                release.set()
            for h in handles:
                h.result(timeout=WAIT)


@pytest.mark.thread_unsafe(reason="records process-wide warnings")
def test_failed_thread_start_is_counted_warned_once_and_survived() -> None:
    calls = [0]

    def factory(**kwargs: Any) -> threading.Thread:
        calls[0] += 1
        if calls[0] > 1:
            raise RuntimeError("can't start new thread (test)")
        return threading.Thread(**kwargs)

    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        with make(4, thread_factory=factory) as ex:
            assert sum(ex.map(abs, range(-100, 0), chunksize=5)) == sum(range(1, 101))
            for _ in range(5):
                ex.spawn_batch([time.sleep] * 0)
                ex.submit(int).result(timeout=WAIT)
            snapshot = ex.metrics()
    ours = [r for r in records if issubclass(r.category, ThreadStartWarning)]
    assert len(ours) == 1 and "thread" in str(ours[0].message)
    assert snapshot.failed_thread_starts >= 1 and snapshot.threads_started == 1


def test_no_thread_at_all_is_an_error_at_construction() -> None:
    def factory(**kwargs: Any) -> threading.Thread:
        raise RuntimeError("no threads today")

    with pytest.raises(ThreadSpawnError):
        make(2, thread_factory=factory)
    with pytest.raises(ThreadSpawnError):
        SingleThreadedExecutor(config=ExecutorConfig(workers=1, thread_factory=factory))


@pytest.mark.thread_unsafe(reason="threading.stack_size is process-wide")
def test_thread_stack_size_and_names() -> None:
    with make(1, thread_stack_size=256 * 1024, thread_name_prefix="custom") as ex:
        name = ex.submit(lambda: threading.current_thread().name).result(timeout=WAIT)
    assert name.startswith("custom-")
    assert threading.stack_size() == 0  # restored


# --------------------------------------------------------------------------------------
# scheduling policy
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_global_queue_interval_beats_a_self_respawning_task(backend: str) -> None:
    """One worker; a task respawns itself into the LIFO-ordered local queue forever. A
    task in the global queue still runs within a few global-queue intervals."""
    with make(1, backend) as ex:
        outside_ran = threading.Event()
        spins = [0]

        def respawn() -> None:
            spins[0] += 1
            if not outside_ran.is_set() and spins[0] < 100_000:
                zuki.spawn(respawn)

        started = threading.Event()

        def first() -> None:
            started.set()
            respawn()

        ex.spawn(first)
        assert started.wait(WAIT)
        before = spins[0]
        ex.spawn(outside_ran.set)
        assert outside_ran.wait(WAIT)
        assert spins[0] - before <= 2 * GLOBAL_QUEUE_INTERVAL


@pytest.mark.parametrize("backend", BACKENDS)
def test_wake_from_a_worker_uses_the_lifo_slot(backend: str) -> None:
    with make(1, backend) as ex:

        async def ping_pong() -> int:
            signals = [Signal(), Signal()]
            count = [0]

            async def player(mine: Signal, other: Signal) -> None:
                for _ in range(50):
                    await mine
                    count[0] += 1
                    other.notify()

            a = zuki.spawn(player(signals[0], signals[1]))
            b = zuki.spawn(player(signals[1], signals[0]))
            signals[0].notify()
            await a
            await b
            return count[0]

        assert ex.block_on(ping_pong()) == 100
        snapshot = ex.metrics()
    assert snapshot.lifo_pops > 0


class Signal(zuki.Future):  # type: ignore[type-arg]
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.token = False
        self.waker: Any = None

    def poll(self, cx: Any) -> Any:
        with self.lock:
            if self.token:
                self.token = False
                return zuki.Poll.ready(None)
            self.waker = cx.waker.clone()
            return zuki.Poll.PENDING

    def notify(self) -> None:
        with self.lock:
            self.token = True
            waker, self.waker = self.waker, None
        if waker is not None:
            waker.wake()


@pytest.mark.parametrize("backend", BACKENDS)
def test_local_overflow_goes_to_the_global_queue(backend: str) -> None:
    with make(1, backend, local_queue_capacity=4) as ex:
        ran = [0]
        lock = threading.Lock()

        def child() -> None:
            with lock:
                ran[0] += 1

        def parent() -> int:
            for _ in range(500):
                zuki.spawn(child)
            return 0

        ex.submit(parent).result(timeout=WAIT)
    assert ran[0] == 500
    snapshot = ex.metrics()
    assert snapshot.overflows > 0 and snapshot.global_pops > 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_idle_worker_steals(backend: str) -> None:
    with make(2, backend) as ex:
        barrier = threading.Barrier(2)

        def meet() -> str:
            barrier.wait(WAIT)  # needs a second worker to take the sibling
            return threading.current_thread().name

        def parent() -> set[str]:
            hs = [zuki.spawn(meet), zuki.spawn(meet)]
            return {h.result(timeout=WAIT) for h in hs}

        names = ex.submit(parent).result(timeout=WAIT)
        snapshot = ex.metrics()
    assert len(names) == 2
    assert snapshot.steal_successes >= 1 and snapshot.stolen >= 1


def test_seeded_rngs_are_deterministic() -> None:
    with make(2, rng_seed=1234) as a, make(2, rng_seed=1234) as b:
        wa, wb = a._pool.workers[0], b._pool.workers[0]
        assert [wa.rng.random() for _ in range(5)] == [wb.rng.random() for _ in range(5)]
    assert isinstance(wa.rng, random.Random)


# --------------------------------------------------------------------------------------
# helping while waiting
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_nested_waits_with_one_worker_help_instead_of_blocking(backend: str) -> None:
    with make(1, backend) as ex:

        def chain(n: int) -> int:
            if n == 0:
                return 0
            return ex.submit(chain, n - 1).result() + 1

        assert ex.submit(chain, 20).result(timeout=WAIT) == 20
        assert ex._pool.spawned == 1  # no spare thread was needed


def test_depth_cap_compensates_with_a_spare_thread() -> None:
    with make(1) as ex:

        def chain(n: int) -> int:
            if n == 0:
                return 0
            return ex.submit(chain, n - 1).result() + 1

        depth = MAX_HELP_DEPTH + 8
        assert ex.submit(chain, depth).result(timeout=WAIT) == depth
        assert ex.metrics().threads_started >= 2


def test_join_runs_the_right_side_here_when_nobody_steals_it() -> None:
    with make(1) as ex:

        def both() -> tuple[str, str]:
            return zuki.join(
                lambda: threading.current_thread().name,
                lambda: threading.current_thread().name,
            )

        a, b = ex.submit(both).result(timeout=WAIT)
    assert a == b


def test_helper_parks_and_is_woken_by_completion_from_outside() -> None:
    gate = threading.Event()
    with make(1) as ex:
        outside = make(1)
        try:
            foreign = outside.spawn(lambda: gate.wait(WAIT))

            def waits() -> bool:
                return bool(foreign.result())

            handle = ex.submit(waits)
            wait_until(lambda: ex._pool.helpers_parked == 1, "the worker to park helping")
            gate.set()
            assert handle.result(timeout=WAIT) is True
        finally:
            outside.shutdown()


def test_helper_does_not_miss_a_completion_racing_its_park() -> None:
    """The handle finishes after the helper registered on it but before the helper
    joined the sleepers (its completion entry then finds nobody parked): the helper must
    notice instead of sleeping forever (park_timeout is None)."""
    foreign: CallTask[int] = CallTask(lambda: 5, (), contextvars.copy_context())
    register = foreign.register

    def register_then_complete(entry: Callable[[], object]) -> bool:
        added = register(entry)
        finisher = threading.Thread(target=foreign.run, args=(None,))
        finisher.start()
        finisher.join(WAIT)
        return added

    foreign.register = register_then_complete  # type: ignore[method-assign]
    with make(1) as ex:
        assert ex.submit(foreign.result).result(timeout=WAIT) == 5


def test_shutdown_wait_from_a_worker_raises_but_shuts_down() -> None:
    ex = make(2)

    def stop() -> None:
        ex.shutdown(wait=True)

    with pytest.raises(RuntimeError, match="worker thread"):
        ex.submit(stop).result(timeout=WAIT)
    ex.shutdown(wait=True)
    assert ex._pool.terminate
    with pytest.raises(zuki.ExecutorShutdownError):
        ex.submit(int)


# --------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------


def test_metrics_rows_sum_to_totals() -> None:
    with make(2) as ex:
        list(ex.map(abs, range(1000)))
        snapshot = ex.metrics()
    assert isinstance(snapshot, ExecutorMetrics)
    assert snapshot.tasks_polled == 1000
    for name in COUNTERS:
        assert getattr(snapshot, name) == sum(getattr(w, name) for w in snapshot.workers)
    totals = snapshot.totals
    assert isinstance(totals, WorkerMetrics) and totals.tasks_polled == 1000
    data = snapshot.as_dict()
    assert data["tasks_polled"] == 1000 and isinstance(data["workers"], list)
    assert (
        snapshot.local_pops + snapshot.global_pops + snapshot.lifo_pops + (snapshot.stolen) >= 1000
    )


def test_metrics_count_parks() -> None:
    with make(1) as ex:
        for _ in range(3):
            ex.submit(int).result(timeout=WAIT)
            wait_until(lambda: all_parked(ex), "the worker to park")
        assert ex.metrics().parks >= 3


# --------------------------------------------------------------------------------------
# the single-threaded executor
# --------------------------------------------------------------------------------------


def test_single_threaded_priorities_run_high_first() -> None:
    order: list[str] = []
    gate = threading.Event()
    with SingleThreadedExecutor(config=ExecutorConfig(workers=1, park_timeout=None)) as ex:
        blocker = ex.spawn(lambda: gate.wait(WAIT))
        ex.spawn(lambda: order.append("low"), priority="low")
        ex.spawn(lambda: order.append("normal"))
        ex.spawn(lambda: order.append("high"), priority=Priority.HIGH)
        ex.spawn_batch([lambda: order.append("high2")], priority="high")
        gate.set()
        blocker.result(timeout=WAIT)
    assert order == ["high", "high2", "normal", "low"]
    with pytest.raises(ValueError, match="priority"):
        SingleThreadedExecutor().spawn(int, priority="urgent")


def test_single_threaded_runs_everything_on_one_thread() -> None:
    with SingleThreadedExecutor() as ex:

        async def child() -> str:
            await zuki.yield_now()
            return threading.current_thread().name

        async def parent() -> set[str]:
            names = {threading.current_thread().name}
            for h in [zuki.spawn(child()) for _ in range(10)]:
                names.add(await h)
            names.add(ex.submit(lambda: threading.current_thread().name).result())
            return names

        assert len(ex.block_on(parent())) == 1


def test_single_threaded_nested_submit_and_wait_helps() -> None:
    with SingleThreadedExecutor() as ex:

        def fib(n: int) -> int:
            if n < 2:
                return n
            a = ex.submit(fib, n - 1)
            b = ex.submit(fib, n - 2)
            return a.result() + b.result()

        assert ex.submit(fib, 12).result(timeout=WAIT) == 144
        assert ex.metrics().tasks_polled > 100
