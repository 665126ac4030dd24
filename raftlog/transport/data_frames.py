"""DATA frames written beside h2, so a payload is not copied on its way to the socket.

h2 copies each DATA frame's payload four times (into the `bytes` it requires, into the
frame body, into header + body, into its output buffer) and once more handing that buffer
out. On a leader sending megabytes per second to two followers, those copies were about a
fifth of its CPU. What h2 does for a DATA frame besides copying is small: the connection's
and the stream's state machines take a SEND_DATA input, and both flow-control windows
shrink by the frame's size. `account_data_frame` does exactly that and returns the
frame's 9-byte header; the session then sends header and payload views itself, after
whatever h2 had queued before them, so frames keep their order on the wire.

This leans on h2 attributes that are not its documented API, so it is checked once, at
import, against h2's own `send_data` on twin connections: same bytes out, same windows,
same stream state. If a future h2 differs, `AVAILABLE` is False and the session falls back
to `send_data`.
"""

from __future__ import annotations

import struct

import h2.config
import h2.connection
import h2.exceptions
from h2.connection import ConnectionInputs
from h2.stream import StreamInputs

_HEADER = struct.Struct(">HBBBL")  # 24-bit length, type, flags, stream id (RFC 9113 4.1)
_TYPE_DATA = 0x0


def account_data_frame(
    connection: h2.connection.H2Connection, stream_id: int, size_bytes: int
) -> bytes:
    """Record in h2's state that a DATA frame of `size_bytes` (no flags, no padding) is sent
    on `stream_id`, with h2's own checks; return the frame header to send before it."""
    if size_bytes > connection.local_flow_control_window(stream_id):
        raise h2.exceptions.FlowControlError(
            f"cannot send {size_bytes} bytes on stream {stream_id}: window too small"
        )
    if size_bytes > connection.max_outbound_frame_size:
        raise h2.exceptions.FrameTooLargeError(
            f"cannot send frame size {size_bytes}, max is {connection.max_outbound_frame_size}"
        )
    connection.state_machine.process_input(ConnectionInputs.SEND_DATA)
    stream = connection.streams[stream_id]
    stream.state_machine.process_input(StreamInputs.SEND_DATA)
    stream.outbound_flow_control_window -= size_bytes
    connection.outbound_flow_control_window -= size_bytes
    return _HEADER.pack(
        (size_bytes >> 8) & 0xFFFF, size_bytes & 0xFF, _TYPE_DATA, 0, stream_id & 0x7FFFFFFF
    )


def _open_stream() -> h2.connection.H2Connection:
    connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    connection.initiate_connection()
    connection.send_headers(
        1, [(":method", "POST"), (":path", "/"), (":scheme", "http"), (":authority", "check")]
    )
    return connection


def _state(connection: h2.connection.H2Connection) -> tuple[object, ...]:
    stream = connection.streams[1]
    return (
        connection.outbound_flow_control_window,
        connection.local_flow_control_window(1),
        connection.state_machine.state,
        stream.state_machine.state,
    )


def _matches_h2() -> bool:
    """Whether `account_data_frame` + header + payload is what h2's send_data writes."""
    try:
        ours, theirs = _open_stream(), _open_stream()
        for payload in (b"\x01", bytes(range(256)) * 40, b"x" * 16_384):
            theirs.send_data(1, payload)
            wire = ours.data_to_send() + account_data_frame(ours, 1, len(payload)) + payload
            if wire != theirs.data_to_send() or _state(ours) != _state(theirs):
                return False
        return True
    except Exception:  # any change in h2's internals means: do not use this
        return False


AVAILABLE = _matches_h2()
