"""One group consumer, run as its own process by the group tests (so it can be SIGKILLed).

    python consumer_worker.py LIBRARY BOOTSTRAP GROUP TOPIC EVENTS_FILE [KEY=VALUE ...]

LIBRARY is confluent, kafka-python or aiokafka. It subscribes to TOPIC in GROUP and, for
every poll that returned records, appends `R partition offset time` per record, commits
those positions synchronously, then appends `C partition next_offset time` per partition
once the commit succeeded, or `F partition next_offset time` if it failed (a rebalance
refuses commits). Lines are flushed at once, so the test reads them while the worker runs
and a SIGKILL loses nothing that was logged. SIGTERM closes the consumer (it leaves the
group); SIGKILL is a crash. Extra KEY=VALUE arguments: `session_ms`, `heartbeat_ms`,
`batch` (records per poll at most) and `pause_ms` (a pause between reading a poll's records
and committing them, so that a SIGKILL is likely to land between the two).
"""

from __future__ import annotations

import signal
import sys
import time
from typing import Any, TextIO

POLL_S = 0.2

stopping = False


def _stop(signum: int, frame: Any) -> None:
    global stopping
    stopping = True


def _line(out: TextIO, kind: str, partition: int, offset: int) -> None:
    out.write(f"{kind} {partition} {offset} {time.time():.6f}\n")


def run_confluent(bootstrap: str, group: str, topic: str, out: TextIO, options: dict) -> None:
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "session.timeout.ms": options["session_ms"],
            "heartbeat.interval.ms": options["heartbeat_ms"],
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "topic.metadata.refresh.interval.ms": 2000,
        }
    )
    consumer.subscribe([topic])
    try:
        while not stopping:
            positions: dict[int, int] = {}
            for message in consumer.consume(num_messages=options["batch"], timeout=POLL_S):
                if message.error() is None:
                    _line(out, "R", message.partition(), message.offset())
                    positions[message.partition()] = message.offset() + 1
            out.flush()
            if not positions:
                continue
            time.sleep(options["pause_ms"] / 1000)
            offsets = [TopicPartition(topic, p, o) for p, o in positions.items()]
            try:
                committed = consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException:
                for p, o in positions.items():
                    _line(out, "F", p, o)
            else:
                for tp in committed or []:
                    _line(out, "C" if tp.error is None else "F", tp.partition, tp.offset)
            out.flush()
    finally:
        consumer.close()


def run_kafka_python(bootstrap: str, group: str, topic: str, out: TextIO, options: dict) -> None:
    from kafka import KafkaConsumer, OffsetAndMetadata
    from kafka.errors import KafkaError

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap.split(","),
        group_id=group,
        session_timeout_ms=options["session_ms"],
        heartbeat_interval_ms=options["heartbeat_ms"],
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        metadata_max_age_ms=2000,
        max_poll_records=options["batch"],
    )
    try:
        while not stopping:
            batches = consumer.poll(timeout_ms=int(POLL_S * 1000))
            positions = {}
            for tp, records in batches.items():
                for record in records:
                    _line(out, "R", tp.partition, record.offset)
                positions[tp] = records[-1].offset + 1
            out.flush()
            if not positions:
                continue
            time.sleep(options["pause_ms"] / 1000)
            try:
                consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in positions.items()})
            except KafkaError:
                for tp, o in positions.items():
                    _line(out, "F", tp.partition, o)
            else:
                for tp, o in positions.items():
                    _line(out, "C", tp.partition, o)
            out.flush()
    finally:
        consumer.close(autocommit=False)


def run_aiokafka(bootstrap: str, group: str, topic: str, out: TextIO, options: dict) -> None:
    import asyncio

    from aiokafka import AIOKafkaConsumer
    from aiokafka.errors import KafkaError

    async def main() -> None:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap.split(","),
            group_id=group,
            session_timeout_ms=options["session_ms"],
            heartbeat_interval_ms=options["heartbeat_ms"],
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            metadata_max_age_ms=2000,
        )
        await consumer.start()
        try:
            while not stopping:
                batches = await consumer.getmany(
                    timeout_ms=int(POLL_S * 1000), max_records=options["batch"]
                )
                positions = {}
                for tp, records in batches.items():
                    for record in records:
                        _line(out, "R", tp.partition, record.offset)
                    positions[tp] = records[-1].offset + 1
                out.flush()
                if not positions:
                    continue
                await asyncio.sleep(options["pause_ms"] / 1000)
                try:
                    await consumer.commit(positions)
                except KafkaError:
                    for tp, o in positions.items():
                        _line(out, "F", tp.partition, o)
                else:
                    for tp, o in positions.items():
                        _line(out, "C", tp.partition, o)
                out.flush()
        finally:
            await consumer.stop()

    asyncio.run(main())


RUNNERS = {
    "confluent": run_confluent,
    "kafka-python": run_kafka_python,
    "aiokafka": run_aiokafka,
}


def main() -> None:
    library, bootstrap, group, topic, output = sys.argv[1:6]
    options = {"session_ms": 6000, "heartbeat_ms": 500, "batch": 200, "pause_ms": 0}
    for argument in sys.argv[6:]:
        key, _, value = argument.partition("=")
        options[key] = int(value)
    signal.signal(signal.SIGTERM, _stop)
    with open(output, "a") as out:
        RUNNERS[library](bootstrap, group, topic, out, options)


if __name__ == "__main__":
    main()
