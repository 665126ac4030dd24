"""PNG plots of a result file, written next to its JSON.

* ``<stem>-ratios.png``: every figure that has a same-run peer or ceiling, as its ratio
  (1.0 = as fast as the reference), with the target marked: the one picture that says
  where raftlog stands.
* ``<stem>-<scenario>-<unit>-by-<parameter>.png``: figures measured over a parameter
  (rows carrying a ``sweep`` mapping of parameter to value, e.g. record size or
  partitions), one line per metric family, so throughput against record size or scaling
  with partitions shows.

matplotlib is imported here only, with the non-interactive Agg backend.
"""

from __future__ import annotations

import pathlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot


def _slug(text: str) -> str:
    """A file-name part: no path separators or spaces."""
    return text.replace("/", "_per_").replace("%", "pct").replace(" ", "_")


def _label(row: Mapping[str, Any], width: int = 70) -> str:
    text = f"{row['scenario']}: {row['metric']}"
    return text if len(text) <= width else text[: width - 1] + "…"


def plot_ratios(rows: Sequence[Mapping[str, Any]], path: pathlib.Path, title: str) -> bool:
    """False (and no file) when no row has a ratio."""
    rated = [row for row in rows if isinstance(row.get("ratio"), int | float) and row["ratio"] > 0]
    if not rated:
        return False
    pyplot = _pyplot()
    figure, axes = pyplot.subplots(figsize=(11, 0.45 * len(rated) + 1.5))
    positions = range(len(rated))
    colors = [
        "tab:green" if row.get("meets_target") else
        "tab:red" if row.get("meets_target") is False else "tab:gray"
        for row in rated
    ]  # fmt: skip
    axes.barh(list(positions), [row["ratio"] for row in rated], color=colors)
    for position, row in zip(positions, rated, strict=True):
        target = row.get("target_ratio")
        if isinstance(target, int | float):
            axes.plot([target, target], [position - 0.4, position + 0.4], color="black")
    axes.axvline(1.0, color="black", linestyle=":", linewidth=1)
    # Ratios span 0.01x to 50x: on a log axis both ends stay readable.
    axes.set_xscale("log")
    axes.set_yticks(list(positions), [_label(row) for row in rated], fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel("ratio to the same-run peer or ceiling (black tick: target)")
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    pyplot.close(figure)
    return True


def plot_sweeps(rows: Sequence[Mapping[str, Any]], directory: pathlib.Path, stem: str) -> list[
    pathlib.Path
]:
    """One PNG per (scenario, swept parameter): value against the parameter, a line per
    metric family (the metric name without its swept part)."""
    series: dict[tuple[str, str, str], dict[str, list[tuple[float, float]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for row in rows:
        sweep = row.get("sweep")
        if not isinstance(sweep, dict) or not isinstance(row.get("value"), int | float):
            continue
        for parameter, x in sweep.items():
            if isinstance(x, int | float):
                family = str(row.get("family") or row["metric"])
                key = (str(row["scenario"]), str(parameter), str(row.get("unit", "")))
                series[key][family].append((float(x), float(row["value"])))
    written = []
    pyplot = _pyplot()
    for (scenario, parameter, unit), families in sorted(series.items()):
        figure, axes = pyplot.subplots(figsize=(9, 5))
        for family, points in sorted(families.items()):
            points.sort()
            axes.plot([x for x, _ in points], [y for _, y in points], marker="o", label=family)
        axes.set_xscale("log")
        axes.set_xlabel(parameter)
        axes.set_ylabel(unit)
        axes.set_title(f"{scenario}: {unit} by {parameter}")
        axes.legend(fontsize=8)
        figure.tight_layout()
        name = f"{stem}-{scenario}-{_slug(unit)}-by-{_slug(parameter)}.png"
        path = directory / name
        figure.savefig(path, dpi=90)
        pyplot.close(figure)
        written.append(path)
    return written


def write_plots(document: Mapping[str, Any], json_path: pathlib.Path) -> list[pathlib.Path]:
    rows = [row for row in document.get("results", ()) if isinstance(row, dict)]
    directory, stem = json_path.parent, json_path.stem
    written = []
    ratios = directory / f"{stem}-ratios.png"
    machine = document.get("machine") or {}
    title = f"raftlog benches {str(document.get('started', ''))[:19]}, {machine.get('cpus')} CPUs"
    if plot_ratios(rows, ratios, title):
        written.append(ratios)
    written.extend(plot_sweeps(rows, directory, stem))
    return written
