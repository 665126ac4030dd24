"""Append throughput with fsync before acknowledgement, against a plain write+fdatasync.

raftlog: `SegmentedLog` with fsync policy ALWAYS and the trio group committer; several
producer tasks each append a stamped batch and wait until it is durable. Ceiling: one
loop of `write` + `fdatasync` per block of the same size, to a file on the same disk.
Target: >= 0.7x the ceiling.
"""

import os
import shutil
import time

import trio

from benches.common import Result, Settings, ratio
from raftlog import native
from raftlog.limits import MIB, StorageLimits
from raftlog.native_twin import build_value_batch
from raftlog.storage import FsyncPolicy, GroupCommitter, LogConfig, SegmentedLog, stamp

PRODUCERS = 4


def _plain_loop_mbps(settings: Settings, block: bytes, total_bytes: int) -> float:
    path = settings.work_directory / "plain.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        start = time.perf_counter()
        written = 0
        while written < total_bytes:
            view = memoryview(block)
            while view:
                view = view[os.write(fd, view):]
            os.fdatasync(fd)
            written += len(block)
        elapsed = time.perf_counter() - start
    finally:
        os.close(fd)
        path.unlink()
    return written / elapsed / 1e6


def _raftlog_mbps(settings: Settings, batch: bytearray,
                  total_bytes: int) -> tuple[float, float]:
    """(MB/s, appends per fdatasync)."""
    directory = settings.work_directory / "log"
    limits = StorageLimits(batch_bytes_max=max(len(batch), MIB), segment_bytes_max=1 << 30)
    config = LogConfig(limits=limits, segment_age_ms_max=None, retention_age_ms_max=None)
    log = SegmentedLog.open(directory, config)
    committer = GroupCommitter(log, FsyncPolicy.ALWAYS)
    appends_each = max(1, total_bytes // len(batch) // PRODUCERS)

    async def producer() -> None:
        own = bytearray(batch)
        for _ in range(appends_each):
            stamp(own, log.next_offset, 1)
            result = log.append(own)
            await committer.wait_durable(result.entry_index)

    async def main() -> float:
        async with trio.open_nursery() as nursery:
            await nursery.start(committer.run)
            start = time.perf_counter()
            async with trio.open_nursery() as producers:
                for _ in range(PRODUCERS):
                    producers.start_soon(producer)
            elapsed = time.perf_counter() - start
            nursery.cancel_scope.cancel()
        return elapsed

    try:
        elapsed = trio.run(main)
        written = appends_each * PRODUCERS * len(batch)
        fsyncs = committer.statistics().fsync_count
    finally:
        log.close()
        shutil.rmtree(directory)
    return written / elapsed / 1e6, appends_each * PRODUCERS / max(1, fsyncs)


def run(settings: Settings) -> list[Result]:
    settings.work_directory.mkdir(parents=True, exist_ok=True)
    results = []
    for label, value_bytes in (("64 KiB", 64 * 1024), ("1 MiB", MIB)):
        total_bytes = settings.size_bytes(64 * MIB, 512 * MIB, floor_bytes=value_bytes * 8)
        batch = build_value_batch(value_bytes - 200, record_count=4,
                                  crc_function=native.crc32c)
        plain = _plain_loop_mbps(settings, bytes(batch), total_bytes)
        mbps, appends_per_fsync = _raftlog_mbps(settings, batch, total_bytes)
        results.append(Result(
            "append", f"append {label} batches, fsync=always, group commit", mbps, "MB/s",
            f"write+fdatasync loop, {label} blocks (same run, same disk)", plain,
            ratio(mbps, plain), 0.7,
            f"{PRODUCERS} producers, {appends_per_fsync:.1f} appends per fdatasync, "
            f"{total_bytes / MIB:.0f} MiB each side"))
    return results
