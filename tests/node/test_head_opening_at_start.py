"""A restarted node says where a partition ends only once the partition's head is open.

A restart opens groups in batches, in worker threads, while the node already serves
clients; a partition's sealed segments may be open before its head. Such a chain's own
head is a sealed segment, which knows where it ends but not where the partition does:
answered from it, OffsetForLeaderEpoch gave a consumer an end offset below its position,
and librdkafka seeked back and read records twice (jepsen_like campaign c15000, seed
15014, after a kill of all nodes). The sealed segment stands in for the head meanwhile
(Metadata names a leader, with the epoch of the partition's last records) but refuses
retriably every answer that needs the partition's end.

One real node in this process (real sockets, files and fsync); the head's opening is
held back at the one place a slow disk would hold it, the group-opening call.
"""

from __future__ import annotations

import pathlib
import threading
from collections.abc import Callable
from typing import Any

import pytest
import trio

import raftlog.node.node as node_module
from raftlog.config import HostPort, NodeConfig
from raftlog.kafka.admin_client import KafkaAdminConnection
from raftlog.node.node import Node
from raftlog.partition.chain import PartitionChain
from raftlog.protocol.errors import ErrorCode
from raftlog.protocol.messages.generated.list_offsets_request import (
    ListOffsetsPartition,
    ListOffsetsRequest,
    ListOffsetsTopic,
)
from raftlog.protocol.messages.generated.list_offsets_response import ListOffsetsResponse
from raftlog.protocol.messages.generated.metadata_request import (
    MetadataRequest,
    MetadataRequestTopic,
)
from raftlog.protocol.messages.generated.metadata_response import MetadataResponse
from raftlog.protocol.messages.generated.offset_for_leader_epoch_request import (
    OffsetForLeaderEpochRequest,
    OffsetForLeaderPartition,
    OffsetForLeaderTopic,
)
from raftlog.protocol.messages.generated.offset_for_leader_epoch_response import (
    OffsetForLeaderEpochResponse,
)
from raftlog.protocol.records import Record, build_batch

TOPIC = "rolled"
SEGMENT_BYTES = 4096
SEGMENTS = 3
DEADLINE_S = 60.0


def _config(data_dir: pathlib.Path) -> NodeConfig:
    return NodeConfig(
        node_id=1,
        data_dir=data_dir,
        kafka_addr=HostPort("127.0.0.1", 0),
        segment_bytes=SEGMENT_BYTES,
    )


async def _until(condition: Any, what: str) -> None:
    with trio.fail_after(DEADLINE_S):
        while not condition():
            await trio.sleep(0.01)
    assert condition(), what


def _fill(data_dir: pathlib.Path) -> tuple[int, int]:
    """A partition of SEGMENTS segments; returns (its head's group id, its log end)."""
    node = Node(_config(data_dir))
    found: list[tuple[int, int]] = []

    async def scenario() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            assert node.broker is not None
            await node.broker.create_topic(TOPIC, 1, 1, {})
            with trio.fail_after(DEADLINE_S):
                while True:
                    chain = node.broker.partition(TOPIC, 0)
                    if chain is not None and len(chain.segments) >= SEGMENTS:
                        break
                    if chain is not None:
                        await chain.produce(build_batch([Record(value=b"v" * 300)]), -1, 5.0)
                    else:
                        await trio.sleep(0.01)
            # A few records in the head, so that its end lies past its base.
            for _ in range(3):
                assert (
                    await chain.produce(build_batch([Record(value=b"h")]), -1, 5.0)
                ).error_code == 0
            found.append((chain.head.group.group_id, chain.head.log_end_offset))
            nursery.cancel_scope.cancel()

    trio.run(scenario)
    return found[0]


def hold_openings(
    monkeypatch: pytest.MonkeyPatch, held: Callable[[dict[str, Any]], bool]
) -> threading.Event:
    """Hold back every group opening that `held` picks (given the opening call's keyword
    arguments) until the returned gate is set: where a slow disk would hold it."""
    gate = threading.Event()
    opener = node_module.open_replica_group

    def open_replica_group(*args: Any, **kwargs: Any) -> Any:
        if held(kwargs):
            assert gate.wait(DEADLINE_S), "the held-back group was never let go"
        return opener(*args, **kwargs)

    monkeypatch.setattr(node_module, "open_replica_group", open_replica_group)
    return gate


def _restart_holding_back_the_head(
    data_dir: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Node, threading.Event, int, int]:
    """A filled partition, and a node to restart on it whose head group opens only once
    the returned gate is set; also the head's group id and log end before the restart."""
    head_group, log_end = _fill(data_dir)
    gate = hold_openings(monkeypatch, lambda opening: opening.get("group_id") == head_group)
    node = Node(_config(data_dir))
    node._opener.batch_groups_max = 1  # the sealed segments open while the head is held
    return node, gate, head_group, log_end


async def _release_at_exit(gate: threading.Event) -> None:
    """Lets the held-back opening go when the scenario ends, failed or not, so that the
    node's worker thread does not hold the test until its own deadline."""
    try:
        await trio.sleep_forever()
    finally:
        gate.set()


def _epoch_end(port: int, epoch: int, current_epoch: int) -> tuple[int, int, int]:
    request = OffsetForLeaderEpochRequest(
        replica_id=-1,
        topics=[
            OffsetForLeaderTopic(
                topic=TOPIC,
                partitions=[
                    OffsetForLeaderPartition(
                        partition=0, current_leader_epoch=current_epoch, leader_epoch=epoch
                    )
                ],
            )
        ],
    )
    with KafkaAdminConnection(f"127.0.0.1:{port}") as connection:
        response = connection.request(request, 4)
    assert isinstance(response, OffsetForLeaderEpochResponse)
    answer = response.topics[0].partitions[0]
    return answer.error_code, answer.leader_epoch, answer.end_offset


def _latest_offset_error(port: int) -> int:
    request = ListOffsetsRequest(
        replica_id=-1,
        topics=[ListOffsetsTopic(name=TOPIC, partitions=[ListOffsetsPartition(0, timestamp=-1)])],
    )
    with KafkaAdminConnection(f"127.0.0.1:{port}") as connection:
        response = connection.request(request, 7)
    assert isinstance(response, ListOffsetsResponse)
    return int(response.topics[0].partitions[0].error_code)


def test_a_chain_without_its_head_does_not_say_where_the_partition_ends(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node, gate, head_group, log_end = _restart_holding_back_the_head(tmp_path, monkeypatch)
    # Ready without waiting long for the held-back head: clients are served meanwhile.
    monkeypatch.setattr(node_module, "PARTITION_LEADERS_WAIT_S", 0.2)

    async def scenario() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_release_at_exit, gate)
            port = await nursery.start(node.run)
            broker = node.broker
            assert broker is not None
            await _until(
                lambda: (
                    len(broker.partitions.get((TOPIC, 0), PartitionChain(TOPIC, 0)).segments)
                    == SEGMENTS - 1
                ),
                "the sealed segments open",
            )
            stale = broker.partitions[(TOPIC, 0)]
            assert stale.head.group.group_id != head_group
            await _until(lambda: stale.group.is_leader, "the sealed segment is led")
            assert broker.partition(TOPIC, 0) is stale and stale.stands_in()
            data_epoch = stale.epoch_starts()[-1][0]
            # A leader is named (librdkafka takes a partition without one as unknown), with
            # the epoch of the partition's last records.
            assert broker.partition_leader(TOPIC, 0) == (1, data_epoch)
            # The sealed segment's last epoch ends at its own end, below the partition's.
            answer = await trio.to_thread.run_sync(_epoch_end, port, data_epoch, -1)
            assert answer == (ErrorCode.LEADER_NOT_AVAILABLE, -1, -1)
            # Not UNKNOWN_TOPIC_OR_PARTITION: librdkafka's ListOffsets would not retry it.
            latest = await trio.to_thread.run_sync(_latest_offset_error, port)
            assert latest == ErrorCode.LEADER_NOT_AVAILABLE

            gate.set()
            await _until(lambda: not stale.stands_in(), "the head joins")
            chain = broker.partition(TOPIC, 0)
            assert chain is not None and chain.head.group.group_id == head_group
            # Led, and its leader has committed an entry of its own term: until then the
            # end is unknown (`end_unknown`) and the answer is a retriable refusal.
            await _until(
                lambda: chain.group.is_leader and not chain.end_unknown(),
                "the head is led and its leader caught up",
            )
            epoch = chain.leader_epoch
            answer = await trio.to_thread.run_sync(_epoch_end, port, epoch, epoch)
            # The head's new term starts at the log end it had before the restart.
            assert answer == (0, epoch, chain.head.log_end_offset)
            assert chain.head.log_end_offset > log_end
            nursery.cancel_scope.cancel()

    trio.run(scenario)


def test_a_restarted_node_is_ready_once_heads_placed_on_it_are_open(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node, gate, _head_group, _log_end = _restart_holding_back_the_head(tmp_path, monkeypatch)

    async def scenario() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_release_at_exit, gate)
            nursery.start_soon(node.run)
            await _until(
                lambda: node.broker is not None and (TOPIC, 0) in node.broker.partitions,
                "the sealed segments open",
            )
            await trio.sleep(0.5)
            assert node.broker is not None
            assert not node.broker.ready.is_set()
            gate.set()
            await _until(node.broker.ready.is_set, "ready")
            assert node.broker.partition(TOPIC, 0) is not None
            nursery.cancel_scope.cancel()

    trio.run(scenario)


def _metadata_leader(port: int) -> tuple[int, int, int]:
    """(error code, leader, leader epoch) of partition 0 as Metadata answers it."""
    request = MetadataRequest(topics=[MetadataRequestTopic(name=TOPIC)])
    with KafkaAdminConnection(f"127.0.0.1:{port}") as connection:
        response = connection.request(request, 9)
    assert isinstance(response, MetadataResponse)
    answer = response.topics[0].partitions[0]
    return answer.error_code, answer.leader_id, answer.leader_epoch


def test_metadata_names_a_leader_while_the_next_head_opens(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A running node whose next head segment is slow to open (a successor made at the
    seal, or made ahead): Metadata that named no leader made librdkafka's watermark query
    give up on the partition until the application asked for Metadata again (CI run of
    2440b23, tests/cluster/test_retention.py)."""
    held = threading.Event()
    gate = hold_openings(monkeypatch, lambda _opening: held.is_set())
    node = Node(_config(tmp_path))

    async def scenario() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_release_at_exit, gate)
            port = await nursery.start(node.run)
            broker = node.broker
            assert broker is not None
            await broker.create_topic(TOPIC, 1, 1, {})
            await _until(lambda: broker.partition(TOPIC, 0) is not None, "the topic opens")
            chain = broker.partition(TOPIC, 0)
            assert chain is not None
            first_head = broker.head_group(TOPIC, 0)
            held.set()
            with trio.fail_after(DEADLINE_S):
                while broker.head_group(TOPIC, 0) == first_head:
                    await chain.produce(build_batch([Record(value=b"v" * 300)]), -1, 0.2)
            assert chain.head.group.group_id == first_head and chain.stands_in()
            data_epoch = chain.epoch_starts()[-1][0]
            answer = await trio.to_thread.run_sync(_metadata_leader, port)
            assert answer == (0, 1, data_epoch)
            latest = await trio.to_thread.run_sync(_latest_offset_error, port)
            assert latest == ErrorCode.LEADER_NOT_AVAILABLE

            gate.set()
            await _until(lambda: not chain.stands_in(), "the next head joins")
            assert chain.head.group.group_id == broker.head_group(TOPIC, 0)
            await _until(lambda: chain.group.is_leader, "the next head is led")
            written = await chain.produce(build_batch([Record(value=b"after")]), -1, 5.0)
            assert written.error_code == 0
            answer = await trio.to_thread.run_sync(_metadata_leader, port)
            assert answer == (0, 1, chain.leader_epoch)
            nursery.cancel_scope.cancel()

    trio.run(scenario)
