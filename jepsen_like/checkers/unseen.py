"""Unseen acknowledged writes: ok sends that no read has returned (yet).

Over the run this is a lag measure: the count rises with sends and falls as consumers
catch up. At the end of a history it must be zero: a message still unseen then was
either lost or never polled, and a run's final read phase exists to rule the latter out.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from jepsen_like.checkers.result import Anomaly, CheckResult, from_anomalies
from jepsen_like.history import History, Operation, Poll, Read, Send, Type, Value

NAME = "unseen"
SERIES_POINTS_MAX = 1000
"""Enough for a plot; keeps anomalies.json small on long runs."""


def check_unseen(history: History) -> CheckResult:
    unseen: dict[str, dict[Value, Operation]] = defaultdict(dict)
    polled: dict[str, set[Value]] = defaultdict(set)
    series: list[tuple[int, dict[str, int]]] = []
    by_completion = {op.completion.index: op for op in history.operations if op.completion}
    for entry in history.entries:
        if entry.type is not Type.OK:
            continue
        payload = entry.value
        if isinstance(payload, Send):
            if payload.value not in polled[payload.tp]:
                unseen[payload.tp][payload.value] = by_completion[entry.index]
        elif isinstance(payload, Poll | Read):
            for tp, value in _read_values(payload):
                polled[tp].add(value)
                unseen[tp].pop(value, None)
        else:
            continue
        series.append((entry.time_ns, {tp: len(vs) for tp, vs in unseen.items() if vs}))
    anomalies = [
        Anomaly(
            "unseen",
            tp,
            f"send of {value!r} was acknowledged but no read ever returned it",
            (op,),
            {"value": value},
        )
        for tp, by_value in sorted(unseen.items())
        for value, op in by_value.items()
    ]
    details: dict[str, Any] = {
        "final_unseen": {tp: len(vs) for tp, vs in sorted(unseen.items()) if vs},
        "series": [
            {"time_ns": time_ns, "unseen": counts} for time_ns, counts in _downsample(series)
        ],
    }
    return from_anomalies(NAME, anomalies, details)


def _read_values(payload: Poll | Read) -> list[tuple[str, Value]]:
    if isinstance(payload, Read):
        return [] if payload.value is None else [(payload.tp, payload.value)]
    return [(tp, value) for tp, records in payload.reads for _, value in records]


def _downsample(
    series: list[tuple[int, dict[str, int]]],
) -> list[tuple[int, dict[str, int]]]:
    if len(series) <= SERIES_POINTS_MAX:
        return series
    stride = -(-len(series) // SERIES_POINTS_MAX)
    kept = series[::stride]
    return kept if kept[-1] is series[-1] else [*kept, series[-1]]
