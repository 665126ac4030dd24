"""Compaction over record batches: the pure function, checked by properties.

For any sequence of keyed records cut into batches (some compressed) and segments,
compacting against the latest offset of every key leaves, for each key, exactly its
latest record; offsets keep increasing; every batch still validates in C (the stored
rule), keeps its offset range and producer fields; and compacting twice changes nothing.
"""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from raftlog import native
from raftlog.protocol.records import CompressionCodec, Record, RecordBatchView, build_batch
from raftlog.raft.entry import EntryKind
from raftlog.replica.entry_batches import control_batch
from raftlog.storage.compaction import (
    CompactionError,
    OffsetMap,
    compact_data,
    iter_batches,
    keyless_records,
    read_records,
)

BATCH_BYTES_MAX = 1 << 20
KEYS = [f"k{i}".encode() for i in range(6)]

records_strategy = st.lists(
    st.tuples(st.sampled_from(KEYS), st.one_of(st.none(), st.binary(min_size=0, max_size=12))),
    min_size=1,
    max_size=60,
)


def _log(
    records: list[tuple[bytes, bytes | None]], cuts: list[int], codecs: list[int]
) -> list[bytes]:
    """Stamped batches holding `records` in order, cut into batches of the given sizes."""
    batches = []
    offset = 0
    position = 0
    for number, size in enumerate(cuts):
        chunk = records[position : position + size]
        if not chunk:
            break
        codec = CompressionCodec([0, 1, 3][codecs[number % len(codecs)] % 3])
        batch = bytearray(
            build_batch(
                [
                    Record(value, key=key, timestamp=1000 + offset + i)
                    for i, (key, value) in enumerate(chunk)
                ],
                compression=codec,
                producer_id=7,
                producer_epoch=0,
                base_sequence=offset,
                crc_function=native.crc32c,
            )
        )
        native.stamp_batch(batch, offset, 1)
        batches.append(bytes(batch))
        offset += len(chunk)
        position += len(chunk)
        if number % 3 == 2:  # a Raft NOOP between data batches, as a log holds them
            noop = control_batch(EntryKind.NOOP, b"")
            native.stamp_batch(noop, offset, 1)
            batches.append(bytes(noop))
            offset += 1
    return batches


def _decoded(data: bytes) -> list[tuple[int, bytes | None, bytes | None]]:
    out = []
    for batch in iter_batches(data):
        view = RecordBatchView(batch)
        if view.is_control:
            continue
        out.extend((r.offset, r.key, r.value) for r in view.records())
    return out


@settings(max_examples=150, deadline=None)
@given(
    records=records_strategy,
    cuts=st.lists(st.integers(1, 8), min_size=60, max_size=60),
    codecs=st.lists(st.integers(0, 2), min_size=1, max_size=5),
    drop_tombstones=st.booleans(),
)
def test_compaction_keeps_the_latest_record_of_every_key(
    records: list[tuple[bytes, bytes | None]],
    cuts: list[int],
    codecs: list[int],
    drop_tombstones: bool,
) -> None:
    batches = _log(records, cuts, codecs)
    data = b"".join(batches)
    offsets = OffsetMap()
    offsets.add(data)
    result = compact_data(data, offsets, drop_tombstones)

    latest: dict[bytes, bytes | None] = {}
    for key, value in records:
        latest[key] = value
    expected = {k: v for k, v in latest.items() if not (v is None and drop_tombstones)}
    kept = _decoded(result.data)
    assert {key: value for _offset, key, value in kept} == expected
    assert len(kept) == len(expected)  # one record per key
    kept_offsets = [offset for offset, _key, _value in kept]
    assert kept_offsets == sorted(set(kept_offsets))

    before = list(iter_batches(data))
    after = list(iter_batches(result.data))
    assert len(after) == len(before)  # every batch is a Raft entry: none disappears
    for old, new in zip(before, after, strict=True):
        header = native.validate_stored_batch(new, BATCH_BYTES_MAX)
        assert not isinstance(header, native.NativeError), header
        original = native.parse_batch_header(old)
        assert header.base_offset == original.base_offset
        assert header.last_offset_delta == original.last_offset_delta
        assert header.partition_leader_epoch == original.partition_leader_epoch
        assert (header.producer_id, header.producer_epoch, header.base_sequence) == (
            original.producer_id,
            original.producer_epoch,
            original.base_sequence,
        )
    scan = native.scan_log(result.data, 0, BATCH_BYTES_MAX)
    assert scan.error is native.NativeError.OK
    assert scan.next_offset == native.scan_log(data, 0, BATCH_BYTES_MAX).next_offset

    again = compact_data(result.data, offsets, drop_tombstones)
    assert again.data == result.data and not again.changed


@settings(max_examples=60, deadline=None)
@given(records=records_strategy, cuts=st.lists(st.integers(1, 8), min_size=60, max_size=60))
def test_compacting_segment_by_segment_converges_to_one_pass(
    records: list[tuple[bytes, bytes | None]], cuts: list[int]
) -> None:
    """A replica that compacted an older segment against fewer segments, then again
    against all of them, holds the same bytes as one that compacted once."""
    batches = _log(records, cuts, [0])
    half = len(batches) // 2
    first, second = b"".join(batches[:half]), b"".join(batches[half:])
    early = OffsetMap()
    early.add(first)
    partial = compact_data(first, early, False).data
    full = OffsetMap()
    full.add(first)
    full.add(second)
    assert compact_data(partial, full, False).data == compact_data(first, full, False).data


def test_an_emptied_batch_is_kept_as_an_empty_batch() -> None:
    batches = _log([(b"a", b"1"), (b"a", b"2"), (b"a", b"3")], [2, 1], [0])
    data = b"".join(batches)
    offsets = OffsetMap()
    offsets.add(data)
    result = compact_data(data, offsets, False)
    first, second = list(iter_batches(result.data))
    header = native.validate_stored_batch(first, BATCH_BYTES_MAX)
    assert not isinstance(header, native.NativeError)
    assert header.records_count == 0 and header.last_offset_delta == 1
    assert header.size_bytes == 61
    assert bytes(second) == batches[1]
    # A producer may never send such a batch: the strict rule still refuses it.
    assert (
        native.validate_batch(first, BATCH_BYTES_MAX)
        is native.NativeError.RECORDS_COUNT_NOT_POSITIVE
    )


def test_control_batches_are_kept_byte_for_byte() -> None:
    seal = control_batch(EntryKind.SEAL, b"")
    native.stamp_batch(seal, 0, 3)
    offsets = OffsetMap()
    assert compact_data(bytes(seal), offsets, True).data == bytes(seal)


def test_records_without_key_are_counted_and_dropped() -> None:
    batch = bytearray(
        build_batch([Record(b"v"), Record(b"w", key=b"k")], crc_function=native.crc32c)
    )
    assert keyless_records(batch) == 1
    native.stamp_batch(batch, 0, 1)
    offsets = OffsetMap()
    offsets.add(bytes(batch))
    assert _decoded(compact_data(bytes(batch), offsets, False).data) == [(1, b"k", b"w")]


def test_the_map_is_bounded_in_keys() -> None:
    batch = bytearray(
        build_batch([Record(b"v", key=bytes([i])) for i in range(5)], crc_function=native.crc32c)
    )
    with pytest.raises(CompactionError, match="more than 4 distinct keys"):
        OffsetMap(keys_max=4).add(bytes(batch))


def test_garbage_records_are_a_clear_error() -> None:
    batch = bytearray(build_batch([Record(b"v", key=b"k")], crc_function=native.crc32c))
    batch[61] = 0x7F  # record length far past the batch
    with pytest.raises(CompactionError, match="runs past"):
        read_records(batch)


def test_the_python_twin_agrees_on_the_stored_rule() -> None:
    from raftlog import native_twin

    batches = _log([(b"a", b"1"), (b"a", b"2"), (b"b", None)], [2, 1], [0])
    data = b"".join(batches)
    offsets = OffsetMap()
    offsets.add(data)
    for batch in iter_batches(compact_data(data, offsets, True).data):
        assert native.validate_stored_batch(batch, BATCH_BYTES_MAX) == (
            native_twin.validate_stored_batch(batch, BATCH_BYTES_MAX)
        )
        assert native.validate_batch(batch, BATCH_BYTES_MAX) == native_twin.validate_batch(
            batch, BATCH_BYTES_MAX
        )
