"""A coordinator serves committed offsets only once it has read every committed record.

After a restart the `__consumer_offsets` partition's head may lead while an earlier sealed
segment of it is not yet readable on this node (its SEAL not applied again, or the segment
still arriving). A load that stopped there served the offsets committed before the roll:
a chaos run (seed 8000, kills with power loss) saw an acknowledged commit of 2401 read
back as 1844. The coordinator now answers COORDINATOR_LOAD_IN_PROGRESS (clients retry)
until the whole partition reads, and keeps what it had until then.

The chain here is a stand-in for `PartitionChain` that serves real offset-commit batches;
the cluster path is exercised by the chaos suite (`jepsen_like`).
"""

from __future__ import annotations

import attrs
import pytest

from raftlog.groups.coordinator import GroupCoordinator, GroupError
from raftlog.groups.records import (
    OFFSETS_TOPIC,
    commit_batch,
    coordinator_partition,
    offset_key,
    offset_value,
)
from raftlog.partition.replica import ReadResult
from raftlog.protocol.errors import ErrorCode
from raftlog.protocol.records import parse_batches

GROUP = "billing"


@attrs.define
class _Raw:
    term: int = 3


@attrs.define
class _Group:
    group_id: int = 21
    is_leader: bool = True
    leader_caught_up: bool = True
    raw: _Raw = attrs.field(factory=_Raw)


@attrs.define
class _Chain:
    """Offsets 0..n-1, each a one-record commit batch; offsets from `unreadable_from` on
    answer with no records, as a sealed segment not yet readable here does."""

    batches: list[bytes]
    unreadable_from: int | None = None
    group: _Group = attrs.field(factory=_Group)
    log_start_offset: int = 0
    sealed_head: bool = False
    """The chain's last segment is sealed (`PartitionChain.stands_in`)."""

    def stands_in(self) -> bool:
        return self.sealed_head

    @property
    def high_watermark(self) -> int:
        return len(self.batches)

    def read_committed(self, offset: int, max_bytes: int, *, at_least_one: bool) -> ReadResult:
        if self.unreadable_from is not None and offset >= self.unreadable_from:
            return ReadResult(0, b"", self.high_watermark, 0)
        return ReadResult(0, self.batches[offset], self.high_watermark, 0)


def _commits(values: list[int]) -> list[bytes]:
    batches = []
    for offset, value in enumerate(values):
        record = (offset_key(GROUP, "orders", 0), offset_value(value, None, 0))
        batch = bytearray(commit_batch([record]))
        batch[0:8] = offset.to_bytes(8, "big")  # base offset, as the log stamps it
        assert parse_batches(bytes(batch))[0].base_offset == offset
        batches.append(bytes(batch))
    return batches


def _coordinator_of(chain: _Chain) -> GroupCoordinator:
    """A coordinator whose only offsets partition here is `chain`, the one of GROUP."""
    index = coordinator_partition(GROUP)
    return GroupCoordinator(
        lambda topic, partition: chain if (topic, partition) == (OFFSETS_TOPIC, index) else None
    )


def test_an_incomplete_load_serves_nothing_and_a_complete_one_the_latest_commit() -> None:
    chain = _Chain(_commits([1000, 1844, 2200, 2401]), unreadable_from=2)
    coordinator = _coordinator_of(chain)
    with pytest.raises(GroupError) as refused:
        coordinator._coordinating(GROUP)
    assert refused.value.code == ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
    assert GROUP not in coordinator.offsets, "a partial load must not be served"

    chain.unreadable_from = None
    coordinator._coordinating(GROUP)
    assert coordinator.offsets[GROUP][("orders", 0)][0] == 2401


def test_a_sealed_segment_standing_in_for_the_head_is_no_coordinator() -> None:
    """This node leads the partition's last segment it knows, sealed: its view of the
    controller may be behind (restarted, or cut off from the controller leader) while
    the partition moved on to segments holding later commits. Loading from it would serve
    2200 where 2401 was acknowledged; clients find the coordinator again instead."""
    chain = _Chain(_commits([1000, 1844, 2200]), sealed_head=True)
    coordinator = _coordinator_of(chain)
    with pytest.raises(GroupError) as refused:
        coordinator._coordinating(GROUP)
    assert refused.value.code == ErrorCode.NOT_COORDINATOR
    assert GROUP not in coordinator.offsets
