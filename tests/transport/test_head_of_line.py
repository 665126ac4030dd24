"""A 64 MiB snapshot streaming on SNAPSHOT must not hold back heartbeats."""

from __future__ import annotations

import struct
import time

import trio

from raftlog.transport import Channel
from raftlog.transport.testing import RecordingHandler, open_cluster

SNAPSHOT_BYTES = 64 * 1024 * 1024
CHUNK_BYTES = 1024 * 1024
HEARTBEAT_PERIOD_S = 0.005
HEARTBEAT_DELAY_BOUND_S = 0.2


def test_heartbeats_keep_flowing_while_a_64_mib_snapshot_streams() -> None:
    delays_s: list[float] = []
    snapshot_received = trio.Event()
    received_bytes = 0

    def on_receive(from_peer: int, channel: Channel, payload: bytes) -> None:
        nonlocal received_bytes
        if channel is Channel.HEARTBEAT:
            (sent_at,) = struct.unpack(">d", payload)
            delays_s.append(time.perf_counter() - sent_at)
        elif channel is Channel.SNAPSHOT:
            received_bytes += len(payload)
            if received_bytes == SNAPSHOT_BYTES:
                snapshot_received.set()

    async def main() -> dict[str, float]:
        receiver = RecordingHandler(on_receive=on_receive)
        # Keep only counts on the receiver: 64 MiB of chunks need not stay in memory.
        receiver.received.default_factory = _Discard  # type: ignore[assignment]
        async with open_cluster([1, 2], handlers={2: receiver}) as transports:
            # Connect and warm up first, so the measurement is of streaming, not dialing.
            transports[1].send_nowait(2, Channel.HEARTBEAT, struct.pack(">d", time.perf_counter()))
            with trio.fail_after(5):
                while not delays_s:
                    await trio.sleep(0.01)
            delays_s.clear()
            chunk = bytes(CHUNK_BYTES)
            during_snapshot = True

            async def heartbeats() -> None:
                while during_snapshot:
                    stamp = struct.pack(">d", time.perf_counter())
                    assert transports[1].send_nowait(2, Channel.HEARTBEAT, stamp)
                    await trio.sleep(HEARTBEAT_PERIOD_S)

            start_s = time.perf_counter()
            with trio.fail_after(60):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(heartbeats)
                    for _ in range(SNAPSHOT_BYTES // CHUNK_BYTES):
                        await transports[1].send(2, Channel.SNAPSHOT, chunk)
                    await snapshot_received.wait()
                    during_snapshot = False
            snapshot_s = time.perf_counter() - start_s
            peak_queue = transports[1].statistics().peers[2].channels[Channel.SNAPSHOT]
            assert peak_queue.messages_dropped_full == 0
        return {"snapshot_s": snapshot_s}

    figures = trio.run(main)
    snapshot_s = figures["snapshot_s"]
    delays_s.sort()
    max_delay_s = delays_s[-1]
    p99_delay_s = delays_s[int(len(delays_s) * 0.99)]
    print(
        f"\nsnapshot 64 MiB in {snapshot_s:.3f}s ({SNAPSHOT_BYTES / snapshot_s / 1e6:.0f} MB/s); "
        f"{len(delays_s)} heartbeats, delay p50 {delays_s[len(delays_s) // 2] * 1e3:.2f} ms, "
        f"p99 {p99_delay_s * 1e3:.2f} ms, max {max_delay_s * 1e3:.2f} ms"
    )
    p50_delay_s = delays_s[len(delays_s) // 2]
    # Heartbeats were sent all along the snapshot (sleep granularity allows some slack)...
    assert len(delays_s) >= snapshot_s / HEARTBEAT_PERIOD_S / 4
    # ...and none waited long, in absolute terms...
    assert max_delay_s < HEARTBEAT_DELAY_BOUND_S
    # ...nor relative to the snapshot. `send` keeps the SNAPSHOT queue full (16 MiB), so
    # with head-of-line blocking a heartbeat would wait behind at least a quarter of the
    # snapshot; this stays meaningful however fast or slow the machine is.
    assert p50_delay_s < snapshot_s / 10


class _Discard(list):  # type: ignore[type-arg]
    """A list that forgets what is appended (the test counts bytes itself)."""

    def append(self, item: object) -> None:
        pass
