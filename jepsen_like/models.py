"""Sequential specifications for the linearizability checker, and where their operations
come from in a recorded history.

* ``LogModel``: one topic-partition is an append-only log. ``append(value) -> offset``
  puts the value at the end; ``read(offsets) -> values`` returns the value at each
  offset, or None for an offset the log has not reached yet. A poll is one read of all
  the offsets it returned for a partition (a fetch serves a single snapshot of the log).
* ``RegisterModel``: the committed offset of one (group, topic-partition) is a register:
  ``commit`` writes it, ``fetch_committed`` reads it (None before any commit).

``fail`` operations are left out (they did not happen); ``info`` writes stay open to the
end of the history; reads with no result constrain nothing and are left out.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from typing import Any

import attrs

from jepsen_like.checkers.committed import group_key
from jepsen_like.history import (
    Commit,
    FetchCommitted,
    History,
    Operation,
    Poll,
    Read,
    Send,
    Type,
    Value,
)
from jepsen_like.linearizability import UNKNOWN, LinOp

APPEND = "append"
READ = "read"
WRITE = "write"


class _Unread:
    """Stands for the value of an indeterminate send that no read ever returned.

    Such values are interchangeable (only the slot they take matters), so giving them
    one shared stand-in lets the search treat those sends as symmetric.
    """

    def __repr__(self) -> str:
        return "<unread>"


UNREAD: Any = _Unread()


class LogState:
    """An immutable log whose hash is computed incrementally, so the search's cache can
    hash a state in O(1) however long the log grows."""

    __slots__ = ("_hash", "values")

    def __init__(self, values: tuple[Any, ...] = (), hash_: int = 0) -> None:
        self.values = values
        self._hash = hash_

    def append(self, value: Any) -> LogState:
        return LogState((*self.values, value), hash((self._hash, value)))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LogState):
            return NotImplemented
        return self._hash == other._hash and self.values == other.values

    def __len__(self) -> int:
        return len(self.values)


def densify(history: History) -> History:
    """Replace every offset by its index in its partition's observed offsets.

    raftlog, like Kafka, gives offsets to batches no consumer ever sees (its Raft NOOP
    and configuration entries are control batches), so real offsets have gaps that no
    send could have filled. Jepsen's Kafka checker measures positions in this *version
    order* for the same reason; the log model then judges a dense log.
    """
    order: dict[str, list[int]] = {}
    for op in history.operations:
        if op.type is Type.OK:
            for tp, offset in _offsets_of(op.value):
                order.setdefault(tp, []).append(offset)
    ranks = {tp: sorted(set(offsets)) for tp, offsets in order.items()}

    def rank(tp: str, offset: int) -> int:
        return bisect.bisect_left(ranks.get(tp, []), offset)

    entries = [attrs.evolve(e, value=_reoffset(e.value, rank)) for e in history.entries]
    return History.from_entries(entries)


def _offsets_of(payload: Any) -> Iterator[tuple[str, int]]:
    if isinstance(payload, Send) and payload.offset is not None:
        yield payload.tp, payload.offset
    elif isinstance(payload, Poll):
        for tp, records in payload.reads:
            for offset, _ in records:
                yield tp, offset
    elif isinstance(payload, Read) and payload.value is not None:
        yield payload.tp, payload.offset


def _reoffset(payload: Any, rank: Any) -> Any:
    if isinstance(payload, Send) and payload.offset is not None:
        return attrs.evolve(payload, offset=rank(payload.tp, payload.offset))
    if isinstance(payload, Poll):
        reads = tuple(
            (tp, tuple((rank(tp, offset), value) for offset, value in records))
            for tp, records in payload.reads
        )
        return attrs.evolve(payload, reads=reads)
    if isinstance(payload, Read):
        return attrs.evolve(payload, offset=rank(payload.tp, payload.offset))
    return payload


class LogModel:
    """Inputs: ``(APPEND, value)``, ``(APPEND, UNREAD, claimed_offsets)``, ``(READ, offsets)``.

    An indeterminate send whose value nobody read may have landed only on a slot that
    no acknowledgement or read claims for another value; its input carries the claimed
    offsets so the model refuses the impossible placements at once. Without this the
    search would float such a send across every point of the history.
    """

    name = "log"

    def __init__(self, *, sparse_offsets: bool = False) -> None:
        self.sparse_offsets = sparse_offsets
        """Offsets have gaps nobody can fill (control batches): judge the version order
        (see ``densify``) instead of the raw offsets."""

    def init(self) -> LogState:
        return LogState()

    def step(self, state: LogState, input: tuple[Any, ...], output: Any) -> tuple[bool, Any]:
        if input[0] == APPEND:
            if output is UNKNOWN:
                if input[1] is UNREAD and len(state) in input[2]:
                    return False, state
                return True, state.append(input[1])
            if output == len(state):
                return True, state.append(input[1])
            return False, state
        values = state.values
        for offset, value in zip(input[1], output, strict=True):
            if value is None:
                if offset < len(values):
                    return False, state
            elif offset >= len(values) or values[offset] != value:
                return False, state
        return True, state

    def describe(self, state: LogState) -> str:
        shown = ", ".join(repr(v) for v in state.values[-5:])
        more = "..., " if len(state) > 5 else ""
        return f"log of length {len(state)}: [{more}{shown}]"

    def impossible(self, ops: Sequence[LinOp]) -> LinOp | None:
        """A read of a value that no append invoked before the read returned carried."""
        first_call: dict[Any, int] = {}
        for op in ops:
            if op.input[0] == APPEND and op.input[1] is not UNREAD:
                _earliest(first_call, op.input[1], op.call_ns)
        for op in ops:
            if op.input[0] != READ or op.return_ns is None:
                continue
            for value in op.output:
                if value is not None and first_call.get(value, op.return_ns + 1) > op.return_ns:
                    return op
        return None

    def operations(self, history: History) -> Iterator[LinOp]:
        if self.sparse_offsets:
            history = densify(history)
        claims = _Claims()
        for op in history.operations:
            claims.add(op)
        for op in history.operations:
            yield from log_operations(op, claims)


@attrs.define(eq=False)
class _Claims:
    """Which offsets each partition's acknowledgements and reads pin to a value."""

    read_at: dict[tuple[str, Value], set[int]] = attrs.field(factory=dict)
    first_read_ns: dict[tuple[str, Value], int] = attrs.field(factory=dict)
    senders: dict[tuple[str, Value], int] = attrs.field(factory=dict)
    """How many sends that may have happened carried each value."""
    claimed: dict[str, set[int]] = attrs.field(factory=dict)
    _frozen: dict[str, frozenset[int]] = attrs.field(factory=dict)

    def add(self, op: Operation) -> None:
        if isinstance(op.value, Send) and op.type is not Type.FAIL:
            sent = (op.value.tp, op.value.value)
            self.senders[sent] = self.senders.get(sent, 0) + 1
        if op.type is not Type.OK:
            return
        for lin in log_operations(op, None):
            if lin.input[0] == APPEND:
                self.claimed.setdefault(lin.key, set()).add(lin.output)
                continue
            for offset, value in zip(lin.input[1], lin.output, strict=True):
                if value is not None:
                    self.claimed.setdefault(lin.key, set()).add(offset)
                    self.read_at.setdefault((lin.key, value), set()).add(offset)
                    _earliest(self.first_read_ns, (lin.key, value), lin.return_ns)

    def of(self, tp: str) -> frozenset[int]:
        if tp not in self._frozen:
            self._frozen[tp] = frozenset(self.claimed.get(tp, ()))
        return self._frozen[tp]


def _append(op: Operation, send: Send, claims: _Claims | None) -> LinOp:
    key, start, end = send.tp, op.invoke_ns, op.complete_ns
    if op.type is Type.OK and send.offset is not None:
        return LinOp(key, (APPEND, send.value), send.offset, start, end, op)
    if claims is None:
        return LinOp(key, (APPEND, send.value), UNKNOWN, start, None, op)
    offsets = claims.read_at.get((send.tp, send.value), set())
    if not offsets:
        return LinOp(key, (APPEND, UNREAD, claims.of(key)), UNKNOWN, start, None, op, key)
    # Read at exactly one offset: it can only have landed there.
    output = next(iter(offsets)) if len(offsets) == 1 else UNKNOWN
    deadline = _deadline(start, claims.first_read_ns, claims.senders, (key, send.value))
    return LinOp(key, (APPEND, send.value), output, start, deadline, op)


def _earliest(first: dict[Any, int], key: Any, time_ns: int | None) -> None:
    if time_ns is not None and (key not in first or time_ns < first[key]):
        first[key] = time_ns


def _deadline(
    call_ns: int, first_read_ns: dict[Any, int], writers: dict[Any, int], written: Any
) -> int | None:
    """When an indeterminate write is the only one of its value, it took effect before the
    first read of that value returned: that is its return, exactly. Without this it never
    returns, and every open operation doubles the orders the search must try."""
    read_ns = first_read_ns.get(written)
    if writers.get(written) != 1 or read_ns is None or read_ns < call_ns:
        return None
    return read_ns


def log_operations(op: Operation, claims: _Claims | None) -> Iterator[LinOp]:
    """``claims`` refines indeterminate sends; None yields them as plain unknown appends."""
    payload = op.value
    if op.type is Type.FAIL:
        return
    if isinstance(payload, Send):
        yield _append(op, payload, claims)
    elif op.type is not Type.OK:
        return
    elif isinstance(payload, Poll):
        for tp, records in payload.reads:
            if records:
                offsets = tuple(offset for offset, _ in records)
                values = tuple(value for _, value in records)
                yield LinOp(tp, (READ, offsets), values, op.invoke_ns, op.complete_ns, op)
    elif isinstance(payload, Read):
        yield LinOp(
            payload.tp,
            (READ, (payload.offset,)),
            (payload.value,),
            op.invoke_ns,
            op.complete_ns,
            op,
        )


class RegisterModel:
    """Inputs: ``(WRITE, value)`` and ``(READ,)``; the register starts as None.

    An indeterminate write whose value no read returned is left out: if it took effect,
    no read saw it, so placing it just before the next write (or at the end) is always
    possible, and leaving it out is exact. One whose value was read, and which is the
    only write of that value, gets the first such read's return as its own. Both matter:
    such writes never return, and each open one doubles the orders the search tries.
    """

    name = "register"

    def init(self) -> None:
        return None

    def step(self, state: Any, input: tuple[Any, ...], output: Any) -> tuple[bool, Any]:
        if input[0] == WRITE:
            return True, input[1]
        return output == state, state

    def describe(self, state: Any) -> str:
        return f"register holding {state!r}"

    def impossible(self, ops: Sequence[LinOp]) -> LinOp | None:
        """A read of a value that no write invoked before the read returned carried."""
        first_call: dict[Any, int] = {}
        for op in ops:
            if op.input[0] == WRITE:
                _earliest(first_call, op.input[1], op.call_ns)
        for op in ops:
            if op.input[0] != READ or op.output is None or op.return_ns is None:
                continue
            if first_call.get(op.output, op.return_ns + 1) > op.return_ns:
                return op
        return None

    def operations(self, history: History) -> Iterator[LinOp]:
        lins = [lin for op in history.operations for lin in register_operations(op)]
        first_read_ns: dict[tuple[str, Any], int] = {}
        writers: dict[tuple[str, Any], int] = {}
        for lin in lins:
            if lin.input[0] == WRITE:
                written = (lin.key, lin.input[1])
                writers[written] = writers.get(written, 0) + 1
            else:
                _earliest(first_read_ns, (lin.key, lin.output), lin.return_ns)
        for lin in lins:
            if lin.input[0] == WRITE and lin.return_ns is None:
                written = (lin.key, lin.input[1])
                if written not in first_read_ns:
                    continue
                deadline = _deadline(lin.call_ns, first_read_ns, writers, written)
                if deadline is None:
                    lin = attrs.evolve(lin, symmetry=written)
                else:
                    lin = attrs.evolve(lin, return_ns=deadline)
            yield lin


def register_operations(op: Operation) -> Iterator[LinOp]:
    payload = op.value
    if op.type is Type.FAIL:
        return
    if isinstance(payload, Commit):
        key = group_key(payload.group, payload.tp)
        yield LinOp(key, (WRITE, payload.offset), None, op.invoke_ns, op.complete_ns, op)
    elif isinstance(payload, FetchCommitted) and op.type is Type.OK:
        key = group_key(payload.group, payload.tp)
        yield LinOp(key, (READ,), payload.offset, op.invoke_ns, op.complete_ns, op)
