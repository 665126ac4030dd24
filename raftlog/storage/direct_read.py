"""Reads of data whose pages the log dropped from the page cache, straight from the disk
(O_DIRECT) into a buffer that each thread keeps and reuses.

A buffered read of dropped data brings it back into the page cache, into pages the
machine gave back to its host meanwhile: on a virtual machine with free page reporting
the copy out of them faults in the host page by page. Measured here, reading 512 MiB
written six seconds earlier in 1 MiB preads: 1.35 ms of CPU per MiB buffered, 0.2 ms
direct, at 660 against 1,100 MB/s. A direct read lands in the same buffer every time.
"""

from __future__ import annotations

import mmap
import os
import threading

ALIGN_BYTES = 4096
"""Offsets, lengths and the buffer are aligned to this (every block size up to a page)."""
DIRECT_READ_BYTES_MAX = 64 << 20
"""Larger reads (a whole segment for compaction) are buffered: each thread's buffer stays
below this plus two alignments."""

_buffers = threading.local()


def open_direct(path: os.PathLike[str] | str) -> int | None:
    """A read-only descriptor that bypasses the page cache, or None where the file system
    cannot (tmpfs, say): those reads stay buffered."""
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECT | os.O_CLOEXEC)
    except OSError:
        return None


def _buffer(size_bytes: int) -> mmap.mmap:
    buffer: mmap.mmap | None = getattr(_buffers, "buffer", None)
    if buffer is None or len(buffer) < size_bytes:
        if buffer is not None:
            buffer.close()
        buffer = mmap.mmap(-1, size_bytes)  # page-aligned
        _buffers.buffer = buffer
    return buffer


def read(fd: int, position: int, size_bytes: int) -> bytes | None:
    """`size_bytes` from `position` of the file open as `fd` (from `open_direct`), or None
    if the read is too large, failed or came up short: the caller reads it buffered,
    where a real error is reported."""
    start = position // ALIGN_BYTES * ALIGN_BYTES
    end = -(-(position + size_bytes) // ALIGN_BYTES) * ALIGN_BYTES
    if not 0 < size_bytes <= DIRECT_READ_BYTES_MAX:
        return None
    buffer = _buffer(end - start)
    with memoryview(buffer) as whole, whole[: end - start] as window:
        try:
            got = os.preadv(fd, [window], start)
        except OSError:
            return None
    if got < position + size_bytes - start:
        return None
    return buffer[position - start : position - start + size_bytes]
