"""CRC32C: RFC 3720 vectors, then C (both paths) against the twin and PyPI `crc32c`."""

import random

import crc32c as pypi_crc32c
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raftlog import native, native_twin

# RFC 3720 appendix B.4.
RFC3720_VECTORS = [
    (bytes(32), 0x8A9136AA),
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
    (bytes.fromhex("01c00000000000000000000000000000" "14000000000004000000001400000018"
                   "28000000000000000200000000000000"), 0xD9963A56),
]


@pytest.mark.parametrize(("data", "expected"), RFC3720_VECTORS)
def test_rfc3720_vectors(data: bytes, expected: int) -> None:
    assert native.crc32c(data) == expected
    assert native.crc32c_portable(data) == expected
    assert native_twin.crc32c(data) == expected
    with native.portable_crc32c_forced():
        assert not native.crc32c_hardware_active()
        assert native.crc32c(data) == expected


def test_hardware_path_is_used_when_the_cpu_has_it() -> None:
    with open("/proc/cpuinfo") as cpuinfo:
        has_sse42 = "sse4_2" in cpuinfo.read()
    assert native.crc32c_hardware_active() == has_sse42


def test_standard_check_value() -> None:
    assert native.crc32c(b"123456789") == 0xE3069283


# Sizes straddling the 3-way block boundaries (3 x 256 and 3 x 8192 bytes).
BOUNDARY_SIZES = [0, 1, 7, 8, 9, 767, 768, 769, 1535, 24575, 24576, 24577, 49152 + 771]


@pytest.mark.parametrize("size", BOUNDARY_SIZES)
@pytest.mark.parametrize("misalignment", [0, 1, 5])
def test_block_boundaries_against_pypi(size: int, misalignment: int) -> None:
    data = memoryview(bytes((i * 131 + 7) & 0xFF for i in range(size + misalignment)))
    view = data[misalignment:]
    expected = pypi_crc32c.crc32c(bytes(view))
    assert native.crc32c(view) == expected
    assert native.crc32c_portable(view) == expected


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000), st.integers(0, 2**32 - 1))
def test_c_twin_and_pypi_agree(data: bytes, seed: int) -> None:
    expected = pypi_crc32c.crc32c(data, seed) if seed else pypi_crc32c.crc32c(data)
    assert native.crc32c(data, seed) == expected
    with native.portable_crc32c_forced():
        assert native.crc32c(data, seed) == expected
    assert native_twin.crc32c(data, seed) == expected


@settings(max_examples=30, deadline=None)
@given(st.binary(min_size=1, max_size=2000), st.integers(0, 2000))
def test_continuation_equals_whole(data: bytes, cut: int) -> None:
    cut = min(cut, len(data))
    assert native.crc32c(data[cut:], native.crc32c(data[:cut])) == native.crc32c(data)


@settings(max_examples=20, deadline=None)
@given(st.integers(24576, 200_000), st.integers(0, 2**32))
def test_large_buffers_against_pypi(size: int, seed: int) -> None:
    data = random.Random(seed).randbytes(size)
    expected = pypi_crc32c.crc32c(data)
    assert native.crc32c(data) == expected
    assert native.crc32c_portable(data) == expected


def test_arguments_are_checked() -> None:
    with pytest.raises(TypeError):
        native.crc32c("text")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        native.crc32c(b"", crc=2**32)
