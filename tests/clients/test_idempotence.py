"""Idempotent producers whose connections are cut mid-stream write every record once.

The node advertises a proxy's address (`--advertised-kafka-addr`), so every client
connection goes through a TCP proxy in the test. Several times while the producer has
batches in flight, the proxy swallows the node's answers for a moment (those batches are
appended, but their acknowledgements are lost) and then drops every connection. The
producer resends the unacknowledged batches on a new connection; the node must recognise
the ones it already appended (same producer id, epoch and sequence) and answer them with
their original offsets instead of appending them again. Reading back must then give
every value exactly once, in order, at the offsets the acknowledgements reported.
(Checked once with the node instrumented: each run resends about six batches that the
node answers as duplicates.)
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from .helpers import CLIENT_TIMEOUT_S, CuttableProxy

pytestmark = pytest.mark.clients

TOPIC = "idempotent"
RECORDS = 20_000
CHUNK = 500
CUT_EVERY_CHUNKS = 6
CUTS_MIN = 3
MUTE_S = 0.15


def _values() -> list[bytes]:
    return [b"value-%08d" % i for i in range(RECORDS)]


def _produce_with_cuts(
    proxy: CuttableProxy,
    send: Callable[[bytes], None],
    pump: Callable[[], None],
    delivered: Callable[[], int],
) -> None:
    """Hand records to the producer in chunks; now and then lose answers, then cut.

    Before a cut the proxy is muted while a chunk is sent and pumped for MUTE_S, so the
    node appends those batches but the producer never hears back; the cut then forces it
    to resend them on a new connection. Each mute first waits until a delivery has been
    acknowledged since the previous cut: the producer's connection is up again (muting a
    reconnect would only swallow its handshake, and no batch would be in flight).
    """
    values = _values()
    delivered_at_cut = 0
    for chunk_number, start in enumerate(range(0, RECORDS, CHUNK)):
        cutting = chunk_number % CUT_EVERY_CHUNKS == CUT_EVERY_CHUNKS - 1
        if cutting:
            deadline = time.monotonic() + CLIENT_TIMEOUT_S
            while delivered() <= delivered_at_cut and time.monotonic() < deadline:
                pump()
            proxy.mute()
        for value in values[start : start + CHUNK]:
            send(value)
        pump()
        if cutting:
            muted_until = time.monotonic() + MUTE_S
            while time.monotonic() < muted_until:
                pump()
            delivered_at_cut = delivered()
            proxy.cut()


def _read_back_confluent(bootstrap: str) -> tuple[list[bytes], list[int]]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "idempotence-reader",
         "enable.auto.commit": False}
    )
    values: list[bytes] = []
    offsets: list[int] = []
    try:
        consumer.assign([TopicPartition(TOPIC, 0, 0)])
        deadline = time.monotonic() + CLIENT_TIMEOUT_S
        idle_polls = 0
        while time.monotonic() < deadline and idle_polls < 4:
            messages = consumer.consume(2000, 0.5)
            idle_polls = 0 if messages else idle_polls + 1
            for message in messages:
                assert message.error() is None, message.error()
                values.append(message.value())
                offsets.append(message.offset())
    finally:
        consumer.close()
    return values, offsets


def _check(values: list[bytes], offsets: list[int], acked: list[int]) -> None:
    expected = _values()
    duplicates = len(values) - len(set(values))
    assert duplicates == 0, f"{duplicates} duplicated records"
    assert len(values) == len(expected), f"read {len(values)} of {len(expected)}"
    assert values == expected, "records out of order"
    assert offsets == sorted(acked), "read offsets differ from the acknowledged ones"


def test_confluent_kafka_idempotent_through_cuts(
    proxied: tuple[str, CuttableProxy],
) -> None:
    from confluent_kafka import Producer

    bootstrap, proxy = proxied
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "linger.ms": 2,
            "batch.num.messages": 200,
            "message.timeout.ms": 60_000,
            "reconnect.backoff.ms": 10,
            "reconnect.backoff.max.ms": 200,
        }
    )
    acked: list[int] = []
    errors: list[object] = []

    def report(error: object, message: object) -> None:
        if error is not None:
            errors.append(error)
        else:
            acked.append(message.offset())  # type: ignore[attr-defined]

    _produce_with_cuts(
        proxy,
        lambda value: producer.produce(TOPIC, value=value, partition=0, on_delivery=report),
        lambda: producer.poll(0.02),
        lambda: len(acked),
    )
    assert producer.flush(60) == 0, "records still undelivered"
    assert errors == []
    assert proxy.cuts >= CUTS_MIN, f"only {proxy.cuts} cuts hit open connections"
    assert proxy.responses_swallowed_bytes > 0, "no acknowledgement was lost: nothing retried"
    _check(*_read_back_confluent(bootstrap), acked)


def test_kafka_python_default_idempotent_through_cuts(
    proxied: tuple[str, CuttableProxy],
) -> None:
    """kafka-python 3 is idempotent by default; the defaults must survive cuts too."""
    from kafka import KafkaProducer

    bootstrap, proxy = proxied
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=2,
        batch_size=4096,
        request_timeout_ms=10_000,
        reconnect_backoff_ms=10,
        reconnect_backoff_max_ms=200,
    )
    assert producer.config["enable_idempotence"]
    futures = []
    delivered = [0]

    def send(value: bytes) -> None:
        future = producer.send(TOPIC, value=value, partition=0)
        future.add_callback(lambda _metadata: delivered.__setitem__(0, delivered[0] + 1))
        futures.append(future)

    try:
        _produce_with_cuts(proxy, send, lambda: time.sleep(0.02), lambda: delivered[0])
        producer.flush(60)
        acked = [future.get(timeout=CLIENT_TIMEOUT_S).offset for future in futures]
    finally:
        producer.close(timeout=10)
    assert proxy.cuts >= CUTS_MIN, f"only {proxy.cuts} cuts hit open connections"
    assert proxy.responses_swallowed_bytes > 0, "no acknowledgement was lost: nothing retried"
    _check(*_read_back_confluent(bootstrap), acked)
