"""Aborted and phantom reads: every value read must come from a send that may have happened.

A send that completed ``fail`` definitively did not happen, so reading its value is an
``aborted-read``. A send that completed ``info`` may or may not have happened: reading it
is fine. A value no send ever carried is a ``phantom-read`` (the log invented it, or
served it from the wrong partition).
"""

from __future__ import annotations

from collections.abc import Iterator

from jepsen_like.checkers.observed import Observed
from jepsen_like.checkers.result import Anomaly, CheckResult, from_anomalies
from jepsen_like.history import History, Type

NAME = "aborted-reads"


def check_aborted_reads(history: History, observed: Observed | None = None) -> CheckResult:
    observed = observed or Observed.of(history)
    return from_anomalies(NAME, _cases(observed))


def _cases(observed: Observed) -> Iterator[Anomaly]:
    for tp, by_value in sorted(observed.of_value.items()):
        for value, observations in by_value.items():
            reads = [o for o in observations if o.is_read]
            if not reads:
                continue
            first_read = reads[0]
            writers = observed.writers.get((tp, value), [])
            if not writers:
                yield Anomaly(
                    "phantom-read",
                    tp,
                    f"read {value!r} at offset {first_read.offset}, a value never sent there",
                    (first_read.operation,),
                    {"value": value, "offset": first_read.offset},
                )
            elif all(writer.type is Type.FAIL for writer in writers):
                yield Anomaly(
                    "aborted-read",
                    tp,
                    f"read {value!r} at offset {first_read.offset}, but its send failed",
                    (*writers, first_read.operation),
                    {"value": value, "offset": first_read.offset},
                )
