"""A small, bounded HTTP/1.1 server on trio, around h11's sans-IO connection.

The admin API answers a handful of small GET requests from operators, Prometheus and the
console, so the server is deliberately plain: one task per connection, keep-alive, no
request bodies to speak of. Every resource has a bound, because an admin port left open
to a misbehaving scraper must not hurt the Kafka path: the request head is capped by h11
itself (`request_head_bytes_max`), bodies are capped and discarded, a request must arrive
whole within `request_timeout_s`, an idle keep-alive connection is closed after
`idle_timeout_s`, and at most `connections_max` connections are served at once (more are
answered 503 and closed).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import attrs
import h11
import trio

from raftlog import logs

RECEIVE_CHUNK_BYTES = 16 * 1024
SERVER_NAME = b"raftlog-admin"


@attrs.frozen
class HttpLimits:
    """Bounds of one admin HTTP server."""

    request_head_bytes_max: int = 16 * 1024
    request_body_bytes_max: int = 16 * 1024
    connections_max: int = 64
    request_timeout_s: float = 10.0
    """A request (head and body) must arrive within this once its first byte has."""
    idle_timeout_s: float = 30.0
    """A keep-alive connection with no request for this long is closed."""
    send_timeout_s: float = 10.0
    requests_per_connection_max: int = 10_000


@attrs.frozen
class HttpRequest:
    method: str
    target: str
    """The request target as sent: path and query."""


@attrs.frozen
class HttpResponse:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


App = Callable[[HttpRequest], Awaitable[HttpResponse]]


@attrs.frozen
class HttpStatistics:
    connections_open: int
    connections_total: int
    connections_refused: int
    requests_total: int
    bad_requests_total: int


class _TooLarge(Exception):
    """The request body is over the bound."""


@attrs.define(eq=False)
class HttpServer:
    """Serves `app` over HTTP/1.1 until cancelled."""

    app: App
    limits: HttpLimits = HttpLimits()
    _connections_open: int = 0
    _connections_total: int = 0
    _connections_refused: int = 0
    _requests_total: int = 0
    _bad_requests_total: int = 0

    def statistics(self) -> HttpStatistics:
        return HttpStatistics(
            self._connections_open,
            self._connections_total,
            self._connections_refused,
            self._requests_total,
            self._bad_requests_total,
        )

    async def serve(
        self, host: str, port: int, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen until cancelled; reports the bound port through `task_status`."""
        listeners = await trio.open_tcp_listeners(port, host=host)
        task_status.started(listeners[0].socket.getsockname()[1])
        await trio.serve_listeners(self._serve_connection, listeners)

    async def _serve_connection(self, stream: trio.SocketStream) -> None:
        connection = h11.Connection(
            h11.SERVER, max_incomplete_event_size=self.limits.request_head_bytes_max
        )
        try:
            if self._connections_open >= self.limits.connections_max:
                self._connections_refused += 1
                await self._refuse(stream, connection)
                return
            self._connections_open += 1
            self._connections_total += 1
            try:
                await self._run(stream, connection)
            finally:
                self._connections_open -= 1
        except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError):
            pass  # the client went away or stalled: nothing of ours is half-done
        except Exception as error:
            logs.event("admin_connection_failed", logging.ERROR, error=repr(error))
            logging.getLogger(logs.LOGGER_NAME).debug("admin traceback", exc_info=True)
        finally:
            await trio.aclose_forcefully(stream)

    async def _refuse(self, stream: trio.SocketStream, connection: h11.Connection) -> None:
        """Read the request head (briefly) so the answer is well-formed HTTP, then 503."""
        with trio.move_on_after(self.limits.request_timeout_s):
            request = await self._next_request(stream, connection)
            if request is not None:
                body = b'{"error": "too many admin connections"}'
                await self._send(stream, connection, HttpResponse(503, body), close=True)

    async def _run(self, stream: trio.SocketStream, connection: h11.Connection) -> None:
        for _ in range(self.limits.requests_per_connection_max):
            # Idle until the next request's first byte (unless a pipelining client already
            # sent it), then the whole request in time.
            if not connection.trailing_data[0]:
                with trio.move_on_after(self.limits.idle_timeout_s) as idle:
                    first = await stream.receive_some(RECEIVE_CHUNK_BYTES)
                if idle.cancelled_caught or not first:
                    return
                connection.receive_data(first)
            try:
                with trio.fail_after(self.limits.request_timeout_s):
                    request = await self._next_request(stream, connection)
            except h11.RemoteProtocolError as error:
                self._bad_requests_total += 1
                await self._answer_bad_request(stream, connection, error)
                return
            except _TooLarge:
                self._bad_requests_total += 1
                body = b'{"error": "request body too large"}'
                await self._send(stream, connection, HttpResponse(413, body), close=True)
                return
            if request is None:
                return
            self._requests_total += 1
            response = await self.app(request)
            await self._send(stream, connection, response, close=False, head=request.method)
            # h11 moves to MUST_CLOSE when the client asked for `connection: close` or
            # spoke HTTP/1.0.
            if connection.our_state is h11.MUST_CLOSE:
                return
            connection.start_next_cycle()

    async def _next_request(
        self, stream: trio.SocketStream, connection: h11.Connection
    ) -> HttpRequest | None:
        """The next whole request (its body read and dropped), or None at EOF."""
        request: HttpRequest | None = None
        body_bytes = 0
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(RECEIVE_CHUNK_BYTES)
                connection.receive_data(data)
                continue
            if isinstance(event, h11.Request):
                request = HttpRequest(event.method.decode("ascii"), event.target.decode("ascii"))
            elif isinstance(event, h11.Data):
                body_bytes += len(event.data)
                if body_bytes > self.limits.request_body_bytes_max:
                    raise _TooLarge
            elif isinstance(event, h11.EndOfMessage):
                return request
            elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return None

    async def _answer_bad_request(
        self, stream: trio.SocketStream, connection: h11.Connection, error: h11.RemoteProtocolError
    ) -> None:
        if connection.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        status = error.error_status_hint
        body = b'{"error": "bad request"}'
        await self._send(stream, connection, HttpResponse(status, body), close=True)

    async def _send(
        self,
        stream: trio.SocketStream,
        connection: h11.Connection,
        response: HttpResponse,
        *,
        close: bool,
        head: str = "GET",
    ) -> None:
        headers = [
            ("server", SERVER_NAME),
            ("content-type", response.content_type.encode()),
            ("content-length", str(len(response.body)).encode()),
            ("cache-control", b"no-store"),
            *((name, value.encode()) for name, value in response.headers),
        ]
        if close:
            headers.append(("connection", b"close"))
        body = b"" if head == "HEAD" else response.body
        data = connection.send(h11.Response(status_code=response.status, headers=headers))
        if body:
            data += connection.send(h11.Data(data=body))
        data += connection.send(h11.EndOfMessage())
        with trio.fail_after(self.limits.send_timeout_s):
            await stream.send_all(data)
