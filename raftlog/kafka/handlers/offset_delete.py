"""OffsetDelete (key 47). Behavior: tombstones a group's committed offsets for the named
partitions, except on topics its current members are assigned
(GROUP_SUBSCRIBED_TO_TOPIC), as Kafka does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from raftlog.groups.coordinator import GroupError
from raftlog.protocol.connection import RequestReceived
from raftlog.protocol.errors import ErrorCode
from raftlog.protocol.messages.generated.offset_delete_request import OffsetDeleteRequest
from raftlog.protocol.messages.generated.offset_delete_response import (
    OffsetDeleteResponse,
    OffsetDeleteResponsePartition,
    OffsetDeleteResponseTopic,
)

if TYPE_CHECKING:
    from raftlog.node.broker import Broker

API_KEY = 47
VERSIONS = (0, 0)


async def handle(broker: Broker, request: RequestReceived) -> OffsetDeleteResponse:
    body = request.body
    assert isinstance(body, OffsetDeleteRequest)
    coordinator = broker.coordinator
    try:
        active = coordinator.active_topics(body.group_id)
        wanted = [
            (topic.name, partition.partition_index)
            for topic in body.topics
            if topic.name not in active
            for partition in topic.partitions
        ]
        await coordinator.delete_offsets(body.group_id, wanted)
    except GroupError as error:
        return OffsetDeleteResponse(error_code=int(error.code), throttle_time_ms=0, topics=[])
    return OffsetDeleteResponse(
        error_code=0,
        throttle_time_ms=0,
        topics=[
            OffsetDeleteResponseTopic(
                name=topic.name,
                partitions=[
                    OffsetDeleteResponsePartition(
                        partition_index=partition.partition_index,
                        error_code=int(
                            ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC if topic.name in active else 0
                        ),
                    )
                    for partition in topic.partitions
                ],
            )
            for topic in body.topics
        ],
    )
