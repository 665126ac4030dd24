"""Batch-level helpers the log's callers need before `append`: validate, then stamp."""

from raftlog import native
from raftlog.native import BatchHeader, NativeError
from raftlog.storage.errors import AppendRejected, CorruptBatchError


def validate_produce_payload(
    payload: bytes | bytearray | memoryview, batch_bytes_max: int
) -> native.ScanResult:
    """Check every batch of a produce request's records field; raise on the first bad one."""
    result = native.validate_batches(payload, batch_bytes_max)
    if result.error is not NativeError.OK:
        raise CorruptBatchError(result.error, result.error_position, "produce payload")
    return result


def stamp(
    batch: bytearray | memoryview, base_offset: int, partition_leader_epoch: int
) -> BatchHeader:
    """Give a batch its place in the log: baseOffset and the leader's epoch (Raft term),
    in place and without touching the CRC. Returns the stamped header."""
    error = native.stamp_batch(batch, base_offset, partition_leader_epoch)
    if error is not NativeError.OK:
        if error in (
            NativeError.NEGATIVE_BASE_OFFSET,
            NativeError.NEGATIVE_LEADER_EPOCH,
            NativeError.OFFSET_OVERFLOW,
        ):
            raise AppendRejected(
                f"cannot stamp offset {base_offset} epoch {partition_leader_epoch}: {error.name}"
            )
        raise CorruptBatchError(error, 0, "stamp")
    return native.parse_batch_header(batch)
