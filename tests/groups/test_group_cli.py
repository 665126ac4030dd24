"""`raftlog group list|describe` against a real node with a real consumer group."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from raftlog.testing import LocalCluster

pytestmark = pytest.mark.clients


def _raftlog(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "raftlog.cli", *arguments],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_group_list_and_describe_show_members_offsets_and_lag(
    raftlog_node: LocalCluster,
) -> None:
    bootstrap = raftlog_node.bootstrap
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic("shown", num_partitions=2)])["shown"].result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for index in range(100):
        producer.produce("shown", str(index).encode(), partition=index % 2)
    assert producer.flush(30) == 0
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "viewers", "auto.offset.reset": "earliest",
         "enable.auto.commit": False, "session.timeout.ms": 6000}
    )  # fmt: skip
    consumer.subscribe(["shown"])
    consumed = 0
    deadline = time.monotonic() + 30
    while consumed < 60 and time.monotonic() < deadline:
        consumed += len([m for m in consumer.consume(10, 0.5) if m.error() is None])
    consumer.commit(asynchronous=False)
    try:
        listed = _raftlog("group", "list", "--bootstrap", bootstrap, "--format", "json")
        assert listed.returncode == 0, listed.stderr
        assert [row["group"] for row in json.loads(listed.stdout)] == ["viewers"]

        described = _raftlog("group", "describe", "viewers", "--bootstrap", bootstrap)
        assert described.returncode == 0, described.stderr
        assert "state Stable" in described.stdout
        document = json.loads(
            _raftlog("group", "describe", "viewers", "--bootstrap", bootstrap,
                     "--format", "json").stdout
        )  # fmt: skip
        rows = {row["partition"]: row for row in document["partitions"]}
        assert set(rows) == {0, 1}
        # Lag = end - committed = exactly the records not yet consumed (offsets also hold
        # each partition's leader NOOP control batch, which is not a record).
        assert sum(row["lag"] for row in rows.values()) == 100 - consumed
        assert all(row["committed"] > 0 for row in rows.values())
        assert all(row["member"] for row in rows.values())
    finally:
        consumer.close()


def test_group_commands_say_when_no_node_answers() -> None:
    result = _raftlog("group", "list", "--bootstrap", "127.0.0.1:1")
    assert result.returncode == 1
    assert "no node at 127.0.0.1:1" in result.stderr
    assert "raftlog serve" in result.stderr
