"""Many runs in a row: ``python -m jepsen_like campaign --runs 20 --time 300``.

Run *i* uses seed ``base + i`` and the *i*-th nemesis combination (rotating), each as its
own ``python -m jepsen_like run`` process, so one run that dies cannot take the others
with it. The summary (``summary.txt`` table, ``summary.json``) lists each run's seed,
faults, network mechanism, size and verdict; a failing run's replay command is in its
own directory's output (``output.txt``).
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import attrs

REPOSITORY = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_COMBOS: tuple[str, ...] = (
    "kill",
    "partition,mute",
    "pause,transfer",
    "kill,partition",
    "corrupt,kill",
    "loss,partition",
    "kill,pause,transfer",
    "member",
    "mute,kill",
    "kill,partition,pause,loss,mute,transfer",
)
"""Every nemesis, alone and combined; ten combinations, so a 20-run campaign runs each
twice. ``delay`` is left out by default: it needs tc netem, which many kernels lack."""
MEMBER_NODES = 5
"""Runs whose faults include ``member`` use 5 nodes: with 3, every node holds every
replica and none can be moved."""
HARNESS_SLACK_S = 300.0
"""Start-up, recovery, the final read and the checkers, on top of ``--time``."""


@attrs.frozen
class CampaignOptions:
    runs: int
    time_s: float
    out: pathlib.Path
    base_seed: int
    nodes: int = 3
    combos: tuple[str, ...] = DEFAULT_COMBOS
    network: str = "auto"
    power_loss: bool = True
    """Every run emulates power cuts (``run --power-loss``): a killed node loses what it
    had not fsynced, the harsher form of every kill."""
    extra: tuple[str, ...] = ()
    """Further ``run`` flags, passed through (e.g. ``--rate 80``)."""


def nodes_for(nemesis: str, nodes: int) -> int:
    """The node count of one run: ``member`` needs 5."""
    kinds = {kind.partition(":")[0] for kind in nemesis.split(",")}
    return max(nodes, MEMBER_NODES) if "member" in kinds else nodes


@attrs.frozen
class RunSummary:
    index: int
    seed: int
    nemesis: str
    exit_code: int
    verdict: str
    line: str
    network: str
    operations: int
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


def _summarize(
    index: int, seed: int, nemesis: str, run_dir: pathlib.Path, code: int, seconds: float
) -> RunSummary:
    line = ""
    results = run_dir / "results.txt"
    if results.exists():
        line = results.read_text().strip()
    network, operations = "?", 0
    run_file = run_dir / "run.json"
    if run_file.exists():
        network = json.loads(run_file.read_text())["options"].get("network_mechanism", "?")
    history = run_dir / "history.jsonl"
    if history.exists():
        with history.open() as lines:
            operations = sum(1 for entry in lines if '"type":"invoke"' in entry)
    verdict = {0: "valid", 1: "INVALID"}.get(code, "error")
    if code == 2 and line.startswith("UNKNOWN"):
        verdict = "unknown"
    if not line:
        output = (run_dir / "output.txt").read_text(errors="replace").strip().splitlines()
        line = output[-1] if output else f"exit {code}"
    return RunSummary(index, seed, nemesis, code, verdict, line, network, operations, seconds)


def render(summaries: Sequence[RunSummary]) -> str:
    header = (
        f"{'run':>3}  {'seed':>10}  {'nemesis':<26} {'network':<15} {'ops':>6} {'s':>5}  verdict"
    )
    rows = [header, "-" * len(header)]
    for s in summaries:
        rows.append(
            f"{s.index:>3}  {s.seed:>10}  {s.nemesis:<26} {s.network:<15} {s.operations:>6} "
            f"{s.seconds:>5.0f}  {s.verdict}: {s.line[:160]}"
        )
    counts: dict[str, int] = {}
    for s in summaries:
        counts[s.verdict] = counts.get(s.verdict, 0) + 1
    rows.append("")
    rows.append("totals: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return "\n".join(rows)


def run_campaign(options: CampaignOptions) -> int:
    """Exit 1 if any run found anomalies, else 2 if any run errored, else 0."""
    options.out.mkdir(parents=True, exist_ok=True)
    summaries: list[RunSummary] = []
    for index in range(options.runs):
        seed = options.base_seed + index
        nemesis = options.combos[index % len(options.combos)]
        run_dir = options.out / f"run-{index:03d}-seed-{seed}"
        nodes = nodes_for(nemesis, options.nodes)
        command = [
            sys.executable, "-m", "jepsen_like", "run",
            "--nodes", str(nodes), "--time", f"{options.time_s:g}",
            "--nemesis", nemesis, "--seed", str(seed), "--network", options.network,
            "--out", str(run_dir), *(("--power-loss",) if options.power_loss else ()),
            *options.extra,
        ]  # fmt: skip
        print(
            f"[{index + 1}/{options.runs}] seed {seed}, nemesis {nemesis}, {nodes} nodes",
            flush=True,
        )
        started = time.monotonic()
        run_dir.mkdir(parents=True, exist_ok=True)
        # The run refuses a non-empty directory: its output goes next to it, then in.
        output_path = options.out / f"run-{index:03d}-seed-{seed}.output.txt"
        with output_path.open("wb") as output:
            try:
                code = subprocess.run(
                    command,
                    cwd=REPOSITORY,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    timeout=options.time_s + HARNESS_SLACK_S,
                    check=False,
                ).returncode
            except subprocess.TimeoutExpired:
                code = 2
        (run_dir / "output.txt").write_bytes(output_path.read_bytes())
        output_path.unlink()
        summary = _summarize(index, seed, nemesis, run_dir, code, time.monotonic() - started)
        print(f"    {summary.verdict}: {summary.line}", flush=True)
        summaries.append(summary)
        _write(options.out, summaries)
    print(render(summaries))
    codes = {s.exit_code for s in summaries}
    return 1 if 1 in codes else 2 if codes - {0} else 0


def _write(out: pathlib.Path, summaries: Sequence[RunSummary]) -> None:
    (out / "summary.txt").write_text(render(summaries) + "\n")
    (out / "summary.json").write_text(
        json.dumps([s.to_json() for s in summaries], indent=1) + "\n"
    )
