"""A topic's cleanup settings: Kafka's `cleanup.policy` and the configs that go with it.

Topic configs are fixed at creation (there is no AlterConfigs yet), so they are checked
once, in `check_topic_configs`, when CreateTopics asks; a bad value is refused with
INVALID_CONFIG and the topic is not created.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import attrs

CLEANUP_POLICY = "cleanup.policy"
DELETE_RETENTION_MS = "delete.retention.ms"
MIN_CLEANABLE_DIRTY_RATIO = "min.cleanable.dirty.ratio"
RETENTION_MS = "retention.ms"
RETENTION_BYTES = "retention.bytes"

DELETE_RETENTION_MS_DEFAULT = 24 * 3600 * 1000
MIN_CLEANABLE_DIRTY_RATIO_DEFAULT = 0.5
POLICIES = ("delete", "compact")


class TopicConfigError(ValueError):
    """A topic config value this node cannot honour."""


@attrs.frozen
class CleanupPolicy:
    compact: bool = False
    delete: bool = True
    delete_retention_ms: int = DELETE_RETENTION_MS_DEFAULT
    """How long a tombstone stays after its segment's newest record."""
    min_cleanable_dirty_ratio: float = MIN_CLEANABLE_DIRTY_RATIO_DEFAULT
    """Compact a partition once this share of its sealed bytes is new since the last pass."""


def _policies(text: str) -> set[str]:
    parts = {part.strip() for part in text.split(",")}
    if not parts or not parts <= set(POLICIES):
        raise TopicConfigError(
            f"{CLEANUP_POLICY}={text!r}: expected delete, compact or compact,delete"
        )
    return parts


def _integer(name: str, text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise TopicConfigError(f"{name}={text!r}: expected an integer") from None
    if value < low:
        raise TopicConfigError(f"{name}={value}: must be >= {low}")
    return value


def _ratio(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise TopicConfigError(f"{name}={text!r}: expected a number") from None
    if not 0.0 <= value <= 1.0:
        raise TopicConfigError(f"{name}={value}: must lie in [0, 1]")
    return value


_CHECKS: dict[str, Callable[[str], object]] = {
    CLEANUP_POLICY: _policies,
    DELETE_RETENTION_MS: lambda text: _integer(DELETE_RETENTION_MS, text, 0),
    MIN_CLEANABLE_DIRTY_RATIO: lambda text: _ratio(MIN_CLEANABLE_DIRTY_RATIO, text),
    RETENTION_MS: lambda text: _integer(RETENTION_MS, text, -1),
    RETENTION_BYTES: lambda text: _integer(RETENTION_BYTES, text, -1),
}


def check_topic_configs(configs: Mapping[str, str]) -> None:
    """Refuse a config this node knows with a value it cannot honour (others pass as
    they always have: they are stored and shown, not acted upon)."""
    for name, value in configs.items():
        check = _CHECKS.get(name)
        if check is not None:
            check(value)


def cleanup_policy(configs: Mapping[str, str]) -> CleanupPolicy:
    """The cleanup settings of a topic's (already checked) configs."""
    policies = _policies(configs.get(CLEANUP_POLICY, "delete"))
    return CleanupPolicy(
        compact="compact" in policies,
        delete="delete" in policies,
        delete_retention_ms=_integer(
            DELETE_RETENTION_MS,
            configs.get(DELETE_RETENTION_MS, str(DELETE_RETENTION_MS_DEFAULT)),
            0,
        ),
        min_cleanable_dirty_ratio=_ratio(
            MIN_CLEANABLE_DIRTY_RATIO,
            configs.get(MIN_CLEANABLE_DIRTY_RATIO, str(MIN_CLEANABLE_DIRTY_RATIO_DEFAULT)),
        ),
    )
