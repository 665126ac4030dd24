"""Leadership balancing: give each partition back to its preferred leader.

The preferred leader of a partition is the first replica of its head segment (Kafka's
rule). Placement spreads first replicas over the nodes (round-robin at creation, rotated
at each new segment), so leaders that sit on their preferred replicas are balanced. A
node that restarts leads nothing until something moves leadership back: each leader
checks, every `leader_balance_interval_ms`, the partitions it leads whose preferred
replica is another node, and hands at most `MOVES_PER_PASS` of them back (one at a
time), only to a
preferred replica that is connected and holds the whole log (so the transfer is one
TimeoutNow, not a catch-up). Deciding per leader needs no cluster-wide view of leaders,
and the preferred replica is a fixed point, so leadership cannot flap between two nodes;
a preferred node that keeps losing leadership costs at most one transfer per pass.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

MOVES_PER_PASS = 4


@attrs.frozen
class LedHead:
    """A head segment this node leads, as the balancer sees it."""

    group_id: int
    preferred: int
    preferred_ready: bool
    """The preferred replica is connected (recently active) and holds the whole log."""


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
