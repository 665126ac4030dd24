"""Raft's safety properties, checked against a simulated cluster after every step.

Cheap checks run after every step (election safety, the committed prefix, state machine
safety, ReadIndex); the full log scan (log matching, leader completeness over the whole log)
runs every ``full_check_every_steps`` and at the end. Every failure raises
``InvariantViolation`` naming the property (Raft paper figure 3).
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from raftlog.invariant import invariant
from raftlog.raft.entry import Entry, ReadState
from raftlog.raft.node import RawNode
from raftlog.raft.ready import Role
from raftlog.raft.storage import LogStorage


@attrs.frozen
class _EntryFingerprint:
    kind: int
    payload: bytes
    previous_term: int | None
    """Term of the entry before it in the same log (None if compacted there)."""


@attrs.define(eq=False)
class SafetyChecker:
    leader_by_term: dict[int, int] = attrs.field(factory=dict)
    committed_term: dict[int, int] = attrs.field(factory=dict)
    """Index -> term of the committed entry there (as first observed)."""
    committed_in_term: dict[int, int] = attrs.field(factory=dict)
    """Index -> the observing node's term when the index was first seen committed."""
    max_committed_index: int = 0
    applied_digest: dict[int, bytes] = attrs.field(factory=dict)
    entry_by_position: dict[tuple[int, int], _EntryFingerprint] = attrs.field(factory=dict)
    read_floor: dict[bytes, int] = attrs.field(factory=dict)
    """ReadIndex context -> highest commit index observed when the read was asked."""
    reads_answered: int = 0
    min_read_slack: int | None = None
    """Smallest (answered read index - commit index when the read started) seen so far."""
    checked_commit: dict[int, int] = attrs.field(factory=dict)
    checks_run: int = 0

    # ------------------------------------------------------------------ per step

    def observe(self, nodes: Iterable[RawNode]) -> None:
        """Cheap properties after one step."""
        self.checks_run += 1
        for node in nodes:
            if node.role == Role.LEADER:
                self.check_election_safety(node)
            self.check_committed_prefix(node)

    def check_election_safety(self, node: RawNode) -> None:
        """At most one leader per term (figure 3); also runs leader completeness for a new
        leader."""
        known = self.leader_by_term.get(node.term)
        if known is None:
            self.leader_by_term[node.term] = node.id
            self.check_leader_completeness(node)
            return
        invariant(
            known == node.id,
            f"election safety: nodes {known} and {node.id} both lead term {node.term}",
        )

    def check_committed_prefix(self, node: RawNode) -> None:
        """What is committed never changes, and nothing else is committed where it sits."""
        log = node.log
        committed = log.committed
        previous = self.checked_commit.get(node.id, 0)
        if committed <= previous:
            self.checked_commit[node.id] = committed
            return
        for index in range(max(previous + 1, log.first_index()), committed + 1):
            term = log.maybe_term(index)
            if term is None:
                continue
            known = self.committed_term.setdefault(index, term)
            invariant(
                known == term,
                f"committed prefix changed: node {node.id} committed term {term} at index "
                f"{index}, term {known} was committed there before",
            )
            self.committed_in_term.setdefault(index, node.term)
        self.max_committed_index = max(self.max_committed_index, committed)
        self.checked_commit[node.id] = committed

    def forget_commit(self, node_id: int, persisted_commit: int) -> None:
        """A node restarted with the commit index it had persisted."""
        self.checked_commit[node_id] = persisted_commit

    def on_apply(self, node_id: int, entry: Entry, digest: bytes) -> None:
        self._check_digest(node_id, entry.index, digest)

    def on_restore(self, node_id: int, index: int, digest: bytes) -> None:
        if index:
            self._check_digest(node_id, index, digest)

    def check_state_machine(self, node_id: int, index: int, digest: bytes) -> None:
        """No two nodes apply different entries at one index (the digest covers the prefix)."""
        if index:
            self._check_digest(node_id, index, digest)

    def _check_digest(self, node_id: int, index: int, digest: bytes) -> None:
        known = self.applied_digest.setdefault(index, digest)
        invariant(
            known == digest,
            f"state machine safety: node {node_id} applied a different history at index {index}",
        )

    def on_read_requested(self, context: bytes) -> None:
        self.read_floor[context] = self.max_committed_index

    def on_read_state(self, node_id: int, state: ReadState) -> None:
        floor = self.read_floor.pop(state.context, None)
        if floor is None:
            return  # a duplicated answer: the first one was checked
        self.reads_answered += 1
        slack = state.index - floor
        if self.min_read_slack is None or slack < self.min_read_slack:
            self.min_read_slack = slack
        invariant(
            state.index >= floor,
            f"linearizable read: node {node_id} got read index {state.index} but {floor} was "
            "committed before the read started",
        )

    # ------------------------------------------------------------------ full scans

    def full_check(self, nodes: Iterable[RawNode], storages: Iterable[LogStorage]) -> None:
        """Log matching over every durable log (crashed nodes included), and leader
        completeness over every live leader's log.

        Log matching looks at durable logs only: a leader that crashes before persisting its
        election may be elected again in the same term and append different entries, which is
        harmless because nobody ever saw the first ones (the Ready contract sends nothing
        before it is persisted)."""
        for storage in storages:
            self.check_log_matching(storage)
        for node in nodes:
            if node.role == Role.LEADER:
                self.check_leader_completeness(node)

    def check_log_matching(self, storage: LogStorage) -> None:
        """Same index and term means same entry and same term before it (hence same prefix)."""
        first = storage.first_index()
        last = storage.last_index()
        entries = storage.entries(first, last + 1, 1 << 62) if last >= first else []
        previous_term: int | None = storage.term(first - 1)
        for entry in entries:
            fingerprint = _EntryFingerprint(int(entry.kind), entry.payload, previous_term)
            known = self.entry_by_position.setdefault((entry.index, entry.term), fingerprint)
            invariant(
                known.kind == fingerprint.kind and known.payload == fingerprint.payload,
                f"log matching: two different entries at index {entry.index} term {entry.term}",
            )
            invariant(
                known.previous_term is None
                or fingerprint.previous_term is None
                or known.previous_term == fingerprint.previous_term,
                f"log matching: entry {entry.index}/{entry.term} follows different terms "
                f"({known.previous_term} and {fingerprint.previous_term}) in two logs",
            )
            previous_term = entry.term

    def check_leader_completeness(self, node: RawNode) -> None:
        """A leader holds every entry committed in an earlier (or its own) term."""
        log = node.log
        for index in range(log.first_index(), self.max_committed_index + 1):
            committed_term = self.committed_term.get(index)
            if committed_term is None or self.committed_in_term[index] > node.term:
                continue
            invariant(
                log.maybe_term(index) == committed_term,
                f"leader completeness: leader {node.id} of term {node.term} lacks the entry "
                f"committed at index {index} (term {committed_term})",
            )
