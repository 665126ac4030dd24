"""The controller on this node: the metadata state machine behind its own Raft group.

Commands are proposed to the controller group and answered once committed and applied,
so a topic exists for a client only after a majority of controller replicas hold it. Every
replica applies every committed command to its own `MetadataState`; listeners (the node,
which opens and closes segment groups) hear about each change after it is applied.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs
import trio

from raftlog import logs
from raftlog.controller.metadata import (
    TOPIC_ALREADY_EXISTS,
    MetadataError,
    MetadataState,
    TopicInfo,
    decode_command,
    encode_command,
)
from raftlog.protocol.records import Record, RecordBatchView, build_batch
from raftlog.raft.entry import Entry, EntryKind
from raftlog.replica.group import ProposalLost, ReplicaGroup

NOT_CONTROLLER = 41
REQUEST_TIMED_OUT = 7


RETRY_DELAY_S_MIN = 0.05
RETRY_DELAY_S_MAX = 0.5


class ControllerUnavailable(MetadataError):
    """This node cannot get the command committed now (not the leader, or timed out)."""


class NoControllerLeader(ControllerUnavailable):
    """No controller leader can take the command now, and it was not committed: an election
    is under way (none known, the one known is unreachable or lost its leadership)."""

    def __init__(self, message: str) -> None:
        super().__init__(NOT_CONTROLLER, message)


@attrs.define(eq=False)
class Controller:
    """Proposes metadata commands and applies committed ones to the local state."""

    state: MetadataState = attrs.field(factory=MetadataState)
    group: ReplicaGroup | None = None
    listeners: list[Callable[[dict[str, Any], Any], None]] = attrs.field(factory=list)
    forward: Callable[[int, dict[str, Any]], Awaitable[dict[str, Any]]] | None = None
    """Sends a command to the controller leader (by node id) and returns its reply."""
    _results: dict[int, Any] = attrs.field(factory=dict)

    def apply_entries(self, entries: Sequence[Entry]) -> None:
        """The controller group's state machine: apply committed DATA entries in order."""
        for entry in entries:
            if entry.kind is not EntryKind.DATA:
                continue
            command = decode_command(_command_bytes(entry.payload))
            try:
                result: Any = self.state.apply(command)
            except MetadataError as error:
                result = error
                logs.event(
                    "metadata_command_refused",
                    logging.INFO,
                    command=command.get("type"),
                    reason=str(error),
                )
            self._results[entry.index] = result
            if not isinstance(result, MetadataError):
                for listener in self.listeners:
                    listener(command, result)
        # Results are read right after the wait returns; keep only the recent ones.
        while len(self._results) > 10_000:
            self._results.pop(next(iter(self._results)))

    async def execute(self, command: dict[str, Any], timeout_s: float) -> Any:
        """Commit `command`, then return what applying it returned (or raise its error).

        On a node that is not the controller leader the command is forwarded to the leader,
        and the answer waits until this node has applied it too, so the caller sees its
        effect in the local state. While no leader can take it (the leader died and the
        election takes a few election timeouts) the command waits for one, up to
        `timeout_s`, as Kafka's forwarding to its controller does: a client's CreateTopics
        sent just after a crash succeeds rather than failing with NOT_CONTROLLER.
        """
        deadline = trio.current_time() + timeout_s
        delay_s = RETRY_DELAY_S_MIN
        while True:
            try:
                return await self._execute_once(command, deadline - trio.current_time())
            except NoControllerLeader as error:
                if trio.current_time() + delay_s >= deadline:
                    raise
                logs.event(
                    "metadata_command_waits_for_leader",
                    logging.DEBUG,
                    command=command.get("type"),
                    reason=str(error),
                )
            except MetadataError as error:
                created = self._created_by(command)
                if error.error_code != TOPIC_ALREADY_EXISTS or created is None:
                    raise
                # An earlier attempt reached the leader (its answer was lost with the
                # connection) and created this very topic: the create succeeded.
                return created
            await trio.sleep(delay_s)
            delay_s = min(delay_s * 2, RETRY_DELAY_S_MAX)

    def _created_by(self, command: dict[str, Any]) -> TopicInfo | None:
        """The topic `command` created, if it is a create_topic whose topic exists with its id."""
        if command.get("type") != "create_topic":
            return None
        topic = self.state.topics.get(command["name"])
        return topic if topic is not None and topic.topic_id == str(command["topic_id"]) else None

    async def _execute_once(self, command: dict[str, Any], timeout_s: float) -> Any:
        group = self.group
        if group is None:
            raise ControllerUnavailable(NOT_CONTROLLER, "the controller is not running here")
        if group.is_leader:
            _index, result = await self._execute_as_leader(command, timeout_s)
            return result
        if self.forward is None or not group.leader_id:
            raise NoControllerLeader("no controller leader is known")
        leader, reply = group.leader_id, None
        try:
            with trio.fail_after(max(timeout_s, 0.001)):
                reply = await self.forward(leader, command)
                if "error_code" in reply:
                    if int(reply["error_code"]) == NOT_CONTROLLER:
                        raise NoControllerLeader(str(reply["message"]))
                    raise MetadataError(int(reply["error_code"]), str(reply["message"]))
                while group.applied_index < int(reply["index"]):
                    await trio.sleep(0.005)
        except trio.TooSlowError:
            # Answered as Kafka's own forwarding answers a timeout, never by dropping the
            # client's connection; and said in the log, which step it was stuck at.
            waited_for = "the leader's answer" if reply is None else "applying it here"
            logs.event(
                "metadata_command_timed_out",
                logging.WARNING,
                command=command.get("type"),
                leader=leader,
                waited_for=waited_for,
                entry=-1 if reply is None else int(reply["index"]),
                applied=group.applied_index,
                leader_now=group.leader_id,
            )
            raise ControllerUnavailable(
                REQUEST_TIMED_OUT, f"the metadata command timed out waiting for {waited_for}"
            ) from None
        if command["type"] == "create_topic":
            return self.state.topics[command["name"]]
        return reply.get("result")

    async def execute_for_peer(self, command: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Run a command a peer forwarded; answer the entry index and a JSON-able result."""
        try:
            index, result = await self._execute_as_leader(command, timeout_s)
        except MetadataError as error:
            return {"error_code": error.error_code, "message": str(error)}
        return {"index": index, "result": result if isinstance(result, int) else None}

    async def _execute_as_leader(
        self, command: dict[str, Any], timeout_s: float
    ) -> tuple[int, Any]:
        group = self.group
        if group is None or not group.is_leader:
            raise NoControllerLeader("this node is not the controller leader")
        index, term = group.propose(command_batch(command))
        with trio.move_on_after(timeout_s):
            try:
                await group.wait_committed(index, term)
            except ProposalLost:
                raise NoControllerLeader("controller leadership moved") from None
            result = self._results.pop(index, None)
            if isinstance(result, MetadataError):
                raise result
            return index, result
        raise ControllerUnavailable(REQUEST_TIMED_OUT, "the metadata command timed out")

    async def create_topic(
        self,
        name: str,
        assignments: list[list[int]],
        replication_factor: int,
        configs: dict[str, str],
        timeout_s: float,
    ) -> TopicInfo:
        command = {
            "type": "create_topic",
            "name": name,
            "topic_id": uuid.uuid4().hex,
            "partitions": len(assignments),
            "replication_factor": replication_factor,
            "assignments": assignments,
            "configs": configs,
        }
        result: TopicInfo = await self.execute(command, timeout_s)
        return result


def command_batch(command: dict[str, Any]) -> bytes:
    """A metadata command as a one-record Kafka batch (the controller's log is a log too)."""
    return build_batch([Record(encode_command(command))])


def _command_bytes(batch: bytes) -> bytes:
    records = RecordBatchView(memoryview(batch)).records()
    if len(records) != 1 or records[0].value is None:
        raise MetadataError(0, "a controller batch holds exactly one command record")
    return bytes(records[0].value)
