"""DescribeConfigs (key 32). Behavior: topic resources only. A topic answers its settings
set at creation or by IncrementalAlterConfigs (source DYNAMIC_TOPIC_CONFIG) and, for the
settings raftlog reads that the topic does not set, the node's defaults
(STATIC_BROKER_CONFIG, or DEFAULT_CONFIG for built-in ones). `segment.bytes` is a node
setting today, so it is answered read-only. Node (broker) resources are refused with
INVALID_REQUEST: `raftlog config show` prints a node's settings. No configuration keys
(null or, as Kafka also reads it, an empty list) means all. Errors are per resource.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from raftlog.controller.metadata import INTEGER_CONFIGS
from raftlog.protocol.connection import RequestReceived
from raftlog.protocol.errors import ErrorCode
from raftlog.protocol.messages.generated.describe_configs_request import DescribeConfigsRequest
from raftlog.protocol.messages.generated.describe_configs_response import (
    DescribeConfigsResourceResult,
    DescribeConfigsResponse,
    DescribeConfigsResult,
)

if TYPE_CHECKING:
    from raftlog.node.broker import Broker

API_KEY = 32
VERSIONS = (0, 4)
TOPIC_RESOURCE = 2
DYNAMIC_TOPIC_CONFIG = 1
STATIC_BROKER_CONFIG = 4
DEFAULT_CONFIG = 5
TYPE_STRING = 2
TYPE_LONG = 5


def node_defaults(broker: Broker) -> dict[str, tuple[str, int, bool]]:
    """Settings a topic falls back to: name -> (value, source, read only)."""
    config = broker.config
    return {
        "retention.ms": (str(config.retention_ms), STATIC_BROKER_CONFIG, False),
        "retention.bytes": (str(config.retention_bytes), STATIC_BROKER_CONFIG, False),
        "cleanup.policy": ("delete", DEFAULT_CONFIG, False),
        "segment.bytes": (str(config.segment_bytes), STATIC_BROKER_CONFIG, True),
    }


def _entry(name: str, value: str, source: int, read_only: bool) -> DescribeConfigsResourceResult:
    return DescribeConfigsResourceResult(
        name=name,
        value=value,
        read_only=read_only,
        is_default=source != DYNAMIC_TOPIC_CONFIG,
        config_source=source,
        is_sensitive=False,
        config_type=TYPE_LONG if name in INTEGER_CONFIGS else TYPE_STRING,
        documentation=None,
    )


async def handle(broker: Broker, request: RequestReceived) -> DescribeConfigsResponse:
    body = request.body
    assert isinstance(body, DescribeConfigsRequest)
    results = []
    for resource in body.resources:
        result = DescribeConfigsResult(
            resource_type=resource.resource_type,
            resource_name=resource.resource_name,
            error_message=None,
        )
        topic = broker.controller.state.topics.get(resource.resource_name)
        if resource.resource_type != TOPIC_RESOURCE:
            result.error_code = int(ErrorCode.INVALID_REQUEST)
            result.error_message = (
                "only topic configs are served; `raftlog config show` prints a node's"
            )
        elif topic is None:
            result.error_code = int(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
            result.error_message = f"topic {resource.resource_name!r} does not exist"
        else:
            entries = {
                name: (value, source, read_only)
                for name, (value, source, read_only) in node_defaults(broker).items()
            }
            entries.update(
                (name, (value, DYNAMIC_TOPIC_CONFIG, False)) for name, value in topic.configs
            )
            wanted = resource.configuration_keys
            result.configs = [
                _entry(name, *entries[name])
                for name in sorted(entries)
                if not wanted or name in wanted
            ]
        results.append(result)
    return DescribeConfigsResponse(throttle_time_ms=0, results=results)
