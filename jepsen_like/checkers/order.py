"""Ordering: polls of one consumer, and sends of one producer, must move forward.

Rules follow Jepsen's Kafka queue checker. Offsets are compared by their index in the
version order (see ``observed``), so a gap nobody observed is not a skip.

* Within one poll, consecutive records of a partition must advance by exactly one index
  (``int-poll-skip`` when they jump over observed records, ``int-nonmonotonic-poll``
  when they stand still or go back).
* Between consecutive ok polls of one process, the first record of a partition must be
  the one right after the last record the previous poll returned for it (``poll-skip``,
  ``nonmonotonic-poll``).
* A rebalance relaxes this: an ok or info ``assign``/``subscribe`` forgets the positions
  of partitions no longer assigned (all of them with ``seek_to_beginning``); a poll that
  reports a partition in ``rebalanced`` starts it afresh; a crash forgets everything.
* One producer's acknowledged offsets on a partition must increase
  (``nonmonotonic-send``); only a crash resets it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from jepsen_like.checkers.observed import Observed
from jepsen_like.checkers.result import Anomaly, CheckResult, from_anomalies
from jepsen_like.history import Assignment, F, History, Operation, Poll, Send, Type

POLLS = "poll-order"
SENDS = "send-order"

Position = tuple[Operation, int]
"""The operation that last touched a partition and the offset it left off at."""


def check_poll_order(history: History, observed: Observed | None = None) -> CheckResult:
    observed = observed or Observed.of(history)
    return from_anomalies(POLLS, _poll_cases(history, observed))


def check_send_order(history: History, observed: Observed | None = None) -> CheckResult:
    observed = observed or Observed.of(history)
    return from_anomalies(SENDS, _send_cases(history, observed))


def _compare(
    observed: Observed, internal: bool, tp: str, low: int, high: int, ops: tuple[Operation, ...]
) -> Iterator[Anomaly]:
    prefix = "int-" if internal else ""
    delta = observed.index(tp, high) - observed.index(tp, low)
    if delta > 1:
        skipped = observed.between(tp, low, high)
        yield Anomaly(
            f"{prefix}poll-skip",
            tp,
            f"read offset {high} right after offset {low}, skipping observed offsets {skipped}",
            ops,
            {"from_offset": low, "to_offset": high, "skipped_offsets": skipped},
        )
    elif delta < 1:
        yield Anomaly(
            f"{prefix}nonmonotonic-poll",
            tp,
            f"read offset {high} right after offset {low}: the position went backwards",
            ops,
            {"from_offset": low, "to_offset": high, "delta": delta},
        )


def _assignment_kept(positions: dict[str, Position], assignment: Assignment) -> dict[str, Position]:
    if assignment.seek_to_beginning:
        return {}
    return {tp: at for tp, at in positions.items() if tp in assignment.tps}


def _poll_cases(history: History, observed: Observed) -> Iterator[Anomaly]:
    positions: dict[int, dict[str, Position]] = {}
    for op in history.operations:
        mine = positions.setdefault(op.process, {})
        if op.f is F.CRASH:
            mine.clear()
        elif op.f in (F.ASSIGN, F.SUBSCRIBE) and op.type in (Type.OK, Type.INFO):
            assignment = op.invoke.value
            if isinstance(assignment, Assignment):
                positions[op.process] = _assignment_kept(mine, assignment)
        elif op.f is F.POLL and op.type is Type.OK and isinstance(op.value, Poll):
            yield from _one_poll(observed, op, op.value, mine)


def _one_poll(
    observed: Observed, op: Operation, poll: Poll, positions: dict[str, Position]
) -> Iterator[Anomaly]:
    for tp, records in poll.reads:
        if not records:
            continue
        if tp not in poll.rebalanced:
            for (low, _), (high, _) in itertools.pairwise(records):
                yield from _compare(observed, True, tp, low, high, (op,))
            previous = positions.get(tp)
            if previous is not None:
                last_op, last_offset = previous
                first = records[0][0]
                yield from _compare(observed, False, tp, last_offset, first, (last_op, op))
        positions[tp] = (op, records[-1][0])


def _send_cases(history: History, observed: Observed) -> Iterator[Anomaly]:
    last: dict[int, dict[str, Position]] = {}
    for op in history.operations:
        mine = last.setdefault(op.process, {})
        if op.f is F.CRASH:
            mine.clear()
            continue
        send = op.value
        if op.f is not F.SEND or op.type is not Type.OK or not isinstance(send, Send):
            continue
        if send.offset is None:
            continue
        previous = mine.get(send.tp)
        if previous is not None and previous[1] >= send.offset:
            yield Anomaly(
                "nonmonotonic-send",
                send.tp,
                f"process {op.process} was acknowledged offset {send.offset} after "
                f"offset {previous[1]} on the same partition",
                (previous[0], op),
                {"from_offset": previous[1], "to_offset": send.offset},
            )
        mine[send.tp] = (op, send.offset)
