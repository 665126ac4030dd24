"""The nemesis timeline: when each fault started and stopped, and what it hit.

Recorded as events (one JSON line each, appended as faults happen, so a run that dies
mid-fault still leaves a usable file) and read back as intervals for plots and reports.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from jepsen_like.history import HistoryError, read_jsonl, write_jsonl


class Edge(enum.StrEnum):
    START = "start"
    STOP = "stop"


@attrs.frozen
class NemesisEvent:
    time_ns: int
    """Same monotonic clock as the history."""
    edge: Edge
    kind: str
    """e.g. ``partition``, ``kill``, ``pause``, ``clock-skew``, ``disk-slow``."""
    targets: tuple[str, ...]
    """Nodes (or links, as ``a-b``) the fault applies to."""
    fault_id: int
    """Pairs a stop with its start when faults of one kind overlap."""
    details: tuple[str, ...] = ()
    """Exactly what the fault did, when targets alone do not say (``corrupt``: each file,
    byte and bit flipped, each file cut and its sizes)."""

    def to_json(self) -> dict[str, Any]:
        raw: dict[str, Any] = {
            "time_ns": self.time_ns,
            "event": str(self.edge),
            "kind": self.kind,
            "targets": list(self.targets),
            "id": self.fault_id,
        }
        if self.details:
            raw["details"] = list(self.details)
        return raw

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> NemesisEvent:
        try:
            return cls(
                time_ns=int(raw["time_ns"]),
                edge=Edge(raw["event"]),
                kind=str(raw["kind"]),
                targets=tuple(str(t) for t in raw.get("targets", ())),
                fault_id=int(raw["id"]),
                details=tuple(str(d) for d in raw.get("details", ())),
            )
        except (KeyError, ValueError, TypeError) as error:
            raise HistoryError(f"nemesis event {raw!r}: {error!r}") from error


@attrs.frozen
class FaultInterval:
    kind: str
    targets: tuple[str, ...]
    start_ns: int
    stop_ns: int | None
    """None: never healed before the recording ended."""
    fault_id: int

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "targets": list(self.targets),
            "start_ns": self.start_ns,
            "stop_ns": self.stop_ns,
            "id": self.fault_id,
        }


def intervals(events: Iterable[NemesisEvent]) -> list[FaultInterval]:
    started: dict[int, NemesisEvent] = {}
    done: list[FaultInterval] = []
    for event in sorted(events, key=lambda e: e.time_ns):
        if event.edge is Edge.START:
            if event.fault_id in started:
                raise HistoryError(f"nemesis fault {event.fault_id} started twice")
            started[event.fault_id] = event
            continue
        start = started.pop(event.fault_id, None)
        if start is None:
            raise HistoryError(f"nemesis fault {event.fault_id} stopped but never started")
        done.append(
            FaultInterval(start.kind, start.targets, start.time_ns, event.time_ns, start.fault_id)
        )
    for start in started.values():
        done.append(FaultInterval(start.kind, start.targets, start.time_ns, None, start.fault_id))
    return sorted(done, key=lambda interval: interval.start_ns)


def write_nemesis(path: Path, events: Iterable[NemesisEvent]) -> None:
    write_jsonl(path, (event.to_json() for event in events))


def read_nemesis(path: Path) -> list[NemesisEvent]:
    return [NemesisEvent.from_json(raw) for raw in read_jsonl(path)]
