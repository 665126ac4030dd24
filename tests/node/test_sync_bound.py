"""Many groups syncing at once hold a bounded number of descriptors: each fsync chain in
flight holds three (the log's duplicate, the mark, the eventfd), and a topic of many
partitions makes every one of its groups sync at the same moment."""

from __future__ import annotations

import os
from pathlib import Path

import trio

from raftlog.protocol.records import Record, build_batch
from raftlog.replica.factory import open_replica_group
from raftlog.storage.offloop_sync import CHAINS_IN_FLIGHT_MAX, in_flight
from tests.node.test_replica_group import elect, no_messages

GROUPS = 3 * CHAINS_IN_FLIGHT_MAX


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_chains_in_flight_are_bounded_per_run() -> None:
    async def limiter() -> trio.CapacityLimiter:
        assert in_flight() is in_flight()
        return in_flight()

    first, second = trio.run(limiter), trio.run(limiter)
    assert first is not second, "a limiter must not outlive its trio run"
    assert first.total_tokens == CHAINS_IN_FLIGHT_MAX


def test_many_groups_syncing_together_open_a_bounded_number_of_files(tmp_path: Path) -> None:
    opened = [
        open_replica_group(
            tmp_path / f"g{i}",
            group_id=i + 1,
            node_id=1,
            voters=[1],
            apply=lambda _entries: None,
            send=no_messages,
        )
        for i in range(GROUPS)
    ]
    most = 0

    async def main() -> None:
        nonlocal most
        async with trio.open_nursery() as nursery:
            for group, _storage in opened:
                await nursery.start(group.run)
            baseline = _open_descriptors()
            for group, _storage in opened:
                await elect(group)
            last = [group.propose(build_batch([Record(b"v")])) for group, _ in opened]

            async def watch() -> None:
                nonlocal most
                while True:
                    most = max(most, _open_descriptors() - baseline)
                    await trio.sleep(0)

            nursery.start_soon(watch)
            for (group, _storage), (index, term) in zip(opened, last, strict=True):
                await group.wait_committed(index, term)
            nursery.cancel_scope.cancel()

    try:
        trio.run(main)
    finally:
        for _group, storage in opened:
            storage.log.close()
    assert 0 < most <= 3 * CHAINS_IN_FLIGHT_MAX + 16, most
