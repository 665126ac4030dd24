"""Joining a cluster through a seed: the `cluster.join` RPC, its messages, the client loop.

A node started with `--seeds` (and not listed in `--peers`) dials each seed by address
(`Transport.identify`: it does not know their ids), and calls `cluster.join` with its id
and addresses. The seed has the controller register it (`join_node`, forwarded to the
controller leader like every metadata command; refusals are decided there, in the state
machine) and answers with every member's internal address and the controller group's
bootstrap membership. From then on the node is a member like any other: the controller
leader makes it a learner of the controller group, placement and re-replication may put
replicas on it, and the other members dial it at the address the registry now carries.

A node restarted on its data dir first tries the members it remembers (by id), then the
seeds, so the seed it used first may be down. It gives up, with the reason for each
address it tried, after `--join-timeout-ms`; a refusal (a duplicate id, another
cluster's data dir) ends the attempt at once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import attrs
import trio

from raftlog import logs
from raftlog.config import HostPort
from raftlog.controller.metadata import NODES_MAX
from raftlog.node.address_book import Address, check_address
from raftlog.transport import RpcError, SameNodeId, Transport, TransportError

CLUSTER_JOIN = "cluster.join"
JOIN_REQUEST_BYTES_MAX = 4096
JOIN_ANSWER_BYTES_MAX = 512 * 1024
"""NODES_MAX members with hosts of up to 253 characters."""
FAILURES_SHOWN_MAX = 16
"""A JoinFailed message names at most this many addresses and what each one met."""
IDENTIFY_TIMEOUT_S = 5.0
JOIN_CALL_TIMEOUT_S = 40.0
"""Longer than a forwarded controller command may take, so the seed's own answer (a
success or its error) arrives rather than a transport timeout."""
ROUND_PAUSE_S = 0.5
"""Pause between two rounds over every seed and remembered member."""


class JoinRefused(Exception):
    """The cluster refused this node (the reason says why); retrying would not help."""


class JoinDeferred(ValueError):
    """A member answered but cannot register nodes now (it is starting, or the controller
    has no leader): worth another round."""


class JoinFailed(Exception):
    """No seed and no remembered member answered in time; lists what each attempt met."""


@attrs.frozen
class JoinRequest:
    node_id: int
    internal: Address
    kafka: Address
    rejoin: bool = False
    """This node restarts on a data dir that joined before (it names `cluster_id`)."""
    cluster_id: str | None = None

    def encode(self) -> bytes:
        return json.dumps(
            {
                "node_id": self.node_id,
                "internal_host": self.internal[0],
                "internal_port": self.internal[1],
                "kafka_host": self.kafka[0],
                "kafka_port": self.kafka[1],
                "rejoin": self.rejoin,
                "cluster_id": self.cluster_id,
            }
        ).encode()

    @classmethod
    def decode(cls, payload: bytes) -> JoinRequest:
        """Raise ValueError unless `payload` is a well-formed, bounded join request."""
        document = _json_object(payload, JOIN_REQUEST_BYTES_MAX, "join request")
        node_id = document.get("node_id")
        if not isinstance(node_id, int) or isinstance(node_id, bool):
            raise ValueError(f"bad node id {node_id!r}")
        cluster_id = document.get("cluster_id")
        if cluster_id is not None and not isinstance(cluster_id, str):
            raise ValueError(f"bad cluster id {cluster_id!r}")
        return cls(
            node_id,
            check_address(document.get("internal_host"), document.get("internal_port")),
            check_address(document.get("kafka_host"), document.get("kafka_port")),
            document.get("rejoin") is True,
            cluster_id,
        )

    def command(self) -> dict[str, object]:
        """The controller command that registers the node (`join_node`)."""
        return {
            "type": "join_node",
            "node_id": self.node_id,
            "internal_host": self.internal[0],
            "internal_port": self.internal[1],
            "kafka_host": self.kafka[0],
            "kafka_port": self.kafka[1],
            "rejoin": self.rejoin,
            "cluster_id": self.cluster_id,
        }


@attrs.frozen
class JoinAnswer:
    cluster_id: str | None
    members: dict[int, Address]
    """Every registered member's internal address, the joiner included."""
    controller_voters: tuple[int, ...]
    controller_learners: tuple[int, ...]

    def encode(self) -> bytes:
        return json.dumps(
            {
                "cluster_id": self.cluster_id,
                "members": [[node, host, port] for node, (host, port) in self.members.items()],
                "controller_voters": list(self.controller_voters),
                "controller_learners": list(self.controller_learners),
            }
        ).encode()

    @classmethod
    def decode(cls, payload: bytes) -> JoinAnswer:
        """The answer, or JoinRefused (the seed's refusal), or ValueError (malformed)."""
        document = _json_object(payload, JOIN_ANSWER_BYTES_MAX, "join answer")
        if "refused" in document:
            raise JoinRefused(str(document["refused"])[:1000])
        if "retry" in document:
            reason = str(document["retry"])[:1000]
            raise JoinDeferred(f"it cannot register nodes now: {reason}")
        members = document.get("members")
        voters = document.get("controller_voters")
        learners = document.get("controller_learners")
        lists = (members, voters, learners)
        if not all(isinstance(item, list) and len(item) <= NODES_MAX for item in lists):
            raise ValueError(f"a join answer lists at most {NODES_MAX} members")
        addresses: dict[int, Address] = {}
        for member in members:  # type: ignore[union-attr]
            if not isinstance(member, list) or len(member) != 3 or not _is_id(member[0]):
                raise ValueError(f"bad member {member!r}")
            addresses[member[0]] = check_address(member[1], member[2])
        if not all(_is_id(node) for node in (*voters, *learners)) or not voters:  # type: ignore[misc]
            raise ValueError("bad controller membership")
        cluster_id = document.get("cluster_id")
        if cluster_id is not None and not isinstance(cluster_id, str):
            raise ValueError(f"bad cluster id {cluster_id!r}")
        return cls(cluster_id, addresses, tuple(voters), tuple(learners))  # type: ignore[arg-type]


def refusal(reason: str) -> bytes:
    """A seed's answer refusing a join for good."""
    return json.dumps({"refused": reason}).encode()


def retry_later(reason: str) -> bytes:
    """A seed's answer to a join it cannot serve now (no controller leader, starting)."""
    return json.dumps({"retry": reason}).encode()


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


async def join_cluster(
    transport: Transport,
    request: JoinRequest,
    seeds: Sequence[HostPort],
    remembered: Sequence[int],
    timeout_s: float,
    *,
    reachable_suffices: bool = False,
) -> JoinAnswer | None:
    """Ask remembered members (by id), then seeds (by address), until one answers.

    With `reachable_suffices` (a node restarting on its data dir) a whole round in which
    no one could register it but some member answered returns None: the node starts
    from what it remembers, because the controller group may need its vote to elect the
    leader that would register it. Raises JoinRefused at the first refusal, JoinFailed
    once `timeout_s` has passed.
    """
    failures: dict[str, str] = {}
    own = request.internal
    candidates: list[int | HostPort] = [
        *remembered,
        *(seed for seed in seeds if (seed.host, seed.port) != own),
    ]
    if not candidates:
        raise JoinFailed("no seed other than this node's own address, and no remembered member")
    with trio.move_on_after(timeout_s):
        while True:
            answered_by: str | None = None
            for candidate in candidates:
                label = f"node {candidate}" if isinstance(candidate, int) else f"seed {candidate}"
                try:
                    answer = await _ask(transport, request, candidate)
                except SameNodeId as error:
                    raise JoinRefused(
                        f"{label}: {error.reason} (two nodes given one id, or a seed that is "
                        "this node's own address)"
                    ) from None
                except (TransportError, ValueError) as error:
                    if isinstance(error, JoinDeferred):
                        answered_by = label
                    if failures.get(label) != str(error):
                        logs.event("join_attempt_failed", logging.INFO, via=label, reason=error)
                    failures[label] = str(error)
                    continue
                logs.event("joined", via=label, members=len(answer.members))
                return answer
            if reachable_suffices and answered_by is not None:
                logs.event("rejoined_from_memory", via=answered_by, reason=failures[answered_by])
                return None
            await trio.sleep(ROUND_PAUSE_S)
    shown = list(failures.items())[:FAILURES_SHOWN_MAX]
    tried = "; ".join(f"{label}: {reason}" for label, reason in shown)
    if len(failures) > len(shown):
        tried += f"; and {len(failures) - len(shown)} more"
    raise JoinFailed(
        f"node {request.node_id} could not join within {timeout_s:g} s: no seed and no "
        f"remembered member registered it ({tried or 'nothing tried'})"
    )


async def _ask(transport: Transport, request: JoinRequest, candidate: int | HostPort) -> JoinAnswer:
    if isinstance(candidate, int):
        peer_id = candidate
    else:
        peer_id = await transport.identify(candidate.host, candidate.port, IDENTIFY_TIMEOUT_S)
    try:
        reply = await transport.call(peer_id, CLUSTER_JOIN, request.encode(), JOIN_CALL_TIMEOUT_S)
    except RpcError as error:
        # A seed that is still starting, or older, fails the call: worth another round.
        raise ValueError(f"node {peer_id} could not serve the join: {error.message}") from None
    return JoinAnswer.decode(reply)


def _json_object(payload: bytes, bytes_max: int, what: str) -> dict[str, Any]:
    """`payload` as a JSON object of at most `bytes_max` bytes; ValueError otherwise."""
    if len(payload) > bytes_max:
        raise ValueError(f"{what} of {len(payload)} bytes, over {bytes_max}")
    document = json.loads(payload)
    if not isinstance(document, dict):
        raise ValueError(f"a {what} is a JSON object")
    return document
