"""The C hot path, loaded from the cffi extension built at install time.

There is no silent fallback: if the extension is missing, importing this module fails with
an error that says how to build it. The pure-Python twins in `raftlog.native_twin` exist
only as test oracles.
"""

try:
    from raftlog._native import ffi, lib
except ImportError as error:  # pragma: no cover - exercised only on a broken install
    raise ImportError(
        "raftlog's C extension (raftlog._native) is not built. Install the package with "
        "`pip install -e .` (needs gcc and the Python headers)."
    ) from error

__all__ = ["crc32c", "ffi", "lib"]


def crc32c(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """CRC32C of `data`, continuing from `crc`."""
    buffer = ffi.from_buffer(data)
    return lib.rl_crc32c(crc, buffer, len(buffer))
