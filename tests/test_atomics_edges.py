"""Edges of the atomics shim that the main suite does not reach on an x86-64 host.

Backend selection and the fallbacks are tested by calling the import-time helpers with
the module's globals patched (no re-import): a missing libatomic, a platform whose
ctypes int passing fails the probe, the ``ZUKI_ATOMICS`` override, and the fence
flavours other platforms get. The other tests cover the generic views and the slow
paths of ``bind_cas`` (operands outside 32 bits, outside 64 bits, a fresh thread).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from typing import Any

import pytest
from helpers import HAVE_LIBATOMIC
from helpers import INT64_MIN as MIN

from zuki.concurrent import atomics
from zuki.concurrent.atomics import (
    ACQ_REL,
    ACQUIRE,
    RELAXED,
    RELEASE,
    SEQ_CST,
    AtomicInt,
    AtomicSlab,
    fence,
)

needs_libatomic = pytest.mark.skipif(not HAVE_LIBATOMIC, reason="libatomic is not available")


# --- loading libatomic and choosing the backend -----------------------------------------


def test_open_libatomic_tries_every_name_and_gives_up_quietly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tried: list[str] = []

    def refuse(name: str) -> Any:
        tried.append(name)
        raise OSError(f"cannot load {name}")

    monkeypatch.setattr(ctypes.util, "find_library", lambda _name: None)
    monkeypatch.setattr(ctypes, "PyDLL", refuse)
    assert atomics._open_libatomic() is None
    # find_library found nothing (skipped), then both well-known names were tried
    assert tried == ["libatomic.so.1", "libatomic.dylib"]


@pytest.mark.parametrize(
    ("wanted", "have_lib", "expected"),
    [
        ("", False, "locked"),
        ("locked", False, "locked"),
        ("locked", True, "locked"),
        ("  LOCKED ", True, "locked"),
        ("", True, "libatomic"),
        ("libatomic", True, "libatomic"),
    ],
)
def test_choose_backend(
    monkeypatch: pytest.MonkeyPatch, wanted: str, have_lib: bool, expected: str
) -> None:
    if have_lib and not HAVE_LIBATOMIC:
        pytest.skip("libatomic is not available")
    monkeypatch.setenv("ZUKI_ATOMICS", wanted)
    monkeypatch.setattr(atomics, "_lib", atomics._lib if have_lib else None)
    assert atomics._choose_backend() == expected


def test_choose_backend_rejects_a_bad_env_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZUKI_ATOMICS", "fast")
    with pytest.raises(ImportError, match="ZUKI_ATOMICS='fast'"):
        atomics._choose_backend()


def test_choose_backend_insists_on_libatomic_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZUKI_ATOMICS", "libatomic")
    monkeypatch.setattr(atomics, "_lib", None)
    with pytest.raises(ImportError, match="libatomic could not be loaded"):
        atomics._choose_backend()


@needs_libatomic
def test_a_failed_int_probe_falls_back_to_the_locked_backend(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A platform whose libffi does not sign-extend a C int: the callee sees 0xFFFFFFFF
    # for -1. Emulate it with a fetch_add that adds the zero-extended 32-bit value.
    def zero_extending_fetch_add(ptr: ctypes.c_void_p, value: int, order: int) -> int:
        word = ctypes.c_int64.from_address(ptr.value or 0)
        old = word.value
        word.value = old + (value & 0xFFFFFFFF)
        return old

    monkeypatch.setattr(atomics, "_fetch_add8", zero_extending_fetch_add)
    assert atomics._probe_int_args() is False
    monkeypatch.setenv("ZUKI_ATOMICS", "")
    monkeypatch.setattr(atomics, "_lib", atomics._lib)  # restored after the test
    assert atomics._choose_backend() == "locked"
    assert atomics._lib is None  # the library is not used once the probe failed


@needs_libatomic
def test_the_int_probe_passes_here() -> None:
    assert atomics._probe_int_args() is True


def test_check_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    assert atomics._check_backend(None) == atomics.BACKEND
    assert atomics._check_backend("locked") == "locked"
    with pytest.raises(ValueError, match="unknown atomics backend 'fast'"):
        atomics._check_backend("fast")
    monkeypatch.setattr(atomics, "_lib", None)
    with pytest.raises(ValueError, match="'libatomic' is not available"):
        atomics._check_backend("libatomic")
    with pytest.raises(ValueError, match="'libatomic' is not available"):
        AtomicInt(1, backend="libatomic")


# --- fences on other platforms ------------------------------------------------------------


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def __call__(self, *args: Any) -> None:
        self.calls.append(args)


@needs_libatomic
def test_full_fence_uses_atomic_thread_fence_off_x86(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = _Recorder()
    monkeypatch.setattr(atomics, "PLAIN_ORDERS_FREE", False)
    monkeypatch.setattr(atomics, "_thread_fence", recorder)
    full = atomics._make_full_fence()
    full()
    assert recorder.calls == [(SEQ_CST,)]


@needs_libatomic
def test_full_fence_without_atomic_thread_fence_is_a_seq_cst_rmw(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(atomics, "PLAIN_ORDERS_FREE", False)
    monkeypatch.setattr(atomics, "_thread_fence", None)
    full = atomics._make_full_fence()
    # fetch_add(0) on the private fence word: returns the old value, which stays 0
    assert full() == 0
    assert full() == 0
    assert atomics._FENCE_WORD.value == 0


def test_full_fence_without_libatomic_takes_a_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(atomics, "PLAIN_ORDERS_FREE", False)
    monkeypatch.setattr(atomics, "_lib", None)
    full = atomics._make_full_fence()
    assert full is atomics._lock_fence
    assert full() is None
    assert not atomics._fence_lock.locked()  # released again


@needs_libatomic
def test_acquire_and_release_fences_off_x86(monkeypatch: pytest.MonkeyPatch) -> None:
    thread_fence = _Recorder()
    full_fence = _Recorder()
    monkeypatch.setattr(atomics, "PLAIN_ORDERS_FREE", False)
    monkeypatch.setattr(atomics, "_thread_fence", thread_fence)
    monkeypatch.setattr(atomics, "_full_fence", full_fence)
    for order in (ACQUIRE, RELEASE, ACQ_REL, RELAXED):
        fence(order)
    # relaxed is a no-op; the others are one atomic_thread_fence(order) each
    assert thread_fence.calls == [(ACQUIRE,), (RELEASE,), (ACQ_REL,)]
    fence(SEQ_CST)
    assert full_fence.calls == [()]
    # without atomic_thread_fence (old libatomic) a weaker fence is the full one
    monkeypatch.setattr(atomics, "_thread_fence", None)
    fence(ACQUIRE)
    assert full_fence.calls == [(), ()]
    assert len(thread_fence.calls) == 3


def test_fences_are_free_on_x86(monkeypatch: pytest.MonkeyPatch) -> None:
    thread_fence = _Recorder()
    monkeypatch.setattr(atomics, "PLAIN_ORDERS_FREE", True)
    monkeypatch.setattr(atomics, "_thread_fence", thread_fence)
    for order in (ACQUIRE, RELEASE, ACQ_REL):
        fence(order)
    assert thread_fence.calls == []


# --- the generic one-item view --------------------------------------------------------------


@pytest.mark.parametrize("kind", ["locked", "generic"])
def test_word_view_of_a_cell(kind: str) -> None:
    if kind == "generic":
        if not HAVE_LIBATOMIC:
            pytest.skip("libatomic is not available")
        cell: AtomicInt = atomics._LibatomicInt(7)
    else:
        cell = AtomicInt(7, backend="locked")
    view = cell.view
    assert isinstance(view, atomics._WordView)
    assert len(view) == 1
    assert view[0] == 7 and view[-1] == 7
    view[0] = -9
    assert cell.load() == -9
    view[-1] = 11
    assert cell.load() == 11
    with pytest.raises(IndexError, match="one item"):
        view[1]
    with pytest.raises(IndexError, match="one item"):
        view[-2] = 3
    assert cell.load() == 11


def test_locked_cell_bound_operations() -> None:
    cell = AtomicInt(0, backend="locked")
    cas = cell.bind_cas()
    assert cas(0, 5) is True
    assert cas(0, 6) is False
    assert cell.load() == 5
    add3 = cell.bind_fetch_add(3)
    assert add3() == 5
    assert add3() == 8
    assert cell.load() == 11


# --- bind_cas slow paths (libatomic) --------------------------------------------------------


@needs_libatomic
def test_bound_cas_with_operands_outside_32_and_64_bits() -> None:
    cell = AtomicInt(MIN)
    cas = cell.bind_cas()
    # expected 2**63 is MIN wrapped; desired 2**40 does not fit a C int
    assert cas(1 << 63, 1 << 40) is True
    assert cell.load() == 1 << 40
    assert cas(0, 1 << 41) is False
    assert cell.load() == 1 << 40
    # desired 2**64 + 3 wraps to 3, but is outside 32 bits: it takes the slow path
    assert cas(1 << 40, (1 << 64) + 3) is True
    assert cell.load() == 3
    # expected outside 64 bits with a small desired: wrapped on the fast path
    assert cas(3 + (1 << 64), 4) is True
    assert cell.load() == 4
    assert cas(-(1 << 64), 5) is False  # wraps to 0, which is not the value
    assert cell.load() == 4


@needs_libatomic
@pytest.mark.parametrize("order", [RELAXED, ACQUIRE, RELEASE, ACQ_REL, SEQ_CST])
def test_libatomic_cas_helper_every_order(order: int) -> None:
    cell = AtomicInt(10)
    p = cell._p
    assert atomics._libatomic_cas(p, 10, 1 << 50, order) == (True, 10)
    assert atomics._libatomic_cas(p, 10, 2, order) == (False, 1 << 50)
    # out-of-range operands wrap to 64 bits
    assert atomics._libatomic_cas(p, (1 << 50) + (1 << 64), 1 << 63, order) == (
        True,
        1 << 50,
    )
    assert cell.load() == MIN


@needs_libatomic
def test_libatomic_cas_helper_rejects_bad_orders() -> None:
    cell = AtomicInt(0)
    with pytest.raises(ValueError, match="invalid memory order 9 for compare_exchange"):
        atomics._libatomic_cas(cell._p, 0, 1, 9)
    assert cell.load() == 0


@needs_libatomic
def test_slow_paths_work_on_a_fresh_thread() -> None:
    # A thread's CAS scratch is made on first use, by whichever path comes first.
    cell = AtomicInt(0)
    results: list[object] = []

    def first_use_slow_helper() -> None:
        results.append(atomics._libatomic_cas(cell._p, 0, 1 << 45, SEQ_CST))

    def first_use_bound() -> None:
        results.append(cell.bind_cas()(1 << 45, 1 << 46))

    for target in (first_use_slow_helper, first_use_bound):
        t = threading.Thread(target=target)
        t.start()
        t.join(30)
        assert not t.is_alive()
    assert results == [(True, 0), True]
    assert cell.load() == 1 << 46


# --- slabs ------------------------------------------------------------------------------------


def test_locked_slab_all_equal() -> None:
    s = AtomicSlab(6, backend="locked")
    assert s.all_equal(0, 6, 0)
    s.store(3, -1)
    assert not s.all_equal(0, 6, 0)
    assert s.all_equal(0, 3, 0) and s.all_equal(3, 4, -1) and s.all_equal(4, 4, 99)
    with pytest.raises(IndexError, match="out of bounds"):
        s.all_equal(0, 7, 0)


@needs_libatomic
def test_slab_all_equal_with_a_value_no_cell_can_hold() -> None:
    s = AtomicSlab(4)
    assert not s.all_equal(0, 4, 1 << 64)
    assert not s.all_equal(0, 4, MIN - 1)


@needs_libatomic
def test_generic_slab_plain_accessors_check_the_index() -> None:
    s = atomics._LibatomicSlab(4)
    s.plain_store_at(-1, 42)
    assert s.plain_load_at(3) == 42
    with pytest.raises(IndexError, match="index 4 out of range for an AtomicSlab of 4"):
        s.plain_load_at(4)
    with pytest.raises(IndexError, match="index -5 out of range"):
        s.plain_store_at(-5, 1)
    with pytest.raises(ValueError, match="out of the signed 64-bit range"):
        s.plain_store_at(0, 1 << 63)
    assert s.load_range(0, 4) == [0, 0, 0, 42]
