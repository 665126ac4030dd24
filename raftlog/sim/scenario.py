"""Building blocks for scripted scenarios: nodes that start with a prepared log."""

from __future__ import annotations

from collections.abc import Sequence

from raftlog.raft.entry import Entry, EntryKind, HardState
from raftlog.raft.membership import Membership
from raftlog.raft.storage import MemoryStorage


def storage_with_log(
    voters: Sequence[int], terms: Sequence[int], term: int | None = None, commit: int = 0
) -> MemoryStorage:
    """A node's durable state holding one entry per element of ``terms`` (indexes 1..n),
    at ``term`` (default: the last entry's term), with no vote cast."""
    storage = MemoryStorage.bootstrap(Membership(frozenset(voters)))
    entries = [
        Entry(entry_term, index, EntryKind.DATA, f"i{index}t{entry_term}".encode())
        for index, entry_term in enumerate(terms, start=1)
    ]
    storage.append(entries)
    last_term = terms[-1] if terms else 0
    storage.set_hard_state(HardState(term if term is not None else last_term, 0, commit))
    return storage


def log_terms(storage_or_log: object) -> list[int]:
    """Terms of every entry in a node's log, from its first index (for assertions)."""
    log = storage_or_log
    first = log.first_index()  # type: ignore[attr-defined]
    last = log.last_index()  # type: ignore[attr-defined]
    return [log.term(index) for index in range(first, last + 1)]  # type: ignore[attr-defined]
