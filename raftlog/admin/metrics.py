"""A node's Prometheus metrics, in a registry of its own.

Each node owns a `CollectorRegistry` (never the process-global one), so several nodes in
one process, as in tests, keep separate numbers. Two kinds of metric:

- Counted on the hot paths, once per event and never per record: Kafka requests and
  their latency per API, bytes read and written by the Kafka listener, fsync latency,
  elections and leader changes, leadership transfers by outcome. The per-API label
  children are looked up once and cached, so a request costs a dict lookup, an increment
  and a histogram observation.
- Read at scrape time from the node (`NodeView`): each hosted Raft group's term and
  commit lag, quiesced groups, readiness, and consumer lag per group and partition for
  the groups this node coordinates. Nothing is kept between scrapes, so a dropped group
  simply disappears.

The `_created` timestamp series are switched off (process-wide, in prometheus-client):
they double the output and nothing of ours reads them.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from raftlog.admin.view import NodeView
from raftlog.node.leadership import OUTCOMES as TRANSFER_OUTCOMES
from raftlog.protocol.api_keys import API_SPECS
from raftlog.raft.ready import Role

disable_created_metrics()

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds; Kafka requests range from sub-millisecond metadata to long-polled fetches.
REQUEST_BUCKETS_S = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
FSYNC_BUCKETS_S = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
)  # fmt: skip


@attrs.define(eq=False)
class _ApiChildren:
    requests: Counter
    failures: Counter
    seconds: Histogram


class NodeMetrics:
    """The metrics of one node; also the listener's and the groups' observer."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self._requests = Counter(
            "raftlog_kafka_requests", "Kafka requests handled", ["api"], registry=registry
        )
        self._failures = Counter(
            "raftlog_kafka_request_failures",
            "Kafka requests whose handler raised (the connection was closed)",
            ["api"],
            registry=registry,
        )
        self._seconds = Histogram(
            "raftlog_kafka_request_duration_seconds",
            "Time from a Kafka request parsed to its response ready",
            ["api"],
            buckets=REQUEST_BUCKETS_S,
            registry=registry,
        )
        self._received = Counter(
            "raftlog_kafka_received_bytes", "Bytes read from Kafka clients", registry=registry
        )
        self._sent = Counter(
            "raftlog_kafka_sent_bytes", "Bytes written to Kafka clients", registry=registry
        )
        self._fsync = Histogram(
            "raftlog_fsync_duration_seconds",
            "fdatasync of a Raft group's log (one per Ready that must sync)",
            buckets=FSYNC_BUCKETS_S,
            registry=registry,
        )
        self._elections = Counter(
            "raftlog_raft_elections",
            "Times a replica hosted here became candidate (started an election)",
            registry=registry,
        )
        self._leader_changes = Counter(
            "raftlog_raft_leader_changes",
            "Times a hosted group saw its leader change (including to none)",
            registry=registry,
        )
        self._transfers = Counter(
            "raftlog_leadership_transfers",
            "Leadership transfers this node ran as leader (asked or balancing), by outcome: "
            "done, abandoned (Raft dropped it or another node won), timeout, refused",
            ["outcome"],
            registry=registry,
        )
        self._forwarded_reads = Counter(
            "raftlog_sealed_reads_forwarded",
            "Fetches of sealed segments not held here that another replica answered",
            registry=registry,
        )
        self._transfer_outcomes = {
            outcome: self._transfers.labels(outcome) for outcome in TRANSFER_OUTCOMES
        }
        self._by_api: dict[int, _ApiChildren] = {}

    def attach(self, view: NodeView) -> None:
        """Add the scrape-time metrics read from the node."""
        self.registry.register(_NodeCollector(view))

    def exposition(self) -> bytes:
        """The registry in Prometheus' text exposition format."""
        return generate_latest(self.registry)

    # -- KafkaListener observer ----------------------------------------------------------

    def kafka_bytes_received(self, count: int) -> None:
        self._received.inc(count)

    def kafka_bytes_sent(self, count: int) -> None:
        self._sent.inc(count)

    def kafka_request_done(self, api_key: int, seconds: float, failed: bool) -> None:
        children = self._by_api.get(api_key)
        if children is None:
            spec = API_SPECS.get(api_key)
            name = spec.name if spec is not None else str(api_key)
            children = _ApiChildren(
                self._requests.labels(name),
                self._failures.labels(name),
                self._seconds.labels(name),
            )
            self._by_api[api_key] = children
        children.requests.inc()
        children.seconds.observe(seconds)
        if failed:
            children.failures.inc()

    # -- LeadershipTransfers observer ----------------------------------------------------

    def leadership_transfer(self, outcome: str) -> None:
        self._transfer_outcomes[outcome].inc()

    def sealed_read_forwarded(self) -> None:
        self._forwarded_reads.inc()

    # -- ReplicaGroup observer -----------------------------------------------------------

    def fsync_done(self, seconds: float) -> None:
        self._fsync.observe(seconds)

    def role_changed(self, role: Role, leader_changed: bool) -> None:
        if role is Role.CANDIDATE:
            self._elections.inc()
        if leader_changed:
            self._leader_changes.inc()


@attrs.define(eq=False)
class _NodeCollector(Collector):
    view: NodeView

    def collect(self) -> Iterator[Metric]:
        ready = GaugeMetricFamily("raftlog_ready", "1 once the node serves clients")
        ready.add_metric([], 1.0 if self.view.ready else 0.0)
        yield ready
        samples = self.view.group_samples()
        hosted = GaugeMetricFamily("raftlog_raft_groups", "Raft groups hosted on this node")
        hosted.add_metric([], len(samples))
        yield hosted
        quiesced = GaugeMetricFamily(
            "raftlog_raft_quiesced_groups", "Hosted Raft groups that are quiescent (not ticked)"
        )
        quiesced.add_metric([], sum(1 for sample in samples if sample.quiescent))
        yield quiesced
        leaders = GaugeMetricFamily("raftlog_raft_leader_groups", "Hosted groups led here")
        leaders.add_metric([], sum(1 for sample in samples if sample.role == Role.LEADER.value))
        yield leaders
        labels = ["group", "topic", "partition"]
        term = GaugeMetricFamily(
            "raftlog_raft_term", "Current Raft term per hosted group", labels=labels
        )
        lag = GaugeMetricFamily(
            "raftlog_raft_commit_lag_entries",
            "Leader only: its last log index minus its commit index",
            labels=labels,
        )
        for sample in samples:
            values = [
                str(sample.group_id),
                sample.topic or "",
                "" if sample.partition is None else str(sample.partition),
            ]
            term.add_metric(values, sample.term)
            if sample.role == Role.LEADER.value:
                lag.add_metric(values, sample.commit_lag)
        yield term
        yield lag
        consumer = GaugeMetricFamily(
            "raftlog_consumer_lag_records",
            "High watermark minus committed offset, for groups this node coordinates",
            labels=["consumer_group", "topic", "partition"],
        )
        for entry in self.view.consumer_lags():
            if entry.lag is not None:
                consumer.add_metric([entry.group, entry.topic, str(entry.partition)], entry.lag)
        yield consumer
        dropped = CounterMetricFamily(
            "raftlog_transport_messages_dropped",
            "Raft messages to a peer dropped: its queue was full, or the connection was lost",
            labels=["peer", "channel", "reason"],
        )
        for peer_id, channel, reason, count in self.view.transport_drops():
            dropped.add_metric([str(peer_id), channel, reason], count)
        yield dropped
