"""Metadata (key 3). Behavior: nodes, the controller, and for each topic its partitions with
the leader of each partition's head segment (the only segment that takes appends).

A partition whose head group has no leader yet answers LEADER_NOT_AVAILABLE so clients
retry. An unknown topic is UNKNOWN_TOPIC_OR_PARTITION, or is created first when the node
allows auto-creation and the request asks for it.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from raftlog.controller.metadata import MetadataError, TopicInfo
from raftlog.protocol.connection import RequestReceived
from raftlog.protocol.errors import ErrorCode
from raftlog.protocol.messages.generated.metadata_request import MetadataRequest
from raftlog.protocol.messages.generated.metadata_response import (
    MetadataResponse,
    MetadataResponseBroker,
    MetadataResponsePartition,
    MetadataResponseTopic,
)

if TYPE_CHECKING:
    from raftlog.node.broker import Broker

API_KEY = 3
VERSIONS = (0, 12)
NO_LEADER = -1


async def handle(broker: Broker, request: RequestReceived) -> MetadataResponse:
    body = request.body
    assert isinstance(body, MetadataRequest)
    version = request.api_version
    if body.topics is None or (version == 0 and not body.topics):
        names = sorted(broker.controller.state.topics)
    else:
        names = [topic.name for topic in body.topics if topic.name is not None]
    allow_create = version < 4 or bool(body.allow_auto_topic_creation)
    await broker.refresh_leaders(
        (name, index)
        for name in names
        if (info := broker.controller.state.topics.get(name)) is not None
        for index in range(len(info.partitions))
    )
    topics = [await _topic(broker, name, allow_create) for name in names]
    return MetadataResponse(
        throttle_time_ms=0,
        brokers=[
            MetadataResponseBroker(node_id=node.node_id, host=node.kafka_host, port=node.kafka_port)
            for node in broker.nodes()
        ],
        cluster_id=broker.cluster_id,
        controller_id=broker.controller_for_clients(),
        topics=topics,
        cluster_authorized_operations=-2147483648,
    )


async def _topic(broker: Broker, name: str, allow_create: bool) -> MetadataResponseTopic:
    topic = broker.controller.state.topics.get(name)
    if topic is None and allow_create and broker.config.auto_create_topics:
        try:
            topic = await broker.create_topic(name, broker.config.default_partitions, None, {})
        except MetadataError as error:
            return _error_topic(name, error.error_code)
    if topic is None:
        return _error_topic(name, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    return _described(broker, topic)


def _error_topic(name: str, error_code: int) -> MetadataResponseTopic:
    return MetadataResponseTopic(
        error_code=int(error_code), name=name, topic_id=uuid.UUID(int=0), partitions=[]
    )


def _described(broker: Broker, topic: TopicInfo) -> MetadataResponseTopic:
    partitions = []
    for partition in topic.partitions:
        leader_id, leader_epoch = broker.partition_leader(topic.name, partition.index)
        replicas = list(partition.head.replicas)
        partitions.append(
            MetadataResponsePartition(
                error_code=0 if leader_id != NO_LEADER else int(ErrorCode.LEADER_NOT_AVAILABLE),
                partition_index=partition.index,
                leader_id=leader_id,
                leader_epoch=leader_epoch,
                replica_nodes=replicas,
                isr_nodes=broker.in_sync_replicas(topic.name, partition.index),
                offline_replicas=[],
            )
        )
    return MetadataResponseTopic(
        error_code=0,
        name=topic.name,
        topic_id=uuid.UUID(hex=topic.topic_id),
        is_internal=topic.name.startswith("__"),
        partitions=partitions,
        topic_authorized_operations=-2147483648,
    )
