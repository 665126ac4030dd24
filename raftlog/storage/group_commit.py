"""Group commit: many appenders, one fdatasync.

Appenders append synchronously (the write is a pwrite into the page cache) and then
`await wait_durable(entry_index)`. One task, `run`, owns the fdatasync: whenever someone
waits on an entry that is not yet durable, it runs one fdatasync in a worker thread,
covering every append made before it started, and wakes every waiter it covered. While
it runs, new appends queue up for the next one, so under load each fdatasync serves many
appends and the rate of fsyncs, not of appends, is the limit.

The policy decides what "acknowledged" means; the relaxed ones say so in their names.
"""

import heapq
import itertools
import os

import attrs
import trio

from raftlog.invariant import invariant
from raftlog.storage.config import FsyncPolicy
from raftlog.storage.errors import LogFailed, StorageError
from raftlog.storage.log import SegmentedLog, SyncTicket


@attrs.frozen
class GroupCommitStatistics:
    fsync_count: int
    """fdatasync calls made by the committer."""
    entries_made_durable: int
    """Sum over fsyncs of how many entries each one newly covered."""
    waiters: int
    durable_entry_index: int
    policy: FsyncPolicy


@attrs.define(eq=False)
class GroupCommitter:
    """The durability shell of one log. Start `run` in a nursery (it reports readiness
    with `task_status.started()`), then call `wait_durable` from any task."""

    log: SegmentedLog
    policy: FsyncPolicy = attrs.field(
        default=attrs.Factory(lambda self: self.log.config.fsync_policy, takes_self=True)
    )
    """Defaults to the log's configured policy."""
    interval_ms: int = attrs.field(
        default=attrs.Factory(lambda self: self.log.config.fsync_interval_ms, takes_self=True)
    )
    _waiters: list[tuple[int, int, trio.Event]] = attrs.field(factory=list)
    _sequence: "itertools.count[int]" = attrs.field(factory=itertools.count)
    _work: trio.Event = attrs.field(factory=trio.Event)
    _failure: BaseException | None = None
    _fsync_count: int = 0
    _entries_made_durable: int = 0

    async def wait_durable(self, entry_index: int) -> None:
        """Return once `entry_index` is acknowledged under the policy: for ALWAYS, once an
        fdatasync covered it; for the relaxed policies, at once."""
        if self._failure is not None:
            raise LogFailed(f"durability failed: {self._failure!r}")
        invariant(entry_index <= self.log.last_entry_index, "waiting on an entry not appended")
        if self.policy.acknowledges_before_fsync:
            return
        if entry_index <= self.log.durable_entry_index:
            return
        if len(self._waiters) >= self.log.config.limits.durability_waiters_max:
            raise StorageError("too many appenders waiting for durability")
        event = trio.Event()
        heapq.heappush(self._waiters, (entry_index, next(self._sequence), event))
        self._work.set()
        await event.wait()
        if self._failure is not None:
            raise LogFailed(f"durability failed: {self._failure!r}")

    async def run(
        self,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """The one task that calls fdatasync. Raises LogFailed (after waking every
        waiter with the same error) if an fdatasync fails."""
        task_status.started()
        while True:
            if self.policy is FsyncPolicy.ALWAYS:
                await self._work.wait()
                self._work = trio.Event()
                if not self._waiters:
                    continue
            elif self.policy is FsyncPolicy.INTERVAL_UNSAFE:
                await trio.sleep(self.interval_ms / 1000)
                if self.log.durable_entry_index >= self.log.last_entry_index:
                    continue
            else:
                await trio.sleep_forever()
            await self._sync_once()

    async def _sync_once(self) -> None:
        before = self.log.durable_entry_index
        ticket = self.log.sync_begin()
        try:
            await trio.to_thread.run_sync(_fdatasync_and_drop, ticket)
        except OSError as error:
            self.log.sync_failed(ticket, error)
            self._failure = error
            self._wake(None)
            raise LogFailed(f"fdatasync failed: {error!r}") from error
        point = self.log.sync_end(ticket)
        self._fsync_count += 1
        self._entries_made_durable += max(0, point.entry_index - before)
        self._wake(point.entry_index)

    def _wake(self, durable_entry_index: int | None) -> None:
        """Wake waiters covered by `durable_entry_index` (all of them when None)."""
        while self._waiters and (
            durable_entry_index is None or self._waiters[0][0] <= durable_entry_index
        ):
            heapq.heappop(self._waiters)[2].set()
        if self._waiters:
            self._work.set()

    def statistics(self) -> GroupCommitStatistics:
        return GroupCommitStatistics(
            self._fsync_count,
            self._entries_made_durable,
            len(self._waiters),
            self.log.durable_entry_index,
            self.policy,
        )


def _fdatasync_and_drop(ticket: SyncTicket) -> None:
    os.fdatasync(ticket.fd)
    ticket.drop_cached()
