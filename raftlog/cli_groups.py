"""`raftlog group list|describe|reset-offsets|delete`: what an operator asks of groups.

All talk Kafka to the nodes (so they work against any node of a cluster): the list asks
every node for the groups it coordinates; describe asks the group's coordinator for its
members, assignments and committed offsets, and the partition leaders for end offsets, to
show the lag. reset-offsets works as Kafka's tool does: only for an inactive group (no
members), a dry run unless told to execute, offsets asked beyond the log clamped to it.
delete removes an empty group and its committed offsets (DeleteGroups).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from raftlog.groups.records import assigned_partitions
from raftlog.kafka.admin_client import KafkaAdminConnection, connect_any
from raftlog.protocol.errors import ErrorCode
from raftlog.protocol.messages.generated.delete_groups_request import DeleteGroupsRequest
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
from raftlog.protocol.messages.generated.offset_commit_request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from raftlog.protocol.messages.generated.offset_fetch_request import OffsetFetchRequest

LATEST = -1
EARLIEST = -2
INACTIVE_STATES = ("Empty", "Dead")
RESET_TARGETS = ("earliest", "latest", "offset")


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


def _end_offsets(
    bootstrap: str, topics: Iterable[str], timestamp: int = LATEST
) -> dict[tuple[str, int], int]:
    """Each partition's end offset (LATEST) or log start offset (EARLIEST), from its leader."""
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
                        ListOffsetsPartition(partition_index=index, timestamp=timestamp)
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


def _partitions_of(bootstrap: str, topic: str) -> list[int]:
    with connect_any(bootstrap) as connection:
        metadata = connection.request(MetadataRequest(topics=[MetadataRequestTopic(name=topic)]), 1)
    found = metadata.topics[0]  # type: ignore[attr-defined]
    if found.error_code:
        raise GroupCommandError(f"topic {topic!r} cannot be used (error {found.error_code})")
    return sorted(partition.partition_index for partition in found.partitions)


def reset_offsets(
    bootstrap: str, group_id: str, topic: str, target: str, offset: int | None, execute: bool
) -> dict[str, object]:
    """The offsets a reset would commit (committed too with `execute`), per partition."""
    if target not in RESET_TARGETS or (target == "offset") != (offset is not None):
        raise GroupCommandError(f"a reset goes to {', '.join(RESET_TARGETS)} (offset: a number)")
    _node, coordinator = find_coordinator(bootstrap, group_id)
    with KafkaAdminConnection(coordinator) as connection:
        described = connection.request(DescribeGroupsRequest(groups=[group_id]), 1).groups[0]  # type: ignore[attr-defined]
    if described.error_code:
        raise GroupCommandError(f"group {group_id!r} cannot be read (error {described.error_code})")
    if described.group_state not in INACTIVE_STATES:
        raise GroupCommandError(
            f"offsets of group {group_id!r} can only be reset while it has no members; it is "
            f"{described.group_state} with {len(described.members)} member(s)"
        )
    partitions = _partitions_of(bootstrap, topic)
    earliest = _end_offsets(bootstrap, [topic], EARLIEST)
    latest = _end_offsets(bootstrap, [topic], LATEST)
    missing = [p for p in partitions if (topic, p) not in earliest or (topic, p) not in latest]
    if missing:
        raise GroupCommandError(f"partitions {missing} of {topic!r} have no leader right now")
    current = committed_offsets(bootstrap, group_id)
    rows: list[dict[str, object]] = []
    for partition in partitions:
        low, high = earliest[(topic, partition)], latest[(topic, partition)]
        new = {"earliest": low, "latest": high}.get(target)
        if new is None:
            assert offset is not None
            new = min(max(offset, low), high)  # as Kafka's tool: clamped to the log
        rows.append(
            {
                "group": group_id,
                "topic": topic,
                "partition": partition,
                "current": current.get((topic, partition)),
                "new": new,
            }
        )
    if execute:
        new_offsets = {int(str(row["partition"])): int(str(row["new"])) for row in rows}
        _commit(coordinator, group_id, topic, new_offsets)
    return {"group": group_id, "topic": topic, "executed": execute, "partitions": rows}


def _commit(coordinator: str, group_id: str, topic: str, offsets: dict[int, int]) -> None:
    """An administrative commit: no generation, no member (allowed for an inactive group)."""
    request = OffsetCommitRequest(
        group_id=group_id,
        generation_id_or_member_epoch=-1,
        member_id="",
        topics=[
            OffsetCommitRequestTopic(
                name=topic,
                partitions=[
                    OffsetCommitRequestPartition(partition_index=p, committed_offset=o)
                    for p, o in sorted(offsets.items())
                ],
            )
        ],
    )
    with KafkaAdminConnection(coordinator) as connection:
        response = connection.request(request, 7)
    failed = [
        (partition.partition_index, partition.error_code)
        for answered in response.topics  # type: ignore[attr-defined]
        for partition in answered.partitions
        if partition.error_code
    ]
    if failed:
        raise GroupCommandError(f"the coordinator refused the commit: (partition, error) {failed}")


def delete_group(bootstrap: str, group_id: str) -> dict[str, object]:
    """Delete an empty group and its committed offsets."""
    _node, coordinator = find_coordinator(bootstrap, group_id)
    with KafkaAdminConnection(coordinator) as connection:
        response = connection.request(DeleteGroupsRequest(groups_names=[group_id]), 2)
    code = response.results[0].error_code  # type: ignore[attr-defined]
    if code == ErrorCode.NON_EMPTY_GROUP:
        raise GroupCommandError(f"group {group_id!r} still has members; stop them first")
    if code == ErrorCode.GROUP_ID_NOT_FOUND:
        raise GroupCommandError(f"no group {group_id!r}")
    if code:
        reason = ErrorCode(code).name
        raise GroupCommandError(f"group {group_id!r} was not deleted (error {reason})")
    return {"group": group_id, "deleted": True}


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
    if "deleted" in document:
        return f"Deleted group {document['group']} and its committed offsets."
    if "executed" in document:
        rows = table(document["partitions"])  # type: ignore[arg-type]
        if document["executed"]:
            return rows + "\n\nCommitted these offsets."
        return rows + "\n\nDry run: nothing changed. Add --execute to commit these offsets."
    header = (
        f"group {document['group']}  state {document['state']}  protocol "
        f"{document['protocol'] or '-'}  members {document['members']}  "
        f"coordinator {document['coordinator']}"
    )
    return header + "\n\n" + table(document["partitions"])  # type: ignore[arg-type]
