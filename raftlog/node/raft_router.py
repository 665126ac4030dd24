"""Multi-raft over the transport: every hosted group's messages share one connection per peer.

A Raft message travels as an 8-byte group id followed by the core's own encoding.
Heartbeats (and their responses) go on the HEARTBEAT channel, everything else on RAFT, so
a burst of appends never delays the heartbeats that keep leaders in office. A message for
a group this node does not host (yet) is dropped: Raft resends what matters.

Heartbeats are coalesced: those that the groups of this node address to one peer within
a moment (a tick makes every active group heartbeat at once) leave as one batch message,
marked by the reserved group id `BATCH_GROUP_ID`, and the receiver fans it out. A node
leading thousands of groups so sends one heartbeat message per peer per tick, not thousands.

The router also serves the node's RPCs: controller commands forwarded by nodes that are
not the controller leader, liveness pings, leader queries, leadership transfers, joins
and reads of sealed segments.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from raftlog import logs
from raftlog.node.join import CLUSTER_JOIN
from raftlog.node.leadership import TRANSFER_RPC
from raftlog.node.sealed_reads import SEGMENT_READ
from raftlog.raft import codec
from raftlog.raft.heartbeat_batch import (
    HeartbeatBatch,
    HeartbeatResponseBatch,
    coalesce_heartbeats,
    fan_out,
)
from raftlog.raft.messages import Heartbeat, HeartbeatResponse, Message
from raftlog.replica.group import ReplicaGroup
from raftlog.transport import Channel, Gathered, NoSuchMethod, Transport

GROUP_ID_BYTES = 8
BATCH_GROUP_ID = (1 << 64) - 1
"""Reserved: the payload is a heartbeat batch of many groups (ids are allocated from 1)."""
COALESCE_WINDOW_S = 0.002
"""How long the flusher lets heartbeats of one tick gather before it sends them."""
CONTROLLER_EXECUTE = "controller.execute"
NODE_PING = "node.ping"
"""The controller leader's liveness probe: answered by any running node."""
GROUP_LEADERS = "group.leaders"
"""Which leader (and term) this node sees for each of the listed groups it hosts."""
GROUP_LEADERS_ASK_MAX = 100_000


@attrs.define(eq=False)
class RaftRouter:
    """Routes Raft messages between the groups of this node and those of its peers."""

    lookup: Callable[[int], ReplicaGroup | None]
    execute_command: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
    """Runs a forwarded controller command here (this node should be the leader)."""
    transport: Transport | None = None
    transfer_call: Callable[[bytes], Awaitable[bytes]] | None = None
    """Serves a forwarded leadership transfer (`raftlog.node.leadership.TRANSFER_RPC`)."""
    join_call: Callable[[int, bytes], Awaitable[bytes]] | None = None
    """Serves a node joining through this one (`raftlog.node.join.CLUSTER_JOIN`)."""
    segment_read_call: Callable[[bytes], bytes] | None = None
    """Serves a read of a sealed segment (`raftlog.node.sealed_reads.SEGMENT_READ`)."""
    dropped_unknown_group: int = 0
    dropped_undecodable: int = 0
    heartbeat_batches_sent: int = 0
    _pending_heartbeats: list[tuple[int, Message]] = attrs.field(factory=list)
    _flush_wanted: trio.Event = attrs.field(factory=trio.Event)
    _coalescing: bool = False
    """True while `run_heartbeat_flusher` runs; without it heartbeats go out one by one."""

    def sender(self, group_id: int) -> Callable[[Message], None]:
        """The `send` callable of one group's shell."""
        prefix = group_id.to_bytes(GROUP_ID_BYTES, "big")

        def send(message: Message) -> None:
            if self.transport is None:
                raise RuntimeError(f"group {group_id} has peers but the node has no transport")
            heartbeat = isinstance(message, Heartbeat | HeartbeatResponse)
            if heartbeat and self._coalescing:
                self._pending_heartbeats.append((group_id, message))
                self._flush_wanted.set()
                return
            channel = Channel.HEARTBEAT if heartbeat else Channel.RAFT
            parts = codec.encode_parts(message, prefix)
            payload = parts[0] if len(parts) == 1 else Gathered.of(parts)
            # Raft messages are on the path of every acknowledgement: straight out.
            self.transport.send_nowait(message.to_id, channel, payload, write_now=True)

        return send

    async def run_heartbeat_flusher(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Send gathered heartbeats as one batch per peer, a moment after the first arrives."""
        self._coalescing = True
        task_status.started()
        try:
            while True:
                await self._flush_wanted.wait()
                await trio.sleep(COALESCE_WINDOW_S)
                self._flush_wanted = trio.Event()
                self.flush_heartbeats()
        finally:
            self._coalescing = False
            self.flush_heartbeats()

    def flush_heartbeats(self) -> None:
        pending, self._pending_heartbeats = self._pending_heartbeats, []
        if not pending or self.transport is None:
            return
        batches, _rest = coalesce_heartbeats(pending)
        prefix = BATCH_GROUP_ID.to_bytes(GROUP_ID_BYTES, "big")
        for batch in batches:
            self.transport.send_nowait(batch.to_id, Channel.HEARTBEAT, codec.encode(batch, prefix))
            self.heartbeat_batches_sent += 1

    # -- MessageHandler ------------------------------------------------------------------

    def on_message(self, from_peer: int, channel: Channel, payload: bytes) -> None:
        group_id = int.from_bytes(payload[:GROUP_ID_BYTES], "big")
        if group_id == BATCH_GROUP_ID:
            self._on_batch(from_peer, payload)
            return
        group = self.lookup(group_id)
        if group is None:
            self.dropped_unknown_group += 1
            return
        try:
            message = codec.decode(payload, start=GROUP_ID_BYTES)
        except codec.CodecError as error:
            self.dropped_undecodable += 1
            logs.event(
                "raft_message_undecodable", logging.WARNING, peer=from_peer, error=str(error)
            )
            return
        if isinstance(message, Message):
            group.step(message)

    def _on_batch(self, from_peer: int, payload: bytes) -> None:
        try:
            batch = codec.decode(payload, start=GROUP_ID_BYTES)
        except codec.CodecError as error:
            self.dropped_undecodable += 1
            logs.event("raft_batch_undecodable", logging.WARNING, peer=from_peer, error=str(error))
            return
        if not isinstance(batch, HeartbeatBatch | HeartbeatResponseBatch):
            self.dropped_undecodable += 1
            return
        for group_id, message in fan_out(batch):
            group = self.lookup(group_id)
            if group is None:
                self.dropped_unknown_group += 1
                continue
            group.step(message)

    async def on_call(self, from_peer: int, method: str, payload: bytes) -> bytes:
        if method == NODE_PING:
            return b"ok"
        if method == GROUP_LEADERS:
            return self._group_leaders(payload)
        if method == TRANSFER_RPC and self.transfer_call is not None:
            return await self.transfer_call(payload)
        if method == CLUSTER_JOIN and self.join_call is not None:
            return await self.join_call(from_peer, payload)
        if method == SEGMENT_READ and self.segment_read_call is not None:
            return self.segment_read_call(payload)
        if method != CONTROLLER_EXECUTE:
            raise NoSuchMethod(method)
        command = json.loads(payload)
        return json.dumps(await self.execute_command(command)).encode()

    def _group_leaders(self, payload: bytes) -> bytes:
        asked = json.loads(payload)
        if not isinstance(asked, list) or len(asked) > GROUP_LEADERS_ASK_MAX:
            raise ValueError(f"{GROUP_LEADERS} takes a list of at most {GROUP_LEADERS_ASK_MAX} ids")
        answers: dict[str, list[int]] = {}
        for group_id in asked:
            group = self.lookup(int(group_id))
            if group is not None and group.leader_id:
                answers[str(group_id)] = [group.leader_id, group.raw.term]
        return json.dumps(answers).encode()
