"""ReadIndex, leadership transfer, snapshots, membership changes, sealing and quiescence,
each driven through the simulated cluster with every safety checker on."""

from __future__ import annotations

import random

import pytest

from raftlog.raft.entry import EntryKind
from raftlog.raft.errors import (
    ConfigChangePending,
    GroupSealed,
    NotLeader,
    TransferInProgress,
    UncommittedLimitExceeded,
)
from raftlog.raft.membership import ConfigChange, ConfigChangeKind, InvalidConfigChange
from raftlog.raft.messages import (
    AppendEntries,
    Heartbeat,
    InstallSnapshot,
    Message,
    ReadIndexRequest,
    ReadIndexResponse,
)
from raftlog.raft.progress import ProgressState
from raftlog.raft.ready import Role
from raftlog.sim.cluster import ClusterOptions, SimCluster


def _cluster(voters: int = 3, spares: int = 0, seed: int = 1, **options: object) -> SimCluster:
    cluster = SimCluster.create(
        seed, ClusterOptions(voter_count=voters, spare_count=spares, **options)
    )
    cluster.campaign(1)
    cluster.flush()
    assert cluster.raw(1).role == Role.LEADER
    return cluster


def _read_states(cluster: SimCluster, node_id: int) -> list[tuple[int, bytes]]:
    """Process node_id's Ready and return the read states in it (checked by the checker)."""
    raw = cluster.raw(node_id)
    if not raw.has_ready():
        return []
    ready = raw.ready()
    cluster._persist(cluster.nodes[node_id], ready)
    cluster.network.send(ready.messages)
    cluster._apply(cluster.nodes[node_id], ready)
    raw.advance(ready)
    return [(state.index, state.context) for state in ready.read_states]


# ------------------------------------------------------------------ ReadIndex (thesis 6.4)


@pytest.mark.raft_section("6.4")
def test_6_4_leader_read_is_answered_after_a_heartbeat_quorum() -> None:
    cluster = _cluster()
    cluster.propose()
    cluster.flush()
    leader = cluster.raw(1)
    cluster.checker.on_read_requested(b"r1")
    leader.read_index(b"r1")
    assert _read_states(cluster, 1) == []  # not before a quorum answered
    cluster.flush()
    collected = cluster.checker.read_floor
    assert b"r1" not in collected  # the checker saw (and checked) the answer
    assert cluster.raw(1).log.committed >= 2


@pytest.mark.raft_section("6.4")
def test_6_4_follower_read_is_forwarded_and_answered_with_the_leader_commit() -> None:
    cluster = _cluster()
    cluster.propose()
    cluster.flush()
    forwarded: list[Message] = []

    def record(message: Message) -> bool:
        forwarded.append(message)
        return True

    assert cluster.read(2) is not None
    cluster.flush(record)
    kinds = {type(message) for message in forwarded}
    assert {ReadIndexRequest, ReadIndexResponse} <= kinds
    answer = next(m for m in forwarded if isinstance(m, ReadIndexResponse))
    assert answer.index == cluster.raw(1).log.committed
    assert not cluster.checker.read_floor


@pytest.mark.raft_section("6.4")
def test_6_4_a_deposed_leader_never_answers_a_read() -> None:
    cluster = _cluster()
    cluster.network.partition({1: 1})
    old = cluster.raw(1)
    cluster.checker.on_read_requested(b"stale")
    old.read_index(b"stale")
    for _ in range(40):  # the majority elects a new leader and commits meanwhile
        cluster.tick(2)
        cluster.tick(3)
        cluster.flush()
    cluster.propose(cluster.leader().id if cluster.leader() else 2)
    cluster.flush()
    assert b"stale" in cluster.checker.read_floor  # never answered
    assert old.role != Role.LEADER or old.term < cluster.leader().term  # type: ignore[union-attr]


@pytest.mark.raft_section("6.4")
def test_6_4_reads_wait_for_the_leaders_first_commit_in_its_term() -> None:
    cluster = _cluster(check_quorum=False)
    cluster.network.partition({1: 1})
    for _ in range(40):
        cluster.tick(2)
        cluster.flush()
    new_leader = cluster.raw(2)
    assert new_leader.role == Role.LEADER
    cluster.network.heal()
    cluster.crash(3)
    cluster.crash(1)
    # Node 2 leads but its no-op cannot commit without a second node: reads must wait.
    cluster.restart(1)
    new_leader.read_index(b"early")
    cluster.checker.on_read_requested(b"early")
    assert _read_states(cluster, 2) == []
    cluster.tick(2)
    cluster.flush()
    assert b"early" not in cluster.checker.read_floor


# ------------------------------------------------------------------ transfer (thesis 3.10)


@pytest.mark.raft_section("3.10")
def test_3_10_transfer_catches_up_the_target_then_hands_over() -> None:
    cluster = _cluster()
    cluster.network.partition({3: 1})
    for _ in range(5):
        cluster.propose()
    cluster.flush()
    cluster.network.heal()
    leader = cluster.raw(1)
    leader.transfer_leadership(3)
    with pytest.raises(TransferInProgress):
        leader.propose(b"refused")
    cluster.tick(1)  # heartbeat: the paused probe to node 3 resumes
    cluster.flush()
    assert cluster.raw(3).role == Role.LEADER
    assert cluster.raw(1).role == Role.FOLLOWER
    assert cluster.raw(3).log.last_index() >= 7


@pytest.mark.raft_section("3.10")
def test_3_10_an_unreachable_target_aborts_the_transfer_after_an_election_timeout() -> None:
    cluster = _cluster()
    cluster.network.partition({3: 1})
    leader = cluster.raw(1)
    leader.transfer_leadership(3)
    for _ in range(cluster.options.election_tick):
        cluster.tick(1)
        cluster.tick(2)
        cluster.flush()
    assert leader.role == Role.LEADER
    assert leader.propose(b"accepted again") > 0


def test_transfer_refuses_non_voters_and_followers() -> None:
    cluster = _cluster(spares=1)
    with pytest.raises(NotLeader):
        cluster.raw(2).transfer_leadership(3)
    with pytest.raises(Exception, match="not a voter"):
        cluster.raw(1).transfer_leadership(4)


# ------------------------------------------------------------------ snapshots (paper 7)


@pytest.mark.raft_section("7")
def test_7_a_lagging_follower_receives_a_chunked_snapshot() -> None:
    cluster = _cluster(snapshot_chunk_size_bytes=8)
    cluster.crash(3)
    for _ in range(20):
        cluster.propose()
        cluster.flush()
    assert cluster.compact(1)
    assert cluster.compact(2)
    cluster.restart(3)
    chunks: list[InstallSnapshot] = []

    def record(message: Message) -> bool:
        if isinstance(message, InstallSnapshot):
            chunks.append(message)
        return True

    for _ in range(5):
        cluster.tick(1)
        cluster.flush(record)
    follower = cluster.raw(3)
    assert len(chunks) >= 3  # 24 bytes of state in 8-byte chunks
    assert follower.log.last_index() == cluster.raw(1).log.last_index()
    assert cluster.nodes[3].state_machine.digest == cluster.nodes[1].state_machine.digest
    assert cluster.nodes[3].storage.first_index() > 1
    cluster.full_check()


@pytest.mark.raft_section("7")
def test_7_lost_snapshot_chunks_are_resent() -> None:
    cluster = _cluster(snapshot_chunk_size_bytes=8)
    cluster.crash(3)
    for _ in range(10):
        cluster.propose()
        cluster.flush()
    cluster.compact(1)
    cluster.restart(3)
    dropped = 0

    def lossy(message: Message) -> bool:
        nonlocal dropped
        if isinstance(message, InstallSnapshot) and message.offset_bytes == 8 and dropped < 2:
            dropped += 1
            return False
        return True

    for _ in range(10):
        cluster.tick(1)
        cluster.flush(lossy)
    assert dropped == 2
    assert cluster.raw(3).log.last_index() == cluster.raw(1).log.last_index()
    leader_view = {p.node_id: p for p in cluster.raw(1).statistics().progress}
    assert leader_view[3].state == ProgressState.REPLICATE


# ------------------------------------------------------------------ membership (thesis 4)


@pytest.mark.raft_section("4.2.1")
def test_4_2_1_a_learner_catches_up_without_voting_then_is_promoted() -> None:
    cluster = _cluster(spares=1)
    for _ in range(3):
        cluster.propose()
    cluster.flush()
    leader = cluster.raw(1)
    leader.propose_config_change(ConfigChange(ConfigChangeKind.ADD_LEARNER, 4))
    cluster.flush()
    learner = cluster.raw(4)
    assert learner.membership.learners == {4}
    assert learner.log.committed == leader.log.committed
    for _ in range(50):  # a learner never campaigns
        cluster.tick(4)
        cluster.flush()
    assert learner.role == Role.FOLLOWER and learner.term == leader.term
    leader.propose_config_change(ConfigChange(ConfigChangeKind.PROMOTE_LEARNER, 4))
    cluster.flush()
    assert leader.membership.voters == {1, 2, 3, 4}
    assert learner.membership.voters == {1, 2, 3, 4}
    cluster.crash(2)
    cluster.crash(3)  # 2 of 4 voters are no quorum: nothing commits
    before = leader.log.committed
    cluster.propose()
    cluster.flush()
    assert leader.log.committed == before
    cluster.restart(3)
    cluster.tick(1)
    cluster.flush()
    assert leader.log.committed > before


@pytest.mark.raft_section("4.1")
def test_4_1_only_one_uncommitted_config_change_at_a_time() -> None:
    cluster = _cluster(spares=2)
    leader = cluster.raw(1)
    cluster.network.partition({2: 1, 3: 1})
    leader.propose_config_change(ConfigChange(ConfigChangeKind.ADD_LEARNER, 4))
    with pytest.raises(ConfigChangePending):
        leader.propose_config_change(ConfigChange(ConfigChangeKind.ADD_LEARNER, 5))
    assert leader.membership.learners == {4}  # in effect on append, before commit
    with pytest.raises(InvalidConfigChange):
        cluster.network.heal()
        cluster.flush()
        leader.propose_config_change(ConfigChange(ConfigChangeKind.PROMOTE_LEARNER, 5))


@pytest.mark.raft_section("4.1")
def test_4_1_a_new_leader_changes_membership_only_after_committing_in_its_term() -> None:
    cluster = _cluster(spares=1, check_quorum=False)
    cluster.crash(1)
    cluster.campaign(2)
    cluster.flush(lambda message: not isinstance(message, AppendEntries))  # votes only
    leader = cluster.raw(2)
    assert leader.role == Role.LEADER
    with pytest.raises(ConfigChangePending, match="its term"):
        leader.propose_config_change(ConfigChange(ConfigChangeKind.ADD_LEARNER, 4))
    cluster.network.heal()
    cluster.tick(2)
    cluster.flush()
    assert leader.propose_config_change(ConfigChange(ConfigChangeKind.ADD_LEARNER, 4)) > 0


@pytest.mark.raft_section("4.2.2")
def test_4_2_2_a_removed_leader_steps_down_once_its_removal_commits() -> None:
    cluster = _cluster()
    leader = cluster.raw(1)
    leader.propose_config_change(ConfigChange(ConfigChangeKind.REMOVE_NODE, 1))
    assert leader.role == Role.LEADER  # still leads while the removal is uncommitted
    cluster.flush()
    assert leader.role == Role.FOLLOWER
    assert cluster.raw(2).membership.voters == {2, 3}
    for _ in range(60):
        cluster.tick_all()
        cluster.flush()
    new_leader = cluster.leader()
    assert new_leader is not None and new_leader.id in {2, 3}
    assert leader.role == Role.FOLLOWER  # never campaigns again
    assert cluster.propose() is not None
    cluster.flush()


def test_a_removed_leader_holding_the_longest_log_still_lets_the_group_recover() -> None:
    """The leader appends its removal and more entries, then loses leadership: it must
    campaign (it is a voter of the committed membership) or the group would be stuck."""
    cluster = _cluster(voters=2)
    leader = cluster.raw(1)
    cluster.network.partition({2: 1})
    leader.propose_config_change(ConfigChange(ConfigChangeKind.REMOVE_NODE, 1))
    cluster.flush()
    cluster.network.heal()
    for _ in range(200):
        cluster.tick_all()
        cluster.flush()
        if cluster.raw(2).role == Role.LEADER:
            break
    assert cluster.raw(2).role == Role.LEADER
    assert cluster.raw(2).membership.voters == {2}


# ------------------------------------------------------------------ seal and quiescence


def test_seal_refuses_data_then_the_sealed_group_goes_quiet() -> None:
    cluster = _cluster()
    leader = cluster.raw(1)
    cluster.propose()
    seal_index = leader.propose(b"final offset 1", kind=EntryKind.SEAL)
    with pytest.raises(GroupSealed):
        leader.propose(b"late")
    assert not leader.sealed()
    cluster.flush()
    assert all(node.sealed() for node in cluster.live())
    assert leader.statistics().seal_index == seal_index
    cluster.tick(1)
    cluster.flush()
    assert all(node.quiescent() for node in cluster.live())
    # Any message wakes a quiescent node.
    cluster.read(2)
    assert not cluster.raw(2).quiescent()
    cluster.flush()
    # Membership may still change after the seal (re-replication of a sealed segment).
    assert leader.propose_config_change(ConfigChange(ConfigChangeKind.REMOVE_NODE, 3)) > 0


def test_an_idle_group_quiesces_and_a_proposal_wakes_it() -> None:
    cluster = _cluster()
    cluster.propose()
    cluster.flush()
    cluster.tick(1)
    cluster.flush()
    assert all(node.quiescent() for node in cluster.live())
    payload = cluster.propose()
    assert not cluster.raw(1).quiescent()
    woken = []

    def note(message: Message) -> bool:
        if isinstance(message, AppendEntries) and message.entries:
            woken.append(cluster.raw(message.to_id).quiescent())
        return True

    cluster.flush(note)
    assert woken and all(woken), "each follower slept until the append woke it"
    # The commit that left every member holding the whole log went out as the quiescing
    # heartbeat round: the group is idle again with no tick.
    assert payload in cluster.committed_payloads
    assert all(node.quiescent() for node in cluster.live())


def _leader_messages_after_commit(broadcast_commit: bool) -> tuple[int, list[Message]]:
    """Propose one entry and flush, with no tick; the entry's index and what the leader
    sent from the moment it committed the entry."""
    cluster = _cluster(broadcast_commit=broadcast_commit)
    leader = cluster.raw(1)
    index = leader.propose(b"lone")
    after_commit: list[Message] = []

    def note(message: Message) -> bool:
        if leader.log.committed >= index and message.from_id == 1:
            after_commit.append(message)
        return True

    cluster.flush(note)
    assert leader.log.committed == index
    return index, after_commit


def test_a_commit_goes_out_at_once_by_default() -> None:
    index, after_commit = _leader_messages_after_commit(broadcast_commit=True)
    told = {
        m.to_id for m in after_commit
        if (isinstance(m, AppendEntries) and m.leader_commit == index)
        or (isinstance(m, Heartbeat) and m.commit == index)
    }  # fmt: skip
    assert told == {2, 3}


def test_without_commit_broadcast_the_next_heartbeat_or_append_carries_the_commit() -> None:
    _index, after_commit = _leader_messages_after_commit(broadcast_commit=False)
    assert after_commit == []
    cluster = _cluster(broadcast_commit=False)
    leader = cluster.raw(1)
    index = leader.propose(b"lone")
    cluster.flush()
    assert leader.log.committed == index
    assert all(cluster.raw(n).log.committed < index for n in (2, 3))
    # The leader's next heartbeat tells them, and quiesces the group.
    cluster.tick(1)
    cluster.flush()
    assert all(cluster.raw(n).log.committed == index for n in (2, 3))
    assert all(node.quiescent() for node in cluster.live())
    # Under load, each append carries the commit of the entries before it.
    first = leader.propose(b"one")
    cluster.flush()
    leader.propose(b"two")
    carried: list[int] = []

    def note(message: Message) -> bool:
        if isinstance(message, AppendEntries) and message.entries:
            carried.append(message.leader_commit)
        return True

    cluster.flush(note)
    assert carried and all(commit == first for commit in carried)
    assert all(cluster.raw(n).log.committed == first for n in (2, 3))


# ------------------------------------------------------------------ flow control and limits


@pytest.mark.raft_section("10.2.1")
def test_the_in_flight_window_bounds_appends_to_a_silent_follower() -> None:
    cluster = _cluster(max_inflight_messages=3, max_size_per_message_bytes=64)
    cluster.network.partition({3: 1})
    leader = cluster.raw(1)
    appends_to_3 = 0

    def count(message: Message) -> bool:
        nonlocal appends_to_3
        if isinstance(message, AppendEntries) and message.to_id == 3 and message.entries:
            appends_to_3 += 1
        return True

    for _ in range(20):
        leader.propose(b"x" * 30)
        cluster.flush(count)
    assert appends_to_3 == 3
    progress = {p.node_id: p for p in leader.statistics().progress}
    assert progress[3].inflight_messages == 3


def test_sent_to_every_peer_trails_the_follower_sent_the_least() -> None:
    cluster = _cluster(max_inflight_messages=2, max_size_per_message_bytes=64)
    leader = cluster.raw(1)
    assert leader.sent_to_every_peer() == leader.log.last_index()
    cluster.network.partition({3: 1})
    before = leader.log.last_index()
    for _ in range(10):
        leader.propose(b"x" * 30)
        cluster.flush()
    assert leader.log.committed == leader.log.last_index() > before + 2
    assert leader.sent_to_every_peer() == before + 2  # two appends in flight to 3, then paused
    assert cluster.raw(2).sent_to_every_peer() == cluster.raw(2).log.last_index()
    cluster.network.heal()
    for _ in range(30):
        cluster.tick_all()
        cluster.flush()
    assert leader.sent_to_every_peer() == leader.log.last_index()


def test_uncommitted_bytes_are_bounded_on_the_leader() -> None:
    cluster = _cluster()
    cluster.network.partition({1: 1})
    leader = cluster.raw(1)
    with pytest.raises(UncommittedLimitExceeded):
        for _ in range(1000):
            leader.propose(b"y" * 1000)
    assert leader.log.last_index() < 100


def test_proposals_on_followers_name_the_leader() -> None:
    cluster = _cluster()
    with pytest.raises(NotLeader) as refused:
        cluster.raw(2).propose(b"x")
    assert refused.value.leader_id == 1


def test_a_full_restart_keeps_every_committed_entry() -> None:
    cluster = _cluster()
    for _ in range(5):
        cluster.propose()
    cluster.flush()
    committed = cluster.raw(1).log.committed
    for node_id in (1, 2, 3):
        cluster.crash(node_id)
    for node_id in (1, 2, 3):
        cluster.restart(node_id)
    for _ in range(60):
        cluster.tick_all()
        cluster.flush()
    leader = cluster.leader()
    assert leader is not None
    assert leader.log.committed > committed
    assert all(node.state_machine.applied_index >= committed for node in cluster.nodes.values())


def test_statistics_report_progress_on_the_leader_only() -> None:
    cluster = _cluster()
    leader_statistics = cluster.raw(1).statistics()
    assert leader_statistics.role == Role.LEADER and leader_statistics.leader_id == 1
    assert [p.node_id for p in leader_statistics.progress] == [1, 2, 3]
    assert all(p.match_index == leader_statistics.last_index for p in leader_statistics.progress)
    assert cluster.raw(2).statistics().progress == ()


def test_randomness_comes_only_from_the_injected_source() -> None:
    first = SimCluster.create(5, ClusterOptions())
    second = SimCluster.create(5, ClusterOptions())
    for _ in range(30):
        for cluster in (first, second):
            cluster.tick_all()
            cluster.flush()
    assert [n.term for n in first.live()] == [n.term for n in second.live()]
    assert random.Random(5).random() == random.Random(5).random()
