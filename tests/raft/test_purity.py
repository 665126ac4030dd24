"""The Raft core is sans-IO: no clock, no randomness, no threads, no files, no sockets."""

from __future__ import annotations

import ast
from pathlib import Path

import attrs
import pytest

import raftlog.raft
from raftlog.raft import EntryKind, RaftUsageError
from raftlog.raft.messages import Heartbeat
from raftlog.sim.cluster import ClusterOptions, SimCluster

FORBIDDEN = {"trio", "time", "random", "os", "pathlib", "socket", "threading", "asyncio",
             "io", "shutil", "tempfile", "datetime", "subprocess", "select", "signal"}


def test_the_core_imports_nothing_that_does_io_or_draws_randomness() -> None:
    package = Path(raftlog.raft.__file__).parent
    offenders = []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            offenders += [
                f"{path.name}: {name}" for name in names if name.split(".")[0] in FORBIDDEN
            ]
    assert offenders == []
    assert len(list(package.rglob("*.py"))) >= 10


def test_the_ready_contract_is_enforced() -> None:
    cluster = SimCluster.create(1, ClusterOptions(voter_count=1, spare_count=0))
    raw = cluster.raw(1)
    raw.campaign()
    ready = raw.ready()
    assert ready.must_sync and ready.entries  # the new leader's vote and no-op
    assert ready.committed_entries == ()  # nothing applies before it is persisted
    with pytest.raises(RaftUsageError):
        raw.ready()  # the previous Ready is not advanced yet
    with pytest.raises(RaftUsageError):
        raw.advance(attrs.evolve(ready))  # an equal copy is not the Ready handed out
    with pytest.raises(RaftUsageError):
        raw.step(Heartbeat(2, 5, 1, 0))  # addressed to another node
    cluster._persist(cluster.nodes[1], ready)
    raw.advance(ready)
    assert [entry.kind for entry in raw.ready().committed_entries] == [EntryKind.NOOP]
