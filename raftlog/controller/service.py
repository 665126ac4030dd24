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


class ControllerUnavailable(MetadataError):
    """This node cannot get the command committed now (not the leader, or timed out)."""


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
        effect in the local state.
        """
        group = self.group
        if group is None:
            raise ControllerUnavailable(NOT_CONTROLLER, "the controller is not running here")
        if group.is_leader:
            _index, result = await self._execute_as_leader(command, timeout_s)
            return result
        if self.forward is None or not group.leader_id:
            raise ControllerUnavailable(NOT_CONTROLLER, "no controller leader is known")
        with trio.fail_after(timeout_s):
            reply = await self.forward(group.leader_id, command)
            if "error_code" in reply:
                raise MetadataError(int(reply["error_code"]), str(reply["message"]))
            while group.applied_index < int(reply["index"]):
                await trio.sleep(0.005)
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
            raise ControllerUnavailable(NOT_CONTROLLER, "this node is not the controller leader")
        index, term = group.propose(command_batch(command))
        with trio.move_on_after(timeout_s):
            try:
                await group.wait_committed(index, term)
            except ProposalLost:
                raise ControllerUnavailable(NOT_CONTROLLER, "controller leadership moved") from None
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
