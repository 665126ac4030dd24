"""OffsetCommit (key 8). Behavior: a group's commits become one record batch in its
`__consumer_offsets` partition, acknowledged once committed by Raft. Members of an active
group must name their generation; a commit with generation -1 and no member id is a
"simple" commit (a consumer that assigns partitions itself).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from raftlog.groups.coordinator import GroupError
from raftlog.protocol.connection import RequestReceived
from raftlog.protocol.errors import ErrorCode
from raftlog.protocol.messages.generated.offset_commit_request import OffsetCommitRequest
from raftlog.protocol.messages.generated.offset_commit_response import (
    OffsetCommitResponse,
    OffsetCommitResponsePartition,
    OffsetCommitResponseTopic,
)

if TYPE_CHECKING:
    from raftlog.node.broker import Broker

API_KEY = 8
VERSIONS = (0, 8)


async def handle(broker: Broker, request: RequestReceived) -> OffsetCommitResponse:
    body = request.body
    assert isinstance(body, OffsetCommitRequest)
    commits = []
    unknown: set[tuple[str, int]] = set()
    for topic in body.topics:
        for partition in topic.partitions:
            if broker.partition(topic.name, partition.partition_index) is None and (
                topic.name not in broker.controller.state.topics
            ):
                unknown.add((topic.name, partition.partition_index))
                continue
            commits.append(
                (
                    topic.name,
                    partition.partition_index,
                    partition.committed_offset,
                    partition.committed_metadata,
                    partition.committed_leader_epoch,
                )
            )
    try:
        code = (
            await broker.coordinator.commit(
                body.group_id,
                body.generation_id_or_member_epoch,
                body.member_id,
                body.group_instance_id,
                commits,
            )
            if commits
            else ErrorCode.NONE
        )
    except GroupError as error:
        code = error.code
    return OffsetCommitResponse(
        throttle_time_ms=0,
        topics=[
            OffsetCommitResponseTopic(
                name=topic.name,
                partitions=[
                    OffsetCommitResponsePartition(
                        partition_index=partition.partition_index,
                        error_code=int(
                            ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                            if (topic.name, partition.partition_index) in unknown
                            else code
                        ),
                    )
                    for partition in topic.partitions
                ],
            )
            for topic in body.topics
        ],
    )
