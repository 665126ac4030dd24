"""Group commit: many appenders share fdatasyncs; failures stop the log loudly."""

import pathlib
import types

import pytest
import trio

from raftlog.storage import FsyncPolicy, GroupCommitter, LogFailed, SegmentedLog, group_commit

from .log_helpers import append_tagged, small_config


def test_many_appenders_share_fsyncs(tmp_path: pathlib.Path) -> None:
    log = SegmentedLog.open(tmp_path, small_config())
    committer = GroupCommitter(log, FsyncPolicy.ALWAYS)
    acknowledged: list[int] = []

    async def appender(tag: int) -> None:
        for round_number in range(10):
            append_tagged(log, tag * 100 + round_number)
            entry = log.last_entry_index
            await committer.wait_durable(entry)
            assert log.durable_entry_index >= entry
            acknowledged.append(entry)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(committer.run)
            async with trio.open_nursery() as appenders:
                for tag in range(20):
                    appenders.start_soon(appender, tag)
            nursery.cancel_scope.cancel()

    trio.run(main)
    statistics = committer.statistics()
    assert sorted(acknowledged) == list(range(1, 201))
    assert statistics.durable_entry_index == 200
    assert statistics.waiters == 0
    assert 1 <= statistics.fsync_count < 200
    assert statistics.entries_made_durable <= 200
    log.close()


def test_relaxed_policy_acknowledges_at_once_and_syncs_later(tmp_path: pathlib.Path) -> None:
    log = SegmentedLog.open(tmp_path, small_config())
    committer = GroupCommitter(log, FsyncPolicy.INTERVAL_UNSAFE, interval_ms=10)
    assert FsyncPolicy.INTERVAL_UNSAFE.acknowledges_before_fsync

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(committer.run)
            append_tagged(log, 1)
            await committer.wait_durable(1)
            assert log.durable_entry_index == 0  # acknowledged before any fsync
            with trio.fail_after(5):
                while log.durable_entry_index < 1:
                    await trio.sleep(0.005)
            nursery.cancel_scope.cancel()

    trio.run(main)
    log.close()


def test_fsync_failure_fails_every_waiter_and_the_log(tmp_path: pathlib.Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    log = SegmentedLog.open(tmp_path, small_config())
    committer = GroupCommitter(log, FsyncPolicy.ALWAYS)

    def broken_fdatasync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(group_commit, "os", types.SimpleNamespace(fdatasync=broken_fdatasync))
    failures: list[BaseException] = []

    async def waiter(tag: int) -> None:
        append_tagged(log, tag)
        try:
            await committer.wait_durable(log.last_entry_index)
        except LogFailed as error:
            failures.append(error)

    raised: list[BaseException] = []

    async def main() -> None:
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(committer.run)
                for tag in range(5):
                    nursery.start_soon(waiter, tag)
        except* LogFailed as group:
            raised.extend(group.exceptions)

    trio.run(main)
    assert len(raised) == 1  # the committer itself reports the failure to its owner
    assert len(failures) == 5
    assert log.failure is not None
    with pytest.raises(LogFailed):
        append_tagged(log, 99)
    log.close()


def test_a_truncation_during_a_sync_limits_what_it_covers(tmp_path: pathlib.Path) -> None:
    log = SegmentedLog.open(tmp_path, small_config())
    for tag in range(5):
        append_tagged(log, tag)
    ticket = log.sync_begin()
    log.truncate_suffix(3)  # entries 3..5 go; the fsync in flight covered the old ones
    append_tagged(log, 10)
    append_tagged(log, 11)
    point = log.sync_end(ticket)
    assert point.entry_index == 2
    assert log.sync().entry_index == 4
    log.close()
