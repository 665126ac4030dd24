"""raftlog's segment store: record batches on disk, indexed by offset, entry and time.

`SegmentedLog` is the synchronous core; `GroupCommitter` is the small trio shell that
turns many appends into one fdatasync. Everything byte-level runs in C (`raftlog.native`).
"""

from raftlog.storage.batch import stamp, validate_produce_payload
from raftlog.storage.config import FsyncPolicy, LogConfig
from raftlog.storage.errors import (
    AppendRejected,
    CorruptBatchError,
    EntryOutOfRange,
    LogFailed,
    LogLayoutError,
    OffsetOutOfRange,
    SliceOutdated,
    StorageError,
)
from raftlog.storage.group_commit import GroupCommitStatistics, GroupCommitter
from raftlog.storage.log import SegmentedLog, SyncTicket
from raftlog.storage.values import (
    AppendResult,
    DurablePoint,
    FileSlice,
    LogStatistics,
    RecoveryReport,
    SegmentData,
    SegmentInfo,
    TimestampLookup,
)

__all__ = [
    "AppendRejected",
    "AppendResult",
    "CorruptBatchError",
    "DurablePoint",
    "EntryOutOfRange",
    "FileSlice",
    "FsyncPolicy",
    "GroupCommitStatistics",
    "GroupCommitter",
    "LogConfig",
    "LogFailed",
    "LogLayoutError",
    "LogStatistics",
    "OffsetOutOfRange",
    "RecoveryReport",
    "SegmentData",
    "SegmentInfo",
    "SegmentedLog",
    "SliceOutdated",
    "StorageError",
    "SyncTicket",
    "TimestampLookup",
    "stamp",
    "validate_produce_payload",
]
