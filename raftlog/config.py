"""A node's configuration: one set of settings, reachable from a TOML file, the environment
and command-line flags.

Precedence, lowest to highest: built-in defaults, the TOML file (`--config`), environment
variables (`RAFTLOG_<SETTING>`, upper case), flags. A key that names no setting is rejected
with its name, wherever it comes from, because a misspelt `fsync_policy` that silently falls
back to a default is how data gets lost.
"""

from __future__ import annotations

import enum
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from raftlog import bugs
from raftlog.storage.config import CACHED_TAIL_BYTES_DEFAULT


class ConfigError(ValueError):
    """A setting is unknown or its value is not acceptable; the message names the key."""


class FsyncPolicy(enum.Enum):
    """When appended bytes reach the disk before a write is acknowledged.

    `always` is the only policy under which "acknowledged" means "survives a power cut".
    `relaxed` acknowledges once the bytes are in the OS page cache and syncs in the
    background: it survives a process crash, not a machine crash. The name says so.
    """

    ALWAYS = "always"
    RELAXED = "relaxed"


@attrs.frozen
class HostPort:
    """A listen or connect address."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str, *, key: str) -> HostPort:
        host, separator, port_text = text.rpartition(":")
        if not separator or not host or not port_text.isdigit():
            raise ConfigError(f"{key}: expected HOST:PORT, got {text!r}")
        port = int(port_text)
        if not 0 <= port <= 65535:
            raise ConfigError(f"{key}: port {port} is outside 0-65535")
        return cls(host.strip("[]"), port)

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@attrs.frozen
class Peer:
    """One member of a cluster as named by `--peers`: `ID@HOST:PORT` (its internal address)."""

    node_id: int
    address: HostPort

    @classmethod
    def parse_list(cls, text: str, *, key: str) -> tuple[Peer, ...]:
        peers = []
        for item in filter(None, (part.strip() for part in text.split(","))):
            node_text, separator, address_text = item.partition("@")
            if not separator or not node_text.isdigit():
                raise ConfigError(f"{key}: expected ID@HOST:PORT, got {item!r}")
            peers.append(cls(int(node_text), HostPort.parse(address_text, key=key)))
        if len({peer.node_id for peer in peers}) != len(peers):
            raise ConfigError(f"{key}: a node id appears twice in {text!r}")
        return tuple(sorted(peers, key=lambda peer: peer.node_id))

    def __str__(self) -> str:
        return f"{self.node_id}@{self.address}"


SEEDS_MAX = 64
NODE_ID_MAX = (1 << 31) - 1
"""Kafka's broker ids are int32."""
JOIN_TIMEOUT_MS_MAX = 3_600_000
"""At most this many `--seeds` addresses (a joining node tries them one after another)."""


def parse_seeds(text: str, *, key: str) -> tuple[HostPort, ...]:
    """`HOST:PORT,HOST:PORT,...`: internal addresses of running members to join through."""
    items = [item for item in (part.strip() for part in text.split(",")) if item]
    for item in items:
        if "@" in item:
            raise ConfigError(
                f"{key}: expected HOST:PORT, got {item!r} (a seed's id is learned from its answer)"
            )
    seeds = tuple(HostPort.parse(item, key=key) for item in items)
    if len(seeds) > SEEDS_MAX:
        raise ConfigError(f"{key}: at most {SEEDS_MAX} seeds, got {len(seeds)}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{key}: an address appears twice in {text!r}")
    for seed in seeds:
        if seed.port == 0:
            raise ConfigError(f"{key}: a seed needs a real port, got {seed}")
    return seeds


def _positive(key: str) -> Any:
    def check(_instance: object, _attribute: object, value: int) -> None:
        if value <= 0:
            raise ConfigError(f"{key}: must be positive, got {value}")

    return check


@attrs.frozen(kw_only=True)
class NodeConfig:
    """Every setting of one node. The defaults start a single node that needs no file."""

    data_dir: Path = Path("raftlog-data")
    kafka_addr: HostPort = HostPort("127.0.0.1", 9092)
    advertised_kafka_addr: HostPort | None = None
    internal_addr: HostPort = HostPort("127.0.0.1", 9093)
    admin_addr: HostPort | None = HostPort("127.0.0.1", 9644)
    """The admin HTTP API, metrics and console; None (an empty value) turns it off."""
    node_id: int = attrs.field(default=1)
    peers: tuple[Peer, ...] = ()
    seeds: tuple[HostPort, ...] = ()
    """Internal addresses of running members: a node not listed in `peers` joins through
    any of them (and, restarted on its data dir, through the members it remembers)."""
    join_timeout_ms: int = attrs.field(default=60_000)
    """How long a joining node keeps trying its seeds and remembered members before it
    gives up with an error."""
    fsync: FsyncPolicy = FsyncPolicy.ALWAYS
    auto_create_topics: bool = False
    default_partitions: int = attrs.field(default=1, validator=_positive("default_partitions"))
    segment_bytes: int = attrs.field(default=256 << 20, validator=_positive("segment_bytes"))
    segment_ms: int = attrs.field(default=7 * 24 * 3600 * 1000, validator=_positive("segment_ms"))
    cached_tail_bytes: int = attrs.field(default=CACHED_TAIL_BYTES_DEFAULT)
    """Each log keeps its newest this many bytes in the page cache once durable and drops
    older pages, so the cache recycles pages instead of growing (-1: the OS decides)."""
    retention_bytes: int = -1
    retention_ms: int = 7 * 24 * 3600 * 1000
    retention_check_ms: int = attrs.field(default=30_000, validator=_positive("retention_check_ms"))
    node_dead_timeout_ms: int = attrs.field(
        default=300_000, validator=_positive("node_dead_timeout_ms")
    )
    """A node unreachable this long has its segment replicas re-created elsewhere."""
    controller_nodes: int = attrs.field(default=3, validator=_positive("controller_nodes"))
    """How many members (the lowest ids in --peers) vote in the controller group."""
    internal_tls_cert: Path | None = None
    """PEM certificate (chain) this node presents to its peers; TLS needs all three files."""
    internal_tls_key: Path | None = None
    internal_tls_ca: Path | None = None
    """PEM CA bundle peers' certificates must chain to (mutual TLS)."""
    compaction_check_ms: int = attrs.field(
        default=15_000, validator=_positive("compaction_check_ms")
    )
    leader_balance_interval_ms: int = attrs.field(default=10_000)
    """How often a leader hands partitions back to their preferred replicas (0: never)."""

    @node_id.validator
    def _check_node_id(self, _attribute: object, value: int) -> None:
        if value <= 0:
            raise ConfigError(f"node_id: must be positive, got {value}")
        if value > NODE_ID_MAX:
            raise ConfigError(f"node_id: at most {NODE_ID_MAX} (a Kafka int32), got {value}")

    @join_timeout_ms.validator
    def _check_join_timeout(self, _attribute: object, value: int) -> None:
        if not 0 < value <= JOIN_TIMEOUT_MS_MAX:
            raise ConfigError(f"join_timeout_ms: must be 1-{JOIN_TIMEOUT_MS_MAX}, got {value}")

    @cached_tail_bytes.validator
    def _check_cached_tail(self, _attribute: object, value: int) -> None:
        if value < -1:
            raise ConfigError(f"cached_tail_bytes: must be >= 0, or -1 to keep all, got {value}")

    @leader_balance_interval_ms.validator
    def _check_balance_interval(self, _attribute: object, value: int) -> None:
        if value < 0:
            raise ConfigError(f"leader_balance_interval_ms: must be >= 0, got {value}")

    log_format: str = attrs.field(default="text")
    log_level: str = "info"
    inject_bug: str | None = attrs.field(default=None)
    """Test-only: a deliberate bug from ``raftlog.bugs`` (``RAFTLOG_INJECT_BUG``)."""
    test_power_loss: bool = False
    """Test-only: a SIGKILL loses unfsynced segment data as a power cut would
    (``RAFTLOG_TEST_POWER_LOSS``; see ``raftlog.storage.power_loss``)."""

    @inject_bug.validator
    def _check_inject_bug(self, _attribute: object, value: str | None) -> None:
        try:
            bugs.parse(value)
        except bugs.UnknownBug as error:
            raise ConfigError(f"inject_bug: {error}") from None

    @log_format.validator
    def _check_log_format(self, _attribute: object, value: str) -> None:
        if value not in ("text", "json"):
            raise ConfigError(f"log_format: expected 'text' or 'json', got {value!r}")

    @property
    def advertised(self) -> HostPort:
        """The address clients are told to connect to (metadata responses)."""
        return self.advertised_kafka_addr or self.kafka_addr

    def as_text_dict(self) -> dict[str, str]:
        """The effective settings as strings, for `raftlog config show`."""
        shown: dict[str, str] = {}
        for field in attrs.fields(NodeConfig):
            value = getattr(self, field.name)
            if isinstance(value, tuple):
                shown[field.name] = ",".join(str(item) for item in value)
            elif isinstance(value, enum.Enum):
                shown[field.name] = str(value.value)
            elif value is None:
                shown[field.name] = ""
            else:
                shown[field.name] = str(value).lower() if isinstance(value, bool) else str(value)
        return shown


SETTING_NAMES: frozenset[str] = frozenset(field.name for field in attrs.fields(NodeConfig))
ENVIRONMENT_PREFIX = "RAFTLOG_"


def _convert(key: str, raw: object) -> object:
    """Turn a value from TOML, the environment or a flag into the setting's type."""
    if key == "inject_bug":
        return None if raw in (None, "") else str(raw)
    if key in ("kafka_addr", "advertised_kafka_addr", "internal_addr", "admin_addr"):
        if raw in (None, ""):
            if key in ("advertised_kafka_addr", "admin_addr"):
                return None
            raise ConfigError(f"{key}: must not be empty")
        return HostPort.parse(str(raw), key=key)
    if key == "peers":
        return Peer.parse_list(str(raw), key=key) if isinstance(raw, str) else raw
    if key == "seeds":
        return parse_seeds(str(raw), key=key) if isinstance(raw, str) else raw
    if key == "data_dir":
        return Path(str(raw))
    if key in ("internal_tls_cert", "internal_tls_key", "internal_tls_ca"):
        return None if raw in (None, "") else Path(str(raw))
    if key == "fsync":
        try:
            return FsyncPolicy(str(raw))
        except ValueError:
            choices = ", ".join(policy.value for policy in FsyncPolicy)
            raise ConfigError(f"fsync: expected one of {choices}, got {raw!r}") from None
    if key in ("auto_create_topics", "test_power_loss"):
        if isinstance(raw, bool):
            return raw
        lowered = str(raw).lower()
        if lowered not in ("true", "false", "1", "0", "yes", "no"):
            raise ConfigError(f"{key}: expected true or false, got {raw!r}")
        return lowered in ("true", "1", "yes")
    integer_keys = (
        "node_id",
        "default_partitions",
        "segment_bytes",
        "segment_ms",
        "cached_tail_bytes",
        "retention_bytes",
        "retention_ms",
        "retention_check_ms",
        "node_dead_timeout_ms",
        "join_timeout_ms",
        "controller_nodes",
        "compaction_check_ms",
        "leader_balance_interval_ms",
    )
    if key in integer_keys:
        try:
            return int(raw)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected an integer, got {raw!r}") from None
    return str(raw)


def _settings_from(source_name: str, values: Mapping[str, object]) -> dict[str, object]:
    unknown = sorted(set(values) - SETTING_NAMES)
    if unknown:
        raise ConfigError(f"{source_name}: unknown setting {unknown[0]!r}")
    return {key: _convert(key, value) for key, value in values.items()}


def load_toml(path: Path) -> dict[str, object]:
    """Settings from a TOML file of flat `key = value` lines."""
    try:
        with path.open("rb") as file:
            document = tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path}: {error}") from None
    return _settings_from(f"config file {path}", document)


def load_environment(environment: Mapping[str, str]) -> dict[str, object]:
    """Settings from `RAFTLOG_*` variables; an unknown `RAFTLOG_` name is an error."""
    values = {
        name[len(ENVIRONMENT_PREFIX) :].lower(): value
        for name, value in environment.items()
        if name.startswith(ENVIRONMENT_PREFIX)
    }
    return _settings_from("environment", values)


def resolve(
    *,
    config_file: Path | None,
    environment: Mapping[str, str] | None = None,
    flags: Mapping[str, object] | None = None,
) -> NodeConfig:
    """Merge defaults, file, environment and flags, in that order of precedence."""
    merged: dict[str, object] = {}
    if config_file is not None:
        merged.update(load_toml(config_file))
    merged.update(load_environment(os.environ if environment is None else environment))
    given_flags = {key: value for key, value in (flags or {}).items() if value is not None}
    merged.update(_settings_from("flags", given_flags))
    return NodeConfig(**merged)  # type: ignore[arg-type]
