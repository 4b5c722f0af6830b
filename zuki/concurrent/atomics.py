"""The atomics shim: 64-bit atomic cells with C11 memory orders, in pure Python.

Every atomic operation in zuki goes through this module, so that memory ordering lives in
one place and the deterministic interleaving checker can swap the whole module for an
instrumented one (tokio's ``src/loom/mod.rs`` idea).

What it offers
==============

``AtomicInt`` is one signed 64-bit cell alone on a 64-byte cache line; ``AtomicSlab`` is
``n`` such cells in one buffer (packed, or one per cache line), for the queues' arrays of
slots. Both speak the C11 vocabulary: ``load``, ``store``, ``compare_exchange``,
``fetch_add/sub/and/or``, ``exchange``, and a free function ``fence``, each taking a C11
memory order (``RELAXED`` .. ``SEQ_CST``, the ``__ATOMIC_*`` values). Values wrap as
signed 64-bit two's complement. A cell never holds a Python object's address: only
integers (indices, counters, packed state words).

How: libatomic through ctypes
=============================

There is no atomic read-modify-write on a memory word in pure Python, so the
read-modify-writes call gcc's ``libatomic`` (``__atomic_fetch_add_8``,
``__atomic_compare_exchange_8``, ...) through ``ctypes``. The choices, each measured:

* ``ctypes.PyDLL``, not ``CDLL``: these calls never block, so there is no reason to
  detach the thread state around them, which saves the detach/attach pair on every call.
  (A *blocking* call must detach: ``event.py`` uses ``CDLL`` for ``futex``.)
* No ``argtypes``. ``argtypes`` makes ctypes call ``from_param`` for every argument on
  every call (about +400 ns per call on 3.13t). Instead the cell's address is a
  ``c_void_p`` built once per cell, and values are passed as Python ints when they fit in
  32 bits. ctypes passes such an int as a C ``int``; libffi sign-extends a C ``int`` to
  the full 64-bit argument register on x86-64 and aarch64, which an import-time probe
  checks (``_probe_int_args``). Values that do not fit, or every value on a platform
  where the probe fails, are written into a per-thread scratch ``c_int64`` and passed
  from there (constructing a fresh ``c_int64`` per call costs more). A bare int is never
  passed as a pointer: that would truncate the address to 32 bits.
* ``restype`` is ``c_int64`` (or ``c_bool`` for the CAS), so results come back as Python
  ints with no ``.value`` round trip. All prototypes are set up once, at import, on one
  thread (ctypes prototype creation is not thread-safe on 3.13t, cpython#127945).
* ``compare_exchange`` needs a pointer to ``expected``, which the callee overwrites on
  failure. Sharing one scratch word between threads would race, so each thread owns one
  (a ``threading.local`` slot, created on first use); a ``threading.local`` read
  (~130 ns) was measured cheaper than popping and pushing a scratch from a shared free
  list (~225 ns) or a dict keyed by ``threading.get_ident()`` (~190 ns). The desired
  value, when it does not fit in 32 bits, travels in the same thread's scratch.
* Buffers are ``bytearray``s pinned by a ``c_int64.from_buffer`` anchor, never
  ``(c_int64 * n)`` arrays, which would create ctypes types at run time (see
  ``_aligned_words``). Each cell or slab keeps its buffer alive as long as it exists.

Why plain loads and stores are enough on x86-64
===============================================

A memoryview over the cell's buffer reads and writes an aligned 8-byte word with one
``mov`` (CPython's ``memoryview`` packs and unpacks through a fixed-size ``memcpy``).
x86-64 is TSO: an aligned ``mov`` load already has acquire semantics and an aligned
``mov`` store release semantics (C11 maps relaxed, acquire and seq_cst loads, and relaxed
and release stores, to a plain ``mov``). So on x86-64 (``PLAIN_ORDERS_FREE``) every
``load`` and every non-seq_cst ``store`` is a memoryview access, with no foreign call,
and ``plain_load``/``plain_store`` are C-level callables (a ``functools.partial`` over
``operator.getitem``/``setitem``) that a hot path can call without a Python frame. A
seq_cst store is the plain store followed by the full fence below (C11's
``mov; mfence`` mapping). Elsewhere (aarch64, ...) loads and stores go through
``__atomic_load_8``/``__atomic_store_8``, and ``plain_load``/``plain_store`` are an
acquire load and a release store through libatomic.

The fence trick
===============

A seq_cst ``fence()`` must cost no foreign call on x86-64 if it can help it. Any
``lock``-prefixed read-modify-write is a full barrier on x86, whatever address it
touches. On the free-threaded build ``next()`` on an ``itertools.count`` is a C-level
seq_cst compare-and-swap (``count_next``, gh-120496, backported to 3.13): disassembling
``count_next`` in the 3.13.5t binary shows ``lock cmpxchg``. So is every
``threading.Lock`` acquire and release (``PyMutex``, a seq_cst byte CAS). Both were
measured: ``count.__next__`` costs ~55 ns, a Lock acquire+release ~130 ns, and the
count cannot block, so ``fence`` (and a seq_cst ``store`` on x86-64) uses a
module-private count's ``__next__`` (``full_fence``, callable with no Python frame).
Threads share that count: under contention its cache line moves between cores, which
costs time but never correctness (the CAS loop retries). **This is a CPython
implementation detail**, not a documented guarantee, and it is relied on only on
x86-64. On GIL builds every Python-level access is made under the GIL, whose hand-off
is itself a full barrier, so the same call is trivially enough.
Elsewhere the fence is libatomic's ``atomic_thread_fence(SEQ_CST)`` (or, without it, a
seq_cst ``__atomic_fetch_add_8(0)`` on a private cell). Acquire and release fences are
compiler-only on x86-64 and cost nothing at the Python level.

The fallback: lock striping
===========================

If libatomic cannot be loaded (a minimal image without gcc's runtime), or
``ZUKI_ATOMICS=locked`` is set, ``BACKEND`` is ``"locked"``: every operation on a cell,
its ``plain_load``/``plain_store`` included, runs under one of 64 ``threading.Lock``
stripes chosen by the cell's address. A lock acquire and release are seq_cst RMWs and
give happens-before between operations on the same cell, so every order is honoured
(everything is in effect seq_cst). ``AtomicInt(v, backend="locked")`` and
``AtomicSlab(n, backend="locked")`` build fallback cells in-process, for tests.

Costs
=====

ns per operation, single thread, free-threaded CPython 3.13.5 (no PGO), 2-core x86-64
VM shared with other work (load average 6-10 while measuring): each figure is the best
of 40 interleaved ``timeit`` samples of 4,000 calls of a bound method or callable, loop
overhead (~9 ns) included. Absolute numbers moved by up to 2x between runs; compare
within a row. "generic" is the all-libatomic cell class non-x86 platforms get (measured
here on x86-64); "locked" is the fallback.

==============================  =========  =======  ======  =================================
operation                       libatomic  generic  locked  what it costs on x86-64
==============================  =========  =======  ======  =================================
``load()`` (any order)          186        644      492     method + memoryview read
``store(v, RELEASE)``           225        734      762     method + memoryview write
``store(v)`` (seq_cst)          247        732      781     + ``full_fence``
``plain_load()``                55         375      303     C-level partial, no Python frame
``plain_store(v)``              75         718      313     C-level partial, no Python frame
``fetch_add(1)``/``add(1)``     ~790       ~790     1799    one foreign call (raw: 483)
``fetch_add(2**40)``            1558       1659     1264    + a ``c_int64`` argument
``exchange(v)``                 804        793      1044    one foreign call
``compare_exchange`` ok/fail    1336/1473  ~1900    1162    scratch + one foreign call
``compare_exchange(0, 2**40)``  1481       1446     1370    desired through the scratch
``fence()`` / ``full_fence()``  142 / 59                    ``count.__next__``
``fence(ACQUIRE)``              139                         order check only
``load_range`` per cell         9.8        413      372     one ``tolist``
``store_range`` per cell        53         880      426     C-level ``map`` of stores
==============================  =========  =======  ======  =================================

Added later (same machine, a later and differently loaded run: best of 201-301 samples
of 1,000 calls; x86-64 libatomic backend only):

==================================  =========  ==============================================
operation                           ns         how
==================================  =========  ==============================================
``bind_fetch_add(2)()``             350-450    ``partial`` over the foreign call, ``byref``
``bind_cas()(e, d)``                ~950       closure: ``threading.local`` read + one call
``view[0]`` / ``view[0] = v``       43 / 48    memoryview subscript, no call at all
``store_range`` per cell (256)      ~2.4       one ``memcpy`` from an ``array('q')``
``all_equal`` per cell (256)        ~5         one memoryview comparison
``AtomicSlab(1024)``                7-24 us    cells made lazily (eagerly: 2.8-15 ms)
==================================  =========  ==============================================

Why ``byref``: ctypes passes a ``byref`` object as it is, while a ``c_void_p`` argument
costs a new ``PyCArgObject`` per call; measured in one run, a raw CAS 1016 -> 659 ns and
a raw ``fetch_add`` 474 -> 390 ns. The ``bind_*`` callables use it; the methods still
pass ``c_void_p`` (they are not on the queues' hot paths).

Reference points in the same run: ``next(count)`` 89, ``Lock`` acquire+release 131,
``deque`` append+pop 113, a bare ``__atomic_fetch_add_8`` call 483 and
``__atomic_load_8`` 404, an empty loop 9. So an RMW is about 6 Lock round trips (the
foreign call is 60% of it, the method's argument checks most of the rest), a load or
release store on x86-64 costs less than 2 Lock round trips through the method and less
than one Lock round trip through ``plain_load``/``plain_store``, and the lock-striped
fallback is competitive with libatomic for RMWs on one thread (it does not scale as
well: every cell on a stripe serializes).

Open questions: a C-extension-free faster CAS does not exist (libatomic exports no
value-returning ``__sync_val_compare_and_swap_8``); 3.14 makes ctypes thread-safe across
the board, which may allow sharing more pre-built objects.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import enum
import functools
import itertools
import operator
import os
import platform
import sys
import threading
from array import array
from collections.abc import Callable, Sequence
from typing import Final, cast

__all__ = [
    "ACQUIRE",
    "ACQ_REL",
    "BACKEND",
    "CONSUME",
    "PLAIN_ORDERS_FREE",
    "RELAXED",
    "RELEASE",
    "SEQ_CST",
    "AtomicInt",
    "AtomicSlab",
    "MemoryOrder",
    "fence",
    "full_fence",
]


class MemoryOrder(enum.IntEnum):
    """C11 memory orders, with the values of gcc's ``__ATOMIC_*`` constants."""

    RELAXED = 0
    CONSUME = 1
    ACQUIRE = 2
    RELEASE = 3
    ACQ_REL = 4
    SEQ_CST = 5


RELAXED: Final = 0
CONSUME: Final = 1
ACQUIRE: Final = 2
RELEASE: Final = 3
ACQ_REL: Final = 4
SEQ_CST: Final = 5

_LOAD_ORDERS: Final = frozenset({RELAXED, CONSUME, ACQUIRE, SEQ_CST})
_STORE_ORDERS: Final = frozenset({RELAXED, RELEASE, SEQ_CST})
_RMW_ORDERS: Final = frozenset(range(6))
# C11: the failure order of a CAS may not be release or acq_rel, nor stronger than success.
_CAS_FAILURE: Final[dict[int, int]] = {
    RELAXED: RELAXED,
    CONSUME: CONSUME,
    ACQUIRE: ACQUIRE,
    RELEASE: RELAXED,
    ACQ_REL: ACQUIRE,
    SEQ_CST: SEQ_CST,
}

_MIN: Final = -(1 << 63)
_MAX: Final = (1 << 63) - 1
_MASK: Final = (1 << 64) - 1
_LINE: Final = 64  # bytes in a cache line
_WORDS_PER_LINE: Final = _LINE // 8


def _bad_order(order: object, operation: str, allowed: frozenset[int]) -> ValueError:
    try:
        name = MemoryOrder(order).name  # type: ignore[arg-type]
    except (ValueError, TypeError):
        name = repr(order)
    names = ", ".join(MemoryOrder(o).name for o in sorted(allowed))
    return ValueError(f"invalid memory order {name} for {operation}; expected one of {names}")


def _wrap(value: int) -> int:
    """``value`` reduced to signed 64-bit two's complement."""
    value = operator.index(value) & _MASK
    return value - (1 << 64) if value > _MAX else value


# --- platform and backend selection (import time, single-threaded) -----------------------

PLAIN_ORDERS_FREE: Final[bool] = sys.maxsize > 2**32 and platform.machine().lower() in {
    "x86_64",
    "amd64",
}
"""True where a plain aligned 8-byte load is an acquire and a plain store a release (x86-64)."""


def _open_libatomic() -> ctypes.PyDLL | None:
    names = [ctypes.util.find_library("atomic"), "libatomic.so.1", "libatomic.dylib"]
    for name in names:
        if not name:
            continue
        try:
            return ctypes.PyDLL(name)
        except OSError:
            continue
    return None


_c_int64 = ctypes.c_int64
_c_void_p = ctypes.c_void_p
_lib = _open_libatomic()


def _prototype(name: str, restype: type | None) -> Callable[..., int]:
    assert _lib is not None
    fn = getattr(_lib, name)
    fn.restype = restype
    return fn  # type: ignore[no-any-return]


if _lib is not None:
    _load8 = _prototype("__atomic_load_8", _c_int64)
    _store8 = _prototype("__atomic_store_8", None)
    _exchange8 = _prototype("__atomic_exchange_8", _c_int64)
    _cas8 = _prototype("__atomic_compare_exchange_8", ctypes.c_bool)
    _fetch_add8 = _prototype("__atomic_fetch_add_8", _c_int64)
    _fetch_sub8 = _prototype("__atomic_fetch_sub_8", _c_int64)
    _fetch_and8 = _prototype("__atomic_fetch_and_8", _c_int64)
    _fetch_or8 = _prototype("__atomic_fetch_or_8", _c_int64)
    _add_fetch8 = _prototype("__atomic_add_fetch_8", _c_int64)
    _sub_fetch8 = _prototype("__atomic_sub_fetch_8", _c_int64)
    try:
        _thread_fence: Callable[[int], object] | None = _prototype("atomic_thread_fence", None)
    except AttributeError:  # pragma: no cover - libatomic older than gcc 7
        _thread_fence = None


def _probe_int_args() -> bool:
    """Whether a Python int passed without argtypes arrives as a sign-extended int64.

    ctypes passes an int as a C ``int``; libffi widens it to the 64-bit argument slot.
    Checked on real calls: -1 must arrive as -1 (not 0xFFFFFFFF), and -2**31 and
    2**31 - 1 as themselves. The libatomic backend relies on it: every value in the
    32-bit range is passed as a plain int (the ``-0x80000000 <= v <= 0x7FFFFFFF`` tests
    in the methods); it is disabled where the probe fails.
    """
    raw = bytearray(8)
    ptr = _c_void_p(ctypes.addressof(_c_int64.from_buffer(raw)))
    word = memoryview(raw).cast("q")
    for value in (-1, -(1 << 31), (1 << 31) - 1):
        word[0] = 0
        _fetch_add8(ptr, value, SEQ_CST)
        if word[0] != value:
            return False
    return True


def _choose_backend() -> str:
    global _lib
    wanted = os.environ.get("ZUKI_ATOMICS", "").strip().lower()
    if wanted not in {"", "libatomic", "locked"}:
        raise ImportError(f"ZUKI_ATOMICS={wanted!r}: expected 'libatomic' or 'locked'")
    if _lib is not None and not _probe_int_args():
        _lib = None
    if wanted == "locked":
        return "locked"
    if _lib is None:
        if wanted == "libatomic":
            raise ImportError("ZUKI_ATOMICS=libatomic but libatomic could not be loaded")
        return "locked"
    return "libatomic"


BACKEND: Final[str] = _choose_backend()
"""The backend new cells use by default: ``"libatomic"`` or ``"locked"``."""


def _arg(value: int) -> int | ctypes.c_int64:
    """``value`` as a libatomic value argument.

    A Python int when it fits in 32 bits (see ``_probe_int_args``), else a ``c_int64``,
    which wraps it to 64 bits as ctypes integer types do (no overflow check).
    """
    if -0x80000000 <= value <= 0x7FFFFFFF:
        return value
    return _c_int64(value)


_Scratch = tuple[memoryview, ctypes.c_void_p, ctypes.c_int64, bytearray]
"""One thread's CAS scratch: a ``'q'`` view of two words (expected, desired), the
address of ``expected``, a ``c_int64`` over ``desired``, and the buffer itself.

Owned by exactly one thread (it lives in a ``threading.local``), so the callee's write
to ``expected`` on failure cannot race with another thread's CAS. A tuple, not an
object, because one ``UNPACK_SEQUENCE`` is cheaper than three attribute loads.
"""

_tls = threading.local()


def _scratch() -> _Scratch:
    """This thread's CAS scratch, created on first use (see ``_aligned_words`` for why
    a bytearray)."""
    try:
        s: _Scratch = _tls.scratch
    except AttributeError:
        raw = bytearray(16)
        expected_ptr = _c_void_p(ctypes.addressof(_c_int64.from_buffer(raw)))
        s = (memoryview(raw).cast("q"), expected_ptr, _c_int64.from_buffer(raw, 8), raw)
        _tls.scratch = s
    return s


# --- fences ------------------------------------------------------------------------------

_STRIPES: Final = tuple(threading.Lock() for _ in range(64))
_fence_lock = threading.Lock()


def _lock_fence() -> None:
    with _fence_lock:
        pass


def _make_full_fence() -> Callable[[], object]:
    if PLAIN_ORDERS_FREE:
        # next() on a count is a `lock cmpxchg` on the free-threaded build: a full barrier.
        return itertools.count().__next__
    if _lib is not None:
        if _thread_fence is not None:
            return functools.partial(_thread_fence, SEQ_CST)
        # A seq_cst RMW on a private word; the anchor in the module keeps the word alive.
        return functools.partial(_fetch_add8, _c_void_p(ctypes.addressof(_FENCE_WORD)), 0, 5)
    return _lock_fence


_FENCE_WORD: Final = _c_int64.from_buffer(bytearray(8))


_full_fence: Final = _make_full_fence()
full_fence: Final[Callable[[], object]] = _full_fence
"""``fence(SEQ_CST)`` as a zero-argument callable with no Python frame, for hot paths."""
_FENCE_ORDERS: Final = _RMW_ORDERS


def fence(order: int = SEQ_CST) -> None:
    """A C11 ``atomic_thread_fence(order)``.

    ``SEQ_CST`` is a full barrier: no load or store of this thread moves across it in
    either direction. ``ACQUIRE``/``RELEASE``/``ACQ_REL`` fences order as C11 says; on
    x86-64 they need no instruction and cost only the call. ``RELAXED`` is a no-op.

    Raises:
        ValueError: ``order`` is not a memory order.
    """
    if order == 5:  # SEQ_CST
        _full_fence()
    elif order not in _FENCE_ORDERS:
        raise _bad_order(order, "fence", _FENCE_ORDERS)
    elif not PLAIN_ORDERS_FREE and order != RELAXED and _lib is not None:
        if _thread_fence is not None:
            _thread_fence(order)
        else:
            _full_fence()


# --- buffers -----------------------------------------------------------------------------


def _aligned_words(nwords: int) -> tuple[ctypes.c_int64, memoryview, int]:
    """A zeroed buffer with ``nwords`` 8-byte words starting on a cache line.

    Returns an anchor (a ``c_int64`` over the buffer's first word: its address is the
    buffer's, and it keeps the buffer alive and pinned), a ``'q'`` memoryview over the
    whole buffer, and the index of the first cache-line-aligned word.

    The buffer is a ``bytearray``, not a ``(c_int64 * n)`` array, because that would
    create a new ctypes array type per size at run time, from any thread; ctypes type
    creation is not thread-safe on 3.13t. ``from_buffer`` of the existing ``c_int64``
    type creates only an instance. While it is exported the bytearray cannot be resized,
    so its memory stays put.
    """
    raw = bytearray(8 * (nwords + _WORDS_PER_LINE))
    anchor = _c_int64.from_buffer(raw)
    first = (-ctypes.addressof(anchor) % _LINE) // 8
    return anchor, memoryview(raw).cast("q"), first


def _check_backend(backend: str | None) -> str:
    if backend is None:
        return BACKEND
    if backend == "libatomic":
        if _lib is None:
            raise ValueError("backend 'libatomic' is not available: libatomic was not loaded")
        return backend
    if backend == "locked":
        return backend
    raise ValueError(f"unknown atomics backend {backend!r}: expected 'libatomic' or 'locked'")


# --- AtomicInt ---------------------------------------------------------------------------


class _WordView:
    """``AtomicInt.view`` where the cell is not a plain memoryview word."""

    __slots__ = ("_load", "_store")

    def __init__(self, load: Callable[[], int], store: Callable[[int], object]) -> None:
        self._load = load
        self._store = store

    def __len__(self) -> int:
        return 1

    def __getitem__(self, i: int) -> int:
        if i not in (0, -1):
            raise IndexError("an AtomicInt view has one item")
        return self._load()

    def __setitem__(self, i: int, value: int) -> None:
        if i not in (0, -1):
            raise IndexError("an AtomicInt view has one item")
        self._store(value)


class AtomicInt:
    """A signed 64-bit atomic integer alone on its cache line.

    Thread-safety: every method may be called from any thread at any time. Each method's
    docstring states the C11 ordering it provides. ``AtomicInt(value, backend=...)``
    builds a cell on the given backend (``"libatomic"`` or ``"locked"``, default
    ``BACKEND``); ``AtomicSlab.cell(i)`` returns views that share a slab's buffer.

    Attributes:
        plain_load: a zero-argument callable doing an acquire load. On x86-64 it is a
            C-level callable with no foreign call; use it on hot paths.
        plain_store: a one-argument callable doing a release store of a value in the
            signed 64-bit range (``ValueError`` otherwise); C-level on x86-64.
    """

    __slots__ = ("_buf", "_mv", "_p", "plain_load", "plain_store")

    _buf: object
    _mv: memoryview
    _p: ctypes.c_void_p
    plain_load: Callable[[], int]
    plain_store: Callable[[int], object]
    backend: str

    def __new__(cls, value: int = 0, *, backend: str | None = None) -> AtomicInt:
        impl: type[AtomicInt] = cls
        if cls is AtomicInt:
            impl = _CELL_CLASSES[_check_backend(backend)]
        buf, mv, first = _aligned_words(_WORDS_PER_LINE)
        mv[first] = _wrap(value)
        return impl._view(buf, mv, first)

    @classmethod
    def _view(cls, buf: object, mv: memoryview, index: int) -> AtomicInt:
        """A cell over word ``index`` of ``mv`` (which ``buf`` exports)."""
        self = object.__new__(cls)
        self._buf = buf
        self._mv = mv[index : index + 1]  # one-word view: index 0 is a constant
        address = ctypes.addressof(buf) + 8 * index  # type: ignore[arg-type]  # the anchor
        self._p = _c_void_p(address)
        self._init_plain()
        return self

    def _init_plain(self) -> None:
        raise NotImplementedError

    @property
    def view(self) -> _WordView | memoryview:
        """The cell as a one-item sequence, for the hottest paths.

        ``view[0]`` is ``plain_load()`` and ``view[0] = v`` is ``plain_store(v)`` (an
        acquire load and a release store; ``-1`` also names the item). On x86-64 it is
        the cell's one-word ``memoryview``: a subscript costs no call at all, which on
        3.13t saves ~25 ns over the ``plain_*`` partials. Elsewhere it is a small object
        whose item access calls ``plain_load``/``plain_store``.
        """
        return _WordView(self.plain_load, self.plain_store)

    @property
    def address(self) -> int:
        """The cell's address, for the kernel only (``futex``); never store it in a cell."""
        return self._p.value or 0

    def load(self, order: int = SEQ_CST) -> int:
        """Atomically read the value.

        Orders: ``RELAXED``, ``CONSUME`` (treated as ``ACQUIRE``), ``ACQUIRE``, ``SEQ_CST``.
        An acquire load synchronizes with the release store (or stronger) it reads from.

        Raises:
            ValueError: ``order`` is ``RELEASE``, ``ACQ_REL`` or not a memory order.
        """
        raise NotImplementedError

    def store(self, value: int, order: int = SEQ_CST) -> None:
        """Atomically write ``value`` (wrapped to signed 64 bits).

        Orders: ``RELAXED``, ``RELEASE``, ``SEQ_CST``. A release store makes every earlier
        write of this thread visible to a thread whose acquire load reads it; a seq_cst
        store also takes part in the single total order of seq_cst operations.

        Raises:
            ValueError: ``order`` is ``CONSUME``, ``ACQUIRE``, ``ACQ_REL`` or invalid.
        """
        raise NotImplementedError

    def compare_exchange(
        self, expected: int, desired: int, order: int = SEQ_CST
    ) -> tuple[bool, int]:
        """If the value is ``expected``, replace it with ``desired``, atomically.

        Returns ``(True, expected)`` on success and ``(False, current)`` on failure, where
        ``current`` is the value seen. A strong CAS: it never fails spuriously. ``order``
        applies to the success case; the failure case is a load with the strongest order
        C11 allows (``RELEASE`` -> ``RELAXED``, ``ACQ_REL`` -> ``ACQUIRE``). Any order.

        Raises:
            ValueError: ``order`` is not a memory order.
        """
        raise NotImplementedError

    def fetch_add(self, n: int, order: int = SEQ_CST) -> int:
        """Atomically add ``n`` (wrapping) and return the previous value. Any order."""
        raise NotImplementedError

    def fetch_sub(self, n: int, order: int = SEQ_CST) -> int:
        """Atomically subtract ``n`` (wrapping) and return the previous value. Any order."""
        raise NotImplementedError

    def fetch_and(self, mask: int, order: int = SEQ_CST) -> int:
        """Atomically ``value &= mask`` and return the previous value. Any order."""
        raise NotImplementedError

    def fetch_or(self, mask: int, order: int = SEQ_CST) -> int:
        """Atomically ``value |= mask`` and return the previous value. Any order."""
        raise NotImplementedError

    def exchange(self, value: int, order: int = SEQ_CST) -> int:
        """Atomically replace the value with ``value`` and return the previous one. Any order."""
        raise NotImplementedError

    def add(self, n: int = 1) -> int:
        """Atomically add ``n`` and return the **new** value (seq_cst)."""
        raise NotImplementedError

    def sub(self, n: int = 1) -> int:
        """Atomically subtract ``n`` and return the **new** value (seq_cst)."""
        raise NotImplementedError

    def bind_cas(self) -> Callable[[int, int], bool]:
        """A callable ``cas(expected, desired) -> bool`` for hot paths.

        ``cas(e, d)`` is ``compare_exchange(e, d, SEQ_CST)[0]``: a strong seq_cst CAS that
        reports only whether it succeeded (a caller that needs the current value loads
        it). With libatomic it is a closure over the cell's address: no method lookup,
        no order checks, no result tuple (module docstring, "Costs").
        """

        def cas(expected: int, desired: int) -> bool:
            return self.compare_exchange(expected, desired)[0]

        return cas

    def bind_fetch_add(self, n: int) -> Callable[[], int]:
        """A zero-argument callable doing ``fetch_add(n, SEQ_CST)`` (returns the old value).

        With libatomic it is a ``functools.partial`` over the foreign function with its
        arguments built once: no Python frame.
        """
        return functools.partial(self.fetch_add, n)

    def __repr__(self) -> str:
        return f"AtomicInt({self.load()}, backend={self.backend!r})"


class _LibatomicInt(AtomicInt):
    """Every operation through libatomic: the portable lock-free implementation."""

    __slots__ = ()
    backend = "libatomic"

    def _init_plain(self) -> None:
        p = self._p
        self.plain_load = functools.partial(_load8, p, ACQUIRE)

        def plain_store(value: int) -> None:
            if not _MIN <= value <= _MAX:  # as on x86-64, where a memoryview refuses it
                raise ValueError(f"plain_store: {value} is out of the signed 64-bit range")
            _store8(p, _arg(value), RELEASE)

        self.plain_store = plain_store

    def load(self, order: int = SEQ_CST) -> int:
        if order == 5 or order in _LOAD_ORDERS:
            return _load8(self._p, order)
        raise _bad_order(order, "load", _LOAD_ORDERS)

    def store(self, value: int, order: int = SEQ_CST) -> None:
        if order not in _STORE_ORDERS:
            raise _bad_order(order, "store", _STORE_ORDERS)
        _store8(self._p, value if -0x80000000 <= value <= 0x7FFFFFFF else _c_int64(value), order)

    def compare_exchange(
        self, expected: int, desired: int, order: int = SEQ_CST
    ) -> tuple[bool, int]:
        # Inlined copy of _libatomic_cas: this is the hottest CAS, a call frame is ~40 ns.
        if order == 5:
            failure = 5
        else:
            failure = _CAS_FAILURE.get(order, -1)
            if failure < 0:
                raise _bad_order(order, "compare_exchange", _RMW_ORDERS)
        try:
            mv, expected_ptr, desired_word, _ = _tls.scratch
        except AttributeError:
            mv, expected_ptr, desired_word, _ = _scratch()
        try:
            mv[0] = expected
        except ValueError:
            expected = _wrap(expected)
            mv[0] = expected
        if -0x80000000 <= desired <= 0x7FFFFFFF:
            d: int | ctypes.c_int64 = desired
        else:
            try:
                mv[1] = desired
            except ValueError:
                mv[1] = _wrap(desired)
            d = desired_word
        if _cas8(self._p, expected_ptr, d, order, failure):
            return True, expected
        return False, mv[0]

    def fetch_add(self, n: int, order: int = SEQ_CST) -> int:
        if order == 5 or order in _RMW_ORDERS:
            return _fetch_add8(self._p, n if -0x80000000 <= n <= 0x7FFFFFFF else _c_int64(n), order)
        raise _bad_order(order, "fetch_add", _RMW_ORDERS)

    def fetch_sub(self, n: int, order: int = SEQ_CST) -> int:
        if order == 5 or order in _RMW_ORDERS:
            return _fetch_sub8(self._p, n if -0x80000000 <= n <= 0x7FFFFFFF else _c_int64(n), order)
        raise _bad_order(order, "fetch_sub", _RMW_ORDERS)

    def fetch_and(self, mask: int, order: int = SEQ_CST) -> int:
        if order == 5 or order in _RMW_ORDERS:
            return _fetch_and8(self._p, _arg(mask), order)
        raise _bad_order(order, "fetch_and", _RMW_ORDERS)

    def fetch_or(self, mask: int, order: int = SEQ_CST) -> int:
        if order == 5 or order in _RMW_ORDERS:
            return _fetch_or8(self._p, _arg(mask), order)
        raise _bad_order(order, "fetch_or", _RMW_ORDERS)

    def exchange(self, value: int, order: int = SEQ_CST) -> int:
        if order == 5 or order in _RMW_ORDERS:
            return _exchange8(self._p, _arg(value), order)
        raise _bad_order(order, "exchange", _RMW_ORDERS)

    def add(self, n: int = 1) -> int:
        return _add_fetch8(self._p, n if -0x80000000 <= n <= 0x7FFFFFFF else _c_int64(n), SEQ_CST)

    def bind_cas(self) -> Callable[[int, int], bool]:
        return _make_cas(self._p, self._ref())

    def bind_fetch_add(self, n: int) -> Callable[[], int]:
        return functools.partial(_fetch_add8, self._ref(), _arg(_wrap(n)), SEQ_CST)

    def _ref(self) -> object:
        """The cell's address as a ``byref`` of the buffer's anchor.

        ctypes passes a ``byref`` object as it is, where a ``c_void_p`` argument costs a
        new ``PyCArgObject`` per call (measured: a CAS 1016 -> 659 ns, a fetch_add
        474 -> 390 ns). Read-only after creation, so threads may share it.
        """
        offset = (self._p.value or 0) - ctypes.addressof(self._buf)  # type: ignore[arg-type]
        return ctypes.byref(self._buf, offset)  # type: ignore[arg-type]

    def sub(self, n: int = 1) -> int:
        return _sub_fetch8(self._p, n if -0x80000000 <= n <= 0x7FFFFFFF else _c_int64(n), SEQ_CST)


class _TsoInt(_LibatomicInt):
    """x86-64: loads and non-seq_cst stores are plain memoryview accesses (see module doc)."""

    __slots__ = ()

    def _init_plain(self) -> None:
        self.plain_load = cast(
            "Callable[[], int]", functools.partial(operator.getitem, self._mv, 0)
        )
        self.plain_store = functools.partial(operator.setitem, self._mv, 0)

    @property
    def view(self) -> _WordView | memoryview:
        return self._mv

    def load(self, order: int = SEQ_CST) -> int:
        if order == 5 or order in _LOAD_ORDERS:
            return self._mv[0]
        raise _bad_order(order, "load", _LOAD_ORDERS)

    def store(self, value: int, order: int = SEQ_CST) -> None:
        if order != 5 and order not in _STORE_ORDERS:
            raise _bad_order(order, "store", _STORE_ORDERS)
        try:
            self._mv[0] = value
        except ValueError:
            self._mv[0] = _wrap(value)
        if order == 5:
            _full_fence()


class _LockedInt(AtomicInt):
    """The fallback: every operation under the cell's lock stripe."""

    __slots__ = ("_lock",)
    backend = "locked"
    _lock: threading.Lock

    def _init_plain(self) -> None:
        self._lock = _STRIPES[(self._p.value or 0) // _LINE % len(_STRIPES)]
        lock, mv = self._lock, self._mv

        def plain_load() -> int:
            with lock:
                return mv[0]

        def plain_store(value: int) -> None:
            with lock:
                mv[0] = value

        self.plain_load = plain_load
        self.plain_store = plain_store

    def load(self, order: int = SEQ_CST) -> int:
        if order not in _LOAD_ORDERS:
            raise _bad_order(order, "load", _LOAD_ORDERS)
        with self._lock:
            return self._mv[0]

    def store(self, value: int, order: int = SEQ_CST) -> None:
        if order not in _STORE_ORDERS:
            raise _bad_order(order, "store", _STORE_ORDERS)
        value = _wrap(value)
        with self._lock:
            self._mv[0] = value

    def compare_exchange(
        self, expected: int, desired: int, order: int = SEQ_CST
    ) -> tuple[bool, int]:
        if order not in _RMW_ORDERS:
            raise _bad_order(order, "compare_exchange", _RMW_ORDERS)
        expected, desired = _wrap(expected), _wrap(desired)
        mv = self._mv
        with self._lock:
            current: int = mv[0]
            if current != expected:
                return False, current
            mv[0] = desired
        return True, expected

    def _rmw(self, op: Callable[[int, int], int], n: int, order: int, name: str) -> int:
        if order not in _RMW_ORDERS:
            raise _bad_order(order, name, _RMW_ORDERS)
        n = operator.index(n)
        mv = self._mv
        with self._lock:
            old: int = mv[0]
            mv[0] = _wrap(op(old, n))
        return old

    def fetch_add(self, n: int, order: int = SEQ_CST) -> int:
        return self._rmw(operator.add, n, order, "fetch_add")

    def fetch_sub(self, n: int, order: int = SEQ_CST) -> int:
        return self._rmw(operator.sub, n, order, "fetch_sub")

    def fetch_and(self, mask: int, order: int = SEQ_CST) -> int:
        return self._rmw(operator.and_, mask, order, "fetch_and")

    def fetch_or(self, mask: int, order: int = SEQ_CST) -> int:
        return self._rmw(operator.or_, mask, order, "fetch_or")

    def exchange(self, value: int, order: int = SEQ_CST) -> int:
        return self._rmw(_second, value, order, "exchange")

    def add(self, n: int = 1) -> int:
        return _wrap(self._rmw(operator.add, n, SEQ_CST, "add") + n)

    def sub(self, n: int = 1) -> int:
        return _wrap(self._rmw(operator.sub, n, SEQ_CST, "sub") - n)


def _second(_old: int, new: int) -> int:
    return new


_CELL_CLASSES: Final[dict[str, type[AtomicInt]]] = {
    "libatomic": _TsoInt if PLAIN_ORDERS_FREE else _LibatomicInt,
    "locked": _LockedInt,
}


def _cas_scratch() -> tuple[memoryview, object]:
    """This thread's scratch for ``bind_cas``: a ``'q'`` view of its ``expected`` word
    and a ``byref`` of it (the same word as ``_scratch``'s)."""
    try:
        s: tuple[memoryview, object] = _tls.cas
    except AttributeError:
        mv, _, _, raw = _scratch()
        s = (mv, ctypes.byref(_c_int64.from_buffer(raw)))
        _tls.cas = s
    return s


def _make_cas(p: ctypes.c_void_p, ref: object) -> Callable[[int, int], bool]:
    """``bind_cas`` of the libatomic cell at address ``p`` (``ref``: its ``byref``).

    Everything that can be is bound in the closure's cells (on 3.13t global and attribute
    loads are not specialized); per call it reads this thread's scratch (one
    ``threading.local`` read), writes ``expected`` into it and makes one foreign call
    whose arguments need no conversion objects: two ``byref`` pointers, a 32-bit
    ``desired`` as a plain int and the two orders as small ints.
    """
    tls, cas8, scratch, slow = _tls, _cas8, _cas_scratch, _libatomic_cas

    def cas(expected: int, desired: int) -> bool:
        try:
            mv, expected_ref = tls.cas
        except AttributeError:
            mv, expected_ref = scratch()
        if -0x80000000 <= desired <= 0x7FFFFFFF:
            try:
                mv[0] = expected
            except ValueError:
                mv[0] = _wrap(expected)
            return cas8(ref, expected_ref, desired, 5, 5)  # type: ignore[return-value]
        return slow(p, expected, desired, 5)[0]

    return cas


# --- AtomicSlab --------------------------------------------------------------------------


def _libatomic_cas(p: ctypes.c_void_p, expected: int, desired: int, order: int) -> tuple[bool, int]:
    """``__atomic_compare_exchange_8`` on address ``p`` (same contract as the method)."""
    if order == 5:
        failure = 5
    else:
        failure = _CAS_FAILURE.get(order, -1)
        if failure < 0:
            raise _bad_order(order, "compare_exchange", _RMW_ORDERS)
    try:
        mv, expected_ptr, desired_word, _ = _tls.scratch
    except AttributeError:
        mv, expected_ptr, desired_word, _ = _scratch()
    try:
        mv[0] = expected
    except ValueError:
        expected = _wrap(expected)
        mv[0] = expected
    if -0x80000000 <= desired <= 0x7FFFFFFF:
        d: int | ctypes.c_int64 = desired
    else:
        try:
            mv[1] = desired
        except ValueError:
            mv[1] = _wrap(desired)
        d = desired_word
    if _cas8(p, expected_ptr, d, order, failure):
        return True, expected
    return False, mv[0]


class AtomicSlab:
    """``n`` signed 64-bit atomic cells in one cache-line-aligned buffer.

    With ``padded=True`` each cell has a cache line of its own (no false sharing, 8x the
    memory); otherwise cells are packed 8 to a line. Index ``i`` may be negative, counting
    from the end, as for a list; out of range is ``IndexError``. Thread-safety and orders:
    as ``AtomicInt``; each indexed method is the same operation as on ``cell(i)``.
    ``backend`` is ``"libatomic"`` or ``"locked"`` (default ``BACKEND``).

    Building a slab costs one zeroed buffer and a memoryview: the per-cell ``AtomicInt``
    views are made on first use of ``cell(i)`` (or of an indexed read-modify-write), so a
    1024-cell slab costs microseconds, not milliseconds.

    Attributes:
        plain_load_at: ``plain_load_at(i) -> int``, ``cell(i).plain_load()`` without
            making the cell: an acquire load; on x86-64 a C-level memoryview read.
        plain_store_at: ``plain_store_at(i, value)``, ``cell(i).plain_store(value)``
            without making the cell: a release store; C-level on x86-64.
    """

    __slots__ = (
        "_base",
        "_buf",
        "_cells",
        "_full",
        "_mv",
        "_n",
        "_stride",
        "plain_load_at",
        "plain_store_at",
    )

    backend: str
    _cell_class: type[AtomicInt]
    plain_load_at: Callable[[int], int]
    plain_store_at: Callable[[int, int], object]

    def __new__(cls, n: int, *, padded: bool = False, backend: str | None = None) -> AtomicSlab:
        impl: type[AtomicSlab] = cls
        if cls is AtomicSlab:
            impl = _SLAB_CLASSES[_check_backend(backend)]
        return object.__new__(impl)

    def __init__(self, n: int, *, padded: bool = False, backend: str | None = None) -> None:
        n = operator.index(n)
        if n < 0:
            raise ValueError(f"AtomicSlab size must be >= 0, got {n}")
        self._n = n
        self._stride = stride = _WORDS_PER_LINE if padded else 1
        buf, mv, first = _aligned_words(max(n * stride, 1))
        self._buf = buf
        self._full = mv
        self._base = first
        # A view of exactly the n cells: negative indices and bounds behave like a list's.
        self._mv = mv[first : first + n * stride : stride]
        self._cells: dict[int, AtomicInt] = {}
        self._init_plain()

    def _init_plain(self) -> None:
        """Set ``plain_load_at``/``plain_store_at`` (per backend)."""
        cell = self.cell

        def plain_load_at(i: int) -> int:
            return cell(i).plain_load()

        def plain_store_at(i: int, value: int) -> None:
            cell(i).plain_store(value)

        self.plain_load_at = plain_load_at
        self.plain_store_at = plain_store_at

    def __len__(self) -> int:
        return self._n

    def cell(self, i: int) -> AtomicInt:
        """Cell ``i`` as an ``AtomicInt`` sharing this slab's buffer (the same object each time)."""
        try:
            return self._cells[i]
        except KeyError:
            pass
        n = self._n
        j = operator.index(i)
        if j < 0:
            j += n
        if not 0 <= j < n:
            raise IndexError(f"index {i} out of range for an AtomicSlab of {n}")
        made = self._cell_class._view(self._buf, self._full, self._base + self._stride * j)
        # setdefault is one atomic dict operation: racing threads agree on one cell.
        cell = self._cells.setdefault(j, made)
        if i != j:
            self._cells.setdefault(i, cell)
        return cell

    def load(self, i: int, order: int = SEQ_CST) -> int:
        """``cell(i).load(order)``."""
        return self.cell(i).load(order)

    def store(self, i: int, value: int, order: int = SEQ_CST) -> None:
        """``cell(i).store(value, order)``."""
        self.cell(i).store(value, order)

    def compare_exchange(
        self, i: int, expected: int, desired: int, order: int = SEQ_CST
    ) -> tuple[bool, int]:
        """``cell(i).compare_exchange(expected, desired, order)``."""
        return self.cell(i).compare_exchange(expected, desired, order)

    def fetch_add(self, i: int, n: int, order: int = SEQ_CST) -> int:
        """``cell(i).fetch_add(n, order)``."""
        return self.cell(i).fetch_add(n, order)

    def exchange(self, i: int, value: int, order: int = SEQ_CST) -> int:
        """``cell(i).exchange(value, order)``."""
        return self.cell(i).exchange(value, order)

    def load_range(self, start: int, stop: int) -> list[int]:
        """Cells ``start`` .. ``stop - 1``, each an acquire load, in index order.

        Not a snapshot: each cell is loaded on its own (on x86-64 by one memoryview
        ``tolist``, with no foreign call). ``0 <= start <= stop <= len(self)``.
        """
        self._check_range(start, stop)
        load = self.plain_load_at
        return [load(i) for i in range(start, stop)]

    def all_equal(self, start: int, stop: int, value: int) -> bool:
        """Whether cells ``start`` .. ``stop - 1`` all hold ``value``.

        Each cell is an acquire load of its own (not a snapshot); on x86-64 one C-level
        memoryview comparison, with no int object made per cell.
        """
        self._check_range(start, stop)
        load = self.plain_load_at
        return all(load(i) == value for i in range(start, stop))

    def store_range(self, start: int, values: Sequence[int]) -> None:
        """Store ``values`` into cells ``start`` .. ``start + len(values) - 1``.

        Each is a release store of its own (each cell's new value is visible only with
        every write this thread made before the call). The stores are **not** ordered
        among themselves: a reader may see cell ``k + 1``'s new value before cell
        ``k``'s (on x86-64 this is one ``memcpy``; see the class docstring of the
        x86-64 slab). Values must be in the signed 64-bit range (``ValueError`` or
        ``OverflowError``; then the values before the bad one may have been stored).
        """
        self._check_range(start, start + len(values))
        store = self.plain_store_at
        for i, v in enumerate(values, start):
            store(i, v)

    def _check_range(self, start: int, stop: int) -> None:
        if not 0 <= start <= stop <= self._n:
            raise IndexError(f"range {start}:{stop} out of bounds for an AtomicSlab of {self._n}")

    def __repr__(self) -> str:
        padded = self._stride != 1
        return f"AtomicSlab({self._n}, padded={padded}, backend={self.backend!r})"


class _LibatomicSlab(AtomicSlab):
    __slots__ = ()
    backend = "libatomic"
    _cell_class = _LibatomicInt

    def _init_plain(self) -> None:
        anchor = ctypes.addressof(self._buf)
        n, base, step = self._n, anchor + 8 * self._base, 8 * self._stride

        def address(i: int) -> ctypes.c_void_p:
            if not -n <= i < n:
                raise IndexError(f"index {i} out of range for an AtomicSlab of {n}")
            return _c_void_p(base + step * (i % n))

        def plain_load_at(i: int) -> int:
            return _load8(address(i), ACQUIRE)

        def plain_store_at(i: int, value: int) -> None:
            if not _MIN <= value <= _MAX:
                raise ValueError(f"plain_store: {value} is out of the signed 64-bit range")
            _store8(address(i), _arg(value), RELEASE)

        self.plain_load_at = plain_load_at
        self.plain_store_at = plain_store_at


_setitem = cast("Callable[[memoryview, int, int], None]", operator.setitem)


class _TsoSlab(_LibatomicSlab):
    """x86-64: loads and non-seq_cst stores are plain memoryview accesses.

    ``store_range`` is ONE memoryview slice assignment (a ``memcpy``/``memmove`` of the
    values from an ``array('q')``), not a loop of word stores. Why that is still a
    release store of every cell:

    * A ``memcpy`` may store its words in any order and in any width (``rep movsb``,
      overlapping vector moves), so cells are NOT published in index order; the
      contract above says so, and no user relies on it (the GlobalQueue's consumers
      take the prefix of consecutive ready slots, each slot judged on its own).
    * What every consumer needs is: whoever sees a cell's new value also sees every
      write this thread made before ``store_range``. x86-TSO keeps a thread's stores
      in program order, fast-string stores included with respect to the stores that
      precede the string operation; and on the free-threaded build the payload writes
      that matter (a list slice assignment) end with the list's critical-section
      unlock, a ``lock cmpxchg``: a full barrier that no later store can pass.
    * Every word is 8-byte aligned and the copy is a multiple of 8 bytes at an 8-byte
      aligned address, so no access splits a word across cache lines. Even a copy that
      wrote a word in pieces could not make a zero word (the GlobalQueue's state slabs
      are fresh, zeroed buffers) look like a complete new value: a partial word has a
      subset of the new value's bytes and the rest zero, so it is smaller than the new
      value and fails a ``>=`` readiness test.
    """

    __slots__ = ()
    _cell_class = _TsoInt

    def _init_plain(self) -> None:
        mv = self._mv
        self.plain_load_at = mv.__getitem__
        self.plain_store_at = functools.partial(_setitem, mv)

    def load(self, i: int, order: int = SEQ_CST) -> int:
        if order in _LOAD_ORDERS:
            return self._mv[i]
        raise _bad_order(order, "load", _LOAD_ORDERS)

    def store(self, i: int, value: int, order: int = SEQ_CST) -> None:
        if order not in _STORE_ORDERS:
            raise _bad_order(order, "store", _STORE_ORDERS)
        try:
            self._mv[i] = value
        except ValueError:
            self._mv[i] = _wrap(value)
        if order == SEQ_CST:
            _full_fence()

    def load_range(self, start: int, stop: int) -> list[int]:
        self._check_range(start, stop)
        return self._mv[start:stop].tolist()

    def all_equal(self, start: int, stop: int, value: int) -> bool:
        self._check_range(start, stop)
        try:
            return self._mv[start:stop] == array("q", (value,)) * (stop - start)
        except OverflowError:
            return False  # no cell can hold it

    def store_range(self, start: int, values: Sequence[int]) -> None:
        stop = start + len(values)
        self._check_range(start, stop)
        try:
            words = (
                values if type(values) is array and values.typecode == "q" else array("q", values)
            )
        except OverflowError:
            AtomicSlab.store_range(self, start, values)  # stores up to the bad value
            raise
        self._mv[start:stop] = words  # one memcpy (class docstring)


class _LockedSlab(AtomicSlab):
    __slots__ = ()
    backend = "locked"
    _cell_class = _LockedInt


_SLAB_CLASSES: Final[dict[str, type[AtomicSlab]]] = {
    "libatomic": _TsoSlab if PLAIN_ORDERS_FREE else _LibatomicSlab,
    "locked": _LockedSlab,
}
