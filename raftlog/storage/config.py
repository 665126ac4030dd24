"""How a log behaves: its bounds, when segments roll, what retention keeps, when to fsync."""

import enum

import attrs

from raftlog.limits import StorageLimits

DAY_MS = 24 * 3600 * 1000
CACHED_TAIL_BYTES_DEFAULT = 32 << 20


class FsyncPolicy(enum.Enum):
    """When an append counts as acknowledged, relative to fdatasync."""

    ALWAYS = "always"
    """Acknowledged only after an fdatasync that covers it (group commit shares one)."""
    INTERVAL_UNSAFE = "interval-unsafe"
    """Acknowledged at once; fdatasync every `fsync_interval_ms`. A machine crash loses
    up to that interval of acknowledged appends."""
    NEVER_UNSAFE = "never-unsafe"
    """Acknowledged at once; fdatasync only when a segment rolls or the log closes. A
    machine crash loses whatever the OS had not yet written back."""

    @property
    def acknowledges_before_fsync(self) -> bool:
        return self is not FsyncPolicy.ALWAYS


def _optional_positive(instance: object, attribute: attrs.Attribute, value: int | None) -> None:
    if value is not None and value <= 0:
        raise ValueError(f"{attribute.name} must be positive or None, got {value}")


@attrs.frozen
class LogConfig:
    """Configuration of one `SegmentedLog`; checked on construction."""

    limits: StorageLimits = attrs.field(factory=StorageLimits)
    segment_age_ms_max: int | None = attrs.field(default=7 * DAY_MS, validator=_optional_positive)
    """The active segment rolls once it is this old (None: never by age)."""
    retention_bytes_max: int | None = attrs.field(default=None, validator=_optional_positive)
    """Retention deletes front segments while the rest still holds this many bytes."""
    retention_age_ms_max: int | None = attrs.field(default=7 * DAY_MS, validator=_optional_positive)
    """Retention deletes front segments whose newest timestamp is older than this."""
    fsync_policy: FsyncPolicy = FsyncPolicy.ALWAYS
    fsync_interval_ms: int = attrs.field(default=100, validator=_optional_positive)
    cached_tail_bytes: int | None = attrs.field(default=CACHED_TAIL_BYTES_DEFAULT)
    """Durable data older than the log's newest this many bytes is dropped from the page
    cache after each fdatasync, and a sealed file's all at once (None: the OS decides).
    See `raftlog/storage/page_cache.py` for why."""

    @cached_tail_bytes.validator
    def _check_cached_tail(self, _attribute: attrs.Attribute, value: int | None) -> None:
        if value is not None and value < 0:
            raise ValueError(f"cached_tail_bytes must be >= 0 or None, got {value}")
