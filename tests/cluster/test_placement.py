"""New topics' replicas go to the least-loaded nodes, not round-robin.

Four nodes: a first topic with replication factor 1 and two partitions piles onto two
nodes, making them busier than the other two; a topic created afterwards must take
exactly the placement `place_replicas` computes from the load the controller records
(read back through the admin API), which leaves the busiest node out.
"""

from __future__ import annotations

import json
import pathlib
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from raftlog.controller.placement import place_replicas
from raftlog.testing import LocalCluster

pytestmark = pytest.mark.clients


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def _load(admin_url: str) -> dict[int, int]:
    """Segment replicas per node, counted from every topic's chain (prepared included)."""
    nodes = {int(node["node_id"]): 0 for node in _get(f"{admin_url}/v1/cluster")["nodes"]}
    for topic in _get(f"{admin_url}/v1/topics")["topics"]:
        for partition in _get(f"{admin_url}/v1/topics/{topic['name']}/partitions")["partitions"]:
            segments = [*partition["segments"]]
            if partition.get("prepared"):
                segments.append(partition["prepared"])
            for segment in segments:
                for node in segment["replicas"]:
                    nodes[int(node)] += 1
    return nodes


def _replicas(admin_url: str, topic: str) -> list[list[int]]:
    """The topic's replica sets as this node knows them. CreateTopics is answered once the
    controller has committed the topic; this node may apply it a moment later (404)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            partitions = _get(f"{admin_url}/v1/topics/{topic}/partitions")["partitions"]
        except urllib.error.HTTPError as error:
            if error.code != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
            continue
        return [partition["replicas"] for partition in partitions]


def _create(bootstrap: str, name: str, partitions: int, replication: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, replication)])[name].result(30)


def test_new_topics_go_to_the_least_loaded_nodes(tmp_path: pathlib.Path) -> None:
    with LocalCluster(tmp_path, nodes=4) as cluster:
        url = cluster.members[0].admin_url
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # __consumer_offsets is made once all registered
            names = [topic["name"] for topic in _get(f"{url}/v1/topics")["topics"]]
            if "__consumer_offsets" in names:
                break
            time.sleep(0.2)
        before = _load(url)
        _create(cluster.bootstrap, "piled", 2, 1)
        piled = [replicas[0] for replicas in _replicas(url, "piled")]
        assert piled == [replicas[0] for replicas in place_replicas(before, before, 1, 2)]
        load = _load(url)
        # Both partitions may pile onto one node (one left empty when the offsets topic was
        # placed while it was still unreachable): it then holds two more.
        assert all(load[node] == before[node] + piled.count(node) for node in piled)
        busiest = max(load.values())
        _create(cluster.bootstrap, "spread", 3, 3)
        placed = _replicas(url, "spread")
        assert placed == place_replicas(load, load, 3, 3)
        if sum(1 for count in load.values() if count == busiest) == 1:
            loaded = max(load, key=lambda node: load[node])
            assert loaded not in placed[0], "the busiest node is passed over first"
        # Round-robin would have started the sets at nodes 1, 2, 3 regardless of load.
        assert _load(url) == {node: load[node] + sum(node in r for r in placed) for node in load}
