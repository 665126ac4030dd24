"""Node-to-node transport: opaque messages and RPCs over one HTTP/2 connection per peer pair.

It knows nothing of Raft, Kafka or storage. See ARCHITECTURE.md ("Transport").
"""

from raftlog.transport.channels import Channel
from raftlog.transport.errors import (
    NoSuchMethod,
    PeerUnavailable,
    ProtocolViolation,
    RpcError,
    RpcErrorCode,
    RpcTimeout,
    SameNodeId,
    TransportError,
)
from raftlog.transport.framing import Gathered, Payload
from raftlog.transport.limits import TransportLimits
from raftlog.transport.statistics import ChannelStatistics, PeerStatistics, TransportStatistics
from raftlog.transport.transport import MessageHandler, Transport

__all__ = [
    "Channel",
    "ChannelStatistics",
    "Gathered",
    "MessageHandler",
    "NoSuchMethod",
    "Payload",
    "PeerStatistics",
    "PeerUnavailable",
    "ProtocolViolation",
    "RpcError",
    "RpcErrorCode",
    "RpcTimeout",
    "SameNodeId",
    "Transport",
    "TransportError",
    "TransportLimits",
    "TransportStatistics",
]
