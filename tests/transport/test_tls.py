"""TLS between nodes, with a CA and certificates made at test time."""

from __future__ import annotations

import ssl

import pytest
import trio

from raftlog.transport import Channel, PeerUnavailable, Transport
from raftlog.transport.testing import RecordingHandler

trustme = pytest.importorskip("trustme", reason="trustme (test extra) makes the test certificates")


def _contexts(ca: trustme.CA) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """Server and client contexts for one node; both sides verify the other (mutual TLS)."""
    certificate = ca.issue_cert("127.0.0.1")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(server)
    ca.configure_trust(server)
    server.verify_mode = ssl.CERT_REQUIRED
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    certificate.configure_cert(client)
    ca.configure_trust(client)
    return server, client


def _node(node_id: int, handler: RecordingHandler, ca: trustme.CA | None) -> Transport:
    server, client = _contexts(ca) if ca is not None else (None, None)
    return Transport(
        node_id=node_id,
        listen_host="127.0.0.1",
        listen_port=0,
        handler=handler,
        server_ssl_context=server,
        client_ssl_context=client,
    )


def test_messages_and_calls_over_mutual_tls() -> None:
    ca = trustme.CA()

    async def main() -> None:
        handlers = {1: RecordingHandler(), 2: RecordingHandler()}

        async def echo(peer: int, body: bytes) -> bytes:
            return body[::-1]

        handlers[2].methods["reverse"] = echo
        nodes = {node_id: _node(node_id, handlers[node_id], ca) for node_id in handlers}
        async with trio.open_nursery() as nursery:
            for node in nodes.values():
                await nursery.start(node.run)
            nodes[1].set_peer_address(2, "127.0.0.1", nodes[2].bound_port or 0)
            nodes[2].set_peer_address(1, "127.0.0.1", nodes[1].bound_port or 0)
            with trio.fail_after(10):
                for index in range(100):
                    assert nodes[1].send_nowait(2, Channel.RAFT, b"%d" % index)
                    assert nodes[2].send_nowait(1, Channel.HEARTBEAT, b"%d" % index)
                expected = [b"%d" % index for index in range(100)]
                assert await handlers[2].wait_count(1, Channel.RAFT, 100) == expected
                assert await handlers[1].wait_count(2, Channel.HEARTBEAT, 100) == expected
                assert await nodes[1].call(2, "reverse", b"abc", 5.0) == b"cba"
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_untrusted_or_cleartext_peers_cannot_connect_to_a_tls_node() -> None:
    async def main() -> None:
        tls_node = _node(1, RecordingHandler(), trustme.CA())
        strangers = [_node(2, RecordingHandler(), trustme.CA()), _node(3, RecordingHandler(), None)]
        async with trio.open_nursery() as nursery:
            await nursery.start(tls_node.run)
            for stranger in strangers:
                await nursery.start(stranger.run)
                stranger.set_peer_address(1, "127.0.0.1", tls_node.bound_port or 0)
                with trio.fail_after(10), pytest.raises(PeerUnavailable):
                    await stranger.call(1, "anything", b"", 5.0)
            assert tls_node.statistics().peers == {}
            nursery.cancel_scope.cancel()

    trio.run(main)
