"""The `groups` scenario (offset commits/s, 10-member rebalance time) runs end to end in
--quick mode and writes every metric it promises, with positive values."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.clients


def test_quick_groups_run(tmp_path: pathlib.Path) -> None:
    json_path = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, "-m", "benches", "--quick", "--only", "groups",
         "--json", str(json_path), "--dir", str(tmp_path / "disk")],
        cwd=REPO, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(json_path.read_text())["results"]
    by_metric = {result["metric"]: result for result in results}
    assert {result["scenario"] for result in results} == {"groups"}
    commits = next(r for m, r in by_metric.items() if m.startswith("offset commits/s"))
    assert commits["value"] > 0 and commits["ceiling_value"] > 0 and commits["ratio"] > 0
    rebalances = [r for m, r in by_metric.items() if m.startswith("rebalance")]
    assert len(rebalances) == 2
    assert all(0 < r["value"] < 60_000 and r["unit"] == "ms" for r in rebalances)
    assert "offset commits/s" in completed.stdout  # the harness printed its table
