"""LocalQueue: every operation on both backends, plus a Hypothesis model check.

Multi-threaded exactly-once checks live in ``test_queue_stress.py``.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

import pytest
from helpers import drain, queue_backend  # noqa: F401  (the fixture ``backend``)
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from zuki.concurrent.errors import NotOwnerError, QueueClosed, QueueError, QueueFull
from zuki.concurrent.global_queue import GlobalQueue
from zuki.concurrent.local_queue import LocalQueue


def test_lifo_order(backend: str) -> None:
    q: LocalQueue[int] = LocalQueue(backend=backend)
    for i in range(1, 11):
        q.push(i)
    assert len(q) == 10
    assert not q.is_empty()
    assert drain(q) == list(range(10, 0, -1))
    assert q.pop() is None
    assert q.is_empty()
    assert len(q) == 0


def test_pop_on_empty_then_reuse(backend: str) -> None:
    q: LocalQueue[int] = LocalQueue(4, backend=backend)
    assert q.pop() is None
    assert q.pop() is None
    for round_ in range(50):  # wraps the ring many times
        q.push(round_ + 1)
        q.push(round_ + 100)
        assert q.pop() == round_ + 100
        assert q.pop() == round_ + 1
        assert q.pop() is None


def test_attributes_and_repr(backend: str) -> None:
    g: GlobalQueue[int] = GlobalQueue(backend=backend)
    q: LocalQueue[int] = LocalQueue(8, g, backend=backend)
    assert isinstance(q, LocalQueue)
    assert q.backend == backend
    assert q.capacity == 8
    assert q.overflow is g
    assert q.debug is False
    q.push(3)
    assert repr(q) == f"<LocalQueue {backend} len=1 capacity=8>"


def test_push_none_is_type_error(backend: str) -> None:
    q: LocalQueue[int | None] = LocalQueue(backend=backend)
    with pytest.raises(TypeError, match="None cannot be pushed"):
        q.push(None)
    assert q.is_empty()


def test_falsy_items_are_fine(backend: str) -> None:
    q: LocalQueue[object] = LocalQueue(backend=backend)
    for item in (0, "", False):
        q.push(item)
    assert drain(q) == [False, "", 0]


@pytest.mark.parametrize("capacity", [0, 1, 3, 6, 100, -4, 2.0, "256", True, 1 << 29])
def test_bad_capacity(backend: str, capacity: object) -> None:
    with pytest.raises(ValueError, match="power of two") as info:
        LocalQueue(capacity, backend=backend)  # type: ignore[arg-type]
    assert repr(capacity) in str(info.value)


def test_bad_backend() -> None:
    with pytest.raises(ValueError, match="'deque'"):
        LocalQueue(backend="deque")


def test_bad_overflow(backend: str) -> None:
    with pytest.raises(TypeError, match="overflow must be a GlobalQueue"):
        LocalQueue(4, deque(), backend=backend)  # type: ignore[arg-type]


# --- stealing -------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 8, 17, 128, 255, 256])
def test_steal_takes_half_rounded_up(backend: str, n: int) -> None:
    victim: LocalQueue[int] = LocalQueue(256, backend=backend)
    thief: LocalQueue[int] = LocalQueue(256, backend=backend)
    for i in range(n):
        victim.push(i)
    k = n - n // 2
    got = victim.steal_into(thief)
    # The oldest k move; the newest of them is returned, the rest land in the thief's
    # queue in order (so the thief pops them newest first, as the victim would have).
    assert got == k - 1
    assert len(victim) == n - k
    assert len(thief) == k - 1
    assert drain(thief) == list(range(k - 2, -1, -1))
    assert drain(victim) == list(range(n - 1, k - 1, -1))


def test_steal_from_empty(backend: str) -> None:
    victim: LocalQueue[int] = LocalQueue(8, backend=backend)
    thief: LocalQueue[int] = LocalQueue(8, backend=backend)
    assert victim.steal_into(thief) is None
    victim.push(1)
    assert victim.pop() == 1
    assert victim.steal_into(thief) is None
    assert thief.is_empty()


def test_steal_refused_when_dest_more_than_half_full(backend: str) -> None:
    victim: LocalQueue[int] = LocalQueue(8, backend=backend)
    thief: LocalQueue[int] = LocalQueue(8, backend=backend)
    for i in range(8):
        victim.push(i)
    for i in range(100, 105):  # 5 > 8 // 2
        thief.push(i)
    assert victim.steal_into(thief) is None
    assert len(victim) == 8
    assert thief.pop() == 104  # exactly half full is allowed
    assert victim.steal_into(thief) == 3
    assert len(victim) == 4
    assert len(thief) == 4 + 3


def test_steal_limited_by_dest_room(backend: str) -> None:
    victim: LocalQueue[int] = LocalQueue(256, backend=backend)
    thief: LocalQueue[int] = LocalQueue(4, backend=backend)
    for i in range(100):
        victim.push(i)
    thief.push(1000)
    # half of 100 is 50, but the thief has room for 3 (+1 returned).
    assert victim.steal_into(thief) == 3
    assert len(victim) == 96
    assert drain(thief) == [2, 1, 0, 1000]


def test_steal_wrapped_ring(backend: str) -> None:
    victim: LocalQueue[int] = LocalQueue(8, backend=backend)
    thief: LocalQueue[int] = LocalQueue(8, backend=backend)
    for i in range(6):
        victim.push(i)
    assert victim.steal_into(thief) == 2  # top is now 3
    for i in range(6, 11):  # bottom wraps past the end of the ring
        victim.push(i)
    assert len(victim) == 8
    assert victim.steal_into(thief) == 6  # slots 3..6
    assert victim.steal_into(LocalQueue(8, backend=backend)) == 8  # slots 7 and 0
    assert drain(victim) == [10, 9]
    assert drain(thief) == [5, 4, 3, 1, 0]


def test_steal_into_self_or_other_backend(backend: str) -> None:
    q: LocalQueue[int] = LocalQueue(backend=backend)
    q.push(1)
    with pytest.raises(ValueError, match="victim itself"):
        q.steal_into(q)
    other = "builtin" if backend == "lockfree" else "lockfree"
    with pytest.raises(TypeError, match=f"dest is a {other} LocalQueue"):
        q.steal_into(LocalQueue(backend=other))
    with pytest.raises(TypeError, match="must be a LocalQueue"):
        q.steal_into(deque())  # type: ignore[arg-type]
    assert len(q) == 1


def test_steal_refused_while_another_thief_is_active() -> None:
    # Lock-free: a thief mid-steal shows as ANNOUNCED/CLAIMED in the steal word.
    victim: LocalQueue[int] = LocalQueue(8)
    for i in range(6):
        victim.push(i)
    word = victim._steal.load()  # type: ignore[attr-defined]
    victim._steal.store(word | 1)  # type: ignore[attr-defined]  # ANNOUNCED
    assert victim.steal_into(LocalQueue(8)) is None
    # The owner aborts an announced steal and pops as usual.
    assert victim.pop() == 5
    assert victim.steal_into(LocalQueue(8)) == 2


def test_aborted_thief_cannot_claim_after_a_reannounce() -> None:
    # The ABA case the epoch in the steal word exists for. Thief A announces and reads
    # bottom (4 items: it will claim 2); the owner pops, aborting A; thief B announces
    # the same top; the owner pops again, aborting B; and so on until the owner popped
    # 4, 3 and 2 and B has announced once more. A's claim must fail: with the word back
    # at ANNOUNCED(top) and no epoch it would succeed, and A would take item 2, which
    # the owner already popped.
    q: LocalQueue[int] = LocalQueue(8)
    for i in range(1, 5):
        q.push(i)
    steal = q._steal  # type: ignore[attr-defined]

    def announce() -> int:
        word: int = steal.load()
        assert word & 3 == 0
        assert steal.compare_exchange(word, word | 1)[0]
        return word | 1

    a_word = announce()
    assert q._bottom.load() == 4  # type: ignore[attr-defined]  # A will claim [0, 2)
    assert q.pop() == 4
    announce()  # thief B
    assert q.pop() == 3
    announce()  # thief B again
    assert q.pop() == 2
    announce()  # and again
    claimed = (0 << 32) | (2 << 2) | 2  # CLAIMED(top=0, end=2)
    assert steal.compare_exchange(a_word, claimed) == (False, steal.load())
    assert q.pop() == 1  # aborts B once more
    assert q.pop() is None


def test_builtin_steal_refused_while_another_thief_is_active() -> None:
    victim: LocalQueue[int] = LocalQueue(8, backend="builtin")
    for i in range(6):
        victim.push(i)
    with victim._steal_lock:  # type: ignore[attr-defined]
        assert victim.steal_into(LocalQueue(8, backend="builtin")) is None
    assert victim.steal_into(LocalQueue(8, backend="builtin")) == 2


# --- overflow -------------------------------------------------------------------------


@pytest.mark.parametrize("capacity", [2, 4, 256])
def test_overflow_moves_oldest_half_and_item(backend: str, capacity: int) -> None:
    g: GlobalQueue[int] = GlobalQueue(backend=backend)
    q: LocalQueue[int] = LocalQueue(capacity, g, backend=backend)
    for i in range(capacity):
        q.push(i)
    assert len(g) == 0
    q.push(capacity)  # full: the oldest half and the new item overflow in one batch
    half = capacity // 2
    assert g.try_pop_batch(capacity) == [*range(half), capacity]
    assert len(q) == capacity - half
    assert drain(q) == list(range(capacity - 1, half - 1, -1))


def test_overflow_repeatedly_loses_nothing(backend: str) -> None:
    g: GlobalQueue[int] = GlobalQueue(backend=backend)
    q: LocalQueue[int] = LocalQueue(4, g, backend=backend)
    for i in range(1000):
        q.push(i)
        if i % 7 == 0:
            q.pop()
    popped = {i for i in range(1000) if i % 7 == 0}
    rest = set(drain(q)) | set(g.try_pop_batch(2000))
    assert rest | popped == set(range(1000))
    assert len(rest) + len(popped) == 1000


def test_overflow_during_steal_pushes_only_the_item() -> None:
    # tokio's case 2: with a steal CLAIMED, the owner can take nothing; only the new item
    # goes to the overflow queue.
    g: GlobalQueue[int] = GlobalQueue()
    q: LocalQueue[int] = LocalQueue(4, g)
    for i in range(4):
        q.push(i)
    word = q._steal.load()  # type: ignore[attr-defined]
    q._steal.store(word | 2 | (2 << 2))  # type: ignore[attr-defined]  # CLAIMED(0, 2)
    q.push(4)
    assert g.try_pop_batch(10) == [4]
    assert len(q) == 4
    assert q.pop() == 3
    assert q.pop() == 2
    assert q.pop() is None  # 0 and 1 belong to the (simulated) thief


def test_builtin_overflow_during_steal_pushes_only_the_item() -> None:
    g: GlobalQueue[int] = GlobalQueue(backend="builtin")
    q: LocalQueue[int] = LocalQueue(4, g, backend="builtin")
    for i in range(4):
        q.push(i)
    with q._steal_lock:  # type: ignore[attr-defined]
        q.push(4)
    assert g.try_pop_batch(10) == [4]
    assert drain(q) == [3, 2, 1, 0]


def test_full_without_overflow_raises(backend: str) -> None:
    q: LocalQueue[int] = LocalQueue(4, backend=backend)
    for i in range(4):
        q.push(i)
    with pytest.raises(QueueFull, match=r"capacity 4\) and has no overflow"):
        q.push(4)
    assert drain(q) == [3, 2, 1, 0]
    assert issubclass(QueueFull, QueueError)


def test_full_with_closed_overflow_moves_nothing(backend: str) -> None:
    g: GlobalQueue[int] = GlobalQueue(backend=backend)
    q: LocalQueue[int] = LocalQueue(4, g, backend=backend)
    for i in range(4):
        q.push(i)
    g.close()
    with pytest.raises(QueueClosed):
        q.push(4)
    assert drain(q) == [3, 2, 1, 0]
    assert len(g) == 0


# --- debug mode -----------------------------------------------------------------------


def run_in_thread(fn: Any, name: str) -> BaseException | None:
    caught: list[BaseException] = []

    def target() -> None:
        try:
            fn()
        except BaseException as exc:
            caught.append(exc)

    t = threading.Thread(target=target, name=name)
    t.start()
    t.join(30)
    assert not t.is_alive()
    return caught[0] if caught else None


def test_debug_checks_owner(backend: str) -> None:
    q: LocalQueue[int] = LocalQueue(8, backend=backend, debug=True)
    assert q.debug
    q.push(1)  # binds the owner: this thread
    for op in (lambda: q.push(2), q.pop):
        exc = run_in_thread(op, "intruder")
        assert isinstance(exc, NotOwnerError)
        assert isinstance(exc, RuntimeError)
        message = str(exc)
        assert "'intruder'" in message
        assert repr(threading.current_thread().name) in message
    assert q.pop() == 1


def test_debug_bind_owner_hands_over(backend: str) -> None:
    q: LocalQueue[int] = LocalQueue(8, backend=backend, debug=True)
    assert run_in_thread(q.bind_owner, "worker-0") is None
    with pytest.raises(NotOwnerError, match="'worker-0'"):
        q.push(1)
    q.bind_owner()
    q.push(1)
    assert q.pop() == 1


def test_debug_steal_checks_dest_owner(backend: str) -> None:
    victim: LocalQueue[int] = LocalQueue(8, backend=backend, debug=True)
    dest: LocalQueue[int] = LocalQueue(8, backend=backend, debug=True)
    victim.push(1)
    dest.bind_owner()
    exc = run_in_thread(lambda: victim.steal_into(dest), "thief")
    assert isinstance(exc, NotOwnerError)
    assert victim.steal_into(dest) == 1  # this thread owns dest: fine


def test_debug_from_environment(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZUKI_DEBUG", "1")
    assert LocalQueue(backend=backend).debug
    monkeypatch.setenv("ZUKI_DEBUG", "0")
    assert not LocalQueue(backend=backend).debug


def test_no_checks_without_debug(backend: str) -> None:
    q: LocalQueue[int] = LocalQueue(8, backend=backend)
    q.push(1)
    assert run_in_thread(lambda: q.push(2), "other") is None
    assert drain(q) == [2, 1]


# --- the model ------------------------------------------------------------------------


class LocalQueueModel(RuleBasedStateMachine):
    """Two workers' queues sharing an overflow queue, against lists and a deque.

    Single-threaded: this checks the sequential semantics (LIFO pop, steal half of the
    oldest, dest limits, overflow of the oldest half plus the item), on rings small enough
    to wrap and fill often.
    """

    backend = "lockfree"

    def __init__(self) -> None:
        super().__init__()
        self.next_item = 1

    @initialize(cap_a=st.sampled_from([2, 4, 8]), cap_b=st.sampled_from([2, 4, 16]))
    def build(self, cap_a: int, cap_b: int) -> None:
        self.overflow: GlobalQueue[int] = GlobalQueue(backend=self.backend)
        self.queues = [
            LocalQueue(cap_a, self.overflow, backend=self.backend),
            LocalQueue(cap_b, self.overflow, backend=self.backend),
        ]
        self.models: list[list[int]] = [[], []]  # oldest first
        self.global_model: deque[int] = deque()

    @rule(w=st.sampled_from([0, 1]))
    def push(self, w: int) -> None:
        item = self.next_item
        self.next_item += 1
        self.queues[w].push(item)
        model, cap = self.models[w], self.queues[w].capacity
        if len(model) < cap:
            model.append(item)
        else:
            half = cap // 2
            self.global_model.extend([*model[:half], item])
            del model[:half]

    @rule(w=st.sampled_from([0, 1]))
    def pop(self, w: int) -> None:
        model = self.models[w]
        assert self.queues[w].pop() == (model.pop() if model else None)

    @rule(victim=st.sampled_from([0, 1]))
    def steal(self, victim: int) -> None:
        thief = 1 - victim
        got = self.queues[victim].steal_into(self.queues[thief])
        vm, tm, tcap = self.models[victim], self.models[thief], self.queues[thief].capacity
        if len(tm) > tcap // 2 or not vm:
            assert got is None
            return
        n = min(len(vm) - len(vm) // 2, tcap - len(tm) + 1)
        stolen = vm[:n]
        del vm[:n]
        tm.extend(stolen[:-1])
        assert got == stolen[-1]

    @precondition(lambda self: hasattr(self, "queues"))
    @rule(n=st.integers(0, 5))
    def take_global(self, n: int) -> None:
        expected = [self.global_model.popleft() for _ in range(min(n, len(self.global_model)))]
        assert self.overflow.try_pop_batch(n) == expected

    @invariant()
    def lengths_match(self) -> None:
        if hasattr(self, "queues"):
            assert [len(q) for q in self.queues] == [len(m) for m in self.models]
            assert len(self.overflow) == len(self.global_model)


class BuiltinLocalQueueModel(LocalQueueModel):
    backend = "builtin"


_MODEL_SETTINGS = settings(max_examples=60, stateful_step_count=50, deadline=None)


@pytest.mark.thread_unsafe
@pytest.mark.parametrize("machine", [LocalQueueModel, BuiltinLocalQueueModel])
def test_matches_sequential_model(machine: type[RuleBasedStateMachine]) -> None:
    machine.TestCase.settings = _MODEL_SETTINGS
    machine.TestCase().runTest()
