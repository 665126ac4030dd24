"""SyncGroup (key 14). Behavior: the leader hands in the assignment; every member gets its
own share once the leader's has arrived.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from raftlog.groups.coordinator import GroupError
from raftlog.protocol.connection import RequestReceived
from raftlog.protocol.messages.generated.sync_group_request import SyncGroupRequest
from raftlog.protocol.messages.generated.sync_group_response import SyncGroupResponse

if TYPE_CHECKING:
    from raftlog.node.broker import Broker

API_KEY = 14
VERSIONS = (0, 5)


async def handle(broker: Broker, request: RequestReceived) -> SyncGroupResponse:
    body = request.body
    assert isinstance(body, SyncGroupRequest)
    try:
        protocol_type, protocol_name, assignment = await broker.coordinator.sync(
            body.group_id,
            body.generation_id,
            body.member_id,
            body.group_instance_id,
            {item.member_id: bytes(item.assignment) for item in body.assignments},
        )
    except GroupError as error:
        return SyncGroupResponse(throttle_time_ms=0, error_code=int(error.code), assignment=b"")
    return SyncGroupResponse(
        throttle_time_ms=0,
        error_code=0,
        protocol_type=protocol_type,
        protocol_name=protocol_name,
        assignment=assignment,
    )
