"""One output-identical speed fix for hyperframe, applied once at import.

h2 formats `repr(frame)` for a trace log line on every received frame, even with logging
off (`H2Connection._receive_frame`), and hyperframe's `_raw_data_repr` hexlifies the
whole payload before keeping its first 20 hex digits. For a 64 KiB DATA frame that is
~60 us of work thrown away: about a quarter of the receiver's CPU on bulk traffic.
We swap in a version that hexlifies only the 10 bytes it shows. The swap happens only if
the original still behaves as we expect, so an upstream change turns this into a no-op.
"""

from __future__ import annotations

import binascii

import hyperframe.frame

_SAMPLE = bytes(range(40))


def _raw_data_repr(data: bytes | None) -> str:
    if not data:
        return "None"
    shown = binascii.hexlify(data[:11]).decode("ascii")
    if len(shown) > 20:
        shown = shown[:20] + "..."
    return "<hex:" + shown + ">"


def apply() -> bool:
    """Install the fix if hyperframe's function matches ours on samples; say whether."""
    original = getattr(hyperframe.frame, "_raw_data_repr", None)
    if original is None or original is _raw_data_repr:
        return original is _raw_data_repr
    samples = (None, b"", _SAMPLE[:1], _SAMPLE[:10], _SAMPLE[:11], _SAMPLE)
    if any(original(sample) != _raw_data_repr(sample) for sample in samples):
        return False
    hyperframe.frame._raw_data_repr = _raw_data_repr
    return True


APPLIED = apply()
