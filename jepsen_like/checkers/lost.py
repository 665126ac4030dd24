"""Lost writes: an acknowledged send that a read should have seen, but no read did.

Two rules. Without any final phase: once some read reached offset ``o`` of a partition,
every acknowledged send at an offset at or below ``o`` must have been read by someone
(Jepsen's rule: the reader proves the log got that far). With a final read-everything
phase (entries marked ``phase: final``), every acknowledged send must have been read.
"""

from __future__ import annotations

from collections.abc import Iterator

from jepsen_like.checkers.observed import Observed
from jepsen_like.checkers.result import Anomaly, CheckResult, from_anomalies
from jepsen_like.history import F, History, Send, Type

NAME = "lost-writes"


def check_lost_writes(history: History, observed: Observed | None = None) -> CheckResult:
    observed = observed or Observed.of(history)
    final_phase = history.has_final_phase
    anomalies = list(_lost(history, observed, final_phase))
    acknowledged = sum(1 for op in history.by_f(F.SEND) if op.type is Type.OK)
    return from_anomalies(
        NAME, anomalies, {"acknowledged_sends": acknowledged, "final_phase": final_phase}
    )


def _lost(history: History, observed: Observed, final_phase: bool) -> Iterator[Anomaly]:
    for op in history.by_f(F.SEND):
        send = op.value
        if op.type is not Type.OK or not isinstance(send, Send) or send.offset is None:
            continue
        if send.value in observed.read_values.get(send.tp, ()):
            continue
        highest = observed.highest_read.get(send.tp)
        if highest is not None and highest.offset >= send.offset:
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
