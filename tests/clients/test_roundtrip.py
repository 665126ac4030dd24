"""Each real client creates a topic, produces in every codec it supports, and reads back.

Per client: CreateTopics through its admin API (kcat has none: the node auto-creates the
topic on kcat's first Metadata request), then RECORDS_PER_CODEC records in each of none,
gzip, snappy, lz4 and zstd (10,000 records per client in all), each codec from a fresh
producer, so every codec lands in its own batches. Then one consumer assigned to the
partition from the beginning reads everything back, and the records are compared byte
for byte: keys, values, headers, order, and offsets strictly increasing and equal to the
offsets the producer's acknowledgements reported. The log also holds our own control
batches (the leader's NOOP at offset 0), which every client must skip.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import NodeProcess
from .helpers import (
    CLIENT_TIMEOUT_S,
    CODECS,
    Rec,
    assert_same_records,
    make_records,
    normalize_headers,
)

pytestmark = pytest.mark.clients

RECORDS_PER_CODEC = 10_000
TOPIC = "roundtrip"


def _slices(records: list[Rec]) -> list[tuple[str, list[Rec]]]:
    return [
        (codec, records[i * RECORDS_PER_CODEC : (i + 1) * RECORDS_PER_CODEC])
        for i, codec in enumerate(CODECS)
    ]


def test_confluent_kafka(bootstrap: str) -> None:
    from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(TOPIC, 1, 1)], request_timeout=CLIENT_TIMEOUT_S)
    assert futures[TOPIC].result(timeout=CLIENT_TIMEOUT_S) is None

    records = make_records(RECORDS_PER_CODEC * len(CODECS), seed=1)
    acked: list[int] = []
    for codec, chunk in _slices(records):
        producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "compression.type": codec,
                "enable.idempotence": True,
                "linger.ms": 5,
                "message.timeout.ms": int(CLIENT_TIMEOUT_S * 1000),
            }
        )
        reports: list[tuple[object, int]] = []

        def report(error: object, message: object, reports: list = reports) -> None:
            # One partition: librdkafka reports deliveries in produce order.
            reports.append((error, message.offset()))  # type: ignore[attr-defined]

        for record in chunk:
            producer.produce(
                TOPIC,
                key=record.key,
                value=record.value,
                headers=list(record.headers),
                partition=0,
                on_delivery=report,
            )
            producer.poll(0)
        assert producer.flush(CLIENT_TIMEOUT_S) == 0, f"{codec}: undelivered records"
        assert len(reports) == len(chunk)
        assert all(error is None for error, _ in reports), f"{codec}: {reports[:3]}"
        acked += [offset for _, offset in reports]

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "roundtrip-reader",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        consumer.assign([TopicPartition(TOPIC, 0, 0)])
        consumed: list[Rec] = []
        offsets: list[int] = []
        deadline = time.monotonic() + CLIENT_TIMEOUT_S
        while len(consumed) < len(records) and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.5):
                error = message.error()
                if error is not None:
                    assert error.code() == KafkaError._PARTITION_EOF, error
                    continue
                consumed.append(
                    Rec(message.key(), message.value(), normalize_headers(message.headers()))
                )
                offsets.append(message.offset())
    finally:
        consumer.close()
    assert_same_records(records, consumed, offsets, acked)


def test_kafka_python(bootstrap: str) -> None:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        admin.create_topics([NewTopic(TOPIC, 1, 1)], timeout_ms=10_000)
    finally:
        admin.close()

    records = make_records(RECORDS_PER_CODEC * len(CODECS), seed=2)
    acked: list[int] = []
    for codec, chunk in _slices(records):
        # kafka-python 3 producers are idempotent (and acks=all) by default: keep it so.
        producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            compression_type=None if codec == "none" else codec,
            linger_ms=5,
            request_timeout_ms=10_000,
        )
        assert producer.config["enable_idempotence"], "kafka-python 3 default changed"
        try:
            futures = [
                producer.send(
                    TOPIC, key=r.key, value=r.value, headers=list(r.headers), partition=0
                )
                for r in chunk
            ]
            producer.flush(CLIENT_TIMEOUT_S)
            acked += [future.get(timeout=CLIENT_TIMEOUT_S).offset for future in futures]
        finally:
            producer.close(timeout=10)

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        consumer_timeout_ms=int(CLIENT_TIMEOUT_S * 1000),
        request_timeout_ms=10_000,
    )
    try:
        partition = TopicPartition(TOPIC, 0)
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        consumed: list[Rec] = []
        offsets: list[int] = []
        for message in consumer:
            consumed.append(Rec(message.key, message.value, normalize_headers(message.headers)))
            offsets.append(message.offset)
            if len(consumed) == len(records):
                break
    finally:
        consumer.close()
    assert_same_records(records, consumed, offsets, acked)


def test_aiokafka(bootstrap: str) -> None:
    asyncio.run(asyncio.wait_for(_aiokafka_roundtrip(bootstrap), 4 * CLIENT_TIMEOUT_S))


async def _aiokafka_roundtrip(bootstrap: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(TOPIC, 1, 1)], timeout_ms=10_000)
        assert [error for _, error, *_ in response.topic_errors] == [0], response
    finally:
        await admin.close()

    records = make_records(RECORDS_PER_CODEC * len(CODECS), seed=3)
    acked: list[int] = []
    for codec, chunk in _slices(records):
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            compression_type=None if codec == "none" else codec,
            enable_idempotence=True,
            linger_ms=5,
            request_timeout_ms=10_000,
        )
        await producer.start()
        try:
            futures = [
                await producer.send(
                    TOPIC, key=r.key, value=r.value, headers=list(r.headers), partition=0
                )
                for r in chunk
            ]
            metadata = await asyncio.gather(*futures)
            acked += [m.offset for m in metadata]
        finally:
            await producer.stop()

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, request_timeout_ms=10_000
    )
    await consumer.start()
    try:
        partition = TopicPartition(TOPIC, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        consumed: list[Rec] = []
        offsets: list[int] = []
        while len(consumed) < len(records):
            batches = await asyncio.wait_for(
                consumer.getmany(partition, timeout_ms=500), CLIENT_TIMEOUT_S
            )
            for message in batches.get(partition, []):
                consumed.append(
                    Rec(message.key, message.value, normalize_headers(message.headers))
                )
                offsets.append(message.offset)
    finally:
        await consumer.stop()
    assert_same_records(records, consumed, offsets, acked)


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is not installed")
def test_kcat(node: NodeProcess, tmp_path: Path) -> None:
    """kcat has no admin API: the first produce auto-creates the topic (node flag on)."""
    records = make_records(RECORDS_PER_CODEC * len(CODECS), seed=4, text=True)
    produced: list[Rec] = []
    for codec, chunk in _slices(records):
        headers = ((f"codec-{codec}", codec.encode()), ("trace", b"\xc3\xa9t\xc3\xa9"))
        lines = tmp_path / f"{codec}.txt"
        lines.write_bytes(b"".join(r.key + b":" + r.value + b"\n" for r in chunk))  # type: ignore[operator]
        subprocess.run(
            [
                "kcat", "-P", "-b", node.bootstrap, "-t", TOPIC, "-p", "0",
                "-K", ":", "-z", codec, "-l", str(lines),
                *[arg for name, value in headers for arg in ("-H", f"{name}={value.decode()}")],
                "-X", "message.timeout.ms=20000",
                "-X", "enable.idempotence=true",
            ],
            check=True,
            timeout=CLIENT_TIMEOUT_S,
            capture_output=True,
        )
        produced += [Rec(r.key, r.value, headers) for r in chunk]

    output = subprocess.run(
        [
            "kcat", "-C", "-b", node.bootstrap, "-t", TOPIC, "-p", "0",
            "-o", "beginning", "-e", "-J",
            "-X", "fetch.wait.max.ms=100",
        ],
        check=True,
        timeout=CLIENT_TIMEOUT_S,
        capture_output=True,
    ).stdout
    consumed: list[Rec] = []
    offsets: list[int] = []
    for line in output.splitlines():
        message = json.loads(line)
        names_values = message.get("headers") or []
        headers = tuple(
            (names_values[i], names_values[i + 1].encode())
            for i in range(0, len(names_values), 2)
        )
        consumed.append(Rec(message["key"].encode(), message["payload"].encode(), headers))
        offsets.append(message["offset"])
    assert_same_records(produced, consumed, offsets)


def test_keyed_records_across_partitions(bootstrap: str) -> None:
    """A 3-partition topic: each client's partitioner spreads keys over the partitions,
    every key stays in one partition, in order, and everything reads back."""
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic
    from kafka import KafkaProducer

    topic, partitions = "keyed", 3
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, partitions, 1)])
    assert futures[topic].result(timeout=CLIENT_TIMEOUT_S) is None

    sent: list[tuple[bytes, bytes]] = []
    confluent = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(3_000):
        key, value = b"key-%02d" % (i % 40), b"confluent-%05d" % i
        confluent.produce(topic, key=key, value=value)
        sent.append((key, value))
    assert confluent.flush(CLIENT_TIMEOUT_S) == 0
    kafka_python = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    try:
        for i in range(3_000):
            key, value = b"key-%02d" % (i % 40), b"kafka-python-%05d" % i
            kafka_python.send(topic, key=key, value=value)
            sent.append((key, value))
        kafka_python.flush(CLIENT_TIMEOUT_S)
    finally:
        kafka_python.close(timeout=10)

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "keyed", "enable.auto.commit": False}
    )
    by_partition: dict[int, list[tuple[bytes, bytes]]] = {}
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        deadline = time.monotonic() + CLIENT_TIMEOUT_S
        while sum(map(len, by_partition.values())) < len(sent) and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.5):
                assert message.error() is None, message.error()
                by_partition.setdefault(message.partition(), []).append(
                    (message.key(), message.value())
                )
    finally:
        consumer.close()
    assert len(by_partition) == partitions, "keys not spread over every partition"
    homes: dict[bytes, set[int]] = {}
    for partition, records in by_partition.items():
        for key, _ in records:
            homes.setdefault(key, set()).add(partition)
    producers = ("confluent", "kafka-python")
    for producer in producers:  # each producer keeps one key in one partition
        prefix = producer.encode() + b"-"
        for key in homes:
            used = {
                partition
                for partition, records in by_partition.items()
                if any(k == key and v.startswith(prefix) for k, v in records)
            }
            assert len(used) == 1, (producer, key, used)
    read = sorted(record for records in by_partition.values() for record in records)
    assert read == sorted(sent)
    for key in homes:  # and per key, every value in the order it was sent
        expected = [value for k, value in sent if k == key]
        got = [v for records in by_partition.values() for k, v in records if k == key]
        assert sorted(got) == sorted(expected)
        for producer in producers:
            mine = [v for v in got if v.startswith(producer.encode())]
            assert mine == [v for v in expected if v.startswith(producer.encode())], key
