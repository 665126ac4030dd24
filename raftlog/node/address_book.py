"""Where the other members are, and what a node that joined by seed remembers of them.

A node started with `--peers` is told every member's internal address by the operator.
A node that joined through `--seeds` learns them from the join answer (the controller's
node registry) and afterwards from every `register_node` / `join_node` it applies. It
keeps them in `cluster.json` in its data dir, written atomically, together with the
controller group's bootstrap membership (the configuration its Raft log starts from,
which every replica must open the group with), so after a restart it can reach the
cluster through any member it remembers, even when the seed it first used is down.

Everything here is pure except `load` and `save`.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Mapping

import attrs

from raftlog.controller.metadata import HOST_CHARS_MAX, NODE_ID_MAX, NODES_MAX
from raftlog.storage import files

CLUSTER_FILE = "cluster.json"
CLUSTER_FILE_FORMAT = 1
CLUSTER_FILE_BYTES_MAX = 1 << 20
"""Far above NODES_MAX members at ~60 bytes each; a bigger file is not ours."""

Address = tuple[str, int]


class ClusterFileError(ValueError):
    """`cluster.json` is not a file this node wrote; the message names the file and why."""


def merge_addresses(
    *,
    own_id: int,
    static: Mapping[int, Address],
    learned: Mapping[int, Address],
    remembered: Mapping[int, Address],
) -> dict[int, Address]:
    """Every other member's internal address, by precedence.

    `static` (the operator's `--peers`) wins over `learned` (the controller's registry, the
    newest word on a joined node), which wins over `remembered` (this node's file, possibly
    stale). This node itself is never its own peer. The result is bounded by NODES_MAX
    (lowest ids kept), as the registry is.
    """
    merged: dict[int, Address] = {}
    for source in (remembered, learned, static):
        for node_id, (host, port) in source.items():
            if node_id != own_id:
                merged[node_id] = (host, port)
    kept = sorted(merged)[:NODES_MAX]
    return {node_id: merged[node_id] for node_id in kept}


@attrs.frozen
class ClusterMemory:
    """What `cluster.json` holds for a node that joined by seed."""

    node_id: int
    cluster_id: str | None
    controller_voters: tuple[int, ...]
    controller_learners: tuple[int, ...]
    members: tuple[tuple[int, str, int], ...]
    """(node id, internal host, internal port) of every member this node knew of, by id."""

    def addresses(self) -> dict[int, Address]:
        return {node_id: (host, port) for node_id, host, port in self.members}

    def with_members(self, addresses: Mapping[int, Address]) -> ClusterMemory:
        members = tuple(sorted((n, host, port) for n, (host, port) in addresses.items()))
        return attrs.evolve(self, members=members[:NODES_MAX])

    def encode(self) -> bytes:
        document = {
            "format": CLUSTER_FILE_FORMAT,
            "node_id": self.node_id,
            "cluster_id": self.cluster_id,
            "controller_voters": list(self.controller_voters),
            "controller_learners": list(self.controller_learners),
            "members": [list(member) for member in self.members],
        }
        return json.dumps(document, indent=1).encode()

    @classmethod
    def decode(cls, data: bytes, *, source: str) -> ClusterMemory:
        if len(data) > CLUSTER_FILE_BYTES_MAX:
            raise ClusterFileError(f"{source}: {len(data)} bytes, over {CLUSTER_FILE_BYTES_MAX}")
        try:
            document = json.loads(data)
        except ValueError as error:
            raise ClusterFileError(f"{source}: not JSON: {error}") from None
        if not isinstance(document, dict) or document.get("format") != CLUSTER_FILE_FORMAT:
            raise ClusterFileError(f"{source}: not a cluster file of format {CLUSTER_FILE_FORMAT}")
        try:
            node_id = _node_id(document["node_id"])
            cluster_id = document["cluster_id"]
            if cluster_id is not None and (not isinstance(cluster_id, str) or len(cluster_id) > 64):
                raise ValueError(f"bad cluster id {cluster_id!r}")
            voters = tuple(_node_id(node) for node in _bounded_list(document["controller_voters"]))
            learners = tuple(
                _node_id(node) for node in _bounded_list(document["controller_learners"])
            )
            if not voters or set(voters) & set(learners):
                raise ValueError("the controller bootstrap needs voters, apart from learners")
            members = tuple(_member(item) for item in _bounded_list(document["members"]))
        except (KeyError, TypeError, ValueError) as error:
            raise ClusterFileError(f"{source}: {error}") from None
        return cls(node_id, cluster_id, voters, learners, members)


def _bounded_list(value: object) -> list[object]:
    if not isinstance(value, list) or len(value) > NODES_MAX:
        raise ValueError(f"expected a list of at most {NODES_MAX} items")
    return value


def _node_id(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= NODE_ID_MAX:
        raise ValueError(f"bad node id {value!r}")
    return value


def check_address(host: object, port: object) -> Address:
    """An internal address as the registry keeps it, or ValueError."""
    if not isinstance(host, str) or not 0 < len(host) <= HOST_CHARS_MAX:
        raise ValueError(f"bad host {host!r}")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port <= 65535:
        raise ValueError(f"bad port {port!r}")
    return host, port


def _member(value: object) -> tuple[int, str, int]:
    if not isinstance(value, list) or len(value) != 3:
        raise ValueError(f"a member is [id, host, port], got {value!r}")
    host, port = check_address(value[1], value[2])
    return _node_id(value[0]), host, port


def load(data_dir: pathlib.Path) -> ClusterMemory | None:
    """The remembered cluster, or None if this data dir never joined by seed."""
    path = data_dir / CLUSTER_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return ClusterMemory.decode(data, source=str(path))


def save(data_dir: pathlib.Path, memory: ClusterMemory) -> None:
    """Replace `cluster.json` atomically (written, fsynced, renamed, directory fsynced)."""
    files.write_atomically(data_dir / CLUSTER_FILE, memory.encode())
