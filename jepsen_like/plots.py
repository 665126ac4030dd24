"""Throughput and latency over time, with nemesis faults shaded, as PNG files.

matplotlib is imported here only, with the non-interactive Agg backend, so checking a
run never needs a display and the checkers never need matplotlib at all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jepsen_like.history import History, Operation, Type
from jepsen_like.nemesis import FaultInterval

BUCKETS_MAX = 100
BUCKETS_MIN = 10
COMPLETIONS_PER_BUCKET = 20
"""Throughput resolution: enough completions per bucket for a smooth rate, whatever the
time scale of the run, within [BUCKETS_MIN, BUCKETS_MAX] buckets."""
FIGURE_SIZE_INCHES = (10.0, 4.5)
TYPE_COLOURS = {Type.OK: "#2b8a3e", Type.FAIL: "#c92a2a", Type.INFO: "#e67700"}
FAULT_COLOURS = ("#4dabf7", "#f783ac", "#ffd43b", "#a9e34b", "#b197fc", "#63e6be")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _origin_ns(history: History) -> int:
    return history.entries[0].time_ns if history.entries else 0


def _shade_faults(axes: Any, faults: Sequence[FaultInterval], origin_ns: int, end_s: float) -> None:
    colours: dict[str, str] = {}
    for fault in faults:
        colour = colours.setdefault(fault.kind, FAULT_COLOURS[len(colours) % len(FAULT_COLOURS)])
        start_s = (fault.start_ns - origin_ns) / 1e9
        stop_s = end_s if fault.stop_ns is None else (fault.stop_ns - origin_ns) / 1e9
        label = fault.kind if fault.kind not in axes.get_legend_handles_labels()[1] else None
        axes.axvspan(start_s, stop_s, color=colour, alpha=0.25, label=label, linewidth=0)


def _end_s(history: History, origin_ns: int) -> float:
    return max((history.entries[-1].time_ns - origin_ns) / 1e9, 1e-9) if history.entries else 1.0


def plot_throughput(
    history: History, faults: Sequence[FaultInterval], path: Path, title: str
) -> Path:
    """Completions per second: ok ones per function, failed and indeterminate ones in total."""
    plt = _pyplot()
    origin_ns = _origin_ns(history)
    end_s = _end_s(history, origin_ns)
    completed = [op for op in history.operations if op.completion is not None]
    buckets = min(BUCKETS_MAX, max(BUCKETS_MIN, len(completed) // COMPLETIONS_PER_BUCKET))
    bucket_s = end_s / buckets
    counts: dict[str, list[int]] = defaultdict(lambda: [0] * buckets)
    for op in completed:
        completion = op.completion
        if completion is None:
            continue
        at_s = (completion.time_ns - origin_ns) / 1e9
        label = f"{op.f} ok" if op.type is Type.OK else f"all {op.type}"
        counts[label][min(int(at_s / bucket_s), buckets - 1)] += 1
    figure, axes = plt.subplots(figsize=FIGURE_SIZE_INCHES)
    _shade_faults(axes, faults, origin_ns, end_s)
    times = [(i + 0.5) * bucket_s for i in range(buckets)]
    for label in sorted(counts):
        axes.plot(times, [c / bucket_s for c in counts[label]], label=label, linewidth=1)
    axes.set_xlabel("time (s)")
    axes.set_ylabel("operations / s")
    axes.set_title(f"{title}: throughput")
    axes.set_xlim(0, end_s)
    axes.legend(loc="upper right", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)
    plt.close(figure)
    return path


def _latency_points(
    history: History, origin_ns: int
) -> dict[Type, tuple[list[float], list[float]]]:
    points: dict[Type, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for op in history.operations:
        latency_ns = _latency_ns(op)
        if latency_ns is None:
            continue
        xs, ys = points[op.type]
        xs.append((op.invoke_ns - origin_ns) / 1e9)
        ys.append(max(latency_ns / 1e6, 1e-3))
    return points


def _latency_ns(op: Operation) -> int | None:
    if op.completion is None:
        return None
    return op.completion.time_ns - op.invoke_ns


def plot_latency(history: History, faults: Sequence[FaultInterval], path: Path, title: str) -> Path:
    """Each completed operation's latency at its invocation time, coloured by outcome."""
    plt = _pyplot()
    origin_ns = _origin_ns(history)
    end_s = _end_s(history, origin_ns)
    figure, axes = plt.subplots(figsize=FIGURE_SIZE_INCHES)
    _shade_faults(axes, faults, origin_ns, end_s)
    for kind, (xs, ys) in sorted(_latency_points(history, origin_ns).items()):
        axes.scatter(xs, ys, s=4, color=TYPE_COLOURS[kind], label=str(kind), alpha=0.7)
    axes.set_yscale("log")
    axes.set_xlabel("time (s)")
    axes.set_ylabel("latency (ms)")
    axes.set_title(f"{title}: latency")
    axes.set_xlim(0, end_s)
    axes.legend(loc="upper right", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)
    plt.close(figure)
    return path
