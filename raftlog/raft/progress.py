"""What a leader knows about one follower's log, and how it paces replication to it.

States follow etcd: PROBE sends one append at a time until the follower's position is known;
REPLICATE streams optimistically within the in-flight window; SNAPSHOT waits while the
follower receives a snapshot in chunks.
"""

from __future__ import annotations

import enum

import attrs

from raftlog.invariant import invariant
from raftlog.raft.entry import Snapshot
from raftlog.raft.inflights import Inflights


class ProgressState(enum.Enum):
    PROBE = "probe"
    REPLICATE = "replicate"
    SNAPSHOT = "snapshot"


@attrs.define(eq=False)
class SnapshotTransfer:
    """A snapshot being streamed to one follower, one chunk at a time."""

    snapshot: Snapshot
    acknowledged_offset_bytes: int = 0


@attrs.define(eq=False)
class Progress:
    match_index: int
    next_index: int
    inflights: Inflights
    is_learner: bool = False
    state: ProgressState = ProgressState.PROBE
    probe_sent: bool = False
    """In PROBE, an append is outstanding; wait for its answer (or a heartbeat response)."""
    pending_snapshot_index: int = 0
    snapshot_transfer: SnapshotTransfer | None = None
    recent_active: bool = False
    """Heard from since the last check-quorum round."""
    read_sequence_acknowledged: int = 0
    """Highest ReadIndex heartbeat sequence this follower answered in the current term."""

    def become_probe(self) -> None:
        if self.state == ProgressState.SNAPSHOT:
            self.next_index = max(self.match_index + 1, self.pending_snapshot_index + 1)
        else:
            self.next_index = self.match_index + 1
        self._reset_state(ProgressState.PROBE)

    def forget_beyond(self, last_index: int) -> None:
        """The follower lost entries after `last_index` (it cut corrupt data): probe from
        there. Lowering the match index only makes commit counting more conservative."""
        self.match_index = last_index
        if self.state == ProgressState.SNAPSHOT:
            self.pending_snapshot_index = 0
        self.next_index = last_index + 1
        self._reset_state(ProgressState.PROBE)

    def become_replicate(self) -> None:
        self.next_index = self.match_index + 1
        self._reset_state(ProgressState.REPLICATE)

    def become_snapshot(self, snapshot: Snapshot) -> None:
        self._reset_state(ProgressState.SNAPSHOT)
        self.pending_snapshot_index = snapshot.metadata.index
        self.snapshot_transfer = SnapshotTransfer(snapshot)

    def _reset_state(self, state: ProgressState) -> None:
        self.state = state
        self.probe_sent = False
        self.pending_snapshot_index = 0
        self.snapshot_transfer = None
        self.inflights.reset()

    def maybe_update(self, index: int) -> bool:
        """The follower acknowledged ``index``; returns True if that is news."""
        updated = False
        if self.match_index < index:
            self.match_index = index
            updated = True
            self.probe_sent = False
        self.next_index = max(self.next_index, index + 1)
        return updated

    def maybe_decrease_to(self, rejected_index: int, match_hint_index: int) -> bool:
        """The follower rejected an append at ``rejected_index``; back off (False if stale)."""
        if self.state == ProgressState.REPLICATE:
            if rejected_index <= self.match_index:
                return False
            self.next_index = self.match_index + 1
            return True
        if self.next_index - 1 != rejected_index:
            return False
        self.next_index = max(min(rejected_index, match_hint_index + 1), self.match_index + 1)
        invariant(self.next_index >= 1, "progress: next index below 1")
        self.probe_sent = False
        return True

    def sent_entries(self, last_index: int, size_bytes: int) -> None:
        """An append carrying entries up to ``last_index`` was sent."""
        if self.state == ProgressState.REPLICATE:
            self.next_index = last_index + 1
            self.inflights.add(last_index, size_bytes)
        elif self.state == ProgressState.PROBE:
            self.probe_sent = True

    def is_paused(self) -> bool:
        if self.state == ProgressState.PROBE:
            return self.probe_sent
        if self.state == ProgressState.REPLICATE:
            return self.inflights.full()
        return True
