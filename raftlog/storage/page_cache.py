"""Which durable pages of a log to drop from the page cache, so that the cache recycles its
pages instead of growing.

Every byte appended is copied into the page cache. When the cache grows, each copy lands
in a page the machine has not used before; on a virtual machine that first touch is a
fault in the host as well, and it costs about ten times the copy itself (measured here:
2.2 ms of CPU per MiB written into new pages against 0.2 ms into recycled ones, which made
it the largest single cost of a replicated produce). Dropping what is durable and older
than the log's newest `cached_tail_bytes` keeps the cache's share of each log small and
hands its pages back for the next appends. Readers of the tail (followers, consumers
close behind) still find it cached; older reads go straight to the disk
(`direct_read.py`), as every read does in Redpanda, which bypasses the page cache.

Only clean pages can be dropped, so the range handed out always lies below what the
caller's fdatasync covers; a drop that fails or is ignored costs a read later, never data.
"""

from __future__ import annotations

import contextlib
import os

PAGE_BYTES = 4096
FOLIO_BYTES_MAX = 2 << 20
"""The largest folio the page cache makes (a PMD on x86-64). A drop frees only the folios
that lie wholly inside its range, and a big append may sit in folios this large: each
range starts at this alignment below where the last one ended, so a folio that straddled
that end is dropped now."""
DROP_BYTES_MIN = 1 << 20
"""Ranges smaller than this (or than the tail kept, if smaller) wait for the next sync:
one call per MiB, not per append. A tail of 0 drops whatever each sync made durable."""


def page_floor(position: int) -> int:
    return position // PAGE_BYTES * PAGE_BYTES


def drop_range(dropped_to: int, durable_bytes: int, tail_bytes: int | None) -> tuple[int, int]:
    """(offset, length) of the pages to drop from a segment file whose first `dropped_to`
    bytes are dropped already and whose first `durable_bytes` are durable, keeping the
    newest `tail_bytes` (None: keep everything). Length 0: nothing worth a call yet; the
    range ends at the new `dropped_to`."""
    if tail_bytes is None:
        return dropped_to, 0
    end = page_floor(max(0, durable_bytes - tail_bytes))
    if end - dropped_to < max(PAGE_BYTES, min(DROP_BYTES_MIN, tail_bytes)):
        return dropped_to, 0
    start = dropped_to // FOLIO_BYTES_MAX * FOLIO_BYTES_MAX
    return start, end - start


def drop_all(dropped_to: int, durable_bytes: int) -> tuple[int, int]:
    """(offset, length) that drops every page of a durable file from `dropped_to` on (a
    sealed segment: its readers are behind the tail, which lives in the next segment)."""
    start = dropped_to // FOLIO_BYTES_MAX * FOLIO_BYTES_MAX
    end = -(-durable_bytes // FOLIO_BYTES_MAX) * FOLIO_BYTES_MAX
    return start, max(0, end - start)


def drop(fd: int, offset: int, length: int) -> None:
    """Drop the clean pages of `fd` in the range from the page cache. Advisory: an error
    (a file system that cannot) leaves the pages cached, which is what not calling does."""
    if length <= 0:
        return
    with contextlib.suppress(OSError):
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)
