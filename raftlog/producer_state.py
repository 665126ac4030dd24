"""Idempotent-producer state of one partition: which batches each producer has appended.

An idempotent Kafka producer numbers its batches per partition (producer id, epoch,
sequence). A retry after a lost response resends a batch the log may already hold; the
broker must answer it with the offsets it got the first time instead of appending it again,
and must refuse a batch that skips sequence numbers (a lost batch) or comes from a fenced
epoch. Kafka keeps the last five batches of every producer for this; so do we.

The table is pure: the partition feeds it every batch its log holds (when the leader
proposes it, and by replaying the log when a replica becomes leader), so it survives
restarts by construction. Batches are known by their Raft entry index rather than their
offsets, because a leader must check a pipelined batch against batches it proposed but
has not yet persisted, whose offsets are only stamped at persist time.
"""

from __future__ import annotations

import enum
from collections import OrderedDict, deque
from collections.abc import Callable

import attrs

from raftlog.invariant import invariant

BATCHES_REMEMBERED_PER_PRODUCER = 5
SEQUENCE_LIMIT = 2**31  # Kafka sequences are int32 and wrap to 0 after 2**31 - 1.
NO_PRODUCER_ID = -1


class ProducerError(enum.IntEnum):
    """The Kafka error codes this table can answer a batch with."""

    OUT_OF_ORDER_SEQUENCE_NUMBER = 45
    INVALID_PRODUCER_EPOCH = 47


def _is_ahead(sequence: int, expected: int) -> bool:
    """`sequence` comes after `expected` (within half the wrapping sequence space)."""
    return 0 < (sequence - expected) % SEQUENCE_LIMIT < SEQUENCE_LIMIT // 2


def last_sequence(base_sequence: int, record_count: int) -> int:
    """The sequence number of a batch's last record, with Kafka's wrap at 2**31."""
    return (base_sequence + record_count - 1) % SEQUENCE_LIMIT


@attrs.frozen
class BatchIdentity:
    """What idempotence needs to know of one appended (or to-be-appended) batch."""

    producer_id: int
    producer_epoch: int
    base_sequence: int
    record_count: int
    entry_index: int
    """The Raft entry holding the batch; 0 while it is only being checked, and for a batch
    held by an earlier segment (whose entries are another group's)."""
    offsets: tuple[int, int] | None = None
    """(base, last) offset of a batch held by an earlier, sealed segment: a retry of it
    reaching the head is answered with these, since the head's log has no entry for it."""

    @property
    def last_sequence(self) -> int:
        return last_sequence(self.base_sequence, self.record_count)


@attrs.frozen
class Accept:
    """The batch is new and in order: append it."""


@attrs.frozen
class Duplicate:
    """The log already holds this batch: answer with its original offsets, append nothing."""

    entry_index: int
    offsets: tuple[int, int] | None = None
    """Set when an earlier segment holds the batch (`entry_index` is then 0)."""


@attrs.frozen
class Reject:
    """The batch breaks the producer's sequence or epoch: answer with this error."""

    error: ProducerError
    reason: str
    ahead: bool = False
    """The batch's sequence is ahead of the next one expected: the batches before it may
    still be on their way (a client pipelines them, and requests handled concurrently can
    reach the table in another order than they were sent)."""
    expected: int = -1
    """The sequence this producer's next batch must start at (-1: not a sequence error)."""


CheckResult = Accept | Duplicate | Reject


@attrs.define(eq=False)
class _ProducerEntry:
    epoch: int
    batches: deque[BatchIdentity]


@attrs.define(eq=False)
class ProducerStateTable:
    """Per-producer memory of the last batches, bounded in producers and batches."""

    producers_max: int = 10_000
    _producers: OrderedDict[int, _ProducerEntry] = attrs.field(factory=OrderedDict)

    def __len__(self) -> int:
        return len(self._producers)

    def inherited(self, locate: Callable[[int], tuple[int, int] | None]) -> ProducerStateTable:
        """The memory a successor segment starts from: this (sealed) segment's batches,
        each with the offsets `locate` gives for its entry, since the successor's own log
        knows nothing of this segment's entry indexes. A batch `locate` cannot place (its
        segment was deleted by retention) is forgotten, as Kafka forgets producers whose
        batches retention removed."""
        copied = ProducerStateTable(self.producers_max)
        for producer_id, entry in self._producers.items():
            batches: list[BatchIdentity] = []
            for batch in entry.batches:
                offsets = batch.offsets or locate(batch.entry_index)
                if offsets is not None:
                    batches.append(attrs.evolve(batch, entry_index=0, offsets=offsets))
            if batches:
                copied._producers[producer_id] = _ProducerEntry(
                    entry.epoch, deque(batches, maxlen=BATCHES_REMEMBERED_PER_PRODUCER)
                )
        return copied

    def check(self, batch: BatchIdentity) -> CheckResult:
        """Decide what to do with a batch before it is appended; changes nothing."""
        if batch.producer_id == NO_PRODUCER_ID:
            return Accept()
        entry = self._producers.get(batch.producer_id)
        if entry is None:
            if batch.base_sequence != 0:
                return Reject(
                    ProducerError.OUT_OF_ORDER_SEQUENCE_NUMBER,
                    f"producer {batch.producer_id} is unknown and its first batch has "
                    f"sequence {batch.base_sequence}, not 0",
                    _is_ahead(batch.base_sequence, 0),
                    0,
                )
            return Accept()
        if batch.producer_epoch < entry.epoch:
            return Reject(
                ProducerError.INVALID_PRODUCER_EPOCH,
                f"producer {batch.producer_id} epoch {batch.producer_epoch} is older than "
                f"{entry.epoch}",
            )
        if batch.producer_epoch > entry.epoch:
            if batch.base_sequence != 0:
                return Reject(
                    ProducerError.OUT_OF_ORDER_SEQUENCE_NUMBER,
                    f"producer {batch.producer_id} starts epoch {batch.producer_epoch} at "
                    f"sequence {batch.base_sequence}, not 0",
                    _is_ahead(batch.base_sequence, 0),
                    0,
                )
            return Accept()
        for known in entry.batches:
            if (
                known.base_sequence == batch.base_sequence
                and known.last_sequence == batch.last_sequence
            ):
                return Duplicate(known.entry_index, known.offsets)
        expected = (entry.batches[-1].last_sequence + 1) % SEQUENCE_LIMIT
        if batch.base_sequence != expected:
            return Reject(
                ProducerError.OUT_OF_ORDER_SEQUENCE_NUMBER,
                f"producer {batch.producer_id} sent sequence {batch.base_sequence}, "
                f"expected {expected}",
                _is_ahead(batch.base_sequence, expected),
                expected,
            )
        return Accept()

    def record(self, batch: BatchIdentity) -> None:
        """Remember a batch the log now holds (appended here, or replayed from the log)."""
        if batch.producer_id == NO_PRODUCER_ID:
            return
        invariant(batch.entry_index > 0, "a recorded batch has its entry")
        invariant(batch.offsets is None, "a batch recorded here is in this segment")
        entry = self._producers.pop(batch.producer_id, None)
        if entry is None or batch.producer_epoch > entry.epoch:
            entry = _ProducerEntry(
                batch.producer_epoch, deque(maxlen=BATCHES_REMEMBERED_PER_PRODUCER)
            )
        entry.batches.append(batch)
        self._producers[batch.producer_id] = entry
        while len(self._producers) > self.producers_max:
            self._producers.popitem(last=False)

    def forget_from(self, entry_index: int) -> None:
        """Drop what is known of batches at or after `entry_index` (the log was truncated)."""
        for producer_id in list(self._producers):
            entry = self._producers[producer_id]
            kept = [
                batch
                for batch in entry.batches
                if batch.offsets is not None or batch.entry_index < entry_index
            ]
            if kept:
                entry.batches = deque(kept, maxlen=BATCHES_REMEMBERED_PER_PRODUCER)
                entry.epoch = kept[-1].producer_epoch
            else:
                del self._producers[producer_id]

    def last_batch(self, producer_id: int) -> BatchIdentity | None:
        entry = self._producers.get(producer_id)
        return entry.batches[-1] if entry else None
