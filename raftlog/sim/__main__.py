"""Run the Raft simulator from the command line.

    python -m raftlog.sim --seed 7 --steps 100000
    python -m raftlog.sim --seeds 1-50 --steps 20000
    python -m raftlog.sim --seed 7 --replay schedule.txt

A failing seed prints the failure, shrinks its schedule (bounded), writes it to a file and
prints the command that replays it. Exit status 1 on any failure.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import attrs

from raftlog.raft.config import TEST_BUGS
from raftlog.sim.runner import (
    RunOptions,
    cluster_options_for_seed,
    format_schedule,
    parse_schedule,
    replay,
    run_seed,
    shrink,
)


def _seed_range(text: str) -> list[int]:
    if "-" in text:
        low, high = text.split("-", 1)
        return list(range(int(low), int(high) + 1))
    return [int(text)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m raftlog.sim",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--seed", type=int, help="one seed")
    which.add_argument("--seeds", type=_seed_range, help="a range of seeds, e.g. 1-50")
    parser.add_argument("--steps", type=int, default=10_000, help="checked steps per seed")
    parser.add_argument("--replay", type=Path, help="replay a schedule file for --seed")
    parser.add_argument("--bug", choices=sorted(TEST_BUGS), help="switch on a deliberate bug")
    parser.add_argument("--no-shrink", action="store_true", help="report without shrinking")
    parser.add_argument("--max-replays", type=int, default=300, help="shrinking budget")
    parser.add_argument("--output", type=Path, default=Path("."), help="where schedules go")
    arguments = parser.parse_args(argv)

    seeds = [arguments.seed] if arguments.seed is not None else arguments.seeds

    def options_for(seed: int) -> object:
        options = cluster_options_for_seed(seed)
        return attrs.evolve(options, test_bug=arguments.bug) if arguments.bug else options

    if arguments.replay is not None:
        if arguments.seed is None:
            parser.error("--replay needs --seed")
        schedule = parse_schedule(arguments.replay.read_text())
        failure = replay(arguments.seed, schedule, options_for(arguments.seed))  # type: ignore[arg-type]
        print(f"seed {arguments.seed}: {len(schedule)} actions: {failure or 'every check held'}")
        return 1 if failure else 0

    started = time.perf_counter()
    total_steps = 0
    failures = 0
    for seed in seeds:
        seed_started = time.perf_counter()
        cluster_options = options_for(seed)
        result = run_seed(seed, RunOptions(steps=arguments.steps), cluster_options)  # type: ignore[arg-type]
        total_steps += result.steps
        elapsed = time.perf_counter() - seed_started
        status = "ok" if result.failure is None else "FAILED"
        print(
            f"seed {seed}: {status} {result.steps} steps, {result.elections} terms with a "
            f"leader, {result.committed_payloads} proposals applied, commit index "
            f"{result.max_commit_index}, {result.liveness_checks} liveness checks, "
            f"{elapsed:.1f}s",
            flush=True,
        )
        if result.failure is None:
            continue
        failures += 1
        print(f"  failure: {result.failure}")
        schedule = result.schedule
        if not arguments.no_shrink:
            schedule = shrink(seed, schedule, cluster_options, arguments.max_replays)  # type: ignore[arg-type]
            print(f"  shrunk from {len(result.schedule)} to {len(schedule)} actions")
        path = arguments.output / f"raft-sim-seed-{seed}.schedule"
        path.write_text(
            f"# seed {seed}, bug {arguments.bug}: {result.failure}\n"
            + format_schedule(schedule)
            + "\n"
        )
        bug = f" --bug {arguments.bug}" if arguments.bug else ""
        print(f"  schedule written to {path}")
        print(f"  replay: python -m raftlog.sim --seed {seed}{bug} --replay {path}")
        print(f"  or rerun: python -m raftlog.sim --seed {seed}{bug} --steps {arguments.steps}")
    elapsed = time.perf_counter() - started
    rate = total_steps / elapsed if elapsed > 0 else 0.0
    print(
        f"{len(seeds)} seeds, {total_steps} steps, {failures} failing, {elapsed:.1f}s "
        f"({rate:,.0f} steps/s)"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
