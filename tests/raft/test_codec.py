"""Round trips of every message through the binary codec, and garbage that must be refused."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raftlog.raft.codec import (
    GATHER_BYTES_MIN,
    PAYLOAD_VIEW_MIN_BYTES,
    CodecError,
    decode,
    encode,
    encode_parts,
)
from raftlog.raft.entry import Entry, EntryKind
from raftlog.raft.heartbeat_batch import (
    GroupHeartbeat,
    GroupHeartbeatResponse,
    HeartbeatBatch,
    HeartbeatResponseBatch,
)
from raftlog.raft.messages import MESSAGE_TYPES, AppendEntries

u64 = st.integers(min_value=0, max_value=(1 << 64) - 1)
small = st.integers(min_value=0, max_value=1 << 20)


@st.composite
def entries(draw: st.DrawFn) -> tuple[Entry, ...]:
    start = draw(st.integers(min_value=1, max_value=1 << 40))
    count = draw(st.integers(min_value=0, max_value=5))
    return tuple(
        Entry(
            draw(u64),
            start + offset,
            draw(st.sampled_from(EntryKind)),
            draw(st.binary(max_size=40)),
        )
        for offset in range(count)
    )


def _strategy_for(annotation: str) -> st.SearchStrategy[object]:
    return {
        "int": u64,
        "bool": st.booleans(),
        "bytes": st.binary(max_size=64),
        "tuple[Entry, ...]": entries(),
        "tuple[int, ...]": st.lists(u64, max_size=6).map(tuple),
        "tuple[GroupHeartbeat, ...]": st.lists(
            st.builds(GroupHeartbeat, u64, u64, u64, u64, st.booleans()), max_size=5
        ).map(tuple),
        "tuple[GroupHeartbeatResponse, ...]": st.lists(
            st.builds(GroupHeartbeatResponse, u64, u64, u64), max_size=5
        ).map(tuple),
    }[annotation]


def _message_strategy(cls: type) -> st.SearchStrategy[object]:
    fields = {field.name: _strategy_for(str(field.type)) for field in attrs.fields(cls)}
    return st.builds(cls, **fields)


any_message = st.one_of(
    [_message_strategy(cls) for cls in (*MESSAGE_TYPES, HeartbeatBatch, HeartbeatResponseBatch)]
)


@settings(max_examples=400)
@given(any_message)
def test_every_message_round_trips(message: object) -> None:
    assert decode(encode(message)) == message  # type: ignore[arg-type]


@settings(max_examples=300)
@given(any_message, st.data())
def test_truncated_or_extended_encodings_are_refused(message: object, data: st.DataObject) -> None:
    encoded = encode(message)  # type: ignore[arg-type]
    cut = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))
    with pytest.raises(CodecError):
        decode(encoded[:cut])
    with pytest.raises(CodecError):
        decode(encoded + b"\x00")


@settings(max_examples=1000)
@given(st.binary(max_size=200))
def test_garbage_decodes_or_raises_codec_error_never_anything_else(garbage: bytes) -> None:
    try:
        message = decode(garbage)
    except CodecError:
        return
    assert decode(encode(message)) == message


def test_limits_are_checked_before_reading() -> None:
    huge_count = bytes([1, MESSAGE_TYPES.index(AppendEntries) + 1]) + bytes(6) + b"\xff\xff\x03"
    with pytest.raises(CodecError, match="count"):
        decode(huge_count)
    with pytest.raises(CodecError, match="exceeds"):
        decode(bytes(100), max_size_bytes=10)
    with pytest.raises(CodecError, match="version"):
        decode(b"\x09\x01")
    with pytest.raises(CodecError, match="tag"):
        decode(b"\x01\xee")


def test_integers_out_of_range_are_refused_when_encoding() -> None:
    with pytest.raises(CodecError):
        encode(AppendEntries(1, 2, -1, 0, 0, 0))


def test_non_contiguous_entries_are_refused() -> None:
    message = AppendEntries(
        1,
        2,
        3,
        4,
        3,
        0,
        (Entry(3, 5, EntryKind.DATA, b"a"), Entry(3, 7, EntryKind.DATA, b"b")),
    )
    with pytest.raises(CodecError, match="contiguous"):
        decode(encode(message))


@settings(max_examples=200)
@given(any_message, st.binary(max_size=8))
def test_a_routing_prefix_is_written_and_skipped_in_place(message: object, prefix: bytes) -> None:
    encoded = encode(message, prefix)  # type: ignore[arg-type]
    assert encoded == prefix + encode(message)  # type: ignore[arg-type]
    assert decode(bytes(encoded), start=len(prefix)) == message


@settings(max_examples=100)
@given(
    any_message,
    st.binary(max_size=8),
    st.lists(
        st.one_of(
            st.binary(max_size=40),
            st.integers(GATHER_BYTES_MIN - 1, GATHER_BYTES_MIN + 100).map(lambda n: b"p" * n),
        ),
        max_size=4,
    ),
)
def test_parts_are_the_encoding_with_large_payloads_by_reference(
    message: object, prefix: bytes, payloads: list[bytes]
) -> None:
    append = AppendEntries(
        1, 2, 3, 4, 5, 6, tuple(Entry(5, 5 + i, EntryKind.DATA, p) for i, p in enumerate(payloads))
    )
    for candidate in (message, append):
        parts = encode_parts(candidate, prefix)  # type: ignore[arg-type]
        assert b"".join(parts) == encode(candidate, prefix)  # type: ignore[arg-type]
    referenced = {id(part) for part in encode_parts(append, prefix)}
    for payload in payloads:
        assert (id(payload) in referenced) == (len(payload) >= GATHER_BYTES_MIN)


def test_a_start_outside_the_message_is_refused() -> None:
    encoded = bytes(encode(AppendEntries(1, 2, 1, 0, 0, 0)))
    for start in (-1, len(encoded) + 1):
        with pytest.raises(CodecError, match="outside"):
            decode(encoded, start=start)


def test_large_payloads_decode_as_read_only_views_of_an_immutable_message() -> None:
    small = b"s" * (PAYLOAD_VIEW_MIN_BYTES - 1)
    large = bytes(range(256)) * (PAYLOAD_VIEW_MIN_BYTES // 256 + 1)
    sent = AppendEntries(
        1, 2, 3, 4, 5, 6, (Entry(5, 5, EntryKind.DATA, small), Entry(5, 6, EntryKind.DATA, large))
    )
    received = bytearray(encode(sent))  # as a receive buffer that is reused afterwards
    decoded = decode(received)
    assert isinstance(decoded, AppendEntries) and decoded == sent
    small_payload, large_payload = (entry.payload for entry in decoded.entries)
    assert type(small_payload) is bytes
    assert isinstance(large_payload, memoryview) and large_payload.readonly
    received[:] = bytes(len(received))
    assert large_payload == large and small_payload == small
    assert hash(decoded.entries[1]) == hash(sent.entries[1])
