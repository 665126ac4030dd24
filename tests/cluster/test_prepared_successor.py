"""A head segment's successor is made before the seal, so a roll never waits for a new group.

Three nodes, tiny segments, continuous acks=all produce through confluent-kafka: every roll
must link a successor that was created (`segment_prepared`) before its head proposed the
seal (`segment_sealing`), and every record must read back in order. The longest gap between
two delivery reports is logged as the produce stall across rolls (measured, not asserted:
timings belong to benches/).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import pathlib
import re
import time

import aiokafka
import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer
from kafka import TopicPartition as KafkaPythonTopicPartition

from raftlog.testing import LocalCluster

pytestmark = pytest.mark.clients

SEGMENT_BYTES = "150000"
RECORDS = 8000
TOPIC = "rolling"
_FIELD = re.compile(r"(\w+)=(\S+)")


def _events(path: pathlib.Path, name: str) -> list[tuple[int, dict[str, str]]]:
    """(line number, fields) of every `event=name` line of a node's log."""
    found = []
    for number, line in enumerate(path.read_text().splitlines()):
        if f"event={name} " in line or line.endswith(f"event={name}"):
            found.append((number, dict(_FIELD.findall(line))))
    return found


def _produce_timed(bootstrap: str) -> tuple[float, str]:
    """Produce RECORDS records; returns the longest gap (s) between delivery reports and
    the wall-clock time it began (to match against the nodes' logs)."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 2,
            "batch.size": 16384,
            "message.timeout.ms": 60_000,
        }
    )
    # Warm up first: the topic's first metadata (a node that does not host it yet answers
    # with no leader, and librdkafka waits a second to ask again) is not a roll.
    producer.produce(TOPIC, b"warm-up")
    assert producer.flush(30) == 0
    delivered: list[float] = []
    failures: list[str] = []

    def report(error: object, _message: object) -> None:
        if error:
            failures.append(str(error))
        else:
            delivered.append(time.time())

    for index in range(RECORDS):
        while True:
            try:
                producer.produce(TOPIC, f"record-{index:06d}".encode() * 8, on_delivery=report)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
        if index % 200 == 0:
            time.sleep(0.01)  # a steady stream rather than one burst
    assert producer.flush(60) == 0
    assert failures == []
    gap, began = max((b - a, a) for a, b in itertools.pairwise(delivered))
    return gap, time.strftime("%H:%M:%S", time.gmtime(began)) + f".{int(began % 1 * 1000):03d}Z"


def _read_all(bootstrap: str) -> list[bytes]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(TOPIC, 0, 0)])
    values: list[bytes] = []
    deadline = time.monotonic() + 40
    while len(values) < RECORDS + 1 and time.monotonic() < deadline:
        for message in consumer.consume(1000, 0.5):
            if message.error() is None:
                values.append(message.value())
            elif message.error().code() != KafkaError._PARTITION_EOF:
                raise AssertionError(message.error())
    consumer.close()
    assert values[:1] == [b"warm-up"]
    return values[1:]


def _read_kafka_python(bootstrap: str) -> list[bytes]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), enable_auto_commit=False)
    try:
        partition = KafkaPythonTopicPartition(TOPIC, 0)
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        high = consumer.end_offsets([partition])[partition]
        values: list[bytes] = []
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and consumer.position(partition) < high:
            for messages in consumer.poll(timeout_ms=500).values():
                values.extend(message.value for message in messages)
        return values
    finally:
        consumer.close()


def _read_aiokafka(bootstrap: str) -> list[bytes]:
    """aiokafka in its own thread (asyncio stays out of the test's thread)."""

    async def read() -> list[bytes]:
        consumer = aiokafka.AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            partition = aiokafka.TopicPartition(TOPIC, 0)
            consumer.assign([partition])
            await consumer.seek_to_beginning(partition)
            high = (await consumer.end_offsets([partition]))[partition]
            values: list[bytes] = []
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline and await consumer.position(partition) < high:
                batches = await consumer.getmany(timeout_ms=500)
                for messages in batches.values():
                    values.extend(message.value for message in messages)
            return values
        finally:
            await consumer.stop()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, read()).result(timeout=90)


def test_rolls_link_successors_made_before_the_seal(tmp_path: pathlib.Path) -> None:
    arguments = ("--segment-bytes", SEGMENT_BYTES)
    with LocalCluster(tmp_path, nodes=3, extra_arguments=arguments) as cluster:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin.create_topics([NewTopic(TOPIC, 1, 3)])[TOPIC].result(30)
        stall_s, began = _produce_timed(cluster.bootstrap)
        measured = f"max produce stall across segment rolls: {stall_s * 1000:.1f} ms at {began}"
        logging.getLogger(__name__).warning(measured)
        print(measured)
        expected = [f"record-{index:06d}".encode() * 8 for index in range(RECORDS)]
        assert _read_all(cluster.bootstrap) == expected
        # The SEAL batches span the offsets each head left unused: every client skips them.
        assert _read_kafka_python(cluster.bootstrap) == [b"warm-up", *expected]
        assert _read_aiokafka(cluster.bootstrap) == [b"warm-up", *expected]
        prepared_links = 0
        sealed_after_made: dict[str, bool] = {}
        for member in cluster.members:
            path = member.log_path
            prepared = {
                fields["group"]: (line, fields)
                for line, fields in _events(path, "segment_prepared")
                if fields.get("topic") == TOPIC
            }
            for line, fields in _events(path, "segment_linked"):
                if fields.get("topic") != TOPIC or fields.get("prepared") != "True":
                    continue
                prepared_links += 1
                sealed_after_made.setdefault(fields["sealed_group"], False)
                made = prepared.get(fields["group"])
                assert made is not None and made[0] < line, "linked before it was made"
            for line, fields in _events(path, "segment_sealing"):
                ahead = [
                    at for at, info in prepared.values() if info["head_group"] == fields["group"]
                ]
                if ahead and all(at < line for at in ahead):
                    sealed_after_made[fields["group"]] = True
        # Each head that linked a successor made ahead proposed its (committed) seal after
        # that successor was created; a seal proposed earlier by a leader that then lost
        # its leadership may show up before it in that node's log.
        assert sealed_after_made and all(sealed_after_made.values()), sealed_after_made
        rolls = len(_events(cluster.members[0].log_path, "segment_linked"))
        assert rolls >= 3, "segments rolled"
        # Every node logs each link: at least one roll linked a successor made ahead.
        assert prepared_links >= 3, f"{prepared_links} prepared links over {rolls} rolls"
        print(f"rolls: {rolls}, linked a successor made ahead: {prepared_links // 3}")
