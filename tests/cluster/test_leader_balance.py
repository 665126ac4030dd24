"""A node that restarts leads nothing; the balancer hands its preferred partitions back."""

from __future__ import annotations

import collections
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

from raftlog.testing import LocalCluster

TOPIC = "balanced"
PARTITIONS = 6


def _leaders(admin: AdminClient) -> dict[int, int]:
    topic = admin.list_topics(TOPIC, timeout=10).topics[TOPIC]
    return {index: part.leader for index, part in topic.partitions.items()}


def _wait(admin: AdminClient, check: object, timeout_s: float) -> dict[int, int]:
    deadline = time.monotonic() + timeout_s
    leaders: dict[int, int] = {}
    while time.monotonic() < deadline:
        leaders = _leaders(admin)
        if check(leaders):  # type: ignore[operator]
            return leaders
        time.sleep(0.25)
    raise AssertionError(f"not reached within {timeout_s} s: leaders {leaders}")


def test_leadership_returns_to_a_restarted_node(tmp_path: Path) -> None:
    arguments = ("--leader-balance-interval-ms", "500")
    with LocalCluster(tmp_path, nodes=3, extra_arguments=arguments) as cluster:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin.create_topics([NewTopic(TOPIC, PARTITIONS, 3)])[TOPIC].result(30)
        _wait(admin, lambda ls: all(leader > 0 for leader in ls.values()), 30)
        cluster.node(2).kill()
        _wait(admin, lambda ls: all(leader in (1, 3) for leader in ls.values()), 30)
        cluster.node(2).start()
        leaders = _wait(
            admin,
            lambda ls: sorted(collections.Counter(ls.values()).values()) == [2, 2, 2],
            60,
        )
        assert set(leaders.values()) == {1, 2, 3}
        logs = "".join(cluster.node(n).log_path.read_text() for n in (1, 3))
        assert "event=leader_balanced" in logs
