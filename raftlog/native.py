"""The C hot path, loaded from the cffi extension built at install time.

There is no silent fallback: if the extension is missing, importing this module fails with
an error that says how to build it. The pure-Python twins in `raftlog.native_twin` exist
only as test oracles.

Each wrapper checks its arguments (types, integer ranges) before calling `lib`, because
C would silently wrap an out-of-range integer. Data problems (a corrupt batch, a torn
tail) are not exceptions here: they come back as a `NativeError` code, and the storage
layer decides which of them is an error for its caller.
"""

import contextlib
import enum
from collections.abc import Iterator

import attrs

try:
    from raftlog._native import ffi, lib
except ImportError as error:  # pragma: no cover - exercised only on a broken install
    raise ImportError(
        "raftlog's C extension (raftlog._native) is not built. Install the package with "
        "`pip install -e .` (needs gcc and the Python headers)."
    ) from error

__all__ = [
    "BATCH_HEADER_BYTES",
    "OFFSET_INDEX_ENTRY_BYTES",
    "RL_SYNC_THREADS_MAX",
    "TIME_INDEX_ENTRY_BYTES",
    "BatchHeader",
    "BatchLocation",
    "IndexState",
    "KeyKind",
    "NativeError",
    "ScanResult",
    "SyncJob",
    "check_offset_index",
    "check_time_index",
    "crc32c",
    "crc32c_hardware_active",
    "crc32c_portable",
    "encode_offset_index_entry",
    "encode_time_index_entry",
    "ffi",
    "find_batch",
    "lib",
    "lookup_offset_index",
    "lookup_time_index",
    "offset_index_entry",
    "parse_batch_header",
    "portable_crc32c_forced",
    "scan_file",
    "scan_file_indexing",
    "scan_log",
    "stamp_batch",
    "submit_sync",
    "sync_threads",
    "time_index_entry",
    "validate_batch",
    "validate_batches",
    "validate_stored_batch",
    "write_all",
]

Buffer = bytes | bytearray | memoryview
WritableBuffer = bytearray | memoryview

BATCH_HEADER_BYTES: int = lib.RL_BATCH_HEADER_BYTES
OFFSET_INDEX_ENTRY_BYTES: int = lib.RL_OFFSET_INDEX_ENTRY_BYTES
TIME_INDEX_ENTRY_BYTES: int = lib.RL_TIME_INDEX_ENTRY_BYTES

_I32 = (-(2**31), 2**31 - 1)
_I64 = (-(2**63), 2**63 - 1)
_U32 = (0, 2**32 - 1)
_U64 = (0, 2**64 - 1)


class NativeError(enum.IntEnum):
    """Mirror of `rl_error` in raftlog_native.h (a test checks both agree)."""

    OK = 0
    HEADER_TRUNCATED = 1
    BATCH_LENGTH_TOO_SMALL = 2
    BATCH_LENGTH_TOO_LARGE = 3
    BATCH_TRUNCATED = 4
    BAD_MAGIC = 5
    BAD_CRC = 6
    NEGATIVE_BASE_OFFSET = 7
    NEGATIVE_LAST_OFFSET_DELTA = 8
    RECORDS_COUNT_NOT_POSITIVE = 9
    RECORDS_COUNT_MISMATCH = 10
    OFFSET_OVERFLOW = 11
    BAD_TIMESTAMP = 12
    BAD_PRODUCER_FIELDS = 13
    BAD_COMPRESSION = 14
    NEGATIVE_LEADER_EPOCH = 15
    OFFSET_NOT_CONTIGUOUS = 16
    LEADER_EPOCH_DECREASED = 17
    IO = 18
    NOT_FOUND = 19
    INDEX_CORRUPT = 20
    BAD_ARGUMENT = 21

    @property
    def is_torn_tail(self) -> bool:
        """A batch cut short: what a crash in the middle of a write leaves behind."""
        return self in (NativeError.HEADER_TRUNCATED, NativeError.BATCH_TRUNCATED)


class KeyKind(enum.IntEnum):
    """Which key a sparse-index lookup or a header walk searches by."""

    OFFSET = 0
    ENTRY = 1
    TIMESTAMP = 2


@attrs.frozen
class BatchHeader:
    """The 61-byte record batch v2 header, decoded (big-endian on the wire)."""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def size_bytes(self) -> int:
        """The whole batch on disk: batchLength plus the 12 bytes it does not count."""
        return self.batch_length + lib.RL_BATCH_LOG_OVERHEAD_BYTES

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta


@attrs.frozen
class ScanResult:
    """What a walk over concatenated batches found; see `rl_scan_result`."""

    error: NativeError
    error_position: int
    valid_bytes: int
    """Length of the valid prefix (for `scan_file`: the file position where it ends)."""
    batch_count: int
    records_count: int
    first_offset: int
    last_offset: int
    next_offset: int
    first_leader_epoch: int
    last_leader_epoch: int
    last_batch_position: int
    max_timestamp: int
    offset_of_max_timestamp: int


@attrs.frozen
class BatchLocation:
    """Where a header walk found the batch it looked for."""

    position: int
    entry_index: int
    base_offset: int
    last_offset: int
    max_timestamp: int
    partition_leader_epoch: int
    size_bytes: int


def _check_int(name: str, value: int, bounds: tuple[int, int]) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not bounds[0] <= value <= bounds[1]:
        raise ValueError(f"{name}={value} is outside [{bounds[0]}, {bounds[1]}]")


def _readable(data: Buffer) -> object:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"expected a bytes-like buffer, not {type(data).__name__}")
    return ffi.from_buffer(data)


def _header_from_c(c_header: object) -> BatchHeader:
    return BatchHeader(
        **{field.name: getattr(c_header, field.name) for field in attrs.fields(BatchHeader)}
    )


def _scan_from_c(c_result: object) -> ScanResult:
    values = {field.name: getattr(c_result, field.name) for field in attrs.fields(ScanResult)}
    values["error"] = NativeError(values["error"])
    return ScanResult(**values)


# ---- CRC32C ---------------------------------------------------------------------------


def crc32c(data: Buffer, crc: int = 0) -> int:
    """CRC32C of `data`, continuing from `crc`."""
    _check_int("crc", crc, _U32)
    buffer = _readable(data)
    return lib.rl_crc32c(crc, buffer, len(buffer))


def crc32c_portable(data: Buffer, crc: int = 0) -> int:
    """CRC32C by the table-driven path, whatever the CPU offers."""
    _check_int("crc", crc, _U32)
    buffer = _readable(data)
    return lib.rl_crc32c_portable(crc, buffer, len(buffer))


def crc32c_hardware_active() -> bool:
    """Whether `crc32c` currently uses the SSE4.2 instructions."""
    return bool(lib.rl_crc32c_hardware_active())


@contextlib.contextmanager
def portable_crc32c_forced() -> Iterator[None]:
    """Make every CRC (including batch validation) take the portable path, for tests."""
    previous = lib.rl_crc32c_force_portable(1)
    try:
        yield
    finally:
        lib.rl_crc32c_force_portable(previous)


# ---- Record batches -------------------------------------------------------------------


def parse_batch_header(data: Buffer) -> BatchHeader:
    """Decode the header without validating it; ValueError if fewer than 61 bytes."""
    buffer = _readable(data)
    c_header = ffi.new("rl_batch_header *")
    if lib.rl_batch_header_parse(buffer, len(buffer), c_header) != lib.RL_OK:
        raise ValueError(f"a batch header needs {BATCH_HEADER_BYTES} bytes, got {len(buffer)}")
    return _header_from_c(c_header)


def validate_batch(data: Buffer, batch_bytes_max: int) -> BatchHeader | NativeError:
    """Validate the batch at the start of `data`: its header, or why it is invalid."""
    _check_int("batch_bytes_max", batch_bytes_max, _U64)
    buffer = _readable(data)
    c_header = ffi.new("rl_batch_header *")
    error = lib.rl_batch_validate(buffer, len(buffer), batch_bytes_max, c_header)
    return NativeError(error) if error else _header_from_c(c_header)


def validate_stored_batch(data: Buffer, batch_bytes_max: int) -> BatchHeader | NativeError:
    """`validate_batch` for a batch already in a log: compaction may have left fewer
    records than the offset range spans (down to none), as Kafka's cleaner does."""
    _check_int("batch_bytes_max", batch_bytes_max, _U64)
    buffer = _readable(data)
    c_header = ffi.new("rl_batch_header *")
    error = lib.rl_batch_validate_stored(buffer, len(buffer), batch_bytes_max, c_header)
    return NativeError(error) if error else _header_from_c(c_header)


def validate_batches(data: Buffer, batch_bytes_max: int) -> ScanResult:
    """Validate a produce payload: batches back to back that consume it exactly."""
    _check_int("batch_bytes_max", batch_bytes_max, _U64)
    buffer = _readable(data)
    c_result = ffi.new("rl_scan_result *")
    lib.rl_batches_validate(buffer, len(buffer), batch_bytes_max, c_result)
    return _scan_from_c(c_result)


def stamp_batch(data: WritableBuffer, base_offset: int, partition_leader_epoch: int) -> NativeError:
    """Write baseOffset and partitionLeaderEpoch in place; the CRC stays valid."""
    _check_int("base_offset", base_offset, _I64)
    _check_int("partition_leader_epoch", partition_leader_epoch, _I32)
    if not isinstance(data, bytearray | memoryview):
        raise TypeError(f"stamping needs a writable buffer, not {type(data).__name__}")
    buffer = ffi.from_buffer(data, require_writable=True)
    return NativeError(lib.rl_batch_stamp(buffer, len(buffer), base_offset, partition_leader_epoch))


STAMP_HEAD_BYTES = 17
"""baseOffset, batchLength, partitionLeaderEpoch, magic: the bytes a stamp may change."""


def stamped_batch(
    data: Buffer, base_offset: int, partition_leader_epoch: int
) -> tuple[NativeError, bytes]:
    """A `bytes` copy of `data` as `stamp_batch` would leave it, made in one pass (no
    writable copy first, then another to freeze it); (error, b"") if it cannot be stamped."""
    _check_int("base_offset", base_offset, _I64)
    _check_int("partition_leader_epoch", partition_leader_epoch, _I32)
    buffer = _readable(data)
    head = ffi.new("uint8_t[]", STAMP_HEAD_BYTES)
    error = NativeError(
        lib.rl_batch_stamped_head(buffer, len(buffer), base_offset, partition_leader_epoch, head)
    )
    if error is not NativeError.OK:
        return error, b""
    with memoryview(data) as view:
        return error, b"".join((ffi.buffer(head), view.cast("B")[STAMP_HEAD_BYTES:]))


def scan_log(data: Buffer, expected_base_offset: int, batch_bytes_max: int) -> ScanResult:
    """Recovery scan of stored batches held in memory (offsets contiguous from
    `expected_base_offset`, or from the first batch when it is negative)."""
    _check_int("expected_base_offset", expected_base_offset, _I64)
    _check_int("batch_bytes_max", batch_bytes_max, _U64)
    buffer = _readable(data)
    c_result = ffi.new("rl_scan_result *")
    lib.rl_log_scan(buffer, len(buffer), expected_base_offset, batch_bytes_max, c_result)
    return _scan_from_c(c_result)


def _check_scan_file_args(
    fd: int, start: int, end: int, expected_base_offset: int, batch_bytes_max: int, chunk_bytes: int
) -> None:
    _check_int("fd", fd, (0, _I32[1]))
    _check_int("start", start, _U64)
    _check_int("end", end, (start, _U64[1]))
    _check_int("expected_base_offset", expected_base_offset, _I64)
    _check_int("batch_bytes_max", batch_bytes_max, _U64)
    _check_int("chunk_bytes", chunk_bytes, (max(batch_bytes_max, BATCH_HEADER_BYTES), 2**31))


def scan_file(
    fd: int, start: int, end: int, expected_base_offset: int, batch_bytes_max: int, chunk_bytes: int
) -> ScanResult:
    """Recovery scan of the file range [start, end), read `chunk_bytes` at a time."""
    _check_scan_file_args(fd, start, end, expected_base_offset, batch_bytes_max, chunk_bytes)
    chunk = ffi.new("uint8_t[]", chunk_bytes)
    c_result = ffi.new("rl_scan_result *")
    lib.rl_file_scan(
        fd,
        start,
        end,
        expected_base_offset,
        batch_bytes_max,
        chunk,
        chunk_bytes,
        ffi.NULL,
        c_result,
    )
    return _scan_from_c(c_result)


@attrs.frozen
class IndexState:
    """A segment's sparse indexes and the state of the rule that extends them.

    The rule (also applied by the Python append path): a batch gets an entry in both
    indexes when `bytes_since_entry >= interval_bytes` before it; a fresh segment
    starts with `bytes_since_entry = interval_bytes` so its first batch is indexed."""

    segment_base_offset: int
    next_relative_entry: int
    interval_bytes: int
    bytes_since_entry: int
    running_max_timestamp: int
    offset_index: bytes
    time_index: bytes

    @classmethod
    def empty(cls, segment_base_offset: int, interval_bytes: int) -> "IndexState":
        return cls(segment_base_offset, 0, interval_bytes, interval_bytes, -1, b"", b"")

    @property
    def entry_count(self) -> int:
        return len(self.offset_index) // OFFSET_INDEX_ENTRY_BYTES


def scan_file_indexing(
    fd: int,
    start: int,
    end: int,
    expected_base_offset: int,
    batch_bytes_max: int,
    chunk_bytes: int,
    index: IndexState,
) -> tuple[ScanResult, IndexState]:
    """`scan_file` that also extends `index` over every valid batch, in the same pass."""
    _check_scan_file_args(fd, start, end, expected_base_offset, batch_bytes_max, chunk_bytes)
    _check_int("interval_bytes", index.interval_bytes, (1, _U32[1]))
    existing = index.entry_count
    capacity = existing + (end - start) // index.interval_bytes + 2
    offset_entries = ffi.new("uint8_t[]", capacity * OFFSET_INDEX_ENTRY_BYTES)
    time_entries = ffi.new("uint8_t[]", capacity * TIME_INDEX_ENTRY_BYTES)
    ffi.memmove(offset_entries, index.offset_index, len(index.offset_index))
    ffi.memmove(time_entries, index.time_index, len(index.time_index))
    c_index = ffi.new(
        "rl_index_state *",
        {
            "segment_base_offset": index.segment_base_offset,
            "next_relative_entry": index.next_relative_entry,
            "interval_bytes": index.interval_bytes,
            "bytes_since_entry": index.bytes_since_entry,
            "running_max_timestamp": index.running_max_timestamp,
            "offset_index": offset_entries,
            "time_index": time_entries,
            "capacity": capacity,
            "entry_count": existing,
        },
    )
    chunk = ffi.new("uint8_t[]", chunk_bytes)
    c_result = ffi.new("rl_scan_result *")
    lib.rl_file_scan(
        fd, start, end, expected_base_offset, batch_bytes_max, chunk, chunk_bytes, c_index, c_result
    )
    count = c_index.entry_count
    new_index = IndexState(
        segment_base_offset=index.segment_base_offset,
        next_relative_entry=c_index.next_relative_entry,
        interval_bytes=index.interval_bytes,
        bytes_since_entry=c_index.bytes_since_entry,
        running_max_timestamp=c_index.running_max_timestamp,
        offset_index=bytes(ffi.buffer(offset_entries, count * OFFSET_INDEX_ENTRY_BYTES)),
        time_index=bytes(ffi.buffer(time_entries, count * TIME_INDEX_ENTRY_BYTES)),
    )
    return _scan_from_c(c_result), new_index


# ---- Files ----------------------------------------------------------------------------


def write_all(fd: int, data: Buffer, position: int) -> None:
    """Write every byte of `data` at `position` (the loop runs in C without the GIL)."""
    _check_int("fd", fd, (0, _I32[1]))
    _check_int("position", position, (0, _I64[1]))
    buffer = _readable(data)
    result = lib.rl_write_all(fd, buffer, len(buffer), position)
    if result != 0:
        raise OSError(-result, f"pwrite of {len(buffer)} bytes at {position} failed")


def find_batch(
    fd: int, position: int, end: int, entry_index: int, key_kind: KeyKind, target: int
) -> BatchLocation | NativeError:
    """Walk validated batch headers from a known batch to the one holding `target`."""
    _check_int("fd", fd, (0, _I32[1]))
    _check_int("position", position, _U64)
    _check_int("end", end, _U64)
    _check_int("entry_index", entry_index, _U64)
    _check_int("target", target, _I64)
    key_kind = KeyKind(key_kind)
    c_location = ffi.new("rl_batch_location *")
    error = lib.rl_file_find_batch(fd, position, end, entry_index, key_kind, target, c_location)
    if error:
        return NativeError(error)
    return BatchLocation(
        **{field.name: getattr(c_location, field.name) for field in attrs.fields(BatchLocation)}
    )


# ---- Sparse indexes -------------------------------------------------------------------


def _index_count(index: Buffer, entry_bytes: int) -> tuple[object, int]:
    buffer = _readable(index)
    if len(buffer) % entry_bytes:
        raise ValueError(
            f"index of {len(buffer)} bytes is not a whole number of {entry_bytes}-byte entries"
        )
    return buffer, len(buffer) // entry_bytes


def encode_offset_index_entry(relative_offset: int, relative_entry: int, position: int) -> bytes:
    _check_int("relative_offset", relative_offset, _U32)
    _check_int("relative_entry", relative_entry, _U32)
    _check_int("position", position, _U32)
    out = ffi.new("uint8_t[]", OFFSET_INDEX_ENTRY_BYTES)
    lib.rl_offset_index_encode(out, relative_offset, relative_entry, position)
    return bytes(ffi.buffer(out))


def offset_index_entry(index: Buffer, i: int) -> tuple[int, int, int]:
    """(relative offset, relative entry, position) of entry `i`."""
    buffer, count = _index_count(index, OFFSET_INDEX_ENTRY_BYTES)
    _check_int("i", i, (0, count - 1))
    fields = ffi.new("uint32_t[3]")
    lib.rl_offset_index_entry(buffer, i, fields, fields + 1, fields + 2)
    return fields[0], fields[1], fields[2]


def lookup_offset_index(index: Buffer, key_kind: KeyKind, target: int) -> int:
    """Number of the last entry whose key is <= target, or -1."""
    key_kind = KeyKind(key_kind)
    if key_kind is KeyKind.TIMESTAMP:
        raise ValueError("the offset index is keyed by offset or entry, not timestamp")
    _check_int("target", target, _U32)
    buffer, count = _index_count(index, OFFSET_INDEX_ENTRY_BYTES)
    return lib.rl_offset_index_lookup(buffer, count, key_kind, target)


def check_offset_index(index: Buffer, data_bytes: int) -> bool:
    """Whether an index read from disk is well formed for a data file of this size."""
    _check_int("data_bytes", data_bytes, _U64)
    buffer, count = _index_count(index, OFFSET_INDEX_ENTRY_BYTES)
    return lib.rl_offset_index_check(buffer, count, data_bytes) == lib.RL_OK


def encode_time_index_entry(timestamp: int, relative_offset: int, position: int) -> bytes:
    _check_int("timestamp", timestamp, _I64)
    _check_int("relative_offset", relative_offset, _U32)
    _check_int("position", position, _U32)
    out = ffi.new("uint8_t[]", TIME_INDEX_ENTRY_BYTES)
    lib.rl_time_index_encode(out, timestamp, relative_offset, position)
    return bytes(ffi.buffer(out))


def time_index_entry(index: Buffer, i: int) -> tuple[int, int, int]:
    """(running max timestamp, relative offset, position) of entry `i`."""
    buffer, count = _index_count(index, TIME_INDEX_ENTRY_BYTES)
    _check_int("i", i, (0, count - 1))
    timestamp = ffi.new("int64_t *")
    fields = ffi.new("uint32_t[2]")
    lib.rl_time_index_entry(buffer, i, timestamp, fields, fields + 1)
    return timestamp[0], fields[0], fields[1]


def lookup_time_index(index: Buffer, target: int) -> int:
    """Number of the last entry whose timestamp is < target, or -1."""
    _check_int("target", target, _I64)
    buffer, count = _index_count(index, TIME_INDEX_ENTRY_BYTES)
    return lib.rl_time_index_lookup(buffer, count, target)


def check_time_index(index: Buffer, data_bytes: int) -> bool:
    _check_int("data_bytes", data_bytes, _U64)
    buffer, count = _index_count(index, TIME_INDEX_ENTRY_BYTES)
    return lib.rl_time_index_check(buffer, count, data_bytes) == lib.RL_OK


# ---- Durability off the event loop ------------------------------------------------------


RL_SYNC_THREADS_MAX: int = lib.RL_SYNC_THREADS_MAX


def sync_threads() -> int:
    """How many sync threads this process has started (at most RL_SYNC_THREADS_MAX)."""
    return int(lib.rl_sync_threads())


def tune_allocator(mmap_threshold_bytes: int, trim_threshold_bytes: int) -> bool:
    """Set the C library allocator's mmap and trim thresholds (`raftlog.allocator` says
    why). True if set, False where the C library has no such settings (not glibc)."""
    _check_int("mmap threshold", mmap_threshold_bytes, (1, _I32[1]))
    _check_int("trim threshold", trim_threshold_bytes, (1, _I32[1]))
    applied = int(lib.rl_tune_allocator(mmap_threshold_bytes, trim_threshold_bytes))
    if applied < 0:
        raise OSError("the C library refused the allocator settings")
    return applied == 1


SYNC_STEPS = ("log fdatasync", "journal write", "mark write", "mark fdatasync")
"""What `SyncJob.failed_step` numbers (from 1), as in `rl_sync_job`."""


@attrs.define(eq=False)
class SyncJob:
    """A queued `rl_sync_job`. It owns the C struct and the buffers the C thread reads,
    so they live until the thread has signalled the job's eventfd."""

    _job: object
    _buffers: tuple[object, ...]

    def outcome(self) -> tuple[int, str | None]:
        """(0 or -errno, the step that failed or None); read only once signalled."""
        step = self._job.failed_step  # type: ignore[attr-defined]
        return self._job.result, (SYNC_STEPS[step - 1] if step else None)  # type: ignore[attr-defined]


def submit_sync(
    done_fd: int,
    log_fd: int,
    journal: tuple[int, bytes] | None = None,
    mark: tuple[int, bytes, int] | None = None,
    drop: tuple[int, int] | None = None,
) -> SyncJob | int:
    """Queue: fdatasync `log_fd`; append `journal` = (fd, line); write `mark` = (fd, bytes,
    position) and fdatasync it; if all went well, drop the log's pages in `drop` =
    (offset, length) from the page cache; then add 1 to the eventfd `done_fd`. A C thread
    that never takes the GIL runs it. Returns the job, or -errno if nothing will run
    (-EAGAIN: full)."""
    for name, fd in (("done_fd", done_fd), ("log_fd", log_fd)):
        _check_int(name, fd, (0, _I32[1]))
    job = ffi.new("rl_sync_job *")
    job.done_fd, job.log_fd = done_fd, log_fd
    if drop is not None:
        _check_int("drop offset", drop[0], (0, _I64[1]))
        _check_int("drop length", drop[1], (0, _I64[1]))
        job.drop_offset, job.drop_len = drop
    job.journal_fd = job.mark_fd = -1
    buffers: list[object] = []
    if journal is not None:
        fd, line = journal
        _check_int("journal fd", fd, (0, _I32[1]))
        buffers.append(ffi.from_buffer(line))
        job.journal_fd, job.journal, job.journal_len = fd, buffers[-1], len(line)
    if mark is not None:
        fd, data, position = mark
        _check_int("mark fd", fd, (0, _I32[1]))
        _check_int("mark position", position, (0, _I64[1]))
        buffers.append(ffi.from_buffer(data))
        job.mark_fd, job.mark, job.mark_len = fd, buffers[-1], len(data)
        job.mark_position = position
    submitted = lib.rl_sync_submit(job)
    if submitted != 0:
        return int(submitted)
    return SyncJob(job, tuple(buffers))
