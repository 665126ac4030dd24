"""Kafka's idempotent-producer rules, as the partition applies them."""

from hypothesis import given
from hypothesis import strategies as st

from raftlog.producer_state import (
    SEQUENCE_LIMIT,
    Accept,
    BatchIdentity,
    Duplicate,
    ProducerError,
    ProducerStateTable,
    Reject,
    last_sequence,
)


def batch(pid: int, epoch: int, seq: int, count: int, entry: int = 0) -> BatchIdentity:
    return BatchIdentity(pid, epoch, seq, count, entry)


def test_in_order_batches_are_accepted_and_retries_are_duplicates() -> None:
    table = ProducerStateTable()
    for entry, seq in enumerate(range(0, 50, 5), start=1):
        assert table.check(batch(7, 0, seq, 5)) == Accept()
        table.record(batch(7, 0, seq, 5, entry))
    # The last five batches are remembered and answered with their original entries.
    for entry, seq in enumerate(range(25, 50, 5), start=6):
        assert table.check(batch(7, 0, seq, 5)) == Duplicate(entry)
    # Older ones are out of order (Kafka answers OUT_OF_ORDER_SEQUENCE_NUMBER).
    result = table.check(batch(7, 0, 0, 5))
    assert isinstance(result, Reject)
    assert result.error is ProducerError.OUT_OF_ORDER_SEQUENCE_NUMBER


def test_gap_and_unknown_producer_are_out_of_order() -> None:
    table = ProducerStateTable()
    assert isinstance(table.check(batch(1, 0, 3, 1)), Reject)
    table.record(batch(1, 0, 0, 2, 1))
    gap = table.check(batch(1, 0, 3, 1))
    assert isinstance(gap, Reject)
    assert "expected 2" in gap.reason


def test_epochs_fence_old_producers_and_restart_sequences() -> None:
    table = ProducerStateTable()
    table.record(batch(1, 3, 0, 1, 1))
    old = table.check(batch(1, 2, 1, 1))
    assert isinstance(old, Reject)
    assert old.error is ProducerError.INVALID_PRODUCER_EPOCH
    assert table.check(batch(1, 4, 0, 1)) == Accept()
    assert isinstance(table.check(batch(1, 4, 5, 1)), Reject)


def test_non_idempotent_batches_are_always_accepted() -> None:
    table = ProducerStateTable()
    for _ in range(3):
        assert table.check(batch(-1, -1, -1, 10)) == Accept()
        table.record(batch(-1, -1, -1, 10, 1))
    assert len(table) == 0


def test_sequence_wraps_at_int32() -> None:
    assert last_sequence(SEQUENCE_LIMIT - 2, 3) == 0
    table = ProducerStateTable()
    table.record(batch(1, 0, 0, 1, 1))
    table._producers[1].batches[-1] = batch(1, 0, SEQUENCE_LIMIT - 3, 3, 2)
    assert table.check(batch(1, 0, 0, 1)) == Accept()


def test_bounded_number_of_producers_evicts_the_oldest() -> None:
    table = ProducerStateTable(producers_max=3)
    for pid in range(5):
        table.record(batch(pid, 0, 0, 1, pid + 1))
    assert len(table) == 3
    assert table.last_batch(0) is None
    assert table.last_batch(4) is not None


def test_forget_from_truncation_point() -> None:
    table = ProducerStateTable()
    table.record(batch(1, 0, 0, 2, 1))
    table.record(batch(1, 0, 2, 2, 2))
    table.forget_from(2)
    assert table.check(batch(1, 0, 2, 2)) == Accept()
    table.forget_from(1)
    assert table.last_batch(1) is None


@given(st.lists(st.integers(min_value=1, max_value=20), min_size=1, max_size=40))
def test_replaying_the_log_reproduces_the_answers(counts: list[int]) -> None:
    """The table rebuilt from the log's batches answers exactly as the live one."""
    live = ProducerStateTable()
    log: list[BatchIdentity] = []
    seq = 0
    for entry, count in enumerate(counts, start=1):
        identity = batch(9, 0, seq, count, entry)
        assert live.check(batch(9, 0, seq, count)) == Accept()
        live.record(identity)
        log.append(identity)
        seq = (seq + count) % SEQUENCE_LIMIT
    replayed = ProducerStateTable()
    for identity in log:
        replayed.record(identity)
    for identity in log[-5:]:
        probe = batch(9, 0, identity.base_sequence, identity.record_count)
        assert replayed.check(probe) == live.check(probe)
        assert isinstance(replayed.check(probe), Duplicate)


def test_inherited_memory_answers_with_offsets_in_the_earlier_segment() -> None:
    table = ProducerStateTable()
    table.record(batch(1, 0, 0, 1, 1))
    table.record(batch(1, 0, 1, 2, 2))
    table.record(batch(2, 0, 0, 1, 3))
    located = {1: (10, 10), 2: (11, 12)}  # entry 3 is gone (retention)
    successor = table.inherited(located.get)
    assert successor.check(batch(1, 0, 1, 2)) == Duplicate(0, (11, 12))
    assert successor.check(batch(1, 0, 0, 1)) == Duplicate(0, (10, 10))
    assert isinstance(successor.check(batch(1, 0, 3, 1)), Accept)
    assert successor.last_batch(2) is None
    # Independent of the table it came from, and kept across the successor's truncations.
    successor.record(batch(1, 0, 3, 1, 1))
    successor.forget_from(1)
    assert table.last_batch(1) == batch(1, 0, 1, 2, 2)
    assert successor.check(batch(1, 0, 1, 2)) == Duplicate(0, (11, 12))
    # A successor's successor keeps the offsets it was given.
    assert successor.inherited(lambda _index: None).check(batch(1, 0, 0, 1)) == Duplicate(
        0, (10, 10)
    )
