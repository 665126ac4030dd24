"""Transcripts: a scripted exchange with a simulated cluster, and its printed outcome.

A transcript file is a sequence of blocks::

    command arguments...
    ----
    expected output lines
    (one blank line ends the block)

``run_transcript`` replays the commands and returns the file with the actual outputs, so a
test compares it with the file and a rewrite flag stores it (like etcd's datadriven tests).
Lines starting with ``#`` outside blocks are comments and are kept.

Commands: ``cluster voters=N [spares=N] [pre_vote=0] [check_quorum=0] [seed=N]``,
``campaign N``, ``tick N [count]``, ``tick-all [count]``, ``propose N payload``,
``seal N payload``, ``read-index N context``, ``transfer N target``, ``add-learner N``,
``promote N``, ``remove N``, ``process-ready [N...]``, ``deliver [count]``, ``drop [count]``,
``stabilize``, ``isolate N...``, ``heal``, ``crash N``, ``restart N``, ``compact N``,
``status [N...]``, ``log [N...]``.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from raftlog.raft.entry import Entry, EntryKind
from raftlog.raft.errors import RaftError
from raftlog.raft.membership import ConfigChange, ConfigChangeKind, InvalidConfigChange
from raftlog.raft.messages import Message
from raftlog.raft.ready import Ready
from raftlog.sim.cluster import ClusterOptions, SimCluster

SEPARATOR = "----"
MAX_STABILIZE_ROUNDS = 1000


def describe_entry(entry: Entry) -> str:
    payload = "" if entry.kind in (EntryKind.NOOP,) else f" {entry.payload!r}"
    if entry.kind == EntryKind.CONFIG_CHANGE:
        payload = " <config>"
    return f"{entry.term}/{entry.index} {entry.kind.name}{payload}"


def describe_message(message: Message) -> str:
    parts = [f"{message.from_id}->{message.to_id} {type(message).__name__} term={message.term}"]
    for field in attrs.fields(type(message))[3:]:
        value = getattr(message, field.name)
        if field.name == "entries":
            value = "[" + ", ".join(describe_entry(entry) for entry in value) + "]"
        elif isinstance(value, bytes):
            value = repr(value)
        parts.append(f"{field.name}={value}")
    return " ".join(parts)


def describe_ready(node_id: int, ready: Ready) -> list[str]:
    lines = [f"node {node_id} ready:"]
    if ready.soft_state is not None:
        lines.append(f"  role={ready.soft_state.role.value} leader={ready.soft_state.leader_id}")
    if ready.hard_state is not None:
        state = ready.hard_state
        lines.append(f"  hard state term={state.term} vote={state.vote} commit={state.commit}")
    if ready.snapshot is not None:
        metadata = ready.snapshot.metadata
        lines.append(f"  snapshot index={metadata.index} term={metadata.term}")
    for entry in ready.entries:
        lines.append(f"  persist {describe_entry(entry)}")
    for message in ready.messages:
        lines.append(f"  send {describe_message(message)}")
    for entry in ready.committed_entries:
        lines.append(f"  apply {describe_entry(entry)}")
    for state in ready.read_states:
        lines.append(f"  read state index={state.index} context={state.context!r}")
    return lines


@attrs.define(eq=False)
class TranscriptSession:
    cluster: SimCluster | None = None

    def _cluster(self) -> SimCluster:
        if self.cluster is None:
            raise ValueError("start with: cluster voters=N")
        return self.cluster

    def run(self, command: str) -> list[str]:
        name, *arguments = command.split()
        handler: Callable[[list[str]], list[str]] | None = getattr(
            self, "_do_" + name.replace("-", "_"), None
        )
        if handler is None:
            raise ValueError(f"unknown transcript command {name!r}")
        try:
            return handler(arguments)
        except (RaftError, InvalidConfigChange) as refused:
            return [f"refused: {type(refused).__name__}: {refused}"]

    def _process(self, node_ids: list[int]) -> list[str]:
        cluster = self._cluster()
        lines: list[str] = []
        for node_id in node_ids:
            raw = cluster.nodes[node_id].raw
            if raw is None or not raw.has_ready():
                continue
            ready = raw.ready()
            lines += describe_ready(node_id, ready)
            cluster._persist(cluster.nodes[node_id], ready)
            cluster.network.send(ready.messages)
            cluster._apply(cluster.nodes[node_id], ready)
            raw.advance(ready)
            cluster.check()
        return lines

    def _deliver(self, count: int | None) -> list[str]:
        cluster = self._cluster()
        lines: list[str] = []
        delivered = 0
        while cluster.network.in_flight and (count is None or delivered < count):
            message = cluster.network.in_flight[0]
            if cluster.network.connected(message.from_id, message.to_id):
                lines.append(f"deliver {describe_message(message)}")
            else:
                lines.append(f"lost {describe_message(message)}")
            cluster.deliver(0)
            cluster.check()
            delivered += 1
        return lines

    # Commands -----------------------------------------------------------------

    def _do_cluster(self, arguments: list[str]) -> list[str]:
        settings = dict(argument.split("=", 1) for argument in arguments)
        options = ClusterOptions(
            voter_count=int(settings.get("voters", "3")),
            spare_count=int(settings.get("spares", "0")),
            pre_vote=settings.get("pre_vote", "1") == "1",
            check_quorum=settings.get("check_quorum", "1") == "1",
            max_size_per_message_bytes=int(settings.get("max_message_bytes", "256")),
        )
        self.cluster = SimCluster.create(int(settings.get("seed", "1")), options)
        return ["ok"]

    def _do_campaign(self, arguments: list[str]) -> list[str]:
        self._cluster().campaign(int(arguments[0]))
        return self._process([int(arguments[0])])

    def _do_tick(self, arguments: list[str]) -> list[str]:
        count = int(arguments[1]) if len(arguments) > 1 else 1
        for _ in range(count):
            self._cluster().tick(int(arguments[0]))
        return self._process([int(arguments[0])])

    def _do_tick_all(self, arguments: list[str]) -> list[str]:
        count = int(arguments[0]) if arguments else 1
        for _ in range(count):
            self._cluster().tick_all()
        return self._process(sorted(self._cluster().nodes))

    def _do_propose(self, arguments: list[str]) -> list[str]:
        index = self._cluster().raw(int(arguments[0])).propose(arguments[1].encode())
        return [f"index {index}"]

    def _do_seal(self, arguments: list[str]) -> list[str]:
        raw = self._cluster().raw(int(arguments[0]))
        return [f"index {raw.propose(arguments[1].encode(), kind=EntryKind.SEAL)}"]

    def _do_read_index(self, arguments: list[str]) -> list[str]:
        cluster = self._cluster()
        cluster.checker.on_read_requested(arguments[1].encode())
        cluster.raw(int(arguments[0])).read_index(arguments[1].encode())
        return ["ok"]

    def _do_transfer(self, arguments: list[str]) -> list[str]:
        self._cluster().raw(int(arguments[0])).transfer_leadership(int(arguments[1]))
        return ["ok"]

    def _config(self, kind: ConfigChangeKind, arguments: list[str]) -> list[str]:
        raw = self._cluster().raw(int(arguments[0]))
        return [f"index {raw.propose_config_change(ConfigChange(kind, int(arguments[1])))}"]

    def _do_add_learner(self, arguments: list[str]) -> list[str]:
        return self._config(ConfigChangeKind.ADD_LEARNER, arguments)

    def _do_promote(self, arguments: list[str]) -> list[str]:
        return self._config(ConfigChangeKind.PROMOTE_LEARNER, arguments)

    def _do_remove(self, arguments: list[str]) -> list[str]:
        return self._config(ConfigChangeKind.REMOVE_NODE, arguments)

    def _do_process_ready(self, arguments: list[str]) -> list[str]:
        node_ids = [int(argument) for argument in arguments] or sorted(self._cluster().nodes)
        return self._process(node_ids)

    def _do_deliver(self, arguments: list[str]) -> list[str]:
        return self._deliver(int(arguments[0]) if arguments else None)

    def _do_drop(self, arguments: list[str]) -> list[str]:
        cluster = self._cluster()
        count = int(arguments[0]) if arguments else len(cluster.network.in_flight)
        lines = []
        for _ in range(min(count, len(cluster.network.in_flight))):
            lines.append(f"drop {describe_message(cluster.network.in_flight[0])}")
            cluster.network.drop(0)
        return lines

    def _do_stabilize(self, arguments: list[str]) -> list[str]:
        cluster = self._cluster()
        lines: list[str] = []
        for _ in range(MAX_STABILIZE_ROUNDS):
            processed = self._process(sorted(cluster.nodes))
            delivered = self._deliver(None)
            lines += processed + delivered
            if not processed and not delivered:
                return lines
        raise ValueError("stabilize did not converge")

    def _do_isolate(self, arguments: list[str]) -> list[str]:
        self._cluster().network.partition({int(argument): 1 for argument in arguments})
        return ["ok"]

    def _do_heal(self, arguments: list[str]) -> list[str]:
        self._cluster().network.heal()
        return ["ok"]

    def _do_crash(self, arguments: list[str]) -> list[str]:
        self._cluster().crash(int(arguments[0]))
        return ["ok"]

    def _do_restart(self, arguments: list[str]) -> list[str]:
        self._cluster().restart(int(arguments[0]))
        return ["ok"]

    def _do_compact(self, arguments: list[str]) -> list[str]:
        cluster = self._cluster()
        done = cluster.compact(int(arguments[0]))
        return [
            f"first index {cluster.nodes[int(arguments[0])].storage.first_index()}"
            if done
            else "nothing to compact"
        ]

    def _do_status(self, arguments: list[str]) -> list[str]:
        cluster = self._cluster()
        lines = []
        for node_id in [int(argument) for argument in arguments] or sorted(cluster.nodes):
            raw = cluster.nodes[node_id].raw
            if raw is None:
                lines.append(f"node {node_id}: crashed")
                continue
            stats = raw.statistics()
            lines.append(
                f"node {node_id}: {stats.role.value} term={stats.term} leader={stats.leader_id} "
                f"commit={stats.commit_index} applied={stats.applied_index} "
                f"last={stats.last_index} voters={sorted(stats.membership.voters)} "
                f"learners={sorted(stats.membership.learners)}"
                + (" sealed" if stats.sealed else "")
                + (" quiescent" if stats.quiescent else "")
            )
            for peer in stats.progress:
                lines.append(
                    f"  peer {peer.node_id}: match={peer.match_index} next={peer.next_index} "
                    f"{peer.state.value} inflight={peer.inflight_messages}"
                )
        return lines

    def _do_log(self, arguments: list[str]) -> list[str]:
        cluster = self._cluster()
        lines = []
        for node_id in [int(argument) for argument in arguments] or sorted(cluster.nodes):
            raw = cluster.nodes[node_id].raw
            if raw is None:
                lines.append(f"node {node_id}: crashed")
                continue
            log = raw.log
            entries = log.slice(log.first_index(), log.last_index() + 1, 1 << 40)
            described = ", ".join(describe_entry(entry) for entry in entries)
            lines.append(f"node {node_id}: first={log.first_index()} [{described}]")
        return lines


def run_transcript(text: str) -> str:
    """Replay a transcript and return it with the actual outputs in place."""
    session = TranscriptSession()
    lines = text.splitlines()
    out: list[str] = []
    position = 0
    while position < len(lines):
        line = lines[position]
        if not line.strip() or line.startswith("#"):
            out.append(line)
            position += 1
            continue
        commands = []
        while position < len(lines) and lines[position] != SEPARATOR:
            commands.append(lines[position])
            position += 1
        position += 1  # the separator
        while position < len(lines) and lines[position].strip():
            position += 1  # the old expected output
        out += commands
        out.append(SEPARATOR)
        for command in commands:
            out += session.run(command)
        out.append("")
        position += 1  # the blank line closing the block
    while out and not out[-1].strip():
        out.pop()
    return "\n".join(out) + "\n"
