"""zuki.net over loopback: echo round trips, 1,000 connections, and every failure mode.

Every test runs on both reactor backends (edge-triggered epoll, level-triggered
selectors) through a fresh reactor, and ends by checking that the reactor holds no
registration and no waiting waker: a leaked registration fails the test that leaked it.
"""

from __future__ import annotations

import errno
import gc
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import guarded, hang_dump_fd, isolated_reactor  # noqa: F401  (autouse fixture)

import zuki
from zuki.runtime.net import IncompleteReadError, TcpListener, TcpStream
from zuki.runtime.reactor import Reactor
from zuki.runtime.timers import sleep, timeout

LOOPBACK = "127.0.0.1"


@pytest.fixture(params=["epoll", "selectors"])
def reactor(request: pytest.FixtureRequest) -> Iterator[Reactor]:
    with isolated_reactor(request.param, f"test-net-{request.param}") as r:
        yield r


def ensure_fds(needed: int) -> None:
    """Raise RLIMIT_NOFILE's soft limit to ``needed``; skip if the hard limit is lower."""
    try:
        import resource
    except ImportError:  # pragma: no cover - non-POSIX
        pytest.skip("no resource module: cannot check the file descriptor limit")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"needs {needed} file descriptors; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


async def echo(stream: TcpStream) -> int:
    total = 0
    async with stream:
        while data := await stream.read(65536):
            total += len(data)
            await stream.write(data)
    return total


async def serve(listener: TcpListener, connections: int) -> list[int]:
    handles = []
    for _ in range(connections):
        stream, _address = await listener.accept()
        handles.append(zuki.spawn(echo(stream)))
    return [await h for h in handles]


# --------------------------------------------------------------------------------------
# round trips
# --------------------------------------------------------------------------------------


@guarded()
def test_echo_round_trips_of_every_size(reactor: Reactor) -> None:
    sizes = [1, 7, 1000, 65536, 1 << 20, 3 * (1 << 20) + 5]

    async def main() -> None:
        async with TcpListener.bind(LOOPBACK, 0) as listener:
            host, port = listener.local_address
            assert host == LOOPBACK and port > 0
            server = zuki.spawn(serve(listener, 1))
            async with await TcpStream.connect(LOOPBACK, port) as client:
                assert client.peer_address == (LOOPBACK, port)
                assert client.local_address[0] == LOOPBACK
                for size in sizes:
                    payload = bytes(i % 251 for i in range(size))
                    writer = zuki.spawn(client.write(payload))  # big ones fill the buffers
                    assert await client.read_exact(size) == payload
                    await writer
                client.shutdown_write()
                assert await client.read(10) == b""
            assert await server == [sum(sizes)]

    zuki.run(main(), workers=2)


@guarded()
def test_echo_on_a_single_threaded_executor(reactor: Reactor) -> None:
    async def main() -> None:
        listener = TcpListener.bind(LOOPBACK, 0)
        server = zuki.spawn(serve(listener, 3))
        for i in range(3):
            stream = await TcpStream.connect(*listener.local_address)
            for j in range(20):
                msg = f"hello {i} {j}".encode()
                await stream.write(msg)
                assert await stream.read_exact(len(msg)) == msg
            stream.close()
        await server
        listener.close()

    ex = zuki.SingleThreadedExecutor()
    try:
        ex.block_on(main())
    finally:
        ex.shutdown()


@guarded(180)
def test_1000_concurrent_connections(reactor: Reactor) -> None:
    n, rounds = 1000, 5
    ensure_fds(2 * n + 200)

    async def client(port: int, i: int) -> int:
        async with await TcpStream.connect(LOOPBACK, port) as stream:
            for r in range(rounds):
                msg = struct.pack("!II", i, r) * 8
                await stream.write(msg)
                assert await stream.read_exact(len(msg)) == msg
            stream.shutdown_write()
            assert await stream.read(1) == b""
        return i

    async def main() -> list[int]:
        async with TcpListener.bind(LOOPBACK, 0, backlog=n) as listener:
            port = listener.local_address[1]
            server = zuki.spawn(serve(listener, n))
            clients = [zuki.spawn(client(port, i)) for i in range(n)]
            done = [await c for c in clients]
            totals = await server
        assert totals == [rounds * 64] * n
        return done

    assert zuki.run(main(), workers=2) == list(range(n))


@guarded()
def test_connect_by_name_resolves_off_the_worker(reactor: Reactor) -> None:
    async def main() -> None:
        async with TcpListener.bind(LOOPBACK, 0) as listener:
            server = zuki.spawn(serve(listener, 1))
            async with await TcpStream.connect("localhost", listener.local_address[1]) as s:
                await s.write(b"ping")
                assert await s.read_exact(4) == b"ping"
            await server

    zuki.run(main(), workers=2)


@guarded()
def test_ipv6_loopback(reactor: Reactor) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 support in this Python")
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")

    async def main() -> None:
        async with TcpListener.bind("::1", 0) as listener:
            assert listener.local_address[0] == "::1"
            server = zuki.spawn(serve(listener, 1))
            async with await TcpStream.connect("::1", listener.local_address[1]) as s:
                await s.write(b"six")
                assert await s.read_exact(3) == b"six"
                assert "[::1]" in repr(s)
            await server

    zuki.run(main(), workers=2)


@guarded()
def test_nodelay_is_on_by_default_and_settable(reactor: Reactor) -> None:
    async def main() -> None:
        async with TcpListener.bind(LOOPBACK, 0) as listener:
            server = zuki.spawn(listener.accept())
            client = await TcpStream.connect(*listener.local_address)
            accepted, address = await server
            assert address == client.local_address
            assert client.nodelay and accepted.nodelay
            client.nodelay = False
            assert not client.nodelay
            client.close()
            accepted.close()

    zuki.run(main(), workers=2)


# --------------------------------------------------------------------------------------
# failures: the ordinary OSError family, with the address in the message
# --------------------------------------------------------------------------------------


@guarded()
def test_peer_reset_is_a_connection_reset_error_in_the_reading_task(reactor: Reactor) -> None:
    async def main() -> str:
        async with TcpListener.bind(LOOPBACK, 0) as listener:
            accept = zuki.spawn(listener.accept())
            client = await TcpStream.connect(*listener.local_address)
            server_side, _ = await accept
            raw = socket.socket(fileno=client.fileno())  # borrow the fd to set SO_LINGER 0
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raw.detach()
            await client.write(b"x")
            client.close()  # with linger 0: the peer gets a RST
            with pytest.raises(ConnectionResetError) as info:
                while True:
                    if not await server_side.read(100):
                        pytest.fail("a reset connection read as a clean end of stream")
            server_side.close()
            # the worker that ran the failing read goes on running tasks
            await sleep(0.001)
            return str(info.value)

    message = zuki.run(main(), workers=2)
    assert LOOPBACK in message


@guarded()
def test_reading_or_writing_a_closed_stream_is_ebadf(reactor: Reactor) -> None:
    async def main() -> None:
        async with TcpListener.bind(LOOPBACK, 0) as listener:
            accept = zuki.spawn(listener.accept())
            client = await TcpStream.connect(*listener.local_address)
            other, _ = await accept
            client.close()
            client.close()  # idempotent
            for op in (client.read(10), client.read_exact(3), client.write(b"x")):
                with pytest.raises(OSError) as info:
                    await op
                assert info.value.errno == errno.EBADF
                assert "closed" in str(info.value) and LOOPBACK in str(info.value)
            other.close()
        with pytest.raises(OSError) as info:
            await listener.accept()
        assert info.value.errno == errno.EBADF

    zuki.run(main(), workers=2)


@guarded()
def test_write_after_shutdown_write_is_a_broken_pipe(reactor: Reactor) -> None:
    async def main() -> None:
        async with TcpListener.bind(LOOPBACK, 0) as listener:
            accept = zuki.spawn(listener.accept())
            client = await TcpStream.connect(*listener.local_address)
            other, _ = await accept
            await client.write(b"last words")
            client.shutdown_write()
            client.shutdown_write()  # idempotent
            with pytest.raises(BrokenPipeError, match=r"shutdown_write.*127\.0\.0\.1"):
                await client.write(b"more")
            assert await other.read_exact(10) == b"last words"
            assert await other.read(10) == b""
            await other.write(b"reply")  # the other direction still works
            assert await client.read_exact(5) == b"reply"
            client.close()
            other.close()

    zuki.run(main(), workers=2)


def test_binding_a_port_in_use_names_the_address(reactor: Reactor) -> None:
    first = TcpListener.bind(LOOPBACK, 0)
    try:
        port = first.local_address[1]
        with pytest.raises(OSError) as info:
            TcpListener.bind(LOOPBACK, port)
        assert info.value.errno == errno.EADDRINUSE
        assert f"{LOOPBACK}:{port}" in str(info.value)
    finally:
        first.close()


@guarded()
def test_connecting_to_a_closed_port_is_refused_with_the_address(reactor: Reactor) -> None:
    probe = socket.socket()
    probe.bind((LOOPBACK, 0))
    port = probe.getsockname()[1]
    probe.close()  # nobody listens there now

    async def main() -> None:
        with pytest.raises(ConnectionRefusedError, match=rf"{LOOPBACK}:{port}"):
            await TcpStream.connect(LOOPBACK, port)

    zuki.run(main(), workers=2)


@guarded()
def test_read_exact_at_end_of_stream_is_an_incomplete_read(reactor: Reactor) -> None:
    async def main() -> None:
        async with TcpListener.bind(LOOPBACK, 0) as listener:
            accept = zuki.spawn(listener.accept())
            client = await TcpStream.connect(*listener.local_address)
            other, _ = await accept
            await other.write(b"abc")
            other.shutdown_write()
            with pytest.raises(IncompleteReadError) as info:
                await client.read_exact(10)
            assert info.value.partial == b"abc" and info.value.expected == 10
            assert isinstance(info.value, EOFError)
            assert await client.read(0) == b""
            with pytest.raises(ValueError):
                await client.read(-1)
            client.close()
            other.close()

    zuki.run(main(), workers=2)


# --------------------------------------------------------------------------------------
# cancellation, concurrent use, closing under a waiter
# --------------------------------------------------------------------------------------


@guarded()
def test_a_task_cancelled_while_waiting_unregisters_its_interest(reactor: Reactor) -> None:
    async def main() -> None:
        async with TcpListener.bind(LOOPBACK, 0) as listener:
            accept = zuki.spawn(listener.accept())
            client = await TcpStream.connect(*listener.local_address)
            other, _ = await accept
            readers = [zuki.spawn(client.read(10)), zuki.spawn(listener.accept())]
            limit = time.monotonic() + 10
            while reactor.waiting() < 2 and time.monotonic() < limit:
                await sleep(0.001)
            assert reactor.waiting() == 2
            for r in readers:
                r.cancel()
            for r in readers:
                with pytest.raises(zuki.Cancelled):
                    await r
            assert reactor.waiting() == 0
            # a timeout around a read is the same path
            with pytest.raises(TimeoutError):
                async with timeout(0.02):
                    await other.read(10)
            assert reactor.waiting() == 0
            # and the streams still work: nothing was consumed
            await other.write(b"ok")
            assert await client.read_exact(2) == b"ok"
            client.close()
            other.close()

    zuki.run(main(), workers=2)


@guarded()
def test_closing_a_stream_wakes_its_waiting_reader_with_ebadf(reactor: Reactor) -> None:
    async def main() -> None:
        async with TcpListener.bind(LOOPBACK, 0) as listener:
            accept = zuki.spawn(listener.accept())
            client = await TcpStream.connect(*listener.local_address)
            other, _ = await accept
            reader = zuki.spawn(client.read(10))
            while reactor.waiting() < 1:
                await sleep(0.001)
            client.close()
            with pytest.raises(OSError) as info:
                await reader
            assert info.value.errno == errno.EBADF
            other.close()

    zuki.run(main(), workers=2)


@guarded()
def test_two_tasks_reading_one_stream_is_refused(reactor: Reactor) -> None:
    async def main() -> None:
        async with TcpListener.bind(LOOPBACK, 0) as listener:
            accept = zuki.spawn(listener.accept())
            client = await TcpStream.connect(*listener.local_address)
            other, _ = await accept
            first = zuki.spawn(client.read(10))
            while reactor.waiting() < 1:
                await sleep(0.001)
            with pytest.raises(RuntimeError, match="two tasks"):
                await client.read(10)
            await other.write(b"data")
            assert await first == b"data"
            client.close()
            other.close()

    zuki.run(main(), workers=2)


@guarded()
def test_a_stream_dropped_without_close_releases_its_registration(reactor: Reactor) -> None:
    async def main() -> None:
        listener = TcpListener.bind(LOOPBACK, 0)
        accept = zuki.spawn(listener.accept())
        client = await TcpStream.connect(*listener.local_address)
        other, _ = await accept
        assert reactor.registrations() == 3
        del client, other, accept, listener
        gc.collect()

    zuki.run(main(), workers=2)
    # the fixture checks that nothing is left registered


@guarded()
def test_closing_from_a_foreign_thread(reactor: Reactor) -> None:
    async def main() -> None:
        async with TcpListener.bind(LOOPBACK, 0) as listener:
            accept = zuki.spawn(listener.accept())
            client = await TcpStream.connect(*listener.local_address)
            other, _ = await accept
            reader = zuki.spawn(other.read(10))
            while reactor.waiting() < 1:
                await sleep(0.001)
            closer = threading.Thread(target=other.close)
            closer.start()
            with pytest.raises(OSError):
                await reader
            closer.join(10)
            client.close()

    zuki.run(main(), workers=2)


# --------------------------------------------------------------------------------------
# the examples' self-tests
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("script", ["echo_server.py", "http_hello.py"])
def test_example_self_test(script: str) -> None:
    path = Path(__file__).resolve().parents[1] / "examples" / script
    out = subprocess.run(
        [sys.executable, str(path), "--short"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.rstrip().endswith("OK"), out.stdout
