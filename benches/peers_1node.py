"""One node against single-node peers in the same run: NATS JetStream (1 server, file
storage, with and without fsync before acknowledging) and Redis Streams (AOF
appendfsync everysec, next to the `produce` scenario's appendfsync always).

raftlog: one `raftlog serve` (fsync=always), confluent-kafka load in its own process.
JetStream: `benches/nats_load.c` (libnats) as in the `replicated` scenario, with the
stream at replicas=1. Redis: redis-benchmark, 8 connections x 32 pipelined XADD. A peer
that is missing is reported as a row saying so, never silently skipped.
"""

from __future__ import annotations

from benches import nats_peer
from benches.common import Result, Settings
from benches.produce import _load, _redis_rate, raftlog_node

SCENARIO = "peers-1node"
WARMUP_RECORDS = 1000


def _jetstream(
    settings: Settings,
    server: nats_peer.NatsServerBinary | str,
    generator: object,
    sync_always: bool,
    count: int,
    single_count: int,
) -> nats_peer.JetStreamFigures | str:
    if isinstance(generator, str):
        return generator
    if isinstance(server, str):
        return server
    if sync_always and not server.can_fsync_before_ack:
        return f"nats-server {server.version_text} cannot fsync before ack (no sync_interval)"
    directory = settings.work_directory / f"js1-{server.version_text}-{sync_always}"
    try:
        return nats_peer.measure(
            server, generator, directory, nodes=1, sync_always=sync_always,  # type: ignore[arg-type]
            count=count, single_count=single_count, warmup=WARMUP_RECORDS, repeats=1,
        )  # fmt: skip
    except (RuntimeError, OSError, ValueError) as error:
        return f"JetStream {server.version_text} failed to run: {error}"


def run(settings: Settings) -> list[Result]:
    count = max(WARMUP_RECORDS, int((30_000 if settings.quick else 200_000) * settings.scale))
    single_count = max(50, int((200 if settings.quick else 1000) * min(1.0, settings.scale * 4)))
    directory = settings.work_directory / "peers-1node"
    directory.mkdir()
    generator = nats_peer.build_load_generator(directory)
    peers = {
        "JetStream 2.15.1 1 node, sync_interval=always": _jetstream(
            settings, nats_peer.wheel_server(), generator, True, count, single_count),
        "JetStream 2.9.10 1 node, default (acks BEFORE fsync)": _jetstream(
            settings, nats_peer.debian_server(), generator, False, count, single_count),
    }  # fmt: skip
    redis_everysec = _redis_rate(directory, count, "everysec")
    with raftlog_node(directory) as bootstrap:
        _load("produce", "--bootstrap", bootstrap, "--count", str(WARMUP_RECORDS))
        produced = _load("produce", "--bootstrap", bootstrap, "--count", str(count))
        consumed = _load("consume", "--bootstrap", bootstrap, "--count",
                         str(produced["records"] + WARMUP_RECORDS))
        single = _load("single", "--bootstrap", bootstrap, "--topic", "single", "--count",
                       str(single_count))
    results = []
    for label, peer in peers.items():
        fsynced = "always" in label
        rows = (
            ("produce 1 KiB acks=all fsync=always", produced["records_per_s"], "records/s",
             "produce", "records_per_s", False),
            ("single-record produce p50", single["p50_ms"], "ms", "single", "p50_ms", True),
            ("consume from start", consumed["records_per_s"], "records/s", "consume",
             "records_per_s", False),
        )  # fmt: skip
        for metric, value, unit, part, key, lower in rows:
            name = f"{metric} vs {label}"
            if isinstance(peer, str):
                results.append(Result(SCENARIO, name, value, unit, notes=f"no comparison: {peer}"))
                continue
            peer_value = float(getattr(peer, part)[key])
            ratio = (peer_value / value if lower else value / peer_value) if value else 0.0
            note = "ratio: JetStream p50 / raftlog p50" if lower else ""
            if not fsynced:
                note = (note + "; " if note else "") + "reference only: JetStream acks first"
            results.append(Result(SCENARIO, name, value, unit, label, peer_value, ratio, None,
                                  note))
    name = "produce 1 KiB acks=all fsync=always vs Redis Streams appendfsync everysec"
    if redis_everysec is None:
        results.append(Result(SCENARIO, name, produced["records_per_s"], "records/s",
                              notes="no comparison: redis-server or redis-benchmark missing"))
    else:
        results.append(Result(
            SCENARIO, name, produced["records_per_s"], "records/s",
            "Redis XADD, appendfsync everysec (acks before fsync), 8 x 32 pipelined",
            redis_everysec, produced["records_per_s"] / redis_everysec, None,
            "reference only: Redis everysec acknowledges before its data is on disk",
        ))  # fmt: skip
    return results
