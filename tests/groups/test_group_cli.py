"""`raftlog group list|describe|reset-offsets|delete` against a real node and group."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from raftlog.cli_groups import committed_offsets
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


def _consume(bootstrap: str, group: str, count: int) -> tuple[Consumer, list[bytes]]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
         "enable.auto.commit": False, "session.timeout.ms": 6000}
    )  # fmt: skip
    consumer.subscribe(["replay"])
    got: list[bytes] = []
    deadline = time.monotonic() + 30
    while len(got) < count and time.monotonic() < deadline:
        got += [m.value() for m in consumer.consume(count, 0.3) if m.error() is None]
    return consumer, got


def test_group_reset_offsets_and_delete(raftlog_node: LocalCluster) -> None:
    bootstrap = raftlog_node.bootstrap
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic("replay", num_partitions=2)])["replay"].result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for index in range(20):
        producer.produce("replay", str(index).encode(), partition=index % 2)
    assert producer.flush(30) == 0
    consumer, got = _consume(bootstrap, "rewinders", 20)
    assert len(got) == 20
    consumer.commit(asynchronous=False)
    ends = dict(committed_offsets(bootstrap, "rewinders"))
    assert set(ends) == {("replay", 0), ("replay", 1)}
    base = ("--bootstrap", bootstrap)

    # Like Kafka's tool: an active group's offsets are not moved, and nothing is deleted.
    refused = _raftlog("group", "reset-offsets", "rewinders", "--topic", "replay",
                       "--to-earliest", *base)  # fmt: skip
    assert refused.returncode == 1 and "no members" in refused.stderr, refused
    busy = _raftlog("group", "delete", "rewinders", *base)
    assert busy.returncode == 1 and "still has members" in busy.stderr, busy
    consumer.close()

    dry = _raftlog("group", "reset-offsets", "rewinders", "--topic", "replay", "--to-earliest",
                   *base)  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert lines[0].split() == ["GROUP", "TOPIC", "PARTITION", "CURRENT", "NEW"]
    assert lines[1].split() == ["rewinders", "replay", "0", str(ends[("replay", 0)]), "0"]
    assert "Dry run" in dry.stdout
    assert committed_offsets(bootstrap, "rewinders") == ends, "a dry run changes nothing"

    executed = _raftlog("group", "reset-offsets", "rewinders", "--topic", "replay",
                        "--to-earliest", "--execute", *base)  # fmt: skip
    assert executed.returncode == 0 and "Committed" in executed.stdout, executed.stderr
    assert committed_offsets(bootstrap, "rewinders") == {("replay", 0): 0, ("replay", 1): 0}
    consumer, again = _consume(bootstrap, "rewinders", 20)
    consumer.close()
    assert sorted(again) == sorted(got), "the group reads everything again"

    to_offset = _raftlog("group", "reset-offsets", "rewinders", "--topic", "replay",
                         "--to-offset", "4", "--execute", "--format", "json", *base)  # fmt: skip
    assert to_offset.returncode == 0, to_offset.stderr
    assert [row["new"] for row in json.loads(to_offset.stdout)["partitions"]] == [4, 4]
    clamped = _raftlog("group", "reset-offsets", "rewinders", "--topic", "replay",
                       "--to-offset", "100000", "--format", "json", *base)  # fmt: skip
    rows = json.loads(clamped.stdout)["partitions"]
    assert [row["current"] for row in rows] == [4, 4]
    assert [row["new"] for row in rows] == [ends[("replay", 0)], ends[("replay", 1)]]
    latest = _raftlog("group", "reset-offsets", "rewinders", "--topic", "replay",
                      "--to-latest", "--execute", *base)  # fmt: skip
    assert latest.returncode == 0, latest.stderr
    assert committed_offsets(bootstrap, "rewinders") == ends

    deleted = _raftlog("group", "delete", "rewinders", *base)
    assert deleted.returncode == 0 and "Deleted group rewinders" in deleted.stdout
    assert committed_offsets(bootstrap, "rewinders") == {}
    listed = _raftlog("group", "list", *base, "--format", "json")
    assert "rewinders" not in [row["group"] for row in json.loads(listed.stdout)]
    again_deleted = _raftlog("group", "delete", "rewinders", *base)
    assert again_deleted.returncode == 1 and "no group" in again_deleted.stderr
