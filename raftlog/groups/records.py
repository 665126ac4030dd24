"""Committed offsets as records of the internal topic `__consumer_offsets`.

A group's coordinator is the leader of the partition its id hashes to, exactly as Kafka
places it (`abs(String.hashCode()) % partitions`), so a group's offsets and the node that
serves them move together. Each commit is one record: the key names (group, topic,
partition), the value holds the offset and metadata; a null value (tombstone) deletes.
Both are small versioned JSON objects, readable in a dump of the log.

As in Kafka, the partition also holds one group metadata record per group (key version 2,
naming only the group): its generation, protocol type and chosen protocol, written when a
generation is settled, so a new coordinator knows the group and never reuses a generation.
Every record key is a function of its identity alone (same bytes for the same group, topic
and partition), which is what compaction keys on.
"""

from __future__ import annotations

import json

from raftlog import native
from raftlog.protocol.errors import DecodeError
from raftlog.protocol.messages.generated.consumer_protocol_assignment import (
    ConsumerProtocolAssignment,
)
from raftlog.protocol.records import Record, RecordBatchView, build_batch

OFFSETS_TOPIC = "__consumer_offsets"
OFFSETS_PARTITIONS = 8
RECORD_VERSION = 1
GROUP_KEY_VERSION = 2
GROUP_VALUE_VERSION = 1


def java_string_hash(text: str) -> int:
    """Java's String.hashCode (over UTF-16 code units), as a signed 32-bit int."""
    value = 0
    encoded = text.encode("utf-16-be")
    for position in range(0, len(encoded), 2):
        unit = int.from_bytes(encoded[position : position + 2], "big")
        value = (31 * value + unit) & 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def coordinator_partition(group_id: str, partitions: int = OFFSETS_PARTITIONS) -> int:
    """The `__consumer_offsets` partition whose leader coordinates `group_id`."""
    hashed = java_string_hash(group_id)
    return (0 if hashed == -(1 << 31) else abs(hashed)) % partitions


def offset_key(group_id: str, topic: str, partition: int) -> bytes:
    return json.dumps({"v": RECORD_VERSION, "g": group_id, "t": topic, "p": partition}).encode()


def offset_value(offset: int, metadata: str | None, leader_epoch: int) -> bytes:
    return json.dumps({"v": RECORD_VERSION, "o": offset, "m": metadata, "e": leader_epoch}).encode()


def group_key(group_id: str) -> bytes:
    return json.dumps({"v": GROUP_KEY_VERSION, "g": group_id}).encode()


def group_value(generation: int, protocol_type: str, protocol_name: str) -> bytes:
    return json.dumps(
        {"v": GROUP_VALUE_VERSION, "gen": generation, "type": protocol_type,
         "protocol": protocol_name}
    ).encode()  # fmt: skip


def commit_batch(entries: list[tuple[bytes, bytes | None]]) -> bytes:
    """One record batch holding a group's commits (key, value or None for a tombstone)."""
    return build_batch(
        [Record(value, key=key) for key, value in entries], crc_function=native.crc32c
    )


def decode_offset_records(
    batches: bytes | memoryview,
) -> list[tuple[tuple[str, str, int], tuple[int, str | None, int] | None]]:
    """(group, topic, partition) -> (offset, metadata, epoch), or None for a tombstone."""
    decoded = []
    view = memoryview(batches)
    position = 0
    while position + 12 <= len(view):
        size = int.from_bytes(view[position + 8 : position + 12], "big") + 12
        batch = RecordBatchView(view[position : position + size])
        position += size
        if batch.is_control:
            continue
        for record in batch.records():
            if record.key is None:
                continue
            key = json.loads(record.key)
            if key.get("v") == GROUP_KEY_VERSION:
                continue
            identity = (str(key["g"]), str(key["t"]), int(key["p"]))
            if record.value is None:
                decoded.append((identity, None))
            else:
                value = json.loads(record.value)
                decoded.append((identity, (int(value["o"]), value.get("m"), int(value["e"]))))
    return decoded


def decode_group_records(
    batches: bytes | memoryview,
) -> list[tuple[str, tuple[int, str, str] | None]]:
    """Group metadata records: group -> (generation, protocol type, protocol), or None."""
    decoded: list[tuple[str, tuple[int, str, str] | None]] = []
    view = memoryview(batches)
    position = 0
    while position + 12 <= len(view):
        size = int.from_bytes(view[position + 8 : position + 12], "big") + 12
        batch = RecordBatchView(view[position : position + size])
        position += size
        if batch.is_control:
            continue
        for record in batch.records():
            if record.key is None:
                continue
            key = json.loads(record.key)
            if key.get("v") != GROUP_KEY_VERSION:
                continue
            if record.value is None:
                decoded.append((str(key["g"]), None))
            else:
                value = json.loads(record.value)
                decoded.append(
                    (str(key["g"]), (int(value["gen"]), str(value["type"]), str(value["protocol"])))
                )
    return decoded


def assigned_partitions(assignment: bytes) -> list[tuple[str, int]]:
    """(topic, partition) pairs of a consumer-protocol assignment; [] for anything else."""
    if len(assignment) < 2:
        return []
    version = int.from_bytes(assignment[:2], "big", signed=True)
    try:
        decoded = ConsumerProtocolAssignment.decode(
            assignment[2:], min(max(version, 0), 3), strict=False
        )
    except DecodeError:
        return []
    return [(t.topic, p) for t in decoded.assigned_partitions for p in t.partitions]
