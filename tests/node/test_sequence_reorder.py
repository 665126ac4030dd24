"""A batch that reaches the sequence check before the batch sent ahead of it waits for it.

The listener handles a connection's produce requests concurrently, so batch N+1 of a
producer can reach the partition before batch N. Refusing it OUT_OF_ORDER_SEQUENCE_NUMBER
would make librdkafka bump its epoch and renumber messages whose first attempt may be
stored already (chaos run seed 10001). It waits, briefly, for the earlier batch instead;
a real gap is still refused.
"""

from pathlib import Path

import trio

from raftlog.partition.replica import REORDER_WAIT_S, PartitionReplica
from raftlog.protocol.errors import ErrorCode
from raftlog.protocol.records import Record, build_batch
from raftlog.replica.factory import open_replica_group
from tests.node.test_replica_group import elect, single_voter_partition


def _batch(sequence: int) -> bytes:
    return build_batch([Record(b"%d" % sequence)], producer_id=7, producer_epoch=0,
                       base_sequence=sequence)  # fmt: skip


def test_a_batch_ahead_waits_for_the_one_before_it(tmp_path: Path) -> None:
    async def main() -> None:
        group, storage, replica = single_voter_partition(tmp_path)
        async with trio.open_nursery() as nursery:
            await nursery.start(group.run)
            await elect(group)
            assert (await replica.produce(_batch(0), -1, 5.0)).error_code == 0

            outcomes: dict[int, tuple[int, int]] = {}

            async def produce(sequence: int) -> None:
                outcome = await replica.produce(_batch(sequence), -1, 5.0)
                outcomes[sequence] = (outcome.error_code, outcome.base_offset)

            async with trio.open_nursery() as requests:
                requests.start_soon(produce, 2)  # overtakes the batch before it
                await trio.sleep(0.05)
                requests.start_soon(produce, 1)
            assert outcomes[1][0] == 0 and outcomes[2][0] == 0, outcomes
            assert outcomes[1][1] < outcomes[2][1], "appended in sequence order"

            # A real gap (sequence 4 while 3 never comes) is still refused, after the wait.
            started = trio.current_time()
            gap = await replica.produce(_batch(4), -1, 5.0)
            assert gap.error_code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
            assert trio.current_time() - started >= REORDER_WAIT_S * 0.9
            nursery.cancel_scope.cancel()
        storage.log.close()

    trio.run(main)


def test_batches_behind_a_refused_one_are_refused_alike(tmp_path: Path) -> None:
    """The head refuses batch 1 retriably (it is sealing); batch 2, pipelined behind it,
    must get the same retriable refusal, not OUT_OF_ORDER_SEQUENCE_NUMBER (chaos run:
    librdkafka bumped its epoch on that answer and renumbered its queue)."""

    async def main() -> None:
        group, storage, replica = single_voter_partition(tmp_path)
        async with trio.open_nursery() as nursery:
            await nursery.start(group.run)
            await elect(group)
            assert (await replica.produce(_batch(0), -1, 5.0)).error_code == 0
            replica.seal_through = 10  # a successor was made ahead: no room for more batches
            first = await replica.produce(_batch(1), -1, 0.2)
            assert first.error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER, first
            behind = await replica.produce(_batch(2), -1, 0.2)
            assert behind.error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER, behind
            nursery.cancel_scope.cancel()
        storage.log.close()

    trio.run(main)


def test_a_leader_yet_to_commit_in_its_term_reports_no_gap(tmp_path: Path) -> None:
    """A leader whose own term has committed nothing may be a stale one (a replica that
    missed its group's creation replays it on restart and leads the first term with an
    empty log): the batches between may be on the replicas it has not heard from yet.
    Here the other voter never answers, so this leader's NOOP never commits."""

    async def main() -> None:
        group, storage = open_replica_group(
            tmp_path, group_id=1, node_id=1, voters=[1, 2], apply=lambda _e: None,
            send=lambda _message: None, bootstrap=True,
        )  # fmt: skip
        replica = PartitionReplica("t", 0, group, storage, lambda: None)
        async with trio.open_nursery() as nursery:
            await nursery.start(group.run)
            group.tick()  # the host's first tick: the first voter of a new group leads
            with trio.fail_after(5):
                while not group.is_leader:
                    await trio.sleep(0.001)
            assert not group.leader_caught_up
            first = await replica.produce(_batch(0), -1, 0.2)
            assert first.error_code == ErrorCode.REQUEST_TIMED_OUT, "it cannot commit alone"
            ahead = await replica.produce(_batch(2), -1, 5.0)
            assert ahead.error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER, ahead
            nursery.cancel_scope.cancel()
        storage.log.close()

    trio.run(main)
