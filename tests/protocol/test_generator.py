"""The checked-in generated code is exactly what the generator makes from the schemas."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from raftlog.protocol.generator import (
    DEFAULT_OUTPUT_DIR,
    default_schema_dir,
    generate,
    kafka_commit,
)
from raftlog.protocol.generator.schema import Versions, snake_case


def test_regenerating_changes_nothing(tmp_path: Path) -> None:
    generate(default_schema_dir(), tmp_path)
    fresh = {path.name: path.read_text(encoding="utf-8") for path in tmp_path.glob("*.py")}
    checked_in = {
        path.name: path.read_text(encoding="utf-8") for path in DEFAULT_OUTPUT_DIR.glob("*.py")
    }
    assert sorted(fresh) == sorted(checked_in)
    stale = [name for name in fresh if fresh[name] != checked_in[name]]
    assert not stale, f"regenerate with `python -m raftlog.protocol.generator`: {stale[:5]}"


def test_every_generated_module_names_the_kafka_commit() -> None:
    commit = kafka_commit(default_schema_dir())
    assert len(commit) == 40
    for path in DEFAULT_OUTPUT_DIR.glob("*.py"):
        head = path.read_text(encoding="utf-8")[:600]
        assert commit in head, path.name
        assert "do not edit" in head.lower(), path.name


def test_generator_runs_as_a_module_with_a_schema_override(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "raftlog.protocol.generator",
            "--schemas",
            str(default_schema_dir()),
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "wrote" in result.stdout
    assert (tmp_path / "produce_request.py").exists()
    assert (tmp_path / "registry.py").exists()


def test_version_specs_and_names() -> None:
    assert 3 in Versions.parse("3+") and 2 not in Versions.parse("3+")
    assert 0 in Versions.parse("0-2") and 3 not in Versions.parse("0-2")
    assert Versions.parse("none").empty and 0 not in Versions.parse("none")
    assert 5 in Versions.parse("5") and 6 not in Versions.parse("5")
    assert snake_case("ThrottleTimeMs") == "throttle_time_ms"
    assert snake_case("KRaftVersion") == "kraft_version"
    assert snake_case("isKRaftController") == "is_kraft_controller"
    assert snake_case("TopicId") == "topic_id"
