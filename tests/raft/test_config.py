"""Every bound of RaftConfig is validated when the config is built."""

from __future__ import annotations

import random

import attrs
import pytest

from raftlog.raft.config import RaftConfig


def _config(**overrides: object) -> RaftConfig:
    return RaftConfig(node_id=1, random_source=random.Random(1), **overrides)  # type: ignore[arg-type]


BOUNDS = [
    field.name
    for field in attrs.fields(RaftConfig)
    if field.name
    not in {
        "node_id",
        "random_source",
        "pre_vote",
        "check_quorum",
        "test_bug",
        "applied_index",
        "repair_floor",
        "repair_floor_term",
        "lead_fresh_group",
        "broadcast_commit",
    }
]


@pytest.mark.parametrize("name", BOUNDS)
@pytest.mark.parametrize("value", [0, -1, 1.5, True])
def test_every_bound_refuses_non_positive_or_non_integer_values(name: str, value: object) -> None:
    with pytest.raises(ValueError, match=name):
        _config(**{name: value})


def test_relations_between_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="heartbeat_tick"):
        _config(election_tick=5, heartbeat_tick=5)
    with pytest.raises(ValueError, match="snapshot_chunk_size_bytes"):
        _config(max_size_per_message_bytes=10, snapshot_chunk_size_bytes=11)
    with pytest.raises(ValueError, match="max_entry_payload_bytes"):
        _config(max_uncommitted_entries_size_bytes=10, max_entry_payload_bytes=11)
    with pytest.raises(ValueError, match="node_id"):
        RaftConfig(node_id=0, random_source=random.Random(1))
    with pytest.raises(ValueError, match="applied_index"):
        _config(applied_index=-1)
    for name in ("repair_floor", "repair_floor_term"):
        with pytest.raises(ValueError, match=name):
            _config(**{name: -1})


def test_random_source_and_test_bugs_are_checked() -> None:
    with pytest.raises(ValueError, match="randint"):
        RaftConfig(node_id=1, random_source=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="test_bug"):
        _config(test_bug="no-such-bug")
    assert _config(test_bug="count_stale_votes").test_bug == "count_stale_votes"
