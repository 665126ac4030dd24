"""Responses leave in request order whichever handler finishes first, within the in-flight
bound, and a failed handler closes the connection after the responses before it."""

from __future__ import annotations

import socket
import struct

import trio

from raftlog.kafka.handlers import SUPPORTED_VERSIONS
from raftlog.kafka.listener import KafkaListener, ListenerLimits
from raftlog.protocol.connection import RequestReceived
from raftlog.protocol.messages._runtime import Message
from raftlog.protocol.messages.generated.metadata_request import MetadataRequest
from raftlog.protocol.messages.generated.metadata_response import MetadataResponse
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
