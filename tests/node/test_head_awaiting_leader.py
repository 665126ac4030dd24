"""A node whose copy of a partition's head is empty and has no leader yet does not say where
the partition ends, nor name a leader epoch above the head's.

Campaign c18000, seed 18009 (every node killed, unsynced writes lost): after the restart
a node led the sealed segment before the head while its own copy of the head was empty
and had no leader. The sealed segment stood in for the partition: it answered
OffsetForLeaderEpoch with its own end, 330 offsets below a consumer's position, and
librdkafka seeked back and read them again. Its Metadata named the sealed group's term,
which later elections had raised past the head's.

Three real nodes in this process (real sockets, files and fsync). Node X is stopped while
the partition rolls over to a new head, so it holds no copy of that head; the three
restart with the head's opening held back on the other two, so X's fresh copy has no
leader; X is then handed the lead of the sealed segment.
"""

from __future__ import annotations

import pathlib
import socket
from collections.abc import Callable
from typing import Any

import attrs
import pytest
import trio

import raftlog.node.node as node_module
from raftlog.config import HostPort, NodeConfig, Peer
from raftlog.node.node import Node
from raftlog.partition.chain import PartitionChain
from raftlog.protocol.errors import ErrorCode
from raftlog.protocol.records import Record, build_batch
from tests.node.test_head_opening_at_start import (
    DEADLINE_S,
    SEGMENT_BYTES,
    TOPIC,
    _epoch_end,
    _latest_offset_error,
    _metadata_leader,
    _release_at_exit,
    _until,
    hold_openings,
)

NODES = (1, 2, 3)
HEAD_RECORDS_MIN = 3


@attrs.define
class _Running:
    node: Node
    port: int
    scope: trio.CancelScope
    stopped: trio.Event


def _configs(root: pathlib.Path) -> dict[int, NodeConfig]:
    sockets = [socket.socket() for _ in NODES]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    peers = tuple(
        Peer(node_id, HostPort("127.0.0.1", port))
        for node_id, port in zip(NODES, ports, strict=True)
    )
    return {
        node_id: NodeConfig(
            node_id=node_id,
            data_dir=root / f"node-{node_id}",
            kafka_addr=HostPort("127.0.0.1", 0),
            internal_addr=HostPort("127.0.0.1", port),
            admin_addr=None,
            peers=peers,
            segment_bytes=SEGMENT_BYTES,
            leader_balance_interval_ms=0,
        )
        for node_id, port in zip(NODES, ports, strict=True)
    }


async def _start(nursery: trio.Nursery, node: Node) -> _Running:
    scope = trio.CancelScope()
    stopped = trio.Event()

    async def run(*, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            with scope:
                await node.run(task_status=task_status)
        finally:
            stopped.set()

    port = await nursery.start(run)
    return _Running(node, port, scope, stopped)


async def _start_all(nursery: trio.Nursery, nodes: dict[int, Node]) -> dict[int, _Running]:
    """Start every node at once: each reports its port only once the cluster has formed."""
    running: dict[int, _Running] = {}

    async def start_one(node_id: int) -> None:
        running[node_id] = await _start(nursery, nodes[node_id])

    async with trio.open_nursery() as starting:
        for node_id in nodes:
            starting.start_soon(start_one, node_id)
    return running


def _restart(root: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> dict[int, Node]:
    """Nodes to restart on the data directories of `_fill_with_x_down` (fresh internal
    ports), ready without waiting long for a held-back head."""
    monkeypatch.setattr(node_module, "PARTITION_LEADERS_WAIT_S", 0.2)
    configs = _configs(root)
    return {n: Node(configs[n]) for n in NODES}


def _head_info(node: Node) -> Any:
    return node.controller.state.topics[TOPIC].partitions[0].head


def _leading_chain(running: dict[int, _Running]) -> PartitionChain | None:
    for member in running.values():
        if member.stopped.is_set() or member.node.broker is None:
            continue
        chain = member.node.broker.partition(TOPIC, 0)
        if chain is not None and chain.group.leader_caught_up:
            return chain
    return None


async def _produce_until(running: dict[int, _Running], done: Callable[[], bool]) -> None:
    with trio.fail_after(DEADLINE_S):
        while not done():
            chain = _leading_chain(running)
            if chain is None:
                await trio.sleep(0.01)
                continue
            with trio.move_on_after(5):
                await chain.produce(build_batch([Record(value=b"v" * 300)]), -1, 5.0)


def _fill_with_x_down(root: pathlib.Path) -> tuple[int, int, int]:
    """Returns (X, the sealed segment's group, the head's group): X stopped just after the
    sealed segment became the head, so it missed that segment's seal and the head."""
    configs = _configs(root)
    found: list[tuple[int, int, int]] = []

    async def scenario() -> None:
        async with trio.open_nursery() as nursery:
            running = await _start_all(nursery, {n: Node(configs[n]) for n in NODES})
            first = running[NODES[0]].node
            assert first.broker is not None
            await first.broker.create_topic(TOPIC, 1, len(NODES), {})
            await _until(lambda: TOPIC in first.controller.state.topics, "the topic exists")
            start_head = _head_info(first).group_id
            await _produce_until(running, lambda: _head_info(first).group_id != start_head)
            sealed = _head_info(first)
            # X: not the sealed segment's successor's first replica (a copy made on restart
            # would lead the head's first term at once), and not its own first one.
            x = sealed.replicas[2]
            running[x].scope.cancel()
            await running[x].stopped.wait()
            survivor = running[sealed.replicas[0]].node

            def head_written() -> bool:
                head = _head_info(survivor)
                if head.group_id == sealed.group_id:
                    return False
                chain = _leading_chain(running)
                return (
                    chain is not None
                    and chain.head.group.group_id == head.group_id
                    and chain.head.log_end_offset >= head.base_offset + HEAD_RECORDS_MIN
                )

            await _produce_until(running, head_written)
            found.append((x, sealed.group_id, _head_info(survivor).group_id))
            nursery.cancel_scope.cancel()

    trio.run(scenario)
    return found[0]


def test_an_empty_leaderless_head_here_leaves_the_partition_end_unsaid(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    x, sealed_group, head_group = _fill_with_x_down(tmp_path)
    gate = hold_openings(
        monkeypatch,
        lambda opening: opening.get("group_id") == head_group and opening.get("node_id") != x,
    )
    nodes = _restart(tmp_path, monkeypatch)
    nodes[x]._opener.batch_groups_max = 1  # the sealed segment opens before the head

    async def scenario() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_release_at_exit, gate)
            running = await _start_all(nursery, nodes)
            broker = nodes[x].broker
            assert broker is not None

            def standing_in() -> bool:
                chain = broker.partitions.get((TOPIC, 0))
                return (
                    chain is not None
                    and bool(chain.segments)
                    and chain.head.group.group_id == sealed_group
                    and chain.head.sealed_last_offset is not None
                    and head_group in nodes[x]._hosted
                )

            await _until(standing_in, "X opens the head, and the sealed segment with its seal")
            for member in running.values():
                hosted = member.node._hosted.get(sealed_group)
                if hosted is not None and hosted.group.is_leader and member.node is not nodes[x]:
                    hosted.group.transfer_leadership(x)
            await _until(lambda: nodes[x]._hosted[sealed_group].group.is_leader, "X leads it")
            chain = broker.partition(TOPIC, 0)
            assert chain is not None and chain.head.group.group_id == sealed_group
            data_epoch = chain.epoch_starts()[-1][0]
            # Metadata still names a leader (librdkafka takes a partition without one as
            # unknown), with the epoch of the partition's last records.
            assert broker.partition_leader(TOPIC, 0) == (x, data_epoch)
            answer = await trio.to_thread.run_sync(_epoch_end, running[x].port, data_epoch, -1)
            assert answer == (ErrorCode.LEADER_NOT_AVAILABLE, -1, -1)
            latest = await trio.to_thread.run_sync(_latest_offset_error, running[x].port)
            assert latest == ErrorCode.LEADER_NOT_AVAILABLE

            gate.set()
            await _until(
                lambda: (
                    broker.partition(TOPIC, 0) is not None
                    and broker.partitions[(TOPIC, 0)].head.group.group_id == head_group
                ),
                "the head joins X's chain once it has a leader",
            )
            await _until(lambda: _leading_chain(running) is not None, "the head is led")
            leading = _leading_chain(running)
            assert leading is not None and leading.head.group.group_id == head_group
            assert leading.leader_epoch > data_epoch
            assert leading.end_offset_for_epoch(data_epoch)[1] == leading.head.log_start_offset
            nursery.cancel_scope.cancel()

    trio.run(scenario)


def test_metadata_names_the_heads_leader_elsewhere_while_the_head_opens_here(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While X's copy of the head is still opening, the sealed segment stands in on X, but
    Metadata there names the head's leader as the head's other replicas report it, not the
    stand-in's: the stand-in refuses produce, and a client sent to it would only retry."""
    x, sealed_group, head_group = _fill_with_x_down(tmp_path)
    gate = hold_openings(
        monkeypatch,
        lambda opening: opening.get("group_id") == head_group and opening.get("node_id") == x,
    )
    nodes = _restart(tmp_path, monkeypatch)
    # One group per opening batch on X: a batch hands out its groups only once all are
    # open, so a sealed segment batched with the held-back head could never stand in.
    nodes[x]._opener.batch_groups_max = 1

    async def scenario() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_release_at_exit, gate)
            running = await _start_all(nursery, nodes)
            broker = nodes[x].broker
            assert broker is not None

            def standing_in() -> bool:
                chain = broker.partition(TOPIC, 0)
                return (
                    chain is not None
                    and chain.head.group.group_id == sealed_group
                    and chain.head_opening()
                    and chain.group.leader_id != 0
                )

            others = {n: member for n, member in running.items() if n != x}

            def head_led_elsewhere() -> bool:
                chain = _leading_chain(others)
                return chain is not None and chain.head.group.group_id == head_group

            await _until(standing_in, "X's sealed segment stands in, led")
            await _until(head_led_elsewhere, "the head is led by another replica")
            leading = _leading_chain(others)
            assert leading is not None
            leader = leading.group.leader_id
            answer = await trio.to_thread.run_sync(_metadata_leader, running[x].port)
            assert answer == (0, leader, leading.leader_epoch)
            nursery.cancel_scope.cancel()

    trio.run(scenario)
