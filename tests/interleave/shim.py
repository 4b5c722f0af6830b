"""The instrumented shim: zuki's atomics, locks, deques and futex, one step at a time.

``instrumented()`` swaps them in for the duration of a ``with`` block:

* ``zuki.concurrent.atomics.AtomicInt``/``AtomicSlab``/``fence`` become ``SimAtomicInt``,
  ``SimAtomicSlab`` and ``sim_fence`` (and so does every name a zuki module imported
  from there). The queues look these up when they build a structure, so a structure
  built inside the block is made of simulated cells; one built outside is not.
* In the queue modules, ``deque`` and ``threading.Lock`` become ``SimDeque`` and
  ``SimLock``: each deque method call and each lock operation is one step (what a
  per-object critical section on 3.13t, or one C call under the GIL, makes atomic).
* ``Event``'s futex calls become a simulated futex: ``FUTEX_WAIT`` compares the low
  32 bits of the cell with the expected value and blocks the simulated thread until a
  simulated ``FUTEX_WAKE``; the event's clock becomes a virtual one that moves only
  when a timed wait times out (which the checker lets happen only when nothing else
  can run). The portable event's ``threading.Condition`` becomes ``SimCondition``.

Every operation is a scheduling point *before* it takes effect (``Run.point``), then
takes effect at once (the simulation is sequentially consistent: memory orders are
validated like the real shim does, but not otherwise modelled). Outside a run (the
model's ``setup`` and ``check``, on the controlling thread) the same objects work as
plain single-threaded values.

Two more tools for models: ``SimDict`` (a dict whose ``get``/``setdefault``/``pop``/
``del`` are steps, for structures that keep shared bookkeeping in a dict: swap it into an
instance), and ``private(tid, *cells)``, which declares cells that only one simulated
thread touches (a thief's own queue): their operations are then not scheduling points,
which prunes schedules that cannot differ, and any other thread touching them fails.

``racy_cas=True`` plants a bug for the checker's self-test: ``compare_exchange`` (and
the slab's) becomes a load, a scheduling point, and a store.
"""

from __future__ import annotations

import contextlib
import operator
import reprlib
import threading
import types
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from zuki.concurrent import atomics

from .checker import RUN_START_HOOKS, _tls, register, site_label

__all__ = [
    "SimAtomicInt",
    "SimAtomicSlab",
    "SimCondition",
    "SimDeque",
    "SimDict",
    "SimLock",
    "instrumented",
    "private",
    "sim_fence",
    "sim_full_fence",
]

SEQ_CST = atomics.SEQ_CST
_ORDER_NAMES = {int(o): o.name for o in atomics.MemoryOrder}
_LOAD_ORDERS = frozenset({0, 1, 2, 5})
_STORE_ORDERS = frozenset({0, 3, 5})
_RMW_ORDERS = frozenset(range(6))
_MASK = (1 << 64) - 1
_MAX = (1 << 63) - 1


def _wrap(value: int) -> int:
    value = operator.index(value) & _MASK
    return value - (1 << 64) if value > _MAX else value


_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 60
_repr.maxlist = _repr.maxtuple = 6
_repr.maxlevel = 2

_ORDERED_OPS = frozenset(
    {"load", "store", "compare_exchange", "fetch_add", "fetch_sub", "fetch_and", "fetch_or"}
) | {"exchange"}


def _format_args(op: str, args: tuple[Any, ...]) -> str:
    """Arguments as written in a trace; a trailing memory order by its name."""
    shown = [_repr.repr(a) for a in args]
    if op in _ORDERED_OPS and args and args[-1] in _ORDER_NAMES:
        shown[-1] = _ORDER_NAMES[args[-1]]
    return ", ".join(shown)


def _check(order: int, allowed: frozenset[int], op: str) -> None:
    if order not in allowed:
        raise ValueError(f"invalid memory order {order!r} for {op}")


class SimAtomicInt:
    """A simulated ``AtomicInt``: every operation is one scheduling point."""

    __slots__ = ("_label", "_owner", "_site", "_v", "plain_load", "plain_store")
    backend = "sim"
    racy_cas = False

    def __init__(self, value: int = 0, *, backend: str | None = None) -> None:
        self._v = _wrap(value)
        self._owner: int | None = None
        self._site: tuple[int, str, int] | str = register(self)
        self._label: str | None = None
        self.plain_load = self._plain_load
        self.plain_store = self._plain_store

    @classmethod
    def _in_slab(cls, slab: SimAtomicSlab, i: int) -> SimAtomicInt:
        cell = object.__new__(cls)
        cell._v = 0
        cell._owner = None
        cell._site = f"{slab.label()}[{i}]"
        cell._label = None
        cell.plain_load = cell._plain_load
        cell.plain_store = cell._plain_store
        return cell

    # --- naming, for traces --------------------------------------------------------------

    def label(self) -> str:
        if self._label is None:
            site = self._site
            self._label = site if isinstance(site, str) else site_label("AtomicInt", *site)
        return self._label

    def describe(self, op: str, args: tuple[Any, ...]) -> str:
        return f"{self.label()}.{op}({_format_args(op, args)})"

    def __repr__(self) -> str:
        return f"SimAtomicInt({self._v}) {self.label()}"

    @property
    def address(self) -> int:
        """A fake address: only the simulated futex ever sees it."""
        return 4096 * (id(self) & 0xFFFFFF)

    # --- loads and stores ----------------------------------------------------------------

    def load(self, order: int = SEQ_CST) -> int:
        _check(order, _LOAD_ORDERS, "load")
        run = _tls.run
        if run is None or (self._owner is not None and _private(run, self)):
            return self._v
        run.point(self, "load", (order,))
        v = self._v
        run.observe(v, False)
        return v

    def _plain_load(self) -> int:
        run = _tls.run
        if run is None or (self._owner is not None and _private(run, self)):
            return self._v
        run.point(self, "plain_load")
        v = self._v
        run.observe(v, False)
        return v

    def store(self, value: int, order: int = SEQ_CST) -> None:
        _check(order, _STORE_ORDERS, "store")
        self._write("store", value, (value, order))

    def _plain_store(self, value: int) -> None:
        if not -(1 << 63) <= value <= _MAX:
            raise ValueError(f"plain_store: {value} is out of the signed 64-bit range")
        self._write("plain_store", value, (value,))

    def _write(self, op: str, value: int, args: tuple[Any, ...]) -> None:
        run = _tls.run
        if run is not None and self._owner is not None and _private(run, self):
            run = None
        if run is not None:
            run.point(self, op, args)
        self._v = _wrap(value)
        if run is not None:
            run.observe(None, True)

    # --- read-modify-writes --------------------------------------------------------------

    def compare_exchange(
        self, expected: int, desired: int, order: int = SEQ_CST
    ) -> tuple[bool, int]:
        _check(order, _RMW_ORDERS, "compare_exchange")
        expected, desired = _wrap(expected), _wrap(desired)
        run = _tls.run
        if run is None or (self._owner is not None and _private(run, self)):
            if self._v != expected:
                return False, self._v
            self._v = desired
            return True, expected
        if self.racy_cas:
            return self._racy_cas(run, expected, desired)
        run.point(self, "compare_exchange", (expected, desired, order))
        v = self._v
        if v != expected:
            run.observe((False, v), False)
            return False, v
        self._v = desired
        run.observe((True, expected), True)
        return True, expected

    def _racy_cas(self, run: Any, expected: int, desired: int) -> tuple[bool, int]:
        """The planted bug: a CAS split into a load and a store, with a step between."""
        run.point(self, "cas-load", (expected,))
        v = self._v
        run.observe(v, False)
        if v != expected:
            return False, v
        run.point(self, "cas-store", (desired,))
        self._v = desired
        run.observe(None, True)
        return True, expected

    def _rmw(self, op: str, fn: Any, n: int, order: int) -> int:
        _check(order, _RMW_ORDERS, op)
        run = _tls.run
        if run is not None and self._owner is not None and _private(run, self):
            run = None
        if run is not None:
            run.point(self, op, (n, order))
        old = self._v
        self._v = _wrap(fn(old, n))
        if run is not None:
            run.observe(old, True)
        return old

    def fetch_add(self, n: int, order: int = SEQ_CST) -> int:
        return self._rmw("fetch_add", operator.add, n, order)

    def fetch_sub(self, n: int, order: int = SEQ_CST) -> int:
        return self._rmw("fetch_sub", operator.sub, n, order)

    def fetch_and(self, mask: int, order: int = SEQ_CST) -> int:
        return self._rmw("fetch_and", operator.and_, mask, order)

    def fetch_or(self, mask: int, order: int = SEQ_CST) -> int:
        return self._rmw("fetch_or", operator.or_, mask, order)

    def exchange(self, value: int, order: int = SEQ_CST) -> int:
        return self._rmw("exchange", lambda _old, new: new, value, order)

    def add(self, n: int = 1) -> int:
        return _wrap(self.fetch_add(n) + n)

    @property
    def view(self) -> Any:
        return atomics._WordView(self._plain_load, self._plain_store)

    def bind_cas(self) -> Any:
        return lambda expected, desired: self.compare_exchange(expected, desired)[0]

    def bind_fetch_add(self, n: int) -> Any:
        return lambda: self.fetch_add(n)

    def sub(self, n: int = 1) -> int:
        return _wrap(self.fetch_sub(n) - n)


def _private(run: Any, cell: SimAtomicInt) -> bool:
    """True (no scheduling point) for the owner of a private cell; anyone else fails."""
    tid = run.cur.tid
    if tid != cell._owner:
        raise AssertionError(
            f"{cell.label()} is declared private to t{cell._owner}, but t{tid} touched it"
        )
    return True


def private(tid: int, *cells: SimAtomicInt | SimAtomicSlab) -> None:
    """Declare ``cells`` private to simulated thread ``tid`` in this run: their operations
    are not scheduling points (nothing else can observe them), and any other simulated
    thread touching one fails the run. Call it from a model's ``setup``."""
    for cell in cells:
        for c in cell._cells if isinstance(cell, SimAtomicSlab) else [cell]:
            c._owner = tid


class RacySimAtomicInt(SimAtomicInt):
    """``SimAtomicInt`` with the planted bug (``racy_cas``)."""

    __slots__ = ()
    racy_cas = True


class SimAtomicSlab:
    """A simulated ``AtomicSlab``: ``n`` ``SimAtomicInt`` cells; ranges are one step per cell."""

    __slots__ = ("_cells", "_label", "_site")
    backend = "sim"
    cell_class: type[SimAtomicInt] = SimAtomicInt

    def __init__(self, n: int, *, padded: bool = False, backend: str | None = None) -> None:
        n = operator.index(n)
        if n < 0:
            raise ValueError(f"AtomicSlab size must be >= 0, got {n}")
        self._site = register(self)
        self._label: str | None = None
        self._cells = [self.cell_class._in_slab(self, i) for i in range(n)]

    def label(self) -> str:
        if self._label is None:
            self._label = site_label("AtomicSlab", *self._site)
        return self._label

    def __len__(self) -> int:
        return len(self._cells)

    def cell(self, i: int) -> SimAtomicInt:
        return self._cells[i]

    def load(self, i: int, order: int = SEQ_CST) -> int:
        return self._cells[i].load(order)

    def store(self, i: int, value: int, order: int = SEQ_CST) -> None:
        self._cells[i].store(value, order)

    def compare_exchange(
        self, i: int, expected: int, desired: int, order: int = SEQ_CST
    ) -> tuple[bool, int]:
        return self._cells[i].compare_exchange(expected, desired, order)

    def fetch_add(self, i: int, n: int, order: int = SEQ_CST) -> int:
        return self._cells[i].fetch_add(n, order)

    def exchange(self, i: int, value: int, order: int = SEQ_CST) -> int:
        return self._cells[i].exchange(value, order)

    def plain_load_at(self, i: int) -> int:
        return self._cells[i].plain_load()

    def plain_store_at(self, i: int, value: int) -> None:
        self._cells[i].plain_store(value)

    def _check_range(self, start: int, stop: int) -> None:
        if not 0 <= start <= stop <= len(self._cells):
            raise IndexError(f"range {start}:{stop} out of bounds for an AtomicSlab")

    def load_range(self, start: int, stop: int) -> list[int]:
        """Each cell an acquire load of its own, in index order (not a snapshot)."""
        self._check_range(start, stop)
        return [c.plain_load() for c in self._cells[start:stop]]

    def all_equal(self, start: int, stop: int, value: int) -> bool:
        """``load_range(start, stop)`` all equal to ``value``: one step per cell."""
        return all(v == value for v in self.load_range(start, stop))

    def store_range(self, start: int, values: Sequence[int]) -> None:
        """Each value a release store of its own, in index order."""
        self._check_range(start, start + len(values))
        for c, v in zip(self._cells[start : start + len(values)], values, strict=True):
            c.plain_store(v)


class RacySimAtomicSlab(SimAtomicSlab):
    __slots__ = ()
    cell_class = RacySimAtomicInt


class _Fence:
    def describe(self, op: str, args: tuple[Any, ...]) -> str:
        return f"fence({_ORDER_NAMES[args[0]]})"


_FENCE = _Fence()


def sim_full_fence() -> None:
    """``full_fence()``: ``sim_fence(SEQ_CST)``."""
    sim_fence(SEQ_CST)


def sim_fence(order: int = SEQ_CST) -> None:
    """A fence: a scheduling point that changes nothing (the simulation is already SC)."""
    _check(order, _RMW_ORDERS, "fence")
    run = _tls.run
    if run is not None:
        run.point(_FENCE, "fence", (order,))
        run.observe(None, False)


# --------------------------------------------------------------------------------------
# builtins: deque, Lock, Condition
# --------------------------------------------------------------------------------------


def _step(obj: Any, op: str, args: tuple[Any, ...], wrote: bool, fn: Any) -> Any:
    run = _tls.run
    if run is None:
        return fn(*args)
    run.point(obj, op, args)
    try:
        value = fn(*args)
    except (IndexError, KeyError) as exc:
        run.observe(type(exc).__name__, wrote)
        raise
    run.observe(value, wrote)
    return value


class SimDeque(deque):  # type: ignore[type-arg]
    """A ``collections.deque`` whose every method call is one scheduling point."""

    def __init__(self, iterable: Iterable[Any] = (), maxlen: int | None = None) -> None:
        super().__init__(iterable, maxlen)
        self._site = register(self)

    def label(self) -> str:
        return site_label("deque", *self._site)

    def append(self, x: Any) -> None:
        _step(self, "append", (x,), True, super().append)

    def appendleft(self, x: Any) -> None:
        _step(self, "appendleft", (x,), True, super().appendleft)

    def extend(self, xs: Iterable[Any]) -> None:
        _step(self, "extend", (list(xs),), True, super().extend)

    def extendleft(self, xs: Iterable[Any]) -> None:
        _step(self, "extendleft", (list(xs),), True, super().extendleft)

    def pop(self) -> Any:
        return _step(self, "pop", (), True, super().pop)

    def popleft(self) -> Any:
        return _step(self, "popleft", (), True, super().popleft)

    def clear(self) -> None:
        _step(self, "clear", (), True, super().clear)

    def __len__(self) -> int:
        return int(_step(self, "len", (), False, super().__len__))

    def __bool__(self) -> bool:
        return bool(_step(self, "bool", (), False, super().__len__))


class SimDict(dict):  # type: ignore[type-arg]
    """A ``dict`` whose ``get``/``setdefault``/``del``/``pop`` are scheduling points.

    For structures that keep shared bookkeeping in a dict (the GlobalQueue's segments):
    swap it into an instance after construction (``queue._segments = SimDict()``).
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._site = register(self)

    def label(self) -> str:
        return site_label("dict", *self._site)

    def get(self, key: Any, default: Any = None) -> Any:
        return _step(self, "get", (key, default), False, super().get)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        return _step(self, "setdefault", (key, default), True, super().setdefault)

    def pop(self, key: Any, *default: Any) -> Any:
        return _step(self, "pop", (key, *default), True, super().pop)

    def __delitem__(self, key: Any) -> None:
        _step(self, "del", (key,), True, super().__delitem__)

    def __getitem__(self, key: Any) -> Any:
        return _step(self, "getitem", (key,), False, super().__getitem__)

    def __setitem__(self, key: Any, value: Any) -> None:
        _step(self, "setitem", (key, value), True, super().__setitem__)


class SimLock:
    """A simulated ``threading.Lock``: acquire and release are steps; a held lock blocks."""

    def __init__(self) -> None:
        self._held = False
        self._site = register(self)

    def label(self) -> str:
        return site_label("Lock", *self._site)

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        run = _tls.run
        if run is None:
            if self._held:
                raise RuntimeError("SimLock: would block outside a simulated run")
            self._held = True
            return True
        run.point(self, "acquire", () if blocking else (False,))
        while self._held:
            if not blocking:
                run.observe(False, False)
                return False
            if not run.block(self, timed=timeout >= 0):
                return False
        self._held = True
        run.observe(True, True)
        return True

    def release(self) -> None:
        run = _tls.run
        if run is not None:
            run.point(self, "release")
        if not self._held:
            raise RuntimeError("release unlocked lock")
        self._held = False
        if run is not None:
            run.wake(self, 1)
            run.observe(None, True)

    def locked(self) -> bool:
        return self._held

    __enter__ = acquire

    def __exit__(self, *exc: object) -> None:
        self.release()


class SimCondition:
    """A simulated ``threading.Condition`` over a ``SimLock``."""

    def __init__(self, lock: SimLock | None = None) -> None:
        self._lock = lock if lock is not None else SimLock()
        self._site = register(self)

    def label(self) -> str:
        return site_label("Condition", *self._site)

    def __enter__(self) -> bool:
        return self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    def wait(self, timeout: float | None = None) -> bool:
        run = _tls.run
        if run is None:
            raise RuntimeError("SimCondition.wait outside a simulated run")
        run.point(self, "wait")
        lock = self._lock
        if not lock._held:
            raise RuntimeError("cannot wait on un-acquired lock")
        # Releasing the lock and starting to wait are one step, as in threading.Condition
        # (the waiter is registered before the lock is released).
        lock._held = False
        run.wake(lock, 1)
        run.observe(None, True)
        woken = run.block(self, timed=timeout is not None)
        if not woken:
            _timed_out(run, timeout)
        self._lock.acquire()
        return woken

    def notify(self, n: int = 1) -> None:
        run = _tls.run
        if run is not None:
            run.point(self, "notify", (n,))
            run.observe(run.wake(self, n), True)

    def notify_all(self) -> None:
        run = _tls.run
        if run is not None:
            run.point(self, "notify_all")
            run.observe(run.wake(self), True)


class _VirtualTime:
    """The clock of simulated timed waits: moves only when one of them times out."""

    START = 1024.0
    now = START

    @classmethod
    def monotonic(cls) -> float:
        return cls.now

    @classmethod
    def reset(cls) -> None:
        cls.now = cls.START


#: Simulated threads (by id) whose timed wait ran out in the current run, in order.
TIMED_OUT: list[int] = []

RUN_START_HOOKS += [_VirtualTime.reset, TIMED_OUT.clear]


def _timed_out(run: Any, timeout: float | None) -> None:
    _VirtualTime.now += timeout or 0.0
    TIMED_OUT.append(run.cur.tid)


def _threading_proxy() -> types.SimpleNamespace:
    """``threading`` with ``Lock``/``Condition`` simulated, everything else real."""
    proxy = types.SimpleNamespace(**vars(threading))
    proxy.Lock = SimLock
    proxy.Condition = SimCondition
    return proxy


# --------------------------------------------------------------------------------------
# the futex
# --------------------------------------------------------------------------------------

_FUTEX_WORD = 0xFFFFFFFF


def _sim_futex_wait(event: Any, expected: int, timeout: float | None) -> None:
    """FUTEX_WAIT: sleep if the word still holds ``expected``, until a FUTEX_WAKE."""
    cell = event._cell
    run = _tls.run
    if run is None:
        raise RuntimeError("simulated futex wait outside a simulated run")
    run.point(cell, "futex_wait", (expected,))
    if cell._v & _FUTEX_WORD != expected:
        run.observe("EAGAIN", False)
        return
    run.observe("sleeps", True)
    if not run.block(cell, timed=timeout is not None):
        _timed_out(run, timeout)


def _sim_futex_wake(event: Any, count: int) -> None:
    """FUTEX_WAKE: make up to ``count`` simulated sleepers on the word runnable."""
    cell = event._cell
    run = _tls.run
    if run is None:
        return
    run.point(cell, "futex_wake", (count,))
    run.observe(run.wake(cell, count), True)


# --------------------------------------------------------------------------------------
# swapping it all in
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def instrumented(*, racy_cas: bool = False) -> Iterator[None]:
    """Swap the simulated shim into zuki for the duration of the block (see module doc)."""
    from zuki.concurrent import event, global_queue, local_queue

    int_cls, slab_cls = (
        (RacySimAtomicInt, RacySimAtomicSlab) if racy_cas else (SimAtomicInt, SimAtomicSlab)
    )
    real = {
        "AtomicInt": atomics.AtomicInt,
        "AtomicSlab": atomics.AtomicSlab,
        "fence": atomics.fence,
        "full_fence": atomics.full_fence,
    }
    sim = {
        "AtomicInt": int_cls,
        "AtomicSlab": slab_cls,
        "fence": sim_fence,
        "full_fence": sim_full_fence,
    }
    patches: list[tuple[object, str, object]] = [(atomics, name, sim[name]) for name in real]
    for module in (global_queue, local_queue, event):
        for name, obj in real.items():
            if getattr(module, name, None) is obj:
                patches.append((module, name, sim[name]))
    proxy = _threading_proxy()
    for module in (global_queue, local_queue):
        patches.append((module, "deque", SimDeque))
        patches.append((module, "threading", proxy))
    patches += [
        (event._FutexEvent, "_futex_wait", _sim_futex_wait),
        (event._FutexEvent, "_futex_wake", _sim_futex_wake),
        (event, "threading", proxy),
        (event, "time", _VirtualTime),
    ]
    saved = [(target, name, getattr(target, name)) for target, name, _ in patches]
    try:
        for target, name, value in patches:
            setattr(target, name, value)
        yield
    finally:
        for target, name, value in reversed(saved):
            setattr(target, name, value)
