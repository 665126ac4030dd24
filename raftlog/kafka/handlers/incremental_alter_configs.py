"""IncrementalAlterConfigs (key 44). Behavior: topic resources only; SET and DELETE
operations (APPEND and SUBTRACT, which apply to list settings, are refused with
INVALID_REQUEST). Each resource's changes are one controller command, applied all or
nothing on every node; settings the node reads per topic (`retention.ms`,
`retention.bytes`) take effect at the next retention check. `validate_only` checks
without changing anything. Errors are per resource.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from raftlog.controller.metadata import MetadataError
from raftlog.protocol.connection import RequestReceived
from raftlog.protocol.errors import ErrorCode
from raftlog.protocol.messages.generated.incremental_alter_configs_request import (
    IncrementalAlterConfigsRequest,
)
from raftlog.protocol.messages.generated.incremental_alter_configs_response import (
    AlterConfigsResourceResponse,
    IncrementalAlterConfigsResponse,
)

if TYPE_CHECKING:
    from raftlog.node.broker import Broker

API_KEY = 44
VERSIONS = (0, 1)
TOPIC_RESOURCE = 2
SET = 0
DELETE = 1
OPERATION_NAMES = {0: "SET", 1: "DELETE", 2: "APPEND", 3: "SUBTRACT"}


async def handle(broker: Broker, request: RequestReceived) -> IncrementalAlterConfigsResponse:
    body = request.body
    assert isinstance(body, IncrementalAlterConfigsRequest)
    responses = []
    for resource in body.resources:
        response = AlterConfigsResourceResponse(
            resource_type=resource.resource_type,
            resource_name=resource.resource_name,
            error_message=None,
        )
        try:
            if resource.resource_type != TOPIC_RESOURCE:
                raise MetadataError(
                    int(ErrorCode.INVALID_REQUEST), "only topic configs can be altered"
                )
            changes: dict[str, str] = {}
            deletions: list[str] = []
            for config in resource.configs:
                if config.config_operation == SET:
                    if config.value is None:
                        raise MetadataError(
                            int(ErrorCode.INVALID_CONFIG), f"{config.name}: SET needs a value"
                        )
                    changes[config.name] = config.value
                elif config.config_operation == DELETE:
                    deletions.append(config.name)
                else:
                    operation = OPERATION_NAMES.get(config.config_operation, "an unknown")
                    raise MetadataError(
                        int(ErrorCode.INVALID_REQUEST),
                        f"{config.name}: {operation} operation is not supported",
                    )
            await broker.alter_topic_configs(
                resource.resource_name, changes, deletions, validate_only=body.validate_only
            )
        except MetadataError as error:
            response.error_code = error.error_code
            response.error_message = str(error)
        responses.append(response)
    return IncrementalAlterConfigsResponse(throttle_time_ms=0, responses=responses)
