"""Raft entries stored as Kafka batches: valid v2 batches that round-trip every kind."""

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from raftlog import native
from raftlog.protocol.records import Record, RecordBatchView, build_batch
from raftlog.raft.entry import Entry, EntryKind
from raftlog.replica.entry_batches import (
    SEAL_THROUGH,
    batch_to_entry,
    control_batch,
    entry_to_batch,
    offsets_after,
    seal_payload,
)

CONTROL_KINDS = [EntryKind.NOOP, EntryKind.CONFIG_CHANGE, EntryKind.SEAL]


@given(
    kind=st.sampled_from(CONTROL_KINDS),
    payload=st.binary(max_size=300),
    term=st.integers(min_value=0, max_value=2**31 - 1),
    index=st.integers(min_value=1, max_value=2**40),
    base_offset=st.integers(min_value=0, max_value=2**50),
)
def test_control_entries_round_trip_as_valid_batches(
    kind: EntryKind, payload: bytes, term: int, index: int, base_offset: int
) -> None:
    # An 8-byte SEAL payload is a span (below): its batch covers more offsets than records.
    assume(not (kind is EntryKind.SEAL and len(payload) == SEAL_THROUGH.size))
    entry = Entry(term, index, kind, payload)
    batch = entry_to_batch(entry, base_offset)
    header = native.validate_batch(batch, 1 << 20)
    assert isinstance(header, native.BatchHeader), header
    assert header.base_offset == base_offset
    assert header.partition_leader_epoch == term
    assert offsets_after(batch) == base_offset + 1
    assert batch_to_entry(batch, index) == entry
    view = RecordBatchView(memoryview(bytes(batch)))
    assert view.is_control


def test_a_seal_span_covers_the_offsets_up_to_the_successor() -> None:
    entry = Entry(3, 7, EntryKind.SEAL, seal_payload(1099))
    batch = entry_to_batch(entry, 1000)
    assert offsets_after(batch) == 1100, "the sealed segment ends where its successor begins"
    assert batch_to_entry(batch, 7) == entry
    assert RecordBatchView(memoryview(bytes(batch))).is_control


def test_data_entry_is_the_client_batch_stamped() -> None:
    client = build_batch([Record(b"v1", key=b"k"), Record(b"v2")], producer_id=7, base_sequence=0)
    entry = Entry(5, 9, EntryKind.DATA, client)
    stored = entry_to_batch(entry, 1234)
    header = native.validate_batch(stored, 1 << 20)
    assert isinstance(header, native.BatchHeader)
    assert (header.base_offset, header.partition_leader_epoch) == (1234, 5)
    assert offsets_after(stored) == 1236
    # Only the base offset and the epoch differ from what the client sent.
    assert stored[:8] != client[:8] and stored[12:16] != client[12:16]
    assert stored[8:12] == client[8:12] and stored[16:] == client[16:]
    assert batch_to_entry(stored, 9).kind is EntryKind.DATA
    assert batch_to_entry(stored, 9).payload == bytes(stored)


def test_data_kind_is_refused_as_control() -> None:
    with pytest.raises(ValueError, match="client batches"):
        control_batch(EntryKind.DATA, b"")
