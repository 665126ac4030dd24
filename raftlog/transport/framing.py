"""Length-prefixed messages inside one HTTP/2 stream, and the RPC envelope.

A channel stream carries `u32 big-endian length` + `payload`, back to back. Putting many
messages in one stream (instead of a stream per message) costs 4 bytes per message and no
HEADERS frame, and lets the writer pack everything queued into a few DATA frames.

The decoder is sans-IO (bytes in, messages out) and checks the length prefix against the
limit before it buffers a byte of the payload, so a hostile peer cannot make us allocate.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

import attrs

from raftlog.transport.errors import ProtocolViolation, RpcErrorCode

PREFIX_SIZE_BYTES = 4
_PREFIX = struct.Struct(">I")


class MessageTooLarge(ProtocolViolation):
    """A length prefix announced a message over the limit."""


@attrs.frozen
class Gathered:
    """One message sent as several buffers back to back, never joined by the sender: an
    append's entries go out from the very `bytes` the log holds, not from a copy."""

    parts: tuple[bytes | bytearray, ...]
    size_bytes: int

    @classmethod
    def of(cls, parts: list[bytes | bytearray]) -> Gathered:
        return cls(tuple(parts), sum(len(part) for part in parts))

    def __len__(self) -> int:
        return self.size_bytes

    def __bytes__(self) -> bytes:
        return b"".join(self.parts)


Payload = bytes | bytearray | Gathered
"""What a channel message may be handed to the transport as; it arrives as `bytes`."""


def message_pieces(payloads: Iterable[Payload]) -> list[memoryview]:
    """Each payload's length prefix and the payload itself, as views (no copy): the bytes of
    a channel stream are these pieces back to back."""
    pieces: list[memoryview] = []
    for payload in payloads:
        pieces.append(memoryview(_PREFIX.pack(len(payload))))
        parts = payload.parts if isinstance(payload, Gathered) else (payload,)
        pieces.extend(memoryview(part) for part in parts if part)
    return pieces


class MessageDecoder:
    """Turns the bytes of one channel stream into whole messages.

    A message that arrives whole in one chunk is copied out of it once. One spread over
    several chunks (an append of megabytes arrives in 256 KiB DATA frames) is kept as
    views of those chunks and joined once, when its last byte arrives, so it is never
    copied piece by piece into a growing buffer. The chunks must not change afterwards
    (DATA payloads are views of the `bytes` each socket read returned: `frame_buffer`).
    """

    def __init__(self, message_size_bytes_max: int) -> None:
        self._message_size_bytes_max = message_size_bytes_max
        self._prefix = bytearray()
        """Part of a length prefix, when a chunk ended inside one."""
        self._parts: list[memoryview] = []
        """The message in progress, so far."""
        self._parts_bytes = 0
        self._missing_bytes = 0
        """What the message in progress still lacks (0: no message in progress)."""

    @property
    def buffered_bytes(self) -> int:
        return len(self._prefix) + self._parts_bytes

    def receive_data(self, data: bytes | memoryview) -> list[bytes]:
        """Feed bytes; return the messages they complete, in order.

        Raises MessageTooLarge as soon as a prefix over the limit is seen.
        """
        messages: list[bytes] = []
        with memoryview(data) as view:
            position, end = 0, len(view)
            while position < end:
                if self._missing_bytes:
                    position = self._continue_message(view, position, messages)
                    continue
                if self._prefix or end - position < PREFIX_SIZE_BYTES:
                    taken = min(PREFIX_SIZE_BYTES - len(self._prefix), end - position)
                    self._prefix += view[position : position + taken]
                    position += taken
                    if len(self._prefix) < PREFIX_SIZE_BYTES:
                        break
                    (size_bytes,) = _PREFIX.unpack(self._prefix)
                    self._prefix.clear()
                else:
                    (size_bytes,) = _PREFIX.unpack_from(view, position)
                    position += PREFIX_SIZE_BYTES
                if size_bytes > self._message_size_bytes_max:
                    raise MessageTooLarge(
                        f"message of {size_bytes} bytes exceeds {self._message_size_bytes_max}"
                    )
                if end - position >= size_bytes:
                    messages.append(bytes(view[position : position + size_bytes]))
                    position += size_bytes
                else:
                    self._missing_bytes = size_bytes
                    position = self._continue_message(view, position, messages)
        return messages

    def _continue_message(self, view: memoryview, position: int, messages: list[bytes]) -> int:
        taken = min(self._missing_bytes, len(view) - position)
        self._parts.append(view[position : position + taken])
        self._parts_bytes += taken
        self._missing_bytes -= taken
        if not self._missing_bytes:
            messages.append(b"".join(self._parts))
            self._parts.clear()
            self._parts_bytes = 0
        return position + taken


# --- RPC envelope -------------------------------------------------------------------
# kind u8 | call_id u64 | then per kind:
#   REQUEST:  timeout_ms u32 | method_size u8 | method (ascii) | body
#   RESPONSE: body
#   ERROR:    code u16 | message (utf-8)

KIND_REQUEST = 0
KIND_RESPONSE = 1
KIND_ERROR = 2
_HEAD = struct.Struct(">BQ")
_REQUEST = struct.Struct(">IB")
_ERROR = struct.Struct(">H")
METHOD_SIZE_BYTES_MAX = 255
RPC_OVERHEAD_BYTES_MAX = _HEAD.size + _REQUEST.size + METHOD_SIZE_BYTES_MAX


@attrs.frozen
class RpcRequest:
    call_id: int
    timeout_ms: int
    """The caller's deadline, so the callee can stop working for an answer nobody awaits."""
    method: str
    body: bytes


@attrs.frozen
class RpcResponse:
    call_id: int
    body: bytes


@attrs.frozen
class RpcFailure:
    call_id: int
    code: RpcErrorCode
    message: str


RpcEnvelope = RpcRequest | RpcResponse | RpcFailure


def encode_request(call_id: int, timeout_ms: int, method: str, body: bytes) -> bytes:
    method_bytes = method.encode("ascii")
    if not 0 < len(method_bytes) <= METHOD_SIZE_BYTES_MAX:
        raise ValueError(f"method name must be 1..{METHOD_SIZE_BYTES_MAX} ascii bytes")
    head = _HEAD.pack(KIND_REQUEST, call_id) + _REQUEST.pack(timeout_ms, len(method_bytes))
    return head + method_bytes + body


def encode_response(call_id: int, body: bytes) -> bytes:
    return _HEAD.pack(KIND_RESPONSE, call_id) + body


def encode_failure(call_id: int, code: RpcErrorCode, message: str) -> bytes:
    return _HEAD.pack(KIND_ERROR, call_id) + _ERROR.pack(code) + message.encode("utf-8")[:1024]


def decode_envelope(data: bytes) -> RpcEnvelope:
    """Parse one RPC-channel message; a malformed one is the sender's protocol violation."""
    if len(data) < _HEAD.size:
        raise ProtocolViolation("rpc envelope shorter than its header")
    kind, call_id = _HEAD.unpack_from(data)
    rest = memoryview(data)[_HEAD.size :]
    if kind == KIND_RESPONSE:
        return RpcResponse(call_id, bytes(rest))
    if kind == KIND_REQUEST:
        if len(rest) < _REQUEST.size:
            raise ProtocolViolation("rpc request shorter than its header")
        timeout_ms, method_size = _REQUEST.unpack_from(rest)
        method_end = _REQUEST.size + method_size
        if method_size == 0 or len(rest) < method_end:
            raise ProtocolViolation("rpc request with a bad method name")
        try:
            method = bytes(rest[_REQUEST.size : method_end]).decode("ascii")
        except UnicodeDecodeError as error:
            raise ProtocolViolation("rpc method name is not ascii") from error
        return RpcRequest(call_id, timeout_ms, method, bytes(rest[method_end:]))
    if kind == KIND_ERROR:
        if len(rest) < _ERROR.size:
            raise ProtocolViolation("rpc error shorter than its header")
        (code_value,) = _ERROR.unpack_from(rest)
        try:
            code = RpcErrorCode(code_value)
        except ValueError as error:
            raise ProtocolViolation(f"unknown rpc error code {code_value}") from error
        message = bytes(rest[_ERROR.size :]).decode("utf-8", errors="replace")
        return RpcFailure(call_id, code, message)
    raise ProtocolViolation(f"unknown rpc envelope kind {kind}")
