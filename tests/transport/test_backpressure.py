"""A peer that stops reading gets drops (send_nowait) or waits (send), never our memory."""

from __future__ import annotations

import pytest
import trio

from raftlog.transport import Channel, Transport, TransportLimits
from raftlog.transport.session import HelloReceived, Session
from raftlog.transport.testing import RecordingHandler

MESSAGE = bytes(16 * 1024)


async def _stalled_h2_peer(
    listener_ready: trio.Event, port_box: list[int], handshake_done: trio.Event
) -> None:
    """Node 2 as a real HTTP/2 peer that accepts the hello, then never reads again."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port_box.append(listeners[0].socket.getsockname()[1])
    listener_ready.set()
    stream = await listeners[0].accept()
    small = TransportLimits(stream_window_bytes=65_535, connection_window_bytes=65_535)
    session = Session(client_side=False, node_id=2, incarnation=1, limits=small)
    while len(session.open_channels) < len(Channel):
        for event in session.receive_data(await stream.receive_some(65_536)):
            if isinstance(event, HelloReceived):
                session.accept_hello()
        await stream.send_all(session.data_to_send())
    handshake_done.set()
    await trio.sleep_forever()  # holds the socket open, reads nothing


def test_stalled_peer_gets_drops_and_waits_and_memory_stays_bounded() -> None:
    limits = TransportLimits(
        queue_messages_max=50,
        queue_bytes_max=50 * len(MESSAGE),
        message_size_bytes_max=len(MESSAGE),
        keepalive_interval_s=0.5,
        keepalive_timeout_s=3.0,
    )

    async def main() -> None:
        ready, handshake_done, port_box = trio.Event(), trio.Event(), []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_stalled_h2_peer, ready, port_box, handshake_done)
            await ready.wait()
            transport = Transport(
                node_id=1,
                listen_host="127.0.0.1",
                listen_port=0,
                handler=RecordingHandler(),
                peer_addresses={2: ("127.0.0.1", port_box[0])},
                limits=limits,
            )
            await nursery.start(transport.run)
            with trio.fail_after(10):
                assert transport.send_nowait(2, Channel.HEARTBEAT, b"dial")
                await handshake_done.wait()
                while not transport.statistics().peers[2].connected:
                    await trio.sleep(0.01)
                accepted = 0
                for _round in range(5):
                    while transport.send_nowait(2, Channel.RAFT, MESSAGE):
                        accepted += 1
                    await trio.sleep(0.1)  # let the writer fill what the peer's window allows
            raft = transport.statistics().peers[2].channels[Channel.RAFT]
            # The queue sits exactly at its bound; beyond it only the peer's 64 KiB window
            # and one write round (256 KiB) were taken from it.
            assert raft.queue_depth_messages == limits.queue_messages_max
            assert raft.queue_depth_bytes <= limits.queue_bytes_max
            taken_bytes_max = 65_535 + limits.write_round_bytes_max + len(MESSAGE)
            assert raft.bytes_sent <= taken_bytes_max
            assert accepted == raft.messages_sent + raft.queue_depth_messages
            assert raft.messages_dropped_full == 5
            assert not transport.send_nowait(2, Channel.RAFT, MESSAGE)

            with trio.move_on_after(0.3) as waited:
                await transport.send(2, Channel.RAFT, MESSAGE)
            assert waited.cancelled_caught, "send must wait while the queue is full"

            # The peer never answers pings: the watchdog closes the connection and the
            # queue is released (counted as dropped), so a dead peer holds no memory.
            with trio.fail_after(10):
                while transport.statistics().peers[2].connected:
                    await trio.sleep(0.05)
            raft = transport.statistics().peers[2].channels[Channel.RAFT]
            assert raft.queue_depth_messages == 0
            assert raft.messages_dropped_disconnected == limits.queue_messages_max
            nursery.cancel_scope.cancel()

    trio.run(main)


@pytest.mark.parametrize("payload_size", [1, 1000])
def test_peer_that_accepts_but_never_speaks_fills_the_queue_then_fails(payload_size: int) -> None:
    """A TCP server that accepts and never reads: the hello never completes."""
    limits = TransportLimits(queue_messages_max=20, connect_timeout_s=0.5)

    async def main() -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        accepted: list[trio.SocketStream] = []

        async def accept_and_ignore() -> None:
            while True:
                accepted.append(await listeners[0].accept())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(accept_and_ignore)
            transport = Transport(
                node_id=1,
                listen_host="127.0.0.1",
                listen_port=0,
                handler=RecordingHandler(),
                peer_addresses={2: ("127.0.0.1", port)},
                limits=limits,
            )
            await nursery.start(transport.run)
            results = [
                transport.send_nowait(2, Channel.RAFT, b"x" * payload_size) for _ in range(25)
            ]
            assert results == [True] * 20 + [False] * 5
            start_s = trio.current_time()
            with trio.fail_after(5):
                while transport.statistics().peers[2].connect_failures == 0:
                    await trio.sleep(0.02)
            assert trio.current_time() - start_s >= 0.4  # the hello deadline, not sooner
            raft = transport.statistics().peers[2].channels[Channel.RAFT]
            assert (raft.messages_dropped_full, raft.messages_dropped_disconnected) == (5, 20)
            assert raft.messages_sent == 0
            nursery.cancel_scope.cancel()
        for stream in accepted:
            await stream.aclose()

    trio.run(main)
