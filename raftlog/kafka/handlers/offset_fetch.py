"""OffsetFetch (key 9). Behavior: a group's committed offsets (-1 where none), for the
named partitions or all of them; v8 answers several groups at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from raftlog.groups.coordinator import GroupError
from raftlog.protocol.connection import RequestReceived
from raftlog.protocol.messages.generated.offset_fetch_request import OffsetFetchRequest
from raftlog.protocol.messages.generated.offset_fetch_response import (
    OffsetFetchResponse,
    OffsetFetchResponseGroup,
    OffsetFetchResponsePartition,
    OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
)

if TYPE_CHECKING:
    from raftlog.node.broker import Broker

API_KEY = 9
VERSIONS = (0, 8)
FIRST_MULTI_GROUP_VERSION = 8

Committed = dict[tuple[str, int], tuple[int, str | None, int]]


def _lookup(
    broker: Broker, group_id: str, topics: list[tuple[str, list[int]]] | None
) -> tuple[int, Committed]:
    wanted = None if topics is None else [(name, p) for name, parts in topics for p in parts]
    try:
        return 0, broker.coordinator.committed(group_id, wanted)
    except GroupError as error:
        return int(error.code), {}


def _by_topic(committed: Committed) -> dict[str, list[tuple[int, tuple[int, str | None, int]]]]:
    topics: dict[str, list[tuple[int, tuple[int, str | None, int]]]] = {}
    for (topic, partition), value in sorted(committed.items()):
        topics.setdefault(topic, []).append((partition, value))
    return topics


async def handle(broker: Broker, request: RequestReceived) -> OffsetFetchResponse:
    body = request.body
    assert isinstance(body, OffsetFetchRequest)
    if request.api_version >= FIRST_MULTI_GROUP_VERSION:
        groups = []
        for group in body.groups:
            topics = (
                None
                if group.topics is None
                else [(topic.name, list(topic.partition_indexes)) for topic in group.topics]
            )
            code, committed = _lookup(broker, group.group_id, topics)
            groups.append(
                OffsetFetchResponseGroup(
                    group_id=group.group_id,
                    error_code=code,
                    topics=[
                        OffsetFetchResponseTopics(
                            name=name,
                            partitions=[
                                OffsetFetchResponsePartitions(
                                    partition_index=partition,
                                    committed_offset=offset,
                                    committed_leader_epoch=epoch,
                                    metadata=metadata,
                                )
                                for partition, (offset, metadata, epoch) in entries
                            ],
                        )
                        for name, entries in _by_topic(committed).items()
                    ],
                )
            )
        return OffsetFetchResponse(throttle_time_ms=0, groups=groups)
    topics = (
        None
        if body.topics is None
        else [(topic.name, list(topic.partition_indexes)) for topic in body.topics]
    )
    code, committed = _lookup(broker, body.group_id, topics)
    return OffsetFetchResponse(
        throttle_time_ms=0,
        error_code=code,
        topics=[
            OffsetFetchResponseTopic(
                name=name,
                partitions=[
                    OffsetFetchResponsePartition(
                        partition_index=partition,
                        committed_offset=offset,
                        committed_leader_epoch=epoch,
                        metadata=metadata,
                        error_code=code,
                    )
                    for partition, (offset, metadata, epoch) in entries
                ],
            )
            for name, entries in _by_topic(committed).items()
        ],
    )
