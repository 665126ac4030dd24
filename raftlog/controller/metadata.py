"""The cluster's metadata as a deterministic state machine: the controller group applies it.

Every replica of the controller's Raft group applies the same commands in the same order and
so holds the same nodes, topics, partitions and segment chains. Anything that must be the
same everywhere (group ids, topic ids) is decided here or carried in the command, never
drawn from a local clock or random source while applying.

Commands travel as JSON (small, rare, and readable in a log dump).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import attrs

from raftlog.config import NODE_ID_MAX
from raftlog.invariant import invariant

TOPIC_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
PARTITIONS_PER_TOPIC_MAX = 10_000
TOPICS_MAX = 100_000
CONTROLLER_GROUP_ID = 0


class MetadataError(Exception):
    """A command cannot apply; carries the Kafka error code to answer with."""

    def __init__(self, error_code: int, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code


# Kafka error codes the metadata commands answer with.
UNKNOWN_TOPIC_OR_PARTITION = 3
TOPIC_ALREADY_EXISTS = 36
INVALID_PARTITIONS = 37
INVALID_REPLICATION_FACTOR = 38
INVALID_TOPIC_EXCEPTION = 17
INVALID_CONFIG = 40
INVALID_REQUEST = 42

NODES_MAX = 1024
"""The most members a cluster registers (every node pings, dials and lists each one)."""
HOST_CHARS_MAX = 253


@attrs.frozen
class NodeInfo:
    """A member of the cluster and where to reach it."""

    node_id: int
    kafka_host: str
    kafka_port: int
    internal_host: str
    internal_port: int


@attrs.frozen
class SegmentInfo:
    """One segment of a partition: its own Raft group over a contiguous range of offsets."""

    group_id: int
    base_offset: int
    replicas: tuple[int, ...]
    last_offset: int | None = None
    """Set once the segment is sealed: the last offset it holds (base_offset - 1 if empty)."""
    bootstrap: tuple[int, ...] | None = None
    """The replicas the group was created with, once they differ from `replicas`.

    Every replica opens the group's Raft log with the same bootstrap membership (the
    configuration before its first entry); a replica added later replays the membership
    changes from the log on top of it, so it must know the original set.
    """

    @property
    def sealed(self) -> bool:
        return self.last_offset is not None

    @property
    def initial_replicas(self) -> tuple[int, ...]:
        return self.bootstrap if self.bootstrap is not None else self.replicas


@attrs.frozen
class PartitionInfo:
    """A partition is a chain of segments; only the last (the head) takes appends."""

    topic: str
    index: int
    segments: tuple[SegmentInfo, ...]
    prepared: SegmentInfo | None = None
    """The head's successor, created before the head fills (`prepare_successor`): its
    replicas are placed and its group elected, idle, so the seal links a running group."""
    prepared_term: int = 0
    """The head's term when `prepared` was created; the successor must continue past it."""

    @property
    def head(self) -> SegmentInfo:
        return self.segments[-1]


@attrs.frozen
class TopicInfo:
    name: str
    topic_id: str
    """A UUID (hex, 32 digits) chosen by whoever proposed the creation."""
    partitions: tuple[PartitionInfo, ...]
    replication_factor: int
    configs: tuple[tuple[str, str], ...] = ()

    def config(self, name: str, default: str | None = None) -> str | None:
        return dict(self.configs).get(name, default)


@attrs.define(eq=False)
class MetadataState:
    """What the controller knows. Mutated only by `apply`."""

    nodes: dict[int, NodeInfo] = attrs.field(factory=dict)
    topics: dict[str, TopicInfo] = attrs.field(factory=dict)
    next_group_id: int = CONTROLLER_GROUP_ID + 1
    next_producer_id: int = 0
    cluster_id: str | None = None
    """Chosen once, by the first node that finds none; every node then answers with it."""
    decommissioned: set[int] = attrs.field(factory=set)
    """Registered nodes being drained (`decommission_node`): they get no new replicas, the
    controller leader moves theirs away, then `forget_node` drops them from `nodes`."""
    applied_commands: int = 0
    _by_group: dict[int, tuple[PartitionInfo, SegmentInfo]] | None = attrs.field(
        default=None, init=False
    )
    """Index of every segment by group id, rebuilt on the first lookup after a change:
    nodes look groups up many times a second and commands are rare."""

    def apply(self, command: dict[str, Any]) -> Any:
        """Apply one command; raise MetadataError (state unchanged) if it cannot apply."""
        kind = command.get("type")
        handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            raise MetadataError(INVALID_CONFIG, f"unknown metadata command {kind!r}")
        try:
            result = handler(self, command)
        finally:
            self._by_group = None  # handlers look segments up before they change them
        self.applied_commands += 1
        return result

    def replica_count(self, node_id: int) -> int:
        """Segment replicas (sealed, head and made-ahead) that `node_id` holds."""
        return sum(
            segment.replicas.count(node_id)
            for topic in self.topics.values()
            for partition in topic.partitions
            for segment in (
                partition.segments
                if partition.prepared is None
                else (*partition.segments, partition.prepared)
            )
        )

    def active_nodes(self) -> list[int]:
        """Registered nodes that may receive replicas: all but the decommissioned."""
        return sorted(node for node in self.nodes if node not in self.decommissioned)

    def segment_by_group(self, group_id: int) -> tuple[PartitionInfo, SegmentInfo] | None:
        if self._by_group is None:
            self._by_group = {
                segment.group_id: (partition, segment)
                for topic in self.topics.values()
                for partition in topic.partitions
                for segment in (
                    partition.segments
                    if partition.prepared is None
                    else (*partition.segments, partition.prepared)
                )
            }
        return self._by_group.get(group_id)

    def groups_on(self, node_id: int) -> Iterable[tuple[PartitionInfo, SegmentInfo]]:
        for topic in self.topics.values():
            for partition in topic.partitions:
                for segment in partition.segments:
                    if node_id in segment.replicas:
                        yield partition, segment

    def _allocate_group(self) -> int:
        group_id = self.next_group_id
        self.next_group_id += 1
        return group_id

    def _replace_partition(self, partition: PartitionInfo) -> None:
        self._by_group = None
        topic = self.topics[partition.topic]
        partitions = list(topic.partitions)
        partitions[partition.index] = partition
        self.topics[topic.name] = attrs.evolve(topic, partitions=tuple(partitions))


def _register_node(state: MetadataState, command: dict[str, Any]) -> NodeInfo:
    if int(command["node_id"]) not in state.nodes and len(state.nodes) >= NODES_MAX:
        raise MetadataError(INVALID_REQUEST, f"the cluster already has {NODES_MAX} nodes")
    node = NodeInfo(
        node_id=int(command["node_id"]),
        kafka_host=str(command["kafka_host"]),
        kafka_port=int(command["kafka_port"]),
        internal_host=str(command["internal_host"]),
        internal_port=int(command["internal_port"]),
    )
    state.nodes[node.node_id] = node
    return node


def _decommission_node(state: MetadataState, command: dict[str, Any]) -> int:
    """Start draining a registered node; the same command again changes nothing.

    Refused when it would leave no node to move replicas to: the other active nodes must
    be at least as many as the largest replication factor of any topic.
    """
    node_id = command.get("node_id")
    if not isinstance(node_id, int) or isinstance(node_id, bool) or node_id not in state.nodes:
        raise MetadataError(INVALID_REQUEST, f"no registered node {node_id!r}")
    if node_id in state.decommissioned:
        return node_id
    remaining = len(state.active_nodes()) - 1
    needed = max((topic.replication_factor for topic in state.topics.values()), default=1)
    if remaining < needed:
        raise MetadataError(
            INVALID_REPLICATION_FACTOR,
            f"decommissioning node {node_id} would leave {remaining} active node(s); "
            f"a topic needs {needed} replicas",
        )
    state.decommissioned.add(node_id)
    return node_id


def _forget_node(state: MetadataState, command: dict[str, Any]) -> int:
    """Drop a decommissioned node that holds no replica any more from the registry."""
    node_id = command.get("node_id")
    if node_id not in state.decommissioned:
        raise MetadataError(INVALID_REQUEST, f"node {node_id!r} is not being decommissioned")
    assert isinstance(node_id, int)
    held = state.replica_count(node_id)
    if held:
        raise MetadataError(INVALID_REQUEST, f"node {node_id} still holds {held} replica(s)")
    state.decommissioned.discard(node_id)
    del state.nodes[node_id]
    return node_id


def _join_node(state: MetadataState, command: dict[str, Any]) -> NodeInfo:
    """Register a node that joined through a seed, unless that would confuse two nodes.

    Refused: an id outside 1..NODE_ID_MAX, a bad address, an id already registered at
    another internal address (two machines configured with the same id) unless the node
    proves it restarts on its own data dir by naming this cluster's id (`rejoin`), an
    internal address already registered to another id, and a cluster full at NODES_MAX.
    The same node joining again at the same address is accepted (a restart).
    """
    node_id = command.get("node_id")
    if not isinstance(node_id, int) or isinstance(node_id, bool) or not 0 < node_id <= NODE_ID_MAX:
        raise MetadataError(INVALID_REQUEST, f"node id must be 1-{NODE_ID_MAX}, got {node_id!r}")
    addresses = {}
    for prefix in ("internal", "kafka"):
        host, port = command.get(f"{prefix}_host"), command.get(f"{prefix}_port")
        if not isinstance(host, str) or not 0 < len(host) <= HOST_CHARS_MAX:
            raise MetadataError(INVALID_REQUEST, f"node {node_id}: bad {prefix} host {host!r}")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port <= 65535:
            raise MetadataError(INVALID_REQUEST, f"node {node_id}: bad {prefix} port {port!r}")
        addresses[prefix] = (host, port)
    internal = addresses["internal"]
    known = state.nodes.get(node_id)
    if known is not None and (known.internal_host, known.internal_port) != internal:
        rejoin = command.get("rejoin") is True and command.get("cluster_id") == state.cluster_id
        if not rejoin:
            raise MetadataError(
                INVALID_REQUEST,
                f"node id {node_id} is already registered with internal address "
                f"{known.internal_host}:{known.internal_port}, not {internal[0]}:{internal[1]}",
            )
    for other in state.nodes.values():
        if other.node_id != node_id and (other.internal_host, other.internal_port) == internal:
            raise MetadataError(
                INVALID_REQUEST,
                f"internal address {internal[0]}:{internal[1]} is node {other.node_id}'s",
            )
    if known is None and len(state.nodes) >= NODES_MAX:
        raise MetadataError(INVALID_REQUEST, f"the cluster already has {NODES_MAX} nodes")
    node = NodeInfo(node_id, *addresses["kafka"], *internal)
    state.nodes[node_id] = node
    return node


def validate_topic_name(name: object) -> str:
    if not isinstance(name, str) or not TOPIC_NAME_PATTERN.match(name) or name in (".", ".."):
        raise MetadataError(INVALID_TOPIC_EXCEPTION, f"invalid topic name {name!r}")
    return name


def _create_topic(state: MetadataState, command: dict[str, Any]) -> TopicInfo:
    name = validate_topic_name(command.get("name"))
    if name in state.topics:
        raise MetadataError(TOPIC_ALREADY_EXISTS, f"topic {name!r} already exists")
    if len(state.topics) >= TOPICS_MAX:
        raise MetadataError(INVALID_CONFIG, f"the cluster already has {TOPICS_MAX} topics")
    partition_count = int(command["partitions"])
    if not 1 <= partition_count <= PARTITIONS_PER_TOPIC_MAX:
        raise MetadataError(
            INVALID_PARTITIONS,
            f"partitions must be 1-{PARTITIONS_PER_TOPIC_MAX}, got {partition_count}",
        )
    assignments = [tuple(int(node) for node in replicas) for replicas in command["assignments"]]
    replication_factor = int(command["replication_factor"])
    invariant(len(assignments) == partition_count, "one replica set per partition")
    for replicas in assignments:
        if len(replicas) != replication_factor or len(set(replicas)) != len(replicas):
            raise MetadataError(
                INVALID_REPLICATION_FACTOR,
                f"replica set {replicas} does not match replication factor {replication_factor}",
            )
        unknown = [node for node in replicas if node not in state.nodes]
        if unknown:
            raise MetadataError(INVALID_REPLICATION_FACTOR, f"unknown nodes {unknown}")
    partitions = tuple(
        PartitionInfo(name, index, (SegmentInfo(state._allocate_group(), 0, replicas),))
        for index, replicas in enumerate(assignments)
    )
    configs = tuple(sorted((str(k), str(v)) for k, v in dict(command.get("configs", {})).items()))
    topic = TopicInfo(name, str(command["topic_id"]), partitions, replication_factor, configs)
    state.topics[name] = topic
    return topic


def _delete_topic(state: MetadataState, command: dict[str, Any]) -> TopicInfo:
    name = command.get("name")
    topic = state.topics.pop(name, None) if isinstance(name, str) else None
    if topic is None:
        raise MetadataError(UNKNOWN_TOPIC_OR_PARTITION, f"topic {name!r} does not exist")
    return topic


def _seal_and_link(state: MetadataState, command: dict[str, Any]) -> SegmentInfo:
    """Record that a head segment sealed at `last_offset` and link the next segment."""
    located = state.segment_by_group(int(command["group_id"]))
    if located is None:
        raise MetadataError(UNKNOWN_TOPIC_OR_PARTITION, "no such segment group")
    partition, segment = located
    if segment is not partition.head or segment.sealed:
        raise MetadataError(INVALID_CONFIG, f"segment group {segment.group_id} is not the head")
    last_offset = int(command["last_offset"])
    invariant(last_offset >= segment.base_offset - 1, "a segment does not end before it starts")
    sealed = attrs.evolve(segment, last_offset=last_offset)
    prepared = partition.prepared
    if (
        prepared is not None
        and prepared.base_offset == last_offset + 1
        and partition.prepared_term >= int(command.get("base_term", 0))
    ):
        # The successor made ahead starts where the head ended and its terms are past the
        # head's: link it as it runs. Otherwise (the head overshot, or changed leader since)
        # it is dropped and a fresh group is made, as if none had been prepared.
        successor = prepared
    else:
        replicas = tuple(int(node) for node in command["next_replicas"])
        successor = SegmentInfo(state._allocate_group(), last_offset + 1, replicas)
    state._replace_partition(
        attrs.evolve(
            partition,
            segments=(*partition.segments[:-1], sealed, successor),
            prepared=None,
            prepared_term=0,
        )
    )
    return successor


SEGMENT_OFFSET_RESERVE_MAX = (1 << 31) - 1
"""A prepared successor starts at most this far past the head's end (a batch's
lastOffsetDelta is an int32, and the SEAL batch covers the offsets in between)."""


def _prepare_successor(state: MetadataState, command: dict[str, Any]) -> SegmentInfo:
    """Create the head's successor before the head fills, at a base offset chosen ahead.

    The head's leader asks for it once the head nears its size limit; it promises to seal
    the head by `base_offset - 1` (its SEAL batch covers any offsets left over), so the
    successor can be created, placed and elected now and linked as it runs at the seal.
    """
    located = state.segment_by_group(int(command["group_id"]))
    if located is None:
        raise MetadataError(UNKNOWN_TOPIC_OR_PARTITION, "no such segment group")
    partition, segment = located
    if segment is not partition.head or segment.sealed:
        raise MetadataError(INVALID_CONFIG, f"segment group {segment.group_id} is not the head")
    if partition.prepared is not None:
        raise MetadataError(INVALID_CONFIG, f"group {segment.group_id} has a successor already")
    base_offset = int(command["base_offset"])
    if not segment.base_offset < base_offset <= segment.base_offset + SEGMENT_OFFSET_RESERVE_MAX:
        raise MetadataError(INVALID_CONFIG, f"successor base offset {base_offset} is out of range")
    replicas = tuple(int(node) for node in command["replicas"])
    if not replicas or len(set(replicas)) != len(replicas):
        raise MetadataError(INVALID_REPLICATION_FACTOR, f"bad replica set {replicas}")
    unknown = [node for node in replicas if node not in state.nodes]
    if unknown:
        raise MetadataError(INVALID_REPLICATION_FACTOR, f"unknown nodes {unknown}")
    prepared = SegmentInfo(state._allocate_group(), base_offset, replicas)
    state._replace_partition(
        attrs.evolve(partition, prepared=prepared, prepared_term=int(command["base_term"]))
    )
    return prepared


def _drop_segments(state: MetadataState, command: dict[str, Any]) -> int:
    """Retention: forget the sealed segments that end below `below_offset`."""
    topic = state.topics.get(str(command["topic"]))
    if topic is None:
        raise MetadataError(UNKNOWN_TOPIC_OR_PARTITION, "no such topic")
    partition = topic.partitions[int(command["partition"])]
    below = int(command["below_offset"])
    kept = tuple(
        segment
        for segment in partition.segments
        if segment.last_offset is None or segment.last_offset >= below
    )
    invariant(bool(kept) and kept[-1] is partition.head, "retention never drops the head")
    state._replace_partition(attrs.evolve(partition, segments=kept))
    return len(partition.segments) - len(kept)


def _replace_replica(state: MetadataState, command: dict[str, Any]) -> SegmentInfo:
    """Re-replication: a segment's replica on `dead` moves to `new`.

    This records the target; the segment group's leader then carries it out in Raft (add
    `new` as a learner, let it catch up, promote it, remove `dead`), and `new`'s node opens
    the group when it applies this command.
    """
    located = state.segment_by_group(int(command["group_id"]))
    if located is None:
        raise MetadataError(UNKNOWN_TOPIC_OR_PARTITION, "no such segment group")
    partition, segment = located
    dead, new = int(command["dead"]), int(command["new"])
    if dead not in segment.replicas:
        raise MetadataError(INVALID_REPLICATION_FACTOR, f"node {dead} holds no replica of it")
    if new in segment.replicas:
        raise MetadataError(INVALID_REPLICATION_FACTOR, f"node {new} already holds a replica")
    if new not in state.nodes or new in state.decommissioned:
        raise MetadataError(INVALID_REPLICATION_FACTOR, f"node {new} may not receive replicas")
    replaced = attrs.evolve(
        segment,
        replicas=tuple(new if node == dead else node for node in segment.replicas),
        bootstrap=segment.initial_replicas,
    )
    state._replace_partition(
        attrs.evolve(
            partition,
            segments=tuple(
                replaced if other.group_id == segment.group_id else other
                for other in partition.segments
            ),
        )
    )
    return replaced


TOPIC_CONFIGS_MAX = 100
CONFIG_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,248}$")
CONFIG_VALUE_CHARS_MAX = 4096
INTEGER_CONFIGS = frozenset({"retention.ms", "retention.bytes", "segment.bytes", "segment.ms"})


def validate_topic_config(name: str, value: str) -> None:
    """Reject a topic setting no topic could hold; raftlog keeps unknown names, as Kafka
    keeps them for plugins, but bounds their size and checks the numeric ones it reads."""
    if not CONFIG_NAME_PATTERN.match(name):
        raise MetadataError(INVALID_CONFIG, f"invalid config name {name!r}")
    if len(value) > CONFIG_VALUE_CHARS_MAX:
        raise MetadataError(INVALID_CONFIG, f"{name}: value over {CONFIG_VALUE_CHARS_MAX} chars")
    if name in INTEGER_CONFIGS:
        try:
            number = int(value)
        except ValueError:
            raise MetadataError(
                INVALID_CONFIG, f"{name}: expected an integer, got {value!r}"
            ) from None
        if number < -1:
            raise MetadataError(INVALID_CONFIG, f"{name}: must be -1 or more, got {number}")


def _alter_topic_configs(state: MetadataState, command: dict[str, Any]) -> TopicInfo:
    """Set and delete settings of a topic (IncrementalAlterConfigs), all or nothing."""
    name = command.get("name")
    topic = state.topics.get(name) if isinstance(name, str) else None
    if topic is None:
        raise MetadataError(UNKNOWN_TOPIC_OR_PARTITION, f"topic {name!r} does not exist")
    configs = dict(topic.configs)
    for key in command.get("delete", []):
        configs.pop(str(key), None)
    for key, value in dict(command.get("set", {})).items():
        validate_topic_config(str(key), str(value))
        configs[str(key)] = str(value)
    if len(configs) > TOPIC_CONFIGS_MAX:
        raise MetadataError(INVALID_CONFIG, f"a topic holds at most {TOPIC_CONFIGS_MAX} settings")
    altered = attrs.evolve(topic, configs=tuple(sorted(configs.items())))
    state.topics[topic.name] = altered
    return altered


PRODUCER_ID_BLOCK_SIZE_MAX = 1_000_000


def _init_cluster(state: MetadataState, command: dict[str, Any]) -> str:
    """Set the cluster id unless one is set already; returns the id in force."""
    if state.cluster_id is None:
        state.cluster_id = str(command["cluster_id"])
    return state.cluster_id


def _allocate_producer_ids(state: MetadataState, command: dict[str, Any]) -> int:
    """Reserve a block of producer ids; returns its first id."""
    count = int(command["count"])
    if not 1 <= count <= PRODUCER_ID_BLOCK_SIZE_MAX:
        raise MetadataError(INVALID_CONFIG, f"producer id block of {count} is out of range")
    first = state.next_producer_id
    state.next_producer_id += count
    return first


_HANDLERS = {
    "allocate_producer_ids": _allocate_producer_ids,
    "alter_topic_configs": _alter_topic_configs,
    "init_cluster": _init_cluster,
    "register_node": _register_node,
    "join_node": _join_node,
    "create_topic": _create_topic,
    "delete_topic": _delete_topic,
    "seal_and_link": _seal_and_link,
    "prepare_successor": _prepare_successor,
    "drop_segments": _drop_segments,
    "replace_replica": _replace_replica,
    "decommission_node": _decommission_node,
    "forget_node": _forget_node,
}


def encode_command(command: dict[str, Any]) -> bytes:
    return json.dumps(command, separators=(",", ":"), sort_keys=True).encode()


def decode_command(payload: bytes) -> dict[str, Any]:
    command = json.loads(payload)
    if not isinstance(command, dict):
        raise MetadataError(INVALID_CONFIG, "a metadata command is a JSON object")
    return command
