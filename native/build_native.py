"""cffi builder for raftlog's C hot path (out-of-line API mode).

The one header `raftlog_native.h` is both the C interface and the cdef: the cdef is the
header with preprocessor lines removed, so the two can never disagree.
"""

import pathlib

from cffi import FFI

NATIVE_DIR = pathlib.Path(__file__).resolve().parent
HEADER = NATIVE_DIR / "raftlog_native.h"
SOURCES = sorted(str(path.relative_to(NATIVE_DIR.parent)) for path in NATIVE_DIR.glob("*.c"))


def _cdef_text() -> str:
    lines = HEADER.read_text().splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("#"))


COMPILE_FLAGS = ["-O3", "-std=c11", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"]

ffibuilder = FFI()
ffibuilder.cdef(_cdef_text())
ffibuilder.set_source(
    "raftlog._native",
    '#include "raftlog_native.h"',
    sources=SOURCES,
    include_dirs=[str(NATIVE_DIR.relative_to(NATIVE_DIR.parent))],
    extra_compile_args=COMPILE_FLAGS,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
