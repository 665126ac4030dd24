"""The `sweep` scenario runs end to end (tiny counts) and writes its rows and plots."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.clients


def test_quick_sweep_run(tmp_path: pathlib.Path) -> None:
    json_path = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, "-m", "benches", "--quick", "--only", "sweep", "--scale", "0.02",
         "--json", str(json_path), "--dir", str(tmp_path / "disk")],
        cwd=REPO, capture_output=True, text=True, timeout=400, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(json_path.read_text())["results"]
    throughput = [r for r in results if r["unit"] == "records/s"]
    assert {r["sweep"].get("record bytes") for r in throughput} >= {100, 1024, 16384}
    assert {r["sweep"].get("partitions") for r in throughput} >= {1, 10}
    assert all(r["value"] > 0 and r["ceiling_value"] > 0 for r in throughput)
    assert all("FAILED" not in r["notes"] for r in throughput), [r["notes"] for r in throughput]
    replicated = {(r["sweep"]["record bytes"], r["family"]) for r in throughput
                  if r["family"].endswith("RF=3")}
    assert replicated == {
        (size, f"records/s acks={acks} RF=3")
        for size in (100, 1024, 16384)
        for acks in ("all", "1")
    }
    plots = {path.name for path in tmp_path.glob("results-*.png")}
    assert "results-ratios.png" in plots
    assert "results-sweep-records_per_s-by-partitions.png" in plots
