"""Heartbeats of many groups between one pair of nodes, in one message.

A node hosts thousands of groups (one per segment); sending one heartbeat per group per tick
to each peer would swamp the link. The host collects the heartbeats (and heartbeat responses)
its groups address to one peer into a ``HeartbeatBatch`` (or ``HeartbeatResponseBatch``), and
the receiving host fans a batch out into per-group messages.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from raftlog.raft.messages import Heartbeat, HeartbeatResponse, Message

DEFAULT_MAX_HEARTBEATS_PER_BATCH = 4096


@attrs.frozen
class GroupHeartbeat:
    group_id: int
    term: int
    commit: int
    read_sequence: int = 0
    quiesce: bool = False


@attrs.frozen
class GroupHeartbeatResponse:
    group_id: int
    term: int
    read_sequence: int = 0


@attrs.frozen
class HeartbeatBatch:
    from_id: int
    to_id: int
    heartbeats: tuple[GroupHeartbeat, ...]


@attrs.frozen
class HeartbeatResponseBatch:
    from_id: int
    to_id: int
    responses: tuple[GroupHeartbeatResponse, ...]


Batch = HeartbeatBatch | HeartbeatResponseBatch


def coalesce_heartbeats(
    outgoing: Iterable[tuple[int, Message]],
    max_heartbeats_per_batch: int = DEFAULT_MAX_HEARTBEATS_PER_BATCH,
) -> tuple[list[Batch], list[tuple[int, Message]]]:
    """Split ``(group_id, message)`` pairs into batches per peer and the other messages.

    Order among the remaining messages is kept; batches hold at most
    ``max_heartbeats_per_batch`` entries each.
    """
    if max_heartbeats_per_batch <= 0:
        raise ValueError("max_heartbeats_per_batch must be positive")
    heartbeats: dict[tuple[int, int], list[GroupHeartbeat]] = {}
    responses: dict[tuple[int, int], list[GroupHeartbeatResponse]] = {}
    rest: list[tuple[int, Message]] = []
    for group_id, message in outgoing:
        link = (message.from_id, message.to_id)
        if isinstance(message, Heartbeat):
            heartbeats.setdefault(link, []).append(
                GroupHeartbeat(
                    group_id, message.term, message.commit, message.read_sequence, message.quiesce
                )
            )
        elif isinstance(message, HeartbeatResponse):
            responses.setdefault(link, []).append(
                GroupHeartbeatResponse(group_id, message.term, message.read_sequence)
            )
        else:
            rest.append((group_id, message))
    batches: list[Batch] = []
    for (from_id, to_id), items in heartbeats.items():
        for start in range(0, len(items), max_heartbeats_per_batch):
            chunk = tuple(items[start : start + max_heartbeats_per_batch])
            batches.append(HeartbeatBatch(from_id, to_id, chunk))
    for (from_id, to_id), answers in responses.items():
        for start in range(0, len(answers), max_heartbeats_per_batch):
            chunk_answers = tuple(answers[start : start + max_heartbeats_per_batch])
            batches.append(HeartbeatResponseBatch(from_id, to_id, chunk_answers))
    return batches, rest


def fan_out(batch: Batch) -> list[tuple[int, Message]]:
    """The per-group messages a received batch stands for, as ``(group_id, message)``."""
    if isinstance(batch, HeartbeatBatch):
        return [
            (
                item.group_id,
                Heartbeat(
                    batch.from_id,
                    batch.to_id,
                    item.term,
                    item.commit,
                    item.read_sequence,
                    item.quiesce,
                ),
            )
            for item in batch.heartbeats
        ]
    return [
        (
            item.group_id,
            HeartbeatResponse(batch.from_id, batch.to_id, item.term, item.read_sequence),
        )
        for item in batch.responses
    ]
