"""Test-only power-loss emulation: after SIGKILL, segment data loses what was never fsynced.

SIGKILL leaves the page cache alone, so a crash test that kills a process never loses a
byte that `write` accepted: a node that acknowledges before its fdatasync looks durable
under kill -9 and loses data only when the machine loses power. The chaos suite needs
that power cut, without a machine to cut.

The emulation leans on segment data files being append-only between fsyncs (they are:
appends at the end, truncations and compaction swaps fsync at once). Every fsync that
makes a prefix of a data file durable is recorded here as ``size<TAB>path`` in a journal
in the data directory; writing a journal line needs no fsync of its own, because the only
crash it must survive is SIGKILL of this process. At the next start, before anything is
opened, `enable` cuts every recorded data file back to its last recorded size: exactly
the bytes a power cut would have dropped. Files written whole and fsynced before they
are used (hard state, metadata, indexes: `files.write_atomically`) need nothing.

Switched on by the ``test_power_loss`` setting (``RAFTLOG_TEST_POWER_LOSS=1``); with it
off, each hook costs one ``None`` check per fsync.
"""

from __future__ import annotations

import logging
import os
import pathlib

from raftlog import logs
from raftlog.storage import files

JOURNAL_NAME = "power-loss-journal.tsv"


class _Journal:
    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)

    def record(self, path: pathlib.Path, size_bytes: int) -> None:
        # One write of one short line to an O_APPEND file: a SIGKILL leaves it whole or
        # absent, and absent errs on the side of losing more, as a power cut may.
        os.write(self.fd, _line(path, size_bytes))


def _line(path: pathlib.Path, size_bytes: int) -> bytes:
    return f"{size_bytes}\t{path}\n".encode()


_journal: _Journal | None = None


def enabled() -> bool:
    return _journal is not None


def durable(path: pathlib.Path, size_bytes: int) -> None:
    """An fsync just made the first `size_bytes` of the data file `path` durable."""
    if _journal is not None:
        _journal.record(path, size_bytes)


def journal_entry(path: pathlib.Path, size_bytes: int) -> tuple[int, bytes] | None:
    """(journal fd, line) for a writer outside Python that records `durable(path,
    size_bytes)` itself, right after its fsync; None while the emulation is off."""
    if _journal is None:
        return None
    return _journal.fd, _line(path, size_bytes)


def enable(data_dir: pathlib.Path) -> int:
    """Cut the data files under `data_dir` back to what was fsynced before the last crash,
    then start recording. Returns how many bytes were dropped."""
    global _journal
    journal_path = data_dir / JOURNAL_NAME
    dropped = _cut_to_durable(data_dir, _read_journal(journal_path))
    lines = [f"{path.stat().st_size}\t{path}\n" for path in _data_files(data_dir)]
    files.write_atomically(journal_path, "".join(lines).encode())
    if _journal is not None:
        os.close(_journal.fd)
    _journal = _Journal(journal_path)
    logs.event(
        "test_power_loss_on",
        logging.WARNING,
        journal=str(journal_path),
        dropped_bytes=dropped,
        note="TEST ONLY: unfsynced segment data is discarded at the next start",
    )
    return dropped


def disable() -> None:
    """Stop recording (tests that enable it in-process)."""
    global _journal
    if _journal is not None:
        os.close(_journal.fd)
    _journal = None


def _read_journal(path: pathlib.Path) -> dict[str, int]:
    sizes: dict[str, int] = {}
    if not path.exists():
        return sizes
    for line in path.read_text().splitlines():
        size, tab, name = line.partition("\t")
        if tab and size.isdigit():
            sizes[name] = int(size)
    return sizes


def _data_files(data_dir: pathlib.Path) -> list[pathlib.Path]:
    found = []
    for path in data_dir.rglob("*" + files.DATA_SUFFIX):
        parsed = files.parse_name(path.name)
        if parsed is not None and parsed[1] == files.DATA_SUFFIX.lstrip("."):
            found.append(path)
    return sorted(found)


def _cut_to_durable(data_dir: pathlib.Path, sizes: dict[str, int]) -> int:
    """Files the journal never saw existed before the emulation started: they are kept."""
    dropped = 0
    for path in _data_files(data_dir):
        durable_size = sizes.get(str(path))
        if durable_size is None:
            continue
        size = path.stat().st_size
        if size > durable_size:
            with path.open("r+b") as file:
                file.truncate(durable_size)
                os.fsync(file.fileno())
            dropped += size - durable_size
            logs.event(
                "test_power_loss_cut",
                logging.WARNING,
                path=str(path),
                kept_bytes=durable_size,
                dropped_bytes=size - durable_size,
            )
    return dropped
