"""Compacting a partition's sealed segments on this node, without any Raft traffic.

Sealed segments hold the same bytes on every replica up to their SEAL entry, so every
replica compacts its own copy: a pass builds the latest offset of every key over the
sealed segments hosted here (never the head, whose commit point differs per replica),
then rewrites each sealed segment's files oldest first with that map. The output is a
function of the input bytes, the map and which segments may drop tombstones, so replicas
that compact the same segments reach the same bytes (and compacting again with a map
that covers more only removes more: passes converge).

Tombstones are the one hazard: dropping one while an older value of its key survives
somewhere would bring that value back. A segment drops its tombstones only when every
segment before it, back to the partition's first, is hosted here and was compacted in
the same pass (so the older values are already gone), and `delete.retention.ms` has
passed since the segment's newest record.

Work per pass is bounded by the bytes rewritten; the pure part (parsing, the map, the
rewrite) runs in a worker thread, the swap on the event loop.
"""

from __future__ import annotations

import logging

import attrs
import trio

from raftlog import logs
from raftlog.partition.chain import PartitionChain
from raftlog.partition.cleanup import CleanupPolicy
from raftlog.partition.replica import PartitionReplica
from raftlog.storage.compaction import CompactionResult, OffsetMap, compact_data
from raftlog.storage.errors import StorageError
from raftlog.storage.segment import write_replacement

BYTES_PER_PASS_DEFAULT = 64 << 20


@attrs.define(eq=False)
class CompactionState:
    """What the last complete pass over a partition left, kept in memory (a restart
    makes every segment dirty once; a pass over already compact data rewrites nothing)."""

    clean_through: int = -1
    """The last sealed offset the last complete pass covered."""
    tombstones_due_ms: int | None = None
    """When the earliest tombstone kept by the last pass may go."""


@attrs.frozen
class FileCompaction:
    """One segment file that a pass rewrote."""

    group_id: int
    file_base_offset: int
    bytes_before: int
    bytes_after: int
    records_before: int
    records_after: int


def sealed_segments(chain: PartitionChain) -> list[PartitionReplica]:
    """The hosted segments whose SEAL entry this node has applied (never the head)."""
    return [s for s in chain.segments[:-1] if s.sealed_last_offset is not None]


def dirty_ratio(chain: PartitionChain, state: CompactionState) -> float:
    """Share of the sealed bytes in segments sealed after the last complete pass."""
    sealed = sealed_segments(chain)
    total = sum(segment.storage.log.size_bytes for segment in sealed)
    if total == 0:
        return 0.0
    dirty = sum(
        segment.storage.log.size_bytes
        for segment in sealed
        if (segment.sealed_last_offset or 0) > state.clean_through
    )
    return dirty / total


def needs_pass(
    chain: PartitionChain, policy: CleanupPolicy, state: CompactionState, now_ms: int
) -> bool:
    if not policy.compact or not sealed_segments(chain):
        return False
    if state.tombstones_due_ms is not None and now_ms >= state.tombstones_due_ms:
        return True
    ratio = dirty_ratio(chain, state)
    return ratio > 0 and ratio >= policy.min_cleanable_dirty_ratio


async def compact_partition(
    chain: PartitionChain,
    policy: CleanupPolicy,
    state: CompactionState,
    *,
    partition_start_offset: int,
    now_ms: int,
    bytes_per_pass: int = BYTES_PER_PASS_DEFAULT,
    keys_max: int | None = None,
) -> list[FileCompaction]:
    """One pass over the sealed segments hosted here; returns the files rewritten.

    `partition_start_offset` is where the partition begins (the controller's first
    segment): tombstones may go only if the hosted sealed segments reach back to it
    without a hole. Raises `raftlog.storage.compaction.CompactionError` when the data
    cannot be compacted (unreadable records, more keys than the map's bound).
    """
    sealed = sealed_segments(chain)
    if not sealed:
        return []
    offsets = OffsetMap() if keys_max is None else OffsetMap(keys_max=keys_max)
    for segment in sealed:
        below = (segment.sealed_last_offset or 0) + 1
        for info in segment.storage.log.segments():
            source = segment.storage.log.read_segment_data(info.base_offset)
            await trio.to_thread.run_sync(offsets.add, source.data, below)
    contiguous = _contiguous(sealed, partition_start_offset)
    rewritten: list[FileCompaction] = []
    budget = bytes_per_pass
    tombstones_due: int | None = None
    for segment in sealed:
        newest_ms = max((i.max_timestamp for i in segment.storage.log.segments()), default=-1)
        drop_tombstones = contiguous and newest_ms >= 0 and (
            now_ms - newest_ms > policy.delete_retention_ms
        )
        for info in segment.storage.log.segments():
            if budget <= 0:
                return rewritten  # not a complete pass: the state stays dirty
            done = await _compact_file(segment, info.base_offset, offsets, drop_tombstones)
            if done is None:
                continue
            result, size_before = done
            if result.tombstones_kept and contiguous and newest_ms >= 0:
                due = newest_ms + policy.delete_retention_ms + 1
                tombstones_due = due if tombstones_due is None else min(tombstones_due, due)
            if result.changed:
                budget -= size_before
                rewritten.append(
                    FileCompaction(
                        segment.group.group_id,
                        info.base_offset,
                        size_before,
                        len(result.data),
                        result.records_before,
                        result.records_after,
                    )
                )
    state.clean_through = sealed[-1].sealed_last_offset or state.clean_through
    state.tombstones_due_ms = tombstones_due
    return rewritten


def _contiguous(sealed: list[PartitionReplica], partition_start_offset: int) -> bool:
    expected = partition_start_offset
    for segment in sealed:
        if segment.log_start_offset != expected:
            return False
        expected = (segment.sealed_last_offset or 0) + 1
    return True


async def _compact_file(
    segment: PartitionReplica, base_offset: int, offsets: OffsetMap, drop_tombstones: bool
) -> tuple[CompactionResult, int] | None:
    """Compact one file of a segment's log; None if the log went away meanwhile."""
    log = segment.storage.log
    try:
        source = log.read_segment_data(base_offset)
        path = log.replacement_path(base_offset)
    except StorageError:
        return None
    result = await trio.to_thread.run_sync(compact_data, source.data, offsets, drop_tombstones)
    if result.changed:
        fd = await trio.to_thread.run_sync(write_replacement, path, result.data)
        try:
            log.replace_segment_data(base_offset, fd, source.changes)
        except StorageError as error:
            # Closed by retention, or a new leader appended a NOOP meanwhile: next pass.
            logs.event(
                "compaction_skipped",
                logging.INFO,
                group=segment.group.group_id,
                segment=base_offset,
                reason=str(error),
            )
            return None
    return result, len(source.data)

