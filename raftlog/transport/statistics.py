"""Frozen snapshots of the transport's counters, safe to hand to another task."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from raftlog.transport.channels import Channel


@attrs.frozen
class ChannelStatistics:
    messages_sent: int
    """Handed to the connection (framed into HTTP/2 DATA), not confirmed delivered."""
    bytes_sent: int
    messages_received: int
    bytes_received: int
    messages_dropped_full: int
    """Refused by send_nowait because the queue was at its bound."""
    messages_dropped_disconnected: int
    """Queued when the connection was lost or could not be made."""
    queue_depth_messages: int
    queue_depth_bytes: int


@attrs.frozen
class PeerStatistics:
    peer_id: int
    address: tuple[str, int] | None
    connected: bool
    dialled_by_us: bool | None
    """Which end dialled the connection in use; None when not connected."""
    connections_established: int
    reconnects: int
    connect_failures: int
    calls_in_flight_outbound: int
    calls_in_flight_inbound: int
    channels: Mapping[Channel, ChannelStatistics]


@attrs.frozen
class TransportStatistics:
    node_id: int
    bound_port: int | None
    incarnation: int
    inbound_connections_open: int
    connections_refused: int
    protocol_violations: int
    messages_dropped_unknown_peer: int
    handler_errors: int
    peers: Mapping[int, PeerStatistics]
