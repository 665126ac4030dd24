"""Topic cleanup configs: what CreateTopics accepts and what a topic's policy becomes."""

import pytest

from raftlog.partition.cleanup import (
    CleanupPolicy,
    TopicConfigError,
    check_topic_configs,
    cleanup_policy,
)


@pytest.mark.parametrize(
    ("configs", "expected"),
    [
        ({}, CleanupPolicy()),
        ({"cleanup.policy": "compact"}, CleanupPolicy(compact=True, delete=False)),
        ({"cleanup.policy": "compact,delete"}, CleanupPolicy(compact=True, delete=True)),
        ({"cleanup.policy": "delete, compact"}, CleanupPolicy(compact=True, delete=True)),
        (
            {"cleanup.policy": "compact", "delete.retention.ms": "0",
             "min.cleanable.dirty.ratio": "0.25"},
            CleanupPolicy(compact=True, delete=False, delete_retention_ms=0,
                          min_cleanable_dirty_ratio=0.25),
        ),
    ],
)  # fmt: skip
def test_accepted_configs_become_a_policy(
    configs: dict[str, str], expected: CleanupPolicy
) -> None:
    check_topic_configs(configs)
    assert cleanup_policy(configs) == expected


@pytest.mark.parametrize(
    ("configs", "message"),
    [
        ({"cleanup.policy": "zip"}, "cleanup.policy"),
        ({"cleanup.policy": ""}, "cleanup.policy"),
        ({"delete.retention.ms": "-1"}, "must be >= 0"),
        ({"delete.retention.ms": "soon"}, "expected an integer"),
        ({"min.cleanable.dirty.ratio": "1.5"}, "must lie in"),
        ({"retention.ms": "-2"}, "must be >= -1"),
    ],
)
def test_bad_values_are_refused_with_the_reason(configs: dict[str, str], message: str) -> None:
    with pytest.raises(TopicConfigError, match=message):
        check_topic_configs(configs)


def test_unknown_configs_pass_as_before() -> None:
    check_topic_configs({"segment.jitter.ms": "anything"})
