"""A raftlog node: one nursery that owns the controller, every hosted group and the listener.

Start-up order matters: the controller group replays its log first (which re-creates the
topics and so reopens every partition group hosted here), then the node registers itself
(its Kafka address may have changed), and only then does the Kafka listener accept
clients, so a client never sees a node that has not recovered.

Cluster mode (`--peers`) needs the internal transport and the multi-voter controller;
until those land, a node refuses `--peers` with a clear error rather than running alone
while claiming to be part of a cluster.
"""

from __future__ import annotations

import base64
import logging
import pathlib
import shutil
import uuid
from typing import Any

import attrs
import trio

from raftlog import logs
from raftlog.config import NodeConfig
from raftlog.controller.metadata import CONTROLLER_GROUP_ID, TopicInfo
from raftlog.controller.service import Controller
from raftlog.kafka.listener import KafkaListener
from raftlog.limits import StorageLimits
from raftlog.node.broker import Broker
from raftlog.partition.replica import PartitionReplica
from raftlog.raft.messages import Message
from raftlog.replica.factory import open_replica_group
from raftlog.replica.group import ReplicaGroup
from raftlog.replica.raft_storage import SegmentGroupLog
from raftlog.storage.config import LogConfig
from raftlog.storage.files import write_atomically

TICK_INTERVAL_S = 0.1
STARTUP_TIMEOUT_S = 60.0


class ClusterModeUnavailable(RuntimeError):
    """`--peers` was given, but this build serves single nodes only."""


def load_cluster_id(data_dir: pathlib.Path) -> str:
    """The cluster id, created once (Kafka's 22-character form) and kept in the data dir."""
    path = data_dir / "cluster_id"
    if path.exists():
        return path.read_text().strip()
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    write_atomically(path, cluster_id.encode())
    return cluster_id


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
    _hosted: dict[int, _Hosted] = attrs.field(factory=dict)
    _nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled; reports the bound Kafka port once clients may connect."""
        if self.config.peers:
            raise ClusterModeUnavailable(
                "cluster mode (--peers) is not available yet: this build runs single nodes"
            )
        data_dir = self.config.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.broker = Broker(self.config, load_cluster_id(data_dir), self.controller)
        self.controller.listeners.append(self._on_metadata)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            # Bind first, so that the advertised port is known even for port 0; the broker
            # holds every request until recovery is done.
            listener = KafkaListener(self.broker.handle, self.broker.supported_versions)
            address = self.config.kafka_addr
            self.kafka_port = await nursery.start(listener.serve, address.host, address.port)
            group = await self._host(CONTROLLER_GROUP_ID, data_dir / "controller", None)
            self.controller.group = group
            with trio.fail_after(STARTUP_TIMEOUT_S):
                await self._wait_caught_up(group)
                await self._register()
                await self._wait_partitions_led()
            nursery.start_soon(self._tick_forever)
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
        self, group_id: int, directory: pathlib.Path, partition: tuple[str, int] | None
    ) -> ReplicaGroup:
        assert self._nursery is not None and self.broker is not None
        log_config = LogConfig(
            limits=StorageLimits(segment_bytes_max=self.config.segment_bytes),
            segment_age_ms_max=self.config.segment_ms,
            retention_bytes_max=None,
            retention_age_ms_max=None,
        )
        group, storage = open_replica_group(
            directory,
            group_id=group_id,
            node_id=self.config.node_id,
            voters=[self.config.node_id],
            apply=self.controller.apply_entries,
            send=self._send,
            fsync=self.config.fsync,
            log_config=log_config,
        )
        if partition is not None:
            replica = PartitionReplica(
                partition[0], partition[1], group, storage, self.broker.notify_data_changed
            )
            self.broker.partitions[partition] = replica
        scope = trio.CancelScope()
        self._hosted[group_id] = _Hosted(group, storage, scope, directory)
        await self._nursery.start(self._run_group, group_id)
        group.campaign()  # the sole voter need not wait out an election timeout
        return group

    async def _run_group(
        self, group_id: int, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        hosted = self._hosted[group_id]
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

    def _send(self, message: Message) -> None:
        raise ClusterModeUnavailable(f"a single node has no peer to send {message!r} to")

    async def _tick_forever(self) -> None:
        while True:
            await trio.sleep(TICK_INTERVAL_S)
            for hosted in list(self._hosted.values()):
                hosted.group.tick()

    async def _wait_caught_up(self, group: ReplicaGroup) -> None:
        """Until this node leads the controller group and has applied its whole log."""
        while not (group.is_leader and group.applied_index >= group.raw.statistics().last_index):
            await trio.sleep(0.005)

    async def _wait_partitions_led(self) -> None:
        assert self.broker is not None
        while not all(replica.group.is_leader for replica in self.broker.partitions.values()):
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
                        self._host, head.group_id, directory, (topic.name, partition.index)
                    )
        elif command["type"] == "delete_topic":
            topic = result
            for partition in topic.partitions:
                self.broker.partitions.pop((topic.name, partition.index), None)
                for segment in partition.segments:
                    self._nursery.start_soon(self._drop, segment.group_id)
            logs.event("topic_deleted", logging.INFO, topic=topic.name)
