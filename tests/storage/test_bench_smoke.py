"""The benchmark harness runs end to end (tiny sizes) and writes the JSON it promises."""

import json
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_quick_tiny_run_writes_every_scenario(tmp_path: pathlib.Path) -> None:
    json_path = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, "-m", "benches", "--quick", "--scale", "0.02",
         "--only", "crc", "--only", "append", "--only", "recovery", "--json",
         str(json_path), "--dir", str(tmp_path / "disk")],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr
    document = json.loads(json_path.read_text())
    results = document["results"]
    assert document["quick"] is True
    assert {result["scenario"] for result in results} == {"crc", "append", "recovery"}
    assert len(results) == 5
    for result in results:
        assert result["value"] > 0, result
        assert result["ceiling_value"] is None or result["ceiling_value"] > 0
        assert result["meets_target"] in (True, False, None)
    assert "scenario" in completed.stdout
    assert "recovery" in completed.stdout
    assert not any((tmp_path / "disk").glob("work-*")), "scenario files were left behind"
