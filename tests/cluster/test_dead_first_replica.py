"""A new group whose first replica is down when it is made: the others do not wait out
their patience for its first message (30 s), they elect as soon as they see it is gone.

Three nodes, one killed; a topic created then has to place a replica on it (replication
factor 3) and, as the node leading nothing, places it first. The partition must get a
leader among the two live nodes within a few election timeouts.
"""

from __future__ import annotations

import json
import pathlib
import time
import urllib.request
from typing import Any

from raftlog.kafka.admin_client import KafkaAdminConnection
from raftlog.node.node import FIRST_LEADER_PATIENCE_S
from raftlog.protocol.messages.generated.create_topics_request import (
    CreatableTopic,
    CreateTopicsRequest,
)
from raftlog.protocol.messages.generated.create_topics_response import CreateTopicsResponse
from raftlog.testing import LocalCluster

TOPIC = "first-replica-down"


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def _nodes(admin_url: str) -> list[dict[str, Any]]:
    return list(_get(f"{admin_url}/v1/cluster")["nodes"])


def _create(address: str, partitions: int) -> None:
    request = CreateTopicsRequest(
        topics=[
            CreatableTopic(
                name=TOPIC,
                num_partitions=partitions,
                replication_factor=3,
                assignments=[],
                configs=[],
            )
        ],
        timeout_ms=30_000,
    )
    with KafkaAdminConnection(address, timeout_s=60) as connection:
        response = connection.request(request, 5)
    assert isinstance(response, CreateTopicsResponse)
    assert response.topics[0].error_code == 0, response.topics[0]


def test_followers_of_a_dead_first_replica_elect_without_waiting(tmp_path: pathlib.Path) -> None:
    with LocalCluster(tmp_path, nodes=3) as cluster:
        url = cluster.node(1).admin_url
        cluster.node(3).kill()
        deadline = time.monotonic() + 20
        while any(node["node_id"] == 3 and node["connected"] for node in _nodes(url)):
            assert time.monotonic() < deadline, "node 1 still sees node 3 connected"
            time.sleep(0.2)
        _create(cluster.node(1).address, 3)
        partitions = _get(f"{url}/v1/topics/{TOPIC}/partitions")["partitions"]
        first_on_dead = [p for p in partitions if p["replicas"][0] == 3]
        assert first_on_dead, f"no partition placed node 3 first: {partitions}"
        started = time.monotonic()
        while True:
            partitions = _get(f"{url}/v1/topics/{TOPIC}/partitions")["partitions"]
            leaders = [p["leader"] for p in partitions]
            if all(leader in (1, 2) for leader in leaders):
                break
            waited = time.monotonic() - started
            assert waited < FIRST_LEADER_PATIENCE_S / 2, f"leaders {leaders} after {waited:.0f} s"
            time.sleep(0.2)
