"""A group's unapplied entries answer from memory exactly as its segment files would."""

import gc
import tempfile
from pathlib import Path

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from raftlog.protocol.records import Record, build_batch
from raftlog.raft.entry import Entry, EntryKind
from raftlog.replica.entry_batches import batch_to_entry
from raftlog.replica.factory import open_replica_group
from raftlog.replica.raft_storage import READ_COUNT_MAX, SegmentGroupLog
from raftlog.replica.recent_entries import RecentEntries, SharedBound
from raftlog.storage.log import SegmentedLog

from .test_replica_group import elect, no_messages


def _storage(directory: Path, bytes_max: int) -> SegmentGroupLog:
    _group, storage = open_replica_group(
        directory, group_id=1, node_id=1, voters=[1], apply=lambda _e: None, send=no_messages
    )
    storage.recent = RecentEntries(bytes_max)
    return storage


def _from_files(storage: SegmentGroupLog, low: int, high: int, max_bytes: int) -> list[Entry]:
    """What `entries` answers without the recent entries: the files, read and checked."""
    count = min(high - low, READ_COUNT_MAX)
    batches = storage.log.read_entries(low, max_bytes, count)
    return [batch_to_entry(batch, low + position) for position, batch in enumerate(batches)]


_entry_specs = st.lists(
    st.one_of(st.integers(1, 3000), st.just(0)),  # a DATA batch of that many value bytes; 0: NOOP
    min_size=1,
    max_size=6,
)
_operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), _entry_specs),
        st.tuples(st.just("overwrite"), st.integers(0, 10), _entry_specs),
        st.tuples(st.just("applied"), st.integers(0, 40), st.integers(0, 40)),
        st.tuples(st.just("read"), st.integers(0, 40), st.integers(1, 12), st.integers(1, 9000)),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(operations=_operations, bytes_max=st.sampled_from([1, 2500, 9000, 1 << 20]))
def test_recent_entries_answer_like_the_files(
    operations: list[tuple[object, ...]], bytes_max: int
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        storage = _storage(Path(directory), bytes_max)
        term = 1

        def entries_from(first: int, specs: list[int]) -> list[Entry]:
            built = []
            for position, size in enumerate(specs):
                if size:
                    payload = build_batch([Record(b"v" * size)])
                    built.append(Entry(term, first + position, EntryKind.DATA, payload))
                else:
                    built.append(Entry(term, first + position, EntryKind.NOOP))
            return built

        for operation in operations:
            last = storage.last_index()
            if operation[0] == "append":
                storage.append_entries(entries_from(last + 1, operation[1]))  # type: ignore[arg-type]
            elif operation[0] == "overwrite":
                first = max(1, last + 1 - int(operation[1]))  # type: ignore[call-overload]
                term += 1  # a new leader's entries replace the suffix
                storage.append_entries(entries_from(first, operation[2]))  # type: ignore[arg-type]
            elif operation[0] == "applied":
                applied = min(int(operation[1]), last)  # type: ignore[call-overload]
                storage.entries_applied(applied, int(operation[2]))  # type: ignore[call-overload]
            else:
                _kind, low, span, max_bytes = operation
                low = 1 + int(low) % max(last, 1)  # type: ignore[call-overload]
                high = min(low + int(span), last + 1)  # type: ignore[call-overload]
                if low >= high:
                    continue
                assert storage.entries(low, high, int(max_bytes)) == _from_files(  # type: ignore[call-overload]
                    storage,
                    low,
                    high,
                    int(max_bytes),  # type: ignore[call-overload]
                )
            assert storage.recent.bytes_held <= bytes_max
        last = storage.last_index()
        if last:
            whole = storage.entries(1, last + 1, 1 << 30)
            assert whole == _from_files(storage, 1, last + 1, 1 << 30)
        storage.log.close()


def test_a_full_run_leaves_out_the_newest_until_it_is_applied() -> None:
    recent = RecentEntries(bytes_max=300)
    for index in range(1, 6):
        recent.written(Entry(1, index, EntryKind.NOOP), 100)
    assert len(recent) == 3 and recent.bytes_held == 300  # 4 and 5 were left out
    assert not recent.takes(6, 1) and recent.takes(2, 100)  # after a gap; a rewrite restarts
    assert recent.read(4, 1, 1 << 20) is None
    assert [entry.index for entry in recent.read(1, 3, 1 << 20) or []] == [1, 2, 3]
    assert [entry.index for entry in recent.read(2, 2, 150) or []] == [2]  # at least one
    recent.applied(2)
    recent.written(Entry(1, 6, EntryKind.NOOP), 100)  # after a left-out entry: not held
    assert [entry.index for entry in recent.read(3, 1, 1 << 20) or []] == [3]
    assert recent.read(6, 1, 1 << 20) is None
    recent.applied(5)
    recent.written(Entry(1, 7, EntryKind.NOOP), 100)  # everything held applied: a new run
    assert [entry.index for entry in recent.read(7, 1, 1 << 20) or []] == [7]
    recent.written(Entry(2, 7, EntryKind.NOOP), 10)  # rewritten in place: the run restarts
    assert recent.bytes_held == 10 and recent.read(7, 1, 1 << 20) == [Entry(2, 7, EntryKind.NOOP)]
    recent.truncated(7)
    assert len(recent) == 0 and recent.bytes_held == 0


def test_applied_entries_a_peer_lacks_stay_until_room_is_needed() -> None:
    recent = RecentEntries(bytes_max=300)
    for index in range(1, 4):
        recent.written(Entry(1, index, EntryKind.NOOP), 100)
    recent.applied(3, sent_index=1)  # a lagging follower was sent entry 1 only
    assert [entry.index for entry in recent.read(2, 2, 1 << 20) or []] == [2, 3]
    recent.written(Entry(1, 4, EntryKind.NOOP), 100)  # room for it as it is
    recent.written(Entry(1, 5, EntryKind.NOOP), 100)  # the oldest applied entry makes room
    assert recent.read(2, 1, 1 << 20) is None
    assert [entry.index for entry in recent.read(3, 3, 1 << 20) or []] == [3, 4, 5]
    recent.written(Entry(1, 6, EntryKind.NOOP), 100)
    assert [entry.index for entry in recent.read(4, 3, 1 << 20) or []] == [4, 5, 6]
    recent.written(Entry(1, 7, EntryKind.NOOP), 1)  # nothing applied left to drop: left out
    assert recent.read(7, 1, 1 << 20) is None and recent.bytes_held == 300
    recent.applied(6, sent_index=4)  # a lagging follower still needs 5 and 6
    assert [entry.index for entry in recent.read(5, 2, 1 << 20) or []] == [5, 6]
    recent.written(Entry(1, 8, EntryKind.NOOP), 100)  # after the gap: all held applied, anew
    assert [entry.index for entry in recent.read(8, 1, 1 << 20) or []] == [8]
    assert recent.read(6, 1, 1 << 20) is None and recent.bytes_held == 100
    recent.applied(8, sent_index=8)
    assert len(recent) == 0 and recent.bytes_held == 0


def test_many_applied_entries_do_not_pile_up_in_front() -> None:
    recent = RecentEntries(bytes_max=1 << 30)
    for index in range(1, 5001):
        recent.written(Entry(1, index, EntryKind.NOOP), 1)
        recent.applied(index - 10)
    assert len(recent) == 10
    assert len(recent._entries) < 600  # the dropped front is compacted away


def test_a_group_applies_what_it_commits_without_reading_its_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    applied: list[Entry] = []
    reads: list[int] = []
    read_entries = SegmentedLog.read_entries

    def counted(log: SegmentedLog, first: int, max_bytes: int, max_count: int) -> list[bytes]:
        reads.append(first)
        return read_entries(log, first, max_bytes, max_count)

    async def main() -> None:
        group, storage = open_replica_group(
            tmp_path, group_id=1, node_id=1, voters=[1], apply=applied.extend, send=no_messages
        )
        monkeypatch.setattr(SegmentedLog, "read_entries", counted)
        async with trio.open_nursery() as nursery:
            await nursery.start(group.run)
            await elect(group)
            for value in range(50):
                proposed = group.propose(build_batch([Record(f"v{value}".encode())]))
                if value % 7 == 0:
                    await group.wait_committed(*proposed)
            await group.wait_committed(*proposed)
            nursery.cancel_scope.cancel()
        assert reads == []
        monkeypatch.undo()
        assert len(storage.recent) == 0, "everything applied is let go"
        assert [entry.index for entry in applied] == list(range(1, proposed[0] + 1))
        assert applied == _from_files(storage, 1, proposed[0] + 1, 1 << 30)
        storage.log.close()

    trio.run(main)


def test_groups_share_a_bound_and_a_dropped_group_gives_its_share_back() -> None:
    shared = SharedBound(bytes_max=300)
    first, second = RecentEntries(shared=shared), RecentEntries(shared=shared)
    for index in (1, 2):
        first.written(Entry(1, index, EntryKind.NOOP), 100)
    second.written(Entry(1, 1, EntryKind.NOOP), 100)
    second.written(Entry(1, 2, EntryKind.NOOP), 100)  # over the shared bound: left out
    assert (first.bytes_held, second.bytes_held, shared.bytes_held) == (200, 100, 300)
    first.applied(1)
    assert shared.bytes_held == 200
    del first
    gc.collect()
    assert shared.bytes_held == 100
    second.clear()
    assert shared.bytes_held == 0
