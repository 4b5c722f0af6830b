"""GlobalQueue: every operation on both backends, plus a Hypothesis model check.

Multi-threaded exactly-once checks live in ``test_queue_stress.py``.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import pytest
from helpers import queue_backend  # noqa: F401  (the fixture ``backend``)
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from zuki.concurrent.errors import QueueClosed, QueueError, QueueFull
from zuki.concurrent.global_queue import GlobalQueue


def tiny_segments(q: GlobalQueue[Any], shift: int = 2) -> GlobalQueue[Any]:
    """Shrink a fresh lock-free queue's segments (to 4 slots) to exercise their edges."""
    if q.backend == "lockfree":
        q._set_segment_shift(shift)  # type: ignore[attr-defined]
    return q


def test_fifo_order(backend: str) -> None:
    q: GlobalQueue[int] = GlobalQueue(backend=backend)
    for i in range(1, 11):
        q.push(i)
    assert len(q) == 10
    assert [q.try_pop() for _ in range(10)] == list(range(1, 11))
    assert q.try_pop() is None
    assert len(q) == 0


def test_isinstance_and_repr(backend: str) -> None:
    q: GlobalQueue[int] = GlobalQueue(backend=backend)
    assert isinstance(q, GlobalQueue)
    assert q.backend == backend
    assert q.capacity is None
    q.push(1)
    assert repr(q) == f"<GlobalQueue {backend} len=1 capacity=None>"
    q.close()
    assert repr(q) == f"<GlobalQueue {backend} len=1 capacity=None closed>"


@pytest.mark.parametrize("shift", [2, 10])
def test_crosses_segments(backend: str, shift: int) -> None:
    q: GlobalQueue[int] = tiny_segments(GlobalQueue(backend=backend), shift)
    for i in range(1, 3000):
        q.push(i)
    assert [q.try_pop() for _ in range(2999)] == list(range(1, 3000))
    assert q.try_pop() is None
    # Reuse of retired segments (their state slabs) must not resurrect old items.
    q.push_batch(range(5000, 5100))
    assert q.try_pop_batch(1000) == list(range(5000, 5100))
    assert q.try_pop() is None


def test_push_none_is_type_error(backend: str) -> None:
    q: GlobalQueue[int | None] = GlobalQueue(backend=backend)
    with pytest.raises(TypeError, match="None cannot be pushed"):
        q.push(None)
    with pytest.raises(TypeError, match="None cannot be pushed"):
        q.push_batch([1, None, 2])
    assert len(q) == 0
    assert q.try_pop() is None


def test_falsy_items_are_fine(backend: str) -> None:
    q: GlobalQueue[object] = GlobalQueue(backend=backend)
    q.push_batch([0, "", False, ()])
    q.push(0)
    assert q.try_pop_batch(10) == [0, "", False, (), 0]


def test_push_batch_keeps_order_and_accepts_iterables(backend: str) -> None:
    q: GlobalQueue[int] = tiny_segments(GlobalQueue(backend=backend))
    q.push(1)
    q.push_batch([2, 3, 4])
    q.push_batch(iter(range(5, 15)))
    q.push_batch(x for x in (15, 16))
    assert len(q) == 16
    assert q.try_pop_batch(100) == list(range(1, 17))


def test_batch_of_zero(backend: str) -> None:
    q: GlobalQueue[int] = GlobalQueue(backend=backend)
    q.push_batch([])
    assert len(q) == 0
    assert q.try_pop_batch(0) == []
    q.push(7)
    assert q.try_pop_batch(0) == []
    assert len(q) == 1


def test_try_pop_batch_bounds(backend: str) -> None:
    q: GlobalQueue[int] = tiny_segments(GlobalQueue(backend=backend))
    q.push_batch(range(1, 11))
    assert q.try_pop_batch(1) == [1]
    assert q.try_pop_batch(3) == [2, 3, 4]
    assert q.try_pop_batch(100) == list(range(5, 11))
    assert q.try_pop_batch(5) == []
    for bad in (-1, 1.5, "2", True):
        with pytest.raises(ValueError, match="try_pop_batch"):
            q.try_pop_batch(bad)  # type: ignore[arg-type]


def test_close_refuses_pushes_but_drains(backend: str) -> None:
    q: GlobalQueue[int] = tiny_segments(GlobalQueue(backend=backend))
    q.push_batch([1, 2, 3])
    assert not q.closed
    q.close()
    q.close()  # idempotent
    assert q.closed
    with pytest.raises(QueueClosed, match="push on a closed GlobalQueue"):
        q.push(4)
    with pytest.raises(QueueClosed, match="push on a closed GlobalQueue"):
        q.push_batch([5, 6, 7, 8, 9])
    with pytest.raises(QueueClosed):
        q.push_batch([])
    assert q.try_pop() == 1
    assert q.try_pop_batch(10) == [2, 3]
    assert q.try_pop() is None
    assert len(q) == 0


def test_closed_pushes_leave_no_trace_between_items(backend: str) -> None:
    # On the lock-free backend a push racing with close reserves positions that it then
    # abandons; consumers must step over them. Simulate it by abandoning by hand.
    q: GlobalQueue[int] = tiny_segments(GlobalQueue(backend=backend))
    q.push_batch([1, 2])
    if backend == "lockfree":
        word = q._enqueue.fetch_add(2 * 3)  # type: ignore[attr-defined]
        q._abandon(word >> 1, 3)  # type: ignore[attr-defined]
    q.push_batch([3, 4, 5])
    assert q.try_pop() == 1
    assert q.try_pop_batch(2) == [2, 3]
    assert q.try_pop() == 4
    assert q.try_pop_batch(9) == [5]
    assert len(q) == 0


def test_error_hierarchy() -> None:
    assert issubclass(QueueClosed, QueueError)
    assert issubclass(QueueClosed, RuntimeError)
    assert issubclass(QueueFull, QueueError)


@pytest.mark.parametrize("capacity", [0, -1, 1.5, "4", True])
def test_bad_capacity(backend: str, capacity: object) -> None:
    with pytest.raises(ValueError, match=repr(capacity).replace(".", r"\.")):
        GlobalQueue(capacity, backend=backend)  # type: ignore[arg-type]


def test_bad_backend() -> None:
    with pytest.raises(ValueError, match="'lock-free'"):
        GlobalQueue(backend="lock-free")


def test_bounded(backend: str) -> None:
    q: GlobalQueue[int] = GlobalQueue(4, backend=backend)
    assert q.capacity == 4
    q.push_batch([1, 2, 3])
    with pytest.raises(QueueFull, match="capacity 4"):
        q.push_batch([4, 5])
    q.push(4)
    with pytest.raises(QueueFull, match="capacity 4"):
        q.push(5)
    assert q.try_pop() == 1
    q.push(5)
    assert q.try_pop_batch(10) == [2, 3, 4, 5]
    q.push_batch([6, 7, 8, 9])
    q.close()
    with pytest.raises(QueueClosed):
        q.push(10)
    assert q.try_pop_batch(10) == [6, 7, 8, 9]


class GlobalQueueModel(RuleBasedStateMachine):
    """Single-threaded sequences of operations against a deque model."""

    backend = "lockfree"

    def __init__(self) -> None:
        super().__init__()
        self.queue: GlobalQueue[int] = tiny_segments(GlobalQueue(backend=self.backend))
        self.model: deque[int] = deque()
        self.next_item = 1
        self.closed = False

    def fresh(self, n: int) -> list[int]:
        items = list(range(self.next_item, self.next_item + n))
        self.next_item += n
        return items

    @rule()
    def push(self) -> None:
        (item,) = self.fresh(1)
        if self.closed:
            with pytest.raises(QueueClosed):
                self.queue.push(item)
        else:
            self.queue.push(item)
            self.model.append(item)

    @rule(n=st.integers(0, 11))
    def push_batch(self, n: int) -> None:
        items = self.fresh(n)
        if self.closed:
            with pytest.raises(QueueClosed):
                self.queue.push_batch(items)
        else:
            self.queue.push_batch(items)
            self.model.extend(items)

    @rule()
    def try_pop(self) -> None:
        expected = self.model.popleft() if self.model else None
        assert self.queue.try_pop() == expected

    @rule(n=st.integers(0, 11))
    def try_pop_batch(self, n: int) -> None:
        expected = [self.model.popleft() for _ in range(min(n, len(self.model)))]
        assert self.queue.try_pop_batch(n) == expected

    @rule()
    def close(self) -> None:
        self.queue.close()
        self.closed = True

    @invariant()
    def same_length(self) -> None:
        assert len(self.queue) == len(self.model)
        assert self.queue.closed == self.closed


class BuiltinGlobalQueueModel(GlobalQueueModel):
    backend = "builtin"


class BoundedGlobalQueueModel(GlobalQueueModel):
    """The bounded lock-free queue: the model raises QueueFull exactly when it must."""

    capacity = 6

    @initialize()
    def bound(self) -> None:
        self.queue = tiny_segments(GlobalQueue(self.capacity, backend=self.backend))

    @rule()
    def push(self) -> None:
        if len(self.model) + 1 > self.capacity and not self.closed:
            with pytest.raises(QueueFull):
                self.queue.push(self.fresh(1)[0])
        else:
            super().push()

    @rule(n=st.integers(0, 11))
    def push_batch(self, n: int) -> None:
        if len(self.model) + n > self.capacity and not self.closed:
            with pytest.raises(QueueFull):
                self.queue.push_batch(self.fresh(n))
        else:
            super().push_batch(n)


_MODEL_SETTINGS = settings(max_examples=60, stateful_step_count=40, deadline=None)


@pytest.mark.thread_unsafe
@pytest.mark.parametrize(
    "machine", [GlobalQueueModel, BuiltinGlobalQueueModel, BoundedGlobalQueueModel]
)
def test_matches_sequential_model(machine: type[RuleBasedStateMachine]) -> None:
    machine.TestCase.settings = _MODEL_SETTINGS
    machine.TestCase().runTest()
