"""The log as the core sees it: the stable storage with the unstable tail on top."""

from __future__ import annotations

import attrs

from raftlog.invariant import invariant
from raftlog.raft.entry import Entry, Snapshot
from raftlog.raft.errors import LogCompacted, LogUnavailable
from raftlog.raft.storage import LogStorage
from raftlog.raft.unstable import UnstableLog


@attrs.define(eq=False)
class RaftLog:
    storage: LogStorage
    unstable: UnstableLog
    committed: int
    applying: int
    """Highest index handed to the application in a Ready (not yet necessarily applied)."""
    applied: int
    """Highest index the application confirmed applied (through ``advance``)."""

    @classmethod
    def open(cls, storage: LogStorage, committed: int, applied: int) -> RaftLog:
        first = storage.first_index()
        last = storage.last_index()
        invariant(committed <= last, f"log: commit {committed} beyond last index {last}")
        floor = first - 1
        applied = max(applied, floor)
        invariant(applied <= committed or applied == floor, "log: applied beyond commit")
        return cls(storage, UnstableLog(last + 1), max(committed, floor), applied, applied)

    def first_index(self) -> int:
        first = self.unstable.maybe_first_index()
        return first if first is not None else self.storage.first_index()

    def last_index(self) -> int:
        last = self.unstable.maybe_last_index()
        return last if last is not None else self.storage.last_index()

    def persisted_index(self) -> int:
        """Highest index known to be in stable storage and still part of this log."""
        if self.unstable.snapshot is not None:
            return 0  # the log is being replaced by a snapshot; none of it is durable yet
        return min(self.unstable.offset - 1, self.last_index())

    def term(self, index: int) -> int:
        """Term at ``index``; raises ``LogCompacted`` or ``LogUnavailable`` outside the log."""
        if index < self.first_index() - 1:
            raise LogCompacted(f"index {index} is compacted")
        if index > self.last_index():
            raise LogUnavailable(f"index {index} is beyond the last index {self.last_index()}")
        term = self.unstable.maybe_term(index)
        if term is not None:
            return term
        return self.storage.term(index)

    def maybe_term(self, index: int) -> int | None:
        try:
            return self.term(index)
        except (LogCompacted, LogUnavailable):
            return None

    def last_term(self) -> int:
        return self.term(self.last_index())

    def match_term(self, index: int, term: int) -> bool:
        return self.maybe_term(index) == term

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Is a candidate's log (ending at ``last_index``/``last_term``) at least as new?"""
        own_term = self.last_term()
        return last_term > own_term or (last_term == own_term and last_index >= self.last_index())

    def find_conflict(self, entries: list[Entry]) -> int:
        """Index of the first entry that is new or disagrees with ours (0 if none)."""
        for entry in entries:
            if not self.match_term(entry.index, entry.term):
                return entry.index
        return 0

    def find_conflict_by_term(self, index: int, term: int) -> tuple[int, int]:
        """Largest ``(i, term(i))`` with ``i <= index`` and ``term(i) <= term``.

        The fast back-off of the Raft thesis (end of section 5.3): the follower tells the
        leader where its log might still match, skipping a whole term per round trip.
        """
        index = min(index, self.last_index())
        while index > 0:
            own_term = self.maybe_term(index)
            if own_term is None:
                # Compacted: the snapshot point is committed, hence matches the leader.
                return index, 0
            if own_term <= term:
                return index, own_term
            index -= 1
        return 0, 0

    def maybe_append(
        self, previous_index: int, previous_term: int, leader_commit: int, entries: list[Entry]
    ) -> int | None:
        """Append a leader's entries after ``previous_index``; None if the logs disagree there.

        Returns the index of the last entry of the append (the follower may commit up to it).
        """
        if not self.match_term(previous_index, previous_term):
            return None
        last_new = previous_index + len(entries)
        conflict = self.find_conflict(entries)
        if conflict:
            invariant(
                conflict > self.committed,
                f"log: entry {conflict} conflicts with the committed prefix ({self.committed})",
            )
            self.append(entries[conflict - entries[0].index :])
        self.commit_to(min(leader_commit, last_new))
        return last_new

    def append(self, entries: list[Entry]) -> int:
        if not entries:
            return self.last_index()
        invariant(
            entries[0].index - 1 >= self.committed,
            "log: append would overwrite committed entries",
        )
        self.unstable.truncate_and_append(entries)
        return self.last_index()

    def entries(self, low_index: int, max_size_bytes: int) -> list[Entry]:
        if low_index > self.last_index():
            return []
        return self.slice(low_index, self.last_index() + 1, max_size_bytes)

    def slice(self, low_index: int, high_index: int, max_size_bytes: int) -> list[Entry]:
        """Entries ``[low_index, high_index)`` within ``max_size_bytes`` (at least one)."""
        if low_index < self.first_index():
            raise LogCompacted(f"index {low_index} is compacted")
        invariant(high_index <= self.last_index() + 1, "log: slice past the end")
        if low_index >= high_index:
            return []
        result: list[Entry] = []
        offset = self.unstable.offset
        if low_index < offset:
            result = self.storage.entries(low_index, min(high_index, offset), max_size_bytes)
            if len(result) < min(high_index, offset) - low_index:
                return result
        if high_index > offset:
            unstable = self.unstable.slice(max(low_index, offset), high_index)
            result = result + unstable if result else list(unstable)
        return _limit_size(result, max_size_bytes)

    def commit_to(self, index: int) -> None:
        if index <= self.committed:
            return
        invariant(
            index <= self.last_index(),
            f"log: commit {index} beyond the last index {self.last_index()}",
        )
        self.committed = index

    def maybe_commit(self, index: int, term: int) -> bool:
        """Commit up to ``index`` if it is news and its entry is of ``term`` (section 5.4.2)."""
        if index > self.committed and self.maybe_term(index) == term:
            self.commit_to(index)
            return True
        return False

    def has_next_committed_entries(self) -> bool:
        if self.unstable.snapshot is not None:
            return False
        return self.committed > self.applying

    def next_committed_entries(self, max_size_bytes: int) -> list[Entry]:
        if not self.has_next_committed_entries():
            return []
        return self.slice(self.applying + 1, self.committed + 1, max_size_bytes)

    def applying_to(self, index: int) -> None:
        invariant(index <= self.committed, "log: applying beyond the commit index")
        self.applying = max(self.applying, index)

    def applied_to(self, index: int) -> None:
        invariant(index <= self.committed, "log: applied beyond the commit index")
        self.applied = max(self.applied, index)
        self.applying = max(self.applying, index)

    def restore(self, snapshot: Snapshot) -> None:
        index = snapshot.metadata.index
        invariant(index > self.committed, "log: restoring a snapshot behind the commit index")
        self.unstable.restore(snapshot)
        self.committed = index
        self.applying = index

    def stable_to(self, index: int, term: int) -> None:
        self.unstable.stable_to(index, term)

    def stable_snapshot_to(self, index: int) -> None:
        self.unstable.stable_snapshot_to(index)

    def snapshot(self) -> Snapshot:
        if self.unstable.snapshot is not None:
            return self.unstable.snapshot
        return self.storage.snapshot()


def _limit_size(entries: list[Entry], max_size_bytes: int) -> list[Entry]:
    size_bytes = 0
    for position, entry in enumerate(entries):
        size_bytes += entry.size_bytes()
        if position > 0 and size_bytes > max_size_bytes:
            return entries[:position]
    return entries
