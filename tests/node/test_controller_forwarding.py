"""A metadata command forwarded to the controller leader that does not come back in time
is answered REQUEST_TIMED_OUT (as Kafka's forwarding does), saying where it was stuck."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
import trio

from raftlog.controller.service import REQUEST_TIMED_OUT, Controller, ControllerUnavailable
from raftlog.raft.messages import Heartbeat
from raftlog.replica.factory import open_replica_group

COMMAND = {"type": "allocate_producer_ids", "count": 10}


def test_a_forward_that_does_not_come_back_times_out_with_an_answer(
    tmp_path: pathlib.Path,
) -> None:
    controller = Controller()

    async def never_answers(_leader: int, _command: dict[str, Any]) -> dict[str, Any]:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def answers_an_entry_never_applied_here(
        _leader: int, _command: dict[str, Any]
    ) -> dict[str, Any]:
        return {"index": 99, "result": None}

    async def main() -> None:
        group, storage = open_replica_group(
            tmp_path,
            group_id=0,
            node_id=1,
            voters=[1, 2],
            apply=controller.apply_entries,
            send=lambda _message: None,
        )
        controller.group = group
        async with trio.open_nursery() as nursery:
            await nursery.start(group.run)
            group.step(Heartbeat(2, 1, 1, 0))  # node 2 leads term 1: this node forwards
            with trio.fail_after(5):
                while group.leader_id != 2:
                    await trio.sleep(0.005)
            for forward, stuck_at in (
                (never_answers, "the leader's answer"),
                (answers_an_entry_never_applied_here, "applying it here"),
            ):
                controller.forward = forward
                with pytest.raises(ControllerUnavailable, match=stuck_at) as raised:
                    await controller.execute(COMMAND, 0.3)
                assert raised.value.error_code == REQUEST_TIMED_OUT
            nursery.cancel_scope.cancel()
        storage.log.close()

    trio.run(main)
