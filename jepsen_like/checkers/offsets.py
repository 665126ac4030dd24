"""Inconsistent offsets: two different values at one offset of one partition, across all
reads and send acknowledgements. Replicas that diverged, or a leader that overwrote an
acknowledged entry, show up here."""

from __future__ import annotations

from collections.abc import Iterator

from jepsen_like.checkers.duplicates import witnesses
from jepsen_like.checkers.observed import Observed
from jepsen_like.checkers.result import Anomaly, CheckResult, from_anomalies
from jepsen_like.history import History

NAME = "inconsistent-offsets"


def check_inconsistent_offsets(history: History, observed: Observed | None = None) -> CheckResult:
    observed = observed or Observed.of(history)
    return from_anomalies(NAME, _inconsistent(observed))


def _inconsistent(observed: Observed) -> Iterator[Anomaly]:
    for tp, by_offset in sorted(observed.at_offset.items()):
        for offset in sorted(by_offset):
            observations = by_offset[offset]
            values = sorted({o.value for o in observations}, key=repr)
            if len(values) > 1:
                yield Anomaly(
                    "inconsistent-offset",
                    tp,
                    f"offset {offset} holds {len(values)} different values {values}",
                    witnesses(observations),
                    {"offset": offset, "values": values},
                )
