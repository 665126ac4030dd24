"""A leader under a pipelined producer never outruns its followers' transport queues.

Raft's in-flight bound per follower is what keeps a leader from queueing more appends
than the transport holds for that peer. When it allowed more (32 MiB against a 16 MiB
queue), appends were dropped at the queue under a pipelined producer, the follower
rejected the gap, and the leader sent the entries again, read back from its files.
The drops are counted per peer in `raftlog_transport_messages_dropped_total`.
"""

from __future__ import annotations

import urllib.request

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

from raftlog.testing import LocalCluster

pytestmark = pytest.mark.clients

TOPIC = "pipelined"
RECORDS = 150_000
RECORD = b"x" * 1024


def _drops(admin_url: str) -> dict[tuple[str, str, str], float]:
    with urllib.request.urlopen(f"{admin_url}/metrics", timeout=10) as response:
        exposition = response.read().decode()
    return {
        (sample.labels["peer"], sample.labels["channel"], sample.labels["reason"]): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == "raftlog_transport_messages_dropped_total"
    }


def test_a_pipelined_producer_gets_no_append_dropped_at_a_peer_queue(tmp_path) -> None:
    with LocalCluster(tmp_path / "cluster", nodes=3) as cluster:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin.create_topics([NewTopic(TOPIC, 1, 3)])[TOPIC].result(30)
        producer = Producer(
            {
                "bootstrap.servers": cluster.bootstrap,
                "acks": "all",
                "linger.ms": 5,
                "queue.buffering.max.messages": RECORDS,
                "queue.buffering.max.kbytes": 2 * RECORDS,
            }
        )
        failures: list[object] = []

        def delivered(error: object, _message: object) -> None:
            if error is not None:
                failures.append(error)

        for _ in range(RECORDS):  # all enqueued at once: librdkafka pipelines 1 MB batches
            producer.produce(TOPIC, RECORD, on_delivery=delivered)
        assert producer.flush(120) == 0
        assert failures == []
        drops = {n: _drops(cluster.node(n).admin_url) for n in (1, 2, 3)}
    for node_id, counts in drops.items():
        assert counts, f"node {node_id} exposes no drop counters"
        full = {key: value for key, value in counts.items() if key[2] == "full" and value}
        assert full == {}, f"node {node_id} dropped messages at full queues: {full}"
