"""`raftlog group list` and `raftlog group describe GROUP`: what an operator asks of groups.

Both talk Kafka to the nodes (so they work against any node of a cluster): the list asks
every node for the groups it coordinates; describe asks the group's coordinator for its
members, assignments and committed offsets, and the partition leaders for end offsets, to
show the lag.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from raftlog.groups.records import assigned_partitions
from raftlog.kafka.admin_client import KafkaAdminConnection, connect_any
from raftlog.protocol.messages.generated.describe_groups_request import DescribeGroupsRequest
from raftlog.protocol.messages.generated.find_coordinator_request import FindCoordinatorRequest
from raftlog.protocol.messages.generated.list_groups_request import ListGroupsRequest
from raftlog.protocol.messages.generated.list_offsets_request import (
    ListOffsetsPartition,
    ListOffsetsRequest,
    ListOffsetsTopic,
)
from raftlog.protocol.messages.generated.metadata_request import (
    MetadataRequest,
    MetadataRequestTopic,
)
from raftlog.protocol.messages.generated.offset_fetch_request import OffsetFetchRequest

LATEST = -1


class GroupCommandError(RuntimeError):
    """The group cannot be shown; the message says why."""


def _brokers(bootstrap: str) -> dict[int, str]:
    with connect_any(bootstrap) as connection:
        metadata = connection.request(MetadataRequest(topics=[]), 1)
    return {broker.node_id: f"{broker.host}:{broker.port}" for broker in metadata.brokers}  # type: ignore[attr-defined]


def list_groups(bootstrap: str) -> list[dict[str, object]]:
    rows = []
    for node_id, address in sorted(_brokers(bootstrap).items()):
        with KafkaAdminConnection(address) as connection:
            response = connection.request(ListGroupsRequest(), 4)
        for group in response.groups:  # type: ignore[attr-defined]
            rows.append(
                {
                    "group": group.group_id,
                    "state": group.group_state,
                    "protocol_type": group.protocol_type,
                    "coordinator": node_id,
                }
            )
    return sorted(rows, key=lambda row: str(row["group"]))


def _end_offsets(bootstrap: str, topics: Iterable[str]) -> dict[tuple[str, int], int]:
    wanted = sorted(set(topics))
    if not wanted:
        return {}
    brokers = _brokers(bootstrap)
    with connect_any(bootstrap) as connection:
        metadata = connection.request(
            MetadataRequest(topics=[MetadataRequestTopic(name=name) for name in wanted]), 1
        )
    by_leader: dict[int, list[tuple[str, int]]] = {}
    for topic in metadata.topics:  # type: ignore[attr-defined]
        for partition in topic.partitions:
            by_leader.setdefault(partition.leader_id, []).append(
                (topic.name, partition.partition_index)
            )
    ends: dict[tuple[str, int], int] = {}
    for leader, partitions in by_leader.items():
        if leader not in brokers:
            continue
        request = ListOffsetsRequest(
            replica_id=-1,
            topics=[
                ListOffsetsTopic(
                    name=name,
                    partitions=[
                        ListOffsetsPartition(partition_index=index, timestamp=LATEST)
                        for topic_name, index in partitions
                        if topic_name == name
                    ],
                )
                for name in sorted({name for name, _index in partitions})
            ],
        )
        with KafkaAdminConnection(brokers[leader]) as connection:
            response = connection.request(request, 1)
        for topic in response.topics:  # type: ignore[attr-defined]
            for partition in topic.partitions:
                if partition.error_code == 0:
                    ends[(topic.name, partition.partition_index)] = partition.offset
    return ends


def find_coordinator(bootstrap: str, group_id: str) -> tuple[int, str]:
    """(node id, host:port) of the group's coordinator, as FindCoordinator answers."""
    with connect_any(bootstrap) as connection:
        found = connection.request(FindCoordinatorRequest(key=group_id, key_type=0), 1)
    if found.error_code:  # type: ignore[attr-defined]
        raise GroupCommandError(f"no coordinator for group {group_id!r} (error {found.error_code})")  # type: ignore[attr-defined]
    return found.node_id, f"{found.host}:{found.port}"  # type: ignore[attr-defined]


def committed_offsets(bootstrap: str, group_id: str) -> dict[tuple[str, int], int]:
    """Every committed offset of the group, from its coordinator."""
    _node, coordinator = find_coordinator(bootstrap, group_id)
    with KafkaAdminConnection(coordinator) as connection:
        committed = connection.request(OffsetFetchRequest(group_id=group_id, topics=None), 3)
    if committed.error_code:  # type: ignore[attr-defined]
        raise GroupCommandError(
            f"offsets of group {group_id!r} cannot be read (error {committed.error_code})"  # type: ignore[attr-defined]
        )
    return {
        (topic.name, partition.partition_index): partition.committed_offset
        for topic in committed.topics  # type: ignore[attr-defined]
        for partition in topic.partitions
        if partition.committed_offset >= 0
    }


def describe_group(bootstrap: str, group_id: str) -> dict[str, object]:
    _node, coordinator = find_coordinator(bootstrap, group_id)
    with KafkaAdminConnection(coordinator) as connection:
        described = connection.request(DescribeGroupsRequest(groups=[group_id]), 1).groups[0]  # type: ignore[attr-defined]
        committed = connection.request(OffsetFetchRequest(group_id=group_id, topics=None), 3)
    if described.error_code:
        raise GroupCommandError(
            f"group {group_id!r} cannot be described (error {described.error_code})"
        )
    owners: dict[tuple[str, int], tuple[str, str]] = {}
    for member in described.members:
        for assigned in assigned_partitions(bytes(member.member_assignment)):
            owners[assigned] = (member.member_id, member.client_id)
    offsets = {
        (topic.name, partition.partition_index): partition.committed_offset
        for topic in committed.topics  # type: ignore[attr-defined]
        for partition in topic.partitions
    }
    keys = sorted(set(offsets) | set(owners))
    ends = _end_offsets(bootstrap, (topic for topic, _index in keys))
    partitions = []
    for key in keys:
        offset = offsets.get(key, -1)
        end = ends.get(key)
        partitions.append(
            {
                "topic": key[0],
                "partition": key[1],
                "committed": offset,
                "end": end,
                "lag": None if end is None or offset < 0 else end - offset,
                "member": owners.get(key, ("", ""))[0],
                "client": owners.get(key, ("", ""))[1],
            }
        )
    return {
        "group": group_id,
        "state": described.group_state,
        "protocol": described.protocol_data,
        "coordinator": coordinator,
        "members": len(described.members),
        "partitions": partitions,
    }


def table(rows: list[dict[str, object]]) -> str:
    """Rows as an aligned text table (column order from the first row)."""
    if not rows:
        return "(none)"
    columns = list(rows[0])
    cells = [[str(column).upper() for column in columns]]
    cells += [["-" if row[c] is None else str(row[c]) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in cells
    )


def render(document: object, output_format: str) -> str:
    if output_format == "json":
        return json.dumps(document, indent=2)
    if isinstance(document, list):
        return table(document)
    assert isinstance(document, dict)
    header = (
        f"group {document['group']}  state {document['state']}  protocol "
        f"{document['protocol'] or '-'}  members {document['members']}  "
        f"coordinator {document['coordinator']}"
    )
    return header + "\n\n" + table(document["partitions"])  # type: ignore[arg-type]
