"""A node that restarts leads nothing; the balancer hands its preferred partitions back."""

from __future__ import annotations

import collections
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from raftlog.testing import LocalCluster

TOPIC = "balanced"
PARTITIONS = 6


def _leaders(admin: AdminClient) -> dict[int, int]:
    topic = admin.list_topics(TOPIC, timeout=10).topics[TOPIC]
    return {index: part.leader for index, part in topic.partitions.items()}


def _wait(admin: AdminClient, check: object, timeout_s: float) -> dict[int, int]:
    deadline = time.monotonic() + timeout_s
    leaders: dict[int, int] = {}
    while time.monotonic() < deadline:
        leaders = _leaders(admin)
        if check(leaders):  # type: ignore[operator]
            return leaders
        time.sleep(0.25)
    raise AssertionError(f"not reached within {timeout_s} s: leaders {leaders}")


def test_leadership_returns_to_a_restarted_node(tmp_path: Path) -> None:
    arguments = ("--leader-balance-interval-ms", "500")
    with LocalCluster(tmp_path, nodes=3, extra_arguments=arguments) as cluster:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin.create_topics([NewTopic(TOPIC, PARTITIONS, 3)])[TOPIC].result(30)
        _wait(admin, lambda ls: all(leader > 0 for leader in ls.values()), 30)
        cluster.node(2).kill()
        _wait(admin, lambda ls: all(leader in (1, 3) for leader in ls.values()), 30)
        cluster.node(2).start()
        leaders = _wait(
            admin,
            lambda ls: sorted(collections.Counter(ls.values()).values()) == [2, 2, 2],
            60,
        )
        assert set(leaders.values()) == {1, 2, 3}
        logs = "".join(cluster.node(n).log_path.read_text() for n in (1, 3))
        assert "event=leader_balanced" in logs


@pytest.mark.slow
def test_leadership_returns_while_producers_keep_every_partition_busy(tmp_path: Path) -> None:
    """Under steady acks=all load a follower's log is rarely equal to its leader's at the
    instant the balancer looks; a preferred replica that is merely replicating must still
    get its partitions back (Raft's transfer catches it up before TimeoutNow)."""
    arguments = ("--leader-balance-interval-ms", "500")
    with LocalCluster(tmp_path, nodes=3, extra_arguments=arguments) as cluster:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin.create_topics([NewTopic(TOPIC, PARTITIONS, 3)])[TOPIC].result(30)
        _wait(admin, lambda ls: all(leader > 0 for leader in ls.values()), 30)
        stop = threading.Event()
        failures: list[str] = []
        acknowledged = collections.Counter[int]()

        def produce() -> None:
            producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all",
                                 "enable.idempotence": True, "linger.ms": 1, "log_level": 0})

            def delivered(error: object, message: object) -> None:
                if error is not None:
                    failures.append(str(error))
                else:
                    acknowledged[message.partition()] += 1  # type: ignore[attr-defined]

            sequence = 0
            while not stop.is_set():
                try:
                    producer.produce(TOPIC, b"x" * 100, partition=sequence % PARTITIONS,
                                     on_delivery=delivered)
                except BufferError:  # as many in flight as librdkafka holds: wait for acks
                    producer.poll(0.05)
                    continue
                sequence += 1
                producer.poll(0.0005)
            assert producer.flush(60) == 0

        thread = threading.Thread(target=produce)
        thread.start()
        try:
            cluster.node(2).kill()
            _wait(admin, lambda ls: all(leader in (1, 3) for leader in ls.values()), 30)
            cluster.node(2).start()
            _wait(
                admin,
                lambda ls: sorted(collections.Counter(ls.values()).values()) == [2, 2, 2],
                60,
            )
            before = sum(acknowledged.values())
            time.sleep(1.0)
            assert sum(acknowledged.values()) > before, "the producer kept writing"
        finally:
            stop.set()
            thread.join(90)
        assert not failures, failures[:5]
        assert all(acknowledged[p] > 0 for p in range(PARTITIONS))
