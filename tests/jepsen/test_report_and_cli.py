"""The run directory the report writer produces, and ``python -m jepsen_like check``."""

import json
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

from jepsen_like.__main__ import main
from jepsen_like.checkers import Verdict
from jepsen_like.history import History, Poll, Type
from jepsen_like.nemesis import Edge, NemesisEvent, intervals, read_nemesis
from jepsen_like.report import (
    ANOMALIES_FILE,
    HISTORY_FILE,
    LATENCY_FILE,
    NEMESIS_FILE,
    RESULTS_FILE,
    RUN_FILE,
    THROUGHPUT_FILE,
    Run,
    RunInfo,
    write_recording,
    write_report,
)
from jepsen_like.synthetic import simulate_queue

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REPOSITORY = Path(__file__).resolve().parents[2]


def _events() -> list[NemesisEvent]:
    return [
        NemesisEvent(500_000_000, Edge.START, "partition", ("n1", "n2"), 1),
        NemesisEvent(1_200_000_000, Edge.STOP, "partition", ("n1", "n2"), 1),
        NemesisEvent(2_000_000_000, Edge.START, "kill", ("n3",), 2),
    ]


def _run(seed: int = 11, *, lose_a_write: bool = False) -> Run:
    entries = simulate_queue(seed, steps=300)
    if lose_a_write:
        history = History.from_entries(entries)
        victim = next(op for op in history.by_f("send") if op.type is Type.OK).value
        entries = [_without(entry, victim.tp, victim.value) for entry in entries]
    return Run(RunInfo(seed=seed), History.from_entries(entries), tuple(_events()))


def _without(entry, tp, value):
    if entry.type is not Type.OK or not isinstance(entry.value, Poll):
        return entry
    reads = tuple(
        (t, tuple(r for r in rs if (t, r[1]) != (tp, value))) for t, rs in entry.value.reads
    )
    return attrs.evolve(entry, value=Poll(reads))


def test_report_writes_every_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    outcome = write_report(tmp_path, _run())
    for name in (RUN_FILE, HISTORY_FILE, NEMESIS_FILE, ANOMALIES_FILE, RESULTS_FILE):
        assert (tmp_path / name).is_file(), name
    for name in (THROUGHPUT_FILE, LATENCY_FILE):
        data = (tmp_path / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE), name
        assert len(data) > 5_000, "an empty canvas would be much smaller"
    assert outcome.verdict is Verdict.VALID
    line = (tmp_path / RESULTS_FILE).read_text().strip()
    assert line == outcome.line
    assert line.startswith("VALID") and "seed 11" in line
    assert capsys.readouterr().out.strip() == line
    anomalies = json.loads((tmp_path / ANOMALIES_FILE).read_text())
    assert anomalies["verdict"] == "valid" and anomalies["seed"] == 11
    assert {c["checker"] for c in anomalies["checkers"]} >= {
        "lost-writes",
        "duplicates",
        "linearizable-log",
        "linearizable-register",
    }
    assert read_nemesis(tmp_path / NEMESIS_FILE) == _events()


def test_failing_report_names_the_anomaly_with_its_operations(tmp_path: Path) -> None:
    outcome = write_report(tmp_path, _run(lose_a_write=True))
    assert outcome.verdict is Verdict.INVALID
    assert outcome.exit_code == 1
    assert "lost-write x1" in outcome.line and "seed 11" in outcome.line
    anomalies = json.loads((tmp_path / ANOMALIES_FILE).read_text())
    lost = next(c for c in anomalies["checkers"] if c["checker"] == "lost-writes")
    assert lost["verdict"] == "invalid"
    (anomaly,) = lost["anomalies"]
    assert anomaly["kind"] == "lost-write"
    assert anomaly["operations"][0]["invoke"]["f"] == "send"
    assert anomaly["operations"][0]["completion"]["type"] == "ok"


def test_nemesis_events_become_intervals() -> None:
    faults = intervals(_events())
    assert [(f.kind, f.start_ns, f.stop_ns) for f in faults] == [
        ("partition", 500_000_000, 1_200_000_000),
        ("kill", 2_000_000_000, None),
    ]


def test_check_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    valid, invalid = tmp_path / "valid", tmp_path / "invalid"
    write_recording(valid, _run())
    write_recording(invalid, _run(lose_a_write=True))
    assert main(["check", str(valid)]) == 0
    assert capsys.readouterr().out.startswith("VALID")
    assert main(["check", str(invalid)]) == 1
    assert "lost-write" in capsys.readouterr().out
    assert main(["check", str(valid), "--time-budget-s", "0"]) == 2
    assert capsys.readouterr().out.startswith("UNKNOWN")
    assert main(["check", str(tmp_path / "missing")]) == 2
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / HISTORY_FILE).write_text("{not json\n")
    assert main(["check", str(tmp_path / "broken")]) == 2


def test_check_write_rebuilds_the_findings(tmp_path: Path) -> None:
    write_recording(tmp_path, _run(lose_a_write=True))
    assert not (tmp_path / RESULTS_FILE).exists()
    assert main(["check", str(tmp_path), "--write"]) == 1
    assert (tmp_path / RESULTS_FILE).read_text().startswith("INVALID")
    assert (tmp_path / THROUGHPUT_FILE).read_bytes().startswith(PNG_SIGNATURE)


def test_module_entry_point_in_a_subprocess(tmp_path: Path) -> None:
    write_recording(tmp_path, _run(lose_a_write=True))
    completed = subprocess.run(
        [sys.executable, "-m", "jepsen_like", "check", str(tmp_path)],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 1, completed.stderr
    assert completed.stdout.startswith("INVALID")
