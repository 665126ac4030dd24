"""Consumer groups when things die: a SIGKILLed member, a killed coordinator node."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from raftlog.cli_groups import GroupCommandError, find_coordinator
from raftlog.kafka.admin_client import KafkaAdminConnection
from raftlog.protocol.messages.generated.describe_groups_request import DescribeGroupsRequest
from raftlog.testing import LocalCluster

pytestmark = pytest.mark.clients

MEMBER = textwrap.dedent(
    """
    import sys
    from confluent_kafka import Consumer
    consumer = Consumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[2],
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
    consumer.subscribe([sys.argv[3]])
    while True:
        for message in consumer.consume(100, 0.2):
            if message.error() is None:
                print("got", message.partition(), flush=True)
    """
)


def _fill(bootstrap: str, topic: str, count: int, partitions: int = 6) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=partitions)])[topic].result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for index in range(count):
        producer.produce(topic, f"{topic}-{index}".encode(), key=str(index).encode())
    assert producer.flush(30) == 0


def _member(bootstrap: str, group: str) -> Consumer:
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


def test_a_killed_member_is_expired_and_its_partitions_reassigned(
    raftlog_node: LocalCluster,
) -> None:
    bootstrap = raftlog_node.bootstrap
    _fill(bootstrap, "work", 600)
    doomed = subprocess.Popen(
        [sys.executable, "-c", MEMBER, bootstrap, "workers", "work"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        survivor = _member(bootstrap, "workers")
        survivor.subscribe(["work"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until the two share the partitions
            survivor.consume(100, 0.2)
            if 0 < len(survivor.assignment()) < 6:
                break
        assert 0 < len(survivor.assignment()) < 6, "the group split the partitions"
    finally:
        doomed.kill()
        doomed.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(survivor.assignment()) < 6:
        survivor.consume(100, 0.2)
    assert len(survivor.assignment()) == 6, "the killed member's session expired"
    survivor.close()


def _committed_by_client(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """Committed offsets as a real client sees them (retried while a coordinator moves)."""
    consumer = _member(bootstrap, group)
    try:
        deadline = time.monotonic() + 40
        while True:
            try:
                found = consumer.committed([TopicPartition(topic, p) for p in range(3)], 10)
                return {tp.partition: tp.offset for tp in found}
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        consumer.close()


def _describe(bootstrap: str, group: str) -> tuple[int, object]:
    """(coordinator node id, DescribeGroups answer) once a coordinator answers."""
    deadline = time.monotonic() + 40
    while True:
        try:
            node_id, address = find_coordinator(bootstrap, group)
            with KafkaAdminConnection(address) as connection:
                described = connection.request(DescribeGroupsRequest(groups=[group]), 1)
            answer = described.groups[0]  # type: ignore[attr-defined]
            if answer.error_code == 0:
                return node_id, answer
        except (GroupCommandError, ConnectionError):
            pass
        assert time.monotonic() < deadline, "no coordinator answered for the group"
        time.sleep(0.3)


def test_coordinator_failover_with_a_live_group(tmp_path: pathlib.Path, group_workers: Any) -> None:
    """Kill the coordinator's node under a consuming group: the group carries on under the
    new coordinator, consumes everything, and no committed offset goes backwards."""
    with LocalCluster(tmp_path / "cluster", nodes=3) as cluster:
        _fill(cluster.bootstrap, "ledger", 300, partitions=3)
        pool = group_workers
        members = [
            pool.start("confluent", cluster.bootstrap, "auditors", "ledger", f"m{i}",
                       "batch=40", "pause_ms=60")
            for i in range(2)
        ]  # fmt: skip
        pool.wait_until(
            lambda: sum(e.kind == "R" for e in pool.events(members)) >= 200, 45, "consumption"
        )
        coordinator, _answer = _describe(cluster.bootstrap, "auditors")
        before = _committed_by_client(cluster.bootstrap, "auditors", "ledger")
        assert any(offset > 0 for offset in before.values()), before  # -1001: none yet
        cluster.node(coordinator).kill()

        survivors = cluster.bootstrap  # only running nodes
        producer = Producer({"bootstrap.servers": survivors, "acks": "all"})
        for index in range(300):
            producer.produce("ledger", f"more-{index}".encode(), partition=index % 3)
        assert producer.flush(40) == 0
        probe = _member(survivors, "probe")
        ends = {
            p: probe.get_watermark_offsets(TopicPartition("ledger", p), 10)[1] for p in range(3)
        }
        probe.close()

        def committed_to_the_end() -> bool:
            committed: dict[int, int] = {}
            for event in pool.events(members):
                if event.kind == "C":
                    committed[event.partition] = max(committed.get(event.partition, 0),
                                                     event.offset)  # fmt: skip
            return all(committed.get(p, 0) >= ends[p] for p in range(3))

        pool.wait_until(committed_to_the_end, 60, "the group to commit to the end after failover")
        # A member whose heartbeats found no coordinator for a whole session (the election
        # and the group's load take a few seconds on a slow machine) was expired, and
        # rejoins once it hears so: both members are back in a stable group soon after.
        seen: list[tuple[int, str, int]] = []

        def both_members_back() -> bool:
            node_id, described = _describe(survivors, "auditors")
            members = len(described.members)  # type: ignore[attr-defined]
            seen.append((node_id, described.group_state, members))  # type: ignore[attr-defined]
            return described.group_state == "Stable" and members == 2  # type: ignore[attr-defined]

        pool.wait_until(
            both_members_back,
            30,
            "both members back in a stable group",
            explain=lambda: f"(coordinator, state, members) seen: {seen[-5:]}",
        )
        assert all(node_id != coordinator for node_id, _state, _members in seen)
        after = _committed_by_client(survivors, "auditors", "ledger")
        assert all(after[p] >= before[p] for p in range(3)), (before, after)
        assert after == ends
        committed: dict[int, int] = {}
        for event in pool.events(members):  # no read ever went below a commit
            if event.kind == "C":
                committed[event.partition] = max(committed.get(event.partition, 0), event.offset)
            elif event.kind == "R":
                assert event.offset >= committed.get(event.partition, 0), event


def test_group_metadata_survives_coordinator_failover(tmp_path: pathlib.Path) -> None:
    """The new coordinator knows an empty group from its metadata record, not only offsets."""
    with LocalCluster(tmp_path / "cluster", nodes=3) as cluster:
        _fill(cluster.bootstrap, "archive", 30, partitions=3)
        consumer = _member(cluster.bootstrap, "librarians")
        consumer.subscribe(["archive"])
        got = 0
        deadline = time.monotonic() + 30
        while got < 30 and time.monotonic() < deadline:
            got += len([m for m in consumer.consume(30, 0.2) if m.error() is None])
        consumer.commit(asynchronous=False)
        consumer.close()
        coordinator, described = _describe(cluster.bootstrap, "librarians")
        assert described.group_state == "Empty"  # type: ignore[attr-defined]
        time.sleep(1.0)  # the emptied group's metadata is written by the expiry loop
        cluster.node(coordinator).kill()
        moved_to, described = _describe(cluster.bootstrap, "librarians")
        assert moved_to != coordinator
        assert described.group_state == "Empty"  # type: ignore[attr-defined]
        assert described.protocol_type == "consumer"  # type: ignore[attr-defined]
        assert described.protocol_data == "range"  # type: ignore[attr-defined]
        assert sum(_committed_by_client(cluster.bootstrap, "librarians", "archive").values()) > 0
