"""kcat's balanced consumer (-G) reads a topic in a group.

The full group flow with every client library is in test_client_flows.py.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

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
