"""Fetches of sealed segments from a node that does not hold them are forwarded to one that does.

Four nodes, a topic with replication factor 3 on nodes 1-3, segments small enough that the
partition becomes a chain of sealed segments plus the head. Node 4 holds no replica: asked
for an offset in a sealed segment, it reads the batches from a replica and answers with
exactly the bytes the replicas hold, even with one of those replicas dead.
"""

from __future__ import annotations

import pathlib
import re
import time
import urllib.request

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from raftlog.kafka.admin_client import KafkaAdminConnection
from raftlog.protocol.errors import ErrorCode
from raftlog.protocol.messages.generated.fetch_request import (
    FetchPartition,
    FetchRequest,
    FetchTopic,
)
from raftlog.protocol.messages.generated.fetch_response import FetchResponse, PartitionData
from raftlog.protocol.records import parse_batches
from raftlog.testing import LocalCluster

pytestmark = pytest.mark.clients

TOPIC = "forwarded"
ROUNDS = 3
RECORDS_PER_ROUND = 2000
RECORDS = ROUNDS * RECORDS_PER_ROUND


def _produce(bootstrap: str, start: int) -> None:
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
    for index in range(start, start + RECORDS_PER_ROUND):
        producer.produce(
            TOPIC,
            f"record-{index:06d}".encode() * 8,
            on_delivery=lambda error, _m: failures.append(str(error)) if error else None,
        )
        producer.poll(0)
    assert producer.flush(90) == 0
    assert failures == []


def _fetch(address: str, offset: int) -> PartitionData:
    request = FetchRequest(
        replica_id=-1,
        max_wait_ms=0,
        min_bytes=0,
        max_bytes=1 << 20,
        topics=[
            FetchTopic(
                topic=TOPIC,
                partitions=[
                    FetchPartition(partition=0, fetch_offset=offset, partition_max_bytes=1 << 16)
                ],
            )
        ],
    )
    with KafkaAdminConnection(address) as connection:
        answer = connection.request(request, 11)
    assert isinstance(answer, FetchResponse)
    return answer.responses[0].partitions[0]


def _sealed_values(address: str) -> tuple[list[bytes], int]:
    """Every record value read through `address` up to the first offset it cannot serve."""
    values: list[bytes] = []
    offset = 0
    while True:
        data = _fetch(address, offset)
        if data.error_code != 0 or not data.records:
            return values, offset
        for batch in parse_batches(data.records):
            if not batch.is_control:
                values.extend(
                    record.value or b""
                    for record in batch.records()
                    if record.offset is not None and record.offset >= offset
                )
            offset = max(offset, batch.last_offset + 1)


def _wait_until_served(address: str, timeout_s: float) -> None:
    """Until `address` answers offset 0 (its copy of the metadata must show the seal)."""
    deadline = time.monotonic() + timeout_s
    while (data := _fetch(address, 0)).error_code != 0:
        assert time.monotonic() < deadline, f"offset 0: error {data.error_code}"
        time.sleep(0.2)


def _read_from_leader(cluster: LocalCluster, offset: int, timeout_s: float) -> PartitionData:
    """`offset` read from the partition's leader (a replica answers clients only as leader;
    leadership may move, say after a slow start, so the leader is asked for each try)."""
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    deadline = time.monotonic() + timeout_s
    while True:
        leader = admin.list_topics(TOPIC, timeout=10).topics[TOPIC].partitions[0].leader
        if leader > 0:
            data = _fetch(cluster.node(leader).address, offset)
            if data.error_code == 0 and data.records:
                return data
        assert time.monotonic() < deadline, f"offset {offset}: leader {leader} does not serve it"
        time.sleep(0.2)


def _replicas(bootstrap: str) -> list[int]:
    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(TOPIC, timeout=10)
    return sorted(metadata.topics[TOPIC].partitions[0].replicas)


def test_a_node_without_the_segment_forwards_the_read(tmp_path: pathlib.Path) -> None:
    with LocalCluster(tmp_path, nodes=4, extra_arguments=["--segment-bytes", "150000"]) as cluster:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin.create_topics([NewTopic(TOPIC, 1, 3)])[TOPIC].result(30)
        assert _replicas(cluster.bootstrap) == [1, 2, 3]
        for round_index in range(ROUNDS):
            _produce(cluster.bootstrap, round_index * RECORDS_PER_ROUND)
            time.sleep(1)  # the head seals between rounds (a seal is checked as batches land)
        outsider = cluster.node(4)
        _wait_until_served(outsider.address, 20)

        # The same bytes from a replica's own segment and through the outsider.
        for offset in (0, 700):
            held = _read_from_leader(cluster, offset, 20)
            forwarded = _fetch(outsider.address, offset)
            assert forwarded.error_code == 0
            assert forwarded.records == held.records
            assert forwarded.high_watermark >= offset

        metrics = urllib.request.urlopen(f"{outsider.admin_url}/metrics", timeout=10).read()
        forwarded = re.search(rb"^raftlog_sealed_reads_forwarded_total (\S+)$", metrics, re.M)
        assert forwarded is not None and float(forwarded.group(1)) >= 2

        values, stopped_at = _sealed_values(outsider.address)
        expected = [f"record-{index:06d}".encode() * 8 for index in range(RECORDS)]
        assert len(values) >= RECORDS_PER_ROUND, "reads crossed at least one sealed segment"
        assert values == expected[: len(values)]
        # The head is not sealed: the outsider does not forward it and sends the client to
        # the leader, as a Kafka broker that is not the leader does.
        assert _fetch(outsider.address, stopped_at).error_code == int(
            ErrorCode.NOT_LEADER_OR_FOLLOWER
        )

        # With a replica of the sealed segments dead, another one answers.
        cluster.node(1).kill()
        _wait_until_served(outsider.address, 20)
        again, _ = _sealed_values(outsider.address)
        assert again == values
