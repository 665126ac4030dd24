"""A deterministic simulator that attacks the Raft core: one seed decides everything."""

from raftlog.sim.cluster import ClusterOptions, SimCluster
from raftlog.sim.runner import (
    LivenessFailure,
    RunOptions,
    RunResult,
    format_schedule,
    parse_schedule,
    replay,
    run_seed,
    shrink,
)

__all__ = [
    "ClusterOptions",
    "LivenessFailure",
    "RunOptions",
    "RunResult",
    "SimCluster",
    "format_schedule",
    "parse_schedule",
    "replay",
    "run_seed",
    "shrink",
]
