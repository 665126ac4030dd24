"""Topic auto-creation follows both the node's flag and the request's.

Kafka creates a missing topic on Metadata only when the broker allows it and the request
asks for it (`allow_auto_topic_creation`, v4+; older versions always ask). Consumers ask
not to (librdkafka's `allow.auto.create.topics` defaults to false for consumers), so a
consumer assigned to a misspelt topic must not conjure it up; a producer's first send
creates it when the node allows.
"""

from __future__ import annotations

import pytest

from raftlog.protocol.errors import ErrorCode
from raftlog.protocol.messages.generated.metadata_request import (
    MetadataRequest,
    MetadataRequestTopic,
)
from raftlog.protocol.messages.generated.metadata_response import MetadataResponse

from .conftest import NodeFactory, NodeProcess
from .helpers import CLIENT_TIMEOUT_S, call

pytestmark = pytest.mark.clients

METADATA = 3


def _topic_error(node: NodeProcess, topic: str, version: int, allow: bool) -> int:
    request = MetadataRequest(topics=[MetadataRequestTopic(name=topic)])
    if version >= 4:
        request.allow_auto_topic_creation = allow
    response = call(("127.0.0.1", node.port), METADATA, version, request)
    assert isinstance(response, MetadataResponse)
    (described,) = response.topics
    return described.error_code


def _exists(node: NodeProcess, topic: str) -> bool:
    return _topic_error(node, topic, 12, allow=False) == 0


def test_request_flag_decides_on_an_auto_creating_node(node: NodeProcess) -> None:
    unknown = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert _topic_error(node, "not-asked", 12, allow=False) == unknown
    assert not _exists(node, "not-asked")
    assert _topic_error(node, "asked", 12, allow=True) == 0
    assert _exists(node, "asked")
    assert _topic_error(node, "asked-v1", 1, allow=True) == 0  # v0-3 always ask
    assert _exists(node, "asked-v1")


def test_node_flag_off_creates_nothing(node_factory: NodeFactory) -> None:
    node = node_factory(auto_create_topics=False)
    unknown = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert _topic_error(node, "asked", 12, allow=True) == unknown
    assert _topic_error(node, "asked-v1", 1, allow=True) == unknown
    assert not _exists(node, "asked") and not _exists(node, "asked-v1")


def test_consumer_does_not_create_but_producer_does(node: NodeProcess) -> None:
    from confluent_kafka import Consumer, KafkaError, Producer

    consumer = Consumer(
        {"bootstrap.servers": node.bootstrap, "group.id": "meta", "enable.auto.commit": False}
    )
    try:
        described = consumer.list_topics("misspelt", timeout=CLIENT_TIMEOUT_S).topics
        assert described["misspelt"].error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    finally:
        consumer.close()
    assert not _exists(node, "misspelt")

    producer = Producer({"bootstrap.servers": node.bootstrap})
    producer.produce("made-by-producing", value=b"first")
    assert producer.flush(CLIENT_TIMEOUT_S) == 0
    assert _exists(node, "made-by-producing")
