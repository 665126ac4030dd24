"""The entries a group wrote recently, kept in memory until nothing will read them soon.

Every entry is read back after it is written: the Ready loop applies it once it commits,
on the leader and on every follower (by then the core has handed it to storage: etcd's
"stable" entries), and a leader sends it again to each follower that had not been sent it
yet (the slower follower of three, whose acknowledgement the commit did not wait for).
Read from the segment files, each read costs a pread, a CRC check of the whole batch and
the batch's parsing, per entry: a tenth of a busy leader's event loop when it was
profiled, for bytes the process wrote a millisecond earlier.

Kept here, as the entry `SegmentGroupLog.entries` would have built from the file, until
the group has applied it and (on a leader) sent it to every peer. Bounded in bytes per
group and per process: when a group's share is full, applied entries a lagging peer may
still need are dropped, oldest first; when only unapplied ones are held, the newest are
left out instead, since the oldest are the next to be applied. Groups whose commits lag
(a slow quorum, a lost one) read the rest of their backlog from the files.
"""

from __future__ import annotations

import weakref

import attrs

from raftlog.raft.entry import Entry

RECENT_BYTES_MAX = 64 << 20
"""Per group: what a leader may hold uncommitted (`RaftConfig.max_uncommitted_entries_size_bytes`),
which pipelining producers fill: several in-flight requests of 1 MiB batches per client."""
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
    """A contiguous run of recently written entries with the size each takes on disk."""

    bytes_max: int = RECENT_BYTES_MAX
    shared: SharedBound = PROCESS_BOUND
    _entries: list[tuple[Entry, int]] = attrs.field(init=False, factory=list)
    _head: int = attrs.field(init=False, default=0)
    """Entries before `_head` are dropped (a list, not a deque: reads index into it)."""
    _held: _Held = attrs.field(init=False, factory=_Held)
    _applied_index: int = attrs.field(init=False, default=0)
    """Entries up to here may be dropped to make room (a peer reads them from the files)."""

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

        When a bound is reached, applied entries make room, oldest first; past those, the
        newest entries are the ones left out, not the oldest: those are the next to be
        applied. Once one is left out, those after it are too, until everything held is
        let go and a new run starts.
        """
        if len(self) and entry.index <= self._entries[-1][0].index:
            self.clear()  # rewritten without `truncated`: the run restarts
        if not self.takes(entry.index, stored_bytes):
            return
        self._entries.append((entry, stored_bytes))
        self._add(stored_bytes)

    def takes(self, index: int, stored_bytes: int) -> bool:
        """Whether `written` would keep an entry at `index` of that size, dropping applied
        entries to make room: the caller builds the entry (a copy of the batch) only then,
        not for every entry of a full run."""
        if len(self) and index != self._entries[-1][0].index + 1:
            if index <= self._entries[-1][0].index:
                return True  # a rewrite: the run restarts
            if self._entries[-1][0].index > self._applied_index:
                return False  # after a left-out entry, those that follow wait for a new run
            self.clear()  # all held are applied, kept only for lagging peers: start anew
        while not self._fits(stored_bytes) and self._first_applied():
            self._drop_first()
        return self._fits(stored_bytes)

    def _fits(self, stored_bytes: int) -> bool:
        return (
            self._held.bytes + stored_bytes <= self.bytes_max
            and self.shared.bytes_held + stored_bytes <= self.shared.bytes_max
        )

    def _first_applied(self) -> bool:
        return len(self) > 0 and self._entries[self._head][0].index <= self._applied_index

    def truncated(self, first_index: int) -> None:
        """Entries from `first_index` on were cut from the log."""
        while len(self) and self._entries[-1][0].index >= first_index:
            _entry, size = self._entries.pop()
            self._add(-size)

    def applied(self, index: int, sent_index: int | None = None) -> None:
        """Entries up to `index` were applied, and up to `sent_index` (default: `index`)
        every peer has been sent: nothing will ask for those soon. Applied entries above
        `sent_index` stay while there is room, for the peers that lag."""
        self._applied_index = index
        released = index if sent_index is None else min(index, sent_index)
        while len(self) and self._entries[self._head][0].index <= released:
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
