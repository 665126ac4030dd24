"""Open one replica of a group from its directory: log, hard state, core and shell."""

from __future__ import annotations

import logging
import pathlib
import random
from collections.abc import Callable, Sequence

from raftlog import bugs, logs
from raftlog.config import FsyncPolicy
from raftlog.raft.bootstrap import fresh_group_hard_state
from raftlog.raft.config import RaftConfig
from raftlog.raft.entry import Entry, HardState
from raftlog.raft.membership import Membership
from raftlog.raft.messages import Message
from raftlog.raft.node import RawNode
from raftlog.replica.ack_mark import AckMark
from raftlog.replica.group import ReplicaGroup
from raftlog.replica.hard_state import HardStateFile
from raftlog.replica.raft_storage import SegmentGroupLog
from raftlog.storage import files
from raftlog.storage.config import LogConfig
from raftlog.storage.errors import CorruptBatchError, StorageError
from raftlog.storage.log import SegmentedLog
from raftlog.storage.values import AppendResult

REOPEN_ATTEMPTS_MAX = 8
"""Reopens of a group whose start-up read found corrupt data (each cuts the log shorter)."""


def repair_floor(storage: SegmentGroupLog) -> tuple[int, int]:
    """(floor, floor term) the core must respect, or (0, 0).

    Three sources: the floor storage recorded when it cut corrupt data; the hard state's
    commit index above the log's end (this replica knew those entries committed, so it
    must have held them); and the acknowledgement mark above the log's end (it held them
    durably, see `raftlog.replica.ack_mark`). The last two catch a loss that looks like a
    torn tail (a file truncated at a batch boundary). The term bound is the hard state's
    term, which no entry exceeds, or the mark's exact term when the mark sets the floor.
    """
    log = storage.log
    state = storage.hard_state_file.load()
    floor = max(log.repair_floor, state.commit if state.commit > log.last_entry_index else 0)
    floor_term = state.term
    mark = None if storage.ack_mark is None else storage.ack_mark.load()
    if mark is not None and mark[0] > log.last_entry_index and mark[0] >= floor:
        # Entries up to the mark were durable, and may have been acknowledged: the log
        # lost them to disk damage (a torn tail never reaches below the mark). The mark
        # names the exact last entry, so votes compare against what this replica held.
        floor, floor_term = mark
    if floor <= log.last_entry_index:
        log.clear_repair_floor_if_durable()
        return 0, 0
    log.note_repair_floor(floor)
    return floor, floor_term


def _never_acted(directory: pathlib.Path) -> bool:
    """No hard state and no log data: this replica has never voted, led or appended."""
    if (directory / "hardstate").exists():
        return False
    data_files = (directory / "log").glob("*" + files.DATA_SUFFIX)
    return all(path.stat().st_size == 0 for path in data_files)


def _report(group_id: int, log: SegmentedLog, floor: int) -> None:
    for finding in log.corruption_found:
        logs.event("corruption_detected", logging.ERROR, group=group_id, finding=finding)
    log.corruption_found.clear()
    if floor:
        logs.event(
            "repair_pending",
            logging.WARNING,
            group=group_id,
            last_entry=log.last_entry_index,
            repair_floor=floor,
            note="catching up from the leader; this replica does not campaign until then",
        )


def open_replica_group(
    directory: pathlib.Path,
    *,
    group_id: int,
    node_id: int,
    voters: Sequence[int],
    learners: Sequence[int] = (),
    apply: Callable[[Sequence[Entry]], None],
    send: Callable[[Message], None],
    fsync: FsyncPolicy = FsyncPolicy.ALWAYS,
    log_config: LogConfig | None = None,
    base_offset: int = 0,
    base_term: int = 0,
    on_append: Callable[[Entry, AppendResult], None] | None = None,
    on_truncate: Callable[[int], None] | None = None,
    bootstrap: bool = False,
    broadcast_commit: bool = True,
) -> tuple[ReplicaGroup, SegmentGroupLog]:
    """Recover (or create) the replica in `directory`; the caller runs `group.run()`.

    `bootstrap`: the group is being created now (its creation command was just applied)
    with `voters` as its initial membership. A voter whose directory holds no state yet
    then persists `fresh_group_hard_state(voters[0], base_term)` before the group can
    handle a message, and `voters[0]` starts as leader without an election
    (`raftlog.raft.bootstrap`). Every replica of a new group must be opened this way or
    none: a voter left at an earlier term could win the first term a second time.

    `broadcast_commit`: see `RaftConfig.broadcast_commit`.
    """
    files.make_directories([directory])
    hard_state = HardStateFile(directory / "hardstate")
    lead = False
    if _never_acted(directory):
        if bootstrap and node_id in voters:
            hard_state.save(fresh_group_hard_state(voters[0], base_term))
            lead = voters[0] == node_id
        elif base_term:
            # A segment's successor continues its terms, so Kafka leader epochs (our
            # terms) only ever grow along a partition.
            hard_state.save(HardState(term=base_term))
    membership = Membership(frozenset(voters), frozenset(learners))
    for _attempt in range(REOPEN_ATTEMPTS_MAX):
        log = SegmentedLog.open(directory / "log", log_config, initial_offset=base_offset)
        storage = SegmentGroupLog(
            log,
            hard_state,
            membership,
            on_append=on_append,
            on_truncate=on_truncate,
            ack_mark=AckMark(directory / "ackmark") if fsync is FsyncPolicy.ALWAYS else None,
        )
        floor, floor_term = repair_floor(storage)
        # The election timeout is randomized per node so that replicas do not campaign in step.
        config = RaftConfig(
            node_id=node_id,
            random_source=random.Random(),
            repair_floor=floor,
            repair_floor_term=floor_term,
            lead_fresh_group=lead,
            broadcast_commit=broadcast_commit,
            test_bug=bugs.raft_test_bug(),  # DELIBERATE BUG when the chaos suite asks for one
        )
        try:
            # The core reads (and so CRC-checks) the whole stable log as it starts.
            raw = RawNode(config, storage)
        except CorruptBatchError:
            # The read marked the bad entry; reopening cuts the log there.
            _report(group_id, log, floor)
            log.close()
            continue
        _report(group_id, log, floor)
        break
    else:
        raise StorageError(
            f"{directory}: still corrupt after {REOPEN_ATTEMPTS_MAX} repairing reopens"
        )
    group = ReplicaGroup(group_id, raw, storage, apply, send, fsync)
    return group, storage
