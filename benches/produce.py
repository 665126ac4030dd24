"""Single-node produce and consume, 1 KiB records, fsync before acknowledging, side by side
with Redis Streams (appendonly yes, appendfsync always, pipelined XADD) in the same run.

raftlog runs as `raftlog serve` in its own process and is driven by confluent-kafka
(librdkafka) in another; Redis is driven by redis-benchmark (C, 8 connections x 32
pipelined). Both servers bind 127.0.0.1 on free ports and are stopped by PID. A peer that
is not installed is reported as missing, never silently skipped.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

from benches.common import Result, Settings
from raftlog.testing import free_port

RECORD_BYTES = 1024
STARTUP_TIMEOUT_S = 30.0


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def raftlog_node(directory: pathlib.Path) -> Iterator[str]:
    port = free_port()
    log_path = directory / "raftlog.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "raftlog.cli",
                "serve",
                "--data-dir",
                str(directory / "data"),
                "--kafka-addr",
                f"127.0.0.1:{port}",
                "--admin-addr",
                "127.0.0.1:0",
                "--auto-create-topics",
                "true",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while b"event=listening" not in log_path.read_bytes():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"raftlog did not start: {log_path.read_text()[-2000:]}")
                time.sleep(0.05)
            yield f"127.0.0.1:{port}"
        finally:
            _stop(process)


def _load(*arguments: str, timeout_s: float = 600) -> dict[str, float]:
    completed = subprocess.run(
        [sys.executable, "-m", "benches.kafka_load", *arguments],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        cwd=pathlib.Path(__file__).resolve().parents[1],
    )
    if completed.returncode != 0:
        raise RuntimeError(f"load generator failed: {completed.stderr[-2000:]}")
    result: dict[str, float] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def _redis_rate(directory: pathlib.Path, count: int, appendfsync: str = "always") -> float | None:
    """XADD ops/s of a fresh redis-server with AOF at `appendfsync`; None if not installed."""
    if shutil.which("redis-server") is None or shutil.which("redis-benchmark") is None:
        return None
    port = free_port()
    data = directory / f"redis-{appendfsync}"
    data.mkdir()
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data),
            "--appendonly",
            "yes",
            "--appendfsync",
            appendfsync,
            "--save",
            "",
            "--protected-mode",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        completed = subprocess.run(
            [
                "redis-benchmark",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-c",
                "8",
                "-P",
                "32",
                "-n",
                str(count),
                "--csv",
                "XADD",
                "bench",
                "*",
                "f",
                "x" * RECORD_BYTES,
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
        rows = list(csv.reader(io.StringIO(completed.stdout)))
        return float(rows[-1][1])
    finally:
        _stop(server)


def run(settings: Settings) -> list[Result]:
    count = 50_000 if settings.quick else 300_000
    count = max(1000, int(count * settings.scale))
    directory = settings.work_directory / "produce"
    directory.mkdir()
    ceiling = _load("ceiling", "--count", str(count))["records_per_s"]
    redis_rate = _redis_rate(directory, count)
    with raftlog_node(directory) as bootstrap:
        # Warm up: create the topic and let the client learn its leader before measuring.
        _load("produce", "--bootstrap", bootstrap, "--count", "1000")
        produced = _load("produce", "--bootstrap", bootstrap, "--count", str(count))
        consumed = _load(
            "consume", "--bootstrap", bootstrap, "--count", str(produced["records"] + 1000)
        )
        single = _load("single", "--bootstrap", bootstrap, "--topic", "single", "--count", "200")
    if produced["failures"]:
        raise RuntimeError(f"{produced['failures']} records failed: {produced['first_failure']}")
    generator_note = f"load generator ceiling {ceiling:,.0f} records/s (produce() alone)"
    results = [
        Result(
            "produce-1node",
            "produce 1 KiB acks=all fsync=always",
            produced["records_per_s"],
            "records/s",
            "redis XADD appendfsync always" if redis_rate else None,
            redis_rate,
            produced["records_per_s"] / redis_rate if redis_rate else None,
            1.0,
            generator_note if redis_rate else "redis-server/redis-benchmark not installed",
        ),
        Result(
            "produce-1node",
            "produce latency p50 (pipelined)",
            produced["p50_ms"],
            "ms",
            notes=f"p99 {produced['p99_ms']:.1f} ms; linger.ms=5, batch 1 MiB",
        ),
        Result(
            "produce-1node",
            "single-record produce p50",
            single["p50_ms"],
            "ms",
            notes=f"p99 {single['p99_ms']:.2f} ms; each waits for its ack (fsync included)",
        ),
        Result(
            "produce-1node",
            "consume from start",
            consumed["records_per_s"],
            "records/s",
            "load generator ceiling",
            ceiling,
            consumed["records_per_s"] / ceiling,
            None,
            f"{consumed['mb_per_s']:.0f} MB/s; timed from the first record received (connecting"
            " and fetching metadata excluded); librdkafka prefetches in the background",
        ),
    ]
    os.sync()
    return results
