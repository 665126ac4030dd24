"""Moving a partition's leadership on purpose, through the CLI and the admin API, while a
real producer with acks=all keeps writing: nothing acknowledged is lost, and clients
follow the new leader. Also the controller's leadership, moved on purpose or lost with
its node, while requests that need it keep being answered."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from raftlog.kafka.admin_client import KafkaAdminConnection
from raftlog.protocol.messages.generated.create_topics_request import (
    CreatableTopic,
    CreateTopicsRequest,
)
from raftlog.protocol.messages.generated.create_topics_response import CreateTopicsResponse
from raftlog.testing import LocalCluster

TOPIC = "moved"


def _cli(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "raftlog.cli", *arguments],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _leader(admin: AdminClient) -> int:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        partition = admin.list_topics(TOPIC, timeout=10).topics[TOPIC].partitions[0]
        if partition.leader > 0:
            return int(partition.leader)
        time.sleep(0.1)
    raise AssertionError("the partition has no leader")


def _transfer(cluster: LocalCluster, via: int, to: int) -> subprocess.CompletedProcess[str]:
    admin_addr = cluster.node(via).admin_url.removeprefix("http://")
    return _cli(
        "partition",
        "transfer-leader",
        TOPIC,
        "0",
        "--to",
        str(to),
        "--admin",
        admin_addr,
        "--timeout-ms",
        "15000",
    )


def test_transfers_under_load_keep_every_acknowledged_record(tmp_path: Path) -> None:
    with LocalCluster(tmp_path, nodes=3) as cluster:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin.create_topics([NewTopic(TOPIC, 1, 3)])[TOPIC].result(30)
        acknowledged: list[bytes] = []
        failures: list[str] = []
        stop = threading.Event()

        def produce() -> None:
            producer = Producer(
                {
                    "bootstrap.servers": cluster.bootstrap,
                    "acks": "all",
                    "enable.idempotence": True,
                    "linger.ms": 2,
                    "log_level": 0,
                }
            )

            def delivered(error: object, message: object) -> None:
                if error is not None:
                    failures.append(str(error))
                else:
                    acknowledged.append(message.value())  # type: ignore[attr-defined]

            sequence = 0
            while not stop.is_set():
                producer.produce(TOPIC, f"v{sequence}".encode(), partition=0, on_delivery=delivered)
                sequence += 1
                producer.poll(0.002)
            assert producer.flush(60) == 0

        thread = threading.Thread(target=produce)
        thread.start()
        try:
            moves = []
            for _ in range(3):
                time.sleep(1.0)
                leader = _leader(admin)
                target = next(n for n in (1, 2, 3) if n != leader)
                via = next(n for n in (1, 2, 3) if n not in (leader, target))
                result = _transfer(cluster, via=via, to=target)
                assert result.returncode == 0, result.stderr
                assert f"{TOPIC}/0: node {target} leads" in result.stdout
                moves.append((leader, target))
                assert _leader(admin) == target
            time.sleep(1.0)
        finally:
            stop.set()
            thread.join(90)
        assert not failures, failures[:5]
        assert len(acknowledged) > 100, "the producer kept writing through the transfers"
        consumer = Consumer(
            {
                "bootstrap.servers": cluster.bootstrap,
                "group.id": "check",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        consumer.assign([TopicPartition(TOPIC, 0, 0)])
        seen: set[bytes] = set()
        deadline = time.monotonic() + 60
        while len(seen) < len(set(acknowledged)) and time.monotonic() < deadline:
            for message in consumer.consume(1000, 1.0):
                if message.error() is None:
                    seen.add(message.value())
        consumer.close()
        assert set(acknowledged) <= seen, f"{len(set(acknowledged) - seen)} acknowledged lost"
        done = sum(_transfers_done(cluster, node) for node in (1, 2, 3))
        assert done >= len(moves), "every leader counted the transfer it ran"


def _transfers_done(cluster: LocalCluster, node: int) -> float:
    with urllib.request.urlopen(f"{cluster.node(node).admin_url}/metrics", timeout=10) as r:
        text = r.read().decode()
    prefix = 'raftlog_leadership_transfers_total{outcome="done"} '
    return sum(float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix))


def test_refusals_say_why(tmp_path: Path) -> None:
    with LocalCluster(tmp_path, nodes=3) as cluster:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin.create_topics([NewTopic(TOPIC, 1, 3)])[TOPIC].result(30)
        leader = _leader(admin)
        not_a_replica = _transfer(cluster, via=1, to=9)
        assert not_a_replica.returncode == 1
        assert "node 9 holds no replica" in not_a_replica.stderr
        admin_addr = cluster.node(1).admin_url.removeprefix("http://")
        unknown = _cli(
            "partition", "transfer-leader", "nope", "0", "--to", "2", "--admin", admin_addr
        )
        assert unknown.returncode == 1 and "no topic 'nope'" in unknown.stderr
        same = _transfer(cluster, via=1, to=leader)
        assert same.returncode == 0, same.stderr
        assert _leader(admin) == leader


def _controller_leader(cluster: LocalCluster, node: int) -> int | None:
    with urllib.request.urlopen(f"{cluster.node(node).admin_url}/v1/cluster", timeout=10) as r:
        leader = json.loads(r.read())["controller_leader"]
    return None if leader is None else int(leader)


def _wait_for_controller_leader(cluster: LocalCluster) -> int:
    deadline = time.monotonic() + 20
    while (leader := _controller_leader(cluster, 1)) is None:
        assert time.monotonic() < deadline, "no controller leader"
        time.sleep(0.1)
    return leader


def test_a_transfer_asked_while_the_leader_dies_waits_for_the_next_one(tmp_path: Path) -> None:
    """The node asked keeps trying while the partition elects a new leader, so the request
    succeeds within its timeout instead of failing on the dead leader."""
    with LocalCluster(tmp_path, nodes=3) as cluster:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin.create_topics([NewTopic(TOPIC, 1, 3)])[TOPIC].result(30)
        leader = _leader(admin)
        survivors = [n for n in (1, 2, 3) if n != leader]
        cluster.node(leader).kill()
        result = _transfer(cluster, via=survivors[0], to=survivors[1])
        assert result.returncode == 0, result.stderr
        assert f"{TOPIC}/0: node {survivors[1]} leads" in result.stdout
        survivor_admin = AdminClient({"bootstrap.servers": cluster.node(survivors[0]).address})
        partition = survivor_admin.list_topics(TOPIC, timeout=10).topics[TOPIC].partitions[0]
        assert partition.leader == survivors[1]


def test_the_controller_leadership_moves_and_the_cluster_keeps_working(tmp_path: Path) -> None:
    with LocalCluster(tmp_path, nodes=3) as cluster:
        leader = _wait_for_controller_leader(cluster)
        target = next(n for n in (1, 2, 3) if n != leader)
        via = next(n for n in (1, 2, 3) if n not in (leader, target))
        admin_addr = cluster.node(via).admin_url.removeprefix("http://")
        result = _cli(
            "cluster",
            "transfer-controller",
            "--to",
            str(target),
            "--admin",
            admin_addr,
            "--timeout-ms",
            "15000",
        )
        assert result.returncode == 0, result.stderr
        assert f"controller: node {target} leads" in result.stdout
        for node in (1, 2, 3):
            deadline = time.monotonic() + 10
            while _controller_leader(cluster, node) != target:
                assert time.monotonic() < deadline, f"node {node} does not see {target} lead"
                time.sleep(0.1)
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin.create_topics([NewTopic(TOPIC, 2, 3)])[TOPIC].result(30)
        assert len(admin.list_topics(TOPIC, timeout=10).topics[TOPIC].partitions) == 2
        refused = _cli("cluster", "transfer-controller", "--to", "7", "--admin", admin_addr)
        assert refused.returncode == 1 and "not a controller voter" in refused.stderr


def test_a_create_sent_as_the_controller_leader_dies_waits_for_the_next(
    tmp_path: Path,
) -> None:
    """Sent on our own codec, so that no client-side retry hides the answer: the survivor
    still names the dead node as the controller leader (or none), and the request must
    wait for the election within its timeout, not fail with NOT_CONTROLLER."""
    with LocalCluster(tmp_path, nodes=3) as cluster:
        leader = _wait_for_controller_leader(cluster)
        survivor = next(node for node in (1, 2, 3) if node != leader)
        cluster.node(leader).kill()
        request = CreateTopicsRequest(
            topics=[
                CreatableTopic(
                    name="made-during-election",
                    num_partitions=1,
                    replication_factor=2,
                    assignments=[],
                    configs=[],
                )
            ],
            timeout_ms=30_000,
        )
        with KafkaAdminConnection(cluster.node(survivor).address, timeout_s=60) as connection:
            response = connection.request(request, 5)
        assert isinstance(response, CreateTopicsResponse)
        assert response.topics[0].error_code == 0, response.topics[0]
        assert _controller_leader(cluster, survivor) not in (None, leader)
