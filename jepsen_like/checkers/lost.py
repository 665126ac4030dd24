"""Lost writes: an acknowledged send that a read should have seen, but no read did.

Two rules. Without any final phase: once some read reached offset ``o`` of a partition,
every acknowledged send at an offset at or below ``o`` must have been read by someone
(Jepsen's rule: the reader proves the log got that far). With a final read-everything
phase (entries marked ``phase: final``), every acknowledged send must have been read,
and where the final phase read across a send's offset, it must have returned the value
there: one that earlier reads returned and the log has since lost (a committed entry
overwritten after a bad election, say) is lost too.
"""

from __future__ import annotations

from collections.abc import Iterator

from jepsen_like.checkers.observed import Observed
from jepsen_like.checkers.result import Anomaly, CheckResult, from_anomalies
from jepsen_like.history import F, History, Phase, Poll, Read, Send, Type, Value

NAME = "lost-writes"


def check_lost_writes(history: History, observed: Observed | None = None) -> CheckResult:
    observed = observed or Observed.of(history)
    final_phase = history.has_final_phase
    anomalies = list(_lost(history, observed, final_phase))
    acknowledged = sum(1 for op in history.by_f(F.SEND) if op.type is Type.OK)
    return from_anomalies(
        NAME, anomalies, {"acknowledged_sends": acknowledged, "final_phase": final_phase}
    )


def _final_reads(history: History) -> dict[str, dict[int, Value]]:
    """Per tp, what the final read-everything phase returned at each offset."""
    found: dict[str, dict[int, Value]] = {}
    for op in history.operations:
        if op.phase is not Phase.FINAL or op.type is not Type.OK:
            continue
        payload = op.value
        if isinstance(payload, Poll):
            for tp, records in payload.reads:
                found.setdefault(tp, {}).update(records)
        elif isinstance(payload, Read) and payload.value is not None:
            found.setdefault(payload.tp, {})[payload.offset] = payload.value
    return found


def _lost(history: History, observed: Observed, final_phase: bool) -> Iterator[Anomaly]:
    final = _final_reads(history) if final_phase else {}
    for op in history.by_f(F.SEND):
        send = op.value
        if op.type is not Type.OK or not isinstance(send, Send) or send.offset is None:
            continue
        read_before = send.value in observed.read_values.get(send.tp, ())
        highest = observed.highest_read.get(send.tp)
        final_reads = final.get(send.tp, {})
        if _vanished(send, final_reads):
            seen = observed.of_value[send.tp][send.value]
            readers = [sighting.operation for sighting in seen if sighting.is_read][:2]
            yield Anomaly(
                "lost-write",
                send.tp,
                f"send of {send.value!r} was acknowledged at offset {send.offset} and read "
                "before, but the final read-everything phase read past that offset "
                "without it: the log lost it since",
                (op, *readers),
                {"value": send.value, "offset": send.offset, "read_before": read_before},
            )
        elif read_before:
            continue
        elif highest is not None and highest.offset >= send.offset:
            yield Anomaly(
                "lost-write",
                send.tp,
                f"send of {send.value!r} was acknowledged at offset {send.offset}, a read "
                f"reached offset {highest.offset}, yet no read ever returned the value",
                (op, highest.operation),
                {"value": send.value, "offset": send.offset, "highest_read": highest.offset},
            )
        elif final_phase:
            yield Anomaly(
                "lost-write",
                send.tp,
                f"send of {send.value!r} was acknowledged at offset {send.offset} but the "
                "final read-everything phase never returned it",
                (op,),
                {
                    "value": send.value,
                    "offset": send.offset,
                    "highest_read": None if highest is None else highest.offset,
                },
            )


def _vanished(send: Send, final_reads: dict[int, Value]) -> bool:
    """The final phase read from below the send's offset to above it, and not its value."""
    assert send.offset is not None
    if not final_reads or send.value in final_reads.values():
        return False
    return min(final_reads) < send.offset < max(final_reads)
