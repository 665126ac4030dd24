"""ListGroups (key 16). Behavior: the groups this node coordinates, with their state."""

from __future__ import annotations

from typing import TYPE_CHECKING

from raftlog.protocol.connection import RequestReceived
from raftlog.protocol.messages.generated.list_groups_request import ListGroupsRequest
from raftlog.protocol.messages.generated.list_groups_response import (
    ListedGroup,
    ListGroupsResponse,
)

if TYPE_CHECKING:
    from raftlog.node.broker import Broker

API_KEY = 16
VERSIONS = (0, 4)


async def handle(broker: Broker, request: RequestReceived) -> ListGroupsResponse:
    body = request.body
    assert isinstance(body, ListGroupsRequest)
    wanted_states = {state.lower() for state in body.states_filter or []}
    groups = [
        ListedGroup(
            group_id=group.group_id,
            protocol_type=group.protocol_type,
            group_state=group.state.value,
        )
        for group in broker.coordinator.listed()
        if not wanted_states or group.state.value.lower() in wanted_states
    ]
    return ListGroupsResponse(throttle_time_ms=0, error_code=0, groups=groups)
