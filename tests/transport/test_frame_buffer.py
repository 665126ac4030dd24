"""`ChunkedFrameBuffer` yields what h2's `FrameBuffer` yields, however the bytes are cut."""

from __future__ import annotations

import itertools

from h2.frame_buffer import FrameBuffer
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    SettingsFrame,
    WindowUpdateFrame,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from raftlog.transport import frame_buffer
from raftlog.transport.frame_buffer import ChunkedFrameBuffer

PREAMBLE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MAX_FRAME = 4096


def _data_frame(stream_id: int, payload: bytes, pad_length: int | None, end: bool) -> bytes:
    frame = DataFrame(stream_id, payload)
    if pad_length is not None:
        frame.flags.add("PADDED")
        frame.pad_length = pad_length
    if end:
        frame.flags.add("END_STREAM")
    return frame.serialize()


def _header_block(stream_id: int, block: bytes, pieces: int) -> bytes:
    size = max(1, len(block) // pieces)
    parts = [block[i : i + size] for i in range(0, len(block), size)] or [b""]
    first = HeadersFrame(stream_id, parts[0])
    frames: list[Frame] = [first]
    frames += [ContinuationFrame(stream_id, part) for part in parts[1:]]
    frames[-1].flags.add("END_HEADERS")
    return b"".join(frame.serialize() for frame in frames)


def _other_frame(kind: int, value: int) -> bytes:
    if kind == 0:
        return SettingsFrame(0, settings={4: value}).serialize()
    if kind == 1:
        return PingFrame(0, opaque_data=value.to_bytes(8, "big")).serialize()
    if kind == 2:
        return WindowUpdateFrame(value % 7 + 1, window_increment=value % 1000 + 1).serialize()
    return GoAwayFrame(0, last_stream_id=value % 9, error_code=0).serialize()


stream_ids = st.integers(1, 9)
frames = st.one_of(
    st.builds(
        _data_frame,
        stream_ids,
        st.binary(max_size=3000),
        st.one_of(st.none(), st.integers(0, 40)),
        st.booleans(),
    ),
    st.builds(_header_block, stream_ids, st.binary(max_size=200), st.integers(1, 4)),
    st.builds(_other_frame, st.integers(0, 3), st.integers(0, 2**31 - 1)),
)
oddities = st.sampled_from(["none", "oversized", "bad padding", "bad preamble"])


def _outcome(buffer: FrameBuffer, chunks: list[bytes | bytearray]) -> list[object]:
    seen: list[object] = []
    try:
        for chunk in chunks:
            buffer.add_data(chunk)
            buffer.max_frame_size = MAX_FRAME
            for frame in buffer:
                if isinstance(frame, DataFrame):
                    seen.append(
                        ("DATA", frame.stream_id, sorted(frame.flags), bytes(frame.data),
                         frame.pad_length, frame.body_len, frame.flow_controlled_length)
                    )  # fmt: skip
                else:
                    seen.append((type(frame).__name__, frame.stream_id, sorted(frame.flags),
                                 frame.serialize()))  # fmt: skip
    except Exception as error:
        seen.append(("raised", type(error).__name__, str(error)))
    return seen


@settings(max_examples=300, deadline=None)
@given(st.lists(frames, max_size=12), oddities, st.data())
def test_both_buffers_yield_the_same_frames_and_errors(
    wire_frames: list[bytes], oddity: str, data: st.DataObject
) -> None:
    wire = PREAMBLE + b"".join(wire_frames)
    if oddity == "oversized":
        wire += _data_frame(1, bytes(MAX_FRAME + 1), None, False)
    elif oddity == "bad padding":
        # PADDED with a pad length as long as the whole body.
        wire += b"\x00\x00\x03\x00\x08\x00\x00\x00\x01" + b"\x05ab"
    elif oddity == "bad preamble":
        wire = b"PRX" + wire[3:]
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=20)))
    edges = [0, *cuts, len(wire)]
    chunks: list[bytes | bytearray] = []
    for index, (start, end) in enumerate(itertools.pairwise(edges)):
        piece = wire[start:end]
        chunks.append(bytearray(piece) if index % 3 == 2 else piece)
    expected = _outcome(FrameBuffer(server=True), chunks)
    assert _outcome(ChunkedFrameBuffer(server=True), chunks) == expected


def test_a_data_frame_inside_one_read_is_a_view_of_it() -> None:
    assert frame_buffer.USABLE
    read = PREAMBLE + _data_frame(1, b"payload" * 100, None, False)
    buffer = ChunkedFrameBuffer(server=True)
    buffer.add_data(read)
    buffer.max_frame_size = MAX_FRAME
    [frame] = list(buffer)
    assert isinstance(frame.data, memoryview) and frame.data.obj is read
    assert bytes(frame.data) == b"payload" * 100


def test_a_mutable_read_is_copied_once_so_reusing_it_changes_nothing() -> None:
    read = bytearray(PREAMBLE + _data_frame(1, b"abc", None, False))
    buffer = ChunkedFrameBuffer(server=True)
    buffer.add_data(read)
    buffer.max_frame_size = MAX_FRAME
    read[-3:] = b"xyz"
    [frame] = list(buffer)
    assert bytes(frame.data) == b"abc"
