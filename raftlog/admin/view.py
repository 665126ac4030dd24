"""What the admin API and the metrics show of a node, as plain JSON-ready documents.

This is the one module that reads node internals for operators (the controller's state,
the hosted Raft groups, the partition chains, the group coordinator), so the HTTP routes
and the Prometheus collector stay free of them. Everything here is read-only and sync:
it runs between two trio checkpoints, so what it sees is consistent.

A node knows the whole cluster's metadata (every node replays the controller log), but
leaders, terms and high watermarks only of the segments it hosts; for a segment hosted
elsewhere those fields are null and `hosted` is false.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from raftlog.controller.metadata import PartitionInfo, SegmentInfo, TopicInfo
from raftlog.groups.records import OFFSETS_TOPIC

if TYPE_CHECKING:
    from raftlog.node.node import Node
    from raftlog.partition.replica import PartitionReplica


@attrs.frozen
class GroupSample:
    """One hosted Raft group's numbers, for the metrics collector."""

    group_id: int
    topic: str | None
    partition: int | None
    role: str
    term: int
    commit_lag: int
    """Leader only: entries in its log not yet committed (0 elsewhere)."""
    quiescent: bool


@attrs.frozen
class ConsumerLag:
    group: str
    topic: str
    partition: int
    committed: int
    end: int | None
    """The partition's high watermark as this node knows it (None if not hosted here)."""

    @property
    def lag(self) -> int | None:
        return None if self.end is None or self.committed < 0 else max(self.end - self.committed, 0)


@attrs.define(eq=False)
class NodeView:
    node: Node

    # -- readiness ---------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Joined, caught up with the controller log, and the Kafka listener serves."""
        broker = self.node.broker
        return broker is not None and broker.ready.is_set()

    # -- cluster -----------------------------------------------------------------------

    def cluster(self) -> dict[str, Any]:
        node = self.node
        state = node.controller.state
        controller = node.broker.controller_id() if node.broker is not None else -1
        return {
            "cluster_id": state.cluster_id,
            "node_id": node.config.node_id,
            "controller_leader": None if controller < 0 else controller,
            "controller_voters": self._controller_voters(),
            "ready": self.ready,
            "nodes": [
                {
                    "node_id": info.node_id,
                    "kafka": f"{info.kafka_host}:{info.kafka_port}",
                    "internal": f"{info.internal_host}:{info.internal_port}",
                    "connected": self._connected(info.node_id),
                    "this_node": info.node_id == node.config.node_id,
                    "decommissioning": info.node_id in state.decommissioned,
                    "replicas": state.replica_count(info.node_id),
                }
                for info in sorted(state.nodes.values(), key=lambda info: info.node_id)
            ],
            "topics": len(state.topics),
            "hosted_groups": node.hosted_groups(),
            "quiescent_groups": node.quiescent_groups(),
        }

    def _controller_voters(self) -> list[int]:
        """Who may lead the controller group (the target of a controller transfer)."""
        group = self.node.controller.group
        return [] if group is None else sorted(group.raw.membership.voters)

    def _connected(self, node_id: int) -> bool | None:
        """Whether the transport to that node is up (None for this node itself)."""
        if node_id == self.node.config.node_id:
            return None
        transport = self.node.transport
        if transport is None:
            return False
        peer = transport.statistics().peers.get(node_id)
        return peer is not None and peer.connected

    def transport_drops(self) -> list[tuple[int, str, str, int]]:
        """(peer, channel, reason, messages) for each peer's message queues: appends and
        heartbeats refused because the queue was full, or lost with a connection. Raft
        resends what matters, but a steady count means a leader outruns a follower."""
        transport = self.node.transport
        if transport is None:
            return []
        drops = []
        for peer_id, peer in sorted(transport.statistics().peers.items()):
            for channel, counts in sorted(peer.channels.items()):
                name = channel.name.lower()
                drops.append((peer_id, name, "full", counts.messages_dropped_full))
                drops.append((peer_id, name, "disconnected", counts.messages_dropped_disconnected))
        return drops

    # -- topics and partitions ---------------------------------------------------------

    def topics(self) -> list[dict[str, Any]]:
        state = self.node.controller.state
        return [self._topic_summary(state.topics[name]) for name in sorted(state.topics)]

    def _topic_summary(self, topic: TopicInfo) -> dict[str, Any]:
        return {
            "name": topic.name,
            "topic_id": topic.topic_id,
            "partitions": len(topic.partitions),
            "replication_factor": topic.replication_factor,
            "internal": topic.name == OFFSETS_TOPIC,
            "configs": dict(topic.configs),
            "segments": sum(len(partition.segments) for partition in topic.partitions),
        }

    def partitions(self, topic_name: str) -> list[dict[str, Any]] | None:
        """Every partition's segment chain, or None if there is no such topic."""
        topic = self.node.controller.state.topics.get(topic_name)
        if topic is None:
            return None
        return [self._partition(partition) for partition in topic.partitions]

    def _partition(self, partition: PartitionInfo) -> dict[str, Any]:
        segments = [self._segment(partition, segment) for segment in partition.segments]
        head = segments[-1]
        return {
            "topic": partition.topic,
            "partition": partition.index,
            "leader": head["leader"],
            "term": head["term"],
            "log_start_offset": partition.segments[0].base_offset,
            "high_watermark": head["high_watermark"],
            "replicas": head["replicas"],
            "segments": segments,
            "prepared": None
            if partition.prepared is None
            else {
                "group_id": partition.prepared.group_id,
                "base_offset": partition.prepared.base_offset,
                "replicas": list(partition.prepared.replicas),
            },
        }

    def _segment(self, partition: PartitionInfo, segment: SegmentInfo) -> dict[str, Any]:
        group = self.node.hosted_group(segment.group_id)
        replica = self._replica(partition, segment.group_id)
        document: dict[str, Any] = {
            "group_id": segment.group_id,
            "base_offset": segment.base_offset,
            "last_offset": segment.last_offset,
            "state": "sealed" if segment.sealed else "head",
            "replicas": list(segment.replicas),
            "hosted": group is not None,
            "leader": None,
            "term": None,
            "high_watermark": None if segment.last_offset is None else segment.last_offset + 1,
            "size_bytes": None,
            "replica_lag": None,
        }
        if group is None:
            return document
        statistics = group.raw.statistics()
        document["leader"] = group.leader_id or None
        document["term"] = statistics.term
        if replica is not None:
            document["high_watermark"] = replica.high_watermark
            document["size_bytes"] = replica.storage.log.size_bytes
        if group.is_leader:
            # Entries each follower lacks, from the leader's own progress table.
            document["replica_lag"] = {
                str(progress.node_id): max(statistics.last_index - progress.match_index, 0)
                for progress in statistics.progress
                if progress.node_id != self.node.config.node_id
            }
        return document

    def _replica(self, partition: PartitionInfo, group_id: int) -> PartitionReplica | None:
        broker = self.node.broker
        chain = (
            None if broker is None else broker.partitions.get((partition.topic, partition.index))
        )
        if chain is None:
            return None
        for replica in chain.segments:
            if replica.group.group_id == group_id:
                return replica
        return None

    # -- consumer groups ---------------------------------------------------------------

    def groups(self) -> list[dict[str, Any]]:
        """The consumer groups this node coordinates, with committed offsets and lag."""
        broker = self.node.broker
        if broker is None:
            return []
        coordinator = broker.coordinator
        lags = self.consumer_lags()
        names = {group.group_id for group in coordinator.listed()} | {lag.group for lag in lags}
        documents = []
        for name in sorted(names):
            group = coordinator.groups.get(name)
            offsets = [lag for lag in lags if lag.group == name]
            documents.append(
                {
                    "group": name,
                    "state": None if group is None else group.state.value,
                    "generation": None if group is None else group.generation,
                    "protocol": None if group is None else group.protocol_name or None,
                    "members": 0 if group is None else len(group.members),
                    "coordinator": self.node.config.node_id,
                    "total_lag": sum(lag.lag or 0 for lag in offsets),
                    "offsets": [
                        {
                            "topic": lag.topic,
                            "partition": lag.partition,
                            "committed": lag.committed,
                            "end": lag.end,
                            "lag": lag.lag,
                        }
                        for lag in offsets
                    ],
                }
            )
        return documents

    def consumer_lags(self) -> list[ConsumerLag]:
        """Committed offset and lag of every partition of every group coordinated here."""
        broker = self.node.broker
        if broker is None:
            return []
        coordinator = broker.coordinator
        lags = []
        for group_id, stored in list(coordinator.offsets.items()):
            chain = coordinator.offsets_partition(group_id)
            if chain is None or not chain.group.is_leader:
                continue  # another node coordinates it now
            for (topic, index), (offset, _metadata, _epoch) in sorted(stored.items()):
                partition = broker.partitions.get((topic, index))
                end = None if partition is None else partition.high_watermark
                lags.append(ConsumerLag(group_id, topic, index, offset, end))
        return lags

    # -- Raft groups -------------------------------------------------------------------

    def group_samples(self) -> list[GroupSample]:
        located = {
            segment.group_id: (topic.name, partition.index)
            for topic in self.node.controller.state.topics.values()
            for partition in topic.partitions
            for segment in partition.segments
        }
        samples = []
        for group in self.node.replica_groups():
            statistics = group.raw.statistics()
            topic, partition = located.get(group.group_id, (None, None))
            commit_lag = statistics.last_index - statistics.commit_index if group.is_leader else 0
            samples.append(
                GroupSample(
                    group.group_id,
                    topic,
                    partition,
                    statistics.role.value,
                    statistics.term,
                    max(commit_lag, 0),
                    statistics.quiescent,
                )
            )
        return samples
