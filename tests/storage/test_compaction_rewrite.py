"""Compacting segment files on disk: swap, reopen, reads across the gaps, old slices."""

import os
import pathlib

import pytest

from raftlog import native
from raftlog.protocol.records import RecordBatchView
from raftlog.storage import SegmentedLog, SliceOutdated, StorageError, stamp
from raftlog.storage.compaction import OffsetMap, iter_batches
from raftlog.storage.segment import write_replacement

from .compaction_helpers import CONFIG, keyed_batch, keyed_log, offset_map


def _records(data: bytes) -> list[tuple[int, bytes | None, bytes | None]]:
    out = []
    for batch in iter_batches(data):
        out.extend((r.offset, r.key, r.value) for r in RecordBatchView(batch).records())
    return out


def _all_data(log: SegmentedLog) -> bytes:
    return b"".join(log.read_segment_data(i.base_offset).data for i in log.segments())


def test_compacted_files_survive_reopen_and_serve_every_offset(tmp_path: pathlib.Path) -> None:
    log = keyed_log(tmp_path, 60)
    assert len(log.segments()) >= 3
    next_offset, entries = log.next_offset, log.last_entry_index
    offsets = offset_map(log)
    before = sum(i.size_bytes for i in log.segments())
    for info in log.segments():
        log.compact_segment(info.base_offset, offsets, drop_tombstones=False)
    after = sum(i.size_bytes for i in log.segments())
    assert after < before
    kept = _records(_all_data(log))
    assert sorted(key for _o, key, _v in kept) == [b"k0", b"k1", b"k2", b"k3"]
    assert all(value.startswith(b"v59.") or value.startswith(b"v58.") for _o, _k, value in kept)
    log.close()

    reopened = SegmentedLog.open(tmp_path, CONFIG)
    assert reopened.recovery.rebuilt_index_segments == ()
    assert (reopened.next_offset, reopened.last_entry_index) == (next_offset, entries)
    assert _records(_all_data(reopened)) == kept
    assert len(reopened.read_entries(1, 10**9, 10**6)) == entries
    # Every offset, compacted away or not, is served by the batch that spans it.
    for offset in range(0, next_offset):
        piece = reopened.read_slice(reopened.read_by_offset(offset, 1))
        header = native.parse_batch_header(piece)
        assert header.base_offset <= offset <= header.last_offset
    reopened.close()


def test_a_slice_made_before_the_swap_reads_the_old_bytes(tmp_path: pathlib.Path) -> None:
    log = keyed_log(tmp_path, 30)
    base = log.segments()[0].base_offset
    old_slice = log.read_by_offset(base, 10**6)
    old_bytes = log.read_slice(old_slice)
    log.compact_segment(base, offset_map(log), drop_tombstones=False)
    assert log.read_slice(old_slice) == old_bytes
    new_slice = log.read_by_offset(base, 10**6)
    assert new_slice.generation == old_slice.generation + 1
    # A second swap (here: putting back the original bytes) retires the first file.
    path = log.replacement_path(base)
    fd = write_replacement(path, old_bytes)
    log.replace_segment_data(base, fd, log.read_segment_data(base).changes)
    with pytest.raises(SliceOutdated):
        log.read_slice(old_slice)
    assert log.read_slice(log.read_by_offset(base, 10**6)) == old_bytes
    log.close()


def test_a_replacement_with_other_batches_is_refused(tmp_path: pathlib.Path) -> None:
    log = keyed_log(tmp_path, 30)
    first, second = log.segments()[0], log.segments()[1]
    source = log.read_segment_data(first.base_offset)
    wrong = log.read_segment_data(second.base_offset).data
    fd = write_replacement(log.replacement_path(first.base_offset), wrong)
    with pytest.raises(StorageError, match="same batches"):
        log.replace_segment_data(first.base_offset, fd, source.changes)
    assert log.read_segment_data(first.base_offset).data == source.data
    assert not log.replacement_path(first.base_offset).exists()
    log.close()


def test_a_segment_that_changed_meanwhile_is_left_alone(tmp_path: pathlib.Path) -> None:
    log = keyed_log(tmp_path, 5)
    tail = log.segments()[-1]
    stale = log.read_segment_data(tail.base_offset)
    batch = keyed_batch(99)
    stamp(batch, log.next_offset, 1)
    log.append(batch)
    fd = write_replacement(log.replacement_path(tail.base_offset), stale.data)
    with pytest.raises(StorageError, match="changed while"):
        log.replace_segment_data(tail.base_offset, fd, stale.changes)
    log.close()


def test_the_tail_file_can_be_compacted_and_then_appended_to(tmp_path: pathlib.Path) -> None:
    """A sealed Raft group's last file is the log's tail: a new leader may still append a
    NOOP after its SEAL, so the swap must leave it appendable."""
    log = SegmentedLog.open(tmp_path, CONFIG)
    for number in range(4):
        batch = keyed_batch(number, records=2)
        stamp(batch, log.next_offset, 1)
        log.append(batch)
    assert len(log.segments()) == 1
    offsets = OffsetMap()
    offsets.add(log.read_segment_data(0).data)
    assert log.compact_segment(0, offsets, drop_tombstones=False).changed
    batch = keyed_batch(10, records=2)
    stamp(batch, log.next_offset, 2)
    log.append(batch)
    log.truncate_suffix(log.last_entry_index)
    log.append(batch)
    log.close()
    reopened = SegmentedLog.open(tmp_path, CONFIG)
    assert reopened.recovery.truncated_bytes == 0
    assert reopened.last_entry_index == 5
    reopened.close()
    assert not any(p.name.endswith(".tmp") for p in os.scandir(tmp_path))
