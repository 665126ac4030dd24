"""The codec benchmark runs and reports rows the harness can read (no speed assertions)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

KEYS = {
    "scenario",
    "metric",
    "value",
    "unit",
    "ceiling_name",
    "ceiling_value",
    "ratio",
    "target_ratio",
    "notes",
}


def test_quick_run_reports_every_scenario() -> None:
    path = Path(__file__).resolve().parents[2] / "benches" / "codec.py"
    spec = importlib.util.spec_from_file_location("raftlog_bench_codec", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = module.measure(quick=True)
    assert len(rows) == 4
    for row in rows:
        assert set(row) == KEYS
        assert row["value"] > 0 and row["ceiling_value"] > 0
        assert row["ratio"] == round(row["value"] / row["ceiling_value"], 3)
