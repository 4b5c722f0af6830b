"""Edges of the reactor: registrations polled by hand, a second waiter in one direction,
a descriptor the poller refuses, closing a registration or the whole reactor under a
waiting task, a reactor used after close, ``wakeup``, and the after-fork hook.

Readiness is driven through a socketpair; a "task" is a waker whose data counts wakes.
"""

from __future__ import annotations

import errno
import os
import socket
import tempfile
import threading
from collections.abc import Iterator

import pytest
from helpers import WAIT, Gate, WakeCounter, guarded, wait_until

import zuki
from zuki.runtime import reactor as reactor_mod
from zuki.runtime.future import PENDING, Context, Ready
from zuki.runtime.reactor import READABLE, WRITABLE, Reactor, default_reactor, using_reactor
from zuki.runtime.task import tls
from zuki.runtime.waker import Waker


@pytest.fixture(params=["epoll", "selectors"])
def reactor(request: pytest.FixtureRequest) -> Iterator[Reactor]:
    r = Reactor(backend=request.param, name=f"test-reactor-edges-{request.param}")
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    a.setblocking(False)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def test_unknown_backends_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="must be 'epoll' or 'selectors', not 'kqueue'"):
        Reactor(backend="kqueue")
    monkeypatch.setenv(reactor_mod.BACKEND_ENV, "poll")
    with pytest.raises(ValueError, match="not 'poll'"):
        Reactor()


@guarded()
def test_a_registration_polled_by_hand(
    reactor: Reactor, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = pair
    reg = reactor.register(a.fileno(), "pair end", initial=WRITABLE)
    assert not reg.closed
    assert f"fd={a.fileno()} pair end ready={WRITABLE}" in repr(reg)
    reader = WakeCounter()
    cx = Context(Waker(reader))
    fut = reg.ready(READABLE)
    assert fut.poll(cx) is PENDING
    assert fut.poll(cx) is PENDING  # polled again before any event: still one waiter
    assert reg.waiting() == 1 and reactor.waiting() == 1
    with pytest.raises(RuntimeError, match="two tasks wait to read from pair end at once"):
        reg.ready(READABLE).poll(Context(Waker(WakeCounter())))
    b.send(b"x")
    wait_until(lambda: reader.wakes == 1, timeout=WAIT, what="the readable event")
    answer = fut.poll(cx)
    assert isinstance(answer, Ready)
    assert reg.waiting() == 0


@guarded()
def test_a_ready_future_polled_by_another_task_wakes_that_task(
    reactor: Reactor, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = pair
    reg = reactor.register(a.fileno(), "pair end", initial=0)
    first, second = WakeCounter(), WakeCounter()
    fut = reg.ready(READABLE)
    assert fut.poll(Context(Waker(first))) is PENDING
    assert fut.poll(Context(Waker(second))) is PENDING  # the future moved to another task
    assert reg.waiting() == 1
    b.send(b"x")
    wait_until(lambda: second.wakes == 1, timeout=WAIT, what="the readable event")
    assert first.wakes == 0
    assert isinstance(fut.poll(Context(Waker(second))), Ready)


def test_closing_a_registration_twice_still_closes_the_socket(
    reactor: Reactor, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, _b = pair
    reg = reactor.register(a.fileno(), "pair end")
    reactor.close_registration(reg)
    assert reg.closed and reactor.registrations() == 0
    late, other = socket.socketpair()
    other.close()
    reactor.close_registration(reg, late)  # already closed: just closes the socket
    assert late.fileno() == -1


def test_a_descriptor_the_poller_refuses_leaves_no_registration() -> None:
    r = Reactor(backend="epoll", name="test-reactor-edges-refuse")
    try:
        with tempfile.TemporaryFile() as f:
            # epoll cannot watch a regular file: EPERM
            with pytest.raises(OSError) as info:
                r.register(f.fileno(), "a regular file")
            assert info.value.errno == errno.EPERM
        assert r.registrations() == 0
    finally:
        r.close()


@guarded()
def test_closing_the_reactor_wakes_waiters_with_ebadf(
    reactor: Reactor, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, _b = pair
    reg = reactor.register(a.fileno(), "pair end", initial=0)
    reader, writer = WakeCounter(), WakeCounter()
    read_fut, write_fut = reg.ready(READABLE), reg.ready(WRITABLE)
    assert read_fut.poll(Context(Waker(reader))) is PENDING
    # (a socketpair is writable at once: on epoll its first event may already be in)
    write_fut.poll(Context(Waker(writer)))
    reactor.close()
    assert reader.wakes == 1
    assert reactor.registrations() == 0
    with pytest.raises(OSError, match="pair end is closed") as info:
        read_fut.poll(Context(Waker(reader)))
    assert info.value.errno == errno.EBADF


def test_a_closed_reactor_refuses_new_work() -> None:
    r = Reactor(name="test-reactor-edges-closed")
    assert repr(r) == (
        f"<Reactor test-reactor-edges-closed backend={r.backend} timers=0 registrations=0>"
    )
    r.close()  # never started: releases its descriptors at once
    with pytest.raises(RuntimeError, match="test-reactor-edges-closed is closed"):
        r.add_timer(0.0, WakeCounter())
    a, b = socket.socketpair()
    try:
        with pytest.raises(RuntimeError, match="is closed"):
            r.register(a.fileno(), "late")
    finally:
        a.close()
        b.close()


@guarded()
def test_wakeup_makes_a_waiting_turn_return() -> None:
    r = Reactor(name="test-reactor-edges-wakeup")  # not started: we turn it ourselves
    try:
        r.wakeup()
        t = threading.Thread(target=r.turn, daemon=True)
        t.start()
        t.join(WAIT)  # no timers and no registrations: only the wake-up can end it
        assert not t.is_alive()
    finally:
        r.close()


def test_the_after_fork_hook_forgets_the_parents_reactor() -> None:
    parent = Reactor(name="test-reactor-edges-parent")
    try:
        with using_reactor(parent):
            assert default_reactor() is parent
            reactor_mod._after_fork_in_child()
            fresh = default_reactor()  # made on first use, as in a forked child
            try:
                assert fresh is not parent and isinstance(fresh, Reactor)
            finally:
                fresh.close()
        assert default_reactor() is not fresh
    finally:
        parent.close()


@pytest.mark.skipif(not hasattr(os, "eventfd"), reason="the pipe fallback is used")
def test_the_wakeup_descriptor_is_one_eventfd() -> None:
    wakeup = reactor_mod._WakeupFd()
    try:
        assert wakeup.read_fd == wakeup._write_fd
        wakeup.notify()
        wakeup.notify()  # a second notify before the drain is not an error
        wakeup.drain()
        wakeup.drain()  # nothing pending: not an error either
    finally:
        wakeup.close()


@guarded()
def test_the_driver_hands_a_turns_wakes_to_each_pool_in_one_step() -> None:
    """Wakes made while the driver dispatches a turn are held in ``tls.batch`` and
    handed over per pool by ``_flush`` (one push, one wake decision): none is lost,
    none runs twice, and a pool that stopped closes what it is handed."""
    reactor = Reactor(name="test-reactor-batch")
    gates = [Gate() for _ in range(50)]
    results: list[int] = []
    lock = threading.Lock()

    async def waiter(i: int) -> None:
        await gates[i]
        with lock:
            results.append(i)

    try:
        config = zuki.ExecutorConfig(workers=2, park_timeout=None)
        with zuki.WorkStealingExecutor(config=config) as ex:
            handles = [ex.spawn(waiter(i)) for i in range(50)]
            for gate in gates:
                assert gate.polled.wait(WAIT)
            done = threading.Event()

            def driver_turn() -> None:  # what the driver thread does around a dispatch
                batch: dict[object, list[object]] = {}
                tls.batch = batch
                for gate in gates:
                    gate.open()
                held = sum(len(tasks) for tasks in batch.values())
                ran_early = len(results)
                reactor._flush(batch)
                assert tls.batch is None
                assert (held, ran_early) == (50, 0), (held, ran_early)
                done.set()

            t = threading.Thread(target=driver_turn)
            t.start()
            t.join(WAIT)
            assert done.is_set(), "the batched turn failed"
            for h in handles:
                h.result(timeout=WAIT)
        assert sorted(results) == list(range(50))
    finally:
        reactor.close()
