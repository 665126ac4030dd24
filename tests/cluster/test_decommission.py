"""Decommissioning a live node: its replicas move to the other nodes, then it is unlisted.

Four nodes, a topic with replication factor 3 on nodes 1-3 whose partition is a chain of
sealed segments plus the head. `raftlog cluster decommission 3` while node 3 runs: every
segment of node 3 (and of __consumer_offsets) moves to node 4 (learner, catch up,
promote, remove), node 4 takes node 3's controller vote, and node 3 leaves the node list.
Nothing acknowledged is lost; the cluster keeps taking writes; a refused decommission
(too few nodes left) says why.
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
from confluent_kafka.admin import AdminClient, NewTopic

from raftlog.testing import LocalCluster

from .test_rereplication import TOPIC, _produce, _read_all, _replicas, _wait_for

pytestmark = pytest.mark.clients


def _cli(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "raftlog.cli", *arguments],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _cluster_view(admin_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{admin_url}/v1/cluster", timeout=10) as answer:
        document: dict[str, Any] = json.load(answer)
    return document


def test_a_live_node_is_drained_and_unlisted(tmp_path: pathlib.Path) -> None:
    with LocalCluster(tmp_path, nodes=4, extra_arguments=["--segment-bytes", "150000"]) as cluster:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin.create_topics([NewTopic(TOPIC, 1, 3)])[TOPIC].result(30)
        _wait_for(lambda: _replicas(cluster.bootstrap) == [1, 2, 3], 30, "the topic")
        _produce(cluster.bootstrap, 0, 3000)
        via = cluster.node(1)

        started = _cli("cluster", "decommission", "3", "--admin", via.admin_address)
        assert started.returncode == 0, started.stderr
        assert "node 3: decommissioning" in started.stdout
        status = _cli("cluster", "status", "--admin", via.admin_address)
        assert "STATE" in status.stdout and "active" in status.stdout, status.stdout

        survivors = f"{cluster.node(1).address},{cluster.node(4).address}"
        _wait_for(lambda: _replicas(survivors) == [1, 2, 4], 90, "node 3's replicas to move")

        def unlisted() -> bool:
            nodes = _cluster_view(via.admin_url)["nodes"]
            return [node["node_id"] for node in nodes] == [1, 2, 4]

        _wait_for(unlisted, 90, "node 3 to leave the node list")
        assert cluster.node(3).running, "a decommissioned node is drained, not stopped"
        assert 3 not in _cluster_view(via.admin_url)["controller_voters"]
        _produce(survivors, 3000, 300)
        values = _read_all(survivors, 3300)
        assert values == [f"record-{index:06d}".encode() * 8 for index in range(3300)]

        # Three active nodes remain for a topic of three replicas: no more may go.
        refused = _cli("cluster", "decommission", "4", "--admin", via.admin_address)
        assert refused.returncode != 0
        assert "would leave 2 active node" in refused.stderr + refused.stdout
        for node in (1, 2, 4):
            assert b"Traceback" not in cluster.node(node).log_path.read_bytes()


def test_an_unknown_node_is_refused(tmp_path: pathlib.Path) -> None:
    with LocalCluster(tmp_path, nodes=3) as cluster:
        time.sleep(1)
        refused = _cli("cluster", "decommission", "9", "--admin", cluster.node(1).admin_address)
        assert refused.returncode != 0
        assert "no registered node 9" in refused.stderr + refused.stdout
