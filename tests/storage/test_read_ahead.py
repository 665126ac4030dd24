"""Reading ahead of a reader going through a segment's dropped pages in order
(`raftlog/storage/read_ahead.py`), on real files: the bytes are the file's, the budget is
returned, and a truncation never lets bytes from before it be served."""

from __future__ import annotations

import os
import pathlib
import random

from raftlog.storage import SegmentedLog, read_ahead
from raftlog.storage.direct_read import open_direct

from .log_helpers import data_files
from .page_cache_helpers import MIB, cached_tail_config, fill


def _segment_bytes(log: SegmentedLog, position: int, size_bytes: int) -> bytes:
    return log._segments[-1].read(position, size_bytes)


def test_a_reader_in_order_is_served_from_the_read_ahead(droppable: pathlib.Path) -> None:
    log = SegmentedLog.open(droppable / "log", cached_tail_config())
    try:
        fill(log, 12 * MIB)
        log.sync()
        segment = log._segments[-1]
        (data_file,) = data_files(droppable / "log")
        content = data_file.read_bytes()
        dropped = segment.cache_dropped_bytes
        assert dropped >= 8 * MIB
        rng = random.Random(3)
        position = 0
        served_ahead = 0
        while position < dropped:
            size = min(rng.randrange(1, 2 * MIB), dropped - position)
            ahead = segment.reading_ahead
            if ahead is not None and ahead.position == position:
                served_ahead += 1
            assert segment.read(position, size) == content[position : position + size]
            position += size
        assert served_ahead >= 3, "the reads in order never found a read ahead"
        assert segment.reading_ahead is None, "read ahead past the dropped pages"
        assert read_ahead.bytes_held() == 0
    finally:
        log.close()
    assert read_ahead.bytes_held() == 0


def test_closing_discards_the_read_ahead_and_returns_its_budget(
    droppable: pathlib.Path,
) -> None:
    log = SegmentedLog.open(droppable / "log", cached_tail_config())
    fill(log, 12 * MIB)
    log.sync()
    _segment_bytes(log, 0, MIB)
    assert log._segments[-1].reading_ahead is not None
    assert read_ahead.bytes_held() == MIB
    log.close()
    assert read_ahead.bytes_held() == 0


def test_the_budget_bounds_reads_ahead(droppable: pathlib.Path) -> None:
    path = droppable / "data"
    path.write_bytes(os.urandom(4 * MIB))
    fd = open_direct(path)
    assert fd is not None
    started = []
    try:
        while (ahead := read_ahead.start(fd, 0, 4 * MIB)) is not None:
            started.append(ahead)
            assert len(started) <= read_ahead.READ_AHEAD_BYTES_MAX // (4 * MIB)
        assert read_ahead.bytes_held() == len(started) * 4 * MIB
        assert read_ahead.bytes_held() + 4 * MIB > read_ahead.READ_AHEAD_BYTES_MAX
        assert started[0].take(MIB, 10) == path.read_bytes()[MIB : MIB + 10]
        for ahead in started[1:]:
            ahead.discard()
    finally:
        os.close(fd)
    assert read_ahead.bytes_held() == 0
    assert read_ahead.start(fd, 0, 0) is None


def test_a_truncation_discards_bytes_read_ahead_of_it(droppable: pathlib.Path) -> None:
    """Read ahead, cut the log below the range read, write other batches there: a read of
    the range must return the new bytes (the old ones are valid batches, CRC and all)."""
    log = SegmentedLog.open(droppable / "log", cached_tail_config())
    try:
        fill(log, 12 * MIB)
        log.sync()
        segment = log._segments[-1]
        _segment_bytes(log, 0, MIB)
        ahead = segment.reading_ahead
        assert ahead is not None and ahead.position == MIB
        log.truncate_suffix(3)
        written = fill(log, 12 * MIB)  # different batches from the third entry on
        log.sync()
        (data_file,) = data_files(droppable / "log")
        content = data_file.read_bytes()
        assert segment.cache_dropped_bytes > 2 * MIB
        assert _segment_bytes(log, MIB, MIB) == content[MIB : 2 * MIB]
        assert content.endswith(written[-1])
    finally:
        log.close()
