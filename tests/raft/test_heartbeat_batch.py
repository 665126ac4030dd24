"""Heartbeats of many groups between two nodes travel as one message and fan back out."""

from __future__ import annotations

import pytest

from raftlog.raft.codec import decode, encode
from raftlog.raft.heartbeat_batch import (
    HeartbeatBatch,
    HeartbeatResponseBatch,
    coalesce_heartbeats,
    fan_out,
)
from raftlog.raft.messages import AppendEntries, Heartbeat, HeartbeatResponse, Message
from raftlog.raft.ready import Role
from raftlog.sim.cluster import ClusterOptions, SimCluster

GROUPS = (101, 102, 103, 104)


def _groups() -> dict[int, SimCluster]:
    """Four groups hosted on the same three nodes, each led by node 1."""
    groups = {}
    for group_id in GROUPS:
        cluster = SimCluster.create(group_id, ClusterOptions(voter_count=3, spare_count=0))
        cluster.campaign(1)
        cluster.flush()
        assert cluster.raw(1).role == Role.LEADER
        groups[group_id] = cluster
    return groups


def _outgoing(groups: dict[int, SimCluster], node_id: int) -> list[tuple[int, Message]]:
    """What node ``node_id`` sends this round, over all its groups, as (group, message)."""
    outgoing = []
    for group_id, cluster in groups.items():
        raw = cluster.raw(node_id)
        if raw.has_ready():
            ready = raw.ready()
            cluster._persist(cluster.nodes[node_id], ready)
            cluster._apply(cluster.nodes[node_id], ready)
            raw.advance(ready)
            outgoing += [(group_id, message) for message in ready.messages]
    return outgoing


def test_one_message_per_peer_carries_every_groups_heartbeat() -> None:
    groups = _groups()
    for cluster in groups.values():
        cluster.tick(1)
    batches, rest = coalesce_heartbeats(_outgoing(groups, 1))
    assert rest == []
    assert sorted((batch.from_id, batch.to_id) for batch in batches) == [(1, 2), (1, 3)]
    for batch in batches:
        assert isinstance(batch, HeartbeatBatch)
        assert [item.group_id for item in batch.heartbeats] == list(GROUPS)
        received = decode(encode(batch))
        assert received == batch
        for group_id, message in fan_out(received):  # type: ignore[arg-type]
            assert isinstance(message, Heartbeat)
            groups[group_id].raw(message.to_id).step(message)
    answers, rest = coalesce_heartbeats(_outgoing(groups, 2))
    assert rest == []
    assert len(answers) == 1 and isinstance(answers[0], HeartbeatResponseBatch)
    for group_id, message in fan_out(answers[0]):
        assert isinstance(message, HeartbeatResponse)
        groups[group_id].raw(1).step(message)
    for cluster in groups.values():
        cluster.check()


def test_other_messages_pass_through_in_order_and_batches_are_bounded() -> None:
    groups = _groups()
    for cluster in groups.values():
        cluster.tick(1)
        cluster.raw(1).propose(b"x")
    batches, rest = coalesce_heartbeats(_outgoing(groups, 1), max_heartbeats_per_batch=3)
    assert [len(batch.heartbeats) for batch in batches] == [3, 1, 3, 1]  # type: ignore[union-attr]
    assert rest and all(isinstance(message, AppendEntries) for _, message in rest)
    assert [group for group, _ in rest] == sorted(group for group, _ in rest)
    with pytest.raises(ValueError):
        coalesce_heartbeats([], max_heartbeats_per_batch=0)
