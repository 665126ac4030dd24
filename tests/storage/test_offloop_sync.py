"""The C sync chain: log fdatasync, journal line, mark write and fdatasync, signalled on an
eventfd; real files, real threads."""

from __future__ import annotations

import os
import pathlib
import signal

import pytest
import trio

from raftlog.native import RL_SYNC_THREADS_MAX, sync_threads
from raftlog.storage.offloop_sync import SyncFailed, fdatasync_chain


def _open(path: pathlib.Path, flags: int = os.O_RDWR | os.O_CREAT) -> int:
    return os.open(path, flags | os.O_CLOEXEC, 0o644)


def test_the_chain_runs_every_step_in_order(tmp_path: pathlib.Path) -> None:
    log_fd = _open(tmp_path / "log")
    journal_fd = _open(tmp_path / "journal", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    mark_fd = _open(tmp_path / "mark")
    os.write(log_fd, b"entries")
    os.write(journal_fd, b"first\n")
    try:
        trio.run(fdatasync_chain, log_fd, (journal_fd, b"7\tlog\n"), (mark_fd, b"MARK", 512))
    finally:
        for fd in (log_fd, journal_fd, mark_fd):
            os.close(fd)
    assert (tmp_path / "journal").read_bytes() == b"first\n7\tlog\n"
    assert (tmp_path / "mark").read_bytes() == bytes(512) + b"MARK"
    assert (tmp_path / "log").read_bytes() == b"entries"


def test_a_failing_step_is_named_and_stops_the_chain(tmp_path: pathlib.Path) -> None:
    reader, writer = os.pipe()  # fdatasync of a pipe is EINVAL
    mark_fd = _open(tmp_path / "mark")
    try:
        with pytest.raises(SyncFailed, match="log fdatasync") as failed:
            trio.run(fdatasync_chain, reader, None, (mark_fd, b"MARK", 0))
        assert failed.value.step == "log fdatasync"
        assert not failed.value.log_durable
        assert (tmp_path / "mark").read_bytes() == b"", "a step after the failure ran"

        read_only = _open(tmp_path / "mark", os.O_RDONLY)
        try:
            with pytest.raises(SyncFailed, match="mark write") as failed:
                trio.run(fdatasync_chain, mark_fd, None, (read_only, b"MARK", 0))
            assert failed.value.errno is not None
            assert failed.value.log_durable, "only the mark's write failed"
        finally:
            os.close(read_only)
    finally:
        for fd in (reader, writer, mark_fd):
            os.close(fd)


def test_many_chains_at_once_all_finish_on_a_bounded_pool(tmp_path: pathlib.Path) -> None:
    count = 300

    async def many() -> None:
        fds = [_open(tmp_path / f"log{i}") for i in range(count)]
        try:
            async with trio.open_nursery() as nursery:
                for i, fd in enumerate(fds):
                    os.write(fd, b"x" * i)
                    nursery.start_soon(fdatasync_chain, fd, None, (fd, b"M", 4096))
        finally:
            for fd in fds:
                os.close(fd)

    trio.run(many)
    assert all((tmp_path / f"log{i}").stat().st_size == 4097 for i in range(count))
    assert 1 <= sync_threads() <= RL_SYNC_THREADS_MAX


def test_a_cancelled_caller_still_waits_for_the_disk(tmp_path: pathlib.Path) -> None:
    """The C thread reads the caller's buffers and descriptors until it signals: the wait
    must not end early, so descriptors are never closed under it."""
    fd = _open(tmp_path / "log")

    async def cancelled() -> None:
        with trio.CancelScope() as scope:
            scope.cancel()
            await fdatasync_chain(fd, None, (fd, b"done", 0))

    try:
        trio.run(cancelled)
    finally:
        os.close(fd)
    assert (tmp_path / "log").read_bytes() == b"done"


def test_a_forked_child_gets_a_pool_of_its_own(tmp_path: pathlib.Path) -> None:
    """Threads do not survive fork: the child must not wait for the parent's."""
    fd = _open(tmp_path / "log")
    trio.run(fdatasync_chain, fd, None, None)  # the parent's pool exists
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through its exit status
        code = 1
        try:
            signal.alarm(10)  # a child stuck waiting for the parent's threads dies
            trio.run(fdatasync_chain, fd, None, (fd, b"child", 0))
            code = 0
        finally:
            os._exit(code)
    _pid, status = os.waitpid(child, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0
    assert (tmp_path / "log").read_bytes() == b"child"


def test_sync_threads_are_named_and_take_no_signals(tmp_path: pathlib.Path) -> None:
    """Signals must reach Python's main thread, never a C thread inside fdatasync."""
    fd = _open(tmp_path / "log")
    try:
        trio.run(fdatasync_chain, fd, None, None)
    finally:
        os.close(fd)
    masks = []
    for task in pathlib.Path("/proc/self/task").iterdir():
        if (task / "comm").read_text().strip() == "raftlog-sync":
            status = (task / "status").read_text()
            masks.append(next(line for line in status.splitlines() if line.startswith("SigBlk")))
    assert masks, "no thread named raftlog-sync"
    assert all(int(mask.split()[1], 16) >= (1 << 31) - 1 for mask in masks), masks


def test_started_is_told_once_the_chain_is_queued_and_the_chain_ends_even_if_it_raises(
    tmp_path: pathlib.Path,
) -> None:
    log_fd = _open(tmp_path / "log")
    mark_fd = _open(tmp_path / "mark")
    told: list[str] = []

    def started() -> None:
        told.append("queued")

    def started_then_fails() -> None:
        raise RuntimeError("the caller's own failure")

    try:
        trio.run(fdatasync_chain, log_fd, None, (mark_fd, b"MARK", 0), None, started)
        assert told == ["queued"]
        os.pwrite(mark_fd, b"....", 0)
        with pytest.raises(RuntimeError, match="the caller's own failure"):
            trio.run(
                fdatasync_chain, log_fd, None, (mark_fd, b"SECOND", 0), None, started_then_fails
            )
        # Raised only once the chain was over: the C thread no longer uses the descriptors.
        assert (tmp_path / "mark").read_bytes() == b"SECOND"
    finally:
        for fd in (log_fd, mark_fd):
            os.close(fd)
