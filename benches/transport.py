"""Transport benchmark: RAFT-channel throughput and RPC latency between two transports in
one process over loopback, each against a plain trio socket doing the same work.

`measure(quick)` returns one row per figure
(`run(settings)` for the harness). `ratio` is always "higher is better": value /
ceiling for throughput, ceiling / value for latency; `target_ratio` is what we expect
from pure-Python HTTP/2 framing on top of the same socket.
"""

from __future__ import annotations

import statistics
import struct
import time
from typing import Any

import trio

from benches.common import Result, Settings, results_from_rows
from raftlog.transport import Channel, Transport
from raftlog.transport.testing import RecordingHandler, open_cluster

_KIB = 1024
_PREFIX = struct.Struct(">I")


class _Counter(RecordingHandler):
    """Counts RAFT bytes instead of keeping them."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes_received = 0
        self.target_bytes = 0
        self.done = trio.Event()

    def on_message(self, from_peer: int, channel: Channel, payload: bytes) -> None:
        self.bytes_received += len(payload)
        if self.bytes_received >= self.target_bytes:
            self.done.set()


async def _transport_throughput_s(message_bytes: int, count: int) -> float:
    counter = _Counter()
    counter.target_bytes = message_bytes * count
    async with open_cluster([1, 2], handlers={2: counter}) as transports:
        sender = transports[1]
        await _warm_up(sender, counter)
        counter.bytes_received = 0
        counter.done = trio.Event()
        payload = bytes(message_bytes)
        start_s = time.perf_counter()
        for _ in range(count):
            await sender.send(2, Channel.RAFT, payload)
        await counter.done.wait()
        return time.perf_counter() - start_s


async def _warm_up(sender: Transport, counter: _Counter) -> None:
    counter.target_bytes, target_bytes = 1, counter.target_bytes
    sender.send_nowait(2, Channel.RAFT, b"w")
    await counter.done.wait()
    counter.target_bytes = target_bytes


async def _socket_pair() -> tuple[trio.SocketStream, trio.SocketStream, trio.SocketListener]:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    client = await trio.open_tcp_stream("127.0.0.1", port)
    server = await listeners[0].accept()
    return client, server, listeners[0]


async def _socket_throughput_s(message_bytes: int, count: int) -> float:
    """The same length-prefixed bytes, written in 256 KiB batches, read and parsed."""
    client, server, listener = await _socket_pair()
    message = _PREFIX.pack(message_bytes) + bytes(message_bytes)
    per_batch = max(1, 256 * _KIB // len(message))
    total_bytes = len(message) * count

    async def write() -> None:
        remaining = count
        while remaining:
            batch = min(per_batch, remaining)
            await client.send_all(message * batch)
            remaining -= batch

    async def read() -> None:
        received = 0
        buffer = bytearray()
        while received < total_bytes:
            data = await server.receive_some(256 * _KIB)
            received += len(data)
            buffer += data
            position = 0
            while len(buffer) - position >= 4:  # parse as the transport must
                (size,) = _PREFIX.unpack_from(buffer, position)
                if len(buffer) - position - 4 < size:
                    break
                bytes(buffer[position + 4 : position + 4 + size])
                position += 4 + size
            del buffer[:position]

    start_s = time.perf_counter()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(write)
        nursery.start_soon(read)
    elapsed_s = time.perf_counter() - start_s
    for resource in (client, server, listener):
        await resource.aclose()
    return elapsed_s


async def _rpc_round_trips_s(count: int) -> list[float]:
    handlers = {1: RecordingHandler(), 2: RecordingHandler()}

    async def echo(peer: int, body: bytes) -> bytes:
        return body

    handlers[2].methods["echo"] = echo
    async with open_cluster([1, 2], handlers=handlers) as transports:
        await transports[1].call(2, "echo", b"warm", 5.0)
        samples: list[float] = []
        for _ in range(count):
            start_s = time.perf_counter()
            await transports[1].call(2, "echo", b"x" * 64, 5.0)
            samples.append(time.perf_counter() - start_s)
        return samples


async def _socket_round_trips_s(count: int) -> list[float]:
    client, server, listener = await _socket_pair()

    async def echo_server() -> None:
        while data := await server.receive_some(65_536):
            await server.send_all(data)

    samples: list[float] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(echo_server)
        payload = b"x" * 68
        for _ in range(count):
            start_s = time.perf_counter()
            await client.send_all(payload)
            received = 0
            while received < len(payload):
                received += len(await client.receive_some(65_536))
            samples.append(time.perf_counter() - start_s)
        await client.aclose()
    await server.aclose()
    await listener.aclose()
    return samples


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def _row(
    scenario: str,
    metric: str,
    value: float,
    unit: str,
    ceiling_name: str,
    ceiling_value: float,
    *,
    higher_is_better: bool,
    target_ratio: float,
    notes: str,
) -> dict[str, Any]:
    ratio = value / ceiling_value if higher_is_better else ceiling_value / value
    return {
        "scenario": scenario,
        "metric": metric,
        "value": round(value, 3),
        "unit": unit,
        "ceiling_name": ceiling_name,
        "ceiling_value": round(ceiling_value, 3),
        "ratio": round(ratio, 3),
        "target_ratio": target_ratio,
        "notes": notes,
    }


# Throughput targets: pure-Python h2 (frame parsing, flow control) on top of the socket.
_TARGETS = {1 * _KIB: (0.15, 0.15), 64 * _KIB: (0.35, 0.35)}


def measure(quick: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    total_bytes = (16 if quick else 128) * 1024 * _KIB
    for message_bytes in (1 * _KIB, 64 * _KIB):
        count = total_bytes // message_bytes
        transport_s = trio.run(_transport_throughput_s, message_bytes, count)
        socket_s = trio.run(_socket_throughput_s, message_bytes, count)
        scenario = f"raft_{message_bytes // _KIB}kib"
        notes = f"{count} messages, 2 transports in one process, loopback, cleartext"
        messages_target, megabytes_target = _TARGETS[message_bytes]
        rows.append(
            _row(
                scenario,
                "messages_per_s",
                count / transport_s,
                "msg/s",
                "trio_socket_messages_per_s",
                count / socket_s,
                higher_is_better=True,
                target_ratio=messages_target,
                notes=notes,
            )
        )
        rows.append(
            _row(
                scenario,
                "throughput",
                total_bytes / transport_s / 1e6,
                "MB/s",
                "trio_socket_throughput",
                total_bytes / socket_s / 1e6,
                higher_is_better=True,
                target_ratio=megabytes_target,
                notes=notes,
            )
        )
    calls = 300 if quick else 3000
    rpc = trio.run(_rpc_round_trips_s, calls)
    echo = trio.run(_socket_round_trips_s, calls)
    notes = f"{calls} sequential calls, 64-byte payload, handler echoes"
    for name, fraction in (("p50", 0.5), ("p99", 0.99)):
        rows.append(
            _row(
                "rpc_round_trip",
                f"latency_{name}",
                _percentile(rpc, fraction) * 1e6,
                "us",
                f"trio_echo_latency_{name}",
                _percentile(echo, fraction) * 1e6,
                higher_is_better=False,
                target_ratio=0.1,
                notes=notes,
            )
        )
    rows.append(
        _row(
            "rpc_round_trip",
            "calls_per_s",
            len(rpc) / sum(rpc),
            "calls/s",
            "trio_echo_round_trips_per_s",
            len(echo) / sum(echo),
            higher_is_better=True,
            target_ratio=0.1,
            notes=f"{notes}; mean {statistics.mean(rpc) * 1e6:.0f} us",
        )
    )
    return rows


def run(settings: Settings) -> list[Result]:
    """The harness's entry point (`python -m benches`)."""
    return results_from_rows(measure(settings.quick))
