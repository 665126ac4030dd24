"""Corruption in a log's files: found by CRC at open and at read, cut, and remembered as
a repair floor until the log holds that much again."""

from __future__ import annotations

import json
import os
import pathlib

import pytest

from raftlog.storage import SegmentedLog
from raftlog.storage.errors import CorruptBatchError, LogLayoutError
from raftlog.storage.repair import REPAIR_FILE_NAME, RepairState, count_batches_from, load
from tests.storage.log_helpers import append_tagged, data_files, small_config


def _log_with(directory: pathlib.Path, batches: int) -> list[bytes]:
    with SegmentedLog.open(directory, small_config()) as log:
        return [append_tagged(log, tag) for tag in range(batches)]


def _flip(path: pathlib.Path, position: int) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= 0x10
    path.write_bytes(bytes(data))


def test_a_bit_flip_mid_tail_is_cut_and_sets_the_floor(tmp_path: pathlib.Path) -> None:
    batches = _log_with(tmp_path, 6)
    size = len(batches[0])
    tail = data_files(tmp_path)[-1]
    assert tail.stat().st_size == size * 6  # all in one file (small batches)
    _flip(tail, 2 * size + 30)  # inside the third batch's CRC-covered bytes
    with SegmentedLog.open(tmp_path, small_config()) as log:
        assert log.last_entry_index == 2
        assert log.repair_floor == 6, "it once held entries up to 6"
        assert log.corruption_found and "BAD_CRC" in log.corruption_found[0]
    assert load(tmp_path) == RepairState(floor=6)
    # The floor survives a restart and goes only once entries up to it are durable.
    with SegmentedLog.open(tmp_path, small_config()) as log:
        assert log.repair_floor == 6
        for tag in range(3):
            append_tagged(log, 100 + tag)
        log.sync()
        assert not log.clear_repair_floor_if_durable()
        append_tagged(log, 200)
        log.sync()
        assert log.clear_repair_floor_if_durable()
        assert log.repair_floor == 0
    assert not (tmp_path / REPAIR_FILE_NAME).exists()


def test_a_torn_tail_sets_no_floor(tmp_path: pathlib.Path) -> None:
    """A write cut short by a crash was never acknowledged: no repair needed."""
    batches = _log_with(tmp_path, 4)
    tail = data_files(tmp_path)[-1]
    os.truncate(tail, tail.stat().st_size - len(batches[-1]) // 2)
    with SegmentedLog.open(tmp_path, small_config()) as log:
        assert log.last_entry_index == 3
        assert log.repair_floor == 0
        assert not log.corruption_found


def test_a_sealed_segment_is_checked_at_read_and_cut_at_the_next_open(
    tmp_path: pathlib.Path,
) -> None:
    batches = _log_with(tmp_path, 120)  # many segments at 4 KiB each
    files = data_files(tmp_path)
    assert len(files) >= 3
    sealed = files[0]
    size = len(batches[0])
    _flip(sealed, size + 40)  # the second batch: entry 2
    with SegmentedLog.open(tmp_path, small_config()) as log:
        assert log.last_entry_index == 120, "sealed segments are not scanned at open"
        assert log.read_entries(1, 1 << 20, 1)[0] == batches[0]
        with pytest.raises(CorruptBatchError):
            log.read_entries(1, 1 << 20, 10)
        with pytest.raises(CorruptBatchError):
            log.read_slice(log.read_by_offset(0, 1 << 20))
    assert load(tmp_path) == RepairState(floor=120, corrupt_from_entry=2)
    with SegmentedLog.open(tmp_path, small_config()) as log:
        assert log.last_entry_index == 1
        assert log.repair_floor == 120
        assert log.read_entries(1, 1 << 20, 10) == batches[:1]
    assert load(tmp_path) == RepairState(floor=120)


def test_fetch_reads_of_clean_data_pass_the_check(tmp_path: pathlib.Path) -> None:
    batches = _log_with(tmp_path, 40)
    with SegmentedLog.open(tmp_path, small_config()) as log:
        data = log.read_slice(log.read_by_offset(0, 1 << 20))
        assert data == b"".join(batches[: len(data) // len(batches[0])])
        assert log.read_entries(1, 1 << 20, 40) == batches


def test_count_batches_from_walks_length_fields(tmp_path: pathlib.Path) -> None:
    batches = _log_with(tmp_path, 5)
    tail = data_files(tmp_path)[-1]
    fd = os.open(tail, os.O_RDONLY)
    try:
        size = tail.stat().st_size
        assert count_batches_from(fd, 0, size) == 5
        assert count_batches_from(fd, len(batches[0]), size) == 4
        assert count_batches_from(fd, size - 3, size) == 1, "bytes there mean one entry"
        assert count_batches_from(fd, size, size) == 0
    finally:
        os.close(fd)


def test_an_unreadable_repair_file_refuses_to_open(tmp_path: pathlib.Path) -> None:
    _log_with(tmp_path, 2)
    (tmp_path / REPAIR_FILE_NAME).write_text(json.dumps({"format": 1, "floor": "high"}))
    with pytest.raises(LogLayoutError, match="repair state"):
        SegmentedLog.open(tmp_path, small_config())
    (tmp_path / REPAIR_FILE_NAME).write_text("{not json")
    with pytest.raises(LogLayoutError, match="repair state"):
        SegmentedLog.open(tmp_path, small_config())
