"""Primitives: round trips, and every malformed input raises DecodeError (never more)."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raftlog.protocol import primitives as p
from raftlog.protocol.errors import DecodeError, EncodeError

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)

CASES = [
    (p.write_int8, p.read_int8, st.integers(-(2**7), 2**7 - 1)),
    (p.write_int16, p.read_int16, st.integers(-(2**15), 2**15 - 1)),
    (p.write_int32, p.read_int32, st.integers(-(2**31), 2**31 - 1)),
    (p.write_int64, p.read_int64, st.integers(-(2**63), 2**63 - 1)),
    (p.write_uint16, p.read_uint16, st.integers(0, 2**16 - 1)),
    (p.write_uint32, p.read_uint32, st.integers(0, 2**32 - 1)),
    (p.write_float64, p.read_float64, st.floats(allow_nan=False)),
    (p.write_bool, p.read_bool, st.booleans()),
    (p.write_uuid, p.read_uuid, st.uuids()),
    (p.write_varint, p.read_varint, st.integers(-(2**31), 2**31 - 1)),
    (p.write_varlong, p.read_varlong, st.integers(-(2**63), 2**63 - 1)),
    (p.write_uvarint, p.read_uvarint, st.integers(0, 2**32 - 1)),
    (p.write_uvarlong, p.read_uvarlong, st.integers(0, 2**64 - 1)),
    (p.write_string, p.read_string, TEXT),
    (p.write_nullable_string, p.read_nullable_string, st.none() | TEXT),
    (p.write_compact_string, p.read_compact_string, TEXT),
    (p.write_compact_nullable_string, p.read_compact_nullable_string, st.none() | TEXT),
    (p.write_bytes, p.read_bytes, st.binary(max_size=40)),
    (p.write_nullable_bytes, p.read_nullable_bytes, st.none() | st.binary(max_size=40)),
    (p.write_compact_bytes, p.read_compact_bytes, st.binary(max_size=40)),
    (
        p.write_compact_nullable_bytes,
        p.read_compact_nullable_bytes,
        st.none() | st.binary(max_size=40),
    ),
    (p.write_records, p.read_records, st.none() | st.binary(max_size=40)),
    (p.write_compact_records, p.read_compact_records, st.none() | st.binary(max_size=40)),
]


@pytest.mark.parametrize(("write", "read", "values"), CASES, ids=[c[1].__name__ for c in CASES])
@given(data=st.data())
def test_roundtrip_and_every_truncation_fails(write, read, values, data) -> None:  # type: ignore[no-untyped-def]
    value = data.draw(values)
    out = bytearray(b"\xaa")  # a leading byte: positions must be honoured
    write(out, value)
    buf = memoryview(bytes(out))
    decoded, pos = read(buf, 1)
    assert decoded == value
    assert pos == len(buf)
    for cut in range(1, len(buf)):
        with pytest.raises(DecodeError):
            read(buf[:cut], 1)


@given(st.integers(0, 2**32 - 1))
def test_uvarint_size_matches_encoding(value: int) -> None:
    out = bytearray()
    p.write_uvarint(out, value)
    assert len(out) == p.uvarint_size(value)


def test_known_varint_encodings() -> None:
    # Zigzag: 0 -> 0, -1 -> 1, 1 -> 2, -64 -> 127, 64 -> 128 (two bytes).
    for value, encoded in [(0, "00"), (-1, "01"), (1, "02"), (-64, "7f"), (64, "8001")]:
        out = bytearray()
        p.write_varint(out, value)
        assert out.hex() == encoded
    out = bytearray()
    p.write_uvarint(out, 300)
    assert out.hex() == "ac02"


def test_limits_and_malformed_lengths() -> None:
    def view(hex_text: str) -> memoryview:
        return memoryview(bytes.fromhex(hex_text))

    with pytest.raises(DecodeError, match="exceeds the limit"):
        p.read_compact_string(view("818002"), 0)  # 32768 bytes claimed
    with pytest.raises(DecodeError, match="null"):
        p.read_string(view("ffff"), 0)
    with pytest.raises(DecodeError, match="negative"):
        p.read_nullable_string(view("fffe"), 0)
    big = bytearray()
    p.write_uvarint(big, 40000)  # compact string of 39999 bytes: over Kafka's 32767
    with pytest.raises(DecodeError, match="exceeds the limit"):
        p.read_compact_string(memoryview(bytes(big) + b"x" * 40000), 0)
    with pytest.raises(DecodeError, match="negative"):
        p.read_nullable_bytes(view("fffffffe"), 0)
    with pytest.raises(DecodeError, match="claims"):
        p.read_array_length(view("7fffffff" + "00" * 10), 0)
    with pytest.raises(DecodeError, match="claims"):
        p.read_array_length(view("00000003" + "00" * 10), 0, min_element_size=4)
    assert p.read_array_length(view("ffffffff"), 0) == (-1, 4)
    with pytest.raises(DecodeError, match="longer than 5 bytes"):
        p.read_uvarint(view("ffffffffff01"), 0)
    with pytest.raises(DecodeError, match="exceeds 32 bits"):
        p.read_uvarint(view("ffffffff7f"), 0)
    with pytest.raises(DecodeError, match="longer than 10 bytes"):
        p.read_uvarlong(view("ff" * 10 + "01"), 0)
    with pytest.raises(DecodeError, match="UTF-8"):
        p.read_string(view("0002c328"), 0)
    with pytest.raises(DecodeError, match="null"):
        p.read_compact_string(view("00"), 0)


def test_tagged_fields_keep_unknown_bytes_and_reject_disorder() -> None:
    out = bytearray()
    p.write_tagged_fields(out, {5: b"\x01\x02", 300: b""}, [(1, b"\xff")])
    fields, pos = p.read_tagged_fields(memoryview(bytes(out)), 0)
    assert fields == {1: b"\xff", 5: b"\x01\x02", 300: b""}
    assert pos == len(out)
    assert p.read_tagged_fields(memoryview(b"\x00"), 0) == (None, 1)
    with pytest.raises(DecodeError, match="out of order"):
        p.read_tagged_fields(memoryview(bytes.fromhex("02050000 0100")), 0)
    with pytest.raises(DecodeError, match="truncated"):
        p.read_tagged_fields(memoryview(bytes.fromhex("010105aa")), 0)
    with pytest.raises(DecodeError, match="claims"):
        p.read_tagged_fields(memoryview(bytes.fromhex("7f")), 0)
    with pytest.raises(EncodeError, match="both"):
        p.write_tagged_fields(bytearray(), {1: b""}, [(1, b"")])


def test_writers_reject_what_kafka_cannot_carry() -> None:
    with pytest.raises(EncodeError):
        p.write_string(bytearray(), "x" * 40000)
    with pytest.raises(EncodeError):
        p.write_string(bytearray(), None)  # type: ignore[arg-type]
    with pytest.raises(EncodeError):
        p.write_int16(bytearray(), 1 << 15)
    with pytest.raises(EncodeError):
        p.write_uvarint(bytearray(), -1)
    with pytest.raises(EncodeError):
        p.write_uuid(bytearray(), "not a uuid")  # type: ignore[arg-type]
    assert uuid.UUID(int=0) == p.ZERO_UUID


def test_output_keeps_big_records_by_reference() -> None:
    blob = memoryview(bytes(range(256)) * 256)  # 64 KiB: over LARGE_CHUNK_BYTES
    out = p.Output()
    out += b"head"
    p.write_records(out, blob)
    out += b"tail"
    chunks = out.chunks()
    assert any(chunk is blob for chunk in chunks)
    assert out.getvalue() == b"head" + len(blob).to_bytes(4, "big") + bytes(blob) + b"tail"
    assert out.total_size() == len(out.getvalue())
