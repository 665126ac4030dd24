"""Raft entries as Kafka record batches: the one log is both the Raft log and the data.

A DATA entry's payload is a client's record batch. Entries the Raft core makes itself (the
leader's NOOP, membership changes, the SEAL) become Kafka *control batches* holding one
control record whose type is ours (Kafka clients skip control batches they do not
recognise, as they skip transaction markers). So a segment file holds nothing but valid
magic-v2 batches, and every entry, of any kind, occupies at least one offset.

Offsets and epochs are stamped when an entry is persisted, by each replica for itself: the
base offset of entry i is the offset after entry i-1, and the epoch is the entry's term.
By Raft's log matching property every replica computes the same values, so replicas stay
byte-identical without the leader having to know offsets before it proposes.
"""

from __future__ import annotations

import struct

from raftlog import native
from raftlog.raft.entry import Entry, EntryKind

CONTROL_ATTRIBUTE = 0x20
"""Bit 5 of a batch's attributes: a control batch."""
CONTROL_TYPE_BASE = 0x7000
"""Our control record types are CONTROL_TYPE_BASE + EntryKind, far from Kafka's 0-6."""
NO_TIMESTAMP = -1
_HEADER_AFTER_CRC = struct.Struct(">hiqqqhii")
_PREFIX = struct.Struct(">qiibI")  # baseOffset, batchLength, leaderEpoch, magic, crc
_CONTROL_KEY = struct.Struct(">hh")  # version, type
BATCH_HEADER_BYTES = 61


class EntryBatchError(ValueError):
    """A stored batch cannot be read back as a Raft entry."""


def _zigzag_varint(value: int) -> bytes:
    encoded = (value << 1) ^ (value >> 63)
    out = bytearray()
    while encoded >= 0x80:
        out.append((encoded & 0x7F) | 0x80)
        encoded >>= 7
    out.append(encoded)
    return bytes(out)


def _read_zigzag_varint(data: memoryview, position: int) -> tuple[int, int]:
    shift = 0
    result = 0
    while True:
        if position >= len(data) or shift > 63:
            raise EntryBatchError("control record varint is truncated or too long")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), position
        shift += 7


SEAL_THROUGH = struct.Struct(">q")
"""A SEAL entry's payload, when it has one: the offset its batch reaches at least.

A head whose successor was created ahead at offset B promises to end at B - 1; its SEAL
batch then covers every offset from its own base through B - 1 (one control record, a
larger lastOffsetDelta, as compaction leaves behind too), so the sealed segment ends
exactly where the successor begins. Every replica stamps the same span, since each
computes it from the same base offset."""
OFFSET_DELTA_MAX = (1 << 31) - 1


def seal_payload(through_offset: int | None) -> bytes:
    return b"" if through_offset is None else SEAL_THROUGH.pack(through_offset)


def _seal_span(payload: bytes, base_offset: int) -> int:
    """The lastOffsetDelta of a SEAL batch stored at `base_offset`."""
    if len(payload) != SEAL_THROUGH.size:
        return 0
    (through,) = SEAL_THROUGH.unpack(payload)
    return min(max(through - base_offset, 0), OFFSET_DELTA_MAX)


def control_batch(kind: EntryKind, payload: bytes, last_offset_delta: int = 0) -> bytearray:
    """An unstamped control batch carrying one entry of `kind` (not DATA)."""
    if kind is EntryKind.DATA:
        raise ValueError("DATA entries are client batches, not control batches")
    key = _CONTROL_KEY.pack(0, CONTROL_TYPE_BASE + int(kind))
    body = (
        b"\x00"  # record attributes
        + _zigzag_varint(0)  # timestamp delta
        + _zigzag_varint(0)  # offset delta
        + _zigzag_varint(len(key))
        + key
        + _zigzag_varint(len(payload))
        + payload
        + _zigzag_varint(0)  # header count
    )
    record = _zigzag_varint(len(body)) + body
    after_crc = _HEADER_AFTER_CRC.pack(
        CONTROL_ATTRIBUTE, last_offset_delta, NO_TIMESTAMP, NO_TIMESTAMP, -1, -1, -1, 1
    )
    covered = after_crc + record
    batch_length = len(covered) + 9  # leaderEpoch(4) + magic(1) + crc(4)
    prefix = _PREFIX.pack(0, batch_length, 0, 2, native.crc32c(covered))
    return bytearray(prefix + covered)


def entry_to_batch(entry: Entry, base_offset: int) -> bytes | bytearray:
    """The stamped batch that stores `entry` at `base_offset` (a fresh copy).

    A DATA entry's batch is copied once, straight into `bytes`, which `batch_to_entry`
    then keeps as the stored entry's payload without another copy: a replica writes
    megabytes a second through here.
    """
    if entry.kind is EntryKind.DATA:
        error, batch = native.stamped_batch(entry.payload, base_offset, entry.term)
        if error is not native.NativeError.OK:
            raise EntryBatchError(f"entry {entry.index} cannot be stamped: {error.name}")
        return batch
    if entry.kind is EntryKind.SEAL:
        control = control_batch(entry.kind, entry.payload, _seal_span(entry.payload, base_offset))
    else:
        control = control_batch(entry.kind, entry.payload)
    error = native.stamp_batch(control, base_offset, entry.term)
    if error is not native.NativeError.OK:
        raise EntryBatchError(f"entry {entry.index} cannot be stamped: {error.name}")
    return control


def batch_to_entry(batch: bytes | bytearray | memoryview, index: int) -> Entry:
    """The Raft entry a stored batch holds; `index` is the batch's position in the log."""
    view = memoryview(batch)
    header = native.parse_batch_header(view)
    term = header.partition_leader_epoch
    if header.attributes & CONTROL_ATTRIBUTE:
        kind, payload = _control_record(view[BATCH_HEADER_BYTES:])
        if kind is not None:
            return Entry(term, index, kind, payload)
    whole = batch if type(batch) is bytes else bytes(view)  # immutable already: no copy
    return Entry(term, index, EntryKind.DATA, whole)


def _control_record(records: memoryview) -> tuple[EntryKind | None, bytes]:
    _length, position = _read_zigzag_varint(records, 0)
    position += 1  # record attributes
    _timestamp_delta, position = _read_zigzag_varint(records, position)
    _offset_delta, position = _read_zigzag_varint(records, position)
    key_length, position = _read_zigzag_varint(records, position)
    if key_length != _CONTROL_KEY.size or position + key_length > len(records):
        raise EntryBatchError("control record key is not a (version, type) pair")
    _version, control_type = _CONTROL_KEY.unpack_from(records, position)
    position += key_length
    try:
        kind = EntryKind(control_type - CONTROL_TYPE_BASE)
    except ValueError:
        return None, b""  # a control batch that is not ours: stored as opaque data
    value_length, position = _read_zigzag_varint(records, position)
    if value_length < 0 or position + value_length > len(records):
        raise EntryBatchError("control record value is truncated")
    return kind, bytes(records[position : position + value_length])


def offsets_after(batch: bytes | bytearray | memoryview) -> int:
    """The offset the next entry starts at, after this stored batch."""
    return native.parse_batch_header(batch).last_offset + 1
