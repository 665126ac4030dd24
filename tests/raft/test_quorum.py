"""Quorum math against a naive reference that enumerates every majority."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from raftlog.raft.quorum import VoteResult, committed_index, has_quorum, majority, vote_result

voters_strategy = st.frozensets(st.integers(min_value=1, max_value=9), min_size=1, max_size=7)


def _majorities(voters: frozenset[int]) -> list[frozenset[int]]:
    size = len(voters) // 2 + 1
    return [frozenset(group) for group in itertools.combinations(sorted(voters), size)]


@given(voters_strategy, st.data())
def test_committed_index_is_the_largest_index_some_majority_holds(
    voters: frozenset[int], data: st.DataObject
) -> None:
    match = {voter: data.draw(st.integers(min_value=0, max_value=20)) for voter in voters}
    reference = max(min(match[voter] for voter in group) for group in _majorities(voters))
    assert committed_index(voters, match.__getitem__) == reference


@given(voters_strategy, st.data())
def test_vote_result_matches_enumeration(voters: frozenset[int], data: st.DataObject) -> None:
    votes = {
        voter: data.draw(st.sampled_from([True, False, None]))
        for voter in voters
    }
    cast = {voter: vote for voter, vote in votes.items() if vote is not None}
    granted = {voter for voter, vote in cast.items() if vote}
    possible = granted | {voter for voter in voters if voter not in cast}
    if any(group <= granted for group in _majorities(voters)):
        expected = VoteResult.WON
    elif not any(group <= possible for group in _majorities(voters)):
        expected = VoteResult.LOST
    else:
        expected = VoteResult.PENDING
    assert vote_result(voters, cast) == expected
    assert has_quorum(voters, lambda voter: voter in granted) == (expected == VoteResult.WON)


def test_majority_and_empty_configurations() -> None:
    assert [majority(n) for n in range(1, 7)] == [1, 2, 2, 3, 3, 4]
    assert committed_index(frozenset(), lambda _: 5) == 0
    assert vote_result(frozenset(), {}) == VoteResult.LOST
    assert not has_quorum(frozenset(), lambda _: True)
