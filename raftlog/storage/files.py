"""File names and the few filesystem moves that must be crash-safe.

A segment with base offset B is `B:020d.log` (data), `B:020d.meta` (its base entry
index, written once, atomically, before the data file exists) and `B:020d.index`
(sparse indexes, written when the segment is sealed). Atomic writes go through a
`.tmp` file, fsync, rename and a directory fsync.
"""

import os
import pathlib
import re
from collections.abc import Iterable

DATA_SUFFIX = ".log"
META_SUFFIX = ".meta"
INDEX_SUFFIX = ".index"
TEMPORARY_SUFFIX = ".tmp"
_NAME = re.compile(r"^(\d{20})\.(log|meta|index)$")


def segment_stem(base_offset: int) -> str:
    return f"{base_offset:020d}"


def data_path(directory: pathlib.Path, base_offset: int) -> pathlib.Path:
    return directory / (segment_stem(base_offset) + DATA_SUFFIX)


def meta_path(directory: pathlib.Path, base_offset: int) -> pathlib.Path:
    return directory / (segment_stem(base_offset) + META_SUFFIX)


def index_path(directory: pathlib.Path, base_offset: int) -> pathlib.Path:
    return directory / (segment_stem(base_offset) + INDEX_SUFFIX)


def parse_name(name: str) -> tuple[int, str] | None:
    """(base offset, kind) of a segment file name, or None for anything else."""
    match = _NAME.match(name)
    return (int(match.group(1)), match.group(2)) if match else None


def fsync_directory(directory: pathlib.Path) -> None:
    """Make creations, renames and unlinks in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_directories(directories: Iterable[pathlib.Path]) -> None:
    """Create every missing directory (and ancestor) in `directories`, durably.

    A new directory's name lives in its parent: the parent is fsynced once for all the
    directories created in it, so opening many groups at once costs one fsync of their
    common parent, not one each.
    """
    parents: set[pathlib.Path] = set()
    for directory in directories:
        missing = []
        current = directory
        while not current.exists():
            missing.append(current)
            current = current.parent
        for created in reversed(missing):
            created.mkdir(exist_ok=True)
            parents.add(created.parent)
    for parent in sorted(parents):
        fsync_directory(parent)


def write_atomically(path: pathlib.Path, data: bytes) -> None:
    """Replace `path` with `data` so that a crash leaves the old or the new file whole."""
    temporary = path.with_name(path.name + TEMPORARY_SUFFIX)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    fsync_directory(path.parent)


def unlink_if_present(path: pathlib.Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
