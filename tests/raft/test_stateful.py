"""Hypothesis drives the simulated cluster with every fault and request; Raft's safety
properties are checked after every step, and a failure shrinks to a minimal program.

Bounded for CI; for a longer run:
    RAFT_STATEFUL_EXAMPLES=2000 RAFT_STATEFUL_STEPS=300 python -m pytest tests/raft/test_stateful.py
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from raftlog.raft.membership import ConfigChangeKind
from raftlog.raft.ready import Role
from raftlog.sim.cluster import ClusterOptions, SimCluster
from raftlog.sim.runner import apply_action, stabilize

NODE = st.integers(min_value=1, max_value=5)
POSITION = st.integers(min_value=0, max_value=1 << 16)


class RaftClusterMachine(RuleBasedStateMachine):
    cluster: SimCluster

    @initialize(
        seed=st.integers(min_value=0, max_value=1 << 30),
        pre_vote=st.booleans(),
        check_quorum=st.booleans(),
        voters=st.sampled_from([1, 3, 3, 5]),
        fresh_bootstrap=st.booleans(),
        broadcast_commit=st.booleans(),
    )
    def start(
        self,
        seed: int,
        pre_vote: bool,
        check_quorum: bool,
        voters: int,
        fresh_bootstrap: bool,
        broadcast_commit: bool,
    ) -> None:
        options = ClusterOptions(
            voter_count=voters,
            spare_count=5 - voters,
            pre_vote=pre_vote,
            check_quorum=check_quorum,
            max_size_per_message_bytes=64,
            max_inflight_messages=2,
            fresh_bootstrap=fresh_bootstrap,
            broadcast_commit=broadcast_commit,
        )
        self.cluster = SimCluster.create(seed, options)

    def _do(self, *action: str | int) -> None:
        apply_action(self.cluster, action)

    @rule()
    def tick(self) -> None:
        self._do("tick")

    @rule(node=NODE)
    def tick_node(self, node: int) -> None:
        self._do("tick_node", node)

    @rule(node=NODE)
    def process_ready(self, node: int) -> None:
        self._do("ready", node)

    @rule()
    def process_all_ready(self) -> None:
        self.cluster.process_all_ready()
        self.cluster.check()

    @rule(position=POSITION)
    def deliver(self, position: int) -> None:
        self._do("deliver", position)

    @rule(position=POSITION)
    def drop(self, position: int) -> None:
        self._do("drop", position)

    @rule(position=POSITION)
    def duplicate(self, position: int) -> None:
        self._do("duplicate", position)

    @rule(mask=st.integers(min_value=0, max_value=63))
    def partition(self, mask: int) -> None:
        self._do("partition", mask)

    @rule()
    def heal(self) -> None:
        self._do("heal")

    @rule(node=NODE)
    def crash(self, node: int) -> None:
        self._do("crash", node)

    @rule(node=NODE)
    def restart(self, node: int) -> None:
        self._do("restart", node)

    @rule()
    def propose(self) -> None:
        self._do("propose")

    @rule(node=NODE)
    def read(self, node: int) -> None:
        self._do("read", node)

    @rule(node=NODE)
    def transfer_leadership(self, node: int) -> None:
        self._do("transfer", node)

    @rule(node=NODE)
    def add_learner(self, node: int) -> None:
        self._do("config", int(ConfigChangeKind.ADD_LEARNER), node)

    @rule(node=NODE)
    def promote_learner(self, node: int) -> None:
        self._do("config", int(ConfigChangeKind.PROMOTE_LEARNER), node)

    @rule(node=NODE)
    def remove_member(self, node: int) -> None:
        self._do("config", int(ConfigChangeKind.REMOVE_NODE), node)

    @rule(node=NODE)
    def compact(self, node: int) -> None:
        self._do("compact", node)

    @rule()
    def heal_and_check_liveness(self) -> None:
        stabilize(self.cluster, 400)

    # Each property on its own, after every step (figure 3 of the paper).

    @invariant()
    def election_safety(self) -> None:
        for node in self.cluster.live():
            if node.role == Role.LEADER:
                self.cluster.checker.check_election_safety(node)

    @invariant()
    def committed_prefix_only_grows(self) -> None:
        for node in self.cluster.live():
            self.cluster.checker.check_committed_prefix(node)

    @invariant()
    def log_matching(self) -> None:
        for node in self.cluster.nodes.values():
            self.cluster.checker.check_log_matching(node.storage)

    @invariant()
    def leader_completeness(self) -> None:
        for node in self.cluster.live():
            if node.role == Role.LEADER:
                self.cluster.checker.check_leader_completeness(node)

    @invariant()
    def state_machine_safety(self) -> None:
        for node in self.cluster.nodes.values():
            machine = node.state_machine
            self.cluster.checker.check_state_machine(
                node.node_id, machine.applied_index, machine.digest
            )

    @invariant()
    def reads_never_go_back_in_time(self) -> None:
        # A ReadIndex answer is never below what was committed when the read started.
        slack = self.cluster.checker.min_read_slack
        assert slack is None or slack >= 0


RaftClusterMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("RAFT_STATEFUL_EXAMPLES", "200")),
    stateful_step_count=int(os.environ.get("RAFT_STATEFUL_STEPS", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestRaftCluster = RaftClusterMachine.TestCase
