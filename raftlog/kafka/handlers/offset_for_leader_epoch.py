"""OffsetForLeaderEpoch (key 23). Behavior: for a leader epoch (a Raft term here), the end
offset of that epoch in this log: the start offset of the first batch of a later epoch, or
the log end if the epoch is the latest. Consumers use it to detect log truncation.

Every answer is logged with the chain it came from: an answer below a consumer's position
makes librdkafka seek back and read records twice, and such answers have come from chains
in states only a chaos run produces (a restart of every node, a segment sealed meanwhile).
Consumers ask only after a leader change or an error, so the lines are few.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from raftlog import logs
from raftlog.protocol.connection import RequestReceived
from raftlog.protocol.errors import ErrorCode
from raftlog.protocol.messages.generated.offset_for_leader_epoch_request import (
    OffsetForLeaderEpochRequest,
)
from raftlog.protocol.messages.generated.offset_for_leader_epoch_response import (
    EpochEndOffset,
    OffsetForLeaderEpochResponse,
    OffsetForLeaderTopicResult,
)

if TYPE_CHECKING:
    from raftlog.node.broker import Broker

API_KEY = 23
VERSIONS = (0, 4)


async def handle(broker: Broker, request: RequestReceived) -> OffsetForLeaderEpochResponse:
    body = request.body
    assert isinstance(body, OffsetForLeaderEpochRequest)
    topics = []
    for topic in body.topics:
        partitions = []
        for wanted in topic.partitions:
            result = EpochEndOffset(partition=wanted.partition, leader_epoch=-1, end_offset=-1)
            partitions.append(result)
            partition = broker.partition(topic.topic, wanted.partition)
            if partition is None:
                result.error_code = int(broker.unserved_error(topic.topic, wanted.partition))
                continue
            epoch_error = partition.check_leader_epoch(wanted.current_leader_epoch)
            if epoch_error is not None:
                result.error_code = int(epoch_error)
                continue
            if partition.end_unknown():
                # Consumers validate again after a moment, as they do after any error.
                result.error_code = int(ErrorCode.LEADER_NOT_AVAILABLE)
                continue
            result.leader_epoch, result.end_offset = partition.end_offset_for_epoch(
                wanted.leader_epoch
            )
            logs.event(
                "epoch_end_answered",
                logging.INFO,
                topic=topic.topic,
                partition=wanted.partition,
                epoch=wanted.leader_epoch,
                answer_epoch=result.leader_epoch,
                end_offset=result.end_offset,
                head_group=broker.head_group(topic.topic, wanted.partition),
                chain=partition.describe(),
            )
        topics.append(OffsetForLeaderTopicResult(topic=topic.topic, partitions=partitions))
    return OffsetForLeaderEpochResponse(throttle_time_ms=0, topics=topics)
