"""Three replicas: raftlog (3 nodes, RF=3, acks=all, fsync=always) against NATS JetStream R3
with `sync_interval: always` (2.15.1, fsync before ack), in the same run, 1 KiB records,
one partition against one stream (issues #6 and #8).

- produce: records/s, pipelined (raftlog: confluent-kafka, linger.ms=5; JetStream: the
  libnats generator with 256 publishes in flight); target >= 3x JetStream.
- single-record produce p50: each record waits for its ack; target <= JetStream's
  (ratio = JetStream p50 / raftlog p50, so >= 1 meets it).
- consume from the start: records/s (raftlog: a Kafka consumer; JetStream: a pull consumer,
  batches of 1000, AckNone); target >= 3x.
- JetStream 2.9.10 (Debian) R3 at its default, which acknowledges *before* fsync, is
  measured too and shown for reference only (no target): it is not like for like.
- failover: SIGKILL the partition leader, time until the first acks=all produce on that
  partition succeeds (probes every 5 ms, sent after the kill); p50 over several kills, the
  victim restarted and rejoined between kills.

Both sides' clients are C (librdkafka, libnats) in their own processes, connected to the
leader: librdkafka finds the partition leader itself; the libnats generator asks for the
stream info and connects to the server it names as leader. Servers bind 127.0.0.1 on free
ports and are stopped by PID. A missing or failing peer becomes a note, never a crash.
"""

from __future__ import annotations

import datetime
import os
import pathlib
import re
import statistics
import time

import attrs
from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from benches import nats_peer
from benches.common import Result, Settings
from benches.produce import _load
from raftlog.testing import LocalCluster, LocalNode

SCENARIO = "replicated"
TOPIC = "bench"
RECORD_BYTES = 1024
WARMUP_RECORDS = 1000
REPEATS = 3
"""Pipelined produce runs per side; the median run is reported."""
FAILOVER_DEADLINE_S = 30.0
PROBE_INTERVAL_S = 0.005
METADATA_POLL_S = 0.010
REJOIN_TIMEOUT_S = 30.0
FOLLOWING = re.compile(rb"event=leader_changed group=(\d+) leader=([1-9]\d*) role=(\w+)")
ELECTED = re.compile(
    rb"ts=(\S+) level=\w+ event=leader_changed group=\d+ leader=[1-9]\d* role=leader"
)


def _create_topic(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(TOPIC, num_partitions=1, replication_factor=3)], operation_timeout=20
    )
    futures[TOPIC].result(timeout=30)


def _partition_leader(bootstrap: str) -> int:
    """Partition 0's leader; waits while there is none (-1) right after creation or a kill."""
    deadline = time.monotonic() + REJOIN_TIMEOUT_S
    while True:
        metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(TOPIC, timeout=10)
        leader = int(metadata.topics[TOPIC].partitions[0].leader)
        if leader > 0:
            return leader
        if time.monotonic() > deadline:
            raise RuntimeError(f"partition 0 of {TOPIC} has no leader")
        time.sleep(0.05)


def _last_election(logs: list[pathlib.Path], since: float, until: float) -> float | None:
    """Wall time of the last `role=leader` line the survivors logged between the kill and
    the first acknowledged produce: when Raft had a leader again in every group it needed.
    It splits the failover figure into the server's election and the client's rediscovery."""
    elected = []
    for path in logs:
        for match in ELECTED.finditer(path.read_bytes()):
            stamp = datetime.datetime.fromisoformat(match.group(1).decode().replace("Z", "+00:00"))
            if since <= stamp.timestamp() <= until + 0.001:
                elected.append(stamp.timestamp())
    return max(elected) if elected else None


def _groups_following(log: bytes) -> set[int]:
    """Raft groups in which this log shows the node knowing a leader."""
    return {int(match.group(1)) for match in FOLLOWING.finditer(log)}


def _restart_and_rejoin(node: LocalNode) -> None:
    """Start a killed node again and wait until it follows a leader in every group it had
    joined before, so the next kill leaves a quorum that includes it."""
    before = node.log_path.read_bytes()
    groups = _groups_following(before)
    node.start()
    deadline = time.monotonic() + REJOIN_TIMEOUT_S
    while not groups <= _groups_following(node.log_path.read_bytes()[len(before) :]):
        if time.monotonic() > deadline:
            raise RuntimeError(f"node {node.node_id} did not rejoin every group after restart")
        time.sleep(0.05)
    time.sleep(0.5)  # let appends bring it level before the next kill


@attrs.frozen
class Failover:
    """One SIGKILL of partition 0's leader; seconds from the kill."""

    polling_s: float
    """To the first acks=all produce acknowledged for a client that polls metadata every
    10 ms and produces through a fresh producer once a live leader is named: the server's
    failover as a client can best see it."""
    stock_s: float
    """To the first acknowledged probe of a long-lived producer sending every 5 ms:
    librdkafka re-queries a down leader on its own 1 s timer, so this is what an
    application with default client behaviour sees."""
    elected_s: float | None
    """To the last Raft election the survivors logged before the polling client's ack."""


def _produce_once(bootstrap: str) -> bool:
    """One acks=all record to partition 0 through a new producer; True if acknowledged."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "linger.ms": 0,
            "message.timeout.ms": 2000,
            "log_level": 0,
        }
    )
    outcome: list[bool] = []
    producer.produce(
        TOPIC, b"f" * RECORD_BYTES, partition=0, on_delivery=lambda e, _m: outcome.append(not e)
    )
    producer.flush(3)
    return outcome == [True]


def _failover_once(cluster: LocalCluster) -> Failover:
    """Kill partition 0's leader, time both clients' first acknowledged produce, restart
    the victim and wait until it has rejoined."""
    victim = cluster.node(_partition_leader(cluster.bootstrap))
    stock = Producer(
        {
            "bootstrap.servers": cluster.bootstrap,
            "acks": "all",
            "linger.ms": 0,
            "enable.idempotence": False,
            "message.timeout.ms": int(FAILOVER_DEADLINE_S * 1000),
            "retry.backoff.ms": 10,
            "retry.backoff.max.ms": 50,
            "reconnect.backoff.ms": 10,
            "reconnect.backoff.max.ms": 50,
            "topic.metadata.refresh.fast.interval.ms": 10,
            "log_level": 0,
        }
    )
    stock.produce(TOPIC, b"p" * RECORD_BYTES, partition=0)
    if stock.flush(10) != 0:
        raise RuntimeError("the priming produce before the kill was not acknowledged")
    stock_acks: list[float] = []

    def delivered(error: KafkaError | None, _message: Message) -> None:
        if error is None:
            stock_acks.append(time.perf_counter())

    killed_wall = time.time()
    killed_at = time.perf_counter()
    victim.kill()
    survivors = cluster.bootstrap  # only running members
    admin = AdminClient({"bootstrap.servers": survivors, "log_level": 0})
    polled_at: float | None = None
    next_poll = killed_at
    while polled_at is None or not stock_acks:
        now = time.perf_counter()
        if now - killed_at > FAILOVER_DEADLINE_S:
            raise RuntimeError(f"no produce succeeded {FAILOVER_DEADLINE_S:.0f} s after the kill")
        if not stock_acks:
            stock.produce(TOPIC, b"p" * RECORD_BYTES, partition=0, on_delivery=delivered)
        if polled_at is None and now >= next_poll:
            next_poll = now + METADATA_POLL_S
            metadata = admin.list_topics(TOPIC, timeout=1)
            leader = metadata.topics[TOPIC].partitions[0].leader
            if leader > 0 and leader != victim.node_id and _produce_once(survivors):
                polled_at = time.perf_counter()
        stock.poll(PROBE_INTERVAL_S)
    stock.flush(FAILOVER_DEADLINE_S)
    logs = [node.log_path for node in cluster.members if node is not victim]
    elected = _last_election(logs, killed_wall, killed_wall + (polled_at - killed_at))
    _restart_and_rejoin(victim)
    return Failover(
        polled_at - killed_at,
        stock_acks[0] - killed_at,
        None if elected is None else elected - killed_wall,
    )


def _measure_raftlog(settings: Settings, count: int, single_count: int, kills: int) -> dict:
    directory = settings.work_directory / "raftlog"
    with LocalCluster(directory, nodes=3, extra_arguments=("--fsync", "always")) as cluster:
        _create_topic(cluster.bootstrap)
        bootstrap = cluster.bootstrap
        # Warm up: the topic exists; let the client learn the leader before measuring.
        _load("produce", "--bootstrap", bootstrap, "--topic", TOPIC, "--count", str(WARMUP_RECORDS))
        runs = [
            _load("produce", "--bootstrap", bootstrap, "--topic", TOPIC, "--count", str(count))
            for _ in range(REPEATS)
        ]
        produced = nats_peer.median_run(runs, "records_per_s")
        consumed = _load(
            "consume", "--bootstrap", bootstrap, "--topic", TOPIC,
            "--count", str(sum(run["records"] for run in runs) + WARMUP_RECORDS),
        )  # fmt: skip
        single = _load(
            "single", "--bootstrap", bootstrap, "--topic", TOPIC, "--count", str(single_count)
        )
        failovers = [_failover_once(cluster) for _ in range(kills)]
    failed = [run for run in runs if run["failures"]]
    if failed:
        raise RuntimeError(f"{failed[0]['failures']} records failed: {failed[0]['first_failure']}")
    return {"produce": produced, "consume": consumed, "single": single, "failovers": failovers}


def _measure_jetstream(
    settings: Settings,
    server: nats_peer.NatsServerBinary | str,
    generator: pathlib.Path | str,
    *,
    sync_always: bool,
    count: int,
    single_count: int,
) -> nats_peer.JetStreamFigures | str:
    """Figures, or why there are none (missing server, missing libnats, failure)."""
    if isinstance(generator, str):
        return generator
    if isinstance(server, str):
        return server
    if sync_always and not server.can_fsync_before_ack:
        return f"nats-server {server.version_text} cannot fsync before ack (no sync_interval)"
    directory = settings.work_directory / f"jetstream-{server.version_text}"
    try:
        return nats_peer.measure(
            server, generator, directory, nodes=3, sync_always=sync_always,
            count=count, single_count=single_count, warmup=WARMUP_RECORDS, repeats=REPEATS,
        )  # fmt: skip
    except (RuntimeError, OSError, ValueError) as error:
        return f"JetStream {server.version_text} failed to run: {error}"


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _comparison(
    metric: str,
    value: float,
    unit: str,
    peer: nats_peer.JetStreamFigures | str,
    peer_label: str,
    peer_value: float | None,
    target: float | None,
    notes: str,
    lower_is_better: bool = False,
) -> Result:
    if isinstance(peer, str) or not peer_value:
        reason = peer if isinstance(peer, str) else "peer figure is zero"
        return Result(SCENARIO, metric, value, unit, notes=f"{notes}; no comparison: {reason}")
    ratio = peer_value / value if lower_is_better else value / peer_value
    return Result(SCENARIO, metric, value, unit, peer_label, peer_value, ratio, target, notes)


def run(settings: Settings) -> list[Result]:
    count = max(WARMUP_RECORDS, int((30_000 if settings.quick else 200_000) * settings.scale))
    single_count = max(50, int((200 if settings.quick else 1000) * min(1.0, settings.scale * 4)))
    kills = 3 if settings.quick else 20
    directory = settings.work_directory
    generator = nats_peer.build_load_generator(directory)
    fsynced = _measure_jetstream(
        settings, nats_peer.wheel_server(), generator,
        sync_always=True, count=count, single_count=single_count,
    )  # fmt: skip
    reference = _measure_jetstream(
        settings, nats_peer.debian_server(), generator,
        sync_always=False, count=count, single_count=single_count,
    )  # fmt: skip
    ceiling = _load("ceiling", "--count", str(count))["records_per_s"]
    ours = _measure_raftlog(settings, count, single_count, kills)
    produced, consumed, single = ours["produce"], ours["consume"], ours["single"]

    def figure(peer: nats_peer.JetStreamFigures | str, part: str, key: str) -> float | None:
        return None if isinstance(peer, str) else float(getattr(peer, part)[key])

    def label(peer: nats_peer.JetStreamFigures | str, what: str) -> str:
        if isinstance(peer, str):
            return what
        return f"{what}, leader {peer.leader or 'n1'}"

    sync_label = "JetStream 2.15.1 R3 sync_interval=always"
    ref_label = "JetStream 2.9.10 R3 default (acks BEFORE fsync)"
    produce_notes = (
        f"median of {REPEATS} runs of {count} records after a {WARMUP_RECORDS}-record "
        f"warm-up; raftlog p50 "
        f"{produced['p50_ms']:.0f} ms (linger.ms=5, whole run enqueued at once); "
        f"librdkafka produce() ceiling {ceiling:,.0f}/s"
    )
    single_notes = (
        f"ratio = JetStream p50 / raftlog p50 (lower is better); raftlog p99 "
        f"{single['p99_ms']:.2f} ms"
    )
    if not isinstance(fsynced, str):
        single_notes += f", JetStream p99 {fsynced.single['p99_ms']:.2f} ms"
        produce_notes += (
            f"; JetStream 256 in flight, ack p50 {fsynced.produce['p50_ms']:.1f} ms "
            f"p99 {fsynced.produce['p99_ms']:.1f} ms"
        )
    failovers: list[Failover] = ours["failovers"]
    elections = [kill.elected_s for kill in failovers if kill.elected_s is not None]
    election_note = (
        f"; the survivors' logs show the last Raft election p50 "
        f"{statistics.median(elections) * 1000:.0f} ms after the kill"
        if elections
        else ""
    )

    def listed(samples: list[float]) -> str:
        return ", ".join(f"{seconds * 1000:.0f}" for seconds in samples) + " ms"

    results = [
        _comparison(
            "produce 1 KiB RF=3 acks=all fsync=always", produced["records_per_s"], "records/s",
            fsynced, label(fsynced, sync_label), figure(fsynced, "produce", "records_per_s"),
            3.0, produce_notes,
        ),
        _comparison(
            "single-record produce p50 (RF=3, fsync before ack)", single["p50_ms"], "ms",
            fsynced, label(fsynced, sync_label), figure(fsynced, "single", "p50_ms"), 1.0,
            single_notes,
            lower_is_better=True,
        ),
        _comparison(
            "consume from start (RF=3)", consumed["records_per_s"], "records/s",
            fsynced, label(fsynced, f"{sync_label}, pull consumer batch 1000"),
            figure(fsynced, "consume", "records_per_s"), 3.0,
            f"{consumed['records']} records, {consumed['mb_per_s']:.0f} MB/s",
        ),
        _comparison(
            "produce (reference peer)", produced["records_per_s"], "records/s",
            reference, label(reference, ref_label), figure(reference, "produce", "records_per_s"),
            None, "reference only: JetStream here acknowledges before its data is on disk",
        ),
        _comparison(
            "single-record produce p50 (reference peer)", single["p50_ms"], "ms",
            reference, label(reference, ref_label), figure(reference, "single", "p50_ms"),
            None, "reference only, not like for like; ratio = JetStream p50 / raftlog p50",
            lower_is_better=True,
        ),
        _comparison(
            "consume from start (reference peer)", consumed["records_per_s"], "records/s",
            reference, label(reference, f"{ref_label}, pull consumer"),
            figure(reference, "consume", "records_per_s"), None, "reference only",
        ),
        Result(
            SCENARIO, "failover after SIGKILL of the partition leader, p50",
            statistics.median(kill.polling_s for kill in failovers) * 1000, "ms",
            notes=f"{len(failovers)} kills: {listed([k.polling_s for k in failovers])}; kill to "
            "the first acks=all produce acknowledged, for a client polling metadata every 10 ms"
            + election_note,
        ),
        Result(
            SCENARIO, "failover after SIGKILL of the partition leader, p99",
            _percentile([kill.polling_s for kill in failovers], 0.99) * 1000, "ms",
            notes=f"over {len(failovers)} kills (the slowest of fewer than 100 is the max)",
        ),
        Result(
            SCENARIO, "failover seen by a long-lived librdkafka producer, p50",
            statistics.median(kill.stock_s for kill in failovers) * 1000, "ms",
            notes=f"{listed([k.stock_s for k in failovers])}; probes every 5 ms, backoffs 10-50 "
            "ms, but librdkafka re-queries a down partition leader only on its 1 s timer",
        ),
    ]  # fmt: skip
    os.sync()
    return results
