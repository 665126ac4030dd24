"""Every bound of the transport in one validated value, plus the reconnect back-off."""

from __future__ import annotations

from collections.abc import Callable

import attrs

_MIB = 1024 * 1024
_H2_WINDOW_MAX = 2**31 - 1
_H2_FRAME_MIN = 16_384
_H2_FRAME_MAX = 2**24 - 1


def _positive(instance: object, attribute: attrs.Attribute, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


@attrs.frozen
class TransportLimits:
    message_size_bytes_max: int = attrs.field(default=8 * _MIB, validator=_positive)
    """Largest payload of one message; checked on the length prefix before buffering."""
    queue_messages_max: int = attrs.field(default=1024, validator=_positive)
    """Per peer and channel: messages waiting for the connection."""
    queue_bytes_max: int = attrs.field(default=16 * _MIB, validator=_positive)
    """Per peer and channel: payload bytes waiting for the connection."""
    concurrent_calls_per_peer_max: int = attrs.field(default=64, validator=_positive)
    """Calls in flight per peer, each way; extra inbound calls are refused as OVERLOADED."""
    connect_timeout_s: float = attrs.field(default=5.0, validator=_positive)
    """TCP connect, TLS handshake and hello exchange together, for both ends."""
    reconnect_backoff_initial_s: float = attrs.field(default=0.05, validator=_positive)
    reconnect_backoff_max_s: float = attrs.field(default=5.0, validator=_positive)
    keepalive_interval_s: float = attrs.field(default=1.0, validator=_positive)
    """A connection silent this long gets a PING."""
    keepalive_timeout_s: float = attrs.field(default=5.0, validator=_positive)
    """A connection silent (or unable to write) this long is declared dead and closed."""
    stream_window_bytes: int = attrs.field(default=4 * _MIB, validator=_positive)
    """HTTP/2 receive window per stream (SETTINGS_INITIAL_WINDOW_SIZE)."""
    connection_window_bytes: int = attrs.field(default=16 * _MIB, validator=_positive)
    """HTTP/2 receive window of the whole connection."""
    frame_size_bytes_max: int = attrs.field(default=256 * 1024, validator=_positive)
    """Largest DATA frame we accept (SETTINGS_MAX_FRAME_SIZE). As large as a write round:
    h2's work per received frame is a fixed cost, paid four times as often at 64 KiB, and a
    round puts no more bytes before a heartbeat whatever the frames' size."""
    write_round_bytes_max: int = attrs.field(default=256 * 1024, validator=_positive)
    """Bytes one channel may add per write round; bounds how long a heartbeat waits."""
    read_size_bytes: int = attrs.field(default=256 * 1024, validator=_positive)
    inbound_connections_max: int = attrs.field(default=256, validator=_positive)
    """Open accepted connections, identified or not; more are closed on accept."""

    def __attrs_post_init__(self) -> None:
        if self.queue_bytes_max < self.message_size_bytes_max:
            raise ValueError("queue_bytes_max must hold at least one message of the largest size")
        if self.reconnect_backoff_max_s < self.reconnect_backoff_initial_s:
            raise ValueError("reconnect_backoff_max_s must be >= reconnect_backoff_initial_s")
        if self.keepalive_timeout_s <= self.keepalive_interval_s:
            raise ValueError("keepalive_timeout_s must exceed keepalive_interval_s")
        if not 65_535 <= self.stream_window_bytes <= _H2_WINDOW_MAX:
            raise ValueError(f"stream_window_bytes must be in [65535, {_H2_WINDOW_MAX}]")
        if not 65_535 <= self.connection_window_bytes <= _H2_WINDOW_MAX:
            raise ValueError(f"connection_window_bytes must be in [65535, {_H2_WINDOW_MAX}]")
        if not _H2_FRAME_MIN <= self.frame_size_bytes_max <= _H2_FRAME_MAX:
            raise ValueError(f"frame_size_bytes_max must be in [{_H2_FRAME_MIN}, {_H2_FRAME_MAX}]")
        if self.message_size_bytes_max > 2**32 - 1:
            raise ValueError("message_size_bytes_max must fit the 4-byte length prefix")


def reconnect_delay_s(attempt: int, limits: TransportLimits, jitter: Callable[[], float]) -> float:
    """Exponential back-off, capped, with "equal jitter" so restarted peers are not stampeded.

    `jitter` returns a float in [0, 1); it is injected so tests and the simulator are
    deterministic.
    """
    doubled_s = limits.reconnect_backoff_initial_s * 2 ** min(attempt, 32)
    base_s = min(limits.reconnect_backoff_max_s, doubled_s)
    return base_s * (0.5 + 0.5 * jitter())
