"""The `failover` scenario runs end to end in --quick mode (3 kills) and reports p50 and
p99 of both figures (new leader named; acks=all produce acknowledged), all positive."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.clients


def test_quick_failover_run(tmp_path: pathlib.Path) -> None:
    json_path = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, "-m", "benches", "--quick", "--only", "failover",
         "--json", str(json_path), "--dir", str(tmp_path / "disk")],
        cwd=REPO, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(json_path.read_text())["results"]
    by_metric = {result["metric"]: result["value"] for result in results}
    assert set(by_metric) == {
        "leader failover p50",
        "leader failover p99",
        "produce failover p50",
        "produce failover p99",
    }
    assert all(value > 0 for value in by_metric.values())
    assert by_metric["leader failover p99"] >= by_metric["leader failover p50"]
