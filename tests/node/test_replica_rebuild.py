"""A partition replica's idempotence memory survives a rebuild while batches are in flight.

A rebuild (a new predecessor joining the chain, a truncation) reads the log on disk; a
leader's batches proposed but not yet persisted are not there. Forgetting them would let a
producer's retry of such a batch be appended a second time.
"""

from pathlib import Path

import trio

from raftlog.partition.replica import PartitionReplica
from raftlog.producer_state import BatchIdentity, Duplicate
from raftlog.protocol.records import Record, build_batch
from raftlog.replica.factory import open_replica_group


def _no_messages(message: object) -> None:
    raise AssertionError(f"a single-voter group sends nothing, yet sent {message!r}")


def test_a_rebuild_keeps_the_batches_not_yet_on_disk(tmp_path: Path) -> None:
    async def main() -> None:
        group, storage = open_replica_group(
            tmp_path, group_id=1, node_id=1, voters=[1], apply=lambda _e: None, send=_no_messages
        )
        replica = PartitionReplica("t", 0, group, storage, lambda: None)
        async with trio.open_nursery() as nursery:
            await nursery.start(group.run)
            group.campaign()
            with trio.fail_after(5):
                while not group.is_leader:
                    await trio.sleep(0.001)
            nursery.cancel_scope.cancel()  # nothing proposed from here on reaches the disk
        batch = build_batch([Record(b"v")], producer_id=7, producer_epoch=0, base_sequence=0)
        with trio.move_on_after(0.05):
            await replica.produce(batch, -1, 1.0)  # proposed; waits for a commit that never comes
        last_on_disk = storage.log.last_entry_index
        replica.rebuild()
        verdict = replica.producers.check(BatchIdentity(7, 0, 0, 1, 0))
        assert isinstance(verdict, Duplicate) and verdict.entry_index > last_on_disk
        storage.log.close()

    trio.run(main)
