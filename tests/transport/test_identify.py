"""Dialling a seed by address alone: `Transport.identify` learns the node id that answers.

A node joining a cluster knows its seeds' addresses, not their ids. The hello then names
`ANY_PEER`, the acceptor answers with its id, and the connection becomes that peer's, so
calls and replies flow both ways. Addresses where no raftlog node listens (nothing at all,
a plain TCP server, an HTTP/1 server, this node itself) fail with a reason, in bounded time.
"""

from __future__ import annotations

import socket

import pytest
import trio

from raftlog.transport import PeerUnavailable, SameNodeId, Transport, TransportLimits
from raftlog.transport.testing import RecordingHandler

FAST = TransportLimits(connect_timeout_s=1.0)


async def _echo(from_peer: int, payload: bytes) -> bytes:
    return f"{from_peer}:".encode() + payload


def _transport(node_id: int, handler: RecordingHandler) -> Transport:
    return Transport(node_id, "127.0.0.1", 0, handler, limits=FAST)


def test_identify_learns_the_seed_id_and_calls_go_both_ways() -> None:
    async def main() -> None:
        seed_handler = RecordingHandler(methods={"echo": _echo})
        joiner_handler = RecordingHandler(methods={"echo": _echo})
        seed, joiner = _transport(7, seed_handler), _transport(42, joiner_handler)
        async with trio.open_nursery() as nursery:
            await nursery.start(seed.run)
            await nursery.start(joiner.run)
            assert seed.bound_port is not None
            found = await joiner.identify("127.0.0.1", seed.bound_port, 5.0)
            assert found == 7
            assert joiner.peer_addresses[7] == ("127.0.0.1", seed.bound_port)
            assert await joiner.call(7, "echo", b"hi", 5.0) == b"42:hi"
            # The seed answers over the inbound connection, without knowing an address.
            assert await seed.call(42, "echo", b"back", 5.0) == b"7:back"
            assert 42 not in seed.peer_addresses
            # Identifying again (a second seed address for the same node) is harmless.
            assert await joiner.identify("127.0.0.1", seed.bound_port, 5.0) == 7
            assert await joiner.call(7, "echo", b"again", 5.0) == b"42:again"
            nursery.cancel_scope.cancel()

    trio.run(main)


async def _serve_garbage(reply: bytes, *, task_status: trio.TaskStatus[int]) -> None:
    async def handle(stream: trio.SocketStream) -> None:
        with trio.move_on_after(3):
            await stream.receive_some(4096)
            if reply:
                await stream.send_all(reply)
            await trio.sleep(3)

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(handle, listeners)


@pytest.mark.parametrize(
    "reply", [b"", b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", b"\x00" * 64]
)
def test_an_address_that_is_no_raftlog_node_is_refused_with_a_reason(reply: bytes) -> None:
    async def main() -> None:
        joiner = _transport(42, RecordingHandler())
        async with trio.open_nursery() as nursery:
            await nursery.start(joiner.run)
            port = await nursery.start(_serve_garbage, reply)
            started = trio.current_time()
            with pytest.raises(PeerUnavailable, match="did not answer as a raftlog node"):
                await joiner.identify("127.0.0.1", port, 2.0)
            assert trio.current_time() - started < 2.5
            assert joiner.peer_addresses == {}
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_nothing_listening_and_our_own_address_are_refused() -> None:
    async def main() -> None:
        joiner = _transport(42, RecordingHandler())
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            closed_port = probe.getsockname()[1]
        async with trio.open_nursery() as nursery:
            await nursery.start(joiner.run)
            with pytest.raises(PeerUnavailable, match="connect to"):
                await joiner.identify("127.0.0.1", closed_port, 2.0)
            assert joiner.bound_port is not None
            with pytest.raises(SameNodeId, match="has our node id 42"):
                await joiner.identify("127.0.0.1", joiner.bound_port, 2.0)
            assert joiner.peer_addresses == {}
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_a_node_with_our_id_is_named_as_such() -> None:
    async def main() -> None:
        seed, joiner = _transport(7, RecordingHandler()), _transport(7, RecordingHandler())
        async with trio.open_nursery() as nursery:
            await nursery.start(seed.run)
            await nursery.start(joiner.run)
            assert seed.bound_port is not None
            with pytest.raises(SameNodeId, match="has our node id 7"):
                await joiner.identify("127.0.0.1", seed.bound_port, 2.0)
            assert joiner.peer_addresses == {}
            nursery.cancel_scope.cancel()

    trio.run(main)
