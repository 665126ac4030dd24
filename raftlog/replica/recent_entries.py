"""The entries a group wrote and has not applied yet, kept in memory.

Every entry is read back at least once after it is written: the Ready loop applies it
once it commits, on the leader and on every follower, and by then the core has handed it
to storage (etcd's "stable" entries). Read from the segment files, each read costs a
pread, a CRC check of the whole batch and the batch's parsing, per entry: a tenth of a
busy leader's event loop when it was profiled, for bytes the process wrote a millisecond
earlier. Kept here, as the entry `SegmentGroupLog.entries` would have built from the
file, until the group has applied it; bounded in bytes per group and per process, so
groups whose commits lag (a slow quorum, a lost one) read the rest of their backlog from
the files instead of holding it in memory.
"""

from __future__ import annotations

import weakref

import attrs

from raftlog.raft.entry import Entry

RECENT_BYTES_MAX = 16 << 20
"""Per group: a pipelining producer keeps several 1 MiB batches unapplied at any time."""
PROCESS_BYTES_MAX = 256 << 20
"""All groups of a process together (an idle group holds nothing)."""
COMPACT_AT = 256
"""Dropped entries at the list's front are deleted in one go once this many (and half)."""


@attrs.define(eq=False)
class _Held:
    bytes: int = 0


@attrs.define(eq=False)
class SharedBound:
    """Bytes that many `RecentEntries` hold together, and how many they may."""

    bytes_max: int
    bytes_held: int = 0

    def release(self, held: _Held) -> None:
        self.bytes_held -= held.bytes
        held.bytes = 0


PROCESS_BOUND = SharedBound(PROCESS_BYTES_MAX)


@attrs.define(eq=False)
class RecentEntries:
    """A contiguous run of written, unapplied entries with the size each takes on disk."""

    bytes_max: int = RECENT_BYTES_MAX
    shared: SharedBound = PROCESS_BOUND
    _entries: list[tuple[Entry, int]] = attrs.field(init=False, factory=list)
    _head: int = attrs.field(init=False, default=0)
    """Entries before `_head` are dropped (a list, not a deque: reads index into it)."""
    _held: _Held = attrs.field(init=False, factory=_Held)

    def __attrs_post_init__(self) -> None:
        # A group closed or dropped with entries unapplied gives its share back.
        weakref.finalize(self, self.shared.release, self._held)

    @property
    def bytes_held(self) -> int:
        return self._held.bytes

    def __len__(self) -> int:
        return len(self._entries) - self._head

    def written(self, entry: Entry, stored_bytes: int) -> None:
        """`entry` was written after the last one held (or starts a new run).

        When a bound is reached the newest entries are the ones left out, not the
        oldest: those are the next to be applied. Once one is left out, those after it are
        too, until everything held is applied and a new run starts.
        """
        if len(self) and entry.index <= self._entries[-1][0].index:
            self.clear()  # rewritten without `truncated`: the run restarts
        if not self.takes(entry.index, stored_bytes):
            return
        self._entries.append((entry, stored_bytes))
        self._add(stored_bytes)

    def takes(self, index: int, stored_bytes: int) -> bool:
        """Whether `written` would keep an entry at `index` of that size: the caller builds
        the entry (a copy of the batch) only then, not for every entry of a full run."""
        if len(self) and index != self._entries[-1][0].index + 1:
            # After a left-out entry, those that follow wait for the next run.
            return index <= self._entries[-1][0].index
        shared = self.shared
        return (
            self._held.bytes + stored_bytes <= self.bytes_max
            and shared.bytes_held + stored_bytes <= shared.bytes_max
        )

    def truncated(self, first_index: int) -> None:
        """Entries from `first_index` on were cut from the log."""
        while len(self) and self._entries[-1][0].index >= first_index:
            _entry, size = self._entries.pop()
            self._add(-size)

    def applied(self, index: int) -> None:
        """Entries up to `index` were applied: nothing will ask for them soon."""
        while len(self) and self._entries[self._head][0].index <= index:
            self._drop_first()

    def clear(self) -> None:
        self.shared.release(self._held)
        self._entries.clear()
        self._head = 0

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

    def _add(self, size: int) -> None:
        self._held.bytes += size
        self.shared.bytes_held += size

    def _drop_first(self) -> None:
        _entry, size = self._entries[self._head]
        self._head += 1
        self._add(-size)
        if not len(self):
            self.clear()
        elif self._head >= COMPACT_AT and self._head * 2 >= len(self._entries):
            del self._entries[: self._head]
            self._head = 0
