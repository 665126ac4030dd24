"""Run the benchmarks, print a table, write JSON.

    python -m benches [--quick] [--only NAME ...] [--json PATH] [--scale F] [--dir DIR]
    python -m benches compare OLD.json NEW.json [--threshold 0.2]

PNG plots (ratios to the same-run peers and ceilings, and the sweeps) are written next to
the JSON.

To add a scenario: write `benches/<name>.py` with `run(settings: Settings) ->
list[Result]` and add `<name>` to SCENARIOS.
"""

import argparse
import datetime
import importlib
import json
import os
import pathlib
import platform
import shutil
import sys
import tempfile

import attrs

from benches.common import Result, Settings

SCENARIOS = ("ceilings", "crc", "append", "recovery", "codec", "raft_sim", "transport", "produce",
             "replicated", "failover", "idle", "groups", "sweep", "peers_1node", "end_to_end")


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benches", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, short runs")
    parser.add_argument("--only", action="append", choices=SCENARIOS, metavar="NAME",
                        help=f"run only this scenario (repeatable): {', '.join(SCENARIOS)}")
    parser.add_argument("--json", type=pathlib.Path, help="where to write the results "
                        "(default bench-results/<timestamp>.json)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply every data size (smoke tests use a tiny fraction)")
    parser.add_argument("--dir", type=pathlib.Path, default=pathlib.Path("bench-results"),
                        help="the disk to measure: scenario files go in a fresh folder here")
    return parser.parse_args(argv)


def _format(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


def _table(results: list[Result]) -> str:
    rows = [("scenario", "metric", "value", "ceiling", "ratio", "target", "ok")]
    for result in results:
        meets = result.meets_target
        rows.append((result.scenario, result.metric, f"{_format(result.value)} {result.unit}",
                     f"{_format(result.ceiling_value)} ({result.ceiling_name or '-'})",
                     _format(result.ratio), _format(result.target_ratio),
                     "-" if meets is None else ("yes" if meets else "NO")))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
             for row in rows]
    notes = [f"  {r.scenario}: {r.metric}: {r.notes}" for r in results if r.notes]
    return "\n".join([*lines, "", "notes:", *notes])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["compare"]:
        from benches.compare import main as compare

        return compare(argv[1:])
    arguments = _arguments(argv)
    started = datetime.datetime.now(datetime.UTC)
    arguments.dir.mkdir(parents=True, exist_ok=True)
    work_directory = pathlib.Path(tempfile.mkdtemp(prefix="work-", dir=arguments.dir))
    settings = Settings(arguments.quick, arguments.scale, work_directory)
    results: list[Result] = []
    try:
        for name in arguments.only or SCENARIOS:
            module = importlib.import_module(f"benches.{name}")
            print(f"running {name} ...", file=sys.stderr, flush=True)
            results.extend(module.run(settings))
    finally:
        shutil.rmtree(work_directory, ignore_errors=True)
    from benches.ceilings import fractions

    results.extend(fractions(results))
    print(_table(results))
    json_path = arguments.json or pathlib.Path("bench-results") / (
        started.strftime("%Y%m%dT%H%M%SZ") + ".json")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "started": started.isoformat(),
        "quick": arguments.quick,
        "scale": arguments.scale,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version()},
        "results": [{**attrs.asdict(result), "meets_target": result.meets_target}
                    for result in results],
    }
    json_path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nwrote {json_path}", file=sys.stderr)
    from benches.plots import write_plots

    for plot in write_plots(document, json_path):
        print(f"wrote {plot}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
