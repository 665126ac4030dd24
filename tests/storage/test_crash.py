"""Crash safety with real processes: SIGKILL an appender, reopen, check every byte.

Every batch acknowledged (printed after fdatasync) must be in the log, intact and in
order; a torn tail must be cut. The child alternates between group commit (many tasks,
one fsync) and a single appender that deliberately leaves half-written batches.
"""

import os
import pathlib
import random
import signal
import subprocess
import sys

import pytest

from raftlog import native
from raftlog.storage import SegmentedLog

from .crash_child import CONFIG, expected_batch

CHILD = pathlib.Path(__file__).with_name("crash_child.py")
ITERATIONS = 6


def _run_and_kill(directory: pathlib.Path, mode: str, seed: int, kill_after_acks: int,
                  kill_on_torn: bool) -> tuple[dict[int, int], int | None]:
    """Run the child until it acknowledged enough (or tore a write), then SIGKILL it.
    Returns ({entry: base_offset} acknowledged, size of the torn write it was killed in)."""
    process = subprocess.Popen([sys.executable, str(CHILD), str(directory), mode, str(seed)],
                               stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(CHILD.parents[2])})
    acknowledged: dict[int, int] = {}
    torn_size = None
    try:
        assert process.stdout is not None
        for line in process.stdout:
            kind, *fields = line.split()
            if kind == "ACK":
                acknowledged[int(fields[0])] = int(fields[1])
            if kind == "TORN" and kill_on_torn and len(acknowledged) >= 3:
                torn_size = int(fields[0])
                break
            if len(acknowledged) >= kill_after_acks and not kill_on_torn:
                break
        else:
            pytest.fail(f"child exited early with {process.wait()}")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    return acknowledged, torn_size


def _check_log(directory: pathlib.Path, acknowledged: dict[int, int]) -> SegmentedLog:
    log = SegmentedLog.open(directory, CONFIG)
    assert log.last_entry_index >= max(acknowledged, default=0)
    entries = log.read_entries(1, 10**9, 10**6)
    assert len(entries) == log.last_entry_index
    next_offset = 0
    for entry_index, data in enumerate(entries, start=1):
        expected = expected_batch(entry_index)
        native.stamp_batch(expected, next_offset, 1)
        assert data == bytes(expected), f"entry {entry_index} differs"
        if entry_index in acknowledged:
            assert acknowledged[entry_index] == next_offset
        next_offset = native.parse_batch_header(data).last_offset + 1
    assert log.next_offset == next_offset
    return log


def test_acknowledged_appends_survive_sigkill(tmp_path: pathlib.Path) -> None:
    rng = random.Random(2024)
    acknowledged: dict[int, int] = {}
    torn_cuts = []
    for iteration in range(ITERATIONS):
        mode = "torn" if iteration % 2 else "group"
        kill_on_torn = iteration in (1, 3)
        acks, torn_size = _run_and_kill(tmp_path, mode, seed=iteration,
                                        kill_after_acks=rng.randrange(5, 80),
                                        kill_on_torn=kill_on_torn)
        acknowledged.update(acks)
        log = _check_log(tmp_path, acknowledged)
        if torn_size is not None:
            torn_cuts.append((log.recovery.truncated_bytes, torn_size))
        log.close()
    assert len(torn_cuts) == 2
    assert all(cut == size for cut, size in torn_cuts), torn_cuts
    with SegmentedLog.open(tmp_path, CONFIG) as log:
        assert len(log.segments()) > 1, "the test should cross segment rolls"
