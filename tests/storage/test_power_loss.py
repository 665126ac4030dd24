"""The test-only power-loss emulation loses exactly the unfsynced bytes, and only with it on.

Without the emulation a SIGKILL keeps everything `write` accepted (the page cache
survives), which is why the chaos suite cannot catch an acknowledgement sent before its
fsync by killing processes alone.
"""

import os
import pathlib
import signal
import subprocess
import sys

import pytest

from raftlog import native
from raftlog.storage import SegmentedLog, power_loss

from .crash_child import CONFIG, expected_batch

ROOT = pathlib.Path(__file__).parents[2]


def _run_and_kill(data_dir: pathlib.Path, emulate: bool, synced: int, unsynced: int) -> tuple[
    int, int
]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.storage.power_loss_child", str(data_dir),
         "1" if emulate else "0", str(synced), str(unsynced)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().split()
        if not line:
            pytest.fail(f"child exited early with {process.wait()}")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert line[0] == "DURABLE" and line[2] == "WRITTEN"
    return int(line[1]), int(line[3])


def _entries_after_restart(data_dir: pathlib.Path, emulate: bool) -> int:
    if emulate:
        power_loss.enable(data_dir)
        power_loss.disable()
    with SegmentedLog.open(data_dir / "log", CONFIG) as log:
        entries = log.read_entries(1, 10**9, 10**7)
        next_offset = 0
        for entry_index, data in enumerate(entries, start=1):
            expected = expected_batch(entry_index)
            native.stamp_batch(expected, next_offset, 1)
            assert data == bytes(expected), f"entry {entry_index} differs"
            next_offset = native.parse_batch_header(data).last_offset + 1
        assert log.recovery.truncated_bytes == 0, "the cut must fall on a batch boundary"
        return log.last_entry_index


def test_sigkill_with_emulation_loses_exactly_the_unsynced_appends(tmp_path: pathlib.Path) -> None:
    durable, written = _run_and_kill(tmp_path, emulate=True, synced=150, unsynced=12)
    assert durable >= 150 and written == 162
    assert durable < written, "the unsynced appends should still be in the active segment"
    assert _entries_after_restart(tmp_path, emulate=True) == durable
    # A second crash cycle on the cut log: the journal starts afresh from what survived.
    durable2, written2 = _run_and_kill(tmp_path, emulate=True, synced=5, unsynced=3)
    assert written2 == durable + 8
    assert _entries_after_restart(tmp_path, emulate=True) == durable2


def test_sigkill_without_emulation_keeps_the_page_cache(tmp_path: pathlib.Path) -> None:
    durable, written = _run_and_kill(tmp_path, emulate=False, synced=150, unsynced=12)
    assert durable < written
    assert _entries_after_restart(tmp_path, emulate=False) == written
