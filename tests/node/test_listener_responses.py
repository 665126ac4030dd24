"""Responses leave in request order whichever handler finishes first, within the in-flight
bound, and a failed handler closes the connection after the responses before it."""

from __future__ import annotations

import socket
import struct

import trio
import trio.socket

from raftlog.kafka.handlers import SUPPORTED_VERSIONS
from raftlog.kafka.listener import KafkaListener, ListenerLimits, _ResponseWriter, _Slot
from raftlog.protocol.connection import RequestReceived, ServerConnection
from raftlog.protocol.messages._runtime import Message
from raftlog.protocol.messages.generated.metadata_request import MetadataRequest
from raftlog.protocol.messages.generated.metadata_response import (
    MetadataResponse,
    MetadataResponseTopic,
)
from tests.node.test_listener_order import _read, request_frame

METADATA = MetadataRequest(topics=None)


def _metadata_response(request: RequestReceived) -> MetadataResponse:
    # The correlation id comes back in the controller id too: the body matches its request.
    return MetadataResponse(throttle_time_ms=0, brokers=[], cluster_id=None,
                            controller_id=request.correlation_id, topics=[])  # fmt: skip


def _correlation_ids(sock: socket.socket, count: int) -> list[int]:
    ids = []
    for _ in range(count):
        (size,) = struct.unpack(">i", _read(sock, 4))
        ids.append(struct.unpack(">i", _read(sock, size)[:4])[0])
    return ids


def _serve(handler, limits: ListenerLimits, client) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        listener = KafkaListener(handler, SUPPORTED_VERSIONS, limits)
        async with trio.open_nursery() as nursery:
            port = await nursery.start(listener.serve, "127.0.0.1", 0)
            await trio.to_thread.run_sync(client, port)
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_responses_keep_request_order_when_later_handlers_finish_first() -> None:
    count = 12
    finished: list[int] = []

    async def handler(request: RequestReceived) -> Message:
        # The first request is the slowest, the last the quickest.
        await trio.sleep(0.02 * (count - request.correlation_id))
        finished.append(request.correlation_id)
        return _metadata_response(request)

    def client(port: int) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"".join(request_frame(3, 12, METADATA, i) for i in range(count)))
            assert _correlation_ids(sock, count) == list(range(count))

    _serve(handler, ListenerLimits(), client)
    assert finished == list(reversed(range(count)))


def test_no_more_requests_start_than_the_in_flight_bound() -> None:
    started: list[int] = []
    release = trio.Event()

    async def handler(request: RequestReceived) -> Message:
        started.append(request.correlation_id)
        await release.wait()
        return _metadata_response(request)

    def client(port: int) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"".join(request_frame(3, 12, METADATA, i) for i in range(10)))
            deadline = 50
            while len(started) < 4 and deadline:
                trio.from_thread.run(trio.sleep, 0.02)
                deadline -= 1
            trio.from_thread.run(trio.sleep, 0.2)  # time to start more, were any allowed
            assert started == [0, 1, 2, 3]
            trio.from_thread.run_sync(release.set)
            assert _correlation_ids(sock, 10) == list(range(10))

    _serve(handler, ListenerLimits(requests_in_flight_per_connection_max=4), client)
    assert started == list(range(10))


def test_a_failed_handler_closes_the_connection_after_the_responses_before_it() -> None:
    async def handler(request: RequestReceived) -> Message:
        if request.correlation_id == 2:
            raise RuntimeError("a bug in one handler")
        await trio.sleep(0.05 if request.correlation_id == 0 else 0)
        return _metadata_response(request)

    def client(port: int) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"".join(request_frame(3, 12, METADATA, i) for i in range(5)))
            assert _correlation_ids(sock, 2) == [0, 1]
            assert sock.recv(1) == b"", "nothing after the failed request's place"

    _serve(handler, ListenerLimits(), client)


def _request_on(connection: ServerConnection, correlation_id: int) -> RequestReceived:
    connection.receive_data(request_frame(3, 12, METADATA, correlation_id))
    event = connection.next_request()
    assert isinstance(event, RequestReceived)
    return event


def _big_metadata_response(request: RequestReceived) -> MetadataResponse:
    topics = [
        MetadataResponseTopic(error_code=0, name=f"topic-{index:06d}" + "x" * 200, partitions=[])
        for index in range(5000)
    ]
    return MetadataResponse(throttle_time_ms=0, brokers=[], cluster_id=None,
                            controller_id=request.correlation_id, topics=topics)  # fmt: skip


def test_a_handler_writes_its_response_itself_only_while_the_writer_waits_for_it() -> None:
    """Only then can nothing else be on its way to the socket; what the socket does not
    take at once (a response far larger than its buffer) is left to the writer."""

    async def main() -> None:
        ours, theirs = socket.socketpair()
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        theirs.setblocking(False)
        stream = trio.SocketStream(trio.socket.from_stdlib_socket(ours))
        connection = ServerConnection(SUPPORTED_VERSIONS, 1 << 20)
        writer = _ResponseWriter(stream, connection)

        small = _Slot(_request_on(connection, 1))
        small.body = _metadata_response(small.event)  # type: ignore[arg-type]
        assert writer.write_now(small) == 0, "the writer is not waiting for it"
        assert not small.written_by_handler

        writer.waiting_on = small
        written = writer.write_now(small)
        assert small.written_by_handler and not small.left_over
        response = theirs.recv(1 << 16)
        assert len(response) == written
        assert struct.unpack(">ii", response[:8])[1] == 1  # size, then the correlation id

        big = _Slot(_request_on(connection, 2))
        big.body = _big_metadata_response(big.event)  # type: ignore[arg-type]
        writer.waiting_on = big
        written = writer.write_now(big)
        assert big.written_by_handler and big.left_over, "more than the socket takes at once"
        whole = connection_copy_of(big)
        assert written + sum(len(piece) for piece in big.left_over) == len(whole)
        ours.close()
        theirs.close()

    trio.run(main)


def connection_copy_of(slot: _Slot) -> bytes:
    """The framed response of `slot` as another connection at the same point frames it."""
    other = ServerConnection(SUPPORTED_VERSIONS, 1 << 20)
    request = _request_on(other, slot.event.correlation_id)  # type: ignore[union-attr]
    return b"".join(bytes(chunk) for chunk in other.send_response_chunks(request, slot.body))  # type: ignore[arg-type]


def test_big_responses_arrive_whole_and_in_order() -> None:
    """Each a megabyte, more than the socket takes at once: a handler writes part of it,
    the writer the rest, before the next response."""
    count = 6

    async def handler(request: RequestReceived) -> Message:
        if request.correlation_id % 2:
            return _big_metadata_response(request)
        return _metadata_response(request)

    def client(port: int) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"".join(request_frame(3, 12, METADATA, i) for i in range(count)))
            for expected in range(count):
                (size,) = struct.unpack(">i", _read(sock, 4))
                body = _read(sock, size)
                assert struct.unpack(">i", body[:4])[0] == expected
                decoded = MetadataResponse.decode(body[5:], 12)  # after the v1 header
                assert len(decoded.topics) == (5000 if expected % 2 else 0)

    _serve(handler, ListenerLimits(), client)
