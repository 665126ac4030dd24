"""The repair floor in the core: a node that cut corrupt entries follows but does not
campaign, votes only for logs covering what it held, and tells the leader what it lost."""

from __future__ import annotations

import random

from raftlog.raft.config import RaftConfig
from raftlog.raft.entry import Entry, EntryKind, HardState
from raftlog.raft.membership import Membership
from raftlog.raft.messages import (
    AppendEntries,
    AppendEntriesResponse,
    Heartbeat,
    Message,
    RequestPreVote,
    RequestVote,
    RequestVoteResponse,
)
from raftlog.raft.node import RawNode
from raftlog.raft.ready import Role
from raftlog.raft.storage import MemoryStorage

VOTERS = Membership(frozenset({1, 2, 3}))


def _node(last_index: int, term: int, floor: int = 0, floor_term: int = 0) -> RawNode:
    """Node 1 holding entries 1..last_index of `term`, with the given repair floor."""
    storage = MemoryStorage.bootstrap(VOTERS)
    storage.append([Entry(term, index, EntryKind.DATA) for index in range(1, last_index + 1)])
    storage.set_hard_state(HardState(term=term))
    config = RaftConfig(
        node_id=1,
        random_source=random.Random(1),
        repair_floor=floor,
        repair_floor_term=floor_term,
        pre_vote=False,
        check_quorum=False,
    )
    node = RawNode(config, storage)
    _STORAGES[id(node)] = storage
    return node


_STORAGES: dict[int, MemoryStorage] = {}


def _messages(node: RawNode) -> list[Message]:
    if not node.has_ready():
        return []
    ready = node.ready()
    storage = _STORAGES[id(node)]
    if ready.entries:
        storage.append(ready.entries)
    if ready.hard_state is not None:
        storage.set_hard_state(ready.hard_state)
    node.advance(ready)
    return list(ready.messages)


def test_a_repairing_node_never_campaigns_and_tells_every_member_instead() -> None:
    node = _node(last_index=5, term=2, floor=9, floor_term=2)
    assert node.repairing
    sent: list[Message] = []
    for _ in range(100):
        node.tick()
        sent.extend(_messages(node))
    assert node.role == Role.FOLLOWER
    assert not any(isinstance(m, RequestVote | RequestPreVote) for m in sent)
    notices = [m for m in sent if isinstance(m, AppendEntriesResponse)]
    assert {m.to_id for m in notices} == {2, 3}
    assert all(m.rejected and m.index == 0 and m.reject_hint_index == 5 for m in notices)


def test_a_node_without_a_floor_campaigns() -> None:
    node = _node(last_index=5, term=2)
    assert not node.repairing
    for _ in range(100):
        node.tick()
        if node.role != Role.FOLLOWER:
            break
    assert node.role == Role.CANDIDATE


def _vote(node: RawNode, last_index: int, last_term: int) -> bool:
    node.step(RequestVote(2, 1, 3, last_index, last_term))
    answers = [m for m in _messages(node) if isinstance(m, RequestVoteResponse)]
    assert len(answers) == 1
    return answers[0].granted


def test_votes_go_only_to_logs_that_cover_the_floor() -> None:
    # Behind the floor (index 8 < 9, same term): the candidate may lack what we had.
    assert not _vote(_node(5, 2, floor=9, floor_term=2), last_index=8, last_term=2)
    # Up to date with the truncated log but not with the floor: refused too.
    assert not _vote(_node(5, 2, floor=9, floor_term=2), last_index=5, last_term=2)
    # Covers it: granted, as Raft would have with the original log.
    assert _vote(_node(5, 2, floor=9, floor_term=2), last_index=9, last_term=2)
    assert _vote(_node(5, 2, floor=9, floor_term=2), last_index=6, last_term=3)


def test_the_floor_lifts_once_the_leader_has_refilled_the_log() -> None:
    node = _node(last_index=5, term=2, floor=7, floor_term=2)
    entries = (Entry(2, 6, EntryKind.DATA), Entry(2, 7, EntryKind.DATA))
    node.step(AppendEntries(2, 1, 2, 5, 2, 7, entries))
    sent = _messages(node)
    assert not node.repairing
    accepted = [m for m in sent if isinstance(m, AppendEntriesResponse) and not m.rejected]
    assert accepted and accepted[-1].index == 7


def test_a_heartbeat_past_the_log_draws_a_loss_notice() -> None:
    """The leader thinks we hold up to 9 (its match for us) but we hold 5."""
    node = _node(last_index=5, term=2)
    node.step(Heartbeat(2, 1, 2, 9, 0, False))
    notices = [m for m in _messages(node) if isinstance(m, AppendEntriesResponse)]
    assert any(m.rejected and m.index == 0 and m.reject_hint_index == 5 for m in notices)


def test_a_leader_lowers_its_match_on_a_loss_notice_and_resends() -> None:
    leader = _node(last_index=0, term=1)
    leader.campaign()
    _messages(leader)
    for voter in (2, 3):
        leader.step(RequestVoteResponse(voter, 1, leader.term, True))
    assert leader.role == Role.LEADER
    for _ in range(4):
        leader.propose(b"x")
    _messages(leader)
    last = leader.statistics().last_index
    for voter in (2, 3):
        leader.step(AppendEntriesResponse(voter, 1, leader.term, last))
    _messages(leader)
    # Node 2 cut its log to entry 2 and says so.
    leader.step(AppendEntriesResponse(2, 1, leader.term, 0, True, 2))
    resent = [m for m in _messages(leader) if isinstance(m, AppendEntries) and m.to_id == 2]
    assert resent, "the leader resends what node 2 lost"
    assert resent[0].previous_log_index == 2
    assert [entry.index for entry in resent[0].entries][:1] == [3]
