"""Fetch (key 1). Behavior: for each partition, the committed batches from `fetch_offset`
on, read from the segment files as stored (never re-encoded, never above the high
watermark). Long-poll: if fewer than `min_bytes` are ready, wait until more are committed
or `max_wait_ms` passes. At least one batch is returned even when it exceeds the byte limits
(KIP-74), so a consumer always makes progress. No fetch sessions: session id 0 tells the
client to send full requests. Transactions do not exist here, so the last stable offset is
the high watermark and no transaction is ever aborted.

An offset in a sealed segment that this node does not hold (or not yet) is read from a
replica that holds it, once per request before the long-poll (`raftlog.node.sealed_reads`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from raftlog.node.sealed_reads import FORWARD_TIMEOUT_S
from raftlog.partition.replica import ReadResult
from raftlog.protocol.connection import RequestReceived
from raftlog.protocol.errors import ErrorCode
from raftlog.protocol.messages.generated.fetch_request import FetchPartition, FetchRequest
from raftlog.protocol.messages.generated.fetch_response import (
    FetchableTopicResponse,
    FetchResponse,
    PartitionData,
)

if TYPE_CHECKING:
    from raftlog.node.broker import Broker
    from raftlog.partition.chain import PartitionChain

API_KEY = 1
VERSIONS = (4, 12)
MAX_WAIT_MS_MAX = 60_000

Forwarded = dict[tuple[str, int], ReadResult]


async def handle(broker: Broker, request: RequestReceived) -> FetchResponse:
    body = request.body
    assert isinstance(body, FetchRequest)
    deadline = trio.current_time() + min(max(body.max_wait_ms, 0), MAX_WAIT_MS_MAX) / 1000
    forwarded = await _read_elsewhere(broker, body)
    while True:
        change = broker.data_changed_event()
        topics, size_bytes = _collect(broker, body, forwarded)
        if size_bytes >= body.min_bytes or trio.current_time() >= deadline:
            break
        with trio.move_on_at(deadline):
            await change.wait()
    return FetchResponse(throttle_time_ms=0, error_code=0, session_id=0, responses=topics)


async def _read_elsewhere(broker: Broker, body: FetchRequest) -> Forwarded:
    """Reads of the wanted offsets that lie in sealed segments this node does not hold."""
    reader = broker.sealed_reads
    forwarded: Forwarded = {}
    if reader is None:
        return forwarded
    elsewhere = [
        (topic.topic, wanted)
        for topic in body.topics
        for wanted in topic.partitions
        if _not_here(broker.partition(topic.topic, wanted.partition), wanted)
    ]
    if not elsewhere:
        return forwarded
    deadline = trio.current_time() + FORWARD_TIMEOUT_S
    max_bytes = max(body.max_bytes, 0)

    async def read_one(topic: str, wanted: FetchPartition) -> None:
        assert reader is not None
        result = await reader.read(
            topic,
            wanted.partition,
            wanted.fetch_offset,
            min(max(wanted.partition_max_bytes, 0), max_bytes),
            deadline=deadline,
        )
        if result is not None:
            forwarded[(topic, wanted.partition)] = result

    async with trio.open_nursery() as nursery:
        for topic_name, wanted in elsewhere:
            nursery.start_soon(read_one, topic_name, wanted)
    return forwarded


def _not_here(chain: PartitionChain | None, wanted: FetchPartition) -> bool:
    """No local segment answers for the offset (and the client's epoch is not refused)."""
    if chain is None:
        return True
    if chain.check_leader_epoch(wanted.current_leader_epoch) is not None:
        return False
    return chain.segment_holding(wanted.fetch_offset) is None


def _collect(
    broker: Broker, body: FetchRequest, forwarded: Forwarded
) -> tuple[list[FetchableTopicResponse], int]:
    budget_bytes = max(body.max_bytes, 0)
    total_bytes = 0
    topics = []
    for topic in body.topics:
        partitions = []
        for wanted in topic.partitions:
            partition = broker.partition(topic.topic, wanted.partition)
            data = _read_partition(
                partition,
                wanted,
                budget_bytes - total_bytes,
                first_in_response=total_bytes == 0,
                forwarded=forwarded.get((topic.topic, wanted.partition)),
                unserved=(
                    broker.unserved_error(topic.topic, wanted.partition)
                    if partition is None
                    else ErrorCode.NONE
                ),
            )
            total_bytes += len(data.records or b"")
            partitions.append(data)
        topics.append(FetchableTopicResponse(topic=topic.topic, partitions=partitions))
    return topics, total_bytes


def _read_partition(
    partition: PartitionChain | None,
    wanted: FetchPartition,
    budget_bytes: int,
    *,
    first_in_response: bool,
    forwarded: ReadResult | None,
    unserved: ErrorCode,
) -> PartitionData:
    data = PartitionData(
        partition_index=wanted.partition,
        high_watermark=-1,
        last_stable_offset=-1,
        log_start_offset=-1,
        aborted_transactions=None,
        preferred_read_replica=-1,
        records=b"",
    )
    if forwarded is not None:
        return _forwarded_data(data, forwarded, partition, budget_bytes, first_in_response)
    if partition is None:
        data.error_code = int(unserved)
        return data
    epoch_error = partition.check_leader_epoch(wanted.current_leader_epoch)
    if epoch_error is not None:
        data.error_code = int(epoch_error)
        return data
    max_bytes = min(max(wanted.partition_max_bytes, 0), max(budget_bytes, 0))
    result = partition.read_committed(
        wanted.fetch_offset, max_bytes, at_least_one=first_in_response
    )
    data.error_code = int(result.error_code)
    data.high_watermark = result.high_watermark
    data.last_stable_offset = result.high_watermark
    data.log_start_offset = result.log_start_offset
    data.records = result.records
    return data


def _forwarded_data(
    data: PartitionData,
    forwarded: ReadResult,
    partition: PartitionChain | None,
    budget_bytes: int,
    first_in_response: bool,
) -> PartitionData:
    """A partition answered by another replica's read, within this response's byte budget.

    Batches that no longer fit (earlier partitions used the budget) are left out without an
    error: the client asks again from the same offset.
    """
    if len(forwarded.records) <= budget_bytes or first_in_response:
        data.records = forwarded.records
    data.high_watermark = forwarded.high_watermark
    data.log_start_offset = forwarded.log_start_offset
    if partition is not None:
        data.high_watermark = max(data.high_watermark, partition.high_watermark)
        data.log_start_offset = partition.log_start_offset
    data.last_stable_offset = data.high_watermark
    return data
