"""Log compaction over record batches: for each key, keep only its latest record.

Pure functions over bytes, no files: the caller builds an `OffsetMap` (the latest offset
of every key) from the batches it compacts against, then rewrites batches with it.

Kafka's rules, with one difference forced by the Raft log:

- A data record stays when its offset is the latest of its key (a key the map does not
  know stays too: the map may cover less than the log). Records without a key are
  dropped, as Kafka's cleaner drops them (a compacted topic refuses them at produce).
- A tombstone (null value) that is the latest of its key stays until the caller says
  tombstones may go (`delete.retention.ms` after the segment's newest record).
- Offsets never change: a thinned batch keeps its baseOffset and lastOffsetDelta, so
  consumers see sparse offsets and the next offset stays where it was, and it keeps
  its producer fields and base sequence, so idempotence state rebuilt from the log is
  unchanged (`raftlog.partition.replica` takes the last sequence from lastOffsetDelta).
- Every batch is also a Raft entry (its ordinal is the entry index), so a batch whose
  records all go is kept as an empty batch (recordsCount 0, Kafka's own form for a
  header it must retain) instead of being removed. Kafka clients skip empty batches.
- Control batches (our NOOP/CONFIG/SEAL entries, transaction markers) and
  transactional batches are kept byte for byte.

The output is canonical: a rewritten batch is the original header with recordsCount,
batchLength and CRC recomputed and compression cleared, followed by the kept records'
bytes exactly as they were encoded. It depends only on the original batch and on which
records are kept, so compacting again, or compacting on another replica with the same
inputs, gives the same bytes.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator

import attrs

from raftlog import native
from raftlog.protocol.errors import DecodeError
from raftlog.protocol.primitives import read_varint, read_varlong
from raftlog.protocol.records import CompressionCodec, decompress

BATCH_HEADER_BYTES = 61
LOG_OVERHEAD_BYTES = 12
CRC_START = 21
CONTROL_ATTRIBUTE = 0x20
TRANSACTIONAL_ATTRIBUTE = 0x10
COMPRESSION_MASK = 0x07
KEY_DIGEST_BYTES = 16
"""Keys are remembered by a 128-bit BLAKE2b digest, so the map's memory is bounded per key
whatever the key sizes (Kafka's cleaner does the same with MD5)."""
KEYS_MAX_DEFAULT = 1_000_000
UNCOMPRESSED_BYTES_MAX = 64 << 20

_I32 = struct.Struct(">i")
_I16 = struct.Struct(">h")
_U32 = struct.Struct(">I")


class CompactionError(ValueError):
    """Batches that compaction cannot read, or a map that would exceed its bound."""


@attrs.frozen
class RecordSpan:
    """One record inside a batch's (decompressed) records section."""

    offset_delta: int
    key: bytes | None
    tombstone: bool
    start: int
    end: int


@attrs.frozen
class BatchRecords:
    header: native.BatchHeader
    records: bytes | memoryview
    """The records section, decompressed."""
    spans: tuple[RecordSpan, ...]


def key_digest(key: bytes) -> bytes:
    return hashlib.blake2b(key, digest_size=KEY_DIGEST_BYTES).digest()


def is_compactable(header: native.BatchHeader) -> bool:
    """Whether compaction may remove records from this batch at all."""
    return not header.attributes & (CONTROL_ATTRIBUTE | TRANSACTIONAL_ATTRIBUTE)


def read_records(
    batch: bytes | bytearray | memoryview, uncompressed_bytes_max: int = UNCOMPRESSED_BYTES_MAX
) -> BatchRecords:
    """Split one batch into its records (keys and value nullness only are decoded)."""
    view = memoryview(batch)
    header = native.parse_batch_header(view)
    if header.size_bytes > len(view):
        raise CompactionError(f"batch at offset {header.base_offset} is truncated")
    try:
        codec = CompressionCodec(header.attributes & COMPRESSION_MASK)
        records = decompress(
            codec, view[BATCH_HEADER_BYTES : header.size_bytes], uncompressed_bytes_max
        )
        spans = tuple(_split(memoryview(records), header.records_count))
    except (DecodeError, ValueError) as error:
        raise CompactionError(
            f"batch at offset {header.base_offset} has unreadable records: {error}"
        ) from error
    return BatchRecords(header, records, spans)


def _split(records: memoryview, count: int) -> Iterator[RecordSpan]:
    position = 0
    for index in range(count):
        length, body = read_varint(records, position, "record length")
        end = body + length
        if length <= 0 or end > len(records):
            raise CompactionError(f"record {index} of length {length} runs past the batch")
        cursor = body + 1  # attributes
        _timestamp_delta, cursor = read_varlong(records, cursor, "timestampDelta")
        offset_delta, cursor = read_varint(records, cursor, "offsetDelta")
        key_length, cursor = read_varint(records, cursor, "key length")
        key = None
        if key_length >= 0:
            key = bytes(records[cursor : cursor + key_length])
            cursor += key_length
        value_length, cursor = read_varint(records, cursor, "value length")
        if cursor > end or (value_length > 0 and cursor + value_length > end):
            raise CompactionError(f"record {index} fields run past its length")
        yield RecordSpan(offset_delta, key, value_length < 0, position, end)
        position = end
    if position != len(records):
        raise CompactionError(f"{len(records) - position} byte(s) after the last record")


def keyless_records(batch: bytes | bytearray | memoryview) -> int:
    """How many records of a producer's batch have a null key (refused by compacted
    topics, as Kafka refuses them)."""
    return sum(1 for span in read_records(batch).spans if span.key is None)


def iter_batches(data: bytes | bytearray | memoryview) -> Iterator[memoryview]:
    """The batches of concatenated stored batches, by their length fields."""
    view = memoryview(data)
    position = 0
    while position < len(view):
        if len(view) - position < BATCH_HEADER_BYTES:
            raise CompactionError(f"a batch header at {position} is truncated")
        size = _I32.unpack_from(view, position + 8)[0] + LOG_OVERHEAD_BYTES
        if size < BATCH_HEADER_BYTES or position + size > len(view):
            raise CompactionError(f"the batch at {position} runs past the data")
        yield view[position : position + size]
        position += size


@attrs.define(eq=False)
class OffsetMap:
    """The latest offset of every key seen, by key digest; bounded in keys."""

    keys_max: int = KEYS_MAX_DEFAULT
    latest: dict[bytes, int] = attrs.field(factory=dict)

    def add(self, data: bytes | bytearray | memoryview, below_offset: int | None = None) -> None:
        """Take in every keyed record of compactable batches, oldest first; records at
        or past `below_offset` are ignored (they are not part of the sealed data)."""
        for batch in iter_batches(data):
            header = native.parse_batch_header(batch)
            if not is_compactable(header) or header.records_count == 0:
                continue
            if below_offset is not None and header.base_offset >= below_offset:
                continue
            for span in read_records(batch).spans:
                offset = header.base_offset + span.offset_delta
                if span.key is None or (below_offset is not None and offset >= below_offset):
                    continue
                digest = key_digest(span.key)
                if digest not in self.latest and len(self.latest) >= self.keys_max:
                    raise CompactionError(
                        f"more than {self.keys_max} distinct keys; raise the bound or "
                        f"compact fewer segments per pass"
                    )
                if offset >= self.latest.get(digest, -1):
                    self.latest[digest] = offset

    def __len__(self) -> int:
        return len(self.latest)


@attrs.frozen
class CompactionResult:
    data: bytes
    batches: int
    records_before: int
    records_after: int
    tombstones_kept: int
    """Tombstones still present afterwards (a later pass may remove them)."""

    @property
    def changed(self) -> bool:
        return self.records_after != self.records_before


def compact_batch(
    batch: bytes | bytearray | memoryview, offsets: OffsetMap, drop_tombstones: bool
) -> tuple[bytes, int, int, int]:
    """(the batch after compaction, records before, records after, tombstones kept)."""
    view = memoryview(batch)
    header = native.parse_batch_header(view)
    if not is_compactable(header) or header.records_count == 0:
        return bytes(view), header.records_count, header.records_count, 0
    parsed = read_records(view)
    kept = [span for span in parsed.spans if _keeps(span, header, offsets, drop_tombstones)]
    tombstones = sum(1 for span in kept if span.tombstone)
    if len(kept) == len(parsed.spans):
        return bytes(view), len(kept), len(kept), tombstones
    records = memoryview(parsed.records)
    rewritten = _rewrite(view, [records[span.start : span.end] for span in kept])
    return rewritten, len(parsed.spans), len(kept), tombstones


def _keeps(
    span: RecordSpan, header: native.BatchHeader, offsets: OffsetMap, drop_tombstones: bool
) -> bool:
    if span.key is None:
        return False
    offset = header.base_offset + span.offset_delta
    if offset < offsets.latest.get(key_digest(span.key), -1):
        return False
    return not (span.tombstone and drop_tombstones)


def _rewrite(original: memoryview, kept: list[memoryview]) -> bytes:
    """The original header with the kept records, uncompressed, and a new CRC."""
    payload = b"".join(kept)
    out = bytearray(original[:BATCH_HEADER_BYTES])
    out += payload
    _I32.pack_into(out, 8, len(out) - LOG_OVERHEAD_BYTES)
    attributes = _I16.unpack_from(out, 21)[0] & ~COMPRESSION_MASK
    _I16.pack_into(out, 21, attributes)
    _I32.pack_into(out, 57, len(kept))
    _U32.pack_into(out, 17, native.crc32c(memoryview(out)[CRC_START:]))
    return bytes(out)


def compact_data(
    data: bytes | bytearray | memoryview, offsets: OffsetMap, drop_tombstones: bool
) -> CompactionResult:
    """Compact concatenated stored batches (one segment file's data)."""
    pieces: list[bytes] = []
    before = after = tombstones = 0
    for batch in iter_batches(data):
        rewritten, batch_before, batch_after, batch_tombstones = compact_batch(
            batch, offsets, drop_tombstones
        )
        pieces.append(rewritten)
        before += batch_before
        after += batch_after
        tombstones += batch_tombstones
    return CompactionResult(b"".join(pieces), len(pieces), before, after, tombstones)
