"""JoinGroup (key 11). Behavior: the classic protocol's join, which waits for the round to
complete; v4+ first answers MEMBER_ID_REQUIRED with the id to rejoin with. The leader gets
every member's metadata for the chosen protocol.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from raftlog.groups.coordinator import GroupError, MemberIdRequired
from raftlog.protocol.connection import RequestReceived
from raftlog.protocol.messages.generated.join_group_request import JoinGroupRequest
from raftlog.protocol.messages.generated.join_group_response import (
    JoinGroupResponse,
    JoinGroupResponseMember,
)

if TYPE_CHECKING:
    from raftlog.node.broker import Broker

API_KEY = 11
VERSIONS = (0, 9)
FIRST_MEMBER_ID_REQUIRED_VERSION = 4


async def handle(broker: Broker, request: RequestReceived) -> JoinGroupResponse:
    body = request.body
    assert isinstance(body, JoinGroupRequest)
    response = JoinGroupResponse(
        throttle_time_ms=0, generation_id=-1, protocol_name="", leader="", member_id=""
    )
    rebalance_timeout_ms = body.rebalance_timeout_ms if request.api_version >= 1 else -1
    try:
        result = await broker.coordinator.join(
            body.group_id,
            body.member_id,
            body.group_instance_id,
            request.client_id or "",
            body.protocol_type,
            [(protocol.name, bytes(protocol.metadata)) for protocol in body.protocols],
            body.session_timeout_ms,
            rebalance_timeout_ms if rebalance_timeout_ms > 0 else body.session_timeout_ms,
            request.api_version >= FIRST_MEMBER_ID_REQUIRED_VERSION,
        )
    except MemberIdRequired as required:
        response.error_code = int(required.code)
        response.member_id = required.member_id
        return response
    except GroupError as error:
        response.error_code = int(error.code)
        response.member_id = body.member_id
        return response
    response.error_code = 0
    response.generation_id = result.generation
    response.protocol_type = result.protocol_type
    response.protocol_name = result.protocol_name
    response.leader = result.leader_id
    response.member_id = result.member_id
    response.members = [
        JoinGroupResponseMember(member_id=member, group_instance_id=instance, metadata=metadata)
        for member, instance, metadata in result.members
    ]
    return response
