"""The stable log the application owns, and an in-memory implementation of it.

The core reads the stable log through ``LogStorage`` and never writes it: writes reach the
application through ``Ready`` (entries, hard state, snapshot) and the application persists
them before calling ``advance``. An on-disk implementation maps entry index to the batch
ordinal in a segment file and reads ``term(i)`` from the batch header.

Indexes: the storage holds entries ``first_index() .. last_index()``; the entry just before
``first_index()`` is covered by the latest snapshot, whose term ``term(first_index() - 1)``
must still answer (the core needs it to check the append just after the snapshot).
"""

from __future__ import annotations

import itertools
from typing import Protocol

import attrs

from raftlog.invariant import invariant
from raftlog.raft.entry import Entry, EntryKind, HardState, Snapshot, SnapshotMetadata
from raftlog.raft.errors import LogCompacted, LogUnavailable
from raftlog.raft.membership import Membership, decode_config_change_record


class LogStorage(Protocol):
    """Read access to the durable log (like etcd's ``Storage``)."""

    def initial_state(self) -> tuple[HardState, SnapshotMetadata]:
        """Persisted hard state and the metadata of the latest snapshot (index 0 if none).

        The core rebuilds the current membership from the snapshot's and the CONFIG_CHANGE
        entries after it, since changes take effect on append.
        """
        ...

    def entries(self, low_index: int, high_index: int, max_size_bytes: int) -> list[Entry]:
        """Entries ``[low_index, high_index)`` within ``max_size_bytes`` (at least one).

        Raises ``LogCompacted`` below ``first_index()``, ``LogUnavailable`` above the end.
        """
        ...

    def term(self, index: int) -> int:
        """Term of the entry at ``index``, valid for ``first_index() - 1 .. last_index()``."""
        ...

    def first_index(self) -> int:
        """Index of the first entry still held (snapshot index + 1)."""
        ...

    def last_index(self) -> int:
        """Index of the last entry held (the snapshot index if no entry follows it)."""
        ...

    def snapshot(self) -> Snapshot:
        """Latest snapshot; may raise ``SnapshotTemporarilyUnavailable``."""
        ...


def membership_and_seal_at(
    base: SnapshotMetadata, entries: list[Entry], index: int
) -> tuple[Membership, int]:
    """Membership and seal index in force at ``index``, given the entries after ``base``."""
    membership = base.membership
    seal_index = base.seal_index
    for entry in entries:
        if entry.index > index:
            break
        if entry.kind == EntryKind.CONFIG_CHANGE:
            membership = decode_config_change_record(entry.payload).membership
        elif entry.kind == EntryKind.SEAL and seal_index == 0:
            seal_index = entry.index
    return membership, seal_index


@attrs.define(eq=False)
class MemoryStorage:
    """``LogStorage`` in memory, with the write side the simulator and tests drive.

    Holds entries ``first_index .. last_index``; ``_previous_term`` is the term of the entry
    just before them (compacted, or the snapshot's).
    """

    _hard_state: HardState
    _snapshot: Snapshot
    _first_index: int
    _previous_term: int
    _entries: list[Entry] = attrs.field(factory=list)

    @classmethod
    def bootstrap(cls, membership: Membership) -> MemoryStorage:
        """A fresh storage whose initial membership is ``membership`` (an empty set for a
        node that will join as a learner and learn the membership from the log)."""
        return cls(HardState(), Snapshot(SnapshotMetadata(0, 0, membership)), 1, 0)

    def initial_state(self) -> tuple[HardState, SnapshotMetadata]:
        return self._hard_state, self._snapshot_metadata_at_first_index()

    def _snapshot_metadata_at_first_index(self) -> SnapshotMetadata:
        """The snapshot metadata, rolled forward to ``first_index - 1`` if it lags behind it."""
        metadata = self._snapshot.metadata
        invariant(metadata.index == self._first_index - 1, "storage: snapshot and log disagree")
        return metadata

    def first_index(self) -> int:
        return self._first_index

    def last_index(self) -> int:
        return self._first_index + len(self._entries) - 1

    def term(self, index: int) -> int:
        if index < self._first_index - 1:
            raise LogCompacted(f"index {index} is compacted (first is {self._first_index})")
        if index > self.last_index():
            raise LogUnavailable(f"index {index} is past the last index {self.last_index()}")
        if index == self._first_index - 1:
            return self._previous_term
        return self._entries[index - self._first_index].term

    def entries(self, low_index: int, high_index: int, max_size_bytes: int) -> list[Entry]:
        if low_index < self._first_index:
            raise LogCompacted(f"index {low_index} is compacted (first is {self._first_index})")
        if high_index > self.last_index() + 1:
            raise LogUnavailable(f"index {high_index - 1} is past {self.last_index()}")
        offset = self._first_index
        result: list[Entry] = []
        size_bytes = 0
        for entry in self._entries[low_index - offset : high_index - offset]:
            size_bytes += entry.size_bytes()
            if result and size_bytes > max_size_bytes:
                break
            result.append(entry)
        return result

    def snapshot(self) -> Snapshot:
        return self._snapshot

    def hard_state(self) -> HardState:
        return self._hard_state

    # The write side: what the application does with a Ready.

    def set_hard_state(self, hard_state: HardState) -> None:
        self._hard_state = hard_state

    def append(self, entries: tuple[Entry, ...] | list[Entry]) -> None:
        """Persist ``entries``, first dropping every stored entry at or after the first one."""
        if not entries:
            return
        first = entries[0].index
        invariant(first >= self._first_index, "storage: append below the first index")
        invariant(first <= self.last_index() + 1, "storage: append leaves a gap")
        for previous, entry in itertools.pairwise(entries):
            invariant(entry.index == previous.index + 1, "storage: appended entries not contiguous")
        del self._entries[first - self._first_index :]
        self._entries.extend(entries)

    def apply_snapshot(self, snapshot: Snapshot) -> None:
        """Replace the whole log with ``snapshot`` (received from the leader)."""
        invariant(
            snapshot.metadata.index >= self._snapshot.metadata.index,
            "storage: snapshot older than the current one",
        )
        self._snapshot = snapshot
        self._first_index = snapshot.metadata.index + 1
        self._previous_term = snapshot.metadata.term
        self._entries = []

    def create_snapshot_and_compact(self, index: int, data: bytes) -> Snapshot:
        """Record the application's state as of ``index`` (already applied) as the snapshot
        and drop the entries it covers."""
        invariant(index >= self._snapshot.metadata.index, "storage: snapshot goes backwards")
        invariant(index >= self._first_index - 1, "storage: snapshot below the first index")
        invariant(index <= self.last_index(), "storage: snapshot beyond the log")
        covered = self._entries[: index - self._first_index + 1]
        base = self._snapshot_metadata_at_first_index()
        membership, seal_index = membership_and_seal_at(base, covered, index)
        metadata = SnapshotMetadata(index, self.term(index), membership, seal_index)
        self._snapshot = Snapshot(metadata, data)
        self._previous_term = metadata.term
        del self._entries[: index - self._first_index + 1]
        self._first_index = index + 1
        return self._snapshot
