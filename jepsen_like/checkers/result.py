"""What every checker returns: a verdict and the anomalies, each with its evidence."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from jepsen_like.history import Operation


class Verdict(enum.StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    UNKNOWN = "unknown"
    """The checker ran out of budget; says nothing either way, and is never a pass."""


@attrs.frozen
class Anomaly:
    kind: str
    """Stable name, e.g. ``lost-write``; tests and reports key on it."""
    key: str
    """The topic-partition (or group and topic-partition) it concerns."""
    explanation: str
    """One sentence a person can check against the operations below."""
    operations: tuple[Operation, ...]
    """The operations that together show the anomaly."""
    details: Mapping[str, Any] = attrs.field(factory=dict, hash=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "explanation": self.explanation,
            "details": dict(self.details),
            "operations": [op.to_json() for op in self.operations],
        }


@attrs.frozen
class CheckResult:
    checker: str
    verdict: Verdict
    anomalies: tuple[Anomaly, ...] = ()
    details: Mapping[str, Any] = attrs.field(factory=dict, hash=False)
    """Checker-specific numbers (counts, time series) for reports."""

    @property
    def valid(self) -> bool:
        return self.verdict is Verdict.VALID

    def kinds(self) -> frozenset[str]:
        return frozenset(anomaly.kind for anomaly in self.anomalies)

    def to_json(self) -> dict[str, Any]:
        return {
            "checker": self.checker,
            "verdict": str(self.verdict),
            "valid": self.valid,
            "anomaly_counts": count_kinds(self.anomalies),
            "details": dict(self.details),
            "anomalies": [anomaly.to_json() for anomaly in self.anomalies],
        }


def count_kinds(anomalies: Iterable[Anomaly]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for anomaly in anomalies:
        counts[anomaly.kind] = counts.get(anomaly.kind, 0) + 1
    return dict(sorted(counts.items()))


def from_anomalies(
    checker: str, anomalies: Iterable[Anomaly], details: Mapping[str, Any] | None = None
) -> CheckResult:
    found = tuple(anomalies)
    verdict = Verdict.INVALID if found else Verdict.VALID
    return CheckResult(checker, verdict, found, dict(details or {}))
