"""Topic settings: the controller command, and DescribeConfigs / IncrementalAlterConfigs
served to a real Kafka admin client (confluent-kafka) and to `raftlog topic alter-config`.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewTopic,
)

from raftlog.controller.metadata import INVALID_CONFIG, MetadataError, MetadataState
from raftlog.testing import LocalCluster


def _state_with_topic() -> MetadataState:
    state = MetadataState()
    state.apply({"type": "register_node", "node_id": 1, "kafka_host": "h", "kafka_port": 1,
                 "internal_host": "h", "internal_port": 2})  # fmt: skip
    state.apply({"type": "create_topic", "name": "t", "topic_id": "0" * 32, "partitions": 1,
                 "assignments": [[1]], "replication_factor": 1,
                 "configs": {"retention.ms": "1000", "x.y": "z"}})  # fmt: skip
    return state


def test_alter_sets_and_deletes_all_or_nothing() -> None:
    state = _state_with_topic()
    altered = state.apply(
        {"type": "alter_topic_configs", "name": "t", "set": {"retention.bytes": "2048"},
         "delete": ["x.y"]}
    )  # fmt: skip
    assert dict(altered.configs) == {"retention.ms": "1000", "retention.bytes": "2048"}
    before = state.topics["t"]
    for bad in ({"retention.ms": "soon"}, {"retention.ms": "-2"}, {"Bad Name": "1"},
                {"big": "x" * 5000}):  # fmt: skip
        with pytest.raises(MetadataError) as refused:
            state.apply(
                {"type": "alter_topic_configs", "name": "t",
                 "set": {"retention.bytes": "1", **bad}, "delete": ["retention.ms"]}
            )  # fmt: skip
        assert refused.value.error_code == INVALID_CONFIG
        assert state.topics["t"] is before  # nothing of the command applied


@pytest.fixture
def node(tmp_path: pathlib.Path) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path / "raftlog", nodes=1) as cluster:
        yield cluster


@pytest.mark.clients
def test_a_kafka_admin_client_describes_and_alters_topic_configs(node: LocalCluster) -> None:
    admin = AdminClient({"bootstrap.servers": node.bootstrap})
    admin.create_topics([NewTopic("configured", 1, config={"retention.ms": "60000"})])[
        "configured"
    ].result(30)
    resource = ConfigResource(ConfigResource.Type.TOPIC, "configured")

    described = admin.describe_configs([resource])[resource].result(30)
    assert described["retention.ms"].value == "60000" and not described["retention.ms"].is_default
    assert described["cleanup.policy"].value == "delete" and described["cleanup.policy"].is_default
    assert described["segment.bytes"].is_read_only

    change = ConfigResource(
        ConfigResource.Type.TOPIC, "configured",
        incremental_configs=[
            ConfigEntry("retention.bytes", "1048576",
                        incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
        ],
    )  # fmt: skip
    admin.incremental_alter_configs([change])[change].result(30)
    described = admin.describe_configs([resource])[resource].result(30)
    assert described["retention.bytes"].value == "1048576"
    # Back to the node's default (its --retention-ms, 7 days unless set).
    assert described["retention.ms"].value == "604800000"
    assert described["retention.ms"].source == ConfigSource.STATIC_BROKER_CONFIG.value

    bad = ConfigResource(
        ConfigResource.Type.TOPIC, "configured",
        incremental_configs=[
            ConfigEntry("retention.ms", "later", incremental_operation=AlterConfigOpType.SET)
        ],
    )  # fmt: skip
    with pytest.raises(KafkaException, match=r"retention\.ms: expected an integer"):
        admin.incremental_alter_configs([bad])[bad].result(30)


def _raftlog(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "raftlog.cli", *arguments],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_cli_alter_config_and_describe(node: LocalCluster) -> None:
    b = ("--bootstrap", node.bootstrap)
    assert _raftlog("topic", "create", "tuned", *b).returncode == 0
    altered = _raftlog("topic", "alter-config", "tuned", "--set", "retention.ms=3600000",
                       "--set", "retention.bytes=4096", *b)  # fmt: skip
    assert altered.returncode == 0, altered.stderr
    assert altered.stdout.strip() == (
        "altered topic tuned: retention.ms=3600000, retention.bytes=4096"
    )
    described = _raftlog("topic", "describe", "tuned", *b).stdout
    assert "retention.ms=3600000," in described and "cleanup.policy=delete (default)" in described

    reset = _raftlog("topic", "alter-config", "tuned", "--delete", "retention.ms", *b)
    assert reset.returncode == 0, reset.stderr
    assert "retention.ms=604800000 (default)" in _raftlog("topic", "describe", "tuned", *b).stdout

    for arguments, message in (
        (("--set", "retention.ms=never"), "INVALID_CONFIG"),
        ((), "nothing to change"),
        (("--set", "a=1", "--delete", "a"), "both set and deleted"),
    ):
        refused = _raftlog("topic", "alter-config", "tuned", *arguments, *b)
        assert refused.returncode == 1 and message in refused.stderr, refused.stderr
    missing = _raftlog("topic", "alter-config", "nope", "--set", "retention.ms=1", *b)
    assert missing.returncode == 1 and "UNKNOWN_TOPIC_OR_PARTITION" in missing.stderr
