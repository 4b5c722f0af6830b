"""GlobalQueue: the multi-producer multi-consumer queue every worker can reach.

The global ("inject") queue takes work that is not bound to a worker: submissions from
threads outside the pool, the overflow of full local queues, wake-ups from foreign
threads. Workers drain it one item at a time (``try_pop``) or in refills
(``try_pop_batch``). It is FIFO.

Two backends behind one interface, chosen with ``backend=``:

* ``"lockfree"``: the structure below, on the atomics shim.
* ``"builtin"``: a ``collections.deque`` plus a ``threading.Lock`` (scheduler.md §8.3).

The lock-free design
====================

Prior art: crossbeam's ``Injector`` (a linked list of blocks with per-slot
``WRITE``/``READ`` bits), the Vyukov bounded MPMC ring (per-slot sequence numbers), and
the FAA queues (LCRQ). zap's Treiber-stack ``Node.Queue`` was rejected: it is LIFO and
its consumer role costs two read-modify-writes per pop.

**Positions are never reused.** Two 64-bit words on the shim:

* ``_enqueue`` holds ``tail << 1 | closed``: ``tail`` is the next position to reserve,
  the low bit says the queue is closed. A producer reserves ``k`` positions with ONE
  ``fetch_add(2 * k)`` (a single push is ``k = 1``), whatever ``k`` is.
* ``_dequeue`` holds ``head``, the next position to consume. A consumer claims the
  positions ``[head, head + m)`` with ONE ``compare_exchange(head, head + m)``.

Position ``p`` lives in segment ``p >> SHIFT`` at offset ``p & MASK`` (1024 slots). A
segment is a Python list of items and an ``AtomicSlab`` of slot states, reached through
the slab's ``plain_store_at``/``plain_load_at`` (release/acquire; C-level on x86-64).
Segments are kept in a dict by number and created by whichever producer first needs
one, with ``dict.setdefault`` (one atomic dict operation on 3.13t, and under the GIL),
so two producers racing to create it agree on one (the loser drops its own).

Publishing: the producer writes its item(s) into ``items`` (a slice assignment for a
batch), then release-stores each slot's state (``store_range`` for a batch: one
``memcpy`` on x86-64, whose stores are NOT ordered among themselves). A consumer
acquire-loads the state of ``head`` (for a batch: ``all_equal`` over the next slots,
then ``load_range`` only when some slot is not plainly ready), takes the prefix of
slots that are ready, each judged on its own, claims it with its CAS, and only then
reads the items. Memory order: every item write is sequenced before the release store
of its slot's state (for a batch, before the whole ``store_range``); the consumer's
acquire load that sees a state synchronizes with it, so the item read that follows
sees the item. Nothing relies on slot ``k`` becoming ready before slot ``k + 1``: a
consumer that sees ``k + 1`` ready and ``k`` not takes nothing beyond ``k - 1``. The CAS
on ``_dequeue`` decides who owns a slot, so an item is handed out once.

**Why ABA cannot happen.** ``head`` only grows, by whole claims, and no position is ever
reserved twice, so ``compare_exchange(head, head + m)`` succeeds only if no other
consumer claimed anything since ``head`` was read: a stale consumer always fails its CAS
(2**63 positions would have to pass for the word to come back). Whatever a stale
consumer read before that failed CAS (a state, a segment) is thrown away.

**Segments are never reused, so no reclamation scheme is needed.** The consumer that
claims the last slot of a segment removes it from the dict; its items list and state
slab are then only reachable from stale consumers, whose reads are discarded by the
failing CAS above, and are freed by the garbage collector when those let go. A new
segment gets a fresh, zeroed state slab (an ``AtomicSlab`` makes no per-cell objects,
so this costs a few microseconds per 1024 positions). A ready state of segment ``s``
is ``s << 2 | FULL`` or ``s << 2 | ABANDONED`` and "ready" means ``state >= s << 2 | 1``;
a fresh slab reads 0, "not ready". Even a word caught half-written by a wide ``memcpy``
holds a subset of the new value's bytes and zeros elsewhere, so it is smaller than the
new value and reads as not ready (see ``AtomicSlab`` on x86-64). Who can touch a
retired segment? Not a producer: a segment is retired only after all its positions
were claimed, a claim needs the slot published, and publishing is each producer's last
access to the segment. Only stale consumers, as above.

**Spurious empties.** A consumer that finds ``head``'s slot not yet published returns
``None`` (or a shorter batch), even if later slots are ready: FIFO order is kept and the
consumer never waits for a producer that may be preempted. zap's rule makes this fine:
every push is followed by a notify, so the executor retries. A consumer that merely lost
the CAS to another consumer retries at once (someone made progress: lock-free).

**Close.** ``close()`` sets the closed bit with ``fetch_or``. A push first looks at the
bit (a plain load) and refuses; a producer whose ``fetch_add`` still returns a word with
the bit set (it raced with the close) has reserved positions it must not fill: it stores
``ABANDONED`` into them (consumers step over them) and raises ``QueueClosed``. A closed
queue still drains. ``len()`` counts reserved, unconsumed positions, including pushes in
flight (and, until consumers step over them, abandoned ones), so after ``close()`` a
drain loop ``while len(q): q.try_pop()`` sees everything ever pushed successfully. A
bounded queue (``capacity=``) reserves with a CAS after checking room, so it never
reserves positions after a close.

**Cost.** ``push`` is one ``fetch_add`` plus a plain load, a dict lookup, a list store
and a plain state store; ``try_pop`` is one CAS plus two plain loads, a dict lookup, a
list load and a list store (clearing the slot); ``push_batch(k)`` and
``try_pop_batch(k)`` are one read-modify-write each plus O(k) C-level list and buffer
work (no Python-level loop over the items on x86-64). The read-modify-writes are ctypes
foreign calls, bound once per queue so that no method, order check or result tuple is
paid per call: ``push`` calls the shim's ``bind_fetch_add(2)`` (a ``functools.partial``
over ``__atomic_fetch_add_8`` with ``byref`` arguments, ~370 ns) and ``try_pop`` its
``bind_cas()`` (a closure: a ``threading.local`` read for this thread's ``expected``
word, then ``__atomic_compare_exchange_8``, ~900 ns). Those two calls alone are about
13 ``SimpleQueue`` put+get round trips, so single pushes and pops cannot come within
12x of ``SimpleQueue``; batches amortize them to below ``SimpleQueue``'s per-item cost
(``perf/README.md`` has the numbers). ``push`` and ``try_pop`` are closures, as in
``local_queue``, to avoid unspecialized attribute accesses on 3.13t.

Thread-safety: every method may be called from any thread at any time.
"""

from __future__ import annotations

import threading
from array import array
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from zuki.concurrent import atomics as _atomics
from zuki.concurrent.errors import QueueClosed, QueueFull

__all__ = ["GlobalQueue"]

T = TypeVar("T")

BACKENDS = ("lockfree", "builtin")

# Segment size is 1 << _SEGMENT_SHIFT slots (tests shrink it: _set_segment_shift).
_SEGMENT_SHIFT = 10
# The (unused) _pool's maxlen: slabs are no longer recycled (module docstring).
_SLAB_POOL_SIZE = 16

_FULL = 1
_ABANDONED = 2

_CLOSED_MESSAGE = "push on a closed GlobalQueue"
_NONE_MESSAGE = "None cannot be pushed: try_pop() uses None to mean empty"


def _check_capacity(capacity: int | None) -> None:
    if capacity is None:
        return
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
        raise ValueError(f"GlobalQueue capacity must be None or an int >= 1, got {capacity!r}")


def _check_batch_size(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"try_pop_batch(n) needs an int n >= 0, got {n!r}")


class GlobalQueue(Generic[T]):
    """A multi-producer multi-consumer FIFO queue; see the module docstring.

    ``GlobalQueue(capacity=None, *, backend="lockfree")``: ``capacity`` ``None`` is
    unbounded, otherwise an int >= 1; ``backend`` is ``"lockfree"`` or ``"builtin"``.
    ``None`` is not a valid item (``try_pop`` returns ``None`` when empty).

    The two hot operations are attributes holding closures rather than methods: on 3.13t
    an attribute access is not specialized, and closures reach their state through cells.

    Attributes:
        push: ``push(item)``: append ``item`` at the tail. Raises ``TypeError`` if
            ``item`` is ``None``, ``QueueClosed`` if the queue is closed, ``QueueFull``
            if it is bounded and full.
        try_pop: ``try_pop() -> item | None``: remove and return the head item, or
            ``None`` if there is none to take now. Never blocks; drains a closed queue.

    Thread-safety: every operation may be called from any thread at any time. Under
    concurrency ``try_pop`` may report empty while a push is half done (spurious empty)
    and ``len`` is approximate; neither ever loses or duplicates an item.

    Raises:
        ValueError: ``capacity`` or ``backend`` is invalid.
    """

    __slots__ = ("push", "try_pop")

    backend: str
    """``"lockfree"`` or ``"builtin"``."""

    push: Callable[[T], None]
    try_pop: Callable[[], T | None]

    def __new__(cls, capacity: int | None = None, *, backend: str = "lockfree") -> GlobalQueue[T]:
        if cls is not GlobalQueue:
            return object.__new__(cls)
        _check_capacity(capacity)
        impl: type[GlobalQueue[T]]
        if backend == "lockfree":
            impl = _LockFreeGlobalQueue if capacity is None else _BoundedLockFreeGlobalQueue
        elif backend == "builtin":
            impl = _BuiltinGlobalQueue
        else:
            raise ValueError(f"unknown GlobalQueue backend {backend!r}: expected one of {BACKENDS}")
        return object.__new__(impl)

    @property
    def capacity(self) -> int | None:
        """The bound given at construction, ``None`` if unbounded."""
        raise NotImplementedError

    def push_batch(self, items: Iterable[T]) -> None:
        """Append ``items`` at the tail, in order, as one contiguous run.

        One read-modify-write for the whole batch on the lock-free backend. All or
        nothing: on an error no item was pushed. An empty batch pushes nothing (it still
        raises ``QueueClosed`` on a closed queue).

        Raises:
            TypeError: an item is ``None``.
            QueueClosed: the queue is closed.
            QueueFull: the queue is bounded and lacks room for the whole batch.
        """
        raise NotImplementedError

    def try_pop_batch(self, n: int) -> list[T]:
        """Remove and return up to ``n`` items from the head, oldest first.

        Returns fewer (maybe none) when fewer are ready. ``n == 0`` returns ``[]``.

        Raises:
            ValueError: ``n`` is negative or not an int.
        """
        raise NotImplementedError

    def __len__(self) -> int:
        """The number of items in the queue; approximate while others push or pop."""
        raise NotImplementedError

    def close(self) -> None:
        """Refuse further pushes. Idempotent; items already in the queue stay poppable."""
        raise NotImplementedError

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        raise NotImplementedError

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        return f"<GlobalQueue {self.backend} len={len(self)} capacity={self.capacity}{state}>"


# A segment: its items, its state slab's per-slot acquire load and release store (the
# slab's ``plain_load_at``/``plain_store_at``: C-level on x86-64, no Python frame), and
# the slab itself.
_Segment = tuple[list[Any], Callable[[int], int], Callable[[int, int], object], Any]


class _LockFreeGlobalQueue(GlobalQueue[T]):
    """Unbounded lock-free backend (module docstring)."""

    __slots__ = (
        "_deq_cas",
        "_deq_load",
        "_dequeue",
        "_enq_add",
        "_enq_load",
        "_enqueue",
        "_mask",
        "_new_slab",
        "_pool",
        "_segment_map",
        "_shift",
        "_size",
    )
    backend = "lockfree"

    # Shared words (any thread): _enqueue (tail << 1 | closed), _dequeue (head); both
    # only through the shim. _segment_map: dict segment number -> _Segment, changed only
    # by single atomic dict operations. Everything else is fixed after __init__.
    # _pool is no longer used (state slabs are not recycled: a fresh one is cheaper than
    # the reasoning a recycled one needs); it stays, empty, for the interleaving tests'
    # hook that swaps it.

    def __init__(self, capacity: int | None = None, *, backend: str = "lockfree") -> None:
        self._enqueue = _atomics.AtomicInt(0)
        self._dequeue = _atomics.AtomicInt(0)
        self._enq_add = self._enqueue.fetch_add
        self._enq_load = self._enqueue.plain_load
        self._deq_load = self._dequeue.plain_load
        self._deq_cas = self._dequeue.bind_cas()
        self._new_slab = _atomics.AtomicSlab
        self._shift = _SEGMENT_SHIFT
        self._size = 1 << _SEGMENT_SHIFT
        self._mask = self._size - 1
        self._pool: deque[object] = deque(maxlen=_SLAB_POOL_SIZE)
        self._segments = {}

    @property
    def capacity(self) -> int | None:
        return None

    def _set_segment_shift(self, shift: int) -> None:
        """Use segments of ``2**shift`` slots. Tests shrink them, on an empty queue."""
        self._shift = shift
        self._size = 1 << shift
        self._mask = self._size - 1
        self._bind_operations()

    @property
    def _segments(self) -> dict[int, _Segment]:
        """The segment map. Tests may replace it (with an instrumented dict) while the
        queue is still empty; the closures are rebuilt around the new one."""
        return self._segment_map

    @_segments.setter
    def _segments(self, segments: dict[int, _Segment]) -> None:
        self._segment_map = segments
        self._bind_operations()

    def _bind_operations(self) -> None:
        """Build ``push`` and ``try_pop`` as closures over what they use."""
        get = self._segment_map.get
        enq_add2, enq_load = self._enqueue.bind_fetch_add(2), self._enq_load
        deq_load, deq_cas = self._deq_load, self._deq_cas
        shift, mask = self._shift, self._mask
        segment, abandon, retire = self._segment, self._abandon, self._retire

        def push(item: T) -> None:
            if item is None:
                raise TypeError(_NONE_MESSAGE)
            if enq_load() & 1:
                raise QueueClosed(_CLOSED_MESSAGE)
            word = enq_add2()
            if word & 1:  # closed since the look above
                abandon(word >> 1, 1)
                raise QueueClosed(_CLOSED_MESSAGE)
            pos = word >> 1
            s = pos >> shift
            items, _, store_at, _ = get(s) or segment(s)
            pos &= mask
            items[pos] = item
            store_at(pos, s << 2 | 1)  # FULL, release

        def try_pop() -> T | None:
            head = deq_load()
            while True:
                s = head >> shift
                found = get(s)
                if found is None:
                    # Not created yet (empty, or its producer is mid-push), or retired
                    # under a stale head: only the latter is worth another look.
                    fresh = deq_load()
                    if fresh == head:
                        return None
                    head = fresh
                    continue
                items, load_at, _, _ = found
                off = head & mask
                state = load_at(off)  # acquire
                full = s << 2 | 1
                if state < full:
                    return None
                if not deq_cas(head, head + 1):
                    head = deq_load()  # another consumer claimed it: look again
                    continue
                if off == mask:
                    retire(s)
                if state == full:
                    item: T = items[off]
                    items[off] = None
                    return item
                head += 1  # an abandoned slot: step over it

        self.push = push
        self.try_pop = try_pop

    # --- producers ---------------------------------------------------------------------

    def push_batch(self, items: Iterable[T]) -> None:
        batch = items if type(items) is list else list(items)
        k = len(batch)
        if not all(batch) and None in batch:
            raise TypeError(_NONE_MESSAGE)
        if self._enq_load() & 1:
            raise QueueClosed(_CLOSED_MESSAGE)
        if not k:
            return
        word = self._enq_add(2 * k)
        if word & 1:  # closed since the look above
            self._abandon(word >> 1, k)
            raise QueueClosed(_CLOSED_MESSAGE)
        self._publish(word >> 1, batch)

    def _publish(self, pos: int, batch: list[T]) -> None:
        """Fill the reserved positions ``[pos, pos + len(batch))`` and publish them."""
        k = len(batch)
        shift, size, mask = self._shift, self._size, self._mask
        get = self._segment_map.get
        done = 0
        while done < k:
            s = pos >> shift
            off = pos & mask
            n = min(k - done, size - off)
            segment = get(s) or self._segment(s)
            segment[0][off : off + n] = batch if n == k else batch[done : done + n]
            segment[3].store_range(off, array("q", (s << 2 | _FULL,)) * n)
            done += n
            pos += n

    def _abandon(self, pos: int, k: int) -> None:
        """Mark positions reserved after a close so that consumers step over them."""
        shift, size, mask = self._shift, self._size, self._mask
        end = pos + k
        while pos < end:
            s = pos >> shift
            off = pos & mask
            n = min(end - pos, size - off)
            segment = self._segment_map.get(s) or self._segment(s)
            segment[3].store_range(off, [s << 2 | _ABANDONED] * n)
            pos += n

    def _segment(self, s: int) -> _Segment:
        """Segment ``s``, created if no other producer did it first.

        Its state slab is a fresh, zeroed one (cheap: the slab makes no per-cell
        objects); the loser of a creation race simply drops its own.
        """
        slab = self._new_slab(self._size)
        new: _Segment = ([None] * self._size, slab.plain_load_at, slab.plain_store_at, slab)
        return self._segment_map.setdefault(s, new)

    # --- consumers ---------------------------------------------------------------------

    def try_pop_batch(self, n: int) -> list[T]:
        _check_batch_size(n)
        get, shift, size, mask = self._segment_map.get, self._shift, self._size, self._mask
        out: list[T] = []
        head = self._deq_load()
        while n:
            s = head >> shift
            segment = get(s)
            if segment is None:
                fresh = self._deq_load()
                if fresh == head:
                    break
                head = fresh
                continue
            off = head & mask
            want = min(n, size - off)
            full = s << 2 | _FULL
            slab = segment[3]
            plain = slab.all_equal(off, off + want, full)  # the common case: all FULL
            if plain:
                m = want
                seen: list[int] = []
            else:
                seen = slab.load_range(off, off + want)
                m = 0
                while m < want and seen[m] >= full:
                    m += 1
                if not m:
                    break
            if not self._deq_cas(head, head + m):
                head = self._deq_load()  # another consumer claimed: look again
                continue
            items = segment[0]
            got: list[T] = items[off : off + m]
            if off + m == size:
                self._retire(s)  # the items list goes with it: no need to clear it
            else:
                items[off : off + m] = [None] * m
            if not plain and seen[:m].count(full) != m:
                got = [x for x in got if x is not None]  # abandoned slots hold None
            if out:
                out += got
            else:
                out = got
            n -= len(got)
            head += m
            if m < want:
                break
        return out

    def _retire(self, s: int) -> None:
        """Called by the consumer that claimed the last slot of segment ``s``."""
        self._segment_map.pop(s)

    # --- state -------------------------------------------------------------------------

    def __len__(self) -> int:
        head = self._deq_load()
        tail = self._enq_load() >> 1
        return tail - head if tail > head else 0

    def close(self) -> None:
        self._enqueue.fetch_or(1)

    @property
    def closed(self) -> bool:
        return bool(self._enq_load() & 1)


class _BoundedLockFreeGlobalQueue(_LockFreeGlobalQueue[T]):
    """Lock-free backend with a capacity: reservations are a CAS after a room check.

    The room check reads ``head`` with a plain load; a stale (smaller) head only makes
    the queue look fuller, so the bound is never exceeded, but a push racing with pops
    may see ``QueueFull`` a moment early.
    """

    __slots__ = ("_capacity", "_enq_cas")

    def __init__(self, capacity: int | None = None, *, backend: str = "lockfree") -> None:
        assert capacity is not None
        self._capacity = capacity
        super().__init__()

    @property
    def capacity(self) -> int | None:
        return self._capacity

    def _bind_operations(self) -> None:
        super()._bind_operations()
        self._enq_cas = self._enqueue.compare_exchange
        reserve, publish = self._reserve, self._publish

        def push(item: T) -> None:
            if item is None:
                raise TypeError(_NONE_MESSAGE)
            publish(reserve(1), [item])

        self.push = push

    def _reserve(self, k: int) -> int:
        word = self._enq_load()
        while True:
            if word & 1:
                raise QueueClosed(_CLOSED_MESSAGE)
            if (word >> 1) - self._deq_load() + k > self._capacity:
                raise QueueFull(
                    f"GlobalQueue is full (capacity {self._capacity}): no room for {k} item(s)"
                )
            reserved, current = self._enq_cas(word, word + 2 * k)
            if reserved:
                return word >> 1
            word = current

    def push_batch(self, items: Iterable[T]) -> None:
        batch = items if type(items) is list else list(items)
        if not all(batch) and None in batch:
            raise TypeError(_NONE_MESSAGE)
        if not batch:
            if self.closed:
                raise QueueClosed(_CLOSED_MESSAGE)
            return
        self._publish(self._reserve(len(batch)), batch)


class _BuiltinGlobalQueue(GlobalQueue[T]):
    """The reference backend: a deque, and a Lock that makes pushes and ``close`` agree.

    Consumers ``popleft`` without the lock: each deque operation is one critical section
    on 3.13t (one GIL-held C call elsewhere). Pushes check ``closed`` and append under the
    lock, so that once ``close()`` returns no push can still land; without it a push that
    checked ``closed`` just before the close could append after the final drain.
    ``extend(list)`` appends a batch in one critical section.
    """

    __slots__ = ("_capacity", "_closed", "_deque", "_lock")
    backend = "builtin"

    # _deque: any thread (atomic deque operations). _closed: written under _lock, read
    # anywhere. _lock: guards the closed check + append pair.

    def __init__(self, capacity: int | None = None, *, backend: str = "builtin") -> None:
        self._capacity = capacity
        self._deque: deque[T] = deque()
        self._lock = threading.Lock()
        self._closed = False
        self._bind_operations()

    def _bind_operations(self) -> None:
        dq, cap, length = self._deque, self._capacity, len
        append, popleft = dq.append, dq.popleft
        acquire, release = self._lock.acquire, self._lock.release

        def push(item: T) -> None:
            if item is None:
                raise TypeError(_NONE_MESSAGE)
            acquire()
            try:
                if self._closed:
                    raise QueueClosed(_CLOSED_MESSAGE)
                if cap is not None and length(dq) >= cap:
                    raise QueueFull(f"GlobalQueue is full (capacity {cap})")
                append(item)
            finally:
                release()

        def try_pop() -> T | None:
            try:
                return popleft()
            except IndexError:
                return None

        self.push = push
        self.try_pop = try_pop

    @property
    def capacity(self) -> int | None:
        return self._capacity

    def push_batch(self, items: Iterable[T]) -> None:
        batch = items if type(items) is list else list(items)
        if not all(batch) and None in batch:
            raise TypeError(_NONE_MESSAGE)
        with self._lock:
            if self._closed:
                raise QueueClosed(_CLOSED_MESSAGE)
            cap = self._capacity
            if cap is not None and len(self._deque) + len(batch) > cap:
                raise QueueFull(
                    f"GlobalQueue is full (capacity {cap}): no room for {len(batch)} item(s)"
                )
            self._deque.extend(batch)

    def try_pop_batch(self, n: int) -> list[T]:
        _check_batch_size(n)
        popleft = self._deque.popleft
        out: list[T] = []
        try:
            for _ in range(min(n, len(self._deque))):
                out.append(popleft())
        except IndexError:
            pass
        return out

    def __len__(self) -> int:
        return len(self._deque)

    def close(self) -> None:
        with self._lock:
            self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed
