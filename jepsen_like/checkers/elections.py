"""Election safety: no two nodes lead one Raft group in one term (Raft paper, figure 3)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from jepsen_like.checkers.result import Anomaly, CheckResult, from_anomalies
from jepsen_like.elections import LeaderClaim

NAME = "election-safety"


def check_election_safety(claims: Iterable[LeaderClaim]) -> CheckResult:
    leaders: dict[tuple[int, int], dict[int, LeaderClaim]] = defaultdict(dict)
    count = 0
    for claim in claims:
        count += 1
        leaders[(claim.group, claim.term)].setdefault(claim.node, claim)
    anomalies = [
        Anomaly(
            "two-leaders-one-term",
            f"group {group}",
            f"nodes {sorted(by_node)} each became leader of group {group} in term {term}",
            (),
            {"term": term, "claims": [claim.to_json() for claim in by_node.values()]},
        )
        for (group, term), by_node in sorted(leaders.items())
        if len(by_node) > 1
    ]
    return from_anomalies(NAME, anomalies, {"leader_claims": count, "terms": len(leaders)})
