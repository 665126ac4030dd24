"""Group and offset requests of one connection are handled in order; others pipeline.

Kafka handles a connection's requests one at a time. A client that commits offsets and
then rejoins its group on one connection relies on that: were the join handled while the
commit is still being written, the rebalance could finish and the partition's new owner
read the old committed offset. The listener starts such requests only after every earlier
request of their connection is done, and keeps pipelining the rest (produce, fetch).
"""

from __future__ import annotations

import socket
import struct
import time

import trio

from raftlog.kafka.handlers import SUPPORTED_VERSIONS
from raftlog.kafka.listener import KafkaListener
from raftlog.protocol.connection import RequestReceived
from raftlog.protocol.headers import RequestHeader, encode_request_header
from raftlog.protocol.messages._runtime import Message
from raftlog.protocol.messages.generated.join_group_request import JoinGroupRequest
from raftlog.protocol.messages.generated.join_group_response import JoinGroupResponse
from raftlog.protocol.messages.generated.metadata_request import MetadataRequest
from raftlog.protocol.messages.generated.metadata_response import MetadataResponse
from raftlog.protocol.messages.generated.offset_commit_request import OffsetCommitRequest
from raftlog.protocol.messages.generated.offset_commit_response import OffsetCommitResponse

SLOW_S = 0.3


def request_frame(api_key: int, version: int, body: Message, correlation_id: int) -> bytes:
    header = RequestHeader(
        request_api_key=api_key, request_api_version=version, correlation_id=correlation_id,
        client_id="order-test",
    )  # fmt: skip
    payload = encode_request_header(header) + body.encode(version)
    return struct.pack(">i", len(payload)) + payload


def _exchange(port: int, frames: list[bytes]) -> None:
    """Send every frame at once (pipelined), then read one response per frame."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"".join(frames))
        for _ in frames:
            (size,) = struct.unpack(">i", _read(sock, 4))
            _read(sock, size)


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "the listener closed the connection"
        data += chunk
    return data


def test_a_join_waits_for_the_commit_before_it_and_metadata_pipelines() -> None:
    spans: dict[str, tuple[float, float]] = {}

    async def handler(request: RequestReceived) -> Message:
        name = f"{request.api_key}/{request.correlation_id}"
        started = time.monotonic()
        if request.api_key in (8, 3) and request.correlation_id == 1:
            await trio.sleep(SLOW_S)  # a commit (or a metadata) that takes a while
        spans[name] = (started, time.monotonic())
        if request.api_key == 8:
            return OffsetCommitResponse(throttle_time_ms=0, topics=[])
        if request.api_key == 11:
            return JoinGroupResponse(
                throttle_time_ms=0, error_code=0, generation_id=1, protocol_type="consumer",
                protocol_name="range", leader="m", skip_assignment=False, member_id="m",
                members=[],
            )  # fmt: skip
        return MetadataResponse(throttle_time_ms=0, brokers=[], cluster_id=None,
                                controller_id=-1, topics=[])  # fmt: skip

    commit = OffsetCommitRequest(
        group_id="g", generation_id_or_member_epoch=1, member_id="m", group_instance_id=None,
        topics=[],
    )  # fmt: skip
    join = JoinGroupRequest(
        group_id="g", session_timeout_ms=6000, rebalance_timeout_ms=6000, member_id="m",
        group_instance_id=None, protocol_type="consumer", protocols=[], reason=None,
    )  # fmt: skip
    metadata = MetadataRequest(topics=None)

    async def main() -> None:
        listener = KafkaListener(handler, SUPPORTED_VERSIONS)
        async with trio.open_nursery() as nursery:
            port = await nursery.start(listener.serve, "127.0.0.1", 0)
            await trio.to_thread.run_sync(
                _exchange,
                port,
                [
                    request_frame(8, 8, commit, correlation_id=1),
                    request_frame(11, 9, join, correlation_id=2),
                    request_frame(3, 12, metadata, correlation_id=1),
                    request_frame(3, 12, metadata, correlation_id=2),
                ],
            )
            nursery.cancel_scope.cancel()

    trio.run(main)
    commit_end = spans["8/1"][1]
    assert spans["11/2"][0] >= commit_end, "the join started before the commit was done"
    # Metadata is pipelined: the second starts while the first is still sleeping.
    assert spans["3/2"][0] < spans["3/1"][1]
