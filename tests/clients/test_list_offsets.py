"""ListOffsets through real clients: earliest, latest, and by timestamp.

Three records are produced with explicit timestamps, each flushed on its own so each is a
batch of its own (the node answers a time query with a batch's base offset, which is then
the record's exact offset). Expectations come from the producer's acknowledgements:
earliest is the log start (0: our leader NOOP occupies it), latest is the offset after
the last record, a timestamp maps to the first record at or after it, and a timestamp
after every record maps to "none" (-1 / None).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from .helpers import CLIENT_TIMEOUT_S

pytestmark = pytest.mark.clients

TOPIC = "offsets"
BASE_MS = int(time.time() * 1000) - 3_600_000  # an hour ago: distinct from the NOOP's time
STAMPS = (BASE_MS, BASE_MS + 10_000, BASE_MS + 20_000)


def _produce_stamped(bootstrap: str) -> list[int]:
    """Produce one record per timestamp, each in its own batch; return their offsets."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    offsets: list[int] = []

    def report(error: object, message: object) -> None:
        assert error is None, error
        offsets.append(message.offset())  # type: ignore[attr-defined]

    for number, stamp in enumerate(STAMPS):
        producer.produce(
            TOPIC, value=b"at-%d" % number, partition=0, timestamp=stamp, on_delivery=report
        )
        assert producer.flush(CLIENT_TIMEOUT_S) == 0
    assert len(offsets) == len(STAMPS)
    return offsets


def _expected_by_time(offsets: list[int]) -> dict[int, int | None]:
    return {
        STAMPS[0] - 1_000: offsets[0],
        STAMPS[0]: offsets[0],
        STAMPS[1]: offsets[1],
        STAMPS[1] + 1: offsets[2],
        STAMPS[2]: offsets[2],
        STAMPS[2] + 1: None,
    }


def test_confluent_kafka(bootstrap: str) -> None:
    from confluent_kafka import Consumer, TopicPartition

    offsets = _produce_stamped(bootstrap)
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "offsets-reader", "enable.auto.commit": False}
    )
    try:
        low, high = consumer.get_watermark_offsets(
            TopicPartition(TOPIC, 0), timeout=CLIENT_TIMEOUT_S, cached=False
        )
        assert (low, high) == (0, offsets[-1] + 1)
        for stamp, expected in _expected_by_time(offsets).items():
            (found,) = consumer.offsets_for_times(
                [TopicPartition(TOPIC, 0, stamp)], timeout=CLIENT_TIMEOUT_S
            )
            assert found.error is None, found.error
            assert found.offset == (-1 if expected is None else expected), stamp
    finally:
        consumer.close()


def test_kafka_python(bootstrap: str) -> None:
    from kafka import KafkaConsumer, TopicPartition

    offsets = _produce_stamped(bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    partition = TopicPartition(TOPIC, 0)
    try:
        assert consumer.beginning_offsets([partition]) == {partition: 0}
        assert consumer.end_offsets([partition]) == {partition: offsets[-1] + 1}
        for stamp, expected in _expected_by_time(offsets).items():
            found = consumer.offsets_for_times({partition: stamp})[partition]
            if expected is None:
                assert found is None, stamp
            else:
                assert found is not None and found.offset == expected, (stamp, found)
                assert found.timestamp == STAMPS[offsets.index(expected)]
    finally:
        consumer.close()


def test_aiokafka(bootstrap: str) -> None:
    offsets = _produce_stamped(bootstrap)
    asyncio.run(asyncio.wait_for(_aiokafka_offsets(bootstrap, offsets), 2 * CLIENT_TIMEOUT_S))


async def _aiokafka_offsets(bootstrap: str, offsets: list[int]) -> None:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await consumer.start()
    partition = TopicPartition(TOPIC, 0)
    try:
        assert await consumer.beginning_offsets([partition]) == {partition: 0}
        assert await consumer.end_offsets([partition]) == {partition: offsets[-1] + 1}
        for stamp, expected in _expected_by_time(offsets).items():
            found = (await consumer.offsets_for_times({partition: stamp}))[partition]
            if expected is None:
                assert found is None, stamp
            else:
                assert found is not None and found.offset == expected, (stamp, found)
    finally:
        await consumer.stop()
