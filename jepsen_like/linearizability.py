"""Linearizability checking: Wing & Gong's search with Lowe's memoisation, as in Porcupine.

The history of one object is laid out as a doubly linked list of call and return
entries in time order. A depth-first search repeatedly takes a call entry, applies its
operation to the model, and if the model accepts, *lifts* the call and its return out of
the list and carries on from the head; reaching a return entry means the operation it
closes has to be linearized before this point but could not be, so the search
backtracks. A cache of (set of linearized operations, model state) prunes every
configuration already explored (Lowe), which is what makes this practical.

P-compositionality: a history is linearizable iff each object's sub-history is, so the
history is partitioned by key (topic-partition, or group and topic-partition) and each
part checked on its own; a violation names its partition.

Indeterminate operations (``info``) never return: their return entry sits at the end, so
they may take effect at any point after their call, or (by being linearized after every
other operation) effectively not at all.

The search is exponential in the worst case, so every partition has a state budget and
the whole check a time budget; running out gives ``unknown``, never ``valid``.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import attrs

from jepsen_like.checkers.result import Anomaly, CheckResult, Verdict
from jepsen_like.history import History, Operation


class _Unknown:
    """The output of an operation whose outcome we never learnt."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()


@attrs.frozen
class LinOp:
    """One operation on one object, as the linearizability search sees it."""

    key: str
    input: tuple[Any, ...]
    output: Any
    """The observed result, or UNKNOWN."""
    call_ns: int
    return_ns: int | None
    """None: never returned (indeterminate); the effect may land any time after the call."""
    operation: Operation | None = attrs.field(default=None, eq=False, repr=False)
    """Where it came from in the recorded history, for witnesses."""
    symmetry: Hashable | None = None
    """Operations that never return and share a symmetry class have identical effects,
    so any linearization can use them in call order; the search only tries that order,
    which turns 2^k subsets of k such operations into k+1 prefixes."""


class Model(Protocol):
    """A sequential specification of one object, plus how to find its operations."""

    name: str

    def init(self) -> Hashable: ...

    def step(self, state: Any, input: tuple[Any, ...], output: Any) -> tuple[bool, Any]:
        """Whether ``input`` may return ``output`` in ``state``, and the state after."""
        ...

    def describe(self, state: Any) -> str: ...

    def impossible(self, ops: Sequence[LinOp]) -> LinOp | None:
        """An operation no order could explain (say, a read of a value nothing wrote
        before it returned), found without searching; None if there is none. Exact
        shortcuts only: a search that must fail exhaustively can take exponential time."""
        ...

    def operations(self, history: History) -> Iterable[LinOp]: ...


@attrs.frozen
class Budget:
    max_states: int = 2_000_000
    """Cache entries one partition may create before it is given up as unknown."""
    time_s: float = 30.0
    """Wall-clock for the whole check, shared by all partitions."""


@attrs.frozen
class Witness:
    """Where the deepest attempt got stuck: a small window to read instead of the history."""

    blocking: LinOp
    """An operation that returned before any extension of the best partial linearization
    could include it."""
    pending: tuple[LinOp, ...]
    """Operations invoked before ``blocking`` returned and not yet linearized there: the
    candidates the search tried to place first."""
    linearized_tail: tuple[LinOp, ...]
    """The last operations of the deepest partial linearization, in order."""
    linearized_count: int
    state: str
    """The model state after that partial linearization."""


@attrs.frozen
class PartitionResult:
    key: str
    verdict: Verdict
    operations: int
    states: int
    elapsed_s: float
    witness: Witness | None = None
    reason: str = ""


@attrs.frozen
class LinearizabilityResult:
    model: str
    verdict: Verdict
    partitions: tuple[PartitionResult, ...]

    @property
    def valid(self) -> bool:
        return self.verdict is Verdict.VALID

    def failing(self) -> tuple[PartitionResult, ...]:
        return tuple(p for p in self.partitions if p.verdict is not Verdict.VALID)

    def to_check_result(self) -> CheckResult:
        anomalies = tuple(_anomaly(self.model, p) for p in self.failing())
        details = {
            "partitions": len(self.partitions),
            "operations": sum(p.operations for p in self.partitions),
            "states": sum(p.states for p in self.partitions),
            "elapsed_s": round(sum(p.elapsed_s for p in self.partitions), 3),
            "unknown": [
                {"key": p.key, "reason": p.reason}
                for p in self.partitions
                if p.verdict is Verdict.UNKNOWN
            ],
        }
        return CheckResult(f"linearizable-{self.model}", self.verdict, anomalies, details)


TAIL_LENGTH = 8
DEADLINE_CHECK_EVERY = 1024


def check_history(
    history: History, model: Model, budget: Budget | None = None
) -> LinearizabilityResult:
    return check_operations(model.operations(history), model, budget)


def check_operations(
    operations: Iterable[LinOp], model: Model, budget: Budget | None = None
) -> LinearizabilityResult:
    budget = budget or Budget()
    deadline = time.monotonic() + budget.time_s
    by_key: dict[str, list[LinOp]] = {}
    for op in operations:
        by_key.setdefault(op.key, []).append(op)
    results = []
    for key in sorted(by_key):
        if time.monotonic() >= deadline:
            ops = len(by_key[key])
            reason = "time budget ran out before this partition was checked"
            results.append(PartitionResult(key, Verdict.UNKNOWN, ops, 0, 0.0, None, reason))
            continue
        results.append(check_partition(key, by_key[key], model, budget.max_states, deadline))
    return LinearizabilityResult(model.name, _combine(r.verdict for r in results), tuple(results))


def _combine(verdicts: Iterable[Verdict]) -> Verdict:
    seen = set(verdicts)
    if Verdict.INVALID in seen:
        return Verdict.INVALID
    if Verdict.UNKNOWN in seen:
        return Verdict.UNKNOWN
    return Verdict.VALID


@attrs.define(eq=False)
class _Entries:
    """The call/return entries as a dancing-links list over parallel arrays.

    Node 0 is the head sentinel; node ``2i+1`` is the call of operation ``i`` and node
    ``2i+2`` its return. Lifting unlinks both; unlifting relinks them in reverse, which
    works because an unlinked node keeps its own prev/next.
    """

    next: list[int]
    prev: list[int]

    @classmethod
    def build(cls, ops: Sequence[LinOp]) -> _Entries:
        never = float("inf")
        order = []
        for i, op in enumerate(ops):
            # At equal times calls sort first: touching operations count as concurrent.
            order.append((op.call_ns, 0, 2 * i + 1))
            order.append((never if op.return_ns is None else op.return_ns, 1, 2 * i + 2))
        order.sort()
        size = 2 * len(ops) + 1
        nxt, prv = [-1] * size, [-1] * size
        previous = 0
        for _, _, node in order:
            nxt[previous] = node
            prv[node] = previous
            previous = node
        nxt[previous] = -1
        return cls(nxt, prv)

    def lift(self, call: int) -> None:
        for node in (call, call + 1):
            self.next[self.prev[node]] = self.next[node]
            if self.next[node] != -1:
                self.prev[self.next[node]] = self.prev[node]

    def unlift(self, call: int) -> None:
        for node in (call + 1, call):
            self.next[self.prev[node]] = node
            if self.next[node] != -1:
                self.prev[self.next[node]] = node


def check_partition(
    key: str, ops: Sequence[LinOp], model: Model, max_states: int, deadline: float
) -> PartitionResult:
    """Lowe's just-in-time linearization search over one object's operations."""
    started = time.monotonic()
    entries = _Entries.build(ops)
    nxt = entries.next
    state = model.init()
    hopeless = model.impossible(ops)
    if hopeless is not None:
        witness = _impossible_witness(model, ops, hopeless, state)
        elapsed_s = time.monotonic() - started
        return PartitionResult(key, Verdict.INVALID, len(ops), 0, elapsed_s, witness)
    linearized = 0
    cache: set[tuple[int, Any]] = set()
    stack: list[tuple[int, Any]] = []
    best_depth = -1
    witness: Witness | None = None
    prior = _symmetry_predecessors(ops)
    node = nxt[0]
    steps = 0
    while nxt[0] != -1:
        steps += 1
        if steps % DEADLINE_CHECK_EVERY == 0 and time.monotonic() >= deadline:
            return _unknown(key, ops, cache, started, "time budget exceeded", witness)
        if node % 2 == 1:  # a call: try to linearize its operation here
            op = ops[node // 2]
            before = prior[node // 2]
            if before >= 0 and not (linearized >> before) & 1:
                node = nxt[node]
                continue
            accepted, after = model.step(state, op.input, op.output)
            if accepted:
                marked = linearized | (1 << (node // 2))
                if (marked, after) not in cache:
                    if len(cache) >= max_states:
                        reason = f"state budget of {max_states} exceeded"
                        return _unknown(key, ops, cache, started, reason, witness)
                    cache.add((marked, after))
                    stack.append((node, state))
                    state, linearized = after, marked
                    entries.lift(node)
                    node = nxt[0]
                    continue
            node = nxt[node]
            continue
        # A return: its operation should have been linearized by now. Back up.
        if len(stack) > best_depth:
            best_depth = len(stack)
            witness = _witness(model, ops, entries, stack, state, node)
        if not stack:
            break
        node, state = stack.pop()
        linearized &= ~(1 << (node // 2))
        entries.unlift(node)
        node = nxt[node]
    elapsed_s = time.monotonic() - started
    if nxt[0] == -1:
        return PartitionResult(key, Verdict.VALID, len(ops), len(cache), elapsed_s)
    return PartitionResult(key, Verdict.INVALID, len(ops), len(cache), elapsed_s, witness)


def _impossible_witness(model: Model, ops: Sequence[LinOp], op: LinOp, state: Any) -> Witness:
    """The operation alone, with the operations it overlaps: no order can explain it."""
    end = float("inf") if op.return_ns is None else op.return_ns
    overlapping = tuple(
        other
        for other in ops
        if other is not op
        and other.call_ns <= end
        and (other.return_ns is None or other.return_ns >= op.call_ns)
    )
    return Witness(op, overlapping[:TAIL_LENGTH], (), 0, model.describe(state))


def _symmetry_predecessors(ops: Sequence[LinOp]) -> list[int]:
    """For each operation, the one before it in its symmetry class (by call), or -1."""
    prior = [-1] * len(ops)
    last: dict[Hashable, int] = {}
    ordered = sorted(range(len(ops)), key=lambda i: (ops[i].call_ns, i))
    for i in ordered:
        op = ops[i]
        if op.symmetry is None or op.return_ns is not None:
            continue
        prior[i] = last.get(op.symmetry, -1)
        last[op.symmetry] = i
    return prior


def _unknown(
    key: str,
    ops: Sequence[LinOp],
    cache: set[tuple[int, Any]],
    started: float,
    reason: str,
    witness: Witness | None,
) -> PartitionResult:
    elapsed_s = time.monotonic() - started
    return PartitionResult(
        key, Verdict.UNKNOWN, len(ops), len(cache), elapsed_s, witness, f"{reason}: unknown"
    )


def _witness(
    model: Model,
    ops: Sequence[LinOp],
    entries: _Entries,
    stack: list[tuple[int, Any]],
    state: Any,
    blocking_node: int,
) -> Witness:
    pending = []
    node = entries.next[0]
    while node not in (-1, blocking_node):
        if node % 2 == 1:
            pending.append(ops[node // 2])
        node = entries.next[node]
    tail = tuple(ops[call // 2] for call, _ in stack[-TAIL_LENGTH:])
    blocking = ops[(blocking_node - 1) // 2]
    return Witness(blocking, tuple(pending), tail, len(stack), model.describe(state))


def _anomaly(model: str, partition: PartitionResult) -> Anomaly:
    witness = partition.witness
    if partition.verdict is Verdict.UNKNOWN:
        explanation = f"could not decide linearizability ({partition.reason})"
    else:
        explanation = (
            f"not linearizable against the {model} model: no order of the operations "
            "respects real time and the model"
        )
    details: dict[str, Any] = {
        "verdict": str(partition.verdict),
        "operations": partition.operations,
        "states": partition.states,
    }
    operations: tuple[Operation, ...] = ()
    if witness is not None:
        details.update(_witness_json(witness))
        chosen = (*witness.linearized_tail, *witness.pending, witness.blocking)
        operations = tuple(dict.fromkeys(op.operation for op in chosen if op.operation))
    kind = "not-linearizable" if partition.verdict is Verdict.INVALID else "linearizability-unknown"
    return Anomaly(kind, partition.key, explanation, operations, details)


def _lin_op_json(op: LinOp) -> Mapping[str, Any]:
    output = "UNKNOWN" if op.output is UNKNOWN else op.output
    source = None if op.operation is None else op.operation.invoke.index
    return {
        "input": list(op.input),
        "output": output,
        "call_ns": op.call_ns,
        "return_ns": op.return_ns,
        "invoke_index": source,
    }


def _witness_json(witness: Witness) -> dict[str, Any]:
    return {
        "blocking": _lin_op_json(witness.blocking),
        "pending": [_lin_op_json(op) for op in witness.pending],
        "linearized_count": witness.linearized_count,
        "linearized_tail": [_lin_op_json(op) for op in witness.linearized_tail],
        "state": witness.state,
    }
