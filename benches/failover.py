"""Failover after SIGKILL of a partition leader: p50/p99 over 20 kills (quick: 3).

Three nodes, one topic with replication factor 3 and one partition. Each round: find the
partition's leader (Metadata), SIGKILL it, and measure from just before the kill
- `leader`: until Metadata asked of a surviving node names a live new leader, and
- `produce`: until one acks=all record is acknowledged through a fresh confluent-kafka
  producer bootstrapped from the survivors (its first metadata round trip included),
then restart the killed node on its data dir and wait until the partition has a leader
before the next round. The election timeout (Raft ticks of 100 ms, randomized) and the
time for survivors to notice the dead leader dominate both figures; there is no peer
system to compare with in this scenario.
"""

from __future__ import annotations

import logging
import statistics
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from benches.common import Result, Settings
from raftlog.kafka.admin_client import KafkaAdminConnection, NodeUnreachable
from raftlog.protocol.messages.generated.metadata_request import MetadataRequest
from raftlog.protocol.messages.generated.metadata_response import MetadataResponse
from raftlog.testing import LocalCluster

_QUIET = logging.getLogger("benches.failover.librdkafka")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False
"""librdkafka's connection errors after each kill are expected: kept off the output."""

SCENARIO = "failover"
TOPIC = "failover"
KILLS = 20
KILLS_QUICK = 3
ROUND_TIMEOUT_S = 30.0


def _leader(address: str) -> int:
    """The partition's leader as `address` names it (-1 for none or unreachable)."""
    try:
        with KafkaAdminConnection(address, timeout_s=2.0) as connection:
            metadata = connection.request(MetadataRequest(topics=None), 12)
    except (NodeUnreachable, OSError, TimeoutError):
        return -1
    assert isinstance(metadata, MetadataResponse)
    for topic in metadata.topics:
        if topic.name == TOPIC and topic.partitions:
            return int(topic.partitions[0].leader_id)
    return -1


def _produce_one(bootstrap: str, deadline: float) -> None:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "message.timeout.ms": int(ROUND_TIMEOUT_S * 1000),
            "retry.backoff.ms": 20,
        },
        logger=_QUIET,
    )
    failures: list[str] = []
    producer.produce(
        TOPIC, b"x", on_delivery=lambda error, _m: failures.append(str(error)) if error else None
    )
    if producer.flush(max(deadline - time.monotonic(), 0.1)) != 0 or failures:
        raise TimeoutError(f"no acknowledged produce after the kill: {failures}")


def _wait(predicate: object, deadline: float, what: str) -> None:
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.005)
    raise TimeoutError(f"timed out waiting for {what}")


def _current_leader(cluster: LocalCluster, deadline: float) -> int:
    """The leader a live node names, asked until one does.

    One answer, not a wait followed by a second question: between the two the leadership
    can move (the node restarted last round may still be catching up and call an
    election), and the second answer may then be -1.
    """
    while time.monotonic() < deadline:
        for member in cluster.members:
            leader = _leader(member.address)
            if leader > 0:
                return leader
        time.sleep(0.005)
    raise TimeoutError("timed out waiting for a leader")


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def run(settings: Settings) -> list[Result]:
    kills = KILLS_QUICK if settings.quick else KILLS
    leader_s: list[float] = []
    produce_s: list[float] = []
    directory = settings.work_directory / SCENARIO
    with LocalCluster(directory, nodes=3) as cluster:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin.create_topics([NewTopic(TOPIC, 1, 3)])[TOPIC].result(30)
        for _round in range(kills):
            deadline = time.monotonic() + ROUND_TIMEOUT_S
            old = _current_leader(cluster, deadline)
            survivors = [member for member in cluster.members if member.node_id != old]
            bootstrap = ",".join(member.address for member in survivors)
            started = time.monotonic()
            cluster.node(old).kill()
            _wait(
                lambda address=survivors[0].address, gone=old: _leader(address) not in (-1, gone),
                started + ROUND_TIMEOUT_S,
                "a new leader",
            )
            leader_s.append(time.monotonic() - started)
            _produce_one(bootstrap, started + ROUND_TIMEOUT_S)
            produce_s.append(time.monotonic() - started)
            cluster.node(old).start()
    notes = (
        f"{kills} SIGKILLs of the leader, 3 nodes, RF 3; from the kill until "
        "{metric} (p99 of {n} samples: their maximum)"
    )
    results = []
    for metric, samples, until in (
        ("leader", leader_s, "a survivor's Metadata names a new leader"),
        ("produce", produce_s, "an acks=all produce via a fresh client is acknowledged"),
    ):
        for name, value in (
            ("p50", statistics.median(samples)),
            ("p99", _percentile(samples, 0.99)),
        ):
            results.append(
                Result(
                    SCENARIO,
                    f"{metric} failover {name}",
                    value * 1000,
                    "ms",
                    notes=notes.format(metric=until, n=len(samples)),
                )
            )
    return results
