"""Consumer groups: offset commits per second, and rebalance time of a 10-member group.

- commits: N confluent-kafka consumers (each its own process, N = 8; quick: 4) in one group
  over an N-partition topic, each committing synchronously in a loop (one partition, a
  growing offset) for a fixed time; the total rate and the per-commit p50/p99. The
  reference in the same run: the same N processes each producing one 64-byte record at a
  time with acks=all (a commit is one such record in `__consumer_offsets`, plus the group
  checks). One node; three nodes as well in full mode.
- rebalance: 9 members (processes) in a stable group over a 10-partition topic; a 10th
  subscribes: time from its subscribe() call until every one of the 10 has received its
  new assignment (each member logs its assignment callbacks with wall-clock times). Then a
  member closes: time from its close() call until the other 9 all have new assignments.
  Members use heartbeat.interval.ms 500: a member learns of a rebalance on its next
  heartbeat, so up to half a second of each figure is that interval, as with Kafka.

No Kafka broker is packaged for this machine's registries, so there is no peer: the
figures are absolute, next to the in-run produce reference for commits.
"""

from __future__ import annotations

import json
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

from confluent_kafka.admin import AdminClient, NewTopic

from benches.common import Result, Settings, ratio
from raftlog.testing import LocalCluster

SCENARIO = "groups"
REPO = pathlib.Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 90.0
SETTLE_S = 1.5
"""Quiet time after the last assignment before a group counts as stable."""
REBALANCE_TIMEOUT_S = 60.0
MEMBERS = 10


def _spawn(
    mode: str, bootstrap: str, group: str, topic: str, log: pathlib.Path, *rest: str
) -> subprocess.Popen[str]:
    """A client process; its stderr (librdkafka's logs, a traceback) goes to `log`."""
    with log.open("a") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "benches.group_member", mode, bootstrap, group, topic, *rest],
            cwd=REPO, stdout=subprocess.PIPE, stderr=stderr, text=True,
        )  # fmt: skip


def _stop(processes: list[subprocess.Popen[str]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _create(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=partitions)])[topic].result(30)


def _loop_rate(
    mode: str, bootstrap: str, clients: int, seconds: float, directory: pathlib.Path
) -> tuple[float, float, float, int]:
    """(operations/s summed over the clients, median p50 ms, worst p99 ms, refusals)."""
    topic = f"{mode}-topic"
    _create(bootstrap, topic, clients)
    go = directory / f"{mode}.go"
    log = directory / f"{mode}.log"
    processes = [
        _spawn(mode, bootstrap, f"{mode}-group", topic, log, str(go), str(seconds))
        for _ in range(clients)
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            if process.stdout.readline().strip() != "ready":
                raise RuntimeError(f"a {mode} client did not get ready: {_tail(log)}")
        time.sleep(SETTLE_S)  # the group settles after its last member joined
        go.touch()
        reports = []
        for process in processes:
            assert process.stdout is not None
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"a {mode} client failed: {_tail(log)}")
            reports.append(json.loads(line))
            process.wait(timeout=READY_TIMEOUT_S)
    finally:
        _stop(processes)
    refused = sum(sum(report["errors"].values()) for report in reports)
    if refused > total_allowed_refusals(reports):
        raise RuntimeError(f"{mode}: {refused} refused: {[r['errors'] for r in reports]}")
    total = sum(report["count"] for report in reports)
    elapsed = max(report["seconds"] for report in reports)
    return (
        total / elapsed,
        statistics.median(report["p50_ms"] for report in reports),
        max(report["p99_ms"] for report in reports),
        refused,
    )


def _tail(log: pathlib.Path) -> str:
    return log.read_text(errors="replace")[-2000:] if log.exists() else "(no output)"


def total_allowed_refusals(reports: list[dict[str, object]]) -> int:
    """A few refusals (a late rebalance) are noise; more mean the figure is not a rate."""
    return max(10, sum(int(str(report["count"])) for report in reports) // 100)


def _commit_results(
    cluster: LocalCluster, clients: int, seconds: float, directory: pathlib.Path
) -> list[Result]:
    nodes = len(cluster.members)
    commits, commit_p50, commit_p99, refused = _loop_rate(
        "commit", cluster.bootstrap, clients, seconds, directory
    )
    produced, produce_p50, _p99, _refused = _loop_rate(
        "produce", cluster.bootstrap, clients, seconds, directory
    )
    where = "1 node" if nodes == 1 else f"{nodes} nodes, RF={nodes}"
    return [
        Result(
            SCENARIO,
            f"offset commits/s, {clients} consumers committing synchronously ({where})",
            commits,
            "commits/s",
            ceiling_name=f"sync acks=all produce, {clients} processes",
            ceiling_value=produced,
            ratio=ratio(commits, produced),
            notes=(
                f"commit p50 {commit_p50:.2f} ms, p99 {commit_p99:.2f} ms, {refused} refused "
                f"(a late rebalance); reference "
                f"produce p50 {produce_p50:.2f} ms; fsync=always; no Kafka peer available"
            ),
        )
    ]


class _Member:
    """One `member` process and its assignment log."""

    def __init__(self, bootstrap: str, topic: str, events: pathlib.Path) -> None:
        self.events = events
        log = events.with_suffix(".log")
        self.process = _spawn("member", bootstrap, "rebalancers", topic, log, str(events))

    def times(self, kind: str) -> list[float]:
        if not self.events.exists():
            return []
        return [
            float(line.split()[1])
            for line in self.events.read_text().splitlines()
            if line.startswith(kind + " ") and len(line.split()) == 3
        ]


def _wait_stable(members: list[_Member], since: float) -> float:
    """Wait until every member was assigned after `since` and the group went quiet; the
    time the last of them was assigned."""
    deadline = time.monotonic() + REBALANCE_TIMEOUT_S
    while time.monotonic() < deadline:
        firsts = [min((t for t in m.times("assigned") if t > since), default=None) for m in members]
        latest = max((t for m in members for t in m.times("assigned")), default=0.0)
        if all(first is not None for first in firsts) and time.time() - latest > SETTLE_S:
            return max(first for first in firsts if first is not None)
        time.sleep(0.05)
    raise RuntimeError("the group did not settle")


def _rebalance_results(
    cluster: LocalCluster, repeats: int, directory: pathlib.Path
) -> list[Result]:
    topic = "rebalance-topic"
    _create(cluster.bootstrap, topic, MEMBERS)
    members = [
        _Member(cluster.bootstrap, topic, directory / f"member{i}.events")
        for i in range(MEMBERS - 1)
    ]
    joins: list[float] = []
    leaves: list[float] = []
    try:
        _wait_stable(members, 0.0)
        for round_index in range(repeats):
            newcomer = _Member(cluster.bootstrap, topic, directory / f"new{round_index}.events")
            members.append(newcomer)
            deadline = time.monotonic() + REBALANCE_TIMEOUT_S
            while not newcomer.times("subscribing"):
                if time.monotonic() > deadline:
                    raise RuntimeError("the new member never subscribed")
                time.sleep(0.01)
            joined_at = newcomer.times("subscribing")[0]
            joins.append(_wait_stable(members, joined_at) - joined_at)

            leaving = members.pop(0)
            leaving.process.terminate()
            while not leaving.times("closing"):
                if time.monotonic() > deadline + REBALANCE_TIMEOUT_S:
                    raise RuntimeError("the leaving member never closed")
                time.sleep(0.01)
            left_at = leaving.times("closing")[0]
            leaves.append(_wait_stable(members, left_at) - left_at)
            leaving.process.wait(timeout=20)
    finally:
        _stop([member.process for member in members])
    note = (
        f"median of {repeats}: {', '.join(f'{s * 1000:.0f}' for s in joins)} ms; "
        "heartbeat.interval.ms 500, session.timeout.ms 6000; 1 node; no Kafka peer available"
    )
    leave_note = note.replace(", ".join(f"{s * 1000:.0f}" for s in joins),
                              ", ".join(f"{s * 1000:.0f}" for s in leaves))  # fmt: skip
    return [
        Result(SCENARIO, "rebalance: 10th member joins a stable 9-member group, until all 10 "
               "assigned", statistics.median(joins) * 1000, "ms", notes=note),
        Result(SCENARIO, "rebalance: a member of 10 closes, until the other 9 are assigned",
               statistics.median(leaves) * 1000, "ms", notes=leave_note),
    ]  # fmt: skip


def run(settings: Settings) -> list[Result]:
    clients = 4 if settings.quick else 8
    seconds = 2.0 if settings.quick else 10.0
    repeats = 1 if settings.quick else 3
    results: list[Result] = []
    directory = pathlib.Path(tempfile.mkdtemp(prefix="groups-", dir=settings.work_directory))
    for nodes in (1,) if settings.quick else (1, 3):
        files = directory / f"clients{nodes}"
        files.mkdir()
        with LocalCluster(directory / f"cluster{nodes}", nodes=nodes) as cluster:
            _wait_for_coordinators(cluster.bootstrap)
            results += _commit_results(cluster, clients, seconds, files)
            if nodes == 1:
                results += _rebalance_results(cluster, repeats, files)
    return results


def _wait_for_coordinators(bootstrap: str) -> None:
    """Until every `__consumer_offsets` partition has a leader (right after start-up)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        topics = admin.list_topics(timeout=10).topics
        offsets = topics.get("__consumer_offsets")
        if offsets is not None and all(p.leader > 0 for p in offsets.partitions.values()):
            return
        time.sleep(0.1)
    raise RuntimeError("__consumer_offsets has partitions without a leader")
