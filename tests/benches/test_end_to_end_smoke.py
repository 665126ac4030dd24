"""The `end_to_end` scenario runs in --quick mode: at each offered load every record sent is
received, percentiles are ordered, and the rows carry the load as a sweep (for the plot of
latency against load)."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.clients


def test_quick_end_to_end_run(tmp_path: pathlib.Path) -> None:
    json_path = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, "-m", "benches", "--quick", "--scale", "0.02", "--only", "end_to_end",
         "--json", str(json_path), "--dir", str(tmp_path / "disk")],
        cwd=REPO, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(json_path.read_text())["results"]
    loads = sorted({result["sweep"]["offered records/s"] for result in results})
    assert loads == [100.0, 1000.0]
    for load in loads:
        at = {
            r["metric"].split(" at ")[0]: r
            for r in results
            if r["sweep"]["offered records/s"] == load
        }
        assert set(at) == {
            "end-to-end p50", "end-to-end p99", "end-to-end p999",
            "produce ack p50", "produce ack p99",
        }  # fmt: skip
        assert 0 < at["end-to-end p50"]["value"] <= at["end-to-end p99"]["value"]
        assert at["end-to-end p99"]["value"] <= at["end-to-end p999"]["value"]
        received, _, sent = at["end-to-end p50"]["notes"].split(" records received")[0].partition(
            " of "
        )
        assert received == sent, at["end-to-end p50"]["notes"]
    assert list(tmp_path.glob("results-end_to_end-*-by-offered_records_per_s.png"))
