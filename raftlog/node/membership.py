"""Re-replication: which node is dead, where its replicas go, and the Raft steps to get there.

Three small decisions, kept pure so they can be tested without a cluster:

- `Liveness` turns the controller leader's periodic pings into "dead since" verdicts. A node
  is dead only after it has missed pings for the whole timeout, so a restart or a short
  partition does not move data around.
- `choose_replacement` places a dead node's replica on the live node that holds the fewest
  replicas (ties broken by node id, so every controller leader would choose alike).
- `next_change` is what a segment group's leader proposes next to reach the replica set the
  controller recorded: add the newcomer as a learner, promote it once it has caught up,
  then remove the node it replaces. One single-server change at a time, adding before
  removing, so the group never has fewer up-to-date voters than it started with.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs

from raftlog.raft.membership import ConfigChange, ConfigChangeKind, Membership
from raftlog.raft.statistics import PeerProgress


@attrs.define
class Liveness:
    """When each node last answered; only the controller leader keeps one."""

    dead_after_s: float
    _last_seen_s: dict[int, float] = attrs.field(factory=dict)

    def watch(self, node_id: int, now_s: float) -> None:
        """Start the clock for a node not heard from yet (a new leader gives everyone time)."""
        self._last_seen_s.setdefault(node_id, now_s)

    def answered(self, node_id: int, now_s: float) -> None:
        self._last_seen_s[node_id] = now_s

    def dead(self, now_s: float) -> list[int]:
        return sorted(
            node for node, seen in self._last_seen_s.items() if now_s - seen >= self.dead_after_s
        )

    def alive(self, now_s: float) -> list[int]:
        return sorted(
            node for node, seen in self._last_seen_s.items() if now_s - seen < self.dead_after_s
        )


def choose_replacement(
    replicas: Iterable[int], candidates: Iterable[int], load: Mapping[int, int]
) -> int | None:
    """The least-loaded candidate not already holding a replica, or None if there is none."""
    holding = set(replicas)
    eligible = sorted(node for node in candidates if node not in holding)
    if not eligible:
        return None
    return min(eligible, key=lambda node: (load.get(node, 0), node))


def next_change(
    voters: Iterable[int],
    membership: Membership,
    progress: Iterable[PeerProgress],
    commit_index: int,
    learners: Iterable[int] = (),
) -> ConfigChange | None:
    """The next single-server change towards `voters` (and `learners`), or None.

    Newcomers join as learners and are promoted once they hold everything committed; nobody
    is removed while a wanted voter is still catching up. A voter that should only listen is
    removed, then added back as a learner.
    """
    wanted_voters = frozenset(voters)
    wanted_learners = frozenset(learners) - wanted_voters
    for node in sorted(wanted_voters - membership.members()):
        return ConfigChange(ConfigChangeKind.ADD_LEARNER, node)
    matched = {peer.node_id: peer.match_index for peer in progress}
    for node in sorted(wanted_voters & membership.learners):
        if matched.get(node, 0) >= commit_index:
            return ConfigChange(ConfigChangeKind.PROMOTE_LEARNER, node)
    if wanted_voters & membership.learners:
        return None  # wait for the learner before removing anyone
    for node in sorted(membership.members() - wanted_voters - wanted_learners):
        return ConfigChange(ConfigChangeKind.REMOVE_NODE, node)
    for node in sorted(membership.voters & wanted_learners):
        return ConfigChange(ConfigChangeKind.REMOVE_NODE, node)
    for node in sorted(wanted_learners - membership.members()):
        return ConfigChange(ConfigChangeKind.ADD_LEARNER, node)
    return None


def controller_target(
    membership: Membership, dead: Iterable[int], size: int, registered: Iterable[int] = ()
) -> tuple[frozenset[int], frozenset[int]]:
    """Voters and learners the controller group should have, given who is dead.

    Dead (or decommissioned) voters give way to live learners (lowest ids first) until the
    group has `size` voters again; the replaced voters stay on as learners, so a node that
    comes back catches up on the metadata it missed. Every `registered` node that is not a
    voter is a learner: a replaced voter leaves the group (a voter can only become a
    learner by leaving and joining again) and must be let back in, or it would never hear
    of the metadata again and could not start. A member no longer registered (a
    decommissioned node the registry forgot) leaves the group.
    """
    gone = frozenset(dead)
    listed = frozenset(registered)
    voters = set(membership.voters - gone)
    spares = sorted((membership.learners & listed) - gone)
    while len(voters) < size and spares:
        voters.add(spares.pop(0))
    learners = listed - voters
    return frozenset(voters), frozenset(learners)
