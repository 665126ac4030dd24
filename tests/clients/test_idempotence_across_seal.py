"""A producer's retry of a batch written just before a segment sealed is still a duplicate.

Each segment is its own Raft group with its own log, and the head inherits the
idempotence memory of the segment before it. A retry of a batch that went into the
sealed segment reaches the new head, whose own log does not hold it: the head must
answer with the offsets the batch got in the sealed segment, append nothing, and keep
accepting the producer's next sequence number. Raw Produce requests make the retries
exact (same producer id, epoch and sequence), as a client resending after a lost
acknowledgement does.
"""

from __future__ import annotations

import time

import pytest

from raftlog.protocol.errors import ErrorCode
from raftlog.protocol.records import Record, build_batch, parse_batches

from .conftest import NodeFactory
from .helpers import call

pytestmark = pytest.mark.clients

TOPIC = "idem-seal"
SEGMENT_BYTES = 4096
PRODUCER_ID = 4242
EPOCH = 0
VALUE_BYTES = 300
DEADLINE_S = 30.0


def _produce(address: tuple[str, int], sequence: int) -> tuple[int, int]:
    from raftlog.protocol.messages.generated.produce_request import (
        PartitionProduceData,
        ProduceRequest,
        TopicProduceData,
    )

    batch = build_batch(
        [Record(value=b"%06d" % sequence + b"." * VALUE_BYTES)],
        producer_id=PRODUCER_ID,
        producer_epoch=EPOCH,
        base_sequence=sequence,
    )
    request = ProduceRequest(
        transactional_id=None,
        acks=-1,
        timeout_ms=5000,
        topic_data=[
            TopicProduceData(
                name=TOPIC, partition_data=[PartitionProduceData(index=0, records=batch)]
            )
        ],
    )
    response = call(address, 0, 9, request)
    answer = response.responses[0].partition_responses[0]
    return answer.error_code, answer.base_offset


def _create_topic(address: tuple[str, int]) -> None:
    from raftlog.protocol.messages.generated.metadata_request import (
        MetadataRequest,
        MetadataRequestTopic,
    )

    request = MetadataRequest(
        topics=[MetadataRequestTopic(name=TOPIC)], allow_auto_topic_creation=True
    )
    deadline = time.monotonic() + DEADLINE_S
    while call(address, 3, 12, request).topics[0].partitions[0:1] == []:
        assert time.monotonic() < deadline, "the topic was never created"
        time.sleep(0.1)


def _produce_until_ok(address: tuple[str, int], sequence: int) -> int:
    """Retry like a client through retriable errors (a seal in progress)."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        error, offset = _produce(address, sequence)
        if error == 0:
            return offset
        assert error in (
            ErrorCode.NOT_LEADER_OR_FOLLOWER,
            ErrorCode.LEADER_NOT_AVAILABLE,
            ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
            ErrorCode.REQUEST_TIMED_OUT,
        ), f"sequence {sequence}: error {error}"
        assert time.monotonic() < deadline, f"sequence {sequence} never accepted"
        time.sleep(0.05)


def _read_all(address: tuple[str, int], end: int) -> list[tuple[int, bytes]]:
    from raftlog.protocol.messages.generated.fetch_request import (
        FetchPartition,
        FetchRequest,
        FetchTopic,
    )

    records: list[tuple[int, bytes]] = []
    offset = 0
    while offset < end:
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
        answer = call(address, 1, 11, request).responses[0].partitions[0]
        assert answer.error_code == 0, f"fetch at {offset}: error {answer.error_code}"
        for batch in parse_batches(answer.records or b""):
            if not batch.is_control:
                records.extend(
                    (record.offset, record.value)
                    for record in batch.records()
                    if record.offset is not None and record.offset >= offset
                )
            offset = max(offset, batch.last_offset + 1)
    return records


def test_retries_across_a_seal_are_answered_with_the_original_offsets(
    node_factory: NodeFactory,
) -> None:
    node = node_factory("--segment-bytes", str(SEGMENT_BYTES))
    host, port = node.bootstrap.split(":")
    address = (host, int(port))
    _create_topic(address)

    offsets: dict[int, int] = {}
    sequence = 0
    # Write until the partition has rolled at least twice (each roll seals a segment).
    while node.log().count("segment_linked") < 2:
        offsets[sequence] = _produce_until_ok(address, sequence)
        sequence += 1
        assert sequence < 500, "the partition never rolled"
    rolled_at = sequence

    # Retry every batch a producer could still be retrying (its last five), now that the
    # ones before the roll live in a sealed segment; again after a crash and restart, when
    # the memory comes back from the logs alone.
    for retried in range(rolled_at - 5, rolled_at):
        assert _produce(address, retried) == (0, offsets[retried]), f"retry of {retried}"
    node.kill()
    node.start()
    for retried in range(rolled_at - 5, rolled_at):
        assert _produce_until_ok(address, retried) == offsets[retried], f"retry of {retried}"
    # The producer goes on with its next sequence number, after the last batch (the new
    # leader term's NOOP, a control batch, may take an offset in between).
    offsets[rolled_at] = _produce_until_ok(address, rolled_at)
    assert offsets[rolled_at] > offsets[rolled_at - 1]

    written = _read_all(address, offsets[rolled_at] + 1)
    assert [offset for offset, _ in written] == sorted(offsets.values())
    assert [int(value[:6]) for _, value in written] == list(range(rolled_at + 1))
