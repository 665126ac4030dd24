"""Real raftlog nodes for tests and local development: `LocalCluster` starts N `raftlog
serve` processes on free 127.0.0.1 ports in a directory, waits until each logs
`event=listening`, and stops them by PID (SIGTERM, then SIGKILL after a grace period).

    with LocalCluster(tmp_path, nodes=3) as cluster:
        producer = confluent_kafka.Producer({"bootstrap.servers": cluster.bootstrap})
"""

from __future__ import annotations

import contextlib
import pathlib
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from types import TracebackType

import attrs

STARTUP_TIMEOUT_S = 60.0
STOP_GRACE_S = 20.0
FAILURE_LOG_LINES = 60
"""Lines of each node's log written to stderr when a `with LocalCluster` block fails."""


PORT_RANGE_LOW = 10_000
PORT_TRIES = 200
_handed_out: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(pathlib.Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A 127.0.0.1 port that was free a moment ago, below the kernel's ephemeral range.

    A port the OS picks for ``bind(0)`` comes from the ephemeral range, which every
    outgoing connection on the machine also draws from: between this probe and the node's
    own bind, a client's connection could take it ("Address already in use"). Ports below
    the range are only ever taken by an explicit bind; none is handed out twice by one
    process."""
    low = _ephemeral_low()
    if low > PORT_RANGE_LOW + PORT_TRIES:
        for _ in range(PORT_TRIES):
            port = random.randrange(PORT_RANGE_LOW, low)
            if port in _handed_out:
                continue
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    continue
            _handed_out.add(port)
            return port
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class NodeFailedToStart(RuntimeError):
    """A node exited or did not report `listening` in time; carries its log's tail."""


@attrs.define(eq=False)
class LocalNode:
    node_id: int
    kafka_port: int
    internal_port: int
    data_dir: pathlib.Path
    log_path: pathlib.Path
    arguments: list[str]
    admin_port: int | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def admin_address(self) -> str:
        """HOST:PORT of the node's admin HTTP API."""
        if self.admin_port is None:
            raise ValueError(f"node {self.node_id} runs without an admin endpoint")
        return f"127.0.0.1:{self.admin_port}"

    @property
    def admin_url(self) -> str:
        return f"http://{self.admin_address}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def listening_count(self) -> int:
        """How many times this node has logged `listening` (once per start)."""
        return self.log_path.read_bytes().count(b"event=listening") if self.log_path.exists() else 0

    def spawn(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "raftlog.cli", "serve", *self.arguments],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_listening(self, previous_count: int, deadline: float) -> None:
        while self.listening_count() <= previous_count:
            assert self.process is not None
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                self.kill()
                raise NodeFailedToStart(f"node {self.node_id} did not start:\n{tail}")
            time.sleep(0.05)

    def start(self) -> None:
        """Start the process (again, on the same data dir) and wait until it listens."""
        previous = self.listening_count()
        self.spawn()
        self.wait_listening(previous, time.monotonic() + STARTUP_TIMEOUT_S)

    def kill(self) -> None:
        """SIGKILL: what a crash looks like."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> int | None:
        """SIGTERM and wait; SIGKILL if it does not stop in time. Returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@attrs.define(eq=False)
class LocalCluster:
    """N real nodes on 127.0.0.1; one node means a single node without `--peers`."""

    directory: pathlib.Path
    nodes: int = 3
    extra_arguments: Sequence[str] = ()
    base_port: int | None = None
    """Kafka ports base_port.., internal ports base_port+100.., admin ports base_port+200..;
    None picks free ports."""
    members: list[LocalNode] = attrs.field(factory=list)

    def __attrs_post_init__(self) -> None:
        self.directory = pathlib.Path(self.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.base_port is None:
            ports = [(free_port(), free_port(), free_port()) for _ in range(self.nodes)]
        else:
            base = self.base_port
            ports = [(base + i, base + 100 + i, base + 200 + i) for i in range(self.nodes)]
        peers = ",".join(
            f"{i + 1}@127.0.0.1:{internal}" for i, (_k, internal, _a) in enumerate(ports)
        )
        for index, (kafka_port, internal_port, admin_port) in enumerate(ports):
            node_id = index + 1
            data_dir = self.directory / f"node{node_id}"
            arguments = [
                "--node-id", str(node_id),
                "--data-dir", str(data_dir),
                "--kafka-addr", f"127.0.0.1:{kafka_port}",
                "--admin-addr", f"127.0.0.1:{admin_port}",
                *(("--peers", peers) if self.nodes > 1 else ()),
                *self.extra_arguments,
            ]  # fmt: skip
            self.members.append(
                LocalNode(
                    node_id,
                    kafka_port,
                    internal_port,
                    data_dir,
                    self.directory / f"node{node_id}.log",
                    arguments,
                    admin_port,
                )
            )

    @property
    def bootstrap(self) -> str:
        return ",".join(member.address for member in self.members if member.running)

    def node(self, node_id: int) -> LocalNode:
        if not 1 <= node_id <= len(self.members):
            # Metadata says -1 when a partition has no leader: never index from the end.
            raise ValueError(f"no node {node_id} in a cluster of {len(self.members)}")
        return self.members[node_id - 1]

    def start(self) -> None:
        """Start every node; they wait for each other, so start them all before waiting."""
        previous = [member.listening_count() for member in self.members]
        for member in self.members:
            member.spawn()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        try:
            for member, count in zip(self.members, previous, strict=True):
                member.wait_listening(count, deadline)
        except NodeFailedToStart:
            self.stop()
            raise

    def stop(self) -> dict[int, int | None]:
        """Stop every node; returns each node's exit code."""
        return {member.node_id: member.stop() for member in self.members}

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        if exc_type is not None and not issubclass(exc_type, KeyboardInterrupt):
            self.report_logs()

    def report_logs(self, lines: int = FAILURE_LOG_LINES) -> None:
        """Write the end of each node's log to stderr: a test that failed on a CI machine
        leaves only its output behind, and what the nodes did is most of the story."""
        for member in self.members:
            try:
                tail = member.log_path.read_text(errors="replace").splitlines()[-lines:]
            except OSError as error:
                tail = [f"(unreadable: {error})"]
            sys.stderr.write(f"--- node {member.node_id}: last {len(tail)} log lines ---\n")
            sys.stderr.write("\n".join(tail) + "\n")
