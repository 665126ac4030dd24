"""Consumer groups with the real clients: subscribe, rebalance, commit, resume."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time

import pytest
from aiokafka import AIOKafkaConsumer
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer

from raftlog.testing import LocalCluster

pytestmark = pytest.mark.clients
PARTITIONS = 6
RECORDS = 3000


def _topic_with_records(bootstrap: str, topic: str, start: int = 0) -> list[bytes]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    if topic not in admin.list_topics(timeout=10).topics:
        admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS)])[topic].result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    values = [f"{topic}-{index}".encode() for index in range(start, start + RECORDS)]
    for index, value in enumerate(values):
        producer.produce(topic, value, key=str(index).encode())
    assert producer.flush(30) == 0
    return values


def _confluent_member(bootstrap: str, group: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
        }
    )


REBALANCE_ERRORS = ("REBALANCE_IN_PROGRESS", "ILLEGAL_GENERATION", "UNKNOWN_MEMBER_ID")


def _commit(consumer: Consumer) -> None:
    """Commit; a commit that a rebalance interrupts fails, and its records come again."""
    try:
        consumer.commit(asynchronous=False)
    except KafkaException as error:
        expected = ("No offset stored", *REBALANCE_ERRORS)
        if not any(reason in str(error) for reason in expected):
            raise


def test_confluent_group_rebalances_commits_and_resumes(raftlog_node: LocalCluster) -> None:
    bootstrap = raftlog_node.bootstrap
    values = _topic_with_records(bootstrap, "orders")
    members = [_confluent_member(bootstrap, "billing") for _ in range(3)]
    for member in members:
        member.subscribe(["orders"])
    seen: list[bytes] = []
    deadline = time.monotonic() + 60
    joined_fourth = False
    while len(set(seen)) < len(values) and time.monotonic() < deadline:
        for member in members:
            seen += [m.value() for m in member.consume(200, 0.1) if m.error() is None]
            _commit(member)
        if not joined_fourth and len(seen) > RECORDS // 3:
            members.append(_confluent_member(bootstrap, "billing"))
            members[-1].subscribe(["orders"])
            members.pop(0).close()  # one leaves cleanly while another joins
            joined_fourth = True
    assert set(seen) == set(values), "every record consumed across the rebalances"
    duplicates = len(seen) - len(set(seen))
    for member in members:  # commit everywhere first: a close starts a rebalance
        _commit(member)
    for member in members:
        member.close()

    # The whole group restarts: consumption resumes at the committed offsets. Nothing may be
    # skipped; records consumed after a member's last successful commit (a rebalance can
    # refuse a commit) come again, and are counted, as Kafka's at-least-once promises.
    more = _topic_with_records(bootstrap, "orders", start=RECORDS)
    resumed = _confluent_member(bootstrap, "billing")
    resumed.subscribe(["orders"])
    again: list[bytes] = []
    deadline = time.monotonic() + 30
    while not set(more) <= set(again) and time.monotonic() < deadline:
        again += [m.value() for m in resumed.consume(500, 0.2) if m.error() is None]
    resumed.close()
    assert set(more) <= set(again), "nothing skipped after the restart"
    redelivered = [value for value in again if value not in set(more)]
    assert set(redelivered) <= set(values), "only earlier records come again"
    assert duplicates + len(redelivered) < len(values), (duplicates, len(redelivered))

def test_kafka_python_and_aiokafka_resume_from_committed(raftlog_node: LocalCluster) -> None:
    bootstrap = raftlog_node.bootstrap
    values = _topic_with_records(bootstrap, "events")
    consumer = KafkaConsumer(
        "events",
        bootstrap_servers=bootstrap,
        group_id="py-group",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=10_000,
    )
    first_half = []
    for message in consumer:
        first_half.append(message.value)
        if len(first_half) == RECORDS // 2:
            break
    consumer.commit()
    consumer.close()

    async def rest() -> list[bytes]:
        aio = AIOKafkaConsumer(
            "events",
            bootstrap_servers=bootstrap,
            group_id="py-group",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await aio.start()
        got: list[bytes] = []
        try:
            deadline = time.monotonic() + 30
            while len(got) < RECORDS - len(first_half) and time.monotonic() < deadline:
                batches = await aio.getmany(timeout_ms=500)
                for records in batches.values():
                    got += [record.value for record in records]
            await aio.commit()
        finally:
            await aio.stop()
        return got

    second_half = asyncio.run(rest())
    assert sorted(first_half + second_half) == sorted(values), "resumed at the committed offsets"


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is not installed")
def test_kcat_balanced_consumer(raftlog_node: LocalCluster) -> None:
    values = _topic_with_records(raftlog_node.bootstrap, "logs")
    completed = subprocess.run(
        ["kcat", "-b", raftlog_node.bootstrap, "-G", "kcat-group", "logs",
         "-o", "beginning", "-c", str(RECORDS), "-f", "%s\n",
         "-X", "session.timeout.ms=6000"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert sorted(completed.stdout.split()) == sorted(value.decode() for value in values)
