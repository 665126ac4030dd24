"""The classic protocol's error codes, as a client sees them: raw requests on our codec.

MEMBER_ID_REQUIRED, ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS,
FENCED_INSTANCE_ID (static membership, group.instance.id) and NOT_COORDINATOR, on a
three-node cluster so that a node other than the coordinator can be asked.
"""

from __future__ import annotations

import pathlib
import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from raftlog.cli_groups import GroupCommandError, find_coordinator
from raftlog.kafka.admin_client import KafkaAdminConnection
from raftlog.protocol.errors import ErrorCode
from raftlog.protocol.headers import encode_request_header
from raftlog.protocol.messages._runtime import Message
from raftlog.protocol.messages.generated.heartbeat_request import HeartbeatRequest
from raftlog.protocol.messages.generated.join_group_request import (
    JoinGroupRequest,
    JoinGroupRequestProtocol,
)
from raftlog.protocol.messages.generated.offset_commit_request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from raftlog.protocol.messages.generated.request_header import RequestHeader
from raftlog.protocol.messages.generated.sync_group_request import (
    SyncGroupRequest,
    SyncGroupRequestAssignment,
)
from raftlog.testing import LocalCluster

pytestmark = pytest.mark.clients
JOIN_VERSION = 5  # MEMBER_ID_REQUIRED from v4, group_instance_id from v5
SESSION_MS = 6000


def _join(address: str, group: str, member_id: str = "", instance: str | None = None,
          session_ms: int = SESSION_MS) -> Message:  # fmt: skip
    with KafkaAdminConnection(address, timeout_s=30) as connection:
        return connection.request(
            JoinGroupRequest(
                group_id=group, session_timeout_ms=session_ms, rebalance_timeout_ms=session_ms,
                member_id=member_id, group_instance_id=instance, protocol_type="consumer",
                protocols=[JoinGroupRequestProtocol(name="range", metadata=b"\x00\x00")],
            ),
            JOIN_VERSION,
        )  # fmt: skip


def _sync(address: str, group: str, generation: int, member_id: str, instance: str | None,
          leader: bool) -> Message:  # fmt: skip
    assignments = [SyncGroupRequestAssignment(member_id, b"")] if leader else []
    with KafkaAdminConnection(address) as connection:
        return connection.request(
            SyncGroupRequest(group_id=group, generation_id=generation, member_id=member_id,
                             group_instance_id=instance, assignments=assignments),
            3,
        )  # fmt: skip


def _heartbeat(address: str, group: str, generation: int, member_id: str,
               instance: str | None = None) -> int:  # fmt: skip
    with KafkaAdminConnection(address) as connection:
        response = connection.request(
            HeartbeatRequest(group_id=group, generation_id=generation, member_id=member_id,
                             group_instance_id=instance),
            3,
        )  # fmt: skip
    return int(response.error_code)  # type: ignore[attr-defined]


def _commit(address: str, group: str, generation: int, member_id: str,
            instance: str | None = None) -> int:  # fmt: skip
    with KafkaAdminConnection(address) as connection:
        response = connection.request(
            OffsetCommitRequest(
                group_id=group, generation_id_or_member_epoch=generation, member_id=member_id,
                group_instance_id=instance,
                topics=[OffsetCommitRequestTopic("t", [OffsetCommitRequestPartition(0, 5)])],
            ),
            7,
        )  # fmt: skip
    return int(response.topics[0].partitions[0].error_code)  # type: ignore[attr-defined]


NOT_READY = (
    ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
    ErrorCode.COORDINATOR_NOT_AVAILABLE,
    ErrorCode.NOT_COORDINATOR,
)


def _coordinator(cluster: LocalCluster, group: str) -> tuple[int, str]:
    """The group's coordinator, once it serves the group (start-up): its offsets partition
    has a leader, and that leader committed in its term and loaded the partition."""
    deadline = time.monotonic() + 30
    while True:
        try:
            node_id, address = find_coordinator(cluster.bootstrap, group)
            if _heartbeat(address, group, 0, "probe") not in NOT_READY:
                return node_id, address
        except GroupCommandError:
            pass
        assert time.monotonic() < deadline, f"no coordinator serves {group!r}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    directory: pathlib.Path = tmp_path_factory.mktemp("error-codes")
    with LocalCluster(directory, nodes=3) as started:
        admin = AdminClient({"bootstrap.servers": started.bootstrap})
        admin.create_topics([NewTopic("t", num_partitions=1)])["t"].result(30)
        yield started


def test_dynamic_member_errors(cluster: LocalCluster) -> None:
    group = "dynamic"
    node_id, coordinator = _coordinator(cluster, group)
    for session_ms in (-1, 0, 5999, 1_800_001):  # Kafka's default bounds: 6 s to 30 min
        refused = _join(coordinator, group, session_ms=session_ms)
        assert refused.error_code == ErrorCode.INVALID_SESSION_TIMEOUT  # type: ignore[attr-defined]
    first = _join(coordinator, group)
    assert first.error_code == ErrorCode.MEMBER_ID_REQUIRED  # type: ignore[attr-defined]
    member = first.member_id  # type: ignore[attr-defined]
    assert member
    joined = _join(coordinator, group, member)
    assert joined.error_code == 0 and joined.leader == member  # type: ignore[attr-defined]
    generation = joined.generation_id  # type: ignore[attr-defined]
    synced = _sync(coordinator, group, generation, member, None, leader=True)
    assert synced.error_code == 0  # type: ignore[attr-defined]
    assert _heartbeat(coordinator, group, generation, member) == 0
    assert _heartbeat(coordinator, group, generation + 1, member) == ErrorCode.ILLEGAL_GENERATION
    assert _commit(coordinator, group, generation - 1, member) == ErrorCode.ILLEGAL_GENERATION
    assert _heartbeat(coordinator, group, generation, "nobody") == ErrorCode.UNKNOWN_MEMBER_ID
    assert _commit(coordinator, group, generation, "nobody") == ErrorCode.UNKNOWN_MEMBER_ID
    assert _commit(coordinator, group, generation, member) == 0

    # A node that does not lead the group's offsets partition sends clients elsewhere.
    other = next(m.address for m in cluster.members if m.node_id != node_id)
    assert _heartbeat(other, group, generation, member) == ErrorCode.NOT_COORDINATOR
    assert _join(other, group, member).error_code == ErrorCode.NOT_COORDINATOR  # type: ignore[attr-defined]

    # A second member joining starts a round: the first learns it from its heartbeat.
    second: dict[str, Message] = {}

    def join_second() -> None:
        required = _join(coordinator, group)
        second["join"] = _join(coordinator, group, required.member_id)  # type: ignore[attr-defined]

    thread = threading.Thread(target=join_second)
    thread.start()
    for _attempt in range(50):
        code = _heartbeat(coordinator, group, generation, member)
        if code == ErrorCode.REBALANCE_IN_PROGRESS:
            break
        thread.join(0.1)
    assert code == ErrorCode.REBALANCE_IN_PROGRESS
    assert _commit(coordinator, group, generation, member) == ErrorCode.REBALANCE_IN_PROGRESS
    rejoined = _join(coordinator, group, member)
    thread.join(30)
    assert rejoined.error_code == 0 and second["join"].error_code == 0  # type: ignore[attr-defined]
    assert rejoined.generation_id == generation + 1  # type: ignore[attr-defined]
    assert len(rejoined.members) == 2  # type: ignore[attr-defined]


def test_static_member_is_fenced_by_its_successor(cluster: LocalCluster) -> None:
    group = "static"
    _node, coordinator = _coordinator(cluster, group)
    # A static member needs no MEMBER_ID_REQUIRED round trip: its instance id names it.
    first = _join(coordinator, group, instance="instance-1")
    assert first.error_code == 0  # type: ignore[attr-defined]
    old_member, generation = first.member_id, first.generation_id  # type: ignore[attr-defined]
    assert _sync(coordinator, group, generation, old_member, "instance-1", True).error_code == 0  # type: ignore[attr-defined]
    assert _heartbeat(coordinator, group, generation, old_member, "instance-1") == 0

    # The same instance restarts (a new process, no member id): it takes the old place.
    restarted = _join(coordinator, group, instance="instance-1")
    assert restarted.error_code == 0  # type: ignore[attr-defined]
    new_member = restarted.member_id  # type: ignore[attr-defined]
    assert new_member != old_member
    # The old incarnation, still alive somewhere, is fenced on everything it tries.
    fenced = ErrorCode.FENCED_INSTANCE_ID
    new_generation = restarted.generation_id  # type: ignore[attr-defined]
    assert _heartbeat(coordinator, group, new_generation, old_member, "instance-1") == fenced
    assert _commit(coordinator, group, new_generation, old_member, "instance-1") == fenced
    stale_sync = _sync(coordinator, group, new_generation, old_member, "instance-1", True)
    assert stale_sync.error_code == fenced  # type: ignore[attr-defined]
    # A member id paired with another instance's id is fenced too.
    assert _heartbeat(coordinator, group, new_generation, new_member, "instance-2") == fenced
    synced = _sync(coordinator, group, new_generation, new_member, "instance-1", True)
    assert synced.error_code == 0  # type: ignore[attr-defined]
    assert _heartbeat(coordinator, group, new_generation, new_member, "instance-1") == 0


def _join_then_reset(address: str, group: str, member_id: str) -> None:
    """Send a JoinGroup and, while it waits for the round, reset the connection (RST, as a
    crashed client's kernel does when unread data is left): the handler is cancelled."""
    header = RequestHeader(request_api_key=11, request_api_version=JOIN_VERSION,
                           correlation_id=1, client_id="abandoner")  # fmt: skip
    body = JoinGroupRequest(
        group_id=group, session_timeout_ms=SESSION_MS, rebalance_timeout_ms=SESSION_MS,
        member_id=member_id, protocol_type="consumer",
        protocols=[JoinGroupRequestProtocol(name="range", metadata=b"\x00\x00")],
    )  # fmt: skip
    payload = encode_request_header(header) + body.encode(JOIN_VERSION)
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(struct.pack(">i", len(payload)) + payload)
        time.sleep(0.5)  # the coordinator has it and waits for the first member to rejoin
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def test_a_member_whose_join_was_cut_off_still_expires(cluster: LocalCluster) -> None:
    """A join cancelled with its connection leaves a member behind; its session must still
    run out, or it would stay in every later generation holding partitions nobody reads."""
    group = "abandoned"
    _node, coordinator = _coordinator(cluster, group)
    member = _join(coordinator, group).member_id  # type: ignore[attr-defined]
    joined = _join(coordinator, group, member)
    generation = joined.generation_id  # type: ignore[attr-defined]
    assert _sync(coordinator, group, generation, member, None, True).error_code == 0  # type: ignore[attr-defined]
    ghost = _join(coordinator, group).member_id  # type: ignore[attr-defined]
    _join_then_reset(coordinator, group, ghost)

    assert _heartbeat(coordinator, group, generation, member) == ErrorCode.REBALANCE_IN_PROGRESS
    rejoined = _join(coordinator, group, member)
    generation = rejoined.generation_id  # type: ignore[attr-defined]
    # The cut-off member had joined this round, so it is in it (as in Kafka) ...
    assert {m.member_id for m in rejoined.members} == {member, ghost}  # type: ignore[attr-defined]
    assert _sync(coordinator, group, generation, member, None, True).error_code == 0  # type: ignore[attr-defined]
    # ... until its session lapses: then a new round has the live member alone.
    deadline = time.monotonic() + SESSION_MS / 1000 * 3
    while _heartbeat(coordinator, group, generation, member) == 0:
        assert time.monotonic() < deadline, "the cut-off member never expired"
        time.sleep(0.5)
    alone = _join(coordinator, group, member)
    assert [m.member_id for m in alone.members] == [member]  # type: ignore[attr-defined]
