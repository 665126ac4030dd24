"""What every scenario shares: its settings, its result value and timing helpers."""

import pathlib
import statistics
import time
from collections.abc import Callable

import attrs


@attrs.frozen
class Settings:
    quick: bool
    """Short runs with small data, for CI and smoke tests."""
    scale: float
    """Multiplies every data size (a smoke test uses a tiny fraction)."""
    work_directory: pathlib.Path
    """Where disk scenarios put their files: the disk being measured."""

    def size_bytes(self, quick_bytes: int, full_bytes: int, floor_bytes: int = 1) -> int:
        chosen = quick_bytes if self.quick else full_bytes
        return max(floor_bytes, int(chosen * self.scale))


@attrs.frozen
class Result:
    """One measured figure and the ceiling it is judged against."""

    scenario: str
    metric: str
    value: float
    unit: str
    ceiling_name: str | None = None
    ceiling_value: float | None = None
    ratio: float | None = None
    """value / ceiling_value, or as `notes` define it when lower is better."""
    target_ratio: float | None = None
    notes: str = ""
    sweep: dict[str, float] | None = attrs.field(default=None, hash=False)
    """For a point of a sweep: the swept parameter(s) and value(s), e.g. record bytes."""
    family: str | None = None
    """For a sweep point: the line it belongs to in the plot (metric without the point)."""

    @property
    def meets_target(self) -> bool | None:
        if self.ratio is None or self.target_ratio is None:
            return None
        return self.ratio >= self.target_ratio


def median_seconds(action: Callable[[], object], repeats: int) -> float:
    """Median wall time of `repeats` runs of `action`."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def ratio(value: float, ceiling: float) -> float:
    return value / ceiling if ceiling > 0 else 0.0


def results_from_rows(rows: list[dict[str, object]]) -> list[Result]:
    """Results from rows written as plain dicts with Result's field names."""
    return [Result(**{**row, "notes": row.get("notes") or ""}) for row in rows]  # type: ignore[arg-type]
