"""One replica group on real files: proposals commit through fsync and survive a restart."""

import itertools
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import trio

from raftlog import native
from raftlog.partition.replica import PartitionReplica
from raftlog.protocol.records import Record, build_batch
from raftlog.raft.entry import Entry, EntryKind
from raftlog.raft.messages import AppendEntries, Message
from raftlog.replica.factory import open_replica_group
from raftlog.replica.group import ReplicaGroup
from raftlog.replica.raft_storage import SegmentGroupLog


def no_messages(message: object) -> None:
    raise AssertionError(f"a single-voter group sends nothing, yet sent {message!r}")


def single_voter_partition(
    directory: Path,
) -> tuple[ReplicaGroup, SegmentGroupLog, PartitionReplica]:
    """A single-voter group on `directory` (not run yet) and a partition replica on it."""
    group, storage = open_replica_group(
        directory, group_id=1, node_id=1, voters=[1], apply=lambda _e: None, send=no_messages
    )
    return group, storage, PartitionReplica("t", 0, group, storage, lambda: None)


async def elect(group: ReplicaGroup) -> None:
    """Campaign a single-voter group and wait until it leads."""
    group.campaign()
    with trio.fail_after(5):
        while not group.is_leader:
            await trio.sleep(0.001)


def test_single_voter_group_commits_and_recovers(tmp_path: Path) -> None:
    applied: list[Entry] = []

    def apply(entries: Sequence[Entry]) -> None:
        applied.extend(entries)

    async def first_life() -> list[tuple[int, int]]:
        group, storage = open_replica_group(
            tmp_path, group_id=1, node_id=1, voters=[1], apply=apply, send=no_messages
        )
        proposed: list[tuple[int, int]] = []
        async with trio.open_nursery() as nursery:
            await nursery.start(group.run)
            await elect(group)
            for value in range(20):
                batch = build_batch([Record(f"v{value}".encode())] * 3)
                proposed.append(group.propose(batch))
            await group.wait_committed(*proposed[-1])
            assert group.statistics().fsyncs < 20, "group commit shares fsyncs"
            nursery.cancel_scope.cancel()
        storage.log.close()
        return proposed

    proposed = trio.run(first_life)
    data = [entry for entry in applied if entry.kind is EntryKind.DATA]
    assert len(data) == 20
    assert [entry.index for entry in data] == [index for index, _term in proposed]

    applied.clear()

    async def second_life() -> None:
        group, storage = open_replica_group(
            tmp_path, group_id=1, node_id=1, voters=[1], apply=apply, send=no_messages
        )
        # Every entry is on disk as a stamped batch with contiguous offsets.
        batches = storage.log.read_entries(1, 1 << 30, 1000)
        headers = [native.parse_batch_header(batch) for batch in batches]
        assert headers[0].base_offset == 0
        for before, after in itertools.pairwise(headers):
            assert after.base_offset == before.last_offset + 1
        async with trio.open_nursery() as nursery:
            await nursery.start(group.run)
            await elect(group)
            index, term = group.propose(build_batch([Record(b"after restart")]))
            await group.wait_committed(index, term)
            assert term > proposed[-1][1]
            nursery.cancel_scope.cancel()
        storage.log.close()

    trio.run(second_life)
    replayed = [entry for entry in applied if entry.kind is EntryKind.DATA]
    assert len(replayed) == 21  # the 20 from before are applied again from the log, then 1


def test_a_new_leader_is_caught_up_only_once_an_entry_of_its_term_applied(
    tmp_path: Path,
) -> None:
    """What the group coordinator waits for before rebuilding state from the log: until
    then, committed entries of earlier terms may not all be applied yet."""

    async def life(value: bytes) -> None:
        group, storage = open_replica_group(
            tmp_path, group_id=1, node_id=1, voters=[1], apply=lambda entries: None,
            send=no_messages,
        )  # fmt: skip
        async with trio.open_nursery() as nursery:
            await nursery.start(group.run)
            assert not group.leader_caught_up, "a follower is never caught up as leader"
            group.campaign()
            with trio.fail_after(5):
                while not group.is_leader:
                    await trio.sleep(0)
            assert not group.leader_caught_up, "its NOOP is not applied yet (fsync first)"
            with trio.fail_after(5):
                while not group.leader_caught_up:
                    await trio.sleep(0.001)
            index, term = group.propose(build_batch([Record(value)]))
            await group.wait_committed(index, term)
            assert group.leader_caught_up
            nursery.cancel_scope.cancel()
        storage.log.close()

    trio.run(life, b"first")
    trio.run(life, b"second")  # entries of an earlier term are in the log this time


def test_cancelled_group_stops_writing_after_its_fsync_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node deletes a dropped group's directory once its task has ended: the task must
    not write again after the cancel, even though the fsync under way finishes first."""
    released = threading.Event()
    fsync_started = threading.Event()
    real_fdatasync = os.fdatasync

    def gated_fdatasync(fd: int) -> None:
        if threading.current_thread() is not threading.main_thread():
            fsync_started.set()
            released.wait(10)
        real_fdatasync(fd)

    async def main() -> None:
        group, storage = open_replica_group(
            tmp_path,
            group_id=1,
            node_id=1,
            voters=[1],
            apply=lambda entries: None,
            send=no_messages,
        )
        async with trio.open_nursery() as nursery:
            scope = trio.CancelScope()

            async def run() -> None:
                with scope:
                    await group.run()

            nursery.start_soon(run)
            await elect(group)
            await group.wait_committed(*group.propose(build_batch([Record(b"settled")])))
            monkeypatch.setattr(os, "fdatasync", gated_fdatasync)
            group.propose(build_batch([Record(b"in flight")]))
            await trio.to_thread.run_sync(fsync_started.wait, 10)
            scope.cancel()
            group.propose(build_batch([Record(b"after the cancel")]))
            released.set()
        monkeypatch.setattr(os, "fdatasync", real_fdatasync)
        written = b"".join(storage.log.read_entries(1, 1 << 30, 1000))
        storage.log.close()
        assert b"in flight" in written
        assert b"after the cancel" not in written, "the group appended after its cancel"

    trio.run(main)


def test_read_index_is_the_leaders_commit_not_a_lagging_followers(tmp_path: Path) -> None:
    """What a restarted node waits for before it serves from its view of the controller.

    A follower's own commit index trails the leader's until its log catches up (and after
    a power cut it restarts from the one last made durable): a node that took it as the
    bound served clients from a view that still named a segment sealed long before as a
    partition's head. ReadIndex asks the leader, which confirms with a quorum."""
    cut_off: set[int] = set()
    outbox: list[Message] = []
    groups: dict[int, ReplicaGroup] = {}
    for node_id in (1, 2, 3):
        groups[node_id], _storage = open_replica_group(
            tmp_path / str(node_id), group_id=1, node_id=node_id, voters=[1, 2, 3],
            apply=lambda entries: None, send=outbox.append, bootstrap=True,
        )  # fmt: skip

    async def deliver_and_tick() -> None:
        for step in itertools.count():
            pending = outbox[:]
            outbox.clear()
            for message in pending:
                if not {message.from_id, message.to_id} & cut_off:
                    groups[message.to_id].step(message)
            if step % 10 == 0:
                for group in groups.values():
                    group.tick()
            await trio.sleep(0.001)

    async def scenario() -> None:
        leader, lagging = groups[1], groups[3]
        async with trio.open_nursery() as nursery:
            for group in groups.values():
                await nursery.start(group.run)
            nursery.start_soon(deliver_and_tick)
            with trio.fail_after(10):
                while not leader.leader_caught_up or not lagging.leader_id:
                    await trio.sleep(0.001)
                cut_off.add(3)
                for value in range(50):
                    index, term = leader.propose(build_batch([Record(b"%d" % value)]))
                await leader.wait_committed(index, term)
                committed = leader.statistics().commit_index
                assert lagging.statistics().commit_index < committed
                cut_off.clear()
                read = await lagging.read_index()
            assert read >= committed, "the leader's commit index, whatever the follower's"
            with trio.fail_after(10):
                while lagging.applied_index < read:
                    await trio.sleep(0.001)
            nursery.cancel_scope.cancel()

    trio.run(scenario)


def test_a_leader_sends_its_appends_once_its_own_fsync_is_queued(tmp_path: Path) -> None:
    """Sending to followers (straight to their sockets) takes a while; the leader's own
    fsync, as much on the path of an acknowledgement as theirs, is queued first and runs
    meanwhile (Raft thesis 10.2.1: appends need not wait for it)."""
    events: list[str] = []

    def send(message: Message) -> None:
        if isinstance(message, AppendEntries) and message.entries:
            events.append(f"append to {message.to_id}")

    group, storage = open_replica_group(
        tmp_path, group_id=1, node_id=1, voters=[1, 2, 3], apply=lambda entries: None,
        send=send, bootstrap=True,
    )  # fmt: skip

    class Watched:
        """The group's log, noting when its fsync is queued and when it is over."""

        def __getattr__(self, name: str) -> object:
            return getattr(storage, name)

        async def sync(self, started: Callable[[], None] | None = None) -> None:
            def queued() -> None:
                events.append("fsync queued")
                if started is not None:
                    started()

            await storage.sync(queued)
            events.append("fsync over")

    group.log = Watched()  # type: ignore[assignment]

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(group.run)
            group.propose(build_batch([Record(b"lone")]))  # the first voter leads at once
            with trio.fail_after(5):
                while "fsync over" not in events:
                    await trio.sleep(0.001)
            nursery.cancel_scope.cancel()
        storage.log.close()

    trio.run(main)
    assert events == ["fsync queued", "append to 2", "append to 3", "fsync over"]
