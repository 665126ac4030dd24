"""Who became leader of which Raft group in which term, read from the nodes' own logs.

Raft's election safety (at most one leader per term) is the property a bug in vote
counting breaks first, often without any client noticing in a short run: the two leaders
of one term may never both get a write acknowledged. Every raftlog node logs
``event=leader_changed ... role=leader term=T group=G`` when it becomes leader, so the
run collects those claims from ``nodes/node<i>.log`` and a checker looks for two nodes
claiming one (group, term).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import attrs

from jepsen_like.history import HistoryError

LEADERS_FILE = "leaders.jsonl"
_NODE_LOG = re.compile(r"^node(\d+)\.log$")
_FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


@attrs.frozen
class LeaderClaim:
    node: int
    group: int
    term: int
    time: str
    """The node's own timestamp (wall clock, for people; never compared across nodes)."""

    def to_json(self) -> dict[str, object]:
        return attrs.asdict(self)


def claims_in_line(node: int, line: str) -> LeaderClaim | None:
    if "event=leader_changed" not in line or "role=leader" not in line:
        return None
    fields = dict(_FIELD.findall(line))
    try:
        return LeaderClaim(node, int(fields["group"]), int(fields["term"]), fields.get("ts", ""))
    except (KeyError, ValueError):
        return None


def read_node_logs(nodes_dir: Path) -> tuple[LeaderClaim, ...]:
    """Every leadership claim in the logs under ``nodes_dir``, in file then line order."""
    claims: list[LeaderClaim] = []
    if not nodes_dir.is_dir():
        return ()
    for path in sorted(nodes_dir.iterdir()):
        match = _NODE_LOG.match(path.name)
        if match is None:
            continue
        node = int(match.group(1))
        with path.open(errors="replace") as log:
            for line in log:
                claim = claims_in_line(node, line)
                if claim is not None:
                    claims.append(claim)
    return tuple(claims)


def write_claims(path: Path, claims: Iterable[LeaderClaim]) -> None:
    path.write_text("".join(json.dumps(claim.to_json()) + "\n" for claim in claims))


def read_claims(path: Path) -> Iterator[LeaderClaim]:
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        try:
            raw = json.loads(line)
            yield LeaderClaim(int(raw["node"]), int(raw["group"]), int(raw["term"]),
                              str(raw.get("time", "")))
        except (ValueError, KeyError, TypeError) as error:
            raise HistoryError(f"{path}:{number}: not a leader claim: {error}") from error
