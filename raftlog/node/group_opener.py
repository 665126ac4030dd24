"""Opening hosted groups in batches, in worker threads.

A topic of 10,000 partitions (or a restart) opens thousands of groups at once. Each open
creates or recovers files and fsyncs them, which blocks, so it runs in a worker thread;
one thread hop per group would cost the event loop a wake-up per group, and one fsync of
the shared `groups/` directory per new group. Here requests queue up and are opened a
batch at a time: one hop per batch, and one fsync of the parent directory for all the
group directories the batch creates (`files.make_directories`), before any group of the
batch is handed back (so before it can handle a message).

Requests are opened lowest `order` first (the group id): trio runs the tasks that ask in
an arbitrary order, and every node should open a new topic's groups in the same order,
so that a group's leader and followers open it at about the same time rather than up to
the whole opening apart.
"""

from __future__ import annotations

import heapq
import itertools
import pathlib
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import attrs
import trio

from raftlog.storage import files

Opened = TypeVar("Opened")

BATCH_GROUPS_MAX = 64
"""Groups opened by one worker-thread call."""
BATCHES_IN_FLIGHT_MAX = 2
"""Batches opened at once (the machine's fsyncs overlap; its cores are few)."""


@attrs.define(eq=False)
class _Request(Generic[Opened]):
    directory: pathlib.Path
    open: Callable[[], Opened]
    done: trio.Event = attrs.field(factory=trio.Event)
    result: Opened | None = None
    error: BaseException | None = None
    abandoned: bool = False


def _open_batch(requests: Sequence[_Request[Opened]]) -> None:
    """Runs in a worker thread: make the directories durably, then open each group."""
    try:
        files.make_directories(request.directory for request in requests)
    except OSError as error:
        for request in requests:
            request.error = error
        return
    for request in requests:
        try:
            request.result = request.open()
        except Exception as error:  # one group's failure is that group's caller's error
            request.error = error


@attrs.define(eq=False)
class GroupOpener(Generic[Opened]):
    """Queue of group openings, run a batch per worker-thread call."""

    close: Callable[[Opened], None]
    """Closes an opened group whose requester went away (cancelled) meanwhile."""
    batch_groups_max: int = BATCH_GROUPS_MAX
    _pending: list[tuple[int, int, _Request[Opened]]] = attrs.field(factory=list)
    """A heap by (order, arrival)."""
    _arrivals: itertools.count[int] = attrs.field(factory=itertools.count)
    _wake: trio.Event = attrs.field(factory=trio.Event)
    batches_in_flight_max: int = BATCHES_IN_FLIGHT_MAX
    _in_flight: trio.Semaphore = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._in_flight = trio.Semaphore(self.batches_in_flight_max)

    async def open(
        self, directory: pathlib.Path, open_group: Callable[[], Opened], order: int = 0
    ) -> Opened:
        """Open one group (in a batch with others, lowest `order` first); raises what its
        opening raised."""
        request: _Request[Opened] = _Request(directory, open_group)
        heapq.heappush(self._pending, (order, next(self._arrivals), request))
        self._wake.set()
        try:
            await request.done.wait()
        except BaseException:
            request.abandoned = True
            raise
        if request.error is not None:
            raise request.error
        assert request.result is not None
        return request.result

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                await self._wake.wait()
                self._wake = trio.Event()
                while self._pending:
                    await self._in_flight.acquire()
                    # Taken once a batch may start, so that later arrivals with a lower
                    # order still go first.
                    batch = [
                        heapq.heappop(self._pending)[2]
                        for _ in range(min(self.batch_groups_max, len(self._pending)))
                    ]
                    nursery.start_soon(self._open, batch)

    async def _open(self, batch: list[_Request[Opened]]) -> None:
        try:
            await trio.to_thread.run_sync(_open_batch, batch, abandon_on_cancel=False)
        finally:
            self._in_flight.release()
        for request in batch:
            if request.abandoned and request.result is not None:
                self.close(request.result)
            request.done.set()
