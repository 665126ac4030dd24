"""Restarting the node between produce and fetch loses nothing that was acknowledged.

Clean stop: SIGTERM (exit code 0 required), start again on the same data directory and
port, and every record acknowledged with acks=all reads back, byte for byte, at the offset
its acknowledgement gave. Crash: SIGKILL while an acks=all producer is mid-stream; after
the restart every record whose delivery was acknowledged before the kill is there, at its
acknowledged offset (fsync=always: acknowledged means on disk). Records in flight at the
kill may or may not be there; none may appear twice or displace an acknowledged one.
"""

from __future__ import annotations

import asyncio
import time

import attrs
import pytest

from .conftest import NodeFactory, NodeProcess
from .helpers import CLIENT_TIMEOUT_S, Rec, assert_same_records, make_records, normalize_headers

pytestmark = pytest.mark.clients

TOPIC = "durable"


def _read_all(bootstrap: str) -> tuple[list[Rec], list[int]]:
    """Every record of partition 0, read from offset 0 to the high watermark."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "restart-reader",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    records: list[Rec] = []
    offsets: list[int] = []
    try:
        consumer.assign([TopicPartition(TOPIC, 0, 0)])
        deadline = time.monotonic() + CLIENT_TIMEOUT_S
        at_end = False
        while not at_end and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.5):
                error = message.error()
                if error is not None:
                    assert error.code() == KafkaError._PARTITION_EOF, error
                    at_end = True
                    continue
                records.append(
                    Rec(message.key(), message.value(), normalize_headers(message.headers()))
                )
                offsets.append(message.offset())
        assert at_end, "did not reach the end of the partition"
    finally:
        consumer.close()
    return records, offsets


def _read_all_kafka_python(bootstrap: str, count: int) -> tuple[list[Rec], list[int]]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        consumer_timeout_ms=int(CLIENT_TIMEOUT_S * 1000),
        request_timeout_ms=10_000,
    )
    records: list[Rec] = []
    offsets: list[int] = []
    try:
        partition = TopicPartition(TOPIC, 0)
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        for message in consumer:
            records.append(Rec(message.key, message.value, normalize_headers(message.headers)))
            offsets.append(message.offset)
            if len(records) == count:
                break
    finally:
        consumer.close()
    return records, offsets


def _read_all_aiokafka(bootstrap: str, count: int) -> tuple[list[Rec], list[int]]:
    async def read() -> tuple[list[Rec], list[int]]:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, request_timeout_ms=10_000
        )
        await consumer.start()
        records: list[Rec] = []
        offsets: list[int] = []
        try:
            partition = TopicPartition(TOPIC, 0)
            consumer.assign([partition])
            await consumer.seek_to_beginning(partition)
            while len(records) < count:
                batches = await consumer.getmany(partition, timeout_ms=500)
                for message in batches.get(partition, []):
                    records.append(
                        Rec(message.key, message.value, normalize_headers(message.headers))
                    )
                    offsets.append(message.offset)
        finally:
            await consumer.stop()
        return records, offsets

    return asyncio.run(asyncio.wait_for(read(), CLIENT_TIMEOUT_S))


def test_sigterm_restart_keeps_every_acknowledged_record(node: NodeProcess) -> None:
    from confluent_kafka import Producer

    records = make_records(5_000, seed=10)
    producer = Producer(
        {"bootstrap.servers": node.bootstrap, "acks": "all", "linger.ms": 5,
         "compression.type": "lz4", "message.timeout.ms": 20_000}
    )
    acked: list[int] = []

    def report(error: object, message: object) -> None:
        assert error is None, error
        acked.append(message.offset())  # type: ignore[attr-defined]

    for record in records:
        producer.produce(
            TOPIC, key=record.key, value=record.value, headers=list(record.headers),
            partition=0, on_delivery=report,
        )
        producer.poll(0)
    assert producer.flush(CLIENT_TIMEOUT_S) == 0
    assert len(acked) == len(records)

    assert node.stop() == 0, "unclean exit on SIGTERM"
    node.start()

    assert_same_records(records, *_read_all(node.bootstrap), acked)
    assert_same_records(records, *_read_all_kafka_python(node.bootstrap, len(records)), acked)

    # The restarted node takes new writes after the old ones (a new idempotent producer).
    more = make_records(100, seed=11)
    producer = Producer({"bootstrap.servers": node.bootstrap, "enable.idempotence": True})
    for record in more:
        producer.produce(
            TOPIC, key=record.key, value=record.value, headers=list(record.headers),
            partition=0, on_delivery=report,
        )
    assert producer.flush(CLIENT_TIMEOUT_S) == 0
    # The log now has the restarted leader's NOOP (a control batch) between the two runs:
    # every client must step over it.
    assert_same_records(records + more, *_read_all(node.bootstrap), acked)
    everything = len(records) + len(more)
    assert_same_records(records + more, *_read_all_kafka_python(node.bootstrap, everything), acked)
    assert_same_records(records + more, *_read_all_aiokafka(node.bootstrap, everything), acked)


def test_sigkill_keeps_every_record_acknowledged_before_the_kill(
    node_factory: NodeFactory,
) -> None:
    from confluent_kafka import Producer

    node = node_factory()
    # Unique keys name each record (make_records' values may repeat: empty, null).
    records = [
        attrs.evolve(record, key=b"key-%06d" % i)
        for i, record in enumerate(make_records(30_000, seed=20))
    ]
    kill_after_acks = 3_000
    producer = Producer(
        {
            "bootstrap.servers": node.bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 2,
            "batch.num.messages": 250,
            "message.timeout.ms": 3_000,
        }
    )
    acked_before_kill: dict[int, Rec] = {}
    killed = False
    by_key = {record.key: record for record in records}

    def report(error: object, message: object) -> None:
        if error is None and not killed:
            acked_before_kill[message.offset()] = by_key[message.key()]  # type: ignore[attr-defined]

    sent = 0
    deadline = time.monotonic() + CLIENT_TIMEOUT_S
    while len(acked_before_kill) < kill_after_acks and time.monotonic() < deadline:
        for record in records[sent : sent + 500]:
            producer.produce(
                TOPIC, key=record.key, value=record.value, headers=list(record.headers),
                partition=0, on_delivery=report,
            )
        sent += 500
        producer.poll(0.01)
    assert len(acked_before_kill) >= kill_after_acks, "the producer made no progress"
    # Acks are only seen in poll(), so kill between polls: every ack counted came before.
    node.kill()
    killed = True
    assert sent > len(acked_before_kill), "nothing was in flight at the kill"
    producer.flush(10)  # what was in flight fails (message.timeout.ms) against a dead node

    node.start()
    read, offsets = _read_all(node.bootstrap)
    present = dict(zip(offsets, read, strict=True))
    missing = [offset for offset in acked_before_kill if present.get(offset) is None]
    assert not missing, f"{len(missing)} acknowledged records lost, first at {missing[:5]}"
    for offset, record in acked_before_kill.items():
        assert present[offset] == record, f"offset {offset} holds another record"
    keys = [record.key for record in read]
    assert len(keys) == len(set(keys)), "a record appears twice after the crash"


def test_idempotent_producer_rides_through_crashes_exactly_once(node: NodeProcess) -> None:
    """SIGKILL the node twice while an idempotent producer streams; it reconnects to the
    restarted node, whose producer state was rebuilt from the log, and resends what it
    never heard back about: the log must end up with every value once, in order."""
    from confluent_kafka import Producer

    count = 12_000
    kill_at = (3_000, 7_000)
    producer = Producer(
        {
            "bootstrap.servers": node.bootstrap,
            "enable.idempotence": True,
            "linger.ms": 2,
            "batch.num.messages": 100,
            "message.timeout.ms": 60_000,
            "reconnect.backoff.ms": 50,
            "reconnect.backoff.max.ms": 500,
        }
    )
    acked: list[int] = []
    errors: list[object] = []

    def report(error: object, message: object) -> None:
        if error is not None:
            errors.append(error)
        else:
            acked.append(message.offset())  # type: ignore[attr-defined]

    in_flight_at_kill = []
    for i in range(count):
        producer.produce(TOPIC, value=b"%06d" % i, partition=0, on_delivery=report)
        if i % 500 == 0:
            producer.poll(0.01)
        if i in kill_at:
            in_flight_at_kill.append(i + 1 - len(acked))
            node.kill()
            node.start()
    assert producer.flush(60) == 0, "records left undelivered"
    assert errors == []
    assert all(pending > 0 for pending in in_flight_at_kill), in_flight_at_kill
    records, offsets = _read_all(node.bootstrap)
    assert [r.value for r in records] == [b"%06d" % i for i in range(count)]
    assert offsets == sorted(acked)


def test_consumers_ride_through_a_restart(node: NodeProcess) -> None:
    """Consumers keep their position across a node restart: they reconnect, meet the new
    leader epoch (the restarted node's term), and read on without gaps or repeats."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka import TopicPartition as AioPartition
    from confluent_kafka import Consumer, Producer, TopicPartition
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KafkaPartition

    def produce(low: int, high: int) -> None:
        producer = Producer({"bootstrap.servers": node.bootstrap, "linger.ms": 2})
        for i in range(low, high):
            producer.produce(TOPIC, value=b"%06d" % i, partition=0)
        assert producer.flush(CLIENT_TIMEOUT_S) == 0

    produce(0, 1_000)
    confluent = Consumer(
        {"bootstrap.servers": node.bootstrap, "group.id": "ride", "enable.auto.commit": False,
         "auto.offset.reset": "error"}
    )
    confluent.assign([TopicPartition(TOPIC, 0, 0)])
    kafka_python = KafkaConsumer(
        bootstrap_servers=node.bootstrap, enable_auto_commit=False, request_timeout_ms=10_000
    )
    kafka_python.assign([KafkaPartition(TOPIC, 0)])
    kafka_python.seek(KafkaPartition(TOPIC, 0), 0)
    loop = asyncio.new_event_loop()  # aiokafka runs only inside run_until_complete

    async def started() -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=node.bootstrap, enable_auto_commit=False, request_timeout_ms=10_000
        )
        await consumer.start()
        consumer.assign([AioPartition(TOPIC, 0)])
        consumer.seek(AioPartition(TOPIC, 0), 0)
        return consumer

    aio = loop.run_until_complete(started())
    got: dict[str, list[bytes]] = {"confluent": [], "kafka-python": [], "aiokafka": []}

    def drain(wanted: int) -> None:
        deadline = time.monotonic() + CLIENT_TIMEOUT_S
        while min(map(len, got.values())) < wanted and time.monotonic() < deadline:
            for message in confluent.consume(500, 0.1):
                assert message.error() is None, message.error()
                got["confluent"].append(message.value())
            for messages in kafka_python.poll(timeout_ms=100).values():
                got["kafka-python"] += [message.value for message in messages]
            batches = loop.run_until_complete(aio.getmany(timeout_ms=100))
            for messages in batches.values():
                got["aiokafka"] += [message.value for message in messages]

    try:
        drain(1_000)
        assert node.stop() == 0
        node.start()
        produce(1_000, 2_000)
        drain(2_000)
    finally:
        confluent.close()
        kafka_python.close()
        loop.run_until_complete(aio.stop())
        loop.close()
    expected = [b"%06d" % i for i in range(2_000)]
    for client, values in got.items():
        assert values == expected, f"{client}: {len(values)} values, first {values[:2]}"
