"""The simulated application: a hash chain over every applied entry.

Two nodes that applied the same entries in the same order hold the same digest, so state
machine safety reduces to comparing digests per index. The snapshot of the state machine is
its (index, digest) pair, which keeps snapshots small however long the run.
"""

from __future__ import annotations

import hashlib
import struct

import attrs

from raftlog.invariant import invariant
from raftlog.raft.entry import Entry

_SNAPSHOT = struct.Struct(">Q16s")


def chain_digest(previous: bytes, entry: Entry) -> bytes:
    header = struct.pack(">QQB", entry.term, entry.index, int(entry.kind))
    return hashlib.blake2b(previous + header + entry.payload, digest_size=16).digest()


@attrs.define(eq=False)
class DigestStateMachine:
    applied_index: int = 0
    digest: bytes = bytes(16)
    applied_data_count: int = 0

    def apply(self, entry: Entry) -> bytes:
        invariant(
            entry.index == self.applied_index + 1,
            f"state machine: applying {entry.index} after {self.applied_index}",
        )
        self.applied_index = entry.index
        self.digest = chain_digest(self.digest, entry)
        return self.digest

    def snapshot_data(self) -> bytes:
        return _SNAPSHOT.pack(self.applied_index, self.digest)

    def restore(self, data: bytes) -> None:
        if not data:
            self.applied_index, self.digest = 0, bytes(16)
            return
        self.applied_index, self.digest = _SNAPSHOT.unpack(data)
