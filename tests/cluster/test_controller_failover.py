"""A metadata request sent while the controller elects a new leader waits for it.

The controller leader is killed and, at once, a CreateTopics goes to a survivor, on our
own codec so that no client-side retry hides the answer. The survivor still names the
dead node as the controller leader (or none): the request must wait for the election
within its timeout and succeed, not fail with NOT_CONTROLLER.
"""

from __future__ import annotations

import json
import pathlib
import time
import urllib.request

from raftlog.kafka.admin_client import KafkaAdminConnection
from raftlog.protocol.messages.generated.create_topics_request import (
    CreatableTopic,
    CreateTopicsRequest,
)
from raftlog.protocol.messages.generated.create_topics_response import CreateTopicsResponse
from raftlog.testing import LocalCluster

TOPIC = "made-during-election"


def _controller_leader(cluster: LocalCluster, node: int) -> int | None:
    with urllib.request.urlopen(f"{cluster.node(node).admin_url}/v1/cluster", timeout=10) as r:
        leader = json.loads(r.read())["controller_leader"]
    return None if leader is None else int(leader)


def test_a_create_sent_as_the_controller_leader_dies_waits_for_the_next(
    tmp_path: pathlib.Path,
) -> None:
    with LocalCluster(tmp_path, nodes=3) as cluster:
        deadline = time.monotonic() + 20
        while (leader := _controller_leader(cluster, 1)) is None:
            assert time.monotonic() < deadline, "no controller leader"
            time.sleep(0.1)
        survivor = next(node for node in (1, 2, 3) if node != leader)
        cluster.node(leader).kill()
        request = CreateTopicsRequest(
            topics=[
                CreatableTopic(
                    name=TOPIC,
                    num_partitions=1,
                    replication_factor=2,
                    assignments=[],
                    configs=[],
                )
            ],
            timeout_ms=30_000,
        )
        with KafkaAdminConnection(cluster.node(survivor).address, timeout_s=60) as connection:
            response = connection.request(request, 5)
        assert isinstance(response, CreateTopicsResponse)
        assert response.topics[0].error_code == 0, response.topics[0]
        assert _controller_leader(cluster, survivor) not in (None, leader)
