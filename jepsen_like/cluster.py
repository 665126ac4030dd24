"""The cluster under test: real ``raftlog serve`` processes placed on a breakable network.

Unlike ``raftlog.testing.LocalCluster`` each node may start under a command prefix (its
network namespace) and with extra environment (bug-injection switches), and the harness
can kill, pause and resume nodes by pid. Nodes log to ``nodes/node<i>.log`` in the run
directory, which the report keeps.
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Mapping

import attrs

from jepsen_like.network import Network

STARTUP_TIMEOUT_S = 60.0
STOP_GRACE_S = 15.0


class ClusterError(RuntimeError):
    """A node did not start or stop as asked; carries its log's tail."""


@attrs.define(eq=False)
class ChaosNode:
    node_id: int
    kafka_addr: str
    admin_addr: str
    command: list[str]
    log_path: pathlib.Path
    environment: Mapping[str, str]
    process: subprocess.Popen[bytes] | None = None
    paused: bool = False

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _listening_count(self) -> int:
        if not self.log_path.exists():
            return 0
        return self.log_path.read_bytes().count(b"event=listening")

    def spawn(self) -> int:
        """Start the process; returns how often it had logged ``listening`` before."""
        before = self._listening_count()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(self.environment),
            )
        self.paused = False
        return before

    def wait_listening(self, before: int, deadline: float) -> None:
        while self._listening_count() <= before:
            if not self.running or time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                self.kill()
                raise ClusterError(f"node {self.node_id} did not start:\n{tail}")
            time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            if self.paused:
                self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait()
        self.paused = False

    def pause(self) -> None:
        if self.running and not self.paused:
            assert self.process is not None
            self.process.send_signal(signal.SIGSTOP)
            self.paused = True

    def resume(self) -> None:
        if self.running and self.paused:
            assert self.process is not None
            self.process.send_signal(signal.SIGCONT)
        self.paused = False

    def stop(self) -> int | None:
        if self.process is None:
            return None
        self.resume()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@attrs.define(eq=False)
class ChaosCluster:
    directory: pathlib.Path
    network: Network
    node_ids: tuple[int, ...]
    environment: Mapping[str, str] = attrs.field(factory=dict)
    """Added to every node's environment (e.g. ``RAFTLOG_INJECT_BUG``)."""
    extra_arguments: tuple[str, ...] = ()
    nodes: dict[int, ChaosNode] = attrs.field(factory=dict)

    def build(self) -> None:
        """Describe every node; the network must be open (it decides the addresses)."""
        (self.directory / "nodes").mkdir(parents=True, exist_ok=True)
        environment = {**os.environ, **self.environment}
        for node_id in self.node_ids:
            endpoints = self.network.endpoints(node_id)
            command = [
                *endpoints.command_prefix,
                sys.executable, "-m", "raftlog.cli", "serve",
                "--node-id", str(node_id),
                "--data-dir", str(self.data_dir(node_id)),
                "--kafka-addr", endpoints.kafka_addr,
                "--peers", endpoints.peers,
                *(("--admin-addr", endpoints.admin_addr) if endpoints.admin_addr else ()),
                *self.extra_arguments,
            ]  # fmt: skip
            self.nodes[node_id] = ChaosNode(
                node_id,
                endpoints.kafka_addr,
                endpoints.admin_addr,
                command,
                self.directory / "nodes" / f"node{node_id}.log",
                environment,
            )

    def data_dir(self, node_id: int) -> pathlib.Path:
        return self.directory / "nodes" / f"data{node_id}"

    @property
    def bootstrap(self) -> str:
        return ",".join(node.kafka_addr for node in self.nodes.values())

    def start(self) -> None:
        """Start every node, then wait for all: they wait for each other to register."""
        befores = {node_id: node.spawn() for node_id, node in self.nodes.items()}
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        for node_id, node in self.nodes.items():
            node.wait_listening(befores[node_id], deadline)

    def restart(self, node_ids: tuple[int, ...]) -> None:
        """Start killed nodes again on their data; waits until each listens."""
        befores = {n: self.nodes[n].spawn() for n in node_ids if not self.nodes[n].running}
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        for node_id, before in befores.items():
            self.nodes[node_id].wait_listening(before, deadline)

    def stop(self) -> dict[int, int | None]:
        return {node_id: node.stop() for node_id, node in self.nodes.items()}

    def crashed(self) -> dict[int, int]:
        """Nodes that exited while the harness did not kill them: a finding in itself."""
        exits = {
            node_id: node.process.poll()
            for node_id, node in self.nodes.items()
            if node.process is not None
        }
        return {node_id: code for node_id, code in exits.items() if code not in (None, -9, -15, 0)}
