"""Heartbeats of many groups to one peer leave as one message per tick, and arrive intact.

The router is driven directly; the transport underneath is replaced by a recorder of what
would be sent (the real transport's framing and delivery are tested in tests/transport/,
and the cluster tests run the router over it).
"""

from __future__ import annotations

from typing import Any

import attrs
import trio

from raftlog.node.raft_router import GROUP_ID_BYTES, RaftRouter
from raftlog.raft.messages import AppendEntries, Heartbeat, HeartbeatResponse, Message
from raftlog.transport import Channel

GROUPS = 1000


@attrs.define
class _RecordingTransport:
    sent: list[tuple[int, Channel, bytes]] = attrs.field(factory=list)

    def send_nowait(
        self, peer_id: int, channel: Channel, payload: bytes, *, write_now: bool = False
    ) -> bool:
        self.sent.append((peer_id, channel, payload))
        return True


@attrs.define
class _RecordingGroup:
    received: list[Message] = attrs.field(factory=list)

    def step(self, message: Message) -> None:
        self.received.append(message)


async def _no_command(_command: dict[str, Any]) -> dict[str, Any]:
    raise AssertionError("no controller commands here")


def test_one_tick_of_a_thousand_groups_is_one_message_per_peer() -> None:
    sender_transport = _RecordingTransport()
    sender = RaftRouter(lambda _group: None, _no_command, transport=sender_transport)  # type: ignore[arg-type]
    groups = {group_id: _RecordingGroup() for group_id in range(1, GROUPS + 1)}
    receiver = RaftRouter(groups.get, _no_command)  # type: ignore[arg-type]

    async def scenario() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(sender.run_heartbeat_flusher)
            for group_id in groups:
                peer = 2 + group_id % 2  # two peers
                send = sender.sender(group_id)
                send(Heartbeat(1, peer, term=group_id, commit=group_id * 10, quiesce=True))
                send(HeartbeatResponse(1, peer, term=group_id, read_sequence=7))
            send(AppendEntries(1, 2, 5, 0, 0, 0))  # not a heartbeat: goes out at once
            assert len(sender_transport.sent) == 1
            await trio.sleep(0.05)
            nursery.cancel_scope.cancel()

    trio.run(scenario)
    heartbeat_messages = [sent for sent in sender_transport.sent if sent[1] == Channel.HEARTBEAT]
    # Per peer: one batch of heartbeats and one of responses, for 500 groups each.
    assert sorted(peer for peer, _channel, _payload in heartbeat_messages) == [2, 2, 3, 3]
    assert sender.heartbeat_batches_sent == 4
    for _peer, channel, payload in sender_transport.sent:
        receiver.on_message(1, channel, payload)
    for group_id, group in groups.items():
        heartbeats = [m for m in group.received if isinstance(m, Heartbeat)]
        responses = [m for m in group.received if isinstance(m, HeartbeatResponse)]
        peer = 2 + group_id % 2
        assert heartbeats == [Heartbeat(1, peer, term=group_id, commit=group_id * 10, quiesce=True)]
        assert responses == [HeartbeatResponse(1, peer, term=group_id, read_sequence=7)]
    assert any(isinstance(m, AppendEntries) for m in groups[GROUPS].received)


def test_a_garbled_batch_is_dropped_and_counted() -> None:
    receiver = RaftRouter(lambda _group: None, _no_command)
    payload = ((1 << 64) - 1).to_bytes(GROUP_ID_BYTES, "big") + b"\x00garbage"
    receiver.on_message(2, Channel.HEARTBEAT, payload)
    assert receiver.dropped_undecodable == 1
