"""First request frames of real Kafka clients, decoded by our codec.

`fixtures/*.hex` are our own captures (one frame each, length prefix included) from
kcat, confluent-kafka (librdkafka), kafka-python and aiokafka pointed at a throwaway
listener. The fixture tests always run; the live tests (marked `clients`) capture anew
from whatever clients are installed, so a client upgrade that changes its opening
request shows up here first. Refresh the fixtures with
`python tests/protocol/test_client_captures.py` (it rewrites them).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from raftlog.protocol.api_keys import API_SPECS, ApiKey
from raftlog.protocol.connection import (
    NEED_DATA,
    ErrorAction,
    ProtocolError,
    RequestReceived,
    ServerConnection,
)

FIXTURES = Path(__file__).parent / "fixtures"
SERVED = {
    ApiKey.API_VERSIONS: (0, 4),  # decode whatever the clients open with (kafka-python: v4)
    ApiKey.METADATA: (0, 12),
    ApiKey.PRODUCE: (0, 10),
    ApiKey.FETCH: (4, 12),
}
CAPTURE_TIMEOUT_S = 10.0


class FirstFrameListener:
    """Accept connections on 127.0.0.1 and keep the first complete request frame."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.frame: bytes | None = None
        self.captured = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> FirstFrameListener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.server.close()

    def _run(self) -> None:
        while not self._stop.is_set() and not self.captured.is_set():
            try:
                client, _ = self.server.accept()
            except TimeoutError:
                continue
            with client:
                client.settimeout(5)
                data = b""
                with contextlib.suppress(OSError):
                    while len(data) < 4 or len(data) < 4 + struct.unpack(">i", data[:4])[0]:
                        chunk = client.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                if len(data) >= 4 and len(data) >= 4 + struct.unpack(">i", data[:4])[0]:
                    self.frame = data[: 4 + struct.unpack(">i", data[:4])[0]]
                    self.captured.set()


def _run_kcat(port: int) -> None:
    subprocess.run(
        ["kcat", "-L", "-b", f"127.0.0.1:{port}", "-m", "2", "-X", "client.id=raftlog-kcat"],
        capture_output=True,
        timeout=CAPTURE_TIMEOUT_S,
        check=False,
    )


def _run_confluent_admin(port: int) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(
        {"bootstrap.servers": f"127.0.0.1:{port}", "client.id": "raftlog-confluent-admin"}
    )
    with contextlib.suppress(Exception):
        admin.list_topics(timeout=2)


def _run_confluent_producer(port: int) -> None:
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": f"127.0.0.1:{port}",
            "client.id": "raftlog-confluent-producer",
            "message.timeout.ms": 2000,
        }
    )
    producer.produce("t", b"v")
    producer.flush(2)


def _run_kafka_python(port: int) -> None:
    from kafka import KafkaConsumer

    with contextlib.suppress(Exception):
        KafkaConsumer(
            bootstrap_servers=f"127.0.0.1:{port}",
            client_id="raftlog-kafka-python",
            bootstrap_timeout_ms=2000,
            request_timeout_ms=2000,
        ).close()


def _run_aiokafka(port: int) -> None:
    from aiokafka import AIOKafkaProducer

    async def main() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=f"127.0.0.1:{port}",
            client_id="raftlog-aiokafka",
            request_timeout_ms=2000,
        )
        try:
            await asyncio.wait_for(producer.start(), timeout=5)
        except Exception:
            pass
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), timeout=5)

    asyncio.run(main())


CLIENTS: dict[str, tuple[str, Callable[[int], None], str]] = {
    # name: (module or executable that must exist, runner, client id it sends)
    "kcat": ("kcat", _run_kcat, "raftlog-kcat"),
    "confluent_admin": ("confluent_kafka", _run_confluent_admin, "raftlog-confluent-admin"),
    "confluent_producer": (
        "confluent_kafka",
        _run_confluent_producer,
        "raftlog-confluent-producer",
    ),
    "kafka_python": ("kafka", _run_kafka_python, "raftlog-kafka-python"),
    "aiokafka": ("aiokafka", _run_aiokafka, "raftlog-aiokafka"),
}


def _available(requirement: str) -> bool:
    if requirement == "kcat":
        return shutil.which("kcat") is not None
    try:
        __import__(requirement)
    except ImportError:
        return False
    return True


def capture(name: str) -> bytes:
    _, runner, _ = CLIENTS[name]
    with FirstFrameListener() as listener:
        worker = threading.Thread(target=runner, args=(listener.port,), daemon=True)
        worker.start()
        captured = listener.captured.wait(CAPTURE_TIMEOUT_S)
        worker.join(timeout=CAPTURE_TIMEOUT_S)
    if not captured or listener.frame is None:
        raise AssertionError(f"{name} sent no complete request within {CAPTURE_TIMEOUT_S}s")
    return listener.frame


def decode_first(frame: bytes) -> RequestReceived:
    connection = ServerConnection(SERVED)
    connection.receive_data(frame)
    event = connection.next_request()
    assert isinstance(event, RequestReceived), event
    return event


def check(name: str, frame: bytes) -> RequestReceived:
    event = decode_first(frame)
    assert event.api_key == ApiKey.API_VERSIONS
    assert event.client_id == CLIENTS[name][2]
    spec = API_SPECS[event.api_key]
    assert event.header_version == spec.request_header_version(event.api_version)
    body = event.body
    if event.api_version >= 3:
        assert body.client_software_name  # type: ignore[attr-defined]
        assert body.client_software_version  # type: ignore[attr-defined]
    # The body re-encodes to the captured bytes: nothing was lost in the decode.
    assert frame.endswith(body.encode(event.api_version))
    return event


def _fixture_names() -> Iterator[str]:
    return iter(sorted(path.stem for path in FIXTURES.glob("*.hex")))


@pytest.mark.parametrize("name", list(_fixture_names()))
def test_captured_fixture_decodes(name: str) -> None:
    frame = bytes.fromhex((FIXTURES / f"{name}.hex").read_text().strip())
    event = check(name, frame)
    expected = EXPECTED[name]
    assert (event.api_version, event.correlation_id) == expected[:2]
    if expected[2] is not None:
        assert event.body.client_software_name == expected[2]  # type: ignore[attr-defined]


def test_every_client_has_a_fixture() -> None:
    assert sorted(_fixture_names()) == sorted(CLIENTS)


# (api version, correlation id, client software name) of each checked-in capture.
EXPECTED: dict[str, tuple[int, int, str | None]] = {
    "aiokafka": (0, 1, None),
    "confluent_admin": (3, 1, "confluent-kafka-python"),
    "confluent_producer": (3, 1, "confluent-kafka-python"),
    "kafka_python": (4, 1, "kafka-python"),
    "kcat": (3, 1, "librdkafka"),
}


@pytest.mark.clients
@pytest.mark.parametrize("name", sorted(CLIENTS))
def test_live_capture_decodes(name: str) -> None:
    if not _available(CLIENTS[name][0]):
        pytest.skip(f"{CLIENTS[name][0]} is not installed")
    check(name, capture(name))


@pytest.mark.parametrize("name", list(_fixture_names()))
def test_versions_we_do_not_serve_get_the_v0_error_answer(name: str) -> None:
    frame = bytes.fromhex((FIXTURES / f"{name}.hex").read_text().strip())
    served = (0, 2) if EXPECTED[name][0] > 2 else (3, 4)
    connection = ServerConnection({ApiKey.API_VERSIONS: served})
    connection.receive_data(frame)
    event = connection.next_request()
    assert isinstance(event, ProtocolError) and event.action is ErrorAction.RESPOND
    answer = connection.send_error_response(event)
    assert struct.unpack_from(">i", answer, 4)[0] == EXPECTED[name][1]


class NegotiatingListener(FirstFrameListener):
    """Answer the first request with our codec, then keep the second request."""

    def __init__(self, served: dict[int, tuple[int, int]]) -> None:
        super().__init__()
        self.served = served
        self.events: list[RequestReceived | ProtocolError] = []

    def _run(self) -> None:
        while not self._stop.is_set() and not self.captured.is_set():
            try:
                client, _ = self.server.accept()
            except TimeoutError:
                continue
            with client, contextlib.suppress(OSError):
                client.settimeout(5)
                connection = ServerConnection(self.served)
                while len(self.events) < 2:
                    data = client.recv(65536)
                    if not data:
                        break
                    connection.receive_data(data)
                    while not isinstance(event := connection.next_request(), type(NEED_DATA)):
                        self.events.append(event)
                        if isinstance(event, ProtocolError):
                            client.sendall(connection.send_error_response(event))
                if len(self.events) >= 2:
                    self.captured.set()


@pytest.mark.clients
@pytest.mark.parametrize("name", ["kafka_python", "kcat"])
def test_clients_retry_after_our_unsupported_version_answer(name: str) -> None:
    """Real clients must understand the ApiVersions v0 error answer (header v0!)."""
    if not _available(CLIENTS[name][0]):
        pytest.skip(f"{CLIENTS[name][0]} is not installed")
    with NegotiatingListener({ApiKey.API_VERSIONS: (0, 2)}) as listener:
        worker = threading.Thread(target=CLIENTS[name][1], args=(listener.port,), daemon=True)
        worker.start()
        assert listener.captured.wait(CAPTURE_TIMEOUT_S)
        worker.join(timeout=CAPTURE_TIMEOUT_S)
    first, second = listener.events[:2]
    assert isinstance(first, ProtocolError) and first.api_version is not None
    assert first.api_version > 2
    assert isinstance(second, RequestReceived)
    assert second.api_key == ApiKey.API_VERSIONS and second.api_version <= 2


if __name__ == "__main__":  # refresh the fixtures
    FIXTURES.mkdir(exist_ok=True)
    for client in sys.argv[1:] or sorted(CLIENTS):
        data = capture(client)
        (FIXTURES / f"{client}.hex").write_text(data.hex() + "\n")
        event = decode_first(data)
        print(client, event.api_key, event.api_version, event.correlation_id, event.body)
