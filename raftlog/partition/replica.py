"""One segment of a partition on this node: produce and fetch on top of its Raft group.

Produce validates the batch in C, checks idempotence, proposes the batch to the Raft group
and waits as `acks` asks. The high watermark is the offset after the last committed entry;
fetch never reads above it. When the log reaches `seal_bytes`, the leader proposes a SEAL
entry; once it commits, `on_sealed` asks the controller to link the next segment
(`raftlog.partition.chain` strings the segments of a partition together).

Idempotence state is rebuilt from the log whenever this replica becomes leader, and kept
current as the leader proposes and as followers persist, so it survives restarts and
leader changes by construction.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence

import attrs
import trio

from raftlog import bugs, logs, native
from raftlog.producer_state import Accept, BatchIdentity, Duplicate, ProducerStateTable, Reject
from raftlog.protocol.errors import ErrorCode
from raftlog.raft.entry import Entry, EntryKind
from raftlog.raft.errors import RaftError
from raftlog.raft.ready import Role
from raftlog.replica.entry_batches import CONTROL_ATTRIBUTE, seal_payload
from raftlog.replica.group import ProposalLost, ReplicaGroup
from raftlog.replica.raft_storage import SegmentGroupLog
from raftlog.storage.compaction import CompactionError, keyless_records
from raftlog.storage.errors import CorruptBatchError, StorageError
from raftlog.storage.values import AppendResult

OFFSETS_REMEMBERED_MAX = 65_536
REBUILD_READ_BYTES = 16 << 20
PREPARE_AT_FRACTION = 0.8
"""The head's leader asks for its successor once the log holds this share of `seal_bytes`."""
SEAL_SLACK_OFFSETS = 16
"""Offsets kept free below a promised end for entries the leader does not propose itself
(a new leader's NOOP, membership changes) and the SEAL batch."""
SUCCESSOR_WAIT_S_MAX = 2.0
"""How long a produce refused by a sealing head waits for the successor's link before it
answers NOT_LEADER_OR_FOLLOWER: the client's metadata refresh then finds the new head at
once, instead of backing off while it keeps being sent to the old one."""
REORDER_WAIT_S = 0.5
"""How long a batch ahead of its producer's next sequence waits for the batches before it.

A client pipelines a partition's batches (librdkafka up to five requests) and the listener
handles them concurrently, so two sent back to back can reach the sequence check in either
order (trio runs a batch of ready tasks in random order). Answering the later one
OUT_OF_ORDER_SEQUENCE_NUMBER at once would be wrong for a client that did nothing wrong:
librdkafka then bumps its epoch and renumbers every unacknowledged message, so a batch
whose earlier attempt is still in doubt is stored twice (chaos run seed 10001). The wait
ends as soon as the producer's sequence moves; a real gap is still refused, only later."""


REFUSED_PRODUCERS_MAX = 4096
"""Producers whose last refused batch is remembered (`_refused`); the oldest go first."""


class _Ahead:
    """`_produce_once` refused a batch whose earlier batches may still arrive."""


_AHEAD = _Ahead()


@attrs.frozen
class ProduceOutcome:
    error_code: int
    base_offset: int = -1
    error_message: str | None = None


@attrs.frozen
class ReadResult:
    error_code: int
    records: bytes
    high_watermark: int
    log_start_offset: int


@attrs.define(eq=False)
class PartitionReplica:
    topic: str
    index: int
    group: ReplicaGroup
    storage: SegmentGroupLog
    on_data: Callable[[], None]
    """Called when the high watermark advances (wakes long-polling fetches)."""
    batch_bytes_max: int = 1 << 20
    seal_bytes: int | None = None
    """The leader seals the segment once its log holds this many bytes (None: never)."""
    on_sealed: Callable[[int, int], None] | None = None
    """Called on the leader with (last offset, term) once the SEAL entry is committed."""
    on_leader_known: Callable[[], None] | None = None
    """Called once, when the group first knows a leader (a new head joins its chain then)."""
    on_nearly_full: Callable[[int, int], None] | None = None
    """Called on the leader with (next offset, term) when the log first reaches
    `PREPARE_AT_FRACTION` of `seal_bytes`: the node asks for the successor to be made now."""
    seal_through: int | None = None
    """Set once a successor was made ahead at `seal_through + 1`: the head takes no batch
    that would reach past it, and its SEAL batch covers the offsets up to it."""
    keys_required: Callable[[], bool] = lambda: False
    """True for a compacted topic: every record must have a key (Kafka's rule)."""
    predecessor: PartitionReplica | None = None
    """The segment before this one on this node, whose idempotence memory this one starts
    from (a producer's sequence carries across a seal)."""
    successor_linked: trio.Event = attrs.field(factory=trio.Event)
    """Set (by the node) once this segment is sealed and the next one is in the chain."""
    producers: ProducerStateTable = attrs.field(factory=ProducerStateTable)
    high_watermark: int = 0
    sealed_last_offset: int | None = None
    _seal_proposed: bool = False
    _prepare_asked: bool = False
    _unpersisted_bytes: dict[int, int] = attrs.field(factory=dict)
    """Entry index -> size of batches proposed here and not yet on disk (for sealing)."""
    _unpersisted_offsets: dict[int, int] = attrs.field(factory=dict)
    _unpersisted_batches: dict[int, BatchIdentity] = attrs.field(factory=dict)
    """Entry index -> idempotent batches proposed here and not yet on disk: a rebuild reads
    the disk, and must not forget them (a retry would be appended twice)."""
    """Entry index -> offsets taken by batches proposed here and not yet on disk."""
    _inherited_whole: bool = True
    """False while the memory came from a predecessor not yet sealed on this node: its last
    batches may be missing, so a retry could be appended twice. The head takes no produce
    until it is whole."""
    _offsets: OrderedDict[int, tuple[int, int]] = attrs.field(factory=OrderedDict)
    _proposed_terms: dict[int, int] = attrs.field(factory=dict)
    _refused_batches: OrderedDict[int, tuple[int, int]] = attrs.field(factory=OrderedDict)
    """producer id -> (epoch, base sequence) of its latest batch refused retriably here."""
    _sequences_moved: trio.Event = attrs.field(factory=trio.Event)
    """Set (and replaced) whenever the producer table learns batches: wakes `_Ahead` waits."""
    _epochs: list[tuple[int, int]] = attrs.field(factory=list)
    """(epoch, first offset of that epoch), ascending: answers OffsetForLeaderEpoch."""

    def __attrs_post_init__(self) -> None:
        self.storage.on_append = self._on_append
        self.storage.on_truncate = self._on_truncate
        self.group.apply = self._apply
        self.group.on_role_change = self._on_role_change
        self.high_watermark = max(self.high_watermark, self.storage.log.start_offset)
        self.rebuild()

    # -- state kept in step with the log ----------------------------------------------

    @property
    def log_start_offset(self) -> int:
        return self.storage.log.start_offset

    @property
    def log_end_offset(self) -> int:
        """The offset the next batch appended here gets (committed or not)."""
        return self.storage.log.next_offset

    @property
    def leader_epoch(self) -> int:
        return self.group.raw.term

    def _remember(self, entry_index: int, base_offset: int, last_offset: int) -> None:
        self._offsets[entry_index] = (base_offset, last_offset)
        while len(self._offsets) > OFFSETS_REMEMBERED_MAX:
            self._offsets.popitem(last=False)

    def _offsets_of(self, entry_index: int) -> tuple[int, int]:
        known = self._offsets.get(entry_index)
        if known is not None:
            return known
        batch = self.storage.log.read_entries(entry_index, 1, 1)[0]
        header = native.parse_batch_header(batch)
        return header.base_offset, header.last_offset

    def located(self, entry_index: int) -> tuple[int, int] | None:
        """(base, last) offset of an entry of this segment, or None if it is gone."""
        try:
            return self._offsets_of(entry_index)
        except StorageError:
            return None

    def _on_append(self, entry: Entry, result: AppendResult) -> None:
        self._unpersisted_bytes.pop(entry.index, None)
        self._unpersisted_offsets.pop(entry.index, None)
        self._unpersisted_batches.pop(entry.index, None)
        self._remember(entry.index, result.base_offset, result.last_offset)
        if not self._epochs or self._epochs[-1][0] < entry.term:
            self._epochs.append((entry.term, result.base_offset))
        if not self.group.is_leader and entry.kind is EntryKind.DATA:
            identity = _identity(native.parse_batch_header(entry.payload), entry.index)
            if identity is not None:
                self.producers.record(identity)

    def _on_truncate(self, entry_index: int) -> None:
        self.producers.forget_from(entry_index)
        for index in [i for i in self._unpersisted_batches if i >= entry_index]:
            del self._unpersisted_batches[index]
        for index in [i for i in self._offsets if i >= entry_index]:
            del self._offsets[index]
        self.rebuild()

    def _apply(self, entries: Sequence[Entry]) -> None:
        _base, last = self._offsets_of(entries[-1].index)
        if last + 1 > self.high_watermark:
            self.high_watermark = last + 1
            self.on_data()
        for entry in entries:
            if entry.kind is EntryKind.SEAL:
                self.sealed_last_offset = self._offsets_of(entry.index)[1]
                self._report_sealed()
        self._seal_if_full()

    def _seal_if_full(self) -> None:
        if (
            self.seal_bytes is None
            or self._seal_proposed
            or self.sealed_last_offset is not None
            or not self.group.is_leader
        ):
            return
        size_bytes = self._estimated_size_bytes()
        if size_bytes >= PREPARE_AT_FRACTION * self.seal_bytes:
            self._ask_for_successor()
        if size_bytes >= self.seal_bytes:
            self._propose_seal()

    def _ask_for_successor(self) -> None:
        if self._prepare_asked or self.seal_through is not None or self.on_nearly_full is None:
            return
        self._prepare_asked = True
        self.on_nearly_full(self._estimated_next_offset(), self.group.raw.term)

    def _estimated_next_offset(self) -> int:
        """The offset after everything proposed here, once it is on disk."""
        return self.storage.log.next_offset + sum(self._unpersisted_offsets.values())

    def _would_overshoot(self, offsets: int) -> bool:
        """Whether a batch of `offsets` would leave no room below the promised end."""
        if self.seal_through is None:
            return False
        return self._estimated_next_offset() + offsets + SEAL_SLACK_OFFSETS > self.seal_through

    def _propose_seal(self) -> None:
        if self._seal_proposed or self.sealed_last_offset is not None:
            return
        try:
            self.group.propose(seal_payload(self.seal_through), EntryKind.SEAL)
        except RaftError as error:
            logs.event("seal_refused", logging.INFO, group=self.group.group_id, reason=str(error))
            return
        self._seal_proposed = True
        logs.event(
            "segment_sealing",
            group=self.group.group_id,
            topic=self.topic,
            partition=self.index,
            size_bytes=self._estimated_size_bytes(),
        )

    def _estimated_size_bytes(self) -> int:
        """What the log holds once everything proposed here is on disk."""
        return self.storage.log.size_bytes + sum(self._unpersisted_bytes.values())

    def _report_sealed(self) -> None:
        if self.sealed_last_offset is not None and self.group.is_leader and self.on_sealed:
            self.on_sealed(self.sealed_last_offset, self.group.raw.term)

    def _on_role_change(self, role: Role, leader_id: int, term: int) -> None:
        if leader_id and self.on_leader_known is not None:
            hook, self.on_leader_known = self.on_leader_known, None
            hook()
        if role is Role.LEADER:
            self.rebuild()
            self._report_sealed()  # a new leader of a sealed segment finishes the hand-over
        else:
            self._seal_proposed = False
            self._prepare_asked = False
            self._unpersisted_bytes.clear()
            self._unpersisted_offsets.clear()
            self._unpersisted_batches.clear()

    def rebuild(self) -> None:
        """Idempotence state and the epoch list from the whole log (start-up, new leader)."""
        before = self.predecessor
        if before is None:
            producers = ProducerStateTable(self.producers.producers_max)
        else:
            producers = before.producers.inherited(before.located)
        self._inherited_whole = before is None or before.sealed_last_offset is not None
        epochs: list[tuple[int, int]] = []
        log = self.storage.log
        index = log.first_entry_index
        while index <= log.last_entry_index:
            batches = log.read_entries(index, REBUILD_READ_BYTES, 4096)
            for batch in batches:
                header = native.parse_batch_header(batch)
                if not epochs or epochs[-1][0] < header.partition_leader_epoch:
                    epochs.append((header.partition_leader_epoch, header.base_offset))
                identity = _identity(header, index)
                if identity is not None:
                    producers.record(identity)
                index += 1
        for entry_index in sorted(self._unpersisted_batches):
            if entry_index > log.last_entry_index:
                producers.record(self._unpersisted_batches[entry_index])
        self.producers = producers
        self._epochs = epochs
        self._note_sequences_moved()

    # -- produce -----------------------------------------------------------------------

    async def produce(self, records: object, acks: int, timeout_s: float) -> ProduceOutcome:
        """Append one batch; the outcome says where, or why not.

        A refusal is often decided without waiting for anything, yet what lifts it (a seal
        applied, a predecessor caught up, a leader elected) happens in Ready loops. So a
        refusal always lets other tasks run first: a caller in this process that retries
        at once then cannot starve those loops and spin forever.
        """
        wait_until = trio.current_time() + min(REORDER_WAIT_S, max(timeout_s, 0.0))
        while True:
            moved = self._sequences_moved
            outcome = await self._produce_once(records, acks, timeout_s, wait_until)
            if not isinstance(outcome, _Ahead):
                if outcome.error_code:
                    await trio.lowlevel.checkpoint()
                return outcome
            with trio.move_on_at(wait_until):
                await moved.wait()

    def _note_sequences_moved(self) -> None:
        self._sequences_moved.set()
        self._sequences_moved = trio.Event()

    async def _produce_once(
        self, records: object, acks: int, timeout_s: float, wait_until: float
    ) -> ProduceOutcome | _Ahead:
        if not isinstance(records, bytes | bytearray | memoryview) or len(records) == 0:
            return ProduceOutcome(int(ErrorCode.CORRUPT_MESSAGE), error_message="no records")
        if len(records) > 16 and records[16] != 2:
            return ProduceOutcome(
                int(ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT),
                error_message=f"record batch magic {records[16]}; only v2 is supported",
            )
        scan = native.validate_batches(records, self.batch_bytes_max)
        if scan.error is not native.NativeError.OK:
            code = (
                ErrorCode.MESSAGE_TOO_LARGE
                if scan.error is native.NativeError.BATCH_LENGTH_TOO_LARGE
                else ErrorCode.CORRUPT_MESSAGE
            )
            reason = f"{scan.error.name} at byte {scan.error_position}"
            return ProduceOutcome(int(code), error_message=reason)
        if scan.batch_count != 1:
            return ProduceOutcome(
                int(ErrorCode.INVALID_RECORD),
                error_message=f"{scan.batch_count} batches; a produce carries exactly one",
            )
        header = native.parse_batch_header(records)
        if header.attributes & CONTROL_ATTRIBUTE:
            # Control batches are the log's own (ours carry Raft NOOP, config and seal entries
            # and are read back as such): a client's would be replayed as a Raft entry.
            return ProduceOutcome(
                int(ErrorCode.INVALID_RECORD), error_message="clients may not write control batches"
            )
        if self.keys_required():
            refusal = self._check_keys(records)
            if refusal is not None:
                return refusal
        identity = _identity(header, 0)
        if not self.group.is_leader:
            # Remembered too: this replica may lead again before the batch behind arrives.
            return self._refused(identity, ProduceOutcome(int(ErrorCode.NOT_LEADER_OR_FOLLOWER)))
        if not self._inherited_whole:
            refusal = self._complete_inheritance()
            if refusal is not None:
                return self._refused(identity, refusal)
        # DELIBERATE BUG skip-idempotence: a retried batch is appended again.
        if identity is not None and not bugs.active(bugs.Bug.SKIP_IDEMPOTENCE):
            verdict = self.producers.check(identity)
            if isinstance(verdict, Reject):
                if verdict.ahead and self._refused_batches.get(identity.producer_id) == (
                    identity.producer_epoch,
                    verdict.expected,
                ):
                    return ProduceOutcome(
                        int(ErrorCode.NOT_LEADER_OR_FOLLOWER),
                        error_message=f"sequence {verdict.expected} of this producer was "
                        "refused here and must be retried first",
                    )
                if verdict.ahead and trio.current_time() < wait_until:
                    return _AHEAD
                if verdict.ahead and not self.group.leader_caught_up:
                    # A leader yet to commit in its own term may be a stale one, whose log
                    # lacks the batches in between (`PartitionChain.end_unknown`): not a
                    # gap to report, which would make librdkafka renumber its queue.
                    return ProduceOutcome(
                        int(ErrorCode.NOT_LEADER_OR_FOLLOWER),
                        error_message="this leader has not committed in its term yet",
                    )
                return ProduceOutcome(int(verdict.error), error_message=verdict.reason)
            if isinstance(verdict, Duplicate):
                if verdict.offsets is not None:
                    return ProduceOutcome(0, verdict.offsets[0])  # sealed, so committed
                return await self._answer(verdict.entry_index, acks, timeout_s)
            assert isinstance(verdict, Accept)
        if self._would_overshoot(header.last_offset_delta + 1):
            # The successor made ahead starts at seal_through + 1: seal here, and the client
            # retries on the successor once it refreshes its metadata.
            self._propose_seal()
            refusal = self._refused(
                identity,
                ProduceOutcome(
                    int(ErrorCode.NOT_LEADER_OR_FOLLOWER), error_message="segment is sealing"
                ),
            )
            await self._wait_successor(timeout_s)
            return refusal
        try:
            entry_index, term = self.group.propose(_immutable(records))
        except RaftError as error:
            refusal = self._refused(
                identity,
                ProduceOutcome(int(ErrorCode.NOT_LEADER_OR_FOLLOWER), error_message=str(error)),
            )
            if self._seal_proposed or self.sealed_last_offset is not None:
                await self._wait_successor(timeout_s)
            return refusal
        self._proposed_terms[entry_index] = term
        self._unpersisted_bytes[entry_index] = len(records)
        self._unpersisted_offsets[entry_index] = header.last_offset_delta + 1
        if identity is not None:
            proposed = attrs.evolve(identity, entry_index=entry_index)
            self.producers.record(proposed)
            self._unpersisted_batches[entry_index] = proposed
            self._note_sequences_moved()
        # Checked at proposal too, not only when entries commit: a pipelining producer can
        # propose megabytes before the next commit, and the segment would overshoot.
        self._seal_if_full()
        if acks == 0:
            return ProduceOutcome(0)
        return await self._answer(entry_index, acks, timeout_s)

    def _refused(self, identity: BatchIdentity | None, refusal: ProduceOutcome) -> ProduceOutcome:
        """Remember a batch refused retriably, so its producer's batches behind it are too.

        A client pipelines: were the batch behind a refused one judged on its own, it would
        meet a sequence gap and get OUT_OF_ORDER_SEQUENCE_NUMBER, upon which librdkafka
        bumps its epoch and renumbers messages that may be stored already (a duplicate).
        Kafka never splits a pipeline so: a node that is not the leader refuses them all.
        """
        if identity is not None:
            refused = self._refused_batches
            refused.pop(identity.producer_id, None)
            refused[identity.producer_id] = (identity.producer_epoch, identity.base_sequence)
            while len(refused) > REFUSED_PRODUCERS_MAX:
                refused.popitem(last=False)
        return refusal

    def _complete_inheritance(self) -> ProduceOutcome | None:
        """Take the predecessor's whole memory once it is sealed here; until then refuse
        (retriably), since a retry of one of its last batches would not be recognised."""
        assert self.predecessor is not None
        if self.predecessor.sealed_last_offset is None:
            return ProduceOutcome(
                int(ErrorCode.NOT_LEADER_OR_FOLLOWER),
                error_message="the previous segment is still catching up on this node",
            )
        # Nothing of this leader's is pending yet (every produce was refused until now), so
        # the log on disk is the whole of this segment.
        self.rebuild()
        return None

    async def _wait_successor(self, timeout_s: float) -> None:
        with trio.move_on_after(min(timeout_s, SUCCESSOR_WAIT_S_MAX)):
            await self.successor_linked.wait()

    def _check_keys(self, records: bytes | bytearray | memoryview) -> ProduceOutcome | None:
        try:
            keyless = keyless_records(records)
        except CompactionError as error:
            return ProduceOutcome(int(ErrorCode.CORRUPT_MESSAGE), error_message=str(error))
        if keyless:
            return ProduceOutcome(
                int(ErrorCode.INVALID_RECORD),
                error_message=(
                    f"Compacted topic cannot accept message without key in topic partition "
                    f"{self.topic}-{self.index}."
                ),
            )
        return None

    async def _answer(self, entry_index: int, acks: int, timeout_s: float) -> ProduceOutcome:
        term = self._proposed_terms.get(entry_index)
        if term is None:
            term = self._stored_term(entry_index)
        if term is None:
            # A retry of a batch proposed here whose first request has gone (its client
            # disconnected) before the batch reached the disk: which term it was proposed
            # in is no longer known, and waiting under the current one could take another
            # leader's entry at that index for it. The client retries.
            return ProduceOutcome(
                int(ErrorCode.REQUEST_TIMED_OUT),
                error_message=f"entry {entry_index} is not yet on disk; retry",
            )
        try:
            with trio.fail_after(timeout_s):
                if acks == 1:
                    await self.group.wait_persisted(entry_index, term)
                else:
                    await self.group.wait_committed(entry_index, term)
        except trio.TooSlowError:
            return ProduceOutcome(int(ErrorCode.REQUEST_TIMED_OUT))
        except ProposalLost as lost:
            # Appended here, then leadership moved before the commit: the new leader may
            # still commit it. NOT_LEADER_OR_FOLLOWER would tell librdkafka the batch was
            # not persisted; when a later in-flight batch then fails too, it bumps its
            # epoch and renumbers, and the retried batch is appended a second time (chaos
            # run seed 9009). REQUEST_TIMED_OUT means "possibly persisted": the client
            # retries the same sequence, which the new leader recognises if it holds it.
            return ProduceOutcome(int(ErrorCode.REQUEST_TIMED_OUT), error_message=str(lost))
        finally:
            self._proposed_terms.pop(entry_index, None)
        try:
            base_offset, _last = self._offsets_of(entry_index)
        except StorageError as error:
            logs.event("produce_offset_lookup_failed", logging.ERROR, error=str(error))
            return ProduceOutcome(int(ErrorCode.KAFKA_STORAGE_ERROR))
        return ProduceOutcome(0, base_offset)

    def _stored_term(self, entry_index: int) -> int | None:
        """The term of the entry at `entry_index` in the log on disk, or None if not there.

        The producer table and the disk change together (`_on_truncate`), so this is the
        term of the very batch the table names, even on a leader whose Raft core has just
        stepped down and will overwrite the entry: its waiter is then told the batch was
        lost, rather than matching the next leader's entry of the current term.
        """
        try:
            return self.storage.log.entry_term(entry_index)
        except StorageError:
            return None

    # -- reads -------------------------------------------------------------------------

    def read_committed(self, offset: int, max_bytes: int, *, at_least_one: bool) -> ReadResult:
        high_watermark = self.high_watermark
        if bugs.active(bugs.Bug.FETCH_ABOVE_COMMIT):
            # DELIBERATE BUG fetch-above-commit: serve (and report) the uncommitted tail.
            high_watermark = self.storage.log.next_offset
        start = self.log_start_offset
        if offset < start or offset > max(high_watermark, self.log_end_offset):
            return ReadResult(int(ErrorCode.OFFSET_OUT_OF_RANGE), b"", high_watermark, start)
        if offset >= high_watermark:
            # Above the high watermark but within the log: a new leader learns how far the
            # log is committed only when an entry of its own term commits, so its high
            # watermark may stand below offsets consumers have already read (Kafka's new
            # leaders too). Nothing to return yet; out of range would reset the consumer.
            return ReadResult(0, b"", high_watermark, start)
        log = self.storage.log
        # A sealed group's new leaders append NOOPs after the SEAL, at offsets that belong
        # to its successor: a read never goes past the SEAL.
        end_offset = high_watermark
        if self.sealed_last_offset is not None:
            end_offset = min(end_offset, self.sealed_last_offset + 1)
        try:
            file_slice = log.read_by_offset(offset, max(max_bytes, 1), end_offset=end_offset)
            if file_slice.size_bytes > max_bytes and not at_least_one:
                return ReadResult(0, b"", high_watermark, start)
            records = log.read_slice(file_slice)
        except CorruptBatchError as error:
            # Never serve a batch that fails its CRC. The log marked the entry: the next
            # open of this group cuts it and repairs from the other replicas.
            logs.event(
                "corruption_detected",
                logging.ERROR,
                topic=self.topic,
                partition=self.index,
                offset=offset,
                error=str(error),
                note="fetch refused; restart the node to cut and repair from replicas",
            )
            return ReadResult(int(ErrorCode.KAFKA_STORAGE_ERROR), b"", high_watermark, start)
        return ReadResult(0, records, high_watermark, start)

    def offset_for_timestamp(self, timestamp_ms: int) -> tuple[int, int] | None:
        """The first committed batch holding a record at or after `timestamp_ms`.

        Answers the batch's base offset (Kafka answers the exact record), so a consumer
        that seeks by time starts at most one batch early and never misses a record.
        """
        found = self.storage.log.offset_for_timestamp(timestamp_ms)
        if found is None or found.base_offset >= self.high_watermark:
            return None
        return found.base_offset, found.max_timestamp

    @property
    def epoch_starts(self) -> list[tuple[int, int]]:
        """(leader epoch, first offset written in it) for each epoch this replica holds."""
        return list(self._epochs)


def _immutable(records: bytes | bytearray | memoryview) -> bytes | memoryview:
    """`records` as an entry payload that cannot change under the log: a view of a Kafka
    request's frame (immutable bytes) is kept as it is, anything else copied. A leader
    copied each megabyte batch here before stamping its own copy for the file."""
    if isinstance(records, memoryview) and type(records.obj) is bytes:
        return records
    return bytes(records)


def _identity(header: native.BatchHeader, entry_index: int) -> BatchIdentity | None:
    if header.producer_id < 0:
        return None
    # The sequence span is the offset span (Kafka's rule): compaction may thin a batch's
    # records but keeps lastOffsetDelta, so idempotence rebuilt from the log is unchanged.
    return BatchIdentity(
        header.producer_id,
        header.producer_epoch,
        header.base_sequence,
        header.last_offset_delta + 1,
        entry_index,
    )
