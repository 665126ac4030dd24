"""Two and three real transports on 127.0.0.1: every channel, order, RPCs, statistics."""

from __future__ import annotations

import itertools
import socket

import pytest
import trio
import trio.testing

from raftlog.transport import (
    Channel,
    PeerUnavailable,
    RpcError,
    RpcErrorCode,
    RpcTimeout,
    Transport,
    TransportLimits,
)
from raftlog.transport.testing import RecordingHandler, open_cluster

MESSAGE_CHANNELS = (Channel.HEARTBEAT, Channel.RAFT, Channel.SNAPSHOT)


def _payload(sender: int, receiver: int, channel: Channel, index: int) -> bytes:
    return f"{sender}->{receiver}:{channel.name}:{index}".encode() * (1 + index % 7)


@pytest.mark.parametrize("write_now", [False, True])
@pytest.mark.parametrize("node_count", [2, 3])
def test_every_channel_arrives_in_order_between_every_pair(
    node_count: int, write_now: bool
) -> None:
    count = 300

    async def main() -> None:
        handlers = {node: RecordingHandler() for node in range(1, node_count + 1)}
        async with open_cluster(list(handlers), handlers=handlers) as transports:
            pairs = list(itertools.permutations(handlers, 2))
            for index in range(count):
                for sender, receiver in pairs:
                    for channel in MESSAGE_CHANNELS:
                        payload = _payload(sender, receiver, channel, index)
                        assert transports[sender].send_nowait(
                            receiver, channel, payload, write_now=write_now
                        )
                if index % 50 == 0:
                    await trio.sleep(0)
            with trio.fail_after(20):
                for sender, receiver in pairs:
                    for channel in MESSAGE_CHANNELS:
                        got = await handlers[receiver].wait_count(sender, channel, count)
                        expected = [_payload(sender, receiver, channel, i) for i in range(count)]
                        assert got == expected
            for sender, receiver in pairs:
                statistics = transports[sender].statistics().peers[receiver]
                assert statistics.connected
                for channel in MESSAGE_CHANNELS:
                    channel_statistics = statistics.channels[channel]
                    assert channel_statistics.messages_sent == count
                    assert channel_statistics.messages_dropped_full == 0
                    assert channel_statistics.queue_depth_messages == 0
                received = transports[receiver].statistics().peers[sender].channels
                assert received[Channel.RAFT].messages_received == count

    trio.run(main)


async def _connected(transports: dict[int, Transport]) -> None:
    for sender, receiver in itertools.permutations(transports, 2):
        transports[sender].send_nowait(receiver, Channel.HEARTBEAT, b"hello")
    with trio.fail_after(10):
        for sender, receiver in itertools.permutations(transports, 2):
            while not transports[sender].statistics().peers[receiver].connected:
                await trio.sleep(0.01)


def test_write_now_puts_a_message_on_the_socket_before_the_writer_runs() -> None:
    async def main() -> None:
        handlers = {1: RecordingHandler(), 2: RecordingHandler()}
        async with open_cluster([1, 2], handlers=handlers) as transports:
            await _connected(transports)
            await trio.testing.wait_all_tasks_blocked()
            channels = transports[1].statistics().peers[2].channels
            sent_before = channels[Channel.RAFT].messages_sent
            # No checkpoint between the send and the check: the writer task cannot run.
            assert transports[1].send_nowait(2, Channel.RAFT, b"now", write_now=True)
            channels = transports[1].statistics().peers[2].channels
            assert channels[Channel.RAFT].queue_depth_messages == 0
            assert channels[Channel.RAFT].messages_sent == sent_before + 1
            assert transports[1].send_nowait(2, Channel.RAFT, b"later")
            channels = transports[1].statistics().peers[2].channels
            assert channels[Channel.RAFT].queue_depth_messages == 1, "left to the writer"
            with trio.fail_after(10):
                assert await handlers[2].wait_count(1, Channel.RAFT, 2) == [b"now", b"later"]

    trio.run(main)


def test_what_the_socket_does_not_take_at_once_follows_in_order() -> None:
    """Messages far larger than the socket's buffer: a write from the sender's task is
    partial, the writer sends the rest, and later messages wait behind it."""
    big = 6 << 20
    payloads = [bytes([index]) * (big if index % 3 == 0 else 1000) for index in range(12)]

    async def main() -> None:
        handlers = {1: RecordingHandler(), 2: RecordingHandler()}
        async with open_cluster([1, 2], handlers=handlers) as transports:
            await _connected(transports)
            with trio.fail_after(30):
                for payload in payloads:
                    while not transports[1].send_nowait(2, Channel.RAFT, payload, write_now=True):
                        await trio.sleep(0.01)  # the queue's bound: the writer drains it
                got = await handlers[2].wait_count(1, Channel.RAFT, len(payloads))
            assert got == payloads

    trio.run(main)


def test_simultaneous_dials_converge_on_one_connection_per_pair() -> None:
    async def main() -> None:
        async with open_cluster([1, 2, 3]) as transports:
            for sender, receiver in itertools.permutations(transports, 2):
                transports[sender].send_nowait(receiver, Channel.HEARTBEAT, b"hi")
            with trio.fail_after(10):
                while True:
                    await trio.sleep(0.05)
                    snapshots = {n: t.statistics() for n, t in transports.items()}
                    inbound = sum(s.inbound_connections_open for s in snapshots.values())
                    connected = all(
                        p.connected for s in snapshots.values() for p in s.peers.values()
                    )
                    if connected and inbound == 3:
                        break
            for low, high in itertools.combinations(sorted(transports), 2):
                # The lower id's dial wins, on both ends; it carries both directions.
                assert snapshots[low].peers[high].dialled_by_us is True
                assert snapshots[high].peers[low].dialled_by_us is False

    trio.run(main)


def test_rpc_round_trip_errors_and_concurrency() -> None:
    async def main() -> None:
        handlers = {1: RecordingHandler(), 2: RecordingHandler()}

        async def echo(peer: int, body: bytes) -> bytes:
            await trio.sleep(0.01)
            return f"from {peer}: ".encode() + body

        async def fail(peer: int, body: bytes) -> bytes:
            raise RuntimeError("handler exploded")

        handlers[2].methods.update({"echo": echo, "fail": fail})
        handlers[1].methods["echo"] = echo
        async with open_cluster([1, 2], handlers=handlers) as transports:
            with trio.fail_after(10):
                assert await transports[1].call(2, "echo", b"ping", 5.0) == b"from 1: ping"
                assert await transports[2].call(1, "echo", b"back", 5.0) == b"from 2: back"
                results: dict[int, bytes] = {}

                async def one(index: int) -> None:
                    results[index] = await transports[1].call(2, "echo", b"%d" % index, 5.0)

                async with trio.open_nursery() as nursery:
                    for index in range(50):
                        nursery.start_soon(one, index)
                assert results == {i: b"from 1: %d" % i for i in range(50)}
                with pytest.raises(RpcError) as failed:
                    await transports[1].call(2, "fail", b"", 5.0)
                assert failed.value.code is RpcErrorCode.HANDLER_FAILED
                assert "handler exploded" in failed.value.message
                with pytest.raises(RpcError) as missing:
                    await transports[1].call(2, "nope", b"", 5.0)
                assert missing.value.code is RpcErrorCode.NO_SUCH_METHOD
            statistics = transports[1].statistics().peers[2]
            assert statistics.calls_in_flight_outbound == 0
            assert statistics.channels[Channel.RPC].messages_sent == 54

    trio.run(main)


def test_rpc_timeout_raises_and_cancels_the_remote_handler() -> None:
    async def main() -> None:
        handlers = {1: RecordingHandler(), 2: RecordingHandler()}
        remote_cancelled = trio.Event()

        async def hang(peer: int, body: bytes) -> bytes:
            try:
                await trio.sleep_forever()
            finally:
                remote_cancelled.set()
            raise AssertionError("unreachable")

        handlers[2].methods["hang"] = hang
        async with open_cluster([1, 2], handlers=handlers) as transports:
            start_s = trio.current_time()
            with pytest.raises(RpcTimeout):
                await transports[1].call(2, "hang", b"", 0.3)
            elapsed_s = trio.current_time() - start_s
            assert 0.3 <= elapsed_s < 2.0
            with trio.fail_after(5):
                await remote_cancelled.wait()

    trio.run(main)


def test_rpc_over_the_callee_concurrency_limit_is_refused_as_overloaded() -> None:
    # The caller allows 4 calls in flight, the callee serves at most 2 from one peer.
    limits = {
        1: TransportLimits(concurrent_calls_per_peer_max=4),
        2: TransportLimits(concurrent_calls_per_peer_max=2),
    }

    async def main() -> None:
        handlers = {1: RecordingHandler(), 2: RecordingHandler()}
        release = trio.Event()

        async def slow(peer: int, body: bytes) -> bytes:
            await release.wait()
            return b"done"

        handlers[2].methods["slow"] = slow
        async with open_cluster([1, 2], handlers=handlers, limits=limits) as transports:
            outcomes: list[bytes | RpcErrorCode] = []

            async def one() -> None:
                try:
                    outcomes.append(await transports[1].call(2, "slow", b"", 5.0))
                except RpcError as error:
                    outcomes.append(error.code)

            with trio.fail_after(10):
                async with trio.open_nursery() as nursery:
                    for _ in range(4):
                        nursery.start_soon(one)
                    while len(outcomes) < 2:
                        await trio.sleep(0.01)
                    # The two over the callee's limit were refused at once, not queued.
                    assert outcomes == [RpcErrorCode.OVERLOADED] * 2
                    assert transports[2].statistics().peers[1].calls_in_flight_inbound == 2
                    release.set()
            assert outcomes.count(b"done") == 2
            assert transports[2].statistics().peers[1].calls_in_flight_inbound == 0

    trio.run(main)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_call_to_an_absent_peer_fails_fast_with_a_clear_error() -> None:
    async def main() -> None:
        transport = Transport(
            node_id=1,
            listen_host="127.0.0.1",
            listen_port=0,
            handler=RecordingHandler(),
            peer_addresses={2: ("127.0.0.1", _closed_port())},
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(transport.run)
            start_s = trio.current_time()
            with pytest.raises(PeerUnavailable) as first:
                await transport.call(2, "anything", b"", 30.0)
            assert "connect to 127.0.0.1" in str(first.value)
            # While backing off, a second call does not even wait for a dial.
            with pytest.raises(PeerUnavailable):
                await transport.call(2, "anything", b"", 30.0)
            assert trio.current_time() - start_s < 2.0
            with pytest.raises(PeerUnavailable, match="no address known"):
                await transport.call(99, "anything", b"", 30.0)
            assert not transport.send_nowait(99, Channel.RAFT, b"x")
            statistics = transport.statistics()
            assert statistics.messages_dropped_unknown_peer == 1
            assert statistics.peers[2].connect_failures >= 1
            assert not statistics.peers[2].connected
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_send_refuses_rpc_channel_and_oversized_messages() -> None:
    async def main() -> None:
        limits = TransportLimits(message_size_bytes_max=100, queue_bytes_max=1000)
        async with open_cluster([1, 2], limits=limits) as transports:
            with pytest.raises(ValueError):
                transports[1].send_nowait(2, Channel.RPC, b"x")
            with pytest.raises(ValueError):
                transports[1].send_nowait(2, Channel.RAFT, b"x" * 101)
            with pytest.raises(ValueError):
                await transports[1].call(2, "m", b"x" * 100, 1.0)

    trio.run(main)


def test_a_transport_that_is_not_running_refuses_calls_at_once() -> None:
    async def main() -> None:
        transport = Transport(
            node_id=1,
            listen_host="127.0.0.1",
            listen_port=0,
            handler=RecordingHandler(),
            peer_addresses={2: ("127.0.0.1", _closed_port())},
        )
        with trio.fail_after(1), pytest.raises(PeerUnavailable, match="not running"):
            await transport.call(2, "m", b"", 30.0)

    trio.run(main)
