"""Child for the power-loss test: syncs some appends, leaves the last ones unsynced, waits.

Usage: python power_loss_child.py DATA_DIR EMULATE(0|1) SYNCED UNSYNCED
Prints "DURABLE d WRITTEN w" once the appends are done (d counts what rolls sealed as
well as what `sync` covered), then sleeps until the parent SIGKILLs it.
"""

import pathlib
import sys
import time

from raftlog.storage import SegmentedLog, power_loss, stamp

from .crash_child import CONFIG, expected_batch


def _append_next(log: SegmentedLog) -> None:
    batch = expected_batch(log.last_entry_index + 1)
    stamp(batch, log.next_offset, 1)
    log.append(batch)


def main() -> None:
    data_dir, emulate = pathlib.Path(sys.argv[1]), sys.argv[2] == "1"
    synced, unsynced = int(sys.argv[3]), int(sys.argv[4])
    if emulate:
        power_loss.enable(data_dir)
    log = SegmentedLog.open(data_dir / "log", CONFIG)
    for _ in range(synced):
        _append_next(log)
        log.sync()
    for _ in range(unsynced):
        _append_next(log)
    print(f"DURABLE {log.durable_entry_index} WRITTEN {log.last_entry_index}", flush=True)
    time.sleep(60)


if __name__ == "__main__":
    main()
