"""Retention drops whole sealed segments: the log start moves, the files go, the rest reads."""

from __future__ import annotations

import pathlib
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from raftlog.testing import LocalCluster

pytestmark = pytest.mark.clients


def _watermarks(consumer: Consumer, partition: TopicPartition, deadline: float) -> tuple[int, int]:
    """Retrying what a Kafka client retries: the last produce can start a roll of the head
    segment, and until the next head has elected its leader the partition answers
    NOT_LEADER_OR_FOLLOWER (librdkafka's watermark query does not retry by itself).

    While a successor made at the seal (not prepared ahead) is still opening, Metadata
    names no leader for the partition (LEADER_NOT_AVAILABLE, as Kafka's brokers do during
    an election). librdkafka caches that answer and its watermark query then gives up at
    once with its local _UNKNOWN_PARTITION, not marked retriable, without asking for
    Metadata again: the application refreshes it, as it would against Kafka."""
    while True:
        try:
            low, high = consumer.get_watermark_offsets(partition, timeout=10)
            return low, high
        except KafkaException as error:
            code = error.args[0]
            leaderless = code.code() == KafkaError._UNKNOWN_PARTITION
            if not (code.retriable() or leaderless) or time.monotonic() > deadline:
                raise
            if leaderless:
                consumer.list_topics(partition.topic, timeout=10)
            time.sleep(0.1)


def test_retention_by_bytes_drops_the_oldest_sealed_segments(tmp_path: pathlib.Path) -> None:
    arguments = (
        "--auto-create-topics", "true", "--segment-bytes", "100000",
        "--retention-bytes", "300000", "--retention-check-ms", "300",
    )  # fmt: skip
    with LocalCluster(tmp_path, nodes=1, extra_arguments=arguments) as cluster:
        # Idempotent, so retries at a seal cannot reorder records (Kafka allows reordering
        # for a non-idempotent producer with several requests in flight).
        producer = Producer(
            {"bootstrap.servers": cluster.bootstrap, "acks": "all", "batch.size": 16384,
             "linger.ms": 2, "enable.idempotence": True}
        )  # fmt: skip
        values = [f"retained-{index:06d}".encode() * 10 for index in range(12_000)]
        for value in values:
            producer.produce("shrinking", value)
            producer.poll(0)
        assert producer.flush(60) == 0
        consumer = Consumer(
            {"bootstrap.servers": cluster.bootstrap, "group.id": "unused",
             "auto.offset.reset": "error"}
        )  # fmt: skip
        partition = TopicPartition("shrinking", 0)
        # Retention runs every 300 ms; wait until the log start stops moving.
        deadline = time.monotonic() + 30
        low, settled_since = 0, time.monotonic()
        while time.monotonic() < deadline:
            now_low, _high = _watermarks(consumer, partition, deadline)
            if now_low != low:
                low, settled_since = now_low, time.monotonic()
            elif low > 0 and time.monotonic() - settled_since > 2:
                break
            time.sleep(0.2)
        assert low > 0, "the log start moved past dropped segments"
        groups_dir = cluster.node(1).data_dir / "groups"
        data_bytes = sum(f.stat().st_size for f in groups_dir.rglob("*.log"))
        assert data_bytes < 2 * 300_000 + 200_000, f"{data_bytes} bytes remain on disk"

        consumer.assign([TopicPartition("shrinking", 0, low)])
        tail: list[bytes] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not tail or tail[-1] != values[-1]):
            for message in consumer.consume(1000, 0.5):
                assert message.error() is None, message.error()
                tail.append(message.value())
        consumer.close()
        assert tail == values[len(values) - len(tail) :], "what remains is the newest, whole"
        assert 0 < len(tail) < len(values)
