"""Logs whose old pages are dropped from the page cache, and how much of a file the cache
holds (mincore), for the page cache and read-ahead tests."""

from __future__ import annotations

import ctypes
import mmap
import os
import pathlib

import pytest

from raftlog.limits import StorageLimits
from raftlog.storage import LogConfig, SegmentedLog, stamp
from raftlog.storage.page_cache import DROP_BYTES_MIN, FOLIO_BYTES_MAX, PAGE_BYTES

from .log_helpers import make_batch

MIB = 1 << 20
TAIL = 2 * MIB
CACHED_MAX = TAIL + DROP_BYTES_MIN + FOLIO_BYTES_MAX
"""What a log keeping TAIL may leave cached: the tail, a range too small to drop yet, and
the folio that straddles the range's end."""
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [
    ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long
]  # fmt: skip
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte)]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]


def resident_bytes(path: pathlib.Path) -> int:
    """How many bytes of the file the page cache holds, as mincore(2) reports them."""
    size = path.stat().st_size
    if size == 0:
        return 0
    fd = os.open(path, os.O_RDONLY)
    try:
        address = _libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if address in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "mmap failed")
        try:
            pages = (size + PAGE_BYTES - 1) // PAGE_BYTES
            vector = (ctypes.c_ubyte * pages)()
            if _libc.mincore(address, size, vector) != 0:
                raise OSError(ctypes.get_errno(), "mincore failed")
            return sum(byte & 1 for byte in vector) * PAGE_BYTES
        finally:
            _libc.munmap(address, size)
    finally:
        os.close(fd)


@pytest.fixture
def droppable(tmp_path: pathlib.Path) -> pathlib.Path:
    """`tmp_path`, once shown to be on a file system that drops clean pages when asked
    (tmpfs, say, cannot: its pages are the file)."""
    probe = tmp_path / "probe"
    probe.write_bytes(os.urandom(MIB))
    fd = os.open(probe, os.O_RDONLY)
    try:
        os.fdatasync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    if resident_bytes(probe) > MIB // 2:
        pytest.skip(f"{tmp_path} keeps clean pages cached when told to drop them")
    probe.unlink()
    return tmp_path


def cached_tail_config(tail: int | None = TAIL) -> LogConfig:
    return LogConfig(
        limits=StorageLimits(segment_bytes_max=64 * MIB),
        segment_age_ms_max=None,
        retention_age_ms_max=None,
        cached_tail_bytes=tail,
    )


def fill(log: SegmentedLog, total_bytes: int) -> list[bytes]:
    """Append ~64 KiB batches until the log holds `total_bytes`; returns them, stamped."""
    written = []
    while sum(map(len, written)) < total_bytes:
        batch = make_batch(len(written), records=60, value_bytes=1000)
        stamp(batch, log.next_offset, 1)
        log.append(batch)
        written.append(bytes(batch))
    return written
