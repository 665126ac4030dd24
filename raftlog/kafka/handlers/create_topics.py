"""CreateTopics (key 19). Behavior: each topic is created by one controller command, with
replicas placed by the node; answered once the command is committed. `validate_only`
checks the request without creating anything. Errors are per topic.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from raftlog.controller.metadata import MetadataError, validate_topic_name
from raftlog.protocol.connection import RequestReceived
from raftlog.protocol.errors import ErrorCode
from raftlog.protocol.messages.generated.create_topics_request import CreateTopicsRequest
from raftlog.protocol.messages.generated.create_topics_response import (
    CreatableTopicResult,
    CreateTopicsResponse,
)

if TYPE_CHECKING:
    from raftlog.node.broker import Broker

API_KEY = 19
VERSIONS = (2, 7)
DEFAULT = -1


async def handle(broker: Broker, request: RequestReceived) -> CreateTopicsResponse:
    body = request.body
    assert isinstance(body, CreateTopicsRequest)
    results = []
    for topic in body.topics:
        result = CreatableTopicResult(name=topic.name, topic_id=uuid.UUID(int=0))
        partitions = (
            broker.config.default_partitions
            if topic.num_partitions == DEFAULT
            else (topic.num_partitions)
        )
        replication = None if topic.replication_factor == DEFAULT else topic.replication_factor
        configs = {config.name: config.value or "" for config in topic.configs}
        try:
            if topic.assignments:
                raise MetadataError(
                    int(ErrorCode.INVALID_REQUEST), "manual replica assignment is not supported"
                )
            validate_topic_name(topic.name)
            if body.validate_only:
                broker.check_topic_creation(topic.name, partitions, replication, configs)
            else:
                info = await broker.create_topic(topic.name, partitions, replication, configs)
                result.topic_id = uuid.UUID(hex=info.topic_id)
                result.num_partitions = len(info.partitions)
                result.replication_factor = info.replication_factor
        except MetadataError as error:
            result.error_code = error.error_code
            result.error_message = str(error)
        results.append(result)
    return CreateTopicsResponse(throttle_time_ms=0, topics=results)
