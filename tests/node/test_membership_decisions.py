"""The pure decisions behind re-replication: liveness, placement, and the Raft steps."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raftlog.controller.metadata import MetadataError, MetadataState
from raftlog.node.membership import (
    Liveness,
    choose_replacement,
    controller_target,
    next_change,
)
from raftlog.raft.membership import ConfigChangeKind, Membership
from raftlog.raft.progress import ProgressState
from raftlog.raft.statistics import PeerProgress


def _progress(matches: dict[int, int]) -> list[PeerProgress]:
    return [
        PeerProgress(node, match, match + 1, ProgressState.REPLICATE, False, True, 0, 0)
        for node, match in matches.items()
    ]


def test_liveness_declares_dead_only_after_the_whole_timeout() -> None:
    liveness = Liveness(dead_after_s=5.0)
    liveness.watch(2, 0.0)
    liveness.watch(3, 0.0)
    liveness.answered(2, 4.0)
    assert liveness.dead(4.9) == []
    assert liveness.dead(5.0) == [3]
    assert liveness.alive(5.0) == [2]
    liveness.watch(3, 100.0)  # watching again does not reset the clock
    assert liveness.dead(9.0) == [2, 3]


def test_replacement_is_the_least_loaded_node_not_holding_a_replica() -> None:
    load = {1: 5, 2: 5, 4: 7, 5: 2}
    assert choose_replacement([1, 2, 3], [1, 2, 4, 5], load) == 5
    assert choose_replacement([1, 2, 3], [1, 2], load) is None
    assert choose_replacement([1, 2, 3], [4, 6], {4: 1, 6: 1}) == 4  # ties: lowest id


def test_a_replacement_walks_add_catch_up_promote_remove() -> None:
    membership = Membership({1, 2, 3})
    change = next_change([1, 2, 4], membership, _progress({2: 10, 3: 0}), 10)
    assert change is not None and change.kind == ConfigChangeKind.ADD_LEARNER
    membership = membership.apply(change)
    lagging = _progress({2: 10, 3: 0, 4: 5})
    assert next_change([1, 2, 4], membership, lagging, 10) is None  # never remove first
    caught_up = _progress({2: 10, 3: 0, 4: 10})
    change = next_change([1, 2, 4], membership, caught_up, 10)
    assert change is not None and change.kind == ConfigChangeKind.PROMOTE_LEARNER
    membership = membership.apply(change)
    change = next_change([1, 2, 4], membership, caught_up, 10)
    assert change is not None and (change.kind, change.node_id) == (ConfigChangeKind.REMOVE_NODE, 3)
    membership = membership.apply(change)
    assert membership == Membership({1, 2, 4})
    assert next_change([1, 2, 4], membership, caught_up, 10) is None


@given(
    start=st.frozensets(st.integers(1, 7), min_size=1, max_size=5),
    target=st.frozensets(st.integers(1, 7), min_size=1, max_size=5),
)
def test_next_change_reaches_any_target_keeping_a_voter(
    start: frozenset[int], target: frozenset[int]
) -> None:
    """Every step is a valid single-server change; the group ends at the target."""
    membership = Membership(start)
    for _ in range(4 * 7):
        everyone_caught_up = _progress({node: 10 for node in membership.members()})
        change = next_change(target, membership, everyone_caught_up, 10)
        if change is None:
            break
        membership = membership.apply(change)  # raises if the change is not valid
        assert membership.voters
    assert membership == Membership(target)


def test_controller_promotes_a_live_learner_for_a_dead_voter() -> None:
    membership = Membership({1, 2, 3}, {4, 5})
    every = [1, 2, 3, 4, 5]
    assert controller_target(membership, [], 3, every) == ({1, 2, 3}, {4, 5})
    assert controller_target(membership, [3], 3, every) == ({1, 2, 4}, {3, 5})
    assert controller_target(membership, [3, 4], 3, every) == ({1, 2, 5}, {3, 4})
    assert controller_target(Membership({1, 2, 3}), [3], 3, [1, 2, 3]) == ({1, 2}, {3})


def test_a_replaced_controller_voter_is_let_back_in_as_a_learner() -> None:
    """After the removal half of a demotion, the replaced node is no member at all: only
    the registered nodes remind the target that it must come back as a learner."""
    after_removal = Membership({1, 2, 4}, {5})
    voters, learners = controller_target(after_removal, [3], 3, registered=[1, 2, 3, 4, 5])
    assert (voters, learners) == ({1, 2, 4}, {3, 5})
    change = next_change(voters, after_removal, _progress({}), 0, learners)
    assert change is not None and (change.kind, change.node_id) == (ConfigChangeKind.ADD_LEARNER, 3)


def test_a_forgotten_node_leaves_the_controller_group() -> None:
    """A decommissioned node the registry dropped is no learner any more, and a
    decommissioned voter is replaced like a dead one while a spare is registered."""
    membership = Membership({1, 2, 3}, {4, 5})
    assert controller_target(membership, [], 3, [1, 2, 3, 4]) == ({1, 2, 3}, {4})
    change = next_change({1, 2, 3}, membership, _progress({}), 0, {4})
    assert change is not None and (change.kind, change.node_id) == (ConfigChangeKind.REMOVE_NODE, 5)
    # Node 3 decommissioned: a registered spare (4) takes its vote, 5 (forgotten) is not used.
    assert controller_target(membership, [3], 3, [1, 2, 3, 4]) == ({1, 2, 4}, {3})


def test_next_change_demotes_a_voter_to_learner() -> None:
    membership = Membership({1, 2, 3, 4})
    change = next_change([1, 2, 4], membership, _progress({}), 0, learners=[3])
    assert change is not None and (change.kind, change.node_id) == (ConfigChangeKind.REMOVE_NODE, 3)
    membership = membership.apply(change)
    change = next_change([1, 2, 4], membership, _progress({}), 0, learners=[3])
    assert change is not None and (change.kind, change.node_id) == (ConfigChangeKind.ADD_LEARNER, 3)
    assert membership.apply(change) == Membership({1, 2, 4}, {3})


def _state_with_topic() -> MetadataState:
    state = MetadataState()
    for node in (1, 2, 3, 4):
        state.apply(
            {
                "type": "register_node",
                "node_id": node,
                "kafka_host": "h",
                "kafka_port": 1,
                "internal_host": "h",
                "internal_port": 2,
            }
        )
    state.apply(
        {
            "type": "create_topic",
            "name": "t",
            "topic_id": "0" * 32,
            "partitions": 1,
            "replication_factor": 3,
            "assignments": [[1, 2, 3]],
        }
    )
    return state


def test_replace_replica_keeps_the_bootstrap_membership() -> None:
    state = _state_with_topic()
    group_id = state.topics["t"].partitions[0].head.group_id
    moved = state.apply({"type": "replace_replica", "group_id": group_id, "dead": 2, "new": 4})
    assert moved.replicas == (1, 4, 3)
    assert moved.initial_replicas == (1, 2, 3)
    again = state.apply({"type": "replace_replica", "group_id": group_id, "dead": 3, "new": 2})
    assert again.replicas == (1, 4, 2)
    assert again.initial_replicas == (1, 2, 3), "the bootstrap never changes"
    for bad in ({"dead": 3, "new": 4}, {"dead": 4, "new": 4}, {"dead": 1, "new": 9}):
        with pytest.raises(MetadataError):
            state.apply({"type": "replace_replica", "group_id": group_id, **bad})
