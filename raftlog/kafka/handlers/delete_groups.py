"""DeleteGroups (key 42). Behavior: deletes empty groups (NON_EMPTY_GROUP otherwise): their
committed offsets are tombstoned in `__consumer_offsets`, committed by Raft, then the
group is forgotten.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from raftlog.groups.coordinator import GroupError
from raftlog.protocol.connection import RequestReceived
from raftlog.protocol.messages.generated.delete_groups_request import DeleteGroupsRequest
from raftlog.protocol.messages.generated.delete_groups_response import (
    DeletableGroupResult,
    DeleteGroupsResponse,
)

if TYPE_CHECKING:
    from raftlog.node.broker import Broker

API_KEY = 42
VERSIONS = (0, 2)


async def handle(broker: Broker, request: RequestReceived) -> DeleteGroupsResponse:
    body = request.body
    assert isinstance(body, DeleteGroupsRequest)
    results = []
    for group_id in body.groups_names:
        result = DeletableGroupResult(group_id=group_id, error_code=0)
        try:
            await broker.coordinator.delete_group(group_id)
        except GroupError as error:
            result.error_code = int(error.code)
        results.append(result)
    return DeleteGroupsResponse(throttle_time_ms=0, results=results)
