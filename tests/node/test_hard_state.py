"""Durable term and vote: saved atomically, corruption detected, never guessed."""

from pathlib import Path

import pytest

from raftlog.replica.hard_state import HardState, HardStateCorrupt, HardStateFile


def test_missing_file_is_the_initial_state(tmp_path: Path) -> None:
    assert HardStateFile(tmp_path / "hs").load() == HardState()


def test_round_trip_and_reload(tmp_path: Path) -> None:
    file = HardStateFile(tmp_path / "hs", commit_save_interval_s=0.0)
    file.load()
    file.save(HardState(term=7, vote=3, commit=41))
    file.save(HardState(term=7, vote=3, commit=42))  # commit-only change: no fsync path
    assert HardStateFile(tmp_path / "hs").load() == HardState(7, 3, 42)


def test_commit_only_changes_are_rate_limited_but_votes_never(tmp_path: Path) -> None:
    file = HardStateFile(tmp_path / "hs", commit_save_interval_s=3600.0)
    file.save(HardState(term=1, vote=1, commit=1))
    file.save(HardState(term=1, vote=1, commit=9))  # skipped: the hint was just saved
    assert HardStateFile(tmp_path / "hs").load() == HardState(1, 1, 1)
    file.save(HardState(term=2, vote=2, commit=9))  # a new term is always saved at once
    assert HardStateFile(tmp_path / "hs").load() == HardState(2, 2, 9)
    assert not (tmp_path / "hs.tmp").exists()


def test_pending_says_whether_a_save_would_write(tmp_path: Path) -> None:
    """The shell writes in a worker thread only when `pending`; a load counts as a save of
    the commit hint, so a group's first commit right after opening writes nothing."""
    file = HardStateFile(tmp_path / "hs", commit_save_interval_s=3600.0)
    file.load()
    assert not file.pending(HardState())
    assert not file.pending(HardState(commit=3))  # the hint, just "saved" by the load
    assert file.pending(HardState(term=1, vote=2))
    file.save(HardState(term=1, vote=2))
    assert not file.pending(HardState(term=1, vote=2, commit=5))
    assert file.pending(HardState(term=1, vote=3, commit=5))
    assert HardStateFile(tmp_path / "hs", commit_save_interval_s=0.0).pending(HardState(commit=1))


@pytest.mark.parametrize("damage", ["flip", "truncate", "magic"])
def test_damaged_file_is_refused(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "hs"
    HardStateFile(path).save(HardState(term=2, vote=1))
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[10] ^= 0x01
    elif damage == "truncate":
        del data[-3:]
    else:
        data[0:4] = b"XXXX"
    path.write_bytes(bytes(data))
    with pytest.raises(HardStateCorrupt, match=str(path)):
        HardStateFile(path).load()
