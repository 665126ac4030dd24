"""One client worker process: ``python -m jepsen_like.worker SPEC.json``.

Each worker is one logical history *process* driving one confluent-kafka client, and
writes its own JSON-lines history (flushed line by line, so a worker killed mid-run
still leaves what it did). The runner merges the files by monotonic timestamp:
``time.monotonic_ns()`` is CLOCK_MONOTONIC, one clock for every process on the host.

Roles:

* ``producer``: idempotent producer, acks=all; one synchronous send at a time to a
  seeded random partition, each value unique in the whole run. Only a send the client
  refused before sending is ``fail``; every delivery error is ``info`` (it may have
  been written).
* ``assign``: consumer with ``assign()`` of every partition from the beginning; polls.
* ``group``: consumer with ``subscribe()`` in a group; commits after each poll (one
  commit per partition read) and now and then reads a committed offset back.
* ``final``: after the faults heal, reads every partition from offset 0 up to the high
  watermark, marked ``phase: final``: every acknowledged send must show up there.
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import attrs
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from jepsen_like.history import (
    Assignment,
    Commit,
    Entry,
    F,
    FetchCommitted,
    Payload,
    Phase,
    Poll,
    Send,
    Type,
    Value,
    tp_key,
)

VALUE_STRIDE = 1_000_000_000
"""Values are ``process * VALUE_STRIDE + n``: unique across the run without coordination."""
SEND_TIMEOUT_S = 20.0
"""A send still unanswered after this is recorded as ``info``; the client keeps trying it."""
MESSAGE_TIMEOUT_MS_INFINITE = 0
"""librdkafka's message.timeout.ms: never give up on a message. When a queued message
times out, librdkafka drains the partition, bumps the producer epoch and renumbers the
queue from sequence 0 (its INTRODUCTION.md, "Message timeout considerations"). A batch
that was appended but whose acknowledgement was lost is then resent as a new batch, and
no broker can tell it is a retry: Kafka appends it again too. The checkers are here to
find the duplicates the cluster makes, not the ones this client setting makes (campaign
run 10, seed 5010, was one)."""
POLL_TIMEOUT_S = 0.3
POLL_RECORDS_MAX = 200
FETCH_COMMITTED_EVERY = 10
CLIENT_TIMEOUT_S = 5.0
FINAL_WATERMARK_ATTEMPTS = 60


@attrs.frozen
class WorkerSpec:
    role: str
    process: int
    bootstrap: str
    topic: str
    partitions: int
    seed: int
    output: str
    end_monotonic_ns: int
    """No new operation is invoked after this (the final role uses it as its deadline)."""
    rate_per_s: float = 50.0
    group: str = "jepsen"
    inflight: int = 1
    """Producer only: sends outstanding at once, as processes ``process..process+inflight-1``."""

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> WorkerSpec:
        return cls(**raw)


@attrs.define(eq=False)
class HistoryWriter:
    """Writes one process's entries; ``index`` is assigned when the runner merges."""

    out: TextIO
    process: int
    phase: Phase = Phase.MAIN
    _open: tuple[F, Payload] | None = None

    def _write(self, kind: Type, f: F, value: Payload) -> None:
        entry = Entry(0, time.monotonic_ns(), self.process, kind, f, value, self.phase)
        self.out.write(json.dumps(entry.to_json(), separators=(",", ":")) + "\n")
        self.out.flush()

    def invoke(self, f: F, value: Payload) -> None:
        if self._open is not None:
            raise RuntimeError(f"process {self.process} invoked {f} with {self._open} open")
        self._open = (f, value)
        self._write(Type.INVOKE, f, value)

    def complete(self, kind: Type, value: Payload | None = None) -> None:
        if self._open is None:
            raise RuntimeError(f"process {self.process} completed nothing")
        f, invoked = self._open
        self._open = None
        self._write(kind, f, invoked if value is None else value)


class Stopper:
    """True once SIGTERM arrived or the deadline passed."""

    def __init__(self, end_monotonic_ns: int) -> None:
        self.end_monotonic_ns = end_monotonic_ns
        self.signalled = False
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, _number: int, _frame: object) -> None:
        self.signalled = True

    def __call__(self) -> bool:
        return self.signalled or time.monotonic_ns() >= self.end_monotonic_ns


def _value_of(message: Message) -> Value:
    raw = message.value() or b""
    text = raw.decode("utf-8", errors="replace")
    return int(text) if text.isdigit() else text


def _client_log(tag: str) -> Callable[[Any], None]:
    def log(error: Any) -> None:
        print(f"{time.monotonic_ns()} {tag} {error}", file=sys.stderr, flush=True)

    return log


# -- producer ----------------------------------------------------------------------------


def _producer(spec: WorkerSpec, fatal: list[bool]) -> Producer:
    def on_error(error: KafkaError) -> None:
        print(f"{time.monotonic_ns()} producer error {error}", file=sys.stderr, flush=True)
        if error.fatal():
            fatal.append(True)

    return Producer(
        {
            "bootstrap.servers": spec.bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 0,
            "message.timeout.ms": MESSAGE_TIMEOUT_MS_INFINITE,
            "request.timeout.ms": 5_000,
            "socket.timeout.ms": 5_000,
            "topic.metadata.refresh.interval.ms": 2_000,
            "error_cb": on_error,
        }
    )


@attrs.define(eq=False)
class _Slot:
    """One in-flight send of a pipelining producer: its own history process."""

    log: HistoryWriter
    send: Send | None = None
    deadline: float = 0.0
    outcome: dict[str, Any] = attrs.field(factory=dict)


def run_producer(spec: WorkerSpec, log: HistoryWriter, stop: Stopper) -> None:
    """``spec.inflight`` sends may be outstanding at once, each slot being one process
    (``spec.process`` onwards), so the history keeps one open operation per process
    while the client pipelines (max.in.flight), as real producers do."""
    rng = random.Random(spec.seed)
    fatal: list[bool] = []
    producer = _producer(spec, fatal)
    interval_s = 1.0 / spec.rate_per_s
    slots = [_Slot(HistoryWriter(log.out, spec.process + i)) for i in range(spec.inflight)]
    sent = 0
    next_send = time.monotonic()
    while not stop() or any(slot.send is not None for slot in slots):
        now = time.monotonic()
        for slot in slots:
            if slot.send is None and now >= next_send and not stop():
                _start_send(spec, producer, slot, rng.randrange(spec.partitions), sent)
                sent += 1
                next_send = max(next_send + interval_s, now - 1.0)
        producer.poll(0.005)
        for slot in slots:
            _finish_send(slot)
        if fatal:
            fatal.clear()
            producer = _producer(spec, fatal)
    producer.flush(CLIENT_TIMEOUT_S)
    producer.purge()  # sends already recorded as info, which never time out on their own


def _start_send(
    spec: WorkerSpec, producer: Producer, slot: _Slot, partition: int, sent: int
) -> None:
    tp = tp_key(spec.topic, partition)
    value = slot.log.process * VALUE_STRIDE + sent
    box: dict[str, Any] = {}

    def delivered(error: KafkaError | None, message: Message) -> None:
        box["error"] = error
        box["offset"] = message.offset()

    slot.send, slot.outcome = Send(tp, value), box
    slot.deadline = time.monotonic() + SEND_TIMEOUT_S
    slot.log.invoke(F.SEND, slot.send)
    try:
        producer.produce(
            spec.topic, value=str(value).encode(), partition=partition, on_delivery=delivered
        )
    except (BufferError, KafkaException) as error:
        _client_log("produce refused")(error)
        slot.log.complete(Type.FAIL)
        slot.send = None


def _finish_send(slot: _Slot) -> None:
    if slot.send is None:
        return
    if "error" in slot.outcome and slot.outcome["error"] is None:
        slot.log.complete(Type.OK, attrs.evolve(slot.send, offset=slot.outcome["offset"]))
    elif "error" in slot.outcome or time.monotonic() > slot.deadline:
        _client_log("send unknown")(slot.outcome.get("error", "no delivery report"))
        slot.log.complete(Type.INFO)
    else:
        return
    slot.send = None


# -- consumers ---------------------------------------------------------------------------


def _consumer(spec: WorkerSpec, group: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": spec.bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
            "fetch.wait.max.ms": 100,
            "session.timeout.ms": 10_000,
            "heartbeat.interval.ms": 1_000,
            "socket.timeout.ms": 5_000,
            "topic.metadata.refresh.interval.ms": 2_000,
            "error_cb": _client_log("consumer error"),
        }
    )


def _reads(messages: list[Message]) -> dict[str, list[tuple[int, Value]]]:
    reads: dict[str, list[tuple[int, Value]]] = {}
    for message in messages:
        if message.error() is not None:
            _client_log("consume error")(message.error())
            continue
        tp = tp_key(message.topic(), message.partition())
        reads.setdefault(tp, []).append((message.offset(), _value_of(message)))
    return reads


def _poll(
    consumer: Consumer, log: HistoryWriter, pending: set[str] | None = None
) -> dict[str, list[tuple[int, Value]]]:
    """One poll operation; ``pending`` holds partitions (re)assigned since last read."""
    log.invoke(F.POLL, Poll())
    try:
        messages = consumer.consume(POLL_RECORDS_MAX, POLL_TIMEOUT_S)
    except KafkaException as error:
        _client_log("consume failed")(error)
        log.complete(Type.FAIL)
        return {}
    reads = _reads(messages)
    rebalanced: frozenset[str] = frozenset()
    if pending is not None:
        rebalanced = frozenset(tp for tp in reads if tp in pending)
        pending -= rebalanced
    as_tuples = tuple((tp, tuple(records)) for tp, records in reads.items())
    log.complete(Type.OK, Poll(as_tuples, rebalanced))
    return reads


def _all_tps(spec: WorkerSpec) -> frozenset[str]:
    return frozenset(tp_key(spec.topic, p) for p in range(spec.partitions))


def run_assign(spec: WorkerSpec, log: HistoryWriter, stop: Stopper) -> None:
    consumer = _consumer(spec, f"{spec.group}-assign-{spec.process}")
    log.invoke(F.ASSIGN, Assignment(_all_tps(spec), seek_to_beginning=True))
    consumer.assign(
        [TopicPartition(spec.topic, p, OFFSET_BEGINNING) for p in range(spec.partitions)]
    )
    log.complete(Type.OK)
    while not stop():
        _poll(consumer, log)
    consumer.close()


def _partition_of(tp: str) -> int:
    return int(tp.rsplit("/", 1)[1])


def _commit(spec: WorkerSpec, consumer: Consumer, log: HistoryWriter, tp: str, offset: int) -> None:
    log.invoke(F.COMMIT, Commit(spec.group, tp, offset))
    try:
        answers = consumer.commit(
            offsets=[TopicPartition(spec.topic, _partition_of(tp), offset)], asynchronous=False
        )
    except KafkaException as error:
        _client_log("commit unknown")(error)
        log.complete(Type.INFO)
        return
    errors = [answer.error for answer in answers or () if answer.error is not None]
    if errors:
        _client_log("commit unknown")(errors[0])
        log.complete(Type.INFO)
    else:
        log.complete(Type.OK)


def _fetch_committed(spec: WorkerSpec, consumer: Consumer, log: HistoryWriter, tp: str) -> None:
    log.invoke(F.FETCH_COMMITTED, FetchCommitted(spec.group, tp))
    try:
        answers = consumer.committed(
            [TopicPartition(spec.topic, _partition_of(tp))], timeout=CLIENT_TIMEOUT_S
        )
    except KafkaException as error:
        _client_log("fetch committed failed")(error)
        log.complete(Type.FAIL)
        return
    answer = answers[0]
    if answer.error is not None:
        log.complete(Type.FAIL)
        return
    offset = answer.offset if answer.offset >= 0 else None
    log.complete(Type.OK, FetchCommitted(spec.group, tp, offset))


def run_group(spec: WorkerSpec, log: HistoryWriter, stop: Stopper) -> None:
    rng = random.Random(spec.seed)
    consumer = _consumer(spec, spec.group)
    pending: set[str] = set()

    def on_assign(_consumer: Consumer, partitions: list[TopicPartition]) -> None:
        pending.update(tp_key(p.topic, p.partition) for p in partitions)

    log.invoke(F.SUBSCRIBE, Assignment(_all_tps(spec)))
    consumer.subscribe([spec.topic], on_assign=on_assign)
    log.complete(Type.OK)
    polls = 0
    while not stop():
        reads = _poll(consumer, log, pending)
        for tp, records in reads.items():
            _commit(spec, consumer, log, tp, records[-1][0] + 1)
        polls += 1
        if polls % FETCH_COMMITTED_EVERY == 0:
            _fetch_committed(spec, consumer, log, rng.choice(sorted(_all_tps(spec))))
    consumer.close()


# -- the final read ----------------------------------------------------------------------


def _high_watermarks(spec: WorkerSpec, consumer: Consumer) -> dict[int, int]:
    """Each partition's high watermark, asked again while the cluster settles.

    librdkafka's watermark query takes a cached Metadata answer without a leader (an
    election under way) as final, with its local _UNKNOWN_PARTITION, and does not ask for
    Metadata again: that is asked here before the next attempt.
    """
    marks: dict[int, int] = {}
    for partition in range(spec.partitions):
        for _ in range(FINAL_WATERMARK_ATTEMPTS):
            try:
                _low, high = consumer.get_watermark_offsets(
                    TopicPartition(spec.topic, partition), timeout=CLIENT_TIMEOUT_S
                )
                marks[partition] = high
                break
            except KafkaException as error:
                _client_log("watermark")(error)
                time.sleep(0.5)
                if error.args[0].code() == KafkaError._UNKNOWN_PARTITION:
                    with contextlib.suppress(KafkaException):
                        consumer.list_topics(spec.topic, timeout=CLIENT_TIMEOUT_S)
        else:
            raise RuntimeError(f"no high watermark for partition {partition}")
    return marks


def run_final(spec: WorkerSpec, log: HistoryWriter, stop: Stopper) -> None:
    """Reads until every partition's position reaches the high watermark seen at start."""
    log.phase = Phase.FINAL
    consumer = _consumer(spec, f"{spec.group}-final-{spec.process}")
    marks = _high_watermarks(spec, consumer)
    print(f"final high watermarks {marks}", file=sys.stderr, flush=True)
    log.invoke(F.ASSIGN, Assignment(_all_tps(spec), seek_to_beginning=True))
    consumer.assign(
        [TopicPartition(spec.topic, p, OFFSET_BEGINNING) for p in range(spec.partitions)]
    )
    log.complete(Type.OK)
    reached = {p: 0 for p in marks}
    everything = [TopicPartition(spec.topic, p) for p in marks]
    while any(reached[p] < marks[p] for p in marks):
        if stop():
            raise RuntimeError(f"final read did not finish in time: {reached} of {marks}")
        for tp, records in _poll(consumer, log).items():
            reached[_partition_of(tp)] = records[-1][0] + 1
        # The position also moves past control batches (Raft NOOPs), which no poll returns.
        for position in consumer.position(everything):
            if position.offset >= 0:
                reached[position.partition] = max(reached[position.partition], position.offset)
    consumer.close()


ROLES: dict[str, Callable[[WorkerSpec, HistoryWriter, Stopper], None]] = {
    "producer": run_producer,
    "assign": run_assign,
    "group": run_group,
    "final": run_final,
}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m jepsen_like.worker SPEC.json", file=sys.stderr)
        return 2
    spec = WorkerSpec.from_json(json.loads(Path(argv[0]).read_text()))
    role = ROLES.get(spec.role)
    if role is None:
        print(f"unknown worker role {spec.role!r}: {sorted(ROLES)}", file=sys.stderr)
        return 2
    stop = Stopper(spec.end_monotonic_ns)
    with open(spec.output, "a", encoding="utf-8") as out:
        role(spec, HistoryWriter(out, spec.process), stop)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
