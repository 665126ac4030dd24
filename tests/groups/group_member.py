"""One consumer-group member in its own process, so a test can SIGKILL it like a crash.

    python group_member.py CLIENT BOOTSTRAP GROUP TOPIC OUT_FILE

CLIENT is confluent, kafka-python or aiokafka. The member subscribes, and after every
non-empty poll commits synchronously. It appends to OUT_FILE, flushed line by line:
`m PARTITION OFFSET VALUE` for each record consumed and `c PARTITION OFFSET` for each
offset a commit stored. SIGTERM makes it commit and leave the group cleanly.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Iterable
from typing import TextIO

SESSION_TIMEOUT_MS = 6000
HEARTBEAT_MS = 500
stopping = False


def _on_sigterm(_signum: int, _frame: object) -> None:
    global stopping
    stopping = True


def _record(out: TextIO, consumed: Iterable[tuple[int, int, bytes]]) -> dict[int, int]:
    """Write consumed records; return the next offset to commit per partition."""
    positions: dict[int, int] = {}
    for partition, offset, value in consumed:
        out.write(f"m {partition} {offset} {value.decode()}\n")
        positions[partition] = offset + 1
    out.flush()
    return positions


def _committed(out: TextIO, positions: dict[int, int]) -> None:
    for partition, offset in sorted(positions.items()):
        out.write(f"c {partition} {offset}\n")
    out.flush()


def run_confluent(bootstrap: str, group: str, topic: str, out: TextIO) -> None:
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": SESSION_TIMEOUT_MS,
            "heartbeat.interval.ms": HEARTBEAT_MS,
        }
    )
    consumer.subscribe([topic])
    while not stopping:
        messages = [m for m in consumer.consume(200, 0.2) if m.error() is None]
        positions = _record(out, ((m.partition(), m.offset(), m.value()) for m in messages))
        if not positions:
            continue
        offsets = [TopicPartition(topic, p, o) for p, o in positions.items()]
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException:
            continue  # a rebalance refused it: those records will come again
        _committed(out, positions)
    consumer.close()


def run_kafka_python(bootstrap: str, group: str, topic: str, out: TextIO) -> None:
    from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
    from kafka.errors import KafkaError

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=HEARTBEAT_MS,
    )
    while not stopping:
        batches = consumer.poll(timeout_ms=200)
        records = [r for records in batches.values() for r in records]
        positions = _record(out, ((r.partition, r.offset, r.value) for r in records))
        if not positions:
            continue
        offsets = {
            TopicPartition(topic, p): OffsetAndMetadata(o, "", -1) for p, o in positions.items()
        }
        try:
            consumer.commit(offsets)
        except KafkaError:
            continue
        _committed(out, positions)
    consumer.close()


def run_aiokafka(bootstrap: str, group: str, topic: str, out: TextIO) -> None:
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.errors import KafkaError

    async def member() -> None:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=HEARTBEAT_MS,
        )
        await consumer.start()
        try:
            while not stopping:
                batches = await consumer.getmany(timeout_ms=200)
                records = [r for records in batches.values() for r in records]
                positions = _record(out, ((r.partition, r.offset, r.value) for r in records))
                if not positions:
                    continue
                offsets = {TopicPartition(topic, p): o for p, o in positions.items()}
                try:
                    await consumer.commit(offsets)
                except KafkaError:
                    continue
                _committed(out, positions)
        finally:
            await consumer.stop()

    asyncio.run(member())


RUNNERS = {"confluent": run_confluent, "kafka-python": run_kafka_python, "aiokafka": run_aiokafka}


def main() -> None:
    client, bootstrap, group, topic, path = sys.argv[1:6]
    signal.signal(signal.SIGTERM, _on_sigterm)
    with open(path, "a", encoding="utf-8") as out:
        RUNNERS[client](bootstrap, group, topic, out)


if __name__ == "__main__":
    main()
