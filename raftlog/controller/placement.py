"""Where new segment replicas go: on the least-loaded nodes.

A node's load is the number of segment replicas it hosts (every segment of every partition,
sealed or head, and successors prepared ahead of a seal), as the controller's metadata
records them. New replica sets take the nodes with the fewest, ties broken by node id, and
each choice counts towards the next, so one topic's partitions spread over the cluster and
a node that already hosts more gets fewer. Pure: the same metadata gives the same answer on
every node, which keeps placement testable without a cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from raftlog.controller.metadata import MetadataState

PLACEMENT_PARTITIONS_MAX = 10_000


class PlacementError(ValueError):
    """There are not enough nodes for the replica sets asked for."""


def replica_load(state: MetadataState) -> dict[int, int]:
    """Segment replicas per registered node (0 for a node that hosts none)."""
    load = {node: 0 for node in state.nodes}
    for topic in state.topics.values():
        for partition in topic.partitions:
            segments = [*partition.segments]
            if partition.prepared is not None:
                segments.append(partition.prepared)
            for segment in segments:
                for node in segment.replicas:
                    load[node] = load.get(node, 0) + 1
    return load


def place_replicas(
    nodes: Iterable[int],
    load: Mapping[int, int],
    replication_factor: int,
    partitions: int,
) -> list[list[int]]:
    """One replica set per partition, each on the `replication_factor` least-loaded nodes.

    The first replica of a set (the one that campaigns first, so usually the leader) is
    the least loaded of the set, so leadership spreads with the data.
    """
    candidates = sorted(set(nodes))
    if not 1 <= replication_factor <= len(candidates):
        raise PlacementError(
            f"replication factor {replication_factor} needs that many nodes; "
            f"{len(candidates)} are available"
        )
    if not 1 <= partitions <= PLACEMENT_PARTITIONS_MAX:
        raise PlacementError(f"{partitions} partitions is out of range")
    counts = {node: load.get(node, 0) for node in candidates}
    leaders = dict.fromkeys(candidates, 0)
    assignments: list[list[int]] = []
    for _partition in range(partitions):
        chosen = sorted(candidates, key=lambda node: (counts[node], node))[:replication_factor]
        # Among the chosen, the one that leads least so far goes first.
        first = min(chosen, key=lambda node: (leaders[node], counts[node], node))
        ordered = [first, *(node for node in chosen if node != first)]
        for node in ordered:
            counts[node] += 1
        leaders[first] += 1
        assignments.append(ordered)
    return assignments


def live_candidates(
    registered: Sequence[int], unreachable: Iterable[int], wanted: int
) -> list[int]:
    """The registered nodes this node can reach, or all of them if too few are reachable.

    Reachability is this node's own view (its transport's connections); when it leaves
    fewer nodes than the replication factor the controller's list is used as it is, and
    the new groups elect once their nodes come back, as they would have after a crash.
    """
    down = set(unreachable)
    reachable = [node for node in registered if node not in down]
    return reachable if len(reachable) >= wanted else list(registered)
