"""DescribeGroups (key 15). Behavior: state, protocol and members with their assignments
for groups this node coordinates (NOT_COORDINATOR for the others).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from raftlog.groups.coordinator import GroupError
from raftlog.protocol.connection import RequestReceived
from raftlog.protocol.messages.generated.describe_groups_request import DescribeGroupsRequest
from raftlog.protocol.messages.generated.describe_groups_response import (
    DescribedGroup,
    DescribedGroupMember,
    DescribeGroupsResponse,
)

if TYPE_CHECKING:
    from raftlog.node.broker import Broker

API_KEY = 15
VERSIONS = (0, 5)


def _describe(broker: Broker, group_id: str) -> DescribedGroup:
    try:
        group = broker.coordinator.describe(group_id)
    except GroupError as error:
        return DescribedGroup(error_code=int(error.code), group_id=group_id, group_state="")
    if group is None:
        return DescribedGroup(group_id=group_id, group_state="Dead", protocol_type="")
    return DescribedGroup(
        group_id=group_id,
        group_state=group.state.value,
        protocol_type=group.protocol_type,
        protocol_data=group.protocol_name,
        members=[
            DescribedGroupMember(
                member_id=member.member_id,
                group_instance_id=member.group_instance_id,
                client_id=member.client_id,
                client_host="",
                member_metadata=dict(member.protocols).get(group.protocol_name, b""),
                member_assignment=member.assignment,
            )
            for member in group.members.values()
        ],
    )


async def handle(broker: Broker, request: RequestReceived) -> DescribeGroupsResponse:
    body = request.body
    assert isinstance(body, DescribeGroupsRequest)
    return DescribeGroupsResponse(
        throttle_time_ms=0, groups=[_describe(broker, group_id) for group_id in body.groups]
    )
