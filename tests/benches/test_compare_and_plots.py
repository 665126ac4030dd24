"""`python -m benches compare` flags regressions (and only them), and the plots are drawn."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest
from PIL import Image

from benches.compare import changes
from benches.plots import write_plots

REPO = pathlib.Path(__file__).resolve().parents[2]


def _row(metric: str, value: float, unit: str, ratio: float | None = None, **extra: object) -> dict:
    return {"scenario": "demo", "metric": metric, "value": value, "unit": unit, "ratio": ratio,
            "target_ratio": 1.0 if ratio is not None else None,
            "meets_target": None if ratio is None else ratio >= 1.0, **extra}


def _document(rows: list[dict]) -> dict:
    return {"started": "2026-11-23T05:00:00", "machine": {"cpus": 2}, "results": rows}


def _compare(tmp_path: pathlib.Path, old: dict, new: dict) -> subprocess.CompletedProcess[str]:
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "new.json").write_text(json.dumps(new))
    return subprocess.run(
        [sys.executable, "-m", "benches", "compare", str(tmp_path / "old.json"),
         str(tmp_path / "new.json")],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_a_slower_throughput_and_a_slower_latency_are_regressions(tmp_path: pathlib.Path) -> None:
    old = _document([_row("rate", 1000, "records/s"), _row("p50", 10, "ms"),
                     _row("steady", 100, "MB/s")])
    new = _document([_row("rate", 700, "records/s"), _row("p50", 15, "ms"),
                     _row("steady", 95, "MB/s")])
    completed = _compare(tmp_path, old, new)
    assert completed.returncode == 1, completed.stdout
    lines = {line.split()[1]: line for line in completed.stdout.splitlines()[1:] if line.strip()
             and line.startswith("demo")}
    assert "REGRESSED" in lines["rate"] and "REGRESSED" in lines["p50"]
    assert "same" in lines["steady"]
    assert "2 regression(s)" in completed.stdout


def test_faster_figures_and_a_steady_ratio_are_not_regressions(tmp_path: pathlib.Path) -> None:
    # The whole machine was slower: the value fell, but so did the same-run peer.
    old = _document([_row("vs-peer", 1000, "records/s", ratio=3.0), _row("p50", 10, "ms")])
    new = _document([_row("vs-peer", 600, "records/s", ratio=3.1), _row("p50", 5, "ms"),
                     _row("added", 1, "GB/s")])
    completed = _compare(tmp_path, old, new)
    assert completed.returncode == 0, completed.stdout
    found = {change.metric: change for change in changes(old, new)}
    assert found["p50"].change == pytest.approx(0.5)
    assert found["added"].old is None


def test_unusable_input_exits_2(tmp_path: pathlib.Path) -> None:
    (tmp_path / "bad.json").write_text("{}")
    completed = subprocess.run(
        [sys.executable, "-m", "benches", "compare", str(tmp_path / "bad.json"),
         str(tmp_path / "bad.json")],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert completed.returncode == 2
    assert "not a benches result file" in completed.stderr


def test_plots_show_ratios_and_sweeps(tmp_path: pathlib.Path) -> None:
    rows = [_row("vs-peer", 1000, "records/s", ratio=1.4), _row("vs-ceiling", 5, "GB/s", 0.6)]
    for size, rate in ((100, 50_000), (1024, 20_000), (16384, 3000)):
        rows.append(_row(f"produce {size} B", rate, "records/s", sweep={"record bytes": size},
                         family="acks=all"))
        rows.append(_row(f"produce {size} B p99", 10 + size / 1000, "ms",
                         sweep={"record bytes": size}, family="p99"))
    json_path = tmp_path / "run.json"
    written = write_plots(_document(rows), json_path)
    names = sorted(path.name for path in written)
    assert names == [
        "run-demo-ms-by-record_bytes.png",
        "run-demo-records_per_s-by-record_bytes.png",
        "run-ratios.png",
    ]
    for path in written:
        with Image.open(path) as image:
            colors = image.convert("RGB").getcolors(maxcolors=1 << 16)
            assert colors is None or len(colors) > 10, f"{path.name} looks blank"
