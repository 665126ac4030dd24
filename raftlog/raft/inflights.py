"""The bounded window of append messages in flight to one follower.

Bounded by count and by bytes, as etcd's ``Inflights``: a leader in the replicate state
sends optimistically, and stops when either bound is reached until acknowledgements free
space. A single message larger than the byte bound may still go when the window is empty,
or replication would stall forever on a large entry.
"""

from __future__ import annotations

import collections

import attrs

from raftlog.invariant import invariant


@attrs.define(eq=False)
class Inflights:
    capacity_messages: int
    capacity_bytes: int
    _items: collections.deque[tuple[int, int]] = attrs.field(factory=collections.deque)
    _size_bytes: int = 0

    def add(self, last_index: int, size_bytes: int) -> None:
        """Record a message whose last entry is ``last_index``."""
        invariant(not self.full(), "inflights: add to a full window")
        if self._items:
            invariant(last_index > self._items[-1][0], "inflights: indexes must increase")
        self._items.append((last_index, size_bytes))
        self._size_bytes += size_bytes

    def free_up_to(self, index: int) -> None:
        """Forget every message whose last index is at or below ``index`` (acknowledged)."""
        while self._items and self._items[0][0] <= index:
            _, size_bytes = self._items.popleft()
            self._size_bytes -= size_bytes
        invariant(self._size_bytes >= 0, "inflights: negative byte count")

    def free_first(self) -> None:
        """Free one slot: a heartbeat response proves the follower is alive and draining."""
        if self._items:
            _, size_bytes = self._items.popleft()
            self._size_bytes -= size_bytes

    def full(self) -> bool:
        return len(self._items) >= self.capacity_messages or self._size_bytes >= self.capacity_bytes

    def count(self) -> int:
        return len(self._items)

    def size_bytes(self) -> int:
        return self._size_bytes

    def reset(self) -> None:
        self._items.clear()
        self._size_bytes = 0
