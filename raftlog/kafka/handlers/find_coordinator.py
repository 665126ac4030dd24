"""FindCoordinator (key 10). Behavior: a group's coordinator is the node leading the
`__consumer_offsets` partition the group id hashes to; v4 answers a batch of keys.
Transaction coordinators do not exist here (COORDINATOR_NOT_AVAILABLE).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from raftlog.groups.records import OFFSETS_TOPIC, coordinator_partition
from raftlog.protocol.connection import RequestReceived
from raftlog.protocol.errors import ErrorCode
from raftlog.protocol.messages.generated.find_coordinator_request import FindCoordinatorRequest
from raftlog.protocol.messages.generated.find_coordinator_response import (
    Coordinator,
    FindCoordinatorResponse,
)

if TYPE_CHECKING:
    from raftlog.node.broker import Broker

API_KEY = 10
VERSIONS = (0, 4)
GROUP_KEY_TYPE = 0


def _locate(broker: Broker, key: str, key_type: int) -> Coordinator:
    answer = Coordinator(key=key, node_id=-1, host="", port=-1)
    if key_type != GROUP_KEY_TYPE:
        answer.error_code = int(ErrorCode.COORDINATOR_NOT_AVAILABLE)
        answer.error_message = "only group coordinators exist (no transactions)"
        return answer
    leader_id, _epoch = broker.partition_leader(OFFSETS_TOPIC, coordinator_partition(key))
    node = broker.controller.state.nodes.get(leader_id)
    if node is None:
        answer.error_code = int(ErrorCode.COORDINATOR_NOT_AVAILABLE)
        answer.error_message = "the group's offsets partition has no leader yet"
        return answer
    answer.node_id, answer.host, answer.port = node.node_id, node.kafka_host, node.kafka_port
    return answer


async def handle(broker: Broker, request: RequestReceived) -> FindCoordinatorResponse:
    body = request.body
    assert isinstance(body, FindCoordinatorRequest)
    keys = body.coordinator_keys if request.api_version >= 4 else [body.key]
    await broker.refresh_leaders({(OFFSETS_TOPIC, coordinator_partition(key)) for key in keys})
    if request.api_version >= 4:
        coordinators = [_locate(broker, key, body.key_type) for key in body.coordinator_keys]
        return FindCoordinatorResponse(throttle_time_ms=0, coordinators=coordinators)
    found = _locate(broker, body.key, body.key_type)
    return FindCoordinatorResponse(
        throttle_time_ms=0,
        error_code=found.error_code,
        error_message=found.error_message,
        node_id=found.node_id,
        host=found.host,
        port=found.port,
    )
