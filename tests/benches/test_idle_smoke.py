"""The `idle` scenario runs end to end at a tiny scale and reports a CPU share per node and
the time every group took to open, elect and quiesce."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_quick_tiny_idle_run(tmp_path: pathlib.Path) -> None:
    json_path = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, "-m", "benches", "--quick", "--scale", "0.05", "--only", "idle",
         "--json", str(json_path), "--dir", str(tmp_path / "disk")],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    result, timing = json.loads(json_path.read_text())["results"]
    assert result["scenario"] == "idle" and timing["scenario"] == "idle"
    assert "59 groups" in timing["metric"] and 0 < timing["value"] < 600
    assert "all quiescent after" in timing["notes"]
    assert "59 groups" in result["metric"]
    assert 0 < result["value"] < 100
    assert result["ceiling_value"] == 5.0 and result["ratio"] > 0
    assert result["notes"].count("%") == 3, "one figure per node"
