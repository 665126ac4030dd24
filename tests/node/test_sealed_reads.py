"""Forwarded reads of sealed segments: the wire format's bounds and which replica is asked.

The transport is replaced by a function here to steer each peer's answer; the real path
(processes, sockets, HTTP/2) is covered by tests/cluster/test_sealed_reads.py.
"""

from __future__ import annotations

import pytest
import trio

from raftlog.controller.metadata import MetadataState
from raftlog.node.sealed_reads import (
    READ_BYTES_MAX,
    SEGMENT_READ,
    SealedReads,
    SegmentRead,
    decode_reply,
    encode_reply,
    sealed_segment_at,
)
from raftlog.partition.replica import ReadResult
from raftlog.protocol.errors import ErrorCode
from raftlog.transport import PeerUnavailable

from .test_metadata import create, state_with_nodes


def _sealed_state() -> MetadataState:
    """Topic t: offsets 0-99 sealed on nodes 1-3, the head from 100 on nodes 2-4."""
    state = state_with_nodes(1, 2, 3, 4)
    first = state.apply(create("t", [[1, 2, 3]], rf=3)).partitions[0].head
    state.apply(
        {
            "type": "seal_and_link",
            "group_id": first.group_id,
            "last_offset": 99,
            "next_replicas": [2, 3, 4],
        }
    )
    return state


def test_a_request_round_trips_and_bad_ones_are_refused() -> None:
    request = SegmentRead(7, 42, 1000, True)
    assert SegmentRead.decode(request.encode()) == request
    encoded = request.encode()
    for bad in (encoded[:-1], encoded + b"\0", b""):
        with pytest.raises(ValueError, match="takes"):
            SegmentRead.decode(bad)
    for offset, max_bytes in ((-1, 10), (0, READ_BYTES_MAX + 1)):
        with pytest.raises(ValueError, match="invalid"):
            SegmentRead.decode(SegmentRead(7, offset, max_bytes, False).encode())


def test_a_reply_round_trips_and_a_short_one_is_refused() -> None:
    result = ReadResult(0, b"batches", 120, 0)
    assert decode_reply(encode_reply(result)) == result
    with pytest.raises(ValueError, match="too short"):
        decode_reply(b"\0" * 5)


def test_only_offsets_of_sealed_segments_are_located() -> None:
    state = _sealed_state()
    assert sealed_segment_at(state, "t", 0, 0) is not None
    located = sealed_segment_at(state, "t", 0, 99)
    assert located is not None and located.replicas == (1, 2, 3)
    assert sealed_segment_at(state, "t", 0, 100) is None  # the head
    assert sealed_segment_at(state, "t", 1, 0) is None
    assert sealed_segment_at(state, "unknown", 0, 0) is None


def _reads(answers: dict[int, object], asked: list[int], node_id: int = 2) -> SealedReads:
    async def call(peer: int, method: str, payload: bytes, timeout_s: float) -> bytes:
        assert method == SEGMENT_READ and timeout_s > 0
        assert SegmentRead.decode(payload).offset == 10
        asked.append(peer)
        answer = answers[peer]
        if isinstance(answer, Exception):
            raise answer
        if answer == "hang":
            await trio.sleep_forever()
        assert isinstance(answer, bytes)
        return answer

    state = _sealed_state()
    return SealedReads(node_id, lambda: state, call, lambda: frozenset({1}))


def test_reachable_replicas_are_asked_first_and_failures_move_on() -> None:
    held = encode_reply(ReadResult(0, b"records", 150, 0))
    refused = encode_reply(ReadResult(int(ErrorCode.NOT_LEADER_OR_FOLLOWER), b"", -1, -1))
    asked: list[int] = []
    # Node 2 asks: never itself; 3 (reachable) before 1 (unreachable); 3 refuses, 1 answers.
    reads = _reads({1: held, 3: refused}, asked)

    async def main() -> ReadResult | None:
        return await reads.read("t", 0, 10, 1 << 20, deadline=trio.current_time() + 1)

    assert trio.run(main) == ReadResult(0, b"records", 150, 0)
    assert asked == [3, 1]

    asked.clear()
    reads = _reads({1: PeerUnavailable(1, "down"), 3: b"short"}, asked)
    assert trio.run(main) is None
    assert asked == [3, 1]


def test_the_deadline_bounds_every_attempt() -> None:
    asked: list[int] = []
    reads = _reads({1: "hang", 3: "hang"}, asked)

    async def main() -> tuple[ReadResult | None, float]:
        start = trio.current_time()
        found = await reads.read("t", 0, 10, 1 << 20, deadline=start + 0.3)
        return found, trio.current_time() - start

    found, waited_s = trio.run(main)
    assert found is None
    assert waited_s < 1.0
    assert asked == [3]


def test_offsets_outside_sealed_segments_ask_nobody() -> None:
    asked: list[int] = []
    reads = _reads({}, asked)

    async def main() -> ReadResult | None:
        return await reads.read("t", 0, 100, 1 << 20, deadline=trio.current_time() + 1)

    assert trio.run(main) is None
    assert asked == []
