"""Raft core benchmarks: the simulator's speed and one 3-node group's commit rate.

`measure(quick)` returns one dict per scenario; `run(settings)` gives the harness Results.

- ``simulator``: checked simulator steps per second on a fault-heavy random schedule (every
  safety checker on). This is what bounds how many schedules a soak explores per minute.
- ``commit``: proposals committed (persisted on a majority, applied on every node) per second
  by one 3-node group driven in-process with in-memory storage and no checkers: the cost of
  the Raft core itself per entry. Production entries are whole Kafka record batches, so
  records per second is this figure times the records per batch. The ceiling is the whole
  3-node NATS JetStream system from ``shared/design/peers.md`` (publishes per second, with
  I/O): the core alone must not be slower per entry than a peer's complete system.
"""

from __future__ import annotations

import random
import time

from benches.common import Result, Settings, results_from_rows
from raftlog.raft.config import RaftConfig
from raftlog.raft.membership import Membership
from raftlog.raft.messages import Message
from raftlog.raft.node import RawNode
from raftlog.raft.ready import Role
from raftlog.raft.storage import MemoryStorage
from raftlog.sim.runner import RunOptions, run_seed

PEER_PUBLISHES_PER_SECOND = 20_100.0
"""NATS JetStream 2.9.10, 3 nodes, stream replicas=3 (peers.md)."""


def _row(
    scenario: str, metric: str, value: float, unit: str, ceiling_name: str | None,
    ceiling_value: float | None, target_ratio: float | None, notes: str,
) -> dict[str, object]:
    return {
        "scenario": scenario,
        "metric": metric,
        "value": round(value, 2),
        "unit": unit,
        "ceiling_name": ceiling_name,
        "ceiling_value": ceiling_value,
        "ratio": round(value / ceiling_value, 3) if ceiling_value else None,
        "target_ratio": target_ratio,
        "notes": notes,
    }


def _simulator_steps_per_second(steps: int) -> float:
    started = time.perf_counter()
    total = 0
    for seed in (1, 2):
        result = run_seed(seed, RunOptions(steps=steps // 2))
        if result.failure is not None:
            raise RuntimeError(f"simulator seed {seed} failed in the benchmark: {result.failure}")
        total += result.steps
    return total / (time.perf_counter() - started)


class _Group:
    """Three RawNodes on in-memory storage; messages delivered in order, Ready by Ready."""

    def __init__(self) -> None:
        membership = Membership(frozenset({1, 2, 3}))
        self.storages = {node_id: MemoryStorage.bootstrap(membership) for node_id in (1, 2, 3)}
        self.nodes = {
            node_id: RawNode(
                RaftConfig(
                    node_id=node_id, random_source=random.Random(node_id),
                    max_inflight_messages=256,
                ),
                storage,
            )
            for node_id, storage in self.storages.items()
        }
        self.applied = 0

    def pump(self) -> None:
        pending: list[Message] = []
        while True:
            for node_id, node in self.nodes.items():
                if not node.has_ready():
                    continue
                ready = node.ready()
                storage = self.storages[node_id]
                storage.append(ready.entries)
                if ready.hard_state is not None:
                    storage.set_hard_state(ready.hard_state)
                pending.extend(ready.messages)
                if node_id == 1:
                    self.applied += len(ready.committed_entries)
                node.advance(ready)
            if not pending:
                return
            batch, pending = pending, []
            for message in batch:
                self.nodes[message.to_id].step(message)


def _commits_per_second(proposals: int, per_round: int, payload_bytes: int) -> float:
    group = _Group()
    group.nodes[1].campaign()
    group.pump()
    leader = group.nodes[1]
    if leader.role != Role.LEADER:
        raise RuntimeError("benchmark group failed to elect node 1")
    payload = bytes(payload_bytes)
    baseline = group.applied
    started = time.perf_counter()
    for _ in range(proposals // per_round):
        for _ in range(per_round):
            leader.propose(payload)
        group.pump()
    elapsed = time.perf_counter() - started
    committed = group.applied - baseline
    if committed != proposals // per_round * per_round:
        raise RuntimeError(f"only {committed} of the proposals committed")
    return committed / elapsed


def measure(quick: bool) -> list[dict[str, object]]:
    steps = 20_000 if quick else 200_000
    proposals = 4_000 if quick else 40_000
    rows = [
        _row(
            "raft-sim", "simulated steps per second", _simulator_steps_per_second(steps),
            "steps/s", None, None, None,
            f"{steps} checked steps over 2 seeds, swarm fault schedules, every safety checker on",
        )
    ]
    for per_round in (1, 64):
        rate = _commits_per_second(proposals, per_round, 1024)
        rows.append(
            _row(
                f"raft-commit-{per_round}-in-flight",
                "proposals committed per second, one 3-node group, in-process",
                rate, "entries/s",
                "NATS JetStream 3-node R3 publishes/s (peers.md, whole system with I/O)",
                PEER_PUBLISHES_PER_SECOND, 1.0,
                f"{proposals} proposals of 1 KiB, {per_round} proposed per Ready round, "
                "in-memory storage, no checkers; an entry is a whole record batch in production",
            )
        )
    return rows


def run(settings: Settings) -> list[Result]:
    """The harness's entry point (`python -m benches`)."""
    return results_from_rows(measure(settings.quick))
