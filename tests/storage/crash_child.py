"""Child process for the crash tests: appends until killed, printing each acknowledgement.

Usage: python crash_child.py DIRECTORY MODE SEED
  MODE "group": 8 trio tasks append concurrently and wait on the group committer
                (fsync policy ALWAYS); a line "ACK entry base_offset" is printed only
                after `wait_durable` returned.
  MODE "torn":  one appender that, before some appends, writes the first part of the
                batch at the end of the file and sleeps, printing "TORN size": a kill
                then leaves exactly what a crash in the middle of a write leaves.
Batch contents are a pure function of the entry index (see `expected_batch`), so the
parent can check every byte it reads back.
"""

import os
import pathlib
import random
import sys

import trio

from raftlog import native
from raftlog.limits import StorageLimits
from raftlog.native_twin import Record, build_batch
from raftlog.storage import FsyncPolicy, GroupCommitter, LogConfig, SegmentedLog, stamp

CONFIG = LogConfig(limits=StorageLimits(batch_bytes_max=8192, segment_bytes_max=64 * 1024,
                                        index_interval_bytes=1024,
                                        recovery_chunk_bytes=64 * 1024),
                   segment_age_ms_max=None, retention_age_ms_max=None,
                   fsync_policy=FsyncPolicy.ALWAYS)


def expected_batch(entry_index: int) -> bytearray:
    """The producer batch (unstamped) that the child appends as entry `entry_index`."""
    rng = random.Random(entry_index)
    return build_batch([Record(value=rng.randbytes(rng.randrange(10, 700)),
                               key=str(entry_index).encode(), timestamp_delta=i)
                        for i in range(1 + entry_index % 3)],
                       base_timestamp=entry_index * 10, crc_function=native.crc32c)


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _append_next(log: SegmentedLog) -> tuple[int, int]:
    batch = expected_batch(log.last_entry_index + 1)
    stamp(batch, log.next_offset, 1)
    result = log.append(batch)
    return result.entry_index, result.base_offset


async def _group(log: SegmentedLog) -> None:
    committer = GroupCommitter(log, FsyncPolicy.ALWAYS)

    async def appender() -> None:
        while True:
            entry_index, base_offset = _append_next(log)
            await committer.wait_durable(entry_index)
            _say(f"ACK {entry_index} {base_offset}")

    async with trio.open_nursery() as nursery:
        await nursery.start(committer.run)
        for _ in range(8):
            nursery.start_soon(appender)


def _torn(log: SegmentedLog, rng: random.Random) -> None:
    while True:
        if rng.random() < 0.2:
            partial = expected_batch(log.last_entry_index + 1)
            stamp(partial, log.next_offset, 1)
            size = rng.randrange(1, len(partial))
            tail = log.segments()[-1]
            fd = os.open(tail.path, os.O_WRONLY)
            os.pwrite(fd, bytes(partial[:size]), tail.size_bytes)
            os.close(fd)
            _say(f"TORN {size}")
            trio.run(trio.sleep, 0.05)
        entry_index, base_offset = _append_next(log)
        log.sync()
        _say(f"ACK {entry_index} {base_offset}")


def main() -> None:
    directory, mode, seed = pathlib.Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    log = SegmentedLog.open(directory, CONFIG)
    _say(f"OPEN {log.last_entry_index} {log.recovery.truncated_bytes}")
    if mode == "group":
        trio.run(_group, log)
    else:
        _torn(log, random.Random(seed))


if __name__ == "__main__":
    main()
