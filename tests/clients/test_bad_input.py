"""Garbage on some connections never disturbs a real client on another one.

While a confluent-kafka producer and consumer keep working on their own connections, the
test opens one connection per bad input, sends it, half-closes, and requires the node to
answer with well-formed frames and/or close the connection within a few seconds. Two
sources of bad input:

* a seeded loop of raw frames: random bytes, absurd length prefixes (negative, zero,
  above the frame limit), truncated frames, valid headers with random bodies, unknown api
  keys (including APIs the node does not serve), unsupported versions, valid frames with
  flipped bytes, and idle connections holding half a frame for the whole test;
* hypothesis-drawn *valid* requests of every served API and version with random field
  values (aimed at the real topic half of the time, produce records replaced by real
  batches with random producer ids and sequences), whose responses must decode with our
  codec at the request's version: this is what catches a handler that crashes on an odd
  value or builds a response its version cannot carry.

Excluded from the garbage bodies: CreateTopics (a body that happens to decode could ask
for thousands of partitions, which is a legitimate, slow request, not garbage) and, in the
raw loop, Fetch (a decodable body may legitimately long-poll for up to a minute). The
hypothesis part covers Fetch with the wait clamped. The node's log must hold no error
line at the end (the fixture checks): a handler failure is a bug even if the client
retried past it.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raftlog.kafka.handlers import SUPPORTED_VERSIONS
from raftlog.protocol.api_keys import API_SPECS
from raftlog.protocol.headers import response_header_version
from raftlog.protocol.messages._runtime import Message
from raftlog.protocol.records import Record, build_batch
from raftlog.protocol.testing import message_strategy, messages

from .conftest import NodeFactory, NodeProcess
from .helpers import CLIENT_TIMEOUT_S, read_frame, request_frame

pytestmark = pytest.mark.clients

LIVE_TOPIC = "live"
TARGET_TOPIC = "garbage-target"
RAW_CASES = 1_000
STRUCTURED_EXAMPLES = 500
CLOSE_TIMEOUT_S = 5.0
CREATE_TOPICS = 19
FETCH = 1
UNSERVED_KEYS = (-1, 10, 11, 32, 67, 999, 32767)


@attrs.define(eq=False)
class LiveClient:
    """A producer and a consumer working on their own connections in a thread."""

    bootstrap: str
    produced: list[bytes] = attrs.field(factory=list)
    acked: list[bytes] = attrs.field(factory=list)
    consumed: list[bytes] = attrs.field(factory=list)
    failures: list[str] = attrs.field(factory=list)
    _stop: threading.Event = attrs.field(factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=2 * CLIENT_TIMEOUT_S)
        assert not self._thread.is_alive(), "the live client is stuck"

    def _run(self) -> None:
        from confluent_kafka import Consumer, Producer, TopicPartition

        producer = Producer(
            {"bootstrap.servers": self.bootstrap, "enable.idempotence": True,
             "linger.ms": 5, "message.timeout.ms": int(CLIENT_TIMEOUT_S * 1000)}
        )
        consumer = Consumer(
            {"bootstrap.servers": self.bootstrap, "group.id": "live",
             "enable.auto.commit": False, "fetch.wait.max.ms": 50}
        )

        def report(error: object, message: Any) -> None:
            if error is not None:
                self.failures.append(str(error))
            else:
                self.acked.append(message.value())

        try:
            consumer.assign([TopicPartition(LIVE_TOPIC, 0, 0)])
            number = 0
            while not self._stop.is_set():
                for _ in range(20):
                    value = b"live-%07d" % number
                    number += 1
                    producer.produce(LIVE_TOPIC, value=value, partition=0, on_delivery=report)
                    self.produced.append(value)
                producer.poll(0)
                self._consume(consumer, 0.02)
            if producer.flush(CLIENT_TIMEOUT_S) != 0:
                self.failures.append("records left undelivered")
            deadline = time.monotonic() + CLIENT_TIMEOUT_S
            while len(self.consumed) < len(self.produced) and time.monotonic() < deadline:
                self._consume(consumer, 0.2)
        except Exception as error:  # reported to the test, which fails on it
            self.failures.append(repr(error))
        finally:
            consumer.close()

    def _consume(self, consumer: Any, timeout_s: float) -> None:
        for message in consumer.consume(1000, timeout_s):
            if message.error() is not None:
                self.failures.append(str(message.error()))
            else:
                self.consumed.append(message.value())

    def check(self) -> None:
        assert not self.failures, self.failures[:5]
        assert len(self.produced) > 100, "the live client barely ran"
        assert self.acked == self.produced
        assert self.consumed == self.produced


@pytest.fixture
def served_node(node_factory: NodeFactory) -> NodeProcess:
    """A node without auto-creation (random Metadata must not create topics), with the
    live topic and the garbage target created through the admin API."""
    from confluent_kafka.admin import AdminClient, NewTopic

    node = node_factory(auto_create_topics=False)
    admin = AdminClient({"bootstrap.servers": node.bootstrap})
    futures = admin.create_topics(
        [NewTopic(LIVE_TOPIC, 1, 1), NewTopic(TARGET_TOPIC, 1, 1)],
        request_timeout=CLIENT_TIMEOUT_S,
    )
    for future in futures.values():
        future.result(timeout=CLIENT_TIMEOUT_S)
    return node


@contextlib.contextmanager
def live_client(node: NodeProcess) -> Iterator[LiveClient]:
    client = LiveClient(node.bootstrap)
    client.start()
    try:
        yield client
    finally:
        client.stop()


def _exchange(port: int, data: bytes) -> list[bytes]:
    """Send `data`, half-close, and return the response frames read before the node closes.

    Fails if the node neither closes nor finishes answering within CLOSE_TIMEOUT_S, or if
    what it sends is not a sequence of whole frames.
    """
    frames = []
    with socket.create_connection(("127.0.0.1", port), timeout=CLOSE_TIMEOUT_S) as sock:
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        try:
            while (frame := read_frame(sock, CLOSE_TIMEOUT_S)) is not None:
                frames.append(frame)
        except ConnectionResetError:
            pass  # closing with our unread bytes still queued resets: still a close
        except TimeoutError:
            raise AssertionError(
                f"node neither answered nor closed within {CLOSE_TIMEOUT_S}s: {data[:64]!r}"
            ) from None
    return frames


def _valid_frames() -> list[tuple[int, bytes]]:
    """A few well-formed requests to truncate and mutate (no Fetch: see the docstring)."""
    from raftlog.protocol.messages.generated.api_versions_request import ApiVersionsRequest
    from raftlog.protocol.messages.generated.list_offsets_request import (
        ListOffsetsPartition,
        ListOffsetsRequest,
        ListOffsetsTopic,
    )
    from raftlog.protocol.messages.generated.metadata_request import (
        MetadataRequest,
        MetadataRequestTopic,
    )
    from raftlog.protocol.messages.generated.produce_request import (
        PartitionProduceData,
        ProduceRequest,
        TopicProduceData,
    )

    batch = build_batch([Record(value=b"garbage-base", key=b"k")])
    produce = ProduceRequest(
        transactional_id=None, acks=1, timeout_ms=1000,
        topic_data=[TopicProduceData(name=TARGET_TOPIC, partition_data=[
            PartitionProduceData(index=0, records=batch)])],
    )
    metadata = MetadataRequest(
        topics=[MetadataRequestTopic(name=TARGET_TOPIC)], allow_auto_topic_creation=False
    )
    list_offsets = ListOffsetsRequest(
        replica_id=-1,
        topics=[ListOffsetsTopic(name=TARGET_TOPIC, partitions=[
            ListOffsetsPartition(partition_index=0, timestamp=-1)])],
    )
    versions = ApiVersionsRequest(client_software_name="raw", client_software_version="1")
    return [
        (0, request_frame(0, 9, produce)),
        (0, request_frame(0, 3, produce)),
        (3, request_frame(3, 12, metadata)),
        (3, request_frame(3, 1, MetadataRequest(topics=[MetadataRequestTopic(name="x")]))),
        (2, request_frame(2, 7, list_offsets)),
        (18, request_frame(18, 3, versions)),
        (18, request_frame(18, 0, versions)),
    ]


def _header(api_key: int, version: int, correlation_id: int) -> bytes:
    """A request header v1 (int16 client id); flexible versions get the v2 tagged byte."""
    header = struct.pack(">hhih", api_key, version, correlation_id, 3) + b"raw"
    spec = API_SPECS.get(api_key)
    if spec is not None and spec.is_flexible(version) and api_key != 18:
        header += b"\x00"
    return header


def _framed(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def raw_cases(seed: int, count: int) -> Iterator[tuple[str, bytes]]:
    rng = random.Random(seed)
    valid = _valid_frames()
    served = [(key, versions) for key, versions in SUPPORTED_VERSIONS.items()
              if key not in (CREATE_TOPICS, FETCH)]
    for number in range(count):
        kind = number % 8
        if kind == 0:
            yield "random bytes", rng.randbytes(rng.randrange(600))
        elif kind == 1:
            size = rng.choice([-1, -(2**31), 0, 1, 3, 2**31 - 1, (100 << 20) + 1, 200 << 20])
            yield f"length {size}", struct.pack(">i", size) + rng.randbytes(rng.randrange(40))
        elif kind == 2:
            _, frame = rng.choice(valid)
            yield "truncated frame", frame[: rng.randrange(1, len(frame))]
        elif kind == 3:
            key, (low, high) = rng.choice(served)
            body = _header(key, rng.randint(low, high), number) + rng.randbytes(rng.randrange(300))
            yield f"api {key} garbage body", _framed(body)
        elif kind == 4:
            key = rng.choice(UNSERVED_KEYS)
            body = _header(key, rng.randrange(5), number) + rng.randbytes(rng.randrange(60))
            yield f"unserved api {key}", _framed(body)
        elif kind == 5:
            key, (low, high) = rng.choice(served)
            unserved = [high + 1, high + 7, 32767, -1, -32768] + ([low - 1] if low else [])
            version = rng.choice(unserved)
            yield f"api {key} v{version}", _framed(_header(key, version, number) + b"\x00" * 8)
        elif kind == 6:
            _, frame = rng.choice(valid)
            mutated = bytearray(frame)
            for _ in range(rng.randint(1, 8)):
                mutated[rng.randrange(4, len(mutated))] = rng.randrange(256)
            yield "mutated frame", bytes(mutated)
        else:
            parts = [rng.choice(valid)[1] for _ in range(rng.randint(1, 4))]
            parts.insert(rng.randrange(len(parts) + 1), rng.randbytes(rng.randrange(1, 40)))
            yield "valid frames around garbage", b"".join(parts)


def test_raw_garbage_while_a_client_works(served_node: NodeProcess) -> None:
    node = served_node
    idle: list[socket.socket] = []
    outcomes = {"answered": 0, "closed silently": 0}
    try:
        for _ in range(20):  # connections that stop mid-frame and stay open throughout
            sock = socket.create_connection(("127.0.0.1", node.port), timeout=5)
            sock.sendall(struct.pack(">i", 1000) + b"\x00\x03\x00\x0c")
            idle.append(sock)
        with live_client(node) as client:
            for label, data in raw_cases(seed=4242, count=RAW_CASES):
                try:
                    frames = _exchange(node.port, data)
                except AssertionError as error:
                    raise AssertionError(f"{label}: {error}") from None
                outcomes["answered" if frames else "closed silently"] += 1
                assert node.running(), f"node died on {label}: {data[:64]!r}"
        client.check()
    finally:
        for sock in idle:
            sock.close()
    assert outcomes["answered"] > 0 and outcomes["closed silently"] > 0, outcomes
    assert node.running()


# -- valid requests with random values ----------------------------------------------


SERVED_FOR_FUZZ = sorted(key for key in SUPPORTED_VERSIONS if key != CREATE_TOPICS)
_NAMES = {spec.api_key: spec.request_class.__name__ for spec in API_SPECS.values()}


def _aim(value: Any, batch: bytes | None) -> None:
    """Point a drawn request at the real topic/partition, and give it a real batch."""
    if isinstance(value, list):
        for item in value:
            _aim(item, batch)
        return
    if not hasattr(value, "__slots__"):
        return
    for attr in value.__slots__:
        current = getattr(value, attr, None)
        if attr in ("name", "topic") and isinstance(current, str):
            setattr(value, attr, TARGET_TOPIC)
        elif attr in ("partition", "partition_index", "index") and isinstance(current, int):
            setattr(value, attr, 0)
        elif attr == "records" and batch is not None and current is not None:
            setattr(value, attr, batch)
        elif isinstance(current, list) or hasattr(current, "__slots__"):
            _aim(current, batch)


@st.composite
def _requests(draw: st.DrawFn) -> tuple[int, int, Message]:
    api_key = draw(st.sampled_from(SERVED_FOR_FUZZ))
    low, high = SUPPORTED_VERSIONS[api_key]
    version = draw(st.integers(low, high))
    request = draw(message_strategy(messages()[_NAMES[api_key]], version, unknown_tags=False))
    if draw(st.booleans()):
        batch = None
        if draw(st.booleans()):
            batch = build_batch(
                [Record(value=b"fuzz", key=draw(st.binary(max_size=8)))],
                producer_id=draw(st.sampled_from([-1, 0, 1, 2, 2**62])),
                producer_epoch=draw(st.sampled_from([-1, 0, 1, 32767])),
                base_sequence=draw(st.sampled_from([-1, 0, 1, 5, 2**31 - 1])),
            )
        _aim(request, batch)
    if api_key == FETCH:
        request.max_wait_ms = min(max(request.max_wait_ms, 0), 50)
    if api_key == 0 and request.acks not in (-1, 0, 1):
        request.acks = draw(st.sampled_from([-1, 0, 1, request.acks]))
    if api_key == 0:
        request.timeout_ms = min(max(request.timeout_ms, 0), 2_000)
    return api_key, version, request


def test_random_valid_requests_get_decodable_answers(served_node: NodeProcess) -> None:
    node = served_node

    @settings(
        max_examples=STRUCTURED_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
    )
    @given(_requests())
    def one(case: tuple[int, int, Message]) -> None:
        api_key, version, request = case
        try:
            frame = request_frame(api_key, version, request, correlation_id=99)
        except Exception:  # a drawn value this version cannot encode: not a request
            return
        frames = _exchange(node.port, frame)
        expects_response = not (api_key == 0 and request.acks == 0)
        if not expects_response:
            assert frames == [], "acks=0 produce answered"
            return
        assert len(frames) <= 1
        if not frames:
            return  # the node may close on a request it cannot answer (Kafka does)
        (payload,) = frames
        assert struct.unpack_from(">i", payload)[0] == 99
        header_bytes = 4 if response_header_version(api_key, version) == 0 else 5
        response_class = API_SPECS[api_key].response_class
        response_class.decode(payload[header_bytes:], version)  # must be well-formed
        assert node.running()

    with live_client(node) as client:
        one()
    client.check()
    assert node.running()


def test_client_reset_with_requests_in_flight_is_not_a_node_error(
    served_node: NodeProcess,
) -> None:
    """A client that resets its connection while requests wait for answers (long-polling
    fetches) is a disconnect, not a node failure: the node must log no error line (the
    fixture checks) and keep serving."""
    from raftlog.protocol.messages.generated.fetch_request import (
        FetchPartition,
        FetchRequest,
        FetchTopic,
    )

    node = served_node
    fetch = FetchRequest(
        replica_id=-1, max_wait_ms=300, min_bytes=1 << 20, max_bytes=1 << 20,
        isolation_level=0, session_id=0, session_epoch=-1,
        topics=[FetchTopic(topic=TARGET_TOPIC, partitions=[
            FetchPartition(partition=0, fetch_offset=0, partition_max_bytes=1 << 20)])],
    )
    for _ in range(20):
        sock = socket.create_connection(("127.0.0.1", node.port), timeout=5)
        sock.sendall(b"".join(request_frame(FETCH, 12, fetch, n) for n in range(3)))
        time.sleep(0.02)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # linger 0: RST, with the fetches still waiting
    time.sleep(0.5)  # past max_wait_ms: the node has tried to answer every one of them
    (versions,) = _exchange(node.port, _valid_frames()[-2][1])
    assert struct.unpack_from(">i", versions)[0] >= 0
    assert node.running()
