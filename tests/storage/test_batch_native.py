"""Record batch v2 validation, stamping and scans: C against the twin, and attacks."""

import contextlib
import pathlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raftlog import native, native_twin
from raftlog.native import NativeError

from .batch_helpers import BATCH_BYTES_MAX, reseal, small_batch, stamped


def test_error_enum_mirrors_the_header() -> None:
    for error in NativeError:
        assert getattr(native.lib, f"RL_ERR_{error.name}" if error else "RL_OK") == error.value
    assert max(NativeError) + 1 == native.lib.RL_ERROR_CODE_END


def test_valid_batch_is_accepted_by_c_and_twin() -> None:
    batch = small_batch(records=4)
    header = native.validate_batch(batch, BATCH_BYTES_MAX)
    assert header == native_twin.validate_batch(batch, BATCH_BYTES_MAX)
    assert isinstance(header, native.BatchHeader)
    assert (header.magic, header.records_count, header.last_offset_delta) == (2, 4, 3)
    assert (header.base_timestamp, header.max_timestamp) == (1000, 1003)
    assert header.size_bytes == len(batch)
    assert native.parse_batch_header(batch) == header


def _field_change(offset: int, fmt: str, value: int) -> bytearray:
    batch = small_batch()
    struct.pack_into(fmt, batch, offset, value)
    return reseal(batch)


FIELD_CASES = [
    ("magic", 16, ">b", 1, NativeError.BAD_MAGIC),
    ("length small", 8, ">i", 48, NativeError.BATCH_LENGTH_TOO_SMALL),
    ("length negative", 8, ">i", -5, NativeError.BATCH_LENGTH_TOO_SMALL),
    ("length past buffer", 8, ">i", 5000, NativeError.BATCH_TRUNCATED),
    ("length past max", 8, ">i", 2**31 - 1, NativeError.BATCH_LENGTH_TOO_LARGE),
    ("base offset", 0, ">q", -1, NativeError.NEGATIVE_BASE_OFFSET),
    ("last offset delta", 23, ">i", -1, NativeError.NEGATIVE_LAST_OFFSET_DELTA),
    ("records count zero", 57, ">i", 0, NativeError.RECORDS_COUNT_NOT_POSITIVE),
    ("records count negative", 57, ">i", -3, NativeError.RECORDS_COUNT_NOT_POSITIVE),
    ("records count mismatch", 57, ">i", 7, NativeError.RECORDS_COUNT_MISMATCH),
    ("base timestamp", 27, ">q", -2, NativeError.BAD_TIMESTAMP),
    ("max timestamp", 35, ">q", -9, NativeError.BAD_TIMESTAMP),
    ("producer id", 43, ">q", -2, NativeError.BAD_PRODUCER_FIELDS),
    ("producer epoch", 51, ">h", -2, NativeError.BAD_PRODUCER_FIELDS),
    ("base sequence", 53, ">i", -7, NativeError.BAD_PRODUCER_FIELDS),
    ("compression", 21, ">h", 5, NativeError.BAD_COMPRESSION),
]


@pytest.mark.parametrize(("name", "offset", "fmt", "value", "expected"), FIELD_CASES,
                         ids=[case[0] for case in FIELD_CASES])
def test_each_corruption_has_its_own_code(name: str, offset: int, fmt: str, value: int,
                                          expected: NativeError) -> None:
    batch = _field_change(offset, fmt, value)
    assert native.validate_batch(batch, BATCH_BYTES_MAX) is expected, name
    assert native_twin.validate_batch(batch, BATCH_BYTES_MAX) is expected, name


def test_offset_overflow_is_refused() -> None:
    batch = _field_change(0, ">q", 2**63 - 1)
    assert native.validate_batch(batch, BATCH_BYTES_MAX) is NativeError.OFFSET_OVERFLOW
    assert native.stamp_batch(bytearray(small_batch()), 2**63 - 1, 0) is \
        NativeError.OFFSET_OVERFLOW


def test_short_buffers() -> None:
    batch = small_batch()
    assert native.validate_batch(batch[:60], BATCH_BYTES_MAX) is NativeError.HEADER_TRUNCATED
    assert native.validate_batch(batch[:-1], BATCH_BYTES_MAX) is NativeError.BATCH_TRUNCATED
    assert native.validate_batch(batch, len(batch) - 1) is NativeError.BATCH_LENGTH_TOO_LARGE
    assert native.validate_batch(batch + b"extra", BATCH_BYTES_MAX) == \
        native.validate_batch(batch, BATCH_BYTES_MAX)


def _bit_flips(batch: bytearray, first_byte: int, end_byte: int) -> list[bytearray]:
    flipped = []
    for bit in range(first_byte * 8, end_byte * 8):
        copy = bytearray(batch)
        copy[bit // 8] ^= 1 << (bit % 8)
        flipped.append(copy)
    return flipped


@pytest.mark.parametrize("portable", [False, True])
def test_every_single_bit_flip_is_detected(portable: bool) -> None:
    """Over batchLength, magic, crc and the whole CRC-covered region; the two fields
    outside the CRC (baseOffset, partitionLeaderEpoch) are checked by the log scan."""
    batch = stamped(small_batch(records=3), base_offset=12345, epoch=7)
    ranges = [(8, 12), (16, len(batch))]
    with native.portable_crc32c_forced() if portable else contextlib.nullcontext():
        for first, end in ranges:
            for copy in _bit_flips(batch, first, end):
                error = native.validate_batch(copy, BATCH_BYTES_MAX)
                assert isinstance(error, NativeError), copy
                assert error == native_twin.validate_batch(copy, BATCH_BYTES_MAX)
    sign_flip = bytearray(batch)
    sign_flip[0] ^= 0x80
    assert native.validate_batch(sign_flip, BATCH_BYTES_MAX) is NativeError.NEGATIVE_BASE_OFFSET


def test_offset_and_epoch_flips_are_caught_by_the_log_scan() -> None:
    log = stamped(small_batch(), 0, 3) + stamped(small_batch(), 3, 5)
    for bit in range(64):
        copy = bytearray(log)
        position = len(small_batch())
        copy[position + bit // 8] ^= 1 << (bit % 8)
        result = native.scan_log(copy, 0, BATCH_BYTES_MAX)
        assert result.error is not NativeError.OK
        assert result.error_position == position
        assert result.batch_count == 1
    epoch_down = bytearray(log)
    struct.pack_into(">i", epoch_down, len(small_batch()) + 12, 2)
    assert native.scan_log(epoch_down, 0, BATCH_BYTES_MAX).error is \
        NativeError.LEADER_EPOCH_DECREASED


def test_stamp_keeps_the_crc_valid() -> None:
    batch = small_batch()
    crc_before = bytes(batch[17:21])
    assert native.stamp_batch(batch, 99, 4) is NativeError.OK
    header = native.validate_batch(batch, BATCH_BYTES_MAX)
    assert isinstance(header, native.BatchHeader)
    assert (header.base_offset, header.partition_leader_epoch) == (99, 4)
    assert bytes(batch[17:21]) == crc_before
    assert native.stamp_batch(batch, -1, 0) is NativeError.NEGATIVE_BASE_OFFSET
    assert native.stamp_batch(batch, 0, -1) is NativeError.NEGATIVE_LEADER_EPOCH
    assert native.stamp_batch(batch[:30], 0, 0) is NativeError.HEADER_TRUNCATED
    with pytest.raises(TypeError):
        native.stamp_batch(bytes(batch), 0, 0)  # type: ignore[arg-type]


def test_validate_batches_walks_a_produce_payload() -> None:
    one, two = small_batch(2), small_batch(5)
    result = native.validate_batches(one + two, BATCH_BYTES_MAX)
    assert (result.error, result.batch_count, result.records_count) == (NativeError.OK, 2, 7)
    assert result.valid_bytes == len(one) + len(two)
    bad = native.validate_batches(one + two + b"\x00" * 10, BATCH_BYTES_MAX)
    assert (bad.error, bad.error_position) == (NativeError.HEADER_TRUNCATED, len(one) + len(two))
    assert native.validate_batches(b"", BATCH_BYTES_MAX).error is NativeError.HEADER_TRUNCATED


records_strategy = st.lists(
    st.builds(native_twin.Record, value=st.one_of(st.none(), st.binary(max_size=40)),
              key=st.one_of(st.none(), st.binary(max_size=8)),
              timestamp_delta=st.integers(0, 10_000)),
    min_size=1, max_size=6)


@settings(max_examples=150, deadline=None)
@given(st.lists(records_strategy, min_size=1, max_size=4), st.integers(0, 2**40),
       st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=3),
       st.integers(0, 10**6), st.booleans())
def test_c_and_twin_agree_on_mutated_logs(batches: list[list[native_twin.Record]],
                                          base_offset: int, mutations: list[tuple[int, int]],
                                          cut: int, portable: bool) -> None:
    log = bytearray()
    offset = base_offset
    for epoch, records in enumerate(batches):
        batch = native_twin.build_batch(records, base_timestamp=1_000_000 + epoch)
        assert native_twin.stamp_batch(batch, offset, epoch) is NativeError.OK
        offset += len(records)
        log += batch
    for position, value in mutations:
        log[position % len(log)] = value
    log = log[:max(0, len(log) - cut % 70)] if cut % 3 == 0 else log
    with native.portable_crc32c_forced() if portable else contextlib.nullcontext():
        assert native.scan_log(log, base_offset, 4096) == \
            native_twin.scan_log(log, base_offset, 4096)
        assert native.validate_batches(log, 4096) == native_twin.validate_batches(log, 4096)
        assert native.validate_batch(log, 4096) == native_twin.validate_batch(log, 4096)


def test_scan_file_equals_scan_in_memory_across_chunk_boundaries(tmp_path: pathlib.Path) -> None:
    log = bytearray()
    offset = 0
    for i in range(200):
        batch = stamped(small_batch(records=1 + i % 4, value=b"x" * (i % 97)), offset, i // 10)
        offset += 1 + i % 4
        log += batch
    torn = log + stamped(small_batch(), offset, 30)[:40]
    path = tmp_path / "data.log"
    path.write_bytes(torn)
    in_memory = native.scan_log(torn, 0, 512)
    assert in_memory.error is NativeError.HEADER_TRUNCATED
    with open(path, "rb") as file:
        for chunk_bytes in (512, 700, 4096, 1 << 20):
            from_file = native.scan_file(file.fileno(), 0, len(torn), 0, 512, chunk_bytes)
            assert from_file == in_memory, chunk_bytes
        middle = native.scan_log(log, 0, 512)
        start = 0
        for _ in range(50):
            start += native.parse_batch_header(log[start:]).size_bytes
        expected_offset = native.parse_batch_header(log[start:]).base_offset
        partial = native.scan_file(file.fileno(), start, len(log), expected_offset, 512, 600)
        assert partial.error is NativeError.OK
        assert partial.valid_bytes == len(log)
        assert partial.batch_count == middle.batch_count - 50
        with pytest.raises(ValueError):
            native.scan_file(file.fileno(), 0, len(log), 0, 512, 100)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 50), st.integers(1, 3), st.integers(1, 200)),
                max_size=40),
       st.integers(0, 3000), st.sampled_from(list(native.KeyKind)[:2]))
def test_offset_index_lookup_matches_twin(steps: list[tuple[int, int, int]], target: int,
                                          key_kind: native.KeyKind) -> None:
    index = bytearray()
    offset = entry = position = 0
    for offset_step, entry_step, position_step in steps:
        offset += offset_step
        entry += entry_step
        position += position_step
        encoded = native.encode_offset_index_entry(offset, entry, position)
        assert encoded == native_twin.encode_offset_index_entry(offset, entry, position)
        index += encoded
    found = native.lookup_offset_index(index, key_kind, target)
    assert found == native_twin.lookup_offset_index(bytes(index), key_kind, target)
    assert native.check_offset_index(index, position + 1)
    if steps:
        assert not native.check_offset_index(index, position)
        assert native.offset_index_entry(index, len(steps) - 1) == (offset, entry, position)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.integers(1, 200)), max_size=40),
       st.integers(-5, 3000))
def test_time_index_lookup_matches_twin(steps: list[tuple[int, int]], target: int) -> None:
    index = bytearray()
    stamp = offset = 0
    for stamp_step, offset_step in steps:
        stamp += stamp_step
        offset += offset_step
        encoded = native.encode_time_index_entry(stamp, offset, offset)
        assert encoded == native_twin.encode_time_index_entry(stamp, offset, offset)
        index += encoded
    assert native.lookup_time_index(index, target) == \
        native_twin.lookup_time_index(bytes(index), target)
    assert native.check_time_index(index, offset + 1)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=1, max_size=30), st.integers(0, 200),
       st.sampled_from(list(native.KeyKind)))
def test_find_batch_matches_twin(tmp_path_factory: pytest.TempPathFactory, counts: list[int],
                                 target: int, key_kind: native.KeyKind) -> None:
    log = bytearray()
    offset = 0
    for i, count in enumerate(counts):
        log += stamped(small_batch(records=count, base_timestamp=i * 10), offset, 1)
        offset += count
    path = tmp_path_factory.mktemp("find") / "data.log"
    path.write_bytes(log)
    with open(path, "rb") as file:
        got = native.find_batch(file.fileno(), 0, len(log), 5, key_kind, target)
    assert got == native_twin.find_batch(bytes(log), 0, 5, key_kind, target)


@pytest.mark.parametrize(
    ("cut", "offset", "epoch"),
    [(None, 99, 4), (None, 0, 0), (None, -1, 0), (None, 0, -1), (None, 2**63 - 1, 0),
     (30, 0, 0), (-1, 5, 5)],
)
def test_a_stamped_copy_is_what_stamping_in_place_gives(
    cut: int | None, offset: int, epoch: int
) -> None:
    batch = bytes(small_batch(records=3))[:cut]
    in_place = bytearray(batch)
    error = native.stamp_batch(in_place, offset, epoch)
    expected = (error, bytes(in_place) if error is NativeError.OK else b"")
    assert native.stamped_batch(batch, offset, epoch) == expected
    assert native.stamped_batch(memoryview(batch), offset, epoch) == expected
    assert native_twin.stamped_batch(batch, offset, epoch) == expected
    assert type(native.stamped_batch(batch, offset, epoch)[1]) is bytes
