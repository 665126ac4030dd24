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

from collections.abc import Iterator
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


class LogModel:
    """Inputs: ``(APPEND, value)``, ``(APPEND, UNREAD, claimed_offsets)``, ``(READ, offsets)``.

    An indeterminate send whose value nobody read may have landed only on a slot that
    no acknowledgement or read claims for another value; its input carries the claimed
    offsets so the model refuses the impossible placements at once. Without this the
    search would float such a send across every point of the history.
    """

    name = "log"

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

    def operations(self, history: History) -> Iterator[LinOp]:
        claims = _Claims()
        for op in history.operations:
            claims.add(op)
        for op in history.operations:
            yield from log_operations(op, claims)


@attrs.define(eq=False)
class _Claims:
    """Which offsets each partition's acknowledgements and reads pin to a value."""

    read_at: dict[tuple[str, Value], set[int]] = attrs.field(factory=dict)
    claimed: dict[str, set[int]] = attrs.field(factory=dict)
    _frozen: dict[str, frozenset[int]] = attrs.field(factory=dict)

    def add(self, op: Operation) -> None:
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
    return LinOp(key, (APPEND, send.value), output, start, None, op)


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
    possible, and leaving it out is exact. This matters: such writes never return, and
    each one left in doubles the orders the search has to try.
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

    def operations(self, history: History) -> Iterator[LinOp]:
        read: set[tuple[str, int | None]] = set()
        for op in history.operations:
            read.update(
                (lin.key, lin.output) for lin in register_operations(op) if lin.input == (READ,)
            )
        for op in history.operations:
            for lin in register_operations(op):
                if lin.input[0] == WRITE and lin.return_ns is None:
                    if (lin.key, lin.input[1]) not in read:
                        continue
                    lin = attrs.evolve(lin, symmetry=(lin.key, lin.input[1]))
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
