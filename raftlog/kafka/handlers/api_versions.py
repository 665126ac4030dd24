"""ApiVersions (key 18). Behavior: lists exactly the APIs and versions this node serves.

An unsupported ApiVersions version is answered by the codec itself (v0 layout, error 35,
the served ranges), as Kafka does, so clients can retry with a version we know. v4 has
v3's layout (it only lets SupportedFeatures carry a minimum version of 0, and we send no
features); serving it spares kafka-python 3, which opens with v4, that extra round trip
and the node a warning line per connection.
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
VERSIONS = (0, 4)


async def handle(broker: Broker, request: RequestReceived) -> ApiVersionsResponse:
    return ApiVersionsResponse(
        error_code=0,
        api_keys=[
            ApiVersion(api_key=key, min_version=low, max_version=high)
            for key, (low, high) in sorted(broker.supported_versions.items())
        ],
        throttle_time_ms=0,
    )
