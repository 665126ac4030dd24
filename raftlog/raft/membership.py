"""Membership of a group and single-server changes to it.

raftlog uses single-server changes (Raft thesis, section 4.1): a change adds or removes at
most one voter, so any majority of the old configuration intersects any majority of the new
one. The change takes effect as soon as the entry is appended to a log (not when committed),
and a leader accepts a change only when the previous one is committed and it has committed an
entry of its own term (the fix to the bug reported on raft-dev in 2015).

A CONFIG_CHANGE entry carries the change and the full resulting membership, so that a node
that learns the log from scratch (a new learner) can read its configuration from the latest
such entry without replaying deltas from an unknown base.
"""

from __future__ import annotations

import enum
import struct

import attrs


class ConfigChangeKind(enum.IntEnum):
    ADD_LEARNER = 1
    """A new non-voting member that receives the log."""
    PROMOTE_LEARNER = 2
    """A learner becomes a voter (the controller promotes it once caught up)."""
    REMOVE_NODE = 3
    """A voter or learner leaves; a removed leader steps down once the removal commits."""


class InvalidConfigChange(ValueError):
    """The change is not a valid single-server change of the current membership."""


def _check_members(instance: Membership, attribute: object, value: frozenset[int]) -> None:
    for node_id in value:
        if not isinstance(node_id, int) or node_id <= 0:
            raise ValueError(f"node ids are positive integers, got {node_id!r}")


@attrs.frozen
class Membership:
    """Who votes and who only listens."""

    voters: frozenset[int] = attrs.field(converter=frozenset, validator=_check_members)
    learners: frozenset[int] = attrs.field(
        converter=frozenset, validator=_check_members, factory=frozenset
    )

    def __attrs_post_init__(self) -> None:
        if self.voters & self.learners:
            raise ValueError(f"nodes both voter and learner: {sorted(self.voters & self.learners)}")

    def members(self) -> frozenset[int]:
        return self.voters | self.learners

    def apply(self, change: ConfigChange) -> Membership:
        """The membership after ``change``; raises ``InvalidConfigChange`` if it makes no sense."""
        node = change.node_id
        if change.kind == ConfigChangeKind.ADD_LEARNER:
            if node in self.members():
                raise InvalidConfigChange(f"node {node} is already a member")
            return Membership(self.voters, self.learners | {node})
        if change.kind == ConfigChangeKind.PROMOTE_LEARNER:
            if node not in self.learners:
                raise InvalidConfigChange(f"node {node} is not a learner")
            return Membership(self.voters | {node}, self.learners - {node})
        if change.kind == ConfigChangeKind.REMOVE_NODE:
            if node not in self.members():
                raise InvalidConfigChange(f"node {node} is not a member")
            if self.voters == {node}:
                raise InvalidConfigChange(f"node {node} is the last voter")
            return Membership(self.voters - {node}, self.learners - {node})
        raise InvalidConfigChange(f"unknown change kind {change.kind!r}")


@attrs.frozen
class ConfigChange:
    """A single-server change, as proposed by the application."""

    kind: ConfigChangeKind
    node_id: int


@attrs.frozen
class ConfigChangeRecord:
    """Payload of a CONFIG_CHANGE entry: the change and the membership it results in."""

    change: ConfigChange
    membership: Membership


_HEADER = struct.Struct(">BBQII")  # version, kind, node, voter count, learner count
_NODE = struct.Struct(">Q")
_RECORD_VERSION = 1
MAX_MEMBERS = 1024
"""Bound on a membership's size, checked when decoding."""


def encode_config_change(change: ConfigChange) -> bytes:
    """Payload a caller passes to ``propose(..., kind=CONFIG_CHANGE)``; the leader completes it."""
    return encode_config_change_record(ConfigChangeRecord(change, Membership(frozenset())))


def encode_config_change_record(record: ConfigChangeRecord) -> bytes:
    voters = sorted(record.membership.voters)
    learners = sorted(record.membership.learners)
    parts = [
        _HEADER.pack(
            _RECORD_VERSION,
            int(record.change.kind),
            record.change.node_id,
            len(voters),
            len(learners),
        )
    ]
    parts.extend(_NODE.pack(node) for node in voters + learners)
    return b"".join(parts)


def decode_config_change_record(payload: bytes) -> ConfigChangeRecord:
    """Parse a CONFIG_CHANGE payload; raises ``InvalidConfigChange`` on malformed bytes."""
    if len(payload) < _HEADER.size:
        raise InvalidConfigChange("config change payload too short")
    version, kind, node, voter_count, learner_count = _HEADER.unpack_from(payload, 0)
    if version != _RECORD_VERSION:
        raise InvalidConfigChange(f"unknown config change version {version}")
    if voter_count + learner_count > MAX_MEMBERS:
        raise InvalidConfigChange("config change lists too many members")
    expected = _HEADER.size + _NODE.size * (voter_count + learner_count)
    if len(payload) != expected:
        raise InvalidConfigChange(f"config change payload is {len(payload)} bytes, not {expected}")
    try:
        change_kind = ConfigChangeKind(kind)
    except ValueError:
        raise InvalidConfigChange(f"unknown config change kind {kind}") from None
    nodes = [
        _NODE.unpack_from(payload, _HEADER.size + i * _NODE.size)[0]
        for i in range(voter_count + learner_count)
    ]
    if len(set(nodes)) != len(nodes):
        raise InvalidConfigChange("config change lists a node twice")
    try:
        membership = Membership(frozenset(nodes[:voter_count]), frozenset(nodes[voter_count:]))
    except ValueError as error:
        raise InvalidConfigChange(str(error)) from None
    if node <= 0:
        raise InvalidConfigChange("config change names node 0")
    return ConfigChangeRecord(ConfigChange(change_kind, node), membership)
