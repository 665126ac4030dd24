"""Kafka load generator, run in its own process so it never shares a core's GIL with the
server: `python -m benches.kafka_load produce|consume|ceiling ...`, prints one JSON line.

confluent-kafka is librdkafka underneath, so the generator is C-fast; its own ceiling
(`ceiling`: how fast produce() can enqueue with no broker work at all) is reported next to
every figure so a reader can tell the server from the client.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

BATCH_BYTES = 1 << 20


class _Deliveries:
    """Acknowledgement latencies and failures of sends, from their delivery reports."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.failures: list[str] = []

    def callback(self, sent: float) -> Callable[[object, object], None]:
        def delivered(error: object, _message: object) -> None:
            if error is not None:
                self.failures.append(str(error))
            else:
                self.latencies.append(time.perf_counter() - sent)

        return delivered

    def report(self, error: object, message: object) -> None:
        """One callback for every send of a bulk run: librdkafka times each message
        from produce() to its acknowledgement itself (`Message.latency`), so the
        generator makes no clock call or closure per record."""
        if error is not None:
            self.failures.append(str(error))
            return
        latency = message.latency()  # type: ignore[attr-defined]
        if latency is None:
            self.failures.append("delivered without a latency")
        else:
            self.latencies.append(latency)


POLL_EVERY = 1000
"""A bulk run serves delivery reports once per this many sends (and when the queue is
full), not after every send: the reports wait in librdkafka, their latencies are its own."""


def _percentile(samples: list[float], fraction: float) -> float:
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def produce(bootstrap: str, topic: str, count: int, size: int, acks: str, timeout_s: float) -> dict:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": acks,
            "linger.ms": 5,
            "batch.size": BATCH_BYTES,
            "queue.buffering.max.messages": 1_000_000,
            "queue.buffering.max.kbytes": 1_048_576,
            "enable.idempotence": False,
        }
    )
    value = b"x" * size
    deliveries = _Deliveries()
    latencies, failures = deliveries.latencies, deliveries.failures

    started = time.perf_counter()
    deadline = started + timeout_s
    for index in range(count):
        while True:
            try:
                producer.produce(topic, value, on_delivery=deliveries.report)
                break
            except BufferError:
                producer.poll(0.01)
        if index % POLL_EVERY == 0:
            producer.poll(0)
            if time.perf_counter() > deadline:
                break
    remaining = producer.flush(max(deadline - time.perf_counter(), 1))
    elapsed = time.perf_counter() - started
    return {
        "records": len(latencies),
        "failures": len(failures) + remaining,
        "first_failure": failures[0] if failures else None,
        "seconds": elapsed,
        "records_per_s": len(latencies) / elapsed,
        "mb_per_s": len(latencies) * size / elapsed / 1e6,
        "p50_ms": _percentile(latencies, 0.50) * 1000,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
        "p999_ms": _percentile(latencies, 0.999) * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000 if latencies else 0.0,
    }


def create_topic(
    bootstrap: str, topic: str, partitions: int, timeout_s: float, replication: int = 1
) -> None:
    """Create `topic` with `partitions` partitions and wait until the producer sees a
    leader for each, so the measurement does not time elections."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(topic, partitions, replication)], request_timeout=timeout_s
    )
    futures[topic].result(timeout=timeout_s)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        metadata = admin.list_topics(topic, timeout=10).topics.get(topic)
        if (
            metadata is not None
            and len(metadata.partitions) == partitions
            and all(part.leader >= 0 for part in metadata.partitions.values())
        ):
            return
        time.sleep(0.2)
    raise KafkaException(f"{topic}: not every partition had a leader within {timeout_s} s")


def produce_one_at_a_time(bootstrap: str, topic: str, count: int, size: int) -> dict:
    """Latency of a lone record: each waits for its acknowledgement before the next."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    value = b"x" * size
    latencies = []
    for _ in range(count):
        sent = time.perf_counter()
        producer.produce(topic, value)
        if producer.flush(10) != 0:
            raise KafkaException("a single record was not acknowledged within 10 s")
        latencies.append(time.perf_counter() - sent)
    return {
        "records": count,
        "p50_ms": _percentile(latencies, 0.50) * 1000,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
    }


def consume(bootstrap: str, topic: str, count: int, timeout_s: float) -> dict:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "bench-unused",
            "enable.auto.commit": False,
            "fetch.max.bytes": 64 << 20,
            "max.partition.fetch.bytes": 16 << 20,
        }
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    # Connect to the partition leader before the clock starts (ListOffsets goes to it), as
    # the JetStream pull consumer is created before its clock starts: both time reading only.
    consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    received = size = 0
    deadline = time.perf_counter() + timeout_s
    # The clock starts at the first record, so connecting and learning metadata (a fixed
    # cost, like the producer's warm-up) is not counted as consume time.
    started: float | None = None
    while received < count and time.perf_counter() < deadline:
        # Ask for no more than remain: consume(n, timeout) waits for all n or the timeout,
        # and waiting 0.5 s for records that will never come was being timed as reading.
        for message in consumer.consume(min(10_000, count - received), 0.5):
            if message.error() is None:
                if started is None:
                    started = time.perf_counter()
                received += 1
                size += len(message.value() or b"")
    elapsed = time.perf_counter() - (started or deadline)
    consumer.close()
    return {
        "records": received,
        "seconds": elapsed,
        "records_per_s": received / elapsed,
        "mb_per_s": size / elapsed / 1e6,
    }


def e2e_produce(
    bootstrap: str, topic: str, count: int, size: int, rate: float, timeout_s: float
) -> dict:
    """`count` records at a steady `rate`, each stamped with CLOCK_MONOTONIC (ns, 20 digits,
    then padding) for the consumer; acks=all latencies of the same sends are returned."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    padding = b"x" * max(0, size - 20)
    deliveries = _Deliveries()
    latencies, failures = deliveries.latencies, deliveries.failures

    started = time.perf_counter()
    for index in range(count):
        due = started + index / rate
        while (now := time.perf_counter()) < due:
            producer.poll(min(0.001, due - now))
        sent = time.perf_counter()
        stamp = b"%020d" % time.monotonic_ns()
        producer.produce(topic, stamp + padding, on_delivery=deliveries.callback(sent))
        producer.poll(0)
    producer.flush(timeout_s)
    elapsed = time.perf_counter() - started
    return {
        "records": len(latencies),
        "records_per_s": len(latencies) / elapsed,
        "failures": len(failures),
        "p50_ms": _percentile(latencies, 0.50) * 1000,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
    }


def e2e_consume(bootstrap: str, topic: str, count: int, timeout_s: float) -> dict:
    """Wait at the end of a new topic, say ``ready``, then time each record from its stamp."""
    create_topic(bootstrap, topic, 1, timeout_s)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "bench-e2e",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 100,
        }
    )
    _low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    consumer.assign([TopicPartition(topic, 0, high)])
    consumer.consume(1, 0.5)  # connect and fetch once before the producer starts
    print("ready", flush=True)
    latencies: list[float] = []
    deadline = time.perf_counter() + timeout_s
    while len(latencies) < count and time.perf_counter() < deadline:
        # poll(), not consume(n, timeout): that one holds what it has until n arrive.
        message = consumer.poll(0.1)
        if message is not None and message.error() is None:
            now = time.monotonic_ns()
            latencies.append((now - int((message.value() or b"0")[:20])) / 1e9)
    consumer.close()
    return {
        "records": len(latencies),
        "p50_ms": _percentile(latencies, 0.50) * 1000,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
        "p999_ms": _percentile(latencies, 0.999) * 1000,
    }


def ceiling(count: int, size: int) -> dict:
    """produce() into librdkafka's queue with no broker reachable: the generator's limit."""
    producer = Producer(
        {
            "bootstrap.servers": "127.0.0.1:1",
            "queue.buffering.max.messages": 2_000_000,
            "queue.buffering.max.kbytes": 4_194_304,
            "message.timeout.ms": 1000,
            "log_level": 0,
        }
    )
    value = b"x" * size
    started = time.perf_counter()
    for _ in range(count):
        producer.produce("ceiling", value)
    elapsed = time.perf_counter() - started
    producer.purge()
    return {"records_per_s": count / elapsed}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benches.kafka_load")
    parser.add_argument(
        "mode", choices=("produce", "single", "consume", "ceiling", "e2e-produce", "e2e-consume")
    )
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--topic", default="bench")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--acks", default="all")
    parser.add_argument("--rate", type=float, default=1000.0, help="records/s (e2e-produce)")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument(
        "--partitions",
        type=int,
        default=0,
        help="create the topic with this many partitions first (produce)",
    )
    parser.add_argument(
        "--replication",
        type=int,
        default=1,
        help="replication factor of the topic --partitions creates",
    )
    arguments = parser.parse_args(argv)
    if arguments.mode == "produce" and arguments.partitions > 0:
        create_topic(
            arguments.bootstrap,
            arguments.topic,
            arguments.partitions,
            arguments.timeout,
            arguments.replication,
        )
    if arguments.mode == "produce":
        result = produce(
            arguments.bootstrap,
            arguments.topic,
            arguments.count,
            arguments.size,
            arguments.acks,
            arguments.timeout,
        )
    elif arguments.mode == "single":
        result = produce_one_at_a_time(
            arguments.bootstrap, arguments.topic, arguments.count, arguments.size
        )
    elif arguments.mode == "e2e-produce":
        result = e2e_produce(
            arguments.bootstrap,
            arguments.topic,
            arguments.count,
            arguments.size,
            arguments.rate,
            arguments.timeout,
        )
    elif arguments.mode == "e2e-consume":
        result = e2e_consume(
            arguments.bootstrap, arguments.topic, arguments.count, arguments.timeout
        )
    elif arguments.mode == "consume":
        result = consume(arguments.bootstrap, arguments.topic, arguments.count, arguments.timeout)
    else:
        result = ceiling(arguments.count, arguments.size)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
