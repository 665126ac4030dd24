"""Fetch (key 1). Behavior: for each partition, the committed batches from `fetch_offset`
on, read from the segment files as stored (never re-encoded, never above the high
watermark). Long-poll: if fewer than `min_bytes` are ready, wait until more are committed
or `max_wait_ms` passes. At least one batch is returned even when it exceeds the byte limits
(KIP-74), so a consumer always makes progress. No fetch sessions: session id 0 tells the
client to send full requests. Transactions do not exist here, so the last stable offset is
the high watermark and no transaction is ever aborted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

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
    from raftlog.partition.replica import PartitionReplica

API_KEY = 1
VERSIONS = (4, 12)
MAX_WAIT_MS_MAX = 60_000


async def handle(broker: Broker, request: RequestReceived) -> FetchResponse:
    body = request.body
    assert isinstance(body, FetchRequest)
    deadline = trio.current_time() + min(max(body.max_wait_ms, 0), MAX_WAIT_MS_MAX) / 1000
    while True:
        change = broker.data_changed_event()
        topics, size_bytes = _collect(broker, body)
        if size_bytes >= body.min_bytes or trio.current_time() >= deadline:
            break
        with trio.move_on_at(deadline):
            await change.wait()
    return FetchResponse(throttle_time_ms=0, error_code=0, session_id=0, responses=topics)


def _collect(broker: Broker, body: FetchRequest) -> tuple[list[FetchableTopicResponse], int]:
    budget_bytes = max(body.max_bytes, 0)
    total_bytes = 0
    topics = []
    for topic in body.topics:
        partitions = []
        for wanted in topic.partitions:
            data = _read_partition(
                broker.partition(topic.topic, wanted.partition),
                wanted,
                budget_bytes - total_bytes,
                first_in_response=total_bytes == 0,
            )
            total_bytes += len(data.records or b"")
            partitions.append(data)
        topics.append(FetchableTopicResponse(topic=topic.topic, partitions=partitions))
    return topics, total_bytes


def _read_partition(
    partition: PartitionReplica | None,
    wanted: FetchPartition,
    budget_bytes: int,
    *,
    first_in_response: bool,
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
    if partition is None:
        data.error_code = int(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
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
