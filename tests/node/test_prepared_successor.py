"""Successors made ahead of a seal: the metadata commands and the SEAL batch's span."""

from __future__ import annotations

from typing import Any

import pytest

from raftlog import native
from raftlog.controller.metadata import MetadataError, MetadataState
from raftlog.raft.entry import Entry, EntryKind
from raftlog.replica.entry_batches import batch_to_entry, entry_to_batch, seal_payload


def _state() -> tuple[MetadataState, int]:
    state = MetadataState()
    for node in (1, 2, 3):
        state.apply(
            {
                "type": "register_node",
                "node_id": node,
                "kafka_host": "h",
                "kafka_port": node,
                "internal_host": "h",
                "internal_port": node,
            }
        )
    state.apply(
        {
            "type": "create_topic",
            "name": "t",
            "topic_id": "0" * 32,
            "partitions": 1,
            "replication_factor": 3,
            "assignments": [[1, 2, 3]],
        }
    )
    return state, state.topics["t"].partitions[0].head.group_id


def _prepare(state: MetadataState, head: int, base_offset: int, term: int = 2) -> Any:
    return state.apply(
        {
            "type": "prepare_successor",
            "group_id": head,
            "base_offset": base_offset,
            "replicas": [2, 3, 1],
            "base_term": term,
        }
    )


def _seal(state: MetadataState, head: int, last_offset: int, term: int = 2) -> Any:
    return state.apply(
        {
            "type": "seal_and_link",
            "group_id": head,
            "last_offset": last_offset,
            "next_replicas": [2, 3, 1],
            "base_term": term,
        }
    )


def test_a_seal_at_the_promised_end_links_the_prepared_group() -> None:
    state, head = _state()
    prepared = _prepare(state, head, 1000)
    assert state.segment_by_group(prepared.group_id) is not None
    successor = _seal(state, head, 999)
    assert successor == prepared
    partition = state.topics["t"].partitions[0]
    assert partition.prepared is None and partition.head == prepared
    assert [s.group_id for s in partition.segments] == [head, prepared.group_id]


def test_a_seal_elsewhere_or_after_a_leader_change_makes_a_fresh_group() -> None:
    state, head = _state()
    prepared = _prepare(state, head, 1000)
    successor = _seal(state, head, 700)  # filled before the successor was made
    assert successor.group_id != prepared.group_id and successor.base_offset == 701
    assert state.segment_by_group(prepared.group_id) is None
    head = successor.group_id
    prepared = _prepare(state, head, 2000, term=3)
    successor = _seal(state, head, 1999, term=4)  # the head's term moved past it
    assert successor.group_id != prepared.group_id


def test_prepare_is_refused_twice_below_the_head_or_for_a_sealed_head() -> None:
    state, head = _state()
    with pytest.raises(MetadataError, match="out of range"):
        _prepare(state, head, 0)
    _prepare(state, head, 500)
    with pytest.raises(MetadataError, match="successor already"):
        _prepare(state, head, 600)
    _seal(state, head, 499)
    with pytest.raises(MetadataError, match="not the head"):
        _prepare(state, head, 900)


def test_the_seal_batch_spans_to_the_promised_end_on_every_replica() -> None:
    entry = Entry(5, 9, EntryKind.SEAL, seal_payload(1999))
    for base in (1500, 1900, 1999):
        batch = entry_to_batch(entry, base)
        header = native.parse_batch_header(batch)
        assert (header.base_offset, header.last_offset) == (base, 1999)
        assert native.validate_stored_batch(bytes(batch), 1 << 20) is not None
        assert batch_to_entry(batch, 9) == entry
    # Past the promise (the head overshot): one offset, as a SEAL without a promise.
    overshot = native.parse_batch_header(entry_to_batch(entry, 2100))
    assert overshot.last_offset == 2100
    plain = native.parse_batch_header(entry_to_batch(Entry(5, 9, EntryKind.SEAL, b""), 42))
    assert plain.last_offset == 42
