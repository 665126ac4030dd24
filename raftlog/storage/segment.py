"""One segment: a data file of whole record batches, its metadata and its indexes.

A segment knows two keys for each batch: its Kafka base offset (in the batch) and its
entry index (its ordinal in the log, which the Raft core uses as the Raft index). The
entry index is not in the batch, so the segment's base entry index is stored in a small
metadata file written once, atomically, before the data file is created.
"""

import json
import os
import pathlib
from collections.abc import Callable

import attrs

from raftlog import native
from raftlog.invariant import InvariantViolation, invariant
from raftlog.limits import StorageLimits
from raftlog.native import BatchHeader, BatchLocation, KeyKind, NativeError
from raftlog.storage import direct_read, files, power_loss, read_ahead, repair
from raftlog.storage.errors import (
    CorruptBatchError,
    LogFailed,
    LogLayoutError,
    SliceOutdated,
    StorageError,
)
from raftlog.storage.index import SegmentIndex, SegmentSummary, decode_index
from raftlog.storage.read_ahead import ReadAhead

META_FORMAT = 1


def write_replacement(path: pathlib.Path, data: bytes) -> int:
    """Write compacted data to `path` and fdatasync it; returns the open descriptor.
    Touches no segment state, so it may run in a worker thread."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        native.write_all(fd, data, 0)
        os.fdatasync(fd)
    except BaseException:
        os.close(fd)
        files.unlink_if_present(path)
        raise
    return fd


def write_meta(directory: pathlib.Path, base_offset: int, base_entry_index: int) -> None:
    text = json.dumps(
        {"format": META_FORMAT, "base_offset": base_offset, "base_entry_index": base_entry_index}
    )
    files.write_atomically(files.meta_path(directory, base_offset), text.encode())


def read_meta(directory: pathlib.Path, base_offset: int) -> int:
    """The base entry index recorded for the segment at `base_offset`."""
    path = files.meta_path(directory, base_offset)
    try:
        meta = json.loads(path.read_bytes())
    except (OSError, ValueError) as error:
        raise LogLayoutError(f"{path}: unreadable segment metadata: {error}") from error
    if (
        meta.get("format") != META_FORMAT
        or meta.get("base_offset") != base_offset
        or not isinstance(meta.get("base_entry_index"), int)
    ):
        raise LogLayoutError(f"{path}: metadata does not describe this segment: {meta}")
    return meta["base_entry_index"]


@attrs.define(eq=False)
class Segment:
    """An open segment; only the log's last segment is unsealed and takes appends."""

    directory: pathlib.Path
    base_offset: int
    base_entry_index: int
    limits: StorageLimits
    fd: int
    size_bytes: int
    next_offset: int
    batch_count: int
    last_leader_epoch: int
    index: SegmentIndex
    created_ms: int
    sealed: bool
    last_batch: BatchLocation | None = None
    generation: int = 0
    """Bumped each time compaction swaps in a new data file (file slices carry it)."""
    changes: int = 0
    """Bumped by every append, truncation and swap: a compaction computed from the data
    at one count is installed only if the count has not moved."""
    retired_fd: int = -1
    """The previous generation's descriptor, kept open so that a slice made before the
    swap still reads the bytes it described (the file itself is already unlinked)."""
    cache_dropped_bytes: int = 0
    """How much of the file, from its start, the log has dropped from the page cache
    (`raftlog/storage/page_cache.py`); reads below it go straight to the disk."""
    direct_fd: int | None = -1
    """The data file open with O_DIRECT for those reads: -1 until the first, None where
    the file system refused it (`raftlog/storage/direct_read.py`)."""
    reading_ahead: ReadAhead | None = None
    """The range after the last direct read, being read for the next one
    (`raftlog/storage/read_ahead.py`)."""

    # ---- opening ------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        directory: pathlib.Path,
        base_offset: int,
        base_entry_index: int,
        limits: StorageLimits,
        now_ms: int,
    ) -> "Segment":
        """A new empty segment. Metadata first, then the data file, then a directory
        fsync: a crash leaves either nothing, or metadata alone (which recovery
        completes), or both."""
        write_meta(directory, base_offset, base_entry_index)
        path = files.data_path(directory, base_offset)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        files.fsync_directory(directory)
        power_loss.durable(path, 0)
        return cls(
            directory,
            base_offset,
            base_entry_index,
            limits,
            fd,
            0,
            base_offset,
            0,
            -1,
            SegmentIndex.empty(base_offset, limits.index_interval_bytes),
            now_ms,
            sealed=False,
        )

    @classmethod
    def _open_fd(cls, directory: pathlib.Path, base_offset: int) -> int:
        return os.open(files.data_path(directory, base_offset), os.O_RDWR | os.O_CLOEXEC)

    @classmethod
    def open_sealed(
        cls, directory: pathlib.Path, base_offset: int, limits: StorageLimits, now_ms: int
    ) -> tuple["Segment", bool]:
        """Open a sealed segment from its index file; rebuild the index from the data if
        the file is missing, corrupt or stale. Returns (segment, rebuilt)."""
        base_entry_index = read_meta(directory, base_offset)
        fd = cls._open_fd(directory, base_offset)
        try:
            size_bytes = os.fstat(fd).st_size
            decoded = cls._read_index(directory, base_offset, limits, size_bytes)
            rebuilt = decoded is None
            if decoded is None:
                decoded = cls._rebuild_index(directory, fd, base_offset, limits, size_bytes)
        except BaseException:
            os.close(fd)
            raise
        index, summary = decoded
        segment = cls(
            directory,
            base_offset,
            base_entry_index,
            limits,
            fd,
            size_bytes,
            summary.next_offset,
            summary.batch_count,
            summary.last_leader_epoch,
            index,
            now_ms,
            sealed=True,
        )
        if rebuilt:
            segment._write_index()
        return segment, rebuilt

    @staticmethod
    def _read_index(
        directory: pathlib.Path, base_offset: int, limits: StorageLimits, size_bytes: int
    ) -> tuple[SegmentIndex, SegmentSummary] | None:
        try:
            data = files.index_path(directory, base_offset).read_bytes()
        except FileNotFoundError:
            return None
        return decode_index(data, base_offset, limits.index_interval_bytes, size_bytes)

    @staticmethod
    def _rebuild_index(
        directory: pathlib.Path, fd: int, base_offset: int, limits: StorageLimits, size_bytes: int
    ) -> tuple[SegmentIndex, SegmentSummary]:
        result, state = native.scan_file_indexing(
            fd,
            0,
            size_bytes,
            base_offset,
            limits.batch_bytes_max,
            limits.scan_chunk_bytes,
            native.IndexState.empty(base_offset, limits.index_interval_bytes),
        )
        if result.error is not NativeError.OK:
            raise CorruptBatchError(
                result.error, result.error_position, str(files.data_path(directory, base_offset))
            )
        summary = SegmentSummary(
            size_bytes,
            result.batch_count,
            result.next_offset if result.batch_count else base_offset,
            state.running_max_timestamp,
            result.last_leader_epoch,
        )
        return SegmentIndex.from_state(state), summary

    @classmethod
    def recover_tail(
        cls,
        directory: pathlib.Path,
        base_offset: int,
        limits: StorageLimits,
        now_ms: int,
        before_cut: Callable[[int, int, NativeError], None] | None = None,
    ) -> tuple["Segment", native.ScanResult, int]:
        """Open the last segment: scan every batch, rebuild its indexes in the same pass,
        and cut the file after the last valid batch. Returns (segment, scan, cut bytes).

        `before_cut(last valid entry index, batches seemingly lost, error)` is called
        before a cut, so that the caller can durably note what the cut throws away
        (the repair floor) before it is gone."""
        base_entry_index = read_meta(directory, base_offset)
        path = files.data_path(directory, base_offset)
        if not path.exists():
            # Metadata alone: a crash in `create` before the data file appeared.
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            files.fsync_directory(directory)
        else:
            fd = cls._open_fd(directory, base_offset)
        try:
            size_bytes = os.fstat(fd).st_size
            result, state = native.scan_file_indexing(
                fd,
                0,
                size_bytes,
                base_offset,
                limits.batch_bytes_max,
                limits.scan_chunk_bytes,
                native.IndexState.empty(base_offset, limits.index_interval_bytes),
            )
            if result.error is NativeError.IO:
                raise LogFailed(f"{path}: read error during recovery at {result.error_position}")
            cut_bytes = size_bytes - result.valid_bytes
            if cut_bytes and before_cut is not None:
                lost = repair.count_batches_from(fd, result.valid_bytes, size_bytes)
                before_cut(base_entry_index + result.batch_count - 1, lost, result.error)
            if cut_bytes:
                os.ftruncate(fd, result.valid_bytes)
                os.fdatasync(fd)
                power_loss.durable(path, result.valid_bytes)
        except BaseException:
            os.close(fd)
            raise
        files.unlink_if_present(files.index_path(directory, base_offset))
        segment = cls(
            directory,
            base_offset,
            base_entry_index,
            limits,
            fd,
            result.valid_bytes,
            result.next_offset if result.batch_count else base_offset,
            result.batch_count,
            result.last_leader_epoch,
            SegmentIndex.from_state(state),
            now_ms,
            sealed=False,
        )
        if result.batch_count:
            segment.last_batch = segment.locate(KeyKind.ENTRY, segment.last_entry_index)
        return segment, result, cut_bytes

    # ---- properties ---------------------------------------------------------------

    @property
    def data_path(self) -> pathlib.Path:
        return files.data_path(self.directory, self.base_offset)

    @property
    def max_timestamp(self) -> int:
        return self.index.running_max_timestamp

    @property
    def last_entry_index(self) -> int:
        return self.base_entry_index + self.batch_count - 1

    @property
    def next_entry_index(self) -> int:
        return self.base_entry_index + self.batch_count

    def holds_entry(self, entry_index: int) -> bool:
        return self.base_entry_index <= entry_index < self.next_entry_index

    # ---- writing ------------------------------------------------------------------

    def append(self, batch: bytes | bytearray | memoryview, header: BatchHeader) -> int:
        """Write a validated batch at the end; returns its position."""
        invariant(not self.sealed, "append to a sealed segment")
        invariant(header.base_offset == self.next_offset, "append out of offset order")
        position = self.size_bytes
        try:
            native.write_all(self.fd, batch, position)
        except OSError as error:
            self._undo_partial_write(position)
            raise StorageError(f"{self.data_path}: append failed: {error}") from error
        self.index.on_append(
            position, header.base_offset, self.batch_count, header.size_bytes, header.max_timestamp
        )
        self.last_batch = BatchLocation(
            position,
            self.next_entry_index,
            header.base_offset,
            header.last_offset,
            header.max_timestamp,
            header.partition_leader_epoch,
            header.size_bytes,
        )
        self.size_bytes = position + header.size_bytes
        self.changes += 1
        self.next_offset = header.last_offset + 1
        self.batch_count += 1
        self.last_leader_epoch = header.partition_leader_epoch
        return position

    def _undo_partial_write(self, position: int) -> None:
        try:
            os.ftruncate(self.fd, position)
        except OSError as error:
            raise LogFailed(f"{self.data_path}: cannot undo a failed append: {error}") from error

    def summary(self) -> SegmentSummary:
        return SegmentSummary(
            self.size_bytes,
            self.batch_count,
            self.next_offset,
            self.max_timestamp,
            self.last_leader_epoch,
        )

    def _write_index(self) -> None:
        files.write_atomically(
            files.index_path(self.directory, self.base_offset), self.index.encode(self.summary())
        )

    def seal(self) -> None:
        """Make the data durable and write the index file: the segment is now immutable.
        Bytes past the last batch (left by a failed or torn write) are cut first, so the
        sealed file is exactly the batches its index describes."""
        if os.fstat(self.fd).st_size != self.size_bytes:
            os.ftruncate(self.fd, self.size_bytes)
        os.fdatasync(self.fd)
        power_loss.durable(self.data_path, self.size_bytes)
        self._write_index()
        self.sealed = True

    def truncate_from_entry(self, entry_index: int) -> None:
        """Drop the batch `entry_index` and everything after it; the segment becomes the
        writable tail again."""
        invariant(
            self.base_entry_index <= entry_index <= self.next_entry_index,
            "truncation point outside the segment",
        )
        self._discard_read_ahead()  # it may hold bytes past the cut
        files.unlink_if_present(files.index_path(self.directory, self.base_offset))
        self.sealed = False
        self.changes += 1
        if entry_index == self.next_entry_index:
            return
        location = self.locate(KeyKind.ENTRY, entry_index)
        if location is None:
            raise InvariantViolation("an entry inside the segment was not found")
        os.ftruncate(self.fd, location.position)
        os.fdatasync(self.fd)
        power_loss.durable(self.data_path, location.position)
        self.size_bytes = location.position
        self.batch_count = entry_index - self.base_entry_index
        self.next_offset = location.base_offset
        self._rewind_index(location.position)
        self.last_batch = None
        self.last_leader_epoch = -1
        if self.batch_count:
            self.last_batch = self.locate(KeyKind.ENTRY, entry_index - 1)
            if self.last_batch is None:
                raise InvariantViolation("the batch before the truncation point is missing")
            self.last_leader_epoch = self.last_batch.partition_leader_epoch

    def _rewind_index(self, position: int) -> None:
        """Cut the indexes at `position` and restore the rule state there: the running
        max must include the batches between the last kept entry and the cut, so those
        (at most one index interval) are scanned again."""
        self.index.drop_from(position)
        last = self.index.last_entry()
        if last is None:
            self.index.bytes_since_entry = self.index.interval_bytes
            self.index.running_max_timestamp = -1
            return
        relative_offset, _, last_position, last_timestamp = last
        result = native.scan_file(
            self.fd,
            last_position,
            position,
            self.base_offset + relative_offset,
            self.limits.batch_bytes_max,
            self.limits.scan_chunk_bytes,
        )
        if result.error is not NativeError.OK:
            raise CorruptBatchError(result.error, result.error_position, str(self.data_path))
        self.index.running_max_timestamp = max(last_timestamp, result.max_timestamp)
        self.index.bytes_since_entry = position - last_position

    # ---- reading ------------------------------------------------------------------

    def locate(self, key_kind: KeyKind, target: int) -> BatchLocation | None:
        """The batch holding `target` (by offset, entry or first max timestamp >=), or
        None if this segment has none."""
        if self.batch_count == 0:
            return None
        last = self.last_batch
        if last is not None and key_kind is KeyKind.ENTRY and target == last.entry_index:
            return last
        if key_kind is KeyKind.ENTRY:
            if not self.holds_entry(target):
                return None
            position, relative_entry = self.index.start_for_entry(target - self.base_entry_index)
        elif key_kind is KeyKind.OFFSET:
            if not self.base_offset <= target < self.next_offset:
                return None
            position, relative_entry = self.index.start_for_offset(target)
        else:
            if target > self.max_timestamp:
                return None
            position, relative_entry = self.index.start_for_timestamp(target)
        found = native.find_batch(
            self.fd,
            position,
            self.size_bytes,
            self.base_entry_index + relative_entry,
            key_kind,
            target,
        )
        if isinstance(found, NativeError):
            if found is NativeError.NOT_FOUND:
                return None
            raise CorruptBatchError(found, position, str(self.data_path))
        return found

    def next_batch(self, location: BatchLocation) -> BatchLocation | None:
        """The batch right after `location`, or None at the end."""
        position = location.position + location.size_bytes
        if position >= self.size_bytes:
            return None
        found = native.find_batch(
            self.fd,
            position,
            self.size_bytes,
            location.entry_index + 1,
            KeyKind.ENTRY,
            location.entry_index + 1,
        )
        if isinstance(found, NativeError):
            raise CorruptBatchError(found, position, str(self.data_path))
        return found

    def read(self, position: int, size_bytes: int) -> bytes:
        invariant(
            position >= 0 and position + size_bytes <= self.size_bytes,
            "read outside the segment's data",
        )
        if size_bytes > 0 and position + size_bytes <= self.cache_dropped_bytes:
            direct = self._read_dropped(position, size_bytes)
            if direct is not None:
                return direct
        data = os.pread(self.fd, size_bytes, position)
        if len(data) != size_bytes:
            raise StorageError(f"{self.data_path}: short read at {position}")
        return data

    def _read_dropped(self, position: int, size_bytes: int) -> bytes | None:
        """Bytes of pages the log dropped, read around the cache (None: read them
        buffered), and the next range as large started ahead."""
        if self.direct_fd == -1:
            self.direct_fd = direct_read.open_direct(self.data_path)
        if self.direct_fd is None:
            return None
        ahead, self.reading_ahead = self.reading_ahead, None
        data: bytes | None = b""
        if ahead is not None and ahead.holds(position):
            taken = min(size_bytes, ahead.position + ahead.size_bytes - position)
            data = ahead.take(position, taken)
        elif ahead is not None:
            ahead.discard()
        if data is not None and len(data) < size_bytes:
            rest = direct_read.read(self.direct_fd, position + len(data), size_bytes - len(data))
            data = None if rest is None else data + rest
        if data is None:
            return None
        following = position + size_bytes
        self.reading_ahead = read_ahead.start(
            self.direct_fd, following, min(size_bytes, self.cache_dropped_bytes - following)
        )
        return data

    def read_generation(self, generation: int, position: int, size_bytes: int) -> bytes:
        """Bytes of a file slice made at `generation`: the current file, or the one
        compaction replaced last (still open here)."""
        if generation == self.generation:
            return self.read(position, size_bytes)
        if generation == self.generation - 1 and self.retired_fd >= 0:
            data = os.pread(self.retired_fd, size_bytes, position)
            if len(data) == size_bytes:
                return data
        raise SliceOutdated(
            f"{self.data_path}: the slice was made from data generation {generation}, "
            f"compaction has since replaced it twice; read by offset again"
        )

    # ---- compaction ---------------------------------------------------------------

    def replacement_path(self) -> pathlib.Path:
        """Where compacted data is written before the swap (a `.tmp`: recovery removes
        it, so a crash before the rename leaves the old file as it was)."""
        path = self.data_path
        return path.with_name(path.name + ".compact" + files.TEMPORARY_SUFFIX)

    def replace_data(self, fd: int, expected_changes: int) -> None:
        """Swap in the compacted data already written (and fdatasynced) to
        `replacement_path()`, open as `fd`; this takes ownership of `fd`.

        The new data must hold the same batches (same count, same offsets and epochs):
        it is checked here, in full, before anything is renamed. Order on disk: unlink
        the index and fsync the directory (a crash leaves the old data, whose index is
        rebuilt), rename the new file over the old and fsync the directory (a crash
        leaves the new data, index rebuilt), write the new index if sealed.
        """
        try:
            if expected_changes != self.changes:
                raise StorageError(f"{self.data_path}: changed while it was being compacted")
            size_bytes = os.fstat(fd).st_size
            result, state = native.scan_file_indexing(
                fd,
                0,
                size_bytes,
                self.base_offset,
                self.limits.batch_bytes_max,
                self.limits.scan_chunk_bytes,
                native.IndexState.empty(self.base_offset, self.limits.index_interval_bytes),
            )
            same = (
                result.error is NativeError.OK
                and result.valid_bytes == size_bytes
                and result.batch_count == self.batch_count
                and (result.next_offset if result.batch_count else self.base_offset)
                == self.next_offset
                and result.last_leader_epoch == self.last_leader_epoch
            )
            if not same:
                raise StorageError(
                    f"{self.data_path}: the compacted data does not hold the same batches "
                    f"({result.error.name}, {result.batch_count} batches, next offset "
                    f"{result.next_offset}); the segment is left as it was"
                )
        except BaseException:
            os.close(fd)
            files.unlink_if_present(self.replacement_path())
            raise
        files.unlink_if_present(files.index_path(self.directory, self.base_offset))
        files.fsync_directory(self.directory)
        os.replace(self.replacement_path(), self.data_path)
        files.fsync_directory(self.directory)
        power_loss.durable(self.data_path, size_bytes)
        if self.retired_fd >= 0:
            os.close(self.retired_fd)
        self.retired_fd = self.fd
        self.fd = fd
        self._close_direct()  # it reads the replaced file, whose pages were dropped
        self.cache_dropped_bytes = 0
        self.generation += 1
        self.changes += 1
        self.size_bytes = size_bytes
        self.index = SegmentIndex.from_state(state)
        self.last_batch = None
        if self.batch_count:
            self.last_batch = self.locate(KeyKind.ENTRY, self.last_entry_index)
        if self.sealed:
            self._write_index()

    # ---- lifecycle ----------------------------------------------------------------

    def close(self) -> None:
        self._close_direct()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.retired_fd >= 0:
            os.close(self.retired_fd)
            self.retired_fd = -1

    def _discard_read_ahead(self) -> None:
        if self.reading_ahead is not None:
            self.reading_ahead.discard()
            self.reading_ahead = None

    def _close_direct(self) -> None:
        self._discard_read_ahead()
        if self.direct_fd is not None and self.direct_fd >= 0:
            os.close(self.direct_fd)
        self.direct_fd = -1

    def delete(self) -> None:
        """Close and remove the files: data first, so a crash leaves at worst orphan
        metadata, which recovery removes."""
        self.close()
        files.unlink_if_present(self.data_path)
        files.unlink_if_present(files.meta_path(self.directory, self.base_offset))
        files.unlink_if_present(files.index_path(self.directory, self.base_offset))
