"""pytest fixtures that give a Kafka application's tests a real raftlog node or cluster.

Installed with raftlog (entry point `pytest11`), so any project that depends on raftlog
can write:

    def test_round_trip(raftlog_node):
        producer = confluent_kafka.Producer({"bootstrap.servers": raftlog_node.bootstrap})

No JVM, no containers: real `raftlog serve` processes on free 127.0.0.1 ports in a
temporary directory, stopped by PID when the test ends. Topics are auto-created.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from raftlog.testing import LocalCluster

AUTO_CREATE = ("--auto-create-topics", "true")


@pytest.fixture
def raftlog_node(tmp_path: pathlib.Path) -> Iterator[LocalCluster]:
    """One raftlog node; `.bootstrap` is its Kafka address."""
    with LocalCluster(tmp_path / "raftlog", nodes=1, extra_arguments=AUTO_CREATE) as cluster:
        yield cluster


@pytest.fixture
def raftlog_cluster(tmp_path: pathlib.Path) -> Iterator[LocalCluster]:
    """Three raftlog nodes (replication factor 3 by default); `.bootstrap` lists them."""
    with LocalCluster(tmp_path / "raftlog", nodes=3, extra_arguments=AUTO_CREATE) as cluster:
        yield cluster
