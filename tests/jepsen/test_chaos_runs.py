"""Bounded chaos runs against a real cluster: a correct raftlog passes, and a raftlog with
a deliberate bug (``RAFTLOG_INJECT_BUG``) is caught.

Each run is ``python -m jepsen_like run`` as a user would type it, in network namespaces
when running as root (CI), else behind the TCP proxy. The bug runs pick the nemesis that
exposes each bug:

* ``fetch-above-commit``: isolating a partition's leader. Until check-quorum deposes it,
  it appends sends it can never commit and (the bug) serves them to consumers; the new
  leader then puts other values at those offsets.
* ``skip-idempotence``: muting the leader's answers to clients (``mute``) while producers
  pipeline. Batches that were appended but not acknowledged are resent, and appended
  twice.
* ``ack-before-fsync``: killing every node at once with the power-loss emulation on
  (``--power-loss``): SIGKILL alone keeps the page cache, so the unsynced but
  acknowledged entries would survive and the bug would hide.

A correct cluster must also come out valid under ``corrupt,kill``: a minority's segment
files get bit flips and truncations (between a SIGKILL and a restart) while kills go on.

* ``stale-vote``: five nodes whose messages to each other take about an election timeout
  (``delay:slow``, over the TCP proxy so it runs anywhere) while leaders are killed:
  candidacies end before their vote answers arrive, and with the bug a candidate counts
  the votes of its previous candidacy again, so two nodes lead one group in one term.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from jepsen_like.netns import namespaces_available

pytestmark = [pytest.mark.slow, pytest.mark.clients]

REPOSITORY = Path(__file__).resolve().parents[2]


def _run(out: Path, *arguments: str, timeout_s: float = 240) -> tuple[int, dict, str]:
    command = [sys.executable, "-m", "jepsen_like", "run", "--out", str(out), *arguments]
    result = subprocess.run(
        command, cwd=REPOSITORY, capture_output=True, text=True, timeout=timeout_s, check=False
    )
    printed = result.stdout + result.stderr
    anomalies_path = out / "anomalies.json"
    anomalies = json.loads(anomalies_path.read_text()) if anomalies_path.exists() else {}
    return result.returncode, anomalies, printed


def _kinds(anomalies: dict) -> dict[str, set[str]]:
    return {
        checker["checker"]: set(checker["anomaly_counts"])
        for checker in anomalies.get("checkers", ())
        if not checker["valid"]
    }


def test_a_correct_cluster_survives_kills_partitions_and_transfers(tmp_path: Path) -> None:
    """Kills are power cuts here (--power-loss, seed 102 has a kill:all), and every
    partition's leadership is moved at once through the admin API of a random node, which
    forwards each request to the partition's leader."""
    out = tmp_path / "run"
    code, anomalies, printed = _run(
        out, "--nodes", "3", "--time", "45", "--nemesis", "kill,partition,transfer:all",
        "--seed", "102", "--power-loss",
    )  # fmt: skip
    assert code == 0, printed[-3000:]
    assert anomalies["verdict"] == "valid"
    assert (out / "results.txt").read_text().startswith("VALID")
    info = json.loads((out / "run.json").read_text())
    assert info["options"]["network_mechanism"] in ("netns+iptables", "tcp-proxy")
    assert info["options"]["final_read_complete"] is True
    assert info["options"]["power_loss"] is True
    (elections,) = [c for c in anomalies["checkers"] if c["checker"] == "election-safety"]
    assert elections["valid"] and elections["details"]["leader_claims"] > 0
    events = [json.loads(line) for line in (out / "nemesis.jsonl").read_text().splitlines()]
    assert {event["kind"].split(":")[0] for event in events} <= {"kill", "partition", "transfer"}
    assert len(events) >= 4, "the schedule injected faults and healed them"
    moved = [
        target
        for event in events
        if event["kind"] == "transfer:all" and event["event"] == "start"
        for target in event["targets"]
        if "->" in target and "refused" not in target
    ]
    assert moved, "at least one partition's leadership moved through the admin API"
    assert {event["kind"] for event in events} >= {"kill:all", "transfer:all"}
    sends = sum(
        1
        for line in (out / "history.jsonl").read_text().splitlines()
        if '"f":"send"' in line and '"type":"ok"' in line
    )
    assert sends > 500, f"the workload ran ({sends} acknowledged sends)"


def test_replacing_members_keeps_every_acknowledged_write(tmp_path: Path) -> None:
    """The member nemesis keeps a node down past the dead timeout, so the controller moves
    its replicas (learner, promote, remove) and, at the heal, the node returns on data it
    no longer owns. Both found bugs when first run: a restarted node crashed on a partition
    whose every replica had moved, and a replaced controller voter was never let back in."""
    out = tmp_path / "run"
    code, anomalies, printed = _run(
        out, "--nodes", "5", "--time", "50", "--nemesis", "member", "--seed", "41",
        timeout_s=400,
    )  # fmt: skip
    assert code == 0, printed[-3000:]
    assert anomalies["verdict"] == "valid"
    logs = "".join(path.read_text() for path in (out / "nodes").glob("node*.log"))
    assert "change=remove_node" in logs and "change=promote_learner" in logs, (
        "the nemesis should have moved replicas"
    )


def test_the_member_nemesis_needs_five_nodes(tmp_path: Path) -> None:
    code, _anomalies, printed = _run(tmp_path / "run", "--time", "5", "--nemesis", "member")
    assert code == 2
    assert "needs 5 nodes" in printed


def test_a_correct_cluster_survives_disk_corruption_and_kills(tmp_path: Path) -> None:
    """The ``corrupt`` nemesis damages a minority's segment files (bit flips, truncation)
    between a SIGKILL and a restart; with kills on top, nothing acknowledged is lost."""
    out = tmp_path / "run"
    code, anomalies, printed = _run(
        out, "--nodes", "3", "--time", "30", "--nemesis", "corrupt,kill", "--seed", "7"
    )
    assert code == 0, printed[-3000:]
    assert anomalies["verdict"] == "valid"
    events = [json.loads(line) for line in (out / "nemesis.jsonl").read_text().splitlines()]
    damaged = [e for e in events if e["kind"].startswith("corrupt") and e["event"] == "start"]
    assert damaged, "the schedule corrupted a node"
    assert all("action=flip" in detail for e in damaged for detail in e["details"])
    logs = "".join(path.read_text() for path in (out / "nodes").glob("node*.log"))
    assert "event=corruption_detected" in logs, "a damaged node found the corruption"


def test_fetch_above_commit_is_caught(tmp_path: Path) -> None:
    code, anomalies, printed = _run(
        tmp_path / "run",
        "--time", "30", "--nemesis", "partition:leader", "--seed", "11",
        "--inject-bug", "fetch-above-commit",
    )  # fmt: skip
    assert code == 1, printed[-3000:]
    assert "replay: python -m jepsen_like run" in printed and "--seed 11" in printed
    found = _kinds(anomalies)
    assert "linearizable-log" in found or "inconsistent-offsets" in found, found


@pytest.mark.skipif(
    not namespaces_available(), reason="the mute nemesis needs network namespaces (root)"
)
def test_skip_idempotence_is_caught(tmp_path: Path) -> None:
    """Muting the leader's answers for longer than the producers' request timeout makes
    every producer resend batches the leader already appended: with the bug each resend is
    appended again. (Kills and pauses expose it only when a kill lands between a commit
    and its answer, which a bounded run may never draw.)"""
    code, anomalies, printed = _run(
        tmp_path / "run",
        "--time", "30", "--nemesis", "mute:leader", "--seed", "12",
        "--inject-bug", "skip-idempotence",
    )  # fmt: skip
    assert code == 1, printed[-3000:]
    assert "duplicate" in _kinds(anomalies).get("duplicates", set()), _kinds(anomalies)


STALE_VOTE_SEEDS = (32, 33, 34)


def test_stale_vote_is_caught(tmp_path: Path) -> None:
    """Whether a late vote answer meets a candidate still standing is a matter of timing,
    which a heavily loaded machine shifts: another seed is tried while a run draws no two
    leaders in one term (seeds 32 and 33 both missed in a CI dry run beside a campaign)."""
    outcomes = []
    for seed in STALE_VOTE_SEEDS:
        code, anomalies, printed = _run(
            tmp_path / f"run-{seed}",
            "--nodes", "5", "--time", "90", "--network", "proxy",
            "--nemesis", "delay:slow,kill:leader", "--seed", str(seed),
            "--inject-bug", "stale-vote",
            timeout_s=420,
        )  # fmt: skip
        found = _kinds(anomalies).get("election-safety", set())
        if code == 1 and "two-leaders-one-term" in found:
            return
        outcomes.append(f"seed {seed}: exit {code}, {_kinds(anomalies)}\n{printed[-1500:]}")
    raise AssertionError("stale-vote was not caught:\n" + "\n".join(outcomes))


def test_ack_before_fsync_is_caught_with_power_loss(tmp_path: Path) -> None:
    code, anomalies, printed = _run(
        tmp_path / "run",
        "--time", "30", "--nemesis", "kill:all", "--seed", "21", "--power-loss",
        "--inject-bug", "ack-before-fsync",
        # The bug breaks the cluster: recovery and the final read may time out, so both
        # are shortened (the run is judged either way).
        "--recovery-timeout", "20", "--final-timeout", "40",
        timeout_s=300,
    )  # fmt: skip
    assert code == 1, printed[-3000:]
    assert "--power-loss" in printed and "--inject-bug ack-before-fsync" in printed
    # The lost acknowledged entries break the cluster itself (its logs disagree with what
    # was acknowledged); the run fails either on the checkers' anomalies or, when no
    # partition recovers enough to be read back, on the recovery it reports as a problem.
    assert _kinds(anomalies) or "PROBLEM: the cluster did not recover" in printed, printed[-3000:]


def test_an_unknown_bug_is_a_harness_error(tmp_path: Path) -> None:
    code, _anomalies, printed = _run(
        tmp_path / "run", "--time", "5", "--nemesis", "none", "--inject-bug", "no-such-bug"
    )
    assert code == 2
    assert "unknown bug 'no-such-bug'" in printed
