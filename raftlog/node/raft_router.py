"""Multi-raft over the transport: every hosted group's messages share one connection per peer.

A Raft message travels as an 8-byte group id followed by the core's own encoding.
Heartbeats (and their responses) go on the HEARTBEAT channel, everything else on RAFT, so
a burst of appends never delays the heartbeats that keep leaders in office. A message for
a group this node does not host (yet) is dropped: Raft resends what matters.

The router also serves the node's RPCs: today, controller commands forwarded by nodes
that are not the controller leader.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from raftlog import logs
from raftlog.raft import codec
from raftlog.raft.messages import Heartbeat, HeartbeatResponse, Message
from raftlog.replica.group import ReplicaGroup
from raftlog.transport import Channel, NoSuchMethod, Transport

GROUP_ID_BYTES = 8
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
    dropped_unknown_group: int = 0
    dropped_undecodable: int = 0

    def sender(self, group_id: int) -> Callable[[Message], None]:
        """The `send` callable of one group's shell."""
        prefix = group_id.to_bytes(GROUP_ID_BYTES, "big")

        def send(message: Message) -> None:
            if self.transport is None:
                raise RuntimeError(f"group {group_id} has peers but the node has no transport")
            channel = (
                Channel.HEARTBEAT
                if isinstance(message, Heartbeat | HeartbeatResponse)
                else Channel.RAFT
            )
            self.transport.send_nowait(message.to_id, channel, prefix + codec.encode(message))

        return send

    # -- MessageHandler ------------------------------------------------------------------

    def on_message(self, from_peer: int, channel: Channel, payload: bytes) -> None:
        group_id = int.from_bytes(payload[:GROUP_ID_BYTES], "big")
        group = self.lookup(group_id)
        if group is None:
            self.dropped_unknown_group += 1
            return
        try:
            message = codec.decode(payload[GROUP_ID_BYTES:])
        except codec.CodecError as error:
            self.dropped_undecodable += 1
            logs.event(
                "raft_message_undecodable", logging.WARNING, peer=from_peer, error=str(error)
            )
            return
        if isinstance(message, Message):
            group.step(message)

    async def on_call(self, from_peer: int, method: str, payload: bytes) -> bytes:
        if method == NODE_PING:
            return b"ok"
        if method == GROUP_LEADERS:
            return self._group_leaders(payload)
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
