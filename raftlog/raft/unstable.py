"""Entries and a snapshot the core accepted but the application has not yet persisted.

``offset`` is the index of the first unstable entry. Everything below it is in the stable
storage; stored entries at or above it are stale and will be overwritten by the next Ready.
"""

from __future__ import annotations

import attrs

from raftlog.invariant import invariant
from raftlog.raft.entry import Entry, Snapshot


@attrs.define(eq=False)
class UnstableLog:
    offset: int
    entries: list[Entry] = attrs.field(factory=list)
    snapshot: Snapshot | None = None

    def maybe_first_index(self) -> int | None:
        if self.snapshot is not None:
            return self.snapshot.metadata.index + 1
        return None

    def maybe_last_index(self) -> int | None:
        if self.entries:
            return self.offset + len(self.entries) - 1
        if self.snapshot is not None:
            return self.snapshot.metadata.index
        return None

    def maybe_term(self, index: int) -> int | None:
        if index < self.offset:
            if self.snapshot is not None and self.snapshot.metadata.index == index:
                return self.snapshot.metadata.term
            return None
        last = self.maybe_last_index()
        if last is None or index > last:
            return None
        return self.entries[index - self.offset].term

    def stable_to(self, index: int, term: int) -> None:
        """Entries up to ``index`` (of ``term``) are persisted; drop them if still ours."""
        if index < self.offset or self.maybe_term(index) != term:
            return
        del self.entries[: index + 1 - self.offset]
        self.offset = index + 1

    def stable_snapshot_to(self, index: int) -> None:
        if self.snapshot is not None and self.snapshot.metadata.index == index:
            self.snapshot = None

    def restore(self, snapshot: Snapshot) -> None:
        self.offset = snapshot.metadata.index + 1
        self.entries = []
        self.snapshot = snapshot

    def truncate_and_append(self, entries: list[Entry]) -> None:
        first = entries[0].index
        if first == self.offset + len(self.entries):
            self.entries.extend(entries)
        elif first <= self.offset:
            # Replaces everything unstable and some stable entries: storage truncates them.
            self.offset = first
            self.entries = list(entries)
        else:
            del self.entries[first - self.offset :]
            self.entries.extend(entries)
        invariant(
            not self.entries or self.entries[0].index == self.offset,
            "unstable: first entry does not sit at the offset",
        )

    def slice(self, low_index: int, high_index: int) -> list[Entry]:
        invariant(low_index >= self.offset, "unstable: slice below the offset")
        invariant(high_index <= self.offset + len(self.entries), "unstable: slice past the end")
        return self.entries[low_index - self.offset : high_index - self.offset]
