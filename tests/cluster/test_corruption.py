"""Disk corruption on one node of three: detected by CRC, cut, repaired from the others.

Real processes, real files, a real client: produce with acks=all, SIGKILL a follower,
flip a bit in the middle of one of its segment files and truncate another, restart it.
It must log what it found, catch up from the leader (its files end byte-identical to a
healthy replica's), and every acknowledged record must read back through it once it
leads, and nothing corrupt.
"""

from __future__ import annotations

import pathlib
import random
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from jepsen_like.disk_damage import Damage, batch_spans, flip_bit, segment_files, truncate
from raftlog.testing import LocalCluster, LocalNode

pytestmark = [pytest.mark.clients, pytest.mark.slow]

TOPIC = "damaged"
RECORDS = 1500
SEGMENT_BYTES = "40000"


def _create_topic(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(TOPIC, num_partitions=1, replication_factor=3)], operation_timeout=20
    )
    futures[TOPIC].result(timeout=30)


def _leader(bootstrap: str, timeout_s: float = 30) -> int:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + timeout_s
    while True:
        leader = admin.list_topics(TOPIC, timeout=10).topics[TOPIC].partitions[0].leader
        if leader > 0 or time.monotonic() > deadline:
            return leader
        time.sleep(0.2)


def _produce(bootstrap: str) -> list[bytes]:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 2,
            "batch.num.messages": 20,
        }
    )
    acknowledged: list[bytes] = []

    def delivered(error: KafkaError | None, message: object) -> None:
        assert error is None, error
        acknowledged.append(message.value())  # type: ignore[attr-defined]

    for index in range(RECORDS):
        producer.produce(TOPIC, f"record-{index:06d}-".encode() + b"x" * 80, on_delivery=delivered)
        producer.poll(0)
    assert producer.flush(60) == 0
    return acknowledged


def _read_all(address: str, expected: int, timeout_s: float = 40) -> list[bytes]:
    consumer = Consumer(
        {
            "bootstrap.servers": address,
            "group.id": "unused",
            "enable.auto.commit": False,
            "check.crcs": True,
        }
    )
    consumer.assign([TopicPartition(TOPIC, 0, 0)])
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


def _topic_files(node: LocalNode) -> list[pathlib.Path]:
    """The topic's segment files (the largest ones: the offsets partitions hold a NOOP)."""
    return [path for path in segment_files(node.data_dir) if path.stat().st_size > 4096]


def _group_bytes(node: LocalNode) -> dict[str, bytes]:
    """Every group's data files, concatenated, keyed by group directory name."""
    groups: dict[str, bytes] = {}
    for path in segment_files(node.data_dir):
        name = path.parent.parent.name
        groups[name] = groups.get(name, b"") + path.read_bytes()
    return groups


def _wait_identical(victim: LocalNode, healthy: LocalNode, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        mine, theirs = _group_bytes(victim), _group_bytes(healthy)
        if mine == theirs:
            return
        if time.monotonic() > deadline:
            differ = sorted(name for name in theirs if mine.get(name) != theirs[name])
            raise AssertionError(f"groups still differ after {timeout_s} s: {differ}")
        time.sleep(0.5)


def _running_leader(cluster: LocalCluster, victim: LocalNode, timeout_s: float = 30) -> int:
    """The partition's leader as the victim reports it, once that is a running node."""
    deadline = time.monotonic() + timeout_s
    while True:
        leader = _leader(victim.address)
        if leader > 0 and cluster.node(leader).running:
            return leader
        assert time.monotonic() < deadline, "no running leader"
        time.sleep(0.3)


def _damage(victim: LocalNode, rng: random.Random) -> list[Damage]:
    files = _topic_files(victim)
    assert len(files) >= 3, f"expected several sealed segments, got {files}"
    # A flip in the middle of a sealed segment, a flip in the middle of the head (the
    # newest group), and a truncation of another sealed segment.
    middle = files[len(files) // 2]
    head = files[-1]
    other = files[1] if files[1] not in (middle, head) else files[0]
    assert len(batch_spans(middle.read_bytes())) >= 3
    return [
        flip_bit(victim.data_dir, middle, victim.node_id, rng),
        flip_bit(victim.data_dir, head, victim.node_id, rng),
        truncate(victim.data_dir, other, victim.node_id, rng),
    ]


def test_a_corrupted_follower_repairs_from_replicas_and_serves_every_record(
    tmp_path: pathlib.Path,
) -> None:
    rng = random.Random(7)
    arguments = ("--segment-bytes", SEGMENT_BYTES)
    with LocalCluster(tmp_path, nodes=3, extra_arguments=arguments) as cluster:
        _create_topic(cluster.bootstrap)
        acknowledged = _produce(cluster.bootstrap)
        leader = _leader(cluster.bootstrap)
        victim = next(m for m in cluster.members if m.node_id != leader)
        healthy = next(m for m in cluster.members if m.node_id not in (leader, victim.node_id))
        _wait_identical(victim, healthy)  # the victim holds everything before the damage

        victim.kill()
        damage = _damage(victim, rng)
        victim.start()

        log = victim.log_path.read_text()
        assert log.count("event=corruption_detected") >= 2, log[-3000:]
        assert "event=repair_pending" in log
        _wait_identical(victim, healthy)
        assert "event=repair_done" in victim.log_path.read_text()

        # Make the repaired node the leader: kill whoever leads until it does (restarting
        # the node killed before, so that two replicas remain to elect one).
        stopped: LocalNode | None = None
        for _attempt in range(10):
            current = _running_leader(cluster, victim)
            if current == victim.node_id:
                break
            if stopped is not None:
                stopped.start()
                time.sleep(3)  # it catches up before the next kill
            stopped = cluster.node(current)
            stopped.kill()
        assert _running_leader(cluster, victim) == victim.node_id, "the repaired node never led"
        read = _read_all(victim.address, len(acknowledged))
        assert read == acknowledged, f"{len(read)} of {len(acknowledged)}; damage: {damage}"
