"""`python -m benches compare OLD.json NEW.json`: what changed between two result files.

Rows are matched by (scenario, metric). Whether a change is a regression depends on the
unit: time units and CPU shares are better lower, everything else (bytes/s, records/s,
commits/s) better higher. The machines are shared and noisy, so the threshold (default
20%) applies to the change of each figure *and* a row whose ratio to its same-run peer or
ceiling held steady is not called a regression: the peer slowed down with it.

Exit status: 0 no regression, 1 at least one regression past the threshold, 2 unusable
input.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

LOWER_IS_BETTER_UNITS = frozenset({"ms", "s", "us", "µs", "ns", "% of a core"})
DEFAULT_THRESHOLD = 0.2


class CompareError(ValueError):
    """A result file that cannot be compared."""


@attrs.frozen
class Change:
    scenario: str
    metric: str
    unit: str
    old: float | None
    new: float | None
    old_ratio: float | None
    new_ratio: float | None

    @property
    def lower_is_better(self) -> bool:
        return self.unit in LOWER_IS_BETTER_UNITS

    @property
    def change(self) -> float | None:
        """Relative change of the value, signed so that positive is better."""
        if self.old is None or self.new is None or self.old == 0:
            return None
        relative = (self.new - self.old) / abs(self.old)
        return -relative if self.lower_is_better else relative

    @property
    def ratio_change(self) -> float | None:
        """Relative change of the ratio to the same-run peer or ceiling (higher is better
        for every ratio the harness writes)."""
        if self.old_ratio is None or self.new_ratio is None or self.old_ratio == 0:
            return None
        return (self.new_ratio - self.old_ratio) / abs(self.old_ratio)

    def regressed(self, threshold: float) -> bool:
        change = self.change
        if change is None or change >= -threshold:
            return False
        ratio_change = self.ratio_change
        return ratio_change is None or ratio_change < -threshold


def load(path: pathlib.Path) -> Mapping[str, Any]:
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise CompareError(f"{path}: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("results"), list):
        raise CompareError(f"{path}: not a benches result file (no 'results' list)")
    return document


def _rows(document: Mapping[str, Any]) -> dict[tuple[str, str], Mapping[str, Any]]:
    rows: dict[tuple[str, str], Mapping[str, Any]] = {}
    for row in document["results"]:
        if isinstance(row, dict) and "scenario" in row and "metric" in row:
            rows[(str(row["scenario"]), str(row["metric"]))] = row
    return rows


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """Every row of either file, in the new file's order, then rows only the old one has."""
    old_rows, new_rows = _rows(old), _rows(new)
    keys = [*new_rows, *(key for key in old_rows if key not in new_rows)]
    found = []
    for key in keys:
        before, after = old_rows.get(key, {}), new_rows.get(key, {})
        unit = str(after.get("unit", before.get("unit", "")))
        found.append(Change(
            key[0], key[1], unit,
            _number(before.get("value")), _number(after.get("value")),
            _number(before.get("ratio")), _number(after.get("ratio")),
        ))  # fmt: skip
    return found


def _cell(value: float | None, suffix: str = "") -> str:
    if value is None:
        return "-"
    return (f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}") + suffix


def table(found: Sequence[Change], threshold: float) -> str:
    rows = [("scenario", "metric", "old", "new", "change", "ratio old->new", "verdict")]
    for change in found:
        relative = change.change
        verdict = (
            "new" if change.old is None
            else "gone" if change.new is None
            else "REGRESSED" if change.regressed(threshold)
            else "better" if relative is not None and relative > threshold
            else "same"
        )  # fmt: skip
        rows.append((
            change.scenario, change.metric,
            f"{_cell(change.old)} {change.unit}", f"{_cell(change.new)} {change.unit}",
            "-" if relative is None else f"{relative * 100:+.0f}%",
            f"{_cell(change.old_ratio)} -> {_cell(change.new_ratio)}", verdict,
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    )


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benches compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old", type=pathlib.Path)
    parser.add_argument("new", type=pathlib.Path)
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help="relative change that counts as a regression (default 0.2)")
    arguments = parser.parse_args(list(argv))
    if not 0 < arguments.threshold < 10:
        print("compare: --threshold must be between 0 and 10", file=sys.stderr)
        return 2
    try:
        found = changes(load(arguments.old), load(arguments.new))
    except CompareError as error:
        print(f"compare: {error}", file=sys.stderr)
        return 2
    print(table(found, arguments.threshold))
    regressions = [change for change in found if change.regressed(arguments.threshold)]
    print(f"\n{len(regressions)} regression(s) past {arguments.threshold:.0%}")
    return 1 if regressions else 0
