"""The machine's ceilings are measured, and other figures are put against them."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

from benches.ceilings import FSYNC_P50, LOOPBACK, SEQUENTIAL, fractions
from benches.common import Result

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_quick_ceilings_run(tmp_path: pathlib.Path) -> None:
    json_path = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, "-m", "benches", "--quick", "--only", "ceilings", "--scale", "0.02",
         "--json", str(json_path), "--dir", str(tmp_path / "disk")],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(json_path.read_text())["results"]
    assert [row["scenario"] for row in results] == ["ceilings"] * 4
    assert all(row["value"] > 0 for row in results)


def test_fractions_pair_each_figure_with_its_ceiling() -> None:
    results = [
        Result("ceilings", FSYNC_P50, 500.0, "us"),
        Result("ceilings", SEQUENTIAL, 400.0, "MB/s"),
        Result("ceilings", LOOPBACK, 2000.0, "MB/s"),
        Result("replicated", "produce 1 KiB RF=3 acks=all fsync=always", 50_000.0, "records/s"),
        Result("produce-1node", "single-record produce p50", 2.0, "ms"),
    ]
    rows = {row.metric: row for row in fractions(results)}
    assert len(rows) == 2, "only pairs whose both sides ran"
    disk = rows["replicated: produce 1 KiB RF=3 acks=all fsync=always, disk bytes"]
    assert disk.value == pytest.approx(50_000 * 1024 * 3 / 1e6)
    assert disk.ratio == pytest.approx(disk.value / 400.0)
    lone = rows["produce-1node: single-record produce p50"]
    assert lone.ratio == pytest.approx(0.25)
