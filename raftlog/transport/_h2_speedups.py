"""Two output-identical speed fixes for hyperframe, applied once at import.

h2 formats `repr(frame)` for a trace log line on every received frame, even with logging
off (`H2Connection._receive_frame`). For a DATA frame that repr serialized the whole
frame body (`Frame._body_repr` calls `serialize_body`, which joins padding and payload
into new bytes: a copy of every received payload byte, 7% of a follower's CPU under a
pipelined producer), then `_raw_data_repr` hexlified all of it before keeping its first
20 hex digits (~60 us for a 64 KiB frame). The repr shows only the body's first 10 bytes:
we hexlify only those, and a DATA frame builds only those from its fields.

Each swap happens only if the original still behaves as we expect on samples, so an
upstream change turns it into a no-op.
"""

from __future__ import annotations

import binascii

import hyperframe.frame
from hyperframe.frame import DataFrame

_SAMPLE = bytes(range(40))
_SHOWN_BYTES = 11
"""`_raw_data_repr` shows 20 hex digits (10 bytes) and "..." if there is an 11th."""


def _raw_data_repr(data: bytes | memoryview | None) -> str:
    if not data:
        return "None"
    shown = binascii.hexlify(data[:_SHOWN_BYTES]).decode("ascii")
    if len(shown) > 20:
        shown = shown[:20] + "..."
    return "<hex:" + shown + ">"


def _data_body_repr(frame: DataFrame) -> str:
    """What `Frame._body_repr` shows of a DATA frame, from the first bytes of its
    serialized body (pad length byte, payload, zero padding) without serializing it."""
    head = frame.serialize_padding_data() + bytes(frame.data[:_SHOWN_BYTES])
    head += b"\0" * min(frame.pad_length, _SHOWN_BYTES)
    return _raw_data_repr(head[:_SHOWN_BYTES])


def _data_frame_samples() -> list[DataFrame]:
    frames = []
    for data in (b"", _SAMPLE[:1], _SAMPLE[:9], _SAMPLE[:10], _SAMPLE[:11], _SAMPLE):
        for pad_length in (None, 0, 1, 5, 30):
            frame = DataFrame(1, data)
            if pad_length is not None:
                frame.flags.add("PADDED")
                frame.pad_length = pad_length
            frames.append(frame)
    return frames


def _apply_raw_data_repr() -> bool:
    original = getattr(hyperframe.frame, "_raw_data_repr", None)
    if original is None or original is _raw_data_repr:
        return original is _raw_data_repr
    samples = (None, b"", _SAMPLE[:1], _SAMPLE[:10], _SAMPLE[:11], _SAMPLE)
    if any(original(sample) != _raw_data_repr(sample) for sample in samples):
        return False
    hyperframe.frame._raw_data_repr = _raw_data_repr
    return True


def _apply_data_body_repr() -> bool:
    original = DataFrame._body_repr
    if original is _data_body_repr:
        return True
    if "_body_repr" in vars(DataFrame):
        return False  # hyperframe has a DATA repr of its own now: leave it
    for frame in _data_frame_samples():
        if original(frame) != _data_body_repr(frame):
            return False
    DataFrame._body_repr = _data_body_repr  # type: ignore[method-assign]
    return True


def apply() -> bool:
    """Install both fixes where hyperframe matches them on samples; say whether both are."""
    raw_data_repr = _apply_raw_data_repr()
    return _apply_data_body_repr() and raw_data_repr


APPLIED = apply()
