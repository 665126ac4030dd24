"""The issue's group flow, for each client library, on one node and on three nodes.

Three consumers (separate processes) share a 6-partition topic; a fourth joins, one leaves
(close) and one is SIGKILLed; records keep coming throughout. Every record produced is
consumed, no record is read after a commit past it, and duplicates are bounded by the reads
their reader never got committed. Then the whole group crashes mid-stream (SIGKILL) and a
new group of consumers restarts: each partition resumes exactly at its committed offset
(nothing skipped), and the records read again are exactly those read after the last commit.
"""

from __future__ import annotations

import pathlib
import time
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from raftlog.cli_groups import committed_offsets
from raftlog.testing import LocalCluster

pytestmark = [pytest.mark.clients, pytest.mark.timeout(180)]
PARTITIONS = 6
LIBRARIES = ("confluent", "kafka-python", "aiokafka")
WAIT_S = 45.0
SETTLE_S = 2.0

Record = tuple[int, int]
"""(partition, offset)."""


def _create(bootstrap: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS)])[topic].result(30)


def _produce(bootstrap: str, topic: str, count: int) -> set[Record]:
    """`count` records spread over the partitions, acks=all; their (partition, offset)."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    delivered: set[Record] = set()
    failures: list[str] = []

    def on_delivery(error: object, message: object) -> None:
        if error is not None:
            failures.append(str(error))
        else:
            delivered.add((message.partition(), message.offset()))  # type: ignore[attr-defined]

    for index in range(count):
        producer.produce(topic, f"{topic}-{index}".encode(), partition=index % PARTITIONS,
                         on_delivery=on_delivery)  # fmt: skip
    assert producer.flush(30) == 0 and not failures, failures[:3]
    assert len(delivered) == count
    return delivered


def _reads(events: list[Any]) -> list[Record]:
    return [(e.partition, e.offset) for e in events if e.kind == "R"]


def _uncommitted_reads(events: list[Any]) -> int:
    """Reads whose own commit (the next commit their reader made) failed or never came.

    A worker commits after every poll; a rebalance refuses that commit, and the records
    come again (to the same member or another). Only those may be read twice.
    """
    count = 0
    for index, event in enumerate(events):
        if event.kind != "R":
            continue
        outcome = next(
            (
                later for later in events[index + 1 :]
                if later.kind in "CF" and later.worker == event.worker
                and later.partition == event.partition
            ),
            None,
        )  # fmt: skip
        count += outcome is None or outcome.kind == "F" or outcome.offset <= event.offset
    return count


def _read_below_a_commit(events: list[Any]) -> list[Any]:
    """Reads of a record some member had already committed past: must never happen."""
    committed: dict[int, int] = {}
    wrong = []
    for event in events:
        if event.kind == "C":
            committed[event.partition] = max(committed.get(event.partition, 0), event.offset)
        elif event.kind == "R" and event.offset < committed.get(event.partition, 0):
            wrong.append(event)
    return wrong


def _committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    return {
        partition: offset
        for (name, partition), offset in committed_offsets(bootstrap, group).items()
        if name == topic
    }


def _settled_commits(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """The group's committed offsets once they stand still: a commit a member sent just
    before its SIGKILL is still carried out by the coordinator (as Kafka's would be), and
    the restarted group starts from it."""
    deadline = time.monotonic() + WAIT_S
    previous: dict[int, int] | None = None
    while True:
        committed = _committed(bootstrap, group, topic)
        if committed == previous:
            return committed
        assert time.monotonic() < deadline, f"committed offsets keep moving: {committed}"
        previous = committed
        time.sleep(SETTLE_S)


def _group_events(cluster: LocalCluster) -> str:
    """The last group-coordinator events each node logged (for a failure's message)."""
    lines = []
    for member in cluster.members:
        text = member.log_path.read_text(errors="replace") if member.log_path.exists() else ""
        events = [line for line in text.splitlines() if "event=group_" in line]
        lines += [f"node {member.node_id}: {line}" for line in events[-15:]]
    return "\n".join(lines)


def _flow(library: str, cluster: LocalCluster, group_workers: Any) -> None:
    bootstrap = cluster.bootstrap
    topic, group = f"orders-{library}", f"billing-{library}"
    _create(bootstrap, topic)
    produced = _produce(bootstrap, topic, 300)
    pool = group_workers

    def start(name: str) -> Any:
        return pool.start(library, bootstrap, group, topic, name, "batch=40", "pause_ms=60")

    members = [start(f"m{i}") for i in range(3)]
    pool.wait_until(lambda: len(set(_reads(pool.events(members)))) >= 100, WAIT_S,
                    "the first three members to consume")  # fmt: skip
    members.append(start("m3"))
    deadline = time.monotonic() + WAIT_S
    while not _reads(members[3].events()):  # records keep coming until the fourth gets some
        assert time.monotonic() < deadline, "the fourth member never got partitions\n" + pool.logs()
        produced |= _produce(bootstrap, topic, 30)
        time.sleep(0.3)
    members[0].stop()  # leaves the group (close)
    produced |= _produce(bootstrap, topic, 300)
    time.sleep(1.0)
    members[1].kill()  # crashes; found when its session lapses
    produced |= _produce(bootstrap, topic, 300)
    pool.wait_until(lambda: produced <= set(_reads(pool.events(members))), WAIT_S,
                    "every record to be consumed across the rebalances")  # fmt: skip

    events = pool.events(members)
    assert _read_below_a_commit(events) == []
    duplicates = len(_reads(events)) - len(set(_reads(events)))
    assert duplicates <= _uncommitted_reads(events), (duplicates, _uncommitted_reads(events))

    # The whole group crashes mid-stream, then a new set of members takes over.
    more = _produce(bootstrap, topic, 600)
    pool.wait_until(lambda: len(more & set(_reads(pool.events(members)))) >= 150, WAIT_S,
                    "the survivors to consume the new records")  # fmt: skip
    members[2].kill()
    members[3].kill()
    before = pool.events(members)
    committed = _settled_commits(bootstrap, group, topic)
    for event in before:  # every acknowledged commit is kept
        if event.kind == "C":
            assert committed[event.partition] >= event.offset, event

    everything = produced | more
    expected = {(p, o) for p, o in everything if o >= committed.get(p, 0)}
    restarted = [start(f"r{i}") for i in range(3)]

    def explain() -> str:
        missing = expected - set(_reads(pool.events(restarted)))
        by_partition = {
            p: (min(o for q, o in missing if q == p), sum(q == p for q, _ in missing))
            for p in sorted({p for p, _ in missing})
        }
        return (
            f"committed {committed}, now {_committed(bootstrap, group, topic)}\n"
            f"missing (first offset, count) by partition "
            f"{by_partition}\nrestarted members' events: "
            f"{ {w.name: len(w.events()) for w in restarted} }\n"
            f"group events on the nodes:\n{_group_events(cluster)}"
        )

    pool.wait_until(lambda: expected <= set(_reads(pool.events(restarted))), WAIT_S,
                    "the restarted group to consume from the committed offsets on",
                    explain)  # fmt: skip
    for worker in restarted:
        worker.stop()
    after = _reads(pool.events(restarted))
    assert set(after) == expected, "resumed exactly at the committed offsets, nothing skipped"
    for partition in range(PARTITIONS):
        mine = [o for p, o in after if p == partition]
        if mine:
            assert min(mine) == min(o for p, o in expected if p == partition)
    read_before = set(_reads(before))
    again = [record for record in after if record in read_before]
    read_after_last_commit = {r for r in read_before if r[1] >= committed.get(r[0], 0)}
    # Records read again are exactly those read after the last commit, each once.
    assert set(again) == read_after_last_commit and len(again) == len(set(again))
    print(f"{library} on {len(cluster.members)} node(s): {len(everything)} records, "
          f"{duplicates} duplicates across rebalances, {len(again)} read again after the "
          f"crash of the whole group")  # fmt: skip


@pytest.mark.parametrize("library", LIBRARIES)
def test_group_flow_on_one_node(
    library: str, raftlog_node: LocalCluster, group_workers: Any
) -> None:
    _flow(library, raftlog_node, group_workers)


@pytest.mark.parametrize("library", LIBRARIES)
def test_group_flow_on_three_nodes(
    library: str, tmp_path: pathlib.Path, group_workers: Any
) -> None:
    with LocalCluster(tmp_path / "cluster", nodes=3) as cluster:
        _flow(library, cluster, group_workers)
