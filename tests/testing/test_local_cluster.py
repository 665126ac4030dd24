"""LocalCluster tells what its nodes did when the test around it fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from raftlog.testing import LocalCluster


def test_a_failing_block_leaves_the_nodes_logs_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = LocalCluster(tmp_path, nodes=1)
    with pytest.raises(RuntimeError, match="the test failed"), cluster:
        raise RuntimeError("the test failed")
    node = cluster.node(1)
    assert not node.running
    err = capsys.readouterr().err
    assert "--- node 1: last" in err
    assert "event=listening" in err and "event=stopped" in err


def test_a_passing_block_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with LocalCluster(tmp_path, nodes=1):
        pass
    assert "--- node" not in capsys.readouterr().err
