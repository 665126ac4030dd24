"""Scripted exchanges replayed from tests/raft/testdata/*.txt and compared with the stored
output. To accept new output after a deliberate change, rewrite the files and review the diff:

    RAFTLOG_REWRITE=1 python -m pytest tests/raft/test_transcripts.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from raftlog.sim.transcript import run_transcript

TESTDATA = Path(__file__).parent / "testdata"
TRANSCRIPTS = sorted(TESTDATA.glob("*.txt"))


def test_there_are_transcripts() -> None:
    assert len(TRANSCRIPTS) >= 5


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=[path.stem for path in TRANSCRIPTS])
def test_transcript(path: Path) -> None:
    expected = path.read_text()
    actual = run_transcript(expected)
    if os.environ.get("RAFTLOG_REWRITE") == "1":
        path.write_text(actual)
        return
    assert actual == expected, f"{path.name} differs; rerun with RAFTLOG_REWRITE=1 and review"
