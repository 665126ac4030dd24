"""ListOffsets (key 2). Behavior: the earliest offset (timestamp -2), the latest committed
one (-1, the high watermark), or the first offset whose batch has a timestamp at or after
the given one (from the time index); none found answers offset -1, as Kafka does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from raftlog.protocol.connection import RequestReceived
from raftlog.protocol.errors import ErrorCode
from raftlog.protocol.messages.generated.list_offsets_request import ListOffsetsRequest
from raftlog.protocol.messages.generated.list_offsets_response import (
    ListOffsetsPartitionResponse,
    ListOffsetsResponse,
    ListOffsetsTopicResponse,
)

if TYPE_CHECKING:
    from raftlog.node.broker import Broker

API_KEY = 2
VERSIONS = (1, 7)
LATEST = -1
EARLIEST = -2
MAX_TIMESTAMP = -3


async def handle(broker: Broker, request: RequestReceived) -> ListOffsetsResponse:
    body = request.body
    assert isinstance(body, ListOffsetsRequest)
    topics = []
    for topic in body.topics:
        partitions = []
        for wanted in topic.partitions:
            response = ListOffsetsPartitionResponse(
                partition_index=wanted.partition_index, timestamp=-1, offset=-1, leader_epoch=-1
            )
            partitions.append(response)
            partition = broker.partition(topic.name, wanted.partition_index)
            if partition is None:
                response.error_code = int(broker.unserved_error(topic.name, wanted.partition_index))
                continue
            epoch_error = partition.check_leader_epoch(wanted.current_leader_epoch)
            if epoch_error is not None:
                response.error_code = int(epoch_error)
                continue
            if wanted.timestamp != EARLIEST and partition.end_unknown():
                # Latest, or a time the head may hold, from a leader that cannot say yet
                # (`PartitionChain.end_unknown`). librdkafka's ListOffsets retries this
                # code, where it takes NOT_LEADER_OR_FOLLOWER and OFFSET_NOT_AVAILABLE as
                # final.
                response.error_code = int(ErrorCode.LEADER_NOT_AVAILABLE)
                continue
            response.leader_epoch = partition.leader_epoch
            if wanted.timestamp == EARLIEST:
                response.offset = partition.log_start_offset
            elif wanted.timestamp in (LATEST, MAX_TIMESTAMP):
                response.offset = partition.high_watermark
            else:
                found = partition.offset_for_timestamp(wanted.timestamp)
                if found is not None:
                    response.offset, response.timestamp = found
        topics.append(ListOffsetsTopicResponse(name=topic.name, partitions=partitions))
    return ListOffsetsResponse(throttle_time_ms=0, topics=topics)
