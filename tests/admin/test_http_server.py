"""The admin HTTP server's bounds: sizes, timeouts, connection count, keep-alive, bad bytes.

The server runs in-process on a real 127.0.0.1 socket; clients are raw trio sockets, so
each test says exactly which bytes arrive when.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from raftlog.admin.http_server import HttpLimits, HttpRequest, HttpResponse, HttpServer


async def _echo(request: HttpRequest) -> HttpResponse:
    return HttpResponse(200, f"{request.method} {request.target}".encode(), "text/plain")


def _run(limits: HttpLimits, scenario: Callable[[int, HttpServer], Awaitable[None]]) -> None:
    async def main() -> None:
        server = HttpServer(_echo, limits)
        async with trio.open_nursery() as nursery:
            port = await nursery.start(server.serve, "127.0.0.1", 0)
            with trio.fail_after(20):
                await scenario(port, server)
            nursery.cancel_scope.cancel()

    trio.run(main)


async def _read_all(stream: trio.SocketStream) -> bytes:
    """Everything until the server closes."""
    chunks = []
    while chunk := await stream.receive_some(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_keep_alive_serves_several_requests_then_honours_close() -> None:
    async def scenario(port: int, server: HttpServer) -> None:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(
            b"GET /a HTTP/1.1\r\nhost: x\r\n\r\n"
            b"HEAD /b HTTP/1.1\r\nhost: x\r\n\r\n"
            b"GET /c?q=1 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
        )
        answer = await _read_all(stream)
        assert answer.count(b"HTTP/1.1 200") == 3
        assert b"GET /a" in answer and b"GET /c?q=1" in answer
        assert b"HEAD /b" not in answer  # HEAD: headers only
        assert server.statistics().requests_total == 3

    _run(HttpLimits(), scenario)


def test_oversized_head_is_refused_with_431() -> None:
    async def scenario(port: int, server: HttpServer) -> None:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"GET / HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 4096)
        answer = await _read_all(stream)
        assert answer.startswith(b"HTTP/1.1 431")
        assert server.statistics().bad_requests_total == 1

    _run(HttpLimits(request_head_bytes_max=1024), scenario)


def test_oversized_body_is_refused_with_413() -> None:
    async def scenario(port: int, _server: HttpServer) -> None:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(
            b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 5000\r\n\r\n" + b"z" * 5000
        )
        assert (await _read_all(stream)).startswith(b"HTTP/1.1 413")

    _run(HttpLimits(request_body_bytes_max=1000), scenario)


def test_garbage_gets_400_and_the_connection_closes() -> None:
    async def scenario(port: int, _server: HttpServer) -> None:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"\x16\x03\x01 this is not http\r\n\r\n")
        assert (await _read_all(stream)).startswith(b"HTTP/1.1 400")

    _run(HttpLimits(), scenario)


def test_a_slow_request_is_cut_off_and_an_idle_connection_closed() -> None:
    async def scenario(port: int, _server: HttpServer) -> None:
        slow = await trio.open_tcp_stream("127.0.0.1", port)
        await slow.send_all(b"GET / HTTP/1.1\r\n")  # and never the rest
        idle = await trio.open_tcp_stream("127.0.0.1", port)
        started = trio.current_time()
        assert await _read_all(slow) == b""
        assert await _read_all(idle) == b""
        assert trio.current_time() - started < 5

    _run(HttpLimits(request_timeout_s=0.3, idle_timeout_s=0.3), scenario)


def test_connections_over_the_bound_get_503() -> None:
    async def scenario(port: int, server: HttpServer) -> None:
        held = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(2)]
        await trio.sleep(0.1)  # the server has counted both
        extra = await trio.open_tcp_stream("127.0.0.1", port)
        await extra.send_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        assert (await _read_all(extra)).startswith(b"HTTP/1.1 503")
        assert server.statistics().connections_refused == 1
        for stream in held:
            await stream.aclose()

    _run(HttpLimits(connections_max=2), scenario)
