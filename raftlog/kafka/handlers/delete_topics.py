"""DeleteTopics (key 20). Behavior: one controller command per topic; the topic's segment
groups on every node are closed and their files removed once the command is applied.
Topics may be named (v0-5) or given as names or ids (v6).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from raftlog.controller.metadata import MetadataError
from raftlog.protocol.connection import RequestReceived
from raftlog.protocol.errors import ErrorCode
from raftlog.protocol.messages.generated.delete_topics_request import DeleteTopicsRequest
from raftlog.protocol.messages.generated.delete_topics_response import (
    DeletableTopicResult,
    DeleteTopicsResponse,
)

if TYPE_CHECKING:
    from raftlog.node.broker import Broker

API_KEY = 20
VERSIONS = (0, 6)


async def handle(broker: Broker, request: RequestReceived) -> DeleteTopicsResponse:
    body = request.body
    assert isinstance(body, DeleteTopicsRequest)
    wanted: list[tuple[str | None, uuid.UUID]] = [
        (name, uuid.UUID(int=0)) for name in (body.topic_names or [])
    ]
    wanted += [(state.name, state.topic_id) for state in (body.topics or [])]
    results = []
    for name, topic_id in wanted:
        if name is None:
            name = broker.topic_name_by_id(topic_id)
        result = DeletableTopicResult(name=name, topic_id=topic_id)
        try:
            if name is None:
                raise MetadataError(int(ErrorCode.UNKNOWN_TOPIC_ID), f"no topic has id {topic_id}")
            await broker.controller.execute(
                {"type": "delete_topic", "name": name}, broker.request_timeout_s
            )
        except MetadataError as error:
            result.error_code = error.error_code
            result.error_message = str(error)
        results.append(result)
    return DeleteTopicsResponse(throttle_time_ms=0, responses=results)
