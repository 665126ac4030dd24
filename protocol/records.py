"""Kafka record batches (magic v2): zero-copy header views, a record decoder and a builder.

The server handles whole batches, never single records: `iter_batches` walks a records
blob and yields `RecordBatchView`s that read the 61-byte header in place (one
`struct.unpack_from`, no copy of the payload). Decoding individual records and building
batches (with gzip, snappy, lz4 or zstd compression) exist for tests and tools; they are
not on the hot path, so the compression libraries are imported only when used.

Batch layout (all big-endian):

    baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 | magic int8 (=2)
    crc uint32 (CRC-32C of everything from attributes to the end)
    attributes int16 | lastOffsetDelta int32 | baseTimestamp int64 | maxTimestamp int64
    producerId int64 | producerEpoch int16 | baseSequence int32 | recordsCount int32
    records...

Snappy: Kafka's Java client writes snappy-java's "xerial" framing inside batches while
librdkafka writes raw snappy blocks; readers must accept both (snappy-java does), so the
decoder detects the framing and the builder writes xerial framing like the Java client.
"""

from __future__ import annotations

import enum
import gzip
import struct
from collections.abc import Callable, Iterator, Sequence
from typing import Final

import attrs

from raftlog.protocol.errors import DecodeError, ErrorCode
from raftlog.protocol.primitives import (
    read_varint,
    read_varlong,
    write_varint,
    write_varlong,
)

__all__ = [
    "BATCH_HEADER_SIZE",
    "CompressionCodec",
    "CorruptRecordError",
    "Header",
    "OldMessageFormatError",
    "Record",
    "RecordBatchView",
    "TimestampType",
    "build_batch",
    "crc32c",
    "detect_magic",
    "iter_batches",
    "parse_batches",
]

BATCH_HEADER_SIZE: Final = 61
"""Bytes before the first record of a v2 batch."""
BATCH_OVERHEAD_AFTER_LENGTH: Final = BATCH_HEADER_SIZE - 12
"""The smallest legal `batchLength` (a batch with no records)."""
MAGIC_OFFSET: Final = 16
"""Where the magic byte sits in every format (v0/v1 messages and v2 batches alike)."""
CRC_START: Final = 21
"""The CRC covers the batch from `attributes` (offset 21) to its end."""

_HEADER = struct.Struct(">qiibIhiqqqhii")
_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_BLOCK_BYTES = 32 * 1024

CrcFunction = Callable[[bytes | bytearray | memoryview], int]


class CompressionCodec(enum.IntEnum):
    NONE = 0
    GZIP = 1
    SNAPPY = 2
    LZ4 = 3
    ZSTD = 4


class TimestampType(enum.IntEnum):
    CREATE_TIME = 0
    LOG_APPEND_TIME = 1


class CorruptRecordError(DecodeError):
    """A records blob that is not a well-formed sequence of v2 batches."""

    error_code = ErrorCode.CORRUPT_MESSAGE


class OldMessageFormatError(CorruptRecordError):
    """Magic 0 or 1 (pre-0.11 message sets): raftlog stores only v2 batches."""

    error_code = ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT


# -- CRC-32C (Castagnoli), pure Python: for the builder and tests, never the hot path. --


def _crc_table() -> list[int]:
    table = []
    for index in range(256):
        crc = index
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE: Final = _crc_table()


def crc32c(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """CRC-32C of `data`; slow (pure Python). The server passes the C one instead."""
    table = _CRC_TABLE
    crc ^= 0xFFFFFFFF
    for byte in bytes(data):
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# -- views ------------------------------------------------------------------------------


class RecordBatchView:
    """One v2 batch inside a larger buffer; reads its header without copying the batch."""

    __slots__ = ("_header", "buffer")

    def __init__(self, buffer: memoryview) -> None:
        if len(buffer) < BATCH_HEADER_SIZE:
            raise CorruptRecordError(f"record batch of {len(buffer)} bytes is shorter than 61")
        self.buffer = buffer
        """Exactly this batch's bytes: a slice of the buffer it was found in."""
        self._header = _HEADER.unpack_from(buffer, 0)

    base_offset = property(lambda self: self._header[0])
    batch_length = property(lambda self: self._header[1])
    partition_leader_epoch = property(lambda self: self._header[2])
    magic = property(lambda self: self._header[3])
    crc = property(lambda self: self._header[4])
    attributes = property(lambda self: self._header[5])
    last_offset_delta = property(lambda self: self._header[6])
    base_timestamp = property(lambda self: self._header[7])
    max_timestamp = property(lambda self: self._header[8])
    producer_id = property(lambda self: self._header[9])
    producer_epoch = property(lambda self: self._header[10])
    base_sequence = property(lambda self: self._header[11])
    records_count = property(lambda self: self._header[12])

    @property
    def compression(self) -> CompressionCodec:
        try:
            return CompressionCodec(self.attributes & 0x07)
        except ValueError:
            raise CorruptRecordError(
                f"unknown compression codec {self.attributes & 0x07}",
                ErrorCode.UNSUPPORTED_COMPRESSION_TYPE,
            ) from None

    @property
    def timestamp_type(self) -> TimestampType:
        return TimestampType((self.attributes >> 3) & 1)

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & 0x10)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & 0x20)

    @property
    def has_delete_horizon(self) -> bool:
        return bool(self.attributes & 0x40)

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def size_bytes(self) -> int:
        return len(self.buffer)

    @property
    def payload(self) -> memoryview:
        """The (possibly compressed) records section, after the 61-byte header."""
        return self.buffer[BATCH_HEADER_SIZE:]

    def compute_crc(self, crc_function: CrcFunction = crc32c) -> int:
        return crc_function(self.buffer[CRC_START:]) & 0xFFFFFFFF

    def crc_is_valid(self, crc_function: CrcFunction = crc32c) -> bool:
        return self.compute_crc(crc_function) == self.crc

    def records(self, max_uncompressed_bytes: int = 64 * 1024 * 1024) -> list[Record]:
        """Decode every record (decompressing first); for tests and tools."""
        payload = decompress(self.compression, self.payload, max_uncompressed_bytes)
        return _decode_records(memoryview(payload), self)

    def __repr__(self) -> str:
        return (
            f"RecordBatchView(base_offset={self.base_offset}, records={self.records_count}, "
            f"bytes={self.size_bytes}, compression={self.compression.name})"
        )


def detect_magic(buffer: bytes | bytearray | memoryview) -> int | None:
    """The magic byte of the first batch/message in `buffer`, or None if too short."""
    if len(buffer) <= MAGIC_OFFSET:
        return None
    return int(memoryview(buffer).cast("B")[MAGIC_OFFSET])


def iter_batches(
    buffer: bytes | bytearray | memoryview, *, allow_partial_tail: bool = False
) -> Iterator[RecordBatchView]:
    """Walk concatenated v2 batches. Raises `CorruptRecordError` on anything malformed.

    `allow_partial_tail` stops quietly at a truncated last batch, as a consumer must
    (a broker may cut a fetch response mid-batch); a producer's records must be whole.
    """
    view = memoryview(buffer).cast("B") if not isinstance(buffer, memoryview) else buffer
    pos = 0
    end = len(view)
    while pos < end:
        if end - pos < BATCH_HEADER_SIZE:
            if allow_partial_tail:
                return
            raise CorruptRecordError(f"{end - pos} trailing byte(s) at offset {pos} are no batch")
        magic = view[pos + MAGIC_OFFSET]
        if magic != 2:
            if magic in (0, 1):
                raise OldMessageFormatError(
                    f"message format v{magic} at offset {pos}; only v2 batches are accepted"
                )
            raise CorruptRecordError(f"unknown magic {magic} at offset {pos}")
        (length,) = struct.unpack_from(">i", view, pos + 8)
        if length < BATCH_OVERHEAD_AFTER_LENGTH:
            raise CorruptRecordError(f"batch at offset {pos} has impossible length {length}")
        batch_end = pos + 12 + length
        if batch_end > end:
            if allow_partial_tail:
                return
            raise CorruptRecordError(
                f"batch at offset {pos} claims {length + 12} bytes, {end - pos} remain"
            )
        batch = RecordBatchView(view[pos:batch_end])
        if batch.records_count < 0:
            raise CorruptRecordError(f"batch at offset {pos} has {batch.records_count} records")
        yield batch
        pos = batch_end


def parse_batches(
    buffer: bytes | bytearray | memoryview, *, allow_partial_tail: bool = False
) -> list[RecordBatchView]:
    return list(iter_batches(buffer, allow_partial_tail=allow_partial_tail))


# -- records ----------------------------------------------------------------------------


@attrs.frozen
class Header:
    key: str
    value: bytes | None


@attrs.frozen
class Record:
    """One record: decoded from a batch (absolute offset/timestamp) or given to the builder.

    For the builder, `offset` and `timestamp` are optional: offsets are assigned in order
    and a missing timestamp takes the batch's `default_timestamp_ms`.
    """

    value: bytes | None
    key: bytes | None = None
    headers: tuple[Header, ...] = ()
    timestamp: int | None = None
    offset: int | None = None
    attributes: int = 0


def _read_blob(buf: memoryview, pos: int, what: str) -> tuple[bytes | None, int]:
    length, pos = read_varint(buf, pos, what)
    if length < 0:
        if length != -1:
            raise CorruptRecordError(f"{what} at offset {pos} has negative length {length}")
        return None, pos
    if pos + length > len(buf):
        raise CorruptRecordError(f"{what} at offset {pos} runs past the record")
    return bytes(buf[pos : pos + length]), pos + length


def _decode_records(payload: memoryview, batch: RecordBatchView) -> list[Record]:
    records = []
    pos = 0
    for index in range(batch.records_count):
        try:
            length, pos = read_varint(payload, pos, "record length")
        except DecodeError as error:
            raise CorruptRecordError(f"record {index}: {error}") from None
        end = pos + length
        if length < 0 or end > len(payload):
            raise CorruptRecordError(f"record {index} length {length} runs past the batch")
        record = payload[:end]
        try:
            if pos >= end:
                raise CorruptRecordError("empty record")
            attributes = record[pos]
            pos += 1
            timestamp_delta, pos = read_varlong(record, pos, "timestampDelta")
            offset_delta, pos = read_varint(record, pos, "offsetDelta")
            key, pos = _read_blob(record, pos, "key")
            value, pos = _read_blob(record, pos, "value")
            header_count, pos = read_varint(record, pos, "header count")
            if header_count < 0 or header_count > end - pos:
                raise CorruptRecordError(f"bad header count {header_count}")
            headers = []
            for _ in range(header_count):
                header_key, pos = _read_blob(record, pos, "header key")
                header_value, pos = _read_blob(record, pos, "header value")
                if header_key is None:
                    raise CorruptRecordError("null header key")
                headers.append(Header(header_key.decode("utf-8", "replace"), header_value))
        except DecodeError as error:
            raise CorruptRecordError(f"record {index}: {error}") from None
        if pos != end:
            raise CorruptRecordError(f"record {index}: {end - pos} unread byte(s)")
        timestamp = (
            batch.max_timestamp
            if batch.timestamp_type is TimestampType.LOG_APPEND_TIME
            else batch.base_timestamp + timestamp_delta
        )
        records.append(
            Record(
                value=value,
                key=key,
                headers=tuple(headers),
                timestamp=timestamp,
                offset=batch.base_offset + offset_delta,
                attributes=attributes,
            )
        )
    if pos != len(payload):
        raise CorruptRecordError(f"{len(payload) - pos} byte(s) after the last record")
    return records


def _encode_record(out: bytearray, record: Record, offset_delta: int, timestamp_delta: int) -> None:
    body = bytearray()
    body.append(record.attributes)
    write_varlong(body, timestamp_delta)
    write_varint(body, offset_delta)
    for blob in (record.key, record.value):
        if blob is None:
            write_varint(body, -1)
        else:
            write_varint(body, len(blob))
            body += blob
    write_varint(body, len(record.headers))
    for header in record.headers:
        key = header.key.encode("utf-8")
        write_varint(body, len(key))
        body += key
        if header.value is None:
            write_varint(body, -1)
        else:
            write_varint(body, len(header.value))
            body += header.value
    write_varint(out, len(body))
    out += body


def build_batch(
    records: Sequence[Record],
    *,
    base_offset: int = 0,
    partition_leader_epoch: int = -1,
    compression: CompressionCodec = CompressionCodec.NONE,
    timestamp_type: TimestampType = TimestampType.CREATE_TIME,
    transactional: bool = False,
    control: bool = False,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    default_timestamp_ms: int = 0,
    crc_function: CrcFunction = crc32c,
) -> bytes:
    """Build one v2 batch, as a producer would (offset deltas 0..n-1 unless given)."""
    if not records:
        raise ValueError("a record batch needs at least one record")
    timestamps = [
        default_timestamp_ms if record.timestamp is None else record.timestamp for record in records
    ]
    deltas = [
        index if record.offset is None else record.offset - base_offset
        for index, record in enumerate(records)
    ]
    base_timestamp = timestamps[0]
    body = bytearray()
    for record, delta, timestamp in zip(records, deltas, timestamps, strict=True):
        _encode_record(body, record, delta, timestamp - base_timestamp)
    payload = compress(compression, bytes(body))
    attributes = (
        int(compression)
        | (int(timestamp_type) << 3)
        | (0x10 if transactional else 0)
        | (0x20 if control else 0)
    )
    batch = bytearray(
        _HEADER.pack(
            base_offset,
            BATCH_OVERHEAD_AFTER_LENGTH + len(payload),
            partition_leader_epoch,
            2,
            0,
            attributes,
            max(deltas),
            base_timestamp,
            max(timestamps),
            producer_id,
            producer_epoch,
            base_sequence,
            len(records),
        )
    )
    batch += payload
    struct.pack_into(">I", batch, 17, crc_function(memoryview(batch)[CRC_START:]) & 0xFFFFFFFF)
    return bytes(batch)


# -- compression ------------------------------------------------------------------------


def compress(codec: CompressionCodec, data: bytes) -> bytes:
    if codec is CompressionCodec.NONE:
        return data
    if codec is CompressionCodec.GZIP:
        return gzip.compress(data)
    if codec is CompressionCodec.SNAPPY:
        return _xerial_compress(data)
    if codec is CompressionCodec.LZ4:
        import lz4.frame  # type: ignore[import-untyped]

        # Kafka's LZ4 stream supports only independent blocks and no content checksum.
        return lz4.frame.compress(  # type: ignore[no-any-return]
            data,
            block_size=lz4.frame.BLOCKSIZE_MAX64KB,
            block_linked=False,
            content_checksum=False,
        )
    if codec is CompressionCodec.ZSTD:
        import zstandard  # type: ignore[import-untyped]

        return zstandard.ZstdCompressor().compress(data)  # type: ignore[no-any-return]
    raise ValueError(f"unknown compression codec {codec!r}")


def decompress(codec: CompressionCodec, data: memoryview, max_bytes: int) -> bytes | memoryview:
    """Decompress a batch payload, refusing to inflate past `max_bytes`."""
    try:
        if codec is CompressionCodec.NONE:
            return data
        if codec is CompressionCodec.GZIP:
            import zlib

            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            result = inflater.decompress(bytes(data), max_bytes + 1)
        elif codec is CompressionCodec.SNAPPY:
            result = _snappy_decompress(bytes(data), max_bytes)
        elif codec is CompressionCodec.LZ4:
            import lz4.frame

            result = lz4.frame.decompress(bytes(data))
        elif codec is CompressionCodec.ZSTD:
            import zstandard

            reader = zstandard.ZstdDecompressor().decompressobj()
            result = reader.decompress(bytes(data))
        else:
            raise CorruptRecordError(f"unknown compression codec {codec!r}")
    except CorruptRecordError:
        raise
    except Exception as error:  # each library raises its own error types
        raise CorruptRecordError(f"{codec.name} payload does not decompress: {error}") from None
    if len(result) > max_bytes:
        raise CorruptRecordError(f"{codec.name} payload inflates past {max_bytes} bytes")
    return result


def _snappy_module():  # type: ignore[no-untyped-def]
    try:
        import cramjam  # type: ignore[import-untyped]

        return cramjam.snappy.compress_raw, cramjam.snappy.decompress_raw
    except ImportError:
        import snappy  # type: ignore[import-untyped]

        return snappy.compress, snappy.decompress


def _xerial_compress(data: bytes) -> bytes:
    compress_raw, _ = _snappy_module()
    out = bytearray(_XERIAL_MAGIC)
    out += struct.pack(">ii", 1, 1)
    for start in range(0, len(data), _XERIAL_BLOCK_BYTES):
        block = bytes(compress_raw(data[start : start + _XERIAL_BLOCK_BYTES]))
        out += struct.pack(">i", len(block))
        out += block
    return bytes(out)


def _snappy_decompress(data: bytes, max_bytes: int) -> bytes:
    _, decompress_raw = _snappy_module()
    if not data.startswith(_XERIAL_MAGIC):
        return bytes(decompress_raw(data))
    pos = 16
    out = bytearray()
    while pos < len(data):
        if pos + 4 > len(data):
            raise CorruptRecordError("truncated xerial snappy block length")
        (size,) = struct.unpack_from(">i", data, pos)
        pos += 4
        if size < 0 or pos + size > len(data):
            raise CorruptRecordError(f"xerial snappy block of {size} bytes runs past the data")
        out += bytes(decompress_raw(data[pos : pos + size]))
        pos += size
        if len(out) > max_bytes:
            raise CorruptRecordError(f"snappy payload inflates past {max_bytes} bytes")
    return bytes(out)
