"""A TCP echo server on zuki: one task per connection, on a work-stealing executor.

    python examples/echo_server.py [--host 127.0.0.1] [--port 7007] [--workers 2]
    python examples/echo_server.py --short       # serve a few of its own connections, exit

It prints the address it listens on, then a line whenever the count of connections
changed in the last second, and runs until Ctrl-C. Try it with any TCP client::

    printf 'hello\\n' | nc -q1 127.0.0.1 7007

``--short`` is the self-test the test suite runs: the server connects to itself a few
times, checks every echo, and exits 0.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

import zuki
from zuki.runtime.net import TcpListener, TcpStream
from zuki.runtime.timers import sleep


class Stats:
    """Connection counters shared by the connection tasks (any worker thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = 0
        self.open = 0
        self.bytes = 0

    def opened(self) -> None:
        with self._lock:
            self.total += 1
            self.open += 1

    def closed(self, nbytes: int) -> None:
        with self._lock:
            self.open -= 1
            self.bytes += nbytes


async def handle(stream: TcpStream, stats: Stats) -> None:
    """Echo everything back until the client closes its side; then close ours."""
    stats.opened()
    echoed = 0
    try:
        async with stream:
            while data := await stream.read(65536):
                await stream.write(data)
                echoed += len(data)
    except ConnectionError:
        pass  # the client reset the connection: nothing to answer
    finally:
        stats.closed(echoed)


async def serve(listener: TcpListener, stats: Stats, limit: int | None = None) -> None:
    """Accept connections (``limit`` of them, or forever), one task each."""
    tasks = []
    while limit is None or len(tasks) < limit:
        stream, _peer = await listener.accept()
        tasks.append(zuki.spawn(handle(stream, stats)))
        if limit is None:
            tasks = [t for t in tasks if not t.done()]
    for t in tasks:
        await t


async def report(stats: Stats) -> None:
    shown = -1
    while True:
        await sleep(1.0)
        if stats.total != shown:
            shown = stats.total
            print(
                f"connections: {stats.total} total, {stats.open} open, {stats.bytes} bytes echoed",
                flush=True,
            )


async def main(host: str, port: int) -> None:
    stats = Stats()
    async with TcpListener.bind(host, port) as listener:
        address = listener.local_address
        print(f"echo server listening on {address[0]}:{address[1]} (Ctrl-C stops it)")
        sys.stdout.flush()
        reporter = zuki.spawn(report(stats))
        try:
            await serve(listener, stats)
        finally:
            reporter.cancel()


async def self_test(connections: int = 5, messages: int = 20) -> Stats:
    """Serve ``connections`` connections made by this process, and check every echo."""
    stats = Stats()
    async with TcpListener.bind("127.0.0.1", 0) as listener:
        host, port = listener.local_address[:2]
        print(f"echo server listening on {host}:{port} (--short: {connections} connections)")
        server = zuki.spawn(serve(listener, stats, limit=connections))

        async def client(i: int) -> None:
            async with await TcpStream.connect(host, port) as stream:
                for j in range(messages):
                    msg = f"client {i} message {j}\n".encode()
                    await stream.write(msg)
                    echo = await stream.read_exact(len(msg))
                    assert echo == msg, f"sent {msg!r}, got {echo!r}"
                stream.shutdown_write()
                assert await stream.read(1) == b""

        clients = [zuki.spawn(client(i)) for i in range(connections)]
        for c in clients:
            await c
        await server
    return stats


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="zuki TCP echo server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7007)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--short", action="store_true", help="self-test and exit")
    return parser.parse_args(argv)


def run(argv: list[str]) -> int:
    args = parse(argv)
    if args.short:
        start = time.perf_counter()
        stats = zuki.run(self_test(), workers=args.workers)
        print(
            f"served {stats.total} connections, {stats.bytes} bytes echoed, "
            f"{time.perf_counter() - start:.2f} s: OK"
        )
        return 0
    try:
        zuki.run(main(args.host, args.port), workers=args.workers)
    except KeyboardInterrupt:
        print("\nstopped")
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
