"""A new group whose first voter leads term 1 without a campaign (``raftlog.raft.bootstrap``),
driven through the simulated cluster with every safety checker on."""

from __future__ import annotations

import random

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raftlog.raft.bootstrap import fresh_group_hard_state
from raftlog.raft.config import RaftConfig
from raftlog.raft.entry import Entry, EntryKind, HardState
from raftlog.raft.errors import RaftUsageError
from raftlog.raft.membership import Membership
from raftlog.raft.messages import Heartbeat, RequestPreVote, RequestVote
from raftlog.raft.node import RawNode
from raftlog.raft.ready import Role
from raftlog.raft.storage import MemoryStorage
from raftlog.sim.cluster import ClusterOptions, SimCluster
from raftlog.sim.runner import RunOptions, cluster_options_for_seed, run_seed, stabilize


def _fresh(voters: int = 3, seed: int = 1, **options: object) -> SimCluster:
    cluster = SimCluster.create(
        seed, ClusterOptions(voter_count=voters, spare_count=0, fresh_bootstrap=True, **options)
    )
    cluster.check()  # the checkers see node 1 lead term 1 from the start
    return cluster


def test_fresh_hard_state_is_the_next_term_with_the_vote_cast() -> None:
    assert fresh_group_hard_state(2) == HardState(term=1, vote=2, commit=0)
    assert fresh_group_hard_state(3, base_term=7) == HardState(term=8, vote=3, commit=0)
    with pytest.raises(ValueError):
        fresh_group_hard_state(0)
    with pytest.raises(ValueError):
        fresh_group_hard_state(1, base_term=-1)


@pytest.mark.parametrize("voters", [1, 3, 5])
def test_first_voter_leads_term_one_with_no_vote_round(voters: int) -> None:
    cluster = _fresh(voters)
    first = cluster.raw(1)
    assert first.role == Role.LEADER and first.term == 1
    votes: list[object] = []

    def record(message: object) -> bool:
        if isinstance(message, RequestVote | RequestPreVote):
            votes.append(message)
        return True

    cluster.flush(allow=record)  # no tick: nobody's election timer fires
    assert votes == []
    for node_id in range(1, voters + 1):
        raw = cluster.raw(node_id)
        assert (raw.term, raw.leader_id) == (1, 1)
        assert raw.log.committed == 1  # the leader's NOOP
        assert raw.log.maybe_term(1) == 1
    assert cluster.checker.leader_by_term == {1: 1}
    payload = cluster.propose()
    cluster.flush()
    cluster.process_all_ready()  # a lone voter commits on advance: apply in the next Ready
    assert payload in cluster.committed_payloads


def test_the_others_elect_in_term_two_when_the_first_voter_is_dead() -> None:
    cluster = _fresh(3)
    cluster.crash(1)  # before it sent anything
    stabilize(cluster, tick_bound=400)
    leader = cluster.leader()
    assert leader is not None and leader.term >= 2
    assert cluster.checker.leader_by_term.get(1) == 1  # observed at creation, never another


def test_a_restarted_first_voter_never_leads_term_one_again() -> None:
    """It may have led term 1 and lost entries it sent; leading again could reuse them."""
    cluster = _fresh(3)
    cluster.process_ready(1)  # the NOOP goes out
    cluster.crash(1)
    cluster.restart(1)
    restarted = cluster.raw(1)
    assert restarted.role == Role.FOLLOWER and restarted.term == 1
    assert restarted.vote == 1  # its durable vote, so it votes for nobody else in term 1
    stabilize(cluster, tick_bound=400)
    assert cluster.checker.leader_by_term.get(1) == 1
    assert max(cluster.checker.leader_by_term) >= 1


def test_the_first_leader_waits_for_followers_that_open_late() -> None:
    """Check-quorum does not depose it before it has heard from a quorum once (its
    followers may open the group seconds later), and it probes them at half an election
    timeout meanwhile, not every tick; afterwards both work as usual."""
    cluster = _fresh(3)
    ticks = 5 * cluster.options.election_tick
    probes = 0
    for _ in range(ticks):
        cluster.tick(1)  # the followers have not opened the group: they never answer
        cluster.process_ready(1)
        probes += sum(isinstance(m, Heartbeat) for m in cluster.network.in_flight)
        cluster.network.in_flight.clear()
    assert (cluster.raw(1).role, cluster.raw(1).term) == (Role.LEADER, 1)
    rounds = ticks // (cluster.options.election_tick // 2)
    assert probes == 2 * rounds  # two followers
    for _ in range(cluster.options.election_tick // 2):
        cluster.tick(1)  # the next probe: the followers answer, then get the NOOP
    cluster.flush()
    assert [cluster.raw(node).leader_id for node in (1, 2, 3)] == [1, 1, 1]
    cluster.tick(1)
    assert sum(isinstance(m, Heartbeat) for m in cluster.raw(1).ready().messages) == 2
    cluster.network.partition({1: 1})  # now cut off: it steps down within two timeouts
    for _ in range(2 * cluster.options.election_tick + 1):
        cluster.tick(1)
        cluster.network.in_flight.clear()
    assert cluster.raw(1).role != Role.LEADER


def _raw(storage: MemoryStorage, node_id: int = 1) -> RawNode:
    config = RaftConfig(node_id=node_id, random_source=random.Random(1), lead_fresh_group=True)
    return RawNode(config, storage)


def _storage(hard_state: HardState, voters: frozenset[int] = frozenset({1, 2, 3})) -> MemoryStorage:
    storage = MemoryStorage.bootstrap(Membership(voters))
    storage.set_hard_state(hard_state)
    return storage


@pytest.mark.parametrize(
    ("hard_state", "voters", "problem"),
    [
        (HardState(term=1, vote=2), frozenset({1, 2, 3}), "vote is 2"),
        (HardState(term=0, vote=1), frozenset({1, 2, 3}), "term is 0"),
        (HardState(term=1, vote=1), frozenset({2, 3, 4}), "not a voter"),
    ],
)
def test_leading_a_group_that_is_not_fresh_is_refused(
    hard_state: HardState, voters: frozenset[int], problem: str
) -> None:
    with pytest.raises(RaftUsageError, match=problem):
        _raw(_storage(hard_state, voters))


def test_leading_a_group_whose_log_holds_entries_is_refused() -> None:
    storage = _storage(HardState(term=1, vote=1, commit=1))
    storage.append([Entry(1, 1, EntryKind.NOOP)])
    with pytest.raises(RaftUsageError, match="commit is 1; the log holds 1 entries"):
        _raw(storage)


def test_a_fresh_leader_continues_a_base_term() -> None:
    raw = _raw(_storage(fresh_group_hard_state(1, base_term=4)))
    assert (raw.role, raw.term) == (Role.LEADER, 5)
    ready = raw.ready()
    assert [(entry.index, entry.term, entry.kind) for entry in ready.entries] == [
        (1, 5, EntryKind.NOOP)
    ]
    assert ready.hard_state is None  # term and vote were persisted by the bootstrap
    assert ready.soft_state is not None and ready.soft_state.role == Role.LEADER
    assert sorted(message.to_id for message in ready.messages) == [2, 3]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=1 << 30))
def test_a_fresh_group_elects_exactly_one_leader_in_term_one(seed: int) -> None:
    """Under random faults (loss, reordering, crashes, partitions, membership changes),
    only the first voter ever leads term 1 (it does from its creation), and every safety
    invariant holds."""
    options = attrs.evolve(cluster_options_for_seed(seed), fresh_bootstrap=True)
    term_one_leaders = {1}  # at creation, before the first action
    assert SimCluster.create(seed, options).raw(1).role == Role.LEADER

    def watch(cluster: SimCluster) -> None:
        term_one_leaders.update(
            raw.id for raw in cluster.live() if raw.role == Role.LEADER and raw.term == 1
        )

    result = run_seed(seed, RunOptions(steps=1_500, liveness_every_steps=0), options, watch)
    assert result.failure is None, f"seed {seed}: {result.failure}"
    assert term_one_leaders == {1}
