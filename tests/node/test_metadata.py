"""The controller's metadata state machine: commands, their errors, determinism."""

import pytest

from raftlog.controller.metadata import (
    INVALID_PARTITIONS,
    INVALID_REPLICATION_FACTOR,
    INVALID_TOPIC_EXCEPTION,
    TOPIC_ALREADY_EXISTS,
    UNKNOWN_TOPIC_OR_PARTITION,
    MetadataError,
    MetadataState,
    decode_command,
    encode_command,
)


def node(node_id: int) -> dict[str, object]:
    return {
        "type": "register_node",
        "node_id": node_id,
        "kafka_host": "127.0.0.1",
        "kafka_port": 9000 + node_id,
        "internal_host": "127.0.0.1",
        "internal_port": 9100 + node_id,
    }


def create(name: str, assignments: list[list[int]], rf: int = 1) -> dict[str, object]:
    return {
        "type": "create_topic",
        "name": name,
        "topic_id": "0" * 31 + "1",
        "partitions": len(assignments),
        "replication_factor": rf,
        "assignments": assignments,
        "configs": {"cleanup.policy": "delete"},
    }


def state_with_nodes(*ids: int) -> MetadataState:
    state = MetadataState()
    for node_id in ids:
        state.apply(node(node_id))
    return state


def test_create_topic_allocates_one_group_per_partition() -> None:
    state = state_with_nodes(1, 2, 3)
    topic = state.apply(create("events", [[1, 2, 3], [2, 3, 1]], rf=3))
    assert [p.head.group_id for p in topic.partitions] == [1, 2]
    assert topic.partitions[1].head.replicas == (2, 3, 1)
    assert topic.config("cleanup.policy") == "delete"
    assert state.segment_by_group(2)[0].index == 1


@pytest.mark.parametrize(
    ("command", "code"),
    [
        (create("bad name!", [[1]]), INVALID_TOPIC_EXCEPTION),
        (create("..", [[1]]), INVALID_TOPIC_EXCEPTION),
        (create("t", []), INVALID_PARTITIONS),
        (create("t", [[1, 1]], rf=2), INVALID_REPLICATION_FACTOR),
        (create("t", [[9]]), INVALID_REPLICATION_FACTOR),
        ({"type": "delete_topic", "name": "absent"}, UNKNOWN_TOPIC_OR_PARTITION),
    ],
)
def test_bad_commands_fail_with_kafka_codes_and_change_nothing(
    command: dict[str, object], code: int
) -> None:
    state = state_with_nodes(1)
    before = (dict(state.topics), state.next_group_id)
    with pytest.raises(MetadataError) as raised:
        state.apply(command)
    assert raised.value.error_code == code
    assert (dict(state.topics), state.next_group_id) == before


def test_duplicate_topic() -> None:
    state = state_with_nodes(1)
    state.apply(create("t", [[1]]))
    with pytest.raises(MetadataError) as raised:
        state.apply(create("t", [[1]]))
    assert raised.value.error_code == TOPIC_ALREADY_EXISTS


def test_seal_links_next_segment_and_retention_drops_sealed_ones() -> None:
    state = state_with_nodes(1, 2)
    first = state.apply(create("t", [[1]])).partitions[0].head
    second = state.apply(
        {
            "type": "seal_and_link",
            "group_id": first.group_id,
            "last_offset": 99,
            "next_replicas": [2],
        }
    )
    assert second.base_offset == 100
    assert second.replicas == (2,)
    partition = state.topics["t"].partitions[0]
    assert [s.sealed for s in partition.segments] == [True, False]
    with pytest.raises(MetadataError):  # the old head cannot seal twice
        state.apply(
            {
                "type": "seal_and_link",
                "group_id": first.group_id,
                "last_offset": 120,
                "next_replicas": [1],
            }
        )
    dropped = state.apply(
        {"type": "drop_segments", "topic": "t", "partition": 0, "below_offset": 100}
    )
    assert dropped == 1
    assert state.topics["t"].partitions[0].segments == (second,)


def test_replicas_that_apply_the_same_commands_agree() -> None:
    commands = [
        node(1),
        node(2),
        create("a", [[1], [2]]),
        create("b", [[2]]),
        {"type": "delete_topic", "name": "a"},
    ]
    encoded = [encode_command(c) for c in commands]
    one, two = MetadataState(), MetadataState()
    for payload in encoded:
        one.apply(decode_command(payload))
        two.apply(decode_command(payload))
    assert one.topics == two.topics
    assert one.next_group_id == two.next_group_id == 4


def test_unknown_command_is_rejected() -> None:
    with pytest.raises(MetadataError, match="unknown metadata command"):
        MetadataState().apply({"type": "format_disk"})


def test_producer_id_blocks_never_overlap() -> None:
    state = MetadataState()
    first = state.apply({"type": "allocate_producer_ids", "count": 1000})
    second = state.apply({"type": "allocate_producer_ids", "count": 10})
    assert (first, second, state.next_producer_id) == (0, 1000, 1010)
    with pytest.raises(MetadataError):
        state.apply({"type": "allocate_producer_ids", "count": 0})


def test_the_first_cluster_id_wins() -> None:
    state = MetadataState()
    assert state.apply({"type": "init_cluster", "cluster_id": "first"}) == "first"
    assert state.apply({"type": "init_cluster", "cluster_id": "second"}) == "first"
    assert state.cluster_id == "first"


def test_a_decommissioned_node_is_drained_then_forgotten() -> None:
    state = state_with_nodes(1, 2, 3, 4)
    head = state.apply(create("t", [[1, 2, 3]], rf=3)).partitions[0].head
    assert state.apply({"type": "decommission_node", "node_id": 4}) == 4
    with pytest.raises(MetadataError, match="may not receive replicas"):
        state.apply({"type": "replace_replica", "group_id": head.group_id, "dead": 1, "new": 4})
    state.apply({"type": "forget_node", "node_id": 4})  # it held nothing
    state.apply(node(4))
    assert state.apply({"type": "decommission_node", "node_id": 3}) == 3
    assert state.apply({"type": "decommission_node", "node_id": 3}) == 3  # again: no change
    assert state.active_nodes() == [1, 2, 4]
    with pytest.raises(MetadataError, match="not being decommissioned"):
        state.apply({"type": "forget_node", "node_id": 2})
    with pytest.raises(MetadataError, match="still holds 1 replica"):
        state.apply({"type": "forget_node", "node_id": 3})
    state.apply({"type": "replace_replica", "group_id": head.group_id, "dead": 3, "new": 4})
    assert state.replica_count(3) == 0
    state.apply({"type": "forget_node", "node_id": 3})
    assert sorted(state.nodes) == [1, 2, 4] and state.decommissioned == set()


def test_decommissioning_may_not_leave_too_few_nodes() -> None:
    state = state_with_nodes(1, 2, 3)
    state.apply(create("t", [[1, 2, 3]], rf=3))
    with pytest.raises(MetadataError, match="would leave 2 active node"):
        state.apply({"type": "decommission_node", "node_id": 3})
    with pytest.raises(MetadataError, match="no registered node"):
        state.apply({"type": "decommission_node", "node_id": 9})
    assert state.decommissioned == set()
