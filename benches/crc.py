"""CRC32C throughput on 1 MiB buffers: raftlog's C against the PyPI `crc32c` package.

The PyPI package (SSE4.2, three interleaved streams) is the ceiling: target >= 0.9x.
The portable slicing-by-8 path is reported for information.
"""

import os

import crc32c as pypi_crc32c

from benches.common import Result, Settings, median_seconds, ratio
from raftlog import native

BUFFER_BYTES = 1 << 20


def _throughput_gbps(function: object, data: bytes, total_bytes: int) -> float:
    rounds = max(1, total_bytes // len(data))

    def loop() -> None:
        for _ in range(rounds):
            function(data)  # type: ignore[operator]

    return rounds * len(data) / median_seconds(loop, repeats=3) / 1e9


def run(settings: Settings) -> list[Result]:
    data = os.urandom(BUFFER_BYTES)
    total_bytes = settings.size_bytes(2 << 30, 16 << 30, floor_bytes=BUFFER_BYTES)
    assert native.crc32c(data) == pypi_crc32c.crc32c(data)
    ceiling = _throughput_gbps(pypi_crc32c.crc32c, data, total_bytes)
    hardware = _throughput_gbps(native.crc32c, data, total_bytes)
    portable = _throughput_gbps(native.crc32c_portable, data, total_bytes // 8)
    path = "SSE4.2 3-way" if native.crc32c_hardware_active() else "portable (no SSE4.2)"
    return [
        Result("crc", "raftlog crc32c, 1 MiB buffers", hardware, "GB/s",
               "PyPI crc32c (same run)", ceiling, ratio(hardware, ceiling), 0.9, path),
        Result("crc", "raftlog crc32c portable path, 1 MiB buffers", portable, "GB/s",
               "PyPI crc32c (same run)", ceiling, ratio(portable, ceiling), None,
               "slicing-by-8 fallback, for information"),
    ]
