"""The fixtures raftlog ships for applications' tests, used as an application would."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka import Consumer, Producer, TopicPartition

from raftlog.testing import LocalCluster

pytestmark = pytest.mark.clients


def test_confluent_kafka_round_trip_on_a_node(raftlog_node: LocalCluster) -> None:
    producer = Producer({"bootstrap.servers": raftlog_node.bootstrap, "acks": "all"})
    for index in range(100):
        producer.produce("app-events", key=b"k", value=f"event-{index}".encode())
    assert producer.flush(30) == 0
    consumer = Consumer(
        {
            "bootstrap.servers": raftlog_node.bootstrap,
            "group.id": "app",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition("app-events", 0, 0)])
    values = []
    while len(values) < 100:
        messages = consumer.consume(100, 10)
        assert messages, "no records within 10 s"
        values += [message.value() for message in messages if message.error() is None]
    consumer.close()
    assert values == [f"event-{index}".encode() for index in range(100)]


def test_aiokafka_round_trip_on_a_cluster(raftlog_cluster: LocalCluster) -> None:
    async def scenario() -> list[bytes]:
        producer = AIOKafkaProducer(bootstrap_servers=raftlog_cluster.bootstrap, acks="all")
        await producer.start()
        try:
            for index in range(50):
                await producer.send_and_wait("app-orders", f"order-{index}".encode())
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            "app-orders",
            bootstrap_servers=raftlog_cluster.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
        )
        await consumer.start()
        try:
            values: list[bytes] = []
            while len(values) < 50:
                batches = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 15)
                for records in batches.values():
                    values += [record.value for record in records]
            return values
        finally:
            await consumer.stop()

    assert asyncio.run(scenario()) == [f"order-{index}".encode() for index in range(50)]
