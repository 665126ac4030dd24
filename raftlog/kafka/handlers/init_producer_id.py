"""InitProducerId (key 22). Behavior: hands an idempotent producer a cluster-unique id with
epoch 0. Ids come from blocks allocated by controller commands, so they never repeat, even
across restarts (the unused rest of a block is skipped). Transactions are not supported:
a request with a transactional id is answered INVALID_REQUEST.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from raftlog.controller.metadata import MetadataError
from raftlog.protocol.connection import RequestReceived
from raftlog.protocol.errors import ErrorCode
from raftlog.protocol.messages.generated.init_producer_id_request import InitProducerIdRequest
from raftlog.protocol.messages.generated.init_producer_id_response import (
    InitProducerIdResponse,
)

if TYPE_CHECKING:
    from raftlog.node.broker import Broker

API_KEY = 22
VERSIONS = (0, 4)


async def handle(broker: Broker, request: RequestReceived) -> InitProducerIdResponse:
    body = request.body
    assert isinstance(body, InitProducerIdRequest)
    response = InitProducerIdResponse(throttle_time_ms=0, producer_id=-1, producer_epoch=-1)
    if body.transactional_id is not None:
        response.error_code = int(ErrorCode.INVALID_REQUEST)
        return response
    try:
        response.producer_id = await broker.next_producer_id()
    except MetadataError as error:
        response.error_code = error.error_code
        return response
    response.producer_epoch = 0
    response.error_code = 0
    return response
