"""I/O and timer benchmarks: zuki.net and the timer wheel against asyncio, same interpreter.

    python perf/bench_io.py --quick [--workers 2] [--full-size]   # plain timing + table
    python perf/bench_io.py --fast [-o perf/results/io.json]      # pyperf (``make bench``)

Cases, with the targets of the timers/reactor/TCP issue:

1. *echo*: 1,000 connections each sending small messages (32 bytes, one outstanding per
   connection) to an echo server: zuki (``TcpListener``/``TcpStream``, one task per
   connection, 2 workers) against an ``asyncio`` streams server. The client is the same
   for both: a separate process driving non-blocking sockets with a bare ``epoll`` loop
   (a few microseconds per message, so it measures the server). Messages per second and
   the p50/p99 round-trip time. Target: at least 1.0x asyncio's throughput, p99 no worse.
2. *http*: ``examples/http_hello.py`` against the same server on asyncio streams, under
   ``wrk -c 100 -t 2`` (Debian's ``wrk``; the case is skipped, and says so, without it).
   Target: requests/s at least 1.0x.
3. *timers*: 1,000,000 timers inserted and then cancelled: ``TimerWheel`` (the wheel
   ``zuki.sleep`` uses, locking included) against ``loop.call_later`` + ``cancel`` (and the
   loop iteration that sweeps the cancelled handles out of its heap). Target: at least as
   fast.
4. *lateness*: 10,000 tasks asleep (deadlines spread over 0.5-1.5 s) while busy tasks keep
   every worker occupied (pure-Python chunks of ~100 us, ``yield_now`` between chunks):
   how late each sleeper resumes after its deadline, p50/p99. zuki (2 workers) next to
   asyncio doing the same. Target (the seeds' tolerance): p99 under 1 ms.

Every server runs in a fresh process of its own (``--serve KIND``), so the two never share
a process; both run on this interpreter. Times on a shared machine are noise: the ratios
from one run are what to read, and the quick table prints the machine's load next to them.
In pyperf mode each case is a timing (seconds per message, per request, per timer, or the
p99 itself), so ``perf/report.py`` turns ``RATIOS`` into the ratio table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import zuki
from zuki.runtime.net import TcpListener, TcpStream
from zuki.runtime.timer_wheel import TimerWheel
from zuki.runtime.timers import sleep_until

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GIL_ENABLED = getattr(sys, "_is_gil_enabled", lambda: True)()
LOOPBACK = "127.0.0.1"
MESSAGE = b"0123456789abcdef0123456789abcde\n"  # 32 bytes
# Seconds between spawning the sleepers and the first deadline; a sleeper that starts
# after its deadline anyway is left out of the lateness figures (and counted).
HEAD_START = 0.5

# (zuki case, reference case, target, source, kind): see perf/report.py
RATIOS: list[tuple[str, str, float | None, str, str]] = [
    ("echo: zuki 2 workers", "echo: asyncio", 1.0, "issue 5: >= 1.0x throughput", "slowdown"),
    ("echo p99 rtt: zuki 2 workers", "echo p99 rtt: asyncio", 1.0, "issue 5: no worse", "slowdown"),
    ("http wrk: zuki http_hello", "http wrk: asyncio streams", 1.0, "issue 5", "slowdown"),
    (
        "timers insert+cancel: TimerWheel",
        "timers insert+cancel: asyncio",
        1.0,
        "issue 5",
        "slowdown",
    ),
    (
        "timer lateness p99: zuki",
        "timer lateness p99: asyncio",
        1e-3,
        "issue 5 (the seeds' tolerance)",
        "max",
    ),
]


class Sizes(NamedTuple):
    connections: int
    messages: int  # per connection
    timers: int
    sleepers: int
    wrk_seconds: int


QUICK = Sizes(connections=1000, messages=50, timers=1_000_000, sleepers=10_000, wrk_seconds=5)
PYPERF = Sizes(connections=1000, messages=20, timers=200_000, sleepers=10_000, wrk_seconds=3)
FULL = Sizes(connections=1000, messages=1000, timers=1_000_000, sleepers=10_000, wrk_seconds=10)


def raise_fd_limit(needed: int) -> None:
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < needed:
            cap = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (cap, hard))


# --------------------------------------------------------------------------------------
# servers (each in its own process: ``--serve KIND``)
# --------------------------------------------------------------------------------------


async def _zuki_echo(stream: TcpStream) -> None:
    async with stream:
        with contextlib.suppress(ConnectionError):
            while data := await stream.read(65536):
                await stream.write(data)


async def _zuki_echo_server() -> None:
    async with TcpListener.bind(LOOPBACK, 0, backlog=4096) as listener:
        print(f"PORT {listener.local_address[1]}", flush=True)
        while True:
            stream, _ = await listener.accept()
            zuki.spawn(_zuki_echo(stream))


async def _asyncio_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


async def _asyncio_echo_server() -> None:
    server = await asyncio.start_server(_asyncio_echo, LOOPBACK, 0, backlog=4096)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


_HTTP_BODY = b"Hello, world! (served by zuki)\n"


async def _asyncio_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The same protocol subset as examples/http_hello.py, on asyncio streams."""
    sys.path.insert(0, str(ROOT / "examples"))
    from http_hello import BadRequest, answer, parse_head, response

    buf = b""
    try:
        while True:
            end = buf.find(b"\r\n\r\n")
            while end < 0:
                data = await reader.read(65536)
                if not data:
                    return
                buf += data
                end = buf.find(b"\r\n\r\n")
            method, path, keep_alive, length = parse_head(buf[:end])
            buf = buf[end + 4 :]
            if length > len(buf):
                buf += await reader.readexactly(length - len(buf))
            buf = buf[length:]
            out = answer(method, path, keep_alive)
            while keep_alive and b"\r\n\r\n" in buf:
                end = buf.find(b"\r\n\r\n")
                method, path, keep_alive, length = parse_head(buf[:end])
                if length > len(buf) - end - 4:
                    break
                buf = buf[end + 4 + length :]
                out += answer(method, path, keep_alive)
            writer.write(out)
            await writer.drain()
            if not keep_alive:
                return
    except BadRequest as exc:
        writer.write(response("400 Bad Request", f"{exc}\n".encode(), keep_alive=False))
    except (ConnectionError, EOFError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def _asyncio_http_server() -> None:
    server = await asyncio.start_server(_asyncio_http, LOOPBACK, 0, backlog=4096)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def serve(kind: str, workers: int) -> int:
    raise_fd_limit(10_000)
    if kind == "echo-zuki":
        zuki.run(_zuki_echo_server(), workers=workers)
    elif kind == "echo-asyncio":
        asyncio.run(_asyncio_echo_server())
    elif kind == "http-asyncio":
        asyncio.run(_asyncio_http_server())
    else:
        raise SystemExit(f"unknown server {kind!r}")
    return 0


class Server:
    """A server process; ``port`` once it listens. Stopped with SIGTERM on exit."""

    def __init__(self, cmd: list[str]) -> None:
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        match = re.search(r"(?:PORT |:)(\d+)", line)
        if not match:
            self.stop()
            raise RuntimeError(f"server {cmd} did not report a port: {line!r}")
        self.port = int(match.group(1))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def server_cmd(kind: str, workers: int) -> list[str]:
    if kind == "http-zuki":
        script = str(ROOT / "examples" / "http_hello.py")
        return [sys.executable, script, "--port", "0", "--workers", str(workers)]
    return [sys.executable, __file__, "--serve", kind, "--workers", str(workers)]


# --------------------------------------------------------------------------------------
# the echo client (its own process: ``--echo-client PORT CONNECTIONS MESSAGES``)
# --------------------------------------------------------------------------------------


def echo_client(port: int, connections: int, messages: int) -> dict[str, Any]:
    """Drive ``connections`` sockets with a bare epoll loop; one message in flight each."""
    raise_fd_limit(connections + 100)
    socks = []
    for _ in range(connections):
        s = socket.create_connection((LOOPBACK, port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        socks.append(s)
    ep = select.epoll()
    by_fd = {s.fileno(): s for s in socks}
    for fd in by_fd:
        ep.register(fd, select.EPOLLIN)
    size = len(MESSAGE)
    got = dict.fromkeys(by_fd, 0)
    left = dict.fromkeys(by_fd, messages)
    sent_at: dict[int, float] = {}
    rtts: list[float] = []
    clock = time.perf_counter
    start = clock()
    for fd, s in by_fd.items():
        sent_at[fd] = clock()
        s.send(MESSAGE)
    active = len(by_fd)
    while active:
        for fd, _ev in ep.poll(30.0):
            s = by_fd[fd]
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            if not data:
                raise RuntimeError("the server closed a connection")
            got[fd] += len(data)
            if got[fd] < size:
                continue
            if got[fd] > size:
                raise RuntimeError(f"echo of {got[fd]} bytes for a {size}-byte message")
            now = clock()
            rtts.append(now - sent_at[fd])
            got[fd] = 0
            left[fd] -= 1
            if left[fd]:
                sent_at[fd] = now
                s.send(MESSAGE)
            else:
                active -= 1
    elapsed = clock() - start
    for s in socks:
        s.close()
    rtts.sort()
    return {
        "messages": len(rtts),
        "seconds": elapsed,
        "p50": rtts[len(rtts) // 2],
        "p99": rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))],
    }


def run_echo(kind: str, connections: int, messages: int, workers: int) -> dict[str, Any]:
    """One echo run: start the server, run the client process once, stop the server."""
    with Server(server_cmd(kind, workers)) as server:
        cmd = [sys.executable, __file__, "--echo-client", str(server.port)]
        cmd += [str(connections), str(messages)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=1800)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# --------------------------------------------------------------------------------------
# http under wrk
# --------------------------------------------------------------------------------------


def run_wrk(kind: str, seconds: int, workers: int) -> float | None:
    """Requests per second of one server under ``wrk -c 100 -t 2``; ``None`` without wrk."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    with Server(server_cmd(kind, workers)) as server:
        url = f"http://{LOOPBACK}:{server.port}/"
        cmd = [wrk, "-c", "100", "-t", "2", "-d", f"{seconds}s", url]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=seconds + 60)
    match = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    if not match:
        raise RuntimeError(f"cannot read wrk's output: {out.stdout}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out.stdout)
    if errors:
        raise RuntimeError(f"{kind}: {errors.group(1)} error responses under wrk")
    return float(match.group(1))


# --------------------------------------------------------------------------------------
# timers
# --------------------------------------------------------------------------------------


class _NullWaker:
    def wake(self) -> None:
        pass


def timers_wheel(n: int) -> float:
    wheel = TimerWheel()
    waker = _NullWaker()
    base = time.monotonic() + 60.0
    insert, cancel = wheel.insert, wheel.cancel
    start = time.perf_counter()
    handles = [insert(base + i * 1e-6, waker) for i in range(n)]
    for h in handles:
        cancel(h)
    elapsed = time.perf_counter() - start
    assert len(wheel) == 0
    return elapsed


def timers_asyncio(n: int) -> float:
    loop = asyncio.new_event_loop()
    try:

        def noop() -> None:
            pass

        call_later = loop.call_later
        start = time.perf_counter()
        handles = [call_later(60.0 + i * 1e-6, noop) for i in range(n)]
        for h in handles:
            h.cancel()
        loop.run_until_complete(asyncio.sleep(0))  # sweeps the cancelled handles
        elapsed = time.perf_counter() - start
        assert not loop._scheduled  # type: ignore[attr-defined]
    finally:
        loop.close()
    return elapsed


def _busy_chunk() -> None:
    end = time.perf_counter() + 0.0001
    while time.perf_counter() < end:
        pass


def lateness_zuki(sleepers: int, workers: int) -> list[float]:
    late: list[float] = []
    lock = threading.Lock()
    done = threading.Event()

    async def sleeper(deadline: float) -> None:
        if time.monotonic() >= deadline:
            return  # started after its deadline: says nothing about timers
        await sleep_until(deadline)
        lateness = time.monotonic() - deadline
        with lock:
            late.append(lateness)

    async def busy() -> None:
        while not done.is_set():
            _busy_chunk()
            await zuki.yield_now()

    async def main() -> None:
        rng = random.Random(5)
        base = time.monotonic() + HEAD_START
        busy_tasks = [zuki.spawn(busy()) for _ in range(workers)]
        tasks = [zuki.spawn(sleeper(base + rng.random())) for _ in range(sleepers)]
        for t in tasks:
            await t
        done.set()
        for b in busy_tasks:
            await b

    zuki.run(main(), workers=workers)
    return late


def lateness_asyncio(sleepers: int) -> list[float]:
    late: list[float] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        done = asyncio.Event()

        async def sleeper(deadline: float) -> None:
            if loop.time() >= deadline:
                return  # started after its deadline: says nothing about timers
            await asyncio.sleep(deadline - loop.time())
            late.append(loop.time() - deadline)

        async def busy() -> None:
            while not done.is_set():
                _busy_chunk()
                await asyncio.sleep(0)

        rng = random.Random(5)
        base = loop.time() + HEAD_START
        busy_task = asyncio.ensure_future(busy())
        await asyncio.gather(*(sleeper(base + rng.random()) for _ in range(sleepers)))
        done.set()
        await busy_task

    asyncio.run(main())
    return late


def driver_wakeup(timers: int) -> list[float]:
    """How late the reactor's thread calls a timer's waker (no executor involved)."""
    from zuki.runtime.reactor import Reactor

    late: list[float] = []
    all_fired = threading.Event()

    class Stamp:
        __slots__ = ("deadline",)

        def __init__(self, deadline: float) -> None:
            self.deadline = deadline

        def wake(self) -> None:
            late.append(time.monotonic() - self.deadline)
            if len(late) == timers:
                all_fired.set()

    reactor = Reactor(name="bench-reactor")
    try:
        rng = random.Random(3)
        base = time.monotonic() + 0.1
        for _ in range(timers):
            deadline = base + rng.random()
            reactor.add_timer(deadline, Stamp(deadline))
        all_fired.wait(60)
    finally:
        reactor.close()
    return late


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))]


# --------------------------------------------------------------------------------------
# --quick
# --------------------------------------------------------------------------------------


def header(mode: str, workers: int) -> str:
    build = "GIL build" if GIL_ENABLED else "free-threaded build"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"zuki I/O and timer benchmarks, {mode}: Python {sys.version.split()[0]} ({build}), "
        f"{os.cpu_count()} CPUs, {workers} workers, load average {load:.1f}"
    )


def quick(args: argparse.Namespace) -> int:
    sizes = FULL if args.full_size else QUICK
    w = args.workers
    print(header("--quick", w), flush=True)
    rows: list[tuple[str, str, str, str, str]] = []

    def row(case: str, ours: str, theirs: str, ratio: str, target: str) -> None:
        rows.append((case, ours, theirs, ratio, target))
        print(f"  {case}: zuki {ours} | reference {theirs} | {ratio} | {target}", flush=True)

    n, m = sizes.connections, sizes.messages
    z = run_echo("echo-zuki", n, m, w)
    a = run_echo("echo-asyncio", n, m, w)
    zr, ar = z["messages"] / z["seconds"], a["messages"] / a["seconds"]
    row(
        f"echo, {n} connections x {m} messages",
        f"{zr:,.0f} msg/s",
        f"asyncio {ar:,.0f} msg/s",
        f"{zr / ar:.2f}x throughput",
        ">= 1.0x " + ("met" if zr >= ar else "MISSED"),
    )
    row(
        "echo round trip p50 / p99",
        f"{z['p50'] * 1e3:.2f} / {z['p99'] * 1e3:.2f} ms",
        f"asyncio {a['p50'] * 1e3:.2f} / {a['p99'] * 1e3:.2f} ms",
        f"p99 {z['p99'] / a['p99']:.2f}x",
        "p99 no worse " + ("met" if z["p99"] <= a["p99"] else "MISSED"),
    )
    zq = run_wrk("http-zuki", sizes.wrk_seconds, w)
    aq = run_wrk("http-asyncio", sizes.wrk_seconds, w)
    if zq is None or aq is None:
        row("http_hello under wrk -c 100 -t 2", "-", "-", "not measured: no wrk", ">= 1.0x")
    else:
        row(
            f"http_hello under wrk -c 100 -t 2 -d {sizes.wrk_seconds}s",
            f"{zq:,.0f} req/s",
            f"asyncio streams {aq:,.0f} req/s",
            f"{zq / aq:.2f}x",
            ">= 1.0x " + ("met" if zq >= aq else "MISSED"),
        )
    tw = min(timers_wheel(sizes.timers) for _ in range(3))
    ta = min(timers_asyncio(sizes.timers) for _ in range(3))
    row(
        f"{sizes.timers:,} timers inserted then cancelled",
        f"{tw:.2f} s ({tw / sizes.timers * 1e9:.0f} ns/timer)",
        f"call_later+cancel {ta:.2f} s ({ta / sizes.timers * 1e9:.0f} ns/timer)",
        f"{ta / tw:.2f}x faster",
        ">= 1.0x " + ("met" if tw <= ta else "MISSED"),
    )
    lz = lateness_zuki(sizes.sleepers, w)
    la = lateness_asyncio(sizes.sleepers)
    pz, pa = percentile(lz, 99), percentile(la, 99)
    row(
        f"timer lateness, {sizes.sleepers:,} sleeping tasks, all workers busy",
        f"p50 {percentile(lz, 50) * 1e6:.0f} us, p99 {pz * 1e6:.0f} us, max {max(lz) * 1e3:.1f} ms"
        f" ({sizes.sleepers - len(lz)} started late)",
        f"asyncio p50 {percentile(la, 50) * 1e6:.0f} us, p99 {pa * 1e6:.0f} us"
        f" ({sizes.sleepers - len(la)} started late)",
        f"p99 {pz / pa:.2f}x",
        "p99 < 1 ms " + ("met" if pz < 1e-3 else "MISSED"),
    )
    dw = driver_wakeup(sizes.sleepers)
    row(
        f"reactor thread wake-up: deadline -> waker called, {sizes.sleepers:,} timers",
        f"p50 {percentile(dw, 50) * 1e6:.0f} us, p99 {percentile(dw, 99) * 1e6:.0f} us",
        "-",
        "-",
        "reported",
    )
    print()
    print("| case | zuki | reference | ratio | target |")
    print("|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print(f"\n{header('--quick', w)}")
    return 0


# --------------------------------------------------------------------------------------
# pyperf
# --------------------------------------------------------------------------------------


def pyperf_main(argv: list[str]) -> int:
    import pyperf

    def add_cmdline_args(cmd: list[str], args: Any) -> None:
        cmd.extend(["--workers", str(args.workers)])

    runner = pyperf.Runner(add_cmdline_args=add_cmdline_args)
    runner.argparser.add_argument("--workers", type=int, default=2)
    runner.metadata["gil_enabled"] = str(GIL_ENABLED)
    runner.metadata["wrk"] = shutil.which("wrk") or "not installed: http cases skipped"
    args = runner.parse_args(argv)
    sizes = PYPERF
    w = args.workers
    n, m = sizes.connections, sizes.messages

    def echo_time(kind: str) -> Callable[[int], float]:
        def fn(loops: int) -> float:
            return sum(run_echo(kind, n, m, w)["seconds"] for _ in range(loops))

        return fn

    def echo_p99(kind: str) -> Callable[[int], float]:
        def fn(loops: int) -> float:
            return sum(run_echo(kind, 200, 50, w)["p99"] for _ in range(loops))

        return fn

    def wrk_time(kind: str) -> Callable[[int], float]:
        def fn(loops: int) -> float:
            total = 0.0
            for _ in range(loops):
                rate = run_wrk(kind, sizes.wrk_seconds, w)
                if rate is None:
                    raise RuntimeError("wrk is not installed")
                total += 1.0 / rate
            return total

        return fn

    def timers(fn: Callable[[int], float]) -> Callable[[int], float]:
        return lambda loops: sum(fn(sizes.timers) for _ in range(loops))

    def lateness(fn: Callable[[], list[float]]) -> Callable[[int], float]:
        return lambda loops: sum(percentile(fn(), 99) for _ in range(loops))

    runner.bench_time_func("echo: zuki 2 workers", echo_time("echo-zuki"), inner_loops=n * m)
    runner.bench_time_func("echo: asyncio", echo_time("echo-asyncio"), inner_loops=n * m)
    runner.bench_time_func("echo p99 rtt: zuki 2 workers", echo_p99("echo-zuki"))
    runner.bench_time_func("echo p99 rtt: asyncio", echo_p99("echo-asyncio"))
    if shutil.which("wrk"):
        runner.bench_time_func("http wrk: zuki http_hello", wrk_time("http-zuki"))
        runner.bench_time_func("http wrk: asyncio streams", wrk_time("http-asyncio"))
    runner.bench_time_func(
        "timers insert+cancel: TimerWheel", timers(timers_wheel), inner_loops=sizes.timers
    )
    runner.bench_time_func(
        "timers insert+cancel: asyncio", timers(timers_asyncio), inner_loops=sizes.timers
    )
    runner.bench_time_func(
        "timer lateness p99: zuki", lateness(lambda: lateness_zuki(sizes.sleepers, w))
    )
    runner.bench_time_func(
        "timer lateness p99: asyncio", lateness(lambda: lateness_asyncio(sizes.sleepers))
    )
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["--serve"]:
        workers = int(argv[argv.index("--workers") + 1]) if "--workers" in argv else 2
        return serve(argv[1], workers)
    if argv[:1] == ["--echo-client"]:
        port, connections, messages = (int(x) for x in argv[1:4])
        print(json.dumps(echo_client(port, connections, messages)))
        return 0
    if "--quick" in argv:
        parser = argparse.ArgumentParser(description="zuki I/O benchmarks, quick mode")
        parser.add_argument("--quick", action="store_true")
        parser.add_argument("--workers", type=int, default=2)
        parser.add_argument("--full-size", action="store_true")
        return quick(parser.parse_args(argv))
    return pyperf_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
