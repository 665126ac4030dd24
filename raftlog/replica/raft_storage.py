"""A group's Raft log on disk: a `SegmentedLog` of batches plus the hard-state file.

This is where "one log, not two" happens: the Raft core reads its stable log from the same
segment files that fetch serves, entry index = the batch's ordinal in the log, term = the
batch's partitionLeaderEpoch. Appends stamp each entry's offset and epoch as it is written
(see `entry_batches`).

Segment and controller groups never compact their log into a snapshot (retention drops
whole sealed groups instead), so the only "snapshot" is the empty one at index
`first_index - 1` that carries the group's bootstrap membership.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence

import attrs

from raftlog import logs
from raftlog.invariant import invariant
from raftlog.raft.entry import Entry, HardState, Snapshot, SnapshotMetadata
from raftlog.raft.errors import LogCompacted, LogUnavailable
from raftlog.raft.membership import Membership
from raftlog.replica.ack_mark import AckMark
from raftlog.replica.entry_batches import batch_to_entry, entry_to_batch
from raftlog.replica.hard_state import HardStateFile
from raftlog.replica.recent_entries import RecentEntries
from raftlog.storage import power_loss
from raftlog.storage.errors import CorruptBatchError, LogFailed
from raftlog.storage.log import SegmentedLog
from raftlog.storage.offloop_sync import SyncFailed, chain_slot, fdatasync_chain
from raftlog.storage.values import AppendResult

READ_COUNT_MAX = 4096


@attrs.define(eq=False)
class SegmentGroupLog:
    """Implements the core's `LogStorage` and the shell's `GroupLog` for one group."""

    log: SegmentedLog
    hard_state_file: HardStateFile
    bootstrap: Membership
    """The group's members when it was created (before any CONFIG_CHANGE entry)."""
    on_append: Callable[[Entry, AppendResult], None] | None = None
    """Told of every entry written, with where it landed (offsets for produce answers)."""
    on_truncate: Callable[[int], None] | None = None
    """Told the first entry index removed when a new leader overwrites a suffix."""
    ack_mark: AckMark | None = None
    """Where `sync` records how far the log is durable, before anything is acknowledged."""
    recent: RecentEntries = attrs.field(factory=RecentEntries)
    """The entries written lately, so that applying and resending them reads no file."""
    _hard_state: HardState = attrs.field(init=False, factory=HardState)

    def __attrs_post_init__(self) -> None:
        self._hard_state = self.hard_state_file.load()

    # -- LogStorage (read side, for the core) --------------------------------------------

    def initial_state(self) -> tuple[HardState, SnapshotMetadata]:
        state = self._hard_state
        clipped = attrs.evolve(state, commit=min(state.commit, self.log.last_entry_index))
        return clipped, self._base()

    def _base(self) -> SnapshotMetadata:
        return SnapshotMetadata(self.log.first_entry_index - 1, 0, self.bootstrap)

    def entries(self, low_index: int, high_index: int, max_size_bytes: int) -> list[Entry]:
        if low_index < self.log.first_entry_index:
            raise LogCompacted(f"entry {low_index} is below {self.log.first_entry_index}")
        if high_index > self.log.last_entry_index + 1:
            raise LogUnavailable(f"entry {high_index - 1} is past {self.log.last_entry_index}")
        count = min(high_index - low_index, READ_COUNT_MAX)
        if count <= 0:
            return []
        limits = self.log.config.limits
        held = self.recent.read(
            low_index,
            min(count, limits.read_entries_count_max),
            min(max_size_bytes, limits.fetch_bytes_max),
        )
        if held is not None:
            return held
        try:
            batches = self.log.read_entries(low_index, max_size_bytes, count)
        except CorruptBatchError as error:
            # Marked in the log's repair state: the next open cuts it there. A running core
            # cannot lose entries under it, so this replica stops here (the error goes up).
            logs.event(
                "corruption_detected",
                logging.ERROR,
                directory=str(self.log.directory),
                entry=low_index,
                error=str(error),
                note="marked: the next open of this group cuts the log there and repairs it",
            )
            raise
        return [batch_to_entry(batch, low_index + i) for i, batch in enumerate(batches)]

    def term(self, index: int) -> int:
        if index == self.log.first_entry_index - 1:
            return 0
        if index < self.log.first_entry_index:
            raise LogCompacted(f"entry {index} is below {self.log.first_entry_index}")
        if index > self.log.last_entry_index:
            raise LogUnavailable(f"entry {index} is past {self.log.last_entry_index}")
        return self.log.entry_term(index)

    def first_index(self) -> int:
        return self.log.first_entry_index

    def last_index(self) -> int:
        return self.log.last_entry_index

    def snapshot(self) -> Snapshot:
        return Snapshot(self._base())

    # -- GroupLog (write side, for the shell) --------------------------------------------

    def append_entries(self, entries: Sequence[Entry]) -> None:
        first = entries[0].index
        if first <= self.log.last_entry_index:
            self.recent.truncated(first)
            self.log.truncate_suffix(first)
            if self.on_truncate is not None:
                self.on_truncate(first)
        for entry in entries:
            batch = entry_to_batch(entry, self.log.next_offset)
            result = self.log.append(batch)
            if self.recent.takes(entry.index, len(batch)):
                # As a read of the file would rebuild it: stamped offsets, the stored kind.
                self.recent.written(batch_to_entry(batch, entry.index), len(batch))
            if self.on_append is not None:
                self.on_append(entry, result)

    def entries_applied(self, index: int, sent_index: int) -> None:
        self.recent.applied(index, sent_index)

    def hard_state_pending(self, state: HardState) -> bool:
        return self.hard_state_file.pending(state)

    def save_hard_state(self, state: HardState) -> None:
        self.hard_state_file.save(state)
        self._hard_state = state

    async def sync(self, started: Callable[[], None] | None = None) -> None:
        """fdatasync the log, then move the acknowledgement mark to its end, both in one
        chain off the event loop (`offloop_sync`); only then may anything be acknowledged.
        `started` is called once the chain is queued, before waiting for it.

        Only this group's Ready loop appends to or truncates its log, and it waits here,
        so the sync covers exactly the log as it is now: the mark can be made beforehand.
        """
        async with chain_slot():
            await self._sync_chain(started)
        if self.log.clear_repair_floor_if_durable():
            logs.event(
                "repair_done",
                logging.WARNING,
                directory=str(self.log.directory),
                last_entry=self.log.last_entry_index,
            )

    async def _sync_chain(self, started: Callable[[], None] | None) -> None:
        last = self.log.last_entry_index
        ack_mark = self.ack_mark if last >= self.log.first_entry_index else None
        term = self.log.entry_term(last) if ack_mark is not None else 0
        mark = None if ack_mark is None else ack_mark.prepare(last, term)
        try:
            ticket = self.log.sync_begin()
            journal = power_loss.journal_entry(ticket.path, ticket.size_bytes)
            try:
                await fdatasync_chain(ticket.fd, journal, mark, ticket.drop, started)
            except SyncFailed as error:
                if not error.log_durable:
                    self.log.sync_failed(ticket, error)
                    raise LogFailed(f"fdatasync failed: {error}") from error
                self.log.sync_end(ticket)  # the log is durable; the mark is not
                raise
        finally:
            if mark is not None:
                os.close(mark[0])
        durable = self.log.sync_end(ticket, journaled=journal is not None)
        invariant(
            durable.entry_index == ticket.entry_index == last == self.log.last_entry_index,
            f"{self.log.directory}: the log moved during its sync",
        )
        if mark is not None and ack_mark is not None:  # nothing written: the slot stays
            ack_mark.written(last, term)
