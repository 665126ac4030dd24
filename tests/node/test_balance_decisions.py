"""The balancer's decisions: hand led partitions back to preferred replicas that are
ready, never to anyone else, so leadership converges and does not flap."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from raftlog.node.balance import LAG_ENTRIES_MAX, LedHead, moves, preferred_ready
from raftlog.raft.membership import Membership
from raftlog.raft.progress import ProgressState
from raftlog.raft.ready import Role
from raftlog.raft.statistics import PeerProgress, RaftStatistics


def test_only_other_ready_preferred_replicas_get_leadership_back() -> None:
    heads = [
        LedHead(group_id=7, preferred=2, preferred_ready=True),
        LedHead(group_id=3, preferred=1, preferred_ready=True),  # this node is preferred
        LedHead(group_id=5, preferred=3, preferred_ready=False),  # lagging or cut off
        LedHead(group_id=4, preferred=3, preferred_ready=True),
    ]
    assert moves(1, heads, limit=5) == [(4, 3), (7, 2)]
    assert moves(1, heads, limit=1) == [(4, 3)]
    assert moves(1, []) == []


def _statistics(last_index: int, *peers: PeerProgress, learners: tuple[int, ...] = ()) -> (
    RaftStatistics
):
    voters = {1} | {peer.node_id for peer in peers if peer.node_id not in learners}
    return RaftStatistics(
        node_id=1, term=3, vote=1, role=Role.LEADER, leader_id=1, commit_index=last_index,
        applied_index=last_index, first_index=1, last_index=last_index,
        membership=Membership(voters, learners), seal_index=0, sealed=False,
        quiescent=False, lead_transferee=0, progress=peers,
    )  # fmt: skip


def _peer(node: int, match: int, state: ProgressState = ProgressState.REPLICATE,
          active: bool = True, learner: bool = False) -> PeerProgress:
    return PeerProgress(node, match, match + 1, state, learner, active, 0, 0)


def test_a_preferred_replica_is_ready_when_connected_voting_and_nearly_caught_up() -> None:
    last = 1000
    assert preferred_ready(_statistics(last, _peer(2, last)), 2)
    # Under load a follower trails by the entries in flight: still ready.
    assert preferred_ready(_statistics(last, _peer(2, last - LAG_ENTRIES_MAX)), 2)
    assert not preferred_ready(_statistics(last, _peer(2, last - LAG_ENTRIES_MAX - 1)), 2)
    assert not preferred_ready(_statistics(last, _peer(2, last, active=False)), 2)
    assert not preferred_ready(_statistics(last, _peer(2, last, ProgressState.PROBE)), 2)
    assert not preferred_ready(_statistics(last, _peer(2, last, ProgressState.SNAPSHOT)), 2)
    learner = _statistics(last, _peer(2, last, learner=True), learners=(2,))
    assert not preferred_ready(learner, 2)
    assert not preferred_ready(_statistics(last, _peer(3, last)), 2)  # no progress for 2


placements = st.integers(min_value=2, max_value=5).flatmap(
    lambda nodes: st.tuples(
        st.just(nodes),
        st.lists(
            st.tuples(st.integers(1, nodes), st.integers(1, nodes)), min_size=1, max_size=40
        ),
        st.integers(min_value=1, max_value=6),
    )
)


@given(placements)
def test_leadership_converges_to_preferred_replicas_and_each_group_moves_once(
    case: tuple[int, list[tuple[int, int]], int],
) -> None:
    """Every node runs the decision for the groups it leads, pass after pass: every group
    ends on its preferred replica within ceil(groups / limit) passes, moves at most once,
    and then nothing moves any more (a fixed point: no flapping)."""
    nodes, groups, limit = case
    preferred = {group: first for group, (first, _leader) in enumerate(groups)}
    leader = {group: current for group, (_first, current) in enumerate(groups)}
    moved: dict[int, int] = {}
    for _ in range(math.ceil(len(groups) / limit)):
        planned = []
        for node in range(1, nodes + 1):
            heads = [
                LedHead(group, preferred[group], preferred_ready=True)
                for group, current in leader.items()
                if current == node
            ]
            decided = moves(node, heads, limit)
            assert len(decided) <= limit
            assert all(target != node for _group, target in decided)
            planned.extend(decided)
        for group, target in planned:
            assert target == preferred[group]
            moved[group] = moved.get(group, 0) + 1
            leader[group] = target
    assert leader == preferred
    assert all(count == 1 for count in moved.values())
    for node in range(1, nodes + 1):
        heads = [LedHead(g, preferred[g], True) for g, current in leader.items() if current == node]
        assert moves(node, heads, limit) == []
