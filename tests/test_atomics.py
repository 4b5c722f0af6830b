"""The atomics shim: every operation on every backend, orders, wraparound, threads.

Backends under test: ``libatomic`` (the default cell class: plain loads/stores on x86-64),
``generic`` (every operation through libatomic, the path non-x86 platforms take; it runs
on x86-64 too) and ``locked`` (the lock-striped fallback).
"""

from __future__ import annotations

import faulthandler
import itertools
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest
from helpers import HAVE_LIBATOMIC
from helpers import INT64_MAX as MAX
from helpers import INT64_MIN as MIN
from hypothesis import given
from hypothesis import strategies as st

from zuki.concurrent import atomics
from zuki.concurrent.atomics import (
    ACQ_REL,
    ACQUIRE,
    CONSUME,
    RELAXED,
    RELEASE,
    SEQ_CST,
    AtomicInt,
    AtomicSlab,
    MemoryOrder,
    fence,
)

ALL_ORDERS = [RELAXED, CONSUME, ACQUIRE, RELEASE, ACQ_REL, SEQ_CST]
LOAD_ORDERS = [RELAXED, CONSUME, ACQUIRE, SEQ_CST]
STORE_ORDERS = [RELAXED, RELEASE, SEQ_CST]

KINDS = ["libatomic", "generic", "locked"]


def make_cell(kind: str, value: int = 0) -> AtomicInt:
    if kind in {"libatomic", "generic"} and not HAVE_LIBATOMIC:
        pytest.skip("libatomic is not available")
    if kind == "generic":
        return atomics._LibatomicInt(value)
    return AtomicInt(value, backend=kind)


def make_slab(kind: str, n: int, *, padded: bool = False) -> AtomicSlab:
    if kind in {"libatomic", "generic"} and not HAVE_LIBATOMIC:
        pytest.skip("libatomic is not available")
    if kind == "generic":
        return atomics._LibatomicSlab(n, padded=padded)
    return AtomicSlab(n, padded=padded, backend=kind)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def run_threads(target: Callable[[int], None], n: int, timeout: float = 60.0) -> None:
    """Run ``target(i)`` on ``n`` threads; fail with every stack dumped if one hangs."""
    errors: list[BaseException] = []

    def body(i: int) -> None:
        try:
            target(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    if any(t.is_alive() for t in threads):
        faulthandler.dump_traceback(all_threads=True)
        pytest.fail(f"threads still running after {timeout}s (stacks dumped to stderr)")
    if errors:
        raise errors[0]


# --- module contract ---------------------------------------------------------------------


def test_order_constants_are_the_gcc_values() -> None:
    assert [RELAXED, CONSUME, ACQUIRE, RELEASE, ACQ_REL, SEQ_CST] == [0, 1, 2, 3, 4, 5]
    assert [int(o) for o in MemoryOrder] == [0, 1, 2, 3, 4, 5]
    assert int(MemoryOrder.SEQ_CST) == SEQ_CST
    assert MemoryOrder["ACQUIRE"] is MemoryOrder.ACQUIRE


def test_backend_and_platform_flags() -> None:
    assert atomics.BACKEND in {"libatomic", "locked"}
    expected = "libatomic" if HAVE_LIBATOMIC else "locked"
    assert atomics.BACKEND in {expected, os.environ.get("ZUKI_ATOMICS")}
    on_x86_64 = platform.machine().lower() in {"x86_64", "amd64"}
    assert on_x86_64 == atomics.PLAIN_ORDERS_FREE
    assert isinstance(AtomicInt(), atomics._CELL_CLASSES[atomics.BACKEND])


def test_unknown_backend_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown atomics backend 'nope'"):
        AtomicInt(0, backend="nope")
    with pytest.raises(ValueError, match="unknown atomics backend"):
        AtomicSlab(4, backend="nope")


def _import_in_subprocess(env_value: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ZUKI_ATOMICS=env_value)
    code = (
        "from zuki.concurrent import atomics as a\n"
        "c = a.AtomicInt(1); c.fetch_add(2)\n"
        "print(a.BACKEND, type(c).__name__, c.load())"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parallel_threads(1)  # already a whole process / two threads; slow x4
def test_env_var_forces_the_locked_fallback() -> None:
    result = _import_in_subprocess("locked")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["locked", "_LockedInt", "3"]


@pytest.mark.parallel_threads(1)  # already a whole process / two threads; slow x4
def test_env_var_with_a_bad_value_fails_the_import() -> None:
    result = _import_in_subprocess("bogus")
    assert result.returncode != 0
    assert "ZUKI_ATOMICS='bogus'" in result.stderr


# --- single-cell operations --------------------------------------------------------------


def test_initial_value_load_store(kind: str) -> None:
    a = make_cell(kind)
    assert a.load() == 0
    b = make_cell(kind, -42)
    assert b.load() == -42
    b.store(7)
    assert b.load() == 7
    assert b.backend == ("locked" if kind == "locked" else "libatomic")


def test_cells_are_cache_line_aligned(kind: str) -> None:
    cells = [make_cell(kind) for _ in range(8)]
    assert all(c.address % 64 == 0 for c in cells)
    assert len({c.address for c in cells}) == 8


def test_read_modify_writes(kind: str) -> None:
    a = make_cell(kind, 10)
    assert a.fetch_add(5) == 10
    assert a.fetch_sub(3) == 15
    assert a.load() == 12
    assert a.fetch_and(0b1010) == 12
    assert a.load() == 8
    assert a.fetch_or(0b0011) == 8
    assert a.load() == 11
    assert a.exchange(-1) == 11
    assert a.fetch_and(0xFF) == -1
    assert a.load() == 0xFF
    assert a.add(1) == 0x100
    assert a.sub(0x101) == -1
    assert a.add() == 0
    assert a.sub() == -1


def test_large_operands_do_not_truncate(kind: str) -> None:
    big = (1 << 40) + 12345
    a = make_cell(kind)
    assert a.fetch_add(big) == 0
    assert a.load() == big
    assert a.fetch_sub(big * 2) == big
    assert a.load() == -big
    assert a.exchange(MAX) == -big
    assert a.fetch_and(~(1 << 62)) == MAX
    assert a.load() == MAX - (1 << 62)
    assert a.fetch_or(1 << 50) == MAX - (1 << 62)
    assert a.add(1 << 33) == MAX - (1 << 62) + (1 << 33)


def test_compare_exchange(kind: str) -> None:
    a = make_cell(kind, 5)
    assert a.compare_exchange(5, 6) == (True, 5)
    assert a.load() == 6
    assert a.compare_exchange(5, 7) == (False, 6)
    assert a.load() == 6
    big = 1 << 45
    assert a.compare_exchange(6, big) == (True, 6)
    assert a.compare_exchange(big, -big) == (True, big)
    assert a.compare_exchange(big, 0) == (False, -big)
    assert a.compare_exchange(-big, MIN) == (True, -big)
    assert a.load() == MIN


def test_wraparound_at_2_pow_63(kind: str) -> None:
    a = make_cell(kind, MAX)
    assert a.fetch_add(1) == MAX
    assert a.load() == MIN
    assert a.fetch_sub(1) == MIN
    assert a.load() == MAX
    assert a.add(2) == MIN + 1
    assert a.sub(3) == MAX - 1
    a.store(1 << 63)
    assert a.load() == MIN
    a.store((1 << 64) + 5)
    assert a.load() == 5
    assert a.exchange(1 << 64) == 5
    assert a.load() == 0
    assert a.compare_exchange(1 << 64, 1 << 63) == (True, 0)
    assert a.load() == MIN
    assert make_cell(kind, 1 << 63).load() == MIN


def test_plain_load_and_store(kind: str) -> None:
    a = make_cell(kind, 3)
    load, store = a.plain_load, a.plain_store
    assert load() == 3
    store(-9)
    assert a.load() == -9
    a.fetch_add(10)
    assert load() == 1
    store(MAX)
    assert load() == MAX
    with pytest.raises((ValueError, OverflowError)):
        store(1 << 63)


def test_repr(kind: str) -> None:
    assert repr(make_cell(kind, -3)) == f"AtomicInt(-3, backend={make_cell(kind).backend!r})"


def test_every_valid_order_is_accepted(kind: str) -> None:
    a = make_cell(kind)
    for order in LOAD_ORDERS:
        assert a.load(order) == 0
        assert a.load(MemoryOrder(order)) == 0
    for order in STORE_ORDERS:
        a.store(1, order)
        a.store(0, MemoryOrder(order))
    for order in ALL_ORDERS:
        assert a.fetch_add(1, order) == 0
        assert a.fetch_sub(1, order) == 1
        assert a.fetch_or(0, order) == 0
        assert a.fetch_and(-1, order) == 0
        assert a.exchange(0, order) == 0
        assert a.compare_exchange(0, 0, order) == (True, 0)
        assert a.compare_exchange(1, 0, MemoryOrder(order)) == (False, 0)


@pytest.mark.parametrize("bad", [RELEASE, ACQ_REL, 6, -1, "acquire", None])
def test_load_rejects_bad_orders(kind: str, bad: object) -> None:
    a = make_cell(kind)
    with pytest.raises(ValueError, match=r"invalid memory order .* for load"):
        a.load(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [CONSUME, ACQUIRE, ACQ_REL, 9])
def test_store_rejects_bad_orders(kind: str, bad: int) -> None:
    a = make_cell(kind)
    with pytest.raises(ValueError, match="for store") as info:
        a.store(1, bad)
    if 0 <= bad <= 5:
        assert MemoryOrder(bad).name in str(info.value)
    assert a.load() == 0


def test_read_modify_writes_reject_bad_orders(kind: str) -> None:
    a = make_cell(kind)
    calls: list[tuple[str, Callable[[], object]]] = [
        ("fetch_add", lambda: a.fetch_add(1, 6)),
        ("fetch_sub", lambda: a.fetch_sub(1, -1)),
        ("fetch_and", lambda: a.fetch_and(1, 17)),
        ("fetch_or", lambda: a.fetch_or(1, 100)),
        ("exchange", lambda: a.exchange(1, 6)),
        ("compare_exchange", lambda: a.compare_exchange(0, 1, 6)),
    ]
    for name, call in calls:
        with pytest.raises(ValueError, match=f"for {name}"):
            call()
    assert a.load() == 0


def test_error_message_names_the_order() -> None:
    with pytest.raises(ValueError, match="invalid memory order RELEASE for load; expected one of"):
        AtomicInt().load(RELEASE)
    with pytest.raises(ValueError, match="ACQ_REL for store"):
        AtomicInt().store(0, MemoryOrder.ACQ_REL)


def test_fence_accepts_every_order_and_rejects_others() -> None:
    for order in ALL_ORDERS:
        fence(order)
    fence()
    with pytest.raises(ValueError, match="for fence"):
        fence(6)
    atomics.full_fence()


@given(
    start=st.integers(MIN, MAX),
    ops=st.lists(
        st.tuples(
            st.sampled_from(["add", "sub", "and", "or", "xchg", "cas", "store", "addn"]),
            st.integers(-(1 << 70), 1 << 70),
        ),
        max_size=20,
    ),
)
def test_matches_a_reference_model(start: int, ops: list[tuple[str, int]]) -> None:
    def wrap(v: int) -> int:
        return ((v + (1 << 63)) % (1 << 64)) - (1 << 63)

    for kind in KINDS:
        if kind != "locked" and not HAVE_LIBATOMIC:
            continue
        a = make_cell(kind, start)
        model = start
        for op, n in ops:
            if op == "store":
                a.store(n)
                model = wrap(n)
                continue
            if op == "cas":
                expected = model if n % 2 else n
                ok, seen = a.compare_exchange(expected, n)
                assert seen == (wrap(expected) if ok else model)
                assert ok == (wrap(expected) == model)
                if ok:
                    model = wrap(n)
                continue
            if op == "addn":
                assert a.add(n) == wrap(model + n)
                model = wrap(model + n)
                continue
            old = {
                "add": a.fetch_add,
                "sub": a.fetch_sub,
                "and": a.fetch_and,
                "or": a.fetch_or,
                "xchg": a.exchange,
            }[op](n)
            assert old == model
            model = wrap(
                {
                    "add": model + n,
                    "sub": model - n,
                    "and": model & n,
                    "or": model | n,
                    "xchg": n,
                }[op]
            )
        assert a.load() == model


# --- slabs -------------------------------------------------------------------------------


@pytest.mark.parametrize("padded", [False, True])
def test_slab_cells_share_the_buffer(kind: str, padded: bool) -> None:
    s = make_slab(kind, 10, padded=padded)
    assert len(s) == 10
    assert s.backend == ("locked" if kind == "locked" else "libatomic")
    assert repr(s) == f"AtomicSlab(10, padded={padded}, backend={s.backend!r})"
    stride = 64 if padded else 8
    addresses = [s.cell(i).address for i in range(10)]
    assert addresses[0] % 64 == 0
    assert [b - a for a, b in itertools.pairwise(addresses)] == [stride] * 9
    assert s.cell(3) is s.cell(3)
    s.store(3, 33)
    assert s.cell(3).load() == 33
    s.cell(4).store(44)
    assert s.load(4) == 44
    assert s.load(-6) == 44
    s.store(-1, 99)
    assert s.cell(9).load() == 99
    assert s.fetch_add(9, 1) == 99
    assert s.exchange(9, 5) == 100
    assert s.compare_exchange(9, 5, 6) == (True, 5)
    assert s.compare_exchange(9, 5, 7) == (False, 6)
    assert s.compare_exchange(9, 6, 1 << 50) == (True, 6)
    assert s.load_range(0, 10) == [0, 0, 0, 33, 44, 0, 0, 0, 0, 1 << 50]


def test_slab_range_operations(kind: str) -> None:
    s = make_slab(kind, 8)
    s.store_range(2, [5, -6, MAX, MIN])
    assert s.load_range(0, 8) == [0, 0, 5, -6, MAX, MIN, 0, 0]
    assert s.load_range(3, 5) == [-6, MAX]
    assert s.load_range(4, 4) == []
    s.store_range(8, [])
    s.store_range(0, [1] * 8)
    assert s.load_range(0, 8) == [1] * 8
    with pytest.raises(IndexError):
        s.load_range(0, 9)
    with pytest.raises(IndexError):
        s.load_range(5, 4)
    with pytest.raises(IndexError):
        s.store_range(6, [1, 2, 3])
    with pytest.raises((ValueError, OverflowError)):
        s.store_range(0, [7, 1 << 63])
    assert s.load(0) == 7


def test_slab_padded_range_operations(kind: str) -> None:
    s = make_slab(kind, 5, padded=True)
    s.store_range(1, [10, 20, 30])
    assert s.load_range(0, 5) == [0, 10, 20, 30, 0]


def test_slab_bounds_and_orders(kind: str) -> None:
    s = make_slab(kind, 3)
    with pytest.raises(IndexError):
        s.load(3)
    with pytest.raises(IndexError):
        s.store(-4, 1)
    with pytest.raises(IndexError):
        s.cell(3)
    with pytest.raises(ValueError, match="for load"):
        s.load(0, RELEASE)
    with pytest.raises(ValueError, match="for store"):
        s.store(0, 1, ACQUIRE)
    with pytest.raises(ValueError, match="for compare_exchange"):
        s.compare_exchange(0, 0, 1, 8)
    with pytest.raises(ValueError, match="for fetch_add"):
        s.fetch_add(0, 1, 8)
    with pytest.raises(ValueError, match="size must be >= 0"):
        AtomicSlab(-1)
    assert len(AtomicSlab(0)) == 0
    assert AtomicSlab(0).load_range(0, 0) == []


def test_slab_wraps_values(kind: str) -> None:
    s = make_slab(kind, 2)
    s.store(0, 1 << 63)
    assert s.load(0) == MIN
    s.store(1, MAX)
    assert s.fetch_add(1, 1) == MAX
    assert s.load(1) == MIN


# --- threads -----------------------------------------------------------------------------

THREADS = 4


def increments(kind: str) -> int:
    """100k per thread on the default backend; fewer on the slower ones, to stay quick."""
    return 100_000 if kind == "libatomic" else 20_000


def test_threads_fetch_add_exact_total(kind: str) -> None:
    a = make_cell(kind)
    b = make_cell(kind)

    n = increments(kind)

    def work(_i: int) -> None:
        fetch_add, add = a.fetch_add, b.add
        for _ in range(n // 2):
            fetch_add(1)
            fetch_add(1, RELAXED)
            add(3)

    run_threads(work, THREADS)
    assert a.load() == THREADS * n
    assert b.load() == THREADS * n // 2 * 3


def test_threads_cas_increment_exact_total(kind: str) -> None:
    a = make_cell(kind, (1 << 40) - 5000)  # desired values beyond 32 bits
    per_thread = 10_000

    def work(_i: int) -> None:
        cas = a.compare_exchange
        for _ in range(per_thread):
            current = a.load()
            while True:
                ok, current = cas(current, current + 1)
                if ok:
                    break

    run_threads(work, THREADS)
    assert a.load() == (1 << 40) - 5000 + THREADS * per_thread


def test_threads_exchange_passes_a_token_exactly_once(kind: str) -> None:
    """Each thread swaps its own tokens in; every token comes out exactly once."""
    a = make_cell(kind, -1)
    per_thread = 5_000
    seen: list[list[int]] = [[] for _ in range(THREADS)]

    def work(i: int) -> None:
        out = seen[i]
        for k in range(per_thread):
            out.append(a.exchange(i * per_thread + k))

    run_threads(work, THREADS)
    everything = sorted([v for out in seen for v in out] + [a.load()])
    assert everything == [-1, *range(THREADS * per_thread)]


def test_threads_slab_cells_are_independent(kind: str) -> None:
    s = make_slab(kind, THREADS * 2, padded=True)
    per_thread = 20_000

    def work(i: int) -> None:
        fetch_add = s.fetch_add
        for k in range(per_thread):
            fetch_add(k % len(s), 1)
            s.fetch_add(i, -1)

    run_threads(work, THREADS)
    expected = [THREADS * per_thread // len(s)] * len(s)
    for i in range(THREADS):
        expected[i] -= per_thread
    assert s.load_range(0, len(s)) == expected


def test_threads_release_acquire_message_passing(kind: str) -> None:
    """A reader that acquire-loads the flag also sees the slab values stored before it."""
    data = make_slab(kind, 4)
    flag = make_cell(kind)
    rounds = 20_000

    def writer() -> None:
        publish = flag.plain_store  # a release store
        for r in range(1, rounds + 1):
            data.store_range(0, [r, r, r, r])
            publish(r)

    def reader() -> None:
        seen = 0
        while seen < rounds:
            seen = flag.load(ACQUIRE)
            values = data.load_range(0, 4)
            assert min(values) >= seen, (seen, values)

    run_threads(lambda i: writer() if i == 0 else reader(), 2)
    assert data.load_range(0, 4) == [rounds] * 4
