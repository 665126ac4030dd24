"""A run directory: the raw recording, every checker's findings, plots and one verdict.

Layout (all names fixed so tools and people find them)::

    run.json        seed, workload and options: what replays the run
    history.jsonl   the operation history (see history.py)
    nemesis.jsonl   fault start/stop events (see nemesis.py)
    leaders.jsonl   every node's claims to lead a Raft group in a term (see elections.py)
    anomalies.json  every checker's result, anomalies with their operations
    throughput.png  completions per second, faults shaded
    latency.png     latency of each operation, faults shaded
    results.txt     the one-line verdict, which is also printed

The recording (first three) is written by the runner; the rest is derived from it and
can be rebuilt at any time by ``python -m jepsen_like check RUN_DIR --write``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from jepsen_like.checkers import CheckResult, Verdict, check_queue
from jepsen_like.checkers.elections import check_election_safety
from jepsen_like.checkers.result import count_kinds
from jepsen_like.elections import LEADERS_FILE, LeaderClaim, read_claims, write_claims
from jepsen_like.history import History, HistoryError, read_history, write_history
from jepsen_like.linearizability import Budget, check_history
from jepsen_like.models import LogModel, RegisterModel
from jepsen_like.nemesis import NemesisEvent, intervals, read_nemesis, write_nemesis

RUN_FILE = "run.json"
HISTORY_FILE = "history.jsonl"
NEMESIS_FILE = "nemesis.jsonl"
ANOMALIES_FILE = "anomalies.json"
RESULTS_FILE = "results.txt"
THROUGHPUT_FILE = "throughput.png"
LATENCY_FILE = "latency.png"


@attrs.frozen
class RunInfo:
    seed: int
    """The one seed every random choice of the run derives from: it replays the run."""
    workload: str = "queue"
    name: str = "raftlog"
    options: Mapping[str, Any] = attrs.field(factory=dict, hash=False)
    """Whatever else the runner needs to replay it (nodes, faults, rates, duration)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "workload": self.workload,
            "name": self.name,
            "options": dict(self.options),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> RunInfo:
        seed = raw.get("seed")
        if not isinstance(seed, int):
            raise HistoryError(f"{RUN_FILE}: seed must be an int, got {seed!r}")
        return cls(
            seed=seed,
            workload=str(raw.get("workload", "queue")),
            name=str(raw.get("name", "raftlog")),
            options=dict(raw.get("options", {})),
        )


@attrs.frozen
class Run:
    info: RunInfo
    history: History
    nemesis: tuple[NemesisEvent, ...] = ()
    leaders: tuple[LeaderClaim, ...] | None = None
    """None when the nodes' logs were not collected (a bare history): no election check."""


@attrs.frozen
class Outcome:
    verdict: Verdict
    results: tuple[CheckResult, ...]
    line: str
    """The one-line verdict, seed included."""

    @property
    def exit_code(self) -> int:
        return {Verdict.VALID: 0, Verdict.INVALID: 1, Verdict.UNKNOWN: 2}[self.verdict]


def check_run(
    history: History, budget: Budget | None = None, *, sparse_offsets: bool = False
) -> tuple[CheckResult, ...]:
    """Every checker: the queue checks, then linearizability of logs and committed offsets.

    ``sparse_offsets``: the system gives offsets to records no consumer sees (raftlog's
    control batches), so the log model judges positions in the observed offsets."""
    return (
        *check_queue(history),
        check_history(history, LogModel(sparse_offsets=sparse_offsets), budget).to_check_result(),
        check_history(history, RegisterModel(), budget).to_check_result(),
    )


def overall(results: Iterable[CheckResult]) -> Verdict:
    verdicts = {result.verdict for result in results}
    if Verdict.INVALID in verdicts:
        return Verdict.INVALID
    if Verdict.UNKNOWN in verdicts:
        return Verdict.UNKNOWN
    return Verdict.VALID


def verdict_line(results: Sequence[CheckResult], info: RunInfo, history: History) -> str:
    verdict = overall(results)
    size = f"{len(history.operations)} operations, {len(results)} checkers"
    if verdict is Verdict.VALID:
        return f"VALID: {size} passed (seed {info.seed})"
    problems = []
    for result in results:
        if result.verdict is Verdict.VALID:
            continue
        counts = ", ".join(f"{kind} x{n}" for kind, n in count_kinds(result.anomalies).items())
        problems.append(f"{result.checker} [{counts or result.verdict}]")
    return (
        f"{str(verdict).upper()}: {'; '.join(problems)}; {size} "
        f"(seed {info.seed}: replay the run with this seed)"
    )


SPARSE_OFFSETS_OPTION = "sparse_offsets"
"""run.json option a runner sets when its system's offsets have unfillable gaps."""


def judge(run: Run, budget: Budget | None = None) -> Outcome:
    sparse = bool(run.info.options.get(SPARSE_OFFSETS_OPTION, False))
    results = check_run(run.history, budget, sparse_offsets=sparse)
    if run.leaders is not None:
        results = (*results, check_election_safety(run.leaders))
    return Outcome(overall(results), results, verdict_line(results, run.info, run.history))


def write_recording(run_dir: Path, run: Run) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / RUN_FILE).write_text(json.dumps(run.info.to_json(), indent=2) + "\n")
    write_history(run_dir / HISTORY_FILE, run.history.entries)
    write_nemesis(run_dir / NEMESIS_FILE, run.nemesis)
    if run.leaders is not None:
        write_claims(run_dir / LEADERS_FILE, run.leaders)


def write_findings(run_dir: Path, run: Run, outcome: Outcome) -> None:
    """Everything derived from the recording: anomalies, plots, verdict."""
    from jepsen_like.plots import plot_latency, plot_throughput

    anomalies = {
        "verdict": str(outcome.verdict),
        "seed": run.info.seed,
        "line": outcome.line,
        "checkers": [result.to_json() for result in outcome.results],
    }
    (run_dir / ANOMALIES_FILE).write_text(json.dumps(anomalies, indent=1, default=str) + "\n")
    faults = intervals(run.nemesis)
    title = f"{run.info.name} {run.info.workload} seed {run.info.seed}"
    plot_throughput(run.history, faults, run_dir / THROUGHPUT_FILE, title)
    plot_latency(run.history, faults, run_dir / LATENCY_FILE, title)
    (run_dir / RESULTS_FILE).write_text(outcome.line + "\n")


def write_report(run_dir: Path, run: Run, budget: Budget | None = None) -> Outcome:
    """Record the run, judge it, write the findings and print the verdict line."""
    write_recording(run_dir, run)
    outcome = judge(run, budget)
    write_findings(run_dir, run, outcome)
    print(outcome.line)
    return outcome


def load_run(run_dir: Path) -> Run:
    """A missing run.json or nemesis.jsonl is tolerated (seed 0, no faults) so a bare
    history can still be checked; a missing history is an error."""
    if not (run_dir / HISTORY_FILE).is_file():
        raise HistoryError(f"{run_dir}: no {HISTORY_FILE}")
    info_path = run_dir / RUN_FILE
    info = RunInfo(seed=0)
    if info_path.is_file():
        try:
            info = RunInfo.from_json(json.loads(info_path.read_text()))
        except json.JSONDecodeError as error:
            raise HistoryError(f"{info_path}: {error}") from error
    nemesis_path = run_dir / NEMESIS_FILE
    events = tuple(read_nemesis(nemesis_path)) if nemesis_path.is_file() else ()
    leaders_path = run_dir / LEADERS_FILE
    leaders = tuple(read_claims(leaders_path)) if leaders_path.is_file() else None
    return Run(info, read_history(run_dir / HISTORY_FILE), events, leaders)
