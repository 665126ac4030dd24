"""Consumer groups when things die: a SIGKILLed member, a killed coordinator node."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import textwrap
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from raftlog.groups.records import OFFSETS_TOPIC, coordinator_partition
from raftlog.testing import LocalCluster

pytestmark = pytest.mark.clients

MEMBER = textwrap.dedent(
    """
    import sys
    from confluent_kafka import Consumer
    consumer = Consumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[2],
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
    consumer.subscribe([sys.argv[3]])
    while True:
        for message in consumer.consume(100, 0.2):
            if message.error() is None:
                print("got", message.partition(), flush=True)
    """
)


def _fill(bootstrap: str, topic: str, count: int, partitions: int = 6) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=partitions)])[topic].result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for index in range(count):
        producer.produce(topic, f"{topic}-{index}".encode(), key=str(index).encode())
    assert producer.flush(30) == 0


def _member(bootstrap: str, group: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
        }
    )


def test_a_killed_member_is_expired_and_its_partitions_reassigned(
    raftlog_node: LocalCluster,
) -> None:
    bootstrap = raftlog_node.bootstrap
    _fill(bootstrap, "work", 600)
    doomed = subprocess.Popen(
        [sys.executable, "-c", MEMBER, bootstrap, "workers", "work"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        survivor = _member(bootstrap, "workers")
        survivor.subscribe(["work"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until the two share the partitions
            survivor.consume(100, 0.2)
            if 0 < len(survivor.assignment()) < 6:
                break
        assert 0 < len(survivor.assignment()) < 6, "the group split the partitions"
    finally:
        doomed.kill()
        doomed.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(survivor.assignment()) < 6:
        survivor.consume(100, 0.2)
    assert len(survivor.assignment()) == 6, "the killed member's session expired"
    survivor.close()


def test_coordinator_failover_keeps_committed_offsets(tmp_path: pathlib.Path) -> None:
    with LocalCluster(tmp_path, nodes=3) as cluster:
        _fill(cluster.bootstrap, "ledger", 900, partitions=3)
        consumer = _member(cluster.bootstrap, "auditors")
        consumer.subscribe(["ledger"])
        consumed = 0
        deadline = time.monotonic() + 30
        while consumed < 900 and time.monotonic() < deadline:
            consumed += len([m for m in consumer.consume(300, 0.2) if m.error() is None])
        consumer.commit(asynchronous=False)
        committed = {
            tp.partition: tp.offset
            for tp in consumer.committed([TopicPartition("ledger", p) for p in range(3)], 10)
        }
        consumer.close()
        assert sum(committed.values()) >= 900

        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        offsets_partition = coordinator_partition("auditors")
        coordinator = -1
        deadline = time.monotonic() + 30
        while coordinator < 1 and time.monotonic() < deadline:  # -1: no leader yet
            metadata = admin.list_topics(OFFSETS_TOPIC, timeout=10)
            coordinator = metadata.topics[OFFSETS_TOPIC].partitions[offsets_partition].leader
            time.sleep(0.1)
        cluster.node(coordinator).kill()

        survivors = ",".join(m.address for m in cluster.members if m.node_id != coordinator)
        again = _member(survivors, "auditors")
        deadline = time.monotonic() + 40
        after: dict[int, int] = {}
        while time.monotonic() < deadline:
            try:
                after = {
                    tp.partition: tp.offset
                    for tp in again.committed([TopicPartition("ledger", p) for p in range(3)], 10)
                }
                break
            except Exception:  # the new coordinator is still being elected
                time.sleep(0.5)
        again.close()
        assert after == committed, "no committed offset went backwards or vanished"
