"""The bounded queue of messages waiting for one peer on one channel.

It lives with the peer, not the connection, so a connection that is replaced (duplicate
dial, peer restart) hands its successor what has not been written yet. It is bounded in
messages and in bytes; `put_nowait` refuses instead of growing, because Raft's loop must
never block on a slow peer and tolerates lost messages.
"""

from __future__ import annotations

import collections

import attrs
import trio

from raftlog.invariant import invariant
from raftlog.transport.framing import Payload


@attrs.frozen
class ChannelQueueStatistics:
    depth_messages: int
    depth_bytes: int
    messages_taken: int
    """Handed to a connection's write buffer (not a delivery receipt)."""
    bytes_taken: int
    messages_dropped_full: int
    messages_dropped_disconnected: int
    tasks_waiting_put: int


@attrs.define(eq=False)
class ChannelQueue:
    messages_max: int
    bytes_max: int
    _items: collections.deque[Payload] = attrs.field(factory=collections.deque, init=False)
    _depth_bytes: int = attrs.field(default=0, init=False)
    _messages_taken: int = attrs.field(default=0, init=False)
    _bytes_taken: int = attrs.field(default=0, init=False)
    _dropped_full: int = attrs.field(default=0, init=False)
    _dropped_disconnected: int = attrs.field(default=0, init=False)
    _room: trio.lowlevel.ParkingLot = attrs.field(factory=trio.lowlevel.ParkingLot, init=False)

    def __len__(self) -> int:
        return len(self._items)

    def _fits(self, size_bytes: int) -> bool:
        return (
            len(self._items) < self.messages_max
            and self._depth_bytes + size_bytes <= self.bytes_max
        )

    def put_nowait(self, payload: Payload) -> bool:
        """Enqueue if there is room; otherwise count a drop and return False."""
        if self._room or not self._fits(len(payload)):
            # Waiting senders go first, so a burst of put_nowait cannot starve `put`.
            self._dropped_full += 1
            return False
        self._append(payload)
        return True

    async def put(self, payload: Payload) -> None:
        """Enqueue, waiting for room first (backpressure).

        With room it checks for cancellation but does not yield to the scheduler: a
        loop of `put`s then fills the queue before the writer runs, and the writer
        packs them into a few frames instead of one frame and one write per message.
        It yields when it has to wait, i.e. at the latest when the queue is full.
        """
        invariant(len(payload) <= self.bytes_max, "payload larger than the queue can ever hold")
        if not self._room and self._fits(len(payload)):
            await trio.lowlevel.checkpoint_if_cancelled()
            self._append(payload)
            return
        while not self._fits(len(payload)):
            await self._room.park()
        self._append(payload)
        self._wake_next_if_room()

    def _append(self, payload: Payload) -> None:
        self._items.append(payload)
        self._depth_bytes += len(payload)

    def take(self, bytes_max: int) -> list[Payload]:
        """Remove messages from the head up to `bytes_max` (at least one if any)."""
        taken: list[Payload] = []
        taken_bytes = 0
        while self._items and (not taken or taken_bytes + len(self._items[0]) <= bytes_max):
            payload = self._items.popleft()
            taken.append(payload)
            taken_bytes += len(payload)
        if taken:
            self._depth_bytes -= taken_bytes
            self._messages_taken += len(taken)
            self._bytes_taken += taken_bytes
            self._wake_next_if_room()
        return taken

    def drop_all(self) -> int:
        """Discard everything queued (the connection is gone); return how many."""
        dropped = len(self._items)
        self._dropped_disconnected += dropped
        self._items.clear()
        self._depth_bytes = 0
        self._room.unpark_all()
        return dropped

    def _wake_next_if_room(self) -> None:
        # A woken task re-checks `_fits` itself; waking one at a time keeps FIFO order.
        if self._room and len(self._items) < self.messages_max:
            self._room.unpark()

    def statistics(self) -> ChannelQueueStatistics:
        return ChannelQueueStatistics(
            depth_messages=len(self._items),
            depth_bytes=self._depth_bytes,
            messages_taken=self._messages_taken,
            bytes_taken=self._bytes_taken,
            messages_dropped_full=self._dropped_full,
            messages_dropped_disconnected=self._dropped_disconnected,
            tasks_waiting_put=self._room.statistics().tasks_waiting,
        )
