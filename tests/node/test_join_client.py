"""The joining node's loop (`join_cluster`) against real transports on 127.0.0.1 whose
`cluster.join` handlers answer, defer, or refuse."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import trio

from raftlog.config import HostPort
from raftlog.node.join import (
    CLUSTER_JOIN,
    JoinAnswer,
    JoinFailed,
    JoinRefused,
    JoinRequest,
    join_cluster,
    refusal,
    retry_later,
)
from raftlog.transport import Transport, TransportLimits
from raftlog.transport.testing import RecordingHandler

ANSWER = JoinAnswer("cid", {1: ("127.0.0.1", 1), 4: ("127.0.0.1", 4)}, (1, 2, 3), ())
FAST = TransportLimits(connect_timeout_s=1.0)


def _request(joiner: Transport) -> JoinRequest:
    assert joiner.bound_port is not None
    return JoinRequest(4, ("127.0.0.1", joiner.bound_port), ("127.0.0.1", 9092))


def _run(
    reply: Callable[[int, bytes], Awaitable[bytes]],
    check: Callable[[Transport, Transport], Awaitable[None]],
) -> None:
    async def main() -> None:
        seed = Transport(1, "127.0.0.1", 0, RecordingHandler(methods={CLUSTER_JOIN: reply}))
        joiner = Transport(4, "127.0.0.1", 0, RecordingHandler(), limits=FAST)
        async with trio.open_nursery() as nursery:
            await nursery.start(seed.run)
            await nursery.start(joiner.run)
            await check(seed, joiner)
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_a_seed_that_answers_is_joined_through() -> None:
    asked: list[JoinRequest] = []

    async def answer(from_peer: int, payload: bytes) -> bytes:
        asked.append(JoinRequest.decode(payload))
        assert from_peer == 4
        return ANSWER.encode()

    async def check(seed: Transport, joiner: Transport) -> None:
        own = _request(joiner).internal
        seeds = [HostPort(*own), HostPort("127.0.0.1", seed.bound_port or 0)]  # own is skipped
        assert await join_cluster(joiner, _request(joiner), seeds, [], 10.0) == ANSWER

    _run(answer, check)
    assert [request.node_id for request in asked] == [4]


def test_a_refusal_ends_the_attempt_at_once() -> None:
    async def refuse(_from_peer: int, _payload: bytes) -> bytes:
        return refusal("node id 4 is already registered with internal address x:1")

    async def check(seed: Transport, joiner: Transport) -> None:
        started = trio.current_time()
        with pytest.raises(JoinRefused, match="already registered"):
            seeds = [HostPort("127.0.0.1", seed.bound_port or 0)]
            await join_cluster(joiner, _request(joiner), seeds, [], 30.0)
        assert trio.current_time() - started < 5

    _run(refuse, check)


def test_a_member_that_cannot_register_now_fails_a_first_join_but_lets_a_restart_go_on() -> None:
    async def defer(_from_peer: int, _payload: bytes) -> bytes:
        return retry_later("no controller leader is known")

    async def check(seed: Transport, joiner: Transport) -> None:
        seeds = [HostPort("127.0.0.1", seed.bound_port or 0)]
        with pytest.raises(JoinFailed, match=r"within 1\.5 s.*no controller leader is known"):
            await join_cluster(joiner, _request(joiner), seeds, [], 1.5)
        # Restarted on its data dir: node 1 is remembered (its address known), and answering
        # at all is enough to start from memory.
        joiner.set_peer_address(1, "127.0.0.1", seed.bound_port or 0)
        request = _request(joiner)
        assert await join_cluster(joiner, request, [], [1], 10.0, reachable_suffices=True) is None

    _run(defer, check)


def test_nothing_reachable_fails_in_bounded_time_naming_every_address() -> None:
    async def never(_from_peer: int, _payload: bytes) -> bytes:
        raise AssertionError("not called")

    async def check(_seed: Transport, joiner: Transport) -> None:
        with pytest.raises(JoinFailed, match="no seed other than"):
            await join_cluster(joiner, _request(joiner), [], [], 5.0)
        joiner.set_peer_address(2, "127.0.0.1", 1)  # nothing listens on port 1
        started = trio.current_time()
        with pytest.raises(JoinFailed, match=r"node 2: .*; seed 127\.0\.0\.1:1: "):
            await join_cluster(
                joiner, _request(joiner), [HostPort("127.0.0.1", 1)], [2], 2.0,
                reachable_suffices=True,
            )  # fmt: skip
        assert trio.current_time() - started < 4

    _run(never, check)
