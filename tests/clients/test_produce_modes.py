"""Produce variants: acks=0, acks=1, old message formats and client control batches.

acks=0 gets no response at all (the listener must keep the response order of what
follows); acks=1 answers once the batch is durable on the node. Old magic v0/v1 message
sets are refused, not crashed on: Produce v0-2 (which can only carry them) per partition
with UNSUPPORTED_VERSION, and a v0/v1 message set inside a newer Produce with
UNSUPPORTED_FOR_MESSAGE_FORMAT. A control batch from a client is refused with
INVALID_RECORD as Kafka does: here it matters more, because our own control batches are
Raft entries (a client's "seal" control record would otherwise seal the partition when
the log is replayed at the next start).
"""

from __future__ import annotations

import socket
import struct
import time
import zlib

import pytest

from raftlog.protocol.errors import ErrorCode
from raftlog.protocol.messages.generated.api_versions_request import ApiVersionsRequest
from raftlog.protocol.messages.generated.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from raftlog.protocol.messages.generated.produce_response import ProduceResponse
from raftlog.protocol.records import Record, build_batch

from .conftest import NodeProcess
from .helpers import CLIENT_TIMEOUT_S, call, read_frame, request_frame

pytestmark = pytest.mark.clients

TOPIC = "modes"
OUR_SEAL_CONTROL_TYPE = 0x7003


def _produce_and_read(bootstrap: str, acks: str, count: int) -> tuple[list[bytes], list[int]]:
    """Produce `count` values with `acks`, read the partition back; returns (values, acked
    offsets as reported, -1 for acks=0)."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": acks, "enable.idempotence": False,
         "linger.ms": 5}
    )
    reported: list[int] = []

    def report(error: object, message: object) -> None:
        assert error is None, error
        reported.append(message.offset())  # type: ignore[attr-defined]

    for i in range(count):
        producer.produce(TOPIC, value=b"%s-%06d" % (acks.encode(), i), partition=0,
                         on_delivery=report)
        producer.poll(0)
    assert producer.flush(CLIENT_TIMEOUT_S) == 0
    assert len(reported) == count

    # No auto-commit: the node serves no group coordinator yet, and librdkafka's close
    # would wait session.timeout.ms (45 s) for one to commit the consumed offsets.
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "modes-reader", "enable.auto.commit": False}
    )
    values: list[bytes] = []
    try:
        consumer.assign([TopicPartition(TOPIC, 0, 0)])
        deadline = time.monotonic() + CLIENT_TIMEOUT_S
        while len(values) < count and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.5):
                assert message.error() is None, message.error()
                values.append(message.value())
    finally:
        consumer.close()
    return values, reported


def test_acks_0_delivers_without_responses(bootstrap: str) -> None:
    values, _offsets_unknown = _produce_and_read(bootstrap, "0", 5_000)
    assert values == [b"0-%06d" % i for i in range(5_000)]


def test_acks_0_gets_no_response_and_keeps_the_order_of_others(node: NodeProcess) -> None:
    """Pipelined on one connection: only the requests that expect answers get them, in order."""
    _produce_and_read(node.bootstrap, "all", 1)
    batch = build_batch([Record(value=b"pipelined")])
    frames = []
    for correlation_id, (api_key, version, body) in enumerate(
        [
            (0, 9, _produce_request(batch, acks=0)),
            (18, 3, ApiVersionsRequest(client_software_name="t", client_software_version="1")),
            (0, 9, _produce_request(batch, acks=0)),
            (0, 9, _produce_request(batch, acks=1)),
        ],
        start=1,
    ):
        frames.append(request_frame(api_key, version, body, correlation_id))
    with socket.create_connection(("127.0.0.1", node.port), timeout=10) as sock:
        sock.sendall(b"".join(frames))
        answered = []
        for _ in range(2):
            payload = read_frame(sock)
            assert payload is not None
            answered.append(struct.unpack_from(">i", payload)[0])
        sock.shutdown(socket.SHUT_WR)
        assert read_frame(sock) is None, "a response too many"
    assert answered == [2, 4]
    values, _ = _produce_and_read(node.bootstrap, "all", 1)
    assert values.count(b"pipelined") == 3


def test_acks_1_answers_with_offsets(bootstrap: str) -> None:
    values, reported = _produce_and_read(bootstrap, "1", 5_000)
    assert values == [b"1-%06d" % i for i in range(5_000)]
    assert reported == sorted(reported) and len(set(reported)) == len(reported)
    assert reported[0] >= 1  # offset 0 is the leader's NOOP


def _legacy_message_set(magic: int, values: list[bytes]) -> bytes:
    """A magic v0 or v1 message set, as pre-0.11 clients sent them."""
    out = b""
    for offset, value in enumerate(values):
        body = struct.pack(">bb", magic, 0)
        if magic == 1:
            body += struct.pack(">q", int(time.time() * 1000))
        body += struct.pack(">i", -1) + struct.pack(">i", len(value)) + value  # null key
        message = struct.pack(">I", zlib.crc32(body)) + body
        out += struct.pack(">qi", offset, len(message)) + message
    return out


def _produce_request(records: bytes, acks: int = -1) -> ProduceRequest:
    return ProduceRequest(
        transactional_id=None,
        acks=acks,
        timeout_ms=5_000,
        topic_data=[
            TopicProduceData(
                name=TOPIC, partition_data=[PartitionProduceData(index=0, records=records)]
            )
        ],
    )


def _produce_raw(node: NodeProcess, version: int, records: bytes) -> tuple[int, str | None]:
    response = call(("127.0.0.1", node.port), 0, version, _produce_request(records))
    assert isinstance(response, ProduceResponse)
    (partition,) = response.responses[0].partition_responses
    return partition.error_code, partition.error_message


@pytest.mark.parametrize("magic", [0, 1])
def test_old_message_formats_are_refused(node: NodeProcess, magic: int) -> None:
    _produce_and_read(node.bootstrap, "all", 1)  # the topic exists and works
    legacy = _legacy_message_set(magic, [b"old-1", b"old-2"])
    for version in (0, 1, 2):  # Produce versions that can only carry v0/v1 message sets
        error, _ = _produce_raw(node, version, legacy)
        assert error == ErrorCode.UNSUPPORTED_VERSION, (version, error)
    for version in (3, 7, 9):
        error, message = _produce_raw(node, version, legacy)
        assert error == ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT, (version, error, message)
    values, _ = _produce_and_read(node.bootstrap, "all", 1)  # and still serves v2 batches
    assert b"old-1" not in values and len(values) == 2


def test_client_control_batch_is_refused_and_cannot_seal(node: NodeProcess) -> None:
    _produce_and_read(node.bootstrap, "all", 1)
    control = build_batch(
        [Record(value=b"", key=struct.pack(">hh", 0, OUR_SEAL_CONTROL_TYPE))], control=True
    )
    error, message = _produce_raw(node, 9, control)
    assert error == ErrorCode.INVALID_RECORD, (error, message)
    assert node.stop() == 0
    node.start()  # the log is replayed: nothing in it may act as a Raft entry of ours
    values, _ = _produce_and_read(node.bootstrap, "all", 1)
    assert len(values) == 2
