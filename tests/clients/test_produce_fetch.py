"""The four Kafka clients against a real node: every compression codec, keys, values and
headers, read back byte for byte by offset.

Each client produces 10,000 records in all, split evenly across the codecs it supports, to
its own topic; then reads the topic from offset 0 and compares everything it got.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition as AioTopicPartition
from confluent_kafka import Consumer, Producer, TopicPartition
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KafkaPythonTopicPartition

from raftlog.testing import LocalCluster

pytestmark = pytest.mark.clients

TOTAL_RECORDS = 10_000
CODECS = ("none", "gzip", "snappy", "lz4", "zstd")

Record = tuple[bytes | None, bytes, list[tuple[str, bytes]]]


def _records(codec: str, count: int) -> list[Record]:
    return [
        (
            None if index % 7 == 0 else f"key-{codec}-{index}".encode(),
            f"value-{codec}-{index}-".encode() * (1 + index % 5),
            [("codec", codec.encode()), ("n", str(index).encode())] if index % 3 else [],
        )
        for index in range(count)
    ]


def _per_codec() -> int:
    return TOTAL_RECORDS // len(CODECS)


def _confluent_produce(bootstrap: str, topic: str, codec: str, records: list[Record]) -> None:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "compression.type": codec,
            "linger.ms": 5,
        }
    )
    failures: list[str] = []
    for key, value, headers in records:
        producer.produce(
            topic,
            value=value,
            key=key,
            headers=headers or None,
            on_delivery=lambda error, _m: failures.append(str(error)) if error else None,
        )
        producer.poll(0)
    assert producer.flush(60) == 0
    assert failures == []


def _confluent_read(bootstrap: str, topic: str, expected: int) -> list[Record]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    got: list[Record] = []
    offsets: list[int] = []
    deadline = time.monotonic() + 60
    while len(got) < expected and time.monotonic() < deadline:
        for message in consumer.consume(1000, 0.5):
            if message.error() is None:
                got.append((message.key(), message.value(), list(message.headers() or [])))
                offsets.append(message.offset())
    consumer.close()
    assert offsets == sorted(set(offsets)), "offsets strictly increase"
    return got


def test_confluent_kafka_every_codec(raftlog_node: LocalCluster) -> None:
    expected: list[Record] = []
    for codec in CODECS:
        records = _records(codec, _per_codec())
        _confluent_produce(raftlog_node.bootstrap, "confluent", codec, records)
        expected += records
    assert _confluent_read(raftlog_node.bootstrap, "confluent", len(expected)) == expected
    low, high = Consumer(
        {"bootstrap.servers": raftlog_node.bootstrap, "group.id": "unused"}
    ).get_watermark_offsets(TopicPartition("confluent", 0), timeout=10)
    assert low == 0
    assert high >= len(expected)


def test_kafka_python_every_codec(raftlog_node: LocalCluster) -> None:
    expected: list[Record] = []
    for codec in CODECS:
        producer = KafkaProducer(
            bootstrap_servers=raftlog_node.bootstrap,
            acks="all",
            compression_type=None if codec == "none" else codec,
            linger_ms=5,
            request_timeout_ms=30_000,
        )
        records = _records(codec, _per_codec())
        futures = [
            producer.send("kpython", key=key, value=value, headers=headers)
            for key, value, headers in records
        ]
        producer.flush(60)
        for future in futures:
            future.get(timeout=60)
        producer.close(10)
        expected += records
    consumer = KafkaConsumer(
        bootstrap_servers=raftlog_node.bootstrap,
        enable_auto_commit=False,
        consumer_timeout_ms=10_000,
    )
    partition = KafkaPythonTopicPartition("kpython", 0)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    got = [
        (message.key, message.value, list(message.headers))
        for message, _ in zip(consumer, range(len(expected)), strict=False)
    ]
    assert consumer.beginning_offsets([partition])[partition] == 0
    assert consumer.end_offsets([partition])[partition] >= len(expected)
    consumer.close()
    assert got == expected


def test_aiokafka_every_codec(raftlog_node: LocalCluster) -> None:
    async def scenario() -> list[Record]:
        expected: list[Record] = []
        for codec in CODECS:
            producer = AIOKafkaProducer(
                bootstrap_servers=raftlog_node.bootstrap,
                acks="all",
                compression_type=None if codec == "none" else codec,
                linger_ms=5,
            )
            await producer.start()
            try:
                records = _records(codec, _per_codec())
                sends = [
                    await producer.send("aio", key=key, value=value, headers=headers)
                    for key, value, headers in records
                ]
                await asyncio.gather(*sends)
            finally:
                await producer.stop()
            expected += records
        consumer = AIOKafkaConsumer(
            bootstrap_servers=raftlog_node.bootstrap, enable_auto_commit=False, group_id=None
        )
        await consumer.start()
        try:
            partition = AioTopicPartition("aio", 0)
            consumer.assign([partition])
            await consumer.seek_to_beginning(partition)
            got: list[Record] = []
            while len(got) < len(expected):
                batches = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 30)
                for messages in batches.values():
                    got += [(m.key, m.value, list(m.headers)) for m in messages]
        finally:
            await consumer.stop()
        assert got == expected
        return got

    assert len(asyncio.run(scenario())) == TOTAL_RECORDS


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is not installed")
def test_kcat_every_codec(raftlog_node: LocalCluster) -> None:
    expected: list[tuple[str, str]] = []
    for codec in CODECS:
        lines = [(f"key-{codec}-{i}", f"value-{codec}-{i}") for i in range(_per_codec())]
        subprocess.run(
            ["kcat", "-b", raftlog_node.bootstrap, "-P", "-t", "kcat", "-K", ":",
             "-z", codec, "-H", f"codec={codec}", "-X", "acks=all"],
            input="\n".join(f"{key}:{value}" for key, value in lines) + "\n",
            text=True, check=True, timeout=60, capture_output=True,
        )  # fmt: skip
        expected += lines
    completed = subprocess.run(
        ["kcat", "-b", raftlog_node.bootstrap, "-C", "-t", "kcat", "-o", "beginning", "-e",
         "-f", "%k:%s:%h\n"],
        text=True, check=True, timeout=60, capture_output=True,
    )  # fmt: skip
    got = [line.split(":", 2) for line in completed.stdout.splitlines()]
    assert [(key, value) for key, value, _headers in got] == expected
    assert all(headers.startswith("codec=") for _key, _value, headers in got)
