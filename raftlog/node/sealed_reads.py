"""Fetches of sealed segments this node does not hold, answered by a replica that does.

A partition's head leader usually holds every sealed segment (successors stay on the head's
nodes), but not always: a node that replaced a dead one may lead the head while the older
segments still arrive, a replica that cut corrupt data catches up again, and a client may
ask a node that holds no replica of the partition at all. Sealed segments are immutable
and wholly committed, so any replica that holds one answers for it exactly as the head's
leader would. The node asked therefore forwards the read over the internal transport
(`SEGMENT_READ`) and hands the batches to its client as its own. Forwarding rather than
KIP-392's preferred read replica, because only librdkafka follows that hint; kafka-python
and aiokafka would keep asking the leader.
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable

import attrs
import trio

from raftlog.controller.metadata import MetadataState, SegmentInfo
from raftlog.partition.chain import PartitionChain
from raftlog.partition.replica import ReadResult
from raftlog.protocol.errors import ErrorCode
from raftlog.transport import TransportError

SEGMENT_READ = "segment.read"
READ_BYTES_MAX = 4 * 1024 * 1024
"""Most record bytes one forwarded read carries; well under the transport's message limit."""
FORWARD_TIMEOUT_S = 2.0
"""How long one fetch spends on forwarded reads, over every replica it tries."""

_REQUEST = struct.Struct(">QqI?")
_REPLY_HEAD = struct.Struct(">hqq")

Call = Callable[[int, str, bytes, float], Awaitable[bytes]]
"""`Transport.call`: (peer, method, payload, timeout_s) -> reply."""


@attrs.frozen
class SegmentRead:
    """Read committed batches of one sealed segment group from `offset` on."""

    group_id: int
    offset: int
    max_bytes: int
    at_least_one: bool

    def encode(self) -> bytes:
        return _REQUEST.pack(self.group_id, self.offset, self.max_bytes, self.at_least_one)

    @classmethod
    def decode(cls, payload: bytes) -> SegmentRead:
        if len(payload) != _REQUEST.size:
            raise ValueError(f"{SEGMENT_READ} takes {_REQUEST.size} bytes, got {len(payload)}")
        group_id, offset, max_bytes, at_least_one = _REQUEST.unpack(payload)
        if offset < 0 or not 0 <= max_bytes <= READ_BYTES_MAX:
            raise ValueError(f"{SEGMENT_READ}: offset {offset} or max_bytes {max_bytes} invalid")
        return cls(group_id, offset, max_bytes, at_least_one)


def encode_reply(result: ReadResult) -> bytes:
    head = _REPLY_HEAD.pack(result.error_code, result.high_watermark, result.log_start_offset)
    return head + result.records


def decode_reply(reply: bytes) -> ReadResult:
    if len(reply) < _REPLY_HEAD.size:
        raise ValueError(f"{SEGMENT_READ} reply of {len(reply)} bytes is too short")
    error_code, high_watermark, log_start_offset = _REPLY_HEAD.unpack_from(reply)
    return ReadResult(error_code, reply[_REPLY_HEAD.size :], high_watermark, log_start_offset)


def serve(
    state: MetadataState, chain_of: Callable[[str, int], PartitionChain | None], payload: bytes
) -> bytes:
    """Answer a peer's read from the local replica of a sealed segment, if this node has one.

    Only a replica that has applied the segment's SEAL answers: its batches up to the seal
    are then final. Anything else answers NOT_LEADER_OR_FOLLOWER, and the asking node tries
    another replica.
    """
    request = SegmentRead.decode(payload)
    located = state.segment_by_group(request.group_id)
    chain = None if located is None else chain_of(located[0].topic, located[0].index)
    if chain is not None:
        for segment in chain.segments:
            sealed_end = segment.sealed_last_offset
            if (
                segment.group.group_id == request.group_id
                and sealed_end is not None
                and segment.log_start_offset <= request.offset <= sealed_end
            ):
                result = segment.read_committed(
                    request.offset, request.max_bytes, at_least_one=request.at_least_one
                )
                return encode_reply(
                    ReadResult(
                        result.error_code,
                        result.records,
                        chain.high_watermark,
                        chain.log_start_offset,
                    )
                )
    return encode_reply(ReadResult(int(ErrorCode.NOT_LEADER_OR_FOLLOWER), b"", -1, -1))


def sealed_segment_at(
    state: MetadataState, topic: str, index: int, offset: int
) -> SegmentInfo | None:
    """The sealed segment that holds `offset` in the controller's record, if any."""
    info = state.topics.get(topic)
    if info is None or not 0 <= index < len(info.partitions):
        return None
    for segment in info.partitions[index].segments:
        if segment.last_offset is not None and segment.base_offset <= offset <= segment.last_offset:
            return segment
    return None


@attrs.define(eq=False)
class SealedReads:
    """Reads of sealed segments from the replicas that hold them, for the fetch handler."""

    node_id: int
    state: Callable[[], MetadataState]
    call: Call
    unreachable: Callable[[], frozenset[int]] = frozenset
    on_forwarded: Callable[[], None] = lambda: None
    """Called for each read another replica answered (the node's metrics count them)."""

    async def read(
        self, topic: str, index: int, offset: int, max_bytes: int, *, deadline: float
    ) -> ReadResult | None:
        """Batches from `offset` on read by a replica of the sealed segment holding it.

        None when no segment of the record holds `offset` sealed, or no replica answered
        before `deadline`: the caller then answers as it would have without forwarding.
        """
        segment = sealed_segment_at(self.state(), topic, index, offset)
        if segment is None:
            return None
        request = SegmentRead(
            segment.group_id, offset, min(max(max_bytes, 0), READ_BYTES_MAX), True
        )
        unreachable = self.unreachable()
        peers = sorted(
            (node for node in segment.replicas if node != self.node_id),
            key=lambda node: (node in unreachable, node),
        )
        for peer in peers:
            timeout_s = deadline - trio.current_time()
            if timeout_s <= 0:
                return None
            result = None
            with trio.move_on_at(deadline):
                try:
                    reply = await self.call(peer, SEGMENT_READ, request.encode(), timeout_s)
                    result = decode_reply(reply)
                except (TransportError, ValueError):
                    continue
            if result is not None and result.error_code == 0:
                self.on_forwarded()
                return result
        return None
