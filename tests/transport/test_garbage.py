"""Garbage on a socket closes that connection only; the node keeps serving its peers."""

from __future__ import annotations

import logging
import os

import pytest
import trio

from raftlog.transport import Channel, Transport, TransportLimits
from raftlog.transport.queues import ChannelQueue
from raftlog.transport.session import HelloAnswered, Session
from raftlog.transport.testing import RecordingHandler, open_cluster

LIMITS = TransportLimits(
    message_size_bytes_max=1024, queue_bytes_max=1024 * 1024, connect_timeout_s=1.0
)
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


async def _closed_by_server(stream: trio.SocketStream) -> bool:
    """Read until the server closes; False if it keeps the connection open for 5 s."""
    with trio.move_on_after(5):
        try:
            while await stream.receive_some(65_536):
                pass
        except trio.BrokenResourceError:
            pass
        return True
    return False


async def _hello(
    port: int, node_id: int, limits: TransportLimits
) -> tuple[trio.SocketStream, Session]:
    """Dial as a well-behaved node up to the hello answer."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    session = Session(client_side=True, node_id=node_id, incarnation=1, limits=limits)
    session.start_client(1)
    await stream.send_all(session.data_to_send())
    while not session.hello_done:
        for event in session.receive_data(await stream.receive_some(65_536)):
            assert not isinstance(event, HelloAnswered) or event.peer_id == 1
        await stream.send_all(session.data_to_send())
    return stream, session


async def _send_random_bytes(port: int) -> trio.SocketStream:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(os.urandom(4096))
    return stream


async def _send_http1(port: int) -> trio.SocketStream:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    return stream


async def _send_preface_then_garbage(port: int) -> trio.SocketStream:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(PREFACE + os.urandom(512))
    return stream


async def _send_nothing(port: int) -> trio.SocketStream:
    return await trio.open_tcp_stream("127.0.0.1", port)  # the hello deadline must fire


async def _send_unknown_path(port: int) -> trio.SocketStream:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    client = Session(client_side=True, node_id=7, incarnation=1, limits=LIMITS)
    client._h2.send_headers(  # a request no raftlog node ever sends
        1,
        [
            (b":method", b"POST"),
            (b":scheme", b"http"),
            (b":authority", b"x"),
            (b":path", b"/admin"),
        ],
        end_stream=True,
    )
    await stream.send_all(client.data_to_send())
    return stream


async def _send_oversized_message(port: int) -> trio.SocketStream:
    # This client's own limits allow the message; node 1's 1 KiB limit does not.
    roomy = TransportLimits(message_size_bytes_max=64 * 1024, queue_bytes_max=1024 * 1024)
    stream, session = await _hello(port, 7, roomy)
    queue = ChannelQueue(messages_max=1, bytes_max=1024 * 1024)
    queue.put_nowait(bytes(64 * 1024))
    empty = {channel: ChannelQueue(1, 1) for channel in Channel}
    session.fill({**empty, Channel.RAFT: queue})
    await stream.send_all(session.data_to_send())
    return stream


async def _send_hello_for_another_node(port: int) -> trio.SocketStream:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    session = Session(client_side=True, node_id=7, incarnation=1, limits=LIMITS)
    session.start_client(expected_peer_id=42)  # node 1 is listening there
    await stream.send_all(session.data_to_send())
    return stream


async def _send_hello_then_goodbye(port: int) -> trio.SocketStream:
    """A dialler that stops right after its hello: both arrive in one read, and the answer
    would go to a connection h2 already holds closed (this crashed a node once)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    session = Session(client_side=True, node_id=7, incarnation=1, limits=LIMITS)
    session.start_client(expected_peer_id=1)
    session.say_goodbye()
    await stream.send_all(session.data_to_send())
    return stream


ATTACKS = {
    "random bytes": _send_random_bytes,
    "http/1.1 request": _send_http1,
    "preface then garbage": _send_preface_then_garbage,
    "silent client": _send_nothing,
    "unknown path": _send_unknown_path,
    "oversized length prefix": _send_oversized_message,
    "hello for another node": _send_hello_for_another_node,
    "hello then goodbye": _send_hello_then_goodbye,
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_garbage_closes_only_that_connection(attack: str) -> None:
    log_records: list[logging.LogRecord] = []
    capture = logging.Handler(logging.INFO)
    capture.emit = log_records.append  # type: ignore[method-assign]
    logger = logging.getLogger("raftlog")
    logger.addHandler(capture)
    previous_level = logger.level
    logger.setLevel(logging.INFO)

    async def main() -> None:
        handlers = {1: RecordingHandler(), 2: RecordingHandler()}
        async with open_cluster([1, 2], handlers=handlers, limits=LIMITS) as transports:
            node_1: Transport = transports[1]
            port = node_1.bound_port
            assert port is not None
            with trio.fail_after(10):
                assert transports[2].send_nowait(1, Channel.RAFT, b"before")
                await handlers[1].wait_count(2, Channel.RAFT, 1)
                bad = await ATTACKS[attack](port)
                assert await _closed_by_server(bad), f"{attack}: connection left open"
                await bad.aclose()
                # The honest peer's connection was not disturbed.
                assert transports[2].send_nowait(1, Channel.RAFT, b"after")
                assert node_1.send_nowait(2, Channel.RAFT, b"still here")
                assert await handlers[1].wait_count(2, Channel.RAFT, 2) == [b"before", b"after"]
                await handlers[2].wait_count(1, Channel.RAFT, 1)
            statistics = node_1.statistics()
            assert statistics.peers[2].connected
            assert statistics.peers[2].connections_established == 1
            # A stranger's claimed id leaves no state behind once its connection is gone.
            assert 7 not in statistics.peers

    try:
        trio.run(main)
    finally:
        logger.removeHandler(capture)
        logger.setLevel(previous_level)
    closed = [r for r in log_records if r.getMessage() == "transport_connection_closed"]
    attacker_lines = [r for r in closed if getattr(r, "fields", {}).get("peer") in (None, 7)]
    assert attacker_lines, f"{attack}: closing the connection logged nothing"
    assert all(getattr(r, "fields", {}).get("reason") for r in attacker_lines)
