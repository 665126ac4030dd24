"""Stateful property test: SegmentedLog against an in-memory list of batches.

Rules append, cut the suffix, roll, apply retention, reopen cleanly and reopen after a
torn write; after every step the log must read back exactly what the model holds, by
entry, by offset and by time.
"""

import itertools
import pathlib
import shutil
import tempfile

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from raftlog import native
from raftlog.limits import StorageLimits
from raftlog.native_twin import Record, build_batch
from raftlog.storage import LogConfig, SegmentedLog, stamp

LIMITS = StorageLimits(batch_bytes_max=2048, segment_bytes_max=2048, index_interval_bytes=400,
                       recovery_chunk_bytes=4096)
RETENTION_BYTES = 5_000
RETENTION_AGE_MS = 3_000
CONFIG = LogConfig(limits=LIMITS, segment_age_ms_max=None, retention_bytes_max=RETENTION_BYTES,
                   retention_age_ms_max=RETENTION_AGE_MS)


class LogMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = pathlib.Path(tempfile.mkdtemp(prefix="raftlog-sm-"))
        self.log = SegmentedLog.open(self.directory, CONFIG, initial_offset=1_000,
                                     initial_entry_index=1)
        self.batches: list[bytes] = []
        self.first_entry = 1
        self.epoch = 0
        self.tag = 0

    def teardown(self) -> None:
        self.log.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    # ---- model helpers ------------------------------------------------------------

    def header(self, entry: int) -> native.BatchHeader:
        return native.parse_batch_header(self.batches[entry - self.first_entry])

    @property
    def last_entry(self) -> int:
        return self.first_entry + len(self.batches) - 1

    # ---- rules --------------------------------------------------------------------

    @rule(records=st.integers(1, 4), value_bytes=st.integers(0, 150),
          jitter_ms=st.integers(-300, 100), new_epoch=st.booleans())
    def append(self, records: int, value_bytes: int, jitter_ms: int, new_epoch: bool) -> None:
        """Timestamps mostly rise, as clocks do, with some going back."""
        self.epoch += int(new_epoch)
        self.tag += 1
        base_timestamp = max(0, self.tag * 50 + jitter_ms)
        batch = build_batch([Record(value=bytes([self.tag % 256]) * value_bytes,
                                    timestamp_delta=i * 7) for i in range(records)],
                            base_timestamp=base_timestamp, crc_function=native.crc32c)
        stamp(batch, self.log.next_offset, self.epoch)
        result = self.log.append(batch)
        self.batches.append(bytes(batch))
        assert result.entry_index == self.last_entry

    @precondition(lambda self: self.batches)
    @rule(fraction=st.floats(0, 1))
    def truncate_suffix(self, fraction: float) -> None:
        entry = self.first_entry + int(fraction * len(self.batches))
        self.log.truncate_suffix(entry)
        del self.batches[entry - self.first_entry:]

    @rule()
    def roll(self) -> None:
        self.log.roll()

    @rule(now_ms=st.integers(0, 20_000), keep=st.booleans())
    def retention(self, now_ms: int, keep: bool) -> None:
        infos = self.log.segments()
        keep_from = (self.log.next_offset - 1) if keep and self.batches else None
        expected = []
        total = sum(info.size_bytes for info in infos)
        for info in infos[:-1]:
            if keep_from is not None and info.next_offset > keep_from:
                break
            too_big = total - info.size_bytes >= RETENTION_BYTES
            too_old = info.max_timestamp >= 0 and now_ms - info.max_timestamp > RETENTION_AGE_MS
            if not (too_big or too_old):
                break
            expected.append(info)
            total -= info.size_bytes
        deleted = self.log.apply_retention(now_ms=now_ms, keep_from_offset=keep_from)
        assert deleted == [info.base_offset for info in expected]
        dropped = sum(info.batch_count for info in expected)
        del self.batches[:dropped]
        self.first_entry += dropped

    @rule()
    def reopen(self) -> None:
        self.log.close()
        self.log = SegmentedLog.open(self.directory, CONFIG)
        assert self.log.recovery.truncated_bytes == 0

    @rule(garbage=st.binary(min_size=1, max_size=80), from_real_batch=st.booleans())
    def reopen_after_torn_write(self, garbage: bytes, from_real_batch: bool) -> None:
        """A crash in the middle of an append leaves part of a batch after the tail."""
        tail = self.log.segments()[-1].path
        self.log.close()
        if from_real_batch and self.batches:
            garbage = self.batches[-1][:len(garbage)]
        with open(tail, "ab") as file:
            file.write(garbage)
        self.log = SegmentedLog.open(self.directory, CONFIG)
        assert self.log.recovery.truncated_bytes == len(garbage)

    # ---- invariants ---------------------------------------------------------------

    @invariant()
    def shape_matches(self) -> None:
        log = self.log
        assert (log.first_entry_index, log.last_entry_index) == (self.first_entry,
                                                                 self.last_entry)
        if self.batches:
            assert log.start_offset == self.header(self.first_entry).base_offset
            assert log.next_offset == self.header(self.last_entry).last_offset + 1
        assert log.size_bytes == sum(len(b) for b in self.batches)
        infos = log.segments()
        assert all(a.next_offset == b.base_offset for a, b in itertools.pairwise(infos))

    @invariant()
    def reads_match(self) -> None:
        log = self.log
        assert log.read_entries(self.first_entry, 10**9, 10**6) == self.batches
        for entry in range(self.first_entry, self.last_entry + 1):
            header = self.header(entry)
            assert log.entry_term(entry) == header.partition_leader_epoch
            middle = (header.base_offset + header.last_offset) // 2
            found = log.read_by_offset(middle, 1)
            assert log.read_slice(found) == self.batches[entry - self.first_entry]

    @invariant()
    def time_lookup_matches(self) -> None:
        stamps = {self.header(entry).max_timestamp
                  for entry in range(self.first_entry, self.last_entry + 1)}
        targets = {-1, 0, 10**9} | stamps | {stamp + 1 for stamp in stamps}
        for target in sorted(targets):
            expected = next((entry for entry in range(self.first_entry, self.last_entry + 1)
                             if self.header(entry).max_timestamp >= target), None)
            found = self.log.offset_for_timestamp(target)
            assert (found.entry_index if found else None) == expected


LogMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
TestLogMachine = LogMachine.TestCase
