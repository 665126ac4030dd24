"""End-to-end latency (produce to consume) against offered load, one node, fsync=always.

For each offered load a fresh topic gets a consumer process (`assign()` at the end of the
log) and then a producer process that sends 100-byte records at that steady rate with
acks=all, each stamped with CLOCK_MONOTONIC (one clock for every process on the host).
The consumer takes the stamp from each record it receives: the latency is everything a
record goes through, from `produce()` in one client to `poll()` returning it in another,
fsync before the high watermark included. The producer reports its acknowledgement
latencies at the same load, so both curves (latency percentiles against load) come from
one run. The points' rows carry a ``sweep`` of the offered load for `benches/plots.py`.

The physical floor of a durable end-to-end path is one small fdatasync; each p50 is shown
against the fdatasync p50 measured in the same run (ratio = floor / raftlog, the share of
the wait that is the disk).
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import tempfile

from benches.ceilings import _fsync_latency_us
from benches.common import Result, Settings
from benches.produce import _load, raftlog_node

SCENARIO = "end_to_end"
LOADS = (100, 1000, 5000)
LOADS_QUICK = (100, 1000)
SECONDS_PER_POINT = 8.0
SECONDS_PER_POINT_QUICK = 2.0
RECORD_BYTES = 100
FSYNC_SAMPLES = 200


def _seconds(settings: Settings) -> float:
    chosen = SECONDS_PER_POINT_QUICK if settings.quick else SECONDS_PER_POINT
    return max(0.5, chosen * min(1.0, settings.scale * 10))


def _point(bootstrap: str, topic: str, rate: int, seconds: float) -> tuple[dict, dict]:
    """Consumer first (waiting at the end of the topic), then the paced producer."""
    count = max(20, int(rate * seconds))
    consumer = subprocess.Popen(
        [sys.executable, "-m", "benches.kafka_load", "e2e-consume", "--bootstrap", bootstrap,
         "--topic", topic, "--count", str(count), "--timeout", str(seconds + 60)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=pathlib.Path(__file__).resolve().parents[1],
    )
    try:
        assert consumer.stdout is not None
        ready = consumer.stdout.readline()
        if ready.strip() != "ready":
            raise RuntimeError(f"e2e consumer did not start: {ready} {consumer.stderr.read()}")
        produced = _load("e2e-produce", "--bootstrap", bootstrap, "--topic", topic,
                         "--count", str(count), "--size", str(RECORD_BYTES),
                         "--rate", str(rate), "--timeout", str(seconds + 60))
        out, err = consumer.communicate(timeout=seconds + 90)
    finally:
        if consumer.poll() is None:
            consumer.kill()
            consumer.wait()
    if consumer.returncode != 0:
        raise RuntimeError(f"e2e consumer failed: {err[-2000:]}")
    consumed: dict = json.loads(out.strip().splitlines()[-1])
    return produced, consumed


def run(settings: Settings) -> list[Result]:
    seconds = _seconds(settings)
    loads = LOADS_QUICK if settings.quick else LOADS
    results: list[Result] = []
    floor_ms = _fsync_latency_us(settings, FSYNC_SAMPLES) / 1000
    with (
        tempfile.TemporaryDirectory(dir=settings.work_directory) as scratch,
        raftlog_node(pathlib.Path(scratch)) as bootstrap,
    ):
        # Warm up: topic creation, leader election and the first connections.
        _load("single", "--bootstrap", bootstrap, "--topic", "e2e-warmup", "--count", "20",
              "--size", str(RECORD_BYTES))
        for rate in loads:
            produced, consumed = _point(bootstrap, f"e2e-{rate}", rate, seconds)
            sweep = {"offered records/s": float(rate)}
            note = (f"{consumed['records']:,} of {produced['records']:,} records received; "
                    f"achieved {produced['records_per_s']:,.0f} records/s")
            for name in ("p50", "p99", "p999"):
                value = consumed[f"{name}_ms"]
                results.append(Result(
                    SCENARIO, f"end-to-end {name} at {rate} records/s", value, "ms",
                    "one 4 KiB fdatasync, p50" if name == "p50" else None,
                    floor_ms if name == "p50" else None,
                    floor_ms / value if name == "p50" and value > 0 else None,
                    None, note, sweep, f"end-to-end {name}",
                ))
            for name in ("p50", "p99"):
                results.append(Result(
                    SCENARIO, f"produce ack {name} at {rate} records/s",
                    produced[f"{name}_ms"], "ms", notes="acks=all, the same run",
                    sweep=sweep, family=f"produce ack {name}",
                ))
    return results
