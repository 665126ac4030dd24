"""A 3-node cluster of real processes: replication factor 3, failover, rejoin.

The checks read what each node wrote to disk after the cluster stops, so "every
acknowledged record is on every surviving replica" is checked on the files themselves,
not only through a client.
"""

from __future__ import annotations

import pathlib
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from raftlog.protocol.records import RecordBatchView
from raftlog.storage.log import SegmentedLog
from raftlog.testing import LocalCluster

pytestmark = pytest.mark.clients

TOPIC = "replicated"
PARTITIONS = 3


def _create_topic(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(TOPIC, num_partitions=PARTITIONS, replication_factor=3)], operation_timeout=20
    )
    futures[TOPIC].result(timeout=30)


def _leader_of(bootstrap: str, partition: int) -> int:
    """The partition's leader, waiting while metadata says it has none yet (-1)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + 30
    while True:
        metadata = admin.list_topics(TOPIC, timeout=10)
        leader = metadata.topics[TOPIC].partitions[partition].leader
        if leader > 0 or time.monotonic() > deadline:
            return leader
        time.sleep(0.2)


def _read_all(bootstrap: str, expected: int, timeout_s: float = 30) -> list[bytes]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(TOPIC, index, 0) for index in range(PARTITIONS)])
    values: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    while len(values) < expected and time.monotonic() < deadline:
        for message in consumer.consume(1000, 0.5):
            if message.error() is None:
                values.append(message.value())
            elif message.error().code() != KafkaError._PARTITION_EOF:
                raise AssertionError(f"consume error: {message.error()}")
    consumer.close()
    return values


def _values_on_disk(data_dir: pathlib.Path) -> tuple[list[tuple[int, int]], set[bytes]]:
    """(next offset, last entry) per partition group, and every record value stored."""
    ends = []
    values: set[bytes] = set()
    for group in sorted((data_dir / "groups").iterdir(), key=lambda path: int(path.name)):
        log = SegmentedLog.open(group / "log")
        try:
            ends.append((log.next_offset, log.last_entry_index))
            for batch in log.read_entries(log.first_entry_index, 1 << 30, 100_000):
                view = RecordBatchView(memoryview(batch))
                if not view.is_control:
                    values.update(record.value for record in view.records() if record.value)
        finally:
            log.close()
    return ends, values


def test_leader_killed_mid_stream_loses_no_acknowledged_record(tmp_path: pathlib.Path) -> None:
    with LocalCluster(tmp_path, nodes=3) as cluster:
        _create_topic(cluster.bootstrap)
        victim = _leader_of(cluster.bootstrap, 0)
        producer = Producer(
            {
                "bootstrap.servers": cluster.bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 5,
                "message.timeout.ms": 60_000,
            }
        )
        acknowledged: list[bytes] = []
        failed: list[str] = []

        def delivered(error: KafkaError | None, message: object) -> None:
            if error is None:
                acknowledged.append(message.value())  # type: ignore[attr-defined]
            else:
                failed.append(str(error))

        sent = 0
        started = time.monotonic()
        killed_at = None
        while time.monotonic() - started < 8:
            producer.produce(TOPIC, f"value-{sent}".encode(), on_delivery=delivered)
            sent += 1
            producer.poll(0)
            if killed_at is None and time.monotonic() - started > 2:
                cluster.node(victim).kill()
                killed_at = len(acknowledged)
            time.sleep(0.0005)
        assert producer.flush(60) == 0
        assert not failed, failed[:3]
        assert killed_at is not None and len(acknowledged) > killed_at, "produce went on"
        assert len(acknowledged) == sent

        survivors = [member for member in cluster.members if member.node_id != victim]
        for member in survivors:
            read = _read_all(member.address, len(acknowledged))
            assert sorted(read) == sorted(acknowledged), f"through node {member.node_id}"
            assert len(read) == len(set(read)), "no duplicates from the idempotent producer"
        new_leader = _leader_of(survivors[0].address, 0)
        assert new_leader in {member.node_id for member in survivors}

        # The victim comes back on its data dir and catches up.
        returning = cluster.node(victim)
        log_before = returning.log_path.read_text().count("event=leader_changed")
        returning.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            learned = returning.log_path.read_text().count("event=leader_changed") - log_before
            if learned >= PARTITIONS + 1:  # every partition group and the controller
                break
            time.sleep(0.1)
        time.sleep(3)  # appends and heartbeats bring it level with the leaders
        exit_codes = cluster.stop()
    assert all(code == 0 for code in exit_codes.values()), exit_codes

    disks = [_values_on_disk(member.data_dir) for member in cluster.members]
    ends = [ends for ends, _values in disks]
    assert ends[0] == ends[1] == ends[2], "every replica holds the same log"
    for _ends, values in disks:
        assert set(acknowledged) <= values


def test_every_node_reports_one_cluster_and_all_brokers(tmp_path: pathlib.Path) -> None:
    with LocalCluster(tmp_path, nodes=3) as cluster:
        cluster_ids = set()
        for member in cluster.members:
            metadata = AdminClient({"bootstrap.servers": member.address}).list_topics(timeout=10)
            assert sorted(metadata.brokers) == [1, 2, 3]
            assert metadata.controller_id in (1, 2, 3)
            cluster_ids.add(metadata.cluster_id)
        assert len(cluster_ids) == 1


def test_idle_partition_fails_over_after_its_leader_dies(tmp_path: pathlib.Path) -> None:
    """A quiescent group stops heartbeating; losing its leader must still elect a new one."""
    with LocalCluster(tmp_path, nodes=3) as cluster:
        _create_topic(cluster.bootstrap)
        producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
        producer.produce(TOPIC, b"before", partition=0)
        assert producer.flush(30) == 0
        time.sleep(3)  # long enough for the groups to go quiet
        victim = _leader_of(cluster.bootstrap, 0)
        cluster.node(victim).kill()
        started = time.monotonic()
        delivered: list[object] = []
        producer = Producer(
            {"bootstrap.servers": cluster.bootstrap, "acks": "all", "message.timeout.ms": 30_000}
        )
        producer.produce(
            TOPIC, b"after", partition=0, on_delivery=lambda error, _m: delivered.append(error)
        )
        assert producer.flush(40) == 0
        assert delivered == [None]
        failover_s = time.monotonic() - started
        assert failover_s < 20, f"failover took {failover_s:.1f} s"
        survivor = next(member for member in cluster.members if member.node_id != victim)
        assert sorted(_read_all(survivor.address, 2)) == [b"after", b"before"]
