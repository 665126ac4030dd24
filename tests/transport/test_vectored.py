"""Gather writes put every byte on the wire once, in order, whatever the kernel takes per call."""

from __future__ import annotations

import random

import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from raftlog.transport import vectored
from raftlog.transport.vectored import send_buffers


def _buffers(seed: int, count: int, largest: int) -> list[bytes | memoryview]:
    generator = random.Random(seed)
    buffers: list[bytes | memoryview] = []
    for index in range(count):
        data = generator.randbytes(generator.randrange(largest + 1))
        buffers.append(memoryview(data)[1:] if index % 3 == 0 and data else data)
    return buffers


async def _send_and_receive(
    sender: trio.abc.Stream, receiver: trio.abc.Stream, buffers: list[bytes | memoryview]
) -> bytes:
    expected = sum(len(buffer) for buffer in buffers)
    received = bytearray()

    async def read() -> None:
        while len(received) < expected:
            await trio.sleep(0.001)  # a slow reader: the sender meets a full socket buffer
            received.extend(await receiver.receive_some(64 * 1024))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read)
        await send_buffers(sender, buffers)
    return bytes(received)


async def _tcp_pair() -> tuple[trio.SocketStream, trio.SocketStream]:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    client = await trio.open_tcp_stream("127.0.0.1", port)
    server = await listeners[0].accept()
    await listeners[0].aclose()
    return client, server


async def _over_tcp(buffers: list[bytes | memoryview]) -> bytes:
    client, server = await _tcp_pair()
    async with client, server:
        return await _send_and_receive(client, server, buffers)


def test_a_tcp_socket_gets_every_byte_in_order_across_partial_writes() -> None:
    # 8 MiB in pieces up to 256 KiB: far more than the socket buffers take in one call.
    buffers = _buffers(seed=1, count=64, largest=256 * 1024)
    assert trio.run(_over_tcp, buffers) == b"".join(buffers)


def test_more_buffers_than_one_call_may_take(monkeypatch) -> None:
    monkeypatch.setattr(vectored, "IOV_MAX", 7)
    buffers = _buffers(seed=2, count=100, largest=300)
    assert trio.run(_over_tcp, buffers) == b"".join(buffers)


def test_other_streams_get_the_joined_bytes() -> None:
    buffers = _buffers(seed=3, count=20, largest=5000)

    async def main() -> bytes:
        sender, receiver = trio.testing.memory_stream_pair()
        return await _send_and_receive(sender, receiver, buffers)

    assert trio.run(main) == b"".join(buffers)


@given(
    st.lists(st.binary(max_size=40), max_size=12),
    st.data(),
)
def test_what_is_left_after_a_partial_write(pieces: list[bytes], data: st.DataObject) -> None:
    pending = [memoryview(piece) for piece in pieces if piece]
    whole = b"".join(pending)
    sent = data.draw(st.integers(0, len(whole)))
    assert b"".join(vectored.remaining_after(pending, sent)) == whole[sent:]
    assert all(len(piece) for piece in vectored.remaining_after(pending, sent))
