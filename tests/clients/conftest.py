"""Fixtures for the real-client tests: a real `raftlog serve` process per test.

Each test gets its own node in its own temporary data directory, bound to 127.0.0.1 on a
port the kernel picks (`--kafka-addr 127.0.0.1:0`; the `event=listening` line says which),
so tests never race each other for ports. Teardown stops every node the test started with
SIGTERM and requires a clean exit (code 0): a node that cannot shut down cleanly after
serving real clients is a bug these tests exist to catch. Teardown also fails the test if
the node logged an error (a handler or connection failure is a node bug even when the
client recovered from it).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from .helpers import CuttableProxy

TEST_TIMEOUT_S = 180
"""Per test (pytest-timeout): a hung client fails its test, and teardown still stops the
node, instead of the whole run hanging."""
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
LISTENING = re.compile(r"event=listening kafka=(\S+):(\d+)")
ERROR_LINE = re.compile(r"level=error")


@attrs.define(eq=False)
class NodeProcess:
    """One `raftlog serve` subprocess and where its log goes."""

    data_dir: Path
    log_path: Path
    extra_args: tuple[str, ...] = ()
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    errors_expected: bool = False
    """Set by a test that provokes node-side error lines on purpose."""
    _log_offset: int = 0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        """Start (or restart, same data dir and port) and wait until it is listening."""
        assert self.process is None or self.process.poll() is not None, "already running"
        with self.log_path.open("ab") as log:
            self._log_offset = log.tell()
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "raftlog.cli", "serve",
                    "--data-dir", str(self.data_dir),
                    "--kafka-addr", f"127.0.0.1:{self.port}",
                    # Any free port: the default 9644 is taken by any other node running.
                    "--admin-addr", "127.0.0.1:0",
                    *self.extra_args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            match = LISTENING.search(self.new_log())
            if match:
                self.port = int(match.group(2))
                return
            if self.process.poll() is not None:
                raise AssertionError(
                    f"raftlog serve exited with {self.process.returncode} before listening:\n"
                    + self.new_log()
                )
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"raftlog serve did not listen within {START_TIMEOUT_S}s")

    def new_log(self) -> str:
        """What this run of the process has logged so far."""
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            return log.read().decode(errors="replace")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> int:
        """SIGTERM, wait for the exit, and return its code (kill if it hangs)."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(
                    f"raftlog serve ignored SIGTERM for {STOP_TIMEOUT_S}s"
                ) from None
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL by pid (the crash a test asks for, or the fallback of a hung stop)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=STOP_TIMEOUT_S)


@attrs.define(eq=False)
class NodeFactory:
    """Starts nodes for one test and stops all of them at its end."""

    directory: Path
    nodes: list[NodeProcess] = attrs.field(factory=list)

    def __call__(
        self,
        *extra_args: str,
        auto_create_topics: bool = True,
        fsync: str = "always",
        start: bool = True,
    ) -> NodeProcess:
        number = len(self.nodes)
        node = NodeProcess(
            self.directory / f"node{number}",
            self.directory / f"node{number}.log",
            (
                "--auto-create-topics", "true" if auto_create_topics else "false",
                "--fsync", fsync,
                *extra_args,
            ),
        )
        self.nodes.append(node)
        if start:
            node.start()
        return node

    def stop_all(self) -> list[str]:
        """Stop every node; return what went wrong (unclean exits, logged errors)."""
        problems = []
        for node in self.nodes:
            if node.process is None:
                continue
            was_running = node.running()
            try:
                code = node.stop()
            except AssertionError as error:
                problems.append(str(error))
                continue
            if was_running and code != 0:
                problems.append(f"{node.log_path.name}: exit code {code} after SIGTERM")
            if not node.errors_expected:
                errors = [line for line in node.log().splitlines() if ERROR_LINE.search(line)]
                if errors:
                    problems.append(f"{node.log_path.name} logged errors:\n" + "\n".join(errors))
        return problems


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if item.path.parent == here:
            item.add_marker(pytest.mark.timeout(TEST_TIMEOUT_S))


@pytest.fixture
def node_factory(tmp_path: Path) -> Iterator[NodeFactory]:
    factory = NodeFactory(tmp_path)
    try:
        yield factory
    finally:
        problems = factory.stop_all()
        for node in factory.nodes:  # the fallback: nothing outlives the test
            with contextlib.suppress(Exception):
                node.kill()
    if problems:
        pytest.fail("\n".join(problems))


@pytest.fixture
def node(node_factory: NodeFactory) -> NodeProcess:
    """One running node with topic auto-creation on."""
    return node_factory()


@pytest.fixture
def bootstrap(node: NodeProcess) -> str:
    """The bootstrap address of a fresh node (`host:port`)."""
    return node.bootstrap


@pytest.fixture
def proxied(node_factory: NodeFactory) -> Iterator[tuple[str, CuttableProxy]]:
    """A node that advertises a test proxy's address, so every client connection (after
    bootstrap too) goes through the proxy; yields (proxy address, proxy)."""
    proxy = CuttableProxy(target=("127.0.0.1", 0)).start()
    try:
        node = node_factory(f"--advertised-kafka-addr=127.0.0.1:{proxy.port}")
        proxy.target = ("127.0.0.1", node.port)
        yield f"127.0.0.1:{proxy.port}", proxy
    finally:
        proxy.stop()
