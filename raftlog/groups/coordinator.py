"""The group coordinator: Kafka's classic consumer-group protocol on the coordinating node.

Membership lives in memory on the coordinator (members rejoin after a coordinator moves,
as Kafka clients do on NOT_COORDINATOR/UNKNOWN_MEMBER_ID); committed offsets live in the
log. A rebalance is a round: every member (re)joins, the round completes when all known
members have joined or the rebalance timeout passes, the leader gets the member list and
sends the assignment in SyncGroup, and everybody else gets theirs from it. Members whose
session lapses are removed and trigger a new round.

Offsets are written to the group's `__consumer_offsets` partition through the ordinary
produce path (acks=all, so committed by Raft before the commit is acknowledged), and
rebuilt by reading that partition whenever this node starts coordinating it. So is each
group's metadata (generation, protocol type and protocol), written when the leader's
SyncGroup settles a generation and when a group empties: a new coordinator knows the group
(as Empty: members rejoin) and continues its generations instead of starting over.
"""

from __future__ import annotations

import enum
import itertools
import math
import uuid
from collections.abc import Iterable

import attrs
import trio

from raftlog import logs
from raftlog.groups.records import (
    OFFSETS_PARTITIONS,
    OFFSETS_TOPIC,
    assigned_partitions,
    commit_batch,
    coordinator_partition,
    decode_group_records,
    decode_offset_records,
    group_key,
    group_value,
    offset_key,
    offset_value,
)
from raftlog.partition.chain import PartitionChain
from raftlog.protocol.errors import ErrorCode

INITIAL_REBALANCE_DELAY_S = 0.3
"""Lets the members of a group starting from empty arrive before its first round completes."""
EXPIRY_CHECK_INTERVAL_S = 0.25
GROUPS_MAX = 100_000
MEMBERS_PER_GROUP_MAX = 1000
SESSION_TIMEOUT_MS_MIN = 6_000
SESSION_TIMEOUT_MS_MAX = 1_800_000
"""Kafka's `group.min.session.timeout.ms` and `group.max.session.timeout.ms` defaults: a
JoinGroup outside them is answered INVALID_SESSION_TIMEOUT."""
COMMIT_TIMEOUT_S = 30.0
READ_BYTES = 64 << 20


class GroupState(enum.Enum):
    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"


class GroupError(Exception):
    """A request the coordinator refuses, with the Kafka error code to answer."""

    def __init__(self, code: ErrorCode, message: str = "") -> None:
        super().__init__(message or code.name)
        self.code = code


@attrs.define(eq=False)
class Member:
    member_id: str
    group_instance_id: str | None
    client_id: str
    session_timeout_s: float
    rebalance_timeout_s: float
    protocol_type: str
    protocols: list[tuple[str, bytes]]
    deadline: float = math.inf
    joined: bool = False
    assignment: bytes = b""


@attrs.frozen
class JoinResult:
    generation: int
    protocol_type: str
    protocol_name: str
    leader_id: str
    member_id: str
    members: list[tuple[str, str | None, bytes]]
    """Only for the leader: (member id, instance id, metadata of the chosen protocol)."""


@attrs.define(eq=False)
class Group:
    group_id: str
    state: GroupState = GroupState.EMPTY
    generation: int = 0
    protocol_type: str = ""
    protocol_name: str = ""
    leader_id: str = ""
    members: dict[str, Member] = attrs.field(factory=dict)
    issued_member_ids: set[str] = attrs.field(factory=set)
    round_earliest: float = 0.0
    """A round with every member in completes no sooner than this."""
    rebalance_deadline: float = math.inf
    """A round completes by this time with whoever joined."""
    join_done: trio.Event = attrs.field(factory=trio.Event)
    sync_done: trio.Event = attrs.field(factory=trio.Event)

    def member(self, member_id: str, group_instance_id: str | None) -> Member:
        member = self.members.get(member_id)
        if member is None:
            fenced = group_instance_id is not None and any(
                m.group_instance_id == group_instance_id for m in self.members.values()
            )
            raise GroupError(
                ErrorCode.FENCED_INSTANCE_ID if fenced else ErrorCode.UNKNOWN_MEMBER_ID
            )
        if group_instance_id is not None and member.group_instance_id != group_instance_id:
            raise GroupError(ErrorCode.FENCED_INSTANCE_ID)
        return member


@attrs.define(eq=False)
class GroupCoordinator:
    """Serves the group APIs for the `__consumer_offsets` partitions this node leads."""

    partition_of: object
    """Callable (topic, index) -> PartitionChain | None: the node's hosted partitions."""
    groups: dict[str, Group] = attrs.field(factory=dict)
    offsets: dict[str, dict[tuple[str, int], tuple[int, str | None, int]]] = attrs.field(
        factory=dict
    )
    _loaded: dict[int, tuple[int, int]] = attrs.field(factory=dict)
    """Offsets partition -> (head group id, term) it was loaded at."""
    _ids: itertools.count[int] = attrs.field(factory=itertools.count)
    _unsaved: set[str] = attrs.field(factory=set)
    """Groups whose metadata changed outside a request (emptied) and is not yet written."""

    # -- placement -----------------------------------------------------------------------

    def offsets_partition(self, group_id: str) -> PartitionChain | None:
        return self.partition_of(OFFSETS_TOPIC, coordinator_partition(group_id))  # type: ignore[operator]

    def _coordinating(self, group_id: str) -> PartitionChain:
        """The offsets partition, if this node leads it; loads its offsets first."""
        chain = self.offsets_partition(group_id)
        if chain is None or not chain.group.is_leader or chain.stands_in():
            # A sealed segment standing in for the head (`PartitionChain.stands_in`) may
            # lack later commits (this node's view of the controller may be behind) and
            # takes no new ones.
            raise GroupError(ErrorCode.NOT_COORDINATOR)
        if not chain.group.leader_caught_up:
            raise GroupError(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS)
        self._ensure_loaded(coordinator_partition(group_id), chain)
        return chain

    def _ensure_loaded(self, index: int, chain: PartitionChain) -> None:
        """Load the partition once per leadership term (a new term may follow others')."""
        stamp = (chain.group.group_id, chain.group.raw.term)
        if self._loaded.get(index) != stamp:
            self._load(index, chain)
            self._loaded[index] = stamp

    def _load(self, index: int, chain: PartitionChain) -> None:
        """Rebuild offsets and group metadata of every group of this partition from its records.

        The load must read every committed record up to the high watermark: one that stops
        early (a sealed segment whose SEAL this node has not applied yet after a restart, a
        segment still arriving or being repaired) would serve older committed offsets than
        the log holds. Then nothing changes and the caller answers
        COORDINATOR_LOAD_IN_PROGRESS, which clients retry.

        Membership held from an earlier term may be stale (another node coordinated since):
        it is dropped, waiters are woken (they answer UNKNOWN_MEMBER_ID) and members rejoin.
        """
        offsets: dict[str, dict[tuple[str, int], tuple[int, str | None, int]]] = {}
        groups: dict[str, tuple[int, str, str] | None] = {}
        offset = chain.log_start_offset
        high_watermark = chain.high_watermark
        while offset < high_watermark:
            result = chain.read_committed(offset, READ_BYTES, at_least_one=True)
            if result.error_code or not result.records:
                logs.event(
                    "group_offsets_load_incomplete",
                    partition=index,
                    offset=offset,
                    high_watermark=high_watermark,
                    error=result.error_code,
                )
                raise GroupError(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS)
            for (group_id, topic, partition), value in decode_offset_records(result.records):
                stored = offsets.setdefault(group_id, {})
                if value is None:
                    stored.pop((topic, partition), None)
                else:
                    stored[(topic, partition)] = value
            for group_id, metadata in decode_group_records(result.records):
                groups[group_id] = metadata
            offset = _next_offset(result.records)
        for group_id in [g for g in self.offsets if coordinator_partition(g) == index]:
            del self.offsets[group_id]
        for group_id in [g for g in self.groups if coordinator_partition(g) == index]:
            stale = self.groups.pop(group_id)
            stale.members.clear()
            stale.join_done.set()
            stale.sync_done.set()
            self._unsaved.discard(group_id)
        self.offsets.update(offsets)
        for group_id, metadata in groups.items():
            if metadata is not None:
                generation, protocol_type, protocol_name = metadata
                self.groups[group_id] = Group(
                    group_id,
                    generation=generation,
                    protocol_type=protocol_type,
                    protocol_name=protocol_name,
                )
        here = [g for g in {*self.groups, *self.offsets} if coordinator_partition(g) == index]
        logs.event("group_offsets_loaded", partition=index, groups=len(here))

    # -- membership ----------------------------------------------------------------------

    async def join(
        self,
        group_id: str,
        member_id: str,
        group_instance_id: str | None,
        client_id: str,
        protocol_type: str,
        protocols: list[tuple[str, bytes]],
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        require_known_member_id: bool,
    ) -> JoinResult:
        self._coordinating(group_id)
        if not SESSION_TIMEOUT_MS_MIN <= session_timeout_ms <= SESSION_TIMEOUT_MS_MAX:
            raise GroupError(ErrorCode.INVALID_SESSION_TIMEOUT)
        group = self._group(group_id)
        if group.protocol_type and group.members and protocol_type != group.protocol_type:
            raise GroupError(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
        if not protocols:
            raise GroupError(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
        if member_id == "":
            member_id = self._static_member_id(group, group_instance_id) or (
                f"{client_id or 'member'}-{uuid.uuid4()}"
            )
            if require_known_member_id and group_instance_id is None:
                group.issued_member_ids.add(member_id)
                raise _MemberIdRequired(member_id)
        elif member_id not in group.members and member_id not in group.issued_member_ids:
            raise GroupError(ErrorCode.UNKNOWN_MEMBER_ID)
        if member_id not in group.members and len(group.members) >= MEMBERS_PER_GROUP_MAX:
            raise GroupError(ErrorCode.GROUP_MAX_SIZE_REACHED)
        group.issued_member_ids.discard(member_id)
        member = Member(
            member_id,
            group_instance_id,
            client_id,
            session_timeout_ms / 1000,
            max(rebalance_timeout_ms, session_timeout_ms) / 1000,
            protocol_type,
            protocols,
        )
        starting = group.state is GroupState.EMPTY
        previous = group.members.get(member_id)
        if previous is not None:
            member.assignment = previous.assignment
        group.members[member_id] = member
        member.joined = True
        member.deadline = math.inf  # the session clock stops while a join is pending
        if group.state is not GroupState.PREPARING_REBALANCE:
            # Kafka's group.initial.rebalance.delay.ms: only a group starting from empty waits.
            self._start_round(group, delay_s=INITIAL_REBALANCE_DELAY_S if starting else 0)
        self._complete_round_if_ready(group)
        round_done = group.join_done
        try:
            with trio.move_on_after(member.rebalance_timeout_s + 5):
                await round_done.wait()
        except trio.Cancelled:
            # The connection went away mid-join (a crashed client's reset): the member
            # stays in this round, but its session clock must run again or it would sit
            # in every later generation holding partitions nobody reads.
            member.deadline = trio.current_time() + member.session_timeout_s
            raise
        if not round_done.is_set():
            # The round outlived the rebalance timeout that should have ended it: answer
            # so the client rejoins, instead of failing the connection, and let the
            # member's session run out if it does not come back.
            member.deadline = trio.current_time() + member.session_timeout_s
            raise GroupError(ErrorCode.REBALANCE_IN_PROGRESS)
        if member_id not in group.members:
            raise GroupError(ErrorCode.UNKNOWN_MEMBER_ID)
        member.deadline = trio.current_time() + member.session_timeout_s
        chosen = group.protocol_name
        members = (
            [
                (m.member_id, m.group_instance_id, dict(m.protocols).get(chosen, b""))
                for m in group.members.values()
            ]
            if member_id == group.leader_id
            else []
        )
        return JoinResult(
            group.generation, group.protocol_type, chosen, group.leader_id, member_id, members
        )

    @staticmethod
    def _static_member_id(group: Group, group_instance_id: str | None) -> str | None:
        if group_instance_id is None:
            return None
        for member in list(group.members.values()):
            if member.group_instance_id == group_instance_id:
                # A static member restarting takes its old place; the old id is fenced.
                del group.members[member.member_id]
                return f"{group_instance_id}-{uuid.uuid4()}"
        return None

    def _start_round(self, group: Group, delay_s: float) -> None:
        group.state = GroupState.PREPARING_REBALANCE
        group.join_done = trio.Event()
        timeout_s = max((m.rebalance_timeout_s for m in group.members.values()), default=1.0)
        group.round_earliest = trio.current_time() + delay_s
        group.rebalance_deadline = group.round_earliest + timeout_s
        for member in group.members.values():
            if member.deadline != math.inf:
                member.joined = False

    def _complete_round_if_ready(self, group: Group) -> None:
        if group.state is not GroupState.PREPARING_REBALANCE:
            return
        now = trio.current_time()
        everyone = all(member.joined for member in group.members.values())
        if (everyone and now >= group.round_earliest) or now >= group.rebalance_deadline:
            self._complete_round(group)

    def _complete_round(self, group: Group) -> None:
        for member_id in [m.member_id for m in group.members.values() if not m.joined]:
            del group.members[member_id]
        done = group.join_done
        if not group.members:
            group.state = GroupState.EMPTY
            group.generation += 1
            group.leader_id = ""
            self._unsaved.add(group.group_id)
            done.set()
            return
        group.generation += 1
        group.protocol_type = next(iter(group.members.values())).protocol_type
        if group.leader_id not in group.members:
            group.leader_id = next(iter(group.members))
        group.protocol_name = _choose_protocol(
            group.members[group.leader_id], group.members.values()
        )
        group.state = GroupState.COMPLETING_REBALANCE
        group.sync_done = trio.Event()
        for member in group.members.values():
            member.joined = False
        logs.event(
            "group_rebalanced",
            group=group.group_id,
            generation=group.generation,
            members=len(group.members),
            protocol=group.protocol_name,
        )
        done.set()

    async def sync(
        self,
        group_id: str,
        generation: int,
        member_id: str,
        group_instance_id: str | None,
        assignments: dict[str, bytes],
    ) -> tuple[str, str, bytes]:
        self._coordinating(group_id)
        group = self._existing(group_id)
        member = group.member(member_id, group_instance_id)
        if generation != group.generation:
            raise GroupError(ErrorCode.ILLEGAL_GENERATION)
        if group.state is GroupState.PREPARING_REBALANCE:
            raise GroupError(ErrorCode.REBALANCE_IN_PROGRESS)
        if group.state is GroupState.COMPLETING_REBALANCE:
            if member_id == group.leader_id:
                # The generation is durable before anyone acts on it (Kafka does the same).
                await self._save_metadata(group)
                if (
                    self.groups.get(group_id) is not group
                    or group.state is not GroupState.COMPLETING_REBALANCE
                    or generation != group.generation
                ):
                    raise GroupError(ErrorCode.REBALANCE_IN_PROGRESS)
                for other in group.members.values():
                    other.assignment = assignments.get(other.member_id, b"")
                group.state = GroupState.STABLE
                group.sync_done.set()
            else:
                sync_done = group.sync_done
                with trio.move_on_after(member.session_timeout_s):
                    await sync_done.wait()
                if group.state is not GroupState.STABLE or generation != group.generation:
                    raise GroupError(ErrorCode.REBALANCE_IN_PROGRESS)
        member.deadline = trio.current_time() + member.session_timeout_s
        return group.protocol_type, group.protocol_name, member.assignment

    def heartbeat(
        self, group_id: str, generation: int, member_id: str, group_instance_id: str | None
    ) -> None:
        self._coordinating(group_id)
        group = self._existing(group_id)
        member = group.member(member_id, group_instance_id)
        if group.state is GroupState.PREPARING_REBALANCE:
            member.deadline = trio.current_time() + member.session_timeout_s
            raise GroupError(ErrorCode.REBALANCE_IN_PROGRESS)
        if generation != group.generation:
            raise GroupError(ErrorCode.ILLEGAL_GENERATION)
        member.deadline = trio.current_time() + member.session_timeout_s

    def leave(
        self, group_id: str, members: list[tuple[str, str | None]]
    ) -> list[tuple[str, str | None, ErrorCode]]:
        self._coordinating(group_id)
        group = self._existing(group_id)
        results = []
        for member_id, instance_id in members:
            if not member_id and instance_id is not None:
                member_id = next(
                    (
                        m.member_id
                        for m in group.members.values()
                        if m.group_instance_id == instance_id
                    ),
                    "",
                )
            if member_id in group.members:
                del group.members[member_id]
                results.append((member_id, instance_id, ErrorCode.NONE))
            else:
                results.append((member_id, instance_id, ErrorCode.UNKNOWN_MEMBER_ID))
        self._after_departure(group)
        return results

    def _after_departure(self, group: Group) -> None:
        if not group.members:
            if group.state is GroupState.PREPARING_REBALANCE:
                self._complete_round(group)
            group.state = GroupState.EMPTY
            group.sync_done.set()
            return
        if group.state is GroupState.PREPARING_REBALANCE:
            self._complete_round_if_ready(group)
        else:
            group.sync_done.set()
            self._start_round(group, delay_s=0)

    async def _save_metadata(self, group: Group) -> None:
        """Write the group's metadata record; answered only once Raft committed it."""
        record = group_value(group.generation, group.protocol_type, group.protocol_name)
        await self._write(group.group_id, [(group_key(group.group_id), record)])

    async def _write(self, group_id: str, entries: list[tuple[bytes, bytes | None]]) -> None:
        """Append records to the group's partition with acks=all; GroupError if refused."""
        chain = self._coordinating(group_id)
        outcome = await chain.produce(commit_batch(entries), -1, COMMIT_TIMEOUT_S)
        if outcome.error_code:
            raise GroupError(
                ErrorCode.NOT_COORDINATOR
                if outcome.error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER
                else ErrorCode(outcome.error_code)
            )

    async def _save_unsaved(self) -> None:
        """Write the metadata of groups that emptied (outside any request that could wait)."""
        for group_id in list(self._unsaved):
            self._unsaved.discard(group_id)
            group = self.groups.get(group_id)
            if group is None or not self._leads(group_id):
                continue
            try:
                await self._save_metadata(group)
            except GroupError as error:
                logs.event("group_metadata_not_saved", group=group_id, error=error.code.name)

    async def _save_unsaved_forever(self) -> None:
        while True:
            await trio.sleep(EXPIRY_CHECK_INTERVAL_S)
            await self._save_unsaved()

    async def expire_forever(self) -> None:
        """Remove members whose session lapsed and finish rounds whose timeout passed; beside
        it (so a slow write never holds up expiry), write the metadata of emptied groups."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._save_unsaved_forever)
            await self._expire_forever()

    async def _expire_forever(self) -> None:
        while True:
            await trio.sleep(EXPIRY_CHECK_INTERVAL_S)
            now = trio.current_time()
            for group in list(self.groups.values()):
                expired = [m.member_id for m in group.members.values() if m.deadline < now]
                for member_id in expired:
                    del group.members[member_id]
                    logs.event("group_member_expired", group=group.group_id, member=member_id)
                if expired:
                    self._after_departure(group)
                self._complete_round_if_ready(group)

    # -- offsets -------------------------------------------------------------------------

    async def commit(
        self,
        group_id: str,
        generation: int,
        member_id: str,
        group_instance_id: str | None,
        commits: list[tuple[str, int, int, str | None, int]],
    ) -> ErrorCode:
        """Commit (topic, partition, offset, metadata, leader epoch) entries for a group."""
        chain = self._coordinating(group_id)
        group = self.groups.get(group_id)
        if generation >= 0 or member_id:
            if group is None:
                raise GroupError(ErrorCode.ILLEGAL_GENERATION)
            group.member(member_id, group_instance_id)
            if group.state is GroupState.PREPARING_REBALANCE:
                raise GroupError(ErrorCode.REBALANCE_IN_PROGRESS)
            if generation != group.generation:
                raise GroupError(ErrorCode.ILLEGAL_GENERATION)
        batch = commit_batch(
            [
                (offset_key(group_id, topic, partition), offset_value(offset, metadata, epoch))
                for topic, partition, offset, metadata, epoch in commits
            ]
        )
        outcome = await chain.produce(batch, -1, COMMIT_TIMEOUT_S)
        if outcome.error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER:
            return ErrorCode.NOT_COORDINATOR
        if outcome.error_code:
            return ErrorCode(outcome.error_code)
        stored = self.offsets.setdefault(group_id, {})
        for topic, partition, offset, metadata, epoch in commits:
            stored[(topic, partition)] = (offset, metadata, epoch)
        return ErrorCode.NONE

    async def delete_offsets(self, group_id: str, partitions: list[tuple[str, int]]) -> None:
        """Tombstone committed offsets (OffsetDelete, DeleteGroups); committed by Raft first."""
        self._coordinating(group_id)
        stored = self.offsets.get(group_id, {})
        doomed = [key for key in partitions if key in stored]
        if doomed:
            await self._write(
                group_id,
                [(offset_key(group_id, topic, partition), None) for topic, partition in doomed],
            )
        for key in doomed:
            stored.pop(key, None)

    async def forget_topic(self, topic: str) -> None:
        """A deleted topic's committed offsets go too (Kafka's rule): tombstones for them in
        every offsets partition this node leads, committed by Raft, and gone from memory.

        Every node runs this when it applies the deletion; each handles the partitions it
        leads. A partition whose leader is still catching up is waited for (bounded).
        """
        deadline = trio.current_time() + COMMIT_TIMEOUT_S
        for index in range(OFFSETS_PARTITIONS):
            chain = self.partition_of(OFFSETS_TOPIC, index)  # type: ignore[operator]
            if chain is None:
                continue
            while chain.group.is_leader and not chain.group.leader_caught_up:
                if trio.current_time() > deadline:
                    break
                await trio.sleep(EXPIRY_CHECK_INTERVAL_S)
            if not chain.group.leader_caught_up:
                continue
            try:
                self._ensure_loaded(index, chain)
            except GroupError:
                # Not loadable yet (a segment still catching up after a restart): the
                # deleted topic's offsets of this partition are not tombstoned this time.
                logs.event("group_offsets_not_forgotten", topic=topic, partition=index,
                           error="COORDINATOR_LOAD_IN_PROGRESS")  # fmt: skip
                continue
            for group_id, stored in list(self.offsets.items()):
                doomed = [key for key in stored if key[0] == topic]
                if not doomed or coordinator_partition(group_id) != index:
                    continue
                try:
                    await self.delete_offsets(group_id, doomed)
                except GroupError as error:
                    logs.event("group_offsets_not_forgotten", group=group_id, topic=topic,
                               error=error.code.name)  # fmt: skip
                else:
                    logs.event("group_offsets_forgotten", group=group_id, topic=topic,
                               partitions=len(doomed))  # fmt: skip

    def active_topics(self, group_id: str) -> set[str]:
        """Topics the group's current members are assigned (their offsets stay)."""
        group = self.groups.get(group_id)
        if group is None or not group.members:
            return set()
        return {
            topic
            for member in group.members.values()
            for topic, _partition in assigned_partitions(member.assignment)
        }

    async def delete_group(self, group_id: str) -> None:
        """DeleteGroups: only an empty group; its offsets are tombstoned, then it is gone."""
        self._coordinating(group_id)
        group = self.groups.get(group_id)
        stored = self.offsets.get(group_id)
        if group is None and stored is None:
            raise GroupError(ErrorCode.GROUP_ID_NOT_FOUND)
        if group is not None and group.members:
            raise GroupError(ErrorCode.NON_EMPTY_GROUP)
        await self.delete_offsets(group_id, list(stored or {}))
        if group is not None:
            await self._write(group_id, [(group_key(group_id), None)])
        self.groups.pop(group_id, None)
        self.offsets.pop(group_id, None)
        self._unsaved.discard(group_id)

    def committed(
        self, group_id: str, wanted: Iterable[tuple[str, int]] | None
    ) -> dict[tuple[str, int], tuple[int, str | None, int]]:
        self._coordinating(group_id)
        stored = self.offsets.get(group_id, {})
        if wanted is None:
            return dict(stored)
        return {key: stored.get(key, (-1, "", -1)) for key in wanted}

    # -- listing -------------------------------------------------------------------------

    def listed(self) -> list[Group]:
        return [
            group
            for group in self.groups.values()
            if self._leads(group.group_id) and (group.members or group.generation)
        ]

    def describe(self, group_id: str) -> Group | None:
        self._coordinating(group_id)
        return self.groups.get(group_id)

    def _leads(self, group_id: str) -> bool:
        chain = self.offsets_partition(group_id)
        return chain is not None and chain.group.is_leader

    def _group(self, group_id: str) -> Group:
        group = self.groups.get(group_id)
        if group is None:
            if len(self.groups) >= GROUPS_MAX:
                raise GroupError(ErrorCode.GROUP_MAX_SIZE_REACHED, "too many groups")
            group = self.groups[group_id] = Group(group_id)
        return group

    def _existing(self, group_id: str) -> Group:
        group = self.groups.get(group_id)
        if group is None:
            raise GroupError(ErrorCode.UNKNOWN_MEMBER_ID)
        return group


class _MemberIdRequired(GroupError):
    """JoinGroup v4+: the member must rejoin with the id it is given."""

    def __init__(self, member_id: str) -> None:
        super().__init__(ErrorCode.MEMBER_ID_REQUIRED)
        self.member_id = member_id


MemberIdRequired = _MemberIdRequired


def _choose_protocol(leader: Member, members: Iterable[Member]) -> str:
    supported = [set(dict(member.protocols)) for member in members]
    for name, _metadata in leader.protocols:
        if all(name in names for names in supported):
            return name
    raise GroupError(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)


def _next_offset(batches: bytes | memoryview) -> int:
    """The offset after the last batch in a fetch result."""
    view = memoryview(batches)
    position = last = 0
    while position + 12 <= len(view):
        size = int.from_bytes(view[position + 8 : position + 12], "big") + 12
        base = int.from_bytes(view[position : position + 8], "big")
        delta = int.from_bytes(view[position + 23 : position + 27], "big")
        last = base + delta
        position += size
    return last + 1
