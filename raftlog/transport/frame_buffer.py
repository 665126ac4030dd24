"""h2's incoming frame buffer, without copying DATA payloads on their way to the session.

h2's `FrameBuffer` appends every socket read to one bytearray, slices each frame's body
out of it into a new bytearray, and `DataFrame.parse_body` copies the payload once more
into `bytes`: three copies of every replicated byte a follower receives before our
`MessageDecoder` sees it. `ChunkedFrameBuffer` keeps the reads as they came (immutable
`bytes`, so views of them stay valid) and hands a DATA frame a view of its payload; only
a frame that straddles two reads is joined. Every other frame type is parsed by
hyperframe as before, and the header-block rules (CONTINUATION) and frame size checks
are h2's own methods. A property test feeds both buffers the same frames cut at random
places and compares what they yield.
"""

from __future__ import annotations

import collections

from h2.exceptions import FrameDataMissingError, ProtocolError
from h2.frame_buffer import FrameBuffer
from hyperframe.exceptions import InvalidDataError, InvalidFrameError, InvalidPaddingError
from hyperframe.frame import DataFrame, Frame

_HEADER_BYTES = 9
_REQUIRED = ("_update_header_buffer", "_validate_frame_length", "_preamble", "_preamble_len")


class ChunkedFrameBuffer(FrameBuffer):
    """A `FrameBuffer` whose DATA frames carry views of the received bytes."""

    def __init__(self, server: bool = False) -> None:
        super().__init__(server=server)
        self._chunks: collections.deque[memoryview] = collections.deque()
        self._buffered = 0

    def add_data(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        if self._preamble_len:
            taken = min(self._preamble_len, len(view))
            if self._preamble[:taken] != view[:taken]:
                raise ProtocolError("Invalid HTTP/2 preamble.")
            view = view[taken:]
            self._preamble_len -= taken
            self._preamble = self._preamble[taken:]
        if not len(view):
            return
        if not isinstance(data, bytes):
            view = memoryview(view.tobytes())  # the caller may reuse a mutable buffer
        self._chunks.append(view)
        self._buffered += len(view)

    def _take(self, size: int) -> memoryview:
        """The next `size` buffered bytes: a view when one read holds them all."""
        if not size:
            return memoryview(b"")
        first = self._chunks[0]
        if len(first) >= size:
            taken = first[:size]
            if len(first) == size:
                self._chunks.popleft()
            else:
                self._chunks[0] = first[size:]
        else:
            pieces = []
            missing = size
            while missing:
                chunk = self._chunks[0]
                if len(chunk) <= missing:
                    pieces.append(self._chunks.popleft())
                    missing -= len(chunk)
                else:
                    pieces.append(chunk[:missing])
                    self._chunks[0] = chunk[missing:]
                    missing = 0
            taken = memoryview(b"".join(pieces))
        self._buffered -= size
        return taken

    def _peek_header(self) -> memoryview:
        first = self._chunks[0]
        if len(first) >= _HEADER_BYTES:
            return first[:_HEADER_BYTES]
        header = b""  # split across reads: gather its 9 bytes, not every buffered read
        for chunk in self._chunks:
            header += chunk[: _HEADER_BYTES - len(header)]
            if len(header) == _HEADER_BYTES:
                break
        return memoryview(header)

    def __next__(self) -> Frame:
        if self._buffered < _HEADER_BYTES:
            raise StopIteration
        try:
            frame, length = Frame.parse_frame_header(self._peek_header())
        except (InvalidDataError, InvalidFrameError) as error:  # pragma: no cover
            raise ProtocolError(f"Received frame with invalid header: {error!s}") from error
        if self._buffered < length + _HEADER_BYTES:
            raise StopIteration
        self._validate_frame_length(length)
        self._take(_HEADER_BYTES)
        body = self._take(length)
        try:
            if type(frame) is DataFrame:
                _parse_data_body(frame, body)
            else:
                frame.parse_body(body)
        except InvalidDataError as error:
            raise ProtocolError("Received frame with non-compliant data") from error
        except InvalidFrameError as error:
            raise FrameDataMissingError("Frame data missing or invalid") from error
        new_frame = self._update_header_buffer(frame)
        return new_frame if new_frame is not None else self.__next__()


def _parse_data_body(frame: DataFrame, body: memoryview) -> None:
    """`DataFrame.parse_body` without its copy: the payload stays a view."""
    start = frame.parse_padding_data(body)
    frame.data = body[start : len(body) - frame.pad_length]  # type: ignore[assignment]
    frame.body_len = len(body)
    if frame.pad_length and frame.pad_length >= frame.body_len:
        raise InvalidPaddingError("Padding is too long.")


def usable() -> bool:
    """Whether h2's FrameBuffer still has the parts this subclass builds on."""
    probe = FrameBuffer(server=True)
    return all(hasattr(probe, name) for name in _REQUIRED)


USABLE = usable()
