"""fdatasync off the event loop, run by C threads that never take the GIL.

`trio.to_thread` hands a call to a Python thread, and a Python thread needs the GIL to
start it, to go on after the fdatasync and to report back. The event loop holds the GIL
whenever it is busy, so each of those waits for the loop to pause: measured on a
replicated produce, a third of a millisecond before the fdatasync even began and as much
again after it, on the path of every acknowledgement. Here the whole chain (the log's
fdatasync, the test-only power-loss journal line, the acknowledgement mark's write and
fdatasync) runs in C (`native/sync.c`), which signals an eventfd that trio waits on like
any socket.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import AsyncIterator, Callable

import trio
from trio.lowlevel import RunVar

from raftlog import native

QUEUE_FULL_RETRY_S = 0.001
"""A full C queue drains in about a disk flush."""
QUEUE_STEP = "queueing the sync"
"""The step named when nothing ran: no eventfd, or no thread could be started."""
LOG_STEP = native.SYNC_STEPS[0]
CHAINS_IN_FLIGHT_MAX = 64
"""Chains a node runs at once. Each holds descriptors (the log's duplicate, the mark, the
eventfd) from before it starts until it ends; thousands of groups syncing together (a new
topic of many partitions) wait here instead of opening thousands of files."""

_in_flight: RunVar[trio.CapacityLimiter] = RunVar("offloop_sync_in_flight")


def in_flight() -> trio.CapacityLimiter:
    """This trio run's bound on chains in flight; hold it from before the descriptors are
    opened until they are closed."""
    try:
        return _in_flight.get()
    except LookupError:
        limiter = trio.CapacityLimiter(CHAINS_IN_FLIGHT_MAX)
        _in_flight.set(limiter)
        return limiter


@contextlib.asynccontextmanager
async def chain_slot() -> AsyncIterator[None]:
    """Hold one of this trio run's chain slots (`in_flight`) for the block; a free one is
    taken without a checkpoint, so the fsync starts before the task lets any other run:
    an acknowledgement waits for it. Only a full bound waits."""
    limiter = in_flight()
    try:
        limiter.acquire_nowait()
    except trio.WouldBlock:
        await limiter.acquire()
    try:
        yield
    finally:
        limiter.release()


class SyncFailed(OSError):
    """One step of the chain failed; the steps before it completed, those after did not."""

    def __init__(self, code: int, step: str) -> None:
        super().__init__(code, f"{step} failed: {os.strerror(code)}")
        self.step = step
        self.log_durable = step not in (QUEUE_STEP, LOG_STEP)
        """Whether the log's fdatasync completed (only a later step failed)."""


async def fdatasync_chain(
    log_fd: int,
    journal: tuple[int, bytes] | None = None,
    mark: tuple[int, bytes, int] | None = None,
    drop: tuple[int, int] | None = None,
    started: Callable[[], None] | None = None,
) -> None:
    """fdatasync `log_fd`, then append `journal` (fd, line), then write `mark` (fd, bytes,
    position) and fdatasync it, then drop the log's pages in `drop` (offset, length) from
    the page cache; raise SyncFailed at the first step that fails (QUEUE_STEP: none ran).
    `started` is called once the chain is queued, before waiting for it.

    Not cancellable: the caller began a sync it must end one way or the other, and the C
    thread reads the job's buffers and descriptors until it signals.
    """
    with trio.CancelScope(shield=True):
        try:
            done = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        except OSError as error:
            raise SyncFailed(error.errno or errno.EIO, QUEUE_STEP) from error
        try:
            while True:
                job = native.submit_sync(done, log_fd, journal, mark, drop)
                if not isinstance(job, int):
                    break
                if job != -errno.EAGAIN:
                    raise SyncFailed(-job, QUEUE_STEP)
                await trio.sleep(QUEUE_FULL_RETRY_S)
            try:
                if started is not None:
                    started()
            finally:
                # Even if `started` raised: the C thread holds the descriptors until then.
                await trio.lowlevel.wait_readable(done)
        finally:
            os.close(done)
    code, step = job.outcome()
    if code != 0:
        raise SyncFailed(-code, step or "sync")
