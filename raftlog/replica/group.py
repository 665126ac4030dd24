"""The trio shell around one Raft group's pure core: tick, step, propose, and the Ready loop.

The loop follows the Ready contract (`raftlog.raft.ready`): persist entries and hard state,
fsync when the Ready says so, then send messages, then apply committed entries, then
advance. Group commit falls out of the shape of the loop: while one fsync runs off the
event loop (`raftlog.storage.offloop_sync`), proposals keep arriving and land in the next
Ready, so they share the next fsync.

Waiters: a producer with acks=all waits until its entry is committed *with the term it
was proposed in* (an entry overwritten by a new leader at the same index fails the wait);
acks=1 waits until the entry is durable on this node. A reader that must not act on a stale
state (a restarted node's view of the controller) asks `read_index` for a commit index the
leader has confirmed since, and waits until it has applied that far.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import attrs
import trio

from raftlog import bugs, logs
from raftlog.config import FsyncPolicy
from raftlog.invariant import invariant
from raftlog.raft.entry import Entry, EntryKind, HardState
from raftlog.raft.messages import Message
from raftlog.raft.node import RawNode
from raftlog.raft.ready import Ready, Role


class GroupLog(Protocol):
    """What the shell needs of a group's stable log beyond the core's `LogStorage`."""

    def append_entries(self, entries: Sequence[Entry]) -> None:
        """Store entries, first dropping every stored entry at or after the first's index."""

    def hard_state_pending(self, state: HardState) -> bool:
        """Whether `save_hard_state(state)` would write anything now (else it is free)."""

    def save_hard_state(self, state: HardState) -> None:
        """Store term, vote and commit (term and vote durably)."""

    def entries_applied(self, index: int, sent_index: int) -> None:
        """Entries up to `index` were applied, and up to `sent_index` sent to every peer:
        the log need not keep those at hand."""

    async def sync(self, started: Callable[[], None] | None = None) -> None:
        """Make every appended byte durable (fdatasync) without blocking the event loop;
        not cancellable once the disk work has started. `started` is called once the
        disk work is under way, before waiting for it."""


class GroupObserver(Protocol):
    """Told of each fsync and role change (metrics); must not block."""

    def fsync_done(self, seconds: float) -> None: ...

    def role_changed(self, role: Role, leader_changed: bool) -> None: ...


class ProposalLost(Exception):
    """The entry was overwritten by another leader's entry at its index: it never committed."""


@attrs.define(eq=False)
class _Waiter:
    index: int
    term: int
    done: trio.Event = attrs.field(factory=trio.Event)
    lost: bool = False


@attrs.define(eq=False)
class _PendingRead:
    index: int = 0
    done: trio.Event = attrs.field(factory=trio.Event)


@attrs.frozen
class GroupStatistics:
    group_id: int
    role: str
    leader_id: int
    term: int
    commit_index: int
    applied_index: int
    persisted_index: int
    fsyncs: int
    readies: int


@attrs.define(eq=False)
class ReplicaGroup:
    """One replica of one Raft group on this node."""

    group_id: int
    raw: RawNode
    log: GroupLog
    apply: Callable[[Sequence[Entry]], None]
    """Called with committed entries, in order, after they are durable here."""
    send: Callable[[Message], None]
    """Hands a message to the transport (never blocks; the transport may drop it)."""
    fsync: FsyncPolicy = FsyncPolicy.ALWAYS
    _wake: trio.Event = attrs.field(factory=trio.Event)
    _commit_waiters: list[tuple[int, int, _Waiter]] = attrs.field(factory=list)
    _persist_waiters: list[tuple[int, int, _Waiter]] = attrs.field(factory=list)
    _sequence: itertools.count[int] = attrs.field(factory=itertools.count)
    _reads: dict[bytes, _PendingRead] = attrs.field(factory=dict)
    _applied_index: int = 0
    _persisted_index: int = 0
    _fsyncs: int = 0
    _readies: int = 0
    _leader_id: int = 0
    _role: Role = Role.FOLLOWER
    on_role_change: Callable[[Role, int, int], None] | None = None
    """Called with (role, leader id, term) when either changes."""
    on_input: Callable[[int], None] | None = None
    """Called with the group id when a message, proposal or campaign arrives: the host
    ticks only groups that had input since they were last quiescent."""
    on_leadership: Callable[[int], None] | None = None
    """Called with the group id when this replica becomes leader."""
    observer: GroupObserver | None = None

    @property
    def is_leader(self) -> bool:
        return self._role is Role.LEADER

    @property
    def leader_id(self) -> int:
        return self._leader_id

    @property
    def leader_caught_up(self) -> bool:
        """Leader that has applied an entry of its own term, hence every committed entry.

        A new leader knows the commit point only once an entry of its term commits (its
        NOOP); state rebuilt from the log before then could miss committed entries.
        """
        return (
            self.is_leader
            and self._applied_index > 0
            and self.raw.log.maybe_term(self._applied_index) == self.raw.term
        )

    @property
    def applied_index(self) -> int:
        return self._applied_index

    def statistics(self) -> GroupStatistics:
        raft = self.raw.statistics()
        return GroupStatistics(
            self.group_id,
            self._role.value,
            self._leader_id,
            raft.term,
            raft.commit_index,
            self._applied_index,
            self._persisted_index,
            self._fsyncs,
            self._readies,
        )

    # -- inputs (sync: they never block; the loop does the work) --------------------------

    def tick(self) -> None:
        self.raw.tick()
        self._wake.set()

    def step(self, message: Message) -> None:
        self.raw.step(message)
        self._woken()

    def campaign(self) -> None:
        self.raw.campaign()
        self._woken()

    def transfer_leadership(self, target: int) -> None:
        """Start handing leadership to `target` (raises unless this replica leads)."""
        self.raw.transfer_leadership(target)
        self._woken()

    def propose(
        self, payload: bytes | memoryview, kind: EntryKind = EntryKind.DATA
    ) -> tuple[int, int]:
        """Append `payload` as a new entry; returns (index, term). Raises if not leader."""
        index = self.raw.propose(payload, kind)
        self._woken()
        return index, self.raw.term

    def _woken(self) -> None:
        self._wake.set()
        if self.on_input is not None:
            self.on_input(self.group_id)

    # -- waiting -----------------------------------------------------------------------

    async def wait_committed(self, index: int, term: int) -> None:
        """Return once entry (index, term) is committed and applied here; ProposalLost if not."""
        await self._wait(self._commit_waiters, index, term, self._applied_index)

    async def wait_persisted(self, index: int, term: int) -> None:
        """Return once entry `index` is durable on this node (acks=1)."""
        await self._wait(self._persist_waiters, index, term, self._persisted_index)

    async def read_index(self) -> int:
        """A commit index the leader confirmed, with a quorum, after this call began.

        Everything committed before the call is at or below it. A replica's own commit
        index is no such bound: a follower learns the leader's only as its log catches
        up, and after a power cut it restarts from the commit index last made durable.
        Raises `NotLeader` while no leader is known; a read dropped because leadership
        moved never returns, so callers bound the wait and ask again.
        """
        context = next(self._sequence).to_bytes(8, "big")
        pending = _PendingRead()
        self._reads[context] = pending
        try:
            self.raw.read_index(context)
            self._woken()
            await pending.done.wait()
        finally:
            del self._reads[context]
        return pending.index

    async def _wait(
        self, queue: list[tuple[int, int, _Waiter]], index: int, term: int, reached: int
    ) -> None:
        if index <= reached:
            return
        waiter = _Waiter(index, term)
        heapq.heappush(queue, (index, next(self._sequence), waiter))
        await waiter.done.wait()
        if waiter.lost:
            raise ProposalLost(f"group {self.group_id}: entry {index} of term {term} was lost")

    @staticmethod
    def _release(
        queue: list[tuple[int, int, _Waiter]], reached: int, terms: dict[int, int]
    ) -> None:
        while queue and queue[0][0] <= reached:
            _index, _sequence, waiter = heapq.heappop(queue)
            actual = terms.get(waiter.index)
            waiter.lost = actual is not None and actual != waiter.term
            waiter.done.set()

    # -- the Ready loop ------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            while self.raw.has_ready():
                await self._handle_ready(self.raw.ready())
                # Waits on the disk (the fsync chain, hard state) are not cancellation
                # points once started: without this, a dropped group would go on writing
                # files its node is about to delete.
                await trio.lowlevel.checkpoint_if_cancelled()

    async def _handle_ready(self, ready: Ready) -> None:
        self._readies += 1
        if ready.soft_state is not None:
            self._note_role(ready.soft_state.role, ready.soft_state.leader_id)
        # Segment and controller logs are never compacted (retention drops whole sealed
        # groups), so a leader always has the entries a follower lacks.
        invariant(ready.snapshot is None, f"group {self.group_id} was sent a snapshot")
        if ready.entries:
            self.log.append_entries(ready.entries)
        if ready.hard_state is not None:
            await self._save_hard_state(ready.hard_state)
        # A leader's appends may leave before its own fsync (Raft thesis 10.2.1): the core
        # counts the leader towards a quorum only once `advance` says its log is durable,
        # so followers' fsyncs overlap the leader's instead of following it. They leave
        # once that fsync is queued: sending them (straight to the sockets) takes a while,
        # and the leader's fsync is as much on the path of an acknowledgement as theirs.
        # Anyone else's messages (votes, append responses) promise durable state and wait
        # for the fsync.
        early = self._role is Role.LEADER
        sent_early = False

        def send_early() -> None:
            nonlocal sent_early
            sent_early = True
            for message in ready.messages:
                self.send(message)

        # DELIBERATE BUG ack-before-fsync: persisted (acknowledged, voted on) without fdatasync.
        skip_sync = bugs.active(bugs.Bug.ACK_BEFORE_FSYNC)
        if ready.must_sync and self.fsync is FsyncPolicy.ALWAYS and ready.entries and not skip_sync:
            started = time.perf_counter()
            await self.log.sync(send_early if early else None)
            self._fsyncs += 1
            if self.observer is not None:
                self.observer.fsync_done(time.perf_counter() - started)
        if early and not sent_early:
            send_early()
        if ready.entries:
            self._persisted_index = ready.entries[-1].index
            terms = {entry.index: entry.term for entry in ready.entries}
            self._release(self._persist_waiters, self._persisted_index, terms)
        if not early:
            for message in ready.messages:
                self.send(message)
        if ready.committed_entries:
            self.apply(ready.committed_entries)
            self._applied_index = ready.committed_entries[-1].index
            terms = {entry.index: entry.term for entry in ready.committed_entries}
            self._release(self._commit_waiters, self._applied_index, terms)
        for state in ready.read_states:
            pending = self._reads.get(state.context)
            if pending is not None:
                pending.index = state.index
                pending.done.set()
        if ready.committed_entries or (early and ready.messages):
            # What the log keeps at hand moves when entries are applied or a leader sends.
            self.log.entries_applied(self._applied_index, self.raw.sent_to_every_peer())
        self.raw.advance(ready)

    async def _save_hard_state(self, state: HardState) -> None:
        """Store the hard state; whenever that writes the file, in a worker thread.

        Thousands of groups electing or committing at once (a restart, a topic of many
        partitions) would otherwise hold the event loop in fsync and rename for each of
        them in turn.
        """
        if self.log.hard_state_pending(state):
            await trio.to_thread.run_sync(self.log.save_hard_state, state)
        else:
            self.log.save_hard_state(state)

    def _note_role(self, role: Role, leader_id: int) -> None:
        if (role, leader_id) == (self._role, self._leader_id):
            return
        if self.observer is not None:
            self.observer.role_changed(role, leader_id != self._leader_id)
        self._role, self._leader_id = role, leader_id
        logs.event(
            "leader_changed",
            logging.INFO,
            group=self.group_id,
            leader=leader_id,
            role=role.value,
            term=self.raw.term,
        )
        if self.on_role_change is not None:
            self.on_role_change(role, leader_id, self.raw.term)
        if role is Role.LEADER and self.on_leadership is not None:
            self.on_leadership(self.group_id)
