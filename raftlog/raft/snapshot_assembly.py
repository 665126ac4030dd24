"""A follower's buffer for a snapshot arriving in chunks.

Chunks must arrive in order; a chunk that does not continue the buffer is answered with the
offset the follower wants next, so that losses, duplicates and reorders all converge.
The buffer is bounded by ``max_snapshot_size_bytes``.
"""

from __future__ import annotations

import attrs

from raftlog.raft.entry import Snapshot, SnapshotMetadata
from raftlog.raft.membership import Membership
from raftlog.raft.messages import InstallSnapshot


@attrs.define(eq=False)
class SnapshotAssembly:
    index: int
    term: int
    total_size_bytes: int
    data: bytearray = attrs.field(factory=bytearray)

    def matches(self, chunk: InstallSnapshot) -> bool:
        return (
            self.index == chunk.snapshot_index
            and self.term == chunk.snapshot_term
            and self.total_size_bytes == chunk.total_size_bytes
        )

    def accept(self, chunk: InstallSnapshot) -> bool:
        """Append ``chunk`` if it continues the buffer exactly; returns whether it did."""
        if not self.matches(chunk) or chunk.offset_bytes != len(self.data):
            return False
        if len(self.data) + len(chunk.data) > self.total_size_bytes:
            return False
        self.data += chunk.data
        return True

    def complete(self) -> bool:
        return len(self.data) == self.total_size_bytes

    def snapshot(self, membership: Membership, seal_index: int) -> Snapshot:
        metadata = SnapshotMetadata(self.index, self.term, membership, seal_index)
        return Snapshot(metadata, bytes(self.data))
