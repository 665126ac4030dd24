"""Opening a replica group whose sealed storage segment is corrupt: the core's start-up
read finds it, the factory reopens (cutting there) and starts with a repair floor."""

from __future__ import annotations

import pathlib

from raftlog.replica.factory import open_replica_group
from raftlog.storage import SegmentedLog
from tests.storage.log_helpers import append_tagged, data_files, small_config


def test_a_corrupt_sealed_file_is_cut_on_open_and_the_core_starts_repairing(
    tmp_path: pathlib.Path,
) -> None:
    with SegmentedLog.open(tmp_path / "log", small_config()) as log:
        batches = [append_tagged(log, tag) for tag in range(120)]
    sealed = data_files(tmp_path / "log")[1]
    data = bytearray(sealed.read_bytes())
    data[len(batches[0]) + 40] ^= 0x01  # the second batch of the second file
    sealed.write_bytes(bytes(data))
    entries_before = int(sealed.stem) // 2  # two records (offsets) per batch

    group, storage = open_replica_group(
        tmp_path,
        group_id=7,
        node_id=1,
        voters=[1, 2, 3],
        apply=lambda entries: None,
        send=lambda message: None,
        log_config=small_config(),
    )
    try:
        assert storage.log.last_entry_index < 120
        assert storage.log.last_entry_index == entries_before + 1  # the file's first batch
        assert storage.log.repair_floor == 120
        assert group.raw.repairing
    finally:
        storage.log.close()
