"""A partition as a chain of segments, each its own Raft group; only the head takes appends.

Handlers see one partition: produce goes to the head, a fetch is served by whichever local
segment holds the offset (sealed segments are immutable, so any replica of one serves it),
earliest is the first segment's start and latest the head's high watermark. The head
inherits the idempotence memory of the segment before it, so a producer's sequence carries
across a seal.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import attrs

from raftlog.partition.replica import PartitionReplica, ProduceOutcome, ReadResult
from raftlog.protocol.errors import ErrorCode
from raftlog.replica.group import ReplicaGroup


@attrs.define(eq=False)
class PartitionChain:
    topic: str
    index: int
    segments: list[PartitionReplica] = attrs.field(factory=list)
    """The segments hosted here, in offset order; the last one is the head."""
    cluster_start: Callable[[], int | None] = lambda: None
    """The partition's first offset as the controller records it (None: unknown). A node
    still receiving a moved replica may hold fewer segments than the partition has."""
    answers_for_partition: Callable[[], bool] = lambda: True
    """False while the partition's head segment is not placed here: the chain holds only
    sealed segments of it (a replica left here, or one still arriving), whose leader is not
    the partition's."""
    head_opening: Callable[[], bool] = lambda: False
    """True while the partition's head is placed here but not in the chain yet: still
    opening (made at the seal, or a restart opening groups in batches after the node is
    ready), or waiting for its first leader (`Node._enter_chain`). The sealed segment before
    it stands in, so that Metadata names a leader right after a seal, but it cannot say
    where the partition ends: the head may be empty here, not on its other replicas (this
    node was down, or lost unsynced data). Answers that depend on the partition's end are
    refused meanwhile (`end_unknown`)."""

    def add(self, segment: PartitionReplica) -> None:
        self.segments.append(segment)
        self.segments.sort(key=lambda replica: replica.storage.log.start_offset)
        for before, after in itertools.pairwise(self.segments):
            if after.predecessor is not before:
                after.predecessor = before
                after.rebuild()

    def remove(self, group_id: int) -> None:
        self.segments = [s for s in self.segments if s.group.group_id != group_id]

    def end_unknown(self) -> bool:
        """Whether this chain must not say where the partition ends (asked of a leader).

        While a sealed segment stands in for the head (`stands_in`); and while the head's
        leader has not committed an entry of its own term. Such a leader may be a stale
        one: a replica that missed the head's creation replays it on restart and leads the
        head's first term, with an empty log, until it hears of the later terms of the
        replicas that hold the data.
        """
        return self.stands_in() or not self.head.group.leader_caught_up

    def stands_in(self) -> bool:
        """Whether the chain's last segment is sealed, standing in for a head it lacks.

        Either the head is open here and waits for its first leader (`head_opening`),
        or this node's view of the controller has not linked the successor yet. That view
        may be far behind (a node cut off from the controller leader, while it still
        leads the sealed group with another replica): the partition may have moved on by
        many records, so the sealed segment's end is no answer for the partition's.
        """
        return self.head_opening() or self.head.sealed_last_offset is not None

    @property
    def head(self) -> PartitionReplica:
        return self.segments[-1]

    @property
    def group(self) -> ReplicaGroup:
        """The head segment's group: its leader is the partition's leader."""
        return self.head.group

    @property
    def leader_epoch(self) -> int:
        """The head's term; while a sealed segment stands in for the head (`stands_in`),
        the epoch of the partition's last records instead.

        A sealed group's own term keeps growing after its seal, one election at a time,
        past the terms its successor starts from. Named in Metadata, such an epoch would
        outrank the head's: librdkafka ignores later Metadata naming an epoch below one it
        was given, and keeps asking the stand-in.
        """
        if self.stands_in():
            starts = self.epoch_starts()
            if starts:
                return min(starts[-1][0], self.head.leader_epoch)
        return self.head.leader_epoch

    @property
    def log_start_offset(self) -> int:
        recorded = self.cluster_start()
        return self.segments[0].log_start_offset if recorded is None else recorded

    @property
    def high_watermark(self) -> int:
        return self.head.high_watermark

    async def produce(self, records: object, acks: int, timeout_s: float) -> ProduceOutcome:
        return await self.head.produce(records, acks, timeout_s)

    def check_leader_epoch(self, current_leader_epoch: int) -> ErrorCode | None:
        """Kafka's fencing of requests made against another leader's epoch (-1: none given)."""
        if not self.head.group.is_leader:
            return ErrorCode.NOT_LEADER_OR_FOLLOWER
        epoch = self.leader_epoch
        if current_leader_epoch < 0 or current_leader_epoch == epoch:
            return None
        if current_leader_epoch < epoch:
            return ErrorCode.FENCED_LEADER_EPOCH
        return ErrorCode.UNKNOWN_LEADER_EPOCH

    def read_committed(self, offset: int, max_bytes: int, *, at_least_one: bool) -> ReadResult:
        high_watermark = self.high_watermark
        start = self.log_start_offset
        if offset < start:
            return ReadResult(int(ErrorCode.OFFSET_OUT_OF_RANGE), b"", high_watermark, start)
        if offset > high_watermark:
            head = self.head
            if head.sealed_last_offset is not None and offset > head.sealed_last_offset + 1:
                # The successor is linked elsewhere but not yet here: ask again, elsewhere.
                return ReadResult(int(ErrorCode.NOT_LEADER_OR_FOLLOWER), b"", high_watermark, start)
            if offset > head.log_end_offset:
                if self.end_unknown():
                    # Maybe past the end of a stale copy (`end_unknown`): ask again.
                    error = ErrorCode.NOT_LEADER_OR_FOLLOWER
                    return ReadResult(int(error), b"", high_watermark, start)
                return ReadResult(int(ErrorCode.OFFSET_OUT_OF_RANGE), b"", high_watermark, start)
            # A new leader whose high watermark has not caught up with its log yet (see
            # `PartitionReplica.read_committed`): nothing to return yet, and no reset.
            return ReadResult(0, b"", high_watermark, start)
        segment = self.segment_holding(offset)
        if segment is None:
            # The offset exists in the partition but this node does not hold it now (a
            # replica moving here is still arriving): a retriable error, so the client asks
            # again rather than resetting its position as OFFSET_OUT_OF_RANGE would make it.
            # The fetch handler first asks a replica that holds it (`sealed_reads`).
            return ReadResult(int(ErrorCode.NOT_LEADER_OR_FOLLOWER), b"", high_watermark, start)
        result = segment.read_committed(offset, max_bytes, at_least_one=at_least_one)
        return ReadResult(result.error_code, result.records, high_watermark, start)

    def segment_holding(self, offset: int) -> PartitionReplica | None:
        """The local segment that answers for `offset`, or None if none here does now."""
        for segment, following in itertools.zip_longest(self.segments, self.segments[1:]):
            if offset < segment.log_start_offset:
                return None  # the segment holding it is not (yet) here
            sealed_end = segment.sealed_last_offset
            if sealed_end is not None and offset > sealed_end:
                continue
            if following is not None and offset >= following.log_start_offset:
                # A sealed group whose SEAL this replica has not applied yet (it is
                # catching up, say after cutting corrupt data) must not answer for offsets
                # of its successor: new leaders of a sealed group append NOOPs there.
                continue
            if following is not None and offset >= segment.high_watermark:
                # An earlier segment this replica has not applied that far yet: a replica
                # that has answers (forwarded), or the client asks again.
                return None
            return segment
        return None

    def offset_for_timestamp(self, timestamp_ms: int) -> tuple[int, int] | None:
        for segment in self.segments:
            found = segment.offset_for_timestamp(timestamp_ms)
            if found is not None:
                return found
        return None

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        """(largest epoch <= `epoch` in the partition, the offset where it ends).

        A consumer that gets an end offset below its position treats the records between
        as truncated and seeks back to re-read them, so an answer may err high (no
        committed record is ever truncated) but never low.
        """
        starts = self.epoch_starts()
        answer = (-1, -1)
        for position, (known_epoch, _start) in enumerate(starts):
            if known_epoch > epoch:
                break
            following = starts[position + 1 : position + 2]
            answer = (known_epoch, following[0][1] if following else self._end_offset())
        return answer

    def describe(self) -> str:
        """The segments here as `group:start-end[/sealed]` and the epoch starts, for logs."""
        parts = []
        for segment in self.segments:
            sealed = segment.sealed_last_offset
            text = f"{segment.group.group_id}:{segment.log_start_offset}-{segment.log_end_offset}"
            parts.append(text if sealed is None else f"{text}/sealed@{sealed}")
        return ",".join(parts) + " starts=" + ";".join(f"{e}@{o}" for e, o in self.epoch_starts())

    def epoch_starts(self) -> list[tuple[int, int]]:
        """Where each leader epoch starts, over the partition's offsets.

        Each segment counts only up to where the partition moves on: a sealed group's
        later leaders append NOOPs past the SEAL at offsets its successor owns, and a
        replica still catching up ends below its segment's real end, so its own log end
        is no answer for the partition.
        """
        starts: list[tuple[int, int]] = []
        for segment, following in itertools.zip_longest(self.segments, self.segments[1:]):
            limit = _segment_limit(segment, following)
            for known_epoch, start in segment.epoch_starts:
                if start >= limit or (starts and known_epoch <= starts[-1][0]):
                    continue
                starts.append((known_epoch, start))
        return starts

    def _end_offset(self) -> int:
        head = self.head
        end = head.log_end_offset
        if head.sealed_last_offset is not None:
            end = min(end, head.sealed_last_offset + 1)
        return end


def _segment_limit(segment: PartitionReplica, following: PartitionReplica | None) -> float:
    if following is not None:
        return following.log_start_offset
    if segment.sealed_last_offset is not None:
        return segment.sealed_last_offset + 1
    return float("inf")


def retention_cut(
    chain: PartitionChain, retention_ms: int, retention_bytes: int, now_ms: float
) -> int | None:
    """The offset below which whole sealed segments may go, or None to keep them all.

    Kafka's rules, applied to whole segments and never to the head: a sealed segment goes
    when its newest record is older than `retention_ms`, or while the partition is larger
    than `retention_bytes` without it (-1 disables either rule).
    """
    sealed = [
        (segment, segment.sealed_last_offset)
        for segment in chain.segments[:-1]
        if segment.sealed_last_offset is not None
    ]
    sizes = [segment.storage.log.size_bytes for segment in chain.segments]
    total_bytes = sum(sizes)
    below = None
    for position, (segment, last_offset) in enumerate(sealed):
        newest_ms = max((info.max_timestamp for info in segment.storage.log.segments()), default=-1)
        too_old = retention_ms >= 0 and 0 <= newest_ms < now_ms - retention_ms
        too_big = retention_bytes >= 0 and total_bytes > retention_bytes
        if not (too_old or too_big):
            break
        total_bytes -= sizes[position]
        below = last_offset + 1
    return below
