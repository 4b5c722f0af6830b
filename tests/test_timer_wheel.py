"""TimerWheel on virtual time: no real sleeps, every clock value chosen by the test."""

from __future__ import annotations

import gc
import math
import random
import threading
import tracemalloc

import pytest

from zuki.runtime.timer_wheel import LEVELS, MAX_TICKS, SLOTS, TICK, TimerHandle, TimerWheel


class VirtualClock:
    """A clock that moves only when the test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class Recorder:
    """A waker that records (name, clock value) when it is woken."""

    def __init__(self, log: list[tuple[object, float]], name: object, clock: VirtualClock) -> None:
        self.log, self.name, self.clock = log, name, clock
        self.wakes = 0

    def wake(self) -> None:
        self.wakes += 1
        self.log.append((self.name, self.clock.now))


class Counter:
    """A waker that only counts (a Recorder's log would grow with every timer)."""

    def __init__(self) -> None:
        self.wakes = 0

    def wake(self) -> None:
        self.wakes += 1


def make() -> tuple[TimerWheel, VirtualClock, list[tuple[object, float]]]:
    clock = VirtualClock()
    return TimerWheel(clock), clock, []


def level_of(handle: TimerHandle) -> int:
    assert handle.pending
    return handle._where // SLOTS


def run_until(wheel: TimerWheel, clock: VirtualClock, end: float, max_steps: int = 10_000) -> int:
    """Advance the clock exactly as a driver would (sleep what poll answers); count polls."""
    steps = 0
    while steps < max_steps:
        steps += 1
        wait = wheel.poll(clock.now)
        if wait is None or clock.now + wait > end:
            clock.now = end
            wheel.poll(clock.now)
            return steps
        clock.now += wait
    raise AssertionError(f"no progress after {max_steps} polls")


def test_empty_wheel_reports_none() -> None:
    wheel, _clock, _ = make()
    assert wheel.poll() is None
    assert len(wheel) == 0


def test_fires_at_the_deadline_and_never_before() -> None:
    wheel, clock, log = make()
    deadline = clock.now + 0.0105
    wheel.insert(deadline, Recorder(log, "a", clock))
    clock.now += 0.010
    wait = wheel.poll()
    assert log == []
    assert wait == pytest.approx(0.0005, abs=1e-9)
    clock.now = math.nextafter(deadline, -math.inf)
    assert wheel.poll() == pytest.approx(0.0, abs=1e-9)
    assert log == []
    clock.now = deadline
    assert wheel.poll() is None
    assert log == [("a", deadline)]
    assert len(wheel) == 0


def test_poll_answers_the_exact_time_to_a_sub_millisecond_deadline() -> None:
    wheel, clock, _ = make()
    wheel.insert(clock.now + 0.0203, Recorder([], "a", clock))
    wait = wheel.poll()
    assert wait is not None
    assert wait == pytest.approx(0.0203, abs=1e-9)


def test_past_deadline_fires_at_the_next_poll() -> None:
    wheel, clock, log = make()
    clock.now += 5.0
    wheel.poll()
    wheel.insert(clock.now - 3.0, Recorder(log, "late", clock))
    assert wheel.poll() is None
    assert [name for name, _ in log] == ["late"]


def test_nan_deadline_is_rejected_and_inf_never_fires() -> None:
    wheel, clock, log = make()
    with pytest.raises(ValueError, match="NaN"):
        wheel.insert(math.nan, Recorder(log, "nan", clock))
    handle = wheel.insert(math.inf, Recorder(log, "inf", clock))
    clock.now += 10 * 365 * 86400.0
    wheel.poll()
    assert log == []
    assert handle.pending
    assert wheel.cancel(handle)
    assert len(wheel) == 0


def test_cascades_through_every_level_and_fires_on_time() -> None:
    wheel, clock, log = make()
    start = clock.now
    # one timer per level: 10 ms, 1 s, 100 s, 2 h, 4 days, 200 days
    delays = [0.010, 1.0, 100.0, 7200.0, 4 * 86400.0, 200 * 86400.0]
    handles = [wheel.insert(start + d, Recorder(log, i, clock)) for i, d in enumerate(delays)]
    assert [level_of(h) for h in handles] == list(range(LEVELS))
    steps = run_until(wheel, clock, start + 201 * 86400.0)
    assert [name for name, _ in log] == list(range(LEVELS))
    for (i, fired_at), d in zip(log, delays, strict=True):
        assert fired_at == start + d, f"timer {i} fired at +{fired_at - start}, set for +{d}"
    # each timer cascades at most LEVELS - 1 times, so the driver wakes O(LEVELS) times each
    assert steps <= LEVELS * (LEVELS + 1) + 2
    assert len(wheel) == 0


def test_a_timer_moves_to_finer_levels_as_its_deadline_nears() -> None:
    wheel, clock, log = make()
    start = clock.now
    handle = wheel.insert(start + 3600.0123, Recorder(log, "h", clock))
    levels = [level_of(handle)]
    while handle.pending:
        wait = wheel.poll()
        assert wait is not None or not handle.pending
        if handle.pending:
            levels.append(level_of(handle))
            assert wait is not None
            clock.now += wait
    assert levels == sorted(levels, reverse=True)
    assert levels[0] == 3 and levels[-1] == 0
    assert log == [("h", start + 3600.0123)]


def test_deadlines_beyond_one_turn_of_the_top_level() -> None:
    wheel, clock, log = make()
    start = clock.now
    turn = MAX_TICKS * TICK
    far = [start + 1.5 * turn, start + 2.7 * turn, start + turn + 0.001]
    for i, d in enumerate(far):
        wheel.insert(d, Recorder(log, i, clock))
    near = wheel.insert(start + 1.0, Recorder(log, "near", clock))
    assert level_of(near) == 1
    run_until(wheel, clock, start + 0.5 * turn, max_steps=100_000)
    assert [name for name, _ in log] == ["near"]
    run_until(wheel, clock, start + 3 * turn, max_steps=100_000)
    assert [name for name, _ in log] == ["near", 2, 0, 1]
    for name, fired_at in log[1:]:
        assert isinstance(name, int)
        assert fired_at == far[name]


def test_many_timers_in_one_slot_fire_together_in_deadline_then_insertion_order() -> None:
    wheel, clock, log = make()
    base = clock.now + 0.5  # deadlines spread over one millisecond: one level-0 slot later
    rng = random.Random(7)
    offsets = [rng.randrange(0, 1000) * 1e-6 for _ in range(10_000)]
    for i, off in enumerate(offsets):
        wheel.insert(base + off, Recorder(log, i, clock))
    assert len(wheel) == 10_000
    clock.now = base + 0.001
    assert wheel.poll() is None
    expected = sorted(range(len(offsets)), key=lambda i: (offsets[i], i))
    assert [name for name, _ in log] == expected


def test_a_slot_fires_only_what_is_due_within_the_current_tick() -> None:
    wheel, clock, log = make()
    clock.now = 1000.0
    wheel.poll()
    a = wheel.insert(1000.0202, Recorder(log, "a", clock))
    b = wheel.insert(1000.0207, Recorder(log, "b", clock))
    assert a._where == b._where  # same 1 ms slot
    clock.now = 1000.0204
    assert wheel.poll() == pytest.approx(0.0003, abs=1e-9)
    assert [n for n, _ in log] == ["a"]
    assert b.pending
    clock.now = 1000.0207
    assert wheel.poll() is None
    assert [n for n, _ in log] == ["a", "b"]


def test_cancel_is_idempotent_and_a_no_op_after_firing() -> None:
    wheel, clock, log = make()
    a = wheel.insert(clock.now + 0.1, Recorder(log, "a", clock))
    b = wheel.insert(clock.now + 0.2, Recorder(log, "b", clock))
    assert wheel.cancel(a) is True
    assert wheel.cancel(a) is False
    assert not a.pending
    assert len(wheel) == 1
    clock.now += 1.0
    wheel.poll()
    assert [n for n, _ in log] == ["b"]
    assert wheel.cancel(b) is False
    assert len(wheel) == 0


def test_cancel_with_a_handle_of_another_wheel_is_refused() -> None:
    one, clock, log = make()
    other = TimerWheel(clock)
    handle = one.insert(clock.now + 1.0, Recorder(log, "x", clock))
    other.insert(clock.now + 1.0, Recorder(log, "y", clock))
    with pytest.raises(ValueError, match="another TimerWheel"):
        other.cancel(handle)
    assert handle.pending


def test_cancelling_the_only_timer_of_a_level_clears_it() -> None:
    wheel, clock, log = make()
    h = wheel.insert(clock.now + 100.0, Recorder(log, "h", clock))
    assert wheel.poll() is not None
    wheel.cancel(h)
    assert wheel.poll() is None
    assert wheel._occupied == [0] * LEVELS


def test_randomized_against_a_sorted_reference() -> None:
    for seed in range(20):
        rng = random.Random(seed)
        wheel, clock, log = make()
        live: dict[int, tuple[float, TimerHandle]] = {}
        fired: dict[int, float] = {}
        for op in range(3000):
            r = rng.random()
            if r < 0.5:
                delay = rng.choice([1e-4, 1e-3, 0.05, 2.0, 300.0, 1e5]) * rng.random()
                handle = wheel.insert(clock.now + delay, Recorder(log, op, clock))
                live[op] = (clock.now + delay, handle)
            elif r < 0.7 and live:
                key = rng.choice(list(live))
                assert wheel.cancel(live.pop(key)[1])
            else:
                clock.now += rng.choice([0.0, 1e-4, 1e-3, 0.03, 1.0, 60.0]) * rng.random()
                before = len(log)
                wheel.poll()
                for name, at in log[before:]:
                    assert isinstance(name, int)
                    deadline, _ = live.pop(name)
                    assert deadline <= at
                    fired[name] = at
                due = [k for k, (d, _) in live.items() if d <= clock.now]
                assert due == [], f"seed {seed}: due but not fired: {due}"
            assert len(wheel) == len(live)
        # ordering within each poll: deadlines ascending
        assert len(fired) == len({n for n, _ in log})


def test_randomized_with_far_deadlines_and_long_jumps() -> None:
    """Timers spread over several turns of the top level; the clock jumps by up to a turn."""
    turn = MAX_TICKS * TICK
    for seed in range(30):
        rng = random.Random(1000 + seed)
        wheel, clock, log = make()
        live: dict[int, tuple[float, TimerHandle]] = {}
        for op in range(400):
            if rng.random() < 0.6:
                delay = rng.choice([0.01, 50.0, 1e5, 1e7, turn, 3 * turn]) * rng.random()
                handle = wheel.insert(clock.now + delay, Recorder(log, op, clock))
                live[op] = (clock.now + delay, handle)
                continue
            clock.now += rng.choice([0.001, 1.0, 1e4, 1e6, 0.3 * turn, turn]) * rng.random()
            before = len(log)
            wheel.poll()
            deadlines = []
            for name, at in log[before:]:
                assert isinstance(name, int)
                deadline, _ = live.pop(name)
                assert deadline <= at
                deadlines.append(deadline)
            assert deadlines == sorted(deadlines)
            late = [k for k, (d, _) in live.items() if d <= clock.now]
            assert late == [], f"seed {seed}: due but not fired: {late}"
        clock.now += 4 * turn
        wheel.poll()
        assert len(wheel) == 0


def test_waker_may_insert_and_cancel_while_being_fired() -> None:
    wheel, clock, log = make()
    victim = wheel.insert(clock.now + 0.050, Recorder(log, "victim", clock))

    class Rearm:
        def wake(self) -> None:
            log.append(("rearm", clock.now))
            wheel.cancel(victim)
            wheel.insert(clock.now + 0.010, Recorder(log, "second", clock))

    wheel.insert(clock.now + 0.005, Rearm())
    run_until(wheel, clock, clock.now + 1.0)
    assert [n for n, _ in log] == ["rearm", "second"]


def test_a_raising_waker_does_not_stop_the_others() -> None:
    wheel, clock, log = make()

    class Boom:
        def wake(self) -> None:
            raise RuntimeError("boom")

    wheel.insert(clock.now + 0.001, Boom())
    wheel.insert(clock.now + 0.002, Recorder(log, "after", clock))
    clock.now += 0.01
    with pytest.raises(RuntimeError, match="boom"):
        wheel.poll()
    assert [n for n, _ in log] == ["after"]
    assert len(wheel) == 0


def test_on_earlier_is_called_once_per_new_earliest_deadline() -> None:
    clock = VirtualClock()
    calls: list[float] = []
    wheel = TimerWheel(clock, on_earlier=lambda: calls.append(clock.now))
    wheel.insert(clock.now + 0.010, Recorder([], "a", clock))
    assert len(calls) == 1  # nothing was reported yet: any insert is "earlier"
    wheel.insert(clock.now + 0.005, Recorder([], "b", clock))
    assert len(calls) == 2
    wheel.insert(clock.now + 0.020, Recorder([], "c", clock))
    assert len(calls) == 2
    assert wheel.poll() == pytest.approx(0.005)
    wheel.insert(clock.now + 0.007, Recorder([], "d", clock))
    assert len(calls) == 2
    wheel.insert(clock.now + 0.003, Recorder([], "e", clock))
    assert len(calls) == 3


def test_timers_created_and_cancelled_by_the_100k_leave_nothing_behind() -> None:
    wheel, clock, _ = make()
    waker = Counter()
    rng = random.Random(1)
    delays = [rng.choice([0.002, 0.5, 30.0, 5000.0]) * rng.random() for _ in range(1000)]

    def churn() -> None:
        for round_ in range(100):
            handles = [wheel.insert(clock.now + d, waker) for d in delays]
            for h in handles[::2]:
                wheel.cancel(h)
            clock.now += 0.0007 * round_  # polls and cascades happen meanwhile
            wheel.poll()
            for h in handles[1::2]:
                wheel.cancel(h)

    # Slot dicts keep the table size they once needed (bounded by the most timers ever
    # pending at once), so measure after warm-up rounds: a leak grows with every round.
    for _ in range(2):
        churn()
    clock.now += 10_000.0
    wheel.poll()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(3):
            churn()
        clock.now += 10_000.0
        wheel.poll()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(wheel) == 0
    assert all(not slot for slot in wheel._slots)
    assert wheel._occupied == [0] * LEVELS
    # 300,000 timers went through while traced: a leak of even 1 byte each would show
    assert grown < 100_000, f"{grown} bytes retained after 300,000 timers"
    assert waker.wakes > 0  # some timers fired during the rounds: both paths were taken


def test_concurrent_inserts_and_cancels_fire_each_survivor_exactly_once() -> None:
    clock = VirtualClock()
    clock_lock = threading.Lock()
    wheel = TimerWheel(clock)
    counts: dict[tuple[int, int], int] = {}
    counts_lock = threading.Lock()
    cancelled: set[tuple[int, int]] = set()

    class Count:
        def __init__(self, key: tuple[int, int]) -> None:
            self.key = key

        def wake(self) -> None:
            with counts_lock:
                counts[self.key] = counts.get(self.key, 0) + 1

    per_thread = 5000
    stop = threading.Event()

    def producer(t: int) -> None:
        rng = random.Random(t)
        for i in range(per_thread):
            handle = wheel.insert(clock.now + rng.random() * 0.2, Count((t, i)))
            if rng.random() < 0.3 and wheel.cancel(handle):
                cancelled.add((t, i))

    def poller() -> None:
        while not stop.is_set():
            with clock_lock:
                clock.now += 0.0003
            wheel.poll()

    threads = [threading.Thread(target=producer, args=(t,)) for t in range(4)]
    driver = threading.Thread(target=poller)
    driver.start()
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    stop.set()
    driver.join(timeout=60)
    clock.now += 1.0
    wheel.poll()
    assert len(wheel) == 0
    assert all(n == 1 for n in counts.values())
    expected = {(t, i) for t in range(4) for i in range(per_thread)} - cancelled
    assert set(counts) == expected
