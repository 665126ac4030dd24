"""ReadIndex bookkeeping on the leader (Raft thesis section 6.4).

A read registered at sequence ``s`` with the leader's commit index ``c`` is safe to serve,
once the state machine reaches ``c``, as soon as a quorum of voters answered a heartbeat
carrying a sequence of at least ``s``: that heartbeat left after the read arrived, so the
answers prove that nobody had deposed this leader when the read was registered.
Reads are released in order; a confirmed read confirms every earlier one.
"""

from __future__ import annotations

import collections
from collections.abc import Callable

import attrs

from raftlog.invariant import invariant


@attrs.frozen
class PendingRead:
    sequence: int
    index: int
    context: bytes
    requester_id: int
    """Node that asked (the leader itself, or a follower that forwarded the read)."""


@attrs.define(eq=False)
class ReadOnlyQueue:
    capacity: int
    _pending: collections.deque[PendingRead] = attrs.field(factory=collections.deque)
    _awaiting_commit: collections.deque[tuple[bytes, int]] = attrs.field(factory=collections.deque)
    """Reads that arrived before this leader committed an entry of its term."""
    sequence: int = 0

    def size(self) -> int:
        return len(self._pending) + len(self._awaiting_commit)

    def full(self) -> bool:
        return self.size() >= self.capacity

    def defer(self, context: bytes, requester_id: int) -> None:
        invariant(not self.full(), "read queue: defer into a full queue")
        self._awaiting_commit.append((context, requester_id))

    def take_deferred(self) -> list[tuple[bytes, int]]:
        deferred = list(self._awaiting_commit)
        self._awaiting_commit.clear()
        return deferred

    def register(self, index: int, context: bytes, requester_id: int) -> int:
        """Queue a read at commit ``index``; returns the heartbeat sequence that confirms it."""
        invariant(self.size() <= self.capacity, "read queue: register into a full queue")
        self.sequence += 1
        if self._pending:
            invariant(index >= self._pending[-1].index, "read queue: read index went backwards")
        self._pending.append(PendingRead(self.sequence, index, context, requester_id))
        return self.sequence

    def release_confirmed(self, confirmed: Callable[[int], bool]) -> list[PendingRead]:
        """Pop the reads, oldest first, whose sequence ``confirmed`` accepts."""
        released: list[PendingRead] = []
        while self._pending and confirmed(self._pending[0].sequence):
            released.append(self._pending.popleft())
        return released

    def has_pending(self) -> bool:
        return bool(self._pending)

    def clear(self) -> None:
        """Leadership changed: the reads are dropped; callers time out and retry."""
        self._pending.clear()
        self._awaiting_commit.clear()
