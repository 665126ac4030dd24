"""A node joins a running cluster through one seed, serves replicas, and rejoins without it.

Three nodes start with `--peers` as usual. A fourth is started with only `--seeds`
naming node 2's internal address: it registers (the admin API and `raftlog cluster
status` list it with its internal address), becomes a learner of the controller group,
and, being the least loaded node, gets a replica of a new topic; records produced with
acks=all are read back with node 4 leading the partition. Wrong joins are refused with a
clear error: a second process claiming id 4 at another address, and a node whose only
seed is a Kafka port (not a raftlog node). Then node 2 (the seed) is stopped and node 4
restarted on its data dir: it rejoins through the members it remembers and serves again.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import time
import urllib.request
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from raftlog.node.address_book import CLUSTER_FILE
from raftlog.testing import LocalCluster, LocalNode, free_port

pytestmark = pytest.mark.clients

TOPIC = "joined"


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def _post(url: str) -> Any:
    request = urllib.request.Request(url, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def _produce(bootstrap: str, start: int, count: int) -> None:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 2,
            "message.timeout.ms": 40_000,
        }
    )
    failures: list[str] = []
    for index in range(start, start + count):
        producer.produce(
            TOPIC,
            f"record-{index:05d}".encode(),
            on_delivery=lambda error, _m: failures.append(str(error)) if error else None,
        )
        producer.poll(0)
    assert producer.flush(45) == 0
    assert failures == []


def _read_all(bootstrap: str, expected: int) -> list[bytes]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(TOPIC, 0, 0)])
    values: list[bytes] = []
    deadline = time.monotonic() + 30
    while len(values) < expected and time.monotonic() < deadline:
        for message in consumer.consume(1000, 0.5):
            if message.error() is None:
                values.append(message.value())
            elif message.error().code() != KafkaError._PARTITION_EOF:
                raise AssertionError(message.error())
    consumer.close()
    return values


def _wait_for(predicate: Any, what: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _node_args(
    node_id: int, directory: pathlib.Path, ports: tuple[int, int, int], seeds: str, *extra: str
) -> LocalNode:
    kafka, internal, admin = ports
    arguments = [
        "--node-id", str(node_id),
        "--data-dir", str(directory / f"node{node_id}"),
        "--kafka-addr", f"127.0.0.1:{kafka}",
        "--admin-addr", f"127.0.0.1:{admin}",
        "--internal-addr", f"127.0.0.1:{internal}",
        "--seeds", seeds,
        *extra,
    ]  # fmt: skip
    return LocalNode(
        node_id,
        kafka,
        internal,
        directory / f"node{node_id}",
        directory / f"node{node_id}.log",
        arguments,
        admin,
    )


def _refused(node: LocalNode, timeout_s: float) -> str:
    """Run a node that must not start; return its output."""
    completed = subprocess.run(
        [sys.executable, "-m", "raftlog.cli", "serve", *node.arguments],
        capture_output=True,
        timeout=timeout_s,
        text=True,
    )
    assert completed.returncode != 0, completed.stdout[-2000:]
    return completed.stderr


def _leader(admin_url: str) -> int:
    partitions = _get(f"{admin_url}/v1/topics/{TOPIC}/partitions")["partitions"]
    return int(partitions[0]["leader"] or 0)


def test_a_node_joins_by_seed_serves_and_rejoins_without_its_seed(tmp_path: pathlib.Path) -> None:
    with LocalCluster(tmp_path, nodes=3) as cluster:
        seed = cluster.node(2)
        ports = (free_port(), free_port(), free_port())
        joiner = _node_args(4, tmp_path, ports, f"127.0.0.1:{seed.internal_port}")
        try:
            joiner.start()
            url = cluster.node(1).admin_url

            def registered() -> bool:
                nodes = {node["node_id"]: node for node in _get(f"{url}/v1/cluster")["nodes"]}
                return nodes.get(4, {}).get("internal") == f"127.0.0.1:{ports[1]}"

            _wait_for(registered, "node 1 to list node 4")
            status = subprocess.run(
                [sys.executable, "-m", "raftlog.cli", "cluster", "status",
                 "--admin", cluster.node(3).admin_address, "--format", "json"],
                capture_output=True, text=True, timeout=30, check=True,
            )  # fmt: skip
            assert 4 in [node["node_id"] for node in json.loads(status.stdout)["cluster"]["nodes"]]
            remembered = json.loads((joiner.data_dir / CLUSTER_FILE).read_text())
            assert [member[0] for member in remembered["members"]] == [1, 2, 3, 4]

            # Refusals, while the cluster runs: a second node 4 elsewhere, a non-raftlog seed.
            impostor = _node_args(
                4, tmp_path / "impostor", (free_port(), free_port(), free_port()),
                f"127.0.0.1:{cluster.node(1).internal_port}",
            )  # fmt: skip
            assert "already registered with internal address" in _refused(impostor, 40)
            static = _node_args(
                3, tmp_path / "static", (free_port(), free_port(), free_port()),
                f"127.0.0.1:{cluster.node(1).internal_port}",
            )  # fmt: skip
            assert "node id 3 is listed in --peers at" in _refused(static, 40)
            stray = _node_args(
                5, tmp_path, (free_port(), free_port(), free_port()),
                cluster.node(1).address, "--join-timeout-ms", "3000",
            )  # fmt: skip
            message = _refused(stray, 40)
            assert "could not join" in message and "did not answer as a raftlog node" in message

            admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
            admin.create_topics([NewTopic(TOPIC, 1, 3)])[TOPIC].result(30)
            # Created through whichever node the client asked; node 1 applies it soon after.
            _wait_for(
                lambda: TOPIC in [topic["name"] for topic in _get(f"{url}/v1/topics")["topics"]],
                "node 1 to know the topic",
            )
            replicas = _get(f"{url}/v1/topics/{TOPIC}/partitions")["partitions"][0]["replicas"]
            assert 4 in replicas, replicas  # the least loaded node
            _wait_for(lambda: _leader(url) > 0, "a leader")
            if _leader(url) != 4:
                _post(f"{url}/v1/partitions/{TOPIC}/0/transfer-leader?target=4&timeout_ms=10000")
            assert _leader(joiner.admin_url) == 4
            _produce(f"{cluster.bootstrap},{joiner.address}", 0, 200)
            expected = [f"record-{index:05d}".encode() for index in range(200)]
            assert _read_all(joiner.address, 200) == expected

            # The seed goes away; node 4 restarts on its data dir and rejoins without it.
            seed.stop()
            joiner.stop()
            joiner.start()
            rejoin = joiner.log_path.read_text().rsplit("event=transport_listening", 1)[1]
            # Registered again through a member, or (the stopped seed led the controller
            # and no new leader is elected yet) started from what it remembers.
            assert 'event=joined via="node ' in rejoin or "event=rejoined_from_memory" in rejoin
            bootstrap = f"{cluster.node(1).address},{cluster.node(3).address},{joiner.address}"
            _produce(bootstrap, 200, 100)
            expected += [f"record-{index:05d}".encode() for index in range(200, 300)]
            assert _read_all(joiner.address, 300) == expected

            # Everyone restarts at once: node 4 starts from what it remembers as soon as a
            # member answers, whether or not the controller can register it yet.
            cluster.stop()
            joiner.stop()
            previous = joiner.listening_count()
            joiner.spawn()
            cluster.start()
            joiner.wait_listening(previous, time.monotonic() + 60)
            assert _read_all(joiner.address, 300) == expected
        finally:
            joiner.stop()


def test_a_dead_nodes_replicas_move_to_a_node_that_joined_by_seed(tmp_path: pathlib.Path) -> None:
    """Re-replication picks the joined node: it must be dialled at its registry address,
    catch up as a learner, be promoted, and then lead and serve the partition."""
    extra = ("--node-dead-timeout-ms", "3000")
    with LocalCluster(tmp_path, nodes=3, extra_arguments=extra) as cluster:
        url = cluster.node(1).admin_url
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin.create_topics([NewTopic(TOPIC, 1, 3)])[TOPIC].result(30)
        _produce(cluster.bootstrap, 0, 100)
        joiner = _node_args(
            4, tmp_path, (free_port(), free_port(), free_port()),
            f"127.0.0.1:{cluster.node(1).internal_port}", *extra,
        )  # fmt: skip
        try:
            joiner.start()
            cluster.node(3).kill()

            def moved() -> bool:
                partition = _get(f"{url}/v1/topics/{TOPIC}/partitions")["partitions"][0]
                return sorted(partition["replicas"]) == [1, 2, 4]

            _wait_for(moved, "node 3's replica to move to node 4", timeout_s=40)
            deadline = time.monotonic() + 30
            while _leader(joiner.admin_url) != 4:  # once promoted and caught up
                assert time.monotonic() < deadline, "node 4 never took the leadership"
                try:
                    _post(f"{url}/v1/partitions/{TOPIC}/0/transfer-leader?target=4&timeout_ms=3000")
                except OSError:
                    time.sleep(0.5)  # still a learner, or catching up: answered with an error
            bootstrap = f"{cluster.node(1).address},{cluster.node(2).address},{joiner.address}"
            _produce(bootstrap, 100, 100)
            expected = [f"record-{index:05d}".encode() for index in range(200)]
            assert _read_all(joiner.address, 200) == expected
        finally:
            joiner.stop()


def test_joining_over_mutual_tls_and_a_cleartext_joiner_is_refused(tmp_path: pathlib.Path) -> None:
    trustme = pytest.importorskip("trustme", reason="trustme (test extra) makes certificates")
    ca = trustme.CA()
    certificate = ca.issue_cert("127.0.0.1")
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    certificate.cert_chain_pems[0].write_to_path(str(tmp_path / "node.pem"))
    certificate.private_key_pem.write_to_path(str(tmp_path / "node.key"))
    tls = (
        "--internal-tls-cert", str(tmp_path / "node.pem"),
        "--internal-tls-key", str(tmp_path / "node.key"),
        "--internal-tls-ca", str(tmp_path / "ca.pem"),
    )  # fmt: skip
    with LocalCluster(tmp_path / "cluster", nodes=3, extra_arguments=tls) as cluster:
        seeds = f"127.0.0.1:{cluster.node(3).internal_port}"
        cleartext = _node_args(
            5, tmp_path, (free_port(), free_port(), free_port()), seeds, "--join-timeout-ms", "3000"
        )
        assert "did not answer as a raftlog node" in _refused(cleartext, 40)
        joiner = _node_args(4, tmp_path, (free_port(), free_port(), free_port()), seeds, *tls)
        try:
            joiner.start()  # listening: it caught up on the controller log over TLS
            url = cluster.node(1).admin_url

            def listed() -> bool:
                nodes = [node["node_id"] for node in _get(f"{url}/v1/cluster")["nodes"]]
                return nodes == [1, 2, 3, 4]

            _wait_for(listed, "node 1 to list node 4")
            assert b"tls=True" in joiner.log_path.read_bytes()
        finally:
            joiner.stop()
