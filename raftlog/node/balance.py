"""Leadership balancing: give each partition back to its preferred leader.

The preferred leader of a partition is the first replica of its head segment (Kafka's
rule). Placement spreads first replicas over the nodes (round-robin at creation, rotated
at each new segment, and a replacement takes the replaced node's place), so leaders that
sit on their preferred replicas are balanced. A node that restarts leads nothing until
something moves leadership back: each leader checks, every `leader_balance_interval_ms`,
the partitions it leads whose preferred replica is another node, and hands at most
`MOVES_PER_PASS` of them back (one at a time), only to a preferred replica that is
connected, votes, and replicates within `LAG_ENTRIES_MAX` entries of the leader's log (so
the transfer is a short catch-up and one TimeoutNow; under steady load a follower is
rarely level with its leader at the instant the balancer looks).

Why each leader decides for the groups it leads, not the controller for all: the leader
is the only node that knows how far the preferred replica has got (its Raft progress),
and it needs no cluster-wide view of leaders, no new RPC and nothing on the controller.
Why no flapping: the preferred replica is a fixed point; once it leads, no rule moves
leadership away from it, so a partition moves at most once per pass and only towards its
preferred replica. While the preferred replica is down, its partitions stay where the
election put them (possibly unevenly over the survivors) until it is back or replaced.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from raftlog.raft.progress import ProgressState
from raftlog.raft.statistics import RaftStatistics

MOVES_PER_PASS = 4
LAG_ENTRIES_MAX = 64
"""How far behind the leader's log a preferred replica may be and still get leadership."""


@attrs.frozen
class LedHead:
    """A head segment this node leads, as the balancer sees it."""

    group_id: int
    preferred: int
    preferred_ready: bool
    """The preferred replica is connected (recently active), votes and is nearly caught up."""


def preferred_ready(statistics: RaftStatistics, preferred: int) -> bool:
    """Whether the leader whose `statistics` these are may hand leadership to `preferred`."""
    return any(
        peer.node_id == preferred
        and peer.recent_active
        and not peer.is_learner
        and preferred in statistics.membership.voters
        and peer.state is ProgressState.REPLICATE
        and statistics.last_index - peer.match_index <= LAG_ENTRIES_MAX
        for peer in statistics.progress
    )


def moves(node_id: int, heads: Iterable[LedHead], limit: int = MOVES_PER_PASS) -> list[
    tuple[int, int]
]:
    """(group, target) transfers this node should start now, at most `limit`."""
    wanted = [
        (head.group_id, head.preferred)
        for head in sorted(heads, key=lambda head: head.group_id)
        if head.preferred != node_id and head.preferred_ready
    ]
    return wanted[:limit]
