"""The Kafka-facing view of a node: dispatch to handlers, and what handlers ask the node.

Handlers see the cluster through this object only (topics from the controller's state,
partitions hosted here, leaders, producer ids), so they hold no state of their own.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping

import attrs
import trio

from raftlog.config import NodeConfig
from raftlog.controller.metadata import (
    INVALID_CONFIG,
    INVALID_PARTITIONS,
    INVALID_REPLICATION_FACTOR,
    PARTITIONS_PER_TOPIC_MAX,
    UNKNOWN_TOPIC_OR_PARTITION,
    MetadataError,
    NodeInfo,
    TopicInfo,
    validate_topic_config,
)
from raftlog.controller.placement import (
    PlacementError,
    live_candidates,
    place_replicas,
    replica_load,
)
from raftlog.controller.service import Controller
from raftlog.groups.coordinator import GroupCoordinator
from raftlog.kafka.handlers import HANDLERS, SUPPORTED_VERSIONS
from raftlog.node.sealed_reads import SealedReads
from raftlog.partition.chain import PartitionChain
from raftlog.partition.cleanup import TopicConfigError, check_topic_configs
from raftlog.protocol.connection import RequestReceived
from raftlog.protocol.errors import ErrorCode
from raftlog.protocol.messages._runtime import Message

PRODUCER_ID_BLOCK_SIZE = 1000
NO_NODE = -1
REMOTE_LEADER_FRESH_S = 1.0
"""How long a leader learned from another node answers Metadata before it is asked again."""
REMOTE_LEADER_TIMEOUT_S = 1.0
PARTITIONS_READY_WAIT_S = 5.0

AskLeaders = Callable[[int, list[int]], Awaitable[dict[int, tuple[int, int]]]]
"""Asks one node which leader (and term) it sees for each of some groups it hosts."""


@attrs.define(eq=False)
class Broker:
    config: NodeConfig
    controller: Controller
    partitions: dict[tuple[str, int], PartitionChain] = attrs.field(factory=dict)
    coordinator: GroupCoordinator = attrs.field(init=False)
    request_timeout_s: float = 30.0
    supported_versions: dict[int, tuple[int, int]] = attrs.field(
        factory=lambda: dict(SUPPORTED_VERSIONS)
    )
    ready: trio.Event = attrs.field(factory=trio.Event)
    """Set once the node has recovered; requests wait for it."""
    _data_changed: trio.Event = attrs.field(factory=trio.Event)
    _producer_ids: Iterator[int] = attrs.field(factory=lambda: iter(()))
    ask_leaders: AskLeaders | None = None
    """Set in cluster mode: how to learn leaders of groups this node does not host."""
    unreachable: Callable[[], frozenset[int]] = frozenset
    """Nodes this node has no connection to now: new replicas avoid them if they can."""
    sealed_reads: SealedReads | None = None
    """Set in cluster mode: fetches of sealed segments not held here go to a replica."""
    _remote_leaders: dict[int, tuple[int, int, float]] = attrs.field(factory=dict)
    """group id -> (leader, term, when learned) for head groups hosted elsewhere."""

    @property
    def cluster_id(self) -> str | None:
        return self.controller.state.cluster_id

    def __attrs_post_init__(self) -> None:
        self.coordinator = GroupCoordinator(self.partition)

    async def handle(self, request: RequestReceived) -> Message | None:
        await self.ready.wait()
        handler = HANDLERS[request.api_key]
        response: Message | None = await handler.handle(self, request)
        if response is not None:
            response.fit_to_version(request.api_version)
        return response

    # -- long-poll ---------------------------------------------------------------------

    def data_changed_event(self) -> trio.Event:
        """An event set the next time any partition's high watermark advances."""
        return self._data_changed

    def notify_data_changed(self) -> None:
        self._data_changed.set()
        self._data_changed = trio.Event()

    # -- the cluster as handlers see it -----------------------------------------------

    def nodes(self) -> list[NodeInfo]:
        return sorted(self.controller.state.nodes.values(), key=lambda node: node.node_id)

    def controller_id(self) -> int:
        group = self.controller.group
        if group is None or not group.leader_id:
            return NO_NODE
        return group.leader_id

    def controller_for_clients(self) -> int:
        """The node Metadata names as controller: where clients send CreateTopics and the like.

        The controller leader when known; while none is (an election), this node, which
        forwards such requests and waits for the next leader (`Controller.execute`), as a
        KRaft broker names any broker. -1 would leave librdkafka's admin client waiting:
        it asks for metadata once more, then only wakes on a broker's state change, so its
        request would never be sent.
        """
        leader = self.controller_id()
        if leader != NO_NODE or self.config.node_id not in self.controller.state.nodes:
            return leader
        return self.config.node_id

    def partition(self, topic: str, index: int) -> PartitionChain | None:
        """The chain that answers for the partition here, or None (not hosted, or its head
        is not here yet: `PartitionChain.answers_for_partition`)."""
        chain = self.partitions.get((topic, index))
        if chain is None or not chain.segments or not chain.answers_for_partition():
            return None
        return chain

    def unserved_error(self, topic: str, index: int) -> ErrorCode:
        """The error for a partition that `partition` does not answer for here.

        As Kafka's brokers choose it: NOT_LEADER_OR_FOLLOWER for a partition the metadata
        knows (not hosted here, or its head still opening), which every client retries
        after refreshing its metadata; UNKNOWN_TOPIC_OR_PARTITION only for one it does not
        know. librdkafka takes the latter from ListOffsets as permanent, so a head opening
        after a seal must not answer it.
        """
        if self.head_group(topic, index) is None:
            return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        return ErrorCode.NOT_LEADER_OR_FOLLOWER

    def partition_leader(self, topic: str, index: int) -> tuple[int, int]:
        """(leader node id, leader epoch) of the partition's head segment.

        From the local replica when this node hosts the head; otherwise what its replicas
        said last (`refresh_leaders`), since in a cluster larger than the replication
        factor a client may well ask a node that holds no copy. While the head placed here
        is still opening, what its other replicas said comes first too: the sealed segment
        standing in (`PartitionChain.stands_in`) is named only when they named no leader.
        """
        chain = self.partition(topic, index)
        head = self.head_group(topic, index)
        if (chain is None or chain.head_opening()) and head in self._remote_leaders:
            leader, term, _learned = self._remote_leaders[head]
            return leader, term
        if chain is not None and chain.group.leader_id:
            return chain.group.leader_id, chain.leader_epoch
        return NO_NODE, -1

    def head_group(self, topic: str, index: int) -> int | None:
        """The group id of the partition's head segment, as the controller names it."""
        info = self.controller.state.topics.get(topic)
        if info is None or not 0 <= index < len(info.partitions):
            return None
        return info.partitions[index].head.group_id

    async def refresh_leaders(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Ask the replicas of head segments not hosted here who leads them."""
        if self.ask_leaders is None:
            return
        now = trio.current_time()
        wanted: dict[int, list[int]] = {}
        for topic, index in partitions:
            info = self.controller.state.topics.get(topic)
            chain = self.partition(topic, index)
            if info is None or (chain is not None and not chain.head_opening()):
                continue
            head = info.partitions[index].head
            known = self._remote_leaders.get(head.group_id)
            if known is not None and now - known[2] < REMOTE_LEADER_FRESH_S:
                continue
            for node in head.replicas:
                if node != self.config.node_id:
                    wanted.setdefault(node, []).append(head.group_id)
        if not wanted:
            return
        ask = self.ask_leaders

        async def ask_one(node: int, groups: list[int]) -> None:
            with trio.move_on_after(REMOTE_LEADER_TIMEOUT_S):
                answers = await ask(node, groups)
                for group_id, (leader, term) in answers.items():
                    known = self._remote_leaders.get(group_id)
                    if known is None or term >= known[1] or now - known[2] >= REMOTE_LEADER_FRESH_S:
                        self._remote_leaders[group_id] = (leader, term, trio.current_time())

        async with trio.open_nursery() as nursery:
            for node, groups in wanted.items():
                nursery.start_soon(ask_one, node, groups)
        live = {
            partition.head.group_id
            for info in self.controller.state.topics.values()
            for partition in info.partitions
        }
        for group_id in [group for group in self._remote_leaders if group not in live]:
            del self._remote_leaders[group_id]

    def in_sync_replicas(self, topic: str, index: int) -> list[int]:
        """Replicas of the head segment's group that are caught up (all voters today)."""
        info = self.controller.state.topics.get(topic)
        if info is None:
            return []
        return list(info.partitions[index].head.replicas)

    def topic_name_by_id(self, topic_id: uuid.UUID) -> str | None:
        for topic in self.controller.state.topics.values():
            if topic.topic_id == topic_id.hex:
                return topic.name
        return None

    # -- changes -----------------------------------------------------------------------

    def _replication(self, replication: int | None) -> int:
        live = len(self.controller.state.active_nodes())
        return min(3, max(live, 1)) if replication is None else replication

    def check_topic_creation(
        self,
        name: str,
        partitions: int,
        replication: int | None,
        configs: Mapping[str, str] | None = None,
    ) -> None:
        try:
            check_topic_configs(configs or {})
        except TopicConfigError as error:
            raise MetadataError(INVALID_CONFIG, str(error)) from None
        if not 1 <= partitions <= PARTITIONS_PER_TOPIC_MAX:
            raise MetadataError(INVALID_PARTITIONS, f"{partitions} partitions is out of range")
        wanted = self._replication(replication)
        nodes = len(self.controller.state.active_nodes())
        if not 1 <= wanted <= nodes:
            raise MetadataError(
                INVALID_REPLICATION_FACTOR,
                f"replication factor {wanted} needs that many nodes; the cluster has {nodes}",
            )

    async def create_topic(
        self, name: str, partitions: int, replication: int | None, configs: dict[str, str]
    ) -> TopicInfo:
        self.check_topic_creation(name, partitions, replication, configs)
        wanted = self._replication(replication)
        node_ids = self.controller.state.active_nodes()
        candidates = live_candidates(node_ids, self.unreachable(), wanted)
        try:
            assignments = place_replicas(
                candidates, replica_load(self.controller.state), wanted, partitions
            )
        except PlacementError as error:
            raise MetadataError(INVALID_REPLICATION_FACTOR, str(error)) from None
        topic = await self.controller.create_topic(
            name, assignments, wanted, configs, self.request_timeout_s
        )
        await self._wait_hosted(topic)
        return topic

    async def _wait_hosted(self, topic: TopicInfo) -> None:
        """Give the partitions this node hosts a moment to open and elect a leader.

        Groups open in worker threads after the command commits; a client that produces
        right after CreateTopics (or an auto-creating Metadata) should find them ready, as
        it would on Kafka, rather than an unknown partition. Bounded: a large topic may
        return before all are ready, and clients retry what is not.
        """
        await self.wait_heads_led([topic], PARTITIONS_READY_WAIT_S)

    async def wait_heads_led(self, topics: Iterable[TopicInfo], timeout_s: float) -> None:
        """Until each partition of `topics` whose head is placed here answers from that
        head, with a leader (`partition`), or `timeout_s` has passed."""
        waiting = [
            (topic.name, partition.index)
            for topic in topics
            for partition in topic.partitions
            if self.config.node_id in partition.head.replicas
        ]
        with trio.move_on_after(timeout_s):
            while True:
                # Only the partitions still waiting are looked at again: with thousands of
                # partitions, a full scan every few milliseconds would busy the loop.
                waiting = [
                    key
                    for key in waiting
                    if (chain := self.partition(*key)) is None
                    or chain.head_opening()
                    or not chain.group.leader_id
                ]
                if not waiting:
                    return
                await trio.sleep(0.005 if len(waiting) < 100 else 0.05)

    async def alter_topic_configs(
        self, name: str, changes: dict[str, str], deletions: list[str], *, validate_only: bool
    ) -> None:
        """Set and delete topic settings through the controller (or only check them)."""
        if name not in self.controller.state.topics:
            raise MetadataError(UNKNOWN_TOPIC_OR_PARTITION, f"topic {name!r} does not exist")
        for key, value in changes.items():
            validate_topic_config(key, value)
        if validate_only:
            return
        command = {"type": "alter_topic_configs", "name": name, "set": changes, "delete": deletions}
        await self.controller.execute(command, self.request_timeout_s)

    async def next_producer_id(self) -> int:
        producer_id = next(self._producer_ids, None)
        if producer_id is None:
            first = await self.controller.execute(
                {"type": "allocate_producer_ids", "count": PRODUCER_ID_BLOCK_SIZE},
                self.request_timeout_s,
            )
            self._producer_ids = iter(range(first + 1, first + PRODUCER_ID_BLOCK_SIZE))
            return int(first)
        return producer_id
