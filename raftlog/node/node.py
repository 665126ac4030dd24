"""A raftlog node: one nursery that owns the controller, every hosted group and the listener.

Start-up order matters: the controller group replays its log first (which re-creates the
topics and so reopens every partition group hosted here), then the node registers itself
(its Kafka address may have changed), and only then does the Kafka listener accept
clients, so a client never sees a node that has not recovered.

In cluster mode (`--peers`, which lists every member with its internal address, this node
included) the controller group's voters are the listed members, every group's Raft
messages travel over one HTTP/2 transport per node (`raft_router`), and a node that is not
the controller leader forwards controller commands to the leader.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import pathlib
import shutil
import time
import uuid
from collections.abc import Sequence
from typing import Any

import attrs
import trio

from raftlog import logs
from raftlog.config import NodeConfig
from raftlog.controller.metadata import (
    CONTROLLER_GROUP_ID,
    TOPIC_ALREADY_EXISTS,
    MetadataError,
    SegmentInfo,
    TopicInfo,
)
from raftlog.controller.service import NOT_CONTROLLER, Controller, ControllerUnavailable
from raftlog.groups.records import OFFSETS_PARTITIONS, OFFSETS_TOPIC
from raftlog.kafka.listener import KafkaListener
from raftlog.limits import StorageLimits
from raftlog.node.broker import Broker
from raftlog.node.raft_router import CONTROLLER_EXECUTE, RaftRouter
from raftlog.partition.chain import PartitionChain, retention_cut
from raftlog.partition.replica import PartitionReplica
from raftlog.replica.factory import open_replica_group
from raftlog.replica.group import ReplicaGroup
from raftlog.replica.raft_storage import SegmentGroupLog
from raftlog.storage.config import LogConfig
from raftlog.transport import Transport, TransportError

TICK_INTERVAL_S = 0.1
STARTUP_TIMEOUT_S = 60.0
FORWARD_TIMEOUT_S = 30.0
PARTITION_LEADERS_WAIT_S = 10.0


class ClusterConfigError(ValueError):
    """The cluster settings cannot describe a cluster this node belongs to."""


def new_cluster_id() -> str:
    """A cluster id in Kafka's form: a UUID as 22 characters of URL-safe base64."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


@attrs.define(eq=False)
class _Hosted:
    group: ReplicaGroup
    storage: SegmentGroupLog
    scope: trio.CancelScope
    directory: pathlib.Path


@attrs.define(eq=False)
class Node:
    config: NodeConfig
    controller: Controller = attrs.field(factory=Controller)
    broker: Broker | None = None
    kafka_port: int | None = None
    router: RaftRouter | None = None
    transport: Transport | None = None
    _hosted: dict[int, _Hosted] = attrs.field(factory=dict)
    _nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled; reports the bound Kafka port once clients may connect."""
        data_dir = self.config.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.broker = Broker(self.config, self.controller)
        self.controller.listeners.append(self._on_metadata)
        self.router = RaftRouter(self._lookup, self._execute_for_peer)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            if self.config.peers:
                await self._start_transport(nursery)
                self.controller.forward = self._forward
            # Bind first, so that the advertised port is known even for port 0; the broker
            # holds every request until recovery is done.
            listener = KafkaListener(self.broker.handle, self.broker.supported_versions)
            address = self.config.kafka_addr
            self.kafka_port = await nursery.start(listener.serve, address.host, address.port)
            group = await self._host(
                CONTROLLER_GROUP_ID, data_dir / "controller", None, self._controller_voters()
            )
            self.controller.group = group
            nursery.start_soon(self._tick_forever)
            with trio.fail_after(STARTUP_TIMEOUT_S):
                await self._wait_caught_up(group)
                await self._register()
                if self.controller.state.cluster_id is None:
                    await self.controller.execute(
                        {"type": "init_cluster", "cluster_id": new_cluster_id()},
                        STARTUP_TIMEOUT_S,
                    )
                await self._wait_partitions_led()
            nursery.start_soon(self.broker.coordinator.expire_forever)
            nursery.start_soon(self._ensure_offsets_topic)
            nursery.start_soon(self._retention_forever)
            self.broker.ready.set()
            logs.event(
                "listening",
                kafka=f"{address.host}:{self.kafka_port}",
                node_id=self.config.node_id,
                data_dir=str(data_dir),
                fsync=self.config.fsync.value,
            )
            task_status.started(self.kafka_port)

    # -- groups ------------------------------------------------------------------------

    async def _host(
        self,
        group_id: int,
        directory: pathlib.Path,
        partition: tuple[str, int] | None,
        voters: Sequence[int],
        base_offset: int = 0,
        base_term: int = 0,
    ) -> ReplicaGroup:
        assert self._nursery is not None and self.broker is not None
        log_config = LogConfig(
            # Files inside one group roll on storage's own bounds; `segment_bytes` is where
            # the partition seals the group and chains a new one.
            limits=StorageLimits(
                segment_bytes_max=min(max(2 * self.config.segment_bytes, 16 << 20), 1 << 30)
            ),
            segment_age_ms_max=self.config.segment_ms,
            retention_bytes_max=None,
            retention_age_ms_max=None,
        )
        group, storage = open_replica_group(
            directory,
            group_id=group_id,
            node_id=self.config.node_id,
            voters=voters,
            apply=self.controller.apply_entries,
            send=self._router().sender(group_id),
            fsync=self.config.fsync,
            log_config=log_config,
            base_offset=base_offset,
            base_term=base_term,
        )
        if partition is not None:
            replica = PartitionReplica(
                partition[0],
                partition[1],
                group,
                storage,
                self.broker.notify_data_changed,
                seal_bytes=self.config.segment_bytes,
            )
            replica.on_sealed = lambda last_offset, term: self._nursery_start(
                self._link_successor, group_id, list(voters), last_offset, term
            )
            chain = self.broker.partitions.setdefault(partition, PartitionChain(*partition))
            chain.add(replica)
        scope = trio.CancelScope()
        self._hosted[group_id] = _Hosted(group, storage, scope, directory)
        await self._nursery.start(self._run_group, self._hosted[group_id])
        if voters[0] == self.config.node_id:
            # The first replica stands at once instead of waiting out an election timeout;
            # pre-vote keeps this from disturbing a group that already has a leader.
            group.campaign()
        return group

    async def _run_group(
        self, hosted: _Hosted, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run one hosted group until its scope is cancelled.

        Given the record itself, not its id: replaying a topic's creation and deletion
        can drop the group (cancelling its scope) before this task first runs.
        """
        try:
            with hosted.scope:
                await hosted.group.run(task_status=task_status)
        finally:
            hosted.storage.log.sync()
            hosted.storage.log.close()

    async def _drop(self, group_id: int) -> None:
        hosted = self._hosted.pop(group_id, None)
        if hosted is None:
            return
        hosted.scope.cancel()
        await trio.sleep(0)  # let the group task unwind and close its files
        shutil.rmtree(hosted.directory, ignore_errors=True)

    def _nursery_start(self, function: Any, *arguments: Any) -> None:
        assert self._nursery is not None
        self._nursery.start_soon(function, *arguments)

    async def _link_successor(
        self, group_id: int, replicas: list[int], last_offset: int, term: int
    ) -> None:
        """Ask the controller to record the seal and create the next segment's group."""
        rotated = replicas[1:] + replicas[:1]  # spread leadership: the first replica stands
        command = {
            "type": "seal_and_link",
            "group_id": group_id,
            "last_offset": last_offset,
            "next_replicas": rotated,
            "base_term": term,
        }
        try:
            await self.controller.execute(command, FORWARD_TIMEOUT_S)
        except MetadataError as error:
            # Already linked (another leader of this segment did it first), or the
            # controller is unavailable: the next leader of the segment asks again.
            logs.event("segment_link_skipped", logging.INFO, group=group_id, reason=str(error))

    async def _ensure_offsets_topic(self) -> None:
        """Create `__consumer_offsets` once every listed member has registered."""
        assert self.broker is not None
        members = max(len(self.config.peers), 1)
        with trio.move_on_after(STARTUP_TIMEOUT_S):
            while len(self.controller.state.nodes) < members:
                await trio.sleep(0.1)
        while OFFSETS_TOPIC not in self.controller.state.topics:
            try:
                await self.broker.create_topic(
                    OFFSETS_TOPIC, OFFSETS_PARTITIONS, None, {"cleanup.policy": "compact"}
                )
            except MetadataError as error:
                if error.error_code != TOPIC_ALREADY_EXISTS:
                    logs.event("offsets_topic_not_created", logging.INFO, reason=str(error))
                    await trio.sleep(1)

    async def _retention_forever(self) -> None:
        """Drop whole sealed segments that fall outside their topic's retention.

        The leader of a partition's head decides (it hosts every segment it must measure),
        the controller records the drop, and every replica deletes those groups' files.
        """
        assert self.broker is not None
        while True:
            await trio.sleep(self.config.retention_check_ms / 1000)
            for (topic_name, index), chain in list(self.broker.partitions.items()):
                topic = self.controller.state.topics.get(topic_name)
                if topic is None or not chain.group.is_leader or len(chain.segments) < 2:
                    continue
                below = retention_cut(
                    chain,
                    int(topic.config("retention.ms") or self.config.retention_ms),
                    int(topic.config("retention.bytes") or self.config.retention_bytes),
                    time.time() * 1000,
                )
                if below is None:
                    continue
                command = {
                    "type": "drop_segments",
                    "topic": topic_name,
                    "partition": index,
                    "below_offset": below,
                }
                try:
                    await self.controller.execute(command, FORWARD_TIMEOUT_S)
                except MetadataError as error:
                    logs.event(
                        "retention_skipped", logging.INFO, topic=topic_name, reason=str(error)
                    )

    def _router(self) -> RaftRouter:
        assert self.router is not None, "the router exists once run() has started"
        return self.router

    def _lookup(self, group_id: int) -> ReplicaGroup | None:
        hosted = self._hosted.get(group_id)
        return None if hosted is None else hosted.group

    def _controller_voters(self) -> list[int]:
        if not self.config.peers:
            return [self.config.node_id]
        return [peer.node_id for peer in self.config.peers]

    async def _start_transport(self, nursery: trio.Nursery) -> None:
        peers = {peer.node_id: peer.address for peer in self.config.peers}
        own = peers.pop(self.config.node_id, None)
        if own is None:
            raise ClusterConfigError(
                f"--peers must list this node (id {self.config.node_id}) with its internal address"
            )
        self.transport = Transport(
            self.config.node_id,
            own.host,
            own.port,
            self.router,
            peer_addresses={node: (address.host, address.port) for node, address in peers.items()},
        )
        self.router.transport = self.transport
        await nursery.start(self.transport.run)

    async def _forward(self, leader_id: int, command: dict[str, Any]) -> dict[str, Any]:
        assert self.transport is not None
        try:
            reply = await self.transport.call(
                leader_id, CONTROLLER_EXECUTE, json.dumps(command).encode(), FORWARD_TIMEOUT_S
            )
        except TransportError as error:
            raise ControllerUnavailable(
                NOT_CONTROLLER, f"controller leader unreachable: {error}"
            ) from error
        result: dict[str, Any] = json.loads(reply)
        return result

    async def _execute_for_peer(self, command: dict[str, Any]) -> dict[str, Any]:
        return await self.controller.execute_for_peer(command, FORWARD_TIMEOUT_S)

    async def _tick_forever(self) -> None:
        """Tick every group that has something to do.

        A quiescent group (every member holds its whole log) is not ticked, so idle
        groups cost neither CPU nor heartbeats; any message wakes it. A quiescent follower
        whose leader's connection is down keeps ticking, so it can elect a new leader; pre-vote
        keeps that from disturbing groups whose leader is alive.
        """
        while True:
            await trio.sleep(TICK_INTERVAL_S)
            unreachable = self._unreachable_peers()
            for hosted in list(self._hosted.values()):
                group = hosted.group
                if group.raw.quiescent() and group.leader_id not in unreachable:
                    continue
                group.tick()

    def _unreachable_peers(self) -> frozenset[int]:
        if self.transport is None:
            return frozenset()
        peers = self.transport.statistics().peers
        return frozenset(node for node, peer in peers.items() if not peer.connected)

    def hosted_groups(self) -> int:
        return len(self._hosted)

    def quiescent_groups(self) -> int:
        """How many hosted groups are quiescent now (for statistics and tests)."""
        return sum(1 for hosted in self._hosted.values() if hosted.group.raw.quiescent())

    async def _wait_caught_up(self, group: ReplicaGroup) -> None:
        """Until the controller group has a leader and this node applied what it committed."""
        while True:
            statistics = group.raw.statistics()
            if group.is_leader and group.applied_index >= statistics.last_index:
                return
            following = not group.is_leader and group.leader_id and statistics.commit_index > 0
            if following and group.applied_index >= statistics.commit_index:
                return
            await trio.sleep(0.005)

    async def _wait_partitions_led(self) -> None:
        """Give hosted partitions a moment to find leaders (clients retry if they have not)."""
        assert self.broker is not None
        with trio.move_on_after(PARTITION_LEADERS_WAIT_S):
            while not all(replica.group.leader_id for replica in self.broker.partitions.values()):
                await trio.sleep(0.005)

    async def _register(self) -> None:
        config = self.config
        advertised = config.advertised
        if advertised.port == 0:
            advertised = attrs.evolve(advertised, port=self.kafka_port or 0)
        known = self.controller.state.nodes.get(config.node_id)
        wanted = {
            "type": "register_node",
            "node_id": config.node_id,
            "kafka_host": advertised.host,
            "kafka_port": advertised.port,
            "internal_host": config.internal_addr.host,
            "internal_port": config.internal_addr.port,
        }
        current = None if known is None else attrs.asdict(known)
        if current != {key: value for key, value in wanted.items() if key != "type"}:
            await self.controller.execute(wanted, STARTUP_TIMEOUT_S)

    def _on_metadata(self, command: dict[str, Any], result: Any) -> None:
        """Open or drop the groups this node hosts as topics come and go."""
        assert self._nursery is not None and self.broker is not None
        if command["type"] == "create_topic":
            topic: TopicInfo = result
            for partition in topic.partitions:
                head = partition.head
                if self.config.node_id in head.replicas:
                    directory = self.config.data_dir / "groups" / str(head.group_id)
                    self._nursery.start_soon(
                        self._host,
                        head.group_id,
                        directory,
                        (topic.name, partition.index),
                        head.replicas,
                    )
        elif command["type"] == "seal_and_link":
            successor: SegmentInfo = result
            located = self.controller.state.segment_by_group(successor.group_id)
            assert located is not None
            partition_info, _segment = located
            logs.event(
                "segment_linked",
                topic=partition_info.topic,
                partition=partition_info.index,
                sealed_group=command["group_id"],
                group=successor.group_id,
                base_offset=successor.base_offset,
            )
            if self.config.node_id in successor.replicas:
                directory = self.config.data_dir / "groups" / str(successor.group_id)
                self._nursery.start_soon(
                    functools.partial(
                        self._host,
                        successor.group_id,
                        directory,
                        (partition_info.topic, partition_info.index),
                        successor.replicas,
                        base_offset=successor.base_offset,
                        base_term=int(command["base_term"]),
                    )
                )
        elif command["type"] == "drop_segments":
            partition_info = self.controller.state.topics[command["topic"]].partitions[
                int(command["partition"])
            ]
            kept = {segment.group_id for segment in partition_info.segments}
            chain = self.broker.partitions.get((partition_info.topic, partition_info.index))
            if chain is not None:
                for segment in list(chain.segments):
                    if segment.group.group_id not in kept:
                        chain.remove(segment.group.group_id)
                        self._nursery.start_soon(self._drop, segment.group.group_id)
            logs.event(
                "segments_dropped",
                topic=partition_info.topic,
                partition=partition_info.index,
                below_offset=command["below_offset"],
                count=result,
            )
        elif command["type"] == "delete_topic":
            topic = result
            for partition in topic.partitions:
                self.broker.partitions.pop((topic.name, partition.index), None)
                for segment in partition.segments:
                    self._nursery.start_soon(self._drop, segment.group_id)
            self._nursery.start_soon(self.broker.coordinator.forget_topic, topic.name)
            logs.event("topic_deleted", logging.INFO, topic=topic.name)
