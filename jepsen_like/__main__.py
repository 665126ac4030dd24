"""``python -m jepsen_like``: sub-commands.

* ``check RUN_DIR``: re-run every checker over a recorded run directory (no cluster).
* ``run``: one chaos run against a real cluster (see ``runner.py``).
* ``campaign``: many runs, rotating nemeses and seeds (see ``campaign.py``).

Exit codes: 0 valid, 1 anomalies found, 2 unknown (a checker ran out of budget) or error.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable
from pathlib import Path

import attrs

from jepsen_like.history import HistoryError
from jepsen_like.linearizability import Budget
from jepsen_like.report import judge, load_run, write_findings

EXIT_ERROR = 2

Handler = Callable[[argparse.Namespace], int]


def _check(arguments: argparse.Namespace) -> int:
    run_dir: Path = arguments.run_dir
    try:
        run = load_run(run_dir)
    except (HistoryError, OSError) as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return EXIT_ERROR
    budget = Budget(max_states=arguments.max_states, time_s=arguments.time_budget_s)
    outcome = judge(run, budget)
    if arguments.write:
        write_findings(run_dir, run, outcome)
    print(outcome.line)
    return outcome.exit_code


def _check_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    parser.add_argument(
        "--write",
        action="store_true",
        help="also rewrite anomalies.json, results.txt and the plots in RUN_DIR",
    )
    parser.add_argument(
        "--time-budget-s",
        type=float,
        default=Budget().time_s,
        help="wall-clock budget of each linearizability check (default %(default)s)",
    )
    parser.add_argument(
        "--max-states",
        type=int,
        default=Budget().max_states,
        help="search states per partition before giving up as unknown (default %(default)s)",
    )


def _run(arguments: argparse.Namespace) -> int:
    from jepsen_like.cluster import ClusterError
    from jepsen_like.nemeses import NemesisError, parse_kinds
    from jepsen_like.network import NetworkError
    from jepsen_like.runner import HarnessError, RunOptions, run

    seed = arguments.seed if arguments.seed is not None else random.randrange(1 << 31)
    try:
        nemesis = () if arguments.nemesis == "none" else parse_kinds(arguments.nemesis)
        options = RunOptions(
            seed=seed,
            out=arguments.out or Path(f"jepsen-runs/run-{seed}"),
            nodes=arguments.nodes,
            time_s=arguments.time,
            nemesis=nemesis,
            partitions=arguments.partitions,
            rate_per_s=arguments.rate,
            inflight=arguments.inflight,
            network=arguments.network,
            inject_bug=arguments.inject_bug,
            power_loss=arguments.power_loss,
            segment_bytes=arguments.segment_bytes,
            recovery_timeout_s=arguments.recovery_timeout,
            final_timeout_s=arguments.final_timeout,
        )
        print(f"seed: {seed}", flush=True)
        return run(options)
    except (
        HarnessError,
        ClusterError,
        NemesisError,
        NetworkError,
        HistoryError,
        OSError,
    ) as error:
        print(f"HARNESS ERROR: {error} (seed {seed})", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"interrupted (seed {seed})", file=sys.stderr)
        return EXIT_ERROR


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    from jepsen_like.runner import SEGMENT_BYTES_DEFAULT

    parser.add_argument("--nodes", type=int, default=3, help="3 or 5 (1 works, faults are moot)")
    parser.add_argument("--time", type=float, default=60.0, help="seconds of workload and faults")
    parser.add_argument(
        "--nemesis",
        default="kill,partition",
        help="comma list of kill, pause, partition, delay, loss, transfer, member (or 'none'); "
        "KIND:VARIANT forces a variant, e.g. kill:all",
    )
    parser.add_argument("--seed", type=int, help="replays a run (default: random, printed)")
    parser.add_argument("--out", type=Path, help="run directory (default jepsen-runs/run-SEED)")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--rate", type=float, default=50.0, help="sends/s per producer (2)")
    parser.add_argument("--inflight", type=int, default=4, help="pipelined sends per producer")
    parser.add_argument(
        "--network",
        choices=("auto", "netns", "proxy"),
        default="auto",
        help="netns (root + ip + iptables), the TCP proxy, or auto (netns when possible)",
    )
    parser.add_argument(
        "--inject-bug", dest="inject_bug", help="a raftlog bug switch (RAFTLOG_INJECT_BUG)"
    )
    parser.add_argument(
        "--segment-bytes",
        dest="segment_bytes",
        type=int,
        default=SEGMENT_BYTES_DEFAULT,
        help="segment size of the nodes: small, so segments roll under the faults "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--power-loss",
        dest="power_loss",
        action="store_true",
        help="a killed node loses its unfsynced writes, as in a power cut (test-only node mode)",
    )
    parser.add_argument(
        "--recovery-timeout",
        dest="recovery_timeout",
        type=float,
        default=60.0,
        help="seconds the healed cluster has to give every partition a leader (%(default)s)",
    )
    parser.add_argument(
        "--final-timeout",
        dest="final_timeout",
        type=float,
        default=120.0,
        help="seconds the final read has to reach every high watermark (%(default)s)",
    )


def _campaign(arguments: argparse.Namespace) -> int:
    from jepsen_like.campaign import DEFAULT_COMBOS, CampaignOptions, run_campaign

    base = arguments.seed if arguments.seed is not None else random.randrange(1 << 30)
    combos = tuple(c for c in arguments.nemeses.split(";") if c) if arguments.nemeses else None
    if arguments.runs <= 0 or arguments.time <= 0:
        print("--runs and --time must be positive", file=sys.stderr)
        return EXIT_ERROR
    options = CampaignOptions(
        runs=arguments.runs,
        time_s=arguments.time,
        out=arguments.out or Path(f"jepsen-runs/campaign-{base}"),
        base_seed=base,
        nodes=arguments.nodes,
        combos=combos or DEFAULT_COMBOS,
        network=arguments.network,
        power_loss=arguments.power_loss,
        extra=tuple(arguments.extra or ()),
    )
    print(f"campaign: {options.runs} runs, seeds {base}..{base + options.runs - 1}")
    return run_campaign(options)


def _campaign_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--time", type=float, default=300.0, help="seconds of faults per run")
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--seed", type=int, help="seed of the first run; run i uses seed+i")
    parser.add_argument("--out", type=Path, help="directory of the runs and the summary")
    parser.add_argument(
        "--nemeses",
        help="';'-separated nemesis combinations to rotate through "
        "(default: every nemesis, in ten combinations; runs with member use 5 nodes)",
    )
    parser.add_argument(
        "--no-power-loss",
        dest="power_loss",
        action="store_false",
        help="kills keep the page cache (by default every run emulates power cuts)",
    )
    parser.add_argument("--network", choices=("auto", "netns", "proxy"), default="auto")
    parser.add_argument(
        "extra", nargs="*", metavar="-- RUN_FLAG", help="further flags for every run"
    )


@attrs.frozen
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    handler: Handler


COMMANDS: tuple[Command, ...] = (
    Command(
        "check",
        "re-run every checker over a recorded run directory and print the verdict",
        _check_arguments,
        _check,
    ),
    Command("run", "one chaos run against a real raftlog cluster", _run_arguments, _run),
    Command(
        "campaign",
        "many runs of rotating nemeses and seeds, with a summary table",
        _campaign_arguments,
        _campaign,
    ),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m jepsen_like", description=__doc__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        sub = commands.add_parser(command.name, help=command.help)
        command.add_arguments(sub)
        sub.set_defaults(handler=command.handler)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    if arguments.command is None:
        parser.print_help()
        return EXIT_ERROR
    handler: Handler = arguments.handler
    return handler(arguments)


if __name__ == "__main__":
    sys.exit(main())
