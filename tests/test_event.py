"""Event: the zap one-token protocol on both backends (futex and portable)."""

from __future__ import annotations

import faulthandler
import functools
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from helpers import start

from zuki.concurrent import event as event_module
from zuki.concurrent.event import EMPTY, EVENT_BACKEND, NOTIFIED, SHUTDOWN, WAITING, Event

FUTEX_AVAILABLE = event_module._syscall is not None
BACKENDS = ["futex", "portable"]
JOIN = 30.0  # seconds a test thread may take before the test fails with stacks dumped


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "futex" and not FUTEX_AVAILABLE:
        pytest.skip("no futex on this platform")
    return str(request.param)


def join(*threads: threading.Thread, timeout: float = JOIN) -> None:
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    if any(t.is_alive() for t in threads):
        faulthandler.dump_traceback(all_threads=True)
        pytest.fail(f"a thread did not finish in {timeout}s (stacks dumped to stderr)")


def sleepers(ev: Event, native_ids: list[int]) -> int:
    """How many of the threads are blocked inside this event's wait, as far as we can tell."""
    if isinstance(ev, event_module._PortableEvent):
        return len(ev._cond._waiters)  # type: ignore[attr-defined]
    assert isinstance(ev, event_module._FutexEvent)
    count = 0
    for tid in native_ids:
        try:
            with open(f"/proc/self/task/{tid}/syscall") as f:
                fields = f.read().split()
        except OSError:
            return -1  # not observable here
        if len(fields) > 1 and fields[0] == str(event_module._SYS_FUTEX_NR):
            count += int(fields[1], 16) == ev._uaddr.value
    return count


def wait_for_sleepers(ev: Event, native_ids: list[int], n: int) -> None:
    """Until ``n`` threads are asleep in ``ev.wait`` (or a grace period, if unobservable)."""
    deadline = time.monotonic() + JOIN
    while True:
        seen = sleepers(ev, native_ids)
        if seen == -1:
            time.sleep(0.2)
            return
        if seen >= n:
            return
        if time.monotonic() > deadline:
            faulthandler.dump_traceback(all_threads=True)
            pytest.fail(f"only {seen} of {n} threads went to sleep")
        time.sleep(0.002)


# --- basics ------------------------------------------------------------------------------


def test_default_backend() -> None:
    assert EVENT_BACKEND in {"futex", "portable"}
    if os.environ.get("ZUKI_EVENT") != "portable":
        expected = "futex" if FUTEX_AVAILABLE else "portable"
        assert expected == EVENT_BACKEND
    assert Event().backend == EVENT_BACKEND


def test_unknown_backend_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown Event backend 'nope'"):
        Event(backend="nope")


@pytest.mark.parallel_threads(1)  # already a whole process / two threads; slow x4
def test_env_var_selects_the_portable_backend() -> None:
    env = dict(os.environ, ZUKI_EVENT="portable")
    code = "from zuki.concurrent import event as e; print(e.EVENT_BACKEND, e.Event().backend)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["portable", "portable"]


def test_notify_before_wait_is_not_lost(backend: str) -> None:
    ev = Event(backend=backend)
    assert ev.state == EMPTY
    ev.notify()
    assert ev.state == NOTIFIED
    assert ev.wait() is True
    assert ev.state == EMPTY


def test_one_token_only(backend: str) -> None:
    ev = Event(backend=backend)
    ev.notify()
    ev.notify()
    ev.notify()
    assert ev.wait(0) is True
    assert ev.wait(0) is False
    assert ev.wait(0.001) is False


def test_timeout_returns_false_roughly_on_time(backend: str) -> None:
    ev = Event(backend=backend)
    for timeout in (0.0, -1.0, 0.05):
        began = time.monotonic()
        assert ev.wait(timeout) is False
        elapsed = time.monotonic() - began
        assert max(timeout, 0.0) <= elapsed + 0.002
        assert elapsed < max(timeout, 0.0) + 1.0
    ev.notify()
    assert ev.wait(0.05) is True


def test_notify_wakes_a_blocked_waiter(backend: str) -> None:
    ev = Event(backend=backend)
    ids: list[int] = []

    def waiter() -> bool:
        ids.append(threading.get_native_id())
        return ev.wait()

    thread, out = start(waiter)
    while not ids:
        time.sleep(0.001)
    wait_for_sleepers(ev, ids, 1)
    if backend == "futex":
        assert ev.state == WAITING
    ev.notify()
    join(thread)
    assert out == [True]


def test_timed_wait_is_woken_early(backend: str) -> None:
    ev = Event(backend=backend)
    began = time.monotonic()
    thread, out = start(lambda: ev.wait(20.0))
    time.sleep(0.02)
    ev.notify()
    join(thread)
    assert out == [True]
    assert time.monotonic() - began < 10.0


def test_notify_all_wakes_every_waiter(backend: str) -> None:
    ev = Event(backend=backend)
    n = 5
    ids: list[int] = []
    lock = threading.Lock()

    def waiter() -> bool:
        with lock:
            ids.append(threading.get_native_id())
        return ev.wait()

    started = [start(waiter) for _ in range(n)]
    while len(ids) < n:
        time.sleep(0.001)
    wait_for_sleepers(ev, ids, n)
    ev.notify_all()
    join(*(t for t, _ in started))
    assert [out for _, out in started] == [[True]] * n
    assert ev.wait(0) is True  # notify_all leaves the token too
    assert ev.wait(0) is False


def test_notify_wakes_one_of_many(backend: str) -> None:
    ev = Event(backend=backend)
    results: list[bool] = []
    lock = threading.Lock()

    def waiter() -> None:
        got = ev.wait(1.0)
        with lock:
            results.append(got)

    threads = [start(waiter)[0] for _ in range(3)]
    time.sleep(0.05)
    ev.notify()
    join(*threads)
    assert sorted(results) == [False, False, True]


def test_shutdown_is_sticky(backend: str) -> None:
    ev = Event(backend=backend)
    thread, out = start(ev.wait)
    time.sleep(0.02)
    ev.shutdown()
    join(thread)
    assert out == [True]
    assert ev.state == SHUTDOWN
    for _ in range(3):
        assert ev.wait() is True
        assert ev.wait(0) is True
    ev.notify()
    ev.notify_all()
    assert ev.state == SHUTDOWN
    assert ev.wait() is True
    assert repr(ev) == f"<Event SHUTDOWN backend={backend!r}>"


@pytest.mark.parallel_threads(1)  # already a whole process / two threads; slow x4
def test_ping_pong_10k(backend: str) -> None:
    ping, pong = Event(backend=backend), Event(backend=backend)
    rounds = 10_000

    def other() -> int:
        for _ in range(rounds):
            assert ping.wait(JOIN)
            pong.notify()
        return rounds

    thread, out = start(other)
    for i in range(rounds):
        ping.notify()
        if not pong.wait(JOIN):
            faulthandler.dump_traceback(all_threads=True)
            pytest.fail(f"lost wake-up at round {i}")
    join(thread)
    assert out == [rounds]


def test_many_notifiers_many_waiters_lose_nothing(backend: str) -> None:
    """Tokens are never lost: each waiter is released by a notify, shutdown ends the rest."""
    ev = Event(backend=backend)
    consumed = [0] * 3
    stop = threading.Event()

    def waiter(i: int) -> None:
        while not stop.is_set():
            if ev.wait() and not stop.is_set():
                consumed[i] += 1

    def notifier() -> None:
        for _ in range(2_000):
            ev.notify()

    waiters = [start(functools.partial(waiter, i))[0] for i in range(3)]
    notifiers = [start(notifier)[0] for _ in range(2)]
    join(*notifiers)
    # Every notify left a token or woke a waiter; once the waiters drain it, all sleep.
    deadline = time.monotonic() + JOIN
    while ev.state == NOTIFIED and time.monotonic() < deadline:
        time.sleep(0.001)
    assert ev.state in {EMPTY, WAITING}
    stop.set()
    ev.shutdown()
    join(*waiters)
    assert sum(consumed) >= 1


@pytest.mark.thread_unsafe(reason="signals are delivered to the main thread only")
def test_signals_do_not_end_a_wait_early(backend: str) -> None:
    """EINTR is retried and the remaining time recomputed."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("needs the main thread")
    if not hasattr(signal, "setitimer"):
        pytest.skip("no setitimer")
    ev = Event(backend=backend)
    hits = 0

    def on_alarm(_signum: int, _frame: object) -> None:
        nonlocal hits
        hits += 1

    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.01, 0.01)
        began = time.monotonic()
        assert ev.wait(0.15) is False
        elapsed = time.monotonic() - began
        notifier = threading.Timer(0.05, ev.notify)
        notifier.start()
        assert ev.wait(JOIN) is True
        notifier.join(JOIN)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, previous)
    assert hits >= 2
    assert 0.15 <= elapsed + 0.002 < 5.0
