"""The faults a run injects, on a schedule drawn from the run's seed.

A schedule is a list of *rounds*: at ``start_s`` one or two faults of different kinds
begin together, and ``duration_s`` later all of them heal together. Kinds and their
variants:

* ``kill``: SIGKILL, restart on the same data at the heal. Targets: one random node,
  the leader of a random partition, a minority... or ``all`` (every node at once:
  what exposes acknowledgements that were never durable).
* ``pause``: SIGSTOP, SIGCONT at the heal (a process that stops answering but keeps
  its sockets: a GC pause, a stuck disk). Targets: one node or a partition's leader.
* ``partition``: ``leader`` isolates a partition's leader from the other nodes;
  ``halves`` splits the nodes into a random majority and minority; ``bridge`` (5
  nodes) leaves one node connected to both halves.
* ``delay`` / ``loss``: every packet a node sends to the other nodes is delayed (tc
  netem) or dropped at random (iptables); one node or all.
* ``transfer``: leadership transfers through a node's admin API (``POST
  .../transfer-leader``, sent to a random live node, which forwards it to the leader):
  ``one`` moves one partition's leadership to another live replica, ``all`` every
  partition's at once (concurrent requests), ``controller`` the controller group's. Each
  target records ``p0:n1->n3`` (or ``controller:...``) and the outcome when refused.
  Nothing to heal: the elections they cause are the fault.
* ``member``: ``replace`` kills one node and keeps it down past the nodes' dead timeout
  (the runner sets ``--node-dead-timeout-ms`` to ``MEMBER_DEAD_TIMEOUT_MS``), so the
  controller moves its replicas to the other nodes (learner, catch up, promote, remove
  the dead one), as an operator replacing a machine would; at the heal the node comes
  back on its old data and must find it no longer holds those replicas. Needs 5 nodes:
  with 3, every node already holds every replica and there is nowhere to move them.
* ``corrupt``: disk corruption on one node (a minority), random or a partition's leader:
  SIGKILL it, flip a bit in the middle of one of its segment files and truncate another
  (``jepsen_like.disk_damage``), restart it at once. Kill first: a running node holds
  the files open and writes them, so damage under it would race its own writes and sit
  behind its page cache, and it reads its files back only when it opens them. Restart
  at once rather than at the heal: the fault under test is the repair (CRC detection,
  the cut, catching up without voting) while the workload and other faults go on. What
  was damaged, exactly, is in the start event's ``details``.

The seed fixes the kinds, variants, timing and every random pick; which node *is* a
partition's leader at that moment comes from the cluster, so a replay with the same
seed injects the same faults against whoever leads then. Every start and stop is
appended to ``nemesis.jsonl`` as it happens.
"""

from __future__ import annotations

import concurrent.futures
import json
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from jepsen_like.cluster import ChaosCluster
from jepsen_like.disk_damage import damage_node
from jepsen_like.history import write_jsonl
from jepsen_like.nemesis import Edge, NemesisEvent
from jepsen_like.network import Network

KINDS: tuple[str, ...] = (
    "kill", "pause", "partition", "delay", "loss", "mute", "transfer", "member", "corrupt"
)
VARIANTS: dict[str, tuple[str, ...]] = {
    "kill": ("one", "leader", "leader", "all"),
    "pause": ("one", "leader"),
    "partition": ("leader", "leader", "halves", "bridge"),
    "delay": ("one", "all", "slow"),
    "loss": ("one", "all"),
    "mute": ("leader", "leader", "one"),
    "transfer": ("one", "one", "all", "controller"),
    "member": ("replace",),
    "corrupt": ("one", "leader"),
}
TRANSFER_TIMEOUT_MS = 5000
TRANSFERS_AT_ONCE_MAX = 16
REFUSAL_CHARS_MAX = 160
WARMUP_S = 3.0
GAP_S = (2.0, 5.0)
DURATION_S = (4.0, 10.0)
COMBINE_PROBABILITY = 0.3
MEMBER_DEAD_TIMEOUT_MS = 3000
MEMBER_DURATION_S = 14.0
"""A ``member`` round lasts this long at least: past the dead timeout, then time for the
learner to catch up and the promotion and removal to commit."""
MEMBER_NODES_MIN = 4
MUTE_DURATION_S = 7.0
"""A ``mute`` round lasts this long at least: past the workers' request timeout (5 s), so
the producers give up on the muted requests and resend them once the node answers again,
and the node must recognise every resent batch it already appended."""
DELAY_MS = (50, 20)
SLOW_DELAY_MS = (900, 300)
"""``delay:slow`` (every node): messages take about the election timeout to arrive, so
vote answers come back after their candidacy ended and elections split."""
LOSS_PROBABILITY = 0.2


class NemesisError(ValueError):
    """A nemesis name or target is not known."""


def parse_kinds(text: str) -> tuple[str, ...]:
    """``kill,partition`` -> kinds; ``kill:all`` forces a variant (tests use it)."""
    kinds = tuple(part.strip() for part in text.split(",") if part.strip())
    for kind in kinds:
        name, _, variant = kind.partition(":")
        if name not in KINDS:
            raise NemesisError(f"unknown nemesis {name!r}; known: {', '.join(KINDS)}")
        if variant and variant not in VARIANTS[name]:
            raise NemesisError(f"unknown {name} variant {variant!r}: {sorted(set(VARIANTS[name]))}")
    return kinds


@attrs.frozen
class Fault:
    kind: str
    variant: str
    pick_seed: int
    """Seeds every random choice of targets for this fault."""


@attrs.frozen
class Round:
    start_s: float
    duration_s: float
    faults: tuple[Fault, ...]


def schedule(seed: int, kinds: Sequence[str], time_s: float) -> list[Round]:
    """Rounds filling ``time_s`` after a warm-up; the same seed gives the same rounds."""
    rng = random.Random(seed)
    rounds: list[Round] = []
    if not kinds:
        return rounds
    clock = WARMUP_S
    while True:
        duration = rng.uniform(*DURATION_S)
        if clock + duration > time_s:
            return rounds
        names = {kind.partition(":")[0]: kind for kind in kinds}
        count = 2 if len(names) > 1 and rng.random() < COMBINE_PROBABILITY else 1
        chosen = rng.sample(sorted(names), count)
        faults = []
        for name in chosen:
            _, _, forced = names[name].partition(":")
            variant = forced or rng.choice(VARIANTS[name])
            faults.append(Fault(name, variant, rng.randrange(1 << 32)))
        if "member" in chosen:
            duration = max(duration, MEMBER_DURATION_S)
        if "mute" in chosen:
            duration = max(duration, MUTE_DURATION_S)
        if clock + duration > time_s:
            return rounds
        rounds.append(Round(clock, duration, tuple(faults)))
        clock += duration + rng.uniform(*GAP_S)


LeaderOf = Callable[[int], int | None]
"""The current leader of a partition (None: unknown)."""


@attrs.define(eq=False)
class Nemesis:
    cluster: ChaosCluster
    network: Network
    leader_of: LeaderOf
    partitions: int
    timeline_path: Path
    topic: str
    events: list[NemesisEvent] = attrs.field(factory=list)
    _next_id: int = 1
    _killed: set[int] = attrs.field(factory=set)
    _paused: set[int] = attrs.field(factory=set)
    _open: list[tuple[int, str, tuple[str, ...]]] = attrs.field(factory=list)
    restart_failures: list[str] = attrs.field(factory=list)

    def _record(
        self,
        edge: Edge,
        kind: str,
        targets: tuple[str, ...],
        fault_id: int,
        details: tuple[str, ...] = (),
    ) -> None:
        event = NemesisEvent(time.monotonic_ns(), edge, kind, targets, fault_id, details)
        self.events.append(event)
        write_jsonl(self.timeline_path, (e.to_json() for e in self.events))

    def _nodes(self) -> list[int]:
        return sorted(self.cluster.nodes)

    def _leader(self, rng: random.Random) -> int:
        leader = self.leader_of(rng.randrange(self.partitions))
        live = [n for n in self._nodes() if n not in self._killed]
        if leader is None or leader not in live:
            return rng.choice(live or self._nodes())
        return leader

    def _pick_one(self, fault: Fault, rng: random.Random) -> list[int]:
        if fault.variant == "leader":
            return [self._leader(rng)]
        if fault.variant == "all":
            return self._nodes()
        return [rng.choice(self._nodes())]

    def start(self, fault: Fault) -> None:
        rng = random.Random(fault.pick_seed)
        fault_id = self._next_id
        self._next_id += 1
        targets: tuple[str, ...]
        details: tuple[str, ...] = ()
        if fault.kind == "member":
            # One node, never the last live one of a majority: a replacement needs the
            # others to agree on the moves.
            live = [n for n in self._nodes() if n not in self._killed]
            victims = [rng.choice(live)] if len(live) > len(self._nodes()) // 2 + 1 else []
            for node_id in victims:
                self.cluster.nodes[node_id].kill()
            self._killed.update(victims)
            targets = tuple(f"n{n}" for n in victims)
        elif fault.kind == "transfer":
            targets = self._transfers(fault.variant, rng)
        elif fault.kind == "kill":
            victims = self._pick_one(fault, rng)
            for node_id in victims:
                self.cluster.nodes[node_id].kill()
            self._killed.update(victims)
            targets = tuple(f"n{n}" for n in victims)
        elif fault.kind == "pause":
            victims = self._pick_one(fault, rng)
            for node_id in victims:
                self.cluster.nodes[node_id].pause()
            self._paused.update(victims)
            targets = tuple(f"n{n}" for n in victims)
        elif fault.kind == "partition":
            if fault.variant == "bridge" and len(self._nodes()) < 5:
                fault = attrs.evolve(fault, variant="halves")  # no bridge in 3 nodes
            links = self._partition_links(fault, rng)
            self.network.cut(links)
            targets = tuple(f"n{a}-n{b}" for a, b in links)
        elif fault.kind == "delay":
            slow = fault.variant == "slow"
            victims = self._nodes() if slow else self._pick_one(fault, rng)
            self.network.delay(victims, *(SLOW_DELAY_MS if slow else DELAY_MS))
            targets = tuple(f"n{n}" for n in victims)
        elif fault.kind == "loss":
            victims = self._pick_one(fault, rng)
            self.network.lose(victims, LOSS_PROBABILITY)
            targets = tuple(f"n{n}" for n in victims)
        elif fault.kind == "mute":
            victims = self._pick_one(fault, rng)
            self.network.mute(victims)
            targets = tuple(f"n{n}" for n in victims)
        elif fault.kind == "corrupt":
            victims = self._pick_one(fault, rng)
            details = tuple(self._corrupt(node_id, rng) for node_id in victims)
            targets = tuple(f"n{n}" for n in victims)
        else:
            raise NemesisError(f"unknown nemesis {fault.kind!r}")
        kind = f"{fault.kind}:{fault.variant}"
        self._record(Edge.START, kind, targets, fault_id, details)
        self._open.append((fault_id, kind, targets))

    def _transfers(self, variant: str, rng: random.Random) -> tuple[str, ...]:
        """Plan the transfers (every random pick, in order, from the fault's seed), then
        send them all at once, each to a random live node; returns what happened, for the
        timeline (a refusal is an outcome, not an error: the group may be mid-election)."""
        live = [n for n in self._nodes() if n not in self._killed and n not in self._paused]
        if not live:
            return ("no live node to ask",)
        if variant == "controller":
            plans = [self._plan_controller(live, rng)]
        else:
            chosen = (
                range(self.partitions) if variant == "all" else [rng.randrange(self.partitions)]
            )
            plans = [self._plan_partition(partition, live, rng) for partition in chosen]
        posts = [plan for plan in plans if isinstance(plan, tuple)]
        outcomes: dict[str, str] = {}
        if posts:
            workers = min(len(posts), TRANSFERS_AT_ONCE_MAX)
            with concurrent.futures.ThreadPoolExecutor(workers) as pool:
                for label, outcome in zip(
                    [label for label, _, _ in posts],
                    pool.map(lambda plan: _post(plan[1], plan[2]), posts),
                    strict=True,
                ):
                    outcomes[label] = outcome
        return tuple(
            plan if isinstance(plan, str) else f"{plan[0]}{outcomes[plan[0]]}" for plan in plans
        )

    def _plan_partition(
        self, partition: int, live: list[int], rng: random.Random
    ) -> str | tuple[str, str, str]:
        """(label, admin address, path) of one partition's transfer, or why there is none."""
        via = self.cluster.nodes[rng.choice(live)]
        try:
            document = _admin_json(via.admin_addr, f"/v1/topics/{self.topic}/partitions", "GET")
            replicas = document["partitions"][partition]["segments"][-1]["replicas"]
        except (OSError, ValueError, KeyError, IndexError) as error:
            return f"p{partition}: no replica list ({_short(error)})"
        leader = self.leader_of(partition)
        others = [n for n in replicas if n != leader and n in live]
        if not others:
            return f"p{partition}: no other live replica"
        target = rng.choice(sorted(others))
        path = (
            f"/v1/partitions/{self.topic}/{partition}/transfer-leader"
            f"?target={target}&timeout_ms={TRANSFER_TIMEOUT_MS}"
        )
        return f"p{partition}:n{leader}->n{target}", via.admin_addr, path

    def _plan_controller(self, live: list[int], rng: random.Random) -> str | tuple[str, str, str]:
        via = self.cluster.nodes[rng.choice(live)]
        try:
            cluster = _admin_json(via.admin_addr, "/v1/cluster", "GET")
            leader, voters = cluster["controller_leader"], cluster["controller_voters"]
        except (OSError, ValueError, KeyError) as error:
            return f"controller: no cluster view ({_short(error)})"
        others = [n for n in live if n != leader and n in voters]
        if not others:
            return "controller: no other live voter"
        target = rng.choice(others)
        path = f"/v1/controller/transfer-leader?target={target}&timeout_ms={TRANSFER_TIMEOUT_MS}"
        return f"controller:n{leader}->n{target}", via.admin_addr, path

    def _corrupt(self, node_id: int, rng: random.Random) -> str:
        """Kill, damage the files, restart (unless another fault keeps it down until the
        heal). Returns what was damaged; a restart that fails is a finding, recorded."""
        node = self.cluster.nodes[node_id]
        node.kill()
        self._paused.discard(node_id)
        damage = damage_node(self.cluster.data_dir(node_id), node_id, rng)
        if node_id not in self._killed:
            try:
                self.cluster.restart((node_id,))
            except Exception as error:
                self.restart_failures.append(str(error))
        described = "; ".join(item.describe() for item in damage)
        return described or f"node={node_id} no segment file to damage"

    def _partition_links(self, fault: Fault, rng: random.Random) -> list[tuple[int, int]]:
        nodes = self._nodes()
        if fault.variant == "leader":
            alone = self._leader(rng)
            return [(alone, other) for other in nodes if other != alone]
        shuffled = nodes[:]
        rng.shuffle(shuffled)
        if fault.variant == "bridge" and len(nodes) >= 5:
            rest = shuffled[1:]  # shuffled[0] is the bridge: it keeps both sides
            left, right = rest[: len(rest) // 2], rest[len(rest) // 2 :]
            return [(a, b) for a in left for b in right]
        minority = shuffled[: (len(nodes) - 1) // 2]
        majority = shuffled[len(minority) :]
        return [(a, b) for a in minority for b in majority]

    def heal(self) -> None:
        """Stop every open fault: the network first, then resume, then restart."""
        self.network.heal()
        for node_id in sorted(self._paused):
            self.cluster.nodes[node_id].resume()
        self._paused.clear()
        if self._killed:
            try:
                self.cluster.restart(tuple(sorted(self._killed)))
            except Exception as error:
                self.restart_failures.append(str(error))
        self._killed.clear()
        for fault_id, kind, targets in self._open:
            self._record(Edge.STOP, kind, targets, fault_id)
        self._open.clear()

    def run(self, rounds: Sequence[Round], started: float, keep_going: Callable[[], bool]) -> None:
        """Apply the schedule in real time (``started`` is the workload's monotonic start)."""
        for round_ in rounds:
            if not _sleep_until(started + round_.start_s, keep_going):
                return
            for fault in round_.faults:
                self.start(fault)
            ends = started + round_.start_s + round_.duration_s
            if not _sleep_until(ends, keep_going):
                return
            self.heal()


def _admin_json(admin_addr: str, path: str, method: str) -> Any:
    """One admin API call; an HTTP error raises OSError with the node's own message."""
    request = urllib.request.Request(f"http://{admin_addr}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=TRANSFER_TIMEOUT_MS / 1000 + 10) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as error:
        try:
            message = json.loads(error.read()).get("error", "")
        except ValueError:
            message = ""
        raise OSError(f"HTTP {error.code}: {message}") from None


def _post(admin_addr: str, path: str) -> str:
    """One transfer: '' when done, else why not (the timeline's outcome)."""
    try:
        _admin_json(admin_addr, path, "POST")
    except (OSError, ValueError) as error:
        return f" refused ({_short(error)})"
    return ""


def _short(error: Exception) -> str:
    text = str(error)
    return text if len(text) <= REFUSAL_CHARS_MAX else text[: REFUSAL_CHARS_MAX - 3] + "..."


def _sleep_until(when: float, keep_going: Callable[[], bool]) -> bool:
    while time.monotonic() < when:
        if not keep_going():
            return False
        time.sleep(min(0.2, max(0.0, when - time.monotonic())))
    return keep_going()
