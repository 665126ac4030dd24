"""Keyed logs for the compaction tests: few keys, many updates, several sealed files."""

import pathlib

from raftlog import native
from raftlog.protocol.records import Record, build_batch
from raftlog.storage import LogConfig, SegmentedLog, stamp
from raftlog.storage.compaction import OffsetMap

from .log_helpers import SMALL_LIMITS

CONFIG = LogConfig(limits=SMALL_LIMITS, segment_age_ms_max=None, retention_age_ms_max=None)


def keyed_batch(number: int, keys: int = 4, records: int = 3) -> bytearray:
    """Batch `number`: `records` updates to keys number*records+i mod `keys`."""
    return bytearray(
        build_batch(
            [
                Record(
                    f"v{number}.{i}".encode(),
                    key=f"k{(number * records + i) % keys}".encode(),
                    timestamp=1_000 + number,
                )
                for i in range(records)
            ],
            crc_function=native.crc32c,
        )
    )


def keyed_log(directory: pathlib.Path, batches: int) -> SegmentedLog:
    log = SegmentedLog.open(directory, CONFIG)
    for number in range(batches):
        batch = keyed_batch(number)
        stamp(batch, log.next_offset, 1)
        log.append(batch)
    log.roll()
    log.sync()
    return log


def offset_map(log: SegmentedLog) -> OffsetMap:
    offsets = OffsetMap()
    for info in log.segments():
        offsets.add(log.read_segment_data(info.base_offset).data)
    return offsets
