"""The sans-IO pieces: message framing, RPC envelopes, queues, limits and back-off."""

from __future__ import annotations

import itertools

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from raftlog.transport import ProtocolViolation, RpcErrorCode, TransportLimits
from raftlog.transport.framing import (
    MessageDecoder,
    MessageTooLarge,
    RpcFailure,
    RpcRequest,
    RpcResponse,
    decode_envelope,
    encode_failure,
    encode_request,
    encode_response,
    message_pieces,
)
from raftlog.transport.limits import reconnect_delay_s
from raftlog.transport.queues import ChannelQueue


@given(
    payloads=st.lists(st.binary(max_size=300), max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=20),
)
def test_decoder_returns_every_message_in_order_however_the_bytes_are_split(
    payloads: list[bytes], cuts: list[int]
) -> None:
    wire = b"".join(message_pieces(payloads))
    positions = sorted({0, len(wire), *(cut % (len(wire) + 1) for cut in cuts)})
    decoder = MessageDecoder(message_size_bytes_max=300)
    received: list[bytes] = []
    for start, end in itertools.pairwise(positions):
        received.extend(decoder.receive_data(wire[start:end]))
    assert received == payloads
    assert decoder.buffered_bytes == 0


def test_decoder_rejects_an_oversized_prefix_before_the_payload_arrives() -> None:
    decoder = MessageDecoder(message_size_bytes_max=1024)
    assert decoder.receive_data(b"".join(message_pieces([b"x" * 1024]))) == [b"x" * 1024]
    with pytest.raises(MessageTooLarge):
        # Only the 4-byte prefix: the decoder must refuse without waiting for 1025 bytes.
        decoder.receive_data((1025).to_bytes(4, "big"))


def test_decoder_buffers_a_partial_prefix() -> None:
    decoder = MessageDecoder(message_size_bytes_max=10)
    assert decoder.receive_data(b"\x00\x00") == []
    assert decoder.receive_data(b"\x00\x02a") == []
    assert decoder.receive_data(b"b\x00") == [b"ab"]
    assert decoder.buffered_bytes == 1


@given(
    call_id=st.integers(min_value=0, max_value=2**64 - 1),
    timeout_ms=st.integers(min_value=0, max_value=2**32 - 1),
    method=st.text(alphabet="abcdefghijklmnopqrstuvwxyz._/", min_size=1, max_size=255),
    body=st.binary(max_size=200),
)
def test_rpc_envelopes_round_trip(call_id: int, timeout_ms: int, method: str, body: bytes) -> None:
    assert decode_envelope(encode_request(call_id, timeout_ms, method, body)) == RpcRequest(
        call_id, timeout_ms, method, body
    )
    assert decode_envelope(encode_response(call_id, body)) == RpcResponse(call_id, body)
    assert decode_envelope(encode_failure(call_id, RpcErrorCode.OVERLOADED, method)) == (
        RpcFailure(call_id, RpcErrorCode.OVERLOADED, method)
    )


@given(garbage=st.binary(max_size=40))
def test_garbage_envelopes_are_protocol_violations_not_crashes(garbage: bytes) -> None:
    try:
        envelope = decode_envelope(garbage)
    except ProtocolViolation:
        return
    assert isinstance(envelope, RpcRequest | RpcResponse | RpcFailure)
    assert envelope.call_id == int.from_bytes(garbage[1:9], "big")


def test_method_names_are_bounded() -> None:
    with pytest.raises(ValueError):
        encode_request(1, 1, "", b"")
    with pytest.raises(ValueError):
        encode_request(1, 1, "m" * 256, b"")


def test_queue_refuses_at_its_message_and_byte_bounds_and_counts_drops() -> None:
    queue = ChannelQueue(messages_max=3, bytes_max=10)
    assert queue.put_nowait(b"1234")
    assert queue.put_nowait(b"5678")
    assert not queue.put_nowait(b"abc")  # 11 bytes > 10
    assert queue.put_nowait(b"ab")
    assert not queue.put_nowait(b"")  # 4th message > 3
    statistics = queue.statistics()
    assert (statistics.depth_messages, statistics.depth_bytes) == (3, 10)
    assert statistics.messages_dropped_full == 2
    assert queue.take(bytes_max=5) == [b"1234"]
    assert queue.take(bytes_max=1) == [b"5678"]  # at least one, even if larger
    assert queue.drop_all() == 1
    assert queue.statistics().messages_dropped_disconnected == 1


def test_queue_put_waits_for_room_and_keeps_fifo_order() -> None:
    async def main() -> None:
        queue = ChannelQueue(messages_max=1, bytes_max=100)
        queue.put_nowait(b"first")
        finished: list[bytes] = []

        async def put(payload: bytes) -> None:
            await queue.put(payload)
            finished.append(payload)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(put, b"second")
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(put, b"third")
            await trio.testing.wait_all_tasks_blocked()
            assert finished == []
            assert not queue.put_nowait(b"jumps the line")
            assert queue.take(100) == [b"first"]
            await trio.testing.wait_all_tasks_blocked()
            assert finished == [b"second"]
            assert queue.take(100) == [b"second"]
            await trio.testing.wait_all_tasks_blocked()
            assert queue.take(100) == [b"third"]
        assert finished == [b"second", b"third"]

    trio.run(main)


@pytest.mark.parametrize(
    "overrides",
    [
        {"message_size_bytes_max": 0},
        {"queue_bytes_max": 10, "message_size_bytes_max": 11},
        {"keepalive_interval_s": 5.0, "keepalive_timeout_s": 5.0},
        {"reconnect_backoff_initial_s": 2.0, "reconnect_backoff_max_s": 1.0},
        {"frame_size_bytes_max": 1000},
        {"stream_window_bytes": 2**31},
        {"connect_timeout_s": -1.0},
    ],
)
def test_limits_refuse_nonsense(overrides: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        TransportLimits(**overrides)  # type: ignore[arg-type]


def test_backoff_doubles_is_capped_and_jittered_by_the_injected_source() -> None:
    limits = TransportLimits(reconnect_backoff_initial_s=0.1, reconnect_backoff_max_s=1.0)
    no_jitter = [reconnect_delay_s(attempt, limits, lambda: 0.999999) for attempt in range(6)]
    assert no_jitter == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0], rel=1e-5)
    assert reconnect_delay_s(3, limits, lambda: 0.0) == pytest.approx(0.4)
    assert reconnect_delay_s(10_000, limits, lambda: 0.5) == pytest.approx(0.75)


def test_hyperframe_repr_fix_is_applied_and_output_identical() -> None:
    import binascii

    import hyperframe.frame

    from raftlog.transport import _h2_speedups

    assert _h2_speedups.APPLIED
    for data in (b"", b"a", bytes(range(10)), bytes(range(11)), bytes(70_000)):
        full = binascii.hexlify(data).decode("ascii")
        expected = (
            "None" if not data else "<hex:" + (full[:20] + "..." if len(full) > 20 else full) + ">"
        )
        assert hyperframe.frame._raw_data_repr(data) == expected


def test_a_data_frame_repr_is_output_identical_and_does_not_serialize_the_payload() -> None:
    import binascii

    from hyperframe.frame import DataFrame

    from raftlog.transport import _h2_speedups

    assert _h2_speedups.APPLIED
    for payload in (b"", b"ab", bytes(range(10)), bytes(range(11)), bytes(200_000)):
        for pad_length in (None, 0, 3, 40):
            frame = DataFrame(3, memoryview(payload))
            if pad_length is not None:
                frame.flags.add("PADDED")
                frame.pad_length = pad_length
            body = frame.serialize_padding_data() + payload + b"\0" * (pad_length or 0)
            shown = binascii.hexlify(body[:11]).decode("ascii")
            shown = shown[:20] + "..." if len(shown) > 20 else shown
            frame.data = memoryview(payload)  # serialize_padding_data left it alone; be sure
            expected_body = "None" if not body else f"<hex:{shown}>"
            assert repr(frame) == f"DataFrame(stream_id=3, flags={frame.flags!r}): {expected_body}"
            # The original turned the payload into a new bytes copy to show 10 bytes of it.
            assert isinstance(frame.data, memoryview)
