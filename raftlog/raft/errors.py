"""Errors the core raises to its caller.

Each says which rule refused the request, so that the shell can map it to a Kafka error
code (NOT_LEADER_OR_FOLLOWER, a retriable throttle, or a permanent refusal).
"""

from __future__ import annotations


class RaftError(Exception):
    """Base of every error the core raises on purpose."""


class RaftUsageError(RaftError):
    """The caller broke the API contract (e.g. ready() twice without advance())."""


class ProposalDropped(RaftError):
    """A proposal was refused; nothing was appended."""


class NotLeader(ProposalDropped):
    """Only the leader accepts this request; ``leader_id`` is the best guess (0 if unknown)."""

    def __init__(self, leader_id: int) -> None:
        super().__init__(f"not the leader (leader is {leader_id or 'unknown'})")
        self.leader_id = leader_id


class TransferInProgress(ProposalDropped):
    """Leadership is being handed to another node; retry against the new leader."""


class GroupSealed(ProposalDropped):
    """A SEAL entry is in the log; the group accepts no further data."""


class ConfigChangePending(ProposalDropped):
    """Only one uncommitted config change at a time, and only after the leader's first commit."""


class UncommittedLimitExceeded(ProposalDropped):
    """The leader holds too many uncommitted bytes; retry after commits catch up."""


class ReadIndexLimitExceeded(RaftError):
    """Too many ReadIndex requests are waiting for a quorum; retry later."""


class LogCompacted(RaftError):
    """The requested index is below the first index the storage still holds."""


class LogUnavailable(RaftError):
    """The requested index is above the last index the storage holds."""


class SnapshotTemporarilyUnavailable(RaftError):
    """The storage cannot produce a snapshot right now; the leader will retry later."""
