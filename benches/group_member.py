"""One consumer-group client for `benches/groups.py`, in its own process (no shared GIL):

    python -m benches.group_member commit BOOTSTRAP GROUP TOPIC GO_FILE SECONDS
    python -m benches.group_member produce BOOTSTRAP GROUP TOPIC GO_FILE SECONDS
    python -m benches.group_member member BOOTSTRAP GROUP TOPIC EVENTS_FILE

`commit`: subscribe, wait for an assignment, print `ready`, wait until GO_FILE exists, then
commit synchronously (one partition, a growing offset) for SECONDS; print one JSON line
with the count and latency percentiles. `produce`: the same loop with a synchronous
single-record acks=all produce instead of a commit (the in-run reference: a commit is one
such record in `__consumer_offsets`). `member`: subscribe and poll until SIGTERM, appending
`assigned <wall time> <partitions>` to EVENTS_FILE on every assignment.
"""

from __future__ import annotations

import json
import pathlib
import signal
import sys
import time
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

SESSION_MS = 6000
HEARTBEAT_MS = 500
READY_TIMEOUT_S = 60.0


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def _consumer(bootstrap: str, group: str, **extra: Any) -> Consumer:
    return Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
         "session.timeout.ms": SESSION_MS, "heartbeat.interval.ms": HEARTBEAT_MS,
         "auto.offset.reset": "earliest", **extra}
    )  # fmt: skip


def _wait_for_go(go_file: pathlib.Path, keep_alive: Any) -> None:
    print("ready", flush=True)
    while not go_file.exists():
        keep_alive()


def _timed_loop(action: Any, seconds: float) -> dict[str, Any]:
    """Run `action` back to back; a refused one (KafkaException) is counted, not timed."""
    latencies = []
    errors: dict[str, int] = {}
    end = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < end:
        before = time.perf_counter()
        try:
            action(len(latencies))
        except KafkaException as error:
            name = error.args[0].name() if error.args else "unknown"
            errors[name] = errors.get(name, 0) + 1
            continue
        latencies.append(time.perf_counter() - before)
    elapsed = time.perf_counter() - started
    return {
        "count": len(latencies),
        "errors": errors,
        "seconds": elapsed,
        "p50_ms": _percentile(latencies, 0.5) * 1000,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
    }


def commit(bootstrap: str, group: str, topic: str, go_file: pathlib.Path, seconds: float) -> None:
    consumer = _consumer(bootstrap, group)
    consumer.subscribe([topic])
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not consumer.assignment():
        if time.monotonic() > deadline:
            raise SystemExit("no assignment")
        consumer.poll(0.05)
    partition = consumer.assignment()[0].partition
    _wait_for_go(go_file, lambda: consumer.poll(0.01))

    def one(index: int) -> None:
        consumer.commit(offsets=[TopicPartition(topic, partition, index + 1)], asynchronous=False)

    print(json.dumps(_timed_loop(one, seconds)), flush=True)
    consumer.close()


def produce(bootstrap: str, group: str, topic: str, go_file: pathlib.Path, seconds: float) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    producer.produce(topic, b"warm-up")
    producer.flush(30)
    _wait_for_go(go_file, lambda: time.sleep(0.01))

    def one(index: int) -> None:
        producer.produce(topic, b"x" * 64)
        producer.flush(30)

    print(json.dumps(_timed_loop(one, seconds)), flush=True)


def member(bootstrap: str, group: str, topic: str, events: pathlib.Path) -> None:
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    out = events.open("a")

    def on_assign(consumer: Consumer, partitions: list[TopicPartition]) -> None:
        out.write(f"assigned {time.time():.6f} {len(partitions)}\n")
        out.flush()

    consumer = _consumer(bootstrap, group)
    out.write(f"subscribing {time.time():.6f} 0\n")
    out.flush()
    consumer.subscribe([topic], on_assign=on_assign)
    while not stopping:
        consumer.poll(0.05)
    out.write(f"closing {time.time():.6f} 0\n")
    out.flush()
    consumer.close()


def main() -> None:
    mode, bootstrap, group, topic, path = sys.argv[1:6]
    if mode == "member":
        member(bootstrap, group, topic, pathlib.Path(path))
    elif mode in ("commit", "produce"):
        runner = commit if mode == "commit" else produce
        runner(bootstrap, group, topic, pathlib.Path(path), float(sys.argv[6]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
