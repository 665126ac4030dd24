"""Dropping durable pages from the page cache (`raftlog/storage/page_cache.py`): what is
dropped and when, on real files, read back through the kernel's own residency report
(mincore), and the data still reads back whole from the disk."""

from __future__ import annotations

import os
import pathlib
import random

import trio

from raftlog.protocol.records import Record, build_batch
from raftlog.raft.entry import Entry, EntryKind
from raftlog.replica.factory import open_replica_group
from raftlog.storage import SegmentedLog
from raftlog.storage.direct_read import DIRECT_READ_BYTES_MAX, open_direct
from raftlog.storage.direct_read import read as direct_read
from raftlog.storage.group_commit import GroupCommitter
from raftlog.storage.offloop_sync import fdatasync_chain
from raftlog.storage.page_cache import (
    DROP_BYTES_MIN,
    PAGE_BYTES,
    drop_all,
    drop_range,
)
from tests.node.test_replica_group import no_messages

from .log_helpers import data_files
from .page_cache_helpers import (
    CACHED_MAX,
    MIB,
    TAIL,
    cached_tail_config,
    fill,
    resident_bytes,
)


def _read_all(log: SegmentedLog) -> bytes:
    """Every batch, each checked against its CRC as it is read."""
    return b"".join(log.read_entries(log.first_entry_index, 10**10, 10**6))


def test_the_range_keeps_the_tail_and_waits_for_a_mebibyte() -> None:
    assert drop_range(0, 100 * MIB, None) == (0, 0), "None keeps everything"
    assert drop_range(0, TAIL + DROP_BYTES_MIN - 1, TAIL) == (0, 0), "too little to drop"
    offset, length = drop_range(0, 10 * MIB + 123, TAIL)
    assert (offset, length) == (0, 8 * MIB)
    offset, length = drop_range(8 * MIB, 10 * MIB + 5000 + DROP_BYTES_MIN, TAIL)
    assert offset == 8 * MIB and (offset + length) % PAGE_BYTES == 0
    assert offset + length <= 10 * MIB + 5000 + DROP_BYTES_MIN - TAIL
    assert drop_range(0, 10 * MIB, 0) == (0, 10 * MIB), "0 keeps nothing"
    assert drop_range(0, 5000, 0) == (0, 4096), "and drops every page a sync completes"
    assert drop_range(4096, 5000, 0) == (4096, 0), "a page at a time, no less"
    assert drop_range(0, 300_000, 100_000) == (0, 196_608), "a small tail, small ranges"
    start, length = drop_range(3 * MIB, 9 * MIB, TAIL)
    assert (start, length) == (2 * MIB, 5 * MIB), "the folio across the last end goes too"
    assert drop_all(5 * MIB, 10 * MIB + 7) == (4 * MIB, 8 * MIB)


def test_a_sync_drops_what_is_older_than_the_tail(droppable: pathlib.Path) -> None:
    log = SegmentedLog.open(droppable / "log", cached_tail_config())
    try:
        written = fill(log, 12 * MIB)
        (data_file,) = data_files(droppable / "log")
        assert resident_bytes(data_file) >= 12 * MIB, "appends are cached until synced"
        log.sync()
        assert resident_bytes(data_file) <= CACHED_MAX
        assert resident_bytes(data_file) >= TAIL - PAGE_BYTES, "the tail stays cached"
        assert _read_all(log) == b"".join(written), "dropped pages read back from the disk"
    finally:
        log.close()


def test_none_leaves_the_cache_alone(droppable: pathlib.Path) -> None:
    log = SegmentedLog.open(droppable / "log", cached_tail_config(tail=None))
    try:
        fill(log, 8 * MIB)
        log.sync()
        (data_file,) = data_files(droppable / "log")
        assert resident_bytes(data_file) >= 8 * MIB
    finally:
        log.close()


def test_a_sealed_segment_is_dropped_whole(droppable: pathlib.Path) -> None:
    log = SegmentedLog.open(droppable / "log", cached_tail_config())
    try:
        written = fill(log, TAIL // 2)
        log.roll()
        written += fill(log, TAIL // 2)
        sealed, active = data_files(droppable / "log")
        assert resident_bytes(sealed) == 0
        assert resident_bytes(active) > 0, "the active segment is not synced yet"
        assert _read_all(log) == b"".join(written)
    finally:
        log.close()


def test_a_truncation_moves_the_dropped_mark_back(droppable: pathlib.Path) -> None:
    log = SegmentedLog.open(droppable / "log", cached_tail_config())
    try:
        fill(log, 12 * MIB)
        log.sync()
        active = log._segments[-1]
        assert active.cache_dropped_bytes >= 8 * MIB
        log.truncate_suffix(3)
        assert active.cache_dropped_bytes <= active.size_bytes
        assert active.cache_dropped_bytes % PAGE_BYTES == 0
        written = fill(log, 12 * MIB)
        log.sync()
        (data_file,) = data_files(droppable / "log")
        assert resident_bytes(data_file) <= CACHED_MAX
        assert _read_all(log)[-len(written[-1]) :] == written[-1]
    finally:
        log.close()


def test_the_group_committer_drops_after_its_fdatasync(droppable: pathlib.Path) -> None:
    log = SegmentedLog.open(droppable / "log", cached_tail_config())

    async def main() -> None:
        committer = GroupCommitter(log)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(committer.run)
            fill(log, 8 * MIB)
            await committer.wait_durable(log.last_entry_index)
            nursery.cancel_scope.cancel()

    try:
        trio.run(main)
        (data_file,) = data_files(droppable / "log")
        assert resident_bytes(data_file) <= CACHED_MAX
    finally:
        log.close()


def test_the_c_chain_drops_only_after_the_log_is_durable(droppable: pathlib.Path) -> None:
    path = droppable / "log"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        for _ in range(64):
            os.write(fd, os.urandom(64 << 10))  # in small folios, so a range drops exactly
        trio.run(fdatasync_chain, fd, None, None, (0, 2 * MIB))
        assert resident_bytes(path) == 2 * MIB
        os.pwrite(fd, os.urandom(MIB), 0)
        trio.run(fdatasync_chain, fd)
        assert resident_bytes(path) >= MIB, "no range given, nothing dropped"
    finally:
        os.close(fd)
    assert path.stat().st_size == 4 * MIB


def test_a_replica_group_log_drops_through_its_sync_chain(droppable: pathlib.Path) -> None:
    """`SegmentGroupLog.sync` (the replicated path) hands the range to the C chain."""
    _group, storage = open_replica_group(
        droppable, group_id=1, node_id=1, voters=[1], apply=lambda entries: None,
        send=no_messages, log_config=cached_tail_config(),
    )  # fmt: skip
    try:
        value = os.urandom(900)
        entries = [
            Entry(
                term=1, index=index, kind=EntryKind.DATA, payload=build_batch([Record(value)] * 64)
            )
            for index in range(1, 201)
        ]
        storage.append_entries(entries)
        trio.run(storage.sync)
        (data_file,) = data_files(droppable / "log")
        assert data_file.stat().st_size > 10 * MIB
        assert resident_bytes(data_file) <= CACHED_MAX
        assert storage.log.durable_point().entry_index == 200
    finally:
        storage.log.close()


def test_reads_of_dropped_data_bypass_the_cache(droppable: pathlib.Path) -> None:
    log = SegmentedLog.open(droppable / "log", cached_tail_config())
    try:
        written = fill(log, 12 * MIB)
        log.sync()
        log.roll()
        written += fill(log, 4 * MIB)
        sealed, active = data_files(droppable / "log")
        assert _read_all(log) == b"".join(written)
        # Batch headers are found through the cache (a page each); the data is not.
        assert resident_bytes(sealed) < 12 * MIB // 8, "a read of the sealed file cached it"
        assert resident_bytes(active) >= 4 * MIB, "the unsynced tail reads from the cache"
    finally:
        log.close()


def test_direct_reads_equal_buffered_ones_at_any_alignment(droppable: pathlib.Path) -> None:
    path = droppable / "data"
    content = os.urandom(3 * MIB + 777)
    path.write_bytes(content)
    fd = open_direct(path)
    assert fd is not None
    try:
        rng = random.Random(5)
        for _ in range(200):
            position = rng.randrange(len(content))
            size = rng.randrange(1, min(len(content) - position, 300_000) + 1)
            assert direct_read(fd, position, size) == content[position : position + size]
        assert direct_read(fd, len(content) - 10, 10) == content[-10:]
        assert direct_read(fd, len(content) - 10, 11) is None, "short: read it buffered"
        assert direct_read(fd, 0, 0) is None
        assert direct_read(fd, 0, DIRECT_READ_BYTES_MAX + 1) is None
    finally:
        os.close(fd)


def test_where_o_direct_is_refused_reads_stay_buffered(droppable: pathlib.Path) -> None:
    log = SegmentedLog.open(droppable / "log", cached_tail_config())
    try:
        written = fill(log, 8 * MIB)
        log.roll()
        (sealed_segment, _active) = log._segments
        sealed_segment.direct_fd = None  # what `open_direct` leaves on such a file system
        assert _read_all(log) == b"".join(written)
        assert resident_bytes(data_files(droppable / "log")[0]) >= 8 * MIB
    finally:
        log.close()
