"""A raftlog node: one nursery that owns the controller, every hosted group and the listener.

Start-up order matters: the controller group replays its log first (which re-creates the
topics and so reopens every partition group hosted here), then the node registers itself
(its Kafka address may have changed), and only then does the Kafka listener accept
clients, so a client never sees a node that has not recovered.

In cluster mode (`--peers`, which lists every member with its internal address, this node
included) the controller group's voters are the listed members, every group's Raft
messages travel over one HTTP/2 transport per node (`raft_router`), and a node that is not
the controller leader forwards controller commands to the leader. A node not listed in
`--peers` but given `--seeds` joins through a seed first (`join.py`), before it opens the
controller group, since it must learn the group's bootstrap membership and the members'
addresses; restarted, it rejoins through the members it remembers (`address_book.py`).
"""

from __future__ import annotations

import base64
import contextlib
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

from raftlog import bugs, logs
from raftlog.admin.metrics import NodeMetrics
from raftlog.admin.server import start_admin
from raftlog.config import NodeConfig
from raftlog.controller.metadata import (
    CONTROLLER_GROUP_ID,
    TOPIC_ALREADY_EXISTS,
    MetadataError,
    NodeInfo,
    SegmentInfo,
    TopicInfo,
)
from raftlog.controller.service import (
    NOT_CONTROLLER,
    Controller,
    ControllerUnavailable,
    NoControllerLeader,
)
from raftlog.groups.records import OFFSETS_PARTITIONS, OFFSETS_TOPIC
from raftlog.kafka.listener import KafkaListener
from raftlog.limits import StorageLimits
from raftlog.node import address_book, sealed_reads
from raftlog.node.address_book import Address, ClusterMemory, merge_addresses
from raftlog.node.balance import LedHead, preferred_ready
from raftlog.node.balance import moves as balance_moves
from raftlog.node.broker import Broker
from raftlog.node.group_opener import GroupOpener
from raftlog.node.join import (
    JoinAnswer,
    JoinRefused,
    JoinRequest,
    join_cluster,
    refusal,
    retry_later,
)
from raftlog.node.leadership import (
    TIMEOUT_S_MAX as TRANSFER_TIMEOUT_S_MAX,
)
from raftlog.node.leadership import (
    TRANSFER_RPC,
    LeadershipTransfers,
    TransferError,
    TransferRequest,
    head_group,
)
from raftlog.node.membership import (
    Liveness,
    choose_replacement,
    controller_target,
    next_change,
)
from raftlog.node.raft_router import CONTROLLER_EXECUTE, GROUP_LEADERS, NODE_PING, RaftRouter
from raftlog.node.sealed_reads import SealedReads
from raftlog.node.tls import internal_tls_contexts
from raftlog.partition.chain import PartitionChain, retention_cut
from raftlog.partition.cleanup import CLEANUP_POLICY, CleanupPolicy, cleanup_policy
from raftlog.partition.compaction import CompactionState, compact_partition, needs_pass
from raftlog.partition.replica import (
    SEAL_SLACK_OFFSETS,
    SUCCESSOR_WAIT_S_MAX,
    PartitionReplica,
)
from raftlog.raft.entry import EntryKind
from raftlog.raft.errors import ProposalDropped, ReadIndexLimitExceeded
from raftlog.raft.membership import ConfigChange, encode_config_change
from raftlog.raft.ready import Role
from raftlog.replica.factory import open_replica_group
from raftlog.replica.group import ReplicaGroup
from raftlog.replica.raft_storage import SegmentGroupLog
from raftlog.storage import power_loss
from raftlog.storage.compaction import CompactionError
from raftlog.storage.config import LogConfig
from raftlog.storage.errors import StorageError
from raftlog.transport import PeerUnavailable, Transport, TransportError

TICK_INTERVAL_S = 0.1
STARTUP_TIMEOUT_S = 60.0
READ_INDEX_WAIT_S = 1.0
"""How long a start-up ReadIndex of the controller may take before it is asked again (a
read in flight when leadership moves is dropped, never answered)."""
FORWARD_TIMEOUT_S = 30.0
PARTITION_LEADERS_WAIT_S = 10.0
LIVENESS_INTERVAL_S = 1.0
PING_TIMEOUT_S = 2.0
BALANCE_TRANSFER_TIMEOUT_S = 5.0
FORWARD_SLACK_S = 5.0
"""A forwarded transfer's call outlives the transfer's own timeout by this much, so the
remote node's answer (success or its own timeout) arrives rather than a transport one."""
RECONCILE_INTERVAL_S = 0.5
REPLACEMENTS_PER_PASS_MAX = 256
"""Bounds the controller commands one liveness pass issues for a dead node's replicas."""
LINK_RETRY_FIRST_S = 0.2
LINK_RETRY_MAX_S = 5.0
PREPARE_RESERVE_MIN_OFFSETS = 256
"""The fewest offsets a successor made ahead leaves between the head's end and its start."""
CAMPAIGN_RETRY_S = 0.05
FIRST_LEADER_PATIENCE_S = 30.0
"""How long a bootstrapped follower of a new group waits for its first leader's first
message before its election timer runs (a dead first replica costs this much)."""
CAMPAIGN_RETRIES_MAX = 40
# After this long waiting for a dropped group's task to close its files, say so in the log.
DROP_CLOSE_WAIT_S = 30.0
"""A new group's first replica stands again every 50 ms for up to 2 s until it is led."""


def _check_transfer_timeout(timeout_s: float) -> None:
    if not 0 < timeout_s <= TRANSFER_TIMEOUT_S_MAX:
        raise TransferError(400, f"timeout must be in (0, {TRANSFER_TIMEOUT_S_MAX:g}] s")


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
    # Set once the group's task has closed its files: only then may they be deleted.
    closed: trio.Event = attrs.field(factory=trio.Event)


def group_log_config(config: NodeConfig) -> LogConfig:
    """How the log of every Raft group this node hosts behaves."""
    return LogConfig(
        # Files inside one group roll on storage's own bounds; `segment_bytes` is where
        # the partition seals the group and chains a new one.
        limits=StorageLimits(
            segment_bytes_max=min(max(2 * config.segment_bytes, 16 << 20), 1 << 30)
        ),
        segment_age_ms_max=config.segment_ms,
        retention_bytes_max=None,
        retention_age_ms_max=None,
        cached_tail_bytes=None if config.cached_tail_bytes < 0 else config.cached_tail_bytes,
    )


@attrs.define(eq=False)
class Node:
    config: NodeConfig
    controller: Controller = attrs.field(factory=Controller)
    broker: Broker | None = None
    kafka_port: int | None = None
    router: RaftRouter | None = None
    transfers: LeadershipTransfers | None = None
    transport: Transport | None = None
    metrics: NodeMetrics = attrs.field(factory=NodeMetrics)
    admin_port: int | None = None
    """The admin HTTP API's bound port (None when `admin_addr` is empty)."""
    _hosted: dict[int, _Hosted] = attrs.field(factory=dict)
    _awake: set[int] = attrs.field(factory=set)
    """Groups that had input since they were last seen quiescent: the ones the tick visits."""
    _opening: set[int] = attrs.field(factory=set)
    _linking: set[int] = attrs.field(factory=set)
    _dormant: dict[int, int] = attrs.field(factory=dict)
    """Bootstrapped followers of new groups not ticked yet -> the group's first replica."""
    _opener: GroupOpener[tuple[ReplicaGroup, SegmentGroupLog]] = attrs.field(
        factory=lambda: GroupOpener(lambda opened: opened[1].log.close())
    )
    _standby: dict[int, tuple[tuple[str, int], PartitionReplica]] = attrs.field(factory=dict)
    """Successors made ahead of their seal and running here, not yet in their chain."""
    _membership_pending: set[int] = attrs.field(factory=set)
    """Groups whose leader here may have to change the Raft membership (newly led, or
    re-replicated); the reconcile loop visits only these."""
    _nursery: trio.Nursery | None = None
    _internal_address: Address | None = None
    """This node's internal address as registered (its --peers entry, else --internal-addr
    with the bound port)."""
    _controller_bootstrap: tuple[list[int], list[int]] | None = None
    """The controller group's voters and learners before its first entry (same everywhere)."""
    _memory: ClusterMemory | None = None
    """What this node, having joined by seed, keeps in `cluster.json` (None otherwise)."""

    @property
    def clustered(self) -> bool:
        return bool(self.config.peers or self.config.seeds)

    @property
    def joins_by_seed(self) -> bool:
        """Not listed in --peers: it learns the cluster through --seeds."""
        listed = any(peer.node_id == self.config.node_id for peer in self.config.peers)
        return bool(self.config.seeds) and not listed

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled; reports the bound Kafka port once clients may connect."""
        data_dir = self.config.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        if self.config.test_power_loss:
            power_loss.enable(data_dir)
        injected = bugs.activate(self.config.inject_bug)
        if injected is not None:
            logs.event("deliberate_bug_on", logging.WARNING, bug=injected.value)
        self.broker = Broker(self.config, self.controller)
        self.controller.listeners.append(self._on_metadata)
        self.router = RaftRouter(self._lookup, self._execute_for_peer)
        self.router.transfer_call = self._serve_transfer
        self.router.join_call = self._serve_join
        self.router.segment_read_call = self._serve_segment_read
        self.transfers = LeadershipTransfers(
            self.config.node_id,
            self._lookup,
            self._forward_transfer if self.clustered else None,
            observer=self.metrics.leadership_transfer,
        )
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await nursery.start(self._opener.run)
            if self.clustered:
                await self._start_transport(nursery)
                await nursery.start(self.router.run_heartbeat_flusher)
                self.controller.forward = self._forward
                self.broker.ask_leaders = self._ask_leaders
                self.broker.unreachable = self._unreachable_peers
                self.broker.sealed_reads = SealedReads(
                    self.config.node_id,
                    lambda: self.controller.state,
                    self.transport.call,
                    self._unreachable_peers,
                    self.metrics.sealed_read_forwarded,
                )
            # Bind first, so that the advertised port is known even for port 0; the broker
            # holds every request until recovery is done.
            listener = KafkaListener(
                self.broker.handle, self.broker.supported_versions, observer=self.metrics
            )
            address = self.config.kafka_addr
            self.kafka_port = await nursery.start(listener.serve, address.host, address.port)
            # Up before recovery, so /healthz answers and /readyz says 503 until it is done.
            self.admin_port = await start_admin(self, nursery)
            if self.joins_by_seed:
                await self._join_by_seed()
            voters, learners = self._controller_members()
            group = await self._host(
                CONTROLLER_GROUP_ID, data_dir / "controller", None, voters, learners=learners
            )
            assert group is not None, "the controller group is opened once, first"
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
            if self.clustered:
                nursery.start_soon(self._liveness_forever)
                nursery.start_soon(self._reconcile_forever)
                if self.config.leader_balance_interval_ms:
                    nursery.start_soon(self._balance_forever)
            nursery.start_soon(self._compaction_forever)
            self.broker.ready.set()
            admin_host = self.config.admin_addr.host if self.config.admin_addr else ""
            logs.event(
                "listening",
                kafka=f"{address.host}:{self.kafka_port}",
                node_id=self.config.node_id,
                data_dir=str(data_dir),
                fsync=self.config.fsync.value,
                admin="" if self.admin_port is None else f"{admin_host}:{self.admin_port}",
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
        learners: Sequence[int] = (),
        created: bool = False,
    ) -> ReplicaGroup | None:
        """Open (recover or create) a group hosted here; None if it is no longer ours.

        Metadata commands are applied (and their hosting tasks started) faster than the
        tasks run, so by the time this runs a segment may have been dropped or moved away.
        `created`: the command that made the group was just applied (a new topic, a
        successor); a replica opened fresh then bootstraps, and the first replica leads
        without an election (`open_replica_group`'s `bootstrap`). Every replica of the
        initial set applies the same command, so all of them bootstrap or none does.
        """
        assert self._nursery is not None and self.broker is not None
        if partition is not None and not self._assigned_here(group_id):
            if group_id not in self._hosted and group_id not in self._opening:
                # Files of an earlier run of a group that has since moved or gone (a
                # successor made ahead and then not used, say).
                shutil.rmtree(directory, ignore_errors=True)
            return None
        log_config = group_log_config(self.config)
        if group_id in self._hosted or group_id in self._opening:
            return None  # hosted already, or its opening is under way
        self._opening.add(group_id)
        open_group = functools.partial(
            open_replica_group,
            directory,
            group_id=group_id,
            node_id=self.config.node_id,
            voters=voters,
            learners=learners,
            apply=self.controller.apply_entries,
            send=self._router().sender(group_id),
            fsync=self.config.fsync,
            log_config=log_config,
            base_offset=base_offset,
            base_term=base_term,
            bootstrap=created,
            # A segment is served by its leader; the controller's followers apply
            # metadata their own clients wait for.
            broadcast_commit=partition is None,
        )
        try:
            # Creating or recovering a group's files (and fsyncing them) blocks: done in
            # worker threads, a batch at a time, the event loop keeps serving peers and
            # clients while thousands of groups open (a topic of 10,000 partitions, or a
            # restart), instead of going silent long enough for peers to drop it.
            group, storage = await self._opener.open(directory, open_group, order=group_id)
        finally:
            self._opening.discard(group_id)
        if partition is not None and not self._assigned_here(group_id):
            storage.log.close()  # moved away or dropped while it was opening
            shutil.rmtree(directory, ignore_errors=True)
            return None
        if partition is not None:
            replica = PartitionReplica(
                partition[0],
                partition[1],
                group,
                storage,
                self.broker.notify_data_changed,
                seal_bytes=self.config.segment_bytes,
                keys_required=functools.partial(self._compacted, partition[0]),
            )
            replica.on_sealed = lambda last_offset, term: self._nursery_start(
                self._link_successor, group_id, list(voters), last_offset, term
            )
            replica.on_nearly_full = lambda next_offset, term: self._nursery_start(
                self._prepare_successor, group_id, next_offset, term
            )
            replica.seal_through = self._promised_end(group_id)
            if self._is_prepared(group_id):
                # Made ahead of its seal: runs (and elects) now, joins the chain when linked.
                self._standby[group_id] = (partition, replica)
            else:
                self._enter_chain(group_id, partition, replica)
        group.observer = self.metrics
        scope = trio.CancelScope()
        hosted = self._hosted[group_id] = _Hosted(group, storage, scope, directory)
        group.on_input = self._awake.add
        group.on_leadership = self._membership_pending.add
        if created and self._awaits_first_leader(group, voters):
            # Not ticked until its leader's first message (which wakes it) or a patience
            # runs out: the first replica may open the group seconds after this node
            # when thousands open at once, and an election timeout run meanwhile would
            # start a needless election in the next term (and undo the first leader's
            # NOOP here). A first replica that is dead is replaced after the patience, or
            # as soon as the transport to it is down.
            self._dormant[group_id] = voters[0]
            self._nursery.start_soon(self._wake_if_leaderless, group_id, group)
        else:
            self._awake.add(group_id)
        await self._nursery.start(self._run_group, hosted)
        if self._hosted.get(group_id) is not hosted:
            # Dropped while it started (a successor made ahead that another one replaced,
            # both replayed from the controller log at start-up): its files are closed.
            return None
        if voters[0] == self.config.node_id and group.raw.role is not Role.LEADER:
            # A bootstrapped new group starts led. Otherwise the first replica stands at
            # once instead of waiting out an election timeout; pre-vote keeps this from
            # disturbing a group that already has a leader.
            group.campaign()
            if partition is not None and not storage.log.size_bytes:
                self._nursery.start_soon(self._campaign_until_led, group_id, group)
        return group

    @staticmethod
    def _awaits_first_leader(group: ReplicaGroup, voters: Sequence[int]) -> bool:
        """A bootstrapped follower of a new group: its vote given, nothing received yet."""
        raw = group.raw
        return raw.role is not Role.LEADER and raw.vote == voters[0] and not raw.log.last_index()

    async def _wake_if_leaderless(self, group_id: int, group: ReplicaGroup) -> None:
        await trio.sleep(FIRST_LEADER_PATIENCE_S)
        self._dormant.pop(group_id, None)
        if self._hosted.get(group_id) is not None and not group.leader_id:
            self._awake.add(group_id)

    async def _campaign_until_led(self, group_id: int, group: ReplicaGroup) -> None:
        """Stand again, briefly, while a new group has no leader.

        The other replicas open a new group when they apply the controller command, often
        after this one: a first pre-vote sent before they did is lost, and waiting out an
        election timeout (about a second) would stall the seal that links the group.
        """
        for _attempt in range(CAMPAIGN_RETRIES_MAX):
            await trio.sleep(CAMPAIGN_RETRY_S)
            if group.leader_id or self._hosted.get(group_id) is None:
                return
            group.campaign()

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
            hosted.closed.set()

    def _chain(self, partition: tuple[str, int]) -> PartitionChain:
        assert self.broker is not None
        chain = self.broker.partitions.get(partition)
        if chain is None:
            chain = PartitionChain(*partition)
            chain.cluster_start = functools.partial(self._partition_start, *partition)
            chain.answers_for_partition = functools.partial(self._head_in_chain, chain, *partition)
            chain.head_opening = functools.partial(self._head_opening, chain, *partition)
            self.broker.partitions[partition] = chain
        return chain

    async def _signal_when_joined(
        self, key: tuple[str, int], successor: SegmentInfo, signal: Any
    ) -> None:
        """Call `signal` once the successor heads this node's chain or a moment has passed
        (this node may not host it; then Metadata names its leader from the metadata)."""
        assert self.broker is not None
        with trio.move_on_after(SUCCESSOR_WAIT_S_MAX):
            while True:
                chain = self.broker.partitions.get(key)
                if chain is None or not chain.segments:
                    break
                if chain.head.group.group_id == successor.group_id:
                    break
                await trio.sleep(0.002)
        signal()

    def _is_prepared(self, group_id: int) -> bool:
        located = self.controller.state.segment_by_group(group_id)
        return located is not None and located[0].prepared is located[1]

    def _promised_end(self, group_id: int) -> int | None:
        """The offset a head must end by, once its successor was made ahead (else None)."""
        located = self.controller.state.segment_by_group(group_id)
        if located is None:
            return None
        partition, segment = located
        if partition.prepared is None or segment is not partition.head:
            return None
        return partition.prepared.base_offset - 1

    def _enter_chain(
        self, group_id: int, partition: tuple[str, int], replica: PartitionReplica
    ) -> None:
        chain = self._chain(partition)
        log = replica.storage.log
        if chain.segments and log.next_offset == log.start_offset and not replica.group.leader_id:
            # A new, empty head joins the chain once its group has a leader: until then
            # the sealed segment before it answers for the partition (its end is the
            # partition's end), rather than a head that refuses everything.
            replica.on_leader_known = functools.partial(self._join_chain, group_id, chain, replica)
        else:
            chain.add(replica)

    def _join_chain(self, group_id: int, chain: PartitionChain, replica: PartitionReplica) -> None:
        if group_id in self._hosted and self._assigned_here(group_id):
            chain.add(replica)

    def _head_in_chain(self, chain: PartitionChain, topic: str, index: int) -> bool:
        """Whether `chain` holds the partition's head segment, as the controller names it.

        A head placed here but not yet in the chain counts (`_head_opening`), so that
        Metadata names a leader right after a seal: librdkafka takes a partition without
        one as unknown, and its watermark query gives up on it until the application
        asks for Metadata again. The sealed segment before it stands in, only for answers
        that do not need the partition's end.
        """
        assert self.broker is not None
        head = self.broker.head_group(topic, index)
        if head is None or not chain.segments:
            return True
        return chain.head.group.group_id == head or self._assigned_here(head)

    def _head_opening(self, chain: PartitionChain, topic: str, index: int) -> bool:
        """Whether the partition's head is placed here but not in `chain` yet: its opening
        task has not run or not finished (a successor made at the seal, or a restart
        opening groups in batches), or it waits for its first leader (`_enter_chain`)."""
        assert self.broker is not None
        head = self.broker.head_group(topic, index)
        if head is None or not chain.segments:
            return False
        return chain.head.group.group_id != head and self._assigned_here(head)

    def _partition_start(self, topic: str, index: int) -> int | None:
        info = self.controller.state.topics.get(topic)
        if info is None or not 0 <= index < len(info.partitions):
            return None
        return info.partitions[index].segments[0].base_offset

    def _assigned_here(self, group_id: int) -> bool:
        located = self.controller.state.segment_by_group(group_id)
        return located is not None and self.config.node_id in located[1].replicas

    def _group_directory(self, group_id: int) -> pathlib.Path:
        return self.config.data_dir / "groups" / str(group_id)

    async def _drop(self, group_id: int) -> None:
        hosted = self._hosted.pop(group_id, None)
        if hosted is None:
            if group_id not in self._opening:
                # Never opened (moved away before its hosting task ran): files of an
                # earlier run may still be there. One being opened is deleted by `_host`
                # once the opener's thread is done with it.
                shutil.rmtree(self._group_directory(group_id), ignore_errors=True)
            return
        hosted.scope.cancel()
        # A cancelled group task does not stop at once: a hard-state write or fsync under
        # way in a worker thread finishes first, and its Ready loop runs on to its next
        # checkpoint, which may write the hard state again. Deleting the directory before
        # then crashed the node (FileNotFoundError on hardstate.tmp).
        with trio.move_on_after(DROP_CLOSE_WAIT_S):
            await hosted.closed.wait()
        if not hosted.closed.is_set():
            logs.event(
                "group_drop_slow",
                logging.WARNING,
                group=group_id,
                waited_s=DROP_CLOSE_WAIT_S,
                note="its task has not closed its files yet; they are deleted once it has",
            )
            await hosted.closed.wait()
        shutil.rmtree(hosted.directory, ignore_errors=True)

    def _nursery_start(self, function: Any, *arguments: Any) -> None:
        assert self._nursery is not None
        self._nursery.start_soon(function, *arguments)

    async def _link_successor(
        self, group_id: int, replicas: list[int], last_offset: int, term: int
    ) -> None:
        """Ask the controller to record the seal and create the next segment's group.

        Until it is done: a sealed head with no successor takes no more writes, so a
        failure (the controller leader just died) is retried for as long as this node
        leads the sealed group; a new leader of it starts its own attempts.
        """
        if group_id in self._linking:
            return
        self._linking.add(group_id)
        delay_s = LINK_RETRY_FIRST_S
        try:
            while True:
                located = self.controller.state.segment_by_group(group_id)
                hosted = self._hosted.get(group_id)
                if located is None or located[1].sealed:
                    return  # linked already, or dropped with its topic
                if hosted is None or not hosted.group.is_leader:
                    return
                replicas = list(located[1].replicas)  # re-replication may have changed them
                rotated = replicas[1:] + replicas[:1]  # spread leadership: the first stands
                command = {
                    "type": "seal_and_link",
                    "group_id": group_id,
                    "last_offset": last_offset,
                    "next_replicas": rotated,
                    "base_term": term,
                }
                try:
                    await self.controller.execute(command, FORWARD_TIMEOUT_S)
                    return
                except MetadataError as error:
                    logs.event(
                        "segment_link_retry",
                        logging.INFO,
                        group=group_id,
                        reason=str(error),
                        retry_in_s=delay_s,
                    )
                await trio.sleep(delay_s)
                delay_s = min(2 * delay_s, LINK_RETRY_MAX_S)
        finally:
            self._linking.discard(group_id)

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

    async def _balance_forever(self) -> None:
        """Hand led partitions back to their preferred replicas (see `balance.py`)."""
        assert self.broker is not None and self.transfers is not None
        while True:
            await trio.sleep(self.config.leader_balance_interval_ms / 1000)
            heads = []
            for chain in list(self.broker.partitions.values()):
                if not chain.segments or not chain.group.is_leader:
                    continue
                group = chain.group
                located = self.controller.state.segment_by_group(group.group_id)
                if located is None or not located[1].replicas:
                    continue
                preferred = located[1].replicas[0]
                # Led by its preferred replica already (most heads): nothing to measure.
                ready = preferred != self.config.node_id and preferred_ready(
                    group.raw.statistics(), preferred
                )
                heads.append(LedHead(group.group_id, preferred, ready))
            for group_id, target in balance_moves(self.config.node_id, heads):
                request = TransferRequest(group_id, target, BALANCE_TRANSFER_TIMEOUT_S)
                try:
                    await self.transfers.transfer_local(request)
                except TransferError as error:
                    logs.event(
                        "leader_balance_failed", group=group_id, target=target, reason=str(error)
                    )
                    continue
                logs.event("leader_balanced", group=group_id, leader=target)

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
                if not cleanup_policy(dict(topic.configs)).delete:
                    continue  # cleanup.policy=compact alone: nothing is deleted by age or size
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

    def _compacted(self, topic_name: str) -> bool:
        """Whether a topic is compacted (its records must carry keys)."""
        topic = self.controller.state.topics.get(topic_name)
        return topic is not None and "compact" in (topic.config(CLEANUP_POLICY) or "")

    async def _compaction_forever(self) -> None:
        """Compact the sealed segments of compacted topics hosted here, once dirty enough.

        Every replica compacts its own copy (sealed segments are identical on every
        replica), so this runs for every hosted partition, led here or not, and sends
        nothing to anyone (`raftlog.partition.compaction`).
        """
        assert self.broker is not None
        states: dict[tuple[str, int], CompactionState] = {}
        while True:
            await trio.sleep(self.config.compaction_check_ms / 1000)
            policies: dict[str, CleanupPolicy] = {}  # per topic, not per partition
            for key, chain in list(self.broker.partitions.items()):
                topic = self.controller.state.topics.get(key[0])
                if topic is None or key[1] >= len(topic.partitions):
                    states.pop(key, None)
                    continue
                policy = policies.get(key[0])
                if policy is None:
                    policy = policies[key[0]] = cleanup_policy(dict(topic.configs))
                state = states.setdefault(key, CompactionState())
                now_ms = int(time.time() * 1000)
                if not needs_pass(chain, policy, state, now_ms):
                    continue
                try:
                    rewritten = await compact_partition(
                        chain,
                        policy,
                        state,
                        partition_start_offset=topic.partitions[key[1]].segments[0].base_offset,
                        now_ms=now_ms,
                    )
                except (CompactionError, StorageError) as error:
                    logs.event(
                        "compaction_failed",
                        logging.WARNING,
                        topic=key[0],
                        partition=key[1],
                        reason=str(error),
                    )
                    continue
                for done in rewritten:
                    logs.event(
                        "compacted",
                        topic=key[0],
                        partition=key[1],
                        segment=done.group_id,
                        file=done.file_base_offset,
                        bytes_before=done.bytes_before,
                        bytes_after=done.bytes_after,
                        records_before=done.records_before,
                        records_after=done.records_after,
                    )

    def _router(self) -> RaftRouter:
        assert self.router is not None, "the router exists once run() has started"
        return self.router

    def _lookup(self, group_id: int) -> ReplicaGroup | None:
        hosted = self._hosted.get(group_id)
        return None if hosted is None else hosted.group

    def _controller_members(self) -> tuple[list[int], list[int]]:
        """Voters and learners of the controller group: the first `controller_nodes` members
        (by id) vote; the rest receive the metadata log without voting, so a larger cluster
        keeps a small, fast controller quorum that loses no majority when spare nodes die.
        A node that joined by seed opens the group as the cluster's first members did (the
        seed told it how), and becomes a learner when the controller leader adds it."""
        if self._controller_bootstrap is None:
            if not self.config.peers:
                self._controller_bootstrap = ([self.config.node_id], [])
            else:
                members = sorted(peer.node_id for peer in self.config.peers)
                size = self.config.controller_nodes
                self._controller_bootstrap = (members[:size], members[size:])
        return self._controller_bootstrap

    def _static_addresses(self) -> dict[int, Address]:
        return {peer.node_id: (peer.address.host, peer.address.port) for peer in self.config.peers}

    async def _start_transport(self, nursery: trio.Nursery) -> None:
        peers = {peer.node_id: peer.address for peer in self.config.peers}
        own = peers.pop(self.config.node_id, None)
        if own is None and not self.config.seeds:
            raise ClusterConfigError(
                f"--peers must list this node (id {self.config.node_id}) with its internal "
                "address, or --seeds must name members to join through"
            )
        if own is None:
            own = self.config.internal_addr
        self._memory = address_book.load(self.config.data_dir)
        if self._memory is not None and not self.joins_by_seed:
            raise ClusterConfigError(
                f"{self.config.data_dir} joined its cluster by seed ({address_book.CLUSTER_FILE}):"
                " start it with --seeds, without an entry for itself in --peers"
            )
        contexts = internal_tls_contexts(self.config)
        server_context, client_context = contexts if contexts is not None else (None, None)
        remembered = {} if self._memory is None else self._memory.addresses()
        self.transport = Transport(
            self.config.node_id,
            own.host,
            own.port,
            self.router,
            peer_addresses=merge_addresses(
                own_id=self.config.node_id,
                static=self._static_addresses(),
                learned={},
                remembered=remembered,
            ),
            server_ssl_context=server_context,
            client_ssl_context=client_context,
        )
        self.router.transport = self.transport
        await nursery.start(self.transport.run)
        self._internal_address = (own.host, own.port or self.transport.bound_port or 0)

    async def _join_by_seed(self) -> None:
        """Be registered through a seed or a remembered member; learn the cluster's shape.

        Raises JoinRefused or JoinFailed (with every address tried and why) instead of
        starting a node that is not part of the cluster.
        """
        assert self.transport is not None and self._internal_address is not None
        config = self.config
        memory = self._memory
        if memory is None and (config.data_dir / "controller").exists():
            raise JoinRefused(
                f"{config.data_dir} holds a controller log but no {address_book.CLUSTER_FILE}: "
                "it belongs to a node started with --peers (or alone), not one that joined by seed"
            )
        if memory is not None and memory.node_id != config.node_id:
            raise JoinRefused(
                f"{config.data_dir} belongs to node {memory.node_id}, not node {config.node_id}"
            )
        advertised = config.advertised
        request = JoinRequest(
            config.node_id,
            self._internal_address,
            (advertised.host, advertised.port or self.kafka_port or 0),
            rejoin=memory is not None,
            cluster_id=None if memory is None else memory.cluster_id,
        )
        # Members it remembers, and any the operator listed in --peers, are asked by id.
        known = {*self._static_addresses(), *({} if memory is None else memory.addresses())}
        answer = await join_cluster(
            self.transport,
            request,
            config.seeds,
            sorted(known - {config.node_id}),
            config.join_timeout_ms / 1000,
            reachable_suffices=memory is not None,
        )
        if answer is None:
            assert memory is not None
            # Members answered but none could register us now: start from what we
            # remember (the addresses are in the transport already); `_register` updates
            # the registry once the controller group has a leader again.
            self._controller_bootstrap = (
                list(memory.controller_voters),
                list(memory.controller_learners),
            )
            return
        self._check_same_cluster(answer)
        bootstrap = (list(answer.controller_voters), list(answer.controller_learners))
        self._controller_bootstrap = bootstrap
        addresses = merge_addresses(
            own_id=config.node_id,
            static=self._static_addresses(),
            learned=answer.members,
            remembered={} if memory is None else memory.addresses(),
        )
        for node, (host, port) in addresses.items():
            self.transport.set_peer_address(node, host, port)
        self._memory = ClusterMemory(
            config.node_id,
            answer.cluster_id or (None if memory is None else memory.cluster_id),
            tuple(bootstrap[0]),
            tuple(bootstrap[1]),
            (),
        ).with_members({**answer.members, config.node_id: self._internal_address})
        address_book.save(config.data_dir, self._memory)

    def _check_same_cluster(self, answer: JoinAnswer) -> None:
        memory = self._memory
        if memory is None:
            return
        if memory.cluster_id and answer.cluster_id and memory.cluster_id != answer.cluster_id:
            raise JoinRefused(
                f"{self.config.data_dir} belongs to cluster {memory.cluster_id}, "
                f"the seed to cluster {answer.cluster_id}"
            )
        if (memory.controller_voters, memory.controller_learners) != (
            answer.controller_voters,
            answer.controller_learners,
        ):
            raise JoinRefused(
                f"{self.config.data_dir} remembers a controller group started as voters "
                f"{list(memory.controller_voters)}, the seed's started as "
                f"{list(answer.controller_voters)}: another cluster"
            )

    async def _serve_join(self, from_peer: int, payload: bytes) -> bytes:
        """A node asks to join through this one: have the controller register it."""
        try:
            request = JoinRequest.decode(payload)
        except ValueError as error:
            return refusal(f"malformed join request: {error}")
        if request.node_id != from_peer:
            return refusal(f"node {from_peer} asked to join as node {request.node_id}")
        listed = self._static_addresses().get(request.node_id)
        if listed is not None and listed != request.internal:
            # Perhaps not registered yet (that member has not started): the registry
            # would not catch it, this node's --peers does.
            return refusal(
                f"node id {request.node_id} is listed in --peers at {listed[0]}:{listed[1]}"
            )
        bootstrap = self._controller_bootstrap
        if self.controller.group is None or bootstrap is None:
            return retry_later(f"node {self.config.node_id} is still starting")
        try:
            await self.controller.execute(request.command(), FORWARD_TIMEOUT_S)
        except ControllerUnavailable as error:
            return retry_later(str(error))
        except MetadataError as error:
            logs.event("join_refused", logging.WARNING, node=request.node_id, reason=str(error))
            return refusal(str(error))
        state = self.controller.state
        members = {
            node: (info.internal_host, info.internal_port) for node, info in state.nodes.items()
        }
        answer = JoinAnswer(state.cluster_id, members, tuple(bootstrap[0]), tuple(bootstrap[1]))
        return answer.encode()

    def _learn_node(self, node: NodeInfo) -> None:
        """A member registered (or re-registered): dial it there; remember it if joined."""
        if node.node_id == self.config.node_id:
            return
        address = (node.internal_host, node.internal_port)
        static = self._static_addresses()
        if self.transport is not None and node.node_id not in static:
            # --peers entries stay the operator's word: a stale registration replayed from
            # the log must not send a static member's traffic to an old address.
            self.transport.set_peer_address(node.node_id, *address)
        memory = self._memory
        if memory is not None and memory.addresses().get(node.node_id) != address:
            self._memory = memory.with_members({**memory.addresses(), node.node_id: address})
            address_book.save(self.config.data_dir, self._memory)

    def _learn_cluster_id(self, cluster_id: str) -> None:
        memory = self._memory
        if memory is not None and memory.cluster_id != cluster_id:
            self._memory = attrs.evolve(memory, cluster_id=cluster_id)
            address_book.save(self.config.data_dir, self._memory)

    async def _forward(self, leader_id: int, command: dict[str, Any]) -> dict[str, Any]:
        assert self.transport is not None
        try:
            reply = await self.transport.call(
                leader_id, CONTROLLER_EXECUTE, json.dumps(command).encode(), FORWARD_TIMEOUT_S
            )
        except PeerUnavailable as error:
            raise NoControllerLeader(f"controller leader unreachable: {error}") from error
        except TransportError as error:
            # The call may have reached the leader and run: not a case for a retry.
            raise ControllerUnavailable(
                NOT_CONTROLLER, f"controller leader did not answer: {error}"
            ) from error
        result: dict[str, Any] = json.loads(reply)
        return result

    async def _ask_leaders(self, node: int, groups: list[int]) -> dict[int, tuple[int, int]]:
        assert self.transport is not None
        try:
            reply = await self.transport.call(
                node, GROUP_LEADERS, json.dumps(groups).encode(), PING_TIMEOUT_S
            )
        except (TransportError, trio.TooSlowError):
            return {}
        answers = json.loads(reply)
        return {int(group): (int(found[0]), int(found[1])) for group, found in answers.items()}

    async def transfer_leader(
        self, topic: str, partition: int, target: int, timeout_s: float
    ) -> dict[str, Any]:
        """Move a partition's leadership to replica `target`; raises TransferError."""
        _check_transfer_timeout(timeout_s)
        group_id, replicas = head_group(self.controller.state, topic, partition)
        if target not in replicas:
            raise TransferError(400, f"node {target} holds no replica of {topic}-{partition}")
        answer = await self._transfers().transfer(
            TransferRequest(group_id, target, timeout_s), replicas
        )
        return {"topic": topic, "partition": partition, **answer}

    async def transfer_controller(self, target: int, timeout_s: float) -> dict[str, Any]:
        """Move the controller group's leadership to voter `target`; raises TransferError."""
        _check_transfer_timeout(timeout_s)
        voters = self._transfer_replicas(CONTROLLER_GROUP_ID)
        if target not in voters:
            raise TransferError(
                400, f"node {target} is not a controller voter (voters: {list(voters)})"
            )
        return await self._transfers().transfer(
            TransferRequest(CONTROLLER_GROUP_ID, target, timeout_s), voters
        )

    async def decommission(self, node_id: int) -> dict[str, Any]:
        """Start draining `node_id`; raises MetadataError (ControllerUnavailable: 503)."""
        command = {"type": "decommission_node", "node_id": node_id}
        await self.controller.execute(command, FORWARD_TIMEOUT_S)
        state = self.controller.state
        return {"node_id": node_id, "replicas": state.replica_count(node_id)}

    def _transfers(self) -> LeadershipTransfers:
        if self.transfers is None:
            raise TransferError(503, "the node is still starting")
        return self.transfers

    def _transfer_replicas(self, group_id: int) -> tuple[int, ...]:
        """The nodes that may lead `group_id`: a segment's replicas, the controller's voters."""
        if group_id == CONTROLLER_GROUP_ID:
            group = self.controller.group
            if group is None:
                raise TransferError(503, "the node is still starting")
            return tuple(sorted(group.raw.membership.voters))
        located = self.controller.state.segment_by_group(group_id)
        if located is None:
            raise TransferError(404, f"no segment group {group_id}")
        return tuple(located[1].replicas)

    async def _serve_transfer(self, payload: bytes) -> bytes:
        try:
            request = TransferRequest.decode(payload)
            replicas = self._transfer_replicas(request.group_id)
            answer = await self._transfers().transfer(request, replicas)
        except TransferError as error:
            answer = {"error": str(error), "status": error.status}
        return json.dumps(answer).encode()

    async def _forward_transfer(self, node: int, request: TransferRequest) -> dict[str, Any]:
        assert self.transport is not None
        reply = await self.transport.call(
            node, TRANSFER_RPC, request.encode(), request.timeout_s + FORWARD_SLACK_S
        )
        answer = json.loads(reply)
        if "error" in answer:
            raise TransferError(int(answer.get("status", 500)), str(answer["error"]))
        return dict(answer)

    def _serve_segment_read(self, payload: bytes) -> bytes:
        assert self.broker is not None
        chains = self.broker.partitions
        # The raw chain: a node that holds sealed segments but not the head serves them.
        return sealed_reads.serve(
            self.controller.state, lambda topic, index: chains.get((topic, index)), payload
        )

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
            if unreachable:
                # Quiescent followers of a leader we cannot reach must tick to elect anew.
                self._awake.update(
                    group_id
                    for group_id, hosted in self._hosted.items()
                    if hosted.group.leader_id in unreachable
                )
                # So must followers of new groups whose first replica is cut off.
                for group_id, first in list(self._dormant.items()):
                    if first in unreachable:
                        del self._dormant[group_id]
                        self._awake.add(group_id)
            for group_id in list(self._awake):
                hosted = self._hosted.get(group_id)
                if hosted is None:
                    self._awake.discard(group_id)
                    continue
                group = hosted.group
                if group.raw.quiescent() and group.leader_id not in unreachable:
                    self._awake.discard(group_id)
                    continue
                group.tick()

    def _unreachable_peers(self) -> frozenset[int]:
        if self.transport is None:
            return frozenset()
        peers = self.transport.statistics().peers
        return frozenset(node for node, peer in peers.items() if not peer.connected)

    def hosted_groups(self) -> int:
        return len(self._hosted)

    def replica_groups(self) -> list[ReplicaGroup]:
        """Every Raft group hosted here (for the admin view and metrics)."""
        return [hosted.group for hosted in self._hosted.values()]

    def hosted_group(self, group_id: int) -> ReplicaGroup | None:
        return self._lookup(group_id)

    def quiescent_groups(self) -> int:
        """How many hosted groups are quiescent now (for statistics and tests)."""
        return sum(1 for hosted in self._hosted.values() if hosted.group.raw.quiescent())

    async def _wait_caught_up(self, group: ReplicaGroup) -> None:
        """Until the controller group has a leader and this node applied what it committed.

        The bound is the leader's commit index, asked for with ReadIndex, not this
        replica's own: after a power cut that is the commit index last made durable, and
        a leader's heartbeats raise it only as far as this replica's log is known to
        match. A node that served from the state so reached named as a partition's head a
        segment sealed and succeeded long before, and answered where the partition ends
        from it: consumers then sought back over records they had read.
        """
        while True:
            index = None
            if group.leader_id:
                # No leader after all, too many reads, or no answer: ask again.
                with (
                    trio.move_on_after(READ_INDEX_WAIT_S),
                    contextlib.suppress(ProposalDropped, ReadIndexLimitExceeded),
                ):
                    index = await group.read_index()
            if index is None:
                await trio.sleep(0.005)
                continue
            while group.applied_index < index:
                await trio.sleep(0.005)
            return

    async def _wait_partitions_led(self) -> None:
        """Give the partitions whose head is placed here a moment to open and find a leader
        (clients retry those that have not)."""
        assert self.broker is not None
        topics = list(self.controller.state.topics.values())
        await self.broker.wait_heads_led(topics, PARTITION_LEADERS_WAIT_S)

    async def _register(self) -> None:
        config = self.config
        advertised = config.advertised
        if advertised.port == 0:
            advertised = attrs.evolve(advertised, port=self.kafka_port or 0)
        # In a cluster this node's internal address is its own entry in --peers, or (joined
        # by seed) --internal-addr as bound.
        internal_host, internal_port = self._internal_address or (
            config.internal_addr.host,
            config.internal_addr.port,
        )
        known = self.controller.state.nodes.get(config.node_id)
        wanted = {
            "type": "register_node",
            "node_id": config.node_id,
            "kafka_host": advertised.host,
            "kafka_port": advertised.port,
            "internal_host": internal_host,
            "internal_port": internal_port,
        }
        current = None if known is None else attrs.asdict(known)
        if current != {key: value for key, value in wanted.items() if key != "type"}:
            await self.controller.execute(wanted, STARTUP_TIMEOUT_S)

    def _on_metadata(self, command: dict[str, Any], result: Any) -> None:
        """Open or drop the groups this node hosts as topics come and go."""
        assert self._nursery is not None and self.broker is not None
        if command["type"] in ("register_node", "join_node"):
            self._learn_node(result)
        elif command["type"] == "init_cluster":
            self._learn_cluster_id(result)
        elif command["type"] == "create_topic":
            topic: TopicInfo = result
            for partition in topic.partitions:
                head = partition.head
                if self.config.node_id in head.replicas:
                    directory = self._group_directory(head.group_id)
                    self._nursery.start_soon(
                        functools.partial(
                            self._host,
                            head.group_id,
                            directory,
                            (topic.name, partition.index),
                            head.replicas,
                            created=True,
                        )
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
                prepared=successor.group_id in self._standby,
            )
            key = (partition_info.topic, partition_info.index)
            chain = self.broker.partitions.get(key)
            sealed_here = [] if chain is None else chain.segments
            for sealed in sealed_here:
                if sealed.group.group_id == int(command["group_id"]):
                    # Produces refused while it sealed answer once the new head is known.
                    self._nursery.start_soon(
                        self._signal_when_joined, key, successor, sealed.successor_linked.set
                    )
            for group_id, (standby_key, replica) in list(self._standby.items()):
                if standby_key != key:
                    continue
                del self._standby[group_id]
                if group_id == successor.group_id:
                    self._enter_chain(group_id, key, replica)
                else:
                    self._nursery.start_soon(self._drop, group_id)  # made ahead, not used
            if self.config.node_id in successor.replicas:
                directory = self._group_directory(successor.group_id)
                self._nursery.start_soon(
                    functools.partial(
                        self._host,
                        successor.group_id,
                        directory,
                        (partition_info.topic, partition_info.index),
                        successor.replicas,
                        base_offset=successor.base_offset,
                        base_term=int(command["base_term"]),
                        created=True,
                    )
                )
        elif command["type"] == "prepare_successor":
            self._on_successor_prepared(command, result)
        elif command["type"] == "drop_segments":
            partition_info = self.controller.state.topics[command["topic"]].partitions[
                int(command["partition"])
            ]
            kept = {segment.group_id for segment in partition_info.segments}
            key = (partition_info.topic, partition_info.index)
            chain = self.broker.partitions.get(key)
            if chain is not None:
                for segment in list(chain.segments):
                    if segment.group.group_id not in kept:
                        self._leave_chain(key, segment.group.group_id)
                        self._nursery.start_soon(self._drop, segment.group.group_id)
            logs.event(
                "segments_dropped",
                topic=partition_info.topic,
                partition=partition_info.index,
                below_offset=command["below_offset"],
                count=result,
            )
        elif command["type"] == "replace_replica":
            self._on_replica_replaced(command, result)
        elif command["type"] == "delete_topic":
            topic = result
            for partition in topic.partitions:
                self.broker.partitions.pop((topic.name, partition.index), None)
                prepared = () if partition.prepared is None else (partition.prepared,)
                for segment in (*partition.segments, *prepared):
                    self._standby.pop(segment.group_id, None)
                    self._nursery.start_soon(self._drop, segment.group_id)
            self._nursery.start_soon(self.broker.coordinator.forget_topic, topic.name)
            logs.event("topic_deleted", logging.INFO, topic=topic.name)

    def _on_successor_prepared(self, command: dict[str, Any], prepared: SegmentInfo) -> None:
        """Open a successor made ahead (if placed here); bound the head by where it starts."""
        assert self._nursery is not None and self.broker is not None
        located = self.controller.state.segment_by_group(prepared.group_id)
        assert located is not None
        partition_info, _segment = located
        key = (partition_info.topic, partition_info.index)
        logs.event(
            "segment_prepared",
            topic=key[0],
            partition=key[1],
            head_group=command["group_id"],
            group=prepared.group_id,
            base_offset=prepared.base_offset,
            replicas=",".join(str(node) for node in prepared.replicas),
        )
        chain = self.broker.partitions.get(key)
        for replica in [] if chain is None else chain.segments:
            if replica.group.group_id == int(command["group_id"]):
                replica.seal_through = prepared.base_offset - 1
        if self.config.node_id in prepared.replicas:
            self._nursery.start_soon(
                functools.partial(
                    self._host,
                    prepared.group_id,
                    self._group_directory(prepared.group_id),
                    key,
                    prepared.replicas,
                    base_offset=prepared.base_offset,
                    base_term=int(command["base_term"]),
                    created=True,
                )
            )

    async def _prepare_successor(self, group_id: int, next_offset: int, term: int) -> None:
        """On the head's leader, near the head's limit: have its successor made now.

        The successor starts a reserve of offsets past the head's end so far (a third of
        what the head holds, at least `PREPARE_RESERVE_MIN_OFFSETS`); the head promises to
        seal by then, so a seal never waits for a group to be created and elected.
        """
        located = self.controller.state.segment_by_group(group_id)
        hosted = self._hosted.get(group_id)
        if located is None or hosted is None or not hosted.group.is_leader:
            return
        partition, segment = located
        if partition.prepared is not None or segment.sealed or segment is not partition.head:
            return
        reserve = max(PREPARE_RESERVE_MIN_OFFSETS, (next_offset - segment.base_offset) // 3)
        # The head's own nodes, rotated so leadership moves on (as at a seal). Not placed by
        # load: a fetch goes to the head's leader, which must hold the sealed segments too,
        # until reads of sealed segments are forwarded to the nodes that hold them.
        replicas = [*segment.replicas[1:], *segment.replicas[:1]]
        command = {
            "type": "prepare_successor",
            "group_id": group_id,
            "base_offset": next_offset + reserve + SEAL_SLACK_OFFSETS,
            "replicas": replicas,
            "base_term": term,
        }
        try:
            await self.controller.execute(command, FORWARD_TIMEOUT_S)
        except MetadataError as error:
            # Nothing lost: the seal then creates a fresh successor, as it always could.
            logs.event("segment_prepare_skipped", logging.INFO, group=group_id, reason=str(error))

    def _on_replica_replaced(self, command: dict[str, Any], segment: SegmentInfo) -> None:
        """Open the group on the node that takes the replica; drop it on the one that left."""
        assert self._nursery is not None and self.broker is not None
        located = self.controller.state.segment_by_group(segment.group_id)
        assert located is not None
        partition_info, _segment = located
        key = (partition_info.topic, partition_info.index)
        new, dead = int(command["new"]), int(command["dead"])
        self._membership_pending.add(segment.group_id)
        logs.event(
            "replica_reassigned",
            topic=key[0],
            partition=key[1],
            group=segment.group_id,
            dead=dead,
            new=new,
        )
        if self.config.node_id == new and segment.group_id not in self._hosted:
            self._nursery.start_soon(
                functools.partial(
                    self._host,
                    segment.group_id,
                    self._group_directory(segment.group_id),
                    key,
                    segment.initial_replicas,
                    base_offset=segment.base_offset,
                )
            )
        elif self.config.node_id == dead:
            self._leave_chain(key, segment.group_id)
            self._nursery.start_soon(self._drop, segment.group_id)

    def _leave_chain(self, key: tuple[str, int], group_id: int) -> None:
        """Take a segment this node no longer hosts out of its partition's chain; a chain
        left empty (every replica of the partition moved elsewhere) is forgotten, so the
        node answers for that partition as any non-hosting node does."""
        chain = self.broker.partitions.get(key)
        if chain is None:
            return
        chain.remove(group_id)
        if not chain.segments:
            del self.broker.partitions[key]

    # -- re-replication ----------------------------------------------------------------

    async def _liveness_forever(self) -> None:
        """On the controller leader: ping every node; move the replicas of the dead ones.

        Liveness is the controller leader's own view, started afresh whenever this node
        becomes leader, so a new leader waits a whole timeout before it declares anyone dead.
        """
        liveness: Liveness | None = None
        while True:
            await trio.sleep(LIVENESS_INTERVAL_S)
            group = self.controller.group
            if group is None or not group.is_leader:
                liveness = None
                continue
            if liveness is None:
                liveness = Liveness(self.config.node_dead_timeout_ms / 1000)
            now_s = trio.current_time()
            others = [node for node in self.controller.state.nodes if node != self.config.node_id]
            for node in others:
                liveness.watch(node, now_s)
            async with trio.open_nursery() as pings:
                for node in others:
                    pings.start_soon(self._ping, liveness, node)
            leaving = self.controller.state.decommissioned
            self._replace_dead_controllers(
                group, sorted({*liveness.dead(trio.current_time()), *leaving})
            )
            await self._replace_dead(liveness, trio.current_time())
            await self._forget_drained(group)

    async def _ping(self, liveness: Liveness, node: int) -> None:
        assert self.transport is not None
        try:
            await self.transport.call(node, NODE_PING, b"", PING_TIMEOUT_S)
        except (TransportError, trio.TooSlowError):
            return
        liveness.answered(node, trio.current_time())

    def _replace_dead_controllers(self, group: ReplicaGroup, dead: list[int]) -> None:
        """Promote live learners of the controller group in place of dead voters."""
        membership = group.raw.membership
        registered = {*self.controller.state.nodes, *(peer.node_id for peer in self.config.peers)}
        voters, learners = controller_target(
            membership,
            dead,
            min(self.config.controller_nodes, len(membership.members())),
            registered,
        )
        if membership.voters == voters and membership.learners == learners:
            return
        statistics = group.raw.statistics()
        change = next_change(
            voters, membership, statistics.progress, statistics.commit_index, learners
        )
        if change is not None:
            self._propose_change(CONTROLLER_GROUP_ID, group, change)

    def _propose_change(self, group_id: int, group: ReplicaGroup, change: ConfigChange) -> None:
        try:
            group.propose(encode_config_change(change), EntryKind.CONFIG_CHANGE)
        except ProposalDropped as error:
            logs.event(
                "replica_change_deferred",
                logging.DEBUG,
                group=group_id,
                change=change.kind.name.lower(),
                reason=str(error),
            )
            return
        logs.event(
            "replica_change_proposed",
            group=group_id,
            change=change.kind.name.lower(),
            node=change.node_id,
        )

    async def _forget_drained(self, group: ReplicaGroup) -> None:
        """Drop decommissioned nodes that hold nothing any more from the registry."""
        state = self.controller.state
        for node in sorted(state.decommissioned):
            if state.replica_count(node) or node in group.raw.membership.voters:
                continue
            try:
                command = {"type": "forget_node", "node_id": node}
                await self.controller.execute(command, FORWARD_TIMEOUT_S)
            except MetadataError as error:
                logs.event("node_forget_skipped", logging.INFO, node=node, reason=str(error))
                continue
            logs.event("node_forgotten", node=node)

    async def _replace_dead(self, liveness: Liveness, now_s: float) -> None:
        """Move the replicas of dead and of decommissioned nodes to active live ones."""
        leaving = self.controller.state.decommissioned
        dead = sorted({*liveness.dead(now_s), *leaving})
        if not dead:
            return
        alive = [
            node for node in (*liveness.alive(now_s), self.config.node_id) if node not in leaving
        ]
        load: dict[int, int] = {}
        moves: list[dict[str, Any]] = []
        for topic in self.controller.state.topics.values():
            for partition in topic.partitions:
                for segment in partition.segments:
                    for node in segment.replicas:
                        load[node] = load.get(node, 0) + 1
        for topic in self.controller.state.topics.values():
            for partition in topic.partitions:
                # One newcomer per dead node per partition, for all its segments: a fetch
                # is served by the head's leader, which must hold the sealed segments too.
                chosen: dict[int, int | None] = {}
                for segment in partition.segments:
                    for node in sorted(set(dead) & set(segment.replicas)):
                        if node not in chosen:
                            chosen[node] = choose_replacement(segment.replicas, alive, load)
                        new = chosen[node]
                        if new is None or new in segment.replicas:
                            continue  # no spare node: the segment runs under-replicated
                        load[new] = load.get(new, 0) + 1
                        moves.append(
                            {
                                "type": "replace_replica",
                                "group_id": segment.group_id,
                                "dead": node,
                                "new": new,
                            }
                        )
                        break  # one move per segment per pass: the next pass sees the result
        for command in moves[:REPLACEMENTS_PER_PASS_MAX]:
            try:
                await self.controller.execute(command, FORWARD_TIMEOUT_S)
            except MetadataError as error:
                logs.event("replica_move_skipped", logging.INFO, reason=str(error))
                return

    async def _reconcile_forever(self) -> None:
        """On each group's leader: take the Raft membership to the replicas metadata names."""
        while True:
            await trio.sleep(RECONCILE_INTERVAL_S)
            for group_id in list(self._membership_pending):
                hosted = self._hosted.get(group_id)
                located = self.controller.state.segment_by_group(group_id)
                if hosted is None or located is None or not hosted.group.is_leader:
                    self._membership_pending.discard(group_id)  # a new leader is told anew
                    continue
                group = hosted.group
                desired = frozenset(located[1].replicas)
                membership = group.raw.membership
                if membership.voters == desired and not membership.learners:
                    self._membership_pending.discard(group_id)
                    continue
                statistics = group.raw.statistics()
                change = next_change(
                    desired, membership, statistics.progress, statistics.commit_index
                )
                if change is not None:
                    self._propose_change(group_id, group, change)
