"""SyncState: every transition, the bit-field limits, and balance under threads."""

from __future__ import annotations

import faulthandler
import threading
import time
from collections.abc import Callable

import pytest

from zuki.concurrent import atomics
from zuki.concurrent.sync_state import FIELD_MAX, State, SyncState, encode

BACKENDS = ["libatomic", "locked"] if atomics._lib is not None else ["locked"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def spawned(backend: str, max_workers: int, n: int) -> SyncState:
    s = SyncState(max_workers, backend=backend)
    for _ in range(n):
        assert s.try_spawn()
    return s


def run_threads(target: Callable[[int], None], n: int, timeout: float = 60.0) -> None:
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


def test_initial_state(backend: str) -> None:
    s = SyncState(4, backend=backend)
    assert s.max_workers == 4
    assert s.load() == State(idle=0, spawned=0, searching=0, notified=False, shutdown=False)
    assert s.load().active == 0
    assert not s.should_wake()
    assert "max_workers=4" in repr(s)


@pytest.mark.parametrize("bad", [0, -1, FIELD_MAX + 1])
def test_max_workers_must_fit_the_field(bad: int) -> None:
    with pytest.raises(ValueError, match="max_workers must be in"):
        SyncState(bad)


def test_largest_pool_fits() -> None:
    s = SyncState(FIELD_MAX)
    for _ in range(3):
        assert s.try_spawn()
    assert s.load().spawned == 3


def test_encode_round_trip_and_overflow() -> None:
    state = State(idle=3, spawned=FIELD_MAX, searching=2, notified=True, shutdown=True)
    word = encode(state)
    assert 0 < word < 1 << 63
    with pytest.raises(ValueError, match="does not fit"):
        encode(State(idle=0, spawned=FIELD_MAX + 1, searching=0, notified=False, shutdown=False))
    with pytest.raises(ValueError, match="does not fit"):
        encode(State(idle=-1, spawned=0, searching=0, notified=False, shutdown=False))


def test_spawn_up_to_max_then_refuse(backend: str) -> None:
    s = SyncState(3, backend=backend)
    assert [s.try_spawn() for _ in range(4)] == [True, True, True, False]
    assert s.load().spawned == 3
    s.unspawn()
    assert s.load().spawned == 2
    assert s.try_spawn()
    assert not s.try_spawn()


def test_unspawn_underflow_is_an_error(backend: str) -> None:
    s = SyncState(2, backend=backend)
    with pytest.raises(ValueError, match="unspawn"):
        s.unspawn()
    assert s.try_spawn()
    assert s.begin_idle()
    with pytest.raises(ValueError, match="unspawn"):
        s.unspawn()  # the only spawned worker is idle
    assert s.load().spawned == 1


def test_idle_transitions(backend: str) -> None:
    s = spawned(backend, 4, 2)
    assert s.begin_idle()
    assert s.load().idle == 1
    assert s.load().active == 1
    assert s.begin_idle()
    with pytest.raises(ValueError, match="already idle"):
        s.begin_idle()  # idle may not exceed spawned
    s.end_idle()
    s.end_idle()
    with pytest.raises(ValueError, match="no idle worker"):
        s.end_idle()
    assert s.load().idle == 0


def test_begin_idle_consumes_a_pending_notification(backend: str) -> None:
    s = spawned(backend, 4, 1)
    assert s.set_notified()
    assert not s.set_notified()  # already set
    assert s.load().notified
    assert not s.begin_idle()  # took the notification instead of idling
    assert s.load() == State(idle=0, spawned=1, searching=0, notified=False, shutdown=False)
    assert s.begin_idle()
    assert s.load().idle == 1


def test_consume_notified(backend: str) -> None:
    s = SyncState(2, backend=backend)
    assert not s.consume_notified()
    s.set_notified()
    assert s.consume_notified()
    assert not s.consume_notified()


def test_search_cap_is_half_the_active_workers(backend: str) -> None:
    s = spawned(backend, 8, 4)
    assert [s.try_begin_search() for _ in range(3)] == [True, True, False]
    assert s.load().searching == 2
    assert not s.end_search()
    assert s.end_search()  # the last searcher
    with pytest.raises(ValueError, match="no searching worker"):
        s.end_search()
    # Idle workers do not count: with 2 of 4 idle only one may search.
    assert s.begin_idle()
    assert s.begin_idle()
    assert [s.try_begin_search() for _ in range(2)] == [True, False]


def test_search_refused_with_no_active_worker(backend: str) -> None:
    s = SyncState(2, backend=backend)
    assert not s.try_begin_search()
    assert s.try_spawn()
    assert s.try_begin_search()
    assert not s.try_begin_search()


def test_should_wake_and_try_wake(backend: str) -> None:
    s = spawned(backend, 4, 3)
    assert not s.should_wake()  # nobody idle
    assert not s.try_wake()
    assert s.begin_idle()
    assert s.begin_idle()
    assert s.should_wake()
    assert s.try_wake()  # one idle worker becomes a searcher
    assert s.load() == State(idle=1, spawned=3, searching=1, notified=False, shutdown=False)
    assert not s.should_wake()  # somebody is searching
    assert not s.try_wake()
    assert s.end_search()
    assert s.should_wake()
    s.shutdown()
    assert not s.should_wake()
    assert not s.try_wake()


def test_shutdown_is_sticky_and_stops_spawning(backend: str) -> None:
    s = spawned(backend, 4, 2)
    assert s.shutdown()
    assert not s.shutdown()
    state = s.load()
    assert state.shutdown
    assert state.spawned == 2
    assert not s.try_spawn()
    assert not s.try_begin_search()
    s.set_notified()
    s.consume_notified()
    assert s.load().shutdown
    s.unspawn()
    assert s.load().spawned == 1


def test_fields_do_not_bleed_into_each_other(backend: str) -> None:
    s = SyncState(FIELD_MAX, backend=backend)
    for _ in range(300):
        assert s.try_spawn()
    for _ in range(299):
        assert s.begin_idle()
    s.set_notified()
    s.consume_notified()
    assert s.try_begin_search()  # 2*0 < 1 active
    assert s.load() == State(idle=299, spawned=300, searching=1, notified=False, shutdown=False)


# --- threads -----------------------------------------------------------------------------


def test_concurrent_spawn_never_exceeds_max(backend: str) -> None:
    s = SyncState(5, backend=backend)
    wins = [0] * 8

    def work(i: int) -> None:
        for _ in range(50):
            if s.try_spawn():
                wins[i] += 1

    run_threads(work, 8)
    assert sum(wins) == 5
    assert s.load().spawned == 5


def test_concurrent_idle_and_search_stay_balanced(backend: str) -> None:
    workers = 4
    s = spawned(backend, workers, workers)
    rounds = 2_000
    over_cap: list[State] = []

    def work(_i: int) -> None:
        for _ in range(rounds):
            if s.begin_idle():
                s.end_idle()
            if s.try_begin_search():
                state = s.load()
                if state.searching > workers // 2:
                    over_cap.append(state)
                s.end_search()
            if s.set_notified():
                s.consume_notified()

    run_threads(work, workers)
    assert not over_cap
    final = s.load()
    assert (final.idle, final.spawned, final.searching) == (0, workers, 0)
