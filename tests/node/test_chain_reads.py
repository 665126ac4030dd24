"""Which segment serves a fetch, and what a node that lacks part of the partition answers.

The segments are stand-ins with only what the chain reads of them (offsets, the seal
point, a read that names itself); the real segment replica is tested with real files in
tests/cluster/ and tests/clients/.
"""

from __future__ import annotations

import attrs

from raftlog.partition.chain import PartitionChain
from raftlog.partition.replica import ReadResult
from raftlog.protocol.errors import ErrorCode


@attrs.define
class _Group:
    is_leader: bool = True
    group_id: int = 7
    leader_caught_up: bool = True
    """Has committed an entry of its own term (`ReplicaGroup.leader_caught_up`)."""


@attrs.define
class _Segment:
    log_start_offset: int
    sealed_last_offset: int | None
    high_watermark: int
    log_end_offset: int = -1
    """The end of this replica's log, committed or not (-1: the high watermark)."""
    group: _Group = attrs.field(factory=_Group)

    def __attrs_post_init__(self) -> None:
        if self.log_end_offset < 0:
            self.log_end_offset = self.high_watermark

    def read_committed(self, offset: int, max_bytes: int, *, at_least_one: bool) -> ReadResult:
        label = f"{self.log_start_offset}@{offset}".encode()
        return ReadResult(0, label, self.high_watermark, self.log_start_offset)


def _chain(segments: list[_Segment], cluster_start: int | None) -> PartitionChain:
    chain = PartitionChain("t", 0, segments=list(segments))  # type: ignore[arg-type]
    chain.cluster_start = lambda: cluster_start
    return chain


def test_each_offset_is_read_from_the_segment_that_holds_it() -> None:
    chain = _chain([_Segment(0, 99, 100), _Segment(100, 199, 200), _Segment(200, None, 250)], 0)
    assert chain.read_committed(0, 1, at_least_one=True).records == b"0@0"
    assert chain.read_committed(150, 1, at_least_one=True).records == b"100@150"
    assert chain.read_committed(250, 1, at_least_one=True).records == b"200@250"
    beyond = chain.read_committed(251, 1, at_least_one=True)
    assert beyond.error_code == ErrorCode.OFFSET_OUT_OF_RANGE


def test_a_missing_segment_is_retriable_not_out_of_range() -> None:
    """A node receiving a moved replica may lack the partition's first segments for a while:
    OFFSET_OUT_OF_RANGE there would make clients reset their position and skip records."""
    chain = _chain([_Segment(100, 199, 200), _Segment(200, None, 250)], 0)
    assert chain.log_start_offset == 0, "earliest is the partition's, not this node's"
    missing = chain.read_committed(50, 1, at_least_one=True)
    assert missing.error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER
    assert missing.log_start_offset == 0
    gap = _chain([_Segment(0, 99, 100), _Segment(200, None, 250)], 0)
    assert gap.read_committed(150, 1, at_least_one=True).error_code == (
        ErrorCode.NOT_LEADER_OR_FOLLOWER
    )
    assert gap.read_committed(99, 1, at_least_one=True).records == b"0@99"


def test_below_the_partition_start_is_out_of_range() -> None:
    chain = _chain([_Segment(100, None, 150)], 100)  # retention dropped 0..99 everywhere
    assert chain.read_committed(10, 1, at_least_one=True).error_code == (
        ErrorCode.OFFSET_OUT_OF_RANGE
    )


def test_a_new_leader_behind_on_its_commit_point_answers_empty_not_out_of_range() -> None:
    """Seen in a chaos run (seed 13102, delay,partition): the new leader of a head had the
    whole log but its high watermark still stood where the old leader's had been a moment
    earlier; answering OFFSET_OUT_OF_RANGE to a consumer at 970 made librdkafka reset to
    the beginning and read 869 records again."""
    chain = _chain([_Segment(0, None, 950, log_end_offset=975)], 0)
    waiting = chain.read_committed(970, 1, at_least_one=True)
    assert (waiting.error_code, waiting.records) == (0, b"")
    assert waiting.high_watermark == 950
    beyond = chain.read_committed(976, 1, at_least_one=True)
    assert beyond.error_code == ErrorCode.OFFSET_OUT_OF_RANGE


def test_offsets_past_a_sealed_head_are_asked_for_elsewhere() -> None:
    """The successor was linked on other nodes first; this node still heads the partition
    with the sealed group, whose later leaders appended NOOPs past the SEAL."""
    chain = _chain([_Segment(0, 99, 102, log_end_offset=102)], 0)
    assert chain.read_committed(101, 1, at_least_one=True).error_code == (
        ErrorCode.NOT_LEADER_OR_FOLLOWER
    )


def test_a_sealed_segment_applied_only_part_way_here_is_not_read_past_its_progress() -> None:
    """This node's copy of a sealed segment has applied entries up to 50 only: offsets
    beyond are another replica's to serve (forwarded), never out of range."""
    chain = _chain([_Segment(0, None, 50), _Segment(100, None, 150)], 0)
    assert chain.read_committed(30, 1, at_least_one=True).records == b"0@30"
    lagging = chain.read_committed(70, 1, at_least_one=True)
    assert lagging.error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER
    assert chain.segment_holding(70) is None


def test_a_leader_yet_to_commit_in_its_term_never_answers_out_of_range() -> None:
    """It may be a stale leader: a replica that missed the head's creation replays it on
    restart and leads the head's first term with an empty log until it hears of the later
    terms. A consumer past that empty log must ask again, not reset its position."""
    stale = _Segment(200, None, 200, group=_Group(leader_caught_up=False))
    chain = _chain([_Segment(0, 199, 200), stale], 0)
    assert chain.end_unknown()
    ahead = chain.read_committed(230, 1, at_least_one=True)
    assert ahead.error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER
    stale.group.leader_caught_up = True
    assert not chain.end_unknown()
    assert chain.read_committed(230, 1, at_least_one=True).error_code == (
        ErrorCode.OFFSET_OUT_OF_RANGE
    )


@attrs.define
class _EpochSegment:
    log_start_offset: int
    log_end_offset: int
    sealed_last_offset: int | None
    epoch_starts: list[tuple[int, int]]
    leader_epoch: int = 0
    group: _Group = attrs.field(factory=_Group)


def test_epoch_end_offsets_span_segments() -> None:
    chain = _chain(
        [
            _EpochSegment(0, 100, 99, [(1, 0), (3, 40)]),
            _EpochSegment(100, 180, None, [(4, 100), (6, 150)]),
        ],
        0,
    )  # type: ignore[list-item]
    assert chain.end_offset_for_epoch(0) == (-1, -1)
    assert chain.end_offset_for_epoch(1) == (1, 40)
    assert chain.end_offset_for_epoch(2) == (1, 40)
    assert chain.end_offset_for_epoch(3) == (3, 100)
    assert chain.end_offset_for_epoch(5) == (4, 150)
    assert chain.end_offset_for_epoch(6) == (6, 180)
    assert chain.end_offset_for_epoch(9) == (6, 180)


def test_epoch_end_never_comes_from_a_lagging_sealed_replica() -> None:
    """Seen in a chaos run: this node's copy of the sealed segment ended at 3795 while a
    consumer stood at 3796; answering 3795 made librdkafka seek back and read 3795 twice.
    The sealed segment's data ends where its successor starts, whatever this copy holds."""
    chain = _chain(
        [
            _EpochSegment(2924, 3795, None, [(7, 2924)]),
            _EpochSegment(3894, 3900, None, [(8, 3894)]),
        ],
        0,
    )  # type: ignore[list-item]
    assert chain.end_offset_for_epoch(7) == (7, 3894)


def test_a_chain_describes_its_segments_and_epochs_for_the_logs() -> None:
    chain = _chain(
        [
            _EpochSegment(0, 100, 99, [(1, 0), (3, 40)]),
            _EpochSegment(100, 180, None, [(4, 100), (6, 150)]),
        ],
        0,
    )  # type: ignore[list-item]
    assert chain.describe() == "7:0-100/sealed@99,7:100-180 starts=1@0;3@40;4@100;6@150"


def test_noops_past_a_seal_do_not_end_an_epoch_early() -> None:
    """A sealed group's later leaders append NOOPs past the SEAL (epochs 8 to 11 at
    3894..3897 here): those offsets are the successor's, not epochs of the partition."""
    sealed = _EpochSegment(2924, 3898, 3893, [(7, 2924), (8, 3894), (9, 3895), (11, 3897)])
    alone = _chain([sealed], 0)  # type: ignore[list-item]
    assert alone.end_offset_for_epoch(7) == (7, 3894)
    assert alone.end_offset_for_epoch(10) == (7, 3894)
    linked = _chain([sealed, _EpochSegment(3894, 3950, None, [(8, 3894), (12, 3920)])], 0)  # type: ignore[list-item]
    assert linked.end_offset_for_epoch(7) == (7, 3894)
    assert linked.end_offset_for_epoch(9) == (8, 3920)
    assert linked.end_offset_for_epoch(12) == (12, 3950)


def test_a_sealed_segment_standing_in_for_the_head_names_the_epoch_of_its_data() -> None:
    """The head is open here but waits for its first leader; the sealed segment before it
    stands in. That group's term went on from 8 (its seal) to 11 with later elections,
    past the head's first terms: naming 11 in Metadata made librdkafka ignore the head's
    real epoch afterwards (campaign c18000, seed 18009). It names the epoch of its last
    records instead, and says nothing about where the partition ends."""
    sealed = _EpochSegment(
        1000, 1953, 1950, [(7, 1000), (8, 1900), (9, 1951), (11, 1952)], leader_epoch=11
    )
    chain = _chain([sealed], 0)  # type: ignore[list-item]
    chain.head_opening = lambda: True
    assert chain.stands_in()
    assert chain.leader_epoch == 8
    assert chain.end_unknown()
    assert chain.check_leader_epoch(8) is None
    assert chain.check_leader_epoch(11) == ErrorCode.UNKNOWN_LEADER_EPOCH
    sealed.group.is_leader = False
    assert chain.check_leader_epoch(8) == ErrorCode.NOT_LEADER_OR_FOLLOWER


def test_a_sealed_head_says_nothing_of_where_the_partition_ends() -> None:
    """Campaign c22100, seed 22106: after every node restarted, two served clients while
    their view of the controller still named sealed group 11 as the head (group 13 had
    been linked 14 s before, with records 977-1072 in it). The leader of group 11 (NOOPs
    at 977 and 978, terms 2 and 3, from elections after the seal) answered where epoch 2
    ends, and a consumer at 1073 sought back to 978. Whatever this node's view says, a
    sealed last segment does not know where the partition ends now."""
    sealed = _EpochSegment(400, 980, 976, [(1, 400), (2, 977), (3, 978), (4, 979)], 4)
    chain = _chain([sealed], 0)  # type: ignore[list-item]
    assert chain.stands_in()
    assert chain.end_unknown()
    assert chain.leader_epoch == 1, "the epoch of its records, not of its NOOPs past the seal"
    head = _EpochSegment(977, 1100, None, [(2, 977), (3, 1073)], 3)
    linked = _chain([sealed, head], 0)  # type: ignore[list-item]
    assert not linked.stands_in()
    assert not linked.end_unknown()
    assert linked.end_offset_for_epoch(2) == (2, 1073)
