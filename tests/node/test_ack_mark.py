"""The acknowledgement mark: how far a replica's log was durable, kept apart from the log so
that disk damage that shortens the log cleanly is still detected as a loss."""

from __future__ import annotations

import os
from pathlib import Path

import trio

from raftlog.protocol.records import Record, build_batch, iter_batches
from raftlog.raft.entry import Entry, EntryKind
from raftlog.replica.ack_mark import AckMark
from raftlog.replica.factory import open_replica_group
from raftlog.replica.group import ReplicaGroup
from raftlog.replica.raft_storage import SegmentGroupLog
from tests.node.test_replica_group import elect, no_messages


def _single_voter(directory: Path) -> tuple[ReplicaGroup, SegmentGroupLog]:
    """A single-voter group on `directory` (not run yet), its log keeping a mark."""
    return open_replica_group(
        directory, group_id=1, node_id=1, voters=[1], apply=lambda entries: None,
        send=no_messages,
    )  # fmt: skip


def _save(mark: AckMark, index: int, term: int) -> None:
    """What `SegmentGroupLog.sync` has the C sync thread do with a prepared slot."""
    prepared = mark.prepare(index, term)
    if prepared is None:
        return
    fd, data, position = prepared
    try:
        os.pwrite(fd, data, position)
        os.fdatasync(fd)
    finally:
        os.close(fd)
    mark.written(index, term)


def test_the_newest_write_wins_even_when_the_mark_moves_down(tmp_path: Path) -> None:
    mark = AckMark(tmp_path / "ackmark")
    assert mark.load() is None
    _save(mark, 100, 5)
    _save(mark, 95, 6)  # a new leader replaced an uncommitted suffix with a shorter one
    assert AckMark(tmp_path / "ackmark").load() == (95, 6)
    _save(mark, 97, 6)
    assert AckMark(tmp_path / "ackmark").load() == (97, 6)


def test_a_torn_write_leaves_the_previous_mark(tmp_path: Path) -> None:
    path = tmp_path / "ackmark"
    mark = AckMark(path)
    _save(mark, 10, 1)
    _save(mark, 12, 1)  # second slot
    data = bytearray(path.read_bytes())
    data[512 + 9] ^= 0xFF  # the newest slot, torn mid-write
    path.write_bytes(bytes(data))
    reloaded = AckMark(path)
    assert reloaded.load() == (10, 1)
    _save(reloaded, 13, 1)  # overwrites the torn slot, not the good one
    assert AckMark(path).load() == (13, 1)


def test_a_log_cut_cleanly_below_what_was_durable_is_a_detected_loss(tmp_path: Path) -> None:
    """Seen in chaos run 14004: a segment file truncated at a batch boundary looks like a
    shorter log. Without the mark, the replica knew only its lazily saved commit hint, voted
    for a candidate that lacked a committed entry, and the entry was overwritten."""

    async def write() -> int:
        group, storage = _single_voter(tmp_path)
        async with trio.open_nursery() as nursery:
            await nursery.start(group.run)
            await elect(group)
            last = (0, 0)
            for value in range(10):
                last = group.propose(build_batch([Record(b"v%d" % value)]))
            await group.wait_committed(*last)
            nursery.cancel_scope.cancel()
        storage.log.close()
        return last[0]

    last_index = trio.run(write)
    (data_file,) = (tmp_path / "log").glob("*.log")
    raw = data_file.read_bytes()
    boundaries = []
    position = 0
    for batch in iter_batches(raw):
        boundaries.append(position)
        position += len(batch.buffer)
    data_file.write_bytes(raw[: boundaries[-4]])  # three entries gone, no CRC error anywhere

    group, storage = _single_voter(tmp_path)
    try:
        assert storage.log.last_entry_index < last_index
        assert group.raw.repairing, "the lost entries went unnoticed"
        assert storage.log.repair_floor == last_index
    finally:
        storage.log.close()


def test_a_mark_that_cannot_be_opened_leaves_the_log_as_it_was(tmp_path: Path) -> None:
    """The mark is prepared before the log's sync begins: failing to open it must leave no
    sync half begun (a descriptor held, an fdatasync claimed) and the next sync works."""
    _group, storage = _single_voter(tmp_path)
    assert storage.ack_mark is not None
    real_path = storage.ack_mark.path
    storage.append_entries([Entry(1, 1, EntryKind.DATA, build_batch([Record(b"v")]))])
    descriptors = len(os.listdir("/proc/self/fd"))
    storage.ack_mark.path = tmp_path  # a directory: opening it for writing fails
    try:
        trio.run(storage.sync)
    except IsADirectoryError:
        pass
    else:
        raise AssertionError("the mark could not be written, yet the sync succeeded")
    assert len(os.listdir("/proc/self/fd")) == descriptors
    assert storage.log.durable_point().entry_index == 0, "durability claimed with no mark"

    storage.ack_mark.path = real_path
    trio.run(storage.sync)
    assert storage.log.durable_point().entry_index == 1
    assert AckMark(real_path).load() == (1, 1)
    storage.log.close()


def test_a_sync_that_moves_nothing_leaves_both_slots_as_they_were(tmp_path: Path) -> None:
    """A sync with no new entry writes no slot, so it must not move to the other slot
    either: the next write would then overwrite the newest valid one, and a tear in it
    would leave no mark at all (or an older one)."""
    _group, storage = _single_voter(tmp_path)
    assert storage.ack_mark is not None
    path = storage.ack_mark.path
    storage.append_entries([Entry(1, 1, EntryKind.DATA, build_batch([Record(b"a")]))])
    trio.run(storage.sync)
    trio.run(storage.sync)  # nothing new: the mark already says (1, 1)
    storage.append_entries([Entry(1, 2, EntryKind.DATA, build_batch([Record(b"b")]))])
    trio.run(storage.sync)
    storage.log.close()
    survivors = set()
    for slot in (0, 1):  # a tear in either slot leaves the mark the other one holds
        torn = bytearray(path.read_bytes())
        torn[slot * 512 + 9] ^= 0xFF
        copy = tmp_path / f"torn-{slot}"
        copy.write_bytes(bytes(torn))
        survivors.add(AckMark(copy).load())
    assert survivors == {(1, 1), (2, 1)}, "a slot was overwritten out of turn"
