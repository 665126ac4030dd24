"""ApiVersions (key 18). Behavior: lists exactly the APIs and versions this node serves.

An unsupported ApiVersions version is answered by the codec itself (v0 layout, error 35,
the served ranges), as Kafka does, so clients can retry with a version we know.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from raftlog.protocol.connection import RequestReceived
from raftlog.protocol.messages.generated.api_versions_response import (
    ApiVersion,
    ApiVersionsResponse,
)

if TYPE_CHECKING:
    from raftlog.node.broker import Broker

API_KEY = 18
VERSIONS = (0, 3)


async def handle(broker: Broker, request: RequestReceived) -> ApiVersionsResponse:
    return ApiVersionsResponse(
        error_code=0,
        api_keys=[
            ApiVersion(api_key=key, min_version=low, max_version=high)
            for key, (low, high) in sorted(broker.supported_versions.items())
        ],
        throttle_time_ms=0,
    )
