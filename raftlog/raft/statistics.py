"""A frozen snapshot of a node's state, for monitoring and for tests."""

from __future__ import annotations

import attrs

from raftlog.raft.membership import Membership
from raftlog.raft.progress import ProgressState
from raftlog.raft.ready import Role


@attrs.frozen
class PeerProgress:
    node_id: int
    match_index: int
    next_index: int
    state: ProgressState
    is_learner: bool
    recent_active: bool
    inflight_messages: int
    inflight_bytes: int


@attrs.frozen
class RaftStatistics:
    node_id: int
    term: int
    vote: int
    role: Role
    leader_id: int
    commit_index: int
    applied_index: int
    first_index: int
    last_index: int
    membership: Membership
    seal_index: int
    """Index of the SEAL entry in the log, 0 if none."""
    sealed: bool
    """A SEAL entry is committed: the group is immutable."""
    quiescent: bool
    lead_transferee: int
    progress: tuple[PeerProgress, ...]
    """Per-peer replication state (leader only; empty elsewhere)."""
