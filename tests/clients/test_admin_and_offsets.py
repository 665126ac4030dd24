"""Topic administration and offset lookups through the clients' own admin APIs."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.admin import NewTopic as KafkaPythonNewTopic

from raftlog.testing import LocalCluster

pytestmark = pytest.mark.clients


def test_create_list_delete_topics_with_both_admin_clients(raftlog_node: LocalCluster) -> None:
    admin = AdminClient({"bootstrap.servers": raftlog_node.bootstrap})
    futures = admin.create_topics([NewTopic("admin-made", num_partitions=4)], operation_timeout=20)
    futures["admin-made"].result(timeout=30)
    duplicate = admin.create_topics([NewTopic("admin-made", num_partitions=1)])
    with pytest.raises(Exception, match=r"TOPIC_ALREADY_EXISTS|already exists"):
        duplicate["admin-made"].result(timeout=30)
    assert len(admin.list_topics(timeout=10).topics["admin-made"].partitions) == 4

    python_admin = KafkaAdminClient(bootstrap_servers=raftlog_node.bootstrap)
    python_admin.create_topics([KafkaPythonNewTopic("py-made", 2, 1)])
    assert {"admin-made", "py-made"} <= set(python_admin.list_topics())
    python_admin.delete_topics(["py-made"])
    admin.delete_topics(["admin-made"], operation_timeout=20)["admin-made"].result(timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        remaining = set(admin.list_topics(timeout=10).topics) & {"admin-made", "py-made"}
        if not remaining:
            break
        time.sleep(0.2)
    assert not remaining
    python_admin.close()


def test_list_offsets_earliest_latest_and_by_time(raftlog_node: LocalCluster) -> None:
    producer = Producer({"bootstrap.servers": raftlog_node.bootstrap, "acks": "all"})
    for index in range(10):
        producer.produce("timed", f"early-{index}".encode(), timestamp=1_000_000 + index)
    for index in range(10):
        producer.produce("timed", f"late-{index}".encode(), timestamp=2_000_000 + index)
    assert producer.flush(30) == 0

    consumer = KafkaConsumer(bootstrap_servers=raftlog_node.bootstrap)
    partition = TopicPartition("timed", 0)
    earliest = consumer.beginning_offsets([partition])[partition]
    latest = consumer.end_offsets([partition])[partition]
    assert earliest == 0
    assert latest >= 20
    found = consumer.offsets_for_times({partition: 2_000_000})[partition]
    assert found is not None
    consumer.assign([partition])
    consumer.seek(partition, found.offset)
    read_from_found = []
    for message in consumer:
        read_from_found.append(message)
        if message.value == b"late-9":
            break
    # The lookup answers the batch holding the first record at or after the time, so it may
    # start a batch early but never skips a record at or after the time.
    assert [m.value for m in read_from_found if m.timestamp >= 2_000_000] == [
        f"late-{index}".encode() for index in range(10)
    ]
    assert all(m.timestamp < 2_000_000 for m in read_from_found if m.value.startswith(b"early"))
    assert consumer.offsets_for_times({partition: 9_000_000})[partition] is None
    consumer.close()
