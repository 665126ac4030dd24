"""Compact binary encoding of messages and heartbeat batches.

Layout: a version byte, a type tag byte, then the fields in declaration order. Integers are
unsigned LEB128 varints (< 2**64), booleans one byte (0 or 1), bytes a varint length then
the bytes, sequences a varint count then the items; an entry is term, index, kind byte,
payload. ``decode`` checks every length against what remains and against the limits below
before reading, and raises ``CodecError`` on anything malformed; it never reads out of
bounds and never trusts a count.
"""

from __future__ import annotations

import itertools
from typing import Any

import attrs

from raftlog.raft.entry import Entry, EntryKind
from raftlog.raft.heartbeat_batch import (
    Batch,
    GroupHeartbeat,
    GroupHeartbeatResponse,
    HeartbeatBatch,
    HeartbeatResponseBatch,
)
from raftlog.raft.messages import MESSAGE_TYPES, Message

CODEC_VERSION = 1
MAX_VALUE = (1 << 64) - 1
MAX_ITEMS = 1 << 20
"""Most entries, members or heartbeats one message may carry."""
DEFAULT_MAX_MESSAGE_SIZE_BYTES = 64 << 20
GATHER_BYTES_MIN = 4096
"""Entry payloads this large are sent by reference (`encode_parts`); smaller ones cost
less to copy than to carry as a part of their own."""


class CodecError(ValueError):
    """The bytes are not a valid encoded message."""


_TAG_BY_TYPE: dict[type, int] = {cls: position + 1 for position, cls in enumerate(MESSAGE_TYPES)}
_TAG_BY_TYPE[HeartbeatBatch] = 100
_TAG_BY_TYPE[HeartbeatResponseBatch] = 101
_TYPE_BY_TAG = {tag: cls for cls, tag in _TAG_BY_TYPE.items()}

_INT, _BOOL, _BYTES, _ENTRIES, _INTS, _HEARTBEATS, _RESPONSES = range(7)
_KIND_BY_ANNOTATION = {
    "int": _INT,
    "bool": _BOOL,
    "bytes": _BYTES,
    "tuple[Entry, ...]": _ENTRIES,
    "tuple[int, ...]": _INTS,
    "tuple[GroupHeartbeat, ...]": _HEARTBEATS,
    "tuple[GroupHeartbeatResponse, ...]": _RESPONSES,
}


def _schema(cls: type) -> tuple[tuple[str, int], ...]:
    fields = attrs.fields(cls)
    return tuple((field.name, _KIND_BY_ANNOTATION[str(field.type)]) for field in fields)


_SCHEMAS = {cls: _schema(cls) for cls in _TAG_BY_TYPE}


# ------------------------------------------------------------------ encoding


def _put_int(out: bytearray, value: int) -> None:
    if not 0 <= value <= MAX_VALUE:
        raise CodecError(f"integer {value} outside 0..2**64-1")
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _put_bytes(out: bytearray, value: bytes) -> None:
    _put_int(out, len(value))
    out += value


def _put_field(
    out: bytearray, kind: int, value: Any, parts: list[bytes | bytearray] | None
) -> None:
    if kind == _INT:
        _put_int(out, value)
    elif kind == _BOOL:
        out.append(1 if value else 0)
    elif kind == _BYTES:
        _put_bytes(out, value)
    elif kind == _INTS:
        _put_int(out, len(value))
        for item in value:
            _put_int(out, item)
    elif kind == _ENTRIES:
        _put_int(out, len(value))
        for entry in value:
            _put_int(out, entry.term)
            _put_int(out, entry.index)
            out.append(int(entry.kind))
            payload = entry.payload
            if parts is not None and len(payload) >= GATHER_BYTES_MIN:
                _put_int(out, len(payload))
                parts.append(bytes(out))  # the small bytes so far; the payload by reference
                parts.append(payload)
                out.clear()
            else:
                _put_bytes(out, payload)
    elif kind == _HEARTBEATS:
        _put_int(out, len(value))
        for item in value:
            for name, item_kind in _HEARTBEAT_FIELDS:
                _put_field(out, item_kind, getattr(item, name), None)
    else:
        _put_int(out, len(value))
        for item in value:
            for name, item_kind in _RESPONSE_FIELDS:
                _put_field(out, item_kind, getattr(item, name), None)


def encode(message: Message | Batch, prefix: bytes = b"") -> bytearray:
    """Bytes for ``message`` (any Raft message, or a heartbeat batch) after ``prefix``, in
    one fresh buffer the caller owns."""
    return _encode(message, prefix, None)


def encode_parts(message: Message | Batch, prefix: bytes = b"") -> list[bytes | bytearray]:
    """What `encode` gives, as buffers to send back to back: entry payloads of
    `GATHER_BYTES_MIN` or more are referenced rather than copied.

    An append carries megabytes of entries; copying them into the message, then the
    message into `bytes`, then behind a routing prefix, cost a tenth of a busy leader's
    event loop when it was profiled, and fresh megabyte buffers cost page faults besides.
    """
    parts: list[bytes | bytearray] = []
    out = _encode(message, prefix, parts)
    if out or not parts:
        parts.append(out)
    return parts


def _encode(
    message: Message | Batch, prefix: bytes, parts: list[bytes | bytearray] | None
) -> bytearray:
    tag = _TAG_BY_TYPE.get(type(message))
    if tag is None:
        raise CodecError(f"cannot encode {type(message).__name__}")
    out = bytearray(prefix)
    out += bytes((CODEC_VERSION, tag))
    for name, kind in _SCHEMAS[type(message)]:
        _put_field(out, kind, getattr(message, name), parts)
    return out


# ------------------------------------------------------------------ decoding


PAYLOAD_VIEW_MIN_BYTES = 64 << 10
"""Entry payloads from this size on are decoded as views of the message, not copies: a
follower received each batch of a replicated produce as a megabyte message and copied it
once more here before storing it. Smaller payloads are copied, so that a view never holds
a large message in memory for a few bytes of it."""


class _Reader:
    def __init__(self, data: bytes, position: int = 0) -> None:
        self.data = data  # immutable: views of it cannot change under their holders
        self.position = position
        self._view: memoryview | None = None

    def remaining(self) -> int:
        return len(self.data) - self.position

    def byte(self) -> int:
        if self.position >= len(self.data):
            raise CodecError("truncated message")
        value = self.data[self.position]
        self.position += 1
        return value

    def integer(self) -> int:
        position = self.position
        if position < len(self.data) and self.data[position] < 0x80:
            self.position = position + 1  # one byte: most terms, commits and flags
            return self.data[position]
        value = 0
        for shift in range(0, 70, 7):
            byte = self.byte()
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                if value > MAX_VALUE:
                    raise CodecError("varint exceeds 64 bits")
                return value
        raise CodecError("varint longer than 10 bytes")

    def boolean(self) -> bool:
        value = self.byte()
        if value > 1:
            raise CodecError(f"boolean byte is {value}")
        return value == 1

    def raw(self) -> bytes:
        length = self._length()
        value = self.data[self.position : self.position + length]
        self.position += length
        return value

    def payload(self) -> bytes | memoryview:
        """Like `raw`, but a view of the message from `PAYLOAD_VIEW_MIN_BYTES` on."""
        length = self._length()
        start = self.position
        self.position += length
        if length < PAYLOAD_VIEW_MIN_BYTES:
            return self.data[start : start + length]
        if self._view is None:
            self._view = memoryview(self.data)
        return self._view[start : start + length]

    def _length(self) -> int:
        length = self.integer()
        if length > self.remaining():
            raise CodecError(f"length {length} exceeds the {self.remaining()} bytes left")
        return length

    def count(self, minimum_item_bytes: int) -> int:
        count = self.integer()
        if count > MAX_ITEMS or count * minimum_item_bytes > self.remaining():
            raise CodecError(f"count {count} cannot fit in the {self.remaining()} bytes left")
        return count


def _entry(reader: _Reader) -> Entry:
    term = reader.integer()
    index = reader.integer()
    kind_byte = reader.byte()
    try:
        kind = EntryKind(kind_byte)
    except ValueError:
        raise CodecError(f"unknown entry kind {kind_byte}") from None
    return Entry(term, index, kind, reader.payload())


def _get_field(reader: _Reader, kind: int) -> Any:
    if kind == _INT:
        return reader.integer()
    if kind == _BOOL:
        return reader.boolean()
    if kind == _BYTES:
        return reader.raw()
    if kind == _INTS:
        return tuple(reader.integer() for _ in range(reader.count(1)))
    if kind == _ENTRIES:
        entries = tuple(_entry(reader) for _ in range(reader.count(4)))
        for previous, entry in itertools.pairwise(entries):
            if entry.index != previous.index + 1:
                raise CodecError("entries are not contiguous")
        return entries
    # Batches carry thousands of items: fields are read positionally, in schema order.
    if kind == _HEARTBEATS:
        kinds = _HEARTBEAT_KINDS
        return tuple(
            GroupHeartbeat(*[_get_field(reader, k) for k in kinds])
            for _ in range(reader.count(len(kinds)))
        )
    kinds = _RESPONSE_KINDS
    return tuple(
        GroupHeartbeatResponse(*[_get_field(reader, k) for k in kinds])
        for _ in range(reader.count(len(kinds)))
    )


def decode(
    data: bytes, max_size_bytes: int = DEFAULT_MAX_MESSAGE_SIZE_BYTES, start: int = 0
) -> Message | Batch:
    """The message encoded in ``data`` from ``start`` on (a receiver skips its routing
    prefix without copying megabytes of entries); raises ``CodecError`` if malformed."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CodecError(f"expected bytes, got {type(data).__name__}")
    if not 0 <= start <= len(data):
        raise CodecError(f"start {start} outside a message of {len(data)} bytes")
    if len(data) - start > max_size_bytes:
        raise CodecError(f"message of {len(data) - start} bytes exceeds {max_size_bytes}")
    reader = _Reader(bytes(data), start)
    version = reader.byte()
    if version != CODEC_VERSION:
        raise CodecError(f"unknown codec version {version}")
    tag = reader.byte()
    cls = _TYPE_BY_TAG.get(tag)
    if cls is None:
        raise CodecError(f"unknown message tag {tag}")
    values = {name: _get_field(reader, kind) for name, kind in _SCHEMAS[cls]}
    if reader.remaining():
        raise CodecError(f"{reader.remaining()} trailing bytes after {cls.__name__}")
    return cls(**values)


_HEARTBEAT_FIELDS = _schema(GroupHeartbeat)
_RESPONSE_FIELDS = _schema(GroupHeartbeatResponse)
_HEARTBEAT_KINDS = tuple(kind for _name, kind in _HEARTBEAT_FIELDS)
_RESPONSE_KINDS = tuple(kind for _name, kind in _RESPONSE_FIELDS)
