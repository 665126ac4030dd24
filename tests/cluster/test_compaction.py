"""Log compaction with real nodes and real clients.

A topic with cleanup.policy=compact on nodes that seal small segments: many updates to
few keys, then consumers (confluent-kafka, kafka-python) read from the beginning and see
each key's latest value, increasing offsets, and no trace of keys whose tombstones have
outlived delete.retention.ms. On three nodes every replica's compacted files are the
same bytes, and reads go on after the leader is killed.
"""

from __future__ import annotations

import pathlib
import re
import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer
from kafka import TopicPartition as KafkaPythonTopicPartition

from raftlog.testing import LocalCluster

pytestmark = pytest.mark.clients

SEGMENT_BYTES = "16384"
ARGUMENTS = ("--segment-bytes", SEGMENT_BYTES, "--compaction-check-ms", "200")
KEYS = [f"key-{index}".encode() for index in range(8)]
COMPACTED_EVENT = re.compile(rb"event=compacted topic=(\S+) partition=(\d+) segment=(\d+)")


def _create(bootstrap: str, topic: str, replication: int, configs: dict[str, str]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, 1, replication, config=configs)])
    futures[topic].result(30)


def _produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes | None]]) -> None:
    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 2,
         "enable.idempotence": True}
    )  # fmt: skip
    for key, value in records:
        producer.produce(topic, value, key)
        producer.poll(0)
    assert producer.flush(60) == 0


def _updates(rounds: int) -> list[tuple[bytes, bytes | None]]:
    return [
        (key, f"{key.decode()}={round_number}".encode().ljust(60, b"."))
        for round_number in range(rounds)
        for key in KEYS
    ]


def _expected(records: list[tuple[bytes, bytes | None]]) -> dict[bytes, bytes]:
    latest: dict[bytes, bytes | None] = {}
    for key, value in records:
        latest[key] = value
    return {key: value for key, value in latest.items() if value is not None}


def _consume_confluent(bootstrap: str, topic: str) -> list[tuple[int, bytes, bytes | None]]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"reader-{time.monotonic_ns()}",
         "enable.auto.commit": False}
    )  # fmt: skip
    try:
        _low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        consumer.assign([TopicPartition(topic, 0, 0)])
        seen: list[tuple[int, bytes, bytes | None]] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not seen or seen[-1][0] < high - 1):
            for message in consumer.consume(1000, 0.5):
                if message.error() is not None:
                    raise KafkaException(message.error())
                seen.append((message.offset(), message.key(), message.value()))
            if consumer.position([TopicPartition(topic, 0)])[0].offset >= high:
                break
        return seen
    finally:
        consumer.close()


def _consume_kafka_python(bootstrap: str, topic: str) -> list[tuple[int, bytes, bytes | None]]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), enable_auto_commit=False)
    try:
        partition = KafkaPythonTopicPartition(topic, 0)
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        high = consumer.end_offsets([partition])[partition]
        seen: list[tuple[int, bytes, bytes | None]] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and consumer.position(partition) < high:
            for messages in consumer.poll(timeout_ms=500).values():
                seen.extend((m.offset, m.key, m.value) for m in messages)
        return seen
    finally:
        consumer.close()


def _check_view(
    seen: list[tuple[int, bytes, bytes | None]], expected: dict[bytes, bytes], produced: int
) -> None:
    offsets = [offset for offset, _key, _value in seen]
    assert offsets == sorted(set(offsets)), "offsets strictly increase"
    latest: dict[bytes, bytes | None] = {}
    for _offset, key, value in seen:
        latest[key] = value
    assert {k: v for k, v in latest.items() if v is not None} == expected
    assert len(seen) < produced // 3, f"{len(seen)} of {produced} records remain"


def _compactions(log_path: pathlib.Path, topic: str) -> list[int]:
    data = log_path.read_bytes() if log_path.exists() else b""
    return [int(m.group(3)) for m in COMPACTED_EVENT.finditer(data) if m.group(1) == topic.encode()]


def _wait(condition, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def test_a_compacted_topic_keeps_the_latest_value_of_each_key(tmp_path: pathlib.Path) -> None:
    tombstoned = (KEYS[6], KEYS[7])
    with LocalCluster(tmp_path, nodes=1, extra_arguments=ARGUMENTS) as cluster:
        _create(
            cluster.bootstrap,
            "latest",
            1,
            {"cleanup.policy": "compact", "delete.retention.ms": "1500",
             "min.cleanable.dirty.ratio": "0.01"},
        )  # fmt: skip
        first = _updates(200)
        first.extend((key, None) for key in tombstoned)
        later = [(key, f"{key.decode()}=final-{n}".encode().ljust(60, b".")) for n in range(150)
                 for key in KEYS[:6]]  # fmt: skip
        records = first + later
        _produce(cluster.bootstrap, "latest", records)
        expected = _expected(records)
        assert set(expected) == set(KEYS[:6])
        log_path = cluster.node(1).log_path
        _wait(lambda: _compactions(log_path, "latest"), 30, "a compaction")

        def tombstones_gone() -> bool:
            seen = _consume_confluent(cluster.bootstrap, "latest")
            return not any(key in tombstoned for _offset, key, _value in seen)

        _wait(tombstones_gone, 40, "the tombstones to go after delete.retention.ms")
        seen = _consume_confluent(cluster.bootstrap, "latest")
        _check_view(seen, expected, len(records))
        kafka_python_seen = _consume_kafka_python(cluster.bootstrap, "latest")
        _check_view(kafka_python_seen, expected, len(records))
        assert kafka_python_seen == seen

        # A compacted topic refuses records without a key (Kafka's INVALID_RECORD).
        producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all",
                             "retries": 0})  # fmt: skip
        errors: list[object] = []
        producer.produce("latest", b"no key", on_delivery=lambda e, _m: errors.append(e))
        producer.flush(30)
        assert errors and errors[0] is not None and "INVALID_RECORD" in str(errors[0])


def test_an_invalid_cleanup_policy_is_refused(tmp_path: pathlib.Path) -> None:
    with LocalCluster(tmp_path, nodes=1, extra_arguments=ARGUMENTS) as cluster:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        futures = admin.create_topics([NewTopic("bad", 1, 1, config={"cleanup.policy": "zip"})])
        with pytest.raises(KafkaException, match=r"cleanup\.policy"):
            futures["bad"].result(30)


def _sealed_group_files(node_dir: pathlib.Path, group_ids: set[int]) -> dict[str, bytes]:
    return {
        f"{path.parent.name}/{path.name}": path.read_bytes()
        for group_id in sorted(group_ids)
        for path in sorted((node_dir / "groups" / str(group_id)).rglob("*.log"))
    }


@pytest.mark.slow
def test_replicas_compact_to_identical_files_and_serve_after_leader_loss(
    tmp_path: pathlib.Path,
) -> None:
    with LocalCluster(tmp_path, nodes=3, extra_arguments=ARGUMENTS) as cluster:
        _create(
            cluster.bootstrap,
            "replicated",
            3,
            {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01"},
        )
        records = []
        for wave in range(6):  # waves, flushed one by one, so several segments seal
            batch = [
                (key, f"{key.decode()}={wave}.{n}".encode().ljust(80, b"."))
                for n in range(40)
                for key in KEYS
            ]
            _produce(cluster.bootstrap, "replicated", batch)
            records.extend(batch)
        expected = _expected(records)

        def compacted_everywhere() -> set[int]:
            found = [set(_compactions(m.log_path, "replicated")) for m in cluster.members]
            return set.intersection(*found)

        _wait(lambda: compacted_everywhere(), 60, "every replica to compact")
        # Passes run until no replica has new sealed data; then the files must settle.
        previous: list[dict[str, bytes]] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            groups = compacted_everywhere()
            current = [_sealed_group_files(m.data_dir, groups) for m in cluster.members]
            if current == previous and current[0] == current[1] == current[2]:
                break
            previous = current
            time.sleep(1.0)
        else:
            pytest.fail("the replicas' compacted files did not become identical")
        assert current[0], "some compacted files were compared"

        metadata = AdminClient({"bootstrap.servers": cluster.bootstrap}).list_topics(timeout=10)
        leader = metadata.topics["replicated"].partitions[0].leader
        cluster.node(leader).kill()
        survivors = ",".join(m.address for m in cluster.members if m.node_id != leader)

        def readable() -> bool:
            try:
                seen = _consume_confluent(survivors, "replicated")
            except KafkaException:
                return False
            return bool(seen)

        _wait(readable, 60, "reads after the leader was killed")
        _check_view(_consume_confluent(survivors, "replicated"), expected, len(records))


def _commit(bootstrap: str, group: str, offsets: list[tuple[int, int]]) -> None:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        consumer.commit(
            offsets=[TopicPartition("data", p, o) for p, o in offsets], asynchronous=False
        )
    finally:
        consumer.close()


def _committed(bootstrap: str, group: str) -> list[int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        found = consumer.committed([TopicPartition("data", p) for p in range(4)], timeout=20)
        return [tp.offset for tp in found]
    finally:
        consumer.close()


def test_the_coordinator_replays_a_compacted_offsets_topic(tmp_path: pathlib.Path) -> None:
    """Commits and a deleted group's tombstones in `__consumer_offsets`, compacted, then
    a restart: the coordinator rebuilds the latest offsets and no deleted ones."""
    with LocalCluster(tmp_path, nodes=1, extra_arguments=ARGUMENTS) as cluster:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin.create_topics([NewTopic("data", 4, 1)])["data"].result(30)
        _commit(cluster.bootstrap, "gone", [(p, 5) for p in range(4)])
        consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "kept"})
        try:
            for round_number in range(1, 250):
                consumer.commit(
                    offsets=[TopicPartition("data", p, round_number * 10 + p) for p in range(4)],
                    asynchronous=False,
                )
                if round_number == 100:
                    admin.delete_consumer_groups(["gone"], request_timeout=10)["gone"].result(20)
        finally:
            consumer.close()
        _wait(
            lambda: _compactions(cluster.node(1).log_path, "__consumer_offsets"),
            30,
            "__consumer_offsets to be compacted",
        )
        assert _committed(cluster.bootstrap, "kept") == [2490, 2491, 2492, 2493]
        cluster.stop()
        cluster.start()
        assert _committed(cluster.bootstrap, "kept") == [2490, 2491, 2492, 2493]
        assert _committed(cluster.bootstrap, "gone") == [-1001] * 4
        # The restarted node compacts again from scratch; nothing it rewrites changes that.
        assert _committed(cluster.bootstrap, "kept") == [2490, 2491, 2492, 2493]
