"""What nodes of one group say to each other.

Every message names its sender, its recipient and the sender's term; none names the group:
the multi-raft transport wraps messages in an envelope carrying the group id, and coalesces
the heartbeats of many groups (see ``heartbeat_batch``).
"""

from __future__ import annotations

import attrs

from raftlog.raft.entry import Entry


@attrs.frozen
class RequestPreVote:
    """Would you vote for me at ``term``? Changes nobody's term (thesis section 9.6)."""

    from_id: int
    to_id: int
    term: int
    """The term the sender would campaign at (its own term + 1)."""
    last_log_index: int
    last_log_term: int


@attrs.frozen
class RequestPreVoteResponse:
    from_id: int
    to_id: int
    term: int
    """The requested term when granted, the responder's own term when refused."""
    granted: bool


@attrs.frozen
class RequestVote:
    from_id: int
    to_id: int
    term: int
    last_log_index: int
    last_log_term: int
    leadership_transfer: bool = False
    """Sent on TimeoutNow: voters ignore their leader lease for it (thesis section 3.10)."""


@attrs.frozen
class RequestVoteResponse:
    from_id: int
    to_id: int
    term: int
    granted: bool


@attrs.frozen
class AppendEntries:
    from_id: int
    to_id: int
    term: int
    previous_log_index: int
    previous_log_term: int
    leader_commit: int
    entries: tuple[Entry, ...] = ()


@attrs.frozen
class AppendEntriesResponse:
    from_id: int
    to_id: int
    term: int
    index: int
    """Accepted: last index now known to match. Rejected: the previous index refused."""
    rejected: bool = False
    reject_hint_index: int = 0
    """Rejected: the largest index whose term is at most ``reject_hint_term`` (fast back-off)."""
    reject_hint_term: int = 0


@attrs.frozen
class Heartbeat:
    from_id: int
    to_id: int
    term: int
    commit: int
    """The leader's commit index, capped at what the follower is known to hold."""
    read_sequence: int = 0
    """ReadIndex round this heartbeat confirms (echoed in the response); 0 if none."""
    quiesce: bool = False
    """The leader is idle and will stop heartbeating; the follower may stop ticking."""


@attrs.frozen
class HeartbeatResponse:
    from_id: int
    to_id: int
    term: int
    read_sequence: int = 0


@attrs.frozen
class InstallSnapshot:
    """One chunk of a snapshot; the follower reassembles them in order."""

    from_id: int
    to_id: int
    term: int
    snapshot_index: int
    snapshot_term: int
    voters: tuple[int, ...]
    learners: tuple[int, ...]
    seal_index: int
    total_size_bytes: int
    offset_bytes: int
    data: bytes


@attrs.frozen
class InstallSnapshotResponse:
    from_id: int
    to_id: int
    term: int
    snapshot_index: int
    next_offset_bytes: int
    """Where the follower wants the next chunk to start (0 after losing its buffer)."""


@attrs.frozen
class TimeoutNow:
    """Campaign now, ignoring your election timer: leadership transfer (thesis 3.10)."""

    from_id: int
    to_id: int
    term: int


@attrs.frozen
class ReadIndexRequest:
    """A follower forwards a linearizable read to the leader."""

    from_id: int
    to_id: int
    term: int
    context: bytes


@attrs.frozen
class ReadIndexResponse:
    from_id: int
    to_id: int
    term: int
    index: int
    context: bytes


Message = (
    RequestPreVote
    | RequestPreVoteResponse
    | RequestVote
    | RequestVoteResponse
    | AppendEntries
    | AppendEntriesResponse
    | Heartbeat
    | HeartbeatResponse
    | InstallSnapshot
    | InstallSnapshotResponse
    | TimeoutNow
    | ReadIndexRequest
    | ReadIndexResponse
)

MESSAGE_TYPES: tuple[type, ...] = (
    RequestPreVote,
    RequestPreVoteResponse,
    RequestVote,
    RequestVoteResponse,
    AppendEntries,
    AppendEntriesResponse,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    InstallSnapshotResponse,
    TimeoutNow,
    ReadIndexRequest,
    ReadIndexResponse,
)
