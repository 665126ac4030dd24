"""The election-safety checker reads leadership claims from node logs and can fail."""

from pathlib import Path

from jepsen_like.checkers import Verdict
from jepsen_like.checkers.elections import check_election_safety
from jepsen_like.elections import (
    LeaderClaim,
    claims_in_line,
    read_claims,
    read_node_logs,
    write_claims,
)

LINE = (
    "ts=2026-11-23T04:46:45.179Z level=info event=leader_changed group={group} "
    "leader={node} role={role} term={term}"
)


def _write_log(directory: Path, node: int, lines: list[str]) -> None:
    (directory / f"node{node}.log").write_text("".join(line + "\n" for line in lines))


def test_claims_come_only_from_becoming_leader() -> None:
    assert claims_in_line(2, LINE.format(group=7, node=2, role="leader", term=3)) == LeaderClaim(
        2, 7, 3, "2026-11-23T04:46:45.179Z"
    )
    assert claims_in_line(2, LINE.format(group=7, node=0, role="candidate", term=3)) is None
    assert claims_in_line(2, "ts=x level=info event=transport_listening node=2") is None


def test_one_leader_per_term_is_valid_across_restarts(tmp_path: Path) -> None:
    _write_log(tmp_path, 1, [LINE.format(group=0, node=1, role="leader", term=1),
                             LINE.format(group=0, node=1, role="leader", term=1),
                             LINE.format(group=5, node=1, role="leader", term=4)])
    _write_log(tmp_path, 2, [LINE.format(group=0, node=2, role="leader", term=2),
                             LINE.format(group=5, node=2, role="follower", term=4)])
    (tmp_path / "data1").mkdir()
    result = check_election_safety(read_node_logs(tmp_path))
    assert result.verdict is Verdict.VALID
    assert result.details == {"leader_claims": 4, "terms": 3}


def test_two_leaders_in_one_term_are_reported_with_their_claims(tmp_path: Path) -> None:
    _write_log(tmp_path, 1, [LINE.format(group=9, node=1, role="leader", term=6)])
    _write_log(tmp_path, 3, [LINE.format(group=9, node=3, role="leader", term=6),
                             LINE.format(group=9, node=3, role="leader", term=7)])
    claims = read_node_logs(tmp_path)
    write_claims(tmp_path / "leaders.jsonl", claims)
    result = check_election_safety(read_claims(tmp_path / "leaders.jsonl"))
    assert result.verdict is Verdict.INVALID
    (anomaly,) = result.anomalies
    assert anomaly.kind == "two-leaders-one-term" and anomaly.key == "group 9"
    assert anomaly.details["term"] == 6
    assert {claim["node"] for claim in anomaly.details["claims"]} == {1, 3}
