"""Produce on one node over record size, acks and partition count, with the load
generator's own ceiling at each record size measured in the same run.

Each point is a fresh topic on one `raftlog serve` (fsync=always), driven by confluent-kafka
in its own process (`benches.kafka_load`). Counts are bounded by bytes, so 16 KiB points
do not take 16 times longer. Rows carry a ``sweep`` mapping that `benches/plots.py` turns
into throughput-by-size, latency-by-size and scaling-by-partitions plots.

Replication factor 3 is swept too, by record size and acks, on three local nodes (all
three share this machine's cores and disk, so it measures the cost of replication here,
not a deployment). The `replicated` scenario compares RF=3 at 1 KiB with JetStream R3.
"""

from __future__ import annotations

from benches.common import Result, Settings, ratio
from benches.produce import _load, raftlog_node
from raftlog.testing import LocalCluster

SCENARIO = "sweep"
SIZES = (100, 1024, 16 * 1024)
BYTES_PER_POINT = 64 << 20
QUICK_BYTES_PER_POINT = 4 << 20
RECORDS_MAX = 200_000


def _count(settings: Settings, size: int) -> int:
    budget = QUICK_BYTES_PER_POINT if settings.quick else BYTES_PER_POINT
    return max(200, min(RECORDS_MAX, int(budget * settings.scale) // size))


def _point_rows(label: str, sweep: dict[str, float], produced: dict, ceiling: float,
                acks: str, replication: int = 1) -> list[Result]:
    suffix = "" if replication == 1 else f" RF={replication}"
    note = f"{produced['records']:,} records; generator ceiling {ceiling:,.0f} records/s"
    if produced["failures"]:
        note += f"; {produced['failures']} FAILED: {produced['first_failure']}"
    rows = [Result(SCENARIO, f"produce {label}", produced["records_per_s"], "records/s",
                   "load generator alone (same size)", ceiling,
                   ratio(produced["records_per_s"], ceiling), None, note, sweep,
                   f"records/s acks={acks}{suffix}")]
    for name in ("p50", "p99", "p999"):
        rows.append(Result(SCENARIO, f"produce {label} latency {name} (pipelined)",
                           produced[f"{name}_ms"], "ms", sweep=sweep,
                           family=f"{name} acks={acks}{suffix}"))
    return rows


def run(settings: Settings) -> list[Result]:
    partition_counts = (1, 10) if settings.quick else (1, 10, 100, 1000)
    directory = settings.work_directory / "sweep"
    directory.mkdir()
    results: list[Result] = []
    ceilings = {size: _load("ceiling", "--count", str(_count(settings, size)), "--size",
                            str(size))["records_per_s"] for size in SIZES}
    with raftlog_node(directory) as bootstrap:
        _load("produce", "--bootstrap", bootstrap, "--topic", "warmup", "--count", "500")
        for acks in ("all", "1"):
            for size in SIZES:
                topic = f"size-{size}-acks-{acks}"
                produced = _load("produce", "--bootstrap", bootstrap, "--topic", topic,
                                 "--partitions", "1", "--count", str(_count(settings, size)),
                                 "--size", str(size), "--acks", acks)
                results.extend(_point_rows(f"{size} B, acks={acks}, 1 partition",
                                           {"record bytes": size}, produced, ceilings[size],
                                           acks))
        for partitions in partition_counts:
            produced = _load("produce", "--bootstrap", bootstrap, "--topic",
                             f"partitions-{partitions}", "--partitions", str(partitions),
                             "--count", str(_count(settings, 1024)), "--timeout", "300",
                             timeout_s=900)
            plural = "partition" if partitions == 1 else "partitions"
            results.extend(_point_rows(f"1024 B, acks=all, {partitions} {plural}",
                                       {"partitions": partitions}, produced, ceilings[1024],
                                       "all"))
    results.extend(_replicated_points(settings, ceilings))
    return results


def _replicated_points(settings: Settings, ceilings: dict[int, float]) -> list[Result]:
    """RF=3 by record size and acks on three local nodes (fsync=always)."""
    results: list[Result] = []
    directory = settings.work_directory / "sweep-rf3"
    directory.mkdir()
    with LocalCluster(directory, nodes=3, extra_arguments=("--fsync", "always")) as cluster:
        bootstrap = cluster.bootstrap
        _load("produce", "--bootstrap", bootstrap, "--topic", "warmup-rf3", "--partitions",
              "1", "--replication", "3", "--count", "500")
        for acks in ("all", "1"):
            for size in SIZES:
                produced = _load("produce", "--bootstrap", bootstrap, "--topic",
                                 f"rf3-size-{size}-acks-{acks}", "--partitions", "1",
                                 "--replication", "3", "--count",
                                 str(_count(settings, size)), "--size", str(size),
                                 "--acks", acks)
                results.extend(_point_rows(f"{size} B, acks={acks}, 1 partition, RF=3",
                                           {"record bytes": size}, produced, ceilings[size],
                                           acks, replication=3))
    return results
