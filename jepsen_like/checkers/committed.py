"""Consumer-group committed offsets: never invented, never going backwards.

Per (group, topic-partition):

* ``invented-committed-offset``: a fetch returned an offset that no commit which may
  have happened (``ok`` or ``info``, invoked before the fetch returned) ever carried.
* ``committed-offset-regressed``: after a commit of ``x`` returned ok, or after a fetch
  returned ``x``, a later fetch (invoked after that) returned less than ``x`` or nothing,
  and no commit of the lower value could have landed in between (that is, no commit of
  it was invoked before the later fetch returned and still running after the earlier
  operation began). Kafka lets a consumer commit a lower offset, so such a commit
  excuses the rewind; the register linearizability checker is the exact version of this.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

import attrs

from jepsen_like.checkers.result import Anomaly, CheckResult, from_anomalies
from jepsen_like.history import Commit, F, FetchCommitted, History, Operation, Type

NAME = "committed-offsets"


def group_key(group: str, tp: str) -> str:
    return f"{group}@{tp}"


@attrs.frozen
class _Known:
    """An operation after whose return the committed offset is at least ``offset``."""

    offset: int
    operation: Operation
    start_ns: int
    end_ns: int


def check_committed_offsets(history: History) -> CheckResult:
    commits: dict[str, list[Operation]] = defaultdict(list)
    fetches: dict[str, list[Operation]] = defaultdict(list)
    for op in history.by_f(F.COMMIT, F.FETCH_COMMITTED):
        payload = op.value
        if isinstance(payload, Commit):
            commits[group_key(payload.group, payload.tp)].append(op)
        elif isinstance(payload, FetchCommitted) and op.type is Type.OK:
            fetches[group_key(payload.group, payload.tp)].append(op)
    anomalies: list[Anomaly] = []
    for key in sorted(fetches):
        anomalies.extend(_invented(key, commits[key], fetches[key]))
        anomalies.extend(_regressed(key, commits[key], fetches[key]))
    return from_anomalies(NAME, anomalies)


def _offset(op: Operation) -> int | None:
    payload = op.value
    if not isinstance(payload, Commit | FetchCommitted):
        raise TypeError(payload)
    return payload.offset


def _may_have_happened(commit: Operation) -> bool:
    return commit.type in (Type.OK, Type.INFO)


def _invented(key: str, commits: list[Operation], fetches: list[Operation]) -> Iterator[Anomaly]:
    for fetch in fetches:
        offset = _offset(fetch)
        if offset is None:
            continue
        end_ns = fetch.complete_ns
        candidates = [c for c in commits if _offset(c) == offset]
        possible = [
            c
            for c in candidates
            if _may_have_happened(c) and (end_ns is None or c.invoke_ns <= end_ns)
        ]
        if not possible:
            yield Anomaly(
                "invented-committed-offset",
                key,
                f"fetch returned committed offset {offset}, which no commit that may have "
                "happened before it carried",
                (*candidates, fetch),
                {"offset": offset},
            )


def _known_floors(commits: list[Operation], fetches: list[Operation]) -> list[_Known]:
    known = []
    for op in [*commits, *fetches]:
        offset = _offset(op)
        end_ns = op.complete_ns
        if op.type is Type.OK and offset is not None and end_ns is not None:
            known.append(_Known(offset, op, op.invoke_ns, end_ns))
    known.sort(key=lambda k: -k.offset)
    return known


def _excused(commits: list[Operation], floor: _Known, fetch: Operation, seen: int | None) -> bool:
    if seen is None:
        return False
    fetch_end_ns = fetch.complete_ns
    for commit in commits:
        if commit is floor.operation or _offset(commit) != seen or not _may_have_happened(commit):
            continue
        end_ns = commit.complete_ns
        invoked_in_time = fetch_end_ns is None or commit.invoke_ns < fetch_end_ns
        still_running = end_ns is None or end_ns > floor.start_ns
        if invoked_in_time and still_running:
            return True
    return False


def _regressed(key: str, commits: list[Operation], fetches: list[Operation]) -> Iterator[Anomaly]:
    floors = _known_floors(commits, fetches)
    for fetch in fetches:
        seen = _offset(fetch)
        for floor in floors:
            if seen is not None and floor.offset <= seen:
                break
            if floor.end_ns >= fetch.invoke_ns or _excused(commits, floor, fetch, seen):
                continue
            shown = "nothing" if seen is None else f"offset {seen}"
            yield Anomaly(
                "committed-offset-regressed",
                key,
                f"committed offset was known to be {floor.offset} (operation returned before "
                f"the fetch began), then the fetch returned {shown}",
                (floor.operation, fetch),
                {"floor": floor.offset, "fetched": seen},
            )
            break
