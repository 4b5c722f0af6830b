"""Stress for zuki.net: 10,000 concurrent connections and 10,000 connect/disconnect cycles.

    python stress/net.py [--connections 10000] [--cycles 10000] [--messages 3]
                         [--workers 2] [--backend epoll|selectors] [--watchdog 600]

The server is zuki (a ``TcpListener`` and one echo task per connection, on a
``WorkStealingExecutor``); the client is a separate process running asyncio, so the
two sides share neither a runtime nor a scheduler. Two scenarios:

``concurrent``
    the client opens ``--connections`` connections and keeps all of them open at once
    (it waits until every one is established), then every connection sends
    ``--messages`` messages, checks each echo byte for byte, and closes.
``churn``
    ``--cycles`` connections one after another (100 in flight): connect, one message,
    check the echo, close.

Invariants checked, per scenario: the server accepted exactly as many connections as
the client made; every byte came back (both sides count); the client process exits 0;
afterwards the reactor holds only the listener's registration, no task waits on a
socket, and the server process has as many file descriptors as before. A watchdog dumps
every thread's stack and exits 1 if a scenario hangs. The file descriptor limit
(``RLIMIT_NOFILE``) is raised to what the run needs in both processes; if the hard limit
is too low the scenario is skipped with the reason printed (exit status 0).
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import zuki
from zuki.runtime.net import TcpListener, TcpStream
from zuki.runtime.reactor import Reactor, default_reactor, using_reactor
from zuki.runtime.timers import sleep

LOOPBACK = "127.0.0.1"
CHURN_IN_FLIGHT = 100


def raise_fd_limit(needed: int) -> str | None:
    """Raise the soft ``RLIMIT_NOFILE`` to ``needed``; the reason it cannot, or ``None``."""
    try:
        import resource
    except ImportError:  # pragma: no cover - non-POSIX
        return "no resource module"
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return None
    if hard != resource.RLIM_INFINITY and hard < needed:
        return f"needs {needed} file descriptors, the hard limit RLIMIT_NOFILE is {hard}"
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    return None


def open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:  # pragma: no cover - no procfs
        return -1


# --------------------------------------------------------------------------------------
# the client process (asyncio)
# --------------------------------------------------------------------------------------


def message(conn: int, i: int) -> bytes:
    return f"{conn}:{i}:".encode() + bytes([conn % 251]) * (16 + i % 48) + b"\n"


async def _client_concurrent(port: int, n: int, messages: int) -> dict[str, int]:
    opened = asyncio.Event()
    connected = 0
    sent = 0

    async def one(conn: int) -> None:
        nonlocal connected, sent
        reader, writer = await asyncio.open_connection(LOOPBACK, port)
        connected += 1
        if connected == n:
            opened.set()
        await opened.wait()  # every connection is open at the same time
        for i in range(messages):
            msg = message(conn, i)
            writer.write(msg)
            await writer.drain()
            echo = await reader.readexactly(len(msg))
            if echo != msg:
                raise AssertionError(f"connection {conn}: sent {msg!r}, got back {echo!r}")
            sent += len(msg)
        writer.close()
        await writer.wait_closed()

    await asyncio.gather(*(one(c) for c in range(n)))
    return {"connections": n, "bytes": sent}


async def _client_churn(port: int, cycles: int) -> dict[str, int]:
    sent = 0
    next_conn = 0

    async def worker() -> None:
        nonlocal sent, next_conn
        while next_conn < cycles:
            conn = next_conn
            next_conn += 1
            reader, writer = await asyncio.open_connection(LOOPBACK, port)
            msg = message(conn, 0)
            writer.write(msg)
            await writer.drain()
            echo = await reader.readexactly(len(msg))
            if echo != msg:
                raise AssertionError(f"cycle {conn}: sent {msg!r}, got back {echo!r}")
            sent += len(msg)
            writer.close()
            await writer.wait_closed()

    await asyncio.gather(*(worker() for _ in range(min(CHURN_IN_FLIGHT, cycles))))
    return {"connections": cycles, "bytes": sent}


def client_main(args: argparse.Namespace) -> int:
    problem = raise_fd_limit(args.connections + 100)
    if problem:
        print(json.dumps({"error": problem}))
        return 1
    if args.client == "concurrent":
        result = asyncio.run(_client_concurrent(args.port, args.connections, args.messages))
    else:
        result = asyncio.run(_client_churn(args.port, args.connections))
    print(json.dumps(result))
    return 0


# --------------------------------------------------------------------------------------
# the server (zuki) and the scenarios
# --------------------------------------------------------------------------------------


async def _echo(stream: TcpStream, counts: dict[str, int]) -> None:
    async with stream:
        while data := await stream.read(65536):
            await stream.write(data)
            counts["bytes"] += len(data)  # one task per stream: no two writers per key


async def _wait_process(proc: subprocess.Popen[str], limit: float) -> int:
    deadline = time.monotonic() + limit
    while proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"the client process did not finish in {limit:.0f} s")
        await sleep(0.01)
    return proc.returncode


async def _serve(mode: str, n: int, messages: int, limit: float) -> dict[str, Any]:
    listener = TcpListener.bind(LOOPBACK, 0, backlog=4096)
    port = listener.local_address[1]
    cmd = [sys.executable, __file__, "--client", mode, "--port", str(port)]
    cmd += ["--connections", str(n), "--messages", str(messages)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    per_conn: list[dict[str, int]] = []
    handlers = []
    start = time.monotonic()
    try:
        for _ in range(n):
            stream, _address = await listener.accept()
            counts = {"bytes": 0}
            per_conn.append(counts)
            handlers.append(zuki.spawn(_echo(stream, counts)))
        for h in handlers:
            await h
        status = await _wait_process(proc, limit)
    finally:
        listener.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    seconds = time.monotonic() - start
    out, _ = proc.communicate()
    if status != 0:
        raise AssertionError(f"the client process failed (status {status}): {out.strip()}")
    client = json.loads(out.strip().splitlines()[-1])
    server_bytes = sum(c["bytes"] for c in per_conn)
    if client["connections"] != n or len(per_conn) != n:
        raise AssertionError(f"client made {client['connections']}, server accepted {n}")
    if client["bytes"] != server_bytes:
        raise AssertionError(f"client sent {client['bytes']} bytes, server echoed {server_bytes}")
    return {"connections": n, "bytes": server_bytes, "seconds": seconds}


def run_scenario(
    mode: str, n: int, *, messages: int, workers: int, backend: str, limit: float
) -> dict[str, Any]:
    """Run one scenario with a fresh reactor; returns its numbers or raises AssertionError."""
    problem = raise_fd_limit(n + 200)
    if problem:
        return {"skipped": problem}
    fds_before = open_fds()
    reactor = Reactor(backend=backend, name=f"stress-net-{backend}")
    try:
        with using_reactor(reactor):
            config = zuki.ExecutorConfig(workers=workers, park_timeout=None)
            with zuki.WorkStealingExecutor(config=config) as ex:
                result = ex.block_on(_serve(mode, n, messages, limit))
        deadline = time.monotonic() + 5.0
        while reactor.registrations() and time.monotonic() < deadline:
            time.sleep(0.01)
        if reactor.registrations() or reactor.waiting():
            raise AssertionError(
                f"{reactor.registrations()} registrations and {reactor.waiting()} waiting "
                "wakers left in the reactor"
            )
    finally:
        reactor.close()
    fds_after = open_fds()
    if fds_after > fds_before:
        raise AssertionError(f"file descriptors: {fds_before} before, {fds_after} after")
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--cycles", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backend", choices=["epoll", "selectors"], default=None)
    parser.add_argument("--watchdog", type=float, default=600.0)
    parser.add_argument("--only", choices=["concurrent", "churn"], default=None)
    parser.add_argument("--client", choices=["concurrent", "churn"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        return client_main(args)
    backend = args.backend or default_reactor().backend
    faulthandler.dump_traceback_later(args.watchdog, exit=True)
    plan = [("concurrent", args.connections), ("churn", args.cycles)]
    status = 0
    for mode, n in plan:
        if args.only and mode != args.only:
            continue
        try:
            result = run_scenario(
                mode,
                n,
                messages=args.messages,
                workers=args.workers,
                backend=backend,
                limit=args.watchdog,
            )
        except AssertionError as exc:
            print(f"stress/net.py {mode}: FAILED: {exc}", flush=True)
            status = 2
            continue
        if "skipped" in result:
            print(f"stress/net.py {mode}: SKIPPED: {result['skipped']}", flush=True)
            continue
        print(
            f"stress/net.py {mode}: OK  {result['connections']:,} connections, "
            f"{result['bytes']:,} bytes echoed, {result['seconds']:.1f} s "
            f"({backend}, {args.workers} workers)",
            flush=True,
        )
    faulthandler.cancel_dump_traceback_later()
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
