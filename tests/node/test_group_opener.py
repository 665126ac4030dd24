"""GroupOpener: many openings share worker-thread calls; each caller gets its own result
or its own error, after the group directories exist."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from raftlog.node.group_opener import GroupOpener


def test_openings_are_batched_and_each_gets_its_result(tmp_path: Path) -> None:
    batches: list[int] = []
    closed: list[str] = []
    opener: GroupOpener[str] = GroupOpener(closed.append, batch_groups_max=8)
    results: dict[int, str] = {}

    def opening(index: int) -> str:
        directory = tmp_path / "groups" / str(index)
        assert directory.is_dir(), "directories are made before any group opens"
        batches.append(index)
        return f"group {index}"

    async def open_one(index: int) -> None:
        results[index] = await opener.open(tmp_path / "groups" / str(index), lambda: opening(index))

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(opener.run)
            async with trio.open_nursery() as callers:
                for index in range(20):
                    callers.start_soon(open_one, index)
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert results == {index: f"group {index}" for index in range(20)}
    assert sorted(batches) == list(range(20))
    assert closed == []


def test_groups_open_lowest_order_first_whatever_order_they_were_asked_in(
    tmp_path: Path,
) -> None:
    """Every node opens a new topic's groups in group-id order, so a group's replicas
    open at about the same time on every node."""
    opener: GroupOpener[int] = GroupOpener(
        lambda opened: None, batch_groups_max=4, batches_in_flight_max=1
    )
    opened: list[int] = []

    def opening(index: int) -> int:
        opened.append(index)
        return index

    async def open_one(index: int) -> None:
        await opener.open(tmp_path / str(index), lambda: opening(index), order=index)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            async with trio.open_nursery() as callers:
                for index in (7, 3, 9, 0, 5, 1, 8, 2, 6, 4):
                    callers.start_soon(open_one, index)
                await trio.testing.wait_all_tasks_blocked()
                await nursery.start(opener.run)
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert opened == list(range(10))


def test_one_failing_opening_fails_only_its_caller(tmp_path: Path) -> None:
    opener: GroupOpener[str] = GroupOpener(lambda opened: None)
    outcomes: dict[int, str] = {}

    def opening(index: int) -> str:
        if index == 3:
            raise ValueError("corrupt group 3")
        return "ok"

    async def open_one(index: int) -> None:
        try:
            outcomes[index] = await opener.open(tmp_path / str(index), lambda: opening(index))
        except ValueError as error:
            outcomes[index] = str(error)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(opener.run)
            async with trio.open_nursery() as callers:
                for index in range(6):
                    callers.start_soon(open_one, index)
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert outcomes == {0: "ok", 1: "ok", 2: "ok", 3: "corrupt group 3", 4: "ok", 5: "ok"}


def test_a_directory_that_cannot_be_made_fails_its_batch(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    opener: GroupOpener[str] = GroupOpener(lambda opened: None)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(opener.run)
            with pytest.raises(OSError):
                await opener.open(tmp_path / "file" / "group", lambda: "never")
            nursery.cancel_scope.cancel()

    trio.run(main)
