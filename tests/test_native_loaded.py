"""The suite must fail if the C extension silently did not load."""

import raftlog.native


def test_extension_is_the_compiled_module() -> None:
    assert raftlog.native.lib.__class__.__name__ == "Lib"
    assert raftlog.native.ffi.__class__.__module__ != "raftlog.native_twin"


def test_crc32c_rfc3720_vector() -> None:
    # RFC 3720 B.4: 32 bytes of zeros.
    assert raftlog.native.crc32c(bytes(32)) == 0x8A9136AA
