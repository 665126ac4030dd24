"""Building logs for tests: small limits so that rolls and index entries happen often."""

import pathlib

from raftlog import native
from raftlog.limits import StorageLimits
from raftlog.native_twin import Record, build_batch
from raftlog.storage import LogConfig, SegmentedLog, stamp

SMALL_LIMITS = StorageLimits(batch_bytes_max=4096, segment_bytes_max=4096,
                             index_interval_bytes=256, recovery_chunk_bytes=8192)


def small_config(**overrides: object) -> LogConfig:
    values: dict[str, object] = {"limits": SMALL_LIMITS, "segment_age_ms_max": None,
                                 "retention_age_ms_max": None}
    values.update(overrides)
    return LogConfig(**values)  # type: ignore[arg-type]


def make_batch(tag: int, records: int = 2, value_bytes: int = 20,
               base_timestamp: int = 1_000) -> bytearray:
    """A producer batch whose record values encode `tag`, so a read can be checked."""
    return build_batch([Record(value=f"{tag}:{i}:".encode().ljust(value_bytes, b"."),
                               timestamp_delta=i) for i in range(records)],
                       base_timestamp=base_timestamp, crc_function=native.crc32c)


def append_tagged(log: SegmentedLog, tag: int, epoch: int = 1, records: int = 2,
                  value_bytes: int = 20, base_timestamp: int = 1_000) -> bytes:
    batch = make_batch(tag, records, value_bytes, base_timestamp)
    stamp(batch, log.next_offset, epoch)
    log.append(batch)
    return bytes(batch)


def data_files(directory: pathlib.Path) -> list[pathlib.Path]:
    return sorted(directory.glob("*.log"))
