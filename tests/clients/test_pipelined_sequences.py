"""Pipelined idempotent batches of one partition are all accepted, whatever order the
node's tasks take them in.

librdkafka keeps up to five produce requests of a partition in flight, and after a leader
change it resends its queue back to back. The listener handles a connection's produce
requests concurrently, and trio runs each batch of ready tasks in random order, so batch
N+1 can reach the sequence check before batch N. Were it answered
OUT_OF_ORDER_SEQUENCE_NUMBER, librdkafka would bump its epoch and renumber messages whose
first attempt may already be stored: a duplicate (chaos run seed 10001).
"""

from __future__ import annotations

import socket
import struct

from raftlog.protocol.api_keys import API_SPECS
from raftlog.protocol.errors import ErrorCode
from raftlog.protocol.messages.generated.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from raftlog.protocol.records import Record, build_batch

from .conftest import NodeFactory
from .helpers import read_frame, request_frame
from .test_idempotence_across_seal import _create_topic

TOPIC = "idem-seal"  # the name `_create_topic` creates
PRODUCER_ID = 777
ROUNDS = 20
PIPELINE = 5
PRODUCE_VERSION = 9


def _produce_frame(sequence: int, correlation_id: int) -> bytes:
    batch = build_batch(
        [Record(value=b"%06d" % sequence)],
        producer_id=PRODUCER_ID,
        producer_epoch=0,
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
    return request_frame(0, PRODUCE_VERSION, request, correlation_id=correlation_id)


def _answers(sock: socket.socket, count: int) -> list[tuple[int, int, int]]:
    """(correlation id, error code, base offset) of the next `count` responses."""
    answers = []
    for _ in range(count):
        payload = read_frame(sock)
        assert payload is not None, "connection closed"
        (correlation_id,) = struct.unpack_from(">i", payload)
        body = API_SPECS[0].response_class.decode(payload[5:], PRODUCE_VERSION)
        partition = body.responses[0].partition_responses[0]
        answers.append((correlation_id, partition.error_code, partition.base_offset))
    return answers


def test_back_to_back_batches_are_taken_in_sequence_order(node_factory: NodeFactory) -> None:
    node = node_factory()
    host, port = node.bootstrap.split(":")
    address = (host, int(port))
    _create_topic(address)
    offsets: list[int] = []
    with socket.create_connection(address, timeout=10) as sock:
        for round_index in range(ROUNDS):
            first = round_index * PIPELINE
            sequences = range(first, first + PIPELINE)
            # One write: every request arrives in the same read, its handlers start together.
            sock.sendall(b"".join(_produce_frame(seq, correlation_id=seq) for seq in sequences))
            answers = _answers(sock, PIPELINE)
            assert [answer[0] for answer in answers] == list(sequences)
            errors = {seq: ErrorCode(code).name for seq, code, _ in answers if code != 0}
            assert errors == {}, f"round {round_index}: refused {errors}"
            offsets.extend(offset for _, _, offset in answers)
    assert offsets == sorted(offsets), "the log holds the batches in sequence order"
    assert len(set(offsets)) == ROUNDS * PIPELINE
