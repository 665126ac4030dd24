"""Frozen values that storage hands out: results, positions, reports, snapshots."""

import pathlib

import attrs


@attrs.frozen
class AppendResult:
    """Where an appended batch landed."""

    entry_index: int
    """The batch's ordinal in the log (its Raft index)."""
    base_offset: int
    last_offset: int
    position: int
    """Byte position of the batch in its segment's data file."""
    size_bytes: int
    segment_base_offset: int


@attrs.frozen
class FileSlice:
    """Whole batches lying contiguous in one data file, for `sendfile` or `pread`.

    The file may be deleted by retention after this value was made; opening `path`
    then fails with FileNotFoundError, which a fetch reports as out of range."""

    path: pathlib.Path
    position: int
    size_bytes: int
    first_offset: int
    """Base offset of the first batch (may be below the offset asked for)."""
    last_offset: int
    """Last offset of the last batch; first_offset - 1 when the slice is empty."""
    batch_count: int
    generation: int = 0
    """The data file's generation (compaction swaps in a new file and bumps it)."""


@attrs.frozen
class SegmentData:
    """A whole segment file's bytes, read for compaction, and the change count they
    were read at (`SegmentedLog.replace_segment_data` refuses if it has moved)."""

    base_offset: int
    data: bytes
    changes: int
    max_timestamp: int


@attrs.frozen
class TimestampLookup:
    """The first batch whose max timestamp is >= the target (ListOffsets by time).

    The exact record inside the batch is for the caller, who parses records."""

    base_offset: int
    last_offset: int
    max_timestamp: int
    entry_index: int


@attrs.frozen
class DurablePoint:
    """Everything up to `entry_index` (and below `next_offset`) is on disk."""

    entry_index: int
    next_offset: int


@attrs.frozen
class RecoveryReport:
    """What opening the log found in its tail segment, and what it cut."""

    segment_base_offset: int
    scanned_bytes: int
    valid_bytes: int
    truncated_bytes: int
    batch_count: int
    error_code: int
    """The native error code that stopped the scan (0: the tail was clean)."""
    rebuilt_index_segments: tuple[int, ...]
    """Base offsets of sealed segments whose index file was missing or stale."""
    removed_files: tuple[str, ...]
    """Leftovers of interrupted operations (temporary files, orphan metadata)."""


@attrs.frozen
class SegmentInfo:
    """A snapshot of one segment."""

    base_offset: int
    base_entry_index: int
    next_offset: int
    batch_count: int
    size_bytes: int
    max_timestamp: int
    path: pathlib.Path
    sealed: bool


@attrs.frozen
class LogStatistics:
    start_offset: int
    next_offset: int
    first_entry_index: int
    last_entry_index: int
    durable_entry_index: int
    size_bytes: int
    segment_count: int
