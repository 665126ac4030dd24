"""A node dies for good: its segment replicas are re-created on a spare node.

Four nodes, a topic with replication factor 3 on nodes 1-3, segments small enough that
the partition is a chain of several sealed segments plus the head. Node 3 is killed and
stays dead past `--node-dead-timeout-ms`: the controller moves each of its replicas to
node 4, whose copy (caught up as a learner, then promoted) must be byte-identical to node
1's. Then node 2 dies as well: the head's group is {1, 2, 4}, so it only keeps a quorum,
and keeps taking acknowledged writes, because node 4 really became a voter.
"""

from __future__ import annotations

import pathlib
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from raftlog.kafka.admin_client import KafkaAdminConnection
from raftlog.protocol.messages.generated.find_coordinator_request import FindCoordinatorRequest
from raftlog.protocol.messages.generated.find_coordinator_response import FindCoordinatorResponse
from raftlog.protocol.messages.generated.metadata_request import MetadataRequest
from raftlog.protocol.messages.generated.metadata_response import MetadataResponse
from raftlog.testing import LocalCluster

pytestmark = pytest.mark.clients

TOPIC = "moved"


def _produce(bootstrap: str, start: int, count: int) -> None:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 2,
            "message.timeout.ms": 60_000,
        }
    )
    failures: list[str] = []
    for index in range(start, start + count):
        producer.produce(
            TOPIC,
            f"record-{index:06d}".encode() * 8,
            on_delivery=lambda error, _m: failures.append(str(error)) if error else None,
        )
        producer.poll(0)
    assert producer.flush(90) == 0
    assert failures == []


def _read_all(bootstrap: str, expected: int) -> list[bytes]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(TOPIC, 0, 0)])
    values: list[bytes] = []
    deadline = time.monotonic() + 60
    while len(values) < expected and time.monotonic() < deadline:
        for message in consumer.consume(1000, 0.5):
            if message.error() is None:
                values.append(message.value())
            elif message.error().code() != KafkaError._PARTITION_EOF:
                raise AssertionError(message.error())
    consumer.close()
    return values


def _replicas(bootstrap: str) -> list[int]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    metadata = admin.list_topics(TOPIC, timeout=10)
    return sorted(metadata.topics[TOPIC].partitions[0].replicas)


def _segment_files(node_dir: pathlib.Path) -> dict[str, bytes]:
    """Each hosted group's data files, keyed by group and file name."""
    found: dict[str, bytes] = {}
    for path in sorted((node_dir / "groups").glob("*/log/*.log")):
        found[f"{path.parent.parent.name}/{path.name}"] = path.read_bytes()
    return found


def _wait_for(predicate: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_dead_node_replicas_move_to_spare(tmp_path: pathlib.Path) -> None:
    arguments = ["--segment-bytes", "150000", "--node-dead-timeout-ms", "3000"]
    with LocalCluster(tmp_path, nodes=4, extra_arguments=arguments) as cluster:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin.create_topics([NewTopic(TOPIC, 1, 3)])[TOPIC].result(30)
        _wait_for(lambda: _replicas(cluster.bootstrap) == [1, 2, 3], 30, "the topic")
        _produce(cluster.bootstrap, 0, 3000)

        cluster.node(3).kill()
        survivors = f"{cluster.node(1).address},{cluster.node(4).address}"
        _wait_for(lambda: _replicas(survivors) == [1, 2, 4], 60, "node 3's replicas to move")
        logs = [cluster.node(n).log_path for n in (1, 2, 4)]
        _wait_for(
            lambda: any(b"change=remove_node" in log.read_bytes() for log in logs),
            60,
            "node 4 to be promoted and node 3 removed",
        )
        _produce(survivors, 3000, 500)

        # Every segment on node 1 is on node 4 too, byte for byte.
        def copies_match() -> bool:
            return _segment_files(cluster.node(1).data_dir) == _segment_files(
                cluster.node(4).data_dir
            )

        _wait_for(copies_match, 30, "node 4's copy to match node 1's")
        assert len(_segment_files(cluster.node(4).data_dir)) >= 3, "several segments moved"

        cluster.node(2).kill()
        time.sleep(2)  # let the removal of node 3 commit everywhere it is going to
        _produce(survivors, 3500, 200)
        values = _read_all(survivors, 3700)
        assert values == [f"record-{index:06d}".encode() * 8 for index in range(3700)]
        assert b"Traceback" not in cluster.node(4).log_path.read_bytes()


def test_a_node_without_a_replica_names_the_leader(tmp_path: pathlib.Path) -> None:
    """Metadata and FindCoordinator asked of a node that hosts no copy of the partition."""
    with LocalCluster(tmp_path, nodes=4) as cluster:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin.create_topics([NewTopic(TOPIC, 1, 3)])[TOPIC].result(30)
        outsider = cluster.node(4).address
        assert _replicas(cluster.bootstrap) == [1, 2, 3]
        with KafkaAdminConnection(outsider) as connection:

            def leaders() -> dict[str, list[int]]:
                metadata = connection.request(MetadataRequest(topics=None), 12)
                assert isinstance(metadata, MetadataResponse)
                return {
                    topic.name: [partition.leader_id for partition in topic.partitions]
                    for topic in metadata.topics
                }

            # A new partition has no leader for a moment (LEADER_NOT_AVAILABLE, clients retry).
            _wait_for(lambda: leaders()[TOPIC][0] in (1, 2, 3), 15, "a leader")
            _wait_for(
                lambda: all(leader > 0 for leader in leaders()["__consumer_offsets"]),
                15,
                "leaders of every __consumer_offsets partition",
            )
            found = connection.request(
                FindCoordinatorRequest(key_type=0, coordinator_keys=["any-group"]), 4
            )
            assert isinstance(found, FindCoordinatorResponse)
            assert found.coordinators[0].error_code == 0
            assert found.coordinators[0].node_id in (1, 2, 3, 4)
        _produce(outsider, 0, 100)
        assert len(_read_all(outsider, 100)) == 100


def test_a_node_back_from_a_long_absence_catches_up(tmp_path: pathlib.Path) -> None:
    """Segments sealed and created while a node was down reach it when it returns."""
    with LocalCluster(tmp_path, nodes=3, extra_arguments=["--segment-bytes", "150000"]) as cluster:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin.create_topics([NewTopic(TOPIC, 1, 3)])[TOPIC].result(30)
        _produce(cluster.bootstrap, 0, 500)
        cluster.node(3).kill()
        survivors = f"{cluster.node(1).address},{cluster.node(2).address}"
        _produce(survivors, 500, 3000)  # several seals and new segments without node 3
        cluster.node(3).start()

        def caught_up() -> bool:
            ours = _segment_files(cluster.node(3).data_dir)
            return len(ours) >= 4 and ours == _segment_files(cluster.node(1).data_dir)

        _wait_for(caught_up, 60, "node 3 to hold every segment node 1 holds")
        values = _read_all(cluster.node(3).address, 3500)
        assert values == [f"record-{index:06d}".encode() * 8 for index in range(3500)]
