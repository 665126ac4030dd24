"""Scripted scenarios from the Raft paper (Ongaro & Ousterhout 2014) and thesis (Ongaro 2014),
each tagged with the section it checks, run on the simulated cluster with every checker on."""

from __future__ import annotations

import pytest

from raftlog.invariant import InvariantViolation
from raftlog.raft.messages import (
    AppendEntries,
    AppendEntriesResponse,
    Message,
    RequestPreVote,
    RequestVote,
)
from raftlog.raft.ready import Role
from raftlog.sim.cluster import ClusterOptions, SimCluster
from raftlog.sim.scenario import log_terms, storage_with_log

FIVE = (1, 2, 3, 4, 5)


def _elect(cluster: SimCluster, node_id: int, allow=None) -> None:
    """Campaign until elected (a campaign that learns of a higher term fails once)."""
    for _ in range(3):
        cluster.campaign(node_id)
        cluster.flush(allow)
        if cluster.raw(node_id).role == Role.LEADER:
            return
    raise AssertionError(f"node {node_id} was not elected")


def _fresh(voter_count: int = 3, **options: object) -> SimCluster:
    return SimCluster.create(1, ClusterOptions(voter_count=voter_count, spare_count=0, **options))


@pytest.mark.raft_section("5.2")
def test_5_2_a_candidate_with_a_majority_becomes_the_only_leader() -> None:
    cluster = _fresh(5)
    _elect(cluster, 1)
    roles = {node.id: node.role for node in cluster.live()}
    assert roles == {1: Role.LEADER, 2: Role.FOLLOWER, 3: Role.FOLLOWER, 4: Role.FOLLOWER,
                     5: Role.FOLLOWER}
    assert {node.leader_id for node in cluster.live()} == {1}


@pytest.mark.raft_section("5.2")
def test_5_2_election_timeout_starts_an_election_from_ticks_alone() -> None:
    cluster = _fresh(3)
    for _ in range(100):
        cluster.tick_all()
        cluster.flush()
        if cluster.leader() is not None:
            break
    leader = cluster.leader()
    assert leader is not None
    assert leader.term >= 1


@pytest.mark.raft_section("5.4.1")
def test_5_4_1_a_voter_refuses_a_candidate_with_an_older_log() -> None:
    storages = {
        1: storage_with_log((1, 2, 3), [1, 1], term=2),
        2: storage_with_log((1, 2, 3), [1, 2], term=2),
        3: storage_with_log((1, 2, 3), [1, 2, 2], term=2),
    }
    cluster = SimCluster.from_storages(1, storages, ClusterOptions(pre_vote=False))
    cluster.campaign(1)
    cluster.flush()
    assert cluster.raw(1).role != Role.LEADER
    _elect(cluster, 3)


@pytest.mark.raft_section("9.6")
def test_9_6_pre_vote_keeps_a_partitioned_node_from_inflating_terms() -> None:
    cluster = _fresh(3)
    _elect(cluster, 1)
    term = cluster.raw(1).term
    cluster.network.partition({3: 1})
    for _ in range(200):
        cluster.tick(3)
        cluster.flush()
    assert cluster.raw(3).term == term  # only pre-candidate rounds, no term bump
    cluster.network.heal()
    for _ in range(5):
        cluster.tick_all()
        cluster.flush()
    assert cluster.raw(1).role == Role.LEADER
    assert cluster.raw(1).term == term


@pytest.mark.raft_section("9.6")
def test_9_6_without_pre_vote_a_rejoining_node_deposes_the_leader() -> None:
    """The contrast that shows what pre-vote buys (and that the switch works)."""
    cluster = _fresh(3, pre_vote=False, check_quorum=False)
    _elect(cluster, 1)
    term = cluster.raw(1).term
    cluster.network.partition({3: 1})
    for _ in range(60):
        cluster.tick(3)
        cluster.flush()
    assert cluster.raw(3).term > term
    cluster.network.heal()
    for _ in range(2 * cluster.options.election_tick):
        cluster.tick(3)
        cluster.flush()
    assert cluster.raw(1).term > term


@pytest.mark.raft_section("6.2")
def test_6_2_check_quorum_makes_an_isolated_leader_step_down() -> None:
    cluster = _fresh(3)
    _elect(cluster, 1)
    cluster.network.partition({1: 1})
    term = cluster.raw(1).term
    for _ in range(2 * cluster.options.election_tick):
        cluster.tick(1)
        cluster.flush()
        if cluster.raw(1).role != Role.LEADER:
            break
    assert cluster.raw(1).role == Role.FOLLOWER
    assert cluster.raw(1).term == term


@pytest.mark.raft_section("4.2.3")
def test_4_2_3_followers_in_a_leader_lease_ignore_disruptive_votes() -> None:
    cluster = _fresh(3, pre_vote=False)
    _elect(cluster, 1)
    term = cluster.raw(1).term
    # Node 3 campaigns although it hears from the leader (as a removed or confused node would).
    cluster.nodes[3].raw._become_candidate()  # type: ignore[union-attr]
    cluster.nodes[3].raw._campaign(pre_vote=False, leadership_transfer=False)  # type: ignore[union-attr]
    cluster.flush(lambda message: isinstance(message, RequestVote))
    assert cluster.raw(2).term == term
    assert cluster.raw(1).role == Role.LEADER


@pytest.mark.raft_section("5.3")
@pytest.mark.parametrize(
    "follower_terms",
    [
        # Figure 7: the leader for term 8 and followers (a) to (f).
        pytest.param([1, 1, 1, 4, 4, 5, 5, 6, 6], id="a-missing-one"),
        pytest.param([1, 1, 1, 4], id="b-missing-many"),
        pytest.param([1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6], id="c-extra-uncommitted"),
        pytest.param([1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7], id="d-extra-higher-term"),
        pytest.param([1, 1, 1, 4, 4, 4, 4], id="e-missing-and-extra"),
        pytest.param([1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3], id="f-diverged-early"),
    ],
)
def test_5_3_figure_7_the_leader_brings_any_follower_log_in_line(
    follower_terms: list[int],
) -> None:
    leader_terms = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6]
    storages = {
        1: storage_with_log((1, 2, 3), leader_terms, term=8),
        2: storage_with_log((1, 2, 3), follower_terms, term=8),
        3: storage_with_log((1, 2, 3), leader_terms, term=8),
    }
    cluster = SimCluster.from_storages(7, storages, ClusterOptions(max_size_per_message_bytes=64))
    _elect(cluster, 1)
    cluster.flush()
    expected = [*leader_terms, cluster.raw(1).term]
    assert log_terms(cluster.raw(1).log) == expected
    assert log_terms(cluster.raw(2).log) == expected
    assert cluster.raw(2).log.committed == len(expected)
    cluster.full_check()


def _figure_8(cluster: SimCluster) -> None:
    """Figure 8: an entry of an old term stored on a majority can still be overwritten."""

    def only(pairs: set[tuple[int, int]], max_index: int | None = None, limited: int = 0):
        def allow(message: Message) -> bool:
            if isinstance(message, RequestVote | RequestPreVote) or not isinstance(
                message, AppendEntries | AppendEntriesResponse
            ):
                return True
            if (message.from_id, message.to_id) not in pairs:
                return False
            if max_index is not None and isinstance(message, AppendEntries) and (
                message.to_id == limited
            ):
                # Entries past max_index only go where they will be refused anyway.
                receiver_has_it = cluster.raw(message.to_id).log.maybe_term(max_index) is not None
                beyond = any(entry.index > max_index for entry in message.entries)
                return not (beyond and receiver_has_it)
            return True

        return allow

    votes_only = only(set())
    # (a) S1 leads and replicates an entry (index 2) to S2 only.
    _elect(cluster, 1)
    cluster.flush()
    cluster.propose(1)
    cluster.flush(only({(1, 2), (2, 1)}))
    assert log_terms(cluster.raw(2).log)[-1] == cluster.raw(1).term
    old_index = cluster.raw(1).log.last_index()
    # (b) S1 crashes; S5 is elected by S3, S4, S5 and appends at the same index, alone.
    cluster.crash(1)
    cluster.network.partition({1: 1, 2: 1})
    _elect(cluster, 5, votes_only)
    cluster.network.in_flight.clear()
    cluster.process_all_ready()
    cluster.network.in_flight.clear()
    cluster.crash(5)
    cluster.network.heal()
    # (c) S1 restarts, is elected, and replicates its old entry to S3: a majority (S1, S2,
    # S3) holds it, but its own new entry reaches only S2.
    cluster.restart(1)
    _elect(cluster, 1, votes_only)
    cluster.tick(1)  # a heartbeat round un-pauses the probes that votes_only dropped
    cluster.flush(only({(1, 2), (2, 1), (1, 3), (3, 1)}, max_index=old_index, limited=3))
    assert cluster.raw(3).log.maybe_term(old_index) == cluster.raw(2).log.maybe_term(old_index)
    # (d) S1 crashes; S5 can win (S3, S4 vote) and overwrites the entry.
    cluster.crash(1)
    cluster.restart(5)
    _elect(cluster, 5)
    cluster.flush()
    assert cluster.raw(3).log.maybe_term(old_index) == cluster.raw(5).log.maybe_term(old_index)


@pytest.mark.raft_section("5.4.2")
def test_5_4_2_figure_8_a_leader_never_counts_replicas_of_an_old_term() -> None:
    options = ClusterOptions(
        voter_count=5, spare_count=0, max_size_per_message_bytes=8, check_quorum=False
    )
    cluster = SimCluster.create(8, options)
    _figure_8(cluster)  # every checker holds: the old entry was never reported committed
    assert cluster.checker.max_committed_index >= 1


@pytest.mark.raft_section("5.4.2")
def test_5_4_2_figure_8_with_the_commit_bug_the_checkers_fire() -> None:
    options = ClusterOptions(
        voter_count=5, spare_count=0, max_size_per_message_bytes=8, check_quorum=False,
        test_bug="commit_previous_term_by_count",
    )
    cluster = SimCluster.create(8, options)
    with pytest.raises(InvariantViolation, match=r"leader completeness|committed prefix"):
        _figure_8(cluster)


@pytest.mark.raft_section("5.4.3")
def test_5_4_3_entries_of_earlier_terms_commit_with_the_new_leaders_noop() -> None:
    storages = {
        1: storage_with_log((1, 2, 3), [1, 1, 2], term=2, commit=1),
        2: storage_with_log((1, 2, 3), [1, 1, 2], term=2, commit=1),
        3: storage_with_log((1, 2, 3), [1], term=2, commit=1),
    }
    cluster = SimCluster.from_storages(3, storages)
    _elect(cluster, 1)
    cluster.flush()
    leader = cluster.raw(1)
    assert leader.log.committed == 4
    assert log_terms(leader.log) == [1, 1, 2, leader.term]
    assert all(node.log.committed == 4 for node in cluster.live())
