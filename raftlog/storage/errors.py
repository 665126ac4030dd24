"""What can go wrong in storage, as a hierarchy callers can catch at the right level.

`StorageError` is the root. Errors about the caller's request (`OffsetOutOfRange`,
`EntryOutOfRange`, `AppendRejected`) leave the log untouched and usable. `LogFailed`
means the log can no longer promise durability (an fsync failed) and refuses all work.
"""

from raftlog.native import NativeError


class StorageError(Exception):
    """Root of every storage error."""


class CorruptBatchError(StorageError):
    """A batch failed validation: `code` says which check, `position` where it starts."""

    def __init__(self, code: NativeError, position: int, where: str) -> None:
        super().__init__(f"{where}: corrupt batch at byte {position}: {code.name}")
        self.code = code
        self.position = position
        self.where = where


class AppendRejected(StorageError):
    """The batch is well formed but does not fit the log here (offset, epoch, size)."""


class OffsetOutOfRange(StorageError):
    """The offset is below the log start or above its end."""

    def __init__(self, offset: int, start_offset: int, next_offset: int) -> None:
        super().__init__(f"offset {offset} is outside the log [{start_offset}, {next_offset}]")
        self.offset = offset
        self.start_offset = start_offset
        self.next_offset = next_offset


class EntryOutOfRange(StorageError):
    """The entry index is not in the log."""

    def __init__(self, entry_index: int, first_entry_index: int, last_entry_index: int) -> None:
        super().__init__(
            f"entry {entry_index} is outside the log [{first_entry_index}, {last_entry_index}]"
        )
        self.entry_index = entry_index
        self.first_entry_index = first_entry_index
        self.last_entry_index = last_entry_index


class LogLayoutError(StorageError):
    """The directory does not describe one consistent log (missing or overlapping files)."""


class LogFailed(StorageError):
    """An fsync or write failed: what is on disk is unknown, so the log stops."""


class SliceOutdated(StorageError):
    """A file slice names data that compaction has replaced since: read by offset again."""
