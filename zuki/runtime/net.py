"""``zuki.net``: async TCP on non-blocking sockets and the reactor.

Prior art: tokio's ``net::{TcpListener, TcpStream}`` (``bind``/``accept``/``connect``,
``AsyncRead``/``AsyncWrite``, readiness through a ``Registration``), asyncio's
``sock_recv``/``sock_sendall`` and streams, trio's ``SocketStream`` (``send_all``,
``send_eof``, errors that name what failed).

How an operation waits
======================

Every socket is non-blocking and registered with the process's reactor
(``reactor.py``) for its whole life. An operation tries the syscall first; on
``EAGAIN``/``EWOULDBLOCK`` it clears the direction's readiness (only if no event came
since it looked: the tick protocol of ``reactor.py``) and awaits readiness, which stores
the task's waker for the driver thread to wake. A short ``recv`` or ``send`` also clears
readiness, so the common echo loop (read, write, read) never makes a syscall that is
bound to fail. Nothing blocks a worker, except name resolution of a host that is not a
numeric address (``getaddrinfo``), which runs on a short-lived helper thread.

Errors
======

Each failure is the ordinary ``OSError`` subclass, raised in the task that made the call,
with the addresses in the message: ``ConnectionResetError`` when the peer resets while we
read or write, ``ConnectionRefusedError`` when nobody listens, ``OSError(EADDRINUSE)``
from ``bind``, ``BrokenPipeError`` for a write after ``shutdown_write()``, and
``OSError(EBADF)`` for any use of a closed stream or listener (also in a task that was
waiting on it when another task closed it). ``read_exact`` raises
:class:`IncompleteReadError` (an ``EOFError``, as asyncio's) when the stream ends first.

Cancellation: a task cancelled while it waits on a socket removes its waker from the
registration (the await sees ``Cancelled`` go through it); no data is lost, since
nothing was read.

Thread-safety: one task may read while another writes; two concurrent readers (or
writers) of one stream are refused with ``RuntimeError``. ``close()`` may be called from
any thread or task, at any time, any number of times.
"""

from __future__ import annotations

import errno
import os
import socket
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from zuki.runtime.future import PENDING, Future, Poll, Ready
from zuki.runtime.reactor import (
    BOTH,
    READABLE,
    WRITABLE,
    Reactor,
    Registration,
    default_reactor,
)

if TYPE_CHECKING:
    from zuki.runtime.future import Context

__all__ = ["IncompleteReadError", "TcpListener", "TcpStream"]

Address = tuple[Any, ...]
"""A socket address: ``(host, port)`` for IPv4, ``(host, port, flowinfo, scope_id)`` for IPv6."""

DEFAULT_READ_SIZE: Final = 65536


class IncompleteReadError(EOFError):
    """``read_exact(n)`` met the end of the stream first; ``partial`` holds what came."""

    def __init__(self, partial: bytes, expected: int, what: str) -> None:
        super().__init__(f"{what}: the stream ended after {len(partial)} of {expected} bytes")
        self.partial = partial
        self.expected = expected


def _fmt(address: Address | None) -> str:
    if not address:
        return "?"
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def _error(exc: OSError, what: str) -> OSError:
    """The same kind of ``OSError`` (``OSError(errno, ...)`` picks the subclass), naming
    ``what`` (the operation and the addresses)."""
    if exc.errno is None:
        return OSError(f"{exc}: {what}")
    reason = exc.strerror or os.strerror(exc.errno)
    return OSError(exc.errno, f"{reason}: {what}")


def _closed(what: str) -> OSError:
    return OSError(errno.EBADF, f"{what} is closed")


# --------------------------------------------------------------------------------------
# name resolution
# --------------------------------------------------------------------------------------


class _Resolve(Future[list[Any]]):
    """``getaddrinfo`` on a helper thread, so a DNS lookup never blocks a worker."""

    __slots__ = ("_args", "_done", "_lock", "_result", "_started", "_waker")

    def __init__(self, *args: Any) -> None:
        self._args = args
        self._lock = threading.Lock()
        self._done = False
        self._started = False
        self._result: Any = None
        self._waker: Any = None

    def _run(self) -> None:
        try:
            result: Any = socket.getaddrinfo(*self._args)
        except BaseException as exc:
            result = exc
        with self._lock:
            self._result = result
            self._done = True
            waker = self._waker
        if waker is not None:
            waker.wake()

    def poll(self, cx: Context) -> Poll[list[Any]]:
        with self._lock:
            if self._done:
                if isinstance(self._result, BaseException):
                    raise self._result
                return Ready(self._result)
            self._waker = cx.waker.clone()
            start = not self._started
            self._started = True
        if start:
            threading.Thread(target=self._run, name="zuki-getaddrinfo", daemon=True).start()
        return PENDING


async def _getaddrinfo(host: str | None, port: int, flags: int = 0) -> list[Any]:
    args = (host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, flags)
    try:
        return socket.getaddrinfo(
            host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, flags | socket.AI_NUMERICHOST
        )
    except socket.gaierror:
        pass
    return await _Resolve(*args)


# --------------------------------------------------------------------------------------
# the socket wrapper shared by listeners and streams
# --------------------------------------------------------------------------------------


class _Socket:
    """A non-blocking socket and its registration; closing is idempotent and thread-safe."""

    __slots__ = ("_close_lock", "_reactor", "_reg", "_sock", "_what")

    def __init__(
        self,
        sock: socket.socket,
        what: str,
        reactor: Reactor | None = None,
        initial: int = BOTH,
    ) -> None:
        self._close_lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._what = what
        self._reactor = reactor if reactor is not None else default_reactor()
        sock.setblocking(False)
        self._reg: Registration = self._reactor.register(sock.fileno(), what, initial)
        self._sock = sock

    def _live(self) -> socket.socket:
        sock = self._sock
        if sock is None:
            raise _closed(self._what)
        return sock

    def close(self) -> None:
        """Close the socket; waiting tasks get ``OSError(EBADF)``. Idempotent."""
        with self._close_lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            self._reactor.close_registration(self._reg, sock)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._sock is None

    def fileno(self) -> int:
        """The socket's file descriptor (``-1`` once closed)."""
        sock = self._sock
        return -1 if sock is None else sock.fileno()

    def __del__(self) -> None:
        # A stream dropped without close(): release the fd and its registration, as a
        # socket.socket does on collection.
        if getattr(self, "_sock", None) is not None:
            self.close()


# --------------------------------------------------------------------------------------
# TcpStream
# --------------------------------------------------------------------------------------


class TcpStream(_Socket):
    """A connected TCP socket: ``read``, ``read_exact``, ``write``, ``shutdown_write``.

    Made by :meth:`connect` or :meth:`TcpListener.accept`. ``TCP_NODELAY`` is on (small
    writes go out at once, as in asyncio); see :attr:`nodelay`. An async context manager
    that closes the stream on exit.
    """

    __slots__ = ("_local", "_peer", "_write_shut")

    def __init__(
        self, sock: socket.socket, reactor: Reactor | None = None, *, connecting: bool = False
    ) -> None:
        self._local: Address = sock.getsockname()
        self._peer: Address = () if connecting else sock.getpeername()
        self._write_shut = False
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # A connecting socket is not writable until the connection is made: its first
        # wait for WRITABLE is the wait for the connection.
        super().__init__(
            sock,
            f"TcpStream {_fmt(self._local)} -> {_fmt(self._peer)}",
            reactor,
            READABLE if connecting else BOTH,
        )

    @classmethod
    async def connect(cls, host: str, port: int) -> TcpStream:
        """Connect to ``host:port`` (each resolved address in turn, until one works).

        Raises:
            ConnectionRefusedError: nobody listens there (the message names the address).
            OSError: any other failure to resolve or connect (``socket.gaierror`` for a
                name that does not resolve).
        """
        infos = await _getaddrinfo(host, port)
        error: OSError | None = None
        for family, type_, proto, _name, address in infos:
            try:
                return await cls._connect_one(family, type_, proto, address)
            except OSError as exc:
                error = exc
        assert error is not None, "getaddrinfo returned no address"
        raise error

    @classmethod
    async def _connect_one(cls, family: int, type_: int, proto: int, address: Address) -> TcpStream:
        what = f"connecting to {_fmt(address)}"
        sock = socket.socket(family, type_, proto)
        try:
            sock.setblocking(False)
            try:
                sock.connect(address)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:
                raise _error(exc, what) from None
            stream = cls(sock, connecting=True)
        except BaseException:
            sock.close()
            raise
        try:
            await stream._finish_connect(sock, what)
        except BaseException:
            stream.close()
            raise
        return stream

    async def _finish_connect(self, sock: socket.socket, what: str) -> None:
        reg = self._reg
        while True:
            await reg.ready(WRITABLE)
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise OSError(err, f"{os.strerror(err)}: {what}")
            tick = reg.tick
            try:
                self._peer = sock.getpeername()
            except OSError as exc:
                if exc.errno != errno.ENOTCONN:
                    raise _error(exc, what) from None
                reg.clear(WRITABLE, tick)  # a stray event: still connecting
                continue
            self._local = sock.getsockname()
            self._what = reg.what = f"TcpStream {_fmt(self._local)} -> {_fmt(self._peer)}"
            return

    @property
    def local_address(self) -> Address:
        """This end's ``(host, port)``."""
        return self._local

    @property
    def peer_address(self) -> Address:
        """The other end's ``(host, port)``."""
        return self._peer

    @property
    def nodelay(self) -> bool:
        """Whether ``TCP_NODELAY`` is set (Nagle's algorithm off). Settable."""
        return bool(self._live().getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    @nodelay.setter
    def nodelay(self, value: bool) -> None:
        self._live().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, int(bool(value)))

    async def read(self, n: int = DEFAULT_READ_SIZE) -> bytes:
        """Up to ``n`` bytes (at least one), as soon as some arrive; ``b""`` at the end of
        the stream (the peer shut down its writing side or closed).

        Raises:
            ConnectionResetError: the peer reset the connection.
            OSError: the stream is closed (``EBADF``), or another socket error.
        """
        if n <= 0:
            if n == 0:
                return b""
            raise ValueError(f"read size must be >= 0, got {n}")
        reg = self._reg
        while True:
            sock = self._live()
            tick = reg.tick
            if reg.is_ready(READABLE):
                try:
                    data = sock.recv(n)
                except (BlockingIOError, InterruptedError):
                    reg.clear(READABLE, tick)
                except OSError as exc:
                    raise self._fail(exc, "reading from") from None
                else:
                    if 0 < len(data) < n:
                        reg.clear(READABLE, tick)  # drained the buffer, most likely
                    return data
            await reg.ready(READABLE)

    async def read_exact(self, n: int) -> bytes:
        """Exactly ``n`` bytes.

        Raises:
            IncompleteReadError: the stream ended first (``partial`` has what came).
            ConnectionResetError, OSError: as :meth:`read`.
        """
        if n < 0:
            raise ValueError(f"read size must be >= 0, got {n}")
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        reg = self._reg
        while got < n:
            sock = self._live()
            tick = reg.tick
            if reg.is_ready(READABLE):
                try:
                    count = sock.recv_into(view[got:])
                except (BlockingIOError, InterruptedError):
                    reg.clear(READABLE, tick)
                except OSError as exc:
                    raise self._fail(exc, "reading from") from None
                else:
                    if count == 0:
                        raise IncompleteReadError(bytes(buf[:got]), n, self._what)
                    got += count
                    if got < n:
                        reg.clear(READABLE, tick)
                    continue
            await reg.ready(READABLE)
        return bytes(buf)

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Send all of ``data``, waiting for room in the socket buffer as needed.

        Raises:
            BrokenPipeError: after :meth:`shutdown_write`, or the peer closed.
            ConnectionResetError: the peer reset the connection.
            OSError: the stream is closed (``EBADF``), or another socket error.
        """
        view = memoryview(data).cast("B")
        total = len(view)
        sent = 0
        reg = self._reg
        while True:
            sock = self._live()
            if self._write_shut:
                raise BrokenPipeError(errno.EPIPE, f"write after shutdown_write() on {self._what}")
            if sent >= total:
                return
            tick = reg.tick
            if reg.is_ready(WRITABLE):
                try:
                    count = sock.send(view[sent:])
                except (BlockingIOError, InterruptedError):
                    reg.clear(WRITABLE, tick)
                except OSError as exc:
                    raise self._fail(exc, "writing to") from None
                else:
                    sent += count
                    if sent < total:
                        reg.clear(WRITABLE, tick)  # the buffer is full, most likely
                    continue
            await reg.ready(WRITABLE)

    def shutdown_write(self) -> None:
        """Send end-of-stream (``SHUT_WR``): the peer reads ``b""``; reading goes on.

        Raises:
            OSError: the stream is closed, or the connection is gone.
        """
        sock = self._live()
        if self._write_shut:
            return
        self._write_shut = True
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            raise self._fail(exc, "shutting down writes to") from None

    def _fail(self, exc: OSError, doing: str) -> OSError:
        if self._sock is None:
            return _closed(self._what)
        return _error(exc, f"{doing} {_fmt(self._peer)} ({self._what})")

    async def __aenter__(self) -> TcpStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = " closed" if self._sock is None else ""
        return f"<{self._what}{state}>"


# --------------------------------------------------------------------------------------
# TcpListener
# --------------------------------------------------------------------------------------


class TcpListener(_Socket):
    """A listening TCP socket: :meth:`bind` it, then ``await accept()``.

    An async context manager that closes the listener on exit (connections already
    accepted stay open).
    """

    __slots__ = ("_local",)

    def __init__(self, sock: socket.socket, reactor: Reactor | None = None) -> None:
        self._local: Address = sock.getsockname()
        super().__init__(sock, f"TcpListener {_fmt(self._local)}", reactor)

    @classmethod
    def bind(cls, host: str, port: int, backlog: int = 128) -> TcpListener:
        """Listen on ``host:port`` (``port`` 0 picks a free port; see :attr:`local_address`).

        Synchronous: a numeric host or a name from the hosts file resolves at once.
        ``SO_REUSEADDR`` is set (a restarted server can take its port back from
        connections in ``TIME_WAIT``; it does not let two listeners share a port).

        Raises:
            OSError: the address is in use (``EADDRINUSE``) or cannot be bound; the
                message names it. ``socket.gaierror`` for a host that does not resolve.
        """
        infos = socket.getaddrinfo(
            host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
        )
        error: OSError | None = None
        for family, type_, proto, _name, address in infos:
            sock = socket.socket(family, type_, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(address)
                sock.listen(backlog)
                return cls(sock)
            except OSError as exc:
                sock.close()
                error = _error(exc, f"binding a TcpListener to {_fmt(address)}")
        assert error is not None, "getaddrinfo returned no address"
        raise error

    @property
    def local_address(self) -> Address:
        """The ``(host, port)`` the listener is bound to (the real port if 0 was asked)."""
        return self._local

    async def accept(self) -> tuple[TcpStream, Address]:
        """Wait for the next connection: ``(stream, peer address)``.

        Raises:
            OSError: the listener is closed (``EBADF``), or the process is out of file
                descriptors (``EMFILE``; the connection stays queued).
        """
        reg = self._reg
        while True:
            sock = self._live()
            tick = reg.tick
            if reg.is_ready(READABLE):
                try:
                    conn, address = sock.accept()
                except (BlockingIOError, InterruptedError):
                    reg.clear(READABLE, tick)
                except OSError as exc:
                    if self._sock is None:
                        raise _closed(self._what) from None
                    if exc.errno == errno.ECONNABORTED:
                        continue  # the peer gave up while queued: take the next one
                    raise _error(exc, f"accepting on {self._what}") from None
                else:
                    try:
                        return TcpStream(conn, self._reactor), address
                    except OSError:
                        conn.close()  # reset before we could look at it: take the next
                    except BaseException:
                        conn.close()
                        raise
            await reg.ready(READABLE)

    async def __aenter__(self) -> TcpListener:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = " closed" if self._sock is None else ""
        return f"<{self._what}{state}>"
