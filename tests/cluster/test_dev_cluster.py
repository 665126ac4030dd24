"""`raftlog dev cluster` starts real nodes, prints the bootstrap line, stops on SIGINT."""

from __future__ import annotations

import pathlib
import random
import signal
import subprocess
import sys

import pytest
from confluent_kafka.admin import AdminClient

pytestmark = pytest.mark.clients


def test_dev_cluster_prints_bootstrap_and_stops_cleanly(tmp_path: pathlib.Path) -> None:
    # Below the ephemeral range (32768+), where the OS hands out ports to other tests.
    base_port = random.randrange(20_000, 32_000, 10)
    process = subprocess.Popen(
        [sys.executable, "-m", "raftlog.cli", "dev", "cluster", "--nodes", "3",
         "--data-dir", str(tmp_path), "--base-port", str(base_port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        failure = process.stderr.read() if process.poll() is not None else ""
        assert line.startswith("bootstrap: "), line + failure
        bootstrap = line.removeprefix("bootstrap: ").strip()
        assert bootstrap.split(",") == [f"127.0.0.1:{base_port + i}" for i in range(3)]
        metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
        assert sorted(metadata.brokers) == [1, 2, 3]
        process.send_signal(signal.SIGINT)
        output, _errors = process.communicate(timeout=60)
        assert "stopped: {1: 0, 2: 0, 3: 0}" in output
        assert process.returncode == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
