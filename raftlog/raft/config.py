"""Every bound the core obeys, validated once at construction."""

from __future__ import annotations

from typing import Protocol

import attrs


class RandomSource(Protocol):
    """The only source of randomness the core uses (``random.Random`` satisfies it)."""

    def randint(self, a: int, b: int) -> int: ...


def _positive(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{attribute.name} must be a positive integer, got {value!r}")


def _non_negative(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{attribute.name} must be a non-negative integer, got {value!r}")


TEST_BUGS = frozenset({"count_stale_votes", "commit_previous_term_by_count"})
"""Deliberate bugs a test may switch on to prove that the simulator's checkers can fail."""


@attrs.frozen
class RaftConfig:
    """Configuration of one node in one group."""

    node_id: int = attrs.field(validator=_positive)
    """This node's id (ids start at 1)."""
    random_source: RandomSource = attrs.field(eq=False)
    """Draws the randomized election timeout; inject a seeded one for determinism."""
    election_tick: int = attrs.field(default=10, validator=_positive)
    """Ticks without hearing from a leader before campaigning (randomized in [n, 2n))."""
    heartbeat_tick: int = attrs.field(default=1, validator=_positive)
    """Ticks between leader heartbeats."""
    max_size_per_message_bytes: int = attrs.field(default=1 << 20, validator=_positive)
    """Byte budget of the entries in one append message (at least one entry is always sent)."""
    max_inflight_messages: int = attrs.field(default=256, validator=_positive)
    """Append messages in flight to one follower in the replicate state."""
    max_inflight_bytes: int = attrs.field(default=8 << 20, validator=_positive)
    """Entry bytes in flight to one follower in the replicate state. Half the transport's
    queue per peer (`TransportLimits.queue_bytes_max`): a leader allowed more outran a
    follower's queue under a pipelined producer, the appends that did not fit were
    dropped, and the follower's rejection had them sent again, read back from the files
    (the recent-entries cache had let them go as sent). Groups that share a peer share
    its queue; `raftlog_transport_messages_dropped_total` shows when they outrun it."""
    max_uncommitted_entries_size_bytes: int = attrs.field(default=64 << 20, validator=_positive)
    """Payload bytes a leader accepts beyond its commit index before refusing proposals."""
    max_committed_size_per_ready_bytes: int = attrs.field(default=4 << 20, validator=_positive)
    """Byte budget of the committed entries handed out in one Ready."""
    max_entry_payload_bytes: int = attrs.field(default=8 << 20, validator=_positive)
    """Largest payload a single proposal may carry."""
    snapshot_chunk_size_bytes: int = attrs.field(default=1 << 20, validator=_positive)
    """Bytes of snapshot data in one InstallSnapshot chunk."""
    max_snapshot_size_bytes: int = attrs.field(default=1 << 32, validator=_positive)
    """Largest snapshot a follower agrees to reassemble in memory."""
    max_pending_read_index_requests: int = attrs.field(default=4096, validator=_positive)
    """ReadIndex requests waiting for a heartbeat quorum before new ones are refused."""
    max_read_context_bytes: int = attrs.field(default=256, validator=_positive)
    """Largest caller context a ReadIndex request may carry."""
    applied_index: int = attrs.field(default=0, validator=_non_negative)
    """Last index the application applied before a restart (0: the snapshot index)."""
    pre_vote: bool = True
    """Campaign only after a pre-vote round shows that a quorum would vote (thesis 9.6)."""
    check_quorum: bool = True
    """A leader steps down without a quorum of recent contacts; votes are refused in its lease."""
    repair_floor: int = attrs.field(default=0, validator=_non_negative)
    """The last index this node held before it cut corrupt entries from its log (0: none).
    Until its log reaches it again the node neither campaigns nor votes for a candidate
    whose log could be behind what it held (see ``raftlog.storage.repair``)."""
    repair_floor_term: int = attrs.field(default=0, validator=_non_negative)
    """An upper bound of the term of the entry at ``repair_floor`` (the hard state's term)."""
    broadcast_commit: bool = True
    """A leader tells followers of a new commit index at once, with an empty append to
    each when nothing else goes out. False leaves it to the next append or heartbeat (at
    most ``heartbeat_tick`` ticks later, as Redpanda's heartbeats carry it): a lone write
    then costs one round of messages, not two, and the second round's sends no longer
    run ahead of the answer to the client. For groups whose followers need not apply
    promptly: a partition's segments are served by their leader, while the controller's
    followers apply metadata that their own clients wait for."""
    lead_fresh_group: bool = False
    """Start as leader of the hard state's term without an election: only for the first
    voter of a group created just now, on the run that persisted
    ``raftlog.raft.bootstrap.fresh_group_hard_state`` on every voter (never on a restart;
    see that module for why this is safe)."""
    test_bug: str | None = attrs.field(default=None)
    """Test-only: switch on a deliberate bug from ``TEST_BUGS``. Never set in production."""

    def __attrs_post_init__(self) -> None:
        if self.heartbeat_tick >= self.election_tick:
            raise ValueError(
                f"heartbeat_tick ({self.heartbeat_tick}) must be below "
                f"election_tick ({self.election_tick})"
            )
        if self.snapshot_chunk_size_bytes > self.max_size_per_message_bytes:
            raise ValueError("snapshot_chunk_size_bytes must not exceed max_size_per_message_bytes")
        if self.max_entry_payload_bytes > self.max_uncommitted_entries_size_bytes:
            raise ValueError(
                "max_entry_payload_bytes must not exceed max_uncommitted_entries_size_bytes"
            )
        if self.test_bug is not None and self.test_bug not in TEST_BUGS:
            raise ValueError(f"unknown test_bug {self.test_bug!r}; known: {sorted(TEST_BUGS)}")
        if not callable(getattr(self.random_source, "randint", None)):
            raise ValueError("random_source must have a randint(a, b) method")
