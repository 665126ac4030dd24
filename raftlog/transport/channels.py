"""The kinds of traffic between two nodes, each on its own long-lived HTTP/2 stream.

Separate streams are what keep a bulk snapshot from delaying a heartbeat: HTTP/2 flow
control and our write scheduler work per stream, so a stalled or huge SNAPSHOT stream
never holds back bytes queued on HEARTBEAT or RAFT.
"""

from __future__ import annotations

import enum


class Channel(enum.IntEnum):
    HEARTBEAT = 0
    """Coalesced heartbeats of every group one node leads towards one peer."""
    RAFT = 1
    """Appends, votes and their responses."""
    SNAPSHOT = 2
    """Bulk snapshot chunks; sent with `Transport.send` so the sender feels backpressure."""
    RPC = 3
    """Request/response envelopes of `Transport.call` (controller calls, forwarded reads)."""


# Order in which the writer serves channels in each round. Heartbeats first because a late
# heartbeat starts an election; RPC before SNAPSHOT because RPCs are latency-bound.
WRITE_PRIORITY: tuple[Channel, ...] = (
    Channel.HEARTBEAT,
    Channel.RAFT,
    Channel.RPC,
    Channel.SNAPSHOT,
)

# Channels an application may use with send_nowait/send; RPC goes through `call`.
MESSAGE_CHANNELS: tuple[Channel, ...] = (Channel.HEARTBEAT, Channel.RAFT, Channel.SNAPSHOT)


def channel_path(channel: Channel) -> bytes:
    """The HTTP/2 `:path` of a channel's stream."""
    return b"/raftlog/v1/channel/" + channel.name.lower().encode("ascii")


PATH_TO_CHANNEL: dict[bytes, Channel] = {channel_path(c): c for c in Channel}
HELLO_PATH = b"/raftlog/v1/hello"
