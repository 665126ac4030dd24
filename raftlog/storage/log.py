"""A log: a directory of segments, appended at the end, cut at either end.

Only the last segment takes appends. Every batch has a Kafka offset range and an entry
index (its ordinal, the Raft index); both are contiguous across the log. The log never
becomes inconsistent on a refused append: every check runs before the first byte is
written.

Opening a log is crash recovery: sealed segments are trusted through their index files
(rebuilt from data when missing or stale) and only the last segment is scanned, so the
time to open is proportional to the tail, not to the log.
"""

import bisect
import itertools
import os
import pathlib
import time
from collections.abc import Callable

import attrs

from raftlog import native
from raftlog.invariant import invariant
from raftlog.native import KeyKind, NativeError
from raftlog.storage import files, page_cache, power_loss, repair
from raftlog.storage.compaction import CompactionResult, OffsetMap, compact_data
from raftlog.storage.config import LogConfig
from raftlog.storage.errors import (
    AppendRejected,
    CorruptBatchError,
    EntryOutOfRange,
    LogFailed,
    LogLayoutError,
    OffsetOutOfRange,
    StorageError,
)
from raftlog.storage.repair import RepairState
from raftlog.storage.segment import Segment, write_replacement
from raftlog.storage.values import (
    AppendResult,
    DurablePoint,
    FileSlice,
    LogStatistics,
    RecoveryReport,
    SegmentData,
    SegmentInfo,
    TimestampLookup,
)

U32_MAX = 2**32 - 1


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@attrs.define(eq=False)
class SyncTicket:
    """An fdatasync in flight: what it will cover once it returns.

    `fd` is a duplicate of the active segment's descriptor, so a roll or a retention
    run while the fdatasync runs in a worker thread can never close it under it."""

    fd: int
    entry_index: int
    truncated_to: int
    path: pathlib.Path
    """The active segment's data file and its size when the sync began (for the
    test-only power-loss journal)."""
    size_bytes: int
    drop: tuple[int, int] = (0, 0)
    """(offset, length) of the file's pages to drop from the page cache once the
    fdatasync has made them clean (`page_cache.drop_range`)."""

    def drop_cached(self) -> None:
        """After the fdatasync: drop `drop` from the page cache."""
        page_cache.drop(self.fd, *self.drop)


@attrs.define(eq=False)
class SegmentedLog:
    """An open log. Use `SegmentedLog.open`; single-threaded (the group committer runs
    only the fdatasync itself in a worker thread)."""

    directory: pathlib.Path
    config: LogConfig
    clock_ms: Callable[[], int]
    recovery: RecoveryReport
    _segments: list[Segment]
    _durable_entry_index: int
    _tickets: list[SyncTicket] = attrs.field(factory=list)
    _failure: str | None = None
    _closed: bool = False
    _repair: RepairState = attrs.field(factory=RepairState)
    corruption_found: list[str] = attrs.field(factory=list)
    """What recovery and reads found corrupt in this run (for the operator's log)."""

    # ---- opening ------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        directory: pathlib.Path | str,
        config: LogConfig | None = None,
        *,
        initial_offset: int = 0,
        initial_entry_index: int = 1,
        clock_ms: Callable[[], int] = wall_clock_ms,
    ) -> "SegmentedLog":
        """Open (recovering) or create the log in `directory`. `initial_*` apply only to
        a new, empty directory."""
        config = config or LogConfig()
        directory = pathlib.Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if initial_offset < 0 or initial_entry_index < 0:
            raise ValueError("initial offset and entry index must be >= 0")
        now_ms = clock_ms()
        bases, removed = _scan_directory(directory, config)
        if not bases:
            segment = Segment.create(
                directory, initial_offset, initial_entry_index, config.limits, now_ms
            )
            report = RecoveryReport(initial_offset, 0, 0, 0, 0, 0, (), tuple(removed))
            return cls(directory, config, clock_ms, report, [segment], initial_entry_index - 1)
        segments: list[Segment] = []
        rebuilt: list[int] = []
        repair_state = repair.load(directory)
        found: list[str] = []

        def note_cut(last_valid: int, lost: int, error: NativeError) -> None:
            # A torn tail (a write cut short by a crash) was never acknowledged; anything
            # else cut here is damage to data that was written whole.
            nonlocal repair_state
            if error.is_torn_tail:
                return
            floor = max(repair_state.floor, last_valid + lost)
            repair_state = attrs.evolve(repair_state, floor=floor)
            repair.save(directory, repair_state)
            found.append(
                f"{files.data_path(directory, bases[-1])}: {error.name} after entry "
                f"{last_valid}; cutting {lost} batch(es), repair floor {floor}"
            )

        try:
            for base in bases[:-1]:
                segment, was_rebuilt = Segment.open_sealed(directory, base, config.limits, now_ms)
                segments.append(segment)
                if was_rebuilt:
                    rebuilt.append(base)
            tail, scan, cut_bytes = Segment.recover_tail(
                directory, bases[-1], config.limits, now_ms, before_cut=note_cut
            )
            segments.append(tail)
            _check_continuity(segments)
        except BaseException:
            for segment in segments:
                segment.close()
            raise
        report = RecoveryReport(
            tail.base_offset,
            tail.size_bytes + cut_bytes,
            tail.size_bytes,
            cut_bytes,
            scan.batch_count,
            int(scan.error),
            tuple(rebuilt),
            tuple(removed),
        )
        log = cls(directory, config, clock_ms, report, segments, tail.last_entry_index)
        log._repair = repair_state
        log.corruption_found = found
        log._cut_marked_corruption()
        return log

    def _cut_marked_corruption(self) -> None:
        """A read found a corrupt batch in an earlier run: cut the log before it now,
        with the floor recorded first (reads never cut a log under a running core)."""
        marked = self._repair.corrupt_from_entry
        if not marked:
            return
        if self.first_entry_index <= marked <= self.last_entry_index:
            floor = max(self._repair.floor, self.last_entry_index)
            self._repair = attrs.evolve(self._repair, floor=floor)
            repair.save(self.directory, self._repair)
            self.corruption_found.append(
                f"{self.directory}: entry {marked} was found corrupt by a read; cutting "
                f"entries {marked}..{self.last_entry_index}, repair floor {floor}"
            )
            self.truncate_suffix(marked)
            self.sync()
        self._repair = attrs.evolve(self._repair, corrupt_from_entry=0)
        repair.save(self.directory, self._repair)

    # ---- corruption and repair ----------------------------------------------------

    @property
    def repair_floor(self) -> int:
        """The last entry index held before corrupt data was cut (0: none pending)."""
        return self._repair.floor

    def note_repair_floor(self, floor: int) -> None:
        """Durably raise the repair floor (never lowers it)."""
        if floor > self._repair.floor:
            self._repair = attrs.evolve(self._repair, floor=floor)
            repair.save(self.directory, self._repair)

    def clear_repair_floor_if_durable(self) -> bool:
        """Drop the floor once every entry up to it is durable here again."""
        if self._repair.floor and self._durable_entry_index >= self._repair.floor:
            self._repair = attrs.evolve(self._repair, floor=0)
            repair.save(self.directory, self._repair)
            return True
        return False

    def _corrupt_at(self, entry_index: int, error: CorruptBatchError) -> CorruptBatchError:
        """A read found entry `entry_index` corrupt: remember it durably (the next open
        cuts the log there and sets the floor) and hand back the error to raise. Nothing
        is cut now: the Raft core above holds this log's shape in memory."""
        marked = self._repair.corrupt_from_entry
        self._repair = RepairState(
            max(self._repair.floor, self.last_entry_index),
            min(marked, entry_index) if marked else entry_index,
        )
        repair.save(self.directory, self._repair)
        self.corruption_found.append(f"entry {entry_index}: {error}")
        return error

    def _check_batches(self, data: bytes, first_entry: int, where: pathlib.Path) -> None:
        """CRC-check whole stored batches before they leave this node (fetch, replication)."""
        position = 0
        entry_index = first_entry
        while position < len(data):
            header = native.validate_stored_batch(
                memoryview(data)[position:], self.config.limits.batch_bytes_max
            )
            if isinstance(header, NativeError):
                raise self._corrupt_at(entry_index, CorruptBatchError(header, position, str(where)))
            position += header.size_bytes
            entry_index += 1

    # ---- the shape of the log -----------------------------------------------------

    @property
    def start_offset(self) -> int:
        return self._segments[0].base_offset

    @property
    def next_offset(self) -> int:
        return self._segments[-1].next_offset

    @property
    def first_entry_index(self) -> int:
        return self._segments[0].base_entry_index

    @property
    def last_entry_index(self) -> int:
        """The last entry's index; first_entry_index - 1 when the log is empty."""
        return self._segments[-1].last_entry_index

    @property
    def durable_entry_index(self) -> int:
        return self._durable_entry_index

    @property
    def last_leader_epoch(self) -> int:
        """The partitionLeaderEpoch (Raft term) of the last batch, or -1 if none."""
        for segment in reversed(self._segments):
            if segment.batch_count:
                return segment.last_leader_epoch
        return -1

    @property
    def size_bytes(self) -> int:
        return sum(segment.size_bytes for segment in self._segments)

    def segments(self) -> list[SegmentInfo]:
        return [_info(segment) for segment in self._segments]

    def statistics(self) -> LogStatistics:
        return LogStatistics(
            self.start_offset,
            self.next_offset,
            self.first_entry_index,
            self.last_entry_index,
            self._durable_entry_index,
            self.size_bytes,
            len(self._segments),
        )

    def segment_for_offset(self, offset: int) -> SegmentInfo:
        """The segment whose offset range holds `offset`."""
        self._check_offset(offset, allow_end=False)
        return _info(self._segment_for_offset(offset))

    # ---- appending ----------------------------------------------------------------

    def append(self, batch: bytes | bytearray | memoryview) -> AppendResult:
        """Append one stamped batch whose baseOffset is `next_offset` and whose
        partitionLeaderEpoch is at least the last one's. Validated before any write."""
        self._check_usable()
        # The stored rule: a follower appends the batches its leader replicates, and those
        # may be batches the leader's compaction already thinned.
        header = native.validate_stored_batch(batch, self.config.limits.batch_bytes_max)
        if isinstance(header, NativeError):
            raise CorruptBatchError(header, 0, "append")
        if header.size_bytes != len(batch):
            raise AppendRejected(
                f"append takes exactly one batch: the buffer holds "
                f"{len(batch)} bytes, the batch {header.size_bytes}"
            )
        if header.base_offset != self.next_offset:
            raise AppendRejected(
                f"batch baseOffset {header.base_offset} is not the log's "
                f"next offset {self.next_offset}: stamp it first"
            )
        if header.partition_leader_epoch < max(0, self.last_leader_epoch):
            raise AppendRejected(
                f"partitionLeaderEpoch {header.partition_leader_epoch} is "
                f"below the log's last epoch {self.last_leader_epoch}"
            )
        active = self._segments[-1]
        if self._needs_roll(active, header):
            active = self._roll()
        position = active.append(batch, header)
        return AppendResult(
            active.last_entry_index,
            header.base_offset,
            header.last_offset,
            position,
            header.size_bytes,
            active.base_offset,
        )

    def _needs_roll(self, active: Segment, header: native.BatchHeader) -> bool:
        if active.batch_count == 0:
            return False
        limits = self.config.limits
        age_ms_max = self.config.segment_age_ms_max
        return (
            active.size_bytes + header.size_bytes > limits.segment_bytes_max
            or (age_ms_max is not None and self.clock_ms() - active.created_ms >= age_ms_max)
            or header.last_offset - active.base_offset > U32_MAX
            or active.batch_count + 1 > U32_MAX
        )

    def roll(self) -> SegmentInfo:
        """Seal the active segment now (if it holds anything) and start a new one."""
        self._check_usable()
        if self._segments[-1].batch_count:
            self._roll()
        return _info(self._segments[-1])

    def _roll(self) -> Segment:
        if len(self._segments) >= self.config.limits.segment_count_max:
            raise StorageError(
                f"{self.directory}: {len(self._segments)} segments reach "
                f"segment_count_max; retention must delete some first"
            )
        active = self._segments[-1]
        try:
            active.seal()
        except OSError as error:
            self._fail(f"sealing {active.data_path} failed: {error}")
            raise LogFailed(self._failure) from error
        self._durable_entry_index = max(self._durable_entry_index, active.last_entry_index)
        if self.config.cached_tail_bytes is not None:
            page_cache.drop(
                active.fd, *page_cache.drop_all(active.cache_dropped_bytes, active.size_bytes)
            )
            active.cache_dropped_bytes = active.size_bytes
        segment = Segment.create(
            self.directory,
            active.next_offset,
            active.next_entry_index,
            self.config.limits,
            self.clock_ms(),
        )
        self._segments.append(segment)
        return segment

    # ---- cutting ------------------------------------------------------------------

    def truncate_suffix(self, entry_index: int) -> None:
        """Remove entry `entry_index` and every later one (Raft's conflicting suffix).
        Afterwards `last_entry_index == entry_index - 1`. Whole later segments go; the
        segment holding the cut becomes the writable tail."""
        self._check_usable()
        if not self.first_entry_index <= entry_index <= self.last_entry_index + 1:
            raise EntryOutOfRange(entry_index, self.first_entry_index, self.last_entry_index)
        if entry_index == self.last_entry_index + 1:
            return
        deleted_any = False
        while len(self._segments) > 1 and self._segments[-1].base_entry_index > entry_index:
            self._segments.pop().delete()
            deleted_any = True
        if deleted_any:
            files.fsync_directory(self.directory)
        tail = self._segments[-1]
        tail.truncate_from_entry(entry_index)
        tail.cache_dropped_bytes = min(
            tail.cache_dropped_bytes, page_cache.page_floor(tail.size_bytes)
        )
        new_last = entry_index - 1
        self._durable_entry_index = min(self._durable_entry_index, new_last)
        for ticket in self._tickets:
            ticket.truncated_to = min(ticket.truncated_to, new_last)

    def apply_retention(
        self, now_ms: int | None = None, keep_from_offset: int | None = None
    ) -> list[int]:
        """Delete whole segments from the front while retention says so (by size, by
        age), never the active one and never one holding `keep_from_offset` or later.
        Returns the base offsets deleted."""
        self._check_usable()
        now_ms = self.clock_ms() if now_ms is None else now_ms
        deleted: list[int] = []
        total_bytes = self.size_bytes
        while len(self._segments) > 1:
            front = self._segments[0]
            if keep_from_offset is not None and front.next_offset > keep_from_offset:
                break
            if not (self._over_size(total_bytes, front) or self._too_old(now_ms, front)):
                break
            self._segments.pop(0)
            front.delete()
            total_bytes -= front.size_bytes
            deleted.append(front.base_offset)
        if deleted:
            files.fsync_directory(self.directory)
        return deleted

    def _over_size(self, total_bytes: int, front: Segment) -> bool:
        retention = self.config.retention_bytes_max
        return retention is not None and total_bytes - front.size_bytes >= retention

    def _too_old(self, now_ms: int, front: Segment) -> bool:
        retention = self.config.retention_age_ms_max
        if retention is None:
            return False
        newest_ms = front.max_timestamp
        if newest_ms < 0:
            newest_ms = int(os.stat(front.data_path).st_mtime * 1000)
        return now_ms - newest_ms > retention

    # ---- reading by entry (Raft) --------------------------------------------------

    def entry_term(self, entry_index: int) -> int:
        """The Raft term of an entry: its batch's partitionLeaderEpoch."""
        return self._locate_entry(entry_index).partition_leader_epoch

    def read_entries(self, first_entry: int, max_bytes: int, max_count: int) -> list[bytes]:
        """Batches from `first_entry` on, as many as fit in `max_bytes` and `max_count`
        (both also capped by the limits), but always at least one if `first_entry`
        exists, so that a large entry can still be replicated. [] at the end."""
        self._check_open()
        if first_entry == self.last_entry_index + 1:
            return []
        location = self._locate_entry(first_entry)
        max_bytes = min(max_bytes, self.config.limits.fetch_bytes_max)
        max_count = min(max_count, self.config.limits.read_entries_count_max)
        entries: list[bytes] = []
        total_bytes = 0
        segment = self._segment_for_entry(first_entry)
        while True:
            run_start = location.position if location else 0
            sizes: list[int] = []
            while (
                location is not None
                and len(entries) + len(sizes) < max_count
                and (total_bytes + location.size_bytes <= max_bytes or (not entries and not sizes))
            ):
                sizes.append(location.size_bytes)
                total_bytes += location.size_bytes
                location = segment.next_batch(location)
            if sizes:
                data = segment.read(run_start, sum(sizes))
                self._check_batches(data, first_entry + len(entries), segment.data_path)
                entries.extend(_split(data, sizes))
            if location is not None or segment is self._segments[-1]:
                return entries
            segment = self._segments[self._segments.index(segment) + 1]
            location = segment.locate(KeyKind.ENTRY, segment.base_entry_index)
            if location is None:
                return entries

    # ---- reading by offset (Kafka fetch) ------------------------------------------

    def read_by_offset(
        self, offset: int, max_bytes: int, end_offset: int | None = None
    ) -> FileSlice:
        """Whole batches from the one holding `offset`, within one segment, up to
        `max_bytes` (at least one batch), and only batches that end below `end_offset`
        (the commit point; default: the log end). Empty at or past `end_offset`."""
        self._check_open()
        self._check_offset(offset, allow_end=True)
        end_offset = self.next_offset if end_offset is None else min(end_offset, self.next_offset)
        max_bytes = min(max_bytes, self.config.limits.fetch_bytes_max)
        if offset >= end_offset:
            return self._empty_slice(offset)
        segment = self._segment_for_offset(offset)
        location = segment.locate(KeyKind.OFFSET, offset)
        if location is None:
            raise CorruptBatchError(NativeError.NOT_FOUND, 0, str(segment.data_path))
        first = location
        size_bytes = count = 0
        last_offset = first.base_offset - 1
        while (
            location is not None
            and location.last_offset < end_offset
            and (size_bytes + location.size_bytes <= max_bytes or count == 0)
        ):
            size_bytes += location.size_bytes
            count += 1
            last_offset = location.last_offset
            location = segment.next_batch(location)
        return FileSlice(
            segment.data_path,
            first.position,
            size_bytes,
            first.base_offset,
            last_offset,
            count,
            segment.generation,
        )

    def read_slice(self, file_slice: FileSlice) -> bytes:
        """The bytes of a slice (the copy path; fetch may `sendfile` the file instead).
        A slice of data that compaction replaced since still reads the old bytes (the
        previous file stays open); one replaced twice raises `SliceOutdated`."""
        self._check_open()
        for segment in self._segments:
            if segment.data_path == file_slice.path:
                data = segment.read_generation(
                    file_slice.generation, file_slice.position, file_slice.size_bytes
                )
                if data:
                    first = segment.locate(KeyKind.OFFSET, file_slice.first_offset)
                    first_entry = first.entry_index if first else segment.base_entry_index
                    self._check_batches(data, first_entry, segment.data_path)
                return data
        raise OffsetOutOfRange(file_slice.first_offset, self.start_offset, self.next_offset)

    # ---- compaction ---------------------------------------------------------------

    def read_segment_data(self, base_offset: int) -> SegmentData:
        """One segment file's bytes, whole (a file is at most `segment_bytes_max`)."""
        self._check_usable()
        segment = self._segment_at(base_offset)
        return SegmentData(
            base_offset,
            segment.read(0, segment.size_bytes),
            segment.changes,
            segment.max_timestamp,
        )

    def replacement_path(self, base_offset: int) -> pathlib.Path:
        """Where the compacted data of a segment is written before `replace_segment_data`."""
        return self._segment_at(base_offset).replacement_path()

    def replace_segment_data(self, base_offset: int, fd: int, expected_changes: int) -> None:
        """Swap in a segment's compacted data, written and fdatasynced to
        `replacement_path(base_offset)` and open as `fd` (ownership passes here). Refused,
        leaving the segment as it was, if the segment changed since it was read or the
        new data does not hold the same batches."""
        try:
            self._check_usable()
            segment = self._segment_at(base_offset)
        except BaseException:
            os.close(fd)
            raise
        segment.replace_data(fd, expected_changes)

    def compact_segment(
        self, base_offset: int, offsets: OffsetMap, drop_tombstones: bool
    ) -> CompactionResult:
        """Compact one segment file here, in this thread: read, rewrite, swap (if
        anything changed). Callers on an event loop run the pure part elsewhere and use
        `read_segment_data` / `replace_segment_data` themselves."""
        source = self.read_segment_data(base_offset)
        result = compact_data(source.data, offsets, drop_tombstones)
        if result.changed:
            fd = write_replacement(self.replacement_path(base_offset), result.data)
            self.replace_segment_data(base_offset, fd, source.changes)
        return result

    def _segment_at(self, base_offset: int) -> Segment:
        for segment in self._segments:
            if segment.base_offset == base_offset:
                return segment
        raise StorageError(f"{self.directory}: no segment starts at offset {base_offset}")

    def offset_for_timestamp(self, timestamp_ms: int) -> TimestampLookup | None:
        """The first batch whose max timestamp is >= `timestamp_ms`, or None."""
        self._check_open()
        for segment in self._segments:
            if segment.batch_count and segment.max_timestamp >= timestamp_ms:
                location = segment.locate(KeyKind.TIMESTAMP, timestamp_ms)
                invariant(location is not None, "segment max timestamp promised a batch")
                if location is not None:
                    return TimestampLookup(
                        location.base_offset,
                        location.last_offset,
                        location.max_timestamp,
                        location.entry_index,
                    )
        return None

    # ---- durability ---------------------------------------------------------------

    def sync_begin(self) -> SyncTicket:
        """Start an fdatasync covering every append so far; run `os.fdatasync(ticket.fd)`
        anywhere (a worker thread), then `sync_end` (or `sync_failed`)."""
        self._check_usable()
        active = self._segments[-1]
        drop = page_cache.drop_range(
            active.cache_dropped_bytes, active.size_bytes, self.config.cached_tail_bytes
        )
        active.cache_dropped_bytes = sum(drop)
        ticket = SyncTicket(
            os.dup(active.fd),
            self.last_entry_index,
            self.last_entry_index,
            active.data_path,
            active.size_bytes,
            drop,
        )
        self._tickets.append(ticket)
        return ticket

    def sync_end(self, ticket: SyncTicket, *, journaled: bool = False) -> DurablePoint:
        """Record what the finished fdatasync made durable (`journaled`: its writer
        already recorded it in the power-loss journal, `power_loss.journal_entry`)."""
        self._release(ticket)
        if (
            not journaled
            and ticket.truncated_to >= ticket.entry_index
            and self._segments[-1].data_path == ticket.path
        ):
            # A truncation or a roll during the sync recorded its own durable size.
            power_loss.durable(ticket.path, ticket.size_bytes)
        covered = min(ticket.entry_index, ticket.truncated_to)
        self._durable_entry_index = max(
            self._durable_entry_index, min(covered, self.last_entry_index)
        )
        return self.durable_point()

    def sync_failed(self, ticket: SyncTicket, error: BaseException) -> None:
        """An fdatasync failed: the page cache may have dropped data, so the log stops."""
        self._release(ticket)
        self._fail(f"fdatasync failed: {error!r}")

    def sync(self) -> DurablePoint:
        """fdatasync everything appended so far, here, in this thread."""
        ticket = self.sync_begin()
        try:
            os.fdatasync(ticket.fd)
        except OSError as error:
            self.sync_failed(ticket, error)
            raise LogFailed(self._failure) from error
        ticket.drop_cached()
        return self.sync_end(ticket)

    def durable_point(self) -> DurablePoint:
        durable = self._durable_entry_index
        if durable == self.last_entry_index:
            return DurablePoint(durable, self.next_offset)
        if durable < self.first_entry_index:
            return DurablePoint(durable, self.start_offset)
        return DurablePoint(durable, self._locate_entry(durable).last_offset + 1)

    def _release(self, ticket: SyncTicket) -> None:
        invariant(ticket in self._tickets, "sync ticket ended twice")
        self._tickets.remove(ticket)
        os.close(ticket.fd)

    # ---- lifecycle ----------------------------------------------------------------

    def close(self) -> None:
        """fdatasync the tail (unless the log failed) and close every file."""
        if self._closed:
            return
        try:
            if self._failure is None:
                active = self._segments[-1]
                os.fdatasync(active.fd)
                power_loss.durable(active.data_path, active.size_bytes)
                self._durable_entry_index = self.last_entry_index
        finally:
            self._closed = True
            for segment in self._segments:
                segment.close()

    def __enter__(self) -> "SegmentedLog":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def failure(self) -> str | None:
        return self._failure

    # ---- helpers ------------------------------------------------------------------

    def _fail(self, reason: str) -> None:
        if self._failure is None:
            self._failure = reason

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError(f"{self.directory}: the log is closed")

    def _check_usable(self) -> None:
        self._check_open()
        if self._failure is not None:
            raise LogFailed(f"{self.directory}: {self._failure}")

    def _check_offset(self, offset: int, allow_end: bool) -> None:
        end = self.next_offset if allow_end else self.next_offset - 1
        if not self.start_offset <= offset <= end:
            raise OffsetOutOfRange(offset, self.start_offset, self.next_offset)

    def _segment_for_offset(self, offset: int) -> Segment:
        bases = [segment.base_offset for segment in self._segments]
        return self._segments[max(0, bisect.bisect_right(bases, offset) - 1)]

    def _segment_for_entry(self, entry_index: int) -> Segment:
        bases = [segment.base_entry_index for segment in self._segments]
        return self._segments[max(0, bisect.bisect_right(bases, entry_index) - 1)]

    def _locate_entry(self, entry_index: int) -> native.BatchLocation:
        self._check_open()
        if not self.first_entry_index <= entry_index <= self.last_entry_index:
            raise EntryOutOfRange(entry_index, self.first_entry_index, self.last_entry_index)
        segment = self._segment_for_entry(entry_index)
        location = segment.locate(KeyKind.ENTRY, entry_index)
        if location is None:
            raise CorruptBatchError(NativeError.NOT_FOUND, 0, str(segment.data_path))
        return location

    def _empty_slice(self, offset: int) -> FileSlice:
        active = self._segments[-1]
        return FileSlice(active.data_path, active.size_bytes, 0, offset, offset - 1, 0)


def _info(segment: Segment) -> SegmentInfo:
    return SegmentInfo(
        segment.base_offset,
        segment.base_entry_index,
        segment.next_offset,
        segment.batch_count,
        segment.size_bytes,
        segment.max_timestamp,
        segment.data_path,
        segment.sealed,
    )


def _split(data: bytes, sizes: list[int]) -> list[bytes]:
    parts = []
    position = 0
    for size in sizes:
        parts.append(data[position : position + size])
        position += size
    return parts


def _scan_directory(directory: pathlib.Path, config: LogConfig) -> tuple[list[int], list[str]]:
    """Base offsets of the log's segments, after removing leftovers of interrupted
    operations: temporary files, and metadata or index files whose data file is gone
    (retention and truncation delete the data file first). Metadata without data is
    kept only for the last segment, where it means a crash inside `Segment.create`."""
    kinds: dict[int, set[str]] = {}
    removed: list[str] = []
    for path in directory.iterdir():
        if path.name.endswith(files.TEMPORARY_SUFFIX):
            path.unlink()
            removed.append(path.name)
            continue
        parsed = files.parse_name(path.name)
        if parsed is not None:
            kinds.setdefault(parsed[0], set()).add(parsed[1])
    if len(kinds) > config.limits.segment_count_max:
        raise LogLayoutError(f"{directory}: {len(kinds)} segments exceed segment_count_max")
    for base, present in kinds.items():
        if "log" in present and "meta" not in present:
            raise LogLayoutError(f"{files.data_path(directory, base)} has no metadata file")
    with_meta = sorted(base for base, present in kinds.items() if "meta" in present)
    for base, present in sorted(kinds.items()):
        orphan = "log" not in present and (not with_meta or base != with_meta[-1])
        if orphan:
            for kind in sorted(present):
                path = directory / f"{files.segment_stem(base)}.{kind}"
                path.unlink()
                removed.append(path.name)
    if removed:
        files.fsync_directory(directory)
    bases = [base for base in with_meta if "log" in kinds[base] or base == with_meta[-1]]
    return bases, removed


def _check_continuity(segments: list[Segment]) -> None:
    for previous, segment in itertools.pairwise(segments):
        if (
            segment.base_offset != previous.next_offset
            or segment.base_entry_index != previous.next_entry_index
        ):
            raise LogLayoutError(
                f"{segment.data_path} starts at offset {segment.base_offset} entry "
                f"{segment.base_entry_index}, but {previous.data_path} ends before offset "
                f"{previous.next_offset} entry {previous.next_entry_index}"
            )
