"""Histories of a *correct* system, made by simulation, to test the checkers against.

A correct history is the only honest baseline for a checker: every anomaly a test
injects is then the one anomaly present. The simulations apply each operation's effect
at one instant inside its invoke/complete window, so the result is linearizable by
construction, while the windows overlap to give the checkers real concurrency.
All randomness comes from the ``random.Random`` passed in, so a seed replays a history.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import attrs

from jepsen_like.history import (
    Assignment,
    Commit,
    Entry,
    F,
    FetchCommitted,
    History,
    Payload,
    Phase,
    Poll,
    Read,
    Recorder,
    Send,
    Type,
    Value,
    tp_key,
)

STEP_NS = 10_000_000
"""Simulated clock step: 10 ms, so a few hundred steps span seconds like a real run."""
POLL_RECORDS_MAX = 4


@attrs.define(eq=False)
class _Consumer:
    group: str
    positions: dict[str, int] = attrs.field(factory=dict)


@attrs.define(eq=False)
class QueueSimulation:
    """Producers and assign-mode consumers on an in-memory log, sharing one clock.

    Each step either invokes a new operation on an idle process or completes the open
    operation of a busy one, applying its effect at completion. Consumers commit their
    positions to their own group and fetch them back, for the committed-offsets checks.
    """

    rng: random.Random
    topic_partitions: tuple[str, ...] = (tp_key("t", 0), tp_key("t", 1))
    producers: int = 3
    consumers: int = 2
    fail_probability: float = 0.05
    info_probability: float = 0.05
    recorder: Recorder = attrs.field(init=False, factory=lambda: Recorder(tick_ns=STEP_NS))
    logs: dict[str, list[Value]] = attrs.field(init=False, factory=dict)
    committed: dict[tuple[str, str], int] = attrs.field(init=False, factory=dict)
    _consumer_state: dict[int, _Consumer] = attrs.field(init=False, factory=dict)
    _open: dict[int, Entry] = attrs.field(init=False, factory=dict)
    _next_value: int = attrs.field(init=False, default=0)

    def __attrs_post_init__(self) -> None:
        self.logs = {tp: [] for tp in self.topic_partitions}
        for process in range(self.producers, self.producers + self.consumers):
            self._consumer_state[process] = _Consumer(group=f"g{process}")

    def run(self, steps: int) -> list[Entry]:
        processes = range(self.producers + self.consumers)
        for _ in range(steps):
            process = self.rng.choice(processes)
            if process in self._open:
                self._complete(process)
            else:
                self._invoke(process, self._next_operation(process))
        for process in sorted(self._open):
            self._complete(process)
        self._final_reads()
        return self.recorder.entries

    def _invoke(self, process: int, call: tuple[F, Payload], phase: Phase = Phase.MAIN) -> None:
        f, payload = call
        self._open[process] = self.recorder.invoke(process, f, payload, phase=phase)

    def _next_operation(self, process: int) -> tuple[F, Payload]:
        if process < self.producers:
            self._next_value += 1
            return F.SEND, Send(self.rng.choice(self.topic_partitions), self._next_value)
        consumer = self._consumer_state[process]
        if not consumer.positions:
            return F.ASSIGN, Assignment(frozenset(self.topic_partitions))
        tp = self.rng.choice(self.topic_partitions)
        roll = self.rng.random()
        if roll < 0.15:
            return F.COMMIT, Commit(consumer.group, tp, consumer.positions[tp])
        if roll < 0.25:
            return F.FETCH_COMMITTED, FetchCommitted(consumer.group, tp)
        return F.POLL, Poll()

    def _complete(self, process: int) -> None:
        invoke = self._open.pop(process)
        payload = invoke.value
        if isinstance(payload, Send):
            self._complete_send(process, payload)
            return
        consumer = self._consumer_state[process]
        if isinstance(payload, Assignment):
            consumer.positions = {tp: consumer.positions.get(tp, 0) for tp in payload.tps}
            self.recorder.complete(process, Type.OK)
        elif isinstance(payload, Commit):
            self.committed[(payload.group, payload.tp)] = payload.offset
            self.recorder.complete(process, Type.OK)
        elif isinstance(payload, FetchCommitted):
            offset = self.committed.get((payload.group, payload.tp))
            self.recorder.complete(process, Type.OK, attrs.evolve(payload, offset=offset))
        else:
            self.recorder.complete(process, Type.OK, self._poll(consumer))

    def _complete_send(self, process: int, send: Send) -> None:
        roll = self.rng.random()
        if roll < self.fail_probability:
            self.recorder.complete(process, Type.FAIL)
            return
        log = self.logs[send.tp]
        if roll < self.fail_probability + self.info_probability:
            if self.rng.random() < 0.5:
                log.append(send.value)
            self.recorder.complete(process, Type.INFO)
            return
        log.append(send.value)
        self.recorder.complete(process, Type.OK, attrs.evolve(send, offset=len(log) - 1))

    def _poll(self, consumer: _Consumer) -> Poll:
        reads = []
        for tp in sorted(consumer.positions):
            start = consumer.positions[tp]
            count = self.rng.randint(0, POLL_RECORDS_MAX)
            records = tuple(enumerate(self.logs[tp][start : start + count], start=start))
            if records:
                reads.append((tp, records))
                consumer.positions[tp] = records[-1][0] + 1
        return Poll(tuple(reads))

    def _final_reads(self) -> None:
        """Every consumer reads to the end of every partition it is assigned."""
        for process, consumer in self._consumer_state.items():
            if not consumer.positions:
                self._invoke(process, (F.ASSIGN, Assignment(frozenset(self.topic_partitions))))
                self._complete(process)
            while any(consumer.positions[tp] < len(self.logs[tp]) for tp in consumer.positions):
                self._invoke(process, (F.POLL, Poll()), Phase.FINAL)
                self._complete(process)


def simulate_queue(seed: int, steps: int = 400) -> list[Entry]:
    return QueueSimulation(random.Random(seed)).run(steps)


@attrs.frozen
class _Planned:
    """An operation of the linearizability simulations before it becomes two entries."""

    process: int
    f: F
    call: Payload
    outcome: Type
    result: Payload | None
    invoke_ns: int
    complete_ns: int | None


def _entries(planned: Sequence[_Planned]) -> list[Entry]:
    """Lay the planned operations out in time; equal times keep invocations first."""
    events: list[tuple[int, int, int, Entry]] = []
    for number, op in enumerate(planned):
        invoke = Entry(0, op.invoke_ns, op.process, Type.INVOKE, op.f, op.call)
        events.append((op.invoke_ns, 0, number, invoke))
        if op.complete_ns is not None:
            result = op.call if op.result is None else op.result
            completion = Entry(0, op.complete_ns, op.process, op.outcome, op.f, result)
            events.append((op.complete_ns, 1, number, completion))
    events.sort(key=lambda event: event[:3])
    return [attrs.evolve(entry, index=i) for i, (*_, entry) in enumerate(events)]


def _window(rng: random.Random, point_ns: int, window_ns: int) -> tuple[int, int]:
    return point_ns - rng.randrange(window_ns + 1), point_ns + rng.randrange(window_ns + 1)


def log_history(
    rng: random.Random,
    operations: int,
    topic_partitions: Sequence[str] = (tp_key("t", 0),),
    window_ns: int = 300,
    indeterminate_probability: float = 0.05,
) -> list[Entry]:
    """Sends, polls and point reads of a correct log, effects 100 ns apart, windows random.

    Each operation's effect is at ``100 * (i + 1)`` ns, inside a window of up to
    ``window_ns`` on either side, so neighbours overlap. Indeterminate sends take effect
    half the time; some never complete at all.
    """
    logs: dict[str, list[Value]] = {tp: [] for tp in topic_partitions}
    planned = []
    for i in range(operations):
        tp = rng.choice(topic_partitions)
        invoke_ns, complete_ns = _window(rng, 100 * (i + 1), window_ns)
        log = logs[tp]
        roll = rng.random()
        if roll < 0.5:
            value = f"v{i}"
            if rng.random() < indeterminate_probability:
                if rng.random() < 0.5:
                    log.append(value)
                end = None if rng.random() < 0.5 else complete_ns
                planned.append(
                    _Planned(i, F.SEND, Send(tp, value), Type.INFO, None, invoke_ns, end)
                )
                continue
            log.append(value)
            result = Send(tp, value, len(log) - 1)
            planned.append(
                _Planned(i, F.SEND, Send(tp, value), Type.OK, result, invoke_ns, complete_ns)
            )
        elif roll < 0.8 and log:
            start = rng.randrange(len(log))
            records = tuple(enumerate(log[start : start + POLL_RECORDS_MAX], start=start))
            result = Poll(((tp, records),))
            planned.append(_Planned(i, F.POLL, Poll(), Type.OK, result, invoke_ns, complete_ns))
        else:
            offset = rng.randrange(len(log) + 2)
            value = log[offset] if offset < len(log) else None
            call, result = Read(tp, offset), Read(tp, offset, value)
            planned.append(_Planned(i, F.READ, call, Type.OK, result, invoke_ns, complete_ns))
    return _entries(planned)


def register_history(
    rng: random.Random,
    operations: int,
    keys: Sequence[tuple[str, str]] = (("g", tp_key("t", 0)),),
    window_ns: int = 300,
    indeterminate_probability: float = 0.05,
) -> list[Entry]:
    """Commits and committed-offset fetches of a correct register per (group, tp)."""
    registers: dict[tuple[str, str], int | None] = dict.fromkeys(keys)
    planned = []
    for i in range(operations):
        group, tp = rng.choice(keys)
        invoke_ns, complete_ns = _window(rng, 100 * (i + 1), window_ns)
        if rng.random() < 0.5:
            call = Commit(group, tp, rng.randrange(1_000))
            if rng.random() < indeterminate_probability:
                if rng.random() < 0.5:
                    registers[(group, tp)] = call.offset
                planned.append(_Planned(i, F.COMMIT, call, Type.INFO, None, invoke_ns, None))
                continue
            registers[(group, tp)] = call.offset
            planned.append(_Planned(i, F.COMMIT, call, Type.OK, None, invoke_ns, complete_ns))
        else:
            fetch = FetchCommitted(group, tp)
            result = FetchCommitted(group, tp, registers[(group, tp)])
            planned.append(
                _Planned(i, F.FETCH_COMMITTED, fetch, Type.OK, result, invoke_ns, complete_ns)
            )
    return _entries(planned)


@attrs.define(eq=False)
class Script:
    """Hand-written histories, one completed operation per call, for focused tests.

    Each call records an invocation and its completion right after it, so operations of
    a script never overlap unless the test drives ``recorder`` directly.
    """

    recorder: Recorder = attrs.field(factory=lambda: Recorder(tick_ns=STEP_NS))

    def _do(
        self,
        process: int,
        f: F,
        call: Payload,
        outcome: Type,
        result: Payload | None,
        phase: Phase = Phase.MAIN,
    ) -> Script:
        self.recorder.invoke(process, f, call, phase=phase)
        self.recorder.complete(process, outcome, result)
        return self

    def send(
        self, process: int, tp: str, value: Value, offset: int | None, outcome: Type = Type.OK
    ) -> Script:
        result = Send(tp, value, offset) if outcome is Type.OK else None
        return self._do(process, F.SEND, Send(tp, value), outcome, result)

    def poll(
        self,
        process: int,
        reads: dict[str, list[tuple[int, Value]]],
        *,
        rebalanced: frozenset[str] = frozenset(),
        phase: Phase = Phase.MAIN,
    ) -> Script:
        result = Poll(tuple((tp, tuple(rs)) for tp, rs in reads.items()), rebalanced)
        return self._do(process, F.POLL, Poll(), Type.OK, result, phase)

    def assign(
        self, process: int, tps: Sequence[str], *, seek_to_beginning: bool = False
    ) -> Script:
        call = Assignment(frozenset(tps), seek_to_beginning)
        return self._do(process, F.ASSIGN, call, Type.OK, None)

    def subscribe(self, process: int, tps: Sequence[str]) -> Script:
        return self._do(process, F.SUBSCRIBE, Assignment(frozenset(tps)), Type.OK, None)

    def crash(self, process: int) -> Script:
        self.recorder.crash(process)
        return self

    def commit(
        self, process: int, group: str, tp: str, offset: int, outcome: Type = Type.OK
    ) -> Script:
        return self._do(process, F.COMMIT, Commit(group, tp, offset), outcome, None)

    def fetch_committed(self, process: int, group: str, tp: str, offset: int | None) -> Script:
        call = FetchCommitted(group, tp)
        return self._do(
            process, F.FETCH_COMMITTED, call, Type.OK, FetchCommitted(group, tp, offset)
        )

    def history(self) -> History:
        return self.recorder.history()
