"""The values the log is made of: entries, hard state, snapshots.

They are plain frozen values so that the core, the storage layer and the simulator can share
them without copying or aliasing surprises.
"""

from __future__ import annotations

import enum

import attrs

from raftlog.raft.membership import Membership

NO_NODE = 0
"""Node ids start at 1; 0 means "nobody" (no vote cast, no known leader)."""

ENTRY_OVERHEAD_BYTES = 24
"""What an entry costs beyond its payload when sizing messages and in-flight windows."""


class EntryKind(enum.IntEnum):
    """What an entry means to the core; the payload of DATA is opaque to it."""

    DATA = 0
    """Application bytes (a Kafka record batch, a controller command)."""
    NOOP = 1
    """Appended by every new leader so that it can commit entries of earlier terms."""
    CONFIG_CHANGE = 2
    """A membership change; the payload is a ``ConfigChangeRecord``. Takes effect on append."""
    SEAL = 3
    """After it, no DATA is accepted; once committed the group is immutable."""


@attrs.frozen
class Entry:
    """One log position."""

    term: int
    """Term of the leader that created the entry."""
    index: int
    """Position in the log, starting at 1."""
    kind: EntryKind
    """What the core must do with the entry besides storing it."""
    payload: bytes | memoryview = b""
    """Opaque application bytes (for CONFIG_CHANGE, the encoded change record). A large
    payload received from a peer is a read-only view of the message that carried it."""

    def size_bytes(self) -> int:
        """Cost of the entry in message and window budgets."""
        return len(self.payload) + ENTRY_OVERHEAD_BYTES


def entries_size_bytes(entries: tuple[Entry, ...] | list[Entry]) -> int:
    return sum(entry.size_bytes() for entry in entries)


@attrs.frozen
class HardState:
    """What must be durable before any message computed from it leaves the node."""

    term: int = 0
    """Latest term this node has seen."""
    vote: int = NO_NODE
    """Candidate voted for in ``term`` (NO_NODE if none)."""
    commit: int = 0
    """Highest index known committed."""


@attrs.frozen
class SnapshotMetadata:
    """Where a snapshot sits in the log and the membership and seal as of that point."""

    index: int
    """Last log index the snapshot covers."""
    term: int
    """Term of the entry at ``index``."""
    membership: Membership
    """Membership in force at ``index`` (the latest CONFIG_CHANGE at or before it)."""
    seal_index: int = 0
    """Index of the SEAL entry at or before ``index``, 0 if the group was not sealed."""


@attrs.frozen
class Snapshot:
    """Application state as of ``metadata.index``; the data is opaque to the core."""

    metadata: SnapshotMetadata
    data: bytes = b""


@attrs.frozen
class ReadState:
    """A linearizable read may be served once the state machine has applied ``index``."""

    index: int
    """Commit index confirmed by a quorum after the read request arrived."""
    context: bytes
    """The caller's request identifier, echoed back."""
