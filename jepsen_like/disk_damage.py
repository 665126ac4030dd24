"""Damage a stopped node's segment files the way a failing disk does: bit flips, truncation.

Used by the ``corrupt`` nemesis and by the corruption tests. Only a stopped node's files
are touched (the nemesis SIGKILLs it first): a running node holds the files open and may
be writing them, so damage done under it would race its own writes and land in its page
cache in an order no disk produces; and a node only re-reads what is on disk when it
opens a group, which is what recovery is about.

Bit flips land in the CRC-covered part of a batch (from ``attributes`` on). Kafka's batch
v2 leaves ``baseOffset``, ``batchLength``, ``partitionLeaderEpoch`` and ``magic`` outside
its CRC: a flip there is caught only by the offset and epoch continuity checks, or not at
all (a raised epoch in the last batch), and is not what this harness exercises.
"""

from __future__ import annotations

import os
import random
import struct
from pathlib import Path

import attrs

_LOG_OVERHEAD = struct.Struct(">qi")  # baseOffset, batchLength
_CRC_COVERED_FROM = 21  # bytes before `attributes`: offset, length, epoch, magic, crc
_BATCH_LENGTH_MIN = 49


@attrs.frozen
class Damage:
    """One change made to one file; ``describe()`` is what nemesis.jsonl records."""

    node_id: int
    path: str
    """Relative to the node's data directory."""
    action: str
    """``flip`` or ``truncate``."""
    position: int
    """The byte flipped, or the new size."""
    bit: int
    """The bit flipped (0-7); -1 for a truncation."""
    size_before: int

    def describe(self) -> str:
        return (
            f"node={self.node_id} file={self.path} action={self.action} "
            f"position={self.position} bit={self.bit} size_before={self.size_before}"
        )


def segment_files(data_dir: Path) -> list[Path]:
    """Every non-empty segment data file of every group on a node, in a stable order."""
    groups = data_dir / "groups"
    if not groups.is_dir():
        return []
    found = [path for path in groups.glob("*/log/*.log") if path.stat().st_size > 0]
    return sorted(found, key=lambda path: (int(path.parent.parent.name), path.name))


def batch_spans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each whole batch, walking the length fields from the start."""
    spans = []
    position = 0
    while position + _LOG_OVERHEAD.size <= len(data):
        _base, length = _LOG_OVERHEAD.unpack_from(data, position)
        end = position + _LOG_OVERHEAD.size + length
        if length < _BATCH_LENGTH_MIN or end > len(data):
            break
        spans.append((position, end))
        position = end
    return spans


def flip_bit(data_dir: Path, path: Path, node_id: int, rng: random.Random) -> Damage:
    """Flip one bit in the CRC-covered part of a batch from the middle third of the file
    (the whole file if it holds fewer than three batches); fsync."""
    data = path.read_bytes()
    spans = batch_spans(data)
    if not spans:
        raise ValueError(f"{path}: no whole batch to flip a bit in")
    third = len(spans) // 3
    start, end = rng.choice(spans[third : len(spans) - third] or spans)
    position = rng.randrange(start + _CRC_COVERED_FROM, end)
    bit = rng.randrange(8)
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, bytes([data[position] ^ (1 << bit)]), position)
        os.fsync(fd)
    finally:
        os.close(fd)
    return Damage(node_id, str(path.relative_to(data_dir)), "flip", position, bit, len(data))


def truncate(data_dir: Path, path: Path, node_id: int, rng: random.Random) -> Damage:
    """Cut the file at a random byte in its second half (mid-batch, as a lost write-back
    or a bad block at the end looks); fsync."""
    size = path.stat().st_size
    new_size = rng.randrange(size // 2, size)
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, new_size)
        os.fsync(fd)
    finally:
        os.close(fd)
    return Damage(node_id, str(path.relative_to(data_dir)), "truncate", new_size, -1, size)


def damage_node(
    data_dir: Path, node_id: int, rng: random.Random, *, flips: int = 1, truncations: int = 1
) -> list[Damage]:
    """Flip bits in `flips` files and truncate `truncations` other files (as many as
    there are) of a stopped node. Returns exactly what was done."""
    files = _by_size_at_random(segment_files(data_dir), rng)
    done = []
    for path in files[:flips]:
        if batch_spans(path.read_bytes()):
            done.append(flip_bit(data_dir, path, node_id, rng))
    for path in files[flips : flips + truncations]:
        done.append(truncate(data_dir, path, node_id, rng))
    return done


def _by_size_at_random(paths: list[Path], rng: random.Random) -> list[Path]:
    """The files in a random order where a larger file tends to come first (weighted by
    size): topic data, not the one-NOOP logs of idle offsets partitions, gets damaged."""
    remaining = [(path, path.stat().st_size) for path in paths]
    ordered = []
    while remaining:
        pick = rng.uniform(0, sum(size for _path, size in remaining))
        for position, (path, size) in enumerate(remaining):
            pick -= size
            if pick <= 0 or position == len(remaining) - 1:
                ordered.append(path)
                del remaining[position]
                break
    return ordered
