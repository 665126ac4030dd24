"""The sans-IO Raft core: a RawNode in the manner of etcd-io/raft.

It never touches a socket, a file or a clock and draws randomness only from the source in
its config. See ``node.py`` for the driving API and ``ready.py`` for the Ready contract.
"""

from raftlog.raft.bootstrap import fresh_group_hard_state
from raftlog.raft.codec import CodecError, decode, encode
from raftlog.raft.config import RaftConfig, RandomSource
from raftlog.raft.entry import (
    NO_NODE,
    Entry,
    EntryKind,
    HardState,
    ReadState,
    Snapshot,
    SnapshotMetadata,
)
from raftlog.raft.errors import (
    ConfigChangePending,
    GroupSealed,
    LogCompacted,
    LogUnavailable,
    NotLeader,
    ProposalDropped,
    RaftError,
    RaftUsageError,
    ReadIndexLimitExceeded,
    SnapshotTemporarilyUnavailable,
    TransferInProgress,
    UncommittedLimitExceeded,
)
from raftlog.raft.heartbeat_batch import (
    GroupHeartbeat,
    GroupHeartbeatResponse,
    HeartbeatBatch,
    HeartbeatResponseBatch,
    coalesce_heartbeats,
    fan_out,
)
from raftlog.raft.membership import (
    ConfigChange,
    ConfigChangeKind,
    InvalidConfigChange,
    Membership,
    encode_config_change,
)
from raftlog.raft.messages import Message
from raftlog.raft.node import RawNode
from raftlog.raft.ready import Ready, Role, SoftState
from raftlog.raft.statistics import PeerProgress, RaftStatistics
from raftlog.raft.storage import LogStorage, MemoryStorage

__all__ = [
    "NO_NODE",
    "CodecError",
    "ConfigChange",
    "ConfigChangeKind",
    "ConfigChangePending",
    "Entry",
    "EntryKind",
    "GroupHeartbeat",
    "GroupHeartbeatResponse",
    "GroupSealed",
    "HardState",
    "HeartbeatBatch",
    "HeartbeatResponseBatch",
    "InvalidConfigChange",
    "LogCompacted",
    "LogStorage",
    "LogUnavailable",
    "Membership",
    "MemoryStorage",
    "Message",
    "NotLeader",
    "PeerProgress",
    "ProposalDropped",
    "RaftConfig",
    "RaftError",
    "RaftStatistics",
    "RaftUsageError",
    "RandomSource",
    "RawNode",
    "ReadIndexLimitExceeded",
    "ReadState",
    "Ready",
    "Role",
    "Snapshot",
    "SnapshotMetadata",
    "SnapshotTemporarilyUnavailable",
    "SoftState",
    "TransferInProgress",
    "UncommittedLimitExceeded",
    "coalesce_heartbeats",
    "decode",
    "encode",
    "encode_config_change",
    "fan_out",
    "fresh_group_hard_state",
]
