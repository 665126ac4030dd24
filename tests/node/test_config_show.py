"""`raftlog config show`: the effective settings, with the documented precedence.

defaults < TOML file < RAFTLOG_* environment < flags; an unknown key is an error that
names it, with the configuration exit code.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys


def _show(
    *arguments: str, environment: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "raftlog.cli", "config", "show", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(environment or {})},
        check=False,
    )


def test_precedence_defaults_file_environment_flags(tmp_path: pathlib.Path) -> None:
    settings = tmp_path / "raftlog.toml"
    settings.write_text('segment_ms = 1000\nretention_ms = 2000\nlog_format = "json"\n')
    shown = _show(
        "--config", str(settings), "--retention-ms", "4000", "--format", "json",
        environment={"RAFTLOG_RETENTION_MS": "3000", "RAFTLOG_SEGMENT_MS": "5000"},
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    values = json.loads(shown.stdout)
    assert values["retention_ms"] == "4000"  # flag over environment over file
    assert values["segment_ms"] == "5000"  # environment over file
    assert values["log_format"] == "json"  # file over default
    assert values["fsync"] == "always"  # default
    text = _show()
    assert text.returncode == 0 and "kafka_addr" in text.stdout and "127.0.0.1:9092" in text.stdout


def test_unknown_keys_are_named(tmp_path: pathlib.Path) -> None:
    settings = tmp_path / "raftlog.toml"
    settings.write_text("segmnet_ms = 1000\n")
    shown = _show("--config", str(settings))
    assert shown.returncode != 0
    assert "segmnet_ms" in shown.stderr
