"""Every size and count bound of raftlog's storage, in one place.

The module constants are hard ceilings fixed by formats (index entries hold 32-bit
positions) or by memory we are willing to commit; `StorageLimits` holds the
configurable bounds and refuses values outside the ceilings, so a bad
configuration fails at start-up instead of deep inside an append.
"""

import attrs

from raftlog.invariant import invariant

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

# Kafka record batch v2: 61-byte header, of which batchLength excludes the first 12.
BATCH_HEADER_BYTES = 61
BATCH_LOG_OVERHEAD_BYTES = 12

# A batch is held whole in memory on the produce and replication paths.
BATCH_BYTES_CEILING = 64 * MIB
# Index entries store file positions and relative offsets as unsigned 32-bit values.
SEGMENT_BYTES_CEILING = 2 * GIB - 1
RELATIVE_SPAN_CEILING = 2**32 - 1
# One fetch response is assembled from file slices; cap what one read may cover.
FETCH_BYTES_CEILING = 256 * MIB
# Opening a log lists its directory and keeps one open descriptor per segment.
SEGMENT_COUNT_CEILING = 100_000
# Waiters parked on one group committer.
DURABILITY_WAITERS_CEILING = 1_000_000


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name}={value} is outside [{low}, {high}]")


@attrs.frozen
class StorageLimits:
    """The configurable bounds of one log; every field is checked on construction."""

    batch_bytes_max: int = 16 * MIB
    """Largest record batch accepted, log overhead included."""
    segment_bytes_max: int = 1 * GIB
    """A segment rolls before an append would take it past this size."""
    index_interval_bytes: int = 4 * KIB
    """Data bytes between two sparse index entries: bounds every header walk."""
    fetch_bytes_max: int = 64 * MIB
    """Most bytes one `read_by_offset` or `read_entries` call may cover."""
    read_entries_count_max: int = 10_000
    """Most batches one `read_entries` call returns."""
    segment_count_max: int = 10_000
    """Most segments one log directory may hold."""
    durability_waiters_max: int = 100_000
    """Most appenders parked in one group committer at a time."""
    recovery_chunk_bytes: int = 0
    """Read size of the recovery scan; 0 means max(4 MiB, batch_bytes_max)."""

    def __attrs_post_init__(self) -> None:
        _check_range(
            "batch_bytes_max", self.batch_bytes_max, BATCH_HEADER_BYTES, BATCH_BYTES_CEILING
        )
        _check_range(
            "segment_bytes_max", self.segment_bytes_max, self.batch_bytes_max, SEGMENT_BYTES_CEILING
        )
        _check_range("index_interval_bytes", self.index_interval_bytes, 1, self.segment_bytes_max)
        _check_range("fetch_bytes_max", self.fetch_bytes_max, 1, FETCH_BYTES_CEILING)
        _check_range("read_entries_count_max", self.read_entries_count_max, 1, 1_000_000)
        _check_range("segment_count_max", self.segment_count_max, 1, SEGMENT_COUNT_CEILING)
        _check_range(
            "durability_waiters_max", self.durability_waiters_max, 1, DURABILITY_WAITERS_CEILING
        )
        if self.recovery_chunk_bytes != 0:
            _check_range(
                "recovery_chunk_bytes",
                self.recovery_chunk_bytes,
                self.batch_bytes_max,
                BATCH_BYTES_CEILING * 2,
            )

    @property
    def scan_chunk_bytes(self) -> int:
        """The recovery scan's read size: at least one whole batch of the largest size."""
        chunk_bytes = self.recovery_chunk_bytes or max(4 * MIB, self.batch_bytes_max)
        invariant(chunk_bytes >= self.batch_bytes_max, "scan chunk must hold a whole batch")
        return chunk_bytes
