"""Sans-IO Kafka server connection: bytes in, request events out, response bytes out.

Like h11, this object owns no socket, clock or thread. The server feeds it whatever it
read (`receive_data`), pulls parsed requests (`next_request`) and asks it to frame
responses (`send_response`). It enforces the framing rules a Kafka broker enforces:

* the frame size is checked from its 4-byte length prefix *before* any of the body is
  buffered, so a peer cannot make us hold more than `max_frame_bytes`;
* every frame body is copied exactly once (from the received chunks into a buffer of
  the frame's exact size); the decoded request's `records` are slices of that buffer;
* requests come out in the order they arrived, however they were split or batched;
* responses must be sent in request order (Kafka clients match them by order and
  correlation id); `send_response` refuses to answer out of turn.
"""

from __future__ import annotations

import collections
import enum
import struct
from typing import Final

import attrs

from raftlog.protocol.api_keys import API_SPECS, ApiKey, ApiSpec
from raftlog.protocol.errors import DecodeError, ErrorCode
from raftlog.protocol.headers import encode_response_header, peek_request_ids
from raftlog.protocol.messages._runtime import Message
from raftlog.protocol.messages.generated.api_versions_response import (
    ApiVersion,
    ApiVersionsResponse,
)
from raftlog.protocol.messages.generated.request_header import RequestHeader
from raftlog.protocol.primitives import Output

__all__ = [
    "CONNECTION_CLOSED",
    "DEFAULT_MAX_FRAME_BYTES",
    "NEED_DATA",
    "ConnectionStatistics",
    "ErrorAction",
    "LocalProtocolError",
    "ProtocolError",
    "RequestReceived",
    "ServerConnection",
]

DEFAULT_MAX_FRAME_BYTES: Final = 100 * 1024 * 1024
"""Kafka's `socket.request.max.bytes` default."""

_INT32 = struct.Struct(">i")


class _Sentinel:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


NEED_DATA: Final = _Sentinel("NEED_DATA")
"""`next_request()` needs more bytes before it can return another event."""

CONNECTION_CLOSED: Final = _Sentinel("CONNECTION_CLOSED")
"""The peer closed cleanly (EOF on a frame boundary) and every request was handed out."""


class LocalProtocolError(RuntimeError):
    """Our own side broke the rules: e.g. answered out of order, or twice."""


class ErrorAction(enum.Enum):
    RESPOND = "respond"
    """Send `send_error_response(event)` and keep the connection."""
    CLOSE = "close"
    """Close the connection; nothing sensible can be answered."""


@attrs.frozen(eq=False)
class RequestReceived:
    """One complete, parsed request."""

    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    """As sent; None when the client sent a null client id."""
    header_tagged_fields: dict[int, bytes] | None
    """Raw tagged fields of a v2 header (none are defined today); None when absent."""
    header_version: int
    body: Message
    """The generated request object, e.g. `ProduceRequest`; its records are zero-copy."""
    frame_bytes: int
    """Size of the frame after its length prefix: what this request cost to buffer."""
    expects_response: bool
    """False only for Produce with acks=0, which Kafka never answers."""


@attrs.frozen(eq=False)
class ProtocolError:
    """A frame that cannot be served, and what to do about it."""

    action: ErrorAction
    error_code: ErrorCode
    reason: str
    """For logs: what was wrong, with offsets where they help."""
    api_key: int | None = None
    api_version: int | None = None
    correlation_id: int | None = None
    _response: bytes | None = attrs.field(default=None, repr=False, alias="response")

    @property
    def expects_response(self) -> bool:
        return self.action is ErrorAction.RESPOND


@attrs.frozen
class ConnectionStatistics:
    bytes_received: int
    frames_received: int
    requests_handed_out: int
    buffered_bytes: int
    """Bytes held in complete-but-unread frames plus the partial frame."""
    pending_frames: int
    awaiting_responses: int


Event = RequestReceived | ProtocolError | _Sentinel


class ServerConnection:
    """The Kafka server side of one TCP connection, without the I/O."""

    def __init__(
        self,
        supported_versions: dict[int, tuple[int, int]],
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    ) -> None:
        if max_frame_bytes < 8:
            raise ValueError(f"max_frame_bytes must be at least 8, not {max_frame_bytes}")
        for api_key, (low, high) in supported_versions.items():
            spec = API_SPECS.get(api_key)
            if spec is None:
                raise ValueError(f"api key {api_key} is not in the Kafka schemas")
            if not spec.min_version <= low <= high <= spec.max_version:
                raise ValueError(
                    f"{spec.name} versions {low}-{high} are not within the schemas' "
                    f"{spec.min_version}-{spec.max_version}"
                )
        self.supported_versions = dict(supported_versions)
        self.max_frame_bytes = max_frame_bytes
        self._length = bytearray()
        self._parts: list[memoryview | bytes] = []
        """The frame in progress so far: views of the chunks it came in (kept, not copied,
        when they are immutable `bytes`), joined once when it is whole."""
        self._parts_bytes = 0
        self._missing = 0
        """Bytes the frame in progress still lacks; 0 when none is in progress."""
        self._frames: collections.deque[bytes | bytearray] = collections.deque()
        self._frames_bytes = 0
        self._fatal: ProtocolError | None = None
        self._eof = False
        self._awaiting: collections.deque[RequestReceived | ProtocolError] = collections.deque()
        self._bytes_received = 0
        self._frames_received = 0
        self._handed_out = 0

    # -- input -------------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes read from the socket; `b""` means the peer closed (EOF)."""
        if not data:
            self._eof = True
            return
        if self._fatal is not None or self._eof:
            return  # the connection is going away; nothing more will be parsed
        self._bytes_received += len(data)
        view = memoryview(data).cast("B")
        immutable = type(data) is bytes
        pos = 0
        end = len(view)
        while pos < end and self._fatal is None:
            if not self._missing:
                need = 4 - len(self._length)
                self._length += view[pos : pos + need]
                pos += min(need, end - pos)
                if len(self._length) == 4:
                    size = _INT32.unpack(self._length)[0]
                    self._length.clear()
                    if 8 <= size <= self.max_frame_bytes and end - pos >= size:
                        # The whole frame is in this chunk: one copy, no zero-filled buffer.
                        self._queue_frame(view[pos : pos + size].tobytes())
                        pos += size
                    else:
                        self._start_frame(size)
                continue
            take = min(self._missing, end - pos)
            piece = view[pos : pos + take]
            self._parts.append(piece if immutable else piece.tobytes())
            self._parts_bytes += take
            self._missing -= take
            pos += take
            if not self._missing:
                self._finish_frame()

    def _start_frame(self, size: int) -> None:
        if size < 8 or size > self.max_frame_bytes:
            if size < 0:
                reason = f"negative frame size {size}"
            elif size < 8:
                reason = f"frame of {size} bytes is too small for a request header"
            else:
                reason = f"frame of {size} bytes exceeds the limit of {self.max_frame_bytes}"
            self._fatal = ProtocolError(ErrorAction.CLOSE, ErrorCode.INVALID_REQUEST, reason)
            return
        self._missing = size

    def _finish_frame(self) -> None:
        frame = b"".join(self._parts)
        self._parts.clear()
        self._parts_bytes = 0
        self._queue_frame(frame)

    def _queue_frame(self, frame: bytes | bytearray) -> None:
        self._frames.append(frame)
        self._frames_bytes += len(frame)
        self._frames_received += 1

    # -- events ------------------------------------------------------------------------

    def next_request(self) -> Event:
        """The next event: RequestReceived, ProtocolError, NEED_DATA or CONNECTION_CLOSED.

        Requests that arrived before a fatal framing error still come out first.
        """
        if self._frames:
            frame = self._frames.popleft()
            self._frames_bytes -= len(frame)
            event = self._parse(frame)
            if event.expects_response:
                self._awaiting.append(event)
            if isinstance(event, ProtocolError) and event.action is ErrorAction.CLOSE:
                self._fatal = event
                self._frames.clear()
                self._frames_bytes = 0
            else:
                self._handed_out += 1
            return event
        if self._fatal is not None:
            return self._fatal
        if self._eof:
            if self._missing or self._length:
                self._fatal = ProtocolError(
                    ErrorAction.CLOSE,
                    ErrorCode.NETWORK_EXCEPTION,
                    "peer closed the connection in the middle of a frame",
                )
                return self._fatal
            return CONNECTION_CLOSED
        return NEED_DATA

    def _parse(self, frame: bytes | bytearray) -> RequestReceived | ProtocolError:
        buf = memoryview(frame)
        api_key, api_version, correlation_id = peek_request_ids(buf)
        spec = API_SPECS.get(api_key)
        supported = self.supported_versions.get(api_key)
        if spec is None or supported is None:
            return ProtocolError(
                ErrorAction.CLOSE,
                ErrorCode.INVALID_REQUEST,
                f"api key {api_key} is unknown or not served",
                api_key,
                api_version,
                correlation_id,
            )
        if not supported[0] <= api_version <= supported[1]:
            return self._unsupported_version(spec, api_version, correlation_id, supported)
        header_version = spec.request_header_version(api_version)
        try:
            header, pos = RequestHeader.decode_from(buf, 0, header_version)
        except DecodeError as error:
            return ProtocolError(
                ErrorAction.CLOSE,
                ErrorCode.INVALID_REQUEST,
                f"bad request header: {error}",
                api_key,
                api_version,
                correlation_id,
            )
        try:
            body, _ = spec.request_class.decode_from(buf, pos, api_version)
        except DecodeError as error:
            # Kafka ignores trailing bytes after a request body, and so do we.
            return self._error(
                spec, api_version, correlation_id, ErrorCode.INVALID_REQUEST, str(error)
            )
        expects_response = not (api_key == ApiKey.PRODUCE and getattr(body, "acks", 1) == 0)
        return RequestReceived(
            api_key=api_key,
            api_version=api_version,
            correlation_id=correlation_id,
            client_id=header.client_id,
            header_tagged_fields=header.unknown_tagged_fields,
            header_version=header_version,
            body=body,
            frame_bytes=len(frame),
            expects_response=expects_response,
        )

    def _unsupported_version(
        self, spec: ApiSpec, api_version: int, correlation_id: int, supported: tuple[int, int]
    ) -> ProtocolError:
        reason = f"{spec.name} v{api_version} is not served (served: {supported[0]}-{supported[1]})"
        if spec.api_key == ApiKey.API_VERSIONS:
            # Like Kafka: answer with a v0 response listing what we serve, so the client
            # can retry with a version we speak.
            response = self._frame_bytes(
                spec.api_key, 0, correlation_id, self.api_versions_response(35)
            )
            return ProtocolError(
                ErrorAction.RESPOND,
                ErrorCode.UNSUPPORTED_VERSION,
                reason,
                spec.api_key,
                api_version,
                correlation_id,
                response=response,
            )
        return self._error(spec, api_version, correlation_id, ErrorCode.UNSUPPORTED_VERSION, reason)

    def _error(
        self,
        spec: ApiSpec,
        api_version: int,
        correlation_id: int,
        code: ErrorCode,
        reason: str,
    ) -> ProtocolError:
        """Answer with a top-level error code when this response version has one, else close.

        Kafka itself closes the connection on both unsupported versions and unparsable
        bodies; answering is kinder where the response can say it.
        """
        response_class = spec.response_class
        within_schema = spec.min_version <= api_version <= spec.max_version
        if within_schema and response_class.has_field("error_code", api_version):
            body = response_class()
            body.error_code = int(code)  # type: ignore[attr-defined]
            response = self._frame_bytes(
                spec.api_key,
                api_version,
                correlation_id,
                body,
            )
            return ProtocolError(
                ErrorAction.RESPOND,
                code,
                reason,
                spec.api_key,
                api_version,
                correlation_id,
                response=response,
            )
        return ProtocolError(
            ErrorAction.CLOSE, code, reason, spec.api_key, api_version, correlation_id
        )

    def api_versions_response(self, error_code: int = 0) -> ApiVersionsResponse:
        """An ApiVersionsResponse listing the served ranges (add throttle/features as needed)."""
        return ApiVersionsResponse(
            error_code=error_code,
            api_keys=[
                ApiVersion(api_key=key, min_version=low, max_version=high)
                for key, (low, high) in sorted(self.supported_versions.items())
            ],
        )

    # -- output ------------------------------------------------------------------------

    def send_response(self, request: RequestReceived, body: Message) -> bytes:
        """Frame `body` as the response to `request`: size, header, body, as one bytes."""
        chunks = self.send_response_chunks(request, body)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)  # type: ignore[return-value]

    def send_response_chunks(
        self, request: RequestReceived, body: Message
    ) -> list[bytes | memoryview]:
        """Like `send_response`, but big records stay as separate zero-copy chunks."""
        spec = API_SPECS[request.api_key]
        if not isinstance(body, spec.response_class):
            raise LocalProtocolError(
                f"a {spec.name} request needs a {spec.response_class_name}, "
                f"not a {type(body).__name__}"
            )
        self._take_turn(request)
        return self._frame_chunks(
            request.api_key,
            request.api_version,
            request.correlation_id,
            body,
        )

    def send_error_response(self, event: ProtocolError) -> bytes:
        """The framed error response of a RESPOND event, in its turn."""
        if event._response is None:
            raise LocalProtocolError(f"{event.reason}: this error calls for closing")
        self._take_turn(event)
        return event._response

    def _take_turn(self, event: RequestReceived | ProtocolError) -> None:
        if not self._awaiting or self._awaiting[0] is not event:
            if any(waiting is event for waiting in self._awaiting):
                raise LocalProtocolError(
                    f"response to correlation id {event.correlation_id} is out of order: "
                    f"correlation id {self._awaiting[0].correlation_id} must be answered first"
                )
            raise LocalProtocolError(
                f"correlation id {event.correlation_id} is not awaiting a response "
                "(already answered, acks=0, or from another connection)"
            )
        self._awaiting.popleft()

    def _frame_bytes(
        self, api_key: int, api_version: int, correlation_id: int, body: Message
    ) -> bytes:
        return b"".join(self._frame_chunks(api_key, api_version, correlation_id, body))

    @staticmethod
    def _frame_chunks(
        api_key: int, api_version: int, correlation_id: int, body: Message
    ) -> list[bytes | memoryview]:
        """Size prefix, response header (version chosen by Kafka's rule), then the body."""
        out = Output()
        out += b"\x00\x00\x00\x00"
        out += encode_response_header(api_key, api_version, correlation_id)
        body.encode_into(out, api_version)
        size = _INT32.pack(out.total_size() - 4)
        if not out.parts:
            out[0:4] = size
            return [bytes(out)]
        chunks = out.chunks()
        first = chunks[0]
        chunks[0] = size + bytes(first[4:])
        return chunks

    def statistics(self) -> ConnectionStatistics:
        partial = self._parts_bytes if self._missing else len(self._length)
        return ConnectionStatistics(
            bytes_received=self._bytes_received,
            frames_received=self._frames_received,
            requests_handed_out=self._handed_out,
            buffered_bytes=self._frames_bytes + partial,
            pending_frames=len(self._frames),
            awaiting_responses=len(self._awaiting),
        )
