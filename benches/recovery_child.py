"""Appends to a log until SIGKILLed, for the recovery scenario.

Usage: python -m benches.recovery_child DIRECTORY SEGMENT_BYTES
"""

import sys

from benches.recovery import BATCH_VALUE_BYTES, log_config
from raftlog import native
from raftlog.native_twin import build_value_batch
from raftlog.storage import SegmentedLog, stamp


def main() -> None:
    log = SegmentedLog.open(sys.argv[1], log_config(int(sys.argv[2])))
    batch = build_value_batch(BATCH_VALUE_BYTES, record_count=8, crc_function=native.crc32c)
    while True:
        stamp(batch, log.next_offset, 1)
        log.append(batch)
        log.sync()
        sys.stdout.write("ACK\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
