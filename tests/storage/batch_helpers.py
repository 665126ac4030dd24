"""Helpers shared by the storage tests: valid batches and re-sealing mutated ones."""

import struct

from raftlog import native
from raftlog.native_twin import Record, build_batch

BATCH_BYTES_MAX = 1 << 20


def reseal(batch: bytearray) -> bytearray:
    """Recompute the CRC after a deliberate field change, so the field check is reached."""
    struct.pack_into(">I", batch, 17, native.crc32c(bytes(batch[21:])))
    return batch


def small_batch(records: int = 3, value: bytes = b"value", base_timestamp: int = 1000) -> bytearray:
    return build_batch([Record(value=value + bytes([i]), key=b"k", timestamp_delta=i,
                               headers=(("h", b"v"),)) for i in range(records)],
                       base_timestamp=base_timestamp, crc_function=native.crc32c)


def stamped(batch: bytearray, base_offset: int, epoch: int) -> bytearray:
    copy = bytearray(batch)
    error = native.stamp_batch(copy, base_offset, epoch)
    if error is not native.NativeError.OK:
        raise ValueError(f"cannot stamp the test batch: {error.name}")
    return copy
