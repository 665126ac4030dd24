"""A deterministic simulated cluster of one Raft group.

Everything comes from one seed: each node's randomness, and (in the runner) the schedule.
Durable storage is a ``MemoryStorage`` per node that only ever holds what a Ready told the
node to persist, and a crash throws away the ``RawNode`` and everything it had not yet
handed out in a Ready: restart rebuilds it from the storage alone.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import attrs

from raftlog.invariant import invariant
from raftlog.raft.bootstrap import fresh_group_hard_state
from raftlog.raft.codec import decode, encode
from raftlog.raft.config import RaftConfig
from raftlog.raft.entry import EntryKind
from raftlog.raft.errors import ProposalDropped, RaftError
from raftlog.raft.membership import (
    ConfigChange,
    ConfigChangeKind,
    InvalidConfigChange,
    Membership,
)
from raftlog.raft.messages import Message
from raftlog.raft.node import RawNode
from raftlog.raft.ready import Ready, Role
from raftlog.raft.storage import MemoryStorage
from raftlog.sim.checker import SafetyChecker
from raftlog.sim.network import SimNetwork
from raftlog.sim.state_machine import DigestStateMachine

FIRST_VOTER = 1
"""The node a fresh bootstrap makes leader of term 1."""


@attrs.frozen
class ClusterOptions:
    """The shape of a simulated cluster; the node config bounds are kept small on purpose
    so that short runs already exercise windows, chunking and back-off."""

    voter_count: int = 3
    spare_count: int = 2
    """Nodes that start outside the group, to be added as learners."""
    election_tick: int = 10
    heartbeat_tick: int = 1
    max_size_per_message_bytes: int = 256
    max_inflight_messages: int = 4
    max_inflight_bytes: int = 1024
    snapshot_chunk_size_bytes: int = 8
    pre_vote: bool = True
    check_quorum: bool = True
    test_bug: str | None = None
    full_check_every_steps: int = 64
    wire_codec: bool = False
    """Send every delivered message through ``encode``/``decode`` (tests the codec on real
    traffic)."""
    broadcast_commit: bool = True
    """``RaftConfig.broadcast_commit``: False leaves followers to learn a commit from the
    next append or heartbeat, as raftlog's partition segments do."""
    fresh_bootstrap: bool = False
    """Create the group as raftlog creates new segment groups (``raftlog.raft.bootstrap``):
    every voter starts with term 1 and its vote given to node 1, which leads term 1 on its
    first start without an election."""


@attrs.define(eq=False)
class SimNode:
    node_id: int
    storage: MemoryStorage
    raw: RawNode | None
    state_machine: DigestStateMachine
    incarnation: int = 0


@attrs.define(eq=False)
class SimCluster:
    seed: int
    options: ClusterOptions
    nodes: dict[int, SimNode]
    network: SimNetwork
    checker: SafetyChecker
    steps: int = 0
    proposals: dict[bytes, int] = attrs.field(factory=dict)
    """Payload -> step at which a leader accepted it."""
    committed_payloads: set[bytes] = attrs.field(factory=set)
    read_counter: int = 0
    proposal_counter: int = 0

    @classmethod
    def create(cls, seed: int, options: ClusterOptions | None = None) -> SimCluster:
        options = options or ClusterOptions()
        voters = frozenset(range(1, options.voter_count + 1))
        total = options.voter_count + options.spare_count
        nodes = {}
        for node_id in range(1, total + 1):
            membership = Membership(voters) if node_id in voters else Membership(frozenset())
            storage = MemoryStorage.bootstrap(membership)
            if options.fresh_bootstrap and node_id in voters:
                storage.set_hard_state(fresh_group_hard_state(FIRST_VOTER))
            node = SimNode(node_id, storage, None, DigestStateMachine())
            nodes[node_id] = node
        cluster = cls(seed, options, nodes, SimNetwork(), SafetyChecker())
        for node_id in nodes:
            cluster._start(node_id)
        return cluster

    @classmethod
    def from_storages(
        cls, seed: int, storages: dict[int, MemoryStorage], options: ClusterOptions | None = None
    ) -> SimCluster:
        """A cluster whose nodes start from the given durable state (scripted scenarios)."""
        nodes = {
            node_id: SimNode(node_id, storage, None, DigestStateMachine())
            for node_id, storage in storages.items()
        }
        cluster = cls(seed, options or ClusterOptions(), nodes, SimNetwork(), SafetyChecker())
        for node_id in nodes:
            cluster._start(node_id)
        return cluster

    # ------------------------------------------------------------------ lifecycle

    def _config(self, node: SimNode) -> RaftConfig:
        options = self.options
        node_seed = self.seed * 1_000_003 + node.node_id * 7_919 + node.incarnation
        return RaftConfig(
            node_id=node.node_id,
            random_source=random.Random(node_seed),
            election_tick=options.election_tick,
            heartbeat_tick=options.heartbeat_tick,
            max_size_per_message_bytes=options.max_size_per_message_bytes,
            max_inflight_messages=options.max_inflight_messages,
            max_inflight_bytes=options.max_inflight_bytes,
            snapshot_chunk_size_bytes=options.snapshot_chunk_size_bytes,
            max_uncommitted_entries_size_bytes=1 << 16,
            max_entry_payload_bytes=1 << 12,
            applied_index=node.storage.first_index() - 1,
            pre_vote=options.pre_vote,
            check_quorum=options.check_quorum,
            # Only on the run that created the group: a restarted node 1 is a follower.
            lead_fresh_group=(
                options.fresh_bootstrap and node.node_id == FIRST_VOTER and node.incarnation == 0
            ),
            broadcast_commit=options.broadcast_commit,
            test_bug=options.test_bug,
        )

    def _start(self, node_id: int) -> None:
        node = self.nodes[node_id]
        node.raw = RawNode(self._config(node), node.storage)
        node.state_machine = DigestStateMachine()
        node.state_machine.restore(node.storage.snapshot().data)
        self.checker.forget_commit(node_id, node.storage.hard_state().commit)

    def crash(self, node_id: int) -> None:
        node = self.nodes[node_id]
        if node.raw is None:
            return
        node.raw = None
        node.incarnation += 1

    def restart(self, node_id: int) -> None:
        if self.nodes[node_id].raw is None:
            self._start(node_id)

    def live(self) -> list[RawNode]:
        return [node.raw for node in self.nodes.values() if node.raw is not None]

    # ------------------------------------------------------------------ the Ready contract

    def process_ready(self, node_id: int) -> bool:
        """Persist, send, apply, advance (atomic with respect to crashes)."""
        node = self.nodes[node_id]
        raw = node.raw
        if raw is None or not raw.has_ready():
            return False
        ready = raw.ready()
        self._persist(node, ready)
        self.network.send(ready.messages)
        self._apply(node, ready)
        raw.advance(ready)
        return True

    def _persist(self, node: SimNode, ready: Ready) -> None:
        if ready.snapshot is not None:
            node.storage.apply_snapshot(ready.snapshot)
            node.state_machine.restore(ready.snapshot.data)
            metadata = ready.snapshot.metadata
            self.checker.on_restore(node.node_id, metadata.index, node.state_machine.digest)
        node.storage.append(ready.entries)
        if ready.hard_state is not None:
            node.storage.set_hard_state(ready.hard_state)

    def _apply(self, node: SimNode, ready: Ready) -> None:
        for entry in ready.committed_entries:
            if entry.index <= node.state_machine.applied_index:
                continue  # covered by a snapshot restored in this same Ready
            digest = node.state_machine.apply(entry)
            self.checker.on_apply(node.node_id, entry, digest)
            if entry.kind == EntryKind.DATA:
                self.committed_payloads.add(entry.payload)
        for state in ready.read_states:
            self.checker.on_read_state(node.node_id, state)

    def process_all_ready(self) -> None:
        for node_id in self.nodes:
            self.process_ready(node_id)

    def flush(
        self, allow: Callable[[Message], bool] | None = None, max_rounds: int = 20_000
    ) -> None:
        """Process every Ready and deliver every message in order until nothing moves;
        messages ``allow`` rejects are dropped. Checks run after every delivery."""
        for _ in range(max_rounds):
            self.process_all_ready()
            if not self.network.in_flight:
                return
            while self.network.in_flight:
                message = self.network.in_flight[0]
                if allow is None or allow(message):
                    self.deliver(0)
                else:
                    self.network.drop(0)
                self.check()
        raise RuntimeError(f"the cluster did not quiesce within {max_rounds} rounds")

    def campaign(self, node_id: int) -> None:
        raw = self.nodes[node_id].raw
        if raw is not None:
            raw.campaign()

    def raw(self, node_id: int) -> RawNode:
        """The live node ``node_id`` (raises if it is crashed)."""
        raw = self.nodes[node_id].raw
        if raw is None:
            raise RuntimeError(f"node {node_id} is crashed")
        return raw

    # ------------------------------------------------------------------ inputs

    def tick(self, node_id: int) -> None:
        raw = self.nodes[node_id].raw
        if raw is not None:
            raw.tick()

    def tick_all(self) -> None:
        for node_id in self.nodes:
            self.tick(node_id)

    def deliver(self, position: int) -> None:
        if not self.network.in_flight:
            return
        message = self.network.take(position % len(self.network.in_flight))
        if message is not None:
            self._step(message)

    def _step(self, message: Message) -> None:
        node = self.nodes.get(message.to_id)
        if node is None or node.raw is None:
            return
        if self.options.wire_codec:
            decoded = decode(encode(message))
            invariant(decoded == message, f"codec: {message!r} did not survive the wire")
            message = decoded  # type: ignore[assignment]
        node.raw.step(message)

    def leader(self) -> RawNode | None:
        """The live leader of the highest term, if any."""
        leaders = [raw for raw in self.live() if raw.role == Role.LEADER]
        return max(leaders, key=lambda raw: raw.term) if leaders else None

    def propose(self, node_id: int | None = None) -> bytes | None:
        """Propose a fresh payload at ``node_id`` (default: the leader); None if refused."""
        raw = self.leader() if node_id is None else self.nodes[node_id].raw
        if raw is None:
            return None
        self.proposal_counter += 1
        payload = f"s{self.seed}-p{self.proposal_counter}".encode()
        try:
            raw.propose(payload)
        except ProposalDropped:
            return None
        self.proposals[payload] = self.steps
        return payload

    def read(self, node_id: int) -> bytes | None:
        raw = self.nodes[node_id].raw
        if raw is None:
            return None
        self.read_counter += 1
        context = f"r{self.read_counter}".encode()
        self.checker.on_read_requested(context)
        try:
            raw.read_index(context)
        except RaftError:
            return None
        return context

    def transfer(self, target_id: int) -> bool:
        raw = self.leader()
        if raw is None:
            return False
        try:
            raw.transfer_leadership(target_id)
        except RaftError:
            return False
        return True

    def change_membership(self, kind: ConfigChangeKind, node_id: int) -> bool:
        raw = self.leader()
        if raw is None:
            return False
        try:
            raw.propose_config_change(ConfigChange(kind, node_id))
        except (RaftError, InvalidConfigChange):
            return False
        return True

    def compact(self, node_id: int) -> bool:
        """The application snapshots its state machine and compacts its log."""
        node = self.nodes[node_id]
        if node.raw is None:
            return False
        applied = node.state_machine.applied_index
        if applied <= node.storage.first_index():
            return False
        node.storage.create_snapshot_and_compact(applied, node.state_machine.snapshot_data())
        return True

    # ------------------------------------------------------------------ checks

    def check(self) -> None:
        """Run the per-step checks (and the full scan on its period)."""
        self.steps += 1
        live = self.live()
        self.checker.observe(live)
        if self.steps % self.options.full_check_every_steps == 0:
            self.full_check()

    def full_check(self) -> None:
        storages = [node.storage for node in self.nodes.values()]
        self.checker.full_check(self.live(), storages)
