"""The suite must fail if the C extension silently did not load."""

import importlib.machinery

import raftlog._native
import raftlog.native


def test_extension_is_the_compiled_module() -> None:
    assert type(raftlog.native.lib).__module__ == "_cffi_backend"
    assert raftlog.native.lib is raftlog._native.lib
    assert raftlog._native.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def test_crc32c_rfc3720_vector() -> None:
    # RFC 3720 B.4: 32 bytes of zeros.
    assert raftlog.native.crc32c(bytes(32)) == 0x8A9136AA
