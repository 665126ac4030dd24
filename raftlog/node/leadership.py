"""Leadership transfer of a partition: find the head segment's leader, hand it over.

An operator (admin API, `raftlog partition transfer-leader`) or the chaos suite asks any
node to move a partition's leadership to one of its replicas. The partition's leader is
the leader of its head segment's Raft group, which may live on another node, so the
request travels at most `HOPS_MAX` hops over the internal transport (`TRANSFER_RPC`): to
a replica that knows the leader, then to the leader. The leader runs Raft's transfer
(thesis 3.10: catch the target up, then TimeoutNow) and the call returns once the target
leads, or fails after the timeout with the leader left as Raft left it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from raftlog.controller.metadata import MetadataState
from raftlog.raft.errors import NotLeader, RaftUsageError
from raftlog.replica.group import ReplicaGroup

TRANSFER_RPC = "partition.transfer_leader"
HOPS_MAX = 2
TIMEOUT_S_MAX = 60.0
POLL_S = 0.01


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

    async def transfer(self, request: TransferRequest, replicas: tuple[int, ...]) -> dict[str, Any]:
        group = self.lookup(request.group_id)
        if group is not None and group.is_leader:
            return await self._transfer_here(group, request)
        if request.target not in replicas:
            raise TransferError(400, f"node {request.target} holds no replica of this partition")
        if request.hops >= HOPS_MAX or self.forward is None:
            raise TransferError(503, "the partition's leader could not be reached")
        next_hop = group.leader_id if group is not None and group.leader_id else None
        candidates = [next_hop] if next_hop else [r for r in replicas if r != self.node_id]
        hopped = attrs.evolve(request, hops=request.hops + 1)
        errors = []
        for node in candidates:
            try:
                return await self.forward(node, hopped)
            except TransferError:
                raise
            except Exception as error:  # an unreachable replica: try the next one
                errors.append(f"node {node}: {error}")
        raise TransferError(503, f"no replica could take the request: {'; '.join(errors)}")

    async def _transfer_here(self, group: ReplicaGroup, request: TransferRequest) -> dict:
        if request.target not in group.raw.membership.voters:
            raise TransferError(400, f"node {request.target} is not a voting replica")
        try:
            group.transfer_leadership(request.target)
        except (NotLeader, RaftUsageError) as error:
            raise TransferError(409, f"cannot transfer: {error}") from None
        with trio.move_on_after(request.timeout_s):
            while group.leader_id != request.target:
                await trio.sleep(POLL_S)
            return {"group": request.group_id, "leader": request.target, "term": group.raw.term}
        raise TransferError(
            504,
            f"node {request.target} did not take over within {request.timeout_s:g} s "
            f"(leader now {group.leader_id or 'unknown'})",
        )
