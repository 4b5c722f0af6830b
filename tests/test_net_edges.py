"""Edges of zuki.net: failures that the round-trip tests do not meet.

A name that does not resolve (on the helper thread), a connect that fails at once, a
connection reset while queued for accept, ``read_exact``/``write``/``shutdown_write``
on a connection the peer reset, writes that fill the socket buffer, and small API bits.
Like test_net.py, every test runs on both reactor backends through a fresh reactor and
checks that nothing is left registered.
"""

from __future__ import annotations

import errno
import socket
import struct
import time
from collections.abc import Iterator

import pytest
from helpers import guarded, hang_dump_fd, isolated_reactor  # noqa: F401  (autouse fixture)

import zuki
from zuki.runtime import net
from zuki.runtime.net import TcpListener, TcpStream
from zuki.runtime.reactor import Reactor

LOOPBACK = "127.0.0.1"


@pytest.fixture(params=["epoll", "selectors"])
def reactor(request: pytest.FixtureRequest) -> Iterator[Reactor]:
    with isolated_reactor(request.param, f"test-net-edges-{request.param}") as r:
        yield r


def linger_zero(stream: TcpStream) -> None:
    """Make ``close()`` send a RST (borrow the fd to set ``SO_LINGER`` to 0 s)."""
    raw = socket.socket(fileno=stream.fileno())
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    raw.detach()


async def connected_pair(listener: TcpListener) -> tuple[TcpStream, TcpStream]:
    accept = zuki.spawn(listener.accept())
    client = await TcpStream.connect(*listener.local_address)
    server_side, _ = await accept
    return client, server_side


async def reset_by_peer(listener: TcpListener) -> TcpStream:
    """A client whose peer reset the connection, with the reset already seen by a read."""
    client, server_side = await connected_pair(listener)
    linger_zero(server_side)
    server_side.close()
    with pytest.raises(ConnectionResetError):
        while await client.read(100):
            pass
    return client


# --------------------------------------------------------------------------------------
# errors and their messages
# --------------------------------------------------------------------------------------


def test_error_helper_keeps_the_kind_and_names_the_operation() -> None:
    refused = net._error(ConnectionRefusedError(errno.ECONNREFUSED, "x"), "connecting to h:1")
    assert isinstance(refused, ConnectionRefusedError)
    assert refused.errno == errno.ECONNREFUSED
    assert str(refused).endswith("x: connecting to h:1")
    no_errno = net._error(OSError("odd failure"), "doing something")
    assert type(no_errno) is OSError and no_errno.errno is None
    assert str(no_errno) == "odd failure: doing something"


@guarded()
def test_a_name_that_does_not_resolve_fails_on_the_helper_thread(reactor: Reactor) -> None:
    async def main() -> None:
        # not numeric, so resolved off the worker; the service name is unknown
        with pytest.raises(socket.gaierror):
            await TcpStream.connect("localhost", "no-such-service-zuki")  # type: ignore[arg-type]

    zuki.run(main(), workers=2)


@guarded()
def test_a_connect_that_fails_at_once_names_the_address(reactor: Reactor) -> None:
    async def main() -> None:
        # TCP to the broadcast address: Linux refuses it synchronously (ENETUNREACH)
        with pytest.raises(OSError) as info:
            await TcpStream.connect("255.255.255.255", 9)
        assert info.value.errno is not None
        assert "connecting to 255.255.255.255:9" in str(info.value)

    zuki.run(main(), workers=2)
    assert reactor.registrations() == 0  # the socket was closed, never registered


@guarded()
def test_accept_skips_a_connection_reset_while_queued(reactor: Reactor) -> None:
    async def main() -> None:
        async with TcpListener.bind(LOOPBACK, 0) as listener:
            doomed = socket.create_connection(listener.local_address)
            doomed.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            doomed.close()  # RST while still in the accept queue
            good = socket.create_connection(listener.local_address)
            try:
                stream, address = await listener.accept()
                assert address == good.getsockname()
                async with stream:
                    good.sendall(b"hi")
                    assert await stream.read_exact(2) == b"hi"
            finally:
                good.close()

    zuki.run(main(), workers=2)


@guarded()
def test_read_exact_on_a_reset_connection(reactor: Reactor) -> None:
    async def main() -> None:
        async with TcpListener.bind(LOOPBACK, 0) as listener:
            client, server_side = await connected_pair(listener)
            linger_zero(server_side)
            await server_side.write(b"ab")
            server_side.close()
            with pytest.raises(ConnectionResetError) as info:
                await client.read_exact(10)
            assert f"reading from {LOOPBACK}:{listener.local_address[1]}" in str(info.value)
            client.close()

    zuki.run(main(), workers=2)


@guarded()
def test_write_on_a_reset_connection_names_the_peer(reactor: Reactor) -> None:
    async def main() -> None:
        async with TcpListener.bind(LOOPBACK, 0) as listener:
            client = await reset_by_peer(listener)
            with pytest.raises(OSError) as info:
                for _ in range(100):  # the first send may still be accepted locally
                    await client.write(b"data")
            assert info.value.errno in (errno.EPIPE, errno.ECONNRESET)
            assert "writing to" in str(info.value) and LOOPBACK in str(info.value)
            client.close()

    zuki.run(main(), workers=2)


@guarded()
def test_shutdown_write_on_a_reset_connection(reactor: Reactor) -> None:
    async def main() -> None:
        async with TcpListener.bind(LOOPBACK, 0) as listener:
            client = await reset_by_peer(listener)
            with pytest.raises(OSError) as info:
                client.shutdown_write()
            assert info.value.errno == errno.ENOTCONN
            assert "shutting down writes to" in str(info.value)
            client.close()

    zuki.run(main(), workers=2)


@guarded()
def test_read_sizes(reactor: Reactor) -> None:
    async def main() -> None:
        async with TcpListener.bind(LOOPBACK, 0) as listener:
            client, server_side = await connected_pair(listener)
            with pytest.raises(ValueError, match="read size must be >= 0, got -1"):
                await client.read_exact(-1)
            with pytest.raises(ValueError, match="got -2"):
                await client.read(-2)
            assert await client.read_exact(0) == b""
            assert await client.read(0) == b""
            client.close()
            server_side.close()

    zuki.run(main(), workers=2)


# --------------------------------------------------------------------------------------
# a write that fills the socket buffer
# --------------------------------------------------------------------------------------


@guarded()
def test_a_write_larger_than_the_buffers_waits_for_room(reactor: Reactor) -> None:
    size = 1 << 20

    async def main() -> None:
        async with TcpListener.bind(LOOPBACK, 0) as listener:
            client, server_side = await connected_pair(listener)
            for end, option in ((client, socket.SO_SNDBUF), (server_side, socket.SO_RCVBUF)):
                raw = socket.socket(fileno=end.fileno())
                raw.setsockopt(socket.SOL_SOCKET, option, 64 * 1024)
                raw.detach()
            payload = bytes(i % 253 for i in range(size))
            writer = zuki.spawn(client.write(payload))
            # let the writer fill the buffers before anything is read
            deadline = time.monotonic() + 5
            while not writer.done() and time.monotonic() < deadline:
                await zuki.sleep(0.01)
                if client._reg.waiting():
                    break
            assert not writer.done()  # it is waiting for room
            assert await server_side.read_exact(size) == payload
            await writer
            client.close()
            server_side.close()

    zuki.run(main(), workers=2)


# --------------------------------------------------------------------------------------
# small API bits
# --------------------------------------------------------------------------------------


def test_closed_flags_and_reprs(reactor: Reactor) -> None:
    listener = TcpListener.bind(LOOPBACK, 0)
    port = listener.local_address[1]
    assert not listener.closed and listener.fileno() >= 0
    assert repr(listener) == f"<TcpListener {LOOPBACK}:{port}>"
    listener.close()
    assert listener.closed and listener.fileno() == -1
    assert repr(listener) == f"<TcpListener {LOOPBACK}:{port} closed>"
