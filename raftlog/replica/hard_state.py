"""The durable part of a Raft group's state that is not its log: term, vote, commit hint.

Term and vote must reach the disk before the node acts on them (a vote forgotten in a
crash lets a node vote twice in one term), so `save` fsyncs the file and its directory
when either changes. They change only at elections, so this costs nothing on the data
path. The commit index is only a hint: Raft can always relearn it from a leader, and any
value that was once true is safe to start from (clipped to the recovered log), so it is
written without fsync, and at most once per `commit_save_interval_s` when it alone changed.

File format: one fixed 32-byte record, `RLHS` magic, version, term, vote, commit, CRC32C.
A torn or corrupt file is an error that names the file; the node must not guess a term.
"""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path

import attrs

from raftlog.native import crc32c
from raftlog.raft.entry import HardState
from raftlog.storage import files

_MAGIC = b"RLHS"
_VERSION = 1
_LAYOUT = struct.Struct(">4sHxxQqQ")  # magic, version, pad, term, vote, commit
_RECORD_SIZE_BYTES = _LAYOUT.size + 4


class HardStateCorrupt(Exception):
    """The hard-state file exists but cannot be trusted."""


def _encode(state: HardState) -> bytes:
    body = _LAYOUT.pack(_MAGIC, _VERSION, state.term, state.vote, state.commit)
    return body + crc32c(body).to_bytes(4, "big")


def _decode(data: bytes, path: Path) -> HardState:
    if len(data) != _RECORD_SIZE_BYTES:
        raise HardStateCorrupt(f"{path}: {len(data)} bytes, expected {_RECORD_SIZE_BYTES}")
    body, checksum = data[:-4], int.from_bytes(data[-4:], "big")
    if crc32c(body) != checksum:
        raise HardStateCorrupt(f"{path}: checksum mismatch")
    magic, version, term, vote, commit = _LAYOUT.unpack(body)
    if magic != _MAGIC or version != _VERSION:
        raise HardStateCorrupt(f"{path}: not a raftlog hard-state file (v{version})")
    return HardState(term, vote, commit)


@attrs.define(eq=False)
class HardStateFile:
    """One group's hard state on disk; remembers what it last wrote to skip no-op saves."""

    path: Path
    commit_save_interval_s: float = 1.0
    _saved: HardState = attrs.field(init=False, factory=HardState)
    _saved_at_s: float = attrs.field(init=False, default=0.0)

    def load(self) -> HardState:
        """The saved state, or the initial state if the group has never saved one.

        The commit hint counts as just saved: thousands of groups opened at once would
        otherwise each rewrite the file for their first commit, on the event loop.
        """
        self._saved_at_s = time.monotonic()
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            self._saved = HardState()
            return self._saved
        self._saved = _decode(data, self.path)
        return self._saved

    def pending(self, state: HardState) -> bool:
        """Whether `save(state)` would write the file now (else it returns at once)."""
        if state == self._saved:
            return False
        if (state.term, state.vote) != (self._saved.term, self._saved.vote):
            return True
        # Only the commit hint moved: written unless it was saved a moment ago.
        return time.monotonic() - self._saved_at_s >= self.commit_save_interval_s

    def save(self, state: HardState) -> None:
        """Make `state` the saved state; durable before return if term or vote changed."""
        if not self.pending(state):
            return
        durable = (state.term, state.vote) != (self._saved.term, self._saved.vote)
        now_s = time.monotonic()
        temporary = self.path.with_suffix(".tmp")
        with temporary.open("wb") as file:
            file.write(_encode(state))
            if durable:
                file.flush()
                os.fsync(file.fileno())
        os.replace(temporary, self.path)
        if durable:
            files.fsync_directory(self.path.parent)
        self._saved = state
        self._saved_at_s = now_s
