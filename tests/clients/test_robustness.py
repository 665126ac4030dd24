"""What must hold when things go wrong: restarts, crashes, cut connections, bad bytes."""

from __future__ import annotations

import contextlib
import pathlib
import random
import socket
import struct
import threading
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from raftlog.protocol.records import Record, build_batch
from raftlog.testing import LocalCluster, free_port

pytestmark = pytest.mark.clients
AUTO_CREATE = ("--auto-create-topics", "true")


def _produce(bootstrap: str, topic: str, values: list[bytes], **settings: object) -> list[bytes]:
    """Produce `values`; returns the ones whose delivery was acknowledged."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 2, **settings})
    acknowledged: list[bytes] = []
    for value in values:
        producer.produce(
            topic,
            value,
            on_delivery=lambda error, message: (
                None if error else acknowledged.append(message.value())
            ),
        )
        producer.poll(0)
    producer.flush(60)
    return acknowledged


def _read(bootstrap: str, topic: str, expected: int, timeout_s: float = 30) -> list[bytes]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    values: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    while len(values) < expected and time.monotonic() < deadline:
        for message in consumer.consume(1000, 0.5):
            if message.error() is None:
                values.append(message.value())
            elif message.error().code() != KafkaError._PARTITION_EOF:
                raise AssertionError(str(message.error()))
    consumer.close()
    return values


def test_restart_and_sigkill_lose_nothing_acknowledged(tmp_path: pathlib.Path) -> None:
    with LocalCluster(tmp_path, nodes=1, extra_arguments=AUTO_CREATE) as cluster:
        node = cluster.node(1)
        first = [f"before-restart-{i}".encode() for i in range(2000)]
        assert _produce(cluster.bootstrap, "durable", first, acks="all") == first
        assert node.stop() == 0
        node.start()
        assert _read(cluster.bootstrap, "durable", len(first)) == first

        # SIGKILL while producing: every acknowledged record survives.
        second = [f"before-kill-{i}".encode() for i in range(20_000)]
        acknowledged: list[bytes] = []
        producer = Producer(
            {"bootstrap.servers": cluster.bootstrap, "acks": "all", "linger.ms": 2,
             "message.timeout.ms": 5000}
        )  # fmt: skip
        for index, value in enumerate(second):
            producer.produce(
                "durable",
                value,
                on_delivery=lambda error, message: (
                    None if error else acknowledged.append(message.value())
                ),
            )
            producer.poll(0)
            if index == 10_000:
                producer.flush(10)
                node.kill()
        producer.flush(15)
        count_at_kill = len(acknowledged)
        assert count_at_kill >= 10_000
        node.start()
        stored = _read(cluster.bootstrap, "durable", len(first) + count_at_kill)
        assert stored[: len(first)] == first
        assert set(acknowledged) <= set(stored[len(first) :])


def test_acks_zero_and_one(raftlog_node: LocalCluster) -> None:
    values = [f"acks-{i}".encode() for i in range(500)]
    assert _produce(raftlog_node.bootstrap, "acks1", values, acks=1) == values
    assert _read(raftlog_node.bootstrap, "acks1", 500) == values
    _produce(raftlog_node.bootstrap, "acks0", values, acks=0)
    assert _read(raftlog_node.bootstrap, "acks0", 500) == values


class _CuttingProxy:
    """A TCP proxy that drops every connection after `cut_after_bytes` client bytes."""

    def __init__(self, port: int, target_port: int, cut_after_bytes: int) -> None:
        self.port = port
        self.target_port = target_port
        self.cut_after_bytes = cut_after_bytes
        self.cuts = 0
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self._server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _address = self._server.accept()
            except TimeoutError:
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, counted: bool) -> None:
        passed = 0
        try:
            while data := source.recv(65536):
                sink.sendall(data)
                passed += len(data)
                if counted and passed > self.cut_after_bytes:
                    self.cuts += 1
                    break
        except OSError:
            pass
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def close(self) -> None:
        self._stop.set()
        self._server.close()


def test_idempotent_producer_through_cut_connections_writes_each_record_once(
    tmp_path: pathlib.Path,
) -> None:
    # The node advertises the proxy, so every client connection goes through it.
    proxy_port = free_port()
    arguments = (*AUTO_CREATE, "--advertised-kafka-addr", f"127.0.0.1:{proxy_port}")
    with LocalCluster(tmp_path, nodes=1, extra_arguments=arguments) as cluster:
        proxy = _CuttingProxy(proxy_port, cluster.node(1).kafka_port, cut_after_bytes=2_000_000)
        try:
            values = [f"once-{i:05d}".encode() * 100 for i in range(20_000)]
            acknowledged = _produce(
                f"127.0.0.1:{proxy_port}",
                "once",
                values,
                acks="all",
                **{
                    "enable.idempotence": True,
                    "message.timeout.ms": 60_000,
                    "batch.size": 262_144,  # requests smaller than the cut, so each makes progress
                },
            )
            assert proxy.cuts >= 2, "the connection was cut mid-stream"
            assert acknowledged == values
            # Metadata names the proxy, so the read goes through it too.
            stored = _read(f"127.0.0.1:{proxy_port}", "once", len(values))
            assert stored == values, "every record exactly once, in order"
        finally:
            proxy.close()


def _frame(api_key: int, version: int, body: bytes, correlation_id: int = 7) -> bytes:
    header = struct.pack(">hhih", api_key, version, correlation_id, 4) + b"fuzz"
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def test_old_message_format_is_refused_not_fatal(raftlog_node: LocalCluster) -> None:
    assert _produce(raftlog_node.bootstrap, "formats", [b"seed"], acks="all") == [b"seed"]
    batch = bytearray(build_batch([Record(b"old")]))
    batch[16] = 1  # magic 1: a message set from before record batches
    # ProduceRequest v3: transactional id (null), acks, timeout, [topic [partition records]]
    body = (
        struct.pack(">hhi", -1, -1, 5000)
        + struct.pack(">ih", 1, 7) + b"formats"
        + struct.pack(">ii", 1, 0) + struct.pack(">i", len(batch)) + bytes(batch)
    )  # fmt: skip
    port = raftlog_node.node(1).kafka_port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(_frame(0, 3, body))
        size = struct.unpack(">i", connection.recv(4))[0]
        response = b""
        while len(response) < size:
            response += connection.recv(size - len(response))
    error_code = struct.unpack(">h", response[4 + 4 + 2 + 7 + 4 + 4 : 4 + 4 + 2 + 7 + 4 + 4 + 2])[0]
    assert error_code in (43, 2)  # UNSUPPORTED_FOR_MESSAGE_FORMAT or CORRUPT_MESSAGE
    assert _read(raftlog_node.bootstrap, "formats", 1) == [b"seed"]


def test_garbage_frames_never_take_the_node_down(raftlog_node: LocalCluster) -> None:
    port = raftlog_node.node(1).kafka_port
    stop = threading.Event()
    produced: list[int] = []

    def keep_producing() -> None:
        count = 0
        while not stop.is_set():
            value = f"steady-{count}".encode()
            if _produce(raftlog_node.bootstrap, "steady", [value], acks="all") == [value]:
                count += 1
        produced.append(count)

    worker = threading.Thread(target=keep_producing)
    worker.start()
    generator = random.Random(1234)
    try:
        for attempt in range(300):
            kind = attempt % 5
            if kind == 0:
                payload = generator.randbytes(generator.randrange(1, 200))
            elif kind == 1:
                payload = struct.pack(">i", generator.choice([-1, 0, 3, 2**31 - 1, 500_000_000]))
            elif kind == 2:
                payload = _frame(generator.randrange(0, 100), generator.randrange(-1, 40),
                                 generator.randbytes(generator.randrange(0, 64)))  # fmt: skip
            elif kind == 3:
                payload = _frame(0, 9, generator.randbytes(40))[: generator.randrange(5, 40)]
            else:
                payload = _frame(3, 12, generator.randbytes(generator.randrange(0, 30)))
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
                    connection.sendall(payload)
                    connection.settimeout(0.2)
                    with contextlib.suppress(TimeoutError, ConnectionResetError):
                        connection.recv(4096)
            except OSError as error:
                raise AssertionError(f"the node stopped accepting connections: {error}") from error
    finally:
        stop.set()
        worker.join(60)
    assert raftlog_node.node(1).running
    assert produced and produced[0] > 0
    assert len(_read(raftlog_node.bootstrap, "steady", produced[0])) == produced[0]


def test_a_client_control_batch_is_refused_and_cannot_seal_the_partition(
    raftlog_node: LocalCluster,
) -> None:
    """Our Raft entries are control batches; a client's must never be stored as one."""
    from raftlog.raft.entry import EntryKind
    from raftlog.replica.entry_batches import control_batch

    assert _produce(raftlog_node.bootstrap, "guarded", [b"before"], acks="all") == [b"before"]
    forged = control_batch(EntryKind.SEAL, b"")
    body = (
        struct.pack(">hhi", -1, -1, 5000)
        + struct.pack(">ih", 1, 7) + b"guarded"
        + struct.pack(">ii", 1, 0) + struct.pack(">i", len(forged)) + bytes(forged)
    )  # fmt: skip
    with socket.create_connection(("127.0.0.1", raftlog_node.node(1).kafka_port), 10) as conn:
        conn.sendall(_frame(0, 3, body))
        size = struct.unpack(">i", conn.recv(4))[0]
        response = b""
        while len(response) < size:
            response += conn.recv(size - len(response))
    assert struct.unpack(">h", response[25:27])[0] == 87  # INVALID_RECORD
    node = raftlog_node.node(1)
    assert node.stop() == 0
    node.start()
    assert _produce(raftlog_node.bootstrap, "guarded", [b"after"], acks="all") == [b"after"]
    assert _read(raftlog_node.bootstrap, "guarded", 2) == [b"before", b"after"]
