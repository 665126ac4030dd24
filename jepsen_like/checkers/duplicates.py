"""Duplicates: one value at two offsets of one partition (a send applied twice, or a read
that disagrees with the acknowledgement about where a message landed)."""

from __future__ import annotations

from collections.abc import Iterator

from jepsen_like.checkers.observed import Observation, Observed
from jepsen_like.checkers.result import Anomaly, CheckResult, from_anomalies
from jepsen_like.history import History, Operation

NAME = "duplicates"


def check_duplicates(history: History, observed: Observed | None = None) -> CheckResult:
    observed = observed or Observed.of(history)
    return from_anomalies(NAME, _duplicates(observed))


def witnesses(observations: list[Observation]) -> tuple[Operation, ...]:
    """One operation per distinct (offset, value) claim, so evidence stays short."""
    seen: dict[tuple[int, object], Operation] = {}
    for observation in observations:
        seen.setdefault((observation.offset, observation.value), observation.operation)
    return tuple(dict.fromkeys(seen.values()))


def _duplicates(observed: Observed) -> Iterator[Anomaly]:
    for tp, by_value in sorted(observed.of_value.items()):
        for value, observations in by_value.items():
            offsets = sorted({o.offset for o in observations})
            if len(offsets) > 1:
                yield Anomaly(
                    "duplicate",
                    tp,
                    f"value {value!r} appears at {len(offsets)} offsets {offsets}",
                    witnesses(observations),
                    {"value": value, "offsets": offsets},
                )
