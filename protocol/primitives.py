"""Kafka wire primitives: bounds-checked readers and writers, hand-written.

Readers take `(buffer, position)` and return `(value, new_position)`; the buffer is a
memoryview so that `records` and large byte fields come back as zero-copy slices. Every
read checks its bounds first and raises `DecodeError` naming what it was reading, so no
`IndexError` or `struct.error` ever leaks to a caller. Writers append to a `bytearray`
(usually an `Output`, which can also hold large zero-copy chunks, see `Output`).

Limits follow Kafka's own generated code: a string is at most 32767 bytes even in its
compact form, and an array or byte-string length can never exceed the bytes that remain
in the frame (so a 20-byte frame cannot make us allocate a million-element list).
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterable
from typing import Final

from raftlog.protocol.errors import DecodeError, EncodeError

__all__ = [
    "MAX_STRING_BYTES",
    "ZERO_UUID",
    "Output",
]

Buffer = memoryview
RecordsValue = bytes | bytearray | memoryview

MAX_STRING_BYTES: Final = 0x7FFF
"""Kafka rejects longer strings in both the int16 and the compact encodings."""

LARGE_CHUNK_BYTES: Final = 16 * 1024
"""A records blob at least this big is referenced by an `Output`, not copied into it."""

MAX_EMPTY_ELEMENTS: Final = 1 << 16
"""Cap on the count of an array whose elements may encode to zero bytes."""

ZERO_UUID: Final = uuid.UUID(int=0)
"""Kafka's `Uuid.ZERO_UUID`: the default of every uuid field."""

_INT8 = struct.Struct(">b")
_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")
_INT64 = struct.Struct(">q")
_UINT16 = struct.Struct(">H")
_UINT32 = struct.Struct(">I")
_FLOAT64 = struct.Struct(">d")

INT8_MIN, INT8_MAX = -(1 << 7), (1 << 7) - 1
INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


class Output(bytearray):
    """An encode buffer that keeps big records blobs by reference.

    Small fields accumulate in the bytearray itself. `add_chunk` moves what has
    accumulated into `parts` and appends the big chunk (a memoryview) after it, so a
    FetchResponse carrying 10 MiB of records copies those bytes once, in `getvalue`.
    """

    __slots__ = ("parts", "parts_bytes")

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[bytes | memoryview] = []
        self.parts_bytes = 0

    def add_chunk(self, chunk: RecordsValue) -> None:
        if len(self):
            head = bytes(self)
            self.parts.append(head)
            self.parts_bytes += len(head)
            self.clear()
        self.parts.append(chunk if isinstance(chunk, bytes | memoryview) else bytes(chunk))
        self.parts_bytes += len(chunk)

    def total_size(self) -> int:
        return self.parts_bytes + len(self)

    def chunks(self) -> list[bytes | memoryview]:
        """The encoded bytes as a list of buffers, for a vectored send without a join."""
        if not self.parts:
            return [bytes(self)]
        return [*self.parts, bytes(self)] if len(self) else list(self.parts)

    def getvalue(self) -> bytes:
        if not self.parts:
            return bytes(self)
        return b"".join(self.chunks())


def truncated(what: str, pos: int, need: int, buf: Buffer) -> DecodeError:
    return DecodeError(
        f"truncated reading {what}: need {need} byte(s) at offset {pos}, "
        f"buffer has {len(buf) - pos if pos <= len(buf) else 0}"
    )


# ---------------------------------------------------------------------------------------
# Fixed-size integers. The generated code merges runs of fixed fields into one Struct,
# so these are mostly for hand-written code (headers, records) and tests.


def _fixed(codec: struct.Struct, what: str):  # type: ignore[no-untyped-def]
    size = codec.size
    unpack_from = codec.unpack_from

    def read(buf: Buffer, pos: int) -> tuple[int, int]:
        if pos + size > len(buf):
            raise truncated(what, pos, size, buf)
        return unpack_from(buf, pos)[0], pos + size

    read.__name__ = f"read_{what}"
    read.__doc__ = f"Read a big-endian {what}."
    return read


read_int8 = _fixed(_INT8, "int8")
read_int16 = _fixed(_INT16, "int16")
read_int32 = _fixed(_INT32, "int32")
read_int64 = _fixed(_INT64, "int64")
read_uint16 = _fixed(_UINT16, "uint16")
read_uint32 = _fixed(_UINT32, "uint32")
read_float64 = _fixed(_FLOAT64, "float64")


def read_bool(buf: Buffer, pos: int) -> tuple[bool, int]:
    if pos >= len(buf):
        raise truncated("bool", pos, 1, buf)
    return buf[pos] != 0, pos + 1


def read_uuid(buf: Buffer, pos: int, what: str = "uuid") -> tuple[uuid.UUID, int]:
    if pos + 16 > len(buf):
        raise truncated(what, pos, 16, buf)
    return uuid.UUID(bytes=bytes(buf[pos : pos + 16])), pos + 16


def _packer(codec: struct.Struct, what: str, low: float, high: float):  # type: ignore[no-untyped-def]
    pack = codec.pack

    def write(out: bytearray, value: int) -> None:
        if not low <= value <= high:
            raise EncodeError(f"{what} value {value!r} out of range")
        out += pack(value)

    write.__name__ = f"write_{what}"
    return write


write_int8 = _packer(_INT8, "int8", INT8_MIN, INT8_MAX)
write_int16 = _packer(_INT16, "int16", INT16_MIN, INT16_MAX)
write_int32 = _packer(_INT32, "int32", INT32_MIN, INT32_MAX)
write_int64 = _packer(_INT64, "int64", INT64_MIN, INT64_MAX)
write_uint16 = _packer(_UINT16, "uint16", 0, 0xFFFF)
write_uint32 = _packer(_UINT32, "uint32", 0, 0xFFFFFFFF)


def write_float64(out: bytearray, value: float) -> None:
    out += _FLOAT64.pack(value)


def write_bool(out: bytearray, value: bool) -> None:
    out.append(1 if value else 0)


def write_uuid(out: bytearray, value: uuid.UUID, what: str = "uuid") -> None:
    if not isinstance(value, uuid.UUID):
        raise EncodeError(f"{what} must be a uuid.UUID, not {type(value).__name__}")
    out += value.bytes


# ---------------------------------------------------------------------------------------
# Varints. Unsigned varints carry compact lengths and tags (at most 5 bytes: 32 bits);
# zigzag varints/varlongs appear inside records.


def read_uvarint(buf: Buffer, pos: int, what: str = "unsigned varint") -> tuple[int, int]:
    """Read an unsigned varint of at most 32 bits (5 bytes), as Kafka's ByteUtils does."""
    end = len(buf)
    if pos >= end:
        raise truncated(what, pos, 1, buf)
    byte = buf[pos]
    if byte < 0x80:
        return byte, pos + 1
    value = byte & 0x7F
    shift = 7
    start = pos
    pos += 1
    while True:
        if pos >= end:
            raise truncated(what, start, pos - start + 1, buf)
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
        if shift > 28:
            raise DecodeError(f"{what} at offset {start} is longer than 5 bytes")
    if value > 0xFFFFFFFF:
        raise DecodeError(f"{what} at offset {start} exceeds 32 bits")
    return value, pos


def read_uvarlong(buf: Buffer, pos: int, what: str = "unsigned varlong") -> tuple[int, int]:
    """Read an unsigned varint of at most 64 bits (10 bytes)."""
    end = len(buf)
    value = 0
    shift = 0
    start = pos
    while True:
        if pos >= end:
            raise truncated(what, start, pos - start + 1, buf)
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
        if shift > 63:
            raise DecodeError(f"{what} at offset {start} is longer than 10 bytes")
    if value > 0xFFFFFFFFFFFFFFFF:
        raise DecodeError(f"{what} at offset {start} exceeds 64 bits")
    return value, pos


def read_varint(buf: Buffer, pos: int, what: str = "varint") -> tuple[int, int]:
    """Read a zigzag-encoded signed 32-bit varint."""
    raw, pos = read_uvarint(buf, pos, what)
    return (raw >> 1) ^ -(raw & 1), pos


def read_varlong(buf: Buffer, pos: int, what: str = "varlong") -> tuple[int, int]:
    """Read a zigzag-encoded signed 64-bit varint."""
    raw, pos = read_uvarlong(buf, pos, what)
    return (raw >> 1) ^ -(raw & 1), pos


def write_uvarint(out: bytearray, value: int) -> None:
    if value < 0x80:
        if value < 0:
            raise EncodeError(f"unsigned varint value {value} is negative")
        out.append(value)
        return
    if value > 0xFFFFFFFF:
        raise EncodeError(f"unsigned varint value {value} exceeds 32 bits")
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def write_uvarlong(out: bytearray, value: int) -> None:
    if not 0 <= value <= 0xFFFFFFFFFFFFFFFF:
        raise EncodeError(f"unsigned varlong value {value} out of range")
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def write_varint(out: bytearray, value: int) -> None:
    if not INT32_MIN <= value <= INT32_MAX:
        raise EncodeError(f"varint value {value} out of int32 range")
    write_uvarint(out, ((value << 1) ^ (value >> 31)) & 0xFFFFFFFF)


def write_varlong(out: bytearray, value: int) -> None:
    if not INT64_MIN <= value <= INT64_MAX:
        raise EncodeError(f"varlong value {value} out of int64 range")
    write_uvarlong(out, ((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF)


def uvarint_size(value: int) -> int:
    size = 1
    while value >= 0x80:
        value >>= 7
        size += 1
    return size


# ---------------------------------------------------------------------------------------
# Strings and byte strings. `what` names the field for the error message.


def _utf8(buf: Buffer, pos: int, length: int, what: str) -> str:
    try:
        return str(buf[pos : pos + length], "utf-8")
    except UnicodeDecodeError as error:
        raise DecodeError(f"{what} at offset {pos} is not valid UTF-8: {error.reason}") from None


def _string_body(buf: Buffer, pos: int, length: int, what: str) -> tuple[str, int]:
    if length > MAX_STRING_BYTES:
        raise DecodeError(f"{what} length {length} exceeds the limit of {MAX_STRING_BYTES}")
    if pos + length > len(buf):
        raise truncated(what, pos, length, buf)
    return _utf8(buf, pos, length, what), pos + length


def read_string(buf: Buffer, pos: int, what: str = "string") -> tuple[str, int]:
    length, pos = read_int16(buf, pos)
    if length < 0:
        raise DecodeError(f"{what} at offset {pos - 2} is null (length {length}), not allowed")
    return _string_body(buf, pos, length, what)


def read_nullable_string(buf: Buffer, pos: int, what: str = "string") -> tuple[str | None, int]:
    length, pos = read_int16(buf, pos)
    if length < 0:
        if length != -1:
            raise DecodeError(f"{what} at offset {pos - 2} has negative length {length}")
        return None, pos
    return _string_body(buf, pos, length, what)


def read_compact_string(buf: Buffer, pos: int, what: str = "compact string") -> tuple[str, int]:
    start = pos
    length, pos = read_uvarint(buf, pos, what)
    if length == 0:
        raise DecodeError(f"{what} at offset {start} is null, not allowed")
    return _string_body(buf, pos, length - 1, what)


def read_compact_nullable_string(
    buf: Buffer, pos: int, what: str = "compact string"
) -> tuple[str | None, int]:
    length, pos = read_uvarint(buf, pos, what)
    if length == 0:
        return None, pos
    return _string_body(buf, pos, length - 1, what)


def _bytes_body(buf: Buffer, pos: int, length: int, what: str) -> tuple[bytes, int]:
    if pos + length > len(buf):
        raise truncated(what, pos, length, buf)
    return bytes(buf[pos : pos + length]), pos + length


def read_bytes(buf: Buffer, pos: int, what: str = "bytes") -> tuple[bytes, int]:
    length, pos = read_int32(buf, pos)
    if length < 0:
        raise DecodeError(f"{what} at offset {pos - 4} is null (length {length}), not allowed")
    return _bytes_body(buf, pos, length, what)


def read_nullable_bytes(buf: Buffer, pos: int, what: str = "bytes") -> tuple[bytes | None, int]:
    length, pos = read_int32(buf, pos)
    if length < 0:
        if length != -1:
            raise DecodeError(f"{what} at offset {pos - 4} has negative length {length}")
        return None, pos
    return _bytes_body(buf, pos, length, what)


def read_compact_bytes(buf: Buffer, pos: int, what: str = "compact bytes") -> tuple[bytes, int]:
    start = pos
    length, pos = read_uvarint(buf, pos, what)
    if length == 0:
        raise DecodeError(f"{what} at offset {start} is null, not allowed")
    return _bytes_body(buf, pos, length - 1, what)


def read_compact_nullable_bytes(
    buf: Buffer, pos: int, what: str = "compact bytes"
) -> tuple[bytes | None, int]:
    length, pos = read_uvarint(buf, pos, what)
    if length == 0:
        return None, pos
    return _bytes_body(buf, pos, length - 1, what)


def _records_body(buf: Buffer, pos: int, length: int, what: str) -> tuple[memoryview, int]:
    if pos + length > len(buf):
        raise truncated(what, pos, length, buf)
    return buf[pos : pos + length], pos + length


def read_records(buf: Buffer, pos: int, what: str = "records") -> tuple[memoryview | None, int]:
    """Read a records blob without copying it: the result is a slice of `buf`."""
    length, pos = read_int32(buf, pos)
    if length < 0:
        if length != -1:
            raise DecodeError(f"{what} at offset {pos - 4} has negative length {length}")
        return None, pos
    return _records_body(buf, pos, length, what)


def read_compact_records(
    buf: Buffer, pos: int, what: str = "records"
) -> tuple[memoryview | None, int]:
    length, pos = read_uvarint(buf, pos, what)
    if length == 0:
        return None, pos
    return _records_body(buf, pos, length - 1, what)


def _encoded_string(value: str, what: str) -> bytes:
    if not isinstance(value, str):
        raise EncodeError(f"{what} must be str, not {type(value).__name__}")
    data = value.encode("utf-8")
    if len(data) > MAX_STRING_BYTES:
        raise EncodeError(f"{what} is {len(data)} bytes, over the limit of {MAX_STRING_BYTES}")
    return data


def write_string(out: bytearray, value: str, what: str = "string") -> None:
    if value is None:
        raise EncodeError(f"{what} is null in a version where it is not nullable")
    data = _encoded_string(value, what)
    out += _INT16.pack(len(data))
    out += data


def write_nullable_string(out: bytearray, value: str | None, what: str = "string") -> None:
    if value is None:
        out += b"\xff\xff"
        return
    data = _encoded_string(value, what)
    out += _INT16.pack(len(data))
    out += data


def write_compact_string(out: bytearray, value: str, what: str = "string") -> None:
    if value is None:
        raise EncodeError(f"{what} is null in a version where it is not nullable")
    data = _encoded_string(value, what)
    write_uvarint(out, len(data) + 1)
    out += data


def write_compact_nullable_string(out: bytearray, value: str | None, what: str = "string") -> None:
    if value is None:
        out.append(0)
        return
    data = _encoded_string(value, what)
    write_uvarint(out, len(data) + 1)
    out += data


def _check_bytes(value: object, what: str) -> None:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise EncodeError(f"{what} must be bytes-like, not {type(value).__name__}")


def write_bytes(out: bytearray, value: bytes, what: str = "bytes") -> None:
    if value is None:
        raise EncodeError(f"{what} is null in a version where it is not nullable")
    _check_bytes(value, what)
    out += _INT32.pack(len(value))
    out += value


def write_nullable_bytes(out: bytearray, value: bytes | None, what: str = "bytes") -> None:
    if value is None:
        out += b"\xff\xff\xff\xff"
        return
    _check_bytes(value, what)
    out += _INT32.pack(len(value))
    out += value


def write_compact_bytes(out: bytearray, value: bytes, what: str = "bytes") -> None:
    if value is None:
        raise EncodeError(f"{what} is null in a version where it is not nullable")
    _check_bytes(value, what)
    write_uvarint(out, len(value) + 1)
    out += value


def write_compact_nullable_bytes(out: bytearray, value: bytes | None, what: str = "bytes") -> None:
    if value is None:
        out.append(0)
        return
    _check_bytes(value, what)
    write_uvarint(out, len(value) + 1)
    out += value


def _records_payload(out: bytearray, value: RecordsValue) -> None:
    if len(value) >= LARGE_CHUNK_BYTES and isinstance(out, Output):
        out.add_chunk(value)
    else:
        out += value


def write_records(out: bytearray, value: RecordsValue | None, what: str = "records") -> None:
    """Write a records blob; a big one is referenced, not copied (see `Output`)."""
    if value is None:
        out += b"\xff\xff\xff\xff"
        return
    _check_bytes(value, what)
    out += _INT32.pack(len(value))
    _records_payload(out, value)


def write_compact_records(
    out: bytearray, value: RecordsValue | None, what: str = "records"
) -> None:
    if value is None:
        out.append(0)
        return
    _check_bytes(value, what)
    write_uvarint(out, len(value) + 1)
    _records_payload(out, value)


# ---------------------------------------------------------------------------------------
# Arrays and tagged-field sections.


def read_array_length(
    buf: Buffer, pos: int, what: str = "array", min_element_size: int = 1
) -> tuple[int, int]:
    """Read an int32 array count (-1 = null) and check it against the bytes left."""
    start = pos
    count, pos = read_int32(buf, pos)
    if count < 0:
        if count != -1:
            raise DecodeError(f"{what} at offset {start} has negative length {count}")
        return -1, pos
    _check_count(buf, pos, count, what, min_element_size)
    return count, pos


def read_compact_array_length(
    buf: Buffer, pos: int, what: str = "array", min_element_size: int = 1
) -> tuple[int, int]:
    """Read a compact array count (uvarint N+1, 0 = null); returns -1 for null."""
    raw, pos = read_uvarint(buf, pos, what)
    count = raw - 1
    if count >= 0:
        _check_count(buf, pos, count, what, min_element_size)
    return count, pos


def _check_count(buf: Buffer, pos: int, count: int, what: str, min_element_size: int) -> None:
    remaining = len(buf) - pos
    limit = remaining // min_element_size if min_element_size > 0 else MAX_EMPTY_ELEMENTS
    if count > limit:
        raise DecodeError(
            f"{what} at offset {pos} claims {count} element(s) but only {remaining} byte(s) remain"
        )


def write_array_length(out: bytearray, count: int) -> None:
    out += _INT32.pack(count)


def write_compact_array_length(out: bytearray, count: int) -> None:
    write_uvarint(out, count + 1)


def read_tagged_fields(
    buf: Buffer, pos: int, what: str = "tagged fields"
) -> tuple[dict[int, bytes] | None, int]:
    """Read a tagged-field section whose tags are all unknown to the reader.

    Returns None (the common case: no tags) or {tag: raw bytes}, kept so that the section
    can be written back unchanged.
    """
    count, pos = read_uvarint(buf, pos, what)
    if count == 0:
        return None, pos
    if count > len(buf) - pos:
        raise DecodeError(f"{what} at offset {pos} claims {count} tags but too few bytes remain")
    fields: dict[int, bytes] = {}
    last = -1
    for _ in range(count):
        tag, pos = read_uvarint(buf, pos, what)
        if tag <= last:
            raise DecodeError(f"{what}: tag {tag} at offset {pos} is out of order or repeated")
        last = tag
        size, pos = read_uvarint(buf, pos, what)
        if pos + size > len(buf):
            raise truncated(f"{what} tag {tag}", pos, size, buf)
        fields[tag] = bytes(buf[pos : pos + size])
        pos += size
    return fields, pos


def check_tag_count(buf: Buffer, pos: int, count: int, what: str) -> None:
    """Each tag takes at least two bytes (tag, size), so the count is bounded by the rest."""
    if count * 2 > len(buf) - pos:
        raise DecodeError(f"{what} at offset {pos} claims {count} tags but too few bytes remain")


def read_tag_header(buf: Buffer, pos: int, last_tag: int, what: str) -> tuple[int, int, int]:
    """Read one (tag, size) entry of a tagged section; returns (tag, size, position)."""
    tag, pos = read_uvarint(buf, pos, what)
    if tag <= last_tag:
        raise DecodeError(f"{what}: tag {tag} at offset {pos} is out of order or repeated")
    size, pos = read_uvarint(buf, pos, what)
    if pos + size > len(buf):
        raise truncated(f"{what} tag {tag}", pos, size, buf)
    return tag, size, pos


def write_tagged_fields(
    out: bytearray,
    unknown: dict[int, bytes] | None,
    known: Iterable[tuple[int, bytes]] = (),
) -> None:
    """Write a tagged section merging known (tag, encoded value) pairs with unknown ones."""
    entries = dict(unknown) if unknown else {}
    for tag, data in known:
        if tag in entries:
            raise EncodeError(f"tag {tag} is both a known field and an unknown tagged field")
        entries[tag] = data
    write_uvarint(out, len(entries))
    for tag in sorted(entries):
        data = entries[tag]
        write_uvarint(out, tag)
        write_uvarint(out, len(data))
        out += data


def sub_output() -> Output:
    """A scratch buffer for encoding one tagged field's value before its size is known."""
    return Output()


def check_consumed(start: int, pos: int, size: int, what: str) -> None:
    """Check that a tagged value decoded from `size` bytes at `start` used exactly those."""
    if pos != start + size:
        raise DecodeError(
            f"{what} at offset {start} has size {size} but its value used {pos - start} byte(s)"
        )
