"""LocalQueue: a worker's own work-stealing deque.

Each worker owns one LocalQueue. The owner pushes and pops at the *bottom* (LIFO: the
task spawned last runs next, which keeps caches and fork-join stacks warm); other
workers steal from the *top* (the oldest tasks), half at a time, tokio style. When the
queue is full the owner moves the oldest half, with the new item, to an ``overflow``
GlobalQueue in one ``push_batch`` (tokio ``push_overflow``, zap ``Buffer.push``).

Two backends behind one interface, chosen with ``backend=``:

* ``"lockfree"``: the ring below, on the atomics shim; the owner's push and pop make no
  foreign call in the common case.
* ``"builtin"``: a ``collections.deque`` (owner ``append``/``pop`` at the right, thieves
  ``popleft``) plus a per-victim steal ``Lock`` taken without blocking, so that one thief
  at a time steals (scheduler.md §8.2-8.3).

The lock-free design
====================

Prior art: Chase-Lev (SPAA 2005; Lê et al., PPoPP 2013 for C11 orders), as in
crossbeam-deque's LIFO ``Worker`` (decrement ``back``, SeqCst fence, read ``front``);
tokio's ``queue.rs`` for the batch steal with one thief per victim (packed ``steal`` and
``real`` heads) and the overflow policy. A plain Chase-Lev steal takes one item per CAS,
which is why the batch steal needs more than a top index here.

A ring of ``capacity`` slots (a Python list, ``_buffer``) and two shared words:

* ``_bottom``: the owner's next push index. The owner keeps the true value in a private
  Python int and mirrors it with a release ``plain_store``: a memoryview write on
  x86-64, no foreign call. Only the owner writes it. Thieves read it.
* ``_steal``: ``top << 32 | x << 2 | state``, with ``top`` and ``x`` 30-bit fields
  (indices modulo 2**30; full indices are rebuilt from the owner's ``bottom``, since
  ``bottom - top`` is always within ``[-1, capacity]``). ``state`` is

  - ``IDLE`` (``x`` = an *epoch*): nobody is stealing;
  - ``ANNOUNCED`` (``x`` = the same epoch): a thief has announced a steal and is about to
    read ``bottom``; one thief at a time;
  - ``CLAIMED`` (``x`` = ``end``): a thief owns the slots ``[top, end)`` and is copying
    them out; it publishes ``IDLE(end, epoch)`` when done.

**Thief** (``steal_into``): load ``_steal``; give up unless ``IDLE(t, ep)``.
CAS ``IDLE(t, ep) -> ANNOUNCED(t, ep)`` (fails: another thief or the owner moved; give
up). Load ``bottom`` (a seq_cst load, after the announce). ``n = (b - t) - (b - t) // 2``,
at most what ``dest`` has room for. ``n == 0``: CAS ``ANNOUNCED(t, ep) -> IDLE(t, ep)``
and return ``None``. Else CAS ``ANNOUNCED(t, ep) -> CLAIMED(t, t + n)`` (fails: the owner
aborted the steal; give up). Copy and clear the slots, then publish ``IDLE(t + n, ep)``
with a release ``plain_store``: during ``CLAIMED`` nobody else writes the word. Then put
all but the newest stolen item into ``dest`` (the thief owns it) and return the newest.
Cost: two CASes and a few plain accesses per steal, whatever ``n``.

**Owner push**: if ``b - top_seen < capacity``, write the slot, ``b += 1``,
``plain_store(b)``. No foreign call, and no load either: ``top_seen`` is the owner's
private lower bound of ``top`` (``top`` only grows, so the check can only err towards
"full"); it is refreshed with a plain load of ``_steal`` when the check fails. Full:
with ``IDLE(t, ep)`` CAS to ``IDLE(t + half, ep)``, with ``ANNOUNCED(t, ep)`` CAS to
``IDLE(t + half, ep + 1)`` (aborting the thief); either claims the oldest half for the
owner, which copies it out and overflows it with the new item. With ``CLAIMED`` the
owner cannot take anything: it overflows the new item alone (tokio's case 2; the steal
is about to free room). No overflow queue: ``QueueFull``.

**Owner pop** (LIFO): ``b -= 1``; ``plain_store(b)``; ``full_fence()`` (seq_cst; no
foreign call on x86-64); plain-load ``_steal``. ``IDLE(t)`` with ``t <= b``: take slot ``b``. Still
no foreign call, even for the last item. ``IDLE(t)`` with ``t > b``: empty, restore
``bottom``. ``ANNOUNCED(t, ep)``: abort the thief with CAS to ``IDLE(t, ep + 1)`` and look
again. ``CLAIMED(t, e)``: take slot ``b`` if ``b >= e``; otherwise the thief owns it, the
queue is empty for the owner: restore ``bottom`` and return ``None``.

Why a fence-only pop is safe against a batch steal
--------------------------------------------------

The core is a store-buffering pair. The owner's pop does *store bottom; seq_cst fence;
load steal*; the thief does *RMW steal (announce); seq_cst load bottom*. Both sides are
ordered by a full barrier, so they cannot both miss each other (C11 seq_cst fence rules;
on x86-TSO, ``mfence``/``lock``-prefixed instructions on both sides): **either the
owner's load sees the announce (or a later value of the word), or the thief's load of
``bottom`` sees the owner's decrement (or a later store of the owner).**

Take a thief whose claim CAS succeeds: the word stayed ``ANNOUNCED(t, ep)`` from its
announce to its claim, and its claim covers ``[t, t + n)`` with ``t + n <= b_r``, the
value of ``bottom`` it read. Let ``S`` be the owner's store that wrote ``b_r``.

* Every owner pop whose ``bottom`` store comes after ``S`` in the owner's program order
  sees the announce or later (the pair above: the thief did not see that store). If it
  loaded the word between announce and claim, it saw ``ANNOUNCED`` and aborted the steal,
  which contradicts the successful claim; so it saw ``CLAIMED(t, t + n)`` or later, and
  takes only indices ``>= t + n``.
* Owner pops whose store is ``S`` or earlier: at ``S`` the owner's ``bottom`` is ``b_r``,
  and the owner only ever takes the slot at ``bottom - 1``. A pop whose store is ``S``
  takes index ``b_r`` at most, outside the claim; earlier pops took indices that later
  pushes (before ``S``) refilled, or that are at or above ``b_r``. So at ``S`` the slots
  ``[t, b_r)`` hold live items that the owner has not taken.
* Owner pushes never overwrite the claim: a push writes index ``b >= b_r >= t + n`` only
  if ``b < top_seen + capacity <= t + capacity`` (``top`` stays ``t`` until the thief
  publishes), so its slot is not one of ``[t, t + n)`` modulo ``capacity``. The items
  the thief copies were written before ``S`` (a release store), which its load of
  ``bottom`` read: it sees them.

Symmetrically, an owner pop that takes index ``i`` on the fast path saw ``IDLE(t)`` with
``t <= i``; a thief that announces later in the word's order reads ``bottom <= i`` or a
later store, so it never claims that item; a thief that announced earlier is visible to
the pop (it would have seen ``ANNOUNCED``/``CLAIMED``, not that ``IDLE``). This is also
why the last item needs no CAS, unlike in Chase-Lev: a thief reads ``bottom`` only after
announcing, and announcing is visible to the owner. Owner overflows and aborts are CASes
on the word, so any thief they overlap with fails its claim.

**ABA.** The word could come back to a value a stalled thief expects only if ``top``
came back to the same value modulo 2**30 *and* the epoch, which grows on every abort, did
too: about a billion items stolen or overflowed, or a billion aborts, while one thief
sits between two instructions of one steal (tokio accepted the same with 2**32 after
issue #5041). Without the epoch the owner's abort would be ABA-prone: a thief that read
``bottom`` before the owner popped could claim items the owner had since taken, after a
second thief re-announced the same word.

**Cost.** The owner's common path is push: a list store and a plain store; pop: a plain
store, the fence, a plain load, a list load and a list store (clearing the slot, so that
a popped item is not kept alive by the ring). No foreign call and no Python-level shim
call: the plain store and load are subscripts of the cells' ``view`` (on x86-64 the
cell's one-word memoryview), and the fence is the shim's ``full_fence``, a C-level
``next()`` on an ``itertools.count`` (a ``lock cmpxchg`` on x86-64). ``push`` and ``pop``
are closures over the owner's private state: on 3.13t attribute accesses are not
specialized and would cost as much as the work itself. Even so the three shared-memory
steps of pop (store, fence, load: ~150 ns together) and push's store make push + pop
about 2.5 times the builtin twin's (``perf/README.md`` has the numbers); the builtin
twin needs no fence because every deque operation is a critical section.

Thread-safety
=============

``push``, ``pop`` and ``bind_owner`` belong to the owner thread: never call them from two
threads. ``steal_into(dest)`` may be called by any thread that owns ``dest``, concurrently
with the owner and other thieves. ``len``/``is_empty`` may be called from any thread and
are approximate. In debug mode (``debug=True`` or ``ZUKI_DEBUG=1`` in the environment)
the owner is the first thread that pushes or pops (or the one that calls
``bind_owner()``), and ``push``/``pop`` from another thread raise ``NotOwnerError``.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from zuki.concurrent import atomics as _atomics
from zuki.concurrent.errors import NotOwnerError, QueueClosed, QueueFull
from zuki.concurrent.global_queue import GlobalQueue

__all__ = ["LocalQueue"]

T = TypeVar("T")

BACKENDS = ("lockfree", "builtin")
MAX_CAPACITY = 1 << 28

_NONE_MESSAGE = "None cannot be pushed: pop() uses None to mean empty"

# The steal word: top << 32 | x << 2 | state (module docstring). The hot paths spell
# the 30-bit mask as the literal 0x3FFFFFFF: a global lookup costs more than the mask.
_IDLE = 0
_ANNOUNCED = 1
_CLAIMED = 2
_M30 = 0x3FFFFFFF
_X_FIELD = _M30 << 2


def _debug_from_env() -> bool:
    return os.environ.get("ZUKI_DEBUG", "").strip() not in {"", "0"}


def _check_capacity(capacity: int) -> None:
    if (
        isinstance(capacity, bool)
        or not isinstance(capacity, int)
        or not 2 <= capacity <= MAX_CAPACITY
        or capacity & (capacity - 1)
    ):
        raise ValueError(
            f"LocalQueue capacity must be a power of two between 2 and 2**28, got {capacity!r}"
        )


def _thread_label(ident: int | None, name: str | None) -> str:
    return f"{name!r} (ident {ident})"


class LocalQueue(Generic[T]):
    """A single-owner work-stealing deque; see the module docstring.

    ``LocalQueue(capacity=256, overflow=None, *, backend="lockfree", debug=False)``:
    ``capacity`` is a power of two >= 2; ``overflow`` is the GlobalQueue that takes the
    oldest half when the queue is full; ``backend`` is ``"lockfree"`` or ``"builtin"``;
    ``debug`` (or ``ZUKI_DEBUG=1``) turns on owner checks. ``None`` is not a valid item
    (``pop`` returns ``None`` when empty).

    The owner's two operations are attributes holding closures rather than methods: on
    3.13t an attribute access is not specialized and costs about as much as a list
    store, and closures reach their state through cells instead.

    Attributes:
        push: ``push(item)``: push ``item`` at the owner's end. Owner thread only. When
            the queue is full the oldest half of it and ``item`` go to ``overflow`` in
            one ``push_batch``; if a steal is in progress just ``item`` does. Raises
            ``TypeError`` if ``item`` is ``None``; ``QueueFull`` if the queue is full and
            has no overflow; ``QueueClosed`` if it is full and the overflow queue is
            closed (the item is not pushed and no other item moves); ``NotOwnerError``
            in debug mode from another thread.
        pop: ``pop() -> item | None``: pop the newest item, ``None`` if the queue is
            empty (for the owner: items a thief is copying out are the thief's). Owner
            thread only; ``NotOwnerError`` in debug mode from another thread.

    Thread-safety: ``push``/``pop``/``bind_owner`` from the owner thread only;
    ``steal_into(dest)`` from the thread that owns ``dest``; ``len``/``is_empty`` from
    anywhere (approximate).

    Raises:
        ValueError: ``capacity`` or ``backend`` is invalid.
        TypeError: ``overflow`` is not a GlobalQueue.
    """

    __slots__ = ("_capacity", "_debug", "_overflow", "_owner_ident", "_owner_name", "pop", "push")

    backend: str
    """``"lockfree"`` or ``"builtin"``."""

    push: Callable[[T], None]
    pop: Callable[[], T | None]

    def __new__(
        cls,
        capacity: int = 256,
        overflow: GlobalQueue[T] | None = None,
        *,
        backend: str = "lockfree",
        debug: bool = False,
    ) -> LocalQueue[T]:
        if cls is not LocalQueue:
            return object.__new__(cls)
        _check_capacity(capacity)
        if overflow is not None and not isinstance(overflow, GlobalQueue):
            raise TypeError(f"overflow must be a GlobalQueue or None, got {overflow!r}")
        impl: type[LocalQueue[T]]
        if backend == "lockfree":
            impl = _LockFreeLocalQueue
        elif backend == "builtin":
            impl = _BuiltinLocalQueue
        else:
            raise ValueError(f"unknown LocalQueue backend {backend!r}: expected one of {BACKENDS}")
        return object.__new__(impl)

    def __init__(
        self,
        capacity: int = 256,
        overflow: GlobalQueue[T] | None = None,
        *,
        backend: str = "lockfree",
        debug: bool = False,
    ) -> None:
        self._capacity = capacity
        self._overflow = overflow
        self._debug = debug or _debug_from_env()
        self._owner_ident: int | None = None
        self._owner_name: str | None = None

    @property
    def capacity(self) -> int:
        """The number of slots."""
        return self._capacity

    @property
    def overflow(self) -> GlobalQueue[T] | None:
        """The GlobalQueue that takes the overflow, or ``None``."""
        return self._overflow

    @property
    def debug(self) -> bool:
        """Whether owner checks are on."""
        return self._debug

    def bind_owner(self) -> None:
        """Make the calling thread the owner (debug mode checks ``push``/``pop`` against it).

        May be called again to hand the queue to another thread, which must then be the
        only one pushing and popping.
        """
        self._owner_ident = threading.get_ident()
        self._owner_name = threading.current_thread().name

    def steal_into(self, dest: LocalQueue[T]) -> T | None:
        """Steal half of this queue's items (``n - n // 2``, oldest first) into ``dest``.

        Called by the thread that owns ``dest`` (the thief's own queue). Returns one
        stolen item to run at once (the newest of those stolen) and pushes the others
        onto ``dest``; returns ``None`` and moves nothing if this queue is empty, if
        ``dest`` is more than half full, or if another thief is mid-steal here (one
        thief at a time). Never takes more than ``dest`` has room for.

        Raises:
            ValueError: ``dest`` is this queue.
            TypeError: ``dest`` is not a LocalQueue of the same backend.
            NotOwnerError: debug mode, the caller does not own ``dest``.
        """
        raise NotImplementedError

    def __len__(self) -> int:
        """The number of items; exact for the owner, approximate for other threads."""
        raise NotImplementedError

    def is_empty(self) -> bool:
        """``len(self) == 0``."""
        return len(self) == 0

    def _install_owner_checks(self) -> None:
        """Debug mode: wrap ``push``/``pop`` in owner checks (called by subclasses)."""
        push, pop, check = self.push, self.pop, self._check_owner

        def checked_push(item: T) -> None:
            check("push")
            push(item)

        def checked_pop() -> T | None:
            check("pop")
            return pop()

        self.push = checked_push
        self.pop = checked_pop

    def _check_owner(self, operation: str) -> None:
        ident = threading.get_ident()
        if self._owner_ident is None:
            self.bind_owner()
        elif ident != self._owner_ident:
            current = _thread_label(ident, threading.current_thread().name)
            owner = _thread_label(self._owner_ident, self._owner_name)
            raise NotOwnerError(
                f"LocalQueue.{operation}() called from thread {current}, "
                f"but the queue is owned by thread {owner}"
            )

    def _check_dest(self, dest: LocalQueue[T]) -> None:
        if not isinstance(dest, LocalQueue):
            raise TypeError(f"steal_into(dest): dest must be a LocalQueue, got {dest!r}")
        if dest is self:
            raise ValueError("steal_into(dest): dest is the victim itself")
        if dest.backend != self.backend:
            raise TypeError(
                f"steal_into(dest): dest is a {dest.backend} LocalQueue, "
                f"the victim a {self.backend} one"
            )
        if dest._debug:
            dest._check_owner("steal_into")

    def _overflow_full(self) -> GlobalQueue[T]:
        """The overflow queue, or ``QueueFull`` if there is none."""
        if self._overflow is None:
            raise QueueFull(f"LocalQueue is full (capacity {self._capacity}) and has no overflow")
        return self._overflow

    def __repr__(self) -> str:
        return f"<LocalQueue {self.backend} len={len(self)} capacity={self._capacity}>"


class _LockFreeLocalQueue(LocalQueue[T]):
    """The lock-free backend (module docstring)."""

    __slots__ = (
        "_b_load",
        "_bottom",
        "_buffer",
        "_mask",
        "_push_owned",
        "_room",
        "_steal",
        "_steal_cas",
        "_steal_load",
        "_steal_store",
    )
    backend = "lockfree"

    # Owner only: the true bottom and a lower bound of top, in the closures' cells.
    # Written by the owner, read by thieves: _bottom (shim). Written by thieves (CAS, and
    # the claimer's publish) and by the owner (CAS only): _steal (shim). _buffer: slot i
    # is written by the owner while outside [top, bottom), read and cleared by whoever
    # owns it (the owner's pop, or the thief that claimed it).

    _push_owned: Callable[[list[T]], None]
    _room: Callable[[], int]

    def __init__(
        self,
        capacity: int = 256,
        overflow: GlobalQueue[T] | None = None,
        *,
        backend: str = "lockfree",
        debug: bool = False,
    ) -> None:
        super().__init__(capacity, overflow, debug=debug)
        self._mask = capacity - 1
        self._buffer: list[Any] = [None] * capacity
        self._bottom = _atomics.AtomicInt(0)
        self._b_load = self._bottom.load
        self._steal = _atomics.AtomicInt(0)
        self._steal_load = self._steal.plain_load
        self._steal_store = self._steal.plain_store
        self._steal_cas = self._steal.compare_exchange
        self._bind_owner_operations(_atomics.full_fence)
        if self._debug:
            self._install_owner_checks()

    def _bind_owner_operations(self, fence: Callable[[], object]) -> None:
        """Build the owner's operations: closures sharing the owner-private bottom."""
        buffer, mask, cap = self._buffer, self._mask, self._capacity
        b_store = self._bottom.plain_store
        steal_load, steal_cas = self._steal_load, self._steal_cas
        # view[0] / view[0] = v: plain_load() / plain_store(v) without a call (x86-64).
        b_view, steal_view = self._bottom.view, self._steal.view
        take_range, overflow_full = self._take_range, self._overflow_full
        b = 0  # the true bottom: the next index to push
        top_seen = 0  # a lower bound of top (top only grows): room checks need no load

        def push(item: T) -> None:
            nonlocal b
            if item is None:
                raise TypeError(_NONE_MESSAGE)
            if b - top_seen < cap:
                buffer[b & mask] = item
                b += 1
                b_view[0] = b  # release
                return
            push_full(item)

        def push_full(item: T) -> None:
            nonlocal b, top_seen
            while True:
                word = steal_load()
                used = (b - (word >> 32)) & 0x3FFFFFFF
                top_seen = b - used
                if used < cap:
                    buffer[b & mask] = item
                    b += 1
                    b_store(b)
                    return
                overflow = overflow_full()
                state = word & 3
                if state == _CLAIMED:
                    overflow.push(item)  # tokio's case 2: the thief will make room
                    return
                if overflow.closed:
                    overflow.push(item)  # raises QueueClosed before anything moves
                half = cap >> 1
                epoch = ((word >> 2) + (state == _ANNOUNCED)) & 0x3FFFFFFF
                claimed = ((top_seen + half) & 0x3FFFFFFF) << 32 | epoch << 2
                if steal_cas(word, claimed)[0]:
                    batch = take_range(top_seen, half)
                    top_seen += half
                    try:
                        overflow.push_batch([*batch, item])
                    except QueueClosed:
                        push_owned(batch)  # closed since we looked: keep them here
                        raise
                    return

        def pop() -> T | None:
            nonlocal b
            i = b - 1
            b_view[0] = i  # release
            fence()
            word = steal_view[0]  # acquire
            if word & 3 or (i - (word >> 32)) & 0x3FFFFFFF >= cap:
                return pop_contended(i, word)
            b = i
            i &= mask
            item: T = buffer[i]
            buffer[i] = None
            return item

        def pop_contended(i: int, word: int) -> T | None:
            """``bottom`` is already ``i``; ``word`` is the steal word seen after the fence."""
            nonlocal b
            while True:
                state = word & 3
                if state == _ANNOUNCED:  # abort the steal, then look again
                    aborted = (word >> 32) << 32 | (((word >> 2) + 1) & 0x3FFFFFFF) << 2
                    done, current = steal_cas(word, aborted)
                    word = aborted if done else current
                    continue
                # IDLE(top): take i if top <= i. CLAIMED(top, end): take i if end <= i.
                start = word >> 32 if state == _IDLE else word >> 2
                if (i - start) & 0x3FFFFFFF < cap:
                    b = i
                    i &= mask
                    item: T = buffer[i]
                    buffer[i] = None
                    return item
                b_store(b)  # empty, for the owner: undo the decrement
                return None

        def push_owned(items: list[T]) -> None:
            """Push ``items`` at the bottom; the caller checked that they fit."""
            nonlocal b
            k = len(items)
            start = b & mask
            stop = start + k
            if stop <= cap:
                buffer[start:stop] = items
            else:
                split = cap - start
                buffer[start:] = items[:split]
                buffer[: k - split] = items[split:]
            b += k
            b_store(b)

        def room() -> int:
            """Free slots, as the owner sees them (thieves can only add to them)."""
            return cap - ((b - (steal_load() >> 32)) & 0x3FFFFFFF)

        self.push = push
        self.pop = pop
        self._push_owned = push_owned
        self._room = room

    def steal_into(self, dest: LocalQueue[T]) -> T | None:
        self._check_dest(dest)
        assert isinstance(dest, _LockFreeLocalQueue)
        room = dest._room()
        if room < dest._capacity - (dest._capacity >> 1):
            return None  # dest is more than half full
        word = self._steal_load()
        if word & 3:
            return None  # another thief is active
        top = word >> 32
        available = (self._b_load() - top) & _M30
        if not available or available > self._capacity:
            return None  # empty (a racy look; saves two CASes on empty victims)
        announced = word | _ANNOUNCED
        if not self._steal_cas(word, announced)[0]:
            return None
        available = (self._b_load() - top) & _M30
        if available > self._capacity:  # bottom is top - 1 mid-pop: empty
            available = 0
        n = min(available - (available >> 1), room + 1)
        if not n:
            self._steal_cas(announced, word)  # fails only if the owner aborted us
            return None
        end = (top + n) & _M30
        if not self._steal_cas(announced, top << 32 | end << 2 | _CLAIMED)[0]:
            return None  # the owner aborted the steal
        stolen = self._take_range(top, n)
        self._steal_store(end << 32 | (word & _X_FIELD))
        last: T = stolen.pop()
        if stolen:
            dest._push_owned(stolen)
        return last

    def _take_range(self, top: int, n: int) -> list[Any]:
        """Copy out and clear the ``n`` slots from index ``top``; the caller owns them."""
        buffer = self._buffer
        start = top & self._mask
        stop = start + n
        if stop <= self._capacity:
            items = buffer[start:stop]
            buffer[start:stop] = [None] * n
            return items
        stop -= self._capacity
        items = buffer[start:] + buffer[:stop]
        buffer[start:] = [None] * (self._capacity - start)
        buffer[:stop] = [None] * stop
        return items

    def __len__(self) -> int:
        word = self._steal_load()
        n = (self._b_load() - (word >> 32)) & _M30
        if n <= self._capacity:
            return n
        return 0 if n > _M30 >> 1 else self._capacity


class _BuiltinLocalQueue(LocalQueue[T]):
    """The reference backend: a deque and a one-thief-at-a-time steal lock.

    Every deque operation is one critical section on 3.13t (one C call under the GIL
    elsewhere), so the owner's ``append``/``pop`` at the right and a thief's ``popleft``
    loop never lose or duplicate an item; when they meet in the middle one of them finds
    the deque empty. The steal lock only keeps thieves (and the owner's overflow, which
    also takes from the left) one at a time, tokio's rule; it is never waited for.
    """

    __slots__ = ("_deque", "_steal_lock")
    backend = "builtin"

    def __init__(
        self,
        capacity: int = 256,
        overflow: GlobalQueue[T] | None = None,
        *,
        backend: str = "builtin",
        debug: bool = False,
    ) -> None:
        super().__init__(capacity, overflow, debug=debug)
        self._deque: deque[T] = deque()
        self._steal_lock = threading.Lock()
        self._bind_owner_operations()
        if self._debug:
            self._install_owner_checks()

    def _bind_owner_operations(self) -> None:
        dq, cap, push_full, length = self._deque, self._capacity, self._push_full, len
        append, pop_right = dq.append, dq.pop

        def push(item: T) -> None:
            if item is None:
                raise TypeError(_NONE_MESSAGE)
            if length(dq) < cap:
                append(item)
                return
            push_full(item)

        def pop() -> T | None:
            try:
                return pop_right()
            except IndexError:
                return None

        self.push = push
        self.pop = pop

    def _push_full(self, item: T) -> None:
        overflow = self._overflow_full()
        if overflow.closed:
            overflow.push(item)  # raises QueueClosed before anything moves
        if not self._steal_lock.acquire(blocking=False):
            overflow.push(item)  # a thief is mid-steal and will make room
            return
        dq = self._deque
        try:
            if len(dq) < self._capacity:
                dq.append(item)
                return
            popleft = dq.popleft
            batch = [popleft() for _ in range(self._capacity >> 1)]
        finally:
            self._steal_lock.release()
        try:
            overflow.push_batch([*batch, item])
        except QueueClosed:
            dq.extendleft(reversed(batch))  # closed since we looked: keep them here
            raise

    def steal_into(self, dest: LocalQueue[T]) -> T | None:
        self._check_dest(dest)
        assert isinstance(dest, _BuiltinLocalQueue)
        used = len(dest._deque)
        if used > dest._capacity >> 1:
            return None  # dest is more than half full
        dq = self._deque
        if not dq or not self._steal_lock.acquire(blocking=False):
            return None
        stolen: list[T] = []
        try:
            available = len(dq)
            n = min(available - (available >> 1), dest._capacity - used + 1)
            popleft = dq.popleft
            for _ in range(n):
                stolen.append(popleft())
        except IndexError:  # the owner popped the rest meanwhile
            pass
        finally:
            self._steal_lock.release()
        if not stolen:
            return None
        last = stolen.pop()
        dest._deque.extend(stolen)
        return last

    def __len__(self) -> int:
        return len(self._deque)
