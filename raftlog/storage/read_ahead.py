"""One direct read ahead of a reader going through a segment's dropped pages in order.

A consumer catching up fetches the same segment range after range, and each direct read
(`direct_read.py`) waits for the disk on the event loop: with one fetch in flight the
disk and the loop took turns. After serving a range, the segment starts reading the next
one of the same size in a worker thread; the next fetch finds it read, or waits only for
what is left of it. Only dropped pages are read ahead: they are durable, so appends never
change them, and the segment discards the read before a truncation or a compaction swap
could.
"""

from __future__ import annotations

import concurrent.futures
import threading

import attrs

from raftlog.storage import direct_read

READ_AHEAD_BYTES_MAX = 128 << 20
"""Bytes read ahead and not yet taken, across every segment of the process; past it, no
read ahead starts (each is at most `direct_read.DIRECT_READ_BYTES_MAX`). A reader that
goes away leaves its read ahead counted until the segment's next read, truncation,
compaction swap or close."""

_executor = concurrent.futures.ThreadPoolExecutor(
    max_workers=2, thread_name_prefix="raftlog-read-ahead"
)
_lock = threading.Lock()
_bytes_held = 0


@attrs.define(eq=False)
class ReadAhead:
    """A direct read of `size_bytes` from `position`, under way or done."""

    position: int
    size_bytes: int
    _future: concurrent.futures.Future[bytes | None]
    _counted: bool = True

    def holds(self, position: int) -> bool:
        """Whether the range read ahead starts at or before `position` and goes past it."""
        return self.position <= position < self.position + self.size_bytes

    def take(self, position: int, size_bytes: int) -> bytes | None:
        """The bytes asked for (waiting for the read if it is still going), or None if it
        failed; either way it is over and its budget returned."""
        data = self._future.result()
        self._uncount()
        if data is None:
            return None
        start = position - self.position
        if start == 0 and size_bytes == len(data):
            return data
        return data[start : start + size_bytes]

    def discard(self) -> None:
        """Wait for the read (its thread uses the segment's descriptor) and forget it."""
        concurrent.futures.wait([self._future])
        self._uncount()

    def _uncount(self) -> None:
        global _bytes_held
        if self._counted:
            self._counted = False
            with _lock:
                _bytes_held -= self.size_bytes


def start(fd: int, position: int, size_bytes: int) -> ReadAhead | None:
    """Begin reading `size_bytes` from `position` of `fd` (an `open_direct` descriptor the
    caller keeps open until the read is taken or discarded); None if the budget is spent."""
    global _bytes_held
    if not 0 < size_bytes <= direct_read.DIRECT_READ_BYTES_MAX:
        return None
    with _lock:
        if _bytes_held + size_bytes > READ_AHEAD_BYTES_MAX:
            return None
        _bytes_held += size_bytes
    future = _executor.submit(direct_read.read, fd, position, size_bytes)
    return ReadAhead(position, size_bytes, future)


def bytes_held() -> int:
    """Bytes of reads ahead started and not yet taken or discarded."""
    with _lock:
        return _bytes_held
