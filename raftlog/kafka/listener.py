"""The Kafka TCP listener: trio around the sans-IO `ServerConnection`.

Kafka clients pipeline requests on one connection (librdkafka keeps up to five produce
requests in flight) and match responses by order. So each connection has a reader that
parses requests and starts one handler task per request, and a writer that sends each
response in request order once its handler is done. The number of requests in flight per
connection is bounded; when it is reached the reader stops reading, which pushes back on
the client through TCP.

Requests of the group protocol and of committed offsets (`IN_ORDER_APIS`) start only once
every earlier request of their connection is done, as Kafka, which handles a connection's
requests one at a time, would: a client that commits and then rejoins its group on one
connection must not have the join complete (and a new owner of its partitions read the
committed offsets) before the commit does. Produce and fetch stay pipelined.

A response usually goes out from its handler's task: when the writer is waiting for
exactly that response, the handler writes it to the socket itself, as far as the socket
takes it without waiting (`_ResponseWriter.write_now`), and the writer sends the rest.
That saves the scheduling round of waking the writer on the path of every answer.

A handler that raises does not take the node down: the error is logged with the client
id, and the connection is closed (the client reconnects and retries), because a response
we cannot build correctly is worse than none.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import attrs
import trio

from raftlog import logs
from raftlog.protocol.connection import (
    CONNECTION_CLOSED,
    NEED_DATA,
    ErrorAction,
    ProtocolError,
    RequestReceived,
    ServerConnection,
)
from raftlog.protocol.messages._runtime import Message
from raftlog.transport.vectored import write_without_waiting

Handler = Callable[[RequestReceived], Awaitable[Message | None]]
"""Answers one request; None means the request gets no response (acks=0 produce)."""

RECEIVE_CHUNK_BYTES = 256 * 1024
IN_ORDER_APIS = frozenset(
    {
        8,  # OffsetCommit
        9,  # OffsetFetch
        10,  # FindCoordinator
        11,  # JoinGroup
        12,  # Heartbeat
        13,  # LeaveGroup
        14,  # SyncGroup
        15,  # DescribeGroups
        16,  # ListGroups
        42,  # DeleteGroups
        47,  # OffsetDelete
    }
)


class ListenerObserver(Protocol):
    """Told about traffic, once per read, write or request (never per record): metrics."""

    def kafka_bytes_received(self, count: int) -> None: ...

    def kafka_bytes_sent(self, count: int) -> None: ...

    def kafka_request_done(self, api_key: int, seconds: float, failed: bool) -> None: ...


@attrs.frozen
class ListenerLimits:
    """Bounds of one Kafka listener."""

    max_frame_bytes: int = 100 * 1024 * 1024
    requests_in_flight_per_connection_max: int = 32
    connections_max: int = 4096


@attrs.define(eq=False)
class _Slot:
    """One request's place in the connection's response order."""

    event: RequestReceived | ProtocolError
    done: trio.Event = attrs.field(factory=trio.Event)
    body: Message | None = None
    failed: bool = False
    written_by_handler: bool = False
    """The handler wrote the response (`_ResponseWriter.write_now`); `left_over` is
    what the socket did not take then."""
    left_over: list[memoryview] = attrs.field(factory=list)


@attrs.define(eq=False)
class _ResponseWriter:
    """What a handler needs to write its own response while the writer waits for it."""

    stream: trio.SocketStream
    connection: ServerConnection
    waiting_on: _Slot | None = None
    """The slot the writer waits for, with nothing of earlier responses left to write."""

    def write_now(self, slot: _Slot) -> int:
        """Write `slot`'s response from the calling task if the writer waits for exactly
        it: as far as the socket takes it without waiting, the rest left for the writer.
        Returns the bytes written."""
        if self.waiting_on is not slot or slot.failed or slot.body is None:
            return 0
        if not isinstance(self.stream, trio.SocketStream):
            return 0
        assert isinstance(slot.event, RequestReceived)
        try:
            chunks = self.connection.send_response_chunks(slot.event, slot.body)
        except Exception:
            return 0  # a body that does not fit its request: the writer meets it and closes
        slot.written_by_handler = True
        # Stopped by a full socket or a broken one: the writer's send waits, or meets it.
        written, slot.left_over, _error = write_without_waiting(self.stream, chunks)
        return written


@attrs.frozen
class ListenerStatistics:
    connections_open: int
    connections_total: int
    requests_total: int
    protocol_errors_total: int
    handler_failures_total: int


@attrs.define(eq=False)
class KafkaListener:
    """Accepts Kafka client connections and serves them with `handler`."""

    handler: Handler
    supported_versions: dict[int, tuple[int, int]]
    limits: ListenerLimits = ListenerLimits()
    observer: ListenerObserver | None = None
    _connections_open: int = 0
    _connections_total: int = 0
    _requests_total: int = 0
    _protocol_errors_total: int = 0
    _handler_failures_total: int = 0

    def statistics(self) -> ListenerStatistics:
        return ListenerStatistics(
            self._connections_open,
            self._connections_total,
            self._requests_total,
            self._protocol_errors_total,
            self._handler_failures_total,
        )

    async def serve(
        self, host: str, port: int, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen until cancelled; reports the bound port through `task_status`."""
        listeners = await trio.open_tcp_listeners(port, host=host)
        bound_port = listeners[0].socket.getsockname()[1]
        task_status.started(bound_port)
        await trio.serve_listeners(self._serve_connection, listeners)

    async def _serve_connection(self, stream: trio.SocketStream) -> None:
        if self._connections_open >= self.limits.connections_max:
            await stream.aclose()
            return
        self._connections_open += 1
        self._connections_total += 1
        try:
            await self._run_connection(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client went away; nothing of ours is left half-done
        except Exception as error:
            if _only_disconnects(error):
                return
            # A bug serving one connection must not take the node down: close it, say why.
            self._handler_failures_total += 1
            logs.event("kafka_connection_failed", logging.ERROR, error=repr(error))
            logging.getLogger(logs.LOGGER_NAME).debug("connection traceback", exc_info=True)
        finally:
            self._connections_open -= 1
            await trio.aclose_forcefully(stream)

    async def _run_connection(self, stream: trio.SocketStream) -> None:
        connection = ServerConnection(self.supported_versions, self.limits.max_frame_bytes)
        # Taken by the reader before a request that needs an answer starts, given back
        # once its response is written: the bound counts exactly the requests in flight.
        in_flight = trio.Semaphore(self.limits.requests_in_flight_per_connection_max)
        slots_in, slots_out = trio.open_memory_channel[_Slot](
            self.limits.requests_in_flight_per_connection_max
        )
        writer = _ResponseWriter(stream, connection)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._write_responses, writer, slots_out, in_flight, nursery)
            async with slots_in:
                await self._read_requests(stream, connection, slots_in, in_flight, nursery, writer)

    async def _read_requests(
        self,
        stream: trio.SocketStream,
        connection: ServerConnection,
        slots: trio.MemorySendChannel[_Slot],
        in_flight: trio.Semaphore,
        nursery: trio.Nursery,
        writer: _ResponseWriter,
    ) -> None:
        pending: list[_Slot] = []  # this connection's requests whose handlers may still run
        while True:
            event = connection.next_request()
            if event is NEED_DATA:
                data = await stream.receive_some(RECEIVE_CHUNK_BYTES)
                if self.observer is not None:
                    self.observer.kafka_bytes_received(len(data))
                connection.receive_data(data)
                continue
            if event is CONNECTION_CLOSED:
                return
            if isinstance(event, ProtocolError):
                self._protocol_errors_total += 1
                logs.event(
                    "kafka_protocol_error",
                    logging.WARNING,
                    reason=event.reason,
                    action=event.action.value,
                    api_key=event.api_key,
                    api_version=event.api_version,
                )
                if event.action is ErrorAction.CLOSE:
                    return
                slot = _Slot(event)
                slot.done.set()
                await in_flight.acquire()
                await slots.send(slot)
                continue
            assert isinstance(event, RequestReceived)
            self._requests_total += 1
            slot = _Slot(event)
            pending = [earlier for earlier in pending if not earlier.done.is_set()]
            after = tuple(pending) if event.api_key in IN_ORDER_APIS else ()
            pending.append(slot)
            if event.expects_response:
                await in_flight.acquire()
            nursery.start_soon(self._handle, slot, after, writer)
            if event.expects_response:
                await slots.send(slot)

    async def _handle(self, slot: _Slot, after: tuple[_Slot, ...], writer: _ResponseWriter) -> None:
        event = slot.event
        assert isinstance(event, RequestReceived)
        for earlier in after:
            await earlier.done.wait()
        started = time.perf_counter()
        try:
            slot.body = await self.handler(event)
        except Exception as error:
            self._handler_failures_total += 1
            slot.failed = True
            logs.event(
                "kafka_handler_failed",
                logging.ERROR,
                api_key=event.api_key,
                api_version=event.api_version,
                client_id=event.client_id,
                error=repr(error),
            )
            logging.getLogger(logs.LOGGER_NAME).debug("handler traceback", exc_info=True)
        finally:
            slot.done.set()
            written = writer.write_now(slot)
            if self.observer is not None:
                seconds = time.perf_counter() - started
                self.observer.kafka_request_done(event.api_key, seconds, slot.failed)
                if written:
                    self.observer.kafka_bytes_sent(written)

    async def _write_responses(
        self,
        writer: _ResponseWriter,
        slots: trio.MemoryReceiveChannel[_Slot],
        in_flight: trio.Semaphore,
        nursery: trio.Nursery,
    ) -> None:
        stream, connection = writer.stream, writer.connection
        async with slots:
            async for slot in slots:
                writer.waiting_on = slot
                try:
                    await slot.done.wait()
                finally:
                    writer.waiting_on = None
                if slot.written_by_handler:
                    for piece in slot.left_over:
                        await self._send(stream, piece)
                    in_flight.release()
                    continue
                if isinstance(slot.event, ProtocolError):
                    await self._send(stream, connection.send_error_response(slot.event))
                    in_flight.release()
                    continue
                if slot.failed or slot.body is None:
                    nursery.cancel_scope.cancel()
                    return
                for chunk in connection.send_response_chunks(slot.event, slot.body):
                    await self._send(stream, chunk)
                in_flight.release()
        # The reader finished (EOF or a fatal framing error) and every response is written;
        # handlers of acks=0 requests may still be running and are left to finish.

    async def _send(self, stream: trio.SocketStream, data: bytes | memoryview) -> None:
        await stream.send_all(data)
        if self.observer is not None:
            self.observer.kafka_bytes_sent(len(data))


def _only_disconnects(error: BaseException) -> bool:
    """Whether `error` (possibly a group from a nursery) is nothing but a client going away."""
    if isinstance(error, BaseExceptionGroup):
        return all(_only_disconnects(inner) for inner in error.exceptions)
    return isinstance(error, trio.BrokenResourceError | trio.ClosedResourceError)
