"""Produce (key 0). Behavior: each partition's batch is validated in C, checked for
idempotence, proposed to the partition's head segment group, and answered when acks says:
acks=all once committed by Raft (and so fsynced on a majority), acks=1 once durable on
this node, acks=0 never (Kafka sends no response at all).

Versions 0-2 predate record batches (magic v2) and are refused with UNSUPPORTED_VERSION per
partition; they are advertised because librdkafka probes with them. Exactly one batch per
partition, as Kafka requires for magic v2. Partitions are served concurrently.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from raftlog.protocol.connection import RequestReceived
from raftlog.protocol.errors import ErrorCode
from raftlog.protocol.messages.generated.produce_request import ProduceRequest
from raftlog.protocol.messages.generated.produce_response import (
    PartitionProduceResponse,
    ProduceResponse,
    TopicProduceResponse,
)

if TYPE_CHECKING:
    from raftlog.node.broker import Broker

API_KEY = 0
VERSIONS = (0, 10)
FIRST_RECORD_BATCH_VERSION = 3
VALID_ACKS = (-1, 0, 1)


async def handle(broker: Broker, request: RequestReceived) -> ProduceResponse | None:
    body = request.body
    assert isinstance(body, ProduceRequest)
    responses: list[TopicProduceResponse] = []
    timeout_s = max(body.timeout_ms, 0) / 1000
    error = _request_error(request, body)
    appends: list[tuple[str, int, object, PartitionProduceResponse]] = []
    for topic in body.topic_data:
        partition_responses: list[PartitionProduceResponse] = []
        responses.append(
            TopicProduceResponse(name=topic.name, partition_responses=partition_responses)
        )
        for data in topic.partition_data:
            response = PartitionProduceResponse(
                index=data.index, base_offset=-1, log_append_time_ms=-1, log_start_offset=-1
            )
            partition_responses.append(response)
            if error is not None:
                response.error_code = int(error)
            else:
                appends.append((topic.name, data.index, data.records, response))
    if len(appends) == 1:
        # The common request (one partition): awaited here, not in a task of its own,
        # which cost two more scheduler rounds on the path of every acknowledgement.
        name, index, records, response = appends[0]
        await _produce_one(broker, name, index, records, body.acks, timeout_s, response)
    elif appends:
        async with trio.open_nursery() as nursery:
            for name, index, records, response in appends:
                nursery.start_soon(
                    _produce_one, broker, name, index, records, body.acks, timeout_s, response
                )
    if body.acks == 0:
        return None
    return ProduceResponse(responses=responses, throttle_time_ms=0)


def _request_error(request: RequestReceived, body: ProduceRequest) -> ErrorCode | None:
    if request.api_version < FIRST_RECORD_BATCH_VERSION:
        return ErrorCode.UNSUPPORTED_VERSION
    if body.acks not in VALID_ACKS:
        return ErrorCode.INVALID_REQUIRED_ACKS
    if body.transactional_id is not None:
        return ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    return None


async def _produce_one(
    broker: Broker,
    topic: str,
    index: int,
    records: object,
    acks: int,
    timeout_s: float,
    response: PartitionProduceResponse,
) -> None:
    partition = broker.partition(topic, index)
    if partition is None:
        response.error_code = int(broker.unserved_error(topic, index))
        return
    outcome = await partition.produce(records, acks, timeout_s)
    response.error_code = outcome.error_code
    response.error_message = outcome.error_message
    response.base_offset = outcome.base_offset
    response.log_start_offset = partition.log_start_offset
