"""The operator CLI against real nodes: topic, produce, consume, cluster status, segment list.

Every command runs as a real `raftlog` process against real `raftlog serve` processes;
records cross over with kcat and kafka-python's partitioner, so the CLI is checked
against independent Kafka implementations, not against itself.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from raftlog.cli_records import murmur2, partition_for_key
from raftlog.testing import LocalCluster

pytestmark = pytest.mark.clients


@pytest.fixture
def node(tmp_path: pathlib.Path) -> Iterator[LocalCluster]:
    """One node without auto-created topics, so a deleted topic stays deleted."""
    with LocalCluster(tmp_path / "raftlog", nodes=1) as cluster:
        yield cluster


def _raftlog(*arguments: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "raftlog.cli", *arguments],
        input=stdin, capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip


def _ok(*arguments: str, stdin: str | None = None) -> str:
    result = _raftlog(*arguments, stdin=stdin)
    assert result.returncode == 0, f"{arguments}: {result.stderr}"
    return result.stdout


def _json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line]


# -- the partitioner ---------------------------------------------------------------------


def test_murmur2_matches_the_java_clients_known_values() -> None:
    # Values from Kafka's Java Utils.murmur2 (as kafka-python's tests quote them).
    assert murmur2(b"21") == -973932308
    assert murmur2(b"foobar") == -790332482
    assert murmur2(b"a-little-bit-long-string") == -985981536
    assert murmur2(b"a-little-bit-longer-string") == -1486304829
    assert murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") == -58897971
    assert murmur2(b"abc") == 479470107


@given(st.binary(max_size=64))
def test_murmur2_agrees_with_kafka_python(key: bytes) -> None:
    assert murmur2(key) & 0xFFFFFFFF == kafka_python_murmur2(key)


# -- topics, produce, consume on one node ---------------------------------------------


def test_topic_lifecycle_and_records_round_trip(node: LocalCluster) -> None:
    b = ("--bootstrap", node.bootstrap)
    created = _ok("topic", "create", "events", "--partitions", "3",
                  "--config", "retention.ms=3600000", *b)  # fmt: skip
    assert created.strip() == "created topic events: 3 partitions, replication factor 1"
    again = _raftlog("topic", "create", "events", *b)
    assert again.returncode == 1 and "TOPIC_ALREADY_EXISTS" in again.stderr

    listed = json.loads(_ok("topic", "list", "--format", "json", *b))
    assert {"topic": "events", "partitions": 3, "replication_factor": 1, "internal": False} in (
        listed
    )
    assert "events" in _ok("topic", "list", *b)

    lines = "".join(f"user-{i % 4}|payload {i}\n" for i in range(20))
    produced = json.loads(
        _ok("produce", "events", "--key-separator", "|", "--header", "source=test",
            "--format", "json", *b, stdin=lines)
    )  # fmt: skip
    assert produced["records"] == 20

    records = _json_lines(_ok("consume", "events", "--end", "--format", "json", *b))
    assert len(records) == 20
    assert sorted(str(r["value"]) for r in records) == sorted(f"payload {i}" for i in range(20))
    for record in records:
        key = str(record["key"]).encode()
        # The partition Kafka's Java client (and kafka-python) would choose for the key.
        assert record["partition"] == partition_for_key(key, 3)
        assert record["partition"] == (kafka_python_murmur2(key) & 0x7FFFFFFF) % 3
        assert record["headers"] == {"source": "test"}

    described = json.loads(_ok("topic", "describe", "events", "--format", "json", *b))
    ends = {row["partition"]: row["end"] for row in described["partitions"]}
    counts = {p: sum(1 for r in records if r["partition"] == p) for p in range(3)}
    for partition, end in ends.items():
        # Each partition's end: its records plus the leader's NOOP control batch.
        assert end == counts[partition] + 1
    assert all(row["leader"] == 1 and row["replicas"] == "1" for row in described["partitions"])

    deleted = _ok("topic", "delete", "events", *b)
    assert deleted.strip() == "deleted topic events"
    gone = _raftlog("topic", "describe", "events", *b)
    assert gone.returncode == 1 and "does not exist" in gone.stderr


def test_consume_positions_template_count_and_group(node: LocalCluster) -> None:
    b = ("--bootstrap", node.bootstrap)
    _ok("topic", "create", "log", "--partitions", "1", *b)
    _ok("produce", "log", "--key", "k", *b, stdin="".join(f"v{i}\n" for i in range(5)))
    middle_ms = int(time.time() * 1000)
    time.sleep(0.05)
    _ok("produce", "log", "--key", "k", *b, stdin="".join(f"v{i}\n" for i in range(5, 10)))

    everything = _ok("consume", "log", "--end", "--format", "%p:%o %k=%v", *b).splitlines()
    assert everything[0] == "0:1 k=v0"  # offset 0 is the leader's NOOP
    assert [line.split("=")[1] for line in everything] == [f"v{i}" for i in range(10)]

    assert _ok("consume", "log", "--from", "latest", "--end", *b) == ""
    assert _ok("consume", "log", "--from", "3", "--count", "2", *b).split() == ["v2", "v3"]
    by_time = _ok("consume", "log", "--from", f"@{middle_ms}", "--end", *b).split()
    assert by_time == [f"v{i}" for i in range(5, 10)]
    assert _ok("consume", "log", "--partition", "0", "--count", "1", *b).split() == ["v0"]

    first = _ok("consume", "log", "--group", "readers", "--count", "4", *b).split()
    second = _ok("consume", "log", "--group", "readers", "--count", "3", *b).split()
    assert first == ["v0", "v1", "v2", "v3"] and second == ["v4", "v5", "v6"]

    bad = _raftlog("consume", "log", "--from", "yesterday", *b)
    assert bad.returncode == 1 and "--from" in bad.stderr
    missing = _raftlog("consume", "log", "--partition", "7", "--count", "1", *b)
    assert missing.returncode == 1 and "no partition 7" in missing.stderr


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is not installed")
def test_records_cross_over_with_kcat(node: LocalCluster) -> None:
    b = ("--bootstrap", node.bootstrap)
    _ok("topic", "create", "shared", "--partitions", "1", *b)
    _ok("produce", "shared", "--key", "from-cli", "--header", "h=1", *b, stdin="one\ntwo\n")
    subprocess.run(
        ["kcat", "-b", node.bootstrap, "-P", "-t", "shared", "-K", ":"],
        input=b"from-kcat:three\n", check=True, timeout=30, capture_output=True,
    )  # fmt: skip
    read_by_kcat = subprocess.run(
        ["kcat", "-b", node.bootstrap, "-C", "-t", "shared", "-o", "beginning", "-e",
         "-f", "%k=%s\n"],
        check=True, timeout=30, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    assert read_by_kcat == ["from-cli=one", "from-cli=two", "from-kcat=three"]
    read_by_cli = _ok("consume", "shared", "--end", "--format", "%k=%v", *b).split()
    assert read_by_cli == read_by_kcat


@pytest.mark.parametrize(
    "command",
    [
        ("topic", "list"),
        ("topic", "create", "x"),
        ("produce", "x"),
        ("consume", "x"),
        ("cluster", "status"),
        ("segment", "list", "x/0"),
    ],
)
def test_commands_say_when_no_node_answers(command: tuple[str, ...]) -> None:
    flag = "--admin" if command[0] in ("cluster", "segment") else "--bootstrap"
    result = _raftlog(*command, flag, "127.0.0.1:1", stdin="")
    assert result.returncode == 1
    assert "no node at 127.0.0.1:1" in result.stderr and "raftlog serve" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ("topic", "create"), ("topic", "list"), ("topic", "describe"), ("topic", "delete"),
        ("topic", "alter-config"), ("produce",), ("consume",), ("cluster", "status"),
        ("segment", "list"),
    ],
)  # fmt: skip
def test_every_command_has_help(command: tuple[str, ...]) -> None:
    result = _raftlog(*command, "--help")
    assert result.returncode == 0 and "usage: raftlog" in result.stdout


# -- cluster status and segments on three nodes ----------------------------------------


def test_cluster_status_and_segment_list_on_three_nodes(tmp_path: pathlib.Path) -> None:
    with LocalCluster(tmp_path, nodes=3) as cluster:
        b = ("--bootstrap", cluster.bootstrap)
        _ok("topic", "create", "replicated", "--partitions", "2", *b)
        _ok("produce", "replicated", "--partition", "1", *b, stdin="a\nb\nc\n")
        admin = ("--admin", cluster.node(2).admin_address)

        deadline = time.monotonic() + 30
        while True:
            status = json.loads(_ok("cluster", "status", "--format", "json", *admin))
            partitions = {
                (p["topic"], p["partition"]): p
                for p in status["partitions"]
                if p["topic"] == "replicated"
            }
            led = all(p["leader"] for p in partitions.values()) and len(partitions) == 2
            if led or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        cluster_document = status["cluster"]
        assert [n["node_id"] for n in cluster_document["nodes"]] == [1, 2, 3]
        # Each node registers its own --peers entry as its internal address.
        assert [n["internal"] for n in cluster_document["nodes"]] == [
            f"127.0.0.1:{member.internal_port}" for member in cluster.members
        ]
        assert [n["connected"] for n in cluster_document["nodes"]] == [True, None, True]
        assert cluster_document["controller_leader"] in (1, 2, 3)
        assert cluster_document["node_id"] == 2
        for partition in partitions.values():
            [segment] = partition["segments"]
            assert sorted(segment["replicas"]) == [1, 2, 3]
            assert segment["state"] == "head" and segment["leader"] in (1, 2, 3)
            assert segment["term"] >= 1
        assert partitions[("replicated", 1)]["high_watermark"] == 4  # 3 records and a NOOP

        text = _ok("cluster", "status", *admin)
        assert f"controller leader {cluster_document['controller_leader']}" in text
        for member in cluster.members:
            assert member.address in text
        links = [line.split()[3] for line in text.splitlines()[3:6]]
        assert links == ["up", "self", "up"], text
        assert "replicated/0" in text and "replicated/1" in text

        listed = json.loads(_ok("segment", "list", "replicated/1", "--format", "json", *admin))
        assert listed["partition"] == 1 and listed["segments"][0]["base_offset"] == 0
        segment_text = _ok("segment", "list", "replicated/1", *admin)
        assert segment_text.startswith("replicated/1  leader ")
        unknown = _raftlog("segment", "list", "replicated/9", *admin)
        assert unknown.returncode == 1 and "no partition 9" in unknown.stderr
