"""OffsetForLeaderEpoch across segments: each epoch ends where the partition's next epoch
starts, as the batches a fetch returns show it.

Consumers (librdkafka, KIP-320) validate their position with this request after a leader
change; an end offset below their position makes them seek back and read records twice,
one too high hides nothing (committed records are never truncated). Each segment here is
its own Raft group whose terms continue its predecessor's, so a partition that rolled
twice has at least three epochs, spread over three groups' logs.
"""

from __future__ import annotations

import time

import pytest

from raftlog.kafka.handlers import SUPPORTED_VERSIONS
from raftlog.protocol.messages.generated.fetch_request import (
    FetchPartition,
    FetchRequest,
    FetchTopic,
)
from raftlog.protocol.messages.generated.metadata_request import (
    MetadataRequest,
    MetadataRequestTopic,
)
from raftlog.protocol.messages.generated.offset_for_leader_epoch_request import (
    OffsetForLeaderEpochRequest,
    OffsetForLeaderPartition,
    OffsetForLeaderTopic,
)
from raftlog.protocol.messages.generated.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from raftlog.protocol.records import Record, build_batch, parse_batches

from .conftest import NodeFactory
from .helpers import call

pytestmark = pytest.mark.clients

TOPIC = "epochs"
SEGMENT_BYTES = 4096
VALUE_BYTES = 300
DEADLINE_S = 30.0
PRODUCE, FETCH, METADATA, OFFSET_FOR_LEADER_EPOCH = 0, 1, 3, 23
RETRIABLE = {3, 5, 6, 7}  # unknown topic, leader not available, not leader, timed out


def _create_topic(address: tuple[str, int]) -> None:
    request = MetadataRequest(
        topics=[MetadataRequestTopic(name=TOPIC)], allow_auto_topic_creation=True
    )
    deadline = time.monotonic() + DEADLINE_S
    while call(address, METADATA, 12, request).topics[0].partitions[0:1] == []:
        assert time.monotonic() < deadline, "the topic was never created"
        time.sleep(0.1)


def _produce(address: tuple[str, int], value: bytes) -> None:
    request = ProduceRequest(
        transactional_id=None,
        acks=-1,
        timeout_ms=5000,
        topic_data=[
            TopicProduceData(
                name=TOPIC,
                partition_data=[
                    PartitionProduceData(index=0, records=build_batch([Record(value=value)]))
                ],
            )
        ],
    )
    deadline = time.monotonic() + DEADLINE_S
    while True:
        answer = call(address, PRODUCE, 9, request).responses[0].partition_responses[0]
        if answer.error_code == 0:
            return
        assert answer.error_code in RETRIABLE, f"produce: error {answer.error_code}"
        assert time.monotonic() < deadline, "a produce was never accepted"
        time.sleep(0.05)


def _batches(address: tuple[str, int]) -> tuple[list[tuple[int, int]], int]:
    """(partition leader epoch, base offset) of every batch a fetch returns, and the
    high watermark."""
    found: list[tuple[int, int]] = []
    offset, high_watermark = 0, 1
    while offset < high_watermark:
        request = FetchRequest(
            replica_id=-1,
            max_wait_ms=100,
            min_bytes=1,
            max_bytes=1 << 20,
            topics=[
                FetchTopic(
                    topic=TOPIC,
                    partitions=[
                        FetchPartition(
                            partition=0, fetch_offset=offset, partition_max_bytes=1 << 20
                        )
                    ],
                )
            ],
        )
        answer = call(address, FETCH, 11, request).responses[0].partitions[0]
        assert answer.error_code == 0, f"fetch at {offset}: error {answer.error_code}"
        high_watermark = answer.high_watermark
        for batch in parse_batches(answer.records or b""):
            if batch.last_offset >= offset:
                found.append((batch.partition_leader_epoch, batch.base_offset))
            offset = max(offset, batch.last_offset + 1)
    return found, high_watermark


def _expected(batches: list[tuple[int, int]], end: int, epoch: int) -> tuple[int, int]:
    """Kafka's answer: the largest epoch <= `epoch` and the first offset of a later one."""
    earlier = [known for known, _base in batches if known <= epoch]
    if not earlier:
        return -1, -1
    chosen = max(earlier)
    later = [base for known, base in batches if known > chosen]
    return chosen, min(later, default=end)


def _ask(address: tuple[str, int], version: int, epoch: int) -> tuple[int, int, int]:
    request = OffsetForLeaderEpochRequest(
        replica_id=-1,
        topics=[
            OffsetForLeaderTopic(
                topic=TOPIC,
                partitions=[OffsetForLeaderPartition(partition=0, leader_epoch=epoch)],
            )
        ],
    )
    answer = call(address, OFFSET_FOR_LEADER_EPOCH, version, request).topics[0].partitions[0]
    return answer.error_code, answer.leader_epoch, answer.end_offset


def test_each_epoch_ends_where_the_next_begins_across_rolls(node_factory: NodeFactory) -> None:
    node = node_factory("--segment-bytes", str(SEGMENT_BYTES))
    host, port = node.bootstrap.split(":")
    address = (host, int(port))
    _create_topic(address)
    written = 0
    deadline = time.monotonic() + DEADLINE_S * 4
    while node.log().count("segment_linked") < 2:
        _produce(address, b"%06d" % written + b"." * VALUE_BYTES)
        written += 1
        assert time.monotonic() < deadline, "the partition never rolled twice"
    _produce(address, b"after the rolls")

    batches, high_watermark = _batches(address)
    epochs = sorted({known for known, _base in batches})
    assert len(epochs) >= 3, f"expected an epoch per segment, saw {epochs}"
    low, high = SUPPORTED_VERSIONS[OFFSET_FOR_LEADER_EPOCH]
    for version in range(max(low, 2), high + 1):  # v0-1 carry no leader epoch back
        for epoch in [epochs[0] - 1, *epochs, epochs[-1] + 5]:
            error, known, end = _ask(address, version, epoch)
            assert error == 0, f"v{version} epoch {epoch}: error {error}"
            assert (known, end) == _expected(batches, high_watermark, epoch), (
                f"v{version} epoch {epoch}: answered ({known}, {end}); batches {batches}"
            )
