"""The machine's physical ceilings, measured in the same run, and raftlog's figures as a
fraction of them.

* small append + fdatasync latency (4 KiB; the floor under any fsync-before-ack write),
* sequential write with fdatasync after each 1 MiB block (the disk's durable bandwidth),
* loopback TCP bandwidth of one stream, and a small-message round trip (Python sockets).

CRC32C speed has its own scenario (`crc`). `fractions` (run by the harness after every
scenario) turns other scenarios' figures into fractions of these: produce bytes/s
against the durable write bandwidth (times three for RF=3: every replica writes to this
one disk), consume bytes/s against loopback bandwidth, a lone record's p50 against one
fdatasync.
"""

from __future__ import annotations

import os
import socket
import statistics
import threading
import time
from collections.abc import Sequence

from benches.common import Result, Settings

SCENARIO = "ceilings"
RECORD_BYTES = 1024
FSYNC_P50 = "4 KiB append + fdatasync, p50"
SEQUENTIAL = "sequential write, 1 MiB blocks, fdatasync after each"
LOOPBACK = "loopback TCP, one stream"
ROUND_TRIP = "loopback TCP round trip of 64 bytes (Python sockets), p50"


def _fsync_latency_us(settings: Settings, count: int) -> float:
    path = settings.work_directory / "fsync-latency.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    block = b"x" * 4096
    samples = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            os.write(fd, block)
            os.fdatasync(fd)
            samples.append(time.perf_counter() - started)
    finally:
        os.close(fd)
        path.unlink()
    return statistics.median(samples) * 1e6


def _sequential_mbps(settings: Settings, total_bytes: int) -> float:
    path = settings.work_directory / "sequential.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    block = os.urandom(1 << 20)
    written = 0
    try:
        started = time.perf_counter()
        while written < total_bytes:
            view = memoryview(block)
            while view:
                view = view[os.write(fd, view):]
            os.fdatasync(fd)
            written += len(block)
        elapsed = time.perf_counter() - started
    finally:
        os.close(fd)
        path.unlink()
    return written / elapsed / 1e6


def _loopback(total_bytes: int, round_trips: int) -> tuple[float, float]:
    """(MB/s of one TCP stream, p50 µs of a 64-byte round trip)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        received = [0]

        def sink() -> None:
            connection, _ = server.accept()
            with connection:
                buffer = bytearray(1 << 20)
                while (got := connection.recv_into(buffer)) > 0:
                    received[0] += got
                    if received[0] >= total_bytes:
                        break
                for _ in range(round_trips):
                    message = connection.recv(64, socket.MSG_WAITALL)
                    connection.sendall(message)

        thread = threading.Thread(target=sink, daemon=True)
        thread.start()
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            chunk = b"\0" * (1 << 20)
            started = time.perf_counter()
            sent = 0
            while sent < total_bytes:
                client.sendall(chunk)
                sent += len(chunk)
            while received[0] < total_bytes and thread.is_alive():
                time.sleep(0.001)
            bandwidth = sent / (time.perf_counter() - started) / 1e6
            samples = []
            for _ in range(round_trips):
                started = time.perf_counter()
                client.sendall(b"p" * 64)
                client.recv(64, socket.MSG_WAITALL)
                samples.append(time.perf_counter() - started)
        thread.join(10)
    return bandwidth, statistics.median(samples) * 1e6


def run(settings: Settings) -> list[Result]:
    fsyncs = 50 if settings.quick else 300
    sequential_bytes = settings.size_bytes(32 << 20, 256 << 20, 4 << 20)
    loopback_bytes = settings.size_bytes(256 << 20, 2 << 30, 16 << 20)
    fsync_us = _fsync_latency_us(settings, fsyncs)
    sequential = _sequential_mbps(settings, sequential_bytes)
    bandwidth, round_trip_us = _loopback(loopback_bytes, 200 if settings.quick else 2000)
    return [
        Result(SCENARIO, FSYNC_P50, fsync_us, "us", notes=f"{fsyncs} appends, one writer"),
        Result(SCENARIO, SEQUENTIAL, sequential, "MB/s",
               notes=f"{sequential_bytes >> 20} MiB"),
        Result(SCENARIO, LOOPBACK, bandwidth, "MB/s", notes=f"{loopback_bytes >> 20} MiB"),
        Result(SCENARIO, ROUND_TRIP, round_trip_us, "us"),
    ]  # fmt: skip


def _find(results: Sequence[Result], scenario: str, metric: str) -> Result | None:
    return next((r for r in results if r.scenario == scenario and r.metric == metric), None)


def fractions(results: Sequence[Result]) -> list[Result]:
    """raftlog's figures from this run's other scenarios as fractions of the ceilings
    (rows only for the pairs that both ran)."""
    fsync = _find(results, SCENARIO, FSYNC_P50)
    sequential = _find(results, SCENARIO, SEQUENTIAL)
    loopback = _find(results, SCENARIO, LOOPBACK)
    rows = []
    pairs = (
        ("produce-1node", "produce 1 KiB acks=all fsync=always", sequential, 1),
        ("replicated", "produce 1 KiB RF=3 acks=all fsync=always", sequential, 3),
    )
    for scenario, metric, ceiling, copies in pairs:
        figure = _find(results, scenario, metric)
        if figure is not None and ceiling is not None and ceiling.value > 0:
            mbps = figure.value * RECORD_BYTES / 1e6 * copies
            rows.append(Result(
                "fraction-of-ceiling", f"{scenario}: {metric}, disk bytes", mbps, "MB/s",
                ceiling.metric, ceiling.value, mbps / ceiling.value, None,
                f"{copies} cop{'y' if copies == 1 else 'ies'} of each 1 KiB record on this disk",
            ))  # fmt: skip
    for scenario, metric in (("produce-1node", "consume from start"),
                             ("replicated", "consume from start (RF=3)")):
        figure = _find(results, scenario, metric)
        if figure is not None and loopback is not None and loopback.value > 0:
            mbps = figure.value * RECORD_BYTES / 1e6
            rows.append(Result(
                "fraction-of-ceiling", f"{scenario}: {metric}, bytes", mbps, "MB/s",
                loopback.metric, loopback.value, mbps / loopback.value, None,
            ))  # fmt: skip
    for scenario, metric in (("produce-1node", "single-record produce p50"),
                             ("replicated", "single-record produce p50 (RF=3, fsync before ack)")):
        figure = _find(results, scenario, metric)
        if figure is not None and fsync is not None and figure.value > 0:
            rows.append(Result(
                "fraction-of-ceiling", f"{scenario}: {metric}", figure.value, "ms",
                "one 4 KiB fdatasync, p50", fsync.value / 1000, fsync.value / 1000 / figure.value,
                None, "ratio = fdatasync p50 / raftlog p50: the share of the wait that is the disk",
            ))  # fmt: skip
    return rows
