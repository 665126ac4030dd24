"""The entries a group wrote and has not applied yet, kept in memory.

Every entry is read back at least once after it is written: the Ready loop applies it
once it commits, on the leader and on every follower, and by then the core has handed it
to storage (etcd's "stable" entries). Read from the segment files, each read costs a
pread, a CRC check of the whole batch and the batch's parsing, per entry: a tenth of a
busy leader's event loop when it was profiled, for bytes the process wrote a millisecond
earlier. Kept here, as the entry `SegmentGroupLog.entries` would have built from the
file, until the group has applied it; bounded in bytes, so a group whose commits stall
(a lost quorum) falls back to the files instead of holding its backlog in memory.
"""

from __future__ import annotations

import attrs

from raftlog.raft.entry import Entry

RECENT_BYTES_MAX = 4 << 20
"""Per group: a few produce batches' worth of unapplied entries (an idle group holds none)."""
COMPACT_AT = 256
"""Dropped entries at the list's front are deleted in one go once this many (and half)."""


@attrs.define(eq=False)
class RecentEntries:
    """A contiguous run of written, unapplied entries with the size each takes on disk."""

    bytes_max: int = RECENT_BYTES_MAX
    _entries: list[tuple[Entry, int]] = attrs.field(init=False, factory=list)
    _head: int = attrs.field(init=False, default=0)
    """Entries before `_head` are dropped (a list, not a deque: reads index into it)."""
    _bytes: int = attrs.field(init=False, default=0)

    @property
    def bytes_held(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries) - self._head

    def written(self, entry: Entry, stored_bytes: int) -> None:
        """`entry` was written right after the last one held (or starts a new run)."""
        if len(self) and self._entries[-1][0].index + 1 != entry.index:
            self.clear()
        self._entries.append((entry, stored_bytes))
        self._bytes += stored_bytes
        while self._bytes > self.bytes_max:
            self._drop_first()

    def truncated(self, first_index: int) -> None:
        """Entries from `first_index` on were cut from the log."""
        while len(self) and self._entries[-1][0].index >= first_index:
            _entry, size = self._entries.pop()
            self._bytes -= size

    def applied(self, index: int) -> None:
        """Entries up to `index` were applied: nothing will ask for them soon."""
        while len(self) and self._entries[self._head][0].index <= index:
            self._drop_first()

    def clear(self) -> None:
        self._entries.clear()
        self._head = 0
        self._bytes = 0

    def read(self, low_index: int, count: int, max_bytes: int) -> list[Entry] | None:
        """What the segment files would answer for `count` entries from `low_index` within
        `max_bytes` (at least one), or None if any of them is not held here."""
        if not len(self) or count <= 0:
            return None
        first = self._entries[self._head][0].index
        if low_index < first or low_index + count - 1 > self._entries[-1][0].index:
            return None
        result: list[Entry] = []
        total = 0
        start = self._head + low_index - first
        for entry, size in self._entries[start : start + count]:
            if result and total + size > max_bytes:
                break
            result.append(entry)
            total += size
        return result

    def _drop_first(self) -> None:
        _entry, size = self._entries[self._head]
        self._head += 1
        self._bytes -= size
        if not len(self):
            self.clear()
        elif self._head >= COMPACT_AT and self._head * 2 >= len(self._entries):
            del self._entries[: self._head]
            self._head = 0
