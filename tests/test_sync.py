"""Tests of zuki.runtime.sync: the parking lot and the primitives built on it.

Every primitive is checked for its contract, under contention from tasks on several
worker threads and from plain threads (with a conservation invariant: no message lost or
duplicated, permits conserved, mutual exclusion checked with a non-atomic counter), for
FIFO hand-off, and for cancellation while waiting, both before and after the hand-off.

Deterministic "cancelled after the hand-off" cases run on one worker: the releasing task
hands the resource over and cancels the receiver in the same step, so the receiver
cannot run in between. Every test runs under a hang guard that dumps all stacks.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from helpers import (
    WAIT,
    guarded,
    hang_dump_fd,  # noqa: F401  (autouse fixture: hang dumps reach the real stderr)
    run,
    until,
)

import zuki
from zuki.runtime.sync import (
    Barrier,
    Channel,
    ChannelClosed,
    ChannelEmpty,
    ChannelFull,
    Event,
    Mutex,
    Oneshot,
    Semaphore,
)

HANG = 60.0


def waiting(primitive: Any) -> int:
    """How many waiters are queued on a primitive's lot (white-box)."""
    lot = primitive._lot if hasattr(primitive, "_lot") else primitive._receivers
    return len(lot)


async def expect_cancelled(handle: zuki.JoinHandle[Any]) -> None:
    with pytest.raises(zuki.Cancelled):
        await handle


def start_threads(n: int, target: Callable[[int], None]) -> list[threading.Thread]:
    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    return threads


def join_threads(threads: list[threading.Thread]) -> None:
    for t in threads:
        t.join(WAIT)
        assert not t.is_alive(), "a plain thread did not finish"


# --------------------------------------------------------------------------------------
# Mutex
# --------------------------------------------------------------------------------------


@guarded(HANG)
def test_mutex_basics() -> None:
    async def main() -> None:
        m = Mutex()
        assert not m.locked()
        await m.lock()
        assert m.locked()
        assert not m.try_lock()
        m.unlock()
        assert m.try_lock()
        m.unlock()
        with pytest.raises(RuntimeError, match="unlocked Mutex"):
            m.unlock()
        async with m:
            assert m.locked()
        assert not m.locked()
        assert "unlocked" in repr(m)

    run(main())


@pytest.mark.stress
@guarded(HANG)
def test_mutex_mutual_exclusion_across_workers_and_threads() -> None:
    tasks, threads, rounds = 8, 2, 300
    box = [0]
    inside = [0]

    def critical() -> None:
        inside[0] += 1
        assert inside[0] == 1, "two holders at once"
        value = box[0]
        time.sleep(0)
        box[0] = value + 1
        inside[0] -= 1

    async def main() -> None:
        m = Mutex()

        async def worker() -> None:
            for _ in range(rounds):
                async with m:
                    critical()
                    await zuki.yield_now()  # hold the lock across a suspension

        def plain(_i: int) -> None:
            for _ in range(rounds):
                assert m.lock_blocking(WAIT)
                try:
                    critical()
                finally:
                    m.unlock()

        pool = start_threads(threads, plain)
        handles = [zuki.spawn(worker()) for _ in range(tasks)]
        for h in handles:
            await h
        join_threads(pool)
        assert not m.locked()
        assert waiting(m) == 0

    run(main())
    assert box[0] == (tasks + threads) * rounds


@guarded(HANG)
def test_mutex_is_fifo() -> None:
    async def main() -> list[int]:
        m = Mutex()
        order: list[int] = []
        await m.lock()

        async def waiter(i: int) -> None:
            async with m:
                order.append(i)

        handles = []
        for i in range(6):
            handles.append(zuki.spawn(waiter(i)))
            await until(lambda: waiting(m) == len(handles), "waiter to park")
        # A latecomer that tries while the queue is non-empty must not barge.
        assert not m.try_lock()
        m.unlock()
        for h in handles:
            await h
        return order

    assert run(main()) == list(range(6))


@guarded(HANG)
def test_mutex_cancel_while_waiting_leaves_no_waiter() -> None:
    async def main() -> None:
        m = Mutex()
        await m.lock()
        h = zuki.spawn(m.lock())
        await until(lambda: waiting(m) == 1)
        h.cancel()
        await expect_cancelled(h)
        assert waiting(m) == 0
        m.unlock()
        assert not m.locked()

    run(main())


@guarded(HANG)
def test_mutex_cancel_after_handoff_passes_the_lock_on() -> None:
    async def main() -> None:
        m = Mutex()
        await m.lock()
        first = zuki.spawn(m.lock())
        await until(lambda: waiting(m) == 1)
        got_it = Event()

        async def second_waiter() -> None:
            await m.lock()
            got_it.set()

        second = zuki.spawn(second_waiter())
        await until(lambda: waiting(m) == 2)
        m.unlock()  # hands the lock to `first`, which has not run yet (one worker)
        first.cancel()
        await expect_cancelled(first)
        await second  # the lock went on to the next waiter
        assert got_it.is_set() and m.locked()
        m.unlock()
        assert not m.locked()

    run(main(), workers=1)


@guarded(HANG)
def test_mutex_cancel_after_handoff_with_no_one_behind_unlocks() -> None:
    async def main() -> None:
        m = Mutex()
        await m.lock()
        h = zuki.spawn(m.lock())
        await until(lambda: waiting(m) == 1)
        m.unlock()
        h.cancel()
        await expect_cancelled(h)
        assert not m.locked()

    run(main(), workers=1)


def test_blocking_calls_refuse_worker_threads() -> None:
    async def main() -> None:
        with pytest.raises(RuntimeError, match="worker thread"):
            Mutex().lock_blocking()
        with pytest.raises(RuntimeError, match="worker thread"):
            Channel[int](1).recv_blocking()
        with pytest.raises(RuntimeError, match="worker thread"):
            Event().wait_blocking(0)

    run(main(), workers=1)


def test_mutex_lock_blocking_timeout() -> None:
    m = Mutex()
    assert m.lock_blocking(0)
    t0 = time.monotonic()
    assert not m.lock_blocking(0.02)
    assert time.monotonic() - t0 >= 0.015
    assert waiting(m) == 0
    m.unlock()
    assert not m.locked()


# --------------------------------------------------------------------------------------
# Semaphore
# --------------------------------------------------------------------------------------


def test_semaphore_basics() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        Semaphore(-1)
    s = Semaphore(2)
    assert s.try_acquire() and s.try_acquire()
    assert not s.try_acquire() and s.locked()
    s.release()
    assert s.value == 1
    s.release()
    s.release()  # not bounded, like asyncio.Semaphore
    assert s.value == 3
    assert "value=3" in repr(s)


@pytest.mark.stress
@guarded(HANG)
def test_semaphore_permits_are_conserved_under_contention() -> None:
    permits, tasks, threads, rounds = 3, 10, 2, 200
    lock = threading.Lock()
    holders = [0]
    peak = [0]

    def enter() -> None:
        with lock:
            holders[0] += 1
            peak[0] = max(peak[0], holders[0])
            assert holders[0] <= permits

    def leave() -> None:
        with lock:
            holders[0] -= 1

    async def main() -> None:
        s = Semaphore(permits)
        rng = random.Random(7)

        async def worker() -> None:
            for _ in range(rounds):
                async with s:
                    enter()
                    await zuki.yield_now()
                    leave()

        async def canceller(victims: list[zuki.JoinHandle[None]]) -> None:
            # Cancel short-lived acquirers at random moments: permits must survive.
            for h in victims:
                for _ in range(rng.randrange(3)):
                    await zuki.yield_now()
                h.cancel()

        def plain(_i: int) -> None:
            for _ in range(rounds):
                assert s.acquire_blocking(WAIT)
                enter()
                leave()
                s.release()

        async def short() -> None:
            async with s:
                enter()
                try:
                    await zuki.yield_now()  # a cancellation may land here, holding
                finally:
                    leave()

        pool = start_threads(threads, plain)
        handles = [zuki.spawn(worker()) for _ in range(tasks)]
        victims = [zuki.spawn(short()) for _ in range(50)]
        await zuki.spawn(canceller(victims))
        for h in handles:
            await h
        for v in victims:
            with contextlib.suppress(zuki.Cancelled):
                await v
        join_threads(pool)
        assert s.value == permits
        assert waiting(s) == 0

    run(main())
    assert holders[0] == 0
    assert 1 <= peak[0] <= permits


@guarded(HANG)
def test_semaphore_cancel_while_waiting_and_after_handoff() -> None:
    async def main() -> None:
        s = Semaphore(1)
        await s.acquire()
        a = zuki.spawn(s.acquire())
        b = zuki.spawn(s.acquire())
        await until(lambda: waiting(s) == 2)
        a.cancel()  # still waiting: leaves the queue
        await expect_cancelled(a)
        assert waiting(s) == 1
        s.release()  # handed to b, which has not run yet
        b.cancel()
        await expect_cancelled(b)
        assert s.value == 1 and waiting(s) == 0

    run(main(), workers=1)


def test_semaphore_acquire_blocking_timeout() -> None:
    s = Semaphore(0)
    assert not s.acquire_blocking(0.01)
    assert waiting(s) == 0
    threading.Timer(0.01, s.release).start()
    assert s.acquire_blocking(WAIT)
    assert s.value == 0


# --------------------------------------------------------------------------------------
# Event
# --------------------------------------------------------------------------------------


@guarded(HANG)
def test_event_releases_every_waiter_set_from_a_plain_thread() -> None:
    async def main() -> None:
        ev = Event()
        released = Counter[str]()
        lock = threading.Lock()

        async def waiter() -> None:
            assert await ev.wait() is True
            with lock:
                released["task"] += 1

        def plain(_i: int) -> None:
            assert ev.wait_blocking(WAIT)
            with lock:
                released["thread"] += 1

        handles = [zuki.spawn(waiter()) for _ in range(12)]
        pool = start_threads(3, plain)
        await until(lambda: waiting(ev) == 15, "all waiters to park")
        threading.Thread(target=ev.set).start()
        for h in handles:
            await h
        join_threads(pool)
        assert released == {"task": 12, "thread": 3}
        assert ev.is_set()
        await ev.wait()  # set: returns at once
        ev.clear()
        assert not ev.is_set()

    run(main())


@guarded(HANG)
def test_event_cancel_while_waiting() -> None:
    async def main() -> None:
        ev = Event()
        h = zuki.spawn(ev.wait())
        await until(lambda: waiting(ev) == 1)
        h.cancel()
        await expect_cancelled(h)
        assert waiting(ev) == 0
        ev.set()

    run(main())


def test_event_wait_blocking_timeout() -> None:
    ev = Event()
    assert not ev.wait_blocking(0.01)
    assert waiting(ev) == 0
    ev.set()
    assert ev.wait_blocking(0)


# --------------------------------------------------------------------------------------
# Barrier
# --------------------------------------------------------------------------------------


@pytest.mark.stress
@guarded(HANG)
def test_barrier_rounds_with_tasks_and_threads() -> None:
    parties_tasks, parties_threads, rounds = 5, 1, 30
    parties = parties_tasks + parties_threads
    log: list[tuple[int, int]] = []  # (round, index)
    lock = threading.Lock()

    async def main() -> None:
        b = Barrier(parties)
        assert b.parties == parties

        async def task() -> None:
            for r in range(rounds):
                index = await b.wait()
                with lock:
                    log.append((r, index))

        def plain(_i: int) -> None:
            for r in range(rounds):
                index = b.wait_blocking(WAIT)
                with lock:
                    log.append((r, index))

        pool = start_threads(parties_threads, plain)
        handles = [zuki.spawn(task()) for _ in range(parties_tasks)]
        for h in handles:
            await h
        join_threads(pool)
        assert b.n_waiting == 0

    run(main())
    by_round: dict[int, list[int]] = {}
    for r, index in log:
        by_round.setdefault(r, []).append(index)
    assert sorted(by_round) == list(range(rounds))
    for indices in by_round.values():
        assert sorted(indices) == list(range(parties))


@guarded(HANG)
def test_barrier_cancel_withdraws_the_arrival() -> None:
    async def main() -> None:
        b = Barrier(2)
        h = zuki.spawn(b.wait())
        await until(lambda: b.n_waiting == 1)
        h.cancel()
        await expect_cancelled(h)
        assert b.n_waiting == 0
        # The round still needs two callers.
        late = zuki.spawn(b.wait())
        await until(lambda: b.n_waiting == 1)
        assert await b.wait() == 1
        assert await late == 0

    run(main())


def test_barrier_of_one_and_bad_parties() -> None:
    with pytest.raises(ValueError, match=">= 1"):
        Barrier(0)

    async def main() -> list[int]:
        b = Barrier(1)
        return [await b.wait() for _ in range(3)]

    assert run(main(), workers=1) == [0, 0, 0]
    b = Barrier(2)
    with pytest.raises(TimeoutError):
        b.wait_blocking(0.01)
    assert b.n_waiting == 0


# --------------------------------------------------------------------------------------
# Channel
# --------------------------------------------------------------------------------------


def test_channel_basics_and_errors() -> None:
    with pytest.raises(ValueError, match=">= 1"):
        Channel[int](0)
    ch = Channel[int](2)
    assert ch.capacity == 2 and len(ch) == 0 and not ch.closed
    with pytest.raises(ChannelEmpty):
        ch.try_recv()
    ch.try_send(1)
    ch.try_send(2)
    with pytest.raises(ChannelFull):
        ch.try_send(3)
    assert len(ch) == 2
    assert ch.try_recv() == 1
    ch.close()
    ch.close()  # idempotent
    with pytest.raises(ChannelClosed):
        ch.try_send(4)
    assert ch.try_recv() == 2  # drained after close
    with pytest.raises(ChannelClosed):
        ch.try_recv()
    assert "closed" in repr(ch)


@guarded(HANG)
def test_channel_close_drains_then_ends_async_for() -> None:
    async def main() -> list[int]:
        ch = Channel[int](4)
        for i in range(3):
            await ch.send(i)
        ch.close()
        with pytest.raises(ChannelClosed):
            await ch.send(9)
        got = [x async for x in ch]
        with pytest.raises(ChannelClosed):
            await ch.recv()
        return got

    assert run(main()) == [0, 1, 2]


@guarded(HANG)
def test_channel_close_wakes_waiting_senders_and_receivers() -> None:
    async def main() -> None:
        full = Channel[int](1)
        await full.send(0)
        sender = zuki.spawn(full.send(1))
        empty = Channel[int](1)
        receiver = zuki.spawn(empty.recv())
        await until(lambda: len(full._senders) == 1 and waiting(empty) == 1)
        full.close()
        empty.close()
        with pytest.raises(ChannelClosed):
            await sender
        with pytest.raises(ChannelClosed):
            await receiver
        assert await full.recv() == 0  # what was buffered is still delivered
        with pytest.raises(ChannelClosed):
            await full.recv()

    run(main())


@pytest.mark.stress
@guarded(HANG)
def test_channel_mpmc_exactly_once_and_fifo_per_producer() -> None:
    producers, consumers, per_producer = 4, 4, 2000

    async def main() -> list[list[tuple[int, int]]]:
        ch = Channel[tuple[int, int]](8)

        async def produce(p: int) -> None:
            for i in range(per_producer):
                await ch.send((p, i))

        async def consume() -> list[tuple[int, int]]:
            return [item async for item in ch]

        recv_handles = [zuki.spawn(consume()) for _ in range(consumers)]
        send_handles = [zuki.spawn(produce(p)) for p in range(producers)]
        for h in send_handles:
            await h
        ch.close()
        return [await h for h in recv_handles]

    per_consumer = run(main())
    everything = [item for got in per_consumer for item in got]
    assert len(everything) == producers * per_producer
    assert set(everything) == {(p, i) for p in range(producers) for i in range(per_producer)}
    for got in per_consumer:  # FIFO: each consumer sees each producer's items in order
        for p in range(producers):
            seq = [i for q, i in got if q == p]
            assert seq == sorted(seq)


@pytest.mark.stress
@guarded(HANG)
def test_channel_between_plain_threads_and_tasks_both_ways() -> None:
    n = 3000

    async def main() -> tuple[list[int], list[int]]:
        to_tasks = Channel[int](4)
        to_threads = Channel[int](4)
        from_threads: list[int] = []
        lock = threading.Lock()

        def thread_producer(k: int) -> None:
            for i in range(k, n, 2):
                to_tasks.send_blocking(i, timeout=WAIT)

        def thread_consumer(_k: int) -> None:
            while True:
                try:
                    item = to_threads.recv_blocking(timeout=WAIT)
                except ChannelClosed:
                    return
                with lock:
                    from_threads.append(item)

        async def task_consumer() -> list[int]:
            return [x async for x in to_tasks]

        async def task_producer(k: int) -> None:
            for i in range(k, n, 2):
                await to_threads.send(i)

        producers = start_threads(2, thread_producer)
        consumers = start_threads(2, thread_consumer)
        got_handles = [zuki.spawn(task_consumer()) for _ in range(2)]
        send_handles = [zuki.spawn(task_producer(k)) for k in range(2)]
        for h in send_handles:
            await h
        to_threads.close()
        join_threads(producers)
        to_tasks.close()
        join_threads(consumers)
        from_tasks = [x for h in got_handles for x in await h]
        return from_tasks, from_threads

    from_tasks, from_threads = run(main())
    assert sorted(from_tasks) == list(range(n))
    assert sorted(from_threads) == list(range(n))


@guarded(HANG)
def test_channel_recv_cancelled_while_waiting_takes_nothing() -> None:
    async def main() -> None:
        ch = Channel[str](1)
        h = zuki.spawn(ch.recv())
        await until(lambda: waiting(ch) == 1)
        h.cancel()
        await expect_cancelled(h)
        assert waiting(ch) == 0
        await ch.send("kept")
        assert await ch.recv() == "kept"

    run(main())


@guarded(HANG)
def test_channel_recv_cancelled_after_handoff_passes_the_claim_on() -> None:
    async def main() -> None:
        ch = Channel[str](1)
        first = zuki.spawn(ch.recv())
        second = zuki.spawn(ch.recv())
        await until(lambda: waiting(ch) == 2)
        ch.try_send("x")  # claim handed to `first`, which has not run (one worker)
        first.cancel()
        await expect_cancelled(first)
        assert await second == "x"
        # With nobody behind, the item stays buffered for the next receiver.
        third = zuki.spawn(ch.recv())
        await until(lambda: waiting(ch) == 1)
        ch.try_send("y")
        third.cancel()
        await expect_cancelled(third)
        assert len(ch) == 1
        assert ch.try_recv() == "y"

    run(main(), workers=1)


@guarded(HANG)
def test_channel_send_cancelled_sends_nothing() -> None:
    async def main() -> None:
        ch = Channel[str](1)
        await ch.send("a")
        waiting_sender = zuki.spawn(ch.send("never"))
        await until(lambda: len(ch._senders) == 1)
        waiting_sender.cancel()
        await expect_cancelled(waiting_sender)
        # Cancelled after a slot was handed to it: the slot goes to the next sender.
        first = zuki.spawn(ch.send("b-cancelled"))
        second = zuki.spawn(ch.send("c"))
        await until(lambda: len(ch._senders) == 2)
        assert ch.try_recv() == "a"  # frees a slot: handed to `first`, not yet run
        first.cancel()
        await expect_cancelled(first)
        await second
        assert ch.try_recv() == "c"
        with pytest.raises(ChannelEmpty):
            ch.try_recv()
        assert ch._reserved == 0 and ch._claimed == 0

    run(main(), workers=1)


@pytest.mark.stress
@guarded(HANG)
def test_channel_conservation_under_random_cancellation() -> None:
    producers, consumers, per_producer = 4, 4, 600

    async def main() -> tuple[Counter[tuple[int, int]], Counter[tuple[int, int]]]:
        ch = Channel[tuple[int, int]](3)
        sent: Counter[tuple[int, int]] = Counter()
        received: Counter[tuple[int, int]] = Counter()
        lock = threading.Lock()
        stop = Event()

        async def send_one(item: tuple[int, int]) -> None:
            await ch.send(item)
            with lock:
                sent[item] += 1

        async def recv_one() -> None:
            item = await ch.recv()
            with lock:
                received[item] += 1

        async def producer(p: int) -> None:
            rng = random.Random(p)
            for i in range(per_producer):
                h = zuki.spawn(send_one((p, i)))
                if rng.random() < 0.3:
                    await zuki.yield_now()
                    h.cancel()
                with contextlib.suppress(zuki.Cancelled):
                    await h

        async def consumer(c: int) -> None:
            rng = random.Random(100 + c)
            while not stop.is_set():
                h = zuki.spawn(recv_one())
                if rng.random() < 0.3:
                    await zuki.yield_now()
                    h.cancel()
                with contextlib.suppress(zuki.Cancelled, ChannelClosed):
                    await h

        consumer_handles = [zuki.spawn(consumer(c)) for c in range(consumers)]
        for h in [zuki.spawn(producer(p)) for p in range(producers)]:
            await h
        ch.close()
        stop.set()
        for h in consumer_handles:
            await h
        while True:  # whatever is still buffered
            try:
                item = ch.try_recv()
            except ChannelClosed:
                break
            received[item] += 1
        return sent, received

    sent, received = run(main())
    assert received == sent  # nothing lost, nothing duplicated, nothing phantom
    assert all(n == 1 for n in sent.values())
    assert len(sent) > producers * per_producer // 2  # most sends did go through


def test_channel_blocking_timeouts_take_and_send_nothing() -> None:
    ch = Channel[int](1)
    with pytest.raises(TimeoutError):
        ch.recv_blocking(timeout=0.01)
    ch.send_blocking(1)
    with pytest.raises(TimeoutError):
        ch.send_blocking(2, timeout=0.01)
    assert ch._reserved == 0 and len(ch._senders) == 0 and len(ch._receivers) == 0
    assert ch.recv_blocking(0) == 1
    with pytest.raises(ChannelEmpty):
        ch.try_recv()


# --------------------------------------------------------------------------------------
# Oneshot
# --------------------------------------------------------------------------------------


@guarded(HANG)
def test_oneshot_send_from_a_plain_thread() -> None:
    async def main() -> list[int]:
        o = Oneshot[int]()
        assert not o.done()
        with pytest.raises(ChannelEmpty):
            o.try_recv()
        handles = [zuki.spawn(o.recv()) for _ in range(3)]
        await until(lambda: waiting(o) == 3)
        threading.Thread(target=o.send, args=(42,)).start()
        values = [await h for h in handles]
        with pytest.raises(RuntimeError, match="already sent"):
            o.send(1)
        o.close()  # no-op once sent
        values.append(await o.recv())
        values.append(o.try_recv())
        return values

    assert run(main()) == [42] * 5


@guarded(HANG)
def test_oneshot_close_cancel_and_blocking() -> None:
    async def main() -> None:
        o = Oneshot[str]()
        h = zuki.spawn(o.recv())
        await until(lambda: waiting(o) == 1)
        h.cancel()
        await expect_cancelled(h)
        assert waiting(o) == 0
        r = zuki.spawn(o.recv())
        await until(lambda: waiting(o) == 1)
        o.close()
        with pytest.raises(ChannelClosed):
            await r
        with pytest.raises(ChannelClosed):
            o.send("late")
        with pytest.raises(ChannelClosed):
            o.try_recv()

    run(main())
    o = Oneshot[str]()
    with pytest.raises(TimeoutError):
        o.recv_blocking(0.01)
    threading.Timer(0.01, o.send, args=("v",)).start()
    assert o.recv_blocking(WAIT) == "v"
