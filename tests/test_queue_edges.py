"""Edges of the queues: ``None`` refused by a bounded global queue, the segment map a
test may instrument, and stolen items that wrap around the thief's ring.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers import drain, queue_backend  # noqa: F401  (the fixture ``backend``)

from zuki.concurrent.errors import QueueFull
from zuki.concurrent.global_queue import GlobalQueue
from zuki.concurrent.local_queue import LocalQueue


def test_a_bounded_queue_refuses_none_and_keeps_its_room(backend: str) -> None:
    q: GlobalQueue[int | None] = GlobalQueue(2, backend=backend)
    with pytest.raises(TypeError, match="None cannot be pushed"):
        q.push(None)
    with pytest.raises(TypeError, match="None cannot be pushed"):
        q.push_batch([1, None])
    assert len(q) == 0
    q.push_batch([1, 2])  # both slots are still free
    with pytest.raises(QueueFull):
        q.push(3)
    assert q.try_pop_batch(5) == [1, 2]


class CountingDict(dict):  # type: ignore[type-arg]
    """A segment map that counts lookups."""

    def __init__(self) -> None:
        super().__init__()
        self.gets = 0

    def get(self, key: Any, default: Any = None) -> Any:
        self.gets += 1
        return super().get(key, default)


def test_the_segment_map_can_be_instrumented_while_empty() -> None:
    q: GlobalQueue[int] = GlobalQueue(backend="lockfree")
    original = q._segments  # type: ignore[attr-defined]
    assert isinstance(original, dict)
    instrumented = CountingDict()
    q._segments = instrumented  # type: ignore[attr-defined]
    assert q._segments is instrumented  # type: ignore[attr-defined]
    q.push_batch(list(range(1, 101)))
    assert [q.try_pop() for _ in range(100)] == list(range(1, 101))
    assert instrumented.gets > 0  # the rebuilt operations go through the new map


def test_stolen_items_wrap_around_the_thiefs_ring(backend: str) -> None:
    thief: LocalQueue[int] = LocalQueue(8, backend=backend)
    for i in range(100, 107):  # bottom moves to 7
        thief.push(i)
    sink: LocalQueue[int] = LocalQueue(8, backend=backend)
    assert thief.steal_into(sink) == 103  # 100..103 leave: top 4
    assert thief.steal_into(LocalQueue(8, backend=backend)) == 105  # 104, 105: top 6
    assert len(thief) == 1  # only 106, in the last slot
    victim: LocalQueue[int] = LocalQueue(8, backend=backend)
    for i in range(6):
        victim.push(i)
    # 0, 1, 2 move: 2 is returned, 0 and 1 go to slots 7 and 0 of the thief's ring
    assert victim.steal_into(thief) == 2
    assert drain(thief) == [1, 0, 106]
    assert drain(victim) == [5, 4, 3]
