"""Placement of new segment replicas by load (`raftlog.controller.placement`)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raftlog.controller.metadata import MetadataState
from raftlog.controller.placement import (
    PlacementError,
    live_candidates,
    place_replicas,
    replica_load,
)


def test_the_least_loaded_nodes_are_chosen_and_the_least_loaded_leads() -> None:
    load = {1: 5, 2: 1, 3: 3, 4: 1}
    assert place_replicas([1, 2, 3, 4], load, 3, 1) == [[2, 4, 3]]


def test_ties_are_broken_by_node_id_and_choices_count_towards_the_next() -> None:
    assignments = place_replicas([3, 1, 2, 4], {}, 2, 4)
    # Leadership alternates within a set chosen twice.
    assert assignments == [[1, 2], [3, 4], [2, 1], [4, 3]]


def test_a_loaded_node_is_left_out() -> None:
    assert place_replicas([1, 2, 3, 4], {1: 40, 2: 37, 3: 37, 4: 37}, 3, 1) == [[2, 3, 4]]


def test_too_few_nodes_is_refused() -> None:
    with pytest.raises(PlacementError, match="replication factor 3"):
        place_replicas([1, 2], {}, 3, 1)
    with pytest.raises(PlacementError, match="partitions"):
        place_replicas([1, 2], {}, 1, 0)


def test_unreachable_nodes_are_avoided_unless_too_few_remain() -> None:
    assert live_candidates([1, 2, 3, 4], {3}, 3) == [1, 2, 4]
    assert live_candidates([1, 2, 3], {3}, 3) == [1, 2, 3]


def test_load_counts_every_segment_replica_and_prepared_successors() -> None:
    state = MetadataState()
    for node in (1, 2, 3, 4):
        state.apply(
            {
                "type": "register_node",
                "node_id": node,
                "kafka_host": "h",
                "kafka_port": node,
                "internal_host": "h",
                "internal_port": node,
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
    head = state.topics["t"].partitions[0].head.group_id
    state.apply(
        {
            "type": "seal_and_link",
            "group_id": head,
            "last_offset": 9,
            "next_replicas": [2, 3, 1],
            "base_term": 1,
        }
    )
    assert replica_load(state) == {1: 2, 2: 2, 3: 2, 4: 0}
    new_head = state.topics["t"].partitions[0].head.group_id
    state.apply(
        {
            "type": "prepare_successor",
            "group_id": new_head,
            "base_offset": 500,
            "replicas": [4, 1, 2],
            "base_term": 2,
        }
    )
    assert replica_load(state) == {1: 3, 2: 3, 3: 2, 4: 1}


@given(
    st.dictionaries(st.integers(1, 9), st.integers(0, 50), min_size=3, max_size=9),
    st.integers(1, 3),
    st.integers(1, 30),
)
def test_every_set_is_distinct_and_load_stays_level(
    load: dict[int, int], factor: int, partitions: int
) -> None:
    assignments = place_replicas(load, load, factor, partitions)
    assert len(assignments) == partitions
    after = dict(load)
    for replicas in assignments:
        assert len(replicas) == factor == len(set(replicas))
        for node in replicas:
            after[node] += 1
    # A node chosen is never more loaded (before the choice) than one passed over.
    if min(load.values()) == max(load.values()):
        assert max(after.values()) - min(after.values()) <= 1
