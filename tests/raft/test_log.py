"""The stable + unstable log, the in-memory storage, the in-flight window and progress."""

from __future__ import annotations

import pytest

from raftlog.invariant import InvariantViolation
from raftlog.raft.entry import Entry, EntryKind
from raftlog.raft.errors import LogCompacted, LogUnavailable
from raftlog.raft.inflights import Inflights
from raftlog.raft.membership import (
    ConfigChange,
    ConfigChangeKind,
    ConfigChangeRecord,
    InvalidConfigChange,
    Membership,
    decode_config_change_record,
    encode_config_change_record,
)
from raftlog.raft.progress import Progress, ProgressState
from raftlog.raft.raft_log import RaftLog
from raftlog.raft.storage import MemoryStorage
from raftlog.sim.scenario import log_terms, storage_with_log


def _entries(start: int, terms: list[int]) -> list[Entry]:
    return [Entry(term, start + offset, EntryKind.DATA, b"x") for offset, term in enumerate(terms)]


def test_memory_storage_appends_truncates_and_compacts() -> None:
    storage = storage_with_log((1,), [1, 1, 2, 2])
    assert (storage.first_index(), storage.last_index()) == (1, 4)
    storage.append(_entries(3, [3]))
    assert log_terms(storage) == [1, 1, 3]
    snapshot = storage.create_snapshot_and_compact(2, b"state")
    assert snapshot.metadata.index == 2 and snapshot.metadata.term == 1
    assert (storage.first_index(), storage.last_index()) == (3, 3)
    assert storage.term(2) == 1
    with pytest.raises(LogCompacted):
        storage.term(1)
    with pytest.raises(LogCompacted):
        storage.entries(2, 3, 100)
    with pytest.raises(LogUnavailable):
        storage.term(4)
    with pytest.raises(InvariantViolation):
        storage.append(_entries(6, [3]))


def test_storage_entries_respect_the_byte_budget_but_return_at_least_one() -> None:
    storage = storage_with_log((1,), [1, 1, 1, 1])
    assert len(storage.entries(1, 5, 0)) == 1
    assert len(storage.entries(1, 5, 2 * storage.entries(1, 2, 100)[0].size_bytes())) == 2


def test_raft_log_truncates_unstable_entries_on_conflict_and_keeps_commit() -> None:
    storage = storage_with_log((1,), [1, 1, 1])
    log = RaftLog.open(storage, committed=1, applied=0)
    assert log.maybe_append(3, 1, 5, _entries(4, [2, 2])) == 5
    assert log_terms(log) == [1, 1, 1, 2, 2]
    assert log.committed == 5
    # A conflicting append below the unstable offset replaces stable entries too.
    log2 = RaftLog.open(storage_with_log((1,), [1, 1, 1]), committed=1, applied=0)
    assert log2.maybe_append(1, 1, 1, _entries(2, [3])) == 2
    assert log_terms(log2) == [1, 3]
    assert log2.unstable.offset == 2
    assert log2.maybe_append(1, 2, 1, _entries(2, [3])) is None  # previous term mismatch


def test_raft_log_refuses_to_overwrite_committed_entries() -> None:
    log = RaftLog.open(storage_with_log((1,), [1, 1, 1]), committed=3, applied=0)
    with pytest.raises(InvariantViolation, match="committed"):
        log.maybe_append(1, 1, 3, _entries(2, [2]))


def test_find_conflict_by_term_skips_a_whole_term() -> None:
    log = RaftLog.open(storage_with_log((1,), [1, 1, 3, 3, 3, 5]), committed=0, applied=0)
    assert log.find_conflict_by_term(6, 4) == (5, 3)
    assert log.find_conflict_by_term(6, 2) == (2, 1)
    assert log.find_conflict_by_term(6, 0) == (0, 0)
    assert log.find_conflict_by_term(10, 9) == (6, 5)


def test_inflights_bound_by_count_and_bytes() -> None:
    window = Inflights(capacity_messages=3, capacity_bytes=100)
    window.add(1, 10)
    window.add(2, 10)
    assert not window.full()
    window.add(3, 10)
    assert window.full()
    window.free_up_to(2)
    assert window.count() == 1 and not window.full()
    window.add(4, 200)  # one oversized message may go, then the window is full
    assert window.full()
    window.free_first()
    window.free_first()
    assert window.count() == 0 and window.size_bytes() == 0
    with pytest.raises(InvariantViolation):
        window.add(5, 1)
        window.add(5, 1)


def test_progress_backs_off_with_the_hint_and_ignores_stale_rejections() -> None:
    progress = Progress(match_index=0, next_index=11, inflights=Inflights(4, 1000))
    assert progress.maybe_decrease_to(10, 4)
    assert progress.next_index == 5
    assert not progress.maybe_decrease_to(10, 2)  # stale: we no longer probe at 10
    progress.maybe_update(5)
    progress.become_replicate()
    progress.sent_entries(8, 30)
    assert progress.next_index == 9 and progress.state == ProgressState.REPLICATE
    assert not progress.maybe_decrease_to(4, 0)
    assert progress.maybe_decrease_to(7, 0) and progress.next_index == 6


def test_config_change_records_round_trip_and_refuse_garbage() -> None:
    membership = Membership(frozenset({1, 2}), frozenset({3}))
    record = ConfigChangeRecord(ConfigChange(ConfigChangeKind.ADD_LEARNER, 3), membership)
    assert decode_config_change_record(encode_config_change_record(record)) == record
    truncated = encode_config_change_record(record)[:-1]
    for garbage in (b"", b"\x01" * 5, truncated, b"\x02" + bytes(21)):
        with pytest.raises(InvalidConfigChange):
            decode_config_change_record(garbage)


def test_single_server_changes_are_validated() -> None:
    membership = Membership(frozenset({1, 2}), frozenset({3}))
    with pytest.raises(InvalidConfigChange):
        membership.apply(ConfigChange(ConfigChangeKind.ADD_LEARNER, 2))
    with pytest.raises(InvalidConfigChange):
        membership.apply(ConfigChange(ConfigChangeKind.PROMOTE_LEARNER, 1))
    with pytest.raises(InvalidConfigChange):
        Membership(frozenset({1})).apply(ConfigChange(ConfigChangeKind.REMOVE_NODE, 1))
    promoted = membership.apply(ConfigChange(ConfigChangeKind.PROMOTE_LEARNER, 3))
    assert promoted == Membership(frozenset({1, 2, 3}))


def test_bootstrap_storage_holds_the_initial_membership() -> None:
    storage = MemoryStorage.bootstrap(Membership(frozenset({1, 2, 3})))
    hard_state, metadata = storage.initial_state()
    assert hard_state.term == 0 and metadata.index == 0
    assert metadata.membership.voters == {1, 2, 3}
