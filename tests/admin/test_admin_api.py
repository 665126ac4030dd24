"""The admin HTTP API of real nodes: JSON documents, health, readiness and metrics.

Nodes are real `raftlog serve` processes (or, for readiness, a real node in this process
that cannot join); traffic comes from confluent-kafka, so what the API reports is what a
real client did.
"""

from __future__ import annotations

import itertools
import json
import pathlib
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
import trio
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

from raftlog.admin.metrics import NodeMetrics
from raftlog.config import HostPort, NodeConfig, Peer
from raftlog.node.node import Node
from raftlog.testing import LocalCluster, free_port

pytestmark = pytest.mark.clients


def _get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read(), response.headers["content-type"]
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers["content-type"]


def _json(url: str) -> Any:
    status, body, content_type = _get(url)
    assert status == 200, body
    assert content_type == "application/json"
    return json.loads(body)


def _samples(exposition: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def _traffic(bootstrap: str) -> None:
    """Two partitions, 30 records, a group that consumed and committed part of them."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic("orders", num_partitions=2)])["orders"].result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for index in range(30):
        producer.produce("orders", f"order-{index}".encode(), partition=index % 2)
    assert producer.flush(30) == 0
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "billing", "auto.offset.reset": "earliest",
         "enable.auto.commit": False, "session.timeout.ms": 6000}
    )  # fmt: skip
    consumer.subscribe(["orders"])
    consumed = 0
    deadline = time.monotonic() + 30
    while consumed < 30 and time.monotonic() < deadline:
        consumed += len([m for m in consumer.consume(30, 0.5) if m.error() is None])
    assert consumed == 30
    consumer.commit(asynchronous=False)
    consumer.close()


def test_documents_and_metrics_of_a_node_with_traffic(raftlog_node: LocalCluster) -> None:
    node = raftlog_node.node(1)
    base = node.admin_url
    assert _get(f"{base}/healthz")[0] == 200
    assert _json(f"{base}/readyz") == {"ready": True}
    _traffic(raftlog_node.bootstrap)

    cluster = _json(f"{base}/v1/cluster")
    assert cluster["node_id"] == 1 and cluster["controller_leader"] == 1
    assert cluster["controller_voters"] == [1]
    assert cluster["cluster_id"] and len(cluster["cluster_id"]) == 22
    assert [entry["kafka"] for entry in cluster["nodes"]] == [node.address]

    topics = {topic["name"]: topic for topic in _json(f"{base}/v1/topics")["topics"]}
    assert topics["orders"]["partitions"] == 2 and topics["orders"]["replication_factor"] == 1
    assert topics["__consumer_offsets"]["internal"] is True

    partitions = _json(f"{base}/v1/topics/orders/partitions")["partitions"]
    assert [p["partition"] for p in partitions] == [0, 1]
    for partition in partitions:
        assert partition["leader"] == 1 and partition["term"] >= 1
        # 15 records and the leader's NOOP control batch, which takes an offset too.
        assert partition["high_watermark"] == 16
        [segment] = partition["segments"]
        assert segment["state"] == "head" and segment["base_offset"] == 0
        assert segment["replicas"] == [1] and segment["hosted"] is True

    [group] = _json(f"{base}/v1/groups")["groups"]
    assert group["group"] == "billing" and group["coordinator"] == 1
    assert {(o["partition"], o["committed"], o["lag"]) for o in group["offsets"]} == {
        (0, 16, 0),
        (1, 16, 0),
    }

    status, body, content_type = _get(f"{base}/metrics")
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    samples = _samples(body.decode())
    assert samples[("raftlog_kafka_requests_total", (("api", "Produce"),))] >= 1
    assert samples[("raftlog_kafka_request_duration_seconds_count", (("api", "Fetch"),))] >= 1
    assert samples[("raftlog_kafka_received_bytes_total", ())] > 0
    assert samples[("raftlog_kafka_sent_bytes_total", ())] > 0
    assert samples[("raftlog_fsync_duration_seconds_count", ())] > 0
    assert samples[("raftlog_ready", ())] == 1
    # The controller, 8 offsets partitions and 2 of `orders`; idle ones quiesce.
    assert samples[("raftlog_raft_groups", ())] == 11
    assert 0 <= samples[("raftlog_raft_quiesced_groups", ())] <= 11
    group_id = str(partitions[0]["segments"][0]["group_id"])
    term_key = (("group", group_id), ("partition", "0"), ("topic", "orders"))
    assert samples[("raftlog_raft_term", term_key)] >= 1
    assert samples[("raftlog_raft_commit_lag_entries", term_key)] == 0
    lag_key = (("consumer_group", "billing"), ("partition", "1"), ("topic", "orders"))
    assert samples[("raftlog_consumer_lag_records", lag_key)] == 0


def test_errors_are_json_and_say_what_went_wrong(raftlog_node: LocalCluster) -> None:
    base = raftlog_node.node(1).admin_url
    status, body, _ = _get(f"{base}/v1/topics/nope/partitions")
    assert status == 404 and json.loads(body) == {"error": "no topic 'nope'"}
    assert _get(f"{base}/v2/anything")[0] == 404
    request = urllib.request.Request(f"{base}/v1/topics", method="POST", data=b"{}")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 405 and refused.value.headers["allow"] == "GET, HEAD"


def _post(url: str) -> tuple[int, Any]:
    request = urllib.request.Request(url, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_transfer_routes_refuse_bad_requests_with_the_reason(raftlog_node: LocalCluster) -> None:
    base = raftlog_node.node(1).admin_url
    admin = AdminClient({"bootstrap.servers": raftlog_node.bootstrap})
    admin.create_topics([NewTopic("moved", num_partitions=1)])["moved"].result(30)
    route = f"{base}/v1/partitions/moved/0/transfer-leader"
    status, document = _post(f"{route}?target=1")  # the leader already: done at once
    assert status == 200 and document["leader"] == 1, document
    assert (document["topic"], document["partition"]) == ("moved", 0) and document["term"] >= 1
    status, document = _post(route)
    assert status == 400 and "usage: POST" in document["error"]
    status, document = _post(f"{route}?target=x")
    assert status == 400 and "usage: POST" in document["error"]
    status, document = _post(f"{route}?target=2")
    assert status == 400 and document["error"] == "node 2 holds no replica of moved-0"
    status, document = _post(f"{route}?target=1&timeout_ms=0")
    assert status == 400 and "timeout must be in" in document["error"]
    status, document = _post(f"{base}/v1/partitions/moved/5/transfer-leader?target=1")
    assert status == 404 and document["error"] == "topic 'moved' has no partition 5"
    status, document = _post(f"{base}/v1/partitions/nope/0/transfer-leader?target=1")
    assert status == 404 and document["error"] == "no topic 'nope'"
    status, document = _post(f"{base}/v1/controller/transfer-leader?target=3")
    assert status == 400 and "not a controller voter" in document["error"]
    status, document = _post(f"{base}/v1/controller/transfer-leader?target=1")
    assert status == 200 and document["leader"] == 1
    status, document = _post(f"{base}/v1/partitions/moved/0/elsewhere?target=1")
    assert status == 405 and "POST is served only on" in document["error"]


def test_segment_chain_shows_sealed_segments_and_the_head(tmp_path: pathlib.Path) -> None:
    arguments = ("--auto-create-topics", "true", "--segment-bytes", "20000")
    with LocalCluster(tmp_path, nodes=1, extra_arguments=arguments) as cluster:
        producer = Producer({"bootstrap.servers": cluster.bootstrap, "linger.ms": 5})
        url = f"{cluster.node(1).admin_url}/v1/topics/chained/partitions"
        for round_number in range(3):  # each round overfills the head: three seals
            for index in range(1000):
                producer.produce("chained", f"record-{round_number}-{index:06d}".encode() * 4)
                producer.poll(0)
            assert producer.flush(30) == 0
            time.sleep(0.5)
        url = f"{cluster.node(1).admin_url}/v1/topics/chained/partitions"
        deadline = time.monotonic() + 20
        while True:
            [partition] = _json(url)["partitions"]
            segments = partition["segments"]
            if len(segments) >= 3 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert len(segments) >= 3, segments
    assert [s["state"] for s in segments] == ["sealed"] * (len(segments) - 1) + ["head"]
    assert segments[0]["base_offset"] == 0
    for before, after in itertools.pairwise(segments):
        assert after["base_offset"] == before["last_offset"] + 1
        assert after["group_id"] > before["group_id"]
    # Every record, plus one NOOP control batch per segment's first leader.
    assert partition["high_watermark"] == segments[-1]["high_watermark"] >= 3000


def test_readyz_is_503_until_the_node_joins(tmp_path: pathlib.Path) -> None:
    """A node whose only peer is absent cannot elect a controller: alive, not ready."""
    admin_port = free_port()
    config = NodeConfig(
        node_id=1,
        data_dir=tmp_path,
        kafka_addr=HostPort("127.0.0.1", 0),
        admin_addr=HostPort("127.0.0.1", admin_port),
        peers=(
            Peer(1, HostPort("127.0.0.1", free_port())),
            Peer(2, HostPort("127.0.0.1", free_port())),
        ),
    )
    node = Node(config)

    async def scenario() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(node.run)
            with trio.fail_after(20):
                while node.admin_port is None:
                    await trio.sleep(0.01)
            base = f"http://127.0.0.1:{admin_port}"
            health = await trio.to_thread.run_sync(_get, f"{base}/healthz")
            ready = await trio.to_thread.run_sync(_get, f"{base}/readyz")
            metrics = await trio.to_thread.run_sync(_get, f"{base}/metrics")
            nursery.cancel_scope.cancel()
        assert health[0] == 200
        assert ready[0] == 503 and json.loads(ready[1]) == {"ready": False}
        assert _samples(metrics[1].decode())[("raftlog_ready", ())] == 0

    trio.run(scenario)


def test_each_node_has_its_own_registry() -> None:
    """Several nodes in one process (as in tests) must not add up each other's numbers."""
    first, second = NodeMetrics(), NodeMetrics()
    first.kafka_request_done(0, 0.001, failed=False)
    first.kafka_bytes_received(100)
    one = _samples(first.exposition().decode())
    other = _samples(second.exposition().decode())
    assert one[("raftlog_kafka_requests_total", (("api", "Produce"),))] == 1
    assert one[("raftlog_kafka_received_bytes_total", ())] == 100
    assert other[("raftlog_kafka_received_bytes_total", ())] == 0
    assert not any(name == "raftlog_kafka_requests_total" for name, _labels in other)
