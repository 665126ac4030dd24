"""A crash at any point of a compaction swap leaves the old or the new segment, whole.

A child swaps a segment's data between its original and compacted bytes in a loop and is
SIGKILLed at a random moment; reopening must find exactly one of the two, an index that
serves every offset, and no leftover temporary file.
"""

import os
import pathlib
import random
import signal
import subprocess
import sys
import time

from raftlog import native
from raftlog.storage import SegmentedLog
from raftlog.storage.compaction import compact_data

from .compaction_helpers import CONFIG, keyed_log, offset_map

CHILD = pathlib.Path(__file__).with_name("compaction_crash_child.py")
ITERATIONS = 12


def test_a_killed_swap_leaves_the_old_or_the_new_segment(tmp_path: pathlib.Path) -> None:
    directory = tmp_path / "log"
    log = keyed_log(directory, 60)
    base = log.segments()[1].base_offset
    original = log.read_segment_data(base).data
    compacted = compact_data(original, offset_map(log), drop_tombstones=False).data
    assert compacted != original
    next_offset, entries = log.next_offset, log.last_entry_index
    log.close()
    original_file = tmp_path / "original.bin"
    original_file.write_bytes(original)
    rng = random.Random(7)
    seen = set()
    for _ in range(ITERATIONS):
        process = subprocess.Popen(
            [sys.executable, str(CHILD), str(directory), str(base), str(original_file)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(CHILD.parents[2])},
        )
        try:
            assert process.stdout is not None
            for _line in zip(range(rng.randrange(1, 6)), process.stdout, strict=False):
                pass
            time.sleep(rng.random() * 0.01)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        reopened = SegmentedLog.open(directory, CONFIG)
        data = reopened.read_segment_data(base).data
        assert data in (original, compacted)
        seen.add(data == compacted)
        assert (reopened.next_offset, reopened.last_entry_index) == (next_offset, entries)
        for offset in range(base, base + 40):
            header = native.parse_batch_header(
                reopened.read_slice(reopened.read_by_offset(offset, 1))
            )
            assert header.base_offset <= offset <= header.last_offset
        reopened.close()
        assert not [p for p in os.listdir(directory) if p.endswith(".tmp")]
    assert seen == {True, False}
