"""DATA frames written beside h2 are byte for byte what h2 writes, and carry every message,
whether handed over whole or in parts."""

from __future__ import annotations

import h2.connection
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raftlog.transport import Channel, Gathered, Payload, data_frames, session
from raftlog.transport.limits import TransportLimits
from raftlog.transport.queues import ChannelQueue
from raftlog.transport.session import HelloReceived, MessagesReceived, Session

LIMITS = TransportLimits(
    message_size_bytes_max=64 * 1024,
    stream_window_bytes=65_535,
    connection_window_bytes=65_535,
    frame_size_bytes_max=16_384,
    write_round_bytes_max=20_000,
)


def test_direct_frames_match_this_h2() -> None:
    assert data_frames.AVAILABLE, "the installed h2 no longer matches: sessions use send_data"


def test_a_mismatch_with_h2_turns_direct_frames_off(monkeypatch: pytest.MonkeyPatch) -> None:
    account = data_frames.account_data_frame

    def forgets_the_connection_window(
        connection: h2.connection.H2Connection, stream_id: int, size_bytes: int
    ) -> bytes:
        header = account(connection, stream_id, size_bytes)
        connection.outbound_flow_control_window += size_bytes
        return header

    monkeypatch.setattr(data_frames, "account_data_frame", forgets_the_connection_window)
    assert not data_frames._matches_h2()


def _exchange(
    messages: list[tuple[Channel, Payload]], direct: bool, monkeypatch: pytest.MonkeyPatch
) -> tuple[bytes, dict[Channel, list[bytes]]]:
    """Send `messages` from a dialler to an acceptor, in memory; the dialler's wire bytes
    and what the acceptor received on each channel."""
    monkeypatch.setattr(session, "DIRECT_DATA_FRAMES", direct)
    client = Session(client_side=True, node_id=1, incarnation=1, limits=LIMITS)
    server = Session(client_side=False, node_id=2, incarnation=1, limits=LIMITS)
    client.start_client(expected_peer_id=2)
    queues = {channel: ChannelQueue(messages_max=1000, bytes_max=1 << 24) for channel in Channel}
    for channel, payload in messages:
        assert queues[channel].put_nowait(payload)
    wire = bytearray()
    received: dict[Channel, list[bytes]] = {channel: [] for channel in Channel}
    for _round in range(1000):
        client.fill(queues)
        sent = client.data_to_send()
        wire += sent
        for event in server.receive_data(sent):
            if isinstance(event, HelloReceived):
                server.accept_hello()
            elif isinstance(event, MessagesReceived):
                received[event.channel].extend(event.payloads)
        client.receive_data(server.data_to_send())  # answers, acks, window updates
        if not sent and not any(len(queue) for queue in queues.values()):
            break
    return bytes(wire), received


@settings(max_examples=40, deadline=None)
@given(
    messages=st.lists(
        st.tuples(
            st.sampled_from(list(Channel)),
            st.one_of(
                st.binary(max_size=64),
                st.integers(0, 40_000).map(lambda n: b"m" * n),
                st.integers(0, 40_000).map(lambda n: Gathered.of([b"g" * (n // 3), b"h" * n])),
            ),
        ),
        max_size=12,
    )
)
def test_sessions_write_what_h2_would_and_deliver_every_message(
    messages: list[tuple[Channel, Payload]],
) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        direct_wire, direct_received = _exchange(messages, True, monkeypatch)
        h2_wire, h2_received = _exchange(messages, False, monkeypatch)
    assert direct_wire == h2_wire
    assert direct_received == h2_received
    for channel in Channel:
        assert direct_received[channel] == [bytes(p) for c, p in messages if c is channel]
