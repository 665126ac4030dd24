"""Child process for the compaction crash test: swaps a segment's data back and forth.

Usage: python compaction_crash_child.py DIRECTORY BASE_OFFSET ORIGINAL_FILE
A is the segment's original data (in ORIGINAL_FILE), B is A compacted against the
whole log; the child swaps B, A, B, ...
forever, printing "SWAPPED n" after each swap, until the parent SIGKILLs it.
"""

import pathlib
import sys

from raftlog.storage import SegmentedLog
from raftlog.storage.compaction import OffsetMap, compact_data
from raftlog.storage.segment import write_replacement
from tests.storage.compaction_helpers import CONFIG


def main() -> None:
    directory, base = pathlib.Path(sys.argv[1]), int(sys.argv[2])
    log = SegmentedLog.open(directory, CONFIG)
    original = pathlib.Path(sys.argv[3]).read_bytes()
    offsets = OffsetMap()
    for info in log.segments():
        offsets.add(log.read_segment_data(info.base_offset).data)
    compacted = compact_data(original, offsets, drop_tombstones=False).data
    swaps = 0
    while True:
        data = compacted if swaps % 2 == 0 else original
        source = log.read_segment_data(base)
        fd = write_replacement(log.replacement_path(base), data)
        log.replace_segment_data(base, fd, source.changes)
        swaps += 1
        sys.stdout.write(f"SWAPPED {swaps}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
