"""DeleteGroups, OffsetDelete and DeleteTopics: tombstones committed by Raft, gone after a
restart too."""

from __future__ import annotations

import pathlib
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from raftlog.cli_groups import GroupCommandError, committed_offsets
from raftlog.groups.records import OFFSETS_TOPIC, coordinator_partition
from raftlog.kafka.admin_client import KafkaAdminConnection
from raftlog.protocol.messages.generated.offset_delete_request import (
    OffsetDeleteRequest,
    OffsetDeleteRequestPartition,
    OffsetDeleteRequestTopic,
)
from raftlog.testing import LocalCluster

pytestmark = pytest.mark.clients


def _commit_some(bootstrap: str, group: str, topic: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for index in range(20):
        producer.produce(topic, str(index).encode())
    assert producer.flush(30) == 0
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
         "enable.auto.commit": False}
    )  # fmt: skip
    consumer.assign([TopicPartition(topic, 0, 0)])
    got = 0
    deadline = time.monotonic() + 20
    while got < 20 and time.monotonic() < deadline:
        got += len([m for m in consumer.consume(20, 0.5) if m.error() is None])
    consumer.commit(asynchronous=False)
    consumer.close()


def _committed(bootstrap: str, group: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    offset = consumer.committed([TopicPartition(topic, 0)], timeout=10)[0].offset
    consumer.close()
    return offset


def test_delete_group_and_offsets(raftlog_node: LocalCluster) -> None:
    bootstrap = raftlog_node.bootstrap
    _commit_some(bootstrap, "doomed", "t1")
    _commit_some(bootstrap, "pruned", "t2")
    assert _committed(bootstrap, "doomed", "t1") > 0

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.delete_consumer_groups(["doomed"], request_timeout=10)["doomed"].result(20)
    assert _committed(bootstrap, "doomed", "t1") < 0, "a deleted group has no offsets"
    missing = admin.delete_consumer_groups(["never-was"], request_timeout=10)["never-was"]
    with pytest.raises(Exception, match=r"GROUP_ID_NOT_FOUND|does not exist"):
        missing.result(20)

    metadata = admin.list_topics(OFFSETS_TOPIC, timeout=10)
    leader = metadata.topics[OFFSETS_TOPIC].partitions[coordinator_partition("pruned")].leader
    address = f"{metadata.brokers[leader].host}:{metadata.brokers[leader].port}"
    request = OffsetDeleteRequest(
        group_id="pruned",
        topics=[OffsetDeleteRequestTopic(name="t2", partitions=[OffsetDeleteRequestPartition(0)])],
    )
    with KafkaAdminConnection(address) as connection:
        response = connection.request(request, 0)
    assert response.error_code == 0  # type: ignore[attr-defined]
    assert _committed(bootstrap, "pruned", "t2") < 0

    node = raftlog_node.node(1)
    assert node.stop() == 0
    node.start()
    assert _committed(raftlog_node.bootstrap, "doomed", "t1") < 0, "tombstones survive restart"
    assert _committed(raftlog_node.bootstrap, "pruned", "t2") < 0


@pytest.mark.parametrize("nodes", [1, 3])
def test_deleting_a_topic_deletes_its_committed_offsets(nodes: int, tmp_path: pathlib.Path) -> None:
    with LocalCluster(tmp_path / "cluster", nodes=nodes) as cluster:
        bootstrap = cluster.bootstrap
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for topic in ("gone", "kept"):
            admin.create_topics([NewTopic(topic, num_partitions=1)])[topic].result(30)
            _commit_some(bootstrap, "mixed", topic)
        assert set(committed_offsets(bootstrap, "mixed")) == {("gone", 0), ("kept", 0)}

        admin.delete_topics(["gone"], request_timeout=10)["gone"].result(30)
        deadline = time.monotonic() + 30
        while set(committed_offsets(bootstrap, "mixed")) != {("kept", 0)}:
            assert time.monotonic() < deadline, committed_offsets(bootstrap, "mixed")
            time.sleep(0.2)
        admin.create_topics([NewTopic("gone", num_partitions=1)])["gone"].result(30)
        assert _committed(bootstrap, "mixed", "gone") < 0, "a new topic of the same name"
        assert _committed(bootstrap, "mixed", "kept") > 0

        cluster.stop()  # the tombstones are in __consumer_offsets, not only in memory
        cluster.start()
        deadline = time.monotonic() + 30
        while True:
            try:
                offsets = committed_offsets(cluster.bootstrap, "mixed")
                break
            except GroupCommandError:  # no coordinator elected yet
                assert time.monotonic() < deadline
                time.sleep(0.3)
        assert set(offsets) == {("kept", 0)}
