"""One chaos run, end to end: ``python -m jepsen_like run``.

1. Place the nodes on a breakable network (namespaces or the TCP proxy) and start them.
2. Create the topic (RF = every node up to 3, a few partitions) and wait for leaders.
3. Start the client workers (separate processes, one history file each) and, at the
   same time, the seeded nemesis schedule, for ``--time`` seconds.
4. Heal everything, stop the workers, wait until every partition has a leader again.
5. Run the final read-everything phase, merge the histories by monotonic time, run
   every checker and write the run directory (see ``report.py``).

Everything the run starts (nodes, workers, namespaces, bridge, proxy) is stopped in a
``finally`` and again from ``atexit``, so an exception or a SIGTERM leaves nothing behind.
Exit code: 0 valid, 1 anomalies (or a node crashed), 2 harness error or unknown.
"""

from __future__ import annotations

import atexit
import json
import os
import pathlib
import random
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import attrs

from jepsen_like.cluster import ChaosCluster
from jepsen_like.elections import read_node_logs
from jepsen_like.history import Entry, History, HistoryError
from jepsen_like.linearizability import Budget
from jepsen_like.nemeses import (
    MEMBER_DEAD_TIMEOUT_MS,
    MEMBER_NODES_MIN,
    Nemesis,
    parse_kinds,
    schedule,
)
from jepsen_like.network import Network, choose_network
from jepsen_like.report import SPARSE_OFFSETS_OPTION, Run, RunInfo, write_report
from jepsen_like.worker import WorkerSpec
from raftlog import bugs

REPOSITORY = pathlib.Path(__file__).resolve().parents[1]
TOPIC = "jepsen"
WORKER_STOP_S = 30.0
LEADER_WAIT_S = 60.0
SEGMENT_BYTES_DEFAULT = 64 << 10
"""About 20 s of the default workload per partition: a 150 s run seals several segments."""
SEGMENT_BYTES_MIN = 4 << 10
EXIT_VALID, EXIT_ANOMALIES, EXIT_ERROR = 0, 1, 2


class HarnessError(RuntimeError):
    """The harness itself failed (not the system under test)."""


@attrs.frozen
class RunOptions:
    seed: int
    out: pathlib.Path
    nodes: int = 3
    time_s: float = 60.0
    nemesis: tuple[str, ...] = ("kill", "partition")
    partitions: int = 3
    producers: int = 2
    assign_consumers: int = 1
    group_consumers: int = 2
    rate_per_s: float = 50.0
    """Per producer."""
    inflight: int = 4
    """Sends each producer keeps outstanding (pipelined, as real producers do)."""
    network: str = "auto"
    inject_bug: str | None = None
    """Sets ``RAFTLOG_INJECT_BUG`` on every node: proves the checkers can fail."""
    power_loss: bool = False
    """Nodes lose unfsynced segment data when killed, as in a power cut
    (``RAFTLOG_TEST_POWER_LOSS``): without it SIGKILL keeps the page cache."""
    segment_bytes: int = SEGMENT_BYTES_DEFAULT
    """Small, so every partition rolls, seals and links segments while the faults run."""
    recovery_timeout_s: float = 60.0
    final_timeout_s: float = 120.0
    check_time_budget_s: float = 60.0

    def __attrs_post_init__(self) -> None:
        if self.nodes not in (1, 3, 5):
            raise HarnessError(f"--nodes must be 1, 3 or 5, got {self.nodes}")
        if self.time_s <= 0 or self.partitions <= 0 or self.rate_per_s <= 0:
            raise HarnessError("--time, --partitions and --rate must be positive")
        if self.segment_bytes < SEGMENT_BYTES_MIN:
            raise HarnessError(f"--segment-bytes must be at least {SEGMENT_BYTES_MIN}")
        try:
            bugs.parse(self.inject_bug)
        except bugs.UnknownBug as error:
            raise HarnessError(str(error)) from None
        if not 1 <= self.inflight <= 16:
            raise HarnessError(f"--inflight must be 1-16, got {self.inflight}")

    def to_json(self) -> dict[str, Any]:
        raw = attrs.asdict(self)
        raw["out"] = str(self.out)
        raw["nemesis"] = ",".join(self.nemesis)
        return raw

    def replay_command(self) -> str:
        parts = [
            "python -m jepsen_like run",
            f"--nodes {self.nodes}",
            f"--time {self.time_s:g}",
            f"--nemesis {','.join(self.nemesis) or 'none'}",
            f"--seed {self.seed}",
            f"--rate {self.rate_per_s:g}",
            f"--inflight {self.inflight}",
            f"--network {self.network}",
            f"--out {shlex.quote(str(self.out))}-replay",
        ]
        if self.inject_bug:
            parts.append(f"--inject-bug {self.inject_bug}")
        if self.power_loss:
            parts.append("--power-loss")
        defaults = attrs.fields(RunOptions)
        if self.recovery_timeout_s != defaults.recovery_timeout_s.default:
            parts.append(f"--recovery-timeout {self.recovery_timeout_s:g}")
        if self.final_timeout_s != defaults.final_timeout_s.default:
            parts.append(f"--final-timeout {self.final_timeout_s:g}")
        return " ".join(parts)


@attrs.define(eq=False)
class _Resources:
    """What must be stopped whatever happens; ``release`` is idempotent."""

    network: Network | None = None
    cluster: ChaosCluster | None = None
    workers: list[subprocess.Popen[bytes]] = attrs.field(factory=list)
    released: bool = False

    def release(self) -> list[str]:
        if self.released:
            return []
        self.released = True
        for worker in self.workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        errors: list[str] = []
        if self.cluster is not None:
            self.cluster.stop()
        if self.network is not None:
            errors.extend(self.network.close())
        return errors


def _admin(bootstrap: str) -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 3000})


def _create_topic(bootstrap: str, options: RunOptions) -> None:
    from confluent_kafka.admin import NewTopic

    admin = _admin(bootstrap)
    topic = NewTopic(
        TOPIC, num_partitions=options.partitions, replication_factor=min(options.nodes, 3)
    )
    futures = admin.create_topics([topic], operation_timeout=20)
    futures[TOPIC].result(timeout=30)


def _leaders(bootstrap: str, partitions: int) -> dict[int, int]:
    """Leader of each partition as some node reports it (-1: none); {} when unreachable."""
    try:
        metadata = _admin(bootstrap).list_topics(TOPIC, timeout=3)
    except Exception:
        return {}
    topic = metadata.topics.get(TOPIC)
    if topic is None or topic.error is not None:
        return {}
    return {p: topic.partitions[p].leader for p in range(partitions) if p in topic.partitions}


def _wait_leaders(bootstrap: str, partitions: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        leaders = _leaders(bootstrap, partitions)
        if len(leaders) == partitions and all(leader > 0 for leader in leaders.values()):
            return True
        time.sleep(0.5)
    return False


def _leader_lookup(bootstrap: str, partitions: int) -> Callable[[int], int | None]:
    def leader_of(partition: int) -> int | None:
        leader = _leaders(bootstrap, partitions).get(partition, -1)
        return leader if leader > 0 else None

    return leader_of


def _spawn_worker(run_dir: pathlib.Path, spec: WorkerSpec) -> subprocess.Popen[bytes]:
    spec_path = pathlib.Path(spec.output).with_suffix(".spec.json")
    spec_path.write_text(json.dumps(spec.to_json(), indent=1))
    stderr = pathlib.Path(spec.output).with_suffix(".stderr").open("ab")
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    with stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "jepsen_like.worker", str(spec_path)],
            cwd=REPOSITORY,
            env=environment,
            stdout=stderr,
            stderr=stderr,
        )


def _worker_specs(
    options: RunOptions, bootstrap: str, run_dir: pathlib.Path, end_ns: int
) -> list[WorkerSpec]:
    rng = random.Random(options.seed)
    roles = (
        ["producer"] * options.producers
        + ["assign"] * options.assign_consumers
        + ["group"] * options.group_consumers
    )
    specs = []
    process = 0
    for role in roles:
        inflight = options.inflight if role == "producer" else 1
        specs.append(
            WorkerSpec(
                role=role,
                process=process,
                bootstrap=bootstrap,
                topic=TOPIC,
                partitions=options.partitions,
                seed=rng.randrange(1 << 32),
                output=str(run_dir / "workers" / f"p{process}-{role}.jsonl"),
                end_monotonic_ns=end_ns,
                rate_per_s=options.rate_per_s,
                inflight=inflight,
            )
        )
        process += inflight
    return specs


def _stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + WORKER_STOP_S
    for worker in workers:
        try:
            worker.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def _read_lines(path: pathlib.Path) -> list[dict[str, Any]]:
    """A worker killed mid-write may leave a last line without its newline: drop it."""
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    complete = lines[:-1]  # the part after the last newline is empty or torn
    records = []
    for number, line in enumerate(complete, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise HistoryError(f"{path}:{number}: {error}") from error
    return records


def merge_histories(paths: list[pathlib.Path]) -> History:
    """One history ordered by monotonic time; ties keep each file's own order."""
    keyed = []
    for order, path in enumerate(paths):
        for line, raw in enumerate(_read_lines(path)):
            keyed.append((raw["time_ns"], order, line, raw))
    keyed.sort(key=lambda item: item[:3])
    return History.from_entries(Entry.from_json(raw, i) for i, (*_, raw) in enumerate(keyed))


def _install_sigterm() -> None:
    def on_sigterm(_number: int, _frame: object) -> None:
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, on_sigterm)


def run(options: RunOptions) -> int:
    """The whole run; prints progress, the verdict line, and the replay command if needed."""
    _install_sigterm()
    run_dir = options.out
    if run_dir.exists() and any(run_dir.iterdir()):
        raise HarnessError(f"{run_dir} exists and is not empty: choose a new --out")
    (run_dir / "workers").mkdir(parents=True)
    kinds = parse_kinds(",".join(options.nemesis))
    resources = _Resources()
    atexit.register(resources.release)
    node_ids = tuple(range(1, options.nodes + 1))
    try:
        network = choose_network(node_ids, options.network)
        resources.network = network
        network.open()
        for kind in kinds:
            reason = network.unsupported(kind.partition(":")[0])
            if reason is not None:
                raise HarnessError(reason)
        environment = {"RAFTLOG_INJECT_BUG": options.inject_bug} if options.inject_bug else {}
        if options.power_loss:
            environment["RAFTLOG_TEST_POWER_LOSS"] = "1"
        names = {kind.partition(":")[0] for kind in kinds}
        # Every sync drops what it made durable from the page cache, so reads under the
        # faults go to the disk (O_DIRECT) and read ahead as they would past 32 MiB.
        extra: tuple[str, ...] = (
            "--segment-bytes", str(options.segment_bytes), "--cached-tail-bytes", "0"
        )  # fmt: skip
        if "member" in names:
            if options.nodes < MEMBER_NODES_MIN:
                raise HarnessError(
                    f"the member nemesis needs 5 nodes (--nodes 5): with {options.nodes}, "
                    "every node already holds every replica and none can be moved"
                )
            extra += ("--node-dead-timeout-ms", str(MEMBER_DEAD_TIMEOUT_MS))
        cluster = ChaosCluster(run_dir, network, node_ids, environment, extra)
        resources.cluster = cluster
        cluster.build()
        storage = "power-loss emulation" if options.power_loss else "page cache survives kills"
        print(f"network: {network.mechanism}; storage: {storage}; nodes: {cluster.bootstrap}",
              flush=True)
        cluster.start()
        _create_topic(cluster.bootstrap, options)
        if not _wait_leaders(cluster.bootstrap, options.partitions, LEADER_WAIT_S):
            raise HarnessError("the topic's partitions got no leaders before any fault")
        return _drive(options, run_dir, network, cluster, kinds, resources)
    finally:
        errors = resources.release()
        atexit.unregister(resources.release)
        for error in errors:
            print(f"cleanup: {error}", file=sys.stderr)


def _drive(
    options: RunOptions,
    run_dir: pathlib.Path,
    network: Network,
    cluster: ChaosCluster,
    kinds: tuple[str, ...],
    resources: _Resources,
) -> int:
    rounds = schedule(options.seed, kinds, options.time_s)
    started = time.monotonic()
    end_ns = time.monotonic_ns() + int(options.time_s * 1e9)
    specs = _worker_specs(options, cluster.bootstrap, run_dir, end_ns)
    for spec in specs:
        resources.workers.append(_spawn_worker(run_dir, spec))
    nemesis = Nemesis(
        cluster,
        network,
        _leader_lookup(cluster.bootstrap, options.partitions),
        options.partitions,
        run_dir / "nemesis.jsonl",
        TOPIC,
    )
    print(f"workload: {len(specs)} workers for {options.time_s:g} s; {len(rounds)} fault rounds")
    try:
        nemesis.run(rounds, started, lambda: time.monotonic() < started + options.time_s)
        _sleep_until(started + options.time_s)
    finally:
        nemesis.heal()
    _stop_workers(resources.workers)
    recovered = _wait_leaders(cluster.bootstrap, options.partitions, options.recovery_timeout_s)
    print(f"healed; every partition has a leader again: {recovered}", flush=True)
    final_process = specs[-1].process + specs[-1].inflight if specs else 0
    final = WorkerSpec(
        role="final",
        process=final_process,
        bootstrap=cluster.bootstrap,
        topic=TOPIC,
        partitions=options.partitions,
        seed=options.seed,
        output=str(run_dir / "workers" / f"p{final_process}-final.jsonl"),
        end_monotonic_ns=time.monotonic_ns() + int(options.final_timeout_s * 1e9),
    )
    final_worker = _spawn_worker(run_dir, final)
    resources.workers.append(final_worker)
    try:
        final_code: int | None = final_worker.wait(timeout=options.final_timeout_s + WORKER_STOP_S)
    except subprocess.TimeoutExpired:
        # A reader stuck on a cluster that never recovered is a finding, not a harness
        # failure: stop it and judge what was recorded.
        final_worker.kill()
        final_worker.wait()
        final_code = None
    crashes = cluster.crashed()
    paths = [pathlib.Path(spec.output) for spec in (*specs, final)]
    history = merge_histories([path for path in paths if path.exists()])
    info = RunInfo(
        seed=options.seed,
        options={
            **options.to_json(),
            "network_mechanism": network.mechanism,
            # Raft NOOP and configuration entries are control batches with offsets.
            SPARSE_OFFSETS_OPTION: True,
            "recovered": recovered,
            "final_read_complete": final_code == 0,
            "node_crashes": {str(k): v for k, v in crashes.items()},
            "restart_failures": nemesis.restart_failures,
        },
    )
    print(f"recorded {len(history.operations)} operations; checking", flush=True)
    outcome = write_report(
        run_dir,
        Run(info, history, tuple(nemesis.events), read_node_logs(run_dir / "nodes")),
        Budget(time_s=options.check_time_budget_s),
    )
    problems = []
    if not recovered:
        problems.append("the cluster did not recover after the faults healed")
    if final_code is None:
        problems.append("the final read did not complete (stopped after its timeout)")
    elif final_code != 0:
        problems.append(f"the final read did not complete (exit {final_code})")
    if crashes:
        problems.append(f"nodes exited on their own: {crashes}")
    if nemesis.restart_failures:
        problems.append(f"killed nodes failed to restart: {nemesis.restart_failures}")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    code = outcome.exit_code
    if code == EXIT_VALID and problems:
        code = EXIT_ANOMALIES
    if code != EXIT_VALID:
        print(f"replay: {options.replay_command()}")
    print(f"report: {run_dir}")
    return code


def _sleep_until(when: float) -> None:
    while (left := when - time.monotonic()) > 0:
        time.sleep(min(left, 0.5))
