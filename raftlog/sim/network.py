"""A simulated network: every message in flight sits in one bounded list.

The schedule decides which message is delivered next (reorder and delay), dropped or
duplicated; a partition assigns nodes to sides, and a message crossing sides is lost when
the schedule tries to deliver it.
"""

from __future__ import annotations

import attrs

from raftlog.raft.messages import Message

MAX_IN_FLIGHT_MESSAGES = 4096
"""When more are in flight, the oldest are lost (a congested network)."""


@attrs.define(eq=False)
class SimNetwork:
    in_flight: list[Message] = attrs.field(factory=list)
    side_of: dict[int, int] = attrs.field(factory=dict)
    """Partition: node id -> side; nodes absent from the map are on side 0."""
    dropped_count: int = 0
    delivered_count: int = 0

    def send(self, messages: tuple[Message, ...] | list[Message]) -> None:
        self.in_flight.extend(messages)
        overflow = len(self.in_flight) - MAX_IN_FLIGHT_MESSAGES
        if overflow > 0:
            del self.in_flight[:overflow]
            self.dropped_count += overflow

    def connected(self, from_id: int, to_id: int) -> bool:
        return self.side_of.get(from_id, 0) == self.side_of.get(to_id, 0)

    def take(self, position: int) -> Message | None:
        """Remove the message at ``position``; None if the partition swallows it."""
        message = self.in_flight.pop(position)
        if not self.connected(message.from_id, message.to_id):
            self.dropped_count += 1
            return None
        self.delivered_count += 1
        return message

    def drop(self, position: int) -> None:
        self.in_flight.pop(position)
        self.dropped_count += 1

    def duplicate(self, position: int) -> None:
        self.send([self.in_flight[position]])

    def partition(self, sides: dict[int, int]) -> None:
        self.side_of = dict(sides)

    def heal(self) -> None:
        self.side_of = {}
