"""A replica of a new group opened with `bootstrap` on real files: the fresh hard state is
durable before anything runs, the first replica leads at once, and never again on reopen."""

from __future__ import annotations

from pathlib import Path

import pytest

from raftlog.raft.entry import HardState
from raftlog.raft.ready import Role
from raftlog.replica.factory import open_replica_group
from raftlog.replica.group import ReplicaGroup
from raftlog.replica.hard_state import HardStateFile
from raftlog.replica.raft_storage import SegmentGroupLog


def _open(directory: Path, node_id: int, **options: object) -> tuple[ReplicaGroup, SegmentGroupLog]:
    return open_replica_group(
        directory,
        group_id=7,
        node_id=node_id,
        voters=[2, 1, 3],
        apply=lambda entries: None,
        send=lambda message: None,
        **options,  # type: ignore[arg-type]
    )


def _saved(directory: Path) -> HardState:
    return HardStateFile(directory / "hardstate").load()


def test_the_first_replica_leads_the_first_term_at_once(tmp_path: Path) -> None:
    group, storage = _open(tmp_path / "g", node_id=2, bootstrap=True)
    assert (group.raw.role, group.raw.term, group.raw.vote) == (Role.LEADER, 1, 2)
    assert _saved(tmp_path / "g") == HardState(term=1, vote=2)
    ready = group.raw.ready()
    assert [entry.index for entry in ready.entries] == [1]  # its NOOP, sent to 1 and 3
    assert sorted(message.to_id for message in ready.messages) == [1, 3]
    storage.log.close()


@pytest.mark.parametrize("node_id", [1, 3])
def test_the_other_replicas_wait_with_their_vote_given(tmp_path: Path, node_id: int) -> None:
    group, storage = _open(tmp_path / "g", node_id=node_id, bootstrap=True)
    assert (group.raw.role, group.raw.term, group.raw.vote) == (Role.FOLLOWER, 1, 2)
    assert _saved(tmp_path / "g") == HardState(term=1, vote=2)
    assert not group.raw.has_ready()
    storage.log.close()


def test_a_successor_starts_in_the_term_after_its_base(tmp_path: Path) -> None:
    group, storage = _open(tmp_path / "g", node_id=2, bootstrap=True, base_term=5)
    assert (group.raw.role, group.raw.term) == (Role.LEADER, 6)
    storage.log.close()


def test_a_reopened_first_replica_is_a_follower(tmp_path: Path) -> None:
    """On restart it may have led and lost what it sent: it must not lead term 1 again."""
    _group, storage = _open(tmp_path / "g", node_id=2, bootstrap=True)
    storage.log.close()
    again, storage = _open(tmp_path / "g", node_id=2, bootstrap=True)
    assert (again.raw.role, again.raw.term, again.raw.vote) == (Role.FOLLOWER, 1, 2)
    storage.log.close()


def test_without_bootstrap_a_new_replica_starts_at_its_base_term(tmp_path: Path) -> None:
    """A replica added to a running group (re-replication) takes the leader's terms."""
    group, storage = _open(tmp_path / "g", node_id=2, base_term=4)
    assert (group.raw.role, group.raw.term, group.raw.vote) == (Role.FOLLOWER, 4, 0)
    storage.log.close()


def test_a_learner_of_a_new_group_does_not_bootstrap(tmp_path: Path) -> None:
    group, storage = _open(tmp_path / "g", node_id=9, bootstrap=True, learners=[9])
    assert (group.raw.role, group.raw.term, group.raw.vote) == (Role.FOLLOWER, 0, 0)
    assert not (tmp_path / "g" / "hardstate").exists()
    storage.log.close()
