"""The allocator settings of a node process, set once when `raftlog serve` starts.

A node moves megabytes through short-lived buffers: socket reads of up to 256 KiB, Kafka
requests and replication messages of about a megabyte, entries it holds until applied.
glibc's defaults serve such blocks badly. Above its mmap threshold (128 KiB at start,
raised on the fly as large blocks are freed) each block is a mapping of its own, and
whenever more than twice that sits free at the heap's top the heap is given back to
the kernel. Either way the next block is fresh memory, every page of which the kernel
faults in and zeroes before the copy into it can run: with three local nodes under a
pipelined producer, every follower took about one page fault per 2.5 KiB it received,
and their system time per record fell by a third with the settings below.

Blocks up to `MMAP_THRESHOLD_BYTES` now stay in the heap, which keeps up to
`TRIM_THRESHOLD_BYTES` free at its top for the next ones. The cost is that much address
space held after a burst, a fraction of what the recent-entries cache alone may hold.
"""

from __future__ import annotations

from raftlog import native

MMAP_THRESHOLD_BYTES = 4 << 20
"""Larger than a Kafka request's batch or a replication message at their usual sizes."""
TRIM_THRESHOLD_BYTES = 64 << 20


def tune_for_node() -> bool:
    """Apply the settings; False where the C library has none (not glibc)."""
    return native.tune_allocator(MMAP_THRESHOLD_BYTES, TRIM_THRESHOLD_BYTES)
