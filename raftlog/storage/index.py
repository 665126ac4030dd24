"""A segment's sparse offset/entry index and time index, in memory and on disk.

Both indexes get an entry at the same batches (the rule in `native.IndexState`), so
entry i of the time index and entry i of the offset index name the same batch; a time
lookup borrows the entry number from the offset index. The append path applies the rule
here in Python; the recovery scan applies the same rule in C; a test checks they agree.

On disk (`<base>.index`, written when a segment is sealed): a fixed header carrying the
segment's summary and the data size it describes, the offset entries, the time entries,
all covered by a CRC32C. An index whose data size differs from the data file is stale
and is rebuilt from the data.
"""

import struct

import attrs

from raftlog import native
from raftlog.invariant import invariant

INDEX_MAGIC = b"RLIX"
INDEX_VERSION = 1
# magic, version, data_bytes, batch_count, base_offset, next_offset, max_timestamp,
# last_leader_epoch, entry_count, crc32c (of everything after the header's crc field).
_HEADER = struct.Struct("<4sIQQqqqqQI")


@attrs.frozen
class SegmentSummary:
    """What a sealed segment's index file says about its data file."""

    data_bytes: int
    batch_count: int
    next_offset: int
    max_timestamp: int
    last_leader_epoch: int


@attrs.define(eq=False)
class SegmentIndex:
    """The growing sparse indexes of one segment."""

    base_offset: int
    interval_bytes: int
    offset_entries: bytearray
    time_entries: bytearray
    bytes_since_entry: int
    running_max_timestamp: int

    @classmethod
    def empty(cls, base_offset: int, interval_bytes: int) -> "SegmentIndex":
        return cls(base_offset, interval_bytes, bytearray(), bytearray(), interval_bytes, -1)

    @classmethod
    def from_state(cls, state: native.IndexState) -> "SegmentIndex":
        return cls(
            state.segment_base_offset,
            state.interval_bytes,
            bytearray(state.offset_index),
            bytearray(state.time_index),
            state.bytes_since_entry,
            state.running_max_timestamp,
        )

    @property
    def entry_count(self) -> int:
        return len(self.offset_entries) // native.OFFSET_INDEX_ENTRY_BYTES

    def state(self, next_relative_entry: int) -> native.IndexState:
        return native.IndexState(
            self.base_offset,
            next_relative_entry,
            self.interval_bytes,
            self.bytes_since_entry,
            self.running_max_timestamp,
            bytes(self.offset_entries),
            bytes(self.time_entries),
        )

    def on_append(
        self,
        position: int,
        base_offset: int,
        relative_entry: int,
        size_bytes: int,
        max_timestamp: int,
    ) -> None:
        """Apply the index rule to one appended batch (same rule as the C scan)."""
        self.running_max_timestamp = max(self.running_max_timestamp, max_timestamp)
        if self.bytes_since_entry >= self.interval_bytes:
            relative_offset = base_offset - self.base_offset
            self.offset_entries += native.encode_offset_index_entry(
                relative_offset, relative_entry, position
            )
            self.time_entries += native.encode_time_index_entry(
                self.running_max_timestamp, relative_offset, position
            )
            self.bytes_since_entry = 0
        self.bytes_since_entry += size_bytes

    def _start(self, i: int) -> tuple[int, int]:
        """(file position, relative entry) where a header walk may start."""
        if i < 0:
            return 0, 0
        _, relative_entry, position = native.offset_index_entry(self.offset_entries, i)
        return position, relative_entry

    def start_for_offset(self, offset: int) -> tuple[int, int]:
        relative = offset - self.base_offset
        invariant(0 <= relative < 2**32, "offset lookup outside the segment's span")
        return self._start(
            native.lookup_offset_index(self.offset_entries, native.KeyKind.OFFSET, relative)
        )

    def start_for_entry(self, relative_entry: int) -> tuple[int, int]:
        invariant(0 <= relative_entry < 2**32, "entry lookup outside the segment's span")
        return self._start(
            native.lookup_offset_index(self.offset_entries, native.KeyKind.ENTRY, relative_entry)
        )

    def start_for_timestamp(self, timestamp: int) -> tuple[int, int]:
        return self._start(native.lookup_time_index(self.time_entries, timestamp))

    def last_entry(self) -> tuple[int, int, int, int] | None:
        """(relative offset, relative entry, position, running max timestamp) of the last
        entry, or None."""
        if self.entry_count == 0:
            return None
        i = self.entry_count - 1
        relative_offset, relative_entry, position = native.offset_index_entry(
            self.offset_entries, i
        )
        timestamp, _, _ = native.time_index_entry(self.time_entries, i)
        return relative_offset, relative_entry, position, timestamp

    def drop_from(self, position: int) -> None:
        """Forget entries at or after `position`; the caller then fixes the rule state."""
        keep = 0
        while (
            keep < self.entry_count
            and native.offset_index_entry(self.offset_entries, keep)[2] < position
        ):
            keep += 1
        del self.offset_entries[keep * native.OFFSET_INDEX_ENTRY_BYTES :]
        del self.time_entries[keep * native.TIME_INDEX_ENTRY_BYTES :]

    def encode(self, summary: SegmentSummary) -> bytes:
        body = bytes(self.offset_entries) + bytes(self.time_entries)
        header_without_crc = _HEADER.pack(
            INDEX_MAGIC,
            INDEX_VERSION,
            summary.data_bytes,
            summary.batch_count,
            self.base_offset,
            summary.next_offset,
            summary.max_timestamp,
            summary.last_leader_epoch,
            self.entry_count,
            0,
        )[:-4]
        crc = native.crc32c(body, native.crc32c(header_without_crc))
        return header_without_crc + struct.pack("<I", crc) + body


def decode_index(
    data: bytes, base_offset: int, interval_bytes: int, data_bytes: int
) -> tuple[SegmentIndex, SegmentSummary] | None:
    """The index and summary in `data`, or None if it is corrupt or not for this data."""
    if len(data) < _HEADER.size:
        return None
    (
        magic,
        version,
        summary_bytes,
        batch_count,
        index_base_offset,
        next_offset,
        max_timestamp,
        last_leader_epoch,
        entry_count,
        crc,
    ) = _HEADER.unpack_from(data)
    offset_bytes = entry_count * native.OFFSET_INDEX_ENTRY_BYTES
    time_bytes = entry_count * native.TIME_INDEX_ENTRY_BYTES
    body = data[_HEADER.size :]
    checks = [
        magic == INDEX_MAGIC,
        version == INDEX_VERSION,
        index_base_offset == base_offset,
        summary_bytes == data_bytes,
        len(body) == offset_bytes + time_bytes,
        native.crc32c(body, native.crc32c(data[: _HEADER.size - 4])) == crc,
    ]
    if not all(checks):
        return None
    offset_entries, time_entries = body[:offset_bytes], body[offset_bytes:]
    if not (
        native.check_offset_index(offset_entries, data_bytes)
        and native.check_time_index(time_entries, data_bytes)
    ):
        return None
    summary = SegmentSummary(
        summary_bytes, batch_count, next_offset, max_timestamp, last_leader_epoch
    )
    index = SegmentIndex(
        base_offset,
        interval_bytes,
        bytearray(offset_entries),
        bytearray(time_entries),
        interval_bytes,
        max_timestamp,
    )
    last = index.last_entry()
    if last is not None:
        index.bytes_since_entry = data_bytes - last[2]
    return index, summary
