"""The `peers_1node` scenario runs end to end with tiny counts: every comparison row is
there, with a figure for raftlog, and a peer that is missing says so in its row."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.clients


def test_quick_peers_1node_run(tmp_path: pathlib.Path) -> None:
    json_path = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, "-m", "benches", "--quick", "--only", "peers_1node", "--scale", "0.05",
         "--json", str(json_path), "--dir", str(tmp_path / "disk")],
        cwd=REPO, capture_output=True, text=True, timeout=400, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(json_path.read_text())["results"]
    assert len(results) == 7
    for row in results:
        assert row["value"] > 0, row
        assert row["ratio"] is not None or "no comparison" in row["notes"], row
