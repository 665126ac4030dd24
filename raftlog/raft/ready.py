"""What the core hands the application after each batch of inputs.

The Ready contract, in order:

1. Persist: if ``snapshot`` is set, install it in the stable storage (and restore the state
   machine from it); append ``entries`` to the stable log, first dropping every stored entry
   at or after ``entries[0].index``; store ``hard_state`` if set. Make it durable (fsync)
   when ``must_sync`` says so.
2. Send ``messages`` (only now: a vote or an append acknowledgement promises durability).
   A node whose soft state is LEADER may send its messages (appends, heartbeats) before
   the fsync of step 1 instead: the core counts the leader's own log towards commit only
   once ``advance`` reports it stable (Raft thesis, section 10.2.1).
3. Apply ``committed_entries`` to the state machine, in order; serve the reads of
   ``read_states`` once the state machine has applied their index.
4. Call ``advance(ready)``.

Between ``ready()`` and ``advance()`` the node may still be stepped and ticked; what that
produces waits for the next Ready.
"""

from __future__ import annotations

import enum

import attrs

from raftlog.raft.entry import Entry, HardState, ReadState, Snapshot
from raftlog.raft.messages import Message


class Role(enum.Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


@attrs.frozen
class SoftState:
    """Volatile state worth telling the application about (never persisted)."""

    leader_id: int
    role: Role


@attrs.frozen
class Ready:
    hard_state: HardState | None
    """Term, vote and commit to persist; None when unchanged since the last Ready."""
    soft_state: SoftState | None
    """Leader and role, when changed since the last Ready."""
    entries: tuple[Entry, ...]
    """Entries to append to the stable log (replacing any stored at or after the first)."""
    snapshot: Snapshot | None
    """A snapshot received from the leader, to persist and restore before anything else."""
    messages: tuple[Message, ...]
    """To send once the above is durable."""
    committed_entries: tuple[Entry, ...]
    """To apply, in order, once the above is durable."""
    read_states: tuple[ReadState, ...]
    """ReadIndex results: serve each read once the state machine applied its index."""
    must_sync: bool
    """Whether step 1 needs an fsync (entries, a snapshot, or a changed term or vote)."""

    def truncate_from_index(self) -> int | None:
        """First index the stable log must drop before appending, if entries are present."""
        return self.entries[0].index if self.entries else None
