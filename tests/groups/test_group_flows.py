"""The whole consumer-group story with each client, on one node and on three.

Three members (separate processes) share a 6-partition topic; a fourth joins, one leaves
cleanly, one is SIGKILLed. Across those rebalances every record must be consumed. Then the
group stops and restarts: each partition must resume exactly at the group's committed
offset (the last commit a member saw succeed), nothing may be skipped, and the records
that come again are exactly those consumed after the last commit; the test counts them.
"""

from __future__ import annotations

import collections
import pathlib
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from raftlog.testing import LocalCluster

pytestmark = pytest.mark.clients

CLIENTS = ("confluent", "kafka-python", "aiokafka")
PARTITIONS = 6
FIRST = 3000
SECOND = 600
MEMBER = pathlib.Path(__file__).with_name("group_member.py")


@pytest.fixture(scope="module", params=[1, 3], ids=["1-node", "3-nodes"])
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalCluster]:
    nodes = int(request.param)
    with LocalCluster(tmp_path_factory.mktemp(f"flows{nodes}"), nodes=nodes) as started:
        yield started


class _Member:
    def __init__(self, client: str, bootstrap: str, group: str, topic: str, path: pathlib.Path):
        self.path = path
        self.process = subprocess.Popen(
            [sys.executable, str(MEMBER), client, bootstrap, group, topic, str(path)],
            stdout=subprocess.DEVNULL,
            stderr=path.with_suffix(".stderr").open("wb"),
        )

    def records(self) -> list[tuple[int, int, str]]:
        if not self.path.exists():
            return []
        found = []
        for line in self.path.read_text().splitlines():
            parts = line.split(" ")
            if parts[0] == "m" and len(parts) == 4:
                found.append((int(parts[1]), int(parts[2]), parts[3]))
        return found

    def commits(self) -> dict[int, int]:
        latest: dict[int, int] = {}
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                parts = line.split(" ")
                if parts[0] == "c" and len(parts) == 3:
                    latest[int(parts[1])] = max(latest.get(int(parts[1]), 0), int(parts[2]))
        return latest

    def stop(self) -> None:
        """SIGTERM: the member commits and leaves the group."""
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"{self.path.name} did not leave within 30 s") from None

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


def _produce(bootstrap: str, topic: str, start: int, count: int, pause_s: float = 0) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for index in range(start, start + count):
        producer.produce(topic, f"v{index}".encode(), key=str(index).encode())
        if pause_s and index % 100 == 0:
            producer.flush(30)
            time.sleep(pause_s)
    assert producer.flush(60) == 0


def _until(condition: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.2)


def _group_state(bootstrap: str, group: str, topic: str) -> tuple[dict[int, int], dict[int, int]]:
    """The group's committed offset and the high watermark of every partition."""
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        asked = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        committed = {tp.partition: tp.offset for tp in reader.committed(asked, timeout=20)}
        ends = {p: reader.get_watermark_offsets(TopicPartition(topic, p), timeout=20)[1]
                for p in range(PARTITIONS)}  # fmt: skip
    finally:
        reader.close()
    return committed, ends


@pytest.mark.parametrize("client", CLIENTS)
def test_group_survives_join_leave_kill_and_resumes_at_commits(
    cluster: LocalCluster, client: str, tmp_path: pathlib.Path
) -> None:
    bootstrap = cluster.bootstrap
    topic, group = f"flow-{client}", f"group-{client}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    replication = min(3, len(cluster.members))
    admin.create_topics([NewTopic(topic, PARTITIONS, replication)])[topic].result(30)
    _produce(bootstrap, topic, 0, FIRST // 2)
    first_values = {f"v{index}" for index in range(FIRST)}

    def member(name: str) -> _Member:
        return _Member(client, bootstrap, group, topic, tmp_path / f"{name}.log")

    members = [member(f"m{n}") for n in (1, 2, 3)]

    def consumed() -> list[tuple[int, int, str]]:
        return [record for m in members for record in m.records()]

    _until(lambda: len(consumed()) >= FIRST // 5, 90, "the first members to consume")
    # The rest arrives while members come and go, so every rebalance has work behind it.
    rest = (bootstrap, topic, FIRST // 2, FIRST // 2, 0.5)
    producing = threading.Thread(target=_produce, args=rest)
    producing.start()
    members.append(member("m4"))
    _until(lambda: members[3].records(), 60, "the 4th member to be given partitions")
    members[0].stop()  # leaves cleanly
    members[1].kill()  # crashes: its partitions move after the session timeout
    producing.join()
    _until(
        lambda: first_values <= {value for _p, _o, value in consumed()},
        120,
        "every record to be consumed across the rebalances",
    )
    members[2].stop()
    members[3].stop()

    committed, ends = _group_state(bootstrap, group, topic)
    logged: dict[int, int] = {}
    for m in members:
        for partition, offset in m.commits().items():
            logged[partition] = max(logged.get(partition, 0), offset)
    assert committed == logged, "the group's offsets are the last commits members saw succeed"

    # The whole group restarts after more records arrive.
    _produce(bootstrap, topic, FIRST, SECOND)
    restarted = member("m5")
    second_values = {f"v{index}" for index in range(FIRST, FIRST + SECOND)}
    _until(
        lambda: second_values <= {value for _p, _o, value in restarted.records()},
        90,
        "the restarted group to consume the new records",
    )
    restarted.stop()
    by_partition: dict[int, list[int]] = collections.defaultdict(list)
    for partition, offset, _value in restarted.records():
        by_partition[partition].append(offset)
    for partition in range(PARTITIONS):
        offsets = by_partition[partition]
        assert offsets[0] == committed[partition], f"partition {partition} resumed elsewhere"

    # Nothing skipped, and what came again is exactly what the first run consumed at or
    # after the committed offsets (after its last successful commit); counted here.
    # (Offsets are not contiguous: Raft's own entries occupy offsets clients skip.)
    first_run = {(p, o) for p, o, _v in consumed()}
    again = {(p, o) for p, o, _v in restarted.records() if o < ends[p]}
    assert again == {(p, o) for p, o in first_run if o >= committed[p]}, "records skipped"
    assert len(again) < FIRST // 2, f"{len(again)} records came again"
