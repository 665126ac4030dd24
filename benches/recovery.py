"""Recovery time after SIGKILL, shown to depend on the tail segment, not the log.

A log of many segments is built, a child process appends to it with fsync=always and
is SIGKILLed, then the log is opened (recovery) and timed. The same tail segment is then
copied alone into a fresh directory, which is a complete log by itself, and its recovery
is timed too. If recovery is proportional to the tail, the two times are close: the
result's ratio is tail-only time / whole-log time, target >= 0.5 (the whole log may cost
at most twice its tail), whatever the log's size.
"""

import os
import shutil
import signal
import subprocess
import sys
import time

from benches.common import Result, Settings, median_seconds
from raftlog import native
from raftlog.limits import MIB, StorageLimits
from raftlog.native_twin import build_value_batch
from raftlog.storage import FsyncPolicy, LogConfig, SegmentedLog, files, stamp

BATCH_VALUE_BYTES = 64 * 1024 - 512


def log_config(segment_bytes: int) -> LogConfig:
    limits = StorageLimits(batch_bytes_max=MIB, segment_bytes_max=segment_bytes,
                           index_interval_bytes=4096)
    return LogConfig(limits=limits, segment_age_ms_max=None, retention_age_ms_max=None,
                     fsync_policy=FsyncPolicy.NEVER_UNSAFE)


def _build(directory: os.PathLike[str], total_bytes: int, segment_bytes: int) -> None:
    batch = build_value_batch(BATCH_VALUE_BYTES, record_count=8, crc_function=native.crc32c)
    with SegmentedLog.open(directory, log_config(segment_bytes)) as log:
        while log.size_bytes + len(batch) <= total_bytes:
            stamp(batch, log.next_offset, 1)
            log.append(batch)


def _append_and_kill(settings: Settings, directory: os.PathLike[str], segment_bytes: int,
                     acks: int) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "benches.recovery_child", str(directory), str(segment_bytes)],
        stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
    try:
        assert process.stdout is not None
        for count, _ in enumerate(process.stdout, start=1):
            if count >= acks:
                break
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)


def _open_seconds(directory: os.PathLike[str], segment_bytes: int) -> tuple[float, int]:
    """(median seconds to open, tail bytes scanned)."""
    scanned = []

    def open_once() -> None:
        log = SegmentedLog.open(directory, log_config(segment_bytes))
        scanned.append(log.recovery.scanned_bytes)
        log.close()

    return median_seconds(open_once, repeats=3), scanned[0]


def run(settings: Settings) -> list[Result]:
    log_bytes = settings.size_bytes(64 * MIB, 1024 * MIB, floor_bytes=4 * MIB)
    segment_bytes = max(2 * MIB, log_bytes // 8)
    whole = settings.work_directory / "recovery-whole"
    tail_only = settings.work_directory / "recovery-tail"
    for directory in (whole, tail_only):
        shutil.rmtree(directory, ignore_errors=True)
    try:
        started = time.perf_counter()
        _build(whole, log_bytes - segment_bytes // 2, segment_bytes)
        build_seconds = time.perf_counter() - started
        _append_and_kill(settings, whole, segment_bytes, acks=8)
        first_open = SegmentedLog.open(whole, log_config(segment_bytes))
        report = first_open.recovery
        segment_count = len(first_open.segments())
        tail_base = first_open.segments()[-1].base_offset
        first_open.close()
        whole_seconds, tail_bytes = _open_seconds(whole, segment_bytes)
        tail_only.mkdir(parents=True)
        for path in (files.data_path(whole, tail_base), files.meta_path(whole, tail_base)):
            shutil.copyfile(path, tail_only / path.name)
        tail_seconds, _ = _open_seconds(tail_only, segment_bytes)
    finally:
        for directory in (whole, tail_only):
            shutil.rmtree(directory, ignore_errors=True)
    log_mib = log_bytes / MIB
    return [
        Result("recovery", f"open after SIGKILL, {log_mib:.0f} MiB log in {segment_count} "
               "segments", whole_seconds * 1000, "ms",
               "open of its tail segment alone (same bytes to scan)", tail_seconds * 1000,
               tail_seconds / whole_seconds if whole_seconds else 0.0, 0.5,
               f"tail {tail_bytes / MIB:.1f} MiB scanned at "
               f"{tail_bytes / whole_seconds / 1e9:.2f} GB/s; first open after the kill cut "
               f"{report.truncated_bytes} torn bytes; building the log took "
               f"{build_seconds:.1f} s"),
    ]
