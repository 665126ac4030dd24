"""auto.offset.reset with real clients: earliest, latest, and none (an error to the app).

Each applies only where the group has no committed offset; a committed offset wins.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from kafka import KafkaConsumer
from kafka.errors import NoOffsetForPartitionError

from raftlog.testing import LocalCluster

pytestmark = pytest.mark.clients
TOPIC = "resets"


def _produce(bootstrap: str, count: int, start: int) -> list[bytes]:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    values = [f"v{index}".encode() for index in range(start, start + count)]
    for value in values:
        producer.produce(TOPIC, value, partition=0)
    assert producer.flush(30) == 0
    return values


def _consumer(bootstrap: str, group: str, reset: str) -> Consumer:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": reset,
         "enable.auto.commit": False, "session.timeout.ms": 6000}
    )  # fmt: skip
    consumer.subscribe([TOPIC])
    return consumer


def _read(consumer: Consumer, count: int, timeout_s: float = 30) -> list[bytes]:
    got: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < count and time.monotonic() < deadline:
        for message in consumer.consume(count - len(got), 0.2):
            assert message.error() is None, message.error()
            got.append(message.value())
    return got


def test_earliest_latest_and_none(raftlog_node: LocalCluster) -> None:
    bootstrap = raftlog_node.bootstrap
    old = _produce(bootstrap, 5, 0)

    earliest = _consumer(bootstrap, "from-earliest", "earliest")
    assert _read(earliest, 5) == old
    earliest.commit(asynchronous=False)
    earliest.close()

    latest = _consumer(bootstrap, "from-latest", "latest")
    new: list[bytes] = []
    got: list[bytes] = []
    deadline = time.monotonic() + 30
    while not got and time.monotonic() < deadline:  # until its end offset is resolved
        new += _produce(bootstrap, 1, 5 + len(new))
        got = [m.value() for m in latest.consume(10, 0.3) if m.error() is None]
    assert got, "the latest consumer never read what came after it joined"
    new += _produce(bootstrap, 2, 5 + len(new))
    got += _read(latest, len(new) - len(got) - new.index(got[0]))
    latest.close()
    # Nothing that was there before it joined; from its first record on, everything.
    assert not set(got) & set(old)
    assert got == new[new.index(got[0]) :]

    # none: librdkafka calls it "error" and reports it as a consumer error event.
    strict = _consumer(bootstrap, "strict-confluent", "error")
    error = None
    deadline = time.monotonic() + 30
    while error is None and time.monotonic() < deadline:
        for message in strict.consume(10, 0.2):
            assert message.error() is not None, "no record may be read without an offset"
            error = message.error()
    strict.close()
    assert error is not None and error.code() == KafkaError._AUTO_OFFSET_RESET, error

    python_strict = KafkaConsumer(
        TOPIC, bootstrap_servers=bootstrap, group_id="strict-python",
        auto_offset_reset="none", session_timeout_ms=6000,
    )  # fmt: skip
    try:
        with pytest.raises(NoOffsetForPartitionError):
            for _attempt in range(150):
                python_strict.poll(timeout_ms=200)
    finally:
        python_strict.close(autocommit=False)

    # With a committed offset, none is no error: the group resumes where it committed.
    resumed = KafkaConsumer(
        TOPIC, bootstrap_servers=bootstrap, group_id="from-earliest",
        auto_offset_reset="none", session_timeout_ms=6000, consumer_timeout_ms=15_000,
    )  # fmt: skip
    try:
        got = []
        for record in resumed:  # from-earliest committed after the five old records
            got.append(record.value)
            if len(got) == 3:
                break
    finally:
        resumed.close(autocommit=False)
    assert got == new[:3]
