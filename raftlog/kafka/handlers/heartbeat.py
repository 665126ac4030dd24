"""Heartbeat (key 12). Behavior: keeps a member's session alive; answers
REBALANCE_IN_PROGRESS when the member must rejoin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from raftlog.groups.coordinator import GroupError
from raftlog.protocol.connection import RequestReceived
from raftlog.protocol.messages.generated.heartbeat_request import HeartbeatRequest
from raftlog.protocol.messages.generated.heartbeat_response import HeartbeatResponse

if TYPE_CHECKING:
    from raftlog.node.broker import Broker

API_KEY = 12
VERSIONS = (0, 4)


async def handle(broker: Broker, request: RequestReceived) -> HeartbeatResponse:
    body = request.body
    assert isinstance(body, HeartbeatRequest)
    try:
        broker.coordinator.heartbeat(
            body.group_id, body.generation_id, body.member_id, body.group_instance_id
        )
    except GroupError as error:
        return HeartbeatResponse(throttle_time_ms=0, error_code=int(error.code))
    return HeartbeatResponse(throttle_time_ms=0, error_code=0)
