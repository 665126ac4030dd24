"""DeleteGroups and OffsetDelete: tombstones committed by Raft, gone after a restart too."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

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
