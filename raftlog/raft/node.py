"""The Raft state machine of one node in one group, driven by its application.

In the manner of etcd-io/raft's ``RawNode``: the application calls ``tick()`` on a timer,
``step(message)`` for every message received, ``propose()`` / ``read_index()`` /
``transfer_leadership()`` for its own requests, and then drains ``ready()`` and calls
``advance()`` (see ``raftlog.raft.ready`` for the contract). The node never does I/O,
never reads a clock and draws randomness only from ``config.random_source``.

Paper sections are cited as in the Raft thesis (Ongaro 2014) and the extended paper.
"""

from __future__ import annotations

from raftlog.invariant import invariant
from raftlog.raft.config import RaftConfig
from raftlog.raft.entry import (
    NO_NODE,
    Entry,
    EntryKind,
    HardState,
    ReadState,
    Snapshot,
    entries_size_bytes,
)
from raftlog.raft.errors import (
    ConfigChangePending,
    GroupSealed,
    LogCompacted,
    NotLeader,
    ProposalDropped,
    RaftUsageError,
    ReadIndexLimitExceeded,
    SnapshotTemporarilyUnavailable,
    TransferInProgress,
    UncommittedLimitExceeded,
)
from raftlog.raft.inflights import Inflights
from raftlog.raft.membership import (
    ConfigChange,
    ConfigChangeRecord,
    Membership,
    decode_config_change_record,
    encode_config_change,
    encode_config_change_record,
)
from raftlog.raft.messages import (
    AppendEntries,
    AppendEntriesResponse,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    InstallSnapshotResponse,
    Message,
    ReadIndexRequest,
    ReadIndexResponse,
    RequestPreVote,
    RequestPreVoteResponse,
    RequestVote,
    RequestVoteResponse,
    TimeoutNow,
)
from raftlog.raft.progress import Progress, ProgressState
from raftlog.raft.quorum import VoteResult, committed_index, has_quorum, vote_result
from raftlog.raft.raft_log import RaftLog
from raftlog.raft.read_only import ReadOnlyQueue
from raftlog.raft.ready import Ready, Role, SoftState
from raftlog.raft.snapshot_assembly import SnapshotAssembly
from raftlog.raft.statistics import PeerProgress, RaftStatistics
from raftlog.raft.storage import LogStorage

_SCAN_CHUNK_BYTES = 1 << 20
"""Read size when scanning the stable log for CONFIG_CHANGE and SEAL entries at start."""


class RawNode:
    """One node of one Raft group (not thread-safe; the shell serializes calls)."""

    def __init__(self, config: RaftConfig, storage: LogStorage) -> None:
        hard_state, snapshot_metadata = storage.initial_state()
        self.config = config
        self.id = config.node_id
        self._log = RaftLog.open(storage, hard_state.commit, config.applied_index)
        self.term = hard_state.term
        self.vote = hard_state.vote
        self.leader_id = NO_NODE
        self.role = Role.FOLLOWER
        # Membership as of the snapshot (or the last committed config change), then the
        # CONFIG_CHANGE entries in the log after it: a change takes effect on append.
        self._base_membership = snapshot_metadata.membership
        self._config_history: list[tuple[int, Membership]] = []
        self._seal_index = snapshot_metadata.seal_index
        self.membership = self._base_membership
        self._progress: dict[int, Progress] = {}
        self._votes: dict[int, bool] = {}
        self._stale_votes: dict[int, bool] = {}
        """Only with the deliberate ``count_stale_votes`` test bug."""
        self._messages: list[Message] = []
        self._read_states: list[ReadState] = []
        self._reads = ReadOnlyQueue(config.max_pending_read_index_requests)
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._randomized_election_timeout = config.election_tick
        self._lead_transferee = NO_NODE
        self._pending_config_index = 0
        self._uncommitted_size_bytes = 0
        self._quiesced = False
        # A fresh group's first leader that has not yet heard from a quorum (`_tick_leader`).
        self._awaiting_first_quorum = False
        self._broadcast_pending = False
        self._snapshot_assembly: SnapshotAssembly | None = None
        self._outstanding_ready: Ready | None = None
        self._repair_floor = config.repair_floor
        self._repair_floor_term = config.repair_floor_term
        self._scan_stable_log(storage)
        self._become_follower(self.term, NO_NODE)
        if config.lead_fresh_group:
            self._lead_fresh_group(hard_state)
        self._previous_hard_state = hard_state
        self._previous_soft_state = SoftState(NO_NODE, Role.FOLLOWER)

    def _scan_stable_log(self, storage: LogStorage) -> None:
        low = storage.first_index()
        last = storage.last_index()
        while low <= last:
            chunk = storage.entries(low, last + 1, _SCAN_CHUNK_BYTES)
            invariant(bool(chunk), "node: storage returned no entries while scanning")
            self._note_appended(chunk)
            low = chunk[-1].index + 1

    def _lead_fresh_group(self, hard_state: HardState) -> None:
        """Lead the group's first term at once (``raftlog.raft.bootstrap``).

        Refused unless the state is exactly what a fresh bootstrap leaves: this node's
        vote in a term >= 1, nothing committed, an empty log, and this node a voter.
        """
        problems = [
            problem
            for problem, bad in (
                (f"the vote is {hard_state.vote}, not this node", hard_state.vote != self.id),
                ("the term is 0", hard_state.term < 1),
                (f"commit is {hard_state.commit}", hard_state.commit != 0),
                (f"the log holds {self._log.last_index()} entries", self._log.last_index() != 0),
                ("this node is not a voter", self.id not in self.membership.voters),
            )
            if bad
        ]
        if problems:
            detail = "; ".join(problems)
            raise RaftUsageError(f"lead_fresh_group on a group that is not fresh: {detail}")
        # Every voter's vote in this term was cast for us when the group was created: the
        # election is already won, so go straight from candidate to leader.
        self.role = Role.CANDIDATE
        self._become_leader()
        self._awaiting_first_quorum = True
        self._broadcast_append()

    # ------------------------------------------------------------------ public API

    def tick(self) -> None:
        """Advance logical time by one tick (elections, heartbeats, check-quorum)."""
        if self.role == Role.LEADER:
            self._tick_leader()
        else:
            self._tick_election()

    def campaign(self) -> None:
        """Start an election now (a host waking a quiescent group with a dead leader)."""
        self._quiesced = False
        if self.role != Role.LEADER and self._promotable():
            self._campaign(pre_vote=self.config.pre_vote, leadership_transfer=False)

    def propose(self, payload: bytes | memoryview, kind: EntryKind = EntryKind.DATA) -> int:
        """Append an entry on the leader; returns its index (commit is not yet known).

        Raises a ``ProposalDropped`` subclass when refused: ``NotLeader``,
        ``TransferInProgress``, ``GroupSealed``, ``ConfigChangePending``,
        ``UncommittedLimitExceeded``. For CONFIG_CHANGE the payload is
        ``encode_config_change(change)`` (or use ``propose_config_change``).
        """
        if kind == EntryKind.NOOP:
            raise RaftUsageError("NOOP entries are appended by the core, not proposed")
        if self.role != Role.LEADER:
            raise NotLeader(self.leader_id)
        if self._lead_transferee != NO_NODE:
            raise TransferInProgress(f"leadership is moving to node {self._lead_transferee}")
        if len(payload) > self.config.max_entry_payload_bytes:
            raise ProposalDropped(
                f"payload of {len(payload)} bytes exceeds {self.config.max_entry_payload_bytes}"
            )
        if self._seal_index and kind != EntryKind.CONFIG_CHANGE:
            raise GroupSealed(f"the group is sealed at index {self._seal_index}")
        if kind == EntryKind.CONFIG_CHANGE:
            payload = self._complete_config_change(payload)
        if (
            self._uncommitted_size_bytes > 0
            and self._uncommitted_size_bytes + len(payload)
            > self.config.max_uncommitted_entries_size_bytes
        ):
            raise UncommittedLimitExceeded(
                f"{self._uncommitted_size_bytes} uncommitted bytes already"
            )
        self._quiesced = False
        entry = Entry(self.term, self._log.last_index() + 1, kind, payload)
        self._append_as_leader([entry])
        self._uncommitted_size_bytes += len(payload)
        if kind == EntryKind.CONFIG_CHANGE:
            self._pending_config_index = entry.index
        # Replicate at the next ready(): proposals made between two Readies share appends.
        self._broadcast_pending = True
        return entry.index

    def propose_config_change(self, change: ConfigChange) -> int:
        """Propose a single-server membership change; returns the entry's index."""
        return self.propose(encode_config_change(change), kind=EntryKind.CONFIG_CHANGE)

    def read_index(self, context: bytes) -> None:
        """Ask for a linearizable read; the answer comes as a ``ReadState`` in a Ready.

        On a follower the request is forwarded to the leader. Reads pending when leadership
        changes are dropped: the caller retries after a timeout. No clock lease is used.
        """
        if len(context) > self.config.max_read_context_bytes:
            raise RaftUsageError(f"read context exceeds {self.config.max_read_context_bytes} bytes")
        self._quiesced = False
        if self.role == Role.LEADER:
            if self._reads.full():
                raise ReadIndexLimitExceeded("too many reads await a heartbeat quorum")
            self._leader_read(context, self.id)
        elif self.leader_id != NO_NODE:
            self._send(ReadIndexRequest(self.id, self.leader_id, self.term, context))
        else:
            raise NotLeader(NO_NODE)

    def transfer_leadership(self, target_id: int) -> None:
        """Hand leadership to ``target_id`` (thesis 3.10); proposals are refused meanwhile.

        The leader first brings the target's log up to date, then sends TimeoutNow. The
        transfer is abandoned after an election timeout.
        """
        if self.role != Role.LEADER:
            raise NotLeader(self.leader_id)
        if target_id == self.id:
            return
        if target_id not in self.membership.voters:
            raise RaftUsageError(f"node {target_id} is not a voter")
        if self._lead_transferee == target_id:
            return
        self._quiesced = False
        self._lead_transferee = target_id
        self._election_elapsed = 0
        progress = self._progress[target_id]
        if progress.match_index == self._log.last_index():
            self._send(TimeoutNow(self.id, target_id, self.term))
        else:
            self._send_append(target_id)

    def step(self, message: Message) -> None:
        """Feed one message received from a peer of this group."""
        if message.to_id != self.id:
            raise RaftUsageError(f"message for node {message.to_id} stepped into node {self.id}")
        if message.from_id == self.id:
            return
        was_quiesced = self._quiesced
        pending_messages = len(self._messages)
        if not isinstance(message, Heartbeat | HeartbeatResponse):
            self._quiesced = False  # anything but the heartbeat exchange wakes the group
        self._step(message)
        if isinstance(message, HeartbeatResponse) and len(self._messages) > pending_messages:
            self._quiesced = False  # the answer showed that a follower needs more
        elif isinstance(message, HeartbeatResponse):
            self._quiesced = was_quiesced and self.role == Role.LEADER

    def _step(self, message: Message) -> None:
        if message.term > self.term:
            if not self._accept_higher_term(message):
                return
        elif message.term < self.term and not self._handle_lower_term(message):
            return
        if isinstance(message, RequestPreVote | RequestVote):
            self._handle_vote_request(message)
        elif self.role == Role.LEADER:
            self._step_leader(message)
        elif self.role in (Role.CANDIDATE, Role.PRE_CANDIDATE):
            self._step_candidate(message)
        else:
            self._step_follower(message)

    def has_ready(self) -> bool:
        log = self._log
        return bool(
            self._messages
            or self._broadcast_pending
            or log.unstable.entries
            or log.unstable.snapshot is not None
            or log.has_next_committed_entries()
            or self._read_states
            or self._hard_state() != self._previous_hard_state
            or self._soft_state() != self._previous_soft_state
        )

    def ready(self) -> Ready:
        """Everything to persist, send and apply now (see the contract in ``ready.py``)."""
        if self._outstanding_ready is not None:
            raise RaftUsageError("advance() the previous Ready before asking for another")
        if self._broadcast_pending:
            self._broadcast_pending = False
            if self.role == Role.LEADER and self._can_quiesce():
                # A commit that leaves every member holding the whole log (a new group's
                # first entry, the end of a burst): the heartbeat carries the commit as
                # the append would, and quiesces the group now rather than a tick later.
                self._broadcast_heartbeat()
            elif self.role == Role.LEADER:
                self._broadcast_append()
        hard_state = self._hard_state()
        soft_state = self._soft_state()
        committed = self._log.next_committed_entries(self.config.max_committed_size_per_ready_bytes)
        previous = self._previous_hard_state
        entries = tuple(self._log.unstable.entries)
        snapshot = self._log.unstable.snapshot
        ready = Ready(
            hard_state=hard_state if hard_state != previous else None,
            soft_state=soft_state if soft_state != self._previous_soft_state else None,
            entries=entries,
            snapshot=snapshot,
            messages=tuple(self._messages),
            committed_entries=tuple(committed),
            read_states=tuple(self._read_states),
            must_sync=bool(
                entries
                or snapshot is not None
                or hard_state.term != previous.term
                or hard_state.vote != previous.vote
            ),
        )
        self._messages = []
        self._read_states = []
        if committed:
            self._log.applying_to(committed[-1].index)
            if self.role == Role.LEADER:
                released = sum(len(entry.payload) for entry in committed)
                self._uncommitted_size_bytes = max(0, self._uncommitted_size_bytes - released)
        self._previous_hard_state = hard_state
        self._previous_soft_state = soft_state
        self._fold_committed_config_history()
        self._outstanding_ready = ready
        return ready

    def advance(self, ready: Ready) -> None:
        """The application persisted, sent and applied ``ready``."""
        if ready is not self._outstanding_ready:
            raise RaftUsageError("advance() takes the Ready last returned by ready()")
        self._outstanding_ready = None
        if ready.snapshot is not None:
            index = ready.snapshot.metadata.index
            self._log.stable_snapshot_to(index)
            if index <= self._log.committed:
                self._log.applied_to(index)
        if ready.entries:
            last = ready.entries[-1]
            self._log.stable_to(last.index, last.term)
        if ready.committed_entries:
            self._log.applied_to(ready.committed_entries[-1].index)
        if self.role == Role.LEADER:
            self._update_own_match()

    def quiescent(self) -> bool:
        """Nothing to do until a message or request arrives: the host may stop ticking.

        A leader quiesces once every member holds its whole log and knows it committed; it
        says so in a last round of heartbeats, and followers that agree quiesce too. Sealed
        groups reach this state for good.
        """
        return self._quiesced and not self.has_ready()

    def sent_to_every_peer(self) -> int:
        """The last index a leader has sent to every peer (the next append to each starts
        after it, short of a rejection); the last index anywhere else, where no peer reads
        from this log. Storage may let go of what it keeps at hand up to here."""
        last_index = self._log.last_index()
        if self.role != Role.LEADER:
            return last_index
        return min(
            (
                entry.next_index - 1
                for node_id, entry in self._progress.items()
                if node_id != self.id
            ),
            default=last_index,
        )

    def statistics(self) -> RaftStatistics:
        progress: tuple[PeerProgress, ...] = ()
        if self.role == Role.LEADER:
            progress = tuple(
                PeerProgress(
                    node_id=node_id,
                    match_index=entry.match_index,
                    next_index=entry.next_index,
                    state=entry.state,
                    is_learner=entry.is_learner,
                    recent_active=entry.recent_active,
                    inflight_messages=entry.inflights.count(),
                    inflight_bytes=entry.inflights.size_bytes(),
                )
                for node_id, entry in sorted(self._progress.items())
            )
        return RaftStatistics(
            node_id=self.id,
            term=self.term,
            vote=self.vote,
            role=self.role,
            leader_id=self.leader_id,
            commit_index=self._log.committed,
            applied_index=self._log.applied,
            first_index=self._log.first_index(),
            last_index=self._log.last_index(),
            membership=self.membership,
            seal_index=self._seal_index,
            sealed=self.sealed(),
            quiescent=self.quiescent(),
            lead_transferee=self._lead_transferee,
            progress=progress,
        )

    def sealed(self) -> bool:
        return self._seal_index != 0 and self._seal_index <= self._log.committed

    @property
    def log(self) -> RaftLog:
        """The node's view of its log (read-only use: tests and the simulator's checkers)."""
        return self._log

    # ------------------------------------------------------------------ term rules

    def _accept_higher_term(self, message: Message) -> bool:
        """Section 5.1: a higher term makes us a follower, except for the cases below."""
        if isinstance(message, RequestPreVote | RequestVote):
            forced = isinstance(message, RequestVote) and message.leadership_transfer
            in_lease = (
                self.config.check_quorum
                and self.leader_id != NO_NODE
                and self._election_elapsed < self.config.election_tick
            )
            if in_lease and not forced:
                # Thesis 4.2.3: a node that hears from a leader ignores disruptive votes.
                return False
        if isinstance(message, RequestPreVote):
            return True  # a pre-vote never changes anybody's term
        if isinstance(message, RequestPreVoteResponse) and message.granted:
            return True  # the term is the one we would campaign at, not a newer leader's
        if isinstance(message, AppendEntries | Heartbeat | InstallSnapshot):
            self._become_follower(message.term, message.from_id)
        else:
            self._become_follower(message.term, NO_NODE)
        return True

    def _handle_lower_term(self, message: Message) -> bool:
        """A stale sender: tell it our term where that helps it step down; else ignore."""
        if (
            self.config.test_bug == "count_stale_votes"
            and isinstance(message, RequestVoteResponse)
            and self.role == Role.CANDIDATE
        ):
            return True
        if (self.config.check_quorum or self.config.pre_vote) and isinstance(
            message, AppendEntries | Heartbeat
        ):
            # A leader cut off from us while we moved on: our higher term deposes it.
            self._send(AppendEntriesResponse(self.id, message.from_id, self.term, 0, True))
        elif isinstance(message, RequestPreVote):
            self._send(RequestPreVoteResponse(self.id, message.from_id, self.term, False))
        return False

    # ------------------------------------------------------------------ elections

    def _handle_vote_request(self, message: RequestPreVote | RequestVote) -> None:
        pre_vote = isinstance(message, RequestPreVote)
        can_vote = (
            self.vote == message.from_id
            or (self.vote == NO_NODE and self.leader_id == NO_NODE)
            or (pre_vote and message.term > self.term)
        )
        granted = (
            can_vote
            and self._log.is_up_to_date(message.last_log_index, message.last_log_term)
            and self._covers_repair_floor(message.last_log_index, message.last_log_term)
        )
        if pre_vote:
            term = message.term if granted else self.term
            self._send(RequestPreVoteResponse(self.id, message.from_id, term, granted))
            return
        if granted:
            self._election_elapsed = 0
            self.vote = message.from_id
        self._send(RequestVoteResponse(self.id, message.from_id, self.term, granted))

    def _promotable(self) -> bool:
        """May this node campaign?

        A voter of its latest configuration may; so may a voter of its latest committed
        configuration whose removal is still uncommitted. Without the second rule, a leader
        that appended its own removal and then lost leadership could hold the longest log
        while refusing to campaign, and the remaining voters could never win its vote.
        Who campaigns never affects safety: votes are counted in the latest configuration.
        """
        if self._log.unstable.snapshot is not None or self.repairing:
            return False
        return self.id in self.membership.voters or self.id in self._committed_membership().voters

    @property
    def repairing(self) -> bool:
        """Whether this node cut corrupt entries and has not yet caught up past them.

        Such a node may have acknowledged entries it no longer holds, entries a majority
        may need it for. It follows (accepts appends) but does not campaign, and it votes
        only for a candidate whose log is at least as up to date as the log it once held:
        (last term, last index) >= (``repair_floor_term``, ``repair_floor``), where the
        floor term bounds the lost entries' terms from above, so the check is never
        weaker than the vote it would have cast before the corruption. That rule, rather
        than no vote at all, keeps a cluster whose followers all lost an unsynced tail
        in a power cut able to elect the replica that kept everything.
        """
        if self._repair_floor and self._log.last_index() >= self._repair_floor:
            self._repair_floor = 0
        return self._repair_floor > 0

    def _send_loss_notice(self, to_id: int) -> None:
        """Tell a leader that this node lost entries it may have acknowledged.

        A leader never lowers a follower's match index on an ordinary rejection (Raft's
        followers never lose what they acknowledged), so it would neither resend the lost
        entries nor, in a quiescent group, send anything at all. The notice is a rejection
        at index 0, which no ordinary append can draw (index 0 always matches), carrying
        this node's last index.
        """
        last = self._log.last_index()
        self._send(AppendEntriesResponse(self.id, to_id, self.term, 0, True, last))

    def _covers_repair_floor(self, last_log_index: int, last_log_term: int) -> bool:
        if not self.repairing:
            return True
        return (last_log_term, last_log_index) >= (self._repair_floor_term, self._repair_floor)

    def _committed_membership(self) -> Membership:
        membership = self._base_membership
        for index, config in self._config_history:
            if index > self._log.committed:
                break
            membership = config
        return membership

    def _campaign(self, pre_vote: bool, leadership_transfer: bool) -> None:
        if pre_vote:
            self._become_pre_candidate()
            campaign_term = self.term + 1
        else:
            self._become_candidate()
            campaign_term = self.term
        self._votes[self.id] = True
        if self._poll() != VoteResult.PENDING:
            return
        last_index = self._log.last_index()
        last_term = self._log.last_term()
        for voter in sorted(self.membership.voters - {self.id}):
            if pre_vote:
                self._send(RequestPreVote(self.id, voter, campaign_term, last_index, last_term))
            else:
                self._send(
                    RequestVote(
                        self.id, voter, campaign_term, last_index, last_term, leadership_transfer
                    )
                )

    def _poll(self) -> VoteResult:
        result = vote_result(self.membership.voters, self._votes)
        if result == VoteResult.WON:
            if self.role == Role.PRE_CANDIDATE:
                self._campaign(pre_vote=False, leadership_transfer=False)
            else:
                self._become_leader()
                self._broadcast_append()
        elif result == VoteResult.LOST:
            self._become_follower(self.term, NO_NODE)
        return result

    def _step_candidate(self, message: Message) -> None:
        if isinstance(message, AppendEntries):
            self._become_follower(message.term, message.from_id)
            self._handle_append(message)
        elif isinstance(message, Heartbeat):
            self._become_follower(message.term, message.from_id)
            self._handle_heartbeat(message)
        elif isinstance(message, InstallSnapshot):
            self._become_follower(message.term, message.from_id)
            self._handle_install_snapshot(message)
        elif isinstance(message, RequestPreVoteResponse):
            if self.role == Role.PRE_CANDIDATE and message.term == self.term + 1:
                self._votes[message.from_id] = message.granted
                self._poll()
            elif self.role == Role.PRE_CANDIDATE and not message.granted:
                self._votes[message.from_id] = False
                self._poll()
        elif isinstance(message, RequestVoteResponse) and self.role == Role.CANDIDATE:
            self._votes[message.from_id] = message.granted
            self._poll()

    # ------------------------------------------------------------------ role changes

    def _reset(self, term: int) -> None:
        if self.config.test_bug == "count_stale_votes" and self.role == Role.CANDIDATE:
            self._stale_votes = {voter: True for voter, granted in self._votes.items() if granted}
        if term != self.term:
            self.term = term
            self.vote = NO_NODE
        self.leader_id = NO_NODE
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        tick = self.config.election_tick
        self._randomized_election_timeout = tick + self.config.random_source.randint(0, tick - 1)
        self._lead_transferee = NO_NODE
        self._votes = {}
        self._progress = {}
        self._pending_config_index = 0
        self._uncommitted_size_bytes = 0
        self._reads.clear()
        self._quiesced = False
        self._awaiting_first_quorum = False

    def _become_follower(self, term: int, leader_id: int) -> None:
        self._reset(term)
        self.leader_id = leader_id
        self.role = Role.FOLLOWER

    def _become_pre_candidate(self) -> None:
        """Section 9.6 of the thesis: no term change, no vote change, no progress reset."""
        invariant(self.role != Role.LEADER, "node: leader cannot become pre-candidate")
        self._votes = {}
        self.leader_id = NO_NODE
        self.role = Role.PRE_CANDIDATE

    def _become_candidate(self) -> None:
        invariant(self.role != Role.LEADER, "node: leader cannot become candidate")
        self._reset(self.term + 1)
        if self.config.test_bug == "count_stale_votes":
            # Deliberate bug: votes granted for an earlier candidacy count again.
            self._votes = dict(self._stale_votes)
        self.vote = self.id
        self.role = Role.CANDIDATE

    def _become_leader(self) -> None:
        invariant(self.role == Role.CANDIDATE, "node: only a candidate becomes leader")
        self._reset(self.term)
        self.leader_id = self.id
        self.role = Role.LEADER
        last_index = self._log.last_index()
        for member in sorted(self.membership.members()):
            self._progress[member] = self._new_progress(member, last_index)
        own = self._progress.get(self.id)
        if own is not None:
            own.match_index = self._log.persisted_index()
            own.become_replicate()
            own.recent_active = True
        # Conservatively treat anything already in the log as a possibly pending change.
        self._pending_config_index = last_index
        # Section 5.4.2 / 8: commit entries of earlier terms by committing one of ours.
        self._append_as_leader([Entry(self.term, last_index + 1, EntryKind.NOOP)])

    def _new_progress(self, node_id: int, last_index: int) -> Progress:
        return Progress(
            match_index=0,
            next_index=last_index + 1,
            inflights=Inflights(self.config.max_inflight_messages, self.config.max_inflight_bytes),
            is_learner=node_id in self.membership.learners,
        )

    # ------------------------------------------------------------------ timers

    def _tick_election(self) -> None:
        self._election_elapsed += 1
        if self.repairing and self._election_elapsed >= self._randomized_election_timeout:
            # No leader heard from: tell every member (waking a quiescent leader), since
            # this node may not campaign itself.
            self._election_elapsed = 0
            for node_id in sorted(self.membership.members() - {self.id}):
                self._send_loss_notice(node_id)
            return
        if self._promotable() and self._election_elapsed >= self._randomized_election_timeout:
            self._election_elapsed = 0
            self._campaign(pre_vote=self.config.pre_vote, leadership_transfer=False)

    def _tick_leader(self) -> None:
        self._heartbeat_elapsed += 1
        self._election_elapsed += 1
        if self._election_elapsed >= self.config.election_tick:
            self._election_elapsed = 0
            if self.config.check_quorum:
                active = self._quorum_active()
                if not active and not self._awaiting_first_quorum:
                    self._become_follower(self.term, NO_NODE)
                    return
                # An elected leader heard a quorum in its votes. A fresh group's first
                # leader has not: its followers may open the group seconds after it
                # (thousands of groups created at once), and stepping down would only
                # make it campaign in the next term; nobody else can lead this one.
                self._awaiting_first_quorum = self._awaiting_first_quorum and not active
                for node_id, progress in self._progress.items():
                    if node_id != self.id:
                        progress.recent_active = False
            self._lead_transferee = NO_NODE
        interval = self.config.heartbeat_tick
        if self._awaiting_first_quorum:
            # Its followers are still opening the group (it was created on every node at
            # once): until a quorum answers, probe at half an election timeout, not every
            # tick; with thousands of new groups, faster probes are mostly dropped by
            # nodes that have not opened their copy yet, and cost them the decoding.
            interval = max(interval, self.config.election_tick // 2)
        if self._heartbeat_elapsed >= interval:
            self._heartbeat_elapsed = 0
            self._broadcast_heartbeat()

    def _note_active(self, progress: Progress) -> None:
        progress.recent_active = True
        if self._awaiting_first_quorum and self._quorum_active():
            self._awaiting_first_quorum = False

    def _quorum_active(self) -> bool:
        def active(node_id: int) -> bool:
            if node_id == self.id:
                return True
            progress = self._progress.get(node_id)
            return progress is not None and progress.recent_active

        return has_quorum(self.membership.voters, active)

    # ------------------------------------------------------------------ leader

    def _step_leader(self, message: Message) -> None:
        if isinstance(message, AppendEntriesResponse):
            self._handle_append_response(message)
        elif isinstance(message, HeartbeatResponse):
            self._handle_heartbeat_response(message)
        elif isinstance(message, InstallSnapshotResponse):
            self._handle_install_snapshot_response(message)
        elif isinstance(message, ReadIndexRequest) and not self._reads.full():
            self._leader_read(message.context, message.from_id)

    def _append_as_leader(self, entries: list[Entry]) -> None:
        self._log.append(entries)
        self._note_appended(entries)

    def _send(self, message: Message) -> None:
        self._messages.append(message)

    def _broadcast_append(self) -> None:
        """Send every peer what it lacks: pipelined up to its window when replicating."""
        for node_id in sorted(self._progress):
            if node_id == self.id:
                continue
            sent = self._send_append(node_id)
            while sent and self._progress[node_id].state == ProgressState.REPLICATE:
                sent = self._send_append(node_id, send_if_empty=False)

    def _send_append(self, node_id: int, send_if_empty: bool = True) -> bool:
        """Send the next append to ``node_id`` if its window allows; True if sent."""
        progress = self._progress[node_id]
        if progress.is_paused():
            return False
        last_index = self._log.last_index()
        if progress.next_index > last_index + 1:
            progress.next_index = last_index + 1
        previous_index = progress.next_index - 1
        previous_term = self._log.maybe_term(previous_index)
        if previous_term is None:
            return self._send_snapshot(node_id, progress)
        try:
            entries = self._log.entries(progress.next_index, self.config.max_size_per_message_bytes)
        except LogCompacted:
            return self._send_snapshot(node_id, progress)
        if not entries and not send_if_empty:
            return False
        self._send(
            AppendEntries(
                self.id,
                node_id,
                self.term,
                previous_index,
                previous_term,
                self._log.committed,
                tuple(entries),
            )
        )
        if entries:
            progress.sent_entries(entries[-1].index, entries_size_bytes(entries))
        elif progress.state == ProgressState.PROBE:
            progress.probe_sent = True
        return True

    def _send_snapshot(self, node_id: int, progress: Progress) -> bool:
        if not progress.recent_active:
            return False
        try:
            snapshot = self._log.snapshot()
        except SnapshotTemporarilyUnavailable:
            return False
        invariant(snapshot.metadata.index > 0, "node: snapshot needed but storage has none")
        progress.become_snapshot(snapshot)
        self._send_snapshot_chunk(node_id, progress)
        return True

    def _send_snapshot_chunk(self, node_id: int, progress: Progress) -> None:
        transfer = progress.snapshot_transfer
        invariant(transfer is not None, "node: snapshot chunk without a transfer")
        assert transfer is not None  # for the type checker; the invariant above guards it
        snapshot = transfer.snapshot
        offset = transfer.acknowledged_offset_bytes
        chunk = snapshot.data[offset : offset + self.config.snapshot_chunk_size_bytes]
        metadata = snapshot.metadata
        self._send(
            InstallSnapshot(
                self.id,
                node_id,
                self.term,
                metadata.index,
                metadata.term,
                tuple(sorted(metadata.membership.voters)),
                tuple(sorted(metadata.membership.learners)),
                metadata.seal_index,
                len(snapshot.data),
                offset,
                chunk,
            )
        )

    def _broadcast_heartbeat(self) -> None:
        quiesce = self._can_quiesce()
        for node_id in sorted(self._progress):
            if node_id == self.id:
                continue
            progress = self._progress[node_id]
            commit = min(progress.match_index, self._log.committed)
            self._send(
                Heartbeat(self.id, node_id, self.term, commit, self._reads.sequence, quiesce)
            )
        if quiesce:
            self._quiesced = True

    def _can_quiesce(self) -> bool:
        """Every member holds the whole log, knows it committed, and nothing else waits."""
        log = self._log
        if (
            self._lead_transferee != NO_NODE
            or self._reads.size() > 0
            or log.committed != log.last_index()
            or log.persisted_index() != log.last_index()
        ):
            return False
        return all(
            progress.match_index == log.last_index()
            and progress.state == ProgressState.REPLICATE
            and progress.inflights.count() == 0
            for progress in self._progress.values()
        )

    def _handle_append_response(self, message: AppendEntriesResponse) -> None:
        progress = self._progress.get(message.from_id)
        if progress is None:
            return
        self._note_active(progress)
        if message.rejected and message.index == 0:
            # A loss notice (see `_send_loss_notice`): replicate again from what it holds.
            if message.reject_hint_index < progress.match_index:
                progress.forget_beyond(message.reject_hint_index)
            if progress.match_index < self._log.last_index():
                self._send_append(message.from_id)
            return
        if message.rejected:
            next_probe_index = message.reject_hint_index
            if message.reject_hint_term > 0:
                next_probe_index, _ = self._log.find_conflict_by_term(
                    message.reject_hint_index, message.reject_hint_term
                )
            if progress.maybe_decrease_to(message.index, next_probe_index):
                if progress.state == ProgressState.REPLICATE:
                    progress.become_probe()
                self._send_append(message.from_id)
            return
        if message.index > self._log.last_index():
            return  # cannot acknowledge what we never sent: a stale or forged response
        was_paused = progress.is_paused()
        if progress.maybe_update(message.index):
            if progress.state == ProgressState.PROBE:
                progress.become_replicate()
            elif (
                progress.state == ProgressState.SNAPSHOT
                and progress.match_index >= progress.pending_snapshot_index
            ):
                progress.become_probe()
                progress.become_replicate()
            elif progress.state == ProgressState.REPLICATE:
                progress.inflights.free_up_to(message.index)
            committed = self._maybe_commit()
            if committed:
                self._on_leader_commit()
            if committed and self.config.broadcast_commit:
                self._broadcast_pending = True  # one commit broadcast per Ready, not per ack
            elif was_paused and self.role == Role.LEADER:
                self._send_append(message.from_id)
            while self.role == Role.LEADER and message.from_id in self._progress:
                if not self._send_append(message.from_id, send_if_empty=False):
                    break
            if (
                message.from_id == self._lead_transferee
                and progress.match_index == self._log.last_index()
            ):
                self._send(TimeoutNow(self.id, message.from_id, self.term))

    def _handle_heartbeat_response(self, message: HeartbeatResponse) -> None:
        progress = self._progress.get(message.from_id)
        if progress is None:
            return
        self._note_active(progress)
        progress.probe_sent = False
        if progress.state == ProgressState.REPLICATE and progress.inflights.full():
            progress.inflights.free_first()
        if progress.state == ProgressState.SNAPSHOT:
            if progress.snapshot_transfer is not None:
                self._send_snapshot_chunk(message.from_id, progress)
        elif progress.match_index < self._log.last_index():
            self._send_append(message.from_id)
        if message.read_sequence > progress.read_sequence_acknowledged:
            progress.read_sequence_acknowledged = message.read_sequence
            self._release_confirmed_reads()

    def _handle_install_snapshot_response(self, message: InstallSnapshotResponse) -> None:
        progress = self._progress.get(message.from_id)
        if progress is None:
            return
        progress.recent_active = True
        transfer = progress.snapshot_transfer
        if (
            progress.state != ProgressState.SNAPSHOT
            or transfer is None
            or transfer.snapshot.metadata.index != message.snapshot_index
            or message.next_offset_bytes > len(transfer.snapshot.data)
        ):
            return
        transfer.acknowledged_offset_bytes = message.next_offset_bytes
        self._send_snapshot_chunk(message.from_id, progress)

    def _maybe_commit(self) -> bool:
        def match(node_id: int) -> int:
            progress = self._progress.get(node_id)
            return progress.match_index if progress is not None else 0

        index = committed_index(self.membership.voters, match)
        if self.config.test_bug == "commit_previous_term_by_count":
            if index > self._log.committed:
                self._log.commit_to(index)
                return True
            return False
        return self._log.maybe_commit(index, self.term)

    def _on_leader_commit(self) -> None:
        if self._committed_in_current_term():
            for context, requester_id in self._reads.take_deferred():
                self._leader_read(context, requester_id)
        latest_config_index = self._config_history[-1][0] if self._config_history else 0
        if self.id not in self.membership.voters and latest_config_index <= self._log.committed:
            # Thesis 4.2.2: a removed leader steps down once its removal is committed;
            # first tell the followers so that they can commit it too.
            self._broadcast_append()
            self._become_follower(self.term, NO_NODE)

    def _update_own_match(self) -> None:
        own = self._progress.get(self.id)
        if own is None:
            return
        if own.maybe_update(self._log.persisted_index()) and self._maybe_commit():
            self._on_leader_commit()
            if self.config.broadcast_commit:
                self._broadcast_pending = True

    def _committed_in_current_term(self) -> bool:
        return self._log.maybe_term(self._log.committed) == self.term

    def _complete_config_change(self, payload: bytes) -> bytes:
        """Check the single-server rules and write the resulting membership into the entry."""
        record = decode_config_change_record(payload)
        if self._pending_config_index > self._log.committed:
            raise ConfigChangePending("another config change is not committed yet")
        if not self._committed_in_current_term():
            raise ConfigChangePending("the leader has not committed an entry of its term yet")
        membership = self.membership.apply(record.change)
        return encode_config_change_record(ConfigChangeRecord(record.change, membership))

    def _leader_read(self, context: bytes, requester_id: int) -> None:
        if not self._committed_in_current_term():
            self._reads.defer(context, requester_id)
            return
        if self.membership.voters == {self.id}:
            self._deliver_read(ReadState(self._log.committed, context), requester_id)
            return
        self._reads.register(self._log.committed, context, requester_id)
        self._broadcast_heartbeat()

    def _release_confirmed_reads(self) -> None:
        def confirmed(sequence: int) -> bool:
            def acknowledged(node_id: int) -> bool:
                if node_id == self.id:
                    return True
                progress = self._progress.get(node_id)
                return progress is not None and progress.read_sequence_acknowledged >= sequence

            return has_quorum(self.membership.voters, acknowledged)

        for read in self._reads.release_confirmed(confirmed):
            self._deliver_read(ReadState(read.index, read.context), read.requester_id)

    def _deliver_read(self, state: ReadState, requester_id: int) -> None:
        if requester_id == self.id:
            self._read_states.append(state)
        else:
            self._send(
                ReadIndexResponse(self.id, requester_id, self.term, state.index, state.context)
            )

    # ------------------------------------------------------------------ follower

    def _step_follower(self, message: Message) -> None:
        if isinstance(message, AppendEntries):
            self._election_elapsed = 0
            self.leader_id = message.from_id
            self._handle_append(message)
            if self.repairing:
                self._send_loss_notice(message.from_id)
        elif isinstance(message, Heartbeat):
            self._election_elapsed = 0
            self.leader_id = message.from_id
            self._handle_heartbeat(message)
            if self.repairing:
                self._send_loss_notice(message.from_id)
        elif isinstance(message, InstallSnapshot):
            self._election_elapsed = 0
            self.leader_id = message.from_id
            self._handle_install_snapshot(message)
        elif isinstance(message, TimeoutNow):
            if self._promotable():
                self._campaign(pre_vote=False, leadership_transfer=True)
        elif isinstance(message, ReadIndexResponse):
            self._read_states.append(ReadState(message.index, message.context))
        # A ReadIndexRequest reaching a follower came from a stale view of who leads: the
        # requester times out and retries. Responses meant for a leader are stale too.

    def _handle_append(self, message: AppendEntries) -> None:
        log = self._log
        if message.previous_log_index < log.committed:
            self._send(AppendEntriesResponse(self.id, message.from_id, self.term, log.committed))
            return
        entries = list(message.entries)
        conflict = log.find_conflict(entries) if entries else 0
        if conflict and log.match_term(message.previous_log_index, message.previous_log_term):
            self._note_truncated(conflict)
        last_new = log.maybe_append(
            message.previous_log_index, message.previous_log_term, message.leader_commit, entries
        )
        if last_new is not None:
            if conflict:
                self._note_appended(entries[conflict - entries[0].index :])
            self._send(AppendEntriesResponse(self.id, message.from_id, self.term, last_new))
            return
        hint_index = min(message.previous_log_index, log.last_index())
        hint_index, hint_term = log.find_conflict_by_term(hint_index, message.previous_log_term)
        self._send(
            AppendEntriesResponse(
                self.id,
                message.from_id,
                self.term,
                message.previous_log_index,
                True,
                hint_index,
                hint_term,
            )
        )

    def _handle_heartbeat(self, message: Heartbeat) -> None:
        log = self._log
        if message.commit > log.last_index() and not self.repairing:
            # The leader sends min(our match, its commit): it believes we hold entries we
            # do not (a tail lost in a way that looked torn, say a truncated file). Ask it
            # to resend them; without this a quiescent sealed group would never do so.
            self._send_loss_notice(message.from_id)
        log.commit_to(min(message.commit, log.last_index()))
        self._send(HeartbeatResponse(self.id, message.from_id, self.term, message.read_sequence))
        self._quiesced = (
            message.quiesce
            and log.committed == log.last_index()
            and message.commit == log.last_index()
        )

    def _handle_install_snapshot(self, message: InstallSnapshot) -> None:
        if message.total_size_bytes > self.config.max_snapshot_size_bytes:
            return  # refuse to buffer it; the operator must raise the bound
        assembly = self._snapshot_assembly
        if message.offset_bytes == 0 and (assembly is None or not assembly.matches(message)):
            assembly = SnapshotAssembly(
                message.snapshot_index, message.snapshot_term, message.total_size_bytes
            )
            self._snapshot_assembly = assembly
        if assembly is None or not assembly.accept(message):
            next_offset = (
                len(assembly.data) if assembly is not None and assembly.matches(message) else 0
            )
            self._send(
                InstallSnapshotResponse(
                    self.id, message.from_id, self.term, message.snapshot_index, next_offset
                )
            )
            return
        if not assembly.complete():
            self._send(
                InstallSnapshotResponse(
                    self.id,
                    message.from_id,
                    self.term,
                    message.snapshot_index,
                    len(assembly.data),
                )
            )
            return
        self._snapshot_assembly = None
        try:
            membership = Membership(frozenset(message.voters), frozenset(message.learners))
        except ValueError:
            return  # a malformed membership: drop, the leader retries
        snapshot = assembly.snapshot(membership, message.seal_index)
        index = self._log.last_index() if self._restore(snapshot) else self._log.committed
        self._send(AppendEntriesResponse(self.id, message.from_id, self.term, index))

    def _restore(self, snapshot: Snapshot) -> bool:
        metadata = snapshot.metadata
        if metadata.index <= self._log.committed:
            return False
        if self._log.match_term(metadata.index, metadata.term):
            # Our log already holds the snapshot point: just learn that it is committed.
            self._log.commit_to(metadata.index)
            return False
        self._log.restore(snapshot)
        self._base_membership = metadata.membership
        self._config_history = []
        self._seal_index = metadata.seal_index
        self.membership = metadata.membership
        return True

    # ------------------------------------------------------------------ membership, seal

    def _note_appended(self, entries: list[Entry]) -> None:
        changed = False
        for entry in entries:
            if entry.kind == EntryKind.CONFIG_CHANGE:
                record = decode_config_change_record(entry.payload)
                self._config_history.append((entry.index, record.membership))
                changed = True
            elif entry.kind == EntryKind.SEAL and self._seal_index == 0:
                self._seal_index = entry.index
        if changed:
            self._set_membership(self._config_history[-1][1])

    def _note_truncated(self, from_index: int) -> None:
        """Entries at and after ``from_index`` are being replaced: undo their effects."""
        invariant(from_index > self._log.committed, "node: truncating the committed prefix")
        changed = False
        while self._config_history and self._config_history[-1][0] >= from_index:
            self._config_history.pop()
            changed = True
        if self._seal_index >= from_index:
            self._seal_index = 0
        if changed:
            latest = self._config_history[-1][1] if self._config_history else None
            self._set_membership(latest if latest is not None else self._base_membership)

    def _fold_committed_config_history(self) -> None:
        """Committed changes are never undone: fold them into the base to bound the list."""
        committed = self._log.committed
        while self._config_history and self._config_history[0][0] <= committed:
            self._base_membership = self._config_history.pop(0)[1]

    def _set_membership(self, membership: Membership) -> None:
        self.membership = membership
        if self.role != Role.LEADER:
            return
        last_index = self._log.last_index()
        for node_id in sorted(membership.members()):
            if node_id not in self._progress:
                self._progress[node_id] = self._new_progress(node_id, last_index)
            self._progress[node_id].is_learner = node_id in membership.learners
        for node_id in sorted(set(self._progress) - membership.members()):
            del self._progress[node_id]
        if self._lead_transferee not in membership.voters:
            self._lead_transferee = NO_NODE

    # ------------------------------------------------------------------ state

    def _hard_state(self) -> HardState:
        return HardState(self.term, self.vote, self._log.committed)

    def _soft_state(self) -> SoftState:
        return SoftState(self.leader_id, self.role)
