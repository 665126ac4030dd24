"""A partition replica's idempotence memory survives a rebuild while batches are in flight.

A rebuild (a new predecessor joining the chain, a truncation) reads the log on disk; a
leader's batches proposed but not yet persisted are not there. Forgetting them would let a
producer's retry of such a batch be appended a second time.
"""

from pathlib import Path

import pytest
import trio

from raftlog.partition.replica import PartitionReplica
from raftlog.producer_state import BatchIdentity, Duplicate
from raftlog.protocol.errors import ErrorCode
from raftlog.protocol.records import Record, build_batch
from raftlog.replica.group import ReplicaGroup
from raftlog.replica.raft_storage import SegmentGroupLog
from tests.node.test_replica_group import elect, single_voter_partition


async def _leader_that_stops_writing(
    tmp_path: Path,
) -> tuple[ReplicaGroup, SegmentGroupLog, PartitionReplica]:
    """A single-voter group elected, then its Ready loop stopped: nothing proposed from
    here on reaches the disk or commits."""
    group, storage, replica = single_voter_partition(tmp_path)
    async with trio.open_nursery() as nursery:
        await nursery.start(group.run)
        await elect(group)
        nursery.cancel_scope.cancel()
    return group, storage, replica


def test_a_rebuild_keeps_the_batches_not_yet_on_disk(tmp_path: Path) -> None:
    async def main() -> None:
        _group, storage, replica = await _leader_that_stops_writing(tmp_path)
        batch = build_batch([Record(b"v")], producer_id=7, producer_epoch=0, base_sequence=0)
        with trio.move_on_after(0.05):
            await replica.produce(batch, -1, 1.0)  # proposed; waits for a commit that never comes
        last_on_disk = storage.log.last_entry_index
        replica.rebuild()
        verdict = replica.producers.check(BatchIdentity(7, 0, 0, 1, 0))
        assert isinstance(verdict, Duplicate) and verdict.entry_index > last_on_disk
        storage.log.close()

    trio.run(main)


def test_a_retry_never_waits_under_a_term_its_batch_was_not_proposed_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first request of a batch is gone (its client disconnected, so its handler was
    cancelled) before the batch reached the disk; the client's retry of it arrives.

    The retry once waited for the entry's commit under the leader's current term. In
    jepsen_like campaign seed 17006, the leader's Raft core had just stepped down to a
    newer term: the next leader's entry at that index matched the term, and the retry was
    acknowledged with another producer's offset while its own batch was lost. Without the
    proposal's term, the retry is answered REQUEST_TIMED_OUT (the client retries later)."""

    async def main() -> None:
        _group, storage, replica = await _leader_that_stops_writing(tmp_path)
        waits: list[tuple[int, int]] = []
        wait_committed = ReplicaGroup.wait_committed

        async def recorded(self: ReplicaGroup, index: int, term: int) -> None:
            waits.append((index, term))
            await wait_committed(self, index, term)

        monkeypatch.setattr(ReplicaGroup, "wait_committed", recorded)
        batch = build_batch([Record(b"v")], producer_id=7, producer_epoch=0, base_sequence=0)
        with trio.move_on_after(0.05):
            await replica.produce(batch, -1, 1.0)  # its handler is cancelled while it waits
        assert len(waits) == 1
        retried = await replica.produce(batch, -1, 1.0)
        assert retried.error_code == ErrorCode.REQUEST_TIMED_OUT
        assert len(waits) == 1, f"the retry waited under a guessed term: {waits}"
        storage.log.close()

    trio.run(main)
