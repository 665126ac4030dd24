"""A refused produce lets other tasks run before it returns.

What lifts a refusal (a seal applied, a predecessor caught up, a leader elected) happens
in Ready loops. A caller in this process that retries at once, with nothing else to wait
for, starved them when a refusal returned without a checkpoint: CI once hung 25 minutes
in such a loop (`tests/node/test_head_awaiting_leader.py`, a head led here whose
predecessor had not applied its seal yet), its `fail_after` never able to fire.
"""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing

from raftlog.protocol.errors import ErrorCode
from raftlog.protocol.records import Record, build_batch
from tests.node.test_replica_group import single_voter_partition


def test_a_refusal_lets_the_other_tasks_run_first(tmp_path: Path) -> None:
    _group, storage, replica = single_voter_partition(tmp_path)  # never elected: refuses

    async def main() -> None:
        # A yield to the scheduler, deterministically: whether another runnable task then
        # goes first is the scheduler's (randomized) choice.
        with trio.testing.assert_checkpoints():
            outcome = await replica.produce(build_batch([Record(value=b"v")]), -1, 1.0)
        assert outcome.error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER

    try:
        trio.run(main)
    finally:
        storage.log.close()
