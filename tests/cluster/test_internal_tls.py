"""Node-to-node TLS from `raftlog serve` flags: mutual TLS, and no half-configured start."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from raftlog.testing import LocalCluster

trustme = pytest.importorskip("trustme", reason="trustme (test extra) makes the test certificates")

pytestmark = pytest.mark.clients


def _write_certificates(directory: pathlib.Path) -> list[str]:
    ca = trustme.CA()
    certificate = ca.issue_cert("127.0.0.1")
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    certificate.cert_chain_pems[0].write_to_path(str(directory / "node.pem"))
    certificate.private_key_pem.write_to_path(str(directory / "node.key"))
    return [
        "--internal-tls-cert", str(directory / "node.pem"),
        "--internal-tls-key", str(directory / "node.key"),
        "--internal-tls-ca", str(directory / "ca.pem"),
    ]  # fmt: skip


def test_cluster_replicates_over_mutual_tls(tmp_path: pathlib.Path) -> None:
    flags = _write_certificates(tmp_path)
    with LocalCluster(tmp_path / "cluster", nodes=3, extra_arguments=flags) as cluster:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin.create_topics([NewTopic("secret", 1, 3)])["secret"].result(30)
        producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
        for index in range(50):
            producer.produce("secret", f"v{index}".encode())
        assert producer.flush(30) == 0
        consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "g"})
        consumer.assign([TopicPartition("secret", 0, 0)])
        values: list[bytes] = []
        for _ in range(40):
            values += [m.value() for m in consumer.consume(100, 0.5) if m.error() is None]
            if len(values) >= 50:
                break
        consumer.close()
        assert values == [f"v{index}".encode() for index in range(50)]
        for member in cluster.members:
            assert b"tls=True" in member.log_path.read_bytes()


def test_half_configured_tls_is_refused_with_its_reason(tmp_path: pathlib.Path) -> None:
    flags = _write_certificates(tmp_path)
    result = subprocess.run(
        [
            sys.executable, "-m", "raftlog.cli", "serve",
            "--data-dir", str(tmp_path / "data"),
            "--kafka-addr", "127.0.0.1:0",
            "--peers", "1@127.0.0.1:0",
            "--admin-addr", "127.0.0.1:0",
            *flags[:4],  # certificate and key, no CA
        ],
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert b"missing internal_tls_ca" in result.stderr
