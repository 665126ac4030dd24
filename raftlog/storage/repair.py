"""What a log remembers about corruption it found: the repair floor and the read-time mark.

Why a floor (Alagappan et al., "Protocol-Aware Recovery for Consensus-Based Storage",
FAST'18): when a replica finds a batch that fails its CRC at entry `i`, it cuts its log
before `i` and so forgets entries it may have acknowledged to a leader, entries that may
count towards a committed majority. If it then voted as if its shorter log were all it
ever had, a corrupted minority plus a lagging replica could elect a leader without a
committed entry and lose acknowledged data. So the cut replica remembers, durably, the
last entry index it once held (the floor); until its log is caught up past the floor from
the current leader it neither campaigns nor grants votes (`raftlog.raft.node`), it only
follows. Catching up is ordinary Raft: the leader re-sends what a lagging follower lacks.

Two records live in one small JSON file in the log directory, written atomically:
`floor` (0: none) and `corrupt_from_entry` (a read found a bad batch there: the next open
cuts the log before it; reads never cut the log under a running Raft core).
"""

from __future__ import annotations

import json
import os
import pathlib
import struct
import threading

import attrs

from raftlog.storage import files
from raftlog.storage.errors import LogLayoutError

REPAIR_FILE_NAME = "repair.json"
REPAIR_FORMAT = 1
_LOG_OVERHEAD = struct.Struct(">qi")  # baseOffset, batchLength
_BATCH_LENGTH_MIN = 49  # a v2 batch header after the length field, with no records
_SAVE_LOCK = threading.Lock()
"""The floor is cleared from the fsync worker thread and marks are saved by reads on the
event loop: one writer at a time, since they share the temporary file's name."""
LOST_WALK_BATCHES_MAX = 1 << 20
"""Bound of the header walk that counts batches lost behind a corrupt one."""


@attrs.frozen
class RepairState:
    floor: int = 0
    """The last entry index this replica held before it cut corrupt data (0: none)."""
    corrupt_from_entry: int = 0
    """A read found entry `corrupt_from_entry` corrupt; cut there at the next open (0: no)."""


def repair_path(directory: pathlib.Path) -> pathlib.Path:
    return directory / REPAIR_FILE_NAME


def load(directory: pathlib.Path) -> RepairState:
    path = repair_path(directory)
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return RepairState()
    except (OSError, ValueError) as error:
        # The file that protects against lost data is itself unreadable: refuse to open
        # rather than vote as if nothing had been lost.
        raise LogLayoutError(f"{path}: unreadable repair state: {error}") from error
    if not isinstance(data, dict):
        raise LogLayoutError(f"{path}: repair state does not parse: {data!r}")
    floor = data.get("floor")
    corrupt = data.get("corrupt_from_entry")
    valid = (
        data.get("format") == REPAIR_FORMAT
        and isinstance(floor, int)
        and floor >= 0
        and isinstance(corrupt, int)
        and corrupt >= 0
    )
    if not valid:
        raise LogLayoutError(f"{path}: repair state does not parse: {data!r}")
    return RepairState(floor, corrupt)


def save(directory: pathlib.Path, state: RepairState) -> None:
    """Write the state atomically (fsynced); an empty state removes the file."""
    with _SAVE_LOCK:
        _save(directory, state)


def _save(directory: pathlib.Path, state: RepairState) -> None:
    path = repair_path(directory)
    if state == RepairState():
        if files.unlink_if_present(path):
            files.fsync_directory(directory)
        return
    text = json.dumps(
        {
            "format": REPAIR_FORMAT,
            "floor": state.floor,
            "corrupt_from_entry": state.corrupt_from_entry,
        }
    )
    files.write_atomically(path, text.encode())


def count_batches_from(fd: int, position: int, size_bytes: int) -> int:
    """How many batches seem to lie from `position` to `size_bytes`, by their length
    fields alone (no CRC): an estimate of the entries a cut at `position` throws away.
    Stops at the first implausible length; counts the batch at `position` whenever
    there are bytes there, since bytes there mean at least one entry was written."""
    count = 0
    while position < size_bytes and count < LOST_WALK_BATCHES_MAX:
        head = os.pread(fd, _LOG_OVERHEAD.size, position)
        if len(head) < _LOG_OVERHEAD.size:
            return max(count, 1)
        _base, length = _LOG_OVERHEAD.unpack(head)
        end = position + _LOG_OVERHEAD.size + length
        if length < _BATCH_LENGTH_MIN or end > size_bytes:
            return max(count, 1)
        count += 1
        position = end
    return count
