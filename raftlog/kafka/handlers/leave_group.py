"""LeaveGroup (key 13). Behavior: removes members (one, or a batch in v3+) and starts a
rebalance for those who stay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from raftlog.groups.coordinator import GroupError
from raftlog.protocol.connection import RequestReceived
from raftlog.protocol.messages.generated.leave_group_request import LeaveGroupRequest
from raftlog.protocol.messages.generated.leave_group_response import (
    LeaveGroupResponse,
    MemberResponse,
)

if TYPE_CHECKING:
    from raftlog.node.broker import Broker

API_KEY = 13
VERSIONS = (0, 5)
FIRST_BATCH_VERSION = 3


async def handle(broker: Broker, request: RequestReceived) -> LeaveGroupResponse:
    body = request.body
    assert isinstance(body, LeaveGroupRequest)
    if request.api_version >= FIRST_BATCH_VERSION:
        leaving = [(member.member_id, member.group_instance_id) for member in body.members]
    else:
        leaving = [(body.member_id, None)]
    try:
        results = broker.coordinator.leave(body.group_id, leaving)
    except GroupError as error:
        return LeaveGroupResponse(throttle_time_ms=0, error_code=int(error.code))
    if request.api_version < FIRST_BATCH_VERSION:
        return LeaveGroupResponse(throttle_time_ms=0, error_code=int(results[0][2]))
    return LeaveGroupResponse(
        throttle_time_ms=0,
        error_code=0,
        members=[
            MemberResponse(member_id=member, group_instance_id=instance, error_code=int(code))
            for member, instance, code in results
        ],
    )
