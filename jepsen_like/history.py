"""The history model: what the workload workers record and every checker reads.

A history is a sequence of *entries*, one JSON object per line. Each client operation is
an ``invoke`` entry followed, on the same process, by one completion: ``ok`` (it
happened, with its result), ``fail`` (it definitively did not happen) or ``info`` (we
cannot know: a timeout, a dropped connection). An invocation that never completes is
treated as ``info``. Checkers work on *operations*, which pair the two entries, because
both the real-time interval and the result are needed to judge an operation.

Payloads are parsed into small frozen classes at read time so a malformed history fails
loudly here, once, instead of deep inside a checker.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import attrs

Value: TypeAlias = int | str
"""A message value. Workers make every value unique per topic-partition."""


class HistoryError(ValueError):
    """The history itself is malformed (not an anomaly of the system under test)."""


class Type(enum.StrEnum):
    INVOKE = "invoke"
    OK = "ok"
    FAIL = "fail"
    INFO = "info"


class F(enum.StrEnum):
    """Operation functions of the queue and consumer-group workloads."""

    SEND = "send"
    POLL = "poll"
    READ = "read"
    ASSIGN = "assign"
    SUBSCRIBE = "subscribe"
    CRASH = "crash"
    COMMIT = "commit"
    FETCH_COMMITTED = "fetch_committed"


class Phase(enum.StrEnum):
    MAIN = "main"
    FINAL = "final"
    """The read-everything phase after faults heal: every acknowledged send must appear."""


def tp_key(topic: str, partition: int) -> str:
    """Topic-partitions are keyed as ``topic/partition``: Kafka forbids '/' in topic names."""
    return f"{topic}/{partition}"


def _value(raw: Any, what: str) -> Value:
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise HistoryError(f"{what}: expected an int or str value, got {raw!r}")
    return raw


def _offset(raw: Any, what: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise HistoryError(f"{what}: expected a non-negative int offset, got {raw!r}")
    return raw


def _optional_offset(raw: Any, what: str) -> int | None:
    return None if raw is None else _offset(raw, what)


def _string(raw: Any, what: str) -> str:
    if not isinstance(raw, str) or not raw:
        raise HistoryError(f"{what}: expected a non-empty string, got {raw!r}")
    return raw


@attrs.frozen
class Send:
    tp: str
    """Topic-partition the message was produced to."""
    value: Value
    offset: int | None = None
    """Offset the broker assigned; only on ``ok`` completions."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"tp": self.tp, "value": self.value}
        if self.offset is not None:
            out["offset"] = self.offset
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Send:
        return cls(
            tp=_string(raw.get("tp"), "send.tp"),
            value=_value(raw.get("value"), "send.value"),
            offset=_optional_offset(raw.get("offset"), "send.offset"),
        )


Records: TypeAlias = tuple[tuple[int, Value], ...]


@attrs.frozen
class Poll:
    reads: tuple[tuple[str, Records], ...] = ()
    """Per topic-partition, the (offset, value) records one consumer poll returned, in
    the order the client delivered them. Empty on the invocation."""
    rebalanced: frozenset[str] = frozenset()
    """Topic-partitions whose assignment changed during this poll; their position may
    legitimately rewind or jump, so ordering checks skip them for this poll."""

    def reads_by_tp(self) -> dict[str, Records]:
        return dict(self.reads)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "reads": {tp: [[offset, value] for offset, value in rs] for tp, rs in self.reads}
        }
        if self.rebalanced:
            out["rebalanced"] = sorted(self.rebalanced)
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Poll:
        reads_raw = raw.get("reads", {})
        if not isinstance(reads_raw, Mapping):
            raise HistoryError(f"poll.reads: expected an object, got {reads_raw!r}")
        reads = []
        for tp, records in reads_raw.items():
            parsed = []
            for record in records:
                if not isinstance(record, Sequence) or len(record) != 2:
                    raise HistoryError(f"poll.reads[{tp}]: expected [offset, value]: {record!r}")
                parsed.append((_offset(record[0], "poll offset"), _value(record[1], "poll value")))
            reads.append((_string(tp, "poll tp"), tuple(parsed)))
        rebalanced = frozenset(_string(tp, "poll.rebalanced") for tp in raw.get("rebalanced", ()))
        return cls(reads=tuple(reads), rebalanced=rebalanced)


@attrs.frozen
class Read:
    """A point read of one offset: the log model's ``read(offset) -> value | none-yet``."""

    tp: str
    offset: int
    value: Value | None = None
    """On ``ok``: the value at ``offset``, or None when the log is not that long yet."""

    def to_json(self) -> dict[str, Any]:
        return {"tp": self.tp, "offset": self.offset, "value": self.value}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Read:
        value = raw.get("value")
        return cls(
            tp=_string(raw.get("tp"), "read.tp"),
            offset=_offset(raw.get("offset"), "read.offset"),
            value=None if value is None else _value(value, "read.value"),
        )


@attrs.frozen
class Assignment:
    """Payload of ``assign`` (explicit partitions) and ``subscribe`` (group-managed)."""

    tps: frozenset[str]
    seek_to_beginning: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"tps": sorted(self.tps)}
        if self.seek_to_beginning:
            out["seek_to_beginning"] = True
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Assignment:
        tps = frozenset(_string(tp, "assign.tps") for tp in raw.get("tps", ()))
        return cls(tps=tps, seek_to_beginning=bool(raw.get("seek_to_beginning", False)))


@attrs.frozen
class Crash:
    """A client process crashed: its consumer position and producer state are gone."""

    def to_json(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Crash:
        return cls()


@attrs.frozen
class Commit:
    group: str
    tp: str
    offset: int

    def to_json(self) -> dict[str, Any]:
        return {"group": self.group, "tp": self.tp, "offset": self.offset}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Commit:
        return cls(
            group=_string(raw.get("group"), "commit.group"),
            tp=_string(raw.get("tp"), "commit.tp"),
            offset=_offset(raw.get("offset"), "commit.offset"),
        )


@attrs.frozen
class FetchCommitted:
    group: str
    tp: str
    offset: int | None = None
    """On ``ok``: the committed offset, or None when the group never committed."""

    def to_json(self) -> dict[str, Any]:
        return {"group": self.group, "tp": self.tp, "offset": self.offset}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> FetchCommitted:
        return cls(
            group=_string(raw.get("group"), "fetch_committed.group"),
            tp=_string(raw.get("tp"), "fetch_committed.tp"),
            offset=_optional_offset(raw.get("offset"), "fetch_committed.offset"),
        )


Payload: TypeAlias = Send | Poll | Read | Assignment | Crash | Commit | FetchCommitted

PAYLOAD_TYPES: Mapping[F, type[Payload]] = {
    F.SEND: Send,
    F.POLL: Poll,
    F.READ: Read,
    F.ASSIGN: Assignment,
    F.SUBSCRIBE: Assignment,
    F.CRASH: Crash,
    F.COMMIT: Commit,
    F.FETCH_COMMITTED: FetchCommitted,
}


@attrs.frozen
class Entry:
    """One line of ``history.jsonl``."""

    index: int
    """Position in the history; assigned on read so anomalies can point at lines."""
    time_ns: int
    """Monotonic clock of the recording host, nanoseconds; never decreases."""
    process: int
    """Logical client; at most one operation open per process."""
    type: Type
    f: F
    value: Payload
    phase: Phase = Phase.MAIN

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "index": self.index,
            "time_ns": self.time_ns,
            "process": self.process,
            "type": str(self.type),
            "f": str(self.f),
            "value": self.value.to_json(),
        }
        if self.phase is not Phase.MAIN:
            out["phase"] = str(self.phase)
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any], index: int) -> Entry:
        try:
            f = F(raw["f"])
            kind = Type(raw["type"])
            phase = Phase(raw.get("phase", "main"))
            time_ns = raw["time_ns"]
            process = raw["process"]
        except (KeyError, ValueError) as error:
            raise HistoryError(f"entry {index}: {error!r} in {raw!r}") from error
        if not isinstance(time_ns, int) or not isinstance(process, int):
            raise HistoryError(f"entry {index}: time_ns and process must be ints: {raw!r}")
        value = raw.get("value") or {}
        if not isinstance(value, Mapping):
            raise HistoryError(f"entry {index}: value must be an object: {raw!r}")
        payload = PAYLOAD_TYPES[f].from_json(value)
        return cls(index, time_ns, process, kind, f, payload, phase)


@attrs.frozen
class Operation:
    """An invocation paired with its completion (None: never completed, so indeterminate)."""

    invoke: Entry
    completion: Entry | None

    @property
    def process(self) -> int:
        return self.invoke.process

    @property
    def f(self) -> F:
        return self.invoke.f

    @property
    def type(self) -> Type:
        """The outcome: ok, fail, or info (also for an operation that never completed)."""
        return Type.INFO if self.completion is None else self.completion.type

    @property
    def value(self) -> Payload:
        """The result when ok, else what was asked."""
        if self.completion is not None and self.completion.type is Type.OK:
            return self.completion.value
        return self.invoke.value

    @property
    def invoke_ns(self) -> int:
        return self.invoke.time_ns

    @property
    def complete_ns(self) -> int | None:
        """None when the outcome is unknown: the effect may land at any later time."""
        if self.completion is None or self.completion.type is Type.INFO:
            return None
        return self.completion.time_ns

    @property
    def phase(self) -> Phase:
        return self.invoke.phase

    def entries(self) -> tuple[Entry, ...]:
        return (self.invoke,) if self.completion is None else (self.invoke, self.completion)

    def to_json(self) -> dict[str, Any]:
        return {
            "invoke": self.invoke.to_json(),
            "completion": None if self.completion is None else self.completion.to_json(),
        }


@attrs.frozen
class History:
    entries: tuple[Entry, ...]
    operations: tuple[Operation, ...]
    """In invocation order. Crashes appear as operations with no completion."""

    @classmethod
    def from_entries(cls, entries: Iterable[Entry]) -> History:
        entries = tuple(entries)
        return cls(entries, pair(entries))

    def by_f(self, *fs: F) -> Iterator[Operation]:
        wanted = set(fs)
        return (op for op in self.operations if op.f in wanted)

    @property
    def has_final_phase(self) -> bool:
        return any(e.phase is Phase.FINAL and e.type is Type.OK for e in self.entries)


def pair(entries: Sequence[Entry]) -> tuple[Operation, ...]:
    """Match each invocation with the next completion of the same process.

    A crash is a lone ``info`` entry; it also ends the process's open operation, whose
    outcome becomes unknown.
    """
    open_by_process: dict[int, int] = {}
    slots: list[list[Entry | None]] = []
    last_time_ns = None
    for entry in entries:
        if last_time_ns is not None and entry.time_ns < last_time_ns:
            raise HistoryError(f"entry {entry.index}: time goes backwards")
        last_time_ns = entry.time_ns
        if entry.f is F.CRASH:
            if entry.type is not Type.INFO:
                raise HistoryError(f"entry {entry.index}: a crash is recorded as type info")
            open_by_process.pop(entry.process, None)
            slots.append([entry, None])
            continue
        if entry.type is Type.INVOKE:
            if entry.process in open_by_process:
                raise HistoryError(f"entry {entry.index}: process {entry.process} already busy")
            open_by_process[entry.process] = len(slots)
            slots.append([entry, None])
            continue
        slot = open_by_process.pop(entry.process, None)
        if slot is None:
            raise HistoryError(f"entry {entry.index}: completion without an invocation")
        invoke = slots[slot][0]
        if invoke is None or invoke.f is not entry.f:
            raise HistoryError(f"entry {entry.index}: completes a different operation")
        slots[slot][1] = entry
    return tuple(Operation(invoke, completion) for invoke, completion in slots if invoke)


def write_jsonl(path: Path, records: Iterable[Mapping[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, separators=(",", ":")) + "\n")


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise HistoryError(f"{path}:{number}: {error}") from error
            if not isinstance(record, dict):
                raise HistoryError(f"{path}:{number}: expected a JSON object")
            yield record


def write_history(path: Path, entries: Iterable[Entry]) -> None:
    write_jsonl(path, (entry.to_json() for entry in entries))


def read_history(path: Path) -> History:
    """Entries are re-indexed by line so a hand-edited file still points at real lines."""
    records = read_jsonl(path)
    return History.from_entries(Entry.from_json(raw, i) for i, raw in enumerate(records))


@attrs.define(eq=False)
class Recorder:
    """Appends entries with consecutive indexes; workers and synthetic tests share it.

    Without an explicit ``time_ns`` each entry is ``tick_ns`` after the previous one, which
    keeps synthetic histories short to write while still strictly ordered in time.
    """

    tick_ns: int = 1_000_000
    entries: list[Entry] = attrs.field(factory=list)
    _open: dict[int, Entry] = attrs.field(factory=dict)

    def _time(self, time_ns: int | None) -> int:
        if time_ns is not None:
            return time_ns
        return self.entries[-1].time_ns + self.tick_ns if self.entries else 0

    def _append(
        self, process: int, kind: Type, f: F, value: Payload, time_ns: int | None, phase: Phase
    ) -> Entry:
        entry = Entry(len(self.entries), self._time(time_ns), process, kind, f, value, phase)
        self.entries.append(entry)
        return entry

    def invoke(
        self,
        process: int,
        f: F,
        value: Payload,
        *,
        time_ns: int | None = None,
        phase: Phase = Phase.MAIN,
    ) -> Entry:
        entry = self._append(process, Type.INVOKE, f, value, time_ns, phase)
        self._open[process] = entry
        return entry

    def complete(
        self,
        process: int,
        kind: Type,
        value: Payload | None = None,
        *,
        time_ns: int | None = None,
    ) -> Entry:
        """Completes the process's open operation; ``value`` defaults to the invocation's."""
        invoke = self._open.pop(process)
        payload = invoke.value if value is None else value
        return self._append(process, kind, invoke.f, payload, time_ns, invoke.phase)

    def crash(self, process: int, *, time_ns: int | None = None) -> Entry:
        self._open.pop(process, None)
        return self._append(process, Type.INFO, F.CRASH, Crash(), time_ns, Phase.MAIN)

    def history(self) -> History:
        return History.from_entries(self.entries)
