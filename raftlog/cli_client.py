"""What the CLI's Kafka commands share: finding a node, metadata, leaders, error names.

Built on `KafkaAdminConnection` (our own codec, one request at a time), so the CLI needs
nothing beyond raftlog's runtime dependencies. `--bootstrap` may list several nodes; the
first that answers is used, and partition leaders are reached at the addresses the
metadata names.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import attrs

from raftlog.kafka.admin_client import KafkaAdminConnection, NodeUnreachable
from raftlog.protocol.errors import ErrorCode
from raftlog.protocol.messages._runtime import Message
from raftlog.protocol.messages.generated.metadata_request import (
    MetadataRequest,
    MetadataRequestTopic,
)

METADATA_VERSION = 7
NO_LEADER = -1


class CommandError(RuntimeError):
    """The command cannot do what was asked; the message says why (exit code 1)."""


def error_name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"error {code}"


def check(code: int, what: str, message: str | None = None) -> None:
    """Raise CommandError naming the Kafka error if `code` is not NONE."""
    if code:
        detail = f": {message}" if message else ""
        raise CommandError(f"{what}: {error_name(code)}{detail}")


@attrs.frozen
class PartitionMetadata:
    index: int
    leader: int
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    error_code: int


@attrs.frozen
class TopicMetadata:
    name: str
    internal: bool
    partitions: tuple[PartitionMetadata, ...]
    error_code: int


@attrs.frozen
class ClusterMetadata:
    brokers: dict[int, str]
    controller: int
    cluster_id: str | None
    topics: dict[str, TopicMetadata]

    def topic(self, name: str) -> TopicMetadata:
        topic = self.topics.get(name)
        if topic is None or topic.error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
            raise CommandError(f"topic {name!r} does not exist")
        check(topic.error_code, f"topic {name!r}")
        return topic

    def leader_address(self, topic: str, partition: int) -> str:
        found = [p for p in self.topic(topic).partitions if p.index == partition]
        if not found:
            raise CommandError(f"topic {topic!r} has no partition {partition}")
        leader = found[0].leader
        if leader == NO_LEADER or leader not in self.brokers:
            raise CommandError(f"{topic}/{partition} has no leader right now; retry shortly")
        return self.brokers[leader]


@attrs.define(eq=False)
class Client:
    """Connections to the nodes of one cluster, opened as needed and closed together."""

    bootstrap: str
    _connections: dict[str, KafkaAdminConnection] = attrs.field(factory=dict)

    def connect(self) -> KafkaAdminConnection:
        """A connection to the first bootstrap node that answers."""
        addresses = [item.strip() for item in self.bootstrap.split(",") if item.strip()]
        if not addresses:
            raise CommandError("--bootstrap names no node")
        failure: NodeUnreachable | None = None
        for address in addresses:
            try:
                return self.to(address)
            except NodeUnreachable as error:
                failure = error
        assert failure is not None
        raise failure

    def to(self, address: str) -> KafkaAdminConnection:
        connection = self._connections.get(address)
        if connection is None:
            connection = KafkaAdminConnection(address)
            self._connections[address] = connection
        return connection

    def request(self, body: Message, version: int, address: str | None = None) -> Message:
        connection = self.connect() if address is None else self.to(address)
        try:
            return connection.request(body, version)
        except (ConnectionError, TimeoutError) as error:
            # A connection that failed mid-request is not reused.
            self._connections.pop(connection.address, None)
            connection.close()
            if isinstance(error, NodeUnreachable):
                raise
            raise CommandError(f"{connection.address}: {error}") from error

    def metadata_with_leaders(self, topic: str, timeout_s: float = 15.0) -> ClusterMetadata:
        """Metadata of `topic` once every partition has a leader (a new topic, or one whose
        leader just failed, has none for a moment), or as it is when `timeout_s` runs out."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.metadata([topic])
            partitions = found.topic(topic).partitions
            led = all(p.leader != NO_LEADER and p.leader in found.brokers for p in partitions)
            if led or time.monotonic() >= deadline:
                return found
            time.sleep(0.2)

    def metadata(self, topics: list[str] | None) -> ClusterMetadata:
        wanted = None if topics is None else [MetadataRequestTopic(name=t) for t in topics]
        response = self.request(MetadataRequest(topics=wanted), METADATA_VERSION)
        return ClusterMetadata(
            brokers={b.node_id: f"{b.host}:{b.port}" for b in response.brokers},  # type: ignore[attr-defined]
            controller=response.controller_id,  # type: ignore[attr-defined]
            cluster_id=response.cluster_id,  # type: ignore[attr-defined]
            topics={
                topic.name: TopicMetadata(
                    topic.name,
                    topic.is_internal,
                    tuple(
                        PartitionMetadata(
                            p.partition_index,
                            p.leader_id,
                            p.leader_epoch,
                            tuple(p.replica_nodes),
                            tuple(p.isr_nodes),
                            p.error_code,
                        )
                        for p in sorted(topic.partitions, key=lambda p: p.partition_index)
                    ),
                    topic.error_code,
                )
                for topic in response.topics  # type: ignore[attr-defined]
            },
        )

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()


@contextlib.contextmanager
def client(bootstrap: str) -> Iterator[Client]:
    opened = Client(bootstrap)
    try:
        yield opened
    finally:
        opened.close()
