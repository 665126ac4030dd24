"""Majority arithmetic, kept apart so it can be checked against a naive reference."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping


class VoteResult(enum.Enum):
    PENDING = "pending"
    WON = "won"
    LOST = "lost"


def majority(voter_count: int) -> int:
    """Smallest number of voters that forms a quorum."""
    return voter_count // 2 + 1


def committed_index(voters: frozenset[int], match_index: Callable[[int], int]) -> int:
    """Largest index that a majority of ``voters`` has durably stored.

    The k-th largest match index, k = majority: that many voters have at least it.
    An empty voter set commits nothing.
    """
    if not voters:
        return 0
    matches = sorted((match_index(voter) for voter in voters), reverse=True)
    return matches[majority(len(voters)) - 1]


def vote_result(voters: frozenset[int], votes: Mapping[int, bool]) -> VoteResult:
    """Outcome of an election given the votes received so far (votes of non-voters ignored)."""
    if not voters:
        return VoteResult.LOST
    granted = sum(1 for voter in voters if votes.get(voter) is True)
    rejected = sum(1 for voter in voters if votes.get(voter) is False)
    needed = majority(len(voters))
    if granted >= needed:
        return VoteResult.WON
    if len(voters) - rejected < needed:
        return VoteResult.LOST
    return VoteResult.PENDING


def has_quorum(voters: frozenset[int], acknowledged: Callable[[int], bool]) -> bool:
    """True when a majority of ``voters`` acknowledged."""
    if not voters:
        return False
    return sum(1 for voter in voters if acknowledged(voter)) >= majority(len(voters))
