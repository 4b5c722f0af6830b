"""A minimal HTTP/1.1 server on zuki: keep-alive, pipelining, ``GET /`` answers a fixed body.

    python examples/http_hello.py [--host 127.0.0.1] [--port 8080] [--workers 2]
    python examples/http_hello.py --short      # send itself a few requests, check, exit

Point a real client or load generator at it::

    curl -v http://127.0.0.1:8080/
    wrk -c 100 -t 2 -d 10s http://127.0.0.1:8080/

What it implements: request line and headers up to 16 KiB, persistent connections
(HTTP/1.1 by default, HTTP/1.0 with ``Connection: keep-alive``), pipelined requests,
request bodies with ``Content-Length`` (read and ignored), ``GET`` and ``HEAD`` on ``/``
(200), any other path (404), any other method (405), a malformed request (400, then
close). Not implemented: chunked request bodies (411), TLS, anything else of HTTP.
"""

from __future__ import annotations

import argparse
import sys
import time

import zuki
from zuki.runtime.net import TcpListener, TcpStream

BODY = b"Hello, world! (served by zuki)\n"
MAX_HEAD = 16 * 1024


def response(status: str, body: bytes, *, keep_alive: bool, head: bool = False) -> bytes:
    headers = (
        f"HTTP/1.1 {status}\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    ).encode("ascii")
    return headers if head else headers + body


class BadRequest(Exception):
    """The request cannot be parsed: answer 400 and close."""


def parse_head(head: bytes) -> tuple[str, str, bool, int]:
    """``(method, path, keep_alive, content_length)`` of one request head."""
    try:
        lines = head.decode("latin-1").split("\r\n")
        method, path, version = lines[0].split(" ")
    except ValueError:
        raise BadRequest(f"bad request line: {head[:80]!r}") from None
    if not version.startswith("HTTP/1."):
        raise BadRequest(f"unsupported version {version!r}")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise BadRequest(f"bad header line {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    connection = headers.get("connection", "").lower()
    keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise BadRequest("chunked request bodies are not supported")
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        raise BadRequest("bad Content-Length") from None
    return method, path, keep_alive, length


def answer(method: str, path: str, keep_alive: bool) -> bytes:
    if method not in ("GET", "HEAD"):
        return response("405 Method Not Allowed", b"GET or HEAD only\n", keep_alive=keep_alive)
    if path != "/":
        return response(
            "404 Not Found", b"not found\n", keep_alive=keep_alive, head=method == "HEAD"
        )
    return response("200 OK", BODY, keep_alive=keep_alive, head=method == "HEAD")


async def handle(stream: TcpStream) -> int:
    """Serve one connection until the client closes it or asks to; returns requests served."""
    served = 0
    buf = b""
    async with stream:
        try:
            while True:
                end = buf.find(b"\r\n\r\n")
                while end < 0:
                    if len(buf) > MAX_HEAD:
                        raise BadRequest("request head too large")
                    data = await stream.read(65536)
                    if not data:
                        return served  # the client closed between requests
                    buf += data
                    end = buf.find(b"\r\n\r\n")
                method, path, keep_alive, length = parse_head(buf[:end])
                buf = buf[end + 4 :]
                if length > len(buf):
                    buf += await stream.read_exact(length - len(buf))
                buf = buf[length:]
                out = answer(method, path, keep_alive)
                # Pipelining: answer every complete request already buffered in one write.
                while keep_alive and b"\r\n\r\n" in buf:
                    end = buf.find(b"\r\n\r\n")
                    method, path, keep_alive, length = parse_head(buf[:end])
                    if length > len(buf) - end - 4:
                        break  # its body is not here yet: the outer loop reads it
                    buf = buf[end + 4 + length :]
                    out += answer(method, path, keep_alive)
                    served += 1
                await stream.write(out)
                served += 1
                if not keep_alive:
                    return served
        except BadRequest as exc:
            await stream.write(response("400 Bad Request", f"{exc}\n".encode(), keep_alive=False))
            return served
        except (ConnectionError, EOFError):
            return served  # the client went away mid-request


async def serve(listener: TcpListener, limit: int | None = None) -> int:
    """Accept connections (``limit`` of them, or forever); returns requests served."""
    tasks = []
    while limit is None or len(tasks) < limit:
        stream, _peer = await listener.accept()
        tasks.append(zuki.spawn(handle(stream)))
        if limit is None:
            tasks = [t for t in tasks if not t.done()]
    return sum([await t for t in tasks])


async def main(host: str, port: int) -> None:
    async with TcpListener.bind(host, port, backlog=1024) as listener:
        address = listener.local_address
        print(f"http_hello listening on http://{address[0]}:{address[1]}/ (Ctrl-C stops it)")
        sys.stdout.flush()
        await serve(listener)


async def read_response(stream: TcpStream, buf: bytes) -> tuple[str, bytes, bytes]:
    """One response from ``stream``: ``(status line, body, rest of the buffer)``."""
    while b"\r\n\r\n" not in buf:
        data = await stream.read(65536)
        assert data, "the server closed the connection mid-response"
        buf += data
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(v) for k, _, v in (h.partition(": ") for h in lines) if k == "Content-Length")
    while len(buf) < length:
        buf += await stream.read(65536)
    return lines[0], buf[:length], buf[length:]


async def self_test() -> int:
    async with TcpListener.bind("127.0.0.1", 0) as listener:
        host, port = listener.local_address[:2]
        print(f"http_hello listening on http://{host}:{port}/ (--short)")
        server = zuki.spawn(serve(listener, limit=2))
        get = f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
        async with await TcpStream.connect(host, port) as stream:
            buf = b""
            for _ in range(3):  # keep-alive: one request after another
                await stream.write(get)
                status, body, buf = await read_response(stream, buf)
                assert status == "HTTP/1.1 200 OK" and body == BODY, (status, body)
            await stream.write(get * 4 + b"GET /missing HTTP/1.1\r\n\r\n")  # pipelined
            for expected in ["200 OK"] * 4 + ["404 Not Found"]:
                status, body, buf = await read_response(stream, buf)
                assert status == f"HTTP/1.1 {expected}", status
            await stream.write(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
            status, body, buf = await read_response(stream, buf)
            assert status == "HTTP/1.1 405 Method Not Allowed", status
        async with await TcpStream.connect(host, port) as stream:
            await stream.write(b"GET / HTTP/1.0\r\n\r\n")  # HTTP/1.0: closes after one
            status, body, buf = await read_response(stream, b"")
            assert status == "HTTP/1.1 200 OK" and body == BODY
            assert await stream.read(1) == b""
        served = await server
    assert served == 10, served
    return served


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="zuki HTTP/1.1 hello server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--short", action="store_true", help="self-test and exit")
    args = parser.parse_args(argv)
    if args.short:
        start = time.perf_counter()
        served = zuki.run(self_test(), workers=args.workers)
        print(f"served {served} requests in {time.perf_counter() - start:.2f} s: OK")
        return 0
    try:
        zuki.run(main(args.host, args.port), workers=args.workers)
    except KeyboardInterrupt:
        print("\nstopped")
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
