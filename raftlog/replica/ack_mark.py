"""How far a replica's log was durable when it last acknowledged: (entry index, term).

A replica acknowledges an entry (a follower's append response, a leader counting itself)
only once the entry is fsynced, and Raft's safety rests on it never losing what it
acknowledged. Disk damage breaks that silently when it truncates a segment file at a
batch boundary: the log then just looks shorter. The commit hint in the hard state
catches part of it, but it is saved lazily; a replica that lost acknowledged entries above
it once voted in a leader that lacked a committed record (chaos run 14004). This mark,
written and fdatasynced after every log fsync and before the acknowledgement, bounds what
the replica may have acknowledged exactly, so a log that ends below it is a detected loss
with the exact (term, index) the repairing replica's votes must respect.

File format: two 512-byte slots, written alternately, each `RLAK` magic, a write
sequence number, entry index, term, CRC32C. A write torn by a crash spoils one slot and
leaves the other, older, intact; the valid slot with the higher sequence wins (the mark
itself may move down: a new leader can replace an uncommitted suffix with a shorter one).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import attrs

from raftlog.native import crc32c
from raftlog.storage import files

_MAGIC = b"RLAK"
_LAYOUT = struct.Struct(">4sQQQ")  # magic, sequence, entry index, term
_SLOT_BYTES = 512
_FILE_BYTES = 2 * _SLOT_BYTES


def _encode(sequence: int, index: int, term: int) -> bytes:
    body = _LAYOUT.pack(_MAGIC, sequence, index, term)
    return body + crc32c(body).to_bytes(4, "big")


def _decode(slot: bytes) -> tuple[int, int, int] | None:
    """(sequence, index, term) of a valid slot, else None."""
    size = _LAYOUT.size
    if len(slot) < size + 4:
        return None
    body, checksum = slot[:size], int.from_bytes(slot[size : size + 4], "big")
    if crc32c(body) != checksum:
        return None
    magic, sequence, index, term = _LAYOUT.unpack(body)
    return (sequence, index, term) if magic == _MAGIC else None


@attrs.define(eq=False)
class AckMark:
    """One group's mark file; `save` is called from the worker thread that fsyncs."""

    path: Path
    _sized: bool = attrs.field(init=False, default=False)
    _next_slot: int = attrs.field(init=False, default=0)
    _sequence: int = attrs.field(init=False, default=0)
    _saved: tuple[int, int] | None = attrs.field(init=False, default=None)

    def load(self) -> tuple[int, int] | None:
        """The newest valid (entry index, term), or None if there is none."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        found = [
            (record, slot)
            for slot in range(2)
            if (record := _decode(data[slot * _SLOT_BYTES : (slot + 1) * _SLOT_BYTES]))
        ]
        if not found:
            return None
        (sequence, index, term), slot = max(found)
        self._sequence, self._next_slot = sequence, 1 - slot
        self._saved = (index, term)
        return self._saved

    def prepare(self, index: int, term: int) -> tuple[int, bytes, int] | None:
        """(fd, slot bytes, position) that make (index, term) the mark once written and
        fdatasynced, or None if the file already says so. The caller does the write (off
        the event loop), closes the fd, then calls `written`.

        Opened per write rather than held: a node hosts thousands of groups.
        """
        if self._saved == (index, term):
            return None
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            if not self._sized:
                if os.fstat(fd).st_size < _FILE_BYTES:
                    # Sized once, durably, so later fdatasyncs write data only.
                    os.ftruncate(fd, _FILE_BYTES)
                    os.fsync(fd)
                    files.fsync_directory(self.path.parent)
                self._sized = True
        except OSError:
            os.close(fd)
            raise
        return fd, _encode(self._sequence + 1, index, term), self._next_slot * _SLOT_BYTES

    def written(self, index: int, term: int) -> None:
        """The slot from `prepare(index, term)` is durable."""
        self._sequence += 1
        self._saved, self._next_slot = (index, term), 1 - self._next_slot
