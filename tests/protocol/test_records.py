"""Record batch views, the record decoder and the builder, with every compression codec."""

from __future__ import annotations

import struct

import crc32c as crc32c_package
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raftlog.protocol.errors import ErrorCode
from raftlog.protocol.records import (
    BATCH_HEADER_SIZE,
    CompressionCodec,
    CorruptRecordError,
    Header,
    OldMessageFormatError,
    Record,
    TimestampType,
    build_batch,
    crc32c,
    decompress,
    detect_magic,
    iter_batches,
    parse_batches,
)

RECORDS = st.lists(
    st.builds(
        Record,
        value=st.none() | st.binary(max_size=64),
        key=st.none() | st.binary(max_size=16),
        headers=st.lists(
            st.builds(Header, key=st.text(max_size=8), value=st.none() | st.binary(max_size=8)),
            max_size=2,
        ).map(tuple),
        timestamp=st.integers(0, 2**40),
    ),
    min_size=1,
    max_size=6,
)


def test_crc32c_matches_the_reference_package() -> None:
    for data in (b"", b"a", b"123456789", bytes(range(256)) * 3):
        assert crc32c(data) == crc32c_package.crc32c(data)
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value


@pytest.mark.parametrize("codec", list(CompressionCodec), ids=lambda c: c.name)
@settings(max_examples=15, deadline=None)
@given(records=RECORDS, base_offset=st.integers(0, 2**40), epoch=st.integers(-1, 2**31 - 1))
def test_builder_roundtrip(
    codec: CompressionCodec, records: list[Record], base_offset: int, epoch: int
) -> None:
    data = build_batch(
        records,
        base_offset=base_offset,
        partition_leader_epoch=epoch,
        compression=codec,
        producer_id=42,
        producer_epoch=3,
        base_sequence=7,
        transactional=True,
        crc_function=crc32c_package.crc32c,
    )
    [batch] = parse_batches(data)
    assert batch.buffer.obj is not None  # a view, not a copy
    assert batch.size_bytes == len(data) == batch.batch_length + 12
    assert batch.magic == 2 and batch.compression is codec
    assert batch.base_offset == base_offset and batch.partition_leader_epoch == epoch
    assert batch.records_count == len(records) and batch.last_offset_delta == len(records) - 1
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (42, 3, 7)
    assert batch.is_transactional and not batch.is_control
    assert batch.timestamp_type is TimestampType.CREATE_TIME
    assert batch.max_timestamp == max(r.timestamp for r in records)  # type: ignore[type-var]
    assert batch.crc_is_valid() and batch.crc_is_valid(crc32c_package.crc32c)
    decoded = batch.records()
    assert [(r.key, r.value, r.headers, r.timestamp) for r in decoded] == [
        (r.key, r.value, r.headers, r.timestamp) for r in records
    ]
    assert [r.offset for r in decoded] == list(range(base_offset, base_offset + len(records)))


def test_known_bytes_of_a_minimal_batch() -> None:
    data = build_batch([Record(value=b"v", key=None, timestamp=5)], base_offset=3)
    # baseOffset, batchLength, epoch, magic, then crc; attributes 0; lastOffsetDelta 0.
    base_offset, length, epoch, magic = struct.unpack_from(">qiib", data)
    assert (base_offset, length, epoch, magic) == (3, len(data) - 12, -1, 2)
    # The record: length 7 (zigzag 0e), attributes 0, ts delta 0, offset delta 0, key -1 (01),
    # value length 1 (02) 'v', no headers.
    assert data[BATCH_HEADER_SIZE:].hex() == "0e" + "00" + "00" + "00" + "01" + "02" + "76" + "00"


def test_several_batches_and_a_partial_tail() -> None:
    first = build_batch([Record(value=b"a")], base_offset=0)
    second = build_batch([Record(value=b"b"), Record(value=b"c")], base_offset=1)
    blob = first + second
    assert [b.base_offset for b in iter_batches(blob)] == [0, 1]
    assert [b.last_offset for b in iter_batches(blob)] == [0, 2]
    with pytest.raises(CorruptRecordError):
        parse_batches(blob[:-3])
    assert len(parse_batches(blob[:-3], allow_partial_tail=True)) == 1
    assert len(parse_batches(blob[:30], allow_partial_tail=True)) == 0


def test_corruption_is_detected() -> None:
    data = bytearray(build_batch([Record(value=b"hello")]))
    data[-1] ^= 0xFF
    [batch] = parse_batches(bytes(data))
    assert not batch.crc_is_valid()
    bad_length = bytearray(data)
    struct.pack_into(">i", bad_length, 8, 10)
    with pytest.raises(CorruptRecordError) as error:
        parse_batches(bytes(bad_length))
    assert error.value.error_code == ErrorCode.CORRUPT_MESSAGE
    bad_magic = bytearray(data)
    bad_magic[16] = 7
    with pytest.raises(CorruptRecordError, match="magic"):
        parse_batches(bytes(bad_magic))


@pytest.mark.parametrize("magic", [0, 1])
def test_old_message_formats_are_detected_and_refused(magic: int) -> None:
    # A v0/v1 message set entry: offset, size, crc, magic, attributes, [timestamp], key, value.
    message = struct.pack(">ibb", 0, magic, 0) + (b"\x00" * 8 if magic else b"")
    message += struct.pack(">i", -1) + struct.pack(">i", 1) + b"x"
    entry = struct.pack(">qi", 0, len(message)) + message
    entry += b"\x00" * max(0, BATCH_HEADER_SIZE - len(entry))
    assert detect_magic(entry) == magic
    with pytest.raises(OldMessageFormatError) as error:
        parse_batches(entry)
    assert error.value.error_code == ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT
    assert detect_magic(b"short") is None


def test_snappy_reader_accepts_raw_blocks_like_librdkafka_writes() -> None:
    import cramjam

    payload = b"raw snappy, no xerial header" * 10
    raw = bytes(cramjam.snappy.compress_raw(payload))
    assert bytes(decompress(CompressionCodec.SNAPPY, memoryview(raw), 1 << 20)) == payload
    framed = build_batch([Record(value=payload)], compression=CompressionCodec.SNAPPY)
    assert framed[BATCH_HEADER_SIZE:].startswith(b"\x82SNAPPY\x00")


def test_decompression_bombs_and_garbage_are_refused() -> None:
    import gzip

    bomb = gzip.compress(b"\x00" * (1 << 20))
    with pytest.raises(CorruptRecordError, match="inflates"):
        decompress(CompressionCodec.GZIP, memoryview(bomb), 1024)
    for codec in (
        CompressionCodec.GZIP,
        CompressionCodec.SNAPPY,
        CompressionCodec.LZ4,
        CompressionCodec.ZSTD,
    ):
        with pytest.raises(CorruptRecordError):
            decompress(codec, memoryview(b"definitely not compressed"), 1 << 20)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300), flips=st.lists(st.integers(0, 10_000), max_size=4))
def test_hostile_bytes_raise_only_corrupt_record_errors(data: bytes, flips: list[int]) -> None:
    blob = bytearray(build_batch([Record(value=data[:50], key=b"k")]) + data)
    for flip in flips:
        blob[flip % len(blob)] ^= 0x5A
    try:
        for batch in iter_batches(bytes(blob)):
            batch.records()
    except CorruptRecordError:
        pass
