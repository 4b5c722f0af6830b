"""SyncState: the worker pool's coordination state, packed into one atomic word.

Prior art: zap's packed ``Sync`` word (``thread_pool.zig`` lines 15-37: idle, spawned, a
notified bit and the pool state; ``research/scheduler.md`` §2.2-2.4) and tokio's
``multi_thread/idle.rs`` (``num_searching``/``num_unparked`` in one ``AtomicUsize``, the
"at most half the workers searching" rule, "wake only if nobody is searching", and the
last searcher waking the next; §1.4-1.5).

Layout of the word (signed 64-bit, always non-negative)::

    bits  0-15  idle       workers parked or about to park
    bits 16-31  spawned    threads started (or being started) and not yet exited
    bits 32-47  searching  workers looking for work to steal
    bit  48     notified   a wake-up was posted and not yet consumed (zap's pseudo-wake)
    bit  49     shutdown   the pool is shutting down (sticky)

Every transition is one compare-and-swap loop on the word, so each is atomic with
respect to all the others and the counts are always consistent with one another (a CAS
is seq_cst: the transitions of all threads form one total order, which is what tokio's
no-lost-wake-up argument needs). A transition whose precondition fails returns ``False``
and changes nothing; a transition that would break a count's range (below zero, above
16 bits, idle above spawned) is a bug in the caller and raises ``ValueError``.

Racy reads are throttles, never decisions. ``should_wake`` reads the word with a plain
load (no foreign call on x86-64): a stale answer may cost a missed wake of a spare worker
(some parallelism) or an unneeded wake (some CPU), and callers must use it only that way.
Anything that decides liveness (the last searcher parking, external submission,
shutdown) goes through a CAS transition here, whose return value is authoritative.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from zuki.concurrent import atomics

__all__ = ["FIELD_MAX", "State", "SyncState"]

_BITS: Final = 16
FIELD_MAX: Final = (1 << _BITS) - 1
"""The largest idle, spawned or searching count the word can hold (and so max_workers)."""

_IDLE_SHIFT: Final = 0
_SPAWNED_SHIFT: Final = 16
_SEARCHING_SHIFT: Final = 32
_IDLE_ONE: Final = 1 << _IDLE_SHIFT
_SPAWNED_ONE: Final = 1 << _SPAWNED_SHIFT
_SEARCHING_ONE: Final = 1 << _SEARCHING_SHIFT
_NOTIFIED: Final = 1 << 48
_SHUTDOWN: Final = 1 << 49


class State(NamedTuple):
    """A decoded snapshot of the word (consistent: all fields from one load)."""

    idle: int
    spawned: int
    searching: int
    notified: bool
    shutdown: bool

    @property
    def active(self) -> int:
        """Spawned workers that are not idle."""
        return self.spawned - self.idle


def _decode(word: int) -> State:
    return State(
        idle=(word >> _IDLE_SHIFT) & FIELD_MAX,
        spawned=(word >> _SPAWNED_SHIFT) & FIELD_MAX,
        searching=(word >> _SEARCHING_SHIFT) & FIELD_MAX,
        notified=bool(word & _NOTIFIED),
        shutdown=bool(word & _SHUTDOWN),
    )


def _encode(state: State) -> int:
    return (
        state.idle << _IDLE_SHIFT
        | state.spawned << _SPAWNED_SHIFT
        | state.searching << _SEARCHING_SHIFT
        | (_NOTIFIED if state.notified else 0)
        | (_SHUTDOWN if state.shutdown else 0)
    )


class SyncState:
    """The pool's idle/spawned/searching counts, notified flag and shutdown flag.

    Thread-safety: every method may be called from any thread; each transition is one
    atomic read-modify-write (seq_cst). ``should_wake`` and ``load`` are reads; only the
    transitions' return values may be used to decide anything about liveness.

    Raises:
        ValueError: ``max_workers`` is not in ``1 .. FIELD_MAX``.
    """

    __slots__ = ("_cell", "_plain_load", "max_workers")

    def __init__(self, max_workers: int, *, backend: str | None = None) -> None:
        if not 1 <= max_workers <= FIELD_MAX:
            raise ValueError(f"max_workers must be in 1..{FIELD_MAX}, got {max_workers}")
        self.max_workers: Final = max_workers
        self._cell = atomics.AtomicInt(0, backend=backend)
        self._plain_load = self._cell.plain_load

    def load(self) -> State:
        """A consistent snapshot of the word (seq_cst load); stale as soon as it returns."""
        return _decode(self._cell.load())

    def should_wake(self) -> bool:
        """Is any worker idle while none is searching (and the pool running)?

        A plain load, no foreign call on x86-64: a throttle for the notify fast path,
        never a decision (see the module docstring).
        """
        word = self._plain_load()
        return bool(word & FIELD_MAX) and not word & (FIELD_MAX << _SEARCHING_SHIFT | _SHUTDOWN)

    # -- spawning ---------------------------------------------------------------------------

    def try_spawn(self) -> bool:
        """Count one more thread, if below ``max_workers`` and not shut down.

        Returns whether it did: the caller that gets ``True`` must start the thread, or
        call ``unspawn`` if the start fails.
        """
        cell = self._cell
        word = cell.load()
        while True:
            if word & _SHUTDOWN or (word >> _SPAWNED_SHIFT) & FIELD_MAX >= self.max_workers:
                return False
            ok, word = cell.compare_exchange(word, word + _SPAWNED_ONE)
            if ok:
                return True

    def unspawn(self) -> None:
        """Count one thread fewer (it exited, or failed to start).

        Raises:
            ValueError: no thread is counted, or every counted thread is idle.
        """
        cell = self._cell
        word = cell.load()
        while True:
            state = _decode(word)
            if state.spawned <= state.idle:
                raise ValueError(f"unspawn: no non-idle spawned worker to remove in {state}")
            ok, word = cell.compare_exchange(word, word - _SPAWNED_ONE)
            if ok:
                return

    # -- idling -----------------------------------------------------------------------------

    def begin_idle(self) -> bool:
        """Count this worker idle, unless a notification is pending.

        Returns ``True`` if the worker is now counted idle (it may park), ``False`` if it
        consumed a pending notification instead (zap's pseudo-wake-up: it must look for
        work again rather than park).

        Raises:
            ValueError: every spawned worker is already counted idle.
        """
        cell = self._cell
        word = cell.load()
        while True:
            if word & _NOTIFIED:
                ok, word = cell.compare_exchange(word, word & ~_NOTIFIED)
                if ok:
                    return False
                continue
            state = _decode(word)
            if state.idle >= state.spawned:
                raise ValueError(f"begin_idle: all spawned workers are already idle in {state}")
            ok, word = cell.compare_exchange(word, word + _IDLE_ONE)
            if ok:
                return True

    def end_idle(self) -> None:
        """Count one idle worker as active again.

        Raises:
            ValueError: no worker is counted idle.
        """
        cell = self._cell
        word = cell.load()
        while True:
            if not word & FIELD_MAX:
                raise ValueError(f"end_idle: no idle worker in {_decode(word)}")
            ok, word = cell.compare_exchange(word, word - _IDLE_ONE)
            if ok:
                return

    def try_wake(self) -> bool:
        """For a notifier: move one idle worker to searching, if any is idle and none searches.

        tokio's ``notify_should_wakeup`` and ``unpark_one`` in one CAS. Returns ``True``
        if the caller must now unpark one parked worker (which starts out searching).
        """
        cell = self._cell
        word = cell.load()
        while True:
            if word & _SHUTDOWN or not word & FIELD_MAX or word & (FIELD_MAX << _SEARCHING_SHIFT):
                return False
            ok, word = cell.compare_exchange(word, word - _IDLE_ONE + _SEARCHING_ONE)
            if ok:
                return True

    # -- searching --------------------------------------------------------------------------

    def try_begin_search(self) -> bool:
        """Count this worker searching, unless half the active workers already search.

        tokio's rule (``idle.rs``, ``transition_worker_to_searching``): refused when
        ``2 * searching >= spawned - idle``, or after shutdown. Returns whether it did.
        """
        cell = self._cell
        word = cell.load()
        while True:
            state = _decode(word)
            if state.shutdown or 2 * state.searching >= state.spawned - state.idle:
                return False
            if state.searching >= FIELD_MAX:
                raise ValueError(f"try_begin_search: searching count overflows in {state}")
            ok, word = cell.compare_exchange(word, word + _SEARCHING_ONE)
            if ok:
                return True

    def end_search(self) -> bool:
        """Stop counting this worker as searching.

        Returns ``True`` if it was the last searcher: tokio's rule says the last searcher
        that finds work, or that parks, must then check for work and wake a worker.

        Raises:
            ValueError: no worker is counted searching.
        """
        cell = self._cell
        word = cell.load()
        while True:
            searching = (word >> _SEARCHING_SHIFT) & FIELD_MAX
            if searching == 0:
                raise ValueError(f"end_search: no searching worker in {_decode(word)}")
            ok, word = cell.compare_exchange(word, word - _SEARCHING_ONE)
            if ok:
                return searching == 1

    # -- flags ------------------------------------------------------------------------------

    def set_notified(self) -> bool:
        """Post a notification; ``True`` if this call set the flag (it was clear)."""
        return not self._cell.fetch_or(_NOTIFIED) & _NOTIFIED

    def consume_notified(self) -> bool:
        """Take the notification; ``True`` if one was pending (this call cleared it)."""
        return bool(self._cell.fetch_and(~_NOTIFIED) & _NOTIFIED)

    def shutdown(self) -> bool:
        """Mark the pool shut down (sticky); ``True`` if this call did it."""
        return not self._cell.fetch_or(_SHUTDOWN) & _SHUTDOWN

    def __repr__(self) -> str:
        return f"SyncState(max_workers={self.max_workers}, {self.load()})"


def encode(state: State) -> int:
    """The word for ``state`` (for tests and debugging)."""
    if not all(0 <= n <= FIELD_MAX for n in (state.idle, state.spawned, state.searching)):
        raise ValueError(f"{state} does not fit in {_BITS}-bit fields")
    return _encode(state)
