"""The queues under real threads: exactly-once delivery, with a hang timeout.

The scenarios are ``stress/queues.py``'s (the script runs them with 1,000,000 items);
here they run with suite-sized counts. Each scenario starts its own threads and bounds
every join: a run that stops making progress dumps all stacks and fails. Those tests are
``thread_unsafe`` for pytest-run-parallel (they are already parallel). The last test is
the other way round: it is meant for ``--parallel-threads=N``, where N copies of it share
one GlobalQueue per backend.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from zuki.concurrent.global_queue import GlobalQueue

pytestmark = pytest.mark.stress


def _load_scenarios() -> Any:
    path = Path(__file__).resolve().parent.parent / "stress" / "queues.py"
    spec = importlib.util.spec_from_file_location("zuki_stress_queues", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


scenarios = _load_scenarios()

BACKENDS = ["lockfree", "builtin"]
TIMEOUT = 90.0


@pytest.mark.thread_unsafe
@pytest.mark.parametrize("backend", BACKENDS)
def test_local_queues_with_stealing_exactly_once(backend: str) -> None:
    scenarios.run_local(200_000, workers=3, backend=backend, capacity=256, timeout=TIMEOUT)


@pytest.mark.thread_unsafe
@pytest.mark.parametrize("backend", BACKENDS)
def test_local_queues_small_capacity_overflow_exactly_once(backend: str) -> None:
    scenarios.run_local(50_000, workers=4, backend=backend, capacity=4, seed=1, timeout=TIMEOUT)


@pytest.mark.thread_unsafe
@pytest.mark.parametrize("n", [1, 2, 4, 8])
@pytest.mark.parametrize("backend", BACKENDS)
def test_global_queue_mpmc_exactly_once(backend: str, n: int) -> None:
    scenarios.run_global(40_000, producers=n, consumers=n, backend=backend, timeout=TIMEOUT)


@pytest.mark.thread_unsafe
@pytest.mark.parametrize(("producers", "consumers"), [(1, 3), (3, 1)])
def test_global_queue_tiny_segments_exactly_once(producers: int, consumers: int) -> None:
    # 4-slot segments: creation races between producers, retirement and slab recycling
    # by consumers happen every few items.
    scenarios.run_global(
        20_000,
        producers=producers,
        consumers=consumers,
        segment_shift=2,
        seed=2,
        timeout=TIMEOUT,
    )


def test_stress_failure_is_detected() -> None:
    tally = scenarios.Tally(4)
    tally.log().extend([0, 1, 1])
    with pytest.raises(scenarios.StressFailure, match=r"2 missing .* 1 duplicated"):
        tally.verify()


# --- for pytest-run-parallel ------------------------------------------------------------

_SHARED = {backend: GlobalQueue[object](backend=backend) for backend in BACKENDS}
_OWNERS: dict[object, int] = {}


@pytest.mark.parametrize("backend", BACKENDS)
def test_shared_global_queue_across_parallel_threads(backend: str) -> None:
    """Each copy pushes 2,000 unique tokens, then takes 2,000 tokens from anyone.

    Supply equals demand, so every copy finishes unless an item is lost (then some copy
    times out); ``dict.setdefault`` (atomic) catches an item taken twice. Alone, this is a
    single-threaded round trip; under ``--parallel-threads=N`` it is an N x N MPMC test.
    """
    queue = _SHARED[backend]
    me = threading.get_ident()
    tokens = [object() for _ in range(2000)]
    for i in range(0, 2000, 100):
        queue.push(tokens[i])
        queue.push_batch(tokens[i + 1 : i + 100])
    taken: list[object] = []
    deadline = time.monotonic() + TIMEOUT
    while len(taken) < 2000:
        batch = queue.try_pop_batch(min(50, 2000 - len(taken)))
        if not batch:
            item = queue.try_pop()
            if item is None:
                assert time.monotonic() < deadline, f"{len(taken)} of 2000 taken: items lost?"
                time.sleep(0)
                continue
            batch = [item]
        for token in batch:
            assert _OWNERS.setdefault(token, me) == me, "a token was taken twice"
        taken.extend(batch)
    for token in taken:
        del _OWNERS[token]
