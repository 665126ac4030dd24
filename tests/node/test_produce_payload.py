"""A produced batch becomes an entry payload that cannot change under the log.

A Kafka request's frame is immutable bytes, so the batch's view into it is proposed as
it is (a leader used to copy each megabyte batch before stamping its own copy); a batch
in anything writable is copied, since its owner may reuse the buffer.
"""

from __future__ import annotations

from raftlog.partition.replica import _immutable
from raftlog.protocol.records import Record, build_batch


def test_a_view_of_immutable_bytes_is_proposed_as_it_is() -> None:
    frame = b"header" + bytes(build_batch([Record(value=b"v" * 100)]))
    records = memoryview(frame)[6:]
    assert _immutable(records) is records


def test_a_writable_batch_is_copied() -> None:
    batch = bytes(build_batch([Record(value=b"v" * 100)]))
    buffer = bytearray(batch)
    for records in (buffer, memoryview(buffer), memoryview(buffer).toreadonly()):
        payload = _immutable(records)
        assert type(payload) is bytes and payload == batch
        buffer[:] = bytes(len(buffer))  # the owner reuses its buffer
        assert payload == batch
        buffer[:] = batch
