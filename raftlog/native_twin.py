"""Pure-Python reference twin of the C hot path: a test oracle, never used in production.

Each function here mirrors one in `native/` and is written for obviousness, not speed, so
that hypothesis can compare the two on arbitrary input. The module also holds a minimal
record batch builder (uncompressed, varint records) so that tests and benchmarks can make
valid batches without the Kafka codec.
"""

import struct
from collections.abc import Callable

import attrs

from raftlog.native import BatchHeader, BatchLocation, KeyKind, NativeError, ScanResult

BATCH_HEADER_BYTES = 61
BATCH_LENGTH_MIN = 49
LOG_OVERHEAD_BYTES = 12
CRC_START = 21
_HEADER = struct.Struct(">qiibIhiqqqhii")
_OFFSET_ENTRY = struct.Struct("<III")
_TIME_ENTRY = struct.Struct("<qII")
_INT64_MAX = 2**63 - 1

# ---- CRC32C ---------------------------------------------------------------------------


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()


def crc32c(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    crc ^= 0xFFFFFFFF
    for byte in bytes(data):
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# ---- Record batches -------------------------------------------------------------------


def parse_batch_header(data: bytes | bytearray | memoryview) -> BatchHeader:
    if len(data) < BATCH_HEADER_BYTES:
        raise ValueError(f"a batch header needs {BATCH_HEADER_BYTES} bytes, got {len(data)}")
    return BatchHeader(*_HEADER.unpack_from(bytes(data[:BATCH_HEADER_BYTES])))


def _check_frame(header: BatchHeader, length: int, batch_bytes_max: int) -> NativeError:
    if header.magic != 2:
        return NativeError.BAD_MAGIC
    if header.batch_length < BATCH_LENGTH_MIN:
        return NativeError.BATCH_LENGTH_TOO_SMALL
    if header.batch_length + LOG_OVERHEAD_BYTES > batch_bytes_max:
        return NativeError.BATCH_LENGTH_TOO_LARGE
    if header.batch_length + LOG_OVERHEAD_BYTES > length:
        return NativeError.BATCH_TRUNCATED
    return NativeError.OK


def _check_fields(header: BatchHeader, stored: bool = False) -> NativeError:
    if stored:
        count_checks = [
            (header.records_count < 0, NativeError.RECORDS_COUNT_NOT_POSITIVE),
            (
                header.records_count > header.last_offset_delta + 1,
                NativeError.RECORDS_COUNT_MISMATCH,
            ),
        ]
    else:
        count_checks = [
            (header.records_count <= 0, NativeError.RECORDS_COUNT_NOT_POSITIVE),
            (
                header.records_count != header.last_offset_delta + 1,
                NativeError.RECORDS_COUNT_MISMATCH,
            ),
        ]
    checks = [
        (header.last_offset_delta < 0, NativeError.NEGATIVE_LAST_OFFSET_DELTA),
        *count_checks,
        (header.base_offset + header.last_offset_delta > _INT64_MAX, NativeError.OFFSET_OVERFLOW),
        (header.base_timestamp < -1 or header.max_timestamp < -1, NativeError.BAD_TIMESTAMP),
        (
            header.producer_id < -1 or header.producer_epoch < -1 or header.base_sequence < -1,
            NativeError.BAD_PRODUCER_FIELDS,
        ),
        ((header.attributes & 7) > 4, NativeError.BAD_COMPRESSION),
    ]
    return next((error for failed, error in checks if failed), NativeError.OK)


def validate_batch(
    data: bytes | bytearray | memoryview, batch_bytes_max: int, *, stored: bool = False
) -> BatchHeader | NativeError:
    if len(data) < BATCH_HEADER_BYTES:
        return NativeError.HEADER_TRUNCATED
    header = parse_batch_header(data)
    error = _check_frame(header, len(data), batch_bytes_max)
    if error:
        return error
    if crc32c(data[CRC_START : header.size_bytes]) != header.crc:
        return NativeError.BAD_CRC
    if header.base_offset < 0:
        return NativeError.NEGATIVE_BASE_OFFSET
    error = _check_fields(header, stored)
    return error if error else header


def validate_stored_batch(
    data: bytes | bytearray | memoryview, batch_bytes_max: int
) -> BatchHeader | NativeError:
    return validate_batch(data, batch_bytes_max, stored=True)


def stamp_batch(data: bytearray, base_offset: int, partition_leader_epoch: int) -> NativeError:
    if len(data) < BATCH_HEADER_BYTES:
        return NativeError.HEADER_TRUNCATED
    header = parse_batch_header(data)
    error = _check_frame(header, len(data), 2**64 - 1)
    if error:
        return error
    if base_offset < 0:
        return NativeError.NEGATIVE_BASE_OFFSET
    if partition_leader_epoch < 0:
        return NativeError.NEGATIVE_LEADER_EPOCH
    if header.last_offset_delta >= 0 and base_offset + header.last_offset_delta > _INT64_MAX:
        return NativeError.OFFSET_OVERFLOW
    struct.pack_into(">q", data, 0, base_offset)
    struct.pack_into(">i", data, 12, partition_leader_epoch)
    return NativeError.OK


def stamped_batch(
    data: bytes | bytearray | memoryview, base_offset: int, partition_leader_epoch: int
) -> tuple[NativeError, bytes]:
    copy = bytearray(data)
    error = stamp_batch(copy, base_offset, partition_leader_epoch)
    return (error, bytes(copy)) if error is NativeError.OK else (error, b"")


@attrs.define
class _Scan:
    error: NativeError = NativeError.OK
    error_position: int = 0
    valid_bytes: int = 0
    batch_count: int = 0
    records_count: int = 0
    first_offset: int = -1
    last_offset: int = -1
    next_offset: int = -1
    first_leader_epoch: int = -1
    last_leader_epoch: int = -1
    last_batch_position: int = 0
    max_timestamp: int = -1
    offset_of_max_timestamp: int = -1

    def accept(self, header: BatchHeader, position: int) -> None:
        if self.batch_count == 0:
            self.first_offset = header.base_offset
            self.first_leader_epoch = header.partition_leader_epoch
        self.batch_count += 1
        self.records_count += header.records_count
        self.last_offset = header.last_offset
        self.next_offset = header.last_offset + 1
        self.last_leader_epoch = header.partition_leader_epoch
        self.last_batch_position = position
        if header.max_timestamp > self.max_timestamp:
            self.max_timestamp = header.max_timestamp
            self.offset_of_max_timestamp = header.last_offset
        self.valid_bytes = position + header.size_bytes

    def fail(self, error: NativeError, position: int) -> ScanResult:
        self.error = error
        self.error_position = position
        return self.frozen()

    def frozen(self) -> ScanResult:
        return ScanResult(**attrs.asdict(self))


def validate_batches(data: bytes | bytearray | memoryview, batch_bytes_max: int) -> ScanResult:
    scan = _Scan()
    if not data:
        return scan.fail(NativeError.HEADER_TRUNCATED, 0)
    position = 0
    while position < len(data):
        result = validate_batch(data[position:], batch_bytes_max)
        if isinstance(result, NativeError):
            return scan.fail(result, position)
        scan.accept(result, position)
        position = scan.valid_bytes
    return scan.frozen()


def scan_log(
    data: bytes | bytearray | memoryview, expected_base_offset: int, batch_bytes_max: int
) -> ScanResult:
    scan = _Scan()
    position = 0
    expected = expected_base_offset
    epoch_floor = 0
    while position < len(data):
        result = validate_stored_batch(data[position:], batch_bytes_max)
        if not isinstance(result, NativeError):
            if expected >= 0 and result.base_offset != expected:
                result = NativeError.OFFSET_NOT_CONTIGUOUS
            elif result.partition_leader_epoch < 0:
                result = NativeError.NEGATIVE_LEADER_EPOCH
            elif result.partition_leader_epoch < epoch_floor:
                result = NativeError.LEADER_EPOCH_DECREASED
        if isinstance(result, NativeError):
            return scan.fail(result, position)
        scan.accept(result, position)
        expected = scan.next_offset
        epoch_floor = result.partition_leader_epoch
        position = scan.valid_bytes
    return scan.frozen()


def find_batch(
    data: bytes, position: int, entry_index: int, key_kind: KeyKind, target: int
) -> BatchLocation | NativeError:
    """Twin of `rl_file_find_batch` over the file's bytes (end = len(data))."""
    while position < len(data):
        if len(data) - position < BATCH_HEADER_BYTES:
            return NativeError.HEADER_TRUNCATED
        header = parse_batch_header(data[position : position + BATCH_HEADER_BYTES])
        if header.magic != 2:
            return NativeError.BAD_MAGIC
        if header.batch_length < BATCH_LENGTH_MIN:
            return NativeError.BATCH_LENGTH_TOO_SMALL
        if header.size_bytes > len(data) - position:
            return NativeError.BATCH_TRUNCATED
        passed = {
            KeyKind.OFFSET: header.base_offset > target,
            KeyKind.ENTRY: entry_index > target,
            KeyKind.TIMESTAMP: False,
        }[key_kind]
        if passed:
            return NativeError.NOT_FOUND
        found = {
            KeyKind.OFFSET: header.base_offset <= target <= header.last_offset,
            KeyKind.ENTRY: entry_index == target,
            KeyKind.TIMESTAMP: header.max_timestamp >= target,
        }[key_kind]
        if found:
            return BatchLocation(
                position=position,
                entry_index=entry_index,
                base_offset=header.base_offset,
                last_offset=header.last_offset,
                max_timestamp=header.max_timestamp,
                partition_leader_epoch=header.partition_leader_epoch,
                size_bytes=header.size_bytes,
            )
        position += header.size_bytes
        entry_index += 1
    return NativeError.NOT_FOUND


# ---- Sparse indexes -------------------------------------------------------------------


def encode_offset_index_entry(relative_offset: int, relative_entry: int, position: int) -> bytes:
    return _OFFSET_ENTRY.pack(relative_offset, relative_entry, position)


def lookup_offset_index(index: bytes, key_kind: KeyKind, target: int) -> int:
    field = 1 if key_kind is KeyKind.ENTRY else 0
    entries = [entry[field] for entry in _OFFSET_ENTRY.iter_unpack(index)]
    return max((i for i, key in enumerate(entries) if key <= target), default=-1)


def encode_time_index_entry(timestamp: int, relative_offset: int, position: int) -> bytes:
    return _TIME_ENTRY.pack(timestamp, relative_offset, position)


def lookup_time_index(index: bytes, target: int) -> int:
    stamps = [entry[0] for entry in _TIME_ENTRY.iter_unpack(index)]
    return max((i for i, stamp in enumerate(stamps) if stamp < target), default=-1)


# ---- A minimal record batch builder ---------------------------------------------------


def _varint(value: int) -> bytes:
    """Zigzag varint, as Kafka records encode their fields."""
    zigzag = (value << 1) ^ (value >> 63)
    out = bytearray()
    while True:
        byte = zigzag & 0x7F
        zigzag >>= 7
        if zigzag:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _record(
    offset_delta: int,
    timestamp_delta: int,
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, bytes]],
) -> bytes:
    body = bytearray(b"\x00")  # attributes
    body += _varint(timestamp_delta) + _varint(offset_delta)
    for part in (key, value):
        body += _varint(-1) if part is None else _varint(len(part)) + part
    body += _varint(len(headers))
    for header_key, header_value in headers:
        encoded_key = header_key.encode()
        body += _varint(len(encoded_key)) + encoded_key
        body += _varint(len(header_value)) + header_value
    return _varint(len(body)) + bytes(body)


@attrs.frozen
class Record:
    value: bytes | None
    key: bytes | None = None
    timestamp_delta: int = 0
    headers: tuple[tuple[str, bytes], ...] = ()


def build_batch(
    records: list[Record],
    base_timestamp: int = 0,
    base_offset: int = 0,
    partition_leader_epoch: int = -1,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    crc_function: Callable[[bytes], int] = crc32c,
) -> bytearray:
    """An uncompressed v2 batch as a producer sends it (offsets relative from 0).

    `crc_function` defaults to the twin's own CRC; benchmarks building megabyte
    batches pass the native one, which is a thousand times faster."""
    if not records:
        raise ValueError("a record batch holds at least one record")
    body = b"".join(
        _record(i, record.timestamp_delta, record.key, record.value, list(record.headers))
        for i, record in enumerate(records)
    )
    max_timestamp = base_timestamp + max(record.timestamp_delta for record in records)
    after_crc = (
        struct.pack(
            ">hiqqqhii",
            0,
            len(records) - 1,
            base_timestamp,
            max_timestamp,
            producer_id,
            producer_epoch,
            base_sequence,
            len(records),
        )
        + body
    )
    batch_length = 4 + 1 + 4 + len(after_crc)
    head = struct.pack(">qiib", base_offset, batch_length, partition_leader_epoch, 2)
    return bytearray(head + struct.pack(">I", crc_function(after_crc)) + after_crc)


def build_value_batch(
    value_bytes: int,
    record_count: int = 1,
    base_timestamp: int = 0,
    fill: int = 0x61,
    crc_function: Callable[[bytes], int] = crc32c,
) -> bytearray:
    """A batch of `record_count` records whose values total about `value_bytes`."""
    per_record = max(0, value_bytes // record_count)
    records = [
        Record(value=bytes([fill]) * per_record, timestamp_delta=i) for i in range(record_count)
    ]
    return build_batch(records, base_timestamp=base_timestamp, crc_function=crc_function)
