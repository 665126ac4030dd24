"""Partitions as chains of segment groups: seal under load, link, read across boundaries.

Segments are made tiny (`--segment-bytes`) so that a few thousand records cross many
seals; an idempotent producer must see no sequence error across them, and every record
must read back in order, before and after a restart.
"""

from __future__ import annotations

import pathlib
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from raftlog.testing import LocalCluster

pytestmark = pytest.mark.clients

SEGMENT_BYTES = "150000"
RECORDS = 6000


def _produce(bootstrap: str, start: int, count: int) -> None:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 2,
            "batch.size": 16384,  # many batches, so seals fall between them
            "message.timeout.ms": 60_000,
        }
    )
    failures: list[str] = []
    for index in range(start, start + count):
        producer.produce(
            "chained",
            f"record-{index:06d}".encode() * 8,
            on_delivery=lambda error, _m: failures.append(str(error)) if error else None,
        )
        producer.poll(0)
    assert producer.flush(60) == 0
    assert failures == []


def _read(bootstrap: str, expected: int) -> tuple[list[bytes], list[int]]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition("chained", 0, 0)])
    values: list[bytes] = []
    offsets: list[int] = []
    deadline = time.monotonic() + 40
    while len(values) < expected and time.monotonic() < deadline:
        for message in consumer.consume(1000, 0.5):
            if message.error() is None:
                values.append(message.value())
                offsets.append(message.offset())
            elif message.error().code() != KafkaError._PARTITION_EOF:
                raise AssertionError(str(message.error()))
    low, high = consumer.get_watermark_offsets(TopicPartition("chained", 0), timeout=10)
    consumer.close()
    assert low == 0
    assert high > offsets[-1]
    return values, offsets


def _expected(count: int) -> list[bytes]:
    return [f"record-{index:06d}".encode() * 8 for index in range(count)]


def _links(cluster: LocalCluster) -> int:
    return max(
        member.log_path.read_text().count("event=segment_linked") for member in cluster.members
    )


def test_single_node_chains_segments_and_survives_restart(tmp_path: pathlib.Path) -> None:
    arguments = ("--segment-bytes", SEGMENT_BYTES, "--auto-create-topics", "true")
    with LocalCluster(tmp_path, nodes=1, extra_arguments=arguments) as cluster:
        _produce(cluster.bootstrap, 0, RECORDS)
        values, offsets = _read(cluster.bootstrap, RECORDS)
        assert values == _expected(RECORDS)
        assert offsets == sorted(set(offsets))
        assert _links(cluster) >= 3, "the partition sealed and chained several segments"
        node = cluster.node(1)
        assert node.stop() == 0
        node.start()
        values, _offsets = _read(cluster.bootstrap, RECORDS)
        assert values == _expected(RECORDS), "the chain is whole after a restart"
        _produce(cluster.bootstrap, RECORDS, 500)
        values, _offsets = _read(cluster.bootstrap, RECORDS + 500)
        assert values == _expected(RECORDS + 500)


def test_three_nodes_chain_segments_across_leaders(tmp_path: pathlib.Path) -> None:
    arguments = ("--segment-bytes", SEGMENT_BYTES, "--auto-create-topics", "true")
    with LocalCluster(tmp_path, nodes=3, extra_arguments=arguments) as cluster:
        _produce(cluster.bootstrap, 0, RECORDS)
        for member in cluster.members:
            values, _offsets = _read(member.address, RECORDS)
            assert values == _expected(RECORDS)
        assert _links(cluster) >= 3
        leaders = set()
        for member in cluster.members:
            for line in member.log_path.read_text().splitlines():
                if "event=leader_changed" in line and "role=leader" in line:
                    leaders.add(member.node_id)
        assert len(leaders) >= 2, "successive segments are led by different nodes"
