"""Open one replica of a group from its directory: log, hard state, core and shell."""

from __future__ import annotations

import pathlib
import random
from collections.abc import Callable, Sequence

from raftlog import bugs
from raftlog.config import FsyncPolicy
from raftlog.raft.config import RaftConfig
from raftlog.raft.entry import Entry, HardState
from raftlog.raft.membership import Membership
from raftlog.raft.messages import Message
from raftlog.raft.node import RawNode
from raftlog.replica.group import ReplicaGroup
from raftlog.replica.hard_state import HardStateFile
from raftlog.replica.raft_storage import SegmentGroupLog
from raftlog.storage.config import LogConfig
from raftlog.storage.log import SegmentedLog
from raftlog.storage.values import AppendResult


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
) -> tuple[ReplicaGroup, SegmentGroupLog]:
    """Recover (or create) the replica in `directory`; the caller runs `group.run()`."""
    directory.mkdir(parents=True, exist_ok=True)
    hard_state = HardStateFile(directory / "hardstate")
    if base_term and not hard_state.path.exists():
        # A segment's successor continues its terms, so Kafka leader epochs (our terms)
        # only ever grow along a partition.
        hard_state.save(HardState(term=base_term))
    log = SegmentedLog.open(directory / "log", log_config, initial_offset=base_offset)
    storage = SegmentGroupLog(
        log,
        hard_state,
        Membership(frozenset(voters), frozenset(learners)),
        on_append=on_append,
        on_truncate=on_truncate,
    )
    # The election timeout is randomized per node so that replicas do not campaign in step.
    config = RaftConfig(
        node_id=node_id,
        random_source=random.Random(),
        test_bug=bugs.raft_test_bug(),  # DELIBERATE BUG when the chaos suite asks for one
    )
    raw = RawNode(config, storage)
    group = ReplicaGroup(group_id, raw, storage, apply, send, fsync)
    return group, storage
