"""Everything the queue checkers need to know about who saw what at which offset.

Built once per history. The *version order* of a topic-partition is the sorted set of
offsets anyone observed (in a send acknowledgement or a read); as in Jepsen's Kafka test,
an offset's *index* in it is what "skipping" and "going backwards" are measured in, so
offsets that nobody ever observed (gaps) are not counted as skipped.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterator

import attrs

from jepsen_like.history import F, History, Operation, Poll, Read, Send, Type, Value


@attrs.frozen
class Observation:
    tp: str
    offset: int
    value: Value
    operation: Operation
    is_read: bool
    """True for polls and point reads, False for send acknowledgements."""


def _observations(history: History) -> Iterator[Observation]:
    for op in history.operations:
        if op.type is not Type.OK:
            continue
        payload = op.value
        if isinstance(payload, Send) and payload.offset is not None:
            yield Observation(payload.tp, payload.offset, payload.value, op, False)
        elif isinstance(payload, Poll):
            for tp, records in payload.reads:
                for offset, value in records:
                    yield Observation(tp, offset, value, op, True)
        elif isinstance(payload, Read) and payload.value is not None:
            yield Observation(payload.tp, payload.offset, payload.value, op, True)


@attrs.frozen(eq=False)
class Observed:
    at_offset: dict[str, dict[int, list[Observation]]]
    of_value: dict[str, dict[Value, list[Observation]]]
    offsets: dict[str, list[int]]
    """Per tp, the sorted distinct observed offsets: the version order."""
    read_values: dict[str, set[Value]]
    highest_read: dict[str, Observation]
    writers: dict[tuple[str, Value], list[Operation]]
    """Every send of a value to a tp, whatever its outcome."""

    @classmethod
    def of(cls, history: History) -> Observed:
        at_offset: dict[str, dict[int, list[Observation]]] = defaultdict(lambda: defaultdict(list))
        of_value: dict[str, dict[Value, list[Observation]]] = defaultdict(lambda: defaultdict(list))
        read_values: dict[str, set[Value]] = defaultdict(set)
        highest_read: dict[str, Observation] = {}
        for seen in _observations(history):
            at_offset[seen.tp][seen.offset].append(seen)
            of_value[seen.tp][seen.value].append(seen)
            if seen.is_read:
                read_values[seen.tp].add(seen.value)
                best = highest_read.get(seen.tp)
                if best is None or seen.offset > best.offset:
                    highest_read[seen.tp] = seen
        writers: dict[tuple[str, Value], list[Operation]] = defaultdict(list)
        for op in history.by_f(F.SEND):
            send = op.invoke.value
            if isinstance(send, Send):
                writers[(send.tp, send.value)].append(op)
        offsets = {tp: sorted(by_offset) for tp, by_offset in at_offset.items()}
        return cls(at_offset, of_value, offsets, read_values, highest_read, writers)

    def index(self, tp: str, offset: int) -> int:
        """Position of an observed offset in its tp's version order."""
        order = self.offsets[tp]
        position = bisect.bisect_left(order, offset)
        if position == len(order) or order[position] != offset:
            raise KeyError((tp, offset))
        return position

    def between(self, tp: str, low: int, high: int) -> list[int]:
        """Observed offsets strictly between two offsets: what a jump from low to high skipped."""
        order = self.offsets[tp]
        return order[bisect.bisect_right(order, low) : bisect.bisect_left(order, high)]
