"""Leadership transfer of a partition (or of the controller group): find the group's
leader, hand it over.

An operator (admin API, `raftlog partition transfer-leader`, `raftlog cluster
transfer-controller`), the balancer or the chaos suite asks any node to move a group's
leadership to one of its voters. The leader of a partition is the leader of its head
segment's Raft group, which may live on another node, so the request travels at most
`HOPS_MAX` hops over the internal transport (`TRANSFER_RPC`): to a replica that knows the
leader, then to the leader. The leader runs Raft's transfer (thesis 3.10: catch the target
up, then TimeoutNow) and the call returns once the target leads.

The node the request entered keeps trying until the timeout while the leader is unknown
or unreachable (an election is under way, or the leader it knew just died): the request
either succeeds or fails within its timeout, never sooner for a reason that time cures.
Forwarded hops try once, so retries do not multiply along the path. A transfer Raft
abandons (the target did not take over within an election timeout) fails at once.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from raftlog.controller.metadata import MetadataState
from raftlog.raft.errors import NotLeader, RaftUsageError
from raftlog.raft.ready import Role
from raftlog.raft.statistics import RaftStatistics
from raftlog.replica.group import ReplicaGroup

TRANSFER_RPC = "partition.transfer_leader"
HOPS_MAX = 2
TIMEOUT_S_MAX = 60.0
POLL_S = 0.01
RETRY_S = 0.2
"""Pause between two rounds of asking replicas while the leader is unknown or unreachable."""
UNAVAILABLE = 503
ABANDONED = 409
"""Raft dropped the transfer, another replaced it, or another node won the election."""
OUTCOMES = ("done", "abandoned", "timeout", "refused")
"""The one status worth retrying: no leader known or reachable (yet)."""


class TransferError(Exception):
    """The transfer cannot be done; `status` is the HTTP status the admin API answers."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@attrs.frozen
class TransferRequest:
    group_id: int
    target: int
    timeout_s: float
    hops: int = 0

    def encode(self) -> bytes:
        return json.dumps(attrs.asdict(self)).encode()

    @classmethod
    def decode(cls, payload: bytes) -> TransferRequest:
        raw = json.loads(payload)
        if not isinstance(raw, dict):
            raise ValueError(f"{TRANSFER_RPC} takes a JSON object")
        request = cls(int(raw["group_id"]), int(raw["target"]), float(raw["timeout_s"]),
                      int(raw.get("hops", 0)))
        if not 0 < request.timeout_s <= TIMEOUT_S_MAX or not 0 <= request.hops <= HOPS_MAX:
            raise ValueError(f"{TRANSFER_RPC}: timeout or hops out of bounds")
        return request


def head_group(state: MetadataState, topic: str, partition: int) -> tuple[int, tuple[int, ...]]:
    """(group id, replicas) of the partition's head segment; TransferError(404) if none."""
    info = state.topics.get(topic)
    if info is None:
        raise TransferError(404, f"no topic {topic!r}")
    if not 0 <= partition < len(info.partitions):
        raise TransferError(404, f"topic {topic!r} has no partition {partition}")
    head = info.partitions[partition].segments[-1]
    return head.group_id, tuple(head.replicas)


Forward = Callable[[int, TransferRequest], Awaitable[dict[str, Any]]]


@attrs.define(eq=False)
class LeadershipTransfers:
    """Runs transfers for the groups hosted on one node, forwarding the others."""

    node_id: int
    lookup: Callable[[int], ReplicaGroup | None]
    forward: Forward | None
    """Sends a request to another node (None on a single node: nothing to forward to)."""
    observer: Callable[[str], None] | None = None
    """Told the outcome of each transfer this node ran as leader (for the metrics): one
    of `OUTCOMES`."""

    async def transfer(self, request: TransferRequest, replicas: tuple[int, ...]) -> dict[str, Any]:
        """Move `request.group_id`'s leadership to `request.target`, one of `replicas`."""
        if request.target not in replicas:
            raise TransferError(400, f"node {request.target} holds no replica of this group")
        deadline = trio.current_time() + request.timeout_s
        while True:
            try:
                return await self._attempt(request, replicas, deadline)
            except TransferError as error:
                remaining = deadline - trio.current_time()
                if error.status != UNAVAILABLE or request.hops > 0 or remaining <= RETRY_S:
                    raise
            await trio.sleep(RETRY_S)

    async def transfer_local(self, request: TransferRequest) -> dict[str, Any]:
        """Transfer only if this node leads the group: no forwarding, no retry (the
        balancer's moves, decided from what this node leads)."""
        group = self.lookup(request.group_id)
        if group is None or not group.is_leader:
            raise TransferError(UNAVAILABLE, f"node {self.node_id} no longer leads the group")
        return await self._transfer_here(group, request, trio.current_time() + request.timeout_s)

    async def _attempt(
        self, request: TransferRequest, replicas: tuple[int, ...], deadline: float
    ) -> dict[str, Any]:
        group = self.lookup(request.group_id)
        if group is not None and group.is_leader:
            return await self._transfer_here(group, request, deadline)
        known = group.leader_id if group is not None and group.leader_id else None
        if request.hops >= HOPS_MAX or self.forward is None or (request.hops and not known):
            raise TransferError(
                UNAVAILABLE,
                f"node {self.node_id} does not lead the group"
                + (f" (node {known} does)" if known else " and knows no leader"),
            )
        candidates = [known] if known and known != self.node_id else []
        if request.hops == 0:  # only the node asked fans out; a hop goes to the leader or fails
            candidates += [r for r in replicas if r not in (self.node_id, known)]
        errors = []
        for node in candidates:
            remaining = deadline - trio.current_time()
            if remaining <= 0:
                break
            hopped = attrs.evolve(request, hops=request.hops + 1, timeout_s=remaining)
            try:
                return await self.forward(node, hopped)
            except TransferError as error:
                if error.status != UNAVAILABLE:
                    raise
                errors.append(f"node {node}: {error}")
            except Exception as error:  # an unreachable replica: try the next one
                errors.append(f"node {node}: {error}")
        raise TransferError(
            UNAVAILABLE, f"the group's leader could not be reached: {'; '.join(errors)}"
        )

    async def _transfer_here(
        self, group: ReplicaGroup, request: TransferRequest, deadline: float
    ) -> dict[str, Any]:
        try:
            answer = await self._run_here(group, request, deadline)
        except TransferError as error:
            self._observe(_outcome(error.status))
            raise
        self._observe("done")
        return answer

    def _observe(self, outcome: str) -> None:
        if self.observer is not None:
            self.observer(outcome)

    async def _run_here(
        self, group: ReplicaGroup, request: TransferRequest, deadline: float
    ) -> dict[str, Any]:
        target = request.target
        if target not in group.raw.membership.voters:
            raise TransferError(400, f"node {target} is not a voting replica")
        try:
            group.transfer_leadership(target)
        except NotLeader:
            raise TransferError(UNAVAILABLE, "leadership moved while the transfer began") from None
        except RaftUsageError as error:
            raise TransferError(400, f"cannot transfer: {error}") from None
        with trio.move_on_at(deadline):
            while group.leader_id != target:
                await trio.sleep(POLL_S)
                # The core's own state, not the Ready loop's view of it: once the target's
                # vote request deposes this node the core clears the transferee at once,
                # before the role change reaches `group.is_leader`.
                statistics = group.raw.statistics()
                if statistics.role is Role.LEADER and statistics.lead_transferee != target:
                    raise TransferError(ABANDONED, _abandoned(target, self.node_id, statistics))
                if group.leader_id not in (0, self.node_id, target):
                    raise TransferError(
                        ABANDONED,
                        f"node {group.leader_id} won the election instead of node {target}",
                    )
            return {"group": request.group_id, "leader": target, "term": group.raw.term}
        raise TransferError(
            504,
            f"node {target} did not take over within {request.timeout_s:g} s "
            f"(leader now {group.leader_id or 'unknown'})",
        )


def _outcome(status: int) -> str:
    if status == 504:
        return "timeout"
    if status == ABANDONED:
        return "abandoned"
    return "refused"


def _abandoned(target: int, node_id: int, statistics: RaftStatistics) -> str:
    if statistics.lead_transferee:
        return (
            f"a transfer to node {statistics.lead_transferee} replaced this one "
            f"(node {node_id} still leads)"
        )
    return (
        f"Raft abandoned the transfer: node {target} did not take over within an election "
        f"timeout (node {node_id} still leads)"
    )
