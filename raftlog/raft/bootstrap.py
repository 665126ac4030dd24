"""Electing a new group without a campaign: its first voter starts as the first leader.

A group that has never existed anywhere (a new topic's partition, a segment's successor)
normally spends an election timeout and a vote round before it can take writes; with
thousands of groups created at once those rounds are most of the work. CockroachDB starts
a new range with a leader; so may we, because the vote can be cast ahead of time:

1. Every voter of the group's initial membership, when it creates its replica (a fresh
   directory, never a restart that finds state), persists ``fresh_group_hard_state``: the
   term after ``base_term`` with its vote already given to the first voter. It does so
   before it handles any message of the group.
2. The first voter, on that same run, starts its core with
   ``RaftConfig.lead_fresh_group``: it becomes leader of that term at once (no vote
   round), appends its NOOP and replicates it.

Election safety holds because in that term every voter's one vote is already the first
voter's, so nobody else can collect a quorum in it; and no voter can be in any earlier
term of this group, since it starts in this one. Every other replica waits as a follower
of the term; its election timer runs as usual, so if the first voter is dead the others
elect in the next term. A restart must never set ``lead_fresh_group`` again: the node may
have led the term, sent entries and lost them in the crash, and a second NOOP at the same
(term, index) with different successors would break log matching. Replicas added to the
group later (learners) never use this: they take the terms the leader sends them.
"""

from __future__ import annotations

from raftlog.raft.entry import HardState


def fresh_group_hard_state(first_voter: int, base_term: int = 0) -> HardState:
    """What every voter of a new group persists before it handles any message.

    ``base_term`` is a floor for the group's terms (a segment's successor continues its
    predecessor's, so Kafka leader epochs only grow); the group starts in the term after.
    """
    if first_voter <= 0:
        raise ValueError(f"the first voter must be a node id, got {first_voter}")
    if base_term < 0:
        raise ValueError(f"base_term must be >= 0, got {base_term}")
    return HardState(term=base_term + 1, vote=first_voter, commit=0)
