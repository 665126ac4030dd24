"""Random schedules against a simulated cluster, replay, and shrinking (a small VOPR).

A schedule is a list of actions, each a tuple of a name and integer arguments. The runner
draws actions from a seeded generator that looks at the cluster (to pick a live node or a
message in flight); every action is recorded, so the same seed gives the same run and a
recorded schedule replays exactly. An action whose precondition no longer holds (on replay
of a shrunk schedule) does nothing.

Periodically, and at the end, the runner heals everything and checks liveness: a leader is
elected and a fresh proposal is applied by every live voter within a bounded number of ticks.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import attrs

from raftlog.invariant import InvariantViolation
from raftlog.raft.membership import ConfigChangeKind
from raftlog.raft.node import RawNode
from raftlog.sim.cluster import ClusterOptions, SimCluster

Action = tuple[str | int, ...]


class LivenessFailure(AssertionError):
    """The healed cluster did not elect a leader or commit within the bound."""


@attrs.frozen
class RunOptions:
    steps: int = 10_000
    liveness_every_steps: int = 4_000
    """Run a heal-and-check-liveness phase this often (0: only at the end)."""
    liveness_tick_bound: int = 400
    """Ticks within which a healed cluster must elect a leader and commit."""
    crashes: bool = True
    partitions: bool = True
    membership_changes: bool = True
    transfers: bool = True
    compaction: bool = True


@attrs.frozen
class RunResult:
    seed: int
    steps: int
    actions: int
    committed_payloads: int
    max_commit_index: int
    elections: int
    liveness_checks: int
    failure: str | None = None
    schedule: tuple[Action, ...] = ()


# ------------------------------------------------------------------ executing actions


def apply_action(cluster: SimCluster, action: Action) -> None:
    """Execute one recorded action (a no-op if it no longer applies)."""
    name = action[0]
    args = [int(argument) for argument in action[1:]]
    nodes = cluster.nodes
    if name == "deliver":
        cluster.deliver(args[0])
    elif name == "drop":
        if cluster.network.in_flight:
            cluster.network.drop(args[0] % len(cluster.network.in_flight))
    elif name == "duplicate":
        if cluster.network.in_flight:
            cluster.network.duplicate(args[0] % len(cluster.network.in_flight))
    elif name == "tick":
        cluster.tick_all()
    elif name == "tick_node":
        if args[0] in nodes:
            cluster.tick(args[0])
    elif name == "ready":
        if args[0] in nodes:
            cluster.process_ready(args[0])
    elif name == "propose":
        cluster.propose()
    elif name == "read":
        if args[0] in nodes:
            cluster.read(args[0])
    elif name == "crash":
        if args[0] in nodes:
            cluster.crash(args[0])
    elif name == "restart":
        if args[0] in nodes:
            cluster.restart(args[0])
    elif name == "partition":
        # Arguments: a bit mask of the nodes on side 1.
        mask = args[0]
        cluster.network.partition({node_id: (mask >> node_id) & 1 for node_id in nodes})
    elif name == "heal":
        cluster.network.heal()
    elif name == "transfer":
        cluster.transfer(args[0])
    elif name == "config":
        cluster.change_membership(ConfigChangeKind(args[0]), args[1])
    elif name == "compact":
        if args[0] in nodes:
            cluster.compact(args[0])
    elif name == "stabilize":
        stabilize(cluster, args[0])
        return  # stabilize runs its own checks
    else:
        raise ValueError(f"unknown action {name!r}")
    cluster.check()


def stabilize(cluster: SimCluster, tick_bound: int) -> None:
    """Heal, restart everyone, then require a leader and a commit within ``tick_bound`` ticks."""
    cluster.network.heal()
    for node_id in cluster.nodes:
        cluster.restart(node_id)
    cluster.check()
    payload: bytes | None = None
    proposer: tuple[int, int] | None = None
    for _ in range(tick_bound):
        cluster.tick_all()
        cluster.check()
        _flush(cluster)
        leader = cluster.leader()
        if leader is None or not _leader_committed_in_term(leader):
            continue
        if payload is not None and proposer != (leader.id, leader.term):
            # The proposal went to a leader that has since been deposed (a removed node
            # still leading its old term, say): its entry may never commit, and that is
            # not a liveness failure. Propose again at the leader of the highest term.
            payload = None
        if payload is None:
            payload = cluster.propose()
            proposer = (leader.id, leader.term)
            _flush(cluster)
            continue
        if _applied_by_all_voters(cluster, payload):
            cluster.full_check()
            return
    leader = cluster.leader()
    raise LivenessFailure(
        f"no leader committed a fresh proposal within {tick_bound} ticks after healing "
        f"(leader: {leader.id if leader else None}, proposal: {payload!r})"
    )


def _flush(cluster: SimCluster) -> None:
    """Deliver everything in flight, in order, until the cluster is quiet (bounded)."""
    try:
        cluster.flush()
    except RuntimeError as stuck:
        raise LivenessFailure(str(stuck)) from None


def _leader_committed_in_term(leader: RawNode) -> bool:
    return leader.log.maybe_term(leader.log.committed) == leader.term


def _applied_by_all_voters(cluster: SimCluster, payload: bytes) -> bool:
    if payload not in cluster.committed_payloads:
        return False
    leader = cluster.leader()
    if leader is None:
        return False
    target = leader.log.committed
    for node in cluster.nodes.values():
        voter = node.raw is not None and node.node_id in leader.membership.voters
        if voter and node.state_machine.applied_index < target:
            return False
    return True


# ------------------------------------------------------------------ generating schedules


@attrs.frozen
class SwarmProfile:
    """Per-seed action weights (swarm testing): each seed stresses a different mix, so that
    rare interleavings (many elections, long delays, crash storms) show up somewhere."""

    tick: float
    tick_node: float
    """A single node's clock running ahead: the main source of competing elections."""
    deliver: float
    deliver_in_order: float
    ready: float
    propose: float
    read: float
    drop: float
    duplicate: float
    crash: float
    restart: float
    partition: float
    heal: float
    transfer: float
    config: float
    compact: float

    @classmethod
    def draw(cls, rng: random.Random) -> SwarmProfile:
        return cls(
            tick=rng.uniform(3, 30),
            tick_node=rng.uniform(0, 20),
            deliver=rng.uniform(15, 60),
            deliver_in_order=rng.uniform(0, 1),
            ready=rng.uniform(10, 40),
            propose=rng.uniform(2, 15),
            read=rng.uniform(0, 3),
            drop=rng.uniform(0, 8),
            duplicate=rng.uniform(0, 4),
            crash=rng.uniform(0, 2),
            restart=rng.uniform(0.5, 4),
            partition=rng.uniform(0, 1.5),
            heal=rng.uniform(0.3, 2),
            transfer=rng.uniform(0, 1),
            config=rng.uniform(0, 1.5),
            compact=rng.uniform(0, 2),
        )


@attrs.define(eq=False)
class ScheduleGenerator:
    """Draws the next action from the seed's generator and the cluster's state."""

    rng: random.Random
    options: RunOptions
    profile: SwarmProfile

    @classmethod
    def for_seed(cls, seed: int, options: RunOptions) -> ScheduleGenerator:
        rng = random.Random(seed)
        return cls(rng, options, SwarmProfile.draw(rng))

    def next_action(self, cluster: SimCluster) -> Action:
        rng = self.rng
        options = self.options
        weights = self.profile
        node_ids = sorted(cluster.nodes)
        in_flight = len(cluster.network.in_flight)
        with_ready = [
            node.node_id
            for node in cluster.nodes.values()
            if node.raw is not None and node.raw.has_ready()
        ]
        crashed = [node.node_id for node in cluster.nodes.values() if node.raw is None]

        def deliver() -> Action:
            if rng.random() < weights.deliver_in_order:
                return ("deliver", 0)
            return ("deliver", rng.randrange(in_flight))

        choices: list[tuple[float, Callable[[], Action]]] = [
            (weights.tick, lambda: ("tick",)),
            (weights.tick_node, lambda: ("tick_node", rng.choice(node_ids))),
            (weights.propose, lambda: ("propose",)),
            (weights.read, lambda: ("read", rng.choice(node_ids))),
        ]
        if in_flight:
            choices += [
                (weights.deliver, deliver),
                (weights.drop, lambda: ("drop", rng.randrange(in_flight))),
                (weights.duplicate, lambda: ("duplicate", rng.randrange(in_flight))),
            ]
        if with_ready:
            choices.append((weights.ready, lambda: ("ready", rng.choice(with_ready))))
        if options.crashes:
            choices.append((weights.crash, lambda: ("crash", rng.choice(node_ids))))
            if crashed:
                choices.append((weights.restart, lambda: ("restart", rng.choice(crashed))))
        if options.partitions:
            mask_limit = 1 << (max(node_ids) + 1)
            choices.append((weights.partition, lambda: ("partition", rng.randrange(mask_limit))))
            if cluster.network.side_of:
                choices.append((weights.heal, lambda: ("heal",)))
        if options.transfers:
            choices.append((weights.transfer, lambda: ("transfer", rng.choice(node_ids))))
        if options.membership_changes:
            kinds = list(ConfigChangeKind)
            choices.append(
                (weights.config, lambda: ("config", int(rng.choice(kinds)), rng.choice(node_ids)))
            )
        if options.compaction:
            choices.append((weights.compact, lambda: ("compact", rng.choice(node_ids))))
        total = sum(weight for weight, _ in choices)
        roll = rng.random() * total
        for weight, make in choices:
            roll -= weight
            if roll < 0:
                return make()
        return choices[-1][1]()


def cluster_options_for_seed(seed: int) -> ClusterOptions:
    """Swarm over configurations too: group size, and pre-vote / check-quorum on or off
    (the base algorithm must be safe without them; they only add liveness)."""
    rng = random.Random(seed * 7 + 3)
    features = rng.random()
    return ClusterOptions(
        voter_count=rng.choice((1, 3, 3, 3, 5, 5)),
        pre_vote=features < 0.5 or features > 0.75,
        check_quorum=features < 0.75,
        max_inflight_messages=rng.choice((1, 2, 4, 16)),
        max_size_per_message_bytes=rng.choice((8, 64, 256, 4096)),
        wire_codec=rng.random() < 0.25,
        # Drawn apart so that the fields above stay what they were for every seed.
        fresh_bootstrap=random.Random(seed * 13 + 5).random() < 0.4,
        broadcast_commit=random.Random(seed * 17 + 11).random() < 0.5,
    )


def run_seed(
    seed: int,
    run_options: RunOptions | None = None,
    cluster_options: ClusterOptions | None = None,
    on_progress: Callable[[SimCluster], None] | None = None,
) -> RunResult:
    """Run one seed for ``run_options.steps`` checked steps; a failure is reported in the
    result (with the schedule that reproduces it), never raised."""
    run_options = run_options or RunOptions()
    cluster_options = cluster_options or cluster_options_for_seed(seed)
    cluster = SimCluster.create(seed, cluster_options)
    generator = ScheduleGenerator.for_seed(seed, run_options)
    schedule: list[Action] = []
    liveness_checks = 0
    next_liveness = run_options.liveness_every_steps or None
    try:
        while cluster.steps < run_options.steps:
            if next_liveness is not None and cluster.steps >= next_liveness:
                action: Action = ("stabilize", run_options.liveness_tick_bound)
                next_liveness += run_options.liveness_every_steps
                liveness_checks += 1
            else:
                action = generator.next_action(cluster)
            schedule.append(action)
            apply_action(cluster, action)
            if on_progress is not None:
                on_progress(cluster)
        action = ("stabilize", run_options.liveness_tick_bound)
        schedule.append(action)
        apply_action(cluster, action)
        liveness_checks += 1
        cluster.full_check()
    except (InvariantViolation, LivenessFailure) as failure:
        return _result(cluster, seed, len(schedule), liveness_checks, failure, schedule)
    return _result(cluster, seed, len(schedule), liveness_checks, None, [])


def _result(
    cluster: SimCluster,
    seed: int,
    actions: int,
    liveness_checks: int,
    failure: BaseException | None,
    schedule: list[Action],
) -> RunResult:
    return RunResult(
        seed=seed,
        steps=cluster.steps,
        actions=actions,
        committed_payloads=len(cluster.committed_payloads),
        max_commit_index=cluster.checker.max_committed_index,
        elections=len(cluster.checker.leader_by_term),
        liveness_checks=liveness_checks,
        failure=None if failure is None else f"{type(failure).__name__}: {failure}",
        schedule=tuple(schedule),
    )


# ------------------------------------------------------------------ replay and shrinking


def replay(
    seed: int,
    schedule: list[Action] | tuple[Action, ...],
    cluster_options: ClusterOptions | None = None,
) -> str | None:
    """Run ``schedule`` from scratch; the failure message, or None if every check held."""
    cluster = SimCluster.create(seed, cluster_options or cluster_options_for_seed(seed))
    try:
        for action in schedule:
            apply_action(cluster, action)
        cluster.full_check()
    except (InvariantViolation, LivenessFailure) as failure:
        return f"{type(failure).__name__}: {failure}"
    return None


def shrink(
    seed: int,
    schedule: tuple[Action, ...],
    cluster_options: ClusterOptions | None = None,
    max_replays: int = 300,
) -> tuple[Action, ...]:
    """A shorter schedule that still fails (delta debugging by chunk removal, bounded)."""
    current = list(schedule)
    replays = 0
    chunk = max(1, len(current) // 2)
    while chunk >= 1 and replays < max_replays:
        start = 0
        removed_any = False
        while start < len(current) and replays < max_replays:
            candidate = current[:start] + current[start + chunk :]
            replays += 1
            if candidate and replay(seed, candidate, cluster_options) is not None:
                current = candidate
                removed_any = True
            else:
                start += chunk
        if not removed_any:
            chunk //= 2
    return tuple(current)


def format_schedule(schedule: tuple[Action, ...] | list[Action]) -> str:
    return "\n".join(" ".join(str(part) for part in action) for action in schedule)


def parse_schedule(text: str) -> list[Action]:
    actions: list[Action] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, *arguments = line.split()
        actions.append((name, *(int(argument) for argument in arguments)))
    return actions
