"""``python -m jepsen_like``: sub-commands over run directories.

Only ``check`` lives here for now: it needs no cluster. Commands that drive a cluster
(``run``, ``campaign``) are added the same way: one more ``Command`` in ``COMMANDS``.

Exit codes: 0 valid, 1 anomalies found, 2 unknown (a checker ran out of budget) or error.
"""

from __future__ import annotations

import argparse
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
